"""How a scanner samples a phantom: the phantom's labels and materials, the medium that fills its box, the
check that its grid is fine enough, and the block-averaging factors that bring it to the ray spacing.

Shared by the full cone-beam simulation (:mod:`trabecula.scanner.simulate`) and the image-domain fast path
(:mod:`trabecula.scanner.fast`), which must see a phantom exactly alike.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from trabecula.errors import ParameterError
from trabecula.phantom._base import LABEL
from trabecula.scanner.body import Body, parse_body, parse_medium
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


def resolve_patient(scanner: Scanner, body: str | Body | None = None, medium: str | None = None) -> tuple[Body | None, str]:
    """The body and medium of a scan: the arguments where given, else the scanner's ``[patient]`` table
    (``body="NONE"`` asks for no body even if the preset has one)."""
    b = parse_body(scanner.patient.body if body is None else body)
    m = parse_medium(scanner.patient.medium if medium is None else medium)
    if b is not None:
        g = scanner.geometry
        half_fov = g.detector_cols * g.pixel_u_iso_mm / 2.0
        if max(b.semi_axes_mm) + 1.0 > half_fov:
            raise ParameterError("body", f"the body {b.describe()} is wider than {scanner.name}'s field of view "
                                         f"({2 * half_fov:.1f} mm at isocentre); its projections would be truncated")
    return b, m


def patient_record(body: Body | None, medium: str) -> dict:
    """What a scan's provenance records of the body and the medium."""
    rec: dict = {"body": "NONE" if body is None else body.name, "medium": medium}
    if body is not None:
        rec["body_size_mm"] = list(body.size_mm)
        rec["body_layers"] = [[m, t] for m, t in body.layers]
        rec["body_core"] = body.core
    return rec


def apply_medium(vol: Volume, materials: dict[int, str], medium: str | None) -> tuple[Volume, dict[int, str]]:
    """The phantom with every air voxel of its box filled by ``medium`` (a copy; the input is unchanged).

    The medium takes the label id it has in :data:`trabecula.phantom.MATERIALS` (or an unused id if the
    phantom uses that one for another material); ``air`` (or None) returns the phantom as it is."""
    name = parse_medium(medium)
    air = [lab for lab, m in materials.items() if m == "air"]
    if name == "air" or not air:
        return vol, materials
    ids = [lab for lab, m in materials.items() if m == name]
    if ids:
        new_id = ids[0]
    else:
        new_id = LABEL[name]
        if new_id in materials:
            new_id = next(i for i in range(256) if i not in materials)
    labels = np.asarray(vol.numpy())
    filled = np.where(np.isin(labels, air), np.uint8(new_id), labels).astype(labels.dtype, copy=False)
    mats = {lab: m for lab, m in materials.items() if m != "air"}
    mats[new_id] = name
    extra = {**vol.provenance.extra, "materials": {str(k): v for k, v in sorted(mats.items())}}
    prov = vol.provenance.with_step(f"medium {name} fills the air of the box")
    prov.extra.update(extra)
    return Volume(filled, vol.spacing, vol.origin, "label", prov), mats


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


__all__ = ["GAUSS_FWHM", "phantom_labels", "apply_medium", "resolve_patient", "patient_record", "check_phantom_grid", "projection_factor"]
