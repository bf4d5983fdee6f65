"""SlicerHub's Jupyter Server extension (enabled in the image's server config).

* starts the browser desktop and its view-only listener with the server,
  unless the container's entrypoint already did (``desktop.SUPERVISOR_ENV``);
* puts ``ReadOnlyGuard`` in front of every handler (see ``guard``);
* serves the view-only desktop at ``desktop-view/``, the collaborators'
  desktop and its hand-over (``handover``), and ``slicerhub/access`` (the
  caller's level here, for pages and tests);
* ``slicerhub/courses`` and ``slicerhub/publish``: JupyterLab's "Publish to a
  Course…" dialog, through this server to the courses service (``publish``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import jinja2
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join
from jupyterhub.singleuser.extension import JupyterHubIdentityProvider
from jupyter_core.utils import ensure_async
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from . import desktop, handover, publish, vnc_socket
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
        # Collaborators watch through the hand-over relay, read-only guests
        # through the view-only listener.
        relayed = getattr(self, "_slicerhub_level", None) == "collaborate"
        self.redirect(url_path_join(self.base_url, "desktop-shared/screen/" if relayed else "desktop-view/screen/"))


class _CoursesHandler(JupyterHandler):
    """The owner's way to the courses service, with the server's own token."""

    def _owner_only(self) -> None:
        # The guard refuses these routes to viewers already (not on the viewer
        # list); the level is checked here too, so no change there opens them.
        if getattr(self, "_slicerhub_level", None) != "execute":
            raise web.HTTPError(403, "only the owner of this server publishes from it")

    def _reply(self, status: int, data: dict) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))

    async def _service(self, method: str, url: str, body: dict | None = None) -> dict:
        request = HTTPRequest(
            url, method=method, request_timeout=publish.TIMEOUT_S,
            headers={"Authorization": f"token {os.environ.get('JUPYTERHUB_API_TOKEN', '')}",
                     "Content-Type": "application/json", "Accept": "application/json"},
            body=None if body is None else json.dumps(body))
        try:
            response = await AsyncHTTPClient().fetch(request)
        except HTTPClientError as e:
            if e.code == 599:
                raise publish.PublishProblem(502, f"the courses service does not answer ({e})") from None
            raise publish.service_error(e.code, e.response.body if e.response else None) from None
        except OSError as e:
            raise publish.PublishProblem(502, f"the courses service does not answer ({e})") from None
        return json.loads(response.body or b"{}")

    async def _run(self, work) -> None:
        self._owner_only()
        try:
            status, data = await work()
        except publish.PublishProblem as e:
            self.log.info("publish: %s %s", e.status, e.message)
            status, data = e.status, {"message": e.message}
        self._reply(status, data)


class CoursesHandler(_CoursesHandler):
    @web.authenticated
    async def get(self):
        async def work():
            reply = await self._service("GET", publish.courses_url().rstrip("/") + "/api/courses")
            courses = [{"name": c.get("name"), "teacher": bool(c.get("teacher"))}
                       for c in reply.get("courses", [])]
            return 200, {"user": reply.get("user"), "courses": courses, "gallery_url": publish.gallery_url()}

        await self._run(work)


class PublishHandler(_CoursesHandler):
    @web.authenticated
    async def post(self):
        async def work():
            try:
                body = json.loads(self.request.body or b"")
            except ValueError:
                raise publish.PublishProblem(400, "the request must be JSON") from None
            course, name, _ = publish.publish_request(body)  # checked before anything is read
            path = publish.notebook_path(body["path"])
            try:
                model = await ensure_async(self.contents_manager.get(path, content=True, type="notebook"))
            except web.HTTPError as e:
                raise publish.PublishProblem(e.status_code, e.log_message or f"cannot read {path}") from None
            import nbformat

            notebook = nbformat.writes(model["content"])
            _, _, payload = publish.publish_request(body, notebook)
            reply = await self._service("POST", publish.app_url(publish.courses_url(), course, name), payload)
            self.log.info("publish: %s as %s/%s version %s", path, course, name, reply.get("latest"))
            return 201, publish.published(reply)

        await self._run(work)


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
    view_socket, kwargs = vnc_socket.handler("desktop-view", desktop.VIEW_SOCKET)
    serverapp.web_app.add_handlers(".*$", [
        (url_path_join(base, "slicerhub/access"), AccessHandler),
        (url_path_join(base, "slicerhub/courses"), CoursesHandler),
        (url_path_join(base, "slicerhub/publish"), PublishHandler),
        (url_path_join(base, "desktop-view/?"), DesktopViewRedirect),
        (url_path_join(base, "desktop-view/screen/"), DesktopViewPage),
        (url_path_join(base, "desktop-view/desktop-websockify/(.*)"), view_socket, kwargs),
        *handover.handlers(base, serverapp.log),
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
