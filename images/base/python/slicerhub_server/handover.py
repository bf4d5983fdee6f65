"""Desktop hand-over: collaborators watch the owner's desktop, and the owner
gives one of them the keyboard, mouse and clipboard, and takes it back.

* ``desktop-shared/desktop-websockify/``: a collaborator's noVNC connection,
  relayed to the owner's own VNC server (jupyter-server-proxy's raw socket
  handler) through ``rfb_input``: input passes only while the owner has
  handed this guest control; a resize of the owner's screen never does. Read-only
  guests stay on the separate view-only VNC server (``desktop``).
* ``slicerhub/desktop/control``: who is watching and who has control (GET);
  the owner gives control to a connected collaborator or takes it back, and
  the guest who has it can hand it back (PUT ``{"holder": name | null}``).
  The change applies to the next message each connection sends: taking
  control back also releases the keys and buttons the guest was holding.
* ``desktop-shared/screen/`` (the collaborator's page) and
  ``desktop-control/`` (the owner's).

Control lasts while the guest is connected: when their last connection
closes (they leave, or the guard closes it because their share ended) it
returns to the owner.
"""

from __future__ import annotations

import json
from pathlib import Path

import jinja2
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.utils import url_path_join
from tornado import web

from . import desktop, rfb_input, vnc_socket
from .guard import OWNER

_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")), autoescape=True)

# The levels that watch the desktop through the relay (``execute``: the owner
# trying their guests' view); read-only guests never get this far.
RELAY_LEVELS = ("collaborate", "execute")


class DesktopControl:
    """The relayed connections and who has control (one guest, or nobody)."""

    def __init__(self, log):
        self.log = log
        self.holder: str | None = None
        self._connections: dict = {}  # relay handler -> user name

    def watching(self) -> dict[str, int]:
        """Connected guests and how many connections each has open."""
        counts: dict[str, int] = {}
        for name in self._connections.values():
            counts[name] = counts.get(name, 0) + 1
        return counts

    def has_control(self, handler) -> bool:
        if getattr(handler, "_slicerhub_level", None) == "execute":
            return True
        return self.holder is not None and self._connections.get(handler) == self.holder

    def add(self, handler, name: str) -> None:
        self._connections[handler] = name

    def remove(self, handler) -> None:
        name = self._connections.pop(handler, None)
        if name is not None and name == self.holder and name not in self.watching():
            self.log.info("desktop: %s left; control returns to %s", name, OWNER)
            self.holder = None

    def give(self, name: str | None, by: str) -> None:
        before = self.holder
        self.holder = name
        if before is not None and before != name:
            for handler, holder in list(self._connections.items()):
                if holder == before:
                    handler.release_input()
        if name is None:
            self.log.info("desktop: %s took control back from %s", by, before)
        else:
            self.log.info("desktop: %s gave control to %s", by, name)


def relay_handler(control: DesktopControl):
    """The relay's handler class and its kwargs, built on jupyter-server-proxy's."""
    base, kwargs = vnc_socket.handler("desktop-shared", desktop.OWNER_SOCKET)

    class DesktopRelay(base):
        _closing = False

        async def proxy_open(self, host, port, proxied_path=""):
            level = getattr(self, "_slicerhub_level", None)
            if level not in RELAY_LEVELS:  # the guard's routes say so too
                self.close(4403, "the shared desktop is for collaborators")
                return
            self._stream, self._gate = rfb_input.ClientStream(), rfb_input.InputGate()
            self._dropped = 0
            await super().proxy_open(host, port, proxied_path)
            control.add(self, self.current_user.username)

        def on_message(self, message):
            if self._closing:
                return
            if isinstance(message, str):
                message = message.encode("utf-8")
            try:
                messages = self._stream.feed(message)
            except rfb_input.ProtocolError as e:
                self.log.warning("desktop: closing %s's connection: %s", self.current_user.username, e)
                self.close(1008, "not a desktop client")
                return
            control_now = control.has_control(self)
            allowed = [m for m in messages if self._gate.allowed(m, control_now)]
            if len(allowed) < len(messages) and not self._dropped:
                # Once per connection: a watcher's mouse would flood the log.
                self.log.info("desktop: input from %s dropped (no control)", self.current_user.username)
            self._dropped += len(messages) - len(allowed)
            passed = b"".join(m.data for m in allowed)
            if passed:
                super().on_message(passed)

        def release_input(self) -> None:
            release = self._gate.release()
            if release and getattr(self, "ws_transp", None) is not None:
                self.ws_transp.write(release)

        def close(self, code=None, reason=None):
            # Relay nothing more from now on: tornado waits up to 5 s for the
            # client's closing handshake, and its messages still arrive meanwhile.
            if not self._closing:
                self._closing = True
                if hasattr(self, "_gate"):
                    self.release_input()
                control.remove(self)
            super().close(code, reason)

        def on_close(self):
            self._closing = True
            if hasattr(self, "_gate"):
                self.release_input()
            control.remove(self)
            super().on_close()

    return DesktopRelay, kwargs


def _text(token) -> str:
    return token.decode() if isinstance(token, bytes) else token


def _reply(handler, status: int, data: dict) -> None:
    handler.set_status(status)
    handler.set_header("Content-Type", "application/json")
    handler.finish(json.dumps(data))


class ControlHandler(APIHandler):
    def initialize(self, control: DesktopControl):
        self.control = control

    def _state(self) -> dict:
        me = self.current_user.username
        level = getattr(self, "_slicerhub_level", None)
        state = {"owner": OWNER, "you": me, "holder": self.control.holder,
                 "control": level == "execute" or self.control.holder == me}
        if level == "execute":
            state["watching"] = [{"name": n, "connections": c}
                                 for n, c in sorted(self.control.watching().items())]
        return state

    @web.authenticated
    def get(self):
        _reply(self, 200, self._state())

    @web.authenticated
    def put(self):
        try:
            body = json.loads(self.request.body or b"")
        except ValueError:
            raise web.HTTPError(400, "the request must be JSON") from None
        if not isinstance(body, dict) or set(body) != {"holder"} or not (
                body["holder"] is None or isinstance(body["holder"], str)):
            raise web.HTTPError(400, 'send {"holder": "<user name>"} or {"holder": null}')
        me, holder = self.current_user.username, body["holder"]
        level = getattr(self, "_slicerhub_level", None)
        if level != "execute":
            # A guest may only hand back the control they have.
            if holder is not None or self.control.holder != me:
                raise web.HTTPError(403, f"only {OWNER} hands over the desktop")
        elif holder is not None and holder not in self.control.watching():
            raise web.HTTPError(409, f"{holder} is not watching the desktop")
        self.control.give(holder, by=me)
        _reply(self, 200, self._state())


class SharedDesktopPage(JupyterHandler):
    @web.authenticated
    def get(self):
        self.finish(_templates.get_template("desktop-shared.html").render(
            base_url=self.base_url, owner=OWNER, xsrf=_text(self.xsrf_token)))


class ControlPage(JupyterHandler):
    @web.authenticated
    def get(self):
        if getattr(self, "_slicerhub_level", None) != "execute":
            raise web.HTTPError(403, f"only {OWNER} hands over the desktop")
        self.finish(_templates.get_template("desktop-control.html").render(
            base_url=self.base_url, owner=OWNER, xsrf=_text(self.xsrf_token)))


def handlers(base: str, log) -> list:
    control = DesktopControl(log)
    relay, kwargs = relay_handler(control)
    return [
        (url_path_join(base, "slicerhub/desktop/control"), ControlHandler, {"control": control}),
        (url_path_join(base, "desktop-shared/screen/"), SharedDesktopPage),
        (url_path_join(base, "desktop-shared/desktop-websockify/(.*)"), relay, kwargs),
        (url_path_join(base, "desktop-control/?"), ControlPage),
    ]
