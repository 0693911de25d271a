"""A quick random-field bone-like volume, used where any plausible CT-like volume will do (the I/O demo,
tests). It is not a trabecular model: see the other phantom modules for controllable morphometry."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from trabecula.volume import Provenance, Volume, as_spacing


def random_field_bone(
    shape: tuple[int, int, int] = (48, 64, 64),
    spacing: float | tuple[float, float, float] = 0.1,
    bone_fraction: float = 0.2,
    correlation_mm: float = 0.25,
    bone_hu: float = 1200.0,
    marrow_hu: float = 0.0,
    noise_hu: float = 30.0,
    seed: int = 0,
) -> Volume:
    """Gaussian-smoothed white noise thresholded at its ``1 - bone_fraction`` quantile, in HU (int16).

    Bone voxels get ``bone_hu``, the rest ``marrow_hu``; Gaussian noise of SD ``noise_hu`` is added.
    Reproducible from ``seed``.
    """
    rng = np.random.default_rng(seed)
    sp = as_spacing(spacing)
    field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), correlation_mm / np.asarray(sp),
                                    mode="wrap")
    bone = field >= np.quantile(field, 1.0 - bone_fraction)
    hu = np.where(bone, bone_hu, marrow_hu) + rng.normal(0.0, noise_hu, shape)
    prov = Provenance(source="random_field_bone", steps=[f"random_field_bone[seed={seed}, fraction={bone_fraction}]"])
    return Volume(np.rint(hu).astype(np.int16), sp, (0.0, 0.0, 0.0), "HU", prov)
