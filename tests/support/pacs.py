"""A real Orthanc seeded with one study of two series made from the MNI
template (slicerhub.dicom.demo_study, the demo's study too), stored with
STOW-RS: the site PACS of the integration and e2e tests and of the
open-study benchmark.

The CT series covers only the upper part of the head (from CT_FIRST_SLICE
up), so the slice Slicer shows for it differs from the full template's (the
desktop's sample): a test can tell which one is on the screen.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from pydicom.dataset import Dataset

from slicerhub.devenv.orthanc import Orthanc
from slicerhub.dicom.demo_study import make_study
from slicerhub.dicom.stow import store
from slicerhub.dicom.synth import Geometry


@dataclass
class SeededPacs:
    orthanc: Orthanc
    study: str
    ct_series: str
    mr_series: str
    ct: list[Dataset]
    mr: list[Dataset]
    ct_geometry: Geometry
    mr_geometry: Geometry


@contextlib.contextmanager
def seeded_pacs(**orthanc_options):
    study = make_study()
    with Orthanc(**orthanc_options) as orthanc:
        store(orthanc.dicomweb_url, orthanc.auth, study.datasets)
        yield SeededPacs(orthanc, study.uid, study.ct_series, study.mr_series, study.ct, study.mr,
                         study.ct_geometry, study.mr_geometry)


def pacs_section(pacs: SeededPacs, groups: list[str]) -> dict:
    """The deployment file's `pacs:` for this Orthanc, letting GROUPS in."""
    return {"dicomweb_url": pacs.orthanc.dicomweb_url, "username": pacs.orthanc.username,
            "password_file": str(pacs.orthanc.password_file), "groups": groups}
