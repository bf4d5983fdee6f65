"""Teaching notebooks on the slicer-core image, end to end.

The segmentation lab (notebooks/02-segmentation-lab-voila.ipynb) is executed
headlessly with nbclient on the Slicer kernel in a throwaway container, and
served by Voilà in another one, where headless Chromium uses it as a student
would: the widgets render, and moving the threshold changes the volume.

Uses the image as built (``python -m slicerhub.devenv.images slicer-core``);
it is not rebuilt here.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import re
import secrets
import time

import nbformat
import pytest
import requests
from PIL import Image

from tests.support.browser import browser, wait_for
from tests.support.hub import ROOT

pytestmark = pytest.mark.e2e

IMAGE = "slicerhub/slicer-core:dev"
NOTEBOOKS = ROOT / "notebooks"
LAB = "02-segmentation-lab-voila.ipynb"
ARTIFACTS = ROOT / "artifacts" / "screenshots"
MOUNT = "/srv/notebooks"  # the notebooks, read-only, in the containers
LABELS = {"org.slicerhub.test": "teaching-notebooks"}
VOLUME_RE = re.compile(r"Segment volume: ([\d.]+) ml.*?\(([\d,]+) voxels")


@pytest.fixture(scope="module")
def docker_engine(docker_client):
    # docker_client (conftest) starts the engine and builds the image if needed:
    # this tier fails, never skips, without them.
    client = docker_client
    client.images.get(IMAGE)
    yield client


@contextlib.contextmanager
def _container(client, command, *, volumes=None, **kwargs):
    """A container of the image running COMMAND as the user, the notebooks
    mounted read-only at MOUNT; removed afterwards."""
    mounts = {str(NOTEBOOKS): {"bind": MOUNT, "mode": "ro"}, **(volumes or {})}
    c = client.containers.run(IMAGE, command, detach=True, user="1000", labels=LABELS, volumes=mounts, **kwargs)
    try:
        yield c
    except BaseException:
        print(c.logs(tail=80).decode(errors="replace"))  # shown by pytest on failure
        raise
    finally:
        c.remove(force=True)


def _volume(label_html: str) -> tuple[float, int]:
    """(ml, voxels) from the lab's volume label."""
    match = VOLUME_RE.search(label_html)
    assert match, label_html
    return float(match.group(1)), int(match.group(2).replace(",", ""))


def _overlay_pixels(picture: Image.Image) -> int:
    """Pixels tinted by the orange segment overlay (the image itself is grey: r == g == b)."""
    data = picture.convert("RGB").tobytes()
    return sum(1 for r, g, b in zip(data[0::3], data[1::3], data[2::3]) if r - b > 60 and r > g > b)


# ------------------------------------------------------------ nbclient ---

# Runs in the container: execute the notebook on the Slicer kernel, then a
# probe cell that drives the lab's widgets as the browser would (setting a
# widget's value runs its observers in the kernel), and write the result.
EXECUTE = r"""
import sys
import nbformat
from nbclient import NotebookClient

nb = nbformat.read(sys.argv[1], as_version=4)
nb.cells.append(nbformat.v4.new_code_cell(sys.argv[2]))
NotebookClient(nb, kernel_name="slicer", timeout=120, allow_errors=True,
               resources={"metadata": {"path": "/home/slicer"}}).execute()
nbformat.write(nb, sys.argv[3])
"""

PROBE = r"""
import base64 as _b64, json as _json

def _state():
    return {"range": list(threshold.value), "orientation": orientation.value, "label": volume_label.value,
            "png": _b64.b64encode(slice_image.value).decode()}

def _probe(lower, upper):
    threshold.value = (lower, threshold.max if upper is None else upper)
    return _state()

_states = [_state()] + [_probe(lo, hi) for lo, hi in [(30, None), (30, 189), (190, None), (0, None)]]
threshold.value = (30, threshold.max)
orientation.value = "Sagittal"
_states.append(_state())
print("PROBE " + _json.dumps(_states))
"""


def _execute(client, tmp_path, notebook: str, probe: str, **kwargs):
    """Run NOTEBOOK (+ the PROBE cell) with nbclient in a container without network;
    return the executed notebook and its code cells' outputs, none of them an error."""
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o777)  # written by the container's user
    with _container(client, ["python", "-c", EXECUTE, f"{MOUNT}/{notebook}", probe, "/out/executed.ipynb"],
                    network_mode="none", volumes={str(out): {"bind": "/out", "mode": "rw"}}, **kwargs) as c:
        status = c.wait(timeout=150)
        assert status["StatusCode"] == 0, c.logs(tail=40).decode(errors="replace")
    nb = nbformat.read(out / "executed.ipynb", as_version=4)
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    errors = [f"{o.ename}: {o.evalue}" for o in outputs if o.output_type == "error"]
    assert not errors, errors
    return nb, outputs


def test_segmentation_lab_executes_on_the_slicer_kernel(docker_engine, tmp_path):
    nb, outputs = _execute(docker_engine, tmp_path, LAB, PROBE)
    stderr = [o.text for o in outputs if o.output_type == "stream" and o.name == "stderr"]
    assert not stderr, stderr  # a student sees these in the Voilà page
    text = "".join(o.text for o in outputs if o.output_type == "stream")
    assert "MNI152-T1: 197 x 233 x 189 voxels of 1 x 1 x 1 mm" in text, text
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs), "no app widget"

    states = json.loads(text.split("PROBE ", 1)[1])
    first, brain, below_wm, wm, box, sagittal = states
    volumes = {name: _volume(s["label"]) for name, s in
               (("first", first), ("brain", brain), ("below_wm", below_wm), ("wm", wm), ("box", box))}
    print({name: ml for name, (ml, _) in volumes.items()})

    # The lab opens on the white-matter peak: a few hundred ml, well under the brain.
    assert first["range"] == [190, 255]
    assert volumes["first"] == volumes["wm"]
    assert 250 < volumes["wm"][0] < 900, volumes
    # Everything above the background is the brain (the template is skull-stripped).
    assert 1000 < volumes["brain"][0] < 2500, volumes
    assert volumes["wm"][0] < volumes["brain"][0]
    # Adjacent ranges add up, voxel for voxel: both ends of the range are inclusive.
    assert volumes["below_wm"][1] + volumes["wm"][1] == volumes["brain"][1], volumes
    # The full intensity range is the whole 197 x 233 x 189 box of 1 mm voxels.
    assert volumes["box"][1] == 197 * 233 * 189
    assert volumes["box"][0] == pytest.approx(197 * 233 * 189 / 1000, abs=0.1)

    pictures = {}
    for name, state in (("wm", wm), ("brain", brain), ("sagittal", sagittal)):
        picture = Image.open(io.BytesIO(base64.b64decode(state["png"])))
        assert picture.format == "PNG" and picture.size == (448, 448), (name, picture.format, picture.size)
        pictures[name] = picture.convert("RGB")
    overlay = {name: _overlay_pixels(p) for name, p in pictures.items()}
    print("overlay pixels:", overlay)
    total = 448 * 448
    # Orange over the white matter; more of it over the whole brain; some on a sagittal slice too.
    assert 0.02 * total < overlay["wm"] < overlay["brain"] < 0.9 * total, overlay
    assert overlay["sagittal"] > 0.05 * total, overlay
    assert pictures["sagittal"].tobytes() != pictures["brain"].tobytes()


# ------------------------------------------------------- Voilà, browser ---



def _element_picture(driver, element, png: bytes) -> Image.Image:
    rect = driver.execute_script(
        "const r = arguments[0].getBoundingClientRect();"
        "return [r.left, r.top, r.right, r.bottom, window.devicePixelRatio];", element)
    ratio = rect[4]
    return Image.open(io.BytesIO(png)).convert("RGB").crop(tuple(int(v * ratio) for v in rect[:4]))


def test_segmentation_lab_as_a_voila_app_in_chromium(docker_engine):
    from selenium.webdriver.common.keys import Keys

    token = secrets.token_hex(16)
    command = ["voila", "--no-browser", "--port=8866", "--Voila.ip=0.0.0.0", f"--token={token}", f"{MOUNT}/{LAB}"]
    with _container(docker_engine, command, ports={"8866/tcp": ("127.0.0.1", None)}) as c:
        c.reload()
        binding = c.ports["8866/tcp"][0]
        assert binding["HostIp"] == "127.0.0.1", c.ports
        base = f"http://127.0.0.1:{binding['HostPort']}"
        wait_for(lambda: b"running at" in c.logs(), 60, what="Voilà to start")
        assert requests.get(base + "/", timeout=10, allow_redirects=False).status_code in (302, 403)  # token

        driver = browser(1280, 1100)
        try:
            driver.get(f"{base}/?token={token}")
            find = lambda css: driver.find_elements("css selector", css)  # noqa: E731

            def ready():
                images = find("img.slicerhub-slice-view")
                labels = find(".slicerhub-volume-ml")
                if not (find(".slicerhub-threshold .noUi-handle") and images and labels):
                    return None
                loaded = driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth;", images[0])
                return (images[0], labels[0]) if loaded and " ml" in labels[0].text else None

            image, label = wait_for(ready, 90, what="the lab's widgets in Voilà")
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", image)
            time.sleep(0.5)  # let the page settle after scrolling
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            png = driver.get_screenshot_as_png()
            (ARTIFACTS / "voila-segmentation-lab.png").write_bytes(png)
            view = _element_picture(driver, image, png)
            assert _overlay_pixels(view) > 0.02 * view.size[0] * view.size[1], "no orange overlay in the page"
            assert not find('[data-mime-type="application/vnd.jupyter.stderr"]'), "error output in the app"

            before_text, before_src = label.text, image.get_attribute("src")
            before_ml = float(VOLUME_RE.search(before_text).group(1))
            # Lower the threshold's lower end with the keyboard, as a student may:
            # noUiSlider moves a focused handle 5 steps per Page Down.
            handle = find(".slicerhub-threshold .noUi-handle-lower")[0]
            handle.send_keys(Keys.PAGE_DOWN * 4)

            after_text = wait_for(lambda: label.text if label.text != before_text else None, 30,
                               what="the volume label to follow the threshold")
            after_ml = float(VOLUME_RE.search(after_text).group(1))
            assert after_ml > before_ml, (before_text, after_text)
            readout = find(".slicerhub-threshold .widget-readout")[0].text
            assert re.findall(r"\d+", readout) == ["170", "255"], readout
            wait_for(lambda: image.get_attribute("src") != before_src, 30, what="a new slice picture")
            time.sleep(0.5)
            driver.get_screenshot_as_file(str(ARTIFACTS / "voila-segmentation-lab-threshold-170.png"))
            print(f"Voilà: {before_ml} ml -> {after_ml} ml")
        finally:
            driver.quit()


# Appended to notebook 03 by the test: the viewer must answer HTTP and its
# websocket route from the kernel's own loop (top-level await lets it serve).
WEB_PROBE = r"""
import asyncio as _asyncio, json as _json, urllib.request as _rq

def _get(path):
    with _rq.urlopen(f"http://127.0.0.1:{web.port}{path}", timeout=10) as r:
        return r.status, r.read().decode(errors="replace")

_status, _page = await _asyncio.to_thread(_get, "/")
print("WEBPROBE " + _json.dumps({"status": _status, "trame": "trame" in _page.lower(),
                                 "before": float(before.mean()), "after": float(after.mean()),
                                 "changed": float(abs(before.astype(int) - after.astype(int)).mean()),
                                 "url": web.url, "html": web._repr_html_()}))
"""


def test_slicer_web_notebook_serves_and_drives_the_viewer(docker_engine, tmp_path):
    nb, outputs = _execute(docker_engine, tmp_path, "03-slicer-web-from-a-notebook.ipynb", WEB_PROBE,
                           environment={"JUPYTERHUB_SERVICE_PREFIX": "/user/student1/"})
    text = "".join(o.text for o in outputs if o.output_type == "stream")
    assert "MNI152-T1 at /user/student1/proxy/" in text, text
    probe = json.loads(re.search(r"WEBPROBE (.*)", text).group(1))
    assert probe["status"] == 200 and probe["trame"], probe
    # The viewer cell shows it through the user's own server, not a bare port.
    assert re.fullmatch(r"/user/student1/proxy/\d+/", probe["url"])
    assert f'src="{probe["url"]}"' in probe["html"]
    html_out = [o for o in nb.cells[3].outputs if "text/html" in o.get("data", {})]
    assert html_out and "<iframe" in html_out[0]["data"]["text/html"]
    # Window/level from Python changed the server-side picture, which shows the brain.
    assert probe["before"] > 5 and probe["changed"] > 5, probe
    assert "1 volume(s), dimensions (197, 233, 189)" in text
