"""Spawning through the hub as a person would: the form, then the progress stream."""

from __future__ import annotations

import json

import requests


def wait_ready(hub, session, user: str, timeout: float = 120) -> dict:
    """Follow the spawn progress stream until the server is ready; return the events."""
    xsrf = session.cookies.get("_xsrf")
    events = []
    with session.get(
        f"{hub.url}/hub/api/users/{user}/server/progress",
        headers={"X-XSRFToken": xsrf, "Referer": hub.url + "/hub/spawn"},
        stream=True,
        timeout=timeout,
    ) as r:
        r.raise_for_status()
        for line in r.iter_lines(decode_unicode=True):
            if line and line.startswith("data:"):
                event = json.loads(line[5:])
                events.append(event)
                if event.get("ready") or event.get("failed"):
                    break
    return {"events": events, "ready": bool(events and events[-1].get("ready"))}


def spawn_with_form(hub, session, profile: str | None = None) -> requests.Response:
    xsrf = session.cookies.get("_xsrf")
    data = {"_xsrf": xsrf}
    if profile:
        data["profile"] = profile
    return session.post(hub.url + "/hub/spawn", data=data, allow_redirects=False, timeout=60)
