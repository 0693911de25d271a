"""The HTML study report: data-driven sections, the study's table layout, self-contained, written safely."""

import json
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from tests.report.sample import TABLE4, full_report_data, marker_volume, placeholder_png
from trabecula.cli import main
from trabecula.errors import InputError, OutputExistsError, ParameterError
from trabecula.report import (
    FigureItem,
    ReportData,
    StudyTable,
    build_report,
    format_mean_sd,
    format_p,
    load_study,
    render_report,
)
from trabecula.report.data import normalise_image_quality


class _Refs(HTMLParser):
    """Every src/href and every section id in a page."""

    def __init__(self):
        super().__init__()
        self.refs, self.sections = [], []

    def handle_starttag(self, tag, attrs):
        d = dict(attrs)
        for k in ("src", "href"):
            if k in d:
                self.refs.append((tag, d[k]))
        if tag == "section":
            self.sections.append(d.get("id"))


def parse(text):
    p = _Refs()
    p.feed(text)
    return p


def test_formatting_follows_the_study():
    assert format_mean_sd(0.18, 0.016) == "0.180 ± 0.016"
    assert format_p(0.0004) == "<0.001" and format_p(0.101) == "0.101" and format_p(None) == "–"


def test_empty_report_has_no_sections_and_each_field_adds_its_own(tmp_path):
    assert parse(render_report(ReportData())).sections == []
    png = placeholder_png(tmp_path / "a.png", 0, "a")
    cases = {
        "inputs": ReportData(inputs=[{"name": "x", "units": "HU"}]),
        "scanners": ReportData(scanners={"micro-ct": {"kVp": 70}}),
        "image-quality": ReportData(image_quality={"dlr": {"noise_sd": 20.0}}),
        "morphometry": ReportData(morphometry=[StudyTable.from_frame([{"parameter": "BV/TV", "ref_mean": 0.2}])]),
        "measurements": ReportData(measurements={"micro-ct": {"BV/TV": 0.18}}),
        "mpr": ReportData(figures=[FigureItem("mpr", png, group="mpr")]),
        "renders": ReportData(figures=[FigureItem("r", png, group="renders")]),
        "checks": ReportData(checks={"a": True}),
        "timings": ReportData(timings={"a": 1.0}),
        "notes": ReportData(notes=["n"]),
    }
    for sid, data in cases.items():
        assert parse(render_report(data)).sections == [sid], sid


def test_study_table_laid_out_like_table_4():
    df = pd.DataFrame([{"parameter": p, "ref_mean": a, "ref_sd": b, "method_mean": c, "method_sd": d, "t_p": t,
                        "r": r, "r_p": rp, "n": 50} for p, a, b, c, d, t, r, rp in TABLE4])
    text = render_report(ReportData(morphometry=[StudyTable.from_frame(df, "Micro-CT", "Micro-CT-like")]))
    table = re.search(r'<table class="data study">.*?</table>', text, re.S).group(0)
    heads = re.findall(r"<th>(.*?)</th>", table)
    assert heads == ["n = 50", "Micro-CT", "Micro-CT-like", "p-value †", "R ‡", "p-value ‡"]
    cells = re.findall(r"<td>(.*?)</td>", table)
    assert cells[:6] == ["BV/TV", "0.180 ± 0.016", "0.175 ± 0.034", "0.101", "0.920", "&lt;0.001"]
    assert cells[6:12] == ["Tb.Th (mm)", "0.220 ± 0.012", "0.179 ± 0.027", "&lt;0.001", "0.905", "&lt;0.001"]
    assert "Paired Student&#x27;s t-test" in text and "Pearson&#x27;s correlation" in text
    # agreement columns appear only when the rows carry them
    df["bias_abs"], df["bias_percent"], df["loa_low"], df["loa_high"], df["icc_2_1"] = -0.005, -2.8, -0.06, 0.05, 0.91
    text = render_report(ReportData(morphometry=[StudyTable.from_frame(df, "Micro-CT", "Micro-CT-like")]))
    assert "95 % limits of agreement" in text and "-0.005 (-2.8 %)" in text


def test_image_quality_columns_in_canonical_order_whatever_the_keys():
    cols, rows = normalise_image_quality([{"method": "FBP", "cnr": 3, "ssim": 0.6, "Noise_SD": 40},
                                          {"name": "dlr", "MTF50": 0.7, "my score": 2}])
    assert cols == ["method", "SSIM", "MTF50 (lp/mm)", "noise SD (HU)", "CNR", "my score"]
    assert rows[1]["method"] == "dlr" and rows[0]["noise SD (HU)"] == 40


def test_report_is_one_self_contained_file(tmp_path):
    data = full_report_data(tmp_path)
    path = build_report(data, tmp_path / "report.html")
    text = path.read_text()
    p = parse(text)
    assert p.sections == ["checks", "inputs", "scanners", "image-quality", "morphometry", "measurements", "plots",
                          "mpr", "renders", "figures", "viewer", "results", "timings", "notes"]
    external = [(t, r) for t, r in p.refs if not (r.startswith("data:") or r.startswith("#"))]
    assert external == []
    assert text.count("<img ") == 3 + 3  # MTF, scatter, Bland–Altman + three figures
    assert "niivue" in text and "data:application/gzip;base64," in text  # viewer and its volume inline
    assert not re.search(r"<script[^>]+src=", text) and "<link rel=\"stylesheet\"" not in text
    # refuses to overwrite, then --force replaces it
    with pytest.raises(OutputExistsError):
        build_report(data, path)
    assert build_report(ReportData(title="second"), path, force=True).read_text().count("second") >= 1


def test_bad_inputs_name_what_is_wrong(tmp_path):
    with pytest.raises(InputError, match="figure file not found"):
        render_report(ReportData(figures=[FigureItem("x", tmp_path / "missing.png")]))
    with pytest.raises(ParameterError, match="group"):
        FigureItem("x", b"", group="elsewhere")
    with pytest.raises(ParameterError, match="sections"):
        render_report({"title": "not a ReportData"})


def test_study_json_round_trip_and_demo_folder(tmp_path):
    from trabecula.io import write_volume

    data = full_report_data(tmp_path)
    data.figures = [f for f in data.figures if not isinstance(f.image, np.ndarray)]
    vol_path = write_volume(marker_volume(), tmp_path / "marker.nii.gz")
    study = data.to_json(tmp_path / "study.json", volume_paths={"marker": vol_path})
    back = load_study(tmp_path)  # a folder with study.json
    assert back.title == data.title and len(back.figures) == 2 and back.volumes[0][1].shape == (40, 48, 56)
    assert back.morphometry[0].rows[1].t_p == pytest.approx(0.0004) and back.paired[0].loa == (-0.02, 0.021)
    assert parse(render_report(back)).sections == parse(render_report(data)).sections
    assert json.loads(study.read_text())["figures"][0]["path"] == "mpr.png"  # relative to the JSON file
    # a demo folder without study.json: summary.json + figures/
    demo = tmp_path / "demo"
    (demo / "figures").mkdir(parents=True)
    placeholder_png(demo / "figures" / "mtf_presets.png", 3, "mtf")
    placeholder_png(demo / "figures" / "render_phalanx.png", 4, "render")
    (demo / "summary.json").write_text(json.dumps({"seed": 0, "stages": ["io", "twin"], "seconds": {"io": 1.5},
                                                   "total_seconds": 9.0, "results": {"io": {"ok": True, "n": 7}}}))
    d = load_study(demo)
    assert {f.group for f in d.figures} == {"plots", "renders"} and d.checks == {"io: its own checks": True}
    assert d.timings == {"io": 1.5, "total": 9.0}


def test_report_verb(tmp_path, capsys):
    data = full_report_data(tmp_path, with_viewer=False)
    data.figures = [f for f in data.figures if not isinstance(f.image, np.ndarray)]
    data.to_json(tmp_path / "s.json")
    out = tmp_path / "r.html"
    assert main(["report", "--from", str(tmp_path / "s.json"), "-o", str(out), "--title", "From CLI"]) == 0
    assert "From CLI" in out.read_text() and "wrote" in capsys.readouterr().out
    assert main(["report", "--from", str(tmp_path / "s.json"), "-o", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["report", "--from", str(tmp_path / "nowhere"), "-o", str(tmp_path / "x.html")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nowhere" in err


def test_stage_results_flatten_one_level_and_keep_mean_sd_pairs():
    text = render_report(ReportData(results={"io": {"ok": True, "info": {"mean": 240.1, "sd": 480.9, "min": -138},
                                                    "noise": {"mean": 12.0, "sd": 0.5}, "deep": {"a": {"b": 1}}}}))
    cells = re.findall(r"<td>(.*?)</td>", text)
    pairs = dict(zip(cells[::2], cells[1::2], strict=True))
    assert pairs == {"ok": "yes", "info.mean": "240.1", "info.sd": "480.9", "info.min": "-138", "noise": "12 ± 0.5"}


def test_study_table_from_trabecula_stats_renders_its_numbers():
    """The enhancement stage's statistics (trabecula.stats.study_table) drop into the report unchanged."""
    from trabecula.stats import study_table

    rng = np.random.default_rng(3)
    ref = {"BV/TV": rng.normal(0.18, 0.016, 30), "Tb.Th (mm)": rng.normal(0.22, 0.012, 30)}
    meth = {k: v * 0.97 + rng.normal(0, 0.005, 30) for k, v in ref.items()}
    df = study_table(ref, meth, "micro-CT", "pix2pixHD")
    text = render_report(ReportData(morphometry=[StudyTable.from_frame(df, "micro-CT", "pix2pixHD")]))
    cells = re.findall(r"<td>(.*?)</td>", re.search(r'<table class="data study">.*?</table>', text, re.S).group(0))
    row = dict(zip(["parameter", "ref", "meth", "p", "R", "pR", "bias", "loa", "icc"], cells[:9], strict=True))
    first = df.iloc[0]
    assert row["ref"] == first["micro-CT"] and row["meth"] == first["pix2pixHD"]  # same mean ± SD text
    assert row["p"] == first["p (paired t)"].replace("<", "&lt;") and row["R"] == first["R"]
    assert "n = 30" in text
