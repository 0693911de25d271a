"""SMI (plate 0, rod 3, sphere 4, concave cavity negative) and DA from the MIL fabric tensor."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from trabecula.morphometry import degree_of_anisotropy, structure_model_index
from trabecula.phantom.shapes import oversampled_rod, oversampled_sphere, plate


def test_smi_plate_is_zero():
    r = structure_model_index(plate(20, size=64))
    assert r.smi == pytest.approx(0.0, abs=0.05) and r.concave_fraction == 0.0


def test_smi_rod_is_three():
    r = structure_model_index(oversampled_rod(24, length=40))
    assert r.smi == pytest.approx(3.0, rel=0.10) and r.concave_fraction < 0.05


def test_smi_sphere_is_four():
    r = structure_model_index(oversampled_sphere(20))
    assert r.smi == pytest.approx(4.0, rel=0.10) and r.concave_fraction < 0.05


def test_smi_concave_cavity_is_negative_and_fully_concave():
    block = np.ones((60, 60, 60), bool)
    zz, yy, xx = np.mgrid[:60, :60, :60]
    block &= (zz - 30) ** 2 + (yy - 30) ** 2 + (xx - 30) ** 2 > 18 ** 2
    r = structure_model_index(block)
    assert r.smi < -1.0 and r.concave_fraction > 0.9


def test_smi_anisotropic_spacing_keeps_the_shape():
    # the same physical rod (diameter 2.4 mm) sampled at 0.1 mm, and at 0.2 mm along z (its axis)
    iso = oversampled_rod(24, length=40)
    aniso = iso[::2]
    a = structure_model_index(iso, 0.1).smi
    b = structure_model_index(aniso, (0.2, 0.1, 0.1)).smi
    assert b == pytest.approx(a, rel=0.05)


def test_da_isotropic_structure_is_near_zero():
    rng = np.random.default_rng(0)
    f = ndimage.gaussian_filter(rng.standard_normal((96, 96, 96)), 2.5)
    r = degree_of_anisotropy(f > np.quantile(f, 0.75))
    assert r.da < 0.12 and r.da_scanco < 1.07


def test_da_stacked_sheets_high_with_normal_along_z():
    s = np.zeros((96, 96, 96), bool)
    s[::8] = True
    s[1::8] = True
    r = degree_of_anisotropy(s)
    assert r.da > 0.9
    assert abs(r.main_direction[0]) < 0.1  # the longest MIL lies in the sheets' plane, normal to z


def test_da_parallel_rods_main_direction_along_rods():
    rods = np.zeros((96, 96, 96), bool)
    for z in range(4, 96, 10):
        for x in range(4, 96, 10):
            rods[z:z + 3, :, x:x + 3] = True
    r = degree_of_anisotropy(rods, (0.05, 0.05, 0.05))
    assert r.da > 0.9 and abs(r.main_direction[1]) > 0.99
    assert r.da == pytest.approx(1 - 1 / r.da_scanco ** 2, rel=1e-9)


BAD_SPACINGS = [0.0, -1.0, (1.0, 1.0), float("inf")]


@pytest.mark.parametrize("bad", BAD_SPACINGS)
def test_smi_refuses_a_bad_spacing(bad):
    from trabecula.errors import ParameterError

    with pytest.raises(ParameterError, match="spacing"):
        structure_model_index(plate(4), bad)


@pytest.mark.parametrize("bad", BAD_SPACINGS)
def test_da_refuses_a_bad_spacing(bad):
    from trabecula.errors import ParameterError

    with pytest.raises(ParameterError, match="spacing"):
        degree_of_anisotropy(plate(4), bad)
