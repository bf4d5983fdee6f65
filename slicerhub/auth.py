"""LDAP login for SlicerHub, built on jupyterhub-ldapauthenticator.

What this adds to the upstream class:
- every bind and search runs in a small thread pool with socket timeouts and
  an overall deadline, so a slow or dead directory never blocks the hub's event
  loop (upstream runs them inline in `async def authenticate`);
- login names are checked before they reach LDAP (slicerhub.usernames);
- the LDAP groups a user is in are synced into JupyterHub groups at every login
  (Authenticator.manage_groups), and admin rights come from groups.
"""

from __future__ import annotations

import asyncio
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import ldap3
from ldap3.core.exceptions import LDAPBindError, LDAPCommunicationError, LDAPSocketOpenError
from ldapauthenticator import LDAPAuthenticator
from ldapauthenticator.ldapauthenticator import TlsStrategy
from tornado import web
from traitlets import Float, Integer, List, Unicode, default

from .config import group_name
from .usernames import InvalidUsername, check_login_name

DIRECTORY_DOWN = (
    "The sign-in directory (LDAP) is not answering right now. "
    "Nothing is wrong with your account: please try again in a minute."
)


class SlicerLDAPAuthenticator(LDAPAuthenticator):
    connect_timeout = Float(5.0, config=True, help="Seconds to open a connection to LDAP.")
    receive_timeout = Float(10.0, config=True, help="Seconds to wait for each LDAP reply.")
    login_timeout = Float(
        20.0, config=True, help="Overall seconds one login may spend in LDAP before it fails."
    )
    ldap_workers = Integer(
        8, config=True, help="Threads for LDAP work; more logins than this wait their turn."
    )
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
            tls=ldap3.Tls(**self.tls_kwargs),
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

    def _authenticate_blocking(self, data):
        # Upstream's authenticate is a coroutine that never awaits: run it to
        # completion on this worker thread's own loop.
        return asyncio.run(LDAPAuthenticator.authenticate(self, None, data))

    # --- JupyterHub hooks ----------------------------------------------------

    async def authenticate(self, handler, data):
        try:
            name = check_login_name(data.get("username", ""))
        except InvalidUsername as e:
            # Refused before any LDAP traffic; shown on the login page.
            raise web.HTTPError(403, str(e)) from None
        if not data.get("password"):
            return None
        loop = asyncio.get_running_loop()
        work = loop.run_in_executor(
            self._pool, self._authenticate_blocking, {"username": name, "password": data["password"]}
        )
        try:
            result = await asyncio.wait_for(work, timeout=self.login_timeout)
        except (asyncio.TimeoutError, LDAPSocketOpenError, LDAPCommunicationError) as e:
            self.log.error("LDAP unavailable during login of %s: %s", name, e.__class__.__name__)
            raise web.HTTPError(503, DIRECTORY_DOWN) from None
        if not result:
            return None
        member_of = set(result["auth_state"].get("ldap_groups", []))
        result["groups"] = sorted(group_name(dn) for dn in member_of if dn in self.synced_groups)
        result["admin"] = bool(member_of & set(self.admin_groups))
        return result

    async def check_allowed(self, username, auth_model):
        if not self.login_groups:
            return True
        member_of = set((auth_model.get("auth_state") or {}).get("ldap_groups", []))
        return bool(member_of & set(self.login_groups))
