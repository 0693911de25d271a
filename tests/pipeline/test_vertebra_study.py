"""The vertebra study: its morphometry (the project's engine behind the study's VOIs), the slanted-edge
measurement of the DLR/SR-DLR targets, and the whole study writing its tables."""

import json

import numpy as np
import pytest

from trabecula.enhance.data import specimen_plan, write_pairs
from trabecula.errors import ParameterError
from trabecula.morphometry.measure import measure
from trabecula.morphometry.voi import study_cylinder_vois
from trabecula.phantom.objects import slanted_edge
from trabecula.pipeline import vertebra_study
from trabecula.pipeline.vertebra_study import _edge_metrics, run_evaluation, voi_morphometry
from trabecula.scanner.fast import mtf_model
from trabecula.scanner.simulate import scan
from trabecula.volume import Volume


@pytest.mark.slow
def test_voi_morphometry_is_the_engine_on_the_8bit_isodata_segmentation():
    rng = np.random.default_rng(0)
    x = np.arange(64)
    bone = np.broadcast_to((x % 16) < 4, (24, 64, 64))  # plates 0.4 mm thick, 1.2 mm apart, on 0.1 mm voxels
    hu = np.where(bone, 1400.0, 0.0).astype(np.float32) + rng.normal(0, 20, bone.shape).astype(np.float32)
    (_, voi), = study_cylinder_vois(hu.shape, (0.1, 0.1, 0.1))
    got = voi_morphometry(hu, (0.1, 0.1, 0.1), voi)
    ref = measure(Volume(bone.astype(np.uint8), 0.1, units="binary"), voi=voi, bonej=True, metrics=("bvtv", "tbth", "tbsp"))
    assert got["BV/TV"] == pytest.approx(ref.bv_tv, abs=1e-9)
    assert got["Tb.Th (mm)"] == pytest.approx(ref.tb_th_mm, abs=1e-9)
    assert got["Tb.Sp (mm)"] == pytest.approx(ref.tb_sp_mm, abs=1e-9)
    assert got["BV/TV"] == pytest.approx(0.25, abs=0.01)
    # BoneJ-convention local thickness of 4- and 12-voxel slabs cut by the cylinder (the engine's numbers)
    assert got["Tb.Th (mm)"] == pytest.approx(0.4, abs=0.1) and 1.1 < got["Tb.Sp (mm)"] < 1.5
    assert 0 < got["threshold_8bit"] < 255
    flat = voi_morphometry(np.zeros_like(hu), (0.1, 0.1, 0.1), voi)
    assert all(np.isnan(v) for v in flat.values())


def test_edge_measurement_reads_back_the_twins_modelled_mtf():
    """The slanted-edge measurement used for the DLR/SR-DLR targets reads back the twin's modelled MTF."""
    edge = slanted_edge(5.0, voxel_mm=0.05, size_mm=(1.2, 10.0, 10.0), material="bone", background="water")
    img = scan(edge, "clinical-mdct", noise=False, mode="fast")
    m = _edge_metrics(img.numpy(), img.spacing)
    f = np.linspace(0.01, 3.0, 3000)
    f50 = f[np.argmax(mtf_model("clinical-mdct", f) < 0.5)]
    assert m["mtf50_lpmm"] == pytest.approx(f50, rel=0.1)


def test_without_models_or_shipped_weights_the_study_refuses(tmp_path, monkeypatch):
    monkeypatch.setattr(vertebra_study, "shipped_models", lambda: [])
    with pytest.raises(ParameterError, match="no shipped models"):
        run_evaluation(tmp_path, None, tmp_path / "ev")


@pytest.mark.slow
def test_the_study_writes_its_tables_and_edge_test_and_returns_their_paths(tmp_path):
    pairs = tmp_path / "pairs"
    write_pairs(pairs, specimen_plan(n_synthetic=6, n_edges=0, seed=5, size=64), seed=5)
    s = run_evaluation(pairs, {"srdlr": "srdlr"}, tmp_path / "ev", fid_slices=4, max_slices=24, threads=1)
    tables = s["tables"]
    assert tables["image_quality"] == tmp_path / "ev" / "image_quality.md" and tables["image_quality"].is_file()
    assert set(tables["morphometry"]) == set(s["morphometry"])
    assert all(p.is_file() and p.name.startswith("table_") for p in tables["morphometry"].values())
    assert json.loads(tables["edge_test"].read_text()) == s["edge_test"]
    assert any(k.startswith("srdlr on ") for k in s["edge_test"]["models"])
    assert any(k.startswith("clinical-mdct quarter dose") for k in s["edge_test"]["inputs"]) == any(
        k.startswith("dlr on ") for k in s["edge_test"]["models"])
    written = json.loads((tmp_path / "ev" / "summary.json").read_text())
    assert "tables" not in written and "edge_test" not in written
    assert written["specimens"] == s["specimens"]
