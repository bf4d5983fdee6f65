"""A lightweight server for benchmarks: a tiny HTTP server inside the hub process.

`LightSpawner` keeps SlicerSpawner first in the MRO, so every start still goes
through the real profile checks (`_choose` against the user's groups) and
`apply_profile`; only the backend is replaced. The backend starts a tornado
HTTP server on a free 127.0.0.1 port, on the hub's own event loop, that answers
200 to every request, so JupyterHub's wait-for-HTTP and the proxy route work as
for a real server. Nothing is started outside the hub process: no container,
no subprocess.

Use: jupyterhub ... --JupyterHub.spawner_class=benchmarks.light_spawner.LightSpawner
(with the repository root on PYTHONPATH).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from jupyterhub.spawner import Spawner
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from traitlets import Float, Unicode

from slicerhub.spawners.base import SlicerSpawner

HOST = "127.0.0.1"


class _Ok(web.RequestHandler):
    def prepare(self):
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish("ok\n")


def _no_log(handler):  # keep the hub log to the hub's own requests
    pass


class InProcessBackend(Spawner):
    """Backend: an in-process HTTP stub per server, on the hub's event loop."""

    _http: HTTPServer | None = None
    _port: int | None = None

    async def start(self):
        app = web.Application([(r".*", _Ok)], log_function=_no_log)
        sockets = bind_sockets(0, HOST)
        server = HTTPServer(app)
        server.add_sockets(sockets)
        self._http = server
        self._port = sockets[0].getsockname()[1]
        return (HOST, self._port)

    async def stop(self, now=False):
        server, self._http, self._port = self._http, None, None
        if server is not None:
            server.stop()
            await server.close_all_connections()

    async def poll(self):
        return None if self._http is not None else 0


class LightSpawner(SlicerSpawner, InProcessBackend):
    """SlicerSpawner's profile checks in front of an in-process HTTP stub."""

    async def apply_profile(self, profile: dict) -> None:
        # Nothing to translate into backend traits: the stub has none.
        return None


class GatedLightSpawner(LightSpawner):
    """LightSpawner whose start waits while a hold file for its user exists.

    For tests of admission control: `hold_dir/<username>` present = that user's
    start stays pending (the start slot stays taken) until the file is removed.
    Waiting is bounded by `hold_max_seconds`, then the start goes on anyway.
    """

    hold_dir = Unicode("", config=True, help="Directory of hold files, one per user name; empty = no hold.")
    hold_max_seconds = Float(600.0, config=True, help="Longest a start waits for its hold file to go.")

    async def start(self):
        if self.hold_dir:
            hold = Path(self.hold_dir) / self.user.name
            deadline = time.monotonic() + self.hold_max_seconds
            while hold.exists() and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
        return await super().start()
