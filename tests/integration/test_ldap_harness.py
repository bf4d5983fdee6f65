"""The real-slapd harness (slicerhub.devenv.ldap) and the delaying proxy."""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path

import pytest

from slicerhub.devenv.ldap import Directory, LdapUser, Slapd, ssha
from slicerhub.devenv.tcp_delay import DelayProxy

pytestmark = pytest.mark.integration

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
    assert value.startswith("{SSHA}")
    assert value != ssha("secret")  # random salt


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
