"""Local thickness: exactness against a brute-force definition, BoneJ's own shape tolerances, each mode's
accuracy on oversampled shapes (lattice-aligned and randomly oriented), anisotropic spacing, border and mask
conventions."""

from __future__ import annotations

import warnings

import edt
import numpy as np
import pytest
from scipy import ndimage

from trabecula.errors import ParameterError
from trabecula.morphometry import _lt_kernels as K
from trabecula.morphometry import local_thickness, thickness_stats
from trabecula.phantom.shapes import (
    bonej_brick,
    bonej_rod,
    bonej_sphere,
    oriented_plate,
    oriented_rod,
    oversampled_rod,
    oversampled_sphere,
    plate,
    random_unit_vector,
    subvoxel_offsets,
)


def _mean(m: np.ndarray, b: np.ndarray) -> float:
    return float(m[b].mean())


def _brute(fg, spacing, mode, border):
    """The definition, voxel by voxel: each voxel takes the largest value of all balls containing it."""
    sp = np.asarray(spacing, float)
    unit = sp.min()
    rel = sp / unit
    d2 = edt.edtsq(fg, anisotropy=tuple(rel), black_border=(border == "background")).astype(np.float32)
    dirs, dlen2, dgap, dvecs, dnvec = K.flat_tables(rel)
    zz, yy, xx = np.indices(fg.shape)
    out = np.zeros(fg.shape)
    for c in np.argwhere(fg):
        M = float(d2[tuple(c)])
        if mode in ("bonej", "plain"):
            val = np.sqrt(M)
        else:
            val = K._refined_radius(d2, fg, c[0], c[1], c[2], rel, K.HALF13, dirs, dlen2, dgap, dvecs, dnvec,
                                    border == "background")
            # the ball also takes the voxels whose centre lies at least half a voxel inside the refined ball
            w = max(float(np.float32(val)) - 0.5, 0.0) ** 2
            if np.allclose(rel, np.rint(rel)):
                w = float(np.ceil(w - K.EPS))  # integer squared norms: the same test, as an integer
            M = max(M, w)
        dist2 = ((zz - c[0]) * rel[0]) ** 2 + ((yy - c[1]) * rel[1]) ** 2 + ((xx - c[2]) * rel[2]) ** 2
        inside = dist2 <= M + 1e-5 if mode in ("bonej", "plain") else dist2 < M - 1e-5
        np.maximum(out, np.where(inside, val, 0.0), out=out)
    if mode == "bonej":  # BoneJ's surface clean-up, then the mask by the original structure
        painted = out > 0
        pad = np.pad(out, 1, constant_values=-1.0)
        surface = np.zeros(fg.shape, bool)
        for z, y, x in np.argwhere(painted):
            surface[z, y, x] = np.any(pad[z:z + 3, y:y + 3, x:x + 3] == 0)
        res = out.copy()
        for z, y, x in np.argwhere(surface):
            vals = []
            for dz in (-1, 0, 1):
                for dy in (-1, 0, 1):
                    for dx in (-1, 0, 1):
                        q = (z + dz, y + dy, x + dx)
                        if (dz, dy, dx) != (0, 0, 0) and all(0 <= q[i] < fg.shape[i] for i in range(3)) \
                                and out[q] > 0 and not surface[q]:
                            vals.append(out[q])
            if vals:
                res[z, y, x] = np.mean(vals)
        out = res
    out[~fg] = 0
    return out * 2 * unit


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["bonej", "subvoxel", "plain"])
@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (2.0, 1.0, 1.0), (1.3, 1.0, 0.7)])
@pytest.mark.parametrize("border", ["continue", "background"])
def test_engine_equals_brute_force_definition(mode, spacing, border):
    rng = np.random.default_rng(7)
    fg = ndimage.gaussian_filter(rng.standard_normal((18, 20, 22)), 1.5) > 0.1
    fast = local_thickness(fg, spacing, mode=mode, border=border)
    ref = _brute(fg, spacing, mode, border)
    assert np.abs(fast - ref).max() < 1e-5


@pytest.mark.parametrize("t", range(1, 21))
def test_plate_thickness_odd_even_like_bonej(t):
    b = bonej_brick(128, 128, t)
    expected = t + 1 if t % 2 else t  # BoneJ: pixelation and radius-to-diameter "weirdness"
    assert _mean(local_thickness(b, 1.0, mode="bonej"), b) == pytest.approx(expected, rel=0.05)


@pytest.mark.parametrize("d", range(1, 25))
def test_rod_thickness_within_bonej_tolerance(d):
    b = bonej_rod(10, d)
    assert _mean(local_thickness(b, 1.0, mode="bonej"), b) == pytest.approx(d, abs=1.5)


@pytest.mark.parametrize("r", range(2, 25))
def test_sphere_thickness_follows_bonej_regression(r):
    b = bonej_sphere(r)
    expected = 1.9441872882 * r - 1.218936
    assert _mean(local_thickness(b, 1.0, mode="bonej"), b) == pytest.approx(expected, rel=0.10)


@pytest.mark.parametrize("t", range(1, 21))
def test_subvoxel_mode_plate_reads_true_thickness_odd_and_even(t):
    b = plate(t)
    assert _mean(local_thickness(b, 1.0, mode="subvoxel"), b) == pytest.approx(t, rel=1e-6)


@pytest.mark.parametrize("t", range(6, 21))
def test_subvoxel_mode_brick_within_3_percent(t):
    b = bonej_brick(128, 128, t)
    assert _mean(local_thickness(b, 1.0, mode="subvoxel"), b) == pytest.approx(t, rel=0.03)


def _rod_error_over_positions(d: float, n: int) -> float:
    """Mean relative error of the subvoxel mode on an oversampled rod over ``n²`` stratified sub-voxel positions
    of its axis: one position is a sample of one, and small rods need many (d 6: −2.1 % over 16 positions,
    −4.0 % over 64 and −4.1 % over 144)."""
    vals = [_mean(local_thickness(b, 1.0, mode="subvoxel"), b) for b in (oversampled_rod(d, offset=o) for o in subvoxel_offsets(n, 2))]
    return float(np.mean(vals)) / d - 1


@pytest.mark.parametrize("d", [7, 8, 9, 10, 11, 12, 16, 20, 24])
def test_subvoxel_mode_oversampled_rods_within_3_percent(d):
    assert abs(_rod_error_over_positions(d, 8)) < 0.03


def test_subvoxel_mode_six_voxel_rod_reads_low_as_documented():
    """Known limit (docs/morphometry.md): a rod 6 voxels across reads 4.0 % low over 64 axis positions; the
    refined radius of such a small digital disc is itself low. Pinned so that a change is noticed."""
    assert -0.05 < _rod_error_over_positions(6, 8) < -0.03


def _sphere_error_over_positions(r: float, n: int) -> float:
    """Mean relative error of the subvoxel mode on an oversampled sphere over ``n³`` stratified sub-voxel
    positions of its centre (as for the rods)."""
    vals = [_mean(local_thickness(b, 1.0, mode="subvoxel"), b) for b in (oversampled_sphere(r, offset=o) for o in subvoxel_offsets(n, 3))]
    return float(np.mean(vals)) / (2 * r) - 1


def test_subvoxel_mode_eight_voxel_sphere_within_3_percent():
    """A sphere 8 voxels across (radius 4) over 216 centre positions: −1.7 % (−1.8 % over 512). It read
    −3.1 % before the subvoxel-mode ball took the voxels at least half a voxel inside the refined ball."""
    assert abs(_sphere_error_over_positions(4, 6)) < 0.03


@pytest.mark.parametrize("r", [3, 3.5])
def test_subvoxel_mode_six_and_seven_voxel_spheres_read_low_as_documented(r):
    """Known limit (docs/morphometry.md): spheres 6 and 7 voxels across read 4 % low over 512 centre positions
    (r 3 −4.0 %, r 3.5 −4.0 %; r 3 over 1000 positions −4.3 %; fewer positions scatter: over 216, −3.4 % and
    −2.4 %). Pinned so that a change is noticed."""
    assert -0.055 < _sphere_error_over_positions(r, 8) < -0.03


@pytest.mark.slow
@pytest.mark.parametrize("r", [5, 6, 8, 12, 16, 24])
def test_subvoxel_mode_oversampled_spheres_within_3_percent(r):
    assert abs(_sphere_error_over_positions(r, 3)) < 0.03


@pytest.mark.parametrize("mode", ["subvoxel", "bonej", "plain"])
def test_anisotropic_plate_same_thickness_in_mm(mode):
    # 0.6 mm plate: 12 voxels at 0.05 mm isotropic, 6 slices at 0.1 mm along z
    iso = plate(12, size=24)
    aniso = plate(6, size=24)
    t_iso = _mean(local_thickness(iso, 0.05, mode=mode), iso)
    t_aniso = _mean(local_thickness(aniso, (0.1, 0.05, 0.05), mode=mode), aniso)
    assert abs(t_iso - t_aniso) <= 0.1 + 1e-6  # within one (coarse) voxel
    if mode == "subvoxel":
        assert t_iso == pytest.approx(0.6, rel=1e-5) and t_aniso == pytest.approx(0.6, rel=1e-5)


def test_anisotropic_plate_along_fine_axis():
    # the same 0.6 mm plate, now normal to x where the voxels are fine
    b = np.zeros((20, 20, 18), bool)
    b[:, :, 3:15] = True
    assert _mean(local_thickness(b, (0.1, 0.05, 0.05)), b) == pytest.approx(0.6, rel=1e-5)


def test_border_continue_vs_background():
    # a slab touching the z ends: with "continue" it is an infinite plate (thickness 8 in x),
    # with "background" the image border caps it at 4 slices thick
    b = np.zeros((4, 30, 30), bool)
    b[:, :, 10:18] = True
    cont = _mean(local_thickness(b, 1.0, border="continue"), b)
    back = _mean(local_thickness(b, 1.0, border="background"), b)
    assert cont == pytest.approx(8.0, rel=1e-6)
    assert back == pytest.approx(4.0, rel=0.05)


def test_mask_keeps_structure_beyond_voi():
    # the VOI cuts a plate in half; the spheres still see the whole plate, the map is 0 outside the VOI
    b = plate(10, size=40)
    mask = np.zeros(b.shape, bool)
    mask[:, :, :20] = True
    m = local_thickness(b, 1.0, mask=mask)
    assert np.all(m[:, :, 20:] == 0)
    assert _mean(m, b & mask) == pytest.approx(10.0, rel=1e-6)
    st = thickness_stats(m, b, mask)
    assert st.n == int((b & mask).sum()) and st.mean == pytest.approx(10.0, rel=1e-6) and st.sd == pytest.approx(0, abs=1e-6)


def test_empty_structure_gives_zero_map_and_nan_stats():
    b = np.zeros((8, 8, 8), bool)
    m = local_thickness(b, 1.0)
    assert m.shape == b.shape and not m.any()
    st = thickness_stats(m, b)
    assert st.n == 0 and np.isnan(st.mean)


def test_full_structure_without_background_is_nan_with_warning():
    b = np.ones((6, 6, 6), bool)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        m = local_thickness(b, 1.0)
    assert np.all(np.isnan(m)) and any("whole image" in str(x.message) for x in w)
    # with the border as background it is a cube of side 6
    m2 = local_thickness(b, 1.0, border="background")
    assert np.all(np.isfinite(m2)) and m2.max() > 0


def test_bad_parameters_name_the_parameter():
    b = plate(4)
    with pytest.raises(ParameterError, match="mode"):
        local_thickness(b, 1.0, mode="fast")
    with pytest.raises(ParameterError, match="spacing"):
        local_thickness(b, (1.0, -1.0, 1.0))
    with pytest.raises(ParameterError, match="border"):
        local_thickness(b, 1.0, border="wrap")
    with pytest.raises(ParameterError, match="mask"):
        local_thickness(b, 1.0, mask=np.ones((2, 2, 2), bool))
    with pytest.raises(ParameterError, match="binary"):
        local_thickness(np.ones((4, 4)), 1.0)


@pytest.mark.parametrize("mode", ["bonej", "subvoxel", "plain"])
def test_voi_mask_gives_the_full_map_inside_the_voi(mode):
    # the VOI computation works on a box around the VOI; it must equal the whole-image map inside the VOI
    rng = np.random.default_rng(4)
    f = ndimage.gaussian_filter(rng.standard_normal((50, 54, 58)), 2) > 0.05
    m = np.zeros(f.shape, bool)
    m[15:35, 20:40, 10:30] = True
    for phase in (f, ~f):
        full = local_thickness(phase, (1.3, 1.0, 0.7), mode=mode)
        full[~m] = 0
        assert np.array_equal(local_thickness(phase, (1.3, 1.0, 0.7), mode=mode, mask=m), full)


# --- randomly oriented structure: what real bone looks like to the lattice -------------------------------
def _oriented_error(kind: str, size: float, mode: str, draws: int = 6, seed: int = 11,
                    central: bool = False) -> float:
    """Mean relative error over ``draws`` random orientations and sub-voxel positions of an oversampled rod
    (diameter ``size``) or plate (thickness ``size``), voxels; ``central`` measures only inside the central
    ball (radius a quarter of the cube), away from the image border that cuts the shape obliquely."""
    from trabecula.phantom.shapes import central_ball

    rng = np.random.default_rng(seed)
    make = oriented_rod if kind == "rod" else oriented_plate
    shapes = [make(size, random_unit_vector(rng), rng) for _ in range(draws)]
    sel = [b & central_ball(b.shape) if central else b for b in shapes]
    return float(np.mean([_mean(local_thickness(b, 1.0, mode=mode), s) for b, s in zip(shapes, sel, strict=True)])) / size - 1


# The 3 % criterion (decided on the morphometry issue): in the default mode, within 3 % of the true thickness on
# structure not aligned with the lattice — oriented rods and plates of 8 voxels and thicker, measured away from
# the image border — and on the foam convergence test. Lattice-aligned plates and small spheres are documented
# with their measured errors (docs/morphometry.md).
@pytest.mark.parametrize("d", [8, 12])
def test_default_mode_within_3_percent_on_oriented_rods_8_voxels_and_thicker_away_from_the_border(d):
    assert abs(_oriented_error("rod", d, "plain", central=True)) < 0.03


@pytest.mark.parametrize("t, lo, hi", [(8, 0.03, 0.07), (12, 0.015, 0.05)])
def test_default_mode_on_oriented_plates_away_from_the_border_misses_3_percent_as_documented(t, lo, hi):
    """Short of the 3 % criterion (docs/morphometry.md, +5.0 % at 8 and +3.2 % at 12 voxels): the nearest
    background voxel centre lies beyond an oblique face, so the distance ridge of an oblique plate reads about
    +0.4 voxel; the error falls as 1/t. With grey input and ``upsample=2`` the same plates are within 3 %
    (tests/morphometry/test_upsample.py)."""
    assert lo < _oriented_error("plate", t, "plain", central=True) < hi


@pytest.mark.parametrize("d", [6, 8, 12])
def test_plain_mode_randomly_oriented_rods_within_4_percent(d):
    assert abs(_oriented_error("rod", d, "plain")) < 0.04


@pytest.mark.parametrize("t, lo, hi", [(8, 0.04, 0.12), (12, 0.03, 0.10)])
def test_plain_mode_randomly_oriented_plates_read_high_as_documented(t, lo, hi):
    """Known limit (docs/morphometry.md): the nearest background voxel centre lies beyond an oblique face, and
    each voxel takes the largest ball that holds it, so oriented plates read about +0.6 to +0.7 voxel."""
    assert lo < _oriented_error("plate", t, "plain") < hi


def test_subvoxel_mode_reads_high_on_randomly_oriented_structure_as_documented():
    """Known limit (docs/morphometry.md): the tent refinement that makes lattice-aligned shapes exact adds
    increments where nothing is aligned."""
    assert 0.03 < _oriented_error("rod", 8, "subvoxel") < 0.12
    assert 0.08 < _oriented_error("plate", 8, "subvoxel") < 0.22
    assert _oriented_error("plate", 8, "subvoxel") > _oriented_error("plate", 8, "plain") + 0.03


@pytest.mark.slow
def test_plain_mode_is_closest_to_true_thickness_on_a_trabecular_phantom(fine_foam):
    """A Voronoi-foam phantom (struts 0.21 mm) built on a 0.00625 mm grid (34 voxels per strut), where the
    modes have converged to within 4 % of each other, and partial-volumed onto a 0.025 mm grid (8.4 voxels
    per strut, a typical micro-CT of human trabecular bone): plain reads within 3 % of the fine-grid value,
    subvoxel 8 % or more above it (bench/bench_thickness_accuracy.py: +1.5 % and +12.5 % on a 3 mm cube)."""
    from trabecula.morphometry.voi import cylinder_voi
    from trabecula.pipeline.twin_study import partial_volume

    truth, center = fine_foam

    def tb_th(vol, mode):
        b = vol.numpy().astype(bool)
        voi = cylinder_voi(vol, diameter_mm=1.4, height_mm=1.4, center_mm=center)
        return float(local_thickness(b, vol.spacing, mode=mode, mask=voi)[b & voi].mean())

    fine = {m: tb_th(truth, m) for m in ("plain", "subvoxel")}
    assert abs(fine["subvoxel"] / fine["plain"] - 1) < 0.04  # converged (2.7 % apart here)
    ref = 0.5 * (fine["plain"] + fine["subvoxel"])
    coarse = partial_volume(truth, (0.025, 0.025, 0.025))
    assert abs(tb_th(coarse, "plain") / ref - 1) < 0.03
    assert tb_th(coarse, "subvoxel") / ref - 1 > 0.08
