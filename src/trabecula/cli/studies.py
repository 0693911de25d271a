"""``trabecula demo`` and ``trabecula twin-study``: thin verbs over :mod:`trabecula.pipeline`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trabecula.cli._app import app, out
from trabecula.cli._common import check_finite
from trabecula.errors import ParameterError


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for everything the demo writes.")] = Path("trabecula-demo"),
    seed: Annotated[int, typer.Option(help="Random seed (results are reproducible from it).")] = 0,
    open_viewer: Annotated[bool, typer.Option("--open", help="Afterwards, open the vertebra's scans (clinical, enhanced, micro-CT) in the browser viewer (Ctrl-C ends it).")] = False,
) -> None:
    """The main job on built-in defaults: no input needed."""
    from rich.console import Console

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


@app.command("twin-study")
def twin_study(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for twin_study.json, mtf.png and morphometry.png (resumes if present).")] = Path("twin-study"),
    n: Annotated[int, typer.Option("-n", help="Number of trabecular phantoms.")] = 20,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (phantom targets, structure, noise).")] = 0,
    mode: Annotated[str, typer.Option("--mode", help="fast (image-domain model) or full (cone-beam simulation) for the morphometry scans.")] = "fast",
    size: Annotated[float, typer.Option("--size", help="Trabecular cube edge in mm.")] = 6.0,
    voi_diameter: Annotated[float, typer.Option("--voi-diameter", help="VOI cylinder diameter in mm.")] = 4.0,
    voi_height: Annotated[float, typer.Option("--voi-height", help="VOI cylinder height in mm.")] = 4.0,
    no_mtf: Annotated[bool, typer.Option("--no-mtf", help="Skip the edge-MTF part.")] = False,
    sensitivity: Annotated[int, typer.Option("--sensitivity", help="Phantoms re-scanned with clinical-CT variants (kernel, element size) to show what drives the bias; 0 skips.")] = 4,
    real_data: Annotated[Path | None, typer.Option("--real-data", help="Folder of binary micro-CT regions (e.g. ../shared/data/didsr_l1_vertebra, 0.05 mm): also scan each as real anatomy and report the MDCT/micro-CT ratios against the study's.")] = None,
) -> None:
    """Reproduce 'what the twin must show': edge MTF of three presets and morphometry over n phantoms."""
    from rich.markup import escape

    from trabecula.pipeline.twin_study import run_study

    for value, name in ((size, "--size"), (voi_diameter, "--voi-diameter"), (voi_height, "--voi-height")):
        if not (check_finite(value, name) > 0):
            raise ParameterError(name, f"must be a positive number of mm, got {value:g}")
    st = run_study(out_dir, n=n, seed=seed, mode=mode, size_mm=size, voi_diameter_mm=voi_diameter,
                   voi_height_mm=voi_height, mtf=not no_mtf, sensitivity_k=sensitivity, console=out,
                   real_data=real_data)
    for k, v in st.get("summary", {}).get("checks", {}).items():
        out.print(f"{'PASS' if v else 'FAIL'}  {escape(k)}")
    out.print(f"results in {out_dir}/twin_study.json")
