"""What a desktop guest's browser sends to the VNC server, message by message.

The hand-over relay (``handover``) puts a guest's noVNC connection on the
owner's own VNC server, so the guest sees the desktop at its full frame rate
and, while the owner has handed them control, types and clicks in it. The
relay reads the client side of RFB (RFC 6143 and the extensions noVNC uses),
which is framed by message type, and passes each message or drops it:

* input — KeyEvent, PointerEvent, ClientCutText and QEMU's extended key
  event — only while this guest has control;
* a resize of the owner's screen (SetDesktopSize) and xvp (shutdown, reboot)
  never;
* everything else (pixel format, encodings, update requests, fences,
  continuous updates) always: that is watching.

A message type the relay does not know ends the connection (fail closed): a
client that sends it could hide input behind it. Pure code, no I/O, so the
rules are unit-tested byte by byte.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

SET_PIXEL_FORMAT, SET_ENCODINGS, UPDATE_REQUEST = 0, 2, 3
KEY_EVENT, POINTER_EVENT, CLIENT_CUT_TEXT = 4, 5, 6
ENABLE_CONTINUOUS_UPDATES, CLIENT_FENCE, XVP, SET_DESKTOP_SIZE, QEMU = 150, 248, 250, 251, 255
QEMU_EXTENDED_KEY = 0

INPUT = {KEY_EVENT, POINTER_EVENT, CLIENT_CUT_TEXT, QEMU}
NEVER = {SET_DESKTOP_SIZE, XVP}

# A guest's paste is text; anything larger ends the connection rather than
# being buffered (the relay holds one message at a time).
MAX_CUT_TEXT = 1 << 20

_VERSIONS = (b"RFB 003.007\n", b"RFB 003.008\n")
_SECURITY_NONE = 1


class ProtocolError(Exception):
    """The client broke RFB or sent what the relay does not pass; close it."""


class Message(NamedTuple):
    kind: int | str  # an RFB message type, or "version", "security", "init" during the handshake
    data: bytes


def _size(buf: bytes | bytearray) -> int | None:
    """The length of the message at the start of ``buf``; None until enough bytes are there."""
    kind = buf[0]
    fixed = {SET_PIXEL_FORMAT: 20, UPDATE_REQUEST: 10, KEY_EVENT: 8, POINTER_EVENT: 6,
             ENABLE_CONTINUOUS_UPDATES: 10, XVP: 4}
    if kind in fixed:
        return fixed[kind]
    if kind == SET_ENCODINGS:
        return None if len(buf) < 4 else 4 + 4 * struct.unpack_from("!H", buf, 2)[0]
    if kind == CLIENT_CUT_TEXT:
        if len(buf) < 8:
            return None
        # The extended clipboard sends a negative length (its own framing).
        length = abs(struct.unpack_from("!i", buf, 4)[0])
        if length > MAX_CUT_TEXT:
            raise ProtocolError(f"cut text of {length} bytes (more than {MAX_CUT_TEXT})")
        return 8 + length
    if kind == CLIENT_FENCE:
        return None if len(buf) < 9 else 9 + buf[8]
    if kind == SET_DESKTOP_SIZE:
        return None if len(buf) < 8 else 8 + 16 * buf[6]
    if kind == QEMU:
        if len(buf) < 2:
            return None
        if buf[1] != QEMU_EXTENDED_KEY:
            raise ProtocolError(f"QEMU client message subtype {buf[1]}")
        return 12
    raise ProtocolError(f"client message type {kind}")


class ClientStream:
    """Splits the bytes a client sends into handshake steps and messages."""

    def __init__(self):
        self._buf = bytearray()
        self._phase = "version"

    def feed(self, data: bytes) -> list[Message]:
        self._buf += data
        out = []
        while self._buf:
            message = self._next()
            if message is None:
                break
            out.append(message)
        return out

    def _take(self, n: int) -> bytes:
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    def _next(self) -> Message | None:
        if self._phase == "version":
            if len(self._buf) < 12:
                return None
            version = self._take(12)
            if version not in _VERSIONS:
                # 3.3 lets the server pick the security type: the client sends
                # nothing for it, and the relay could not tell where init is.
                raise ProtocolError(f"RFB version {version!r}")
            self._phase = "security"
            return Message("version", version)
        if self._phase == "security":
            choice = self._take(1)
            if choice[0] != _SECURITY_NONE:
                raise ProtocolError(f"security type {choice[0]}")
            self._phase = "init"
            return Message("security", choice)
        if self._phase == "init":
            self._take(1)
            self._phase = "messages"
            # Always shared: a guest's client must not disconnect the owner's.
            return Message("init", b"\x01")
        size = _size(self._buf)
        if size is None or len(self._buf) < size:
            return None
        data = self._take(size)
        return Message(data[0], data)


# Keys a connection is tracked holding at once: more than hands have, and a
# bound on what a stream of distinct key-downs can make this process keep.
MAX_HELD_KEYS = 64


class InputGate:
    """One connection's input, passed only while it has control, and what to
    send to release the keys and buttons it holds when control ends."""

    def __init__(self):
        self._keys: dict[tuple[int, ...], bytes] = {}  # key -> the message that releases it
        self._pointer = (0, 0, 0)  # buttons, x, y

    def allowed(self, message: Message, has_control: bool) -> bool:
        if isinstance(message.kind, str):
            return True
        if message.kind in NEVER:
            return False
        if message.kind not in INPUT:
            return True
        if not has_control:
            return False
        self._track(message.data)
        return True

    def _track(self, data: bytes) -> None:
        if data[0] == KEY_EVENT:
            down, keysym = struct.unpack_from("!BxxI", data, 1)
            key, release = (KEY_EVENT, keysym), struct.pack("!BBxxI", KEY_EVENT, 0, keysym)
        elif data[0] == QEMU:
            down, keysym, keycode = struct.unpack_from("!HII", data, 2)
            key, release = (QEMU, keycode, keysym), struct.pack("!BBHII", QEMU, QEMU_EXTENDED_KEY, 0,
                                                              keysym, keycode)
        elif data[0] == POINTER_EVENT:
            self._pointer = struct.unpack_from("!BHH", data, 1)
            return
        else:
            return
        if down:
            if len(self._keys) < MAX_HELD_KEYS or key in self._keys:
                self._keys[key] = release
        else:
            self._keys.pop(key, None)

    def release(self) -> bytes:
        """Key-ups for the keys held and a pointer event with no button down
        (so handing control back never leaves a drag or a Ctrl held)."""
        out = b"".join(self._keys.values())
        buttons, x, y = self._pointer
        if buttons:
            out += struct.pack("!BBHH", POINTER_EVENT, 0, x, y)
        self._keys.clear()
        self._pointer = (0, x, y)
        return out
