"""A browser's websocket to one of the desktop's VNC sockets (the view-only
listener, the hand-over relay): jupyter-server-proxy's raw socket handler,
paced and with a bound on what a client may send in one message."""

from __future__ import annotations

from pathlib import Path

from jupyter_server_proxy.config import ServerProcess
from jupyter_server_proxy.rawsocket import RawSocketProtocol
from tornado.websocket import WebSocketClosedError

# The largest message a guest's client sends: a 1 MiB clipboard (rfb_input's
# limit) and its header. Tornado's default, 10 MiB, is seconds of parsing.
MAX_CLIENT_MESSAGE = (1 << 20) + 4096
# Bytes of screen updates waiting for a guest's browser before the proxy
# stops reading the VNC server, and when it reads again.
PAUSE_ABOVE, RESUME_BELOW = 8 << 20, 2 << 20


class PacedProtocol(RawSocketProtocol):
    """The VNC server's side of one connection: reads pause while the
    browser is far behind, so a client that never reads cannot make this
    process keep every frame it asks for."""

    def __init__(self, handler):
        super().__init__(handler)
        self.transport, self.waiting, self.paused = None, 0, False

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.handler._record_activity()
        try:
            sent = self.handler.write_message(data, binary=True)
        except WebSocketClosedError:
            return
        self.waiting += len(data)
        sent.add_done_callback(lambda done, n=len(data): self._sent(done, n))
        if not self.paused and self.waiting > PAUSE_ABOVE:
            self.paused = True
            self.transport.pause_reading()

    def _sent(self, done, n: int) -> None:
        done.exception()  # a closed socket's error is expected, not "never retrieved"
        self.waiting -= n
        if self.paused and self.waiting < RESUME_BELOW and not self.transport.is_closing():
            self.paused = False
            self.transport.resume_reading()


def handler(name: str, socket_path: Path):
    """The handler class and kwargs for ``<name>/desktop-websockify/``."""
    base, kwargs = ServerProcess(name=name, unix_socket=str(socket_path), raw_socket_proxy=True,
                                 launcher_entry={"enabled": False}).make_proxy_handler()

    class PacedSocket(base):
        @property
        def max_message_size(self):
            return MAX_CLIENT_MESSAGE

        def _create_ws_connection(self, proto):
            # jupyter-server-proxy's connection, with the paced protocol.
            return super()._create_ws_connection(lambda: PacedProtocol(self))

    return PacedSocket, kwargs
