"""The fast path: an image-domain model of a scanner, derived from the same physics as the full simulation,
for making training data in seconds (``scan(..., mode="fast")``).

Signal: the phantom's materials become their effective attenuation μ_m' — the spectrum-weighted
μ_m = Σ_b w_b μ_m(E_b) of the preset's beam (the weights the water correction and HU scale use), hardened by
the specimen and the body (below), plus a smooth level field —
block-averaged to the projection grid the full simulation would use, blurred by the modelled transfer
function and sampled at the scanner's voxel centres. In-plane (radial frequency f, lp/mm at the isocentre,
detector pitch d, sub-rays k, projection grid g):

    H_xy(f) = D_k(f d) · sinc²(f g) · G(f; focal spot (SDD−SID)/SDD) · G(f; detector blur / M) · W(f d) · sinc²(f d)

— the k-ray aperture average (D_k(x) = sin(πx)/(k sin(πx/k))), Joseph's linear interpolation on the
projection grid, the focal spot's and the scintillator's Gaussian blurs scaled to the isocentre, the kernel
window (:mod:`trabecula.scanner.filters`) and the back-projector's linear interpolation; zero above the
detector Nyquist frequency 1/(2d). Along z the same terms with the row pitch and no kernel; the
slice-thickness filter, where the preset asks for one, is applied afterwards on the output grid with the
edges continued (the full chain's :func:`~trabecula.scanner.recon.slice_thickness_filter`), so the end
slices of a thick-slice scan match the full chain's rather than being blurred with air.

Noise: Gaussian with the noise power spectrum of FBP of independent, detector-blur-correlated projection
noise (Kak & Slaney ch. 5; Hanson, Med. Phys. 6 (1979) 441; Kijewski & Judy, Phys. Med. Biol. 32 (1987)
565), for N views over 360° near the isocentre:

    NPS(f_r, f_z) = (π/N) · d · d_v · σ_p² · |H_r(f_r)|² / f_r · sinc⁴(f_r d) · P_u(f_r d) · sinc⁴(f_z d_v) · P_v(f_z d_v)

with H_r the periodic windowed ramp, P the normalised detector-noise spectra (the scintillator blur
correlates neighbouring pixels' noise) and σ_p² the line-integral variance of the rays through the phantom's
centre (their polychromatic signal and compound-Poisson variance, plus electronic noise, through the water
correction's slope), averaged over eight directions. Aliasing onto the voxel grid is folded in. A test holds
the model's MTF and NPS within 10 % of the full cone-beam simulation.

Beam hardening by the specimen and the body. The water correction linearises water only; everything else
the beam crosses hardens it further, so a material's attenuation depends on where it sits. The full chain
reconstructs the corrected line integrals C(p) (C the water linearisation, identity without it); the fast
path splits them, ray by ray, into a linear part and a smooth residual:

    C(p(ray)) − C(p_body(ray)) = Σ_m μ_m' L_m(ray) + r(ray).

*Contrast* — each material's μ_m' is its value at the operating point of the rays through the specimen's
centre,

    μ_m' = ⟨ C'(p(θ)) · Σ_b w_b T_b(θ) μ_m(E_b) / Σ_b w_b T_b(θ) ⟩_θ,   T_b = exp(−Σ_j μ_j(E_b) L_j(θ)),

with L_j(θ) the path lengths along the central ray in direction θ (eight directions, as FBP averages over
views): the specimen's own, line sums of each label's fraction over the central half of the slices (three
parallel rays one voxel apart), plus the body's analytic chords outside the phantom's box; p = −ln Σ_b w_b T_b
and C' the correction's slope there. μ_m' is the first-order change of the corrected line integral per mm
of material added to such a ray — what a strut or a small insert shows against its surroundings. For water
alone it is exactly μ_w; for a thin specimen in air, the thin-layer value.

*Level* — the residual r = C(p) − C(p_body) − Σ_m μ_m' L_m of every ray (the secant of the hardening curve
above its tangent: cupping, the lift of a bone-rich specimen's marrow, the centre of a bone rod) is smooth; it
is computed for a 2-D parallel-beam sinogram (180 views) of the central half-slab's mean label fractions on a
coarse grid (about 127 pixels across the box), with the body's chords, reconstructed by ramp-filtered back
projection (scikit-image's ``radon``/``iradon``) and added to the μ map of every slice before the transfer
function. Validated against the full simulation (noise-free; ``bench/bench_fast_hardening.py``, pinned by
``tests/scanner/test_hu_scale.py``): a 3 mm bone rod at the centre of a water cylinder on ``micro-ct`` reads
4424 / 4069 / 3620 HU in the fast path against 4500 / 4136 / 3674 HU (8 / 20 / 40 mm cylinders; the
thin-layer scale gives 7057 HU), the struts of an 8 mm crop of a DIDSR region in PBS 4027 against 4042 HU
(``study-mdct``: 1484 against 1494 HU), a 6 mm rod in a 20 mm cylinder on ``study-mdct`` 1969 against
1970 HU, and with a body (``clinical-mdct`` in the lumbar body, ``uhr-extremity`` in the wrist) within 0.1 %.

Limits: one operating point and one 2-D level field for the whole volume (from the central half of its
slices; a specimen that changes along z gets the centre's); μ_m' is the central rays' value, so a strut near
the edge of a large specimen, whose rays are shorter, reads its contrast a little low; streaks between
dense objects are smoothed away on the coarse grid; the noise is stationary (its variance from the rays
through the phantom's centre), and the object-dependent non-linear partial volume (exponential edge-gradient
effect) is absent.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from trabecula.errors import ParameterError
from trabecula.scanner.body import Body, body_path_lengths, body_radius_mm, parse_body
from trabecula.scanner.config import Scanner, load_scanner
from trabecula.scanner.filters import kernel_window
from trabecula.scanner.materials import mu_table
from trabecula.scanner.project import block_fractions
from trabecula.scanner.recon import Grid, recon_grid, slice_thickness_filter
from trabecula.scanner.sampling import (
    GAUSS_FWHM,
    apply_medium,
    check_phantom_grid,
    patient_record,
    phantom_labels,
    projection_factor,
    resolve_patient,
)
from trabecula.scanner.spectrum import (
    BinnedSpectrum,
    detector_spectrum,
    effective_mu,
    to_hu,
    water_linearization,
    water_reference_mu,
)
from trabecula.volume import Provenance, Volume


# ------------------------------------------------------------------------------------ transfer functions
def _dirichlet(x: np.ndarray, k: int) -> np.ndarray:
    """Transfer of averaging k equally spaced samples across one element (x = f·pitch)."""
    x = np.asarray(x, float)
    if k == 1:
        return np.ones_like(x)
    num = np.sin(np.pi * x)
    den = k * np.sin(np.pi * x / k)
    out = np.ones_like(x)
    nz = np.abs(den) > 1e-12
    out[nz] = num[nz] / den[nz]
    return out


def _gauss_tf(f: np.ndarray, fwhm: float) -> np.ndarray:
    s = fwhm / GAUSS_FWHM
    return np.exp(-2.0 * (np.pi * s * np.asarray(f, float)) ** 2)


def _blurs(scanner: Scanner) -> tuple[float, float]:
    """Focal-spot and detector-blur FWHM (mm) at the isocentre."""
    g = scanner.geometry
    focal = scanner.source.focal_spot_mm * (g.sdd_mm - g.sid_mm) / g.sdd_mm
    det = scanner.detector.blur_fwhm_mm / g.magnification
    return focal, det


def _proj_grid(scanner: Scanner, phantom_spacing) -> tuple[float, float]:
    """(in-plane, z) projection-grid spacing (mm) the full simulation uses for this phantom grid."""
    f = projection_factor(phantom_spacing, scanner)
    return phantom_spacing[2] * f[2], phantom_spacing[0] * f[0]


def mtf_model(scanner, f_lp_mm, axis: str = "xy", kernel: str | None = None, grid_mm: float | None = None,
              slice_filter: bool = True) -> np.ndarray:
    """Modelled MTF (presampled, 1 at 0) of ``scanner`` in-plane (``axis="xy"``) or along z (``"z"``) at the
    isocentre, for a projection grid of ``grid_mm`` (default: element pitch / oversample). The element
    (aperture) and the sampling pitch differ when readings are interleaved. ``slice_filter=False`` leaves the
    slice-thickness Gaussian out of the z MTF (the fast path applies it on the output grid, as the full chain)."""
    scanner = load_scanner(scanner)
    g = scanner.geometry
    k = scanner.simulation.oversample
    f = np.abs(np.asarray(f_lp_mm, float))
    focal, det = _blurs(scanner)
    if axis == "xy":
        a, d = g.pixel_u_iso_mm, g.sample_u_iso_mm
        gp = a / k if grid_mm is None else grid_mm
        kern = kernel or scanner.reconstruction.kernel
        return (_dirichlet(f * a, k) * np.sinc(f * gp) ** 2 * _gauss_tf(f, focal) * _gauss_tf(f, det)
                * np.where(f * d <= 0.5, kernel_window(kern, np.minimum(f * d, 0.5)), 0.0) * np.sinc(f * d) ** 2)
    if axis == "z":
        a, d = g.pixel_v_iso_mm, g.sample_v_iso_mm
        gp = a / k if grid_mm is None else grid_mm
        h = _dirichlet(f * a, k) * np.sinc(f * gp) ** 2 * _gauss_tf(f, focal) * _gauss_tf(f, det) * np.sinc(f * d) ** 2
        t = scanner.reconstruction.slice_thickness_mm
        if slice_filter and t > a * 1.05:
            h = h * _gauss_tf(f, math.sqrt(t * t - a * a))
        return h
    raise ParameterError("axis", f"use 'xy' or 'z', got {axis!r}")


def transfer_filter(work: np.ndarray, spacing, scanner, kernel: str | None = None,
                    grid_mm: tuple[float | None, float | None] = (None, None), slice_filter: bool = True) -> np.ndarray:
    """``work`` (z, y, x on ``spacing`` mm; pad it first, the product is circular) filtered by the scanner's
    modelled transfer function ``H_xy(√(f_y² + f_x²)) · H_z(f_z)`` (:func:`mtf_model`; ``grid_mm`` = (z, in-plane)
    projection grids), by real FFT; float32."""
    import scipy.fft

    scanner = load_scanner(scanner)
    F = scipy.fft.rfftn(work, workers=-1)
    kz = np.fft.fftfreq(work.shape[0], spacing[0])[:, None, None]
    ky = np.fft.fftfreq(work.shape[1], spacing[1])[None, :, None]
    kx = np.fft.rfftfreq(work.shape[2], spacing[2])[None, None, :]
    F *= (mtf_model(scanner, np.sqrt(ky**2 + kx**2), "xy", kernel, grid_mm=grid_mm[1])
          * mtf_model(scanner, kz, "z", grid_mm=grid_mm[0], slice_filter=slice_filter)).astype(np.float32)
    return scipy.fft.irfftn(F, s=work.shape, workers=-1).astype(np.float32)


# ------------------------------------------------------------------------------------------------ noise
def _detector_noise_spectrum(blur_fwhm_mm: float, pitch_mm: float, k: int, nu: np.ndarray) -> tuple[np.ndarray, float]:
    """Normalised PSD P(ν) (mean 1 over a period; ν cycles/pixel) of pixel noise made of white sub-pixel
    noise blurred by a Gaussian and summed over k sub-pixels, and the factor Σ K² (pixel variance per
    unit sub-pixel variance)."""
    sub = pitch_mm / k
    s = blur_fwhm_mm / GAUSS_FWHM / sub
    half = int(math.ceil(4 * s)) + k
    x = np.arange(-half, half + k)
    # K[j] = Σ_{i in pixel 0 (sub-pixels 0..k-1)} G[i − j]
    if s > 0.05:
        gk = np.exp(-0.5 * ((np.arange(-half - k, half + k + 1)) / s) ** 2)
        gk /= gk.sum()
        off = half + k
        K = np.array([sum(gk[off + i - j] for i in range(k) if 0 <= off + i - j < gk.size) for j in x])
    else:
        K = np.where((x >= 0) & (x < k), 1.0, 0.0)
    var_factor = float(np.sum(K**2))
    lags = np.arange(-(2 * half // k + 2), 2 * half // k + 3)
    c = np.array([np.sum(K[max(0, -L * k):len(K) - max(0, L * k)] * K[max(0, L * k):len(K) - max(0, -L * k)])
                  if abs(L * k) < len(K) else 0.0 for L in lags])
    rho = c / c[lags == 0][0]
    P = np.real(np.exp(-2j * np.pi * np.outer(nu, lags)) @ rho)
    return np.maximum(P, 0.0), var_factor


def body_central_paths(body: Body | str | None, box_half_yx, n_dirs: int = 8, offsets_mm=(0.0,)) -> tuple[list[str], np.ndarray]:
    """The body's materials and their chords (mm) along in-plane rays through the centre, (n_dirs, materials),
    averaged over parallel rays at ``offsets_mm``; the body is absent inside the box ±``box_half_yx`` (mm)."""
    body = parse_body(body)
    if body is None:
        return [], np.zeros((n_dirs, 0))
    names = list(body.materials)
    R = body_radius_mm(body) + float(np.hypot(*box_half_yx)) + 10.0
    hy, hx = box_half_yx
    box = ((-1e6, -hy, -hx), (1e6, hy, hx))
    out = np.zeros((n_dirs, len(names)))
    for i, a in enumerate(np.arange(n_dirs) * np.pi / n_dirs):
        c, s_ = math.cos(a), math.sin(a)
        for off in offsets_mm:
            src = (-R * c - off * s_, -R * s_ + off * c, 0.0)
            dst = (R * c - off * s_, R * s_ + off * c, 0.0)
            paths = body_path_lengths(src, dst, body, box)
            for j, m in enumerate(names):
                out[i, j] += float(paths[m]) / len(offsets_mm)
    return names, out


def specimen_central_paths(vol: Volume, materials: dict[int, str], n_dirs: int = 8, slab: str = "middle",
                           ) -> tuple[list[str], np.ndarray]:
    """The specimen's non-air materials and their path lengths (mm) along in-plane rays through the centre of
    the label volume, (n_dirs, materials): line sums of each material's fraction (averaged over the slices of
    ``slab``: ``"middle"`` the three central slices, ``"half"`` the central half of the slices) along three
    neighbouring parallel rays one voxel apart (their mean), sampled every half voxel with linear
    interpolation; direction i at angle i·π/n_dirs."""
    lab = np.asarray(vol.numpy())
    nz = lab.shape[0]
    if slab == "middle":
        sub = lab[max(0, nz // 2 - 1): nz // 2 + 2]
    elif slab == "half":
        sub = lab[nz // 4: max(nz // 4 + 1, nz - nz // 4)]
    else:
        raise ParameterError("slab", f"use 'middle' or 'half', got {slab!r}")
    ids = sorted(i for i, m in materials.items() if m != "air")
    names = [materials[i] for i in ids]
    sp = vol.spacing[1]
    out = np.zeros((n_dirs, len(ids)))
    if not ids:
        return names, out
    ny, nx = sub.shape[1:]
    cy, cx = (ny - 1) / 2.0, (nx - 1) / 2.0
    half = 0.5 * math.hypot(ny, nx)
    t = np.arange(-half, half + 0.25, 0.5)  # samples along the ray, pixel units
    for m, lab_id in enumerate(ids):
        frac = (sub == lab_id).mean(axis=0).astype(np.float32)
        for i_dir, a in enumerate(np.arange(n_dirs) * np.pi / n_dirs):
            acc = 0.0
            for off in (-1.0, 0.0, 1.0):
                yy = cy + t * np.sin(a) + off * np.cos(a)
                xx = cx + t * np.cos(a) - off * np.sin(a)
                acc += float(ndimage.map_coordinates(frac, [yy, xx], order=1, mode="constant").sum()) * 0.5 * sp
            out[i_dir, m] = acc / 3.0
    return names, out


def _water_correction(spec: BinnedSpectrum, scanner: Scanner):
    """(C, C') of the preset's beam-hardening correction as functions of the polychromatic line integral p:
    the water linearisation (:func:`~trabecula.scanner.spectrum.water_linearization`) and its slope, or the
    identity and 1 without it."""
    if scanner.simulation.beam_hardening_correction != "water":
        return (lambda p: np.asarray(p, float)), (lambda p: np.ones_like(np.asarray(p, float)))
    table_p, table_lin = water_linearization(spec)
    slope = np.gradient(table_lin, table_p)
    return (lambda p: np.interp(p, table_p, table_lin)), (lambda p: np.interp(p, table_p, slope))


def operating_point_mu(materials, path_names, paths: np.ndarray, scanner: Scanner, spec: BinnedSpectrum,
                       ) -> dict[str, float]:
    """Each material's effective μ (1/mm) at the operating point of rays that cross ``paths`` (mm, (n_dirs,
    len(path_names))): ⟨ C'(p(θ)) · Σ_b w_b T_b(θ) μ_m(E_b) / Σ_b w_b T_b(θ) ⟩_θ, with T_b the rays'
    transmission per energy bin, p = −ln Σ_b w_b T_b and C' the slope of the water correction at p (1
    without it): the first-order change of the corrected line integral per mm of material added to those
    rays. No paths: the thin-layer values (:func:`~trabecula.scanner.spectrum.effective_mu`)."""
    materials = list(materials)
    paths = np.asarray(paths, float)
    if not path_names or paths.size == 0 or not np.any(paths > 0):
        return {m: effective_mu(m, spec) for m in materials}
    mu_p = mu_table(list(path_names), spec.energies_kev)  # (path materials, bins)
    mu_m = mu_table(materials, spec.energies_kev) if materials else np.zeros((0, len(spec.energies_kev)))
    tw = spec.detected_weights[None, :] * np.exp(-(paths @ mu_p))  # (n_dirs, bins)
    p = -np.log(tw.sum(axis=1))
    _, dC = _water_correction(spec, scanner)
    tangent = dC(p)[:, None] * (tw @ mu_m.T) / tw.sum(axis=1)[:, None]  # (n_dirs, materials)
    return {m: float(v) for m, v in zip(materials, tangent.mean(axis=0), strict=True)}


def body_effective_mu(materials, body: Body | str | None, box_half_yx, scanner: Scanner, spec: BinnedSpectrum,
                      n_dirs: int = 8) -> dict[str, float]:
    """Each material's effective μ (1/mm) at the body's operating point (module docstring): the spectrum
    hardened by the body's central chords, times the water correction's slope there, averaged over
    ``n_dirs`` directions (:func:`operating_point_mu`). Without a body: the thin-layer values
    (:func:`~trabecula.scanner.spectrum.effective_mu`)."""
    names, L = body_central_paths(body, box_half_yx, n_dirs)
    return operating_point_mu(materials, names, L, scanner, spec)


def self_hardened_mu(vol: Volume, materials: dict[int, str], body: Body | str | None, scanner: Scanner,
                     spec: BinnedSpectrum, n_dirs: int = 8) -> tuple[dict[str, float], dict]:
    """Each of the specimen's materials' effective μ (1/mm) at the operating point of the rays through its
    centre: the specimen's own path lengths (:func:`specimen_central_paths` over the central half of the
    slices) plus the body's chords (:func:`body_central_paths`) in each of ``n_dirs`` directions
    (:func:`operating_point_mu`); and a record of the mean path per material (mm)."""
    s_names, s_paths = specimen_central_paths(vol, materials, n_dirs, slab="half")
    box_half = (vol.shape[1] * vol.spacing[1] / 2.0, vol.shape[2] * vol.spacing[2] / 2.0)
    b_names, b_paths = body_central_paths(body, box_half, n_dirs)
    names = s_names + b_names
    paths = np.concatenate([s_paths, b_paths], axis=1) if b_names else s_paths
    mats = sorted({m for m in materials.values() if m != "air"})
    mean_paths: dict[str, float] = {}
    for j, n in enumerate(names):
        mean_paths[n] = mean_paths.get(n, 0.0) + float(paths[:, j].mean())
    return (operating_point_mu(mats, names, paths, scanner, spec),
            {"hardening_paths_mm": {k: round(v, 3) for k, v in mean_paths.items()}})


def _coarse_slab(vol: Volume, ids: list[int], n_target: int) -> tuple[np.ndarray, float, np.ndarray]:
    """Each label's fraction averaged over the central half of the slices and block-averaged to a square,
    odd-sized grid of about ``n_target`` pixels across the box: (fractions (labels, N, N), pixel mm, the
    centre of pixel (0, 0) in mm from the box's (y, x) centre)."""
    lab = np.asarray(vol.numpy())
    nz = lab.shape[0]
    sub = lab[nz // 4: max(nz // 4 + 1, nz - nz // 4)]
    ny, nx = sub.shape[1:]
    k = max(1, int(math.ceil(max(ny, nx) / n_target)))
    c = k * vol.spacing[1]
    n = int(math.ceil(max(ny, nx) / k))
    n += 1 - n % 2  # odd: the rotation centre of the Radon transform is the middle pixel
    out = np.zeros((len(ids), n, n), np.float32)
    py, px = n * k - ny, n * k - nx  # phantom voxels of air padding (split evenly)
    for i, lab_id in enumerate(ids):
        f = (sub == lab_id).mean(axis=0, dtype=np.float32)
        f = np.pad(f, ((py // 2, py - py // 2), (px // 2, px - px // 2)))
        out[i] = f.reshape(n, k, n, k).mean(axis=(1, 3))
    sp = vol.spacing[1]
    # phantom voxel j's centre is (j + 0.5 − ny/2)·sp from the box centre; coarse pixel 0 spans padded voxels 0..k−1
    first = np.array([((k - 1) / 2.0 - py // 2 + 0.5 - ny / 2.0) * sp, ((k - 1) / 2.0 - px // 2 + 0.5 - nx / 2.0) * sp])
    return out, c, first


def hardening_field(vol: Volume, materials: dict[int, str], mu_eff: dict[str, float], body: Body | str | None,
                    scanner: Scanner, spec: BinnedSpectrum, n_target: int = 127, n_angles: int = 180,
                    ) -> tuple[np.ndarray, float, np.ndarray]:
    """The smooth part of the beam hardening the fast path's linear image leaves out (module docstring): the
    2-D parallel-beam FBP (ramp filter) of the residual r = C(p_specimen+body) − C(p_body) − Σ_m μ_m' L_m
    of every ray through the central slab, with L_m the rays' paths through the slab's mean material
    fractions on a coarse grid (:func:`_coarse_slab`), the body's analytic chords, and μ_m' ``mu_eff`` (the
    central rays' tangent values). Returns (field in 1/mm on the coarse N × N grid, its pixel mm, the centre
    of pixel (0, 0) in mm from the box centre); a zero field where the specimen holds no material."""
    from skimage.transform import iradon, radon

    ids = sorted(i for i, m in materials.items() if m != "air")
    fr, c, first = _coarse_slab(vol, ids, n_target)
    n = fr.shape[1]
    if not ids or not np.any(fr):
        return np.zeros((n, n), np.float32), c, first
    theta = np.arange(n_angles) * 180.0 / n_angles
    L = np.stack([radon(f.astype(float), theta, circle=False) * c for f in fr], axis=-1)  # (t, angles, labels) mm
    names = [materials[i] for i in ids]
    mu_b = mu_table(names, spec.energies_kev)  # (labels, bins)
    w = spec.detected_weights
    # rays: skimage's projection at angle θ sums along x cosθ − y sinθ = t (x along columns, y along rows)
    nt = L.shape[0]
    t = (np.arange(nt) - nt // 2) * c
    th = np.deg2rad(theta)
    centre = first + (n // 2) * c  # (y, x) of the rotation centre from the box centre
    b_names: list[str] = []
    LB = np.zeros((nt, n_angles, 0))
    body = parse_body(body)
    if body is not None:
        R = body_radius_mm(body) + c * n + 10.0
        cos, sin = np.cos(th)[None, :], np.sin(th)[None, :]
        x0 = centre[1] + t[:, None] * cos
        y0 = centre[0] - t[:, None] * sin
        src = np.stack([x0 - R * sin, y0 - R * cos, np.zeros_like(x0 * cos)], axis=-1)
        dst = np.stack([x0 + R * sin, y0 + R * cos, np.zeros_like(x0 * cos)], axis=-1)
        hy, hx = vol.shape[1] * vol.spacing[1] / 2.0, vol.shape[2] * vol.spacing[2] / 2.0
        paths = body_path_lengths(src, dst, body, ((-1e6, -hy, -hx), (1e6, hy, hx)))
        b_names = list(paths)
        LB = np.stack([paths[m] for m in b_names], axis=-1)
    C, _ = _water_correction(spec, scanner)
    att_b = LB @ mu_table(b_names, spec.energies_kev) if b_names else 0.0
    p_all = -np.log(np.exp(-(L @ mu_b) - att_b) @ w)
    p_body = -np.log(np.exp(-att_b) @ w) if b_names else np.zeros_like(p_all)
    lin = L @ np.array([mu_eff[m] for m in names])
    resid = C(p_all) - C(p_body) - lin
    resid[np.abs(L).sum(axis=-1) == 0] = 0.0
    field = iradon(resid, theta, output_size=n, circle=False, filter_name="ramp") / c
    return field.astype(np.float32), c, first


def central_ray_variance(vol: Volume, materials: dict[int, str], scanner: Scanner, spec: BinnedSpectrum,
                         n_dirs: int = 8, body: Body | str | None = None) -> tuple[float, float, dict]:
    """Mean over ``n_dirs`` directions of the quantum and electronic line-integral variance per detector
    element for rays through the phantom's centre (parallel approximation of the central ray; the specimen's
    paths from :func:`specimen_central_paths` over the three middle slices); a ``body`` adds its analytic
    chords outside the phantom's box to each ray."""
    names, s_paths = specimen_central_paths(vol, materials, n_dirs, slab="middle")
    sp = vol.spacing[1]
    box_half = (vol.shape[1] * vol.spacing[1] / 2.0, vol.shape[2] * vol.spacing[2] / 2.0)
    b_names, b_paths = body_central_paths(body, box_half, n_dirs, offsets_mm=(-sp, 0.0, sp))
    all_names = names + b_names
    mu = mu_table(all_names, spec.energies_kev) if all_names else np.zeros((1, len(spec.energies_kev)))
    k = scanner.simulation.oversample
    g, det = scanner.geometry, scanner.detector
    _, var_u = _detector_noise_spectrum(det.blur_fwhm_mm, g.pixel_u_mm, k, np.zeros(1))
    _, var_v = _detector_noise_spectrum(det.blur_fwhm_mm, g.pixel_v_mm, k, np.zeros(1))
    n_read = g.interleave_u * g.interleave_v  # each reading gets 1/n_read of the exposure
    sw = spec.signal_weights / (k * k)
    vw = spec.variance_weights / (k * k)
    table_p, table_lin = water_linearization(spec)
    slope_water = np.gradient(table_lin, table_p)
    q_var, e_var, paths = [], [], []
    for i_dir in range(n_dirs):
        L = np.zeros(len(all_names) or 1)
        L[:len(names)] = s_paths[i_dir]
        L[len(names):len(all_names)] = b_paths[i_dir]
        tr = np.exp(-(mu.T @ L))  # per bin
        s_sub = float(np.sum(sw * tr))
        v_sub = float(np.sum(vw * tr))
        s_pix = s_sub * k * k
        p = -math.log(max(s_pix / spec.flat_signal, 1e-12))
        slope = float(np.interp(p, table_p, slope_water)) if scanner.simulation.beam_hardening_correction == "water" else 1.0
        q_var.append(v_sub * var_u * var_v * n_read / s_pix**2 * slope**2)
        e_var.append((det.electronic_noise * n_read / s_pix) ** 2 * slope**2)
        paths.append(L.tolist())
    return float(np.mean(q_var)), float(np.mean(e_var)), {"central_paths_mm": paths, "materials": all_names}


def nps_model(scanner, fr_lp_mm, fz_lp_mm, sigma2_quantum: float, sigma2_electronic: float = 0.0,
              kernel: str | None = None) -> np.ndarray:
    """Modelled NPS (μ² · mm³, 1/mm units) at radial in-plane frequency ``fr`` and axial ``fz`` (broadcast);
    ``sigma2_*`` are per-sample line-integral variances (one reading)."""
    scanner = load_scanner(scanner)
    g = scanner.geometry
    k = scanner.simulation.oversample
    kern = kernel or scanner.reconstruction.kernel
    iu, iv = g.interleave_u, g.interleave_v
    d, dv = g.sample_u_iso_mm, g.sample_v_iso_mm
    fr = np.abs(np.asarray(fr_lp_mm, float))
    fz = np.abs(np.asarray(fz_lp_mm, float))
    # periodic windowed ramp |H(f)|² / f at the sampling pitch (frequency folded into the first period)
    nu = (fr * d + 0.5) % 1.0 - 0.5
    nu_a = np.abs(nu)
    ramp_sq_over_f = np.where(fr > 0, (nu_a / d) ** 2 * kernel_window(kern, nu_a) ** 2 / np.maximum(fr, 1e-12), 0.0)
    # detector-blur correlation within one reading; interleaved neighbours are independent readings, so in
    # sample units the spectrum is P(i·ν)
    nu_v = (fz * dv + 0.5) % 1.0 - 0.5
    Pu, _ = _detector_noise_spectrum(scanner.detector.blur_fwhm_mm, g.pixel_u_mm, k, (iu * np.atleast_1d(nu)).ravel())
    Pv, _ = _detector_noise_spectrum(scanner.detector.blur_fwhm_mm, g.pixel_v_mm, k, (iv * np.atleast_1d(nu_v)).ravel())
    Pu = Pu.reshape(np.shape(nu))
    Pv = Pv.reshape(np.shape(nu_v))
    interp = np.sinc(fr * d) ** 4 * np.sinc(fz * dv) ** 4
    t = scanner.reconstruction.slice_thickness_mm
    if t > g.pixel_v_iso_mm * 1.05:
        interp = interp * _gauss_tf(fz, math.sqrt(t * t - g.pixel_v_iso_mm**2)) ** 2
    base = (np.pi / g.views) * d * dv * ramp_sq_over_f * interp
    return base * (sigma2_quantum * Pu * Pv + sigma2_electronic)


# ----------------------------------------------------------------------------------------------- fast scan
def _bspline_matrix(pos: np.ndarray, n: int):
    """Sparse (len(pos) × n) matrix of cubic B-spline basis weights at fractional indices ``pos``."""
    from scipy import sparse

    i0 = np.floor(pos).astype(np.int64)
    t = pos - i0
    w = np.stack([(1 - t) ** 3 / 6, (3 * t**3 - 6 * t**2 + 4) / 6, (-3 * t**3 + 3 * t**2 + 3 * t + 1) / 6, t**3 / 6], axis=1)
    cols = np.clip(i0[:, None] + np.arange(-1, 3)[None, :], 0, n - 1)
    rows = np.repeat(np.arange(len(pos)), 4)
    return sparse.csr_matrix((w.ravel(), (rows, cols.ravel())), shape=(len(pos), n))


def resample_separable(a: np.ndarray, positions: list[np.ndarray]) -> np.ndarray:
    """Cubic B-spline interpolation of ``a`` at the rectilinear grid of fractional indices ``positions``
    (one array per axis): equal to ``ndimage.map_coordinates(order=3, mode="nearest")`` on that grid, done
    axis by axis (4 taps per axis instead of 64 per point)."""
    c = ndimage.spline_filter(np.asarray(a, np.float32), order=3, mode="nearest", output=np.float32)
    for axis, pos in enumerate(positions):
        W = _bspline_matrix(np.asarray(pos, float), c.shape[axis])
        moved = np.moveaxis(c, axis, 0)
        out = (W @ moved.reshape(moved.shape[0], -1)).reshape((len(pos),) + moved.shape[1:])
        c = np.moveaxis(out.astype(np.float32), 0, axis)
    return np.ascontiguousarray(c)



def _row_plane_nps(scanner, n_rows: int, shape_yx, spacing_yx, s2q: float, s2e: float, kernel: str) -> np.ndarray:
    """Discrete PSD on the (detector-row sample, y, x) lattice (rfft layout in x) of the noise each row's
    filtered back-projection leaves in its plane: base(f_r)·(σ_q² P_u P_v(ν_z) + σ_e²), with in-plane
    aliases from ±1 periods of the voxel grid folded in; units μ²·mm² per row plane."""
    g = scanner.geometry
    k = scanner.simulation.oversample
    d = g.sample_u_iso_mm
    nu_z = np.fft.fftfreq(n_rows)  # cycles per row sample
    Pv, _ = _detector_noise_spectrum(scanner.detector.blur_fwhm_mm, g.pixel_v_mm, k,
                                     ((g.interleave_v * nu_z + 0.5) % 1.0) - 0.5)
    fy = np.fft.fftfreq(shape_yx[0], spacing_yx[0])
    fx = np.fft.rfftfreq(shape_yx[1], spacing_yx[1])
    base_q = np.zeros((shape_yx[0], fx.size))
    base_e = np.zeros_like(base_q)
    for my in (-1, 0, 1):
        yy = (fy + my / spacing_yx[0])[:, None]
        for mx in (-1, 0, 1):
            xx = (fx + mx / spacing_yx[1])[None, :]
            fr = np.sqrt(yy**2 + xx**2)
            nu = (fr * d + 0.5) % 1.0 - 0.5
            nu_a = np.abs(nu)
            ramp = np.where(fr > 0, (nu_a / d) ** 2 * kernel_window(kernel, nu_a) ** 2 / np.maximum(fr, 1e-12), 0.0)
            Pu, _ = _detector_noise_spectrum(scanner.detector.blur_fwhm_mm, g.pixel_u_mm, k,
                                             (g.interleave_u * nu).ravel())
            b = (np.pi / g.views) * d * ramp * np.sinc(fr * d) ** 4
            base_q += b * Pu.reshape(fr.shape)
            base_e += b
    return s2q * base_q[None] * Pv[:, None, None] + s2e * base_e[None]


def noise_field(scanner: Scanner, grid: Grid, s2q: float, s2e: float, kernel: str, rng: np.random.Generator) -> np.ndarray:
    """A noise realisation (μ, 1/mm) on ``grid`` (isocentre frame) with the full chain's statistics.

    In each detector-row plane the noise has the FBP NPS (:func:`nps_model`'s in-plane part); across row
    planes the detector blur's correlation; FDK then interpolates linearly between row samples at each
    voxel's height, so the field is drawn on the row lattice (sample j at z = (j/iv − r_mid)·pitch at the
    isocentre, r_mid the detector's middle row) and interpolated to the voxel heights exactly as FDK reads
    the central ray — whether voxels sit on rows or between them changes the variance (by up to 2×)."""
    g = scanner.geometry
    ds = g.sample_v_iso_mm
    r_mid = (g.detector_rows - 1) / 2.0
    z = grid.origin[0] + np.arange(grid.shape[0]) * grid.spacing[0]
    j = z / ds + r_mid * g.interleave_v
    j0 = int(np.floor(j.min())) - 1
    n_rows = int(np.ceil(j.max())) - j0 + 3
    n_fft = max(n_rows, 8)
    psd = _row_plane_nps(scanner, n_fft, grid.shape[1:], grid.spacing[1:], s2q, s2e, kernel)
    import scipy.fft

    white = rng.standard_normal((n_fft,) + tuple(grid.shape[1:]), dtype=np.float32)
    area = grid.spacing[1] * grid.spacing[2]
    spec = scipy.fft.rfftn(white, workers=-1)
    spec *= np.sqrt(psd / area).astype(np.float32)
    rows = scipy.fft.irfftn(spec, s=white.shape, axes=(0, 1, 2), workers=-1)
    pos = j - j0
    lo = np.floor(pos).astype(int)
    w = (pos - lo)[:, None, None]
    field = (1.0 - w) * rows[lo] + w * rows[lo + 1]
    t = scanner.reconstruction.slice_thickness_mm
    a = g.pixel_v_iso_mm
    if t > a * 1.05:  # the full chain's slice-thickness filter acts on the noise too
        sigma = math.sqrt(t * t - a * a) / GAUSS_FWHM / grid.spacing[0]
        field = ndimage.gaussian_filter1d(field, sigma, axis=0, mode="nearest")
    return field.astype(np.float32)


def _field_on_grid(field_c, vol: Volume, shape_w, fsp) -> np.ndarray:
    """:func:`hardening_field` (field, pixel mm, centre of pixel (0, 0) from the box centre) sampled linearly
    at the in-plane cell centres of the working grid (``shape_w``, spacing ``fsp``, starting at the box corner)."""
    field, c, first = field_c
    ext = np.array([vol.shape[1] * vol.spacing[1], vol.shape[2] * vol.spacing[2]])
    yy = ((np.arange(shape_w[1]) + 0.5) * fsp[1] - ext[0] / 2.0 - first[0]) / c
    xx = ((np.arange(shape_w[2]) + 0.5) * fsp[2] - ext[1] / 2.0 - first[1]) / c
    gy, gx = np.meshgrid(yy, xx, indexing="ij")
    return ndimage.map_coordinates(field, [gy, gx], order=1, mode="nearest").astype(np.float32)


def fast_scan(phantom, scanner, mas: float | None = None, seed: int = 0, kernel: str | None = None,
              noise: bool = True, center_mm=None, body: str | Body | None = None, medium: str | None = None) -> Volume:
    """The image-domain model of ``scan(phantom, scanner)``: a Volume in HU on the same grid as the full
    simulation's reconstruction (the scanner's voxels over the phantom, in the phantom's world frame).
    ``body``/``medium`` as in :func:`~trabecula.scanner.simulate.simulate_projections` (default: the
    scanner's ``[patient]`` table)."""
    scanner = load_scanner(scanner)
    if mas is not None:
        if not (isinstance(mas, int | float) and math.isfinite(mas) and mas > 0):
            raise ParameterError("mas", f"must be a positive number, got {mas!r}")
        scanner = scanner.replace(exposure={"mas": float(mas)})
    kern = kernel or scanner.reconstruction.kernel
    body_, medium_ = resolve_patient(scanner, body, medium)
    vol, materials = phantom_labels(phantom)
    check_phantom_grid(vol, scanner)
    vol, materials = apply_medium(vol, materials, medium_)
    spec = detector_spectrum(scanner)
    mu_w = water_reference_mu(spec)
    mu_air = effective_mu("air", spec)
    # signal: effective μ on the projection grid
    ids = sorted(lab for lab, m in materials.items() if m != "air")
    factor = projection_factor(vol.spacing, scanner)
    fr = block_fractions(np.asarray(vol.numpy()), ids, factor)[1:-1, 1:-1, 1:-1] if ids else None
    fsp = np.asarray(vol.spacing) * np.asarray(factor)
    shape_w = tuple(int(math.ceil(n / f)) for n, f in zip(vol.shape, factor, strict=True))
    mu_map = np.zeros(shape_w, np.float32)
    # a body fills everything outside the phantom's box (its chords outside the box, as in the full simulation):
    # its innermost material, at the same operating point, surrounds the box on the working grid
    body_core = None if body_ is None else body_.core
    mats_op = materials if body_core is None or body_core in materials.values() else {**materials, -1: body_core}
    mu_eff, hardening = self_hardened_mu(vol, mats_op, body_, scanner, spec)
    for m, lab in enumerate(ids):
        mu_map += fr[..., m].astype(np.float32) * np.float32(mu_eff[materials[lab]] / 255.0)
    outside = 0.0 if body_core is None else float(mu_eff[body_core])
    if outside:  # working voxels that reach past the box's far faces hold body there, not air
        cover = block_fractions(np.ones(vol.shape, np.uint8), [1], factor)[1:-1, 1:-1, 1:-1][..., 0]
        mu_map += (255 - cover.astype(np.float32)) * np.float32(outside / 255.0)
    if ids:
        mu_map += _field_on_grid(hardening_field(vol, materials, mu_eff, body_, scanner, spec), vol, shape_w, fsp)[None]
    # transfer function on the working grid, padded by ~8 detector elements (air, or the body's core material
    # around a box inside a body) so the blur does not wrap
    g = scanner.geometry
    reach = (8 * g.pixel_v_iso_mm, 8 * g.pixel_u_iso_mm, 8 * g.pixel_u_iso_mm)
    pad = [min(int(math.ceil(r / s)), n) for r, s, n in zip(reach, fsp, shape_w, strict=True)]
    work = np.pad(mu_map, [(p, p) for p in pad], constant_values=outside)
    # (the box average of the projection grid is applied by block_fractions, as in the full chain)
    blurred = transfer_filter(work, fsp, scanner, kern, grid_mm=(float(fsp[0]), float(fsp[2])), slice_filter=False)
    # sample at the recon grid's voxel centres
    center = np.asarray(vol.center_mm if center_mm is None else center_mm, float)
    grid = recon_grid(scanner, (0.0, 0.0, 0.0), vol.extent_mm)
    corner = np.asarray(vol.origin) - np.asarray(vol.spacing) / 2 - center  # phantom box corner (iso frame)
    w_origin = corner + fsp / 2 - np.asarray(pad) * fsp
    axes = [(grid.origin[a] + np.arange(grid.shape[a]) * grid.spacing[a] - w_origin[a]) / fsp[a] for a in range(3)]
    # cubic-spline sampling: the blurred image is band-limited below the working grid's Nyquist, so this adds
    # little blur (linear interpolation would add sinc²(f·g)); separable, as the output grid is rectilinear
    mu_rec = resample_separable(blurred, axes)
    # the slice-thickness Gaussian on the output grid, edges continued, exactly as the full chain applies it
    mu_rec, _ = slice_thickness_filter(mu_rec, scanner)
    s2q = s2e = 0.0
    info: dict = {}
    if noise:
        s2q, s2e, info = central_ray_variance(vol, materials, scanner, spec, body=body_)
        mu_rec = mu_rec + noise_field(scanner, grid, s2q, s2e, kern, np.random.default_rng(seed))
    hu = to_hu(mu_rec, mu_w, mu_air)
    rec = patient_record(body_, medium_)
    prov = Provenance(source=vol.provenance.source or "phantom", scanner=scanner.name,
                      steps=[f"fast scan[{scanner.name}, kernel {kern}, mAs {scanner.exposure.mas:g}, seed {seed}, "
                             f"body {rec['body']}, medium {medium_}]"],
                      extra={"mode": "fast", "mu_water_per_mm": mu_w, "sigma2_quantum": s2q, "sigma2_electronic": s2e,
                             "seed": int(seed), "kernel": kern,
                             "slice_thickness_mm": float(scanner.reconstruction.slice_thickness_mm),
                             **hardening, **info, **rec})
    origin = tuple(float(v) for v in np.asarray(grid.origin) + center)
    return Volume(hu, grid.spacing, origin, "HU", prov)


__all__ = ["fast_scan", "mtf_model", "transfer_filter", "nps_model", "central_ray_variance", "body_effective_mu", "self_hardened_mu",
           "hardening_field", "operating_point_mu", "specimen_central_paths"]
