"""Modulation transfer function (MTF) from a slanted edge or a thin wire, with MTF50 and MTF10.

Conventions: frequencies in line pairs per mm (lp/mm = cycles/mm); the MTF is normalised to 1 at zero
frequency; it is the *presampled* MTF (everything that blurs before the image is sampled, including
the reconstruction), reported up to twice the pixel Nyquist frequency ``1 / (2 · pixel)`` (the edge
method oversamples; only the part below Nyquist is free of aliasing in the image itself). MTF50 and
MTF10 are the first frequencies where the curve falls through 0.5 and 0.1, by linear interpolation
between samples; NaN when it never does within the reported range.

References
----------
Samei E, Flynn MJ, Reimann DA (1998) A method for measuring the presampled MTF of digital radiographic
systems using an edge test device. Med Phys 25:102–113.
IEC 62220-1-1:2015 Medical electrical equipment — characteristics of digital X-ray imaging devices —
determination of the detective quantum efficiency (edge method, oversampled ESF).
Judy PF (1976) The line spread function and modulation transfer function of a computed tomographic
scanner. Med Phys 3:233–236 (wire/PSF method in CT).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import special

from trabecula.errors import ParameterError
from trabecula.quality._roi import Roi, slice_average
from trabecula.volume import Volume


@dataclass
class MTFResult:
    """An MTF curve: ``frequency`` (lp/mm) and ``mtf`` (1 at 0), its MTF50/MTF10 (lp/mm) and details."""

    frequency: np.ndarray
    mtf: np.ndarray
    mtf50: float
    mtf10: float
    method: str
    pixel_mm: float
    nyquist: float
    details: dict[str, Any] = field(default_factory=dict)

    def at(self, frequency: float | np.ndarray) -> float | np.ndarray:
        """MTF at a frequency (lp/mm), by linear interpolation."""
        return np.interp(frequency, self.frequency, self.mtf)

    def to_dict(self, curve: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {"method": self.method, "mtf50_lp_mm": _num(self.mtf50), "mtf10_lp_mm": _num(self.mtf10),
                             "pixel_mm": self.pixel_mm, "nyquist_lp_mm": self.nyquist,
                             **{k: v for k, v in self.details.items() if not isinstance(v, np.ndarray)}}
        if curve:
            d["frequency_lp_mm"] = [round(float(f), 5) for f in self.frequency]
            d["mtf"] = [round(float(m), 5) for m in self.mtf]
        return d


def _num(x: float) -> float | None:
    return None if not np.isfinite(x) else float(x)


def mtf_crossing(frequency: np.ndarray, mtf: np.ndarray, level: float) -> float:
    """First frequency where ``mtf`` falls through ``level`` (linear interpolation); NaN if it never does."""
    f = np.asarray(frequency, float)
    m = np.asarray(mtf, float)
    below = np.flatnonzero(m < level)
    if below.size == 0 or below[0] == 0:
        return float("nan")
    i = int(below[0])
    m0, m1 = m[i - 1], m[i]
    return float(f[i - 1] + (m0 - level) / (m0 - m1) * (f[i] - f[i - 1]))


# ------------------------------------------------------------------------------------------------ edge
@dataclass
class EdgeFit:
    """The edge line ``x = a + b·y`` (mm, in the analysed orientation), its angle and orientation."""

    a: float
    b: float
    angle_deg: float
    transposed: bool
    rising: bool


def _row_centroids(img: np.ndarray, guess: np.ndarray | None, half: int) -> np.ndarray:
    """Edge position (pixels, along x) in each row: centroid of the derivative in a Hann window."""
    d = np.diff(img, axis=1)  # sample k sits at x = k + 0.5
    ny, nd = d.shape
    xs = np.arange(nd) + 0.5
    out = np.full(ny, np.nan)
    for r in range(ny):
        row = d[r]
        c = int(np.argmax(np.convolve(row, np.ones(3) / 3, mode="same"))) if guess is None else int(round(guess[r] - 0.5))
        lo, hi = max(0, c - half), min(nd, c + half + 1)
        if hi - lo < 3:
            continue
        w = np.hanning(2 * half + 3)[1:-1][lo - (c - half):hi - (c - half)]
        v = row[lo:hi] * w
        s = v.sum()
        if s > 0:
            out[r] = float((v * xs[lo:hi]).sum() / s)
    return out


def fit_edge(img: np.ndarray, spacing_yx: Sequence[float]) -> tuple[np.ndarray, tuple[float, float], EdgeFit]:
    """Orient an edge image (edge roughly along y, rising along x) and fit the edge line.

    The image is transposed if the edge is closer to horizontal, flipped if intensity falls along x;
    the edge position in each row is the centroid of the row derivative (Hann-windowed around the
    previous estimate, two passes), and a line ``x = a + b·y`` is fitted by least squares with rows
    more than 3 robust SDs off the first fit discarded (Samei et al. 1998; ISO 12233's sfrmat does the
    same with a Hamming window).
    """
    dy, dx = float(spacing_yx[0]), float(spacing_yx[1])
    gx = np.abs(np.diff(img, axis=1)).sum()
    gy = np.abs(np.diff(img, axis=0)).sum()
    transposed = bool(gy > gx)
    if transposed:
        img = img.T
        dy, dx = dx, dy
    rising = bool(np.sum(np.diff(img, axis=1)) >= 0)
    if not rising:
        img = -img
    ny, nx = img.shape
    half = max(4, nx // 4)
    pos = _row_centroids(img, None, half)
    rows = np.arange(ny, dtype=float)
    good = np.isfinite(pos)
    if good.sum() < max(4, ny // 2):
        raise ParameterError("roi", "no clear edge found in the ROI (too few rows with a rising edge)")
    for _ in range(2):
        p = np.polyfit(rows[good], pos[good], 1)
        res = pos - np.polyval(p, rows)
        mad = np.nanmedian(np.abs(res[good])) * 1.4826 + 1e-9
        good = np.isfinite(pos) & (np.abs(res) <= max(3 * mad, 0.05))
        pos = _row_centroids(img, np.polyval(p, rows), max(4, half // 2))
        good &= np.isfinite(pos)
    p = np.polyfit(rows[good], pos[good], 1)
    # x_px = p[1] + p[0] * y_px  →  mm
    b = p[0] * dx / dy
    a = p[1] * dx
    angle = math.degrees(math.atan(b))
    return img, (dy, dx), EdgeFit(a, b, angle, transposed, rising)


def esf_oversampled(img: np.ndarray, spacing_yx: Sequence[float], fit: EdgeFit, oversample: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edge spread function binned at ``pixel / oversample`` along the edge normal.

    Each pixel's signed distance to the fitted edge line (mm, positive on the bright side) goes into bins
    of width ``dx / oversample``; the ESF is the mean per bin. Returns bin centres (mm), the ESF and
    the sample count per bin (empty interior bins are filled by linear interpolation and counted 0).
    """
    dy, dx = float(spacing_yx[0]), float(spacing_yx[1])
    ny, nx = img.shape
    y = np.arange(ny)[:, None] * dy
    x = np.arange(nx)[None, :] * dx
    dist = (x - fit.a - fit.b * y) / math.sqrt(1.0 + fit.b ** 2)
    delta = dx / oversample
    # keep distances reached in (almost) every row, so each bin mixes many rows
    lo = float(np.max(dist[:, 0])) if ny > 1 else float(dist.min())
    hi = float(np.min(dist[:, -1])) if ny > 1 else float(dist.max())
    if hi - lo < 8 * dx:
        lo, hi = float(dist.min()), float(dist.max())
    k0, k1 = math.floor(lo / delta), math.ceil(hi / delta)
    sel = (dist >= k0 * delta) & (dist < k1 * delta)
    idx = np.floor(dist[sel] / delta).astype(np.int64) - k0
    n = k1 - k0
    counts = np.bincount(idx, minlength=n)[:n]
    sums = np.bincount(idx, weights=img[sel], minlength=n)[:n]
    centres = (np.arange(n) + k0 + 0.5) * delta
    esf = np.full(n, np.nan)
    ok = counts > 0
    esf[ok] = sums[ok] / counts[ok]
    if not ok.all():
        first, last = np.flatnonzero(ok)[[0, -1]]
        centres, esf, counts = centres[first:last + 1], esf[first:last + 1], counts[first:last + 1]
        ok = counts > 0
        esf = np.interp(centres, centres[ok], esf[ok])
    return centres, esf, counts


def _window(n: int, centre: float, kind: str) -> np.ndarray:
    """A symmetric taper about ``centre`` (sample index) reaching 0 at the nearer end of the array."""
    if kind == "none":
        return np.ones(n)
    half = max(1.0, min(centre, n - 1 - centre))
    t = (np.arange(n) - centre) / half  # -1 .. 1 over the symmetric span
    w = np.zeros(n)
    inside = np.abs(t) <= 1
    if kind == "hann":
        w[inside] = 0.5 * (1 + np.cos(np.pi * t[inside]))
    elif kind == "tukey":  # flat over the central half, cosine tails
        a = np.abs(t[inside])
        w[inside] = np.where(a <= 0.5, 1.0, 0.5 * (1 + np.cos(np.pi * (a - 0.5) / 0.5)))
    else:
        raise ParameterError("window", f"unknown window {kind!r}; use hann, tukey or none")
    return w


def mtf_from_lsf(lsf: np.ndarray, delta_mm: float, f_max: float, corrections: Sequence[str] = ()) -> tuple[np.ndarray, np.ndarray]:
    """|FFT| of an LSF sampled every ``delta_mm``, normalised at 0, on a fine grid up to ``f_max`` lp/mm.

    ``corrections`` divide out known sampling filters: ``"central_difference"`` (the derivative
    ``(e[i+1] - e[i-1]) / 2``: ``sinc(2 f Δ)``) and ``"bin_average"`` (averaging within bins of width Δ:
    ``sinc(f Δ)``); ``numpy.sinc(x) = sin(πx)/(πx)``.
    """
    n = lsf.size
    nfft = 1 << max(12, int(math.ceil(math.log2(4 * n))))
    spec = np.abs(np.fft.rfft(lsf, nfft))
    freq = np.fft.rfftfreq(nfft, delta_mm)
    mtf = spec / spec[0]
    if "central_difference" in corrections:
        mtf = mtf / np.sinc(2 * freq * delta_mm)
    if "bin_average" in corrections:
        mtf = mtf / np.sinc(freq * delta_mm)
    keep = freq <= f_max + 1e-12
    return freq[keep], mtf[keep]


def mtf_edge(
    image: Volume | np.ndarray,
    spacing: float | Sequence[float] | None = None,
    roi: Roi = None,
    oversample: int = 4,
    window: str = "tukey",
) -> MTFResult:
    """Presampled MTF from a slanted edge (Samei et al. 1998; IEC 62220-1).

    Steps: crop ``roi`` (a 3-D stack is averaged over z: the edge must be parallel to z); orient the edge
    (along y, rising along x) and fit its line from per-row derivative centroids (:func:`fit_edge`);
    project every pixel onto the edge normal and bin at ``pixel / oversample`` (4–10) into an
    oversampled ESF; differentiate (central difference) into the LSF; taper it with a ``window``
    centred on the LSF peak and reaching zero at the nearer ROI end (``tukey``: flat over the central
    half, cosine tails — the default, it leaves the LSF core untouched; ``hann``, which over-reads MTF50 by
    0.3–2 % on Gaussian blurs; ``none``);
    |FFT|, normalised at 0; divide out the central-difference and bin-averaging filters (sinc). The ROI
    should hold the edge with ≥ 10 pixels on each side and enough rows that the slant sweeps whole
    pixels (rows × tan(angle) ≥ 2); angles of 2–10° work best. ``details`` holds the fitted angle, the
    ESF and the LSF.
    """
    ov = int(oversample)
    if not 2 <= ov <= 16:
        raise ParameterError("oversample", f"use 2–16 (4–10 is usual), got {oversample}")
    img, sp = slice_average(image, spacing, roi)
    img, (dy, dx), fit = fit_edge(img, sp)
    if abs(fit.angle_deg) < 0.3:
        warnings.warn(f"edge angle {fit.angle_deg:.2f}° is too small to oversample; use a slanted edge (2–10°)",
                      stacklevel=2)
    if img.shape[0] * abs(math.tan(math.radians(fit.angle_deg))) * dy / dx < 1.0:
        warnings.warn("the ROI has too few rows for the slant to sweep one pixel; the ESF will have gaps", stacklevel=2)
    d, esf, counts = esf_oversampled(img, (dy, dx), fit, ov)
    delta = dx / ov
    lsf = np.zeros_like(esf)
    lsf[1:-1] = (esf[2:] - esf[:-2]) / 2.0
    peak = float(np.sum(np.arange(lsf.size) * np.abs(lsf)) / max(np.sum(np.abs(lsf)), 1e-300))
    peak = float(np.argmax(np.convolve(np.abs(lsf), np.ones(ov) / ov, mode="same"))) if not np.isfinite(peak) else peak
    lsf_w = lsf * _window(lsf.size, peak, window)
    freq, mtf = mtf_from_lsf(lsf_w, delta, 1.0 / dx, ("central_difference", "bin_average"))
    nyq = 1.0 / (2.0 * dx)
    details = {"angle_deg": fit.angle_deg, "transposed": fit.transposed, "rising": fit.rising, "oversample": ov,
               "window": window, "roi_shape": list(img.shape), "esf_distance_mm": d, "esf": esf, "lsf": lsf_w,
               "empty_bins": int(np.sum(counts == 0))}
    return MTFResult(freq, mtf, mtf_crossing(freq, mtf, 0.5), mtf_crossing(freq, mtf, 0.1), "edge", dx, nyq, details)


# ------------------------------------------------------------------------------------------------ wire
def _border_background(img: np.ndarray, frac: float = 0.15) -> float:
    ny, nx = img.shape
    by, bx = max(1, int(ny * frac)), max(1, int(nx * frac))
    border = np.concatenate([img[:by].ravel(), img[-by:].ravel(), img[by:-by, :bx].ravel(), img[by:-by, -bx:].ravel()])
    return float(np.median(border))


def disc_mtf(frequency: np.ndarray, diameter_mm: float) -> np.ndarray:
    """Transfer function of a uniform disc (a wire's cross-section): ``2 J1(π d f) / (π d f)``."""
    x = np.pi * diameter_mm * np.asarray(frequency, float)
    out = np.ones_like(x)
    nz = x > 1e-12
    out[nz] = 2.0 * special.j1(x[nz]) / x[nz]
    return out


def mtf_wire(
    image: Volume | np.ndarray,
    spacing: float | Sequence[float] | None = None,
    roi: Roi = None,
    wire_diameter_mm: float | None = None,
    method: str = "radial",
) -> MTFResult:
    """MTF from the image of a thin wire along z (its point spread function, Judy 1976).

    The ROI (a 3-D stack averaged over z) is background-subtracted (median of its outer 15 % border)
    and then, with ``method``:

    * ``"radial"``: ``|FFT2(PSF)| / ΣPSF``, averaged over rings one (zero-padded) frequency sample wide,
      up to the Nyquist frequency (2-D, rotationally averaged MTF);
    * ``"lsf"``: the PSF summed along y gives the LSF along x (and along x the LSF along y); the mean of
      the two 1-D MTFs, up to Nyquist.

    Spectra are zero-padded (×4, at least 256 samples) so the curve is sampled finely.

    ``wire_diameter_mm`` divides out the wire's own disc transfer function :func:`disc_mtf` (a few % at
    most for wires under a third of a pixel). The PSF must be sampled finely enough (FWHM ≳ 2 pixels) or
    aliasing inflates the MTF near Nyquist; for sharper systems use the edge method.
    """
    img, (dy, dx) = slice_average(image, spacing, roi)
    img = img - _border_background(img)
    if img.sum() <= 0:
        img = -img  # a dark wire (e.g. an air channel) — the PSF is the magnitude of the dip
    total = float(img.sum())
    if not total > 0:
        raise ParameterError("roi", "no wire signal above the background in the ROI")
    ny, nx = img.shape
    # zero-padding (×4, ≥ 256) interpolates the spectrum finely enough for MTF50/MTF10 read-outs
    py, px = max(256, 4 * ny), max(256, 4 * nx)
    if method == "radial":
        F = np.abs(np.fft.fft2(img, (py, px))) / total
        fy = np.fft.fftfreq(py, dy)[:, None]
        fx = np.fft.fftfreq(px, dx)[None, :]
        fr = np.hypot(fy, fx)
        step = 1.0 / (max(py * dy, px * dx))
        nyq = min(1.0 / (2 * dy), 1.0 / (2 * dx))
        k = np.rint(fr / step).astype(np.int64)
        nb = int(nyq / step) + 1
        sel = k < nb
        sums = np.bincount(k[sel], weights=F[sel], minlength=nb)
        cnt = np.bincount(k[sel], minlength=nb)
        ok = cnt > 0
        freq = (np.arange(nb) * step)[ok]
        mtf = sums[ok] / cnt[ok]
    elif method == "lsf":
        lsf_x = img.sum(axis=0)
        lsf_y = img.sum(axis=1)
        fx = np.fft.rfftfreq(px, dx)
        fy = np.fft.rfftfreq(py, dy)
        mx = np.abs(np.fft.rfft(lsf_x, px)) / lsf_x.sum()
        my = np.abs(np.fft.rfft(lsf_y, py)) / lsf_y.sum()
        nyq = min(1.0 / (2 * dy), 1.0 / (2 * dx))
        freq = fx[fx <= nyq + 1e-12]
        mtf = 0.5 * (mx[: freq.size] + np.interp(freq, fy, my))
    else:
        raise ParameterError("method", f"unknown wire method {method!r}; use radial or lsf")
    mtf = mtf / mtf[0]
    if wire_diameter_mm:
        mtf = mtf / np.maximum(disc_mtf(freq, float(wire_diameter_mm)), 1e-3)
    details = {"wire_method": method, "roi_shape": list(img.shape), "wire_diameter_mm": wire_diameter_mm,
               "psf_sum": total}
    return MTFResult(freq, mtf, mtf_crossing(freq, mtf, 0.5), mtf_crossing(freq, mtf, 0.1), "wire", dx,
                     1.0 / (2 * dx), details)


def gaussian_mtf50(sigma_mm: float) -> float:
    """MTF50 (lp/mm) of a Gaussian blur of SD ``sigma_mm``: ``sqrt(2 ln 2) / (2π σ)``."""
    return math.sqrt(2 * math.log(2)) / (2 * math.pi * sigma_mm)


def gaussian_mtf10(sigma_mm: float) -> float:
    """MTF10 (lp/mm) of a Gaussian blur of SD ``sigma_mm``: ``sqrt(2 ln 10) / (2π σ)``."""
    return math.sqrt(2 * math.log(10)) / (2 * math.pi * sigma_mm)
