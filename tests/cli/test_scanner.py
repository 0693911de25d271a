"""The scanner verbs through trabecula.cli.main: scanners, scan, recon; bad settings → one line, exit 2."""

import pytest

from tests.conftest import data_path
from trabecula.cli import main
from trabecula.io import read_projections, read_volume, write_volume
from trabecula.phantom.objects import cylinder_labels as cylinder_phantom


def run(capsys, *args):
    code = main([str(a) for a in args])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_scanners_lists_and_shows_presets(capsys):
    code, out, _ = run(capsys, "scanners")
    assert code == 0 and "uhr-extremity" in out and "micro-ct" in out
    code, out, _ = run(capsys, "scanners", "--show", "clinical-mdct")
    assert code == 0 and "mas = 250.0" in out and "[stated]" in out
    assert run(capsys, "scanners", "--show", "ct-9000")[0] == 2


@pytest.fixture
def phantom_file(tmp_path):
    return write_volume(cylinder_phantom(diameter_mm=6.0, height_mm=1.5, voxel_mm=0.1, box_mm=7.0, rod_mm=1.0, rod_at_mm=1.5),
                        tmp_path / "ph.nrrd")


@pytest.mark.slow
def test_scan_full_with_projections_then_recon(capsys, tmp_path, phantom_file):
    rec, proj, png = tmp_path / "rec.nii.gz", tmp_path / "p.h5", tmp_path / "rec.png"
    code, out, err = run(capsys, "scan", phantom_file, "--scanner", "clinical-mdct", "--mas", "100", "--seed", "2",
                         "--save-projections", proj, "--png", png, "-o", rec)
    assert code == 0, err
    v = read_volume(rec)
    assert v.units == "HU" and v.spacing[1] == pytest.approx(0.1953125) and png.stat().st_size > 100
    p = read_projections(proj)
    assert p.geometry["scanner"]["exposure"]["mas"] == 100.0 and p.flats is not None
    # recon of the saved projections reproduces the scan (same numba FDK)
    rec2 = tmp_path / "rec2.nii.gz"
    code, _, err = run(capsys, "recon", proj, "-o", rec2)
    assert code == 0, err
    assert abs(read_volume(rec2).numpy() - v.numpy()).max() < 0.5
    # refuses to overwrite; --force works
    assert run(capsys, "scan", phantom_file, "--scanner", "clinical-mdct", "-o", rec)[0] == 2


def test_scan_fast_and_user_toml(capsys, tmp_path, phantom_file):
    from trabecula.scanner import load_scanner

    toml = tmp_path / "my.toml"
    toml.write_text(load_scanner("clinical-mdct").replace(name="my-mdct", exposure={"mas": 80.0}).to_toml())
    out_path = tmp_path / "fast.nrrd"
    code, out, err = run(capsys, "scan", phantom_file, "--scanner", toml, "--mode", "fast", "-o", out_path)
    assert code == 0, err
    v = read_volume(out_path)
    assert v.provenance.scanner == "my-mdct" and v.units == "HU"


def test_scan_fast_with_body_and_medium_records_both(capsys, tmp_path, phantom_file):
    out_path = tmp_path / "body.nrrd"
    code, out, err = run(capsys, "scan", phantom_file, "--scanner", "clinical-mdct", "--mode", "fast",
                         "--body", "lumbar", "--medium", "soft-tissue", "-o", out_path)
    assert code == 0, err
    assert "body lumbar" in out and "medium soft_tissue" in out
    ex = read_volume(out_path).provenance.extra
    assert ex["body"] == "lumbar" and ex["medium"] == "soft_tissue" and ex["body_size_mm"] == [320.0, 240.0]


@pytest.mark.parametrize("args, needle", [
    (["--scanner", "clinical-mdct", "--mas", "-5"], "mas"),
    (["--scanner", "clinical-mdct", "--mode", "fast", "--body", "torso"], "body"),
    (["--scanner", "clinical-mdct", "--mode", "fast", "--medium", "honey"], "medium"),
    (["--scanner", "uhr-extremity", "--mode", "fast", "--body", "lumbar"], "body"),  # wider than its 122 mm FOV
    (["--scanner", "micro-ct"], "phantom.spacing"),  # a 0.1 mm phantom is coarser than 52 µm voxels
    (["--scanner", "clinical-mdct", "--mode", "warp"], "--mode"),
    (["--scanner", "nope"], "scanner"),
])
def test_scan_bad_settings_give_one_line_exit_2(capsys, tmp_path, phantom_file, args, needle):
    code, _, err = run(capsys, "scan", phantom_file, *args, "-o", tmp_path / "x.nrrd")
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1


def test_scan_bad_toml_names_the_field(capsys, tmp_path, phantom_file):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "b"\n[reconstruction]\nvoxel_mm = 500.0\n')
    code, _, err = run(capsys, "scan", phantom_file, "--scanner", bad, "-o", tmp_path / "x.nrrd")
    assert code == 2 and "reconstruction.voxel_mm" in err


@pytest.mark.slow
def test_recon_tooth_auto_centre_rings_png(capsys, tmp_path):
    out_path, png = tmp_path / "tooth.nrrd", tmp_path / "tooth.png"
    code, out, err = run(capsys, "recon", data_path("tooth_projections", "tooth.h5"), "--center", "auto", "--rings",
                         "-o", out_path, "--png", png)
    assert code == 0, err
    v = read_volume(out_path)
    assert v.shape == (2, 640, 640) and abs(v.provenance.extra["center_px"] - 296.0) <= 1.5
    assert png.stat().st_size > 1000 and "rotation centre" in out
    code, _, err = run(capsys, "recon", data_path("tooth_projections", "tooth.h5"), "--center", "left", "-o", tmp_path / "t2.nrrd")
    assert code == 2 and "--center" in err


@pytest.mark.slow
def test_recon_real_projections_default_to_the_searched_centre(capsys, tmp_path):
    """Without --center, real parallel-beam data get the entropy-searched centre (the tooth's axis is at ≈ 296 px
    of 640, not the detector middle 319.5), and the output names it; an explicit --center is used as given."""
    tooth = data_path("tooth_projections", "tooth.h5")
    code, out, err = run(capsys, "recon", tooth, "-o", tmp_path / "auto.nrrd")
    assert code == 0, err
    c = read_volume(tmp_path / "auto.nrrd").provenance.extra["center_px"]
    assert abs(c - 296.0) <= 3.0
    assert f"rotation centre {c:.2f} px (auto" in out and "--center" in out
    code, out, err = run(capsys, "recon", tooth, "--center", "300.5", "-o", tmp_path / "given.nrrd")
    assert code == 0, err
    assert read_volume(tmp_path / "given.nrrd").provenance.extra["center_px"] == 300.5
    assert "rotation centre 300.50 px (given)" in out
    code, out, err = run(capsys, "recon", tooth, "--center", "middle", "-o", tmp_path / "middle.nrrd")
    assert code == 0 and "rotation centre 319.50 px (detector middle)" in out
    for bad in ("900", "nan", "left"):
        code, _, err = run(capsys, "recon", tooth, "--center", bad, "-o", tmp_path / "bad.nrrd")
        assert code == 2 and err.startswith("error: --center:") and len(err.strip().splitlines()) == 1, bad
        assert not (tmp_path / "bad.nrrd").exists()


def test_shown_toml_is_valid_on_a_narrow_console_and_huge_settings_are_refused_before_allocating(capsys, tmp_path,
                                                                                                  phantom_file,
                                                                                                  monkeypatch):
    import tomllib

    from trabecula.cli._app import out as console

    monkeypatch.setattr(console, "_width", 40)  # a pipe or a narrow terminal: long comment lines must not wrap
    code, text, _ = run(capsys, "scanners", "--show", "clinical-mdct")
    assert code == 0
    cfg = tomllib.loads(text)
    monkeypatch.undo()
    toml = tmp_path / "big.toml"
    toml.write_text(text.replace(f"views = {cfg['geometry']['views']}", "views = 100000000", 1))
    code, _, err = run(capsys, "scan", phantom_file, "--scanner", toml, "-o", tmp_path / "s.nii.gz")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "geometry.views" in lines[0] and "memory budget" in lines[0]
    assert not (tmp_path / "s.nii.gz").exists()
