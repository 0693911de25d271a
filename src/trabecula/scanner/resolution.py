"""What a scan can resolve: the kernel's sharpness class, the modelled MTF50 of a protocol and the scan's
spatial resolution (FWHM) as far as its provenance tells it.

The resolution of a scan is stated as the full width at half maximum (FWHM, mm) of its point-spread function:

* in-plane, from the modelled MTF50 of the scan's protocol (the twin's transfer model,
  :func:`trabecula.scanner.fast.mtf_model`), converted as for a Gaussian PSF,
  ``FWHM = 2·sqrt(2 ln 2)·σ`` with ``MTF(f) = exp(−2π²σ²f²)``, i.e. ``FWHM = 0.4413 / MTF50``;
* along z, the slice thickness (by definition the FWHM of the slice sensitivity profile; IEC 61223-3-5).

A twin scan (provenance scanner = a preset) uses its preset; a DICOM series its kernel name (class by
:func:`kernel_class`) on a conventional MDCT detector. Where neither is known the resolution is unknown (None).

References
----------
IEC 61223-3-5 (2019) Evaluation and routine testing in medical imaging departments — CT: slice thickness as
the FWHM of the sensitivity profile. Boone JM (2001) Determination of the presampled MTF in computed
tomography. Med Phys 28:356–360.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from trabecula.scanner.config import PRESETS, load_scanner
from trabecula.scanner.protocols import KERNEL_CLASSES, Protocol

#: FWHM of a Gaussian PSF per 1/MTF50: 2·sqrt(2 ln 2)·sqrt(ln 2 / 2) / π
FWHM_PER_INVERSE_MTF50 = 2.0 * math.sqrt(2.0 * math.log(2.0)) * math.sqrt(math.log(2.0) / 2.0) / math.pi

#: GE / Philips / Canon kernel names and the class they belong to (smooth → sharp)
_NAMED_KERNELS = {"soft": "hann", "smooth": "hann", "standard": "standard", "std": "standard", "detail": "shepp-logan",
                  "lung": "shepp-logan", "chest": "shepp-logan", "sharp": "shepp-logan", "bone": "bone",
                  "boneplus": "bone", "edge": "bone", "ramp": "bone"}

def kernel_class(name: str | None) -> str | None:
    """The smooth-to-sharp class of a reconstruction kernel's name, or None when it cannot be told.

    The twin's kernels (``hann``, ``standard``, ``shepp-logan``, ``bone``; ``ramp`` counts as ``bone``) are
    their own class. Siemens names carry a sharpness number (``B30f``, ``Br38f``, ``Hr64``, ``Ur77u``):
    ≤ 30 ``hann``, 31–49 ``standard``, 50–64 ``shepp-logan``, ≥ 65 ``bone``. GE-style words (``SOFT``,
    ``STANDARD``, ``DETAIL``, ``LUNG``, ``BONE``, ``BONEPLUS``, ``EDGE``) by their meaning. Other vendors'
    numbered kernels (Canon ``FC``, Philips letters) are not on one scale: None.
    """
    if not name:
        return None
    text = str(name).strip().lower()
    if text in KERNEL_CLASSES:
        return text
    word = re.sub(r"[^a-z]", "", text.split("\\")[0])
    if word in _NAMED_KERNELS:
        return _NAMED_KERNELS[word]
    m = re.match(r"^(?:b|br|bf|bv|hr|hf|ur|qr|i|j|t|d|h|u|q)[a-z]?(\d{2})", text)
    if m:
        n = int(m.group(1))
        return "hann" if n <= 30 else "standard" if n <= 49 else "shepp-logan" if n <= 64 else "bone"
    return None


def modelled_mtf50(detector: str, pixel_mm: float, slice_mm: float, kernel: str) -> float:
    """In-plane MTF50 (lp/mm) of a protocol by the scanner twin's transfer model (first crossing of 0.5)."""
    return _mtf50(Protocol(detector, float(pixel_mm), float(slice_mm), kernel, 100.0, 120.0).scanner(), "xy")


def _mtf50(scanner, axis: str = "xy") -> float:
    """The first crossing of 0.5 by a scanner's modelled MTF (lp/mm)."""
    from trabecula.scanner.fast import mtf_model

    f = np.linspace(0.0, 40.0, 16001)
    m = mtf_model(scanner, f, axis)
    below = np.nonzero(m < 0.5)[0]
    if not len(below):
        return float(f[-1])
    i = int(below[0])
    return float(f[i - 1] + (0.5 - m[i - 1]) * (f[i] - f[i - 1]) / (m[i] - m[i - 1]))


def fwhm_from_mtf50(mtf50_lp_mm: float) -> float:
    """FWHM (mm) of the Gaussian PSF with this MTF50 (lp/mm): ``0.4413 / MTF50``."""
    return FWHM_PER_INVERSE_MTF50 / float(mtf50_lp_mm)


@dataclass
class ScanResolution:
    """A scan's spatial resolution as far as it is known: FWHM in-plane and along z (mm; None = unknown),
    ``resolution_mm`` the coarser of the two known ones, and where the numbers came from."""

    in_plane_fwhm_mm: float | None
    slice_fwhm_mm: float | None
    source: str

    @property
    def resolution_mm(self) -> float | None:
        known = [v for v in (self.in_plane_fwhm_mm, self.slice_fwhm_mm) if v]
        return max(known) if known else None


def scan_resolution(extra: dict[str, Any], scanner_name: str | None, pixel_mm: float) -> ScanResolution:
    """The resolution of a scan from its provenance (``extra``: ``slice_thickness_mm``, ``kernel``; the
    scanner's name) and its in-plane pixel (mm); see the module docstring."""
    thickness = extra.get("slice_thickness_mm")
    thickness = float(thickness) if thickness else None
    name = (scanner_name or "").split("+")[0].strip()
    if name in PRESETS:
        s = load_scanner(name)
        fwhm = fwhm_from_mtf50(_mtf50(s, "xy"))
        return ScanResolution(fwhm, thickness or float(s.reconstruction.slice_thickness_mm),
                              f"the {name} twin's modelled MTF50 and slice thickness")
    kclass = kernel_class(extra.get("kernel"))
    if kclass is not None:
        detector = "clinical-mdct"
        fwhm = fwhm_from_mtf50(modelled_mtf50(detector, pixel_mm, thickness or pixel_mm, kclass))
        kname = str(extra.get("kernel")).split("\\")[0]  # DICOM multi-valued: Br38f\\3
        return ScanResolution(fwhm, thickness, f"kernel {kname} ({kclass}) modelled on a {detector} "
                                               "detector" + (", DICOM slice thickness" if thickness else ""))
    if thickness:
        return ScanResolution(None, thickness, "slice thickness (in-plane resolution unknown)")
    return ScanResolution(None, None, "unknown")


__all__ = ["FWHM_PER_INVERSE_MTF50", "ScanResolution", "fwhm_from_mtf50", "kernel_class", "modelled_mtf50",
           "scan_resolution"]
