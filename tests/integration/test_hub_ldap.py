"""LDAP login through a real JupyterHub + configurable-http-proxy against a real slapd."""

from __future__ import annotations

import html
import re
import threading
import time

import ldap3
import pytest
import requests

from slicerhub.wait import wait_for

pytestmark = pytest.mark.integration


def error_text(response: requests.Response) -> str:
    """The message the login or error page shows a person."""
    m = re.search(r'class="login_error"[^>]*>\s*([^<]+)', response.text) or re.search(
        r'<div class="alert[^"]*"[^>]*>\s*([^<]+)', response.text
    )
    if m:
        return html.unescape(m.group(1).strip())
    m = re.search(r"<p>\s*([^<]+)</p>", response.text)
    return html.unescape(m.group(1).strip()) if m else response.text[:200]


def api(hub, token, path):
    return requests.get(hub.url + "/hub/api" + path, headers={"Authorization": f"token {token}"}, timeout=10)


def test_good_login_lands_on_spawn(hub):
    session, r = hub.login("student1", "student1-pw")
    assert r.status_code == 302, error_text(r)
    assert r.headers["Location"].endswith("/hub/spawn")
    assert "jupyterhub-session-id" in session.cookies or any(
        c.name.startswith("jupyterhub-hub-login") for c in session.cookies
    )


def test_login_name_is_normalised(hub):
    session, r = hub.login("  Student2 ", "student2-pw")
    assert r.status_code == 302, error_text(r)
    token = hub.api_token(session)
    assert api(hub, token, "/user").json()["name"] == "student2"


@pytest.mark.parametrize(
    "username,password",
    [("student1", "wrong"), ("student1", ""), ("nosuchuser", "whatever")],
    ids=["wrong-password", "empty-password", "unknown-user"],
)
def test_bad_credentials_are_refused(hub, username, password):
    _, r = hub.login(username, password)
    assert r.status_code == 403
    assert error_text(r) == "Invalid username or password"


def test_user_outside_allowed_groups_is_refused(hub):
    # A valid LDAP account whose only group (staff) is not allowed in.
    _, r = hub.login("outsider", "outsider-pw")
    assert r.status_code == 403


@pytest.mark.parametrize(
    "username,expected",
    [
        ("*", "may not contain '*'"),
        ("student1)(uid=*", "may not contain"),
        ("*)(|(uid=*", "may not contain"),
        ("admin1,ou=people", "may not contain ',' '='"),
        ("student1\\2a", "may not contain '\\\\'"),
        ("stud\x00ent1", "Usernames"),  # tornado may drop the NUL; refused either way
        ("аdmin1", "plain ASCII"),  # Cyrillic а
        ("ｓtudent1", "plain ASCII"),  # full-width s
        ("s" * 200, "at most 32"),
    ],
    ids=["star", "filter-close", "filter-or", "dn-comma", "escape", "nul", "cyrillic", "fullwidth", "long"],
)
def test_injection_and_lookalike_names_are_refused_with_a_reason(hub, slapd, username, expected):
    _, r = hub.login(username, "student1-pw")
    assert r.status_code == 403
    assert expected in error_text(r)


def test_groups_and_roles_are_synced_at_login(hub, slapd):
    s, r = hub.login("admin1", "admin-pw")
    assert r.status_code == 302
    admin_token = hub.api_token(s)
    s, r = hub.login("teacher1", "teacher-pw")
    assert r.status_code == 302
    teacher_token = hub.api_token(s)

    admin = api(hub, admin_token, "/users/admin1").json()
    assert admin["admin"] is True
    assert admin["groups"] == ["slicerhub-admins"]
    teacher = api(hub, admin_token, "/users/teacher1").json()
    assert teacher["admin"] is False
    assert sorted(teacher["groups"]) == ["anat101", "teachers"]
    # The teacher role is held through the synced group, not per user.
    assert "teacher" in api(hub, admin_token, "/groups/teachers").json()["roles"]

    # The teacher role lets teachers see course membership; students cannot.
    assert api(hub, teacher_token, "/groups/anat101").status_code == 200
    s, _ = hub.login("student1", "student1-pw")
    student_token = hub.api_token(s)
    assert api(hub, student_token, "/groups/anat101").status_code in (403, 404)


def test_group_changes_in_ldap_apply_at_next_login(hub, slapd):
    s, r = hub.login("mover", "mover-pw")
    assert r.status_code == 302
    token = hub.api_token(s)
    assert sorted(api(hub, token, "/user").json()["groups"]) == ["anat101", "students"]

    directory = slapd.directory
    conn = ldap3.Connection(
        ldap3.Server(slapd.uri), slapd.admin_dn, slapd.admin_password, auto_bind=True
    )
    conn.modify(
        directory.group_dn("anat101"),
        {"member": [(ldap3.MODIFY_DELETE, [directory.user_dn("mover")])]},
    )
    conn.modify(
        directory.group_dn("slicerhub-admins"),
        {"member": [(ldap3.MODIFY_ADD, [directory.user_dn("mover")])]},
    )
    assert conn.result["result"] == 0, conn.result
    try:
        s, r = hub.login("mover", "mover-pw")
        assert r.status_code == 302
        me = api(hub, hub.api_token(s), "/user").json()
        assert sorted(me["groups"]) == ["slicerhub-admins", "students"]
        assert me["admin"] is True
    finally:
        conn.modify(
            directory.group_dn("slicerhub-admins"),
            {"member": [(ldap3.MODIFY_DELETE, [directory.user_dn("mover")])]},
        )
        conn.modify(
            directory.group_dn("anat101"),
            {"member": [(ldap3.MODIFY_ADD, [directory.user_dn("mover")])]},
        )
    # Removed from the admin group in LDAP → no longer admin at next login.
    s, r = hub.login("mover", "mover-pw")
    me = api(hub, hub.api_token(s), "/user").json()
    assert me["admin"] is False


def _health_while(hub, action):
    """Run `action` in a thread; meanwhile time /hub/health requests."""
    latencies = []
    done = threading.Event()
    result = {}

    def run():
        try:
            result["value"] = action()
        finally:
            done.set()

    t = threading.Thread(target=run)
    t.start()
    time.sleep(0.2)
    while not done.is_set():
        start = time.monotonic()
        ok = requests.get(hub.url + "/hub/health", timeout=5).ok
        latencies.append((ok, time.monotonic() - start))
        time.sleep(0.1)
    t.join()
    return result["value"], latencies


def test_stalled_ldap_fails_login_clearly_and_hub_keeps_serving(hub, slapd):
    # A directory that accepts connections but never answers (SIGSTOP).
    slapd.pause()
    try:
        started = time.monotonic()
        (_, r), health = _health_while(hub, lambda: hub.login("student1", "student1-pw"))
        elapsed = time.monotonic() - started
    finally:
        slapd.resume()
    assert r.status_code == 503
    assert "directory (LDAP) is not answering" in error_text(r)
    assert elapsed < 6 + 2  # the configured login timeout, plus slack
    # The hub answered other requests the whole time.
    assert len(health) >= 5
    assert all(ok for ok, _ in health)
    assert max(lat for _, lat in health) < 1.0


def test_stopped_ldap_then_back_without_hub_restart(hub, slapd):
    slapd.stop()
    try:
        started = time.monotonic()
        _, r = hub.login("student1", "student1-pw")
        assert time.monotonic() - started < 6
        assert r.status_code == 503
        assert "try again" in error_text(r)
        assert requests.get(hub.url + "/hub/health", timeout=5).ok
    finally:
        slapd.start()
    _, r = hub.login("student1", "student1-pw")
    assert r.status_code == 302, error_text(r)


def test_idle_culler_runs_as_a_service_with_only_its_role(hub):
    s, _ = hub.login("admin1", "admin-pw")
    token = hub.api_token(s)
    service = api(hub, token, "/services/idle-culler").json()
    assert service["roles"] == ["idle-culler"]
    # Run beside the hub by the supervisor, not as the hub's child.
    assert service["pid"] == 0
    assert hub.info("idle-culler")["statename"] == "RUNNING"
    # It really talks to the hub with that role: its user listing succeeded.
    wait_for(lambda: "200 GET /hub/api/users?state=" in hub.log_path.read_text(), 60,
             what="the culler's first user listing")
