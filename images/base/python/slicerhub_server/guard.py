"""Server-side enforcement of read-only access (shared sessions).

* ``ScopedAuthorizer``: the Jupyter Server Authorizer. An action on a
  resource needs ``custom:jupyter_server:<action>:<resource|*>`` for this
  server, on top of JupyterHub's own ``access:servers`` check.
* ``ReadOnlyGuard``: JupyterHub's identity provider plus a route check. Every
  Jupyter handler, including those that only check login (jupyter-server-proxy,
  Voilà, the remote desktop), asks the identity provider who the caller is,
  so this is the one place that sees every Jupyter handler. (Plain tornado
  handlers never ask: Voilà's ``voila/files/`` static handler is one, and the
  image's config gives it an empty allowlist.) A caller below
  ``execute`` gets ``policy.viewer_may`` routes only, and their websockets are
  re-checked against the hub every few seconds, so a revoked or expired share
  closes an open desktop view too; while the hub restarts (no answer) they stay
  open, up to ``hub_outage_grace_seconds``.
"""

from __future__ import annotations

import asyncio
import os
import time

from jupyterhub.singleuser.extension import JupyterHubAuthorizer, JupyterHubIdentityProvider
from tornado import web
from tornado.ioloop import PeriodicCallback
from traitlets import Float

from . import policy

OWNER = os.environ.get("JUPYTERHUB_USER", "")
SERVER = os.environ.get("JUPYTERHUB_SERVER_NAME", "")


def level_of(hub_auth, hub_user: dict) -> str | None:
    return policy.level_of(lambda scopes: hub_auth.check_scopes(scopes, hub_user), OWNER, SERVER)


class ScopedAuthorizer(JupyterHubAuthorizer):
    def is_authorized(self, handler, user, action, resource):
        if not super().is_authorized(handler, user, action, resource):
            return False
        wanted = policy.scopes_for(action, resource, OWNER, SERVER)
        allowed = bool(self.hub_auth.check_scopes(wanted, user.hub_user))
        if not allowed:
            self.log.warning("read-only: %s may not %s %s", user.username, action, resource)
        return allowed


class ReadOnlyGuard(JupyterHubIdentityProvider):
    recheck_seconds = Float(
        5.0, config=True,
        help="How often a read-only caller's open websockets are re-checked with the hub "
        "(the bound on how long a revoked share keeps an open desktop view).",
    )
    hub_outage_grace_seconds = Float(
        180.0, config=True,
        help="How long viewers' open websockets stay open while the hub API does not answer "
        "(a hub restart); longer than that, they are closed (fail closed).",
    )

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._watched: dict = {}  # websocket handler -> [token, seen open]
        self._recheck = None

    async def get_user(self, handler):
        user = await super().get_user(handler)
        if user is None or hasattr(handler, "_slicerhub_level"):
            return user
        level = level_of(self.hub_auth, user.hub_user)
        handler._slicerhub_level = level
        request = handler.request
        if level is None:
            # Server access without any level here (e.g. an admin's access:servers): nothing.
            self.log.warning("read-only: %s has no access level on this server", user.username)
            raise web.HTTPError(403, f"{user.username} has no access to this server's contents")
        if level == "execute":
            return user
        path = policy.relative_path(request.path, handler.base_url)
        if path is None or not policy.viewer_may(request.method, path):
            self.log.warning("read-only: refused %s %s for %s", request.method, request.path, user.username)
            raise web.HTTPError(403, f"read-only access: {request.method} {request.path} is not allowed")
        if request.headers.get("Upgrade", "").lower() == "websocket":
            self._watch(handler)
        return user

    def _watch(self, handler) -> None:
        token = self.hub_auth.get_token(handler)
        if not token:
            raise web.HTTPError(403, "read-only websockets need a token")
        self._watched[handler] = [token, False, None]  # token, seen open, hub silent since
        if self._recheck is None:
            self._recheck = PeriodicCallback(self._recheck_websockets, self.recheck_seconds * 1000)
            self._recheck.start()

    async def _recheck_websockets(self) -> None:
        # All viewers at once, each check bounded: a hub that accepts connections
        # but does not answer must not stretch one round past the grace.
        checks = []
        for handler, entry in list(self._watched.items()):
            if getattr(handler, "ws_connection", None) is None:
                if entry[1] or handler._finished:
                    self._watched.pop(handler, None)  # closed, or refused before the upgrade
                continue
            entry[1] = True
            checks.append(self._recheck_one(handler, entry))
        await asyncio.gather(*checks)

    async def _recheck_one(self, handler, entry) -> None:
        token, _, unanswered_since = entry
        try:
            hub_user = await asyncio.wait_for(
                self.hub_auth.user_for_token(token, use_cache=False, sync=False), self.recheck_seconds)
        except Exception as e:
            status = e.status_code if isinstance(e, web.HTTPError) else None
            outage = isinstance(e, (asyncio.TimeoutError, TimeoutError)) or policy.hub_outage(
                status, getattr(e, "log_message", "") or "")
            verdict = None if outage else False
            if outage and unanswered_since is None:
                self.log.warning("read-only: the hub does not answer (%s); viewers keep their access "
                                 "for up to %.0f s", e or type(e).__name__, self.hub_outage_grace_seconds)
            elif not outage:
                self.log.warning("read-only: re-checking a viewer failed (%s); closing", e)
        else:
            # Access to this server (what a share gives) and a level in it.
            verdict = bool(hub_user and self.hub_auth.check_scopes(self.hub_auth.access_scopes, hub_user)
                           and level_of(self.hub_auth, hub_user) is not None)
        keep, entry[2] = policy.keep_watching(verdict, unanswered_since, time.monotonic(),
                                              self.hub_outage_grace_seconds)
        if not keep:
            why = "access revoked or expired" if verdict is False else "access could not be confirmed"
            self.log.warning("read-only: %s; closing %s", why, handler.request.path)
            self._watched.pop(handler, None)
            handler.close(4403, why)
