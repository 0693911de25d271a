"""The ``trabecula`` command line: a thin typer layer over the Python API.

Every verb reads with :func:`trabecula.io.read_volume` and calls one library function; user errors
(:class:`trabecula.TrabeculaError`) become one line on stderr and exit code 2, with the traceback only
under ``--debug``.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from trabecula import __version__
from trabecula.errors import ParameterError, TrabeculaError
from trabecula.progress import err_console

out = Console(highlight=False)


class _State:
    debug = False


state = _State()

app = typer.Typer(
    name="trabecula",
    help="See and measure trabecular bone microstructure with CT: scanner twin, enhancement, morphometry, rendering.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        out.print(f"trabecula {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", help="Show the version and exit.", callback=_version, is_eager=True)] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks for errors.")] = False,
) -> None:
    state.debug = debug


# ------------------------------------------------------------------------------------------ helpers
InputSpacing = Annotated[
    str | None,
    typer.Option("--input-spacing", help="Declare the input's voxel spacing in mm (one number or z,y,x), overriding its header."),
]
Units = Annotated[str | None, typer.Option("--units", help="Declare the input's value units: HU, attenuation_per_mm, grey, binary, label.")]
Series = Annotated[str | None, typer.Option("--series", help="SeriesInstanceUID to read from a DICOM folder holding several series.")]
Force = Annotated[bool, typer.Option("--force", help="Overwrite existing outputs.")]


def read_input(path: Path, input_spacing: str | None = None, units: str | None = None, series: str | None = None):
    """Read a volume for a verb; offers a choice of series interactively when a DICOM folder has several."""
    from trabecula.io import MultipleSeriesError, read_volume

    try:
        return read_volume(path, spacing=input_spacing, units=units, series=series)
    except MultipleSeriesError as exc:
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            raise
        out.print(f"{exc.path} holds {len(exc.series)} series:")
        for k, (uid, desc, n) in enumerate(exc.series, 1):
            out.print(f"  [{k}] {uid}  {desc or '(no description)'}  {n} slices")
        k = typer.prompt("Which series", type=int)
        if not 1 <= k <= len(exc.series):
            raise ParameterError("series", f"choose 1..{len(exc.series)}") from exc
        return read_volume(path, spacing=input_spacing, units=units, series=exc.series[k - 1][0])


def parse_crop(text: str) -> tuple:
    """``"z0:z1,y0:y1,x0:x1"`` (voxel indices, Python slices; empty parts mean the whole axis)."""
    parts = text.split(",")
    if len(parts) != 3:
        raise ParameterError("--crop", f"expected z0:z1,y0:y1,x0:x1, got {text!r}")
    ranges = []
    for p in parts:
        p = p.strip()
        if p in ("", ":"):
            ranges.append(None)
            continue
        if ":" not in p:
            raise ParameterError("--crop", f"each axis needs start:stop, got {p!r}")
        a, b = p.split(":", 1)
        try:
            ranges.append((int(a) if a else None, int(b) if b else None))
        except ValueError as exc:
            raise ParameterError("--crop", f"not integers: {p!r}") from exc
    return tuple(ranges)


def parse_window(text: str) -> tuple[Any, float | None]:
    """``bone`` / ``soft`` / ``LEVEL,WIDTH``."""
    if "," in text:
        try:
            level, width = (float(t) for t in text.split(","))
        except ValueError as exc:
            raise ParameterError("--window", f"expected LEVEL,WIDTH numbers or a preset name, got {text!r}") from exc
        return level, width
    return text, None


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.4g}"
    if isinstance(x, list | tuple):
        return " × ".join(_fmt(v) for v in x)
    return str(x)


def print_info(summary: dict[str, Any], title: str | None = None) -> None:
    t = Table(title=title, show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column()
    t.add_row("source", str(summary["source"]))
    t.add_row("shape (z, y, x)", _fmt(summary["shape_zyx"]))
    t.add_row("spacing (mm)", _fmt(summary["spacing_mm_zyx"]))
    t.add_row("extent (mm)", _fmt(summary["extent_mm_zyx"]))
    t.add_row("origin (mm)", _fmt(summary["origin_mm_zyx"]))
    guessed = summary["provenance"]["extra"].get("units_guessed")
    t.add_row("units", summary["units"] + (f" (guessed: {guessed})" if guessed else ""))
    t.add_row("dtype", summary["dtype"] + (" (lazy, chunked)" if summary["lazy"] else ""))
    t.add_row("range", f"{summary['min']:.6g} … {summary['max']:.6g}")
    t.add_row("mean ± SD", f"{summary['mean']:.5g} ± {summary['sd']:.5g}")
    p = summary["percentiles"]
    t.add_row("percentiles", "  ".join(f"{k}={v:.4g}" for k, v in p.items()))
    counts = summary["histogram"]["counts"]
    edges = summary["histogram"]["edges"]
    peak = max(counts) or 1
    bars = "▁▂▃▄▅▆▇█"
    spark = "".join(bars[min(7, int(8 * c / peak))] if c else " " for c in counts)
    t.add_row("histogram", f"{edges[0]:.4g} [{spark}] {edges[-1]:.4g}")
    bf = summary["bone_fraction"]
    t.add_row("bone fraction", ("n/a" if bf != bf else f"{bf:.4f}") + f"  ({summary['bone_fraction_basis']})")
    steps = summary["provenance"]["steps"]
    if steps:
        t.add_row("steps", " → ".join(steps))
    out.print(t)


# --------------------------------------------------------------------------------------------- verbs
@app.command()
def info(
    path: Annotated[Path, typer.Argument(help="A volume file or folder (DICOM, TIFF, NIfTI, NRRD, MetaImage, Zarr) or projections (.h5).")],
    input_spacing: InputSpacing = None,
    units: Units = None,
    series: Series = None,
    bone_threshold: Annotated[float | None, typer.Option(help="Threshold for the bone fraction, in the volume's units (default 200 HU).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Shape, spacing, units, value range, histogram and bone fraction of a volume."""
    from trabecula.io import detect_format, read_projections
    from trabecula.io.info import summarize

    if path.exists() and path.is_file() and detect_format(path) == "projections":
        import numpy as np

        proj = read_projections(path)
        d = {
            "source": str(path), "angles": proj.n_angles,
            "angle_range_deg": [float(np.degrees(proj.angles.min())), float(np.degrees(proj.angles.max()))],
            "detector_rows_cols": list(proj.data.shape[1:]),
            "flats": 0 if proj.flats is None else len(proj.flats), "darks": 0 if proj.darks is None else len(proj.darks),
            "counts_range": [float(proj.data.min()), float(proj.data.max())],
        }
        if json_out:
            out.print_json(json.dumps(d))
        else:
            out.print(proj)
            for k, v in d.items():
                out.print(f"  {k}: {_fmt(v)}")
        return
    vol = read_input(path, input_spacing, units, series)
    s = summarize(vol, bone_threshold)
    if json_out:
        out.print_json(json.dumps(s))
    else:
        print_info(s)


@app.command()
def convert(
    src: Annotated[Path, typer.Argument(help="Input volume (file or folder).")],
    dst: Annotated[Path, typer.Argument(help="Output path; the suffix picks the format (.nii.gz .nrrd .mha .tif .zarr).")],
    spacing: Annotated[str | None, typer.Option("--spacing", help="Resample to this spacing in mm (one number or z,y,x).")] = None,
    crop: Annotated[str | None, typer.Option("--crop", help="Crop z0:z1,y0:y1,x0:x1 (voxel indices, applied before resampling).")] = None,
    window: Annotated[str | None, typer.Option("--window", help="Window to 8-bit: bone, trabecular, soft, lung, or LEVEL,WIDTH.")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="Output format when the name does not say: dicom, tiff-folder, …")] = None,
    input_spacing: InputSpacing = None,
    units: Units = None,
    series: Series = None,
    force: Force = False,
) -> None:
    """Convert between formats, optionally cropping, resampling and windowing."""
    from trabecula.io import check_writable, detect_format, parse_triple, write_volume

    if fmt is None:
        detect_format(dst, for_writing=True)
    check_writable(dst, force)
    vol = read_input(src, input_spacing, units, series)
    if crop:
        vol = vol.crop(*parse_crop(crop))
    if spacing:
        if vol.provenance.extra.get("spacing_assumed") and not input_spacing:
            raise ParameterError("--spacing", f"{src} has no spacing in its metadata; declare it with --input-spacing before resampling")
        vol = vol.resample(parse_triple(spacing, "--spacing"))
    if window:
        level, width = parse_window(window)
        vol = vol.window(level, width)
    write_volume(vol, dst, force=force, format=fmt)
    out.print(f"wrote {dst}  {vol}")


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for everything the demo writes.")] = Path("trabecula-demo"),
    seed: Annotated[int, typer.Option(help="Random seed (results are reproducible from it).")] = 0,
    open_viewer: Annotated[bool, typer.Option("--open", help="Afterwards, open the vertebra's scans (clinical, enhanced, micro-CT) in the browser viewer (Ctrl-C ends it).")] = False,
) -> None:
    """The main job on built-in defaults: no input needed."""
    from trabecula.pipeline.demo import run_demo

    # piped or logged output: wide enough for the stage tables (a terminal keeps its own width)
    con = out if out.is_terminal else Console(highlight=False, width=150)
    summary = run_demo(out_dir, seed=seed, console=con)
    vols = summary.get("volumes") or {}
    if open_viewer and vols:
        import time

        from trabecula.render.viewer import view

        srv = view(list(vols.values()), names=list(vols.keys()))
        out.print(f"viewer: {srv.url}  (Ctrl-C to stop)")
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            srv.close()


# -------------------------------------------------------------------------- verbs of the other stages
#: Each stage keeps its verbs in ``trabecula/<stage>/cli.py`` with a ``register(app)`` function, so this
#: module stays a thin index. Heavy imports happen inside the verbs, keeping ``--help`` fast.
STAGE_CLIS = (
    "trabecula.render.viewer.cli",
    "trabecula.morphometry.cli",
    "trabecula.phantom.cli",
    "trabecula.scanner.cli",
    "trabecula.quality.cli",
    "trabecula.enhance.cli",
    "trabecula.render.cli",
    "trabecula.report.cli",
)


def _register_stage_clis() -> None:
    import importlib

    for name in STAGE_CLIS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # stage not built yet
                continue
            raise
        module.register(app)


if __name__ != "__main__":  # under ``python -m trabecula.cli`` the real module below registers them
    _register_stage_clis()


# ------------------------------------------------------------------------------------- entry points
def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ARG001
    err_console.print(f"[yellow]warning:[/yellow] {message}", markup=True, highlight=False, soft_wrap=True)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 internal error, 2 user error)."""
    args = list(sys.argv[1:] if argv is None else argv)
    state.debug = "--debug" in args
    old_show = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.showwarning = _show_warning
            app(args=args, prog_name="trabecula", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except TrabeculaError as exc:
        if state.debug:
            raise
        msg = " ".join(str(exc).split())
        err_console.print(f"error: {msg}", markup=False, highlight=False, soft_wrap=True)
        return 2
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as exc:
        if state.debug:
            raise
        err_console.print(f"error: {exc.filename}: {exc.strerror}", markup=False, highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        err_console.print("interrupted", markup=False)
        return 130
    except MemoryError:
        if state.debug:
            raise
        err_console.print("error: out of memory (try a smaller crop, or a .zarr input for lazy processing)", markup=False)
        return 1
    except Exception as exc:  # a bug, not a user error
        if state.debug:
            raise
        err_console.print(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)", markup=False, soft_wrap=True)
        return 1
    finally:
        warnings.showwarning = old_show
    return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    from trabecula.cli import run as _run  # the importable module, whose app has every verb registered

    _run()
