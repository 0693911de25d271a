"""Randomised clinical protocols: drawn reproducibly within their ranges, turned into scanners, and the fast
path validated against the full projection simulation at the corners of the ranges (every randomised
parameter: detector, pixel, slice thickness, kernel, mAs, kVp, body)."""

import numpy as np
import pytest

from trabecula.errors import ParameterError
from trabecula.phantom.objects import cylinder_labels, slanted_edge
from trabecula.pipeline.scan_checks import central_nps, edge_mtf
from trabecula.scanner.config import load_scanner
from trabecula.scanner.protocols import Protocol, ProtocolRanges, preset_protocol, random_protocol
from trabecula.scanner.simulate import scan


def test_random_protocols_are_reproducible_and_cover_their_ranges():
    r = ProtocolRanges()
    a = [random_protocol(np.random.default_rng((7, k)), r) for k in range(300)]
    b = [random_protocol(np.random.default_rng((7, k)), r) for k in range(300)]
    assert a == b
    px = np.array([p.pixel_mm for p in a])
    th = np.array([p.slice_thickness_mm for p in a])
    mas = np.array([p.mas for p in a])
    kvp = np.array([p.kvp for p in a])
    assert 0.15 <= px.min() < 0.2 and 0.45 < px.max() <= 0.5
    assert 0.5 <= th.min() < 0.7 and 1.8 < th.max() <= 2.0
    assert 5 <= mas.min() < 8 and 200 < mas.max() <= 300
    assert np.median(mas) == pytest.approx(np.sqrt(5 * 300), rel=0.3)  # log-uniform
    assert 100 <= kvp.min() < 103 and 137 < kvp.max() <= 140
    for name, choices in (("detector", r.detectors), ("kernel", r.kernels), ("body", r.bodies), ("medium", r.media)):
        assert {getattr(p, name) for p in a} == set(choices)
    for p in a:  # never thinner than the detector row at the isocentre
        assert p.slice_thickness_mm >= load_scanner(p.detector).geometry.pixel_v_iso_mm - 0.005


def test_a_protocol_becomes_a_scanner_and_its_finer_detector():
    p = Protocol("clinical-mdct", 0.4, 1.5, "hann", 20.0, 100.0, "lumbar", "pbs")
    s = p.scanner()
    assert s.reconstruction.voxel_mm == 0.4 and s.reconstruction.slice_thickness_mm == 1.5
    assert s.reconstruction.slice_mm == 0.75 and s.reconstruction.kernel == "hann"
    assert s.exposure.mas == 20.0 and s.source.kvp == 100.0
    assert (s.patient.body, s.patient.medium) == ("lumbar", "pbs")
    f = p.finer()
    assert f.geometry.pixel_u_iso_mm == pytest.approx(s.geometry.pixel_u_iso_mm / 2)
    assert f.reconstruction.voxel_mm == pytest.approx(0.2) and f.reconstruction.slice_thickness_mm == pytest.approx(0.75)
    assert Protocol.from_dict(p.to_dict()) == p
    q = preset_protocol("study-mdct", mas=100, body="wrist")
    assert (q.pixel_mm, q.slice_thickness_mm, q.kernel, q.mas, q.body) == (0.1953125, 0.6, "bone", 100.0, "wrist")
    assert q.slice_interval_mm == 0.1


def test_bad_ranges_are_refused_with_the_parameter_named():
    with pytest.raises(ParameterError, match="pixel_mm"):
        ProtocolRanges(pixel_mm=(0.5, 0.1))
    with pytest.raises(ParameterError, match="kernels"):
        ProtocolRanges(kernels=("b70",))
    with pytest.raises(ParameterError, match="bodies"):
        ProtocolRanges(bodies=("thorax",))
    with pytest.raises(ParameterError, match="unknown keys"):
        ProtocolRanges.from_dict({"pixels": [0.1, 0.2]})
    assert ProtocolRanges.from_dict(ProtocolRanges().to_dict()) == ProtocolRanges()


# the corners of the ranges: every randomised parameter at (or near) its low and its high end;
# name: (protocol, noise tolerance)
CORNERS = {
    "mdct-100kVp-hann-0.5px-2mm-wrist-300mAs": (Protocol("clinical-mdct", 0.5, 2.0, "hann", 300.0, 100.0, "wrist", "marrow"), 0.10),
    "uhr-120kVp-standard-0.3px-1mm-ankle-5mAs": (Protocol("clinical-uhr", 0.3, 1.0, "standard", 5.0, 120.0, "ankle", "marrow"), 0.10),
    "study-110kVp-bone-0.25px-1.5mm-lumbar-300mAs": (Protocol("study-mdct", 0.25, 1.5, "bone", 300.0, 110.0, "lumbar", "marrow"), 0.10),
    # photon-starved: the lateral rays through the lumbar body reach the 0.25 mm elements with a few quanta,
    # where −ln N is no longer linear in the noise; the fast path's linearised variance reads 17 % low here
    "study-140kVp-shepplogan-0.15px-lumbar-50mAs": (Protocol("study-mdct", 0.15, 0.6, "shepp-logan", 50.0, 140.0, "lumbar", "pbs"), 0.20),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CORNERS))
def test_fast_path_matches_full_simulation_at_the_corners_of_the_protocol_ranges(name):
    p, noise_tol = CORNERS[name]
    s = p.scanner().replace(geometry={"views": 576})  # fewer views for test time; both paths model the same scanner
    patient = {"body": p.body, "medium": "water"}
    ez, ew = max(3.0, 3 * p.slice_thickness_mm), max(10.0, 40 * p.pixel_mm)
    ev = 0.05 if p.pixel_mm < 0.3 else 0.1
    edge = slanted_edge(5.0, voxel_mm=ev, size_mm=(ez, ew, ew), material="bone", background="water")
    full_e = scan(edge, s, noise=False, progress=False, **patient)
    fast_e = scan(edge, s, noise=False, mode="fast", **patient)
    assert fast_e.shape == full_e.shape
    m_full, m_fast = edge_mtf(full_e, ew), edge_mtf(fast_e, ew)
    assert m_fast.mtf50 == pytest.approx(m_full.mtf50, rel=0.10)
    if np.isfinite(m_full.mtf10) and np.isfinite(m_fast.mtf10):
        assert m_fast.mtf10 == pytest.approx(m_full.mtf10, rel=0.10)

    height = max(2.0, 4 * p.slice_thickness_mm)
    half = 20  # a 40-pixel square: room for the NPS's 32-pixel ROIs
    diam = max(16.0, 1.5 * 2 * half * p.pixel_mm + 2.0)
    cyl = cylinder_labels(diameter_mm=diam, height_mm=height, voxel_mm=0.1, box_mm=diam + 0.6)
    full_n = scan(cyl, s, seed=11, progress=False, **patient)
    fast_n = scan(cyl, s, seed=12, mode="fast", **patient)
    n_full, n_fast = central_nps(full_n, half), central_nps(fast_n, half)
    assert n_fast.noise_sd == pytest.approx(n_full.noise_sd, rel=noise_tol)
    assert n_fast.mean_frequency == pytest.approx(n_full.mean_frequency, rel=0.10)
    # the water of the cylinder reads the same in both (central half of the slices), within the noise of the means
    nz, c = full_n.shape[0], full_n.shape[1] // 2
    means = [float(v.numpy()[nz // 4: nz - nz // 4, c - half:c + half, c - half:c + half].mean()) for v in (full_n, fast_n)]
    n_px = (nz - 2 * (nz // 4)) * (2 * half) ** 2
    assert abs(means[0] - means[1]) < 5 + 4 * n_full.noise_sd / np.sqrt(n_px / 25)
