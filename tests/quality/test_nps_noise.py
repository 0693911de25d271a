"""NPS (2-D, radial, peak), noise SD and CNR on noise of known spectrum and level."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trabecula.errors import ParameterError
from trabecula.quality import cnr, detrend, noise_sd, nps_2d, nps_difference
from trabecula.volume import Volume


def test_white_noise_nps_is_flat_at_sigma2_times_pixel_area_and_integrates_to_the_variance():
    rng = np.random.default_rng(0)
    img = rng.normal(0.0, 20.0, (8, 128, 128))
    r = nps_2d(Volume(img, (0.5, 0.1, 0.1), units="HU"), roi_size=64, detrend_mode="mean")
    assert r.units == "HU" and r.n_rois == 8 * 9
    assert r.nps.mean() == pytest.approx(400.0 * 0.01, rel=0.03)          # HU²·mm²
    assert r.variance == pytest.approx(img.var(), rel=0.03)               # ∫NPS = σ²
    assert r.radial[1:].std() / r.radial[1:].mean() < 0.15                # flat


def test_band_pass_noise_peak_frequency_is_found():
    """Noise shaped by |f|·exp(-(f/1.5)²) (a ramp × Gaussian, like a CT kernel) peaks at 1.5/√2 lp/mm."""
    rng = np.random.default_rng(1)
    n, p = 192, 0.1
    f = np.fft.fftfreq(n, p)
    fr = np.hypot(f[:, None], f[None, :])
    H = fr * np.exp(-(fr / 1.5) ** 2)
    imgs = np.real(np.fft.ifft2(np.fft.fft2(rng.normal(0, 1, (4, n, n))) * H))
    r = nps_2d(imgs, (1.0, p, p), roi_size=64)
    assert r.peak_frequency == pytest.approx(1.5 / math.sqrt(2), abs=1.0 / (64 * p))  # within one ring
    assert r.variance == pytest.approx(imgs.var(), rel=0.05)


def test_detrending_removes_cupping_but_not_noise():
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[0:128, 0:128] / 128.0
    cupping = 300.0 * ((xx - 0.5) ** 2 + (yy - 0.5) ** 2)
    img = rng.normal(0, 5.0, (128, 128)) + cupping
    poly = nps_2d(img, 0.2, roi_size=64, detrend_mode="poly2")
    mean = nps_2d(img, 0.2, roi_size=64, detrend_mode="mean")
    assert poly.noise_sd == pytest.approx(5.0, rel=0.1)
    assert mean.noise_sd > 1.2 * poly.noise_sd
    assert detrend(np.ones((4, 4)) * 7.0, "plane") == pytest.approx(np.zeros((4, 4)), abs=1e-9)


def test_nps_difference_cancels_structure_and_mask_limits_rois():
    rng = np.random.default_rng(3)
    structure = np.zeros((2, 96, 96))
    structure[:, 20:70, 30:40] = 500.0
    a = structure + rng.normal(0, 10, structure.shape)
    b = structure + rng.normal(0, 10, structure.shape)
    r = nps_difference(a, b, (1.0, 0.1, 0.1), roi_size=32)
    assert r.noise_sd == pytest.approx(10.0, rel=0.08)
    mask = np.zeros((96, 96), bool)
    mask[:40, :] = True
    masked = nps_2d(a, (1.0, 0.1, 0.1), roi_size=32, mask=mask)
    assert masked.n_rois == 2 * 1 * 5
    with pytest.raises(ParameterError):
        nps_2d(a, (1.0, 0.1, 0.1), roi_size=128)
    with pytest.raises(ParameterError):
        nps_2d(a, (1.0, 0.1, 0.1), detrend_mode="wavelet")


def test_noise_sd_pools_rois_and_cnr_is_contrast_over_background_sd():
    rng = np.random.default_rng(4)
    img = rng.normal(0.0, 10.0, (4, 100, 100))
    img[:, :, 50:] = rng.normal(100.0, 20.0, (4, 100, 50))
    vol = Volume(img, 0.5, units="HU")
    one = noise_sd(vol, "0:4,10:40,10:40")
    assert one.sd == pytest.approx(10.0, rel=0.05) and one.units == "HU"
    pooled = noise_sd(vol, ["0:4,10:40,10:40", "0:4,10:40,60:90"])
    assert pooled.sd == pytest.approx(math.sqrt((10.0 ** 2 + 20.0 ** 2) / 2), rel=0.05)
    assert len(pooled.rois) == 2
    c = cnr(vol, "0:4,10:40,60:90", "0:4,10:40,10:40")
    assert c.contrast == pytest.approx(100.0, abs=2.0)
    assert c.cnr == pytest.approx(10.0, rel=0.06)
    assert cnr(vol, "0:4,10:40,60:90", "0:4,10:40,10:40", noise="pooled").cnr == pytest.approx(100 / math.sqrt(250), rel=0.06)
    ramp = np.broadcast_to(np.arange(100.0)[None, None, :] * 5, (2, 100, 100)) + rng.normal(0, 3.0, (2, 100, 100))
    assert noise_sd(ramp, detrend="plane").sd == pytest.approx(3.0, rel=0.05)
    for bad in ("0:4,10:40", "0:4,40:10,0:5", "a:b,0:1,0:1", "0:4,0:200,0:10"):
        with pytest.raises(ParameterError):
            noise_sd(vol, bad)
    with pytest.raises(ParameterError):
        cnr(vol, "0:4,10:40,60:90", "0:4,10:40,10:40", noise="max")
