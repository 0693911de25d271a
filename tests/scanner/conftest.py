"""Small label phantoms for the scanner tests (independent of the phantom stage, so these tests isolate
the scanner): a water cylinder in air, optionally with a bone rod."""

from __future__ import annotations

import numpy as np
import pytest

from trabecula.volume import Provenance, Volume


def cylinder_phantom(diameter_mm: float = 8.0, height_mm: float = 3.0, voxel_mm: float = 0.1, box_mm: float | None = None,
                     rod_mm: float = 0.0, rod_at_mm: float = 2.5, rod_material: str = "bone") -> Volume:
    """Water cylinder (axis z, centred) in air on a ``box_mm`` square grid; optional rod along z."""
    box = box_mm or diameter_mm + 3.0
    n = int(round(box / voxel_mm))
    nz = int(round(height_mm / voxel_mm))
    c = (n - 1) / 2
    y, x = np.mgrid[:n, :n]
    yy, xx = (y - c) * voxel_mm, (x - c) * voxel_mm
    lab2 = np.zeros((n, n), np.uint8)
    lab2[np.hypot(yy, xx) < diameter_mm / 2] = 1
    mats = {"0": "air", "1": "water"}
    if rod_mm > 0:
        lab2[np.hypot(yy, xx - rod_at_mm) < rod_mm / 2] = 2
        mats["2"] = rod_material
    lab = np.broadcast_to(lab2, (nz, n, n)).copy()
    origin = tuple(-(s - 1) / 2 * voxel_mm for s in lab.shape)
    return Volume(lab, voxel_mm, origin, "label", Provenance(source="test-cylinder", extra={"materials": mats}))


@pytest.fixture
def water_cyl() -> Volume:
    return cylinder_phantom()
