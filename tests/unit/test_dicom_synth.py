"""slicerhub.dicom.synth: DICOM CT and MR series from the MNI152 T1 template.

The template comes from the nilearn wheel the slicer-core image pins; the
first run downloads it from PyPI (11.5 MB, once) into var/cache/. The
geometry is checked the way a reader rebuilds it -- each pixel's patient
position from ImagePositionPatient, ImageOrientationPatient and PixelSpacing,
LPS back to RAS -- against the source affine, on the template and on a small
oblique, anisotropic, left-handed volume stored in a non-axial axis order.
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.dataset import validate_file_meta
from pydicom.uid import UID, CTImageStorage, ExplicitVRLittleEndian, MRImageStorage

from slicerhub.dicom import synth

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


@pytest.fixture(scope="module")
def template():
    return synth.mni_volume()


@pytest.fixture(scope="module")
def study(template):
    volume, affine = template
    uid = synth.generate_uid()
    ct = synth.make_series(volume, affine, "CT", study_uid=uid)
    mr = synth.make_series(volume, affine, "MR", study_uid=uid, series_number=2)
    return uid, ct, mr


def pixel_to_ras(ds, row: int, col: int) -> np.ndarray:
    """Where a DICOM reader puts pixel (row, col) of DS: PS3.3 C.7.6.2.1.1, then LPS -> RAS."""
    iop = np.array(ds.ImageOrientationPatient, dtype=float)
    row_spacing, col_spacing = (float(v) for v in ds.PixelSpacing)
    lps = np.array(ds.ImagePositionPatient, dtype=float) + iop[:3] * col_spacing * col + iop[3:] * row_spacing * row
    return LPS_TO_RAS @ lps


def normal(ds) -> np.ndarray:
    iop = np.array(ds.ImageOrientationPatient, dtype=float)
    return np.cross(iop[:3], iop[3:])


def reader_geometry(series) -> synth.Geometry:
    """Origin, spacing and directions (RAS) as Slicer/ITK derive them from the files."""
    n = normal(series[0])
    ordered = sorted(series, key=lambda ds: np.dot(np.array(ds.ImagePositionPatient, dtype=float), n))
    first, second = (np.array(ds.ImagePositionPatient, dtype=float) for ds in ordered[:2])
    iop = np.array(ordered[0].ImageOrientationPatient, dtype=float)
    row_spacing, col_spacing = (float(v) for v in ordered[0].PixelSpacing)
    directions = LPS_TO_RAS @ np.column_stack([iop[:3], iop[3:], n])
    return synth.Geometry(
        shape=(int(ordered[0].Columns), int(ordered[0].Rows), len(series)),
        origin=LPS_TO_RAS @ first,
        spacing=np.array([col_spacing, row_spacing, np.linalg.norm(second - first)]),
        directions=directions,
    )


def test_template_is_the_slicer_core_sample_from_the_pinned_wheel(template):
    volume, affine = template
    assert synth.nilearn_pin() == "nilearn==" + synth.nilearn_pin().split("==")[1]
    assert synth.template_path().is_file() and synth.template_path().is_relative_to(synth.CACHE_DIR)
    assert volume.shape == (197, 233, 189) and volume.dtype == np.uint8
    np.testing.assert_array_equal(affine, [[1, 0, 0, -98], [0, 1, 0, -134], [0, 0, 1, -72], [0, 0, 0, 1]])


def test_one_slice_per_axial_plane_with_valid_unique_uids(study, template):
    uid, ct, mr = study
    volume, _ = template
    assert len(ct) == len(mr) == volume.shape[2] == 189
    instances = [ds.SOPInstanceUID for ds in ct + mr]
    assert len(set(instances)) == len(instances)
    for ds in ct + mr:
        for value in (ds.SOPInstanceUID, ds.SeriesInstanceUID, ds.StudyInstanceUID, ds.FrameOfReferenceUID):
            assert UID(value).is_valid, value
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert (ds.Rows, ds.Columns) == (233, 197)
    assert {ds.StudyInstanceUID for ds in ct + mr} == {uid}
    assert len({ds.SeriesInstanceUID for ds in ct} | {ds.SeriesInstanceUID for ds in mr}) == 2
    assert {ds.FrameOfReferenceUID for ds in ct} != {ds.FrameOfReferenceUID for ds in mr}
    assert [ds.InstanceNumber for ds in ct] == list(range(1, 190))
    assert {(ds.SeriesNumber, ds.StudyID, ds.AccessionNumber, ds.PatientID) for ds in ct} == {(1, "1", "SLH0001", "SLH-0001")}
    assert mr[0].SeriesNumber == 2 and ct[0].StudyDate and ct[0].StudyDescription and ct[0].SeriesDescription


def test_sop_classes_and_modalities(study):
    _, ct, mr = study
    assert {(ds.SOPClassUID, ds.Modality, ds.file_meta.MediaStorageSOPClassUID) for ds in ct} == {
        (CTImageStorage, "CT", CTImageStorage)}
    assert {(ds.SOPClassUID, ds.Modality, ds.file_meta.MediaStorageSOPClassUID) for ds in mr} == {
        (MRImageStorage, "MR", MRImageStorage)}
    assert {ds.file_meta.TransferSyntaxUID for ds in ct + mr} == {ExplicitVRLittleEndian}


def test_geometry_is_the_affine_in_lps(study, template):
    _, ct, mr = study
    _, affine = template
    for series in (ct, mr):
        # RAS (-98, -134, -72) is LPS (98, 134, -72); +x and +y in RAS are -x, -y in LPS.
        assert [float(v) for v in series[0].ImagePositionPatient] == [98.0, 134.0, -72.0]
        assert {tuple(float(v) for v in ds.ImageOrientationPatient) for ds in series} == {(-1, 0, 0, 0, -1, 0)}
        assert {(tuple(float(v) for v in ds.PixelSpacing), float(ds.SliceThickness), float(ds.SpacingBetweenSlices))
                for ds in series} == {((1.0, 1.0), 1.0, 1.0)}
        n = normal(series[0])
        np.testing.assert_array_equal(n, [0, 0, 1])
        first = np.array(series[0].ImagePositionPatient, dtype=float)
        for k, ds in enumerate(series):
            np.testing.assert_allclose(np.array(ds.ImagePositionPatient, dtype=float), first + k * 1.0 * n)
        # The far corner of the last slice is the affine's last voxel.
        np.testing.assert_allclose(pixel_to_ras(series[-1], 232, 196), (affine @ [196, 232, 188, 1])[:3])
        geo = reader_geometry(series)
        want = synth.expected_geometry(*template)
        assert geo.shape == want.shape == (197, 233, 189)
        np.testing.assert_allclose(geo.ijk_to_ras(), affine, atol=1e-9)
        np.testing.assert_allclose(want.ijk_to_ras(), affine, atol=1e-9)


def test_mr_keeps_the_template_values_and_ct_maps_them_to_hounsfield_units(study, template):
    _, ct, mr = study
    volume, _ = template
    for k in (0, 94, 188):
        # pixel (row j, column i) of slice k is voxel (i, j, k)
        np.testing.assert_array_equal(mr[k].pixel_array, volume[:, :, k].T)
    assert {(float(ds.RescaleSlope), float(ds.RescaleIntercept)) for ds in mr} == {(1.0, 0.0)}
    assert {(float(ds.RescaleSlope), float(ds.RescaleIntercept), ds.RescaleType) for ds in ct} == {(1.0, -1000.0, "HU")}
    assert {(ds.PixelRepresentation, ds.BitsAllocated, ds.BitsStored, ds.PhotometricInterpretation) for ds in ct + mr} == {
        (0, 16, 16, "MONOCHROME2")}
    hu = np.stack([ds.pixel_array.astype(np.int32) * float(ds.RescaleSlope) + float(ds.RescaleIntercept) for ds in ct])
    assert (hu.min(), hu.max()) == synth.CT_HU_RANGE == (-1000, 1000)
    expected = np.rint(volume.astype(float) / 255 * 2000) - 1000  # template range 0..255
    np.testing.assert_array_equal(hu, np.transpose(expected, (2, 1, 0)))
    assert hu[0, 0, 0] == -1000  # background is air


def test_oblique_anisotropic_left_handed_volume_round_trips_through_the_geometry():
    """Voxel axes stored as (S, R, A)-ish, rotated 30 deg about S, 0.7/0.9/2.5 mm, one axis flipped."""
    rng = np.random.default_rng(12)
    volume = rng.integers(0, 3000, size=(7, 5, 6), dtype=np.uint16)  # axis 0 is closest to S
    c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    axes = np.column_stack([[0, 0, 2.5], rot @ [0.7, 0, 0], -(rot @ [0, 0.9, 0])])  # left-handed
    affine = np.eye(4)
    affine[:3, :3] = axes
    affine[:3, 3] = [10.5, -20.25, 33.0]
    series = synth.make_series(volume, affine, "MR")
    assert len(series) == 7  # one slice per plane of the S axis
    n = normal(series[0])
    along = [float(np.dot(np.array(ds.ImagePositionPatient, dtype=float), n)) for ds in series]
    np.testing.assert_allclose(np.diff(along), 2.5, atol=1e-6)  # stepped along the normal, in order
    assert float(series[0].SpacingBetweenSlices) == 2.5
    # Every pixel lands where the affine puts its voxel, with its value.
    for ds in series:
        pixels = ds.pixel_array
        for row in range(ds.Rows):
            for col in range(ds.Columns):
                ras = pixel_to_ras(ds, row, col)
                ijk = np.linalg.solve(affine[:3, :3], ras - affine[:3, 3])
                idx = tuple(int(v) for v in np.rint(ijk))
                np.testing.assert_allclose(ijk, idx, atol=1e-4)
                assert pixels[row, col] == volume[idx]
    geo = reader_geometry(series)
    want = synth.expected_geometry(volume, affine)
    assert geo.shape == want.shape
    np.testing.assert_allclose(geo.ijk_to_ras(), want.ijk_to_ras(), atol=1e-4)
    assert np.linalg.det(want.directions) > 0


def test_files_pass_pydicoms_file_format_checks(study, tmp_path):
    _, ct, mr = study
    paths = synth.write_series(ct, tmp_path / "ct") + synth.write_series(mr, tmp_path / "mr")
    assert len(paths) == 378 and len({p.name for p in paths}) == 378
    sent = {ds.SOPInstanceUID: ds for ds in ct + mr}
    for path in paths[::17] + [paths[-1]]:
        raw = path.read_bytes()
        assert raw[128:132] == b"DICM"
        back = pydicom.dcmread(path)  # force=False: a preamble and file meta are required
        validate_file_meta(back.file_meta, enforce_standard=True)
        assert back.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        original = sent[back.SOPInstanceUID]
        assert back.PixelData == original.PixelData
        assert back.ImagePositionPatient == original.ImagePositionPatient
        assert back.StudyInstanceUID == original.StudyInstanceUID


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="modality"):
        synth.make_series(np.zeros((2, 2, 2)), np.eye(4), "US")
    with pytest.raises(ValueError, match="3-D"):
        synth.make_series(np.zeros((2, 2)), np.eye(4), "CT")
    sheared = np.eye(4)
    sheared[0, 1] = 0.5
    with pytest.raises(ValueError, match="orthogonal"):
        synth.make_series(np.zeros((2, 2, 2)), sheared, "CT")
