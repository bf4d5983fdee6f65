"""The slicer-core image end to end: the Slicer kernel through the server API,
the Slicer desktop in a real browser (headless Chromium), settings that
survive the container, and what the desktop exposes (nothing but the hub)."""

from __future__ import annotations

import asyncio
import base64
import io
import socket
import time
from itertools import combinations

import nbformat
import pytest
import requests
from PIL import Image, ImageChops, ImageStat

from slicerhub.devenv.rfb import RFBClient
from tests.support.browser import ARTIFACTS, browser as _browser, hub_login as _browser_login
from tests.support.browser import page_picture as _page_picture, wait_for as _wait
from tests.support.hub import ROOT
from tests.support.kernel import KernelClient
from tests.support.open_study import STOP_DESKTOP_APP
from tests.support.spawn import container, hub_api, in_desktop, spawn_with_form, stop_server, wait_ready

pytestmark = pytest.mark.e2e

NOTEBOOK = ROOT / "notebooks" / "01-slicer-kernel-basics.ipynb"


def _login_and_spawn(hub, user, password):
    s, r = hub.login(user, password)
    assert r.status_code == 302, r.text
    token = hub.api_token(s)
    if not hub_api(hub, token, f"/users/{user}").json()["servers"]:
        assert spawn_with_form(hub, s).status_code == 302
        assert wait_ready(hub, s, user)["ready"]
    return s, token


def _png_stats(png_b64: str):
    img = Image.open(io.BytesIO(base64.b64decode(png_b64))).convert("L")
    return img.size, ImageStat.Stat(img)


def test_notebook_runs_on_the_slicer_kernel(e2e_hub):
    hub = e2e_hub
    _, token = _login_and_spawn(hub, "student1", "student1-pw")
    nb = nbformat.read(NOTEBOOK, as_version=4)

    async def run():
        kc = await KernelClient(f"{hub.url}/user/student1", token, "slicer").start()
        try:
            return await kc.run_notebook(nb)
        finally:
            await kc.shutdown()

    outputs = asyncio.run(run())
    text = "".join(o.get("text", "") for cell in outputs for o in cell if o["output_type"] == "stream")
    assert "vtkMRMLScene" in text
    assert "MNI152-T1 (197, 233, 189)" in text
    # The MNI template's brain is about 1.5 l; a broken load gives 0 or the whole box.
    brain_ml = float(text.split("brain volume:")[1].split("ml")[0])
    assert 900 < brain_ml < 2500, text
    assert "True" in text.splitlines()[-1]  # saveNode

    images = [o["data"]["image/png"] for cell in outputs for o in cell
              if o["output_type"] in ("display_data", "execute_result") and "image/png" in o["data"]]
    assert len(images) == 2, [list(o.get("data", {})) for cell in outputs for o in cell]
    (w, h), stats = _png_stats(images[0])
    assert (w, h) == (512, 512)
    # A slice of a head on black: some dark background, a bright brain.
    assert 20 < stats.mean[0] < 200 and stats.stddev[0] > 30, (stats.mean, stats.stddev)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for name, data in zip(("kernel-axial.png", "kernel-3d.png"), images):
        (ARTIFACTS / name).write_bytes(base64.b64decode(data))
    widgets = [o for cell in outputs for o in cell if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert widgets, "SliceViewer produced no widget"

    r = requests.get(f"{hub.url}/user/student1/api/contents/results/bright.nrrd",
                     headers={"Authorization": f"token {token}"}, params={"content": "0"}, timeout=30)
    assert r.status_code == 200 and r.json()["size"] > 1000


def test_slicer_setting_survives_container_deletion(e2e_hub, docker_client):
    hub = e2e_hub
    _, token = _login_and_spawn(hub, "student1", "student1-pw")

    async def on_kernel(code):
        kc = await KernelClient(f"{hub.url}/user/student1", token, "slicer").start()
        try:
            return "".join(o.get("text", "") for o in await kc.execute(code))
        finally:
            await kc.shutdown()

    asyncio.run(on_kernel("from slicerhub_slicer import settings\n"
                          "settings.set('Desktop/Orientation', 'Sagittal')\n"
                          "print(settings.user_settings_file())"))
    container(docker_client, hub, "student1").remove(force=True)
    stop_server(hub, token, "student1")
    assert hub_api(hub, token, "/users/student1/server", "POST").status_code in (201, 202)
    s, _ = hub.login("student1", "student1-pw")
    assert wait_ready(hub, s, "student1")["ready"]
    out = asyncio.run(on_kernel("from slicerhub_slicer import settings\n"
                                "print(settings.get('Desktop/Orientation'), settings.user_settings_file())"))
    assert out.split() == ["Sagittal", "/home/slicer/.config/slicer.org/Slicer.ini"], out


# ------------------------------------------------- Slicer's four-up views ---
# The desktop's default layout is Slicer's four-up: Red (axial) top left, 3D
# top right, Green (coronal) bottom left, Yellow (sagittal) bottom right, each
# under a bar in its colour. Seen here through the hub's desktop websocket with
# raw RFB (what noVNC gets), the mouse as RFB pointer events.

VIEW_COLOURS = {"Red": (243, 74, 51), "Green": (110, 176, 75), "Yellow": (237, 213, 76)}


def _views_of(picture: Image.Image, margin: float = 0.08) -> dict[str, tuple[int, int, int, int]]:
    """The inside of each view (no bar, frame or the corner where the views meet)."""
    w, h = picture.size
    mx, my, cx, cy = int(w * margin), int(h * margin), w // 2, h // 2
    return {"Red": (mx, my, cx - mx, cy - my), "3D": (cx + mx, my, w - mx, cy - my),
            "Green": (mx, cy + my, cx - mx, h - my), "Yellow": (cx + mx, cy + my, w - mx, h - my)}


def _centre(box) -> tuple[int, int]:
    return (box[0] + box[2]) // 2, (box[1] + box[3]) // 2


def _change(before: Image.Image, after: Image.Image, box) -> float:
    """Mean grey-level difference (0..255) inside BOX."""
    return ImageStat.Stat(ImageChops.difference(before.crop(box).convert("L"), after.crop(box).convert("L"))).mean[0]


def _drawn(picture: Image.Image, box) -> bool:
    """Anatomy or a 3D scene, not a flat background: many grey levels, a good part not black."""
    histogram = picture.crop(box).convert("L").histogram()
    levels = sum(1 for count in histogram if count > 20)
    lit = sum(histogram[30:]) / max(1, sum(histogram))
    return levels > 40 and lit > 0.1


def _picture(fb) -> Image.Image:
    return Image.frombytes("RGB", (fb.width, fb.height), fb.to_rgb())


async def _settled(client, bound: float = 60) -> Image.Image:
    """The desktop's picture once it has stopped drawing (two looks half a second apart agree)."""
    last = None
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        now = bytes((await client.snapshot(30)).pixels)
        if now == last:
            return _picture(client.fb)
        last = now
        await asyncio.sleep(0.5)
    raise AssertionError(f"the desktop kept changing for {bound:g} s")


async def _drag(client, start: tuple[int, int], by: tuple[int, int], buttons: int, steps: int = 12) -> None:
    x, y = start
    await client.pointer(x, y, 0)
    await client.pointer(x, y, buttons)
    for i in range(1, steps + 1):
        await client.pointer(x + by[0] * i // steps, y + by[1] * i // steps, buttons)
        await asyncio.sleep(0.03)
    await client.pointer(x + by[0], y + by[1], 0)


async def _wheel(client, at: tuple[int, int], clicks: int, up: bool = True) -> None:
    button = 8 if up else 16  # RFB buttons 4 and 5: X's wheel
    for _ in range(clicks):
        await client.pointer(*at, button)
        await client.pointer(*at, 0)


def test_desktop_shows_slicers_four_up_views_and_takes_slicers_mouse_gestures(e2e_hub):
    hub = e2e_hub
    _, token = _login_and_spawn(hub, "student2", "student2-pw")
    ws_url = hub.url.replace("http", "ws", 1) + "/user/student2/desktop-websockify/"

    async def run():
        client = await RFBClient.websocket(ws_url, {"Authorization": f"token {token}"})
        try:
            first = await client.snapshot(30)
            views = _views_of(_picture(first))
            # The pointer into the Red view before the first look: the VNC
            # server draws it into the picture, and it must not move elsewhere.
            await client.pointer(*_centre(views["Red"]), 0)
            deadline = time.monotonic() + 120
            while True:
                shown = await _settled(client)
                if all(_drawn(shown, box) for box in views.values()) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(1)
            steps = {"four-up": shown}

            async def gesture(name, action):
                before = await _settled(client)
                await action()
                after = await _settled(client)
                steps[name] = after
                return {view: _change(before, after, box) for view, box in views.items()}

            red = _centre(views["Red"])
            wheel = await gesture("wheel", lambda: _wheel(client, red, 6))
            zoom = await gesture("zoom", lambda: _drag(client, red, (0, -60), 4))
            pan = await gesture("pan", lambda: _drag(client, red, (50, 25), 2))
            window_level = await gesture("window-level", lambda: _drag(client, red, (120, 60), 1))
            await client.pointer(*_centre(views["3D"]), 0)
            rotate = await gesture("rotate", lambda: _drag(client, _centre(views["3D"]), (90, 30), 1))
            return steps, views, {"wheel": wheel, "zoom": zoom, "pan": pan, "window-level": window_level,
                                  "rotate": rotate}
        finally:
            await client.close()

    steps, views, changes = asyncio.run(run())
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shown = steps["four-up"]
    shown.save(ARTIFACTS / "desktop-four-up.png")
    for name, picture in steps.items():
        if name != "four-up":
            picture.save(ARTIFACTS / f"desktop-four-up-{name}.png")

    # Every view is drawn, and the three slice views show three different slices.
    assert all(_drawn(shown, box) for box in views.values()), {v: _drawn(shown, b) for v, b in views.items()}
    crops = {v: shown.crop(views[v]).convert("L") for v in ("Red", "Green", "Yellow")}
    for a, b in combinations(crops, 2):
        size = (min(crops[a].width, crops[b].width), min(crops[a].height, crops[b].height))
        difference = ImageStat.Stat(ImageChops.difference(crops[a].crop((0, 0) + size),
                                                          crops[b].crop((0, 0) + size))).mean[0]
        assert difference > 10, (a, b, difference)
    # Each slice view sits under a bar in its colour: the arrangement is Slicer's.
    w, h = shown.size
    for view, (x, y) in {"Red": (w // 4, 4), "Green": (w // 4, h // 2 + 6), "Yellow": (3 * w // 4, h // 2 + 6)}.items():
        assert all(abs(a - b) < 40 for a, b in zip(shown.getpixel((x, y)), VIEW_COLOURS[view])), \
            (view, shown.getpixel((x, y)))

    # In a slice view the wheel goes through the slices, right drag zooms,
    # middle drag pans: that view changes, the other slice views do not (the
    # 3D view shows the Red slice's plane, which moves with it, as in Slicer).
    for gesture in ("wheel", "zoom", "pan"):
        moved = changes[gesture]
        assert moved["Red"] > 2, (gesture, moved)
        assert moved["Green"] < 0.5 and moved["Yellow"] < 0.5, (gesture, moved)
    # Left drag sets window/level: the volume's, so every slice view shows it.
    moved = changes["window-level"]
    assert min(moved["Red"], moved["Green"], moved["Yellow"]) > 2, moved
    # Left drag in the 3D view rotates it; the slice views stay as they were.
    moved = changes["rotate"]
    assert moved["3D"] > 2, moved
    assert max(moved["Red"], moved["Green"], moved["Yellow"]) < 0.5, moved


def test_desktop_layout_setting_picks_one_view_and_back(e2e_hub, docker_client):
    """Desktop/Layout = OneUp with Desktop/Orientation = Sagittal: the Yellow view
    alone fills the desktop (its bar across the whole width) when the application
    starts again; FourUp again afterwards (what the tests after this one see)."""
    hub = e2e_hub
    _, token = _login_and_spawn(hub, "student2", "student2-pw")
    c = container(docker_client, hub, "student2")
    ws_url = hub.url.replace("http", "ws", 1) + "/user/student2/desktop-websockify/"

    def restart_with(layout: str, orientation: str) -> None:
        out = in_desktop(c, "python3", "-c", "from slicerhub_slicer import settings\n"
                                             f"settings.set('Desktop/Layout', {layout!r})\n"
                                             f"settings.set('Desktop/Orientation', {orientation!r})")
        assert out.exit_code == 0, out.output
        stopped = in_desktop(c, "python3", "-c", STOP_DESKTOP_APP)  # the session starts it again
        assert stopped.exit_code == 0 and stopped.output.strip(), stopped.output

    def bar_colours(picture):
        w, _ = picture.size
        return picture.getpixel((w // 4, 4)), picture.getpixel((3 * w // 4, 4))

    def near(colour, expected):
        return all(abs(a - b) < 40 for a, b in zip(colour, expected))

    async def until(shows, bound: float = 120) -> Image.Image:
        client = await RFBClient.websocket(ws_url, {"Authorization": f"token {token}"})
        try:
            deadline = time.monotonic() + bound
            while True:
                picture = _picture(await client.snapshot(30))
                if shows(picture):
                    return picture
                assert time.monotonic() < deadline, "the desktop did not change layout"
                await asyncio.sleep(1)
        finally:
            await client.close()

    yellow = VIEW_COLOURS["Yellow"]
    try:
        restart_with("OneUp", "Sagittal")
        one = asyncio.run(until(lambda p: all(near(colour, yellow) for colour in bar_colours(p))
                                and _drawn(p, (p.width // 4, p.height // 4, 3 * p.width // 4, 3 * p.height // 4))))
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        one.save(ARTIFACTS / "desktop-one-up-sagittal.png")
    finally:
        restart_with("FourUp", "Axial")
    asyncio.run(until(lambda p: near(bar_colours(p)[0], VIEW_COLOURS["Red"])
                      and all(_drawn(p, box) for box in _views_of(p).values())))


# --------------------------------------------------------------- browser ---





def _canvas_picture(driver, name: str):
    """Screenshot the page, keep it, and return the part inside the noVNC canvas."""
    png = driver.get_screenshot_as_png()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / name).write_bytes(png)
    page = Image.open(io.BytesIO(png)).convert("RGB")
    rect = driver.execute_script(
        "const r = document.querySelector('#screen canvas').getBoundingClientRect();"
        "return [r.left, r.top, r.right, r.bottom, window.devicePixelRatio];")
    ratio = rect[4]
    box = tuple(int(v * ratio) for v in rect[:4])
    return page.crop(box)


def _slicer_drawn(picture: Image.Image) -> bool:
    """Slicer's four views drawn, each slice fitted to its view: the anatomy
    centred left to right in it (a view not fitted again after the window
    changed size is off-centre)."""
    views = _views_of(picture)
    if not all(_drawn(picture, box) for box in views.values()):
        return False
    for name in ("Red", "Green", "Yellow"):
        gray = picture.crop(views[name]).convert("L")
        width, _ = gray.size
        data = list(gray.point(lambda v: 1 if v > 100 else 0).getdata())
        # Columns with a few bright pixels only (the mouse pointer) do not count.
        xs = [x for x in range(width) if sum(data[x::width]) > 20]
        if not xs or abs((xs[0] + xs[-1] + 1) / 2 - width / 2) > 0.1 * width:
            return False
    return True


def _window_tree(c) -> str:
    """The X windows' geometry in the desktop, for a failure message: says whether
    Openbox re-maximised the application after the screen changed size."""
    screen = in_desktop(c, "xdpyinfo").output.decode(errors="replace")
    tree = in_desktop(c, "xwininfo", "-root", "-tree").output.decode(errors="replace")
    named = [line.strip() for line in tree.splitlines() if '"' in line]  # unnamed: Openbox's own
    return "\n".join([line.strip() for line in screen.splitlines() if "dimensions:" in line] + named)


def test_desktop_in_the_browser_shows_slicer_and_follows_the_window(e2e_hub, docker_client):
    hub = e2e_hub
    driver = _browser()
    try:
        driver.get(hub.url + "/hub/login")
        driver.find_element("id", "username_input").send_keys("student2")
        driver.find_element("id", "password_input").send_keys("student2-pw")
        driver.find_element("id", "login_submit").click()
        # One profile allowed: the spawn starts at once and lands in JupyterLab.
        _wait(lambda: "/user/student2/lab" in driver.current_url, 120, what="JupyterLab")

        driver.get(hub.url + "/user/student2/desktop/")
        _wait(lambda: driver.execute_script(
            "return document.querySelector('#status') && document.querySelector('#status').textContent"
        ) == "Connected", 60, what="noVNC connected")
        picture = _wait(lambda: (lambda p: p if _slicer_drawn(p) else None)(
            _canvas_picture(driver, "desktop-1280x900.png")), 90, 2, "Slicer's four views in the canvas")
        assert picture.size[0] > 600

        def canvas_and_screen():
            return driver.execute_script(
                "const c = document.querySelector('#screen canvas'), s = document.querySelector('#screen');"
                "return [c.width, c.height, s.clientWidth, s.clientHeight];")

        before = canvas_and_screen()
        driver.set_window_size(900, 700)
        # resize=remote: the remote screen (the canvas) takes the new size of the page.
        after = _wait(lambda: (lambda v: v if v[0] != before[0] and abs(v[0] - v[2]) <= 2
                               and abs(v[1] - v[3]) <= 2 else None)(canvas_and_screen()),
                      30, what=f"remote desktop to follow the window (was {before})")
        assert after[0] < before[0]
        try:
            _wait(lambda: _slicer_drawn(_canvas_picture(driver, "desktop-900x700.png")),
                  60, 1, "Slicer redrawn after resize")
        except AssertionError as exc:
            # Seen once in CI (not reproduced in 24 local resizes, loaded or not):
            # keep what the X server had, to tell a missed re-maximise from a missed re-fit.
            raise AssertionError(f"{exc}; canvas {after}; X windows:\n"
                                 f"{_window_tree(container(docker_client, hub, 'student2'))}") from None
    finally:
        driver.quit()


# -------------------------------------------------------------- security ---

def _listeners(c) -> list[tuple[str, int]]:
    """(address, port) of every listening TCP socket in the container."""
    out = c.exec_run(["cat", "/proc/net/tcp", "/proc/net/tcp6"]).output.decode()
    found = []
    for line in out.splitlines()[1:]:
        parts = line.split()
        if len(parts) > 3 and parts[3] == "0A":
            addr, port = parts[1].rsplit(":", 1)
            found.append((addr, int(port, 16)))
    return found


def _is_loopback(hex_addr: str) -> bool:
    if len(hex_addr) == 8:
        return hex_addr.endswith("7F")  # 127.x.x.x, little-endian
    return hex_addr == "00000000000000000000000001000000" or hex_addr.startswith("0000000000000000FFFF00000100007F")


def test_desktop_is_reachable_only_through_the_hub(e2e_hub, docker_client):
    hub = e2e_hub
    s, token = _login_and_spawn(hub, "student2", "student2-pw")
    ws_url = hub.url.replace("http", "ws", 1) + "/user/student2/desktop-websockify/"

    async def owner_frame():
        client = await RFBClient.websocket(ws_url, {"Authorization": f"token {token}"})
        try:
            return await client.snapshot(30)
        finally:
            await client.close()

    fb = asyncio.run(owner_frame())
    assert fb.non_background_fraction() > 0.05  # the owner sees Slicer

    # Without a hub login, and with another user's login: refused (CVE-2024-28179).
    from tornado.httpclient import HTTPClientError

    other, _ = hub.login("teacher1", "teacher-pw")
    other_token = hub.api_token(other)
    for headers in ({}, {"Authorization": f"token {other_token}"}, {"Authorization": "token forged"}):
        with pytest.raises(HTTPClientError) as err:
            asyncio.run(RFBClient.websocket(ws_url, headers))
        assert err.value.code in (302, 401, 403), err.value

    c = container(docker_client, hub, "student2")
    listeners = _listeners(c)
    wildcard = [(a, p) for a, p in listeners if not _is_loopback(a)]
    assert wildcard == [(a, 8888) for a, p in wildcard if p == 8888] and wildcard, listeners
    # The VNC server is on a unix socket in a directory only the user can enter.
    out = c.exec_run(["sh", "-c", "for s in /tmp/jupyter-server-proxy-*/* /tmp/*/desktop*; do "
                                  "[ -S \"$s\" ] && stat -c '%a %u %n' \"$(dirname \"$s\")\" \"$s\"; done"]).output.decode()
    assert out.strip(), "no VNC unix socket found"
    directory_mode, owner, _ = out.splitlines()[0].split(" ", 2)
    assert directory_mode == "700" and owner == "1000", out
    # And nothing answers on the VNC / X ports from the host side.
    ip = next(iter(c.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]
    for port in (5900, 5901, 6000, 6001):
        with socket.socket() as probe:
            probe.settimeout(2)
            assert probe.connect_ex((ip, port)) != 0, f"{ip}:{port} is open"


# ------------------------------------------------------------- clipboard ---

def test_clipboard_goes_both_ways_through_the_hub(e2e_hub, docker_client):
    """noVNC's clipboard box sends ClientCutText and shows ServerCutText; both
    reach the X selections the desktop's applications use."""
    hub = e2e_hub
    s, token = _login_and_spawn(hub, "student2", "student2-pw")
    ws_url = hub.url.replace("http", "ws", 1) + "/user/student2/desktop-websockify/"
    c = container(docker_client, hub, "student2")
    to_desktop, from_desktop = f"to-desktop {time.time()}", f"from-desktop {time.time()} ü"

    def x_clipboard() -> str:
        return in_desktop(c, "xclip", "-o", "-selection", "clipboard").output.decode()

    async def run():
        client = await RFBClient.websocket(ws_url, {"Authorization": f"token {token}"})
        try:
            await client.snapshot(30)
            await client.cut_text_to_server(to_desktop.encode("latin-1"))
            deadline = time.monotonic() + 10
            while await asyncio.to_thread(x_clipboard) != to_desktop:
                assert time.monotonic() < deadline, f"X clipboard is {x_clipboard()!r}"
                await asyncio.sleep(0.2)

            # An application in the desktop copies: the browser is told.
            in_desktop(c, "sh", "-c", f"printf %s '{from_desktop}' | xclip -selection clipboard -i",
                        detach=True)
            deadline = time.monotonic() + 10
            while not client.cut_text:
                assert time.monotonic() < deadline, "no ServerCutText from the desktop"
                await client.request_update(True)
                await asyncio.wait_for(client.read_message(), deadline - time.monotonic())
            return client.cut_text[-1]
        finally:
            await client.close()

    # Classic RFB cut text is Latin-1.
    assert asyncio.run(run()).decode("latin-1") == from_desktop


# ------------------------------------------------------------ Slicer Web ---





def _largest_view(driver) -> list[float]:
    """Page box (CSS px) of the largest image or canvas: the main Slicer view."""
    return driver.execute_script("""
        const boxes = [...document.querySelectorAll('img, canvas')]
            .map(e => e.getBoundingClientRect()).filter(r => r.width > 50 && r.height > 50)
            .sort((a, b) => b.width * b.height - a.width * a.height);
        return boxes.length ? [boxes[0].left, boxes[0].top, boxes[0].right, boxes[0].bottom,
                               window.devicePixelRatio] : null;""")


def _brain_in(picture: Image.Image, bright_fraction: float = 0.05) -> bool:
    histogram = picture.convert("L").histogram()
    levels = sum(1 for count in histogram if count > 20)
    return levels > 40 and sum(histogram[100:]) / max(1, sum(histogram)) > bright_fraction


def test_slicer_web_renders_and_answers_through_the_hub(e2e_hub):
    """trame-slicer behind jupyter-server-proxy: the page, its websocket and
    server-side rendering all go through the hub, and a change made in the
    browser (the slice slider) comes back as a new Slicer rendering."""
    hub = e2e_hub
    driver = _browser()
    try:
        _browser_login(driver, hub, "student2", "student2-pw")
        driver.get(hub.url + "/user/student2/slicer-web/")

        def view_picture(name):
            box = _wait(lambda: _largest_view(driver), 60, what="a Slicer view on the page")
            page = _page_picture(driver, name)
            ratio = box[4]
            return page.crop(tuple(int(v * ratio) for v in box[:4]))

        before = _wait(lambda: (lambda p: p if _brain_in(p) else None)(view_picture("slicer-web.png")),
                       90, 2, "the sample volume rendered in Slicer Web")

        # The slider under the main view sets the slice offset on the server;
        # click a third of the way along it (offsets count from its centre).
        from selenium.webdriver.common.action_chains import ActionChains

        slider = min(driver.find_elements("css selector", ".v-slider"),
                     key=lambda e: (e.location["x"], -e.location["y"]))
        ActionChains(driver).move_to_element_with_offset(
            slider, -int(slider.size["width"] * 0.17), 0).click().perform()

        def changed():
            after = view_picture("slicer-web-after-slider.png")
            diff = ImageStat.Stat(ImageChops.difference(before.convert("L"), after.convert("L")))
            return after if diff.mean[0] > 5 and _brain_in(after, 0.01) else None

        _wait(changed, 30, 1, "Slicer Web to render the new slice")
    finally:
        driver.quit()
