"""``trabecula info`` and ``trabecula convert``: thin verbs over :mod:`trabecula.io`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from trabecula.cli._app import app, out
from trabecula.cli._common import (
    Force,
    InputSpacing,
    Series,
    Units,
    about,
    check_finite,
    parse_crop,
    parse_window,
    print_rows,
    read_input,
)


@app.command()
def info(
    path: Annotated[Path, typer.Argument(help="A volume file or folder (DICOM, TIFF, NIfTI, NRRD, MetaImage, Zarr, OME-Zarr) or projections (.h5).")],
    input_spacing: InputSpacing = None,
    units: Units = None,
    series: Series = None,
    bone_threshold: Annotated[float | None, typer.Option(help="Threshold for the bone fraction, in the volume's units (default 200 HU).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Shape, spacing, units, value range, histogram and bone fraction of a volume."""
    from trabecula.io import detect_format, read_projections
    from trabecula.io.info import projection_rows, summarize, summarize_projections, summary_rows

    check_finite(bone_threshold, "--bone-threshold")
    if path.is_file() and detect_format(path) == "projections":
        proj = read_projections(path)
        s = summarize_projections(proj)
        s["source"] = str(path)
        if json_out:
            out.print_json(json.dumps(s))
            return
        out.print(proj)
        print_rows(projection_rows(s))
        return
    s = summarize(read_input(path, input_spacing, units, series), bone_threshold)
    if path.is_dir() and detect_format(path) == "ome-zarr":
        from trabecula.io import ome_zarr_levels

        s["levels"] = ome_zarr_levels(path)
    if json_out:
        out.print_json(json.dumps(s))
    else:
        print_rows(summary_rows(s))


@app.command()
def convert(
    src: Annotated[Path, typer.Argument(help="Input volume (file or folder).")],
    dst: Annotated[Path, typer.Argument(help="Output path; the suffix picks the format (.nii.gz .nrrd .mha .tif .zarr .ome.zarr).")],
    spacing: Annotated[str | None, typer.Option("--spacing", help="Resample to this spacing in mm (one number or z,y,x).")] = None,
    crop: Annotated[str | None, typer.Option("--crop", help="Crop z0:z1,y0:y1,x0:x1 (voxel indices, applied before resampling).")] = None,
    window: Annotated[str | None, typer.Option("--window", help="Window to 8-bit: bone, trabecular, soft, lung, or LEVEL,WIDTH.")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="Output format when the name does not say: dicom, tiff-folder, …")] = None,
    levels: Annotated[int | None, typer.Option("--levels", help="OME-Zarr: resolution levels, level 0 included (default: halve until the smallest side is below 64 voxels).")] = None,
    chunks: Annotated[str | None, typer.Option("--chunks", help="Zarr / OME-Zarr: chunk shape in voxels, one number or Z,Y,X (default: about 8 MiB).")] = None,
    input_spacing: InputSpacing = None,
    units: Units = None,
    series: Series = None,
    force: Force = False,
) -> None:
    """Convert between formats, optionally cropping, resampling and windowing."""
    from trabecula.errors import ParameterError
    from trabecula.io import CHUNKED_FORMATS, check_writable, detect_format
    from trabecula.io.convert import convert_volume

    out_fmt = fmt or detect_format(dst, for_writing=True)
    if chunks is not None and out_fmt not in CHUNKED_FORMATS:  # values are checked against the volume when written
        raise ParameterError("--chunks", f"applies to .zarr and .ome.zarr outputs, not {out_fmt}")
    if levels is not None and out_fmt != "ome-zarr":
        raise ParameterError("--levels", f"applies to .ome.zarr outputs only, not {out_fmt}")
    check_writable(dst, force)
    crop_ranges = parse_crop(crop) if crop else None
    win = parse_window(window) if window else None
    vol = read_input(src, input_spacing, units, series)
    with about(src):
        vol = convert_volume(vol, dst, crop=crop_ranges, spacing=spacing, window=win, format=fmt, force=force,
                             chunks=chunks, levels=levels)
    out.print(f"wrote {dst}  {vol}")
