"""``trabecula measure``: trabecular morphometry of one or more volumes (a thin verb over
:func:`trabecula.morphometry.measure.measure`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trabecula.cli._app import app, out
from trabecula.cli._common import (
    Force,
    InputSpacing,
    Units,
    check_finite,
    check_outputs,
    progress_bar,
    read_input,
)


@app.command()
def measure(
    volumes: Annotated[list[Path], typer.Argument(help="One or more volumes (files or folders); binary volumes are measured as is, HU/grey ones segmented first.")],
    threshold: Annotated[str, typer.Option("--threshold", help="isodata (ImageJ default), otsu, or a fixed VALUE in the volume's units (bone = value > threshold).")] = "isodata",
    smooth: Annotated[float | None, typer.Option("--smooth", help="Gaussian smoothing sigma in mm before thresholding.")] = None,
    voi: Annotated[str | None, typer.Option("--voi", help="cylinder:d=MM,h=MM[,center=z,y,x][,axis=z|y|x|dz,dy,dx], box:z0,y0,x0,z1,y1,x1 (world mm), auto[:closing=MM] (the specimen's envelope: a specimen in air or saline measured in itself), a mask file on the same grid, or LABELS:label=N[,M] (voxels of an integer label map).")] = None,
    voi_bounds: Annotated[str, typer.Option("--voi-bounds", help="What the VOI bounds: spacing (default: Tb.Sp spheres stay inside the VOI), all (Tb.Th spheres too, as cropping to the VOI), none (spheres grow beyond the VOI: the earlier convention).")] = "spacing",
    closing: Annotated[float | None, typer.Option("--closing", help="Clean-up: close the segmentation with a ball of this radius (mm).")] = None,
    largest_component: Annotated[bool, typer.Option("--largest-component", help="Clean-up: keep the largest 26-connected bone component.")] = False,
    save_segmentation: Annotated[Path | None, typer.Option("--save-segmentation", help="Write the binary that was measured (one input; any volume format by suffix).")] = None,
    calibration: Annotated[Path | None, typer.Option("--calibration", help="Density calibration (JSON from trabecula calibrate, or a stored scanner calibration): adds vBMD in mg HA/cm³ (HU input).")] = None,
    cortical: Annotated[bool, typer.Option("--cortical", help="Cortical compartments by dual-threshold autocontouring (Buie 2007): Tt.Ar, Ct.Ar, Tb.Ar, Ct.Th, Ct.Po; without --voi the trabecular parameters are measured in the trabecular compartment.")] = False,
    bone: Annotated[str, typer.Option("--bone", help="With --cortical: largest (default), all, or the size rank N of the bone to contour (0 = largest).")] = "largest",
    cortical_csv: Annotated[Path | None, typer.Option("--cortical-csv", help="With --cortical: write the per-slice cortical parameters as CSV.")] = None,
    resolution: Annotated[float | None, typer.Option("--resolution", help="The scan's resolution (FWHM, mm) from a measured edge; default from its provenance (DICOM slice thickness and kernel, twin preset).")] = None,
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
        write_cortical_slices_csv,
        write_results_csv,
        write_results_json,
    )
    from trabecula.morphometry.thickness import resolve_mode
    from trabecula.morphometry.upsample import check_factor
    from trabecula.volume import anonymise_path, anonymise_provenance_enabled

    mlist, thr = parse_metrics(metrics), parse_threshold(threshold)
    if check_finite(smooth, "--smooth") is not None and smooth <= 0:
        raise ParameterError("--smooth", f"must be a positive number of mm, got {smooth:g}")
    check_finite(closing, "--closing")
    check_finite(resolution, "--resolution")
    mode = resolve_mode(mode, bonej, "--mode")
    check_factor(upsample, "--upsample")
    if border not in ("continue", "background"):
        raise ParameterError("--border", f"use continue or background, got {border!r}")
    if save_segmentation is not None and len(volumes) != 1:
        raise ParameterError("--save-segmentation", f"writes one segmentation: give one input, not {len(volumes)}")
    if cortical_csv is not None and not cortical:
        raise ParameterError("--cortical-csv", "needs --cortical")
    bone_choice = _bone_choice(bone)
    check_outputs(force, json_out, csv_out, save_segmentation, cortical_csv)
    paths = map_paths(volumes, maps, maps_format) if maps is not None else {}
    check_outputs(force, *(p for pair in paths.values() for p in pair))
    results = []
    steps_per = 3 + len(mlist) + (1 if cortical else 0)
    with progress_bar() as prog:
        task = prog.add_task("measure", total=len(volumes) * steps_per)
        for v in volumes:
            prog.update(task, description=f"{v.name}: reading")

            def step(desc: str, _name=v.name) -> None:
                prog.update(task, description=f"{_name}: {desc}")
                prog.advance(task)

            vol = read_input(v, input_spacing, units)
            try:
                res = run_measure(vol, threshold=thr, voi=voi, mode=mode, upsample=upsample,
                                  smooth_sigma_mm=smooth, metrics=mlist, maps=maps is not None, border=border, seed=seed,
                                  progress=step, voi_bounds=voi_bounds, closing_mm=closing,
                                  largest_component=largest_component, keep_segmentation=save_segmentation is not None,
                                  resolution_mm=resolution, calibration=calibration,
                                  cortical=bone_choice if cortical else False)
            except ParameterError as exc:
                # the library names its argument; the user gave an option, for this input
                name = _OPTION_NAMES.get(exc.name, exc.name)
                msg = exc.message if str(v) in exc.message else f"{v}: {exc.message}"
                raise ParameterError(name, msg) from exc
            if save_segmentation is not None:
                write_volume(res.segmentation, save_segmentation, force=force)
            for m, p in zip((res.thickness_map, res.spacing_map), paths.get(v, ()), strict=False):
                if m is not None:
                    write_volume(m, p, force=force)
            results.append({**res.to_dict(), "source": anonymise_path(v) if anonymise_provenance_enabled() else str(v)})
            prog.update(task, completed=len(results) * steps_per)
    _print_results(results, mode)
    if json_out is not None:
        write_results_json(results, json_out, force=force)
        out.print(f"wrote {json_out}")
    if csv_out is not None:
        write_results_csv(results, csv_out, force=force)
        out.print(f"wrote {csv_out}")
    if save_segmentation is not None:
        out.print(f"wrote {save_segmentation}")
    if cortical_csv is not None:
        write_cortical_slices_csv(results, cortical_csv, force=force)
        out.print(f"wrote {cortical_csv}")


#: library argument names → the options of this verb that set them (for one-line errors naming the option)
_OPTION_NAMES = {"smooth_sigma_mm": "--smooth", "closing_mm": "--closing", "resolution_mm": "--resolution",
                 "upsample": "--upsample", "voi_bounds": "--voi-bounds", "threshold": "--threshold"}


def _bone_choice(text: str) -> str | int:
    """``--bone``: largest, all or a size rank (0 = largest)."""
    from trabecula.errors import ParameterError

    if text in ("largest", "all"):
        return text
    try:
        rank = int(text)
    except ValueError:
        raise ParameterError("--bone", f"use largest, all or a size rank 0, 1, …; got {text!r}") from None
    if rank < 0:
        raise ParameterError("--bone", f"a size rank is 0 or more, got {rank}")
    return rank


def _print_results(results: list[dict], mode: str) -> None:
    """The results as tables that fit the console: one column per input, as many inputs per table as fit
    (long file names folded, never cut); inputs marked "apparent" say so in their column's header; rows
    computed for no input are left out."""
    from rich.table import Table

    from trabecula.morphometry.results import TABLE_ROWS, column_groups, field_value, format_value

    names = [Path(d["source"]).name + (" (apparent)" if d.get("apparent") else "") for d in results]
    label_width = max(len(label) for _, label, _ in TABLE_ROWS) + 4
    groups = column_groups(names, out.size.width - label_width)
    # rows not computed for any input (metrics not asked for) are left out; a value undefined for one input
    # stays as n/a, with its warning below the table
    rows = [r for r in TABLE_ROWS if any(format_value(field_value(d, r[0]), r[2]) not in ("n/a", "None")
                                         for d in results)]
    for g, idx in enumerate(groups):
        title = f"trabecula measure — {'BoneJ' if mode == 'bonej' else mode} mode, VOI {results[0]['voi']}"
        if len(groups) > 1:
            title += f" ({g + 1}/{len(groups)})"
        table = Table(title=title)
        table.add_column("parameter", style="bold", no_wrap=True)
        for k in idx:
            table.add_column(names[k], justify="right", overflow="fold", min_width=9, max_width=24)
        for key, label, f in rows:
            table.add_row(label, *[format_value(field_value(results[k], key), f) for k in idx])
        if any(d.get("main_direction") for d in results):
            table.add_row("main direction (z,y,x)", *[
                "n/a" if not results[k].get("main_direction") else
                ", ".join(f"{c:+.2f}" for c in results[k]["main_direction"]) for k in idx])
        out.print(table)
    for d in results:
        for w in d["warnings"]:
            out.print(f"[yellow]{Path(d['source']).name}: {w}[/yellow]")
