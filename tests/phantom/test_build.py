"""build(kind, **params): the generators' defaults, refusals of parameters that do not apply; with_materials;
phantom_summary."""

from __future__ import annotations

import numpy as np
import pytest

from trabecula.errors import ParameterError
from trabecula.phantom.build import (
    KINDS,
    applicable,
    build,
    defaults,
    phantom_summary,
    with_materials,
    write_phantom,
)
from trabecula.phantom.objects import slanted_edge, water_cylinder, wire
from trabecula.phantom.trabecular import trabecular_cube
from trabecula.volume import Provenance, Volume


def _same(a, b) -> bool:
    return (np.array_equal(a.labels.numpy(), b.labels.numpy()) and a.labels.spacing == b.labels.spacing
            and a.labels.origin == b.labels.origin and a.labels.provenance == b.labels.provenance
            and a.params == b.params and a.description == b.description)


def test_wire_default_is_the_25_micron_tungsten_wire():
    assert _same(build("wire"), wire(0.025, material="tungsten"))
    assert _same(build("wire", size_mm=0.05, voxel_mm=None, material="aluminium"), wire(0.05, material="aluminium"))


def test_none_means_the_kind_default_and_sizes_are_normalised():
    assert _same(build("edge", angle_deg=None, material=None), slanted_edge(5.0, material="pmma"))
    assert _same(build("water", size_mm=[6], voxel_mm=0.2), water_cylinder(6.0, voxel_mm=0.2))
    cube = build("trabecular-cube", size_mm=1.0, voxel_mm=0.05, calibrate=False, seed=3)
    assert _same(cube, trabecular_cube((1.0, 1.0, 1.0), 0.05, seed=3, calibrate=False))


def test_defaults_are_the_generators():
    d = defaults("trabecular-cube")
    assert (d["size_mm"], d["voxel_mm"], d["bvtv"], d["tb_th_mm"], d["tb_sp_mm"]) == ((5.0, 5.0, 5.0), 0.025, 0.18, 0.22, 0.93)
    assert defaults("vertebra")["voxel_mm"] == 0.05 and defaults("phalanx")["size_mm"] == 12.0
    assert defaults("wire") == {"size_mm": 0.025, "voxel_mm": 0.005, "material": "tungsten"}
    assert defaults("water")["size_mm"] == 20.0 and defaults("bars")["material"] == "aluminium"
    assert list(defaults("bars")["lp"]) == [1, 2, 3, 4, 5, 6, 8, 10]
    for kind in KINDS:
        assert set(defaults(kind)) == set(applicable(kind))


@pytest.mark.parametrize(("kind", "params", "name"), [
    ("cylinder", {}, "kind"),
    ("wire", {"tb_th_mm": 0.2}, "tb_th_mm"),
    ("wire", {"size_mm": (1.0, 1.0, 1.0)}, "size_mm"),
    ("wire", {"diameter_mm": 0.05}, "diameter_mm"),
    ("edge", {"size_mm": 4.0}, "size_mm"),
    ("phalanx", {"bvtv": 0.2}, "bvtv"),
    ("trabecular-cube", {"size_mm": (1.0, 2.0)}, "size_mm"),
    ("vertebra", {"plate_fraction": 0.5}, "plate_fraction"),
    ("lookalike", {}, "like"),
    ("real", {"seed": 1}, "seed"),
])
def test_parameters_that_do_not_apply_are_refused(kind, params, name):
    with pytest.raises(ParameterError) as exc:
        build(kind, **params)
    assert exc.value.name == name


def test_real_from_a_binary_volume():
    b = np.zeros((6, 6, 6), np.uint8)
    b[2:4] = 1
    ph = build("real", like=Volume(b, 0.05, (0.0, 0.0, 0.0), "binary"))
    assert ph.fraction("bone") == pytest.approx(b.mean())


def test_with_materials_keeps_named_maps_and_fills_the_convention_without_touching_the_input():
    named = Volume(np.zeros((2, 2, 2), np.uint8), 0.1, (0, 0, 0), "binary",
                   Provenance(extra={"materials": {"0": "air"}}))
    assert with_materials(named).units == "label"
    prov = Provenance(source="x", extra={"note": 1})
    bare = Volume(np.array([[[0, 1], [7, 7]]] * 2, np.uint8), 0.1, (0, 0, 0), "grey", prov)
    with pytest.warns(UserWarning, match="label convention"):
        out = with_materials(bare)
    assert out.units == "label" and out.provenance.extra["materials"] == {"0": "air", "1": "water", "7": "bone"}
    assert bare.provenance.extra == {"note": 1} and out.provenance.extra["note"] == 1
    with pytest.raises(ParameterError):
        with_materials(Volume(np.full((2, 2, 2), 0.5, np.float32), 0.1, (0, 0, 0), "HU"))
    with pytest.raises(ParameterError):
        with_materials(Volume(np.full((2, 2, 2), 40, np.uint8), 0.1, (0, 0, 0), "label"))


def test_phantom_summary_rows():
    rows = dict(phantom_summary(build("wire")))
    assert list(rows) == ["phantom", "grid", "materials"]
    assert rows["phantom"] == "0.025 mm tungsten wire along z in air"
    assert rows["grid"] == "40 × 200 × 200 at 0.005 mm"
    assert rows["materials"].startswith("0 air (") and "10 tungsten" in rows["materials"]
    ph = build("trabecular-cube", size_mm=1.0, voxel_mm=0.05, calibrate=False)
    ph.params["measured"] = {"bv_tv": 0.2, "tb_th_mm": 0.1, "tb_sp_mm": 0.5}
    assert dict(phantom_summary(ph))["measured"] == "BV/TV 0.200  Tb.Th 0.100 mm  Tb.Sp 0.500 mm"


def test_vertebra_targets_come_with_the_cube_foam_settings():
    from trabecula.phantom.anatomy import vertebral_body

    trab = {"bvtv": 0.2, "tb_th_mm": None, "tb_sp_mm": None, "calibrate": False, "plate_fraction": 0.3, "anisotropy": 1.0}
    assert _same(build("vertebra", bvtv=0.2, calibrate=False, size_mm=(2.0, 3.0, 3.0)),
                 vertebral_body((2.0, 3.0, 3.0), 0.05, trabecular=trab))
    assert _same(build("vertebra", size_mm=(2.0, 3.0, 3.0)), vertebral_body((2.0, 3.0, 3.0), 0.05))


def test_write_phantom_writes_what_exists_and_refuses_the_rest_first(tmp_path):
    from trabecula.io import read_volume

    w = build("wire")
    with pytest.raises(ParameterError) as exc:
        write_phantom(w, tmp_path / "w.nrrd", truth=tmp_path / "t.nrrd")
    assert exc.value.name == "truth" and not (tmp_path / "w.nrrd").exists()
    with pytest.raises(ParameterError) as exc:
        write_phantom(w, tmp_path / "w.nrrd", voi=tmp_path / "v.nrrd")
    assert exc.value.name == "voi"
    cube = build("trabecular-cube", size_mm=0.5, voxel_mm=0.05, calibrate=False)
    written = write_phantom(cube, tmp_path / "c.nrrd", truth=tmp_path / "ct.nii.gz")
    assert [p.name for p in written] == ["c.nrrd", "ct.nii.gz"]
    assert np.array_equal(read_volume(written[1]).numpy(), cube.truth.numpy())
    assert read_volume(written[0]).provenance.extra["materials"] == cube.materials


def test_wrist_kind_takes_the_slab_thickness_as_its_size():
    ph = build("wrist", size_mm=0.4, voxel_mm=0.1, seed=1)
    assert ph.shape[0] == 4 and "wrist" in ph.description
    assert ph.params["radius_cortex_mm"] == 0.8 and ph.params["radius"]["area_mm2"] > 250
