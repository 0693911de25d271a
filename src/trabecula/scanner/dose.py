"""Radiation dose of a scan: CTDIw / CTDIvol in the standard PMMA phantoms, DLP and effective dose.

Method
------
The weighted CT dose index is computed from the twin's own physics, the way it is measured
(IEC 60601-2-44; AAPM Report No. 96, McCollough et al. 2008): a 100 mm pencil chamber in the centre hole and
in the holes 10 mm below the surface of a PMMA cylinder (160 mm "head" or 320 mm "body" diameter, 150 mm
long) is exposed to one axial rotation, and

    CTDI100 = (1 / N·T) ∫_{−50 mm}^{+50 mm} K_air(z) dz,        CTDIw = ⅓ CTDI100,centre + ⅔ CTDI100,periphery,
    CTDIvol = CTDIw at the effective mAs,  DLP = CTDIvol · L,   E = k · DLP,

with N·T the nominal beam width at isocentre (detector rows × row pitch at isocentre), K_air the air kerma
in the chamber, L the scan length and k the region's DLP-to-effective-dose factor (:data:`K_FACTORS`).
A preset's mAs is the *effective* mAs (tube current × rotation time / pitch, as Siemens scanners display
it; the twin simulates one axial rotation at that mAs, which gives every point of the scanned length the
same dose as the helix): CTDIvol = CTDIw / pitch at the actual mAs per rotation = CTDIw at the effective mAs.

``K_air(z)`` comes from a photon Monte Carlo of the preset's beam in the phantom (:func:`ctdi_w`):

* **Source**: the preset's SpekPy spectrum (:func:`~trabecula.scanner.spectrum.tube_spectrum`: kVp, anode
  angle, filtration; photons per mm² per mAs at 1 m), scaled to the isocentre by (1000 / SID)²; a point
  source at SID whose rays aim at the isocentre plane uniformly over the fan (the detector's width at
  isocentre, or the phantom's shadow if narrower) with the inverse-square/obliquity weight cos³α. No bow-tie
  filter: the presets do not model one, so the periphery receives the full central-ray fluence.
* **z profile**: the umbra covers the N·T detector rows; the penumbra of the focal spot (FWHM f) through a
  collimator at a quarter of SID spreads each edge over p = f·(SID − d_c)/d_c = 3 f (trapezoid of FWHM
  N·T + p), so CTDI100 includes the overbeaming factor (N·T + p)/(N·T).
* **Transport**: PMMA (NIST composition, 1.19 g/cm³) with photoelectric absorption and Compton scattering
  (Klein–Nishina, sampled with Kahn's method; free-electron approximation) from xraylib cross sections;
  coherent scattering (≈ 5–8 % of μ in PMMA at 40–80 keV, strongly forward-peaked) is neglected — those
  photons continue undeflected. Photons below 5 keV are absorbed locally.
* **Tally**: the expected track-length estimator of air kerma, K = Φ·E·(μen/ρ)_air, in the tally volumes:
  the centre hole (radius 6.55 mm, i.e. the 13.1 mm holes of the standard phantom) and, because one full
  rotation makes every angle equivalent, the ring of the same width centred 10 mm below the surface (the
  rotation average of the four peripheral holes), both over |z| ≤ 50 mm. Mass energy-absorption
  coefficients of air: NIST SRD 126 (Hubbell & Seltzer), Table 4, log–log interpolated. Each photon's flight
  contributes w·∫ exp(−μt) dt over the part of its path inside a tally volume (before it is sampled to
  interact), which removes most of the variance of the primary beam.

The Monte Carlo uses a fixed seed (the result is deterministic) and reports its statistical uncertainty
(:attr:`CTDIResult.rel_uncertainty`, 1 SD of CTDIw). Dose is exactly proportional to mAs: the phantom
response is computed once per beam and phantom (cached) and scaled.

Effective dose
--------------
k factors (mSv per mGy·cm, adult) for the head, neck, chest and abdomen/pelvis: AAPM Report No. 96 (2008),
Table 3 (ICRP 60 weighting; after Shrimpton et al., European Guidelines on Quality Criteria for CT,
EUR 16262). The lumbar spine uses the abdomen-and-pelvis factor (AAPM Report 96 has no spine entry).
Extremities (wrist, ankle, hand, foot): AAPM Report 96 gives no factor; 0.0008 mSv/(mGy·cm) is the value in
common use for extremity CT (:data:`K_FACTORS` names it as such). CTDIvol of extremity and head protocols
is reported in the 160 mm phantom, of trunk protocols in the 320 mm phantom (IEC 60601-2-44; AAPM Report 96).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np

from trabecula.errors import ParameterError
from trabecula.scanner.materials import COMPOSITIONS, density
from trabecula.scanner.spectrum import tube_spectrum

PHANTOMS_MM: tuple[int, ...] = (160, 320)
#: pencil-chamber integration length (mm), IEC 60601-2-44
CHAMBER_LENGTH_MM = 100.0
#: radius of the measurement holes of the standard CTDI phantoms (13.1 mm diameter) — the tally volume
HOLE_RADIUS_MM = 6.55
#: depth of the peripheral holes below the phantom surface (mm)
PERIPHERAL_DEPTH_MM = 10.0
#: length of the standard CTDI phantoms (mm)
PHANTOM_LENGTH_MM = 150.0
#: pre-patient collimator distance from the focal spot as a fraction of SID [assumed]; sets the penumbra
COLLIMATOR_FRACTION = 0.25
#: photons simulated per (beam, phantom); sets the statistical uncertainty (about 1 % on CTDIw)
N_PHOTONS = 60_000
_CUTOFF_KEV = 5.0
_KEV_TO_J = 1.602176634e-16

#: DLP → effective dose factors k (mSv / (mGy·cm), adult) and their sources.
K_FACTORS: dict[str, tuple[float, str]] = {
    "head": (0.0021, "AAPM Report No. 96 (2008), Table 3, adult head"),
    "neck": (0.0059, "AAPM Report No. 96 (2008), Table 3, adult neck"),
    "chest": (0.014, "AAPM Report No. 96 (2008), Table 3, adult chest"),
    "abdomen": (0.015, "AAPM Report No. 96 (2008), Table 3, adult abdomen & pelvis"),
    "lumbar": (0.015, "AAPM Report No. 96 (2008), Table 3, adult abdomen & pelvis (used for the lumbar spine)"),
    "extremity": (0.0008, "extremity CT factor in common use (AAPM Report No. 96 lists none for extremities)"),
}

#: named bodies → (body region for k, CTDI phantom diameter mm)
BODY_REGIONS: dict[str, tuple[str, int]] = {
    "wrist": ("extremity", 160),
    "ankle": ("extremity", 160),
    "hand": ("extremity", 160),
    "foot": ("extremity", 160),
    "knee": ("extremity", 160),
    "head": ("head", 160),
    "lumbar": ("lumbar", 320),
    "abdomen": ("abdomen", 320),
    "chest": ("chest", 320),
}
#: ellipses up to this major axis (mm) are dosed in the 160 mm phantom, larger ones in the 320 mm phantom
SMALL_BODY_MAX_MM = 200.0

CTDI_SOURCE = ("CTDIw = 1/3 centre + 2/3 periphery, 100 mm chamber, PMMA 160/320 mm phantoms "
               "(IEC 60601-2-44; AAPM Report No. 96, 2008); air kerma from a photon Monte Carlo of the preset's "
               "SpekPy spectrum (Poludniowski et al., Med. Phys. 48 (2021) 3630) with xraylib cross sections "
               "(Schoonjans et al., Spectrochim. Acta B 66 (2011) 776); CTDIvol = CTDIw at the effective mAs")


@dataclass(frozen=True)
class CTDIResult:
    """CTDI of one scanner, beam and phantom. All doses in mGy (air kerma); lengths in mm.

    ``ctdi100_center_mgy`` / ``ctdi100_periphery_mgy``: the two chamber readings; ``ctdi_w_mgy`` their
    weighted sum; ``ctdi_vol_mgy`` = CTDIw at the effective mAs (``pitch`` is recorded, already in the mAs); ``ctdi_air_mgy``: CTDI100 free in air at the
    isocentre (no phantom); ``beam_width_mm`` the nominal N·T, ``penumbra_mm`` the overbeaming p;
    ``rel_uncertainty`` the Monte Carlo's 1 SD on CTDIw (relative).
    """

    phantom_mm: int
    kvp: float
    mas: float
    pitch: float
    ctdi100_center_mgy: float
    ctdi100_periphery_mgy: float
    ctdi_w_mgy: float
    ctdi_vol_mgy: float
    ctdi_air_mgy: float
    beam_width_mm: float
    penumbra_mm: float
    fan_half_width_mm: float
    rel_uncertainty: float
    n_photons: int

    def per_100mas(self) -> float:
        """CTDIw per 100 mAs (mGy), the form manufacturers tabulate."""
        return self.ctdi_w_mgy * 100.0 / self.mas

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------------------- cross sections
#: Mass energy-absorption coefficient of dry air (cm²/g) — Hubbell & Seltzer, NIST Standard Reference Database
#: 126, "X-Ray Mass Attenuation Coefficients", Table 4 (Air, Dry, near sea level); log–log interpolated.
_AIR_MUEN_KEV = np.array([4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 80.0, 100.0, 150.0, 200.0])
_AIR_MUEN = np.array([76.36, 39.31, 22.70, 9.446, 4.742, 1.334, 0.5389, 0.1537, 0.06833, 0.04098, 0.03041,
                      0.02407, 0.02325, 0.02496, 0.02672])


def _mixture(material: str, fn_name: str, energies: np.ndarray) -> np.ndarray:
    import xraylib

    fn = getattr(xraylib, fn_name)
    comp, _ = COMPOSITIONS[material]
    out = np.zeros_like(energies)
    for el, w in comp.items():
        out += w * np.array([fn(el, float(e)) for e in energies])
    return out


@lru_cache(maxsize=4)
def _tables(e_max: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Energy grid (keV, 0.5 keV steps), PMMA μ_photo and μ_Compton (1/mm), air μen/ρ (cm²/g)."""
    grid = np.arange(4.0, e_max + 1.0, 0.5)
    rho = density("pmma") / 10.0  # g/cm³ → μ in 1/mm from cm²/g
    photo = _mixture("pmma", "CS_Photo_CP", grid) * rho
    compt = _mixture("pmma", "CS_Compt_CP", grid) * rho
    men_air = np.exp(np.interp(np.log(grid), np.log(_AIR_MUEN_KEV), np.log(_AIR_MUEN)))
    return grid, photo, compt, men_air


def _interp(grid: np.ndarray, table: np.ndarray, e: np.ndarray) -> np.ndarray:
    return np.interp(e, grid, table)


# --------------------------------------------------------------------------------------- geometry helpers
def _disc_interval(px, py, dx, dy, radius):
    """Parameter interval [t0, t1] where the line p + t·d is inside the infinite cylinder x² + y² ≤ r²
    (t0 > t1 where it misses)."""
    a = dx * dx + dy * dy
    b = px * dx + py * dy
    c = px * px + py * py - radius * radius
    disc = b * b - a * c
    ok = (disc > 0) & (a > 1e-12)
    sq = np.sqrt(np.where(ok, disc, 0.0))
    a_safe = np.where(a > 1e-12, a, 1.0)
    t0 = np.where(ok, (-b - sq) / a_safe, 1.0)
    t1 = np.where(ok, (-b + sq) / a_safe, 0.0)
    return t0, t1


def _slab_interval(pz, dz, half):
    """Interval where |pz + t·dz| ≤ half."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ta = (-half - pz) / dz
        tb = (half - pz) / dz
    lo = np.where(dz != 0, np.minimum(ta, tb), np.where(np.abs(pz) <= half, -np.inf, 1.0))
    hi = np.where(dz != 0, np.maximum(ta, tb), np.where(np.abs(pz) <= half, np.inf, 0.0))
    return lo, hi


def _expected_track(px, py, pz, dx, dy, dz, mu, t_exit, radius):
    """∫ exp(−μt) dt over the part of [0, t_exit] inside the tally cylinder (radius, |z| ≤ 50 mm)."""
    r0, r1 = _disc_interval(px, py, dx, dy, radius)
    z0, z1 = _slab_interval(pz, dz, CHAMBER_LENGTH_MM / 2)
    lo = np.maximum(np.maximum(r0, z0), 0.0)
    hi = np.minimum(np.minimum(r1, z1), t_exit)
    inside = hi > lo
    out = np.zeros_like(px)
    m = mu[inside]
    out[inside] = (np.exp(-m * lo[inside]) - np.exp(-m * hi[inside])) / m
    return out


def _kahn(alpha: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Klein–Nishina sampling (Kahn 1956): returns r = E/E' for photons with α = E / 511 keV."""
    r = np.empty_like(alpha)
    todo = np.arange(alpha.size)
    while todo.size:
        a = alpha[todo]
        x1, x2, x3 = rng.random((3, todo.size))
        branch = x1 <= (1 + 2 * a) / (9 + 2 * a)
        r_a = 1 + 2 * a * x2
        acc_a = x3 <= 4 * (1 / r_a - 1 / r_a**2)
        r_b = (1 + 2 * a) / (1 + 2 * a * x2)
        cos_b = 1 - (r_b - 1) / a
        acc_b = x3 <= 0.5 * (cos_b**2 + 1 / r_b)
        rr = np.where(branch, r_a, r_b)
        acc = np.where(branch, acc_a, acc_b)
        r[todo[acc]] = rr[acc]
        todo = todo[~acc]
    return r


def _rotate(dx, dy, dz, cos_t, phi):
    """Directions after scattering by polar angle θ (cos_t) and azimuth φ about the old direction."""
    sin_t = np.sqrt(np.maximum(0.0, 1 - cos_t**2))
    cp, sp = np.cos(phi), np.sin(phi)
    s = np.sqrt(np.maximum(1e-12, 1 - dz**2))
    nx = dx * cos_t + sin_t * (dx * dz * cp - dy * sp) / s
    ny = dy * cos_t + sin_t * (dy * dz * cp + dx * sp) / s
    nz = dz * cos_t - sin_t * cp * s
    polar = np.abs(dz) > 0.99999
    nx = np.where(polar, sin_t * cp, nx)
    ny = np.where(polar, sin_t * sp, ny)
    nz = np.where(polar, np.sign(dz) * cos_t, nz)
    norm = np.sqrt(nx * nx + ny * ny + nz * nz)
    return nx / norm, ny / norm, nz / norm


# --------------------------------------------------------------------------------------- Monte Carlo
@lru_cache(maxsize=64)
def _phantom_response(kvp: float, anode_deg: float, filtration: tuple[tuple[str, float], ...], sid: float,
                      fan_half: float, nt: float, penumbra: float, diameter: float, n: int, seed: int) -> tuple:
    """Per-mAs CTDI100 (centre, periphery, free-in-air, mGy) and the relative SDs of centre and periphery."""
    energies, fluence = tube_spectrum(kvp, anode_deg, dict(filtration))  # photons / mm² / mAs at 1 m per bin
    keep = fluence > 0
    energies, fluence = energies[keep], fluence[keep]
    phi0 = float(fluence.sum()) * (1000.0 / sid) ** 2  # photons / mm² / mAs on the central ray at isocentre
    grid, t_photo, t_compt, t_men = _tables(float(math.ceil(kvp)) + 1.0)
    men_spec = _interp(grid, t_men, energies)
    # free-in-air CTDI100: central-ray kerma × ∫profile / N·T (the whole profile lies within ±50 mm)
    k_air = phi0 * 100.0 * float(np.sum(fluence / fluence.sum() * energies * men_spec)) * _KEV_TO_J * 1e3 * 1e3
    ctdi_air = k_air * (nt + penumbra) / nt

    R = diameter / 2.0
    rng = np.random.default_rng(seed)
    half_u = min(fan_half, R * sid / math.sqrt(sid * sid - R * R))
    cdf = np.cumsum(fluence)
    cdf /= cdf[-1]
    e = energies[np.searchsorted(cdf, rng.random(n))] + rng.uniform(-0.25, 0.25, n)
    e = np.clip(e, _CUTOFF_KEV, kvp)
    u = rng.uniform(-half_u, half_u, n)
    z = rng.uniform(-(nt + penumbra) / 2, (nt + penumbra) / 2, n) + rng.uniform(-penumbra / 2, penumbra / 2, n)
    # source at (0, SID, 0); aim point (u, 0, z) on the isocentre plane
    dx, dy, dz = u, np.full(n, -sid), z
    L = np.sqrt(dx * dx + dy * dy + dz * dz)
    w = (sid / L) ** 3
    dx, dy, dz = dx / L, dy / L, dz / L
    t0, t1 = _disc_interval(np.zeros(n), np.full(n, sid), dx, dy, R)
    hit = t1 > t0
    px, py, pz = t0 * dx, sid + t0 * dy, t0 * dz
    hit &= np.abs(pz) <= PHANTOM_LENGTH_MM / 2
    idx = np.nonzero(hit)[0]
    px, py, pz, dx, dy, dz, e, w = (a[idx] for a in (px, py, pz, dx, dy, dz, e, w))

    r_per = R - PERIPHERAL_DEPTH_MM
    tally_c = np.zeros(n)
    tally_p = np.zeros(n)
    for _ in range(10_000):
        if idx.size == 0:
            break
        mu_ph = _interp(grid, t_photo, e)
        mu_c = _interp(grid, t_compt, e)
        mu = mu_ph + mu_c
        men = _interp(grid, t_men, e)
        # distance to leave the phantom
        _, side = _disc_interval(px, py, dx, dy, R)
        _, cap = _slab_interval(pz, dz, PHANTOM_LENGTH_MM / 2)
        t_exit = np.maximum(np.minimum(side, cap), 0.0)
        score = w * e * men
        c = _expected_track(px, py, pz, dx, dy, dz, mu, t_exit, HOLE_RADIUS_MM)
        p = (_expected_track(px, py, pz, dx, dy, dz, mu, t_exit, r_per + HOLE_RADIUS_MM)
             - _expected_track(px, py, pz, dx, dy, dz, mu, t_exit, r_per - HOLE_RADIUS_MM))
        np.add.at(tally_c, idx, score * c)
        np.add.at(tally_p, idx, score * p)
        s = -np.log(1.0 - rng.random(idx.size)) / mu
        stay = s < t_exit
        px, py, pz = px + s * dx, py + s * dy, pz + s * dz
        compton = rng.random(idx.size) * mu >= mu_ph
        alive = stay & compton
        a = alive
        idx, px, py, pz, dx, dy, dz, e, w = (v[a] for v in (idx, px, py, pz, dx, dy, dz, e, w))
        if idx.size == 0:
            break
        alpha = e / 510.99895
        r = _kahn(alpha, rng)
        cos_t = 1 - (r - 1) / alpha
        dx, dy, dz = _rotate(dx, dy, dz, cos_t, rng.uniform(0, 2 * np.pi, idx.size))
        e = e / r
        keep = e >= _CUTOFF_KEV
        idx, px, py, pz, dx, dy, dz, e, w = (v[keep] for v in (idx, px, py, pz, dx, dy, dz, e, w))

    # tallies → ∫K dz over 100 mm / N·T in mGy per mAs
    photons = phi0 * 2 * half_u * (nt + penumbra)  # photons per mAs aimed into the field
    unit = photons * 100.0 * _KEV_TO_J * 1e3 * 1e3 / nt  # × mean per history; mm⁻²→cm⁻², keV→J, g→kg, Gy→mGy, /N·T
    area_c = math.pi * HOLE_RADIUS_MM**2
    area_p = math.pi * ((r_per + HOLE_RADIUS_MM) ** 2 - (r_per - HOLE_RADIUS_MM) ** 2)
    centre = unit * tally_c.mean() / area_c
    periph = unit * tally_p.mean() / area_p
    sd_c = tally_c.std(ddof=1) / math.sqrt(n) / max(tally_c.mean(), 1e-300)
    sd_p = tally_p.std(ddof=1) / math.sqrt(n) / max(tally_p.mean(), 1e-300)
    return float(centre), float(periph), float(ctdi_air), float(sd_c), float(sd_p), float(half_u)


def beam_geometry(scanner) -> dict[str, float]:
    """Nominal beam width N·T (mm at isocentre), penumbra p (mm) and fan half-width at isocentre (mm)."""
    g, s = scanner.geometry, scanner.source
    nt = g.detector_rows * g.pixel_v_iso_mm
    d_c = COLLIMATOR_FRACTION * g.sid_mm
    penumbra = s.focal_spot_mm * (g.sid_mm - d_c) / d_c
    return {"beam_width_mm": nt, "penumbra_mm": penumbra, "fan_half_width_mm": g.detector_cols * g.pixel_u_iso_mm / 2}


def ctdi_w(scanner, phantom_diameter_mm: int = 320, mas: float | None = None, *, n_photons: int = N_PHOTONS,
           seed: int = 0) -> CTDIResult:
    """Weighted and volume CT dose index of ``scanner`` in the 160 or 320 mm PMMA phantom.

    Parameters
    ----------
    scanner : :class:`~trabecula.scanner.config.Scanner` or preset name
    phantom_diameter_mm : 160 (head / extremity phantom) or 320 (body phantom)
    mas : tube current–time product of the rotation (default: the preset's ``exposure.mas``)
    n_photons, seed : Monte Carlo histories and seed (the defaults give about 1 % SD on CTDIw)

    Returns
    -------
    CTDIResult : centre, periphery, weighted and volume CTDI (mGy), free-in-air CTDI100, beam width,
        penumbra, and the Monte Carlo's relative SD. Dose is exactly proportional to ``mas``.

    Examples
    --------
    >>> r = ctdi_w("clinical-mdct", 320, mas=100)
    >>> 4.0 < r.ctdi_w_mgy < 15.0
    True
    """
    from trabecula.scanner.config import load_scanner

    sc = load_scanner(scanner) if isinstance(scanner, str) else scanner
    if phantom_diameter_mm not in PHANTOMS_MM:
        raise ParameterError("phantom_diameter_mm", f"must be 160 or 320 (the standard CTDI phantoms), got {phantom_diameter_mm!r}")
    m = sc.exposure.mas if mas is None else mas
    if not (isinstance(m, int | float) and math.isfinite(m) and m > 0):
        raise ParameterError("mas", f"must be a positive number, got {m!r}")
    if not (isinstance(n_photons, int) and n_photons >= 1000):
        raise ParameterError("n_photons", f"must be an integer ≥ 1000, got {n_photons!r}")
    g, s = sc.geometry, sc.source
    R = phantom_diameter_mm / 2
    if R >= 0.9 * g.sid_mm:
        raise ParameterError("phantom_diameter_mm", f"a {phantom_diameter_mm} mm phantom does not fit inside SID {g.sid_mm} mm")
    geo = beam_geometry(sc)
    filt = tuple(sorted((str(k), float(v)) for k, v in s.filtration_mm.items()))
    centre, periph, air, sd_c, sd_p, half_u = _phantom_response(
        float(s.kvp), float(s.anode_angle_deg), filt, float(g.sid_mm), round(geo["fan_half_width_mm"], 6),
        round(geo["beam_width_mm"], 6), round(geo["penumbra_mm"], 6), float(phantom_diameter_mm), int(n_photons), int(seed))
    pitch = g.pitch if g.pitch > 0 else 1.0
    w_c, w_p = centre / 3, 2 * periph / 3
    wsum = w_c + w_p
    rel = math.sqrt((w_c * sd_c) ** 2 + (w_p * sd_p) ** 2) / wsum
    return CTDIResult(
        phantom_mm=int(phantom_diameter_mm), kvp=float(s.kvp), mas=float(m), pitch=float(pitch),
        ctdi100_center_mgy=centre * m, ctdi100_periphery_mgy=periph * m, ctdi_w_mgy=wsum * m,
        ctdi_vol_mgy=wsum * m, ctdi_air_mgy=air * m, beam_width_mm=geo["beam_width_mm"],
        penumbra_mm=geo["penumbra_mm"], fan_half_width_mm=half_u, rel_uncertainty=rel, n_photons=int(n_photons),
    )


# --------------------------------------------------------------------------------------- scan dose
_ELLIPSE = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*[xX×]\s*(\d+(?:\.\d*)?)\s*(?:mm)?\s*$")


def body_region(body, scanner=None) -> tuple[str | None, int]:
    """(body region for the k factor or None, CTDI phantom diameter mm) for a body name.

    Named bodies use :data:`BODY_REGIONS`; an ``"AxB"`` ellipse (mm) is dosed in the 160 mm phantom up to a
    200 mm major axis, else in the 320 mm phantom, and has no region; no body (``None``/``"NONE"``, a bare
    specimen) uses the phantom matching the scanner's field — 320 mm if its detector covers ≥ 320 mm at
    isocentre (a body scanner), else 160 mm — and has no region.
    """
    if hasattr(body, "semi_axes_mm"):  # a trabecula.scanner.body.Body
        named = BODY_REGIONS.get(str(body.name).lower())
        if named is not None:
            return named
        region = getattr(body, "region", None)
        region = "lumbar" if region == "abdomen" else region
        return (region if region in K_FACTORS else None), 160 if 2 * max(body.semi_axes_mm) <= SMALL_BODY_MAX_MM else 320
    if body is None or str(body).strip().upper() in ("", "NONE"):
        if scanner is None:
            return None, 320
        fov = scanner.geometry.detector_cols * scanner.geometry.pixel_u_iso_mm
        return None, 320 if fov >= 320.0 else 160
    key = str(body).strip().lower()
    if key in BODY_REGIONS:
        return BODY_REGIONS[key]
    m = _ELLIPSE.match(key)
    if m:
        a, b = float(m.group(1)), float(m.group(2))
        if a <= 0 or b <= 0:
            raise ParameterError("body", f"ellipse axes must be positive, got {body!r}")
        return None, 160 if max(a, b) <= SMALL_BODY_MAX_MM else 320
    raise ParameterError("body", f"unknown body {body!r}; use NONE, {', '.join(BODY_REGIONS)} or an ellipse 'AxB' in mm")


def _default_body(scanner) -> str | None:
    """The scanner's default body (``[patient] body``), or None."""
    patient = getattr(scanner, "patient", None)
    return getattr(patient, "body", None) if patient is not None else None


def scan_dose(scanner, body: str | None = None, mas: float | None = None, scan_length_mm: float | None = None,
              region: str | None = None) -> dict:
    """CTDIvol, DLP and effective dose of one scan, with the conventions and sources as strings.

    Parameters
    ----------
    scanner : :class:`~trabecula.scanner.config.Scanner` or preset name
    body : ``NONE``, a named body (``wrist``, ``ankle``, ``lumbar``, …) or an ``"AxB"`` ellipse in mm;
        default: the scanner's default body if it has one, else none (a bare specimen)
    mas : tube current–time product (default: the preset's)
    scan_length_mm : irradiated length along z (default: the preset's axial FOV, one rotation)
    region : body region for the k factor (a key of :data:`K_FACTORS`), overriding the body's

    Returns
    -------
    dict with ``ctdivol_mgy``, ``ctdiw_mgy``, ``phantom_mm``, ``pitch``, ``mas``, ``scan_length_mm``,
    ``dlp_mgy_cm``, ``region``, ``k_factor`` (mSv/(mGy·cm) or None), ``effective_msv`` (None without a
    region), ``rel_uncertainty``, ``ctdi_source``, ``k_source``.

    Examples
    --------
    >>> d = scan_dose("uhr-extremity", body="wrist")
    >>> d["phantom_mm"], d["k_factor"]
    (160, 0.0008)
    """
    from trabecula.scanner.config import load_scanner

    sc = load_scanner(scanner) if isinstance(scanner, str) else scanner
    if body is None:
        body = _default_body(sc)
    reg, phantom = body_region(body, sc)
    if region is not None:
        if region not in K_FACTORS:
            raise ParameterError("region", f"unknown region {region!r}; use one of {', '.join(K_FACTORS)}")
        reg = region
    length = sc.reconstruction.axial_fov_mm if scan_length_mm is None else scan_length_mm
    if not (isinstance(length, int | float) and math.isfinite(length) and length > 0):
        raise ParameterError("scan_length_mm", f"must be a positive number, got {length!r}")
    r = ctdi_w(sc, phantom, mas=mas)
    dlp = r.ctdi_vol_mgy * length / 10.0
    k, k_src = K_FACTORS[reg] if reg is not None else (None, "no body region: effective dose not defined")
    return {
        "ctdivol_mgy": r.ctdi_vol_mgy,
        "ctdiw_mgy": r.ctdi_w_mgy,
        "phantom_mm": phantom,
        "pitch": r.pitch,
        "mas": r.mas,
        "kvp": r.kvp,
        "scan_length_mm": float(length),
        "dlp_mgy_cm": dlp,
        "body": None if body is None else str(getattr(body, "name", body)),
        "region": reg,
        "k_factor": k,
        "effective_msv": None if k is None else k * dlp,
        "rel_uncertainty": r.rel_uncertainty,
        "ctdi_source": CTDI_SOURCE,
        "k_source": k_src,
    }


def mas_for_effective_dose(scanner, effective_msv: float, body=None, scan_length_mm: float | None = None,
                           region: str | None = None) -> float:
    """The mAs at which a scan of ``scanner`` (body, scan length as in :func:`scan_dose`) gives the effective
    dose ``effective_msv`` (mSv): dose is proportional to mAs, so mAs = mAs₀ · E / E(mAs₀)."""
    if not (isinstance(effective_msv, int | float) and math.isfinite(effective_msv) and effective_msv > 0):
        raise ParameterError("effective_msv", f"must be a positive number, got {effective_msv!r}")
    d = scan_dose(scanner, body=body, scan_length_mm=scan_length_mm, region=region)
    if d["effective_msv"] is None:
        raise ParameterError("body", "no body region: effective dose is not defined (give a body or a region)")
    return d["mas"] * effective_msv / d["effective_msv"]
