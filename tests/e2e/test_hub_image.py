"""images/hub, built here and started as z2jh's hub pod starts it.

z2jh's own files/hub/jupyterhub_config.py and z2jh.py (from the released
4.4.0 chart) and a values Secret are mounted where the chart mounts them
(tests/support/hub_image.py). There is no Kubernetes cluster here: the
container runs on no network, so the hub gets as far as loading z2jh's
configuration with SlicerHub's authenticator and spawner named in
hub.config / hub.extraConfig, creating its database and initialising its
(zero) spawners, and then fails where a cluster is needed: the proxy-api
Service does not resolve. That failure is asserted, so this test proves the
image's imports and the config load, not a working hub on Kubernetes.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.support.hub_image import hub_pod_mounts, run_hub_pod
from tests.support.hub import ROOT

pytestmark = pytest.mark.e2e

DEBUG = ("jupyterhub", "--config", "/usr/local/etc/jupyterhub/jupyterhub_config.py", "--debug")
DEPLOYMENT = """
ldap:
  server: ldap.example.org
  bind_dn_template: ["uid={username},ou=people,dc=example,dc=org"]
  groups:
    allowed: ["cn=students,ou=groups,dc=example,dc=org"]
backend:
  type: kubernetes
  kubernetes: {namespace: slicerhub, home_size: 5Gi}
profiles:
  - {slug: standard, display_name: Slicer, image: slicerhub/slicer:dev, default: true}
"""
# How a chart names SlicerHub's classes (hub.config) and applies a mounted
# deployment file's LDAP and spawner settings (hub.extraConfig).
EXTRA_CONFIG = """
from slicerhub.config import load_config
from slicerhub.traitlets_config import to_traitlets
_t = to_traitlets(load_config("/usr/local/etc/jupyterhub/slicerhub.yaml"))
for _section in ("SlicerLDAPAuthenticator", "SlicerSpawner", "SlicerKubeSpawner"):
    c[_section].update(_t[_section])
print("SlicerHub LDAP server:", c.SlicerLDAPAuthenticator.server_address)
print("SlicerHub home size:", c.SlicerKubeSpawner.storage_capacity)
"""


def slicerhub_values(**hub) -> dict:
    return {"hub": {
        "config": {"JupyterHub": {"authenticator_class": "slicerhub.auth.SlicerLDAPAuthenticator",
                                  "spawner_class": "slicerhub.spawners.kube.SlicerKubeSpawner"}},
        "extraConfig": {"slicerhub": EXTRA_CONFIG},
        **hub,
    }}


def docker_run(image: str, *argv: str) -> str:
    return subprocess.run(["docker", "run", "--rm", "--network", "none", "--entrypoint", argv[0], image,
                           *argv[1:]], capture_output=True, text=True, check=True, timeout=300).stdout


def test_z2jh_config_loads_slicerhub_classes_and_stops_only_for_lack_of_a_cluster(hub_image):
    mounts = hub_pod_mounts(slicerhub_values(), files={"slicerhub.yaml": DEPLOYMENT})
    result = run_hub_pod(mounts, image=hub_image, args=DEBUG)
    log = result.stdout + result.stderr
    assert result.returncode == 1, log[-4000:]
    assert "Loading extra config: slicerhub" in log
    assert "SlicerHub LDAP server: ldap.example.org" in log
    assert "SlicerHub home size: 5Gi" in log
    assert "Using Authenticator: slicerhub.auth.SlicerLDAPAuthenticator" in log
    assert "Using Spawner: slicerhub.spawners.kube.SlicerKubeSpawner" in log
    assert "Initialized 0 spawners" in log  # database made (sqlite-pvc), users loaded
    assert "Bad config" not in log and "ModuleNotFoundError" not in log and "ImportError" not in log
    # The expected end: the proxy pod's Service does not exist here.
    assert "Cannot connect to host proxy-api:8001" in log
    assert 'Repeated api_request to proxy path "" failed' in log


def test_postgres_database_driver_is_in_the_image(hub_image):
    """hub.db.type postgres with psycopg 3: the driver loads and libpq says why it cannot connect."""
    values = slicerhub_values(db={"type": "postgres",
                                  "url": "postgresql+psycopg://slicerhub@10.0.0.1:5432/slicerhub?connect_timeout=5"})
    mounts = hub_pod_mounts(values, files={"slicerhub.yaml": DEPLOYMENT}, secret={"hub.db.password": "test-only"})
    result = run_hub_pod(mounts, image=hub_image, args=DEBUG)
    log = result.stdout + result.stderr
    assert result.returncode == 1, log[-4000:]
    assert "Failed to connect to db: postgresql+psycopg://slicerhub@10.0.0.1:5432/slicerhub" in log
    assert "psycopg.OperationalError" in log  # the debug traceback: psycopg 3 tried, not a missing module
    assert "test-only" not in log


def test_image_layout_and_pins_match_constraints(hub_image):
    assert docker_run(hub_image, "id", "-u").strip() == "1000"
    assert docker_run(hub_image, "pwd").strip() == "/srv/jupyterhub"
    frozen = dict(line.split("==", 1) for line in docker_run(hub_image, "cat", "/opt/venv/frozen.txt").split()
                  if "==" in line)
    pins = dict(line.strip().split("==", 1) for line in (ROOT / "constraints.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    norm = lambda n: n.lower().replace("_", "-")  # noqa: E731
    pins = {norm(k): v for k, v in pins.items()}
    installed = {norm(k): v for k, v in frozen.items()}
    for name in ("jupyterhub", "jupyterhub-kubespawner", "jupyterhub-ldapauthenticator", "psycopg",
                 "psycopg-binary", "pycurl", "sqlalchemy", "kubernetes-asyncio"):
        assert installed.get(name) == pins[name], name
    unpinned = sorted(n for n in installed if n not in pins)
    assert unpinned == [], f"installed in the hub image but not pinned in constraints.txt: {unpinned}"
    # No proxy in this image (z2jh runs it in its own pod), no build file left.
    listing = docker_run(hub_image, "sh", "-c",
                         "command -v configurable-http-proxy node; ls -A /tmp; ls -A /srv/jupyterhub; "
                         "find / -xdev \\( -name 'build-ca.crt' -o -name '*cookie_secret*' "
                         "-o -name '*.sqlite' \\) -print 2>/dev/null; true")
    assert listing.strip() == "", listing
