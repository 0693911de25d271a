"""Degree of anisotropy (DA) and main direction from the mean intercept length (MIL) fabric tensor.

For each of ``n_directions`` test directions ω (a Fibonacci lattice on the half sphere; ω and −ω are the
same line), parallel test lines a few voxels apart cross the VOI; each is sampled every 0.7 voxel
(nearest voxel) and the number of marrow→bone transitions inside the VOI is counted.
``MIL(ω) = total line length in the VOI / number of intercepts`` (a direction with no intercept gets the
total line length, the largest value it could have). When the fitted quadric is degenerate (parallel
sheets: no intercept within the sheets' plane) its tiny non-positive eigenvalues are clamped, giving DA → 1. An ellipsoid ``xᵀ M x = 1`` is fitted by linear least
squares to the points ``±MIL(ω)·ω`` (Harrigan & Mann 1984); its radii ``r = 1/√m`` (``m`` the eigenvalues of
``M``) are the MIL along the principal directions.

Conventions reported (both from the same fit):

* ``da = 1 − m_min / m_max = 1 − (r_min / r_max)²`` — BoneJ's degree of anisotropy (0 isotropic, → 1 highly
  anisotropic);
* ``da_scanco = r_max / r_min`` — the ratio of the longest to the shortest MIL axis (the eigenvalues of the
  fabric tensor ``H = M^{-1/2}``), as Scanco reports it (1 isotropic); ``da = 1 − 1/da_scanco²``;
* ``main_direction`` — the unit vector (z, y, x) of the longest MIL axis (the direction the trabeculae run in).

Distances are in mm with the real (anisotropic) spacing. Results are reproducible from ``seed`` (the line
grid offsets).

Reference: Harrigan TP, Mann RW (1984) Characterization of microstructural anisotropy in orthotropic
materials using a second rank tensor. J Mater Sci 19:761–767.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from trabecula.errors import ParameterError
from trabecula.volume import as_spacing


@dataclass
class AnisotropyResult:
    da: float
    da_scanco: float
    main_direction: tuple[float, float, float]
    mil_radii_mm: tuple[float, float, float]  # longest → shortest
    n_directions: int


def fibonacci_hemisphere(n: int) -> np.ndarray:
    """``n`` nearly uniform unit vectors (z, y, x) on the half sphere z >= 0."""
    k = np.arange(n) + 0.5
    z = 1.0 - k / n  # uniform in z on (0, 1]
    phi = np.pi * (1 + 5 ** 0.5) * k
    r = np.sqrt(1 - z * z)
    return np.stack([z, r * np.sin(phi), r * np.cos(phi)], axis=1)


@njit(parallel=True, cache=True)
def _mil(bone, voi, sp, dirs, centre, radius, line_step, sample_step, offsets):
    nd = dirs.shape[0]
    nz, ny, nx = bone.shape
    length = np.zeros(nd)
    hits = np.zeros(nd)
    for d in prange(nd):
        w = dirs[d]
        # orthonormal basis (u, v) of the plane perpendicular to w
        if abs(w[0]) < 0.9:
            a = np.array([1.0, 0.0, 0.0])
        else:
            a = np.array([0.0, 1.0, 0.0])
        u = a - (a[0] * w[0] + a[1] * w[1] + a[2] * w[2]) * w
        un = math.sqrt(u[0] ** 2 + u[1] ** 2 + u[2] ** 2)
        u = u / un
        v = np.array([w[1] * u[2] - w[2] * u[1], w[2] * u[0] - w[0] * u[2], w[0] * u[1] - w[1] * u[0]])
        nl = int(2 * radius / line_step) + 1
        nsamp = int(2 * radius / sample_step) + 1
        L = 0.0
        H = 0.0
        for i in range(nl):
            a0 = -radius + (i + offsets[d, 0]) * line_step
            for j in range(nl):
                b0 = -radius + (j + offsets[d, 1]) * line_step
                if a0 * a0 + b0 * b0 > radius * radius:
                    continue
                prev = -1  # -1 outside VOI, 0 marrow, 1 bone
                for s in range(nsamp):
                    t = -radius + s * sample_step
                    pz = centre[0] + a0 * u[0] + b0 * v[0] + t * w[0]
                    py = centre[1] + a0 * u[1] + b0 * v[1] + t * w[1]
                    px = centre[2] + a0 * u[2] + b0 * v[2] + t * w[2]
                    iz = int(math.floor(pz / sp[0] + 0.5))
                    iy = int(math.floor(py / sp[1] + 0.5))
                    ix = int(math.floor(px / sp[2] + 0.5))
                    if iz < 0 or iy < 0 or ix < 0 or iz >= nz or iy >= ny or ix >= nx or not voi[iz, iy, ix]:
                        prev = -1
                        continue
                    cur = 1 if bone[iz, iy, ix] else 0
                    L += sample_step
                    if cur == 1 and prev == 0:
                        H += 1.0
                    prev = cur
        length[d] = L
        hits[d] = H
    return length, hits


def fit_mil_ellipsoid(dirs: np.ndarray, mil: np.ndarray) -> np.ndarray | None:
    """Least-squares quadric ``xᵀ M x = 1`` through ``±mil·dir``; returns M (3×3) or None if not positive."""
    p = dirs * mil[:, None]
    z, y, x = p[:, 0], p[:, 1], p[:, 2]
    A = np.stack([z * z, y * y, x * x, 2 * z * y, 2 * z * x, 2 * y * x], axis=1)
    coef, *_ = np.linalg.lstsq(A, np.ones(len(p)), rcond=None)
    M = np.array([[coef[0], coef[3], coef[4]], [coef[3], coef[1], coef[5]], [coef[4], coef[5], coef[2]]])
    ev, vec = np.linalg.eigh(M)
    if ev[-1] <= 0:
        return None
    if ev[0] <= 0:
        # a cylinder- or slab-like MIL distribution (e.g. parallel sheets: no intercepts within the sheets)
        # is a degenerate quadric; small non-positive eigenvalues are clamped, large negative ones fail the fit
        if ev[0] < -0.05 * ev[-1]:
            return None
        ev = np.maximum(ev, 1e-9 * ev[-1])
        M = (vec * ev) @ vec.T
    return M


@dataclass(frozen=True)
class MILSetup:
    """The MIL line grid of a VOI: directions, the sphere (centre, radius, mm) the lines cross, line and sample
    steps (mm) and the seeded in-plane offsets of each direction's grid."""

    dirs: np.ndarray
    centre: np.ndarray
    radius: float
    line_step: float
    sample_step: float
    offsets: np.ndarray
    n_directions: int


def mil_setup(voi_box, spacing, *, n_directions: int = 128, line_spacing_voxels: float = 3.0, seed: int = 0,
              max_samples: float = 4e8) -> MILSetup:
    """The line grid for the VOI whose index bounding box is ``voi_box = (lo, hi)`` (``hi`` exclusive)."""
    if n_directions < 9:
        raise ParameterError("n_directions", "at least 9 directions are needed to fit an ellipsoid")
    sp = np.asarray(as_spacing(spacing))
    lo = np.asarray(voi_box[0], float)
    hi = np.asarray(voi_box[1], float) - 1.0
    centre = (lo + hi) / 2.0 * sp
    radius = 0.5 * float(np.linalg.norm((hi - lo + 1) * sp)) + sp.max()
    line_step = line_spacing_voxels * sp.min()
    sample_step = 0.7 * sp.min()
    # keep the work bounded on large volumes: widen the line spacing if needed
    per_dir = (2 * radius / line_step) ** 2 * (np.pi / 4) * (2 * radius / sample_step)
    if per_dir * n_directions > max_samples:
        line_step *= math.sqrt(per_dir * n_directions / max_samples)
    dirs = fibonacci_hemisphere(n_directions)
    offsets = np.random.default_rng(seed).random((n_directions, 2))
    return MILSetup(dirs, centre, radius, line_step, sample_step, offsets, n_directions)


def anisotropy_from_mil(length: np.ndarray, hits: np.ndarray, setup: MILSetup) -> AnisotropyResult:
    """DA, Scanco DA, main direction and MIL radii from the per-direction line lengths and intercept counts."""
    n = setup.n_directions
    nan = AnisotropyResult(float("nan"), float("nan"), (0.0, 0.0, 0.0), (float("nan"),) * 3, n)
    if hits.sum() == 0:
        return nan
    mil = length / np.maximum(hits, 1.0)
    M = fit_mil_ellipsoid(setup.dirs, mil)
    if M is None:
        return nan
    evals, evecs = np.linalg.eigh(M)  # ascending: evals[0] = m_min (longest axis)
    radii = 1.0 / np.sqrt(evals)
    da = 1.0 - evals[0] / evals[-1]
    da_sc = radii[0] / radii[-1]
    main = evecs[:, 0]
    if main[np.argmax(np.abs(main))] < 0:
        main = -main
    return AnisotropyResult(float(da), float(da_sc), tuple(float(v) for v in main),  # type: ignore[arg-type]
                            tuple(float(r) for r in radii), n)  # type: ignore[arg-type]


@njit(cache=True)
def _state(bone, voi, use_voi, off, shape, pz, py, px, sp):
    """-1 outside the image or VOI, 0 marrow, 1 bone, for the sample at (pz, py, px) mm (nearest voxel);
    ``bone``/``voi`` hold the image from voxel ``off`` on."""
    iz = int(math.floor(pz / sp[0] + 0.5))
    iy = int(math.floor(py / sp[1] + 0.5))
    ix = int(math.floor(px / sp[2] + 0.5))
    if iz < 0 or iy < 0 or ix < 0 or iz >= shape[0] or iy >= shape[1] or ix >= shape[2]:
        return -1
    lz, ly, lx = iz - off[0], iy - off[1], ix - off[2]
    if use_voi and not voi[lz, ly, lx]:
        return -1
    return 1 if bone[lz, ly, lx] else 0


@njit(cache=True)
def _t_range(c, w, s, lo, hi, r):
    """Interval of t (mm along the line) where the nearest voxel index ``floor((c + t w)/s + 0.5)`` lies in
    [lo, hi), widened by a sample on each side (the caller checks ownership exactly)."""
    if abs(w) < 1e-12:
        k = math.floor(c / s + 0.5)
        if k < lo or k >= hi:
            return 1.0, -1.0
        return -r, r
    t0 = ((lo - 0.5) * s - c) / w
    t1 = ((hi - 0.5) * s - c) / w
    if t0 > t1:
        t0, t1 = t1, t0
    return t0, t1


@njit(parallel=True, cache=True)
def _mil_block(bone, voi, use_voi, off, lo, hi, shape, sp, dirs, centre, radius, line_step, sample_step, offsets):
    """:func:`_mil`'s sums over the samples whose nearest voxel lies in the block ``lo``–``hi`` (the arrays hold
    the block and at least one voxel around it, from voxel ``off``): each sample adds ``sample_step`` to the
    length when inside the VOI, and an intercept when it is bone and the previous sample marrow."""
    nd = dirs.shape[0]
    length = np.zeros(nd)
    hits = np.zeros(nd)
    for d in prange(nd):
        w = dirs[d]
        if abs(w[0]) < 0.9:
            a = np.array([1.0, 0.0, 0.0])
        else:
            a = np.array([0.0, 1.0, 0.0])
        u = a - (a[0] * w[0] + a[1] * w[1] + a[2] * w[2]) * w
        un = math.sqrt(u[0] ** 2 + u[1] ** 2 + u[2] ** 2)
        u = u / un
        v = np.array([w[1] * u[2] - w[2] * u[1], w[2] * u[0] - w[0] * u[2], w[0] * u[1] - w[1] * u[0]])
        nl = int(2 * radius / line_step) + 1
        nsamp = int(2 * radius / sample_step) + 1
        L = 0.0
        H = 0.0
        for i in range(nl):
            a0 = -radius + (i + offsets[d, 0]) * line_step
            for j in range(nl):
                b0 = -radius + (j + offsets[d, 1]) * line_step
                if a0 * a0 + b0 * b0 > radius * radius:
                    continue
                cz = centre[0] + a0 * u[0] + b0 * v[0]
                cy = centre[1] + a0 * u[1] + b0 * v[1]
                cx = centre[2] + a0 * u[2] + b0 * v[2]
                tlo = -radius
                thi = radius
                ok = True
                for ax in range(3):
                    c = cz if ax == 0 else (cy if ax == 1 else cx)
                    t0, t1 = _t_range(c, w[ax], sp[ax], lo[ax], hi[ax], radius)
                    if t0 > t1:
                        ok = False
                        break
                    tlo = max(tlo, t0)
                    thi = min(thi, t1)
                if not ok or tlo > thi:
                    continue
                s0 = max(0, int(math.floor((tlo + radius) / sample_step)) - 1)
                s1 = min(nsamp - 1, int(math.ceil((thi + radius) / sample_step)) + 1)
                for s in range(s0, s1 + 1):
                    t = -radius + s * sample_step
                    pz = cz + t * w[0]
                    py = cy + t * w[1]
                    px = cx + t * w[2]
                    iz = int(math.floor(pz / sp[0] + 0.5))
                    iy = int(math.floor(py / sp[1] + 0.5))
                    ix = int(math.floor(px / sp[2] + 0.5))
                    if iz < lo[0] or iz >= hi[0] or iy < lo[1] or iy >= hi[1] or ix < lo[2] or ix >= hi[2]:
                        continue
                    cur = _state(bone, voi, use_voi, off, shape, pz, py, px, sp)
                    if cur < 0:
                        continue
                    L += sample_step
                    if cur == 1 and s > 0:
                        tp = t - sample_step
                        prev = _state(bone, voi, use_voi, off, shape, cz + tp * w[0], cy + tp * w[1],
                                      cx + tp * w[2], sp)
                        if prev == 0:
                            H += 1.0
        length[d] = L
        hits[d] = H
    return length, hits


def mil_block_sums(bone: np.ndarray, voi: np.ndarray | None, ext_lo, lo, hi, shape, spacing,
                   setup: MILSetup) -> tuple[np.ndarray, np.ndarray]:
    """Per-direction MIL line length (mm) and intercept count of the samples owned by the block ``lo``–``hi``
    (image indices); ``bone``/``voi`` hold the image region from ``ext_lo`` on, at least one voxel beyond the
    block where the image continues. Summed over a partition of the image into blocks they equal
    :func:`degree_of_anisotropy`'s sums on the same :func:`mil_setup`."""
    b = np.ascontiguousarray(bone, dtype=bool)
    use_voi = voi is not None
    m = np.ascontiguousarray(voi, dtype=bool) if use_voi else np.zeros((1, 1, 1), bool)
    sp = np.asarray(as_spacing(spacing), float)
    return _mil_block(b, m, use_voi, np.asarray(ext_lo, np.int64), np.asarray(lo, np.int64),
                      np.asarray(hi, np.int64), np.asarray(shape, np.int64), sp, setup.dirs, setup.centre,
                      float(setup.radius), float(setup.line_step), float(setup.sample_step), setup.offsets)


def degree_of_anisotropy(bone: np.ndarray, spacing=(1.0, 1.0, 1.0), voi: np.ndarray | None = None,
                         n_directions: int = 128, line_spacing_voxels: float = 3.0, seed: int = 0,
                         max_samples: float = 4e8) -> AnisotropyResult:
    """MIL fabric tensor of the bone inside a VOI: DA (BoneJ and Scanco conventions) and main direction.

    Returns NaN values (and a zero direction) when there are no intercepts at all or the fit fails.
    """
    b = np.ascontiguousarray(np.asarray(bone) != 0)
    if b.ndim != 3:
        raise ParameterError("bone", f"expected a 3-D array, got shape {b.shape}")
    if n_directions < 9:
        raise ParameterError("n_directions", "at least 9 directions are needed to fit an ellipsoid")
    sp = np.asarray(as_spacing(spacing))
    m = np.ones(b.shape, bool) if voi is None else np.ascontiguousarray(np.asarray(voi) != 0)
    if not m.any():
        raise ParameterError("voi", "the VOI is empty")
    lo = [int(np.nonzero(m.any(axis=tuple(a for a in range(3) if a != ax)))[0][0]) for ax in range(3)]
    hi = [int(np.nonzero(m.any(axis=tuple(a for a in range(3) if a != ax)))[0][-1]) + 1 for ax in range(3)]
    setup = mil_setup((lo, hi), sp, n_directions=n_directions, line_spacing_voxels=line_spacing_voxels,
                      seed=seed, max_samples=max_samples)
    length, hits = _mil(b, m, sp, setup.dirs, setup.centre, setup.radius, setup.line_step, setup.sample_step,
                        setup.offsets)
    return anisotropy_from_mil(length, hits, setup)
