"""``trabecula measure``: trabecular morphometry of one or more volumes (a thin verb over
:func:`trabecula.morphometry.measure.measure`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trabecula.cli._app import app, out
from trabecula.cli._common import Force, InputSpacing, Units, check_outputs, read_input


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
    from trabecula.errors import ParameterError
    from trabecula.io import write_volume
    from trabecula.morphometry.measure import measure as run_measure
    from trabecula.morphometry.results import (
        map_paths,
        parse_metrics,
        parse_threshold,
        write_results_csv,
        write_results_json,
    )
    from trabecula.morphometry.thickness import resolve_mode
    from trabecula.morphometry.upsample import check_factor
    from trabecula.progress import make_progress

    mlist, thr = parse_metrics(metrics), parse_threshold(threshold)
    mode = resolve_mode(mode, bonej, "--mode")
    check_factor(upsample, "--upsample")
    if border not in ("continue", "background"):
        raise ParameterError("--border", f"use continue or background, got {border!r}")
    check_outputs(force, json_out, csv_out)
    paths = map_paths(volumes, maps, maps_format) if maps is not None else {}
    check_outputs(force, *(p for pair in paths.values() for p in pair))
    results = []
    steps_per = 3 + len(mlist)
    with make_progress() as prog:
        task = prog.add_task("measure", total=len(volumes) * steps_per)
        for v in volumes:
            prog.update(task, description=f"{v.name}: reading")

            def step(desc: str, _name=v.name) -> None:
                prog.update(task, description=f"{_name}: {desc}")
                prog.advance(task)

            res = run_measure(read_input(v, input_spacing, units), threshold=thr, voi=voi, mode=mode, upsample=upsample,
                              smooth_sigma_mm=smooth, metrics=mlist, maps=maps is not None, border=border, seed=seed,
                              progress=step)
            for m, p in zip((res.thickness_map, res.spacing_map), paths.get(v, ()), strict=False):
                if m is not None:
                    write_volume(m, p, force=force)
            results.append({**res.to_dict(), "source": str(v)})
            prog.update(task, completed=len(results) * steps_per)
    _print_results(results, mode)
    if json_out is not None:
        write_results_json(results, json_out, force=force)
        out.print(f"wrote {json_out}")
    if csv_out is not None:
        write_results_csv(results, csv_out, force=force)
        out.print(f"wrote {csv_out}")


def _print_results(results: list[dict], mode: str) -> None:
    from rich.table import Table

    from trabecula.morphometry.results import TABLE_ROWS, format_value

    table = Table(title=f"trabecula measure — {'BoneJ' if mode == 'bonej' else mode} mode, VOI {results[0]['voi']}")
    table.add_column("parameter", style="bold")
    for d in results:
        table.add_column(Path(d["source"]).name, justify="right")
    for key, label, f in TABLE_ROWS:
        table.add_row(label, *[format_value(d.get(key), f) for d in results])
    table.add_row("main direction (z,y,x)", *[
        "n/a" if not d.get("main_direction") else ", ".join(f"{c:+.2f}" for c in d["main_direction"]) for d in results])
    out.print(table)
    for d in results:
        for w in d["warnings"]:
            out.print(f"[yellow]{Path(d['source']).name}: {w}[/yellow]")
