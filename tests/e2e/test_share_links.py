"""Read-only share links, end to end: the real hub (share codes), the sharing
service, and the single-user server's authorizer, route guard and view-only
VNC listener in a real container.

student1 owns a session; student2 accepts a link to it; every way to change
something is tried as student2 and must be refused with nothing changed; then
revocation and expiry take the access away, open websockets included.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from urllib.parse import urljoin

import pytest
import requests

from slicerhub.devenv.rfb import RFBClient
from tests.support.hub import xsrf
from tests.support.browser import accessibility_problems, browser, hub_login, page_picture, wait_for
from tests.support.sessions import DesktopWatcher
from tests.support.share import SHARING, accept, create_link
from tests.support.spawn import container, in_desktop, server_api, spawn_with_form, wait_ready
from tests.support.websockets import seconds_until_closed, settle, ws_status

pytestmark = pytest.mark.e2e

OWNER, VIEWER = "student1", "student2"
PASSWORDS = {"student1": "student1-pw", "student2": "student2-pw", "teacher1": "teacher-pw",
             "mover": "mover-pw"}
# How often the server re-checks a viewer's websockets (ReadOnlyGuard.recheck_seconds).
RECHECK = 5
WHEEL_DOWN = 1 << 4  # RFB button mask bit 5: scroll down (Slicer: next slice)


def _session(hub, user):
    s, r = hub.login(user, PASSWORDS[user])
    assert r.status_code == 302, r.text
    return s


def _ws(hub, path):
    return hub.url.replace("http", "ws", 1) + path


def _viewer_token(hub, session):
    # A token that carries exactly what the share gives, for the write attempts.
    return hub.api_token(session, "viewer", scopes=[f"access:servers!server={OWNER}/",
                                                    f"custom:jupyter_server:read:*!server={OWNER}/"])


def _sha(hub, token, path):
    r = server_api(hub, token, OWNER, f"/contents/{path}?content=1&type=file&format=text")
    assert r.status_code == 200, r.text
    return hashlib.sha256(r.json()["content"].encode()).hexdigest()


def _listing(hub, token):
    r = server_api(hub, token, OWNER, "/contents/")
    return sorted((i["name"], i["last_modified"]) for i in r.json()["content"])


def _audit(hub):
    path = hub.workdir / "hub" / "sharing-audit.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []




@pytest.fixture(scope="module")
def shared(e2e_hub):
    """student1's running session, a link, and student2 who accepted it."""
    hub = e2e_hub
    owner = _session(hub, OWNER)
    assert spawn_with_form(hub, owner).status_code == 302
    assert wait_ready(hub, owner, OWNER)["ready"]
    owner_token = hub.api_token(owner, "owner")
    r = server_api(hub, owner_token, OWNER, "/contents/notes.md", "PUT",
                   json={"type": "file", "format": "text", "content": "# my notes\n"})
    assert r.status_code in (200, 201), r.text
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": "# Owner's lab notes"},
                    {"cell_type": "code", "metadata": {}, "source": "x = 41 + 1", "outputs": [],
                     "execution_count": None}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    r = server_api(hub, owner_token, OWNER, "/contents/lab.ipynb", "PUT", json={"type": "notebook", "content": nb})
    assert r.status_code in (200, 201), r.text
    # A short link made first: it must be gone by the time the module's last test runs.
    short_made = time.time()
    short = create_link(hub, owner_token, expires_in=60)
    link = create_link(hub, owner_token)
    viewer = _session(hub, VIEWER)
    landing = accept(hub, viewer, link["url"])
    assert landing.status_code == 200 and "read-only" in landing.text, landing.text[:500]
    assert accept(hub, viewer, short["url"]).status_code == 200
    return {"hub": hub, "owner": owner, "owner_token": owner_token, "link": link, "short": short,
            "short_made": short_made,
            "viewer": viewer, "viewer_token": _viewer_token(hub, viewer), "landing": landing}


def test_link_is_accepted_and_audited(shared):
    hub, link = shared["hub"], shared["link"]
    assert f"{SHARING}/view/{link['id']}" in shared["landing"].url
    r = requests.get(hub.url + SHARING + "/api/links", timeout=30,
                     headers={"Authorization": f"token {shared['owner_token']}"})
    mine = {item["id"]: item for item in r.json()["links"]}
    assert [v["name"] for v in mine[link["id"]]["viewers"]] == [VIEWER]
    actions = [(a["action"], a["user"]) for a in _audit(hub) if a.get("link") == link["id"]]
    assert ("create", OWNER) in actions and ("accept", VIEWER) in actions
    # The secret code itself is in no log.
    code = re.search(r"code=([^&]+)", link["url"]).group(1)
    assert code not in (hub.workdir / "hub" / "sharing-audit.log").read_text()


def test_viewer_reads_but_every_write_path_is_refused(shared, docker_client):
    hub, viewer, owner = shared["hub"], shared["viewer_token"], shared["owner_token"]
    c = container(docker_client, hub, OWNER)
    before_sha, before_list = _sha(hub, owner, "notes.md"), _listing(hub, owner)

    # Reading works.
    assert _sha(hub, viewer, "notes.md") == before_sha
    r = requests.get(f"{hub.url}/user/{OWNER}/slicerhub/access", timeout=30,
                     headers={"Authorization": f"token {viewer}"})
    assert r.json() == {"user": VIEWER, "owner": OWNER, "level": "read"}

    refused = {
        "PUT contents": server_api(hub, viewer, OWNER, "/contents/notes.md", "PUT",
                                   json={"type": "file", "format": "text", "content": "hacked"}),
        "PATCH rename": server_api(hub, viewer, OWNER, "/contents/notes.md", "PATCH", json={"path": "gone.md"}),
        "DELETE contents": server_api(hub, viewer, OWNER, "/contents/notes.md", "DELETE"),
        "POST new file": server_api(hub, viewer, OWNER, "/contents/", "POST", json={"type": "file"}),
        "POST checkpoint": server_api(hub, viewer, OWNER, "/contents/notes.md/checkpoints", "POST"),
        "POST kernel": server_api(hub, viewer, OWNER, "/kernels", "POST", json={"name": "slicer"}),
        "POST session": server_api(hub, viewer, OWNER, "/sessions", "POST",
                                   json={"path": "x.ipynb", "type": "notebook", "kernel": {"name": "slicer"}}),
        "POST terminal": server_api(hub, viewer, OWNER, "/terminals", "POST"),
        "PUT workspace": requests.put(f"{hub.url}/user/{OWNER}/lab/api/workspaces/default", json={},
                                      headers={"Authorization": f"token {viewer}"}, timeout=30),
        "PUT settings": requests.put(f"{hub.url}/user/{OWNER}/lab/api/settings/@jupyterlab/apputils-extension:themes",
                                     json={"raw": "{}"}, headers={"Authorization": f"token {viewer}"}, timeout=30),
        "Voila render": requests.get(f"{hub.url}/user/{OWNER}/voila/render/notes.md", timeout=30,
                                     headers={"Authorization": f"token {viewer}"}),
        "Slicer Web": requests.get(f"{hub.url}/user/{OWNER}/slicer-web/", timeout=30,
                                   headers={"Authorization": f"token {viewer}"}),
        "owner's desktop page": requests.get(f"{hub.url}/user/{OWNER}/desktop/", timeout=30,
                                             headers={"Authorization": f"token {viewer}"}),
    }
    for what, resp in refused.items():
        assert resp.status_code == 403, f"{what}: {resp.status_code} {resp.text[:200]}"

    # The owner starts a kernel; the viewer cannot attach to it, nor open any
    # other websocket that acts: terminals, Slicer Web, the owner's desktop.
    kernel = server_api(hub, owner, OWNER, "/kernels", "POST", json={"name": "python3"}).json()

    async def websockets():
        base = f"/user/{OWNER}"
        return {path: await ws_status(_ws(hub, base + path), viewer) for path in (
            f"/api/kernels/{kernel['id']}/channels", "/terminals/websocket/1",
            "/slicer-web/ws", "/desktop-websockify/", "/api/events/subscribe")}

    for path, status in asyncio.run(websockets()).items():
        assert status == 403, f"viewer websocket {path}: {status or 'opened'}"
    server_api(hub, owner, OWNER, f"/kernels/{kernel['id']}", "DELETE")

    assert _sha(hub, owner, "notes.md") == before_sha
    assert _listing(hub, owner) == before_list
    assert c.exec_run(["ls", "/home/slicer"], user="1000").output.decode().split().count("gone.md") == 0


def test_desktop_view_ignores_keyboard_mouse_and_clipboard(shared, docker_client):
    """The viewer's socket is a separate VNC server with input off: raw RFB input
    changes no pixel and no clipboard; the same input from the owner does."""
    hub, viewer, owner = shared["hub"], shared["viewer_token"], shared["owner_token"]
    c = container(docker_client, hub, OWNER)
    view_url = _ws(hub, f"/user/{OWNER}/desktop-view/desktop-websockify/")
    owner_url = _ws(hub, f"/user/{OWNER}/desktop-websockify/")
    in_desktop(c, "sh", "-c", "printf %s owner-clip | xclip -selection clipboard -i", detach=True)

    async def scroll(client, times=6):
        # Over the Red slice view (top left of Slicer's four-up layout), not where the views meet.
        x, y = client.fb.width // 4, client.fb.height // 4
        await client.pointer(x, y, 0)
        for _ in range(times):
            await client.pointer(x, y, WHEEL_DOWN)
            await client.pointer(x, y, 0)

    async def run():
        owner_client = await RFBClient.websocket(owner_url, {"Authorization": f"token {owner}"})
        view = await RFBClient.websocket(view_url, {"Authorization": f"token {viewer}"})
        try:
            # The desktop was started with the server: a picture is there.
            deadline = time.monotonic() + 90
            while (await owner_client.snapshot(30)).non_background_fraction() < 0.05:
                assert time.monotonic() < deadline, "the desktop shows nothing"
                await asyncio.sleep(1)
            await view.snapshot(30)
            assert view.fb.non_background_fraction() > 0.05, "the viewer sees nothing"
            before = await settle(owner_client)

            # Viewer: wheel, drag, keys, clipboard, and a resize request.
            await scroll(view)
            w, h = view.fb.width, view.fb.height
            await view.pointer(w // 3, h // 3, 1)
            await view.pointer(2 * w // 3, 2 * h // 3, 1)
            await view.pointer(2 * w // 3, 2 * h // 3, 0)
            for keysym in (0xFF56, 0xFF52, ord("r")):  # Page Down, Up, r
                await view.key(keysym, True)
                await view.key(keysym, False)
            await view.cut_text_to_server(b"from-viewer")
            await view._t.send(bytes([251, 0]) + (640).to_bytes(2, "big") + (480).to_bytes(2, "big")
                               + bytes([1, 0]) + bytes(16))  # SetDesktopSize 640x480
            after_viewer = await settle(owner_client)
            clip = in_desktop(c, "xclip", "-o", "-selection", "clipboard").output.decode()

            # Control: the owner's own wheel moves the slice, so the check can fail.
            await scroll(owner_client)
            after_owner = await settle(owner_client)
            return before, after_viewer, after_owner, clip, (owner_client.fb.width, owner_client.fb.height), view
        finally:
            await owner_client.close()
            await view.close()

    before, after_viewer, after_owner, clip, size, view = asyncio.run(run())
    assert after_viewer == before, "viewer input changed the owner's screen"
    assert clip == "owner-clip", f"viewer's cut text reached the clipboard: {clip!r}"
    assert size != (640, 480), "viewer resized the owner's desktop"
    assert not view.cut_text, "the owner's clipboard was sent to the viewer"
    assert after_owner != before, "owner's wheel did not change the picture (control failed)"


def test_outsiders_and_forged_codes_are_refused(shared):
    hub = shared["hub"]
    # Voilà's static file route is plain tornado (no login): the image gives it nothing to serve.
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 32).decode()
    r = server_api(hub, shared["owner_token"], OWNER, "/contents/scan.png", "PUT",
                   json={"type": "file", "format": "base64", "content": png})
    assert r.status_code in (200, 201), r.text
    for headers in ({}, {"Authorization": f"token {shared['viewer_token']}"}):
        r = requests.get(f"{hub.url}/user/{OWNER}/voila/files/scan.png", headers=headers, timeout=30,
                         allow_redirects=False)
        assert r.status_code != 200 and b"PNG" not in r.content, r.status_code
    mover = _session(hub, "mover")
    r = mover.get(hub.url + "/hub/accept-share", params={"code": "forged-" + "x" * 20}, timeout=30)
    assert r.status_code == 404
    r = mover.post(hub.url + "/hub/accept-share", timeout=30,
                   data={"_xsrf": xsrf(mover), "code": "forged"})
    assert r.status_code == 400
    token = hub.api_token(mover, "mover")
    assert server_api(hub, token, OWNER, "/contents/notes.md").status_code == 403
    # Nobody else's link can be seen or revoked.
    link = shared["link"]
    r = requests.delete(f"{hub.url}{SHARING}/api/links/{link['id']}", timeout=30,
                        headers={"Authorization": f"token {token}"})
    assert r.status_code == 404
    # Bad input: a clear error, nothing made.
    owner = shared["owner_token"]
    for body in ({"expires_in": 5}, {"expires_in": "soon"}, {"expires_in": 10**9}):
        r = requests.post(hub.url + SHARING + "/api/links", json=body, timeout=30,
                          headers={"Authorization": f"token {owner}"})
        assert r.status_code == 400 and "expires_in" in r.json()["message"], r.text


def test_teacher_joins_a_students_session_read_only(shared):
    hub = shared["hub"]
    teacher = _session(hub, "teacher1")
    page = teacher.get(hub.url + SHARING + "/course/anat101", timeout=60)
    assert page.status_code == 200 and f'data-student="{OWNER}"' in page.text, page.text[:500]
    assert 'data-student="teacher1"' not in page.text
    r = teacher.post(f"{hub.url}{SHARING}/join/anat101/{OWNER}", timeout=60,
                     data={"_xsrf": xsrf(teacher, SHARING + "/")})
    assert r.status_code == 200 and "/view/" in r.url, (r.status_code, r.text[:300])
    token = hub.api_token(teacher, "join", scopes=[f"access:servers!server={OWNER}/",
                                                    f"custom:jupyter_server:read:*!server={OWNER}/"])
    assert server_api(hub, token, OWNER, "/contents/notes.md").status_code == 200
    assert server_api(hub, token, OWNER, "/contents/notes.md", "DELETE").status_code == 403
    assert any(a["action"] == "join" and a["user"] == "teacher1" for a in _audit(hub))
    # A student of the course cannot join a classmate; a stranger sees no course.
    mover = _session(hub, "mover")
    assert mover.get(hub.url + SHARING + "/course/anat101", timeout=30).status_code == 403
    assert mover.post(f"{hub.url}{SHARING}/join/anat101/{OWNER}", timeout=30,
                      data={"_xsrf": xsrf(mover, SHARING + "/")}).status_code == 403
    viewer = shared["viewer"]
    assert viewer.get(hub.url + SHARING + "/course/anat101", timeout=30).status_code == 404


def _teachers_level(hub, teacher) -> str | None:
    """What the teacher may do in the owner's server now (None: no share at all)."""
    try:
        token = hub.api_token(teacher, "help", scopes=[f"access:servers!server={OWNER}/",
                                                        f"custom:jupyter_server:read:*!server={OWNER}/"])
    except requests.HTTPError:
        return None  # the hub gives no token for a server the teacher cannot reach
    r = requests.get(f"{hub.url}/user/{OWNER}/slicerhub/access", headers={"Authorization": f"token {token}"},
                     timeout=30)
    return r.json().get("level") if r.status_code == 200 else None


def _service_xsrf(hub, session) -> str:
    if xsrf(session, SHARING + "/") is None:
        session.get(hub.url + SHARING + "/", timeout=60)  # signs in to the service: its xsrf cookie
    return xsrf(session, SHARING + "/")


def _post(hub, session, path):
    return session.post(hub.url + SHARING + path, data={"_xsrf": _service_xsrf(hub, session)}, timeout=60)


def test_teacher_offers_help_the_student_declines_then_accepts_and_ends_it(shared):
    """Consent, not silent access: an offer gives nothing until the student
    accepts; accepting gives the teacher collaborate access, ending takes it
    back (what an earlier join gave stays), and the audit log has each step."""
    hub, student, classmate = shared["hub"], shared["owner"], shared["viewer"]
    teacher = _session(hub, "teacher1")
    before = _teachers_level(hub, teacher)
    assert before != "collaborate"

    offered = _post(hub, teacher, f"/help/offer/anat101/{OWNER}")
    assert offered.status_code == 200 and "/help/" in offered.url and "Waiting for student1" in offered.text
    first = offered.url.rstrip("/").rsplit("/", 1)[1]
    # Its Accept button must not be clickable from inside another site's frame.
    assert offered.headers["Content-Security-Policy"] == "frame-ancestors 'self'"
    assert _post(hub, teacher, f"/help/offer/anat101/{OWNER}").url == offered.url  # one pending offer, not two
    mine = student.get(hub.url + SHARING + "/api/help", timeout=30,
                       headers={"X-XSRFToken": _service_xsrf(hub, student)}).json()
    assert [(o["id"], o["state"], o["teacher"]) for o in mine["offered"]] == [(first, "pending", "teacher1")]
    assert f'data-offer="{first}"' in student.get(hub.url + SHARING + "/", timeout=30).text
    # Only the student answers; nobody else even sees the offer.
    assert _post(hub, teacher, f"/help/{first}/accept").status_code == 403
    assert _post(hub, classmate, f"/help/{first}/accept").status_code == 404
    assert classmate.get(f"{hub.url}{SHARING}/help/{first}", timeout=30).status_code == 404
    assert _post(hub, teacher, f"/help/offer/anat101/{VIEWER}x").status_code == 404
    assert _teachers_level(hub, teacher) == before

    declined = _post(hub, student, f"/help/{first}/decline")
    assert declined.status_code == 200 and "You declined" in declined.text
    assert "declined the offer" in teacher.get(f"{hub.url}{SHARING}/help/{first}", timeout=30).text
    assert _post(hub, student, f"/help/{first}/accept").status_code == 409
    assert _teachers_level(hub, teacher) == before

    second = _post(hub, teacher, f"/help/offer/anat101/{OWNER}").url.rstrip("/").rsplit("/", 1)[1]
    assert second != first
    accepted = _post(hub, student, f"/help/{second}/accept")
    assert accepted.status_code == 200 and "You accepted" in accepted.text
    # The server reads its shares at most RECHECK / 2 seconds old.
    wait_for(lambda: _teachers_level(hub, teacher) == "collaborate", 3 * RECHECK,
             what="the teacher's collaborate access")
    page = teacher.get(f"{hub.url}{SHARING}/help/{second}", timeout=30)
    view = re.search(r'id="open-session" href="([^"]+)"', page.text).group(1)
    landing = teacher.get(urljoin(hub.url, view), timeout=30)
    assert landing.status_code == 200 and "collaborate" in landing.text
    links = requests.get(hub.url + SHARING + "/api/links", timeout=30,
                         headers={"Authorization": f"token {shared['owner_token']}"}).json()["links"]
    assert any(link["kind"] == "help" and link["created_by"] == "teacher1" and link["access"] == "collaborate"
               for link in links)

    ended = _post(hub, student, f"/help/{second}/end")
    assert ended.status_code == 200 and "The help has ended" in ended.text
    wait_for(lambda: _teachers_level(hub, teacher) == before, 3 * RECHECK,
             what="the teacher's access to go back to what it was")
    steps = [(a["action"], a["user"]) for a in _audit(hub) if a.get("request") in (first, second)]
    assert steps == [("help-offer", "teacher1"), ("help-decline", OWNER), ("help-offer", "teacher1"),
                     ("help-accept", OWNER), ("help-end", OWNER)]


def test_browser_teacher_offers_help_and_the_student_answers(shared):
    """Two Chromium sessions: the teacher offers help from the course page, the
    offer shows on the student's home page, the student declines it, then
    accepts a second one; the teacher's page follows each answer."""
    hub = shared["hub"]
    teacher, student = browser(), browser()

    def offer():
        teacher.get(hub.url + SHARING + "/course/anat101")
        wait_for(lambda: teacher.find_elements(
            "xpath", f'//tr[@data-student="{OWNER}"]//button[text()="Offer help"]'), 30, what="Offer help")[0].click()
        wait_for(lambda: teacher.find_elements("css selector", '#help[data-state="pending"]'), 30,
                 what="the teacher's page waiting for the answer")

    def answer(label, picture=None):
        student.get(hub.url + "/hub/home")
        wait_for(lambda: student.find_elements("css selector", "#help-offers [data-offer] a"), 30,
                 what="the offer on the student's home page")[0].click()
        wait_for(lambda: student.find_elements("css selector", '#help[data-state="pending"]'), 30,
                 what="the student's answer page")
        if picture:
            assert accessibility_problems(student) == []
            page_picture(student, picture)
        student.find_element("xpath", f'//button[text()="{label}"]').click()

    try:
        hub_login(teacher, hub, "teacher1", PASSWORDS["teacher1"], next_url="/hub/home")
        hub_login(student, hub, OWNER, PASSWORDS[OWNER])
        offer()
        answer("Decline", picture="help-offer.png")
        wait_for(lambda: student.find_elements("css selector", '#help[data-state="declined"]'), 30,
                 what="the student's page after declining")
        # The teacher's page refreshes itself while it waits.
        wait_for(lambda: teacher.find_elements("css selector", '#help[data-state="declined"]'), 30,
                 what="the teacher's page to show the student declined")
        offer()
        answer("Accept")
        wait_for(lambda: teacher.find_elements("id", "open-session"), 30, what="the teacher's page after accepting")
        assert accessibility_problems(teacher) == []
        page_picture(teacher, "help-accepted-teacher.png")
        teacher.find_element("id", "open-session").click()
        wait_for(lambda: teacher.find_elements("css selector", ".badge.collab"), 30,
                 what="the collaborate view of the student's session")
        student.find_element("xpath", '//button[text()="End the help"]').click()
        wait_for(lambda: student.find_elements("css selector", '#help[data-state="ended"]'), 30,
                 what="the student's page after ending the help")
    finally:
        teacher.quit()
        student.quit()


def test_cli_creates_lists_and_revokes_links(shared):
    hub = shared["hub"]

    def cli(*args, token=shared["owner_token"]):
        env = {**os.environ, "JUPYTERHUB_URL": hub.url, "JUPYTERHUB_API_TOKEN": token}
        return subprocess.run([sys.executable, "-m", "slicerhub.cli", "share", *args], env=env,
                              capture_output=True, text=True, timeout=60)

    made = cli("create", "--expires", "10m")
    assert made.returncode == 0, made.stderr
    link_id = made.stdout.split()[2].rstrip(",")
    assert made.stdout.strip().splitlines()[-1].startswith(hub.url + "/hub/accept-share?code=")
    listed = cli("list")
    assert re.search(rf"^{re.escape(link_id)}\s+active", listed.stdout, re.M), listed.stdout
    assert cli("revoke", link_id).stdout.strip() == f"revoked {link_id}"
    assert re.search(rf"^{re.escape(link_id)}\s+revoked", cli("list", "--all").stdout, re.M)
    bad = cli("list", token="not-a-token")
    assert bad.returncode != 0 and bad.stderr.startswith("error: 403") and "Traceback" not in bad.stderr


def test_a_hub_restart_does_not_cut_a_viewer_watching_the_desktop(shared):
    """The server's guard re-checks a viewer's websockets with the hub every
    RECHECK seconds; while the hub does not answer it keeps the last confirmed
    access (up to hub_outage_grace_seconds), so a hub restart cuts nobody
    watching. Revocation after the restart still closes at once (next test)."""
    hub = shared["hub"]
    watch = DesktopWatcher(hub, OWNER, shared["viewer_token"], path="desktop-view/desktop-websockify/").start()
    try:
        wait_for(lambda: len(watch.frames) >= 2 or watch.error, 120, what="the viewer's first frames")
        hub.stop_program("hub")
        down = time.monotonic()
        time.sleep(3 * RECHECK)  # several re-checks find no hub
        assert watch.error is None, f"the viewer was cut while the hub was down: {watch.error!r}"
        assert watch.frames_after(down) >= 1
        hub.start_program("hub")
        back = time.monotonic()
        time.sleep(2 * RECHECK)  # re-checks with the hub answering again
        assert watch.error is None, f"the viewer was cut after the hub came back: {watch.error!r}"
        assert watch.frames_after(back) >= 1
    finally:
        watch.stop()
    # The viewer's access is still enforced by the restarted hub.
    assert server_api(hub, shared["viewer_token"], OWNER, "/contents/notes.md").status_code == 200
    r = server_api(hub, shared["viewer_token"], OWNER, "/contents/notes.md", "PUT",
                   json={"type": "file", "format": "text", "content": "changed"})
    assert r.status_code == 403


def test_revoking_ends_access_and_closes_the_open_desktop_view(shared):
    hub, viewer = shared["hub"], shared["viewer_token"]
    # The short link expires first (the viewer keeps access through this one).
    ended = lambda: [a for a in _audit(hub) if a["action"] == "end" and a.get("link") == shared["short"]["id"]]
    (end,) = wait_for(ended, max(5, shared["short_made"] + 60 + 30 - time.time()), what="the short link's expiry")
    assert end["reason"] == "expired" and end["viewers"] == [VIEWER]
    assert server_api(hub, viewer, OWNER, "/contents/notes.md").status_code == 200

    async def run():
        view = await RFBClient.websocket(_ws(hub, f"/user/{OWNER}/desktop-view/desktop-websockify/"),
                                         {"Authorization": f"token {viewer}"})
        await view.snapshot(30)
        r = await asyncio.to_thread(requests.delete, f"{hub.url}{SHARING}/api/links/{shared['link']['id']}",
                                    headers={"Authorization": f"token {shared['owner_token']}"}, timeout=30)
        assert r.status_code == 204, r.text
        return await seconds_until_closed(view, 30)

    closed_after = asyncio.run(run())
    assert closed_after < 15, f"closed after {closed_after:.1f} s"
    deadline = time.monotonic() + 15
    while server_api(hub, viewer, OWNER, "/contents/notes.md").status_code != 403:
        assert time.monotonic() < deadline, "the viewer could still read after revocation"
        time.sleep(1)
    assert any(a["action"] == "revoke" and a.get("link") == shared["link"]["id"] for a in _audit(hub))
    # A revoked link's URL is dead.
    r = _session(hub, "mover").get(urljoin(hub.url, shared["link"]["url"]), timeout=30)
    assert r.status_code == 404


def test_browser_student_shares_and_a_classmate_watches_the_desktop(shared):
    """Chromium: the owner makes a link on the sharing page; a second user opens
    it, accepts, and sees the live desktop through the view-only listener."""
    hub = shared["hub"]
    owner_driver = browser()
    try:
        hub_login(owner_driver, hub, OWNER, PASSWORDS[OWNER])
        owner_driver.get(hub.url + SHARING + "/")
        wait_for(lambda: owner_driver.find_elements("id", "create-link"), 30, what="the sharing page")
        owner_driver.find_element("id", "create-link").click()
        url = wait_for(lambda: owner_driver.find_elements("id", "share-url"), 30, what="the new link")[0].get_attribute("value")
        page_picture(owner_driver, "share-link-created.png")
    finally:
        owner_driver.quit()

    driver = browser()
    try:
        hub_login(driver, hub, VIEWER, PASSWORDS[VIEWER])
        driver.get(urljoin(hub.url, url))
        button = wait_for(lambda: driver.find_elements("css selector", "form button[type=submit]"), 30,
                          what="the hub's accept page")
        page_picture(driver, "share-accept.png")
        button[0].click()
        wait_for(lambda: driver.find_elements("id", "open-desktop"), 60, what="the viewer's landing page")
        driver.find_element("id", "open-desktop").click()
        # JupyterHub asks a user once before another user's server may identify them.
        consent = wait_for(lambda: driver.find_elements("css selector", "form button[type=submit], #screen"), 60,
                           what="the consent page or the desktop")
        if consent[0].tag_name == "button":
            page_picture(driver, "share-oauth-consent.png")
            consent[0].click()

        def desktop_drawn():
            return driver.execute_script("""
                const c = document.querySelector('#screen canvas');
                if (!c || c.width < 100) return 0;
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let lit = 0;
                for (let i = 0; i < d.length; i += 4 * 97) if (d[i] + d[i+1] + d[i+2] > 60) lit++;
                return lit / (d.length / (4 * 97));
            """) > 0.05

        try:
            wait_for(desktop_drawn, 90, what="the shared desktop in the viewer's browser")
        finally:
            page_picture(driver, "shared-desktop-viewer.png")
        assert "View only" in driver.find_element("id", "view-only").text
    finally:
        driver.quit()


def test_browser_viewer_reads_a_notebook_but_cannot_save_it(shared):
    """The classmate (who accepted a link in the browser test above) opens the
    owner's notebook in JupyterLab: it shows; an edit saved with Ctrl+S is
    refused by the server and the file is unchanged."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.keys import Keys

    hub, owner = shared["hub"], shared["owner_token"]
    before = _sha(hub, owner, "lab.ipynb")
    driver = browser()
    try:
        hub_login(driver, hub, VIEWER, PASSWORDS[VIEWER])
        driver.get(f"{hub.url}/user/{OWNER}/lab/tree/lab.ipynb")
        consent = wait_for(lambda: driver.find_elements("css selector", "form button[type=submit], .jp-LabShell"),
                           90, what="JupyterLab or the consent page")
        if consent[0].tag_name == "button":
            consent[0].click()
        wait_for(lambda: [e for e in driver.find_elements("css selector", ".jp-RenderedMarkdown h1")
                          if "Owner's lab notes" in e.text], 120, what="the owner's notebook in JupyterLab")
        page_picture(driver, "shared-notebook-viewer.png")
        time.sleep(1)  # JupyterLab asks for a kernel (the notebook names none): decline
        for button in driver.find_elements("css selector", ".jp-Dialog button"):
            if button.text.strip() == "No Kernel":
                button.click()
                break
        editor = wait_for(lambda: driver.find_elements("css selector", ".jp-CodeCell .cm-content"), 30,
                          what="the code cell")
        editor[0].click()
        editor[0].send_keys(" + 1000")
        editor[0].send_keys(Keys.CONTROL, "s")
        # JupyterLab reports the server's refusal.
        def save_error():
            try:
                return [d.text for d in driver.find_elements("css selector", ".jp-Dialog")
                        if "save" in d.text.lower() or "forbidden" in d.text.lower()]
            except StaleElementReferenceException:
                return []

        print("save refused:", wait_for(save_error, 30, what="JupyterLab's save error")[0][:200])
        page_picture(driver, "shared-notebook-save-refused.png")
    finally:
        driver.quit()
    assert _sha(hub, owner, "lab.ipynb") == before
