"""The physics of one simulated scan: a label phantom → detector counts (flats, darks) → reconstruction.

Chain per view (each detector element sampled by k × k rays, k = ``simulation.oversample``):

1. path length of every material along every ray (:mod:`trabecula.scanner.project`; air is vacuum);
2. Beer–Lambert per energy bin of the SpekPy spectrum, summed by an energy-integrating detector
   (:mod:`trabecula.scanner.spectrum`): expected signal S and variance V per ray, in equivalent quanta;
3. focal-spot blur: the expected fluence convolved with the focal spot's image for an object at the
   isocentre, a Gaussian of FWHM f·(SDD − SID)/SID on the detector (it blurs the signal, not the noise);
4. quantum noise: the compound-Poisson signal drawn as g·Poisson(S²/V) with gain g = V/S (Gaussian with
   the same mean and variance where S²/V > 100);
5. detector blur: the scintillator's light spread, a Gaussian of FWHM ``blur_fwhm_mm`` on the detector,
   applied after the noise (so it correlates neighbouring pixels' noise, as in an indirect detector);
6. the k × k sub-rays are summed into the element; then dark offset and Gaussian electronic noise.

Flat fields go through the same chain without the object; dark fields are offset + electronic noise.
Noise SD therefore follows 1/√mAs (quantum-limited) with the electronic floor on top.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from scipy import ndimage

from trabecula.errors import ParameterError
from trabecula.io import ProjectionData
from trabecula.progress import progress_steps
from trabecula.scanner._kernels import polychromatic
from trabecula.scanner.config import Scanner, load_scanner
from trabecula.scanner.fast import fast_scan
from trabecula.scanner.geometry import ScanGeometry, detector_window, object_radius_and_height
from trabecula.scanner.materials import mu_table
from trabecula.scanner.project import block_fractions, forward_project, sub_coords, subset
from trabecula.scanner.recon import recon_grid, reconstruct
from trabecula.scanner.sampling import GAUSS_FWHM, check_phantom_grid, phantom_labels, projection_factor
from trabecula.scanner.spectrum import detector_spectrum
from trabecula.volume import Volume


def _gauss(a: np.ndarray, sigma_rows: float, sigma_cols: float) -> np.ndarray:
    if sigma_rows <= 0.05 and sigma_cols <= 0.05:
        return a
    return ndimage.gaussian_filter(a, (0, sigma_rows, sigma_cols), mode="nearest", truncate=3.5)


def _noisy(sig: np.ndarray, var: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Compound-Poisson draw with mean ``sig`` and variance ``var`` (scaled Poisson / Gaussian)."""
    sig = np.maximum(sig, 0.0)
    var = np.maximum(var, 1e-12)
    n_eq = sig * sig / var
    gain = var / np.maximum(sig, 1e-12)
    out = np.empty_like(sig)
    small = n_eq < 100.0
    big = ~small
    out[big] = sig[big] + np.sqrt(var[big]) * rng.standard_normal(int(big.sum()), dtype=np.float32)
    if small.any():
        out[small] = gain[small] * rng.poisson(n_eq[small]).astype(np.float32)
    return out


def detect(sig: np.ndarray, var: np.ndarray, geom: ScanGeometry, scanner: Scanner, rng: np.random.Generator | None,
           k: int, frames: float = 1.0) -> np.ndarray:
    """Steps 3–6: expected signal/variance on the sub-ray grid (views, rows·k [+k/2], cols·k [+k/2]) →
    element signals (views, rows·iv, cols·iu), interleaving ``geometry.interleave_u/v`` readings.

    Each reading gets 1/(iu·iv) of the exposure and its own noise; reading (a, b) bins the sub-rays from
    offset (a·k/2, b·k/2), i.e. half an element later, and fills every iv-th row / iu-th column of the
    output. ``frames`` > 1 makes each output the average of that many frames (variance and electronic noise
    divided accordingly), as for gain-calibration flats."""
    g, d = scanner.geometry, scanner.detector
    iu, iv = g.interleave_u, g.interleave_v
    n_read = iu * iv
    sub_u, sub_v = geom.du / k, geom.dv / k
    focal = scanner.source.focal_spot_mm * (g.sdd_mm - g.sid_mm) / g.sid_mm / GAUSS_FWHM
    blur = d.blur_fwhm_mm / GAUSS_FWHM
    sig = _gauss(sig, focal / sub_v, focal / sub_u)
    if rng is not None:
        var = _gauss(var, focal / sub_v, focal / sub_u)
    nv = sig.shape[0]
    R, C = geom.n_rows, geom.n_cols
    out = np.empty((nv, R * iv, C * iu), np.float32)
    clean = None
    for a in range(iv):
        for b in range(iu):
            if rng is not None:
                s_r = _noisy(sig / np.float32(n_read), var / np.float32(n_read * frames), rng)
                s_r = _gauss(s_r, blur / sub_v, blur / sub_u)
            else:
                if clean is None:
                    clean = _gauss(sig / np.float32(n_read), blur / sub_v, blur / sub_u)
                s_r = clean
            ro, co = a * (k // 2), b * (k // 2)
            part = s_r[:, ro:ro + R * k, co:co + C * k]
            binned = part.reshape(nv, R, k, C, k).sum(axis=(2, 4), dtype=np.float64).astype(np.float32)
            binned += np.float32(d.dark_offset)
            if rng is not None and d.electronic_noise > 0:
                binned += np.float32(d.electronic_noise / math.sqrt(frames)) * rng.standard_normal(binned.shape, dtype=np.float32)
            out[:, a::iv, b::iu] = binned
    return out


def sub_rays(geom: ScanGeometry, scanner: Scanner) -> tuple[np.ndarray, np.ndarray]:
    """Sub-ray detector positions (mm): ``oversample`` per element and axis, plus k/2 more at the end of an
    interleaved axis (for the second reading, half an element later)."""
    k = scanner.simulation.oversample
    us, vs = sub_coords(geom, k)
    if scanner.geometry.interleave_u == 2:
        us = np.concatenate([us, us[-1] + geom.du / k * (1 + np.arange(k // 2))])
    if scanner.geometry.interleave_v == 2:
        vs = np.concatenate([vs, vs[-1] + geom.dv / k * (1 + np.arange(k // 2))])
    return us, vs


def sampled_geometry(geom: ScanGeometry, scanner: Scanner) -> ScanGeometry:
    """The geometry of the interleaved projections (pitch / interleave, first sample at reading A's first)."""
    iu, iv = scanner.geometry.interleave_u, scanner.geometry.interleave_v
    return replace(geom, du=geom.du / iu, dv=geom.dv / iv, n_cols=geom.n_cols * iu, n_rows=geom.n_rows * iv)


def simulate_projections(phantom, scanner, mas: float | None = None, seed: int = 0, *, projector: str = "numba",
                         noise: bool = True, n_flats: int = 8, n_darks: int = 8, flat_exposure: float = 20.0,
                         center_mm=None,
                         chunk_views: int | None = None, progress: bool = True) -> ProjectionData:
    """Simulate the detector data of scanning ``phantom`` with ``scanner``.

    Parameters
    ----------
    phantom : Phantom or label Volume
        ``units="label"`` with ``provenance.extra["materials"]`` ({"0": "air", "1": "bone", ...}); its spacing
        must be at least as fine as the scanner's voxel. Its centre (or ``center_mm``) sits at the isocentre.
    scanner : Scanner, preset name or TOML path
    mas : tube current–time product for the whole orbit (default: the preset's ``exposure.mas``)
    seed : random seed of the quantum and electronic noise (results are reproducible)
    projector : ``"numba"`` (default) or ``"rtk"`` (reference; slow)
    noise : False gives the expected (noise-free) counts
    n_flats, n_darks : number of flat and dark frames stored; each flat is the average of
        ``flat_exposure × views / n_flats`` air frames (a gain calibration collects many times the scan's
        exposure; flat-field noise is the same in every view and would otherwise show as rings)
    flat_exposure : total flat-field exposure as a multiple of the scan's (default 20)
    chunk_views : views per projection chunk (memory control; default keeps a chunk below ~256 MB)

    Returns
    -------
    ProjectionData
        ``data`` (views, rows, cols) float32 counts in equivalent quanta for the detector window the object
        covers; ``flats``, ``darks``; ``angles`` (rad); ``geometry`` holds ``scan_geometry`` (true geometry
        including the centre-alignment error), ``scanner`` (its settings), ``mas_per_view``, ``recon_grid``
        (the scanner's voxel grid over the phantom, isocentre frame) and ``center_mm``.
    """
    scanner = load_scanner(scanner)
    if mas is not None:
        if not (isinstance(mas, int | float) and math.isfinite(mas) and mas > 0):
            raise ParameterError("mas", f"must be a positive number, got {mas!r}")
        scanner = scanner.replace(exposure={"mas": float(mas)})
    vol, materials = phantom_labels(phantom)
    check_phantom_grid(vol, scanner)
    k = scanner.simulation.oversample
    center = np.asarray(vol.center_mm if center_mm is None else center_mm, float)
    radius, z_lo, z_hi = object_radius_and_height(vol.shape, vol.spacing, vol.origin, center)
    geom = detector_window(scanner, radius, z_lo, z_hi)

    labels = np.asarray(vol.numpy())
    proj_ids = sorted(lab for lab, m in materials.items() if m != "air")
    factor = projection_factor(vol.spacing, scanner)
    fr = block_fractions(labels, proj_ids, factor) if proj_ids else np.zeros((3, 3, 3, 1), np.uint8)
    fsp = tuple(s * f for s, f in zip(vol.spacing, factor, strict=True))
    lo = np.asarray(vol.origin) - np.asarray(vol.spacing) / 2 - center  # phantom box corner, isocentre frame
    forigin = tuple(float(v) for v in lo + np.asarray(fsp) / 2 - np.asarray(fsp))  # one padding voxel
    mat_names = [materials[lab] for lab in proj_ids] or ["water"]

    spec = detector_spectrum(scanner)
    mu = mu_table(mat_names, spec.energies_kev)
    sig_w = (spec.signal_weights / (k * k)).astype(np.float64)
    var_w = (spec.variance_weights / (k * k)).astype(np.float64)

    rng = np.random.default_rng(seed) if noise else None
    us, vs = sub_rays(geom, scanner)
    nrk, nck = len(vs), len(us)
    sgeom = sampled_geometry(geom, scanner)
    if chunk_views is None:
        per_view = nrk * nck * (len(mat_names) + 4) * 4
        chunk_views = int(max(1, min(geom.n_views, (256 * 2**20) // max(per_view, 1))))
    data = np.empty((geom.n_views, sgeom.n_rows, sgeom.n_cols), np.float32)
    n_chunks = int(math.ceil(geom.n_views / chunk_views))
    with progress_steps(f"scan {scanner.name}", n_chunks) if progress else _null() as advance:
        for c in range(n_chunks):
            sl = slice(c * chunk_views, min(geom.n_views, (c + 1) * chunk_views))
            gsub = subset(geom, sl)
            paths = forward_project(fr, fsp, forigin, gsub, k, projector, us=us, vs=vs)
            if not proj_ids:
                paths[:] = 0.0
            flat_paths = paths.reshape(-1, paths.shape[-1])
            sig = np.empty(flat_paths.shape[0], np.float64)
            var = np.empty_like(sig)
            polychromatic(flat_paths, mu, sig_w, var_w, sig, var)
            del paths, flat_paths
            shape = (gsub.n_views, nrk, nck)
            data[sl] = detect(sig.reshape(shape).astype(np.float32), var.reshape(shape).astype(np.float32),
                              gsub, scanner, rng, k)
            advance(1)
    # flat and dark fields
    n_f = max(1, n_flats)
    flat_sig = np.full((n_f, nrk, nck), sig_w.sum(), np.float32)
    flat_var = np.full((n_f, nrk, nck), var_w.sum(), np.float32)
    flats = detect(flat_sig, flat_var, geom, scanner, rng, k, frames=max(1.0, flat_exposure * geom.n_views / n_f))
    d = scanner.detector
    n_d = max(1, n_darks)
    darks = np.full((n_d, sgeom.n_rows, sgeom.n_cols), d.dark_offset, np.float32)
    if rng is not None and d.electronic_noise > 0:
        darks += np.float32(d.electronic_noise) * rng.standard_normal(darks.shape, dtype=np.float32)

    grid = recon_grid(scanner, (0.0, 0.0, 0.0), vol.extent_mm)
    geometry = {
        "scan_geometry": sgeom.to_dict(),
        "reading_geometry": geom.to_dict(),
        "scanner": scanner.to_dict(),
        "mas_per_view": scanner.mas_per_view,
        "recon_grid": {"shape": list(grid.shape), "spacing": list(grid.spacing), "origin": list(grid.origin)},
        "center_mm": [float(v) for v in center],
        "phantom": vol.provenance.source,
        "seed": int(seed),
        "noise": bool(noise),
        "projection_grid_mm": list(fsp),
        "oversample": k,
        "materials": {str(lab): materials[lab] for lab in sorted(materials)},
    }
    return ProjectionData(data, np.asarray(geom.angles), flats, darks, (sgeom.dv, sgeom.du), geometry,
                          f"simulated:{scanner.name}")


class _null:
    def __enter__(self):
        return lambda n=1, description=None: None

    def __exit__(self, *exc):
        return False


def scan(phantom, scanner, mas: float | None = None, seed: int = 0, mode: str = "full", *, backend: str = "numba",
         kernel: str | None = None, projector: str = "numba", noise: bool = True, progress: bool = True,
         keep_projections: bool = False) -> Volume | tuple[Volume, ProjectionData]:
    """Scan a phantom with a scanner: a reconstruction in HU on the scanner's voxel grid over the phantom.

    ``mode="full"`` simulates the cone-beam projections (:func:`simulate_projections`) and reconstructs
    them by FDK (:func:`trabecula.scanner.recon.reconstruct`); ``mode="fast"`` uses the image-domain model
    calibrated to the same physics (:func:`trabecula.scanner.fast.fast_scan`), seconds per specimen.
    The output's origin is in the phantom's world frame (it overlays the phantom).
    ``keep_projections=True`` (full mode only) returns ``(volume, projections)``.
    """
    scanner = load_scanner(scanner)
    if mode not in ("full", "fast"):
        raise ParameterError("mode", f"use 'full' or 'fast', got {mode!r}")
    if keep_projections and mode != "full":
        raise ParameterError("keep_projections", "projections exist only in mode 'full'")
    if mode == "fast":
        return fast_scan(phantom, scanner, mas=mas, seed=seed, kernel=kernel, noise=noise)
    proj = simulate_projections(phantom, scanner, mas=mas, seed=seed, projector=projector, noise=noise, progress=progress)
    vol = reconstruct(proj, backend=backend, kernel=kernel)
    return (vol, proj) if keep_projections else vol


__all__ = ["simulate_projections", "scan"]
