"""The demo's ``register`` stage on its own (the whole demo test takes minutes): one twin specimen's micro-CT
misaligned by a known rigid transform, registered back and slice-paired, its overlay in the report."""

import pytest
from rich.console import Console

from trabecula.pipeline import demo_register
from trabecula.pipeline.demo import DEMO_STAGES, DemoContext
from trabecula.pipeline.demo_report import report_data


@pytest.mark.slow
def test_register_stage_recovers_the_known_misalignment_and_captions_its_overlay(tmp_path):
    con = Console(width=200, record=True)
    ctx = DemoContext(out_dir=tmp_path, seed=0, console=con)
    res = demo_register.run(ctx)
    assert res["ok"] is True, res.get("checks", res)
    r, m, s = res["registration"], res["misalignment"], res["slice_pairing"]
    # a real misalignment was applied, and recovered within the 0.5 clinical voxel and 0.5°
    assert m["rotation_deg"] > 1.0 and m["translation_mm"] > 0.5 and m["hu_scale"] != 1.0
    assert r["rotation_error_deg"] < 0.5 and max(r["translation_error_voxels"]) < 0.5
    assert r["final_metric"] < r["metric_threshold"] and r["seconds"] < 60
    assert s["within_1"] >= 0.95 and s["paired"] >= 10
    # trabecula register's files, and the overlay handed to the report with a caption stating the numbers
    for rel in res["files"].values():
        assert (tmp_path / rel).stat().st_size > 0
    overlay = ctx.data["figures"]["registration_overlay"]
    assert overlay.suffix == ".png" and overlay.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    fig = {f.title: f for f in report_data(ctx).figures}["registration overlay"]
    assert f"{r['rotation_error_deg']:.2f}°" in fig.caption and f"{r['final_metric']:.3f}" in fig.caption
    assert "within ±1 micro-CT slice" in fig.caption and "register/overlay.png" in fig.caption
    demo_register.show(ctx, res)
    text = con.export_text()
    assert "rotation error" in text and "clinical voxel" in text and "Mattes MI" in text and "FAILED" not in text
    assert DEMO_STAGES.index("register") < DEMO_STAGES.index("report")
