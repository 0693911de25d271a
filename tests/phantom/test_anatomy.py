"""Anatomical phantoms: vertebral body (cortex 0.3–0.5 mm, trabecular core, marrow, soft tissue) and phalanx."""

from __future__ import annotations

import numpy as np
import pytest

from trabecula.errors import ParameterError
from trabecula.phantom import LABEL, FoamParams, phalanx, vertebral_body


@pytest.fixture(scope="module")
def vb():
    return vertebral_body(seed=1)


def test_vertebral_body_has_the_four_tissues_and_consistent_truth(vb):
    lab = vb.labels.numpy()
    assert set(vb.materials.values()) == {"air", "soft_tissue", "bone", "red_marrow"}
    truth, voi = vb.truth.numpy().astype(bool), vb.voi.numpy().astype(bool)
    assert not np.any(truth & ~voi)                      # struts only inside the trabecular core
    assert np.all(lab[truth] == LABEL["bone"])
    assert np.all(np.isin(lab[voi], [LABEL["bone"], LABEL["red_marrow"]]))
    core_bvtv = truth[voi].mean()
    assert 0.12 < core_bvtv < 0.30                      # default foam ≈ the study's BV/TV 0.18
    assert vb.params["core_bv_tv"] == pytest.approx(core_bvtv)
    # soft tissue surrounds the bone: every grid face holds soft tissue or air, never bone
    for face in (lab[0], lab[-1], lab[:, 0], lab[:, -1], lab[:, :, 0], lab[:, :, -1]):
        assert not np.any(face == LABEL["bone"])


def test_vertebral_cortex_thickness_is_cortex_mm(vb):
    """The cortical shell (bone outside the core) measures ≈ cortex_mm thick by local thickness; a real
    vertebral cortex is 0.3–0.5 mm (default 0.4). Tolerance: one voxel (0.05 mm)."""
    from trabecula.morphometry import local_thickness

    lab = vb.labels.numpy()
    body = np.isin(lab, [LABEL["bone"], LABEL["red_marrow"]])
    shell = body & ~vb.voi.numpy().astype(bool)
    th = local_thickness(shell, vb.spacing)
    assert float(np.median(th[shell])) == pytest.approx(0.4, abs=0.05)
    thin = vertebral_body(cortex_mm=0.3, trabecular={"plate_fraction": 0.0})
    body2 = np.isin(thin.labels.numpy(), [LABEL["bone"], LABEL["red_marrow"]])
    shell2 = body2 & ~thin.voi.numpy().astype(bool)
    assert shell2.sum() < 0.85 * shell.sum()


def test_vertebral_body_geometry_follows_size_and_is_reproducible(vb):
    lab = vb.labels.numpy()
    body = np.isin(lab, [LABEL["bone"], LABEL["red_marrow"]])
    z, y, x = (np.flatnonzero(body.any(axis=tuple(a for a in range(3) if a != ax))) for ax in range(3))
    vox = vb.spacing[0]
    assert (z[-1] - z[0] + 1) * vox == pytest.approx(5.0, abs=2 * vox)
    assert (x[-1] - x[0] + 1) * vox == pytest.approx(10.0, abs=2 * vox)
    assert (y[-1] - y[0] + 1) * vox < 8.0                # flattened posterior wall
    again = vertebral_body(seed=1)
    assert np.array_equal(again.labels.numpy(), lab)


def test_vertebral_body_accepts_foam_parameters_and_rejects_bad_settings():
    dense = vertebral_body(trabecular={"strut_mm": 0.3}, seed=1)
    sparse = vertebral_body(trabecular=FoamParams(cell_mm=1.0, strut_mm=0.15, plate_fraction=0.0), seed=1)
    assert dense.params["core_bv_tv"] > 1.5 * sparse.params["core_bv_tv"]
    for kwargs, name in [(dict(cortex_mm=0.02), "cortex_mm"), (dict(cortex_mm=2.0), "cortex_mm"),
                         (dict(voxel_mm=2.0), "voxel_mm"), (dict(size_mm=(-1, 8, 10)), "size_mm"),
                         (dict(trabecular={"colour": 1}), "trabecular"), (dict(marrow="cheese"), "marrow")]:
        with pytest.raises(ParameterError) as exc:
            vertebral_body(**kwargs)
        assert exc.value.name == name


def test_phalanx_has_cortical_shaft_medullary_cavity_and_trabecular_ends():
    ph = phalanx(seed=0)
    lab = ph.labels.numpy()
    assert set(ph.materials.values()) == {"air", "soft_tissue", "bone", "yellow_marrow"}
    truth, voi = ph.truth.numpy().astype(bool), ph.voi.numpy().astype(bool)
    nz = lab.shape[0]
    mid = slice(nz // 2 - 5, nz // 2 + 5)
    assert not truth[mid].any()                                   # no struts in the mid-shaft
    assert np.any(lab[mid] == LABEL["yellow_marrow"])             # medullary cavity
    ends = truth[: nz // 4].mean() + truth[-nz // 4:].mean()
    assert ends > 0
    assert not np.any(truth & ~voi)
    # cortex, measured by local thickness of the shell (bone that is not a strut): ≈ cortex_mm in the
    # mid-shaft, ≈ end_cortex_mm near the ends. Tolerance 1.5 voxels: on these small, strongly curved
    # shells the engine reads about one voxel above the nominal thickness.
    from trabecula.morphometry import local_thickness

    shell = (lab == LABEL["bone"]) & ~truth
    th = local_thickness(shell, ph.spacing)
    th_shaft = float(np.median(th[mid][shell[mid]]))
    end = slice(int(0.12 * nz), int(0.2 * nz))
    th_end = float(np.median(th[end][shell[end]]))
    assert th_shaft == pytest.approx(ph.params["cortex_mm"], abs=0.075)
    assert th_end == pytest.approx(ph.params["end_cortex_mm"], abs=0.075)
    assert th_end < th_shaft - 0.1
    # widest at the base, narrowest in the shaft
    body = np.isin(lab, [LABEL["bone"], LABEL["yellow_marrow"]])
    width = body.any(axis=1).sum(axis=1)
    q = nz // 5
    assert width[q: 2 * q].max() > width[2 * q: 3 * q].min()
    with pytest.raises(ParameterError):
        phalanx(voxel_mm=1.0)
    with pytest.raises(ParameterError):
        phalanx(cortex_mm=0.01)
