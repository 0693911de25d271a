"""Test objects: wire, slanted edge, bar pattern, water cylinder — geometry true to the parameters."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trabecula.errors import ParameterError
from trabecula.phantom import LABEL, bar_pattern, slanted_edge, water_cylinder, wire


def test_wire_cross_section_area_and_centre():
    """A 0.05 mm wire 10 voxels across: its rasterised area within 5 % (a disc only a few voxels across
    cannot do better on a label grid; the exact geometry is in params for analytic projectors)."""
    ph = wire(diameter_mm=0.05, voxel_mm=0.005, fov_mm=0.4, length_mm=0.02, offset_mm=(0.1, -0.05))
    lab = ph.labels.numpy()
    w = lab == LABEL["tungsten"]
    area = w[0].sum() * 0.005 ** 2
    assert area == pytest.approx(math.pi * 0.025 ** 2, rel=0.05)
    assert all(np.array_equal(w[0], w[k]) for k in range(w.shape[0]))   # straight along z
    yy, xx = np.nonzero(w[0])
    cy, cx = ph.labels.index_to_world((0, yy.mean(), xx.mean()))[1:]
    assert (cy, cx) == pytest.approx((0.1, -0.05), abs=0.002)
    assert ph.params["center_yx_mm"] == [0.1, -0.05] and ph.params["diameter_mm"] == 0.05
    assert ph.materials == {"0": "air", str(LABEL["tungsten"]): "tungsten"}
    assert ph.truth is None
    with pytest.raises(ParameterError) as exc:
        wire(diameter_mm=0.02, voxel_mm=0.05)
    assert exc.value.name == "voxel_mm"


def test_slanted_edge_angle_recovered_from_the_labels():
    """The label image's edge, fitted by the MTF code's edge finder, has the requested slant."""
    from trabecula.quality.mtf import fit_edge

    ph = slanted_edge(angle_deg=4.0, voxel_mm=0.02, size_mm=(0.04, 4.0, 4.0))
    img = (ph.labels.numpy()[0] == LABEL["pmma"]).astype(float)
    n = img.shape[0]
    roi = img[n // 2 - 40:n // 2 + 40, n // 2 - 20:n // 2 + 20]
    _, _, fit = fit_edge(roi, (0.02, 0.02))
    assert abs(fit.angle_deg) == pytest.approx(4.0, abs=0.15)
    with pytest.raises(ParameterError):
        slanted_edge(angle_deg=0.0)


def test_bar_pattern_groups_have_the_stated_frequencies():
    ph = bar_pattern(lp_per_mm=(2, 5, 10), bars=4, voxel_mm=0.0125)
    lab = ph.labels.numpy()
    prof = lab[0, lab.shape[1] // 2] == LABEL["aluminium"]
    xs = ph.labels.origin[2] + np.arange(prof.size) * ph.spacing[2]
    for g in ph.params["groups"]:
        sel = (xs >= g["x_mm"][0] - 0.01) & (xs <= g["x_mm"][1] + 0.01)
        p = prof[sel].astype(int)
        runs = np.flatnonzero(np.diff(np.r_[0, p, 0]) == 1)
        assert runs.size == 4                                    # four bars
        pitch = np.diff(xs[sel][runs]).mean()
        assert 1.0 / pitch == pytest.approx(g["lp_per_mm"], rel=0.05)
        assert p.mean() == pytest.approx(4 / (2 * 4 - 1), abs=0.08)  # bars = gaps in width
    with pytest.raises(ParameterError) as exc:
        bar_pattern(lp_per_mm=(10,), voxel_mm=0.05)
    assert exc.value.name == "voxel_mm"


def test_water_cylinder_area_and_wall():
    ph = water_cylinder(diameter_mm=10.0, voxel_mm=0.1, length_mm=0.3, wall_mm=1.0)
    lab = ph.labels.numpy()
    water = (lab[0] == LABEL["water"]).sum() * 0.01
    wall = (lab[0] == LABEL["pmma"]).sum() * 0.01
    assert water == pytest.approx(math.pi * 4.0 ** 2, rel=0.01)
    assert wall == pytest.approx(math.pi * (5.0 ** 2 - 4.0 ** 2), rel=0.03)
    assert lab.shape[0] == 3
    plain = water_cylinder(diameter_mm=10.0, voxel_mm=0.1, length_mm=0.1)
    assert set(plain.materials.values()) == {"air", "water"}
    for kwargs in (dict(voxel_mm=10.0), dict(wall_mm=-1.0), dict(wall_mm=10.0), dict(diameter_mm=0)):
        with pytest.raises(ParameterError):
            water_cylinder(**kwargs)
