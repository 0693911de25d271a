"""The twin study on a tiny run (one small phantom): JSON written, resumed; settings it cannot run refused."""

import json
import math

import numpy as np
import pytest

from trabecula.errors import ParameterError
from trabecula.pipeline.twin_study import pearson_r, run_study
from trabecula.volume import Volume

TINY = {"n": 1, "size_mm": 2.5, "voi_diameter_mm": 1.5, "voi_height_mm": 1.5, "mtf": False, "sensitivity_k": 0}


@pytest.mark.slow
def test_twin_study_tiny_run_writes_json_and_resumes(tmp_path):
    out = tmp_path / "ts"
    st = run_study(out, **TINY)
    assert json.loads((out / "twin_study.json").read_text())["phantoms"] == st["phantoms"]
    assert st["summary"]["n"] == 1 and (out / "morphometry.png").stat().st_size > 1000
    assert sorted(p.name for p in out.iterdir()) == ["morphometry.png", "twin_study.json"]  # no temporaries left
    rec = st["phantoms"][0]
    truth = rec["truth"]
    # the calibrated foam lands near the study's micro-CT means (BV/TV 0.18, Tb.Th 0.22 mm)
    assert 0.10 < truth["bv_tv"] < 0.30 and 0.15 < truth["tb_th_mm"] < 0.30
    # micro-CT (52 µm) reads the structure; clinical MDCT (≈0.5 mm resolution) inflates Tb.Th several-fold
    assert abs(rec["micro-ct"]["tb_th_mm"] / truth["tb_th_mm"] - 1) < 0.4
    assert rec["clinical-mdct"]["tb_th_mm"] > 2 * truth["tb_th_mm"]
    assert "clinical-mdct (full)" in rec  # the fast path is checked against the full simulation
    assert "micro-ct within 5 % of truth (mean)" in st["summary"]["checks"]
    # the same scans segmented as micro-CT practice does (calibrated half-way threshold, 2x sub-voxel)
    cal = rec["micro-ct [calibrated]"]
    assert cal["threshold_hu"] > rec["micro-ct"]["threshold_hu"]  # IsoData sits below the half-way HU
    assert cal["bv_tv"] < rec["micro-ct"]["bv_tv"] and cal["tb_th_mm"] < rec["micro-ct"]["tb_th_mm"]
    assert "micro-ct [calibrated]" in st["summary"] and "clinical-mdct (full) [calibrated]" not in rec
    # one phantom: no correlation to report
    assert math.isnan(st["summary"]["micro-ct"]["bv_tv"]["pearson_r"])
    # a second run with the same settings resumes: nothing recomputed
    again = run_study(out, **TINY)
    assert again["phantoms"] == st["phantoms"]


@pytest.mark.parametrize("changes, name", [
    ({"n": 0}, "n"),
    ({"voi_diameter_mm": 9.0}, "voi_diameter"),
    ({"voi_height_mm": 0.0}, "voi_diameter"),
    ({"mode": "warp"}, "mode"),
])
def test_twin_study_refuses_settings_it_cannot_run_before_any_work(tmp_path, changes, name):
    with pytest.raises(ParameterError) as err:
        run_study(tmp_path / "x", **{**TINY, **changes})
    assert err.value.name == name
    assert not (tmp_path / "x").exists()


def test_pearson_r_is_the_library_value_and_nan_where_undefined():
    from trabecula.stats.agreement import pearson

    rng = np.random.default_rng(0)
    a = rng.normal(0.2, 0.02, 12)
    b = 2 * a + rng.normal(0, 0.01, 12)
    assert pearson_r(a, b) == pearson(a, b).r
    assert pearson_r(a, b) == pytest.approx(float(np.corrcoef(a, b)[0, 1]), abs=1e-12)
    assert math.isnan(pearson_r(a[:2], b[:2]))  # fewer than 3 pairs
    assert math.isnan(pearson_r(np.ones(5), b[:5]))  # a constant sample
    assert math.isnan(pearson_r(np.r_[a[:4], np.nan], b[:5]))  # a failed measurement


def test_real_anatomy_summary_gives_the_study_ratios_and_checks():
    from trabecula.pipeline.twin_study import summarize_real

    def rec(scale_mdct):
        truth = {"bv_tv": 0.2, "tb_th_mm": 0.3, "tb_sp_mm": 0.9}
        mct = {k: v * 1.1 for k, v in truth.items()}
        return {"truth": truth, "micro-ct": mct,
                "study-mdct": {k: v * s for (k, v), s in zip(mct.items(), scale_mdct, strict=True)}}

    s = summarize_real([rec((1.8, 3.0, 0.95)), rec((1.7, 3.2, 0.9))], ("micro-ct", "study-mdct"))
    assert s["n"] == 2 and s["study-mdct"]["bv_tv"]["ratio_to_micro-ct"] == pytest.approx(1.75)
    assert s["micro-ct"]["tb_th_mm"]["ratio_to_truth"] == pytest.approx(1.1)
    assert all(s["checks"].values()) and len(s["checks"]) == 6
    bad = summarize_real([rec((1.8, 3.0, 1.2))] * 2, ("micro-ct", "study-mdct"))
    assert not bad["checks"]["study-mdct tb_sp_mm / micro-ct: direction as the study"]


def test_real_anatomy_refuses_a_folder_without_regions(tmp_path):
    from trabecula.pipeline.twin_study import real_part

    with pytest.raises(ParameterError) as err:
        real_part(tmp_path)
    assert err.value.name == "real_data"


def test_study_window_keeps_the_bone_window_for_mdct_and_spans_the_micro_cts_own_range():
    from trabecula.pipeline.twin_study import STUDY_WINDOW, own_range_window, study_window

    v = np.r_[np.full(998, 100.0), -900.0, 5000.0]
    assert study_window("study-mdct", v) == STUDY_WINDOW == (500.0, 2000.0)
    assert study_window("clinical-mdct", v) == STUDY_WINDOW
    level, width = study_window("micro-ct", v)
    lo, hi = np.percentile(v, [0.1, 99.9])
    assert (level, width) == pytest.approx(((lo + hi) / 2, hi - lo)) == own_range_window(v)
    assert own_range_window(np.full(10, 3.0)) == (3.0, 1.0)  # a constant VOI: width 1, no division by 0
    with pytest.raises(ParameterError):
        own_range_window(np.array([np.nan]))


def test_micro_ct_bone_at_4000_hu_saturates_the_bone_window_but_not_its_own_range():
    """Plates 4 voxels thick every 16 (BV/TV 1/3 in the VOI) at 4000 HU in marrow, slightly blurred: in the study's
    bone window a third of the VOI clips at 255, IsoData's edge moves into the marrow and BV/TV over-reads;
    over the scan's own range nothing clips and BV/TV is the truth's within 5 %."""
    from scipy import ndimage as ndi

    from trabecula.pipeline.twin_study import STUDY_WINDOW, measure_study_protocol, study_window

    b = np.zeros((32, 48, 48), np.float32)
    for k in range(6, 48, 16):
        b[:, :, k:k + 4] = 1.0
    hu = ndi.gaussian_filter(b * 4100.0 - 100.0, 0.5)
    vol = Volume(hu.astype(np.float32), (0.05, 0.05, 0.05), (0.0, 0.0, 0.0), "HU")
    voi = np.zeros(b.shape, bool)
    voi[4:-4, 4:-4, 6:42] = True
    truth = float(b[voi].mean())
    bone_win = measure_study_protocol(vol, voi, STUDY_WINDOW)
    own = measure_study_protocol(vol, voi, study_window("micro-ct", hu[voi]))
    assert bone_win["saturated_fraction"] > 0.15 and own["saturated_fraction"] < 0.01
    assert bone_win["bv_tv"] > 1.15 * truth
    assert own["bv_tv"] == pytest.approx(truth, rel=0.05)
    assert own["window_hu"][1] > 3500
