"""What a caller may do in this single-user server, from their JupyterHub scopes.

Pure functions (no Jupyter imports), so the rules are unit-tested on their own.

Levels come from the custom scopes the hub defines (see
``slicerhub.traitlets_config``): ``custom:jupyter_server:execute:*`` (the
owner: everything), ``…:write:*`` and ``…:read:*`` (a shared, read-only
session). Each is filtered to this server (``!server=owner/name``) or its
owner (``!user=owner``).

The scoped authorizer covers the Jupyter APIs that use the Authorizer
(contents, kernels, sessions, terminals…). Everything else a server exposes
— proxied apps (the desktop, Slicer Web), Voilà, extensions that only check
login — is guarded by ``viewer_may``: a caller below ``execute`` gets safe
methods on an allowlist of read-only routes, and nothing else.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

LEVELS = ("execute", "write", "read")  # strongest first
SCOPE_PREFIX = "custom:jupyter_server"


def _filters(owner: str, server: str) -> tuple[str, str]:
    return f"!user={owner}", f"!server={owner}/{server}"


def scopes_for(action: str, resource: str, owner: str, server: str) -> set[str]:
    """The scopes any one of which allows ``action`` on ``resource`` here."""
    return {f"{SCOPE_PREFIX}:{action}:{res}{f}" for res in (resource, "*") for f in _filters(owner, server)}


def level_of(check, owner: str, server: str) -> str | None:
    """The caller's strongest level; ``check(scopes)`` returns the ones they hold."""
    for level in LEVELS:
        if check(scopes_for(level, "*", owner, server)):
            return level
    return None


# Routes (relative to the server's base URL) a read-only caller may GET.
# Everything not listed is refused: a new extension or proxied app is closed
# to viewers until someone decides it is read-only.
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


def viewer_may(method: str, path: str) -> bool:
    """Whether a read-only caller may send ``method`` to ``path`` (no leading slash)."""
    if method.upper() not in SAFE_METHODS:
        return False
    path = path.split("?", 1)[0].lstrip("/")
    if any(part in (".", "..") for part in unquote(path).split("/")):
        # The proxied apps resolve dot segments themselves: orthanc/studies/../x is x there.
        return False
    return any(p.fullmatch(path) for p in _VIEWER_GET)


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
