"""Phantom generation: trabecula's Voronoi foam (``foam_bone``) against porespy's ``voronoi_edges``, side by side
in one run, on the same grid and number of cells (rods only, the same rod radius), time and peak memory and
their ratios; plus the build time of the default anatomical phantoms (``vertebral_body()``, ``phalanx()``,
which the demo scans) and of an uncalibrated 5 mm trabecular cube at 0.025 mm.

    .venv/bin/python bench/bench_phantom.py [--size 200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import measure, versions, write_results  # noqa: E402

VOXEL = 0.025
CELL = 1.1
STRUT = 0.2


def foam(n: int) -> float:
    from trabecula.phantom import FoamParams, foam_bone

    b = foam_bone((n, n, n), VOXEL, FoamParams(cell_mm=CELL, strut_mm=STRUT, plate_fraction=0.0, thickness_cv=0.0))
    return float(b.mean())


def porespy_edges(n: int) -> float:
    import porespy as ps

    ncells = max(1, round((n * VOXEL / CELL) ** 3))
    im = ps.generators.voronoi_edges([n, n, n], ncells=ncells, r=round(STRUT / 2 / VOXEL), seed=0)
    return float(1.0 - im.mean())  # porespy marks the pore space True


def vertebra() -> list:
    from trabecula.phantom import vertebral_body

    return list(vertebral_body().shape)


def phalanx() -> list:
    from trabecula.phantom import phalanx as make

    return list(make().shape)


def cube() -> list:
    from trabecula.phantom import trabecular_cube

    return list(trabecular_cube(calibrate=False).shape)


def warm(*args) -> tuple:
    """Setup: load numba's cached compilation once per process, outside the timed calls."""
    from trabecula.phantom import FoamParams, foam_bone

    foam_bone((4, 4, 4), VOXEL, FoamParams())
    return tuple(args)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=200, help="edge of the cubic grid (voxels) for the foam comparison")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats per method")
    args = ap.parse_args()
    n = args.size
    res = {"trabecula.foam_bone": measure("bench_phantom:foam", n, setup="bench_phantom:warm", repeats=args.repeats),
           "porespy.voronoi_edges": measure("bench_phantom:porespy_edges", n, repeats=args.repeats)}
    t, p = res["trabecula.foam_bone"], res["porespy.voronoi_edges"]
    ratios = {"time_trabecula_over_porespy": t["median_s"] / p["median_s"],
              "peak_delta_trabecula_over_porespy": t["peak_delta_bytes"] / max(1, p["peak_delta_bytes"])}
    for name, r in res.items():
        print(f"{name:24s} {n}³: {r['median_s']:.2f} s  +{r['peak_delta_bytes'] / 2**20:.0f} MiB  BV/TV {r['result']:.3f}")
    print(f"ratios: time {ratios['time_trabecula_over_porespy']:.2f}, peak memory {ratios['peak_delta_trabecula_over_porespy']:.2f}")
    builds = {}
    for name in ("vertebra", "phalanx", "cube"):
        r = measure("bench_phantom:" + name, setup="bench_phantom:warm", repeats=args.repeats)
        builds[name] = r
        print(f"default {name:9s} {r['result']}: {r['median_s']:.2f} s  +{r['peak_delta_bytes'] / 2**20:.0f} MiB")
    path = write_results("bench_phantom", {"size": n, "voxel_mm": VOXEL, "cell_mm": CELL, "strut_mm": STRUT,
                                           "results": res, "ratios": ratios, "builds": builds,
                                           "versions": versions("numpy", "numba", "porespy", "edt")})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
