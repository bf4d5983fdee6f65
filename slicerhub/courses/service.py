"""The courses service: gallery, publishing API and app links, as a JupyterHub
service at /services/courses/.

* ``GET  /``                                   gallery (HTML) of the caller's courses
* ``GET  /api/courses``                        the same as JSON
* ``POST /api/courses/<course>/apps/<name>``   publish a version (teachers of the course)
* ``PATCH /api/courses/<course>/apps/<name>``  ``{"hidden": true|false}``: unpublish / show again
* ``GET|POST /publish``                         teachers: publish a notebook from their own server
                                                (JupyterLab: File → Publish to a course…)
* ``GET  /open/<course>/<name>``               open the app with Voilà in the caller's own server
* ``GET  /thumbnail/<course>/<name>/<N>``      a version's thumbnail

Who is a teacher, and who is in which course, is asked from the hub on every
request (the service's own token can read users' groups), so a change in LDAP
counts from the user's next login.  API writes take a token (``Authorization:
token …``); the publish form takes the cookie with JupyterHub's xsrf token, so
no other site can publish in a teacher's name.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import secrets
from urllib.parse import quote

from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated
from jupyterhub.utils import url_path_join
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.ioloop import IOLoop

from .. import site
from ..hubservice import (COURSE_SEGMENT, AuditLog, NotFound, ServiceHandler, SessionCheck, api_authenticated,
                          membership, serve)
from ..sharing.hub import HubAPI
from .store import CourseStore, PublishError

log = logging.getLogger("slicerhub.courses")


class Settings:
    def __init__(self, store: CourseStore, teacher_groups: list[str], mount_subpath: str, audit_log: str | None,
                 proxy_url: str | None = None, hub: HubAPI | None = None):
        self.store = store
        self.hub = hub or HubAPI(os.environ["JUPYTERHUB_API_URL"], os.environ["JUPYTERHUB_API_TOKEN"])
        self.sharing = bool(site.from_env().get("sharing"))  # students' sessions are the sharing service's
        self.audit = AuditLog(audit_log, log)
        self.proxy_url = proxy_url  # the hub's public entry, to read a teacher's notebook from their server
        self.teacher_groups = set(teacher_groups)
        self.mount_subpath = mount_subpath.strip("/")  # the courses folder, relative to the home


class _Base(ServiceHandler):
    def check_xsrf_cookie(self):
        # API writes require a token header (checked in _writer); reads are safe.
        return

    async def _member(self) -> tuple[str, set[str], set[str]]:
        """(user name, the caller's courses, courses the caller teaches)."""
        user = self.get_current_user()
        if not user:
            raise web.HTTPError(403)
        model = await self.s.hub.user(user["name"]) or {"name": user["name"]}
        m = membership(model, set(self.s.store.courses), self.s.teacher_groups)
        return m.name, set(m.courses), set(m.teaches)

    def app_json(self, app) -> dict:
        """An app as the API and the pages show it, with where to open it."""
        v = app.latest
        return {**app.to_json(),
                "open_url": url_path_join(self.prefix, "open", app.course, app.name),
                "thumbnail_url": url_path_join(self.prefix, "thumbnail", app.course, app.name, str(v.number))
                if v.thumbnail else None}

    def _publish(self, user, course, name, notebook, title, description, thumbnail=None):
        try:
            app = self.s.store.publish(course, name, notebook, by=user, title=title,
                                       description=description, thumbnail=thumbnail)
        except PublishError as e:
            raise web.HTTPError(e.status, str(e)) from None
        self.s.audit.write("publish", user, course=course, app=name, version=app.latest.number)
        return app



def _not_found(course: str, name: str | None = None):
    # Non-members learn nothing about a course: the same 404 as a missing one.
    return web.HTTPError(404, f"no app {name!r} in course {course!r}" if name else f"no course {course!r}")


class CoursesAPI(_Base):
    @api_authenticated
    async def get(self):
        name, courses, teaches = await self._member()
        self.write_json({"user": name, "courses": [
            {"name": c, "teacher": c in teaches,
             "apps": [self.app_json(a) for a in self.s.store.list(c, include_hidden=c in teaches)]}
            for c in sorted(courses)]})


class AppAPI(_Base):
    async def _writer(self, course: str, name: str) -> str:
        if not self.request.headers.get("Authorization", "").startswith(("token ", "Bearer ")):
            raise web.HTTPError(403, "publishing needs an API token (Authorization: token …)")
        user, courses, teaches = await self._member()
        if course not in courses:
            raise _not_found(course)
        if course not in teaches:
            raise web.HTTPError(403, f"only teachers of {course!r} can publish to it")
        return user

    @api_authenticated
    async def post(self, course: str, name: str):
        user = await self._writer(course, name)
        body = self.json_body()
        notebook = body.get("notebook")
        if isinstance(notebook, dict):
            notebook = json.dumps(notebook)
        if not isinstance(notebook, str):
            raise web.HTTPError(400, "body needs 'notebook' (the notebook as JSON)")
        thumbnail = None
        if body.get("thumbnail") is not None:
            try:
                thumbnail = base64.b64decode(body["thumbnail"], validate=True)
            except (ValueError, TypeError):
                raise web.HTTPError(400, "'thumbnail' must be base64 (PNG)") from None
        app = self._publish(user, course, name, notebook, body.get("title"), body.get("description"), thumbnail)
        self.write_json(self.app_json(app), 201)

    @api_authenticated
    async def patch(self, course: str, name: str):
        user = await self._writer(course, name)
        hidden = self.json_body().get("hidden")
        if not isinstance(hidden, bool):
            raise web.HTTPError(400, "body must be {\"hidden\": true} or {\"hidden\": false}")
        try:
            app = self.s.store.set_hidden(course, name, hidden)
        except PublishError as e:
            raise web.HTTPError(e.status, str(e)) from None
        self.s.audit.write("unpublish" if hidden else "republish", user, course=course, app=name)
        self.write_json(self.app_json(app))


class _Viewer(_Base):
    async def _app(self, course: str, name: str):
        _, courses, teaches = await self._member()
        if course not in courses:
            raise _not_found(course)
        try:
            app = self.s.store.get(course, name)
        except PublishError:
            app = None
        if app is None or (app.hidden and course not in teaches):
            raise _not_found(course, name)
        return app


class OpenApp(_Viewer):
    @web.authenticated
    async def get(self, course: str, name: str):
        app = await self._app(course, name)
        version = app.latest
        wanted = self.get_argument("version", None)
        if wanted is not None:
            version = next((v for v in app.versions if str(v.number) == wanted), None)
            if version is None:
                raise web.HTTPError(404, f"{name!r} has no version {wanted!r}")
        path = "/".join(p for p in (self.s.mount_subpath, course, version.notebook) if p)
        # user-redirect: the caller's own server (started if it is not running).
        self.redirect(url_path_join(self.base_url, "hub/user-redirect/voila/render", quote(path)))


class Thumbnail(_Viewer):
    @web.authenticated
    async def get(self, course: str, name: str, number: str):
        app = await self._app(course, name)
        version = next((v for v in app.versions if str(v.number) == number and v.thumbnail), None)
        if version is None:
            raise web.HTTPError(404)
        self.set_header("Content-Type", "image/png")
        self.set_header("Cache-Control", "private, max-age=86400")  # versions never change
        self.finish((self.s.store.course_dir(course) / version.thumbnail).read_bytes())


class PublishForm(_Base):
    """Publish a notebook from the teacher's own server (JupyterLab: File → Publish to a course…).

    The service reads the notebook through the proxy with the teacher's own
    OAuth token (read access to their own server only), so nothing is uploaded
    from the browser. A browser form: the cookie plus JupyterHub's xsrf token.
    """

    def check_xsrf_cookie(self):
        return HubOAuthenticated.check_xsrf_cookie(self)

    def _form(self, teaches: set[str], *, published=None, error: str | None = None) -> None:
        fields = ("course", "path", "name", "title", "description")
        values = {k: self.get_argument(k, "") for k in fields}
        self.finish(self.render_page("publish.html", page_title="Publish to a course", teaches=sorted(teaches),
                                     values=values, published=published, error=error))

    @web.authenticated
    async def get(self):
        _, _, teaches = await self._member()
        if not teaches:
            raise web.HTTPError(403, "only teachers publish course apps")
        self._form(teaches)

    @web.authenticated
    async def post(self):
        user, _, teaches = await self._member()
        course, path = self.get_argument("course", ""), self.get_argument("path", "").strip("/")
        if course not in teaches:
            raise web.HTTPError(403, f"only teachers of {course!r} can publish to it")
        try:
            if not path.endswith(".ipynb") or ".." in path.split("/"):
                raise web.HTTPError(400, "give the path of a notebook (.ipynb) in your home")
            notebook = await self._read_notebook(user, path)
            name = self.get_argument("name", "") or path.rsplit("/", 1)[-1][:-6].lower()
            app = self._publish(user, course, name, notebook, self.get_argument("title", "") or None,
                                self.get_argument("description", "") or None)
        except web.HTTPError as e:
            # In the form, with what was typed, so the teacher corrects it there.
            self.set_status(e.status_code)
            return self._form(teaches, error=e.get_message())
        self._form(teaches, published={"course": course, "name": app.name, "version": app.latest.number})

    async def _read_notebook(self, user: str, path: str) -> str:
        if not self.s.proxy_url:
            raise web.HTTPError(501, "publishing from a server is not configured (--proxy-url)")
        url = url_path_join(self.s.proxy_url, "user", quote(user), "api/contents", quote(path)) + "?content=1"
        req = HTTPRequest(url, headers={"Authorization": f"token {self.hub_auth.get_token(self)}"},
                          follow_redirects=False)
        try:
            model = json.loads((await AsyncHTTPClient().fetch(req)).body)
        except HTTPClientError as e:
            if e.code == 404:
                raise web.HTTPError(404, f"no notebook {path!r} in your home") from None
            raise web.HTTPError(409, f"cannot read {path!r} from your server ({e.code}); is it running?") from None
        if model.get("type") != "notebook":
            raise web.HTTPError(400, f"{path!r} is not a notebook")
        return json.dumps(model["content"])


class Gallery(_Base):
    @web.authenticated
    async def get(self):
        _, courses, teaches = await self._member()
        shown = []
        for course in sorted(courses):
            students = None
            if course in teaches and self.s.sharing:  # the sharing service lists them with "Join read-only"
                students = url_path_join(self.base_url, "services/sharing/course", course)
            shown.append({"name": course, "teacher": course in teaches, "students_url": students,
                          "apps": [self.app_json(a) for a in self.s.store.list(course, include_hidden=course in teaches)]})
        self.finish(self.render_page("gallery.html", page_title="Course apps", courses=shown))


def make_app(settings: Settings) -> web.Application:
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/courses/")
    seg = COURSE_SEGMENT
    kw = {"settings": settings}
    return web.Application([
        (prefix + r"?", Gallery, kw),
        (url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler),
        (url_path_join(prefix, "api/session"), SessionCheck),
        (url_path_join(prefix, r"api/courses/?"), CoursesAPI, kw),
        (url_path_join(prefix, r"publish"), PublishForm, kw),
        (url_path_join(prefix, rf"api/courses/{seg}/apps/([^/]+)"), AppAPI, kw),
        (url_path_join(prefix, rf"open/{seg}/([^/]+)"), OpenApp, kw),
        (url_path_join(prefix, rf"thumbnail/{seg}/([^/]+)/(\d+)"), Thumbnail, kw),
    ], cookie_secret=secrets.token_bytes(32), default_handler_class=NotFound)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m slicerhub.courses.service")
    parser.add_argument("--root", required=True, help="the courses folder")
    parser.add_argument("--course", action="append", default=[], help="a course (hub group); repeat")
    parser.add_argument("--teacher-group", action="append", default=[], help="a teachers' group; repeat")
    parser.add_argument("--mount-subpath", default="courses",
                        help="where the courses folder is in user servers, relative to the home")
    parser.add_argument("--audit-log", help="append one JSON line per publish/unpublish here")
    parser.add_argument("--proxy-url", help="the hub's public entry (the proxy), to read notebooks from servers")
    args = parser.parse_args(argv)
    store = CourseStore(args.root, args.course)
    for course in store.courses:
        store.ensure_course(course)
    app = make_app(Settings(store, args.teacher_group, args.mount_subpath, args.audit_log, args.proxy_url))
    url = serve(app, "courses")
    log.info("courses service on %s, courses %s", url, ", ".join(store.courses) or "none")
    IOLoop.current().start()


if __name__ == "__main__":
    main()
