"""Volumes of interest (VOIs): cylinders (the vertebra study's 15 mm × 5 mm), boxes and mask files.

A voxel is inside a VOI when its *centre* is inside the shape. Positions are world coordinates in mm,
(z, y, x), with the volume's origin (the centre of voxel [0, 0, 0]).

Spec strings (CLI ``--voi``):

* ``cylinder:d=15,h=5[,center=z,y,x][,axis=z|y|x|dz,dy,dx]`` — diameter and height in mm; centre in world mm
  (default: the volume's centre); axis a named axis or a direction vector (z, y, x);
* ``box:z0,y0,x0,z1,y1,x1`` — the corners, world mm;
* ``auto`` or ``auto:closing=MM`` — the specimen's envelope (:func:`specimen_envelope`: the bone closed by a
  ball of MM, default 1 mm, holes filled), fitted by :func:`~trabecula.morphometry.measure.measure` after
  segmentation, so a specimen scanned in air or saline is measured in itself;
* a path to a mask volume on the same grid (nonzero = inside; a mask must hold exactly two values);
* ``PATH:label=N[,M…]`` — the voxels of an integer label map holding label N (or any of N, M, …), e.g. a
  TotalSegmentator vertebra (``labels.nii.gz:label=32``).

A VOI reaching outside the image is an error (its volume would be wrong); so is an empty VOI.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from trabecula.errors import InputError, ParameterError
from trabecula.io import read_volume
from trabecula.volume import Volume, as_spacing

_AXES = {"z": (1.0, 0.0, 0.0), "y": (0.0, 1.0, 0.0), "x": (0.0, 0.0, 1.0)}
#: The vertebra study's cylindrical VOI: diameter and height in mm.
STUDY_CYLINDER_MM = (15.0, 5.0)


def _vec3(v: Any, name: str) -> np.ndarray:
    try:
        a = np.asarray(v, dtype=float).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise ParameterError(name, f"expected three numbers (z, y, x), got {v!r}") from exc
    if a.shape != (3,) or not np.all(np.isfinite(a)):
        raise ParameterError(name, f"expected three finite numbers (z, y, x), got {v!r}")
    return a


def _grid(shape: Sequence[int], spacing: float | Sequence[float], origin: Sequence[float]):
    sp = np.asarray(as_spacing(spacing))
    org = _vec3(origin, "origin")
    shape = tuple(int(n) for n in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ParameterError("shape", f"expected three positive sizes, got {shape}")
    coords = [org[i] + sp[i] * np.arange(shape[i]) for i in range(3)]
    return shape, sp, org, coords


def _grid_of(shape: Sequence[int] | Volume, spacing: float | Sequence[float] | None,
             origin: Sequence[float] | None) -> tuple[Sequence[int], float | Sequence[float], Sequence[float]]:
    """``(shape, spacing, origin)`` of a Volume, or of a shape with its spacing (required) and origin (default 0)."""
    if isinstance(shape, Volume):
        for name, value in (("spacing", spacing), ("origin", origin)):
            if value is not None:
                raise ParameterError(name, "a Volume carries its own grid; pass spacing and origin with a shape only")
        return shape.shape, shape.spacing, shape.origin
    if spacing is None:
        raise ParameterError("spacing", "a shape needs its voxel size in mm (spacing)")
    return shape, spacing, (0.0, 0.0, 0.0) if origin is None else origin


def _check_inside(lo_mm: np.ndarray, hi_mm: np.ndarray, org: np.ndarray, sp: np.ndarray, shape, what: str) -> None:
    img_lo = org - sp / 2
    img_hi = org + sp * (np.asarray(shape) - 0.5)
    tol = 1e-6 + 1e-9 * np.abs(img_hi)
    if np.any(hi_mm < img_lo) or np.any(lo_mm > img_hi):
        raise ParameterError("voi", f"the {what} lies outside the image (image spans {_fmt(img_lo)} to {_fmt(img_hi)} mm, "
                                    f"VOI {_fmt(lo_mm)} to {_fmt(hi_mm)} mm)")
    if np.any(lo_mm < img_lo - tol) or np.any(hi_mm > img_hi + tol):
        over = np.maximum(img_lo - lo_mm, hi_mm - img_hi).max()
        raise ParameterError("voi", f"the {what} extends {over:.3g} mm beyond the image (image spans {_fmt(img_lo)} to "
                                    f"{_fmt(img_hi)} mm, VOI {_fmt(lo_mm)} to {_fmt(hi_mm)} mm); move or shrink it")


def _fmt(v: np.ndarray) -> str:
    return "(" + ", ".join(f"{x:.4g}" for x in v) + ")"


def cylinder_voi(
    shape: Sequence[int] | Volume,
    spacing: float | Sequence[float] | None = None,
    diameter_mm: float = STUDY_CYLINDER_MM[0],
    height_mm: float = STUDY_CYLINDER_MM[1],
    center_mm: Sequence[float] | None = None,
    axis: str | Sequence[float] = "z",
    origin: Sequence[float] | None = None,
) -> np.ndarray:
    """Boolean mask of the voxels whose centres lie in a cylinder.

    Parameters
    ----------
    shape, spacing, origin : the grid: a :class:`~trabecula.volume.Volume` (its shape, spacing and origin;
        ``spacing`` and ``origin`` then stay unset), or a shape (z, y, x) with its spacing and origin (mm, z/y/x;
        origin default 0)
    diameter_mm, height_mm : cylinder size in mm; default the study's 15 mm × 5 mm
    center_mm : world position of the cylinder's centre (z, y, x); default the volume's centre
    axis : "z", "y", "x" or a direction vector (z, y, x)

    Raises ParameterError when the cylinder reaches outside the image or holds no voxel centre.
    """
    shape, spacing, origin = _grid_of(shape, spacing, origin)
    shape, sp, org, coords = _grid(shape, spacing, origin)
    for name, val in (("diameter_mm", diameter_mm), ("height_mm", height_mm)):
        if not (np.isfinite(val) and val > 0):
            raise ParameterError(name, f"must be a positive length in mm, got {val!r}")
    centre = org + sp * (np.asarray(shape) - 1) / 2 if center_mm is None else _vec3(center_mm, "center_mm")
    if isinstance(axis, str):
        if axis.lower() not in _AXES:
            raise ParameterError("axis", f"use z, y, x or a vector dz,dy,dx; got {axis!r}")
        u = np.asarray(_AXES[axis.lower()])
    else:
        u = _vec3(axis, "axis")
        n = np.linalg.norm(u)
        if n == 0:
            raise ParameterError("axis", "the axis vector is zero")
        u = u / n
    r, h2 = diameter_mm / 2.0, height_mm / 2.0
    # bounding box of the cylinder, for the outside-the-image check
    ext = np.array([h2 * abs(u[i]) + r * np.sqrt(max(0.0, 1.0 - u[i] ** 2)) for i in range(3)])
    _check_inside(centre - ext, centre + ext, org, sp, shape, "cylinder")
    dz = (coords[0] - centre[0])[:, None, None]
    dy = (coords[1] - centre[1])[None, :, None]
    dx = (coords[2] - centre[2])[None, None, :]
    along = dz * u[0] + dy * u[1] + dx * u[2]
    radial2 = dz * dz + dy * dy + dx * dx - along * along
    mask = (np.abs(along) <= h2 + 1e-9) & (radial2 <= r * r + 1e-9)
    if not mask.any():
        raise ParameterError("voi", "the cylinder holds no voxel centre (too small for the voxel size?)")
    return mask


def study_cylinder_vois(
    shape: Sequence[int],
    spacing: float | Sequence[float],
    origin: Sequence[float] = (0.0, 0.0, 0.0),
    diameter_mm: float = STUDY_CYLINDER_MM[0],
    height_mm: float = STUDY_CYLINDER_MM[1],
) -> list[tuple[str, np.ndarray]]:
    """The study's cylindrical VOIs (axis z) on a grid, as ``(description, boolean mask)``.

    Diameter ``min(diameter_mm, in-plane field)`` and height ``min(height_mm, field height)`` — the study's
    15 mm × 5 mm wherever it fits, otherwise the largest cylinder that does (the field is the image's extent,
    voxel edges included, as :func:`cylinder_voi` checks it). As many such cylinders as the height holds,
    stacked and touching, centred on the volume's centre (the study measured two per vertebra; a 15 mm
    region holds three); one central cylinder when it holds one. Masks from :func:`cylinder_voi` (voxel centres inside the cylinder); the description's
    ``z`` is the cylinder centre's world position.
    """
    sp = np.asarray(as_spacing(spacing))
    org = _vec3(origin, "origin")
    ext = np.asarray(shape, float) * sp
    d = min(float(diameter_mm), float(ext[1]), float(ext[2]))
    h = min(float(height_mm), float(ext[0]))
    centre = org + sp * (np.asarray(shape, float) - 1) / 2
    n = max(1, int(ext[0] / h + 1e-9))
    offsets = tuple((k - (n - 1) / 2) * h for k in range(n))
    out = []
    for dz in offsets:
        c = (centre[0] + dz, centre[1], centre[2])
        mask = cylinder_voi(shape, spacing, d, h, center_mm=c, origin=origin)
        out.append((f"cylinder d={d:g} mm h={h:g} mm at z={c[0]:.2f} mm", mask))
    return out


def study_cylinder_spec(vol, region: tuple[np.ndarray, np.ndarray] | None = None,
                        diameter_mm: float = STUDY_CYLINDER_MM[0], height_mm: float = STUDY_CYLINDER_MM[1]) -> str:
    """A ``cylinder:`` VOI spec (axis z) for :func:`voi_from_spec`: the study's cylinder scaled to fit.

    With ``region`` (world-mm lower and upper corners, z/y/x — e.g. a phantom's trabecular core) the cylinder
    is centred in the region, its diameter at most half the region's smaller in-plane size and its height at
    most half the region's height; otherwise it is centred in the volume, at most 80 % of its cross-section
    and height. Never narrower than 4 in-plane voxels or lower than 2 slices. Sizes are written to 4
    significant digits, the centre to 5.
    """
    if region is not None:
        lo, hi = region
        ext = hi - lo
        centre = (lo + hi) / 2
        d = min(diameter_mm, 0.5 * float(min(ext[1], ext[2])))
        h = min(height_mm, 0.5 * float(ext[0]))
    else:
        ez, ey, ex = vol.extent_mm
        centre = None
        d = min(diameter_mm, 0.8 * min(ey, ex))
        h = min(height_mm, 0.8 * ez)
    d = max(d, 4 * max(vol.spacing[1:]))  # at least a few voxels across
    h = max(h, 2 * vol.spacing[0])
    spec = f"cylinder:d={d:.4g},h={h:.4g}"
    if centre is not None:
        spec += ",center=" + ",".join(f"{c:.5g}" for c in centre)
    return spec


def box_voi(
    shape: Sequence[int],
    spacing: float | Sequence[float],
    lower_mm: Sequence[float],
    upper_mm: Sequence[float],
    origin: Sequence[float] = (0.0, 0.0, 0.0),
) -> np.ndarray:
    """Boolean mask of the voxels whose centres lie in the world box ``[lower_mm, upper_mm]`` (z, y, x)."""
    shape, sp, org, coords = _grid(shape, spacing, origin)
    lo, hi = _vec3(lower_mm, "lower_mm"), _vec3(upper_mm, "upper_mm")
    if np.any(hi <= lo):
        raise ParameterError("voi", f"box upper corner {_fmt(hi)} must exceed the lower {_fmt(lo)} on every axis")
    _check_inside(lo, hi, org, sp, shape, "box")
    ins = [(c >= lo[i] - 1e-9) & (c <= hi[i] + 1e-9) for i, c in enumerate(coords)]
    mask = ins[0][:, None, None] & ins[1][None, :, None] & ins[2][None, None, :]
    if not mask.any():
        raise ParameterError("voi", "the box holds no voxel centre")
    return mask


def _parse_numbers(text: str, n: int, name: str) -> list[float]:
    parts = [p for p in text.replace(" ", "").split(",") if p != ""]
    try:
        vals = [float(p) for p in parts]
    except ValueError as exc:
        raise ParameterError("voi", f"{name}: expected {n} numbers, got {text!r}") from exc
    if len(vals) != n:
        raise ParameterError("voi", f"{name}: expected {n} numbers, got {len(vals)} in {text!r}")
    return vals


def parse_cylinder_spec(spec: str) -> dict[str, Any]:
    """``"cylinder:d=15,h=5,center=1,2,3,axis=z"`` → ``{"diameter_mm": 15, "height_mm": 5, ...}``."""
    body = spec.split(":", 1)[1] if ":" in spec else ""
    out: dict[str, Any] = {}
    key = None
    vals: dict[str, list[str]] = {}
    for tok in [t.strip() for t in body.split(",") if t.strip()]:
        if "=" in tok:
            key, v = tok.split("=", 1)
            key = key.strip().lower()
            vals[key] = [v.strip()]
        elif key is not None:
            vals[key].append(tok)
        else:
            raise ParameterError("voi", f"cylinder spec: expected key=value, got {tok!r} in {spec!r}")
    known = {"d", "h", "center", "centre", "axis"}
    unknown = set(vals) - known
    if unknown:
        raise ParameterError("voi", f"cylinder spec: unknown key(s) {', '.join(sorted(unknown))}; use d, h, center, axis")
    if "d" not in vals or "h" not in vals:
        raise ParameterError("voi", f"cylinder spec needs d=DIAMETER_MM and h=HEIGHT_MM, got {spec!r}")
    out["diameter_mm"] = _parse_numbers(",".join(vals["d"]), 1, "d")[0]
    out["height_mm"] = _parse_numbers(",".join(vals["h"]), 1, "h")[0]
    c = vals.get("center", vals.get("centre"))
    if c is not None:
        out["center_mm"] = _parse_numbers(",".join(c), 3, "center")
    if "axis" in vals:
        a = vals["axis"]
        if len(a) == 1 and a[0].lower() in _AXES:
            out["axis"] = a[0].lower()
        else:
            out["axis"] = _parse_numbers(",".join(a), 3, "axis")
    return out


def voi_from_spec(spec: Any, vol) -> tuple[np.ndarray, str]:
    """A VOI mask on ``vol``'s grid from a spec string, a path, a mask array or a mask Volume.

    Returns ``(mask, description)``.
    """
    if isinstance(spec, Volume):
        return _mask_from_array(spec.numpy(), vol.shape, "mask volume"), "mask volume"
    if isinstance(spec, np.ndarray):
        return _mask_from_array(spec, vol.shape, "mask array"), "mask array"
    if isinstance(spec, os.PathLike):
        spec = os.fspath(spec)
    if not isinstance(spec, str):
        raise ParameterError("voi", f"expected a spec string, a mask path or a mask array, got {type(spec).__name__}")
    text = spec.strip()
    low = text.lower()
    if low.startswith("cylinder"):
        kw = parse_cylinder_spec(text)
        mask = cylinder_voi(vol.shape, vol.spacing, origin=vol.origin, **kw)
        return mask, _describe_cylinder(kw)
    if low.startswith("box"):
        nums = _parse_numbers(text.split(":", 1)[1] if ":" in text else "", 6, "box")
        mask = box_voi(vol.shape, vol.spacing, nums[:3], nums[3:], origin=vol.origin)
        return mask, "box:" + ",".join(f"{v:g}" for v in nums)
    if low == "auto" or low.startswith("auto:"):
        raise ParameterError("voi", "'auto' fits the specimen's envelope from its bone: use measure(voi='auto'), "
                                    "which segments first (or specimen_envelope on a binary volume)")
    path_text, labels = split_label_spec(text)
    p = Path(path_text)
    if not p.exists():
        raise InputError(p, "VOI mask not found (a VOI is cylinder:d=..,h=.., box:z0,y0,x0,z1,y1,x1, auto, a mask file "
                            "or LABELS:label=N[,M])")

    m = read_volume(p, units="label")
    if m.shape != vol.shape:
        raise InputError(p, f"VOI mask shape {m.shape} differs from the volume's {vol.shape}")
    if not np.allclose(m.spacing, vol.spacing, rtol=1e-4):
        import warnings

        warnings.warn(f"{p}: mask spacing {m.spacing} differs from the volume's {vol.spacing}; using the voxel grid",
                      stacklevel=2)
    try:
        if labels is not None:
            return mask_from_labels(m.numpy(), labels, "it"), f"{p.name} label{'s' if len(labels) > 1 else ''} " + \
                ",".join(str(v) for v in labels)
        return _mask_from_array(m.numpy(), vol.shape, "it"), f"mask:{p.name}"
    except ParameterError as exc:
        raise InputError(p, exc.message) from exc


def split_label_spec(text: str) -> tuple[str, list[int] | None]:
    """``"labels.nii.gz:label=3,5"`` → ``("labels.nii.gz", [3, 5])``; a plain path → ``(path, None)``."""
    key = ":label="
    i = text.lower().rfind(key)
    if i < 0:
        return text, None
    body = text[i + len(key):]
    try:
        labels = [int(t) for t in body.replace(" ", "").split(",") if t != ""]
    except ValueError as exc:
        raise ParameterError("voi", f"label=: expected integer label values, got {body!r}") from exc
    if not labels:
        raise ParameterError("voi", f"label=: no label value given in {text!r}")
    return text[:i], labels


def mask_from_labels(a: np.ndarray, labels: list[int], what: str) -> np.ndarray:
    """The voxels of an integer label map holding any of ``labels``; a ParameterError naming the labels the map
    holds when one of them is absent."""
    a = np.asarray(a)
    if not (np.issubdtype(a.dtype, np.integer) or np.all(np.mod(a, 1) == 0)):
        raise ParameterError("voi", f"{what} is not an integer label map (dtype {a.dtype})")
    present = np.unique(a)
    missing = [v for v in labels if v not in present]
    if missing:
        raise ParameterError("voi", f"{what} holds no label {', '.join(map(str, missing))} "
                                    f"(it holds {_shown(present[present != 0])})")
    return np.ascontiguousarray(np.isin(a, labels))


def _shown(vals: np.ndarray, n: int = 8) -> str:
    return ", ".join(f"{v:g}" for v in vals[:n]) + (" …" if len(vals) > n else "")


def specimen_envelope(bone: np.ndarray, spacing, closing_mm: float = 1.0) -> np.ndarray:
    """The specimen's envelope, its periosteal contour: the bone closed by a ball of ``closing_mm`` (so marrow
    spaces narrower than twice that radius are bridged), holes filled (3-D, then slice by slice along each
    axis so a cut end's marrow counts as inside), and the largest component kept. A specimen scanned in air
    or saline is then measured in itself (``measure(voi="auto")``), not in the medium around it.

    The image border counts as outside only for the hole filling; the closing treats structure cut by the
    border as continuing (a core cut from a larger bone keeps its cut faces).
    """
    from scipy import ndimage

    from trabecula.morphometry.threshold import close_mm, largest_component

    b = np.ascontiguousarray(np.asarray(bone) != 0)
    if not b.any():
        raise ParameterError("voi", "auto: no bone to fit an envelope to")
    env = close_mm(b, spacing, closing_mm)
    env = ndimage.binary_fill_holes(env)
    for ax in range(3):
        env = np.moveaxis(np.stack([ndimage.binary_fill_holes(s) for s in np.moveaxis(env, ax, 0)]), 0, ax)
    return largest_component(env)


def parse_auto_spec(text: str) -> float:
    """``"auto"`` → 1.0 mm (the default closing radius); ``"auto:closing=MM"`` → MM."""
    body = text.split(":", 1)[1].strip() if ":" in text else ""
    if not body:
        return 1.0
    if not body.lower().startswith("closing="):
        raise ParameterError("voi", f"auto: expected auto or auto:closing=MM, got {text!r}")
    try:
        r = float(body.split("=", 1)[1])
    except ValueError as exc:
        raise ParameterError("voi", f"auto: closing must be a length in mm, got {body!r}") from exc
    if not (np.isfinite(r) and r > 0):
        raise ParameterError("voi", f"auto: closing must be a positive length in mm, got {r:g}")
    return r


def _mask_from_array(a: np.ndarray, shape, what: str) -> np.ndarray:
    a = np.asarray(a)
    if a.shape != tuple(shape):
        raise ParameterError("voi", f"{what} shape {a.shape} differs from the volume's {tuple(shape)}")
    if a.dtype != bool:
        vals = np.unique(a)
        if len(vals) > 2 or (len(vals) == 2 and vals[0] != 0):
            shown = ", ".join(f"{v:g}" for v in vals[:5]) + (" …" if len(vals) > 5 else "")
            raise ParameterError("voi", f"{what} holds {len(vals)} values ({shown}): a label map? choose the "
                                        "label(s) with PATH:label=N[,M]; a mask has 0 outside and one value inside")
    m = np.ascontiguousarray(a != 0)
    if not m.any():
        raise ParameterError("voi", f"{what} is empty (no nonzero voxel)")
    return m


def _describe_cylinder(kw: dict[str, Any]) -> str:
    s = f"cylinder:d={kw['diameter_mm']:g},h={kw['height_mm']:g}"
    if "center_mm" in kw:
        s += ",center=" + ",".join(f"{v:g}" for v in kw["center_mm"])
    if "axis" in kw:
        a = kw["axis"]
        s += ",axis=" + (a if isinstance(a, str) else ",".join(f"{v:g}" for v in a))
    return s
