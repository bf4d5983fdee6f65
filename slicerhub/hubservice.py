"""What SlicerHub's hub services (courses, sharing, PACS) share: a handler base
whose pages are the hub's own (Jinja templates over JupyterHub's, autoescaped)
and whose API errors are JSON, REST authentication without login redirects,
who teaches which course, the audit log, and listening where the hub says."""

from __future__ import annotations

import functools
import html
import json
import logging
import os
import time
import types
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import jinja2
from jupyterhub.services.auth import HubOAuthenticated
from jupyterhub.utils import url_path_join
from tornado import web
from tornado.httpserver import HTTPServer

from . import site
from .config import COURSE


def api_authenticated(method):
    """Like tornado's ``web.authenticated``, but a missing or bad token is a 403
    with a JSON message, never a redirect to the login page (clients are scripts)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if not self.current_user:
            raise web.HTTPError(403, "a valid hub API token is needed (Authorization: token …)")
        return method(self, *args, **kwargs)

    return wrapper


# One course-name rule for the deployment file, the stores and the URL routes.
COURSE_SEGMENT = "(" + COURSE.removeprefix("^").removesuffix("$") + ")"
TEMPLATES = Path(__file__).resolve().with_name("templates")


@dataclass(frozen=True)
class Member:
    """Who the caller is in the courses (asked from the hub on every request,
    so an LDAP change counts from the person's next login)."""

    name: str
    admin: bool
    courses: frozenset[str]  # the deployment's courses the person is in
    teaches: frozenset[str]  # those of them they teach


def membership(model: dict, courses: set[str], teacher_groups: set[str]) -> Member:
    """A teacher teaches every course they are in: being in a teachers' group
    and in the course's group (the one rule both services follow)."""
    groups = set(model.get("groups") or [])
    mine = frozenset(groups & set(courses))
    return Member(model["name"], bool(model.get("admin")), mine,
                  mine if groups & set(teacher_groups) else frozenset())


@functools.cache
def templates() -> jinja2.Environment:
    """SlicerHub's templates over JupyterHub's own, as the hub loads them
    (``templates/page.html`` is the stock one), with autoescaping on."""
    from jupyterhub._data import DATA_FILES_PATH

    stock = jinja2.FileSystemLoader(os.path.join(DATA_FILES_PATH, "templates"))
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader([jinja2.PrefixLoader({"templates": stock}, "/"),
                                    jinja2.FileSystemLoader(str(TEMPLATES)), stock]),
        autoescape=True)


class ServiceHandler(HubOAuthenticated, web.RequestHandler):
    """Signed in through the hub (OAuth cookie or API token). Pages are the
    hub's pages (same frame, navigation bar, dark mode); errors are JSON for
    the API (``…/api/…``) and a page in that frame for a person."""

    def initialize(self, settings):
        self.s = settings

    @property
    def prefix(self) -> str:
        return os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/")

    @property
    def base_url(self) -> str:
        return os.environ.get("JUPYTERHUB_BASE_URL", "/")

    error_heading: str | None = None  # what an error page's heading says instead of the HTTP reason

    def wants_json(self) -> bool:
        return self.request.path.startswith(url_path_join(self.prefix, "api/"))

    def write_error(self, status_code, **kwargs):
        exc = kwargs.get("exc_info", (None, None))[1]
        # get_message: the text as written (log_message doubles every '%' for the log).
        message = (exc.get_message() if isinstance(exc, web.HTTPError) else None) or self._reason
        if self.wants_json():
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"status": status_code, "message": message}))
            return
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(self.render_page("error.html", page_title=f"{status_code} {self._reason}",
                                     status_code=status_code, status_message=self.error_heading or self._reason,
                                     message=message))

    def render_page(self, template: str, **ns) -> str:
        """A template of slicerhub/templates in the hub's frame."""
        hub = url_path_join(self.base_url, "hub/")
        try:
            model = self.current_user
        except Exception:  # an error page while the hub is away: without the name
            model = None
        user = None
        if model:
            user = types.SimpleNamespace(name=model["name"], json_escaped_name=json.dumps(model["name"])[1:-1])
        try:
            token = self.xsrf_token
        except Exception:  # no OAuth cookie setup (a bare error page): nothing to post anyway
            token = ""
        return templates().get_template(template).render(
            base_url=hub, prefix=self.base_url, version_hash="", user=user,
            static_url=lambda path, include_version=True: url_path_join(hub, "static", path),
            logout_url=url_path_join(hub, "logout"), login_url=url_path_join(hub, "login"),
            parsed_scopes={"admin-ui"} if model and model.get("admin") else set(),
            services=[], admin_access=bool(model and model.get("admin")), no_spawner_check=True,
            xsrf_token=token.decode() if isinstance(token, bytes) else token,
            slicerhub_site=site.from_env(), service_prefix=self.prefix, **ns)

    def json_body(self) -> dict:
        """The request body as a JSON object, or a 400 saying what is wrong with it."""
        try:
            body = json.loads(self.request.body or b"{}")
        except (ValueError, RecursionError):  # RecursionError: nested too deep
            raise web.HTTPError(400, "body must be JSON") from None
        if not isinstance(body, dict):
            raise web.HTTPError(400, "body must be a JSON object")
        return body

    def write_json(self, model, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(model))


class SessionCheck(ServiceHandler):
    """``GET api/session``: signs the browser in to this service and hands the
    page that asked this service's xsrf token.

    The hub's home page loads it in a hidden frame, a navigation: the OAuth
    redirects through the hub set this service's cookie and its ``_xsrf``
    cookie, and the page reads the token from ``data-xsrf``. JupyterHub
    ignores a service cookie on a script's request (fetch) without that token,
    so the home page's fetches send it as X-XSRFToken, as JupyterHub's own
    pages do with the hub's."""

    def initialize(self, settings=None):
        self.s = settings

    @web.authenticated
    def get(self):
        token = self.xsrf_token
        token = token.decode() if isinstance(token, bytes) else token
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(f'<!DOCTYPE html><html lang="en"><head><title>Signed in</title></head>'
                    f'<body data-xsrf="{html.escape(token)}"></body></html>')


class NotFound(ServiceHandler):
    """Any path a service does not serve: a 404, JSON under api/, else a page."""

    def initialize(self, settings=None):
        self.s = settings

    def check_xsrf_cookie(self):
        return  # nothing to protect: every method is a 404

    def prepare(self):
        raise web.HTTPError(404, f"no such page or API: {self.request.path[:200]}")


class AuditLog:
    """One JSON line per event, with the time, to a file and the service's log."""

    def __init__(self, path: str | None, log: logging.Logger):
        self.path, self.log = path, log

    def write(self, action: str, user: str, **fields) -> None:
        record = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "action": action,
                  "user": user, **fields}
        self.log.info("audit %s", json.dumps(record))
        if self.path:
            with open(self.path, "a") as f:
                f.write(json.dumps(record) + "\n")


def serve(app: web.Application, name: str) -> str:
    """Log like the hub, listen on $JUPYTERHUB_SERVICE_URL; returns that URL."""
    logging.basicConfig(level=logging.INFO, format=f"[%(levelname)s %(asctime)s {name}] %(message)s")
    url = urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
    HTTPServer(app).listen(url.port, url.hostname)
    return url.geturl()
