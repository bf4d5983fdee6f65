"""A raw client of jupyter-collaboration's document websocket, with pycrdt.

What JupyterLab's docprovider does, minus the editor: ask the server for the
document's room (PUT api/collaboration/session/<path>), open
api/collaboration/room/<format>:<type>:<file id>, sync with y-protocols
messages, send edits as Y updates and "save" as jupyter-collaboration's raw
message. The tests use it to send exactly the bytes a hostile reader could.
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import quote

import pycrdt
import requests
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

RAW = 2  # jupyter-collaboration's own messages


def _raw_save(save_id: int) -> bytes:
    encoder = pycrdt.Encoder()
    encoder.write_var_uint(RAW)
    encoder.write_var_string("save")
    encoder.write_var_uint(save_id)
    return encoder.to_bytes()


class DocClient:
    def __init__(self, hub, token: str, owner: str, path: str, kind: str = "notebook"):
        self.server = f"{hub.url}/user/{owner}"
        self.token, self.path, self.kind = token, path, kind
        self.doc = pycrdt.Doc()
        self.ws = None
        self.closed_code: int | None = None
        self._saves = 0
        self._replies: dict[int, dict] = {}

    def _headers(self) -> dict:
        return {"Authorization": f"token {self.token}"}

    async def open(self, timeout: float = 120) -> "DocClient":
        r = await asyncio.to_thread(
            requests.put, f"{self.server}/api/collaboration/session/{quote(self.path)}",
            json={"format": "json", "type": self.kind}, headers=self._headers(), timeout=timeout)
        r.raise_for_status()
        session = r.json()
        room = f"json:{self.kind}:{session['fileId']}"
        url = (self.server.replace("http", "ws", 1) + f"/api/collaboration/room/{room}"
               f"?sessionId={session['sessionId']}")
        self.ws = await websocket_connect(HTTPRequest(url, headers=self._headers(), connect_timeout=timeout,
                                                      request_timeout=timeout))
        await self.ws.write_message(pycrdt.create_sync_message(self.doc), binary=True)
        # Synced once the server's step 2 (the whole document) has arrived.
        await self.pump(until=lambda: len(self.cells()) > 0, timeout=timeout)
        return self

    async def pump(self, until=None, timeout: float = 10.0) -> None:
        """Read and apply the server's messages until ``until()`` or ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while until is None or not until():
            left = deadline - loop.time()
            if left <= 0:
                if until is None:
                    return
                raise TimeoutError(f"{self.path}: the document did not get there in {timeout:.0f} s")
            try:
                message = await asyncio.wait_for(self.ws.read_message(), left)
            except asyncio.TimeoutError:
                continue
            if message is None:
                self.closed_code = self.ws.close_code
                if until is None:
                    return
                raise ConnectionError(f"document websocket closed ({self.ws.close_code} {self.ws.close_reason})")
            self._receive(message)

    def _receive(self, message: bytes) -> None:
        if not isinstance(message, bytes) or not message:
            return
        if message[0] == pycrdt.YMessageType.SYNC:
            reply = pycrdt.handle_sync_message(message[1:], self.doc)
            if reply is not None:
                self.ws.write_message(reply, binary=True)
        elif message[0] == RAW:
            decoder = pycrdt.Decoder(message)
            decoder.read_var_uint()
            try:
                body = json.loads(decoder.read_var_string())
            except ValueError:
                return
            if body.get("type") == "save":
                self._replies[body["responseTo"]] = body

    def cells(self) -> pycrdt.Array:
        return self.doc.get("cells", type=pycrdt.Array)

    def source(self, index: int) -> str:
        return str(self.cells()[index]["source"])

    async def append_to_cell(self, index: int, text: str) -> bytes:
        """Edit cell ``index`` locally and send the change as one Y update; return it."""
        before = self.doc.get_state()
        source = self.cells()[index]["source"]
        source.insert(len(source), text)
        update = self.doc.get_update(before)
        await self.ws.write_message(pycrdt.create_update_message(update), binary=True)
        return update

    async def save(self, timeout: float = 30) -> dict | None:
        """Ask the server to save the document; its reply, or None if it gave none."""
        self._saves += 1
        save_id = self._saves
        await self.ws.write_message(_raw_save(save_id), binary=True)
        try:
            await self.pump(until=lambda: save_id in self._replies, timeout=timeout)
        except TimeoutError:
            return None
        return self._replies[save_id]

    def close(self) -> None:
        if self.ws is not None:
            self.ws.close()
