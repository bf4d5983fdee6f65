"""Shared pieces: a Hub with extra command-line args, a latency sampler, statistics."""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import time
from pathlib import Path
from typing import Iterable, Sequence

import requests

from tests.support.hub import ROOT, Hub

LIGHT_SPAWNER = "benchmarks.light_spawner.LightSpawner"


class BenchHub(Hub):
    """tests.support.hub.Hub that can import the benchmarks package.

    The repository root goes on PYTHONPATH so that the hub can import
    `benchmarks.light_spawner` from its own work directory.
    """

    def __init__(self, workdir: Path, config: Path, port: int, env: dict[str, str] | None = None, args: Sequence[str] = ()):
        pythonpath = os.pathsep.join(p for p in [str(ROOT), os.environ.get("PYTHONPATH", "")] if p)
        super().__init__(workdir, config, port, env={"PYTHONPATH": pythonpath, **(env or {})}, args=args)


@contextlib.contextmanager
def docker_deployment(workdir: Path, name: str, **overrides):
    """slapd + hub with the real Docker backend on the slicer-core image (built if
    needed); yields (hub, docker client, container prefix) and removes the run's
    containers and volumes afterwards."""
    import docker

    from slicerhub.devenv.images import build_with_parents, ensure_base_image
    from slicerhub.devenv.ldap import Slapd
    from tests.integration.conftest import test_directory
    from tests.support.hub import free_port, write_config
    from tests.support.sessions import remove_prefixed

    workdir.mkdir(parents=True, exist_ok=True)
    ensure_base_image()
    build_with_parents("slicer-core")
    client = docker.from_env()
    prefix = f"{name}{int(time.time()) % 100000}"
    ldap = Slapd(workdir / "ldap", test_directory())
    ldap.start()
    port = free_port()
    config = write_config(workdir / "slicerhub.yaml", ldap.port, port,
                          backend={"docker": {"network": "slicerhub-bench", "remove": False,
                                              "home_volume": prefix + "-home-{username}",
                                              "container_prefix": prefix}}, **overrides)
    hub = Hub(workdir, config, port)
    try:
        hub.start()
        yield hub, client, prefix
    finally:
        hub.stop()
        ldap.stop()
        remove_prefixed(client, prefix)


# --------------------------------------------------------------------------
# statistics
# --------------------------------------------------------------------------


def percentile(values: Iterable[float], q: float) -> float | None:
    """Linear-interpolated percentile (numpy's default); None for no values."""
    xs = sorted(values)
    if not xs:
        return None
    if len(xs) == 1:
        return xs[0]
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return a / b


def summarize_latencies(samples: list[tuple[float, float, object]], start: float, end: float) -> dict:
    """Samples (t_sent, latency_s, status) sent within [start, end]."""
    window = [s for s in samples if start <= s[0] <= end]
    lat = [s[1] for s in window]
    ok = [s for s in window if s[2] == 200]
    return {
        "count": len(window),
        "not_ok": len(window) - len(ok),
        "p50_ms": _ms(percentile(lat, 50)),
        "p99_ms": _ms(percentile(lat, 99)),
        "max_ms": _ms(max(lat) if lat else None),
    }


def _ms(x: float | None) -> float | None:
    return None if x is None else round(x * 1000.0, 1)


# --------------------------------------------------------------------------
# the latency sampler, in its own process
# --------------------------------------------------------------------------


def _sample_loop(url, interval, max_seconds, max_samples, stop, conn):  # pragma: no cover - child process
    """Open loop: a request is sent every `interval` whether or not the last
    ones have answered (up to SAMPLER_THREADS outstanding), so a long stall
    shows up as many slow samples, not as one (no coordinated omission)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    local = threading.local()
    samples = []
    lock = threading.Lock()

    def one() -> None:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        sent = time.monotonic()
        try:
            status = session.get(url, timeout=10).status_code
        except requests.RequestException as e:
            status = type(e).__name__
        with lock:
            samples.append((sent, time.monotonic() - sent, status))

    end = time.monotonic() + max_seconds
    nxt = time.monotonic()
    sent = 0
    conn.send("ready")
    with ThreadPoolExecutor(SAMPLER_THREADS) as pool:
        while not stop.is_set() and time.monotonic() < end and sent < max_samples:
            pool.submit(one)
            sent += 1
            nxt += interval
            wait = nxt - time.monotonic()
            if wait > 0:
                stop.wait(wait)
    conn.send(sorted(samples))
    conn.close()


SAMPLER_THREADS = 128


class Sampler:
    """Times GET `url` every `interval` seconds (open loop) from a separate process.

    A separate process, so that the hundreds of client threads of a burst do
    not add their GIL waits to the figures. Samples are
    (time.monotonic() when sent, latency seconds, HTTP status or error name);
    CLOCK_MONOTONIC is shared by all processes on Linux, so they line up
    with the caller's own time.monotonic() stamps.
    """

    def __init__(self, url: str, interval: float = 0.05, max_seconds: float = 900, max_samples: int = 40000):
        ctx = multiprocessing.get_context("spawn")
        self._stop = ctx.Event()
        self._recv, send = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(
            target=_sample_loop,
            args=(url, interval, max_seconds, max_samples, self._stop, send),
            name="latency-sampler",
            daemon=True,
        )
        self.samples: list[tuple[float, float, object]] = []

    def start(self, timeout: float = 30) -> "Sampler":
        self._proc.start()
        if not self._recv.poll(timeout):
            raise RuntimeError("latency sampler did not start")
        self._recv.recv()
        return self

    def stop(self, timeout: float = 30) -> list[tuple[float, float, object]]:
        self._stop.set()
        if self._recv.poll(timeout):
            self.samples = self._recv.recv()
        self._proc.join(timeout)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(5)
        return self.samples


# --------------------------------------------------------------------------
# the machine
# --------------------------------------------------------------------------


def machine_state() -> dict:
    load1, load5, load15 = os.getloadavg()
    return {"cores": os.cpu_count(), "load1": round(load1, 2), "load5": round(load5, 2), "load15": round(load15, 2)}


def busy(state: dict) -> bool:
    """A 1-minute load above half the cores before we start: someone else is working."""
    return state["load1"] > 0.5 * (state["cores"] or 1)


# --------------------------------------------------------------------------
# CPU time of the processes under test (Linux /proc), to see who is busy
# --------------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of one process (all its threads), or None."""
    fields = _stat_fields(pid) if pid else None
    if not fields:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICK


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` (the hub's proxy, services)."""
    parent_of: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields:
                parent_of[int(entry.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parent_of.items() if pp == p]
        found += kids
        frontier += kids
    return found


class CpuMeter:
    """CPU seconds spent by named processes between start() and stop()."""

    def __init__(self, pids: dict[str, list[int]]):
        self.pids = pids
        self._before: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        out = {}
        for name, pids in self.pids.items():
            if name == "client":
                t = os.times()
                out[name] = t.user + t.system
            else:
                out[name] = sum(cpu_seconds(p) or 0.0 for p in pids)
        return out

    def start(self) -> "CpuMeter":
        self._before = self._now()
        self._t = time.monotonic()
        return self

    def stop(self) -> dict[str, float]:
        after = self._now()
        wall = time.monotonic() - self._t
        used = {name: round(after[name] - self._before.get(name, 0.0), 2) for name in after}
        used["wall"] = round(wall, 2)
        return used
