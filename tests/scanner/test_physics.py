"""End-to-end physics: HU calibration (water 0, air −1000), noise ∝ 1/√mAs, validation of phantoms; the
reconstruction overlays its phantom and ``scan`` can keep its projections."""

import numpy as np
import pytest

from trabecula.errors import ParameterError
from trabecula.phantom.objects import cylinder_labels as cylinder_phantom
from trabecula.scanner.recon import reconstruct
from trabecula.scanner.simulate import scan, simulate_projections


def _rois(vol, rod_at=None):
    a = vol.numpy()
    nz, n, _ = a.shape
    sp = vol.spacing[1]
    yy, xx = (np.mgrid[:n, :n] - (n - 1) / 2) * sp
    rr = np.hypot(yy, xx)
    mid = a[nz // 4: 3 * nz // 4]
    return mid, rr


@pytest.mark.slow
def test_hu_calibration_water_zero_air_minus_1000():
    ph = cylinder_phantom(diameter_mm=8.0, height_mm=3.0, voxel_mm=0.1, box_mm=14.0)
    vol = scan(ph, "clinical-mdct", noise=False, progress=False)
    assert vol.units == "HU" and vol.spacing == pytest.approx((0.1, 0.1953125, 0.1953125))
    mid, rr = _rois(vol)
    water = mid[:, rr < 2.5]
    air = mid[:, rr > 6.0]
    assert abs(water.mean()) < 5.0
    assert abs(air.mean() + 1000.0) < 10.0


@pytest.mark.slow
def test_noise_sd_follows_inverse_sqrt_mas():
    """Quantum noise: 4× the mAs halves the SD (within 5 %). Noise = scan − noise-free scan; the two noisy
    scans share the seed (common random numbers), so the ratio reflects the noise model, not sampling luck."""
    ph = cylinder_phantom(diameter_mm=8.0, height_mm=2.0, voxel_mm=0.1, box_mm=11.0)
    clean = scan(ph, "clinical-mdct", noise=False, progress=False).numpy()
    sds = []
    for mas in (5.0, 20.0):
        vol = scan(ph, "clinical-mdct", mas=mas, seed=3, progress=False)
        mid, rr = _rois(vol.with_data(vol.numpy() - clean))
        sds.append(float(mid[:, rr < 3.0].std()))
    assert sds[0] > 5.0  # HU: clearly noise, not round-off
    assert sds[0] / sds[1] == pytest.approx(2.0, rel=0.05)


def test_phantom_grid_coarser_than_voxel_is_refused():
    ph = cylinder_phantom(voxel_mm=0.1)
    with pytest.raises(ParameterError) as exc:
        simulate_projections(ph, "micro-ct", progress=False)
    assert exc.value.name == "phantom.spacing"


def test_phantom_must_be_labels_with_materials():
    ph = cylinder_phantom()
    with pytest.raises(ParameterError):
        simulate_projections(ph.replace(units="HU"), "clinical-mdct", progress=False)
    bad = ph.replace(provenance=ph.provenance.__class__(extra={"materials": {"0": "air"}}))
    with pytest.raises(ParameterError, match="labels"):
        simulate_projections(bad, "clinical-mdct", progress=False)
    with pytest.raises(ParameterError):
        simulate_projections(ph, "clinical-mdct", mas=-1.0, progress=False)


def test_scan_keeps_projections_and_reconstruct_places_the_volume():
    ph = cylinder_phantom(diameter_mm=4.0, height_mm=0.8, voxel_mm=0.1, box_mm=5.0)
    ph = ph.replace(origin=tuple(o + d for o, d in zip(ph.origin, (0.3, -1.0, 2.0), strict=True)))
    vol, proj = scan(ph, "clinical-mdct", noise=False, progress=False, keep_projections=True)
    assert proj.geometry["center_mm"] == pytest.approx(ph.center_mm)
    assert vol.center_mm == pytest.approx(ph.center_mm, abs=0.11)  # the scan overlays the phantom
    again = reconstruct(proj)
    assert again.origin == vol.origin and np.array_equal(again.numpy(), vol.numpy())
    assert np.array_equal(scan(ph, "clinical-mdct", noise=False, progress=False).numpy(), vol.numpy())
    assert vol.provenance.extra["seed"] == 0 and vol.provenance.extra["mas_per_view"] == proj.geometry["mas_per_view"]
    with pytest.raises(ParameterError) as exc:
        scan(ph, "clinical-mdct", mode="fast", keep_projections=True)
    assert exc.value.name == "keep_projections"
