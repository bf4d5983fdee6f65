"""LDAP login for SlicerHub, built on jupyterhub-ldapauthenticator.

What this adds to the upstream class:
- every bind and search runs in a small thread pool with socket timeouts and
  an overall deadline, so a slow or dead directory never blocks the hub's event
  loop (upstream runs them inline in `async def authenticate`);
- login names are checked before they reach LDAP (slicerhub.usernames);
- the directory's displayName (else cn) becomes JupyterHub's user_info, which
  JupyterLab shows collaborators (name, initials, a cursor colour per person);
- the LDAP groups a user is in are synced into JupyterHub groups at every login
  (Authenticator.manage_groups), and admin rights come from groups;
- StartTLS and LDAPS verify the directory's certificate (chain and host name;
  upstream and ldap3 verify nothing by default), and a login that fails on TLS,
  a password LDAP cannot carry or any other LDAP error gets a clear 4xx/503
  message instead of a 500.
"""

from __future__ import annotations

import ast
import asyncio
import collections
import hashlib
import math
import re
import ssl
import stringprep
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import ldap3
from ldap3.core.exceptions import (
    LDAPBindError,
    LDAPCertificateError,
    LDAPCommunicationError,
    LDAPException,
    LDAPPasswordIsMandatoryError,
    LDAPSASLPrepError,
    LDAPSSLConfigurationError,
    LDAPStartTLSError,
)
from ldap3.core.tls import check_hostname as ldap3_check_hostname
from ldap3.protocol.sasl.sasl import validate_simple_password
from jupyterhub.handlers.login import LoginHandler
from ldapauthenticator import LDAPAuthenticator
from ldapauthenticator.ldapauthenticator import TlsStrategy
from tornado import web
from traitlets import Float, Integer, List, Unicode, default

from .config import HubSettings, LdapTimeouts, default_of, group_name
from .usernames import InvalidUsername, check_login_name

DIRECTORY_DOWN = (
    "The sign-in directory (LDAP) is not answering right now. "
    "Nothing is wrong with your account: please try again in a minute."
)


# --- TLS to the directory, and what a failed login tells the person -------------

CERTIFICATE_UNTRUSTED = (
    "The hub could not verify the sign-in directory's (LDAP) certificate, so your password was "
    "not sent. Nothing is wrong with your account: please tell the administrator."
)
CERTIFICATE_WRONG_HOST = (
    "The sign-in directory's (LDAP) certificate is not valid for the address the hub uses to "
    "reach it, so your password was not sent. Nothing is wrong with your account: please tell "
    "the administrator."
)
TLS_FAILED = (
    "The hub could not set up an encrypted connection to the sign-in directory (LDAP), so your "
    "password was not sent. Nothing is wrong with your account: please tell the administrator."
)
DIRECTORY_ERROR = (
    "The sign-in directory (LDAP) gave an unexpected answer. Please try again in a minute; "
    "if it keeps happening, tell the administrator."
)
MAX_PASSWORD_LENGTH = 1024
PASSWORD_TOO_LONG = f"Passwords are at most {MAX_PASSWORD_LENGTH} characters long."
PASSWORD_NOT_TEXT = "Enter your password as text."
PASSWORD_UNUSABLE = (
    "Your password contains {what}, which cannot be sent to the sign-in directory. "
    "Such characters often come with copy and paste: type the password by hand and try again."
)

# OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH and X509_V_ERR_IP_ADDRESS_MISMATCH.
_NAME_MISMATCH_CODES = (62, 64)


class DirectoryCertificateError(ssl.SSLCertVerificationError):
    """The directory's certificate chain is not trusted (wrong or missing CA, expired...)."""


class DirectoryHostnameMismatch(DirectoryCertificateError):
    """The certificate is valid but not for the host name or address we connected to."""


class VerifiedTls(ldap3.Tls):
    """ldap3's Tls, but the directory's certificate is always verified, by OpenSSL.

    ldap3.Tls defaults to `validate=ssl.CERT_NONE` (no verification at all), and
    upstream ldapauthenticator passes `Tls(**tls_kwargs)` as is. Even with
    CERT_REQUIRED, ldap3 turns OpenSSL's host name check off and matches names
    itself after the handshake with `ssl.match_hostname` (deprecated; removed
    in Python 3.12, where ldap3 falls back to a copy that refuses IP addresses
    and trusts the subject CN). Here the chain and the name (DNS name or IP
    address in subjectAltName) are checked during the handshake, against the
    CA bundle in `ca_certs_file`/`ca_certs_path`/`ca_certs_data` or, when none
    is given, the system's CAs.
    """

    def __init__(self, **kwargs):
        kwargs["validate"] = ssl.CERT_REQUIRED
        super().__init__(**kwargs)
        self._context: ssl.SSLContext | None = None

    def context(self) -> ssl.SSLContext:
        if self._context is not None:
            return self._context
        cas = {"cafile": self.ca_certs_file, "capath": self.ca_certs_path, "cadata": self.ca_certs_data}
        if self.version is None:
            # Loads the system CAs only when no CA is given.
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, **cas)
        else:
            ctx = ssl.SSLContext(self.version)
            if any(cas.values()):
                ctx.load_verify_locations(**cas)
            else:
                ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
        ctx.verify_mode = ssl.CERT_REQUIRED
        # Extra accepted names (valid_names) are matched by ldap3 after the handshake.
        ctx.check_hostname = not self.valid_names
        if self.certificate_file:
            ctx.load_cert_chain(self.certificate_file, keyfile=self.private_key_file,
                                password=self.private_key_password)
        for option in self.ssl_options:
            ctx.options |= option
        if self.ciphers:
            ctx.set_ciphers(self.ciphers)
        self._context = ctx
        return ctx

    def wrap_socket(self, connection, do_handshake=False):
        host = self.sni or connection.server.host
        try:
            wrapped = self.context().wrap_socket(
                connection.socket, server_side=False, server_hostname=host,
                do_handshake_on_connect=do_handshake,
            )
        except ssl.SSLCertVerificationError as e:
            kind = DirectoryHostnameMismatch if e.verify_code in _NAME_MISMATCH_CODES else DirectoryCertificateError
            raise kind(f"{e.verify_message} (server {host}:{connection.server.port})") from e
        if do_handshake and self.valid_names:
            ldap3_check_hostname(wrapped, connection.server.host, self.valid_names)
        connection.socket = wrapped


def _exception_chain(exc: BaseException):
    """exc, what caused it, and what ldap3 tucked into its args (one error per address tried)."""
    seen, todo = set(), [exc]
    while todo:
        e = todo.pop(0)
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo += [e.__cause__, e.__context__]
        for arg in e.args:
            items = arg if isinstance(arg, (list, tuple)) else [arg]
            for item in items:
                if isinstance(item, tuple):
                    todo += [x for x in item if isinstance(x, BaseException)]
                elif isinstance(item, BaseException):
                    todo.append(item)


_TUPLE_REPR = re.compile(r"""\(((['"]).*\2),\)""", re.S)


def _plain_text(e: BaseException) -> str:
    """str(e) without the ('...',) reprs ldap3 nests when it re-raises an error."""
    text = str(e)
    for _ in range(8):
        m = _TUPLE_REPR.search(text)
        if not m:
            break
        try:
            inner = ast.literal_eval(m.group(1))
        except (ValueError, SyntaxError):
            break
        text = text[: m.start()] + str(inner) + text[m.end():]
    return text


def _is_name_mismatch(e: BaseException) -> bool:
    return isinstance(e, (DirectoryHostnameMismatch, LDAPCertificateError)) or (
        isinstance(e, ssl.SSLCertVerificationError) and getattr(e, "verify_code", None) in _NAME_MISMATCH_CODES
    )


def login_failure(exc: BaseException) -> tuple[int, str, str]:
    """(HTTP status, message for the person, reason for the log) for an
    exception from a login's LDAP work.

    Certificate problems come first (ldap3 wraps them into socket and StartTLS
    errors), then a directory that is down or silent, then other TLS failures
    (StartTLS refused, no common protocol, unreadable CA file), then anything
    else LDAP said. The reason quotes the innermost matching error.
    """
    chain = list(_exception_chain(exc))

    def reason(label: str, test) -> str:
        found = [e for e in chain if test(e)] or [exc]
        text = _plain_text(found[-1]) or "no answer within the login timeout"
        return f"{label}: {found[-1].__class__.__name__}: {text}"

    if any(_is_name_mismatch(e) for e in chain):
        return 503, CERTIFICATE_WRONG_HOST, reason("certificate not valid for this host", _is_name_mismatch)
    untrusted = lambda e: isinstance(e, ssl.SSLCertVerificationError)  # noqa: E731
    if any(untrusted(e) for e in chain):
        return 503, CERTIFICATE_UNTRUSTED, reason("certificate not trusted", untrusted)
    down = lambda e: isinstance(e, OSError) and not isinstance(e, ssl.SSLError)  # noqa: E731 (timeouts too)
    if any(down(e) for e in chain):
        return 503, DIRECTORY_DOWN, reason("directory unreachable", down)
    tls = lambda e: isinstance(e, (ssl.SSLError, LDAPStartTLSError, LDAPSSLConfigurationError))  # noqa: E731
    if any(tls(e) for e in chain):
        return 503, TLS_FAILED, reason("TLS failed", tls)
    comm = lambda e: isinstance(e, LDAPCommunicationError)  # noqa: E731
    if any(comm(e) for e in chain):
        return 503, DIRECTORY_DOWN, reason("directory unreachable", comm)
    return 503, DIRECTORY_ERROR, reason("unexpected error", lambda e: True)


def _unusable_characters(password: str) -> str:
    """What kind of character SASLprep refused, in words (never the password itself)."""
    if any(0xD800 <= ord(c) <= 0xDFFF for c in password):
        return "a broken character (half of a surrogate pair)"
    if any(stringprep.in_table_c21(c) or stringprep.in_table_c22(c) for c in password):
        return "a control character (such as a tab or a line break)"
    if any(stringprep.in_table_c8(c) for c in password):
        return "an invisible text-direction or formatting mark"
    if any(stringprep.in_table_c3(c) or stringprep.in_table_c4(c) for c in password):
        return "a private-use or non-character code point"
    if any(stringprep.in_table_d1(c) for c in password):
        return "right-to-left letters mixed with other text in a way LDAP passwords do not allow"
    return "a character that is not allowed in LDAP passwords"


def check_password(password) -> str | None:
    """Why *password* cannot be sent in an LDAP simple bind, or None when it can.

    ldap3 prepares every password with SASLprep (RFC 4013) and raises
    LDAPSASLPrepError for control characters, bidi overrides and the like; we
    ask it the same question before any LDAP traffic.
    """
    if not isinstance(password, str):
        return PASSWORD_NOT_TEXT
    if len(password) > MAX_PASSWORD_LENGTH:
        return PASSWORD_TOO_LONG
    try:
        validate_simple_password(password)
    except LDAPPasswordIsMandatoryError:
        return None  # empty: refused as a bad password, as always
    except LDAPSASLPrepError:
        return PASSWORD_UNUSABLE.format(what=_unusable_characters(password))
    return None


LOGINS_BUSY = (
    "Many people are signing in at this moment. Nothing is wrong with your account: "
    "please sign in again in {seconds} seconds."
)


class LoginGate:
    """At most `limit` logins in progress; the others wait their turn, first come first served.

    Waiting costs the hub nothing (a future on the event loop, no CPU), unlike a
    login in progress (LDAP bind and group searches on a worker thread, then the
    hub's own database work). `limit` 0 means no limit.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.busy = 0
        self._waiters: collections.deque[asyncio.Future] = collections.deque()

    @property
    def waiting(self) -> int:
        return sum(1 for w in self._waiters if not w.done())

    async def enter(self, timeout: float) -> bool:
        """True once admitted (call leave() after); False if still waiting after `timeout` s."""
        if self.limit <= 0:
            return True
        if self.busy < self.limit and not self.waiting:
            self.busy += 1
            return True
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            # A slot handed over just as the timeout fires still counts (wait_for returns it).
            return await asyncio.wait_for(waiter, timeout)
        except asyncio.TimeoutError:
            return False
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def leave(self) -> None:
        if self.limit <= 0:
            return
        self.busy -= 1
        self._admit()  # the slot goes straight to the next in line, before any newcomer

    def set_limit(self, limit: int) -> None:
        """A new limit (>= 1) from now on: more room lets waiters in at once;
        less lets the ones in progress finish first."""
        self.limit = limit
        self._admit()

    def _admit(self) -> None:
        while self._waiters and self.busy < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.busy += 1
                waiter.set_result(True)


class QueuedLoginHandler(LoginHandler):
    """The login page and form, at most `concurrent_login_limit` of each processed at once.

    A class signing in at the same moment queues here instead of all running at
    once on the hub's one event loop, which made every other request wait
    seconds (benchmarks/README.md). The turn is taken before anything else the
    request does (JupyterHub's own prepare: cookies, database), and given back
    when the response is finished. A login (POST) still waiting after
    `login_queue_timeout` gets a 503 with Retry-After and a clear message on
    the login form; the page (GET) is then rendered anyway (it is cheap).
    While the directory does not answer, more logins go at once
    (SlicerLDAPAuthenticator._directory_answers).
    """

    _gate: LoginGate | None = None

    async def prepare(self):
        auth = self.authenticator
        posting = self.request.method == "POST"
        gate = auth.login_gate if posting else auth.login_page_gate
        if await gate.enter(auth.login_queue_timeout):
            self._gate = gate
        elif posting:
            self.log.warning("Login queue full: %d in progress, %d waiting", gate.busy, gate.waiting)
            err = web.HTTPError(503, LOGINS_BUSY.format(seconds=auth.login_retry_seconds))
            err.headers = {"Retry-After": str(auth.login_retry_seconds)}  # JupyterHub's write_error sends these
            raise err
        return await super().prepare()

    def _leave(self) -> None:
        gate, self._gate = self._gate, None
        if gate is not None:
            gate.leave()

    def on_finish(self):
        self._leave()
        super().on_finish()

    def on_connection_close(self):
        # The browser went away: its turn goes to the next in line now.
        self._leave()
        super().on_connection_close()


# Collaborators' cursors and names in JupyterLab: one colour per person,
# the same in every session (a hash of the user name), readable on JupyterLab's
# light and dark themes.
CURSOR_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#e377c2", "#17becf", "#bcbd22", "#ff7f0e")


def _first(attributes: dict, name: str) -> str:
    value = attributes.get(name)
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    return value.strip() if isinstance(value, str) else ""


def user_info(name: str, attributes: dict) -> dict:
    """JupyterHub's ``user_info`` (shown by JupyterLab as a collaborator's
    name, initials and cursor colour) from the directory's ``displayName``,
    else ``cn``, else the login name."""
    display = _first(attributes, "displayName") or _first(attributes, "cn") or name
    words = [w for w in re.split(r"[\s._-]+", display) if w]
    initials = "".join(w[0] for w in words[:2]).upper() or name[:1].upper()
    colour = CURSOR_COLOURS[int(hashlib.sha256(name.encode()).hexdigest(), 16) % len(CURSOR_COLOURS)]
    return {"name": display, "display_name": display, "initials": initials, "color": colour}


class SlicerLDAPAuthenticator(LDAPAuthenticator):
    connect_timeout = Float(default_of(LdapTimeouts, "connect"), config=True,
                            help="Seconds to open a connection to LDAP.")
    receive_timeout = Float(default_of(LdapTimeouts, "receive"), config=True,
                            help="Seconds to wait for each LDAP reply.")
    login_timeout = Float(
        default_of(LdapTimeouts, "login"), config=True, help="Overall seconds one login may spend in LDAP before it fails."
    )
    ldap_workers = Integer(
        8, config=True, help="Threads for LDAP work; more logins than this wait their turn."
    )
    concurrent_login_limit = Integer(
        default_of(HubSettings, "concurrent_login_limit"),
        config=True,
        help="Logins processed at once (LDAP and the hub's own bookkeeping), and login pages "
        "rendered at once; the others wait their turn, costing nothing. While the directory "
        "does not answer, up to ldap_workers logins go at once. 0 = no limit.",
    )
    login_queue_timeout = Float(
        default_of(HubSettings, "login_queue_seconds"), config=True, help="Seconds a login may wait for its turn before a 503 with Retry-After."
    )
    login_retry_seconds = Integer(10, config=True, help="Retry-After of that 503.")
    admin_groups = List(Unicode(), config=True, help="LDAP group DNs whose members are hub admins.")
    login_groups = List(
        Unicode(), config=True, help="LDAP group DNs whose members may log in; empty = all."
    )
    synced_groups = List(
        Unicode(), config=True, help="LDAP group DNs synced into JupyterHub groups at login."
    )
    lookup_dn_search_password_file = Unicode(
        "", config=True, help="File holding the lookup bind password (never put it in config)."
    )

    @default("manage_groups")
    def _manage_groups_default(self):
        return True

    @default("auth_state_attributes")
    def _auth_state_attributes_default(self):
        # What user_info shows collaborators (names and cursors in JupyterLab).
        return ["displayName", "cn"]

    @default("allowed_groups")
    def _allowed_groups_default(self):
        # Upstream only looks up membership of `allowed_groups`; we give it every
        # group we care about and apply the real login rule in check_allowed.
        return list(dict.fromkeys([*self.login_groups, *self.admin_groups, *self.synced_groups]))

    @default("lookup_dn_search_password")
    def _lookup_password_default(self):
        if self.lookup_dn_search_password_file:
            return Path(self.lookup_dn_search_password_file).read_text().strip()
        return None

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._pool = ThreadPoolExecutor(self.ldap_workers, thread_name_prefix="ldap")
        self.login_gate = LoginGate(self.concurrent_login_limit)
        self.login_page_gate = LoginGate(self.concurrent_login_limit)

    def get_handlers(self, app):
        return [("/login", QueuedLoginHandler)]

    # --- LDAP I/O, always on a worker thread ---------------------------------

    def get_connection(self, userdn, password):
        """Upstream's bind, with socket timeouts so a worker is never stuck."""
        use_ssl = self.tls_strategy == TlsStrategy.on_connect
        if self.tls_strategy == TlsStrategy.before_bind:
            auto_bind = ldap3.AUTO_BIND_TLS_BEFORE_BIND
        else:
            auto_bind = ldap3.AUTO_BIND_NO_TLS
        server = ldap3.Server(
            self.server_address,
            port=self.server_port,
            use_ssl=use_ssl,
            tls=None if self.tls_strategy == TlsStrategy.insecure else self._tls(),
            connect_timeout=self.connect_timeout,
            # Don't fetch and parse the server schema on every bind: 13 ms of
            # hub CPU per login, measured (benchmarks/README.md).
            get_info=ldap3.NONE,
        )
        try:
            return ldap3.Connection(
                server,
                user=userdn,
                password=password,
                auto_bind=auto_bind,
                # ldap3 packs this into SO_RCVTIMEO as whole seconds.
                receive_timeout=max(1, math.ceil(self.receive_timeout)),
                raise_exceptions=False,
            )
        except LDAPBindError:
            self.log.debug("LDAP bind refused for %s", userdn)
            return None

    def _tls(self) -> VerifiedTls:
        # One per authenticator: the CA bundle is read once, not at every bind.
        tls = getattr(self, "_verified_tls", None)
        if tls is None:
            tls = self._verified_tls = VerifiedTls(**self.tls_kwargs)
        return tls

    def _authenticate_blocking(self, data):
        # Upstream's authenticate is a coroutine that never awaits: run it to
        # completion on this worker thread's own loop.
        return asyncio.run(LDAPAuthenticator.authenticate(self, None, data))

    # --- JupyterHub hooks ----------------------------------------------------

    async def authenticate(self, handler, data):
        username = data.get("username", "")
        try:
            name = check_login_name(username if isinstance(username, str) else None)
        except InvalidUsername as e:
            # Refused before any LDAP traffic; shown on the login page.
            raise web.HTTPError(403, str(e)) from None
        password = data.get("password")
        if not password:
            return None
        problem = check_password(password)
        if problem:
            # Also before any LDAP traffic: ldap3 would raise LDAPSASLPrepError (a 500).
            self.log.warning("Login of %s refused before LDAP: %s", name, problem)
            raise web.HTTPError(400, problem)
        loop = asyncio.get_running_loop()
        work = loop.run_in_executor(
            self._pool, self._authenticate_blocking, {"username": name, "password": password}
        )
        try:
            result = await asyncio.wait_for(work, timeout=self.login_timeout)
        except Exception as e:
            status, message, reason = login_failure(e)
            where = f"tls={self.tls_strategy.name} {self.server_address}:{self.server_port}"
            if self.tls_strategy != TlsStrategy.insecure:
                where += f" ca_file={self.tls_kwargs.get('ca_certs_file') or 'system CAs'}"
            if isinstance(e, (LDAPException, OSError)):  # OSError: timeouts and ssl errors too
                self.log.error("LDAP login of %s failed (%s): %s", name, where, reason)
            else:  # not LDAP's doing: keep the traceback
                self.log.exception("LDAP login of %s failed (%s): %s", name, where, reason)
            if status == 503:
                self._directory_answers(False)
            raise web.HTTPError(status, message) from None
        self._directory_answers(True)
        if not result:
            return None
        member_of = set(result["auth_state"].get("ldap_groups", []))
        result["groups"] = sorted(group_name(dn) for dn in member_of if dn in self.synced_groups)
        result["admin"] = bool(member_of & set(self.admin_groups))
        result["user_info"] = user_info(result["name"], result["auth_state"].get("user_attributes") or {})
        return result

    def _directory_answers(self, answering: bool) -> None:
        """While the directory does not answer, logins wait on sockets, not on the
        hub: as many go at once as there are LDAP threads, so that each learns
        "directory not answering" after its own timeouts instead of queueing
        behind the others' (benchmarks/README.md, LDAP stall). Back to
        `concurrent_login_limit` as soon as the directory answers again."""
        if self.concurrent_login_limit > 0:
            wide = max(self.concurrent_login_limit, self.ldap_workers)
            self.login_gate.set_limit(self.concurrent_login_limit if answering else wide)

    async def check_allowed(self, username, auth_model):
        if not self.login_groups:
            return True
        member_of = set((auth_model.get("auth_state") or {}).get("ldap_groups", []))
        return bool(member_of & set(self.login_groups))
