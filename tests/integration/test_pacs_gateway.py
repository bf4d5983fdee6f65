"""The PACS gateway against the real parts: slapd, the hub, its proxy and a
real Orthanc (Debian's, with its DICOMweb plugin) holding DICOM series made
from the MNI template and stored with STOW-RS.

"Open in SlicerHub" links: who may open (LDAP group), which UIDs are refused
and why, and that a good link goes on to the hub's spawn page for the user's
own server (the e2e tier follows it into the desktop). DICOMweb through the
gateway: QIDO and WADO-RS for an allowed person's token, byte-equal pixels,
refusals for everyone else, nothing outside read-only DICOMweb."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, unquote, urlparse

import pytest
import requests
from dicomweb_client.api import DICOMwebClient

from tests.support.hub import Hub, free_port, write_config
from tests.support.pacs import seeded_pacs

pytestmark = pytest.mark.integration

ALLOWED = ("teacher1", "teacher-pw")      # in `teachers`, the PACS group here
REFUSED = ("student1", "student1-pw")     # may log in, not in the PACS group


@pytest.fixture(scope="module")
def pacs():
    with seeded_pacs() as seeded:
        yield seeded


@pytest.fixture(scope="module")
def hub(slapd, pacs, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("hub")
    port = free_port()
    config = write_config(
        workdir / "slicerhub.yaml", slapd.port, port,
        backend={"docker": {"hub_connect_ip": "127.0.0.1"}},
        hub={"pacs_port": free_port()},
        pacs={"dicomweb_url": pacs.orthanc.dicomweb_url, "username": pacs.orthanc.username,
              "password_file": str(pacs.orthanc.password_file), "groups": ["teachers"]},
    )
    with Hub(workdir, config, port) as running:
        yield running


def _signed_in(hub, who) -> requests.Session:
    s, r = hub.login(*who)
    assert r.status_code == 302, r.text
    page = s.get(hub.url + "/services/pacs/", timeout=60)  # the OAuth round trip, then the list
    return s, page


def _audit(hub) -> list[dict]:
    path = hub.workdir / "hub" / "pacs-audit.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_the_study_list_links_every_study_for_an_allowed_person(hub, pacs):
    s, page = _signed_in(hub, ALLOWED)
    assert page.status_code == 200, page.text
    assert f'data-study="{pacs.study}"' in page.text and "Open in Slicer" in page.text
    assert f"/services/pacs/open?study={pacs.study}" in page.text
    assert pacs.orthanc.password not in page.text


def test_a_good_link_goes_on_to_the_users_own_server(hub, pacs):
    s, _ = _signed_in(hub, ALLOWED)
    r = s.get(hub.url + "/services/pacs/open", params={"study": pacs.study, "series": pacs.ct_series},
              allow_redirects=False, timeout=60)
    assert r.status_code == 302, r.text
    target = urlparse(r.headers["Location"])
    assert target.path == "/hub/spawn/teacher1"
    after = urlparse(parse_qs(target.query)["next"][0])
    assert after.path == "/user/teacher1/slicerhub/open"
    assert parse_qs(after.query) == {"study": [pacs.study], "series": [pacs.ct_series]}
    assert {"action": "open", "user": "teacher1", "study": pacs.study} .items() <= _audit(hub)[-1].items()


@pytest.mark.parametrize("query, status, says", [
    ({}, 400, "StudyInstanceUID"),
    ({"study": "1.2.3.04"}, 400, "StudyInstanceUID"),
    ({"study": "1.2.3' OR '1'='1"}, 400, "StudyInstanceUID"),
    ({"study": "1." + "2" * 80}, 400, "StudyInstanceUID"),
    ({"study": "SELF", "series": "../../tools"}, 400, "SeriesInstanceUID"),
    ({"study": "1.2.826.0.1.3680043.8.498.999999"}, 404, "no study"),
    ({"study": "SELF", "series": "1.2.826.0.1.3680043.8.498.999999"}, 404, "no series"),
])
def test_bad_links_are_refused_with_a_reason_and_start_nothing(hub, pacs, query, status, says):
    s, _ = _signed_in(hub, ALLOWED)
    query = {k: (pacs.study if v == "SELF" else v) for k, v in query.items()}
    before = len(_audit(hub))
    r = s.get(hub.url + "/services/pacs/open", params=query, allow_redirects=False, timeout=60)
    assert r.status_code == status, r.text
    assert says in r.text and "Cannot open this study" in r.text  # a page for a person
    assert not [a for a in _audit(hub)[before:] if a["action"] == "open"]
    assert not s.get(hub.url + "/hub/api/user", timeout=30).json().get("servers")


def test_a_person_outside_the_pacs_groups_is_refused(hub, pacs):
    s, page = _signed_in(hub, REFUSED)
    assert page.status_code == 403 and "teachers" in page.text
    r = s.get(hub.url + "/services/pacs/open", params={"study": pacs.study}, allow_redirects=False, timeout=60)
    assert r.status_code == 403
    assert _audit(hub)[-1]["action"] == "refused" and _audit(hub)[-1]["user"] == "student1"


def _token_session(hub, who) -> requests.Session:
    """Requests as WHO with a token that may call the gateway and nothing else (as a server's)."""
    s, _ = hub.login(*who)
    token = hub.api_token(s, scopes=["access:services!service=pacs"])
    session = requests.Session()
    session.headers["Authorization"] = f"token {token}"
    return session


def _dicomweb(hub, who) -> DICOMwebClient:
    return DICOMwebClient(url=hub.url + "/services/pacs/dicom-web", session=_token_session(hub, who))


def test_dicomweb_through_the_gateway_gives_the_series_as_stored(hub, pacs):
    web = _dicomweb(hub, ALLOWED)
    studies = web.search_for_studies(search_filters={"StudyInstanceUID": pacs.study})
    assert [st["0020000D"]["Value"][0] for st in studies] == [pacs.study]
    series = {s_["0020000E"]["Value"][0]: s_["00080060"]["Value"][0]
              for s_ in web.search_for_series(pacs.study)}
    assert series == {pacs.ct_series: "CT", pacs.mr_series: "MR"}
    got = web.retrieve_series(pacs.study, pacs.ct_series)
    sent = {ds.SOPInstanceUID: ds for ds in pacs.ct}
    assert len(got) == len(sent)
    for ds in got:
        assert ds.pixel_array.tobytes() == sent[ds.SOPInstanceUID].pixel_array.tobytes()
        assert list(ds.ImagePositionPatient) == list(sent[ds.SOPInstanceUID].ImagePositionPatient)
    # Streamed through: the audit log has the retrieval, one line.
    assert any(a["action"] == "dicomweb" and a["path"] == f"studies/{pacs.study}/series/{pacs.ct_series}"
               for a in _audit(hub))


def test_dicomweb_refusals(hub, pacs):
    base = hub.url + "/services/pacs/dicom-web/"
    assert requests.get(base + "studies", timeout=30).status_code == 403  # no token
    refused = _dicomweb(hub, REFUSED)
    with pytest.raises(requests.HTTPError) as e:
        refused.search_for_studies()
    assert e.value.response.status_code == 403
    allowed = _token_session(hub, ALLOWED)
    for path in ("tools/find", f"studies/{pacs.study}/../../../system", "studies/1.2.3/rendered",
                 f"studies/{pacs.study}/series/{pacs.ct_series}/instances/0.1/frames/0"):
        r = allowed.get(base + path, timeout=30)
        assert r.status_code == 404, (path, r.status_code)
    for method in ("POST", "PUT", "DELETE"):  # STOW and deletions never pass
        r = allowed.request(method, base + "studies", data=b"x", timeout=30)
        assert r.status_code in (403, 405), (method, r.status_code)
    r = allowed.get(base + "studies/1.2.826.0.1.3680043.8.498.999999/metadata", timeout=30)
    assert r.status_code == 404 and "no such study" in r.json()["message"]
    assert unquote(r.text).find(pacs.orthanc.password) < 0
