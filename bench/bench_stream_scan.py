"""A full-field ``uhr-extremity`` twin scan, slab by slab (:mod:`trabecula.scanner.stream`): time per slab,
peak memory, total, and the projected time on N dask workers.

The phantom fills the S1 field of view (the extremity UHR-CT document: 122 × 122 mm in-plane × 51 mm axial at
0.08 mm): 1525 × 1525 × 640 labels at 0.08 mm, a 120 mm cylinder (the widest the 1536-element detector
sees without truncation) with a 1.5 mm bone cortex around trabecular-like bone in marrow (a gyroid sheet
network of 1.1 mm cells, bone volume fraction about 0.2; air outside the cylinder). It is written once, slab by
slab, to ``PHANTOM.zarr`` and read lazily from there: it is never whole in memory.

Steps (each prints a line and goes into the JSON record):

1. ``sample``: the streamed scan (projection with noise + streamed FDK to a Zarr) of the whole phantom with
   ``--sample-views`` of the preset's views (every detector row: ``full_detector``, the cylinder is taller than
   the cone covers at its edges), in this process on the in-process scheduler (numba on both cores): time
   per slab, peak RSS, totals; the projection and back-projection times scale with the number of views, the
   phantom reading per slab with the number of view blocks, so the full-views time is extrapolated from them.
2. ``scaling``: the projection of ``--scaling-views`` views on a ``distributed.LocalCluster`` of 1 and of 2
   single-threaded worker processes (numba one thread per task): the 2-worker speed-up and the core-seconds
   per view, from which the time on N workers is projected as (serial client part) + (task core-seconds) /
   (N × efficiency), the efficiency being the measured speed-up / 2.
3. ``--full``: the whole scan at the preset's 600 views (hours on this machine; see the docs for the
   background command).

Commands (the numbers in docs/scanner.md, "Large scans, slab by slab"):

    .venv/bin/python bench/bench_stream_scan.py                       # sample (12 views) + scaling (4 views), ~36 min
    .venv/bin/python bench/bench_stream_scan.py --sample-views 24 --no-scaling
    nohup .venv/bin/python bench/bench_stream_scan.py --full --no-scaling \\
        > bench/results/stream_scan_full.log 2>&1 &                       # the full 600-view scan

Results: ``bench/results/bench_stream_scan-<time>.json`` (and the phantom, reconstructions under
``bench/results/stream_scan/``, removed with ``--clean``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import _peak_rss_bytes, versions, write_results  # noqa: E402

HERE = Path(__file__).resolve().parent
SHAPE = (640, 1525, 1525)
VOXEL = 0.08
RADIUS_MM = 60.0
CORTEX_MM = 1.5
CELL_MM = 1.1
MATERIALS = {"0": "air", "1": "bone", "2": "marrow"}


def gyroid_slab(z0: int, nz: int, shape=SHAPE, voxel=VOXEL) -> np.ndarray:
    """Labels of slices z0 … z0 + nz − 1: cortex and gyroid trabeculae (bone 1) in marrow (2) inside the cylinder."""
    ny, nx = shape[1:]
    y = (np.arange(ny) - (ny - 1) / 2) * voxel
    x = (np.arange(nx) - (nx - 1) / 2) * voxel
    r = np.hypot(y[:, None], x[None, :])
    k = 2 * np.pi / CELL_MM
    sx, cx = np.sin(k * x)[None, :], np.cos(k * x)[None, :]
    sy, cy = np.sin(k * y)[:, None], np.cos(k * y)[:, None]
    out = np.zeros((nz, ny, nx), np.uint8)
    inside = r < RADIUS_MM
    cortex = inside & (r >= RADIUS_MM - CORTEX_MM)
    for i in range(nz):
        z = (z0 + i - (shape[0] - 1) / 2) * voxel
        sz, cz = math.sin(k * z), math.cos(k * z)
        g = sx * cy + sy * cz + sz * cx  # gyroid: sin x cos y + sin y cos z + sin z cos x
        sl = np.where(inside, np.uint8(2), np.uint8(0))
        sl[inside & (np.abs(g) < 0.32)] = 1
        sl[cortex] = 1
        out[i] = sl
    return out


def make_phantom(path: Path, slices: int) -> dict:
    """Write the phantom slab by slab as a Zarr array with trabecula's attributes (spacing, labels, materials)."""
    import zarr

    from trabecula.io.formats import META_KEY, volume_meta
    from trabecula.volume import Provenance, Volume

    shape = (slices, SHAPE[1], SHAPE[2])
    t0 = time.perf_counter()
    z = zarr.create_array(store=str(path), shape=shape, chunks=(16, 512, 512), dtype=np.uint8, overwrite=True)
    for a in range(0, slices, 16):
        b = min(slices, a + 16)
        z[a:b] = gyroid_slab(a, b - a, shape)
    prov = Provenance(source="bench_stream_scan gyroid cylinder", steps=[
        f"{2 * RADIUS_MM:g} mm cylinder, {CORTEX_MM:g} mm cortex, gyroid trabeculae ({CELL_MM:g} mm cells)"],
        extra={"materials": MATERIALS})
    origin = tuple(-(n - 1) / 2 * VOXEL for n in shape)
    z.attrs[META_KEY] = volume_meta(Volume(np.zeros((1, 1, 1), np.uint8), VOXEL, origin, "label", prov))
    return {"seconds": time.perf_counter() - t0, "shape": list(shape)}


def scanner(views: int):
    from trabecula.scanner.config import load_scanner

    return load_scanner("uhr-extremity").replace(geometry={"views": int(views)})


def sample_run(phantom, views: int, out: Path, slab_mm: float) -> dict:
    from trabecula.scanner.stream import stream_scan

    stats: dict = {}
    t0 = time.perf_counter()
    stream_scan(phantom, scanner(views), out, seed=0, body="NONE", medium="air", slab_mm=slab_mm,
                radius_mm=RADIUS_MM, full_detector=True, scheduler="sync", force=True, stats=stats)
    return {"views": views, "seconds": time.perf_counter() - t0, "peak_rss_gib": _peak_rss_bytes() / 2**30,
            **stats}


def scaling_run(phantom, views: int, slab_mm: float) -> dict:
    from distributed import Client, LocalCluster

    from trabecula.scanner.stream import stream_projections

    res = {}
    for n in (1, 2):
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0") as cl, \
                Client(cl) as client:
            warm = phantom.replace(data=phantom.data[:8])  # load the numba kernels in every worker first
            stream_projections(warm, scanner(n), body="NONE", medium="air", radius_mm=RADIUS_MM, full_detector=True,
                               scheduler=client, threads=1, progress=False)
            stats: dict = {}
            t0 = time.perf_counter()
            stream_projections(phantom, scanner(views), seed=0, body="NONE", medium="air", slab_mm=slab_mm,
                               radius_mm=RADIUS_MM, full_detector=True, scheduler=client, threads=1,
                               progress=False, stats=stats)
            res[n] = {"seconds": time.perf_counter() - t0, "task_seconds": sum(stats["slab_seconds"]),
                      "read_seconds": sum(stats["slab_read_seconds"]), "detect_seconds": stats["detect_seconds"]}
            print(f"scaling: {n} worker(s), {views} views: {res[n]['seconds']:.1f} s", flush=True)
    speedup = res[1]["seconds"] / res[2]["seconds"]
    return {"views": views, "workers": res, "speedup_2": speedup, "efficiency": speedup / 2}


def project(sample: dict, scaling: dict | None, full_views: int) -> dict:
    """Full-views times on this machine and on N single-core workers, from the measured parts."""
    f = full_views / sample["views"]
    p, r = sample["project"], sample["recon"]
    blocks_full = math.ceil(full_views / p["views_per_task"])
    here = {
        "project_s": sum(p["slab_seconds"]) * f + sum(p["slab_read_seconds"]) * blocks_full / p["blocks"]
        + p["detect_seconds"] * f,
        "filter_s": r["filter_seconds"] * f,
        "backproject_s": sum(r["slab_seconds"]) * f + sum(r["slab_other_seconds"]),
    }
    here["total_s"] = sum(here.values())
    out = {"full_views": full_views, "this_machine": here}
    if scaling:
        w1 = scaling["workers"][1]
        fs = full_views / scaling["views"]
        # projection task core-seconds (one thread per task): projecting scales with the views, reading with blocks
        core_s = w1["task_seconds"] * fs + w1["read_seconds"] * blocks_full
        bp_core_s = here["backproject_s"] * 2 * scaling["efficiency"]  # two numba threads → core-seconds
        serial = here["filter_s"] + p["detect_seconds"] * f
        e = scaling["efficiency"]
        out["workers"] = {str(n): serial + (core_s + bp_core_s) / (n * (1.0 if n == 1 else e))
                          for n in (1, 2, 4, 8, 16, 32, 64)}
        out["workers_ideal"] = {str(n): serial + (core_s + bp_core_s) / n for n in (1, 2, 4, 8, 16, 32, 64)}
        out["model"] = ("serial (filtering + noise/detector on the client) + (projection task core-seconds from the "
                        "1-worker run × views + back-projection core-seconds) / (N × measured 2-worker efficiency; "
                        "workers_ideal: efficiency 1)")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=HERE / "results" / "stream_scan", help="phantom and outputs folder")
    ap.add_argument("--slices", type=int, default=SHAPE[0], help="phantom slices (640 = the 51 mm axial field)")
    ap.add_argument("--sample-views", type=int, default=12)
    ap.add_argument("--scaling-views", type=int, default=4)
    ap.add_argument("--no-scaling", action="store_true")
    ap.add_argument("--slab-mm", type=float, default=4.0)
    ap.add_argument("--full", action="store_true", help="also scan at the preset's 600 views (hours)")
    ap.add_argument("--clean", action="store_true", help="remove the work folder at the end")
    a = ap.parse_args(argv)
    os.environ.setdefault("TRABECULA_NO_PROGRESS", "1")
    a.work.mkdir(parents=True, exist_ok=True)
    from trabecula.io import read_volume

    rec: dict = {"versions": versions("numpy", "numba", "dask", "distributed", "zarr"), "phantom_shape": [a.slices, SHAPE[1], SHAPE[2]], "voxel_mm": VOXEL,
                 "radius_mm": RADIUS_MM, "slab_mm": a.slab_mm, "cpus": os.cpu_count(),
                 "load_average_start": os.getloadavg()}
    ph_path = a.work / f"phantom_{a.slices}.zarr"
    if not (ph_path / "zarr.json").exists():
        rec["phantom"] = make_phantom(ph_path, a.slices)
        print(f"phantom {a.slices} × 1525 × 1525 written in {rec['phantom']['seconds']:.1f} s", flush=True)
    phantom = read_volume(ph_path)
    assert phantom.is_lazy
    full_views = scanner(600).geometry.views
    s = sample_run(phantom, a.sample_views, a.work / "sample.zarr", a.slab_mm)
    rec["sample"] = s
    p = s["project"]
    print(f"sample: {a.sample_views} views, {len(p['slabs'])} slabs: projection {p['seconds']:.1f} s "
          f"(per slab {np.median(p['slab_seconds']):.1f} s median, {min(p['slab_seconds']):.1f}–"
          f"{max(p['slab_seconds']):.1f} s; reading + fractions {np.median(p['slab_read_seconds']):.1f} s), "
          f"FDK {s['recon']['seconds']:.1f} s (filter {s['recon']['filter_seconds']:.1f} s); total {s['seconds']:.1f} s, "
          f"peak RSS {s['peak_rss_gib']:.2f} GiB", flush=True)
    if not a.no_scaling:
        rec["scaling"] = scaling_run(phantom, a.scaling_views, a.slab_mm)
        print(f"scaling: 2-worker speed-up {rec['scaling']['speedup_2']:.2f} "
              f"(efficiency {rec['scaling']['efficiency']:.2f})", flush=True)
    rec["projection"] = project(s, rec.get("scaling"), full_views)
    here = rec["projection"]["this_machine"]
    print(f"projected at {full_views} views on this machine: projection {here['project_s'] / 3600:.2f} h, "
          f"FDK {(here['filter_s'] + here['backproject_s']) / 3600:.2f} h, total {here['total_s'] / 3600:.2f} h",
          flush=True)
    ideal = rec["projection"].get("workers_ideal", {})
    for n, t in rec["projection"].get("workers", {}).items():
        print(f"  on {n} single-core workers: {t / 3600:.2f} h (efficiency 1: {ideal[n] / 3600:.2f} h)", flush=True)
    if a.full:
        f = sample_run(phantom, full_views, a.work / "full.zarr", a.slab_mm)
        rec["full"] = f
        print(f"full: {full_views} views: {f['seconds'] / 3600:.2f} h, peak RSS {f['peak_rss_gib']:.2f} GiB", flush=True)
    rec["load_average_end"] = os.getloadavg()  # a shared machine: other work slows every number here
    path = write_results("bench_stream_scan", rec)
    print(f"wrote {path.relative_to(HERE.parent) if path.is_absolute() else path}")
    if a.clean:
        shutil.rmtree(a.work, ignore_errors=True)
    json.dumps(rec)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
