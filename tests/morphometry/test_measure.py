"""measure(): the full parameter set, segmentation of HU input, VOIs and degenerate inputs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from trabecula import Volume
from trabecula.errors import ParameterError
from trabecula.morphometry import MorphometryResult, measure
from trabecula.phantom import random_field_bone
from trabecula.phantom.shapes import plate


@pytest.fixture(scope="module")
def hu_volume() -> Volume:
    return random_field_bone((48, 56, 56), spacing=0.05, bone_fraction=0.25, correlation_mm=0.12, seed=3)


def test_measure_hu_volume_segments_and_reports_everything(hu_volume):
    r = measure(hu_volume, voi="cylinder:d=2.4,h=2")
    assert isinstance(r, MorphometryResult)
    assert r.threshold_method.startswith("isodata") and "[HU]" in r.threshold_method
    assert 0 < r.threshold < 1200
    assert 0.15 < r.bv_tv < 0.35
    for k in ("tb_th_mm", "tb_sp_mm", "tb_n_per_mm", "conn_d_per_mm3", "smi", "da", "da_scanco"):
        assert math.isfinite(getattr(r, k)), k
    assert r.tb_th_sd_mm > 0 and r.tb_th_max_mm >= r.tb_th_mm
    assert r.tb_n_per_mm == pytest.approx(1 / (r.tb_th_mm + r.tb_sp_mm))
    assert r.voi.startswith("cylinder") and r.voi_volume_mm3 == pytest.approx(np.pi * 1.2 ** 2 * 2, rel=0.05)
    assert np.linalg.norm(r.main_direction) == pytest.approx(1.0)
    d = r.to_dict()
    json.dumps(d)  # JSON-able
    assert "thickness_map" not in d and d["warnings"] == []


def test_bv_tv_is_exact_voxel_count_in_voi(hu_volume):
    seg = (hu_volume.numpy() > 600).astype(np.uint8)
    vol = hu_volume.with_data(seg, units="binary")
    voi = np.zeros(seg.shape, bool)
    voi[5:40, 10:50, 3:33] = True
    r = measure(vol, voi=voi, metrics=("bvtv",))
    assert r.bv_tv == seg[voi].mean()
    assert math.isnan(r.tb_th_mm)  # not asked for


def test_plate_in_voi_each_mode():
    b = plate(7, size=40).astype(np.uint8)
    vol = Volume(b, 0.1, units="binary")
    box = "box:0.1,0.5,0.5,1.1,3.4,3.4"
    rd = measure(vol, voi=box, metrics=("tbth", "tbsp"), maps=True)
    rb = measure(vol, voi=box, metrics=("tbth",), bonej=True)
    rs = measure(vol, voi=box, metrics=("tbth",), mode="subvoxel")
    assert rd.mode == "plain" and rd.tb_th_mm == pytest.approx(0.8, rel=1e-5)  # the definition on centres
    assert rb.mode == "bonej" and rb.tb_th_mm == pytest.approx(0.8, rel=0.01)  # BoneJ: odd plate + 1 voxel
    assert rs.mode == "subvoxel" and rs.tb_th_mm == pytest.approx(0.7, rel=1e-5)
    assert rd.thickness_map is not None and rd.thickness_map.units == "mm"
    assert rd.thickness_map.shape == vol.shape and rd.spacing_map.numpy().max() > 0
    assert measure(vol, voi=box, metrics=("tbth",), mode="bonej").tb_th_mm == rb.tb_th_mm
    with pytest.raises(ParameterError, match="mode"):
        measure(vol, metrics=("tbth",), mode="exact")
    with pytest.raises(ParameterError, match="mode"):
        measure(vol, metrics=("tbth",), mode="plain", bonej=True)


def test_no_bone_in_voi_gives_nan_and_warning_not_zero():
    b = np.zeros((20, 30, 30), np.uint8)
    b[:, :, :5] = 1  # bone only outside the VOI
    vol = Volume(b, 0.1, units="binary")
    r = measure(vol, voi="box:0,1,1,1.9,2.9,2.9")
    assert r.bv_tv == 0.0
    for k in ("tb_th_mm", "tb_n_per_mm", "conn_d_per_mm3", "smi", "da"):
        assert math.isnan(getattr(r, k)), k
    assert any("no bone" in w for w in r.warnings)
    assert math.isfinite(r.tb_sp_mm)  # the marrow is still measurable


def test_all_bone_gives_nan_tb_sp_with_warning():
    vol = Volume(np.ones((12, 12, 12), np.uint8), 0.1, units="binary")
    r = measure(vol)
    assert r.bv_tv == 1.0
    assert math.isnan(r.tb_sp_mm) and math.isnan(r.conn_d_per_mm3) and math.isnan(r.tb_th_mm)
    assert any("all bone" in w for w in r.warnings)


def test_voi_outside_image_and_non_binary_mask_are_errors():
    vol = Volume(np.zeros((10, 10, 10), np.uint8), 0.1, units="binary")
    with pytest.raises(ParameterError, match="outside the image"):
        measure(vol, voi="cylinder:d=0.5,h=0.5,center=5,5,5")
    mask = np.arange(1000).reshape(10, 10, 10)
    with pytest.raises(ParameterError, match="a label map"):
        measure(vol, voi=mask)
    with pytest.raises(ParameterError, match="metrics"):
        measure(vol, metrics=("bvtv", "fractal"))


def test_measure_an_array_with_its_spacing_is_the_volume_measurement():
    b = plate(6, size=24)
    voi = np.zeros(b.shape, bool)
    voi[2:10, 4:20, 4:20] = True
    ref = measure(Volume(b.astype(np.uint8), (0.1, 0.05, 0.05), units="binary"), voi=voi, metrics=("bvtv", "tbth"))
    for arr in (b, b.astype(np.uint8)):  # boolean and 0/1 integer arrays are binary
        got = measure(arr, spacing=(0.1, 0.05, 0.05), voi=voi, metrics=("bvtv", "tbth"))
        assert got.threshold_method == "binary input"
        assert (got.bv_tv, got.tb_th_mm, got.voi_volume_mm3) == (ref.bv_tv, ref.tb_th_mm, ref.voi_volume_mm3)
    grey = np.where(b, 1000.0, 0.0).astype(np.float32)  # anything else is grey and segmented
    g = measure(grey, spacing=0.05, metrics=("bvtv",))
    assert g.threshold_method.endswith("[grey]") and g.bv_tv == b.mean()
    hu = measure(grey, spacing=0.05, units="HU", threshold=500.0, metrics=("bvtv",))
    assert hu.threshold_method == "fixed [HU]" and hu.bv_tv == b.mean()


def test_measure_array_needs_spacing_and_a_volume_refuses_one():
    b = plate(4)
    with pytest.raises(ParameterError, match="spacing"):
        measure(b)
    with pytest.raises(ParameterError, match="spacing"):
        measure(b, spacing=0.0)
    with pytest.raises(ParameterError, match="spacing"):
        measure(Volume(b.astype(np.uint8), 0.1, units="binary"), spacing=0.1)
    with pytest.raises(ParameterError, match="vol"):
        measure([[[1]]], spacing=0.1)
