"""Scanner presets as TOML data: the stated facts, round trips, and validation errors that name the field."""

import pytest

from trabecula.errors import InputError, ParameterError
from trabecula.scanner import PRESETS, Scanner, load_scanner
from trabecula.scanner.config import preset_text


def test_every_preset_loads_and_states_its_assumptions():
    for name in PRESETS:
        s = load_scanner(name)
        assert s.name == name
        text = preset_text(name)
        # every key line carries a comment next to its value (except name/description)
        keyed = [ln for ln in text.splitlines() if "=" in ln and not ln.startswith(("#", "name", "description"))]
        assert all("#" in ln for ln in keyed), [ln for ln in keyed if "#" not in ln]


def test_uhr_extremity_geometry_gives_the_stated_voxel():
    s = load_scanner("uhr-extremity")
    g, r = s.geometry, s.reconstruction
    assert g.pixel_u_mm == 0.099 and g.magnification == pytest.approx(1.24, abs=0.01)
    assert g.pixel_u_iso_mm == pytest.approx(r.voxel_mm, rel=0.01)  # 0.099 / 1.2375 = 0.0800 mm
    assert r.voxel_mm == 0.08 and r.fov_mm == 122 and r.axial_fov_mm == 51
    assert 60 <= s.source.kvp <= 70 and s.exposure.scan_time_s == 6.5 and s.exposure.dose_msv == 0.024
    assert abs(g.center_offset_mm) < 0.1


def test_clinical_presets_match_the_vertebra_study_and_the_uhr_comparison():
    m = load_scanner("clinical-mdct")
    assert (m.source.kvp, m.exposure.mas) == (120, 250)
    assert (m.reconstruction.slice_thickness_mm, m.reconstruction.slice_mm) == (0.6, 0.1)
    assert m.reconstruction.matrix * m.reconstruction.voxel_mm == pytest.approx(100.0)
    assert m.reconstruction.kernel == "standard"
    u = load_scanner("clinical-uhr")
    assert u.geometry.pixel_u_iso_mm == pytest.approx(0.25, rel=0.01)
    mc = load_scanner("micro-ct")
    assert mc.source.kvp == 80 and mc.reconstruction.voxel_mm == 0.052 and mc.geometry.views == 360


def test_study_mdct_is_the_study_protocol_with_a_sharp_effective_element():
    s = load_scanner("study-mdct")
    g, r = s.geometry, s.reconstruction
    assert (s.source.kvp, s.exposure.mas, g.pitch) == (120, 250, 0.8)
    assert (r.slice_thickness_mm, r.slice_mm, r.matrix, r.fov_mm) == (0.6, 0.1, 512, 100.0)
    assert r.voxel_mm == pytest.approx(0.195, abs=1e-3) and r.kernel == "bone"
    assert g.pixel_v_iso_mm == pytest.approx(0.6, rel=0.01)  # the stated 0.6 mm rows set the slice profile
    assert 0.25 <= g.pixel_u_iso_mm <= 0.30  # the effective in-plane element the study's ratios need
    # routine body protocol unchanged beside it
    assert load_scanner("clinical-mdct").reconstruction.kernel == "standard"


def test_study_mdct_slice_profile_is_the_stated_0_6_mm():
    """FWHM of the modelled slice sensitivity profile (inverse transform of the z transfer function: row
    aperture, z flying focal spot at 0.3 mm, focal spot, detector blur, linear interpolation): 0.6–0.7 mm."""
    import numpy as np

    from trabecula.scanner.fast import mtf_model

    f = np.linspace(0, 20, 8001)
    h = mtf_model("study-mdct", f, "z")
    x = np.linspace(-1.2, 1.2, 1201)
    ssp = (h[None, :] * np.cos(2 * np.pi * f[None, :] * x[:, None])).sum(axis=1)
    above = x[ssp >= 0.5 * ssp.max()]
    assert 0.6 <= above.max() - above.min() <= 0.7


def test_to_toml_round_trip_and_user_copy(tmp_path):
    s = load_scanner("clinical-mdct").replace(exposure={"mas": 50.0}, name="low-dose")
    p = tmp_path / "my.toml"
    p.write_text(s.to_toml())
    back = load_scanner(p)
    assert back == s and back.exposure.mas == 50.0 and back.name == "low-dose"


@pytest.mark.parametrize("changes, field", [
    ({"exposure": {"mas": -5.0}}, "exposure.mas"),
    ({"reconstruction": {"voxel_mm": 200.0}}, "reconstruction.voxel_mm"),
    ({"reconstruction": {"kernel": "lanczos"}}, "reconstruction.kernel"),
    ({"geometry": {"sdd_mm": 100.0}}, "geometry.sdd_mm"),
    ({"source": {"filtration_mm": {"Xx": 1.0}}}, "source.filtration_mm"),
    ({"geometry": {"views": 0}}, "geometry.views"),
])
def test_unphysical_settings_name_the_field(changes, field):
    with pytest.raises(ParameterError) as exc:
        load_scanner("uhr-extremity").replace(**changes)
    assert exc.value.name == field


def test_bad_files_and_names(tmp_path):
    with pytest.raises(ParameterError):
        load_scanner("no-such-preset")
    with pytest.raises(InputError):
        load_scanner(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[exposure]\nmas = "lots"\n')
    with pytest.raises(ParameterError) as exc:
        load_scanner(bad)
    assert exc.value.name == "exposure.mas"
    typo = tmp_path / "typo.toml"
    typo.write_text('name = "x"\n[geometry]\nsid = 500.0\n')
    with pytest.raises(ParameterError) as exc:
        load_scanner(typo)
    assert exc.value.name == "geometry.sid"
    assert isinstance(Scanner.from_dict({"name": "defaults"}), Scanner)


def test_study_mdct_resolution_is_pinned_between_the_clinical_presets():
    """The study preset's modelled MTF10 (0.25 mm element, bone kernel): 1.96 lp/mm measured by the model, 1.99
    through the full simulation's edge (trabecula demo); between clinical-mdct (0.81) and clinical-uhr (2.60)."""
    from scipy.optimize import brentq

    from trabecula.scanner.fast import mtf_model

    def mtf10(preset):
        return brentq(lambda f: float(mtf_model(preset, f)) - 0.1, 0.05, 6.0)

    m = mtf10("study-mdct")
    assert 1.8 <= m <= 2.15
    assert mtf10("clinical-mdct") < m < mtf10("clinical-uhr")
