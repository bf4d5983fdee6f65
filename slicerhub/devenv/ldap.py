"""A real, throw-away OpenLDAP server for the demo and the integration tests.

Everything lives under one work directory; nothing of the system slapd
(``/etc/ldap/slapd.d``, ``/var/lib/ldap``, ``/var/run/slapd``) is read or
written, apart from the schema files under ``/etc/ldap/schema``::

    WORKDIR/
        slapd.d/        cn=config, built once with ``slapadd -n0``
        data/           the mdb database, seeded once with ``slapadd``
        harness.json    suffix and admin (rootdn) password, mode 0600
        slapd.pid, slapd.args, slapd.log

Usage::

    directory = Directory.from_yaml("hub_config/demo-directory.yaml")
    with Slapd(Path("/tmp/ldap"), directory) as server:
        print(server.uri)          # ldap://127.0.0.1:PORT

``Slapd.pause()`` / ``resume()`` send SIGSTOP / SIGCONT: while paused the
kernel still accepts TCP connections on the port, but nothing answers.

The seed is loaded offline (``slapadd``) only while the data directory is
empty, so ``stop()`` / ``start()`` and a new ``Slapd`` on the same work
directory keep whatever was written to the server.

Groups are ``groupOfNames`` under ``ou=groups``; that object class needs at
least one ``member``, so an empty group gets the rootdn (``cn=admin,SUFFIX``,
which is not an entry) as a placeholder member.

CLI::

    python -m slicerhub.devenv.ldap --seed hub_config/demo-directory.yaml \
        --workdir var/ldap --port 3890

Standard library only; PyYAML is needed only by ``Directory.from_yaml``.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import hashlib
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path

SCHEMA_DIR = Path("/etc/ldap/schema")
SCHEMAS = ("core", "cosine", "nis", "inetorgperson")
MODULE_PATH = "/usr/lib/ldap"
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SEED = REPO_ROOT / "hub_config" / "demo-directory.yaml"


class SlapdError(RuntimeError):
    """slapd (or one of the offline slap tools) failed."""


# --------------------------------------------------------------------------
# small helpers: passwords, DNs, LDIF
# --------------------------------------------------------------------------


def ssha(password: str, salt: bytes | None = None) -> str:
    """``{SSHA}`` hash of *password* as OpenLDAP checks it (salted SHA-1)."""
    salt = secrets.token_bytes(8) if salt is None else salt
    digest = hashlib.sha1(password.encode("utf-8") + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode("ascii")


def escape_rdn_value(value: str) -> str:
    """Escape an attribute value for use in a DN (RFC 4514, section 2.4)."""
    out = []
    for i, ch in enumerate(value):
        if ch in ',+"\\<>;=':
            out.append("\\" + ch)
        elif ch == "\0":
            out.append("\\00")
        elif (i == 0 and ch in " #") or (i == len(value) - 1 and ch == " "):
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def _ldif_safe(value: str) -> bool:
    # RFC 2849 SAFE-STRING: ASCII, no NUL/CR/LF, no leading space, colon or
    # "<", no trailing space.
    if not value:
        return True
    if value[0] in " :<" or value[-1] == " ":
        return False
    return all(0 < ord(ch) < 128 and ch not in "\r\n" for ch in value)


def _ldif_attr(name: str, value: str) -> str:
    if _ldif_safe(value):
        return f"{name}: {value}"
    return f"{name}:: {base64.b64encode(value.encode('utf-8')).decode('ascii')}"


def _ldif_entry(dn: str, attrs: list[tuple[str, str]]) -> str:
    lines = [_ldif_attr("dn", dn)]
    lines += [_ldif_attr(name, value) for name, value in attrs]
    return "\n".join(lines) + "\n"


def _write_private(path: Path, text: str) -> None:
    """Write *text* to *path*, readable by the owner only (it holds hashes)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------
# the seed
# --------------------------------------------------------------------------


@dataclass
class LdapUser:
    uid: str
    cn: str
    sn: str
    password: str
    mail: str | None = None


@dataclass
class Directory:
    """What the server holds when it is first started."""

    suffix: str = "dc=slicerhub,dc=test"
    users: list[LdapUser] = field(default_factory=list)
    # group cn -> member uids
    groups: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> "Directory":
        """Load ``{suffix, users: [{uid, cn, sn, password, mail}], groups: {cn: [uids]}}``."""
        try:
            import yaml
        except ImportError as exc:  # pragma: no cover - depends on the env
            raise ImportError("Directory.from_yaml needs PyYAML (pip install pyyaml)") from exc
        with open(path, encoding="utf-8") as fh:
            raw = yaml.safe_load(fh) or {}
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: expected a mapping at the top level")
        users = []
        for item in raw.get("users") or []:
            missing = {"uid", "cn", "sn", "password"} - set(item)
            if missing:
                raise ValueError(f"{path}: user {item!r} lacks {sorted(missing)}")
            users.append(
                LdapUser(
                    uid=str(item["uid"]),
                    cn=str(item["cn"]),
                    sn=str(item["sn"]),
                    password=str(item["password"]),
                    mail=None if item.get("mail") is None else str(item["mail"]),
                )
            )
        groups = {
            str(cn): [str(uid) for uid in (members or [])]
            for cn, members in (raw.get("groups") or {}).items()
        }
        directory = cls(suffix=str(raw.get("suffix") or cls.suffix), users=users, groups=groups)
        directory.validate()
        return directory

    def validate(self) -> None:
        uids = [user.uid for user in self.users]
        dupes = sorted({uid for uid in uids if uids.count(uid) > 1})
        if dupes:
            raise ValueError(f"duplicate user uids: {dupes}")
        known = set(uids)
        for cn, members in self.groups.items():
            unknown = sorted(set(members) - known)
            if unknown:
                raise ValueError(f"group {cn!r} names unknown users: {unknown}")

    @property
    def admin_dn(self) -> str:
        return f"cn=admin,{self.suffix}"

    @property
    def people_dn(self) -> str:
        return f"ou=people,{self.suffix}"

    @property
    def groups_dn(self) -> str:
        return f"ou=groups,{self.suffix}"

    def user_dn(self, uid: str) -> str:
        return f"uid={escape_rdn_value(uid)},{self.people_dn}"

    def group_dn(self, cn: str) -> str:
        return f"cn={escape_rdn_value(cn)},{self.groups_dn}"

    def to_ldif(self) -> str:
        """The seed as LDIF, passwords hashed as ``{SSHA}`` with random salts."""
        self.validate()
        first_rdn = self.suffix.split(",", 1)[0]
        attr, _, value = first_rdn.partition("=")
        if attr.strip().lower() != "dc":
            raise ValueError(f"suffix must start with a dc= RDN, got {self.suffix!r}")
        dc = value.strip()
        entries = [
            _ldif_entry(
                self.suffix,
                [
                    ("objectClass", "top"),
                    ("objectClass", "dcObject"),
                    ("objectClass", "organization"),
                    ("dc", dc),
                    ("o", dc),
                ],
            ),
            _ldif_entry(
                self.people_dn,
                [("objectClass", "organizationalUnit"), ("ou", "people")],
            ),
            _ldif_entry(
                self.groups_dn,
                [("objectClass", "organizationalUnit"), ("ou", "groups")],
            ),
        ]
        for user in self.users:
            attrs = [
                ("objectClass", "inetOrgPerson"),
                ("uid", user.uid),
                ("cn", user.cn),
                ("sn", user.sn),
            ]
            if user.mail:
                attrs.append(("mail", user.mail))
            attrs.append(("userPassword", ssha(user.password)))
            entries.append(_ldif_entry(self.user_dn(user.uid), attrs))
        for cn, members in self.groups.items():
            # groupOfNames needs >= 1 member: an empty group gets the rootdn.
            member_dns = [self.user_dn(uid) for uid in members] or [self.admin_dn]
            attrs = [("objectClass", "groupOfNames"), ("cn", cn)]
            attrs += [("member", dn) for dn in member_dns]
            entries.append(_ldif_entry(self.group_dn(cn), attrs))
        return "\n".join(entries)


# --------------------------------------------------------------------------
# a minimal LDAP probe (anonymous base search), so start() needs no client lib
# --------------------------------------------------------------------------


def _ber_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _ber(tag: int, payload: bytes) -> bytes:
    return bytes([tag]) + _ber_len(len(payload)) + payload


def _search_base_request(base: str, message_id: int = 1) -> bytes:
    search = b"".join(
        [
            _ber(0x04, base.encode("utf-8")),  # baseObject
            _ber(0x0A, b"\x00"),  # scope: baseObject
            _ber(0x0A, b"\x00"),  # derefAliases: never
            _ber(0x02, b"\x00"),  # sizeLimit
            _ber(0x02, b"\x00"),  # timeLimit
            _ber(0x01, b"\x00"),  # typesOnly: false
            _ber(0x87, b"objectClass"),  # filter: present
            _ber(0x30, b""),  # attributes: none listed
        ]
    )
    return _ber(0x30, _ber(0x02, bytes([message_id])) + _ber(0x63, search))


def _read_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    return buf


def _read_message(sock: socket.socket) -> bytes:
    """One whole LDAPMessage, returned without its outer tag and length."""
    tag, first = _read_exact(sock, 2)
    if tag != 0x30:
        raise ConnectionError("not an LDAP message")
    if first & 0x80:
        length = int.from_bytes(_read_exact(sock, first & 0x7F), "big")
    else:
        length = first
    return _read_exact(sock, length)


def ldap_base_entry_exists(host: str, port: int, base: str, timeout: float = 2.0) -> bool:
    """True when an anonymous base search of *base* returns the entry."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(_search_base_request(base))
            while True:
                body = _read_message(sock)
                # body = messageID (02 01 xx) then protocolOp tag.
                op = body[2 + body[1]]
                if op == 0x64:  # searchResEntry
                    return True
                if op == 0x65:  # searchResDone without an entry
                    return False
    except (OSError, ConnectionError, IndexError):
        return False


# --------------------------------------------------------------------------
# the server
# --------------------------------------------------------------------------

_LIVE: "weakref.WeakSet[Slapd]" = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:  # pragma: no cover - interpreter shutdown
    for server in list(_LIVE):
        try:
            server.stop()
        except Exception:
            pass


def _tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if not found:
        raise SlapdError(f"{name} not found (apt-get install slapd ldap-utils)")
    return found


def _run_tool(argv: list[str], what: str) -> None:
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise SlapdError(f"{what} failed (exit {proc.returncode}): {' '.join(argv)}\n{proc.stdout}")


class Slapd:
    """One slapd process serving *directory* on ``ldap://host:port``."""

    def __init__(
        self,
        workdir: Path,
        directory: Directory,
        port: int = 0,
        host: str = "127.0.0.1",
        admin_password: str | None = None,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.directory = directory
        self.host = host
        self._auto_port = port == 0
        self.port = port or _free_port(host)
        self.admin_dn = directory.admin_dn
        state = self._read_state()
        if state and state.get("suffix") != directory.suffix:
            raise ValueError(
                f"{self.workdir} was built for suffix {state.get('suffix')!r}, "
                f"not {directory.suffix!r}; use another workdir"
            )
        if admin_password is None:
            admin_password = (state or {}).get("admin_password") or secrets.token_urlsafe(18)
        self.admin_password = admin_password
        self._proc: subprocess.Popen | None = None
        self._paused = False
        self._log_fh = None

    # -- paths -------------------------------------------------------------

    @property
    def config_dir(self) -> Path:
        return self.workdir / "slapd.d"

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def log_path(self) -> Path:
        return self.workdir / "slapd.log"

    @property
    def state_path(self) -> Path:
        return self.workdir / "harness.json"

    @property
    def uri(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ldap://{host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.running else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def paused(self) -> bool:
        return self._paused and self.running

    # -- state -------------------------------------------------------------

    def _read_state(self) -> dict | None:
        try:
            return json.loads(self.state_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None

    def _write_state(self) -> None:
        data = json.dumps(
            {"suffix": self.directory.suffix, "admin_dn": self.admin_dn, "admin_password": self.admin_password},
            indent=2,
        )
        tmp = self.state_path.with_suffix(".tmp")
        _write_private(tmp, data + "\n")
        os.replace(tmp, self.state_path)

    # -- building ----------------------------------------------------------

    def _config_ldif(self) -> str:
        wd = str(self.workdir)
        suffix = self.directory.suffix
        parts = [
            _ldif_entry(
                "cn=config",
                [
                    ("objectClass", "olcGlobal"),
                    ("cn", "config"),
                    ("olcPidFile", f"{wd}/slapd.pid"),
                    ("olcArgsFile", f"{wd}/slapd.args"),
                    ("olcLogLevel", "none"),
                ],
            ),
            _ldif_entry(
                "cn=module{0},cn=config",
                [
                    ("objectClass", "olcModuleList"),
                    ("cn", "module{0}"),
                    ("olcModulePath", MODULE_PATH),
                    ("olcModuleLoad", "back_mdb"),
                ],
            ),
            _ldif_entry("cn=schema,cn=config", [("objectClass", "olcSchemaConfig"), ("cn", "schema")]),
            "\n".join(f"include: file://{SCHEMA_DIR / name}.ldif" for name in SCHEMAS) + "\n",
            _ldif_entry(
                "olcDatabase={-1}frontend,cn=config",
                [
                    ("objectClass", "olcDatabaseConfig"),
                    ("objectClass", "olcFrontendConfig"),
                    ("olcDatabase", "{-1}frontend"),
                    ("olcSizeLimit", "500"),
                ],
            ),
            _ldif_entry(
                "olcDatabase={0}config,cn=config",
                [
                    ("objectClass", "olcDatabaseConfig"),
                    ("olcDatabase", "{0}config"),
                    ("olcAccess", "{0}to * by * none"),
                ],
            ),
            _ldif_entry(
                "olcDatabase={1}mdb,cn=config",
                [
                    ("objectClass", "olcDatabaseConfig"),
                    ("objectClass", "olcMdbConfig"),
                    ("olcDatabase", "{1}mdb"),
                    ("olcDbDirectory", str(self.data_dir)),
                    ("olcSuffix", suffix),
                    ("olcRootDN", self.admin_dn),
                    ("olcRootPW", ssha(self.admin_password)),
                    ("olcDbMaxSize", str(64 * 1024 * 1024)),
                    ("olcDbIndex", "objectClass eq"),
                    ("olcDbIndex", "uid eq"),
                    ("olcDbIndex", "member eq"),
                    # userPassword: self may change it (=w, plus =x to bind),
                    # nobody may read it, anonymous may bind against it.
                    ("olcAccess", "{0}to attrs=userPassword by self =xw by anonymous auth by * none"),
                    # Everything else: readable by anonymous and bound users.
                    ("olcAccess", "{1}to * by * read"),
                ],
            ),
        ]
        return "\n".join(parts)

    def _build_config(self) -> None:
        """cn=config, only once per workdir."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.config_dir.is_dir():
            self._sync_admin_password()
            return
        for name in SCHEMAS:
            if not (SCHEMA_DIR / f"{name}.ldif").is_file():
                raise SlapdError(f"schema {SCHEMA_DIR / name}.ldif missing (apt-get install slapd)")
        self.data_dir.mkdir(mode=0o700, exist_ok=True)  # slapadd checks olcDbDirectory
        ldif = self.workdir / "config.ldif"
        _write_private(ldif, self._config_ldif())
        tmp = self.workdir / "slapd.d.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(mode=0o700)
        _run_tool([_tool("slapadd"), "-n0", "-F", str(tmp), "-l", str(ldif)], "slapadd of cn=config")
        os.replace(tmp, self.config_dir)
        self._write_state()

    def _sync_admin_password(self) -> None:
        """A caller-chosen admin password that differs from the stored one wins."""
        state = self._read_state() or {}
        if state.get("admin_password") == self.admin_password:
            return
        change = self.workdir / "rootpw.ldif"
        _write_private(
            change,
            "dn: olcDatabase={1}mdb,cn=config\nchangetype: modify\nreplace: olcRootPW\n"
            f"olcRootPW: {ssha(self.admin_password)}\n-\n",
        )
        try:
            _run_tool(
                [_tool("slapmodify"), "-n0", "-F", str(self.config_dir), "-l", str(change)],
                "slapmodify of olcRootPW",
            )
        finally:
            change.unlink(missing_ok=True)
        self._write_state()

    def _load_seed(self) -> None:
        """slapadd the seed while the data directory is empty."""
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if any(self.data_dir.iterdir()):
            return
        ldif = self.workdir / "seed.ldif"
        _write_private(ldif, self.directory.to_ldif())
        try:
            _run_tool(
                [_tool("slapadd"), "-F", str(self.config_dir), "-b", self.directory.suffix, "-l", str(ldif)],
                "slapadd of the seed",
            )
        except SlapdError:
            for child in self.data_dir.iterdir():
                child.unlink()
            raise
        finally:
            # Hashes only, but there is no reason to keep them around.
            ldif.unlink(missing_ok=True)

    # -- lifecycle ---------------------------------------------------------

    def ping(self, timeout: float = 2.0) -> bool:
        """True when an anonymous search of the suffix answers."""
        return ldap_base_entry_exists(self.host, self.port, self.directory.suffix, timeout)

    def start(self, timeout: float = 20) -> None:
        if self.running:
            return
        self._build_config()
        self._load_seed()
        attempts = 3 if self._auto_port else 1
        for attempt in range(attempts):
            try:
                self._launch(timeout)
                break
            except SlapdError:
                # A picked port can be taken between picking and binding.
                if attempt + 1 == attempts or not self._auto_port:
                    raise
                self.port = _free_port(self.host)
        _LIVE.add(self)

    def _launch(self, timeout: float) -> None:
        self._log_fh = open(self.log_path, "ab")
        self._log_fh.write(f"--- starting slapd on {self.uri} at {time.ctime()}\n".encode())
        self._log_fh.flush()
        argv = [
            _tool("slapd"),
            "-h", f"{self.uri}/",
            "-F", str(self.config_dir),
            "-d", "0",  # any -d keeps slapd in the foreground: its pid is ours
        ]  # fmt: skip
        self._proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log_fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a terminal's Ctrl-C goes to us, not slapd
        )
        self._paused = False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._close_log()
                self._proc = None
                raise SlapdError(f"slapd exited with {code} while starting; see {self.log_path}\n{self._log_tail()}")
            if self.ping(timeout=1.0):
                return
            time.sleep(0.05)
        self.stop()
        raise SlapdError(f"slapd did not answer on {self.uri} within {timeout}s; see {self.log_path}")

    def _log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def _close_log(self) -> None:
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None

    def stop(self, timeout: float = 10) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            if self._paused:
                proc.send_signal(signal.SIGCONT)  # a stopped process cannot act on SIGTERM
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._proc = None
        self._paused = False
        self._close_log()
        _LIVE.discard(self)

    def restart(self) -> None:
        self.stop()
        self.start()

    def pause(self) -> None:
        """SIGSTOP: the port still accepts TCP connections, nothing answers."""
        if not self.running:
            raise SlapdError("slapd is not running")
        self._proc.send_signal(signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        if not self.running:
            raise SlapdError("slapd is not running")
        self._proc.send_signal(signal.SIGCONT)
        self._paused = False

    def __enter__(self) -> "Slapd":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "paused" if self.paused else "running" if self.running else "stopped"
        return f"<Slapd {self.uri} {self.directory.suffix} {state} workdir={self.workdir}>"


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m slicerhub.devenv.ldap",
        description="Run a throw-away OpenLDAP server seeded from a YAML file until SIGINT/SIGTERM.",
    )
    parser.add_argument("--seed", type=Path, default=DEFAULT_SEED, help="directory seed (YAML); default: %(default)s")
    parser.add_argument("--workdir", type=Path, default=REPO_ROOT / "var" / "ldap", help="default: %(default)s")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--admin-password", default=None, help="rootdn password; default: random, kept in WORKDIR")
    args = parser.parse_args(argv)

    try:
        ipaddress.ip_address(args.host)
    except ValueError:
        parser.error("--host must be an IP address")

    directory = Directory.from_yaml(args.seed)
    server = Slapd(args.workdir, directory, port=args.port, host=args.host, admin_password=args.admin_password)

    stop = threading.Event()

    def _on_signal(signum, _frame):
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)

    try:
        server.start()
    except SlapdError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(server.uri, flush=True)
    print(
        f"# suffix {directory.suffix}; admin {server.admin_dn} "
        f"(password in {server.state_path}); log {server.log_path}; pid {server.pid}",
        flush=True,
    )
    try:
        while not stop.wait(1.0):
            if not server.running:
                print(f"error: slapd died; see {server.log_path}", file=sys.stderr)
                return 1
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
