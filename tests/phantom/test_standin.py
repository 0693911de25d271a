"""Stand-in specimens: the level-set structure hits its BV/TV; the edge objects put the edge where stated."""

import numpy as np
import pytest

from trabecula.errors import ParameterError
from trabecula.phantom.standin import TISSUE_HU, edge_phantom, slanted_edge_hu, synthetic_structure


@pytest.mark.parametrize("kind", ["plate", "rod", "mixed"])
def test_synthetic_structure_hits_its_bv_tv(kind):
    s = synthetic_structure((48, 48, 48), 0.05, 0.2, 0.6, kind, seed=4)
    assert s.units == "binary" and s.numpy().dtype == np.uint8
    assert s.numpy().mean() == pytest.approx(0.2, abs=0.02)  # bisection to 2⁻¹⁸, minus removed specks
    again = synthetic_structure((48, 48, 48), 0.05, 0.2, 0.6, kind, seed=4)
    assert np.array_equal(s.numpy(), again.numpy())


def test_synthetic_structure_refuses_bad_kind_and_fraction():
    with pytest.raises(ParameterError, match="kind"):
        synthetic_structure((16, 16, 16), kind="foam")
    with pytest.raises(ParameterError, match="bv_tv"):
        synthetic_structure((16, 16, 16), bv_tv=0.9)


def test_edge_phantom_disc_area_is_pi_r_squared():
    v = edge_phantom((4, 120, 120), 0.05, 2.0)
    frac = v.numpy()[0] / TISSUE_HU
    assert frac.sum() * 0.05**2 == pytest.approx(np.pi * 2.0**2, rel=1e-3)
    assert v.provenance.extra["radius_mm"] == 2.0 and len(v.provenance.extra["center_yx_vox"]) == 2


def test_slanted_edge_is_half_bone_and_slanted():
    v = slanted_edge_hu((4, 100, 100), 0.05, angle_deg=5.0)
    sl = v.numpy()[0] / TISSUE_HU
    assert sl.mean() == pytest.approx(0.5, abs=0.01)
    # the 50 % crossing moves along x as y changes: tan 5° per pixel row
    cross = [np.interp(0.5, sl[y], np.arange(100)) for y in (10, 90)]
    assert (cross[0] - cross[1]) / 80 == pytest.approx(np.tan(np.radians(5.0)), rel=0.05)
