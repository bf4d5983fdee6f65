"""A class starting at once: the hub refuses starts beyond concurrent_spawn_limit
with 429 + Retry-After, the person sees the queue page, which asks again by
itself, and ends in their running server.

Real hub + proxy + slapd; the servers are benchmarks.light_spawner's
in-process stubs, held at start while a hold file exists, so "the first start
is still going" lasts exactly as long as the test wants (no timing guesses).
"""

from __future__ import annotations

import re
import shutil

import pytest
import requests

from benchmarks.harness import BenchHub
from tests.support.browser import browser, page_picture, wait_for
from tests.support.hub import free_port, write_config, xsrf

SPAWNER = "benchmarks.light_spawner.GatedLightSpawner"
PASSWORDS = {"admin1": "admin-pw", "teacher1": "teacher-pw", "student1": "student1-pw",
             "student2": "student2-pw", "mover": "mover-pw"}
# Generous bounds: these are "is it ever going to happen", not speed checks.
WAIT = 120


@pytest.fixture(scope="module")
def holds(tmp_path_factory):
    return tmp_path_factory.mktemp("holds")


@pytest.fixture(scope="module")
def hub(slapd, holds, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("admission")
    port = free_port()
    config = write_config(
        workdir / "slicerhub.yaml",
        slapd.port,
        port,
        hub={"concurrent_spawn_limit": 1, "spawn_retry_seconds": [1, 3], "concurrent_login_limit": 2},
        backend={"docker": {"hub_connect_ip": "127.0.0.1"}},
        culler={"enabled": False},
    )
    args = [f"--JupyterHub.spawner_class={SPAWNER}", f"--GatedLightSpawner.hold_dir={holds}"]
    with BenchHub(workdir, config, port, args=args) as running:
        yield running


@pytest.fixture(scope="module")
def admin(hub):
    s, r = hub.login("admin1", PASSWORDS["admin1"])
    assert r.status_code == 302
    return {"Authorization": f"token {hub.api_token(s)}"}


def _login(hub, name):
    s, r = hub.login(name, PASSWORDS[name])
    assert r.status_code == 302, r.text[:300]
    return s


def _server(hub, admin, name) -> dict:
    r = requests.get(f"{hub.url}/hub/api/users/{name}", headers=admin, timeout=30)
    r.raise_for_status()
    return (r.json().get("servers") or {}).get("", {})


def _stop(hub, admin, name):
    requests.delete(f"{hub.url}/hub/api/users/{name}/server", headers=admin, timeout=60)
    wait_for(lambda: not _server(hub, admin, name), WAIT, what=f"{name}'s server to stop")


def _held_start(hub, admin, holds, name):
    """NAME's start begins and stays pending (taking the one start slot) until released."""
    (holds / name).touch()
    s = _login(hub, name)
    r = s.get(f"{hub.url}/hub/spawn/{name}", allow_redirects=False, timeout=60)
    assert r.status_code == 302 and "/hub/spawn-pending/" in r.headers["Location"], (r.status_code, r.text[:300])
    wait_for(lambda: _server(hub, admin, name).get("pending") == "spawn", WAIT, what=f"{name}'s start pending")
    return s


def _release(hub, admin, holds, name):
    (holds / name).unlink()
    wait_for(lambda: _server(hub, admin, name).get("ready"), WAIT, what=f"{name}'s server ready")


def test_second_start_is_queued_then_succeeds(hub, admin, holds):
    _held_start(hub, admin, holds, "student1")

    # A student without a form: GET /hub/spawn starts straight away -> 429, the queue page.
    s2 = _login(hub, "student2")
    r = s2.get(f"{hub.url}/hub/spawn/student2", allow_redirects=False, timeout=60)
    assert r.status_code == 429, r.text[:300]
    retry = int(r.headers["Retry-After"])
    assert 1 <= retry <= 3
    assert "You are in the queue" in r.text and "your server will start soon" in r.text.lower()
    assert int(re.search(r'data-retry-after="(\d+)"', r.text).group(1)) == retry
    assert "window.location.reload()" in r.text  # it asks again by itself
    assert 'class="navbar' in r.text  # inside JupyterHub's page, not a bare error

    # The REST API answers the same 429 + Retry-After (what scripts and the benchmark honour).
    api = s2.post(f"{hub.url}/hub/api/users/student2/server", timeout=60,
                  headers={"X-XSRFToken": xsrf(s2), "Referer": hub.url + "/hub/home"})
    assert api.status_code == 429 and 1 <= int(api.headers["Retry-After"]) <= 3

    # A teacher's form (profiles) sent while the slot is taken: the form comes
    # back as the queue, and sends itself again with the same choice.
    t = _login(hub, "teacher1")
    form = t.get(f"{hub.url}/hub/spawn/teacher1", timeout=60)
    assert form.status_code == 200 and 'name="profile"' in form.text
    r = t.post(f"{hub.url}/hub/spawn/teacher1", data={"profile": "teacher", "_xsrf": xsrf(t)},
               allow_redirects=False, timeout=60)
    assert r.status_code == 429 and "Retry-After" in r.headers
    assert "You are in the queue" in r.text and "requestSubmit" in r.text and 'id="spawn_form"' in r.text
    assert not _server(hub, admin, "teacher1")

    # The first start ends: the second student's retry is accepted and their server starts.
    _release(hub, admin, holds, "student1")
    r = s2.get(f"{hub.url}/hub/spawn/student2", allow_redirects=False, timeout=60)
    assert r.status_code == 302, (r.status_code, r.text[:300])
    wait_for(lambda: _server(hub, admin, "student2").get("ready"), WAIT, what="student2's server ready")
    page = s2.get(f"{hub.url}/user/student2/lab", timeout=60)
    assert page.status_code == 200 and page.text == "ok\n"  # the stub server, through the proxy

    for name in ("student1", "student2"):
        _stop(hub, admin, name)


def _queue_shown(driver):
    return driver.find_elements("id", "slicerhub-queue")


@pytest.mark.skipif(not shutil.which("chromium") and not shutil.which("/usr/bin/chromium"),
                    reason="Chromium is not installed (make test installs it)")
def test_queue_page_retries_by_itself_in_chromium(hub, admin, holds):
    _held_start(hub, admin, holds, "mover")
    driver = browser()
    try:
        # Log in: the hub sends the student on to /hub/spawn, which is refused -> the queue.
        driver.get(hub.url + "/hub/login")
        driver.find_element("id", "username_input").send_keys("student2")
        driver.find_element("id", "password_input").send_keys(PASSWORDS["student2"])
        driver.find_element("id", "login_submit").click()
        wait_for(lambda: _queue_shown(driver), WAIT, what="the queue page after login")
        assert "You are in the queue" in driver.page_source
        page_picture(driver, "admission-queue.png")

        # A link into the (stopped) server goes through the same queue.
        driver.get(hub.url + "/hub/user-redirect/lab")
        wait_for(lambda: _queue_shown(driver), WAIT, what="the queue page from user-redirect")
        assert "/hub/spawn/student2" in driver.current_url

        # Nobody clicks: the page asks again by itself (a fresh page: our mark is gone).
        driver.execute_script("window.__admission_mark = 1;")
        wait_for(lambda: driver.execute_script("return window.__admission_mark === undefined;")
                 and _queue_shown(driver), WAIT, what="the queue page to retry by itself")
        assert not _server(hub, admin, "student2")

        # The first start ends: the next retry is accepted and ends in the running server.
        _release(hub, admin, holds, "mover")
        wait_for(lambda: "/user/student2/lab" in driver.current_url and "ok" in driver.page_source,
                 WAIT, what="student2's running server")
        assert _server(hub, admin, "student2").get("ready")
    finally:
        driver.quit()
    for name in ("mover", "student2"):
        _stop(hub, admin, name)


@pytest.mark.skipif(not shutil.which("chromium") and not shutil.which("/usr/bin/chromium"),
                    reason="Chromium is not installed (make test installs it)")
def test_queued_form_is_sent_again_with_the_same_choice_in_chromium(hub, admin, holds):
    _held_start(hub, admin, holds, "student1")
    driver = browser()
    try:
        driver.get(hub.url + "/hub/login?next=/hub/spawn")
        driver.find_element("id", "username_input").send_keys("teacher1")
        driver.find_element("id", "password_input").send_keys(PASSWORDS["teacher1"])
        driver.find_element("id", "login_submit").click()
        choice = wait_for(lambda: driver.find_elements("css selector", 'input[name="profile"][value="teacher"]'),
                          WAIT, what="the profile form")
        choice[0].click()  # not the default profile
        driver.find_element("css selector", "#spawn_form button[type=submit]").click()
        wait_for(lambda: _queue_shown(driver), WAIT, what="the queue after sending the form")
        assert driver.find_element("css selector", 'input[name="profile"][value="teacher"]').is_selected()

        _release(hub, admin, holds, "student1")
        wait_for(lambda: "/user/teacher1/" in driver.current_url and "ok" in driver.page_source,
                 WAIT, what="teacher1's running server")
        assert _server(hub, admin, "teacher1")["user_options"] == {"profile": "teacher"}
    finally:
        driver.quit()
    for name in ("student1", "teacher1"):
        _stop(hub, admin, name)
