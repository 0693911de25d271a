"""Image-quality readings of the scanner twin's test scans, shared by the fast-path test and its benchmark:
the edge MTF of a scanned slanted edge and the NPS of a scanned water cylinder, each from a central ROI.

* :func:`edge_mtf`: the three middle slices, a window of ±25 % of the edge width across the edge (y) and
  ±18 % along it (x) about the centre, through :func:`trabecula.quality.mtf.mtf_edge`;
* :func:`central_nps`: the middle half of the slices and a (2·``half``)² pixel square about the centre,
  through :func:`trabecula.quality.nps.nps_2d` (32-pixel ROIs, 50 % overlap, quadratic detrend).

And the HU-scale checks' objects and readings (shared by ``tests/scanner/test_hu_scale.py`` and
``bench/bench_fast_hardening.py``): :func:`rod_centre_hu`, :func:`didsr_crop_in_pbs`, :func:`bone_marrow_cores`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from trabecula.io import read_volume
from trabecula.phantom import LABEL
from trabecula.phantom.real import from_binary
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


def rod_centre_hu(vol: Volume, r_mm: float) -> float:
    """Median HU of the middle slice's central square of half-width ``r_mm`` (a rod on the axis)."""
    a = vol.numpy()
    nz, ny, nx = a.shape
    r = max(1, int(r_mm / vol.spacing[1]))
    return float(np.median(a[nz // 2, ny // 2 - r:ny // 2 + r + 1, nx // 2 - r:nx // 2 + r + 1]))


def didsr_crop_in_pbs(path: str | Path, size_mm: float, height_mm: float, pbs_mm: float = 1.0) -> tuple[Volume, Volume]:
    """The centred ``size_mm`` × ``size_mm`` × ``height_mm`` crop of a DIDSR region (0.05 mm binary) as a phantom,
    bone in marrow, with ``pbs_mm`` of PBS around it in-plane (none above or below, so every slice is
    specimen); (labels, truth on the same grid)."""
    b = read_volume(path, spacing=0.05, units="binary")
    c, half = np.asarray(b.center_mm), np.array([height_mm / 2, size_mm / 2, size_mm / 2])
    ph = from_binary(b.crop_mm(c - half, c + half))
    lab, n = ph.labels, int(round(pbs_mm / ph.labels.spacing[1]))
    pad = ((0, 0), (n, n), (n, n))
    prov = lab.provenance.with_step(f"pbs {pbs_mm:g} mm in-plane")
    prov.extra["materials"] = {**lab.provenance.extra["materials"], str(LABEL["pbs"]): "pbs"}
    origin = (lab.origin[0], lab.origin[1] - n * lab.spacing[1], lab.origin[2] - n * lab.spacing[2])
    return (Volume(np.pad(lab.numpy(), pad, constant_values=LABEL["pbs"]), lab.spacing, origin, "label", prov),
            Volume(np.pad(ph.truth.numpy(), pad), lab.spacing, origin, "binary"))


def bone_marrow_cores(scan: Volume, truth: Volume, margin_mm: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """Masks (on the scan's grid) of bone and marrow two scan voxels inside their boundary (the truth sampled
    at the scan's voxel centres), ``margin_mm`` inside the crop's sides and off its first and last slice."""
    idx = [np.clip(np.round((scan.origin[a] + np.arange(scan.shape[a]) * scan.spacing[a] - truth.origin[a])
                            / truth.spacing[a]).astype(int), 0, truth.shape[a] - 1) for a in range(3)]
    t = truth.numpy()[np.ix_(*idx)].astype(bool)
    inside = np.zeros_like(t)
    m = int(round(margin_mm / scan.spacing[1]))
    inside[1:-1, m:-m, m:-m] = True
    return ndimage.binary_erosion(t, iterations=2) & inside, ndimage.binary_erosion(~t, iterations=2) & inside


__all__ = ["edge_mtf", "central_nps", "rod_centre_hu", "didsr_crop_in_pbs", "bone_marrow_cores"]


def vertebral_body_roi(volume: Volume, labels: Volume | np.ndarray, label_ids=(32, 33), erode_mm: float = 4.0,
                       keep: float = 0.5) -> Volume:
    """The trabecular interior of a labelled vertebral body in a clinical scan, as a box cropped from ``volume``.

    The vertebra labels (``label_ids``; TotalSegmentator's T12/T11 in the shared series) are eroded in-plane
    by ``erode_mm`` (the cortex and the thin posterior arch go), the largest remaining 3-D component is the
    body; its slices whose area is at least ``keep`` of the largest area, and the 10th–90th percentile of its
    voxels in y and x, make the box."""
    lab = labels.numpy() if isinstance(labels, Volume) else np.asarray(labels)
    m = np.isin(lab, label_ids)
    r = [max(1, int(round(erode_mm / s))) for s in volume.spacing[1:]]
    st = np.zeros((1, 2 * r[0] + 1, 2 * r[1] + 1), bool)
    yy, xx = np.ogrid[-r[0]:r[0] + 1, -r[1]:r[1] + 1]
    st[0] = (yy / r[0]) ** 2 + (xx / r[1]) ** 2 <= 1
    er = ndimage.binary_erosion(m, st)
    comp, n = ndimage.label(er)
    if n == 0:
        raise ValueError("no vertebral body left after erosion")
    body = comp == (1 + int(np.argmax(np.bincount(comp.ravel())[1:])))
    area = body.sum(axis=(1, 2))
    zs = np.nonzero(area >= keep * area.max())[0]
    z, y, x = np.nonzero(body[zs.min():zs.max() + 1])
    y0, y1 = np.percentile(y, [10, 90]).astype(int)
    x0, x1 = np.percentile(x, [10, 90]).astype(int)
    return volume.crop((int(zs.min()), int(zs.max()) + 1), (int(y0), int(y1) + 1), (int(x0), int(x1) + 1))
