"""3-D registration on known truth: the twin's micro-CT of a specimen, misaligned by a known random rigid
transform (≤ 15°, ≤ 5 mm), HU offset and scale and a different crop, registered back to its study-mdct scan."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from trabecula import Volume
from trabecula.enhance.register import register, write_registration
from trabecula.enhance.twin_cases import (
    misalign,
    random_rigid,
    registration_error,
    specimen_centre,
    twin_scans,
    twin_specimen,
)
from trabecula.errors import InputError, ParameterError

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "didsr_l1_vertebra"
REGION = DATA / "Segmentation-grayscale-1_06219.nrrd"
OTHER = DATA / "Segmentation-grayscale-9_04216.nrrd"


def _region(path: Path) -> Path | None:
    return path if path.exists() else None


@pytest.fixture(scope="module")
def twin():
    """A 6 mm DIDSR crop (a generated structure without the data) in marrow, scanned by study-mdct and micro-ct."""
    spec = twin_specimen(_region(REGION), seed=0)
    clinical, micro = twin_scans(spec)
    return spec, clinical, micro


@pytest.mark.parametrize("case", [0, 1])
def test_rigid_affine_registration_recovers_a_random_rigid_misalignment(twin, case):
    """Within 0.5 clinical voxel at the specimen's centre and 0.5° (the issue's bar), despite the HU scale
    and offset and the different crop; the final metric beats the refusal threshold."""
    spec, clinical, micro = twin
    centre = specimen_centre(spec)
    rng = np.random.default_rng(100 + case)
    truth = random_rigid(rng, centre)
    mis = misalign(micro, truth, rng, centre)
    res = register(clinical, mis.moving, seed=case)
    err = registration_error(truth, res.transform, centre, clinical.spacing)
    assert err["rotation_deg"] < 0.5
    assert max(err["translation_voxels"]) < 0.5
    assert res.metric < res.metric_threshold and res.overlap > 0.5
    assert res.moved.shape == tuple(int(round(e / s)) for e, s in zip(clinical.extent_mm, micro.spacing, strict=True))


def test_registration_writes_a_tfm_slicer_reads_and_an_overlay(twin, tmp_path):
    spec, clinical, micro = twin
    centre = specimen_centre(spec)
    rng = np.random.default_rng(7)
    mis = misalign(micro, random_rigid(rng, centre, max_deg=5, max_mm=2), rng, centre)
    res = register(clinical, mis.moving, stages=("rigid",))
    paths = write_registration(res, clinical, tmp_path / "reg")
    back = sitk.ReadTransform(str(paths["transform"]))
    p = (1.0, 2.0, 3.0)
    assert np.allclose(back.TransformPoint(p), res.transform.TransformPoint(p), atol=1e-6)
    assert paths["overlay"].stat().st_size > 10_000 and paths["moved"].exists() and paths["summary"].exists()
    with pytest.raises(InputError, match="already exists"):
        write_registration(res, clinical, tmp_path / "reg")


def test_another_specimens_micro_ct_is_refused_by_the_metric(twin):
    spec, clinical, _ = twin
    other = twin_specimen(_region(OTHER), seed=1)
    _, micro_other = twin_scans(other)
    with pytest.raises(InputError, match="final metric .* above the threshold"):
        register(clinical, micro_other, stages=("rigid",))


def test_scans_of_different_parts_do_not_pair(twin):
    """The clinical scan's top third against the micro-CT's bottom third: no overlap, refused."""
    _, clinical, micro = twin
    top = Volume(clinical.numpy()[:27], clinical.spacing, clinical.origin, "HU")
    zb = micro.shape[0] - 50
    bottom = Volume(micro.numpy()[zb:], micro.spacing,
                    (micro.origin[0] + zb * micro.spacing[0], *micro.origin[1:]), "HU")
    with pytest.raises(InputError, match="do not overlap|final metric"):
        register(top, bottom, stages=("rigid",))


def test_a_2d_image_and_bad_stages_are_refused(twin):
    _, clinical, micro = twin
    flat = Volume(micro.numpy()[:1], micro.spacing, micro.origin, "HU")
    with pytest.raises(InputError, match="2-D"):
        register(clinical, flat)
    with pytest.raises(ParameterError, match="--stages"):
        register(clinical, micro, stages=("affine",))
