"""Anatomical phantoms: a vertebral body (clinical CT) and a finger phalanx (extremity CT).

Both are label volumes in mm-true geometry: a cortical shell of ``bone`` (computed as the voxels within
the cortical thickness of the outer surface, from an exact Euclidean distance transform, ``edt``), a
trabecular core of Voronoi-foam struts (:mod:`trabecula.phantom.trabecular`) in marrow, and surrounding
soft tissue, in air. ``truth`` is the trabecular struts (cortex excluded) and ``voi`` the trabecular
region, so morphometry of a scan can be compared with the truth in the same VOI.

Sizes: defaults are small (a few mm of trabecular core at 0.05 mm, built in about a second) so the demo
can scan them with every preset; pass anatomical sizes for realism (a lumbar vertebral body is about
25 × 30 × 40 mm (height × depth × width); an adult proximal phalanx about 40 mm long with an 8 mm shaft).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, fields, replace
from typing import Any

import edt
import numpy as np

from trabecula.errors import ParameterError
from trabecula.phantom._base import LABEL, Phantom, check_material, make_phantom, positive, triple_mm
from trabecula.phantom.trabecular import FoamParams, calibrate_foam, calibration_box, foam_bone

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


def _coords(shape: Sequence[int], voxel: float):
    """Broadcastable float32 world coordinates (mm) of the voxel centres, grid centre at 0."""
    return [((np.arange(n) - (n - 1) / 2.0) * voxel).astype(np.float32).reshape([-1 if a == ax else 1 for a in range(3)])
            for ax, n in enumerate(shape)]


def vertebral_body(
    size_mm: float | Sequence[float] = (5.0, 8.0, 10.0),
    voxel_mm: float = 0.05,
    cortex_mm: float = 0.4,
    trabecular: dict[str, Any] | FoamParams | None = None,
    seed: int = 0,
    *,
    soft_tissue_mm: float = 1.0,
    marrow: str = "red_marrow",
    waist: float = 0.06,
) -> Phantom:
    """A vertebral body: cortical shell and endplates, trabecular core in marrow, soft tissue around.

    Geometry (z is the spine axis): an elliptic cylinder of height ``size_mm[0]``, antero-posterior depth
    ``size_mm[1]`` and width ``size_mm[2]``, with concave sides (radius ×``1 - waist`` at mid-height)
    and a flattened posterior wall (+y, LPS); the cortical shell and the endplates are the outer
    ``cortex_mm`` (typically 0.3–0.5 mm; at least one voxel); the rest is the trabecular core:
    Voronoi-foam struts (``trabecular``: a dict of :class:`FoamParams` fields, and/or targets
    ``bvtv``/``tb_th_mm``/``tb_sp_mm`` to calibrate; default :data:`VERTEBRA_FOAM`) in ``marrow``
    (red marrow: the adult vertebral body is haematopoietic). An elliptic cylinder of soft tissue
    ``soft_tissue_mm`` thick surrounds it (the grid is that much larger on each side); air outside.

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
    mid = check_material(marrow, "marrow")
    foam, cal = _foam_from(trabecular, VERTEBRA_FOAM, voxel, seed, "trabecular")
    shape = tuple(int(round((s + 2 * margin) / voxel)) + 2 for s in (h, d, w))
    z, y, x = _coords(shape, voxel)
    scale = 1.0 - waist * (1.0 - (2.0 * z / h) ** 2)
    ay, ax = d / 2.0 * scale, w / 2.0 * scale
    body = ((y / ay) ** 2 + (x / ax) ** 2 <= 1.0) & (np.abs(z) <= h / 2.0) & (y <= 0.72 * d / 2.0)
    labels = np.zeros(shape, np.uint8)
    soft = (y / (d / 2.0 + margin)) ** 2 + (x / (w / 2.0 + margin)) ** 2 <= 1.0
    labels[np.broadcast_to(soft, shape)] = LABEL["soft_tissue"]
    dist = _inner_distance(body, voxel)
    shell = body & (dist <= cortex)
    core = body & ~shell
    del dist
    labels[shell] = LABEL["bone"]
    truth = _fill_trabecular(labels, core, voxel, foam, seed, mid)
    params = {"size_mm": [h, d, w], "voxel_mm": voxel, "cortex_mm": cortex, "soft_tissue_mm": margin,
              "marrow": marrow, "waist": waist, "seed": int(seed), "foam": asdict(foam), **cal,
              "core_bv_tv": float(truth[core].mean()) if core.any() else 0.0}
    desc = (f"vertebral body {h:g}×{d:g}×{w:g} mm (z×y×x) at {voxel:g} mm: cortex {cortex:g} mm, "
            f"trabecular core BV/TV {params['core_bv_tv']:.3f} in {marrow}, soft tissue {margin:g} mm")
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
