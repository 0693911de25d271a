"""How close each local-thickness mode comes to the true thickness: lattice-aligned and randomly oriented
analytic shapes, and a trabecular (Voronoi-foam) phantom digitised at several voxel sizes against the same
structure on a grid fine enough to have converged.

Analytic shapes are rendered oversampled (``ss`` sub-samples per axis; a voxel is bone when at least half
of it is inside) at random sub-voxel positions, and for the oriented ones random directions (uniform on the
sphere): rods along a lattice axis, spheres, and rods and plates at random orientations. The error is the
mean over the shape's voxels of the local-thickness map, over all draws, against the true diameter.

The foam is :func:`trabecula.phantom.trabecular_cube` built once on a fine grid (default 0.00625 mm, about
35 voxels across a 0.22 mm strut), then partial-volumed onto coarser grids exactly as the twin study's grid
check does (:func:`trabecula.pipeline.twin_study.partial_volume`: each voxel is bone when at least half of
its box is). Tb.Th is measured in the same central cylinder on every grid. The reference is the fine grid's
value; the subvoxel and plain modes bracket it there (their spread at the fine grid is printed), and every
coarse value is compared with the mean of the two.

    .venv/bin/python bench/bench_thickness_accuracy.py [--draws 6] [--foam-size 3] [--fine 0.00625]
                                                      [--grids 0.0125,0.025,0.05,0.08] [--no-foam] [--grey]

Results: ``bench/results/bench_thickness_accuracy-<UTC>.json`` and a table on stdout.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
from _common import versions, write_results  # noqa: E402

MODES = ("plain", "bonej", "subvoxel")


def shape_errors(draws: int, seed: int) -> dict[str, dict[str, float]]:
    from trabecula.morphometry.thickness import local_thickness
    from trabecula.phantom.shapes import (
        central_ball,
        oriented_plate,
        oriented_rod,
        oversampled_rod,
        oversampled_sphere,
        random_unit_vector,
    )

    rng = np.random.default_rng(seed)
    cases = []  # (name, true thickness, list of binaries)
    for d in (6, 8, 12):
        cases.append((f"rod along an axis, d {d}", d,
                      [oversampled_rod(d, offset=tuple(rng.uniform(-0.5, 0.5, 2))) for _ in range(draws)]))
    for r in (3, 4, 6):
        cases.append((f"sphere, d {2 * r}", 2 * r,
                      [oversampled_sphere(r, offset=tuple(rng.uniform(-0.5, 0.5, 3))) for _ in range(draws)]))
    for d in (4, 6, 8, 12):
        cases.append((f"rod, random orientation, d {d}", d,
                      [oriented_rod(d, random_unit_vector(rng), rng) for _ in range(draws)]))
    for t in (4, 6, 8, 12):
        cases.append((f"plate, random orientation, t {t}", t,
                      [oriented_plate(t, random_unit_vector(rng), rng) for _ in range(draws)]))
    out: dict[str, dict[str, float]] = {}
    for name, true, shapes in cases:
        out[name] = {}
        oriented = "random orientation" in name
        for mode in MODES:
            maps = [local_thickness(b, 1.0, mode=mode) for b in shapes]
            out[name][mode] = float(np.mean([m[b].mean() for m, b in zip(maps, shapes, strict=True)])) / true - 1
            if oriented:  # away from the image border, which cuts the shape obliquely (see central_ball)
                out[name][f"{mode}_central"] = float(np.mean(
                    [m[b & central_ball(b.shape)].mean() for m, b in zip(maps, shapes, strict=True)])) / true - 1
        print(f"{name:36s} " + "  ".join(f"{m} {out[name][m]:+7.1%}" for m in MODES)
              + ("   central: " + "  ".join(f"{m} {out[name][m + '_central']:+7.1%}" for m in MODES)
                 if oriented else ""), flush=True)
    return out


def grey_shape_errors(draws: int, seed: int, factors=(1, 2, 4)) -> dict[str, dict[str, float]]:
    """Anti-aliased shapes (coverage fractions, 8× oversampled) segmented after ``k``× trilinear interpolation
    (the ``measure(..., upsample=k)`` path) at a 0.5 threshold; mean of the map over the shape's voxels (rods
    and plates: inside :func:`central_ball`) ÷ the true diameter − 1, for ``plain`` and ``subvoxel``."""
    from trabecula.morphometry.thickness import local_thickness
    from trabecula.morphometry.upsample import upsample_linear
    from trabecula.phantom.shapes import (
        anti_aliased_sphere,
        central_ball,
        oriented_plate,
        oriented_rod,
        random_unit_vector,
    )

    rng = np.random.default_rng(seed)
    z_axis = np.array([1.0, 0.0, 0.0])
    cases = []
    for t in (6, 7, 9, 12):
        cases.append((f"plate along an axis, t {t}", t, True, [oriented_plate(t, z_axis, rng, 8, True) for _ in range(draws)]))
    for d in (6, 8, 12):
        cases.append((f"rod along an axis, d {d}", d, True, [oriented_rod(d, z_axis, rng, 8, True) for _ in range(draws)]))
    for d in (6, 8, 12):
        cases.append((f"sphere, d {d}", d, False, [anti_aliased_sphere(d, rng) for _ in range(draws)]))
    for d in (6, 8, 12):
        cases.append((f"rod, random orientation, d {d}", d, True,
                      [oriented_rod(d, random_unit_vector(rng), rng, 8, True) for _ in range(draws)]))
    for t in (6, 8, 12):
        cases.append((f"plate, random orientation, t {t}", t, True,
                      [oriented_plate(t, random_unit_vector(rng), rng, 8, True) for _ in range(draws)]))
    out: dict[str, dict[str, float]] = {}
    for name, true, central, shapes in cases:
        out[name] = {}
        for k in factors:
            for mode in ("plain", "subvoxel"):
                errs = []
                for a in shapes:
                    fine, sp, _ = upsample_linear(a, (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), k)
                    b = fine >= 0.5
                    sel = b & central_ball(b.shape) if central else b
                    errs.append(float(local_thickness(b, sp, mode=mode)[sel].mean()) / true - 1)
                out[name][f"{mode}_x{k}"] = float(np.mean(errs))
        print(f"{name:36s} " + "  ".join(f"{key} {v:+6.1%}" for key, v in out[name].items()), flush=True)
    return out


def foam_convergence(size_mm: float, fine_mm: float, grids: list[float], seed: int) -> dict:
    from trabecula.morphometry.thickness import local_thickness
    from trabecula.morphometry.voi import cylinder_voi
    from trabecula.phantom import FoamParams, trabecular_cube
    from trabecula.pipeline.twin_study import partial_volume

    # the twin study's targets (the vertebra study's micro-CT means); the foam is calibrated once on a
    # 0.025 mm grid and then rebuilt, uncalibrated, with the same parameters on the fine grid
    t0 = time.perf_counter()
    cal = trabecular_cube((size_mm,) * 3, 0.025, 0.18, 0.22, 0.93, seed=seed)
    params = cal.params["foam"]
    ph = trabecular_cube((size_mm,) * 3, fine_mm, None, None, None, seed=seed, calibrate=False,
                         foam=FoamParams(**params))
    truth = ph.truth
    print(f"foam {truth.shape} at {fine_mm} mm built in {time.perf_counter() - t0:.0f} s; strut "
          f"{params['strut_mm']:.3f} mm", flush=True)
    center = tuple(float(v) for v in truth.center_mm)
    voi_d = voi_h = size_mm * 2 / 3

    def tb_th(binary: np.ndarray, spacing, voi) -> dict[str, float]:
        return {m: float(local_thickness(binary, spacing, mode=m, mask=voi)[binary & voi].mean()) for m in MODES}

    b = truth.numpy().astype(bool)
    ref = tb_th(b, truth.spacing, cylinder_voi(truth, diameter_mm=voi_d, height_mm=voi_h, center_mm=center))
    reference = 0.5 * (ref["subvoxel"] + ref["plain"])
    rows = {f"{fine_mm:g}": {"voxels_per_strut": params["strut_mm"] / fine_mm, **ref}}
    print(f"reference {reference:.4f} mm (subvoxel {ref['subvoxel']:.4f}, plain {ref['plain']:.4f}, "
          f"bonej {ref['bonej']:.4f})", flush=True)
    for g in grids:
        pv = partial_volume(truth, (g, g, g))
        pb = pv.numpy().astype(bool)
        vals = tb_th(pb, pv.spacing, cylinder_voi(pv, diameter_mm=voi_d, height_mm=voi_h, center_mm=center))
        rows[f"{g:g}"] = {"voxels_per_strut": params["strut_mm"] / g, **vals,
                          **{f"{m}_error": vals[m] / reference - 1 for m in MODES}}
        print(f"grid {g:g} mm ({params['strut_mm'] / g:4.1f} voxels per strut): "
              + "  ".join(f"{m} {vals[m]:.4f} ({vals[m] / reference - 1:+.1%})" for m in MODES), flush=True)
    return {"foam_params": params, "fine_mm": fine_mm, "size_mm": size_mm, "voi_mm": [voi_d, voi_h],
            "reference_mm": reference, "grids": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--draws", type=int, default=6, help="random positions/orientations per analytic shape")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--foam-size", type=float, default=3.0, help="foam cube side (mm)")
    ap.add_argument("--fine", type=float, default=0.00625, help="fine (reference) grid of the foam (mm)")
    ap.add_argument("--grids", default="0.0125,0.025,0.05,0.08", help="coarser grids (mm), comma-separated")
    ap.add_argument("--no-foam", action="store_true")
    ap.add_argument("--no-shapes", action="store_true")
    ap.add_argument("--grey", action="store_true",
                    help="also anti-aliased (grey) shapes through k x interpolation (k = 1, 2, 4), about 5 min")
    args = ap.parse_args()
    payload: dict = {"versions": versions("numpy", "edt", "numba", "trabecula"), "args": vars(args)}
    if not args.no_shapes:
        payload["shapes"] = shape_errors(args.draws, args.seed)
    if args.grey:
        payload["grey_shapes"] = grey_shape_errors(min(args.draws, 3), args.seed)
    if not args.no_foam:
        payload["foam"] = foam_convergence(args.foam_size, args.fine, [float(g) for g in args.grids.split(",")],
                                           args.seed)
    print(f"wrote {write_results('bench_thickness_accuracy', payload)}")


if __name__ == "__main__":
    main()
