"""The input's protocol as an enhancement model sees it, and whether it lies inside the model's training ranges.

A model trained on the twin's randomised protocols (:mod:`trabecula.scanner.protocols`) serves every protocol
inside those ranges, on one canonical grid; outside them it is guessing. :func:`describe_input` states what
the input is:

* in-plane pixel and slice spacing (mm) from the volume's spacing; the slice *thickness* from the DICOM tag
  or the twin's provenance when recorded (else the spacing stands in for it, and says so);
* the kernel class (``hann`` smooth … ``bone`` sharp, :data:`~trabecula.scanner.protocols.KERNEL_CLASSES`)
  from the reconstruction kernel's name (:func:`kernel_class`: Siemens ``B``/``Br``/``Hr``… numbers, GE
  names, the twin's own kernel names);
* the modelled in-plane MTF50 (lp/mm) of that protocol: the scanner twin's transfer model
  (:func:`trabecula.scanner.fast.mtf_model`) for the recorded detector (the conventional ``clinical-mdct``
  when unknown), the pixel, the slice and the kernel class;
* the noise SD (HU), measured on the image: the wavelet median-absolute-deviation estimator of Donoho &
  Johnstone (1994; :func:`skimage.restoration.estimate_sigma`) on the central slices, on the model's
  canonical grid (the same estimator, on the same grid, gives the training range). CT noise is correlated,
  so this reads below the pixel SD; it is a like-for-like yardstick, not the pixel SD.

:func:`out_of_range` compares that with a model manifest's ``training_ranges`` (written by
:func:`trabecula.enhance.bundle.export_bundle` from the pairs it learnt from) and names every value outside.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from trabecula.enhance.catalog import ranges_line
from trabecula.scanner.resolution import kernel_class, modelled_mtf50
from trabecula.volume import Volume

#: relative tolerance on the pixel and slice ranges (a console's rounding)
RANGE_RTOL = 0.05
#: the noise yardstick may sit this factor outside its training range (the estimator's own scatter)
NOISE_MARGIN = 1.25


def noise_yardstick(arr: np.ndarray, max_slices: int = 5) -> float:
    """Wavelet-MAD noise estimate (HU) of the central ``max_slices`` slices of a (z, y, x) HU stack
    (Donoho & Johnstone 1994, :func:`skimage.restoration.estimate_sigma`), their median."""
    from skimage.restoration import estimate_sigma

    a = np.asarray(arr, np.float32)
    z0 = max(0, a.shape[0] // 2 - max_slices // 2)
    sl = a[z0:z0 + max_slices]
    return float(np.median([estimate_sigma(s) for s in sl]))


@dataclass
class InputProtocol:
    """What :func:`describe_input` could tell of an input; ``None`` where it could not."""

    pixel_mm: float
    slice_spacing_mm: float
    slice_thickness_mm: float | None
    kernel: str | None
    kernel_class: str | None
    detector: str
    mtf50_lp_mm: float | None
    noise_sd_hu: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        """One line for the user: every value with its unit and where it came from."""
        th = (f"{self.slice_thickness_mm:g} mm slices" if self.slice_thickness_mm
              else f"slice thickness unknown (spacing {self.slice_spacing_mm:g} mm)")
        kern = f"kernel {self.kernel} ({self.kernel_class or 'class unknown'})" if self.kernel else "kernel unknown"
        mtf = f"modelled MTF50 {self.mtf50_lp_mm:.2f} lp/mm" if self.mtf50_lp_mm else "MTF50 unknown"
        noise = f"noise {self.noise_sd_hu:.1f} HU (wavelet-MAD)" if self.noise_sd_hu is not None else "noise not measured"
        return f"input protocol: {self.pixel_mm:g} mm pixels, {th}, {kern}, {self.detector} detector, {mtf}, {noise}"


def protocol_line(d: dict[str, Any]) -> str:
    """:meth:`InputProtocol.line` of a recorded protocol (``provenance.extra["enhance_input_protocol"]``)."""
    return InputProtocol(**d).line()


def _detector_of(volume: Volume) -> str:
    name = (volume.provenance.scanner or "").split("+")[0]
    return name if name in ("clinical-mdct", "study-mdct", "clinical-uhr", "uhr-extremity") else "clinical-mdct"


def describe_input(volume: Volume, noise_on: np.ndarray | None = None) -> InputProtocol:
    """The protocol of a clinical HU ``volume`` (see the module docstring); ``noise_on`` is the array the
    noise yardstick is measured on (the input on the model's canonical grid), default the volume itself."""
    extra = volume.provenance.extra or {}
    pixel = float(np.sqrt(volume.spacing[1] * volume.spacing[2]))
    thickness = extra.get("slice_thickness_mm")
    thickness = float(thickness) if thickness else None
    kernel = extra.get("kernel") or None
    kclass = kernel_class(kernel)
    detector = _detector_of(volume)
    slice_for_mtf = thickness or float(volume.spacing[0])
    mtf50 = modelled_mtf50(detector, pixel, slice_for_mtf, kclass) if kclass else None
    arr = volume.numpy() if noise_on is None else noise_on
    return InputProtocol(pixel, float(volume.spacing[0]), thickness, kernel, kclass, detector, mtf50,
                         noise_yardstick(arr))


def _outside(value: float, lo: float, hi: float, rtol: float) -> bool:
    return not (lo * (1 - rtol) <= value <= hi * (1 + rtol))


def out_of_range(p: InputProtocol, ranges: dict[str, Any]) -> list[str]:
    """Each way the input ``p`` lies outside a manifest's ``training_ranges``, as a short phrase (empty: inside).
    Values that could not be told (an unknown kernel) are not held against the input."""
    bad: list[str] = []
    if "pixel_mm" in ranges and _outside(p.pixel_mm, *ranges["pixel_mm"], RANGE_RTOL):
        bad.append(f"pixel {p.pixel_mm:.3g} mm (trained {ranges['pixel_mm'][0]:g}–{ranges['pixel_mm'][1]:g} mm)")
    thick = p.slice_thickness_mm or p.slice_spacing_mm
    if "slice_thickness_mm" in ranges and _outside(thick, *ranges["slice_thickness_mm"], RANGE_RTOL):
        what = "slice" if p.slice_thickness_mm else "slice spacing (thickness unknown)"
        lo, hi = ranges["slice_thickness_mm"]
        bad.append(f"{what} {thick:.3g} mm (trained {lo:g}–{hi:g} mm)")
    if p.kernel_class and "kernels" in ranges and p.kernel_class not in ranges["kernels"]:
        bad.append(f"kernel class {p.kernel_class} (trained {', '.join(ranges['kernels'])})")
    if p.mtf50_lp_mm and "mtf50_lp_mm" in ranges and _outside(p.mtf50_lp_mm, *ranges["mtf50_lp_mm"], RANGE_RTOL):
        lo, hi = ranges["mtf50_lp_mm"]
        bad.append(f"modelled MTF50 {p.mtf50_lp_mm:.2f} lp/mm (trained {lo:.2f}–{hi:.2f})")
    # the yardstick is read on the canonical grid: for an input whose pixel or slice lies outside the ranges,
    # the resampling itself moves it (a 1 mm pixel up-sampled 5× reads a fraction of its noise), so it is
    # judged only where the grid fits
    if p.noise_sd_hu is not None and "noise_sd_hu" in ranges and not bad:
        lo, hi = ranges["noise_sd_hu"]
        if not (lo / NOISE_MARGIN <= p.noise_sd_hu <= hi * NOISE_MARGIN):
            bad.append(f"noise {p.noise_sd_hu:.1f} HU (trained {lo:.1f}–{hi:.1f} HU, ×{NOISE_MARGIN:g} margin)")
    return bad


def training_ranges(pairs_manifest: dict[str, Any], noise_values: list[float]) -> dict[str, Any]:
    """A model's training ranges from its pairs' manifest: the protocol ranges drawn from (or the fixed
    protocol's values), the modelled MTF50 and the measured noise yardstick over the training specimens."""
    from trabecula.scanner.protocols import ProtocolRanges

    recs = [r for r in pairs_manifest.get("specimens", []) if r.get("protocol") and r.get("split") in ("train", "mixed")]
    out: dict[str, Any] = {}
    if pairs_manifest.get("protocol_ranges"):
        out.update(ProtocolRanges.from_dict(pairs_manifest["protocol_ranges"]).to_dict())
    elif recs:
        protos = [r["protocol"] for r in recs]
        out.update({"detectors": sorted({p["detector"] for p in protos}),
                    "pixel_mm": [min(p["pixel_mm"] for p in protos), max(p["pixel_mm"] for p in protos)],
                    "slice_thickness_mm": [min(p["slice_thickness_mm"] for p in protos),
                                           max(p["slice_thickness_mm"] for p in protos)],
                    "kernels": sorted({p["kernel"] for p in protos})})
    if recs:
        m50 = [modelled_mtf50(p["detector"], p["pixel_mm"], p["slice_thickness_mm"], p["kernel"])
               for p in (r["protocol"] for r in recs)]
        out["mtf50_lp_mm"] = [round(min(m50), 3), round(max(m50), 3)]
    finite = [v for v in noise_values if math.isfinite(v)]
    if finite:
        out["noise_sd_hu"] = [round(min(finite), 2), round(max(finite), 2)]
    return out


__all__ = ["InputProtocol", "describe_input", "kernel_class", "modelled_mtf50", "noise_yardstick", "out_of_range",
           "protocol_line", "ranges_line", "training_ranges"]
