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
    chunks: Annotated[str | None, typer.Option("--chunks", help="Measure block by block: auto or Z,Y,X voxels per block (volumes larger than memory, e.g. OME-Zarr read lazily); the results equal the in-memory ones. Binary input, or a numeric --threshold; the VOI a mask file.")] = None,
    scheduler: Annotated[str | None, typer.Option("--scheduler", help="Run on a dask scheduler at this address (tcp://HOST:8786; start it with `dask scheduler`, workers with `dask worker ADDRESS`).")] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="Run on a local dask cluster of N worker processes.")] = None,
    batch: Annotated[bool, typer.Option("--batch", help="The one input is a folder of scans or a CSV list (column path; optional voi, input_spacing, units): one row per scan in --csv, scans already there skipped (resumable), fanned out over --workers/--scheduler.")] = False,
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
    options = dict(threshold=thr, voi=voi, mode=mode, upsample=upsample, smooth_sigma_mm=smooth, metrics=mlist,
                   border=border, seed=seed, voi_bounds=voi_bounds, closing_mm=closing,
                   largest_component=largest_component, resolution_mm=resolution, calibration=calibration,
                   cortical=bone_choice if cortical else False)
    if batch:
        return _measure_batch(volumes, csv_out, options, input_spacing, units, scheduler, workers, force,
                              chunks=chunks, json_out=json_out, maps=maps, save_segmentation=save_segmentation)
    if chunks is not None:
        return _measure_chunked(volumes, options, input_spacing, units, chunks, scheduler, workers, maps, json_out,
                                csv_out, force, save_segmentation=save_segmentation, cortical_csv=cortical_csv)
    if scheduler is not None or workers is not None:
        raise ParameterError("--workers" if workers is not None else "--scheduler",
                             "runs blocks (--chunks) or scans (--batch) on a cluster: add one of them")
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
    _report(results, mode, json_out, csv_out, force)
    if save_segmentation is not None:
        out.print(f"wrote {save_segmentation}")
    if cortical_csv is not None:
        write_cortical_slices_csv(results, cortical_csv, force=force)
        out.print(f"wrote {cortical_csv}")


def _report(results: list[dict], mode: str, json_out: Path | None, csv_out: Path | None, force: bool) -> None:
    """Print the tables and write the JSON/CSV outputs of a run."""
    from trabecula.morphometry.results import write_results_csv, write_results_json

    _print_results(results, mode)
    if json_out is not None:
        write_results_json(results, json_out, force=force)
        out.print(f"wrote {json_out}")
    if csv_out is not None:
        write_results_csv(results, csv_out, force=force)
        out.print(f"wrote {csv_out}")


#: options chunk-by-chunk measuring refuses (they need the whole image)
_WHOLE_IMAGE_OPTIONS = {"smooth_sigma_mm": "--smooth", "closing_mm": "--closing", "largest_component": "--largest-component",
                        "calibration": "--calibration", "cortical": "--cortical"}


def _measure_chunked(volumes, options, input_spacing, units, chunks, scheduler, workers, maps, json_out, csv_out,
                     force, save_segmentation, cortical_csv) -> None:
    """``--chunks``: each input measured block by block (:func:`trabecula.morphometry.chunked.measure_chunked`)."""
    from trabecula.cluster import executor
    from trabecula.errors import ParameterError
    from trabecula.morphometry.chunked import parse_chunks
    from trabecula.pipeline.batch import measure_chunked_file

    c = parse_chunks(chunks)
    for key, name in _WHOLE_IMAGE_OPTIONS.items():
        if options[key] not in (None, False):
            raise ParameterError(name, "needs the whole image in memory; not available with --chunks")
    if options["upsample"] != 1:
        raise ParameterError("--upsample", "needs the whole image in memory; not available with --chunks")
    if save_segmentation is not None:
        raise ParameterError("--save-segmentation", "not available with --chunks (the binary measured is the input)")
    if isinstance(options["threshold"], str):
        options["threshold"] = None
    check_outputs(force, json_out, csv_out, cortical_csv)
    results = []
    with executor(scheduler, workers) as client:
        for v in volumes:
            maps_dir = None if maps is None else (maps if len(volumes) == 1 else maps / v.name.split(".")[0])
            results.append(measure_chunked_file(v, options, c, input_spacing=input_spacing, units=units,
                                                client=client, maps=maps_dir, force=force))
    _report(results, options["mode"], json_out, csv_out, force)


def _measure_batch(volumes, csv_out, options, input_spacing, units, scheduler, workers, force, *, chunks, json_out,
                   maps, save_segmentation) -> None:
    """``--batch``: every scan of a folder or CSV list, one row each in ``--csv``, resumable."""
    from trabecula.cluster import executor
    from trabecula.errors import ParameterError
    from trabecula.pipeline.batch import measure_batch

    if len(volumes) != 1:
        raise ParameterError("--batch", f"give one folder or CSV list of scans, not {len(volumes)} inputs")
    if csv_out is None:
        raise ParameterError("--csv", "--batch writes its rows (and resumes) there: give --csv RESULTS.csv")
    for value, name in ((chunks, "--chunks"), (json_out, "--json"), (maps, "--maps"),
                        (save_segmentation, "--save-segmentation")):
        if value is not None:
            raise ParameterError(name, "not available with --batch (one CSV row per scan)")
    options = {**options, "input_spacing": input_spacing, "units": units}
    with executor(scheduler, workers) as client:
        results, failures = measure_batch(volumes[0], csv_out, options, client=client, force=force,
                                          on_skip=lambda n: out.print(f"{n} scans already in {csv_out}: skipped")
                                          if n else None)
    if results:
        _print_results(results, options["mode"])
    out.print(f"wrote {len(results)} rows to {csv_out}")
    if failures:
        for f in failures:
            out.print(f"[red]{f['error']}[/red]")
        raise ParameterError("--batch", f"{len(failures)} scans could not be measured (listed above); "
                                        "the same command measures only them again")


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
