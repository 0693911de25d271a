"""Real parallel-beam projections (the tooth): centre of rotation, ring removal, FBP against scikit-image."""

import numpy as np
import pytest

from tests.conftest import data_path
from trabecula.io import read_projections
from trabecula.scanner import tomo


@pytest.fixture(scope="module")
def tooth():
    return read_projections(data_path("tooth_projections", "tooth.h5"))


def test_fbp_matches_scikit_image_iradon():
    from skimage.data import shepp_logan_phantom
    from skimage.transform import iradon, radon, resize

    img = resize(shepp_logan_phantom(), (129, 129))  # odd size: both put the centre at pixel 64
    th = np.arange(180.0)
    sino = radon(img, th, circle=True)
    disk = np.hypot(*(np.mgrid[:129, :129] - 64)) < 60
    for ours_k, theirs_k in (("ramp", "ramp"), ("shepp-logan", "shepp-logan")):
        ref = iradon(sino, th, filter_name=theirs_k, circle=True)
        ours = tomo.fbp_parallel(sino.T.astype(np.float32), np.radians(th), None, ours_k)
        assert np.sqrt(np.mean((ours[disk] - ref[disk]) ** 2)) / np.sqrt(np.mean(ref[disk] ** 2)) < 1e-4


@pytest.mark.slow
def test_tooth_centre_found_near_296(tooth):
    c = tomo.find_center(tomo.remove_rings(tomo.sinograms(tooth)), tooth.angles)
    assert abs(c - 296.0) <= 1.5


def test_ring_removal_lowers_the_ring_metric(tooth):
    plain = tomo.reconstruct_parallel(tooth, center=296.0, rings=False)
    clean = tomo.reconstruct_parallel(tooth, center=296.0, rings=True)
    assert plain.units == "grey" and plain.shape == (2, 640, 640)
    before, after = plain.provenance.extra["ring_metric"], clean.provenance.extra["ring_metric"]
    assert after < 0.8 * before
    # the object is unchanged away from the rings: the slices stay highly correlated
    a, b = plain.numpy()[0], clean.numpy()[0]
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.95


def test_ring_removal_removes_a_synthetic_stripe():
    """A broad object (a cylinder's chord profile) with one miscalibrated detector element."""
    rng = np.random.default_rng(0)
    x = (np.arange(128) - 63.5) / 50
    prof = 2.0 * np.sqrt(np.clip(1 - x**2, 0, None))
    sino = np.tile(prof[None], (90, 1)).astype(np.float32) + rng.normal(0, 0.01, (90, 128)).astype(np.float32)
    bad = sino.copy()
    bad[:, 70] += 0.3  # a gain error: the same offset in every view — a stripe, i.e. a ring
    fixed = tomo.remove_rings(bad)
    assert abs(float(fixed[:, 70].mean() - sino[:, 70].mean())) < 0.03  # > 90 % of the stripe removed
    assert np.abs(fixed - sino).mean() < 0.6 * np.abs(bad - sino).mean()  # and little else changed


def test_reconstruct_projections_dispatches_on_the_geometry(tooth, tmp_path):
    from trabecula.errors import ParameterError
    from trabecula.phantom.objects import cylinder_labels
    from trabecula.scanner.recon import reconstruct
    from trabecula.scanner.simulate import simulate_projections

    par = tomo.reconstruct_projections(tooth, center="296")
    ref = tomo.reconstruct_parallel(tooth, center=296.0, kernel="shepp-logan")
    assert np.array_equal(par.numpy(), ref.numpy()) and par.provenance.extra["center_px"] == 296.0
    for kw, name in (({"backend": "rtk"}, "--backend"), ({"center": "left"}, "--center")):
        with pytest.raises(ParameterError) as exc:
            tomo.reconstruct_projections(tooth, **kw)
        assert exc.value.name == name
    proj = simulate_projections(cylinder_labels(4.0, 0.6, 0.1, 5.0), "clinical-mdct", noise=False, progress=False)
    cone = tomo.reconstruct_projections(proj)
    assert cone.units == "HU" and np.array_equal(cone.numpy(), reconstruct(proj).numpy())
    for kw in ({"center": "auto"}, {"rings": True}):
        with pytest.raises(ParameterError) as exc:
            tomo.reconstruct_projections(proj, **kw)
        assert exc.value.name == "--center"
    import imageio.v3 as iio

    tomo.save_png(cone, tmp_path / "hu.png")
    bone = cone.window("bone").numpy()
    assert np.array_equal(iio.imread(tmp_path / "hu.png"), bone[bone.shape[0] // 2])
    tomo.save_png(par, tmp_path / "grey.png")
    assert iio.imread(tmp_path / "grey.png").shape == (640, 640)
