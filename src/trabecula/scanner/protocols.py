"""Randomised clinical protocols: one scanner preset per training pair, drawn from stated ranges.

A model trained on one protocol meets real scans of many. :func:`random_protocol` draws, from a seeded
generator and the ranges of :class:`ProtocolRanges` (recorded in every pairs manifest):

* the detector (a clinical preset's geometry, source and detector: ``clinical-mdct`` 0.6 mm elements,
  ``study-mdct`` and ``clinical-uhr`` 0.25 mm elements at the isocentre), uniformly;
* the in-plane reconstruction pixel, uniform in 0.15–0.5 mm;
* the slice thickness, uniform in 0.5–2 mm (never thinner than the detector row at the isocentre), at an
  interval of half the thickness (the usual overlapping reconstruction);
* the kernel class, smooth to sharp bone: ``hann``, ``standard``, ``shepp-logan``, ``bone``
  (:mod:`trabecula.scanner.filters`);
* the tube load, log-uniform in 5–300 mAs, and the tube voltage, uniform in 100–140 kVp (whole kV; the
  spectrum is recomputed, so contrast and dose follow);
* the patient body around the specimen (``wrist``, ``ankle``, ``lumbar``: :mod:`trabecula.scanner.body`)
  and the medium filling the specimen's box (``marrow`` as in vivo, ``pbs`` as the study's specimens).

:meth:`Protocol.scanner` turns a draw into a :class:`~trabecula.scanner.config.Scanner`;
:meth:`Protocol.finer` is the same protocol on a detector with elements half as wide (and half the pixel
and slice thickness): the high-resolution reference of super-resolution training (Higaki et al., the
SR-DLR of seed ``dlr-sr-dlr``, trained against ultra-high-resolution CT of the same anatomy).

Every value is recorded (:meth:`Protocol.to_dict`); a pair can be re-scanned from its record.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from trabecula.errors import ParameterError
from trabecula.scanner.body import BODIES, MEDIA
from trabecula.scanner.config import KERNELS, Scanner, load_scanner

#: kernels from smooth to sharp bone (the order is the class order)
KERNEL_CLASSES: tuple[str, ...] = ("hann", "standard", "shepp-logan", "bone")


@dataclass(frozen=True)
class ProtocolRanges:
    """The ranges :func:`random_protocol` draws from (the issue's: pixel 0.15–0.5 mm, slice 0.5–2 mm,
    smooth … sharp bone kernel, 5–300 mAs with a body, 100–140 kVp)."""

    detectors: tuple[str, ...] = ("clinical-mdct", "study-mdct", "clinical-uhr")
    pixel_mm: tuple[float, float] = (0.15, 0.5)
    slice_thickness_mm: tuple[float, float] = (0.5, 2.0)
    kernels: tuple[str, ...] = KERNEL_CLASSES
    mas: tuple[float, float] = (5.0, 300.0)
    kvp: tuple[float, float] = (100.0, 140.0)
    bodies: tuple[str, ...] = ("wrist", "ankle", "lumbar")
    media: tuple[str, ...] = ("marrow", "pbs")

    def __post_init__(self) -> None:
        for name in ("pixel_mm", "slice_thickness_mm", "mas", "kvp"):
            lo, hi = getattr(self, name)
            if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo <= hi):
                raise ParameterError(name, f"range must be 0 < low <= high, got {lo}..{hi}")
        for k in self.kernels:
            if k not in KERNELS:
                raise ParameterError("kernels", f"unknown kernel {k!r}; use {', '.join(KERNELS)}")
        for b in self.bodies:
            if b.lower() != "none" and b not in BODIES:
                raise ParameterError("bodies", f"unknown body {b!r}; use {', '.join(BODIES)} or NONE")
        for m in self.media:
            if m not in MEDIA:
                raise ParameterError("media", f"unknown medium {m!r}; use {', '.join(MEDIA)}")
        for name in ("detectors", "kernels", "bodies", "media"):
            if not getattr(self, name):
                raise ParameterError(name, "needs at least one choice")

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ProtocolRanges:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ParameterError("protocol ranges", f"unknown keys {sorted(unknown)}; expected {sorted(known)}")
        return cls(**{k: tuple(v) for k, v in d.items()})


@dataclass(frozen=True)
class Protocol:
    """One clinical protocol: detector preset, reconstruction pixel / slice (mm), kernel, mAs, kVp, body,
    medium. ``slice_interval_mm`` defaults to half the thickness."""

    detector: str
    pixel_mm: float
    slice_thickness_mm: float
    kernel: str
    mas: float
    kvp: float
    body: str = "NONE"
    medium: str = "air"
    slice_interval_mm: float = field(default=0.0)

    def __post_init__(self) -> None:
        if self.slice_interval_mm <= 0:
            object.__setattr__(self, "slice_interval_mm", self.slice_thickness_mm / 2.0)

    def scanner(self) -> Scanner:
        """The detector preset with this protocol's source, exposure, reconstruction and patient."""
        base = load_scanner(self.detector)
        row = base.geometry.pixel_v_iso_mm
        return base.replace(
            name=f"{self.detector}+protocol",
            description=f"{self.detector} at {self.kvp:g} kVp, {self.mas:.3g} mAs, {self.kernel} kernel, "
                        f"{self.pixel_mm:.3f} mm pixels, {self.slice_thickness_mm:.2f} mm slices",
            source={"kvp": float(self.kvp)},
            exposure={"mas": float(self.mas)},
            reconstruction={"voxel_mm": float(self.pixel_mm), "slice_mm": float(self.slice_interval_mm),
                            "slice_thickness_mm": float(max(self.slice_thickness_mm, row)), "kernel": self.kernel},
            patient={"body": self.body, "medium": self.medium},
        )

    def finer(self) -> Scanner:
        """The same protocol on a detector with elements (and rows) half as wide, half the pixel and half the
        slice thickness: the super-resolution reference."""
        s = self.scanner()
        g, r = s.geometry, s.reconstruction
        return s.replace(
            name=f"{self.detector}+protocol/finer",
            geometry={"pixel_u_mm": g.pixel_u_mm / 2, "pixel_v_mm": g.pixel_v_mm / 2,
                      "detector_cols": g.detector_cols * 2, "detector_rows": g.detector_rows * 2},
            detector={"blur_fwhm_mm": s.detector.blur_fwhm_mm / 2},
            reconstruction={"voxel_mm": r.voxel_mm / 2, "slice_mm": r.slice_mm / 2,
                            "slice_thickness_mm": max(r.slice_thickness_mm / 2, g.pixel_v_iso_mm / 2)},
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Protocol:
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})


def preset_protocol(preset: str, mas: float | None = None, body: str | None = None,
                    medium: str | None = None) -> Protocol:
    """A preset's own protocol (its pixel, slice, kernel, mAs, kVp and ``[patient]`` table), with ``mas``,
    ``body`` and ``medium`` overriding it when given."""
    s = load_scanner(preset)
    r = s.reconstruction
    if mas is not None and not (math.isfinite(mas) and mas > 0):
        raise ParameterError("mas", f"must be a positive dose in mAs, got {mas}")
    return Protocol(s.name, r.voxel_mm, r.slice_thickness_mm, r.kernel, float(mas or s.exposure.mas), s.source.kvp,
                    body or s.patient.body, medium or s.patient.medium, slice_interval_mm=r.slice_mm)


def random_protocol(rng: np.random.Generator, ranges: ProtocolRanges | None = None) -> Protocol:
    """One protocol drawn from ``ranges`` (default :class:`ProtocolRanges`): uniform pixel, slice thickness
    and kVp; log-uniform mAs; uniform choices of detector, kernel, body and medium. Values are rounded to
    what a console offers (pixel 0.001 mm, slice 0.01 mm, 0.1 mAs, 1 kV)."""
    r = ranges or ProtocolRanges()
    detector = str(rng.choice(r.detectors))
    row = load_scanner(detector).geometry.pixel_v_iso_mm
    pixel = round(float(rng.uniform(*r.pixel_mm)), 3)
    thickness = round(max(float(rng.uniform(*r.slice_thickness_mm)), row), 2)
    kernel = str(rng.choice(r.kernels))
    mas = round(float(np.exp(rng.uniform(np.log(r.mas[0]), np.log(r.mas[1])))), 1)
    kvp = float(round(rng.uniform(*r.kvp)))
    body = str(rng.choice(r.bodies))
    medium = str(rng.choice(r.media))
    return Protocol(detector, pixel, thickness, kernel, mas, kvp, body, medium)


__all__ = ["KERNEL_CLASSES", "Protocol", "ProtocolRanges", "preset_protocol", "random_protocol"]
