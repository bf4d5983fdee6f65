"""Real DICOM series made from a volume: the MNI152 T1 template as CT and MR.

The template is the one the slicer-core image ships as its sample volume (the
ICBM 2009a nonlinear symmetric T1, 1 mm, 197x233x189; images/slicer-core),
taken here from the same pinned nilearn wheel on PyPI
(images/slicer-core/sample-data.txt), downloaded once into var/cache/.
Copyright (C) 1993-2009 Louis Collins, McConnell Brain Imaging Centre,
Montreal Neurological Institute, McGill University; redistributable with
this notice.

Geometry: NIfTI affines map voxel (i, j, k) to RAS millimetres, DICOM
patient coordinates are LPS (x and y negated). A series has one slice per
plane of the voxel axis closest to superior-inferior; in a slice, columns run
along the in-plane axis that comes first in the array, rows along the second,
so a reader that builds IJK from (column, row, slice) -- Slicer, ITK -- gets the
source's voxel grid back with the same RAS origin, spacing and directions
(expected_geometry() says which). Slices are ordered to step along the slice
normal (row x column direction); a left-handed affine is flipped along the
slice axis first, as a reader sorting by position would do.

Usage::

    volume, affine = mni_volume()
    study = generate_uid()
    ct = make_series(volume, affine, "CT", study_uid=study)
    mr = make_series(volume, affine, "MR", study_uid=study, series_number=2)
    write_series(ct, folder)           # CT000001.dcm, ...
    expected_geometry(volume, affine)  # what a reader should find, in RAS
"""

from __future__ import annotations

import datetime
import gzip
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.pixels import set_pixel_data
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, PYDICOM_IMPLEMENTATION_UID
from pydicom.uid import generate_uid
from pydicom.valuerep import DSfloat

__all__ = ["CT_HU_RANGE", "Geometry", "expected_geometry", "generate_uid", "make_series", "mni_volume",
           "write_series"]

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_DATA = REPO_ROOT / "images" / "slicer-core" / "sample-data.txt"
TEMPLATE_IN_WHEEL = "nilearn/datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
CACHE_DIR = Path(os.environ.get("SLICERHUB_CACHE_DIR", REPO_ROOT / "var" / "cache"))

# CT: the volume's range mapped onto these Hounsfield units (air .. dense bone).
CT_HU_RANGE = (-1000, 1000)
_CT_INTERCEPT = CT_HU_RANGE[0]
# LPS = RAS with x and y negated.
_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])


# -- the template ----------------------------------------------------------------

def nilearn_pin() -> str:
    """The nilearn requirement of the slicer-core image ("nilearn==X.Y.Z")."""
    for line in SAMPLE_DATA.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("nilearn=="):
            return line
    raise RuntimeError(f"no nilearn==VERSION line in {SAMPLE_DATA}")


def template_path() -> Path:
    """The MNI152 T1 .nii.gz, cached under var/cache (the wheel is fetched once with pip)."""
    pin = nilearn_pin()
    version = pin.split("==", 1)[1]
    out = CACHE_DIR / "mni152" / f"nilearn-{version}" / "MNI152-T1.nii.gz"
    if out.is_file():
        return out
    wheels = CACHE_DIR / "wheels"
    wheel = next(iter(sorted(wheels.glob(f"nilearn-{version}-*.whl"))), None)
    if wheel is None:
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
             "--dest", str(wheels), pin],
            capture_output=True, text=True,
        )
        wheel = next(iter(sorted(wheels.glob(f"nilearn-{version}-*.whl"))), None)
        if proc.returncode != 0 or wheel is None:
            raise RuntimeError(f"pip download {pin} failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-2000:]}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".part")
    with zipfile.ZipFile(wheel) as z:
        tmp.write_bytes(z.read(TEMPLATE_IN_WHEEL))
    tmp.replace(out)
    return out


@lru_cache(maxsize=1)
def _load_template() -> tuple[np.ndarray, np.ndarray]:
    import nibabel  # test/demo dependency only

    img = nibabel.Nifti1Image.from_bytes(gzip.decompress(template_path().read_bytes()))
    data = np.asarray(img.dataobj)
    data.flags.writeable = False
    return data, img.affine.copy()


def mni_volume() -> tuple[np.ndarray, np.ndarray]:
    """(voxels, 4x4 RAS affine) of the MNI152 T1 template: uint8, 197x233x189, 1 mm."""
    data, affine = _load_template()
    return data.copy(), affine.copy()


# -- geometry --------------------------------------------------------------------

@dataclass(frozen=True)
class Geometry:
    """A voxel grid in RAS, as a reader of the series should find it.

    shape: (columns, rows, slices); origin: centre of the first voxel (first
    slice, first row, first column); spacing: along those three axes;
    directions: 3x3, column n the unit RAS vector of axis n."""

    shape: tuple[int, int, int]
    origin: np.ndarray
    spacing: np.ndarray
    directions: np.ndarray

    def ijk_to_ras(self) -> np.ndarray:
        m = np.eye(4)
        m[:3, :3] = self.directions * self.spacing
        m[:3, 3] = self.origin
        return m


def _slicing(volume: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The volume and affine reordered so that axis 2 is the slice axis (the one
    closest to superior-inferior) and the grid is right-handed."""
    volume = np.asarray(volume)
    affine = np.asarray(affine, dtype=float)
    if volume.ndim != 3:
        raise ValueError(f"a 3-D volume is needed, got shape {volume.shape}")
    if affine.shape != (4, 4):
        raise ValueError(f"a 4x4 affine is needed, got shape {affine.shape}")
    axes = affine[:3, :3]
    unit = axes / np.linalg.norm(axes, axis=0)
    if not np.allclose(unit.T @ unit, np.eye(3), atol=1e-6):
        raise ValueError("the affine's voxel axes are not orthogonal: DICOM slices cannot carry a shear")
    slice_axis = int(np.argmax(np.abs(unit[2])))
    order = [a for a in range(3) if a != slice_axis] + [slice_axis]
    volume = np.transpose(volume, order)
    affine = affine[:, order + [3]]
    if np.linalg.det(affine[:3, :3]) < 0:
        # Left-handed: the slices would step against the normal; flip them.
        n = volume.shape[2]
        volume = volume[:, :, ::-1]
        affine = affine.copy()
        affine[:, 3] = affine @ np.array([0.0, 0.0, n - 1, 1.0])
        affine[:, 2] = -affine[:, 2]
    return volume, affine


def expected_geometry(volume: np.ndarray, affine: np.ndarray) -> Geometry:
    """What a DICOM reader (Slicer, ITK) should find for make_series(volume, affine, ...), in RAS."""
    volume, affine = _slicing(volume, affine)
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    return Geometry(shape=tuple(int(n) for n in volume.shape), origin=affine[:3, 3].copy(),
                    spacing=spacing, directions=affine[:3, :3] / spacing)


# -- series -----------------------------------------------------------------------

def _ds(values) -> list[DSfloat]:
    """Decimal strings within DICOM's 16 characters."""
    return [DSfloat(float(v), auto_format=True) for v in values]


def _stored_values(volume: np.ndarray, modality: str) -> tuple[np.ndarray, float, float]:
    """uint16 stored values, RescaleSlope, RescaleIntercept."""
    v = volume.astype(np.float64)
    lo, hi = float(v.min()), float(v.max())
    if modality == "CT":
        span = CT_HU_RANGE[1] - CT_HU_RANGE[0]
        scaled = (v - lo) / (hi - lo) * span if hi > lo else np.zeros_like(v)
        return np.rint(scaled).astype(np.uint16), 1.0, float(_CT_INTERCEPT)
    if lo >= 0 and hi <= 65535 and np.array_equal(v, np.rint(v)):
        return v.astype(np.uint16), 1.0, 0.0  # integers that fit: kept as they are
    scaled = (v - lo) / (hi - lo) * 4095 if hi > lo else np.zeros_like(v)
    return np.rint(scaled).astype(np.uint16), 1.0, 0.0


def make_series(volume: np.ndarray, affine: np.ndarray, modality: Literal["CT", "MR"], *,
                study_uid: str | None = None, patient_id: str = "SLH-0001",
                patient_name: str = "MNI152^Template", series_number: int = 1,
                study_description: str = "MNI152 T1 template (synthetic)",
                series_description: str | None = None, accession_number: str = "SLH0001",
                study_id: str = "1") -> list[Dataset]:
    """One single-frame CT or MR Image Storage instance per axial plane of VOLUME.

    AFFINE is the NIfTI voxel-to-RAS matrix. CT: the volume's range is mapped
    onto CT_HU_RANGE (stored unsigned, RescaleIntercept -1000, slope 1). MR:
    non-negative integers are stored as they are, anything else scaled to
    0..4095; slope 1, intercept 0. Pass the same study_uid to put several
    series (a CT and an MR) in one study."""
    if modality not in ("CT", "MR"):
        raise ValueError(f"modality must be 'CT' or 'MR', not {modality!r}")
    volume, affine = _slicing(volume, affine)
    stored, slope, intercept = _stored_values(volume, modality)
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    lps = _RAS_TO_LPS @ affine[:3, :]  # 3x4: voxel -> LPS
    row_dir = lps[:, 0] / spacing[0]   # along a row: increasing column index (array axis 0)
    col_dir = lps[:, 1] / spacing[1]   # down a column: increasing row index (array axis 1)
    normal = np.cross(row_dir, col_dir)
    hu = stored.astype(np.float64) * slope + intercept
    center, width = (hu.min() + hu.max()) / 2, max(hu.max() - hu.min(), 1.0)

    now = datetime.datetime.now()
    date, time = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    study_uid = study_uid or generate_uid()
    series_uid = generate_uid()
    frame_uid = generate_uid()
    sop_class = CTImageStorage if modality == "CT" else MRImageStorage
    description = series_description or f"MNI152 T1 as {modality}"

    datasets = []
    for k in range(volume.shape[2]):
        position = lps @ np.array([0.0, 0.0, k, 1.0])
        sop_uid = generate_uid()
        meta = FileMetaDataset()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.MediaStorageSOPClassUID = sop_class
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        # A FileDataset with its preamble: any dcmwrite of it (dicomweb-client's
        # STOW-RS uses a plain one) writes a Part 10 file, preamble and "DICM".
        ds = FileDataset("", Dataset(), file_meta=meta, preamble=b"\x00" * 128)
        ds.SOPInstanceUID = sop_uid
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.SOPClassUID = sop_class
        ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
        # Patient, study, series, equipment
        ds.PatientName = patient_name
        ds.PatientID = patient_id
        ds.PatientBirthDate = ""
        ds.PatientSex = "O"
        ds.StudyInstanceUID = study_uid
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = date
        ds.StudyTime = ds.SeriesTime = ds.ContentTime = time
        ds.StudyID = study_id
        ds.AccessionNumber = accession_number
        ds.ReferringPhysicianName = ""
        ds.StudyDescription = study_description
        ds.Modality = modality
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = series_number
        ds.SeriesDescription = description
        ds.PatientPosition = "HFS"
        ds.Manufacturer = "SlicerHub"
        ds.ManufacturerModelName = "slicerhub.dicom.synth"
        ds.BodyPartExamined = "HEAD"
        # Frame of reference and image plane
        ds.FrameOfReferenceUID = frame_uid
        ds.PositionReferenceIndicator = ""
        ds.InstanceNumber = k + 1
        ds.AcquisitionNumber = 1
        ds.ImagePositionPatient = _ds(position)
        ds.ImageOrientationPatient = _ds(np.concatenate([row_dir, col_dir]))
        ds.PixelSpacing = _ds([spacing[1], spacing[0]])  # row spacing (between rows), column spacing
        ds.SliceThickness = DSfloat(float(spacing[2]), auto_format=True)
        ds.SpacingBetweenSlices = DSfloat(float(spacing[2]), auto_format=True)
        ds.SliceLocation = DSfloat(float(position @ normal), auto_format=True)
        # Image pixel
        set_pixel_data(ds, np.ascontiguousarray(stored[:, :, k].T), "MONOCHROME2", 16)
        ds.RescaleSlope = DSfloat(slope, auto_format=True)
        ds.RescaleIntercept = DSfloat(intercept, auto_format=True)
        ds.WindowCenter = DSfloat(float(center), auto_format=True)
        ds.WindowWidth = DSfloat(float(width), auto_format=True)
        if modality == "CT":
            ds.RescaleType = "HU"
            ds.KVP = ""
        else:
            ds.ScanningSequence = "GR"
            ds.SequenceVariant = "SP"
            ds.ScanOptions = ""
            ds.MRAcquisitionType = "3D"
            ds.RepetitionTime = ""
            ds.EchoTime = ""
            ds.EchoTrainLength = ""
        datasets.append(ds)
    return datasets


def write_series(datasets: list[Dataset], folder: str | os.PathLike) -> list[Path]:
    """Write each instance as a DICOM Part 10 file (preamble, file meta) into FOLDER."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for ds in datasets:
        path = folder / f"{ds.Modality}{int(ds.SeriesNumber):02d}-{int(ds.InstanceNumber):06d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
