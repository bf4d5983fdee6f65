"""A study from the site PACS opened by its link, end to end: a real Orthanc
seeded over STOW-RS, the hub and its PACS gateway, a slicer-core container
and Chromium.

The link (``/services/pacs/open?study=…&series=…``) leads through the hub
login (LDAP) to the gateway's page naming the patient; its button, through
the spawn page, into the user's own server, which claims the one-time ticket,
retrieves the series through the gateway (WADO-RS, with the server's own
token) and shows it in the Slicer desktop. What the desktop shows is compared with
Slicer's own rendering of the same series in the Slicer kernel of that server
(same renderer, same size), and with the sample volume it shows otherwise.
The kernel's volume has the geometry and the voxel values of the DICOM.
Cold (no server) and warm (server and desktop running) times from the link
to the first frame of the study are printed; benchmarks/open_study.py reports
them against their baselines. (tests/support/open_study.py: how.)
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest
import requests

from tests.e2e.conftest import IMAGE, docker_hub
from tests.support.browser import ARTIFACTS, accessibility_problems, browser, page_picture, wait_for
from tests.support.hub import free_port
from tests.support.open_study import (SAME_PICTURE, StudyOpener, distance, first_study_frame, link,
                                      login_without_server, references)
from tests.support.pacs import pacs_section, seeded_pacs
from tests.support.share import accept, create_link
from tests.support.spawn import container, hub_api, wait_ready

pytestmark = pytest.mark.e2e

OWNER = ("student2", "student2-pw")       # in `students`, the PACS group here
OUTSIDER = ("teacher1", "teacher-pw")     # may log in, not in the PACS group
VIEWER = ("student1", "student1-pw")      # sees student2's session read-only
DICOM_DIR = "/home/slicer/.local/share/slicerhub/dicom"


@pytest.fixture(scope="module")
def pacs():
    with seeded_pacs() as seeded:
        yield seeded


@pytest.fixture(scope="module")
def hub(docker_client, pacs, tmp_path_factory):
    with docker_hub(docker_client, tmp_path_factory.mktemp("open-study"), "e2eo", hub={"pacs_port": free_port()},
                    profiles=[{"slug": "standard", "display_name": "Slicer (CPU)", "image": IMAGE,
                               "cpu_limit": 1, "mem_limit": "2G", "default": True}],
                    pacs=pacs_section(pacs, ["students"])) as running:
        yield running


def test_a_pacs_link_opens_the_study_in_the_users_slicer(docker_client, hub, pacs):
    user = OWNER[0]
    driver = browser()
    try:
        login_without_server(driver, hub, OWNER)
        s, _ = hub.login(*OWNER)
        token = hub.api_token(s)
        assert not hub_api(hub, token, f"/users/{user}").json()["servers"]  # cold: no server

        def c():
            try:
                return container(docker_client, hub, user)
            except Exception:  # not made yet
                return None

        opener = StudyOpener(driver, hub, user, c)
        # Cold: link → the patient's page → click → spawn → retrieve → the desktop shows the study.
        cold_frames = opener.frames_until_shown(link(hub, pacs), 300)
        assert driver.current_url.startswith(f"{hub.url}/user/{user}/desktop/")
        study_ref, sample_ref, kernel = references(hub, token, user, pacs, cold_frames[-1][1].size)
        study_ref.save(ARTIFACTS / "open-study-reference.png")
        sample_ref.save(ARTIFACTS / "open-study-sample-reference.png")
        cold_s, cold_picture = first_study_frame(cold_frames, study_ref, sample_ref)
        cold_picture.save(ARTIFACTS / "open-study-cold.png")
        assert distance(cold_frames[-1][1], study_ref) < SAME_PICTURE
        # The reference differs from the sample: the comparison can tell them apart.
        assert distance(study_ref, sample_ref) > 3 * distance(cold_frames[-1][1], study_ref)

        # The kernel's volume is the DICOM's: geometry and values.
        g = pacs.ct_geometry
        m = np.array(kernel["ijk_to_ras"])
        assert tuple(kernel["dims"]) == g.shape
        assert np.allclose(m[:3, 3], g.origin, atol=1e-3)
        assert np.allclose(np.linalg.norm(m[:3, :3], axis=0), g.spacing, atol=1e-4)
        assert np.allclose(m[:3, :3] / g.spacing, g.directions, atol=1e-4)
        hu = np.stack([ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
                       for ds in sorted(pacs.ct, key=lambda d: float(d.ImagePositionPatient[2]))])
        assert (kernel["min"], kernel["max"]) == (hu.min(), hu.max())
        assert kernel["checksum"] == pytest.approx(hu.sum(), rel=1e-9)
        assert kernel["name"] == "Head CT (upper)"

        # Warm: the desktop back on the sample (its application restarted), then the link again.
        opener.back_to_the_sample(sample_ref)
        warm_s, warm_picture = first_study_frame(opener.frames_until_shown(link(hub, pacs), 120),
                                                 study_ref, sample_ref)
        warm_picture.save(ARTIFACTS / "open-study-warm.png")
        # Served from the home the second time: the gateway saw one retrieval of the series.
        audit = [json.loads(line) for line in (hub.workdir / "hub" / "pacs-audit.log").read_text().splitlines()]
        retrievals = [a for a in audit if a["action"] == "dicomweb"
                      and a["path"] == f"studies/{pacs.study}/series/{pacs.ct_series}"]
        assert len(retrievals) == 1, retrievals
        print(f"\nopen study: cold {cold_s:.1f} s (click to first frame), warm {warm_s:.1f} s")
    finally:
        driver.quit()


def test_refusals_load_nothing(docker_client, hub, pacs):
    user = OWNER[0]
    s, _ = hub.login(*OWNER)
    token = hub.api_token(s)
    if not hub_api(hub, token, f"/users/{user}").json()["servers"]:
        assert hub_api(hub, token, f"/users/{user}/server", "POST").status_code in (201, 202)
    assert wait_ready(hub, s, user)["ready"]
    c = container(docker_client, hub, user)

    def dicom_folders() -> str:
        return c.exec_run(["sh", "-c", f"find {DICOM_DIR} -mindepth 1 2>/dev/null | sort"]).output.decode()

    before = dicom_folders()
    server = f"{hub.url}/user/{user}/slicerhub/open"
    assert s.get(f"{hub.url}/user/{user}/slicerhub/access", timeout=60).json()["level"] == "execute"  # its OAuth
    for query, status in (({}, 400), ({"ticket": "x"}, 400), ({"ticket": "y" * 32}, 404),
                          ({"study": pacs.study, "series": pacs.ct_series}, 400)):  # a UID alone opens nothing
        r = s.get(server, params=query, allow_redirects=False, timeout=120)
        assert r.status_code == status, (query, r.status_code, r.headers.get("Location"), r.text[:300])
    assert dicom_folders() == before
    assert ".incoming" not in before

    # Someone outside the PACS groups: refused at the gateway, and no server started for them.
    o, _ = hub.login(*OUTSIDER)
    r = o.get(link(hub, pacs), allow_redirects=True, timeout=60)
    assert r.status_code == 403 and "students" in r.text
    assert not hub_api(hub, hub.api_token(o), f"/users/{OUTSIDER[0]}").json()["servers"]

    # A read-only viewer of the owner's session cannot make the owner's Slicer load
    # anything, even with a ticket of the owner's, nor read the retrieved images.
    v, _ = hub.login(*VIEWER)
    assert accept(hub, v, create_link(hub, token)["url"]).status_code == 200
    # A token carrying exactly what the share gives.
    viewer = requests.Session()
    viewer.headers["Authorization"] = "token " + hub.api_token(v, "viewer", scopes=[
        f"access:servers!server={user}/", f"custom:jupyter_server:read:*!server={user}/"])
    assert viewer.get(f"{hub.url}/user/{user}/slicerhub/access", timeout=60).json()["level"] == "read"
    page = s.get(link(hub, pacs), timeout=60)
    form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text))
    ticket = parse_qs(urlparse(parse_qs(urlparse(s.post(
        hub.url + "/services/pacs/open", data=form, allow_redirects=False, timeout=60
    ).headers["Location"]).query)["next"][0]).query)["ticket"][0]
    r = viewer.get(server, params={"ticket": ticket}, allow_redirects=False, timeout=60)
    assert r.status_code == 403, r.text[:300]
    retrieved = [line for line in dicom_folders().splitlines() if line.endswith(".dcm")]
    assert retrieved, "the first test retrieved the CT series"
    relative = retrieved[0].removeprefix("/home/slicer/")
    for path in (f"files/{relative}", f"api/contents/{relative}", "api/contents/.local/share/slicerhub/dicom"):
        assert viewer.get(f"{hub.url}/user/{user}/{path}", timeout=60).status_code in (403, 404), path


def test_the_gateways_pages_in_the_hubs_look(hub, pacs):
    """The studies list, the page naming the patient and a refusal: the hub's
    frame and no serious or critical axe-core violation (light and dark)."""
    driver = browser()
    try:
        login_without_server(driver, hub, OWNER)
        driver.get(hub.url + "/services/pacs/")
        rows = wait_for(lambda: driver.find_elements("css selector", f'[data-study="{pacs.study}"]'), 60,
                        what="the study in the list")
        assert driver.find_element("id", "nav-pacs").get_attribute("aria-current") == "page"
        page_picture(driver, "pacs-studies.png")
        assert not (problems := accessibility_problems(driver, dark=True)), problems
        rows[0].find_element("css selector", "a").click()
        wait_for(lambda: driver.find_elements("id", "open-study"), 60, what="the patient's page")
        assert "Patient" in driver.find_element("id", "patient").text
        page_picture(driver, "pacs-open-study.png")
        assert not (problems := accessibility_problems(driver, dark=True)), problems
        # A study that is not there: a page that says so, in the same frame.
        driver.get(hub.url + "/services/pacs/open?study=1.2.826.0.1.3680043.8.498.999999")
        heading = wait_for(lambda: driver.find_elements("css selector", "main h1"), 30, what="the error page")
        assert heading[0].text.endswith(": Cannot open this study"), heading[0].text
        assert driver.find_element("css selector", ".slicerhub-brand")
        page_picture(driver, "pacs-error.png")
        assert not (problems := accessibility_problems(driver)), problems
    finally:
        driver.quit()
