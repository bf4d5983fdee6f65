"""Class burst: N students log in and start lightweight servers at the same moment.

One slapd holds every account of the run; one hub (real JupyterHub + CHP, the
real LDAP authenticator, SlicerSpawner's profile checks in front of the
in-process stub of benchmarks.light_spawner) serves every size in turn. Each
size uses fresh user names (a class arriving for the first time) and all its
servers are stopped before the next size.

Per simulated student (a thread with its own requests.Session), from the
moment a barrier releases all N at once:
  GET+POST /hub/login (XSRF form) -> POST /hub/api/users/<name>/server
  (cookie + X-XSRFToken + Referer) -> follow .../server/progress (SSE) until
  `ready` or `failed`.
Meanwhile a separate process times GET /hub/api/ every 50 ms.

The single-user baseline (N=1, repeated sequentially) and the idle hub API
latency are measured on the same hub in the same run.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from slicerhub.devenv.ldap import Directory, LdapUser, Slapd
from tests.support.hub import free_port, write_config

from .harness import LIGHT_SPAWNER, BenchHub, CpuMeter, Sampler, descendants, percentile, ratio, summarize_latencies

SUFFIX = "dc=slicerhub,dc=test"
PASSWORD = "bench-pw-{uid}"
ADMIN = "admin1"
BASELINE_REPEATS = 5
REQUEST_TIMEOUT = 60  # any one HTTP request
IDLE_WINDOW_S = 3.0

TARGETS = {"starts_per_s": 30.0, "api_p99_ms_at_200": 500.0, "errors": 0}


def _uids(prefix: str, n: int) -> list[str]:
    return [f"{prefix}-{i:03d}" for i in range(1, n + 1)]


def plan_users(sizes: list[int]) -> dict[str, list[str]]:
    """Fresh names for each part of the run: warm-up, baseline, each size."""
    plan = {"warmup": _uids("warm", 1), "baseline": _uids("base", BASELINE_REPEATS)}
    for n in sizes:
        plan[f"n{n}"] = _uids(f"c{n}", n)
    return plan


def build_directory(plan: dict[str, list[str]]) -> Directory:
    students = [uid for uids in plan.values() for uid in uids]
    users = [LdapUser(ADMIN, "Ada Admin", "Admin", PASSWORD.format(uid=ADMIN))]
    users += [LdapUser(uid, f"Student {uid}", "Student", PASSWORD.format(uid=uid)) for uid in students]
    groups = {
        "slicerhub-admins": [ADMIN],
        "teachers": [],
        "students": students,
        # The demo's course group: every student is in it, so each login syncs two hub groups.
        "anat101": students,
    }
    return Directory(suffix=SUFFIX, users=users, groups=groups)


# --------------------------------------------------------------------------
# one simulated student
# --------------------------------------------------------------------------


def _server_ready(hub, session, name: str) -> bool:
    xsrf = session.cookies.get("_xsrf")
    r = session.get(
        f"{hub.url}/hub/api/users/{name}",
        headers={"X-XSRFToken": xsrf, "Referer": hub.url + "/hub/home"},
        timeout=REQUEST_TIMEOUT,
    )
    r.raise_for_status()
    server = (r.json().get("servers") or {}).get("")
    return bool(server and server.get("ready"))


def _follow_progress(hub, session, name: str, deadline: float) -> tuple[bool, str | None]:
    """(ready, error) from the progress stream; bounded by `deadline`."""
    xsrf = session.cookies.get("_xsrf")
    headers = {"X-XSRFToken": xsrf, "Referer": hub.url + "/hub/spawn-pending/" + name}
    for _attempt in range(3):
        with session.get(
            f"{hub.url}/hub/api/users/{name}/server/progress",
            headers=headers,
            stream=True,
            timeout=(10, 30),  # keepalives come every 8 s
        ) as r:
            if r.status_code == 400:
                # "not starting": between the end of the spawn and `ready`, or already done.
                if _server_ready(hub, session, name):
                    return True, None
                time.sleep(0.05)
                continue
            if r.status_code != 200:
                return False, f"progress HTTP {r.status_code}"
            for line in r.iter_lines(decode_unicode=True):
                if time.monotonic() > deadline:
                    return False, "progress: deadline"
                if not line or not line.startswith("data:"):
                    continue
                event = json.loads(line[5:])
                if event.get("ready"):
                    return True, None
                if event.get("failed"):
                    return False, "spawn failed: " + str(event.get("message"))[:200]
        # Stream ended without a verdict: ask the user model.
        if _server_ready(hub, session, name):
            return True, None
    return False, "progress: no ready event"


def simulate_student(hub, name: str, password: str, barrier: threading.Barrier, t0: list, budget: float) -> dict:
    rec: dict = {"name": name, "ready": False, "error": None}
    try:
        barrier.wait(timeout=120)
    except threading.BrokenBarrierError:
        rec["error"] = "barrier broken"
        return rec
    start = t0[0]
    deadline = start + budget
    try:
        session, r = hub.login(name, password, timeout=REQUEST_TIMEOUT)
        rec["login_s"] = time.monotonic() - start
        if r.status_code != 302:
            rec["error"] = f"login HTTP {r.status_code}"
            return rec
        xsrf = session.cookies.get("_xsrf")
        r = session.post(
            f"{hub.url}/hub/api/users/{name}/server",
            headers={"X-XSRFToken": xsrf, "Referer": hub.url + "/hub/home"},
            timeout=REQUEST_TIMEOUT,
        )
        rec["post_s"] = time.monotonic() - start
        rec["post_status"] = r.status_code
        if r.status_code not in (201, 202):
            rec["error"] = f"start HTTP {r.status_code}: {r.text[:200]}"
            return rec
        ready, error = _follow_progress(hub, session, name, deadline)
        rec["ready"], rec["error"] = ready, error
        if ready:
            rec["ready_s"] = time.monotonic() - start
    except requests.RequestException as e:
        rec["error"] = f"{type(e).__name__}: {str(e)[:200]}"
    except Exception as e:  # noqa: BLE001 - a benchmark reports, it does not crash
        rec["error"] = f"{type(e).__name__}: {str(e)[:200]}"
    return rec


def run_class(hub, names: list[str], budget: float) -> dict:
    """All `names` at once behind a barrier; returns per-user records and timing."""
    t0: list[float] = []
    barrier = threading.Barrier(len(names), action=lambda: t0.append(time.monotonic()))
    records: list[dict] = [None] * len(names)  # type: ignore[list-item]

    def work(i: int, name: str) -> None:
        records[i] = simulate_student(hub, name, PASSWORD.format(uid=name), barrier, t0, budget)

    threads = [threading.Thread(target=work, args=(i, n), daemon=True, name=f"student-{n}") for i, n in enumerate(names)]
    for t in threads:
        t.start()
    hard_end = time.monotonic() + 120 + budget + 30
    for t in threads:
        t.join(max(0.0, hard_end - time.monotonic()))
    records = [r or {"name": names[i], "ready": False, "error": "thread did not finish"} for i, r in enumerate(records)]
    start = t0[0] if t0 else time.monotonic()
    ready_times = [r["ready_s"] for r in records if r.get("ready")]
    end = start + (max(ready_times) if ready_times else 0.0)
    return {"start": start, "end": end, "records": records, "ready_times": ready_times}


def stop_servers(hub, token: str, names: list[str], timeout: float = 120) -> float:
    """DELETE every server (admin token), wait until none is left; returns seconds."""
    headers = {"Authorization": f"token {token}"}
    started = time.monotonic()

    def delete(name: str) -> None:
        try:
            requests.delete(f"{hub.url}/hub/api/users/{name}/server", headers=headers, timeout=REQUEST_TIMEOUT)
        except requests.RequestException:
            pass

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(delete, names))
    pending = set(names)
    deadline = started + timeout
    while pending and time.monotonic() < deadline:
        r = requests.get(f"{hub.url}/hub/api/users", params={"state": "active"}, headers=headers, timeout=REQUEST_TIMEOUT)
        if r.ok:
            active = {u["name"] for u in r.json()}
            pending &= active
        if pending:
            time.sleep(0.2)
    return time.monotonic() - started


# --------------------------------------------------------------------------
# the benchmark
# --------------------------------------------------------------------------


def _class_summary(n: int, result: dict) -> dict:
    records = result["records"]
    ready = result["ready_times"]
    errors = [r for r in records if not r.get("ready")]
    wall = result["end"] - result["start"]
    error_kinds: dict[str, int] = {}
    for r in errors:
        kind = (r.get("error") or "unknown").split(":")[0]
        error_kinds[kind] = error_kinds.get(kind, 0) + 1
    logins = [r["login_s"] for r in records if "login_s" in r]
    return {
        "n": n,
        "ready": len(ready),
        "errors": len(errors),
        "error_kinds": error_kinds,
        "error_examples": [r.get("error") for r in errors[:5]],
        "wall_s": round(wall, 3),
        "starts_per_s": round(len(ready) / wall, 2) if wall > 0 and ready else None,
        "ttr_p50_s": _r(percentile(ready, 50)),
        "ttr_p95_s": _r(percentile(ready, 95)),
        "ttr_max_s": _r(max(ready) if ready else None),
        "login_p50_s": _r(percentile(logins, 50)),
        "login_p95_s": _r(percentile(logins, 95)),
    }


def _r(x: float | None, nd: int = 3) -> float | None:
    return None if x is None else round(x, nd)


def run(sizes: list[int], workdir: Path, log=print, hub_args: list[str] = ()) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    plan = plan_users(sizes)
    directory = build_directory(plan)
    log(f"[burst] directory: {len(directory.users)} accounts; slapd + hub in {workdir}")
    out: dict = {"sizes": sizes, "targets": TARGETS, "workdir": str(workdir), "hub_args": list(hub_args)}
    with Slapd(workdir / "ldap", directory) as slapd:
        hub_dir = workdir / "hub"
        hub_dir.mkdir(exist_ok=True)
        port = free_port()
        config = write_config(
            hub_dir / "slicerhub.yaml",
            slapd.port,
            port,
            hub={"concurrent_spawn_limit": 1000},
            backend={"docker": {"hub_connect_ip": "127.0.0.1"}},
            culler={"enabled": False},
        )
        hub = BenchHub(hub_dir, config, port, args=[f"--JupyterHub.spawner_class={LIGHT_SPAWNER}", *hub_args])
        with hub:
            out["hub_log"] = str(hub.log_path)
            log(f"[burst] hub pid {hub.proc.pid}, {hub.url}")
            session, r = hub.login(ADMIN, PASSWORD.format(uid=ADMIN))
            if r.status_code != 302:
                raise RuntimeError(f"admin login failed: HTTP {r.status_code}\n{hub.log_tail()}")
            token = hub.api_token(session, note="bench")

            sampler = Sampler(hub.url + "/hub/api/").start()
            try:
                # Warm-up (not counted): first spawn through the hub.
                warm = run_class(hub, plan["warmup"], budget=60)
                stop_servers(hub, token, plan["warmup"])
                if not warm["ready_times"]:
                    raise RuntimeError(f"warm-up spawn failed: {warm['records']}\n{hub.log_tail()}")

                idle_start = time.monotonic()
                time.sleep(IDLE_WINDOW_S)
                idle_end = time.monotonic()

                base_times, base_errors = [], []
                for name in plan["baseline"]:
                    res = run_class(hub, [name], budget=60)
                    base_times += res["ready_times"]
                    base_errors += [r.get("error") for r in res["records"] if not r.get("ready")]
                    stop_servers(hub, token, [name])
                    time.sleep(0.2)
                p95_1 = percentile(base_times, 95)
                out["baseline"] = {
                    "repeats": BASELINE_REPEATS,
                    "ready": len(base_times),
                    "errors": base_errors,
                    "ttr_p50_s": _r(percentile(base_times, 50)),
                    "ttr_p95_s": _r(p95_1),
                }
                log(f"[burst] N=1 x{BASELINE_REPEATS}: p95 time-to-ready {p95_1 and round(p95_1, 3)} s")

                classes = []
                pids = {"hub": [hub.proc.pid], "proxy": descendants(hub.proc.pid), "slapd": [slapd.pid], "client": []}
                for n in sizes:
                    time.sleep(1.0)  # let the hub settle after the last stops
                    names = plan[f"n{n}"]
                    meter = CpuMeter(pids).start()
                    res = run_class(hub, names, budget=max(60.0, 2.0 * n))
                    cpu = meter.stop()
                    summary = _class_summary(n, res)
                    # CPU seconds each process used during the burst (2 cores = 2 CPU-s per second).
                    summary["cpu_s"] = cpu
                    summary["hub_cpu_ms_per_start"] = round(1000 * cpu["hub"] / n, 1)
                    summary["ttr_p95_ratio_to_n1"] = _r(ratio(summary["ttr_p95_s"], p95_1), 2)
                    summary["_window"] = (res["start"], max(res["end"], res["start"] + 0.05))
                    summary["stop_wall_s"] = round(stop_servers(hub, token, names), 2)
                    classes.append(summary)
                    log(
                        f"[burst] N={n}: {summary['ready']} ready, {summary['errors']} errors, "
                        f"{summary['starts_per_s']} starts/s, p95 {summary['ttr_p95_s']} s"
                    )
            finally:
                samples = sampler.stop()
            idle = summarize_latencies(samples, idle_start, idle_end)
            out["hub_api_idle"] = idle
            for summary in classes:
                start, end = summary.pop("_window")
                api = summarize_latencies(samples, start, end)
                api["p99_ratio_to_idle"] = _r(ratio(api["p99_ms"], idle["p99_ms"]), 2)
                summary["hub_api"] = api
            out["classes"] = classes
            out["sampler_samples"] = len(samples)
    return out
