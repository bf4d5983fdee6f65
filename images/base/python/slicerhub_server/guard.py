"""Server-side enforcement of shared access (read-only and collaborate links).

* ``ScopedAuthorizer``: the Jupyter Server Authorizer. The caller's level on
  this server (``slicerhub_access.level_of``) must allow the action on the
  resource (``slicerhub_access.may``), on top of JupyterHub's own
  ``access:servers`` check.
* ``ReadOnlyGuard``: JupyterHub's identity provider plus a route check. Every
  Jupyter handler, including those that only check login (jupyter-server-proxy,
  Voilà, the remote desktop), asks the identity provider who the caller is,
  so this is the one place that sees every Jupyter handler. (Plain tornado
  handlers never ask: Voilà's ``voila/files/`` static handler is one, and the
  image's config gives it an empty allowlist.) A caller below ``execute`` gets
  their level's routes only (``policy.route_allowed``); a caller who may not
  edit gets a shared document's websocket with their edits dropped
  (``policy.y_message_allowed``); and every guest's websockets are re-checked
  against the hub every few seconds, so a revoked or expired share closes an
  open desktop view or document too; while the hub restarts (no answer) they
  stay open, up to ``hub_outage_grace_seconds``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from urllib.parse import quote

from jupyterhub.singleuser.extension import JupyterHubAuthorizer, JupyterHubIdentityProvider
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.ioloop import PeriodicCallback
from traitlets import Float

import slicerhub_access as access

from . import policy

OWNER = os.environ.get("JUPYTERHUB_USER", "")
SERVER = os.environ.get("JUPYTERHUB_SERVER_NAME", "")


def level_of(hub_auth, hub_user: dict) -> str | None:
    """The level the caller's token gives here (execute for the owner, read for guests)."""
    return access.level_of(lambda scopes: hub_auth.check_scopes(scopes, hub_user), OWNER, SERVER)


class ServerShares:
    """This server's shares, read from the hub with the server's own token
    (``read:shares!server``, spawners.base.SHARES_READ), at most once per
    ``max_age`` seconds for all guests together."""

    def __init__(self, hub_auth, max_age: float, log):
        self.hub_auth, self.max_age, self.log = hub_auth, max_age, log
        self._shares: list[dict] = []
        self._fetched: float | None = None
        self._refreshing: asyncio.Future | None = None

    async def scopes_of(self, hub_user: dict, fresh: bool = False) -> set[str]:
        """The scopes ``hub_user``'s shares here give (theirs and their groups')."""
        stale = self._fetched is None or time.monotonic() - self._fetched > self.max_age
        if fresh or stale:
            await self._refresh()
        groups = set(hub_user.get("groups") or [])
        held: set[str] = set()
        for share in self._shares:
            user, group = share.get("user") or {}, share.get("group") or {}
            if user.get("name") == hub_user.get("name") or group.get("name") in groups:
                held.update(share.get("scopes") or [])
        return held

    async def _refresh(self) -> None:
        # One request at a time: guests arriving together share its answer.
        if self._refreshing is None:
            self._refreshing = asyncio.ensure_future(self._fetch())
        refreshing = self._refreshing
        try:
            await refreshing
        finally:
            if self._refreshing is refreshing:
                self._refreshing = None

    async def _fetch(self) -> None:
        # …/shares/<user>/<server>, the server part empty for the default
        # server (url_path_join would drop that last slash: a 404).
        url = f"{self.hub_auth.api_url.rstrip('/')}/shares/{quote(OWNER)}/{quote(SERVER)}"
        response = await AsyncHTTPClient().fetch(HTTPRequest(
            url, headers={"Authorization": f"token {self.hub_auth.api_token}"}, request_timeout=10))
        model = json.loads(response.body or b"[]")
        self._shares = model["items"] if isinstance(model, dict) else list(model)
        self._fetched = time.monotonic()


class ScopedAuthorizer(JupyterHubAuthorizer):
    def is_authorized(self, handler, user, action, resource):
        if not super().is_authorized(handler, user, action, resource):
            return False
        level = getattr(handler, "_slicerhub_level", None)
        if level is None:
            level = level_of(self.hub_auth, user.hub_user)
        path = policy.relative_path(handler.request.path, handler.base_url)
        checked = policy.authorizer_action(action, resource, path)
        allowed = access.may(level, checked, resource)
        if not allowed:
            self.log.warning("shared access: %s (%s) may not %s %s", user.username, level, action, resource)
        return allowed


def _drop_edits(handler, username: str, log):
    """Wrap a document websocket's ``on_message`` so this caller's edits never
    reach the shared document (nor a save request); reads and awareness pass."""
    receive = handler.on_message
    dropped = [0]

    def on_message(message):
        if policy.y_message_allowed(message):
            return receive(message)
        save_id = policy.save_request_id(message)
        if save_id is not None:
            handler.write_message(policy.save_refused(save_id), binary=True)
        dropped[0] += 1
        if dropped[0] == 1:  # once per connection: a client retrying must not flood the log
            log.warning("read-only: dropped an edit from %s on %s", username, handler.request.path)
        return None

    handler.on_message = on_message  # tornado looks the callback up on the instance


_LEVEL_NAMES = {"collaborate": "collaborator", "write": "write-only", "read": "read-only"}


class ReadOnlyGuard(JupyterHubIdentityProvider):
    recheck_seconds = Float(
        5.0, config=True,
        help="How often a guest's open websockets are re-checked with the hub "
        "(the bound on how long a revoked share keeps an open desktop view or document).",
    )
    hub_outage_grace_seconds = Float(
        180.0, config=True,
        help="How long guests' open websockets stay open while the hub API does not answer "
        "(a hub restart); longer than that, they are closed (fail closed).",
    )

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._watched: dict = {}  # websocket handler -> [token, seen open, hub silent since, level]
        self._recheck = None
        self._shares = ServerShares(self.hub_auth, self.recheck_seconds / 2, self.log)

    async def get_user(self, handler):
        user = await super().get_user(handler)
        if user is None or hasattr(handler, "_slicerhub_level"):
            return user
        level = await self.level(user.hub_user)
        handler._slicerhub_level = level
        request = handler.request
        if level is None:
            # Server access without any level here (e.g. an admin's access:servers): nothing.
            self.log.warning("shared access: %s has no access level on this server", user.username)
            raise web.HTTPError(403, f"{user.username} has no access to this server's contents")
        if level == "execute":
            return user
        path = policy.relative_path(request.path, handler.base_url)
        if path is None or not policy.route_allowed(level, request.method, path):
            self.log.warning("%s: refused %s %s for %s", level, request.method, request.path, user.username)
            raise web.HTTPError(403, f"{_LEVEL_NAMES[level]} access: {request.method} {request.path} "
                                     "is not allowed")
        if request.headers.get("Upgrade", "").lower() == "websocket":
            if not access.can_edit(level) and policy.is_document_socket(path):
                _drop_edits(handler, user.username, self.log)
            self._watch(handler, level)
        return user

    async def level(self, hub_user: dict, fresh: bool = False) -> str | None:
        """The caller's level here: their token's, raised by their share.
        Without an answer about shares, the token's level stands (fail closed)."""
        token_level = level_of(self.hub_auth, hub_user)
        if token_level in (None, "execute"):
            return token_level
        try:
            held = await self._shares.scopes_of(hub_user, fresh=fresh)
        except Exception as e:
            if fresh:
                raise
            self.log.warning("shared access: cannot read this server's shares (%s); %s gets %s",
                             e, hub_user.get("name"), token_level)
            return token_level
        return access.level_with_share(token_level, held)

    def _watch(self, handler, level: str) -> None:
        token = self.hub_auth.get_token(handler)
        if not token:
            raise web.HTTPError(403, "a guest's websockets need a token")
        self._watched[handler] = [token, False, None, level]  # token, seen open, hub silent since, level
        if self._recheck is None:
            self._recheck = PeriodicCallback(self._recheck_websockets, self.recheck_seconds * 1000)
            self._recheck.start()

    async def _recheck_websockets(self) -> None:
        # All guests at once, each check bounded: a hub that accepts connections
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
        token, _, unanswered_since, opened_at = entry
        try:
            hub_user = await asyncio.wait_for(
                self.hub_auth.user_for_token(token, use_cache=False, sync=False), self.recheck_seconds)
            level = await asyncio.wait_for(self.level(hub_user, fresh=True), self.recheck_seconds) \
                if hub_user else None
        except Exception as e:
            status = e.status_code if isinstance(e, web.HTTPError) else None
            outage = isinstance(e, (asyncio.TimeoutError, TimeoutError)) or policy.hub_outage(
                status, getattr(e, "log_message", "") or "") or (
                isinstance(e, HTTPClientError) and e.code in (502, 503, 599))  # reading the shares
            verdict = None if outage else False
            if outage and unanswered_since is None:
                self.log.warning("shared access: the hub does not answer (%s); guests keep their access "
                                 "for up to %.0f s", e or type(e).__name__, self.hub_outage_grace_seconds)
            elif not outage:
                self.log.warning("shared access: re-checking a guest failed (%s); closing", e)
        else:
            # Access to this server (what a share gives) and still the level the
            # socket was opened with: a collaborator whose link ended but who
            # also holds a read-only one reconnects, and is read-only then.
            verdict = bool(hub_user and self.hub_auth.check_scopes(self.hub_auth.access_scopes, hub_user)
                           and policy.still_at(level, opened_at))
        keep, entry[2] = policy.keep_watching(verdict, unanswered_since, time.monotonic(),
                                              self.hub_outage_grace_seconds)
        if not keep:
            why = "access revoked or expired" if verdict is False else "access could not be confirmed"
            self.log.warning("shared access: %s; closing %s", why, handler.request.path)
            self._watched.pop(handler, None)
            handler.close(4403, why)
