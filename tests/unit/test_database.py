"""hub.database: the URL without a password, the password from a file at hub start."""

from __future__ import annotations

import json
import socket

import pytest

from slicerhub.config import ConfigError
from slicerhub.database import DatabaseError, check_connection, db_url, password_env
from slicerhub.traitlets_config import to_traitlets

from .helpers import demo_config, demo_data

URL = "postgresql+psycopg://slicerhub@127.0.0.1:5432/slicerhub"


def with_db(**database):
    data = demo_data()
    data.setdefault("hub", {})["database"] = database
    from slicerhub.config import parse_config

    return parse_config(data, "demo")


def test_default_is_sqlite_in_data_dir():
    cfg = demo_config()
    assert to_traitlets(cfg)["JupyterHub"]["db_url"] == f"sqlite:///{cfg.hub.data_dir}/jupyterhub.sqlite"
    assert password_env(cfg) == {}


def test_postgres_url_gets_a_connect_timeout_and_no_password(tmp_path):
    secret = tmp_path / "db-password"
    secret.write_text("s3cret-Pw\n")
    cfg = with_db(url=URL, password_file=str(secret), connect_timeout=7)
    traits = to_traitlets(cfg, tokens={"proxy": "p", "idle-culler": "c", "courses": "x", "sharing": "s"})
    assert traits["JupyterHub"]["db_url"] == URL + "?connect_timeout=7"
    # The password is read at hub start into the environment, never a traitlet.
    assert "s3cret-Pw" not in json.dumps(traits, default=str)
    assert password_env(cfg) == {"PGPASSWORD": "s3cret-Pw"}


def test_a_timeout_in_the_url_is_kept():
    cfg = with_db(url=URL + "?connect_timeout=3")
    assert db_url(cfg) == URL + "?connect_timeout=3"


@pytest.mark.parametrize(
    "database, expected",
    [
        ({"url": "postgresql+psycopg://slicerhub:hunter2@db/slicerhub"},
         "hub.database.url: must not carry a password (put it in hub.database.password_file)"),
        # libpq takes a password from the URL's parameters too.
        ({"url": "postgresql+psycopg://slicerhub@db/slicerhub?password=hunter2"},
         "hub.database.url: must not carry a password"),
        ({"url": "postgresql+psycopg://slicerhub@db/slicerhub?sslmode=require&PassFile=/tmp/hunter2"},
         "hub.database.url: must not carry a password"),
        ({"url": "postgresql://slicerhub@db/slicerhub"}, "hub.database.url: must start with postgresql+psycopg://"),
        ({"url": "mysql+pymysql://u@db/x"}, "hub.database.url: must start with postgresql+psycopg://"),
        ({"url": "not a url"}, "hub.database.url: not a database URL"),
        ({"url": "postgresql+psycopg://db/slicerhub"}, "hub.database.url: needs a user, a host and a database"),
        ({"password_file": "/run/x"}, "hub.database: password_file: only used with hub.database.url"),
        ({"url": URL, "connect_timeout": 0}, "hub.database.connect_timeout:"),
        ({"url": URL, "pasword_file": "/x"}, "hub.database.pasword_file: unknown field"),
    ],
)
def test_bad_database_settings_name_the_field(database, expected):
    with pytest.raises(ConfigError) as e:
        with_db(**database)
    assert any(m.startswith(expected) for m in e.value.messages), e.value.messages
    # A rejected URL may hold a password: it is never echoed back.
    assert "hunter2" not in str(e.value)


def test_unreadable_or_empty_password_file_names_the_field(tmp_path):
    with pytest.raises(DatabaseError, match=r"^hub.database.password_file: cannot read .*missing"):
        password_env(with_db(url=URL, password_file=str(tmp_path / "missing")))
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(DatabaseError, match=r"^hub.database.password_file: .* is empty"):
        password_env(with_db(url=URL, password_file=str(tmp_path / "empty")))


def test_unreachable_server_is_a_clear_error_not_a_hang():
    # A port nothing listens on: libpq's own "connection refused", at once.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = with_db(url=f"postgresql+psycopg://slicerhub@127.0.0.1:{port}/slicerhub", connect_timeout=2)
    with pytest.raises(DatabaseError, match=r"^hub.database.url: cannot connect to .*127.0.0.1"):
        check_connection(cfg, env={"PGPASSWORD": "x"})
