"""A real Orthanc seeded with one study of two series made from the MNI
template (slicerhub.dicom.synth), stored with STOW-RS: the site PACS of the
integration and e2e tests and of the open-study benchmark.

The CT series covers only the upper part of the head (from CT_FIRST_SLICE
up), so the slice Slicer shows for it differs from the full template's (the
desktop's sample): a test can tell which one is on the screen.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset

from slicerhub.devenv.orthanc import Orthanc
from slicerhub.dicom.stow import store
from slicerhub.dicom.synth import Geometry, expected_geometry, generate_uid, make_series, mni_volume

CT_FIRST_SLICE = 90


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


def cropped_ct_volume() -> tuple[np.ndarray, np.ndarray]:
    volume, affine = mni_volume()
    affine = affine.copy()
    affine[:3, 3] = (affine @ np.array([0, 0, CT_FIRST_SLICE, 1.0]))[:3]
    return volume[:, :, CT_FIRST_SLICE:], affine


@contextlib.contextmanager
def seeded_pacs(**orthanc_options):
    volume, affine = mni_volume()
    ct_volume, ct_affine = cropped_ct_volume()
    study = generate_uid()
    ct = make_series(ct_volume, ct_affine, "CT", study_uid=study, series_number=1,
                     series_description="Head CT (upper)")
    mr = make_series(volume, affine, "MR", study_uid=study, series_number=2, series_description="T1 MR")
    with Orthanc(**orthanc_options) as orthanc:
        store(orthanc.dicomweb_url, orthanc.auth, ct + mr)
        yield SeededPacs(orthanc, study, str(ct[0].SeriesInstanceUID), str(mr[0].SeriesInstanceUID), ct, mr,
                         expected_geometry(ct_volume, ct_affine), expected_geometry(volume, affine))
