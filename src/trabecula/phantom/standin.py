"""Stand-in specimens for paired training data and image-quality tests, on a fine grid.

* :func:`synthetic_structure` — a binary trabecular-like structure from a level-set construction with
  controllable BV/TV, scale, plate/rod character and anisotropy (quick; not calibrated morphometry like
  :func:`trabecula.phantom.trabecular_cube`);
* :func:`edge_phantom` — a bone-equivalent cylinder in water (HU), for MTF by the circular edge and noise;
* :func:`slanted_edge_hu` — a bone-equivalent half-plane in water (HU) with a slanted edge, for the
  slanted-edge MTF.

The edge objects' bone HU is :data:`TISSUE_HU` (cortical bone-equivalent, as in a CT calibration phantom);
the scanner twin assigns its own attenuations to binary structures (:mod:`trabecula.scanner.materials`).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from trabecula.errors import ParameterError
from trabecula.volume import Provenance, Volume

#: HU assigned to bone tissue and to marrow when a binary structure is "scanned"
TISSUE_HU = 1400.0


def synthetic_structure(shape: tuple[int, int, int] = (240, 240, 240), spacing: float = 0.05, bv_tv: float = 0.2,
                        scale_mm: float = 0.6, kind: str = "mixed", anisotropy: float = 1.0, seed: int = 0) -> Volume:
    """A binary trabecular-like structure with controllable BV/TV, scale, plate/rod character and anisotropy.

    Method (a level-set construction): two independent Gaussian random fields ``f1, f2`` (white noise
    smoothed with σ = ``scale_mm`` / 4, stretched by ``anisotropy`` along z). Plates are the band
    ``|f1| < t`` around a zero level set (sheets); rods the intersection ``|f1| < t ∧ |f2| < t`` of two
    bands (curves), dilated; ``mixed`` is their union. The band half-width ``t`` is chosen by bisection so
    the bone fraction equals ``bv_tv``; ``scale_mm`` sets the spacing of the sheets (≈ Tb.Sp + Tb.Th).
    """
    if kind not in ("plate", "rod", "mixed"):
        raise ParameterError("kind", f"use plate, rod or mixed, got {kind!r}")
    if not 0.01 < bv_tv < 0.6:
        raise ParameterError("bv_tv", f"must be within (0.01, 0.6), got {bv_tv}")
    rng = np.random.default_rng(seed)
    sig = np.array([anisotropy, 1.0, 1.0]) * (scale_mm / 4.0) / spacing

    def field() -> np.ndarray:
        f = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sig, mode="wrap")
        return f / f.std()

    f1 = np.abs(field())
    f2 = np.abs(field()) if kind in ("rod", "mixed") else None

    def make(t: float) -> np.ndarray:
        if kind == "plate":
            return f1 < t
        rods = (f1 < 2.2 * t) & (f2 < 2.2 * t)
        if kind == "rod":
            return rods
        return (f1 < t) | rods

    lo, hi = 0.0, 3.0
    for _ in range(18):
        t = (lo + hi) / 2
        if make(t).mean() < bv_tv:
            lo = t
        else:
            hi = t
    b = make((lo + hi) / 2)
    # keep the largest connected piece of bone only if it holds most of it (removes floating specks)
    lab, n = ndimage.label(b)
    if n > 1:
        sizes = np.bincount(lab.ravel())
        sizes[0] = 0
        keep = sizes >= 0.001 * b.sum()
        b = keep[lab]
    prov = Provenance(source="synthetic_structure", steps=[
        f"synthetic_structure[{kind}, bv_tv {bv_tv:.3f}, scale {scale_mm:g} mm, anisotropy {anisotropy:g}, seed {seed}]"])
    return Volume(b.astype(np.uint8), spacing, (0.0, 0.0, 0.0), "binary", prov)


def edge_phantom(shape: tuple[int, int, int] = (40, 240, 240), spacing: float = 0.05, radius_mm: float = 3.0,
                 tissue_hu: float = TISSUE_HU, background_hu: float = 0.0) -> Volume:
    """A bone-equivalent cylinder (axis z) in water, as HU on a fine grid, for MTF (circular edge) and noise.

    The axis sits a fraction of a voxel off the grid centre (an oversampled edge); the disc's partial volume
    comes from 4 × 4 supersampling of each voxel. ``provenance.extra`` holds the centre (voxels) and radius.
    """
    z, y, x = shape
    yy, xx = np.mgrid[:y, :x].astype(np.float32)
    cy, cx = (y - 1) / 2 + 0.31, (x - 1) / 2 - 0.27  # off-centre by a fraction of a voxel: oversampled edge
    sub = np.zeros((y, x), np.float32)
    for dy in (-0.375, -0.125, 0.125, 0.375):
        for dx in (-0.375, -0.125, 0.125, 0.375):
            sub += np.hypot((yy + dy - cy) * spacing, (xx + dx - cx) * spacing) <= radius_mm
    frac = sub / 16.0
    sl = background_hu + (tissue_hu - background_hu) * frac
    arr = np.broadcast_to(sl, shape).astype(np.float32).copy()
    prov = Provenance(source="edge_phantom", steps=[f"edge_phantom[r {radius_mm:g} mm, {tissue_hu:g} HU in {background_hu:g} HU]"])
    prov.extra["center_yx_vox"] = [cy, cx]
    prov.extra["radius_mm"] = radius_mm
    return Volume(arr, spacing, (0.0, 0.0, 0.0), "HU", prov)


def slanted_edge_hu(shape: tuple[int, int, int] = (80, 240, 240), spacing: float = 0.05, angle_deg: float = 5.0,
                    tissue_hu: float = TISSUE_HU, background_hu: float = 0.0, supersample: int = 4) -> Volume:
    """A bone-equivalent half-plane in water with its edge through the centre, slanted ``angle_deg`` from y
    (HU on a fine grid; area-supersampled edge, ``supersample`` × ``supersample`` points per voxel)."""
    z, y, x = shape
    c, s = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    frac = np.zeros((y, x), np.float32)
    offs = (np.arange(supersample) + 0.5) / supersample - 0.5
    yy, xx = np.mgrid[:y, :x].astype(np.float32)
    for dy in offs:
        for dx in offs:
            py = (yy + dy - (y - 1) / 2) * spacing
            px = (xx + dx - (x - 1) / 2) * spacing
            frac += (px * c + py * s) >= 0
    frac /= supersample**2
    sl = background_hu + (tissue_hu - background_hu) * frac
    return Volume(np.broadcast_to(sl, shape).astype(np.float32).copy(), spacing, (0, 0, 0), "HU")
