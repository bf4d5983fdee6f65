"""Supervisor files for the processes in slicerhub.runtime.programs.

Both kinds only say `slicerhub run NAME --config FILE`: what each program
runs, and with which secrets, is decided when it starts, from the deployment
file as it is then. So a changed file applies on the next restart, and no
token is ever written into a unit.

- systemd (production on one machine, as The Littlest JupyterHub runs):
  one unit per program plus `slicerhub.target`, restart on failure.
- supervisord (`make demo` and the tests): the same programs, the same order.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Iterable, Sequence

TARGET = "slicerhub.target"


def unit_name(program: str) -> str:
    return f"slicerhub-{program}.service"


def _run(slicerhub: str, name: str, config: Path, hub_args: Sequence[str] = ()) -> list[str]:
    argv = [slicerhub, "run", name, "--config", str(config)]
    return argv + (["--", *hub_args] if hub_args else [])


def systemd_units(programs: Iterable, *, slicerhub: str, config: str | Path,
                  working_directory: str | Path) -> dict[str, str]:
    """{file name: text} for /etc/systemd/system."""
    config = Path(config).resolve()
    progs = list(programs)
    units: dict[str, str] = {}
    for p in progs:
        after = " ".join(unit_name(a) for a in p.after)
        deps = "network-online.target" + (" docker.service" if p.name == "hub" else "")
        lines = [
            "# Made by `slicerhub systemd`; edit the deployment file, not this unit.",
            "[Unit]",
            f"Description=SlicerHub {p.description}",
            f"After={deps} {after}".rstrip(),
            f"Wants={deps}",
            f"PartOf={TARGET}",
            # Restarting a crashed program is the point; never give up on it.
            "StartLimitIntervalSec=0",
            "",
            "[Service]",
            f"ExecStart={shlex.join(_run(slicerhub, p.name, config))}",
            f"WorkingDirectory={Path(working_directory).resolve()}",
            "Restart=always",
            "RestartSec=2",
            "TimeoutStopSec=30",
            # The hub stops on SIGTERM without stopping anyone's server
            # (cleanup_servers off); its whole group goes with it.
            "KillMode=mixed",
            "NoNewPrivileges=yes",
            "PrivateTmp=yes",
            "",
            "[Install]",
            f"WantedBy={TARGET}",
            "",
        ]
        units[unit_name(p.name)] = "\n".join(lines)
    units[TARGET] = "\n".join([
        "# Made by `slicerhub systemd`.",
        "[Unit]",
        "Description=SlicerHub (proxy, hub and services)",
        "Wants=" + " ".join(unit_name(p.name) for p in progs),
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ])
    return units


def supervisord_conf(names: Iterable[str], *, slicerhub: str, config: str | Path, workdir: str | Path,
                     hub_args: Sequence[str] = (), log_names: dict[str, str] | None = None) -> str:
    """A supervisord configuration running every program, logs under `workdir`."""
    workdir = Path(workdir).resolve()
    config = Path(config).resolve()
    log_names = log_names or {}
    out = [
        "; Made by slicerhub.devenv.stack; the same programs as the systemd units.",
        "[supervisord]",
        f"logfile={workdir / 'supervisord.log'}",
        f"pidfile={workdir / 'supervisord.pid'}",
        f"directory={workdir}",
        "nodaemon=true",
        "silent=true",
        "",
        "[unix_http_server]",
        f"file={workdir / 'supervisor.sock'}",
        "chmod=0700",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{workdir / 'supervisor.sock'}",
        "",
    ]
    for priority, name in enumerate(names, start=1):
        log = workdir / log_names.get(name, f"{name}.log")
        command = _run(slicerhub, name, config, hub_args if name == "hub" else ())
        out += [
            f"[program:{name}]",
            f"command={shlex.join(command)}",
            f"directory={workdir}",
            f"priority={priority * 10}",
            "autorestart=true",
            "startsecs=1",
            "startretries=100",
            "stopsignal=TERM",
            "stopwaitsecs=30",
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            f"stdout_logfile={log}",
            "stdout_logfile_maxbytes=0",
            "",
        ]
    return "\n".join(out)
