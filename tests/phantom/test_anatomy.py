"""Anatomical phantoms: vertebral body (cortex 0.3–0.5 mm, trabecular core, marrow, soft tissue; a central slab;
real structure quilted into the core), phalanx and wrist."""

from __future__ import annotations

import numpy as np
import pytest

from trabecula.errors import ParameterError
from trabecula.phantom import LABEL, FoamParams, phalanx, quilt_binary, vertebral_body, wrist


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
    assert (y[-1] - y[0] + 1) * vox == pytest.approx(8.0, abs=2 * vox)  # size_mm[1] is the whole depth
    # a flat posterior wall (+y): the last row is wide (0.69 of the width), the anterior-most row narrow
    rows = body.any(axis=0)
    assert rows[y[-1]].sum() * vox > 0.6 * 10.0 and rows[y[0]].sum() * vox < 0.3 * 10.0
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


def _body_and_shell(ph):
    lab = ph.labels.numpy()
    body = np.isin(lab, [LABEL["bone"], LABEL["red_marrow"]])
    return body, body & ~ph.voi.numpy().astype(bool)


def test_vertebral_slab_is_the_central_slab_of_the_whole_body(vb):
    """slab_mm builds the central slices of the same body: the same outline and cortex slice by slice (the
    cortex from the whole body's surface, so the slab's cut faces are trabecular, not a shell); no soft
    tissue above or below; the description and params say it is a slab."""
    slab = vertebral_body(seed=1, slab_mm=1.0)
    n = slab.shape[0]
    assert n == 20 and slab.shape[1:] == vb.shape[1:]
    z0 = (vb.shape[0] - n) // 2
    body, shell = _body_and_shell(slab)
    body_full, shell_full = _body_and_shell(vb)
    assert np.array_equal(body, body_full[z0:z0 + n]) and np.array_equal(shell, shell_full[z0:z0 + n])
    assert slab.voi.numpy()[0].sum() > 0.8 * body[0].sum()        # the top face cuts the trabecular core
    assert slab.labels.origin[0] == pytest.approx(-(n - 1) / 2 * 0.05)  # mid-height at z = 0, as in the full body
    assert slab.params["slab_mm"] == pytest.approx(1.0) and "central 1 mm axial slab" in slab.description
    with pytest.raises(ParameterError) as exc:
        vertebral_body(slab_mm=6.0)
    assert exc.value.name == "slab_mm"


def test_vertebral_core_takes_real_structure_quilted_at_its_bone_fraction():
    """A binary structure as ``trabecular`` fills the core with its patches (BV/TV kept, params say so); a
    structure on another voxel size is refused."""
    from trabecula.volume import Volume

    rng = np.random.default_rng(3)
    from scipy import ndimage

    field = ndimage.gaussian_filter(rng.standard_normal((60, 60, 60)), 2.0)
    real = field > np.quantile(field, 0.78)                 # BV/TV 0.22
    ph = vertebral_body(trabecular=Volume(real.astype(np.uint8), 0.05, units="binary"), seed=2)
    truth, voi = ph.truth.numpy().astype(bool), ph.voi.numpy().astype(bool)
    assert truth[voi].mean() == pytest.approx(0.22, abs=0.02)
    assert ph.params["trabecular"]["kind"] == "real" and "foam" not in ph.params
    assert "real structure" in ph.description
    assert not np.any(truth & ~voi)
    with pytest.raises(ParameterError) as exc:
        vertebral_body(trabecular=Volume(real.astype(np.uint8), 0.1, units="binary"))
    assert exc.value.name == "trabecular"


def test_quilt_binary_copies_patches_exactly_and_keeps_the_bone_fraction():
    rng = np.random.default_rng(0)
    src = rng.random((12, 10, 10)) < 0.25
    # an output that fits in one tile is a window of the source under one of its flips / y-x transposes
    out = quilt_binary(src, (5, 6, 6), seed=4)
    cands = []
    for fz in (1, -1):
        for fy in (1, -1):
            for fx in (1, -1):
                for tr in (False, True):
                    c = src[::fz, ::fy, ::fx]
                    cands.append(c.transpose(0, 2, 1) if tr else c)
    assert any(np.array_equal(out, c[i:i + 5, j:j + 6, k:k + 6]) for c in cands
               for i in range(8) for j in range(5) for k in range(5))
    # a larger output: several blended tiles, the source's bone fraction, reproducible from the seed
    from scipy import ndimage

    field = ndimage.gaussian_filter(rng.standard_normal((40, 40, 40)), 1.5)
    src = field > np.quantile(field, 0.75)
    big = quilt_binary(src, (30, 100, 90), seed=1, overlap=8)
    assert big.mean() == pytest.approx(src.mean(), abs=0.01)
    assert np.array_equal(big, quilt_binary(src, (30, 100, 90), seed=1, overlap=8))
    assert not np.array_equal(big, quilt_binary(src, (30, 100, 90), seed=2, overlap=8))


def test_wrist_has_a_radius_and_an_ulna_with_cortices_in_soft_tissue():
    w = wrist(slab_mm=0.3, seed=0)
    lab = w.labels.numpy()
    assert set(w.materials.values()) == {"air", "soft_tissue", "bone", "yellow_marrow"}
    assert lab.shape[0] == 6
    truth, voi = w.truth.numpy().astype(bool), w.voi.numpy().astype(bool)
    assert not np.any(truth & ~voi)
    assert 0.10 < w.params["core_bv_tv"] < 0.22                          # extremity foam ≈ 0.15
    from scipy import ndimage

    bones, n = ndimage.label(np.isin(lab[3], [LABEL["bone"], LABEL["yellow_marrow"]]))
    assert n == 2                                                         # radius and ulna, apart
    sizes = np.bincount(bones.ravel())[1:] * 0.05**2
    assert 250 < max(sizes) < 350                                         # radius area at the distal site (mm²)
    # the cortex along the radius's central row, from its radial (outer, -x) edge: radius_cortex_mm ± 1 voxel
    row = lab[3, lab.shape[1] // 2]
    first = int(np.flatnonzero(row == LABEL["bone"])[0])
    run = int(np.flatnonzero(row[first:] != LABEL["bone"])[0])
    assert abs(run * 0.05 - w.params["radius_cortex_mm"]) <= 0.05 + 1e-9
    assert not np.any(lab[:, :, 0] == LABEL["bone"]) and not np.any(lab[:, 0] == LABEL["bone"])
    for kwargs, name in [(dict(slab_mm=0.05), "slab_mm"), (dict(radius_cortex_mm=0.01), "radius_cortex_mm"),
                         (dict(ulna_mm=(13.0,)), "ulna_mm"), (dict(notch_mm=9.0), "notch_mm")]:
        with pytest.raises(ParameterError) as exc:
            wrist(**kwargs)
        assert exc.value.name == name
