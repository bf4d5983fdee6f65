"""Make sure a Docker engine answers on this machine.

``ensure_docker_engine(log_dir)`` returns at once when ``docker info`` works.
Otherwise, when running as root, it installs Debian's ``docker.io`` if
``dockerd`` is missing, starts ``dockerd`` detached in the background (its
output goes to ``log_dir/dockerd.log``) and waits for it to answer.

CLI::

    python -m slicerhub.devenv.docker_engine     # logs to <repo>/var/log/
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 60.0


def _say(msg: str) -> None:
    print(f"==> {msg}", flush=True)


def docker_info_ok(timeout: float = 20.0) -> bool:
    """True when the docker CLI is present and the engine answers."""
    if shutil.which("docker") is None:
        return False
    try:
        proc = subprocess.run(
            ["docker", "info"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def _find_dockerd() -> str | None:
    found = shutil.which("dockerd")
    if found:
        return found
    for candidate in ("/usr/sbin/dockerd", "/usr/bin/dockerd"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _apt_install_docker() -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    _say("dockerd not found; installing docker.io with apt-get")
    for cmd in (
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "--no-install-recommends", "docker.io"],
    ):
        _say(" ".join(cmd))
        proc = subprocess.run(cmd, env=env, check=False)
        if proc.returncode != 0:
            raise RuntimeError(
                f"`{' '.join(cmd)}` failed with exit status {proc.returncode}; "
                "cannot install the Docker engine (package docker.io)"
            )


def _start_dockerd(dockerd: str, log_file: Path) -> subprocess.Popen:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    _say(f"starting {dockerd} in the background (log: {log_file})")
    with open(log_file, "ab") as log:
        return subprocess.Popen(
            [dockerd],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )


def ensure_docker_engine(log_dir: Path) -> None:
    """Return once ``docker info`` works, starting the engine if needed.

    Raises RuntimeError when no engine can be had.
    """
    if docker_info_ok():
        _say("Docker engine is running")
        return

    if os.geteuid() != 0:
        raise RuntimeError(
            "No Docker engine answers (`docker info` failed) and this process is "
            "not root, so it cannot start one. Install and start Docker "
            "(e.g. `sudo apt-get install docker.io && sudo systemctl start docker`, "
            "or Docker Engine from https://docs.docker.com/engine/install/), and "
            "make sure your user may use it (e.g. member of the `docker` group)."
        )

    dockerd = _find_dockerd()
    if dockerd is None:
        _apt_install_docker()
        dockerd = _find_dockerd()
        if dockerd is None:
            raise RuntimeError("docker.io was installed but no dockerd executable was found")
    if shutil.which("docker") is None:
        raise RuntimeError(
            f"{dockerd} is present but the docker CLI is not on PATH; install docker.io"
        )

    log_file = Path(log_dir).resolve() / "dockerd.log"
    proc = _start_dockerd(dockerd, log_file)

    _say(f"waiting up to {START_TIMEOUT_S:.0f} s for the Docker engine")
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if docker_info_ok(timeout=10.0):
            _say(f"Docker engine is up (dockerd pid {proc.pid})")
            return
        if proc.poll() is not None:
            # It may have exited because another dockerd grabbed the socket
            # meanwhile; give `docker info` one last chance.
            if docker_info_ok(timeout=10.0):
                _say("Docker engine is up")
                return
            raise RuntimeError(
                f"dockerd exited with status {proc.returncode} before the engine "
                f"answered; see {log_file}"
            )
        time.sleep(1.0)
    raise RuntimeError(
        f"dockerd (pid {proc.pid}) did not answer `docker info` within "
        f"{START_TIMEOUT_S:.0f} s; see {log_file}"
    )


def main(argv: list[str] | None = None) -> int:
    del argv
    try:
        ensure_docker_engine(REPO_ROOT / "var" / "log")
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
