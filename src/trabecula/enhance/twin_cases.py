"""Known-truth cases for registration and slice pairing, made with the scanner twin.

A specimen (:func:`twin_specimen`: a real DIDSR L1 micro-CT region, or a generated trabecular structure,
inside a margin of marrow and with one corner cut off, so that its shape has no symmetry) is scanned by the
vertebra study's MDCT (``study-mdct``) and by ``micro-ct`` (:func:`twin_scans`, the fast path, in PBS). The
micro-CT is then misaligned by a known transform, its HU offset and scaled, and cropped differently
(:func:`misalign`); :func:`registration_error` measures how far a registration's answer is from the truth.
Used by the tests (``tests/enhance/test_register.py``, ``test_slicepair.py``) and ``bench/bench_register.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from trabecula.enhance.register import resample_moving
from trabecula.io import read_volume
from trabecula.phantom.real import from_binary
from trabecula.phantom.standin import synthetic_structure
from trabecula.scanner.simulate import scan
from trabecula.volume import Volume


def twin_specimen(region: str | Path | None = None, size: int = 120, pad: int = 20, offset: int = 0,
                  seed: int = 0) -> Volume:
    """A binary specimen at 0.05 mm: a ``size``³ crop (from voxel ``offset`` on every axis) of a DIDSR region
    (``region``, binary NRRD at 0.05 mm) or, without one, a generated structure (BV/TV 0.2, seed ``seed``),
    in a ``pad``-voxel margin of marrow, the corner beyond the plane x + y + z = 2.6·size cut off."""
    if region is not None:
        a = np.asarray(read_volume(region, spacing=0.05, units="binary").numpy())
        core = a[offset:offset + size, offset:offset + size, offset:offset + size] > 0
    else:
        core = synthetic_structure((size,) * 3, 0.05, bv_tv=0.2, seed=seed).numpy() > 0
    n = size + 2 * pad
    b = np.zeros((n, n, n), np.uint8)
    b[pad:pad + size, pad:pad + size, pad:pad + size] = core
    zz, yy, xx = np.ogrid[:n, :n, :n]
    b[(zz + yy + xx) > 2.6 * size + 3 * pad] = 0
    return Volume(b, 0.05, units="binary")


def twin_scans(specimen: Volume, seed: int = 0, clinical: str = "study-mdct") -> tuple[Volume, Volume]:
    """The specimen scanned by ``clinical`` and by ``micro-ct`` (fast path, in PBS), both in its world frame."""
    ph = from_binary(specimen)
    c = scan(ph, clinical, mode="fast", seed=seed, medium="pbs", progress=False)
    m = scan(ph, "micro-ct", mode="fast", seed=seed + 2, medium="pbs", progress=False)
    return c, m


def specimen_centre(specimen: Volume) -> np.ndarray:
    """World centre (z, y, x mm) of the specimen's box."""
    return np.asarray(specimen.origin, float) + (np.asarray(specimen.shape) - 1) / 2 * np.asarray(specimen.spacing, float)


def random_rigid(rng: np.random.Generator, centre_zyx: np.ndarray, max_deg: float = 15.0, max_mm: float = 5.0,
                 axis: str = "any") -> sitk.Euler3DTransform:
    """A random rigid transform about ``centre_zyx``: a rotation of at most ``max_deg`` about a random axis
    (``axis="z"``: about the scanner axis only) and a translation of at most ``max_mm`` (uniform in a ball;
    ``axis="z"`` keeps it in-plane plus a z shift)."""
    if axis == "z":
        rot = sitk.Euler3DTransform()
        rot.SetRotation(0.0, 0.0, math.radians(rng.uniform(-max_deg, max_deg)))
    else:
        v = rng.normal(size=3)
        v /= np.linalg.norm(v)
        vr = sitk.VersorRigid3DTransform()
        vr.SetRotation(tuple(v), math.radians(rng.uniform(-max_deg, max_deg)))
        rot = sitk.Euler3DTransform()
        rot.SetMatrix(vr.GetMatrix())
    d = rng.normal(size=3)
    d *= max_mm * rng.uniform() ** (1 / 3) / np.linalg.norm(d)
    rot.SetCenter(tuple(float(c) for c in centre_zyx[::-1]))
    rot.SetTranslation(tuple(float(x) for x in d))
    return rot


@dataclass
class Misaligned:
    """A misaligned micro-CT and its truth: ``truth`` maps the misaligned scan's world points to the
    original (fixed-aligned) frame, so a correct registration's transform is its inverse."""

    moving: Volume
    truth: sitk.Transform
    hu_scale: float
    hu_offset: float


def misalign(micro: Volume, truth: sitk.Transform, rng: np.random.Generator, centre_zyx: np.ndarray,
             hu_scale: tuple[float, float] = (0.8, 1.25), hu_offset: tuple[float, float] = (-200.0, 200.0),
             crop: tuple[float, float] = (0.9, 1.1)) -> Misaligned:
    """``micro`` resampled through ``truth`` (new(p) = micro(truth(p))) onto a different crop — a box of
    ``crop`` × its extent per axis, centred within ±0.4 mm of where the specimen's centre lands — with an
    HU scale and offset drawn from the given ranges."""
    inv = truth.GetInverse()
    c_new = np.asarray(inv.TransformPoint(tuple(float(c) for c in centre_zyx[::-1])))[::-1]
    c_new = c_new + rng.uniform(-0.4, 0.4, 3)
    sp = np.asarray(micro.spacing, float)
    shape = tuple(int(round(n * rng.uniform(*crop))) for n in micro.shape)
    origin = c_new - (np.asarray(shape) - 1) / 2 * sp
    v = resample_moving(micro, truth, shape, sp, origin)
    a, b = float(rng.uniform(*hu_scale)), float(rng.uniform(*hu_offset))
    return Misaligned(v.with_data((v.numpy() * a + b).astype(np.float32), step="HU scale and offset"), truth, a, b)


def registration_error(truth: sitk.Transform, found: sitk.Transform, centre_zyx: np.ndarray,
                       spacing_zyx: tuple[float, float, float], half_extent_mm: float = 3.0) -> dict:
    """How far ``found`` (fixed → misaligned moving) is from the inverse of ``truth``: the residual
    ``truth ∘ found`` should be the identity. Returns the rotation angle (degrees) of its linear part, its
    displacement at the specimen's centre (z, y, x mm, and in voxels of ``spacing_zyx``, the clinical scan's),
    and the largest displacement at the corners of a cube of ``half_extent_mm`` around the centre."""
    c = np.asarray(centre_zyx, float)

    def residual(p_zyx: np.ndarray) -> np.ndarray:
        q = truth.TransformPoint(found.TransformPoint(tuple(float(x) for x in p_zyx[::-1])))
        return np.asarray(q)[::-1] - p_zyx

    d = residual(c)
    eye = np.eye(3)
    h = 0.5
    jac = np.stack([(residual(c + h * eye[k]) - d) / h for k in range(3)], axis=1) + eye
    u, _, vt = np.linalg.svd(jac)
    rot = u @ vt
    angle = math.degrees(math.acos(float(np.clip((np.trace(rot) - 1) / 2, -1, 1))))
    corners = [c + half_extent_mm * np.asarray(s) for s in np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1])).reshape(3, -1).T]
    return {"rotation_deg": angle, "translation_mm": d.tolist(),
            "translation_voxels": (np.abs(d) / np.asarray(spacing_zyx, float)).tolist(),
            "corner_mm": float(max(np.linalg.norm(residual(p)) for p in corners))}
