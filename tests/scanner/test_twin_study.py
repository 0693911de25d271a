"""The ``trabecula twin-study`` verb on a tiny study (one small phantom): JSON written, resumed, bad VOI refused."""

import json

import pytest

from trabecula.cli import main

ARGS = ["-n", "1", "--size", "2.5", "--voi-diameter", "1.5", "--voi-height", "1.5", "--no-mtf", "--sensitivity", "0"]


def run(capsys, *args):
    code = main(["twin-study", *map(str, args)])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.mark.slow
def test_twin_study_verb_tiny_run_writes_json_and_resumes(capsys, tmp_path):
    out = tmp_path / "ts"
    code, text, err = run(capsys, "--out", out, *ARGS)
    assert code == 0, err
    st = json.loads((out / "twin_study.json").read_text())
    assert st["summary"]["n"] == 1 and (out / "morphometry.png").stat().st_size > 1000
    rec = st["phantoms"][0]
    truth = rec["truth"]
    # the calibrated foam lands near the study's micro-CT means (BV/TV 0.18, Tb.Th 0.22 mm)
    assert 0.10 < truth["bv_tv"] < 0.30 and 0.15 < truth["tb_th_mm"] < 0.30
    # micro-CT (52 µm) reads the structure; clinical MDCT (≈0.5 mm resolution) inflates Tb.Th several-fold
    assert abs(rec["micro-ct"]["tb_th_mm"] / truth["tb_th_mm"] - 1) < 0.4
    assert rec["clinical-mdct"]["tb_th_mm"] > 2 * truth["tb_th_mm"]
    assert "clinical-mdct (full)" in rec  # the fast path is checked against the full simulation
    assert "micro-ct within 5 % of truth (mean)" in text  # checks printed
    # the same scans segmented as micro-CT practice does (calibrated half-way threshold, 2x sub-voxel)
    cal = rec["micro-ct [calibrated]"]
    assert cal["threshold_hu"] > rec["micro-ct"]["threshold_hu"]  # IsoData sits below the half-way HU
    assert cal["bv_tv"] < rec["micro-ct"]["bv_tv"] and cal["tb_th_mm"] < rec["micro-ct"]["tb_th_mm"]
    assert "micro-ct [calibrated]" in st["summary"] and "clinical-mdct (full) [calibrated]" not in rec
    # a second run with the same settings resumes: nothing recomputed
    code, _, err = run(capsys, "--out", out, *ARGS)
    assert code == 0, err
    assert json.loads((out / "twin_study.json").read_text())["phantoms"] == st["phantoms"]


@pytest.mark.parametrize("args, needle", [
    (["-n", "0"], "-n"),
    (["--voi-diameter", "9", "--size", "2.5"], "--voi-diameter"),
    (["--mode", "warp"], "--mode"),
])
def test_twin_study_verb_bad_settings_exit_2(capsys, tmp_path, args, needle):
    code, _, err = run(capsys, "--out", tmp_path / "x", *args)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1
