"""Run a real JupyterHub (with configurable-http-proxy) for tests and benchmarks."""

from __future__ import annotations

import copy
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests
import yaml

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


class Hub:
    """A JupyterHub process on loopback, logging to `workdir/jupyterhub.log`."""

    def __init__(
        self,
        workdir: Path,
        config: Path,
        port: int,
        env: dict[str, str] | None = None,
        args: list[str] | tuple[str, ...] = (),
    ):
        self.workdir = workdir
        self.config = config
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = workdir / "jupyterhub.log"
        self.env = env or {}
        self.args = list(args)  # extra jupyterhub command-line options
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> "Hub":
        env = {
            **os.environ,
            "SLICERHUB_CONFIG": str(self.config),
            # configurable-http-proxy from package.json, the venv's jupyterhub.
            "PATH": os.pathsep.join(
                [str(ROOT / "node_modules" / ".bin"), str(Path(sys.executable).parent), os.environ["PATH"]]
            ),
            "PYTHONUNBUFFERED": "1",
            **self.env,
        }
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(HUB_CONFIG), *self.args],
            cwd=self.workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyterhub exited ({self.proc.returncode}):\n{self.log_tail()}")
            try:
                if requests.get(self.url + "/hub/health", timeout=2).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"jupyterhub did not answer in {timeout}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def __enter__(self) -> "Hub":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

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
