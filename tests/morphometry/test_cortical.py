"""Cortical autocontouring and parameters: analytic tubes in HU, and the twin's phalanx and wrist scanned by the
UHR-CT preset, against the cortex the phantoms were built with.

``twin_case`` is shared with ``bench/bench_cortical_twin.py``, which records the numbers quoted in
``docs/cortical.md``.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import ndimage as ndi

from trabecula.errors import ParameterError
from trabecula.morphometry.cortical import Compartments, autocontour, cortical_parameters
from trabecula.morphometry.thickness import local_thickness
from trabecula.volume import Volume

# ------------------------------------------------------------------------------------------ analytic tubes


def _tube(R=3.0, r=2.0, voxel=0.05, nz=4, cortex_hu=1800.0, marrow_hu=0.0, soft_hu=50.0, blur_mm=0.04,
          noise_hu=30.0, pores=(), seed=0):
    """An HU tube along z (outer radius R, inner r, mm) in soft tissue, blurred and noisy; ``pores`` are
    (y, x, radius) z-canals drilled into the cortex. Returns the Volume and the true masks of one slice."""
    n = int(math.ceil((R + 1.5) / voxel))
    yy, xx = (np.mgrid[-n:n + 1, -n:n + 1] * voxel).astype(np.float64)
    rho = np.hypot(yy, xx)
    outer, inner = rho <= R, rho <= r
    canal = np.zeros_like(outer)
    for py, px, pr in pores:
        canal |= np.hypot(yy - py, xx - px) <= pr
    canal &= outer & ~inner
    img = np.where(outer, np.where(inner | canal, marrow_hu, cortex_hu), soft_hu)
    if blur_mm:
        img = ndi.gaussian_filter(img, blur_mm / voxel)
    rng = np.random.default_rng(seed)
    data = np.repeat(img[None], nz, axis=0) + rng.normal(0, noise_hu, (nz, *img.shape))
    vol = Volume(data.astype(np.float32), (voxel,) * 3, (0.0, -n * voxel, -n * voxel), "HU")
    return vol, {"outer": outer, "inner": inner, "canal": canal}


def test_tube_areas_and_thickness():
    R, r, voxel = 3.0, 2.0, 0.05
    vol, _ = _tube(R, r, voxel)
    res = cortical_parameters(vol)
    assert res.tt_ar_mm2 == pytest.approx(math.pi * R**2, rel=0.02)
    assert res.ct_ar_mm2 == pytest.approx(math.pi * (R**2 - r**2), rel=0.03)
    assert res.tb_ar_mm2 == pytest.approx(math.pi * r**2, rel=0.03)
    # 20 voxels across the cortex: the local thickness is within 5 % of R - r, the annulus estimate within 3 %
    assert res.ct_th_mm == pytest.approx(R - r, rel=0.05)
    assert res.ct_th_2d_mm == pytest.approx(R - r, rel=0.05)
    assert res.ct_th_annulus_mm == pytest.approx(R - r, rel=0.03)
    assert res.ct_pm_mm == pytest.approx(2 * math.pi * R, rel=0.02)
    assert res.ct_po < 0.005                      # no pores drilled, none found in the noise
    assert res.n_slices == vol.shape[0] and len(res.per_slice) == vol.shape[0]
    assert res.threshold_method == "auto (half-way)"
    tp, te = res.threshold_periosteal, res.threshold_endosteal
    assert 700 < tp < 1100 and 700 < te < 1100    # half-way between ~1800 and ~0–50 HU
    d = json.loads(json.dumps(res.to_dict()))
    assert d["per_slice"][0]["ct_ar_mm2"] == pytest.approx(res.per_slice[0]["ct_ar_mm2"])


def test_tube_with_pores_gives_the_drilled_fraction():
    R, r, voxel = 3.0, 2.0, 0.05
    pores = [(2.5 * math.sin(a), 2.5 * math.cos(a), 0.2) for a in np.linspace(0, 2 * math.pi, 12, endpoint=False)]
    vol, truth = _tube(R, r, voxel, pores=pores, blur_mm=0.02, noise_hu=20.0)
    comp = autocontour(vol)
    res = cortical_parameters(vol, comp)
    cortex_true = truth["outer"] & ~truth["inner"]
    known = truth["canal"].sum() / cortex_true.sum()        # drilled voxels / cortex compartment voxels
    assert 0.05 < known < 0.15
    assert res.ct_po == pytest.approx(known, rel=0.10)
    # the pores stay inside the cortex compartment: the periosteal closing and the endosteal opening keep them
    assert res.ct_ar_mm2 == pytest.approx(cortex_true.sum() * voxel**2, rel=0.03)
    assert not (comp.pores & comp.endosteal).any()


def test_anisotropic_voxels_keep_the_areas():
    R, r, (dz, dy, dx) = 3.0, 2.0, (0.15, 0.05, 0.07)
    yy, xx = np.meshgrid(np.arange(-90, 91) * dy, np.arange(-65, 66) * dx, indexing="ij")
    rho = np.hypot(yy, xx)
    img = np.where(rho <= R, np.where(rho <= r, 0.0, 1800.0), 50.0)
    img = ndi.gaussian_filter(img, (0.04 / dy, 0.04 / dx))
    data = np.repeat(img[None], 3, axis=0) + np.random.default_rng(0).normal(0, 30.0, (3, *img.shape))
    res = cortical_parameters(Volume(data.astype(np.float32), (dz, dy, dx), (0.0, 0.0, 0.0), "HU"))
    assert res.tt_ar_mm2 == pytest.approx(math.pi * R**2, rel=0.02)
    assert res.ct_ar_mm2 == pytest.approx(math.pi * (R**2 - r**2), rel=0.03)
    assert res.ct_th_mm == pytest.approx(R - r, rel=0.06)
    assert res.ct_th_annulus_mm == pytest.approx(R - r, rel=0.03)
    assert res.ct_pm_mm == pytest.approx(2 * math.pi * R, rel=0.02)


def test_two_bones_chosen_by_rank_and_all():
    vol, _ = _tube(3.0, 2.0, 0.05, nz=3)
    a = vol.numpy()
    small = _tube(2.0, 1.2, 0.05, nz=3)[0].numpy()
    big = np.full((3, a.shape[1], a.shape[2] + small.shape[2]), 50.0, np.float32)
    big[:, :, :a.shape[2]] = a
    big[:, (a.shape[1] - small.shape[1]) // 2:(a.shape[1] + small.shape[1]) // 2, a.shape[2]:] = small
    two = Volume(big, vol.spacing, vol.origin, "HU")
    first = cortical_parameters(two, bone="largest")
    second = cortical_parameters(two, bone=1)
    both = cortical_parameters(two, bone="all")
    assert first.tt_ar_mm2 == pytest.approx(math.pi * 9, rel=0.02)
    assert second.tt_ar_mm2 == pytest.approx(math.pi * 4, rel=0.03)
    assert both.n_bones == 2 and both.tt_ar_mm2 == pytest.approx(first.tt_ar_mm2 + second.tt_ar_mm2, rel=0.01)
    with pytest.raises(ParameterError, match="^bone: "):
        autocontour(two, bone=2)


def test_fixed_thresholds_are_used_and_checked():
    vol, _ = _tube(nz=2)
    c = autocontour(vol, thresholds=(900, 900))
    assert c.thresholds == (900.0, 900.0) and c.threshold_method == "fixed"
    with pytest.raises(ParameterError, match="^thresholds: .*wrong units"):
        autocontour(vol, thresholds=(0.9, 9000))      # g/cm³ and µg: outside the image's values


@pytest.mark.parametrize("units", ["binary", "label", "mm"])
def test_segmentations_and_length_maps_are_refused(units):
    vol, _ = _tube(nz=2)
    wrong = Volume((vol.numpy() > 900).astype(np.uint8) if units != "mm" else vol.numpy(), vol.spacing, vol.origin,
                   units)
    with pytest.raises(ParameterError, match="^vol: units"):
        autocontour(wrong)


def test_bad_parameters_are_one_line_errors():
    vol, _ = _tube(nz=2)
    for kwargs, name in [({"close_mm": 500}, "close_mm"), ({"sigma_mm": -1}, "sigma_mm"),
                         ({"open_mm": "wide"}, "open_mm"), ({"bone": "radius"}, "bone"),
                         ({"min_pore_voxels": 0}, "min_pore_voxels"), ({"thresholds": "otsu"}, "thresholds")]:
        with pytest.raises(ParameterError, match=f"^{name}: ") as e:
            autocontour(vol, **kwargs)
        assert "\n" not in str(e.value)
    with pytest.raises(ParameterError, match="^spacing: "):
        autocontour(vol.numpy())
    with pytest.raises(ParameterError, match="^vol: "):
        autocontour(np.full((2, 40, 40), 50.0, np.float32), spacing=0.1)


def test_docstring_example_runs():
    import doctest

    import trabecula.morphometry.cortical as cortical

    result = doctest.testmod(cortical)
    assert result.attempted >= 3 and result.failed == 0


def test_no_cortex_gives_nan_with_warnings():
    vol, _ = _tube(nz=2)
    empty = np.zeros(vol.shape, bool)
    comp = Compartments(empty, empty, empty, empty, vol.spacing, (900.0, 900.0))
    res = cortical_parameters(vol, comp)
    assert math.isnan(res.ct_th_mm) and math.isnan(res.tt_ar_mm2) and res.warnings
    d = res.to_dict()
    assert math.isnan(d["ct_po"]) and d["per_slice"] == []


# ------------------------------------------------------------------------------------------------ the twin


def twin_case(kind: str):
    """A twin phantom scanned by ``uhr-extremity`` (fast image-domain model, seed 0) and its known cortex.

    ``"phalanx"``: a 10 mm phalanx (shaft 4 mm, cortex 0.6 mm) at 0.04 mm; the scan's slices within 0.6 mm of
    mid-shaft, where the cortex is its full thickness. ``"wrist"``: a 0.48 mm slab of the distal radius and
    ulna at 0.04 mm. Returns ``(scan Volume, {bone rank: truth})`` with, per bone, the generator's cortex
    thickness ``ct_th_mm`` and the areas counted from the labels on the phantom grid in the slices the scan
    covers (``tt_ar_mm2``: bone outline; ``ct_ar_mm2``: cortex = label bone minus the trabecular truth).
    """
    from trabecula.phantom import phalanx, wrist
    from trabecula.phantom._base import LABEL
    from trabecula.scanner import scan

    if kind == "phalanx":
        ph = phalanx(length_mm=10.0, voxel_mm=0.04, seed=0, shaft_diameter_mm=4.0, base_diameter_mm=4.8,
                     head_diameter_mm=4.4, cortex_mm=0.6, soft_tissue_mm=1.0)
        cortices = [ph.params["cortex_mm"]]
    elif kind == "wrist":
        ph = wrist(slab_mm=0.48, voxel_mm=0.04, seed=0)
        cortices = [ph.params["radius_cortex_mm"], ph.params["ulna_cortex_mm"]]
    else:
        raise ValueError(kind)
    vol = scan(ph, "uhr-extremity", mode="fast", seed=0, progress=False)
    if kind == "phalanx":
        z = vol.origin[0] + np.arange(vol.shape[0]) * vol.spacing[0]
        k = np.flatnonzero(np.abs(z) <= 0.6)
        vol = vol.crop(z=(int(k[0]), int(k[-1]) + 1))
    lab, struts = ph.labels.numpy(), ph.truth.numpy().astype(bool)
    pz = ph.labels.origin[0] + np.arange(lab.shape[0]) * ph.spacing[0]
    sz = vol.origin[0] + np.arange(vol.shape[0]) * vol.spacing[0]
    inside = lab == LABEL["bone"]
    for name, i in ph.materials.items():
        if "marrow" in i:
            inside |= lab == int(name)
    cortex = (lab == LABEL["bone"]) & ~struts
    px = ph.spacing[1] * ph.spacing[2]
    # the phantom slices inside the scan's slices (each scan voxel covers whole phantom voxels)
    ks = np.flatnonzero((pz > sz[0] - vol.spacing[0] / 2) & (pz < sz[-1] + vol.spacing[0] / 2))
    comp, n = ndi.label(inside[ks].any(axis=0))
    sizes = np.bincount(comp.ravel())[1:]
    truth = {}
    for rank, idx in enumerate(np.argsort(sizes)[::-1][:len(cortices)]):
        m = comp == idx + 1
        truth[rank] = {"ct_th_mm": float(cortices[rank]),
                       "tt_ar_mm2": float(np.mean([(inside[k] & m).sum() for k in ks]) * px),
                       "ct_ar_mm2": float(np.mean([(cortex[k] & m).sum() for k in ks]) * px),
                       "ct_th_lt_exact_mm": float(_exact_lt(cortex[ks] & m, ph.spacing))}
    return vol, truth


def _exact_lt(cortex: np.ndarray, spacing) -> float:
    """Local thickness (the same engine, plain mode) of the phantom's own cortex on the phantom's grid."""
    return float(local_thickness(cortex, spacing)[cortex].mean())


@pytest.fixture(scope="module", params=["phalanx", "wrist"])
def twin(request):
    return request.param, *twin_case(request.param)


def test_twin_areas_within_5_percent(twin):
    kind, vol, truth = twin
    for rank, t in truth.items():
        res = cortical_parameters(vol, bone=rank)
        assert res.threshold_method == "auto (half-way)"
        assert res.tt_ar_mm2 == pytest.approx(t["tt_ar_mm2"], rel=0.05), (kind, rank)
        assert res.ct_ar_mm2 == pytest.approx(t["ct_ar_mm2"], rel=0.05), (kind, rank)
        assert res.tb_ar_mm2 == pytest.approx(t["tt_ar_mm2"] - t["ct_ar_mm2"], rel=0.05), (kind, rank)


def test_twin_cortical_thickness(twin):
    """Ct.Th against the generator's cortex: the area / mid-perimeter estimate within 5 %. The local thickness
    (Scanco's and ORMIR's Ct.Th convention) reads high on a cortex of 7–12 voxels — +7 to +10 % measured on
    the phalanx and wrist (docs/cortical.md), of which the digitisation of the shell on the 0.08 mm grid is
    most — so it is held to 12 % here and reported, not loosened silently."""
    kind, vol, truth = twin
    for rank, t in truth.items():
        res = cortical_parameters(vol, bone=rank)
        assert res.ct_th_annulus_mm == pytest.approx(t["ct_th_mm"], rel=0.05), (kind, rank)
        assert t["ct_th_mm"] < res.ct_th_mm < 1.12 * t["ct_th_mm"], (kind, rank)
        assert res.ct_th_2d_mm == pytest.approx(res.ct_th_mm, rel=0.03)
        assert res.ct_po < 0.02          # the phantoms' cortex has no pores: what is found is noise
