"""The demo's render stage: with the twin's scans, and on its own (fallback specimen)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from trabecula import Volume
from trabecula.pipeline import demo_render
from trabecula.pipeline.demo import DemoContext


def _ctx(tmp_path: Path) -> DemoContext:
    return DemoContext(out_dir=tmp_path, seed=0, console=Console(record=True, width=150))


def _scan(shape, spacing, seed) -> Volume:
    from trabecula.phantom.specimen import bone_specimen

    v = bone_specimen(shape, spacing, seed=seed)
    return v


@pytest.mark.slow
def test_render_stage_uses_the_twin_scans(tmp_path):
    ctx = _ctx(tmp_path)
    micro = _scan((64, 56, 56), 0.1, 1)
    clinical = micro.resample(0.5)
    ctx.data["scans"] = {("wrist", "uhr-extremity"): _scan((60, 48, 48), 0.08, 2),
                         ("vertebra", "micro-ct"): micro, ("vertebra", "clinical-mdct"): clinical}
    ctx.data["enhanced"] = {"dlr": micro.resample(0.2)}
    res = demo_render.run(ctx)
    assert res["ok"] is True
    assert set(res["renders"]) == {"wrist", "vertebra"}
    assert res["renders"]["wrist"]["source"] == "uhr-extremity"
    assert res["mpr"]["volumes"] == ["clinical CT", "enhanced: dlr", "micro-CT"]
    figs = ctx.data["figures"]
    assert set(figs) == {"render_wrist", "render_vertebra", "mpr_vertebra"}
    for p in figs.values():
        assert p.exists() and p.parent == tmp_path / "figures"
    demo_render.show(ctx, res)
    assert "render_wrist.png" in ctx.console.export_text()


@pytest.mark.slow
def test_render_stage_runs_on_its_own(tmp_path):
    ctx = _ctx(tmp_path)
    res = demo_render.run(ctx)
    assert res["ok"] is True
    r = res["renders"]["wrist"]
    assert r["source"] == "fallback specimen"
    assert r["drawn_fraction"] > 0.1 and r["cut_face_fraction"] > 0.01
    assert res["mpr"]["source"] == "fallback specimen"
    from PIL import Image

    img = np.asarray(Image.open(ctx.data["figures"]["render_wrist"]))
    assert img.shape == (*demo_render.RENDER_SIZE, 3)
