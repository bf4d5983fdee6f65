"""Publishing a notebook to a course from JupyterLab ("Publish to a Course…").

The browser in JupyterLab holds no hub token, so JupyterLab's dialog (the
``@slicerhub/publish`` labextension, images/base/labextension) asks this
server, and this server asks the courses service with its own
``$JUPYTERHUB_API_TOKEN``: the hub gives that token
``access:services!service=courses`` (``SlicerSpawner.server_token_scopes``),
and the service sees the server's owner, so it publishes as them and only to
courses they teach (it checks, as for any token).

* ``GET  slicerhub/courses``  the owner's courses (``{"courses": [{"name",
  "teacher"}], "gallery_url"}``), from the service's ``api/courses``;
* ``POST slicerhub/publish``  ``{path, course, name, title, description,
  thumbnail}``: reads the notebook at ``path`` through the contents manager
  and POSTs it to ``api/courses/<course>/apps/<name>``; answers the service's
  reply (the version) or its status and message.

Both are the owner's alone: the read-only guard refuses them to viewers of a
shared session (they are not on ``policy``'s viewer list), and the handlers
check the execute level again. The service's URL comes from the spawner
(``$SLICERHUB_COURSES_URL``, where user containers reach it, as for the PACS
gateway).

The pure parts (``default_app_name``, ``publish_request``, ``service_error``)
are unit-tested without a server.
"""

from __future__ import annotations

import json
import os
import re
from urllib.parse import quote

COURSES_URL_ENV = "SLICERHUB_COURSES_URL"
TIMEOUT_S = 60
# The service's rule for course and app names (slicerhub.courses.store.NAME).
NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
FIELDS = ("path", "course", "name", "title", "description", "thumbnail")


class PublishProblem(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def default_app_name(path: str) -> str:
    """The app name a notebook's file name suggests: ``labs/Brain Lab 2.ipynb`` -> ``brain-lab-2``."""
    stem = path.rsplit("/", 1)[-1]
    if stem.lower().endswith(".ipynb"):
        stem = stem[: -len(".ipynb")]
    name = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-")
    return name[:40].strip("-") or "app"


def notebook_path(path) -> str:
    """The contents-manager path of the notebook to publish (checked, no leading slash)."""
    if not isinstance(path, str) or not path.strip("/"):
        raise PublishProblem(400, "which notebook? 'path' is missing")
    path = path.strip("/")
    if not path.lower().endswith(".ipynb"):
        raise PublishProblem(400, f"{path!r} is not a notebook (.ipynb)")
    if any(part in ("", ".", "..") for part in path.split("/")):
        raise PublishProblem(400, f"{path!r} is not a path inside this server")
    return path


def publish_request(body, notebook_json: str | None = None) -> tuple[str, str, dict]:
    """(course, app name, JSON for the service) from the dialog's request body.

    Without ``notebook_json`` the body is only checked (the handler reads the
    notebook after that). The service checks names, titles and the thumbnail
    again; this refuses what cannot be sent at all, with the dialog's words.
    """
    if not isinstance(body, dict):
        raise PublishProblem(400, "the request must be a JSON object")
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise PublishProblem(400, f"unknown field(s): {', '.join(unknown)}")
    path = notebook_path(body.get("path"))
    course = body.get("course")
    if not isinstance(course, str) or not course:
        raise PublishProblem(400, "choose a course")
    name = body.get("name") or default_app_name(path)
    if not isinstance(name, str) or not NAME.match(name):
        raise PublishProblem(400, f"app name {name!r} is not allowed: use 1-40 lower-case letters, "
                                  "digits and '-', starting and ending with a letter or digit")
    out: dict = {}
    for key in ("title", "description", "thumbnail"):
        value = body.get(key)
        if value in (None, ""):
            continue
        if not isinstance(value, str):
            raise PublishProblem(400, f"{key!r} must be text")
        out[key] = value
    if notebook_json is not None:
        out["notebook"] = notebook_json
    return course, name, out


def app_url(base: str, course: str, name: str) -> str:
    return f"{base.rstrip('/')}/api/courses/{quote(course, safe='')}/apps/{quote(name, safe='')}"


def service_error(status: int, body: bytes | None) -> PublishProblem:
    """The service's refusal as the dialog shows it: its own message when it sent one."""
    message = None
    try:
        data = json.loads(body or b"")
        if isinstance(data, dict) and isinstance(data.get("message"), str):
            message = data["message"]
    except ValueError:
        pass
    if not message:
        message = {403: "the courses service refused: only teachers of a course publish to it",
                   404: "no such course"}.get(status, f"the courses service answered HTTP {status}")
    # 5xx of the service stays a 502 here: this server is fine, the service is not.
    return PublishProblem(status if 400 <= status < 500 else 502, message)


def courses_url() -> str:
    url = os.environ.get(COURSES_URL_ENV, "")
    if not url:
        raise PublishProblem(503, "this deployment has no courses (no courses service for this server)")
    return url


def gallery_url() -> str:
    """The gallery's public address (the hub's base URL + services/courses/)."""
    return os.environ.get("JUPYTERHUB_BASE_URL", "/").rstrip("/") + "/services/courses/"


def published(reply: dict) -> dict:
    """What the dialog shows after a publish, from the service's app JSON."""
    return {"course": reply.get("course"), "name": reply.get("name"), "version": reply.get("latest"),
            "title": reply.get("title"), "open_url": reply.get("open_url"), "gallery_url": gallery_url()}
