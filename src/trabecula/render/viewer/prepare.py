"""Fit a volume to the browser: a voxel budget, a data type WebGL takes, a default window, NIfTI bytes.

A browser holds a volume as one 3-D texture, so large scans are reduced before they are sent:
:func:`fit_to_budget` picks integer reduction factors per axis (always reducing the axis whose shown
voxel is smallest in mm, so anisotropic scans become more isotropic first) until the shown voxel count
is within ``max_voxels``, then reduces by **block averaging** (each shown voxel is the mean of its
``kz × ky × kx`` block — a box anti-aliasing filter; a partial block at the far edge averages the voxels it
has). ``binary`` and ``label`` volumes are **subsampled** instead (the voxel at each block's centre), so
values stay 0/1 or valid labels. The shown grid's spacing is ``k × spacing`` and its origin the centre of
the first block, so world positions (mm) stay where they were; the far-edge block's centre is placed on
the regular grid (at most half a shown voxel off). The reduction runs slab by slab along z, so lazy
(dask/zarr) volumes larger than memory are read once and never held whole.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trabecula.errors import ParameterError
from trabecula.io import write_volume
from trabecula.progress import track
from trabecula.volume import WINDOW_PRESETS, Volume

#: default voxel budget of the served viewer (about 256³)
DEFAULT_MAX_VOXELS = 16_777_216
#: default voxel budget of a volume embedded in a report (about 96³, ~1–2 MB of gzip'd int16)
REPORT_MAX_VOXELS = 884_736


@dataclass
class ShownVolume:
    """A volume as the browser will show it, with what was done to fit it.

    ``volume`` is the reduced volume (same world frame, same units); ``factors`` the reduction per
    axis (z, y, x) (all 1 when nothing was reduced); ``method`` ``"none"``, ``"block mean"`` or
    ``"subsample"``; ``window`` the initial (level, width) in the volume's units; ``notes`` human-readable
    lines the page shows (e.g. a dtype change).
    """

    name: str
    volume: Volume
    original_shape: tuple[int, int, int]
    original_spacing: tuple[float, float, float]
    factors: tuple[int, int, int]
    method: str
    window: tuple[float, float]
    value_range: tuple[float, float]
    max_voxels: int = DEFAULT_MAX_VOXELS
    notes: list[str] = field(default_factory=list)

    @property
    def reduced(self) -> bool:
        return any(k > 1 for k in self.factors)

    def describe(self) -> dict[str, Any]:
        """JSON-able description for the page (shapes and spacings (z, y, x), mm)."""
        v = self.volume
        return {
            "name": self.name, "units": v.units, "dtype": str(v.dtype),
            "original_shape": list(self.original_shape),
            "original_spacing": [float(s) for s in self.original_spacing],
            "shape": list(v.shape), "spacing": [float(s) for s in v.spacing],
            "origin": [float(o) for o in v.origin],
            "factors": list(self.factors), "method": self.method, "reduced": self.reduced,
            "window": [float(self.window[0]), float(self.window[1])],
            "range": [float(self.value_range[0]), float(self.value_range[1])],
            "max_voxels": int(self.max_voxels),
            "notes": list(self.notes),
        }


def reduction_factors(shape: tuple[int, ...], spacing: tuple[float, ...], max_voxels: int) -> tuple[int, int, int]:
    """Integer factors (kz, ky, kx) so that ``prod(ceil(n / k)) <= max_voxels``.

    Greedy: the axis whose shown voxel (``k × spacing``) is the finest, among those still longer than
    one shown voxel, is reduced by one more step until the budget holds.
    """
    if max_voxels < 1:
        raise ParameterError("max_voxels", f"must be a positive number of voxels, got {max_voxels}")
    k = [1, 1, 1]

    def count() -> int:
        return math.prod(math.ceil(n / f) for n, f in zip(shape, k, strict=True))

    while count() > max_voxels:
        candidates = [a for a in range(3) if math.ceil(shape[a] / k[a]) > 1]
        a = min(candidates, key=lambda i: (k[i] * spacing[i], -shape[i] / k[i]))
        # jump straight to the next factor that actually shrinks this axis
        n_now = math.ceil(shape[a] / k[a])
        while math.ceil(shape[a] / k[a]) == n_now:
            k[a] += 1
    return tuple(k)  # type: ignore[return-value]


def _block_counts(n: int, k: int) -> np.ndarray:
    starts = np.arange(0, n, k)
    return np.minimum(starts + k, n) - starts


def block_mean(data: Any, factors: tuple[int, int, int], progress: bool = True,
               slab_bytes: int = 32_000_000) -> np.ndarray:
    """Mean over ``kz × ky × kx`` blocks, as float32; a partial block at the far edge averages what it holds.

    The sum of each block is accumulated from the ``kz·ky·kx`` strided sub-grids
    (``data[dz::kz, dy::ky, dx::kx]``), one slab of whole z-blocks at a time (about ``slab_bytes`` of
    output per slab), so ``data`` — NumPy or dask — is read once and never converted whole. The result
    equals :func:`skimage.measure.block_reduce` with ``np.mean`` inside the volume; at a partial edge block
    ``block_reduce`` pads with ``cval`` (0) and so biases the mean towards 0, which this does not.
    """
    kz, ky, kx = (int(k) for k in factors)
    nz, ny, nx = data.shape
    cz, cy, cx = _block_counts(nz, kz), _block_counts(ny, ky), _block_counts(nx, kx)
    out = np.empty((cz.size, cy.size, cx.size), np.float32)
    norm_yx = (cy[:, None] * cx[None, :]).astype(np.float32)
    per = max(1, int(slab_bytes // (4 * cy.size * cx.size)))
    slabs = range(0, cz.size, per)
    it = track(slabs, "fitting volume to the browser") if progress and len(slabs) > 4 else slabs
    for b0 in it:
        b1 = min(cz.size, b0 + per)
        sub = np.asarray(data[b0 * kz:min(nz, b1 * kz)])
        acc = out[b0:b1]
        acc[...] = 0.0
        for dz in range(kz):
            pz = sub[dz::kz]
            for dy in range(ky):
                for dx in range(kx):
                    part = pz[:, dy::ky, dx::kx]
                    acc[:part.shape[0], :part.shape[1], :part.shape[2]] += part
        acc /= norm_yx[None] * cz[b0:b1, None, None].astype(np.float32)
    return out


def subsample(data: Any, factors: tuple[int, int, int]) -> np.ndarray:
    """The voxel at the centre of each ``kz × ky × kx`` block (nearest neighbour; for binary/label)."""
    idx = [np.minimum(np.arange(0, n, k) + k // 2, n - 1) for n, k in zip(data.shape, factors, strict=True)]
    if isinstance(data, np.ndarray):
        return data[np.ix_(*idx)]
    out = np.asarray(data[idx[0].tolist()])  # dask: fancy index one axis at a time
    return out[:, idx[1]][:, :, idx[2]]


def browser_dtype(arr: np.ndarray) -> tuple[np.ndarray, str | None]:
    """Cast to a type NiiVue uploads as a texture: uint8, int16, uint16, int32 or float32.

    bool → uint8; float64 → float32; 64-bit integers → int32 when the values fit, else float32.
    Returns the array and a note for the page when the type changed (``None`` otherwise).
    """
    dt = arr.dtype
    if dt == np.bool_:
        return arr.astype(np.uint8), "bool shown as uint8"
    if dt in (np.uint8, np.int16, np.uint16, np.int32, np.float32):
        return arr, None
    if dt == np.int8:
        return arr.astype(np.int16), "int8 shown as int16"
    if np.issubdtype(dt, np.integer):
        lo, hi = (int(arr.min()), int(arr.max())) if arr.size else (0, 0)
        if np.iinfo(np.int32).min <= lo and hi <= np.iinfo(np.int32).max:
            return arr.astype(np.int32), f"{dt} shown as int32"
        return arr.astype(np.float32), f"{dt} shown as float32"
    return arr.astype(np.float32), f"{dt} shown as float32"


def default_window(arr: np.ndarray, units: str) -> tuple[float, float]:
    """Initial (level, width) in the volume's units.

    HU: the ``bone`` preset (L 500, W 2000 HU). binary: 0…1. label: the label range. Other units: the
    0.5th–99.5th percentile range of the shown voxels (as a display choice, like ImageJ's auto contrast).
    """
    if units == "HU":
        return WINDOW_PRESETS["bone"]
    finite = arr[np.isfinite(arr)] if np.issubdtype(arr.dtype, np.floating) else arr.ravel()
    if finite.size == 0:
        return (0.5, 1.0)
    if units == "binary":
        return (0.5, 1.0)
    if units == "label":
        lo, hi = float(finite.min()), float(finite.max())
    else:
        sample = finite if finite.size <= 2_000_000 else finite[:: finite.size // 2_000_000 + 1]
        lo, hi = (float(v) for v in np.percentile(sample, [0.5, 99.5]))
    if not hi > lo:
        hi = lo + 1.0
    return ((lo + hi) / 2.0, hi - lo)


def fit_to_budget(vol: Volume, max_voxels: int = DEFAULT_MAX_VOXELS, name: str | None = None,
                  progress: bool = True) -> ShownVolume:
    """Reduce ``vol`` to at most ``max_voxels`` voxels for the browser (see the module docstring).

    Returns a :class:`ShownVolume`; a volume already within the budget is passed through unchanged
    (apart from a dtype WebGL takes). Units never change: a block mean of HU is in HU.
    """
    if not isinstance(vol, Volume):
        raise ParameterError("vol", f"expected a Volume, got {type(vol).__name__}")
    if not isinstance(max_voxels, int | np.integer) or max_voxels < 8:
        raise ParameterError("max_voxels", f"must be an integer ≥ 8, got {max_voxels!r}")
    name = name or Path(str(vol.provenance.source or "volume")).name
    factors = reduction_factors(vol.shape, vol.spacing, int(max_voxels))
    notes: list[str] = []
    if factors == (1, 1, 1):
        arr, method, shown = vol.numpy(), "none", vol
    else:
        if vol.units in ("binary", "label"):
            arr, method = subsample(vol.data, factors), "subsample"
            offset = np.array([k // 2 for k in factors], float)
        else:
            arr, method = block_mean(vol.data, factors, progress=progress), "block mean"
            offset = (np.array(factors, float) - 1) / 2
            if np.issubdtype(vol.dtype, np.integer):
                info = np.iinfo(vol.dtype)
                arr = np.clip(np.rint(arr), info.min, info.max).astype(vol.dtype)
        sp = tuple(float(s * k) for s, k in zip(vol.spacing, factors, strict=True))
        origin = tuple(vol.index_to_world(offset))
        desc = "×".join(str(k) for k in factors)
        shown = Volume(arr, sp, origin, vol.units, vol.provenance.with_step(f"viewer {method} {desc}"))
    arr, note = browser_dtype(np.ascontiguousarray(arr))
    if note:
        notes.append(note)
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        arr = np.nan_to_num(arr, nan=0.0, posinf=0.0, neginf=0.0)
        notes.append("non-finite values shown as 0")
    shown = Volume(arr, shown.spacing, shown.origin, shown.units, shown.provenance)
    vr = (float(arr.min()), float(arr.max()))
    return ShownVolume(name, shown, vol.shape, vol.spacing, factors, method, default_window(arr, vol.units), vr,
                       int(max_voxels), notes)


def nifti_bytes(vol: Volume, compress: bool = False) -> bytes:
    """The volume as NIfTI-1 bytes, written by :func:`trabecula.io.write_volume` (LPS→RAS affine)."""
    with tempfile.TemporaryDirectory(prefix="trabecula-view-") as tmp:
        path = Path(tmp) / ("volume.nii.gz" if compress else "volume.nii")
        write_volume(vol, path)
        return path.read_bytes()
