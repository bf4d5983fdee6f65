"""The deployment file: loading, and one readable line per bad field."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from slicerhub import cli
from slicerhub.config import (
    ConfigError,
    SlicerHubConfig,
    json_schema,
    load_config,
    parse_config,
)

from .helpers import ADMINS_DN, ANAT_DN, STUDENTS_DN, TEACHERS_DN, demo_data

# --------------------------------------------------------------------- helpers


def _walk(data, path):
    cur = data
    for part in path[:-1]:
        if isinstance(part, str) and part not in cur:
            cur[part] = {}
        cur = cur[part]
    return cur


def put(*path_and_value):
    *path, value = path_and_value

    def mutate(data):
        _walk(data, path)[path[-1]] = value

    return mutate


def drop(*path):
    def mutate(data):
        del _walk(data, path)[path[-1]]

    return mutate


def both(*mutations):
    def mutate(data):
        for m in mutations:
            m(data)

    return mutate


def use_lookup(**lookup):
    return both(drop("ldap", "bind_dn_template"), put("ldap", "lookup", lookup))


def errors_for(mutate) -> list[str]:
    data = demo_data()
    mutate(data)
    with pytest.raises(ConfigError) as info:
        parse_config(data, "deploy.yaml")
    assert info.value.source == "deploy.yaml"
    return info.value.messages


def assert_readable(line: str) -> None:
    """No pydantic internals leak into what an operator reads."""
    assert "\n" not in line
    assert "Value error" not in line
    assert "function-" not in line
    assert "errors.pydantic.dev" not in line
    assert "[type=" not in line


# ------------------------------------------------------------- the demo file


def test_demo_file_loads(demo_path):
    cfg = load_config(demo_path)
    assert isinstance(cfg, SlicerHubConfig)
    assert cfg.backend.type == "docker"
    assert cfg.backend.docker.network == "slicerhub"
    assert [p.slug for p in cfg.profiles] == ["standard", "teacher", "gpu"]
    assert [p.slug for p in cfg.profiles if p.default] == ["standard"]
    gpu = cfg.profiles[2]
    assert gpu.gpus == 1 and gpu.groups == ["teachers"] and gpu.mem_limit == "4G"
    assert cfg.ldap.server == "127.0.0.1" and cfg.ldap.port == 3389
    assert cfg.ldap.tls == "insecure"
    assert cfg.ldap.bind_dn_template == ["uid={username},ou=people,dc=slicerhub,dc=test"]
    assert cfg.ldap.lookup is None
    assert cfg.ldap.groups.hub_group_names() == {"slicerhub-admins", "teachers", "students", "anat101"}
    # all_dns keeps the first occurrence of each DN, in a stable order
    assert cfg.ldap.groups.all_dns() == [ADMINS_DN, TEACHERS_DN, STUDENTS_DN, ANAT_DN]
    assert cfg.courses.groups == ["anat101"] and cfg.courses.mount_path == "/home/slicer/courses"
    assert cfg.culler.timeout == 3600 and cfg.culler.every == 300


def test_minimal_file_gets_defaults(tmp_path):
    path = tmp_path / "min.yaml"
    path.write_text(
        "ldap:\n"
        "  server: ldap.example.org\n"
        "  bind_dn_template: ['uid={username},ou=people,dc=example,dc=org']\n"
        "profiles:\n"
        "  - {slug: slicer, display_name: Slicer, image: 'slicerhub/base:1'}\n",
        encoding="utf-8",
    )
    cfg = load_config(path)
    assert cfg.ldap.tls == "before_bind"
    assert cfg.ldap.port is None
    assert cfg.backend.type == "docker"
    assert cfg.backend.docker.home_volume == "slicerhub-home-{username}"
    assert cfg.profiles[0].gpus == 0 and cfg.profiles[0].groups == []
    assert cfg.courses.groups == []
    assert cfg.culler.enabled is True


def test_config_is_frozen(demo_path):
    cfg = load_config(demo_path)
    with pytest.raises(Exception):
        cfg.profiles[0].gpus = 4  # type: ignore[misc]


# ------------------------------------------------- one line per bad field

BAD = [
    # --- unknown keys at several depths: the message lists what is allowed
    pytest.param(put("colour", "blue"), "colour", ["unknown field", "hub", "ldap", "backend", "profiles", "storage", "culler"], id="unknown-top"),
    pytest.param(put("hub", "port", 8000), "hub.port", ["unknown field", "bind_url", "data_dir", "log_level"], id="unknown-hub"),
    pytest.param(put("ldap", "groups", "admin", []), "ldap.groups.admin", ["unknown field", "admins", "teachers", "students", "allowed", "extra"], id="unknown-ldap-groups"),
    pytest.param(put("ldap", "timeouts", {"read": 3}), "ldap.timeouts.read", ["unknown field", "connect", "receive", "login"], id="unknown-ldap-timeouts"),
    pytest.param(use_lookup(search_base="dc=x", filter="(uid=*)"), "ldap.lookup.filter", ["unknown field", "search_base", "bind_dn", "bind_password_file"], id="unknown-ldap-lookup"),
    pytest.param(put("profiles", 1, "gpu", 1), "profiles[1].gpu", ["unknown field", "slug", "gpus", "mem_limit", "groups"], id="unknown-profile"),
    pytest.param(put("backend", "docker", "gpus", True), "backend.docker.gpus", ["unknown field", "network", "home_volume", "hub_connect_ip"], id="unknown-docker"),
    pytest.param(put("backend", "kubernetes", {"nodepool": "x"}), "backend.kubernetes.nodepool", ["unknown field", "namespace", "home_size", "gpu_node_selector"], id="unknown-kubernetes"),
    pytest.param(put("courses", "readonly", True), "courses.readonly", ["unknown field", "groups", "mount_path"], id="unknown-courses-field"),
    pytest.param(put("culler", "idle", 5), "culler.idle", ["unknown field", "timeout", "every", "max_age"], id="unknown-culler"),
    # --- wrong types
    pytest.param(put("profiles", 0, "gpus", "many"), "profiles[0].gpus", ["integer", "'many'"], id="type-gpus"),
    pytest.param(put("ldap", "port", "ldaps"), "ldap.port", ["integer", "'ldaps'"], id="type-port"),
    pytest.param(put("profiles", 0, "cpu_limit", "two"), "profiles[0].cpu_limit", ["number", "'two'"], id="type-cpu"),
    pytest.param(put("ldap", "groups", "admins", ADMINS_DN), "ldap.groups.admins", ["list"], id="type-groups-not-list"),
    pytest.param(put("profiles", {"slug": "x"}), "profiles", ["list"], id="type-profiles-mapping"),
    pytest.param(put("ldap", "ldap.example.org"), "ldap", ["dictionary", "'ldap.example.org'"], id="type-ldap-string"),
    pytest.param(put("backend", "kubernetes", {"gpu_node_selector": {"pool": 1}}), "backend.kubernetes.gpu_node_selector.pool", ["string"], id="type-node-selector"),
    pytest.param(put("culler", "enabled", "sometimes"), "culler.enabled", ["boolean", "'sometimes'"], id="type-culler-enabled"),
    # --- numbers out of range
    pytest.param(put("profiles", 0, "gpus", 17), "profiles[0].gpus", ["16", "17"], id="range-gpus-high"),
    pytest.param(put("profiles", 2, "gpus", -1), "profiles[2].gpus", ["0", "-1"], id="range-gpus-negative"),
    pytest.param(put("profiles", 0, "cpu_limit", 0), "profiles[0].cpu_limit", ["greater than 0"], id="range-cpu-zero"),
    pytest.param(put("ldap", "port", 70000), "ldap.port", ["65535", "70000"], id="range-port"),
    pytest.param(put("ldap", "port", 0), "ldap.port", ["1"], id="range-port-zero"),
    pytest.param(put("ldap", "timeouts", {"connect": 0}), "ldap.timeouts.connect", ["greater than 0"], id="range-timeout-zero"),
    pytest.param(put("ldap", "timeouts", {"receive": 500}), "ldap.timeouts.receive", ["120"], id="range-timeout-high"),
    pytest.param(put("culler", "timeout", 60), "culler.timeout", ["360", "60"], id="range-culler-timeout"),
    pytest.param(put("culler", "concurrency", 0), "culler.concurrency", ["1"], id="range-culler-concurrency"),
    pytest.param(put("hub", "api_port", 65536), "hub.api_port", ["65535"], id="range-api-port"),
    pytest.param(put("hub", "proxy_api_port", 0), "hub.proxy_api_port", ["1"], id="range-proxy-api-port"),
    pytest.param(put("hub", "concurrent_spawn_limit", 0), "hub.concurrent_spawn_limit", ["1"], id="range-spawn-limit"),
    pytest.param(put("profiles", 0, "display_name", "x" * 81), "profiles[0].display_name", ["80"], id="range-display-name"),
    pytest.param(put("profiles", 0, "display_name", ""), "profiles[0].display_name", ["at least 1"], id="empty-display-name"),
    # --- bad enums
    pytest.param(put("ldap", "tls", "starttls"), "ldap.tls", ["before_bind", "on_connect", "insecure", "'starttls'"], id="enum-tls"),
    pytest.param(put("backend", "type", "podman"), "backend.type", ["docker", "kubernetes", "'podman'"], id="enum-backend"),
    pytest.param(put("hub", "log_level", "verbose"), "hub.log_level", ["INFO", "'verbose'"], id="enum-log-level"),
    # --- bad patterns: the message says what is expected, not a regex
    pytest.param(put("profiles", 0, "slug", "Bad_Slug"), "profiles[0].slug", ["lowercase", "'Bad_Slug'"], id="pattern-slug-case"),
    pytest.param(put("profiles", 1, "slug", "-teacher"), "profiles[1].slug", ["lowercase", "'-teacher'"], id="pattern-slug-dash"),
    pytest.param(put("profiles", 1, "slug", "a" * 41), "profiles[1].slug", ["at most 40"], id="pattern-slug-long"),
    pytest.param(put("profiles", 0, "mem_limit", "2GB"), "profiles[0].mem_limit", ["512M", "'2GB'"], id="pattern-mem"),
    pytest.param(put("profiles", 0, "mem_limit", "lots"), "profiles[0].mem_limit", ["512M", "'lots'"], id="pattern-mem-word"),
    pytest.param(put("profiles", 0, "image", "slicer base:1"), "profiles[0].image", ["without spaces", "'slicer base:1'"], id="pattern-image-space"),
    pytest.param(put("hub", "bind_url", "ftp://hub.example.org"), "hub.bind_url", ["http://", "https://", "'ftp://hub.example.org'"], id="pattern-bind-url-scheme"),
    pytest.param(put("hub", "bind_url", "127.0.0.1:8000"), "hub.bind_url", ["http://"], id="pattern-bind-url-no-scheme"),
    pytest.param(put("backend", "docker", "network", "my net"), "backend.docker.network", ["letters, digits", "'my net'"], id="pattern-network-space"),
    pytest.param(put("backend", "docker", "network", "-net"), "backend.docker.network", ["letters, digits"], id="pattern-network-dash"),
    pytest.param(put("backend", "docker", "container_prefix", "slicer hub"), "backend.docker.container_prefix", ["letters, digits", "'slicer hub'"], id="pattern-container-prefix"),
    pytest.param(put("backend", "docker", "home_volume", "slicerhub-home"), "backend.docker.home_volume", ["{username}", "'slicerhub-home'"], id="pattern-home-volume"),
    pytest.param(put("backend", "kubernetes", {"home_size": "10GB"}), "backend.kubernetes.home_size", ["10Gi", "'10GB'"], id="pattern-home-size"),
    pytest.param(put("backend", "kubernetes", {"namespace": "Lab"}), "backend.kubernetes.namespace", ["lowercase", "'Lab'"], id="pattern-namespace"),
    pytest.param(put("courses", "mount_path", "course"), "courses.mount_path", ["absolute path", "'course'"], id="pattern-mount-path"),
    pytest.param(put("storage", "home_path", "home/slicer"), "storage.home_path", ["absolute path"], id="pattern-home-path"),
    pytest.param(put("courses", "claim", "my courses"), "courses.claim", ["letters, digits"], id="pattern-courses-claim"),
    pytest.param(put("courses", "groups", ["nosuchgroup"]), "courses.groups[0]", ["not a group synced", "anat101"], id="course-not-synced"),
    pytest.param(put("courses", "groups", ["../etc"]), "courses.groups[0]", ["cannot be a course name"], id="course-name-traversal"),
    pytest.param(put("courses", "mount_path", "/srv/courses"), "courses.mount_path", ["inside storage.home_path"], id="courses-outside-home"),
    pytest.param(put("ldap", "server", "ldap server"), "ldap.server", ["host name", "'ldap server'"], id="pattern-server"),
    pytest.param(put("ldap", "server", "ldap://ldap.example.org"), "ldap.server", ["host name"], id="pattern-server-url"),
    pytest.param(use_lookup(search_base="dc=x", user_attribute="1uid"), "ldap.lookup.user_attribute", ["'1uid'"], id="pattern-user-attribute"),
    # --- LDAP DNs, with the list index in the path
    pytest.param(put("ldap", "groups", "admins", ["not a dn"]), "ldap.groups.admins[0]", ["not a valid LDAP DN", "'not a dn'"], id="dn-admins-0"),
    pytest.param(put("ldap", "groups", "extra", [ANAT_DN, "garbage"]), "ldap.groups.extra[1]", ["not a valid LDAP DN", "'garbage'"], id="dn-extra-1"),
    pytest.param(put("ldap", "groups", "allowed", [ADMINS_DN, TEACHERS_DN, "cn=students,"]), "ldap.groups.allowed[2]", ["not a valid LDAP DN"], id="dn-allowed-2"),
    pytest.param(put("ldap", "groups", "teachers", [""]), "ldap.groups.teachers[0]", ["not a valid LDAP DN"], id="dn-empty"),
    pytest.param(put("ldap", "groups", "students", ["=students"]), "ldap.groups.students[0]", ["not a valid LDAP DN"], id="dn-students-no-attr"),
    pytest.param(use_lookup(search_base="people"), "ldap.lookup.search_base", ["not a valid LDAP DN", "'people'"], id="dn-search-base"),
    pytest.param(use_lookup(search_base="dc=x", bind_dn="svc", bind_password_file="/run/pw"), "ldap.lookup.bind_dn", ["not a valid LDAP DN"], id="dn-lookup-bind-dn"),
    # --- how users are found
    pytest.param(put("ldap", "bind_dn_template", ["uid=bob,ou=people,dc=x"]), "ldap.bind_dn_template", ["{username}", "uid=bob"], id="template-no-placeholder"),
    pytest.param(put("ldap", "bind_dn_template", ["{username}"]), "ldap.bind_dn_template", ["not a valid LDAP DN"], id="template-not-a-dn"),
    pytest.param(put("ldap", "lookup", {"search_base": "dc=x"}), "ldap", ["exactly one of bind_dn_template or lookup"], id="both-template-and-lookup"),
    pytest.param(drop("ldap", "bind_dn_template"), "ldap", ["exactly one of bind_dn_template or lookup"], id="neither-template-nor-lookup"),
    pytest.param(put("ldap", "bind_dn_template", []), "ldap", ["exactly one of bind_dn_template or lookup"], id="empty-template-list"),
    pytest.param(use_lookup(search_base="dc=x", bind_dn="cn=svc,dc=x"), "ldap.lookup", ["bind_dn", "bind_password_file"], id="lookup-bind-dn-without-password"),
    pytest.param(put("ldap", "timeouts", {"connect": 30, "login": 10}), "ldap.timeouts", ["login", "connect"], id="login-shorter-than-connect"),
    # --- whole-file consistency
    pytest.param(put("profiles", 1, "slug", "standard"), "profiles", ["twice", "standard"], id="duplicate-slug"),
    pytest.param(put("profiles", 1, "default", True), "profiles", ["default"], id="two-defaults"),
    pytest.param(put("profiles", 1, "groups", ["physics"]), "profiles[1].groups", ["'physics'", "ldap.groups", "teachers"], id="unknown-group"),
    pytest.param(put("profiles", 2, "groups", ["teachers", TEACHERS_DN]), "profiles[2].groups", ["not a group synced"], id="group-given-as-dn"),
    pytest.param(put("ldap", "groups", "extra", [ANAT_DN, "cn=teachers,ou=other,dc=x"]), "ldap.groups", ["'teachers'", "cn=teachers,ou=other,dc=x"], id="two-dns-one-group-name"),
    pytest.param(put("profiles", []), "profiles", ["at least 1"], id="empty-profiles"),
    # --- missing fields
    pytest.param(drop("ldap"), "ldap", ["required"], id="missing-ldap"),
    pytest.param(drop("profiles"), "profiles", ["required"], id="missing-profiles"),
    pytest.param(drop("ldap", "server"), "ldap.server", ["required"], id="missing-ldap-server"),
    pytest.param(drop("profiles", 2, "image"), "profiles[2].image", ["required"], id="missing-profile-image"),
    pytest.param(put("courses", "groups", "anat101"), "courses.groups", ["valid list"], id="courses-groups-not-list"),
]


@pytest.mark.parametrize(("mutate", "where", "fragments"), BAD)
def test_one_readable_line_naming_the_field(mutate, where, fragments):
    messages = errors_for(mutate)
    assert len(messages) == 1, messages
    line = messages[0]
    assert line.startswith(f"{where}:"), line
    # The path is the whole field path, not a prefix of a longer one.
    assert not line.startswith(f"{where}[") and not line.startswith(f"{where}.")
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    assert_readable(line)


def test_unknown_field_lists_exactly_the_allowed_keys():
    (line,) = errors_for(put("profiles", 0, "gpu", 1))
    allowed = line.split("allowed here: ", 1)[1].rstrip(")")
    assert [k.strip() for k in allowed.split(",")] == [
        "slug", "display_name", "description", "image", "cpu_limit",
        "mem_limit", "gpus", "groups", "default", "companions",
    ]


def test_several_bad_fields_give_several_lines():
    messages = errors_for(
        both(
            put("hub", "port", 8000),
            put("ldap", "tls", "starttls"),
            put("ldap", "groups", "admins", ["nope"]),
            put("profiles", 0, "gpus", "many"),
            put("profiles", 2, "mem_limit", "4GB"),
            put("culler", "timeout", 1),
        )
    )
    wheres = sorted(m.split(":", 1)[0] for m in messages)
    assert wheres == sorted(
        [
            "hub.port",
            "ldap.tls",
            "ldap.groups.admins[0]",
            "profiles[0].gpus",
            "profiles[2].mem_limit",
            "culler.timeout",
        ]
    ), messages
    for m in messages:
        assert_readable(m)


def test_config_error_str_names_the_source_and_every_problem():
    data = demo_data()
    data["ldap"]["tls"] = "nope"
    data["profiles"][0]["gpus"] = 99
    with pytest.raises(ConfigError) as info:
        parse_config(data, "site.yaml")
    text = str(info.value)
    assert text.startswith("site.yaml: ")
    assert "ldap.tls" in text and "profiles[0].gpus" in text


@pytest.mark.parametrize(
    "data", [["a", "b"], "just a string", 42, None], ids=["list", "string", "number", "empty"]
)
def test_top_level_must_be_a_mapping(data):
    with pytest.raises(ConfigError) as info:
        parse_config(data, "x.yaml")
    assert info.value.messages == ["the file must be a YAML mapping (key: value) at the top level"]


# ------------------------------------------------------------ reading files


def test_empty_file_is_not_a_mapping(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert len(info.value.messages) == 1
    assert "mapping" in info.value.messages[0]


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("hub:\n  bind_url: http://x\nldap:\n  server: [unclosed\nprofiles: []\n", 5),
        ("hub:\n\tbind_url: http://x\n", 2),
        ("ldap:\n  server: a\n server: b\n", 3),
        ('profiles:\n  - slug: "open\n', 3),
    ],
    ids=["unclosed-flow", "tab-indent", "bad-indent", "unclosed-quote"],
)
def test_invalid_yaml_names_the_line(tmp_path, text, line):
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.source == str(path)
    (message,) = info.value.messages
    assert re.match(rf"^line {line}, column \d+: not valid YAML \(.+\)$", message), message
    assert "Traceback" not in message


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.messages == ["cannot read the file: No such file or directory"]


def test_directory_is_not_a_file(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    (message,) = info.value.messages
    assert message.startswith("cannot read the file: ")


def test_file_that_is_not_utf8_is_a_config_error(tmp_path):
    # A file saved in Latin-1 (or a binary picked by mistake) must give one
    # readable line, not a UnicodeDecodeError traceback.
    path = tmp_path / "latin1.yaml"
    path.write_bytes("ldap:\n  server: h\u00f4te\n".encode("latin-1"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    (message,) = info.value.messages
    assert "UTF-8" in message
    assert "Traceback" not in message and "\n" not in message


def test_bad_field_read_from_a_file_keeps_its_path(tmp_path):
    data = demo_data()
    data["profiles"][1]["gpus"] = "one"
    path = tmp_path / "d.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.source == str(path)
    assert [m.split(":")[0] for m in info.value.messages] == ["profiles[1].gpus"]


# ---------------------------------------------------------------------- CLI


def test_cli_check_ok(demo_path, capsys):
    assert cli.main(["config", "check", str(demo_path)]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == f"{demo_path}: OK (docker backend, 3 profile(s))"
    assert err == ""


def test_cli_check_reports_every_problem(tmp_path, capsys):
    data = demo_data()
    data["ldap"]["tls"] = "starttls"
    data["profiles"][2]["gpus"] = 99
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert cli.main(["config", "check", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert lines[0] == f"{path}: 2 problem(s)"
    assert sorted(lines[1:]) == sorted(
        [
            "  - ldap.tls: Input should be 'before_bind', 'on_connect' or 'insecure' (got 'starttls')",
            "  - profiles[2].gpus: Input should be less than or equal to 16 (got 99)",
        ]
    )


def test_cli_check_missing_file(tmp_path, capsys):
    path = tmp_path / "absent.yaml"
    assert cli.main(["config", "check", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"{path}: 1 problem(s)",
        "  - cannot read the file: No such file or directory",
    ]


def test_cli_check_invalid_yaml(tmp_path, capsys):
    path = tmp_path / "broken.yaml"
    path.write_text("ldap:\n  server: [x\n", encoding="utf-8")
    assert cli.main(["config", "check", str(path)]) == 1
    _, err = capsys.readouterr()
    assert "not valid YAML" in err and "line " in err
    assert "Traceback" not in err


def test_cli_check_non_utf8_file(tmp_path, capsys):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"ldap:\n  server: h\xf4te\n")
    assert cli.main(["config", "check", str(path)]) == 1
    _, err = capsys.readouterr()
    assert err.startswith(f"{path}: 1 problem(s)")


def test_cli_needs_a_command(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["config"])
    assert info.value.code == 2


def test_cli_traitlets_prints_json(demo_path, capsys):
    assert cli.main(["config", "traitlets", str(demo_path), "--hub-connect-ip", "10.9.8.7"]) == 0
    out, _ = capsys.readouterr()
    traits = json.loads(out)
    assert traits["JupyterHub"]["hub_connect_ip"] == "10.9.8.7"
    assert traits["JupyterHub"]["spawner_class"] == "slicerhub.spawners.docker.SlicerDockerSpawner"


def test_cli_traitlets_bad_file(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("colour: blue\n", encoding="utf-8")
    assert cli.main(["config", "traitlets", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "colour: unknown field" in err


def test_cli_schema(capsys):
    assert cli.main(["config", "schema"]) == 0
    out, _ = capsys.readouterr()
    assert json.loads(out) == json_schema()


# -------------------------------------------------------------- JSON Schema


def test_json_schema_is_json_with_the_top_level_properties():
    schema = json_schema()
    assert isinstance(schema, dict)
    again = json.loads(json.dumps(schema))
    assert again == schema
    assert schema["type"] == "object"
    assert set(schema["properties"]) == {"hub", "site", "ldap", "backend", "profiles", "storage", "courses", "sharing", "culler", "pacs", "companions", "jupyterhub"}
    assert set(schema["required"]) == {"ldap", "profiles"}
    assert schema.get("additionalProperties") is False
    profile = schema["$defs"]["Profile"]
    assert profile["properties"]["slug"]["pattern"]
    assert profile["properties"]["gpus"]["maximum"] == 16
    assert schema["$defs"]["LdapSettings"]["properties"]["tls"]["enum"] == [
        "before_bind",
        "on_connect",
        "insecure",
    ]


@pytest.mark.parametrize("hub, expected", [
    ({"bind_url": "https://hub.example.org"}, "hub: tls: bind_url is https://, so give tls.cert_file"),
    ({"tls": {"cert_file": "c.pem", "key_file": "k.pem"}}, "hub: tls: set, but bind_url is not https://"),
    ({"bind_url": "https://hub.example.org", "tls": {"cert_file": "c.pem"}}, "hub.tls.key_file: required field"),
])
def test_public_tls_matches_the_scheme(hub, expected):
    data = demo_data()
    data["hub"].update(hub)
    with pytest.raises(ConfigError) as e:
        parse_config(data)
    assert any(m.startswith(expected) for m in e.value.messages), e.value.messages
