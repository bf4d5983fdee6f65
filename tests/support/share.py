"""Links through the sharing service (read-only or collaborate), as an owner and a guest use them."""

from __future__ import annotations

import re
from urllib.parse import urljoin

import requests

from tests.support.hub import xsrf

SHARING = "/services/sharing"


def create_link(hub, token, expires_in=600, access="read") -> dict:
    """A link to the token owner's server (the sharing service's REST API)."""
    r = requests.post(hub.url + SHARING + "/api/links", json={"expires_in": expires_in, "access": access},
                      headers={"Authorization": f"token {token}"}, timeout=30)
    assert r.status_code == 201, r.text
    return r.json()


def accept(hub, viewer_session, url):
    """What the hub's accept page does: GET it, POST its form; follow to the view page."""
    page = viewer_session.get(urljoin(hub.url, url), timeout=30)
    assert page.status_code == 200, page.text
    code = re.search(r'name="code" value="([^"]+)"', page.text).group(1)
    return viewer_session.post(urljoin(hub.url, url), timeout=60,
                               data={"_xsrf": xsrf(viewer_session), "code": code})


def guest_token(hub, session, owner: str, note: str) -> str:
    """What a guest's OAuth token for OWNER's server carries: reach it, read
    (their level there comes from their share)."""
    return hub.api_token(session, note, scopes=[f"access:servers!server={owner}/",
                                                f"custom:jupyter_server:read:*!server={owner}/"])
