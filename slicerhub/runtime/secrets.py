"""Tokens the separately run processes share, kept in files under the hub's data dir.

The proxy's API token and each service's hub API token must be the same for
the hub and for the process on the other side, across restarts, without
ever being written into a config file, a unit file or a log. Each is a file
of its own (0600, in a 0700 directory), made once by whichever process needs
it first.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

PROXY = "proxy-auth-token"


def service_token_name(service: str) -> str:
    return f"service-{service}-token"


class Secrets:
    def __init__(self, data_dir: str | os.PathLike):
        self.dir = Path(data_dir).resolve() / "secrets"

    def get(self, name: str) -> str:
        """The secret called `name`, made (32 random bytes, hex) if it does not exist yet."""
        path = self.dir / name
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            pass
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.dir, 0o700)
        value = secrets.token_hex(32)
        tmp = self.dir / f".{name}.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(value + "\n")
        try:
            # Two processes starting at once: the first link wins, both read it.
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
        return path.read_text().strip()

    def proxy_token(self) -> str:
        return self.get(PROXY)

    def service_token(self, service: str) -> str:
        return self.get(service_token_name(service))
