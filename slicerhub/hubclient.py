"""What the `slicerhub` CLI's service commands share: a requests session with
the user's hub token, and hub/service errors as one clear line.

The hub URL and token come from --hub/--token or from JUPYTERHUB_URL /
JUPYTERHUB_API_TOKEN (set inside every user server), so the commands work in
a JupyterLab terminal as well as on the user's own machine.
"""

from __future__ import annotations

import os

import requests


def hub_session(args, path: str) -> tuple[requests.Session, str]:
    """(session with the token, the hub URL joined with PATH)."""
    hub = (getattr(args, "hub", None) or os.environ.get("JUPYTERHUB_URL") or "").rstrip("/")
    token = getattr(args, "token", None) or os.environ.get("JUPYTERHUB_API_TOKEN")
    if not hub or not token:
        raise SystemExit("error: give --hub URL and --token TOKEN (or set JUPYTERHUB_URL and JUPYTERHUB_API_TOKEN)")
    s = requests.Session()
    s.headers["Authorization"] = f"token {token}"
    return s, f"{hub}/{path}"


def answer(r: requests.Response) -> dict:
    """The JSON body, or exit with the service's message."""
    try:
        body = r.json()
    except ValueError:
        if r.status_code < 400:  # e.g. a login page: not the service's API
            raise SystemExit(f"error: {r.url} did not answer with JSON (is the hub URL right?)") from None
        body = {"message": r.text[:300]}
    if r.status_code >= 400:
        raise SystemExit(f"error: {r.status_code}: {body.get('message', body)}")
    return body
