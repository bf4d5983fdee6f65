"""z2jh's own hub configuration (files/hub/jupyterhub_config.py of the released
chart) loading SlicerHub, with the files the rendered chart mounts in the hub
pod placed where it reads them, in a private mount namespace (nothing on this
machine's /usr/local/etc or /srv changes; z2jh's files run unmodified).

No cluster: the spawner builds the pod and PVC it would create, and those are
checked against the Kubernetes schemas.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from slicerhub.helm_values import helm_values
from tests.support.helm import NAMESPACE, find, full_data, objects, render, unpack_z2jh, validate_all
from tests.support.hub_pod import LDAP_PASSWORD, pod_plan

DRIVER = Path(__file__).resolve().parents[1] / "support" / "z2jh_hub_driver.py"
# (user, groups, profile): a student, a teacher, a teacher on the GPU profile.
PEOPLE = [("stu", ["students", "anat101"], "standard"), ("tea", ["teachers", "anat101"], "teacher"),
          ("gpu-tea", ["teachers", "anat101"], "gpu")]


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    if not shutil.which("unshare"):
        pytest.fail("unshare (util-linux) is needed to give the hub its own /usr/local/etc")
    unpack_z2jh()
    data = full_data()
    # No PostgreSQL server in this test (tests/e2e has the hub on a real one):
    # SQLite on the hub volume, everything else as the full deployment.
    del data["hub"]["database"]
    objs = objects(render(helm_values(data)))
    plan = {**pod_plan(objs), "people": PEOPLE}
    tmp = tmp_path_factory.mktemp("z2jh")
    (tmp / "plan.json").write_text(json.dumps(plan))
    out = tmp / "out.json"
    # A private mount namespace: tmpfs over /usr/local/etc and /srv, for this process only.
    script = ("mount -t tmpfs tmpfs /usr/local/etc && mkdir -p /srv && mount -t tmpfs tmpfs /srv "
              '&& exec "$0" "$@"')
    proc = subprocess.run(["unshare", "--mount", "--map-root-user", "--propagation", "private",
                           "sh", "-c", script, sys.executable, str(DRIVER), str(tmp / "plan.json"), str(out)],
                          capture_output=True, text=True, timeout=300, cwd=tmp)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return {"plan": plan, "result": json.loads(out.read_text()), "log": proc.stdout, "objs": objs,
            "cfg": data}


def test_z2jh_loads_slicerhub(hub):
    jh = hub["result"]["JupyterHub"]
    log = hub["log"]
    assert "Loading extra config: slicerhub" in log
    assert jh["authenticator_class"] == "slicerhub.auth.SlicerLDAPAuthenticator"
    assert jh["spawner_class"] == "slicerhub.spawners.kube.SlicerKubeSpawner"
    # z2jh's own cluster wiring stays: its proxy Service, hub binding, no cleanup.
    assert hub["result"]["proxy_api_url"] == "http://proxy-api:8001"
    assert jh["hub_connect_url"] == "http://hub:8081"
    assert jh["cleanup_servers"] is False
    # The deployment file's settings and the scale settings of values.yaml.
    assert jh["concurrent_spawn_limit"] == 50
    assert jh["db_url"] == "sqlite:////srv/jupyterhub/jupyterhub.sqlite"
    assert (jh["last_activity_interval"], jh["init_spawners_timeout"], jh["activity_resolution"]) == (300, 1, 600)
    services = {s["name"]: s for s in jh["services"]}
    assert set(services) == {"idle-culler", "courses", "sharing"}
    assert services["courses"]["url"] == "http://slicerhub-courses:8002"
    tokens = hub["plan"]["files"]
    for name, s in services.items():
        assert s["api_token"] == tokens[f"/srv/jupyterhub/secrets/service-{name}-token"]
        assert len(s["api_token"]) == 64
    assert "jupyterhub-idle-culler" not in services  # z2jh's culler is off; SlicerHub's runs


def test_authenticator_has_the_deployment_settings(hub):
    auth = hub["result"]["authenticator"]
    assert auth["server_address"] == "ldap.example.org"
    assert auth["lookup_dn"] is True
    assert auth["user_search_base"] == "ou=people,dc=example,dc=org"
    assert auth["lookup_dn_search_user"] == "cn=slicerhub,ou=services,dc=example,dc=org"
    # Read from the mounted Secret, never from the values.
    assert auth["lookup_dn_search_password"] == LDAP_PASSWORD
    assert LDAP_PASSWORD not in json.dumps(hub["objs"])
    assert auth["tls_kwargs"] == {"ca_certs_file": "/usr/local/etc/slicerhub-secrets/ldap-ca.crt"}
    assert auth["admin_groups"] == ["cn=slicerhub-admins,ou=groups,dc=example,dc=org"]


def test_spawner_builds_valid_pods_and_claims(hub):
    servers = hub["result"]["servers"]
    objs = []
    for name, server in servers.items():
        pod, pvc = server["pod"], server["pvc"]
        for obj, kind in ((pod, "Pod"), (pvc, "PersistentVolumeClaim")):
            obj.setdefault("apiVersion", "v1")
            obj.setdefault("kind", kind)
        objs += [pod, pvc]
        t = server["traits"]
        assert t["namespace"] == NAMESPACE
        assert t["storage_class"] == "standard-rwo" and t["storage_capacity"] == "10Gi"
        assert t["k8s_api_threadpool_workers"] == 50
        assert pvc["spec"]["resources"]["requests"]["storage"] == "10Gi"
        assert pvc["metadata"]["name"] == f"slicerhub-home-{name}"
        # z2jh's scheduling for user pods applies to ours too.
        names = find(hub["objs"], "ConfigMap", "hub")["data"]
        assert pod["spec"]["schedulerName"] == names["user-scheduler"]
        assert pod["spec"]["priorityClassName"] == names["priority"]
        mounts = {m["mountPath"]: m for m in pod["spec"]["containers"][0]["volumeMounts"]}
        assert mounts["/home/slicer"]["name"] == "home"
        shared = mounts["/home/slicer/courses/anat101/shared"]
        assert shared["subPath"] == "anat101/shared"
        assert shared.get("readOnly", False) is (name == "stu")
    validate_all(objs)
    gpu = servers["gpu-tea"]["pod"]
    limits = gpu["spec"]["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == "1"
    assert gpu["spec"]["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in gpu["spec"]["tolerations"]
    assert servers["gpu-tea"]["traits"]["image"] == "registry.example.org/slicerhub/slicer:0.1.0"
    student = servers["stu"]["pod"]
    assert "nvidia.com/gpu" not in student["spec"]["containers"][0]["resources"].get("limits", {})
    assert not student["spec"].get("nodeSelector")
    # No service account token in user pods (the Kubernetes API stays out of reach).
    assert student["spec"]["automountServiceAccountToken"] is False
