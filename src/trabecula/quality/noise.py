"""Noise SD in regions of interest, and contrast-to-noise ratio (CNR).

Conventions: the SD is the sample standard deviation (``ddof=1``) of the voxel values in an ROI, in the
image's units (HU for CT); with several ROIs their SDs are averaged in quadrature (pooled,
``sqrt(mean σ²)``). CNR is ``|μ_signal − μ_background| / σ_background`` (ICRU 87 / AAPM TG-233
style; ``noise="pooled"`` uses ``sqrt((σ_s² + σ_b²) / 2)`` instead). Only noise should vary within an
ROI: place it in a uniform region (a trend inflates the SD; ``detrend="plane"`` removes a linear one).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trabecula.errors import ParameterError
from trabecula.quality._roi import Roi, parse_roi
from trabecula.volume import Volume


@dataclass
class RoiStats:
    """Mean, SD (ddof=1) and voxel count of one ROI."""

    mean: float
    sd: float
    n: int

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "sd": self.sd, "n": self.n}


def _values(image: Volume | np.ndarray, roi: Roi, name: str) -> np.ndarray:
    arr = image.numpy() if isinstance(image, Volume) else np.asarray(image)
    if arr.ndim not in (2, 3):
        raise ParameterError("image", f"expected a 2-D or 3-D image, got shape {arr.shape}")
    idx = parse_roi(roi, arr.shape, name)
    return np.asarray(arr[idx], dtype=np.float64)


def _plane_residual(v: np.ndarray) -> np.ndarray:
    if v.ndim == 1:
        return v - v.mean()
    grids = np.meshgrid(*[np.arange(n, dtype=float) for n in v.shape], indexing="ij")
    A = np.stack([np.ones(v.size)] + [g.ravel() for g in grids], 1)
    coef, *_ = np.linalg.lstsq(A, v.ravel(), rcond=None)
    return v.ravel() - A @ coef


def roi_stats(image: Volume | np.ndarray, roi: Roi = None, detrend: str = "none", name: str = "roi") -> RoiStats:
    """Mean and SD (``ddof=1``) of the voxels in an ROI (box spec, or boolean mask); ``detrend="plane"``
    computes the SD about a fitted linear trend (box ROIs) instead of the mean."""
    v = _values(image, roi, name)
    if v.size < 2:
        raise ParameterError(name, "the ROI holds fewer than 2 voxels")
    if detrend == "plane":
        res = _plane_residual(v)
        sd = float(np.sqrt(np.sum(res ** 2) / (res.size - 1 - v.ndim)))
    elif detrend == "none":
        sd = float(np.std(v, ddof=1))
    else:
        raise ParameterError("detrend", f"unknown detrend {detrend!r}; use none or plane")
    return RoiStats(float(np.mean(v)), sd, int(v.size))


@dataclass
class NoiseResult:
    """Pooled noise SD over one or more ROIs, with each ROI's statistics."""

    sd: float
    mean: float
    rois: list[RoiStats]
    units: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"sd": self.sd, "mean": self.mean, "units": self.units, "rois": [r.to_dict() for r in self.rois],
                **self.details}


def noise_sd(image: Volume | np.ndarray, rois: Roi | Sequence[Roi] = None, detrend: str = "none") -> NoiseResult:
    """Noise SD of an image in one ROI or several (pooled in quadrature: ``sqrt(mean σ_i²)``).

    ``rois``: one ROI spec (a ``"z0:z1,y0:y1,x0:x1"`` string, a *tuple* of ``(start, stop)`` ranges or
    slices, or a boolean mask), a *list* of such specs (several ROIs), or ``None`` for the whole image.
    """
    specs = rois if isinstance(rois, list) else [rois]
    if not specs:
        raise ParameterError("roi", "give at least one ROI")
    stats = [roi_stats(image, r, detrend, name=f"roi[{i}]") for i, r in enumerate(specs)]
    sd = math.sqrt(float(np.mean([s.sd ** 2 for s in stats])))
    mean = float(np.average([s.mean for s in stats], weights=[s.n for s in stats]))
    units = image.units if isinstance(image, Volume) else ""
    return NoiseResult(sd, mean, stats, units, {"detrend": detrend, "pooled": "sqrt(mean of variances)"})


@dataclass
class CNRResult:
    """CNR with the statistics it came from."""

    cnr: float
    contrast: float
    noise: float
    signal: RoiStats
    background: RoiStats
    noise_mode: str

    def to_dict(self) -> dict[str, Any]:
        return {"cnr": self.cnr, "contrast": self.contrast, "noise": self.noise, "noise_mode": self.noise_mode,
                "signal": self.signal.to_dict(), "background": self.background.to_dict()}


def cnr(image: Volume | np.ndarray, signal: Roi, background: Roi, noise: str = "background") -> CNRResult:
    """Contrast-to-noise ratio ``|μ_s − μ_b| / σ`` between a signal ROI and a background ROI.

    ``noise="background"`` (default): σ is the background ROI's SD; ``"pooled"``:
    ``sqrt((σ_s² + σ_b²) / 2)``.
    """
    s = roi_stats(image, signal, name="signal")
    b = roi_stats(image, background, name="background")
    if noise == "background":
        sigma = b.sd
    elif noise == "pooled":
        sigma = math.sqrt((s.sd ** 2 + b.sd ** 2) / 2.0)
    else:
        raise ParameterError("noise", f"unknown noise mode {noise!r}; use background or pooled")
    contrast = abs(s.mean - b.mean)
    value = contrast / sigma if sigma > 0 else float("inf")
    return CNRResult(float(value), float(contrast), float(sigma), s, b, noise)
