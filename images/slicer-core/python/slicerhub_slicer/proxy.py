"""jupyter-server-proxy entry for "Slicer Web" (trame-slicer in the browser).

It listens on 127.0.0.1 on a port jupyter-server-proxy picks, and is reached
only through the single-user server (hub login required).
"""

from __future__ import annotations

import sys


def setup_slicer_web() -> dict:
    return {
        "command": [sys.executable, "-m", "slicerhub_slicer.web", "--port", "{port}"],
        "timeout": 60,
        "absolute_url": False,
        "new_browser_window": True,
        "launcher_entry": {"title": "Slicer Web", "path_info": "slicer-web/"},
    }
