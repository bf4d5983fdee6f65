"""Courses with real containers and a real browser: the course folder is
writable for the teacher and read-only for students; a teacher publishes an
app and a student opens it from the gallery, rendered by Voilà in the
student's own server."""

from __future__ import annotations

import json

import nbformat
import pytest
import requests

from tests.support.browser import browser as _browser, hub_login as _browser_login
from tests.support.browser import page_picture as _page_picture, wait_for as _wait
from tests.support.hub import xsrf
from tests.support.spawn import hub_api, server_api, spawn_with_form, wait_ready

pytestmark = pytest.mark.e2e


def _spawned(hub, user, password, profile=None):
    """Logged in, with the user's server running (started here unless it is already)."""
    s, r = hub.login(user, password)
    assert r.status_code == 302, r.text
    token = hub.api_token(s)
    if not hub_api(hub, token, f"/users/{user}").json()["servers"]:
        assert spawn_with_form(hub, s, profile).status_code == 302
        assert wait_ready(hub, s, user)["ready"]
    return s, token


def _put_text(hub, token, user, path, text):
    return server_api(hub, token, user, f"/contents/{path}", "PUT",
                      json={"type": "file", "format": "text", "content": text})


def test_course_folder_teacher_writes_students_read(e2e_hub):
    hub = e2e_hub
    _, teacher = _spawned(hub, "teacher1", "teacher-pw", "standard")
    r = _put_text(hub, teacher, "teacher1", "courses/anat101/shared/syllabus.md", "# Week 1\n")
    assert r.status_code == 201, r.text
    # Published apps are the service's alone: not even the teacher writes there.
    r = _put_text(hub, teacher, "teacher1", "courses/anat101/apps/sneaky.ipynb", "{}")
    assert r.status_code >= 400

    _, student = _spawned(hub, "student1", "student1-pw")
    r = server_api(hub, student, "student1", "/contents/courses/anat101/shared/syllabus.md")
    assert r.status_code == 200 and r.json()["content"] == "# Week 1\n"
    for path in ("courses/anat101/shared/syllabus.md", "courses/anat101/shared/new.md"):
        assert _put_text(hub, student, "student1", path, "changed").status_code >= 400
    assert server_api(hub, student, "student1", "/contents/courses/anat101/shared/syllabus.md",
                      "DELETE").status_code >= 400
    r = server_api(hub, teacher, "teacher1", "/contents/courses/anat101/shared/syllabus.md")
    assert r.json()["content"] == "# Week 1\n"  # unchanged


def test_student_opens_a_published_app_from_the_gallery(e2e_hub):
    hub = e2e_hub
    s, _ = hub.login("teacher1", "teacher-pw")
    token = hub.api_token(s, scopes=["access:services!service=courses"])
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Course app"),
        nbformat.v4.new_code_cell(
            "import ipywidgets as w, getpass, os\n"
            "label = w.Label(f\"running as {os.environ['JUPYTERHUB_USER']}\")\n"
            "label.add_class('who')\n"
            "w.VBox([w.IntSlider(value=3, description='Threshold'), label])"),
    ])
    r = requests.post(hub.url + "/services/courses/api/courses/anat101/apps/hello-app",
                      headers={"Authorization": f"token {token}"}, timeout=30,
                      json={"notebook": json.loads(nbformat.writes(nb)), "title": "Hello app",
                            "description": "Runs in your own server"})
    assert r.status_code == 201, r.text

    driver = _browser()
    try:
        _browser_login(driver, hub, "student1", "student1-pw")
        driver.get(hub.url + "/services/courses/")
        link = _wait(lambda: driver.find_elements("css selector", '[data-app="hello-app"] a.open'), 30,
                     what="the app in the gallery")
        _page_picture(driver, "course-gallery.png")
        link[0].click()
        _wait(lambda: "/user/student1/voila/render/courses/anat101/apps/hello-app/v1/" in driver.current_url,
              60, what="Voilà in the student's own server")
        who = _wait(lambda: [e.text for e in driver.find_elements("css selector", ".who") if e.text], 120, 1,
                    "the app's widgets")
        assert who == ["running as student1"]  # the student's kernel, not the teacher's
        assert driver.find_elements("css selector", ".widget-slider")
        _page_picture(driver, "course-app-voila.png")
    finally:
        driver.quit()


def test_teacher_publishes_from_jupyterlab(e2e_hub):
    """JupyterLab's File menu has "Publish to a Course…"; the page it opens takes
    the notebook from the teacher's own server (read with the teacher's token)."""
    hub = e2e_hub
    s, token = _spawned(hub, "teacher1", "teacher-pw", "standard")
    server_api(hub, token, "teacher1", "/contents/labs", "PUT", json={"type": "directory"})
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import ipywidgets as w\nw.Label('brain lab')")])
    r = server_api(hub, token, "teacher1", "/contents/labs/Brain-Lab.ipynb", "PUT",
                   json={"type": "notebook", "content": json.loads(nbformat.writes(nb))})
    assert r.status_code in (200, 201), r.text

    driver = _browser()
    try:
        _browser_login(driver, hub, "teacher1", "teacher-pw")
        driver.get(hub.url + "/user/teacher1/lab")
        file_menu = _wait(lambda: [e for e in driver.find_elements("css selector", ".lm-MenuBar-itemLabel")
                                   if e.text == "File"], 120, what="JupyterLab's menu bar")
        file_menu[0].click()
        item = _wait(lambda: [e for e in driver.find_elements("css selector", ".lm-Menu-itemLabel")
                              if e.text == "Publish to a Course…"], 30, what="the publish item in File")
        assert [e for e in driver.find_elements("css selector", ".lm-Menu-itemLabel")
                if e.text == "Share Session Read-Only…"]
        _page_picture(driver, "jupyterlab-file-menu.png")
        item[0].click()
        _wait(lambda: len(driver.window_handles) > 1, 30, what="the publish page in a new tab")
        driver.switch_to.window(driver.window_handles[-1])
        _wait(lambda: driver.find_elements("id", "publish"), 60, what="the publish form")
        driver.find_element("name", "path").send_keys("labs/Brain-Lab.ipynb")
        driver.find_element("name", "title").send_keys("Brain lab")
        driver.find_element("id", "publish").click()
        done = _wait(lambda: driver.find_elements("css selector", ".done"), 60, what="the publish result")
        assert "anat101/brain-lab" in done[0].text and "version 1" in done[0].text
        _page_picture(driver, "course-publish-from-jupyterlab.png")
    finally:
        driver.quit()

    # The students see it; bad input is refused with a clear message and publishes nothing.
    st, _ = hub.login("student1", "student1-pw")
    student = hub.api_token(st, scopes=["access:services!service=courses"])
    r = requests.get(hub.url + "/services/courses/api/courses", timeout=30,
                     headers={"Authorization": f"token {student}"})
    apps = {a["name"]: a for c in r.json()["courses"] for a in c["apps"]}
    assert apps["brain-lab"]["title"] == "Brain lab"
    page = s.get(hub.url + "/services/courses/publish", timeout=60)
    assert page.status_code == 200, page.text[:300]
    form = {"_xsrf": xsrf(s, "/services/courses/"), "course": "anat101", "title": "x"}
    for path, status in (("../etc/passwd.ipynb", 400), ("notes.txt", 400), ("labs/missing.ipynb", 404)):
        r = s.post(hub.url + "/services/courses/publish", data={**form, "path": path}, timeout=60)
        assert r.status_code == status, (path, r.status_code, r.text[:300])
    r = s.post(hub.url + "/services/courses/publish", data={**form, "path": "labs/Brain-Lab.ipynb",
                                                           "_xsrf": "forged"}, timeout=60, allow_redirects=False)
    assert r.status_code in (302, 403)  # no cookie login without the xsrf token
    assert st.get(hub.url + "/services/courses/publish", timeout=60).status_code == 403
