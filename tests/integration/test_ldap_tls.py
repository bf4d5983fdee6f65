"""LDAP over TLS for real: StartTLS and LDAPS against a real slapd with a
throw-away CA, through the authenticator and through a real JupyterHub.

The directory's certificate is swapped on the running port (slapd restarted
with other files) to show a wrong CA and a host name mismatch, then put back:
the hub refuses with a clear message and recovers without a restart.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time

import pytest
import requests
from tornado import web

from slicerhub import auth as slicer_auth
from slicerhub.auth import SlicerLDAPAuthenticator
from slicerhub.config import parse_config
from slicerhub.devenv.ldap import CertificateAuthority, Slapd, make_test_pki
from tests.integration import conftest as base
from tests.integration.test_hub_ldap import error_text
from tests.support.hub import Hub, free_port, write_config
from tests.unit.helpers import demo_data, traitlets_config
from tests.support.hostile import UNUSABLE_PASSWORDS

pytestmark = pytest.mark.integration

if not shutil.which("slapd"):
    pytest.fail("slapd is not installed: `make test` installs it (apt-get install slapd ldap-utils)")

TIMEOUTS = {"connect": 2, "receive": 3, "login": 6}
# Passwords ldap3's SASLprep refuses (LDAPSASLPrepError, a 500 before).
SASLPREP_PASSWORDS = {k: UNUSABLE_PASSWORDS[k] for k in
                      ("tab", "del", "nul", "bidi-override", "surrogate", "private-use")}


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """The directory's CA and server certificate (localhost, 127.0.0.1)."""
    return make_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_slapd(pki, tmp_path_factory):
    server = Slapd(tmp_path_factory.mktemp("ldap-tls"), base.test_directory(), tls=pki)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory):
    """An unrelated CA: what a hub with the wrong ca_file trusts."""
    return CertificateAuthority(tmp_path_factory.mktemp("other-ca"))


@pytest.fixture(scope="module")
def swap_cert(tls_slapd, tmp_path_factory):
    """Serve another certificate on the same ports for the duration of a `with`."""

    @contextlib.contextmanager
    def swap(material):
        original = tls_slapd.tls
        tls_slapd.stop()
        tls_slapd.tls = material
        tls_slapd.start()
        try:
            yield
        finally:
            tls_slapd.stop()
            tls_slapd.tls = original
            tls_slapd.start()

    return swap


@pytest.fixture(scope="module")
def wrong_host_cert(pki, tmp_path_factory):
    """Signed by the right CA, for another name."""
    return CertificateAuthority(pki.ca_file.parent).issue(
        ["ldap.elsewhere.test"], directory=tmp_path_factory.mktemp("elsewhere")
    )


@pytest.fixture(scope="module")
def foreign_cert(other_ca):
    """The right names, signed by a CA the hub does not trust."""
    return other_ca.issue(["localhost", "127.0.0.1"])


# ------------------------------------------------ the authenticator itself


@pytest.fixture
def make_auth():
    made = []

    def make(**ldap):
        data = demo_data()
        data["ldap"].update({"bind_dn_template": [f"uid={{username}},ou=people,{base.SUFFIX}"],
                             "timeouts": TIMEOUTS, **ldap})
        auth = SlicerLDAPAuthenticator(config=traitlets_config(parse_config(data)))
        made.append(auth)
        return auth

    yield make
    for auth in made:
        auth._pool.shutdown(wait=False, cancel_futures=True)


def strategy(tls_slapd, tls, server="127.0.0.1", ca_file=None):
    port = tls_slapd.tls_port if tls == "on_connect" else tls_slapd.port
    out = {"server": server, "port": port, "tls": tls}
    if ca_file:
        out["ca_file"] = str(ca_file)
    return out


async def refused(auth, password="student1-pw"):
    started = time.monotonic()
    with pytest.raises(web.HTTPError) as info:
        await auth.authenticate(None, {"username": "student1", "password": password})
    return info.value, time.monotonic() - started


@pytest.mark.parametrize("tls", ["before_bind", "on_connect"])
@pytest.mark.parametrize("server", ["127.0.0.1", "localhost"])
async def test_good_login_verifies_the_certificate(make_auth, tls_slapd, pki, tls, server):
    auth = make_auth(**strategy(tls_slapd, tls, server, pki.ca_file))
    result = await auth.authenticate(None, {"username": "student1", "password": "student1-pw"})
    assert result["name"] == "student1"
    assert result["groups"] == ["anat101", "students"]
    # What collaborators see in JupyterLab: the directory's displayName.
    assert result["user_info"]["display_name"] == "Samantha Student"
    assert result["user_info"]["initials"] == "SS" and result["user_info"]["color"].startswith("#")
    assert await auth.authenticate(None, {"username": "student1", "password": "wrong"}) is None


@pytest.mark.parametrize("tls", ["before_bind", "on_connect"])
async def test_wrong_ca_is_refused_clearly(make_auth, tls_slapd, other_ca, tls, caplog):
    auth = make_auth(**strategy(tls_slapd, tls, ca_file=other_ca.cert_file))
    with caplog.at_level(logging.ERROR):
        err, elapsed = await refused(auth)
    assert (err.status_code, err.log_message) == (503, slicer_auth.CERTIFICATE_UNTRUSTED)
    assert elapsed < TIMEOUTS["login"]
    assert "certificate not trusted" in caplog.text
    assert "self-signed certificate in certificate chain" in caplog.text  # slapd sends its CA too
    assert "student1" in caplog.text and "student1-pw" not in caplog.text


@pytest.mark.parametrize("tls", ["before_bind", "on_connect"])
async def test_system_cas_do_not_trust_a_private_ca(make_auth, tls_slapd, tls):
    # No ca_file: the system's CAs, which never signed the test CA.
    err, _ = await refused(make_auth(**strategy(tls_slapd, tls)))
    assert (err.status_code, err.log_message) == (503, slicer_auth.CERTIFICATE_UNTRUSTED)


@pytest.mark.parametrize("tls", ["before_bind", "on_connect"])
async def test_hostname_mismatch_is_refused_clearly(make_auth, tls_slapd, pki, swap_cert, wrong_host_cert,
                                                    tls, caplog):
    auth = make_auth(**strategy(tls_slapd, tls, ca_file=pki.ca_file))
    with swap_cert(wrong_host_cert), caplog.at_level(logging.ERROR):
        err, elapsed = await refused(auth)
    assert (err.status_code, err.log_message) == (503, slicer_auth.CERTIFICATE_WRONG_HOST)
    assert elapsed < TIMEOUTS["login"]
    assert "IP address mismatch" in caplog.text


async def test_name_not_in_the_certificate(make_auth, tls_slapd, pki, tmp_path):
    # A certificate for 127.0.0.1 only, reached as localhost.
    ip_only = CertificateAuthority(pki.ca_file.parent).issue(["127.0.0.1"], directory=tmp_path)
    with Slapd(tmp_path / "ldap", base.test_directory(), tls=ip_only) as server:
        ok = make_auth(**strategy(server, "before_bind", "127.0.0.1", pki.ca_file))
        assert (await ok.authenticate(None, {"username": "student1", "password": "student1-pw"}))["name"]
        err, _ = await refused(make_auth(**strategy(server, "before_bind", "localhost", pki.ca_file)))
    assert err.log_message == slicer_auth.CERTIFICATE_WRONG_HOST


async def test_starttls_refused_by_the_directory(make_auth, slapd, pki, caplog):
    # The plain test directory has no TLS configured: the StartTLS request fails.
    auth = make_auth(server="127.0.0.1", port=slapd.port, tls="before_bind", ca_file=str(pki.ca_file))
    with caplog.at_level(logging.ERROR):
        err, elapsed = await refused(auth)
    assert (err.status_code, err.log_message) == (503, slicer_auth.TLS_FAILED)
    assert elapsed < TIMEOUTS["login"]
    assert "startTLS failed" in caplog.text


async def test_ldaps_to_a_plain_ldap_port(make_auth, slapd, pki):
    err, elapsed = await refused(make_auth(server="127.0.0.1", port=slapd.port, tls="on_connect",
                                           ca_file=str(pki.ca_file)))
    assert err.status_code == 503
    assert err.log_message in (slicer_auth.TLS_FAILED, slicer_auth.DIRECTORY_DOWN)
    assert elapsed < TIMEOUTS["login"]


async def test_missing_ca_file(make_auth, tls_slapd, tmp_path, caplog):
    auth = make_auth(**strategy(tls_slapd, "before_bind", ca_file=tmp_path / "no-such-ca.pem"))
    with caplog.at_level(logging.ERROR):
        err, _ = await refused(auth)
    assert (err.status_code, err.log_message) == (503, slicer_auth.TLS_FAILED)
    assert "invalid CA public key file" in caplog.text


@pytest.mark.parametrize("password,expected", SASLPREP_PASSWORDS.values(), ids=SASLPREP_PASSWORDS.keys())
async def test_saslprep_passwords_are_400_before_any_ldap(make_auth, password, expected):
    # A closed port: had the password reached LDAP, this would be a 503.
    auth = make_auth(server="127.0.0.1", port=free_port(), tls="insecure")
    err, _ = await refused(auth, password)
    assert err.status_code == 400
    assert expected in err.log_message and "type the password by hand" in err.log_message
    assert password not in err.log_message


async def test_hostile_values_are_4xx(make_auth):
    auth = make_auth(server="127.0.0.1", port=free_port(), tls="insecure")
    err, _ = await refused(auth, "x" * 100_000)
    assert (err.status_code, err.log_message) == (400, slicer_auth.PASSWORD_TOO_LONG)
    for password in (12345, ["pw"], {"pw": 1}, b"pw"):
        err, _ = await refused(auth, password)
        assert (err.status_code, err.log_message) == (400, slicer_auth.PASSWORD_NOT_TEXT)
    for username in (None, 7, ["student1"], {"a": 1}, "student1\ud800", "s" * 100_000):
        with pytest.raises(web.HTTPError) as info:
            await auth.authenticate(None, {"username": username, "password": "pw"})
        assert info.value.status_code == 403


# ------------------------------------------------------ through a real hub


def start_hub(tmp_path_factory, name, ldap):
    workdir = tmp_path_factory.mktemp(name)
    port = free_port()
    config = write_config(
        workdir / "slicerhub.yaml",
        ldap["port"],
        port,
        backend={"docker": {"hub_connect_ip": "127.0.0.1"}},
        ldap={"timeouts": TIMEOUTS, **ldap},
    )
    return Hub(workdir, config, port)


@pytest.fixture(scope="module")
def hub_starttls(tls_slapd, pki, tmp_path_factory):
    with start_hub(tmp_path_factory, "hub-starttls", strategy(tls_slapd, "before_bind", ca_file=pki.ca_file)) as hub:
        yield hub


@pytest.fixture(scope="module")
def hub_ldaps(tls_slapd, pki, tmp_path_factory):
    with start_hub(tmp_path_factory, "hub-ldaps", strategy(tls_slapd, "on_connect", "localhost", pki.ca_file)) as hub:
        yield hub


def timed_login(hub, username="student1", password="student1-pw"):
    started = time.monotonic()
    _, r = hub.login(username, password)
    return r, time.monotonic() - started


@pytest.mark.parametrize("which", ["hub_starttls", "hub_ldaps"])
def test_hub_login_over_tls(request, which):
    hub = request.getfixturevalue(which)
    r, _ = timed_login(hub)
    assert r.status_code == 302, error_text(r)
    r, _ = timed_login(hub, password="wrong")
    assert r.status_code == 403
    assert error_text(r) == "Invalid username or password"


@pytest.mark.parametrize("which", ["hub_starttls", "hub_ldaps"])
def test_hub_refuses_a_certificate_it_cannot_verify_then_recovers(request, which, swap_cert, foreign_cert,
                                                                  wrong_host_cert):
    hub = request.getfixturevalue(which)
    with swap_cert(foreign_cert):
        r, elapsed = timed_login(hub)
        assert r.status_code == 503
        assert error_text(r) == slicer_auth.CERTIFICATE_UNTRUSTED
        assert elapsed < TIMEOUTS["login"]
    with swap_cert(wrong_host_cert):
        r, elapsed = timed_login(hub)
        assert r.status_code == 503
        assert error_text(r) == slicer_auth.CERTIFICATE_WRONG_HOST
        assert elapsed < TIMEOUTS["login"]
    log = hub.log_path.read_text(errors="replace")
    assert "certificate not trusted" in log
    assert "certificate not valid for this host" in log and "mismatch" in log
    assert "500 POST /hub/login" not in log
    # The directory's own certificate again: no hub restart needed.
    r, _ = timed_login(hub)
    assert r.status_code == 302, error_text(r)


# Through the form: tornado turns NUL (and \x01-\x08, \x0e-\x1f) into spaces, and
# a lone surrogate cannot be sent as UTF-8; the authenticator tests cover those.
FORM_PASSWORDS = {k: v for k, v in SASLPREP_PASSWORDS.items() if k not in ("nul", "surrogate")}


@pytest.mark.parametrize("password,expected", FORM_PASSWORDS.values(), ids=FORM_PASSWORDS.keys())
def test_hub_saslprep_passwords_are_400_with_a_message(hub_starttls, password, expected):
    r, _ = timed_login(hub_starttls, password=password)
    assert r.status_code == 400, error_text(r)
    assert expected in error_text(r)
    assert requests.get(hub_starttls.url + "/hub/health", timeout=5).ok


def test_hub_healthy_after_hostile_logins(hub_starttls):
    r, _ = timed_login(hub_starttls, password="x" * 5000)
    assert r.status_code == 400
    assert error_text(r) == slicer_auth.PASSWORD_TOO_LONG
    r, _ = timed_login(hub_starttls)
    assert r.status_code == 302, error_text(r)
    assert "500 POST /hub/login" not in hub_starttls.log_path.read_text(errors="replace")
