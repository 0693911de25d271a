"""Noise power spectrum (NPS): 2-D NPS from ROIs of uniform regions, its radial average and peak.

Definition (Siewerdsen, Cunningham & Jaffray 2002; Boedeker, Cooper & McNitt-Gray 2007; ICRU 87):

    NPS(fx, fy) = (Δx Δy / (Nx Ny)) · ⟨ |FFT2( ROI_i − trend_i )|² ⟩_i

over ROIs of ``Nx × Ny`` pixels of size ``Δx × Δy`` mm, each with its trend removed (its mean, or a
fitted plane or 2nd-order polynomial surface against cupping). Units: (image units)² · mm², e.g.
HU²·mm². Its integral over frequency is the pixel variance (``Σ NPS · Δfx Δfy = σ²``, checked in the
tests). Frequencies in cycles/mm (lp/mm). The radial NPS averages rings of width ``1 / (N Δ)``; its
peak frequency characterises the noise texture (a ramp-filtered CT NPS peaks at mid frequencies; a
smoother kernel moves the peak down). Structure that is not noise (e.g. a non-uniform object) biases
the NPS; ``nps_difference`` uses two repeated scans, ``(a − b) / √2``, which cancels it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trabecula.errors import ParameterError
from trabecula.quality._roi import Roi, image_and_spacing, parse_roi
from trabecula.volume import Volume


@dataclass
class NPSResult:
    """A 2-D NPS (``nps`` on ``fy × fx``, fftshifted, units² · mm²), its radial average and summary."""

    fy: np.ndarray
    fx: np.ndarray
    nps: np.ndarray
    frequency: np.ndarray
    radial: np.ndarray
    peak_frequency: float
    mean_frequency: float
    variance: float
    n_rois: int
    roi_size: int
    pixel_mm: tuple[float, float]
    units: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def noise_sd(self) -> float:
        """SD implied by the NPS integral (√variance)."""
        return math.sqrt(self.variance)

    def to_dict(self, curve: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {"peak_frequency_lp_mm": self.peak_frequency, "mean_frequency_lp_mm": self.mean_frequency,
                             "variance": self.variance, "noise_sd": self.noise_sd, "n_rois": self.n_rois,
                             "roi_size_px": self.roi_size, "pixel_mm": list(self.pixel_mm), "units": self.units,
                             **self.details}
        if curve:
            d["frequency_lp_mm"] = [round(float(f), 5) for f in self.frequency]
            d["radial_nps"] = [float(f"{v:.6g}") for v in self.radial]
        return d


def detrend(roi: np.ndarray, order: int | str = "mean") -> np.ndarray:
    """Remove a ROI's trend: ``"mean"`` (0), ``"plane"`` (1) or ``"poly2"`` (2nd-order surface, least squares)."""
    if order in ("none", None):
        return roi
    deg = {"mean": 0, "plane": 1, "poly2": 2}.get(order) if isinstance(order, str) else int(order)  # type: ignore[arg-type]
    if deg is None:
        raise ParameterError("detrend", f"unknown detrend {order!r}; use mean, plane, poly2 or none")
    if deg == 0:
        return roi - roi.mean()
    ny, nx = roi.shape
    y, x = np.mgrid[0:ny, 0:nx]
    y = (y - (ny - 1) / 2) / ny
    x = (x - (nx - 1) / 2) / nx
    cols = [np.ones_like(x)]
    for d in range(1, deg + 1):
        for i in range(d + 1):
            cols.append(x ** (d - i) * y ** i)
    A = np.stack([c.ravel() for c in cols], 1)
    coef, *_ = np.linalg.lstsq(A, roi.ravel(), rcond=None)
    return roi - (A @ coef).reshape(roi.shape)


def tile_rois(mask2d: np.ndarray, size: int, overlap: float = 0.5) -> list[tuple[int, int]]:
    """Top-left corners of ``size``-pixel square ROIs lying entirely inside ``mask2d``, on a grid of stride
    ``size · (1 - overlap)`` (50 % overlap is the usual compromise: more ROIs, correlated)."""
    stride = max(1, int(round(size * (1 - overlap))))
    ny, nx = mask2d.shape
    if ny < size or nx < size:
        return []
    # integral image: count of mask pixels in each window
    ii = np.pad(mask2d.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    out = []
    for y0 in range(0, ny - size + 1, stride):
        for x0 in range(0, nx - size + 1, stride):
            s = ii[y0 + size, x0 + size] - ii[y0, x0 + size] - ii[y0 + size, x0] + ii[y0, x0]
            if s == size * size:
                out.append((y0, x0))
    return out


def radial_average(nps2d: np.ndarray, fy: np.ndarray, fx: np.ndarray, bin_width: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Average a (fftshifted) 2-D spectrum over rings of ``|f|``; returns ring centres and means up to the
    smaller Nyquist frequency. Default ring width: the coarser frequency sample."""
    dfy = abs(fy[1] - fy[0]) if fy.size > 1 else 1.0
    dfx = abs(fx[1] - fx[0]) if fx.size > 1 else 1.0
    w = float(bin_width) if bin_width else max(dfy, dfx)
    fr = np.hypot(fy[:, None], fx[None, :])
    fmax = min(np.abs(fy).max(), np.abs(fx).max())
    k = np.rint(fr / w).astype(np.int64)
    nb = int(fmax / w) + 1
    sel = k < nb
    sums = np.bincount(k[sel], weights=nps2d[sel], minlength=nb)
    cnt = np.bincount(k[sel], minlength=nb)
    ok = cnt > 0
    return (np.arange(nb) * w)[ok], sums[ok] / cnt[ok]


def nps_2d(
    image: Volume | np.ndarray,
    spacing: float | Sequence[float] | None = None,
    roi: Roi = None,
    roi_size: int = 64,
    overlap: float = 0.5,
    detrend_mode: str = "poly2",
    mask: np.ndarray | None = None,
    units: str | None = None,
) -> NPSResult:
    """2-D and radial NPS of the noise in a uniform region (e.g. a water-cylinder scan).

    ``image`` is a 2-D (y, x) image or a 3-D stack (z, y, x) whose slices are treated as independent
    realisations (axial NPS). ``roi`` (box) restricts the region; ``mask`` (boolean, same shape as the
    cropped image or its slices) marks the uniform pixels: square ROIs of ``roi_size`` pixels are tiled
    inside it with ``overlap``. Each ROI is detrended (``detrend_mode``: mean, plane, poly2, none) and
    the NPS is ``Δx Δy / (Nx Ny) · mean |FFT2|²``. Returns the fftshifted 2-D NPS, its radial average
    and peak/mean frequency, and the variance (its integral).
    """
    arr, sp = image_and_spacing(image, spacing)
    idx = parse_roi(roi, arr.shape)
    if isinstance(idx, np.ndarray):
        if mask is not None:
            raise ParameterError("mask", "give either a mask ROI or a mask, not both")
        mask, idx = idx, tuple(slice(0, n) for n in arr.shape)
    sub = np.asarray(arr[idx], dtype=np.float64)
    stack = sub[None] if sub.ndim == 2 else sub
    dy, dx = sp[-2], sp[-1]
    n = int(roi_size)
    if n < 8:
        raise ParameterError("roi_size", f"use at least 8 pixels, got {roi_size}")
    if not 0 <= overlap < 1:
        raise ParameterError("overlap", f"must be in [0, 1), got {overlap}")
    if mask is not None:
        m = np.asarray(mask, bool)
        if m.shape == arr.shape:
            m = m[idx]
        m = m[None] if m.ndim == 2 else m
        if m.shape[1:] != stack.shape[1:] or m.shape[0] not in (1, stack.shape[0]):
            raise ParameterError("mask", f"mask shape {np.shape(mask)} does not fit the image region {sub.shape}")
    else:
        m = np.ones((1,) + stack.shape[1:], bool)
    acc = np.zeros((n, n))
    count = 0
    for z in range(stack.shape[0]):
        corners = tile_rois(m[min(z, m.shape[0] - 1)], n, overlap)
        for y0, x0 in corners:
            r = detrend(stack[z, y0:y0 + n, x0:x0 + n], detrend_mode)
            acc += np.abs(np.fft.fft2(r)) ** 2
            count += 1
    if count == 0:
        raise ParameterError("roi_size", f"no {n}×{n} ROI fits inside the uniform region {stack.shape[1:]}; "
                                         "use a smaller --roi-size or a larger region")
    nps = np.fft.fftshift(acc / count * (dx * dy) / (n * n))
    fy = np.fft.fftshift(np.fft.fftfreq(n, dy))
    fx = np.fft.fftshift(np.fft.fftfreq(n, dx))
    variance = float(nps.sum() / (n * dy * n * dx))
    f, rad = radial_average(nps, fy, fx)
    peak = float(f[int(np.argmax(rad[1:])) + 1]) if f.size > 1 else 0.0
    fr = np.hypot(fy[:, None], fx[None, :])
    mean_f = float((fr * nps).sum() / max(nps.sum(), 1e-300))
    u = units if units is not None else (image.units if isinstance(image, Volume) else "")
    return NPSResult(fy, fx, nps, f, rad, peak, mean_f, variance, count, n, (dy, dx), u,
                     {"detrend": detrend_mode, "overlap": overlap, "slices": int(stack.shape[0])})


def nps_difference(a: Volume | np.ndarray, b: Volume | np.ndarray, spacing: float | Sequence[float] | None = None,
                   **kwargs: Any) -> NPSResult:
    """NPS of two repeated acquisitions of the same object: of ``(a − b) / √2`` (structure cancels,
    noise variance is kept)."""
    aa, sp = image_and_spacing(a, spacing, "a")
    bb, sp_b = image_and_spacing(b, spacing, "b")
    if aa.shape != bb.shape or not np.allclose(sp, sp_b):
        raise ParameterError("b", f"the two images differ in shape/spacing: {aa.shape} vs {bb.shape}")
    diff = (aa.astype(np.float64) - bb.astype(np.float64)) / math.sqrt(2.0)
    units = kwargs.pop("units", a.units if isinstance(a, Volume) else "")
    return nps_2d(diff, sp, units=units, **kwargs)
