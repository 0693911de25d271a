"""Reconstruction kernels: the discrete ramp filter and its apodisation windows.

The ramp is the band-limited spatial kernel of Kak & Slaney (Principles of Computerized Tomographic
Imaging, IEEE Press 1988, eq. 3.61): h[0] = 1/(4d²), h[n odd] = −1/(n²π²d²), h[n even ≠ 0] = 0 for sample
spacing d; rows are zero-padded to the next power of two ≥ 2N and convolved through the FFT (this avoids the
DC shift of sampling |f| directly). The kernel's frequency response H(f) (real) is then multiplied by a
window W(f), f in cycles per sample (Nyquist = 0.5):

============  ===========================================================================================
``ramp``      W = 1 (Ram–Lak)
``shepp-logan`` W = sinc(f) = sin(πf)/(πf) (Shepp & Logan, IEEE Trans. Nucl. Sci. 21 (1974) 21)
``hann``      W = 0.5 (1 + cos 2πf) (cosine² roll-off to 0 at Nyquist)
``standard``  a smooth soft-tissue kernel: Hann window cut at 0.7 × Nyquist, W = 0.5 (1 + cos(π f / 0.35))
              for f ≤ 0.35, 0 above (a B30-like body kernel: MTF roll-off well below the detector's)
``bone``      a sharp bone kernel: ramp with a mid-frequency boost and a gentle roll-off,
              W = (1 + 0.6 (2f)²)·(0.5 (1 + cos 2πf))^0.25 (edge-enhancing, like B70/FC30-class kernels)
============  ===========================================================================================

The shapes of ``standard`` and ``bone`` are our definitions (vendors do not publish theirs); their effect
on MTF and noise is measured by the twin study (docs/scanner.md).
"""

from __future__ import annotations

import numpy as np

from trabecula.errors import ParameterError
from trabecula.scanner.config import KERNELS


def kernel_window(kernel: str, f: np.ndarray) -> np.ndarray:
    """W(f) for ``kernel`` at frequencies ``f`` in cycles per detector sample (|f| ≤ 0.5)."""
    a = np.abs(np.asarray(f, float))
    if kernel == "ramp":
        return np.ones_like(a)
    if kernel == "shepp-logan":
        return np.sinc(a)
    if kernel == "hann":
        return 0.5 * (1.0 + np.cos(2 * np.pi * np.minimum(a, 0.5)))
    if kernel == "standard":
        fc = 0.35
        return np.where(a <= fc, 0.5 * (1.0 + np.cos(np.pi * np.minimum(a, fc) / fc)), 0.0)
    if kernel == "bone":
        return (1.0 + 0.6 * (2 * a) ** 2) * (0.5 * (1.0 + np.cos(2 * np.pi * np.minimum(a, 0.5)))) ** 0.25
    raise ParameterError("kernel", f"unknown kernel {kernel!r}; use one of {', '.join(KERNELS)}")


def padded_length(n: int) -> int:
    """Next power of two ≥ 2n (zero padding for the linear convolution)."""
    return int(2 ** int(np.ceil(np.log2(max(2 * n, 2)))))


def ramp_response(n: int, d: float, kernel: str = "ramp") -> np.ndarray:
    """Frequency response (rfft layout, length n_pad//2+1) of the windowed discrete ramp for rows of n
    samples at spacing d (mm); includes the factor d of the discrete convolution integral."""
    npad = padded_length(n)
    k = np.arange(npad)
    k = np.where(k > npad // 2, k - npad, k)
    h = np.zeros(npad)
    h[0] = 1.0 / (4.0 * d * d)
    odd = (k % 2) != 0
    h[odd] = -1.0 / (np.pi**2 * k[odd].astype(float) ** 2 * d * d)
    H = np.real(np.fft.rfft(h)) * d
    f = np.fft.rfftfreq(npad)  # cycles per sample
    return H * kernel_window(kernel, f)


def ramp_filter(rows: np.ndarray, d: float, kernel: str = "ramp", workers: int | None = None) -> np.ndarray:
    """Filter the last axis of ``rows`` with the windowed ramp (spacing d mm); returns float32."""
    import scipy.fft

    a = np.asarray(rows, np.float32)
    n = a.shape[-1]
    H = ramp_response(n, d, kernel).astype(np.float32)
    npad = padded_length(n)
    out = np.empty(a.shape, np.float32)
    flat_in = a.reshape(-1, n)
    flat_out = out.reshape(-1, n)
    chunk = max(1, int(2**22 // npad))
    for s in range(0, flat_in.shape[0], chunk):
        F = scipy.fft.rfft(flat_in[s:s + chunk], n=npad, axis=-1, workers=workers)
        F *= H
        flat_out[s:s + chunk] = scipy.fft.irfft(F, n=npad, axis=-1, workers=workers)[:, :n]
    return out


def kernel_mtf(kernel: str, f_lp_mm, d_mm: float) -> np.ndarray:
    """The kernel window as a transfer function of spatial frequency (lp/mm) for sample spacing d (mm)."""
    f = np.asarray(f_lp_mm, float) * d_mm
    return np.where(f <= 0.5, kernel_window(kernel, np.minimum(f, 0.5)), 0.0)
