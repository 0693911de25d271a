"""Demo stage ``large``: a volume measured block by block on a local dask cluster, as a large scan would be.

The DIDSR L1 region (real bone, binary, at 0.05 mm; the built-in random-field bone without the shared data),
cropped to :data:`SIZE`³, is written as OME-Zarr with a resolution pyramid (``large/bone.ome.zarr``, the
large-volume format: napari opens it with its spacing in mm), read back lazily, and measured block by block
(:func:`trabecula.morphometry.chunked.measure_chunked`: blocks of :data:`BLOCK`³ voxels with their halos) on
a ``LocalCluster`` of :data:`WORKERS` worker processes, the Tb.Th map written block by block as OME-Zarr. The
same volume is measured in memory (:func:`trabecula.morphometry.measure.measure`) beside it.

Checks: BV/TV and the Euler characteristic equal, Tb.Th, Tb.Sp, SMI and DA within 1e-6 relative.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from trabecula.cluster import executor
from trabecula.io import ome_zarr_levels, read_volume, write_volume
from trabecula.morphometry.chunked import measure_chunked
from trabecula.morphometry.measure import measure
from trabecula.pipeline.demo_twin import real_structure

TITLE = "Large volumes: OME-Zarr read lazily, measured block by block on a local dask cluster"
SIZE = 120
BLOCK = 60
WORKERS = 2
METRICS = ("bvtv", "tbth", "tbsp", "tbn", "connd", "smi", "da")
ROWS = (("BV/TV", "bv_tv", ".4f"), ("Tb.Th (mm)", "tb_th_mm", ".4f"), ("Tb.Sp (mm)", "tb_sp_mm", ".4f"),
        ("Conn.D (1/mm³)", "conn_d_per_mm3", ".3f"), ("Euler χ", "euler_char", ".0f"), ("SMI", "smi", ".3f"),
        ("DA", "da", ".3f"))


def _bone(seed: int):
    real, note = real_structure()
    if real is None:
        from trabecula.phantom.simple import random_field_bone

        v = random_field_bone((SIZE,) * 3, 0.05, 0.25, seed=seed)
        return v.with_data((v.numpy() > 600).astype(np.uint8), units="binary", step="bone > 600 HU"), note
    lo = [(n - SIZE) // 2 for n in real.shape]
    return real.crop(*[(a, a + SIZE) for a in lo]), note.replace(", patches quilted", f", central {SIZE}³ voxels")


def run(ctx) -> dict[str, Any]:
    out = Path(ctx.out_dir) / "large"
    out.mkdir(parents=True, exist_ok=True)
    bone, note = _bone(ctx.seed)
    path = write_volume(bone, out / "bone.ome.zarr", force=True, chunks=(BLOCK // 2,) * 3)
    lazy = read_volume(path)
    t = time.perf_counter()
    mem = measure(bone, metrics=METRICS)
    t_mem = time.perf_counter() - t
    t = time.perf_counter()
    with executor(workers=WORKERS) as client:
        t_start = time.perf_counter() - t
        ch = measure_chunked(lazy, chunks=(BLOCK,) * 3, metrics=METRICS, client=client, maps=str(out / "maps"),
                             force=True)
    t_chunk = time.perf_counter() - t
    rows = [{"parameter": label, "in_memory": getattr(mem, key), "chunked": getattr(ch, key), "format": f}
            for label, key, f in ROWS]
    rel = {r["parameter"]: abs(r["chunked"] - r["in_memory"]) / max(abs(r["in_memory"]), 1e-300) for r in rows}
    checks = {
        "BV/TV and Euler χ equal": mem.bv_tv == ch.bv_tv and mem.euler_char == ch.euler_char,
        "Tb.Th, Tb.Sp, SMI, DA within 1e-6 relative": all(
            math.isfinite(rel[k]) and rel[k] <= 1e-6 for k in ("Tb.Th (mm)", "Tb.Sp (mm)", "SMI", "DA")),
        "Tb.Th map written as OME-Zarr": (out / "maps" / "tbth.ome.zarr").exists(),
    }
    return {"ok": all(checks.values()), "checks": checks, "structure": note, "path": str(path),
            "levels": [list(lv["shape"]) for lv in ome_zarr_levels(path)], "shape": list(bone.shape),
            "blocks": ch.segmentation_steps, "workers": WORKERS, "rows": rows,
            "seconds": {"in_memory": round(t_mem, 1), "chunked": round(t_chunk, 1), "cluster_start": round(t_start, 1)}}


def show(ctx, res: dict[str, Any]) -> None:
    from rich.table import Table

    ctx.console.print(f"  {res['structure']}; written as {res['path']} (pyramid levels "
                      f"{', '.join('×'.join(map(str, s)) for s in res['levels'])})")
    ctx.console.print(f"  {'; '.join(res['blocks'])} on a local dask cluster of {res['workers']} workers "
                      f"({res['seconds']['chunked']} s incl. {res['seconds']['cluster_start']} s starting it; "
                      f"in memory {res['seconds']['in_memory']} s)")
    t = Table(title_justify="left")
    for col in ("parameter", "in memory", "block by block"):
        t.add_column(col, justify="left" if col == "parameter" else "right")
    for r in res["rows"]:
        t.add_row(r["parameter"], format(r["in_memory"], r["format"]), format(r["chunked"], r["format"]))
    ctx.console.print(t)
    for name, passed in res.get("checks", {}).items():
        ctx.console.print(f"  {'[green]✓' if passed else '[red]✗'}[/] {name}")
