"""Run inside a private mount namespace (tests/integration/test_z2jh_hub.py):
lay out the hub pod's files where the chart mounts them, load z2jh's own
jupyterhub_config.py with JupyterHub's config loader, and have the configured
authenticator and spawner build what they would in the cluster.

argv: plan.json out.json. Writes out.json; z2jh's own prints go to stdout.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace

from kube_json import plain  # beside this script (it runs as one)


def lay_out(plan: dict) -> None:
    for d in plan["dirs"]:
        Path(d).mkdir(parents=True, exist_ok=True)
    for path, text in plan["files"].items():
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    os.environ.update(plan["env"])


def user(name, groups):
    return SimpleNamespace(name=name, id=abs(hash(name)) % 1000, url=f"/user/{name}/", escaped_name=name,
                           json_escaped_name=name, admin=False, groups=[SimpleNamespace(name=g) for g in groups],
                           progress_url=lambda server_name="": f"/hub/api/users/{name}/server/progress")


async def manifests(config, people) -> dict:
    import kubespawner.spawner as ks
    from traitlets import import_item

    # No cluster: KubeSpawner's client set-up is the only thing replaced.
    ks.load_config = lambda **kwargs: None
    ks.shared_client = lambda *args, **kwargs: object()
    spawner_class = import_item(config.JupyterHub.spawner_class)
    hub = SimpleNamespace(public_host="", url="http://hub:8081/hub/", base_url="/hub/",
                          api_url="http://hub:8081/hub/api")
    out = {}
    for name, groups, slug in people:
        spawner = spawner_class(_mock=True, user=user(name, groups), hub=hub, config=config)
        spawner.user_options = {"profile": slug}
        await spawner.prepare()
        out[name] = {"pod": plain(await spawner.get_pod_manifest()), "pvc": plain(spawner.get_pvc_manifest()),
                     "traits": {t: getattr(spawner, t) for t in (
                         "namespace", "storage_class", "storage_capacity", "k8s_api_threadpool_workers",
                         "image", "node_selector")}}
    return out


def main() -> None:
    plan = json.loads(Path(sys.argv[1]).read_text())
    lay_out(plan)
    from jupyterhub.app import JupyterHub
    from traitlets import import_item

    app = JupyterHub()
    app.load_config_file(plan["config_file"])
    config = app.config
    auth = import_item(config.JupyterHub.authenticator_class)(config=config)
    result = {
        "JupyterHub": {k: v for k, v in config.JupyterHub.items()
                       if k in ("authenticator_class", "spawner_class", "db_url", "services", "load_roles",
                                "last_activity_interval", "init_spawners_timeout", "activity_resolution",
                                "hub_bind_url", "hub_connect_url", "concurrent_spawn_limit", "cleanup_servers")},
        "proxy_api_url": config.ConfigurableHTTPProxy.api_url,
        "authenticator": {t: getattr(auth, t) for t in (
            "server_address", "server_port", "tls_strategy", "lookup_dn", "lookup_dn_search_user",
            "lookup_dn_search_password", "user_search_base", "admin_groups", "tls_kwargs",
            "concurrent_login_limit")},
        "pgpassword": os.environ.get("PGPASSWORD"),
        "servers": asyncio.run(manifests(config, plan["people"])),
    }
    result["authenticator"]["tls_strategy"] = str(result["authenticator"]["tls_strategy"])
    Path(sys.argv[2]).write_text(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
