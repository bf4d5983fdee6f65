"""python -m benchmarks [--sizes 50,100,200 | --quick] [--only burst|stall] ...

Prints a table and writes var/bench/results.json. Targets are printed next to
the figures; nothing is asserted, and the exit status is 0 whenever the
benchmarks ran (1 only if one could not run at all).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import platform
import shlex
import shutil
import sys
import time
import traceback
from pathlib import Path

from tests.support.hub import ROOT

from . import burst, collaboration, desktop, gallery, ldap_stall, open_study, restart, scale
from .harness import busy, machine_state

DEFAULT_SIZES = [50, 100, 200]
QUICK_SIZES = [10, 20]


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("sizes are integers, comma-separated") from None
    if not sizes or any(n < 1 or n > 500 for n in sizes):
        raise argparse.ArgumentTypeError("each size must be between 1 and 500")
    return sizes


def _counts(text: str) -> list[int]:
    try:
        counts = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("counts are integers, comma-separated") from None
    if not counts or any(n < 1 or n > 20000 for n in counts):
        raise argparse.ArgumentTypeError("each count must be between 1 and 20000")
    return counts


def _admission(text: str) -> dict:
    out: dict = {}
    for item in filter(None, (x.strip() for x in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"{item!r}: expected KEY=VALUE")
        if "-" in value:
            out[key] = [int(v) for v in value.split("-", 1)]
        else:
            out[key] = float(value) if "." in value else int(value)
    return out


def _fmt(x, unit: str = "", nd: int = 2) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{nd}f}{unit}"
    return f"{x}{unit}"


def _mark(ok: bool | None) -> str:
    return "" if ok is None else (" ok" if ok else " MISSED")


def _settings_line(st: dict) -> str:
    login = st.get("concurrent_login_limit")
    retry = st.get("spawn_retry_seconds")
    return (
        f"concurrent_spawn_limit {st.get('concurrent_spawn_limit')}"
        + (f" (Retry-After {retry[0]}-{retry[1]} s)" if retry and st.get("concurrent_spawn_limit", 0) < 1000 else "")
        + (f", {login} logins at once (queue {st.get('login_queue_seconds'):g} s)" if login else ", no login limit")
    )


def print_burst(res: dict) -> None:
    t = res["targets"]
    print()
    print("Class burst (login + start lightweight in-process server, all N at once; two hubs, same build, same run)")
    for label, v in res["variants"].items():
        if "not_measured" in v:
            print(f"  {label:>7} admission: {_settings_line(v['settings'])}\n           not measured: {v['not_measured']}")
            continue
        base, idle = v["baseline"], v["hub_api_idle"]
        print(
            f"  {label:>7} admission: {_settings_line(v['settings'])}\n"
            f"           baseline N=1 x{base['repeats']}: time-to-ready p50 {_fmt(base['ttr_p50_s'], ' s', 3)}, "
            f"p95 {_fmt(base['ttr_p95_s'], ' s', 3)}; idle hub API p50 {_fmt(idle['p50_ms'], ' ms', 1)}, "
            f"p99 {_fmt(idle['p99_ms'], ' ms', 1)} ({idle['count']} samples)"
        )
    head = (
        f"  {'N':>4} | {'students do':<13} | {'admission':>9} | {'starts/s':>8} | {'ttr p50':>8} | {'ttr p95':>8} | "
        f"{'p95/p95(1)':>10} | {'429s':>5} | {'API p50':>8} | {'API p99':>8} | {'p99/idle':>8} | {'errors':>6} | hub CPU"
    )
    print(head)
    print("  " + "-" * (len(head) - 2))
    rows = {(c["n"], c.get("scenario", "login"), label): c
            for label, v in res["variants"].items() for c in v["classes"]}
    for n in res["sizes"]:
        for scenario, what in burst.SCENARIOS.items():
            for label in res["variants"]:
                c = rows.get((n, scenario, label))
                if c is None:
                    continue
                lead = f"  {n:>4} | {what:<13} | {label:>9} | "
                if "not_measured" in c:
                    print(lead + f"not measured: {c['not_measured']}")
                    continue
                api = c["hub_api"]
                cpu = c["cpu_s"]
                print(
                    lead + f"{_fmt(c['starts_per_s']):>8} | {_fmt(c['ttr_p50_s'], ' s'):>8} | "
                    f"{_fmt(c['ttr_p95_s'], ' s'):>8} | {_fmt(c['ttr_p95_ratio_to_n1'], 'x'):>10} | {c['start_429']:>5} | "
                    f"{_fmt(api['p50_ms'], ' ms', 0):>8} | {_fmt(api['p99_ms'], ' ms', 0):>8} | "
                    f"{_fmt(api['p99_ratio_to_idle'], 'x', 1):>8} | {c['errors']:>6} | "
                    f"{c['hub_cpu_ms_per_start']:.0f} ms/start, {100 * cpu['hub'] / max(cpu['wall'], 1e-9):.0f}% of a core"
                )
    print(
        f"  targets: >= {t['starts_per_s']:g} starts/s; hub API p99 <= {t['api_p99_ms_at_200']:g} ms at N=200; "
        f"with admission control, hub API p99 <= {t['api_p99_ratio_at_200_with']:g}x idle p99 at N=200; "
        f"{t['errors']} errors"
    )
    for label, v in res["variants"].items():
        for c in v["classes"]:
            if "not_measured" in c:
                print(f"  N={c['n']} {label}, {burst.SCENARIOS[c.get('scenario', 'login')]}: not measured")
                continue
            checks = [
                f"starts/s{_mark(c['starts_per_s'] is not None and c['starts_per_s'] >= t['starts_per_s'])}",
                f"errors{_mark(c['errors'] == t['errors'])}",
            ]
            if c["n"] == 200:
                p99, r = c["hub_api"]["p99_ms"], c["hub_api"]["p99_ratio_to_idle"]
                checks.append(f"API p99 {_fmt(p99, ' ms', 0)}{_mark(p99 is not None and p99 <= t['api_p99_ms_at_200'])}")
                if label == "with":
                    checks.append(f"p99/idle {_fmt(r, 'x', 1)}"
                                  f"{_mark(r is not None and r <= t['api_p99_ratio_at_200_with'])}")
            line = f"  N={c['n']} {label}, {burst.SCENARIOS[c.get('scenario', 'login')]}: " + ", ".join(checks)
            if c["errors"]:
                line += f"  (errors: {c['error_kinds']}; e.g. {c['error_examples'][:2]})"
            print(line)


def print_stall(res: dict) -> None:
    a, b, idle = res["phase_a"], res["phase_b"], res["idle"]
    target = res["targets"]["health_p99_ratio_b_to_a"]
    r = res["health_p99_ratio_b_to_a"]
    print()
    print(
        f"LDAP stall (K={res['k']} logins in flight, {res['phase_seconds']:g} s per phase; "
        f"ldap timeouts {res['timeouts']})"
    )
    head = f"  {'phase':<22} | {'health p50':>10} | {'health p99':>10} | {'samples':>7} | logins"
    print(head)
    print("  " + "-" * (len(head) + 30))
    h = idle["health"]
    print(f"  {'idle (no logins)':<22} | {_fmt(h['p50_ms'], ' ms', 1):>10} | {_fmt(h['p99_ms'], ' ms', 1):>10} | {h['count']:>7} | -")
    for name, p in (("A: no delay", a), (f"B: replies +{res['delay_s']:g} s", b)):
        h = p["health"]
        outcomes = ", ".join(
            f"{v} {k} (p50 {p['login_seconds'][k]['p50_s']} s)" for k, v in sorted(p["outcomes"].items())
        )
        print(
            f"  {name:<22} | {_fmt(h['p50_ms'], ' ms', 1):>10} | {_fmt(h['p99_ms'], ' ms', 1):>10} | "
            f"{h['count']:>7} | {outcomes}"
        )
    print(f"  health p99(B)/p99(A) = {_fmt(r, 'x')} (target <= {target:g}x){_mark(None if r is None else r <= target)}")
    print(f"  health p99(B)/p99(idle) = {_fmt(res['health_p99_ratio_b_to_idle'], 'x')} (phase A is busier than B: its logins complete, B's wait)")
    print(f"  phase B logins ended {res['phase_b_logins_end']}")
    rec = res.get("recovery") or {}
    print(f"  after B, delay back to 0: first successful login after {_fmt(rec.get('first_success_s'), ' s')}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=_sizes, default=None, help="class sizes for the burst (default 50,100,200)")
    parser.add_argument("--quick", action="store_true", help="sizes 10,20 and 6 s stall phases")
    parser.add_argument("--only", choices=["burst", "stall", "desktop", "open-study", "gallery", "restart", "scale", "collaboration"], default=None)
    parser.add_argument("--scale-users", type=_counts, default=None,
                        help="scale: registered users (default 1000,3000; --quick 50,100)")
    parser.add_argument("--scale-active", type=int, default=None,
                        help="scale: active stub-farm servers (default 1000; --quick 20)")
    parser.add_argument("--scale-databases", default="sqlite,postgresql",
                        help="scale: sqlite, postgresql or both (default both, in that order)")
    parser.add_argument("--scale-window", type=float, default=None,
                        help="scale: seconds the hub API is sampled per state (default 40; --quick 10)")
    parser.add_argument("--scale-activity-interval", type=float, default=scale.ACTIVITY_INTERVAL,
                        help="scale: seconds between a server's activity reports (default 60; singleuser's is 300)")
    parser.add_argument("--restart-sizes", type=_sizes, default=list(restart.SIZES),
                        help="live sessions for the restart benchmark (default 20,200)")
    parser.add_argument("--open-study-cpus", type=float, default=1,
                        help="open-study: the profile's cpu_limit (default 1, as the demo's students)")
    parser.add_argument("--stall-seconds", type=float, default=None, help="length of each stall phase (default 12)")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench" / "results.json")
    parser.add_argument(
        "--hub-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra jupyterhub command-line argument, repeatable (what-if runs, e.g. "
        "--hub-arg=--JupyterHub.authenticator_class=mymodule.MyAuth); recorded in the JSON",
    )
    parser.add_argument(
        "--admission",
        type=_admission,
        default=None,
        metavar="K=V,...",
        help="burst: hub settings of the 'with admission control' hub instead of the deployment defaults, "
        "e.g. concurrent_spawn_limit=10,spawn_retry_seconds=1-3,concurrent_login_limit=4",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, slapd data)")
    args = parser.parse_args(argv)

    args.out = args.out.resolve()  # the hub runs in its own work directory
    sizes = args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES)
    stall_seconds = args.stall_seconds or (6.0 if args.quick else 12.0)
    if not 1 <= stall_seconds <= 120:
        parser.error("--stall-seconds must be between 1 and 120")
    if not shutil.which("slapd") and not shutil.which("slapd", path="/usr/sbin:/usr/bin:/sbin:/bin"):
        print("slapd is not installed: `make deps` installs it (apt-get install slapd ldap-utils)", file=sys.stderr)
        return 1

    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    workdir = args.out.parent / f"run-{stamp}"
    before = machine_state()
    results: dict = {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, "-m", "benchmarks", *map(shlex.quote, sys.argv[1:] if argv is None else argv)]),
        "machine": {"platform": platform.platform(), "python": platform.python_version(), **before},
        "workdir": str(workdir),
    }
    print(f"SlicerHub benchmarks: {results['date']}; {before['cores']} cores, load {before['load1']}")
    if args.hub_arg:
        print(f"  what-if run: extra hub arguments {args.hub_arg}")
    if busy(before):
        print("  warning: the machine is busy (1-min load > half the cores): figures may be contaminated")
    started = time.monotonic()
    # (--only name, results key, run, print): each runs in turn, a failure is reported and the rest go on.
    benchmarks = [
        ("burst", "burst", lambda: burst.run(sizes, workdir / "burst", hub_args=args.hub_arg, admission=args.admission), print_burst),
        ("stall", "ldap_stall",
         lambda: ldap_stall.run(workdir / "stall", seconds=stall_seconds, hub_args=args.hub_arg), print_stall),
        ("desktop", "desktop", lambda: desktop.run(workdir / "desktop"), desktop.print_desktop),
        ("open-study", "open_study", lambda: open_study.run(workdir / "open-study", cpu_limit=args.open_study_cpus), open_study.print_open_study),
        ("gallery", "gallery", lambda: gallery.run(workdir / "gallery"), gallery.print_gallery),
        ("collaboration", "collaboration", lambda: collaboration.run(workdir / "collaboration"),
         collaboration.print_collaboration),
        ("restart", "restart", lambda: restart.run(workdir / "restart", tuple(args.restart_sizes)),
         restart.print_restart),
        ("scale", "scale", lambda: scale.run(
            workdir / "scale",
            tuple(args.scale_users or (scale.QUICK_USERS if args.quick else scale.USERS)),
            args.scale_active or (scale.QUICK_ACTIVE if args.quick else scale.ACTIVE),
            tuple(x.strip() for x in args.scale_databases.split(",") if x.strip()),
            window=args.scale_window or (10.0 if args.quick else 40.0),
            activity_interval=args.scale_activity_interval), scale.print_scale),
    ]
    failed = False
    for name, key, run, _ in benchmarks:
        if args.only in (None, name):
            try:
                results[key] = run()
            except Exception as e:  # noqa: BLE001 - report and go on to the table
                failed = True
                results[key] = {"error": f"{type(e).__name__}: {e}"}
                traceback.print_exc()

    results["elapsed_s"] = round(time.monotonic() - started, 1)
    results["machine"]["after"] = machine_state()

    # The JSON first: a figure the table cannot print is still kept.
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    for name, key, _, show in benchmarks:
        if key not in results:
            continue
        if "error" in results[key]:
            print(f"\n{name}: not measured ({results[key]['error']})")
            continue
        try:
            show(results[key])
        except Exception as e:  # noqa: BLE001 - one table's bug does not hide the others
            print(f"\n{name}: could not print the table ({type(e).__name__}: {e}); figures in {args.out}")
    print(f"\nresults: {args.out} (logs under {workdir}; {results['elapsed_s']} s)")
    if not args.keep and not failed:
        shutil.rmtree(workdir / "burst" / "ldap", ignore_errors=True)
        shutil.rmtree(workdir / "stall" / "ldap", ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
