"""OME-Zarr (NGFF 0.5 on Zarr v3): the large-volume format, with a resolution pyramid that napari and other
NGFF viewers open at the right voxel size.

What is written (a Zarr v3 group, ``OUT.ome.zarr``):

* ``s0`` … ``s{n-1}``: the resolution levels, ``s0`` the full volume, each next one halved along every axis
  (odd edges dropped), until the smallest side is below :data:`MIN_PYRAMID_SIDE` voxels or ``levels`` are made.
  Binary and label volumes are downsampled by the mode of each 2×2×2 block (a value that occurs in it; ties to
  the larger value), everything else (HU, grey, attenuation, mm …) by the mean;
* the ``ome`` attributes: NGFF ``multiscales`` with axes ``z, y, x`` of type ``space`` in ``millimeter``; level
  ``k`` has ``scale = spacing · 2**k`` and ``translation`` = the world position (mm) of the centre of its voxel
  [0, 0, 0], so world positions agree between levels and with the source volume;
* the ``trabecula`` attributes: units, spacing, origin and provenance as every trabecula writer stores them, and
  ``all_chunks_written`` — every chunk is stored, all-fill ones included, so a reader tells a missing chunk file
  (a damaged copy) from an empty region.

For results computed block by block in separate processes, :func:`create_ome_zarr` makes the group and returns
the writable level-0 array, and :func:`finish_ome_zarr` builds the lower levels from it, chunk by chunk.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from trabecula import __version__
from trabecula.errors import InputError, ParameterError
from trabecula.io._atomic import _LEFTOVER, check_writable
from trabecula.io._guard import quiet, third_party
from trabecula.io.formats import (
    META_KEY,
    check_chunks_present,
    check_zarr_array,
    chunk_shape,
    chunks_record,
    finish_volume,
    unit_to_mm,
    volume_meta,
)
from trabecula.volume import UNITS, Provenance, Volume, as_spacing

#: the NGFF version written (Zarr v3)
NGFF_VERSION = "0.5"
#: halving stops once the smallest side of a level is below this many voxels (unless ``levels`` is given)
MIN_PYRAMID_SIDE = 64
#: units whose values are categories: downsampled by the mode (never a value the block does not hold)
MODE_UNITS = ("binary", "label")
_AXES = ("z", "y", "x")
_BAD = "malformed OME-Zarr multiscales metadata"


# ------------------------------------------------------------------------------------------- geometry
def pyramid_shapes(shape: Sequence[int], levels: int | None = None) -> list[tuple[int, int, int]]:
    """The shape of each level: halved (rounded down) along every axis until the smallest side is below
    :data:`MIN_PYRAMID_SIDE` voxels, or exactly ``levels`` levels (level 0 included)."""
    shapes = [tuple(int(n) for n in shape)]
    if levels is None:
        while min(shapes[-1]) >= MIN_PYRAMID_SIDE:
            shapes.append(tuple(n // 2 for n in shapes[-1]))
        return shapes  # type: ignore[return-value]
    if isinstance(levels, bool) or not isinstance(levels, int | np.integer) or levels < 1:
        raise ParameterError("--levels", f"must be a whole number ≥ 1 (1: no pyramid), got {levels!r}")
    most = 1 + int(math.floor(math.log2(min(shapes[0]))))
    if levels > most:
        raise ParameterError("--levels", f"{levels} levels would halve the smallest side ({min(shapes[0])} voxels) "
                                         f"below one voxel; at most {most}")
    for _ in range(levels - 1):
        shapes.append(tuple(n // 2 for n in shapes[-1]))
    return shapes  # type: ignore[return-value]


def _level_transform(spacing, origin, k: int) -> list[dict[str, Any]]:
    f = 2**k
    return [{"type": "scale", "scale": [float(s) * f for s in spacing]},
            {"type": "translation", "translation": [float(o) + (f - 1) / 2 * float(s) for o, s in zip(origin, spacing, strict=True)]}]


def _group_name(p: Path) -> str:
    m = _LEFTOVER.fullmatch(p.name)  # written under the atomic writer's temporary name: name the target
    return m.group(2) if m else p.name


def _write_multiscales(group, path: Path, spacing, origin, n_levels: int) -> None:
    with quiet():  # ome_zarr.writer warns about its own deprecated defaults on import
        from ome_zarr.format import FormatV05
        from ome_zarr.writer import write_multiscales_metadata

    datasets = [{"path": f"s{k}", "coordinateTransformations": _level_transform(spacing, origin, k)} for k in range(n_levels)]
    axes = [{"name": a, "type": "space", "unit": "millimeter"} for a in _AXES]
    write_multiscales_metadata(group, datasets, fmt=FormatV05(), axes=axes, name=_group_name(path))


def _new_level(group, name: str, shape, chunks, dtype):
    return group.create_array(name, shape=tuple(shape), chunks=tuple(chunks), dtype=dtype, fill_value=0,
                              config={"write_empty_chunks": True}, dimension_names=list(_AXES))


# ------------------------------------------------------------------------------------------- writing
def create_ome_zarr(path, shape, dtype, spacing, origin, units, chunks, meta=None):
    """Create an OME-Zarr group at ``path`` and return its writable level-0 array (a ``zarr.Array``).

    ``shape`` (z, y, x) voxels, ``dtype`` (integer or floating point), ``spacing`` and ``origin`` in mm (z, y, x),
    ``units`` one of :data:`trabecula.volume.UNITS`, ``chunks`` (z, y, x) voxels (None: about 8 MiB each), ``meta``
    a dict stored with trabecula's attributes (e.g. ``{"provenance": vol.provenance.to_dict()}``).

    Every chunk-aligned region can be written independently, from separate processes: pass them the returned
    array (it pickles, and keeps writing all-fill chunks too) and write ``arr[z0:z1, y0:y1, x0:x1] = block``
    with bounds on multiples of ``chunks``. Then call :func:`finish_ome_zarr`. Until then readers refuse the
    group as unfinished. An existing ``path`` is refused.
    """
    import zarr

    p = check_writable(path, False)
    try:
        shp = tuple(int(n) for n in shape)
    except (TypeError, ValueError) as exc:
        raise ParameterError("shape", f"expected three whole numbers (z, y, x), got {shape!r}") from exc
    if len(shp) != 3 or not all(n >= 1 for n in shp):
        raise ParameterError("shape", f"expected three positive whole numbers (z, y, x), got {shape!r}")
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise ParameterError("dtype", f"not a dtype: {dtype!r}") from exc
    if dt.kind == "b":
        dt = np.dtype(np.uint8)
    if dt.kind not in "iuf" or dt.itemsize > 8:
        raise ParameterError("dtype", f"expected integers or floating point, got {dt}")
    sp = as_spacing(spacing, 3, "spacing")
    try:
        org = tuple(float(o) for o in (origin if np.ndim(origin) else (origin,) * 3))
    except (TypeError, ValueError) as exc:
        raise ParameterError("origin", f"expected three numbers (z, y, x) in mm, got {origin!r}") from exc
    if len(org) != 3 or not all(math.isfinite(o) for o in org):
        raise ParameterError("origin", f"expected three finite numbers (z, y, x) in mm, got {origin!r}")
    if units not in UNITS:
        raise ParameterError("units", f"expected one of {', '.join(UNITS)}, got {units!r}")
    if meta is not None and not isinstance(meta, dict):
        raise ParameterError("meta", f"expected a dict, got {type(meta).__name__}")
    ck = chunk_shape(chunks, shp, dt.itemsize)
    info: dict[str, Any] = {"provenance": Provenance().to_dict(), **(meta or {})}
    info.update({"version": __version__, "units": units, "spacing_mm": list(sp), "origin_mm": list(org),
                 "all_chunks_written": True, "complete": False, "levels": 1, "ngff": NGFF_VERSION})
    p.parent.mkdir(parents=True, exist_ok=True)
    group = zarr.open_group(str(p), mode="w-", zarr_format=3)
    arr = _new_level(group, "s0", shp, ck, dt)
    _write_multiscales(group, p, sp, org, 1)
    group.attrs[META_KEY] = info
    return arr


def _mean2(block: np.ndarray, dtype) -> np.ndarray:
    z, y, x = (n // 2 for n in block.shape)
    m = block.reshape(z, 2, y, 2, x, 2).mean(axis=(1, 3, 5), dtype=np.float64)
    if np.dtype(dtype).kind in "iu":
        m = np.rint(m)
    return m.astype(dtype)


def _mode2(block: np.ndarray) -> np.ndarray:
    z, y, x = (n // 2 for n in block.shape)
    v = np.sort(block.reshape(z, 2, y, 2, x, 2).transpose(0, 2, 4, 1, 3, 5).reshape(z, y, x, 8), axis=-1)
    counts = (v[..., :, None] == v[..., None, :]).sum(axis=-1)
    last_max = 7 - np.argmax(counts[..., ::-1], axis=-1)  # among ties, the larger value (sorted ascending)
    return np.take_along_axis(v, last_max[..., None], axis=-1)[..., 0]


def downsample2(x, units: str):
    """``x`` (a dask array) halved along every axis (odd edges dropped), chunk by chunk: the mode of each
    2×2×2 block for :data:`MODE_UNITS`, else the mean (rounded for integer dtypes)."""
    half = tuple(n // 2 for n in x.shape)
    x = x[tuple(slice(0, 2 * n) for n in half)]
    x = x.rechunk(tuple(max(2, c - c % 2) for c in x.chunksize))
    out_chunks = tuple(tuple(c // 2 for c in cs) for cs in x.chunks)
    if units in MODE_UNITS:
        return x.map_blocks(_mode2, chunks=out_chunks, dtype=x.dtype)
    return x.map_blocks(_mean2, x.dtype, chunks=out_chunks, dtype=x.dtype)


def _open_own(path) -> tuple[Path, Any, dict]:
    import zarr

    p = Path(path)
    if not p.is_dir():
        raise InputError(p, "no such OME-Zarr folder")
    with third_party(p, "not a readable Zarr group"):
        group = zarr.open_group(str(p), mode="r+")
        info = group.attrs.get(META_KEY)
    if not isinstance(info, dict) or "complete" not in info or "s0" not in group:
        raise InputError(p, "not an OME-Zarr made by create_ome_zarr (no trabecula record)")
    return p, group, dict(info)


def finish_ome_zarr(path, levels=None) -> None:
    """Build the lower pyramid levels of an OME-Zarr made by :func:`create_ome_zarr` from its level 0, chunk by
    chunk (dask), and finalise the metadata (``levels``: the number of levels, level 0 included; None: halve
    until the smallest side is below :data:`MIN_PYRAMID_SIDE`). Refuses a level 0 with a chunk never written.
    Running it again rebuilds the lower levels."""
    import dask.array as da

    p, group, info = _open_own(path)
    s0 = group["s0"]
    check_chunks_present(p, s0, p / "s0", True, "level 0",
                         why="every region of level 0 must be written (through the array create_ome_zarr returned) "
                             "before finish_ome_zarr")
    shapes = pyramid_shapes(s0.shape, levels)
    for name in [k for k in group.array_keys() if k != "s0" and k.startswith("s")]:
        del group[name]
    units = str(info.get("units", "grey"))
    prev = da.from_zarr(s0)
    for k, shp in enumerate(shapes[1:], 1):
        ck = tuple(min(c, n) for c, n in zip(s0.chunks, shp, strict=True))
        arr = _new_level(group, f"s{k}", shp, ck, s0.dtype)
        if all(n > 0 for n in shp):
            da.store(downsample2(prev, units).rechunk(ck), arr, lock=False)
        prev = da.from_zarr(arr)
    _write_multiscales(group, p, info["spacing_mm"], info["origin_mm"], len(shapes))
    info.update({"complete": True, "levels": len(shapes)})
    group.attrs[META_KEY] = info


def write_ome_zarr(vol: Volume, path, chunks=None, levels=None) -> None:
    """Write ``vol`` as OME-Zarr at ``path`` (:func:`create_ome_zarr`, level 0 chunk by chunk — a dask-backed
    volume is never loaded whole —, then :func:`finish_ome_zarr`). :func:`trabecula.io.write_volume` calls it
    under a temporary name for ``.ome.zarr`` outputs."""
    import dask.array as da

    pyramid_shapes(vol.shape, levels)  # refuse a bad --levels before writing anything
    meta = {k: v for k, v in volume_meta(vol).items() if k == "provenance"}
    arr = create_ome_zarr(path, vol.shape, vol.dtype, vol.spacing, vol.origin, vol.units, chunks, meta)
    if vol.is_lazy:
        da.store(vol.data.rechunk(arr.chunks), arr, lock=False)
    else:
        arr[...] = np.asarray(vol.data)
    finish_ome_zarr(path, levels)


# ------------------------------------------------------------------------------------------- reading
def is_zarr_group(path) -> bool:
    """True for a folder holding a Zarr group (v3 ``zarr.json`` of node type group, or v2 ``.zgroup``)."""
    import json

    p = Path(path)
    if (p / ".zgroup").is_file():
        return True
    try:
        with open(p / "zarr.json", encoding="utf-8") as fh:
            doc = json.load(fh)
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and doc.get("node_type") == "group"


def _numbers(v, n: int, p: Path, what: str, positive: bool = False) -> list[float]:
    if not isinstance(v, list) or len(v) != n or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in v):
        raise InputError(p, f"{_BAD}: {what} is not a list of {n} numbers")
    if not all(math.isfinite(x) and (x > 0 or not positive) for x in v):
        raise InputError(p, f"{_BAD}: {what} must be {'positive ' if positive else ''}finite numbers, got {v}"[:300])
    return [float(x) for x in v]


def _compose(ts, n: int, p: Path, where: str, required: bool) -> tuple[list[float], list[float]]:
    """Scale and translation of a list of NGFF coordinate transformations, applied in order."""
    scale, trans = [1.0] * n, [0.0] * n
    if ts is None and not required:
        return scale, trans
    if not isinstance(ts, list) or (required and not ts):
        raise InputError(p, f"{_BAD}: {where} has no coordinateTransformations list")
    for t in ts:
        typ = t.get("type") if isinstance(t, dict) else None
        if typ == "identity":
            continue
        if typ in ("scale", "translation") and "path" in t:
            raise InputError(p, f"{_BAD}: {where} keeps its {typ} in a separate array, which trabecula does not read")
        if typ == "scale":
            s = _numbers(t.get("scale"), n, p, f"{where} scale", positive=True)
            scale, trans = [a * b for a, b in zip(scale, s, strict=True)], [a * b for a, b in zip(trans, s, strict=True)]
        elif typ == "translation":
            trans = [a + b for a, b in zip(trans, _numbers(t.get("translation"), n, p, f"{where} translation"), strict=True)]
        else:
            raise InputError(p, f"{_BAD}: {where} has an unsupported coordinate transformation {typ!r}"[:300])
    return scale, trans


def _multiscales(p: Path):
    """The group, its first multiscale image parsed: space-axis indices, units (mm per unit), datasets with their
    composed (scale, translation) per axis, and trabecula's record (or None)."""
    import zarr

    with third_party(p, "not a readable Zarr group"):
        group = zarr.open_group(str(p), mode="r")
        attrs = dict(group.attrs)
    ome = attrs.get("ome") if isinstance(attrs.get("ome"), dict) else attrs
    ms = ome.get("multiscales")
    if not isinstance(ms, list) or not ms or not isinstance(ms[0], dict):
        raise InputError(p, f"{_BAD}: no 'multiscales' list in the group attributes (not an OME-Zarr image)")
    m = ms[0]
    axes = m.get("axes")
    if not isinstance(axes, list) or not axes:
        raise InputError(p, f"{_BAD}: no 'axes' list")
    axes = [{"name": a} if isinstance(a, str) else a for a in axes]
    if not all(isinstance(a, dict) and isinstance(a.get("name"), str) for a in axes):
        raise InputError(p, f"{_BAD}: every axis needs a name")
    names = [a["name"] for a in axes]
    space = [i for i, a in enumerate(axes) if a.get("type") == "space" or (a.get("type") is None and a["name"] in _AXES)]
    if [names[i] for i in space] != list(_AXES):
        raise InputError(p, f"expected the space axes z, y, x; the image has axes {', '.join(map(str, names))}"[:300])
    datasets = m.get("datasets")
    if not isinstance(datasets, list) or not datasets:
        raise InputError(p, f"{_BAD}: no 'datasets' list")
    n = len(axes)
    glob = _compose(m.get("coordinateTransformations"), n, p, "the multiscale", required=False)
    levels = []
    for k, ds in enumerate(datasets):
        path = ds.get("path") if isinstance(ds, dict) else None
        if not isinstance(path, str) or not path or path.startswith("/") or ".." in path.split("/"):
            raise InputError(p, f"{_BAD}: dataset {k} has no valid 'path'")
        s, t = _compose(ds.get("coordinateTransformations"), n, p, f"dataset {path!r}", required=True)
        scale = [a * b for a, b in zip(s, glob[0], strict=True)]
        trans = [a * b + c for a, b, c in zip(t, glob[0], glob[1], strict=True)]
        levels.append((path, scale, trans))
    units = [axes[i].get("unit") for i in space]
    info = attrs.get(META_KEY)
    return group, space, names, units, levels, info if isinstance(info, dict) else None


def _mm_per_unit(p: Path, units: list) -> tuple[list[float], str | None]:
    """mm per unit for each space axis; the (first) unit converted from, or None for millimetres."""
    factors, converted = [], None
    for name, u in zip(_AXES, units, strict=True):
        if u is None:
            factors.append(float("nan"))
            continue
        f = unit_to_mm(u)
        if f is None:
            raise InputError(p, f"axis {name} has the unit {u!r}, not a length trabecula knows "
                                "(millimeter, micrometer, nanometer, centimeter, meter …)"[:300])
        if f != 1.0 and converted is None:
            converted = str(u)
        factors.append(f)
    return factors, converted


def ome_zarr_levels(path) -> list[dict[str, Any]]:
    """The resolution levels of an OME-Zarr image: ``path`` in the group, ``shape`` (z, y, x) and ``scale_mm``
    (z, y, x) each (for ``trabecula info``)."""
    import zarr

    p = Path(path)
    group, space, _names, units, levels, _info = _multiscales(p)
    factors, _ = _mm_per_unit(p, units)
    out = []
    for path_k, scale, _t in levels:
        with third_party(p, f"level {path_k} is not a readable Zarr array"):
            shape = zarr.open_array(store=group.store, path=f"{group.path}/{path_k}".strip("/"), mode="r").shape
        if len(shape) != len(scale):
            raise InputError(p, f"{_BAD}: level {path_k} has {len(shape)} dimensions, the axes {len(scale)}")
        out.append({"path": path_k, "shape": [int(shape[i]) for i in space],
                    "scale_mm": [scale[i] * (f if f == f else 1.0) for i, f in zip(space, factors, strict=True)]})
    return out


def read_ome_zarr(path, spacing=None, units=None) -> Volume:
    """Open level 0 of an OME-Zarr (NGFF 0.4 or 0.5) image lazily (dask).

    Spacing and origin come from the multiscales metadata (scale and translation of level 0, converted to mm from
    the axes' units with a warning when they are not millimetres); value units and provenance from trabecula's
    record where there is one. Axes other than z, y, x (time, channel) must have length 1. The array metadata and
    the stored chunks are checked before the dask graph is built (:func:`~trabecula.io.formats.check_zarr_array`,
    :func:`~trabecula.io.formats.check_chunks_present`)."""
    import dask.array as da
    import zarr

    p = Path(path)
    group, space, names, ax_units, levels, info = _multiscales(p)
    if info is not None and info.get("complete") is False:
        raise InputError(p, "unfinished OME-Zarr: made by create_ome_zarr but finish_ome_zarr was never run")
    path0, scale, trans = levels[0]
    with third_party(p, f"level {path0} is not a readable Zarr array"):
        z = zarr.open_array(store=group.store, path=f"{group.path}/{path0}".strip("/"), mode="r")
        shape, chunks, dtype = tuple(int(n) for n in z.shape), tuple(int(n) for n in z.chunks), z.dtype
    if len(shape) != len(names):
        raise InputError(p, f"{_BAD}: level {path0} has {len(shape)} dimensions but {len(names)} axes")
    for i, (nm, n) in enumerate(zip(names, shape, strict=True)):
        if i not in space and n != 1:
            raise InputError(p, f"has a {nm} axis of length {n}; trabecula reads one 3-D volume (z, y, x) — "
                                f"save one {nm} at a time")
    check_zarr_array(p, tuple(shape[i] for i in space), tuple(chunks[i] for i in space), dtype)
    check_chunks_present(p, z, p / path0, chunks_record(info), f"level {path0}")
    factors, converted = _mm_per_unit(p, ax_units)
    extra: dict[str, Any] = {"chunks": [chunks[i] for i in space]}
    known = True
    if any(f != f for f in factors):
        factors = [1.0 if f != f else f for f in factors]
        if spacing is None:
            known = False
            warnings.warn(f"{p}: no unit on the space axes; spacing taken as millimetres", stacklevel=2)
    sp = [scale[i] * f for i, f in zip(space, factors, strict=True)]
    origin = [trans[i] * f for i, f in zip(space, factors, strict=True)]
    if converted is not None:
        extra["spacing_unit"] = converted
        warnings.warn(f"{p}: spacing given in {converted}; converted to mm ({', '.join(f'{s:.6g}' for s in sp)})",
                      stacklevel=2)
    with third_party(p, f"level {path0} is not a readable Zarr array"):
        arr = da.from_zarr(z)
    if len(shape) != 3:
        arr = arr[tuple(slice(None) if i in space else 0 for i in range(len(shape)))]
    return finish_volume(arr, spacing or sp, origin, info, p, "ome-zarr", spacing_known=known, units=units,
                         extra=extra)


__all__ = ["MIN_PYRAMID_SIDE", "MODE_UNITS", "NGFF_VERSION", "create_ome_zarr", "downsample2", "finish_ome_zarr",
           "is_zarr_group", "ome_zarr_levels", "pyramid_shapes", "read_ome_zarr", "write_ome_zarr"]
