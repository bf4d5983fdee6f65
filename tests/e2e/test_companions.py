"""The Orthanc companion, end to end: the real hub, slapd, Docker and Chromium.

teacher1 starts the demo's teacher profile, which has an Orthanc companion;
their studies go into it over DICOMweb through the hub (as a browser or
Slicer's DICOMweb browser would) and are read back from inside the server on
127.0.0.1 (as Slicer does). Then: the studies outlive a server restart (the
storage is in the home); student2, who has a server of their own, reaches it
neither through the hub nor over the container network; student1, who
accepted a read-only link to teacher1's session, can read the studies and
cannot store or delete one. Where the MONAI Label image is built (make
monailabel-image), student1 starts a profile with a MONAI Label companion and
runs a scribbles segmentation through the hub.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import urllib.parse

import numpy as np
import pytest
import requests

import yaml

from slicerhub.devenv.images import build_with_parents
from slicerhub.dicom.demo_study import make_study
from tests.e2e.conftest import docker_hub
from tests.support.browser import browser, hub_login, page_picture, wait_for
from tests.support.hub import DEMO_CONFIG
from tests.support.kernel import KernelClient
from tests.support.monailabel import IMAGE as MONAI_IMAGE
from tests.support.share import accept, create_link
from tests.support.spawn import container, spawn_with_form, stop_server, wait_ready

pytestmark = pytest.mark.e2e

OWNER, VIEWER, OTHER = "teacher1", "student1", "student2"
PASSWORDS = {"teacher1": "teacher-pw", "student1": "student1-pw", "student2": "student2-pw"}
STUDIES_DIR = "/home/slicer/.local/share/slicerhub/orthanc"
MONAI_PROFILE = {"slug": "monai", "display_name": "Slicer + MONAI Label", "image": "slicerhub/slicer-core:dev",
                 "cpu_limit": 2, "mem_limit": "4G", "companions": ["monailabel"]}


def _session(hub, user):
    s, r = hub.login(user, PASSWORDS[user])
    assert r.status_code == 302, r.text
    return s


def _start(hub, session, user, profile=None):
    assert spawn_with_form(hub, session, profile).status_code == 302
    progress = wait_ready(hub, session, user, timeout=300)
    assert progress["ready"], progress["events"][-3:]
    return progress


def _orthanc(hub, user):
    return f"{hub.url}/user/{user}/orthanc"


def _get(url, token, **kw):
    return requests.get(url, headers={"Authorization": f"token {token}"}, timeout=60,
                        allow_redirects=False, **kw)


def _study_uids(hub, token):
    r = _get(_orthanc(hub, OWNER) + "/dicom-web/studies", token)
    assert r.status_code == 200, (r.status_code, r.text[:300])
    return sorted(s["0020000D"]["Value"][0] for s in r.json()) if r.text.strip() else []


def _inside(c, code: str) -> str:
    """Python in the user's server container, as the user (Slicer's side of the namespace)."""
    out = c.exec_run(["python3", "-c", code], user="1000", environment={"HOME": "/home/slicer"})
    assert out.exit_code == 0, out.output.decode()[-2000:]
    return out.output.decode()


@pytest.fixture(scope="module")
def hub(docker_client, tmp_path_factory):
    build_with_parents("orthanc")
    # The demo's profiles (the teacher's has an Orthanc) and one with MONAI Label.
    profiles = yaml.safe_load(DEMO_CONFIG.read_text())["profiles"] + [MONAI_PROFILE]
    with docker_hub(docker_client, tmp_path_factory.mktemp("companions"), name="comp", profiles=profiles) as hub:
        yield hub


@pytest.fixture(scope="module")
def owner(hub):
    session = _session(hub, OWNER)
    progress = _start(hub, session, OWNER, "teacher")
    token = hub.api_token(session, "owner")
    study = make_study()
    # STOW-RS through the hub: the proxy, the server's jupyter-server-proxy route, Orthanc.
    web = requests.Session()
    web.headers["Authorization"] = f"token {token}"
    from dicomweb_client import DICOMwebClient

    from slicerhub.dicom import stow

    client = DICOMwebClient(_orthanc(hub, OWNER) + "/dicom-web", session=web)
    for start in range(0, len(study.ct), stow.BATCH):
        client.store_instances([stow._with_preamble(ds) for ds in study.ct[start:start + stow.BATCH]])
    return {"session": session, "token": token, "study": study, "progress": progress}


def test_the_companion_runs_beside_the_server_as_the_user(hub, owner, docker_client):
    server = container(docker_client, hub, OWNER)
    companion = docker_client.containers.get(f"{hub.prefix}-{OWNER}-orthanc")
    assert companion.status == "running"
    assert companion.attrs["HostConfig"]["NetworkMode"] == f"container:{server.id}"
    assert companion.attrs["Config"]["User"] == "1000:100"
    assert any("Starting Orthanc beside your server" == e.get("message") for e in owner["progress"]["events"])
    # Orthanc's files are in the home volume, owned by the user.
    listing = server.exec_run(["stat", "-c", "%u:%g %n", STUDIES_DIR + "/storage", STUDIES_DIR + "/index"])
    assert listing.exit_code == 0, listing.output
    assert all(line.startswith("1000:100 ") for line in listing.output.decode().splitlines())


def test_studies_stored_through_the_hub_are_read_by_slicer_on_loopback(hub, owner, docker_client):
    study = owner["study"]
    assert _study_uids(hub, owner["token"]) == [study.uid]
    # Inside the server, where Slicer runs: DICOMweb on 127.0.0.1, no credentials.
    code = (
        "import os, json; from dicomweb_client import DICOMwebClient\n"
        "c = DICOMwebClient(os.environ['SLICERHUB_ORTHANC_URL'] + '/dicom-web')\n"
        f"series = c.search_for_series({study.uid!r})\n"
        f"first = c.retrieve_instance({study.uid!r}, {study.ct_series!r}, {str(study.ct[0].SOPInstanceUID)!r})\n"
        "print(json.dumps([len(series), str(first.SeriesDescription), list(first.pixel_array.shape)]))"
    )
    out = json.loads(_inside(container(docker_client, hub, OWNER), code).strip().splitlines()[-1])
    assert out == [1, "Head CT (upper)", [int(study.ct[0].Rows), int(study.ct[0].Columns)]]


async def _kernel(hub, token, code) -> str:
    kc = await KernelClient(f"{hub.url}/user/{OWNER}", token, "slicer").start()
    try:
        return "".join(o.get("text", "") for o in await kc.execute(code))
    finally:
        await kc.shutdown()


def test_the_slicer_kernel_loads_a_study_from_the_companion(hub, owner):
    study = owner["study"]
    code = f"""
import json
from vtkmodules.vtkCommonMath import vtkMatrix4x4
from slicerhub_slicer import load_study
node = load_study({study.uid!r}, source="orthanc")
m = vtkMatrix4x4(); node.GetIJKToRASMatrix(m)
print(json.dumps({{"ijk_to_ras": [[m.GetElement(i, j) for j in range(4)] for i in range(4)],
                  "dims": node.GetImageData().GetDimensions(), "name": node.GetName()}}))
"""
    text = asyncio.run(_kernel(hub, owner["token"], code))
    lines = [line for line in text.splitlines() if line.startswith("{")]
    assert lines, text[-2000:]
    out = json.loads(lines[-1])
    g = study.ct_geometry
    m = np.array(out["ijk_to_ras"])
    assert tuple(out["dims"]) == g.shape and out["name"] == "Head CT (upper)"
    assert np.allclose(m[:3, 3], g.origin, atol=1e-3)
    assert np.allclose(np.linalg.norm(m[:3, :3], axis=0), g.spacing, atol=1e-4)
    assert np.allclose(m[:3, :3] / g.spacing, g.directions, atol=1e-4)


def test_orthanc_explorer_opens_in_the_browser(hub, owner):
    with browser() as driver:
        hub_login(driver, hub, OWNER, PASSWORDS[OWNER])
        # Its "All patients" page (GET patients?expand through the route).
        driver.get(_orthanc(hub, OWNER) + "/app/explorer.html#find-patients")
        try:
            wait_for(lambda: "MNI152" in driver.find_element("tag name", "body").text, 120,
                     what="Orthanc Explorer listing the patient")
        finally:
            page_picture(driver, "companion-orthanc-explorer.png")


def test_another_user_cannot_reach_the_companion(hub, owner, docker_client):
    other = _session(hub, OTHER)
    _start(hub, other, OTHER)
    other_token = hub.api_token(other, "other")
    # Through the hub: another user's server is not theirs.
    r = _get(_orthanc(hub, OWNER) + "/dicom-web/studies", other_token)
    assert r.status_code in (403, 404), (r.status_code, r.text[:300])
    # Over the container network, from their own server: Orthanc takes loopback clients only.
    server = container(docker_client, hub, OWNER)
    ip = next(iter(server.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]
    code = (
        "import urllib.request, urllib.error\n"
        f"try:\n    r = urllib.request.urlopen('http://{ip}:8042/dicom-web/studies', timeout=20)\n"
        "    print('status', r.status, r.read()[:200])\n"
        "except urllib.error.HTTPError as e:\n    print('refused', e.code)\n"
        "except OSError as e:\n    print('unreachable', e)\n"
    )
    out = _inside(container(docker_client, hub, OTHER), code)
    assert "status" not in out and owner["study"].uid not in out, out
    assert "refused" in out or "unreachable" in out, out


def test_a_read_only_viewer_reads_and_cannot_write(hub, owner):
    link = create_link(hub, owner["token"])
    viewer = _session(hub, VIEWER)
    assert accept(hub, viewer, link["url"]).status_code == 200
    token = hub.api_token(viewer, "viewer", scopes=[f"access:servers!server={OWNER}/",
                                                     f"custom:jupyter_server:read:*!server={OWNER}/"])
    study = owner["study"]
    assert _study_uids(hub, token) == [study.uid]
    headers = {"Authorization": f"token {token}"}
    base = _orthanc(hub, OWNER)
    attempts = [
        requests.post(base + "/dicom-web/studies", data=b"--x--", headers={
            **headers, "Content-Type": 'multipart/related; type="application/dicom"; boundary=x'}, timeout=60),
        requests.post(base + "/instances", data=b"DICM", headers=headers, timeout=60),
        requests.post(base + "/tools/find", json={"Level": "Study", "Query": {}}, headers=headers, timeout=60),
        requests.delete(base + "/studies/" + "0" * 8, headers=headers, timeout=60),
        requests.get(base + "/studies/../tools/log-level", headers=headers, timeout=60),
    ]
    assert [a.status_code for a in attempts] == [403] * len(attempts), [a.text[:200] for a in attempts]
    # Deleting the real study (its Orthanc ID from the owner's view) is refused too.
    studies = _get(base + "/studies", owner["token"]).json()
    assert len(studies) == 1
    r = requests.delete(base + "/studies/" + studies[0], headers=headers, timeout=60)
    assert r.status_code == 403
    assert _study_uids(hub, owner["token"]) == [study.uid]


def test_studies_outlive_a_server_restart(hub, owner, docker_client):
    stop_server(hub, owner["token"], OWNER, timeout=120)
    assert not docker_client.containers.list(all=True, filters={"name": f"{hub.prefix}-{OWNER}-orthanc"})
    _start(hub, owner["session"], OWNER, "teacher")
    wait_for(lambda: _get(_orthanc(hub, OWNER) + "/system", owner["token"]).status_code == 200, 120,
             what="Orthanc answering after the restart")
    assert _study_uids(hub, owner["token"]) == [owner["study"].uid]


def _monailabel_built() -> bool:
    return subprocess.run(["docker", "image", "inspect", MONAI_IMAGE], capture_output=True).returncode == 0


@pytest.mark.skipif(not _monailabel_built(), reason=f"{MONAI_IMAGE} is not built (make monailabel-image)")
def test_monailabel_segments_through_the_hub(hub, tmp_path):
    """student1's MONAI Label companion: /info/ and a Histogram+GraphCut inference on
    the sample volume, both through the hub's proxy and the server's monailabel/ route."""
    import nibabel

    from slicerhub.dicom.synth import mni_volume
    from tests.support.monailabel import BG_SCRIBBLE, FG_SCRIBBLE, TASK

    session = _session(hub, VIEWER)
    _start(hub, session, VIEWER, "monai")
    token = hub.api_token(session, "monai")
    base = f"{hub.url}/user/{VIEWER}/monailabel"
    info = wait_for(lambda: (r := _get(base + "/info/", token)).status_code == 200 and r.json(), 900,
                    what="MONAI Label's /info/ through the hub")
    assert info["models"][TASK]["type"] == "scribbles"

    volume, affine = mni_volume()
    nibabel.save(nibabel.Nifti1Image(volume, affine), tmp_path / "mni.nii.gz")
    scribbles = np.zeros(volume.shape, np.uint8)
    x, y, z = (n // 2 for n in volume.shape)
    scribbles[x - 15:x + 15, y - 15:y + 15, z - 5:z + 5] = FG_SCRIBBLE
    scribbles[:12, :12, :] = BG_SCRIBBLE
    nibabel.save(nibabel.Nifti1Image(scribbles, affine), tmp_path / "scribbles.nii.gz")
    headers = {"Authorization": f"token {token}"}
    with open(tmp_path / "mni.nii.gz", "rb") as f:
        r = requests.put(base + "/datastore/image", params={"image": "mni"}, headers=headers,
                         files={"file": ("mni.nii.gz", f)}, timeout=600)
    assert r.status_code == 200, r.text[:500]
    with open(tmp_path / "scribbles.nii.gz", "rb") as f:
        r = requests.post(base + "/infer/" + urllib.parse.quote(TASK, safe=""), headers=headers,
                          params={"image": "mni", "output": "image"}, files={"label": ("scribbles.nii.gz", f)},
                          data={"params": "{}"}, timeout=900)
    assert r.status_code == 200, r.text[:500]
    (tmp_path / "result.nii.gz").write_bytes(r.content)
    seg = np.asarray(nibabel.load(tmp_path / "result.nii.gz").dataobj)
    assert seg.shape == volume.shape
    assert seg[x, y, z] == 1 and seg[0, 0, z] == 0
    # The datastore is in student1's home.
    assert "mni" in _get(base + "/datastore/?output=all", token).text
