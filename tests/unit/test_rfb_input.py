"""The desktop hand-over relay's RFB rules (images/base/python/slicerhub_server/rfb_input.py),
byte by byte: what a collaborator's client may send with and without control.

The same bytes go through the relay in the container in
tests/e2e/test_desktop_handover.py.
"""

from __future__ import annotations

import importlib.util
import struct

import pytest

from tests.support.hub import ROOT

_spec = importlib.util.spec_from_file_location(
    "slicerhub_server_rfb_input", ROOT / "images" / "base" / "python" / "slicerhub_server" / "rfb_input.py")
rfb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rfb)

HANDSHAKE = b"RFB 003.008\n" + b"\x01" + b"\x00"  # version, security None, ClientInit (exclusive!)

SET_PIXEL_FORMAT = struct.pack("!B3xBBBBHHHBBB3x", 0, 32, 24, 0, 1, 255, 255, 255, 16, 8, 0)
SET_ENCODINGS = struct.pack("!BxH3i", 2, 3, 0, -223, -258)
UPDATE = struct.pack("!BBHHHH", 3, 1, 0, 0, 1680, 1050)
KEY_DOWN, KEY_UP = struct.pack("!BBxxI", 4, 1, 0xFFE3), struct.pack("!BBxxI", 4, 0, 0xFFE3)  # Control_L
POINTER_DOWN, POINTER_UP = struct.pack("!BBHH", 5, 1, 400, 300), struct.pack("!BBHH", 5, 0, 410, 300)
CUT_TEXT = struct.pack("!BxxxI", 6, 5) + b"hello"
EXTENDED_CUT_TEXT = struct.pack("!Bxxxi", 6, -8) + struct.pack("!I", 0x10000001) + b"abcd"
QEMU_KEY_DOWN = struct.pack("!BBHII", 255, 0, 1, ord("a"), 30)
RESIZE = struct.pack("!BxHHBx", 251, 640, 480, 1) + struct.pack("!IHHHHI", 0, 0, 0, 640, 480, 0)
FENCE = struct.pack("!BxxxIB", 248, 0x80000000, 4) + b"ping"
CONTINUOUS = struct.pack("!BBHHHH", 150, 1, 0, 0, 1680, 1050)
XVP_SHUTDOWN = struct.pack("!BxBB", 250, 1, 2)

WATCHING = [SET_PIXEL_FORMAT, SET_ENCODINGS, UPDATE, FENCE, CONTINUOUS]
INPUT = [KEY_DOWN, KEY_UP, POINTER_DOWN, POINTER_UP, CUT_TEXT, EXTENDED_CUT_TEXT, QEMU_KEY_DOWN]


def _passed(data: bytes, control: bool, chunk: int | None = None) -> bytes:
    stream, gate = rfb.ClientStream(), rfb.InputGate()
    pieces = [data] if chunk is None else [data[i:i + chunk] for i in range(0, len(data), chunk)]
    out = b""
    for piece in pieces:
        out += b"".join(m.data for m in stream.feed(piece) if gate.allowed(m, control))
    return out


def test_the_handshake_passes_and_the_client_is_always_shared():
    # ClientInit 0 would ask the server to disconnect everyone else: the owner.
    assert _passed(HANDSHAKE, control=False) == b"RFB 003.008\n\x01\x01"


@pytest.mark.parametrize("control", [False, True])
def test_watching_passes_with_or_without_control(control):
    assert _passed(HANDSHAKE + b"".join(WATCHING), control) == b"RFB 003.008\n\x01\x01" + b"".join(WATCHING)


@pytest.mark.parametrize("message", INPUT, ids=["key-down", "key-up", "pointer-down", "pointer-up", "cut-text",
                                               "extended-cut-text", "qemu-key"])
def test_input_passes_only_with_control(message):
    data = HANDSHAKE + UPDATE + message + UPDATE
    assert _passed(data, control=False) == b"RFB 003.008\n\x01\x01" + UPDATE + UPDATE
    assert _passed(data, control=True) == b"RFB 003.008\n\x01\x01" + UPDATE + message + UPDATE


@pytest.mark.parametrize("message", [RESIZE, XVP_SHUTDOWN], ids=["set-desktop-size", "xvp"])
def test_resizing_or_shutting_down_the_owners_desktop_never_passes(message):
    assert _passed(HANDSHAKE + message + UPDATE, control=True) == b"RFB 003.008\n\x01\x01" + UPDATE


def test_messages_split_anywhere_across_websocket_frames_are_framed_the_same():
    data = HANDSHAKE + b"".join(WATCHING) + b"".join(INPUT) + RESIZE + UPDATE
    whole = _passed(data, control=False)
    for chunk in (1, 2, 3, 7, 13):
        assert _passed(data, control=False, chunk=chunk) == whole
    # Input hidden across frame boundaries is still input.
    assert KEY_DOWN not in _passed(HANDSHAKE + KEY_DOWN, control=False, chunk=1)


@pytest.mark.parametrize("data,why", [
    (b"RFB 003.003\n", "version"),                       # the server would pick security: no framing
    (b"GET / HTTP/1.1\r\n", "version"),
    (b"RFB 003.008\n\x02", "security type 2"),         # VNC authentication is not what the server offers
    (HANDSHAKE + b"\x07" + bytes(20), "type 7"),       # unknown message: could hide input
    (HANDSHAKE + b"\xfd" + bytes(20), "type 253"),     # gii
    (HANDSHAKE + struct.pack("!BBHII", 255, 1, 0, 0, 0), "subtype 1"),
    (HANDSHAKE + struct.pack("!BxxxI", 6, rfb.MAX_CUT_TEXT + 1), "cut text"),
])
def test_anything_else_ends_the_connection(data, why):
    stream = rfb.ClientStream()
    with pytest.raises(rfb.ProtocolError, match=why):
        stream.feed(data)


def test_an_incomplete_message_waits_for_the_rest():
    stream = rfb.ClientStream()
    assert [m.kind for m in stream.feed(HANDSHAKE + SET_ENCODINGS[:6])] == ["version", "security", "init"]
    assert [m.data for m in stream.feed(SET_ENCODINGS[6:])] == [SET_ENCODINGS]


def _gate_after(*messages: bytes) -> rfb.InputGate:
    stream, gate = rfb.ClientStream(), rfb.InputGate()
    for m in stream.feed(HANDSHAKE + b"".join(messages)):
        gate.allowed(m, True)
    return gate


def test_taking_control_back_releases_held_keys_and_buttons():
    gate = _gate_after(KEY_DOWN, QEMU_KEY_DOWN, POINTER_DOWN)
    release = gate.release()
    assert struct.pack("!BBxxI", 4, 0, 0xFFE3) in release                 # Control_L up
    assert struct.pack("!BBHII", 255, 0, 0, ord("a"), 30) in release      # the QEMU key up, same keycode
    assert release.endswith(struct.pack("!BBHH", 5, 0, 400, 300))          # buttons up where the pointer is
    assert gate.release() == b""                                           # once


def test_nothing_to_release_after_keys_and_buttons_went_up():
    assert _gate_after(KEY_DOWN, KEY_UP, POINTER_DOWN, POINTER_UP).release() == b""


def test_input_dropped_without_control_is_not_tracked_as_held():
    stream, gate = rfb.ClientStream(), rfb.InputGate()
    for m in stream.feed(HANDSHAKE + KEY_DOWN + POINTER_DOWN):
        gate.allowed(m, False)
    assert gate.release() == b""


def test_a_stream_of_distinct_key_downs_is_tracked_only_up_to_a_bound():
    """The holder cannot make the relay remember keys without end: past
    MAX_HELD_KEYS new keys are passed but not tracked, and the release is bounded."""
    gate = rfb.InputGate()
    downs = [rfb.Message(4, struct.pack("!BBxxI", 4, 1, 0x61 + n)) for n in range(rfb.MAX_HELD_KEYS * 4)]
    assert all(gate.allowed(m, True) for m in downs)
    release = gate.release()
    assert len(release) == 8 * rfb.MAX_HELD_KEYS
    assert release[:8] == struct.pack("!BBxxI", 4, 0, 0x61)
