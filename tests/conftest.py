"""Shared fixtures: paths to the real scans in ../shared/data (never copied into the repository)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TRABECULA_NO_PROGRESS", "1")

REPO = Path(__file__).resolve().parents[1]

def _find_data() -> Path:
    """The shared real-data folder: $TRABECULA_DATA, else ../shared/data beside the checkout."""
    candidates = [os.environ.get("TRABECULA_DATA"), REPO.parent / "shared" / "data"]
    for c in candidates:
        if c and Path(c).is_dir():
            return Path(c)
    return REPO.parent / "shared" / "data"


DATA = _find_data()


def data_path(*parts: str) -> Path:
    """Path under the shared real-data folder; the test fails (not skips) when it is missing."""
    p = DATA.joinpath(*parts)
    if not p.exists():
        pytest.fail(f"real data missing: {p} (set TRABECULA_DATA to the shared/data folder)")
    return p


@pytest.fixture
def shared_data() -> Path:
    return data_path()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
