"""The PACS gateway against the real parts: slapd, the hub, its proxy and a
real Orthanc (Debian's, with its DICOMweb plugin) holding DICOM series made
from the MNI template and stored with STOW-RS.

"Open in SlicerHub" links: who may open (LDAP group), which UIDs are refused
and why, the page that names the patient, and that its button (only it)
makes a one-time ticket and goes on to the hub's spawn page for the user's
own server (the e2e tier follows it into the desktop). DICOMweb through the
gateway: QIDO and WADO-RS for an allowed person's token, byte-equal pixels,
refusals for everyone else (a browser cookie included), nothing outside
read-only DICOMweb and QIDO's own query keys."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, unquote, urlparse

import pytest
import requests
from dicomweb_client.api import DICOMwebClient

from tests.support.hub import Hub, free_port, write_config
from tests.support.pacs import pacs_section, seeded_pacs

pytestmark = pytest.mark.integration

ALLOWED = ("teacher1", "teacher-pw")      # in `teachers`, a PACS group here
OTHER = ("admin1", "admin-pw")            # in `slicerhub-admins`, the other PACS group
REFUSED = ("student1", "student1-pw")     # may log in, not in the PACS groups


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
        pacs=pacs_section(pacs, ["teachers", "slicerhub-admins"]),
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


def _confirmed(hub, s, params) -> requests.Response:
    """The link's page, then its button (with the page's xsrf token)."""
    page = s.get(hub.url + "/services/pacs/open", params=params, timeout=60)
    assert page.status_code == 200, page.text
    form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text))
    return s.post(hub.url + "/services/pacs/open", data=form, allow_redirects=False, timeout=60)


def _ticket(response) -> str:
    target = urlparse(response.headers["Location"])
    after = urlparse(parse_qs(target.query)["next"][0])
    return parse_qs(after.query)["ticket"][0]


def test_a_good_link_names_the_patient_and_its_button_goes_on_to_the_users_own_server(hub, pacs):
    s, _ = _signed_in(hub, ALLOWED)
    page = s.get(hub.url + "/services/pacs/open", params={"study": pacs.study, "series": pacs.ct_series},
                 timeout=60)
    assert page.status_code == 200
    assert "Open this study in Slicer?" in page.text and 'id="open-study"' in page.text
    patient = str(pacs.ct[0].PatientName)
    assert patient in page.text and str(pacs.ct[0].PatientID) in page.text
    assert "Head CT (upper)" in page.text and "T1 MR" not in page.text  # the one series asked for
    before = len(_audit(hub))
    r = _confirmed(hub, s, {"study": pacs.study, "series": pacs.ct_series})
    assert r.status_code == 302, r.text
    target = urlparse(r.headers["Location"])
    assert target.path == "/hub/spawn/teacher1"
    after = urlparse(parse_qs(target.query)["next"][0])
    assert after.path == "/user/teacher1/slicerhub/open"
    assert set(parse_qs(after.query)) == {"ticket"}  # the study travels in the ticket only
    assert {"action": "open", "user": "teacher1", "study": pacs.study}.items() <= _audit(hub)[-1].items()
    assert len(_audit(hub)) == before + 1  # the page itself opened nothing


def test_the_button_needs_the_pages_xsrf_token(hub, pacs):
    s, _ = _signed_in(hub, ALLOWED)
    r = s.post(hub.url + "/services/pacs/open", data={"study": pacs.study}, allow_redirects=False, timeout=60)
    assert r.status_code in (302, 403) and "/hub/spawn" not in r.headers.get("Location", "")


def test_a_ticket_is_claimed_once_by_its_owners_server_only(hub, pacs):
    s, _ = _signed_in(hub, ALLOWED)
    ticket = _ticket(_confirmed(hub, s, {"study": pacs.study}))
    url = f"{hub.url}/services/pacs/api/tickets/{ticket}"
    # A browser cookie cannot claim it (a page on the hub's origin could otherwise).
    assert s.post(url, timeout=30).status_code == 403
    assert _token_session(hub, OTHER).post(url, timeout=30).status_code == 404  # someone else's
    owner = _token_session(hub, ALLOWED)
    r = owner.post(url, timeout=30)
    assert r.status_code == 200 and r.json() == {"study": pacs.study, "series": None}
    assert owner.post(url, timeout=30).status_code == 404  # once
    assert owner.post(f"{hub.url}/services/pacs/api/tickets/{'x' * 32}", timeout=30).status_code == 404


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
    # An allowed person's browser login is not enough: a page on the hub's origin could use it.
    browser, _ = _signed_in(hub, ALLOWED)
    for mode in ("cors", "navigate"):
        r = browser.get(base + "studies", headers={"Sec-Fetch-Mode": mode, "Sec-Fetch-Site": "same-origin"},
                        allow_redirects=False, timeout=30)
        assert r.status_code in (302, 403), (mode, r.status_code)
        assert pacs.study not in r.text
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
    for query in ("token=abc", "limit=100000", "limit=-1", "x=1", "PatientName", "offset=a"):
        r = allowed.get(base + "studies?" + query, timeout=30)
        assert r.status_code == 400, (query, r.status_code)
    assert allowed.get(base + "studies?PatientID=SLH-0001&limit=5&includefield=StudyDescription",
                       timeout=30).status_code == 200
    r = allowed.get(base + "studies/1.2.826.0.1.3680043.8.498.999999/metadata", timeout=30)
    assert r.status_code == 404 and "no such study" in r.json()["message"]
    assert unquote(r.text).find(pacs.orthanc.password) < 0


def test_searches_do_not_tell_servers_where_the_pacs_is(hub, pacs):
    # Orthanc puts its own address in every QIDO answer (RetrieveURL, 0008,1190).
    direct = pacs.orthanc.get(f"/dicom-web/studies?StudyInstanceUID={pacs.study}").json()
    assert pacs.orthanc.url in direct[0]["00081190"]["Value"][0]
    allowed = _token_session(hub, ALLOWED)
    base = hub.url + "/services/pacs/dicom-web/"
    for path in (f"studies?StudyInstanceUID={pacs.study}", f"studies/{pacs.study}/series",
                 f"studies/{pacs.study}/series/{pacs.ct_series}/instances?limit=3"):
        r = allowed.get(base + path, timeout=30)
        assert r.status_code == 200, (path, r.status_code)
        assert r.headers["Content-Type"].startswith("application/dicom+json")
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        items = r.json()
        assert items and all("00081190" not in item and "0040E010" not in item for item in items), path
        assert pacs.orthanc.url not in r.text and f":{pacs.orthanc.port}" not in r.text
        assert all("0020000D" in item for item in items)  # the rest of each answer is there
    # No match: 204 or an empty list, as the PACS said it.
    r = allowed.get(base + "studies?PatientID=NOBODY", timeout=30)
    assert r.status_code in (200, 204) and (r.status_code == 204 or r.json() == [])
