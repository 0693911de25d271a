"""Fitting volumes to the browser: voxel budget, block mean vs subsample, world positions kept, NIfTI bytes."""

import dask.array as da
import numpy as np
import pytest

from trabecula import Volume
from trabecula.errors import ParameterError
from trabecula.io import read_volume
from trabecula.render.viewer import block_mean, fit_to_budget, nifti_bytes, reduction_factors
from trabecula.render.viewer.prepare import browser_dtype, default_window, subsample


def test_reduction_factors_respect_budget_and_reduce_finest_axis_first():
    # clinical-like anisotropic grid: 2 mm slices, 0.5 mm in-plane → y and x are reduced before z
    k = reduction_factors((20, 512, 512), (2.0, 0.5, 0.5), 20 * 128 * 128)
    assert k == (1, 4, 4)
    k = reduction_factors((300, 301, 302), (0.05,) * 3, 1_000_000)
    n = np.prod([-(-s // f) for s, f in zip((300, 301, 302), k, strict=True)])
    assert n <= 1_000_000 and max(k) - min(k) <= 1
    assert reduction_factors((10, 10, 10), (1, 1, 1), 1000) == (1, 1, 1)


def test_block_mean_matches_reshape_mean_and_averages_partial_edge_blocks(rng):
    a = rng.normal(size=(9, 8, 7)).astype(np.float32)
    full = block_mean(a[:8, :8, :6], (2, 4, 3), progress=False)
    ref = a[:8, :8, :6].reshape(4, 2, 2, 4, 2, 3).mean(axis=(1, 3, 5))
    np.testing.assert_allclose(full, ref, rtol=1e-5, atol=1e-6)
    part = block_mean(a, (2, 4, 3), progress=False)
    assert part.shape == (5, 2, 3)
    # last z block holds one slice, last x block one column: their means are over what they hold
    np.testing.assert_allclose(part[4, 0, 2], a[8, 0:4, 6:7].mean(), rtol=1e-5)
    # a lazy (dask) array gives the same answer, read slab by slab
    lazy = block_mean(da.from_array(a, chunks=(3, 8, 7)), (2, 4, 3), progress=False)
    np.testing.assert_allclose(lazy, part, rtol=1e-6)


def test_block_mean_equals_skimage_block_reduce_inside_and_is_unbiased_at_the_edge():
    from skimage.measure import block_reduce

    a = np.full((10, 10, 10), 1000, np.int16)
    ours = block_mean(a, (4, 4, 4), progress=False)
    peer = block_reduce(a, (4, 4, 4), np.mean)  # pads the partial edge blocks with 0
    np.testing.assert_allclose(ours[:2, :2, :2], peer[:2, :2, :2])
    assert np.all(ours == 1000)  # a uniform volume stays uniform, edge blocks included
    assert peer[2, 2, 2] == pytest.approx(1000 * 8 / 64)  # the library's edge block: 8 voxels of 64 hold data


def test_fit_to_budget_keeps_world_position_units_and_says_what_it_did():
    a = np.full((40, 60, 80), -1000, np.int16)
    a[10:14, 20:24, 52:56] = 2000  # a small bright cube; its centre in world mm must not move
    vol = Volume(a, (0.3, 0.2, 0.1), (12.0, -3.0, 7.0), units="HU")
    centre = vol.index_to_world([11.5, 21.5, 53.5])
    sv = fit_to_budget(vol, 40 * 60 * 80 // 8, name="cube", progress=False)
    assert sv.reduced and sv.method == "block mean" and sv.volume.units == "HU"
    assert np.prod(sv.volume.shape) <= 40 * 60 * 80 // 8
    assert sv.volume.dtype == np.int16
    w = sv.volume.numpy().astype(float) + 1000
    idx = np.array(np.nonzero(w > 1)).T
    com = (idx * w[w > 1][:, None]).sum(0) / w[w > 1].sum()
    np.testing.assert_allclose(sv.volume.index_to_world(com), centre, atol=1e-6)
    d = sv.describe()
    assert d["original_shape"] == [40, 60, 80] and d["shape"] == list(sv.volume.shape)
    assert d["spacing"] == pytest.approx([s * k for s, k in zip(vol.spacing, sv.factors, strict=True)])
    assert d["window"] == [500.0, 2000.0]  # HU → bone window


def test_binary_volumes_are_subsampled_not_averaged():
    a = np.zeros((30, 30, 30), np.uint8)
    a[::2] = 1
    sv = fit_to_budget(Volume(a, 0.1, units="binary"), 2000, progress=False)
    assert sv.method == "subsample" and set(np.unique(sv.volume.numpy())) <= {0, 1}
    np.testing.assert_array_equal(subsample(a, (3, 3, 3)), a[1::3, 1::3, 1::3])


def test_small_volume_passes_unchanged_and_dtypes_fit_webgl():
    a = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    sv = fit_to_budget(Volume(a, 1.0, units="mm"), 1000, progress=False)
    assert not sv.reduced and sv.volume.dtype == np.float32 and "float64 shown as float32" in sv.notes
    np.testing.assert_array_equal(sv.volume.numpy(), a.astype(np.float32))
    assert browser_dtype(np.array([True]))[0].dtype == np.uint8
    assert browser_dtype(np.array([2**40], np.int64))[0].dtype == np.float32
    assert default_window(np.array([0, 1], np.uint8), "binary") == (0.5, 1.0)


def test_bad_budget_is_a_parameter_error():
    with pytest.raises(ParameterError, match="max_voxels"):
        fit_to_budget(Volume(np.zeros((4, 4, 4)), 1.0), 0)


def test_nifti_bytes_round_trip_geometry(tmp_path):
    vol = Volume(np.arange(60, dtype=np.int16).reshape(3, 4, 5), (2.0, 0.5, 0.25), (1.0, 2.0, 3.0), units="HU")
    for compress, name in ((False, "v.nii"), (True, "v.nii.gz")):
        p = tmp_path / name
        p.write_bytes(nifti_bytes(vol, compress=compress))
        back = read_volume(p)
        np.testing.assert_array_equal(back.numpy(), vol.numpy())
        assert back.spacing == pytest.approx(vol.spacing) and back.origin == pytest.approx(vol.origin)
