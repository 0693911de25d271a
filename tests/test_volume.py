import numpy as np
import pytest

from trabecula import ParameterError, Volume


def make(shape=(10, 12, 14), spacing=(0.5, 0.25, 0.25), dtype=np.int16, units="HU"):
    a = np.arange(np.prod(shape)).reshape(shape).astype(dtype)
    return Volume(a, spacing, (1.0, 2.0, 3.0), units)


def test_volume_rejects_bad_geometry_and_units():
    a = np.zeros((2, 3, 4))
    with pytest.raises(ParameterError, match="spacing"):
        Volume(a, (0, 1, 1))
    with pytest.raises(ParameterError, match="spacing"):
        Volume(a, (1, 1))
    with pytest.raises(ParameterError, match="units"):
        Volume(a, 1.0, units="hounsfield")
    with pytest.raises(ParameterError, match="3-D"):
        Volume(np.zeros((3, 4)), 1.0)


def test_crop_moves_origin_so_world_positions_are_kept():
    v = make()
    c = v.crop((2, 5), (None, 4), (-3, None))
    assert c.shape == (3, 4, 3)
    np.testing.assert_allclose(c.index_to_world((0, 0, 0)), v.index_to_world((2, 0, 11)))
    assert c.numpy()[0, 0, 0] == v.numpy()[2, 0, 11]
    assert "crop" in c.provenance.steps[-1]
    with pytest.raises(ParameterError):
        v.crop((5, 5))


def test_crop_mm_keeps_voxels_inside_the_box():
    v = make()
    c = v.crop_mm(v.index_to_world((1, 2, 3)), v.index_to_world((4, 6, 8)))
    assert c.shape == (4, 5, 6)
    np.testing.assert_allclose(c.origin, v.index_to_world((1, 2, 3)))


def test_resample_keeps_extent_and_linear_ramp():
    z, y, x = np.meshgrid(np.arange(20), np.arange(20), np.arange(20), indexing="ij")
    v = Volume((x * 2.0).astype(np.float32), (0.1, 0.1, 0.1), (0, 0, 0), "grey")
    r = v.resample(0.2, anti_alias=False)
    assert r.shape == (10, 10, 10)
    assert r.extent_mm == pytest.approx(v.extent_mm)
    # new voxel j has centre at x = 0.05 + 0.2 j mm -> old index 0.5 + 2 j -> value 1 + 4 j
    np.testing.assert_allclose(r.numpy()[5, 5, 1:-1], 1 + 4 * np.arange(1, 9), atol=1e-4)
    np.testing.assert_allclose(r.origin, (0.05, 0.05, 0.05))


def test_resample_binary_stays_binary_and_anisotropic_target():
    a = np.zeros((8, 16, 16), np.uint8)
    a[:, 4:12, 4:12] = 1
    v = Volume(a, (0.2, 0.05, 0.05), units="binary")
    r = v.resample((0.1, 0.1, 0.1))
    assert r.shape == (16, 8, 8)
    assert set(np.unique(r.numpy())) <= {0, 1}
    assert r.numpy().mean() == pytest.approx(a.mean(), abs=0.02)


def test_window_presets_and_levels():
    v = Volume(np.array([-2000, -500, 500, 1500, 3000], np.int16).reshape(1, 1, 5), 1.0, units="HU")
    w = v.window("bone")  # L 500 W 2000 -> [-500, 1500]
    assert w.units == "grey" and w.dtype == np.uint8
    assert w.numpy().ravel().tolist() == [0, 0, 128, 255, 255]
    w2 = v.window(0, 1000)
    assert w2.numpy().ravel().tolist() == [0, 0, 255, 255, 255]
    with pytest.raises(ParameterError, match="window"):
        Volume(np.zeros((1, 1, 2)), 1.0, units="grey").window("bone")
    with pytest.raises(ParameterError):
        v.window("nonsense")


def test_lazy_volume_crop_stays_lazy():
    import dask.array as da

    v = Volume(da.zeros((20, 20, 20), chunks=10, dtype=np.int16), 0.1, units="HU")
    assert v.is_lazy
    c = v.crop((0, 5))
    assert c.is_lazy and c.shape == (5, 20, 20)
    assert c.numpy().shape == (5, 20, 20)


def test_as_spacing_accepts_a_number_or_one_per_axis():
    from trabecula.volume import as_spacing

    assert as_spacing(0.5) == (0.5, 0.5, 0.5)
    assert as_spacing([2, 0.5, 0.25]) == (2.0, 0.5, 0.25)
    assert as_spacing(np.array([1.0, 2.0]), ndim=2) == (1.0, 2.0)
    assert as_spacing(np.float32(0.5), ndim=2) == (0.5, 0.5)


@pytest.mark.parametrize("bad, message", [
    (0.0, "positive"), (-0.1, "positive"), ((1.0, 0.0, 1.0), "positive"), (float("nan"), "finite"),
    ((1.0, float("inf"), 1.0), "finite"), ((1.0, 1.0), "three numbers"), ("wide", "three numbers"), (None, "three numbers"),
])
def test_as_spacing_refuses_and_names_the_parameter(bad, message):
    from trabecula.volume import as_spacing

    with pytest.raises(ParameterError, match=f"input_spacing: .*{message}"):
        as_spacing(bad, name="input_spacing")
    with pytest.raises(ParameterError, match="spacing"):
        Volume(np.zeros((2, 2, 2)), bad)
