"""The hub's database at hub start: the password, and a first connection that fails clearly.

The deployment file names the database by a URL without a password
(`hub.database.url`) and, apart, a file holding the password
(`hub.database.password_file`). The password reaches libpq as PGPASSWORD in
the hub's own environment, set when the hub starts (jupyterhub_config.py):
it never appears in the traitlets that `slicerhub config traitlets` prints,
in the hub's log, or in the alembic ini file `jupyterhub upgrade-db` writes
(alembic runs as a child process and inherits the environment; a password in
`JupyterHub.db_kwargs` would not reach it). z2jh passes `hub.db.password` the
same way, so one mechanism serves both backends.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from slicerhub.config import SlicerHubConfig


class DatabaseError(RuntimeError):
    """The hub's database cannot be used; the message says why and which field to fix."""


def db_url(cfg: SlicerHubConfig) -> str:
    """The SQLAlchemy URL JupyterHub connects to (never with a password)."""
    db = cfg.hub.database
    if not db.url:
        return f"sqlite:///{Path(cfg.hub.data_dir) / 'jupyterhub.sqlite'}"
    from sqlalchemy.engine import make_url

    url = make_url(db.url)
    if "connect_timeout" not in url.query:
        # libpq waits forever for a host that drops packets; a hub that cannot
        # reach its database should say so and stop.
        url = url.update_query_dict({"connect_timeout": str(db.connect_timeout)})
    return url.render_as_string(hide_password=False)


def password_env(cfg: SlicerHubConfig) -> dict[str, str]:
    """{"PGPASSWORD": ...} read from hub.database.password_file, or {} if none is set."""
    db = cfg.hub.database
    if not (db.url and db.password_file):
        return {}
    try:
        password = Path(db.password_file).read_text(encoding="utf-8").strip("\r\n")
    except OSError as e:
        raise DatabaseError(f"hub.database.password_file: cannot read {db.password_file} ({e.strerror})") from None
    if not password:
        raise DatabaseError(f"hub.database.password_file: {db.password_file} is empty")
    return {"PGPASSWORD": password}


def check_connection(cfg: SlicerHubConfig, env: Mapping[str, str] | None = None) -> None:
    """Connect once, so a wrong password or an unreachable server is one clear line.

    JupyterHub itself logs only "Failed to connect to db" and suggests
    `upgrade-db` (the cause is at debug level). SQLite needs no check.
    """
    if not cfg.hub.database.url:
        return
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(db_url(cfg))
    env = os.environ if env is None else env
    try:
        psycopg.connect(
            host=url.host, port=url.port or 5432, user=url.username, dbname=url.database,
            password=env.get("PGPASSWORD"), **{k: v for k, v in url.query.items() if isinstance(v, str)},
        ).close()
    except psycopg.OperationalError as e:
        # libpq's message names the cause ("password authentication failed for
        # user ...", "Connection refused", "timeout expired"); it never holds the password.
        cause = " ".join(str(e).split())
        raise DatabaseError(
            f"hub.database.url: cannot connect to {url.render_as_string()} ({cause}); "
            "check hub.database.url and hub.database.password_file"
        ) from None


def connect_hub(cfg: SlicerHubConfig) -> None:
    """What a hub's configuration does before JupyterHub opens its database
    (hub_config/jupyterhub_config.py on one machine, slicerhub.incluster in the
    chart): the password reaches libpq, and the alembic child of
    `jupyterhub upgrade-db`, as PGPASSWORD (never as a traitlet); a first
    connection turns a wrong one into one line and exit status 2."""
    import sys

    try:
        os.environ.update(password_env(cfg))
        check_connection(cfg)
    except DatabaseError as e:
        print(f"SlicerHub: {e}", file=sys.stderr)
        raise SystemExit(2) from None
