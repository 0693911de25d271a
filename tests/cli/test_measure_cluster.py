"""``trabecula measure --chunks`` (block by block, maps as OME-Zarr) and ``--batch`` (a folder or CSV list of
scans, resumable), and their bad inputs: one line, exit 2."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from trabecula import Volume
from trabecula.cli import main
from trabecula.io import read_volume, write_volume
from trabecula.morphometry.thickness import local_thickness


def run(capsys, *args):
    code = main([str(a) for a in args])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def one_line_error(code, err, *names):
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, lines
    for n in names:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def _struts(seed: int, shape=(30, 34, 38)) -> np.ndarray:
    """A random foam-like binary: thresholded smoothed noise (struts and pores of a few voxels)."""
    from scipy import ndimage

    g = ndimage.gaussian_filter(np.random.default_rng(seed).standard_normal(shape), 2.0)
    return (g > 0.02).astype(np.uint8)


@pytest.fixture
def binary_zarr(tmp_path):
    vol = Volume(_struts(0), (0.05, 0.05, 0.05), units="binary")
    return write_volume(vol, tmp_path / "bone.ome.zarr"), vol


def test_chunks_cli_equals_in_memory_and_writes_the_maps(tmp_path, capsys, binary_zarr):
    path, vol = binary_zarr
    code, out, err = run(capsys, "measure", path, "--metrics", "bvtv,tbth,tbsp,connd", "--json", tmp_path / "a.json")
    assert code == 0, err
    code, out, err = run(capsys, "measure", path, "--chunks", "12,16,20", "--metrics", "bvtv,tbth,tbsp,connd",
                         "--json", tmp_path / "b.json", "--maps", tmp_path / "maps")
    assert code == 0, err
    a, b = (json.loads((tmp_path / f"{k}.json").read_text())[0] for k in "ab")
    assert a["bv_tv"] == b["bv_tv"] and a["euler_char"] == b["euler_char"]
    for k in ("tb_th_mm", "tb_sp_mm", "conn_d_per_mm3"):
        assert b[k] == pytest.approx(a[k], rel=1e-6), k
    th = read_volume(tmp_path / "maps" / "tbth.ome.zarr")
    assert th.spacing == pytest.approx((0.05, 0.05, 0.05)) and th.units == "mm"
    expect = local_thickness(vol.numpy() != 0, 0.05)
    np.testing.assert_allclose(th.numpy(), expect, rtol=1e-6)


def test_batch_over_a_folder_is_resumable_and_reports_a_bad_scan(tmp_path, capsys):
    scans = tmp_path / "scans"
    scans.mkdir()
    for k in range(3):
        write_volume(Volume(_struts(k, (20, 22, 24)), (0.05,) * 3, units="binary"), scans / f"s{k}.nrrd")
    res = tmp_path / "rows.csv"
    code, out, err = run(capsys, "measure", scans, "--batch", "--csv", res, "--metrics", "bvtv,tbth")
    assert code == 0, err
    rows = list(csv.DictReader(open(res)))
    assert [r["source"].rsplit("/", 1)[-1] for r in rows] == ["s0.nrrd", "s1.nrrd", "s2.nrrd"]
    assert all(0 < float(r["bv_tv"]) < 1 and float(r["tb_th_mm"]) > 0 for r in rows)
    # a new scan and a broken one: the three measured are skipped, the new one added, the broken one named
    write_volume(Volume(_struts(7, (20, 22, 24)), (0.05,) * 3, units="binary"), scans / "s3.nrrd")
    (scans / "s4.nrrd").write_bytes(b"NRRD0004\ntype: float\n")
    code, out, err = run(capsys, "measure", scans, "--batch", "--csv", res, "--metrics", "bvtv,tbth")
    assert "3 scans already in" in out
    one_line_error(code, err, "--batch", "1 scans")
    assert "s4.nrrd" in out
    rows2 = list(csv.DictReader(open(res)))
    assert len(rows2) == 4 and rows2[:3] == rows


def test_batch_from_a_csv_list_with_per_scan_spacing(tmp_path, capsys):
    a = _struts(1, (20, 22, 24))
    for name in ("x.nrrd", "y.nrrd"):
        write_volume(Volume(a, (1.0,) * 3, units="binary"), tmp_path / name)
    (tmp_path / "list.csv").write_text("path,input_spacing\nx.nrrd,0.05\ny.nrrd,0.1\n")
    code, out, err = run(capsys, "measure", tmp_path / "list.csv", "--batch", "--csv", tmp_path / "r.csv",
                         "--metrics", "tbth")
    assert code == 0, err
    rows = list(csv.DictReader(open(tmp_path / "r.csv")))
    th = {r["source"].rsplit("/", 1)[-1]: float(r["tb_th_mm"]) for r in rows}
    assert th["y.nrrd"] == pytest.approx(2 * th["x.nrrd"], rel=1e-6) and th["x.nrrd"] < 1.0
    # the same scan twice is refused (rows are keyed by the scan's path)
    (tmp_path / "dup.csv").write_text("path\nx.nrrd\nx.nrrd\n")
    code, out, err = run(capsys, "measure", tmp_path / "dup.csv", "--batch", "--csv", tmp_path / "r2.csv")
    one_line_error(code, err, "dup.csv", "line 3")


@pytest.mark.parametrize("args, names", [
    (("--chunks", "auto", "--scheduler", "tcp://127.0.0.1:9"), ("--scheduler", "cannot reach")),
    (("--chunks", "auto", "--workers", "0"), ("--workers",)),
    (("--chunks", "2,2"), ("--chunks",)),
    (("--chunks", "auto", "--smooth", "0.1"), ("--smooth",)),
    (("--chunks", "auto", "--voi", "cylinder:d=1,h=1"), ("--voi",)),
    (("--workers", "2",), ("--workers", "--chunks")),
    (("--batch",), ("--csv",)),
])
def test_cluster_options_bad_input_is_one_line(tmp_path, capsys, binary_zarr, args, names):
    path, _ = binary_zarr
    code, out, err = run(capsys, "measure", path, "--metrics", "bvtv", *args)
    line = one_line_error(code, err, *names)
    assert code == 2 and line.startswith("error: ") and all(n in line for n in names), line
    assert "Traceback" not in err and "BV/TV" not in out  # refused before measuring anything


def test_missing_chunk_is_one_line_naming_the_file(tmp_path, capsys):
    vol = Volume(_struts(2), (0.05,) * 3, units="binary")
    path = write_volume(vol, tmp_path / "m.ome.zarr", chunks=(16, 16, 16))
    chunk_files = sorted(p for p in (path / "s0" / "c").rglob("*") if p.is_file())
    assert len(chunk_files) == 2 * 3 * 3
    chunk_files[4].unlink()
    code, out, err = run(capsys, "measure", path, "--chunks", "auto", "--metrics", "bvtv")
    one_line_error(code, err, "m.ome.zarr", "chunk")
