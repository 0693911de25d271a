"""Bad inputs and options (issue 20): each is a clean error — exit code 2 and exactly one line on stderr that
names the file or the option — never an internal error, a hang or an allocation that runs out of memory.
Also: leftovers of killed runs are cleaned, and ``--anonymise-provenance`` keeps identifiers out of outputs."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

from trabecula import Volume
from trabecula.cli import app, main
from trabecula.io import read_volume, write_volume


def run(capsys, *args):
    code = main([str(a) for a in args])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def one_line_error(code: int, err: str, *names: str) -> str:
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, f"expected one stderr line, got {lines}"
    line = lines[0]
    assert line.startswith("error: "), line
    for n in names:
        assert n in line, f"{n!r} not named in {line!r}"
    return line


@pytest.fixture
def hu(tmp_path):
    a = np.full((8, 16, 16), -50, np.int16)
    a[:, 4:12, 4:12] = 1200
    return write_volume(Volume(a, (0.1, 0.1, 0.1), units="HU"), tmp_path / "in.nrrd")


# ----------------------------------------------------------------------------------------- study JSON
_GOOD_TABLE = {"title": "t", "rows": [{"parameter": "BV/TV", "ref_mean": 0.2, "method_mean": 0.25}]}

STUDIES = {
    "figure without its path": ({"figures": [{"title": "x"}]}, "figures[0].path"),
    "title of the wrong type": ({"title": 5}, "title"),
    "morphometry not an array": ({"morphometry": "x"}, "morphometry"),
    "row without a parameter": ({"morphometry": [{"rows": [{"ref_mean": 1}]}]}, "morphometry[0].rows[0].parameter"),
    "format width 99999999999": ({"morphometry": [{**_GOOD_TABLE, "decimals": 99999999999}]},
                                 "morphometry[0].decimals"),
    "timing not a number": ({"timings": {"read": "slow"}}, "timings.read"),
    "paired lengths differ": ({"paired": [{"parameter": "Tb.Th", "reference": [1, 2], "method": [1]}]},
                              "paired[0].method"),
    "mtf values not numbers": ({"mtf": {"a": {"frequency": [0, 1], "mtf": ["x", 1]}}}, "mtf.a.mtf"),
    "viewer budget huge": ({"viewer_max_voxels": 1e30}, "viewer_max_voxels"),
}


@pytest.mark.parametrize("case", list(STUDIES))
def test_study_json_errors_name_the_file_and_the_key(tmp_path, capsys, case):
    study, key = STUDIES[case]
    p = tmp_path / "study.json"
    p.write_text(json.dumps(study), encoding="utf-8")
    code, _, err = run(capsys, "report", "--from", p, "-o", tmp_path / "r.html", "--no-viewer")
    one_line_error(code, err, str(p), key)
    assert not (tmp_path / "r.html").exists()


def test_study_note_with_a_format_width_is_plain_text(tmp_path, capsys):
    note = "{method:>99999999999} vs {reference} {0} {x.__class__}"
    p = tmp_path / "study.json"
    p.write_text(json.dumps({"morphometry": [{**_GOOD_TABLE, "test_note": note, "method_name": "M"}]}), encoding="utf-8")
    code, _, err = run(capsys, "report", "--from", p, "-o", tmp_path / "r.html", "--no-viewer")
    assert code == 0, err
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "{method:&gt;99999999999} vs micro-CT {0} {x.__class__}" in html


# ----------------------------------------------------------------------------------------- options
def _cases(tmp_path, hu):
    out = tmp_path / "out.nrrd"
    return {
        "measure --smooth 1e6": (["measure", hu, "--smooth", "1e6", "--metrics", "bvtv"], ("--smooth", str(hu))),
        "measure --smooth nan": (["measure", hu, "--smooth", "nan", "--metrics", "bvtv"], ("--smooth",)),
        "convert --spacing 1e9": (["convert", hu, out, "--spacing", "1e9"], ("--spacing", str(hu))),
        "convert --spacing 0.0005": (["--max-memory", "2G", "convert", hu, out, "--spacing", "0.0005"],
                                     ("--spacing", str(hu), "would fit")),
        "render --size 16384": (["--max-memory", "1G", "render", hu, "-o", tmp_path / "r.png", "--size", "16384"],
                                ("--size", "would fit")),
        "convert --window 100,inf": (["convert", hu, out, "--window", "100,inf"], ("--window",)),
        "convert --window 100,0": (["convert", hu, out, "--window", "100,0"], ("--window",)),
        "info --bone-threshold nan": (["info", hu, "--bone-threshold", "nan"], ("--bone-threshold",)),
        "render --zoom inf": (["render", hu, "-o", tmp_path / "r.png", "--zoom", "inf"], ("--zoom",)),
        "mpr --point nan": (["mpr", hu, "-o", tmp_path / "m.png", "--point", "nan,0,0"], ("--point",)),
    }


CASE_NAMES = ["measure --smooth 1e6", "measure --smooth nan", "convert --spacing 1e9", "convert --spacing 0.0005",
              "render --size 16384", "convert --window 100,inf", "convert --window 100,0",
              "info --bone-threshold nan", "render --zoom inf", "mpr --point nan"]


@pytest.mark.parametrize("case", CASE_NAMES)
def test_bad_option_is_one_line_naming_it(tmp_path, capsys, hu, case):
    args, names = _cases(tmp_path, hu)[case]
    t0 = time.perf_counter()
    code, _, err = run(capsys, *args)
    one_line_error(code, err, *names)
    assert time.perf_counter() - t0 < 30
    assert not (tmp_path / "out.nrrd").exists()


# ----------------------------------------------------------------------------------------- one line
@pytest.fixture
def chatty_verb():
    """A hidden verb that lets libraries chatter (a warning, a log record) and then fails or succeeds."""

    @app.command("chatty-test", hidden=True)
    def chatty(fail: bool = True) -> None:
        from trabecula.errors import ParameterError

        warnings.warn("a library says the same in other words", RuntimeWarning, stacklevel=1)
        logging.getLogger("somelib").warning("somelib: chatter")
        import nibabel  # noqa: F401 — attaches a stream handler of its own to "nibabel.global"

        logging.getLogger("nibabel.global").warning("pixdim[1,2,3] should be non-zero; setting 0 dims to 1")
        if fail:
            raise ParameterError("--fail", "asked to fail")

    yield "chatty-test"
    app.registered_commands[:] = [c for c in app.registered_commands if c.name != "chatty-test"]


def test_library_chatter_does_not_add_a_line_to_an_error(capsys, chatty_verb):
    code, _, err = run(capsys, chatty_verb)
    line = one_line_error(code, err, "--fail")  # exit 2 and exactly one stderr line, naming the option
    assert line == "error: --fail: asked to fail"
    assert "somelib" not in err and "pixdim" not in err and "other words" not in err  # the chatter was dropped


def test_library_chatter_is_shown_after_a_run_that_succeeds(capsys, chatty_verb):
    code, _, err = run(capsys, chatty_verb, "--no-fail")
    assert code == 0, err
    assert "a library says the same in other words" in err and "somelib: chatter" in err and "pixdim" in err
    assert err.count("pixdim") == 1


# ----------------------------------------------------------------------------------------- leftovers
def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_tmp_leftovers_of_the_same_target_are_removed(tmp_path, capsys, hu):
    out = tmp_path / "out.nrrd"
    dead = tmp_path / f".tmp-{_dead_pid()}-0123abcd-out.nrrd"
    old_style = tmp_path / ".tmp-89abcdef-out.nrrd"
    old_dir = tmp_path / f".old-{_dead_pid()}-0123abcd-out.nrrd"
    alive = tmp_path / f".tmp-{os.getppid()}-0123abcd-out.nrrd"  # a live process (the test runner's parent)
    other = tmp_path / f".tmp-{_dead_pid()}-0123abcd-other.nrrd"  # another target's: not ours to touch
    for p in (dead, old_style, alive, other):
        p.write_bytes(b"partial")
    old_dir.mkdir()
    past = time.time() - 3600
    os.utime(old_style, (past, past))
    code, _, err = run(capsys, "convert", hu, out)
    assert code == 0, err
    assert out.exists()
    assert not dead.exists() and not old_style.exists() and not old_dir.exists()
    assert alive.exists() and other.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-") and p not in (alive, other)]


# ----------------------------------------------------------------------------------------- anonymise
def test_anonymise_provenance_keeps_base_names_and_drops_descriptions(tmp_path, capsys):
    from trabecula.io.dicom import write_dicom

    a = np.full((4, 12, 12), 40, np.int16)
    series = tmp_path / "SMITH_John_1950" / "series1"
    series.mkdir(parents=True)
    write_dicom(Volume(a, (0.5, 0.3, 0.3), units="HU"), series, series_description="SMITH John knee")
    plain, anon = tmp_path / "plain.nrrd", tmp_path / "anon.nrrd"
    code, _, err = run(capsys, "convert", series, plain)
    assert code == 0, err
    code, _, err = run(capsys, "--anonymise-provenance", "convert", series, anon)
    assert code == 0, err
    before = read_volume(plain).provenance.to_dict()
    assert "SMITH" in json.dumps(before)  # the leak this option closes
    prov = read_volume(anon).provenance.to_dict()
    text = json.dumps(prov)
    assert "SMITH" not in text and "John" not in text
    assert prov["source"] == "series1"
    assert all("/" not in s and "\\" not in s for s in prov["steps"])
    assert not any("description" in k.lower() for k in prov["extra"])
    # the setting lasts one run: the next run without the option keeps the full provenance
    code, _, err = run(capsys, "convert", series, tmp_path / "again.nrrd")
    assert code == 0 and str(series) in read_volume(tmp_path / "again.nrrd").provenance.source


def test_progress_bar_is_cleared_when_the_verb_fails(tmp_path, capsys, hu, monkeypatch):
    monkeypatch.setenv("TRABECULA_NO_PROGRESS", "0")
    code, _, err = run(capsys, "measure", hu, "--smooth", "1e6", "--metrics", "bvtv")
    line = one_line_error(code, err, "--smooth", str(hu))  # exit 2 and exactly one stderr line
    assert "━" not in err and "reading" not in err  # no bar or task description left behind
    assert "beyond the image's extent" in line


def test_study_json_round_trip_with_an_untitled_table(tmp_path):
    from trabecula.report import ReportData, StudyTable, load_study
    from trabecula.report.data import StudyRow

    data = ReportData(morphometry=[StudyTable([StudyRow("BV/TV", 0.2, 0.01, 0.25, 0.02, n=5)], decimals=2)],
                      timings={"read": 1.0}, viewer_max_voxels=1000)
    back = load_study(data.to_json(tmp_path / "s.json"))
    assert back.morphometry[0].title is None and back.morphometry[0].decimals == 2
