"""The command line: --version, --help on every verb, info/convert, and bad inputs → one line, exit 2."""

import json
import subprocess
import sys

import numpy as np
import pytest

from trabecula import Volume, __version__
from trabecula.cli import app, main
from trabecula.io import read_volume, write_volume


def run(capsys, *args):
    code = main(list(args))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_version(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and __version__ in out


def test_help_on_every_verb(capsys):
    import typer.main

    group = typer.main.get_command(app)
    verbs = list(group.commands)
    assert {"info", "convert", "demo"} <= set(verbs)
    for verb in verbs:
        code, out, _ = run(capsys, verb, "--help")
        assert code == 0, verb
        assert "Usage" in out, verb


def test_console_script_installed():
    r = subprocess.run([sys.executable, "-m", "trabecula.cli", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and __version__ in r.stdout


@pytest.fixture
def hu_nrrd(tmp_path):
    a = np.full((6, 20, 20), -50, np.int16)
    a[:, 5:10, 5:10] = 1200
    return write_volume(Volume(a, (0.5, 0.2, 0.2), units="HU"), tmp_path / "in.nrrd")


def test_info_reports_geometry_and_bone_fraction(capsys, hu_nrrd):
    code, out, _ = run(capsys, "info", str(hu_nrrd), "--json")
    assert code == 0
    d = json.loads(out)
    assert d["shape_zyx"] == [6, 20, 20] and d["spacing_mm_zyx"] == [0.5, 0.2, 0.2]
    assert d["units"] == "HU" and d["min"] == -50 and d["max"] == 1200
    assert d["bone_fraction"] == pytest.approx(25 / 400)
    code, out, _ = run(capsys, "info", str(hu_nrrd))
    assert code == 0 and "bone fraction" in out and "0.0625" in out


def test_info_on_projections_names_the_angle_range_views_and_step(capsys):
    from tests.conftest import data_path

    tooth = str(data_path("tooth_projections", "tooth.h5"))
    code, out, err = run(capsys, "info", tooth)
    assert code == 0, err
    assert "angles 0–179° (181 views, step 0.99°)" in " ".join(out.split()) and " × 179" not in out
    assert "2 rows × 640 columns" in out
    code, out, _ = run(capsys, "info", tooth, "--json")
    d = json.loads(out)
    assert d["angles"] == 181 and d["angle_range_deg"][0] == 0.0 and round(d["angle_range_deg"][1]) == 179
    assert d["angle_step_deg"] == pytest.approx([180 / 181] * 2)


def test_projection_rows_uneven_steps_and_one_view():
    from trabecula.io.info import projection_rows

    s = {"source": "p.h5", "angles": 4, "angle_range_deg": [0.0, 180.0], "angle_step_deg": [30.0, 90.0],
         "detector_rows_cols": [1, 8], "flats": 0, "darks": 0, "counts_range": [1.0, 2.0]}
    rows = dict(projection_rows(s))
    assert rows["angles"] == "0–180° (4 views, steps 30–90°)"
    rows = dict(projection_rows({**s, "angles": 1, "angle_range_deg": [5.0, 5.0], "angle_step_deg": []}))
    assert rows["angles"] == "5° (1 view)"


def test_convert_crop_resample_window(capsys, hu_nrrd, tmp_path):
    dst = tmp_path / "out.nii.gz"
    code, _, err = run(capsys, "convert", str(hu_nrrd), str(dst), "--crop", "1:5,,0:10", "--spacing", "0.5,0.4,0.4", "--window", "bone")
    assert code == 0, err
    v = read_volume(dst)
    assert v.shape == (4, 10, 5) and v.units == "grey" and v.dtype == np.uint8
    assert v.spacing == pytest.approx((0.5, 0.4, 0.4))
    # refuses to overwrite, then --force works
    code, _, err = run(capsys, "convert", str(hu_nrrd), str(dst))
    assert code == 2 and "already exists" in err
    assert run(capsys, "convert", str(hu_nrrd), str(dst), "--force")[0] == 0


def _bad_inputs(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    txt = tmp_path / "notes.dcm"
    txt.write_text("this is not DICOM\n")
    import tifffile

    good = tmp_path / "good.tif"
    tifffile.imwrite(good, np.zeros((8, 64, 64), np.uint16), imagej=True)
    trunc = tmp_path / "trunc.tif"
    trunc.write_bytes(good.read_bytes()[:3000])
    mixed = tmp_path / "mixed"
    for name in ("a", "b"):
        p = write_volume(Volume(np.zeros((3, 4, 4), np.int16), 1.0, units="HU"), tmp_path / name, format="dicom")
        for f in p.iterdir():
            mixed.mkdir(exist_ok=True)
            f.rename(mixed / f"{name}_{f.name}")
    import nibabel as nib

    a = np.ones((4, 4, 4), np.float32)
    a[1, 1, 1] = np.nan
    nan = tmp_path / "nan.nii.gz"
    nib.save(nib.Nifti1Image(a, np.eye(4)), nan)
    missing = tmp_path / "nope.nrrd"
    unsupported = tmp_path / "scan.xyz"
    unsupported.write_text("1 2 3")
    zero = tmp_path / "zero.nrrd"
    zero.write_bytes(b"")
    return {
        "empty folder": (empty, "empty"),
        "text file named .dcm": (txt, "not a DICOM"),
        "truncated TIFF": (trunc, "TIFF"),
        "mixed-series folder": (mixed, "2 DICOM series"),
        "NIfTI with NaNs": (nan, "NaN"),
        "missing file": (missing, "no such file"),
        "unsupported type": (unsupported, "unsupported"),
        "empty file": (zero, "empty"),
    }


@pytest.mark.parametrize("case", ["empty folder", "text file named .dcm", "truncated TIFF", "mixed-series folder",
                                  "NIfTI with NaNs", "missing file", "unsupported type", "empty file"])
@pytest.mark.parametrize("verb", ["info", "convert"])
def test_bad_input_one_line_exit_2_no_output(capsys, tmp_path, case, verb):
    path, expect = _bad_inputs(tmp_path)[case]
    dst = tmp_path / "out_dir" / "out.nrrd"
    args = [verb, str(path)] + ([str(dst)] if verb == "convert" else [])
    code, out, err = run(capsys, *args)
    assert code == 2, (case, out, err)
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("error")]
    assert len(lines) == 1, err
    assert expect.lower() in lines[0].lower(), lines[0]
    assert str(path.name) in lines[0]
    assert "Traceback" not in err
    assert not dst.exists()
    assert not (tmp_path / "out_dir").exists()


def test_debug_shows_traceback(tmp_path):
    from trabecula.errors import InputError

    with pytest.raises(InputError):
        main(["--debug", "info", str(tmp_path / "missing.nii")])


def test_bad_parameter_is_one_line(capsys, hu_nrrd, tmp_path):
    code, _, err = run(capsys, "convert", str(hu_nrrd), str(tmp_path / "o.nrrd"), "--crop", "1:2")
    assert code == 2 and "--crop" in err
    code, _, err = run(capsys, "convert", str(hu_nrrd), str(tmp_path / "o.nrrd"), "--spacing", "-1")
    assert code == 2 and "spacing" in err
    code, _, err = run(capsys, "convert", str(hu_nrrd), str(tmp_path / "o.unknown"))
    assert code == 2 and "format" in err
