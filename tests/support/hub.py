"""Run a real SlicerHub (proxy, JupyterHub, services) for tests and benchmarks."""

from __future__ import annotations

import copy
import re
import socket
from pathlib import Path
from typing import Any

import requests
import yaml

from slicerhub.devenv.stack import Stack

ROOT = Path(__file__).resolve().parents[2]
HUB_CONFIG = ROOT / "hub_config" / "jupyterhub_config.py"
DEMO_CONFIG = ROOT / "hub_config" / "demo.yaml"


def xsrf(session: requests.Session, path: str = "/hub/") -> str | None:
    """The _xsrf cookie JupyterHub set for PATH (services set their own)."""
    for cookie in session.cookies:
        if cookie.name == "_xsrf" and cookie.path.rstrip("/") == path.rstrip("/"):
            return cookie.value
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _merge(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def write_config(path: Path, ldap_port: int, hub_port: int, **overrides: Any) -> Path:
    """The demo deployment, pointed at test ports, with `overrides` merged in."""
    data = yaml.safe_load(DEMO_CONFIG.read_text())
    data = _merge(
        data,
        {
            "hub": {
                "bind_url": f"http://127.0.0.1:{hub_port}",
                "data_dir": str(path.parent / "hub"),
                "api_port": free_port(),
                "proxy_api_port": free_port(),
                "courses_port": free_port(),
                "sharing_port": free_port(),
            },
            "ldap": {"port": ldap_port},
            "courses": {"root": str(path.parent / "courses")},
        },
    )
    data = _merge(data, overrides)
    path.write_text(yaml.safe_dump(data))
    return path


class Hub(Stack):
    """SlicerHub as it runs in production (proxy, hub and services as separate
    supervised processes, slicerhub.devenv.stack), on loopback, for tests and
    benchmarks; the hub logs to `workdir/jupyterhub.log`."""

    def __init__(
        self,
        workdir: Path,
        config: Path,
        port: int,
        env: dict[str, str] | None = None,
        args: list[str] | tuple[str, ...] = (),
    ):
        super().__init__(workdir, config, env=env, hub_args=args)
        self.port = port
        assert self.url in (f"http://127.0.0.1:{port}", f"https://127.0.0.1:{port}"), \
            "the config's hub.bind_url must be on this port"

    # --- acting as a person with a browser ------------------------------

    def login(self, username: str, password: str, timeout: float = 60) -> tuple[requests.Session, requests.Response]:
        """Log in through the HTML form, XSRF token and all."""
        s = requests.Session()
        page = s.get(self.url + "/hub/login", timeout=timeout)
        page.raise_for_status()
        token = xsrf(s) or re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
        r = s.post(
            self.url + "/hub/login",
            data={"username": username, "password": password, "_xsrf": token},
            allow_redirects=False,
            timeout=timeout,
        )
        return s, r

    def api_token(self, session: requests.Session, note: str = "test", scopes: list[str] | None = None) -> str:
        """A token for the logged-in user, made through the hub's own token page API."""
        token = xsrf(session)
        body = {"note": note, "expires_in": 3600}
        if scopes is not None:
            body["scopes"] = scopes
        r = session.post(
            self.url + "/hub/api/users/" + self._whoami(session) + "/tokens",
            json=body,
            headers={"X-XSRFToken": token, "Referer": self.url + "/hub/token"},
            timeout=30,
        )
        r.raise_for_status()
        return r.json()["token"]

    def _whoami(self, session: requests.Session) -> str:
        r = session.get(
            self.url + "/hub/api/user",
            headers={"X-XSRFToken": xsrf(session), "Referer": self.url + "/hub/home"},
            timeout=30,
        )
        r.raise_for_status()
        return r.json()["name"]
