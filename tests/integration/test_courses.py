"""The courses service against the real hub and LDAP: teachers publish (REST
and the `slicerhub apps` CLI), members see their own courses' apps only, links
open the app in the caller's own server, bad input and outsiders are refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import nbformat
import pytest
import requests


API = "/services/courses/api/courses"


def notebook(marker: str) -> dict:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(f"print({marker!r})")])
    return json.loads(nbformat.writes(nb))


@pytest.fixture(scope="module")
def tokens(hub):
    out = {}
    for user, password in (("teacher1", "teacher-pw"), ("student1", "student1-pw"), ("student2", "student2-pw")):
        s, r = hub.login(user, password)
        assert r.status_code == 302, r.text
        # What a teacher picks on the hub's token page to use the CLI.
        out[user] = (s, hub.api_token(s, scopes=["access:services!service=courses"]))
    return out


def api(hub, token, method, path="", **kw):
    return requests.request(method, hub.url + API + path, headers={"Authorization": f"token {token}"},
                            timeout=30, **kw)


def cli(hub, token, *args):
    env = {**os.environ, "JUPYTERHUB_URL": hub.url, "JUPYTERHUB_API_TOKEN": token}
    return subprocess.run([sys.executable, "-m", "slicerhub.cli", "apps", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def test_teacher_publishes_with_the_cli_and_republishes(hub, tokens, tmp_path):
    _, token = tokens["teacher1"]
    path = tmp_path / "seg-lab.ipynb"
    path.write_text(json.dumps(notebook("one")))
    thumb = tmp_path / "t.png"
    thumb.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 32)
    out = cli(hub, token, "publish", "anat101", str(path), "--title", "Segmentation lab",
              "--description", "Threshold a brain", "--thumbnail", str(thumb))
    assert out.returncode == 0 and "published anat101/seg-lab version 1" in out.stdout, out
    path.write_text(json.dumps(notebook("two")))
    out = cli(hub, token, "publish", "anat101", str(path))
    assert out.returncode == 0 and "version 2" in out.stdout, out

    courses = api(hub, token, "GET").json()["courses"]
    (anat,) = courses
    assert anat["name"] == "anat101" and anat["teacher"] is True
    (app,) = anat["apps"]
    assert app["title"] == "Segmentation lab" and app["latest"] == 2
    assert [v["published_by"] for v in app["versions"]] == ["teacher1", "teacher1"]
    audit = (hub.workdir / "hub" / "courses-audit.log").read_text().splitlines()
    assert [json.loads(line)["version"] for line in audit if '"publish"' in line][-2:] == [1, 2]


def test_members_see_their_courses_only(hub, tokens):
    courses = api(hub, tokens["student1"][1], "GET").json()["courses"]
    assert [c["name"] for c in courses] == ["anat101"] and courses[0]["teacher"] is False
    assert [a["name"] for a in courses[0]["apps"]] == ["seg-lab"]
    # student2 is not in anat101: no course, and the app is "not found", not "forbidden".
    assert api(hub, tokens["student2"][1], "GET").json()["courses"] == []
    s2 = requests.get(hub.url + "/services/courses/open/anat101/seg-lab",
                      headers={"Authorization": f"token {tokens['student2'][1]}"},
                      allow_redirects=False, timeout=30)
    assert s2.status_code == 404


def test_open_goes_to_voila_in_the_callers_own_server(hub, tokens):
    r = requests.get(hub.url + "/services/courses/open/anat101/seg-lab",
                     headers={"Authorization": f"token {tokens['student1'][1]}"}, allow_redirects=False, timeout=30)
    assert r.status_code == 302
    assert r.headers["Location"] == "/hub/user-redirect/voila/render/courses/anat101/apps/seg-lab/v2/seg-lab.ipynb"
    r = requests.get(hub.url + "/services/courses/open/anat101/seg-lab?version=1",
                     headers={"Authorization": f"token {tokens['student1'][1]}"}, allow_redirects=False, timeout=30)
    assert r.headers["Location"].endswith("/apps/seg-lab/v1/seg-lab.ipynb")


def test_gallery_page_through_the_hub_login(hub, tokens):
    s, _ = tokens["student1"]
    page = s.get(hub.url + "/services/courses/", timeout=30)  # OAuth with the hub, then the page
    assert page.status_code == 200, page.text[:300]
    assert 'data-course="anat101"' in page.text and "Segmentation lab" in page.text
    assert "/services/courses/open/anat101/seg-lab" in page.text
    thumb = s.get(hub.url + "/services/courses/thumbnail/anat101/seg-lab/1", timeout=30)
    assert thumb.status_code == 200 and thumb.content.startswith(b"\x89PNG")
    s2, _ = tokens["student2"]
    other = s2.get(hub.url + "/services/courses/", timeout=30)
    assert other.status_code == 200 and "anat101" not in other.text
    assert s2.get(hub.url + "/services/courses/thumbnail/anat101/seg-lab/1", timeout=30).status_code == 404


def test_students_and_outsiders_cannot_publish(hub, tokens):
    body = {"notebook": notebook("evil"), "title": "Evil"}
    assert api(hub, tokens["student1"][1], "POST", "/anat101/apps/seg-lab", json=body).status_code == 403
    assert api(hub, tokens["student2"][1], "POST", "/anat101/apps/seg-lab", json=body).status_code == 404
    # The browser cookie alone never publishes (no cross-site publishing).
    s, _ = tokens["teacher1"]
    s.get(hub.url + "/services/courses/", timeout=30)
    r = s.post(hub.url + API + "/anat101/apps/seg-lab", json=body, timeout=30)
    assert r.status_code == 403 and "token" in r.json()["message"]
    r = requests.post(hub.url + API + "/anat101/apps/seg-lab", json=body, timeout=30)
    assert r.status_code in (302, 403)
    latest = api(hub, tokens["teacher1"][1], "GET").json()["courses"][0]["apps"][0]["latest"]
    assert latest == 2


@pytest.mark.parametrize(("path", "body", "status", "message"), [
    ("/anat101/apps/Seg_Lab", {"notebook": notebook("x"), "title": "T"}, 400, "not allowed"),
    ("/anat101/apps/..", {"notebook": notebook("x"), "title": "T"}, 404, None),
    ("/anat101/apps/%2e%2e%2fetc", {"notebook": notebook("x"), "title": "T"}, 400, "not allowed"),
    ("/anat101/apps/new-app", {"notebook": notebook("x")}, 400, "needs a title"),
    ("/anat101/apps/new-app", {"notebook": "{not json", "title": "T"}, 400, "not a valid Jupyter notebook"),
    ("/anat101/apps/new-app", {"title": "T"}, 400, "needs 'notebook'"),
    ("/nosuch/apps/new-app", {"notebook": notebook("x"), "title": "T"}, 404, None),
])
def test_bad_publications_are_refused_clearly(hub, tokens, path, body, status, message):
    r = api(hub, tokens["teacher1"][1], "POST", path, json=body)
    assert r.status_code == status, r.text
    if message:
        assert message in r.json()["message"]
    apps = api(hub, tokens["teacher1"][1], "GET").json()["courses"][0]["apps"]
    assert [a["name"] for a in apps] == ["seg-lab"]  # nothing new appeared


def test_unpublish_hides_from_students_not_from_teachers(hub, tokens):
    out = cli(hub, tokens["teacher1"][1], "unpublish", "anat101", "seg-lab")
    assert out.returncode == 0, out
    assert api(hub, tokens["student1"][1], "GET").json()["courses"][0]["apps"] == []
    r = requests.get(hub.url + "/services/courses/open/anat101/seg-lab",
                     headers={"Authorization": f"token {tokens['student1'][1]}"}, allow_redirects=False, timeout=30)
    assert r.status_code == 404
    (app,) = api(hub, tokens["teacher1"][1], "GET").json()["courses"][0]["apps"]
    assert app["hidden"] is True
    assert cli(hub, tokens["teacher1"][1], "republish", "anat101", "seg-lab").returncode == 0
    assert len(api(hub, tokens["student1"][1], "GET").json()["courses"][0]["apps"]) == 1


def test_cli_reports_errors_without_a_traceback(hub, tokens, tmp_path):
    out = cli(hub, tokens["student1"][1], "publish", "anat101", str(tmp_path / "missing.ipynb"), "--title", "x")
    assert out.returncode != 0 and "cannot read" in out.stderr and "Traceback" not in out.stderr
    path = tmp_path / "lab.ipynb"
    path.write_text(json.dumps(notebook("x")))
    out = cli(hub, tokens["student1"][1], "publish", "anat101", str(path), "--title", "x")
    assert out.returncode != 0 and "403" in out.stderr and "only teachers" in out.stderr
