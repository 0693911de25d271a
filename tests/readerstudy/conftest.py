"""A small study: two methods whose volumes differ in shape, file name and content (to show blinding)."""

from __future__ import annotations

import numpy as np
import pytest

from trabecula.io import write_volume
from trabecula.volume import Volume

METHOD_NAMES = ("microCTref", "pix2pixHDfake")
FILE_STEMS = ("secretMicroSpecimenA", "secretEnhancedSpecimenB")


def make_volumes(tmp_path, depth=8):
    rng = np.random.default_rng(1)
    paths = []
    for k, (shape, stem) in enumerate(zip([(depth, 96, 96), (depth + 3, 64, 80)], FILE_STEMS, strict=True)):
        data = (rng.normal(300 + 200 * k, 150 + 100 * k, shape)).astype(np.float32)
        p = tmp_path / f"{stem}.nii.gz"
        write_volume(Volume(data, (0.05 * (k + 1),) * 3, units="HU"), p)
        paths.append(p)
    return {METHOD_NAMES[0]: [paths[0]], METHOD_NAMES[1]: [paths[1]]}


@pytest.fixture
def small_study(tmp_path):
    """(database path, [(reader_id, token)] for three readers) of a 2 × 6-image study, 64 px."""
    from trabecula.readerstudy import add_reader, create_study

    db = tmp_path / "study.db"
    create_study(db, make_volumes(tmp_path), per_method=6, seed=3, size=64)
    readers = [add_reader(db, name) for name in ("Observer 1", "Observer 2", "Observer 3")]
    return db, readers
