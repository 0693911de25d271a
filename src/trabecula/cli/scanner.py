"""``trabecula scanners``, ``trabecula scan`` and ``trabecula recon``: thin verbs over :mod:`trabecula.scanner`."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from trabecula.cli._app import app, out
from trabecula.cli._common import Force, check_outputs, read_input


@app.command()
def scanners(
    show: Annotated[str | None, typer.Option("--show", help="Print one preset's TOML (with its comments); copy it to make your own scanner.")] = None,
) -> None:
    """List the scanner presets, or print one as TOML (--show NAME)."""
    from rich.table import Table

    from trabecula.errors import ParameterError
    from trabecula.scanner.config import PRESETS, load_scanner, preset_text

    if show is not None:
        if show not in PRESETS:
            raise ParameterError("--show", f"unknown preset {show!r}; use one of {', '.join(PRESETS)}")
        out.print(preset_text(show), markup=False, highlight=False, end="", soft_wrap=True)  # never wrapped: valid TOML
        return
    t = Table(title="scanner presets (trabecula scanners --show NAME prints one)")
    t.add_column("preset", no_wrap=True)
    for col in ("kVp", "mAs", "element at iso (mm)", "voxel (mm)", "FOV (mm)", "kernel"):
        t.add_column(col)
    presets = [load_scanner(name) for name in PRESETS]
    for s in presets:
        g, r = s.geometry, s.reconstruction
        t.add_row(s.name, f"{s.source.kvp:g}", f"{s.exposure.mas:g}", f"{g.pixel_u_iso_mm:.3f}",
                  f"{r.voxel_mm:.3g} × {r.slice_mm:.3g}", f"{r.fov_mm:g} × {r.axial_fov_mm:g}", r.kernel)
    out.print(t)
    for s in presets:
        out.print(f"[bold]{s.name}[/bold]: {s.description}", highlight=False)


@app.command()
def scan(
    phantom: Annotated[Path, typer.Argument(help="Phantom label volume (from trabecula phantom; materials in its metadata).")],
    scanner: Annotated[str, typer.Option("--scanner", help="Preset (uhr-extremity, clinical-uhr, study-mdct, clinical-mdct, micro-ct) or a scanner .toml file.")],
    out_path: Annotated[Path, typer.Option("-o", "--out", help="Output reconstruction in HU (.nii.gz, .nrrd, .mha, .tif, .zarr).")],
    mas: Annotated[float | None, typer.Option("--mas", help="Tube current–time product for the scan (default: the preset's).")] = None,
    mode: Annotated[str, typer.Option("--mode", help="full (cone-beam projection + FDK) or fast (image-domain model, seconds).")] = "full",
    seed: Annotated[int, typer.Option("--seed", help="Noise seed (results are reproducible from it).")] = 0,
    kernel: Annotated[str | None, typer.Option("--kernel", help="Reconstruction kernel: ramp, shepp-logan, hann, standard, bone (default: the preset's).")] = None,
    backend: Annotated[str, typer.Option("--backend", help="FDK backend: numba (trabecula's, default) or rtk (reference).")] = "numba",
    save_projections: Annotated[Path | None, typer.Option("--save-projections", help="Also write the simulated projections (HDF5, data-exchange layout); full mode only.")] = None,
    png: Annotated[Path | None, typer.Option("--png", help="Also write the middle axial slice as PNG (bone window).")] = None,
    no_noise: Annotated[bool, typer.Option("--no-noise", help="Expected values only (no quantum or electronic noise).")] = False,
    body: Annotated[str | None, typer.Option("--body", help="Patient body around the phantom: NONE, wrist, ankle, lumbar or an ellipse AxB in mm (lateral × AP, e.g. 200x150); default: the preset's [patient] body.")] = None,
    medium: Annotated[str | None, typer.Option("--medium", help="What fills the air of the phantom's box: air, marrow, pbs, soft-tissue, water; default: the preset's [patient] medium.")] = None,
    stream: Annotated[bool, typer.Option("--stream", help="Project and reconstruct slab by slab on dask (large scans; the phantom may be a lazily read .zarr); writes a .zarr.")] = False,
    slab_mm: Annotated[float | None, typer.Option("--slab-mm", help="With --stream: slab height in mm (default 4).")] = None,
    radius_mm: Annotated[float | None, typer.Option("--radius-mm", help="With --stream: the phantom's content lies within this radius (mm) of the rotation axis (a cylinder filling the field of view in a square box).")] = None,
    full_detector: Annotated[bool, typer.Option("--full-detector", help="With --stream: simulate every detector row (a phantom taller than the cone covers is cut off at the detector's edges, as on the scanner).")] = False,
    scheduler: Annotated[str | None, typer.Option("--scheduler", help="With --stream: address of a dask scheduler (tcp://host:port).")] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="With --stream: run on a local cluster of N single-threaded worker processes.")] = None,
    force: Force = False,
) -> None:
    """Scan a phantom with a virtual scanner and write the reconstruction (HU)."""
    from trabecula.errors import ParameterError
    from trabecula.io import detect_format, write_projections, write_volume
    from trabecula.phantom.build import with_materials
    from trabecula.scanner.config import load_scanner
    from trabecula.scanner.simulate import scan as run_scan
    from trabecula.scanner.tomo import save_png

    if mode not in ("full", "fast"):
        raise ParameterError("--mode", f"use full or fast, got {mode!r}")
    if mas is not None and not (math.isfinite(mas) and mas > 0):
        raise ParameterError("--mas", f"must be a positive number, got {mas!r}")
    detect_format(out_path, for_writing=True)
    check_outputs(force, out_path, save_projections, png)
    if save_projections is not None and mode != "full":
        raise ParameterError("--save-projections", "projections exist only in --mode full")
    _check_stream(stream, out_path, slab_mm, scheduler, workers, backend=backend, mode=mode, radius_mm=radius_mm)
    if full_detector and not stream:
        raise ParameterError("--full-detector", "applies only with --stream")
    sc = load_scanner(scanner)
    vol = with_materials(read_input(phantom))
    if stream:
        from trabecula.scanner.stream import stream_scan

        res = stream_scan(vol, sc, out_path, mas=mas, seed=seed, kernel=kernel, noise=not no_noise, body=body,
                          medium=medium, slab_mm=slab_mm, radius_mm=radius_mm, full_detector=full_detector,
                          scheduler=scheduler, workers=workers,
                          force=force, keep_projections=save_projections is not None)
        recon, proj = res if save_projections is not None else (res, None)
        if proj is not None:
            write_projections(proj, save_projections, force=force)
            out.print(f"wrote {save_projections}  {proj}")
        if png is not None:  # the middle slice alone: the volume is never read whole
            k = recon.shape[0] // 2
            save_png(recon.replace(data=recon.data[k:k + 1]), png, force=force)
        ex = recon.provenance.extra
        out.print(f"wrote {out_path}  {recon}  ({sc.name}, streamed, body {ex.get('body', 'NONE')}, "
                  f"medium {ex.get('medium', 'air')})")
        return
    kw = dict(mas=mas, seed=seed, mode=mode, kernel=kernel, backend=backend, noise=not no_noise, body=body, medium=medium)
    if save_projections is not None:
        recon, proj = run_scan(vol, sc, keep_projections=True, **kw)
        write_projections(proj, save_projections, force=force)
        out.print(f"wrote {save_projections}  {proj}")
    else:
        recon = run_scan(vol, sc, **kw)
    write_volume(recon, out_path, force=force)
    if png is not None:
        save_png(recon, png, force=force)
    ex = recon.provenance.extra
    out.print(f"wrote {out_path}  {recon}  ({sc.name}, {mode}, body {ex.get('body', 'NONE')}, medium {ex.get('medium', 'air')})")


@app.command()
def recon(
    projections: Annotated[Path, typer.Argument(help="Projections (.h5, APS data-exchange: data, data_white, data_dark, theta).")],
    out_path: Annotated[Path, typer.Option("-o", "--out", help="Output volume (.nii.gz, .nrrd, .mha, .tif, .zarr).")],
    center: Annotated[str | None, typer.Option("--center", help="Rotation-axis column for parallel-beam data: auto (minimum-entropy search, the default), middle (the detector middle) or a column number.")] = None,
    rings: Annotated[bool, typer.Option("--rings", help="Remove ring artefacts (sinogram column-mean detrending) before FBP.")] = False,
    kernel: Annotated[str | None, typer.Option("--kernel", help="Kernel: ramp, shepp-logan, hann, standard, bone (default: shepp-logan, or the scanner's for simulated data).")] = None,
    backend: Annotated[str, typer.Option("--backend", help="FDK backend for cone-beam (simulated) data: numba or rtk.")] = "numba",
    pixel_size: Annotated[float | None, typer.Option("--pixel-size", help="Detector pixel size in mm for parallel-beam data (gives μ in 1/mm; else μ per pixel).")] = None,
    png: Annotated[Path | None, typer.Option("--png", help="Also write the middle slice as PNG.")] = None,
    stream: Annotated[bool, typer.Option("--stream", help="Reconstruct on dask reading the .h5 a block of rows at a time (large projection sets): cone-beam FDK slab by slab, parallel-beam FBP row block by row block; writes a .zarr.")] = False,
    slab_mm: Annotated[float | None, typer.Option("--slab-mm", help="With --stream: output slab height in mm (default 4).")] = None,
    scheduler: Annotated[str | None, typer.Option("--scheduler", help="With --stream: address of a dask scheduler (tcp://host:port).")] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="With --stream: run on a local cluster of N single-threaded worker processes.")] = None,
    force: Force = False,
) -> None:
    """Reconstruct projections: cone-beam FDK for simulated scans, parallel-beam FBP for real data."""
    from trabecula.io import detect_format, read_projections, write_volume
    from trabecula.scanner.tomo import check_pixel_size, parse_center, reconstruct_projections, save_png

    check_pixel_size(pixel_size)
    setting = parse_center(center)
    detect_format(out_path, for_writing=True)
    check_outputs(force, out_path, png)
    _check_stream(stream, out_path, slab_mm, scheduler, workers, backend=backend)
    if stream:
        from trabecula.scanner.stream import stream_reconstruct_projections

        vol = stream_reconstruct_projections(projections, out_path, kernel=kernel, center=center, rings=rings,
                                             pixel_mm=pixel_size, slab_mm=slab_mm, scheduler=scheduler,
                                             workers=workers, force=force)
        ex = vol.provenance.extra
        if "center_px" in ex:
            out.print(f"rotation centre {ex['center_px']:.2f} px; ring metric {ex['ring_metric']:.3g}", soft_wrap=True)
        if png is not None:  # the middle slice alone: the volume is never read whole
            k = vol.shape[0] // 2
            save_png(vol.replace(data=vol.data[k:k + 1]), png, force=force)
        out.print(f"wrote {out_path}  {vol}  (streamed)")
        return
    vol = reconstruct_projections(read_projections(projections), kernel=kernel, backend=backend, center=center,
                                  rings=rings, pixel_mm=pixel_size)
    ex = vol.provenance.extra
    if "center_px" in ex:
        middle = (vol.shape[2] - 1) / 2
        how = (f"auto: minimum-entropy search; detector middle {middle:g} px; --center PX to set it"
               if ex.get("center_search") else "detector middle" if setting == "middle" else "given")
        out.print(f"rotation centre {ex['center_px']:.2f} px ({how}); ring metric {ex['ring_metric']:.3g}", soft_wrap=True)
    write_volume(vol, out_path, force=force)
    if png is not None:
        save_png(vol, png, force=force)
    out.print(f"wrote {out_path}  {vol}")


def _check_stream(stream: bool, out_path: Path, slab_mm, scheduler, workers, *, backend: str = "numba",
                  mode: str = "full", radius_mm=None) -> None:
    """The --stream options: given only with --stream, valid, and a .zarr output."""
    from trabecula.errors import ParameterError

    if not stream:
        for name, v in (("--slab-mm", slab_mm), ("--scheduler", scheduler), ("--workers", workers),
                        ("--radius-mm", radius_mm)):
            if v is not None:
                raise ParameterError(name, "applies only with --stream")
        return
    if out_path.suffix != ".zarr":
        raise ParameterError("--out", f"--stream writes a .zarr folder, got {out_path.name!r}")
    if mode != "full":
        raise ParameterError("--mode", "--stream simulates the projections (mode full)")
    if backend != "numba":
        raise ParameterError("--backend", "--stream uses the numba FDK")
    for name, v in (("--slab-mm", slab_mm), ("--radius-mm", radius_mm)):
        if v is not None and not (math.isfinite(v) and v > 0):
            raise ParameterError(name, f"must be a positive number of mm, got {v!r}")
    if workers is not None and workers < 1:
        raise ParameterError("--workers", f"must be a positive integer, got {workers!r}")
    if workers is not None and scheduler is not None:
        raise ParameterError("--workers", "give --scheduler or --workers, not both")
