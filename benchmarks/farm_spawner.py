"""A lightweight server outside the hub process: a listener in the stub farm.

`FarmSpawner` keeps SlicerSpawner first in the MRO (as light_spawner.LightSpawner
does), so every start still goes through the real start checks and profile
choice; the backend asks the stub farm (`benchmarks.farm`, one separate
process) for a listener and returns its URL. poll() asks the farm whether the
listener is still there, stop() releases it, and get_state/load_state keep the
port in the hub's database: a hub restart resumes these servers, as it resumes
real containers with `cleanup_servers: False` and a proxy of its own.

The server's own API token (self.api_token) goes to the farm with the start,
so the farm reports activity with it as jupyterhub-singleuser does.

Use: jupyterhub ... --JupyterHub.spawner_class=benchmarks.farm_spawner.FarmSpawner
--FarmSpawner.farm_url=http://127.0.0.1:PORT (the repository root on PYTHONPATH).
"""

from __future__ import annotations

import json
import os
from urllib.parse import quote

from jupyterhub.spawner import Spawner
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from traitlets import Integer, Unicode, default

from slicerhub.spawners.base import SlicerSpawner

HOST = "127.0.0.1"


class FarmBackend(Spawner):
    """Backend: one listener of the stub farm per server."""

    farm_url = Unicode(config=True, help="The stub farm's control API, e.g. http://127.0.0.1:PORT.")
    farm_port = Integer(0, help="The farm listener of this server (kept in the hub's database).")

    @default("farm_url")
    def _farm_url_default(self):
        return os.environ.get("SLICERHUB_FARM_URL", "")

    @property
    def _farm_name(self) -> str:
        return self.user.name if not self.name else f"{self.user.name}--{self.name}"

    async def _farm(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        if not self.farm_url:
            raise RuntimeError("FarmSpawner.farm_url is not set")
        req = HTTPRequest(self.farm_url.rstrip("/") + path, method=method,
                          body=None if body is None else json.dumps(body),
                          headers={"Content-Type": "application/json"},
                          connect_timeout=10, request_timeout=30)
        try:
            r = await AsyncHTTPClient().fetch(req, raise_error=False)
        except (OSError, HTTPClientError) as e:
            return 599, {"error": repr(e)}
        try:
            data = json.loads(r.body) if r.body else {}
        except ValueError:
            data = {}
        return r.code, data

    def get_state(self):
        state = super().get_state()
        if self.farm_port:
            state["farm_port"] = self.farm_port
        return state

    def load_state(self, state):
        super().load_state(state)
        self.farm_port = int(state.get("farm_port", 0) or 0)

    def clear_state(self):
        super().clear_state()
        self.farm_port = 0

    async def start(self):
        code, data = await self._farm("POST", "/servers", {
            "name": self._farm_name, "user": self.user.name, "server_name": self.name,
            "token": self.api_token, "api_url": self.hub.api_url,
        })
        if code != 201:
            raise RuntimeError(f"the stub farm refused the start: {code} {data}")
        self.farm_port = int(data["port"])
        return f"http://{HOST}:{self.farm_port}"

    async def poll(self):
        if not self.farm_port:
            return 0
        code, data = await self._farm("GET", "/servers/" + quote(self._farm_name, safe=""))
        if code == 200 and data.get("port") == self.farm_port:
            return None
        if code == 404 or code == 200:
            return 0  # released, or another listener now
        return 1  # the farm is gone, and its servers with it

    async def stop(self, now=False):
        await self._farm("DELETE", "/servers/" + quote(self._farm_name, safe=""))
        self.farm_port = 0


class FarmSpawner(SlicerSpawner, FarmBackend):
    """SlicerSpawner's start checks in front of a stub-farm listener."""

    async def apply_profile(self, profile: dict) -> None:
        return None  # no backend traits to set for a stub
