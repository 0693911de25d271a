"""Real structure as phantom (DIDSR L1 micro-CT regions) and synthetic look-alikes of real regions."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from tests.conftest import data_path
from trabecula.errors import ParameterError
from trabecula.io import read_volume
from trabecula.phantom import LABEL, from_binary, lookalike, upsample_binary
from trabecula.volume import Volume


def _region(name: str, n: int | None = None) -> Volume:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vol = read_volume(data_path("didsr_l1_vertebra", f"Segmentation-grayscale-{name}.nrrd"), spacing=0.05, units="binary")
    return vol if n is None else vol.crop((0, n), (0, n), (0, n))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["1_06219", "9_67960"])
def test_lookalike_matches_real_region_within_10_percent(name):
    """A 4 mm (80³ at 0.05 mm, ≈ 3.5 cells) corner of a real L1 region and its look-alike, both measured
    by the project's engine in the same (default) mode: BV/TV, Tb.Th and Tb.Sp within 10 %."""
    real = _region(name, 80)
    ph = lookalike(real, seed=0)
    assert ph.shape == real.shape and ph.spacing == real.spacing
    assert ph.params["within_tol"] is True
    for k in ("bv_tv", "tb_th_mm", "tb_sp_mm"):
        assert ph.params["measured"][k] == pytest.approx(ph.params["real"][k], rel=0.10), k
    # the real region is not trivially like any foam: its numbers are its own
    assert ph.params["real"]["bv_tv"] == pytest.approx(float(real.numpy().mean()), rel=1e-9)


def test_upsampling_keeps_the_volume_fraction_and_the_field_of_view():
    real = _region("9_67960", 40)
    ph = from_binary(real, upsample=2)
    fine = ph.truth.numpy().astype(bool)
    assert ph.shape == (80, 80, 80) and ph.spacing == (0.025, 0.025, 0.025)
    assert fine.mean() == pytest.approx(real.numpy().mean(), rel=0.01)
    assert ph.labels.extent_mm == pytest.approx(real.extent_mm)
    assert np.allclose(ph.labels.center_mm, real.center_mm)
    # the fine structure is the coarse one refined: block-averaging it back agrees on ≥ 95 % of voxels
    coarse = fine.reshape(40, 2, 40, 2, 40, 2).mean(axis=(1, 3, 5)) >= 0.5
    assert np.mean(coarse == (real.numpy() > 0)) >= 0.95
    lab = ph.labels.numpy()
    assert set(np.unique(lab)) == {LABEL["bone"], LABEL["marrow"]}
    assert ph.materials == {str(LABEL["marrow"]): "marrow", str(LABEL["bone"]): "bone"}


def test_upsample_binary_smooths_staircase_of_a_sphere():
    """A voxelised sphere upsampled ×3 keeps its volume and gets closer to the true sphere."""
    n, r = 24, 8.3
    g = np.mgrid[0:n, 0:n, 0:n] - (n - 1) / 2
    coarse = (g ** 2).sum(0) <= r ** 2
    fine = upsample_binary(coarse, 3)
    gf = (np.mgrid[0:3 * n, 0:3 * n, 0:3 * n] + 0.5) / 3 - 0.5 - (n - 1) / 2
    truth = (gf ** 2).sum(0) <= r ** 2
    nearest = np.repeat(np.repeat(np.repeat(coarse, 3, 0), 3, 1), 3, 2)
    assert fine.mean() == pytest.approx(coarse.mean(), rel=0.01)
    assert np.mean(fine != truth) < 0.8 * np.mean(nearest != truth)


def test_from_binary_materials_and_errors():
    real = _region("1_06219", 16)
    ph = from_binary(real, bone="bone", background="yellow_marrow")
    assert ph.materials[str(LABEL["yellow_marrow"])] == "yellow_marrow"
    assert np.array_equal(ph.labels.numpy() == LABEL["bone"], real.numpy() > 0)
    grey = Volume(np.random.default_rng(0).normal(size=(8, 8, 8)), 0.05, units="HU")
    with pytest.raises(ParameterError):
        from_binary(grey)
    with pytest.raises(ParameterError):
        from_binary(real, upsample=1.5)
    with pytest.raises(ParameterError):
        from_binary(real, background="cheese")
