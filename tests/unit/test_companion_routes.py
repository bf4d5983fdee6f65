"""The image's jupyter-server-proxy routes to companions
(images/base/python/slicerhub_server/companions.py), loaded from the source tree
like the read-only policy; the e2e test (test_companions.py) uses them in a real server."""

from __future__ import annotations

import importlib.util

import pytest

from slicerhub.spawners.companions import KINDS, server_env
from tests.support.hub import ROOT

_spec = importlib.util.spec_from_file_location(
    "slicerhub_server_companions", ROOT / "images" / "base" / "python" / "slicerhub_server" / "companions.py")
companions = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(companions)


def test_the_spawners_env_gives_the_images_routes():
    env = server_env(["orthanc", "monailabel"])["SLICERHUB_COMPANIONS"]
    assert companions.configured(env) == {k: v.port for k, v in KINDS.items()}
    orthanc = companions.route("orthanc", env)
    assert orthanc["port"] == 8042 and orthanc["command"] == []
    assert orthanc["launcher_entry"] == {"title": "Orthanc", "path_info": "orthanc/app/explorer.html"}
    assert set(companions.TITLES) == set(KINDS)


@pytest.mark.parametrize("env", ["", "orthanc", "orthanc=", "orthanc=x", "orthanc=0", "orthanc=70000",
                                 "pgadmin=5050", " , ,"])
def test_no_route_without_a_valid_entry(env):
    assert "orthanc" not in companions.configured(env)
    with pytest.raises(companions.NotConfigured, match="no Orthanc companion"):
        companions.route("orthanc", env)


def test_one_companion_gives_no_route_to_the_other():
    env = server_env(["orthanc"])["SLICERHUB_COMPANIONS"]
    assert companions.configured(env) == {"orthanc": 8042}
    with pytest.raises(companions.NotConfigured):
        companions.route("monailabel", env)
