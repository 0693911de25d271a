"""Demo stage 1 — scan I/O: write a synthetic CT volume in every format, read each back, compare."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from rich.table import Table

from trabecula.io import read_volume, write_volume
from trabecula.io.info import summarize, summary_rows
from trabecula.phantom import random_field_bone

TITLE = "Scan I/O: every format written and read back"

#: (file name, format) written by the I/O stage
IO_TARGETS = [
    ("demo.nii.gz", None),
    ("demo.nrrd", None),
    ("demo.mha", None),
    ("demo.tif", None),
    ("demo_slices", "tiff-folder"),
    ("demo_dicom", "dicom"),
    ("demo.zarr", None),
]


def run(ctx) -> dict[str, Any]:
    vol = random_field_bone((40, 64, 64), spacing=(0.1, 0.08, 0.08), seed=ctx.seed)
    vol = vol.replace(origin=(-1.6, -2.56, -2.56))
    fmt_dir = ctx.out_dir / "formats"
    fmt_dir.mkdir(parents=True, exist_ok=True)
    ref = vol.numpy()
    rows = []
    advance = ctx.subtask("I/O round trips", len(IO_TARGETS))
    for name, fmt in IO_TARGETS:
        t0 = time.perf_counter()
        path = write_volume(vol, fmt_dir / name, force=True, format=fmt)
        back = read_volume(path)
        arr = back.numpy()
        rows.append({
            "file": str(path.relative_to(ctx.out_dir)),
            "format": back.provenance.extra.get("format"),
            "array_equal": bool(arr.shape == ref.shape and np.array_equal(arr, ref)),
            "spacing_equal": bool(np.allclose(back.spacing, vol.spacing, rtol=1e-6)),
            "origin_equal": bool(np.allclose(back.origin, vol.origin, atol=1e-5)),
            "units": back.units,
            "seconds": round(time.perf_counter() - t0, 3),
        })
        advance(1, f"I/O round trip: {name}")
    info = summarize(read_volume(fmt_dir / "demo.nrrd"))
    ok = all(r["array_equal"] and r["spacing_equal"] and r["origin_equal"] and r["units"] == "HU" for r in rows)
    return {"ok": ok, "round_trips": rows, "info": info}


def show(ctx, res: dict[str, Any]) -> None:
    t = Table("file", "format", "array", "spacing", "origin", "units", "s")
    for r in res["round_trips"]:
        ok = lambda b: "[green]same[/green]" if b else "[red]DIFFERS[/red]"  # noqa: E731
        t.add_row(r["file"], r["format"], ok(r["array_equal"]), ok(r["spacing_equal"]), ok(r["origin_equal"]),
                  r["units"], f"{r['seconds']:.2f}")
    ctx.console.print(t)
    info = Table(title=f"trabecula info {ctx.out_dir}/formats/demo.nrrd", show_header=False, box=None, pad_edge=False)
    info.add_column(style="bold")
    info.add_column()
    for key, value in summary_rows(res["info"]):
        info.add_row(key, value)
    ctx.console.print(info)
