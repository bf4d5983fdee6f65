"""Many live sessions on the real Docker engine: lightweight servers (a stand-in
answering HTTP, tests/e2e/light_server) for the count, real slicer-core servers
where a desktop and a kernel matter. Shared by the restart tests and the
restart benchmark."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from slicerhub.devenv.ldap import Directory, LdapUser
from slicerhub.devenv.rfb import RFBClient
from slicerhub.wait import wait_for
from tests.integration.conftest import SUFFIX, test_directory
from tests.support.hub import ROOT, Hub

LIGHT_IMAGE = "slicerhub/light-test:dev"
LIGHT_GROUP = "loadtest"
ADMIN = ("admin1", "admin-pw")


def build_light_image(client) -> None:
    client.images.build(path=str(ROOT / "tests" / "e2e" / "light_server"), tag=LIGHT_IMAGE, rm=True)


def light_names(n: int) -> list[str]:
    return [f"light{i:03d}" for i in range(1, n + 1)]


def directory(n_light: int) -> Directory:
    """The test directory plus `n_light` accounts in the light profile's group."""
    base = test_directory()
    names = light_names(n_light)
    users = [*base.users, *(LdapUser(u, f"Light {u}", "Light", f"{u}-pw") for u in names)]
    groups = {**base.groups, LIGHT_GROUP: names, "students": [*base.groups["students"], *names]}
    return Directory(suffix=SUFFIX, users=users, groups=groups)


def deployment(prefix: str, network: str, workdir: Path) -> dict:
    """Overrides for write_config: the Docker backend, and a `light` profile for LIGHT_GROUP."""
    return {
        "backend": {"docker": {"network": network, "home_volume": prefix + "-home-{username}",
                               "container_prefix": prefix}},
        "ldap": {"groups": {"extra": [f"cn=anat101,ou=groups,{SUFFIX}", f"cn={LIGHT_GROUP},ou=groups,{SUFFIX}"]}},
        "profiles": [
            {"slug": "standard", "display_name": "Slicer (CPU)", "image": "slicerhub/slicer-core:dev",
             "cpu_limit": 1, "mem_limit": "2G", "default": True},
            {"slug": "light", "display_name": "Light (tests)", "image": LIGHT_IMAGE, "mem_limit": "64M",
             "groups": [LIGHT_GROUP]},
        ],
        "courses": {"groups": ["anat101"], "root": str(workdir / "courses")},
    }


def remove_prefixed(client, prefix: str) -> None:
    """A run's containers and home volumes (named after its prefix), gone."""
    for c in client.containers.list(all=True, filters={"name": prefix}):
        c.remove(force=True)
    for v in client.volumes.list(filters={"name": prefix}):
        v.remove(force=True)


def token_for(hub: Hub, user: str, password: str) -> str:
    session, r = hub.login(user, password)
    assert r.status_code == 302, f"login of {user} failed: {r.status_code}"
    return hub.api_token(session, note="sessions")


def start_server(hub: Hub, token: str, user: str, profile: str) -> None:
    r = requests.post(f"{hub.url}/hub/api/users/{user}/server", json={"profile": profile},
                      headers={"Authorization": f"token {token}"}, timeout=120)
    assert r.status_code in (201, 202), f"{user}: {r.status_code} {r.text[:200]}"


def start_light(hub: Hub, names: list[str], workers: int = 8) -> dict[str, str]:
    """Log in and start a light server for each name; returns their tokens."""
    def one(name):
        token = token_for(hub, name, f"{name}-pw")
        start_server(hub, token, name, "light")
        return name, token

    with ThreadPoolExecutor(workers) as pool:
        return dict(pool.map(one, names))


def ready_servers(hub: Hub, admin_token: str) -> set[str]:
    """Users whose default server the hub reports ready (every page of them:
    an unpaginated list stops at 200 users)."""
    ready: set[str] = set()
    offset = 0
    while True:
        r = requests.get(f"{hub.url}/hub/api/users", params={"state": "ready", "offset": offset, "limit": 200},
                         headers={"Authorization": f"token {admin_token}",
                                  "Accept": "application/jupyterhub-pagination+json"}, timeout=60)
        r.raise_for_status()
        page = r.json()
        ready |= {u["name"] for u in page["items"] if u.get("servers", {}).get("", {}).get("ready")}
        following = (page.get("_pagination") or {}).get("next")
        if not following:
            return ready
        offset = following["offset"]


def light_route_ok(hub: Hub, name: str) -> bool:
    """The proxy still routes /user/NAME/ to that user's own light container."""
    try:
        r = requests.get(f"{hub.url}/user/{name}/", allow_redirects=False, timeout=10)
    except requests.RequestException:
        return False
    return r.status_code == 200 and r.text.startswith(f"light server of {name} ")


def light_routes_ok(hub: Hub, names: list[str]) -> list[str]:
    """Names whose route works (checked in parallel)."""
    with ThreadPoolExecutor(16) as pool:
        return [n for n, ok in zip(names, pool.map(lambda n: light_route_ok(hub, n), names)) if ok]


def wait_all_ready(hub: Hub, admin_token: str, names: list[str], timeout: float = 600) -> None:
    wait_for(lambda: set(names) <= ready_servers(hub, admin_token), timeout, interval=1,
             what=f"{len(names)} servers to be ready")


def processes_of(stack) -> dict[int, tuple[int, str]]:
    """{pid: (ppid, command)} of every process started for this stack (they
    inherit SLICERHUB_STACK from supervisord)."""
    marker = f"SLICERHUB_STACK={stack.workdir}\0".encode()
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
            env = Path(f"/proc/{entry}/environ").read_bytes() + b"\0"
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if marker in env:
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            out[int(entry)] = (ppid, cmd.replace(b"\0", b" ").decode(errors="replace")[:200])
    return out


def orphans(stack) -> list[str]:
    """Processes of this stack that supervisord does not (indirectly) own."""
    procs = processes_of(stack)
    root = stack.proc.pid

    def owned(pid: int) -> bool:
        while pid in procs:
            if pid == root:
                return True
            pid = procs[pid][0]
        return pid == root

    return [f"{pid} (parent {ppid}): {cmd}" for pid, (ppid, cmd) in procs.items() if not owned(pid)]


class DesktopWatcher:
    """One desktop websocket through the proxy, asking for frames in a loop
    on its own thread; never reconnects, so a cut connection shows as an error."""

    def __init__(self, hub: Hub, user: str, token: str, path: str = "desktop-websockify/"):
        # path: desktop-view/desktop-websockify/ for a read-only viewer's picture.
        self.url = hub.url.replace("http", "ws", 1) + f"/user/{user}/{path}"
        self.token = token
        self.frames: list[float] = []
        self.error: BaseException | None = None
        self.connected = threading.Event()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self):
        try:
            client = await RFBClient.websocket(self.url, {"Authorization": f"token {self.token}"})
            self.connected.set()
            while not self._stop.is_set():
                await client.wait_update(120, incremental=False)
                self.frames.append(time.monotonic())
                await asyncio.sleep(0.2)
            await client.close()
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.error = e
            self.connected.set()

    def start(self) -> "DesktopWatcher":
        self.thread.start()
        assert self.connected.wait(180) and self.error is None, f"desktop did not connect: {self.error!r}"
        return self

    def frames_after(self, t: float) -> int:
        return sum(1 for f in self.frames if f > t)

    def stop(self):
        self._stop.set()
        self.thread.join(180)

    def max_gap(self, start: float, end: float) -> float | None:
        """The longest wait between frames within [start, end]."""
        inside = [f for f in self.frames if start <= f <= end]
        return max((b - a for a, b in zip(inside, inside[1:])), default=None)
