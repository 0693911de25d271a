"""``trabecula measure`` through the CLI entry point: table, CSV row per input, JSON, maps, errors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from trabecula import Volume
from trabecula.cli import main
from trabecula.io import read_volume, write_volume
from trabecula.phantom import random_field_bone


def run(capsys, *args):
    code = main(list(args))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.fixture
def two_inputs(tmp_path):
    a = write_volume(random_field_bone((30, 40, 40), spacing=0.05, seed=1), tmp_path / "a.nii.gz")
    b = write_volume(random_field_bone((30, 40, 40), spacing=0.05, seed=2), tmp_path / "b.nrrd")
    return a, b


def test_measure_two_inputs_csv_json_maps(capsys, two_inputs, tmp_path):
    a, b = two_inputs
    csv_p, json_p, maps = tmp_path / "r.csv", tmp_path / "r.json", tmp_path / "maps"
    code, out, err = run(capsys, "measure", str(a), str(b), "--voi", "cylinder:d=1.5,h=1", "--csv", str(csv_p),
                         "--json", str(json_p), "--maps", str(maps), "--metrics", "bvtv,tbth,tbsp,tbn,connd")
    assert code == 0, err
    assert "BV/TV" in out and "a.nii.gz" in out and "b.nrrd" in out
    rows = list(csv.DictReader(open(csv_p)))
    assert len(rows) == 2 and rows[0]["source"].endswith("a.nii.gz")
    assert 0 < float(rows[0]["bv_tv"]) < 1 and float(rows[1]["tb_th_mm"]) > 0
    data = json.loads(json_p.read_text())
    assert len(data) == 2 and data[0]["voi"].startswith("cylinder")
    th = read_volume(maps / "a_tb_th.nii.gz")
    assert th.units == "mm" and th.shape == (30, 40, 40) and float(th.numpy().max()) > 0
    # outputs are not overwritten without --force
    code, _, err = run(capsys, "measure", str(a), "--csv", str(csv_p), "--metrics", "bvtv")
    assert code == 2 and "already exists" in err
    assert run(capsys, "measure", str(a), "--csv", str(csv_p), "--metrics", "bvtv", "--force")[0] == 0


def test_measure_binary_with_input_spacing_and_bonej(capsys, tmp_path):
    b = np.zeros((20, 24, 24), np.uint8)
    b[7:14] = 1  # a 7-voxel plate
    p = write_volume(Volume(b, 1.0, units="binary"), tmp_path / "plate.nrrd")
    j = tmp_path / "o.json"
    code, _, err = run(capsys, "measure", str(p), "--input-spacing", "0.05", "--metrics", "tbth", "--bonej",
                       "--json", str(j))
    assert code == 0, err
    d = json.loads(j.read_text())[0]
    assert d["tb_th_mm"] == pytest.approx(8 * 0.05, rel=0.01) and d["mode"] == "bonej"


@pytest.mark.parametrize("mode, expected_voxels", [("plain", 8), ("subvoxel", 7), ("bonej", 8), (None, 8)])
def test_measure_mode_option(capsys, tmp_path, mode, expected_voxels):
    # a 7-voxel plate: the definition on voxel centres (plain, the default, and BoneJ) reads 8 voxels,
    # the subvoxel mode 7
    b = np.zeros((20, 24, 24), np.uint8)
    b[7:14] = 1
    p = write_volume(Volume(b, 0.05, units="binary"), tmp_path / "plate.nrrd")
    j = tmp_path / "o.json"
    args = ["--mode", mode] if mode else []
    code, out, err = run(capsys, "measure", str(p), "--metrics", "tbth", *args, "--json", str(j))
    assert code == 0, err
    d = json.loads(j.read_text())[0]
    mode = mode or "plain"
    assert d["mode"] == mode and f"{'BoneJ' if mode == 'bonej' else mode} mode" in out
    assert d["tb_th_mm"] == pytest.approx(expected_voxels * 0.05, rel=0.01)


def test_measure_upsample_option(capsys, two_inputs, tmp_path):
    a, _ = two_inputs  # HU volumes
    j = tmp_path / "u.json"
    code, _, err = run(capsys, "measure", str(a), "--voi", "cylinder:d=1.5,h=1", "--metrics", "bvtv,tbth",
                       "--upsample", "2", "--json", str(j))
    assert code == 0, err
    d = json.loads(j.read_text())[0]
    assert d["upsample"] == 2 and "interpolated 2x" in d["threshold_method"] and d["tb_th_mm"] > 0
    b = write_volume(Volume(np.ones((8, 8, 8), np.uint8), 0.1, units="binary"), tmp_path / "bin.nrrd")
    code, _, err = run(capsys, "measure", str(b), "--upsample", "2")
    assert code == 2 and "upsample" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("args, needle", [
    (["--upsample", "9"], "--upsample"),
    (["--mode", "exact"], "--mode"),
    (["--mode", "plain", "--bonej"], "--mode"),
    (["--voi", "cylinder:d=50,h=5"], "beyond the image"),
    (["--threshold", "magic"], "--threshold"),
    (["--metrics", "bvtv,volume"], "--metrics"),
    (["--border", "mirror"], "--border"),
    (["--voi", "/nonexistent/mask.nii.gz"], "not found"),
])
def test_measure_bad_input_one_line_exit_2(capsys, two_inputs, args, needle):
    a, _ = two_inputs
    code, _, err = run(capsys, "measure", str(a), *args)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1


def test_measure_no_bone_prints_nan_and_warning_exit_0(capsys, tmp_path):
    p = write_volume(Volume(np.zeros((16, 16, 16), np.uint8), 0.1, units="binary"), tmp_path / "empty.nrrd")
    j = tmp_path / "e.json"
    code, out, err = run(capsys, "measure", str(p), "--metrics", "bvtv,tbth,tbsp,connd", "--json", str(j))
    assert code == 0, err
    assert "no bone" in out and "nan" in out.lower()
    d = json.loads(j.read_text())[0]
    assert d["bv_tv"] == 0.0 and d["tb_th_mm"] != d["tb_th_mm"]  # NaN, not 0


def test_measure_non_binary_mask_file_is_one_line_error(capsys, two_inputs, tmp_path):
    a, _ = two_inputs
    m = write_volume(Volume(np.arange(30 * 40 * 40, dtype=np.float32).reshape(30, 40, 40) % 7, 0.05),
                     tmp_path / "mask.nii.gz")
    code, _, err = run(capsys, "measure", str(a), "--voi", str(m), "--metrics", "bvtv")
    assert code == 2 and "a label map" in err and len(err.strip().splitlines()) == 1
