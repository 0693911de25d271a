"""The patient body and the medium: analytic chords against closed forms, the scan geometry's chords against
the general ray function, the medium filling only the air of the box, and the body's effect on a scan
(noise up, water still 0 HU, noise ∝ 1/√mAs, fast path against the full simulation)."""

import numpy as np
import pytest

from trabecula.errors import ParameterError
from trabecula.phantom.objects import cylinder_labels
from trabecula.pipeline.scan_checks import central_nps
from trabecula.scanner.body import BODIES, body_path_lengths, parse_body, parse_medium, scan_body_paths
from trabecula.scanner.config import load_scanner
from trabecula.scanner.geometry import detector_window
from trabecula.scanner.materials import density
from trabecula.scanner.sampling import apply_medium, phantom_labels
from trabecula.scanner.simulate import scan, sub_rays


def test_circle_chord_is_two_root_r2_minus_d2():
    r = 50.0
    d = np.linspace(-49.0, 49.0, 37)
    for ang in (0.0, 0.7, 2.1):  # in-plane ray directions
        c, s = np.cos(ang), np.sin(ang)
        src = np.stack([-300 * c - d * s, -300 * s + d * c, np.zeros_like(d)], axis=-1)
        dst = np.stack([300 * c - d * s, 300 * s + d * c, np.zeros_like(d)], axis=-1)
        got = body_path_lengths(src, dst, "100x100")["soft_tissue"]
        assert got == pytest.approx(2 * np.sqrt(r * r - d * d), abs=1e-9)
    # a ray that misses, and one that stops inside the body (segment, not line)
    assert float(body_path_lengths([-300, 60, 0], [300, 60, 0], "100x100")["soft_tissue"]) == 0.0
    assert float(body_path_lengths([-300, 0, 0], [0, 0, 0], "100x100")["soft_tissue"]) == pytest.approx(50.0)


def test_ellipse_axes_fat_ring_and_slope_along_z():
    lum = BODIES["lumbar"]
    lat = body_path_lengths([-400, 0, 0], [400, 0, 0], lum)
    ap = body_path_lengths([0, -400, 0], [0, 400, 0], lum)
    assert lat["adipose"] == pytest.approx(30.0) and lat["soft_tissue"] == pytest.approx(290.0)
    assert ap["adipose"] == pytest.approx(30.0) and ap["soft_tissue"] == pytest.approx(210.0)
    # a ray rising along z crosses the infinite cylinder over a longer path: |D| / |D_xy|
    tilt = body_path_lengths([-400, 0, -40], [400, 0, 40], lum)
    k = np.hypot(800, 80) / 800
    assert tilt["soft_tissue"] == pytest.approx(290.0 * k) and tilt["adipose"] == pytest.approx(30.0 * k)


def test_the_specimen_box_displaces_the_body():
    box = ((-5.0, -10.0, -8.0), (5.0, 10.0, 8.0))  # (z, y, x) mm
    through = body_path_lengths([-100, 0, 0], [100, 0, 0], "wrist", box)["soft_tissue"]
    assert through == pytest.approx(60.0 - 16.0)
    above = body_path_lengths([-100, 0, 6.0], [100, 0, 6.0], "wrist", box)["soft_tissue"]  # passes over the box
    assert above == pytest.approx(60.0)
    big = ((-5.0, -50.0, -50.0), (5.0, 50.0, 50.0))  # a box larger than the wrist leaves no body on that ray
    assert float(body_path_lengths([-100, 0, 0], [100, 0, 0], "wrist", big)["soft_tissue"]) == pytest.approx(0.0)


def test_scan_geometry_chords_equal_the_general_ray_function():
    sc = load_scanner("clinical-mdct")
    geom = detector_window(sc, 10.0, -3.0, 3.0, lateral_radius=161.0)
    geom = type(geom)(**{**geom.__dict__, "angles": geom.angles[::97]})
    us, vs = sub_rays(geom, sc)
    us, vs = us[::37], vs[::5]
    box = ((-3.0, -7.0, -7.0), (3.0, 7.0, 7.0))
    fast = scan_body_paths(geom, us, vs, "lumbar", box)
    src, det0, eu, ev = geom.source_and_detector()
    dst = (det0[:, None, None, :] + us[None, None, :, None] * eu[:, None, None, :]
           + vs[None, :, None, None] * ev[:, None, None, :])
    ref = body_path_lengths(src[:, None, None, :], dst, "lumbar", box)
    for m in ("adipose", "soft_tissue"):
        assert fast[m].shape == (geom.n_views, len(vs), len(us))
        assert np.abs(fast[m] - ref[m]).max() < 1e-3
    assert ref["soft_tissue"].max() > 280.0 and ref["adipose"].max() > 29.0


def test_parse_body_and_medium():
    assert parse_body("NONE") is None and parse_body(None) is None
    assert parse_body("Wrist").size_mm == (60.0, 40.0)
    assert parse_body("ankle").size_mm == (90.0, 70.0)
    assert parse_body("lumbar").effective_diameter_mm == pytest.approx(277.1, abs=0.1)
    assert parse_body("200x150").semi_axes_mm == (100.0, 75.0)
    for bad in ("torso", "0x10", "10x", "900x100"):
        with pytest.raises(ParameterError) as exc:
            parse_body(bad)
        assert exc.value.name == "body"
    assert parse_medium("soft-tissue") == "soft_tissue" and parse_medium("PBS") == "pbs"
    with pytest.raises(ParameterError):
        parse_medium("bone")
    with pytest.raises(ParameterError) as exc:
        load_scanner("clinical-mdct").replace(patient={"medium": "honey"})
    assert exc.value.name == "patient.medium"


def test_pbs_is_saline_slightly_denser_than_water():
    from trabecula.scanner.materials import COMPOSITIONS, mu

    comp, rho = COMPOSITIONS["pbs"]
    assert rho == density("pbs") == pytest.approx(1.005)
    assert sum(comp.values()) == pytest.approx(1.0)
    assert comp["Cl"] == pytest.approx(0.0049, abs=2e-4) and comp["Na"] == pytest.approx(0.0036, abs=2e-4)
    ratio = float(mu("pbs", 60.0)[0] / mu("water", 60.0)[0])
    assert 1.008 < ratio < 1.02  # denser and with Na, Cl, P, K: about 1 % more attenuating than water at 60 keV


def test_medium_fills_only_the_air_of_the_box():
    ph = cylinder_labels(diameter_mm=4.0, height_mm=1.0, voxel_mm=0.1, box_mm=6.0)
    vol, mats = phantom_labels(ph)
    filled, fmats = apply_medium(vol, mats, "pbs")
    a0, a1 = vol.numpy(), filled.numpy()
    air = [k for k, m in mats.items() if m == "air"]
    assert "pbs" in fmats.values() and "air" not in fmats.values()
    assert np.array_equal(a1[~np.isin(a0, air)], a0[~np.isin(a0, air)])
    assert np.all(a1[np.isin(a0, air)] == [k for k, m in fmats.items() if m == "pbs"][0])
    assert np.array_equal(vol.numpy(), a0)  # the phantom itself is unchanged
    same, smats = apply_medium(vol, mats, "air")
    assert same is vol


def _central(vol, half=16):
    """The middle slices' central square (clear of the specimen's top and bottom)."""
    a = vol.numpy()
    nz, c = a.shape[0], a.shape[1] // 2
    return a[nz // 2 - 2: nz // 2 + 3, c - half:c + half, c - half:c + half]


def test_fast_scan_body_raises_noise_and_records_it():
    cyl = cylinder_labels(diameter_mm=12.0, height_mm=4.0, voxel_mm=0.1, box_mm=12.6)
    bare = scan(cyl, "clinical-mdct", mode="fast", seed=1)
    lumbar = scan(cyl, "clinical-mdct", mode="fast", seed=1, body="lumbar", medium="water")
    assert lumbar.provenance.extra["body"] == "lumbar" and lumbar.provenance.extra["medium"] == "water"
    assert bare.provenance.extra["body"] == "NONE"
    assert central_nps(lumbar, 16).noise_sd > 4.0 * central_nps(bare, 16).noise_sd
    assert abs(float(_central(lumbar).mean())) < 10.0  # water still reads 0 HU behind the body (water correction)


def test_fast_noise_follows_inverse_sqrt_mas_in_the_lumbar_body():
    """Four doses over 25–400 mAs: SD·√mAs constant within 10 % (the electronic noise floor stays small)."""
    cyl = cylinder_labels(diameter_mm=12.0, height_mm=4.0, voxel_mm=0.1, box_mm=12.6)
    sds = {}
    for mas in (25.0, 62.5, 160.0, 400.0):
        vol = scan(cyl, "clinical-mdct", mas=mas, mode="fast", seed=5, body="lumbar", medium="water")
        sds[mas] = float(central_nps(vol, 16).noise_sd)
    k = np.array([sd * np.sqrt(m) for m, sd in sds.items()])
    assert k.max() / k.min() < 1.10


@pytest.mark.slow
def test_full_scan_in_lumbar_body_water_zero_hu_noise_up_and_fast_path_agrees():
    """Full cone-beam simulation: the lumbar body multiplies the noise of a water specimen, water reads
    0 HU (water beam-hardening correction), and the fast path's noise is within 10 % of it."""
    cyl = cylinder_labels(diameter_mm=12.0, height_mm=2.0, voxel_mm=0.1, box_mm=12.6)
    full = scan(cyl, "clinical-mdct", seed=7, body="lumbar", medium="water", progress=False)
    fast = scan(cyl, "clinical-mdct", seed=8, body="lumbar", medium="water", mode="fast")
    clean = scan(cyl, "clinical-mdct", seed=7, noise=False, progress=False)
    assert full.provenance.extra["body"] == "lumbar"
    n_full, n_fast = central_nps(full, 16), central_nps(fast, 16)
    assert abs(float(_central(full).mean())) < 10.0
    assert n_full.noise_sd > 20.0  # HU; the bare 12 mm specimen at 250 mAs reads a few HU
    assert n_fast.noise_sd == pytest.approx(n_full.noise_sd, rel=0.10)
    assert abs(float(_central(clean).mean())) < 5.0
