"""trabecular_cube: calibrated to measured BV/TV, Tb.Th, Tb.Sp over the human ranges; labels and errors."""

from __future__ import annotations

import numpy as np
import pytest

from trabecula.errors import ParameterError
from trabecula.phantom import LABEL, MATERIALS, trabecular_cube

#: Corners that jointly span the human trabecular ranges — BV/TV 0.08–0.30, Tb.Th 0.10–0.30 mm,
#: Tb.Sp 0.5–1.5 mm — each a geometrically consistent combination (thick struts cannot have both a low
#: BV/TV and a small spacing). Voxel ≥ 4 per strut; boxes of ≥ 3 cells.
CORNERS = [
    # (bvtv, tb_th_mm, tb_sp_mm, voxel_mm, size_mm)
    (0.08, 0.10, 0.90, 0.025, 2.5),   # low BV/TV, thin rods (osteoporotic)
    (0.30, 0.30, 0.70, 0.05, 3.5),    # high BV/TV, thick struts
    (0.10, 0.20, 1.50, 0.05, 4.5),    # wide spacing
    (0.25, 0.12, 0.50, 0.025, 2.0),   # dense, fine lattice
]


def _measure(binary: np.ndarray, voxel: float) -> dict:
    from trabecula.morphometry import measure
    from trabecula.volume import Volume

    r = measure(Volume(binary.astype(np.uint8), voxel, units="binary"), metrics=("bvtv", "tbth", "tbsp"))
    return {"bv_tv": r.bv_tv, "tb_th_mm": r.tb_th_mm, "tb_sp_mm": r.tb_sp_mm}


@pytest.fixture(scope="module")
def corners():
    return [trabecular_cube(size, vox, bv, th, sp, seed=11) for bv, th, sp, vox, size in CORNERS]


@pytest.mark.slow
def test_calibrated_cubes_hit_targets_and_cover_human_ranges(corners):
    """Each corner's measured morphometry is within 5 % of its targets (calibration tolerance 3 %), and
    together they reach both ends of each range."""
    got = []
    for (bv, th, sp, _, _), ph in zip(CORNERS, corners, strict=True):
        m = ph.params["measured"]
        assert m["bv_tv"] == pytest.approx(bv, rel=0.05)
        assert m["tb_th_mm"] == pytest.approx(th, rel=0.05)
        assert m["tb_sp_mm"] == pytest.approx(sp, rel=0.05)
        assert ph.params["calibration_box"] == list(ph.shape)  # measured on the whole phantom
        got.append(m)
    assert min(g["bv_tv"] for g in got) <= 0.084 and max(g["bv_tv"] for g in got) >= 0.285
    assert min(g["tb_th_mm"] for g in got) <= 0.105 and max(g["tb_th_mm"] for g in got) >= 0.285
    assert min(g["tb_sp_mm"] for g in got) <= 0.525 and max(g["tb_sp_mm"] for g in got) >= 1.425


@pytest.mark.slow
def test_reported_morphometry_is_what_the_engine_measures_on_the_truth(corners):
    """Re-measure one returned phantom independently: its truth gives the numbers it reports."""
    ph = corners[1]
    m = _measure(ph.truth.numpy(), ph.spacing[0])
    for k, v in ph.params["measured"].items():
        assert m[k] == pytest.approx(v, rel=1e-6)


def test_cube_is_a_label_volume_of_bone_in_marrow_with_matching_truth():
    ph = trabecular_cube((1.0, 1.2, 1.4), 0.05, seed=2, calibrate=False)
    lab = ph.labels
    assert lab.units == "label" and lab.dtype == np.uint8 and lab.shape == (20, 24, 28)
    assert lab.spacing == (0.05, 0.05, 0.05)
    assert ph.materials == {str(LABEL["marrow"]): "marrow", str(LABEL["bone"]): "bone"}
    assert set(ph.materials.values()) <= set(MATERIALS)
    assert ph.truth.units == "binary"
    assert np.array_equal(ph.truth.numpy() == 1, lab.numpy() == LABEL["bone"])
    assert np.allclose(lab.center_mm, 0.0)
    assert lab.provenance.extra["phantom"]["kind"] == "trabecular_cube"
    again = trabecular_cube((1.0, 1.2, 1.4), 0.05, seed=2, calibrate=False)
    assert np.array_equal(again.labels.numpy(), lab.numpy())


@pytest.mark.parametrize("kwargs, name", [
    (dict(bvtv=0.0), "bvtv"), (dict(bvtv=1.2), "bvtv"), (dict(size_mm=-5), "size_mm"),
    (dict(voxel_mm=0.0), "voxel_mm"), (dict(voxel_mm=10.0, size_mm=5.0), "voxel_mm"),
    (dict(tb_th_mm=0.04), "tb_th_mm"), (dict(tb_sp_mm=0.2), "tb_sp_mm"), (dict(anisotropy=-1.0), "anisotropy"),
    (dict(marrow="cheese"), "marrow"),
])
def test_unphysical_cube_settings_raise_parameter_error(kwargs, name):
    with pytest.raises(ParameterError) as exc:
        trabecular_cube(**kwargs)
    assert exc.value.name == name
