"""The site PACS's study for `make demo` and the tests: one patient, one study
of two series made from the MNI152 template (slicerhub.dicom.synth), stored
with STOW-RS (slicerhub.dicom.stow).

The CT series covers only the upper part of the head (from CT_FIRST_SLICE
up), so the slice Slicer shows for it differs from the full template's (the
desktop's sample): a test can tell which one is on the screen. The MR series
is the whole template.

Usage::

    study = make_study()
    store(pacs.dicomweb_url, pacs.auth, study.datasets)
    study.uid, study.ct_series, study.mr_series
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset

from .synth import Geometry, expected_geometry, generate_uid, make_series, mni_volume

CT_FIRST_SLICE = 90


@dataclass
class Study:
    uid: str
    ct: list[Dataset]
    mr: list[Dataset]
    ct_geometry: Geometry
    mr_geometry: Geometry

    @property
    def ct_series(self) -> str:
        return str(self.ct[0].SeriesInstanceUID)

    @property
    def mr_series(self) -> str:
        return str(self.mr[0].SeriesInstanceUID)

    @property
    def datasets(self) -> list[Dataset]:
        return self.ct + self.mr


def cropped_ct_volume() -> tuple[np.ndarray, np.ndarray]:
    """The template from axial plane CT_FIRST_SLICE up, with its affine moved there."""
    volume, affine = mni_volume()
    affine = affine.copy()
    affine[:3, 3] = (affine @ np.array([0, 0, CT_FIRST_SLICE, 1.0]))[:3]
    return volume[:, :, CT_FIRST_SLICE:], affine


def make_study() -> Study:
    """A new study (fresh UIDs): "Head CT (upper)" as series 1, "T1 MR" as series 2."""
    volume, affine = mni_volume()
    ct_volume, ct_affine = cropped_ct_volume()
    uid = generate_uid()
    ct = make_series(ct_volume, ct_affine, "CT", study_uid=uid, series_number=1,
                     series_description="Head CT (upper)")
    mr = make_series(volume, affine, "MR", study_uid=uid, series_number=2, series_description="T1 MR")
    return Study(uid, ct, mr, expected_geometry(ct_volume, ct_affine), expected_geometry(volume, affine))
