"""SSIM (the study's global 8-bit formula and the standard windowed one) and PSNR."""

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from trabecula.errors import ParameterError
from trabecula.quality.similarity import (
    global_ssim,
    psnr,
    psnr_slices,
    ssim_hu,
    ssim_study,
    ssim_study_slices,
)
from trabecula.volume import window_to_uint8


def test_global_ssim_hand_computed():
    x = np.array([[0, 100], [200, 255]], float)
    y = np.array([[10, 90], [210, 250]], float)
    mx, my = x.mean(), y.mean()
    vx, vy, cxy = x.var(), y.var(), np.mean((x - mx) * (y - my))
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    want = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    assert global_ssim(x, y) == pytest.approx(want, rel=1e-12)
    assert global_ssim(x, x) == pytest.approx(1.0)
    assert global_ssim(x, y) == pytest.approx(global_ssim(y, x))


def test_study_ssim_windows_to_8bit_first():
    rng = np.random.default_rng(0)
    a = rng.normal(300, 400, (3, 32, 32))
    b = a + rng.normal(0, 100, a.shape)
    per = ssim_study_slices(a, b, window=(500, 2000))
    a8, b8 = window_to_uint8(a, 500, 2000), window_to_uint8(b, 500, 2000)
    assert per == pytest.approx([global_ssim(a8[k], b8[k]) for k in range(3)])
    assert ssim_study(a, b) == pytest.approx(per.mean())
    # more noise, lower SSIM
    c = a + rng.normal(0, 300, a.shape)
    assert ssim_study(a, c) < ssim_study(a, b) < 1.0


def test_ssim_hu_equals_skimage_per_slice():
    rng = np.random.default_rng(1)
    a = rng.normal(0, 300, (2, 24, 24))
    b = a + rng.normal(0, 50, a.shape)
    want = np.mean([structural_similarity(a[k], b[k], data_range=2000.0, gaussian_weights=True, sigma=1.5,
                                          use_sample_covariance=False) for k in range(2)])
    assert ssim_hu(a, b) == pytest.approx(want)


def test_psnr_known_value():
    a = np.zeros((1, 10, 10))
    b = np.full((1, 10, 10), 20.0)  # MSE 400 → PSNR = 10 log10(2000² / 400) = 40 dB
    assert psnr(b, a) == pytest.approx(40.0)
    assert psnr_slices(b, a)[0] == pytest.approx(40.0)
    assert psnr(a, a) == np.inf


def test_similarity_refuses_bad_input():
    with pytest.raises(ParameterError, match="shape"):
        ssim_study(np.zeros((2, 8, 8)), np.zeros((2, 8, 9)))
    with pytest.raises(ParameterError, match="NaN"):
        psnr(np.full((4, 4), np.nan), np.zeros((4, 4)))
