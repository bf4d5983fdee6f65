"""Edit propagation between two browsers in one notebook, through the hub.

The owner and a collaborator (a collaborate link) have the same notebook
open in two headless Chromium sessions. The owner types one character at a
time into a cell; for each keystroke the benchmark takes, on this machine's
one clock (``performance.timeOrigin + performance.now()`` in both pages):

* the keydown in the owner's page;
* when the character is in the owner's own editor (the baseline: one
  browser's own echo, no network);
* when it is in the collaborator's editor: Y update → the proxy → the owner's
  server (jupyter-collaboration) → the proxy → the other browser.

"In the editor" is a MutationObserver on the cell's CodeMirror content: the
DOM has it, before the next paint. Reported: p50/p99 of each and the ratios
remote/local, from the same run.
"""

from __future__ import annotations

import time
from pathlib import Path

import requests

from tests.support.browser import browser, hub_login, wait_for
from tests.support.share import accept, create_link
from tests.support.spawn import server_api, spawn_with_form, wait_ready

from .harness import docker_deployment, percentile

OWNER, GUEST = ("student1", "student1-pw"), ("student2", "student2-pw")
KEYSTROKES = 60
PAUSE_S = 0.25  # between keystrokes: propagation, not a backlog, is measured
MARK = "z"

_OBSERVE = """
const cell = document.querySelectorAll('.jp-CodeCell .cm-content')[0];
window.__seen = [];
window.__keys = [];
const count = () => (cell.textContent.match(/%s/g) || []).length;
const base = count();
new MutationObserver(() => {
  const n = count() - base;
  while (window.__seen.length < n) window.__seen.push(performance.timeOrigin + performance.now());
}).observe(cell, {subtree: true, childList: true, characterData: true});
document.addEventListener('keydown', e => {
  if (e.key === '%s') window.__keys.push(performance.timeOrigin + performance.now());
}, true);
""" % (MARK, MARK)


def _notebook() -> dict:
    return {"cells": [{"cell_type": "code", "metadata": {}, "source": "threshold = 1", "outputs": [],
                       "execution_count": None}],
            "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def _open(driver, hub, user, password, path):
    hub_login(driver, hub, user, password)
    driver.get(f"{hub.url}/user/{OWNER[0]}/lab/tree/{path}")
    first = wait_for(lambda: driver.find_elements("css selector", "form button[type=submit], .jp-LabShell"), 120,
                     what="JupyterLab or the consent page")
    if first[0].tag_name == "button":
        first[0].click()
    wait_for(lambda: driver.find_elements("css selector", ".jp-CodeCell .cm-content"), 120,
             what=f"the notebook in {user}'s JupyterLab")
    time.sleep(2)  # the document's websocket synced; JupyterLab's kernel prompt settled
    for button in driver.find_elements("css selector", ".jp-Dialog button"):
        if button.text.strip() in ("No Kernel", "Select"):
            button.click()
            break


def _stats(ms: list[float]) -> dict:
    return {"p50_ms": round(percentile(ms, 50), 1), "p99_ms": round(percentile(ms, 99), 1), "count": len(ms)}


def run(workdir: Path, keystrokes: int = KEYSTROKES) -> dict:
    with docker_deployment(workdir, "bench-collab") as (hub, _client, _prefix):
        owner_s, r = hub.login(*OWNER)
        assert r.status_code == 302, r.text
        assert spawn_with_form(hub, owner_s).status_code == 302
        assert wait_ready(hub, owner_s, OWNER[0])["ready"]
        token = hub.api_token(owner_s, "bench")
        r = server_api(hub, token, OWNER[0], "/contents/bench.ipynb", "PUT",
                       json={"type": "notebook", "content": _notebook()})
        assert r.status_code in (200, 201), r.text
        link = create_link(hub, token, access="collaborate")
        guest_s, r = hub.login(*GUEST)
        assert accept(hub, guest_s, link["url"]).status_code == 200
        typist, watcher = browser(), browser()
        try:
            _open(typist, hub, *OWNER, "bench.ipynb")
            _open(watcher, hub, *GUEST, "bench.ipynb")
            for driver in (typist, watcher):
                driver.execute_script(_OBSERVE)
            editor = typist.find_elements("css selector", ".jp-CodeCell .cm-content")[0]
            editor.click()
            from selenium.webdriver.common.keys import Keys

            editor.send_keys(Keys.END)
            for _ in range(keystrokes):
                editor.send_keys(MARK)
                time.sleep(PAUSE_S)
            wait_for(lambda: watcher.execute_script("return window.__seen.length") >= keystrokes, 120,
                     what="every keystroke in the collaborator's editor")
            keys = typist.execute_script("return window.__keys")
            local = typist.execute_script("return window.__seen")
            remote = watcher.execute_script("return window.__seen")
        finally:
            typist.quit()
            watcher.quit()
        requests.delete(f"{hub.url}/services/sharing/api/links/{link['id']}",
                        headers={"Authorization": f"token {token}"}, timeout=30)
    n = min(len(keys), len(local), len(remote))
    local_ms = [local[i] - keys[i] for i in range(n)]
    remote_ms = [remote[i] - keys[i] for i in range(n)]
    loc, rem = _stats(local_ms), _stats(remote_ms)
    return {"keystrokes": n, "pause_s": PAUSE_S, "local_echo": loc, "remote": rem,
            "p50_ratio": round(rem["p50_ms"] / max(loc["p50_ms"], 0.1), 1),
            "p99_ratio": round(rem["p99_ms"] / max(loc["p99_ms"], 0.1), 1)}


def print_collaboration(res: dict) -> None:
    loc, rem = res["local_echo"], res["remote"]
    print()
    print(f"Edit propagation, two Chromium sessions in one notebook ({res['keystrokes']} keystrokes, "
          f"{res['pause_s']:g} s apart)")
    print(f"  keystroke -> own editor (baseline):        p50 {loc['p50_ms']} ms, p99 {loc['p99_ms']} ms")
    print(f"  keystroke -> the other browser (via hub):  p50 {rem['p50_ms']} ms, p99 {rem['p99_ms']} ms "
          f"({res['p50_ratio']}x / {res['p99_ratio']}x the baseline)")
