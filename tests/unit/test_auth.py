"""SlicerLDAPAuthenticator without an LDAP server."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from tornado import web

from slicerhub.auth import DIRECTORY_DOWN, SlicerLDAPAuthenticator
from slicerhub.config import parse_config
from slicerhub.usernames import InvalidUsername, check_login_name

from .helpers import ADMINS_DN, ANAT_DN, STUDENTS_DN, TEACHERS_DN, demo_config, demo_data, traitlets_config

SYNCED = [ADMINS_DN, TEACHERS_DN, STUDENTS_DN, ANAT_DN]


@pytest.fixture
def make_auth():
    made = []

    def make(**ldap):
        data = demo_data()
        data["ldap"].update(ldap)
        auth = SlicerLDAPAuthenticator(config=traitlets_config(parse_config(data)))
        made.append(auth)
        return auth

    yield make
    for auth in made:
        auth._pool.shutdown(wait=False, cancel_futures=True)


@pytest.fixture
def auth(make_auth):
    return make_auth()


@pytest.fixture
def no_ldap(auth, monkeypatch):
    """Fail if anything tries to talk to LDAP."""
    calls = []

    def get_connection(userdn, password):
        calls.append(userdn)
        raise AssertionError(f"LDAP contacted for {userdn!r}")

    monkeypatch.setattr(auth, "get_connection", get_connection)
    return calls


# ------------------------------------------------ refused before any LDAP

BAD_NAMES = [
    "*",
    "admin*",
    "*)(uid=*",
    "alice)(|(objectClass=*",
    "uid=admin,ou=people",
    "a\\b",
    "al\x00ice",
    "ali;ce",
    "#alice",
    "\u0430dmin",  # Cyrillic а
    "\uff41dmin",  # full-width ａ
    "r\u03bfot",  # Greek omicron
    "1alice",
    ".alice",
    "al ice",
    "a" * 33,
    "",
    "   ",
]


@pytest.mark.parametrize("name", BAD_NAMES, ids=[repr(n) for n in BAD_NAMES])
async def test_bad_names_are_403_without_ldap(auth, no_ldap, name):
    with pytest.raises(web.HTTPError) as info:
        await auth.authenticate(None, {"username": name, "password": "secret"})
    assert info.value.status_code == 403
    with pytest.raises(InvalidUsername) as expected:
        check_login_name(name)
    assert info.value.log_message == str(expected.value)
    assert info.value.log_message.isprintable()
    assert no_ldap == []


async def test_missing_username_is_403_without_ldap(auth, no_ldap):
    with pytest.raises(web.HTTPError) as info:
        await auth.authenticate(None, {"password": "secret"})
    assert info.value.status_code == 403
    assert info.value.log_message == "Enter a username."
    assert no_ldap == []


@pytest.mark.parametrize("data", [{"username": "alice", "password": ""}, {"username": "alice"},
                                  {"username": "alice", "password": None}])
async def test_empty_password_is_refused_without_ldap(auth, no_ldap, data):
    assert await auth.authenticate(None, data) is None
    assert no_ldap == []


# ----------------------------------------------------- a directory answers


class FakeConnection:
    """The part of ldap3.Connection that upstream's authenticate uses."""

    def __init__(self, member_of):
        self.member_of = set(member_of)
        self.entries = []
        self.searched = []

    def search(self, search_base, search_scope, search_filter, attributes=None):
        self.searched.append((search_base, search_filter))
        return search_base in self.member_of


@pytest.fixture
def directory(auth, monkeypatch):
    binds = []
    state = {"member_of": [], "password": "right"}

    def get_connection(userdn, password):
        binds.append((userdn, password, threading.current_thread().name))
        if password != state["password"]:
            return None
        conn = FakeConnection(state["member_of"])
        state["conn"] = conn
        return conn

    monkeypatch.setattr(auth, "get_connection", get_connection)
    state["binds"] = binds
    return state


async def test_login_binds_with_the_normalised_name_on_a_worker_thread(auth, directory):
    directory["member_of"] = [STUDENTS_DN, ANAT_DN]
    result = await auth.authenticate(None, {"username": "  Alice ", "password": "right"})
    ((userdn, password, thread),) = directory["binds"]
    assert userdn == "uid=alice,ou=people,dc=slicerhub,dc=test"
    assert password == "right"
    assert thread.startswith("ldap")
    assert result["name"] == "alice"
    assert result["groups"] == ["anat101", "students"]
    assert result["admin"] is False
    assert set(result["auth_state"]["ldap_groups"]) == {STUDENTS_DN, ANAT_DN}
    # membership was asked for every group we care about
    assert [base for base, _ in directory["conn"].searched] == SYNCED


async def test_admin_group_makes_admin(auth, directory):
    directory["member_of"] = [ADMINS_DN]
    result = await auth.authenticate(None, {"username": "boss", "password": "right"})
    assert result["admin"] is True
    assert result["groups"] == ["slicerhub-admins"]


async def test_wrong_password_is_none(auth, directory):
    assert await auth.authenticate(None, {"username": "alice", "password": "wrong"}) is None


async def test_groups_outside_synced_are_not_synced(make_auth, monkeypatch):
    auth = make_auth()
    auth.synced_groups = [ANAT_DN]
    monkeypatch.setattr(auth, "get_connection", lambda dn, pw: FakeConnection(SYNCED))
    result = await auth.authenticate(None, {"username": "alice", "password": "pw"})
    assert result["groups"] == ["anat101"]


# ------------------------------------------------------ who may log in


def test_allowed_groups_default_is_the_union(auth):
    assert auth.allowed_groups == SYNCED
    assert len(auth.allowed_groups) == len(set(auth.allowed_groups))


def test_allowed_groups_default_from_each_list():
    c = traitlets_config(demo_config())
    c.SlicerLDAPAuthenticator.login_groups = ["cn=login,dc=x"]
    c.SlicerLDAPAuthenticator.admin_groups = ["cn=admins,dc=x", "cn=login,dc=x"]
    c.SlicerLDAPAuthenticator.synced_groups = ["cn=course,dc=x"]
    auth = SlicerLDAPAuthenticator(config=c)
    try:
        assert auth.allowed_groups == ["cn=login,dc=x", "cn=admins,dc=x", "cn=course,dc=x"]
    finally:
        auth._pool.shutdown(wait=False)


def test_explicit_allowed_groups_win():
    c = traitlets_config(demo_config())
    c.SlicerLDAPAuthenticator.allowed_groups = [TEACHERS_DN]
    auth = SlicerLDAPAuthenticator(config=c)
    try:
        assert auth.allowed_groups == [TEACHERS_DN]
    finally:
        auth._pool.shutdown(wait=False)


@pytest.mark.parametrize(
    ("ldap_groups", "allowed"),
    [
        ([STUDENTS_DN], True),
        ([TEACHERS_DN, ANAT_DN], True),
        ([ADMINS_DN], True),
        ([ANAT_DN], False),  # synced, but not a login group
        (["cn=staff,ou=groups,dc=slicerhub,dc=test"], False),
        ([], False),
    ],
)
async def test_check_allowed_with_login_groups(auth, ldap_groups, allowed):
    model = {"name": "x", "auth_state": {"ldap_groups": ldap_groups}}
    assert await auth.check_allowed("x", model) is allowed


async def test_check_allowed_without_auth_state(auth):
    assert await auth.check_allowed("x", {"name": "x"}) is False
    assert await auth.check_allowed("x", {"name": "x", "auth_state": None}) is False


async def test_check_allowed_without_login_groups_allows_everyone(make_auth):
    data_groups = demo_data()["ldap"]["groups"]
    data_groups["allowed"] = []
    auth = make_auth(groups=data_groups)
    assert auth.login_groups == []
    assert await auth.check_allowed("x", {"name": "x", "auth_state": {"ldap_groups": []}}) is True
    assert await auth.check_allowed("x", {"name": "x"}) is True


# ------------------------------------------------------- directory down


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return port


async def test_closed_port_is_503_quickly(make_auth):
    auth = make_auth(server="127.0.0.1", port=closed_port(), tls="insecure",
                     timeouts={"connect": 1, "receive": 1, "login": 3})
    started = time.monotonic()
    with pytest.raises(web.HTTPError) as info:
        await auth.authenticate(None, {"username": "alice", "password": "pw"})
    assert time.monotonic() - started < 5
    assert info.value.status_code == 503
    assert info.value.log_message == DIRECTORY_DOWN


async def test_silent_server_is_503_within_login_timeout(make_auth):
    # Accepts TCP connections (the kernel completes the handshake) but never answers.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        auth = make_auth(server="127.0.0.1", port=listener.getsockname()[1], tls="insecure",
                         timeouts={"connect": 0.5, "receive": 1, "login": 1})
        started = time.monotonic()
        with pytest.raises(web.HTTPError) as info:
            await auth.authenticate(None, {"username": "alice", "password": "pw"})
        elapsed = time.monotonic() - started
    assert info.value.status_code == 503
    assert info.value.log_message == DIRECTORY_DOWN
    assert elapsed < 3


async def test_login_timeout_bounds_a_stuck_worker(auth, monkeypatch):
    auth.login_timeout = 0.2
    release = threading.Event()

    def stuck(userdn, password):
        release.wait(5)
        return None

    monkeypatch.setattr(auth, "get_connection", stuck)
    started = time.monotonic()
    try:
        with pytest.raises(web.HTTPError) as info:
            await auth.authenticate(None, {"username": "alice", "password": "pw"})
    finally:
        release.set()
    assert info.value.status_code == 503
    assert time.monotonic() - started < 2
