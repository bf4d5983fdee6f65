"""The hub container of the rendered chart: its files and environment.

`pod_plan` reads the rendered hub Deployment and lays out what the kubelet
would give its container: each ConfigMap/Secret volume mount's files at their
paths (subPath and items honoured), the PVC and emptyDir mount points, the
env (values, secretKeyRefs, POD_NAMESPACE as its fieldRef gives it) and the
<SERVICE>_SERVICE_HOST/PORT variables of the namespace's Services. Secrets a
site makes by hand (docs/kubernetes.md) are stand-ins: `EXISTING`.
"""

from __future__ import annotations

import base64

from tests.support.helm import NAMESPACE, find

LDAP_PASSWORD = "bind-secret-for-test"
# Existing Secrets a site makes by hand (docs/kubernetes.md); here stand-ins.
EXISTING = {
    "slicerhub-ldap": {"password": LDAP_PASSWORD, "ca.crt": "-----BEGIN CERTIFICATE-----\n"},
}


def _data_of(obj: dict) -> dict[str, str]:
    if obj["kind"] == "ConfigMap":
        return dict(obj.get("data", {}))
    return {k: base64.b64decode(v).decode() for k, v in obj.get("data", {}).items()}


def pod_plan(objs: list[dict]) -> dict:
    """The hub container's files and environment, from the rendered objects."""
    hub = find(objs, "Deployment", "hub")["spec"]["template"]["spec"]
    (container,) = hub["containers"]
    sources = {(o["kind"], o["metadata"]["name"]): _data_of(o) for o in objs if o["kind"] in ("ConfigMap", "Secret")}
    sources.update({("Secret", k): v for k, v in EXISTING.items()})
    volumes = {v["name"]: v for v in hub["volumes"]}
    files: dict[str, str] = {}
    dirs: list[str] = []
    for mount in container["volumeMounts"]:
        vol = volumes[mount["name"]]
        if "configMap" in vol or "secret" in vol:
            kind, ref = ("ConfigMap", vol["configMap"]["name"]) if "configMap" in vol else ("Secret", vol["secret"]["secretName"])
            data = sources[(kind, ref)]
            items = (vol.get("configMap") or vol.get("secret")).get("items")
            tree = {i["path"]: data[i["key"]] for i in items} if items else data
            if mount.get("subPath"):
                files[mount["mountPath"]] = tree[mount["subPath"]]
            else:
                files.update({f"{mount['mountPath'].rstrip('/')}/{k}": v for k, v in tree.items()})
        else:  # the hub's PVC, emptyDirs
            dirs.append(mount["mountPath"])
    env = {"POD_NAMESPACE": NAMESPACE}
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
        elif "secretKeyRef" in e.get("valueFrom", {}):
            ref = e["valueFrom"]["secretKeyRef"]
            env[e["name"]] = sources[("Secret", ref["name"])][ref["key"]]
    # What the kubelet adds for each Service of the namespace.
    for svc in (o for o in objs if o["kind"] == "Service"):
        prefix = svc["metadata"]["name"].upper().replace("-", "_")
        env[f"{prefix}_SERVICE_HOST"] = "10.96.0.10"
        env[f"{prefix}_SERVICE_PORT"] = str(svc["spec"]["ports"][0]["port"])
    config_file = container["args"][container["args"].index("--config") + 1] if "--config" in container["args"] \
        else "/usr/local/etc/jupyterhub/jupyterhub_config.py"
    # What the container runs: the Deployment's command and args (the image's CMD where it gives none).
    argv = list(container.get("command") or []) + list(container.get("args") or [])
    return {"files": files, "dirs": dirs, "env": env, "config_file": config_file, "argv": argv}
