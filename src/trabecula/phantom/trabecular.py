"""Trabecular bone phantoms with controlled BV/TV, Tb.Th, Tb.Sp, plate/rod character and anisotropy.

Model: the cell skeleton of a Voronoi foam (Gibson 1985, *J Biomech* 18:317; Silva & Gibson 1997,
*Bone* 21:191) — seeds on a jittered cubic lattice of pitch ``cell_mm`` in a frame stretched by
``anisotropy`` along ``main_axis`` (volume-preserving: ``a^(2/3)`` along it, ``a^(-1/3)`` across), so
cells, and with them rods and plates, align with that axis as in vertebrae. Cell *edges* become rods of
diameter ``strut_mm``; a fraction ``plate_fraction`` of cell *faces* become plates of thickness
``strut_mm``; a fraction ``1 - rod_fraction`` of rods is removed (perforated, osteoporotic-like
networks). Each rod and plate thickness is scaled by a uniform factor ``1 ± thickness_cv·√3``. The
distance fields are exact (see :mod:`trabecula.phantom._foam`), so struts are smooth at any voxel size.

Plates and rods are selected by hashed uniforms against ``plate_fraction`` / ``rod_fraction`` with a
short linear ramp (those near the threshold are thinned in proportion), and seeds are hashed from their
lattice index, so the structure — and its morphometry — deforms continuously as the knobs move, and the
result is reproducible from ``seed``.

Calibration: the *measured* morphometry (the project's engine, :func:`trabecula.morphometry.measure`,
local-thickness Tb.Th/Tb.Sp as diameters in mm) is driven to the targets (:func:`calibrate_foam`):
BV/TV is matched exactly by the structure knob ``s`` (``s ≥ 0`` plate fraction, ``s < 0`` removes
rods: ``rod_fraction = 1 + s``) and a few Broyden (quasi-Newton) steps on ``(log cell_mm, log
strut_mm)`` bring Tb.Th and Tb.Sp in. With three targets the ``plate_fraction`` you give is only the
starting point; with fewer targets the plate/rod character stays as given.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np

from trabecula.errors import ParameterError
from trabecula.phantom._base import (
    LABEL,
    Phantom,
    check_material,
    grid_shape,
    make_phantom,
    positive,
    triple_mm,
)
from trabecula.phantom._foam import foam_fields, lattice_seeds
from trabecula.phantom._measure import measure_binary
from trabecula.progress import progress_steps

Measure = Callable[[np.ndarray, Sequence[float]], dict]

_AXES = {"z": 0, "y": 1, "x": 2}


@dataclass(frozen=True)
class FoamParams:
    """Geometric knobs of the Voronoi-foam generator (lengths in mm).

    ``cell_mm``: lattice pitch of the seeds (mean cell size); ``strut_mm``: nominal rod diameter and
    plate thickness; ``plate_fraction``: fraction of cell faces that are plates (0 = rods only);
    ``rod_fraction``: fraction of cell edges kept as rods; ``anisotropy``: cell stretch along
    ``main_axis`` (1 = isotropic); ``jitter``: seed jitter as a fraction of the cell (≤ 0.5);
    ``thickness_cv``: coefficient of variation of strut thickness (uniform).
    """

    cell_mm: float = 1.1
    strut_mm: float = 0.2
    plate_fraction: float = 0.3
    rod_fraction: float = 1.0
    anisotropy: float = 1.0
    main_axis: str = "z"
    jitter: float = 0.4
    thickness_cv: float = 0.15

    def check(self) -> FoamParams:
        positive(self.cell_mm, "cell_mm")
        positive(self.strut_mm, "strut_mm")
        if not 0.0 <= self.plate_fraction <= 1.0:
            raise ParameterError("plate_fraction", f"must be in [0, 1], got {self.plate_fraction}")
        if not 0.0 < self.rod_fraction <= 1.0:
            raise ParameterError("rod_fraction", f"must be in (0, 1], got {self.rod_fraction}")
        if not 0.2 <= self.anisotropy <= 5.0:
            raise ParameterError("anisotropy", f"must be in [0.2, 5] (cell stretch along the main axis), got {self.anisotropy}")
        if self.main_axis not in _AXES:
            raise ParameterError("main_axis", f"must be z, y or x, got {self.main_axis!r}")
        if not 0.0 <= self.jitter <= 0.5:
            raise ParameterError("jitter", f"must be in [0, 0.5], got {self.jitter}")
        if not 0.0 <= self.thickness_cv <= 0.5:
            raise ParameterError("thickness_cv", f"must be in [0, 0.5], got {self.thickness_cv}")
        if self.strut_mm >= self.cell_mm:
            raise ParameterError("strut_mm", f"struts ({self.strut_mm:g} mm) must be thinner than the cells ({self.cell_mm:g} mm)")
        return self

    def stretch(self) -> np.ndarray:
        s = np.full(3, self.anisotropy ** (-1.0 / 3.0))
        s[_AXES[self.main_axis]] = self.anisotropy ** (2.0 / 3.0)
        return s


def _fields(shape: Sequence[int], voxel_mm: float, p: FoamParams, seed: int, z0: int = 0, nz: int | None = None):
    """The six foam distance fields (float32) for slices ``z0 .. z0+nz`` of a box of ``shape``."""
    nz = shape[0] - z0 if nz is None else nz
    voxel = np.full(3, float(voxel_mm))
    stretch = p.stretch()
    cell = float(p.cell_mm)
    zlo = z0 * voxel_mm / stretch[0]
    zhi = (z0 + nz) * voxel_mm / stretch[0]
    lo_u = np.array([zlo, 0.0, 0.0])
    hi_u = np.array([zhi, shape[1] * voxel_mm / stretch[1], shape[2] * voxel_mm / stretch[2]])
    base = np.floor(lo_u / cell).astype(np.int64) - 3
    top = np.ceil(hi_u / cell).astype(np.int64) + 3
    gshape = np.asarray(top - base, np.int64)
    seeds = lattice_seeds(base, gshape, cell, float(p.jitter), int(seed) & 0x7FFFFFFF)
    outs = [np.empty((nz, shape[1], shape[2]), np.float32) for _ in range(6)]
    foam_fields(z0, nz, shape[1], shape[2], voxel, stretch, base, cell, float(p.jitter), seeds, int(seed) & 0x7FFFFFFF,
                float(p.thickness_cv), *outs)
    return outs


#: width of the selection ramp: a plate (rod) whose uniform lies within RAMP of the threshold is thinned in
#: proportion, so BV/TV and the morphometry change continuously with plate_fraction / rod_fraction.
RAMP = 0.1


def _gain(u: np.ndarray, fraction: float) -> np.ndarray | float:
    """Thickness factor of a plate/rod with hashed uniform ``u`` at selection ``fraction``: 1 well inside
    the selected fraction, 0 outside, linear across a ``RAMP``-wide band (1 everywhere at fraction 1)."""
    if fraction >= 1.0:
        return 1.0
    return np.clip((fraction * (1.0 + RAMP) - u) / RAMP, 0.0, 1.0)


def _binarize(fields, strut_mm: float, plate_fraction: float, rod_fraction: float) -> np.ndarray:
    e, ue, p1, u1, p2, u2 = fields
    h = np.float32(strut_mm / 2.0)
    bone = e < h * _gain(ue, rod_fraction)
    if plate_fraction > 0:
        bone |= p1 < h * _gain(u1, plate_fraction)
        bone |= p2 < h * _gain(u2, plate_fraction)
    return bone


def foam_bone(shape: Sequence[int], voxel_mm: float, params: FoamParams, seed: int = 0, chunk: int = 24,
              progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Boolean (z, y, x) bone mask of the Voronoi foam on a box of ``shape`` voxels of ``voxel_mm``.

    Voxel centres sit at ``(index + 0.5) * voxel_mm`` from the box corner; the foam extends beyond the
    box (no boundary effects). Computed in slabs of ``chunk`` slices, so memory is the output plus
    ``24 * chunk * ny * nx`` bytes. ``progress(n)`` is called with the slices done.
    """
    params.check()
    shape = tuple(int(n) for n in shape)
    out = np.empty(shape, bool)
    for z0 in range(0, shape[0], chunk):
        nz = min(chunk, shape[0] - z0)
        f = _fields(shape, voxel_mm, params, seed, z0, nz)
        out[z0:z0 + nz] = _binarize(f, params.strut_mm, params.plate_fraction, params.rod_fraction)
        if progress is not None:
            progress(nz)
    return out


def default_measure(binary: np.ndarray, spacing: Sequence[float]) -> dict:
    return measure_binary(binary, spacing)


# ------------------------------------------------------------------------------------------ calibration
_KEYS = ("bv_tv", "tb_th_mm", "tb_sp_mm")
# d log(measured) / d (log cell, log strut, s): a starting Jacobian from a sweep of the generator
# (scale invariance fixes the cell column: d/dlog cell = [0, 1, 1] - d/dlog strut); Broyden refines it.
_J0 = np.array([[-1.4, 1.4, 2.0],
                [0.05, 0.95, 0.4],
                [1.2, -0.2, -0.35]])
# with BV/TV held by the structure knob: d log(Tb.Th, Tb.Sp) / d (log cell, log strut); rows sum to 1
_J0_HELD = np.array([[0.1, 0.9],
                     [1.1, -0.1]])
_S_MIN, _S_MAX = -0.85, 1.0


def _knobs(s: float) -> tuple[float, float]:
    """(plate_fraction, rod_fraction) from the structure knob ``s``."""
    return (min(max(s, 0.0), 1.0), 1.0 if s >= 0 else max(1.0 + s, 1.0 + _S_MIN))


def _s_of(p: FoamParams) -> float:
    return p.plate_fraction if p.rod_fraction >= 1.0 else p.rod_fraction - 1.0


@dataclass
class Calibration:
    """Outcome of :func:`calibrate_foam`: the parameters, what they measure, and the iterations."""

    params: FoamParams
    measured: dict
    targets: dict
    iterations: list
    converged: bool

    def rel_errors(self) -> dict:
        return {k: self.measured[k] / v - 1.0 for k, v in self.targets.items()}


def _match_bvtv(fields, strut_mm: float, target: float, s0: float) -> float:
    """Structure knob ``s`` whose BV/TV on cached fields equals ``target`` (bisection on the monotone,
    continuous BV/TV(s); clamped to ``[-0.85, 1]``)."""
    def f(s: float) -> float:
        pf, rf = _knobs(s)
        return float(_binarize(fields, strut_mm, pf, rf).mean()) - target

    lo, hi = _S_MIN, _S_MAX
    flo, fhi = f(lo), f(hi)
    if flo >= 0:
        return lo
    if fhi <= 0:
        return hi
    s, fs = s0, f(min(max(s0, lo), hi))
    for _ in range(40):
        if fs > 0:
            hi, fhi = s, fs
        else:
            lo, flo = s, fs
        if abs(fs) <= 2e-3 * target or hi - lo < 1e-4:
            break
        # regula falsi step, kept inside the bracket (bisection when it stalls)
        s_new = lo - flo * (hi - lo) / (fhi - flo)
        s = s_new if lo + 0.05 * (hi - lo) < s_new < hi - 0.05 * (hi - lo) else 0.5 * (lo + hi)
        fs = f(s)
    return float(s)


def _record(it: int, p: FoamParams, m: dict, err: float) -> dict:
    return {"iteration": it, **{k: round(v, 5) if isinstance(v, float) else v for k, v in asdict(p).items()},
            **{k: round(float(v), 5) for k, v in m.items() if k in _KEYS}, "max_rel_error": round(err, 4)}


def calibrate_foam(
    shape: Sequence[int],
    voxel_mm: float,
    bvtv: float | None,
    tb_th_mm: float | None,
    tb_sp_mm: float | None,
    start: FoamParams | None = None,
    seed: int = 0,
    measure: Measure | None = None,
    tol: float = 0.03,
    max_iter: int = 8,
    progress: Callable[[str], None] | None = None,
) -> Calibration:
    """Foam parameters whose measured BV/TV, Tb.Th, Tb.Sp on a ``shape`` box match the targets.

    With all three targets: before each measurement the structure knob ``s`` (plates for ``s ≥ 0``, rod
    removal below) is set so that BV/TV matches exactly (bisection on cached distance fields: BV/TV is
    cheap, continuous and monotone in ``s``); an outer quasi-Newton (Broyden 1965) loop on
    ``(log cell_mm, log strut_mm)`` then drives the measured (local-thickness) Tb.Th and Tb.Sp to their
    targets, starting from ``Tb.Th ≈ 1.05 strut`` and ``Tb.Sp ≈ 1.1 cell − 0.9 strut`` (a sweep of the
    generator). With fewer targets the plate/rod character stays as in ``start`` and the Broyden loop runs
    on the free knobs against all given targets. Steps are damped (≤ 0.4 in log units). Stops when every
    target is within ``tol`` (relative) or after ``max_iter`` measurements; returns the best iterate.
    """
    measure = measure or default_measure
    targets = {k: v for k, v in zip(_KEYS, (bvtv, tb_th_mm, tb_sp_mm), strict=True) if v is not None}
    if not targets:
        raise ParameterError("targets", "give at least one of bvtv, tb_th_mm, tb_sp_mm")
    p0 = start or FoamParams()
    spacing = (float(voxel_mm),) * 3
    hist: list[dict] = []
    best: tuple | None = None

    def evaluate(it: int, p: FoamParams, fields=None) -> tuple[dict, float]:
        nonlocal best
        b = _binarize(fields, p.strut_mm, p.plate_fraction, p.rod_fraction) if fields is not None \
            else foam_bone(shape, voxel_mm, p, seed)
        m = measure(b, spacing)
        err = max(abs(m[k] / v - 1.0) for k, v in targets.items())
        hist.append(_record(it, p, m, err))
        if progress is not None:
            progress(f"calibrating foam: iteration {it + 1}, worst error {100 * err:.1f} %")
        if best is None or err < best[0]:
            best = (err, p, m)
        return m, err

    if len(targets) == 3:
        th, sp = targets["tb_th_mm"], targets["tb_sp_mm"]
        strut0 = th / 1.05
        x = np.log([max((sp + 0.9 * strut0) / 1.1, 1.2 * strut0), strut0])
        J = _J0_HELD.copy()
        yt = np.log([th, sp])
        s = _s_of(p0)
        prev = None
        for it in range(max_iter):
            cell, strut = float(np.exp(x[0])), float(min(np.exp(x[1]), 0.9 * np.exp(x[0])))
            p = replace(p0, cell_mm=cell, strut_mm=strut)
            fields = _fields(shape, voxel_mm, p, seed)
            s = _match_bvtv(fields, strut, targets["bv_tv"], s)
            pf, rf = _knobs(s)
            p = replace(p, plate_fraction=pf, rod_fraction=rf)
            m, err = evaluate(it, p, fields)
            del fields
            if err <= tol:
                break
            y = np.log([max(m["tb_th_mm"], 1e-6), max(m["tb_sp_mm"], 1e-6)])
            if prev is not None:
                dx, dy = x - prev[0], y - prev[1]
                if float(dx @ dx) > 1e-12:
                    J += np.outer(dy - J @ dx, dx) / float(dx @ dx)
            prev = (x.copy(), y)
            step = np.linalg.solve(J, yt - y) if abs(np.linalg.det(J)) > 1e-6 else yt - y
            scale = float(np.max(np.abs(step)) / 0.4)
            x = x + (step / scale if scale > 1 else step)
    else:
        rows = [i for i, k in enumerate(_KEYS) if k in targets]
        cols = [0, 1] if len(rows) == 2 else ([0] if rows == [2] else [1])
        x = np.array([math.log(p0.cell_mm), math.log(p0.strut_mm)])
        if "tb_th_mm" in targets:
            x[1] = math.log(targets["tb_th_mm"] / 1.05)
        if "tb_sp_mm" in targets:
            x[0] = math.log(max((targets["tb_sp_mm"] + 0.9 * math.exp(x[1])) / 1.1, 1.2 * math.exp(x[1])))
        J = _J0[np.ix_(rows, cols)].copy()
        yt = np.log([targets[_KEYS[r]] for r in rows])
        prev = None
        for it in range(max_iter):
            p = replace(p0, cell_mm=float(math.exp(x[0])), strut_mm=float(min(math.exp(x[1]), 0.9 * math.exp(x[0]))))
            m, err = evaluate(it, p)
            if err <= tol:
                break
            y = np.log([max(m[_KEYS[r]], 1e-6) for r in rows])
            if prev is not None:
                dx, dy = (x - prev[0])[cols], y - prev[1]
                if float(dx @ dx) > 1e-12:
                    J += np.outer(dy - J @ dx, dx) / float(dx @ dx)
            prev = (x.copy(), y)
            step, *_ = np.linalg.lstsq(J, yt - y, rcond=None)
            scale = float(np.max(np.abs(step)) / 0.4)
            x[cols] += step / scale if scale > 1 else step
    err, p, m = best  # type: ignore[misc]
    return Calibration(p, {k: float(v) for k, v in m.items() if k in _KEYS}, targets, hist, err <= tol)


# ------------------------------------------------------------------------------------------- phantom
def _check_targets(bvtv, tb_th_mm, tb_sp_mm, voxel_mm) -> None:
    if bvtv is not None and not 0.0 < bvtv < 1.0:
        raise ParameterError("bvtv", f"must be in (0, 1), got {bvtv}")
    if tb_th_mm is not None:
        positive(tb_th_mm, "tb_th_mm")
        if tb_th_mm < 2 * voxel_mm:
            raise ParameterError("tb_th_mm", f"{tb_th_mm:g} mm is under two voxels of {voxel_mm:g} mm; use a finer voxel_mm")
    if tb_sp_mm is not None:
        positive(tb_sp_mm, "tb_sp_mm")
        if tb_th_mm is not None and tb_sp_mm <= tb_th_mm:
            raise ParameterError("tb_sp_mm", f"spacing {tb_sp_mm:g} mm must exceed the thickness {tb_th_mm:g} mm")


def calibration_box(shape: Sequence[int], voxel_mm: float, cell_mm: float, max_voxels: int) -> tuple[int, int, int]:
    """The corner sub-box used for calibration: the whole grid when it is small, else ≤ ``max_voxels``."""
    n = int(np.prod(shape))
    if n <= max_voxels:
        return tuple(int(s) for s in shape)  # type: ignore[return-value]
    side = max(int(round(max_voxels ** (1 / 3))), int(math.ceil(2.5 * cell_mm / voxel_mm)))
    return tuple(min(int(s), side) for s in shape)  # type: ignore[return-value]


def trabecular_cube(
    size_mm: float | Sequence[float] = (5.0, 5.0, 5.0),
    voxel_mm: float = 0.025,
    bvtv: float | None = 0.18,
    tb_th_mm: float | None = 0.22,
    tb_sp_mm: float | None = 0.93,
    plate_fraction: float = 0.3,
    anisotropy: float = 1.0,
    main_axis: str = "z",
    seed: int = 0,
    *,
    calibrate: bool = True,
    foam: FoamParams | None = None,
    tol: float = 0.03,
    max_iter: int = 8,
    calibration_voxels: int = 160 ** 3,
    measure: Measure | None = None,
    marrow: str = "marrow",
) -> Phantom:
    """A box of trabecular bone (``bone`` struts in ``marrow``) with measured BV/TV, Tb.Th, Tb.Sp on target.

    Parameters
    ----------
    size_mm : float or (z, y, x)
        Box size in mm (voxel edge to voxel edge).
    voxel_mm : float
        Isotropic voxel size in mm (0.02–0.05 resolves struts of 0.1–0.3 mm).
    bvtv, tb_th_mm, tb_sp_mm : float or None
        Targets for the *measured* bone volume fraction, mean trabecular thickness and mean separation
        (local-thickness diameters, mm). ``None`` leaves one free (see :func:`calibrate_foam`).
    plate_fraction : float
        Fraction of cell faces that are plates — the starting point when all three targets are given
        (calibration moves it, and removes rods below 0), fixed otherwise.
    anisotropy, main_axis
        Cell stretch along the main axis (1 = isotropic; vertebrae ≈ 1.3–2 along z).
    seed : int
        Reproducibility: the same arguments and seed give the same phantom.
    calibrate : bool
        ``False`` uses ``foam`` (or the start guess) as is, without measuring: fast.
    foam : FoamParams, optional
        Explicit generator parameters (starting point when calibrating).
    tol, max_iter, calibration_voxels
        Calibration tolerance (relative, per target), iteration cap, and the size of the corner
        sub-box it measures (the whole grid when smaller).
    measure : callable, optional
        ``measure(binary, spacing) -> {"bv_tv", "tb_th_mm", "tb_sp_mm"}``; default the project's engine.

    Returns
    -------
    Phantom
        Labels ``bone``/``marrow``; ``truth`` the bone mask; ``params`` the foam parameters, the targets,
        the morphometry measured on the calibration box and each iteration.
    """
    size = triple_mm(size_mm, "size_mm")
    voxel = positive(voxel_mm, "voxel_mm")
    shape = grid_shape(size, voxel, min_voxels=4)
    _check_targets(bvtv, tb_th_mm, tb_sp_mm, voxel)
    mid = check_material(marrow, "marrow")
    start = foam if foam is not None else FoamParams(plate_fraction=plate_fraction, anisotropy=anisotropy,
                                                     main_axis=main_axis)
    start.check()
    params: dict = {"size_mm": list(size), "voxel_mm": voxel, "seed": int(seed),
                    "targets": {"bv_tv": bvtv, "tb_th_mm": tb_th_mm, "tb_sp_mm": tb_sp_mm}}

    if calibrate and any(v is not None for v in (bvtv, tb_th_mm, tb_sp_mm)):
        cell_guess = (tb_sp_mm + 0.5 * (tb_th_mm or 0.2)) / 0.95 if tb_sp_mm else start.cell_mm
        box = calibration_box(shape, voxel, cell_guess, calibration_voxels)
        with progress_steps("calibrating trabecular foam", max_iter) as advance:
            cal = calibrate_foam(box, voxel, bvtv, tb_th_mm, tb_sp_mm, start, seed, measure, tol, max_iter,
                                 progress=lambda msg: advance(1, msg))
        fp = cal.params
        params.update({"calibration_box": list(box), "measured": cal.measured, "converged": cal.converged,
                       "iterations": cal.iterations})
    else:
        fp = start
    fp.check()
    with progress_steps("generating trabecular foam", shape[0]) as advance:
        bone = foam_bone(shape, voxel, fp, seed, progress=advance)
    params["foam"] = asdict(fp)
    labels = np.where(bone, np.uint8(LABEL["bone"]), np.uint8(mid))
    desc = (f"trabecular cube {size[0]:g}×{size[1]:g}×{size[2]:g} mm at {voxel:g} mm: Voronoi foam, "
            f"cell {fp.cell_mm:.3g} mm, struts {fp.strut_mm:.3g} mm, plates {fp.plate_fraction:.2f}, "
            f"rods {fp.rod_fraction:.2f}, anisotropy {fp.anisotropy:g} ({fp.main_axis})")
    return make_phantom(labels, voxel, "trabecular_cube", desc, params, truth=bone)
