"""SlicerHub's pages as a student, a teacher and an admin see them, in headless
Chromium through the real hub, LDAP and Docker: the home page's sections and
actions (start, stop, open an app, join), the services' pages in the hub's
frame, errors shown in a page, and axe-core on every page (no violation of
impact serious or critical, light and dark). Screenshots are kept under
artifacts/screenshots/ (docs/user-guide.md shows them)."""

from __future__ import annotations

import json

import nbformat
import pytest
import requests

from tests.support.browser import accessibility_problems, browser, hub_login, page_picture, wait_for
from tests.support.spawn import hub_api, spawn_with_form, stop_server, wait_ready

pytestmark = pytest.mark.e2e

APP = "brain-lab"


def _sign_in(driver, hub, user, password, next_url="/hub/home"):
    hub_login(driver, hub, user, password, next_url)


def _checked(driver, picture: str, dark: bool = True):
    """Screenshot, then axe: the page as a person sees it must pass."""
    page_picture(driver, picture)
    problems = accessibility_problems(driver, dark=dark)
    if dark:  # accessibility_problems leaves the page dark
        page_picture(driver, picture.replace(".png", "-dark.png"))
    assert not problems, f"{driver.current_url}:\n" + "\n".join(problems)


def _loaded(driver, box_id):
    """The home page's section BOX_ID once its service data is in (or its error)."""
    def ready():
        box = driver.find_elements("id", box_id)
        return box and "Loading" not in box[0].text and box[0].text
    wait_for(ready, 60, what=f"#{box_id} loaded")
    return driver.find_element("id", box_id)


def _publish(hub):
    s, _ = hub.login("teacher1", "teacher-pw")
    token = hub.api_token(s, scopes=["access:services!service=courses"])
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import ipywidgets as w\nw.Label('brain lab')")])
    r = requests.post(f"{hub.url}/services/courses/api/courses/anat101/apps/{APP}",
                      headers={"Authorization": f"token {token}"}, timeout=30,
                      json={"notebook": json.loads(nbformat.writes(nb)), "title": "Brain lab",
                            "description": "Segment the ventricles"})
    assert r.status_code == 201, r.text


@pytest.fixture(scope="module")
def hub(e2e_hub):
    _publish(e2e_hub)
    return e2e_hub


@pytest.fixture
def driver():
    d = browser()
    yield d
    d.quit()


def test_login_page(hub, driver):
    driver.get(hub.url + "/hub/login")
    assert "SlicerHub" in driver.title
    assert driver.find_element("css selector", ".slicerhub-brand").text == "SlicerHub"
    _checked(driver, "page-login.png")


def test_a_student_outside_every_course_starts_and_stops_from_home(hub, driver):
    _sign_in(driver, hub, "student2", "student2-pw")
    assert driver.find_element("id", "server-state").text == "Not running"
    courses = _loaded(driver, "courses")
    assert "You are not in any course yet" in courses.text
    assert "No active links." in _loaded(driver, "share-links").text
    assert not driver.find_elements("id", "admin-section") and not driver.find_elements("id", "nav-admin")
    assert driver.find_element("id", "nav-home").get_attribute("aria-current") == "page"
    _checked(driver, "home-student-new.png")

    # Start: the spawn page (one profile: no form), then the server; back home it runs.
    driver.find_element("id", "start").click()
    wait_for(lambda: "/user/student2/" in driver.current_url, 180, what="student2's server")
    driver.get(hub.url + "/hub/home")
    assert driver.find_element("id", "server-state").text == "Running"
    links = {e.get_attribute("id"): e.get_attribute("href")
             for e in driver.find_elements("css selector", "#server-card a")}
    base = f"{hub.url}/user/student2/"
    assert links == {"open-lab": base + "lab", "open-desktop": base + "desktop/",
                     "open-slicer-web": base + "slicer-web/"}
    _checked(driver, "home-student-running.png", dark=False)
    # JupyterLab opens from its link (the desktop and Slicer Web: tests/e2e/test_slicer_desktop.py).
    driver.find_element("id", "open-lab").click()
    wait_for(lambda: driver.find_elements("css selector", "#jp-main-dock-panel"), 180, what="JupyterLab")
    driver.get(hub.url + "/hub/home")

    driver.find_element("id", "stop").click()
    wait_for(lambda: driver.find_elements("id", "start"), 120, what="the server stopped, Start again")
    assert driver.find_element("id", "server-state").text == "Not running"
    token = hub.api_token(hub.login("admin1", "admin-pw")[0])
    assert not hub_api(hub, token, "/users/student2").json()["servers"]


def test_a_student_sees_their_course_and_opens_its_app(hub, driver):
    _sign_in(driver, hub, "student1", "student1-pw")
    course = _loaded(driver, "courses").find_element("css selector", '[data-course="anat101"]')
    card = course.find_element("css selector", f'[data-app="{APP}"]')
    assert "Brain lab" in card.text and "Segment the ventricles" in card.text
    assert not course.find_elements("css selector", ".students")  # not a teacher
    _checked(driver, "home-student.png")
    card.find_element("css selector", "a.open").click()
    wait_for(lambda: f"/user/student1/voila/render/courses/anat101/apps/{APP}/" in driver.current_url, 180,
             what="the app in Voilà in the student's own server")

    # The gallery: the same course and app, in the hub's frame.
    driver.get(hub.url + "/services/courses/")
    wait_for(lambda: driver.find_elements("css selector", f'[data-app="{APP}"] a.open'), 30, what="the gallery")
    assert driver.find_element("id", "nav-courses").get_attribute("aria-current") == "page"
    assert driver.find_element("css selector", ".slicerhub-brand").text == "SlicerHub"
    _checked(driver, "gallery-student.png")

    # A page that does not exist: the hub's frame, a heading and the reason, not JSON.
    driver.get(hub.url + "/services/courses/no-such-page")
    assert driver.find_element("css selector", "h1").text.startswith("404")
    assert "{" not in driver.find_element("tag name", "main").text
    _checked(driver, "error-404.png", dark=False)
    # The publish form refuses a student, in a page.
    driver.get(hub.url + "/services/courses/publish")
    assert driver.find_element("css selector", "h1").text.startswith("403")
    assert "teachers" in driver.find_element("tag name", "main").text


def test_a_teacher_sees_students_and_joins_one(hub, driver):
    student = hub.login("student1", "student1-pw")[0]
    token = hub.api_token(student)
    if not hub_api(hub, token, "/users/student1").json()["servers"]:
        assert spawn_with_form(hub, student).status_code == 302
        assert wait_ready(hub, student, "student1")["ready"]

    hub.login("mover", "mover-pw")  # a student the hub knows (signed in once), with no server
    _sign_in(driver, hub, "teacher1", "teacher-pw")
    course = _loaded(driver, "courses").find_element("css selector", '[data-course="anat101"]')
    assert "teacher" in course.find_element("css selector", ".badge").text
    wait_for(lambda: course.find_elements("css selector", 'tr[data-student="student1"]'), 60,
             what="student1 in the students' table")
    row = course.find_element("css selector", 'tr[data-student="student1"]')
    assert "running" in row.text
    stopped = course.find_elements("css selector", 'tr[data-student="mover"]')
    assert stopped and "not running" in stopped[0].text and not stopped[0].find_elements("tag name", "button")
    _checked(driver, "home-teacher.png")

    # The publish form (the JupyterLab dialog's fallback) and the sharing page.
    driver.get(hub.url + "/services/courses/publish")
    assert driver.find_element("id", "publish")
    _checked(driver, "publish-form.png", dark=False)
    driver.get(hub.url + "/services/sharing/")
    assert driver.find_element("id", "nav-sharing").get_attribute("aria-current") == "page"
    _checked(driver, "sharing-page.png")
    driver.get(hub.url + "/services/sharing/course/anat101")
    wait_for(lambda: driver.find_elements("css selector", '[data-student="student1"]'), 30,
             what="the course's students page")
    _checked(driver, "course-students.png", dark=False)

    # Join from the home page: a read-only view of the student's server.
    driver.get(hub.url + "/hub/home")
    course = _loaded(driver, "courses").find_element("css selector", '[data-course="anat101"]')
    join = wait_for(lambda: course.find_elements("css selector", 'tr[data-student="student1"] button'), 60,
                    what="the Join button")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", join[0])
    page_picture(driver, "home-teacher-students.png")
    driver.execute_script("arguments[0].click()", join[0])
    wait_for(lambda: "/services/sharing/view/" in driver.current_url, 60, what="the join's view page")
    assert "read-only" in driver.find_element("id", "shared-view").text
    _checked(driver, "shared-view.png", dark=False)
    driver.find_element("id", "open-files").click()
    # JupyterHub asks once before another user's server may identify the teacher.
    consent = wait_for(lambda: driver.find_elements("css selector", "form button[type=submit], #jp-main-dock-panel"),
                       120, what="the consent page or JupyterLab")
    if consent[0].tag_name == "button":
        _checked(driver, "oauth-consent.png", dark=False)
        consent[0].click()
    wait_for(lambda: driver.find_elements("css selector", "#jp-main-dock-panel"), 180,
             what="student1's JupyterLab, read-only")
    assert driver.current_url.startswith(f"{hub.url}/user/student1/")
    # The join is a share of the student's server: the student's home shows it and who is watching.
    s_driver = browser()
    try:
        _sign_in(s_driver, hub, "student1", "student1-pw")
        links = _loaded(s_driver, "share-links")
        assert "Joined by teacher1" in links.text and "teacher1" in links.text.split("viewers:")[-1]
        page_picture(s_driver, "home-student-joined.png")
    finally:
        s_driver.quit()
    stop_server(hub, token, "student1")


def test_an_admin_reaches_the_admin_page(hub, driver):
    _sign_in(driver, hub, "admin1", "admin-pw")
    assert driver.find_element("id", "admin-section")
    _checked(driver, "home-admin.png")
    driver.find_element("id", "open-admin").click()
    wait_for(lambda: driver.current_url.endswith("/hub/admin"), 30, what="the admin page")
