"""Real structure as phantom: a binary micro-CT volume → bone/marrow labels, optionally upsampled; and
synthetic look-alikes of a real region (same measured BV/TV, Tb.Th, Tb.Sp)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from scipy import ndimage

from trabecula.errors import ParameterError
from trabecula.phantom._base import Phantom, check_material, make_phantom, positive
from trabecula.phantom.trabecular import FoamParams, Measure, default_measure, trabecular_cube
from trabecula.progress import progress_steps
from trabecula.volume import Volume


def binary_of(vol: Volume, name: str = "binary") -> np.ndarray:
    """Boolean bone mask of a segmented volume (``binary``/``label`` units: non-zero is bone; any other
    units: exactly two distinct values, the larger is bone). Anything else is a ParameterError."""
    if not isinstance(vol, Volume):
        raise ParameterError(name, f"expected a Volume, got {type(vol).__name__}")
    a = vol.numpy()
    if vol.units in ("binary", "label"):
        return a != 0
    vals = np.unique(a[:: max(1, a.shape[0] // 16)])
    if vals.size <= 2 and np.unique(a).size <= 2:
        return a == a.max()
    raise ParameterError(name, f"expected a binary (segmented) volume; got units {vol.units} with many values "
                               "(threshold it first, e.g. with trabecula measure's segmentation)")


def upsample_binary(binary: np.ndarray, factor: int, sigma_voxels: float = 0.6, chunk: int = 16) -> np.ndarray:
    """Upsample a binary volume by an integer ``factor`` per axis, keeping its volume fraction.

    Method: the 0/1 volume is smoothed with a Gaussian of ``sigma_voxels`` (original voxels; removes the
    staircase), interpolated (trilinear) at the fine voxel centres, and thresholded at the level whose
    exceedance fraction equals the original volume fraction (found from a histogram of the fine values in
    a first pass). Fine voxel ``j`` has its centre at original index ``(j + 0.5) / factor - 0.5`` (the
    fine grid covers the same field of view, edge to edge). Works in slabs of ``chunk`` original slices.
    """
    b = np.asarray(binary, bool)
    k = int(factor)
    if k == 1:
        return b.copy()
    frac = float(b.mean())
    smooth = ndimage.gaussian_filter(b.astype(np.float32), sigma_voxels, mode="nearest")
    nz, ny, nx = b.shape

    def slab(z0: int, z1: int) -> np.ndarray:
        cz = (np.arange(z0 * k, z1 * k) + 0.5) / k - 0.5
        lo = max(0, int(math.floor(cz[0])))
        hi = min(nz, int(math.ceil(cz[-1])) + 1)
        a = _lerp_axis(smooth[lo:hi], cz - lo, 0)
        a = _lerp_axis(a, (np.arange(ny * k) + 0.5) / k - 0.5, 1)
        return _lerp_axis(a, (np.arange(nx * k) + 0.5) / k - 0.5, 2)

    bins = np.linspace(0.0, 1.0, 4097)
    hist = np.zeros(bins.size - 1, np.int64)
    out = np.empty((nz * k, ny * k, nx * k), bool)
    with progress_steps(f"upsampling ×{k}", 2 * nz) as advance:
        for z0 in range(0, nz, chunk):
            hist += np.histogram(slab(z0, min(nz, z0 + chunk)), bins)[0]
            advance(min(chunk, nz - z0))
        # threshold: smallest level whose exceedance fraction is <= the original fraction
        exceed = np.cumsum(hist[::-1])[::-1] / hist.sum()  # exceed[i] = fraction >= bins[i]
        i = int(np.searchsorted(-exceed, -frac))
        level = bins[min(i, bins.size - 2)]
        for z0 in range(0, nz, chunk):
            z1 = min(nz, z0 + chunk)
            out[z0 * k:z1 * k] = slab(z0, z1) >= level
            advance(z1 - z0)
    return out


def _lerp_axis(a: np.ndarray, coords: np.ndarray, axis: int) -> np.ndarray:
    """Linear interpolation of ``a`` at fractional indices ``coords`` along ``axis`` (clamped at the ends)."""
    n = a.shape[axis]
    c = np.clip(coords, 0.0, n - 1.0)
    i0 = np.minimum(np.floor(c).astype(np.intp), max(n - 2, 0))
    w = (c - i0).astype(np.float32)
    shape = [1] * a.ndim
    shape[axis] = -1
    w = w.reshape(shape)
    lo = np.take(a, i0, axis=axis)
    hi = np.take(a, np.minimum(i0 + 1, n - 1), axis=axis)
    return lo * (1 - w) + hi * w


def from_binary(binary: Volume, upsample: int = 1, bone: str = "bone", background: str = "marrow",
                sigma_voxels: float = 0.6) -> Phantom:
    """A phantom from a segmented micro-CT volume: bone voxels → ``bone``, the rest → ``background``.

    ``upsample`` (integer ≥ 1) refines the grid by that factor per axis with :func:`upsample_binary`
    (smooth interpolation, then the threshold that preserves BV/TV), so a 0.05 mm scan becomes a
    0.025 mm (×2) phantom that a scanner simulation can sample finer than its own voxel. Geometry:
    same field of view and world position as the input (the origin moves to the first fine voxel
    centre). ``truth`` is the bone mask on the new grid.
    """
    b = binary_of(binary)
    if not float(upsample).is_integer() or int(upsample) < 1:
        raise ParameterError("upsample", f"must be an integer >= 1, got {upsample!r}")
    k = int(upsample)
    bid, mid = check_material(bone, "bone"), check_material(background, "background")
    if binary.provenance.extra.get("spacing_assumed"):
        warnings.warn(f"{binary.provenance.source}: spacing not in the file; using {binary.spacing} mm", stacklevel=2)
    fine = upsample_binary(b, k, sigma_voxels) if k > 1 else b
    spacing = tuple(s / k for s in binary.spacing)
    origin = tuple(o - s / 2 + s / (2 * k) for o, s in zip(binary.origin, binary.spacing, strict=True))
    labels = np.where(fine, np.uint8(bid), np.uint8(mid))
    params = {"source": str(binary.provenance.source), "upsample": k, "bv_tv_in": float(b.mean()),
              "bv_tv_out": float(fine.mean())}
    desc = (f"real structure from {binary.provenance.source or 'a binary volume'}: {bone} in {background}"
            + (f", upsampled ×{k}" if k > 1 else ""))
    return make_phantom(labels, spacing, "from_binary", desc, params, truth=fine, origin=origin)


def lookalike(
    real: Volume,
    voxel_mm: float | None = None,
    seed: int = 0,
    tol: float = 0.10,
    *,
    size_mm: float | Sequence[float] | None = None,
    anisotropy: float = 1.0,
    main_axis: str = "z",
    plate_fraction: float = 0.3,
    measure: Measure | None = None,
    real_measured: dict | None = None,
    calibration_voxels: int = 160 ** 3,
    max_iter: int = 10,
) -> Phantom:
    """A synthetic trabecular phantom whose measured BV/TV, Tb.Th and Tb.Sp match a real region's.

    The real binary volume is measured (the project's morphometry engine, or ``measure``; pass
    ``real_measured`` to reuse a measurement), then :func:`trabecular_cube` calibrates a Voronoi foam to
    those three numbers, measured the same way on the phantom grid. ``voxel_mm`` defaults to the real
    voxel (isotropic spacing required), ``size_mm`` to the real field of view. The calibration aims at
    a third of ``tol``; the phantom's ``params["within_tol"]`` says whether every relative difference is
    within ``tol`` (a warning is issued otherwise). Each iteration measures the calibration box
    (``calibration_voxels``: the whole phantom when it is smaller).
    """
    b = binary_of(real, "real")
    sp = np.asarray(real.spacing, float)
    if not np.allclose(sp, sp[0], rtol=1e-3):
        raise ParameterError("real", f"needs isotropic spacing (got {tuple(sp)} mm); resample it first")
    voxel = positive(voxel_mm, "voxel_mm") if voxel_mm is not None else float(sp[0])
    if not 0 < tol < 1:
        raise ParameterError("tol", f"must be in (0, 1), got {tol}")
    if b.mean() in (0.0, 1.0):
        raise ParameterError("real", "the volume is all bone or all background")
    measure = measure or default_measure
    m_real = real_measured or measure(b, tuple(sp))
    size = size_mm if size_mm is not None else real.extent_mm
    ph = trabecular_cube(size, voxel, m_real["bv_tv"], m_real["tb_th_mm"], m_real["tb_sp_mm"],
                         plate_fraction=plate_fraction, anisotropy=anisotropy, main_axis=main_axis, seed=seed,
                         tol=tol / 3.0, max_iter=max_iter, calibration_voxels=calibration_voxels, measure=measure,
                         foam=FoamParams(plate_fraction=plate_fraction, anisotropy=anisotropy, main_axis=main_axis))
    measured = ph.params.get("measured", {})
    rel = {k: measured[k] / m_real[k] - 1.0 for k in ("bv_tv", "tb_th_mm", "tb_sp_mm") if k in measured}
    within = bool(rel) and all(abs(v) <= tol for v in rel.values())
    if not within:
        warnings.warn(f"look-alike of {real.provenance.source}: relative differences "
                      + ", ".join(f"{k} {100 * v:+.1f} %" for k, v in rel.items()) + f" exceed {100 * tol:g} %",
                      stacklevel=2)
    ph.params.update({"real": {k: float(v) for k, v in m_real.items()}, "real_source": str(real.provenance.source),
                      "rel_diff": rel, "tol": tol, "within_tol": within})
    prov = ph.labels.provenance
    prov = replace(prov, steps=[*prov.steps[:-1], "lookalike[" + prov.steps[-1] + "]"],
                   extra={**prov.extra, "phantom": {"kind": "lookalike", **ph.params}})
    ph.labels = ph.labels.replace(provenance=prov)
    ph.description = (f"look-alike of {real.provenance.source}: " + ph.description)
    return ph


def human_scale(real: Volume, tb_th_mm: float = 0.2, voxel_mm: float = 0.05, size: int = 240,
                measure: Measure | None = None) -> Volume:
    """A binary structure of another species (or scale) as a human-scale structure: its voxel is taken as
    ``tb_th_mm`` / (its measured Tb.Th in voxels), the binary is resampled to ``voxel_mm`` (linear
    interpolation after an anti-aliasing Gaussian, cut at ½: :func:`skimage.transform.resize`) and mirrored
    to fill ``size``³ voxels (mirror images meet without seams). The architecture is kept, the size is
    assumed; the provenance records the scale factor and the assumed strut thickness."""
    from skimage.transform import resize

    from trabecula.phantom.specimen import _tile_mirrored

    b = binary_of(real, "real")
    positive(tb_th_mm, "tb_th_mm")
    positive(voxel_mm, "voxel_mm")
    measure = measure or default_measure
    th_vox = float(measure(b, (1.0, 1.0, 1.0))["tb_th_mm"])  # Tb.Th in voxels (unit spacing)
    equiv = tb_th_mm / th_vox  # mm per source voxel at human scale
    shape = tuple(max(4, int(round(n * equiv / voxel_mm))) for n in b.shape)
    small = resize(b.astype(np.float32), shape, order=1, anti_aliasing=True, preserve_range=True) > 0.5
    out = _tile_mirrored(small.astype(np.uint8), (size, size, size))
    factor = equiv / float(real.spacing[0])
    prov = replace(real.provenance, steps=[*real.provenance.steps,
                                            f"human scale[Tb.Th {th_vox:.1f} voxels -> {tb_th_mm:g} mm, x{factor:.2f}, "
                                            f"resampled to {voxel_mm:g} mm, mirrored to {size}^3]"],
                   extra={**real.provenance.extra, "human_scale": {"tb_th_voxels": th_vox, "tb_th_mm": tb_th_mm,
                                                                   "scale_factor": factor, "voxel_mm": voxel_mm}})
    return Volume(out, voxel_mm, (0.0, 0.0, 0.0), "binary", prov)
