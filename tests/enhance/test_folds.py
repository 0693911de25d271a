"""Cross-validation folds over the real L1 regions: every region tested exactly once, copies follow their region."""

import json

import pytest

from trabecula.enhance.data import PairSet, cross_validation_fold
from trabecula.errors import ParameterError


def _fake_pairs(root, n_regions=10):
    recs = []
    for k in range(n_regions):
        sid = f"didsr-{k:05d}"
        recs.append({"id": sid, "source": "didsr", "source_specimen": sid, "shard": f"{sid}.npz", "split": "train"})
        recs.append({"id": f"{sid}-aug1", "source": "didsr", "source_specimen": sid, "shard": f"{sid}-aug1.npz", "split": "train"})
        recs.append({"id": f"look-{k:03d}", "source": "lookalike", "source_specimen": sid, "shard": f"look-{k}.npz", "split": "train"})
    recs.append({"id": "synth-000", "source": "synthetic", "shard": "synth-000.npz", "split": "test"})
    root.mkdir()
    (root / "manifest.json").write_text(json.dumps({"format": "trabecula-pairs/1", "split_mode": "by-specimen",
                                                    "input_spacing": [0.1, 0.2, 0.2], "target_spacing": [0.1, 0.1, 0.1],
                                                    "specimens": recs}))
    return root


def test_five_folds_test_every_region_once_and_keep_copies_with_their_region(tmp_path):
    src = _fake_pairs(tmp_path / "pairs")
    tested = []
    for k in range(5):
        ps = PairSet.open(cross_validation_fold(src, tmp_path / f"fold{k}", k, 5).parent)
        by = {r["id"]: r for r in ps.specimens}
        test = {r["source_specimen"] for r in ps.specimens if r["split"] == "test" and r["source"] == "didsr"}
        tested += sorted(test)
        for r in ps.specimens:
            if r["source"] in ("didsr", "lookalike"):
                assert r["split"] == by[r["source_specimen"]]["split"]
        assert by["synth-000"]["split"] == "test"  # other families keep their split
        assert (ps.root / by["didsr-00000"]["shard"]).resolve() == (src / "didsr-00000.npz").resolve()
        assert len({r["source_specimen"] for r in ps.specimens if r["split"] == "val"}) == 1
    assert sorted(tested) == sorted(f"didsr-{k:05d}" for k in range(10))


def test_a_fold_outside_the_folds_is_refused(tmp_path):
    src = _fake_pairs(tmp_path / "pairs")
    with pytest.raises(ParameterError, match="fold"):
        cross_validation_fold(src, tmp_path / "f", 5, 5)
