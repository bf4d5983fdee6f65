"""The deployment file's `jupyterhub:` section reaches the real hub, and a bad
one stops the hub before it serves anything, naming the setting.

Real hub + proxy + slapd (servers: benchmarks.light_spawner's stubs).
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests
import yaml

from benchmarks.harness import BenchHub
from tests.support.hub import HUB_CONFIG, free_port, write_config

ANNOUNCEMENT = "Maintenance tonight at 18:00"


@pytest.fixture(scope="module")
def hub(slapd, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("jupyterhub-settings")
    port = free_port()
    config = write_config(
        workdir / "slicerhub.yaml", slapd.port, port,
        backend={"docker": {"hub_connect_ip": "127.0.0.1"}}, culler={"enabled": False},
        jupyterhub={"JupyterHub": {"template_vars": {"announcement": ANNOUNCEMENT}},
                    "Authenticator": {"auto_login": False}},
    )
    args = ["--JupyterHub.spawner_class=benchmarks.light_spawner.LightSpawner"]
    with BenchHub(workdir, config, port, args=args) as running:
        yield running


def test_a_setting_without_a_field_reaches_the_hub(hub):
    page = requests.get(hub.url + "/hub/login", timeout=30)
    assert page.status_code == 200
    assert ANNOUNCEMENT in page.text  # JupyterHub's own pages show template_vars.announcement
    s, r = hub.login("student1", "student1-pw")
    assert r.status_code == 302


def test_a_bad_setting_stops_the_hub_naming_it(tmp_path, slapd):
    config = write_config(tmp_path / "slicerhub.yaml", slapd.port, free_port(),
                          jupyterhub={"Spawner": {"start_timeout": "soon"}})
    run = subprocess.run([sys.executable, "-m", "jupyterhub", "-f", str(HUB_CONFIG), "--show-config"],
                         env={"SLICERHUB_CONFIG": str(config), "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 2, run.stderr[-2000:]
    assert "jupyterhub.Spawner.start_timeout: The 'start_timeout' trait expected an int" in run.stderr
    assert "Traceback" not in run.stderr

    check = subprocess.run([sys.executable, "-m", "slicerhub.cli", "config", "check", str(config)],
                           capture_output=True, text=True, timeout=300)
    assert check.returncode == 1 and "jupyterhub.Spawner.start_timeout" in check.stderr
    assert yaml.safe_load(config.read_text())["jupyterhub"]  # the file is left as it was
