"""`slicerhub` command line: check a deployment file, show what it becomes;
run its processes (`slicerhub run`, `slicerhub systemd`); publish course apps (`slicerhub apps`); share your session read-only
(`slicerhub share`)."""

from __future__ import annotations

import argparse
import json
import sys

from .config import ConfigError, json_schema, load_config
from .traitlets_config import to_traitlets


def _check(args) -> int:
    try:
        cfg = load_config(args.file)
    except ConfigError as e:
        print(f"{e.source}: {len(e.messages)} problem(s)", file=sys.stderr)
        for m in e.messages:
            print(f"  - {m}", file=sys.stderr)
        return 1
    print(f"{args.file}: OK ({cfg.backend.type} backend, {len(cfg.profiles)} profile(s))")
    return 0


def _traitlets(args) -> int:
    try:
        cfg = load_config(args.file)
    except ConfigError as e:
        print("\n".join([f"{e.source}:", *e.messages]), file=sys.stderr)
        return 1
    traits = to_traitlets(cfg, hub_connect_ip=args.hub_connect_ip)
    print(json.dumps(traits, indent=2, default=str))
    return 0


def _schema(args) -> int:
    print(json.dumps(json_schema(), indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="slicerhub", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    config = sub.add_parser("config", help="work with a deployment file")
    csub = config.add_subparsers(dest="action", required=True)
    p = csub.add_parser("check", help="validate a deployment file")
    p.add_argument("file")
    p.set_defaults(func=_check)
    p = csub.add_parser("traitlets", help="print the JupyterHub settings a file becomes")
    p.add_argument("file")
    p.add_argument("--hub-connect-ip", default=None)
    p.set_defaults(func=_traitlets)
    p = csub.add_parser("schema", help="print the JSON Schema of deployment files")
    p.set_defaults(func=_schema)
    from .runtime.launch import add_parsers as add_runtime_parsers

    add_runtime_parsers(sub)
    from .courses.client import add_parser as add_apps_parser

    add_apps_parser(sub)
    from .sharing.client import add_parser as add_share_parser

    add_share_parser(sub)
    argv = list(sys.argv[1:] if argv is None else argv)
    # `slicerhub run hub --config F -- --JupyterHub.x=y`: the rest is jupyterhub's.
    passthrough = argv[argv.index("--") + 1:] if "--" in argv else []
    args = parser.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    if passthrough:
        if args.command != "run":
            parser.error("options after -- are only for `slicerhub run hub`")
        args.hub_args = passthrough
    import requests

    try:
        return args.func(args)
    except requests.RequestException as e:  # hub down, wrong URL, TLS: one line, no traceback
        raise SystemExit(f"error: cannot reach the hub: {e.__class__.__name__}: {e}") from None


if __name__ == "__main__":
    sys.exit(main())
