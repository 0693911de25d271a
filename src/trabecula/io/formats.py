"""Readers and writers for TIFF (stack file or folder of slices), NIfTI, NRRD, MetaImage and Zarr.

Every writer stores trabecula's metadata (units, origin, provenance) where the format has room for
it, so a write followed by a read gives back the same array, spacing, origin and units:

* TIFF: ImageJ hyperstack metadata (``spacing``, ``unit='mm'``, pixel resolution) plus a JSON
  ``Info`` entry; for dtypes ImageJ cannot hold, tifffile's JSON "shaped" description;
* NIfTI: the affine (converted between NIfTI's RAS and trabecula's LPS) and ``descrip``;
* NRRD / MetaImage: SimpleITK spacing, origin and direction plus metadata keys;
* Zarr: array attributes.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np

from trabecula import __version__
from trabecula.errors import InputError
from trabecula.io.orient import to_zyx
from trabecula.volume import UNITS, Provenance, Volume

META_KEY = "trabecula"

_UNIT_TO_MM = {
    "mm": 1.0, "millimeter": 1.0, "millimetre": 1.0,
    "micron": 1e-3, "um": 1e-3, "µm": 1e-3, "\\u00B5m": 1e-3, "microns": 1e-3,
    "cm": 10.0, "m": 1000.0, "inch": 25.4, "in": 25.4, "nm": 1e-6,
}


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


def finish_volume(arr, spacing, origin, meta, path, fmt, spacing_known=True, units=None, extra=None) -> Volume:
    """Common end of every reader: check values, pick units, build the provenance."""
    if isinstance(arr, np.ndarray):
        _check_finite(arr, path)
        if arr.dtype == bool:
            arr = arr.astype(np.uint8)
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


def _tiff_spacing(tif, path) -> tuple[tuple[float, float, float] | None, dict | None]:
    """Spacing (mm) from ImageJ metadata / resolution tags, and trabecula's own metadata if present."""
    meta = None
    ij = tif.imagej_metadata
    if ij and "Info" in ij:
        try:
            info = json.loads(ij["Info"])
            meta = info.get(META_KEY) if isinstance(info, dict) else None
        except (TypeError, ValueError):
            meta = None
    if meta is None and tif.shaped_metadata:
        sm = tif.shaped_metadata[0]
        if isinstance(sm, dict) and META_KEY in sm:
            m = sm[META_KEY]
            meta = json.loads(m) if isinstance(m, str) else m
    if meta and "spacing_mm" in meta:
        return tuple(float(s) for s in meta["spacing_mm"]), meta  # type: ignore[return-value]
    page = tif.pages[0]
    unit = (ij or {}).get("unit")
    scale = _UNIT_TO_MM.get(str(unit).strip().lower()) if unit else None
    tags = page.tags
    if scale is None:
        ru = tags.get("ResolutionUnit")
        if ru is not None and int(ru.value) == 3:
            scale = 10.0  # pixels per centimetre
        elif ru is not None and int(ru.value) == 2 and "XResolution" in tags and unit is not None:
            scale = 25.4
    xr, yr = tags.get("XResolution"), tags.get("YResolution")
    if scale is None or xr is None or yr is None:
        return None, meta

    def _res(tag):
        num, den = tag.value
        return den / num if num else None

    dx, dy = _res(xr), _res(yr)
    if not dx or not dy:
        return None, meta
    dz = float((ij or {}).get("spacing", dx))
    return (dz * scale, dy * scale, dx * scale), meta


def read_tiff(path, spacing=None, units=None) -> Volume:
    """Read a multi-page TIFF file or a folder of single-slice TIFF files (sorted in natural order)."""
    import tifffile

    p = Path(path)
    try:
        if p.is_dir():
            files = sorted([f for f in p.iterdir() if f.suffix.lower() in (".tif", ".tiff") and not f.name.startswith(".")], key=_natural_key)
            if not files:
                raise InputError(p, "folder holds no .tif/.tiff files")
            with tifffile.TiffFile(files[0]) as tif:
                sp, meta = _tiff_spacing(tif, files[0])
            slices = []
            shape0 = None
            for f in files:
                try:
                    a = tifffile.imread(f)
                except Exception as exc:
                    raise InputError(f, f"unreadable TIFF slice ({exc})") from exc
                a = np.squeeze(a)
                if a.ndim != 2:
                    raise InputError(f, f"expected a 2-D slice, got shape {a.shape}")
                if shape0 is None:
                    shape0 = a.shape
                elif a.shape != shape0:
                    raise InputError(f, f"slice shape {a.shape} differs from the first slice's {shape0}")
                slices.append(a)
            arr = np.stack(slices)
            fmt = "tiff-folder"
        else:
            with tifffile.TiffFile(p) as tif:
                sp, meta = _tiff_spacing(tif, p)
                arr = tif.asarray()
            arr = np.squeeze(arr)
            if arr.ndim == 2:
                arr = arr[None]
            if arr.ndim != 3:
                raise InputError(p, f"expected a 3-D stack, got shape {arr.shape} (colour or multi-channel TIFF?)")
            fmt = "tiff"
    except InputError:
        raise
    except Exception as exc:  # tifffile raises TiffFileError, ValueError, struct.error, ...
        raise InputError(p, f"not a readable TIFF ({type(exc).__name__}: {exc})") from exc
    known = True
    if spacing is not None:
        sp = spacing
    elif sp is None:
        known = False
        sp = (1.0, 1.0, 1.0)
        warnings.warn(f"{p}: no spacing in the TIFF metadata; assuming 1 mm voxels — pass spacing= / --input-spacing", stacklevel=2)
    origin = tuple(meta["origin_mm"]) if meta and "origin_mm" in meta else (0.0, 0.0, 0.0)
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
def read_nifti(path, spacing=None, units=None) -> Volume:
    """Read NIfTI-1/2 with nibabel; the affine (RAS) is converted to LPS and the array reoriented to (z, y, x)."""
    import nibabel as nib

    p = Path(path)
    try:
        img = nib.load(str(p))
        arr = np.asanyarray(img.dataobj)
    except Exception as exc:
        raise InputError(p, f"not a readable NIfTI file ({type(exc).__name__}: {exc})") from exc
    if arr.ndim == 4 and arr.shape[3] == 1:
        arr = arr[..., 0]
    if arr.ndim != 3:
        raise InputError(p, f"expected a 3-D image, got shape {arr.shape}")
    affine = img.affine.copy()
    lps = np.diag([-1.0, -1.0, 1.0]) @ affine[:3, :3]
    origin_xyz = np.diag([-1.0, -1.0, 1.0]) @ affine[:3, 3]
    sp_axes = np.linalg.norm(lps, axis=0)
    dirs = (lps / np.where(sp_axes == 0, 1, sp_axes)).T  # row a = direction of array axis a
    xyzt = img.header.get_xyzt_units()[0] if hasattr(img.header, "get_xyzt_units") else "mm"
    scale = {"meter": 1000.0, "micron": 1e-3}.get(xyzt, 1.0)
    arr_zyx, sp, origin, oblique = to_zyx(arr, sp_axes * scale, origin_xyz * scale, dirs, source=str(p))
    meta = None
    try:
        descrip = img.header["descrip"].tobytes().decode("ascii", "ignore").strip("\x00 ")
        if descrip.startswith(META_KEY):
            meta = {"units": descrip.split("units=")[1].split(";")[0]} if "units=" in descrip else None
    except Exception:  # header without descrip (NIfTI-2 variants)
        meta = None
    for ext in getattr(img.header, "extensions", []):
        try:
            d = json.loads(ext.get_content())
            if isinstance(d, dict) and META_KEY in d:
                meta = d[META_KEY]
        except Exception:
            continue
    if spacing is not None:
        sp = spacing
    extra = {"direction": oblique} if oblique else {}
    arr_zyx = np.ascontiguousarray(arr_zyx)
    return finish_volume(arr_zyx, sp, origin, meta, p, "nifti", units=units, extra=extra)


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
def read_sitk(path, spacing=None, units=None) -> Volume:
    """Read NRRD / MetaImage (and anything else SimpleITK reads) into (z, y, x), LPS-aligned."""
    import SimpleITK as sitk

    p = Path(path)
    try:
        img = sitk.ReadImage(str(p))
    except Exception as exc:
        raise InputError(p, f"not a readable image ({str(exc).strip().splitlines()[-1][:160]})") from exc
    if img.GetDimension() != 3 or img.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(p, f"expected a 3-D single-channel image, got {img.GetDimension()}-D with {img.GetNumberOfComponentsPerPixel()} component(s)")
    arr = sitk.GetArrayFromImage(img)  # axes (k, j, i)
    direction = np.array(img.GetDirection()).reshape(3, 3)  # columns = world direction of image axes i, j, k
    sp_ijk = np.array(img.GetSpacing())
    dirs = np.vstack([direction[:, 2], direction[:, 1], direction[:, 0]])
    arr_zyx, sp, origin, oblique = to_zyx(arr, sp_ijk[::-1], np.array(img.GetOrigin()), dirs, source=str(p))
    meta = None
    if img.HasMetaDataKey(META_KEY):
        try:
            meta = json.loads(img.GetMetaData(META_KEY))
        except ValueError:
            meta = None
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
def read_zarr(path, spacing=None, units=None) -> Volume:
    """Open a Zarr array lazily (dask); metadata from the array attributes."""
    import dask.array as da
    import zarr

    p = Path(path)
    try:
        z = zarr.open_array(str(p), mode="r")
    except Exception as exc:
        raise InputError(p, f"not a readable Zarr array ({type(exc).__name__}: {exc})") from exc
    if z.ndim != 3:
        raise InputError(p, f"expected a 3-D array, got shape {z.shape}")
    meta = dict(z.attrs).get(META_KEY)
    arr = da.from_zarr(z)
    sp = spacing or (meta or {}).get("spacing_mm")
    known = sp is not None
    if sp is None:
        sp = (1.0, 1.0, 1.0)
        warnings.warn(f"{p}: no spacing in the Zarr attributes; assuming 1 mm voxels", stacklevel=2)
    origin = tuple((meta or {}).get("origin_mm", (0.0, 0.0, 0.0)))
    return finish_volume(arr, sp, origin, meta, p, "zarr", spacing_known=known, units=units,
                         extra={"chunks": list(z.chunks)})


def zarr_chunks(shape, itemsize: int, target_bytes: int = 8 * 2**20) -> tuple[int, int, int]:
    """Cubic-ish chunks of about ``target_bytes`` (8 MiB by default), never larger than the array."""
    edge = int(round((target_bytes / itemsize) ** (1 / 3)))
    return tuple(max(1, min(n, edge)) for n in shape)  # type: ignore[return-value]


def write_zarr(vol: Volume, path: Path, chunks=None) -> None:
    """Chunked, compressed (zstd, Zarr v3 default) array; a dask array is written chunk by chunk."""
    import zarr

    chunks = chunks or zarr_chunks(vol.shape, vol.dtype.itemsize)
    z = zarr.create_array(store=str(path), shape=vol.shape, chunks=chunks, dtype=vol.dtype, overwrite=False)
    if vol.is_lazy:
        import dask.array as da

        da.store(vol.data.rechunk(chunks), z, lock=False)
    else:
        z[...] = vol.data
    z.attrs[META_KEY] = volume_meta(vol)

