"""Companions: services that start and stop with a user's server, beside it.

A profile's ``companions`` (``orthanc``, ``monailabel``) run in the network
namespace of the user's server (Docker: ``network_mode: container:<server>``;
Kubernetes: extra containers of the pod), so Slicer reaches them on
127.0.0.1 and nothing else does: each listens on loopback only. They run as
the user (UID 1000, GID 100) with the user's home mounted, and keep their data
there, so it persists with the home. The browser reaches them through the
server's jupyter-server-proxy routes (``orthanc/``, ``monailabel/``), behind
the same read-only guard as the desktop. See docs/companions.md.

The contract with a companion image: listen on 127.0.0.1:$SLICERHUB_COMPANION_PORT,
keep data under $SLICERHUB_COMPANION_DATA (images/orthanc/, images/monailabel/).
"""

from __future__ import annotations

from dataclasses import dataclass

COMPANION_LABEL = "org.slicerhub.companion-of"
KIND_LABEL = "org.slicerhub.companion"
USER = "1000:100"


@dataclass(frozen=True)
class Kind:
    name: str
    title: str
    port: int


KINDS = {
    "orthanc": Kind("orthanc", "Orthanc", 8042),
    "monailabel": Kind("monailabel", "MONAI Label", 8000),
}


def data_dir(home_path: str, name: str) -> str:
    return f"{home_path.rstrip('/')}/.local/share/slicerhub/{name}"


def server_env(names: list[str]) -> dict[str, str]:
    """What the user's server learns about its companions.

    ``SLICERHUB_COMPANIONS`` (``name=port,…``) makes the image's
    jupyter-server-proxy routes; ``SLICERHUB_<NAME>_URL`` is for notebooks.
    """
    if not names:
        return {}
    env = {"SLICERHUB_COMPANIONS": ",".join(f"{n}={KINDS[n].port}" for n in names)}
    for n in names:
        env[f"SLICERHUB_{n.upper()}_URL"] = f"http://127.0.0.1:{KINDS[n].port}"
    return env


def companion_env(name: str, home_path: str) -> dict[str, str]:
    return {
        "SLICERHUB_COMPANION_PORT": str(KINDS[name].port),
        "SLICERHUB_COMPANION_DATA": data_dir(home_path, name),
        "HOME": home_path,
    }


def kube_container(name: str, spec: dict, home_path: str, home_volume: str = "home") -> dict:
    """The pod's container for companion ``name`` (``spec``: image, cpu_limit, mem_limit)."""
    limits = {}
    if spec.get("cpu_limit"):
        limits["cpu"] = str(spec["cpu_limit"])
    if spec.get("mem_limit"):
        limits["memory"] = spec["mem_limit"]
    container = {
        "name": f"companion-{name}",
        "image": spec["image"],
        "env": [{"name": k, "value": v} for k, v in companion_env(name, home_path).items()],
        "volumeMounts": [{"name": home_volume, "mountPath": home_path}],
        "securityContext": {
            "runAsUser": 1000, "runAsGroup": 100, "runAsNonRoot": True,
            "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
        },
    }
    if limits:
        container["resources"] = {"limits": limits}
    return container
