"""SlicerLDAPAuthenticator without an LDAP server."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import threading
import time

import pytest
from ldap3.core.exceptions import (
    LDAPCertificateError,
    LDAPSASLPrepError,
    LDAPSocketOpenError,
    LDAPSocketReceiveError,
    LDAPSSLConfigurationError,
    LDAPStartTLSError,
    communication_exception_factory,
    start_tls_exception_factory,
)
from ldap3.protocol.sasl.sasl import validate_simple_password
from tornado import web

from slicerhub.auth import (
    CERTIFICATE_UNTRUSTED,
    CERTIFICATE_WRONG_HOST,
    DIRECTORY_DOWN,
    DIRECTORY_ERROR,
    PASSWORD_NOT_TEXT,
    PASSWORD_TOO_LONG,
    TLS_FAILED,
    DirectoryCertificateError,
    DirectoryHostnameMismatch,
    SlicerLDAPAuthenticator,
    VerifiedTls,
    check_password,
    login_failure,
)
from slicerhub.devenv.ldap import CertificateAuthority
from slicerhub.config import parse_config
from slicerhub.usernames import InvalidUsername, check_login_name

from tests.support.hostile import UNUSABLE_PASSWORDS

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
    # membership was asked for every group we care about, and the user's own
    # entry once (displayName and cn: what collaborators see)
    searched = [base for base, _ in directory["conn"].searched]
    assert [base for base in searched if base != userdn] == SYNCED
    assert searched.count(userdn) == 1


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


# ------------------------------------- passwords LDAP cannot carry (SASLprep)



@pytest.mark.parametrize("password,what", UNUSABLE_PASSWORDS.values(), ids=UNUSABLE_PASSWORDS.keys())
async def test_saslprep_refusals_are_400_without_ldap(auth, no_ldap, password, what):
    # ldap3 would raise LDAPSASLPrepError at bind time: a 500 from the login handler.
    with pytest.raises(LDAPSASLPrepError):
        validate_simple_password(password)
    with pytest.raises(web.HTTPError) as info:
        await auth.authenticate(None, {"username": "alice", "password": password})
    assert info.value.status_code == 400
    assert what in info.value.log_message
    assert "type the password by hand" in info.value.log_message
    assert password not in info.value.log_message
    assert no_ldap == []


@pytest.mark.parametrize("password", ["pass word", "p\u00e4ssw\u00f6rd", "\u05d0\u05d1\u05d2", "\u00a0x", "x" * 1024])
def test_usable_passwords_pass(password):
    assert check_password(password) is None


@pytest.mark.parametrize(
    "password,message",
    [("x" * 1025, PASSWORD_TOO_LONG), ("x" * 10_000_000, PASSWORD_TOO_LONG), (7, PASSWORD_NOT_TEXT),
     (["pw"], PASSWORD_NOT_TEXT), ({"a": 1}, PASSWORD_NOT_TEXT), (b"pw", PASSWORD_NOT_TEXT)],
    ids=["1025", "10M", "int", "list", "dict", "bytes"],
)
async def test_hostile_passwords_are_400_without_ldap(auth, no_ldap, password, message):
    started = time.monotonic()
    with pytest.raises(web.HTTPError) as info:
        await auth.authenticate(None, {"username": "alice", "password": password})
    assert (info.value.status_code, info.value.log_message) == (400, message)
    assert time.monotonic() - started < 1
    assert no_ldap == []


@pytest.mark.parametrize("username", [None, 7, ["alice"], {"a": 1}, b"alice", "al\ud800ice", "a" * 10_000_000])
async def test_hostile_usernames_are_403_without_ldap(auth, no_ldap, username):
    with pytest.raises(web.HTTPError) as info:
        await auth.authenticate(None, {"username": username, "password": "pw"})
    assert info.value.status_code == 403
    assert no_ldap == []


# ------------------------------------------- what a failed LDAP call shows


def untrusted(message="unable to get local issuer certificate"):
    return DirectoryCertificateError(message)


def mismatch(message="IP address mismatch, certificate is not valid for '127.0.0.1'."):
    return DirectoryHostnameMismatch(message)


def ldaps_wrapped(inner):
    """What ldap3 raises when the TLS handshake of an ldaps:// connection fails."""
    return communication_exception_factory(LDAPSocketOpenError, inner)(f"socket ssl wrapping error: {inner}")


def starttls_wrapped(inner):
    """What ldap3 raises when the handshake after StartTLS fails."""
    try:
        raise inner
    except Exception as e:
        try:
            raise start_tls_exception_factory(e)(f"wrap socket error: {e}")
        except Exception as wrapped:
            return wrapped


def raw_verify_error(code, message):
    e = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: {message}")
    e.verify_code, e.verify_message = code, message
    return e


FAILURES = {
    "ldaps-untrusted": (ldaps_wrapped(untrusted()), CERTIFICATE_UNTRUSTED, "certificate not trusted"),
    "starttls-untrusted": (starttls_wrapped(untrusted()), CERTIFICATE_UNTRUSTED, "local issuer"),
    "ldaps-mismatch": (ldaps_wrapped(mismatch()), CERTIFICATE_WRONG_HOST, "IP address mismatch"),
    "starttls-mismatch": (starttls_wrapped(mismatch()), CERTIFICATE_WRONG_HOST, "certificate not valid for this host"),
    "raw-hostname-mismatch": (raw_verify_error(62, "Hostname mismatch"), CERTIFICATE_WRONG_HOST, "Hostname mismatch"),
    "raw-expired": (raw_verify_error(10, "certificate has expired"), CERTIFICATE_UNTRUSTED, "expired"),
    "ldap3-name-check": (LDAPCertificateError("certificate doesn't match"), CERTIFICATE_WRONG_HOST, "doesn't match"),
    # Two addresses tried (localhost: ::1 refused, 127.0.0.1 untrusted): ldap3 lists both in args.
    "history": (
        LDAPSocketOpenError("unable to open socket", [
            (ldaps_wrapped(ConnectionRefusedError(111, "refused")), ("::1", 636)),
            (ldaps_wrapped(untrusted()), ("127.0.0.1", 636)),
        ]),
        CERTIFICATE_UNTRUSTED, "local issuer",
    ),
    "starttls-refused": (LDAPStartTLSError("startTLS failed - protocolError"), TLS_FAILED, "protocolError"),
    "handshake": (ldaps_wrapped(ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")),
                  TLS_FAILED, "wrong version number"),
    "bad-ca-file": (LDAPSSLConfigurationError("invalid CA public key file"), TLS_FAILED, "invalid CA public key file"),
    "handshake-timeout": (starttls_wrapped(TimeoutError("timed out")), DIRECTORY_DOWN, "timed out"),
    "refused": (ldaps_wrapped(ConnectionRefusedError(111, "Connection refused")), DIRECTORY_DOWN, "refused"),
    "login-timeout": (asyncio.TimeoutError(), DIRECTORY_DOWN, "no answer within the login timeout"),
    "receive-timeout": (LDAPSocketReceiveError("error receiving data: timed out"), DIRECTORY_DOWN, "timed out"),
    "other-ldap": (LDAPSASLPrepError("SASLprep error"), DIRECTORY_ERROR, "SASLprep"),
    "bug": (KeyError("auth_state"), DIRECTORY_ERROR, "auth_state"),
}


@pytest.mark.parametrize("exc,message,logged", FAILURES.values(), ids=FAILURES.keys())
def test_login_failure_messages(exc, message, logged):
    status, shown, reason = login_failure(exc)
    assert status == 503
    assert shown == message
    assert logged in reason
    assert "('" not in reason  # no nested reprs in the log


def test_messages_tell_the_person_what_to_do():
    for message in (CERTIFICATE_UNTRUSTED, CERTIFICATE_WRONG_HOST, TLS_FAILED):
        assert "password was not sent" in message
        assert "tell the administrator" in message
    assert "certificate" in CERTIFICATE_UNTRUSTED and "verify" in CERTIFICATE_UNTRUSTED


@pytest.mark.parametrize("exc,message", [(ldaps_wrapped(untrusted()), CERTIFICATE_UNTRUSTED),
                                         (starttls_wrapped(mismatch()), CERTIFICATE_WRONG_HOST),
                                         (LDAPStartTLSError("startTLS failed - unavailable"), TLS_FAILED),
                                         (ValueError("a bug"), DIRECTORY_ERROR)])
async def test_authenticate_maps_ldap_failures(auth, monkeypatch, caplog, exc, message):
    def fail(userdn, password):
        raise exc

    monkeypatch.setattr(auth, "get_connection", fail)
    with caplog.at_level(logging.ERROR):
        with pytest.raises(web.HTTPError) as info:
            await auth.authenticate(None, {"username": "alice", "password": "secret-pw"})
    assert (info.value.status_code, info.value.log_message) == (503, message)
    assert "LDAP login of alice failed" in caplog.text
    assert "secret-pw" not in caplog.text


# ------------------------------------------------------------ VerifiedTls


@pytest.mark.parametrize("tls", ["before_bind", "on_connect"])
def test_tls_always_verifies(make_auth, tmp_path, tls):
    ca = CertificateAuthority(tmp_path)
    auth = make_auth(tls=tls, ca_file=str(ca.cert_file))
    assert auth.tls_kwargs == {"ca_certs_file": str(ca.cert_file)}
    t = auth._tls()
    assert isinstance(t, VerifiedTls) and t is auth._tls()  # built once
    assert t.validate == ssl.CERT_REQUIRED
    ctx = t.context()
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert len(ctx.get_ca_certs()) == 1  # only the given CA, not the system's as well


def test_tls_cannot_be_told_not_to_verify():
    assert VerifiedTls(validate=ssl.CERT_NONE).validate == ssl.CERT_REQUIRED
    assert VerifiedTls().context().check_hostname  # system CAs


def test_collaborators_see_the_directorys_display_name_initials_and_a_steady_colour():
    from slicerhub.auth import CURSOR_COLOURS, user_info

    info = user_info("student1", {"displayName": ["Samantha Student"], "cn": ["Sam Student"]})
    assert info["display_name"] == info["name"] == "Samantha Student" and info["initials"] == "SS"
    assert info["color"] in CURSOR_COLOURS
    assert user_info("student1", {})["color"] == info["color"]  # the same person, the same colour
    assert user_info("student2", {"cn": ["Kim Student"]})["display_name"] == "Kim Student"
    plain = user_info("jdoe", {"displayName": []})
    assert plain["display_name"] == "jdoe" and plain["initials"] == "J"
    assert len({user_info(f"user{i}", {})["color"] for i in range(40)}) > 4  # spread over the palette
