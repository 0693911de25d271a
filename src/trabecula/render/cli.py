"""``trabecula render`` and ``trabecula mpr``: thin verbs over :mod:`trabecula.render`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trabecula.errors import ParameterError


def _numbers(text: str, n: tuple[int, ...], name: str) -> list[float]:
    try:
        vals = [float(t) for t in text.replace(" ", "").split(",") if t != ""]
    except ValueError as exc:
        raise ParameterError(name, f"expected comma-separated numbers, got {text!r}") from exc
    if len(vals) not in n:
        raise ParameterError(name, f"expected {' or '.join(str(k) for k in n)} numbers, got {len(vals)} in {text!r}")
    return vals


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
    return h, w


def parse_clip_plane(text: str, center_mm) -> object:
    """``nz,ny,nx[,offset_mm]``: the plane with that normal through the volume centre, moved ``offset_mm``
    along the normal; the side the normal points to is removed."""
    import numpy as np

    from trabecula.render import ClipPlane

    v = _numbers(text, (3, 4), "--clip-plane")
    n = np.asarray(v[:3])
    if not np.linalg.norm(n) > 0:
        raise ParameterError("--clip-plane", "the normal must not be zero")
    n = n / np.linalg.norm(n)
    off = v[3] if len(v) == 4 else 0.0
    return ClipPlane.through(np.asarray(center_mm) + off * n, n)


def parse_clip_box(text: str, keep: str) -> object:
    from trabecula.render import ClipBox

    v = _numbers(text, (6,), "--clip-box")
    return ClipBox(tuple(v[:3]), tuple(v[3:]), keep=keep)


def register(app: typer.Typer) -> None:
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
        input_spacing: Annotated[str | None, typer.Option("--input-spacing", help="Declare the input's voxel spacing in mm (one number or z,y,x), overriding its header.")] = None,
        units: Annotated[str | None, typer.Option("--units", help="Declare the input's value units: HU, attenuation_per_mm, grey, binary, label.")] = None,
        series: Annotated[str | None, typer.Option("--series", help="SeriesInstanceUID to read from a DICOM folder holding several series.")] = None,
        force: Annotated[bool, typer.Option("--force", help="Overwrite existing outputs.")] = False,
    ) -> None:
        """3-D volume rendering (shading, ambient occlusion, soft shadows) with virtual sectioning."""
        from dataclasses import replace

        from trabecula.cli import out, read_input
        from trabecula.io import check_writable
        from trabecula.render import Renderer, bone_transfer_function, camera_preset, save_png
        from trabecula.render import turntable as make_turntable
        from trabecula.render.raycast import _value_sample

        if output is None and turntable is None:
            raise ParameterError("--output", "give -o OUT.png and/or --turntable OUT.gif|.mp4")
        if output is not None:
            if output.suffix.lower() != ".png":
                raise ParameterError("--output", f"{output}: expected a .png file name")
            check_writable(output, force)
        if turntable is not None:
            if turntable.suffix.lower() not in (".gif", ".mp4"):
                raise ParameterError("--turntable", f"{turntable}: expected a .gif or .mp4 file name")
            check_writable(turntable, force)
        if box_keep not in ("outside", "inside"):
            raise ParameterError("--box-keep", f"expected outside or inside, got {box_keep!r}")
        shape = parse_size(size)
        cam = camera_preset(camera, zoom=zoom)
        if azimuth is not None:
            cam = replace(cam, azimuth_deg=azimuth)
        if elevation is not None:
            cam = replace(cam, elevation_deg=elevation)
        vol = read_input(volume, input_spacing, units, series)
        clips = [parse_clip_plane(t, vol.center_mm) for t in clip_plane or []]
        clips += [parse_clip_box(t, box_keep) for t in clip_box or []]
        cmap_vol = read_input(color_by) if color_by is not None else None
        calibrated = vol.units in ("HU", "attenuation_per_mm", "binary", "label")
        tf = bone_transfer_function(vol.units, soft_tissue=soft_tissue,
                                    values=None if calibrated else _value_sample(vol.data))
        r = Renderer(vol, tf, clips or None, cmap_vol, colormap=colormap, ambient_occlusion=not no_ao,
                     shadows=not no_shadows, smooth=smooth)
        if output is not None:
            img = r.render(cam, shape)
            save_png(img, output, force=force)
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
        input_spacing: Annotated[str | None, typer.Option("--input-spacing", help="Declare the inputs' voxel spacing in mm (one number or z,y,x), overriding their headers.")] = None,
        units: Annotated[str | None, typer.Option("--units", help="Declare the inputs' value units: HU, attenuation_per_mm, grey, binary, label.")] = None,
        force: Annotated[bool, typer.Option("--force", help="Overwrite an existing output.")] = False,
    ) -> None:
        """Axial / coronal / sagittal slices through a point (3D Slicer colours, linked crosshair), PNG."""
        from trabecula.cli import out, parse_window, read_input
        from trabecula.io import check_writable
        from trabecula.render import mpr_figure, save_png

        if output.suffix.lower() != ".png":
            raise ParameterError("--output", f"{output}: expected a .png file name")
        check_writable(output, force)
        if not 20 <= dpi <= 1200:
            raise ParameterError("--dpi", f"expected 20..1200, got {dpi}")
        level, width = parse_window(window)
        win = window if width is None else (level, width)
        p = _numbers(point, (3,), "--point") if point else None
        ins = None
        if inset:
            v = _numbers(inset, (4,), "--inset")
            ins = (tuple(v[:3]), v[3])
        title_list = None
        if titles:
            title_list = [t.strip() for t in titles.split(",")]
            if len(title_list) != len(volumes):
                raise ParameterError("--titles", f"{len(title_list)} titles for {len(volumes)} volumes")
        view_list = tuple(v.strip() for v in views.split(",") if v.strip())
        vols = [read_input(v, input_spacing, units) for v in volumes]
        fig = mpr_figure(vols, point_mm=p, window=win, titles=title_list, inset=ins, radiological=not neurological,
                         views=view_list, dpi=dpi)
        save_png(fig, output, force=force)
        out.print(f"wrote {output}  ({len(vols)} volume(s), {'neurological' if neurological else 'radiological'})")
