"""Deployment file -> Helm chart values, and the hub/service adjustments in a cluster (pure)."""

from __future__ import annotations

import json

import pytest

from slicerhub.config import ConfigError, parse_config
from slicerhub.helm_values import (
    CONFIG_FILE,
    CONFIG_MAP,
    TOKENS_SECRET,
    helm_values,
    split_image,
    values_schema,
)
from slicerhub.incluster import hub_traitlets, service_program
from slicerhub.runtime.secrets import Secrets, service_token_name
from slicerhub.traitlets_config import service_names
from tests.support.helm import CHART, demo_kube_data, full_data

GiB = 1024**3


def mounts_by_path(values):
    hub = values["jupyterhub"]["hub"]
    volumes = {v["name"]: v for v in hub["extraVolumes"]}
    return {m["mountPath"]: (m, volumes[m["name"]]) for m in hub["extraVolumeMounts"]}


def test_committed_schema_is_the_generated_one():
    committed = json.loads((CHART / "values.schema.json").read_text())
    assert committed == values_schema(), (
        "helm/slicerhub/values.schema.json is stale: run "
        "`slicerhub config helm-schema > helm/slicerhub/values.schema.json`")


def test_the_file_itself_is_carried_verbatim():
    data = full_data()
    values = helm_values(data)
    assert values["slicerhub"]["config"] == data
    assert values["slicerhub"]["config"] is not data


def test_images_default_profile_then_the_others_once():
    values = helm_values(full_data())
    jh = values["jupyterhub"]
    assert jh["singleuser"]["image"] == {"name": "registry.example.org/slicerhub/slicer-core", "tag": "0.1.0"}
    # teacher shares the default image: pulled once; gpu has its own.
    assert jh["prePuller"]["extraImages"] == {
        "profile-gpu": {"name": "registry.example.org/slicerhub/slicer", "tag": "0.1.0"}}


def test_gpu_profiles_make_the_pullers_tolerate_gpu_nodes():
    data = full_data()
    tol = helm_values(data)["jupyterhub"]["prePuller"]["extraTolerations"]
    assert tol == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    data["profiles"] = [p for p in data["profiles"] if not p.get("gpus")]
    assert helm_values(data)["jupyterhub"]["prePuller"]["extraTolerations"] == []
    data = full_data()
    data["backend"]["kubernetes"]["gpu_toleration"] = False
    assert helm_values(data)["jupyterhub"]["prePuller"]["extraTolerations"] == []


@pytest.mark.parametrize("image, expected", [
    ("slicerhub/slicer-core:dev", ("slicerhub/slicer-core", "dev")),
    ("registry:5000/a/b:1.2", ("registry:5000/a/b", "1.2")),
    ("registry:5000/a/b", ("registry:5000/a/b", "latest")),
    ("ubuntu", ("ubuntu", "latest")),
])
def test_split_image(image, expected):
    assert split_image(image) == expected


def test_placeholder_is_one_default_user_in_kubespawner_bytes():
    res = helm_values(full_data())["jupyterhub"]["scheduling"]["userPlaceholder"]["resources"]
    assert res["requests"] == {"cpu": 1.0, "memory": 2 * GiB}
    assert res["limits"] == res["requests"]


def test_postgres_when_configured_else_sqlite_on_the_hub_volume():
    full = helm_values(full_data())["jupyterhub"]["hub"]["db"]
    assert full == {"type": "postgres",
                    "url": "postgresql+psycopg://slicerhub@postgres.databases.svc:5432/slicerhub"}
    assert helm_values(demo_kube_data())["jupyterhub"]["hub"]["db"] == {"type": "sqlite-pvc"}


def test_password_files_come_from_existing_secrets():
    mounts = mounts_by_path(helm_values(full_data(), ldap_secret="corp-ldap", database_secret="pg"))
    cfg = parse_config(full_data())
    for path, secret, key in ((cfg.ldap.lookup.bind_password_file, "corp-ldap", "password"),
                              (cfg.ldap.ca_file, "corp-ldap", "ca.crt"),
                              (cfg.hub.database.password_file, "pg", "password")):
        mount, volume = mounts[path]
        assert mount["subPath"] == key and mount["readOnly"] is True
        assert volume["secret"] == {"secretName": secret, "items": [{"key": key, "path": key}]}
    # The demo's directory takes anonymous binds: no secret at all.
    demo = mounts_by_path(helm_values(demo_kube_data()))
    assert not any("secret" in v and v["secret"]["secretName"].startswith("slicerhub-ldap")
                   for _, v in demo.values())


def test_hub_mounts_config_and_tokens():
    values = helm_values(demo_kube_data())
    mounts = mounts_by_path(values)
    assert mounts["/usr/local/etc/slicerhub"][1]["configMap"] == {"name": CONFIG_MAP}
    assert CONFIG_FILE.startswith("/usr/local/etc/slicerhub/")
    assert mounts["/srv/jupyterhub/secrets"][1]["secret"] == {"secretName": TOKENS_SECRET}


def test_services_are_the_deployments_own():
    for data in (demo_kube_data(), full_data()):
        cfg = parse_config(data)
        services = helm_values(data)["slicerhub"]["generated"]["services"]
        assert list(services) == service_names(cfg)
        for name, svc in services.items():
            assert svc["tokenKey"] == service_token_name(name)
            assert svc["name"] == f"slicerhub-{name}"
        assert services["courses"]["port"] == cfg.hub.courses_port
        assert services["sharing"]["port"] == cfg.hub.sharing_port
        assert "port" not in services["idle-culler"]
    data = demo_kube_data()
    data["sharing"] = {"enabled": False}
    data["culler"] = {"enabled": False}
    assert list(helm_values(data)["slicerhub"]["generated"]["services"]) == ["courses"]


@pytest.mark.parametrize("change, field", [
    (lambda d: d["backend"].update(type="docker"), "backend.type"),
    (lambda d: d["hub"].update(data_dir="var/hub"), "hub.data_dir"),
    (lambda d: d["courses"].pop("claim"), "courses.claim"),
    (lambda d: d["courses"].update(root="var/courses"), "courses.root"),
    (lambda d: d["ldap"].update(ca_file="ca.pem"), "ldap.ca_file"),
    (lambda d: d["profiles"][0].update(image="x/y@sha256:" + "0" * 64), "profiles[0].image"),
    (lambda d: d["culler"].update(timeout=5), "culler.timeout"),
])
def test_bad_input_names_the_field(change, field):
    data = demo_kube_data()
    change(data)
    with pytest.raises(ConfigError) as e:
        helm_values(data)
    assert any(m.startswith(field + ":") for m in e.value.messages), e.value.messages


# ------------------------------------------------------ the hub in the cluster


def test_hub_traitlets_keep_z2jh_proxy_and_binding():
    cfg = parse_config(full_data())
    tokens = {n: f"tok-{n}" for n in service_names(cfg)}
    traits = hub_traitlets(cfg, tokens, "slicerhub")
    assert "ConfigurableHTTPProxy" not in traits
    for name in ("bind_url", "hub_ip", "hub_port"):
        assert name not in traits["JupyterHub"]
    services = {s["name"]: s for s in traits["JupyterHub"]["services"]}
    assert services["courses"]["url"] == f"http://slicerhub-courses:{cfg.hub.courses_port}"
    assert services["sharing"]["url"] == f"http://slicerhub-sharing:{cfg.hub.sharing_port}"
    # User servers publish from JupyterLab through the courses service's Service too.
    assert traits["SlicerSpawner"]["courses_url"] == f"http://slicerhub-courses:{cfg.hub.courses_port}/services/courses"
    assert "url" not in services["idle-culler"]
    assert {n: s["api_token"] for n, s in services.items()} == tokens
    assert traits["SlicerKubeSpawner"]["k8s_api_threadpool_workers"] == cfg.hub.concurrent_spawn_limit
    assert traits["JupyterHub"]["spawner_class"] == "slicerhub.spawners.kube.SlicerKubeSpawner"


def test_hub_refuses_another_namespace():
    cfg = parse_config(full_data())
    with pytest.raises(SystemExit, match="backend.kubernetes.namespace is 'slicerhub'.*'other'"):
        hub_traitlets(cfg, {n: "t" for n in service_names(cfg)}, "other")


def test_service_pods_talk_to_the_hub_and_proxy_services(tmp_path):
    data = full_data()
    data["hub"]["data_dir"] = str(tmp_path)  # where Secrets finds the mounted token
    cfg = parse_config(data)
    secrets = Secrets(tmp_path)
    courses = service_program(cfg, "courses", secrets)
    assert courses.env["JUPYTERHUB_API_URL"] == "http://hub:8081/hub/api"
    assert courses.env["JUPYTERHUB_SERVICE_URL"] == f"http://0.0.0.0:{cfg.hub.courses_port}"
    assert courses.env["JUPYTERHUB_API_TOKEN"] == secrets.service_token("courses")
    assert "--proxy-url=http://proxy-public" in courses.argv
    assert courses.argv[1:3] == ["-m", "slicerhub.courses.service"]
    culler = service_program(cfg, "idle-culler", secrets)
    assert culler.argv[1:3] == ["-m", "jupyterhub_idle_culler"]
    assert "--concurrency=1" in culler.argv
    assert "JUPYTERHUB_SERVICE_URL" not in culler.env
    with pytest.raises(SystemExit, match="no service 'proxy'"):
        service_program(cfg, "proxy", secrets)


def test_cli_prints_the_values_and_names_bad_fields(capsys, tmp_path):
    import yaml

    from slicerhub.cli import main
    from tests.support.helm import REPO

    assert main(["config", "helm-values", str(REPO / "hub_config" / "kubernetes.yaml")]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == helm_values(full_data())
    data = full_data()
    data["backend"]["type"] = "docker"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    assert main(["config", "helm-values", str(bad)]) == 1
    assert "backend.type: must be kubernetes" in capsys.readouterr().err
