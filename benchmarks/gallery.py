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

            samples: dict[str, list[float | None]] = {"lab": [], "warm": [], "cold": []}
            failures: dict[str, list[str]] = {"lab": [], "warm": [], "cold": []}

            def sample(key: str, fn) -> None:
                # A sample that fails is a printed reason and a missing figure, not the end of the run.
                try:
                    samples[key].append(fn())
                except Exception as e:  # noqa: BLE001
                    samples[key].append(None)
                    failures[key].append(f"{type(e).__name__}: {str(e)[:200]}")
                    print(f"[gallery] {key} sample not measured: {failures[key][-1]}")

            server(True)
            for _ in range(repeats + 1):  # the first of each is a warm-up (browser cache, first kernel)
                sample("lab", lab_open)
                sample("warm", lambda: from_gallery(True))
                sample("cold", lambda: from_gallery(False))
        finally:
            driver.quit()
    med = {}
    for k, v in samples.items():
        counted = [x for x in v[1:] if x is not None]
        med[k] = round(statistics.median(counted), 2) if counted else None

    def ratio(a, b):
        return None if a is None or not b else round(a / b, 2)

    return {
        "repeats": repeats, "samples_s": {k: [None if x is None else round(x, 2) for x in v] for k, v in samples.items()},
        "not_measured": {k: v for k, v in failures.items() if v},
        "jupyterlab_open_s": med["lab"], "gallery_running_s": med["warm"], "gallery_stopped_s": med["cold"],
        "running_ratio": ratio(med["warm"], med["lab"]), "stopped_ratio": ratio(med["cold"], med["lab"]),
    }


def print_gallery(res: dict) -> None:
    def v(x, unit=""):
        return "-" if x is None else f"{x}{unit}"

    print()
    print("Course app gallery (Chromium; notebook 02 as a Voilà app in the student's own server)")
    print(f"  open the notebook in JupyterLab (baseline): {v(res['jupyterlab_open_s'], ' s')}")
    print(f"  gallery click -> first widget, server running: {v(res['gallery_running_s'], ' s')} "
          f"({v(res['running_ratio'], 'x')} baseline)")
    print(f"  gallery click -> first widget, server stopped: {v(res['gallery_stopped_s'], ' s')} "
          f"({v(res['stopped_ratio'], 'x')} baseline)")
    for key, reasons in (res.get("not_measured") or {}).items():
        print(f"  not measured: {len(reasons)} {key} sample(s), e.g. {reasons[0]}")
