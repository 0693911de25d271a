"""Readers and writers for TIFF (stack file or folder of slices), NIfTI, NRRD, MetaImage and Zarr.

Every writer stores trabecula's metadata (units, origin, provenance) where the format has room for
it, so a write followed by a read gives back the same array, spacing, origin and units:

* TIFF: ImageJ hyperstack metadata (``spacing``, ``unit='mm'``, pixel resolution) plus a JSON
  ``Info`` entry; for dtypes ImageJ cannot hold, tifffile's JSON "shaped" description;
* NIfTI: the affine (converted between NIfTI's RAS and trabecula's LPS) and ``descrip``;
* NRRD / MetaImage: SimpleITK spacing, origin and direction plus metadata keys;
* Zarr: array attributes (OME-Zarr: group attributes, see :mod:`trabecula.io.omezarr`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import re
import warnings
from pathlib import Path

import numpy as np

from trabecula import __version__
from trabecula.errors import InputError, ParameterError
from trabecula.io._guard import DEFLATE_MAX_RATIO, check_claim, finite_triple, third_party, value_dtype
from trabecula.io.orient import to_zyx
from trabecula.volume import UNITS, Provenance, Volume

META_KEY = "trabecula"

_UNIT_TO_MM = {
    "mm": 1.0, "millimeter": 1.0, "millimetre": 1.0,
    "micron": 1e-3, "um": 1e-3, "µm": 1e-3, "\\u00B5m": 1e-3, "microns": 1e-3,
    "cm": 10.0, "m": 1000.0, "inch": 25.4, "in": 25.4, "nm": 1e-6,
    # the NGFF (OME-Zarr) names of lengths (UDUNITS-2)
    "micrometer": 1e-3, "micrometre": 1e-3, "nanometer": 1e-6, "nanometre": 1e-6, "picometer": 1e-9,
    "angstrom": 1e-7, "centimeter": 10.0, "centimetre": 10.0, "decimeter": 100.0, "meter": 1000.0,
    "metre": 1000.0, "foot": 304.8,
}


def unit_to_mm(unit) -> float | None:
    """Millimetres per ``unit`` (``mm``, ``micrometer``, ``µm``, ``nm``, ``cm``, ``inch`` …); None if unknown."""
    return _UNIT_TO_MM.get(str(unit).strip().lower()) if unit else None


def volume_meta(vol: Volume) -> dict:
    return {
        "version": __version__,
        "units": vol.units,
        "spacing_mm": list(vol.spacing),
        "origin_mm": list(vol.origin),
        "provenance": vol.provenance.to_dict(),
    }


def _units_from_meta(meta: dict | None) -> str | None:
    if meta and meta.get("units") in UNITS:
        return str(meta["units"])
    return None


def guess_units(arr: np.ndarray) -> tuple[str, str]:
    """Best guess of units from values alone; returns ``(units, reason)``. Used only when a file says nothing."""
    if arr.dtype == bool:
        return "binary", "boolean values"
    sample = arr if arr.size <= 4_000_000 else arr.ravel()[:: max(1, arr.size // 4_000_000)]
    lo, hi = float(np.min(sample)), float(np.max(sample))
    uniq = np.unique(sample[: 1_000_000]) if sample.size else np.array([])
    if uniq.size <= 2 and set(uniq.tolist()) <= {0, 1, 255}:
        return "binary", "two values (0 and 1 or 255)"
    if (np.issubdtype(arr.dtype, np.integer) and lo >= 0 and 3 <= uniq.size <= 128 and uniq[0] == 0
            and np.count_nonzero(sample == 0) >= 0.25 * sample.size):
        return "label", f"{uniq.size} integer values, mostly 0: a label map"
    if lo <= -900 and hi >= 100:
        return "HU", f"values from {lo:g} to {hi:g} look like Hounsfield units"
    return "grey", "no calibration in the file"


def _check_finite(arr: np.ndarray, path) -> None:
    if np.issubdtype(arr.dtype, np.floating):
        bad = ~np.isfinite(arr)
        n = int(bad.sum())
        if n:
            raise InputError(path, f"contains {n} NaN or infinite voxel value(s) ({n / arr.size:.2%} of the volume)")


def _finite_block(block: np.ndarray, path: str = "", block_info=None) -> np.ndarray:
    """dask ``map_blocks`` body: a chunk with a NaN or infinite value stops the computation with an InputError."""
    if block.dtype.kind == "f" and block.size and not np.isfinite(block).all():
        n = int(np.count_nonzero(~np.isfinite(block)))
        where = ""
        if block_info and 0 in block_info and "array-location" in block_info[0]:
            where = " in the chunk at " + ", ".join(f"{a} {lo}–{hi}" for a, (lo, hi) in zip("zyx", block_info[0]["array-location"], strict=False))
        raise InputError(path, f"contains {n} NaN or infinite voxel value(s){where}")
    return block


def _clean_meta(meta) -> dict | None:
    """trabecula's metadata from a file, kept only where it has the expected shape (a file may hold anything)."""
    if not isinstance(meta, dict):
        return None
    meta = dict(meta)
    prov = meta.get("provenance")
    if prov is not None:
        if not isinstance(prov, dict):
            meta.pop("provenance")
        else:
            prov = {k: v for k, v in prov.items() if k in ("source", "scanner", "steps", "extra")}
            if not isinstance(prov.get("source"), str | None):
                prov.pop("source")
            if not isinstance(prov.get("scanner"), str | None):
                prov.pop("scanner")
            if not isinstance(prov.get("steps", []), list):
                prov.pop("steps")
            if not isinstance(prov.get("extra", {}), dict):
                prov.pop("extra")
            meta["provenance"] = prov
    return meta


def require_voxels(shape, path) -> None:
    """An InputError naming the file when its array has an axis of length 0 (checked before any warning)."""
    if any(int(n) == 0 for n in shape):
        raise InputError(path, f"holds no voxels (shape {tuple(int(n) for n in shape)})")


def finish_volume(arr, spacing, origin, meta, path, fmt, spacing_known=True, units=None, extra=None) -> Volume:
    """Common end of every reader: check values (dtype, finiteness, lazily chunk by chunk for dask arrays),
    geometry (positive finite spacing, finite origin), pick units, build the provenance."""
    require_voxels(arr.shape, path)
    dtype = value_dtype(arr.dtype, path)
    if isinstance(arr, np.ndarray):
        _check_finite(arr, path)
        if arr.dtype != dtype:
            arr = arr.astype(dtype)
    else:  # lazy: the checks run chunk by chunk when the array is computed
        if arr.dtype != dtype:
            arr = arr.astype(dtype)
        if dtype.kind == "f":
            arr = arr.map_blocks(functools.partial(_finite_block, path=str(path)), dtype=dtype)
    spacing = finite_triple(spacing, path, "voxel spacing (mm)", positive=True)
    origin = finite_triple(origin, path, "origin (mm)")
    meta = _clean_meta(meta)
    extra = dict(extra or {})
    extra["format"] = fmt
    prov = Provenance.from_dict(meta.get("provenance")) if meta else Provenance()
    if prov.source is None:
        prov.source = str(path)
    if units is None:
        units = _units_from_meta(meta)
    if units is None:
        if isinstance(arr, np.ndarray):
            units, why = guess_units(arr)
        else:
            units, why = "grey", "no calibration in the file"
        extra["units_guessed"] = why
        warnings.warn(f"{path}: units not stored in the file; taken as {units} ({why}); pass units= / --units to set them", stacklevel=3)
    if not spacing_known:
        extra["spacing_assumed"] = True
    prov = Provenance(prov.source, prov.scanner, [*prov.steps, f"read {fmt} {Path(path).name}"], {**prov.extra, **extra})
    return Volume(arr, spacing, origin, units, prov)


# ---------------------------------------------------------------------------------------------- TIFF
def _natural_key(p: Path):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)]


def _tiff_tags(tif) -> tuple[dict | None, str | None, dict | None, object, object, object]:
    """The raw metadata :func:`_tiff_spacing` needs, read through tifffile (call inside :func:`third_party`)."""
    ij = tif.imagej_metadata
    shaped = tif.shaped_metadata
    sm = shaped[0] if shaped else None
    tags = tif.pages[0].tags
    ru, xr, yr = (tags.get(k) for k in ("ResolutionUnit", "XResolution", "YResolution"))
    return (ij if isinstance(ij, dict) else None, None, sm if isinstance(sm, dict) else None,
            None if ru is None else ru.value, None if xr is None else xr.value, None if yr is None else yr.value)


def _json_dict(text) -> dict | None:
    if isinstance(text, dict):
        return text
    try:
        d = json.loads(text)
    except (TypeError, ValueError, RecursionError):
        return None
    return d if isinstance(d, dict) else None


def _positive(x) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError, OverflowError):
        return None
    return v if np.isfinite(v) and v > 0 else None


def _tiff_spacing(tif, path) -> tuple[tuple[float, float, float] | None, dict | None]:
    """Spacing (mm) from trabecula's own metadata, ImageJ metadata or resolution tags (None where the file has
    none, or none that makes sense), and trabecula's own metadata if present."""
    with third_party(path, "unreadable TIFF metadata"):
        ij, _, sm, ru, xr, yr = _tiff_tags(tif)
    meta = None
    if ij and "Info" in ij:
        info = _json_dict(ij["Info"])
        meta = info.get(META_KEY) if info else None
    if meta is None and sm and META_KEY in sm:
        meta = _json_dict(sm[META_KEY])
    if not isinstance(meta, dict):
        meta = None
    if meta and "spacing_mm" in meta:
        return finite_triple(meta["spacing_mm"], path, f"spacing_mm in the {META_KEY} metadata", positive=True), meta
    unit = (ij or {}).get("unit")
    scale = unit_to_mm(unit)
    if scale is None:
        ru = ru if isinstance(ru, int) else None
        if ru == 3:
            scale = 10.0  # pixels per centimetre
        elif ru == 2 and xr is not None and unit is not None:
            scale = 25.4
    if scale is None or xr is None or yr is None:
        return None, meta

    def _res(value):
        if not (isinstance(value, tuple | list) and len(value) == 2):
            return None
        num, den = value
        return _positive(den / num) if isinstance(num, int | float) and isinstance(den, int | float) and num else None

    dx, dy = _res(xr), _res(yr)
    if not dx or not dy:
        return None, meta
    dz = _positive((ij or {}).get("spacing", dx))
    if dz is None:
        return None, meta
    return (dz * scale, dy * scale, dx * scale), meta


#: Largest expansion each TIFF compression can give (bytes of pixels per byte of file), for the header check;
#: compressions not listed (JPEG, zstd, LZMA, …) are bounded by the memory budget only.
_TIFF_MAX_RATIO = {1: 1.0, 5: 4096.0, 8: float(DEFLATE_MAX_RATIO), 32946: float(DEFLATE_MAX_RATIO), 32773: 64.0}


def _tiff_claim(tif, path, n_files: int = 1) -> None:
    """Check the stack tifffile is about to allocate against the memory budget and the file size."""
    with third_party(path, "not a readable TIFF"):
        series = tif.series[0]
        shape, dtype = tuple(series.shape), series.dtype
        compression = int(tif.pages[0].compression)
    value_dtype(dtype, path)
    ratio = _TIFF_MAX_RATIO.get(compression)
    size = os.path.getsize(path)
    if n_files == 1:
        check_claim(path, shape, dtype.itemsize, "reading the TIFF", available=None if ratio is None else size,
                    ratio=ratio or 1.0, header="TIFF header")
    else:  # a folder: every slice is assumed to be like the first
        if ratio is not None:
            check_claim(path, shape, dtype.itemsize, "reading the TIFF slice", available=size, ratio=ratio,
                        header="TIFF header")
        check_claim(Path(path).parent, (n_files, *shape), dtype.itemsize, "reading the TIFF folder")


@contextlib.contextmanager
def _open_tiff(path):
    """``tifffile.TiffFile(path)`` with its errors (open and close) as InputErrors naming the file."""
    import tifffile

    with third_party(path, "not a readable TIFF"):
        tif = tifffile.TiffFile(path)
    try:
        yield tif
    finally:
        with third_party(path, "not a readable TIFF"):
            tif.close()


def read_tiff(path, spacing=None, units=None) -> Volume:
    """Read a multi-page TIFF file or a folder of single-slice TIFF files (sorted in natural order)."""
    p = Path(path)
    if p.is_dir():
        files = sorted([f for f in p.iterdir() if f.suffix.lower() in (".tif", ".tiff") and not f.name.startswith(".")], key=_natural_key)
        if not files:
            raise InputError(p, "folder holds no .tif/.tiff files")
        with _open_tiff(files[0]) as tif:
            sp, meta = _tiff_spacing(tif, files[0])
            _tiff_claim(tif, files[0], n_files=len(files))
        slices = []
        shape0 = None
        for f in files:
            with _open_tiff(f) as tif:
                _tiff_claim(tif, f)
                with third_party(f, "unreadable TIFF slice"):
                    a = tif.asarray()
            a = np.squeeze(a)
            if a.ndim != 2:
                raise InputError(f, f"expected a 2-D slice, got shape {a.shape}")
            if shape0 is None:
                shape0 = a.shape
            elif a.shape != shape0:
                raise InputError(f, f"slice shape {a.shape} differs from the first slice's {shape0}")
            slices.append(a)
        if len({a.dtype for a in slices}) > 1:
            raise InputError(p, f"slices have different value types ({', '.join(sorted({str(a.dtype) for a in slices}))})")
        arr = np.stack(slices)
        fmt = "tiff-folder"
    else:
        with _open_tiff(p) as tif:
            sp, meta = _tiff_spacing(tif, p)
            _tiff_claim(tif, p)
            with third_party(p, "unreadable TIFF image data"):
                arr = tif.asarray()
        arr = np.squeeze(arr)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3:
            raise InputError(p, f"expected a 3-D stack, got shape {arr.shape} (colour or multi-channel TIFF?)")
        fmt = "tiff"
    require_voxels(arr.shape, p)
    known = True
    if spacing is not None:
        sp = spacing
    elif sp is None:
        known = False
        sp = (1.0, 1.0, 1.0)
        warnings.warn(f"{p}: no spacing in the TIFF metadata; assuming 1 mm voxels — pass spacing= / --input-spacing", stacklevel=2)
    origin = meta["origin_mm"] if meta and "origin_mm" in meta else (0.0, 0.0, 0.0)
    return finish_volume(arr, sp, origin, meta, p, fmt, spacing_known=known, units=units)


_IMAGEJ_DTYPES = (np.uint8, np.uint16, np.int16, np.float32)


def write_tiff(vol: Volume, path: Path) -> None:
    """Multi-page TIFF: ImageJ hyperstack (spacing in mm) where ImageJ can hold the dtype."""
    import tifffile

    arr = vol.numpy()
    meta = volume_meta(vol)
    dz, dy, dx = vol.spacing
    if arr.dtype.type in _IMAGEJ_DTYPES:
        tifffile.imwrite(
            path, arr, imagej=True, resolution=(1.0 / dx, 1.0 / dy),
            metadata={"spacing": dz, "unit": "mm", "axes": "ZYX", "Info": json.dumps({META_KEY: meta})},
        )
    else:
        tifffile.imwrite(path, arr, resolution=(1.0 / dx, 1.0 / dy), resolutionunit=None, metadata={META_KEY: json.dumps(meta)})


def write_tiff_folder(vol: Volume, folder: Path) -> None:
    """One TIFF file per z slice (``slice_00000.tif`` …) in an existing empty folder, each carrying the metadata."""
    import tifffile

    arr = vol.numpy()
    meta = volume_meta(vol)
    dz, dy, dx = vol.spacing
    ij = arr.dtype.type in _IMAGEJ_DTYPES
    for k in range(arr.shape[0]):
        f = folder / f"slice_{k:05d}.tif"
        if ij:
            tifffile.imwrite(f, arr[k], imagej=True, resolution=(1.0 / dx, 1.0 / dy),
                             metadata={"spacing": dz, "unit": "mm", "Info": json.dumps({META_KEY: meta})})
        else:
            tifffile.imwrite(f, arr[k], metadata={META_KEY: json.dumps(meta)})


# --------------------------------------------------------------------------------------------- NIfTI
def _nifti_open(p: Path):
    """nibabel's image (lazy: header only) and the header as stored, before nibabel "fixes" it."""
    import nibabel as nib
    from nibabel.openers import ImageOpener

    img = nib.load(str(p))
    with ImageOpener(str(p)) as fobj:
        raw = type(img.header).from_fileobj(fobj, check=False)
    return img, raw


def read_nifti(path, spacing=None, units=None) -> Volume:
    """Read NIfTI-1/2 with nibabel; the affine (RAS) is converted to LPS and the array reoriented to (z, y, x).

    The header is checked before any voxel is read: its array must fit the memory budget and the file. A voxel
    size of 0 (or not a number) in a header without a valid sform is *invented* as 1 mm by nibabel; trabecula
    says so in a warning and flags the volume (``spacing_assumed``) unless ``spacing`` is given.
    """
    p = Path(path)
    with third_party(p, "not a readable NIfTI file"):
        img, raw = _nifti_open(p)
        shape = tuple(int(n) for n in img.shape)
        disk_dtype = np.dtype(img.get_data_dtype())
        proxy = img.dataobj
        slope, inter = float(getattr(proxy, "slope", 1.0)), float(getattr(proxy, "inter", 0.0))
        offset = int(getattr(proxy, "offset", 0))
        affine = np.array(img.affine, dtype=float)
        sform_code = int(raw["sform_code"]) if "sform_code" in raw else 0
        pixdim = np.array(raw["pixdim"][1:4], dtype=float)
        xyzt = raw.get_xyzt_units()[0] if hasattr(raw, "get_xyzt_units") else "mm"
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) != 3:
        raise InputError(p, f"expected a 3-D image, got shape {shape}")
    require_voxels(shape, p)
    value_dtype(disk_dtype, p)
    scaled = slope != 1.0 or inter != 0.0
    compressed = p.name.lower().endswith(".gz")
    size = os.path.getsize(p)
    check_claim(p, shape, disk_dtype.itemsize, "the NIfTI voxel data",
                available=size if compressed else size - offset, ratio=DEFLATE_MAX_RATIO if compressed else 1.0,
                header="NIfTI header")
    if scaled:  # nibabel returns scaled values as floats
        check_claim(p, shape, 8, "reading the NIfTI (scaled to floating point)")
    with third_party(p, "unreadable NIfTI voxel data"):
        arr = np.asanyarray(img.dataobj)
    if arr.ndim == 4 and arr.shape[3] == 1:
        arr = arr[..., 0]
    if not np.all(np.isfinite(affine)):
        raise InputError(p, "the header's affine (sform/qform) holds NaN or infinite values")
    lps = np.diag([-1.0, -1.0, 1.0]) @ affine[:3, :3]
    origin_xyz = np.diag([-1.0, -1.0, 1.0]) @ affine[:3, 3]
    sp_axes = np.linalg.norm(lps, axis=0)
    # which axes' voxel size the header does not give: nibabel replaces them by 1 mm without a word of ours
    invented = ~(sp_axes > 0)
    if sform_code <= 0:
        invented |= ~(np.isfinite(pixdim) & (pixdim != 0))
    sp_axes = np.where(sp_axes > 0, sp_axes, 1.0)
    dirs = (lps / sp_axes).T  # row a = direction of array axis a
    scale = {"meter": 1000.0, "micron": 1e-3}.get(xyzt, 1.0)
    arr_zyx, sp, origin, oblique = to_zyx(arr, sp_axes * scale, origin_xyz * scale, dirs, source=str(p))
    meta = None
    try:
        descrip = raw["descrip"].tobytes().decode("ascii", "ignore").strip("\x00 ")
    except (KeyError, ValueError, AttributeError):  # header without descrip (NIfTI-2 variants)
        descrip = ""
    if descrip.startswith(META_KEY) and "units=" in descrip:
        meta = {"units": descrip.split("units=")[1].split(";")[0]}
    with third_party(p, "unreadable NIfTI header extensions"):
        contents = [ext.get_content() for ext in getattr(img.header, "extensions", [])]
    for content in contents:
        d = _json_dict(content)
        if d and isinstance(d.get(META_KEY), dict):
            meta = d[META_KEY]
    known = True
    if spacing is not None:
        sp = spacing
    elif invented.any():
        known = False
        axes = ", ".join("xyz"[a] for a in np.nonzero(invented)[0])
        warnings.warn(f"{p}: the header gives no voxel size along {axes} (pixdim 0 or not a number); assuming 1 mm "
                      "— pass spacing= / --input-spacing", stacklevel=2)
    extra = {"direction": oblique} if oblique else {}
    arr_zyx = np.ascontiguousarray(arr_zyx)
    return finish_volume(arr_zyx, sp, origin, meta, p, "nifti", spacing_known=known, units=units, extra=extra)


def write_nifti(vol: Volume, path: Path) -> None:
    """NIfTI-1 with an LPS→RAS affine so the file opens in the right place in other viewers."""
    import nibabel as nib

    arr = vol.numpy()
    dz, dy, dx = vol.spacing
    z0, y0, x0 = vol.origin
    data_xyz = np.ascontiguousarray(arr.transpose(2, 1, 0))  # NIfTI array axes i, j, k = x, y, z
    affine = np.array([
        [-dx, 0, 0, -x0],
        [0, -dy, 0, -y0],
        [0, 0, dz, z0],
        [0, 0, 0, 1],
    ], dtype=float)
    img = nib.Nifti1Image(data_xyz, affine)
    img.header.set_xyzt_units("mm")
    img.header["descrip"] = f"{META_KEY} units={vol.units}"[:79].encode()
    img.header.extensions.append(nib.nifti1.Nifti1Extension(6, json.dumps({META_KEY: volume_meta(vol)}).encode()))
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    nib.save(img, str(path))


# ------------------------------------------------------------------------------- NRRD and MetaImage
_SITK_DTYPES = {
    "sitkUInt8": np.uint8, "sitkInt8": np.int8, "sitkUInt16": np.uint16, "sitkInt16": np.int16,
    "sitkUInt32": np.uint32, "sitkInt32": np.int32, "sitkUInt64": np.uint64, "sitkInt64": np.int64,
    "sitkFloat32": np.float32, "sitkFloat64": np.float64, "sitkComplexFloat32": np.complex64,
    "sitkComplexFloat64": np.complex128,
}


def _header_fields(head: bytes, sep: str) -> tuple[dict[str, str], int] | None:
    """``key<sep>value`` lines of a text header and the offset where the header ends (None if it never does).

    NRRD ends its header with a blank line; MetaImage with its ``ElementDataFile`` line."""
    fields: dict[str, str] = {}
    pos = 0
    while True:
        nl = head.find(b"\n", pos)
        if nl < 0:
            return None
        line = head[pos:nl].decode("latin-1").rstrip("\r")
        pos = nl + 1
        if sep == ":" and not line.strip():
            return fields, pos
        if line.startswith("#") or (sep not in line):
            continue
        key, value = line.split(sep, 1)
        key = key.strip().lower().replace(" ", "")
        if key in fields:
            fields.setdefault("\0duplicate", key)
        fields[key] = value.strip()
        if sep == "=" and key == "elementdatafile":
            return fields, pos


_MET_TYPES = {"MET_UCHAR", "MET_CHAR", "MET_USHORT", "MET_SHORT", "MET_UINT", "MET_INT", "MET_ULONG", "MET_LONG",
              "MET_ULONG_LONG", "MET_LONG_LONG", "MET_FLOAT", "MET_DOUBLE"}
_NRRD_TYPES = {"signed char", "int8", "int8_t", "uchar", "unsigned char", "uint8", "uint8_t", "short", "short int",
               "signed short", "signed short int", "int16", "int16_t", "ushort", "unsigned short", "unsigned short int",
               "uint16", "uint16_t", "int", "signed int", "int32", "int32_t", "uint", "unsigned int", "uint32", "uint32_t",
               "longlong", "long long", "long long int", "signed long long", "signed long long int", "int64", "int64_t",
               "ulonglong", "unsigned long long", "unsigned long long int", "uint64", "uint64_t", "float", "double"}


def _ints(text: str | None, n: int, what: str, p: Path, lo: int = 1) -> list[int]:
    try:
        vals = [int(t) for t in (text or "").split()]
    except ValueError:
        vals = []
    if len(vals) != n or not all(lo <= v < 2**31 for v in vals):
        raise InputError(p, f"header field {what} must be {n} integer(s) ≥ {lo}, got {text!r}"[:300])
    return vals


def _floats(text: str | None, n: int, what: str, p: Path, bound: float = 1e12) -> list[float] | None:
    if text is None:
        return None
    try:
        vals = [float(t) for t in text.replace(",", " ").replace("(", " ").replace(")", " ").split()]
    except ValueError:
        vals = []
    if len(vals) != n or not all(np.isfinite(vals)) or not all(abs(v) <= bound for v in vals):
        raise InputError(p, f"header field {what} must be {n} finite number(s) of magnitude at most {bound:g}, "
                            f"got {text!r}"[:300])
    return vals


def _check_directions(vals: list[float] | None, ndim: int, what: str, p: Path) -> None:
    """A direction matrix ITK can invert: non-singular (ITK loops or fails on degenerate ones)."""
    if vals is None:
        return
    m = np.array(vals, dtype=float).reshape(ndim, ndim)
    norms = np.linalg.norm(m, axis=1)
    if not np.all(norms > 0) or abs(np.linalg.det(m / norms[:, None])) < 1e-3:
        raise InputError(p, f"header field {what} is a singular direction matrix: {vals}"[:300])


def _check_text_header(p: Path) -> None:
    """Validate a NRRD / MetaImage header before ITK parses it: ITK trusts it (a negative NDims crashes the
    process), so the fields ITK sizes arrays from must be sane numbers first."""
    with open(p, "rb") as fh:
        head = fh.read(1 << 20)
    nrrd = head.startswith(b"NRRD")
    parsed = _header_fields(head if not nrrd or b"\n\n" in head else head + b"\n\n", ":" if nrrd else "=")
    if parsed is None:
        raise InputError(p, "the header has no ElementDataFile line (truncated or not a MetaImage)")
    f = parsed[0]
    if "\0duplicate" in f:  # readers disagree on which one counts (ITK's MetaIO can crash on it)
        raise InputError(p, "header field " + repr(f["\0duplicate"]) + " is given twice")
    if nrrd:
        ndim = _ints(f.get("dimension"), 1, "dimension", p)[0]
        if ndim > 16:
            raise InputError(p, f"header field dimension is {ndim}; at most 16")
        _ints(f.get("sizes"), ndim, "sizes", p)
        if f.get("type", "").lower() not in _NRRD_TYPES:
            raise InputError(p, f"header field type {f.get('type')!r} is not a NRRD scalar type"[:300])
        if f.get("encoding", "raw").lower() not in ("raw", "gzip", "gz", "bzip2", "bz2", "ascii", "text", "txt", "hex"):
            raise InputError(p, f"header field encoding {f.get('encoding')!r} is not a NRRD encoding"[:300])
        for key in ("spacings", "thicknesses"):
            if key in f and "nan" not in f[key].lower():
                _floats(f[key], ndim, key, p)
        space = f.get("spacedimension") or {"3d-right-handed": 3, "3d-left-handed": 3, "right-anterior-superior": 3,
                                             "ras": 3, "left-anterior-superior": 3, "las": 3, "lps": 3,
                                             "left-posterior-superior": 3}.get(f.get("space", "").lower())
        if "spaceorigin" in f and space:
            _floats(f["spaceorigin"], int(space), "space origin", p)
        if "spacedirections" in f and space:
            vectors = [t for t in f["spacedirections"].split() if t.lower() != "none"]
            vals = _floats(" ".join(vectors), len(vectors) * int(space), "space directions", p, bound=1e6)
            if vals is not None and len(vectors) == int(space):
                _check_directions(vals, int(space), "space directions", p)
        return
    ndim = _ints(f.get("ndims"), 1, "NDims", p)[0]
    if ndim > 16:
        raise InputError(p, f"header field NDims is {ndim}; at most 16")
    _ints(f.get("dimsize"), ndim, "DimSize", p)
    if "elementnumberofchannels" in f:
        _ints(f["elementnumberofchannels"], 1, "ElementNumberOfChannels", p)
    if f.get("binarydata", "true").lower() != "true":
        raise InputError(p, f"BinaryData = {f.get('binarydata')!r}: only binary MetaImage data are read"[:300])
    for key in ("binarydatabyteordermsb", "elementbyteordermsb", "compresseddata"):
        if f.get(key, "false").lower() not in ("true", "false"):
            raise InputError(p, f"header field {key} must be True or False, got {f[key]!r}"[:300])
    if f.get("elementtype", "").upper() not in _MET_TYPES:
        raise InputError(p, f"header field ElementType {f.get('elementtype')!r} is not a MetaImage scalar type"[:300])
    for key in ("elementspacing", "elementsize", "offset", "position", "origin", "centerofrotation"):
        _floats(f.get(key), ndim, key, p)
    for key in ("transformmatrix", "rotation", "orientation"):
        _check_directions(_floats(f.get(key), ndim * ndim, key, p, bound=1.0 + 1e-3), ndim, key, p)
    if "headersize" in f:
        _ints(f["headersize"], 1, "HeaderSize", p, lo=-1)


def _sitk_data_extent(p: Path) -> tuple[int, float] | None:
    """``(bytes of voxel data the NRRD / MetaImage file holds, most it can expand to per byte)`` from its text
    header; None where that cannot be bounded (bzip2, file lists, unknown encodings, unreadable headers)."""
    with open(p, "rb") as fh:
        head = fh.read(1 << 20)
    nrrd = head.startswith(b"NRRD")
    parsed = _header_fields(head, ":" if nrrd else "=")
    if parsed is None:
        return None
    fields, end = parsed
    if nrrd:
        datafile = fields.get("datafile")
        encoding = fields.get("encoding", "raw").lower()
        ratio = {"raw": 1.0, "gzip": DEFLATE_MAX_RATIO, "gz": DEFLATE_MAX_RATIO, "hex": 0.5}.get(encoding)
        if encoding in ("ascii", "text", "txt"):
            ratio = 8.0  # at least one character per value, at most 8 bytes per value
    else:
        datafile = fields.get("elementdatafile")
        datafile = None if datafile is None or datafile.upper() == "LOCAL" else datafile
        ratio = DEFLATE_MAX_RATIO if fields.get("compresseddata", "false").lower() == "true" else 1.0
    if ratio is None:
        return None
    if datafile is None:
        return os.path.getsize(p) - end, ratio
    if datafile.upper().startswith("LIST") or "%" in datafile or len(datafile.split()) != 1:
        return None
    data = Path(datafile) if Path(datafile).is_absolute() else p.parent / datafile
    return (os.path.getsize(data), ratio) if data.is_file() else None


def read_sitk(path, spacing=None, units=None) -> Volume:
    """Read NRRD / MetaImage (and anything else SimpleITK reads) into (z, y, x), LPS-aligned.

    The header is read first: the image it claims must fit the memory budget and, for NRRD and MetaImage, the
    bytes the file holds (raw data byte for byte, deflate-compressed data at most 1100:1)."""
    import SimpleITK as sitk

    p = Path(path)
    if p.suffix.lower() in (".nrrd", ".nhdr", ".mha", ".mhd"):
        _check_text_header(p)
    sitk.ProcessObject_SetGlobalWarningDisplay(False)  # ITK's warnings go straight to stderr; ours say it
    with third_party(p, "not a readable image"):
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(p))
        reader.ReadImageInformation()
        ndim, size, ncomp = reader.GetDimension(), tuple(reader.GetSize()), reader.GetNumberOfComponents()
        pixel = sitk.GetPixelIDValueAsString(reader.GetPixelID())
        pixel_ids = {getattr(sitk, k, None): v for k, v in _SITK_DTYPES.items()}
        dtype = pixel_ids.get(reader.GetPixelID())
    if ndim != 3 or ncomp != 1:
        raise InputError(p, f"expected a 3-D single-channel image, got {ndim}-D with {ncomp} component(s)")
    if dtype is None:
        raise InputError(p, f"unsupported pixel type ({pixel})")
    require_voxels(size, p)
    itemsize = value_dtype(dtype, p).itemsize
    extent = _sitk_data_extent(p) if p.suffix.lower() in (".nrrd", ".nhdr", ".mha", ".mhd") else None
    check_claim(p, size[::-1], itemsize, "reading the image",
                available=None if extent is None else extent[0], ratio=1.0 if extent is None else extent[1],
                header=f"{'NRRD' if p.suffix.lower() in ('.nrrd', '.nhdr') else 'MetaImage'} header")
    with third_party(p, "unreadable image data"):
        img = reader.Execute()
        arr = sitk.GetArrayFromImage(img)  # axes (k, j, i)
        direction = np.array(img.GetDirection(), dtype=float).reshape(3, 3)  # columns = world directions of i, j, k
        sp_ijk = np.array(img.GetSpacing(), dtype=float)
        origin_xyz = np.array(img.GetOrigin(), dtype=float)
        meta_text = img.GetMetaData(META_KEY) if img.HasMetaDataKey(META_KEY) else None
    if not (np.all(np.isfinite(direction)) and np.all(np.isfinite(origin_xyz))):
        raise InputError(p, "the header's direction or origin holds NaN or infinite values")
    if spacing is None:
        finite_triple(sp_ijk, p, "voxel spacing (mm) in the header", positive=True)
    dirs = np.vstack([direction[:, 2], direction[:, 1], direction[:, 0]])
    arr_zyx, sp, origin, oblique = to_zyx(arr, sp_ijk[::-1], origin_xyz, dirs, source=str(p))
    meta = _json_dict(meta_text) if meta_text is not None else None
    if spacing is not None:
        sp = spacing
    fmt = "nrrd" if p.suffix.lower() in (".nrrd", ".nhdr") else "metaimage"
    extra = {"direction": oblique} if oblique else {}
    return finish_volume(np.ascontiguousarray(arr_zyx), sp, origin, meta, p, fmt, units=units, extra=extra)


def write_sitk(vol: Volume, path: Path) -> None:
    import SimpleITK as sitk

    arr = vol.numpy()
    if arr.dtype == np.float16:
        arr = arr.astype(np.float32)
    img = sitk.GetImageFromArray(np.ascontiguousarray(arr))
    img.SetSpacing(tuple(float(s) for s in vol.spacing[::-1]))
    img.SetOrigin(tuple(float(o) for o in vol.origin[::-1]))
    img.SetMetaData(META_KEY, json.dumps(volume_meta(vol)))
    sitk.WriteImage(img, str(path), useCompression=True)


# ---------------------------------------------------------------------------------------------- Zarr
#: Most chunks a Zarr array may have: each becomes a task in the dask graph (about a kilobyte and tens of
#: microseconds each), so 100,000 chunks cost a few seconds and ~100 MB before any voxel is read; 8 MiB chunks
#: (what trabecula writes) reach 800 GB before this bound.
MAX_ZARR_CHUNKS = 100_000


def check_zarr_array(p: Path, shape, chunks, dtype) -> None:
    """What a Zarr array's metadata may make trabecula do, checked before the dask graph is built: 3-D, a numeric
    dtype, voxels, valid chunks, at most :data:`MAX_ZARR_CHUNKS` chunks, each within the memory budget."""
    if len(shape) != 3:
        raise InputError(p, f"expected a 3-D array, got shape {shape}")
    value_dtype(dtype, p)
    require_voxels(shape, p)
    if any(c <= 0 for c in chunks):
        raise InputError(p, f"invalid chunk shape {chunks}")
    n_chunks = math.prod(-(-n // c) for n, c in zip(shape, chunks, strict=True))
    if n_chunks > MAX_ZARR_CHUNKS:
        raise InputError(p, f"shape {' × '.join(map(str, shape))} in chunks of {' × '.join(map(str, chunks))} makes "
                            f"{n_chunks:.3g} chunks (at most {MAX_ZARR_CHUNKS} are read); rechunk it with larger chunks")
    check_claim(p, tuple(min(n, c) for n, c in zip(shape, chunks, strict=True)), np.dtype(dtype).itemsize, "one chunk")


def _stored_keys(folder: Path) -> set[str]:
    """Every file below ``folder``, as ``/``-separated keys relative to it (one directory walk)."""
    keys: set[str] = set()
    for root, _dirs, files in os.walk(folder):
        rel = os.path.relpath(root, folder)
        prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        keys.update(prefix + f for f in files)
    return keys


def chunks_record(meta: dict | None) -> bool | None:
    """What a file says about its chunks: True when trabecula's record says every chunk was written; None for
    trabecula files from before that record (they skipped all-fill chunks, as Zarr does by default); False for
    foreign files (no trabecula metadata)."""
    if meta is None:
        return False
    return True if meta.get("all_chunks_written") is True else None


def check_chunks_present(p: Path, z, array_dir: Path, all_written: bool | None, what: str = "the array",
                         why: str = "the writer recorded every chunk, so the store is incomplete or damaged") -> int:
    """Compare the chunk files of Zarr array ``z`` (stored in the folder ``array_dir``) with its chunk grid, before
    any voxel is read. When the writer recorded that it wrote every chunk (``all_written`` True, what trabecula's
    writers do), a missing one is an :class:`InputError` naming the file and the chunk; otherwise absent chunks
    read as the fill value, and for a foreign file (``all_written`` False) one warning says how many (None: an
    earlier trabecula file, whose absent chunks are its empty regions: nothing said). Returns the number of
    absent chunks."""
    grid = tuple(int(n) for n in z.cdata_shape)  # shards where the array is sharded: the stored objects
    step = tuple(int(n) for n in (z.shards or z.chunks))
    stored = _stored_keys(array_dir)
    missing = [c for c in np.ndindex(*grid) if z.metadata.encode_chunk_key(c) not in stored]
    if missing and all_written:
        c = missing[0]
        where = ", ".join(f"{a} {i * s}–{min((i + 1) * s, n)}" for a, i, s, n in zip("zyx", c, step, z.shape, strict=True))
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise InputError(p, f"chunk {z.metadata.encode_chunk_key(c)} of {what} ({where}) is missing{more}; {why}")
    if missing and all_written is False:
        warnings.warn(f"{p}: {len(missing)} of {math.prod(grid)} chunks of {what} are absent and read as the fill "
                      f"value {z.fill_value}", stacklevel=3)
    return len(missing)


def read_zarr(path, spacing=None, units=None) -> Volume:
    """Open a Zarr array lazily (dask); metadata from the array attributes.

    The shape and chunking are checked before the dask graph is built (:func:`check_zarr_array`), and the stored
    chunks against the chunk grid (:func:`check_chunks_present`); NaN or infinite values stop any computation on
    the volume with an :class:`InputError` naming the file and the chunk (the check runs chunk by chunk, as the
    data are read)."""
    import dask.array as da
    import zarr

    p = Path(path)
    with third_party(p, "not a readable Zarr array"):
        z = zarr.open_array(str(p), mode="r")
        shape, chunks, dtype = tuple(int(n) for n in z.shape), tuple(int(n) for n in z.chunks), z.dtype
        attrs = dict(z.attrs)
    check_zarr_array(p, shape, chunks, dtype)
    meta = attrs.get(META_KEY)
    meta = meta if isinstance(meta, dict) else None
    check_chunks_present(p, z, p, chunks_record(meta))
    with third_party(p, "not a readable Zarr array"):
        arr = da.from_zarr(z)
    sp = spacing or (meta or {}).get("spacing_mm")
    known = sp is not None
    if sp is None:
        sp = (1.0, 1.0, 1.0)
        warnings.warn(f"{p}: no spacing in the Zarr attributes; assuming 1 mm voxels", stacklevel=2)
    origin = (meta or {}).get("origin_mm", (0.0, 0.0, 0.0))
    return finish_volume(arr, sp, origin, meta, p, "zarr", spacing_known=known, units=units,
                         extra={"chunks": list(chunks)})


def zarr_chunks(shape, itemsize: int, target_bytes: int = 8 * 2**20) -> tuple[int, int, int]:
    """Cubic-ish chunks of about ``target_bytes`` (8 MiB by default), never larger than the array."""
    edge = int(round((target_bytes / itemsize) ** (1 / 3)))
    return tuple(max(1, min(n, edge)) for n in shape)  # type: ignore[return-value]


def chunk_shape(chunks, shape, itemsize: int) -> tuple[int, int, int]:
    """Chunk shape (z, y, x) from ``chunks`` (one number, three, or ``"Z,Y,X"``; None: :func:`zarr_chunks`), capped by
    ``shape``; a :class:`ParameterError` naming ``--chunks`` when malformed or making over :data:`MAX_ZARR_CHUNKS`."""
    if chunks is None:
        return zarr_chunks(shape, itemsize)
    if isinstance(chunks, str):
        parts = [t for t in chunks.replace(" ", ",").split(",") if t]
    else:
        parts = list(np.atleast_1d(chunks))
    try:
        vals = [float(v) for v in parts]
        if not all(math.isfinite(v) and v == int(v) for v in vals):
            raise ValueError
        vals = [int(v) for v in vals]
    except (TypeError, ValueError) as exc:
        raise ParameterError("--chunks", f"expected whole numbers like 64 or 32,128,128 (z,y,x), got {chunks!r}") from exc
    if len(vals) == 1:
        vals = vals * 3
    if len(vals) != 3 or not all(v >= 1 for v in vals):
        raise ParameterError("--chunks", f"expected one or three positive whole numbers (z,y,x), got {chunks!r}")
    ck = tuple(min(v, n) for v, n in zip(vals, shape, strict=True))
    n = math.prod(-(-s // c) for s, c in zip(shape, ck, strict=True))
    if n > MAX_ZARR_CHUNKS:
        raise ParameterError("--chunks", f"{'×'.join(map(str, ck))} chunks of a {'×'.join(map(str, shape))} volume make "
                                         f"{n} chunks (readers take at most {MAX_ZARR_CHUNKS}); use larger chunks")
    return ck  # type: ignore[return-value]


def write_zarr(vol: Volume, path: Path, chunks=None) -> None:
    """Chunked, compressed (zstd, Zarr v3 default) array; a dask array is written chunk by chunk. Every chunk is
    written, all-fill ones included, and the attributes say so, so that a reader can tell a missing chunk."""
    import zarr

    chunks = chunk_shape(chunks, vol.shape, vol.dtype.itemsize)
    z = zarr.create_array(store=str(path), shape=vol.shape, chunks=chunks, dtype=vol.dtype, overwrite=False,
                          config={"write_empty_chunks": True})
    if vol.is_lazy:
        import dask.array as da

        da.store(vol.data.rechunk(chunks), z, lock=False)
    else:
        z[...] = vol.data
    z.attrs[META_KEY] = {**volume_meta(vol), "all_chunks_written": True}
