"""`slicerhub share …`: make, list and revoke read-only and collaborate links
to your running session, over the sharing service's REST API, with a hub API token.

The token needs the scopes `access:services!service=sharing`, `shares!user`,
`read:shares!user`, `access:servers!user` and `custom:jupyter_server:read:*`
(a token made on the hub's token page with no scopes chosen has them).
"""

from __future__ import annotations

import argparse
import re

from ..hubclient import answer, hub_session

SERVICE = "services/sharing/api/links"
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> int:
    """'90m', '8h', '1d', '3600' → seconds."""
    m = re.fullmatch(r"\s*(\d+)\s*([smhdw]?)\s*", text or "")
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (e.g. 30m, 8h, 1d)")
    return int(m.group(1)) * UNITS[m.group(2) or "s"]


def _create(args) -> int:
    s, base = hub_session(args, SERVICE)
    link = answer(s.post(base, json={"expires_in": args.expires, "access": args.access}, timeout=60))
    what = "collaborate" if link.get("access") == "collaborate" else "read-only"
    print(f"{what} link {link['id']}, valid until {link['expires']} (UTC):\n{link['url']}")
    return 0


def _list(args) -> int:
    s, base = hub_session(args, SERVICE)
    links = answer(s.get(base, params={"all": "1"} if args.all else None, timeout=60))["links"]
    if not links:
        print("no links")
    for link in links:
        viewers = ", ".join(v["name"] for v in link["viewers"]) or "-"
        kind = link["kind"] if link["kind"] == "link" else f"{link['kind']} by {link['created_by']}"
        what = "collaborate" if link.get("access") == "collaborate" else "read-only"
        print(f"{link['id']}  {link['state']:8} until {link['expires']}  {kind:20} {what:11} viewers: {viewers}")
    return 0


def _revoke(args) -> int:
    s, base = hub_session(args, SERVICE)
    r = s.delete(f"{base}/{args.id}", timeout=60)
    if r.status_code != 204:
        answer(r)
    print(f"revoked {args.id}")
    return 0


def add_parser(sub) -> None:
    share = sub.add_parser("share", help="read-only and collaborate links to your running session")
    share.add_argument("--hub", help="hub URL (default: $JUPYTERHUB_URL)")
    share.add_argument("--token", help="hub API token (default: $JUPYTERHUB_API_TOKEN)")
    ssub = share.add_subparsers(dest="action", required=True)
    p = ssub.add_parser("create", help="make a link (printed once)")
    p.add_argument("--expires", type=parse_duration, default=3600, help="how long it works: 30m, 8h, 1d (default 1h)")
    p.add_argument("--collaborate", dest="access", action="store_const", const="collaborate", default="read",
                   help="let them edit notebooks and files and run code with you (default: read-only)")
    p.set_defaults(func=_create)
    p = ssub.add_parser("list", help="your links and who opened them")
    p.add_argument("--all", action="store_true", help="include expired and revoked links")
    p.set_defaults(func=_list)
    p = ssub.add_parser("revoke", help="end a link now (viewers lose access at once)")
    p.add_argument("id", help="the link's id from `share list` (an older id that starts with - goes after --)")
    p.set_defaults(func=_revoke)
