"""Hub restart with live sessions: what a restart or a crash costs.

One stack (proxy, hub, services under supervisord, as `make demo` and the
systemd units run them) on the real Docker engine; N lightweight servers
(tests/e2e/light_server) plus one real slicer-core server whose desktop
websocket asks for a frame every 0.2 s. For each N, a graceful restart
(SIGTERM + start, as `systemctl restart`) and a `kill -9` (supervisord
restarts it). Measured per restart:

- hub back: from the restart command until /hub/health answers through the proxy,
  and as a ratio to the stack's first start in this run (its baseline);
- all resumed: until the hub's API lists every server as ready again;
- route failures: requests to the N routes (checked in rounds throughout)
  that did not reach their own server while the hub was away;
- sessions lost: servers not ready afterwards;
- desktop: the longest gap between frames during the restart, as a ratio to
  the median gap before it (1.0 = the restart did not show).
"""

from __future__ import annotations

import statistics
import threading
import time
from pathlib import Path

from slicerhub.devenv.ldap import Slapd
from slicerhub.wait import wait_for
from tests.support import sessions
from tests.support.hub import Hub, free_port, write_config

from .harness import percentile

SIZES = (20, 200)


class RouteProbe:
    """Checks every light route in rounds on a thread; counts the misses."""

    def __init__(self, hub: Hub, names: list[str]):
        self.hub, self.names = hub, names
        self.checks = self.failures = self.rounds = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            ok = sessions.light_routes_ok(self.hub, self.names)
            self.checks += len(self.names)
            self.failures += len(self.names) - len(ok)
            self.rounds += 1

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self.thread.join(120)


def _one_restart(hub: Hub, how: str, names: list[str], admin: str, desktop) -> dict:
    gaps_before = [b - a for a, b in zip(desktop.frames[-20:], desktop.frames[-19:])]
    with RouteProbe(hub, names) as probe:
        time.sleep(1)  # a round or two before, so the probe is in its stride
        t0 = time.monotonic()
        if how == "graceful":
            rpc = hub._rpc()
            rpc.stopProcess("hub", True)
            rpc.startProcess("hub", False)
        else:
            killed = hub.kill("hub")
            wait_for(lambda: hub.info("hub")["pid"] not in (0, killed), 120, interval=0.1,
                              what="supervisord to restart the hub")
        wait_for(hub.hub_healthy, 300, interval=0.1, what="the hub to answer")
        back = time.monotonic() - t0
        wait_for(lambda: set(names) <= sessions.ready_servers(hub, admin), 600, interval=0.5,
                          what="every server resumed")
        resumed = time.monotonic() - t0
        time.sleep(1)
    lost = len(set(names) - sessions.ready_servers(hub, admin))
    gap = desktop.max_gap(t0, t0 + resumed)
    median = statistics.median(gaps_before) if gaps_before else None
    return {
        "how": how, "hub_back_s": round(back, 2), "all_resumed_s": round(resumed, 2),
        "route_checks": probe.checks, "route_failures": probe.failures, "sessions_lost": lost,
        "desktop_max_gap_s": None if gap is None else round(gap, 3),
        "desktop_gap_ratio": None if gap is None or not median else round(gap / median, 2),
        "desktop_error": None if desktop.error is None else repr(desktop.error),
    }


def run(workdir: Path, sizes: tuple[int, ...] = SIZES) -> dict:
    import docker

    from slicerhub.devenv.docker_engine import ensure_docker_engine
    from slicerhub.devenv.images import build_with_parents, ensure_base_image
    from tests.support.hub import ROOT

    workdir.mkdir(parents=True, exist_ok=True)
    ensure_docker_engine(ROOT / "var" / "log")
    ensure_base_image()
    build_with_parents("slicer-core")
    client = docker.from_env()
    sessions.build_light_image(client)
    prefix = f"rb{int(time.time()) % 100000}"
    ldap = Slapd(workdir / "ldap", sessions.directory(max(sizes)))
    ldap.start()
    port = free_port()
    config = write_config(workdir / "slicerhub.yaml", ldap.port, port,
                          **sessions.deployment(prefix, "slicerhub-bench", workdir))
    hub = Hub(workdir, config, port)
    out: dict = {"sizes": list(sizes), "runs": []}
    desktop = None
    try:
        t0 = time.monotonic()
        hub.start()
        out["first_start_s"] = round(time.monotonic() - t0, 2)
        admin = sessions.token_for(hub, *sessions.ADMIN)
        token = sessions.token_for(hub, "student1", "student1-pw")
        sessions.start_server(hub, token, "student1", "standard")
        sessions.wait_all_ready(hub, admin, ["student1"], 600)
        desktop = sessions.DesktopWatcher(hub, "student1", token).start()
        started: list[str] = []
        for n in sizes:
            names = sessions.light_names(n)
            row = {"n": n, "restarts": []}
            out["runs"].append(row)
            try:
                t = time.monotonic()
                sessions.start_light(hub, [u for u in names if u not in started])
                sessions.wait_all_ready(hub, admin, names, 1200)
                started = names
                row["start_all_s"] = round(time.monotonic() - t, 1)
            except Exception as e:  # noqa: BLE001 - this size is missing; the next one is still measured
                row["not_measured"] = f"{type(e).__name__}: {str(e)[:300]}"
                print(f"[restart] N={n}: not measured ({row['not_measured']})")
                continue
            for how in ("graceful", "kill -9"):
                try:
                    r = _one_restart(hub, how, names, admin, desktop)
                except Exception as e:  # noqa: BLE001 - a printed reason, not the end of the benchmark
                    r = {"how": how, "not_measured": f"{type(e).__name__}: {str(e)[:300]}"}
                    print(f"[restart] N={n} {how}: not measured ({r['not_measured']})")
                    row["restarts"].append(r)
                    continue
                r["hub_back_ratio_to_first_start"] = round(r["hub_back_s"] / out["first_start_s"], 2)
                row["restarts"].append(r)
        out["desktop_frames"] = len(desktop.frames)
        gaps = [b - a for a, b in zip(desktop.frames, desktop.frames[1:])]
        out["desktop_gap_p50_s"] = percentile(gaps, 50)
    finally:
        if desktop:
            desktop.stop()
        hub.stop()
        ldap.stop()
        sessions.remove_prefixed(client, prefix)
    return out


def print_restart(res: dict) -> None:
    print()
    print(f"Hub restart with live sessions (stack's first start {res['first_start_s']} s = baseline; "
          f"one real desktop watched, median frame gap {res.get('desktop_gap_p50_s') or 0:.2f} s)")
    head = (f"  {'N':>4} | {'restart':>8} | {'hub back':>8} | {'/first start':>12} | {'all resumed':>11} | "
            f"{'route misses':>12} | {'lost':>4} | desktop max gap")
    print(head)
    print("  " + "-" * (len(head) - 2))
    for row in res["runs"]:
        if "not_measured" in row:
            print(f"  {row['n']:>4} | not measured: {row['not_measured']}")
        for r in row["restarts"]:
            if "not_measured" in r:
                print(f"  {row['n']:>4} | {r['how']:>8} | not measured: {r['not_measured']}")
                continue
            gap = "-" if r["desktop_max_gap_s"] is None else f"{r['desktop_max_gap_s']} s ({r['desktop_gap_ratio']}x)"
            if r["desktop_error"]:
                gap = "websocket broke: " + r["desktop_error"]
            print(f"  {row['n']:>4} | {r['how']:>8} | {r['hub_back_s']:>6} s | {r['hub_back_ratio_to_first_start']:>11}x | "
                  f"{r['all_resumed_s']:>9} s | {r['route_failures']:>5}/{r['route_checks']:<6} | "
                  f"{r['sessions_lost']:>4} | {gap}")
    print("  targets: 0 sessions lost, 0 route misses, the desktop never notices (gap ratio ~1)")
