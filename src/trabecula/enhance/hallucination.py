"""Hallucination check: is an enhanced volume's structure supported by the clinical input it came from?

Method (a data-consistency test): re-degrade the output with the input scanner's forward model — the
scanner twin's modelled transfer function (:func:`trabecula.scanner.fast.mtf_model`: detector aperture,
focal spot, scintillator blur, kernel, back-projection interpolation and slice profile, the signal model of
the fast path), applied on the output's grid and sampled at the input's voxel centres, noise-free — and
compare the prediction with the actual input:

1. ``r = input − D(output)`` on the input grid (HU). For an output the input can support, ``r`` is the
   input's noise; structure that the generator invented (or removed) and that the scanner would have
   seen leaves a coherent residual.
2. The noise SD ``σ`` of the input is estimated robustly from ``r`` itself (1.4826 × median absolute
   deviation; invented structure is sparse, so it barely moves the median).
3. The residual is averaged locally (a Gaussian of σ = ``smooth_vox`` input voxels), which keeps
   coherent structure and suppresses noise; its noise-only SD is estimated the same robust way, giving
   the **consistency map** ``z = smoothed r / robust SD`` (dimensionless).
4. Voxels with ``|z| > z_threshold`` (default 4) are *unsupported*. The volume is **flagged** when at least
   ``flag_fraction`` (default 1 %) of its voxels are, when one connected unsupported region reaches
   ``min_cluster_mm3`` (default 1 mm³, several resolution elements of clinical CT), or when the score
   below is not above ``min_score`` (default 0.5; a globally wrong output inflates the robust SD of step 3,
   so steps 3–4 alone would miss it). A value at a limit is flagged: the limits are what is not allowed.

The **score** is the fraction of the input's variance explained by the re-degraded output,
``1 − Var(r) / Var(input)`` (1 = fully consistent; noise keeps it below 1; an output unrelated to the
input goes to ≤ 0). Structure *below* the input's resolution is invisible to this test by construction:
it shows what the input contradicts, not that fine detail is right.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from trabecula.errors import ParameterError
from trabecula.scanner.config import Scanner, load_scanner
from trabecula.scanner.fast import transfer_filter
from trabecula.volume import Volume


@dataclass
class ConsistencyResult:
    """Score, flag and maps of :func:`consistency_check`."""

    score: float
    flagged: bool
    unsupported_fraction: float
    noise_sd_hu: float
    rms_residual_hu: float
    z_map: Volume
    residual: Volume
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"score": self.score, "flagged": self.flagged, "unsupported_fraction": self.unsupported_fraction,
                "noise_sd_hu": self.noise_sd_hu, "rms_residual_hu": self.rms_residual_hu, **self.details}


def _robust_sd(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(1.4826 * np.median(np.abs(x - np.median(x))))


def _robust_affine(x: np.ndarray, y: np.ndarray, iters: int = 10, k: float = 1.345) -> tuple[float, float]:
    """``y ≈ a·x + b`` by iteratively reweighted least squares with Huber weights (threshold ``k`` robust SDs)."""
    w = np.ones_like(x)
    a, b = 1.0, 0.0
    for _ in range(iters):
        sw = w.sum()
        mx, my = (w * x).sum() / sw, (w * y).sum() / sw
        vx = (w * (x - mx) ** 2).sum()
        if vx <= 0:
            break
        a = float((w * (x - mx) * (y - my)).sum() / vx)
        b = float(my - a * mx)
        r = y - (a * x + b)
        c = k * max(_robust_sd(r), 1e-6)
        w = np.minimum(1.0, c / np.maximum(np.abs(r), 1e-12))
    return a, b


def scanner_blur(a: np.ndarray, spacing, scanner: str | Scanner = "clinical-mdct") -> np.ndarray:
    """``a`` (z, y, x; ``spacing`` mm) filtered by ``scanner``'s modelled transfer function
    (:func:`trabecula.scanner.fast.transfer_filter`), with edge padding of four in-plane and four axial
    resolution lengths so the blur does not wrap."""
    s = load_scanner(scanner)
    sp = np.asarray(spacing, float)
    reach = (4 * max(s.geometry.pixel_v_iso_mm, s.reconstruction.slice_thickness_mm),
             4 * s.geometry.pixel_u_iso_mm, 4 * s.geometry.pixel_u_iso_mm)
    pad = [min(int(np.ceil(r / d)), n) for r, d, n in zip(reach, sp, a.shape, strict=True)]
    out = transfer_filter(np.pad(a.astype(np.float32), [(p, p) for p in pad], mode="edge"), sp, s)
    return out[pad[0]:pad[0] + a.shape[0], pad[1]:pad[1] + a.shape[1], pad[2]:pad[2] + a.shape[2]]


def consistency_check(output: Volume, input_volume: Volume, scanner: str | Scanner = "clinical-mdct", smooth_vox: float = 1.0,
                      z_threshold: float = 4.0, flag_fraction: float = 0.01, min_cluster_mm3: float = 1.0,
                      min_score: float = 0.5, match_hu: bool = False) -> ConsistencyResult:
    """Data-consistency of an enhanced ``output`` with the clinical ``input_volume`` (see the module docstring).

    ``scanner`` is the input's scanner (a preset name or :class:`~trabecula.scanner.config.Scanner`); its
    modelled transfer function (:func:`scanner_blur`) is applied to ``output`` before sampling onto the
    input's grid (the input's own spacing and origin are used, so any enhanced grid works).

    ``match_hu``: CT numbers depend on the beam energy, so a micro-CT-like output (80 kVp: bone far above
    its 120 kVp HU) is mapped to the input's HU scale by a robust (Huber, iteratively reweighted) affine fit
    ``a·D(output) + b`` before the residual (exact for a two-material object, bone and marrow; robust, so
    sparse invented structure does not bend it, though structure invented over a large fraction of the
    volume does, so it is off by default; the fit is in ``details``).
    Outputs on the input's own scale give ``a ≈ 1, b ≈ 0``.
    """
    if output.units != "HU" or input_volume.units != "HU":
        raise ParameterError("units", "both volumes must be in HU")
    scanner_name = scanner if isinstance(scanner, str) else scanner.name
    blurred = scanner_blur(output.numpy(), output.spacing, scanner)
    # sample onto the input's voxel centres: area-average (anti-alias) then linear interpolation
    factor = np.asarray(input_volume.spacing) / np.asarray(output.spacing)
    if np.any(factor > 1):
        blurred = ndimage.gaussian_filter(blurred, np.maximum(0.0, (factor - 1) / 2), mode="nearest")
    idx = [(np.asarray(input_volume.origin[a]) + np.arange(input_volume.shape[a]) * input_volume.spacing[a]
            - output.origin[a]) / output.spacing[a] for a in range(3)]
    if any(i.min() < -0.5 - 1e-6 or i.max() > output.shape[a] - 0.5 + 1e-6 for a, i in enumerate(idx)):
        raise ParameterError("output", "the enhanced volume does not cover the input's field of view")
    grid = np.meshgrid(*idx, indexing="ij")
    pred = ndimage.map_coordinates(blurred, grid, order=1, mode="nearest")
    inp = input_volume.numpy().astype(np.float32)
    a_fit, b_fit = 1.0, 0.0
    if match_hu and float(np.var(pred)) > 0:
        a_fit, b_fit = _robust_affine(pred.ravel().astype(np.float64), inp.ravel().astype(np.float64))
        pred = a_fit * pred + b_fit
    r = inp - pred
    sd = _robust_sd(r)
    rs = ndimage.gaussian_filter(r, smooth_vox, mode="nearest")
    sd_s = max(_robust_sd(rs), 1e-6)
    z = rs / sd_s
    bad = np.abs(z) > z_threshold
    unsupported = float(np.mean(bad))
    lab, n = ndimage.label(bad)
    largest = float(np.bincount(lab.ravel())[1:].max()) * float(np.prod(input_volume.spacing)) if n else 0.0
    var_in = float(np.var(inp))
    score = 1.0 - float(np.var(r)) / var_in if var_in > 0 else float("nan")
    # at a limit is not within it: a region of exactly min_cluster_mm3 is flagged
    flagged = unsupported >= flag_fraction or largest >= min_cluster_mm3 or not score > min_score
    zmap = Volume(z.astype(np.float32), input_volume.spacing, input_volume.origin, "grey",
                  input_volume.provenance.with_step(f"consistency z-map[{scanner_name}, smooth {smooth_vox:g} vox]"))
    resid = Volume(r.astype(np.float32), input_volume.spacing, input_volume.origin, "HU",
                   input_volume.provenance.with_step("consistency residual (input − re-degraded output)"))
    return ConsistencyResult(score, bool(flagged), unsupported, sd, float(np.sqrt(np.mean(r * r))), zmap, resid,
                             {"largest_unsupported_mm3": largest, "z_threshold": z_threshold,
                              "flag_fraction": flag_fraction, "min_cluster_mm3": min_cluster_mm3, "min_score": min_score,
                              "scanner_model": scanner_name, "smoothed_residual_sd_hu": sd_s,
                              "hu_scale_fit": [a_fit, b_fit]})


def check_enhanced(result_vol: Volume, input_vol: Volume, loaded_model, resample: bool) -> ConsistencyResult:
    """The hallucination check of ``trabecula enhance --check``: :func:`consistency_check` of an enhanced
    ``result_vol`` against the ``input_vol`` it was made from by ``loaded_model``
    (a :class:`~trabecula.enhance.infer.LoadedModel`).

    With ``resample`` the input is first put on the model's training grid, as the enhancement did
    (:func:`~trabecula.enhance.infer.check_spacing`). A micro-CT-like model (scale ≠ 1) trained on twin
    pairs outputs the twin micro-CT's (80 kVp) HU scale, so its output is mapped to the input's scale
    (``match_hu``); every other output is compared as is.
    """
    from trabecula.enhance.infer import check_spacing

    base = check_spacing(input_vol, loaded_model, resample=True) if resample else input_vol
    match = loaded_model.model.scale != 1 and loaded_model.manifest.get("data", {}).get("backend") == "twin"
    return consistency_check(result_vol, base, match_hu=match)
