"""``trabecula report``: the self-contained HTML study report (a thin verb over :mod:`trabecula.report`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trabecula.cli._app import app, out
from trabecula.cli._common import Force, InputSpacing, Units, check_outputs, read_input


@app.command()
def report(
    output: Annotated[Path, typer.Option("-o", "--output", help="The HTML file to write (one self-contained file).")] = Path("report.html"),
    source: Annotated[Path, typer.Option("--from", help="A demo folder (its study.json, else summary.json + figures/) or a STUDY.json file.")] = Path("trabecula-demo"),
    title: Annotated[str | None, typer.Option(help="Title of the report (default: the study's own).")] = None,
    volume: Annotated[list[Path] | None, typer.Option("--volume", help="Add a volume to the embedded viewer (repeatable).")] = None,
    viewer_voxels: Annotated[int | None, typer.Option(help="Voxel budget per volume in the embedded viewer (default about 96³).")] = None,
    no_viewer: Annotated[bool, typer.Option("--no-viewer", help="Leave out the embedded interactive viewer.")] = False,
    reader_study: Annotated[Path | None, typer.Option("--reader-study", help="Add a reader study's analysis (STUDY.db from trabecula reader-study) as a section in Table 2's layout.")] = None,
    input_spacing: InputSpacing = None,
    units: Units = None,
    force: Force = False,
) -> None:
    """Write the study report: one self-contained HTML file (tables, plots, pictures, an embedded viewer)."""
    from trabecula.report import build_report, load_study

    check_outputs(force, output)
    data = load_study(source)
    if title:
        data.title = title
    data.volumes += [(p.name, read_input(p, input_spacing, units)) for p in volume or []]
    if viewer_voxels is not None:
        data.viewer_max_voxels = viewer_voxels
    if no_viewer:
        data.volumes = []
    if reader_study is not None:
        from trabecula.readerstudy.analyse import analyse, html_section

        data.html_sections.append(("Reader study", html_section(analyse(reader_study), heading=False)))
    path = build_report(data, output, force=force)
    out.print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)", soft_wrap=True)
