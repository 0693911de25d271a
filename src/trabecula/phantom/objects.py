"""Test objects for resolution and noise: a thin wire, a slanted edge, a bar pattern, a water cylinder.

All are label phantoms centred on the world origin (z is the scanner axis). Edges are rasterised by
majority vote over ``supersample³`` sub-voxel samples, so an object's boundary lies within half a voxel
of the true one and its area is preserved; the exact geometry (what an MTF or modulation analysis
should compare against) is stored in ``params``. :func:`cylinder_labels` is the exception: a bare label
Volume sampled at voxel centres, the scanner's own test and benchmark object.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from trabecula.errors import ParameterError
from trabecula.phantom._base import (
    Phantom,
    check_material,
    grid_shape,
    make_phantom,
    positive,
    supersampled_mask,
)
from trabecula.volume import Provenance, Volume


def _two_d(value: float | Sequence[float], name: str) -> tuple[float, float]:
    vals = [value, value] if np.isscalar(value) else list(value)  # type: ignore[list-item]
    if len(vals) != 2:
        raise ParameterError(name, f"expected one or two numbers (y, x), got {value!r}")
    try:
        return float(vals[0]), float(vals[1])
    except (TypeError, ValueError) as exc:
        raise ParameterError(name, f"expected numbers, got {value!r}") from exc


def wire(
    diameter_mm: float = 0.025,
    voxel_mm: float = 0.005,
    length_mm: float = 0.2,
    fov_mm: float = 1.0,
    material: str = "tungsten",
    background: str = "air",
    offset_mm: float | Sequence[float] = (0.0, 0.0),
    supersample: int = 5,
) -> Phantom:
    """A thin wire along z (PSF / wire MTF test object), e.g. a 0.025 mm tungsten wire in air.

    The wire's axis passes through ``offset_mm`` (y, x) from the grid centre; the grid is ``fov_mm``
    square by ``length_mm``. The voxel must be smaller than the wire (at least ~2 voxels across
    for a useful disc); the wire is a disc in every slice, rasterised with ``supersample²`` samples
    per voxel.
    """
    d = positive(diameter_mm, "diameter_mm")
    voxel = positive(voxel_mm, "voxel_mm")
    fov, length = positive(fov_mm, "fov_mm"), positive(length_mm, "length_mm")
    if voxel > d:
        raise ParameterError("voxel_mm", f"voxel {voxel:g} mm is larger than the wire ({d:g} mm); use a finer grid")
    oy, ox = _two_d(offset_mm, "offset_mm")
    if max(abs(oy), abs(ox)) + d / 2 > fov / 2:
        raise ParameterError("offset_mm", f"the wire at {(oy, ox)} mm lies outside the {fov:g} mm field")
    mat, bg = check_material(material), check_material(background, "background")
    shape = grid_shape((length, fov, fov), voxel)
    disc = supersampled_mask((1, shape[1], shape[2]), voxel,
                             lambda z, y, x: (y - oy) ** 2 + (x - ox) ** 2 <= (d / 2) ** 2, factor=supersample)
    labels = np.where(np.broadcast_to(disc, shape), np.uint8(mat), np.uint8(bg))
    params = {"diameter_mm": d, "voxel_mm": voxel, "length_mm": length, "fov_mm": fov, "material": material,
              "background": background, "axis": "z", "center_yx_mm": [oy, ox]}
    return make_phantom(labels, voxel, "wire", f"{d:g} mm {material} wire along z in {background}", params)


def slanted_edge(
    angle_deg: float = 5.0,
    voxel_mm: float = 0.02,
    size_mm: float | Sequence[float] = (0.4, 4.0, 4.0),
    material: str = "pmma",
    background: str = "air",
    supersample: int = 5,
) -> Phantom:
    """A square block whose edge through the grid centre is slanted by ``angle_deg`` from the y axis.

    The block is ``material`` where ``0 <= x' <= 0.4·W`` and ``|y'| <= 0.4·W`` with
    ``x' = x cos θ + y sin θ``, ``y' = -x sin θ + y cos θ`` (W the in-plane field of view), extruded
    along z — so the edge used for the MTF is the line ``x' = 0`` (normal ``(sin θ, cos θ)`` in (y, x)),
    oversampled by the slant (IEC 62220-1 recommends 1.5°–3° for radiography; a few degrees for CT).
    """
    theta = float(angle_deg)
    if not 0.5 <= abs(theta) <= 45:
        raise ParameterError("angle_deg", f"use a slant of 0.5–45 degrees, got {angle_deg}")
    voxel = positive(voxel_mm, "voxel_mm")
    size = tuple(positive(s, "size_mm") for s in ([size_mm] * 3 if np.isscalar(size_mm) else size_mm))  # type: ignore[list-item]
    if len(size) != 3:
        raise ParameterError("size_mm", f"expected one or three numbers (z, y, x), got {size_mm!r}")
    mat, bg = check_material(material), check_material(background, "background")
    shape = grid_shape(size, voxel, min_voxels=1)
    if min(shape[1:]) < 16:
        raise ParameterError("voxel_mm", f"voxel {voxel:g} mm gives under 16 pixels across the {size[1]:g} mm field")
    W = min(size[1], size[2])
    c, s = math.cos(math.radians(theta)), math.sin(math.radians(theta))

    def inside(z, y, x):
        xp = x * c + y * s
        yp = -x * s + y * c
        return (xp >= 0) & (xp <= 0.4 * W) & (np.abs(yp) <= 0.4 * W) & (z == z)

    block = supersampled_mask((1, shape[1], shape[2]), voxel, inside, factor=supersample)
    labels = np.where(np.broadcast_to(block, shape), np.uint8(mat), np.uint8(bg))
    params = {"angle_deg": theta, "voxel_mm": voxel, "size_mm": list(size), "material": material,
              "background": background, "edge": "x cos(angle) + y sin(angle) = 0 (world mm, y/x)"}
    return make_phantom(labels, voxel, "slanted_edge", f"{material} edge slanted {theta:g}° in {background}", params)


def bar_pattern(
    lp_per_mm: Sequence[float] = (1, 2, 3, 4, 5, 6, 8, 10),
    voxel_mm: float | None = None,
    bars: int = 4,
    bar_length_mm: float = 1.0,
    thickness_mm: float = 0.5,
    gap_mm: float = 0.5,
    material: str = "aluminium",
    background: str = "pmma",
    supersample: int = 5,
) -> Phantom:
    """Line-pair groups along x: ``bars`` bars of width ``1/(2 f)`` at pitch ``1/f`` for each frequency ``f``.

    Bars run along y (``bar_length_mm``) and z (``thickness_mm``) in a ``background`` block; groups are
    separated by ``gap_mm``. ``voxel_mm`` defaults to a quarter of the narrowest bar; a voxel wider than
    half the narrowest bar cannot represent it (ParameterError). ``params["groups"]`` lists each group's
    frequency and its x range (world mm) for a modulation read-out.
    """
    freqs = [positive(f, "lp_per_mm") for f in lp_per_mm]
    if not freqs:
        raise ParameterError("lp_per_mm", "give at least one frequency")
    if int(bars) < 2:
        raise ParameterError("bars", f"need at least 2 bars per group, got {bars}")
    wmin = 1.0 / (2 * max(freqs))
    voxel = positive(voxel_mm, "voxel_mm") if voxel_mm is not None else wmin / 4.0
    if voxel > wmin / 2.0:
        raise ParameterError("voxel_mm", f"voxel {voxel:g} mm cannot represent {max(freqs):g} lp/mm bars "
                                         f"({wmin:g} mm wide); use ≤ {wmin / 2:g} mm")
    bl, th, gap = positive(bar_length_mm, "bar_length_mm"), positive(thickness_mm, "thickness_mm"), positive(gap_mm, "gap_mm")
    mat, bg = check_material(material), check_material(background, "background")
    widths = [bars / f - 1.0 / (2 * f) for f in freqs]  # a group spans (bars - 1) pitches + one bar
    total = sum(widths) + gap * (len(freqs) + 1)
    shape = grid_shape((th, bl + 2 * gap, total), voxel, min_voxels=1)
    x0 = -total / 2.0 + gap
    groups = []
    intervals = []
    for f, wdt in zip(freqs, widths, strict=True):
        starts = [x0 + k / f for k in range(int(bars))]
        intervals += [(a, a + 1.0 / (2 * f)) for a in starts]
        groups.append({"lp_per_mm": f, "bar_mm": 1.0 / (2 * f), "x_mm": [x0, x0 + wdt]})
        x0 += wdt + gap
    starts_a = np.array([a for a, _ in intervals])
    stops_a = np.array([b for _, b in intervals])

    def inside(z, y, x):
        xb = np.broadcast_to(x, np.broadcast_shapes(np.shape(x), np.shape(y)))
        k = np.searchsorted(starts_a, xb, side="right") - 1
        ok = (k >= 0) & (xb < stops_a[np.clip(k, 0, None)])
        return ok & (np.abs(y) <= bl / 2.0) & (z == z)

    pat = supersampled_mask((1, shape[1], shape[2]), voxel, inside, factor=supersample)
    labels = np.where(np.broadcast_to(pat, shape), np.uint8(mat), np.uint8(bg))
    params = {"lp_per_mm": freqs, "bars": int(bars), "voxel_mm": voxel, "bar_length_mm": bl, "thickness_mm": th,
              "gap_mm": gap, "material": material, "background": background, "groups": groups}
    return make_phantom(labels, voxel, "bar_pattern",
                        f"{material} bar pattern {min(freqs):g}–{max(freqs):g} lp/mm in {background}", params)


def water_cylinder(
    diameter_mm: float = 20.0,
    voxel_mm: float = 0.1,
    length_mm: float = 2.0,
    wall_mm: float = 0.0,
    wall: str = "pmma",
    supersample: int = 3,
) -> Phantom:
    """A uniform water cylinder along z (noise, NPS, HU calibration), optionally in a ``wall`` shell, in air.

    The grid is the cylinder's outer diameter plus two voxels each side by ``length_mm``.
    """
    d = positive(diameter_mm, "diameter_mm")
    voxel = positive(voxel_mm, "voxel_mm")
    length = positive(length_mm, "length_mm")
    if wall_mm < 0:
        raise ParameterError("wall_mm", f"must be >= 0, got {wall_mm}")
    if voxel * 4 > d:
        raise ParameterError("voxel_mm", f"voxel {voxel:g} mm is too coarse for a {d:g} mm cylinder")
    if 2 * wall_mm >= d:
        raise ParameterError("wall_mm", f"a {wall_mm:g} mm wall leaves no water in a {d:g} mm cylinder")
    wid = check_material(wall, "wall")
    outer = d / 2.0
    n = int(math.ceil(d / voxel)) + 4
    nz = max(1, int(round(length / voxel)))
    r_in = outer - float(wall_mm)
    lab2 = np.zeros((1, n, n), np.uint8)
    cyl = supersampled_mask((1, n, n), voxel, lambda z, y, x: y ** 2 + x ** 2 <= outer ** 2, factor=supersample)
    lab2[cyl] = wid if wall_mm > 0 else 1
    if wall_mm > 0:
        water = supersampled_mask((1, n, n), voxel, lambda z, y, x: y ** 2 + x ** 2 <= r_in ** 2, factor=supersample)
        lab2[water] = 1
    labels = np.broadcast_to(lab2, (nz, n, n)).copy()
    params = {"diameter_mm": d, "voxel_mm": voxel, "length_mm": length, "wall_mm": float(wall_mm), "wall": wall}
    desc = f"water cylinder ⌀{d:g} mm" + (f" in a {wall_mm:g} mm {wall} wall" if wall_mm > 0 else "")
    return make_phantom(labels, voxel, "water_cylinder", desc, params)


def cylinder_labels(diameter_mm: float = 8.0, height_mm: float = 3.0, voxel_mm: float = 0.1,
                    box_mm: float | None = None, rod_mm: float = 0.0, rod_at_mm: float = 2.5,
                    rod_material: str = "bone") -> Volume:
    """A water cylinder (axis z, centred) in air on a ``box_mm`` square grid (default: the diameter + 3 mm),
    with an optional rod of ``rod_material`` along z at ``rod_at_mm`` on +x: a label Volume (0 air, 1 water,
    2 rod; materials in ``provenance.extra["materials"]``) sampled at voxel centres, no supersampling."""
    box = box_mm or diameter_mm + 3.0
    n = int(round(box / voxel_mm))
    nz = int(round(height_mm / voxel_mm))
    c = (n - 1) / 2
    y, x = np.mgrid[:n, :n]
    yy, xx = (y - c) * voxel_mm, (x - c) * voxel_mm
    lab2 = np.zeros((n, n), np.uint8)
    lab2[np.hypot(yy, xx) < diameter_mm / 2] = 1
    mats = {"0": "air", "1": "water"}
    if rod_mm > 0:
        lab2[np.hypot(yy, xx - rod_at_mm) < rod_mm / 2] = 2
        mats["2"] = rod_material
    lab = np.broadcast_to(lab2, (nz, n, n)).copy()
    origin = tuple(-(s - 1) / 2 * voxel_mm for s in lab.shape)
    return Volume(lab, voxel_mm, origin, "label", Provenance(source="test-cylinder", extra={"materials": mats}))
