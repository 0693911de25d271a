"""Format conversion with optional crop, resampling and 8-bit windowing (``trabecula convert``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trabecula.errors import ParameterError
from trabecula.io import parse_triple, write_volume
from trabecula.volume import Volume


def check_resample_memory(vol: Volume, spacing: float | Sequence[float], name: str = "--spacing") -> None:
    """Refuse, before allocating, resampling ``vol`` to ``spacing`` when its peak memory exceeds the budget
    (:func:`trabecula.limits.check_memory`), saying the finest isotropic spacing that would fit."""
    import numpy as np

    from trabecula.limits import check_memory, memory_budget_bytes

    need, per_out = vol.resample_bytes(spacing, name=name)
    fixed = need - per_out * float(np.prod(np.asarray(vol.resampled_shape(spacing, name=name), dtype=np.float64)))
    room = memory_budget_bytes() - fixed
    extent = float(np.prod(vol.extent_mm))
    hint = (f"an isotropic spacing of at least {(extent * per_out / room) ** (1 / 3):.3g} mm would fit" if room > 0
            else "the input alone fills the budget: crop it first (--crop)")
    shape = vol.resampled_shape(spacing, name=name)
    check_memory(need, f"resampling {'×'.join(map(str, vol.shape))} voxels to {'×'.join(map(str, shape))}", name, hint)


def convert_volume(vol: Volume, dst: str | Path, *, crop: Sequence[Any] | None = None,
                   spacing: float | Sequence[float] | None = None, window: tuple[Any, float | None] | None = None,
                   format: str | None = None, force: bool = False, chunks: Any = None,
                   levels: int | None = None) -> Volume:
    """Crop (voxel index ranges, before resampling), resample to ``spacing`` (mm), window to 8 bit
    (``(level, width)`` or ``(preset, None)``) and write ``vol`` to ``dst``; returns the written volume.
    ``chunks`` (z, y, x voxels) and ``levels`` (pyramid levels) go to the Zarr / OME-Zarr writers
    (:func:`~trabecula.io.write_volume`).

    Resampling a volume whose spacing was assumed (not read from its header nor declared) is refused: the
    output's voxel size would be a guess; so is a resampled output over the memory budget
    (:func:`check_resample_memory`).
    """
    if crop is not None:
        vol = vol.crop(*crop)
    if spacing is not None:
        if vol.provenance.extra.get("spacing_assumed"):
            raise ParameterError("--spacing", f"{vol.provenance.source} has no spacing in its metadata; "
                                              "declare it with --input-spacing before resampling")
        sp = parse_triple(spacing, "--spacing")
        check_resample_memory(vol, sp, "--spacing")
        vol = vol.resample(sp, name="--spacing")
    if window is not None:
        vol = vol.window(*window)
    write_volume(vol, dst, force=force, format=format, chunks=chunks, levels=levels)
    return vol
