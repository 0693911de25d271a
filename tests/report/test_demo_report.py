"""The demo's report stage: builds report.html (and study.json) from whatever earlier stages left in ctx."""

import io
import time

import numpy as np
from rich.console import Console

from tests.report.sample import marker_volume, placeholder_png
from trabecula.cli import main
from trabecula.pipeline import demo_report
from trabecula.pipeline.demo import DemoContext
from trabecula.report import load_study


def _ctx(tmp_path):
    return DemoContext(out_dir=tmp_path, seed=0, console=Console(file=io.StringIO(), width=120))


def test_report_stage_with_scans_figures_and_numbers(tmp_path):
    ctx = _ctx(tmp_path)
    (tmp_path / "figures").mkdir()
    clinical = marker_volume()
    clinical.provenance.scanner = "clinical-mdct"
    ctx.data["scans"] = {("vertebra", "clinical-mdct"): clinical, ("vertebra", "micro-ct"): marker_volume()}
    ctx.data["figures"] = {"mpr_vertebra": placeholder_png(tmp_path / "figures" / "mpr.png", 1, "mpr"),
                           "render_phalanx": placeholder_png(tmp_path / "figures" / "render.png", 2, "render")}
    ctx.data["measurements"] = {"vertebra · micro-ct": {"BV/TV": 0.18, "Tb.Th (mm)": 0.22}}
    f = np.linspace(0, 4, 30)
    ctx.data["mtf_curves"] = {"clinical-mdct": {"frequency_lp_per_mm": f.tolist(), "mtf": np.exp(-f).tolist()}}
    ctx.data["image_quality"] = {"clinical-mdct": {"noise_sd": 35.0, "MTF50": 0.7}}
    ctx.results["twin"] = {"ok": True, "n_scans": 2}
    t0 = time.perf_counter()
    res = demo_report.run(ctx)
    assert time.perf_counter() - t0 < 20  # the stage's budget
    assert res["ok"], res["problems"]
    assert res["pictures"] == 3 and res["viewer_volumes"] == ["vertebra · clinical-mdct", "vertebra · micro-ct"]
    text = (tmp_path / "report.html").read_text()
    for sid in ("inputs", "image-quality", "measurements", "plots", "mpr", "renders", "viewer", "checks"):
        assert f'<section id="{sid}">' in text, sid
    # the demo folder rebuilds the same report through the CLI (study.json + the viewer's volumes)
    again = load_study(tmp_path)
    assert [n for n, _ in again.volumes] == res["viewer_volumes"] and len(again.figures) == 2
    assert main(["report", "--from", str(tmp_path), "-o", str(tmp_path / "again.html")]) == 0
    demo_report.show(ctx, res)
    assert "report.html" in ctx.console.file.getvalue()


def test_report_stage_runs_with_nothing_before_it_and_flags_missing_figures(tmp_path):
    ctx = _ctx(tmp_path)
    res = demo_report.run(ctx)
    assert res["ok"] and res["sections"] == [] and (tmp_path / "report.html").is_file()
    ctx.data["figures"] = {"mtf": tmp_path / "not-there.png"}
    res = demo_report.run(ctx)
    assert not res["ok"] and "not-there.png" in res["problems"][0]
