"""Virtual sectioning: clip planes and clip boxes in world millimetres (z, y, x, LPS).

* :class:`ClipPlane` ``(normal, offset_mm)`` removes the half-space the normal points into: a point
  ``p`` (mm) is kept where ``normal · p <= offset_mm`` (the normal is normalised first, so
  ``offset_mm`` is the signed distance of the plane from the world origin). Any orientation.
  :meth:`ClipPlane.through` builds one through a point.
* :class:`ClipBox` ``(lower_mm, upper_mm, keep)``: with ``keep="outside"`` (default) the box is cut
  away — a notch that opens the bone; with ``keep="inside"`` everything outside the box is removed
  (a crop).

Several clips combine: a point is drawn only if every clip keeps it. Where a clip surface passes
through material, the renderer draws the cut face with the values on it (see
:class:`~trabecula.render.transfer.TransferFunction`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from trabecula.errors import ParameterError


def _vec3(v, name: str) -> tuple[float, float, float]:
    try:
        t = tuple(float(x) for x in v)
    except (TypeError, ValueError) as exc:
        raise ParameterError(name, f"expected three numbers (z, y, x), got {v!r}") from exc
    if len(t) != 3 or not all(math.isfinite(x) for x in t):
        raise ParameterError(name, f"expected three finite numbers (z, y, x), got {v!r}")
    return t  # type: ignore[return-value]


@dataclass(frozen=True)
class ClipPlane:
    """Keep the points ``p`` (world mm, z/y/x) with ``normal · p <= offset_mm`` (``normal`` unit length)."""

    normal: tuple[float, float, float]
    offset_mm: float = 0.0

    def __post_init__(self) -> None:
        n = np.asarray(_vec3(self.normal, "clip plane normal"))
        norm = float(np.linalg.norm(n))
        if norm == 0:
            raise ParameterError("clip plane normal", "must not be zero")
        if not math.isfinite(self.offset_mm):
            raise ParameterError("clip plane offset", "must be finite")
        object.__setattr__(self, "normal", tuple(float(x) for x in n / norm))
        object.__setattr__(self, "offset_mm", float(self.offset_mm) / norm if norm != 1.0 else float(self.offset_mm))

    @classmethod
    def through(cls, point_mm: Sequence[float], normal: Sequence[float]) -> ClipPlane:
        """The plane through ``point_mm`` with ``normal`` (removes the side the normal points to)."""
        n = np.asarray(_vec3(normal, "clip plane normal"))
        norm = float(np.linalg.norm(n))
        if norm == 0:
            raise ParameterError("clip plane normal", "must not be zero")
        n = n / norm
        return cls(tuple(n), float(n @ np.asarray(_vec3(point_mm, "clip plane point"))))

    @classmethod
    def through_center(cls, center_mm: Sequence[float], normal: Sequence[float], offset_mm: float = 0.0) -> ClipPlane:
        """The plane with ``normal`` through ``center_mm`` moved ``offset_mm`` along the (unit) normal."""
        n = np.asarray(_vec3(normal, "clip plane normal"))
        norm = float(np.linalg.norm(n))
        if not norm > 0:
            raise ParameterError("clip plane normal", "must not be zero")
        n = n / norm
        return cls.through(np.asarray(center_mm, float) + float(offset_mm) * n, n)

    def keeps(self, points_mm: np.ndarray) -> np.ndarray:
        """Boolean mask: which points (..., 3) are kept."""
        return np.asarray(points_mm, float) @ np.asarray(self.normal) <= self.offset_mm


@dataclass(frozen=True)
class ClipBox:
    """An axis-aligned world box ``[lower_mm, upper_mm]`` (z, y, x); ``keep`` = ``"outside"`` cuts the box
    away (a notch), ``"inside"`` keeps only the box (a crop)."""

    lower_mm: tuple[float, float, float]
    upper_mm: tuple[float, float, float]
    keep: str = "outside"

    def __post_init__(self) -> None:
        lo, hi = _vec3(self.lower_mm, "clip box"), _vec3(self.upper_mm, "clip box")
        if not all(a < b for a, b in zip(lo, hi, strict=True)):
            raise ParameterError("clip box", f"lower corner must be below the upper corner on every axis, got {lo}, {hi}")
        if self.keep not in ("outside", "inside"):
            raise ParameterError("clip box", f"keep must be 'outside' or 'inside', got {self.keep!r}")
        object.__setattr__(self, "lower_mm", lo)
        object.__setattr__(self, "upper_mm", hi)

    def keeps(self, points_mm: np.ndarray) -> np.ndarray:
        p = np.asarray(points_mm, float)
        inside = np.all((p >= np.asarray(self.lower_mm)) & (p <= np.asarray(self.upper_mm)), axis=-1)
        return inside if self.keep == "inside" else ~inside


Clip = ClipPlane | ClipBox


def as_clip_list(clip) -> list[Clip]:
    """Normalise ``None`` / one clip / a sequence of clips to a list (checked)."""
    if clip is None:
        return []
    items = [clip] if isinstance(clip, ClipPlane | ClipBox) else list(clip)
    for c in items:
        if not isinstance(c, ClipPlane | ClipBox):
            raise ParameterError("clip", f"expected ClipPlane or ClipBox, got {type(c).__name__}")
    return items


def clip_arrays(clips: Sequence[Clip]) -> tuple[np.ndarray, np.ndarray]:
    """Pack clips for the kernel: planes ``(P, 4)`` = (nz, ny, nx, offset) and boxes ``(B, 7)`` =
    (lower z, y, x, upper z, y, x, keep_inside)."""
    planes = np.array([[*c.normal, c.offset_mm] for c in clips if isinstance(c, ClipPlane)], np.float64).reshape(-1, 4)
    boxes = np.array([[*c.lower_mm, *c.upper_mm, 1.0 if c.keep == "inside" else 0.0]
                      for c in clips if isinstance(c, ClipBox)], np.float64).reshape(-1, 7)
    return planes, boxes


def keep_mask(clips: Sequence[Clip], points_mm: np.ndarray) -> np.ndarray:
    """Which points (..., 3) every clip keeps."""
    m = np.ones(np.asarray(points_mm).shape[:-1], bool)
    for c in clips:
        m &= c.keeps(points_mm)
    return m
