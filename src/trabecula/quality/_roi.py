"""Regions of interest and image/spacing handling shared by the image-quality functions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from trabecula.errors import ParameterError
from trabecula.volume import Volume, as_spacing

Roi = str | Sequence[Any] | np.ndarray | None


def parse_roi(spec: Roi, shape: Sequence[int], name: str = "roi") -> tuple[slice, ...] | np.ndarray:
    """An index into an array of ``shape`` from an ROI spec.

    Accepted: ``None`` (everything); a string ``"z0:z1,y0:y1,x0:x1"`` (``"y0:y1,x0:x1"`` for 2-D) of
    Python half-open voxel ranges, empty parts meaning the whole axis; a sequence of ``(start, stop)``
    pairs, ``slice`` objects or ``None``; or a boolean mask of ``shape``. Empty or out-of-range ROIs are
    a ParameterError naming ``name``.
    """
    nd = len(shape)
    if spec is None:
        return tuple(slice(0, n) for n in shape)
    if isinstance(spec, np.ndarray) and spec.dtype == bool:
        if spec.shape != tuple(shape):
            raise ParameterError(name, f"mask shape {spec.shape} differs from the image's {tuple(shape)}")
        if not spec.any():
            raise ParameterError(name, "the mask selects nothing")
        return spec
    if isinstance(spec, str):
        parts = [p.strip() for p in spec.split(",")]
        items: list[Any] = []
        for p in parts:
            if p in ("", ":"):
                items.append(None)
                continue
            if ":" not in p:
                raise ParameterError(name, f"each axis needs start:stop, got {p!r} in {spec!r}")
            a, b = p.split(":", 1)
            try:
                items.append((int(a) if a.strip() else None, int(b) if b.strip() else None))
            except ValueError as exc:
                raise ParameterError(name, f"not integers: {p!r} in {spec!r}") from exc
        spec = items
    items = list(spec)  # type: ignore[arg-type]
    if len(items) != nd:
        raise ParameterError(name, f"expected {nd} ranges for a {nd}-D image, got {len(items)}")
    out = []
    for ax, (it, n) in enumerate(zip(items, shape, strict=True)):
        if it is None:
            out.append(slice(0, n))
            continue
        if isinstance(it, slice):
            start, stop = it.start, it.stop
        else:
            try:
                start, stop = it
            except (TypeError, ValueError) as exc:
                raise ParameterError(name, f"axis {ax}: expected (start, stop), got {it!r}") from exc
        start = 0 if start is None else int(start)
        stop = n if stop is None else int(stop)
        start, stop = (start + n if start < 0 else start), (stop + n if stop < 0 else stop)
        if not 0 <= start < stop <= n:
            raise ParameterError(name, f"axis {ax}: range {start}:{stop} is empty or outside 0:{n}")
        out.append(slice(start, stop))
    return tuple(out)


def image_and_spacing(image: Volume | np.ndarray, spacing: float | Sequence[float] | None,
                      name: str = "image") -> tuple[np.ndarray, tuple[float, ...]]:
    """The array (2-D ``(y, x)`` or 3-D ``(z, y, x)``) and its spacing in mm, from a Volume or an array."""
    if isinstance(image, Volume):
        arr = image.numpy()
        sp = tuple(float(s) for s in image.spacing)
        if spacing is not None:
            raise ParameterError("spacing", "a Volume carries its own spacing; do not pass spacing")
        return arr, sp
    arr = np.asarray(image)
    if arr.ndim not in (2, 3):
        raise ParameterError(name, f"expected a 2-D (y, x) or 3-D (z, y, x) image, got shape {arr.shape}")
    if spacing is None:
        raise ParameterError("spacing", "pass the pixel spacing in mm with an array (or give a Volume)")
    return arr, as_spacing(spacing, ndim=arr.ndim, name="spacing")


def slice_average(image: Volume | np.ndarray, spacing, roi: Roi, name: str = "image") -> tuple[np.ndarray, tuple[float, float]]:
    """Crop to the ROI and average a 3-D stack over z (an object uniform along z, e.g. a wire or an
    edge parallel to the scanner axis); returns the 2-D (y, x) float64 image and its (dy, dx) in mm."""
    arr, sp = image_and_spacing(image, spacing, name)
    idx = parse_roi(roi, arr.shape)
    if isinstance(idx, np.ndarray):
        raise ParameterError("roi", "use a box ROI (ranges), not a mask, for MTF")
    sub = np.asarray(arr[idx], dtype=np.float64)
    if sub.ndim == 3:
        sub = sub.mean(axis=0)
    if min(sub.shape) < 8:
        raise ParameterError("roi", f"ROI of {sub.shape} pixels is too small (need at least 8 × 8)")
    return sub, (sp[-2], sp[-1])
