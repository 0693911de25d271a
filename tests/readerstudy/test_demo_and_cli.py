"""The demo's reader study from in-memory volumes, and the command line (create, add-reader, analyse; bad
input is one line and exit code 2)."""

from __future__ import annotations

import sqlite3

import numpy as np

from tests.readerstudy.conftest import make_volumes
from trabecula.cli import main
from trabecula.pipeline.demo_readerstudy import make_demo_study
from trabecula.readerstudy import create_study, pick_slices
from trabecula.volume import Volume


def test_demo_study_crops_micro_ct_to_the_enhanced_region(tmp_path):
    rng = np.random.default_rng(0)
    micro = Volume(rng.normal(0, 1, (20, 60, 60)).astype(np.float32), 0.05, units="HU")
    like = Volume(rng.normal(0, 1, (10, 30, 30)).astype(np.float32), 0.05, origin=(0.25, 0.5, 0.5), units="HU")
    res = make_demo_study(tmp_path / "demo.db", micro, like, per_method=4)
    assert res["methods"] == {"micro-CT": 4, "micro-CT-like (pix2pixHD)": 4}
    con = sqlite3.connect(tmp_path / "demo.db")
    assert con.execute("select count(*) from image").fetchone() == (8,)
    con.close()


def test_slices_are_picked_reproducibly_from_the_seed(tmp_path):
    assert pick_slices([10, 20], 5, seed=7) == pick_slices([10, 20], 5, seed=7)
    assert pick_slices([10, 20], 5, seed=7) != pick_slices([10, 20], 5, seed=8)
    vols = make_volumes(tmp_path)
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    create_study(a, vols, per_method=4, seed=1, size=32)
    create_study(b, vols, per_method=4, seed=1, size=32)
    q = "select method, slice_index, png from image order by method, slice_index"
    ra, rb = (sqlite3.connect(p).execute(q).fetchall() for p in (a, b))
    assert ra == rb  # same slices, same pixels (ids and storage order are random)


def test_cli_create_add_reader_analyse_and_bad_input(tmp_path, capsys):
    vols = make_volumes(tmp_path)
    db = tmp_path / "s.db"
    args = ["reader-study", "create", str(db), "--per-method", "3", "--size", "32", "--window", "300,1500"]
    for m, paths in vols.items():
        args += ["--images", f"{m}={paths[0]}"]
    assert main(args) == 0
    assert main(["reader-study", "add-reader", str(db), "Observer 1"]) == 0
    assert "/r/" in capsys.readouterr().out
    assert main(["reader-study", "analyse", str(db), "-o", str(tmp_path / "out")]) == 2  # no answers yet
    err = capsys.readouterr().err
    assert "s.db" in err and "no answers" in err and len(err.strip().splitlines()) == 1
    assert main(["reader-study", "create", str(tmp_path / "x.db"), "--images", "nomethod"]) == 2
    assert "--images" in capsys.readouterr().err
    assert main(["reader-study", "create", str(tmp_path / "x.db"), "--images", "A=/no/such.nii"]) == 2
    assert "/no/such.nii" in capsys.readouterr().err
    assert main(["reader-study", "create", str(db), "--images", f"A={vols['microCTref'][0]}"]) == 2  # exists
    assert main(["reader-study", "serve", str(tmp_path / "missing.db")]) == 2
    assert "missing.db" in capsys.readouterr().err
