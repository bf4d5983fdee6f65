"""Spawning through the hub as a person would: the form, then the progress stream."""

from __future__ import annotations

import json
import time

import requests

from tests.support.hub import xsrf as hub_xsrf


def wait_ready(hub, session, user: str, timeout: float = 120) -> dict:
    """Follow the spawn progress stream until the server is ready; return the events."""
    xsrf = hub_xsrf(session)
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
    xsrf = hub_xsrf(session)
    data = {"_xsrf": xsrf}
    if profile:
        data["profile"] = profile
    return session.post(hub.url + "/hub/spawn", data=data, allow_redirects=False, timeout=60)


def server_api(hub, token: str, user: str, path: str, method: str = "GET", **kw):
    return requests.request(
        method,
        f"{hub.url}/user/{user}/api{path}",
        headers={"Authorization": f"token {token}"},
        timeout=30,
        allow_redirects=False,
        **kw,
    )


def hub_api(hub, token: str, path: str, method: str = "GET", **kw):
    return requests.request(
        method, f"{hub.url}/hub/api{path}", headers={"Authorization": f"token {token}"}, timeout=60, **kw
    )


def stop_server(hub, token: str, user: str, timeout: float = 60) -> None:
    r = hub_api(hub, token, f"/users/{user}/server", "DELETE")
    assert r.status_code in (202, 204), r.text
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not hub_api(hub, token, f"/users/{user}").json()["servers"]:
            return
        time.sleep(0.5)
    raise AssertionError(f"{user}'s server did not stop")


def container(docker_client, hub, user):
    return docker_client.containers.get(f"{hub.prefix}-{user}")


def in_desktop(c, *command: str, detach: bool = False):
    """Run COMMAND as the user inside the container, on the desktop's X display."""
    displays = c.exec_run(["ls", "/tmp/.X11-unix"]).output.decode().split()
    assert displays, "no X display in the container"
    env = {"DISPLAY": ":" + displays[0].lstrip("X"), "HOME": "/home/slicer"}
    return c.exec_run(list(command), user="1000", environment=env, detach=detach)
