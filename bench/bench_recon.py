"""FDK of 256³ from 360 views of 384² (cone beam): trabecula's numba backend against RTK, side by side in one
run, on the same projections — time (median of repeats, each backend in its own fresh process), peak
memory, and accuracy (relative RMSE of each against the analytic phantom and of ours against RTK).

The projections are exact line integrals of a 3-D Shepp–Logan-type ellipsoid phantom (closed-form chords,
so neither backend's projector is favoured); geometry SID 500 mm, SDD 1000 mm, detector 384 × 384 at 1 mm,
voxels 0.75 mm (192 mm field). Both use the ramp kernel; RTK is ``rtk.FDKConeBeamReconstructionFilter``
(its weighting, ramp filter and voxel-based back-projection), ours is
:func:`trabecula.scanner.recon.fdk_numba` (same FDK; numba back-projection sweeping z columns, parallel over
y). Runs alternate between the backends, each in a fresh process; numba compilation and RTK's lazy module
loading happen in the untimed set-up.

    .venv/bin/python bench/bench_recon.py [--repeats 3] [--size 256] [--views 360] [--det 384]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, measure, versions, write_results  # noqa: E402

SID, SDD, PITCH = 500.0, 1000.0, 1.0

# (centre x, y, z mm; semi-axes mm; rotation about z in degrees; density 1/mm) — a 3-D Shepp–Logan head
ELLIPSOIDS = [
    ((0, 0, 0), (69, 92, 90), 0, 0.020),
    ((0, -1.84, 0), (66.24, 87.4, 88), 0, -0.008),
    ((22, 0, -25), (11, 31, 22), -18, -0.002),
    ((-22, 0, -25), (16, 41, 22), 18, -0.002),
    ((0, 35, -25), (21, 25, 35), 0, 0.001),
    ((0, 10, -25), (4.6, 4.6, 4.6), 0, 0.002),
    ((-8, -60.5, -25), (4.6, 2.3, 2), 0, 0.002),
    ((6, -60.5, -25), (4.6, 2.3, 2), 0, 0.002),
    ((6, -10.5, 62.5), (5.6, 4, 10), 0, 0.003),
    ((0, 10, 62.5), (5.6, 5.6, 10), 0, -0.002),
]


def _params(size: int, views: int, det: int):
    from trabecula.scanner.geometry import ScanGeometry, full_angles
    from trabecula.scanner.recon import Grid

    geom = ScanGeometry(SID, SDD, full_angles(views), PITCH, PITCH, det, det,
                        -(det - 1) / 2 * PITCH, -(det - 1) / 2 * PITCH)
    vox = 192.0 / size
    grid = Grid((size, size, size), (vox, vox, vox), (-(size - 1) / 2 * vox,) * 3)
    return geom, grid


def analytic_projections(geom) -> np.ndarray:
    """Exact cone-beam line integrals of :data:`ELLIPSOIDS` (views, rows, cols), float32."""
    src, det0, eu, ev = geom.source_and_detector()
    u, v = geom.u_coords(), geom.v_coords()
    out = np.zeros((geom.n_views, geom.n_rows, geom.n_cols), np.float32)
    for b in range(geom.n_views):
        pts = det0[b][None, None] + u[None, :, None] * eu[b][None, None] + v[:, None, None] * ev[b][None, None]
        d = pts - src[b]
        d /= np.linalg.norm(d, axis=-1, keepdims=True)
        acc = np.zeros(d.shape[:2])
        for (cx, cy, cz), (ax, ay, az), rot, rho in ELLIPSOIDS:
            c, s = np.cos(np.radians(rot)), np.sin(np.radians(rot))
            R = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])  # ellipsoid frame → world (x, y, z)
            inv_axes = 1.0 / np.array([ax, ay, az])
            p0 = ((src[b] - np.array([cx, cy, cz])) @ R) * inv_axes
            dd = (d @ R) * inv_axes
            A = np.sum(dd * dd, -1)
            B = np.sum(dd * p0, -1)
            C = float(p0 @ p0) - 1.0
            disc = B * B - A * C
            acc += rho * np.where(disc > 0, 2.0 * np.sqrt(np.maximum(disc, 0.0)) / A, 0.0)
        out[b] = acc
    return out


def phantom_on_grid(grid) -> np.ndarray:
    z, y, x = (grid.origin[a] + np.arange(grid.shape[a]) * grid.spacing[a] for a in range(3))
    Z, Y, X = np.meshgrid(z, y, x, indexing="ij")
    f = np.zeros(grid.shape, np.float32)
    for (cx, cy, cz), (ax, ay, az), rot, rho in ELLIPSOIDS:
        c, s = np.cos(np.radians(rot)), np.sin(np.radians(rot))
        xr = (X - cx) * c + (Y - cy) * s
        yr = -(X - cx) * s + (Y - cy) * c
        f += np.float32(rho) * (((xr / ax) ** 2 + (yr / ay) ** 2 + ((Z - cz) / az) ** 2) <= 1)
    return f


def _cached(size: int, views: int, det: int) -> Path:
    cache = RESULTS / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"fdk_projections_{views}x{det}.npy"
    if not path.exists():
        geom, _ = _params(size, views, det)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, analytic_projections(geom))
        tmp.replace(path)
    return path


def setup_ours(size: int, views: int, det: int):
    from trabecula.scanner._kernels import warmup

    warmup()
    geom, grid = _params(size, views, det)
    return np.load(_cached(size, views, det)), geom, grid


def setup_rtk(size: int, views: int, det: int):
    import itk
    from itk import RTK as rtk

    image = itk.Image[itk.F, 3]
    rtk.FDKConeBeamReconstructionFilter[image].New()  # RTK loads its wrappers lazily (tens of seconds)
    rtk.ThreeDCircularProjectionGeometry.New()
    geom, grid = _params(size, views, det)
    return np.load(_cached(size, views, det)), geom, grid


def ours(p, geom, grid) -> np.ndarray:
    from trabecula.scanner.recon import fdk_numba

    return fdk_numba(p, geom, grid, "ramp")


def rtk(p, geom, grid) -> np.ndarray:
    from trabecula.scanner.recon import fdk_rtk

    return fdk_rtk(p, geom, grid, "ramp")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="interleaved timed runs per backend (median reported)")
    ap.add_argument("--size", type=int, default=256, help="reconstruction grid (size³)")
    ap.add_argument("--views", type=int, default=360, help="projections over 360°")
    ap.add_argument("--det", type=int, default=384, help="detector rows = columns")
    a = ap.parse_args()
    print(f"projections {a.views} × {a.det}² (analytic, cached in {RESULTS / 'cache'}) …", flush=True)
    _cached(a.size, a.views, a.det)
    # interleaved: ours, RTK, ours, RTK … each in a fresh process, so a change in the machine's load during the
    # run hits both backends alike; the medians are compared
    runs: dict[str, list] = {"ours": [], "rtk": []}
    for r in range(a.repeats):
        for name in ("ours", "rtk"):
            m = measure(f"bench_recon:{name}", a.size, a.views, a.det, setup=f"bench_recon:setup_{name}", repeats=1)
            if "error" in m:
                raise SystemExit(m["error"])
            runs[name].append(m)
            print(f"run {r + 1}: {'trabecula (numba)' if name == 'ours' else 'RTK'}: {m['median_s']:.2f} s", flush=True)

    def merged(ms: list) -> dict:
        times = [x["median_s"] for x in ms]
        return {"median_s": float(np.median(times)), "times_s": times, "peak_bytes": max(x["peak_bytes"] for x in ms),
                "base_bytes": ms[0]["base_bytes"], "result": ms[-1]["result"]}

    t_ours, t_rtk = merged(runs["ours"]), merged(runs["rtk"])
    _, grid = _params(a.size, a.views, a.det)
    truth = phantom_on_grid(grid)
    n = a.size
    zz, yy, xx = np.meshgrid(*(np.arange(n) - (n - 1) / 2,) * 3, indexing="ij")
    inside = (yy**2 + xx**2 < (0.45 * n) ** 2) & (np.abs(zz) < 0.3 * n)  # away from the cone's unsampled corners

    def rel(x, ref):
        return float(np.sqrt(np.mean((x[inside] - ref[inside]) ** 2)) / np.sqrt(np.mean(ref[inside] ** 2)))

    ro, rr = t_ours.pop("result"), t_rtk.pop("result")
    acc = {"ours_vs_rtk_rel_rmse": rel(ro, rr), "ours_vs_phantom_rel_rmse": rel(ro, truth),
           "rtk_vs_phantom_rel_rmse": rel(rr, truth)}
    speedup = t_rtk["median_s"] / t_ours["median_s"]
    print(f"speed-up trabecula/RTK: {speedup:.2f}× (goal ≥ 2×)")
    print("accuracy (relative RMSE in the central region): " + ", ".join(f"{k} {v:.2e}" for k, v in acc.items()))
    print(f"peak memory: trabecula {t_ours['peak_bytes'] / 2**20:.0f} MiB, RTK {t_rtk['peak_bytes'] / 2**20:.0f} MiB")
    path = write_results("bench_recon", {
        "task": f"FDK {a.size}³ from {a.views} views of {a.det}², ramp kernel",
        "versions": versions("numpy", "numba", "itk", "scipy"),
        "trabecula": t_ours, "rtk": t_rtk, "speedup_vs_rtk": speedup, "accuracy": acc,
        "command": "python bench/bench_recon.py " + " ".join(sys.argv[1:]),
    })
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
