"""``trabecula register`` and ``trabecula pair-slices``: thin verbs over :mod:`trabecula.enhance.register`
and :mod:`trabecula.enhance.slicepair` (real paired scans, issue 21)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trabecula.cli._app import app, out
from trabecula.cli._common import Force, InputSpacing, Seed, Units, check_finite, read_input


@app.command()
def register(
    fixed: Annotated[Path, typer.Argument(help="The fixed scan (e.g. the clinical CT): volume file or folder.")],
    moving: Annotated[Path, typer.Argument(help="The moving scan (e.g. the micro-CT of the same specimen).")],
    out_dir: Annotated[Path, typer.Option("-o", "--out", help="Output folder: transform.tfm, moved.nii.gz, overlay.png, registration.json.")],
    stages: Annotated[str, typer.Option(help="Comma-separated stages: rigid[,affine[,bspline]].")] = "rigid,affine",
    metric_threshold: Annotated[float | None, typer.Option(help="Refuse a final Mattes MI above this (default -0.6, measured on the twin).")] = None,
    out_spacing: Annotated[float | None, typer.Option(help="Spacing (mm) of the moved volume; default the moving scan's.")] = None,
    seed: Seed = 0,
    input_spacing: InputSpacing = None,
    units: Units = None,
    force: Force = False,
) -> None:
    """Register MOVING to FIXED (rigid, then affine; Mattes MI, multi-resolution): transform, moved volume, overlay PNG."""
    from trabecula.enhance.register import METRIC_THRESHOLD, write_registration
    from trabecula.enhance.register import register as run

    check_finite(metric_threshold, "--metric-threshold")
    check_finite(out_spacing, "--out-spacing")
    f = read_input(fixed, input_spacing, units)
    m = read_input(moving, None, units)
    res = run(f, m, stages=[s.strip() for s in stages.split(",") if s.strip()], seed=seed,
              metric_threshold=METRIC_THRESHOLD if metric_threshold is None else metric_threshold,
              out_spacing=None if out_spacing is None else (out_spacing,) * 3)
    paths = write_registration(res, f, out_dir, force=force)
    s = res.summary()
    out.print(f"final metric {res.metric:.3f} (Mattes MI; refused above {res.metric_threshold:.3f}), overlap {res.overlap:.0%}, "
              f"rotation {s.get('rotation_deg', float('nan')):.2f}°, {res.seconds:.1f} s")
    for k, p in paths.items():
        out.print(f"{k}: {p}")


@app.command("pair-slices")
def pair_slices(
    clinical: Annotated[Path, typer.Argument(help="The clinical scan (axial slices).")],
    micro: Annotated[Path, typer.Argument(help="The micro-CT of the same specimen, slices parallel to the clinical ones.")],
    out_dir: Annotated[Path, typer.Option("-o", "--out", help="Pairs folder that `trabecula train` reads.")],
    method: Annotated[str, typer.Option(help="sift (SIFT + RANSAC + DTW, the study's) or ncc (the plain baseline).")] = "sift",
    min_matches: Annotated[int, typer.Option(help="RANSAC inliers a clinical slice needs on some micro-CT slice to be paired.")] = 8,
    slice_thickness: Annotated[float | None, typer.Option(help="Clinical slice thickness in mm (default from the scan's header or preset).")] = None,
    specimen: Annotated[str, typer.Option(help="Specimen id in the pairs manifest.")] = "specimen",
    input_spacing: InputSpacing = None,
    units: Units = None,
    force: Force = False,
) -> None:
    """Pair CLINICAL slices with MICRO slices (SIFT + DTW, the vertebra study's method) and align each pair in-plane."""
    from trabecula.enhance.slicepair import pair_slices as run
    from trabecula.enhance.slicepair import write_slice_pairs

    check_finite(slice_thickness, "--slice-thickness")
    c = read_input(clinical, input_spacing, units)
    m = read_input(micro, None, units)
    pairing = run(c, m, method=method, min_matches=min_matches, slice_thickness_mm=slice_thickness)
    manifest = write_slice_pairs(c, m, pairing, out_dir, specimen=specimen, force=force)
    out.print(f"{len(pairing.rows)} of {c.shape[0]} clinical slices paired ({method} + DTW, slice ratio {pairing.ratio:.2f}, "
              f"median {pairing.summary()['median_inliers']:.0f} inliers) → {manifest}")
