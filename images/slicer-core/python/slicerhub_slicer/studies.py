"""Studies from the site's PACS: retrieved over DICOMweb into the home, read by Slicer.

The server reaches the PACS only through SlicerHub's gateway
(``$SLICERHUB_PACS_URL``, with the server's own ``$JUPYTERHUB_API_TOKEN``):
the gateway decides who may see the PACS and keeps its credentials.

A series lands in ``~/.local/share/slicerhub/dicom/<StudyInstanceUID>/<SeriesInstanceUID>/``
only when every instance of it has arrived (written to a hidden folder first,
then renamed), so a folder there is always a whole series; a second open of
the same series reads that folder and asks the PACS nothing (the gateway
still checks, with a search, that its owner may see the study). The folder is
hidden: Jupyter serves no hidden files, so viewers of a shared session, who
may read the home, cannot read patients' images from it. Slicer's own DICOM
series reader (ITK/GDCM, through the volumes logic) turns the folder into a
volume node, with spacing, origin and direction from the DICOM.

In a notebook on the Slicer kernel::

    from slicerhub_slicer import load_study
    node = load_study("1.2.826.0.1.3680043.8.498.1")      # the study's first image series
    node = load_study(uid, source="orthanc")               # from the user's own Orthanc companion

The Orthanc companion (a profile's ``companions: [orthanc]``) runs in this
server's network namespace: ``$SLICERHUB_ORTHANC_URL`` on 127.0.0.1, no
credentials, nobody else's data.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import requests

UID = re.compile(r"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))+")
# Series Slicer's volume reader can show (not reports, presentation states, segmentations…).
IMAGE_MODALITIES = {"CT", "MR", "PT", "NM", "US", "CR", "DX", "MG", "XA", "RF", "OT"}
# Where the desktop application picks up what to show (see desktop.py).
DESKTOP_QUEUE = Path.home() / ".local" / "state" / "slicerhub" / "desktop-open"


class StudyError(Exception):
    """A study cannot be retrieved; `status` is the HTTP status that says why (400, 403, 404, 502…)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Series:
    study: str
    series: str
    folder: Path
    description: str
    modality: str
    instances: int


def check_uid(uid: str | None, what: str) -> str:
    if not uid or len(uid) > 64 or not UID.fullmatch(uid):
        raise StudyError(400, f"{what} must be a DICOM UID (digits and dots, at most 64), not {str(uid)[:80]!r}")
    return uid


def dicom_root() -> Path:
    return Path(os.environ.get("SLICERHUB_DICOM_DIR", Path.home() / ".local" / "share" / "slicerhub" / "dicom"))


def _gateway() -> tuple[str, requests.Session]:
    url = os.environ.get("SLICERHUB_PACS_URL")
    if not url:
        raise StudyError(503, "this deployment has no PACS (no SLICERHUB_PACS_URL in the server)")
    session = requests.Session()
    session.headers["Authorization"] = f"token {os.environ.get('JUPYTERHUB_API_TOKEN', '')}"
    return url.rstrip("/"), session


SOURCES = ("pacs", "orthanc")


def client(source: str = "pacs"):
    """A dicomweb-client on the gateway, as this server's owner, or on the Orthanc companion."""
    from dicomweb_client.api import DICOMwebClient

    if source == "orthanc":
        url = os.environ.get("SLICERHUB_ORTHANC_URL")
        if not url:
            raise StudyError(503, "this server has no Orthanc companion (its profile has no "
                             "`companions: [orthanc]`)")
        return DICOMwebClient(url=url.rstrip("/") + "/dicom-web")
    if source != "pacs":
        raise StudyError(400, f"source must be one of {', '.join(SOURCES)}, not {str(source)[:40]!r}")
    url, session = _gateway()
    return DICOMwebClient(url=url + "/dicom-web", session=session)


def claim_ticket(ticket: str) -> tuple[str, str | None]:
    """The study (and series) the owner's click on the gateway's page chose; once per ticket."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{20,64}", ticket or ""):
        raise StudyError(400, "ticket= is missing or malformed: open the study from its link")
    url, session = _gateway()
    with _answers("claiming the ticket"):
        r = session.post(f"{url}/api/tickets/{ticket}", timeout=60)
        r.raise_for_status()
        claimed = r.json()
    return check_uid(claimed.get("study"), "study"), claimed.get("series") and check_uid(claimed["series"], "series")


@contextlib.contextmanager
def _answers(what: str):
    """The gateway's refusals as StudyError with its message (it answers JSON)."""
    try:
        yield
    except requests.HTTPError as e:
        status = e.response.status_code if e.response is not None else 502
        try:
            message = e.response.json().get("message") or str(e)
        except (ValueError, AttributeError):
            message = str(e)
        raise StudyError(status if status in (400, 403, 404) else 502, f"{what}: {message}") from None
    except requests.RequestException as e:
        raise StudyError(502, f"{what}: the PACS gateway does not answer ({e})") from None


def _tag(item: dict, tag: str, default=""):
    values = (item.get(tag) or {}).get("Value") or [default]
    return values[0]


def series_of(study: str, series: str | None = None, dicomweb=None) -> list[dict]:
    """QIDO: the image series of STUDY (or just SERIES), as DICOM JSON."""
    check_uid(study, "study")
    query = {"SeriesInstanceUID": check_uid(series, "series")} if series else None
    dicomweb = dicomweb or client()
    with _answers("searching the PACS"):
        found = dicomweb.search_for_series(
            study_instance_uid=study, search_filters=query,
            fields=["SeriesDescription", "Modality", "NumberOfSeriesRelatedInstances"])
    if not found:
        raise StudyError(404, f"the PACS has no study {study}" if not series else
                         f"study {study} has no series {series}")
    images = [s for s in found if _tag(s, "00080060") in IMAGE_MODALITIES]
    if not images:
        raise StudyError(404, f"study {study} has no image series Slicer can show")
    return images


def retrieve(study: str, series: str | None = None, source: str = "pacs") -> list[Series]:
    """Every image series of STUDY (or only SERIES) as a whole folder under dicom_root()."""
    dicomweb = client(source)
    out = []
    for item in series_of(study, series, dicomweb):
        uid = _tag(item, "0020000E")
        check_uid(uid, "the PACS's SeriesInstanceUID")
        folder = dicom_root() / study / uid
        if not folder.is_dir():
            _fetch_series(dicomweb, study, uid, folder)
        out.append(Series(study, uid, folder, str(_tag(item, "0008103E", "")), str(_tag(item, "00080060")),
                          len(list(folder.glob("*.dcm")))))
    return out


def _fetch_series(dicomweb, study: str, series: str, folder: Path) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    incoming = Path(tempfile.mkdtemp(prefix=".incoming-", dir=folder.parent))
    try:
        written = []
        with _answers(f"retrieving series {series}"):
            for ds in dicomweb.iter_series(study_instance_uid=study, series_instance_uid=series):
                if str(ds.get("SeriesInstanceUID", "")) != series:
                    raise StudyError(502, f"the PACS sent an instance of another series for {series}")
                sop = check_uid(str(ds.get("SOPInstanceUID", "")), "the PACS's SOPInstanceUID")
                path = incoming / f"{sop}.dcm"
                try:
                    ds.save_as(path, enforce_file_format=True)
                except (ValueError, AttributeError, TypeError) as e:  # e.g. no file meta information
                    raise StudyError(502, f"the PACS sent instance {sop} of series {series} in a form that "
                                     f"is not a DICOM file ({e})") from None
                written.append((_position(ds), path))
        if not written:
            raise StudyError(404, f"series {series} has no instances")
        # Named in slice order: Slicer's reader takes the geometry's origin from
        # the file it is given (as Slicer's DICOM module, which sorts them too).
        for index, (_, path) in enumerate(sorted(written, key=lambda item: item[0])):
            path.rename(incoming / f"{index:05d}.dcm")
        try:
            incoming.rename(folder)
        except OSError:
            if not folder.is_dir():  # another open of the same series won the race: keep theirs
                raise
    finally:
        shutil.rmtree(incoming, ignore_errors=True)


def _position(ds) -> tuple[float, int]:
    """Where a slice lies along the series' normal (then its InstanceNumber)."""
    number = int(ds.get("InstanceNumber") or 0)
    try:
        row, col = np.array(ds.ImageOrientationPatient[:3], float), np.array(ds.ImageOrientationPatient[3:], float)
        return float(np.dot(np.array(ds.ImagePositionPatient, float), np.cross(row, col))), number
    except (AttributeError, ValueError, TypeError):  # no geometry (a 2D image): the order as numbered
        return 0.0, number


def first_file(series: Series) -> Path:
    files = sorted(series.folder.glob("*.dcm"))
    if not files:
        raise StudyError(404, f"series {series.series} has no instances in {series.folder}")
    return files[0]


def show_in_desktop(series: Series) -> Path:
    """Ask the desktop application to show SERIES (it polls DESKTOP_QUEUE)."""
    DESKTOP_QUEUE.mkdir(parents=True, exist_ok=True)
    request = {"file": str(first_file(series)), "name": series.description or series.series,
               "study": series.study, "series": series.series, "time": time.time()}
    fd, tmp = tempfile.mkstemp(prefix=".", suffix=".json", dir=DESKTOP_QUEUE)
    with os.fdopen(fd, "w") as f:
        json.dump(request, f)
    target = DESKTOP_QUEUE / f"{time.time_ns()}.json"
    os.replace(tmp, target)
    return target


def load_study(study: str, series: str | None = None, session=None, source: str = "pacs"):
    """Retrieve STUDY (or one SERIES of it) and load it into the Slicer scene.

    SOURCE: ``"pacs"`` (the site's, through the gateway) or ``"orthanc"`` (the
    server's Orthanc companion).

    Returns the volume node of the first image series (all series are loaded;
    the first is shown in the views).
    """
    from . import session as _session

    s = session or _session.current()
    nodes = []
    for item in retrieve(study, series, source):
        name = item.description or item.series
        nodes.append(s.load_volume(first_file(item), name=name))
    s.show_volume(nodes[0])
    return nodes[0]
