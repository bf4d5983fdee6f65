"""The deployment's processes under supervisord: how the demo, the tests and
the benchmarks run SlicerHub, with the same programs (slicerhub.runtime) as
the production systemd units.

    stack = Stack(workdir, config_path).start()   # proxy, hub, services
    stack.restart("hub")                          # graceful: SIGTERM, start again
    stack.kill("hub")                             # SIGKILL; supervisord restarts it
    stack.stop()                                  # everything, no process left
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import xmlrpc.client
from pathlib import Path
from typing import Sequence

import requests
from supervisor.xmlrpc import SupervisorTransport

from ..config import load_config
from ..runtime.launch import slicerhub_command
from ..runtime.programs import programs
from ..runtime.units import supervisord_conf
from ..wait import wait_for

ROOT = Path(__file__).resolve().parents[2]


def stop_leftover(workdir: Path) -> None:
    """A supervisord of this workdir left by a killed caller: stop it (and so
    everything it runs) instead of failing on busy ports."""
    workdir = Path(workdir).resolve()
    try:
        pid = int((workdir / "supervisord.pid").read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except (OSError, ValueError):
        return
    if "supervisord" not in cmdline or str(workdir / "supervisord.conf") not in cmdline:
        return  # a stale pid file: that number belongs to someone else now
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not Path(f"/proc/{pid}").exists(), 60, interval=0.2, what="the old supervisord to stop")


class Stack:
    """SlicerHub on this machine, from a deployment file, logs under `workdir`.

    The hub's log is `workdir/jupyterhub.log`, each other program's
    `workdir/<name>.log`. `env` is added to every program's environment;
    `hub_args` are extra `jupyterhub` options.
    """

    def __init__(self, workdir: Path, config: Path, *, env: dict[str, str] | None = None,
                 hub_args: Sequence[str] = ()):
        self.workdir = Path(workdir).resolve()
        self.config = Path(config).resolve()
        self.cfg = load_config(self.config)
        self.url = self.cfg.hub.bind_url.rstrip("/")
        self.log_path = self.workdir / "jupyterhub.log"
        self.env = dict(env or {})
        self.hub_args = list(hub_args)
        self.proc: subprocess.Popen | None = None
        # Names only (no secrets, no network): what supervisord will run.
        self.names = list(programs(self.cfg, config_path=self.config, python=sys.executable,
                                   hub_ip="127.0.0.1", proxy="configurable-http-proxy"))

    # --- supervisord ---------------------------------------------------------

    @property
    def conf_path(self) -> Path:
        return self.workdir / "supervisord.conf"

    def _rpc(self):
        transport = SupervisorTransport(None, None, f"unix://{self.workdir / 'supervisor.sock'}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor

    def info(self, name: str) -> dict:
        """supervisord's view of one program: statename, pid, ..."""
        return self._rpc().getProcessInfo(name)

    def pid(self, name: str) -> int:
        return self.info(name)["pid"]

    def _all_running(self) -> bool:
        try:
            return all(p["statename"] == "RUNNING" for p in self._rpc().getAllProcessInfo())
        except (OSError, xmlrpc.client.Fault):
            return False

    def hub_healthy(self) -> bool:
        try:
            return requests.get(self.url + "/hub/health", timeout=5).ok
        except requests.RequestException:
            return False

    def start(self, timeout: float = 120) -> "Stack":
        self.workdir.mkdir(parents=True, exist_ok=True)
        stop_leftover(self.workdir)
        self.conf_path.write_text(supervisord_conf(
            self.names, slicerhub=slicerhub_command(),
            config=self.config, workdir=self.workdir, hub_args=self.hub_args,
            log_names={"hub": self.log_path.name}))
        env = {
            **os.environ,
            # configurable-http-proxy from package.json, the venv's programs.
            "PATH": os.pathsep.join([str(ROOT / "node_modules" / ".bin"), str(Path(sys.executable).parent),
                                     os.environ.get("PATH", "")]),
            "PYTHONUNBUFFERED": "1",
            # Every process of this stack inherits it: how tests find strays.
            "SLICERHUB_STACK": str(self.workdir),
            **self.env,
        }
        log = open(self.workdir / "supervisord.out", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "supervisor.supervisord", "-c", str(self.conf_path)],
            cwd=self.workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
            # Its own session: a Ctrl-C in the terminal reaches only our caller,
            # which stops the stack once, in order.
            start_new_session=True,
        )
        log.close()
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self, timeout: float = 120) -> None:
        """Every program running and the hub answering through the proxy."""
        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"supervisord exited ({self.proc.returncode}):\n{self.log_tail()}")
            return self._all_running() and self.hub_healthy()

        try:
            wait_for(ready, timeout, interval=0.3, what="the hub and its services")
        except AssertionError as e:
            raise RuntimeError(f"{e}:\n{self.log_tail()}") from None

    def restart(self, name: str, timeout: float = 120) -> None:
        """Stop a program (SIGTERM, as `systemctl restart` does) and start it again."""
        self.stop_program(name)
        self.start_program(name, timeout)

    def stop_program(self, name: str) -> None:
        """Stop one program (SIGTERM) and keep it stopped: an outage of that part."""
        self._rpc().stopProcess(name, True)

    def start_program(self, name: str, timeout: float = 120) -> None:
        self._rpc().startProcess(name, True)
        self.wait_ready(timeout)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> int:
        """Kill a program as a crash or the OOM killer would; supervisord
        brings it back by itself. Returns the killed pid."""
        pid = self.pid(name)
        os.kill(pid, sig)
        return pid

    def stop(self, timeout: float = 60) -> None:
        """Stop every program (reverse start order) and supervisord itself."""
        if not self.proc:
            return
        try:
            pids = [p["pid"] for p in self._rpc().getAllProcessInfo() if p["pid"]]
        except (OSError, xmlrpc.client.Fault):
            pids = []
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        # Nothing of ours may outlive the stack, whatever went wrong above:
        # supervisord puts each program in a process group of its own.
        for pgid in [self.proc.pid, *pids]:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.proc.wait()

    def log_tail(self, n: int = 60, name: str = "hub") -> str:
        path = self.log_path if name == "hub" else self.workdir / f"{name}.log"
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def __enter__(self) -> "Stack":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
