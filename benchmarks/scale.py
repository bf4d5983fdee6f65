"""Scale: a hub with thousands of registered users and a thousand active servers
(issue 11), on SQLite and on PostgreSQL.

Per database, one stack as production runs it (proxy, hub, services under
supervisord; the hub's database in data_dir, or a real PostgreSQL on loopback
through `hub.database`), and one stub farm (benchmarks/farm.py: one process
outside the hub, one tiny listener per server, activity reports with each
server's own token). In order, on the same stack:

1. baseline: the stack's first start; the idle hub (admin only, no servers):
   hub API latency, CPU, RSS; and a restart of the idle hub;
2. users registered through the REST API in batches (`POST /hub/api/users`,
   admin token) - not LDAP logins, which would measure the directory;
3. `active` servers started through the REST API (`POST .../server`, 20 at
   once as jupyterhub-stress-test does, 429 + Retry-After honoured);
4. per user count (the servers stay up, more users are added): the loaded hub,
   with every server reporting activity every `activity_interval` s - hub API
   p50/p99 (GET /hub/api/, GET /hub/api/users/NAME, the first page of
   GET /hub/api/users?state=active), hub CPU and RSS, the full paginated
   active list; then a hub restart (stop + start of the hub program) until the
   hub API answers, the hub reports every server ready again and every route
   answers through the proxy with its own server.

Every figure is next to the same stack's baseline as a ratio, and PostgreSQL
next to SQLite. Nothing is asserted; a step that fails is `not_measured`.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from slicerhub.wait import wait_for

from .farm import Farm
from .harness import BenchHub, cpu_seconds, descendants, percentile, ratio

USERS = (1000, 3000)
ACTIVE = 1000
QUICK_USERS = (50, 100)
QUICK_ACTIVE = 20
DATABASES = ("sqlite", "postgresql")
SPAWN_LIMIT = 100            # the deployment default is 10 (admission control for a class)
START_WORKERS = 20           # jupyterhub-stress-test's API batch size
ACTIVITY_INTERVAL = 60.0     # jupyterhub-singleuser's default is 300 s: 5x the production rate
BATCH = 100
PAGE = 200                   # JupyterHub's largest page
ANCHORS = {
    "stress_test_1000_servers_s": {"postgresql": [38, 49], "sqlite": [66, 83]},
    "stress_test_active_list_1000_ms": [70, 90],
    "rubin_labs_on_one_hub": 3000,
}


def _names(n: int) -> list[str]:
    return [f"scale{i:05d}" for i in range(1, n + 1)]


# --------------------------------------------------------------------------
# latency of a few hub API endpoints, open loop, from its own process
# --------------------------------------------------------------------------

def _sample_loop(base, token, names, interval, stop, conn):  # pragma: no cover - child process
    import threading as _t
    from concurrent.futures import ThreadPoolExecutor as _Pool

    local = _t.local()
    auth = {"Authorization": f"token {token}"}
    endpoints = [
        ("GET /hub/api/", lambda: (base + "/hub/api/", {})),
        ("GET /hub/api/users/NAME", lambda: (f"{base}/hub/api/users/{random.choice(names)}", auth)),
        (f"GET /hub/api/users?state=active (page of {PAGE})",
         lambda: (f"{base}/hub/api/users?state=active&limit={PAGE}",
                  {**auth, "Accept": "application/jupyterhub-pagination+json"})),
    ]
    samples, lock = [], _t.Lock()

    def one(label, make):
        s = getattr(local, "s", None) or requests.Session()
        local.s = s
        url, headers = make()
        sent = time.monotonic()
        try:
            status = s.get(url, headers=headers, timeout=30).status_code
        except requests.RequestException as e:
            status = type(e).__name__
        with lock:
            samples.append((label, sent, time.monotonic() - sent, status))

    conn.send("ready")
    nxt, i = time.monotonic(), 0
    with _Pool(64) as pool:
        while not stop.is_set():
            label, make = endpoints[i % len(endpoints)]
            pool.submit(one, label, make)
            i += 1
            nxt += interval
            wait = nxt - time.monotonic()
            if wait > 0:
                stop.wait(wait)
    conn.send(samples)


def measure_window(hub, token: str, names: list[str], seconds: float, pids: dict[str, list[int]],
                   interval: float = 0.1) -> dict:
    """Hub API latency per endpoint, CPU % of one core per process and the hub's RSS over `seconds`."""
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_sample_loop, args=(hub.url, token, names or ["admin1"], interval, stop, send),
                       daemon=True, name="scale-sampler")
    proc.start()
    if not recv.poll(60):
        proc.terminate()
        raise RuntimeError("latency sampler did not start")
    recv.recv()
    cpu0 = {k: sum(cpu_seconds(p) or 0.0 for p in v) for k, v in pids.items()}
    t0 = time.monotonic()
    rss = []
    while time.monotonic() - t0 < seconds:
        time.sleep(1)
        rss.append(rss_mb(pids["hub"][0]))
    wall = time.monotonic() - t0
    cpu1 = {k: sum(cpu_seconds(p) or 0.0 for p in v) for k, v in pids.items()}
    stop.set()
    samples = recv.recv() if recv.poll(60) else []
    proc.join(30)
    out: dict = {"seconds": round(wall, 1), "endpoints": {}}
    labels = sorted({s[0] for s in samples})
    for label in [*labels, "all"]:
        mine = [s for s in samples if label in ("all", s[0])]
        lat = [s[2] for s in mine]
        out["endpoints"][label] = {
            "count": len(mine), "not_ok": sum(1 for s in mine if s[3] != 200),
            "p50_ms": _ms(percentile(lat, 50)), "p99_ms": _ms(percentile(lat, 99)),
        }
    out["cpu_pct"] = {k: round(100 * (cpu1[k] - cpu0[k]) / wall, 1) for k in pids}
    rss = [r for r in rss if r is not None]
    out["hub_rss_mb"] = max(rss) if rss else None
    return out


def _ms(x):
    return None if x is None else round(x * 1000, 1)


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


# --------------------------------------------------------------------------
# the hub's REST API
# --------------------------------------------------------------------------

class Api:
    def __init__(self, hub, token: str):
        self.hub, self.auth = hub, {"Authorization": f"token {token}"}
        self._local = threading.local()

    @property
    def s(self) -> requests.Session:
        s = getattr(self._local, "s", None)
        if s is None:
            s = self._local.s = requests.Session()
            s.headers.update(self.auth)
        return s

    def register(self, names: list[str]) -> float:
        """Create users in batches; returns seconds."""
        t = time.monotonic()
        for i in range(0, len(names), BATCH):
            batch = names[i:i + BATCH]
            r = self.s.post(f"{self.hub.url}/hub/api/users", json={"usernames": batch}, timeout=300)
            if r.status_code not in (201, 409):
                raise RuntimeError(f"POST /hub/api/users: {r.status_code} {r.text[:200]}")
        return time.monotonic() - t

    def ready(self, name: str) -> bool:
        r = self.s.get(f"{self.hub.url}/hub/api/users/{name}", timeout=60)
        return r.ok and bool((r.json().get("servers") or {}).get("", {}).get("ready"))

    def start_one(self, name: str, bound: float = 900) -> dict:
        end = time.monotonic() + bound
        refused = 0
        while time.monotonic() < end:
            r = self.s.post(f"{self.hub.url}/hub/api/users/{name}/server", json={}, timeout=300)
            if r.status_code == 429:
                refused += 1
                time.sleep(float(r.headers.get("Retry-After") or 5))
                continue
            if r.status_code == 400 and "already running" in r.text:
                return {"ok": True, "refused": refused}
            if r.status_code not in (201, 202):
                return {"ok": False, "refused": refused, "error": f"{r.status_code} {r.text[:120]}"}
            while r.status_code == 202 and time.monotonic() < end and not self.ready(name):
                time.sleep(0.5)
            return {"ok": True, "refused": refused}
        return {"ok": False, "refused": refused, "error": "bound reached"}

    def start_all(self, names: list[str]) -> dict:
        t = time.monotonic()
        with ThreadPoolExecutor(START_WORKERS) as pool:
            results = list(pool.map(self.start_one, names))
        wall = time.monotonic() - t
        errors = [r["error"] for r in results if not r["ok"]]
        return {"n": len(names), "seconds": round(wall, 1), "starts_per_s": round(len(names) / wall, 1),
                "refused_429": sum(r["refused"] for r in results), "errors": len(errors),
                "error_examples": errors[:3]}

    def ready_names(self) -> set[str]:
        ready, offset = set(), 0
        while True:
            r = self.s.get(f"{self.hub.url}/hub/api/users",
                           params={"state": "ready", "offset": offset, "limit": PAGE},
                           headers={"Accept": "application/jupyterhub-pagination+json"}, timeout=120)
            r.raise_for_status()
            page = r.json()
            ready |= {u["name"] for u in page["items"]}
            nxt = (page.get("_pagination") or {}).get("next")
            if not nxt:
                return ready
            offset = nxt["offset"]

    def active_list_ms(self, repeats: int = 3) -> float | None:
        """The full active-user list (every page), median of `repeats`."""
        times = []
        for _ in range(repeats):
            t, offset = time.monotonic(), 0
            while True:
                r = self.s.get(f"{self.hub.url}/hub/api/users",
                               params={"state": "active", "offset": offset, "limit": PAGE},
                               headers={"Accept": "application/jupyterhub-pagination+json"}, timeout=120)
                r.raise_for_status()
                nxt = (r.json().get("_pagination") or {}).get("next")
                if not nxt:
                    break
                offset = nxt["offset"]
            times.append(time.monotonic() - t)
        return _ms(percentile(times, 50))


def routes_ok(hub, names: list[str]) -> int:
    """How many of the servers answer through the proxy, each with its own listener."""
    local = threading.local()

    def one(name):
        s = getattr(local, "s", None) or requests.Session()
        local.s = s
        try:
            r = s.get(f"{hub.url}/user/{name}/lab", allow_redirects=False, timeout=30)
        except requests.RequestException:
            return False
        return r.status_code == 200 and r.text.startswith(f"farm server of {name} ")

    with ThreadPoolExecutor(16) as pool:
        return sum(pool.map(one, names))


def hub_api_up(hub) -> bool:
    try:
        return requests.get(hub.url + "/hub/api/", timeout=5).status_code == 200
    except requests.RequestException:
        return False


def restart(hub, api: Api | None, names: list[str], bound: float = 900) -> dict:
    """Stop + start the hub program; seconds until the hub API answers, the hub
    reports every server ready, and every route answers through the proxy."""
    out: dict = {}
    t0 = time.monotonic()
    hub.stop_program("hub")
    out["stop_s"] = round(time.monotonic() - t0, 2)
    if names:
        out["routes_ok_while_hub_down"] = f"{routes_ok(hub, names)}/{len(names)}"
    t1 = time.monotonic()
    hub._rpc().startProcess("hub", False)
    wait_for(lambda: hub_api_up(hub), bound, interval=0.1, what="the hub API after the restart")
    out["api_back_s"] = round(time.monotonic() - t1, 2)
    if names:
        want = set(names)
        wait_for(lambda: want <= api.ready_names(), bound, interval=0.5, what="every server resumed")
        out["all_ready_s"] = round(time.monotonic() - t1, 2)
        wait_for(lambda: routes_ok(hub, names) == len(names), bound, interval=0.5, what="every route")
        out["all_routes_s"] = round(time.monotonic() - t1, 2)
    out["all_back_s"] = round(time.monotonic() - t1, 2)
    out["with_stop_s"] = round(time.monotonic() - t0, 2)
    return out


# --------------------------------------------------------------------------
# one database
# --------------------------------------------------------------------------

def _step(row: dict, key: str, fn):
    try:
        row[key] = fn()
    except Exception as e:  # noqa: BLE001 - printed, the rest goes on
        row[key] = {"not_measured": f"{type(e).__name__}: {str(e)[:300]}"}
        print(f"[scale] {key}: not measured ({row[key]['not_measured']})", flush=True)
    return row[key]


def _one_database(db: str, workdir: Path, ldap_port: int, users: tuple[int, ...], active: int,
                  window: float, activity_interval: float) -> dict:
    from slicerhub.devenv.postgres import Postgres
    from tests.support.hub import free_port, write_config

    out: dict = {"database": db, "sizes": []}
    with contextlib.ExitStack() as stack:
        hub_over: dict = {"concurrent_spawn_limit": SPAWN_LIMIT}
        pg = None
        if db == "postgresql":
            pg = stack.enter_context(Postgres())
            hub_over["database"] = {"url": pg.url, "password_file": str(pg.password_file)}
        farm = stack.enter_context(Farm(workdir / "farm", activity_interval=activity_interval))
        port = free_port()
        config = write_config(workdir / "slicerhub.yaml", ldap_port, port, hub=hub_over,
                              backend={"docker": {"hub_connect_ip": "127.0.0.1"}})
        hub = BenchHub(workdir, config, port, args=[
            "--JupyterHub.spawner_class=benchmarks.farm_spawner.FarmSpawner",
            f"--FarmSpawner.farm_url={farm.url}"])
        t = time.monotonic()
        hub.start(timeout=600)
        stack.callback(hub.stop)
        out["first_start_s"] = round(time.monotonic() - t, 2)
        session, r = hub.login("admin1", "admin-pw")
        if r.status_code != 302:
            raise RuntimeError(f"admin login: {r.status_code}")
        token = hub.api_token(session, note="scale")
        api = Api(hub, token)

        def pids() -> dict[str, list[int]]:
            p = {"hub": [hub.pid("hub")], "proxy": [hub.pid("proxy")], "farm": [farm.pid]}
            if pg is not None and pg._proc is not None:
                p["postgres"] = [pg._proc.pid, *descendants(pg._proc.pid)]
            return p

        print(f"[scale] {db}: first start {out['first_start_s']} s; idle baseline", flush=True)
        _step(out, "idle", lambda: measure_window(hub, token, [], window, pids()))
        _step(out, "idle_restart", lambda: restart(hub, api, []))
        names = _names(max(users))
        servers = names[:active]
        started: set[str] = set()
        have = 0
        for n in sorted(users):
            row: dict = {"users": n, "active": min(active, n)}
            out["sizes"].append(row)
            print(f"[scale] {db}: {n} users", flush=True)
            reg = _step(row, "register_s", lambda: round(api.register(names[have:n]), 2))
            if isinstance(reg, float):
                row["users_per_s"] = round((n - have) / max(reg, 1e-9), 1)
            have = n
            todo = [x for x in servers[:n] if x not in started]
            if todo:
                print(f"[scale] {db}: starting {len(todo)} servers", flush=True)
                _step(row, "start_all", lambda: api.start_all(todo))
                started |= set(todo)
                time.sleep(min(activity_interval, 30))  # let the activity reports spread out
            live = servers[:n]
            row["farm_before"] = farm.stats()
            print(f"[scale] {db}: {n} users loaded window", flush=True)
            _step(row, "loaded", lambda: measure_window(hub, token, live, window, pids()))
            _step(row, "active_list_ms", lambda: api.active_list_ms())
            row["farm_after"] = farm.stats()
            print(f"[scale] {db}: {n} users restart", flush=True)
            _step(row, "restart", lambda: restart(hub, api, live))
            _step(row, "after_restart", lambda: {"routes_ok": f"{routes_ok(hub, live)}/{len(live)}",
                                                  "ready": len(set(live) & api.ready_names())})
    return out


def run(workdir: Path, users: tuple[int, ...] = USERS, active: int = ACTIVE, databases=DATABASES,
        window: float = 40.0, activity_interval: float = ACTIVITY_INTERVAL) -> dict:
    from slicerhub.devenv.ldap import Slapd
    from tests.integration.conftest import test_directory

    workdir.mkdir(parents=True, exist_ok=True)
    out: dict = {
        "users": list(users), "active": active, "window_s": window, "activity_interval_s": activity_interval,
        "settings": {"concurrent_spawn_limit": SPAWN_LIMIT, "start_workers": START_WORKERS,
                     "register_batch": BATCH, "spawner": "benchmarks.farm_spawner.FarmSpawner"},
        "anchors": ANCHORS, "databases": {}, "load_before": os.getloadavg(),
    }
    ldap = Slapd(workdir / "ldap", test_directory())
    ldap.start()
    try:
        for db in databases:
            try:
                out["databases"][db] = _one_database(db, workdir / db, ldap.port, users, active, window,
                                                     activity_interval)
            except Exception as e:  # noqa: BLE001 - the other database is still measured
                out["databases"][db] = {"not_measured": f"{type(e).__name__}: {str(e)[:400]}"}
                print(f"[scale] {db}: not measured ({out['databases'][db]['not_measured']})", flush=True)
            out.setdefault("load_after", {})[db] = os.getloadavg()
    finally:
        ldap.stop()
    return out


# --------------------------------------------------------------------------
# table
# --------------------------------------------------------------------------

def _get(d, *path):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def _f(x, unit="", nd=1):
    if x is None:
        return "-"
    return f"{x:.{nd}f}{unit}" if isinstance(x, float) else f"{x}{unit}"


def _r(a, b):
    x = ratio(a, b)
    return "-" if x is None else f"{x:.1f}x"


def figures(res: dict) -> list[dict]:
    """One row per (database, users): the figures and their ratios."""
    rows = []
    for db, d in res["databases"].items():
        if "not_measured" in d:
            rows.append({"db": db, "not_measured": d["not_measured"]})
            continue
        idle = d.get("idle") or {}
        idle_restart = _get(d, "idle_restart", "with_stop_s")
        for s in d["sizes"]:
            row = {"db": db, "users": s["users"], "active": s["active"]}
            loaded = s.get("loaded") or {}
            row["p50"] = _get(loaded, "endpoints", "all", "p50_ms")
            row["p99"] = _get(loaded, "endpoints", "all", "p99_ms")
            row["p50_idle"] = _get(idle, "endpoints", "all", "p50_ms")
            row["p99_idle"] = _get(idle, "endpoints", "all", "p99_ms")
            row["cpu"] = _get(loaded, "cpu_pct", "hub")
            row["cpu_idle"] = _get(idle, "cpu_pct", "hub")
            row["rss"] = loaded.get("hub_rss_mb")
            row["rss_idle"] = idle.get("hub_rss_mb")
            row["restart"] = _get(s, "restart", "with_stop_s")
            row["restart_idle"] = idle_restart
            row["first_start"] = d.get("first_start_s")
            row["start_all"] = _get(s, "start_all", "seconds")
            row["active_list_ms"] = s.get("active_list_ms") if not isinstance(s.get("active_list_ms"), dict) else None
            row["loaded_not_measured"] = loaded.get("not_measured")
            rows.append(row)
    return rows


def print_scale(res: dict) -> None:
    print()
    print(f"Scale: registered users x {res['active']} active stub-farm servers (activity every "
          f"{res['activity_interval_s']:g} s), hub API sampled {res['window_s']:g} s per state; "
          f"concurrent_spawn_limit {res['settings']['concurrent_spawn_limit']}; baseline = the same hub idle")
    head = (f"  {'db':<10} | {'users':>5} | {'active':>6} | {'API p50 (/idle)':>16} | {'API p99 (/idle)':>17} | "
            f"{'hub CPU (/idle)':>16} | {'hub RSS (/idle)':>18} | {'restart (/idle)':>16} | "
            f"{'all started':>11} | active list")
    print(head)
    print("  " + "-" * (len(head) - 2))
    rows = figures(res)
    for r in rows:
        if "not_measured" in r:
            print(f"  {r['db']:<10} | not measured: {r['not_measured']}")
            continue
        if r["loaded_not_measured"]:
            print(f"  {r['db']:<10} | {r['users']:>5} | loaded hub not measured: {r['loaded_not_measured']}")
        print(
            f"  {r['db']:<10} | {r['users']:>5} | {r['active']:>6} | "
            f"{_f(r['p50'], ' ms'):>8} ({_r(r['p50'], r['p50_idle']):>5}) | "
            f"{_f(r['p99'], ' ms'):>9} ({_r(r['p99'], r['p99_idle']):>5}) | "
            f"{_f(r['cpu'], '%'):>8} ({_r(r['cpu'], r['cpu_idle']):>5}) | "
            f"{_f(r['rss'], ' MB'):>10} ({_r(r['rss'], r['rss_idle']):>5}) | "
            f"{_f(r['restart'], ' s'):>8} ({_r(r['restart'], r['restart_idle']):>5}) | "
            f"{_f(r['start_all'], ' s'):>11} | {_f(r['active_list_ms'], ' ms')}"
        )
    by = {(r["db"], r.get("users")): r for r in rows if "not_measured" not in r}
    for (db, n), r in by.items():
        if db != "postgresql" or ("sqlite", n) not in by:
            continue
        s = by[("sqlite", n)]
        print(f"  PostgreSQL / SQLite at {n} users: API p50 {_r(r['p50'], s['p50'])}, p99 {_r(r['p99'], s['p99'])}, "
              f"hub CPU {_r(r['cpu'], s['cpu'])}, RSS {_r(r['rss'], s['rss'])}, restart {_r(r['restart'], s['restart'])}, "
              f"all servers started {_r(r['start_all'], s['start_all'])}")
    print("  anchors: jupyterhub-stress-test 1,000 servers in 38-49 s on PostgreSQL (66-83 s SQLite), active list of "
          "1,000 in 70-90 ms; Rubin: 3,000 labs on one hub. Printed, not asserted.")
    for db, d in res["databases"].items():
        for s in d.get("sizes", []):
            st = s.get("start_all") or {}
            rs = s.get("restart") or {}
            print(f"  {db} {s['users']} users: start {st.get('n', '-')} servers {st.get('seconds', '-')} s "
                  f"({st.get('starts_per_s', '-')}/s, {st.get('refused_429', '-')} x 429, {st.get('errors', '-')} errors); "
                  f"restart: API back {rs.get('api_back_s', '-')} s, all ready {rs.get('all_ready_s', '-')} s, "
                  f"all routes {rs.get('all_routes_s', '-')} s (stop {rs.get('stop_s', '-')} s; routes while hub down "
                  f"{rs.get('routes_ok_while_hub_down', '-')}); activity {_get(s, 'farm_after', 'activity')}")
