"""The offline (wheelhouse) build path for hospital networks: fill a
wheelhouse with `--download-wheels`, then build the base image with no
network at all; pip finds everything in the wheelhouse, and nothing of the
wheelhouse stays in the image."""

from __future__ import annotations

import pytest

from slicerhub.devenv import images

pytestmark = pytest.mark.e2e

TAG = "slicerhub/base:offline-test"


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory):
    path = tmp_path_factory.mktemp("wheelhouse")
    assert images.main(["--download-wheels", str(path), "base"]) == 0
    return path


def test_base_builds_with_no_network_from_the_wheelhouse(docker_client, wheelhouse):
    # docker_client has built the online images, so Debian packages come from
    # the layer cache; pip must find every Python package in the wheelhouse.
    try:
        images.build_image("base", TAG, wheelhouse=wheelhouse, offline=True)
        out = docker_client.containers.run(
            TAG, ["sh", "-c", "jupyterhub-singleuser --version; ls -A /tmp; "
                              "find / -xdev -name '*.whl' 2>/dev/null | head -3"],
            remove=True).decode()
        assert out.split() == ["6.1.1"], out
    finally:
        if images.image_exists(TAG):
            docker_client.images.remove(TAG, force=True)


def test_an_incomplete_wheelhouse_fails_the_offline_build(docker_client, wheelhouse, tmp_path, capsys):
    partial = tmp_path / "partial"
    partial.mkdir()
    for wheel in wheelhouse.iterdir():
        if not wheel.name.startswith("tornado-"):
            (partial / wheel.name).hardlink_to(wheel)
    with pytest.raises(RuntimeError, match="failed"):
        images.build_image("base", TAG, wheelhouse=partial, offline=True)
    # pip looked in the wheelhouse only, and said what was missing.
    assert "No matching distribution found for tornado" in capsys.readouterr().out
    assert not images.image_exists(TAG)
