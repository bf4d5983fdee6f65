from __future__ import annotations

import shutil

import pytest

from slicerhub.devenv.ldap import Directory, LdapUser, Slapd
from tests.support.hub import Hub, free_port, write_config

SUFFIX = "dc=slicerhub,dc=test"


def test_directory() -> Directory:
    """The demo course plus accounts the tests need: someone outside every
    allowed group, and a student we move between groups."""
    users = [
        LdapUser("admin1", "Ada Admin", "Admin", "admin-pw"),
        LdapUser("teacher1", "Tess Teacher", "Teacher", "teacher-pw"),
        LdapUser("student1", "Sam Student", "Student", "student1-pw", display_name="Samantha Student"),
        LdapUser("student2", "Kim Student", "Student", "student2-pw"),
        LdapUser("mover", "Max Mover", "Mover", "mover-pw"),
        LdapUser("outsider", "Olive Outsider", "Outsider", "outsider-pw"),
    ]
    groups = {
        "slicerhub-admins": ["admin1"],
        "teachers": ["teacher1"],
        "students": ["student1", "student2", "mover"],
        "anat101": ["teacher1", "student1", "mover"],
        "staff": ["outsider"],
    }
    return Directory(suffix=SUFFIX, users=users, groups=groups)


@pytest.fixture(scope="module")
def slapd(tmp_path_factory):
    if not shutil.which("slapd"):
        pytest.fail("slapd is not installed: `make test` installs it (apt-get install slapd ldap-utils)")
    server = Slapd(tmp_path_factory.mktemp("ldap"), test_directory())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def hub(slapd, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("hub")
    port = free_port()
    config = write_config(
        workdir / "slicerhub.yaml",
        slapd.port,
        port,
        # No containers in this tier: the hub API address is given, not looked up in Docker.
        backend={"docker": {"hub_connect_ip": "127.0.0.1"}},
        ldap={"timeouts": {"connect": 2, "receive": 3, "login": 6}},
    )
    with Hub(workdir, config, port) as running:
        yield running
