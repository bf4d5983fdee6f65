"""The browser desktop, started with the container, and its view-only listener.

The image's entrypoint (``slicerhub-entrypoint``) runs ``main()`` here, the
desktop supervisor, before it starts the Jupyter server: the X display and
the application come up while the server is still importing, not after it
(a cold "Open in SlicerHub" waits for both). Without that entrypoint the
server extension starts the same processes itself.

Two VNC servers on unix sockets in a private directory:

* the owner's: ``vncserver`` (Xtigervnc + the image's xstartup), reached at
  ``desktop-websockify/`` exactly as jupyter-remote-desktop-proxy's page
  expects — the deployment's jupyter_server config points that route at this
  socket instead of starting the server on the first websocket, so the
  desktop is up when the user opens it;
* the viewers': ``X0tigervnc`` attached to the same display with key,
  pointer, clipboard and resize input switched off in the VNC server itself
  (``AcceptKeyEvents=0`` …), reached at ``desktop-view/desktop-websockify/``.
  A viewer's frames come from it; nothing they send reaches the display.

Each process is restarted if it exits (with a back-off), so closing the
application in the desktop or a crash does not leave a dead tab.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

RUN_DIR = Path(os.environ.get("SLICERHUB_DESKTOP_DIR", f"/tmp/slicerhub-desktop-{os.getuid()}"))
OWNER_SOCKET = RUN_DIR / "desktop.sock"
VIEW_SOCKET = RUN_DIR / "view.sock"
DISPLAY = ":1"
GEOMETRY = "1680x1050"

# Input the view-only listener refuses, in the VNC server (see X0tigervnc(1)).
# X0tigervnc 1.12 has no clipboard at all (no cut text either way); newer
# ones would need -AcceptCutText=0 -SendCutText=0 here too.
VIEW_ONLY_PARAMS = [
    "-AcceptKeyEvents=0",
    "-AcceptPointerEvents=0",
    "-AcceptSetDesktopSize=0",
    "-AlwaysShared=1",  # a viewer never disconnects the owner
]


def owner_command(xstartup: str | None) -> list[str]:
    cmd = ["vncserver", DISPLAY, "-rfbunixpath", str(OWNER_SOCKET), "-rfbport", "-1",
           "-fg", "-geometry", GEOMETRY, "-SecurityTypes", "None"]
    if xstartup:
        cmd += ["-xstartup", xstartup]
    return cmd


def view_command() -> list[str]:
    return ["X0tigervnc", "-display", DISPLAY, "-rfbunixpath", str(VIEW_SOCKET), "-rfbport", "-1",
            "-SecurityTypes", "None", *VIEW_ONLY_PARAMS]


# Set by the entrypoint to the supervisor's pid.
SUPERVISOR_ENV = "SLICERHUB_DESKTOP_SUPERVISOR"


def started_by_entrypoint() -> int | None:
    """The pid of the supervisor the entrypoint started, if it runs."""
    value = os.environ.get(SUPERVISOR_ENV, "")
    if not value.isdigit():
        return None
    try:
        os.kill(int(value), 0)
    except (ProcessLookupError, PermissionError):
        return None
    return int(value)


def x_socket(display: str = DISPLAY) -> Path:
    return Path("/tmp/.X11-unix") / f"X{display.lstrip(':')}"


class Supervised:
    """Run a command and restart it when it exits."""

    def __init__(self, name: str, argv: list[str], log, *, before=None, max_backoff: float = 30.0):
        self.name, self.argv, self.log = name, argv, log
        self.before = before  # coroutine run before each start (e.g. wait for the X display)
        self.max_backoff = max_backoff
        self.proc: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        backoff = 1.0
        while True:
            if self.before is not None:
                await self.before()
            loop = asyncio.get_running_loop()
            started = loop.time()
            try:
                self.proc = await asyncio.create_subprocess_exec(
                    *self.argv, stdin=asyncio.subprocess.DEVNULL, cwd=os.path.expanduser("~"))
            except OSError as e:
                self.log.error("desktop: cannot start %s (%s): %s", self.name, self.argv[0], e)
                return
            self.log.info("desktop: started %s (pid %s)", self.name, self.proc.pid)
            code = await self.proc.wait()
            # A process that ran a while was fine; start again quickly.
            backoff = 1.0 if loop.time() - started > 60 else min(backoff * 2, self.max_backoff)
            self.log.warning("desktop: %s exited with %s; restarting in %.0f s", self.name, code, backoff)
            await asyncio.sleep(backoff)


async def _wait_for_display(timeout: float = 60) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not x_socket().exists() and loop.time() < end:
        await asyncio.sleep(0.2)


def prepare_run_dir() -> None:
    RUN_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(RUN_DIR, 0o700)
    for sock in (OWNER_SOCKET, VIEW_SOCKET):
        sock.unlink(missing_ok=True)


def start_desktop(log) -> list[Supervised]:
    """Start the owner's desktop and the view-only listener (needs a running loop)."""
    missing = [c for c in ("vncserver", "X0tigervnc") if shutil.which(c) is None]
    if missing:
        log.error("desktop: %s not installed; no browser desktop in this image", ", ".join(missing))
        return []
    prepare_run_dir()
    xstartup = os.environ.get("JUPYTER_REMOTE_DESKTOP_PROXY_XSTARTUP")
    owner = Supervised("desktop", owner_command(xstartup), log)
    view = Supervised("view-only listener", view_command(), log, before=_wait_for_display)
    owner.start()
    view.start()
    return [owner, view]


def main() -> None:
    """The desktop supervisor: start the desktop and keep it running (until signalled)."""
    import logging

    logging.basicConfig(format="[%(levelname).1s %(asctime)s.%(msecs)03d Desktop] %(message)s",
                        datefmt="%Y-%m-%d %H:%M:%S", level=logging.INFO)
    log = logging.getLogger("slicerhub.desktop")

    async def run() -> None:
        supervisors = start_desktop(log)
        if not supervisors:
            return
        await asyncio.Event().wait()

    asyncio.run(run())


if __name__ == "__main__":
    main()
