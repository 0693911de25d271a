"""``trabecula iq mtf|nps|noise|cnr``: image-quality measurements on a volume (thin verbs over
:mod:`trabecula.quality`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from trabecula.cli._app import Typer, app, out
from trabecula.cli._common import Force, InputSpacing, Units, check_finite, print_rows, read_input

iq_app = Typer(help="Image quality: MTF (edge, wire), NPS, noise SD, CNR.", no_args_is_help=True)
app.add_typer(iq_app, name="iq")

Image = Annotated[Path, typer.Argument(help="Image volume (DICOM folder, NIfTI, NRRD, MetaImage, TIFF, Zarr).")]
RoiOpt = Annotated[str | None, typer.Option("--roi", help="Region z0:z1,y0:y1,x0:x1 (voxel index ranges; empty parts = whole axis).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
PlotOpt = Annotated[Path | None, typer.Option("--plot", help="Write a PNG plot of the curve here.")]


def _check_plot(plot: Path | None, force: bool) -> None:
    from trabecula.errors import ParameterError
    from trabecula.io import check_writable

    if plot is None:
        return
    if plot.suffix.lower() != ".png":
        raise ParameterError("--plot", f"the plot is written as PNG; name it .png, got {plot}")
    check_writable(plot, force)


def _report(image: Path, res, rows: list[tuple[str, str]], json_out: bool) -> None:
    """The result as JSON (``--json``) or as a table of ``rows``."""
    if json_out:
        out.print_json(json.dumps({"image": str(image), **res.to_dict()}))
    else:
        print_rows(rows)


def _f(x: float | None, unit: str = "") -> str:
    return "n/a (not reached)" if x is None or x != x else f"{x:.4g}{unit}"


@iq_app.command("mtf")
def mtf_cmd(
    image: Image,
    method: Annotated[str, typer.Option("--method", help="edge (slanted edge, oversampled ESF) or wire (PSF).")] = "edge",
    roi: RoiOpt = None,
    oversample: Annotated[int, typer.Option("--oversample", help="ESF bins per pixel (edge; 4–10).")] = 4,
    window: Annotated[str, typer.Option("--window", help="LSF taper for the edge method: tukey, hann or none.")] = "tukey",
    wire_diameter: Annotated[float | None, typer.Option("--wire-diameter", help="Wire diameter in mm, divided out of the wire MTF.")] = None,
    plot: PlotOpt = None,
    json_out: JsonOpt = False,
    input_spacing: InputSpacing = None,
    units: Units = None,
    force: Force = False,
) -> None:
    """MTF, MTF50 and MTF10 (lp/mm) from a slanted edge or a wire parallel to z."""
    from trabecula.errors import ParameterError
    from trabecula.quality import mtf_edge, mtf_wire
    from trabecula.quality.plots import plot_mtf

    if method not in ("edge", "wire"):
        raise ParameterError("--method", f"use edge or wire, got {method!r}")
    _check_plot(plot, force)
    check_finite(wire_diameter, "--wire-diameter")
    vol = read_input(image, input_spacing, units)
    res = mtf_edge(vol, roi=roi, oversample=oversample, window=window) if method == "edge" else \
        mtf_wire(vol, roi=roi, wire_diameter_mm=wire_diameter)
    if plot is not None:
        plot_mtf(res, plot, label=method, title=f"MTF — {image.name}", force=force)
    rows = [("image", str(image)), ("method", method + (f" (edge angle {res.details['angle_deg']:.2f}°, ×{oversample})" if method == "edge" else "")),
            ("MTF50", _f(res.mtf50, " lp/mm")), ("MTF10", _f(res.mtf10, " lp/mm")),
            ("Nyquist", f"{res.nyquist:.4g} lp/mm (pixel {res.pixel_mm:g} mm)")]
    _report(image, res, rows + ([("plot", str(plot))] if plot is not None else []), json_out)


@iq_app.command("nps")
def nps_cmd(
    image: Image,
    roi: RoiOpt = None,
    roi_size: Annotated[int, typer.Option("--roi-size", help="Square NPS ROI size in pixels.")] = 64,
    detrend: Annotated[str, typer.Option("--detrend", help="Trend removed from each ROI: mean, plane, poly2, none.")] = "poly2",
    overlap: Annotated[float, typer.Option("--overlap", help="Overlap of the tiled ROIs (0–0.9).")] = 0.5,
    plot: PlotOpt = None,
    json_out: JsonOpt = False,
    input_spacing: InputSpacing = None,
    units: Units = None,
    force: Force = False,
) -> None:
    """2-D and radial noise power spectrum of a uniform region (slices as realisations)."""
    from trabecula.quality import nps_2d
    from trabecula.quality.plots import plot_nps

    _check_plot(plot, force)
    check_finite(overlap, "--overlap")
    vol = read_input(image, input_spacing, units)
    res = nps_2d(vol, roi=roi, roi_size=roi_size, overlap=overlap, detrend_mode=detrend)
    u = f"{res.units}²·mm²" if res.units else "units²·mm²"
    if plot is not None:
        plot_nps(res, plot, title=f"radial NPS — {image.name}", force=force)
    rows = [("image", str(image)), ("ROIs", f"{res.n_rois} of {res.roi_size}² px ({detrend} detrended)"),
            ("noise SD (∫NPS)", f"{res.noise_sd:.4g} {res.units}"), ("peak frequency", f"{res.peak_frequency:.4g} lp/mm"),
            ("mean frequency", f"{res.mean_frequency:.4g} lp/mm"), ("NPS max", f"{res.radial.max():.4g} {u}")]
    _report(image, res, rows + ([("plot", str(plot))] if plot is not None else []), json_out)


@iq_app.command("noise")
def noise_cmd(
    image: Image,
    roi: Annotated[list[str] | None, typer.Option("--roi", help="ROI z0:z1,y0:y1,x0:x1; repeat for several (pooled). Default: whole image.")] = None,
    detrend: Annotated[str, typer.Option("--detrend", help="none, or plane (SD about a fitted linear trend).")] = "none",
    json_out: JsonOpt = False,
    input_spacing: InputSpacing = None,
    units: Units = None,
) -> None:
    """Noise SD (ddof=1) in one or more ROIs, pooled in quadrature."""
    from trabecula.quality import noise_sd

    vol = read_input(image, input_spacing, units)
    res = noise_sd(vol, list(roi) if roi else None, detrend=detrend)
    rows = [("image", str(image)), ("noise SD", f"{res.sd:.4g} {res.units}"), ("mean", f"{res.mean:.4g} {res.units}")]
    for i, r in enumerate(res.rois):
        rows.append((f"ROI {i + 1}" + (f" {roi[i]}" if roi else ""), f"mean {r.mean:.4g}, SD {r.sd:.4g}, {r.n} voxels"))
    _report(image, res, rows, json_out)


@iq_app.command("cnr")
def cnr_cmd(
    image: Image,
    signal: Annotated[str, typer.Option("--signal", help="Signal ROI z0:z1,y0:y1,x0:x1.")],
    background: Annotated[str, typer.Option("--background", help="Background ROI z0:z1,y0:y1,x0:x1.")],
    noise: Annotated[str, typer.Option("--noise", help="σ from the background ROI (background) or pooled from both (pooled).")] = "background",
    json_out: JsonOpt = False,
    input_spacing: InputSpacing = None,
    units: Units = None,
) -> None:
    """Contrast-to-noise ratio |μ_signal − μ_background| / σ."""
    from trabecula.quality import cnr

    vol = read_input(image, input_spacing, units)
    res = cnr(vol, signal, background, noise)
    _report(image, res, [("image", str(image)), ("CNR", f"{res.cnr:.4g}"), ("contrast", f"{res.contrast:.4g} {vol.units}"),
                ("noise σ", f"{res.noise:.4g} {vol.units} ({noise})"),
                ("signal", f"mean {res.signal.mean:.4g}, SD {res.signal.sd:.4g}"),
                ("background", f"mean {res.background.mean:.4g}, SD {res.background.sd:.4g}")], json_out)
