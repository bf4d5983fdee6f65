"""`slicerhub run NAME`, `slicerhub systemd`, `slicerhub supervisord`: the
command-line side of slicerhub.runtime."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from ..config import ConfigError, SlicerHubConfig, load_config
from .programs import hub_ip, programs
from .secrets import Secrets
from .units import supervisord_conf, systemd_units


def _load(path: str) -> SlicerHubConfig:
    try:
        return load_config(path)
    except ConfigError as e:
        raise SystemExit("\n  ".join([f"SlicerHub: {e.source} is not valid:", *e.messages])) from None


def slicerhub_command() -> str:
    """This installation's `slicerhub` script (what the units call)."""
    beside = Path(sys.executable).with_name("slicerhub")
    return str(beside) if beside.exists() else (shutil.which("slicerhub") or "slicerhub")


def _plan(cfg: SlicerHubConfig, args, *, to_run: bool = True):
    # Writing units only names the programs: no network lookup, no secrets.
    if to_run:
        return programs(cfg, config_path=args.config, python=sys.executable, hub_ip=hub_ip(cfg),
                        hub_args=args.hub_args, secrets=Secrets(cfg.hub.data_dir))
    return programs(cfg, config_path=args.config, python=sys.executable, hub_ip="127.0.0.1",
                    proxy="configurable-http-proxy")


def _wait_for_hub(api_url: str, timeout: float = 600) -> None:
    """Services talk to the hub from their first second (the culler's first
    round would fail and wait a whole cull interval): start them once it answers.
    Past `timeout` exit, and the supervisor starts us again."""
    import requests

    from ..wait import wait_for

    def answers() -> bool:
        try:
            requests.get(api_url + "/", timeout=5)
            return True
        except requests.RequestException:
            return False

    try:
        wait_for(answers, timeout, interval=0.5, what=f"the hub API at {api_url}")
    except AssertionError as e:
        raise SystemExit(f"slicerhub run: {e}") from None


def _check_tls_files(tls) -> None:
    """A missing or unreadable certificate is one line here, not a Node.js stack trace."""
    import ssl

    for path in (tls.cert_file, tls.key_file):
        if not Path(path).is_file():
            raise SystemExit(f"slicerhub run: hub.tls: no such file: {path}")
        if not os.access(path, os.R_OK):
            raise SystemExit(f"slicerhub run: hub.tls: cannot read {path} (permissions)")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(tls.cert_file, tls.key_file)
    except ssl.SSLError as e:
        raise SystemExit(f"slicerhub run: hub.tls: {tls.cert_file} and {tls.key_file} are not a PEM "
                         f"certificate and its key ({e.reason or e})") from None


def run(args) -> int:
    cfg = _load(args.config)
    plan = _plan(cfg, args)
    if args.name not in plan:
        raise SystemExit(f"slicerhub run: no program {args.name!r} in this deployment "
                         f"(it runs: {', '.join(plan)})")
    if args.hub_args and args.name != "hub":
        raise SystemExit(f"slicerhub run: options after -- are only for the hub, not {args.name}")
    program = plan[args.name]
    if args.name == "proxy" and cfg.hub.tls:
        _check_tls_files(cfg.hub.tls)
    Path(cfg.hub.data_dir).mkdir(parents=True, exist_ok=True)
    if "hub" in program.after:
        _wait_for_hub(program.env["JUPYTERHUB_API_URL"])
    sys.stdout.flush()
    # Replace this process, so the supervisor's signals reach the program itself.
    os.execvpe(program.argv[0], program.argv, {**os.environ, **program.env})


def systemd(args) -> int:
    cfg = _load(args.config)
    units = systemd_units(_plan(cfg, args, to_run=False).values(), slicerhub=slicerhub_command(),
                          config=args.config, working_directory=args.working_directory)
    if not args.out:
        for name, text in units.items():
            print(f"# --- {name}\n{text}")
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in units.items():
        (out / name).write_text(text)
        print(out / name)
    return 0


def supervisord(args) -> int:
    cfg = _load(args.config)
    print(supervisord_conf(_plan(cfg, args, to_run=False), slicerhub=slicerhub_command(),
                           config=args.config, workdir=args.workdir))
    return 0


def add_parsers(sub) -> None:
    p = sub.add_parser("run", help="run one of the deployment's processes (what the supervisor calls)",
                       description="Run one process of a SlicerHub deployment in the foreground: "
                                   "proxy, hub, idle-culler, courses or sharing.")
    p.add_argument("name")
    p.add_argument("--config", required=True, help="the deployment file")
    # Anything after `--` goes to jupyterhub (hub only): slicerhub.cli splits it off.
    p.set_defaults(func=run, hub_args=[])
    p = sub.add_parser("systemd", help="write systemd units for one machine")
    p.add_argument("--config", required=True, help="the deployment file")
    p.add_argument("--out", help="directory to write into (e.g. /etc/systemd/system); default: print")
    p.add_argument("--working-directory", default=".", help="where relative paths in the file point")
    p.set_defaults(func=systemd)
    p = sub.add_parser("supervisord", help="print a supervisord configuration (where systemd is not used)")
    p.add_argument("--config", required=True, help="the deployment file")
    p.add_argument("--workdir", default=".", help="logs, socket and pid file go here")
    p.set_defaults(func=supervisord)
