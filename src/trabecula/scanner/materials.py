"""Materials and their X-ray attenuation: μ(E) in 1/mm from elemental compositions and densities.

Method: the mass attenuation coefficient of a mixture is the mass-fraction-weighted sum of its elements'
total cross sections (coherent + incoherent + photoelectric + pair), μ/ρ = Σ wᵢ (μ/ρ)ᵢ, with (μ/ρ)ᵢ from
xraylib's ``CS_Total_CP`` (cm²/g; Schoonjans et al., Spectrochim. Acta B 66 (2011) 776, data after
Hubbell/Seltzer and Scofield). μ = (μ/ρ)·ρ, converted from 1/cm to **1/mm**.

Compositions (mass fractions) and densities (g/cm³):

* ``water``, ``air``, ``pmma``, ``aluminium``, ``tungsten``, ``CsI``, ``GOS`` (Gd₂O₂S): NIST material
  composition data (Hubbell & Seltzer, NIST Standard Reference Database 126, "X-Ray Mass Attenuation
  Coefficients", Table 2) and stoichiometry; densities from the same table (CsI 4.51, GOS 7.44).
* ``soft_tissue`` (ICRU-44 soft tissue, four-component free), ``adipose``, ``red_marrow``,
  ``yellow_marrow``, ``bone`` (cortical bone): ICRU Report 46 (1992) / ICRU Report 44 (1989) body tissue
  compositions (as tabulated by White, Woodard & Hammond, Br. J. Radiol. 60 (1987) 907). ``bone`` is bone
  *tissue* (the mineralised matrix of a trabecula or the cortex), density 1.92 g/cm³.
* ``marrow``: 50 % red + 50 % yellow marrow by mass (ICRU-46 adult mixed marrow), density from volume
  additivity, 1 / (0.5/1.03 + 0.5/0.98) = 1.004 g/cm³.
* ``pbs``: phosphate-buffered saline, 1× (the medium specimens are kept in): per litre 8.0 g NaCl, 0.2 g
  KCl, 1.44 g Na₂HPO₄ and 0.24 g KH₂PO₄ in water (137 mM NaCl, 2.7 mM KCl, 10 mM phosphate; Cold Spring
  Harbor Protocols, "Phosphate-buffered saline (PBS)", 2006, doi:10.1101/pdb.rec8247), density 1.005 g/cm³
  (the solution's mass is 1005 g per litre, our assumption from the ~1 % solute mass); mass fractions from
  the recipe with IUPAC standard atomic weights (:data:`PBS_RECIPE_G_PER_L`).

* ``ha0``, ``ha100``, ``ha200``, ``ha400``, ``ha800``: calibration inserts of 0–800 mg hydroxyapatite per
  cm³ in a water-equivalent resin (QRM/Scanco HA phantoms), by mass mixing (:func:`ha_composition`).

Air is listed for completeness; the simulator treats air in a phantom as vacuum (μ_air ≈ 0.1 % of water's),
exactly as the flat-field reference does, so air reconstructs to −1000 HU.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from trabecula.errors import ParameterError
from trabecula.phantom._base import HA_CONCENTRATIONS

# mass fractions (element symbol → fraction) and density g/cm³ -------------------------------------------
COMPOSITIONS: dict[str, tuple[dict[str, float], float]] = {
    # NIST SRD 126 Table 2 ("Water, Liquid"; "Air, Dry (near sea level)")
    "water": ({"H": 0.111894, "O": 0.888106}, 1.000),
    "air": ({"C": 0.000124, "N": 0.755268, "O": 0.231781, "Ar": 0.012827}, 0.001205),
    # ICRU-44/46 soft tissue (adult)
    "soft_tissue": ({"H": 0.102, "C": 0.143, "N": 0.034, "O": 0.708, "Na": 0.002, "P": 0.003, "S": 0.003,
                     "Cl": 0.002, "K": 0.003}, 1.06),
    # ICRU-44/46 adipose tissue (adult, mean)
    "adipose": ({"H": 0.114, "C": 0.598, "N": 0.007, "O": 0.278, "Na": 0.001, "S": 0.001, "Cl": 0.001}, 0.95),
    # ICRU-46 red marrow (haematopoietic)
    "red_marrow": ({"H": 0.105, "C": 0.414, "N": 0.034, "O": 0.439, "P": 0.001, "S": 0.002, "Cl": 0.002,
                    "K": 0.002, "Fe": 0.001}, 1.03),
    # ICRU-46 yellow marrow (fatty)
    "yellow_marrow": ({"H": 0.115, "C": 0.644, "N": 0.007, "O": 0.231, "Na": 0.001, "S": 0.001, "Cl": 0.001}, 0.98),
    # ICRU-44/46 cortical bone
    "bone": ({"H": 0.034, "C": 0.155, "N": 0.042, "O": 0.435, "Na": 0.001, "Mg": 0.002, "P": 0.103, "S": 0.003,
              "Ca": 0.225}, 1.92),
    # PMMA C5H8O2 (NIST "Polymethyl Methacralate (Lucite, Perspex)")
    "pmma": ({"H": 0.080538, "C": 0.599848, "O": 0.319614}, 1.19),
    "aluminium": ({"Al": 1.0}, 2.699),
    "tungsten": ({"W": 1.0}, 19.30),
    # detector scintillators (stoichiometry; NIST densities)
    "CsI": ({"Cs": 0.511549, "I": 0.488451}, 4.51),
    "GOS": ({"Gd": 0.830505, "O": 0.084527, "S": 0.084968}, 7.44),
}
# ICRU-46 mixed adult marrow: 50/50 by mass of red and yellow marrow
_red, _rho_r = COMPOSITIONS["red_marrow"]
_yel, _rho_y = COMPOSITIONS["yellow_marrow"]
COMPOSITIONS["marrow"] = (
    {el: 0.5 * _red.get(el, 0.0) + 0.5 * _yel.get(el, 0.0) for el in sorted(set(_red) | set(_yel))},
    1.0 / (0.5 / _rho_r + 0.5 / _rho_y),
)

#: 1× PBS per litre of solution (g): Cold Spring Harbor Protocols (2006) doi:10.1101/pdb.rec8247.
PBS_RECIPE_G_PER_L: dict[str, float] = {"NaCl": 8.0, "KCl": 0.2, "Na2HPO4": 1.44, "KH2PO4": 0.24}
PBS_DENSITY = 1.005  # g/cm³ (g per mL of solution)
_ATOMIC_WEIGHT = {"H": 1.008, "O": 15.999, "Na": 22.990, "Cl": 35.45, "K": 39.098, "P": 30.974}  # IUPAC 2021
_FORMULAS = {"NaCl": {"Na": 1, "Cl": 1}, "KCl": {"K": 1, "Cl": 1}, "Na2HPO4": {"Na": 2, "H": 1, "P": 1, "O": 4},
             "KH2PO4": {"K": 1, "H": 2, "P": 1, "O": 4}}


def _pbs_composition() -> dict[str, float]:
    total = PBS_DENSITY * 1000.0  # g per litre of solution
    mass = {el: 0.0 for el in _ATOMIC_WEIGHT}
    for salt, grams in PBS_RECIPE_G_PER_L.items():
        formula = _FORMULAS[salt]
        molar = sum(n * _ATOMIC_WEIGHT[el] for el, n in formula.items())
        for el, n in formula.items():
            mass[el] += grams * n * _ATOMIC_WEIGHT[el] / molar
    water = total - sum(PBS_RECIPE_G_PER_L.values())
    w_comp = COMPOSITIONS["water"][0]
    for el, w in w_comp.items():
        mass[el] += water * w
    return {el: m / total for el, m in mass.items() if m > 0}


COMPOSITIONS["pbs"] = (_pbs_composition(), PBS_DENSITY)

#: Hydroxyapatite Ca₁₀(PO₄)₆(OH)₂: crystal density (g/cm³; the value QRM and Scanco use for their HA inserts)
HA_DENSITY = 3.16
_HA_FORMULA = {"Ca": 10, "P": 6, "O": 26, "H": 2}
_HA_WEIGHT = {"Ca": 40.078, "P": 30.974, "O": 15.999, "H": 1.008}  # IUPAC 2021


def ha_composition(concentration_mg_cm3: float, resin: str = "water") -> tuple[dict[str, float], float]:
    """Mass fractions and density (g/cm³) of a calibration insert holding ``concentration_mg_cm3`` mg of
    hydroxyapatite per cm³ of insert, dispersed in a water-equivalent resin.

    Mass mixing with volume additivity: a cm³ of insert holds c/1000 g of HA, occupying c / (1000·ρ_HA) cm³
    (ρ_HA = :data:`HA_DENSITY`, fully dense crystal), and resin fills the rest at the resin's density, so
    ρ = c/1000 + (1 − c/(1000 ρ_HA))·ρ_resin and the HA mass fraction is (c/1000)/ρ; element fractions are
    the mass-weighted sums of HA's stoichiometric ones (IUPAC atomic weights) and the resin's. Assumption:
    the resin is modelled by ``resin`` (default liquid water, NIST composition, 1.000 g/cm³) — commercial
    phantoms (QRM-BDC, Scanco's HA phantoms) use a resin made water-equivalent in attenuation, so ``ha0``
    reads 0 HU; no porosity, no binder other than the resin. μ is then linear in c (a volume mix), the basis
    of a linear HU → mg HA/cm³ calibration.
    """
    c = float(concentration_mg_cm3)
    if not (np.isfinite(c) and 0.0 <= c < 1000.0 * HA_DENSITY):
        raise ParameterError("concentration_mg_cm3", f"must be in [0, {1000 * HA_DENSITY:g}) mg/cm³, got {concentration_mg_cm3!r}")
    r_comp, r_rho = COMPOSITIONS[resin if resin in COMPOSITIONS else canonical(resin)]
    rho = c / 1000.0 + (1.0 - c / (1000.0 * HA_DENSITY)) * r_rho
    f_ha = c / 1000.0 / rho
    molar = sum(n * _HA_WEIGHT[el] for el, n in _HA_FORMULA.items())
    ha = {el: n * _HA_WEIGHT[el] / molar for el, n in _HA_FORMULA.items()}
    comp = {el: f_ha * ha.get(el, 0.0) + (1.0 - f_ha) * r_comp.get(el, 0.0) for el in sorted(set(ha) | set(r_comp))}
    return {el: w for el, w in comp.items() if w > 0}, rho


for _c in HA_CONCENTRATIONS:
    COMPOSITIONS[f"ha{_c}"] = ha_composition(_c)

#: The material names phantoms may use (label → name in ``provenance.extra["materials"]``).
PHANTOM_MATERIALS: tuple[str, ...] = ("air", "water", "soft_tissue", "adipose", "red_marrow", "yellow_marrow",
                                      "marrow", "bone", "pmma", "aluminium", "tungsten", "pbs",
                                      *(f"ha{c}" for c in HA_CONCENTRATIONS))
_ALIASES = {"saline": "pbs", "aluminum": "aluminium", "soft tissue": "soft_tissue", "cortical_bone": "bone", "vacuum": "air"}


def canonical(name: str) -> str:
    """The canonical material name (case-insensitive, a few aliases); ParameterError if unknown."""
    key = str(name).strip()
    low = key.lower().replace("-", "_")
    low = _ALIASES.get(low, low)
    for cand in COMPOSITIONS:
        if cand.lower() == low:
            return cand
    raise ParameterError("material", f"unknown material {name!r}; known: {', '.join(PHANTOM_MATERIALS)}")


def element_z(symbol: str, name: str = "element") -> int:
    """Atomic number of an element symbol (``"Al"`` → 13)."""
    import xraylib

    try:
        z = int(xraylib.SymbolToAtomicNumber(str(symbol)))
    except Exception as exc:  # xraylib raises ValueError for unknown symbols
        raise ParameterError(name, f"unknown element symbol {symbol!r}") from exc
    if z <= 0:
        raise ParameterError(name, f"unknown element symbol {symbol!r}")
    return z


def density(material: str) -> float:
    """Density in g/cm³."""
    return COMPOSITIONS[canonical(material)][1]


@lru_cache(maxsize=4096)
def _mass_atten_element(symbol: str, energy_kev: float) -> float:
    import xraylib

    return float(xraylib.CS_Total_CP(symbol, float(energy_kev)))


def mass_attenuation(material: str, energy_kev) -> np.ndarray:
    """Total mass attenuation coefficient μ/ρ (cm²/g) at the given photon energies (keV, 1–1000)."""
    comp, _ = COMPOSITIONS[canonical(material)]
    e = np.atleast_1d(np.asarray(energy_kev, dtype=float))
    if np.any(e < 1.0) or np.any(e > 1000.0):
        raise ParameterError("energy_kev", "photon energies must lie within 1–1000 keV")
    out = np.zeros_like(e)
    for el, w in comp.items():
        out += w * np.array([_mass_atten_element(el, round(float(x), 6)) for x in e])
    return out


def mu(material: str, energy_kev) -> np.ndarray:
    """Linear attenuation coefficient μ(E) in **1/mm** (μ/ρ · ρ / 10).

    Examples
    --------
    >>> float(mu("water", 60.0)[0])  # doctest: +ELLIPSIS
    0.0205...
    """
    comp_density = density(material)
    return mass_attenuation(material, energy_kev) * comp_density / 10.0


def mu_table(materials, energy_kev) -> np.ndarray:
    """μ (1/mm) as an array (n_materials, n_energies)."""
    return np.stack([mu(m, energy_kev) for m in materials])


def effective_mu(material: str, energies_kev, weights) -> float:
    """Spectrum-weighted μ (1/mm): Σ wᵢ μ(Eᵢ) / Σ wᵢ — the thin-layer effective attenuation."""
    w = np.asarray(weights, float)
    return float(np.sum(w * mu(material, energies_kev)) / np.sum(w))


def effective_energy(material: str, mu_value: float, lo: float = 10.0, hi: float = 200.0) -> float:
    """The monoenergetic energy (keV) at which ``material`` has attenuation ``mu_value`` (1/mm)."""
    from scipy.optimize import brentq

    f = lambda e: float(mu(material, e)[0]) - mu_value  # noqa: E731
    if f(lo) < 0 or f(hi) > 0:
        raise ParameterError("mu_value", f"{mu_value} 1/mm is outside {material}'s range over {lo}–{hi} keV")
    return float(brentq(f, lo, hi, xtol=1e-4))
