"""slicerhub.runtime: the processes of one machine, their environments and
the systemd/supervisord files that run them."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from jupyterhub_idle_culler import IdleCuller

from slicerhub.cli import main as cli
from slicerhub.runtime.programs import programs
from slicerhub.runtime.secrets import Secrets
from slicerhub.runtime.units import supervisord_conf, systemd_units
from slicerhub.traitlets_config import to_traitlets

from .helpers import demo_config, demo_data

PY = "/opt/slicerhub/bin/python"


@pytest.fixture
def cfg(tmp_path):
    data = demo_data()
    data["hub"]["data_dir"] = str(tmp_path / "hub")
    from slicerhub.config import parse_config

    return parse_config(data)


@pytest.fixture
def plan(cfg, tmp_path):
    return programs(cfg, config_path=tmp_path / "site.yaml", python=PY, hub_ip="172.18.0.1",
                    proxy="/usr/bin/configurable-http-proxy", secrets=Secrets(cfg.hub.data_dir))


def test_every_process_of_the_deployment_in_start_order(plan):
    assert list(plan) == ["proxy", "hub", "idle-culler", "courses", "sharing"]
    assert plan["hub"].after == ("proxy",)
    assert all(plan[n].after == ("hub",) for n in ("idle-culler", "courses", "sharing"))


def test_proxy_runs_on_the_public_address_with_the_shared_token(plan, cfg):
    proxy = plan["proxy"]
    assert proxy.argv == ["/usr/bin/configurable-http-proxy", "--ip", "127.0.0.1", "--port", "8000",
                          "--api-ip", "127.0.0.1", "--api-port", "8001",
                          "--error-target", "http://172.18.0.1:8081/hub/error", "--log-level", "info"]
    token = proxy.env["CONFIGPROXY_AUTH_TOKEN"]
    # The hub gets the very same token, from the same file.
    hub_side = to_traitlets(cfg, tokens={"proxy": Secrets(cfg.hub.data_dir).proxy_token(),
                                         "idle-culler": "x", "courses": "y", "sharing": "z"})
    assert hub_side["ConfigurableHTTPProxy"]["auth_token"] == token


def test_hub_reads_the_deployment_file_at_each_start(plan, tmp_path):
    hub = plan["hub"]
    assert hub.argv[:4] == [PY, "-m", "jupyterhub", "-f"]
    assert hub.argv[4].endswith("hub_config/jupyterhub_config.py")
    assert hub.env == {"SLICERHUB_CONFIG": str(tmp_path / "site.yaml")}


def test_services_get_what_the_hub_gives_its_own_services(plan, cfg):
    courses = plan["courses"].env
    assert courses["JUPYTERHUB_SERVICE_NAME"] == "courses"
    # Where the hub API listens: user servers call it too (publishing from JupyterLab).
    assert courses["JUPYTERHUB_SERVICE_URL"] == "http://172.18.0.1:8002"
    assert courses["JUPYTERHUB_SERVICE_PREFIX"] == "/services/courses/"
    assert courses["JUPYTERHUB_API_URL"] == "http://172.18.0.1:8081/hub/api"
    assert courses["JUPYTERHUB_CLIENT_ID"] == "service-courses"
    assert courses["JUPYTERHUB_OAUTH_CALLBACK_URL"] == "/services/courses/oauth_callback"
    assert json.loads(courses["JUPYTERHUB_OAUTH_ACCESS_SCOPES"]) == ["access:services!service=courses"]
    assert courses["JUPYTERHUB_API_TOKEN"] == Secrets(cfg.hub.data_dir).service_token("courses")
    # Each service has its own token; the culler has no OAuth client.
    tokens = {n: plan[n].env["JUPYTERHUB_API_TOKEN"] for n in ("idle-culler", "courses", "sharing")}
    assert len(set(tokens.values())) == 3
    assert "JUPYTERHUB_CLIENT_ID" not in plan["idle-culler"].env


def test_service_commands(plan, cfg):
    cmd = plan["courses"].argv
    assert cmd[:3] == [PY, "-m", "slicerhub.courses.service"]
    assert "--course=anat101" in cmd and "--teacher-group=teachers" in cmd
    assert "--mount-subpath=courses" in cmd
    cmd = plan["sharing"].argv
    assert cmd[:3] == [PY, "-m", "slicerhub.sharing.service"]
    assert "--course=anat101" in cmd and "--sweep-every=5.0" in cmd
    assert f"--db={Path(cfg.hub.data_dir) / 'sharing.sqlite'}" in cmd


def test_culler_command_parses_with_the_real_culler(plan):
    cmd = plan["idle-culler"].argv
    assert cmd[:3] == [PY, "-m", "jupyterhub_idle_culler"]
    culler = IdleCuller()
    culler.parse_command_line(cmd[3:])
    assert (culler.timeout, culler.cull_every, culler.max_age, culler.concurrency) == (3600, 300, 0, 10)


def test_a_hub_listening_everywhere_is_reached_on_loopback(cfg, tmp_path):
    plan = programs(cfg, config_path=tmp_path / "f", python=PY, hub_ip="0.0.0.0", proxy="chp")
    assert plan["sharing"].env["JUPYTERHUB_API_URL"] == "http://127.0.0.1:8081/hub/api"


def test_disabled_parts_run_no_process(tmp_path):
    cfg = demo_config(culler={"enabled": False}, sharing={"enabled": False}, courses={"groups": []})
    assert list(programs(cfg, config_path=tmp_path / "f", python=PY, hub_ip="1.2.3.4", proxy="chp")) == [
        "proxy", "hub"]


def test_without_secrets_no_token_appears(cfg, tmp_path):
    plan = programs(cfg, config_path=tmp_path / "f", python=PY, hub_ip="1.2.3.4", proxy="chp")
    assert all("TOKEN" not in k for p in plan.values() for k in p.env)
    assert not (Path(cfg.hub.data_dir) / "secrets").exists()


# --------------------------------------------------------------- secrets


def test_secrets_are_made_once_private_and_stable(tmp_path):
    s = Secrets(tmp_path / "data")
    a = s.proxy_token()
    assert len(a) == 64 and int(a, 16) >= 0
    assert Secrets(tmp_path / "data").proxy_token() == a  # another process, same value
    assert s.service_token("courses") != a
    d = tmp_path / "data" / "secrets"
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    assert {stat.S_IMODE(f.stat().st_mode) for f in d.iterdir()} == {0o600}
    assert sorted(f.name for f in d.iterdir()) == ["proxy-auth-token", "service-courses-token"]


# ------------------------------------------------------- supervisor files


def test_systemd_units(plan, tmp_path):
    units = systemd_units(plan.values(), slicerhub="/opt/slicerhub/bin/slicerhub", config=tmp_path / "site.yaml",
                          working_directory="/srv/slicerhub")
    assert sorted(units) == ["slicerhub-courses.service", "slicerhub-hub.service", "slicerhub-idle-culler.service",
                             "slicerhub-proxy.service", "slicerhub-sharing.service", "slicerhub.target"]
    hub = units["slicerhub-hub.service"]
    assert f"ExecStart=/opt/slicerhub/bin/slicerhub run hub --config {tmp_path / 'site.yaml'}" in hub
    assert "Restart=always" in hub and "After=network-online.target docker.service slicerhub-proxy.service" in hub
    assert "After=network-online.target slicerhub-hub.service" in units["slicerhub-sharing.service"]
    # No secret is ever written into a unit.
    tokens = [p.env[k] for p in plan.values() for k in p.env if "TOKEN" in k]
    assert tokens and not any(t in text for t in tokens for text in units.values())


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_systemd_accepts_the_units(plan, tmp_path):
    # Real systemd parses them (no running systemd needed for `verify`).
    slicerhub = tmp_path / "bin" / "slicerhub"
    slicerhub.parent.mkdir()
    slicerhub.write_text("#!/bin/sh\n")
    slicerhub.chmod(0o755)
    out = tmp_path / "units"
    out.mkdir()
    units = systemd_units(plan.values(), slicerhub=str(slicerhub), config=tmp_path / "site.yaml",
                          working_directory=tmp_path)
    for name, text in units.items():
        (out / name).write_text(text)
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", *sorted(str(p) for p in out.iterdir())],
                       capture_output=True, text=True, env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"})
    problems = [line for line in (r.stdout + r.stderr).splitlines()
                if "slicerhub" in line and "docker.service" not in line]
    assert r.returncode == 0 or not problems, r.stdout + r.stderr
    assert not problems, "\n".join(problems)


def test_supervisord_file_is_what_supervisord_reads(tmp_path):
    from supervisor.datatypes import RestartUnconditionally
    from supervisor.options import ServerOptions

    conf = tmp_path / "supervisord.conf"
    conf.write_text(supervisord_conf(["proxy", "hub", "sharing"], slicerhub="/venv/bin/slicerhub",
                                     config=tmp_path / "site.yaml", workdir=tmp_path,
                                     hub_args=["--JupyterHub.log_level=DEBUG"], log_names={"hub": "jupyterhub.log"}))
    options = ServerOptions()
    options.realize(["-c", str(conf)])
    (group_proxy, group_hub, group_sharing) = sorted(options.process_group_configs, key=lambda g: g.priority)
    hub = group_hub.process_configs[0]
    assert hub.command == (f"/venv/bin/slicerhub run hub --config {tmp_path / 'site.yaml'} "
                           "-- --JupyterHub.log_level=DEBUG")
    assert hub.autorestart is RestartUnconditionally and hub.stopasgroup and hub.killasgroup
    assert hub.stdout_logfile == str(tmp_path / "jupyterhub.log")
    assert group_sharing.process_configs[0].command.endswith("run sharing --config " + str(tmp_path / "site.yaml"))


def test_cli_prints_units_without_touching_the_data_dir(tmp_path, capsys):
    site = tmp_path / "site.yaml"
    data = demo_data()
    data["hub"]["data_dir"] = str(tmp_path / "hub")
    import yaml

    site.write_text(yaml.safe_dump(data))
    assert cli(["systemd", "--config", str(site)]) == 0
    out = capsys.readouterr().out
    assert "# --- slicerhub-hub.service" in out and f"run hub --config {site}" in out
    assert not (tmp_path / "hub").exists()


def test_run_refuses_jupyterhub_options_for_other_programs(tmp_path):
    site = tmp_path / "site.yaml"
    data = demo_data()
    data["hub"]["data_dir"] = str(tmp_path / "hub")
    data["backend"]["docker"]["hub_connect_ip"] = "127.0.0.1"
    import yaml

    site.write_text(yaml.safe_dump(data))
    with pytest.raises(SystemExit) as e:
        cli(["run", "proxy", "--config", str(site), "--", "--JupyterHub.log_level=DEBUG"])
    assert "only for the hub" in str(e.value)


def test_run_refuses_a_program_the_deployment_does_not_have(tmp_path):
    site = tmp_path / "site.yaml"
    data = demo_data()
    data["hub"]["data_dir"] = str(tmp_path / "hub")
    data["sharing"] = {"enabled": False}
    data["backend"]["docker"]["hub_connect_ip"] = "127.0.0.1"
    import yaml

    site.write_text(yaml.safe_dump(data))
    with pytest.raises(SystemExit) as e:
        cli(["run", "sharing", "--config", str(site)])
    assert "no program 'sharing'" in str(e.value) and "proxy, hub, idle-culler, courses" in str(e.value)


def test_public_tls_goes_to_the_proxy_with_absolute_paths(tmp_path, monkeypatch):
    from slicerhub.config import parse_config

    monkeypatch.chdir(tmp_path)
    data = demo_data()
    data["hub"].update(bind_url="https://0.0.0.0:443", tls={"cert_file": "tls/hub.pem", "key_file": "tls/hub.key"},
                       data_dir=str(tmp_path / "hub"))
    plan = programs(parse_config(data), config_path=tmp_path / "site.yaml", python=PY, hub_ip="172.18.0.1",
                    proxy="/usr/bin/configurable-http-proxy")
    argv = plan["proxy"].argv
    assert argv[argv.index("--port") + 1] == "443"
    assert argv[-4:] == ["--ssl-cert", str(tmp_path / "tls/hub.pem"), "--ssl-key", str(tmp_path / "tls/hub.key")]
