"""Websocket checks the e2e tests share."""

from __future__ import annotations

import asyncio
import time

from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect


async def ws_status(url: str, token: str) -> int:
    """Open a websocket with ``token``; the HTTP status it was refused with (0: it opened)."""
    try:
        ws = await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {token}"}))
    except HTTPClientError as e:
        return e.code
    ws.close()
    return 0


async def seconds_until_closed(client, limit: float) -> float:
    """Keep reading an RFB client's frames until the server side closes its websocket."""
    from slicerhub.devenv.rfb import RFBError

    start = time.monotonic()
    while time.monotonic() - start < limit:
        try:
            await client.wait_update(timeout=2)
        except (TimeoutError, asyncio.TimeoutError):
            continue  # no new frame is not a close
        except RFBError:
            return time.monotonic() - start
    raise AssertionError(f"the websocket stayed open {limit:.0f} s")


async def settle(client, seconds: float = 3.0) -> bytes:
    """An RFB client's picture once the updates stop coming (input in flight included)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            await client.wait_update(timeout=end - time.monotonic())
        except (TimeoutError, asyncio.TimeoutError):
            break
    return bytes(client.fb.pixels)
