"""The MONAI Label companion image (images/monailabel), run as the spawner runs it.

Not built by `make test` (the PyPI torch wheel brings several GB of CUDA
packages): build it with `make monailabel-image`; without it this module
skips. Nothing here reaches a network: the companion runs with its user's
server's network namespace, here that of a stand-in "pod" container on an
--internal Docker network of its own (no route out), and the checks run
inside that namespace (docker exec into the pod), as 3D Slicer in the user's
server would reach it.

Checked: the server starts as 1000:100 (all capabilities dropped, as the
spawner runs companions) with no network and no downloaded
weights, and GET /info/ lists the scribbles infer task; the MNI152 T1
template (slicerhub.dicom.synth) uploaded into the datastore and a
Histogram+GraphCut inference with foreground/background scribbles returns a
NIfTI label map of the volume's shape with both labels in it; the datastore
lives in the home volume under $SLICERHUB_COMPANION_DATA and still lists the
image after the companion is recreated on the same volume; the server
answers on 127.0.0.1 and refuses connections on the pod's own network
address.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from tests.support.monailabel import BG_SCRIBBLE, FG_SCRIBBLE, IMAGE, TASK

PORT = 8000
DATA = "/home/slicer/.local/share/slicerhub/monailabel"
# Generous: the first start imports torch, monai and itk and builds the app;
# a slow machine may need minutes.
READY_TIMEOUT_S = 900
INFER_TIMEOUT_S = 900


def _docker(*argv: str, check: bool = True, timeout: float = 300, input: str | None = None,
            ) -> subprocess.CompletedProcess:
    proc = subprocess.run(["docker", *argv], capture_output=True, text=True, timeout=timeout,
                          input=input, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(argv)} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def _image_present() -> bool:
    try:
        return _docker("image", "inspect", IMAGE, check=False, timeout=60).returncode == 0
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return False


pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not _image_present(),
                       reason=f"image {IMAGE} not built (make monailabel-image; not part of make test)"),
]


def _pod_python(pod: str, script: str, timeout: float) -> dict:
    """Run SCRIPT with the image's Python inside POD's network namespace; its last stdout line, as JSON."""
    proc = _docker("exec", "-i", pod, "python", "-", input=textwrap.dedent(script), timeout=timeout,
                   check=False)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise AssertionError(f"script in {pod} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n"
                             f"{proc.stderr[-3000:]}")
    return json.loads(lines[-1])


class Companion:
    """The pod stand-in, the home volume, and the companion container that shares the pod's network."""

    def __init__(self, tag: str):
        self.network = f"mltest-{tag}"
        self.pod = f"mltest-{tag}-pod"
        self.volume = f"mltest-{tag}-home"
        self.container: str | None = None
        self.starts = 0

    def create_pod(self) -> None:
        _docker("network", "create", "--internal", self.network)
        _docker("volume", "create", self.volume)
        # The user's server stands in: any long-running process holding the
        # network namespace. The companion image has the Python (and requests)
        # the checks use.
        _docker("run", "-d", "--name", self.pod, "--network", self.network, "--user", "1000:100",
                "--entrypoint", "sleep", IMAGE, "infinity")

    def start(self) -> None:
        self.starts += 1
        self.container = f"{self.pod}-monailabel-{self.starts}"
        _docker("run", "-d", "--name", self.container, "--network", f"container:{self.pod}",
                "--user", "1000:100", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
                "-v", f"{self.volume}:/home/slicer",
                "-e", f"SLICERHUB_COMPANION_PORT={PORT}", "-e", f"SLICERHUB_COMPANION_DATA={DATA}",
                IMAGE)

    def logs(self) -> str:
        if not self.container:
            return ""
        p = _docker("logs", "--tail", "80", self.container, check=False)
        return (p.stdout + p.stderr)[-6000:]

    def running(self) -> bool:
        p = _docker("inspect", "-f", "{{.State.Running}}", self.container, check=False)
        return p.stdout.strip() == "true"

    def wait_ready(self) -> dict:
        """Poll GET /info/ from inside the pod until it answers; its JSON."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        probe = f"""
            import json, requests
            try:
                r = requests.get("http://127.0.0.1:{PORT}/info/", timeout=30)
                print(json.dumps({{"status": r.status_code, "info": r.json() if r.ok else r.text[:500]}}))
            except requests.RequestException as e:
                print(json.dumps({{"status": None, "error": repr(e)}}))
        """
        last = None
        while time.monotonic() < deadline:
            if not self.running():
                pytest.fail(f"companion {self.container} exited before answering:\n{self.logs()}")
            last = _pod_python(self.pod, probe, timeout=120)
            if last["status"] == 200:
                return last["info"]
            time.sleep(5)
        pytest.fail(f"MONAI Label did not answer GET /info/ on 127.0.0.1:{PORT} within "
                    f"{READY_TIMEOUT_S} s (last: {last}):\n{self.logs()}")

    def stop(self) -> None:
        if self.container:
            _docker("rm", "-f", self.container, check=False)
            self.container = None

    def remove(self) -> None:
        self.stop()
        _docker("rm", "-f", self.pod, check=False)
        _docker("volume", "rm", "-f", self.volume, check=False)
        _docker("network", "rm", self.network, check=False)


@pytest.fixture(scope="module")
def companion():
    c = Companion(uuid.uuid4().hex[:8])
    try:
        c.create_pod()
        c.start()
        yield c
    finally:
        c.remove()


@pytest.fixture(scope="module")
def mni_files(tmp_path_factory) -> tuple[Path, Path, tuple[int, ...]]:
    """The MNI152 T1 template and a scribbles label image of its grid (NIfTI)."""
    import nibabel

    from slicerhub.dicom.synth import mni_volume

    volume, affine = mni_volume()
    out = tmp_path_factory.mktemp("monailabel")
    image = out / "mni.nii.gz"
    nibabel.save(nibabel.Nifti1Image(volume, affine), image)
    scribbles = np.zeros(volume.shape, np.uint8)
    x, y, z = (s // 2 for s in volume.shape)
    # Foreground: a block of brain tissue at the centre of the head.
    scribbles[x - 15:x + 15, y - 15:y + 15, z - 5:z + 5] = FG_SCRIBBLE
    # Background: the air of two corners, outside the head.
    scribbles[:12, :12, :] = BG_SCRIBBLE
    scribbles[-12:, -12:, :] = BG_SCRIBBLE
    assert volume[scribbles == BG_SCRIBBLE].max() < volume[scribbles == FG_SCRIBBLE].min(), \
        "scribbles must mark air as background and tissue as foreground"
    label = out / "scribbles.nii.gz"
    nibabel.save(nibabel.Nifti1Image(scribbles, affine), label)
    return image, label, volume.shape


def test_info_lists_scribbles_task_without_weights(companion):
    info = companion.wait_ready()
    infers = info.get("models", {})
    assert TASK in infers, f"{TASK} not among the infer tasks: {sorted(infers)}"
    assert infers[TASK].get("type") == "scribbles", infers[TASK]
    # It runs as the spawner's user, and its data is on the home volume.
    ident = _docker("exec", companion.container, "id").stdout
    assert "uid=1000" in ident and "gid=100" in ident, ident
    listing = _docker("exec", companion.container, "ls", "-ln", f"{DATA}").stdout
    assert "datastore" in listing, listing


def test_histogram_graphcut_on_mni(companion, mni_files):
    image, label, shape = mni_files
    companion.wait_ready()
    _docker("cp", str(image), f"{companion.pod}:/tmp/mni.nii.gz")
    _docker("cp", str(label), f"{companion.pod}:/tmp/scribbles.nii.gz")
    result = _pod_python(companion.pod, f"""
        import json, urllib.parse, requests
        base = "http://127.0.0.1:{PORT}"
        with open("/tmp/mni.nii.gz", "rb") as f:
            r = requests.put(base + "/datastore/image", params={{"image": "mni"}},
                             files={{"file": ("mni.nii.gz", f)}}, timeout=600)
        r.raise_for_status()
        with open("/tmp/scribbles.nii.gz", "rb") as f:
            r = requests.post(base + "/infer/" + urllib.parse.quote({TASK!r}, safe=""),
                              params={{"image": "mni", "output": "image"}},
                              files={{"label": ("scribbles.nii.gz", f)}},
                              data={{"params": json.dumps({{}})}}, timeout={INFER_TIMEOUT_S})
        if r.ok:
            open("/tmp/result.nii.gz", "wb").write(r.content)
        print(json.dumps({{"status": r.status_code, "type": r.headers.get("content-type"),
                           "bytes": len(r.content), "text": "" if r.ok else r.text[:2000]}}))
    """, timeout=INFER_TIMEOUT_S + 120)
    assert result["status"] == 200, f"{result}\n{companion.logs()}"

    import nibabel

    out = image.parent / "result.nii.gz"
    _docker("cp", f"{companion.pod}:/tmp/result.nii.gz", str(out))
    result_img = nibabel.load(out)
    seg = np.asarray(result_img.dataobj)
    assert seg.shape == shape, f"label map shape {seg.shape}, volume {shape}"
    # On the volume's own grid (MONAI Label restores it from its resampling).
    np.testing.assert_allclose(result_img.affine, nibabel.load(image).affine, atol=1e-3)
    values, counts = np.unique(seg, return_counts=True)
    found = dict(zip(values.tolist(), counts.tolist()))
    assert found.get(0, 0) > 0 and found.get(1, 0) > 0, f"label values and counts: {found}"
    # Foreground is where the tissue scribble is, background where the air ones are.
    x, y, z = (s // 2 for s in shape)
    assert seg[x, y, z] == 1 and seg[0, 0, z] == 0, found


def test_datastore_persists_across_recreation(companion, mni_files):
    companion.wait_ready()
    before = _datastore_ids(companion)
    if "mni" not in before:
        pytest.fail(f"datastore has no 'mni' before the restart (did the upload test run?): {before}")
    companion.stop()
    companion.start()
    companion.wait_ready()
    after = _datastore_ids(companion)
    assert "mni" in after, f"datastore after recreating the companion: {after}"
    listing = _docker("exec", companion.container, "ls", f"{DATA}/datastore").stdout
    assert "mni.nii.gz" in listing, listing


def _datastore_ids(companion) -> list[str]:
    r = _pod_python(companion.pod, f"""
        import json, requests
        r = requests.get("http://127.0.0.1:{PORT}/datastore/", params={{"output": "all"}}, timeout=60)
        r.raise_for_status()
        print(json.dumps(sorted(r.json().get("objects", {{}}))))
    """, timeout=180)
    return r


def test_listens_on_loopback_only(companion):
    companion.wait_ready()
    r = _pod_python(companion.pod, f"""
        import json, socket
        addr = socket.gethostbyname(socket.gethostname())
        out = {{"addr": addr}}
        for host in ("127.0.0.1", addr):
            s = socket.socket()
            s.settimeout(10)
            try:
                s.connect((host, {PORT}))
                out[host] = "open"
            except OSError as e:
                out[host] = type(e).__name__
            finally:
                s.close()
        print(json.dumps(out))
    """, timeout=120)
    addr = r["addr"]
    assert not addr.startswith("127."), f"the pod has no non-loopback address to try: {r}"
    assert r["127.0.0.1"] == "open", r
    assert r[addr] == "ConnectionRefusedError", f"the server answers on {addr}: {r}"
