"""Courses with real containers and a real browser: the course folder is
writable for the teacher and read-only for students; a teacher publishes an
app and a student opens it from the gallery, rendered by Voilà in the
student's own server."""

from __future__ import annotations

import json

import nbformat
import pytest
import requests
from PIL import Image

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


def _lab_notebook(hub, token, user, path, text):
    folder = path.rsplit("/", 1)[0]
    server_api(hub, token, user, f"/contents/{folder}", "PUT", json={"type": "directory"})
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(text)], metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}})
    r = server_api(hub, token, user, f"/contents/{path}", "PUT",
                   json={"type": "notebook", "content": json.loads(nbformat.writes(nb))})
    assert r.status_code in (200, 201), r.text


def _settled(find):
    """FIND(), or nothing while JupyterLab re-renders what it found (a stale element)."""
    from selenium.common.exceptions import StaleElementReferenceException

    def attempt():
        try:
            return find()
        except StaleElementReferenceException:
            return []
    return attempt


def _menu_item(driver, label, what):
    return _wait(_settled(lambda: [e for e in driver.find_elements("css selector", ".lm-Menu-itemLabel")
                                   if e.text == label]), 30, what=what)


def _publish_dialog_from_the_file_browser(driver, hub, user, folder, file_name):
    """JupyterLab at FOLDER; right-click FILE_NAME -> Publish to a Course…; the dialog."""
    from selenium.webdriver.common.action_chains import ActionChains

    driver.get(f"{hub.url}/user/{user}/lab/tree/{folder}")
    item = _wait(_settled(lambda: [e for e in driver.find_elements("css selector", ".jp-DirListing-item")
                                   if e.get_attribute("title") and file_name in e.text]), 120,
                 what=f"{file_name} in the file browser")
    ActionChains(driver).context_click(item[0]).perform()
    _menu_item(driver, "Publish to a Course…", "the publish item in the file browser's menu")[0].click()
    return _wait(lambda: driver.find_elements("css selector", ".jp-SlicerHubPublishDialog"), 30,
                 what="the publish dialog")[0]


def _field(dialog, name):
    return dialog.find_element("css selector", f"[name={name}]")


def test_teacher_publishes_from_jupyterlab(e2e_hub, tmp_path):
    """JupyterLab's "Publish to a Course…" (File menu, the file browser's context
    menu): a dialog that publishes the notebook through the teacher's own server
    and shows the version; the course's students then see the app."""
    hub = e2e_hub
    _, token = _spawned(hub, "teacher1", "teacher-pw", "standard")
    _lab_notebook(hub, token, "teacher1", "labs/Brain-Lab.ipynb", "import ipywidgets as w\nw.Label('brain lab')")
    thumbnail = tmp_path / "thumb.png"
    Image.new("RGB", (64, 48), (30, 90, 160)).save(thumbnail)

    driver = _browser()
    try:
        _browser_login(driver, hub, "teacher1", "teacher-pw")
        # The open notebook, from the File menu (next to sharing and the gallery).
        driver.get(hub.url + "/user/teacher1/lab/tree/labs/Brain-Lab.ipynb")
        _wait(lambda: driver.find_elements("css selector", ".jp-NotebookPanel .jp-Cell"), 120,
              what="the notebook open in JupyterLab")
        file_menu = _wait(_settled(lambda: [e for e in driver.find_elements("css selector", ".lm-MenuBar-itemLabel")
                                            if e.text == "File"]), 60, what="JupyterLab's menu bar")
        file_menu[0].click()
        item = _menu_item(driver, "Publish to a Course…", "the publish item in File")
        labels = [e.text for e in driver.find_elements("css selector", ".lm-Menu-itemLabel")]
        assert "Share Session…" in labels and "Desktop Guests…" in labels
        _page_picture(driver, "jupyterlab-file-menu.png")
        item[0].click()
        dialog = _wait(lambda: driver.find_elements("css selector", ".jp-SlicerHubPublishDialog"), 30,
                       what="the publish dialog")[0]
        assert "labs/Brain-Lab.ipynb" in dialog.text
        dialog.find_element("css selector", ".jp-Dialog-button.jp-mod-reject").click()
        _wait(lambda: not driver.find_elements("css selector", ".jp-SlicerHubPublishDialog"), 30,
              what="the dialog closed")

        # The file browser's context menu on the notebook; fill and publish.
        dialog = _publish_dialog_from_the_file_browser(driver, hub, "teacher1", "labs", "Brain-Lab.ipynb")
        _wait(_settled(lambda: [o for o in dialog.find_elements("css selector", "select[name=course] option")
                                if o.get_attribute("value") == "anat101"]), 60, what="the courses teacher1 teaches")
        assert _field(dialog, "name").get_attribute("value") == "brain-lab"  # from the file name
        _field(dialog, "title").clear()
        _field(dialog, "title").send_keys("Brain lab")
        _field(dialog, "description").send_keys("Segment the ventricles")
        _field(dialog, "thumbnail").send_keys(str(thumbnail))
        _page_picture(driver, "publish-dialog.png")
        dialog.find_element("css selector", ".jp-Dialog-button.jp-mod-accept").click()
        done = _wait(_settled(lambda: [e for e in dialog.find_elements("css selector", ".jp-SlicerHubPublish-done")
                                       if e.text]), 60, what="the publish result in the dialog")
        assert "Published anat101/brain-lab version 1" in done[0].text, done[0].text
        gallery = done[0].find_element("css selector", "a").get_attribute("href")
        assert gallery == hub.url + "/services/courses/"
        _page_picture(driver, "publish-dialog-published.png")
        # Again: a new version of the same app, and the dialog stays open for it.
        dialog.find_element("css selector", ".jp-Dialog-button.jp-mod-accept").click()
        _wait(_settled(lambda: "version 2" in dialog.find_element("css selector", ".jp-SlicerHubPublish-status").text),
              60, what="version 2")
        # The published app is on the home page, in its course.
        driver.get(hub.url + "/hub/home")
        card = _wait(lambda: driver.find_elements("css selector", '[data-course="anat101"] [data-app="brain-lab"]'),
                     60, what="the app on the home page")[0]
        assert "Brain lab" in card.text and card.find_elements("css selector", "img.app-thumb")
    finally:
        driver.quit()

    # The students see it, with its title, description and thumbnail.
    st, _ = hub.login("student1", "student1-pw")
    student = hub.api_token(st, scopes=["access:services!service=courses"])
    r = requests.get(hub.url + "/services/courses/api/courses", timeout=30,
                     headers={"Authorization": f"token {student}"})
    apps = {a["name"]: a for c in r.json()["courses"] for a in c["apps"]}
    app = apps["brain-lab"]
    assert (app["title"], app["description"], app["latest"]) == ("Brain lab", "Segment the ventricles", 2)
    assert app["thumbnail_url"]
    picture = requests.get(hub.url + app["thumbnail_url"], timeout=30, headers={"Authorization": f"token {student}"})
    assert picture.status_code == 200 and picture.content.startswith(b"\x89PNG")


def test_a_student_cannot_publish_from_jupyterlab(e2e_hub):
    """Not a teacher: the dialog says so, and the server's route refuses with the service's reason."""
    hub = e2e_hub
    _, token = _spawned(hub, "student1", "student1-pw")
    _lab_notebook(hub, token, "student1", "mine/Homework.ipynb", "print('hi')")

    driver = _browser()
    try:
        _browser_login(driver, hub, "student1", "student1-pw")
        dialog = _publish_dialog_from_the_file_browser(driver, hub, "student1", "mine", "Homework.ipynb")
        error = _wait(_settled(lambda: [e for e in dialog.find_elements("css selector", ".jp-SlicerHubPublish-error")
                                        if e.text]), 60, what="the dialog's refusal")
        assert "only teachers of a course can publish" in error[0].text
        _page_picture(driver, "publish-dialog-student.png")
        dialog.find_element("css selector", ".jp-Dialog-button.jp-mod-accept").click()
        _wait(lambda: "Choose a course you teach" in dialog.text, 30, what="no course to publish to")
    finally:
        driver.quit()

    # Straight to the route: the courses service's own refusal comes back.
    r = requests.post(f"{hub.url}/user/student1/slicerhub/publish", timeout=60,
                      headers={"Authorization": f"token {token}"},
                      json={"path": "mine/Homework.ipynb", "course": "anat101", "title": "x"})
    assert r.status_code == 403, r.text
    assert "only teachers of 'anat101' can publish to it" in r.json()["message"]
    r = requests.get(f"{hub.url}/user/student1/slicerhub/courses", timeout=60,
                     headers={"Authorization": f"token {token}"})
    assert r.status_code == 200 and r.json()["courses"] == [{"name": "anat101", "teacher": False}], r.text
    st, _ = hub.login("student1", "student1-pw")
    assert st.get(hub.url + "/services/courses/publish", timeout=60).status_code == 403


def test_the_publish_form_refuses_bad_input(e2e_hub):
    """The service's own form (/services/courses/publish) still checks what it is given."""
    hub = e2e_hub
    s, token = _spawned(hub, "teacher1", "teacher-pw", "standard")
    _lab_notebook(hub, token, "teacher1", "labs/Brain-Lab.ipynb", "print(1)")
    page = s.get(hub.url + "/services/courses/publish", timeout=60)
    assert page.status_code == 200, page.text[:300]
    form = {"_xsrf": xsrf(s, "/services/courses/"), "course": "anat101", "title": "x"}
    for path, status in (("../etc/passwd.ipynb", 400), ("notes.txt", 400), ("labs/missing.ipynb", 404)):
        r = s.post(hub.url + "/services/courses/publish", data={**form, "path": path}, timeout=60)
        assert r.status_code == status, (path, r.status_code, r.text[:300])
    r = s.post(hub.url + "/services/courses/publish", data={**form, "path": "labs/Brain-Lab.ipynb",
                                                           "_xsrf": "forged"}, timeout=60, allow_redirects=False)
    assert r.status_code in (302, 403)  # no cookie login without the xsrf token
