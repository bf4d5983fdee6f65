"""The scale benchmark's tool (benchmarks/farm.py, benchmarks/farm_spawner.py) on
a real hub: servers in the out-of-process stub farm start through the REST
API, answer through the proxy, report activity with their own tokens, and
survive a hub restart (resumed from the database, routes kept)."""

from __future__ import annotations

import time

import pytest
import requests

from benchmarks.farm import Farm
from benchmarks.harness import BenchHub
from slicerhub.wait import wait_for
from tests.support.hub import free_port, write_config

pytestmark = pytest.mark.integration

NAMES = ["farm1", "farm2", "farm3"]


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    with Farm(tmp_path_factory.mktemp("farm"), activity_interval=1.0) as f:
        yield f


@pytest.fixture(scope="module")
def farm_hub(slapd, farm, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("hub-farm")
    port = free_port()
    config = write_config(workdir / "slicerhub.yaml", slapd.port, port,
                          backend={"docker": {"hub_connect_ip": "127.0.0.1"}})
    args = ["--JupyterHub.spawner_class=benchmarks.farm_spawner.FarmSpawner",
            f"--FarmSpawner.farm_url={farm.url}"]
    with BenchHub(workdir, config, port, args=args) as hub:
        yield hub


def _admin(hub) -> dict:
    session, r = hub.login("admin1", "admin-pw")
    assert r.status_code == 302
    return {"Authorization": f"token {hub.api_token(session, note='farm-test')}"}


def _route(hub, name) -> str | None:
    try:
        r = requests.get(f"{hub.url}/user/{name}/lab", allow_redirects=False, timeout=10)
    except requests.RequestException:
        return None
    return r.text if r.status_code == 200 else None


def _ready(hub, auth, name) -> bool:
    r = requests.get(f"{hub.url}/hub/api/users/{name}", headers=auth, timeout=30)
    return r.ok and bool(r.json().get("servers", {}).get("", {}).get("ready"))


def test_farm_servers_start_report_activity_and_survive_a_hub_restart(farm_hub, farm):
    hub, auth = farm_hub, _admin(farm_hub)
    r = requests.post(f"{hub.url}/hub/api/users", json={"usernames": NAMES}, headers=auth, timeout=60)
    assert r.status_code == 201, r.text
    for name in NAMES:
        r = requests.post(f"{hub.url}/hub/api/users/{name}/server", json={}, headers=auth, timeout=120)
        assert r.status_code in (201, 202), r.text
    wait_for(lambda: all(_ready(hub, auth, n) for n in NAMES), 120, interval=0.5, what="farm servers ready")
    bodies = {n: _route(hub, n) for n in NAMES}
    for name, body in bodies.items():
        assert body and body.startswith(f"farm server of {name} port "), (name, body)
    assert farm.stats()["servers"] == len(NAMES)

    # Activity, reported with each server's own token, is accepted by the hub.
    wait_for(lambda: farm.stats()["activity"].get("200", 0) >= len(NAMES), 60, interval=0.5,
             what="activity reports accepted")
    assert not {k for k in farm.stats()["activity"] if k != "200"}, farm.stats()
    before = {n: requests.get(f"{hub.url}/hub/api/users/{n}", headers=auth, timeout=30).json()["last_activity"]
              for n in NAMES}
    assert all(before.values())

    # A hub restart: the proxy keeps routing while the hub is down; the hub
    # resumes every server from the database (poll() asks the farm).
    hub.stop_program("hub")
    assert {n: _route(hub, n) for n in NAMES} == bodies
    hub.start_program("hub")
    wait_for(lambda: all(_ready(hub, auth, n) for n in NAMES), 120, interval=0.5, what="servers resumed")
    assert {n: _route(hub, n) for n in NAMES} == bodies  # the same listeners, not new ones
    assert farm.stats()["servers"] == len(NAMES)
    # Activity goes on being accepted after the restart.
    ok_before = farm.stats()["activity"].get("200", 0)
    wait_for(lambda: farm.stats()["activity"].get("200", 0) >= ok_before + len(NAMES), 60, interval=0.5,
             what="activity accepted after the restart")

    # Stop releases the listener; the route goes.
    r = requests.delete(f"{hub.url}/hub/api/users/{NAMES[0]}/server", headers=auth, timeout=60)
    assert r.status_code in (202, 204), r.text
    wait_for(lambda: farm.stats()["servers"] == len(NAMES) - 1, 60, interval=0.2, what="listener released")
    wait_for(lambda: _route(hub, NAMES[0]) is None, 60, interval=0.2, what="route removed")
    time.sleep(0.1)
    assert _route(hub, NAMES[1]) == bodies[NAMES[1]]
