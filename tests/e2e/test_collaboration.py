"""Collaborate links and read-only with real-time collaboration installed
(real hub, slapd, Docker, jupyter-collaboration in the slicer-core image,
two headless Chromium sessions).

student1 owns the session; student2 collaborates through a collaborate link;
mover watches through a read-only link. The guests' API tokens carry only
read scopes, like the OAuth tokens JupyterLab gets: their level comes from
their share, which the server's guard looks up (slicerhub_access).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time

import pytest
import requests

from tests.support.browser import accessibility_problems, browser, hub_login, page_picture, wait_for
from tests.support.kernel import KernelClient
from tests.support.share import SHARING, accept, create_link, guest_token
from tests.support.spawn import container, server_api, spawn_with_form, wait_ready
from tests.support.ydoc import DocClient
from tests.support.websockets import ws_status

OWNER, COLLABORATOR, VIEWER = "student1", "student2", "mover"
PASSWORDS = {"student1": "student1-pw", "student2": "student2-pw", "mover": "mover-pw"}
RECHECK = 5  # ReadOnlyGuard.recheck_seconds


def _session(hub, user):
    s, r = hub.login(user, PASSWORDS[user])
    assert r.status_code == 302, r.text
    return s


def _guest_token(hub, session, note):
    return guest_token(hub, session, OWNER, note)


def _notebook(*sources: str) -> dict:
    cells = [{"cell_type": "markdown", "metadata": {}, "source": "# Lab 3: thresholds"}]
    cells += [{"cell_type": "code", "metadata": {}, "source": src, "outputs": [], "execution_count": None}
              for src in sources]
    return {"cells": cells, "metadata": {"kernelspec": {"name": "slicer", "display_name": "Slicer"}},
            "nbformat": 4, "nbformat_minor": 5}


def _put_notebook(hub, token, path, nb):
    r = server_api(hub, token, OWNER, f"/contents/{path}", "PUT", json={"type": "notebook", "content": nb})
    assert r.status_code in (200, 201), r.text


def _file_text(hub, token, path) -> str:
    r = server_api(hub, token, OWNER, f"/contents/{path}?content=1&type=file&format=text")
    assert r.status_code == 200, r.text
    return r.json()["content"]


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _level(hub, token) -> str | None:
    r = requests.get(f"{hub.url}/user/{OWNER}/slicerhub/access", headers={"Authorization": f"token {token}"},
                     timeout=30)
    return r.json().get("level") if r.status_code == 200 else None




@pytest.fixture(scope="module")
def session(e2e_hub):
    hub = e2e_hub
    owner = _session(hub, OWNER)
    assert spawn_with_form(hub, owner).status_code == 302
    assert wait_ready(hub, owner, OWNER)["ready"]
    owner_token = hub.api_token(owner, "owner")
    _put_notebook(hub, owner_token, "raw.ipynb", _notebook("x = 1"))
    _put_notebook(hub, owner_token, "lab.ipynb", _notebook("threshold = 100", "import os\nos.environ['JUPYTERHUB_USER']"))
    collab_link = create_link(hub, owner_token, access="collaborate")
    read_link = create_link(hub, owner_token)
    collaborator, viewer = _session(hub, COLLABORATOR), _session(hub, VIEWER)
    landing = accept(hub, collaborator, collab_link["url"])
    assert landing.status_code == 200 and "collaborate" in landing.text, landing.text[:500]
    assert accept(hub, viewer, read_link["url"]).status_code == 200
    return {"hub": hub, "owner": owner, "owner_token": owner_token, "collab_link": collab_link,
            "read_link": read_link, "collaborator": collaborator, "viewer": viewer,
            "collab_token": _guest_token(hub, collaborator, "collaborator"),
            "viewer_token": _guest_token(hub, viewer, "viewer")}


def test_each_guest_gets_the_level_of_their_share(session, docker_client):
    hub = session["hub"]
    assert _level(hub, session["owner_token"]) == "execute"
    level = _level(hub, session["collab_token"])
    logs = container(docker_client, hub, OWNER).logs(tail=400).decode(errors="replace")
    shares = requests.get(f"{hub.url}/hub/api/shares/{OWNER}/", timeout=30,
                          headers={"Authorization": f"token {session['owner_token']}"}).text
    assert level == "collaborate", "\n".join([l for l in logs.splitlines() if "access" in l or "share" in l][-20:] + [shares])
    assert _level(hub, session["viewer_token"]) == "read"
    r = requests.get(hub.url + SHARING + "/api/links", timeout=30,
                     headers={"Authorization": f"token {session['owner_token']}"})
    access = {link["id"]: link["access"] for link in r.json()["links"]}
    assert access == {session["collab_link"]["id"]: "collaborate", session["read_link"]["id"]: "read"}


def test_a_collaborator_edits_and_runs_code_in_the_owners_kernel(session):
    hub, token = session["hub"], session["collab_token"]
    r = server_api(hub, token, OWNER, "/contents/from-guest.md", "PUT",
                   json={"type": "file", "format": "text", "content": "written by the collaborator\n"})
    assert r.status_code in (200, 201), r.text
    assert _file_text(hub, session["owner_token"], "from-guest.md") == "written by the collaborator\n"

    async def run():
        kc = await KernelClient(f"{hub.url}/user/{OWNER}", token, "slicer").start()
        try:
            return await kc.execute("import os; print(os.environ['JUPYTERHUB_USER'])")
        finally:
            await kc.shutdown()

    outputs = asyncio.run(run())
    assert "student1" in "".join(o.get("text", "") for o in outputs)  # the owner's kernel, the owner's account


def test_a_collaborator_gets_no_terminal_shutdown_settings_or_desktop_control(session):
    hub, token = session["hub"], session["collab_token"]
    assert server_api(hub, token, OWNER, "/terminals", "POST").status_code == 403
    assert server_api(hub, token, OWNER, "/shutdown", "POST").status_code == 403
    settings = requests.put(f"{hub.url}/user/{OWNER}/lab/api/settings/@jupyterlab/apputils-extension:themes",
                            json={"raw": "{}"}, headers={"Authorization": f"token {token}"}, timeout=30)
    assert settings.status_code == 403
    ws = hub.url.replace("http", "ws", 1) + f"/user/{OWNER}"

    async def run():
        return [await ws_status(f"{ws}/terminals/websocket/1", token),
                await ws_status(f"{ws}/desktop-websockify/", token)]

    assert asyncio.run(run()) == [403, 403]
    # The owner's server still runs (no shutdown went through).
    assert server_api(hub, session["owner_token"], OWNER, "/status").status_code == 200


def test_a_readers_edits_and_saves_over_the_document_websocket_change_nothing(session):
    """The raw attack: a viewer sends a real Y update (and a save) on the
    shared document's websocket. The file and the shared document stay as
    they were; the same update from the collaborator does change them (so
    the check can fail)."""
    hub, owner_token = session["hub"], session["owner_token"]
    before = _file_text(hub, owner_token, "raw.ipynb")

    async def run():
        viewer = await DocClient(hub, session["viewer_token"], OWNER, "raw.ipynb").open()
        assert viewer.source(1) == "x = 1"  # a reader gets the document
        await viewer.append_to_cell(1, "  # vandalised")
        reply = await viewer.save()
        watcher = await DocClient(hub, owner_token, OWNER, "raw.ipynb").open()
        await watcher.pump(timeout=3)  # anything in flight arrives
        shared_after_viewer = watcher.source(1)
        collaborator = await DocClient(hub, session["collab_token"], OWNER, "raw.ipynb").open()
        await collaborator.append_to_cell(1, "  # reviewed")
        await watcher.pump(until=lambda: watcher.source(1).endswith("# reviewed"), timeout=30)
        saved = await collaborator.save()
        for client in (viewer, watcher, collaborator):
            client.close()
        return reply, shared_after_viewer, saved

    refused, shared_after_viewer, saved = asyncio.run(run())
    assert refused == {"type": "save", "responseTo": 1, "status": "failed"}
    assert shared_after_viewer == "x = 1"
    assert saved and saved["status"] == "success", saved
    on_disk = json.loads(_file_text(hub, owner_token, "raw.ipynb"))
    assert "".join(on_disk["cells"][1]["source"]) == "x = 1  # reviewed"
    assert "vandalised" not in _file_text(hub, owner_token, "raw.ipynb") and before != on_disk
    assert not server_api(hub, session["viewer_token"], OWNER, "/contents/raw.ipynb", "PUT",
                          json={"type": "notebook", "content": _notebook("x = 2")}).ok


def test_guests_see_their_directory_names(session):
    hub = session["hub"]
    me = requests.get(f"{hub.url}/user/{OWNER}/api/me", timeout=30,
                      headers={"Authorization": f"token {session['collab_token']}"}).json()["identity"]
    assert me["username"] == COLLABORATOR and me["display_name"] == "Kim Student"
    assert me["initials"] == "KS" and me["color"].startswith("#")


def test_browsers_co_edit_one_notebook_and_the_guest_runs_a_cell(session):
    """The owner and the collaborator in two Chromium sessions, in one notebook:
    what the guest types shows in the owner's editor, the guest's run executes
    in the owner's kernel, and the file saved has both edits."""
    from selenium.webdriver.common.keys import Keys

    hub = session["hub"]
    owner, guest = browser(), browser()
    try:
        hub_login(owner, hub, OWNER, PASSWORDS[OWNER])
        hub_login(guest, hub, COLLABORATOR, PASSWORDS[COLLABORATOR])
        # The collaborator's way in, in the hub's frame, readable by everyone.
        guest.get(f"{hub.url}{SHARING}/view/{session['collab_link']['id']}")
        way_in = wait_for(lambda: guest.find_elements("id", "open-files"), 60, what="the collaborate view page")
        assert f"Open {OWNER}'s JupyterLab" in way_in[0].text
        assert accessibility_problems(guest, dark=True) == []
        page_picture(guest, "collaborate-view.png")
        for driver in (owner, guest):
            driver.get(f"{hub.url}/user/{OWNER}/lab/tree/lab.ipynb")
        consent = wait_for(lambda: guest.find_elements("css selector", "form button[type=submit], .jp-LabShell"),
                           90, what="JupyterLab or the consent page")
        if consent[0].tag_name == "button":
            consent[0].click()

        def editors(driver):
            return [e for e in driver.find_elements("css selector", ".jp-CodeCell .cm-content")]

        for driver, who in ((owner, "owner"), (guest, "guest")):
            wait_for(lambda d=driver: len(editors(d)) == 2, 120, what=f"the notebook in the {who}'s JupyterLab")
        # The guest types in the first code cell; the owner sees it.
        editors(guest)[0].click()
        editors(guest)[0].send_keys(Keys.END, "  # guest")
        wait_for(lambda: "# guest" in editors(owner)[0].text, 30, what="the guest's edit in the owner's editor")
        # The owner types in the same cell; the guest sees it.
        editors(owner)[0].click()
        editors(owner)[0].send_keys(Keys.HOME, "# owner\n")
        wait_for(lambda: "# owner" in editors(guest)[0].text, 30, what="the owner's edit in the guest's editor")
        page_picture(owner, "collaborate-owner.png")
        # The guest runs the second cell: it runs in the owner's kernel, as the owner.
        editors(guest)[1].click()
        editors(guest)[1].send_keys(Keys.SHIFT, Keys.ENTER)

        def output(driver):
            return [o.text for o in driver.find_elements("css selector", ".jp-OutputArea-output") if o.text]

        wait_for(lambda: any("student1" in t for t in output(owner)), 180,
                 what="the guest's run, shown in the owner's notebook")
        page_picture(guest, "collaborate-guest.png")
        # The owner saves; the file has both edits.
        editors(owner)[0].click()
        editors(owner)[0].send_keys(Keys.CONTROL, "s")

        def saved():
            cells = json.loads(_file_text(hub, session["owner_token"], "lab.ipynb"))["cells"]
            return "".join(cells[1]["source"])

        text = wait_for(lambda: (lambda t: t if "# owner" in t and "# guest" in t else None)(saved()), 60,
                        what="both edits in the saved file")
        assert text.startswith("# owner\n") and text.endswith("# guest")
    finally:
        owner.quit()
        guest.quit()


def test_revoking_a_collaborate_link_closes_the_guests_sockets_at_once(session):
    hub, token = session["hub"], session["collab_token"]

    async def run():
        doc = await DocClient(hub, token, OWNER, "raw.ipynb").open()
        kc = await KernelClient(f"{hub.url}/user/{OWNER}", token, "slicer").start()
        r = await asyncio.to_thread(requests.delete, f"{hub.url}{SHARING}/api/links/{session['collab_link']['id']}",
                                    headers={"Authorization": f"token {session['owner_token']}"}, timeout=30)
        assert r.status_code == 204, r.text
        started = time.monotonic()
        await doc.pump(timeout=4 * RECHECK)  # returns when the server closes it
        doc_closed = time.monotonic() - started if doc.closed_code is not None else None
        kernel_closed = None
        try:
            while time.monotonic() - started < 4 * RECHECK:
                if await asyncio.wait_for(kc._ws.read_message(), 4 * RECHECK) is None:
                    kernel_closed = time.monotonic() - started
                    break
        except asyncio.TimeoutError:
            pass
        return doc.closed_code, doc_closed, kernel_closed

    code, doc_closed, kernel_closed = asyncio.run(run())
    assert code == 4403 and doc_closed is not None, (code, doc_closed)
    assert kernel_closed is not None
    # Bounded by the re-check period (plus one round), not by the link's expiry.
    assert max(doc_closed, kernel_closed) <= 3 * RECHECK
    deadline = time.monotonic() + 3 * RECHECK
    while server_api(hub, token, OWNER, "/contents/raw.ipynb").status_code != 403:
        assert time.monotonic() < deadline, "the collaborator could still read after revocation"
        time.sleep(1)
    # The reader's own link is untouched.
    assert _level(hub, session["viewer_token"]) == "read"


def test_jupyterlab_keeps_rtc_but_not_its_own_share_dialog(session):
    """jupyter-collaboration's share dialog would make hub shares from the
    browser, outside the sharing service (no expiry, audit or withdrawal)."""
    hub = session["hub"]
    page = requests.get(f"{hub.url}/user/{OWNER}/lab", timeout=60,
                        headers={"Authorization": f"token {session['owner_token']}"})
    assert page.status_code == 200
    found = re.search(r'<script id="jupyter-config-data"[^>]*>(.*?)</script>', page.text, re.S)
    assert found, page.text[:500]
    config = json.loads(found.group(1))
    assert "@jupyter/collaboration-extension:shared-link" in config["disabledExtensions"]
    assert not any(x.startswith("@jupyter/collaboration-extension:rtc") or x.startswith("@jupyter/docprovider")
                   for x in config["disabledExtensions"])
