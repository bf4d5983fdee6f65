"""The real-slapd harness (slicerhub.devenv.ldap) and the delaying proxy."""

from __future__ import annotations

import base64
import hashlib
import shutil
import socket
import ssl
import stat
import time
from pathlib import Path

import pytest

from slicerhub.devenv.ldap import (
    CertificateAuthority,
    Directory,
    LdapUser,
    Slapd,
    ldap_base_entry_exists,
    make_test_pki,
    ssha,
)
from slicerhub.devenv.tcp_delay import DelayProxy

pytestmark = [
    pytest.mark.integration,
    # The TLS tests use ldap3's stock Tls, whose name check calls this.
    pytest.mark.filterwarnings("ignore:ssl.match_hostname:DeprecationWarning"),
]

ldap3 = pytest.importorskip("ldap3")
from ldap3.core.exceptions import LDAPException  # noqa: E402

if shutil.which("slapd") is None and not Path("/usr/sbin/slapd").exists():
    pytest.skip("slapd is not installed (apt-get install slapd)", allow_module_level=True)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_SEED = REPO_ROOT / "hub_config" / "demo-directory.yaml"


@pytest.fixture(scope="module")
def directory() -> Directory:
    return Directory.from_yaml(DEMO_SEED)


@pytest.fixture(scope="module")
def slapd(directory, tmp_path_factory):
    with Slapd(tmp_path_factory.mktemp("slapd-shared"), directory) as server:
        yield server


@pytest.fixture
def own_slapd(directory, tmp_path):
    """A private server for tests that stop, pause or write."""
    server = Slapd(tmp_path / "slapd", directory)
    server.start()
    yield server
    server.stop()


def conn(server_or_uri, user=None, password=None, **kw):
    uri = server_or_uri if isinstance(server_or_uri, str) else server_or_uri.uri
    srv = ldap3.Server(uri, get_info=ldap3.NONE, connect_timeout=2)
    return ldap3.Connection(srv, user=user, password=password, **kw)


def user_bind(server, directory, uid, password, **kw):
    c = conn(server, directory.user_dn(uid), password, **kw)
    return c, c.bind()


def group_cns(c, directory, uid) -> set[str]:
    ok = c.search(
        directory.groups_dn,
        f"(member={directory.user_dn(uid)})",
        search_scope=ldap3.SUBTREE,
        attributes=["cn"],
    )
    assert ok or c.result["result"] == 0, c.result
    return {str(e.cn) for e in c.entries}


# ---------------------------------------------------------------- the seed


def test_demo_seed_loads(directory):
    assert directory.suffix == "dc=slicerhub,dc=test"
    assert {u.uid for u in directory.users} == {"admin1", "teacher1", "student1", "student2", "student3"}
    assert directory.groups["anat101"] == ["teacher1", "student1", "student2", "student3"]
    assert directory.user_dn("student1") == "uid=student1,ou=people,dc=slicerhub,dc=test"
    assert directory.group_dn("teachers") == "cn=teachers,ou=groups,dc=slicerhub,dc=test"


def test_seed_rejects_unknown_group_member():
    d = Directory(users=[LdapUser("a", "A", "A", "pw")], groups={"g": ["a", "ghost"]})
    with pytest.raises(ValueError, match="ghost"):
        d.to_ldif()


def test_ssha_format():
    value = ssha("secret", salt=b"12345678")
    scheme, _, b64 = value.partition("}")
    assert scheme.upper() == "{SSHA"  # ldap3 writes {ssha}; slapd reads either
    raw = base64.b64decode(b64)
    assert raw == hashlib.sha1(b"secret12345678").digest() + b"12345678"
    assert value != ssha("secret") != ssha("secret")  # random salt


def test_rdn_values_are_escaped_in_dns():
    d = Directory()
    assert d.user_dn("a,b+c") == "uid=a\\,b\\+c,ou=people,dc=slicerhub,dc=test"
    assert d.group_dn("#x ") == "cn=\\#x\\ ,ou=groups,dc=slicerhub,dc=test"


def test_probe(slapd, directory):
    assert ldap_base_entry_exists(slapd.host, slapd.port, directory.suffix)
    assert not ldap_base_entry_exists(slapd.host, slapd.port, "dc=nowhere,dc=test")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    assert not ldap_base_entry_exists("127.0.0.1", closed, directory.suffix, timeout=0.5)


# ---------------------------------------------------------------- binds


def test_bind_right_password(slapd, directory):
    c, ok = user_bind(slapd, directory, "student1", "student1-demo")
    assert ok, c.result
    assert c.extend.standard.who_am_i() == f"dn:{directory.user_dn('student1')}"
    c.unbind()


def test_bind_wrong_password(slapd, directory):
    c, ok = user_bind(slapd, directory, "student1", "teacher1-demo")
    assert not ok
    assert c.result["description"] == "invalidCredentials"


def test_bind_unknown_user(slapd, directory):
    _, ok = user_bind(slapd, directory, "nobody", "x")
    assert not ok


def test_admin_bind(slapd):
    c = conn(slapd, slapd.admin_dn, slapd.admin_password)
    assert c.bind(), c.result
    c.unbind()
    assert not conn(slapd, slapd.admin_dn, "wrong").bind()


def test_password_is_never_readable(slapd, directory):
    dn = directory.user_dn("student1")
    c, ok = user_bind(slapd, directory, "student1", "student1-demo")
    assert ok
    c.search(dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["*", "userPassword"])
    attrs = c.response[0]["attributes"]
    assert attrs["uid"] == ["student1"]
    assert not attrs.get("userPassword")  # ldap3 lists requested-but-absent attributes as []
    anon = conn(slapd)
    anon.bind()
    anon.search(dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["userPassword", "cn"])
    assert anon.response[0]["attributes"]["cn"] == ["Sam Student"]
    assert not anon.response[0]["attributes"].get("userPassword")


# ---------------------------------------------------------------- groups


def test_group_membership_after_user_bind(slapd, directory):
    """What the authenticator does: bind as the user, then search ou=groups."""
    c, ok = user_bind(slapd, directory, "student1", "student1-demo")
    assert ok
    assert group_cns(c, directory, "student1") == {"students", "anat101"}
    assert group_cns(c, directory, "teacher1") == {"teachers", "anat101"}
    assert group_cns(c, directory, "admin1") == {"slicerhub-admins"}


def test_group_membership_anonymous(slapd, directory):
    c = conn(slapd)
    c.bind()
    assert group_cns(c, directory, "student3") == {"students", "anat101"}


# ---------------------------------------------------------------- lifecycle


def test_stop_refuses_connections_start_keeps_data(own_slapd, directory):
    server = own_slapd
    dn = directory.user_dn("late")
    admin = conn(server, server.admin_dn, server.admin_password)
    assert admin.bind()
    assert admin.add(
        dn,
        ["inetOrgPerson"],
        {"uid": "late", "cn": "Late Comer", "sn": "Comer", "userPassword": "late-pw"},
    ), admin.result
    assert admin.modify(
        directory.group_dn("students"), {"member": [(ldap3.MODIFY_ADD, [dn])]}
    ), admin.result
    admin.unbind()

    port, pid = server.port, server.pid
    server.stop()
    assert server.pid is None
    server.stop()  # idempotent
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    with pytest.raises(LDAPException):
        conn(server, directory.user_dn("student1"), "student1-demo", raise_exceptions=True).bind()

    server.start()
    assert server.port == port and server.pid != pid
    c, ok = user_bind(server, directory, "late", "late-pw")
    assert ok, c.result
    assert group_cns(c, directory, "late") == {"students"}
    _, ok = user_bind(server, directory, "student2", "student2-demo")
    assert ok

    server.restart()
    _, ok = user_bind(server, directory, "late", "late-pw")
    assert ok


def test_new_harness_on_same_workdir_keeps_data_and_admin(own_slapd, directory):
    workdir, password = own_slapd.workdir, own_slapd.admin_password
    admin = conn(own_slapd, own_slapd.admin_dn, password)
    assert admin.bind()
    assert admin.delete(directory.user_dn("student3"))
    own_slapd.stop()
    with Slapd(workdir, directory) as again:
        assert again.admin_password == password
        admin = conn(again, again.admin_dn, password)
        assert admin.bind()
        admin.search(directory.people_dn, "(uid=student3)", attributes=["uid"])
        assert admin.entries == []  # the seed was not loaded again


def test_self_can_change_own_password(own_slapd, directory):
    c, ok = user_bind(own_slapd, directory, "student2", "student2-demo")
    assert ok
    assert c.extend.standard.modify_password(old_password="student2-demo", new_password="changed")
    _, ok = user_bind(own_slapd, directory, "student2", "student2-demo")
    assert not ok
    _, ok = user_bind(own_slapd, directory, "student2", "changed")
    assert ok


def test_pause_times_out_resume_answers(own_slapd, directory):
    server = own_slapd
    server.pause()
    try:
        c = conn(server, directory.user_dn("student1"), "student1-demo", receive_timeout=1, raise_exceptions=True)
        t0 = time.monotonic()
        with pytest.raises(LDAPException):
            c.bind()  # TCP connect succeeds (kernel backlog); no answer comes
        assert time.monotonic() - t0 < 5
    finally:
        server.resume()
    c, ok = user_bind(server, directory, "student1", "student1-demo", receive_timeout=2)
    assert ok, c.result


def test_stop_while_paused(own_slapd):
    own_slapd.pause()
    t0 = time.monotonic()
    own_slapd.stop()
    assert time.monotonic() - t0 < 5
    assert not own_slapd.running


def test_two_servers_at_once(directory, tmp_path):
    other = Directory(
        suffix="dc=other,dc=test",
        users=[LdapUser("solo", "Solo User", "User", "solo-pw")],
        groups={"empty": []},
    )
    with Slapd(tmp_path / "a", directory) as a, Slapd(tmp_path / "b", other) as b:
        assert a.port != b.port
        _, ok = user_bind(a, directory, "student1", "student1-demo")
        assert ok
        _, ok = user_bind(b, other, "solo", "solo-pw")
        assert ok
        c = conn(b)
        c.bind()
        c.search(other.group_dn("empty"), "(objectClass=*)", search_scope=ldap3.BASE, attributes=["member"])
        assert c.entries[0].member.values == [other.admin_dn]  # placeholder member


def test_fixed_port_and_admin_password(directory, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with Slapd(tmp_path / "fixed", directory, port=port, admin_password="pw-1") as server:
        assert server.uri == f"ldap://127.0.0.1:{port}"
        assert conn(server, server.admin_dn, "pw-1").bind()
    # A different explicit admin password on the same workdir replaces the old one.
    with Slapd(tmp_path / "fixed", directory, port=port, admin_password="pw-2") as server:
        assert conn(server, server.admin_dn, "pw-2").bind()
        assert not conn(server, server.admin_dn, "pw-1").bind()


# ---------------------------------------------------------------- DelayProxy


def _timed_search(c, directory) -> float:
    t0 = time.perf_counter()
    c.search(directory.groups_dn, "(cn=anat101)", attributes=["member"])
    elapsed = time.perf_counter() - t0
    assert len(c.entries) == 1
    return elapsed


def test_delay_proxy_adds_delay(slapd, directory):
    delay = 0.3
    direct = conn(slapd)
    direct.bind()
    base = min(_timed_search(direct, directory) for _ in range(3))
    with DelayProxy("127.0.0.1", slapd.port, delay=delay) as proxy:
        c = conn(f"ldap://127.0.0.1:{proxy.port}", directory.user_dn("student1"), "student1-demo")
        t0 = time.perf_counter()
        assert c.bind(), c.result
        assert time.perf_counter() - t0 >= delay
        slow = _timed_search(c, directory)
        assert delay <= slow - base < delay + 0.25, (slow, base)
        # The delay can change at runtime.
        proxy.delay = 0.0
        assert _timed_search(c, directory) < 0.2
        proxy.delay = 0.6
        assert _timed_search(c, directory) >= 0.6
        c.unbind()


def test_delay_proxy_keeps_order_without_stacking(slapd, directory):
    """Many replies in flight are each shifted by `delay`, not delayed one after another."""
    with DelayProxy("127.0.0.1", slapd.port, delay=0.3) as proxy:
        c = conn(f"ldap://127.0.0.1:{proxy.port}", client_strategy=ldap3.ASYNC)
        c.open()
        t0 = time.perf_counter()
        ids = [c.search(directory.people_dn, f"(uid=student{i})", attributes=["uid"]) for i in (1, 2, 3)]
        results = [c.get_response(mid, timeout=5)[0] for mid in ids]
        elapsed = time.perf_counter() - t0
        assert [r[0]["attributes"]["uid"] for r in results] == [["student1"], ["student2"], ["student3"]]
        assert 0.3 <= elapsed < 0.8
        c.unbind()


def test_delay_proxy_is_loopback_only():
    with pytest.raises(ValueError):
        DelayProxy("192.0.2.1", 389)
    with pytest.raises(ValueError):
        DelayProxy("example.org", 389)


# ---------------------------------------------------------------- TLS


def tls_conn(uri, ca_file, user=None, password=None):
    tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(ca_file))
    return ldap3.Connection(ldap3.Server(uri, tls=tls, get_info=ldap3.NONE, connect_timeout=2),
                            user=user, password=password, receive_timeout=2, raise_exceptions=True)


@pytest.fixture(scope="module")
def tls_slapd(directory, tmp_path_factory):
    with Slapd(tmp_path_factory.mktemp("slapd-tls"), directory, tls=True) as server:
        yield server


def test_tls_starttls_and_ldaps(tls_slapd, directory):
    assert tls_slapd.uri.startswith("ldap://127.0.0.1:")
    assert tls_slapd.ldaps_uri == f"ldaps://127.0.0.1:{tls_slapd.tls_port}"
    assert tls_slapd.tls_port != tls_slapd.port
    dn = directory.user_dn("student1")
    c = tls_conn(tls_slapd.uri, tls_slapd.ca_file, dn, "student1-demo")
    c.open()
    assert c.start_tls()
    assert c.bind()
    assert c.socket.version().startswith("TLS")
    c.unbind()
    c = tls_conn(tls_slapd.ldaps_uri, tls_slapd.ca_file, dn, "student1-demo")
    assert c.bind()
    assert c.extend.standard.who_am_i() == f"dn:{dn}"
    c.unbind()
    # Plain LDAP still answers on the first port (the readiness probe uses it).
    assert tls_slapd.ping()


def test_tls_material_files(tls_slapd):
    tls_dir = tls_slapd.workdir / "tls"
    assert tls_slapd.ca_file == str(tls_dir / "ca.pem")
    for name, mode in [("ca.key", 0o600), ("server.key", 0o600), ("ca.pem", None), ("server.pem", None)]:
        path = tls_dir / name
        assert path.is_file()
        if mode is not None:
            assert stat.S_IMODE(path.stat().st_mode) == mode, name
    from cryptography import x509

    cert = x509.load_pem_x509_certificate((tls_dir / "server.pem").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]


def test_tls_wrong_ca_and_wrong_host_fail_the_handshake(tls_slapd, directory, tmp_path):
    other = CertificateAuthority(tmp_path / "other")
    assert other.cert_file.read_bytes() != open(tls_slapd.ca_file, "rb").read()
    with pytest.raises(LDAPException, match="certificate verify failed"):
        tls_conn(tls_slapd.ldaps_uri, other.cert_file).open()
    elsewhere = make_test_pki(tmp_path / "elsewhere", ["ldap.elsewhere.test"])
    with Slapd(tmp_path / "ldap", directory, tls=elsewhere) as server:
        # Trusted chain, but issued for another name: ldap3's own name check refuses it.
        with pytest.raises(LDAPException, match="doesn't match"):
            tls_conn(server.ldaps_uri, elsewhere.ca_file).open()


def test_tls_material_is_reused_and_tls_can_be_turned_off(directory, tmp_path):
    first = make_test_pki(tmp_path / "pki")
    pem = first.cert_file.read_bytes()
    assert make_test_pki(tmp_path / "pki").cert_file.read_bytes() == pem  # same names: kept
    other = make_test_pki(tmp_path / "pki", ["ldap.example.test"])
    assert other.ca_file == first.ca_file and other.cert_file.read_bytes() != pem  # same CA, new cert
    workdir = tmp_path / "ldap"
    with Slapd(workdir, directory, tls=True) as server:
        ca = server.ca_file
        assert tls_conn(server.ldaps_uri, ca).bind()
    with Slapd(workdir, directory) as server:  # same workdir, no TLS: StartTLS is refused
        assert server.ldaps_uri is None and server.ca_file is None
        c = tls_conn(server.uri, ca)
        c.open()
        with pytest.raises(LDAPException):
            c.start_tls()
    with Slapd(workdir, directory, tls=True) as server:  # and back, with the same CA
        assert server.ca_file == ca
        c = tls_conn(server.uri, ca)
        c.open()
        assert c.start_tls()
