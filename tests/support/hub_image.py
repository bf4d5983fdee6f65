"""Run the hub image (images/hub) the way z2jh's hub pod runs it, without a cluster.

z2jh's hub Deployment mounts, under /usr/local/etc/jupyterhub/:
jupyterhub_config.py and z2jh.py (from the chart's files/hub/), config/ (the
hub ConfigMap: resource names), secret/ (the hub Secret: values.yaml with the
chart's merged values, hub.db.password, and the generated proxy token,
cookie secret and CryptKeeper keys), and any hub.extraFiles. It sets
POD_NAMESPACE, HELM_RELEASE_NAME, CONFIGPROXY_AUTH_TOKEN, and Kubernetes sets
<SERVICE>_SERVICE_PORT for the hub and proxy-api Services.

`hub_pod_mounts` lays those files out in a directory from a values dict
(merged over the chart's own values.yaml, as Helm does) and extra files, so a
test can feed it a hand-written values dict or, later, the chart's rendered
Secret. `run_hub_pod` starts the image with them, on no network at all:
there is no Kubernetes API (nor proxy pod) here, so the hub can get as far as
loading its configuration and its classes, then fails to reach the cluster.
"""

from __future__ import annotations

import copy
import secrets
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any, Mapping

import yaml

ROOT = Path(__file__).resolve().parents[2]
Z2JH_CHART = ROOT.parent / "shared" / "helm-charts" / "jupyterhub-4.4.0.tgz"
HUB_IMAGE = "slicerhub/hub:dev"
MOUNT = "/usr/local/etc/jupyterhub"
RELEASE = "slicerhub"
# The ConfigMap's names for a release named like the chart (z2jh's name-templates).
NAMES = {"hub": "hub", "proxy-api": "proxy-api", "proxy-public": "proxy-public", "singleuser": "singleuser",
         "image-pull-secret": "image-pull-secret", "user-scheduler": "user-scheduler", "priority": "priority",
         "fullname": "", "fullname-dash": ""}


def chart_file(member: str, chart: Path = Z2JH_CHART) -> bytes:
    """One file of the released z2jh chart (e.g. "files/hub/jupyterhub_config.py")."""
    with tarfile.open(chart) as tar:
        f = tar.extractfile(f"jupyterhub/{member}")
        assert f is not None, member
        return f.read()


def merge(base: dict, extra: Mapping) -> dict:
    out = copy.deepcopy(base)
    for k, v in extra.items():
        out[k] = merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def hub_pod_mounts(values: Mapping[str, Any], files: Mapping[str, str | bytes] = (),
                   secret: Mapping[str, str] = ()) -> Path:
    """A directory laid out as z2jh mounts /usr/local/etc/jupyterhub/.

    `values`: merged over the chart's values.yaml into secret/values.yaml.
    `files`: extra paths relative to the mount (hub.extraFiles, a deployment
    file). `secret`: extra hub Secret keys (e.g. "hub.db.password").
    Readable by the image's user (UID 1000): only throw-away test values go in.
    """
    root = Path(tempfile.mkdtemp(prefix="slicerhub-hubpod-"))
    root.chmod(0o755)
    full = merge(yaml.safe_load(chart_file("values.yaml")), values)
    full["Release"] = {"Name": RELEASE, "Namespace": "slicerhub", "Service": "Helm"}
    entries: dict[str, str | bytes] = {
        "jupyterhub_config.py": chart_file("files/hub/jupyterhub_config.py"),
        "z2jh.py": chart_file("files/hub/z2jh.py"),
        "secret/values.yaml": yaml.safe_dump(full),
        "secret/hub.config.ConfigurableHTTPProxy.auth_token": secrets.token_hex(32),
        "secret/hub.config.JupyterHub.cookie_secret": secrets.token_hex(32),
        "secret/hub.config.CryptKeeper.keys": secrets.token_hex(32),
        **{f"config/{k}": v for k, v in NAMES.items()},
        **{f"secret/{k}": v for k, v in dict(secret).items()},
        **dict(files),
    }
    for rel, content in entries.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.parent.chmod(0o755)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        path.chmod(0o644)
    return root


def run_hub_pod(mounts: Path, *, image: str = HUB_IMAGE, args: tuple[str, ...] = (),
                timeout: float = 300) -> subprocess.CompletedProcess:
    """`docker run` the image's default command with the pod's mounts and env,
    on no network; returns when the hub exits (the bound only catches a hang)."""
    token = (mounts / "secret/hub.config.ConfigurableHTTPProxy.auth_token").read_text()
    cmd = ["docker", "run", "--rm", "--network", "none",
           "-v", f"{mounts}:{MOUNT}:ro",
           "-e", "PYTHONUNBUFFERED=1", "-e", f"HELM_RELEASE_NAME={RELEASE}", "-e", "POD_NAMESPACE=slicerhub",
           "-e", f"CONFIGPROXY_AUTH_TOKEN={token}",
           "-e", "HUB_SERVICE_PORT=8081", "-e", "PROXY_API_SERVICE_PORT=8001",
           # What a pod's service account gives KubeSpawner: where the API would be.
           "-e", "KUBERNETES_SERVICE_HOST=10.96.0.1", "-e", "KUBERNETES_SERVICE_PORT=443",
           image, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
