"""A bone-specimen test volume for rendering: trabecular bone inside a cortical shell, in soft tissue, in HU.

Not a label phantom for the scanner (those are the other :mod:`trabecula.phantom` modules) but a finished HU
volume, so the renderer, its benchmark and the demo's fallback have a realistic-looking subject — a short
tubular bone (a phalanx-like shaft that widens towards both ends, closed by thin end plates) whose inside is
a real trabecular network when a binary micro-CT region is given (e.g. a DIDSR L1 region, mirrored to fill
the volume), or a smoothed random field otherwise. :func:`quilt_binary` fills a larger volume with patches of
a real region without mirror symmetry (the cores of :mod:`trabecula.phantom.anatomy`'s phantoms).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import ndimage

from trabecula.errors import ParameterError
from trabecula.io import read_volume
from trabecula.volume import Provenance, Volume

#: HU of the materials (micro-CT-like contrast: trabecular bone tissue as resolved, not partial-volumed)
HU = {"air": -1000.0, "fat": -90.0, "soft": 40.0, "marrow": 30.0, "trabecular": 1150.0, "cortex": 1700.0}


def _tile_starts(n: int, t: int, overlap: int) -> list[int]:
    """Start indices of tiles of length ``t`` covering ``n`` samples, evenly spread, neighbours overlapping by
    at least ``overlap`` (one tile when ``t >= n``)."""
    if t >= n:
        return [0]
    k = int(np.ceil((n - overlap) / max(1, t - overlap)))
    k = max(k, 2)
    return [int(round(v)) for v in np.linspace(0, n - t, k)]


def _ramp(start: int, t: int, prev_end: int | None, next_start: int | None) -> np.ndarray:
    """1-D weight of a tile ``[start, start + t)``: 1 inside, rising linearly across the overlap with the
    previous tile (which ends at ``prev_end``) and falling across the overlap with the next (which starts at
    ``next_start``); near 0 at the tile's blended edges."""
    x = np.arange(start, start + t, dtype=np.float32) + 0.5
    w = np.ones(t, np.float32)
    if prev_end is not None and prev_end > start:
        w *= np.clip((x - start) / (prev_end - start), 0.0, 1.0)
    if next_start is not None and next_start < start + t:
        w *= np.clip((start + t - x) / (start + t - next_start), 0.0, 1.0)
    return w


def quilt_binary(src: np.ndarray, shape: tuple[int, int, int], seed: int = 0, overlap: int = 20,
                 sigma: float = 1.0) -> np.ndarray:
    """Fill ``shape`` with patches of a real binary structure, blended where they meet (no mirror symmetry).

    Method (image quilting with linear blending): the output is covered by tiles as large as ``src`` (or the
    output, along an axis where that is smaller), evenly spread with neighbours overlapping by at least
    ``overlap`` voxels. Each tile is ``src`` under a seeded random transform (flips of z, y and x, a y↔x
    transpose when they have the same length) and, along an axis where the tile is shorter than ``src``, a
    random window of it; axis 0 stays axis 0 (a vertebral structure keeps its superior-inferior direction).
    Tile weights ramp linearly across each overlap and are normalised to sum to 1. Where one tile covers a
    voxel its structure is copied exactly; where tiles mix (Σ w² < 0.9), their structures, smoothed by a
    Gaussian of ``sigma`` voxels, are averaged with those weights and thresholded, per level of mixing (Σ w²
    in bins of 0.1), at the quantile that keeps ``src``'s bone fraction.
    """
    b = np.asarray(src) != 0
    shape = tuple(int(n) for n in shape)
    if b.ndim != 3 or len(shape) != 3 or min(shape) < 1:
        raise ParameterError("shape", f"expected a 3-D source and a (z, y, x) shape, got {b.shape} and {shape}")
    rng = np.random.default_rng(seed)
    tile = [min(s, n) for s, n in zip(b.shape, shape, strict=True)]
    starts = [_tile_starts(n, t, int(overlap)) for n, t in zip(shape, tile, strict=True)]
    ramps = [[_ramp(s0, t, st[i - 1] + t if i else None, st[i + 1] if i + 1 < len(st) else None)
              for i, s0 in enumerate(st)] for st, t in zip(starts, tile, strict=True)]
    mixed = np.zeros(shape, np.float32)  # Σ w · smoothed structure
    exact = np.zeros(shape, np.float32)  # Σ w · structure
    wsum = np.zeros(shape, np.float32)
    w2sum = np.zeros(shape, np.float32)
    for iz, z0 in enumerate(starts[0]):
        for iy, y0 in enumerate(starts[1]):
            for ix, x0 in enumerate(starts[2]):
                piece = b
                for ax in range(3):
                    if rng.random() < 0.5:
                        piece = np.flip(piece, ax)
                if piece.shape[1] == piece.shape[2] and rng.random() < 0.5:
                    piece = piece.transpose(0, 2, 1)
                off = [int(rng.integers(0, s - t + 1)) for s, t in zip(piece.shape, tile, strict=True)]
                p = piece[off[0]:off[0] + tile[0], off[1]:off[1] + tile[1], off[2]:off[2] + tile[2]].astype(np.float32)
                w = ramps[0][iz][:, None, None] * ramps[1][iy][None, :, None] * ramps[2][ix][None, None, :]
                sl = (slice(z0, z0 + tile[0]), slice(y0, y0 + tile[1]), slice(x0, x0 + tile[2]))
                exact[sl] += w * p
                mixed[sl] += w * ndimage.gaussian_filter(p, sigma, mode="nearest")
                wsum[sl] += w
                w2sum[sl] += w * w
    wsum = np.maximum(wsum, 1e-12)
    out = exact / wsum > 0.5
    level = np.minimum((w2sum / wsum**2 * 10).astype(np.int8), 9)
    del exact, w2sum
    frac = float(b.mean())
    for k in range(9):  # the mixed levels; level 9 (Σ w² >= 0.9) is (nearly) a single tile
        m = level == k
        if m.any():
            v = mixed[m] / wsum[m]
            out[m] = v > np.quantile(v, 1.0 - frac)
    return out


def _tile_mirrored(src: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Fill ``shape`` with ``src`` repeated in mirror image (no seams)."""
    reps = [int(np.ceil(n / s)) for n, s in zip(shape, src.shape, strict=True)]
    out = src
    for ax, r in enumerate(reps):
        parts = [out if k % 2 == 0 else np.flip(out, axis=ax) for k in range(r)]
        out = np.concatenate(parts, axis=ax)
    return out[: shape[0], : shape[1], : shape[2]]


def bone_specimen(
    shape: tuple[int, int, int] = (256, 256, 256),
    spacing: float = 0.05,
    trabecular: np.ndarray | None = None,
    seed: int = 0,
    noise_hu: float = 25.0,
    soft_tissue: bool = True,
) -> Volume:
    """A phalanx-like bone in soft tissue, HU int16, long axis along z.

    Parameters
    ----------
    shape : (z, y, x)
    spacing : float
        Isotropic voxel size (mm); the geometry scales with the volume, so only the labels change.
    trabecular : bool/0-1 array, optional
        A binary trabecular region on the same voxel size (e.g. a DIDSR L1 region); mirrored to fill the
        volume. Without it a Gaussian random field thresholded at 25 % bone is used (seeded).
    seed : int
        Seeds the random field and the noise.
    noise_hu : float
        SD of the added Gaussian noise (HU), after a 1-voxel (SD) Gaussian blur (the scanner's blur).
    soft_tissue : bool
        Surround the bone with fat and soft tissue (else air).
    """
    shape = tuple(int(n) for n in shape)
    if len(shape) != 3 or min(shape) < 8:
        raise ParameterError("shape", f"expected (z, y, x) of at least 8 voxels each, got {shape}")
    rng = np.random.default_rng(seed)
    nz, ny, nx = shape
    if trabecular is None:
        f = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), 2.2, mode="wrap")
        trab = f > np.quantile(f[:: max(1, nz // 32)], 0.75)
    else:
        trab = _tile_mirrored(np.asarray(trabecular) > 0, shape)
    z = (np.arange(nz, dtype=np.float32) - (nz - 1) / 2) / (nz / 2)  # -1..1 along the shaft
    y = (np.arange(ny, dtype=np.float32) - (ny - 1) / 2) / (min(ny, nx) / 2)
    x = (np.arange(nx, dtype=np.float32) - (nx - 1) / 2) / (min(ny, nx) / 2)
    half_len = 0.86
    s = np.clip(z / half_len, -1, 1)
    r_out = 0.42 * (1.0 + 0.45 * s**2)  # waisted shaft, wider ends
    cortex = 0.11 * (1.0 - 0.7 * s**2) + 0.025  # thick diaphysis, thin metaphyses
    r_in = r_out - cortex
    rho = np.sqrt((y[:, None] / 0.88) ** 2 + x[None, :] ** 2)  # slightly elliptic cross-section
    out = np.full(shape, HU["soft"] if soft_tissue else HU["air"], np.float32)
    if soft_tissue:
        r_skin = 0.98
        for k in range(nz):
            sl = out[k]
            sl[rho > r_skin] = HU["air"]
            sl[(rho > r_skin - 0.06) & (rho <= r_skin)] = HU["fat"]
    end_plate = 0.035
    for k in range(nz):
        if abs(z[k]) > half_len:
            continue
        sl = out[k]
        inside = rho <= r_out[k]
        sl[inside] = HU["cortex"]
        if abs(z[k]) < half_len - end_plate:
            core = rho <= r_in[k]
            sl[core] = np.where(trab[k][core], HU["trabecular"], HU["marrow"])
    out = ndimage.gaussian_filter(out, 1.0, mode="nearest")
    out += rng.normal(0.0, noise_hu, shape).astype(np.float32)
    prov = Provenance(source="bone_specimen", steps=[f"bone_specimen[shape={shape}, seed={seed}, "
                                                    f"trabecular={'given' if trabecular is not None else 'random field'}]"])
    return Volume(np.clip(np.rint(out), -1024, 3071).astype(np.int16), (spacing,) * 3, (0.0, 0.0, 0.0), "HU", prov)


def didsr_region(path, spacing_mm: float = 0.05, target_spacing: float | None = None) -> np.ndarray:
    """A DIDSR L1 binary region as a bool array (header spacing overridden by ``spacing_mm``), resampled
    (nearest) to ``target_spacing`` when given."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        v = read_volume(path, spacing=spacing_mm, units="binary")
    if target_spacing is not None and abs(target_spacing - spacing_mm) > 1e-9:
        v = v.resample(target_spacing)
    return v.numpy() > 0
