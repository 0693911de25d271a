"""Full-reference image similarity: SSIM (two ways) and PSNR, per slice and averaged over a stack.

Two SSIMs, because the vertebra pix2pixHD study reported a non-standard one:

* :func:`ssim_study` — *exactly the study's*: the simplified SSIM formula of Wang et al. (2004) applied
  **globally** (one mean, variance and covariance per whole slice, no sliding window) to **8-bit
  windowed** slices, ``L = 255``, ``K1 = 0.01``, ``K2 = 0.03``::

      SSIM(x, y) = (2 μx μy + C1)(2 σxy + C2) / ((μx² + μy² + C1)(σx² + σy² + C2)),  C1 = (K1 L)², C2 = (K2 L)²

  Slices are windowed to 8 bits with :func:`trabecula.volume.window_to_uint8` (default: the ``bone``
  window, level 500 HU, width 2000 HU, i.e. −500 HU → 0 and 1500 HU → 255); variances are population
  variances (ddof 0). The study did not state its window; trabecula states its own.
* :func:`ssim_hu` — the standard windowed SSIM (Wang et al. 2004; :func:`skimage.metrics.structural_similarity`
  with an 11-tap Gaussian window of σ 1.5 px, ``K1 0.01``, ``K2 0.03``) on the HU values themselves,
  slice by slice, with the dynamic range ``data_range`` in HU stated (default 2000 HU).

:func:`psnr` is ``10 log10(data_range² / MSE)`` in dB on HU with the same stated ``data_range``.

All functions take 2-D slices or 3-D stacks (z, y, x); a stack is compared slice by slice (axial) and the
``*_slices`` variants return the per-slice values (the study's mean ± SD is over slices).
"""

from __future__ import annotations

import numpy as np

from trabecula.errors import ParameterError
from trabecula.volume import WINDOW_PRESETS, Volume, window_to_uint8

#: the default 8-bit window of :func:`ssim_study`: (level, width) in HU
STUDY_WINDOW: tuple[float, float] = WINDOW_PRESETS["bone"]
#: the default dynamic range (HU) of :func:`ssim_hu` and :func:`psnr`
HU_DATA_RANGE: float = 2000.0


def _as_stack(x, name: str) -> np.ndarray:
    a = x.numpy() if isinstance(x, Volume) else np.asarray(x)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ParameterError(name, f"expected a 2-D slice or a 3-D stack (z, y, x), got shape {a.shape}")
    if np.issubdtype(a.dtype, np.floating) and not np.all(np.isfinite(a)):
        raise ParameterError(name, "contains NaN or infinite values")
    return a


def _pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    x, y = _as_stack(a, "a"), _as_stack(b, "b")
    if x.shape != y.shape:
        raise ParameterError("b", f"shape {y.shape} differs from {x.shape}; compare images on the same grid")
    return x, y


def global_ssim(x: np.ndarray, y: np.ndarray, data_range: float = 255.0, k1: float = 0.01, k2: float = 0.03) -> float:
    """The simplified SSIM formula evaluated once over two whole images (no sliding window).

    Means and population variances (ddof 0) over all pixels; ``C1 = (k1 L)²``, ``C2 = (k2 L)²`` with
    ``L = data_range``. Symmetric; 1 for identical images.
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    mx, my = x.mean(), y.mean()
    vx, vy = x.var(), y.var()
    cxy = np.mean((x - mx) * (y - my))
    return float((2 * mx * my + c1) * (2 * cxy + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2)))


def ssim_study_slices(a, b, window: tuple[float, float] = STUDY_WINDOW) -> np.ndarray:
    """Per-slice study SSIM (see the module docstring) of HU stacks ``a`` and ``b``: 8-bit window
    ``(level, width)`` in HU, then :func:`global_ssim` with ``L = 255``, ``K1 = 0.01``, ``K2 = 0.03``."""
    x, y = _pair(a, b)
    level, width = float(window[0]), float(window[1])
    if not width > 0:
        raise ParameterError("window", f"width must be positive, got {width}")
    x8 = window_to_uint8(x, level, width)
    y8 = window_to_uint8(y, level, width)
    return np.array([global_ssim(x8[k], y8[k], 255.0) for k in range(x.shape[0])])


def ssim_study(a, b, window: tuple[float, float] = STUDY_WINDOW) -> float:
    """Mean over slices of :func:`ssim_study_slices` — the SSIM the vertebra study reported."""
    return float(np.mean(ssim_study_slices(a, b, window)))


def ssim_hu_slices(a, b, data_range: float = HU_DATA_RANGE) -> np.ndarray:
    """Per-slice standard SSIM on HU (:func:`skimage.metrics.structural_similarity`, Gaussian window
    σ = 1.5 px, K1 0.01, K2 0.03, population covariances) with dynamic range ``data_range`` HU."""
    from skimage.metrics import structural_similarity

    x, y = _pair(a, b)
    if not data_range > 0:
        raise ParameterError("data_range", f"must be positive, got {data_range}")
    if min(x.shape[1:]) < 7:
        raise ParameterError("a", f"slices of {x.shape[1:]} are too small for windowed SSIM (need ≥ 7 × 7)")
    x = x.astype(np.float64)
    y = y.astype(np.float64)
    return np.array([
        structural_similarity(x[k], y[k], data_range=data_range, gaussian_weights=True, sigma=1.5,
                              use_sample_covariance=False)
        for k in range(x.shape[0])
    ])


def ssim_hu(a, b, data_range: float = HU_DATA_RANGE) -> float:
    """Mean over slices of :func:`ssim_hu_slices`."""
    return float(np.mean(ssim_hu_slices(a, b, data_range)))


def psnr_slices(a, b, data_range: float = HU_DATA_RANGE) -> np.ndarray:
    """Per-slice PSNR in dB, ``10 log10(data_range² / MSE)``; ``b`` is the reference; inf for identical slices."""
    x, y = _pair(a, b)
    if not data_range > 0:
        raise ParameterError("data_range", f"must be positive, got {data_range}")
    mse = np.mean((x.astype(np.float64) - y.astype(np.float64)) ** 2, axis=(1, 2))
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(data_range**2 / mse)


def psnr(a, b, data_range: float = HU_DATA_RANGE) -> float:
    """PSNR in dB over the whole stack (MSE pooled over all voxels), ``b`` the reference."""
    x, y = _pair(a, b)
    if not data_range > 0:
        raise ParameterError("data_range", f"must be positive, got {data_range}")
    mse = float(np.mean((x.astype(np.float64) - y.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else float(10.0 * np.log10(data_range**2 / mse))
