"""A small RFB (VNC) 3.8 client for tests and benchmarks.

It speaks to a VNC server over a unix socket (inside a container, through
``docker exec``-less socket paths) or through a websocket (the desktop route
of the single-user server, behind the hub's proxy), asks for Raw updates in
32-bit true colour and keeps a framebuffer as bytes (BGRX). Enough to see
whether pixels are drawn, to time frames and to send input events; it is not
a viewer.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from dataclasses import dataclass, field

RAW = 0
DESKTOP_SIZE = -223
LAST_RECT = -224


class RFBError(Exception):
    pass


class _SocketTransport:
    def __init__(self, sock: socket.socket):
        self.sock = sock

    async def send(self, data: bytes) -> None:
        await asyncio.get_running_loop().sock_sendall(self.sock, data)

    async def recv(self) -> bytes:
        data = await asyncio.get_running_loop().sock_recv(self.sock, 1 << 20)
        if not data:
            raise RFBError("VNC server closed the connection")
        return data

    async def close(self) -> None:
        self.sock.close()


class _WebSocketTransport:
    def __init__(self, ws):
        self.ws = ws

    async def send(self, data: bytes) -> None:
        from tornado.websocket import WebSocketClosedError

        try:
            await self.ws.write_message(data, binary=True)
        except WebSocketClosedError:
            raise RFBError("desktop websocket closed") from None

    async def recv(self) -> bytes:
        msg = await self.ws.read_message()
        if msg is None:
            raise RFBError("desktop websocket closed")
        return msg if isinstance(msg, bytes) else msg.encode()

    async def close(self) -> None:
        self.ws.close()


@dataclass
class Framebuffer:
    width: int
    height: int
    pixels: bytearray = field(default_factory=bytearray)

    def __post_init__(self):
        if not self.pixels:
            self.pixels = bytearray(self.width * self.height * 4)

    def to_rgb(self) -> bytes:
        """The picture as packed RGB (for PIL's Image.frombytes('RGB', ...))."""
        out = bytearray(self.width * self.height * 3)
        out[0::3] = self.pixels[2::4]
        out[1::3] = self.pixels[1::4]
        out[2::3] = self.pixels[0::4]
        return bytes(out)

    def non_background_fraction(self) -> float:
        """Share of pixels that differ from the most common colour."""
        from collections import Counter

        px = [bytes(self.pixels[i:i + 3]) for i in range(0, len(self.pixels), 4 * 7)]
        if not px:
            return 0.0
        background, count = Counter(px).most_common(1)[0]
        return 1.0 - count / len(px)


class RFBClient:
    def __init__(self, transport):
        self._t = transport
        self._buf = bytearray()
        self.fb: Framebuffer | None = None
        self.name = ""
        self.cut_text: list[bytes] = []
        self.bytes_received = 0
        self.updates = 0

    # ------------------------------------------------------------ connect ---
    @classmethod
    async def unix(cls, path: str) -> "RFBClient":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, path)
        client = cls(_SocketTransport(sock))
        await client._handshake()
        return client

    @classmethod
    async def websocket(cls, url: str, headers: dict | None = None) -> "RFBClient":
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        ws = await websocket_connect(HTTPRequest(url, headers=headers or {}, connect_timeout=120, request_timeout=120),
                                     subprotocols=["binary"])
        client = cls(_WebSocketTransport(ws))
        await client._handshake()
        return client

    async def close(self) -> None:
        await self._t.close()

    async def _read(self, n: int) -> bytes:
        while len(self._buf) < n:
            chunk = await self._t.recv()
            self.bytes_received += len(chunk)
            self._buf += chunk
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    async def _handshake(self) -> None:
        version = await self._read(12)
        if not version.startswith(b"RFB "):
            raise RFBError(f"not an RFB server: {version!r}")
        await self._t.send(b"RFB 003.008\n")
        (count,) = struct.unpack("!B", await self._read(1))
        if count == 0:
            (length,) = struct.unpack("!I", await self._read(4))
            raise RFBError((await self._read(length)).decode(errors="replace"))
        types = await self._read(count)
        if 1 not in types:
            raise RFBError(f"server wants authentication (security types {list(types)})")
        await self._t.send(b"\x01")
        (result,) = struct.unpack("!I", await self._read(4))
        if result != 0:
            raise RFBError("security handshake failed")
        await self._t.send(b"\x01")  # shared session
        width, height = struct.unpack("!HH", await self._read(4))
        await self._read(16)  # server pixel format; we set ours below
        (name_len,) = struct.unpack("!I", await self._read(4))
        self.name = (await self._read(name_len)).decode(errors="replace")
        self.fb = Framebuffer(width, height)
        # 32 bpp, depth 24, little endian, true colour, BGRX byte order.
        await self._t.send(struct.pack("!B3xBBBBHHHBBB3x", 0, 32, 24, 0, 1, 255, 255, 255, 16, 8, 0))
        encodings = [RAW, DESKTOP_SIZE, LAST_RECT]
        await self._t.send(struct.pack(f"!BxH{len(encodings)}i", 2, len(encodings), *encodings))

    # ---------------------------------------------------------- messages ---
    async def request_update(self, incremental: bool = True) -> None:
        fb = self.fb
        await self._t.send(struct.pack("!BBHHHH", 3, int(incremental), 0, 0, fb.width, fb.height))

    async def key(self, keysym: int, down: bool) -> None:
        await self._t.send(struct.pack("!BBxxI", 4, int(down), keysym))

    async def pointer(self, x: int, y: int, buttons: int = 0) -> None:
        await self._t.send(struct.pack("!BBHH", 5, buttons, x, y))

    async def cut_text_to_server(self, text: bytes) -> None:
        await self._t.send(struct.pack("!BxxxI", 6, len(text)) + text)

    async def read_message(self) -> str:
        """Read one server message and apply it; return its kind."""
        (kind,) = struct.unpack("!B", await self._read(1))
        if kind == 0:
            await self._read_update()
            return "update"
        if kind == 1:  # colour map entries: unused in true colour
            _, _, n = struct.unpack("!xHH", await self._read(5))
            await self._read(6 * n)
            return "colormap"
        if kind == 2:
            return "bell"
        if kind == 3:
            (length,) = struct.unpack("!3xI", await self._read(7))
            self.cut_text.append(await self._read(length))
            return "cut_text"
        raise RFBError(f"unknown server message type {kind}")

    async def _read_update(self) -> None:
        (count,) = struct.unpack("!xH", await self._read(3))
        for _ in range(count):
            x, y, w, h, enc = struct.unpack("!HHHHi", await self._read(12))
            if enc == LAST_RECT:
                break
            if enc == DESKTOP_SIZE:
                self.fb = Framebuffer(w, h)
                continue
            if enc != RAW:
                raise RFBError(f"server sent encoding {enc} we did not ask for")
            data = await self._read(w * h * 4)
            fb = self.fb
            row = w * 4
            for line in range(h):
                start = ((y + line) * fb.width + x) * 4
                fb.pixels[start:start + row] = data[line * row:(line + 1) * row]
        self.updates += 1

    async def wait_update(self, timeout: float = 10.0, incremental: bool = True) -> None:
        """Ask for an update and read messages until one arrives."""
        await self.request_update(incremental)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no framebuffer update")
            if await asyncio.wait_for(self.read_message(), left) == "update":
                return

    async def snapshot(self, timeout: float = 10.0) -> Framebuffer:
        await self.wait_update(timeout, incremental=False)
        return self.fb
