"""Augmenting real structure: exact symmetries, free rotation and scale keep BV/TV, one-voxel morphology
moves it, provenance records all of it."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import data_path
from trabecula.errors import ParameterError
from trabecula.io import read_volume
from trabecula.morphometry.measure import measure
from trabecula.phantom.augment import (
    CUBE_SYMMETRIES,
    Augmentation,
    augment_binary,
    inscribed_half_width,
    random_augmentation,
)
from trabecula.volume import Volume


def _rods(n: int = 40) -> Volume:
    a = np.zeros((n, n, n), np.uint8)
    a[:, 10:14, 10:14] = 1  # a rod along z
    a[20:24, :, 26:30] = 1  # a rod along y
    return Volume(a, 0.05, units="binary")


def test_there_are_48_cube_symmetries_and_each_keeps_every_voxel():
    assert len(set(CUBE_SYMMETRIES)) == 48
    v = _rods()
    for axes, flips in CUBE_SYMMETRIES[::7]:
        out = augment_binary(v, Augmentation(axes, flips))
        assert out.shape == v.shape and int(out.numpy().sum()) == int(v.numpy().sum())


def test_axis_swap_turns_a_z_rod_into_an_x_rod():
    a = np.zeros((20, 20, 20), np.uint8)
    a[:, 5:8, 5:8] = 1
    out = augment_binary(Volume(a, 0.05, units="binary"), Augmentation(axes=(2, 1, 0))).numpy()
    assert out[6, 6, :].all() and not out[:, 6, 6].all()


def test_inscribed_cube_of_a_45_degree_rotation_about_z():
    from scipy.spatial.transform import Rotation

    r = Rotation.from_rotvec([np.pi / 4, 0, 0]).as_matrix()
    # in-plane reach of a 45° rotation is sqrt(2): the cube shrinks by that factor (z is unchanged but the cube is cubic)
    assert inscribed_half_width((101, 101, 101), r, 1.0) == pytest.approx(50 / np.sqrt(2), rel=1e-9)
    assert inscribed_half_width((101, 101, 101), np.eye(3), 1.2) == pytest.approx(60.0)


def test_rotation_and_scale_keep_bvtv_and_scale_thickness_on_real_bone():
    path = data_path("didsr_l1_vertebra", "Segmentation-grayscale-1_06219.nrrd")
    src = read_volume(path, spacing=0.05, units="binary").crop((50, 170), (50, 170), (50, 170))
    src = src.with_data((src.numpy() > 0).astype(np.uint8))
    out = augment_binary(src, Augmentation(rotvec_deg=(20.0, 10.0, 0.0), scale=1.15), source_id="didsr-06219")
    a, b = measure(src, metrics=("bvtv", "tbth")), measure(out, metrics=("bvtv", "tbth"))
    assert b.bv_tv == pytest.approx(a.bv_tv, abs=0.01)
    assert b.tb_th_mm / a.tb_th_mm == pytest.approx(1.15, abs=0.07)
    assert out.provenance.extra["source_specimen"] == "didsr-06219"
    assert out.provenance.extra["augmentation"]["scale"] == 1.15
    assert "augment[" in out.provenance.steps[-1]


def test_erosion_and_dilation_move_bvtv_in_opposite_directions():
    v = _rods()
    base = v.numpy().mean()
    eroded = augment_binary(v, Augmentation(morph=-1)).numpy().mean()
    dilated = augment_binary(v, Augmentation(morph=1)).numpy().mean()
    assert eroded < base < dilated


def test_random_augmentations_are_reproducible_and_bad_ones_refused():
    a = random_augmentation(np.random.default_rng(3))
    assert a == random_augmentation(np.random.default_rng(3))
    assert 0.85 <= a.scale <= 1.15 and a.angle_deg <= 45.0
    with pytest.raises(ParameterError, match="scale"):
        Augmentation(scale=3.0)
    with pytest.raises(ParameterError, match="axes"):
        Augmentation(axes=(0, 0, 1))
    with pytest.raises(ParameterError, match="isotropic"):
        augment_binary(Volume(np.ones((4, 4, 4), np.uint8), (0.1, 0.05, 0.05), units="binary"), Augmentation())
