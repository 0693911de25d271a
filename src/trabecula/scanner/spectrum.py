"""X-ray spectra and detector response: what reaches and is absorbed in one detector pixel per view.

Method: the tube spectrum (photons / keV / cm² / mAs at 1 m) comes from SpekPy (Poludniowski et al.,
Med. Phys. 48 (2021) 3630; Bujila et al., Phys. Med. 77 (2020) 137) for the preset's kVp, anode angle and
filtration; it works offline (its data ship with the package). The spectrum is grouped into
``energy_bins`` equal-width bins between the lowest energy carrying 10⁻⁴ of the fluence and the kVp; each
bin keeps its photon count and its fluence-weighted mean energy.

The detector is energy-integrating: a photon of energy E is absorbed in the scintillator with probability
η(E) = 1 − exp(−μ_scint(E)·t) and then contributes a signal proportional to E (Swank noise is the
resulting spread). Per bin the *signal weight* is N·η·E and the *variance weight* N·η·E², so a pixel
receiving N_b photons in bin b has mean signal S = Σ N_b η_b E_b and variance V = Σ N_b η_b E_b². Signals
are expressed in *equivalent quanta* (divided by the mean absorbed energy of the unattenuated beam).

Fluence at the detector scales with 1/SDD² from SpekPy's 1 m reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from trabecula.errors import ParameterError
from trabecula.scanner.config import load_scanner
from trabecula.scanner.materials import effective_energy, mu


@dataclass(frozen=True)
class BinnedSpectrum:
    """A binned spectrum at the detector, per pixel and per view, and the detector's response.

    ``energies_kev`` (n,), ``photons`` (n,) incident photons per detector pixel per view (no object),
    ``eta`` (n,) absorption efficiency of the scintillator, ``e_ref`` (keV) the mean absorbed energy of the
    unattenuated beam (the unit of *equivalent quanta*).
    """

    energies_kev: np.ndarray
    photons: np.ndarray
    eta: np.ndarray
    e_ref: float

    @property
    def signal_weights(self) -> np.ndarray:
        """Per-bin mean signal of the unattenuated beam, in equivalent quanta (Σ = flat-field signal)."""
        return self.photons * self.eta * self.energies_kev / self.e_ref

    @property
    def variance_weights(self) -> np.ndarray:
        """Per-bin signal variance of the unattenuated beam, in equivalent quanta²."""
        return self.photons * self.eta * (self.energies_kev / self.e_ref) ** 2

    @property
    def flat_signal(self) -> float:
        return float(self.signal_weights.sum())

    @property
    def detected_weights(self) -> np.ndarray:
        """Normalised weights w_b ∝ N η E of each bin in the detected signal (sum 1)."""
        w = self.signal_weights
        return w / w.sum()

    def scaled(self, factor: float) -> BinnedSpectrum:
        return BinnedSpectrum(self.energies_kev, self.photons * factor, self.eta, self.e_ref)


@lru_cache(maxsize=64)
def _spekpy_spectrum(kvp: float, anode_angle_deg: float, filtration: tuple[tuple[str, float], ...]) -> tuple[np.ndarray, np.ndarray]:
    import spekpy

    s = spekpy.Spek(kvp=float(kvp), th=float(anode_angle_deg), dk=0.5, z=100.0, mas=1.0)
    for el, mm in filtration:
        if mm > 0:
            s.filter(el, float(mm))
    k, f = s.get_spectrum(edges=False, flu=True, diff=False)  # photons / cm² / mAs per 0.5 keV bin at 1 m
    return np.asarray(k, float), np.asarray(f, float)


def tube_spectrum(kvp: float, anode_angle_deg: float = 12.0, filtration_mm: dict[str, float] | None = None):
    """SpekPy spectrum: (energies keV, photons per mm² per mAs at 1 m in each 0.5 keV bin)."""
    filt = tuple(sorted((str(k), float(v)) for k, v in (filtration_mm or {}).items()))
    try:
        k, f = _spekpy_spectrum(float(kvp), float(anode_angle_deg), filt)
    except Exception as exc:  # spekpy raises plain Exceptions for bad inputs
        raise ParameterError("source", f"spectrum model failed for {kvp} kVp, filtration {dict(filt)}: {exc}") from exc
    return k.copy(), f.copy() / 100.0  # per cm² → per mm²


def bin_spectrum(energies: np.ndarray, photons: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Group a fine spectrum into ``n_bins`` equal-width bins; returns (mean energies, photons per bin)."""
    keep = photons > photons.sum() * 1e-4 / len(photons)
    e = energies[keep]
    p = photons[keep]
    if len(e) == 0:
        raise ParameterError("source", "the filtered spectrum is empty (filtration too thick?)")
    edges = np.linspace(e.min() - 1e-9, e.max() + 1e-9, n_bins + 1)
    idx = np.clip(np.digitize(e, edges) - 1, 0, n_bins - 1)
    counts = np.bincount(idx, weights=p, minlength=n_bins)
    esum = np.bincount(idx, weights=p * e, minlength=n_bins)
    ok = counts > 0
    return esum[ok] / counts[ok], counts[ok]


def detector_spectrum(scanner, mas_per_view: float | None = None) -> BinnedSpectrum:
    """Photons per detector pixel per view, binned, with the scintillator's absorption efficiency.

    ``mas_per_view`` defaults to the preset's ``exposure.mas / geometry.views``.
    """
    src, g, det = scanner.source, scanner.geometry, scanner.detector
    k, f = tube_spectrum(src.kvp, src.anode_angle_deg, src.filtration_mm)
    e, n = bin_spectrum(k, f, scanner.simulation.energy_bins)
    mpv = scanner.mas_per_view if mas_per_view is None else float(mas_per_view)
    if not mpv > 0:
        raise ParameterError("mas", f"must be positive, got {mpv}")
    area = g.pixel_u_mm * g.pixel_v_mm
    n = n * area * mpv * (1000.0 / g.sdd_mm) ** 2
    eta = 1.0 - np.exp(-mu(det.scintillator, e) * det.scintillator_mm)
    e_ref = float(np.sum(n * eta * e) / np.sum(n * eta))
    return BinnedSpectrum(e, n, eta, e_ref)


def effective_energy_kev(spec: BinnedSpectrum) -> float:
    """The energy at which water's μ equals the spectrum-weighted (thin-layer) μ of water."""
    return effective_energy("water", water_reference_mu(spec))


def water_reference_mu(spec: BinnedSpectrum) -> float:
    """Spectrum-weighted μ of water (1/mm): the slope of the polychromatic water projection at zero
    thickness, used as the monochromatic reference of the water beam-hardening correction and for HU."""
    w = spec.detected_weights
    return float(np.sum(w * mu("water", spec.energies_kev)))


def effective_mu(material: str, spec: BinnedSpectrum) -> float:
    """Spectrum-weighted μ (1/mm) of a material for this beam (thin-layer effective attenuation)."""
    w = spec.detected_weights
    return float(np.sum(w * mu(material, spec.energies_kev)))


def to_hu(mu: np.ndarray, mu_water: float, mu_air: float = 0.0) -> np.ndarray:
    """Hounsfield units: 1000 (μ − μ_w)/(μ_w − μ_air)."""
    return (1000.0 * (mu - mu_water) / (mu_water - mu_air)).astype(np.float32)


def material_hu(scanner, material: str) -> float:
    """The HU value a thin, uniform layer of ``material`` reconstructs to with this scanner:
    ``1000 (μ_m − μ_w) / (μ_w − μ_air)`` with the spectrum-weighted (thin-layer) attenuations of the detected
    beam — what a small calibration insert gives, and the scale of the reconstruction's HU conversion. Inside
    a specimen the beam is hardened by the specimen itself and dense materials read lower (bone at 80 kVp by
    a third to a half; :mod:`trabecula.scanner.fast` models it). ``scanner`` is a
    :class:`~trabecula.scanner.config.Scanner` or a preset name."""
    sc = load_scanner(scanner) if isinstance(scanner, str) else scanner
    spec = detector_spectrum(sc)
    return float(to_hu(np.float64(effective_mu(material, spec)), water_reference_mu(spec), effective_mu("air", spec)))


def water_linearization(spec: BinnedSpectrum, max_mm: float = 400.0, n: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Table for the water beam-hardening correction: polychromatic p(L) and the linear μ_ref·L.

    p(L) = −ln Σ_b w_b exp(−μ_w(E_b) L) for water thickness L on [0, max_mm]; a measured line integral is
    corrected by interpolating L(p) and replacing p by μ_ref·L (Herman, Phys. Med. Biol. 24 (1979) 81).
    """
    w = spec.detected_weights
    mw = mu("water", spec.energies_kev)
    L = np.linspace(0.0, max_mm, n)
    p = -np.log(np.exp(-np.outer(L, mw)) @ w)
    return p, water_reference_mu(spec) * L
