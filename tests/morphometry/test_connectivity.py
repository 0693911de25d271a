"""Euler characteristic (26-connected bone, Toriwaki–Yonekura lookup) and edge-corrected Conn.D."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from skimage.measure import euler_number

from trabecula.morphometry import connectivity, euler_characteristic
from trabecula.morphometry.connectivity import box_edge_correction


def _wire_box() -> np.ndarray:
    w = np.zeros((40, 40, 40), bool)
    for a in (5, 29):
        for b in (5, 29):
            w[a, b, 5:30] = True
            w[a, 5:30, b] = True
            w[5:30, a, b] = True
    return w


def test_wire_frame_box_has_euler_minus_4():
    # one component, five independent tunnels (β1 = 5): χ = 1 − 5 = −4
    assert euler_characteristic(_wire_box()) == -4


def test_ball_and_torus():
    zz, yy, xx = np.mgrid[-20:21, -20:21, -20:21]
    ball = zz ** 2 + yy ** 2 + xx ** 2 <= 15 ** 2
    assert euler_characteristic(ball) == 1
    ring = (np.sqrt(yy ** 2 + xx ** 2) - 12) ** 2 + zz ** 2 <= 4 ** 2
    assert euler_characteristic(ring) == 0  # torus: β0 = 1, β1 = 1
    shell = ball & ~(zz ** 2 + yy ** 2 + xx ** 2 <= 10 ** 2)
    assert euler_characteristic(shell) == 2  # a hollow ball: one cavity


def test_equals_skimage_euler_number():
    rng = np.random.default_rng(5)
    for _ in range(4):
        f = ndimage.gaussian_filter(rng.standard_normal((30, 34, 38)), 1.5)
        b = f > np.quantile(f, 0.7)
        assert euler_characteristic(b) == euler_number(b, connectivity=3)


def test_rod_crossing_a_box_contributes_one_connection():
    # a rod entering one face and leaving the opposite: χ = 1, the two face discs give ½ + ½ → Δχ = 0
    b = np.zeros((20, 20, 20), bool)
    b[:, 8:12, 8:12] = True
    r = connectivity(b, 0.5)
    assert r.euler_char == 1 and r.delta_chi == pytest.approx(0.0)
    assert r.conn_d_per_mm3 == pytest.approx(1.0 / (20 ** 3 * 0.125))
    assert box_edge_correction(b) == pytest.approx(1.0)


def test_floating_correction_is_additive_over_a_partition():
    rng = np.random.default_rng(9)
    f = ndimage.gaussian_filter(rng.standard_normal((48, 48, 48)), 2.0)
    b = f > np.quantile(f, 0.7)
    whole = np.zeros(b.shape, bool)
    whole[4:44, 4:44, 4:44] = True
    total = connectivity(b, 1.0, whole).delta_chi
    parts = 0.0
    for z0 in (4, 24):
        for y0 in (4, 24):
            for x0 in (4, 24):
                m = np.zeros(b.shape, bool)
                m[z0:z0 + 20, y0:y0 + 20, x0:x0 + 20] = True
                parts += connectivity(b, 1.0, m).delta_chi
    assert parts == pytest.approx(total, abs=1e-9)


def test_box_voi_uses_bonej_correction_on_the_crop():
    rng = np.random.default_rng(11)
    f = ndimage.gaussian_filter(rng.standard_normal((40, 40, 40)), 2.0)
    b = f > np.quantile(f, 0.7)
    box = (slice(5, 35), slice(6, 30), slice(2, 38))
    m = np.zeros(b.shape, bool)
    m[box] = True
    r = connectivity(b, 1.0, m, box=box)
    crop = b[box]
    assert r.delta_chi == pytest.approx(euler_number(crop, connectivity=3) - box_edge_correction(crop))
    assert "box" in r.correction


@pytest.mark.parametrize("bad", [0.0, -1.0, (1.0, 1.0), float("nan")])
def test_connectivity_refuses_a_bad_spacing(bad):
    from trabecula.errors import ParameterError

    with pytest.raises(ParameterError, match="spacing"):
        connectivity(np.ones((4, 4, 4), bool), bad)
