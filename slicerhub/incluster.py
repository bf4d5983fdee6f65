"""SlicerHub inside the Helm chart: the hub's configuration and the services' pods.

The hub runs Zero to JupyterHub's own `jupyterhub_config.py`; its
`hub.extraConfig` (helm/slicerhub/values.yaml) calls `configure(c)`, which
loads the deployment file the chart mounts and applies `to_traitlets` (the
same code path as on Docker), then changes only what differs in a cluster:
z2jh's proxy Service instead of a local proxy, the services' Kubernetes
Services instead of 127.0.0.1. The services' pods run
`slicerhub cluster-service NAME`, which execs the same program
`slicerhub run NAME` would (slicerhub.runtime.programs), pointed at the hub's
and the proxy's Services.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from .config import ConfigError, SlicerHubConfig, load_config
from .helm_values import CONFIG_FILE, HUB_SERVICE, PROXY_PUBLIC, cluster_service, service_port
from .runtime.programs import Program, programs
from .runtime.secrets import Secrets
from .traitlets_config import apply, service_names, to_traitlets


def _load(path: str | None) -> SlicerHubConfig:
    path = path or os.environ.get("SLICERHUB_CONFIG") or CONFIG_FILE
    try:
        cfg = load_config(path)
    except ConfigError as e:
        print(f"SlicerHub: {e.source} is not valid:", *e.messages, sep="\n  ", file=sys.stderr)
        raise SystemExit(2) from None
    if cfg.backend.type != "kubernetes":
        raise SystemExit(f"SlicerHub: {path}: backend.type must be kubernetes in a cluster "
                         f"(got {cfg.backend.type!r})")
    return cfg


def hub_traitlets(cfg: SlicerHubConfig, tokens: dict[str, str], namespace: str | None) -> dict[str, dict[str, Any]]:
    """`to_traitlets` for a hub run by z2jh's jupyterhub_config.py (pure)."""
    ns = cfg.backend.kubernetes.namespace
    if namespace and namespace != ns:
        raise SystemExit(f"SlicerHub: backend.kubernetes.namespace is {ns!r}, but the chart is installed "
                         f"in {namespace!r}: set it to the release's namespace")
    traits = to_traitlets(cfg, tokens={"proxy": "", **tokens})
    # z2jh reaches the proxy through its proxy-api Service, with the token from
    # its own Secret (CONFIGPROXY_AUTH_TOKEN), and binds the hub itself
    # (hub_bind_url / hub_connect_url): keep its settings.
    traits.pop("ConfigurableHTTPProxy")
    hub = traits["JupyterHub"]
    for name in ("bind_url", "hub_ip", "hub_port"):
        hub.pop(name, None)
    for service in hub["services"]:
        port = service_port(cfg, service["name"])
        if port:
            service["url"] = f"http://{cluster_service(service['name'])}:{port}"
    if traits["SlicerSpawner"].get("courses_url"):
        # User servers call the courses service (publishing from JupyterLab) at its Service.
        traits["SlicerSpawner"]["courses_url"] = (
            f"http://{cluster_service('courses')}:{service_port(cfg, 'courses')}/services/courses")
    # One API thread per start allowed at once (IBM's 3,000-pod tuning:
    # k8s_api_threadpool_workers = concurrent_spawn_limit; docs/kubernetes.md).
    traits["SlicerKubeSpawner"]["k8s_api_threadpool_workers"] = cfg.hub.concurrent_spawn_limit
    return traits


def configure(c: Any, path: str | None = None) -> None:
    """Called from the chart's hub.extraConfig, after z2jh's own settings."""
    from .database import connect_hub

    cfg = _load(path)
    connect_hub(cfg)  # the password is a mounted Secret here
    secrets = Secrets(cfg.hub.data_dir)
    tokens = {name: secrets.service_token(name) for name in service_names(cfg)}
    apply(c, hub_traitlets(cfg, tokens, os.environ.get("POD_NAMESPACE")))


def service_program(cfg: SlicerHubConfig, name: str, secrets: Secrets | None) -> Program:
    """The program `slicerhub run NAME` runs, for a pod of its own."""
    plan = programs(cfg, config_path=CONFIG_FILE, python=sys.executable, hub_ip=HUB_SERVICE,
                    proxy="configurable-http-proxy", secrets=secrets)
    if name not in service_names(cfg):
        raise SystemExit(f"slicerhub cluster-service: no service {name!r} in this deployment "
                         f"(it runs: {', '.join(service_names(cfg)) or 'none'})")
    program = plan[name]
    env = dict(program.env)
    port = service_port(cfg, name)
    if port:
        # Listen on the pod's address: the proxy reaches it through its Service.
        env["JUPYTERHUB_SERVICE_URL"] = f"http://0.0.0.0:{port}"
    # Course apps are fetched through the proxy, from inside the cluster.
    argv = [f"--proxy-url={PROXY_PUBLIC}" if a.startswith("--proxy-url=") else a for a in program.argv]
    return Program(program.name, program.description, argv, env, program.after)


def run_service(args) -> int:
    cfg = _load(args.config)
    program = service_program(cfg, args.name, Secrets(cfg.hub.data_dir))
    sys.stdout.flush()
    os.execvpe(program.argv[0], program.argv, {**os.environ, **program.env})
    return 0  # not reached


def add_parser(sub) -> None:
    p = sub.add_parser("cluster-service", help="run a SlicerHub service in its pod (what the Helm chart runs)")
    p.add_argument("name", help="idle-culler, courses or sharing")
    p.add_argument("--config", default=None, help=f"the deployment file (default: {CONFIG_FILE})")
    p.set_defaults(func=run_service)
