"""LDAP stall: does a directory that answers slowly slow the hub down for everyone?

The hub's LDAP port points at slicerhub.devenv.tcp_delay.DelayProxy in front
of a real slapd. Two phases of the same length on the same hub:

  A: delay 0 (the baseline);
  B: every LDAP reply delayed by 5 s, longer than the configured receive
     timeout (3 s), so logins should end with a clear 503 ("directory not
     answering") instead of hanging.

In each phase K logins are kept in flight (K threads, each logging in again as
soon as its last attempt ended) while a separate process times GET
/hub/health every 50 ms. Reported: /hub/health p50/p99 per phase, the ratio
p99(B)/p99(A), and how the logins ended.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import requests

from slicerhub.devenv.ldap import Directory, LdapUser, Slapd
from slicerhub.devenv.tcp_delay import DelayProxy
from tests.support.hub import free_port, write_config

from .harness import BenchHub, Sampler, percentile, ratio, summarize_latencies

SUFFIX = "dc=slicerhub,dc=test"
STALL_DELAY_S = 5.0
TIMEOUTS = {"connect": 2, "receive": 3, "login": 6}
CONCURRENCY = 10
MAX_LOGINS_PER_WORKER = 2000  # a bound on top of the phase's duration
TARGETS = {"health_p99_ratio_b_to_a": 1.5}
IDLE_SECONDS = 3.0
RECOVERY_BUDGET_S = 30.0


def recovery(hub) -> dict:
    """Delay back to 0: seconds until a login succeeds again (bounded)."""
    started = time.monotonic()
    attempts = 0
    while time.monotonic() - started < RECOVERY_BUDGET_S and attempts < 100:
        attempts += 1
        try:
            _, r = hub.login("stall-01", "pw-stall-01", timeout=30)
            if r.status_code == 302:
                return {"first_success_s": round(time.monotonic() - started, 2), "attempts": attempts}
        except requests.RequestException:
            pass
        time.sleep(0.1)
    return {"first_success_s": None, "attempts": attempts}


def build_directory(k: int) -> Directory:
    uids = [f"stall-{i:02d}" for i in range(1, k + 1)]
    users = [LdapUser(uid, f"Student {uid}", "Student", f"pw-{uid}") for uid in uids]
    groups = {"slicerhub-admins": [], "teachers": [], "students": uids, "anat101": uids}
    return Directory(suffix=SUFFIX, users=users, groups=groups)


def _classify(status: int | None, body: str) -> str:
    if status == 302:
        return "success"
    if status == 503 and "not answering" in body:
        return "503 directory not answering"
    if status is None:
        return "client error"
    return f"HTTP {status}"


def _login_loop(hub, uid: str, phase_end: float, results: list, lock: threading.Lock) -> None:
    for _ in range(MAX_LOGINS_PER_WORKER):
        if time.monotonic() >= phase_end:
            return
        started = time.monotonic()
        status, body, error = None, "", None
        try:
            _, r = hub.login(uid, f"pw-{uid}", timeout=30)
            status, body = r.status_code, r.text
        except requests.RequestException as e:
            error = f"{type(e).__name__}: {str(e)[:120]}"
        with lock:
            results.append(
                {"start": started, "seconds": time.monotonic() - started, "outcome": _classify(status, body), "error": error}
            )


def run_phase(hub, proxy: DelayProxy, delay: float, seconds: float, k: int) -> dict:
    proxy.delay = delay
    results: list[dict] = []
    lock = threading.Lock()
    start = time.monotonic()
    phase_end = start + seconds
    threads = [
        threading.Thread(target=_login_loop, args=(hub, f"stall-{i:02d}", phase_end, results, lock), daemon=True)
        for i in range(1, k + 1)
    ]
    for t in threads:
        t.start()
    for t in threads:  # the last attempts may run past the phase end; each ends within 30 s
        t.join(max(0.0, phase_end + 40 - time.monotonic()))
    outcomes: dict[str, int] = {}
    for r in results:
        outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
    by_outcome = {}
    for name in outcomes:
        secs = [r["seconds"] for r in results if r["outcome"] == name]
        by_outcome[name] = {"p50_s": round(percentile(secs, 50), 2), "max_s": round(max(secs), 2)}
    return {
        "delay_s": delay,
        "seconds": seconds,
        "start": start,
        "end": phase_end,
        "logins": len(results),
        "outcomes": outcomes,
        "login_seconds": by_outcome,
        "errors": [r["error"] for r in results if r["error"]][:5],
    }


def run(workdir: Path, seconds: float = 12.0, k: int = CONCURRENCY, log=print, hub_args: list[str] = ()) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    directory = build_directory(k)
    out: dict = {"delay_s": STALL_DELAY_S, "timeouts": TIMEOUTS, "k": k, "phase_seconds": seconds, "targets": TARGETS, "hub_args": list(hub_args)}
    with Slapd(workdir / "ldap", directory) as slapd, DelayProxy("127.0.0.1", slapd.port) as proxy:
        hub_dir = workdir / "hub"
        hub_dir.mkdir(exist_ok=True)
        port = free_port()
        config = write_config(
            hub_dir / "slicerhub.yaml",
            proxy.port,
            port,
            backend={"docker": {"hub_connect_ip": "127.0.0.1"}},
            culler={"enabled": False},
            ldap={"timeouts": TIMEOUTS},
        )
        hub = BenchHub(hub_dir, config, port, args=list(hub_args))
        with hub:
            out["hub_log"] = str(hub.log_path)
            log(f"[stall] hub pid {hub.pid('hub')}, {hub.url}; LDAP via DelayProxy :{proxy.port} -> slapd :{slapd.port}")
            _, r = hub.login("stall-01", "pw-stall-01")  # warm-up
            if r.status_code != 302:
                raise RuntimeError(f"warm-up login failed: HTTP {r.status_code}\n{hub.log_tail()}")
            sampler = Sampler(hub.url + "/hub/health").start()
            try:
                # Reference: the hub with nothing else to do.
                idle = {"start": time.monotonic()}
                time.sleep(IDLE_SECONDS)
                idle["end"] = time.monotonic()
                log(f"[stall] phase A: delay 0, {k} logins in flight for {seconds:g} s")
                a = run_phase(hub, proxy, 0.0, seconds, k)
                # Let LDAP worker threads and sockets of phase A wind down.
                time.sleep(1.0)
                log(f"[stall] phase B: every LDAP reply delayed {STALL_DELAY_S:g} s, {k} logins in flight for {seconds:g} s")
                b = run_phase(hub, proxy, STALL_DELAY_S, seconds, k)
                proxy.delay = 0.0
                out["recovery"] = recovery(hub)
            finally:
                samples = sampler.stop()
        for phase in (idle, a, b):
            phase["health"] = summarize_latencies(samples, phase.pop("start"), phase.pop("end"))
        out["idle"], out["phase_a"], out["phase_b"] = idle, a, b
        r_idle = ratio(b["health"]["p99_ms"], idle["health"]["p99_ms"])
        out["health_p99_ratio_b_to_idle"] = None if r_idle is None else round(r_idle, 2)
        out["health_p99_ratio_b_to_a"] = (
            None if ratio(b["health"]["p99_ms"], a["health"]["p99_ms"]) is None
            else round(ratio(b["health"]["p99_ms"], a["health"]["p99_ms"]), 2)
        )
        b_out = b["outcomes"]
        if b_out.get("503 directory not answering") and not b_out.get("success"):
            out["phase_b_logins_end"] = "with a clear 503 (directory not answering)"
        elif b_out.get("success") and not b_out.get("503 directory not answering"):
            out["phase_b_logins_end"] = "in success, slowly"
        else:
            out["phase_b_logins_end"] = "mixed: " + ", ".join(f"{v} {k}" for k, v in sorted(b_out.items()))
    return out
