"""What the throw-away servers (Orthanc, PostgreSQL) share: the account they
run as and their lifecycle, so stopping and cleaning up behave the same in each.
"""

from __future__ import annotations

import ipaddress
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import IO, Any, ClassVar, Self


def is_loopback(host: str) -> bool:
    """True for "localhost" and loopback addresses (v4 or v6); names are not resolved."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def service_account(preferred: str, error_class: type[Exception]) -> pwd.struct_passwd | None:
    """The account a server runs as: ours (None) unless we are root, then
    `preferred` (the package's system user) or else `nobody`; servers refuse
    root, or should not have it."""
    if os.geteuid() != 0:
        return None
    for name in (preferred, "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise error_class(f"running as root and neither {_a(preferred)} '{preferred}' nor a 'nobody' user exists")


def serve_until_interrupted() -> None:
    """For the harnesses' CLIs: keep the server up until Ctrl-C (then the `with` cleans up)."""
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass


def _a(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


class ThrowAwayServer:
    """A server process with directories of its own, removed with it.

    Subclasses implement start() (setting _proc and _log_fh); stop_signal is
    the server's own clean shutdown, stop_timeout how long it may take."""

    stop_signal: ClassVar[signal.Signals] = signal.SIGTERM
    stop_timeout: ClassVar[float] = 30

    def __init__(self, *, tag: str, account: str, error_class: type[Exception], log_name: str) -> None:
        self._account = service_account(account, error_class)
        # A directory of our own under /tmp: a root-only parent (pytest's
        # tmp_path) would not let the server's user in.
        self.workdir = Path(tempfile.mkdtemp(prefix=f"slicerhub-{tag}-"))
        self.log_path = self.workdir / log_name
        # The clients' random password; its file lies outside the server's
        # directory, readable by us only (for the hub, the DICOMweb gateway).
        self._secrets = Path(tempfile.mkdtemp(prefix=f"slicerhub-{tag}-secret-"))
        self.password = secrets.token_urlsafe(18)
        self.password_file = self._secrets / "password"
        self._proc: subprocess.Popen | None = None
        self._log_fh: IO[bytes] | None = None

    def start(self) -> Self:
        raise NotImplementedError

    def _popen(self, argv: list[str], **kw: Any) -> subprocess.Popen:
        """Run argv as the server's account in its directory, with a minimal environment."""
        acct = self._account
        extra = {"user": acct.pw_uid, "group": acct.pw_gid, "extra_groups": []} if acct else {}
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", "HOME": str(self.workdir)}
        return subprocess.Popen(argv, env=env, cwd=self.workdir, **extra, **kw)

    def _write_password_file(self) -> None:
        fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(self.password + "\n")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(self.stop_signal)
            try:
                proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
        shutil.rmtree(self._secrets, ignore_errors=True)

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.cleanup()
            raise

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def _log_tail(self) -> str:
        """The end of the server's log, for error messages."""
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""
