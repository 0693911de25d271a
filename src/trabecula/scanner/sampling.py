"""How a scanner samples a phantom: the phantom's labels and materials, the check that its grid is fine
enough, and the block-averaging factors that bring it to the ray spacing.

Shared by the full cone-beam simulation (:mod:`trabecula.scanner.simulate`) and the image-domain fast path
(:mod:`trabecula.scanner.fast`), which must see a phantom exactly alike.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from trabecula.errors import ParameterError
from trabecula.scanner.config import Scanner
from trabecula.scanner.materials import PHANTOM_MATERIALS, canonical
from trabecula.volume import Volume

#: FWHM of a Gaussian in units of its standard deviation, 2·√(2 ln 2).
GAUSS_FWHM = 2.0 * math.sqrt(2.0 * math.log(2.0))


def phantom_labels(phantom: Any) -> tuple[Volume, dict[int, str]]:
    """The label Volume of a phantom (a ``Phantom`` with ``.labels`` or a label Volume) and its
    {label id: canonical material} map from ``provenance.extra["materials"]``."""
    vol = getattr(phantom, "labels", phantom)
    if not isinstance(vol, Volume):
        raise ParameterError("phantom", f"expected a label Volume or a Phantom, got {type(phantom).__name__}")
    if vol.units != "label":
        raise ParameterError("phantom", f"a phantom is a label volume (units 'label'), got units {vol.units!r}")
    mats = vol.provenance.extra.get("materials")
    if not isinstance(mats, dict) or not mats:
        raise ParameterError("phantom", "the label volume has no provenance.extra['materials'] map (label → material)")
    out = {}
    for k, name in mats.items():
        try:
            lab = int(k)
        except (TypeError, ValueError) as exc:
            raise ParameterError("phantom", f"material map key {k!r} is not a label id") from exc
        cname = canonical(name)
        if cname not in PHANTOM_MATERIALS:
            raise ParameterError("phantom", f"material {name!r} is not a phantom material ({', '.join(PHANTOM_MATERIALS)})")
        out[lab] = cname
    present = np.unique(np.asarray(vol.numpy()))
    missing = [int(v) for v in present if int(v) not in out]
    if missing:
        raise ParameterError("phantom", f"labels {missing} have no material in provenance.extra['materials']")
    return vol, out


def check_phantom_grid(vol: Volume, scanner: Scanner) -> None:
    """A phantom must be sampled at least as finely as the scanner's voxel (else: ParameterError)."""
    r = scanner.reconstruction
    need = (r.slice_mm, r.voxel_mm, r.voxel_mm)
    for ax, s, n in zip("zyx", vol.spacing, need, strict=True):
        if s > n * (1 + 1e-6):
            raise ParameterError("phantom.spacing", f"phantom grid {s:g} mm on {ax} is coarser than {scanner.name}'s "
                                                    f"voxel {n:g} mm; make the phantom on a finer grid")


def projection_factor(spacing, scanner: Scanner) -> tuple[int, int, int]:
    """Integer block-averaging factors (z, y, x) that coarsen the phantom grid towards the ray spacing
    (detector pitch at isocentre / oversample) without exceeding it."""
    g = scanner.geometry
    k = scanner.simulation.oversample
    target = (g.pixel_v_iso_mm / k, g.pixel_u_iso_mm / k, g.pixel_u_iso_mm / k)
    return tuple(max(1, int(math.floor(t / s + 1e-6))) for t, s in zip(target, spacing, strict=True))  # type: ignore[return-value]


__all__ = ["GAUSS_FWHM", "phantom_labels", "check_phantom_grid", "projection_factor"]
