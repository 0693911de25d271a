"""The fast path (image-domain model) against the full cone-beam simulation of the same preset: MTF from a
slanted edge and NPS from a water cylinder must agree within 10 %."""

import time

import numpy as np
import pytest

from trabecula.phantom.objects import cylinder_labels, slanted_edge
from trabecula.pipeline.scan_checks import central_nps, edge_mtf
from trabecula.scanner.fast import mtf_model
from trabecula.scanner.simulate import scan

# preset: (edge voxel, edge size z/y/x mm, cylinder voxel, diameter, height, central ROI half-width px)
CASES = {
    "clinical-mdct": (0.05, (3.0, 10.0, 10.0), 0.1, 16.0, 4.0, 24),
    "study-mdct": (0.05, (3.0, 10.0, 10.0), 0.1, 16.0, 4.0, 24),
    "micro-ct": (0.025, (0.4, 3.0, 3.0), 0.05, 6.0, 1.0, 36),
    "uhr-extremity": (0.04, (0.64, 4.0, 4.0), 0.04, 8.0, 0.8, 36),
    "clinical-uhr": (0.0625, (1.0, 6.0, 6.0), 0.0625, 12.0, 1.5, 30),
}


@pytest.mark.slow
@pytest.mark.parametrize("preset", list(CASES))
def test_fast_path_matches_full_simulation_mtf_and_nps(preset):
    ev, esize, cv, diam, height, half = CASES[preset]
    edge = slanted_edge(5.0, voxel_mm=ev, size_mm=esize, material="bone", background="water")
    full_e = scan(edge, preset, noise=False, progress=False)
    fast_e = scan(edge, preset, noise=False, mode="fast")
    assert fast_e.shape == full_e.shape and fast_e.origin == pytest.approx(full_e.origin)
    m_full, m_fast = edge_mtf(full_e, esize[1]), edge_mtf(fast_e, esize[1])
    assert m_fast.mtf50 == pytest.approx(m_full.mtf50, rel=0.10)
    if np.isfinite(m_full.mtf10):
        assert m_fast.mtf10 == pytest.approx(m_full.mtf10, rel=0.10)
    # the analytic model itself lands on the measured curve too
    f50 = m_full.mtf50
    assert float(mtf_model(preset, f50)) == pytest.approx(0.5, abs=0.08)

    cyl = cylinder_labels(diameter_mm=diam, height_mm=height, voxel_mm=cv, box_mm=diam + 0.6)
    t0 = time.perf_counter()
    full_n = scan(cyl, preset, seed=11, progress=False)
    t_full = time.perf_counter() - t0
    t0 = time.perf_counter()
    fast_n = scan(cyl, preset, seed=12, mode="fast")
    t_fast = time.perf_counter() - t0
    n_full, n_fast = central_nps(full_n, half), central_nps(fast_n, half)
    assert n_fast.noise_sd == pytest.approx(n_full.noise_sd, rel=0.10)
    assert n_fast.mean_frequency == pytest.approx(n_full.mean_frequency, rel=0.10)
    assert t_fast < t_full / 5
