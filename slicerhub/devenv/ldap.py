"""A real, throw-away OpenLDAP server for the demo and the integration tests.

Everything lives under one work directory; nothing of the system slapd
(``/etc/ldap/slapd.d``, ``/var/lib/ldap``, ``/var/run/slapd``) is read or
written, apart from the schema files under ``/etc/ldap/schema``::

    WORKDIR/
        slapd.d/        cn=config, built once with ``slapadd -n0``
        data/           the mdb database, seeded once with ``slapadd``
        harness.json    suffix and admin (rootdn) password, mode 0600
        tls/            with ``tls=True``: a throw-away CA and server certificate
        slapd.pid, slapd.args, slapd.log

Usage::

    directory = Directory.from_yaml("hub_config/demo-directory.yaml")
    with Slapd(Path("/tmp/ldap"), directory) as server:
        print(server.uri)          # ldap://127.0.0.1:PORT

With ``Slapd(..., tls=True)`` the server also speaks TLS: StartTLS on
``uri`` and LDAPS on ``ldaps_uri`` (``tls_port``), with a certificate for
``localhost`` and ``127.0.0.1`` signed by a CA made for this work directory
(``ca_file``). ``make_test_pki(dir, hostnames)`` makes such material for other
names (pass it as ``tls=``), and ``CertificateAuthority(dir)`` an unrelated CA,
to test a host name mismatch and a wrong CA::

    with Slapd(Path("/tmp/ldap"), directory, tls=True) as server:
        print(server.ldaps_uri, server.ca_file)

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

Needs ldap3 (the probe, DN escaping, password hashes); ``cryptography`` only
for TLS material and PyYAML only for ``Directory.from_yaml``.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import datetime
import ipaddress
import json
import math
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
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import ldap3
from ldap3.core.exceptions import LDAPException
from ldap3.utils.dn import escape_rdn
from ldap3.utils.hashed import hashed

SCHEMA_DIR = Path("/etc/ldap/schema")
SCHEMAS = ("core", "cosine", "nis", "inetorgperson")
MODULE_PATH = "/usr/lib/ldap"
DEFAULT_TLS_NAMES = ("localhost", "127.0.0.1")
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SEED = REPO_ROOT / "hub_config" / "demo-directory.yaml"


class SlapdError(RuntimeError):
    """slapd (or one of the offline slap tools) failed."""


# --------------------------------------------------------------------------
# small helpers: passwords, DNs, LDIF
# --------------------------------------------------------------------------


def ssha(password: str, salt: bytes | None = None) -> str:
    """``{SSHA}`` hash of *password* (salted SHA-1, random 8-byte salt by default).

    ldap3 writes the scheme as ``{ssha}``; OpenLDAP reads it case-insensitively.
    """
    return hashed(ldap3.HASHED_SALTED_SHA, password, salt=salt)


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


def _write_private(path: Path, text: str | bytes) -> None:
    """Write *text* to *path*, readable by the owner only (hashes, keys)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # also when the file was already there
    with os.fdopen(fd, "wb") as fh:
        fh.write(text.encode("utf-8") if isinstance(text, str) else text)


def _free_port(host: str, avoid: int | None = None) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    while True:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = sock.getsockname()[1]
        if port != avoid:
            return port


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
    display_name: str | None = None  # displayName: what collaborators see


@dataclass
class Directory:
    """What the server holds when it is first started."""

    suffix: str = "dc=slicerhub,dc=test"
    users: list[LdapUser] = field(default_factory=list)
    # group cn -> member uids
    groups: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> "Directory":
        """Load ``{suffix, users: [{uid, cn, sn, password, mail, display_name}], groups: {cn: [uids]}}``."""
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
                    display_name=None if item.get("display_name") is None else str(item["display_name"]),
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
        return f"uid={escape_rdn(uid)},{self.people_dn}"

    def group_dn(self, cn: str) -> str:
        return f"cn={escape_rdn(cn)},{self.groups_dn}"

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
            if user.display_name:
                attrs.append(("displayName", user.display_name))
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
# the readiness probe (anonymous base search)
# --------------------------------------------------------------------------


def ldap_base_entry_exists(host: str, port: int, base: str, timeout: float = 2.0) -> bool:
    """True when an anonymous base search of *base* returns the entry."""
    server = ldap3.Server(host, port=port, get_info=ldap3.NONE, connect_timeout=timeout)
    # ldap3 packs receive_timeout into SO_RCVTIMEO as whole seconds.
    conn = ldap3.Connection(server, receive_timeout=max(1, math.ceil(timeout)), raise_exceptions=False)
    try:
        conn.open(read_server_info=False)
        found = conn.search(base, "(objectClass=*)", search_scope=ldap3.BASE, attributes=ldap3.NO_ATTRIBUTES)
        return bool(found and conn.entries)
    except (LDAPException, OSError):
        return False
    finally:
        try:
            conn.unbind()
        except (LDAPException, OSError):
            pass


# --------------------------------------------------------------------------
# TLS material: a throw-away CA and server certificates (cryptography)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsMaterial:
    """The files slapd needs for TLS, and the CA a client must trust."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def _new_key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _cert_pem(cert) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)


def _san(hostnames: Iterable[str]):
    from cryptography import x509

    names = []
    for name in hostnames:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            names.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(names)


class CertificateAuthority:
    """A throw-away CA in *directory* (``ca.pem``, ``ca.key`` mode 0600).

    An existing pair there is loaded, so clients that trust ``cert_file`` keep
    trusting what it issues. Two CAs in two directories are unrelated: use a
    second one to test a client that trusts the wrong CA.
    """

    VALID_DAYS = 3650

    def __init__(self, directory: str | os.PathLike, name: str = "SlicerHub throw-away test CA") -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.x509.oid import NameOID

        self.dir = Path(directory)
        self.cert_file = self.dir / "ca.pem"
        self.key_file = self.dir / "ca.key"
        self.created = not (self.cert_file.is_file() and self.key_file.is_file())
        if not self.created:
            self.cert = x509.load_pem_x509_certificate(self.cert_file.read_bytes())
            self.key = serialization.load_pem_private_key(self.key_file.read_bytes(), password=None)
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        self.key = _new_key()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} {secrets.token_hex(4)}")])
        now = datetime.datetime.now(datetime.timezone.utc)
        ski = x509.SubjectKeyIdentifier.from_public_key(self.key.public_key())
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=self.VALID_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                    encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(ski, critical=False)
            .sign(self.key, hashes.SHA256())
        )
        _write_private(self.key_file, _key_pem(self.key))
        self.cert_file.write_bytes(_cert_pem(self.cert))

    def issue(self, hostnames: Iterable[str], directory: str | os.PathLike | None = None,
              stem: str = "server") -> TlsMaterial:
        """A server certificate for *hostnames* (DNS names or IP addresses).

        Written to ``DIR/STEM.pem`` and ``DIR/STEM.key`` (0600), DIR being the
        CA's directory unless given.
        """
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        hostnames = list(hostnames)
        if not hostnames:
            raise ValueError("a server certificate needs at least one host name")
        out = Path(directory) if directory is not None else self.dir
        out.mkdir(parents=True, exist_ok=True)
        key = _new_key()
        now = datetime.datetime.now(datetime.timezone.utc)
        ca_ski = self.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=self.VALID_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=True, key_cert_sign=False, crl_sign=False,
                    encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(_san(hostnames), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        material = TlsMaterial(ca_file=self.cert_file, cert_file=out / f"{stem}.pem", key_file=out / f"{stem}.key")
        _write_private(material.key_file, _key_pem(key))
        material.cert_file.write_bytes(_cert_pem(cert))
        return material


def _cert_names(cert_file: Path) -> set[str] | None:
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return None
    return {str(v) for v in san.get_values_for_type(x509.DNSName)} | {
        str(v) for v in san.get_values_for_type(x509.IPAddress)
    }


def make_test_pki(directory: str | os.PathLike, hostnames: Iterable[str] = DEFAULT_TLS_NAMES) -> TlsMaterial:
    """A CA and a server certificate for *hostnames* in *directory*.

    ``ca.pem``/``ca.key`` and ``server.pem``/``server.key`` (keys 0600). What is
    already there is reused when it covers exactly *hostnames*.
    """
    hostnames = list(hostnames)
    ca = CertificateAuthority(directory)
    material = TlsMaterial(ca.cert_file, ca.dir / "server.pem", ca.dir / "server.key")
    if not ca.created and material.key_file.is_file() and _cert_names(material.cert_file) == {
        str(ipaddress.ip_address(n)) if _is_ip(n) else n for n in hostnames
    }:
        return material
    return ca.issue(hostnames)


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
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
    """One slapd process serving *directory* on ``ldap://host:port``.

    *tls*: ``True`` makes (or reuses) a CA and a certificate for ``localhost``
    and ``127.0.0.1`` under ``WORKDIR/tls``; a ``TlsMaterial`` uses those files
    instead. Then ``uri`` also offers StartTLS, and ``ldaps_uri``
    (``tls_port``) speaks TLS from the first byte.
    """

    def __init__(
        self,
        workdir: Path,
        directory: Directory,
        port: int = 0,
        host: str = "127.0.0.1",
        admin_password: str | None = None,
        tls: bool | TlsMaterial = False,
        tls_port: int = 0,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.directory = directory
        self.host = host
        self._auto_port = port == 0
        self.port = port or _free_port(host)
        if tls is True:
            tls = make_test_pki(self.workdir / "tls")
        self.tls: TlsMaterial | None = tls or None
        self._auto_tls_port = tls_port == 0
        self.tls_port: int | None = None
        if self.tls is not None:
            self.tls_port = tls_port or _free_port(host, avoid=self.port)
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
        return f"ldap://{self._uri_host}:{self.port}"

    @property
    def ldaps_uri(self) -> str | None:
        """``ldaps://host:tls_port`` with TLS, else None."""
        return f"ldaps://{self._uri_host}:{self.tls_port}" if self.tls else None

    @property
    def ca_file(self) -> str | None:
        """The CA bundle a client needs to verify this server (with TLS)."""
        return str(self.tls.ca_file) if self.tls else None

    @property
    def _uri_host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    def _tls_values(self) -> list[tuple[str, str]]:
        if not self.tls:
            return []
        return [
            ("olcTLSCACertificateFile", str(Path(self.tls.ca_file).resolve())),
            ("olcTLSCertificateFile", str(Path(self.tls.cert_file).resolve())),
            ("olcTLSCertificateKeyFile", str(Path(self.tls.key_file).resolve())),
        ]

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
            {"suffix": self.directory.suffix, "admin_dn": self.admin_dn, "admin_password": self.admin_password,
             "tls": dict(self._tls_values())},
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
                    *self._tls_values(),
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
            self._sync_config()
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

    def _sync_config(self) -> None:
        """Bring an existing cn=config in line with this harness.

        A caller-chosen admin password that differs from the stored one wins;
        the TLS files are pointed at this harness's (or removed without TLS).
        """
        state = self._read_state() or {}
        changes = []
        if state.get("admin_password") != self.admin_password:
            changes.append(
                "dn: olcDatabase={1}mdb,cn=config\nchangetype: modify\nreplace: olcRootPW\n"
                f"olcRootPW: {ssha(self.admin_password)}\n-\n"
            )
        wanted = dict(self._tls_values())
        if state.get("tls", {}) != wanted:
            ops = []
            for attr in ("olcTLSCACertificateFile", "olcTLSCertificateFile", "olcTLSCertificateKeyFile"):
                value = f"{attr}: {wanted[attr]}\n" if attr in wanted else ""
                ops.append(f"replace: {attr}\n{value}-\n")
            changes.append("dn: cn=config\nchangetype: modify\n" + "".join(ops))
        if not changes:
            return
        change = self.workdir / "config-change.ldif"
        _write_private(change, "\n".join(changes))
        try:
            _run_tool(
                [_tool("slapmodify"), "-n0", "-F", str(self.config_dir), "-l", str(change)],
                "slapmodify of cn=config",
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
                if self.tls and self._auto_tls_port:
                    self.tls_port = _free_port(self.host, avoid=self.port)
        _LIVE.add(self)

    def _launch(self, timeout: float) -> None:
        self._log_fh = open(self.log_path, "ab")
        urls = " ".join(f"{u}/" for u in (self.uri, self.ldaps_uri) if u)
        self._log_fh.write(f"--- starting slapd on {urls} at {time.ctime()}\n".encode())
        self._log_fh.flush()
        argv = [
            _tool("slapd"),
            "-h", urls,
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
            if self.ping(timeout=1.0) and self._tls_port_open():
                return
            time.sleep(0.05)
        self.stop()
        raise SlapdError(f"slapd did not answer on {self.uri} within {timeout}s; see {self.log_path}")

    def _tls_port_open(self) -> bool:
        if not self.tls:
            return True
        try:
            socket.create_connection((self.host, self.tls_port), timeout=1.0).close()
            return True
        except OSError:
            return False

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
        tls = f" {self.ldaps_uri}" if self.tls else ""
        return f"<Slapd {self.uri}{tls} {self.directory.suffix} {state} workdir={self.workdir}>"


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
    parser.add_argument("--tls", action="store_true",
                        help="also StartTLS and LDAPS, with a throw-away CA in WORKDIR/tls")
    parser.add_argument("--tls-port", type=int, default=0, help="LDAPS port with --tls; 0 picks a free port")
    args = parser.parse_args(argv)

    try:
        ipaddress.ip_address(args.host)
    except ValueError:
        parser.error("--host must be an IP address")

    directory = Directory.from_yaml(args.seed)
    server = Slapd(args.workdir, directory, port=args.port, host=args.host, admin_password=args.admin_password,
                   tls=args.tls, tls_port=args.tls_port)

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
    if server.tls:
        print(f"{server.ldaps_uri}\n# CA for both: {server.ca_file}", flush=True)
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
