"""``trabecula calibrate`` through the CLI entry point: the rods' table and the file; bad input is one line and
exit code 2."""

from __future__ import annotations

import json

import pytest

from trabecula.cli import main
from trabecula.io import write_volume


def run(capsys, *args):
    code = main(list(args))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.fixture(scope="module")
def scan_file(tmp_path_factory):
    from trabecula.phantom import calibration_phantom
    from trabecula.scanner import scan

    vol = scan(calibration_phantom(voxel_mm=0.1), "clinical-mdct", mode="fast", seed=0)
    return write_volume(vol, tmp_path_factory.mktemp("cal") / "phantom.nii.gz")


def test_calibrate_writes_the_fit_and_prints_the_rods(capsys, scan_file, tmp_path):
    out = tmp_path / "cal.json"
    code, text, err = run(capsys, "calibrate", str(scan_file), "--densities", "0,100,200,400,800", "--out", str(out))
    assert code == 0, err
    assert "mean HU" in text and "residual %" in text and "r²" in text and "wrote" in text
    d = json.loads(out.read_text())
    assert d["method"] == "detected" and len(d["rods"]) == 5 and d["slope"] > 0
    code, _, err = run(capsys, "calibrate", str(scan_file), "--densities", "0,100,200,400,800", "--out", str(out))
    assert code == 2 and "already exists" in err


@pytest.mark.parametrize(("args", "name"), [
    (["--densities", "0,100,x"], "--densities"),
    (["--densities", "100"], "--densities"),
    (["--densities", "0,100,200,400,800", "--rois", "0,1,2"], "--rois"),
    (["--densities", "0,100,200,400,800", "--units", "grey"], "phantom.nii.gz"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, scan_file, tmp_path, args, name):
    code, _, err = run(capsys, "calibrate", str(scan_file), "--out", str(tmp_path / "c.json"), *args)
    assert code == 2 and name in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "c.json").exists()
