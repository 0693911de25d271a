"""Anatomical phantoms: a vertebral body (clinical CT), a finger phalanx and a wrist (extremity CT).

All are label volumes in mm-true geometry: a cortical shell of ``bone`` (computed as the voxels within
the cortical thickness of the outer surface, from an exact Euclidean distance transform, ``edt``), a
trabecular core in marrow — Voronoi-foam struts (:mod:`trabecula.phantom.trabecular`) or patches of a real
binary micro-CT structure quilted to fill it (:func:`trabecula.phantom.specimen.quilt_binary`) — and
surrounding soft tissue, in air. ``truth`` is the trabecular struts (cortex excluded) and ``voi`` the
trabecular region, so morphometry of a scan can be compared with the truth in the same VOI.

Sizes: the vertebra's and phalanx's defaults are small (a few mm of trabecular core at 0.05 mm, built in
about a second); pass anatomical sizes for realism (a lumbar vertebral body is about 25 × 30 × 40 mm
(height × depth × width); an adult proximal phalanx about 40 mm long with an 8 mm shaft). A full-size
body at 0.05 mm is 240 M voxels, so ``vertebral_body(..., slab_mm=...)`` builds only a central axial slab
of it (the demo's vertebra); :func:`wrist` is likewise an axial slab of the forearm at the distal radius.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any

import edt
import numpy as np

from trabecula.errors import ParameterError
from trabecula.phantom._base import LABEL, Phantom, check_material, make_phantom, positive, triple_mm
from trabecula.phantom.real import binary_of
from trabecula.phantom.specimen import quilt_binary
from trabecula.phantom.trabecular import FoamParams, calibrate_foam, calibration_box, foam_bone
from trabecula.volume import Volume

#: Foam parameters calibrated (plain-mode local thickness at 0.025 mm, 8–9 voxels per strut, 160³ box, seed 0)
#: to the vertebra study's micro-CT means (BV/TV 0.18, Tb.Th 0.22 mm, Tb.Sp 0.93 mm) with vertical anisotropy
#: 1.3 — see docs/phantom.md for the command and what they measure.
VERTEBRA_FOAM = FoamParams(cell_mm=1.1166, strut_mm=0.2301, plate_fraction=0.2323, rod_fraction=1.0, anisotropy=1.3)
#: Foam parameters calibrated the same way for finger-phalanx ends (BV/TV 0.15, Tb.Th 0.18 mm, Tb.Sp 0.70 mm),
#: stretched 1.2 along the bone axis.
PHALANX_FOAM = FoamParams(cell_mm=0.8061, strut_mm=0.2070, plate_fraction=0.0, rod_fraction=0.7221, anisotropy=1.2)

_TARGET_KEYS = ("bvtv", "tb_th_mm", "tb_sp_mm")


def _foam_from(spec: dict[str, Any] | FoamParams | None, default: FoamParams, voxel: float, seed: int,
               name: str) -> tuple[FoamParams, dict]:
    """Resolve a ``trabecular=`` argument: FoamParams fields and/or morphometry targets (calibrated)."""
    if spec is None:
        return default, {}
    if isinstance(spec, FoamParams):
        return spec.check(), {}
    if not isinstance(spec, dict):
        raise ParameterError(name, f"expected a dict of FoamParams fields or targets, got {type(spec).__name__}")
    known = {f.name for f in fields(FoamParams)}
    bad = set(spec) - known - set(_TARGET_KEYS) - {"calibrate"}
    if bad:
        raise ParameterError(name, f"unknown keys {sorted(bad)}; use {sorted(known | set(_TARGET_KEYS))}")
    p = replace(default, **{k: v for k, v in spec.items() if k in known}).check()
    targets = {k: spec[k] for k in _TARGET_KEYS if spec.get(k) is not None}
    if not targets or spec.get("calibrate") is False:
        return p, {}
    cell = targets.get("tb_sp_mm", p.cell_mm)
    box = calibration_box((10 ** 6,) * 3, voxel, cell, 128 ** 3)
    cal = calibrate_foam(box, voxel, targets.get("bvtv"), targets.get("tb_th_mm"), targets.get("tb_sp_mm"), p, seed)
    return cal.params, {"targets": targets, "measured": cal.measured, "converged": cal.converged}


def _inner_distance(mask: np.ndarray, voxel: float) -> np.ndarray:
    """Distance (mm) from each voxel inside ``mask`` to the nearest voxel outside (0 outside)."""
    return edt.edt(np.ascontiguousarray(mask, dtype=np.uint8), anisotropy=(voxel,) * 3, black_border=True,
                   parallel=2).astype(np.float32)


def _bbox(mask: np.ndarray) -> tuple[slice, slice, slice]:
    idx = [np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != ax))) for ax in range(3)]
    return tuple(slice(int(i[0]), int(i[-1]) + 1) for i in idx)  # type: ignore[return-value]


def _fill_trabecular(labels: np.ndarray, core: np.ndarray, voxel: float, foam: FoamParams, seed: int,
                     marrow_id: int) -> np.ndarray:
    """Write marrow and foam struts into ``labels`` inside ``core``; return the struts mask (truth)."""
    truth = np.zeros(core.shape, bool)
    if not core.any():
        return truth
    bb = _bbox(core)
    shape = tuple(s.stop - s.start for s in bb)
    struts = foam_bone(shape, voxel, foam, seed) & core[bb]
    truth[bb] = struts
    labels[core] = marrow_id
    labels[truth] = LABEL["bone"]
    return truth


def _real_from(spec: Any, voxel: float, seed: int, name: str) -> tuple[np.ndarray, dict] | None:
    """A real trabecular structure given as ``trabecular=``: a binary :class:`Volume` (isotropic spacing equal
    to ``voxel``) or a boolean array on the phantom's voxel; None for anything else (a foam spec)."""
    if isinstance(spec, Volume):
        sp = np.asarray(spec.spacing, float)
        if not np.allclose(sp, voxel, rtol=1e-3):
            raise ParameterError(name, f"real structure on {tuple(sp)} mm voxels; the phantom's voxel is {voxel:g} mm "
                                       "(resample the structure first, e.g. trabecula.phantom.didsr_region(..., "
                                       "target_spacing=...))")
        b, source = binary_of(spec, name), Path(str(spec.provenance.source or "a binary volume")).name
    elif isinstance(spec, np.ndarray):
        b, source = np.asarray(spec) != 0, "a binary array"
    else:
        return None
    if b.ndim != 3 or min(b.shape) < 2 or b.mean() in (0.0, 1.0):
        raise ParameterError(name, f"real structure must be a 3-D binary volume with bone and marrow, got shape {b.shape}")
    return b, {"kind": "real", "source": source, "shape": list(b.shape), "bv_tv_source": float(b.mean()),
               "tiling": f"quilted patches (flips, windows, 1 mm blended overlaps), seed {seed}"}


def _fill_real(labels: np.ndarray, core: np.ndarray, real: np.ndarray, seed: int, marrow_id: int) -> np.ndarray:
    """Write marrow and a real binary structure into ``labels`` inside ``core``: patches of the structure
    quilted over the core's bounding box (:func:`~trabecula.phantom.specimen.quilt_binary`, seeded); return
    the struts mask (truth)."""
    truth = np.zeros(core.shape, bool)
    if not core.any():
        return truth
    bb = _bbox(core)
    shape = tuple(s.stop - s.start for s in bb)
    truth[bb] = quilt_binary(real, shape, seed=seed) & core[bb]
    labels[core] = marrow_id
    labels[truth] = LABEL["bone"]
    return truth


def _trabecular_core(labels: np.ndarray, core: np.ndarray, voxel: float, spec: Any, default: FoamParams,
                     seed: int, marrow_id: int, name: str = "trabecular") -> tuple[np.ndarray, dict]:
    """Fill ``core`` with real structure (``spec`` a binary Volume/array) or foam (``spec`` a FoamParams, a dict
    of fields/targets, or None for ``default``); return the truth and the JSON-able record of what filled it
    (``{"trabecular": {...}}`` for real structure, ``{"foam": {...}, ...calibration}`` for foam)."""
    real = _real_from(spec, voxel, seed, name)
    if real is not None:
        return _fill_real(labels, core, real[0], seed, marrow_id), {"trabecular": real[1]}
    foam, cal = _foam_from(spec, default, voxel, seed, name)
    return _fill_trabecular(labels, core, voxel, foam, seed, marrow_id), {"foam": asdict(foam), **cal}


def _coords(shape: Sequence[int], voxel: float):
    """Broadcastable float32 world coordinates (mm) of the voxel centres, grid centre at 0."""
    return [((np.arange(n) - (n - 1) / 2.0) * voxel).astype(np.float32).reshape([-1 if a == ax else 1 for a in range(3)])
            for ax, n in enumerate(shape)]


def vertebral_body(
    size_mm: float | Sequence[float] = (5.0, 8.0, 10.0),
    voxel_mm: float = 0.05,
    cortex_mm: float = 0.4,
    trabecular: dict[str, Any] | FoamParams | Volume | np.ndarray | None = None,
    seed: int = 0,
    *,
    soft_tissue_mm: float = 1.0,
    marrow: str = "red_marrow",
    waist: float = 0.06,
    slab_mm: float | None = None,
) -> Phantom:
    """A vertebral body: cortical shell and endplates, trabecular core in marrow, soft tissue around.

    Geometry (z is the spine axis, +y posterior): height ``size_mm[0]``, antero-posterior depth
    ``size_mm[1]`` and width ``size_mm[2]`` (outer sizes at the endplates). The cross-section is an ellipse
    of semi-axes (``size_mm[1]`` / 1.72, ``size_mm[2]`` / 2) cut by a flat posterior wall at 0.72 of its
    antero-posterior semi-axis, shifted so the depth ``size_mm[1]`` is centred on the grid; the sides are
    concave (the ellipse ×``1 - waist`` at mid-height, ×1 at the endplates). The cortical shell and the
    endplates are the outer ``cortex_mm`` (typically 0.3–0.5 mm; at least one voxel); the rest is the
    trabecular core in ``marrow`` (red marrow: the adult vertebral body is haematopoietic), filled with

    * Voronoi-foam struts (``trabecular``: a dict of :class:`FoamParams` fields and/or targets
      ``bvtv``/``tb_th_mm``/``tb_sp_mm`` to calibrate, a FoamParams, or None for :data:`VERTEBRA_FOAM`), or
    * a real structure (``trabecular``: a binary :class:`Volume` on ``voxel_mm`` voxels, e.g. a DIDSR L1
      micro-CT region, or a boolean array), its patches quilted over the core (random flips and windows,
      blended overlaps, seeded: :func:`~trabecula.phantom.specimen.quilt_binary`; its axis 0 along the spine).

    An elliptic cylinder of soft tissue ``soft_tissue_mm`` thick surrounds it (the grid is that much larger
    on each side); air outside.

    ``slab_mm``: build only the central axial slab ``|z| <= slab_mm / 2`` of that body (a full-size body at
    0.05 mm does not fit a demo): same geometry and world frame (z = 0 at mid-height), the cortex computed
    from the whole body's surface, so the slab's top and bottom faces cut through trabecular bone (the
    endplates lie outside it); no soft tissue above or below.

    Returns a :class:`Phantom` with ``truth`` = trabecular struts and ``voi`` = the trabecular core.
    """
    h, d, w = triple_mm(size_mm, "size_mm")
    voxel = positive(voxel_mm, "voxel_mm")
    cortex = positive(cortex_mm, "cortex_mm")
    margin = float(soft_tissue_mm)
    if margin < 0:
        raise ParameterError("soft_tissue_mm", f"must be >= 0, got {soft_tissue_mm}")
    if voxel * 8 > min(h, d, w):
        raise ParameterError("voxel_mm", f"voxel {voxel:g} mm is too coarse for a {h:g}×{d:g}×{w:g} mm body")
    if cortex < voxel:
        raise ParameterError("cortex_mm", f"{cortex:g} mm is thinner than one voxel ({voxel:g} mm); use a finer voxel_mm")
    if 2 * cortex >= 0.5 * min(h, d, w):
        raise ParameterError("cortex_mm", f"{cortex:g} mm leaves no trabecular core in a {h:g}×{d:g}×{w:g} mm body")
    if not 0 <= waist < 0.5:
        raise ParameterError("waist", f"must be in [0, 0.5), got {waist}")
    slab = None if slab_mm is None else positive(slab_mm, "slab_mm")
    if slab is not None and not 2 * voxel <= slab <= h:
        raise ParameterError("slab_mm", f"must lie between two voxels ({2 * voxel:g} mm) and the height ({h:g} mm), got {slab:g}")
    mid = check_material(marrow, "marrow")
    in_plane = tuple(int(round((s + 2 * margin) / voxel)) + 2 for s in (d, w))
    if slab is None:
        shape, pad = (int(round((h + 2 * margin) / voxel)) + 2, *in_plane), 0
    else:  # the slab, plus enough slices above and below that its cortex comes from the whole body's surface
        shape, pad = (max(2, int(round(slab / voxel))), *in_plane), int(np.ceil(cortex / voxel)) + 1
    z, y, x = _coords((shape[0] + 2 * pad, *in_plane), voxel)
    scale = 1.0 - waist * (1.0 - (2.0 * z / h) ** 2)
    ay0 = d / 1.72  # ellipse semi-axis: depth = ay0 (anterior) + 0.72 ay0 (posterior wall)
    yc = 0.14 * ay0  # centres the depth: the body spans y in [-d/2, d/2] at the endplates
    ay, ax = ay0 * scale, w / 2.0 * scale
    body = (((y - yc) / ay) ** 2 + (x / ax) ** 2 <= 1.0) & (np.abs(z) <= h / 2.0) & (y <= yc + 0.72 * ay0)
    dist = _inner_distance(body, voxel)
    inner = slice(pad, pad + shape[0])
    body, dist = body[inner], dist[inner]
    labels = np.zeros(shape, np.uint8)
    soft = (y / (d / 2.0 + margin)) ** 2 + (x / (w / 2.0 + margin)) ** 2 <= 1.0
    labels[np.broadcast_to(soft, shape)] = LABEL["soft_tissue"]
    shell = body & (dist <= cortex)
    core = body & ~shell
    del dist
    labels[shell] = LABEL["bone"]
    truth, filled = _trabecular_core(labels, core, voxel, trabecular, VERTEBRA_FOAM, seed, mid)
    params = {"size_mm": [h, d, w], "voxel_mm": voxel, "cortex_mm": cortex, "soft_tissue_mm": margin,
              "marrow": marrow, "waist": waist, "seed": int(seed), **filled,
              "core_bv_tv": float(truth[core].mean()) if core.any() else 0.0}
    what = (f"real structure ({filled['trabecular']['source']}, quilted)" if "trabecular" in filled
            else "foam")
    desc = (f"vertebral body {h:g}×{d:g}×{w:g} mm (z×y×x) at {voxel:g} mm: cortex and endplates {cortex:g} mm, "
            f"trabecular core of {what} BV/TV {params['core_bv_tv']:.3f} in {marrow}, soft tissue {margin:g} mm")
    if slab is not None:
        params["slab_mm"] = shape[0] * voxel
        desc = f"central {shape[0] * voxel:g} mm axial slab of a " + desc + " (the endplates lie outside the slab)"
    return make_phantom(labels, voxel, "vertebral_body", desc, params, truth=truth, voi=core)


def phalanx(
    length_mm: float = 12.0,
    voxel_mm: float = 0.05,
    seed: int = 0,
    *,
    shaft_diameter_mm: float | None = None,
    base_diameter_mm: float | None = None,
    head_diameter_mm: float | None = None,
    cortex_mm: float | None = None,
    end_cortex_mm: float = 0.25,
    soft_tissue_mm: float = 2.0,
    trabecular: dict[str, Any] | FoamParams | None = None,
    marrow: str = "yellow_marrow",
) -> Phantom:
    """A finger phalanx along z: tubular cortical shaft, flared trabecular ends, marrow, soft tissue.

    Geometry (proximal base at -z, head at +z): the outer radius runs from the base
    (``base_diameter_mm``, default 0.4 × length) through the shaft (``shaft_diameter_mm``, 0.24 ×
    length) to the head (``head_diameter_mm``, 0.32 × length), with dorsal-palmar depth 0.8 × width
    and domed articular ends. The cortex is ``cortex_mm`` thick in the shaft (default 0.15 × the shaft
    diameter, ≈ 1 mm in an adult) thinning to ``end_cortex_mm`` at the ends. The ends (outer 30 % of the
    length at each side) hold Voronoi-foam trabeculae (default :data:`PHALANX_FOAM`, stretched along the
    bone axis) in ``marrow`` (yellow: adult extremity marrow is fatty); the shaft holds a marrow-filled
    medullary cavity. Soft tissue (``soft_tissue_mm``, an elliptic cylinder) surrounds it; air outside.

    Returns a :class:`Phantom` with ``truth`` = trabecular struts and ``voi`` = the trabecular ends.
    """
    L = positive(length_mm, "length_mm")
    voxel = positive(voxel_mm, "voxel_mm")
    ds = positive(shaft_diameter_mm, "shaft_diameter_mm") if shaft_diameter_mm is not None else 0.24 * L
    db = positive(base_diameter_mm, "base_diameter_mm") if base_diameter_mm is not None else 0.4 * L
    dh = positive(head_diameter_mm, "head_diameter_mm") if head_diameter_mm is not None else 0.32 * L
    cs = positive(cortex_mm, "cortex_mm") if cortex_mm is not None else 0.15 * ds
    ce = positive(end_cortex_mm, "end_cortex_mm")
    margin = float(soft_tissue_mm)
    if margin < 0:
        raise ParameterError("soft_tissue_mm", f"must be >= 0, got {soft_tissue_mm}")
    if voxel * 8 > ds:
        raise ParameterError("voxel_mm", f"voxel {voxel:g} mm is too coarse for a {ds:g} mm shaft")
    if min(cs, ce) < voxel:
        raise ParameterError("cortex_mm", f"cortex ({min(cs, ce):g} mm) thinner than one voxel ({voxel:g} mm); use a finer voxel_mm")
    if cs >= ds / 2.5:
        raise ParameterError("cortex_mm", f"{cs:g} mm leaves no medullary cavity in a {ds:g} mm shaft")
    mid = check_material(marrow, "marrow")
    foam, cal = _foam_from(trabecular, PHALANX_FOAM, voxel, seed, "trabecular")
    rmax = max(db, dh, ds) / 2.0
    shape = (int(round((L + 2 * margin) / voxel)) + 2,) + (int(round((2 * rmax + 2 * margin) / voxel)) + 2,) * 2
    z, y, x = _coords(shape, voxel)
    zn = 2.0 * z / L  # -1 at the base, +1 at the head
    width = 0.18
    r = (ds / 2.0 + (db - ds) / 2.0 * np.exp(-(((zn + 1.0) / 0.55) ** 2))
         + (dh - ds) / 2.0 * np.exp(-(((zn - 1.0) / 0.5) ** 2)))
    ry, rx = 0.8 * r, r
    rho2 = (y / ry) ** 2 + (x / rx) ** 2
    # domed articular ends: the end surface recedes by `width * radius` at the rim
    dome = width * r * rho2
    body = (rho2 <= 1.0) & (z >= -L / 2.0 + dome) & (z <= L / 2.0 - dome)
    labels = np.zeros(shape, np.uint8)
    soft = (y / (0.8 * rmax + margin)) ** 2 + (x / (rmax + margin)) ** 2 <= 1.0
    labels[np.broadcast_to(soft, shape)] = LABEL["soft_tissue"]
    shaftness = np.exp(-((zn / 0.45) ** 4))  # 1 in the mid-shaft, 0 at the ends
    thick = ce + (cs - ce) * shaftness
    dist = _inner_distance(body, voxel)
    shell = body & (dist <= thick)
    inside = body & ~shell
    del dist
    labels[shell] = LABEL["bone"]
    ends = inside & (np.abs(zn) >= 0.4)
    cavity = inside & ~ends
    labels[cavity] = mid
    truth = _fill_trabecular(labels, ends, voxel, foam, seed, mid)
    params = {"length_mm": L, "voxel_mm": voxel, "shaft_diameter_mm": ds, "base_diameter_mm": db,
              "head_diameter_mm": dh, "cortex_mm": cs, "end_cortex_mm": ce, "soft_tissue_mm": margin,
              "marrow": marrow, "seed": int(seed), "foam": asdict(foam), **cal,
              "ends_bv_tv": float(truth[ends].mean()) if ends.any() else 0.0}
    desc = (f"phalanx {L:g} mm long (shaft {ds:.3g} mm, base {db:.3g} mm, head {dh:.3g} mm) at {voxel:g} mm: "
            f"cortex {cs:.3g}→{ce:.3g} mm, trabecular ends BV/TV {params['ends_bv_tv']:.3f} in {marrow}")
    return make_phantom(labels, voxel, "phalanx", desc, params, truth=truth, voi=ends)


def wrist(
    slab_mm: float = 3.0,
    voxel_mm: float = 0.05,
    seed: int = 0,
    *,
    radius_mm: Sequence[float] = (24.0, 16.0),
    ulna_mm: Sequence[float] = (13.0, 12.0),
    gap_mm: float = 1.5,
    notch_mm: float = 2.0,
    radius_cortex_mm: float = 0.8,
    ulna_cortex_mm: float = 1.0,
    soft_tissue_mm: float = 3.0,
    trabecular: dict[str, Any] | FoamParams | Volume | np.ndarray | None = None,
    marrow: str = "yellow_marrow",
) -> Phantom:
    """The wrist at the distal radius: an axial slab through the radius and the ulna, in soft tissue.

    Geometry (z along the forearm, y antero-posterior, x across; the slab is a prism — the bones' taper over
    a few mm is neglected): the radius is an ellipse ``radius_mm`` (width × depth) whose ulnar side is
    hollowed by the sigmoid notch: the ulna, an ellipse ``ulna_mm``, sits ``notch_mm`` inside the radius's
    ellipse, and the radius loses the points within ``gap_mm`` of it (the distal radio-ulnar joint space);
    the pair is centred on the grid. Each bone has a cortical shell
    (``radius_cortex_mm``, ``ulna_cortex_mm``; the voxels within that distance of its outline, exact EDT in
    the plane) around a trabecular core in ``marrow`` (yellow: adult forearm marrow is fatty), filled with
    foam (default :data:`PHALANX_FOAM`, the extremity foam, stretched along the forearm; each bone its own
    seed) or a real binary structure (``trabecular`` as in :func:`vertebral_body`). An elliptic cylinder of
    soft tissue ``soft_tissue_mm`` beyond the bones surrounds them; air outside (a scan's ``body="wrist"``
    puts the rest of the wrist around the grid, ``medium`` fills its corners).

    Sizes: about the standard HR-pQCT distal radius site (9.5 mm proximal to the radial endplate), where an
    adult radius has a total cross-sectional area of about 250–350 mm² and a cortex under 1 mm (Boutroy et
    al., J Clin Endocrinol Metab 90:6508, 2005); the default radius (24 × 16 mm) has about 290 mm².

    Returns a :class:`Phantom` with ``truth`` = trabecular struts of both bones and ``voi`` = their cores.
    """
    slab = positive(slab_mm, "slab_mm")
    voxel = positive(voxel_mm, "voxel_mm")
    rw, rd = (positive(v, "radius_mm") for v in _pair(radius_mm, "radius_mm"))
    uw, ud = (positive(v, "ulna_mm") for v in _pair(ulna_mm, "ulna_mm"))
    gap = positive(gap_mm, "gap_mm")
    notch = float(notch_mm)
    if not 0 <= notch < min(rw, uw) / 2:
        raise ParameterError("notch_mm", f"must be in [0, {min(rw, uw) / 2:g}) mm, got {notch_mm}")
    cr, cu = positive(radius_cortex_mm, "radius_cortex_mm"), positive(ulna_cortex_mm, "ulna_cortex_mm")
    margin = float(soft_tissue_mm)
    if margin < 0:
        raise ParameterError("soft_tissue_mm", f"must be >= 0, got {soft_tissue_mm}")
    if slab < 2 * voxel:
        raise ParameterError("slab_mm", f"must be at least two voxels ({2 * voxel:g} mm), got {slab:g}")
    if voxel * 8 > min(uw, ud):
        raise ParameterError("voxel_mm", f"voxel {voxel:g} mm is too coarse for a {uw:g}×{ud:g} mm ulna")
    if min(cr, cu) < voxel:
        raise ParameterError("radius_cortex_mm" if cr < voxel else "ulna_cortex_mm",
                             f"cortex ({min(cr, cu):g} mm) thinner than one voxel ({voxel:g} mm); use a finer voxel_mm")
    if 2 * cr >= 0.5 * min(rw, rd) or 2 * cu >= 0.5 * min(uw, ud):
        raise ParameterError("radius_cortex_mm" if 2 * cr >= 0.5 * min(rw, rd) else "ulna_cortex_mm",
                             "the cortex leaves no trabecular core")
    mid = check_material(marrow, "marrow")
    width, depth = rw + gap + uw - notch, max(rd, ud)
    shape = (max(2, int(round(slab / voxel))), int(round((depth + 2 * margin) / voxel)) + 2,
             int(round((width + 2 * margin) / voxel)) + 2)
    _, y, x = _coords((1, *shape[1:]), voxel)
    xr, xu = -width / 2.0 + rw / 2.0, width / 2.0 - uw / 2.0
    ulna = ((x - xu) / (uw / 2.0)) ** 2 + (y / (ud / 2.0)) ** 2 <= 1.0
    near_ulna = ((x - xu) / (uw / 2.0 + gap)) ** 2 + (y / (ud / 2.0 + gap)) ** 2 <= 1.0
    radius = (((x - xr) / (rw / 2.0)) ** 2 + (y / (rd / 2.0)) ** 2 <= 1.0) & ~near_ulna
    labels = np.zeros(shape, np.uint8)
    soft = (y / (depth / 2.0 + margin)) ** 2 + (x / (width / 2.0 + margin)) ** 2 <= 1.0
    labels[np.broadcast_to(soft, shape)] = LABEL["soft_tissue"]
    truth = np.zeros(shape, bool)
    cores = np.zeros(shape, bool)
    record: dict[str, Any] = {}
    for k, (name, mask, cortex) in enumerate((("radius", radius, cr), ("ulna", ulna, cu))):
        m2 = mask[0]
        dist = edt.edt(np.ascontiguousarray(m2, dtype=np.uint8), anisotropy=(voxel,) * 2, black_border=True)
        shell = np.broadcast_to(m2 & (dist <= cortex), shape)
        core = np.broadcast_to(m2 & (dist > cortex), shape).copy()
        labels[shell] = LABEL["bone"]
        t, filled = _trabecular_core(labels, core, voxel, trabecular, PHALANX_FOAM, seed + k, mid)
        truth |= t
        cores |= core
        record[name] = {**filled, "core_bv_tv": float(t[core].mean()) if core.any() else 0.0,
                        "area_mm2": float(m2.sum() * voxel**2)}
    params = {"slab_mm": shape[0] * voxel, "voxel_mm": voxel, "radius_mm": [rw, rd], "ulna_mm": [uw, ud],
              "gap_mm": gap, "notch_mm": notch, "radius_cortex_mm": cr, "ulna_cortex_mm": cu, "soft_tissue_mm": margin,
              "marrow": marrow, "seed": int(seed), **record,
              "core_bv_tv": float(truth[cores].mean()) if cores.any() else 0.0}
    what = (f"real structure ({record['radius']['trabecular']['source']}, quilted)"
            if "trabecular" in record["radius"] else "foam")
    desc = (f"wrist: {shape[0] * voxel:g} mm axial slab at the distal radius at {voxel:g} mm: radius {rw:g}×{rd:g} mm "
            f"({record['radius']['area_mm2']:.0f} mm², cortex {cr:g} mm), ulna {uw:g}×{ud:g} mm (cortex {cu:g} mm), "
            f"trabecular cores of {what} BV/TV {params['core_bv_tv']:.3f} in {marrow}, soft tissue {margin:g} mm")
    return make_phantom(labels, voxel, "wrist", desc, params, truth=truth, voi=cores)


def _pair(v: Sequence[float], name: str) -> tuple[float, float]:
    """Two numbers (width, depth) from a sequence; a ParameterError otherwise."""
    try:
        a, b = (float(t) for t in v)
    except (TypeError, ValueError):
        raise ParameterError(name, f"expected (width, depth) in mm, got {v!r}") from None
    return a, b
