"""Deployment file → JupyterHub traitlets (a pure function), and what JupyterHub makes of it."""

from __future__ import annotations

from pathlib import Path

import json

import pytest
from jupyterhub.app import JupyterHub
from jupyterhub.roles import _validate_role_name
from jupyterhub.scopes import _check_scopes_exist
from traitlets.config import Config
from traitlets.utils.importstring import import_item

from slicerhub.auth import SlicerLDAPAuthenticator
from slicerhub.config import load_config, parse_config
from slicerhub.traitlets_config import apply, to_traitlets

from .helpers import ADMINS_DN, ANAT_DN, DEMO, STUDENTS_DN, TEACHERS_DN, demo_config, demo_data, traitlets_config

@pytest.fixture(scope="module")
def demo():
    return load_config(DEMO)


@pytest.fixture(scope="module")
def traits(demo):
    return to_traitlets(demo, hub_connect_ip="172.18.0.1")


def kube_config(**kubernetes):
    data = demo_data()
    data["backend"] = {"type": "kubernetes", "kubernetes": kubernetes}
    return parse_config(data)


def lookup_config(password_file="/run/secrets/ldap-pw", **ldap):
    data = demo_data()
    del data["ldap"]["bind_dn_template"]
    data["ldap"]["lookup"] = {
        "search_base": "ou=people,dc=slicerhub,dc=test",
        "user_attribute": "sAMAccountName",
        "bind_dn": "cn=hub,ou=services,dc=slicerhub,dc=test",
        "bind_password_file": password_file,
    }
    data["ldap"].update(ldap)
    return parse_config(data)


# ---------------------------------------------------------------- shape


def test_is_pure_and_json_serializable(demo):
    a = to_traitlets(demo, hub_connect_ip="10.0.0.1")
    b = to_traitlets(demo, hub_connect_ip="10.0.0.1")
    assert a == b
    assert json.loads(json.dumps(a)) == a
    assert set(a) == {
        "JupyterHub", "Authenticator", "ConfigurableHTTPProxy", "SlicerLDAPAuthenticator",
        "Spawner", "SlicerSpawner", "SlicerDockerSpawner",
    }


def test_class_strings_are_importable(traits):
    hub = traits["JupyterHub"]
    auth = import_item(hub["authenticator_class"])
    spawner = import_item(hub["spawner_class"])
    assert auth is SlicerLDAPAuthenticator
    assert spawner.__name__ == "SlicerDockerSpawner"
    # Each section name is the class (or a base) the traits are set on.
    from jupyterhub.spawner import Spawner

    from slicerhub.spawners.base import SlicerSpawner

    assert issubclass(spawner, SlicerSpawner) and issubclass(SlicerSpawner, Spawner)
    kube = import_item(to_traitlets(kube_config())["JupyterHub"]["spawner_class"])
    assert kube.__name__ == "SlicerKubeSpawner" and issubclass(kube, SlicerSpawner)


def test_hub_settings(traits):
    hub = traits["JupyterHub"]
    assert hub["bind_url"] == "http://127.0.0.1:8000"
    assert hub["db_url"] == "sqlite:///var/hub/jupyterhub.sqlite"
    assert hub["cookie_secret_file"] == "var/hub/jupyterhub_cookie_secret"
    assert hub["concurrent_spawn_limit"] == 10  # a class of 200 queues (429) instead of freezing the hub
    assert hub["log_level"] == "INFO"
    assert hub["hub_port"] == 8081
    # The proxy is a process of its own (slicerhub run proxy): the hub neither
    # starts it nor stops it, and leaves every user's server running when it stops.
    assert traits["ConfigurableHTTPProxy"] == {"api_url": "http://127.0.0.1:8001", "should_start": False}
    assert (hub["cleanup_servers"], hub["cleanup_proxy"]) == (False, False)
    assert traits["Authenticator"] == {"manage_groups": True}
    assert traits["Spawner"]["default_url"] == "/lab"


# ----------------------------------------------------------------- LDAP


def test_hub_ports_from_file():
    data = demo_data()
    data["hub"].update(api_port=18081, proxy_api_port=18001, data_dir="/srv/slicerhub", log_level="DEBUG")
    traits = to_traitlets(parse_config(data))
    assert traits["JupyterHub"]["hub_port"] == 18081
    assert traits["ConfigurableHTTPProxy"]["api_url"] == "http://127.0.0.1:18001"
    assert traits["JupyterHub"]["db_url"] == "sqlite:////srv/slicerhub/jupyterhub.sqlite"
    assert traits["JupyterHub"]["cookie_secret_file"] == "/srv/slicerhub/jupyterhub_cookie_secret"
    assert traits["JupyterHub"]["log_level"] == "DEBUG"


def test_ldap_settings(traits):
    ldap = traits["SlicerLDAPAuthenticator"]
    assert ldap["server_address"] == "127.0.0.1"
    assert ldap["server_port"] == 3389
    assert ldap["tls_strategy"] == "insecure"
    assert (ldap["connect_timeout"], ldap["receive_timeout"], ldap["login_timeout"]) == (5.0, 10.0, 20.0)
    assert ldap["admin_groups"] == [ADMINS_DN]
    assert ldap["login_groups"] == [ADMINS_DN, TEACHERS_DN, STUDENTS_DN]
    assert ldap["synced_groups"] == [ADMINS_DN, TEACHERS_DN, STUDENTS_DN, ANAT_DN]
    assert ldap["bind_dn_template"] == ["uid={username},ou=people,dc=slicerhub,dc=test"]
    assert "lookup_dn" not in ldap
    assert "tls_kwargs" not in ldap and "group_search_filter" not in ldap


def test_ldap_optional_settings():
    data = demo_data()
    del data["ldap"]["port"]
    data["ldap"].update(
        tls="on_connect",
        ca_file="/etc/ssl/campus-ca.pem",
        group_search_filter="(member={userdn})",
        timeouts={"connect": 2, "receive": 3, "login": 7},
    )
    ldap = to_traitlets(parse_config(data))["SlicerLDAPAuthenticator"]
    assert "server_port" not in ldap  # upstream picks 636 for on_connect
    assert ldap["tls_strategy"] == "on_connect"
    assert ldap["tls_kwargs"] == {"ca_certs_file": "/etc/ssl/campus-ca.pem"}
    assert ldap["group_search_filter"] == "(member={userdn})"
    assert (ldap["connect_timeout"], ldap["receive_timeout"], ldap["login_timeout"]) == (2, 3, 7)


def test_lookup_mode_mapping():
    ldap = to_traitlets(lookup_config())["SlicerLDAPAuthenticator"]
    assert "bind_dn_template" not in ldap
    assert ldap["lookup_dn"] is True
    assert ldap["user_search_base"] == "ou=people,dc=slicerhub,dc=test"
    assert ldap["user_attribute"] == "sAMAccountName"
    assert ldap["lookup_dn_user_dn_attribute"] == "sAMAccountName"
    assert ldap["lookup_dn_search_user"] == "cn=hub,ou=services,dc=slicerhub,dc=test"
    assert ldap["lookup_dn_search_password_file"] == "/run/secrets/ldap-pw"
    assert "lookup_dn_search_password" not in ldap  # never the password itself


def test_lookup_without_service_account_binds_anonymously():
    data = demo_data()
    del data["ldap"]["bind_dn_template"]
    data["ldap"]["lookup"] = {"search_base": "ou=people,dc=slicerhub,dc=test"}
    ldap = to_traitlets(parse_config(data))["SlicerLDAPAuthenticator"]
    assert ldap["lookup_dn"] is True and ldap["user_attribute"] == "uid"
    assert "lookup_dn_search_user" not in ldap
    assert "lookup_dn_search_password_file" not in ldap


def test_lookup_password_file_reaches_the_authenticator(tmp_path):
    secret = tmp_path / "ldap-pw"
    secret.write_text("s3cret\n", encoding="utf-8")
    c = traitlets_config(lookup_config(password_file=str(secret)))
    auth = SlicerLDAPAuthenticator(config=c)
    assert auth.lookup_dn is True
    assert auth.user_search_base == "ou=people,dc=slicerhub,dc=test"
    assert auth.lookup_dn_search_user == "cn=hub,ou=services,dc=slicerhub,dc=test"
    assert auth.lookup_dn_search_password == "s3cret"


def test_ldap_traits_reach_the_authenticator(demo):
    auth = SlicerLDAPAuthenticator(config=traitlets_config(demo))
    assert auth.server_address == "127.0.0.1"
    assert auth.server_port == 3389
    assert auth.tls_strategy.name == "insecure"
    assert auth.bind_dn_template == ["uid={username},ou=people,dc=slicerhub,dc=test"]
    assert auth.admin_groups == [ADMINS_DN]
    assert auth.login_groups == [ADMINS_DN, TEACHERS_DN, STUDENTS_DN]
    assert auth.connect_timeout == 5.0 and auth.login_timeout == 20.0
    assert auth.manage_groups is True


# ------------------------------------------------------- culler and roles


def _culler(traits):
    (service,) = [s for s in traits["JupyterHub"]["services"] if s["name"] == "idle-culler"]
    return service


def test_services_are_external_and_get_their_tokens_only_when_given(traits):
    # Run beside the hub (slicerhub.runtime), so no command: a hub restart
    # neither stops nor orphans them.
    services = traits["JupyterHub"]["services"]
    assert [s["name"] for s in services] == ["idle-culler", "courses", "sharing"]
    assert all("command" not in s and "api_token" not in s for s in services)
    tokens = {"proxy": "p" * 64, "idle-culler": "c" * 64, "courses": "o" * 64, "sharing": "s" * 64}
    given = to_traitlets(demo_config(), hub_connect_ip="172.18.0.1", tokens=tokens)
    assert {s["name"]: s["api_token"] for s in given["JupyterHub"]["services"]} == {
        "idle-culler": "c" * 64, "courses": "o" * 64, "sharing": "s" * 64}
    assert given["ConfigurableHTTPProxy"]["auth_token"] == "p" * 64


def test_culler_role_has_exactly_its_scopes_and_not_admin(traits):
    roles = {r["name"]: r for r in traits["JupyterHub"]["load_roles"]}
    role = roles["idle-culler"]
    assert sorted(role["scopes"]) == sorted(
        ["list:users", "read:users:activity", "read:servers", "delete:servers"]
    )
    assert len(role["scopes"]) == 4
    assert not any(s == "admin" or s.startswith("admin:") for s in role["scopes"])
    assert role["services"] == ["idle-culler"]
    assert "users" not in role and "groups" not in role
    _check_scopes_exist(role["scopes"])
    _validate_role_name(role["name"])


def test_culler_disabled():
    data = demo_data()
    data["culler"] = {"enabled": False}
    hub = to_traitlets(parse_config(data))["JupyterHub"]
    assert [s["name"] for s in hub["services"]] == ["courses", "sharing"]
    assert [r["name"] for r in hub["load_roles"]] == ["courses-service", "sharing-service", "user", "teacher"]


def test_teacher_role_bound_to_teacher_groups(traits):
    roles = {r["name"]: r for r in traits["JupyterHub"]["load_roles"]}
    teacher = roles["teacher"]
    assert teacher["groups"] == ["teachers"]
    assert "users" not in teacher and "services" not in teacher
    assert not any(s.startswith(("admin", "access:", "delete:", "servers")) for s in teacher["scopes"])
    _check_scopes_exist(teacher["scopes"])
    _validate_role_name(teacher["name"])


def test_teacher_role_with_several_groups_and_none():
    data = demo_data()
    data["ldap"]["groups"]["teachers"] = [TEACHERS_DN, "cn=tutors,ou=groups,dc=slicerhub,dc=test"]
    roles = {r["name"]: r for r in to_traitlets(parse_config(data))["JupyterHub"]["load_roles"]}
    assert roles["teacher"]["groups"] == ["teachers", "tutors"]

    data = demo_data()
    data["ldap"]["groups"]["teachers"] = []
    for p in data["profiles"]:
        p["groups"] = []
    roles = to_traitlets(parse_config(data))["JupyterHub"]["load_roles"]
    assert [r["name"] for r in roles] == ["idle-culler", "courses-service", "sharing-service", "user"]


# ------------------------------------------------------------- backends


def test_spawner_profiles_and_storage(traits, demo):
    s = traits["SlicerSpawner"]
    assert [p["slug"] for p in s["profiles"]] == ["standard", "teacher", "gpu"]
    assert s["profiles"][2]["gpus"] == 1 and s["profiles"][2]["groups"] == ["teachers"]
    assert s["home_path"] == "/home/slicer"
    assert s["courses"] == {"groups": ["anat101"], "root": str(Path("var/courses").resolve()),
                            "claim": None, "mount_path": "/home/slicer/courses"}
    assert s["teacher_groups"] == ["teachers"]


def test_no_courses_is_an_empty_dict_and_no_service():
    data = demo_data()
    del data["courses"]
    traits = to_traitlets(parse_config(data))
    assert traits["SlicerSpawner"]["courses"] == {}
    assert "courses" not in [s["name"] for s in traits["JupyterHub"]["services"]]


def test_courses_service_and_its_role(traits):
    hub = traits["JupyterHub"]
    (service,) = [s for s in hub["services"] if s["name"] == "courses"]
    # Where the hub API listens (the fixture: 172.18.0.1): servers publish from JupyterLab through it.
    assert service["url"] == "http://172.18.0.1:8002"
    assert traits["SlicerSpawner"]["courses_url"] == "http://172.18.0.1:8002/services/courses"
    (role,) = [r for r in hub["load_roles"] if r["name"] == "courses-service"]
    # It reads group membership and nothing else: no server access.
    assert role == {"name": "courses-service", "scopes": ["read:users:name", "read:users:groups"],
                    "services": ["courses"]}
    user = next(r for r in hub["load_roles"] if r["name"] == "user")
    assert user["scopes"] == ["self", "custom:jupyter_server:execute:*!user", "custom:jupyter_server:read:*",
                              "access:services!service=courses", "access:services!service=sharing",
                              "shares!user", "read:shares!user",
                              # to share with a teacher who offered help, by name
                              "read:users:name!group=teachers"]


def test_sharing_service_scopes(traits):
    hub = traits["JupyterHub"]
    (service,) = [s for s in hub["services"] if s["name"] == "sharing"]
    assert service["url"] == "http://127.0.0.1:8003"
    # Its OAuth token acts for the signed-in user: links are made with the owner's permission.
    # (read:users:name is cut to what the user's role holds: the teachers' names.)
    assert all(s.endswith("!user") for s in service["oauth_client_allowed_scopes"] if s != "read:users:name")
    (role,) = [r for r in hub["load_roles"] if r["name"] == "sharing-service"]
    # Server access only read-only, only on course members' servers (teachers joining).
    access = [s for s in role["scopes"] if s.startswith(("access:servers", "custom:"))]
    assert access == ["access:servers!group=anat101", "custom:jupyter_server:read:*!group=anat101"]
    assert "admin:servers" not in role["scopes"] and "servers" not in role["scopes"]
    # Links are made with the owner's token, which must hold what they give.
    assert {"custom:jupyter_server:read:*!user", "custom:jupyter_server:collaborate:*!user"} <= set(
        service["oauth_client_allowed_scopes"])
    # Read < write < collaborate < execute; servers' tokens carry execute for
    # owners, read for guests (a guest's collaborate comes from their share).
    scopes = hub["custom_scopes"]
    assert scopes["custom:jupyter_server:execute:*"]["subscopes"] == [
        "custom:jupyter_server:collaborate:*", "custom:jupyter_server:write:*", "custom:jupyter_server:read:*"]
    assert scopes["custom:jupyter_server:collaborate:*"]["subscopes"] == [
        "custom:jupyter_server:write:*", "custom:jupyter_server:read:*"]
    assert traits["Spawner"]["oauth_client_allowed_scopes"] == [
        "custom:jupyter_server:execute:*!server", "custom:jupyter_server:read:*!server"]


def test_sharing_disabled():
    data = demo_data()
    data["sharing"] = {"enabled": False}
    hub = to_traitlets(parse_config(data))["JupyterHub"]
    assert "sharing" not in [s["name"] for s in hub["services"]]
    user = next(r for r in hub["load_roles"] if r["name"] == "user")
    assert "access:services!service=sharing" not in user["scopes"]


def test_docker_backend(traits):
    d = traits["SlicerDockerSpawner"]
    assert d == {
        "network_name": "slicerhub",
        "remove": True,
        "home_volume": "slicerhub-home-{username}",
        "prefix": "slicerhub",
    }
    assert "SlicerKubeSpawner" not in traits


def test_docker_settings_from_file():
    data = demo_data()
    data["backend"]["docker"].update(network="labnet", remove=False, home_volume="home-{username}",
                                     container_prefix="lab")
    d = to_traitlets(parse_config(data))["SlicerDockerSpawner"]
    assert d == {"network_name": "labnet", "remove": False, "home_volume": "home-{username}", "prefix": "lab"}


def test_docker_host_becomes_client_kwargs():
    data = demo_data()
    data["backend"]["docker"]["docker_host"] = "tcp://10.1.2.3:2376"
    d = to_traitlets(parse_config(data))["SlicerDockerSpawner"]
    assert d["client_kwargs"] == {"base_url": "tcp://10.1.2.3:2376"}


def test_docker_hub_connect_ip_from_argument(demo):
    hub = to_traitlets(demo, hub_connect_ip="172.18.0.1")["JupyterHub"]
    assert hub["hub_ip"] == "172.18.0.1" and hub["hub_connect_ip"] == "172.18.0.1"


def test_docker_hub_connect_ip_from_file_wins_over_argument():
    data = demo_data()
    data["backend"]["docker"]["hub_connect_ip"] = "10.10.0.1"
    hub = to_traitlets(parse_config(data), hub_connect_ip="172.18.0.1")["JupyterHub"]
    assert hub["hub_ip"] == "10.10.0.1" and hub["hub_connect_ip"] == "10.10.0.1"


def test_docker_without_any_connect_ip_leaves_hub_ip_alone(demo):
    hub = to_traitlets(demo)["JupyterHub"]
    assert "hub_ip" not in hub and "hub_connect_ip" not in hub


def test_kubernetes_backend():
    cfg = kube_config(namespace="slicer-lab", storage_class="fast-ssd", home_size="25Gi",
                      gpu_node_selector={"cloud.google.com/gke-accelerator": "nvidia-l4"},
                      gpu_toleration=False)
    traits = to_traitlets(cfg, hub_connect_ip="172.18.0.1")
    assert traits["JupyterHub"]["spawner_class"] == "slicerhub.spawners.kube.SlicerKubeSpawner"
    assert traits["JupyterHub"]["hub_ip"] == "0.0.0.0"
    # The docker gateway address means nothing in a cluster.
    assert "hub_connect_ip" not in traits["JupyterHub"]
    assert "SlicerDockerSpawner" not in traits
    assert traits["SlicerKubeSpawner"] == {
        "namespace": "slicer-lab",
        "storage_capacity": "25Gi",
        "storage_class": "fast-ssd",
        "gpu_toleration": False,
        "gpu_node_selector": {"cloud.google.com/gke-accelerator": "nvidia-l4"},
    }


def test_kubernetes_defaults():
    k = to_traitlets(kube_config())["SlicerKubeSpawner"]
    assert k["namespace"] == "slicerhub" and k["storage_capacity"] == "10Gi"
    assert k["gpu_toleration"] is True and k["gpu_node_selector"] == {}
    assert "storage_class" not in k


# ------------------------------------------------- onto real Config objects


def test_apply_onto_a_traitlets_config(traits):
    c = Config()
    apply(c, traits)
    assert c.JupyterHub.bind_url == "http://127.0.0.1:8000"
    assert c.JupyterHub.hub_connect_ip == "172.18.0.1"
    assert c.SlicerLDAPAuthenticator.server_port == 3389
    assert c.SlicerSpawner.home_path == "/home/slicer"
    assert c.SlicerDockerSpawner.network_name == "slicerhub"
    assert c.Authenticator.manage_groups is True
    # Nothing more than what to_traitlets produced.
    assert {k: dict(v) for k, v in c.items()} == traits


def test_apply_keeps_other_settings():
    c = Config()
    c.JupyterHub.admin_access = False
    c.Spawner.cmd = ["jupyterhub-singleuser"]
    apply(c, {"JupyterHub": {"bind_url": "http://127.0.0.1:9000"}, "Spawner": {"start_timeout": 5}})
    assert c.JupyterHub.admin_access is False
    assert c.Spawner.cmd == ["jupyterhub-singleuser"]
    assert c.JupyterHub.bind_url == "http://127.0.0.1:9000"
    assert c.Spawner.start_timeout == 5


@pytest.mark.parametrize("backend", ["docker", "kubernetes"])
def test_jupyterhub_accepts_the_settings(backend, demo):
    cfg = demo if backend == "docker" else kube_config(storage_class="fast")
    c = traitlets_config(cfg)
    app = JupyterHub(config=c)
    assert app.bind_url == "http://127.0.0.1:8000"
    assert app.authenticator_class is SlicerLDAPAuthenticator
    assert app.spawner_class.__name__ == {"docker": "SlicerDockerSpawner", "kubernetes": "SlicerKubeSpawner"}[backend]
    assert app.db_url == "sqlite:///var/hub/jupyterhub.sqlite"
    assert app.concurrent_spawn_limit == 10
    assert app.hub_port == 8081
    assert [s["name"] for s in app.services] == ["idle-culler", "courses", "sharing"]
    assert {r["name"] for r in app.load_roles} == {"idle-culler", "courses-service", "sharing-service", "user", "teacher"}
    assert "custom:jupyter_server:read:*" in app.custom_scopes
    assert app.implicit_spawn_seconds == 2
    assert app.hub_ip == ("172.18.0.1" if backend == "docker" else "0.0.0.0")
    if backend == "docker":
        assert app.hub_connect_ip == "172.18.0.1"


# ------------------------------------------------------ the jupyterhub: section


def _with_settings(settings):
    from slicerhub.config import parse_config

    data = demo_data()
    data["jupyterhub"] = settings
    return parse_config(data, "demo")


def test_jupyterhub_settings_apply_after_slicerhubs_and_mappings_add_to_ours():
    traits = to_traitlets(_with_settings({
        "Spawner": {"start_timeout": 600},
        "JupyterHub": {"shutdown_on_logout": True, "template_vars": {"announcement": "Maintenance at 18:00"}},
    }))
    assert traits["Spawner"]["start_timeout"] == 600
    assert traits["Spawner"]["default_url"] == "/lab"  # the rest of SlicerHub's section stays
    assert traits["JupyterHub"]["shutdown_on_logout"] is True
    # List and dict settings are checked too (they need an object to validate against).
    listed = to_traitlets(_with_settings({"Spawner": {"cmd": ["jupyterhub-singleuser", "--debug"]},
                                          "SlicerDockerSpawner": {"extra_host_config": {"shm_size": "1G"}}}))
    assert listed["Spawner"]["cmd"] == ["jupyterhub-singleuser", "--debug"]
    assert listed["SlicerDockerSpawner"]["extra_host_config"] == {"shm_size": "1G"}
    template_vars = traits["JupyterHub"]["template_vars"]
    assert template_vars["announcement"] == "Maintenance at 18:00"
    assert template_vars["slicerhub_spawn_retry_seconds"] == [5, 15]
    assert template_vars["slicerhub_site"]["name"] == "SlicerHub"


@pytest.mark.parametrize("settings, message", [
    ({"Spawner": {"start_timeout": "soon"}}, "jupyterhub.Spawner.start_timeout: The 'start_timeout' trait expected an int"),
    ({"Spawner": {"no_such_setting": 1}}, "jupyterhub.Spawner.no_such_setting: Spawner has no setting 'no_such_setting'"),
    ({"NoSuchClass": {"x": 1}}, "jupyterhub.NoSuchClass: no such JupyterHub class here (known: "),
    ({"JupyterHub": {"bind_url": "http://x"}}, "jupyterhub.JupyterHub.bind_url: set by this file's hub.bind_url"),
    ({"SlicerDockerSpawner": {"home_path": "/x"}}, "jupyterhub.SlicerDockerSpawner.home_path: set by this file's storage.home_path"),
    ({"JupyterHub": {"cleanup_servers": True}}, "jupyterhub.JupyterHub.cleanup_servers: cannot be changed"),
    ({"Spawner": {"args": 5}}, "jupyterhub.Spawner.args: The 'args' trait expected a list, not the int 5."),
    ({"Authenticator": {"allow_all": True}}, "jupyterhub.Authenticator.allow_all: set by this file's ldap.groups.allowed"),
    ({"SlicerLDAPAuthenticator": {"admin_users": ["eve"]}}, "jupyterhub.SlicerLDAPAuthenticator.admin_users: set by this file's ldap.groups.admins"),
    ({"LDAPAuthenticator": {"tls_strategy": "insecure"}}, "jupyterhub.LDAPAuthenticator.tls_strategy: set by this file's ldap.tls"),
    ({"JupyterHub": {"load_roles": [{"name": "user", "scopes": ["admin:users"]}]}}, "jupyterhub.JupyterHub.load_roles: set by this file's ldap.groups"),
    ({"JupyterHub": {"proxy_auth_token": "x"}}, "jupyterhub.JupyterHub.proxy_auth_token: cannot be changed (secrets live in files"),
    ({"JupyterHub": {"api_tokens": {"t": "admin1"}}}, "jupyterhub.JupyterHub.api_tokens: cannot be changed"),
    ({"Spawner": {"oauth_client_allowed_scopes": ["access:servers"]}}, "jupyterhub.Spawner.oauth_client_allowed_scopes: cannot be changed"),
    ({"DockerSpawner": {"allowed_images": ["evil:latest"]}}, "jupyterhub.DockerSpawner.allowed_images: cannot be changed"),
    # A base class's spelling would silently lose to SlicerHub's setting on a subclass.
    ({"Application": {"log_level": "DEBUG"}}, "jupyterhub.Application.log_level: set by this file's hub.log_level"),
    ({"LoggingConfigurable": {"nope": 1}}, "jupyterhub.LoggingConfigurable.nope: LoggingConfigurable has no setting"),
    # The Kubernetes spawner's settings are for the Kubernetes backend only.
    ({"KubeSpawner": {"start_timeout": 5}}, "jupyterhub.KubeSpawner: no such JupyterHub class here"),
])
def test_jupyterhub_settings_are_checked_against_the_real_classes(settings, message):
    from slicerhub.config import ConfigError

    with pytest.raises(ConfigError) as e:
        to_traitlets(_with_settings(settings))
    assert any(m.startswith(message) for m in e.value.messages), e.value.messages


def test_jupyterhub_section_names_are_checked_by_the_schema():
    from slicerhub.config import ConfigError

    with pytest.raises(ConfigError) as e:
        _with_settings({"spawner": {"Start-Timeout": 1}})
    assert e.value.messages == [
        "jupyterhub.spawner (the name): must be a JupyterHub class name such as JupyterHub or Spawner (got 'spawner')",
        "jupyterhub.spawner.Start-Timeout (the name): must be a setting name such as start_timeout (got 'Start-Timeout')",
    ]
