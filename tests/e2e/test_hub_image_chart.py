"""images/hub started with the Helm chart's *rendered* hub pod (issue 11).

The chart (helm/slicerhub with z2jh 4.4.0) is rendered with the full
deployment of hub_config/kubernetes.yaml (LDAP lookup with a bind Secret,
GPU profile, course share), minus its PostgreSQL database: there is no
database server here (tests/e2e has the hub on a real one), so the hub keeps
z2jh's SQLite on its volume. `pod_plan` (tests/support/hub_pod.py) takes from
the rendered objects what the kubelet would give the hub container: every
file of the ConfigMaps/Secrets its Deployment mounts, at its mount path (the
hand-made LDAP Secret is a stand-in), its env, and its args. Here each file
is bind-mounted read-only at its path, the hub PVC is an empty directory
owned by UID 1000 (the Deployment's fsGroup), and the container runs as the
Deployment's securityContext says (UID/GID 1000, no capabilities, no new
privileges) with the rendered args, on `--network none`.

The kubelet would also mount the service account's token, ca.crt and
namespace under /var/run/secrets/kubernetes.io/serviceaccount/. Nothing the
hub does before its stop reads them: slicerhub.incluster checks the release
namespace from POD_NAMESPACE (the Deployment's fieldRef, set by pod_plan),
and SlicerKubeSpawner's namespace is set from the deployment file. A
stand-in namespace file is mounted all the same, as the kubelet would; no
token or CA is, so nothing here could authenticate to an API server anyway.

What it proves: the image imports z2jh's files, SlicerHub, LDAPAuthenticator
and KubeSpawner; z2jh's config loads the rendered values; the chart's
hub.extraConfig runs slicerhub.incluster.configure (the mounted deployment
file, the mounted service tokens, the database check) and the hub runs
SlicerHub's authenticator and spawner with the deployment's settings; the hub
makes its database and initialises its (zero) spawners. Where it stops, and
why: the first thing JupyterHub does that needs the cluster is asking
z2jh's proxy for its routes through the proxy-api Service, and with no
cluster DNS (no network) `proxy-api` does not resolve, so the hub exits 1
after its retries. That failure is asserted. What it cannot prove: anything
that needs a Kubernetes API server or the proxy pod (spawning a user pod,
routes, the services' pods, the PVCs, RBAC), and PostgreSQL in the chart.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from slicerhub.helm_values import CONFIG_FILE, helm_values
from tests.support.helm import NAMESPACE, full_data, objects, render, unpack_z2jh
from tests.support.hub_pod import LDAP_PASSWORD, pod_plan

pytestmark = pytest.mark.e2e

SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
# Loads the config file as `jupyterhub` does and reports what SlicerHub's
# classes get from it (the authenticator built from it, as the hub builds it).
PROBE = """
import json, sys
from jupyterhub.app import JupyterHub
from traitlets import import_item
app = JupyterHub()
app.load_config_file(sys.argv[1])
c = app.config
auth = import_item(c.JupyterHub.authenticator_class)(config=c)
spawner = import_item(c.JupyterHub.spawner_class)
kube = c[spawner.__name__]
print("PROBE " + json.dumps({
    "authenticator": type(auth).__module__ + "." + type(auth).__name__,
    "spawner": spawner.__module__ + "." + spawner.__name__,
    "server_address": auth.server_address,
    "lookup_dn_search_user": auth.lookup_dn_search_user,
    "search_password_set": bool(auth.lookup_dn_search_password),
    "storage_capacity": kube.get("storage_capacity"),
    "storage_class": kube.get("storage_class"),
    "namespace": kube.get("namespace"),
    "k8s_api_threadpool_workers": kube.get("k8s_api_threadpool_workers"),
    "services": {s["name"]: s.get("url") for s in c.JupyterHub.services},
    "proxy_api_url": c.ConfigurableHTTPProxy.api_url,
    "hub_connect_url": c.JupyterHub.hub_connect_url,
}))
"""


@pytest.fixture(scope="module")
def pod():
    """The rendered hub pod, laid out on this machine as docker run arguments."""
    unpack_z2jh()
    data = full_data()
    del data["hub"]["database"]
    objs = objects(render(helm_values(data)))
    plan = pod_plan(objs)
    files = {**plan["files"], f"{SERVICE_ACCOUNT}/namespace": NAMESPACE}
    root = Path(tempfile.mkdtemp(prefix="slicerhub-chartpod-"))
    root.chmod(0o755)
    mounts: list[str] = []
    for d in plan["dirs"]:  # the hub PVC: empty, writable by the pod's fsGroup
        host = root / "volumes" / d.strip("/").replace("/", "_")
        host.mkdir(parents=True)
        os.chown(host, 1000, 1000)
        mounts += ["-v", f"{host}:{d}"]
    for path, text in files.items():
        host = root / "files" / path.lstrip("/")
        host.parent.mkdir(parents=True, exist_ok=True)
        host.write_text(text)
        host.chmod(0o644)  # Secret volumes' default mode (0644), readable by UID 1000
        mounts += ["-v", f"{host}:{path}:ro"]
    for p in [root / "files", *(root / "files").rglob("*")]:
        if p.is_dir():
            p.chmod(0o755)
    env = {**plan["env"], "KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    args = ["--network", "none", "--user", "1000:1000", "--cap-drop", "ALL",
            "--security-opt", "no-new-privileges", *mounts]
    for k, v in env.items():
        args += ["-e", f"{k}={v}"]
    return {"plan": plan, "args": args, "data": data}


def docker_run(image: str, pod: dict, *argv: str, entrypoint: str | None = None) -> subprocess.CompletedProcess:
    cmd = ["docker", "run", "--rm", *pod["args"], *(["--entrypoint", entrypoint] if entrypoint else []), image, *argv]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_rendered_pod_runs_the_charts_extra_config_and_stops_at_the_proxy_api(hub_image, pod):
    """The rendered args (+ --debug for the traceback): the hub gets as far as
    its database and spawners, then fails where the cluster starts: the
    proxy-api Service's name does not resolve on no network."""
    argv = pod["plan"]["argv"]
    assert argv[:3] == ["jupyterhub", "--config", "/usr/local/etc/jupyterhub/jupyterhub_config.py"]
    result = docker_run(hub_image, pod, *argv, "--debug")
    log = result.stdout + result.stderr
    assert result.returncode == 1, log[-4000:]
    assert "Loading extra config: slicerhub" in log  # the chart's hub.extraConfig
    assert "Using Authenticator: slicerhub.auth.SlicerLDAPAuthenticator" in log
    assert "Using Spawner: slicerhub.spawners.kube.SlicerKubeSpawner" in log
    assert "Initialized 0 spawners" in log  # database made on the hub volume, users loaded
    for bad in ("Bad config", "ModuleNotFoundError", "ImportError", "SlicerHub:", "Traceback (most recent call last)\n"
                "  File \"/usr/local/etc/jupyterhub/jupyterhub_config.py\""):
        assert bad not in log, bad
    assert "Cannot connect to host proxy-api:8001" in log
    assert 'Repeated api_request to proxy path "" failed' in log
    assert LDAP_PASSWORD not in log


def test_rendered_config_gives_slicerhubs_classes_the_deployments_settings(hub_image, pod):
    """The same config file loaded in the image as `jupyterhub` loads it: what
    slicerhub.incluster.configure applied from the mounted deployment file."""
    assert CONFIG_FILE in pod["plan"]["files"]
    result = docker_run(hub_image, pod, "-c", PROBE, pod["plan"]["config_file"], entrypoint="python")
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert "Loading extra config: slicerhub" in log
    (line,) = [ln for ln in result.stdout.splitlines() if ln.startswith("PROBE ")]
    got = json.loads(line[len("PROBE "):])
    ldap = pod["data"]["ldap"]
    assert got["authenticator"] == "slicerhub.auth.SlicerLDAPAuthenticator"
    assert got["spawner"] == "slicerhub.spawners.kube.SlicerKubeSpawner"
    assert got["server_address"] == ldap["server"] == "ldap.example.org"
    assert got["lookup_dn_search_user"] == "cn=slicerhub,ou=services,dc=example,dc=org"
    assert got["search_password_set"]  # read from the mounted (stand-in) Secret
    assert (got["storage_capacity"], got["storage_class"]) == ("10Gi", "standard-rwo")
    assert got["namespace"] == NAMESPACE
    assert got["k8s_api_threadpool_workers"] == 50
    # incluster's changes: the services' Kubernetes Services; z2jh's proxy and hub wiring kept.
    assert got["services"] == {"idle-culler": None, "courses": "http://slicerhub-courses:8002",
                               "sharing": "http://slicerhub-sharing:8003"}
    assert got["proxy_api_url"] == "http://proxy-api:8001"
    assert got["hub_connect_url"] == "http://hub:8081"
    assert LDAP_PASSWORD not in log
