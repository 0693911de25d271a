"""The evaluation's morphometry: the study's cylindrical VOIs and the project's engine behind them."""

import numpy as np
import pytest

from trabecula.enhance.evaluate import cylinder_vois, voi_morphometry
from trabecula.morphometry import measure
from trabecula.volume import Volume


def test_cylinder_vois_are_the_studys_15x5_mm_where_they_fit():
    vois = cylinder_vois((150, 150, 150), (0.1, 0.1, 0.1))  # 15 mm cube: two 15 × 5 mm cylinders
    assert len(vois) == 2
    expected = np.pi * 75**2 * 50
    for desc, m in vois:
        assert "d=15 mm h=5 mm" in desc
        assert m.sum() == pytest.approx(expected, rel=0.01)
        zs = np.nonzero(m.any(axis=(1, 2)))[0]
        assert len(zs) == 50
    (_, a), (_, b) = vois
    assert not (a & b).any()
    za, zb = np.nonzero(a.any(axis=(1, 2)))[0], np.nonzero(b.any(axis=(1, 2)))[0]
    assert za[0] == 25 and zb[-1] == 124  # stacked, touching, centred on the volume


def test_cylinder_vois_shrink_to_the_largest_that_fits():
    (desc, m), = cylinder_vois((60, 120, 120), (0.1, 0.1, 0.1))  # 12 mm field, 6 mm high: one 12 × 5 mm
    assert "d=12 mm h=5 mm" in desc
    assert m.sum() == pytest.approx(np.pi * 60**2 * 50, rel=0.01)
    (desc, m), = cylinder_vois((30, 120, 120), (0.1, 0.1, 0.1))
    assert "h=3 mm" in desc and m.any(axis=(1, 2)).all()


@pytest.mark.slow
def test_voi_morphometry_is_the_engine_on_the_8bit_isodata_segmentation():
    rng = np.random.default_rng(0)
    x = np.arange(64)
    bone = np.broadcast_to((x % 16) < 4, (24, 64, 64))  # plates 0.4 mm thick, 1.2 mm apart, on 0.1 mm voxels
    hu = np.where(bone, 1400.0, 0.0).astype(np.float32) + rng.normal(0, 20, bone.shape).astype(np.float32)
    (_, voi), = cylinder_vois(hu.shape, (0.1, 0.1, 0.1))
    got = voi_morphometry(hu, (0.1, 0.1, 0.1), voi)
    ref = measure(Volume(bone.astype(np.uint8), 0.1, units="binary"), voi=voi, bonej=True, metrics=("bvtv", "tbth", "tbsp"))
    assert got["BV/TV"] == pytest.approx(ref.bv_tv, abs=1e-9)
    assert got["Tb.Th (mm)"] == pytest.approx(ref.tb_th_mm, abs=1e-9)
    assert got["Tb.Sp (mm)"] == pytest.approx(ref.tb_sp_mm, abs=1e-9)
    assert got["BV/TV"] == pytest.approx(0.25, abs=0.01)
    # BoneJ-convention local thickness of 4- and 12-voxel slabs cut by the cylinder (the engine's numbers)
    assert got["Tb.Th (mm)"] == pytest.approx(0.4, abs=0.1) and 1.1 < got["Tb.Sp (mm)"] < 1.5
    assert 0 < got["threshold_8bit"] < 255
    flat = voi_morphometry(np.zeros_like(hu), (0.1, 0.1, 0.1), voi)
    assert all(np.isnan(v) for v in flat.values())
