"""A throw-away Orthanc (a real PACS with DICOMweb) for the tests, benchmarks and demo.

Debian's `orthanc` and `orthanc-dicomweb` packages (scripts/install-system-deps.sh)
provide the server and the plugin; the system service is neither configured
nor started. This harness runs its own: a configuration of its own in a fresh
directory (storage, index and temporary files there), HTTP basic auth on with
one user and a random password, the DICOMweb plugin and no other (the
`Plugins` entry is the one .so file, not the plugin folder other packages put
theirs in), DICOMweb at /dicom-web/, the DICOM port off unless asked for.

Orthanc 1.10 has no bind-address setting: its HTTP server listens on every
interface. `host` is the address clients are told (the URL); for a loopback
host Orthanc refuses connections from anywhere else (RemoteAccessAllowed
false), for any other host ("0.0.0.0", a Docker network's gateway address, so
containers can reach it) remote access is allowed, still behind basic auth.

When we are root it runs as the `orthanc` system user (made by the package),
else as `nobody`.

Usage::

    with Orthanc() as pacs:
        pacs.url            # http://127.0.0.1:PORT (REST API, Orthanc Explorer)
        pacs.dicomweb_url   # http://127.0.0.1:PORT/dicom-web (QIDO-RS, WADO-RS, STOW-RS)
        pacs.username, pacs.password
        pacs.password_file  # the password, 0600, for the DICOMweb gateway
        pacs.get("/statistics").json()

CLI (for a manual demo): ``python -m slicerhub.devenv.orthanc [--host H]
[--port P] [--seed]`` prints the URLs and the password file and runs until
Ctrl-C; --seed stores the demo's study (slicerhub.dicom.demo_study: a CT and
an MR series made from the MNI152 template).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

import requests

from slicerhub.devenv.daemon import ThrowAwayServer, is_loopback, serve_until_interrupted
from slicerhub.wait import wait_for

ORTHANC_BIN = Path("/usr/sbin/Orthanc")
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
DICOMWEB_ROOT = "/dicom-web/"


class OrthancError(RuntimeError):
    """Orthanc failed to start or answer; the message carries the end of its log."""


def _free_port() -> int:
    # Orthanc listens on every interface, so the port must be free on all of them.
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


class Orthanc(ThrowAwayServer):
    stop_signal = signal.SIGTERM
    stop_timeout = 30

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, dicom_port: int | None = None,
                 username: str = "slicerhub", settings: dict[str, Any] | None = None) -> None:
        """dicom_port: None keeps the DICOM (DIMSE) server off, 0 picks a free port.
        settings: extra top-level Orthanc configuration keys, applied last."""
        for path, package in ((ORTHANC_BIN, "orthanc"), (DICOMWEB_PLUGIN, "orthanc-dicomweb")):
            if not path.exists():
                raise OrthancError(f"{path} is missing (run scripts/install-system-deps.sh: Debian's {package})")
        self.host = host
        self.port = port or _free_port()
        self.dicom_port = None if dicom_port is None else (dicom_port or _free_port())
        self.username = username
        self.settings = settings or {}
        super().__init__(tag="orthanc", account="orthanc", error_class=OrthancError, log_name="orthanc.log")
        self.config_path = self.workdir / "orthanc.json"

    # -- URLs and requests -----------------------------------------------------

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def dicomweb_url(self) -> str:
        return self.url + DICOMWEB_ROOT.rstrip("/")

    @property
    def auth(self) -> tuple[str, str]:
        return (self.username, self.password)

    def session(self) -> requests.Session:
        """A requests session with the basic-auth credentials (for DICOMwebClient too)."""
        s = requests.Session()
        s.auth = self.auth
        return s

    def get(self, path: str, **kw: Any) -> requests.Response:
        """GET on Orthanc's REST API (path from the root, e.g. "/system"), authenticated."""
        kw.setdefault("timeout", 30)
        kw.setdefault("auth", self.auth)
        return requests.get(self.url + path, **kw)

    # -- lifecycle ---------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        work = self.workdir
        conf: dict[str, Any] = {
            "Name": "SlicerHub test PACS",
            "StorageDirectory": str(work / "storage"),
            "IndexDirectory": str(work / "index"),
            "TemporaryDirectory": str(work / "tmp"),
            "Plugins": [str(DICOMWEB_PLUGIN)],
            "LuaScripts": [],
            "HttpServerEnabled": True,
            "HttpPort": self.port,
            "HttpDescribeErrors": True,
            "RemoteAccessAllowed": not is_loopback(self.host),
            "AuthenticationEnabled": True,
            "RegisteredUsers": {self.username: self.password},
            "DicomServerEnabled": self.dicom_port is not None,
            "DicomAet": "SLICERHUB",
            "DicomPort": self.dicom_port or 4242,
            "DicomModalities": {},
            "OrthancPeers": {},
            "SaveJobs": False,
            # A throw-away store: no fsync after each instance.
            "SyncStorageArea": False,
            "DicomWeb": {
                "Enable": True,
                "Root": DICOMWEB_ROOT,
                "EnableWado": True,
                "WadoRoot": "/wado",
                "Ssl": False,
            },
        }
        conf.update(self.settings)
        return conf

    def _write_config(self) -> None:
        for name in ("storage", "index", "tmp"):
            (self.workdir / name).mkdir(exist_ok=True)
        fd = os.open(self.config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(self.config(), fh, indent=2)
        if self._account:
            uid, gid = self._account.pw_uid, self._account.pw_gid
            for path in (self.workdir, self.config_path, *(self.workdir / n for n in ("storage", "index", "tmp"))):
                os.chown(path, uid, gid)
        self._write_password_file()

    def start(self) -> "Orthanc":
        if self._proc is not None:
            return self
        self._write_config()
        self._log_fh = open(self.log_path, "ab")
        self._proc = self._popen([str(ORTHANC_BIN), str(self.config_path)],
                                 stdout=self._log_fh, stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_ready()
        return self

    def _answers(self) -> bool:
        if self._proc.poll() is not None:
            raise OrthancError(f"Orthanc exited ({self._proc.returncode}):\n{self._log_tail()}")
        try:
            r = self.get("/system", timeout=5)
        except (requests.ConnectionError, requests.Timeout):
            return False
        if r.status_code != 200:
            raise OrthancError(f"GET /system answered {r.status_code}:\n{self._log_tail()}")
        return True

    def _wait_ready(self) -> None:
        # Bounded by the server itself: it either answers or exits (with its
        # reason in the log); the timeout only catches a wedged start.
        try:
            wait_for(self._answers, timeout=60, interval=0.1, what=f"Orthanc on {self.url}")
        except AssertionError as e:
            raise OrthancError(f"{e}:\n{self._log_tail()}") from None
        # "explorer.js" is Orthanc Explorer's own entry, not a plugin.
        plugins = sorted(set(self.get("/plugins").json()) - {"explorer.js"})
        if plugins != ["dicom-web"]:
            raise OrthancError(f"expected only the dicom-web plugin, Orthanc loaded {plugins}:\n{self._log_tail()}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m slicerhub.devenv.orthanc", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address clients use (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="HTTP port (default: a free one)")
    parser.add_argument("--seed", action="store_true", help="store a CT and an MR series of the MNI152 template")
    args = parser.parse_args(argv)
    with Orthanc(host=args.host, port=args.port) as pacs:
        if args.seed:
            from slicerhub.dicom.demo_study import make_study
            from slicerhub.dicom.stow import store

            study = make_study()
            store(pacs.dicomweb_url, pacs.auth, study.datasets)
            print(f"seeded study {study.uid} (CT {len(study.ct)} slices, MR {len(study.mr)} slices)", flush=True)
        print(f"Orthanc: {pacs.url}\nDICOMweb: {pacs.dicomweb_url}\nuser: {pacs.username}\n"
              f"password_file: {pacs.password_file}", flush=True)
        serve_until_interrupted()


if __name__ == "__main__":
    main()
