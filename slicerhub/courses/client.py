"""`slicerhub apps …`: publish, list and unpublish course apps over the
courses service's REST API, with a hub API token.

The hub URL and token: see ``slicerhub.hubclient``.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from ..hubclient import answer, hub_session

SERVICE = "services/courses/api/courses"


def _session(args):
    return hub_session(args, SERVICE)


def _publish(args) -> int:
    path = Path(args.notebook)
    try:
        notebook = path.read_text(encoding="utf-8")
        thumbnail = Path(args.thumbnail).read_bytes() if args.thumbnail else None
    except (OSError, UnicodeDecodeError) as e:
        raise SystemExit(f"error: cannot read {getattr(e, 'filename', None) or path}: {e}") from None
    body = {"notebook": notebook, "title": args.title, "description": args.description}
    if thumbnail is not None:
        body["thumbnail"] = base64.b64encode(thumbnail).decode()
    s, base = _session(args)
    name = args.name or path.stem.lower()
    app = answer(s.post(f"{base}/{args.course}/apps/{name}", json=body, timeout=60))
    print(f"published {args.course}/{app['name']} version {app['latest']}")
    return 0


def _hide(args, hidden: bool) -> int:
    s, base = _session(args)
    answer(s.patch(f"{base}/{args.course}/apps/{args.name}", json={"hidden": hidden}, timeout=60))
    print(f"{'unpublished' if hidden else 'republished'} {args.course}/{args.name}")
    return 0


def _list(args) -> int:
    s, base = _session(args)
    data = answer(s.get(base, timeout=60))
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    for course in data["courses"]:
        role = "teacher" if course["teacher"] else "student"
        print(f"{course['name']} ({role})")
        for app in course["apps"]:
            flag = "  [unpublished]" if app["hidden"] else ""
            print(f"  {app['name']:<24} v{app['latest']:<3} {app['title']}{flag}")
    return 0


def add_parser(sub) -> None:
    apps = sub.add_parser("apps", help="publish and manage Voilà apps of your courses")
    asub = apps.add_subparsers(dest="action", required=True)

    def common(p):
        p.add_argument("--hub", help="hub URL (default: $JUPYTERHUB_URL)")
        p.add_argument("--token", help="hub API token (default: $JUPYTERHUB_API_TOKEN)")

    p = asub.add_parser("publish", help="publish a notebook as a new version of an app")
    p.add_argument("course")
    p.add_argument("notebook")
    p.add_argument("--name", help="app name (default: the notebook's file name)")
    p.add_argument("--title", help="title (required for a new app)")
    p.add_argument("--description")
    p.add_argument("--thumbnail", help="a PNG shown in the gallery")
    common(p)
    p.set_defaults(func=_publish)
    p = asub.add_parser("unpublish", help="hide an app from the gallery")
    p.add_argument("course")
    p.add_argument("name")
    common(p)
    p.set_defaults(func=lambda a: _hide(a, True))
    p = asub.add_parser("republish", help="show a hidden app again")
    p.add_argument("course")
    p.add_argument("name")
    common(p)
    p.set_defaults(func=lambda a: _hide(a, False))
    p = asub.add_parser("list", help="the apps of your courses")
    p.add_argument("--json", action="store_true")
    common(p)
    p.set_defaults(func=_list)
