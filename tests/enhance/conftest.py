"""A tiny pairs folder (six small synthetic specimens and one edge object, scanned by the twin's fast path with
clinical-mdct's own protocol, inside the wrist body), shared by the enhancement tests."""

import pytest

from trabecula.enhance.data import specimen_plan, write_pairs
from trabecula.scanner.protocols import preset_protocol


@pytest.fixture(scope="session")
def tiny_pairs(tmp_path_factory):
    root = tmp_path_factory.mktemp("pairs")
    plan = specimen_plan(n_synthetic=6, n_edges=1, didsr_dir=None, seed=3, size=64)
    write_pairs(root, plan, protocols=preset_protocol("clinical-mdct", body="wrist", medium="marrow"), split="by-specimen", seed=3)
    return root
