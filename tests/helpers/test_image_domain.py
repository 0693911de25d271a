"""The image-domain scanner model: its presets stand for the TOML presets of the same names, its noise follows
the dose, its blur and sampling are the preset's."""

from dataclasses import replace

import numpy as np
import pytest

from tests.helpers.image_domain import (
    FWHM_TO_SIGMA,
    IMAGE_DOMAIN_PRESETS,
    blur_and_sample,
    image_scan,
    structure_to_hu,
)
from trabecula.errors import ParameterError
from trabecula.phantom.standin import MARROW_HU, TISSUE_HU, synthetic_structure
from trabecula.scanner.config import PRESETS
from trabecula.volume import Volume


def test_every_image_domain_preset_names_a_toml_preset():
    assert set(IMAGE_DOMAIN_PRESETS) <= set(PRESETS)
    assert all(p.name == k for k, p in IMAGE_DOMAIN_PRESETS.items())


def test_image_scanner_noise_scales_with_dose():
    s = synthetic_structure((48, 48, 48), 0.05, 0.2, 0.6, "plate", seed=2)
    a = image_scan(s, "clinical-mdct", mas=250, seed=1).numpy()
    b = image_scan(s, "clinical-mdct", mas=62.5, seed=2).numpy()
    c = image_scan(s, "clinical-mdct", mas=250, seed=3).numpy()
    sd_full = np.std(a - c) / np.sqrt(2)
    sd_low = np.sqrt(np.var(b - c) - sd_full**2)
    assert sd_full == pytest.approx(IMAGE_DOMAIN_PRESETS["clinical-mdct"].noise_sd_hu, rel=0.15)
    assert sd_low / sd_full == pytest.approx(2.0, rel=0.2)


def test_binary_structure_gets_tissue_and_marrow_hu_and_the_preset_grid():
    s = synthetic_structure((40, 40, 40), 0.05, 0.2, 0.6, "rod", seed=1)
    hu = structure_to_hu(s)
    assert set(np.unique(hu.numpy())) == {np.float32(TISSUE_HU), np.float32(MARROW_HU)}
    out = image_scan(s, "clinical-mdct", seed=0)
    assert out.spacing == pytest.approx(IMAGE_DOMAIN_PRESETS["clinical-mdct"].spacing_mm) and out.units == "HU"
    assert out.shape == (20, 10, 10)
    assert "image-domain model" in out.provenance.scanner


def test_blur_is_a_gaussian_of_the_preset_fwhm():
    """A bone point blurred by the clinical PSF on its own fine grid: the profile's σ is FWHM / 2.3548."""
    p = replace(IMAGE_DOMAIN_PRESETS["clinical-mdct"], spacing_mm=(0.05, 0.05, 0.05))  # no resampling
    arr = np.zeros((61, 61, 61), np.float32)
    arr[30, 30, 30] = 1.0
    out = blur_and_sample(Volume(arr, 0.05, units="HU"), p).numpy()
    x = (np.arange(61) - 30) * 0.05
    for axis, fwhm in zip((0, 2), (0.6, 0.5), strict=True):
        prof = out[30, 30] if axis == 2 else out[:, 30, 30]
        prof = prof / prof.sum()
        assert np.sqrt(np.sum(prof * x**2)) == pytest.approx(fwhm * FWHM_TO_SIGMA, rel=0.01)


def test_unknown_preset_and_dose_are_refused():
    s = synthetic_structure((32, 32, 32), 0.05, 0.2, 0.6, "plate", seed=0)
    with pytest.raises(ParameterError, match="image-domain preset"):
        image_scan(s, "uhr-extremity")
    with pytest.raises(ParameterError, match="positive"):
        image_scan(s, "micro-ct", mas=0)
