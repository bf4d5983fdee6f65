"""`make demo`: the whole platform on one machine with its embedded defaults.

Starts the demo LDAP directory (hub_config/demo-directory.yaml), makes sure the
Docker engine and the user image are there, starts a site PACS (a real
Orthanc with DICOMweb on 127.0.0.1, seeded with one CT + MR study of the MNI
template), then runs the proxy, JupyterHub and its services with
hub_config/demo.yaml plus a `pacs:` section for that Orthanc under
supervisord, the way a production machine runs them under systemd, and shows
the hub's log. Ctrl-C stops everything it started (users' containers and the
PACS too); running it again reuses the directory, images, volumes and hub
database, and seeds a fresh PACS (Orthanc keeps nothing between runs).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import yaml

from ..config import ConfigError, parse_config
from ..dicom.demo_study import Study, make_study
from ..dicom.stow import store
from .docker_engine import ensure_docker_engine
from .images import build_with_parents, ensure_base_image
from .ldap import Directory, Slapd
from .orthanc import Orthanc
from .stack import Stack, stop_leftover

ROOT = Path(__file__).resolve().parents[2]
VAR = ROOT / "var"
# Hub groups (synced from the demo directory) who may open the PACS's studies.
PACS_GROUPS = ["teachers", "slicerhub-admins"]


def say(msg: str) -> None:
    print(f"==> {msg}", flush=True)


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def demo_config(port: int, ldap_port: int, pacs: Orthanc | None = None, path: Path | None = None) -> Path:
    """The demo deployment with the chosen ports, written to PATH (default
    var/demo/slicerhub.yaml); with PACS, a `pacs:` section for that Orthanc
    (hub_config/demo.yaml has none: the tests' hubs derived from it run without)."""
    data = yaml.safe_load((ROOT / "hub_config" / "demo.yaml").read_text())
    data["hub"]["bind_url"] = f"http://127.0.0.1:{port}"
    data["hub"]["data_dir"] = str(VAR / "hub")
    data["courses"]["root"] = str(VAR / "courses")
    data["ldap"]["port"] = ldap_port
    if pacs is not None:
        data["pacs"] = {"dicomweb_url": pacs.dicomweb_url, "username": pacs.username,
                        "password_file": str(pacs.password_file), "groups": PACS_GROUPS}
    parse_config(data, "hub_config/demo.yaml")  # fail here, not inside the hub
    path = path or VAR / "demo" / "slicerhub.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def site_pacs() -> tuple[Orthanc, Study]:
    """A started Orthanc on 127.0.0.1 (the gateway runs on this machine; user
    servers reach the PACS through it only) holding the demo study. The
    caller cleans it up (stops it and removes its files)."""
    study = make_study()
    pacs = Orthanc(host="127.0.0.1", settings={"Name": "SlicerHub demo PACS"})
    try:
        pacs.start()
        store(pacs.dicomweb_url, pacs.auth, study.datasets)
    except BaseException:
        pacs.cleanup()
        raise
    return pacs, study


def pacs_banner(hub_url: str, pacs: Orthanc, study: Study) -> str:
    open_link = f"{hub_url}/services/pacs/open?{urlencode({'study': study.uid})}"
    return "\n".join([
        f"  Site PACS (Orthanc, {pacs.dicomweb_url}; open to {', '.join(PACS_GROUPS)}):\n",
        f"    studies:               {hub_url}/services/pacs/",
        f"    Open in SlicerHub:     {open_link}",
        f"    (the demo study: CT series {study.ct_series}, MR series {study.mr_series})",
    ])


def accounts_table(directory: Directory) -> str:
    roles = {uid: [g for g, members in directory.groups.items() if uid in members] for uid in
             (u.uid for u in directory.users)}
    lines = ["    username     password         groups"]
    for u in directory.users:
        lines.append(f"    {u.uid:<12} {u.password:<16} {', '.join(roles[u.uid])}")
    return "\n".join(lines)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8000)))
    parser.add_argument("--ldap-port", type=int, default=int(os.environ.get("LDAP_PORT", 3389)))
    args = parser.parse_args(argv)
    # `kill`, `docker stop` and systemd send SIGTERM: stop as cleanly as on Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)

    stop_leftover(VAR / "demo")  # from a demo that was killed, not stopped
    for name, port, var in (("hub", args.port, "PORT"), ("LDAP directory", args.ldap_port, "LDAP_PORT")):
        if not port_free(port):
            print(f"Port {port} for the {name} is in use; choose another: make demo {var}=<port>", file=sys.stderr)
            return 1

    VAR.mkdir(exist_ok=True)
    say("Docker engine")
    ensure_docker_engine(VAR / "log")
    say("User image slicerhub/slicer-core:dev (with slicerhub/base:dev under it)")
    ensure_base_image()
    build_with_parents("slicer-core")

    say("Site PACS: Orthanc with DICOMweb on 127.0.0.1, seeded with a CT and an MR series (STOW-RS)")
    try:
        pacs, study = site_pacs()
    except KeyboardInterrupt:
        return 0
    try:
        return run(args, pacs, study)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        say("Stopping the site PACS")
        pacs.cleanup()


def run(args: argparse.Namespace, pacs: Orthanc, study: Study) -> int:
    """The directory, the hub and its services, until Ctrl-C; PACS is running."""
    try:
        config = demo_config(args.port, args.ldap_port, pacs)
    except ConfigError as e:
        print("\n  ".join([f"{e.source} is not valid:", *e.messages]), file=sys.stderr)
        return 2

    directory = Directory.from_yaml(ROOT / "hub_config" / "demo-directory.yaml")
    say(f"Demo LDAP directory on ldap://127.0.0.1:{args.ldap_port}")
    ldap = Slapd(VAR / "ldap", directory, port=args.ldap_port)
    ldap.start()
    # The proxy, the hub and its services as separate supervised processes,
    # as in production (slicerhub.runtime): `kill -9` of the hub is survived.
    stack = Stack(VAR / "demo", config)
    try:
        say(f"Proxy, JupyterHub and services (logs in {stack.workdir.relative_to(ROOT)}/)")
        stack.start()
        say(f"SlicerHub on {stack.url} (Ctrl-C stops the demo)")
        print("\n  Demo accounts (for this demo only; never use them elsewhere):\n")
        print(accounts_table(directory) + "\n", flush=True)
        print(pacs_banner(stack.url, pacs, study) + "\n", flush=True)
        follow(stack)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        # A second Ctrl-C must not orphan anything.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()
        stop_user_containers(yaml.safe_load(config.read_text()))
        ldap.stop()


def follow(stack: Stack) -> None:
    """Show the hub's log as it grows, until Ctrl-C (or supervisord ends)."""
    with open(stack.log_path, errors="replace") as log:
        while stack.proc.poll() is None:
            line = log.readline()
            if line:
                print(line, end="", flush=True)
            else:
                time.sleep(0.3)


def stop_user_containers(data: dict) -> None:
    """The demo leaves nothing running: its users' containers stop too (homes
    are volumes and stay). A real deployment keeps them across hub restarts."""
    import docker

    prefix = data["backend"]["docker"].get("container_prefix", "slicerhub") + "-"
    try:
        client = docker.from_env()
        for c in client.containers.list(filters={"label": "org.slicerhub.user"}):
            if c.name.startswith(prefix):
                say(f"Stopping {c.name}")
                c.stop(timeout=10)
    except docker.errors.DockerException as e:
        print(f"could not stop the demo's containers: {e}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
