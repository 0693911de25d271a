"""``trabecula calibrate``: fit HU → mg HA/cm³ on the calibration rods of a scan (a thin verb over
:func:`trabecula.morphometry.density.fit_calibration`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trabecula.cli._app import app, out
from trabecula.cli._common import Force, InputSpacing, Units, check_outputs, read_input


@app.command()
def calibrate(
    scan: Annotated[Path, typer.Argument(help="The scan holding the calibration phantom (HU; file or folder).")],
    densities: Annotated[str, typer.Option("--densities", help="Known rod concentrations in mg HA/cm³, comma-separated, e.g. 0,100,200,400,800.")],
    out_path: Annotated[Path, typer.Option("-o", "--out", help="Calibration file to write (JSON).")],
    rois: Annotated[str | None, typer.Option("--rois", help="The rods' ROIs in world mm, in the order of --densities: \"z,y,x,r[,h];...\" (a disc on the slice at z, or a cylinder of height h). Default: detect the rods.")] = None,
    exclude: Annotated[str | None, typer.Option("--exclude", help="Densities measured but left out of the fit (held out), comma-separated.")] = None,
    z_range: Annotated[str | None, typer.Option("--z-range", help="z0,z1 in world mm where detected rods are measured (default: the central half of the slices).")] = None,
    input_spacing: InputSpacing = None,
    units: Units = None,
    force: Force = False,
) -> None:
    """Density calibration: fit mg HA/cm³ = slope · HU + intercept on the rods of a calibration phantom."""
    from trabecula.cli._common import parse_numbers
    from trabecula.errors import ParameterError
    from trabecula.morphometry.density import fit_calibration, save_calibration

    dens = parse_numbers(densities, "--densities")
    held = parse_numbers(exclude, "--exclude") or ()
    zr = parse_numbers(z_range, "--z-range", counts=(2,))
    check_outputs(force, out_path)
    vol = read_input(scan, input_spacing, units)
    try:
        cal = fit_calibration(vol, dens, rois, exclude=held, z_range_mm=zr)
    except ParameterError as exc:  # name the option (or the file) the user gave
        names = {"densities": "--densities", "rois": "--rois", "exclude": "--exclude", "z_range_mm": "--z-range",
                 "vol": str(scan)}
        if exc.name not in names:
            raise
        raise ParameterError(names[exc.name], exc.message) from exc
    save_calibration(cal, out_path, force=force)
    _print(cal, scan)
    out.print(f"wrote {out_path}")


def _print(cal, scan: Path) -> None:
    from rich.table import Table

    table = Table(title=f"trabecula calibrate — {scan.name}, rods {cal.method}")
    for name in ("known mg HA/cm³", "mean HU", "SD HU", "fitted mg HA/cm³", "residual mg HA/cm³", "residual %", "in fit"):
        table.add_column(name, justify="right")
    for r in cal.rods:
        d, res = r["density_mg_cm3"], r["residual_mg_cm3"]
        table.add_row(f"{d:g}", f"{r['mean_hu']:.1f}", f"{r['sd_hu']:.1f}", f"{r['fitted_mg_cm3']:.1f}", f"{res:+.2f}",
                      "n/a" if d == 0 else f"{100 * res / d:+.2f}", "yes" if r["used"] else "held out")
    out.print(table)
    r2 = "n/a" if cal.r2 is None else f"{cal.r2:.6f}"
    out.print(f"mg HA/cm³ = {cal.slope:.6g} · HU {cal.intercept:+.6g}   (r² {r2}, scanner {cal.scanner or 'unknown'})")
