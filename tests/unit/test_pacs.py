"""The PACS section of the deployment file, what it becomes in JupyterHub, and
the gateway's rules for UIDs and DICOMweb paths (the gateway against a real
hub and Orthanc: tests/integration/test_pacs_gateway.py)."""

from __future__ import annotations

import pytest
from jupyterhub.scopes import _check_scopes_exist

from slicerhub.config import ConfigError
from slicerhub.pacs.service import DICOMWEB_PATHS, valid_uid
from slicerhub.runtime.programs import programs
from slicerhub.traitlets_config import to_traitlets

from .helpers import demo_config, demo_data

STUDY = "1.2.826.0.1.3680043.8.498.10"
SERIES = "1.2.826.0.1.3680043.8.498.11"
SOP = "1.2.826.0.1.3680043.8.498.12"


def pacs_config(**pacs):
    return demo_config(pacs={"dicomweb_url": "http://127.0.0.1:8042/dicom-web", "groups": ["teachers"], **pacs})


def test_no_pacs_by_default_and_nothing_about_it_in_the_hub():
    cfg = demo_config()
    traits = to_traitlets(cfg, hub_connect_ip="172.18.0.1")
    assert "pacs" not in [s["name"] for s in traits["JupyterHub"]["services"]]
    assert all(r["name"] != "server" for r in traits["JupyterHub"]["load_roles"])
    assert traits["SlicerSpawner"]["pacs_url"] == ""


def test_pacs_becomes_a_service_servers_reach_on_the_hub_address():
    traits = to_traitlets(pacs_config(), hub_connect_ip="172.18.0.1", tokens={
        "proxy": "p", "idle-culler": "c", "courses": "k", "sharing": "s", "pacs": "secret"})
    service = next(s for s in traits["JupyterHub"]["services"] if s["name"] == "pacs")
    assert service["url"] == "http://172.18.0.1:8004" and service["api_token"] == "secret"
    assert traits["SlicerSpawner"]["pacs_url"] == "http://172.18.0.1:8004/services/pacs"
    roles = {r["name"]: r for r in traits["JupyterHub"]["load_roles"]}
    # The gateway reads groups, nothing else; a server's token may call it (as its owner).
    assert roles["pacs-service"]["scopes"] == ["read:users:name", "read:users:groups"]
    assert set(roles["server"]["scopes"]) == {"users:activity!user", "access:servers!server",
                                              "access:services!service=pacs"}
    assert "access:services!service=pacs" in roles["user"]["scopes"]
    for name in ("pacs-service", "server"):
        _check_scopes_exist(roles[name]["scopes"])  # JupyterHub knows them


def test_pacs_program_gets_credentials_from_a_file_never_on_its_command_line(tmp_path):
    secret = tmp_path / "pacs-pw"
    secret.write_text("hunter2\n")
    cfg = pacs_config(username="slicerhub", password_file=str(secret))
    prog = programs(cfg, config_path="demo.yaml", python="python", hub_ip="172.18.0.1", proxy="chp")["pacs"]
    assert f"--password-file={secret}" in prog.argv and "hunter2" not in " ".join(prog.argv)
    assert "--group=teachers" in prog.argv
    assert prog.env["JUPYTERHUB_SERVICE_URL"] == "http://172.18.0.1:8004"
    assert prog.env["JUPYTERHUB_SERVICE_PREFIX"] == "/services/pacs/"


@pytest.mark.parametrize("pacs, message", [
    ({"dicomweb_url": "http://pacs/dicom-web"}, "groups"),
    ({"dicomweb_url": "http://pacs/dicom-web", "groups": ["nosuchgroup"]}, "not a group synced from LDAP"),
    ({"dicomweb_url": "http://pacs/dicom-web", "groups": ["teachers"], "username": "u"}, "go together"),
    ({"dicomweb_url": "ftp://pacs", "groups": ["teachers"]}, "dicomweb_url"),
])
def test_pacs_mistakes_are_named(pacs, message):
    with pytest.raises(ConfigError) as e:
        demo_config(pacs=pacs)
    assert message in " ".join(e.value.messages)


def test_pacs_is_refused_on_kubernetes_until_the_chart_runs_the_gateway():
    data = demo_data()
    data["backend"] = {"type": "kubernetes"}
    data["pacs"] = {"dicomweb_url": "http://pacs/dicom-web", "groups": ["teachers"]}
    from slicerhub.config import parse_config

    with pytest.raises(ConfigError) as e:
        parse_config(data)
    assert "docker backend only" in " ".join(e.value.messages)


@pytest.mark.parametrize("uid, ok", [
    (STUDY, True), ("1.2", True), ("0.0", True),
    ("1", False), ("", False), (None, False), ("1.02", False), ("1..2", False), ("1.2.", False),
    ("1.2 ", False), ("1.2\n", False), ("1." + "2" * 63, False), ("1.2/../3", False), ("١.٢", False),
])
def test_uids_are_dicom_uids(uid, ok):
    assert valid_uid(uid) is ok


@pytest.mark.parametrize("path", [
    "studies", f"studies/{STUDY}", f"studies/{STUDY}/metadata", f"studies/{STUDY}/series",
    f"studies/{STUDY}/series/{SERIES}", f"studies/{STUDY}/series/{SERIES}/metadata",
    f"studies/{STUDY}/series/{SERIES}/instances", f"studies/{STUDY}/series/{SERIES}/instances/{SOP}",
    f"studies/{STUDY}/series/{SERIES}/instances/{SOP}/metadata",
    f"studies/{STUDY}/series/{SERIES}/instances/{SOP}/frames/1,2,3", "series", "instances",
])
def test_gateway_passes_dicomweb_reads(path):
    assert DICOMWEB_PATHS.fullmatch(path)


@pytest.mark.parametrize("path", [
    "", "studies/", f"studies/{STUDY}/../../system", "../system", "tools/find", "instances/x",
    f"studies/{STUDY}/series/{SERIES}/rendered", f"studies/{STUDY}/series/{SERIES}/instances/{SOP}/frames/0",
    f"studies/{STUDY}/bulkdata", "studies?x", f"studies/{STUDY}%2F..",
])
def test_gateway_refuses_everything_else(path):
    assert not DICOMWEB_PATHS.fullmatch(path)


def _gateway_settings(streams_per_user: int):
    from slicerhub.pacs.service import Settings

    return Settings(None, dicomweb_url="http://pacs.example.org/dicom-web", username=None, password=None,
                    groups=["teachers"], timeout=5, audit_log=None, streams_per_user=streams_per_user)


def test_one_persons_streams_are_capped_and_given_back():
    from tornado import web

    s = _gateway_settings(2)
    with s.stream_slot("ana"), s.stream_slot("ana"):
        with pytest.raises(web.HTTPError) as e:
            with s.stream_slot("ana"):
                pass
        assert e.value.status_code == 429 and e.value.retry_after > 0
        assert "2 requests to the PACS are already open for ana" in e.value.log_message
        with s.stream_slot("ben"):  # others are not held up
            pass
    # Given back, also when the request fails inside.
    with pytest.raises(RuntimeError):
        with s.stream_slot("ana"):
            raise RuntimeError("PACS went away")
    with s.stream_slot("ana"), s.stream_slot("ana"):
        pass
    assert s._streams == {}


def test_the_stream_cap_reaches_the_gateway_from_the_file():
    default = programs(pacs_config(), config_path="demo.yaml", python="python", hub_ip="172.18.0.1",
                       proxy="chp")["pacs"]
    assert "--streams-per-user=4" in default.argv
    prog = programs(pacs_config(streams_per_user=3), config_path="demo.yaml", python="python",
                    hub_ip="172.18.0.1", proxy="chp")["pacs"]
    assert "--streams-per-user=3" in prog.argv
