"""Slice pairing (SIFT + DTW, the vertebra study's method) on known truth: the twin's micro-CT rotated in
plane (≤ 15°), shifted (≤ 5 mm), HU-rescaled and cropped differently, paired with its study-mdct slices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trabecula import Volume
from trabecula.enhance.data import PairSet
from trabecula.enhance.slicepair import pair_slices, write_slice_pairs
from trabecula.enhance.twin_cases import misalign, random_rigid, specimen_centre, twin_scans, twin_specimen
from trabecula.errors import InputError

REGION = Path(__file__).resolve().parents[3] / "shared" / "data" / "didsr_l1_vertebra" / "Segmentation-grayscale-1_06219.nrrd"


@pytest.fixture(scope="module")
def case():
    spec = twin_specimen(REGION if REGION.exists() else None, seed=0)
    clinical, micro = twin_scans(spec)
    centre = specimen_centre(spec)
    rng = np.random.default_rng(6)
    truth = random_rigid(rng, centre, axis="z")
    mis = misalign(micro, truth, rng, centre)
    mv = mis.moving
    # micro slice j shows world z = z_new(j) + t_z (a rotation about z keeps z): the true partner of clinical slice i
    zc = clinical.origin[0] + np.arange(clinical.shape[0]) * clinical.spacing[0]
    jstar = (zc - truth.GetTranslation()[2] - mv.origin[0]) / mv.spacing[0]
    return clinical, mv, jstar


def _within_one(pairing, jstar, n_micro) -> float:
    j = jstar[pairing.rows]
    valid = (j >= 0) & (j <= n_micro - 1)
    return float(np.mean(np.abs(pairing.partners[valid] - j[valid]) <= 1))


def test_sift_dtw_pairs_95_percent_of_slices_within_one_micro_slice_and_beats_ncc(case):
    clinical, micro, jstar = case
    sift = pair_slices(clinical, micro)
    ncc = pair_slices(clinical, micro, method="ncc")
    acc_sift, acc_ncc = _within_one(sift, jstar, micro.shape[0]), _within_one(ncc, jstar, micro.shape[0])
    assert acc_sift >= 0.95
    assert acc_ncc < acc_sift
    assert len(sift.rows) >= 0.75 * clinical.shape[0]  # only the marrow-only end slices are left out
    assert np.all(np.diff(sift.partners) >= 1)  # monotone


def test_pairs_folder_is_what_train_reads_and_targets_are_aligned(case, tmp_path):
    clinical, micro, _ = case
    pairing = pair_slices(clinical, micro)
    manifest = write_slice_pairs(clinical, micro, pairing, tmp_path / "pairs", specimen="twin")
    ps = PairSet.open(manifest.parent)
    arr = ps.load("twin")
    assert arr["input"].shape[0] == arr["target"].shape[0] == len(pairing.rows)
    assert arr["target"].shape[1:] == (2 * arr["input"].shape[1], 2 * arr["input"].shape[2])
    # aligned in-plane: the target, brought to the input's pixel, correlates with the input
    t = arr["target"].reshape(arr["target"].shape[0], arr["input"].shape[1], 2, arr["input"].shape[2], 2).mean(axis=(2, 4))
    r = np.corrcoef(t.ravel(), arr["input"].ravel())[0, 1]
    assert r > 0.7


def test_a_2d_image_and_an_unrelated_stack_are_refused(case):
    clinical, micro, _ = case
    with pytest.raises(InputError, match="2-D"):
        pair_slices(clinical, Volume(micro.numpy()[:1], micro.spacing, micro.origin, "HU"))
    noise = Volume(np.random.default_rng(0).normal(0, 50, micro.shape).astype(np.float32), micro.spacing, units="HU")
    with pytest.raises(InputError, match="SIFT matches"):
        pair_slices(clinical, noise)
