"""``trabecula reader-study create|add-reader|serve|analyse``: a blinded reader study of the vertebra study's
five criteria (thin verbs over :mod:`trabecula.readerstudy`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trabecula.cli._app import Typer, app, err, out
from trabecula.cli._common import Force, Seed, print_rows

rs_app = Typer(help="Blinded reader study (five criteria, Kendall's W, Mann–Whitney U) in a local web app.",
               no_args_is_help=True)
app.add_typer(rs_app, name="reader-study")

Study = Annotated[Path, typer.Argument(help="The study database (SQLite file).")]


def _methods(images: list[str]) -> dict[str, list[Path]]:
    from trabecula.errors import InputError, ParameterError

    methods: dict[str, list[Path]] = {}
    for item in images:
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path:
            raise ParameterError("--images", f"expected METHOD=VOLUME, got {item!r}")
        if not Path(path).exists():
            raise InputError(path, "no such file or folder")
        methods.setdefault(name.strip(), []).append(Path(path))
    return methods


@rs_app.command("create")
def create_cmd(
    study: Study,
    images: Annotated[list[str], typer.Option("--images", help="METHOD=VOLUME (repeat; several volumes per method allowed), e.g. micro-CT=mct.nii.gz.")],
    per_method: Annotated[int, typer.Option("--per-method", help="Axial slices drawn per method (the study: 30).")] = 30,
    window: Annotated[str, typer.Option("--window", help="LEVEL,WIDTH in HU or a preset (bone, trabecular, soft); the same for every image.")] = "trabecular",
    size: Annotated[int, typer.Option("--size", help="Every image is shown SIZE × SIZE pixels.")] = 512,
    seed: Seed = 0,
    force: Force = False,
) -> None:
    """Pick slices reproducibly, render them alike (one window, one size), store them blinded in STUDY."""
    from trabecula.cli._common import parse_window
    from trabecula.errors import ParameterError
    from trabecula.readerstudy import create_study
    from trabecula.volume import WINDOW_PRESETS

    level, width = parse_window(window)
    if isinstance(level, str):
        if level not in WINDOW_PRESETS:
            raise ParameterError("--window", f"unknown preset {level!r} (use {', '.join(WINDOW_PRESETS)} or LEVEL,WIDTH)")
        level, width = WINDOW_PRESETS[level]
    res = create_study(study, _methods(images), per_method=per_method, seed=seed, window=(level, width),
                       size=size, force=force)
    print_rows([("study", str(res.path)), *((f"images: {m}", str(n)) for m, n in res.methods.items()),
                ("window", f"level {res.window[0]:g}, width {res.window[1]:g}"), ("size", f"{res.size} px"),
                ("seed", str(res.seed)), ("next", f"trabecula reader-study add-reader {study} NAME")])


@rs_app.command("add-reader")
def add_reader_cmd(
    study: Study,
    name: Annotated[str, typer.Argument(help="The reader's name (shown on their page and in the analysis).")],
    base_url: Annotated[str, typer.Option("--base-url", help="Where readers will reach the server.")] = "http://127.0.0.1:8765",
) -> None:
    """Add a reader with their own random order; prints their personal link (shown once: keep it)."""
    from trabecula.readerstudy import add_reader, reader_link

    rid, token = add_reader(study, name)
    out.print(reader_link(base_url, rid, token), soft_wrap=True)


@rs_app.command("serve")
def serve_cmd(
    study: Study,
    host: Annotated[str, typer.Option("--host", help="Address to bind; anything but 127.0.0.1 opens the study to the network.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8765,
    allow_host: Annotated[list[str] | None, typer.Option("--allow-host", help="Extra Host name readers use to reach the server (repeat).")] = None,
) -> None:
    """Serve the readers' pages until Ctrl-C (answers are saved on each click)."""
    from trabecula.errors import ParameterError
    from trabecula.readerstudy import serve

    if not (0 < port < 65536):
        raise ParameterError("--port", f"must be 1..65535, got {port}")
    if host not in ("127.0.0.1", "localhost", "::1"):
        err.print(f"[yellow]warning:[/] --host {host}: the study is reachable from the network; readers need their "
                  "token links, but traffic is plain HTTP (use a trusted network or a TLS proxy)")
    out.print(f"serving {study} on http://{host}:{port}/ (Ctrl-C to stop)")
    serve(study, host=host, port=port, allowed_hosts=allow_host or ())


@rs_app.command("analyse")
def analyse_cmd(
    study: Study,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder for the CSV files and readerstudy.html.")] = Path("readerstudy-analysis"),
    force: Force = False,
) -> None:
    """Kendall's W per criterion and method (tie-corrected, the study's bands), Mann–Whitney U between methods,
    means ± SD per method and reader; CSV and an HTML section in Table 2's layout."""
    from trabecula.readerstudy import analyse, write_analysis

    a = analyse(study)
    files = write_analysis(a, out_dir, force=force)
    rows = [(f"W {r.criterion} · {r.method}", f"{r.W:.3f} ({r.band}), p {r.p:.3g}") for r in a.kendall.itertuples()]
    rows += [(f"MWU {r.criterion}", f"{r.method_a} vs {r.method_b}: U {r.U:g}, p {r.p:.3f}") for r in a.mann_whitney.itertuples()]
    print_rows(rows + [(k, str(v)) for k, v in files.items()])
