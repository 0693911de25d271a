"""Image-quality readings of the scanner twin's test scans, shared by the fast-path test and its benchmark:
the edge MTF of a scanned slanted edge and the NPS of a scanned water cylinder, each from a central ROI.

* :func:`edge_mtf`: the three middle slices, a window of ±25 % of the edge width across the edge (y) and
  ±18 % along it (x) about the centre, through :func:`trabecula.quality.mtf.mtf_edge`;
* :func:`central_nps`: the middle half of the slices and a (2·``half``)² pixel square about the centre,
  through :func:`trabecula.quality.nps.nps_2d` (32-pixel ROIs, 50 % overlap, quadratic detrend).
"""

from __future__ import annotations

from trabecula.quality.mtf import mtf_edge
from trabecula.quality.nps import nps_2d
from trabecula.volume import Volume


def edge_mtf(vol: Volume, width_mm: float):
    """MTF of a scan of a slanted edge ``width_mm`` wide (in y and x) centred in the volume."""
    a = vol.numpy()
    nz, n, _ = a.shape
    c, h, hx = n // 2, int(0.25 * width_mm / vol.spacing[1]), int(0.18 * width_mm / vol.spacing[1])
    return mtf_edge(a[nz // 2 - 1: nz // 2 + 2, c - h:c + h, c - hx:c + hx], vol.spacing)


def central_nps(vol: Volume, half: int):
    """NPS of a scan of a uniform object in a central square of ``2 · half`` pixels."""
    a = vol.numpy()
    nz, n, _ = a.shape
    c = n // 2
    sub = a[nz // 4: 3 * nz // 4, c - half:c + half, c - half:c + half]
    return nps_2d(sub, vol.spacing, roi_size=32, overlap=0.5, detrend_mode="poly2")


__all__ = ["edge_mtf", "central_nps"]
