"""The few hub REST calls the sharing service makes.

The scopes it grants are ``slicerhub_access.share_scopes``: the same module
the single-user server's guard decides with.
"""

from __future__ import annotations

import json
from urllib.parse import quote, urlencode

from jupyterhub.utils import url_path_join
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest


def _items(model) -> list[dict]:
    # Sharing lists come paginated ({"items": […]}); a plain list is accepted too.
    if model is None:
        return []
    return model["items"] if isinstance(model, dict) else list(model)


class HubError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class HubAPI:
    def __init__(self, api_url: str, service_token: str):
        self.api_url, self.service_token = api_url, service_token

    async def call(self, method: str, path: str, *, token: str | None = None, body=None,
                   query: dict | None = None, missing_ok: bool = False):
        url = url_path_join(self.api_url, path)
        if query:
            url += "?" + urlencode(query)
        req = HTTPRequest(url, method=method, headers={
            "Authorization": f"token {token or self.service_token}", "Content-Type": "application/json"},
            body=None if body is None else json.dumps(body), allow_nonstandard_methods=True)
        try:
            resp = await AsyncHTTPClient().fetch(req)
        except HTTPClientError as e:
            if missing_ok and e.code == 404:
                return None
            message = e.message
            if e.response is not None and e.response.body:
                try:
                    message = json.loads(e.response.body).get("message", message)
                except ValueError:
                    pass
            raise HubError(e.code, message) from None
        return json.loads(resp.body) if resp.body else None

    # -- users and groups
    async def user(self, name: str) -> dict | None:
        return await self.call("GET", f"users/{quote(name)}", missing_ok=True)

    async def group_members(self, group: str) -> list[str]:
        model = await self.call("GET", f"groups/{quote(group)}", missing_ok=True)
        return list(model.get("users", [])) if model else []

    # -- share codes (made with the owner's own token) and shares
    async def new_share_code(self, owner_token: str, owner: str, server: str, scopes: list[str],
                             expires_in: int) -> dict:
        return await self.call("POST", f"share-codes/{quote(owner)}/{quote(server)}", token=owner_token,
                               body={"scopes": scopes, "expires_in": expires_in})

    async def share_codes(self, owner: str, server: str) -> list[dict]:
        return _items(await self.call("GET", f"share-codes/{quote(owner)}/{quote(server)}", missing_ok=True))

    async def delete_share_code(self, owner: str, server: str, code_id: str) -> None:
        await self.call("DELETE", f"share-codes/{quote(owner)}/{quote(server)}", query={"id": code_id},
                        missing_ok=True)

    async def shares(self, owner: str, server: str) -> list[dict]:
        return _items(await self.call("GET", f"shares/{quote(owner)}/{quote(server)}", missing_ok=True))

    async def grant(self, owner: str, server: str, viewer: str, scopes: list[str],
                    owner_token: str | None = None) -> dict:
        """Share the server with VIEWER: as the service (a teacher's join), or
        with the owner's own token (help the owner accepted)."""
        return await self.call("POST", f"shares/{quote(owner)}/{quote(server)}", token=owner_token,
                               body={"user": viewer, "scopes": scopes})

    async def revoke(self, owner: str, server: str, viewer: str, scopes: list[str]) -> None:
        await self.call("PATCH", f"shares/{quote(owner)}/{quote(server)}",
                        body={"user": viewer, "scopes": scopes}, missing_ok=True)
