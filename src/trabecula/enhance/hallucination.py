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
3. The residual is averaged locally (a Gaussian of σ = ``smooth_vox`` input voxels, minus one of
   :data:`DRIFT_VOX` times that: slow HU drifts are not structure), which keeps coherent structure and
   suppresses noise; its noise-only SD is estimated the same robust way, giving
   the **consistency map** ``z = smoothed r / robust SD`` (dimensionless).
4. Voxels with ``|z| > z_threshold`` (default 4) are *unsupported*. The volume is **flagged** when at least
   ``flag_fraction`` (default 2 %) of its voxels are, when one connected unsupported region reaches
   ``min_cluster_mm3`` (default 8 mm³, a 2 mm cube: tens of resolution elements of clinical CT, as the
   transfer model's own mismatch at bone edges leaves clusters of a few mm³ even for the true object), or when the score
   below is not above ``min_score`` (default 0: the output explains none of the input; a globally wrong
   output inflates the robust SD of step 3, so steps 3–4 alone would miss it; noise alone lowers the score,
   so a stricter default would flag a good output of a noisy input — the band test below catches partial
   disagreement). A value at a limit is flagged: the limits are what is not allowed.

The **score** is the fraction of the input's variance explained by the re-degraded output,
``1 − Var(r) / Var(input)`` (1 = fully consistent; noise keeps it below 1; an output unrelated to the
input goes to ≤ 0). Structure *below* the input's resolution is invisible to this test by construction:
it shows what the input contradicts, not that fine detail is right.

The voxel test above is blind to structure deleted evenly (a smoothed-away texture leaves a residual
that looks like more noise, and the robust SD grows with it), so three whole-volume tests join it:

5. **Band by band** (:func:`band_gains`): the input and the re-degraded output are split into in-plane
   octave bands (FFT ring masks, 0.0625–0.125 … lp/mm up to the input's Nyquist); in each band the gain
   ``g = Cov(input, D(output)) / Var(D(output))`` is the input's amplitude per unit of the output's
   (noise, independent of the output, averages out of the covariance). ``g ≈ 1`` is consistent;
   ``g > 1/band_tolerance`` means the output lacks structure the input holds (deleted); ``g < band_tolerance``
   structure the input does not hold (invented). Only bands below the input's modelled MTF50, where the
   anatomy's power dominates the noise's, are judged (above it a partial denoiser's output follows the
   noise and biases ``g``); bands where the output holds almost nothing (power below 1 % of the input's)
   are judged deleted outright; a judged band whose squared coherence with the input is below
   :data:`MIN_BAND_COHERENCE` holds an output unrelated to the input. A field too small to hold a band below
   the MTF50 has its coarsest band judged.
6. **Bone fraction** (:func:`bone_fraction`): the fraction of voxels above 200 HU in the input and in the
   re-degraded output, both smoothed by a one-voxel Gaussian in-plane (so that noise does not cross the
   threshold); a relative change beyond ``bone_tolerance`` (default ±20 %) is flagged (deleted or invented
   bone). Skipped when the input holds under 0.5 % of such voxels.
7. **Periodic texture** (:func:`periodic_peak`): the largest ratio of the output's in-plane power spectrum
   (of its high-pass, Hann-windowed, averaged over central slices) to the median power of the 7 × 7
   frequency bins around it, among bins carrying at least 2 % of the high-pass power (an isolated peak stands
   out; a smooth or line-like spectrum does not); the output is
   flagged when it exceeds 8 and three times the input's own (on the input's grid), i.e. a checkerboard
   or grid the input lacks.

The re-degradation uses the input's own protocol (:func:`input_scanner`: a twin preset named in the
provenance, else the protocol :func:`trabecula.enhance.protocol.describe_input` reads, on the
conventional ``clinical-mdct`` detector when the detector is unknown).
"""

from __future__ import annotations

import warnings
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


def input_scanner(volume: Volume) -> Scanner:
    """The scanner (and protocol) that made ``volume``, for its re-degradation: a twin preset named in the
    provenance as it is; else the protocol :func:`~trabecula.enhance.protocol.describe_input` reads (pixel,
    slice thickness or spacing, kernel class, ``standard`` when unknown) on its detector."""
    from trabecula.enhance.protocol import describe_input
    from trabecula.scanner.config import PRESETS
    from trabecula.scanner.protocols import Protocol

    name = volume.provenance.scanner or ""
    if name in PRESETS and name != "micro-ct":
        return load_scanner(name)
    p = describe_input(volume, volume.numpy()[:1])
    return Protocol(p.detector, p.pixel_mm, p.slice_thickness_mm or p.slice_spacing_mm, p.kernel_class or "standard",
                    100.0, 120.0).scanner()


#: the least share of the high-pass power a spectral peak must carry (a smooth image's spectrum has tiny, spiky bins)
PEAK_MIN_SHARE = 0.02
#: the neighbourhood (frequency bins) a spectral peak is compared with
PEAK_NEIGHBOURHOOD = 7
#: the residual's drift scale (in multiples of ``smooth_vox``) removed before the voxel test
DRIFT_VOX = 6.0
#: in-plane octave bands (lp/mm) of the band test: lower edges, each band one octave
BAND_EDGES_LP_MM = (0.0625, 0.125, 0.25, 0.5, 1.0, 2.0, 4.0)


def _ring_power(a: np.ndarray, spacing_yx) -> tuple[np.ndarray, np.ndarray]:
    """In-plane 2-D FFT of each slice of ``a`` and the radial frequency (lp/mm) of each bin."""
    fy = np.fft.fftfreq(a.shape[1], spacing_yx[0])
    fx = np.fft.rfftfreq(a.shape[2], spacing_yx[1])
    return np.fft.rfft2(a - a.mean(), axes=(1, 2)), np.hypot(fy[:, None], fx[None, :])


#: the least squared coherence between the input and the re-degraded output in a judged band: below the
#: input's MTF50 the anatomy's power dominates the noise's, so an output made from the input correlates with it
#: there (every model evaluated on the held-out twin scans: 0.56–1.00); an unrelated one (a flipped volume: 0.15)
#: does not
MIN_BAND_COHERENCE = 0.25


def band_gains(inp: np.ndarray, pred: np.ndarray, spacing_yx, up_to_lp_mm: float) -> list[dict]:
    """Per in-plane octave band (:data:`BAND_EDGES_LP_MM`) below the Nyquist: the input's and the prediction's
    power, their gain ``Cov/Var(pred)`` and coherence, and whether the band is judged (lower edge below
    ``up_to_lp_mm``). Arrays (z, y, x) on the same grid."""
    fi, fr = _ring_power(inp.astype(np.float64), spacing_yx)
    fp, _ = _ring_power(pred.astype(np.float64), spacing_yx)
    nyq = 0.5 / max(spacing_yx)
    rows = []
    for lo in BAND_EDGES_LP_MM:
        hi = 2 * lo
        if lo >= nyq:
            break
        m = (fr >= lo) & (fr < min(hi, nyq))
        if not m.any():
            continue
        a, b = fi[:, m], fp[:, m]
        p_in, p_pred = float(np.sum(np.abs(a) ** 2)), float(np.sum(np.abs(b) ** 2))
        cov = float(np.sum((a * np.conj(b)).real))
        gain = cov / p_pred if p_pred > 0 else float("inf")
        coh = cov * cov / (p_in * p_pred) if p_in > 0 and p_pred > 0 else 0.0
        rows.append({"band_lp_mm": [lo, min(hi, nyq)], "power_ratio": p_pred / p_in if p_in > 0 else float("nan"),
                     "gain": gain, "coherence": coh, "judged": bool(min(hi, nyq) <= up_to_lp_mm)})
    return rows


def bone_fraction(a: np.ndarray, threshold_hu: float = 200.0, smooth_vox: float = 1.0) -> float:
    """Fraction of voxels above ``threshold_hu`` after a ``smooth_vox`` Gaussian in-plane (noise kept off the
    threshold)."""
    return float(np.mean(ndimage.gaussian_filter(a.astype(np.float32), (0, smooth_vox, smooth_vox)) > threshold_hu))


def periodic_peak(a: np.ndarray, max_slices: int = 8) -> float:
    """The largest ratio of the in-plane power spectrum of ``a``'s high-pass (minus a 2-pixel Gaussian),
    averaged over up to ``max_slices`` central slices, to the median power of its radius (rings of one
    frequency bin; the lowest 3 rings left out)."""
    z0 = max(0, a.shape[0] // 2 - max_slices // 2)
    sl = a[z0:z0 + max_slices].astype(np.float64)
    hp = sl - ndimage.gaussian_filter(sl, (0, 2, 2))
    if min(hp.shape[1:]) < 16:
        return 1.0
    win = np.outer(np.hanning(hp.shape[1]), np.hanning(hp.shape[2]))
    p = np.fft.fftshift(np.mean(np.abs(np.fft.fft2(hp * win, axes=(1, 2))) ** 2, axis=0))
    local = ndimage.median_filter(p, size=PEAK_NEIGHBOURHOOD, mode="wrap")
    ratio = p / np.maximum(local, 1e-30 * max(float(p.max()), 1e-30))
    cy, cx = p.shape[0] // 2, p.shape[1] // 2
    ratio[cy - 2:cy + 3, cx - 2:cx + 3] = 0.0
    ratio[p < PEAK_MIN_SHARE * p.sum()] = 0.0  # a peak is a periodic pattern only if it carries real power
    return float(ratio.max())


def consistency_check(output: Volume, input_volume: Volume, scanner: str | Scanner | None = None, smooth_vox: float = 1.0,
                      z_threshold: float = 4.0, flag_fraction: float = 0.02, min_cluster_mm3: float = 8.0,
                      min_score: float = 0.0, match_hu: bool = False, band_tolerance: float = 0.5,
                      bone_tolerance: float = 0.2, redegrade: bool = True) -> ConsistencyResult:
    """Data-consistency of an enhanced ``output`` with the clinical ``input_volume`` (see the module docstring).

    ``scanner`` is the input's scanner (a preset name or :class:`~trabecula.scanner.config.Scanner`; None:
    :func:`input_scanner`); its modelled transfer function (:func:`scanner_blur`) is applied to ``output``
    before sampling onto the input's grid (the input's own spacing and origin are used, so any enhanced grid
    works). ``redegrade=False`` compares the output as it is: a denoiser's output estimates the input's
    image, already at the scanner's resolution, not the object. ``details["reasons"]`` names each test
    that flagged.

    ``match_hu``: CT numbers depend on the beam energy, so a micro-CT-like output (80 kVp: bone far above
    its 120 kVp HU) is mapped to the input's HU scale by a robust (Huber, iteratively reweighted) affine fit
    ``a·D(output) + b`` before the residual (exact for a two-material object, bone and marrow; robust, so
    sparse invented structure does not bend it, though structure invented over a large fraction of the
    volume does, so it is off by default; the fit is in ``details``).
    Outputs on the input's own scale give ``a ≈ 1, b ≈ 0``.
    """
    if output.units != "HU" or input_volume.units != "HU":
        raise ParameterError("units", "both volumes must be in HU")
    scanner = input_scanner(input_volume) if scanner is None else load_scanner(scanner)
    scanner_name = scanner.name
    blurred = scanner_blur(output.numpy(), output.spacing, scanner) if redegrade else output.numpy().astype(np.float32)
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
    # local structure only: a slow HU drift (beam hardening, a scale mismatch) is not invented structure
    rs = ndimage.gaussian_filter(r, smooth_vox, mode="nearest") - ndimage.gaussian_filter(r, DRIFT_VOX * smooth_vox, mode="nearest")
    sd_s = max(_robust_sd(rs), 1e-6)
    z = rs / sd_s
    bad = np.abs(z) > z_threshold
    unsupported = float(np.mean(bad))
    lab, n = ndimage.label(bad)
    largest = float(np.bincount(lab.ravel())[1:].max()) * float(np.prod(input_volume.spacing)) if n else 0.0
    var_in = float(np.var(inp))
    score = 1.0 - float(np.var(r)) / var_in if var_in > 0 else float("nan")
    # at a limit is not within it: a region of exactly min_cluster_mm3 is flagged
    reasons = []
    if unsupported >= flag_fraction:
        reasons.append(f"{100 * unsupported:.2f} % voxels unsupported")
    if largest >= min_cluster_mm3:
        reasons.append(f"unsupported region of {largest:.2f} mm³")
    if not score > min_score:
        reasons.append(f"score {score:.3f}")
    from trabecula.scanner.fast import mtf_model

    f = np.linspace(0, 10, 2001)
    mtf = mtf_model(scanner, f, "xy")
    mtf50 = float(f[np.argmax(mtf < 0.5)]) if np.any(mtf < 0.5) else float(f[-1])
    bands = band_gains(inp, pred, input_volume.spacing[1:], mtf50)
    if bands and not any(b["judged"] for b in bands):
        bands[0]["judged"] = True  # a field too small for a band below MTF50: its coarsest band is judged
    for b in bands:
        if not b["judged"]:
            continue
        lo, hi = b["band_lp_mm"]
        if b["power_ratio"] < 0.01:
            reasons.append(f"structure deleted in {lo:g}–{hi:g} lp/mm (output power {100 * b['power_ratio']:.2f} % of the input's)")
        elif b["coherence"] < MIN_BAND_COHERENCE:
            reasons.append(f"output unrelated to the input in {lo:g}–{hi:g} lp/mm (coherence {b['coherence']:.2f})")
        elif b["gain"] >= 1.0 / band_tolerance:
            reasons.append(f"structure deleted in {lo:g}–{hi:g} lp/mm (gain {b['gain']:.2f})")
        elif b["gain"] <= band_tolerance:
            reasons.append(f"structure invented in {lo:g}–{hi:g} lp/mm (gain {b['gain']:.2f})")
    bf_in, bf_out = bone_fraction(inp), bone_fraction(pred)
    if bf_in >= 0.005 and abs(bf_out / bf_in - 1) >= bone_tolerance:
        reasons.append(f"bone fraction >200 HU {100 * bf_in:.1f} % → {100 * bf_out:.1f} % after re-degradation")
    peak_out = periodic_peak(output.numpy())
    peak_in = periodic_peak(inp)
    if peak_out >= 8.0 and peak_out >= 3.0 * peak_in:
        reasons.append(f"periodic texture (spectral peak {peak_out:.0f}× its ring's median; input {peak_in:.0f}×)")
    flagged = bool(reasons)
    zmap = Volume(z.astype(np.float32), input_volume.spacing, input_volume.origin, "grey",
                  input_volume.provenance.with_step(f"consistency z-map[{scanner_name}, smooth {smooth_vox:g} vox]"))
    resid = Volume(r.astype(np.float32), input_volume.spacing, input_volume.origin, "HU",
                   input_volume.provenance.with_step("consistency residual (input − re-degraded output)"))
    return ConsistencyResult(score, bool(flagged), unsupported, sd, float(np.sqrt(np.mean(r * r))), zmap, resid,
                             {"largest_unsupported_mm3": largest, "z_threshold": z_threshold,
                              "flag_fraction": flag_fraction, "min_cluster_mm3": min_cluster_mm3, "min_score": min_score,
                              "scanner_model": scanner_name, "smoothed_residual_sd_hu": sd_s,
                              "hu_scale_fit": [a_fit, b_fit], "reasons": reasons, "bands": bands,
                              "judged_below_lp_mm": mtf50, "bone_fraction_input": bf_in,
                              "bone_fraction_redegraded": bf_out, "periodic_peak_output": peak_out,
                              "periodic_peak_input": peak_in})


def check_enhanced(result_vol: Volume, input_vol: Volume, loaded_model, resample: bool) -> ConsistencyResult:
    """The hallucination check of ``trabecula enhance --check``: :func:`consistency_check` of an enhanced
    ``result_vol`` against the ``input_vol`` it was made from by ``loaded_model``
    (a :class:`~trabecula.enhance.infer.LoadedModel`).

    The input is first put on the grid the model saw, as the enhancement did: the canonical grid of a model
    with training ranges (:func:`~trabecula.enhance.infer.on_model_grid`), else, with ``resample``, its
    training grid (:func:`~trabecula.enhance.infer.check_spacing`). A micro-CT-like model (scale ≠ 1) trained on twin
    pairs outputs the twin micro-CT's (80 kVp) HU scale, so its output is mapped to the input's scale
    (``match_hu``); every other output is compared as is. A denoiser's output (scale 1) is compared without
    re-degradation (it is already at the input's resolution).
    """
    from trabecula.enhance.infer import check_spacing, on_model_grid

    if loaded_model.manifest.get("training_ranges"):  # enhanced on the canonical grid: judged on it
        with warnings.catch_warnings():  # enhance has warned about the ranges already
            warnings.simplefilter("ignore")
            base = on_model_grid(input_vol, loaded_model, allow_out_of_range=True)[0]
    else:
        base = check_spacing(input_vol, loaded_model, resample=True) if resample else input_vol
    match = loaded_model.model.scale != 1 and loaded_model.manifest.get("data", {}).get("backend") == "twin"
    return consistency_check(result_vol, base, match_hu=match, scanner=input_scanner(input_vol),
                             redegrade=loaded_model.model.scale != 1)
