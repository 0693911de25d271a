"""``trabecula iq mtf|nps|noise|cnr`` on volumes written to disk: numbers, JSON, plots and errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.special import erf

from trabecula.cli import main
from trabecula.io import write_volume
from trabecula.quality import gaussian_mtf50
from trabecula.volume import Volume


@pytest.fixture
def edge_file(tmp_path):
    y = (np.arange(96) - 48)[:, None] * 0.1
    x = (np.arange(64) - 32 + 0.3)[None, :] * 0.1
    d = x * math.cos(math.radians(5)) - y * math.sin(math.radians(5))
    img = -1000.0 + 1000.0 * (1 + erf(d / (0.1 * math.sqrt(2))))
    path = tmp_path / "edge.nrrd"
    write_volume(Volume(np.stack([img] * 3).astype(np.float32), (0.5, 0.1, 0.1), units="HU"), path)
    return path


@pytest.fixture
def noise_file(tmp_path):
    rng = np.random.default_rng(0)
    img = rng.normal(0.0, 12.0, (4, 96, 96))
    img[:, 30:60, 30:60] += 60.0
    path = tmp_path / "noise.nii.gz"
    write_volume(Volume(img.astype(np.float32), (1.0, 0.2, 0.2), units="HU"), path)
    return path


def test_iq_mtf_edge_json_and_plot(edge_file, tmp_path, capsys):
    png = tmp_path / "mtf.png"
    assert main(["iq", "mtf", str(edge_file), "--method", "edge", "--json", "--plot", str(png)]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["mtf50_lp_mm"] == pytest.approx(gaussian_mtf50(0.1), rel=0.03)
    assert d["method"] == "edge" and len(d["frequency_lp_mm"]) == len(d["mtf"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["iq", "mtf", str(edge_file), "--plot", str(png)]) == 2       # exists, no --force
    assert main(["iq", "mtf", str(edge_file), "--plot", str(png), "--force", "--roi", "0:3,10:90,10:54"]) == 0
    assert "MTF50" in capsys.readouterr().out


def test_iq_mtf_wire(tmp_path, capsys):
    p, n = 0.05, 48
    yy, xx = (np.mgrid[0:n, 0:n] - n / 2 + 0.3) * p
    psf = 500.0 * np.exp(-(xx ** 2 + yy ** 2) / (2 * 0.08 ** 2)) - 1000.0
    path = tmp_path / "wire.mha"
    write_volume(Volume(np.stack([psf] * 2).astype(np.float32), (0.2, p, p), units="HU"), path)
    assert main(["iq", "mtf", str(path), "--method", "wire", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mtf50_lp_mm"] == pytest.approx(gaussian_mtf50(0.08), rel=0.02)


def test_iq_nps_noise_cnr(noise_file, tmp_path, capsys):
    assert main(["iq", "nps", str(noise_file), "--roi", ":,0:30,:", "--roi-size", "24", "--json",
                 "--plot", str(tmp_path / "nps.png")]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["noise_sd"] == pytest.approx(12.0, rel=0.1) and d["units"] == "HU"
    assert (tmp_path / "nps.png").exists()
    assert main(["iq", "noise", str(noise_file), "--roi", ":,0:25,0:25", "--roi", ":,70:95,70:95", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sd"] == pytest.approx(12.0, rel=0.1)
    assert main(["iq", "cnr", str(noise_file), "--signal", ":,35:55,35:55", "--background", ":,0:25,0:25"]) == 0
    out = capsys.readouterr().out
    assert "CNR" in out
    assert main(["iq", "cnr", str(noise_file), "--signal", ":,35:55,35:55", "--background", ":,0:25,0:25", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cnr"] == pytest.approx(5.0, rel=0.15)


def test_iq_errors_are_one_line_exit_2(noise_file, tmp_path, capsys):
    assert main(["iq", "mtf", str(noise_file), "--method", "slit"]) == 2
    assert "--method" in capsys.readouterr().err
    assert main(["iq", "noise", str(noise_file), "--roi", "0:2,50:10,0:5"]) == 2
    assert "roi" in capsys.readouterr().err
    assert main(["iq", "nps", str(noise_file), "--roi-size", "500"]) == 2
    assert main(["iq", "mtf", str(tmp_path / "missing.nrrd")]) == 2
    assert main(["iq", "mtf", str(noise_file), "--plot", str(tmp_path / "p.jpg")]) == 2
