"""Attenuation from xraylib on ICRU-46/NIST compositions, checked against NIST XCOM table values."""

import numpy as np
import pytest

from trabecula.errors import ParameterError
from trabecula.scanner import load_scanner
from trabecula.scanner.materials import COMPOSITIONS, density, mass_attenuation, mu
from trabecula.scanner.spectrum import detector_spectrum, effective_energy_kev, water_linearization


def test_water_and_bone_match_nist_xcom():
    # NIST SRD 126 (Hubbell & Seltzer): water μ/ρ = 0.2059 cm²/g at 60 keV, 0.1707 at 100 keV;
    # ICRU-44 cortical bone 0.4242 at 50 keV (NIST "Bone, Cortical (ICRU-44)"); 1–2 % between data sets.
    assert mass_attenuation("water", [60.0, 100.0]) == pytest.approx([0.2059, 0.1707], rel=0.01)
    assert mass_attenuation("bone", 50.0)[0] == pytest.approx(0.4242, rel=0.02)
    assert mu("water", 60.0)[0] == pytest.approx(0.02059, rel=0.01)  # 1/mm


def test_marrow_is_half_red_half_yellow_by_mass():
    e = np.array([30.0, 60.0])
    mix = 0.5 * mass_attenuation("red_marrow", e) + 0.5 * mass_attenuation("yellow_marrow", e)
    assert mass_attenuation("marrow", e) == pytest.approx(mix, rel=1e-9)
    assert 1.0 / density("marrow") == pytest.approx(0.5 / 1.03 + 0.5 / 0.98)
    for comp, _ in COMPOSITIONS.values():
        assert sum(comp.values()) == pytest.approx(1.0, abs=0.002)


def test_unknown_material_is_a_parameter_error():
    with pytest.raises(ParameterError):
        mu("kryptonite", 60.0)


def test_spectrum_offline_and_scales_with_mas():
    s = load_scanner("clinical-mdct")
    a = detector_spectrum(s)
    b = detector_spectrum(s, mas_per_view=2 * s.mas_per_view)
    assert b.flat_signal == pytest.approx(2 * a.flat_signal, rel=1e-9)
    # a 120 kVp beam with ≈ 7 mm Al has an effective energy for water near 55–70 keV
    assert 50 < effective_energy_kev(a) < 75
    p, lin = water_linearization(a)
    assert np.all(np.diff(p) > 0) and np.all(lin >= p - 1e-9)  # beam hardening: polychromatic p ≤ linear
