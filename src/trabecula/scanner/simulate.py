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

A patient body (:mod:`trabecula.scanner.body`) adds, in step 1, each ray's analytic chord through the body's
tissues outside the phantom's box; the detector window then spans the body's shadow, so the projections
are not truncated. A medium fills the air of the phantom's box (:func:`~trabecula.scanner.sampling.apply_medium`).
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
from trabecula.scanner.body import Body, body_radius_mm, scan_body_paths
from trabecula.scanner.config import Scanner, load_scanner
from trabecula.scanner.dose import scan_dose
from trabecula.scanner.fast import fast_scan
from trabecula.scanner.geometry import ScanGeometry, detector_window, object_radius_and_height
from trabecula.scanner.materials import mu_table
from trabecula.scanner.project import block_fractions, forward_project, sub_coords, subset
from trabecula.scanner.recon import recon_grid, reconstruct
from trabecula.scanner.sampling import (
    GAUSS_FWHM,
    apply_medium,
    check_phantom_grid,
    patient_record,
    phantom_labels,
    projection_factor,
    resolve_patient,
)
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
                         center_mm=None, body: str | Body | None = None, medium: str | None = None,
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
    body : ``NONE``, ``wrist``, ``ankle``, ``lumbar``, ``"AxB"`` (mm) or a :class:`~trabecula.scanner.body.Body`
        around the phantom (default: the scanner's ``patient.body``)
    medium : ``air``, ``marrow``, ``pbs``, ``soft_tissue`` or ``water`` filling the air of the phantom's box
        (default: the scanner's ``patient.medium``)
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
    body_, medium_ = resolve_patient(scanner, body, medium)
    vol, materials = phantom_labels(phantom)
    check_phantom_grid(vol, scanner)
    vol, materials = apply_medium(vol, materials, medium_)
    k = scanner.simulation.oversample
    center = np.asarray(vol.center_mm if center_mm is None else center_mm, float)
    radius, z_lo, z_hi = object_radius_and_height(vol.shape, vol.spacing, vol.origin, center)
    r_body = body_radius_mm(body_)
    geom = detector_window(scanner, radius, z_lo, z_hi, lateral_radius=r_body + 1.0 if body_ is not None else None)

    labels = np.asarray(vol.numpy())
    proj_ids = sorted(lab for lab, m in materials.items() if m != "air")
    factor = projection_factor(vol.spacing, scanner)
    fr = block_fractions(labels, proj_ids, factor) if proj_ids else np.zeros((3, 3, 3, 1), np.uint8)
    fsp = tuple(s * f for s, f in zip(vol.spacing, factor, strict=True))
    lo = np.asarray(vol.origin) - np.asarray(vol.spacing) / 2 - center  # phantom box corner, isocentre frame
    forigin = tuple(float(v) for v in lo + np.asarray(fsp) / 2 - np.asarray(fsp))  # one padding voxel
    mat_names = [materials[lab] for lab in proj_ids] or ["water"]
    n_ph = len(mat_names)
    body_names = [] if body_ is None else list(body_.materials)
    all_names = mat_names + [m for m in body_names if m not in mat_names]
    box = (tuple(lo), tuple(lo + np.asarray(vol.shape) * np.asarray(vol.spacing)))  # phantom box, isocentre frame

    spec = detector_spectrum(scanner)
    mu = mu_table(all_names, spec.energies_kev)
    sig_w = (spec.signal_weights / (k * k)).astype(np.float64)
    var_w = (spec.variance_weights / (k * k)).astype(np.float64)

    rng = np.random.default_rng(seed) if noise else None
    us, vs = sub_rays(geom, scanner)
    nrk, nck = len(vs), len(us)
    ph_cols = table = None
    if body_ is not None:
        # only the columns inside the phantom's own shadow (+ 2 elements) can cross its box
        g = scanner.geometry
        u_ph = g.sdd_mm * radius / math.sqrt(g.sid_mm**2 - radius**2) + abs(geom.offset) * g.magnification + 2 * geom.du
        inside = np.nonzero(np.abs(us) <= u_ph)[0]
        ph_cols = (int(inside[0]), int(inside[-1]) + 1) if inside.size else (0, 0)
        if len(body_.materials) == 1:  # body-only rays: signal and variance from a table of the chord
            table = _chord_table(mu[all_names.index(body_.materials[0])], sig_w, var_w,
                                 2.0 * body_radius_mm(body_) * 1.01 + 1.0)
    sgeom = sampled_geometry(geom, scanner)
    from trabecula.limits import check_memory

    check_memory(4.0 * float(geom.n_views) * sgeom.n_rows * sgeom.n_cols,
                 f"{geom.n_views} views of {sgeom.n_rows}×{sgeom.n_cols} detector readings", "geometry.views",
                 "use fewer views or a coarser detector (pixel_u_mm / pixel_v_mm) in the scanner's TOML")
    if chunk_views is None:
        chunk_views = default_chunk_views(geom.n_views, nrk, nck, len(all_names), body_ is not None)
    data = np.empty((geom.n_views, sgeom.n_rows, sgeom.n_cols), np.float32)
    n_chunks = int(math.ceil(geom.n_views / chunk_views))
    with progress_steps(f"scan {scanner.name}", n_chunks) if progress else _null() as advance:
        for c in range(n_chunks):
            sl = slice(c * chunk_views, min(geom.n_views, (c + 1) * chunk_views))
            gsub = subset(geom, sl)
            if body_ is None:
                paths = forward_project(fr, fsp, forigin, gsub, k, projector, us=us, vs=vs)
                if not proj_ids:
                    paths[:] = 0.0
                sig, var = expected_signal(paths, mu, sig_w, var_w)
                del paths
            else:
                sig, var = _body_chunk(fr, fsp, forigin, gsub, k, projector, us, vs, ph_cols, n_ph, bool(proj_ids),
                                       body_, box, all_names, mu, sig_w, var_w, table)
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
        **patient_record(body_, medium_),
    }
    return ProjectionData(data, np.asarray(geom.angles), flats, darks, (sgeom.dv, sgeom.du), geometry,
                          f"simulated:{scanner.name}")


def default_chunk_views(n_views: int, n_rows: int, n_cols: int, n_materials: int, body: bool) -> int:
    """Views per simulated chunk: a chunk's working arrays stay below ~256 MB. The chunks also fix the order
    in which the noise is drawn, so a streamed scan (:mod:`trabecula.scanner.stream`) uses the same ones."""
    per_view = n_rows * n_cols * (n_materials + 4 + (12 if body else 0)) * 4
    return int(max(1, min(n_views, (256 * 2**20) // max(per_view, 1))))


def expected_signal(paths: np.ndarray, mu: np.ndarray, sig_w: np.ndarray, var_w: np.ndarray):
    """Flat float64 expected signal and variance of rays with path lengths ``paths`` (..., materials)."""
    flat_paths = paths.reshape(-1, paths.shape[-1])
    sig = np.empty(flat_paths.shape[0], np.float64)
    var = np.empty_like(sig)
    polychromatic(flat_paths, mu, sig_w, var_w, sig, var)
    return sig, var


def _chord_table(mu_b: np.ndarray, sig_w: np.ndarray, var_w: np.ndarray, max_mm: float, step_mm: float = 0.005):
    """(L, signal, variance) sampled every ``step_mm`` for a ray crossing L mm of one material: linear
    interpolation of the exponentials is exact to (μ·step)²/8 ≈ 1e-8 relative."""
    L = np.arange(0.0, max_mm + step_mm, step_mm)
    T = np.exp(-np.outer(L, mu_b))
    return L, T @ sig_w, T @ var_w


def _body_chunk(fr, fsp, forigin, gsub, k, projector, us, vs, ph_cols, n_ph, has_phantom, body, box, all_names, mu,
                sig_w, var_w, table, ph_paths=None):
    """Expected signal and variance (flat float64, views × rows × cols) of one chunk of views with a body:
    the phantom is projected only over the columns of its own shadow, the body's chords are added to every
    ray; rays outside the phantom's shadow cross the body alone (looked up in ``table`` for a one-material
    body). ``ph_paths`` (views, rows, shadow columns, phantom materials) are the phantom's path lengths
    already projected (a streamed scan sums them slab by slab); then ``fr`` is not used."""
    nv, nr, nc = gsub.n_views, len(vs), len(us)
    c0, c1 = ph_cols
    sig = np.empty((nv, nr, nc), np.float64)
    var = np.empty_like(sig)
    chords = scan_body_paths(gsub, us, vs, body, box)
    # inside the phantom's shadow: phantom + body materials, polychromatic kernel
    if c1 > c0:
        paths = np.zeros((nv, nr, c1 - c0, len(all_names)), np.float32)
        if ph_paths is not None:
            paths[..., :n_ph] = ph_paths
        elif has_phantom:
            paths[..., :n_ph] = forward_project(fr, fsp, forigin, gsub, k, projector, us=us[c0:c1], vs=vs)
        for name, ch in chords.items():
            paths[..., all_names.index(name)] += ch[:, :, c0:c1]
        s_in = np.empty(paths.shape[0] * nr * (c1 - c0), np.float64)
        v_in = np.empty_like(s_in)
        polychromatic(paths.reshape(-1, len(all_names)), mu, sig_w, var_w, s_in, v_in)
        sig[:, :, c0:c1] = s_in.reshape(nv, nr, c1 - c0)
        var[:, :, c0:c1] = v_in.reshape(nv, nr, c1 - c0)
        del paths, s_in, v_in
    # outside: the body alone
    for cols in (slice(0, c0), slice(c1, nc)):
        n_out = cols.stop - cols.start
        if n_out <= 0:
            continue
        if table is not None:
            L = next(iter(chords.values()))[:, :, cols]
            sig[:, :, cols] = np.interp(L, table[0], table[1])
            var[:, :, cols] = np.interp(L, table[0], table[2])
        else:
            names = list(chords)
            paths = np.stack([chords[m][:, :, cols] for m in names], axis=-1).reshape(-1, len(names))
            mu_b = np.ascontiguousarray(mu[[all_names.index(m) for m in names]])
            s_o = np.empty(paths.shape[0], np.float64)
            v_o = np.empty_like(s_o)
            polychromatic(np.ascontiguousarray(paths), mu_b, sig_w, var_w, s_o, v_o)
            sig[:, :, cols] = s_o.reshape(nv, nr, n_out)
            var[:, :, cols] = v_o.reshape(nv, nr, n_out)
    return sig.ravel(), var.ravel()


class _null:
    def __enter__(self):
        return lambda n=1, description=None: None

    def __exit__(self, *exc):
        return False


def scan(phantom, scanner, mas: float | None = None, seed: int = 0, mode: str = "full", *, backend: str = "numba",
         kernel: str | None = None, projector: str = "numba", noise: bool = True, progress: bool = True,
         keep_projections: bool = False, body: str | Body | None = None,
         medium: str | None = None) -> Volume | tuple[Volume, ProjectionData]:
    """Scan a phantom with a scanner: a reconstruction in HU on the scanner's voxel grid over the phantom.

    ``mode="full"`` simulates the cone-beam projections (:func:`simulate_projections`) and reconstructs
    them by FDK (:func:`trabecula.scanner.recon.reconstruct`); ``mode="fast"`` uses the image-domain model
    calibrated to the same physics (:func:`trabecula.scanner.fast.fast_scan`), seconds per specimen.
    The output's origin is in the phantom's world frame (it overlays the phantom).
    ``keep_projections=True`` (full mode only) returns ``(volume, projections)``.
    ``body`` / ``medium`` put a patient body around the phantom and fill the air of its box (default: the
    scanner's ``[patient]`` table; :func:`simulate_projections`); the output's ``provenance.extra`` records
    both (``body``, ``medium``).
    """
    scanner = load_scanner(scanner)
    if mode not in ("full", "fast"):
        raise ParameterError("mode", f"use 'full' or 'fast', got {mode!r}")
    if keep_projections and mode != "full":
        raise ParameterError("keep_projections", "projections exist only in mode 'full'")
    body_, medium_ = resolve_patient(scanner, body, medium)
    proj = None
    if mode == "fast":
        vol = fast_scan(phantom, scanner, mas=mas, seed=seed, kernel=kernel, noise=noise, body=body_ or "NONE",
                        medium=medium_)
    else:
        proj = simulate_projections(phantom, scanner, mas=mas, seed=seed, projector=projector, noise=noise,
                                    progress=progress, body=body_ or "NONE", medium=medium_)
        vol = reconstruct(proj, backend=backend, kernel=kernel)
        rec = patient_record(body_, medium_)
        prov = vol.provenance.with_step(f"patient body {rec['body']}, medium {medium_}")
        prov.extra.update(rec)
        vol = vol.replace(provenance=prov)
    vol = with_dose(vol, scanner, body_ or "NONE", mas)
    return (vol, proj) if keep_projections else vol


def with_dose(vol: Volume, scanner: Scanner, body: Body | str, mas: float | None) -> Volume:
    """The scan with its dose in the provenance (``extra["dose"]``: CTDIvol, DLP, effective dose and their
    sources, :func:`trabecula.scanner.dose.scan_dose`) and a step that states CTDIvol and effective dose."""
    d = scan_dose(scanner, body=body, mas=mas)
    e = d.get("effective_msv")
    prov = vol.provenance.with_step(f"dose: CTDIvol {d['ctdivol_mgy']:.3g} mGy ({d['phantom_mm'] // 10} cm phantom)"
                                    + (f", effective {e:.3g} mSv" if e is not None else ""))
    prov.extra["dose"] = d
    return vol.replace(provenance=prov)


__all__ = ["simulate_projections", "scan"]
