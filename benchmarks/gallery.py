"""Course app gallery: click → first rendered widget, in headless Chromium.

A teacher publishes ``notebooks/02-segmentation-lab-voila.ipynb``; a student
opens it from the gallery (Voilà in the student's own server, the Slicer
kernel running the notebook) with the server already running and with it
stopped (the hub starts it on the way). Baseline, same run, same browser:
opening the same notebook in JupyterLab (the notebook's cells drawn, nothing
run) with the server running. Medians of ``repeats`` after one warm-up each.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import requests

from tests.support.browser import browser, hub_login, wait_for

from .harness import docker_deployment

STUDENT, STUDENT_PW = "student1", "student1-pw"
TEACHER, TEACHER_PW = "teacher1", "teacher-pw"
NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "02-segmentation-lab-voila.ipynb"
APP = "seg-lab"


def _timed(driver, go, done, timeout: float) -> float:
    t0 = time.monotonic()
    go()
    wait_for(done, timeout, interval=0.05, what="the page")
    return time.monotonic() - t0


def run(workdir: Path, repeats: int = 3) -> dict:
    with docker_deployment(workdir, "gal", courses={"groups": ["anat101"], "root": str(workdir / "courses")}) as (
            hub, _client, _prefix):
        ts, _ = hub.login(TEACHER, TEACHER_PW)
        token = hub.api_token(ts, scopes=["access:services!service=courses"])
        r = requests.post(f"{hub.url}/services/courses/api/courses/anat101/apps/{APP}", timeout=60,
                          headers={"Authorization": f"token {token}"},
                          json={"notebook": json.loads(NOTEBOOK.read_text()), "title": "Segmentation lab"})
        r.raise_for_status()
        s, _ = hub.login(STUDENT, STUDENT_PW)
        auth = {"Authorization": f"token {hub.api_token(s)}"}
        lab_url = f"{hub.url}/user/{STUDENT}/lab/tree/courses/anat101/apps/{APP}/v1/{APP}.ipynb"
        gallery = f"{hub.url}/services/courses/"

        def server(running: bool) -> None:
            method = "POST" if running else "DELETE"
            requests.request(method, f"{hub.url}/hub/api/users/{STUDENT}/server", headers=auth, timeout=120)
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                servers = requests.get(f"{hub.url}/hub/api/users/{STUDENT}", headers=auth, timeout=30).json()["servers"]
                if (servers.get("", {}).get("ready") if running else not servers):
                    return
                time.sleep(0.3)
            raise TimeoutError(f"server did not {'start' if running else 'stop'}")

        driver = browser()
        try:
            hub_login(driver, hub, STUDENT, STUDENT_PW)

            def lab_open() -> float:
                driver.get("about:blank")
                return _timed(driver, lambda: driver.get(lab_url),
                              lambda: driver.find_elements("css selector", ".jp-Notebook .jp-Cell .jp-InputArea"), 120)

            def from_gallery(running: bool) -> float:
                server(running)
                driver.get(gallery)
                link = wait_for(lambda: driver.find_elements("css selector", f'[data-app="{APP}"] a.open'), 60,
                                what="the gallery")
                return _timed(driver, link[0].click,
                              lambda: driver.find_elements("css selector", ".widget-slider, .jupyter-widgets"), 240)

            server(True)
            samples: dict[str, list[float]] = {"lab": [], "warm": [], "cold": []}
            for _ in range(repeats + 1):  # the first of each is a warm-up (browser cache, first kernel)
                samples["lab"].append(lab_open())
                samples["warm"].append(from_gallery(True))
                samples["cold"].append(from_gallery(False))
        finally:
            driver.quit()
    med = {k: round(statistics.median(v[1:]), 2) for k, v in samples.items()}
    return {
        "repeats": repeats, "samples_s": {k: [round(x, 2) for x in v] for k, v in samples.items()},
        "jupyterlab_open_s": med["lab"], "gallery_running_s": med["warm"], "gallery_stopped_s": med["cold"],
        "running_ratio": round(med["warm"] / med["lab"], 2), "stopped_ratio": round(med["cold"] / med["lab"], 2),
    }


def print_gallery(res: dict) -> None:
    print()
    print("Course app gallery (Chromium; notebook 02 as a Voilà app in the student's own server)")
    print(f"  open the notebook in JupyterLab (baseline): {res['jupyterlab_open_s']} s")
    print(f"  gallery click -> first widget, server running: {res['gallery_running_s']} s "
          f"({res['running_ratio']}x baseline)")
    print(f"  gallery click -> first widget, server stopped: {res['gallery_stopped_s']} s "
          f"({res['stopped_ratio']}x baseline)")
