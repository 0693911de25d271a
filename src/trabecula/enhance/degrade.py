"""Image-domain scanner models ("stand-in twin") and stand-in trabecular specimens for paired data.

The scanner digital twin (:mod:`trabecula.scanner`) simulates projections and reconstruction. When it
is not available, or for speed, trabecula's pairs use this image-domain model of the same scanners —
and the hallucination check always uses it (it needs the *calibrated blur and sampling* of the input
scanner, applied to an enhanced volume):

1. bone tissue / marrow HU assigned to a binary structure on its fine grid (``tissue_hu``, ``marrow_hu``);
2. a separable Gaussian point-spread function (σ in mm per axis, from the preset's FWHM);
3. area-averaging resampling to the scanner's voxel grid (:meth:`trabecula.Volume.resample`, Gaussian
   anti-aliasing of σ = (factor − 1)/2 voxels then linear interpolation);
4. additive Gaussian noise, correlated by a Gaussian kernel (σ in voxels, per axis) and scaled to the
   preset's SD at its reference tube current–time product, ``SD ∝ 1/√mAs`` (quantum-limited).

The presets (:data:`PRESETS`) are stated numbers, not measurements of a real scanner: ``clinical-mdct``
follows the vertebra study's protocol (0.6 mm slice thickness sampled every 0.1 mm, ~0.2 mm pixels,
in-plane FWHM 0.5 mm) and ``micro-ct`` its 52 µm micro-CT (resampled to the 0.1 mm target grid).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from trabecula.errors import ParameterError
from trabecula.volume import Provenance, Volume

FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


@dataclass(frozen=True)
class ImagePreset:
    """An image-domain scanner model: PSF FWHM (mm, z/y/x), output spacing (mm), noise SD (HU) at ``ref_mas``
    and the noise correlation (σ in output voxels, z/y/x)."""

    name: str
    psf_fwhm_mm: tuple[float, float, float]
    spacing_mm: tuple[float, float, float]
    noise_sd_hu: float
    ref_mas: float
    noise_corr_vox: tuple[float, float, float]


PRESETS: dict[str, ImagePreset] = {
    "clinical-mdct": ImagePreset("clinical-mdct", (0.6, 0.5, 0.5), (0.1, 0.2, 0.2), 35.0, 250.0, (2.0, 0.7, 0.7)),
    "micro-ct": ImagePreset("micro-ct", (0.06, 0.06, 0.06), (0.1, 0.1, 0.1), 15.0, 500.0, (0.5, 0.5, 0.5)),
}

#: HU assigned to bone tissue and to marrow when a binary structure is "scanned"
TISSUE_HU = 1400.0
MARROW_HU = 20.0


def structure_to_hu(binary: Volume, tissue_hu: float = TISSUE_HU, marrow_hu: float = MARROW_HU) -> Volume:
    """A binary bone structure as an HU map (float32): bone tissue ``tissue_hu``, elsewhere ``marrow_hu``."""
    if binary.units not in ("binary", "label"):
        raise ParameterError("structure", f"expected a binary or label volume, got units {binary.units}")
    arr = np.where(binary.numpy() > 0, np.float32(tissue_hu), np.float32(marrow_hu)).astype(np.float32)
    return Volume(arr, binary.spacing, binary.origin, "HU", binary.provenance.with_step(
        f"structure_to_hu[tissue {tissue_hu:g}, marrow {marrow_hu:g} HU]"))


def blur_and_sample(hu: Volume, preset: str | ImagePreset) -> Volume:
    """Steps 2–3 of the model (PSF then resampling to the preset's grid), noise-free; HU float32.

    Also the forward model of the hallucination check: applied to an enhanced volume it predicts what the
    input scanner would have seen.
    """
    p = PRESETS[preset] if isinstance(preset, str) else preset
    if hu.units != "HU":
        raise ParameterError("volume", f"expected HU, got {hu.units}")
    sigma_vox = np.asarray(p.psf_fwhm_mm) * FWHM_TO_SIGMA / np.asarray(hu.spacing)
    arr = ndimage.gaussian_filter(hu.numpy().astype(np.float32), sigma_vox, mode="nearest")
    out = hu.with_data(arr, step=f"psf[{p.name}: FWHM {','.join(f'{f:g}' for f in p.psf_fwhm_mm)} mm]")
    if not np.allclose(out.spacing, p.spacing_mm, rtol=1e-6):
        out = out.resample(p.spacing_mm)
    return out


def correlated_noise(shape: tuple[int, ...], sd: float, corr_vox, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise of standard deviation ``sd`` correlated by a Gaussian kernel of σ ``corr_vox`` voxels."""
    n = rng.standard_normal(shape).astype(np.float32)
    if np.any(np.asarray(corr_vox) > 0):
        n = ndimage.gaussian_filter(n, corr_vox, mode="wrap")
        n /= max(float(n.std()), 1e-12)
    return n * np.float32(sd)


def image_scan(structure: Volume, preset: str, mas: float | None = None, seed: int = 0,
               tissue_hu: float = TISSUE_HU, marrow_hu: float = MARROW_HU) -> Volume:
    """"Scan" a binary structure (or an HU map) with the image-domain model of ``preset``; HU float32.

    ``mas`` scales the noise as ``SD = noise_sd_hu · √(ref_mas / mas)``; ``mas=None`` uses ``ref_mas``.
    """
    if preset not in PRESETS:
        raise ParameterError("scanner", f"unknown image-domain preset {preset!r}; choose {', '.join(PRESETS)}")
    p = PRESETS[preset]
    mas = p.ref_mas if mas is None else float(mas)
    if not mas > 0:
        raise ParameterError("mas", f"must be positive, got {mas}")
    hu = structure if structure.units == "HU" else structure_to_hu(structure, tissue_hu, marrow_hu)
    clean = blur_and_sample(hu, p)
    sd = p.noise_sd_hu * np.sqrt(p.ref_mas / mas)
    rng = np.random.default_rng(seed)
    arr = clean.numpy() + correlated_noise(clean.shape, sd, p.noise_corr_vox, rng)
    prov = clean.provenance.with_step(f"noise[{sd:.1f} HU at {mas:g} mAs, seed {seed}]")
    prov.scanner = f"{preset} (image-domain model)"
    return Volume(arr.astype(np.float32), clean.spacing, clean.origin, "HU", prov)


# ------------------------------------------------------------------------------------ stand-in specimens


def synthetic_structure(shape: tuple[int, int, int] = (240, 240, 240), spacing: float = 0.05, bv_tv: float = 0.2,
                        scale_mm: float = 0.6, kind: str = "mixed", anisotropy: float = 1.0, seed: int = 0) -> Volume:
    """A binary trabecular-like structure with controllable BV/TV, scale, plate/rod character and anisotropy.

    Method (a level-set construction): two independent Gaussian random fields ``f1, f2`` (white noise
    smoothed with σ = ``scale_mm`` / 4, stretched by ``anisotropy`` along z). Plates are the band
    ``|f1| < t`` around a zero level set (sheets); rods the intersection ``|f1| < t ∧ |f2| < t`` of two
    bands (curves), dilated; ``mixed`` is their union. The band half-width ``t`` is chosen by bisection so
    the bone fraction equals ``bv_tv``; ``scale_mm`` sets the spacing of the sheets (≈ Tb.Sp + Tb.Th).
    """
    if kind not in ("plate", "rod", "mixed"):
        raise ParameterError("kind", f"use plate, rod or mixed, got {kind!r}")
    if not 0.01 < bv_tv < 0.6:
        raise ParameterError("bv_tv", f"must be within (0.01, 0.6), got {bv_tv}")
    rng = np.random.default_rng(seed)
    sig = np.array([anisotropy, 1.0, 1.0]) * (scale_mm / 4.0) / spacing

    def field() -> np.ndarray:
        f = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sig, mode="wrap")
        return f / f.std()

    f1 = np.abs(field())
    f2 = np.abs(field()) if kind in ("rod", "mixed") else None

    def make(t: float) -> np.ndarray:
        if kind == "plate":
            return f1 < t
        rods = (f1 < 2.2 * t) & (f2 < 2.2 * t)
        if kind == "rod":
            return rods
        return (f1 < t) | rods

    lo, hi = 0.0, 3.0
    for _ in range(18):
        t = (lo + hi) / 2
        if make(t).mean() < bv_tv:
            lo = t
        else:
            hi = t
    b = make((lo + hi) / 2)
    # keep the largest connected piece of bone only if it holds most of it (removes floating specks)
    lab, n = ndimage.label(b)
    if n > 1:
        sizes = np.bincount(lab.ravel())
        sizes[0] = 0
        keep = sizes >= 0.001 * b.sum()
        b = keep[lab]
    prov = Provenance(source="synthetic_structure", steps=[
        f"synthetic_structure[{kind}, bv_tv {bv_tv:.3f}, scale {scale_mm:g} mm, anisotropy {anisotropy:g}, seed {seed}]"])
    return Volume(b.astype(np.uint8), spacing, (0.0, 0.0, 0.0), "binary", prov)


def edge_phantom(shape: tuple[int, int, int] = (40, 240, 240), spacing: float = 0.05, radius_mm: float = 3.0,
                 tissue_hu: float = TISSUE_HU, background_hu: float = 0.0) -> Volume:
    """A bone-equivalent cylinder (axis z) in water, as HU on a fine grid, for MTF (circular edge) and noise."""
    z, y, x = shape
    yy, xx = np.mgrid[:y, :x].astype(np.float32)
    cy, cx = (y - 1) / 2 + 0.31, (x - 1) / 2 - 0.27  # off-centre by a fraction of a voxel: oversampled edge
    r = np.hypot((yy - cy) * spacing, (xx - cx) * spacing)
    # partial-volume disc by 4×4 supersampling of the edge
    sub = np.zeros((y, x), np.float32)
    for dy in (-0.375, -0.125, 0.125, 0.375):
        for dx in (-0.375, -0.125, 0.125, 0.375):
            sub += np.hypot((yy + dy - cy) * spacing, (xx + dx - cx) * spacing) <= radius_mm
    frac = sub / 16.0
    del r
    sl = background_hu + (tissue_hu - background_hu) * frac
    arr = np.broadcast_to(sl, shape).astype(np.float32).copy()
    prov = Provenance(source="edge_phantom", steps=[f"edge_phantom[r {radius_mm:g} mm, {tissue_hu:g} HU in {background_hu:g} HU]"])
    prov.extra["center_yx_vox"] = [cy, cx]
    prov.extra["radius_mm"] = radius_mm
    return Volume(arr, spacing, (0.0, 0.0, 0.0), "HU", prov)
