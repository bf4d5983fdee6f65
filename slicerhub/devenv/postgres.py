"""A throw-away PostgreSQL server on loopback for the tests and benchmarks.

Debian's `postgresql` package (scripts/install-system-deps.sh) provides the
binaries; the system cluster is neither created nor started. This harness
runs its own: `initdb` into a fresh directory, `postgres` listening on
127.0.0.1 on a free port (its Unix socket inside that directory), a login
role with a random password owning one database, scram-sha-256 on TCP so a
wrong password is refused as on a real server.

The server refuses to run as root; when we are root it runs as the
`postgres` system user (made by the package), else as `nobody`.

Usage::

    with Postgres() as pg:
        pg.url            # postgresql+psycopg://slicerhub@127.0.0.1:PORT/slicerhub
        pg.password_file  # the role's password, 0600, for hub.database.password_file
        pg.query("SELECT 1")

CLI (for a manual demo): ``python -m slicerhub.devenv.postgres`` prints the
URL and the password file and runs until Ctrl-C.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg

from slicerhub.devenv.daemon import ThrowAwayServer, serve_until_interrupted

SUPERUSER = "postgres"


class PostgresError(RuntimeError):
    """initdb or postgres failed; the message carries the end of its log."""


def bin_dir() -> Path:
    """Debian keeps the server programs in /usr/lib/postgresql/VERSION/bin (not on PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[4]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    raise PostgresError("PostgreSQL is not installed (run scripts/install-system-deps.sh: Debian's postgresql)")


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Postgres(ThrowAwayServer):
    stop_signal = signal.SIGINT  # "fast" shutdown: roll back, close, checkpoint
    stop_timeout = 60

    def __init__(self, *, user: str = "slicerhub", database: str = "slicerhub", host: str = "127.0.0.1",
                 port: int = 0, settings: dict[str, str] | None = None) -> None:
        self.user = user
        self.database = database
        self.host = host
        self.port = port or _free_port(host)
        self._admin_password = secrets.token_urlsafe(18)
        self.settings = settings or {}
        super().__init__(tag="pg", account="postgres", error_class=PostgresError, log_name="postgres.log")
        self.data_dir = self.workdir / "data"

    # -- URLs ----------------------------------------------------------------

    @property
    def url(self) -> str:
        """hub.database.url: no password in it."""
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{self.database}"

    def connect(self, *, admin: bool = False, password: str | None = None, **kw: Any) -> psycopg.Connection:
        return psycopg.connect(
            host=self.host, port=self.port, connect_timeout=10,
            user=SUPERUSER if admin else self.user,
            dbname=self.database if not admin else "postgres",
            password=password or (self._admin_password if admin else self.password), **kw,
        )

    def query(self, sql: str, params: Any = None) -> list[tuple]:
        """Rows of one statement, as the hub's role, in the hub's database."""
        with self.connect() as conn:
            return conn.execute(sql, params).fetchall()

    # -- lifecycle -------------------------------------------------------------

    def _initdb(self) -> None:
        pwfile = self.workdir / "initdb-pw"
        pwfile.write_text(self._admin_password + "\n")
        if self._account:
            os.chown(self.workdir, self._account.pw_uid, self._account.pw_gid)
            os.chown(pwfile, self._account.pw_uid, self._account.pw_gid)
        os.chmod(pwfile, 0o600)
        proc = self._popen(
            [str(bin_dir() / "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER, f"--pwfile={pwfile}",
             "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "--encoding=UTF8", "--no-locale"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        out, _ = proc.communicate()
        pwfile.unlink()
        if proc.returncode != 0:
            raise PostgresError(f"initdb failed ({proc.returncode}):\n{out[-3000:]}")

    def start(self) -> "Postgres":
        if self._proc is not None:
            return self
        if not self.data_dir.exists():
            self._initdb()
        self._log_fh = open(self.log_path, "ab")
        argv = [str(bin_dir() / "postgres"), "-D", str(self.data_dir), "-p", str(self.port),
                "-c", f"listen_addresses={self.host}", "-c", f"unix_socket_directories={self.workdir}"]
        for key, value in self.settings.items():
            argv += ["-c", f"{key}={value}"]
        self._proc = self._popen(argv, stdout=self._log_fh, stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_ready()
        self._create_role_and_database()
        return self

    def _wait_ready(self) -> None:
        # Bounded by the server itself: it either answers or exits (with its
        # reason in the log); the deadline only catches a wedged start.
        deadline = time.monotonic() + 120
        while True:
            if self._proc.poll() is not None:
                raise PostgresError(f"postgres exited ({self._proc.returncode}):\n{self._log_tail()}")
            try:
                self.connect(admin=True).close()
                return
            except psycopg.OperationalError as e:
                if "password authentication failed" in str(e):
                    raise
                if time.monotonic() > deadline:
                    raise PostgresError(f"postgres did not answer on {self.host}:{self.port}:\n{self._log_tail()}")
                time.sleep(0.1)

    def _create_role_and_database(self) -> None:
        from psycopg import sql

        with self.connect(admin=True, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (self.user,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(self.user), sql.Literal(self.password)))
                conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(self.database), sql.Identifier(self.user)))
        self._write_password_file()


def main() -> None:
    with Postgres() as pg:
        print(f"hub.database.url: {pg.url}\nhub.database.password_file: {pg.password_file}", flush=True)
        serve_until_interrupted()


if __name__ == "__main__":
    main()
