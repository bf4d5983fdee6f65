from __future__ import annotations

import contextlib
import time

import docker
import pytest

from slicerhub.devenv.docker_engine import ensure_docker_engine
from slicerhub.devenv.images import BASE_IMAGE_TAG, build_with_parents, ensure_base_image
from slicerhub.devenv.ldap import Slapd
from tests.integration.conftest import test_directory
from tests.support.hub import ROOT, Hub, free_port, write_config
from tests.support.hub_image import HUB_IMAGE

IMAGE = "slicerhub/slicer-core:dev"
# Its own network so test containers never mix with a running demo.
NETWORK = "slicerhub-e2e"


@pytest.fixture(scope="session")
def docker_client():
    ensure_docker_engine(ROOT / "var" / "log")
    ensure_base_image()
    build_with_parents("slicer-core")
    build_with_parents("orthanc")  # the demo's teacher profile has an Orthanc companion
    return docker.from_env()


def _cleanup(client, prefix: str) -> None:
    for c in client.containers.list(all=True, filters={"label": "org.slicerhub.user"}):
        if c.name.startswith(prefix):
            c.remove(force=True)
    for v in client.volumes.list(filters={"label": "org.slicerhub.kind=home"}):
        if v.name.startswith(prefix):
            v.remove(force=True)


@contextlib.contextmanager
def docker_hub(docker_client, workdir, name: str = "e2e", **overrides):
    """slapd + a hub with the real Docker backend on NETWORK, its containers and
    homes named after NAME and removed afterwards; OVERRIDES go into the deployment file."""
    prefix = f"{name}{int(time.time()) % 100000}"
    _cleanup(docker_client, name)
    ldap = Slapd(workdir / "ldap", test_directory())
    ldap.start()
    port = free_port()
    backend = {"docker": {"network": NETWORK, "home_volume": prefix + "-home-{username}",
                          "container_prefix": prefix, **overrides.pop("docker", {})}}
    config = write_config(workdir / "slicerhub.yaml", ldap.port, port, backend=backend, **overrides)
    hub = Hub(workdir, config, port)
    try:
        hub.start()
        hub.prefix = prefix
        hub.ldap = ldap
        yield hub
    finally:
        hub.stop()
        ldap.stop()
        _cleanup(docker_client, prefix)


@pytest.fixture(scope="module")
def e2e_hub(docker_client, tmp_path_factory):
    """A hub with the real Docker backend; containers kept on stop (remove: false)
    so that stale-container replacement is exercised too."""
    workdir = tmp_path_factory.mktemp("e2e")
    with docker_hub(docker_client, workdir, docker={"remove": False},
                    courses={"groups": ["anat101"], "root": str(workdir / "courses")}) as hub:
        yield hub


@pytest.fixture(scope="module")
def hub_image():
    """images/hub, built (or found up to date) for the hub-image tests."""
    ensure_docker_engine(ROOT / "var" / "log")
    ensure_base_image(BASE_IMAGE_TAG)
    build_with_parents("hub")
    return HUB_IMAGE
