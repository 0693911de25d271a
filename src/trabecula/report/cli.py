"""CLI verbs of the report stage: ``trabecula report`` (and ``trabecula view``, the browser viewer)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    from trabecula.render.viewer.cli import register as register_view

    register_view(app)

    @app.command()
    def report(
        output: Annotated[Path, typer.Option("-o", "--output", help="The HTML file to write (one self-contained file).")] = Path("report.html"),
        source: Annotated[Path, typer.Option("--from", help="A demo folder (its study.json, else summary.json + figures/) or a STUDY.json file.")] = Path("trabecula-demo"),
        title: Annotated[str | None, typer.Option(help="Title of the report (default: the study's own).")] = None,
        volume: Annotated[list[Path] | None, typer.Option("--volume", help="Add a volume to the embedded viewer (repeatable).")] = None,
        viewer_voxels: Annotated[int | None, typer.Option(help="Voxel budget per volume in the embedded viewer (default about 96³).")] = None,
        no_viewer: Annotated[bool, typer.Option("--no-viewer", help="Leave out the embedded interactive viewer.")] = False,
        input_spacing: Annotated[str | None, typer.Option("--input-spacing", help="Declare the --volume inputs' spacing in mm (one number or z,y,x).")] = None,
        units: Annotated[str | None, typer.Option("--units", help="Declare the --volume inputs' value units.")] = None,
        force: Annotated[bool, typer.Option("--force", help="Overwrite an existing report.")] = False,
    ) -> None:
        """Write the study report: one self-contained HTML file (tables, plots, pictures, an embedded viewer)."""
        from trabecula.cli import out, read_input
        from trabecula.io import check_writable
        from trabecula.report import build_report, load_study

        check_writable(output, force)
        data = load_study(source)
        if title:
            data.title = title
        for p in volume or []:
            data.volumes.append((p.name, read_input(p, input_spacing, units)))
        if viewer_voxels is not None:
            data.viewer_max_voxels = viewer_voxels
        if no_viewer:
            data.volumes = []
        path = build_report(data, output, force=force)
        size = path.stat().st_size / 1e6
        out.print(f"wrote {path} ({size:.1f} MB)", soft_wrap=True)
