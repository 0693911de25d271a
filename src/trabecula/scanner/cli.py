"""``trabecula scan``, ``trabecula recon`` and ``trabecula scanners``: thin verbs over :mod:`trabecula.scanner`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def scanners(
        show: Annotated[str | None, typer.Option("--show", help="Print one preset's TOML (with its comments); copy it to make your own scanner.")] = None,
    ) -> None:
        """List the scanner presets, or print one as TOML (--show NAME)."""
        from rich.table import Table

        from trabecula.cli import out
        from trabecula.errors import ParameterError
        from trabecula.scanner.config import PRESETS, load_scanner, preset_text

        if show is not None:
            if show not in PRESETS:
                raise ParameterError("--show", f"unknown preset {show!r}; use one of {', '.join(PRESETS)}")
            out.print(preset_text(show), markup=False, highlight=False, end="")
            return
        t = Table(title="scanner presets (trabecula scanners --show NAME prints one)")
        t.add_column("preset", no_wrap=True)
        for col in ("kVp", "mAs", "element at iso (mm)", "voxel (mm)", "FOV (mm)", "kernel"):
            t.add_column(col)
        for name in PRESETS:
            s = load_scanner(name)
            g, r = s.geometry, s.reconstruction
            t.add_row(name, f"{s.source.kvp:g}", f"{s.exposure.mas:g}", f"{g.pixel_u_iso_mm:.3f}",
                      f"{r.voxel_mm:.3g} × {r.slice_mm:.3g}", f"{r.fov_mm:g} × {r.axial_fov_mm:g}", r.kernel)
        out.print(t)
        for name in PRESETS:
            out.print(f"[bold]{name}[/bold]: {load_scanner(name).description}", highlight=False)

    @app.command()
    def scan(
        phantom: Annotated[Path, typer.Argument(help="Phantom label volume (from trabecula phantom; materials in its metadata).")],
        scanner: Annotated[str, typer.Option("--scanner", help="Preset (uhr-extremity, clinical-uhr, clinical-mdct, micro-ct) or a scanner .toml file.")],
        out_path: Annotated[Path, typer.Option("-o", "--out", help="Output reconstruction in HU (.nii.gz, .nrrd, .mha, .tif, .zarr).")],
        mas: Annotated[float | None, typer.Option("--mas", help="Tube current–time product for the scan (default: the preset's).")] = None,
        mode: Annotated[str, typer.Option("--mode", help="full (cone-beam projection + FDK) or fast (image-domain model, seconds).")] = "full",
        seed: Annotated[int, typer.Option("--seed", help="Noise seed (results are reproducible from it).")] = 0,
        kernel: Annotated[str | None, typer.Option("--kernel", help="Reconstruction kernel: ramp, shepp-logan, hann, standard, bone (default: the preset's).")] = None,
        backend: Annotated[str, typer.Option("--backend", help="FDK backend: numba (trabecula's, default) or rtk (reference).")] = "numba",
        save_projections: Annotated[Path | None, typer.Option("--save-projections", help="Also write the simulated projections (HDF5, data-exchange layout); full mode only.")] = None,
        png: Annotated[Path | None, typer.Option("--png", help="Also write the middle axial slice as PNG (bone window).")] = None,
        no_noise: Annotated[bool, typer.Option("--no-noise", help="Expected values only (no quantum or electronic noise).")] = False,
        force: Annotated[bool, typer.Option("--force", help="Overwrite existing outputs.")] = False,
    ) -> None:
        """Scan a phantom with a virtual scanner and write the reconstruction (HU)."""
        from trabecula.cli import out, read_input
        from trabecula.errors import ParameterError
        from trabecula.io import check_writable, detect_format, write_projections, write_volume
        from trabecula.scanner.config import load_scanner

        if mode not in ("full", "fast"):
            raise ParameterError("--mode", f"use full or fast, got {mode!r}")
        detect_format(out_path, for_writing=True)
        for p in (out_path, save_projections, png):
            if p is not None:
                check_writable(p, force)
        if save_projections is not None and mode != "full":
            raise ParameterError("--save-projections", "projections exist only in --mode full")
        sc = load_scanner(scanner)
        vol = _with_materials(read_input(phantom))
        if mode == "fast":
            from trabecula.scanner.fast import fast_scan

            recon = fast_scan(vol, sc, mas=mas, seed=seed, kernel=kernel, noise=not no_noise)
        else:
            from trabecula.scanner.recon import reconstruct
            from trabecula.scanner.simulate import place, simulate_projections

            proj = simulate_projections(vol, sc, mas=mas, seed=seed, noise=not no_noise)
            if save_projections is not None:
                write_projections(proj, save_projections, force=force)
                out.print(f"wrote {save_projections}  {proj}")
            recon = place(reconstruct(proj, backend=backend, kernel=kernel), proj)
        write_volume(recon, out_path, force=force)
        if png is not None:
            _png(recon, png, force)
        out.print(f"wrote {out_path}  {recon}  ({sc.name}, {mode})")

    @app.command()
    def recon(
        projections: Annotated[Path, typer.Argument(help="Projections (.h5, APS data-exchange: data, data_white, data_dark, theta).")],
        out_path: Annotated[Path, typer.Option("-o", "--out", help="Output volume (.nii.gz, .nrrd, .mha, .tif, .zarr).")],
        center: Annotated[str | None, typer.Option("--center", help="Rotation-axis column for parallel-beam data: auto (entropy search) or a number; default the detector middle.")] = None,
        rings: Annotated[bool, typer.Option("--rings", help="Remove ring artefacts (sinogram column-mean detrending) before FBP.")] = False,
        kernel: Annotated[str | None, typer.Option("--kernel", help="Kernel: ramp, shepp-logan, hann, standard, bone (default: shepp-logan, or the scanner's for simulated data).")] = None,
        backend: Annotated[str, typer.Option("--backend", help="FDK backend for cone-beam (simulated) data: numba or rtk.")] = "numba",
        pixel_size: Annotated[float | None, typer.Option("--pixel-size", help="Detector pixel size in mm for parallel-beam data (gives μ in 1/mm; else μ per pixel).")] = None,
        png: Annotated[Path | None, typer.Option("--png", help="Also write the middle slice as PNG.")] = None,
        force: Annotated[bool, typer.Option("--force", help="Overwrite existing outputs.")] = False,
    ) -> None:
        """Reconstruct projections: cone-beam FDK for simulated scans, parallel-beam FBP for real data."""
        from trabecula.cli import out
        from trabecula.errors import ParameterError
        from trabecula.io import check_writable, detect_format, read_projections, write_volume

        detect_format(out_path, for_writing=True)
        for p in (out_path, png):
            if p is not None:
                check_writable(p, force)
        proj = read_projections(projections)
        if "scan_geometry" in (proj.geometry or {}):
            if center is not None or rings:
                raise ParameterError("--center", "--center and --rings apply to parallel-beam data; this file is a simulated cone-beam scan")
            from trabecula.scanner.recon import reconstruct
            from trabecula.scanner.simulate import place

            vol = place(reconstruct(proj, backend=backend, kernel=kernel), proj)
        else:
            from trabecula.scanner.tomo import reconstruct_parallel

            if backend != "numba":
                raise ParameterError("--backend", "parallel-beam data are reconstructed with trabecula's FBP (numba) only")
            c: float | str | None = center
            if center is not None and center != "auto":
                try:
                    c = float(center)
                except ValueError as exc:
                    raise ParameterError("--center", f"use auto or a column number, got {center!r}") from exc
            vol = reconstruct_parallel(proj, center=c, rings=rings, kernel=kernel or "shepp-logan", pixel_mm=pixel_size)
            ex = vol.provenance.extra
            out.print(f"rotation centre {ex['center_px']:.2f} px" + (" (auto)" if center == "auto" else "")
                      + f"; ring metric {ex['ring_metric']:.3g}")
        write_volume(vol, out_path, force=force)
        if png is not None:
            _png(vol, png, force)
        out.print(f"wrote {out_path}  {vol}")


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
    ) -> None:
        """Reproduce 'what the twin must show': edge MTF of three presets and morphometry over n phantoms."""
        from rich.markup import escape

        from trabecula.cli import out
        from trabecula.errors import ParameterError
        from trabecula.pipeline.twin_study import run_study

        if mode not in ("full", "fast"):
            raise ParameterError("--mode", f"use full or fast, got {mode!r}")
        if n < 1:
            raise ParameterError("-n", f"need at least one phantom, got {n}")
        if size <= 0 or voi_diameter <= 0 or voi_height <= 0 or max(voi_diameter, voi_height) > size:
            raise ParameterError("--voi-diameter", f"the VOI ({voi_diameter:g} × {voi_height:g} mm) must be positive "
                                 f"and fit in the {size:g} mm cube")
        st = run_study(out_dir, n=n, seed=seed, mode=mode, size_mm=size, voi_diameter_mm=voi_diameter,
                       voi_height_mm=voi_height, mtf=not no_mtf, sensitivity_k=sensitivity, console=out)
        for k, v in st.get("summary", {}).get("checks", {}).items():
            out.print(f"{'PASS' if v else 'FAIL'}  {escape(k)}")
        out.print(f"results in {out_dir}/twin_study.json")


def _with_materials(vol):
    """A label volume read from disk keeps its materials in the metadata; files from elsewhere get the
    phantom stage's label convention (label id = index in trabecula.phantom.MATERIALS), with a warning."""
    import warnings

    from trabecula.errors import ParameterError

    if vol.units not in ("label", "binary") and vol.dtype.kind not in "ui":
        raise ParameterError("phantom", f"expected a label volume (units label), got units {vol.units}")
    if vol.provenance.extra.get("materials"):
        return vol if vol.units == "label" else vol.replace(units="label")
    import numpy as np

    from trabecula.phantom import MATERIALS

    ids = [int(v) for v in np.unique(vol.numpy())]
    if any(i < 0 or i >= len(MATERIALS) for i in ids):
        raise ParameterError("phantom", f"labels {ids} have no materials in the file and are outside 0…{len(MATERIALS) - 1}")
    warnings.warn("the phantom file names no materials; using trabecula's label convention "
                  f"({', '.join(f'{i}={MATERIALS[i]}' for i in ids)})", stacklevel=2)
    prov = vol.provenance
    prov.extra["materials"] = {str(i): MATERIALS[i] for i in ids}
    return vol.replace(units="label", provenance=prov)


def _png(vol, path, force):
    if vol.units == "HU":
        import imageio.v3 as iio

        from trabecula.io import atomic_output

        sl = vol.window("bone").numpy()
        with atomic_output(path, force=force) as tmp:
            iio.imwrite(tmp, sl[sl.shape[0] // 2], extension=".png")
    else:
        from trabecula.scanner.tomo import save_png

        save_png(vol, path, force=force)
