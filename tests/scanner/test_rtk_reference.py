"""trabecula's numba projector and FDK against RTK (the reference backend) on the same data."""

import numpy as np
import pytest

from trabecula.scanner.geometry import ScanGeometry, full_angles, rtk_matrices, to_rtk
from trabecula.scanner.project import forward_project
from trabecula.scanner.recon import Grid, fdk

# RTK's SWIG wrappers emit DeprecationWarnings on first load
pytestmark = pytest.mark.filterwarnings("ignore:builtin type:DeprecationWarning")


def _rel_rmse(a, b):
    return float(np.sqrt(np.mean((a - b) ** 2)) / np.sqrt(np.mean(b**2)))


@pytest.fixture(scope="module")
def small_scan():
    """A 48³ object (anisotropic voxels, two materials) and a cone-beam geometry with a centre offset."""
    n = 48
    sp = (0.5, 0.4, 0.45)
    z, y, x = np.mgrid[:n, :n, :n]
    c = (n - 1) / 2
    ball = ((x - c) ** 2 + (y - c) ** 2 + (z - c) ** 2 < 20**2).astype(np.float32)
    rng = np.random.default_rng(7)
    vol = np.stack([ball, rng.random((n, n, n)).astype(np.float32) * ball], -1)
    vol = np.pad(vol, ((1, 1), (1, 1), (1, 1), (0, 0)))
    origin = tuple(-(n + 1) / 2 * s + 0.3 for s in sp)
    geom = ScanGeometry(100.0, 200.0, full_angles(36), 0.8, 0.8, 96, 80, -0.8 * 47.5, -0.8 * 40, offset=0.3)
    return vol, sp, origin, geom


@pytest.mark.slow
def test_geometry_matrices_equal_rtks(small_scan):
    geom = small_scan[3]
    assert np.abs(geom.matrices() - rtk_matrices(to_rtk(geom))).max() < 1e-9


@pytest.mark.slow
def test_numba_joseph_projector_matches_rtk(small_scan):
    vol, sp, origin, geom = small_scan
    ours = forward_project(vol, sp, origin, geom, oversample=2, backend="numba")
    ref = forward_project(vol, sp, origin, geom, oversample=2, backend="rtk")
    assert ours.shape == (36, 160, 192, 2)
    assert _rel_rmse(ours, ref) < 1e-5


def test_projector_gives_the_chord_of_a_ball():
    """Path length through a uniform ball of radius R along the central ray is 2R (within a voxel)."""
    n, s = 81, 0.1
    z, y, x = (np.mgrid[:n, :n, :n] - (n - 1) / 2) * s
    ball = (x**2 + y**2 + z**2 <= 3.0**2).astype(np.float32)[..., None]
    ball = np.pad(ball, ((1, 1), (1, 1), (1, 1), (0, 0)))
    origin = (-(n + 1) / 2 * s,) * 3
    geom = ScanGeometry(200.0, 400.0, full_angles(4), 0.2, 0.2, 3, 3, -0.2, -0.2)
    p = forward_project(ball, (s, s, s), origin, geom, 1)
    assert p[:, 1, 1, 0] == pytest.approx(6.0, abs=0.1)


@pytest.mark.slow
@pytest.mark.parametrize("kernel", ["ramp", "shepp-logan"])
def test_numba_fdk_matches_rtk_within_1e3(small_scan, kernel):
    vol, sp, origin, geom = small_scan
    p = forward_project(vol, sp, origin, geom.with_offset(0.0), oversample=1)[..., 0] * 0.02
    grid = Grid((40, 40, 40), (0.5, 0.5, 0.5), (-9.75,) * 3)
    ours = fdk(p, geom, grid, kernel, "numba")
    ref = fdk(p, geom, grid, kernel, "rtk")
    assert _rel_rmse(ours, ref) < 1e-3
    # and it reconstructs the ball: μ 0.02 /mm at the centre
    assert ours[20, 20, 20] == pytest.approx(0.02, rel=0.05)
