"""jupyter-server-proxy routes to the server's companions (orthanc/, monailabel/).

The spawner starts companions beside the server, in its network namespace,
and names them in ``SLICERHUB_COMPANIONS`` (``name=port,…``; see
spawners/companions.py). Each one here is a route to 127.0.0.1:<port> that
starts nothing (the companion is its own container) plus a launcher tile.
A server without that companion gets no route: jupyter-server-proxy skips an
entry point that raises, with a warning naming it.
"""

from __future__ import annotations

import os

TITLES = {"orthanc": "Orthanc", "monailabel": "MONAI Label"}
# Where each companion's web UI starts, below its route.
START_PAGES = {"orthanc": "orthanc/app/explorer.html", "monailabel": "monailabel/"}


class NotConfigured(LookupError):
    pass


def configured(env: str | None = None) -> dict[str, int]:
    """``SLICERHUB_COMPANIONS`` as {name: port}, known names only."""
    raw = os.environ.get("SLICERHUB_COMPANIONS", "") if env is None else env
    found = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        name, _, port = item.partition("=")
        if name in TITLES and port.isdigit() and 0 < int(port) < 65536:
            found[name] = int(port)
    return found


def route(name: str, env: str | None = None) -> dict:
    port = configured(env).get(name)
    if port is None:
        raise NotConfigured(f"no {TITLES[name]} companion in this server's profile")
    return {
        "port": port,
        "command": [],  # started by the spawner, not by the proxy
        "absolute_url": False,
        "new_browser_window": True,
        "launcher_entry": {"title": TITLES[name], "path_info": START_PAGES[name]},
    }


def orthanc() -> dict:
    return route("orthanc")


def monailabel() -> dict:
    return route("monailabel")
