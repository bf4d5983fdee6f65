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

A student told to wait (login 503/429, start 429, with Retry-After) waits that
long and asks again, as the hub's pages do (slicerhub/templates/429.html).

Two hubs of the same build serve the same classes side by side in one run:
"without" admission control (concurrent_spawn_limit 1000, no login limit) and
"with" it (the deployment file's defaults, or the `admission` overrides). The
sizes alternate between them (N=50 without, N=50 with, N=100 without, ...).
Each hub's single-user baseline (N=1, repeated sequentially) and idle hub API
latency are measured on that hub in the same run.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from slicerhub.config import load_config
from slicerhub.devenv.ldap import Directory, LdapUser, Slapd
from tests.support.hub import free_port, write_config

from .harness import LIGHT_SPAWNER, BenchHub, CpuMeter, Sampler, descendants, percentile, ratio, summarize_latencies

SUFFIX = "dc=slicerhub,dc=test"
PASSWORD = "bench-pw-{uid}"
ADMIN = "admin1"
BASELINE_REPEATS = 5
REQUEST_TIMEOUT = 60  # any one HTTP request
IDLE_WINDOW_S = 10.0  # ~200 samples: p99 is not just the maximum

TARGETS = {"starts_per_s": 30.0, "api_p99_ms_at_200": 500.0, "errors": 0, "api_p99_ratio_at_200_with": 50.0}
MAX_RETRIES = 500  # per student and step, on top of the time budget

# Hub settings of the two variants (deployment file, `hub:` section).
WITHOUT_ADMISSION = {"concurrent_spawn_limit": 1000, "concurrent_login_limit": 0}


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


def _retry_after(r: requests.Response, statuses: tuple[int, ...]) -> float | None:
    """Seconds to wait before asking again, if R is a refusal with Retry-After."""
    if r.status_code not in statuses:
        return None
    try:
        return max(0.0, float(r.headers.get("Retry-After", "")))
    except ValueError:
        return None


def simulate_student(hub, name: str, password: str, barrier: threading.Barrier, t0: list, budget: float,
                     session: requests.Session | None = None) -> dict:
    """Log in (unless SESSION is already signed in), start, follow progress until ready."""
    rec: dict = {"name": name, "ready": False, "error": None}
    try:
        barrier.wait(timeout=120)
    except threading.BrokenBarrierError:
        rec["error"] = "barrier broken"
        return rec
    start = t0[0]
    deadline = start + budget
    rec["login_refused"] = rec["start_refused"] = 0
    signed_in = session is not None
    try:
        for _ in range(0 if signed_in else MAX_RETRIES):
            # A login may wait its turn in the hub's login queue: a browser waits minutes, so do we.
            session, r = hub.login(name, password, timeout=max(REQUEST_TIMEOUT, deadline - time.monotonic()))
            wait = _retry_after(r, (429, 503))
            if wait is None or time.monotonic() + wait > deadline:
                break
            rec["login_refused"] += 1  # "sign in again in N seconds": a person would
            time.sleep(wait)
        if not signed_in:
            rec["login_s"] = time.monotonic() - start
            if r.status_code != 302:
                rec["error"] = f"login HTTP {r.status_code}"
                return rec
        rec["_session"] = session  # for a start-only round with the same, signed-in students
        xsrf = session.cookies.get("_xsrf")
        resets = 0
        for _ in range(MAX_RETRIES):
            try:
                r = session.post(
                    f"{hub.url}/hub/api/users/{name}/server",
                    headers={"X-XSRFToken": xsrf, "Referer": hub.url + "/hub/home"},
                    timeout=REQUEST_TIMEOUT,
                )
            except requests.ConnectionError:
                # A kept-alive connection the proxy closed while we waited (node's 5 s
                # keep-alive timeout): a browser sends the request again, so do we.
                resets += 1
                if resets > 3:
                    raise
                continue
            wait = _retry_after(r, (429,))
            if wait is None or time.monotonic() + wait > deadline:
                break
            rec["start_refused"] += 1  # the queue page waits Retry-After, then asks again
            time.sleep(wait)
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


STUDENT_NICE = 10  # see _lower_priority


def _lower_priority() -> None:
    """The calling student thread runs at a lower CPU priority (Linux: per thread).

    A class's browsers run on the students' machines, not on the hub's: here
    they share its cores, and at the barrier N threads sending their first
    requests took a whole core away from the hub and the proxy (client 108 %,
    hub 34 % of a core in the first 0.6 s, measured). At nice 10 they still
    get every idle cycle; the hub, the proxy and the latency sampler come first.
    """
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), STUDENT_NICE)
    except (AttributeError, OSError):
        pass


def run_class(hub, names: list[str], budget: float, sessions: dict | None = None) -> dict:
    """All `names` at once behind a barrier; returns per-user records and timing.

    With `sessions` (name -> signed-in requests.Session) nobody logs in: the
    class is already signed in and only presses "start" at the same moment."""
    t0: list[float] = []
    barrier = threading.Barrier(len(names), action=lambda: t0.append(time.monotonic()))
    records: list[dict] = [None] * len(names)  # type: ignore[list-item]

    def work(i: int, name: str) -> None:
        _lower_priority()
        records[i] = simulate_student(hub, name, PASSWORD.format(uid=name), barrier, t0, budget,
                                      session=(sessions or {}).get(name))

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
        "start_429": sum(r.get("start_refused", 0) for r in records),
        "login_refused": sum(r.get("login_refused", 0) for r in records),
        "students_queued": sum(1 for r in records if r.get("start_refused")),
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


def _prepare(hub, slapd, plan: dict, log, label: str) -> dict:
    """Admin token, uncounted warm-up spawn, idle latency and the N=1 baseline on HUB."""
    out: dict = {"hub_log": str(hub.log_path)}
    session, r = hub.login(ADMIN, PASSWORD.format(uid=ADMIN))
    if r.status_code != 302:
        raise RuntimeError(f"admin login failed: HTTP {r.status_code}\n{hub.log_tail()}")
    out["token"] = hub.api_token(session, note="bench")
    warm = run_class(hub, plan["warmup"], budget=60)
    stop_servers(hub, out["token"], plan["warmup"])
    if not warm["ready_times"]:
        raise RuntimeError(f"warm-up spawn failed: {warm['records']}\n{hub.log_tail()}")

    sampler = Sampler(hub.url + "/hub/api/").start()
    try:
        time.sleep(0.5)
        idle_start = time.monotonic()
        time.sleep(IDLE_WINDOW_S)
        idle_end = time.monotonic()
    finally:
        samples = sampler.stop()
    out["hub_api_idle"] = summarize_latencies(samples, idle_start, idle_end)

    base_times, base_errors = [], []
    for name in plan["baseline"]:
        res = run_class(hub, [name], budget=60)
        base_times += res["ready_times"]
        base_errors += [r.get("error") for r in res["records"] if not r.get("ready")]
        stop_servers(hub, out["token"], [name])
        time.sleep(0.2)
    p95_1 = percentile(base_times, 95)
    out["baseline"] = {
        "repeats": BASELINE_REPEATS,
        "ready": len(base_times),
        "errors": base_errors,
        "ttr_p50_s": _r(percentile(base_times, 50)),
        "ttr_p95_s": _r(p95_1),
    }
    out["pids"] = {**_hub_pids(hub), "slapd": [slapd.pid], "client": []}
    log(f"[burst] {label}: N=1 x{BASELINE_REPEATS} p95 time-to-ready {p95_1 and round(p95_1, 3)} s; "
        f"idle hub API p99 {out['hub_api_idle']['p99_ms']} ms")
    return out


def _hub_pids(hub) -> dict[str, list[int]]:
    """The hub process and the proxy: supervised programs (tests.support.hub.Hub
    as a Stack), or the hub with the proxy as its child (the older Hub)."""
    if hasattr(hub, "pid") and callable(hub.pid):
        try:
            hub_pid = hub.pid("hub")
            return {"hub": [hub_pid], "proxy": [hub.pid("proxy")]}
        except Exception:  # noqa: BLE001 - fall back to the process tree
            pass
    return {"hub": [hub.proc.pid], "proxy": descendants(hub.proc.pid)}


SCENARIOS = {"login": "login + start", "start": "start only"}


def _measure_class(hub, prep: dict, n: int, names: list[str], sessions: dict | None = None) -> tuple[dict, dict]:
    """One class of N on HUB, with its own latency sampler; servers stopped after.

    Without `sessions` each student logs in and starts; with them (signed-in
    sessions by name) the class only presses "start". Returns the summary and
    the students' signed-in sessions."""
    sampler = Sampler(hub.url + "/hub/api/").start()
    try:
        time.sleep(1.0)  # let the hub settle after the last stops, and the sampler get going
        meter = CpuMeter(prep["pids"]).start()
        res = run_class(hub, names, budget=max(60.0, 2.0 * n), sessions=sessions)
        cpu = meter.stop()
    finally:
        samples = sampler.stop()
    signed_in = {r["name"]: r.pop("_session") for r in res["records"] if r.get("_session") is not None}
    for r in res["records"]:
        r.pop("_session", None)
    summary = _class_summary(n, res)
    summary["scenario"] = "start" if sessions else "login"
    # CPU seconds each process used during the burst (2 cores = 2 CPU-s per second).
    summary["cpu_s"] = cpu
    summary["hub_cpu_ms_per_start"] = round(1000 * cpu["hub"] / n, 1)
    summary["ttr_p95_ratio_to_n1"] = _r(ratio(summary["ttr_p95_s"], prep["baseline"]["ttr_p95_s"]), 2)
    api = summarize_latencies(samples, res["start"], max(res["end"], res["start"] + 0.05))
    api["p99_ratio_to_idle"] = _r(ratio(api["p99_ms"], prep["hub_api_idle"]["p99_ms"]), 2)
    summary["hub_api"] = api
    # The same without the first 2 s (N page loads and connections at once), for the analysis.
    summary["hub_api_after_2s"] = summarize_latencies(samples, res["start"] + 2.0, max(res["end"], res["start"] + 2.05))
    summary["stop_wall_s"] = round(stop_servers(hub, prep["token"], names), 2)
    return summary, signed_in


def run(sizes: list[int], workdir: Path, log=print, hub_args: list[str] = (), admission: dict | None = None) -> dict:
    """Both variants side by side; `admission` overrides the "with" hub's `hub:` settings."""
    workdir.mkdir(parents=True, exist_ok=True)
    plan = plan_users(sizes)
    directory = build_directory(plan)
    variants = {"without": dict(WITHOUT_ADMISSION), "with": dict(admission or {})}
    log(f"[burst] directory: {len(directory.users)} accounts; slapd + 2 hubs in {workdir}")
    out: dict = {"sizes": sizes, "targets": TARGETS, "workdir": str(workdir), "hub_args": list(hub_args),
                 "variants": {}}
    with contextlib.ExitStack() as stack:
        slapd = stack.enter_context(Slapd(workdir / "ldap", directory))
        hubs, preps = {}, {}
        for label, hub_settings in variants.items():
            hub_dir = workdir / f"hub-{label}"
            hub_dir.mkdir(exist_ok=True)
            port = free_port()
            config = write_config(
                hub_dir / "slicerhub.yaml",
                slapd.port,
                port,
                hub=hub_settings,
                backend={"docker": {"hub_connect_ip": "127.0.0.1"}},
                culler={"enabled": False},
            )
            settings = load_config(config).hub.model_dump()  # the file with the defaults filled in
            out["variants"][label] = {
                "settings": {k: settings.get(k) for k in
                             ("concurrent_spawn_limit", "spawn_retry_seconds", "concurrent_login_limit",
                              "login_queue_seconds")},
                "classes": [],
            }
            try:
                hubs[label] = stack.enter_context(
                    BenchHub(hub_dir, config, port, args=[f"--JupyterHub.spawner_class={LIGHT_SPAWNER}", *hub_args])
                )
                log(f"[burst] hub {label} admission control: {hubs[label].url}")
                preps[label] = _prepare(hubs[label], slapd, plan, log, label)
            except Exception as e:  # noqa: BLE001 - the other variant may still be measured
                reason = f"{type(e).__name__}: {str(e)[:500]}"
                log(f"[burst] hub {label} admission control: not measured ({reason})")
                out["variants"][label]["not_measured"] = reason
                continue
            out["variants"][label].update({
                "hub_log": preps[label]["hub_log"],
                "baseline": preps[label]["baseline"],
                "hub_api_idle": preps[label]["hub_api_idle"],
            })
        if not preps:
            raise RuntimeError("no hub could be prepared: " + "; ".join(
                v.get("not_measured", "") for v in out["variants"].values()))
        for n in sizes:
            for label in preps:
                sessions = None
                for scenario in SCENARIOS:
                    if scenario == "start" and not sessions:
                        continue  # nobody signed in: nothing to start
                    try:
                        summary, signed_in = _measure_class(hubs[label], preps[label], n, plan[f"n{n}"], sessions)
                    except Exception as e:  # noqa: BLE001 - this one is missing; the others are still measured
                        reason = f"{type(e).__name__}: {str(e)[:300]}"
                        log(f"[burst] N={n} {label} admission, {SCENARIOS[scenario]}: not measured ({reason})")
                        out["variants"][label]["classes"].append({"n": n, "scenario": scenario, "not_measured": reason})
                        break
                    sessions = sessions or signed_in
                    out["variants"][label]["classes"].append(summary)
                    _log_class(log, label, summary)
    return out


def _log_class(log, label: str, summary: dict) -> None:
    log(
        f"[burst] N={summary['n']} {label} admission, {SCENARIOS[summary['scenario']]}: "
        f"{summary['ready']} ready, {summary['errors']} errors, "
        f"{summary['starts_per_s']} starts/s, p95 {summary['ttr_p95_s']} s, "
        f"{summary['start_429']} x 429, API p99 {summary['hub_api']['p99_ms']} ms "
        f"({summary['hub_api']['p99_ratio_to_idle']}x idle)"
    )
