"""``trabecula phantom``: build a phantom and write its label volume (and truth) to disk."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

KINDS = ("trabecular-cube", "vertebra", "phalanx", "wire", "edge", "water", "bars", "lookalike", "real")


def _floats(text: str | None, name: str) -> list[float] | None:
    from trabecula.errors import ParameterError

    if text is None:
        return None
    try:
        return [float(t) for t in text.replace(" ", "").split(",") if t]
    except ValueError as exc:
        raise ParameterError(name, f"expected numbers separated by commas, got {text!r}") from exc


def register(app: typer.Typer) -> None:
    @app.command()
    def phantom(
        kind: Annotated[str, typer.Option("--kind", help=f"What to build: {', '.join(KINDS)}.")],
        out: Annotated[Path, typer.Option("-o", "--out", help="Output label volume (.nii.gz, .nrrd, .mha, .tif, .zarr).")],
        bvtv: Annotated[float | None, typer.Option("--bvtv", help="Target measured BV/TV (trabecular-cube; default 0.18).")] = None,
        tb_th: Annotated[float | None, typer.Option("--tb-th", help="Target measured Tb.Th in mm (trabecular-cube; default 0.22).")] = None,
        tb_sp: Annotated[float | None, typer.Option("--tb-sp", help="Target measured Tb.Sp in mm (trabecular-cube; default 0.93).")] = None,
        plate_fraction: Annotated[float, typer.Option("--plate-fraction", help="Fraction of cell faces that are plates (starting point when calibrating all three targets).")] = 0.3,
        anisotropy: Annotated[float, typer.Option("--anisotropy", help="Cell stretch along the main axis (1 = isotropic).")] = 1.0,
        main_axis: Annotated[str, typer.Option("--main-axis", help="Main trabecular axis: z, y or x.")] = "z",
        voxel: Annotated[float | None, typer.Option("--voxel", help="Voxel size in mm (default: the kind's own, e.g. 0.025 for a cube, 0.05 for anatomy).")] = None,
        size: Annotated[str | None, typer.Option("--size", help="Size in mm: one number or z,y,x (cube, vertebra, lookalike); the length for a phalanx; the diameter for wire and water.")] = None,
        like: Annotated[Path | None, typer.Option("--like", help="Real binary volume to copy (lookalike) or to use as structure (real).")] = None,
        input_spacing: Annotated[str | None, typer.Option("--input-spacing", help="Declare the --like volume's spacing in mm (e.g. 0.05 for the DIDSR NRRDs).")] = None,
        upsample: Annotated[int, typer.Option("--upsample", help="Integer grid refinement for --kind real (BV/TV kept).")] = 1,
        angle: Annotated[float, typer.Option("--angle", help="Edge slant in degrees (edge).")] = 5.0,
        lp: Annotated[str | None, typer.Option("--lp", help="Bar-pattern frequencies in lp/mm, comma-separated (bars).")] = None,
        material: Annotated[str | None, typer.Option("--material", help="Object material (wire, edge, bars), e.g. tungsten, pmma, aluminium.")] = None,
        no_calibrate: Annotated[bool, typer.Option("--no-calibrate", help="Skip the morphometry calibration (fast, approximate).")] = False,
        seed: Annotated[int, typer.Option("--seed", help="Random seed (the phantom is reproducible from it).")] = 0,
        truth: Annotated[Path | None, typer.Option("--truth", help="Also write the binary truth of the trabecular struts here.")] = None,
        voi: Annotated[Path | None, typer.Option("--voi", help="Also write the trabecular-region mask (VOI) here.")] = None,
        force: Annotated[bool, typer.Option("--force", help="Overwrite existing outputs.")] = False,
    ) -> None:
        """Build a phantom (label volume of materials) — trabecular bone, anatomy or a test object."""
        from rich.table import Table

        from trabecula import phantom as P
        from trabecula.cli import out as console
        from trabecula.cli import read_input
        from trabecula.errors import ParameterError
        from trabecula.io import check_writable, detect_format, parse_triple, write_volume

        if kind not in KINDS:
            raise ParameterError("--kind", f"unknown kind {kind!r}; use one of {', '.join(KINDS)}")
        for p in (out, truth, voi):
            if p is not None:
                detect_format(p, for_writing=True)
                check_writable(p, force)
        sizes = _floats(size, "--size")
        size3 = None if sizes is None else (tuple(parse_triple(size, "--size")) if len(sizes) in (1, 3) else None)
        if sizes is not None and size3 is None:
            raise ParameterError("--size", f"expected one number or z,y,x, got {size!r}")
        kw_vox = {} if voxel is None else {"voxel_mm": voxel}
        calibrate = not no_calibrate
        if kind == "trabecular-cube":
            ph = P.trabecular_cube(size3 or (5.0, 5.0, 5.0), voxel or 0.025,
                                   0.18 if bvtv is None else bvtv, 0.22 if tb_th is None else tb_th,
                                   0.93 if tb_sp is None else tb_sp, plate_fraction, anisotropy, main_axis, seed,
                                   calibrate=calibrate)
        elif kind == "vertebra":
            trab = None
            if any(v is not None for v in (bvtv, tb_th, tb_sp)):
                trab = {"bvtv": bvtv, "tb_th_mm": tb_th, "tb_sp_mm": tb_sp, "calibrate": calibrate,
                        "plate_fraction": plate_fraction, "anisotropy": anisotropy}
            ph = P.vertebral_body(size3 or (5.0, 8.0, 10.0), voxel or 0.05, trabecular=trab, seed=seed)
        elif kind == "phalanx":
            ph = P.phalanx(sizes[0] if sizes else 12.0, voxel or 0.05, seed)
        elif kind == "wire":
            ph = P.wire(sizes[0] if sizes else 0.025, material=material or "tungsten", **kw_vox)
        elif kind == "edge":
            ph = P.slanted_edge(angle, material=material or "pmma", **kw_vox)
        elif kind == "water":
            ph = P.water_cylinder(sizes[0] if sizes else 20.0, **kw_vox)
        elif kind == "bars":
            freqs = _floats(lp, "--lp") or [1, 2, 3, 4, 5, 6, 8, 10]
            ph = P.bar_pattern(freqs, material=material or "aluminium", **kw_vox)
        else:  # lookalike, real
            if like is None:
                raise ParameterError("--like", f"--kind {kind} needs --like REAL.nrrd (a binary micro-CT volume)")
            real = read_input(like, input_spacing, None, None)
            if kind == "real":
                ph = P.from_binary(real, upsample=upsample)
            else:
                ph = P.lookalike(real, voxel, seed, size_mm=size3, anisotropy=anisotropy, main_axis=main_axis,
                                 plate_fraction=plate_fraction)
        write_volume(ph.labels, out, force=force)
        if truth is not None:
            if ph.truth is None:
                raise ParameterError("--truth", f"--kind {kind} has no trabecular truth")
            write_volume(ph.truth, truth, force=force)
        if voi is not None:
            if ph.voi is None:
                raise ParameterError("--voi", f"--kind {kind} has no trabecular VOI (the whole grid is trabecular)")
            write_volume(ph.voi, voi, force=force)
        t = Table(show_header=False, box=None, pad_edge=False)
        t.add_column(style="bold")
        t.add_column()
        t.add_row("phantom", ph.description)
        t.add_row("grid", f"{ph.shape[0]} × {ph.shape[1]} × {ph.shape[2]} at {ph.spacing[0]:g} mm")
        t.add_row("materials", ", ".join(f"{i} {m} ({100 * ph.fraction(m):.1f} %)" for i, m in sorted(ph.materials.items(), key=lambda kv: int(kv[0]))))
        meas = ph.params.get("measured")
        if meas:
            t.add_row("measured", f"BV/TV {meas['bv_tv']:.3f}  Tb.Th {meas['tb_th_mm']:.3f} mm  Tb.Sp {meas['tb_sp_mm']:.3f} mm")
        if "real" in ph.params:
            r = ph.params["real"]
            t.add_row("real", f"BV/TV {r['bv_tv']:.3f}  Tb.Th {r['tb_th_mm']:.3f} mm  Tb.Sp {r['tb_sp_mm']:.3f} mm")
        t.add_row("wrote", ", ".join(str(p) for p in (out, truth, voi) if p is not None))
        console.print(t)
