"""Open a PACS study by its link: the link followed in Chromium (the patient's
page, its button) → the first frame of that study in the user's Slicer
desktop, against a real hub, slapd, Docker and a seeded Orthanc.

* cold: no server running; goal <= 10 s. Baseline: ``docker run`` of the same
  image until its desktop answers with a Slicer frame (benchmarks/desktop.py).
* warm: server and desktop running, the series not yet in the home (it is
  retrieved again); goal <= 2 s. Baseline: the Slicer kernel of the same
  server reading the same series from local disk.
* cached: warm, the series already in the home.

The cold open is split into phases from the container's own clock (Docker's
start time, the server's log) so the slow part shows.
"""

from __future__ import annotations

import datetime as dt
import re
import statistics
import time
from pathlib import Path

from tests.support.browser import browser
from tests.support.hub import free_port
from tests.support.open_study import (StudyOpener, desktop_log, first_study_frame, link, login_without_server,
                                      references)
from tests.support.pacs import pacs_section, seeded_pacs

from .desktop import IMAGE, _docker_run_baseline, _ratio, _round
from .harness import docker_deployment

USER, PASSWORD = "student2", "student2-pw"
GOAL_COLD_S, GOAL_WARM_S = 10.0, 2.0
# The server's log line times, e.g. "[I 2026-12-02 02:46:30.195 ServerApp] ...".
LOG_TIME = re.compile(r"^\[\w (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) ", re.M)
# The desktop application's, e.g. "slicerhub-desktop 2026-12-02 02:46:31.002: showing ...".
DESKTOP_TIME = re.compile(r"^slicerhub-desktop (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}): ", re.M)


def _log_time(text: str, marker: str, pattern: re.Pattern = LOG_TIME) -> float | None:
    for line in text.splitlines():
        m = pattern.match(line)
        if m and marker in line:
            return dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").replace(
                tzinfo=dt.timezone.utc).timestamp()
    return None


def _phases(c, clicked: float, first_frame: float) -> dict:
    """Seconds from the click to each step of a cold open, on the wall clock."""
    c.reload()
    started = dt.datetime.fromisoformat(c.attrs["State"]["StartedAt"][:26].rstrip("Z") + "+00:00").timestamp()
    logs = c.logs().decode(errors="replace")
    listening = _log_time(logs, "Jupyter Server") and _log_time(logs, "is running at")
    opened = _log_time(logs, "slicerhub/open: study")
    desktop = desktop_log(c)
    app_shown = _log_time(desktop, "showing", DESKTOP_TIME)  # the application's first picture
    study_shown = _log_time(desktop, "(study ", DESKTOP_TIME)
    out = {"container_started": started - clicked, "server_listening": listening and listening - clicked,
           "study_retrieved": opened and opened - clicked, "desktop_app_first_picture": app_shown and app_shown - clicked,
           "desktop_app_showed_study": study_shown and study_shown - clicked, "first_frame_in_browser": first_frame}
    return {k: _round(v) for k, v in out.items()}


def run(workdir: Path, warm_runs: int = 3, cpu_limit: float = 1) -> dict:
    """CPU_LIMIT: the profile's (1, the demo's students; 2, its teachers)."""
    res: dict = {"cpu_limit": cpu_limit}
    with seeded_pacs() as pacs:
        overrides = {
            "hub": {"pacs_port": free_port()},
            "profiles": [{"slug": "standard", "display_name": "Slicer (CPU)", "image": IMAGE,
                          "cpu_limit": cpu_limit, "mem_limit": "2G", "default": True}],
            "pacs": pacs_section(pacs, ["students"]),
        }
        with docker_deployment(workdir, "bopen", **overrides) as (hub, client, prefix):
            res["docker_run_s"] = _round(_docker_run_baseline(client))
            s, _ = hub.login(USER, PASSWORD)
            token = hub.api_token(s)

            def container():
                try:
                    return client.containers.get(f"{prefix}-{USER}")
                except Exception:  # noqa: BLE001 - not made yet
                    return None

            driver = browser()
            try:
                login_without_server(driver, hub, (USER, PASSWORD))
                opener = StudyOpener(driver, hub, USER, container)
                clicked = time.time()
                cold_frames = opener.frames_until_shown(link(hub, pacs), 300)
                study_ref, sample_ref, kernel = references(hub, token, USER, pacs, cold_frames[-1][1].size)
                cold_s = first_study_frame(cold_frames, study_ref, sample_ref)[0]
                res["cold_phases_s"] = _phases(container(), clicked, cold_s)
                warm = []
                for _ in range(warm_runs):
                    opener.forget_retrieved(pacs.study)
                    opener.back_to_the_sample(sample_ref)
                    warm.append(first_study_frame(opener.frames_until_shown(link(hub, pacs), 120),
                                                  study_ref, sample_ref)[0])
                opener.back_to_the_sample(sample_ref)
                cached = first_study_frame(opener.frames_until_shown(link(hub, pacs), 120), study_ref, sample_ref)[0]
            finally:
                driver.quit()
    warm_s = statistics.median(warm)
    res.update({
        "series": {"instances": len(pacs.ct), "megabytes": round(sum(len(ds.PixelData) for ds in pacs.ct) / 1e6, 1)},
        "cold_s": _round(cold_s), "cold_ratio": _ratio(cold_s, res["docker_run_s"]), "goal_cold_s": GOAL_COLD_S,
        "local_load_s": _round(kernel["local_s"]), "warm_s": _round(warm_s), "warm_runs_s": [_round(w) for w in warm],
        "warm_ratio": _ratio(warm_s, kernel["local_s"]), "goal_warm_s": GOAL_WARM_S,
        "cached_s": _round(cached), "cached_ratio": _ratio(cached, kernel["local_s"]),
    })
    return res


def _ok(value, goal) -> str:
    return "" if value is None else (" ok" if value <= goal else " MISSED")


def print_open_study(res: dict) -> None:
    print()
    print(f"Open a PACS study by its link (Chromium; {res['series']['instances']} CT slices, "
          f"{res['series']['megabytes']} MB of pixels; server cpu_limit {res.get('cpu_limit', 1)})")
    print(f"  docker run -> Slicer frame (baseline):          {res['docker_run_s']} s")
    print(f"  cold: link -> first frame of the study:        {res['cold_s']} s ({res['cold_ratio']}x baseline; "
          f"goal <= {res['goal_cold_s']} s{_ok(res['cold_s'], res['goal_cold_s'])})")
    print(f"        phases from the link: {res['cold_phases_s']}")
    print(f"  kernel reads the series from local disk (baseline): {res['local_load_s']} s")
    print(f"  warm: link -> first frame (retrieved again):   {res['warm_s']} s median of {res['warm_runs_s']} "
          f"({res['warm_ratio']}x baseline; goal <= {res['goal_warm_s']} s{_ok(res['warm_s'], res['goal_warm_s'])})")
    print(f"  cached: link -> first frame (in the home):     {res['cached_s']} s ({res['cached_ratio']}x baseline)")
