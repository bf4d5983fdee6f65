"""SlicerHub's Jupyter Server extension (enabled in the image's server config).

* starts the browser desktop and its view-only listener with the server,
  unless the container's entrypoint already did (``desktop.SUPERVISOR_ENV``);
* puts ``ReadOnlyGuard`` in front of every handler (see ``guard``);
* serves the view-only desktop at ``desktop-view/`` and ``slicerhub/access``
  (the caller's level here, for pages and tests).
"""

from __future__ import annotations

import json
from pathlib import Path

import jinja2
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join
from jupyter_server_proxy.config import ServerProcess
from jupyterhub.singleuser.extension import JupyterHubIdentityProvider
from tornado import web

from . import desktop
from .guard import OWNER, ReadOnlyGuard

_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")), autoescape=True)


class AccessHandler(JupyterHandler):
    @web.authenticated
    def get(self):
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"user": self.current_user.username, "owner": OWNER,
                                "level": getattr(self, "_slicerhub_level", None)}))


class DesktopViewPage(JupyterHandler):
    @web.authenticated
    def get(self):
        # jupyter-remote-desktop-proxy's noVNC client connects to
        # ../desktop-websockify/ from its page: from screen/ that is our socket.
        self.finish(_templates.get_template("desktop-view.html").render(
            base_url=self.base_url, owner=OWNER,
            read_only=getattr(self, "_slicerhub_level", None) != "execute"))


class DesktopViewRedirect(JupyterHandler):
    @web.authenticated
    def get(self):
        self.redirect(url_path_join(self.base_url, "desktop-view/screen/"))


def _install_guard(serverapp) -> None:
    current = serverapp.identity_provider
    if not isinstance(current, JupyterHubIdentityProvider):
        raise RuntimeError("slicerhub_server needs jupyterhub-singleuser (JupyterHub's identity provider)")
    # The JupyterHub extension fixes identity_provider_class with the highest
    # config priority, so the guard takes its place here, sharing its HubOAuth.
    guard = ReadOnlyGuard(parent=serverapp, log=serverapp.log, hub_auth=current.hub_auth)
    serverapp.identity_provider = guard
    serverapp.web_app.settings["identity_provider"] = guard
    if getattr(serverapp, "authorizer", None) is not None:
        serverapp.authorizer.identity_provider = guard


def _load_jupyter_server_extension(serverapp):
    _install_guard(serverapp)
    base = serverapp.web_app.settings["base_url"]
    view_socket, kwargs = ServerProcess(
        name="desktop-view", unix_socket=str(desktop.VIEW_SOCKET), raw_socket_proxy=True,
        launcher_entry={"enabled": False}).make_proxy_handler()
    serverapp.web_app.add_handlers(".*$", [
        (url_path_join(base, "slicerhub/access"), AccessHandler),
        (url_path_join(base, "desktop-view/?"), DesktopViewRedirect),
        (url_path_join(base, "desktop-view/screen/"), DesktopViewPage),
        (url_path_join(base, "desktop-view/desktop-websockify/(.*)"), view_socket, kwargs),
    ])
    supervisor = desktop.started_by_entrypoint()
    if supervisor:
        serverapp.log.info("slicerhub_server: read-only guard on; the desktop runs since the container "
                           "started (supervisor pid %s)", supervisor)
        return

    # Started some other way (no entrypoint): the server starts the desktop.
    # The processes live as long as the container (tini -g signals the whole
    # group); the settings keep the supervisors (and their tasks) referenced.
    def start_desktop():
        serverapp.web_app.settings["slicerhub_desktop"] = desktop.start_desktop(serverapp.log)

    serverapp.io_loop.add_callback(start_desktop)
    serverapp.log.info("slicerhub_server: read-only guard on, desktop starting for %s", OWNER)
