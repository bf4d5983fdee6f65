"""Authentication for the REST parts of SlicerHub's hub services."""

from __future__ import annotations

import functools

from tornado import web


def api_authenticated(method):
    """Like tornado's ``web.authenticated``, but a missing or bad token is a 403
    with a JSON message, never a redirect to the login page (clients are scripts)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if not self.current_user:
            raise web.HTTPError(403, "a valid hub API token is needed (Authorization: token …)")
        return method(self, *args, **kwargs)

    return wrapper
