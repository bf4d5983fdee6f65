"""Opening a PACS study by its link in Chromium and timing its first frame in
the Slicer desktop: shared by tests/e2e/test_open_study.py and
benchmarks/open_study.py.

What the desktop shows is judged against Slicer's own rendering of the same
series in the Slicer kernel of the same server (same renderer, same size),
and against the sample volume the desktop shows otherwise. Frames are kept
while the study opens and judged afterwards, because the reference needs the
server, which a cold open is still starting.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import time
from urllib.parse import urlencode

from PIL import Image, ImageChops, ImageStat

from tests.support.browser import ARTIFACTS, wait_for
from tests.support.kernel import KernelClient
from tests.support.spawn import in_desktop

# Mean grey-level difference (0..255) under which a frame is the reference
# picture (noVNC's JPEG costs a few levels).
SAME_PICTURE = 12.0
# SIGTERM to the desktop application; the session's loop starts it again, on
# the sample. The image has no procps: the process is found in /proc, by its
# script (the VNC server's socket path has the name too).
STOP_DESKTOP_APP = """
import os, signal
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        if any(a.endswith(b"/bin/slicerhub-desktop") for a in open(f"/proc/{pid}/cmdline", "rb").read().split(b"\\0")):
            os.kill(int(pid), signal.SIGTERM)
            print(pid)
    except OSError:
        pass
"""


def link(hub, pacs, series: str | None = None) -> str:
    return hub.url + "/services/pacs/open?" + urlencode({"study": pacs.study, "series": series or pacs.ct_series})


def login_without_server(driver, hub, who) -> None:
    """Signed in with nothing started: the hub's home page, not the user's server."""
    driver.get(hub.url + "/hub/login?" + urlencode({"next": "/hub/home"}))
    driver.find_element("id", "username_input").send_keys(who[0])
    driver.find_element("id", "password_input").send_keys(who[1])
    driver.find_element("id", "login_submit").click()
    wait_for(lambda: "/hub/home" in driver.current_url, 60, what="the hub's home page")


def canvas(driver) -> Image.Image | None:
    """The noVNC canvas as the person sees it (None before the desktop page is up)."""
    rect = driver.execute_script(
        "const c = document.querySelector('#screen canvas');"
        "if (!c || !c.width) return null; const r = c.getBoundingClientRect();"
        "return [r.left, r.top, r.right, r.bottom, window.devicePixelRatio];")
    if not rect:
        return None
    page = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("L")
    return page.crop(tuple(int(v * rect[4]) for v in rect[:4]))


def distance(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute grey-level difference (0..255) of two pictures at a's size."""
    return ImageStat.Stat(ImageChops.difference(a, b.convert("L").resize(a.size))).mean[0]


def first_study_frame(frames, study_ref: Image.Image, sample_ref: Image.Image) -> tuple[float, Image.Image]:
    """(seconds, picture) of the first frame that is the study, not the sample."""
    for seconds, picture in frames:
        to_study = distance(picture, study_ref)
        if to_study < SAME_PICTURE and to_study < distance(picture, sample_ref) / 2:
            return seconds, picture
    if frames:  # kept for a look: artifacts/screenshots/
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        frames[-1][1].save(ARTIFACTS / "open-study-unmatched.png")
        study_ref.save(ARTIFACTS / "open-study-unmatched-reference.png")
    raise AssertionError("no frame matches Slicer's rendering of the study: distances study/sample "
                         + ", ".join(f"{distance(p, study_ref):.1f}/{distance(p, sample_ref):.1f}"
                                     for _, p in frames[-5:]))


def desktop_log(c) -> str:
    if c is None:
        return ""
    return in_desktop(c, "sh", "-c", "cat /home/slicer/.vnc/*.log 2>/dev/null").output.decode(errors="replace")


class StudyOpener:
    """One person's browser and server: open links, keep the frames, reset the desktop.

    `container()` returns the user's container, or None while it does not exist.
    """

    def __init__(self, driver, hub, user: str, container, shown: str = "showing Head CT"):
        self.driver, self.hub, self.user, self.container, self.shown = driver, hub, user, container, shown

    def _click_through(self, url: str) -> None:
        """The link, then the button on the page that names the patient (the person's click)."""
        self.driver.get(url)
        wait_for(lambda: self.driver.find_elements("id", "open-study"), 60, 0.05, "the gateway's page")
        self.driver.find_element("id", "open-study").click()

    def frames_until_shown(self, url: str, bound: float) -> list[tuple[float, Image.Image]]:
        """Open URL; keep (seconds since the link was followed, canvas) until the desktop
        app has shown the study again and two more frames came."""
        before = desktop_log(self.container()).count(self.shown)
        frames: list[tuple[float, Image.Image]] = []
        t0 = time.monotonic()
        self._click_through(url)
        shown_at = None
        while time.monotonic() - t0 < bound:
            picture = canvas(self.driver) if "/desktop/" in self.driver.current_url else None
            if picture is not None:
                frames.append((time.monotonic() - t0, picture))
                if shown_at is None and desktop_log(self.container()).count(self.shown) > before:
                    shown_at = len(frames)
                if shown_at is not None and len(frames) >= shown_at + 2:
                    return frames
            time.sleep(0.1)
        raise AssertionError(f"no frame of the study within {bound:g} s; {len(frames)} frames; url "
                             f"{self.driver.current_url}; desktop log: {desktop_log(self.container())[-800:]}")

    def back_to_the_sample(self, sample_ref: Image.Image, bound: float = 90) -> None:
        """Restart the desktop application (it starts on the sample) and wait until it shows."""
        stopped = in_desktop(self.container(), "python3", "-c", STOP_DESKTOP_APP)
        assert stopped.exit_code == 0 and stopped.output.strip(), stopped.output
        last: list[float] = []

        def on_sample():
            picture = canvas(self.driver)
            if picture is None:
                return False
            last[:] = [distance(picture, sample_ref)]
            return last[0] < SAME_PICTURE

        try:
            wait_for(on_sample, bound, 0.5, "the desktop back on the sample")
        except AssertionError as exc:
            raise AssertionError(f"{exc} (distance to the sample {last}); desktop log: "
                                 f"{desktop_log(self.container())[-800:]}") from None

    def forget_retrieved(self, study: str) -> None:
        """Remove the retrieved study from the home, so the next open retrieves it again."""
        r = self.container().exec_run(["rm", "-rf", f"/home/slicer/.local/share/slicerhub/dicom/{study}"],
                                      user="1000")
        assert r.exit_code == 0, r.output


async def _on_kernel(hub, token, user, code) -> str:
    kc = await KernelClient(f"{hub.url}/user/{user}", token, "slicer").start()
    try:
        return "".join(o.get("text", "") for o in await kc.execute(code))
    finally:
        await kc.shutdown()


def references(hub, token, user, pacs, size) -> tuple[Image.Image, Image.Image, dict]:
    """Slicer's rendering of the CT series and of the sample at the desktop's size
    (desktop.render_png: the desktop's layout of views, drawn offscreen),
    the kernel volume's geometry and values, and the seconds the kernel took to
    read the retrieved series from the home (the local-disk baseline)."""
    code = f"""
import base64, json, time
import numpy as np
from vtkmodules.util.numpy_support import vtk_to_numpy
from vtkmodules.vtkCommonMath import vtkMatrix4x4
from slicerhub_slicer import desktop, load_study, session, studies
s = session.current()
node = load_study({pacs.study!r}, {pacs.ct_series!r})
m = vtkMatrix4x4(); node.GetIJKToRASMatrix(m)
a = vtk_to_numpy(node.GetImageData().GetPointData().GetScalars()).reshape(node.GetImageData().GetDimensions()[::-1])
t0 = time.perf_counter()
again = s.load_volume(studies.first_file(studies.retrieve({pacs.study!r}, {pacs.ct_series!r})[0]), name="again")
local_s = time.perf_counter() - t0
s.show_volume(node)
study_png = desktop.render_png(s, {tuple(size)!r})  # the desktop's layout, offscreen
s.show_volume(s.sample_volume())
sample_png = desktop.render_png(s, {tuple(size)!r})
print(json.dumps({{"ijk_to_ras": [[m.GetElement(i, j) for j in range(4)] for i in range(4)],
                  "dims": node.GetImageData().GetDimensions(), "min": float(a.min()), "max": float(a.max()),
                  "checksum": float(a.astype(np.float64).sum()), "name": node.GetName(), "local_s": local_s,
                  "study": base64.b64encode(study_png).decode(), "sample": base64.b64encode(sample_png).decode()}}))
"""
    out = json.loads(asyncio.run(_on_kernel(hub, token, user, code)).strip().splitlines()[-1])
    study = Image.open(io.BytesIO(base64.b64decode(out.pop("study")))).convert("L")
    sample = Image.open(io.BytesIO(base64.b64decode(out.pop("sample")))).convert("L")
    return study, sample, out
