"""``trabecula view``: the browser viewer (registered by :mod:`trabecula.report.cli`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add the ``view`` verb to ``app`` (once)."""
    if any(getattr(c, "name", None) == "view" or getattr(c.callback, "__name__", "") == "view"
           for c in app.registered_commands):
        return

    @app.command()
    def view(
        volumes: Annotated[list[Path], typer.Argument(help="One or more volumes (any format trabecula reads), shown side by side.")],
        port: Annotated[int, typer.Option(help="TCP port on 127.0.0.1; 0 picks a free one.")] = 0,
        no_browser: Annotated[bool, typer.Option("--no-browser", help="Only print the URL; do not open a browser.")] = False,
        max_voxels: Annotated[int, typer.Option(help="Voxel budget per volume in the browser; larger volumes are block-averaged (the page says so).")] = 16_777_216,
        neurological: Annotated[bool, typer.Option("--neurological", help="Show the patient's right on the screen's right (default: radiological, right on the left).")] = False,
        layout: Annotated[str, typer.Option(help="Initial view: multiplanar (axial, coronal, sagittal + 3-D), axial, coronal, sagittal or render.")] = "multiplanar",
        names: Annotated[str | None, typer.Option(help="Comma-separated panel titles, one per volume (default: file names).")] = None,
        input_spacing: Annotated[str | None, typer.Option("--input-spacing", help="Declare the inputs' voxel spacing in mm (one number or z,y,x), overriding their headers.")] = None,
        units: Annotated[str | None, typer.Option("--units", help="Declare the inputs' value units: HU, attenuation_per_mm, grey, binary, label.")] = None,
    ) -> None:
        """Open volumes in a local web viewer: linked axial/coronal/sagittal + 3-D views with a clip plane."""
        from trabecula.cli import out, read_input
        from trabecula.errors import ParameterError
        from trabecula.render.viewer import ViewerServer, require_assets

        require_assets()  # fail fast, before reading large volumes
        title_list = None
        if names:
            title_list = [t.strip() for t in names.split(",")]
            if len(title_list) != len(volumes):
                raise ParameterError("--names", f"{len(title_list)} names for {len(volumes)} volumes")
        vols = [read_input(p, input_spacing, units) for p in volumes]
        title_list = title_list or [p.name for p in volumes]
        srv = ViewerServer(vols, title_list, max_voxels=max_voxels, port=port, radiological=not neurological,
                           layout=layout, title="trabecula view — " + ", ".join(title_list))
        try:
            for sv in srv.shown:
                line = f"{sv.name}: {sv.volume}"
                if sv.reduced:
                    line += f" (downsampled ×{'×'.join(map(str, sv.factors))} from {sv.original_shape})"
                out.print(line, soft_wrap=True)
            out.print(f"trabecula view: serving on {srv.url}  (Ctrl-C to stop)", soft_wrap=True)
            sys.stdout.flush()
            if not no_browser:
                import webbrowser

                webbrowser.open(srv.url)
            srv.serve_forever()
        except KeyboardInterrupt:
            out.print("viewer stopped")
        finally:
            srv.close()
