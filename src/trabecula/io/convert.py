"""Format conversion with optional crop, resampling and 8-bit windowing (``trabecula convert``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trabecula.errors import ParameterError
from trabecula.io import parse_triple, write_volume
from trabecula.volume import Volume


def convert_volume(vol: Volume, dst: str | Path, *, crop: Sequence[Any] | None = None,
                   spacing: float | Sequence[float] | None = None, window: tuple[Any, float | None] | None = None,
                   format: str | None = None, force: bool = False) -> Volume:
    """Crop (voxel index ranges, before resampling), resample to ``spacing`` (mm), window to 8 bit
    (``(level, width)`` or ``(preset, None)``) and write ``vol`` to ``dst``; returns the written volume.

    Resampling a volume whose spacing was assumed (not read from its header nor declared) is refused: the
    output's voxel size would be a guess.
    """
    if crop is not None:
        vol = vol.crop(*crop)
    if spacing is not None:
        if vol.provenance.extra.get("spacing_assumed"):
            raise ParameterError("--spacing", f"{vol.provenance.source} has no spacing in its metadata; "
                                              "declare it with --input-spacing before resampling")
        vol = vol.resample(parse_triple(spacing, "--spacing"))
    if window is not None:
        vol = vol.window(*window)
    write_volume(vol, dst, force=force, format=format)
    return vol
