"""``trabecula phantom``: writes labels (+ truth), keeps the material map, and rejects bad settings."""

from __future__ import annotations

import numpy as np

from trabecula.cli import main
from trabecula.io import read_volume
from trabecula.phantom import LABEL


def test_phantom_cli_writes_labels_truth_and_materials(tmp_path, capsys):
    out, truth, voi = tmp_path / "vb.nrrd", tmp_path / "vb_truth.nii.gz", tmp_path / "vb_voi.nii.gz"
    code = main(["phantom", "--kind", "vertebra", "--size", "3,5,6", "--voxel", "0.05", "--seed", "3",
                 "-o", str(out), "--truth", str(truth), "--voi", str(voi)])
    assert code == 0
    lab = read_volume(out)
    assert lab.units == "label" and lab.spacing == (0.05, 0.05, 0.05)
    mats = lab.provenance.extra["materials"]
    assert mats[str(LABEL["bone"])] == "bone" and mats[str(LABEL["soft_tissue"])] == "soft_tissue"
    t = read_volume(truth).numpy().astype(bool)
    assert t.shape == lab.shape and np.all(lab.numpy()[t] == LABEL["bone"])
    assert read_volume(voi).numpy().any()
    assert "vertebral body" in capsys.readouterr().out
    # refuses to overwrite, then overwrites with --force
    assert main(["phantom", "--kind", "vertebra", "--size", "3,5,6", "-o", str(out)]) == 2
    assert main(["phantom", "--kind", "wire", "--size", "0.03", "--voxel", "0.01", "-o", str(out), "--force"]) == 0
    assert read_volume(out).provenance.extra["materials"][str(LABEL["tungsten"])] == "tungsten"


def test_phantom_cli_uncalibrated_cube_and_bad_settings(tmp_path, capsys):
    out = tmp_path / "cube.mha"
    assert main(["phantom", "--kind", "trabecular-cube", "--size", "1", "--voxel", "0.05", "--no-calibrate",
                 "-o", str(out)]) == 0
    assert read_volume(out).shape == (20, 20, 20)
    capsys.readouterr()
    assert main(["phantom", "--kind", "donut", "-o", str(tmp_path / "x.nrrd")]) == 2
    assert "--kind" in capsys.readouterr().err
    assert main(["phantom", "--kind", "trabecular-cube", "--bvtv", "1.5", "-o", str(tmp_path / "x.nrrd")]) == 2
    assert "bvtv" in capsys.readouterr().err
    assert main(["phantom", "--kind", "water", "--voxel", "-0.1", "-o", str(tmp_path / "x.nrrd")]) == 2
    assert main(["phantom", "--kind", "wire", "--truth", str(tmp_path / "t.nrrd"), "-o", str(tmp_path / "w.nrrd")]) == 2
    assert "truth" in capsys.readouterr().err
    assert main(["phantom", "--kind", "lookalike", "-o", str(tmp_path / "x.nrrd")]) == 2
    assert not (tmp_path / "x.nrrd").exists()
