"""The consistency check against deleted and invented structure: band by band, bone fraction and periodic texture,
on the real clinical series (this week's failure modes must be flagged) and on a twin test scan (the truth passes)."""

import numpy as np
import pytest
from scipy import ndimage

from trabecula.enhance.data import default_data_dir
from trabecula.enhance.hallucination import band_gains, consistency_check, periodic_peak
from trabecula.io import read_volume
from trabecula.pipeline.scan_checks import didsr_crop_in_pbs, vertebral_body_roi
from trabecula.scanner.simulate import scan

DATA = default_data_dir()
CLINICAL = DATA / "clinical_ct_dicom"
DIDSR = DATA / "didsr_l1_vertebra"
needs_clinical = pytest.mark.skipif(not CLINICAL.is_dir(), reason="shared clinical series not present")
needs_didsr = pytest.mark.skipif(not DIDSR.is_dir(), reason="shared DIDSR regions not present")


def test_band_gain_is_one_for_the_same_image_and_above_one_when_detail_is_removed():
    rng = np.random.default_rng(0)
    a = ndimage.gaussian_filter(rng.normal(0, 100, (4, 96, 96)), (0, 2, 2))
    same = band_gains(a, a, (0.5, 0.5), 1.0)
    assert all(b["gain"] == pytest.approx(1.0) for b in same)
    half = band_gains(a, 0.4 * a, (0.5, 0.5), 1.0)
    assert all(b["gain"] == pytest.approx(2.5) for b in half)


def test_a_checkerboard_is_a_periodic_peak_and_smooth_texture_is_not():
    rng = np.random.default_rng(1)
    a = ndimage.gaussian_filter(rng.normal(0, 100, (4, 96, 96)), (0, 1, 1))
    yy, xx = np.indices(a.shape[1:])
    assert periodic_peak(a) < 8
    assert periodic_peak(a + 20 * (((yy + xx) % 2) * 2 - 1)[None]) > 100


@pytest.fixture(scope="module")
def clinical_roi():
    vol = read_volume(CLINICAL)
    labels = read_volume(DATA / "clinical_ct_dicom_labels.nii.gz", units="label")
    roi = vertebral_body_roi(vol, labels)
    return roi, roi.resample((roi.spacing[0] / 2, 0.25, 0.25))


@needs_clinical
def test_the_clinical_series_flags_this_weeks_failure_modes(clinical_roi):
    roi, fine = clinical_roi
    f = fine.numpy().astype(np.float32)
    yy, xx = np.indices(f.shape[1:])
    erased = fine.with_data(ndimage.gaussian_filter(f, (0, 8, 8)))  # texture erased (SR-DLR, 18 % → 5.5 %)
    flat = fine.with_data(np.full_like(f, float(np.median(f))) + 100 * (((yy + xx) % 2) * 2 - 1)[None])  # pix2pixHD
    grid = fine.with_data(f + (60 * (np.cos(2 * np.pi * yy / 6) + np.cos(2 * np.pi * xx / 6)))[None])  # srdlr-twin
    reasons = {}
    for name, out in (("erased", erased), ("flat", flat), ("grid", grid)):
        r = consistency_check(out, roi)
        assert r.flagged, name
        reasons[name] = " ".join(r.details["reasons"])
    assert "bone fraction" in reasons["erased"]
    assert "deleted" in reasons["flat"] and "periodic" in reasons["flat"]
    assert "periodic" in reasons["grid"]


@needs_didsr
def test_a_twin_test_scan_passes_with_the_truth_as_the_output():
    labels, _ = didsr_crop_in_pbs(sorted(DIDSR.glob("*.nrrd"))[0], 6.0, 3.0)
    patient = {"body": "lumbar", "medium": "pbs", "mode": "fast"}
    noisy = scan(labels, "study-mdct", seed=5, **patient)
    clean = scan(labels, "study-mdct", noise=False, **patient)
    micro = scan(labels, "micro-ct", seed=6, mode="fast", medium="pbs")
    inner = noisy.crop((3, noisy.shape[0] - 3), (8, noisy.shape[1] - 8), (8, noisy.shape[2] - 8))
    as_denoised = consistency_check(clean, inner, redegrade=False)
    assert not as_denoised.flagged, as_denoised.details["reasons"]
    as_micro = consistency_check(micro, inner, match_hu=True)
    assert not as_micro.flagged, as_micro.details["reasons"]
    erased = consistency_check(micro.with_data(ndimage.gaussian_filter(micro.numpy(), (0, 10, 10))), inner, match_hu=True)
    assert erased.flagged and any("deleted" in r for r in erased.details["reasons"])
