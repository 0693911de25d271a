"""``trabecula render``, ``trabecula mpr`` and ``trabecula view``: thin verbs over :mod:`trabecula.render`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trabecula.cli._app import app, out
from trabecula.cli._common import (
    Force,
    InputSpacing,
    Series,
    Units,
    check_finite,
    check_outputs,
    parse_names,
    parse_numbers,
    parse_window,
    read_input,
)
from trabecula.errors import ParameterError


def parse_size(text: str) -> tuple[int, int]:
    """``1024`` (square) or ``ROWSxCOLUMNS`` (e.g. ``768x1024``)."""
    t = text.lower().replace(" ", "")
    try:
        if "x" in t:
            h, w = (int(v) for v in t.split("x"))
        else:
            h = w = int(t)
    except ValueError as exc:
        raise ParameterError("--size", f"expected N or ROWSxCOLUMNS, got {text!r}") from exc
    if not (1 <= h <= 16384 and 1 <= w <= 16384):
        raise ParameterError("--size", f"a picture is 1..16384 pixels a side, got {text!r}")
    return h, w


def parse_clip_plane(text: str, center_mm):
    """``nz,ny,nx[,offset_mm]``: the plane with that normal through the volume centre, moved ``offset_mm``
    along the normal; the side the normal points to is removed."""
    from trabecula.render.clip import ClipPlane

    v = parse_numbers(text, "--clip-plane", (3, 4))
    try:
        return ClipPlane.through_center(center_mm, v[:3], v[3] if len(v) == 4 else 0.0)
    except ParameterError as exc:
        raise ParameterError("--clip-plane", exc.message) from exc


def _check_suffix(path: Path | None, suffixes: tuple[str, ...], name: str) -> None:
    if path is not None and path.suffix.lower() not in suffixes:
        raise ParameterError(name, f"{path}: expected a {' or '.join(suffixes)} file name")


@app.command()
def render(
    volume: Annotated[Path, typer.Argument(help="Volume to render (any format trabecula reads).")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="PNG file to write.")] = None,
    camera: Annotated[str, typer.Option(help="View: anterior, posterior, lateral (from the patient's left), oblique, superior.")] = "oblique",
    azimuth: Annotated[float | None, typer.Option(help="Override the camera's azimuth (degrees; 0 anterior, 90 patient's left).")] = None,
    elevation: Annotated[float | None, typer.Option(help="Override the camera's elevation (degrees; + towards the head).")] = None,
    zoom: Annotated[float, typer.Option(help="Magnification (1 = the whole volume fits).")] = 1.0,
    size: Annotated[str, typer.Option(help="Picture size in pixels: N or ROWSxCOLUMNS.")] = "1024",
    clip_plane: Annotated[list[str] | None, typer.Option("--clip-plane", help="Cut with a plane nz,ny,nx[,offset_mm]: normal (z, y, x), through the volume centre moved offset_mm along it; removes the side the normal points to. Repeatable.")] = None,
    clip_box: Annotated[list[str] | None, typer.Option("--clip-box", help="Cut away the world box z0,y0,x0,z1,y1,x1 (mm, see `trabecula info` for the extent). Repeatable.")] = None,
    box_keep: Annotated[str, typer.Option("--box-keep", help="outside: cut the box away (a notch); inside: keep only the box (a crop).")] = "outside",
    color_by: Annotated[Path | None, typer.Option("--color-by", help="Colour the surface by this scalar map (e.g. a local-thickness map from `trabecula measure --maps`).")] = None,
    colormap: Annotated[str, typer.Option(help="Matplotlib colormap for --color-by.")] = "turbo",
    soft_tissue: Annotated[float, typer.Option(help="Opacity per voxel of soft tissue (0 hides it; 0.005 shows a faint skin).")] = 0.0,
    smooth: Annotated[float, typer.Option(help="Gaussian SD (voxels) applied before rendering; 0.7-1 removes the speckle of noise in noisy scans.")] = 0.0,
    no_ao: Annotated[bool, typer.Option("--no-ao", help="No ambient occlusion.")] = False,
    no_shadows: Annotated[bool, typer.Option("--no-shadows", help="No shadows.")] = False,
    turntable: Annotated[Path | None, typer.Option("--turntable", help="Also write a turntable animation (.gif or .mp4).")] = None,
    frames: Annotated[int, typer.Option(help="Frames of the turntable (one full turn).")] = 36,
    input_spacing: InputSpacing = None,
    units: Units = None,
    series: Series = None,
    force: Force = False,
) -> None:
    """3-D volume rendering (shading, ambient occlusion, soft shadows) with virtual sectioning."""
    from trabecula.render import ClipBox, Renderer, camera_preset, save_png
    from trabecula.render import turntable as make_turntable
    from trabecula.render.transfer import transfer_function_for

    if output is None and turntable is None:
        raise ParameterError("--output", "give -o OUT.png and/or --turntable OUT.gif|.mp4")
    _check_suffix(output, (".png",), "--output")
    _check_suffix(turntable, (".gif", ".mp4"), "--turntable")
    check_outputs(force, output, turntable)
    if box_keep not in ("outside", "inside"):
        raise ParameterError("--box-keep", f"expected outside or inside, got {box_keep!r}")
    shape = parse_size(size)
    for value, name in ((zoom, "--zoom"), (azimuth, "--azimuth"), (elevation, "--elevation"),
                        (soft_tissue, "--soft-tissue"), (smooth, "--smooth")):
        check_finite(value, name)
    from trabecula.render.raycast import check_picture_memory

    check_picture_memory(shape, "--size", frames if turntable is not None else 1)
    angles = {"azimuth_deg": azimuth, "elevation_deg": elevation}
    cam = camera_preset(camera, zoom=zoom, **{k: v for k, v in angles.items() if v is not None})
    vol = read_input(volume, input_spacing, units, series)
    clips = [parse_clip_plane(t, vol.center_mm) for t in clip_plane or []]
    boxes = [parse_numbers(t, "--clip-box", (6,)) for t in clip_box or []]
    clips += [ClipBox(tuple(v[:3]), tuple(v[3:]), keep=box_keep) for v in boxes]
    cmap_vol = read_input(color_by) if color_by is not None else None
    r = Renderer(vol, transfer_function_for(vol, soft_tissue=soft_tissue), clips or None, cmap_vol, colormap=colormap,
                 ambient_occlusion=not no_ao, shadows=not no_shadows, smooth=smooth)
    if output is not None:
        save_png(r.render(cam, shape), output, force=force)
        out.print(f"wrote {output}  ({shape[0]}×{shape[1]}, camera {camera})")
    if turntable is not None:
        make_turntable(r, turntable, frames=frames, camera=cam, size=shape, force=force)
        out.print(f"wrote {turntable}  ({frames} frames)")


@app.command()
def mpr(
    volumes: Annotated[list[Path], typer.Argument(help="One or more volumes, shown side by side on the same world region.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="PNG file to write.")],
    point: Annotated[str | None, typer.Option(help="World point z,y,x (mm) where the planes cross (default: the inset centre, else the centre).")] = None,
    window: Annotated[str, typer.Option(help="bone, soft, trabecular, lung, auto, or LEVEL,WIDTH in the volumes' units.")] = "bone",
    neurological: Annotated[bool, typer.Option("--neurological", help="Patient's right on the image right (default: radiological, right on the left).")] = False,
    inset: Annotated[str | None, typer.Option(help="Zoomed inset cz,cy,cx,size_mm (world mm), the same in every panel.")] = None,
    titles: Annotated[str | None, typer.Option(help="Comma-separated column titles, one per volume.")] = None,
    views: Annotated[str, typer.Option(help="Which views, comma-separated: axial,coronal,sagittal.")] = "axial,coronal,sagittal",
    dpi: Annotated[int, typer.Option(help="Resolution of the PNG (dots per inch; panels are 3 inches).")] = 150,
    input_spacing: InputSpacing = None,
    units: Units = None,
    force: Force = False,
) -> None:
    """Axial / coronal / sagittal slices through a point (3D Slicer colours, linked crosshair), PNG."""
    from trabecula.render import mpr_figure, save_png

    _check_suffix(output, (".png",), "--output")
    check_outputs(force, output)
    if not 20 <= dpi <= 1200:
        raise ParameterError("--dpi", f"expected 20..1200, got {dpi}")
    level, width = parse_window(window)
    ins = parse_numbers(inset, "--inset", (4,))
    title_list = parse_names(titles, len(volumes), "--titles")
    vols = [read_input(v, input_spacing, units) for v in volumes]
    fig = mpr_figure(vols, point_mm=parse_numbers(point, "--point", (3,)), window=window if width is None else (level, width),
                     titles=title_list, inset=None if ins is None else (tuple(ins[:3]), ins[3]),
                     radiological=not neurological, views=tuple(v.strip() for v in views.split(",") if v.strip()), dpi=dpi)
    save_png(fig, output, force=force)
    out.print(f"wrote {output}  ({len(vols)} volume(s), {'neurological' if neurological else 'radiological'})")


@app.command()
def view(
    volumes: Annotated[list[Path], typer.Argument(help="One or more volumes (any format trabecula reads), shown side by side.")],
    port: Annotated[int, typer.Option(help="TCP port on 127.0.0.1; 0 picks a free one.")] = 0,
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Only print the URL; do not open a browser.")] = False,
    max_voxels: Annotated[int, typer.Option(help="Voxel budget per volume in the browser; larger volumes are block-averaged (the page says so).")] = 16_777_216,
    neurological: Annotated[bool, typer.Option("--neurological", help="Show the patient's right on the screen's right (default: radiological, right on the left).")] = False,
    layout: Annotated[str, typer.Option(help="Initial view: multiplanar (axial, coronal, sagittal + 3-D), axial, coronal, sagittal or render.")] = "multiplanar",
    names: Annotated[str | None, typer.Option(help="Comma-separated panel titles, one per volume (default: file names).")] = None,
    input_spacing: InputSpacing = None,
    units: Units = None,
) -> None:
    """Open volumes in a local web viewer: linked axial/coronal/sagittal + 3-D views with a clip plane."""
    import sys

    from trabecula.render.viewer import ViewerServer, require_assets

    require_assets()  # fail fast, before reading large volumes
    title_list = parse_names(names, len(volumes), "--names")
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
