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
Cold (no server) and warm (server and desktop running) times from the click
to the first frame of the study are printed; benchmarks/open_study.py reports
them against their baselines.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import time
from urllib.parse import parse_qs, urlencode, urlparse

import numpy as np
import pytest
import requests
from PIL import Image, ImageChops, ImageStat

from slicerhub.devenv.ldap import Slapd
from tests.e2e.conftest import IMAGE, _cleanup
from tests.integration.conftest import test_directory
from tests.support.browser import ARTIFACTS, browser, wait_for
from tests.support.hub import Hub, free_port, write_config
from tests.support.kernel import KernelClient
from tests.support.pacs import seeded_pacs
from tests.support.share import accept, create_link
from tests.support.spawn import container, hub_api, in_desktop, wait_ready

pytestmark = pytest.mark.e2e

NETWORK = "slicerhub-e2e"
OWNER = ("student2", "student2-pw")       # in `students`, the PACS group here
OUTSIDER = ("teacher1", "teacher-pw")     # may log in, not in the PACS group
VIEWER = ("student1", "student1-pw")      # sees student2's session read-only
DICOM_DIR = "/home/slicer/.local/share/slicerhub/dicom"
LIST_PROCESSES = """
import os
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        print(pid, open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\\0", b" ").decode()[:150])
    except OSError:
        pass
"""
# SIGTERM to the desktop application; the session's loop starts it again, on the sample.
STOP_DESKTOP_APP = """
import os, signal
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        # The application's script, not the VNC server (whose socket path has the name too).
        if any(arg.endswith(b"/bin/slicerhub-desktop") for arg in open(f"/proc/{pid}/cmdline", "rb").read().split(b"\\0")):
            os.kill(int(pid), signal.SIGTERM)
            print(pid)
    except OSError:
        pass
"""


@pytest.fixture(scope="module")
def pacs():
    with seeded_pacs() as seeded:
        yield seeded


@pytest.fixture(scope="module")
def hub(docker_client, pacs, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("open-study")
    prefix = f"e2eo{int(time.time()) % 100000}"
    _cleanup(docker_client, "e2eo")
    ldap = Slapd(workdir / "ldap", test_directory())
    ldap.start()
    port = free_port()
    config = write_config(
        workdir / "slicerhub.yaml", ldap.port, port,
        hub={"pacs_port": free_port()},
        backend={"docker": {"network": NETWORK, "home_volume": prefix + "-home-{username}",
                            "container_prefix": prefix}},
        profiles=[{"slug": "standard", "display_name": "Slicer (CPU)", "image": IMAGE,
                   "cpu_limit": 1, "mem_limit": "2G", "default": True}],
        pacs={"dicomweb_url": pacs.orthanc.dicomweb_url, "username": pacs.orthanc.username,
              "password_file": str(pacs.orthanc.password_file), "groups": ["students"]},
    )
    running = Hub(workdir, config, port)
    try:
        running.start()
        running.prefix = prefix
        yield running
    finally:
        running.stop()
        ldap.stop()
        _cleanup(docker_client, prefix)


def _link(hub, pacs, series=None) -> str:
    return hub.url + "/services/pacs/open?" + urlencode({"study": pacs.study, "series": series or pacs.ct_series})


def _canvas(driver) -> Image.Image | None:
    """The noVNC canvas as the person sees it (None before the desktop page is up)."""
    rect = driver.execute_script(
        "const c = document.querySelector('#screen canvas');"
        "if (!c || !c.width) return null; const r = c.getBoundingClientRect();"
        "return [r.left, r.top, r.right, r.bottom, window.devicePixelRatio];")
    if not rect:
        return None
    page = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("L")
    return page.crop(tuple(int(v * rect[4]) for v in rect[:4]))


def _distance(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute grey-level difference (0..255) of two pictures at a's size."""
    return ImageStat.Stat(ImageChops.difference(a, b.convert("L").resize(a.size))).mean[0]


def _frames_until_study(driver, url: str, expected_log: str, c, bound: float) -> tuple[float, list]:
    """Open URL; keep (seconds since the click, canvas) until the desktop app has
    shown the study and two more frames came. The frames are judged afterwards,
    against Slicer's own rendering (which needs the server, so comes later)."""
    frames = []
    t0 = time.monotonic()
    _open(driver, url)
    shown_at = None
    while time.monotonic() - t0 < bound:
        picture = _canvas(driver) if "/desktop/" in driver.current_url else None
        if picture is not None:
            frames.append((time.monotonic() - t0, picture))
            if shown_at is None and expected_log in _desktop_log(c()):
                shown_at = len(frames)
            if shown_at is not None and len(frames) >= shown_at + 2:
                return t0, frames
        time.sleep(0.1)
    raise AssertionError(f"no frame of the study within {bound:g} s; {len(frames)} frames; "
                         f"url {driver.current_url}; desktop log: {_desktop_log(c())[-800:]}")


def _open(driver, url: str) -> None:
    """The link, then the button on the page that names the patient (a person's click)."""
    driver.get(url)
    wait_for(lambda: driver.find_elements("id", "open-study"), 60, 0.05, "the gateway's page")
    driver.find_element("id", "open-study").click()


def _desktop_log(c) -> str:
    if c is None:
        return ""
    return in_desktop(c, "sh", "-c", "cat /home/slicer/.vnc/*.log 2>/dev/null").output.decode(errors="replace")


def _first_study_frame(frames, study_ref: Image.Image, sample_ref: Image.Image) -> tuple[float, Image.Image]:
    for seconds, picture in frames:
        to_study, to_sample = _distance(picture, study_ref), _distance(picture, sample_ref)
        if to_study < 12 and to_study < to_sample / 2:
            return seconds, picture
    raise AssertionError("no frame matches Slicer's rendering of the study: distances "
                         + ", ".join(f"{_distance(p, study_ref):.1f}/{_distance(p, sample_ref):.1f}"
                                     for _, p in frames[-5:]))


async def _on_kernel(hub, token, user, code) -> str:
    kc = await KernelClient(f"{hub.url}/user/{user}", token, "slicer").start()
    try:
        return "".join(o.get("text", "") for o in await kc.execute(code))
    finally:
        await kc.shutdown()


def _references(hub, token, user, pacs, size) -> tuple[Image.Image, Image.Image, dict]:
    """Slicer's rendering of the CT series and of the sample at the desktop's size,
    and the kernel volume's geometry and values, from the user's own server."""
    code = f"""
import base64, json
import numpy as np
from vtkmodules.util.numpy_support import vtk_to_numpy
from vtkmodules.vtkCommonMath import vtkMatrix4x4
from slicerhub_slicer import load_study, session
s = session.current()
node = load_study({pacs.study!r}, {pacs.ct_series!r})
m = vtkMatrix4x4(); node.GetIJKToRASMatrix(m)
a = vtk_to_numpy(node.GetImageData().GetPointData().GetScalars()).reshape(node.GetImageData().GetDimensions()[::-1])
study_png = s.render_png("Red", {tuple(size)!r})
s.show_volume(s.sample_volume())
s.slice_view("Axial").fit_view_to_content()  # as the desktop fits what it shows
sample_png = s.render_png("Red", {tuple(size)!r})
print(json.dumps({{"ijk_to_ras": [[m.GetElement(i, j) for j in range(4)] for i in range(4)],
                  "dims": node.GetImageData().GetDimensions(), "min": float(a.min()), "max": float(a.max()),
                  "checksum": float(a.astype(np.float64).sum()), "name": node.GetName(),
                  "study": base64.b64encode(study_png).decode(), "sample": base64.b64encode(sample_png).decode()}}))
"""
    import base64

    out = json.loads(asyncio.run(_on_kernel(hub, token, user, code)).strip().splitlines()[-1])
    study = Image.open(io.BytesIO(base64.b64decode(out.pop("study")))).convert("L")
    sample = Image.open(io.BytesIO(base64.b64decode(out.pop("sample")))).convert("L")
    return study, sample, out


def _login(driver, hub, who):
    # Signed in with nothing started: the hub's home page, not the user's server.
    driver.get(hub.url + "/hub/login?" + urlencode({"next": "/hub/home"}))
    driver.find_element("id", "username_input").send_keys(who[0])
    driver.find_element("id", "password_input").send_keys(who[1])
    driver.find_element("id", "login_submit").click()
    wait_for(lambda: "/hub/home" in driver.current_url, 60, what="the hub's home page")


def test_a_pacs_link_opens_the_study_in_the_users_slicer(docker_client, hub, pacs):
    user = OWNER[0]
    driver = browser()
    try:
        _login(driver, hub, OWNER)
        s, _ = hub.login(*OWNER)
        token = hub.api_token(s)
        assert not hub_api(hub, token, f"/users/{user}").json()["servers"]  # cold: no server

        def c():
            try:
                return container(docker_client, hub, user)
            except Exception:  # not made yet
                return None

        # Cold: click → spawn → retrieve → the desktop shows the study.
        t0, cold_frames = _frames_until_study(driver, _link(hub, pacs), "showing Head CT", c, 300)
        assert driver.current_url.startswith(f"{hub.url}/user/{user}/desktop/")
        size = cold_frames[-1][1].size
        study_ref, sample_ref, kernel = _references(hub, token, user, pacs, size)
        study_ref.save(ARTIFACTS / "open-study-reference.png")
        sample_ref.save(ARTIFACTS / "open-study-sample-reference.png")
        cold_s, cold_picture = _first_study_frame(cold_frames, study_ref, sample_ref)
        cold_picture.save(ARTIFACTS / "open-study-cold.png")
        assert _distance(cold_frames[-1][1], study_ref) < 12
        # The reference differs from the sample: the comparison can tell them apart.
        assert _distance(study_ref, sample_ref) > 3 * _distance(cold_frames[-1][1], study_ref)

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

        # Warm: the desktop back on the sample (the application restarted), then the link again.
        # (no procps in the image: the application's process found in /proc)
        stopped = in_desktop(c(), "python3", "-c", STOP_DESKTOP_APP)
        assert stopped.exit_code == 0 and stopped.output.strip(), stopped.output

        def on_sample():
            picture = _canvas(driver)
            if picture is None:
                return False
            picture.save(ARTIFACTS / "open-study-restarted.png")
            return _distance(picture, sample_ref) < 12

        try:
            wait_for(on_sample, 90, 0.5, "the desktop back on the sample")
        except AssertionError as exc:
            procs = in_desktop(c(), "python3", "-c", LIST_PROCESSES).output.decode(errors="replace")
            raise AssertionError(f"{exc}; killed {stopped.output!r}; processes:\n{procs}\n"
                                 f"log: {_desktop_log(c())[-1500:]}\n"
                                 f"distance to the sample "
                                 f"{_distance(Image.open(ARTIFACTS / 'open-study-restarted.png'), sample_ref):.1f}, "
                                 f"to the study {_distance(Image.open(ARTIFACTS / 'open-study-restarted.png'), study_ref):.1f}"
                                 ) from None
        before = _desktop_log(c()).count("showing Head CT")
        t1 = time.monotonic()
        _open(driver, _link(hub, pacs))
        frames = []
        while time.monotonic() - t1 < 120:
            picture = _canvas(driver) if "/desktop/" in driver.current_url else None
            if picture is not None:
                frames.append((time.monotonic() - t1, picture))
                if _desktop_log(c()).count("showing Head CT") > before and _distance(picture, study_ref) < 12:
                    break
            time.sleep(0.1)
        warm_s, warm_picture = _first_study_frame(frames, study_ref, sample_ref)
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
    r = o.get(_link(hub, pacs), allow_redirects=True, timeout=60)
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
    page = s.get(_link(hub, pacs), timeout=60)
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
