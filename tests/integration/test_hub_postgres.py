"""The hub on a real PostgreSQL (Debian's server, started here on loopback by
slicerhub.devenv.postgres), with a real slapd: LDAP logins, groups synced
from LDAP, a hub restart that keeps them, the tables in PostgreSQL and no
SQLite file, and a wrong password that stops the hub with one clear line.

Running servers across a restart on PostgreSQL: tests/e2e/test_hub_postgres_servers.py.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import requests
import yaml

from slicerhub.devenv.postgres import Postgres
from tests.support.hub import HUB_CONFIG, Hub, free_port, write_config

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pg():
    with Postgres() as server:
        yield server


def pg_config(workdir, slapd, port, pg, password_file=None):
    return write_config(
        workdir / "slicerhub.yaml", slapd.port, port,
        backend={"docker": {"hub_connect_ip": "127.0.0.1"}},
        hub={"database": {"url": pg.url, "password_file": str(password_file or pg.password_file)}},
    )


@pytest.fixture(scope="module")
def pg_hub(slapd, pg, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("hub-pg")
    port = free_port()
    with Hub(workdir, pg_config(workdir, slapd, port, pg), port) as hub:
        yield hub


def admin_token(hub: Hub) -> str:
    session, r = hub.login("admin1", "admin-pw")
    assert r.status_code == 302, r.status_code
    return hub.api_token(session, note="pg-test")


def api(hub: Hub, token: str, path: str) -> requests.Response:
    r = requests.get(f"{hub.url}/hub/api{path}", headers={"Authorization": f"token {token}"}, timeout=30)
    r.raise_for_status()
    return r


def test_ldap_logins_work_and_land_in_postgres(pg_hub, pg):
    for user, password in [("student1", "student1-pw"), ("teacher1", "teacher-pw")]:
        _, r = pg_hub.login(user, password)
        assert r.status_code == 302, f"{user}: {r.status_code}"
    _, r = pg_hub.login("student1", "wrong")
    assert r.status_code == 403
    names = {row[0] for row in pg.query("SELECT name FROM users")}
    assert {"student1", "teacher1"} <= names
    # Groups synced from LDAP at login, stored in PostgreSQL.
    rows = pg.query("SELECT g.name FROM groups g JOIN user_group_map m ON m.group_id = g.id "
                    "JOIN users u ON u.id = m.user_id WHERE u.name = 'student1'")
    assert {"students", "anat101"} <= {r[0] for r in rows}


def test_the_schema_is_in_postgres_and_no_sqlite_file_exists(pg_hub, pg):
    tables = {r[0] for r in pg.query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")}
    assert {"users", "groups", "spawners", "servers", "api_tokens", "alembic_version"} <= tables
    data_dir = pg_hub.cfg.hub.data_dir
    # (sharing.sqlite beside it is the sharing service's own store, not the hub's.)
    assert not [f for f in os.listdir(data_dir) if f.startswith("jupyterhub.sqlite")], os.listdir(data_dir)
    # The hub reads the password from the file; it is in no file the hub wrote.
    for name in os.listdir(pg_hub.workdir):
        path = pg_hub.workdir / name
        if path.is_file():
            assert pg.password not in path.read_text(errors="replace"), name


def test_a_hub_restart_keeps_users_and_groups(pg_hub, pg):
    token = admin_token(pg_hub)
    before_users = {u["name"] for u in api(pg_hub, token, "/users").json()}
    before_groups = {g["name"]: sorted(g["users"]) for g in api(pg_hub, token, "/groups").json()}
    assert "student1" in before_users and "students" in before_groups
    pg_hub.restart("hub")
    # The same token works: the hub's API tokens live in PostgreSQL too.
    after_users = {u["name"] for u in api(pg_hub, token, "/users").json()}
    after_groups = {g["name"]: sorted(g["users"]) for g in api(pg_hub, token, "/groups").json()}
    assert after_users == before_users
    assert after_groups == before_groups
    _, r = pg_hub.login("student2", "student2-pw")
    assert r.status_code == 302


def test_a_wrong_database_password_is_one_clear_error(slapd, pg, tmp_path):
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-password\n")
    config = pg_config(tmp_path, slapd, free_port(), pg, password_file=wrong)
    # The generous bound only turns a hang into a failure.
    proc = subprocess.run([sys.executable, "-m", "jupyterhub", "-f", str(HUB_CONFIG)], cwd=tmp_path,
                          env={**os.environ, "SLICERHUB_CONFIG": str(config)},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "hub.database.url: cannot connect to" in proc.stderr
    assert 'password authentication failed for user "slicerhub"' in proc.stderr
    assert "not-the-password" not in proc.stderr + proc.stdout
    cfg = yaml.safe_load(config.read_text())
    assert "password" not in cfg["hub"]["database"]["url"]
