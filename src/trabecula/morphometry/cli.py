"""``trabecula measure``: trabecular morphometry of one or more volumes (a thin layer over :func:`measure`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trabecula.cli import Force, InputSpacing, Units, out, read_input
from trabecula.errors import ParameterError

#: (result field, table label, format) — the parameters shown in the table, in order
ROWS = [
    ("bv_tv", "BV/TV", "{:.4f}"),
    ("tb_th_mm", "Tb.Th (mm)", "{:.4f}"),
    ("tb_th_sd_mm", "Tb.Th SD (mm)", "{:.4f}"),
    ("tb_th_max_mm", "Tb.Th max (mm)", "{:.4f}"),
    ("tb_sp_mm", "Tb.Sp (mm)", "{:.4f}"),
    ("tb_sp_sd_mm", "Tb.Sp SD (mm)", "{:.4f}"),
    ("tb_sp_max_mm", "Tb.Sp max (mm)", "{:.4f}"),
    ("tb_n_per_mm", "Tb.N (1/mm)", "{:.4f}"),
    ("conn_d_per_mm3", "Conn.D (1/mm³)", "{:.3f}"),
    ("euler_char", "Euler χ", "{:.0f}"),
    ("smi", "SMI", "{:.3f}"),
    ("smi_concave_fraction", "concave surface", "{:.3f}"),
    ("da", "DA (1-λmin/λmax)", "{:.3f}"),
    ("da_scanco", "DA (λmax/λmin)", "{:.3f}"),
    ("threshold", "threshold", "{:.6g}"),
    ("voi_volume_mm3", "VOI volume (mm³)", "{:.4g}"),
]

CSV_FIELDS = [
    "source", "bv_tv", "tb_th_mm", "tb_th_sd_mm", "tb_th_max_mm", "tb_sp_mm", "tb_sp_sd_mm", "tb_sp_max_mm",
    "tb_n_per_mm", "tb_n_plate_per_mm", "conn_d_per_mm3", "euler_char", "delta_chi", "smi", "smi_concave_fraction",
    "da", "da_scanco", "main_direction_z", "main_direction_y", "main_direction_x", "threshold", "threshold_method",
    "voi", "voi_volume_mm3", "bv_mm3", "bs_mm2", "mode", "upsample", "border", "spacing_mm", "warnings",
]


def _fmt(v, f: str) -> str:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return str(v)
    if x != x:
        return "n/a"
    return f.format(x)


def _csv_row(d: dict) -> dict:
    row = {k: d.get(k, "") for k in CSV_FIELDS}
    md = d.get("main_direction") or [float("nan")] * 3
    row["main_direction_z"], row["main_direction_y"], row["main_direction_x"] = md
    row["spacing_mm"] = "x".join(f"{s:g}" for s in (d.get("spacing_mm") or []))
    row["warnings"] = "; ".join(d.get("warnings", []))
    return row


def register(app: typer.Typer) -> None:
    @app.command()
    def measure(
        volumes: Annotated[list[Path], typer.Argument(help="One or more volumes (files or folders); binary volumes are measured as is, HU/grey ones segmented first.")],
        threshold: Annotated[str, typer.Option("--threshold", help="isodata (ImageJ default), otsu, or a fixed VALUE in the volume's units (bone = value > threshold).")] = "isodata",
        smooth: Annotated[float | None, typer.Option("--smooth", help="Gaussian smoothing sigma in mm before thresholding.")] = None,
        voi: Annotated[str | None, typer.Option("--voi", help="cylinder:d=MM,h=MM[,center=z,y,x][,axis=z|y|x|dz,dy,dx], box:z0,y0,x0,z1,y1,x1 (world mm), or a mask file on the same grid.")] = None,
        maps: Annotated[Path | None, typer.Option("--maps", help="Folder for the Tb.Th and Tb.Sp local-thickness maps (mm).")] = None,
        maps_format: Annotated[str, typer.Option("--maps-format", help="Suffix of the map files: nii.gz, nrrd, mha, tif, zarr.")] = "nii.gz",
        json_out: Annotated[Path | None, typer.Option("--json", help="Write all results (one object per input) as JSON.")] = None,
        csv_out: Annotated[Path | None, typer.Option("--csv", help="Write one CSV row per input.")] = None,
        bonej: Annotated[bool, typer.Option("--bonej", help="Local thickness in BoneJ's conventions (odd plates read one voxel thicker); the same as --mode bonej.")] = False,
        mode: Annotated[str | None, typer.Option("--mode", help="Local-thickness mode: plain (default; the definition on voxel centres, the closest to true thickness on real, randomly oriented structure), bonej (BoneJ's conventions), or subvoxel (exact on lattice-aligned shapes, reads high on oriented structure).")] = None,
        upsample: Annotated[int, typer.Option("--upsample", help="Sub-voxel segmentation: interpolate the grey values K× per axis (trilinear) before thresholding and measure on that grid (HU/grey input only; 1 = off).")] = 1,
        border: Annotated[str, typer.Option("--border", help="Image border for local thickness: continue (structure continues, BoneJ) or background.")] = "continue",
        metrics: Annotated[str, typer.Option("--metrics", help="Comma-separated subset of bvtv,tbth,tbsp,tbn,connd,smi,da.")] = "bvtv,tbth,tbsp,tbn,connd,smi,da",
        seed: Annotated[int, typer.Option(help="Seed of the MIL test-line grid (DA).")] = 0,
        input_spacing: InputSpacing = None,
        units: Units = None,
        force: Force = False,
    ) -> None:
        """Trabecular morphometry: BV/TV, Tb.Th, Tb.Sp, Tb.N, Conn.D, SMI, DA — in a cylinder, box or mask VOI."""
        import json

        import numpy as np
        from rich.table import Table

        from trabecula.io import atomic_output, check_writable, write_volume
        from trabecula.morphometry.measure import METRICS
        from trabecula.morphometry.measure import measure as run_measure
        from trabecula.progress import make_progress

        mlist = [m.strip().lower() for m in metrics.split(",") if m.strip()]
        bad = [m for m in mlist if m not in METRICS]
        if bad or not mlist:
            raise ParameterError("--metrics", f"unknown metric(s) {', '.join(bad) or '(none)'}; choose from {', '.join(METRICS)}")
        from trabecula.morphometry.thickness import resolve_mode
        from trabecula.morphometry.upsample import check_factor

        mode = resolve_mode(mode, bonej, "--mode")
        check_factor(upsample, "--upsample")
        if border not in ("continue", "background"):
            raise ParameterError("--border", f"use continue or background, got {border!r}")
        thr: str | float = threshold
        if threshold.lower() not in ("isodata", "otsu"):
            try:
                thr = float(threshold)
            except ValueError as exc:
                raise ParameterError("--threshold", f"use isodata, otsu or a number, got {threshold!r}") from exc
        fmt = maps_format.lstrip(".")
        for p in (json_out, csv_out):
            if p is not None:
                check_writable(p, force)
        map_paths = {}
        if maps is not None:
            for v in volumes:
                stem = v.name.split(".")[0] or v.name
                map_paths[v] = (maps / f"{stem}_tb_th.{fmt}", maps / f"{stem}_tb_sp.{fmt}")
                for p in map_paths[v]:
                    check_writable(p, force)
        results = []
        steps_per = 3 + len(mlist)
        with make_progress() as prog:
            task = prog.add_task("measure", total=len(volumes) * steps_per)
            for v in volumes:
                prog.update(task, description=f"{v.name}: reading")
                vol = read_input(v, input_spacing, units)

                def step(desc: str, _name=v.name) -> None:
                    prog.update(task, description=f"{_name}: {desc}")
                    prog.advance(task)

                res = run_measure(vol, threshold=thr, voi=voi, mode=mode, upsample=upsample, smooth_sigma_mm=smooth, metrics=mlist,
                                  maps=maps is not None, border=border, seed=seed, progress=step)
                if maps is not None:
                    th_path, sp_path = map_paths[v]
                    if res.thickness_map is not None:
                        write_volume(res.thickness_map, th_path, force=force)
                    if res.spacing_map is not None:
                        write_volume(res.spacing_map, sp_path, force=force)
                d = res.to_dict()
                d["source"] = str(v)
                results.append(d)
                prog.update(task, completed=len(results) * steps_per)
        table = Table(title=f"trabecula measure — {'BoneJ' if mode == 'bonej' else mode} mode, VOI {results[0]['voi']}")
        table.add_column("parameter", style="bold")
        for d in results:
            table.add_column(Path(d["source"]).name, justify="right")
        for key, label, f in ROWS:
            table.add_row(label, *[_fmt(d.get(key), f) for d in results])
        table.add_row("main direction (z,y,x)", *[
            "n/a" if not d.get("main_direction") else ", ".join(f"{c:+.2f}" for c in d["main_direction"]) for d in results])
        out.print(table)
        for d in results:
            for w in d["warnings"]:
                out.print(f"[yellow]{Path(d['source']).name}: {w}[/yellow]")
        if json_out is not None:
            with atomic_output(json_out, force=force) as tmp:
                tmp.write_text(json.dumps(results, indent=2, default=lambda o: o.item() if isinstance(o, np.generic) else str(o)))
            out.print(f"wrote {json_out}")
        if csv_out is not None:
            import csv

            with atomic_output(csv_out, force=force) as tmp:
                with open(tmp, "w", newline="") as fh:
                    w = csv.DictWriter(fh, fieldnames=CSV_FIELDS)
                    w.writeheader()
                    for d in results:
                        w.writerow(_csv_row(d))
            out.print(f"wrote {csv_out}")
