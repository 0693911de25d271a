"""The measuring stick for clinical users: apparent values, the VOI bounding Tb.Sp, auto and label VOIs,
segmentation clean-ups, and no silent millimetres."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from trabecula import Volume
from trabecula.errors import InputError, ParameterError
from trabecula.io import read_volume, write_volume
from trabecula.morphometry.measure import measure
from trabecula.morphometry.threshold import close_mm, largest_component
from trabecula.morphometry.voi import specimen_envelope

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
REGION = DATA / "didsr_l1_vertebra" / "Segmentation-grayscale-1_06219.nrrd"
needs_region = pytest.mark.skipif(not REGION.exists(), reason="DIDSR data not present")


@pytest.fixture(scope="module")
def region_crop():
    """A 120³ crop (6 mm) of a real human L1 micro-CT region at its stated 0.05 mm."""
    v = read_volume(REGION, spacing=0.05, units="binary")
    return Volume(np.ascontiguousarray(v.numpy()[:120, :120, :120]), 0.05, units="binary",
                  provenance=v.provenance)


@needs_region
def test_micro_ct_region_is_not_apparent_but_its_twin_clinical_scan_is(region_crop):
    from trabecula.phantom.real import from_binary
    from trabecula.scanner import scan

    micro = measure(region_crop, metrics=("bvtv", "tbth", "tbsp"))
    assert micro.apparent is False and not any("apparent" in w for w in micro.warnings)
    clinical = scan(from_binary(region_crop), "clinical-mdct", mode="fast", seed=0)
    res = measure(clinical, metrics=("bvtv", "tbth", "tbsp"))
    assert res.resolution_mm == pytest.approx(0.98, abs=0.05)  # the preset's modelled FWHM in-plane
    assert res.apparent is True and res.warnings[0].startswith("apparent values")
    d = res.to_dict()
    assert d["apparent"] is True and "clinical-mdct" in d["resolution_source"]


def test_dicom_slice_thickness_and_kernel_give_the_resolution():
    """A volume with a DICOM-like provenance: 3 mm slices and a Br38f kernel make the resolution 3 mm."""
    rng = np.random.default_rng(0)
    b = rng.random((20, 40, 40)) < 0.3
    v = Volume(np.where(b, 600.0, 0.0).astype(np.float32), (2.0, 0.98, 0.98), units="HU")
    v.provenance.extra.update({"slice_thickness_mm": 3.0, "kernel": "Br38f\\3"})
    res = measure(v, metrics=("bvtv", "tbth"))
    assert res.resolution_mm == pytest.approx(3.0) and "Br38f (standard)" in res.resolution_source
    stated = measure(v, metrics=("bvtv", "tbth"), resolution_mm=0.01)
    assert stated.resolution_mm == 0.01 and stated.resolution_source.startswith("stated")
    with pytest.raises(ParameterError, match="resolution_mm"):
        measure(v, metrics=("bvtv",), resolution_mm=-1)


def _specimen_in_air():
    """A 40³-voxel trabecular-like cube of plates 3 voxels thick, 7 apart, centred in an 80³ field of air."""
    b = np.zeros((80, 80, 80), bool)
    core = np.zeros((40, 40, 40), bool)
    for k in range(0, 40, 10):
        core[k:k + 3] = True
        core[:, k:k + 3] = True
    b[20:60, 20:60, 20:60] = core
    return b


def test_spacing_is_bounded_by_the_voi_by_default():
    b = _specimen_in_air()
    inner = np.zeros_like(b)
    inner[20:60, 20:60, 20:60] = True
    bounded = measure(b, spacing=0.1, voi=inner, metrics=("tbsp",))
    old = measure(b, spacing=0.1, voi=inner, metrics=("tbsp",), voi_bounds="none")
    # the plates 10 voxels apart leave 7-voxel gaps: bounded spheres fit those; unbounded ones grow into the air
    assert bounded.tb_sp_mm < old.tb_sp_mm
    assert bounded.tb_sp_max_mm <= 0.1 * math.sqrt(3 * 7**2) + 1e-6
    assert bounded.voi_bounds == "spacing" and old.voi_bounds == "none"
    with pytest.raises(ParameterError, match="voi_bounds"):
        measure(b, spacing=0.1, voi=inner, metrics=("tbsp",), voi_bounds="marrow")


def test_bounding_tb_th_by_the_voi_thins_struts_cut_by_it():
    plate = np.zeros((30, 30, 30), bool)
    plate[:, :, 10:18] = True  # 8 voxels thick along x
    voi = np.zeros_like(plate)
    voi[:, :, 14:30] = True  # cuts the plate in half
    free = measure(plate, spacing=1.0, voi=voi, metrics=("tbth",))
    cut = measure(plate, spacing=1.0, voi=voi, metrics=("tbth",), voi_bounds="all")
    assert free.tb_th_mm == pytest.approx(8.0, abs=0.01) and cut.tb_th_mm < 5.0


def test_auto_voi_measures_a_specimen_in_air_in_itself():
    b = _specimen_in_air()
    whole = measure(b, spacing=0.1, metrics=("bvtv", "tbsp"))
    auto = measure(b, spacing=0.1, voi="auto", metrics=("bvtv", "tbsp"))
    assert any("outside the specimen's envelope" in w for w in whole.warnings)
    assert not any("envelope" in w for w in auto.warnings)
    assert auto.voi.startswith("auto")
    # the envelope is the 40³ cube (its outer plates are on three faces only: the closing bridges the rest)
    assert auto.tv_mm3 == pytest.approx(40**3 * 1e-3, rel=0.12)
    assert auto.bv_tv > 3 * whole.bv_tv and auto.tb_sp_mm < whole.tb_sp_mm


def test_a_cut_trabecular_region_needs_no_envelope_warning(fine_foam):
    truth, _ = fine_foam
    sub = Volume(np.ascontiguousarray(truth.numpy()[::4, ::4, ::4]), 0.025, units="binary")
    res = measure(sub, metrics=("bvtv", "tbsp"))
    assert not any("envelope" in w for w in res.warnings)


def test_specimen_envelope_and_closing_on_known_shapes():
    shell = np.zeros((40, 40, 40), bool)
    shell[5:35, 5:35, 5:35] = True
    shell[7:33, 7:33, 7:33] = False  # a hollow box: its envelope is the full box
    env = specimen_envelope(shell, (1.0, 1.0, 1.0), 1.0)
    assert env.sum() == 30**3
    gap = np.zeros((20, 20, 40), bool)
    gap[5:15, 5:15, 5:18] = True
    gap[5:15, 5:15, 21:35] = True  # a 3-voxel gap: closed by r = 2, not by r = 1
    assert close_mm(gap, (1.0, 1.0, 1.0), 2.0)[10, 10, 19]
    assert not close_mm(gap, (1.0, 1.0, 1.0), 1.0)[10, 10, 19]
    assert largest_component(gap).sum() == 10 * 10 * 14
    with pytest.raises(ParameterError, match="closing_mm"):
        close_mm(gap, (1.0, 1.0, 1.0), 0.0)


def test_clean_ups_and_the_kept_segmentation():
    rng = np.random.default_rng(1)
    b = _specimen_in_air()[10:70, 10:70, 10:70].copy()
    specks = rng.random(b.shape) < 0.002
    noisy = b | specks
    res = measure(noisy, spacing=0.1, metrics=("bvtv",), largest_component=True, keep_segmentation=True)
    seg = res.segmentation
    assert seg.units == "binary" and seg.shape == b.shape
    assert np.count_nonzero(seg.numpy()) < np.count_nonzero(noisy)
    assert res.segmentation_steps == ["largest 26-connected component"]
    assert "largest" in seg.provenance.steps[-1]
    closed = measure(noisy, spacing=0.1, metrics=("bvtv",), closing_mm=0.2)
    assert closed.bv_tv > measure(noisy, spacing=0.1, metrics=("bvtv",)).bv_tv


def test_assumed_spacing_is_refused(tmp_path):
    import tifffile

    a = (np.random.default_rng(0).random((8, 16, 16)) < 0.3).astype(np.uint8)
    p = tmp_path / "nospacing.tif"
    tifffile.imwrite(p, a)
    with pytest.warns(UserWarning):
        v = read_volume(p, units="binary")
    with pytest.raises(ParameterError, match="--input-spacing"):
        measure(v, metrics=("bvtv",))
    assert measure(read_volume(p, units="binary", spacing=0.05), metrics=("bvtv",)).bv_tv > 0


def test_label_map_voi(tmp_path):
    rng = np.random.default_rng(2)
    b = (rng.random((10, 20, 20)) < 0.3).astype(np.uint8)
    labels = np.zeros((10, 20, 20), np.uint8)
    labels[:, :10] = 3
    labels[:, 10:15] = 5
    labels[:, 15:] = 7
    p = write_volume(Volume(labels, 0.1, units="label"), tmp_path / "labels.nii.gz")
    vol = Volume(b, 0.1, units="binary")
    one = measure(vol, voi=f"{p}:label=3", metrics=("bvtv",))
    assert one.bv_tv == pytest.approx(b[:, :10].mean()) and one.voi == "labels.nii.gz label 3"
    two = measure(vol, voi=f"{p}:label=3,5", metrics=("bvtv",))
    assert two.bv_tv == pytest.approx(b[:, :15].mean()) and two.voi == "labels.nii.gz labels 3,5"
    with pytest.raises(InputError, match="holds no label 4"):
        measure(vol, voi=f"{p}:label=4", metrics=("bvtv",))
    with pytest.raises(InputError, match="label=N"):
        measure(vol, voi=str(p), metrics=("bvtv",))


def test_integer_label_maps_are_recognised_as_labels(tmp_path):
    from trabecula.io.formats import guess_units

    labels = np.zeros((10, 20, 20), np.uint8)
    labels[:, 5:10] = 32
    labels[:, 12:14] = 33
    assert guess_units(labels)[0] == "label"
    grey = np.random.default_rng(0).integers(0, 256, (10, 20, 20)).astype(np.uint8)
    assert guess_units(grey)[0] == "grey"


def _tube_with_struts(seed: int = 0):
    """An HU tube along z (outer radius 3 mm, inner 2 mm, cortex 1800 HU) in soft tissue (50 HU), its marrow
    (0 HU) crossed by bone struts 0.2 mm thick every 1 mm (900 HU); blurred lightly and noisy."""
    from scipy import ndimage as ndi

    voxel, n = 0.05, 90
    yy, xx = np.mgrid[-n:n + 1, -n:n + 1] * voxel
    rho = np.hypot(yy, xx)
    outer, inner = rho <= 3.0, rho <= 2.0
    struts = (np.mod(xx + 0.1, 1.0) < 0.2) | (np.mod(yy + 0.1, 1.0) < 0.2)
    img = np.where(outer, np.where(inner, np.where(struts, 900.0, 0.0), 1800.0), 50.0)
    img = ndi.gaussian_filter(img, 0.03 / voxel)
    rng = np.random.default_rng(seed)
    data = np.repeat(img[None], 6, axis=0) + rng.normal(0, 20.0, (6, *img.shape))
    return Volume(data.astype(np.float32), voxel, (0.0, -n * voxel, -n * voxel), "HU"), outer, inner


def test_cortical_and_density_in_measure():
    from trabecula.morphometry.density import Calibration

    vol, outer, inner = _tube_with_struts()
    cal = Calibration(slope=0.5, intercept=-10.0, source="stated")
    res = measure(vol, cortical=True, calibration=cal, metrics=("bvtv", "tbth", "tbsp"))
    c = res.cortical
    assert c["tt_ar_mm2"] == pytest.approx(math.pi * 9, rel=0.03)
    assert c["ct_ar_mm2"] == pytest.approx(math.pi * 5, rel=0.05)
    assert c["ct_th_annulus_mm"] == pytest.approx(1.0, rel=0.05) and len(c["per_slice"]) == 6
    # the trabecular parameters are measured in the trabecular compartment when no VOI is given
    assert res.voi == "trabecular compartment (autocontour)"
    assert res.tv_mm3 == pytest.approx(math.pi * 4 * 6 * 0.05, rel=0.06)
    assert 0.18 < res.tb_th_mm < 0.45  # 0.2 mm struts; their crossings read thicker
    # vBMD = the calibration applied to the compartment's mean HU (linear), cortex densest
    a = vol.numpy()
    assert res.ct_vbmd_mg_cm3 > res.tt_vbmd_mg_cm3 > res.tb_vbmd_mg_cm3 > 0
    assert res.ct_vbmd_mg_cm3 == pytest.approx(0.5 * 1800 - 10, rel=0.05)
    assert res.voi_vbmd_mg_cm3 == res.tb_vbmd_mg_cm3
    plain = measure(vol, calibration=cal, metrics=("bvtv",))
    assert plain.voi_vbmd_mg_cm3 == pytest.approx(0.5 * float(a.mean()) - 10, rel=1e-4)
    assert plain.cortical is None and math.isnan(plain.ct_vbmd_mg_cm3)
    with pytest.raises(ParameterError, match="calibration"):
        measure(Volume((a > 500).astype(np.uint8), 0.05, units="binary"), calibration=cal, metrics=("bvtv",))


def test_cli_cortical_calibration_and_csvs(tmp_path, capsys):
    import csv
    import json

    from trabecula.cli import main
    from trabecula.morphometry.density import Calibration, save_calibration

    vol, _, _ = _tube_with_struts()
    p = write_volume(vol, tmp_path / "tube.nii.gz")
    cal = save_calibration(Calibration(slope=0.5, intercept=-10.0, source="stated"), tmp_path / "cal.json")
    out_csv, slices, seg, js = (tmp_path / n for n in ("r.csv", "slices.csv", "seg.nii.gz", "r.json"))
    code = main(["measure", str(p), "--cortical", "--calibration", str(cal), "--metrics", "bvtv,tbth",
                 "--csv", str(out_csv), "--cortical-csv", str(slices), "--save-segmentation", str(seg),
                 "--json", str(js)])
    text = capsys.readouterr()
    assert code == 0, text.err
    assert "Ct.Th (mm)" in text.out and "Tb.vBMD" in text.out
    row = next(csv.DictReader(open(out_csv)))
    assert float(row["cortical.ct_ar_mm2"]) == pytest.approx(math.pi * 5, rel=0.05)
    assert float(row["ct_vbmd_mg_cm3"]) > float(row["tb_vbmd_mg_cm3"])
    rows = list(csv.DictReader(open(slices)))
    assert len(rows) == 6 and float(rows[0]["tt_ar_mm2"]) == pytest.approx(math.pi * 9, rel=0.03)
    assert read_volume(seg).units == "binary"
    assert json.loads(js.read_text())[0]["cortical"]["n_bones"] == 1
    assert main(["measure", str(p), "--cortical-csv", str(tmp_path / "x.csv")]) == 2
    assert main(["measure", str(p), "--cortical", "--bone", "first"]) == 2
