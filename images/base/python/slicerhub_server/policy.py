"""Which routes of this single-user server a caller at each level may use.

Pure functions (no Jupyter imports), so the rules are unit-tested on their own.
The levels and their scopes are ``slicerhub_access`` (shared with the hub).

The scoped authorizer covers the Jupyter APIs that use the Authorizer
(contents, kernels, sessions, terminals…). Everything else a server exposes
— proxied apps (the desktop, Slicer Web), Voilà, extensions that only check
login — is guarded here: a caller below ``execute`` gets the routes listed for
their level, and nothing else. A new extension or proxied app is closed to
them until someone decides where it belongs.
"""

from __future__ import annotations

import json
import re
from urllib.parse import unquote

import slicerhub_access as access

# Routes (relative to the server's base URL) a read-only caller may GET.
_VIEWER_GET = [re.compile(p) for p in (
    r"",                                   # the default-URL redirect
    r"lab(/.*)?",                          # JupyterLab pages, settings, workspaces, themes (GET)
    r"tree(/.*)?",
    r"static/.*",
    r"custom/.*",
    r"files/.*",                           # file downloads (the authorizer checks read:contents)
    r"api",
    r"api/me",
    r"api/status",
    r"api/contents(/.*)?",                 # listing and reading (the authorizer checks read:contents)
    r"api/kernelspecs(/.*)?",
    r"kernelspecs/.*",                     # kernel logos
    r"api/sessions/?",                     # list only
    r"api/kernels/?",                      # list only: never api/kernels/<id>/channels
    r"api/terminals/?",                    # list only: never terminals/websocket/<name>
    r"api/config/.*",
    r"api/nbconvert/?",
    r"api/translations(/.*)?",
    # Real-time collaboration (jupyter-collaboration), read side: a document's
    # history and forks, and its websocket, whose edits the guard drops for
    # callers who may not edit (``y_message_allowed``).
    r"api/collaboration/room/[^/]+",
    r"api/collaboration/timeline/.+",
    r"api/collaboration/fork/[^/]+",
    r"desktop/static/.*",                  # noVNC's files
    r"desktop-view/?",                     # the view-only desktop page…
    r"desktop-view/screen/?",
    r"desktop-view/desktop-websockify/?",  # …and its socket (the view-only VNC listener)
    r"slicerhub/access",                   # who am I here (read-only or owner)
    # The owner's Orthanc companion, read side only: Orthanc Explorer's files,
    # the REST resources and DICOMweb (QIDO/WADO). Its searches (POST
    # tools/find), uploads and deletes stay the owner's. MONAI Label: nothing
    # (inference is a POST that costs the owner's CPU).
    r"orthanc/app/.*",
    r"orthanc/(patients|studies|series|instances)(/.*)?",
    r"orthanc/dicom-web/.*",
    r"orthanc/(system|statistics)",
)]
SAFE_METHODS = {"GET", "HEAD"}

# Opening a document with real-time collaboration asks for its room with a
# PUT (jupyter_server_ydoc DocSessionHandler: it indexes the file and returns
# its id; it changes nothing). Readers need it to see a notebook at all.
_DOCUMENT_SESSION = re.compile(r"api/collaboration/session/.+")

# What a collaborator may do beyond a viewer, any method (the authorizer still
# checks each Jupyter API against ``slicerhub_access.may``): edit files and
# notebooks, run code in the owner's kernels. Not on the list, so refused:
# terminals, api/shutdown, settings and workspaces (the owner's), extension
# managers, the owner's own desktop socket (a collaborator's goes through the
# hand-over relay, ``_COLLABORATOR_DESKTOP``) and the companions' write side.
_COLLABORATOR_ANY = [re.compile(p) for p in (
    r"api/contents(/.*)?",
    r"api/sessions(/.*)?",
    r"api/kernels(/.*)?",                  # incl. api/kernels/<id>/channels (execute:kernels)
    r"api/collaboration/.+",
)]

# The collaborators' desktop: the hand-over relay to the owner's VNC server,
# which passes their input only while the owner has handed them control.
# Not write-only callers' (contents only), nor viewers' (the view-only listener).
_COLLABORATOR_DESKTOP = [(re.compile(p), methods) for p, methods in (
    (r"desktop-shared/screen/?", SAFE_METHODS),
    (r"desktop-shared/desktop-websockify/?", SAFE_METHODS),
    (r"slicerhub/desktop/control", SAFE_METHODS | {"PUT"}),  # who has control; the holder hands it back
)]

# A shared document's websocket messages (y-protocols; pycrdt reads the first
# bytes as they are): 0 = sync, then 0 = step 1 (the client's state vector: a
# request), 1 = step 2 and 2 = update (both carry changes); 1 = awareness
# (cursor, selection, who is here). Anything else (jupyter-collaboration's
# "save" request, unknown types) is not a reader's either.
_Y_SYNC, _Y_SYNC_STEP1, _Y_AWARENESS = 0, 0, 1
_DOCUMENT_SOCKET = re.compile(r"api/collaboration/room/[^/]+")


def _clean(path: str) -> str | None:
    """The path without query or leading slash; None if it has dot segments
    (the proxied apps resolve them themselves: orthanc/studies/../x is x there)."""
    path = path.split("?", 1)[0].lstrip("/")
    if any(part in (".", "..") for part in unquote(path).split("/")):
        return None
    return path


def route_allowed(level: str | None, method: str, path: str) -> bool:
    """Whether a caller at ``level`` may send ``method`` to ``path`` (below the base URL)."""
    if level == "execute":
        return True
    if level not in access.LEVELS:
        return False
    path = _clean(path)
    if path is None:
        return False
    method = method.upper()
    if method in SAFE_METHODS and any(p.fullmatch(path) for p in _VIEWER_GET):
        return True
    if method == "PUT" and _DOCUMENT_SESSION.fullmatch(path):
        return True
    if level == "collaborate" and any(p.fullmatch(path) and method in methods
                                      for p, methods in _COLLABORATOR_DESKTOP):
        return True
    # write: the same routes; the authorizer keeps it to contents.
    return level in ("collaborate", "write") and any(p.fullmatch(path) for p in _COLLABORATOR_ANY)


def viewer_may(method: str, path: str) -> bool:
    """Whether a read-only caller may send ``method`` to ``path`` (no leading slash)."""
    return route_allowed("read", method, path)


def authorizer_action(action: str, resource: str, path: str | None) -> str:
    """The action the authorizer checks for ``path`` (below the base URL):
    opening a document's collaborative session is a read, though it is a PUT
    (see ``_DOCUMENT_SESSION``)."""
    clean = _clean(path) if path is not None else None
    if action == "write" and resource == "contents" and clean and _DOCUMENT_SESSION.fullmatch(clean):
        return "read"
    return action


def is_document_socket(path: str) -> bool:
    clean = _clean(path)
    return bool(clean and _DOCUMENT_SOCKET.fullmatch(clean))


def y_message_allowed(message: bytes | str) -> bool:
    """Whether a caller who may not edit may send this document-websocket message:
    sync step 1 (asking for the document) and awareness, nothing that changes it."""
    if not isinstance(message, bytes) or not message:
        return False
    if message[0] == _Y_AWARENESS:
        return True
    return message[0] == _Y_SYNC and len(message) > 1 and message[1] == _Y_SYNC_STEP1


_Y_RAW = 2  # jupyter-collaboration's own messages (a JSON or text payload)


def _varuint(data: bytes, at: int) -> tuple[int, int]:
    """lib0's variable-length unsigned integer at ``at``: (value, next position)."""
    value, shift = 0, 0
    while True:
        if at >= len(data) or shift > 63:
            raise ValueError("truncated varuint")
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at += 1
        if byte < 0x80:
            return value, at
        shift += 7


def _encode_varuint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def save_request_id(message: bytes | str) -> int | None:
    """The id of a document websocket's "save" request (raw, "save", id), else None."""
    if not isinstance(message, bytes):
        return None
    try:
        kind, at = _varuint(message, 0)
        if kind != _Y_RAW:
            return None
        length, at = _varuint(message, at)
        if message[at:at + length] != b"save":
            return None
        save_id, _ = _varuint(message, at + length)
    except ValueError:
        return None
    return save_id


def save_refused(save_id: int) -> bytes:
    """jupyter-collaboration's reply to a save that did not happen: JupyterLab
    then tells the reader "Saving failed" instead of waiting."""
    text = json.dumps({"type": "save", "responseTo": save_id, "status": "failed"}).encode()
    return _encode_varuint(_Y_RAW) + _encode_varuint(len(text)) + text


def still_at(level: str | None, opened_at: str) -> bool:
    """Whether a guest's websocket opened at ``opened_at`` stays open at their
    current ``level``: only while the level is as strong as it was."""
    if level not in access.LEVELS:
        return False
    return access.LEVELS.index(level) <= access.LEVELS.index(opened_at)


def relative_path(path: str, base_url: str) -> str | None:
    """``path`` below ``base_url`` (no leading slash), or None outside it."""
    base = "/" + base_url.strip("/") + "/" if base_url.strip("/") else "/"
    if path + "/" == base:
        return ""
    if not path.startswith(base):
        return None
    return path[len(base):]


def keep_watching(verdict: bool | None, unanswered_since: float | None, now: float,
                  grace: float) -> tuple[bool, float | None]:
    """Whether a viewer's open websocket stays open after one re-check.

    ``verdict``: True, the hub confirms the access; False, the hub says it
    ended (revoked, expired, token gone); None, the hub did not answer (it is
    restarting). While the hub does not answer, the last confirmed access holds
    for ``grace`` seconds: nobody can revoke anything while the hub is down, and
    a hub restart must not cut the people watching. Returns (keep open, the
    time the hub stopped answering, or None once it answers).
    """
    if verdict is not None:
        return verdict, None
    since = now if unanswered_since is None else unanswered_since
    return now - since <= grace, since


# How JupyterHub's HubAuth reports that the hub API did not answer
# (jupyterhub/services/auth.py, HubAuth._api_request): no connection -> 500
# with this message; the hub answered 5xx -> 502. Every other failure (a 4xx
# other than 403/404, a reply that is not JSON) is not an outage.
HUB_UNREACHABLE = "Failed to connect to Hub API"


def hub_outage(status: int | None, message: str) -> bool:
    """Whether a failed re-check means the hub is down (keep the viewer for the
    grace), rather than a refusal or a broken reply (close at once)."""
    return status == 502 or (status == 500 and message.startswith(HUB_UNREACHABLE))
