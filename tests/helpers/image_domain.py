"""A test helper: the image-domain scanner model that made the pairs of the first shipped weights.

It is not a scanner model of the project (the scanner twin, :mod:`trabecula.scanner`, is the one): the
shipped weights trained before randomised twin protocols (``dlr``, ``srdlr``, ``pix2pixhd``, ``pix2pix``,
``crn`` and their ``-2d`` variants) learned its images, and ``tests/enhance/test_shipped.py`` holds them to
their numbers in that domain until they are retrained on twin pairs.

Model: bone tissue / marrow HU assigned to a binary structure on its fine grid; a separable Gaussian PSF;
area-averaging resampling to the output grid; additive Gaussian noise correlated by a Gaussian kernel and
scaled as 1/√mAs. ``clinical-mdct``: 0.6 mm slices every 0.1 mm, 0.2 mm pixels, in-plane FWHM 0.5 mm;
``micro-ct``: 52 µm micro-CT resampled to the 0.1 mm target grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from trabecula.errors import ParameterError
from trabecula.phantom.standin import MARROW_HU, TISSUE_HU
from trabecula.volume import Volume

__all__ = ["FWHM_TO_SIGMA", "IMAGE_DOMAIN_PRESETS", "ImagePreset", "MARROW_HU", "TISSUE_HU", "blur_and_sample",
           "correlated_noise", "image_scan", "structure_to_hu"]

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


#: image-domain approximations of the TOML presets of the same names (see the module docstring)
IMAGE_DOMAIN_PRESETS: dict[str, ImagePreset] = {
    "clinical-mdct": ImagePreset("clinical-mdct", (0.6, 0.5, 0.5), (0.1, 0.2, 0.2), 35.0, 250.0, (2.0, 0.7, 0.7)),
    "micro-ct": ImagePreset("micro-ct", (0.06, 0.06, 0.06), (0.1, 0.1, 0.1), 15.0, 500.0, (0.5, 0.5, 0.5)),
}


def image_preset(name: str) -> ImagePreset:
    """The image-domain preset ``name``; :class:`ParameterError` naming the choices when there is none."""
    if name not in IMAGE_DOMAIN_PRESETS:
        raise ParameterError("scanner", f"unknown image-domain preset {name!r}; choose {', '.join(IMAGE_DOMAIN_PRESETS)}")
    return IMAGE_DOMAIN_PRESETS[name]


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
    p = IMAGE_DOMAIN_PRESETS[preset] if isinstance(preset, str) else preset
    if hu.units != "HU":
        raise ParameterError("volume", f"expected HU, got {hu.units}")
    sigma_vox = np.asarray(p.psf_fwhm_mm) * FWHM_TO_SIGMA / np.asarray(hu.spacing)
    arr = ndimage.gaussian_filter(hu.numpy().astype(np.float32), sigma_vox, mode="nearest")
    out = hu.with_data(arr, step=f"psf[{p.name}: FWHM {','.join(f'{f:g}' for f in p.psf_fwhm_mm)} mm]")
    if not np.allclose(out.spacing, p.spacing_mm, rtol=1e-6):
        out = out.resample(p.spacing_mm)
    return out


def correlated_noise(shape: tuple[int, ...], sd: float, corr_vox, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise of standard deviation ``sd`` correlated by a Gaussian kernel of σ ``corr_vox`` voxels
    (periodic boundaries), rescaled to unit SD before scaling by ``sd``; float32."""
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
    p = image_preset(preset)
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
