"""Chunk-by-chunk morphometry of a volume larger than memory, side by side with the in-memory path.

A real DIDSR L1 region (binary, 300³ at 0.05 mm) is tiled and mirrored to the requested shape (default the
S1 extremity field, 640 × 1525 × 1525 = 1.49 Gvox) and written as OME-Zarr chunk by chunk (never whole in
memory). Then, each in a fresh process whose peak memory (the sum of the resident sizes of the process and
its dask workers, sampled every 0.2 s) is recorded:

* ``chunked W``: ``measure_chunked`` with all metrics (BV/TV, Tb.Th, Tb.Sp, Tb.N, Conn.D, SMI, DA) on a local
  dask cluster of W worker processes (``--workers 1 2`` gives the scaling ratio);
* ``in-memory``: ``measure`` on the same data read whole, at ``--in-memory-shape`` (the largest the in-memory
  path fits), next to ``chunked`` at that shape, with the values compared.

* ``sampled W`` (``--sample-blocks K``): where the whole run would take longer than there is time for, pass 1
  (counts, Euler sums, distance maxima) over every block, then pass 2 (thickness, SMI, DA) on K full-size
  interior blocks only, on W workers; the total is extrapolated as pass 1 + (mean pass-2 block time × blocks
  ÷ W), and the peak memory is that of the real block size.

Run (by hand; bench/results is not committed)::

    python bench/bench_chunked_measure.py --shape 320,448,448 --workers 2 1 --in-memory
    python bench/bench_chunked_measure.py --shape 640,1525,1525 --workers 2 --sample-blocks 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data" / "didsr_l1_vertebra" / "Segmentation-grayscale-1_06219.nrrd"
METRICS = "bvtv,tbth,tbsp,tbn,connd,smi,da"


def mirrored_index(n: int, period: int) -> np.ndarray:
    """0, 1, …, p−1, p−1, …, 0, 0, 1, … : indices of a region mirrored at its faces (no seams in the structure)."""
    k = np.arange(n) % (2 * period)
    return np.where(k < period, k, 2 * period - 1 - k)


def build(shape: tuple[int, int, int], out: Path, chunks: int = 128) -> None:
    """Write the tiled and mirrored DIDSR region of ``shape`` as OME-Zarr, one storage chunk at a time."""
    from trabecula.io import create_ome_zarr, finish_ome_zarr, read_volume

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        region = read_volume(DATA, spacing=0.05)
    r = (region.numpy() != 0).astype(np.uint8)
    idx = [mirrored_index(n, p) for n, p in zip(shape, r.shape, strict=True)]
    arr = create_ome_zarr(out, shape, np.uint8, region.spacing, (0.0, 0.0, 0.0), "binary", (chunks,) * 3,
                          meta={"source": f"{DATA.name} tiled and mirrored to {shape}"})
    for z in range(0, shape[0], chunks):
        iz = idx[0][z:z + chunks]
        slab = r[iz]
        for y in range(0, shape[1], chunks):
            iy = idx[1][y:y + chunks]
            for x in range(0, shape[2], chunks):
                ix = idx[2][x:x + chunks]
                arr[z:z + len(iz), y:y + len(iy), x:x + len(ix)] = slab[:, iy][:, :, ix]
    finish_ome_zarr(out, levels=1)


def _tree_rss(pid: int) -> int:
    import psutil

    try:
        p = psutil.Process(pid)
        procs = [p] + p.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for q in procs:
        try:
            total += q.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def run_child(args: list[str]) -> dict:
    """Run this file as a child with ``args``; its JSON result plus the peak memory of its process tree."""
    proc = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "TRABECULA_NO_PROGRESS": "1"})
    peak = [0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], _tree_rss(proc.pid))
            time.sleep(0.2)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    text, _ = proc.communicate()
    stop.set()
    t.join()
    if proc.returncode != 0:
        raise SystemExit(f"child {args} failed with exit {proc.returncode}")
    res = json.loads(text.strip().splitlines()[-1])
    res["peak_tree_rss_gb"] = peak[0] / 2**30
    return res


def sampled(path: Path, workers: int, chunks: str, k: int) -> dict:
    """Pass 1 over every block, pass 2 over ``k`` interior blocks (see the module docstring)."""
    from trabecula.cluster import executor, run_tasks
    from trabecula.io import read_volume
    from trabecula.limits import memory_budget_bytes
    from trabecula.morphometry import chunked as C
    from trabecula.morphometry.smi import SMI_HALO

    vol = read_volume(path)
    shape, sp = tuple(vol.shape), tuple(vol.spacing)
    want = {"tbth": True, "tbsp": True, "smi": True, "da": True}
    with executor(workers=workers) as client:
        t = time.perf_counter()
        halo1 = C._halo_voxels(C.EDT_HALO * min(sp), sp)
        c1 = C.parse_chunks(chunks) if chunks != "auto" else C.auto_block_edge(halo1, workers, memory_budget_bytes(), shape)
        b1 = C.blocks_of(shape, c1)
        common = {"src": vol.data, "mask_src": None, "shape": shape, "spacing": sp, "threshold": None,
                  "voi_bounds": "spacing", "border": "continue"}
        p1 = run_tasks(C._pass1_task, [(b,) for b in b1], client, "pass 1",
                       shared={**common, "halo_mm": C.EDT_HALO * min(sp)})
        t1 = time.perf_counter() - t
        r = max([p.r_bone for p in p1] + [p.r_marrow for p in p1])
        halo2 = tuple(max(h, SMI_HALO) for h in C._halo_voxels(2 * r, sp, C.THICKNESS_MARGIN))
        c2 = C.parse_chunks(chunks) if chunks != "auto" else C.auto_block_edge(halo2, workers, memory_budget_bytes(), shape)
        b2 = C.blocks_of(shape, c2)
        full = [b for b in b2 if all(h - lo == c for lo, h, c in zip(b.lo, b.hi, c2, strict=True))
                and all(lo > 0 for lo in b.lo)] or b2
        pick = full[:: max(1, len(full) // k)][:k]
        from trabecula.morphometry.anisotropy import mil_setup

        da = mil_setup(((0, 0, 0), shape), sp)
        times = []
        for b in pick:  # one block at a time, so each block's time is its own
            t = time.perf_counter()
            run_tasks(C._pass2_task, [(b,)], client, "pass 2 sample",
                      shared={**common, "mode": "plain", "halo": halo2, "want": want, "da_setup": da, "smi_eps": None,
                              "th_out": None, "sp_out": None})
            times.append(time.perf_counter() - t)
    per = float(np.mean(times))
    total = t1 + per * len(b2) / workers
    return {"kind": "sampled", "workers": workers, "shape": list(shape), "pass1_s": t1, "pass1_blocks": len(b1),
            "pass1_block": list(c1), "pass2_blocks": len(b2), "pass2_block": list(c2), "halo": list(halo2),
            "largest_radius_mm": r, "sampled_block_s": times, "wall_s": total, "extrapolated": True,
            "cluster_start_s": 0.0}


def child(kind: str, path: Path, workers: int, chunks: str) -> None:
    if kind.startswith("sampled"):
        print(json.dumps(sampled(path, workers, chunks, int(kind.split(":")[1]))))
        return
    from trabecula.cluster import executor
    from trabecula.io import read_volume
    from trabecula.morphometry.chunked import measure_chunked
    from trabecula.morphometry.measure import measure

    vol = read_volume(path)
    t = time.perf_counter()
    if kind == "in-memory":
        vol = vol.with_data(np.asarray(vol.data), step="read whole")
        res = measure(vol, metrics=METRICS.split(","))
        cluster_s = 0.0
    else:
        t0 = time.perf_counter()
        with executor(workers=workers) as client:
            cluster_s = time.perf_counter() - t0
            res = measure_chunked(vol, chunks=chunks, metrics=METRICS.split(","), client=client)
    wall = time.perf_counter() - t
    d = res.to_dict()
    keep = ("bv_tv", "tb_th_mm", "tb_th_sd_mm", "tb_sp_mm", "tb_sp_sd_mm", "tb_n_per_mm", "conn_d_per_mm3",
            "euler_char", "smi", "smi_concave_fraction", "da", "da_scanco", "segmentation_steps")
    print(json.dumps({"kind": kind, "workers": workers, "shape": list(vol.shape), "wall_s": wall,
                      "cluster_start_s": cluster_s, **{k: d[k] for k in keep}}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="640,1525,1525")
    ap.add_argument("--workers", type=int, nargs="+", default=[2, 1])
    ap.add_argument("--chunks", default="auto")
    ap.add_argument("--in-memory", action="store_true", help="also run the in-memory path on the same volume")
    ap.add_argument("--sample-blocks", type=int, default=0,
                    help="pass 1 over every block, pass 2 on this many blocks, the total extrapolated")
    ap.add_argument("--work", type=Path, default=HERE / "results" / "chunked_work")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--child", nargs=4, metavar=("KIND", "PATH", "WORKERS", "CHUNKS"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.child[0], Path(a.child[1]), int(a.child[2]), a.child[3])
        return
    shape = tuple(int(s) for s in a.shape.split(","))
    a.work.mkdir(parents=True, exist_ok=True)
    path = a.work / f"didsr_tiled_{'x'.join(map(str, shape))}.ome.zarr"
    if not path.exists():
        t = time.perf_counter()
        build(shape, path)
        print(f"built {path.name} in {time.perf_counter() - t:.0f} s", flush=True)
    rows = []
    for w in a.workers:
        kind = f"sampled:{a.sample_blocks}" if a.sample_blocks else "chunked"
        r = run_child(["--child", kind, str(path), str(w), a.chunks])
        rows.append(r)
        print(json.dumps(r), flush=True)
    if a.in_memory:
        r = run_child(["--child", "in-memory", str(path), "1", a.chunks])
        rows.append(r)
        print(json.dumps(r), flush=True)
    by = {(r["kind"], r["workers"]): r for r in rows}
    nvox = float(np.prod(shape))
    print(f"\n{'x'.join(map(str, shape))} = {nvox / 1e9:.2f} Gvox, all metrics ({METRICS})")
    for r in rows:
        if r.get("extrapolated"):
            print(f"  pass 1 over {r['pass1_blocks']} blocks of {r['pass1_block']}: {r['pass1_s']:.0f} s; pass 2 "
                  f"({r['pass2_blocks']} blocks of {r['pass2_block']}, halo {r['halo']}): sampled blocks "
                  f"{', '.join(f'{x:.0f}' for x in r['sampled_block_s'])} s")
        print(f"  {r['kind']:9s} workers {r['workers']}: {r['wall_s']:8.1f} s{' (extrapolated)' if r.get('extrapolated') else ''}, peak {r['peak_tree_rss_gb']:.2f} GB "
              f"({r['peak_tree_rss_gb'] * 2**30 / nvox:.2f} B/voxel)")
    if ("chunked", 1) in by and ("chunked", 2) in by:
        print(f"  scaling 1 → 2 workers: {by[('chunked', 1)]['wall_s'] / by[('chunked', 2)]['wall_s']:.2f}×")
    if ("in-memory", 1) in by:
        m = by[("in-memory", 1)]
        for (kind, w), r in by.items():
            if kind == "chunked":
                print(f"  chunked ({w} workers) / in-memory time: {r['wall_s'] / m['wall_s']:.2f}; memory "
                      f"{r['peak_tree_rss_gb'] / m['peak_tree_rss_gb']:.2f}")
                for k in ("bv_tv", "tb_th_mm", "tb_sp_mm", "conn_d_per_mm3", "smi", "da"):
                    x, y = m[k], r[k]
                    rel = abs(x - y) / abs(x) if x else abs(y)
                    print(f"    {k:16s} in-memory {x:.9g}  chunked {y:.9g}  rel. diff {rel:.1e}")
    out = a.out or HERE / "results" / f"chunked_measure_{'x'.join(map(str, shape))}.json"
    out.write_text(json.dumps(rows, indent=2))
    print(f"wrote {out.relative_to(HERE.parent) if out.is_relative_to(HERE.parent) else out.name}")


if __name__ == "__main__":
    main()
