"""VOIs: cylinder and box masks in world mm, spec strings, mask files, and VOIs outside the image."""

from __future__ import annotations

import numpy as np
import pytest

from trabecula import Volume
from trabecula.errors import InputError, ParameterError
from trabecula.io import write_volume
from trabecula.morphometry.voi import (
    box_voi,
    cylinder_voi,
    study_cylinder_spec,
    study_cylinder_vois,
    voi_from_spec,
)


def test_cylinder_volume_matches_pi_r2_h():
    m = cylinder_voi((120, 200, 200), 0.05, diameter_mm=7.5, height_mm=5.0)
    vol = m.sum() * 0.05 ** 3
    assert vol == pytest.approx(np.pi * 3.75 ** 2 * 5.0, rel=0.01)


def test_cylinder_axis_and_centre():
    shape, sp = (40, 60, 80), (0.5, 0.25, 0.25)
    mz = cylinder_voi(shape, sp, 5.0, 4.0, axis="z")
    mx = cylinder_voi(shape, sp, 5.0, 4.0, axis="x")
    mv = cylinder_voi(shape, sp, 5.0, 4.0, axis=(0.0, 0.0, 2.0))
    assert np.array_equal(mx, mv)
    # a z cylinder spans ~4 mm in z and ~5 mm in x; an x cylinder the other way round
    def ext(m, ax):
        idx = np.nonzero(m.any(axis=tuple(a for a in range(3) if a != ax)))[0]
        return (idx[-1] - idx[0] + 1) * sp[ax]

    assert ext(mz, 0) == pytest.approx(4.0, abs=0.5) and ext(mz, 2) == pytest.approx(5.0, abs=0.25)
    assert ext(mx, 2) == pytest.approx(4.0, abs=0.25) and ext(mx, 0) == pytest.approx(5.0, abs=0.5)
    # centre in world mm with an origin
    origin = (10.0, -5.0, 2.0)
    m = cylinder_voi(shape, sp, 2.0, 2.0, center_mm=(15.0, 0.0, 10.0), origin=origin)
    cz, cy, cx = np.argwhere(m).mean(axis=0) * np.asarray(sp) + np.asarray(origin)
    assert (cz, cy, cx) == pytest.approx((15.0, 0.0, 10.0), abs=0.1)


def test_voi_outside_the_image_is_an_error():
    with pytest.raises(ParameterError, match="outside the image"):
        cylinder_voi((20, 20, 20), 0.1, 1.0, 1.0, center_mm=(50.0, 50.0, 50.0))
    with pytest.raises(ParameterError, match="beyond the image"):
        cylinder_voi((20, 20, 20), 0.1, 15.0, 5.0)  # the study's VOI does not fit a 2 mm cube
    with pytest.raises(ParameterError, match="outside the image"):
        box_voi((10, 10, 10), 1.0, (20, 20, 20), (30, 30, 30))


def test_box_voi_and_spec_strings():
    vol = Volume(np.zeros((10, 20, 30), np.uint8), (1.0, 0.5, 0.5), origin=(0.0, 0.0, 0.0), units="binary")
    m, desc = voi_from_spec("box:2,1,1,5,4,9", vol)
    assert desc.startswith("box:") and m.sum() == 4 * 7 * 17
    m2, d2 = voi_from_spec("cylinder:d=4,h=3,center=5,5,7,axis=z", vol)
    assert "d=4" in d2 and "center=5,5,7" in d2 and m2.any()
    m3, _ = voi_from_spec("cylinder:d=4,h=3,center=5,5,7,axis=0,0,1", vol)
    assert m3.any()
    for bad in ("cylinder:d=4", "cylinder:d=a,h=2", "box:1,2,3", "cylinder:d=2,h=2,colour=red"):
        with pytest.raises(ParameterError):
            voi_from_spec(bad, vol)


def test_mask_file_binary_ok_and_non_binary_rejected(tmp_path):
    vol = Volume(np.zeros((6, 8, 8), np.uint8), 0.1, units="binary")
    good = np.zeros((6, 8, 8), np.uint8)
    good[1:4, 2:5, 2:5] = 255
    p = write_volume(Volume(good, 0.1, units="label"), tmp_path / "mask.nrrd")
    m, desc = voi_from_spec(str(p), vol)
    assert m.sum() == 27 and "mask" in desc
    bad = good.copy()
    bad[0, 0, 0] = 7
    q = write_volume(Volume(bad, 0.1, units="label"), tmp_path / "bad.nrrd")
    with pytest.raises(InputError, match="a label map"):
        voi_from_spec(str(q), vol)
    with pytest.raises(InputError, match="not found"):
        voi_from_spec(str(tmp_path / "missing.nrrd"), vol)
    with pytest.raises(ParameterError, match="empty"):
        voi_from_spec(np.zeros((6, 8, 8), bool), vol)


def test_cylinder_and_box_vois_validate_the_spacing():
    for bad in (0.0, -0.1, (0.1, 0.1), float("nan")):
        with pytest.raises(ParameterError, match="spacing"):
            cylinder_voi((20, 20, 20), bad, 1.0, 1.0)
        with pytest.raises(ParameterError, match="spacing"):
            box_voi((20, 20, 20), bad, (0, 0, 0), (1, 1, 1))


def test_study_cylinder_vois_are_the_studys_15x5_mm_where_they_fit():
    vois = study_cylinder_vois((150, 150, 150), (0.1, 0.1, 0.1))  # 15 mm cube: three 15 × 5 mm cylinders
    assert len(vois) == 3
    expected = np.pi * 75**2 * 50
    for desc, m in vois:
        assert "d=15 mm h=5 mm" in desc
        assert m.sum() == pytest.approx(expected, rel=0.01)
        zs = np.nonzero(m.any(axis=(1, 2)))[0]
        assert len(zs) == 50
    masks = [m for _, m in vois]
    assert not any((masks[i] & masks[j]).any() for i in range(3) for j in range(i + 1, 3))
    zs = [np.nonzero(m.any(axis=(1, 2)))[0] for m in masks]
    assert zs[0][0] == 0 and zs[1][0] == 50 and zs[2][-1] == 149  # stacked, touching, centred on the volume
    two = study_cylinder_vois((120, 150, 150), (0.1, 0.1, 0.1))  # 12 mm high: two, centred
    (_, a), (_, b) = two
    za, zb = np.nonzero(a.any(axis=(1, 2)))[0], np.nonzero(b.any(axis=(1, 2)))[0]
    assert za[0] == 10 and zb[-1] == 109


def test_study_cylinder_vois_shrink_to_the_largest_that_fits():
    (desc, m), = study_cylinder_vois((60, 120, 120), (0.1, 0.1, 0.1))  # 12 mm field, 6 mm high: one 12 × 5 mm
    assert "d=12 mm h=5 mm" in desc
    assert m.sum() == pytest.approx(np.pi * 60**2 * 50, rel=0.01)
    (desc, m), = study_cylinder_vois((30, 120, 120), (0.1, 0.1, 0.1))
    assert "h=3 mm" in desc and m.any(axis=(1, 2)).all()


def test_study_cylinder_vois_follow_the_origin():
    shape, sp = (150, 150, 150), (0.1, 0.1, 0.1)
    at_zero = study_cylinder_vois(shape, sp)
    moved = study_cylinder_vois(shape, sp, origin=(10.0, -3.0, 2.5))
    for (_, m0), (_, m1) in zip(at_zero, moved, strict=True):
        assert np.array_equal(m0, m1)  # the same voxels: the cylinders move with the grid
    assert "at z=12.45 mm" in moved[0][0] and "at z=2.45 mm" in at_zero[0][0]


def test_study_cylinder_spec_fits_the_volume_or_a_region():
    vol = Volume(np.zeros((60, 120, 120), np.uint8), 0.1, units="binary")  # 6 × 12 × 12 mm
    assert study_cylinder_spec(vol) == "cylinder:d=9.6,h=4.8"  # 80 % of the field, below 15 × 5 mm
    core = (np.array([1.0, 2.0, 2.0]), np.array([5.0, 8.0, 10.0]))
    assert study_cylinder_spec(vol, core) == "cylinder:d=3,h=2,center=3,5,6"  # half the region, in its centre
    tiny = (np.array([3.0, 5.0, 5.0]), np.array([3.05, 5.1, 5.1]))
    assert study_cylinder_spec(vol, tiny).startswith("cylinder:d=0.4,h=0.2,")  # at least 4 voxels × 2 slices
    m, _ = voi_from_spec(study_cylinder_spec(vol, core), vol)
    assert m.sum() == pytest.approx(np.pi * 15**2 * 21, rel=0.02)  # 21 slices: both end planes are on centres
