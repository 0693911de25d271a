"""Time and memory to simulate one full ``uhr-extremity`` scan of a phalanx phantom (projection with noise,
then FDK), and an estimate for the scanner's full 122 × 122 × 51 mm field of view; the forward projector
against RTK's Joseph projector side by side on a subset of the same views (ratio).

Each step runs in its own fresh process (peak resident memory per step, ``bench/_common.measure``):

* ``simulate``: :func:`trabecula.scanner.simulate_projections` — material path lengths (numba Joseph, 2 × 2
  rays per element), polychromatic Beer–Lambert, focal-spot/detector blur, quantum + electronic noise;
* ``reconstruct``: :func:`trabecula.scanner.reconstruct` — flat/dark, −log, water correction, FDK (numba);
* ``projector``: path lengths for ``--peer-views`` views with trabecula's numba projector and with
  ``rtk.JosephForwardProjectionImageFilter`` (one material at a time, as RTK projects one image).

The full-FOV estimate scales the measured throughputs: projection by (views × rays × samples per ray),
reconstruction by (voxels × views), memory by the phantom's fraction maps (one byte per voxel and material)
plus projections and volume.

    .venv/bin/python bench/bench_scan.py [--length 12] [--voxel 0.05] [--peer-views 20]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import measure, versions, write_results  # noqa: E402


def make_phantom(length: float, voxel: float):
    from trabecula.phantom import phalanx

    return phalanx(length, voxel, seed=0).labels


def setup_sim(length: float, voxel: float):
    from trabecula.scanner._kernels import warmup
    from trabecula.scanner.spectrum import detector_spectrum

    warmup()
    detector_spectrum(__import__("trabecula.scanner", fromlist=["load_scanner"]).load_scanner("uhr-extremity"))
    return (make_phantom(length, voxel),)


def simulate(ph) -> dict:
    from trabecula.scanner import simulate_projections

    t0 = time.perf_counter()
    p = simulate_projections(ph, "uhr-extremity", seed=0, progress=False)
    secs = time.perf_counter() - t0
    import pickle
    import tempfile

    path = Path(tempfile.gettempdir()) / "trabecula_bench_scan_proj.pkl"
    with open(path, "wb") as f:
        pickle.dump(p, f, protocol=5)
    g = p.geometry
    return {"seconds": secs, "views": p.n_angles, "detector": list(p.data.shape[1:]), "path": str(path),
            "projection_grid_mm": g["projection_grid_mm"], "oversample": g["oversample"],
            "phantom_shape": list(ph.shape), "phantom_spacing": list(ph.spacing)}


def setup_recon(path: str):
    import pickle

    from trabecula.scanner._kernels import warmup

    warmup()
    with open(path, "rb") as f:
        return (pickle.load(f),)


def reconstruct(proj) -> dict:
    from trabecula.scanner import reconstruct as rec

    v = rec(proj)
    return {"shape": list(v.shape), "spacing": list(v.spacing)}


def setup_projector(length: float, voxel: float, n_views: int, backend: str):
    from trabecula.scanner import load_scanner
    from trabecula.scanner.geometry import detector_window, object_radius_and_height
    from trabecula.scanner.project import block_fractions, subset
    from trabecula.scanner.sampling import phantom_labels, projection_factor

    ph = make_phantom(length, voxel)
    s = load_scanner("uhr-extremity")
    vol, mats = phantom_labels(ph)
    ids = sorted(k for k, m in mats.items() if m != "air")
    f = projection_factor(vol.spacing, s)
    fr = block_fractions(vol.numpy(), ids, f)
    fsp = tuple(a * b for a, b in zip(vol.spacing, f, strict=True))
    r, z0, z1 = object_radius_and_height(vol.shape, vol.spacing, vol.origin, vol.center_mm)
    geom = detector_window(s, r, z0, z1)
    g = subset(geom, slice(0, geom.n_views, max(1, geom.n_views // n_views)))
    lo = np.asarray(vol.origin) - np.asarray(vol.spacing) / 2 - np.asarray(vol.center_mm)
    origin = tuple(lo + np.asarray(fsp) / 2 - np.asarray(fsp))
    if backend == "rtk":
        import itk
        from itk import RTK as rtk

        rtk.JosephForwardProjectionImageFilter[itk.Image[itk.F, 3], itk.Image[itk.F, 3]].New()
    else:
        from trabecula.scanner._kernels import warmup

        warmup()
    return fr, fsp, origin, g, backend


def project(fr, fsp, origin, g, backend) -> float:
    from trabecula.scanner.project import forward_project

    return float(forward_project(fr, fsp, origin, g, 2, backend).sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--length", type=float, default=12.0, help="phalanx length, mm (default 12: the phantom's default)")
    ap.add_argument("--voxel", type=float, default=0.05, help="phantom voxel, mm (default 0.05)")
    ap.add_argument("--peer-views", type=int, default=20, help="views for the projector comparison with RTK")
    a = ap.parse_args()
    from trabecula.scanner import load_scanner

    sim = measure("bench_scan:simulate", a.length, a.voxel, setup="bench_scan:setup_sim", repeats=1)
    if "error" in sim:
        raise SystemExit(sim["error"])
    info = sim.pop("result")
    print(f"simulate: {sim['median_s']:.1f} s, peak {sim['peak_bytes'] / 2**30:.2f} GiB "
          f"(phantom {info['phantom_shape']} at {info['phantom_spacing'][0]} mm, {info['views']} views × "
          f"{info['detector'][0]}×{info['detector'][1]} elements)", flush=True)
    rec = measure("bench_scan:reconstruct", info["path"], setup="bench_scan:setup_recon", repeats=1)
    if "error" in rec:
        raise SystemExit(rec["error"])
    rinfo = rec.pop("result")
    print(f"reconstruct: {rec['median_s']:.1f} s, peak {rec['peak_bytes'] / 2**30:.2f} GiB (volume {rinfo['shape']})", flush=True)
    Path(info["path"]).unlink(missing_ok=True)
    po = measure("bench_scan:project", a.length, a.voxel, a.peer_views, "numba", setup="bench_scan:setup_projector", repeats=2)
    pr = measure("bench_scan:project", a.length, a.voxel, a.peer_views, "rtk", setup="bench_scan:setup_projector", repeats=1)
    for r in (po, pr):
        if "error" in r:
            raise SystemExit(r["error"])
    ratio = pr["median_s"] / po["median_s"]
    agree = abs(po["result"] / pr["result"] - 1)
    print(f"projector, {a.peer_views} views: trabecula {po['median_s']:.2f} s, RTK {pr['median_s']:.2f} s → {ratio:.1f}× "
          f"(sums agree to {agree:.1e})", flush=True)

    # ---- estimate for the full 122 × 122 × 51 mm FOV (uhr-extremity preset)
    s = load_scanner("uhr-extremity")
    g, r = s.geometry, s.reconstruction
    k = s.simulation.oversample
    det_r, det_c = info["detector"]
    rays_here = info["views"] * det_r * k * det_c * k
    steps_here = max(info["phantom_shape"][1:]) * info["phantom_spacing"][1] / info["projection_grid_mm"][1]
    grid_full = min(info["projection_grid_mm"][1], g.pixel_u_iso_mm / k)
    rays_full = g.views * g.detector_rows * k * g.detector_cols * k
    steps_full = r.fov_mm / grid_full
    sim_full = sim["median_s"] * (rays_full * steps_full) / (rays_here * steps_here)
    vox_here = float(np.prod(rinfo["shape"]))
    vox_full = float(r.matrix * r.matrix * math.ceil(r.axial_fov_mm / r.slice_mm))
    rec_full = rec["median_s"] * vox_full / vox_here
    n_mat = 4
    phantom_vox_full = (r.fov_mm / grid_full) ** 2 * (r.axial_fov_mm / grid_full)
    mem_full = phantom_vox_full * n_mat + g.views * g.detector_rows * g.detector_cols * 4 + vox_full * 4 * 2
    est = {"projection_grid_mm": grid_full, "simulate_hours": sim_full / 3600, "reconstruct_hours": rec_full / 3600,
           "memory_gib_in_core": mem_full / 2**30,
           "assumptions": "throughputs of this run; phantom of 4 materials on the projection grid held in memory "
                          "(uint8 fraction maps), projections float32, volume float32 ×2"}
    print(f"full {r.fov_mm:g}×{r.fov_mm:g}×{r.axial_fov_mm:g} mm FOV estimate: simulate {est['simulate_hours']:.1f} h, "
          f"reconstruct {est['reconstruct_hours']:.2f} h, ≈ {est['memory_gib_in_core']:.0f} GiB in core", flush=True)
    path = write_results("bench_scan", {
        "versions": versions("numpy", "numba", "itk", "spekpy"),
        "phantom": {"kind": "phalanx", "length_mm": a.length, "voxel_mm": a.voxel, "shape": info["phantom_shape"]},
        "simulate": {**sim, **{k2: v for k2, v in info.items() if k2 != "path"}},
        "reconstruct": {**rec, **rinfo},
        "projector_vs_rtk": {"views": a.peer_views, "trabecula": po, "rtk": pr, "speedup": ratio, "relative_sum_difference": agree},
        "full_fov_estimate": est,
        "command": "python bench/bench_scan.py " + " ".join(sys.argv[1:]),
    })
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
