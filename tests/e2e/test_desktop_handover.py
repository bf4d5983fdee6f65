"""Desktop hand-over, end to end (real hub, slapd, Docker, the slicer-core
image's desktop with Slicer, two headless Chromium sessions).

student1 owns the session; student2 collaborates through a collaborate link
and watches the desktop through the hand-over relay; mover watches through a
read-only link (the view-only listener). Raw RFB input from the collaborator
changes the owner's screen and clipboard only while student1 has handed
control over; taking it back applies to the very next message; nobody but
the owner resizes the screen.
"""

from __future__ import annotations

import asyncio
import json
import struct
import time

import pytest
import requests

from slicerhub.devenv.rfb import RFBClient
from tests.support.browser import accessibility_problems, browser, hub_login, page_picture, wait_for
from tests.support.share import SHARING, accept, create_link, guest_token
from tests.support.spawn import container, in_desktop, spawn_with_form, wait_ready
from tests.support.websockets import seconds_until_closed, settle, ws_status

pytestmark = pytest.mark.e2e

OWNER, COLLABORATOR, VIEWER = "student1", "student2", "mover"
PASSWORDS = {"student1": "student1-pw", "student2": "student2-pw", "mover": "mover-pw"}
RECHECK = 5  # ReadOnlyGuard.recheck_seconds
WHEEL_DOWN = 1 << 4  # RFB button 5: scroll down (Slicer: next slice)
CONTROL = f"/user/{OWNER}/slicerhub/desktop/control"


def _session(hub, user):
    s, r = hub.login(user, PASSWORDS[user])
    assert r.status_code == 302, r.text
    return s


def _guest_token(hub, session, note):
    return guest_token(hub, session, OWNER, note)


def _ws(hub, path):
    return hub.url.replace("http", "ws", 1) + path


def _control(hub, token, holder=..., raw: bytes | None = None) -> requests.Response:
    headers = {"Authorization": f"token {token}"}
    if holder is ... and raw is None:
        return requests.get(hub.url + CONTROL, headers=headers, timeout=30)
    body = raw if raw is not None else json.dumps({"holder": holder}).encode()
    return requests.put(hub.url + CONTROL, data=body, timeout=30,
                        headers={**headers, "Content-Type": "application/json"})


@pytest.fixture(scope="module")
def handover(e2e_hub, docker_client):
    hub = e2e_hub
    owner = _session(hub, OWNER)
    assert spawn_with_form(hub, owner).status_code == 302
    assert wait_ready(hub, owner, OWNER)["ready"]
    owner_token = hub.api_token(owner, "owner")
    collab_link = create_link(hub, owner_token, access="collaborate")
    read_link = create_link(hub, owner_token)
    collaborator, viewer = _session(hub, COLLABORATOR), _session(hub, VIEWER)
    assert accept(hub, collaborator, collab_link["url"]).status_code == 200
    assert accept(hub, viewer, read_link["url"]).status_code == 200
    assert _control(hub, owner_token, None).status_code == 200  # nobody has control to begin with
    return {"hub": hub, "owner_token": owner_token, "collab_link": collab_link,
            "collab_token": _guest_token(hub, collaborator, "collaborator"),
            "viewer_token": _guest_token(hub, viewer, "viewer"),
            "container": container(docker_client, hub, OWNER)}


async def _connect(hub, token, path) -> RFBClient:
    return await RFBClient.websocket(_ws(hub, f"/user/{OWNER}/{path}"), {"Authorization": f"token {token}"})


async def _scroll(client, times=6):
    # Over the Red slice view (top left of Slicer's four-up layout).
    x, y = client.fb.width // 4, client.fb.height // 4
    await client.pointer(x, y, 0)
    for _ in range(times):
        await client.pointer(x, y, WHEEL_DOWN)
        await client.pointer(x, y, 0)


async def _keys(client):
    for keysym in (0xFF56, 0xFF52, ord("r")):  # Page Down, Page Up, r
        await client.key(keysym, True)
        await client.key(keysym, False)


def _resize_request(width, height) -> bytes:
    # SetDesktopSize with one screen (RFB ExtendedDesktopSize).
    return (bytes([251, 0]) + width.to_bytes(2, "big") + height.to_bytes(2, "big") + bytes([1, 0])
            + bytes(4) + bytes(4) + width.to_bytes(2, "big") + height.to_bytes(2, "big") + bytes(4))


def test_a_collaborator_types_and_clicks_only_while_handed_control(handover):
    """Without control the guest's wheel, keys and clipboard change nothing;
    with it they change the owner's screen and X clipboard; a resize never
    passes; taken back, the very next input is dropped again."""
    hub, owner, guest_token, c = (handover[k] for k in ("hub", "owner_token", "collab_token", "container"))
    in_desktop(c, "sh", "-c", "printf %s owner-clip | xclip -selection clipboard -i", detach=True)

    def clipboard() -> str:
        return in_desktop(c, "xclip", "-o", "-selection", "clipboard").output.decode()

    async def run():
        owner_view = await _connect(hub, owner, "desktop-websockify/")
        guest = await _connect(hub, guest_token, "desktop-shared/desktop-websockify/")
        try:
            deadline = time.monotonic() + 90
            while (await owner_view.snapshot(30)).non_background_fraction() < 0.05:
                assert time.monotonic() < deadline, "the desktop shows nothing"
                await asyncio.sleep(1)
            await guest.snapshot(30)
            seen = {"guest_sees": guest.fb.non_background_fraction(),
                    "guest_size": (guest.fb.width, guest.fb.height),
                    "owner_size": (owner_view.fb.width, owner_view.fb.height)}
            watching = (await asyncio.to_thread(_control, hub, owner)).json()["watching"]
            before = await settle(owner_view)

            # Watching: the relay drops every input message.
            await _scroll(guest)
            await _keys(guest)
            await guest.cut_text_to_server(b"guest-watching")
            seen["unchanged_watching"] = await settle(owner_view) == before
            seen["clip_watching"] = await asyncio.to_thread(clipboard)

            # Handed control: the same input acts.
            given = await asyncio.to_thread(_control, hub, owner, COLLABORATOR)
            seen["given"] = (given.status_code, given.json().get("holder"))
            seen["guest_state"] = (await asyncio.to_thread(_control, hub, guest_token)).json()
            await _scroll(guest)
            await guest.cut_text_to_server(b"guest-in-control")
            with_control = await settle(owner_view)
            seen["changed_in_control"] = with_control != before
            seen["clip_in_control"] = await asyncio.to_thread(clipboard)
            await guest._t.send(_resize_request(640, 480))
            await settle(owner_view, 2)
            seen["size_after_resize"] = (owner_view.fb.width, owner_view.fb.height)

            # Taken back: the next message after the reply is dropped.
            back = await asyncio.to_thread(_control, hub, owner, None)
            seen["back"] = (back.status_code, back.json().get("holder"))
            taken_back = await settle(owner_view)
            await _scroll(guest)
            await guest.cut_text_to_server(b"guest-after")
            seen["unchanged_after"] = await settle(owner_view) == taken_back
            seen["clip_after"] = await asyncio.to_thread(clipboard)
            return seen, watching
        finally:
            await owner_view.close()
            await guest.close()

    seen, watching = asyncio.run(run())
    assert seen["guest_sees"] > 0.05, "the collaborator sees nothing"
    assert seen["guest_size"] == seen["owner_size"], "the relay shows the owner's own screen"
    assert watching == [{"name": COLLABORATOR, "connections": 1}]
    assert seen["unchanged_watching"], "input from a guest without control changed the owner's screen"
    assert seen["clip_watching"] == "owner-clip", "a guest without control set the clipboard"
    assert seen["given"] == (200, COLLABORATOR)
    assert seen["guest_state"]["control"] is True and "watching" not in seen["guest_state"]
    assert seen["changed_in_control"], "the guest's wheel did nothing with control (the check could not fail)"
    assert seen["clip_in_control"] == "guest-in-control"
    assert seen["size_after_resize"] == seen["owner_size"], "a guest resized the owner's screen"
    assert seen["back"] == (200, None)
    assert seen["unchanged_after"], "input passed after control was taken back"
    assert seen["clip_after"] == "guest-in-control"


def test_control_goes_only_to_a_watching_collaborator_and_only_the_owner_gives_it(handover):
    hub, owner, guest, viewer = (handover[k] for k in ("hub", "owner_token", "collab_token", "viewer_token"))
    # Nobody is connected to the relay now: nobody to give control to.
    assert _control(hub, owner, COLLABORATOR).status_code == 409
    assert _control(hub, owner, VIEWER).status_code == 409
    for raw in (b"not json", b"[]", b'{"holder": 3}', b'{"holder": null, "more": 1}', b"{}"):
        r = _control(hub, owner, raw=raw)
        assert r.status_code == 400 and r.json()["message"], raw
    # A guest may hand back only what they hold; they never give it.
    assert _control(hub, guest, COLLABORATOR).status_code == 403
    assert _control(hub, guest, None).status_code == 403
    assert _control(hub, guest).json() == {"owner": OWNER, "you": COLLABORATOR, "holder": None, "control": False}
    # A read-only guest has neither the relay nor its control.
    assert _control(hub, viewer).status_code == 403
    assert _control(hub, viewer, None).status_code == 403

    async def sockets():
        return [await ws_status(_ws(hub, f"/user/{OWNER}/desktop-shared/desktop-websockify/"), viewer),
                await ws_status(_ws(hub, f"/user/{OWNER}/desktop-websockify/"), guest)]

    assert asyncio.run(sockets()) == [403, 403]
    assert _control(hub, owner).json()["holder"] is None


def test_control_returns_to_the_owner_when_the_guest_leaves_or_hands_it_back(handover):
    hub, owner, guest_token = handover["hub"], handover["owner_token"], handover["collab_token"]

    async def run():
        guest = await _connect(hub, guest_token, "desktop-shared/desktop-websockify/")
        await guest.snapshot(30)
        assert (await asyncio.to_thread(_control, hub, owner, COLLABORATOR)).status_code == 200
        handed_back = await asyncio.to_thread(_control, hub, guest_token, None)
        assert (await asyncio.to_thread(_control, hub, owner, COLLABORATOR)).status_code == 200
        await guest.close()
        deadline = time.monotonic() + 30
        while (await asyncio.to_thread(_control, hub, owner)).json()["watching"]:
            assert time.monotonic() < deadline, "the closed connection is still listed"
            await asyncio.sleep(0.2)
        return handed_back, (await asyncio.to_thread(_control, hub, owner)).json()

    handed_back, after = asyncio.run(run())
    assert handed_back.status_code == 200 and handed_back.json()["holder"] is None
    assert after["holder"] is None and after["watching"] == []


def test_browsers_owner_hands_control_to_a_collaborator(handover):
    """Chromium: the owner's Desktop guests page lists the collaborator whose
    browser shows the desktop, gives them control, and both pages say so."""
    hub = handover["hub"]
    guest = browser()
    owner = browser()
    try:
        hub_login(guest, hub, COLLABORATOR, PASSWORDS[COLLABORATOR])
        guest.get(f"{hub.url}/user/{OWNER}/desktop-view/")
        consent = wait_for(lambda: guest.find_elements("css selector", "form button[type=submit], #screen"), 90,
                           what="the consent page or the shared desktop")
        if consent[0].tag_name == "button":
            consent[0].click()
        wait_for(lambda: "desktop-shared/screen" in guest.current_url and guest.find_elements(
            "css selector", "#screen canvas"), 90, what="the collaborator's desktop page")
        wait_for(lambda: guest.find_element("id", "control-state").text == "Watching", 30,
                 what="the watching badge")

        hub_login(owner, hub, OWNER, PASSWORDS[OWNER])
        owner.get(hub.url + SHARING + "/")
        wait_for(lambda: owner.find_elements("id", "desktop-guests"), 30, what="the sharing page")
        owner.find_element("id", "desktop-guests").click()
        give = wait_for(lambda: owner.find_elements("css selector", f"button[data-guest='{COLLABORATOR}']"), 30,
                        what="the collaborator on the Desktop guests page")
        assert accessibility_problems(owner) == []
        page_picture(owner, "desktop-guests.png")
        give[0].click()
        wait_for(lambda: owner.find_element("id", "holder").text == f"{COLLABORATOR} has control.", 15,
                 what="the owner's page to show the hand-over")
        wait_for(lambda: guest.find_element("id", "control-state").text == "You have control", 15,
                 what="the guest's page to show control")
        page_picture(guest, "desktop-guest-in-control.png")
        owner.find_element("id", "take-back").click()
        wait_for(lambda: guest.find_element("id", "control-state").text == "Watching", 15,
                 what="the guest's page to show control taken back")
    finally:
        guest.quit()
        owner.quit()


SERVER_RSS = ("python3", "-c", "import pathlib\n"
              "for p in pathlib.Path('/proc').glob('[0-9]*'):\n"
              "    try:\n"
              "        if b'jupyterhub-singleuser' in (p / 'cmdline').read_bytes():\n"
              "            print(next(l.split()[1] for l in (p / 'status').read_text().splitlines()"
              " if l.startswith('VmRSS')))\n"
              "    except OSError:\n"
              "        pass\n")


def _server_rss_mib(c) -> float:
    """The owner's Jupyter server's resident memory (the process that relays)."""
    out = c.exec_run(list(SERVER_RSS), user="root").output.decode().split()
    assert out, "no jupyterhub-singleuser process in the container"
    return max(int(kib) for kib in out) / 1024


async def _rfb_open_raw(url, token):
    """An RFB client of our own, handshake only: it then reads nothing more."""
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    ws = await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {token}"}))
    buf = b""

    async def take(n):
        nonlocal buf
        while len(buf) < n:
            message = await ws.read_message()
            assert message is not None, "the desktop socket closed during the handshake"
            buf += message
        out, buf = buf[:n], buf[n:]
        return out

    assert (await take(12)).startswith(b"RFB 003.")
    await ws.write_message(b"RFB 003.008\n", binary=True)
    assert 1 in await take((await take(1))[0])
    await ws.write_message(b"\x01", binary=True)
    assert await take(4) == b"\0\0\0\0"
    await ws.write_message(b"\x01", binary=True)
    init = await take(24)
    await take(struct.unpack("!I", init[20:24])[0])
    width, height = struct.unpack("!HH", init[:4])
    await ws.write_message(struct.pack("!BxHi", 2, 1, 0), binary=True)  # Raw only: the biggest frames
    return ws, width, height


@pytest.mark.parametrize("who, path", [("collab_token", "desktop-shared/desktop-websockify/"),
                                       ("viewer_token", "desktop-view/desktop-websockify/")])
def test_a_guest_who_never_reads_cannot_pile_frames_up_in_the_owners_server(handover, who, path):
    """A client asking for full raw frames and reading none: the proxy stops
    reading the VNC server once 8 MiB wait for the browser, so the owner's
    server keeps a bounded backlog instead of every frame (about 7 MiB each
    at the desktop's size). Sampled until its memory stops growing."""
    hub, c = handover["hub"], handover["container"]
    before = _server_rss_mib(c)

    async def run():
        ws, width, height = await _rfb_open_raw(_ws(hub, f"/user/{OWNER}/{path}"), handover[who])
        frame_mib = width * height * 4 / 2**20
        full = struct.pack("!BBHHHH", 3, 0, 0, 0, width, height)
        samples, asked = [before], 0
        try:
            # Ask for a frame at a time, as long as memory still grows (or far past any bound).
            while asked < 400:
                for _ in range(20):
                    await ws.write_message(full, binary=True)
                    asked += 1
                    await asyncio.sleep(0.02)
                samples.append(await asyncio.to_thread(_server_rss_mib, c))
                if len(samples) > 5 and max(samples[-4:]) - min(samples[-4:]) < 2:
                    break  # flat for the last rounds: the backlog is bounded
        finally:
            ws.close()
        return frame_mib, asked, samples

    frame_mib, asked, samples = asyncio.run(run())
    grown = max(samples) - before
    print(f"{path}: asked {asked} frames of {frame_mib:.1f} MiB; server RSS +{grown:.0f} MiB ({samples})")
    assert grown < 10 * frame_mib + 64, f"the server grew {grown:.0f} MiB for {asked} unread frames"


def test_revoking_the_link_closes_the_collaborators_desktop(handover):
    """Last in the module: the collaborate link ends, the relay socket closes
    within the guard's re-check and control cannot be given to them."""
    hub, owner, guest_token = handover["hub"], handover["owner_token"], handover["collab_token"]

    async def run():
        guest = await _connect(hub, guest_token, "desktop-shared/desktop-websockify/")
        await guest.snapshot(30)
        r = await asyncio.to_thread(requests.delete, f"{hub.url}{SHARING}/api/links/{handover['collab_link']['id']}",
                                    headers={"Authorization": f"token {owner}"}, timeout=30)
        assert r.status_code == 204, r.text
        try:
            return await seconds_until_closed(guest, 30)
        finally:
            await guest.close()

    closed_after = asyncio.run(run())
    assert closed_after < 3 * RECHECK, f"closed after {closed_after:.1f} s"
    assert _control(hub, owner, COLLABORATOR).status_code == 409
