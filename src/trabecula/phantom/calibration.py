"""The twin's density calibration phantom: hydroxyapatite rods of known concentration in a cylinder, alone
(:func:`calibration_phantom`) or under an anatomical phantom in the same scan (:func:`with_calibration_rods`),
as quantitative CT scans a patient on a calibration phantom (Cann & Genant, J Comput Assist Tomogr 4:493,
1980) and HR-pQCT scans the Scanco HA phantom (0–800 mg HA/cm³ inserts).

Geometry (world mm, z along the rods, the scanner axis): ``n`` rods of ``rod_diameter_mm`` on a ring about
the phantom's axis, the first at the top (−y, anterior), the rest clockwise in the (y, x) image, in a
cylinder of ``body`` material ``rod_gap_mm`` wider than the ring of rods; each rod is the material
``ha<C>`` (:func:`trabecula.phantom._base.ha_material`), C mg HA/cm³ in a water-equivalent resin. The body
defaults to ``adipose`` (fat-equivalent, below water) so that every rod, the 0 mg/cm³ one included, differs
from its surroundings and can be found in the image without ROIs; a water-equivalent body (``body="water"``,
as many commercial phantoms) hides the 0 rod, which then needs an ROI. Edges are rasterised by majority vote
over sub-voxel samples (area preserved). ``params["rods"]`` lists every rod: material, concentration
(mg HA/cm³), centre (y, x) and diameter in world mm, z range.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from trabecula.errors import ParameterError
from trabecula.phantom._base import (
    HA_CONCENTRATIONS,
    LABEL,
    Phantom,
    check_material,
    grid_shape,
    ha_material,
    make_phantom,
    positive,
)
from trabecula.volume import as_spacing


def _ring(n: int, rod_d: float, gap: float) -> float:
    """Radius of the ring that keeps ``gap`` between neighbouring rods (0 for one rod)."""
    if n == 1:
        return 0.0
    return (rod_d + gap) / (2.0 * math.sin(math.pi / n)) if n > 2 else (rod_d + gap) / 2.0


def _disc(ny: int, nx: int, dy: float, dx: float, y0: float, x0: float, cy: float, cx: float, r: float,
          factor: int = 4) -> np.ndarray:
    """Boolean (ny, nx) mask of pixels whose majority of ``factor²`` sub-samples lie in the disc of radius
    ``r`` about (cy, cx); pixel (i, j) has its centre at (y0 + i dy, x0 + j dx) (mm)."""
    offs = (np.arange(factor) + 0.5) / factor - 0.5
    ys = y0 + np.arange(ny) * dy - cy
    xs = x0 + np.arange(nx) * dx - cx
    count = np.zeros((ny, nx), np.uint16)
    for oy in offs:
        for ox in offs:
            count += ((ys + oy * dy)[:, None] ** 2 + (xs + ox * dx)[None, :] ** 2) <= r * r
    return count * 2 > factor ** 2


def _check(concentrations: Sequence[float], rod_diameter_mm: float, rod_gap_mm: float, body: str):
    conc = [float(c) for c in concentrations]
    if not conc:
        raise ParameterError("concentrations", "needs at least one rod")
    if len(set(conc)) != len(conc):
        raise ParameterError("concentrations", f"repeats a concentration: {list(concentrations)}")
    mats = [ha_material(c) for c in conc]
    rod_d, gap = positive(rod_diameter_mm, "rod_diameter_mm"), positive(rod_gap_mm, "rod_gap_mm")
    body_id = check_material(body, "body")
    if body.startswith("ha"):
        raise ParameterError("body", f"the body must not be a calibration insert material, got {body!r}")
    return conc, mats, rod_d, gap, body_id


def _cross_section(ny: int, nx: int, dy: float, dx: float, y0: float, x0: float, cy: float, cx: float,
                   conc: list[float], mats: list[str], rod_d: float, gap: float, body_id: int,
                   base: np.ndarray | None = None) -> tuple[np.ndarray, float, list[dict[str, Any]]]:
    """Paint the phantom centred at (cy, cx) mm into a (ny, nx) label image; returns it, the body's diameter
    and the rods' records."""
    img = np.zeros((ny, nx), np.uint8) if base is None else base
    ring = _ring(len(conc), rod_d, gap)
    diameter = 2.0 * ring + rod_d + 2.0 * gap
    img[_disc(ny, nx, dy, dx, y0, x0, cy, cx, diameter / 2.0)] = body_id
    rods = []
    for k, (c, m) in enumerate(zip(conc, mats, strict=True)):
        a = 2.0 * math.pi * k / len(conc)
        ry, rx = cy - ring * math.cos(a), cx + ring * math.sin(a)
        img[_disc(ny, nx, dy, dx, y0, x0, ry, rx, rod_d / 2.0)] = LABEL[m]
        rods.append({"material": m, "concentration_mg_cm3": c, "center_yx_mm": [ry, rx], "diameter_mm": rod_d})
    return img, diameter, rods


def calibration_phantom(
    concentrations: Sequence[float] = HA_CONCENTRATIONS,
    voxel_mm: float = 0.05,
    length_mm: float = 3.0,
    rod_diameter_mm: float = 5.0,
    rod_gap_mm: float = 2.0,
    body: str = "adipose",
) -> Phantom:
    """A calibration phantom: HA rods of ``concentrations`` (mg HA/cm³, each one of
    :data:`~trabecula.phantom._base.HA_CONCENTRATIONS`) on a ring in a ``body`` cylinder, ``length_mm`` along z,
    in air; centred on the world origin (module docstring for the geometry).

    The default (five rods 0–800 mg/cm³, 5 mm across, 2 mm apart) is a cylinder about 21 mm across.
    ``params``: ``concentrations_mg_cm3``, ``rods`` (material, concentration, centre (y, x)
    and diameter in world mm, ``z_range_mm``), ``body``, ``diameter_mm``, ``length_mm``, ``voxel_mm``.
    """
    conc, mats, rod_d, gap, body_id = _check(concentrations, rod_diameter_mm, rod_gap_mm, body)
    voxel, length = positive(voxel_mm, "voxel_mm"), positive(length_mm, "length_mm")
    diameter = 2.0 * _ring(len(conc), rod_d, gap) + rod_d + 2.0 * gap
    if voxel * 6 > rod_d:
        raise ParameterError("voxel_mm", f"voxel {voxel:g} mm gives under 6 voxels across a {rod_d:g} mm rod")
    nz = grid_shape((length, 1.0, 1.0), voxel, "voxel_mm", min_voxels=1)[0]
    n = int(round(diameter / voxel)) + 4
    y0 = -(n - 1) / 2.0 * voxel
    img, diameter, rods = _cross_section(n, n, voxel, voxel, y0, y0, 0.0, 0.0, conc, mats, rod_d, gap, body_id)
    labels = np.broadcast_to(img, (nz, n, n)).copy()
    z = [-(nz - 1) / 2.0 * voxel, (nz - 1) / 2.0 * voxel]
    for r in rods:
        r["z_range_mm"] = z
    params = {"concentrations_mg_cm3": conc, "voxel_mm": voxel, "length_mm": nz * voxel, "rod_diameter_mm": rod_d,
              "rod_gap_mm": gap, "body": body, "diameter_mm": diameter, "rods": rods}
    desc = (f"HA calibration phantom: {len(conc)} rods of {', '.join(f'{c:g}' for c in conc)} mg HA/cm³ "
            f"({rod_d:g} mm) in a {diameter:.1f} mm {body} cylinder, {nz * voxel:g} mm long at {voxel:g} mm")
    return make_phantom(labels, voxel, "calibration_phantom", desc, params)


def with_calibration_rods(
    phantom: Phantom,
    concentrations: Sequence[float] = HA_CONCENTRATIONS,
    rod_diameter_mm: float = 5.0,
    rod_gap_mm: float = 2.0,
    body: str = "adipose",
    gap_mm: float = 2.0,
) -> Phantom:
    """``phantom`` with a calibration phantom (:func:`calibration_phantom`'s geometry) under it, in one grid,
    as a patient lies on the calibration phantom in clinical QCT.

    The grid is widened towards +y (posterior in the LPS frame: under a supine patient) by ``gap_mm`` of air and
    the phantom's cylinder, and in x if the cylinder is wider than the grid; the object keeps its voxels and
    their world positions (the origin moves only where x is widened), its ``truth`` and ``voi`` are padded with
    zeros. The rods run the whole z length of the grid. ``params["calibration"]`` holds the rods (centres in
    world mm) as :func:`calibration_phantom`'s ``params`` do.
    """
    if not isinstance(phantom, Phantom):
        raise ParameterError("phantom", f"expected a Phantom, got {type(phantom).__name__}")
    conc, mats, rod_d, gap, body_id = _check(concentrations, rod_diameter_mm, rod_gap_mm, body)
    space = float(gap_mm)
    if not (math.isfinite(space) and space >= 0):
        raise ParameterError("gap_mm", f"must be >= 0 mm, got {gap_mm!r}")
    dz, dy, dx = as_spacing(phantom.spacing)
    if max(dy, dx) * 6 > rod_d:
        raise ParameterError("rod_diameter_mm", f"a {rod_d:g} mm rod is under 6 voxels across at the phantom's "
                                                f"{max(dy, dx):g} mm grid")
    nz, ny, nx = phantom.shape
    oz, oy, ox = phantom.labels.origin
    diameter = 2.0 * _ring(len(conc), rod_d, gap) + rod_d + 2.0 * gap
    extra_y = int(math.ceil((space + diameter) / dy)) + 2
    need_x = int(math.ceil(diameter / dx)) + 4
    pad_x = max(0, need_x - nx)
    left = pad_x // 2
    shape = (nz, ny + extra_y, nx + pad_x)
    origin = (oz, oy, ox - left * dx)

    def pad(a: np.ndarray) -> np.ndarray:
        out = np.zeros(shape, a.dtype)
        out[:, :ny, left:left + nx] = a
        return out

    labels = pad(np.asarray(phantom.labels.numpy()))
    cy = oy + (ny - 1) * dy + space + diameter / 2.0 + dy / 2.0
    cx = origin[2] + (shape[2] - 1) * dx / 2.0
    below = np.zeros((shape[1], shape[2]), np.uint8)
    img, diameter, rods = _cross_section(shape[1], shape[2], dy, dx, origin[1], origin[2], cy, cx, conc, mats,
                                         rod_d, gap, body_id, base=below)
    img[:ny] = 0  # the object's rows stay the object's
    sel = np.broadcast_to(img > 0, shape)
    labels[sel] = np.broadcast_to(img, shape)[sel]
    z = [oz, oz + (nz - 1) * dz]
    for r in rods:
        r["z_range_mm"] = z
    cal = {"concentrations_mg_cm3": conc, "rod_diameter_mm": rod_d, "rod_gap_mm": gap, "body": body,
           "diameter_mm": diameter, "center_yx_mm": [cy, cx], "gap_mm": space, "rods": rods}
    params = {**phantom.params, "calibration": cal}
    kind = phantom.labels.provenance.extra.get("phantom", {}).get("kind", "phantom")
    truth = None if phantom.truth is None else pad(np.asarray(phantom.truth.numpy()))
    voi = None if phantom.voi is None else pad(np.asarray(phantom.voi.numpy()))
    desc = f"{phantom.description}; on an HA calibration phantom ({', '.join(f'{c:g}' for c in conc)} mg HA/cm³)"
    return make_phantom(labels, (dz, dy, dx), kind, desc, params, truth=truth, voi=voi, origin=origin)


__all__ = ["calibration_phantom", "with_calibration_rods"]
