"""``trabecula phantom``: build a phantom and write its label volume (and truth); a thin verb over
:func:`trabecula.phantom.build.build`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trabecula.cli._app import app
from trabecula.cli._common import (
    Force,
    InputSpacing,
    check_finite,
    check_outputs,
    parse_numbers,
    print_rows,
    read_input,
)


@app.command()
def phantom(
    kind: Annotated[str, typer.Option("--kind", help="What to build: trabecular-cube, vertebra, phalanx, wrist (distal radius and ulna, HR-pQCT site), wire, edge, water, bars, lookalike, real, calibration (HA rods 0–800 mg/cm³).")],
    out_path: Annotated[Path, typer.Option("-o", "--out", help="Output label volume (.nii.gz, .nrrd, .mha, .tif, .zarr).")],
    bvtv: Annotated[float | None, typer.Option("--bvtv", help="Target measured BV/TV (trabecular-cube; default 0.18).")] = None,
    tb_th: Annotated[float | None, typer.Option("--tb-th", help="Target measured Tb.Th in mm (trabecular-cube; default 0.22).")] = None,
    tb_sp: Annotated[float | None, typer.Option("--tb-sp", help="Target measured Tb.Sp in mm (trabecular-cube; default 0.93).")] = None,
    plate_fraction: Annotated[float | None, typer.Option("--plate-fraction", help="Fraction of cell faces that are plates (starting point when calibrating all three targets; default 0.3).")] = None,
    anisotropy: Annotated[float | None, typer.Option("--anisotropy", help="Cell stretch along the main axis (1 = isotropic).")] = None,
    main_axis: Annotated[str | None, typer.Option("--main-axis", help="Main trabecular axis: z, y or x.")] = None,
    voxel: Annotated[float | None, typer.Option("--voxel", help="Voxel size in mm (default: the kind's own, e.g. 0.025 for a cube, 0.05 for anatomy).")] = None,
    size: Annotated[str | None, typer.Option("--size", help="Size in mm: one number or z,y,x (cube, vertebra, lookalike); the length for a phalanx or calibration phantom; the slab thickness for a wrist; the diameter for wire and water.")] = None,
    like: Annotated[Path | None, typer.Option("--like", help="Real binary volume to copy (lookalike) or to use as structure (real).")] = None,
    input_spacing: InputSpacing = None,
    upsample: Annotated[int | None, typer.Option("--upsample", help="Integer grid refinement for --kind real (BV/TV kept).")] = None,
    angle: Annotated[float | None, typer.Option("--angle", help="Edge slant in degrees (edge; default 5).")] = None,
    lp: Annotated[str | None, typer.Option("--lp", help="Bar-pattern frequencies in lp/mm, comma-separated (bars).")] = None,
    material: Annotated[str | None, typer.Option("--material", help="Object material (wire, edge, bars), e.g. tungsten, pmma, aluminium.")] = None,
    no_calibrate: Annotated[bool, typer.Option("--no-calibrate", help="Skip the morphometry calibration (fast, approximate).")] = False,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed (the phantom is reproducible from it; default 0).")] = None,
    truth: Annotated[Path | None, typer.Option("--truth", help="Also write the binary truth of the trabecular struts here.")] = None,
    voi: Annotated[Path | None, typer.Option("--voi", help="Also write the trabecular-region mask (VOI) here.")] = None,
    force: Force = False,
) -> None:
    """Build a phantom (label volume of materials) — trabecular bone, anatomy or a test object."""
    from trabecula.errors import ParameterError
    from trabecula.io import detect_format
    from trabecula.phantom.build import KINDS, build, phantom_summary, write_phantom

    if kind not in KINDS:
        raise ParameterError("--kind", f"unknown kind {kind!r}; use one of {', '.join(KINDS)}")

    for value, name in ((bvtv, "--bvtv"), (tb_th, "--tb-th"), (tb_sp, "--tb-sp"), (plate_fraction, "--plate-fraction"),
                        (anisotropy, "--anisotropy"), (voxel, "--voxel"), (angle, "--angle")):
        check_finite(value, name)
    for p in (out_path, truth, voi):
        if p is not None:
            detect_format(p, for_writing=True)
    check_outputs(force, out_path, truth, voi)
    params = {
        "bvtv": bvtv, "tb_th_mm": tb_th, "tb_sp_mm": tb_sp, "plate_fraction": plate_fraction,
        "anisotropy": anisotropy, "main_axis": main_axis, "voxel_mm": voxel, "size_mm": parse_numbers(size, "--size"),
        "upsample": upsample, "angle_deg": angle, "lp": parse_numbers(lp, "--lp"), "material": material,
        "calibrate": False if no_calibrate else None, "seed": seed,
        "like": None if like is None else read_input(like, input_spacing),
    }
    ph = build(kind, **{k: v for k, v in params.items() if v is not None})
    written = write_phantom(ph, out_path, truth=truth, voi=voi, force=force)
    print_rows([*phantom_summary(ph), ("wrote", ", ".join(str(p) for p in written))])
