"""Cone-beam forward projection of material maps: path length of every material along every ray.

A phantom is a label volume; for projection it becomes one *fraction map* per material (uint8, 255 = the
voxel is all that material), optionally block-averaged to a projection grid that is still finer than the
detector's sampling (partial-volume averaging far below the scanner's resolution). Each detector element
is sampled by ``oversample × oversample`` rays (aperture integration); a ray's line integral through each
fraction map is its path length (mm) in that material.

Backends: ``numba`` (trabecula's Joseph projector, all materials in one pass, parallel over views × rows)
and ``rtk`` (``rtk.JosephForwardProjectionImageFilter``, one material at a time) — the reference the
numba projector is tested against.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from trabecula.errors import ParameterError
from trabecula.scanner.geometry import ScanGeometry, to_rtk, volume_to_rtk


def sub_coords(geom: ScanGeometry, oversample: int) -> tuple[np.ndarray, np.ndarray]:
    """Detector (u, v) positions (mm) of the oversampled rays: ``oversample`` per element and axis, at the
    centres of equal sub-elements."""
    k = int(oversample)
    off = (np.arange(k) + 0.5) / k - 0.5
    us = (geom.u_coords()[:, None] + off[None, :] * geom.du).ravel()
    vs = (geom.v_coords()[:, None] + off[None, :] * geom.dv).ravel()
    return us, vs


def subset(geom: ScanGeometry, views: slice) -> ScanGeometry:
    return replace(geom, angles=tuple(geom.angles[views]))


def block_fractions(labels: np.ndarray, label_ids: list[int], factor: tuple[int, int, int]) -> np.ndarray:
    """Fraction maps (z, y, x, m) uint8 (255 = full) of each label, block-averaged by ``factor`` (z, y, x)
    and padded by one empty voxel on every side (the projector's zero boundary)."""
    fz, fy, fx = factor
    nz, ny, nx = labels.shape
    pz, py, px = (-nz) % fz, (-ny) % fy, (-nx) % fx
    mz, my, mx = (nz + pz) // fz, (ny + py) // fy, (nx + px) // fx
    out = np.zeros((mz + 2, my + 2, mx + 2, len(label_ids)), np.uint8)
    for m, lab in enumerate(label_ids):
        ind = labels == lab
        if pz or py or px:
            ind = np.pad(ind, ((0, pz), (0, py), (0, px)))
        if fz * fy * fx == 1:
            frac = ind.astype(np.uint8) * 255
        else:
            s = ind.reshape(mz, fz, my, fy, mx, fx).sum(axis=(1, 3, 5), dtype=np.uint32)
            frac = np.rint(s * (255.0 / (fz * fy * fx))).astype(np.uint8)
        out[1:-1, 1:-1, 1:-1, m] = frac
    return out


def forward_project(fractions: np.ndarray, spacing, origin, geom: ScanGeometry, oversample: int = 1,
                    backend: str = "numba", us: np.ndarray | None = None, vs: np.ndarray | None = None) -> np.ndarray:
    """Path lengths (mm) per material: array (views, rows·k, cols·k, m) float32, k = ``oversample``.

    ``fractions`` (z, y, x, m) uint8 (255 = full) or float (1 = full), ``spacing``/``origin`` (mm, z/y/x)
    relative to the isocentre; ``geom`` the scan (including its centre-alignment error). ``us``/``vs``
    (detector mm, equally spaced) replace the default ray positions (:func:`sub_coords`).
    """
    du_, dv_ = sub_coords(geom, oversample)
    us = du_ if us is None else np.asarray(us, float)
    vs = dv_ if vs is None else np.asarray(vs, float)
    nm = fractions.shape[-1]
    scale = 1.0 / 255.0 if fractions.dtype == np.uint8 else 1.0
    if backend == "numba":
        from trabecula.scanner._kernels import joseph_cone

        src, det0, eu, ev = geom.source_and_detector()
        out = np.zeros((geom.n_views, len(vs), len(us), nm), np.float32)
        for g0 in range(0, nm, 4):  # the kernel takes up to four materials per pass
            g1 = min(nm, g0 + 4)
            vol = fractions[..., g0:g1]
            vol = np.ascontiguousarray(vol) if vol.dtype == np.uint8 else np.ascontiguousarray(vol, np.float32)
            part = out if g1 - g0 == nm else np.zeros(out.shape[:-1] + (g1 - g0,), np.float32)
            joseph_cone(vol, np.asarray(origin, float), np.asarray(spacing, float), src, det0, eu, ev, us, vs, part)
            if part is not out:
                out[..., g0:g1] = part
        if scale != 1.0:
            out *= np.float32(scale)
        return out
    if backend == "rtk":
        return _forward_rtk(fractions, spacing, origin, geom, us, vs, scale)
    raise ParameterError("projector", f"unknown projector {backend!r}; use numba or rtk")


def _forward_rtk(fractions, spacing, origin, geom, us, vs, scale) -> np.ndarray:
    import itk
    from itk import RTK as rtk

    ImageType = itk.Image[itk.F, 3]
    rgeom = to_rtk(geom)
    nm = fractions.shape[-1]
    out = np.zeros((geom.n_views, len(vs), len(us), nm), np.float32)
    for m in range(nm):
        vol = volume_to_rtk(fractions[..., m].astype(np.float32) * scale, spacing, origin)
        stack = itk.image_from_array(np.zeros((geom.n_views, len(vs), len(us)), np.float32))
        stack.SetSpacing([float(us[1] - us[0]) if len(us) > 1 else geom.du, float(vs[1] - vs[0]) if len(vs) > 1 else geom.dv, 1.0])
        stack.SetOrigin([float(us[0]), float(vs[0]), 0.0])
        fp = rtk.JosephForwardProjectionImageFilter[ImageType, ImageType].New()
        fp.SetInput(0, stack)
        fp.SetInput(1, vol)
        fp.SetGeometry(rgeom)
        fp.Update()
        out[..., m] = itk.array_from_image(fp.GetOutput())
    return out
