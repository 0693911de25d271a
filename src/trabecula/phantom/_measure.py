"""Morphometry used by the phantom calibration: BV/TV, Tb.Th and Tb.Sp of a binary array.

The project's morphometry engine (:func:`trabecula.morphometry.measure`, its default ``plain`` mode) is used, so a
phantom is calibrated in exactly the measurement mode that later measures it. Tb.Th and Tb.Sp are mean local
thicknesses (Hildebrand & Rüegsegger 1997, *J Microsc* 185:67) of bone and of marrow, diameters in mm;
the image border is treated as the engine's default (structure continues).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from trabecula.morphometry.measure import measure
from trabecula.volume import as_spacing


def measure_binary(binary: np.ndarray, spacing: float | Sequence[float], bonej: bool = False) -> dict[str, float]:
    """``{"bv_tv", "tb_th_mm", "tb_sp_mm"}`` of a boolean (z, y, x) array at ``spacing`` mm."""
    b = np.ascontiguousarray(binary, dtype=bool)
    r = measure(b, spacing=as_spacing(spacing), units="binary", bonej=bonej, metrics=("bvtv", "tbth", "tbsp"))
    return {"bv_tv": float(r.bv_tv), "tb_th_mm": float(r.tb_th_mm), "tb_sp_mm": float(r.tb_sp_mm)}
