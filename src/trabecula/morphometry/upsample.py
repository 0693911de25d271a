"""Sub-voxel segmentation: interpolate a CT volume onto a finer grid before thresholding.

A binary image holds no information below its voxel; the grey values of a CT image do (a voxel half filled
with bone is half-way between the bone and marrow values). Interpolating the grey image ``k``× per axis
(trilinear: no overshoot, so no new extremes) and thresholding the interpolated values places each boundary
where the interpolated profile crosses the threshold, to a fraction of the original voxel, and the local
thickness is then measured on a grid ``k``× finer, where the definition on voxel centres is accurate.

Measured on the twin study's foam at 52 µm and 80 µm (4.2 and 2.6 voxels per 0.21 mm strut), from the exact
partial-volume image (no blur, no noise), Tb.Th against the converged fine-grid value: ×1.081 and ×1.149
thresholded as they are, ×1.024 and ×1.048 with ``k = 2``, ×1.011 and ×1.017 with ``k = 3``
(``docs/morphometry.md``).

Geometry: fine voxel ``j`` (0 … k−1) of coarse voxel ``i`` has its centre at ``i + (j + ½)/k − ½`` coarse
voxels, so the fine grid tiles the coarse voxels exactly and the world position of every boundary is kept;
the fine origin is ``origin − (k − 1)/(2k) · spacing``. Values beyond the image edge are replicated.
"""

from __future__ import annotations

import numpy as np

from trabecula.errors import ParameterError
from trabecula.volume import Volume

MAX_FACTOR = 8


def check_factor(factor: int, name: str = "upsample") -> int:
    """``factor`` as an int in 1 … :data:`MAX_FACTOR`, or a :class:`ParameterError` naming ``name``."""
    if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)) or not 1 <= int(factor) <= MAX_FACTOR:
        raise ParameterError(name, f"expected an integer from 1 to {MAX_FACTOR} (interpolation factor per axis), "
                                   f"got {factor!r}")
    return int(factor)


def upsample_linear(values: np.ndarray, spacing, origin, factor: int) -> tuple[np.ndarray, tuple, tuple]:
    """Trilinear interpolation of ``values`` (z, y, x) onto a grid ``factor``× finer per axis.

    Returns ``(fine float32 array, fine spacing, fine origin)`` in mm; see the module docstring for the
    geometry. ``factor = 1`` returns the values as float32 with the same grid.
    """
    from scipy import ndimage

    k = check_factor(factor, "factor")
    a = np.asarray(values, dtype=np.float32)
    if a.ndim != 3:
        raise ParameterError("values", f"expected a 3-D array (z, y, x), got shape {a.shape}")
    sp = tuple(float(s) for s in spacing)
    if k == 1:
        return a, sp, tuple(float(o) for o in origin)
    fine = ndimage.zoom(a, k, order=1, mode="nearest", grid_mode=True, prefilter=False)
    fsp = tuple(s / k for s in sp)
    forg = tuple(float(o) - (k - 1) / (2 * k) * s for o, s in zip(origin, sp, strict=True))
    return fine.astype(np.float32, copy=False), fsp, forg


def upsample_volume(vol: Volume, factor: int, box: tuple[slice, slice, slice] | None = None,
                    values: np.ndarray | None = None) -> Volume:
    """``vol`` (or ``values`` on its grid, e.g. smoothed) inside the index ``box``, interpolated ``factor``× per
    axis (:func:`upsample_linear`); units are kept and the step is recorded in the provenance."""
    a = vol.numpy() if values is None else values
    origin = np.asarray(vol.origin, float)
    if box is not None:
        a = a[box]
        origin = origin + np.array([s.start for s in box]) * np.asarray(vol.spacing, float)
    fine, fsp, forg = upsample_linear(a, vol.spacing, origin, factor)
    return Volume(fine, fsp, forg, vol.units,
                  vol.provenance.with_step(f"upsample {factor}x per axis (trilinear) for sub-voxel segmentation"))


def upsample_mask(mask: np.ndarray, factor: int) -> np.ndarray:
    """Each voxel of a boolean mask becomes ``factor³`` fine voxels (the fine grid of :func:`upsample_linear`)."""
    k = check_factor(factor, "factor")
    m = np.asarray(mask, bool)
    for ax in range(3):
        m = np.repeat(m, k, axis=ax)
    return np.ascontiguousarray(m)
