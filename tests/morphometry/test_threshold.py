"""Thresholds: ImageJ's default IsoData (and how it differs from scikit-image's), Otsu, segmentation."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.filters import threshold_isodata as sk_isodata

from trabecula import Volume
from trabecula.errors import ParameterError
from trabecula.morphometry import segment, threshold_isodata_ij, threshold_otsu


def _saturated_image() -> np.ndarray:
    # two tissue classes at 50 and 150 plus large saturated populations in the extreme bins (0 and 255)
    return np.array([0] * 1000 + [50] * 100 + [150] * 100 + [255] * 1000, np.uint8).reshape(1, 22, 100)


def test_ij_isodata_ignores_extreme_bins_and_differs_from_skimage():
    img = _saturated_image()
    t_ij = threshold_isodata_ij(img)
    # ImageJ: extreme bins ignored → midway between the two tissue classes
    assert t_ij == 100.0
    t_sk = float(sk_isodata(img))
    # scikit-image keeps the saturated bins: its threshold separates 0 from 255 instead
    assert abs(t_sk - t_ij) > 20
    seg_ij = img > t_ij
    assert seg_ij[img == 50].sum() == 0 and seg_ij[img == 150].all()


def test_ij_isodata_on_float_image_returns_bin_edge_in_image_units():
    rng = np.random.default_rng(0)
    hu = np.concatenate([rng.normal(0, 40, 50000), rng.normal(1200, 60, 20000)]).astype(np.float32)
    t = threshold_isodata_ij(hu)
    assert 300 < t < 900  # between marrow and bone
    lo, hi = hu.min(), hu.max()
    w = (hi - lo) / 256
    k = (t - lo) / w
    assert k == pytest.approx(round(k), abs=1e-3)  # an edge of the 256-bin histogram


def test_ij_isodata_fixed_point_property():
    rng = np.random.default_rng(1)
    img = np.clip(np.concatenate([rng.normal(60, 10, 40000), rng.normal(180, 15, 20000)]), 1, 254).astype(np.uint8)
    t = threshold_isodata_ij(img)
    lo = img[img <= t].mean()
    hi = img[img > t].mean()
    assert abs(t - (lo + hi) / 2) <= 1.0  # iterative intermeans: the threshold is the mean of the class means


def test_otsu_matches_skimage_and_rejects_constant():
    from skimage.filters import threshold_otsu as sk_otsu

    rng = np.random.default_rng(2)
    img = np.concatenate([rng.normal(0, 1, 1000), rng.normal(5, 1, 1000)])
    assert threshold_otsu(img) == pytest.approx(sk_otsu(img))
    with pytest.raises(ParameterError, match="constant"):
        threshold_otsu(np.full(10, 3.0))
    with pytest.raises(ParameterError, match="constant"):
        threshold_isodata_ij(np.full(10, 3.0))


def test_segment_reports_threshold_and_units_and_uses_voi():
    a = np.zeros((4, 10, 10), np.int16)
    a[:, :5] = 1000
    a[:, :, 8:] = 3000  # a bright region outside the VOI
    vol = Volume(a, 0.1, units="HU")
    voi = np.zeros(a.shape, bool)
    voi[:, :, :8] = True
    seg, t = segment(vol, "otsu", voi=voi)
    assert seg.units == "binary" and seg.dtype == np.uint8
    assert 0 <= t < 1000
    assert seg.numpy()[:, :5, :8].all() and not seg.numpy()[:, 5:, :8].any()
    seg2, t2 = segment(vol, 500.0)
    assert t2 == 500.0 and "segment[fixed 500 HU" in seg2.provenance.steps[-1]
    # binary input is passed through
    b, tb = segment(seg, "isodata")
    assert np.isnan(tb) and np.array_equal(b.numpy(), seg.numpy())


def test_segment_smoothing_and_bad_parameters():
    a = np.zeros((6, 12, 12), np.float32)
    a[:, 3:9, 3:9] = 1000
    vol = Volume(a, (0.2, 0.1, 0.1), units="HU")
    s, _ = segment(vol, 500.0, smooth_sigma_mm=0.1)
    assert s.numpy().sum() > 0
    with pytest.raises(ParameterError, match="smooth"):
        segment(vol, 500.0, smooth_sigma_mm=-1)
    with pytest.raises(ParameterError, match="threshold"):
        segment(vol, "triangle")
    with pytest.raises(ParameterError, match="units"):
        segment(Volume(a.astype(np.int32), 0.1, units="label"), 1.0)
