"""Log in, spawn a real container, use it, delete it, respawn: the home survives."""

from __future__ import annotations

import html
import time

import pytest

from tests.support.spawn import container, hub_api, server_api, spawn_with_form, stop_server, wait_ready

pytestmark = pytest.mark.e2e


def test_form_shows_only_allowed_profiles(e2e_hub):
    s, r = e2e_hub.login("student2", "student2-pw")
    page = s.get(e2e_hub.url + "/hub/spawn", timeout=30)
    # One profile open to students: no form, the spawn starts straight away.
    assert 'name="profile"' not in page.text
    s, r = e2e_hub.login("teacher1", "teacher-pw")
    page = s.get(e2e_hub.url + "/hub/spawn", timeout=30)
    for slug in ("standard", "teacher", "gpu"):
        assert f'value="{slug}"' in page.text


def test_forged_profile_is_refused_and_nothing_starts(e2e_hub, docker_client):
    s, _ = e2e_hub.login("student1", "student1-pw")
    r = spawn_with_form(e2e_hub, s, profile="gpu")
    assert r.status_code == 403
    assert "may not use the profile 'gpu'" in html.unescape(r.text)
    # Straight to the REST API, bypassing the form.
    token = e2e_hub.api_token(s)
    r = hub_api(e2e_hub, token, "/users/student1/server", "POST", json={"profile": "teacher"})
    assert r.status_code >= 400
    time.sleep(1)
    assert not hub_api(e2e_hub, token, "/users/student1").json()["servers"]
    assert not docker_client.containers.list(all=True, filters={"name": f"{e2e_hub.prefix}-student1"})


def test_spawn_use_delete_respawn_keeps_home(e2e_hub, docker_client):
    hub = e2e_hub
    s, r = hub.login("student1", "student1-pw")
    assert r.status_code == 302
    token = hub.api_token(s)

    r = spawn_with_form(hub, s)
    assert r.status_code == 302, r.text
    progress = wait_ready(hub, s, "student1")
    assert progress["ready"], progress
    messages = " | ".join(e.get("message", "") for e in progress["events"])
    for expected in ("home folder", "Starting your Slicer (CPU) container", "waiting for JupyterLab"):
        assert expected in messages, messages

    c = container(docker_client, hub, "student1")
    assert c.labels["org.slicerhub.profile"] == "standard"
    assert c.attrs["HostConfig"]["NanoCpus"] == 0 and c.attrs["HostConfig"]["CpuQuota"] == 100000
    assert c.attrs["HostConfig"]["Memory"] == 2 * 1024**3
    assert not c.attrs["HostConfig"].get("DeviceRequests")
    # Nothing published on the host: the proxy reaches it on the internal network.
    assert not any(c.attrs["NetworkSettings"]["Ports"].get("8888/tcp") or [])

    r = server_api(hub, token, "student1", "/contents/notes.txt", "PUT",
                   json={"type": "file", "format": "text", "content": "kept across containers"})
    assert r.status_code in (200, 201), r.text
    # The home is the user's and writable; a student's course folder is read-only.
    out = c.exec_run(["sh", "-c", "id -u; stat -c %u /home/slicer; touch /home/slicer/courses/anat101/shared/x"],
                     user="1000")
    lines = out.output.decode().splitlines()
    assert lines[:2] == ["1000", "1000"], lines
    assert out.exit_code != 0 and "Read-only file system" in out.output.decode()

    # Delete the container behind the hub's back, as an admin might.
    first_id = c.id
    c.remove(force=True)
    stop_server(hub, token, "student1")

    r = hub_api(hub, token, "/users/student1/server", "POST")
    assert r.status_code in (201, 202), r.text
    assert wait_ready(hub, s, "student1")["ready"]
    assert container(docker_client, hub, "student1").id != first_id
    r = server_api(hub, token, "student1", "/contents/notes.txt")
    assert r.status_code == 200
    assert r.json()["content"] == "kept across containers"


def test_other_users_cannot_reach_my_server(e2e_hub):
    hub = e2e_hub
    s1, _ = hub.login("student1", "student1-pw")
    t1 = hub.api_token(s1)
    if not hub_api(hub, t1, "/users/student1").json()["servers"]:
        hub_api(hub, t1, "/users/student1/server", "POST")
        assert wait_ready(hub, s1, "student1")["ready"]
    assert server_api(hub, t1, "student1", "/contents").status_code == 200

    s2, _ = hub.login("student2", "student2-pw")
    t2 = hub.api_token(s2)
    assert server_api(hub, t2, "student1", "/contents").status_code == 403
    # Nor with the browser session: the server refuses the OAuth handshake.
    r = s2.get(f"{hub.url}/user/student1/api/contents", timeout=30)
    print("browser session ->", r.status_code, r.url)
    assert r.status_code == 403
    # And cannot stop it (the hub hides other users: 404).
    assert hub_api(hub, t2, "/users/student1/server", "DELETE").status_code in (403, 404)
    stop_server(hub, t1, "student1")


def test_stale_container_is_replaced_and_home_kept(e2e_hub, docker_client):
    hub = e2e_hub
    s, _ = hub.login("teacher1", "teacher-pw")
    token = hub.api_token(s)
    assert spawn_with_form(hub, s, profile="standard").status_code == 302
    assert wait_ready(hub, s, "teacher1")["ready"]
    r = server_api(hub, token, "teacher1", "/contents/lesson.txt", "PUT",
                   json={"type": "file", "format": "text", "content": "lesson plan"})
    assert r.status_code in (200, 201)
    old = container(docker_client, hub, "teacher1")
    stop_server(hub, token, "teacher1")
    # remove: false keeps the stopped container for reuse...
    assert container(docker_client, hub, "teacher1").id == old.id

    # ...but not when the profile changed.
    assert spawn_with_form(hub, s, profile="teacher").status_code == 302
    progress = wait_ready(hub, s, "teacher1")
    assert progress["ready"]
    assert any("profile changed" in e.get("message", "") for e in progress["events"])
    new = container(docker_client, hub, "teacher1")
    assert new.id != old.id
    assert new.labels["org.slicerhub.profile"] == "teacher"
    assert new.attrs["HostConfig"]["Memory"] == 4 * 1024**3
    r = server_api(hub, token, "teacher1", "/contents/lesson.txt")
    assert r.json()["content"] == "lesson plan"
    stop_server(hub, token, "teacher1")
