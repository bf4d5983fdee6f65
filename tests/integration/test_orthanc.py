"""A real Orthanc 1.10 with the DICOMweb 1.7 plugin (Debian's, started here by
slicerhub.devenv.orthanc) holding a CT and an MR series of the MNI152
template in one study (slicerhub.dicom.synth), stored over STOW-RS with
dicomweb-client (slicerhub.dicom.stow): QIDO-RS finds the study and both
series, WADO-RS gives back every instance with the pixel data that was sent,
and nothing answers without the right password.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import socket
import stat
import struct

import pydicom
import pytest
import requests

from slicerhub.devenv.orthanc import Orthanc, OrthancError
from slicerhub.dicom import stow, synth

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pacs():
    with Orthanc() as server:
        yield server


@pytest.fixture(scope="module")
def study(pacs):
    volume, affine = synth.mni_volume()
    uid = synth.generate_uid()
    ct = synth.make_series(volume, affine, "CT", study_uid=uid, series_number=1)
    mr = synth.make_series(volume, affine, "MR", study_uid=uid, series_number=2)
    responses = stow.store(pacs.dicomweb_url, pacs.auth, ct + mr)
    return uid, ct, mr, responses


@pytest.fixture(scope="module")
def web(pacs):
    return stow.client(pacs.dicomweb_url, pacs.auth)


def value(item: dict, tag: str):
    """The first value of TAG (8 hex digits) in a DICOM JSON object."""
    return item[tag]["Value"][0]


def test_harness_config_and_password_file(pacs):
    assert pacs.url.startswith("http://127.0.0.1:") and pacs.dicomweb_url == pacs.url + "/dicom-web"
    mode = os.stat(pacs.password_file).st_mode
    assert stat.S_IMODE(mode) == 0o600
    assert pacs.password_file.read_text().strip() == pacs.password
    system = pacs.get("/system").json()
    assert system["Version"] == "1.10.1" and system["HttpPort"] == pacs.port
    assert pacs.get("/plugins/dicom-web").json()["Version"] == "1.7"
    config = pacs.config()
    assert config["Plugins"] == ["/usr/share/orthanc/plugins/libOrthancDicomWeb.so"]
    assert config["DicomServerEnabled"] is False and config["RemoteAccessAllowed"] is False
    assert config["StorageDirectory"].startswith(str(pacs.workdir))


def test_stow_stores_every_instance(study, pacs):
    uid, ct, mr, responses = study
    referenced = [item.ReferencedSOPInstanceUID for r in responses for item in r.ReferencedSOPSequence]
    assert sorted(referenced) == sorted(ds.SOPInstanceUID for ds in ct + mr)
    # Orthanc sends an empty FailedSOPSequence with every response.
    assert not [r for r in responses if r.get("FailedSOPSequence")]
    stats = pacs.get("/statistics").json()
    assert (stats["CountStudies"], stats["CountSeries"], stats["CountInstances"]) == (1, 2, 378)


def test_qido_finds_the_study_and_both_series(study, web):
    uid, ct, mr, _ = study
    studies = web.search_for_studies(search_filters={"PatientID": "SLH-0001"})
    assert [value(s, "0020000D") for s in studies] == [uid]
    found = studies[0]
    assert sorted(found["00080061"]["Value"]) == ["CT", "MR"]  # ModalitiesInStudy
    assert value(found, "00201206") == 2 and value(found, "00201208") == 378
    assert value(found, "00100010") == {"Alphabetic": "MNI152^Template"}
    assert value(found, "00080050") == "SLH0001" and value(found, "00200010") == "1"

    series = {value(s, "00080060"): s for s in web.search_for_series(uid)}
    assert set(series) == {"CT", "MR"}
    for modality, sent in (("CT", ct), ("MR", mr)):
        s = series[modality]
        assert value(s, "0020000E") == sent[0].SeriesInstanceUID
        assert value(s, "0020000D") == uid
        assert value(s, "00201209") == 189  # NumberOfSeriesRelatedInstances
        assert value(s, "00200011") == sent[0].SeriesNumber
    assert web.search_for_studies(search_filters={"PatientID": "nobody"}) == []


def test_wado_returns_every_instance_with_the_pixels_sent(study, web):
    uid, ct, mr, _ = study
    for sent in (ct, mr):
        got = web.retrieve_series(uid, sent[0].SeriesInstanceUID)
        assert len(got) == len(sent)
        by_uid = {ds.SOPInstanceUID: ds for ds in got}
        assert set(by_uid) == {ds.SOPInstanceUID for ds in sent}
        for original in sent:
            back = by_uid[original.SOPInstanceUID]
            assert back.PixelData == original.PixelData
            assert back.pixel_array.tobytes() == original.pixel_array.tobytes()
            assert back.ImagePositionPatient == original.ImagePositionPatient
            assert back.ImageOrientationPatient == original.ImageOrientationPatient
            assert (back.RescaleSlope, back.RescaleIntercept) == (original.RescaleSlope, original.RescaleIntercept)
            assert back.SOPClassUID == original.SOPClassUID


def test_wado_series_metadata(study, web):
    uid, ct, _, _ = study
    metadata = web.retrieve_series_metadata(uid, ct[0].SeriesInstanceUID)
    assert len(metadata) == 189
    sent = {ds.SOPInstanceUID: ds for ds in ct}
    for item in metadata:
        ds = pydicom.Dataset.from_json(item, bulk_data_uri_handler=lambda *a: b"")
        original = sent[ds.SOPInstanceUID]
        assert ds.Modality == "CT" and ds.InstanceNumber == original.InstanceNumber
        assert [float(v) for v in ds.ImagePositionPatient] == [float(v) for v in original.ImagePositionPatient]
        assert [float(v) for v in ds.PixelSpacing] == [1.0, 1.0] and float(ds.RescaleIntercept) == -1000.0
        assert ds.FrameOfReferenceUID == original.FrameOfReferenceUID
        assert "7FE00010" not in item or "BulkDataURI" in item["7FE00010"]  # no pixel data inline


def test_one_instance_by_wado(study, web):
    uid, _, mr, _ = study
    ds = web.retrieve_instance(uid, mr[94].SeriesInstanceUID, mr[94].SOPInstanceUID)
    assert ds.pixel_array.tobytes() == mr[94].pixel_array.tobytes()


def test_wrong_or_no_password_is_refused(study, pacs):
    uid = study[0]
    for path in ("/system", "/dicom-web/studies", f"/dicom-web/studies/{uid}/series", "/app/explorer.html"):
        assert requests.get(pacs.url + path, timeout=10).status_code == 401, path
        assert requests.get(pacs.url + path, auth=(pacs.username, "wrong"), timeout=10).status_code == 401, path
        assert requests.get(pacs.url + path, auth=("admin", pacs.password), timeout=10).status_code == 401, path
    with pytest.raises(requests.HTTPError) as err:
        stow.client(pacs.dicomweb_url, (pacs.username, "wrong")).search_for_studies()
    assert err.value.response.status_code == 401
    with pytest.raises(requests.HTTPError) as err:
        stow.store(pacs.dicomweb_url, None, study[1][:1])
    assert err.value.response.status_code == 401


def _local_non_loopback_ipv4() -> str | None:
    """An IPv4 address of this machine's own interfaces other than loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in socket.if_nameindex():
            try:
                packed = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", name.encode()[:15]))  # SIOCGIFADDR
            except OSError:
                continue
            address = socket.inet_ntoa(packed[20:24])
            if not ipaddress.ip_address(address).is_loopback:
                return address
    return None


def test_remote_access_only_when_a_non_loopback_host_is_asked_for(pacs):
    address = _local_non_loopback_ipv4()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    # The loopback harness: Orthanc listens everywhere but refuses other peers
    # (with a 401, right credentials or not).
    assert pacs.get("/system").status_code == 200
    r = requests.get(f"http://{address}:{pacs.port}/system", auth=pacs.auth, timeout=10)
    assert r.status_code == 401
    with Orthanc(host=address) as reachable:
        assert reachable.url == f"http://{address}:{reachable.port}"
        assert reachable.get("/system").status_code == 200
        assert requests.get(reachable.url + "/system", timeout=10).status_code == 401


def test_a_failed_start_says_why():
    # Orthanc 1.10 logs a missing plugin and starts anyway: the harness refuses it.
    with pytest.raises(OrthancError, match="expected only the dicom-web plugin") as err:
        with Orthanc(settings={"Plugins": ["/nonexistent/libnothing.so"]}):
            pass
    assert "Inexistent path to plugins: /nonexistent/libnothing.so" in str(err.value)
    # A port in use: Orthanc exits, its log says so.
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        port = busy.getsockname()[1]
        with pytest.raises(OrthancError, match="exited") as err:
            with Orthanc(port=port):
                pass
    assert f"already in use:  (port = {port})" in str(err.value)
