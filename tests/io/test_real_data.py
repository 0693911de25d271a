"""Readers on the real scans in ../shared/data."""

import numpy as np
import pytest

from tests.conftest import data_path
from trabecula.io import read_projections, read_volume


def test_clinical_dicom_series_spacing_and_hu():
    v = read_volume(data_path("clinical_ct_dicom"))
    assert v.shape == (20, 512, 512)
    assert v.units == "HU"
    np.testing.assert_allclose(v.spacing, (2.0, 0.9765625, 0.9765625))
    a = v.numpy()
    assert a.min() == -1024 and a.max() == 1839
    assert v.provenance.extra["kernel"].startswith("Br38f")


def test_dicom_and_nifti_labels_share_one_frame():
    """The label NIfTI (stored L,A,S) lands on the DICOM grid: vertebra labels 32/33 sit on bone HU."""
    ct = read_volume(data_path("clinical_ct_dicom"))
    lab = read_volume(data_path("clinical_ct_dicom_labels.nii.gz"), units="label")
    assert lab.shape == ct.shape
    np.testing.assert_allclose(lab.origin, ct.origin, atol=1e-3)
    np.testing.assert_allclose(lab.spacing, ct.spacing, rtol=1e-6)
    hu, lb = ct.numpy(), lab.numpy()
    vert = np.isin(lb, (32, 33))
    assert vert.sum() > 1000
    assert hu[vert].mean() > 150  # bone
    assert hu[~vert].mean() < -300  # mostly air and soft tissue


def test_dicom_single_file_list():
    files = sorted(data_path("clinical_ct_dicom").iterdir())[:3]
    v = read_volume(files)
    assert v.shape == (3, 512, 512)
    assert v.spacing[0] == pytest.approx(2.0)


def test_tooth_projections_181_angles():
    p = read_projections(data_path("tooth_projections", "tooth.h5"))
    assert p.n_angles == 181
    assert p.data.shape == (181, 2, 640)
    assert p.flats.shape == (10, 2, 640) and p.darks.shape == (10, 2, 640)
    # stored in degrees (attribute units='degrees'); trabecula keeps radians
    assert p.angles[-1] == pytest.approx(np.radians(179.0055), abs=1e-4)


def test_projection_roundtrip(tmp_path):
    from trabecula.io import write_projections

    p = read_projections(data_path("tooth_projections", "tooth.h5"))
    p.geometry = {"kind": "parallel", "center_px": 296.0}
    out = write_projections(p, tmp_path / "copy.h5")
    q = read_projections(out)
    np.testing.assert_array_equal(q.data, p.data)
    np.testing.assert_array_equal(q.flats, p.flats)
    np.testing.assert_allclose(q.angles, p.angles)
    assert q.geometry["center_px"] == 296.0


def test_didsr_nrrd_with_declared_spacing():
    v = read_volume(data_path("didsr_l1_vertebra", "Segmentation-grayscale-1_06219.nrrd"), spacing=0.05, units="binary")
    assert v.shape == (300, 300, 300) and v.spacing == (0.05, 0.05, 0.05)
    assert 0.2 < (v.numpy() > 0).mean() < 0.3
