"""What SlicerHub's hub services (courses, sharing) share: a handler base with
JSON errors, REST authentication without login redirects, the audit log, and
listening where the hub says."""

from __future__ import annotations

import functools
import html
import json
import logging
import os
import time
from urllib.parse import urlparse

from jupyterhub.services.auth import HubOAuthenticated
from tornado import web
from tornado.httpserver import HTTPServer


def api_authenticated(method):
    """Like tornado's ``web.authenticated``, but a missing or bad token is a 403
    with a JSON message, never a redirect to the login page (clients are scripts)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if not self.current_user:
            raise web.HTTPError(403, "a valid hub API token is needed (Authorization: token …)")
        return method(self, *args, **kwargs)

    return wrapper


class ServiceHandler(HubOAuthenticated, web.RequestHandler):
    """Signed in through the hub (OAuth cookie or API token); errors as JSON."""

    def initialize(self, settings):
        self.s = settings

    def write_error(self, status_code, **kwargs):
        exc = kwargs.get("exc_info", (None, None))[1]
        # get_message: the text as written (log_message doubles every '%' for the log).
        message = (exc.get_message() if isinstance(exc, web.HTTPError) else None) or self._reason
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"status": status_code, "message": message}))

    def json_body(self) -> dict:
        """The request body as a JSON object, or a 400 saying what is wrong with it."""
        try:
            body = json.loads(self.request.body or b"{}")
        except (ValueError, RecursionError):  # RecursionError: nested too deep
            raise web.HTTPError(400, "body must be JSON") from None
        if not isinstance(body, dict):
            raise web.HTTPError(400, "body must be a JSON object")
        return body

    def xsrf_field(self) -> str:
        """JupyterHub's xsrf token as a hidden form field (cookie-authenticated forms)."""
        token = self.xsrf_token
        token = token.decode() if isinstance(token, bytes) else token
        return f'<input type="hidden" name="_xsrf" value="{html.escape(token)}">'


def page(title: str, body: str) -> str:
    """A service page: one look for the sharing and PACS pages."""
    return PAGE.format(title=html.escape(title), body=body)


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title><style>
body {{ font-family: sans-serif; margin: 2em; max-width: 60em; }} table {{ border-collapse: collapse; }}
td, th {{ border-bottom: 1px solid #ddd; padding: 0.3em 0.8em; text-align: left; }}
.url {{ font-family: monospace; background: #f4f4f4; padding: 0.5em; word-break: break-all; }}
.ro {{ background: #b00; color: #fff; padding: 0 0.4em; border-radius: 3px; }}
a.button, button {{ display: inline-block; margin: 0.3em 0.6em 0.3em 0; }}
</style></head><body><h1>{title}</h1>{body}</body></html>
"""


class NotFound(ServiceHandler):
    """Any path a service does not serve: a JSON 404 (tornado's own is an HTML page)."""

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
