"""Deployment file → values of the Helm chart (helm/slicerhub), as a pure function.

The chart carries the deployment file itself (`slicerhub.config`); the hub
reads it and calls `to_traitlets`, exactly as on Docker (slicerhub.incluster).
What is computed here is only what Zero to JupyterHub (the `jupyterhub`
subchart) and the chart's own templates must be told before any SlicerHub code
runs: which images to pre-pull, where the files the hub reads are mounted,
which services run, how big a user placeholder is. Helm cannot derive these
(a parent chart cannot set its subchart's values from a template).

    slicerhub config helm-values deployment.yaml > slicerhub-values.yaml
    helm install slicerhub helm/slicerhub -f slicerhub-values.yaml -f site.yaml
"""

from __future__ import annotations

import copy
import posixpath
from typing import Any

from jupyterhub.traitlets import ByteSpecification

from .config import ConfigError, SlicerHubConfig, json_schema, parse_config
from .runtime.secrets import service_token_name
from .spawners.kube import GPU_TOLERATION
from .traitlets_config import service_names

# Where the hub pod finds the deployment file (the chart's ConfigMap).
CONFIG_DIR = "/usr/local/etc/slicerhub"
CONFIG_FILE = f"{CONFIG_DIR}/slicerhub.yaml"
CONFIG_MAP = "slicerhub-config"
TOKENS_SECRET = "slicerhub-service-tokens"
# z2jh keeps the hub's SQLite database and cookie secret on this volume.
HUB_DATA_DIR = "/srv/jupyterhub"
# z2jh's Services (jupyterhub.fullnameOverride is "", so they carry no prefix).
HUB_SERVICE = "hub"
PROXY_PUBLIC = "http://proxy-public"
DEFAULT_LDAP_SECRET = "slicerhub-ldap"
DEFAULT_DATABASE_SECRET = "slicerhub-database"


def cluster_service(name: str) -> str:
    """The Kubernetes Service (and Deployment) of a SlicerHub service."""
    return f"slicerhub-{name}"


def service_port(cfg: SlicerHubConfig, name: str) -> int | None:
    return {"courses": cfg.hub.courses_port, "sharing": cfg.hub.sharing_port}.get(name)


def split_image(image: str) -> tuple[str, str]:
    """`registry:5000/a/b:tag` → (`registry:5000/a/b`, `tag`); z2jh wants both parts."""
    if "@" in image:
        raise ValueError(f"{image!r}: give the image by tag (the image pullers take name and tag)")
    name, sep, tag = image.rpartition(":")
    if not sep or "/" in tag:
        return image, "latest"
    return name, tag


def _check(cfg: SlicerHubConfig, source: str) -> None:
    problems = []
    if cfg.backend.type != "kubernetes":
        problems.append(f"backend.type: must be kubernetes for the Helm chart (got {cfg.backend.type!r})")
    if cfg.hub.data_dir != HUB_DATA_DIR:
        problems.append(f"hub.data_dir: must be {HUB_DATA_DIR} on Kubernetes (the hub pod's volume; "
                        f"got {cfg.hub.data_dir!r})")
    c = cfg.courses
    if c.groups and not c.claim:
        problems.append("courses.claim: required on Kubernetes (the ReadWriteMany claim holding the course "
                        "folders; the chart makes it unless slicerhub.courseShare.create is false)")
    if c.groups and not c.root.startswith("/"):
        problems.append(f"courses.root: must be an absolute path on Kubernetes (where courses.claim is "
                        f"mounted in the courses service; got {c.root!r})")
    look = cfg.ldap.lookup
    for field, path in (("ldap.ca_file", cfg.ldap.ca_file),
                        ("ldap.lookup.bind_password_file", look.bind_password_file if look else None),
                        ("hub.database.password_file", cfg.hub.database.password_file)):
        if path and not path.startswith("/"):
            problems.append(f"{field}: must be an absolute path on Kubernetes (a Secret is mounted there; "
                            f"got {path!r})")
    for i, p in enumerate(cfg.profiles):
        try:
            split_image(p.image)
        except ValueError as e:
            problems.append(f"profiles[{i}].image: {e}")
    if problems:
        raise ConfigError(source, problems)


def _secret_file(volume: str, secret: str, key: str, path: str) -> tuple[dict, dict]:
    """A volume with one key of an existing Secret, and its mount as the file `path`."""
    return ({"name": volume, "secret": {"secretName": secret, "items": [{"key": key, "path": key}]}},
            {"name": volume, "mountPath": path, "subPath": key, "readOnly": True})


def _hub_mounts(cfg: SlicerHubConfig, ldap_secret: str, database_secret: str) -> tuple[list, list]:
    volumes = [{"name": "slicerhub-config", "configMap": {"name": CONFIG_MAP}}]
    mounts = [{"name": "slicerhub-config", "mountPath": CONFIG_DIR, "readOnly": True}]
    names = service_names(cfg)
    if names:
        # The hub reads each service's token where slicerhub.runtime.secrets keeps it.
        volumes.append({"name": "slicerhub-service-tokens", "secret": {"secretName": TOKENS_SECRET}})
        mounts.append({"name": "slicerhub-service-tokens", "readOnly": True,
                       "mountPath": posixpath.join(cfg.hub.data_dir, "secrets")})
    look = cfg.ldap.lookup
    files = [("ldap-bind-password", ldap_secret, "password", look.bind_password_file if look else None),
             ("ldap-ca", ldap_secret, "ca.crt", cfg.ldap.ca_file),
             ("database-password", database_secret, "password", cfg.hub.database.password_file)]
    for volume, secret, key, path in files:
        if path:
            v, m = _secret_file(volume, secret, key, path)
            volumes.append(v)
            mounts.append(m)
    return volumes, mounts


def _db(cfg: SlicerHubConfig) -> dict[str, Any]:
    url = cfg.hub.database.url
    if not url:
        return {"type": "sqlite-pvc"}
    # The hub's own code opens it (slicerhub.database: URL + password_file);
    # z2jh only needs to know it makes no volume for SQLite.
    return {"type": "postgres", "url": url}


def _placeholder(cfg: SlicerHubConfig) -> dict[str, Any]:
    """A placeholder pod reserves what one default-profile user's pod may take."""
    default = next((p for p in cfg.profiles if p.default), cfg.profiles[0])
    requests: dict[str, Any] = {}
    if default.cpu_limit:
        requests["cpu"] = default.cpu_limit
    if default.mem_limit:
        # The same bytes KubeSpawner makes of the same string.
        requests["memory"] = ByteSpecification().validate(None, default.mem_limit)
    return {"resources": {"requests": requests, "limits": dict(requests)}} if requests else {}


def helm_values(data: dict[str, Any], *, source: str = "<config>", ldap_secret: str = DEFAULT_LDAP_SECRET,
                database_secret: str = DEFAULT_DATABASE_SECRET) -> dict[str, Any]:
    """The chart values for the deployment `data` (the parsed YAML of the file).

    `ldap_secret` / `database_secret` name existing Secrets whose `password`
    (and, for LDAP, `ca.crt`) keys are mounted where the file's *_file
    settings point. Raises ConfigError naming each bad field.
    """
    cfg = parse_config(data, source)
    _check(cfg, source)
    default = next((p for p in cfg.profiles if p.default), cfg.profiles[0])
    images: dict[str, tuple[str, str]] = {}
    for p in cfg.profiles:
        if p.image != default.image and p.image not in {f"{n}:{t}" for n, t in images.values()}:
            images[f"profile-{p.slug}"] = split_image(p.image)
    name, tag = split_image(default.image)
    volumes, mounts = _hub_mounts(cfg, ldap_secret, database_secret)
    gpu = any(p.gpus for p in cfg.profiles) and cfg.backend.kubernetes.gpu_toleration
    services = {}
    for svc in service_names(cfg):
        services[svc] = {"name": cluster_service(svc), "tokenKey": service_token_name(svc)}
        port = service_port(cfg, svc)
        if port:
            services[svc]["port"] = port
    generated: dict[str, Any] = {"services": services, "dataDir": cfg.hub.data_dir, "configFile": CONFIG_FILE}
    if cfg.courses.groups:
        generated["courses"] = {"claim": cfg.courses.claim, "root": cfg.courses.root}
    jupyterhub: dict[str, Any] = {
        "hub": {"db": _db(cfg), "extraVolumes": volumes, "extraVolumeMounts": mounts},
        # The image pullers pull singleuser.image and prePuller.extraImages on every
        # node; the spawner itself picks each profile's image.
        "singleuser": {"image": {"name": name, "tag": tag}},
        "prePuller": {"extraImages": {k: {"name": n, "tag": t} for k, (n, t) in images.items()},
                      # Pull onto the (tainted) GPU nodes too.
                      "extraTolerations": [dict(GPU_TOLERATION)] if gpu else []},
        "scheduling": {"userPlaceholder": _placeholder(cfg)},
    }
    return {"slicerhub": {"config": copy.deepcopy(data), "generated": generated}, "jupyterhub": jupyterhub}


def values_schema() -> dict[str, Any]:
    """values.schema.json: the deployment file's JSON Schema under slicerhub.config.

    Helm validates values against it at install, lint and template time, so a
    bad field fails before anything reaches the cluster, with its path.
    """
    schema = json_schema()
    defs = schema.pop("$defs", {})
    # On Kubernetes the backend must say so (the Docker settings mean nothing there).
    config = {"allOf": [schema, {"properties": {"backend": {
        "properties": {"type": {"const": "kubernetes"}}, "required": ["type"]}}, "required": ["backend"]}]}
    obj = {"type": "object"}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "SlicerHub Helm chart values (generated by `slicerhub config helm-schema`; do not edit)",
        "type": "object",
        "additionalProperties": False,
        "required": ["slicerhub"],
        "properties": {
            "global": obj,
            # Zero to JupyterHub validates its own values with its own schema.
            "jupyterhub": obj,
            "slicerhub": {
                "type": "object",
                "additionalProperties": False,
                "required": ["config", "generated"],
                "properties": {
                    "config": config,
                    "generated": {
                        "type": "object",
                        "description": "Written by `slicerhub config helm-values`; do not edit.",
                        "required": ["services", "dataDir", "configFile"],
                    },
                    "image": {"type": "object", "additionalProperties": False,
                              "required": ["name", "tag"],
                              "properties": {"name": {"type": "string", "minLength": 1},
                                             "tag": {"type": "string", "minLength": 1},
                                             "pullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]}}},
                    "courseShare": {"type": "object", "additionalProperties": False,
                                    "properties": {"create": {"type": "boolean"},
                                                   "storageClassName": {"type": "string"},
                                                   "size": {"type": "string",
                                                            "pattern": r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti)?$"}}},
                    "serviceData": {"type": "object", "additionalProperties": False,
                                    "properties": {"storageClassName": {"type": "string"},
                                                   "size": {"type": "string",
                                                            "pattern": r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti)?$"}}},
                    "serviceTokens": {"type": "object", "additionalProperties": False,
                                      "properties": {"create": {"type": "boolean"}}},
                    "resources": obj,
                    "networkPolicy": {"type": "object", "additionalProperties": False,
                                      "properties": {"enabled": {"type": "boolean"}}},
                },
            },
        },
        "$defs": defs,
    }
