"""A hub restart or crash costs nobody their session; a Docker engine restart
tells users their server stopped and lets them start again with their home.

22 live sessions on the real Docker engine: 20 lightweight servers (counted
through their proxy routes) and two real slicer-core servers, each with an
open desktop websocket receiving frames and a kernel holding a variable.
Then (a) `supervisorctl restart hub` (SIGTERM, as systemd does) and (b)
`kill -9` of the hub, after which supervisord alone brings it back.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
import requests

from slicerhub.devenv.docker_engine import ensure_docker_engine
from slicerhub.devenv.ldap import Slapd
from slicerhub.wait import wait_for
from tests.support import sessions
from tests.support.hub import ROOT, Hub, free_port, write_config
from tests.support.kernel import KernelClient

pytestmark = pytest.mark.e2e

N_LIGHT = 20
REAL = {"student1": "student1-pw", "teacher1": "teacher-pw"}
NETWORK = "slicerhub-e2e"


@pytest.fixture(scope="module")
def stack(docker_client, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("restarts")
    prefix = f"rs{int(time.time()) % 100000}"
    sessions.build_light_image(docker_client)
    ldap = Slapd(workdir / "ldap", sessions.directory(N_LIGHT))
    ldap.start()
    port = free_port()
    config = write_config(workdir / "slicerhub.yaml", ldap.port, port,
                          **sessions.deployment(prefix, NETWORK, workdir))
    hub = Hub(workdir, config, port)
    try:
        hub.start()
        hub.prefix = prefix
        yield hub
    finally:
        hub.stop()
        ldap.stop()
        sessions.remove_prefixed(docker_client, prefix)


class KernelHolder:
    """A kernel with a variable, on a websocket kept open on its own thread."""

    def __init__(self, hub: Hub, user: str, token: str):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.client = self._call(KernelClient(f"{hub.url}/user/{user}", token, "slicer").start())
        self.value = f"kept by {user}"
        self._call(self.client.execute(f"survivor = {self.value!r}"))

    def _call(self, coro, timeout: float = 300):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def read_back(self) -> str:
        outputs = self._call(self.client.execute("print(survivor)"))
        return "".join(o.get("text", "") for o in outputs).strip()

    def close(self):
        try:
            self._call(self.client.shutdown(), 60)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)


def _services_answer(hub: Hub, token: str) -> bool:
    headers = {"Authorization": f"token {token}"}
    try:
        courses = requests.get(f"{hub.url}/services/courses/api/courses", headers=headers, timeout=10)
        sharing = requests.get(f"{hub.url}/services/sharing/api/links", headers=headers, timeout=10)
    except requests.RequestException:
        return False
    return courses.status_code == 200 and sharing.status_code == 200


@pytest.fixture(scope="module")
def live(stack):
    """22 sessions, two desktops watched, two kernels holding a variable."""
    admin = sessions.token_for(stack, *sessions.ADMIN)
    light = sessions.light_names(N_LIGHT)
    sessions.start_light(stack, light)
    tokens = {}
    for user, password in REAL.items():
        tokens[user] = sessions.token_for(stack, user, password)
        sessions.start_server(stack, tokens[user], user, "standard")
    sessions.wait_all_ready(stack, admin, [*light, *REAL])
    desktops = {u: sessions.DesktopWatcher(stack, u, t).start() for u, t in tokens.items()}
    kernels = {u: KernelHolder(stack, u, t) for u, t in tokens.items()}
    wait_for(lambda: all(d.frames_after(0) >= 2 for d in desktops.values()), 180, what="first desktop frames")
    yield {"admin": admin, "light": light, "tokens": tokens, "desktops": desktops, "kernels": kernels}
    for d in desktops.values():
        d.stop()
    for k in kernels.values():
        k.close()


def _assert_nothing_lost(stack: Hub, live: dict, since: float, how: str) -> None:
    back = time.monotonic()
    # The hub answers again (the caller waited for it), and resumed every server.
    everyone = [*live["light"], *REAL]
    assert set(everyone) <= sessions.ready_servers(stack, live["admin"]), f"sessions lost after {how}"
    assert sessions.light_routes_ok(stack, live["light"]) == live["light"], f"routes lost after {how}"
    # Both desktops kept their one websocket and kept getting frames.
    for user, d in live["desktops"].items():
        wait_for(lambda: d.error is not None or d.frames_after(back) >= 3, 180,
                 what=f"{user}'s desktop frames after the {how}")
        assert d.error is None, f"{user}'s desktop websocket broke during the {how}: {d.error!r}"
        assert d.frames_after(since) > d.frames_after(back) >= 3  # frames during the restart too
    # Both kernels still hold their variable, over the websocket opened before.
    for user, k in live["kernels"].items():
        assert k.read_back() == k.value, user
    wait_for(lambda: _services_answer(stack, live["admin"]), 120, what="the services to answer")
    assert sessions.orphans(stack) == [], f"processes outside the supervisor after the {how}"


def test_graceful_hub_restart_keeps_every_session(stack, live):
    old = stack.pid("hub")
    since = time.monotonic()
    stack.restart("hub")  # SIGTERM, then start: what `systemctl restart slicerhub-hub` does
    assert stack.pid("hub") != old
    _assert_nothing_lost(stack, live, since, "graceful restart")
    # The hub said so itself: it left the servers running and resumed them.
    log = stack.log_path.read_text()
    assert "Leaving single-user servers running" in log


def test_hub_killed_comes_back_by_itself_and_keeps_every_session(stack, live):
    since = time.monotonic()
    killed = stack.kill("hub")  # SIGKILL: no clean-up at all, as the OOM killer does
    wait_for(lambda: stack.info("hub")["pid"] not in (0, killed) and stack.hub_healthy(), 180,
             what="supervisord to bring the hub back")
    stack.wait_ready()
    _assert_nothing_lost(stack, live, since, "kill -9")


def test_proxy_and_services_are_not_children_of_the_hub(stack):
    procs = sessions.processes_of(stack)
    hub = stack.pid("hub")
    for name in ("proxy", "courses", "sharing", "idle-culler"):
        assert procs[stack.pid(name)][0] == stack.proc.pid, f"{name} is not supervisord's own child"
    assert not [pid for pid, (ppid, _) in procs.items() if ppid == hub]


def test_docker_engine_restart_says_server_stopped_and_home_survives(stack, live, docker_client):
    """Last in this module: it stops every container of the machine."""
    user, token = "student1", live["tokens"]["student1"]
    for d in live["desktops"].values():
        d.stop()
    c = docker_client.containers.get(f"{stack.prefix}-{user}")
    assert c.exec_run(["sh", "-c", "echo kept > /home/slicer/kept-across-engine-restart.txt"],
                      user="1000").exit_code == 0
    _restart_docker_engine()
    # The hub notices (its poll, or the proxy's error for the dead route) and
    # says so; the user is offered a new start, not an error.
    wait_for(lambda: user not in sessions.ready_servers(stack, live["admin"]), 300, interval=2,
             what="the hub to notice the stopped server")
    page = requests.get(f"{stack.url}/user/{user}/lab", headers={"Authorization": f"token {token}"},
                        timeout=60)
    assert page.status_code in (200, 424, 503), page.status_code
    assert "not running" in page.text or "stopped" in page.text or "Launch" in page.text, page.text[:400]
    sessions.start_server(stack, token, user, "standard")
    sessions.wait_all_ready(stack, live["admin"], [user], 300)
    c = docker_client.containers.get(f"{stack.prefix}-{user}")
    assert c.exec_run(["cat", "/home/slicer/kept-across-engine-restart.txt"]).output.strip() == b"kept"


def _restart_docker_engine() -> None:
    import subprocess

    subprocess.run(["pkill", "-TERM", "-x", "dockerd"], check=False)
    # It stops every container first; a new one must not start before it is gone.
    wait_for(lambda: subprocess.run(["pgrep", "-x", "dockerd"], capture_output=True).returncode != 0, 300,
             what="dockerd to exit")
    ensure_docker_engine(ROOT / "var" / "log")
