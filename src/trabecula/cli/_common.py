"""Options and parsers shared by the verbs: declared once, used by every verb that reads a volume."""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from trabecula.cli._app import out
from trabecula.errors import ParameterError

InputSpacing = Annotated[
    str | None,
    typer.Option("--input-spacing", help="Declare the input's voxel spacing in mm (one number or z,y,x), overriding its header."),
]
Units = Annotated[str | None, typer.Option("--units", help="Declare the input's value units: HU, attenuation_per_mm, grey, binary, label.")]
Series = Annotated[str | None, typer.Option("--series", help="SeriesInstanceUID to read from a DICOM folder holding several series.")]
Force = Annotated[bool, typer.Option("--force", help="Overwrite existing outputs.")]
Seed = Annotated[int, typer.Option("--seed", help="Random seed (results are reproducible from it).")]
Threads = Annotated[int | None, typer.Option("--threads", help="torch CPU threads.")]


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
    """``bone`` / ``soft`` / ``LEVEL,WIDTH``: a preset name (width None) or two numbers."""
    if "," in text:
        try:
            level, width = (float(t) for t in text.split(","))
        except ValueError as exc:
            raise ParameterError("--window", f"expected LEVEL,WIDTH numbers or a preset name, got {text!r}") from exc
        if not (math.isfinite(level) and math.isfinite(width)):
            raise ParameterError("--window", f"LEVEL and WIDTH must be finite numbers, got {text!r}")
        if width <= 0:
            raise ParameterError("--window", f"WIDTH must be positive, got {text!r}")
        return level, width
    return text, None


def check_finite(value: float | None, name: str) -> float | None:
    """A number option must be finite (``None`` stays ``None``): NaN or infinity is a :class:`ParameterError`."""
    if value is not None and not math.isfinite(value):
        raise ParameterError(name, f"must be a finite number, got {value}")
    return value


@contextlib.contextmanager
def about(path: Path | str) -> Iterator[None]:
    """Name the input ``path`` in the parameter errors raised inside (those whose message does not name it
    yet): the one line then says which option and which file."""
    try:
        yield
    except ParameterError as exc:
        if str(path) in exc.message:
            raise
        raise ParameterError(exc.name, f"{path}: {exc.message}") from exc


@contextlib.contextmanager
def progress_bar() -> Iterator:
    """:func:`trabecula.progress.make_progress` for a verb: kept on the screen when the work finishes, cleared
    when it fails, so that an error stays the one line on stderr."""
    from trabecula.progress import make_progress

    with make_progress() as prog:
        try:
            yield prog
        except BaseException:
            live = getattr(prog, "live", None)
            if live is not None:
                live.transient = True
            raise


def parse_numbers(text: str | None, name: str, counts: tuple[int, ...] | None = None) -> list[float] | None:
    """Comma-separated numbers (``None`` stays ``None``); ``counts`` lists the allowed lengths."""
    if text is None:
        return None
    try:
        vals = [float(t) for t in text.replace(" ", "").split(",") if t != ""]
    except ValueError as exc:
        raise ParameterError(name, f"expected comma-separated numbers, got {text!r}") from exc
    if not all(math.isfinite(v) for v in vals):
        raise ParameterError(name, f"expected finite numbers, got {text!r}")
    if counts is not None and len(vals) not in counts:
        raise ParameterError(name, f"expected {' or '.join(str(k) for k in counts)} numbers, got {len(vals)} in {text!r}")
    return vals


def parse_names(text: str | None, n: int, name: str) -> list[str] | None:
    """Comma-separated titles, exactly one per input."""
    if not text:
        return None
    names = [t.strip() for t in text.split(",")]
    if len(names) != n:
        raise ParameterError(name, f"{len(names)} {name.lstrip('-')} for {n} volumes")
    return names


def check_outputs(force: bool, *paths: Path | None) -> None:
    """Refuse, before any work, outputs that exist (without ``--force``)."""
    from trabecula.io import check_writable

    for p in paths:
        if p is not None:
            check_writable(p, force)


def print_rows(rows: list[tuple[str, str]], title: str | None = None) -> None:
    """A two-column key/value table without borders."""
    from rich.table import Table

    t = Table(title=title, show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column()
    for k, v in rows:
        t.add_row(k, v)
    out.print(t)
