"""``pairs --from-scans``: misaligned twin scans of two specimens registered into a paired dataset that
training reads, with a QC page; a wrong pairing is refused, never made silently."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from trabecula.enhance.twin_cases import misalign, random_rigid, specimen_centre, twin_scans, twin_specimen
from trabecula.io import read_volume, write_volume

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "didsr_l1_vertebra"
REGIONS = [DATA / "Segmentation-grayscale-1_06219.nrrd", DATA / "Segmentation-grayscale-9_04216.nrrd"]


@pytest.fixture(scope="module")
def scan_folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("scans")
    clin, micro = root / "clinical", root / "micro"
    clin.mkdir()
    micro.mkdir()
    for k, region in enumerate(REGIONS):
        spec = twin_specimen(region if region.exists() else None, seed=k)
        c, m = twin_scans(spec, seed=k)
        rng = np.random.default_rng(40 + k)
        centre = specimen_centre(spec)
        mis = misalign(m, random_rigid(rng, centre, max_deg=10, max_mm=3), rng, centre)
        write_volume(c, clin / f"s{k}.nii.gz")
        write_volume(mis.moving, micro / f"s{k}.nii.gz")
    return clin, micro


def test_from_scans_registers_each_specimen_and_makes_pairs_train_reads(scan_folders, tmp_path, capsys):
    from trabecula.cli import main
    from trabecula.enhance.data import PairSet

    clin, micro = scan_folders
    out = tmp_path / "pairs"
    code = main(["pairs", str(out), "--from-scans", str(clin), str(micro)])
    assert code == 0, capsys.readouterr().err
    m = json.loads((out / "manifest.json").read_text())
    assert len(m["specimens"]) == 2 and len(m["registration"]) == 2
    assert all(r["final_metric"] < r["threshold"] for r in m["registration"])
    qc = (out / "qc" / "index.html").read_text()
    assert "s0.png" in qc and "s1.png" in qc and (out / "qc" / "s0.png").stat().st_size > 10_000
    # the registered target lies on the clinical scan's field of view: downsampled, it correlates with the input
    fixed = read_volume(clin / "s0.nii.gz").numpy().astype(float)
    moved = read_volume(out / "registered" / "target" / "s0.nii.gz")
    import SimpleITK as sitk

    from trabecula.enhance.register import resample_moving

    fv = read_volume(clin / "s0.nii.gz")
    on_fixed = resample_moving(moved, sitk.Transform(3, sitk.sitkIdentity), fv.shape, fv.spacing, fv.origin).numpy()
    assert np.corrcoef(fixed.ravel(), on_fixed.ravel())[0, 1] > 0.6
    ps = PairSet.open(out)
    assert len(ps.specimens) == 2


def test_from_scans_refuses_a_micro_ct_of_another_specimen(scan_folders, tmp_path, capsys):
    from trabecula.cli import main

    clin, micro = scan_folders
    swapped = tmp_path / "swapped"
    swapped.mkdir()
    (swapped / "s0.nii.gz").write_bytes((micro / "s1.nii.gz").read_bytes())
    code = main(["pairs", str(tmp_path / "p"), "--from-scans", str(clin), str(swapped)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "registration" in err[0] and "refused" in err[0]


def test_pairs_are_cropped_to_what_the_registered_micro_ct_covers(scan_folders, tmp_path):
    """Outside the micro-CT's own box the moved scan holds only its medium: those slices are left out."""
    from trabecula.enhance.from_scans import pairs_from_scans

    clin, micro = scan_folders
    m = json.loads(pairs_from_scans(clin, micro, tmp_path / "p").read_text())
    kept = [r["kept_fraction_of_clinical_box"] for r in m["registration"]]
    assert all(0.3 < k <= 1.0 for k in kept)
    target = read_volume(tmp_path / "p" / "registered" / "target" / "s0.nii.gz").numpy()
    _, counts = np.unique(target, return_counts=True)
    assert counts.max() < 0.005 * target.size  # no voxel filled with the constant medium outside the micro-CT
