"""A bone-specimen test volume for rendering: trabecular bone inside a cortical shell, in soft tissue, in HU.

Not a label phantom for the scanner (those are the other :mod:`trabecula.phantom` modules) but a finished HU
volume, so the renderer, its benchmark and the demo's fallback have a realistic-looking subject — a short
tubular bone (a phalanx-like shaft that widens towards both ends, closed by thin end plates) whose inside is
a real trabecular network when a binary micro-CT region is given (e.g. a DIDSR L1 region, mirrored to fill
the volume), or a smoothed random field otherwise.
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
