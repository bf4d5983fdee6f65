"""The processes of one SlicerHub machine, and how each is started.

`programs()` is the one description of them: `slicerhub run NAME` execs the
program it describes, and the systemd units and the supervisord file only
name `slicerhub run NAME`, so a command line or an environment variable is
written in exactly one place.

  proxy        configurable-http-proxy: every user's route and open websocket
  hub          JupyterHub (restartable at any time: servers and routes stay)
  idle-culler  jupyterhub-idle-culler
  courses      the courses service (gallery, publishing)
  sharing      the sharing service (read-only links)
  pacs         the PACS gateway ("Open in SlicerHub" links, DICOMweb for servers)

The services are JupyterHub "external" services: the hub knows their URL and
API token (from slicerhub.runtime.secrets), and they get here the environment
the hub would have given them as its children.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .. import site
from ..config import SlicerHubConfig
from ..traitlets_config import (
    COURSES_OAUTH_SCOPES,
    SHARING_OAUTH_SCOPES,
    _teacher_groups,
    service_names,
    service_url,
)
from .secrets import Secrets

ROOT = Path(__file__).resolve().parents[2]
HUB_CONFIG = ROOT / "hub_config" / "jupyterhub_config.py"
CHP = "configurable-http-proxy"


@dataclass(frozen=True)
class Program:
    name: str
    description: str
    argv: list[str]
    # Added to the environment the program inherits.
    env: dict[str, str] = field(default_factory=dict)
    # Programs this one talks to (start order; systemd After=).
    after: tuple[str, ...] = ()


def find_proxy() -> str:
    """configurable-http-proxy: the project's node_modules (make deps), else $PATH."""
    local = ROOT / "node_modules" / ".bin" / CHP
    found = str(local) if local.exists() else shutil.which(CHP)
    if not found:
        raise FileNotFoundError(f"{CHP} not found: run `make deps` (npm ci) or install it with npm")
    return found


def _hub_api(cfg: SlicerHubConfig, hub_ip: str) -> str:
    # A hub listening on every interface is reached on loopback by local processes.
    host = "127.0.0.1" if hub_ip in ("", "0.0.0.0") else hub_ip
    return f"http://{host}:{cfg.hub.api_port}/hub"


def _proxy_tls(cfg: SlicerHubConfig) -> list[str]:
    tls = cfg.hub.tls
    if tls is None:
        return []
    # Paths made absolute: units and supervisord start the proxy in another directory.
    return ["--ssl-cert", str(Path(tls.cert_file).resolve()), "--ssl-key", str(Path(tls.key_file).resolve())]


def _service_env(cfg: SlicerHubConfig, name: str, hub_ip: str, secrets: Secrets | None,
                 allowed_scopes: Sequence[str] = ()) -> dict[str, str]:
    """What JupyterHub gives a managed service (jupyterhub/services/service.py)."""
    env = {
        "JUPYTERHUB_SERVICE_NAME": name,
        "JUPYTERHUB_API_URL": _hub_api(cfg, hub_ip) + "/api",
        "JUPYTERHUB_BASE_URL": "/",
        "JUPYTERHUB_HOST": "",
    }
    if secrets is not None:
        env["JUPYTERHUB_API_TOKEN"] = secrets.service_token(name)
    if name in ("courses", "sharing", "pacs"):
        prefix = f"/services/{name}/"
        env.update({
            "JUPYTERHUB_SERVICE_URL": service_url(cfg, name, hub_ip),
            "JUPYTERHUB_SERVICE_PREFIX": prefix,
            "JUPYTERHUB_CLIENT_ID": f"service-{name}",
            "JUPYTERHUB_OAUTH_CALLBACK_URL": prefix + "oauth_callback",
            "JUPYTERHUB_OAUTH_ACCESS_SCOPES": json.dumps([f"access:services!service={name}"]),
            "JUPYTERHUB_OAUTH_SCOPES": json.dumps([f"access:services!service={name}"]),
            "JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES": json.dumps(list(allowed_scopes)),
            site.ENV: json.dumps(site.site_vars(cfg)),
        })
    return env


def _service_argv(cfg: SlicerHubConfig, name: str, python: str) -> list[str]:
    data = Path(cfg.hub.data_dir).resolve()
    teachers = [f"--teacher-group={g}" for g in _teacher_groups(cfg)]
    if name == "idle-culler":
        c = cfg.culler
        return [python, "-m", "jupyterhub_idle_culler", f"--timeout={c.timeout}", f"--cull-every={c.every}",
                f"--max-age={c.max_age}", f"--concurrency={c.concurrency}"]
    if name == "courses":
        c = cfg.courses
        return [python, "-m", "slicerhub.courses.service", f"--root={Path(c.root).resolve()}",
                "--mount-subpath=" + c.mount_path.removeprefix(cfg.storage.home_path.rstrip("/") + "/"),
                f"--audit-log={data / 'courses-audit.log'}",
                *[f"--course={g}" for g in c.groups], *teachers, f"--proxy-url={cfg.hub.bind_url}"]
    if name == "sharing":
        sh = cfg.sharing
        return [python, "-m", "slicerhub.sharing.service", f"--db={data / 'sharing.sqlite'}",
                f"--audit-log={data / 'sharing-audit.log'}", f"--default-expiry={sh.default_expiry}",
                f"--max-expiry={sh.max_expiry}", f"--join-expiry={sh.join_expiry}",
                f"--sweep-every={sh.sweep_every}", *[f"--course={g}" for g in cfg.courses.groups], *teachers]
    if name == "pacs":
        p = cfg.pacs
        auth = [f"--username={p.username}", f"--password-file={Path(p.password_file).resolve()}"] if p.username else []
        return [python, "-m", "slicerhub.pacs.service", f"--dicomweb-url={p.dicomweb_url}", *auth,
                *[f"--group={g}" for g in p.groups], f"--timeout={p.timeout}",
                f"--streams-per-user={p.streams_per_user}", f"--audit-log={data / 'pacs-audit.log'}"]
    raise KeyError(name)


_SERVICE_HELP = {
    "idle-culler": ("jupyterhub-idle-culler: stops servers idle for culler.timeout", ()),
    "courses": ("SlicerHub courses service (gallery, publishing Voila apps)", COURSES_OAUTH_SCOPES),
    "sharing": ("SlicerHub sharing service (read-only links)", SHARING_OAUTH_SCOPES),
    "pacs": ("SlicerHub PACS gateway (Open in SlicerHub links, DICOMweb)", ()),
}


def programs(cfg: SlicerHubConfig, *, config_path: str | Path, python: str, hub_ip: str,
             hub_args: Sequence[str] = (), proxy: str | None = None,
             secrets: Secrets | None = None) -> dict[str, Program]:
    """Every process of this deployment, by name, in start order.

    `hub_ip` is where the hub API listens (the Docker network's gateway, or
    what the file sets); `hub_args` are extra `jupyterhub` options. With
    `secrets` (the tokens under hub.data_dir) the environments carry the
    tokens; without, they are left out (for writing unit files).
    """
    bind = cfg.hub.bind_url.split("://", 1)[1].split("/", 1)[0]
    host, _, port = bind.rpartition(":")
    out = {
        "proxy": Program(
            "proxy", "configurable-http-proxy: users' routes and open websockets (survives hub restarts)",
            [proxy or find_proxy(), "--ip", host.strip("[]"), "--port", port or "80",
             "--api-ip", "127.0.0.1", "--api-port", str(cfg.hub.proxy_api_port),
             "--error-target", _hub_api(cfg, hub_ip) + "/error", "--log-level", "info",
             *_proxy_tls(cfg)],
            {"CONFIGPROXY_AUTH_TOKEN": secrets.proxy_token()} if secrets else {}),
        "hub": Program(
            "hub", "JupyterHub (restarts keep every user's server)",
            [python, "-m", "jupyterhub", "-f", str(HUB_CONFIG), *hub_args],
            {"SLICERHUB_CONFIG": str(Path(config_path).resolve())}, after=("proxy",)),
    }
    for name in service_names(cfg):
        description, scopes = _SERVICE_HELP[name]
        out[name] = Program(name, description, _service_argv(cfg, name, python),
                            _service_env(cfg, name, hub_ip, secrets, scopes), after=("hub",))
    return out


def hub_tokens(cfg: SlicerHubConfig) -> dict[str, str]:
    """The secrets the hub needs to reach the proxy and to know its services."""
    secrets = Secrets(cfg.hub.data_dir)
    return {"proxy": secrets.proxy_token(), **{n: secrets.service_token(n) for n in service_names(cfg)}}


def hub_ip(cfg: SlicerHubConfig) -> str:
    """Where the hub API listens: the file's hub_connect_ip, else (Docker) the
    user network's gateway, made if missing; on Kubernetes every interface."""
    if cfg.backend.type != "docker":
        return "0.0.0.0"
    if cfg.backend.docker.hub_connect_ip:
        return cfg.backend.docker.hub_connect_ip
    from ..spawners.docker import ensure_network

    return ensure_network(cfg.backend.docker.network)
