"""A refused profile choice costs the person nothing later.

JupyterHub keeps the options of every start request as the defaults of the
next start sent without options (the spawn page of someone with one profile,
the admin page's "start"). A choice SlicerHub refuses must not be kept: else
one forged REST call blocks that person's normal start page for good.

Real hub + proxy + slapd; the servers are benchmarks.light_spawner's
in-process stubs behind the real SlicerSpawner profile checks.
"""

from __future__ import annotations

import pytest
import requests

from benchmarks.harness import BenchHub
from tests.support.browser import wait_for
from tests.support.hub import free_port, write_config, xsrf

WAIT = 120


@pytest.fixture(scope="module")
def hub(slapd, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("spawn-options")
    port = free_port()
    config = write_config(workdir / "slicerhub.yaml", slapd.port, port,
                          backend={"docker": {"hub_connect_ip": "127.0.0.1"}}, culler={"enabled": False})
    args = ["--JupyterHub.spawner_class=benchmarks.light_spawner.LightSpawner"]
    with BenchHub(workdir, config, port, args=args) as running:
        yield running


def _server(hub, session, name) -> dict:
    r = session.get(f"{hub.url}/hub/api/users/{name}", timeout=30,
                    headers={"Authorization": f"token {hub.api_token(session)}"})
    r.raise_for_status()
    return (r.json().get("servers") or {}).get("", {})


@pytest.mark.parametrize("options, status", [
    ({"profile": "teacher"}, 403), ({"profile": "no-such"}, 400),
    # An allowed profile with a key a backend would read past the checks (DockerSpawner: image).
    ({"profile": "standard", "image": "evil/miner:latest"}, 400),
])
def test_refused_rest_choice_does_not_block_the_start_page(hub, options, status):
    s, r = hub.login("student1", "student1-pw")
    assert r.status_code == 302
    headers = {"X-XSRFToken": xsrf(s), "Referer": hub.url + "/hub/home"}
    refused = s.post(f"{hub.url}/hub/api/users/student1/server", json=options, headers=headers, timeout=60)
    assert refused.status_code == status, refused.text[:300]
    assert not _server(hub, s, "student1")

    # The plain start page (a student has one profile: no form) starts the default profile.
    page = s.get(f"{hub.url}/hub/spawn/student1", allow_redirects=False, timeout=60)
    assert page.status_code == 302, page.text[:300]
    ready = wait_for(lambda: _server(hub, s, "student1").get("ready") and _server(hub, s, "student1"),
                     WAIT, what="student1's server")
    assert ready["user_options"] == {}
    assert s.get(f"{hub.url}/user/student1/", timeout=30).text == "ok\n"

    s.delete(f"{hub.url}/hub/api/users/student1/server", headers=headers, timeout=60)
    wait_for(lambda: not _server(hub, s, "student1"), WAIT, what="student1's server to stop")


def test_an_allowed_choice_is_still_remembered(hub):
    """The fix forgets refused choices only: JupyterHub's remembering stays."""
    s, r = hub.login("teacher1", "teacher-pw")
    assert r.status_code == 302
    headers = {"X-XSRFToken": xsrf(s), "Referer": hub.url + "/hub/home"}
    started = s.post(f"{hub.url}/hub/api/users/teacher1/server", json={"profile": "teacher"},
                     headers=headers, timeout=60)
    assert started.status_code in (201, 202), started.text[:300]
    wait_for(lambda: _server(hub, s, "teacher1").get("ready"), WAIT, what="teacher1's server")
    s.delete(f"{hub.url}/hub/api/users/teacher1/server", headers=headers, timeout=60)
    wait_for(lambda: not _server(hub, s, "teacher1"), WAIT, what="teacher1's server to stop")

    again = s.post(f"{hub.url}/hub/api/users/teacher1/server", headers=headers, timeout=60)
    assert again.status_code in (201, 202), again.text[:300]
    ready = wait_for(lambda: _server(hub, s, "teacher1").get("ready") and _server(hub, s, "teacher1"),
                     WAIT, what="teacher1's server again")
    assert ready["user_options"] == {"profile": "teacher"}
    s.delete(f"{hub.url}/hub/api/users/teacher1/server", headers=headers, timeout=60)
