"""DICOM series: read a folder (or list of files) of single-frame CT slices into an HU volume, and write
a volume back as a CT series.

Reading follows what a radiology workstation does:

* files are grouped by ``SeriesInstanceUID``; a folder holding several series is refused with the list
  of series so the caller can choose one (``series=UID``);
* slices are ordered by the projection of ``ImagePositionPatient`` on the slice normal
  (``ImageOrientationPatient`` row × column), never by file name or ``InstanceNumber``;
* values become HU through ``RescaleSlope`` and ``RescaleIntercept``;
* in-plane spacing comes from ``PixelSpacing`` (row spacing → y, column spacing → x), the slice
  spacing from the slice positions (not ``SliceThickness``, which can differ);
* a gantry tilt (slice origins not stacked along the normal), missing slices or duplicated positions
  are errors; the slice spacing is the mean step (the series' true length). A series whose steps spread by more
  than :data:`RESAMPLE_SPREAD` (2 %) of the median step, or whose slices lie more than a tenth of a slice off a
  uniform grid, is resampled — linear interpolation along z from the true slice positions onto a uniform grid
  spanning them, at the median step adjusted to fit — with a warning naming the spread (``z_resampled`` in the
  provenance);
* every header value is parsed inside the reader's error boundary: a corrupt file is an
  :class:`~trabecula.errors.InputError` naming it, never an internal error; the series' size is checked against
  the memory budget before any pixel is decoded.
"""

from __future__ import annotations

import datetime as _dt
import io
import math
import os
import warnings
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from trabecula.errors import InputError, TrabeculaError
from trabecula.io._guard import check_claim, third_party, value_dtype
from trabecula.io.orient import to_zyx
from trabecula.volume import Provenance, Volume


class MultipleSeriesError(TrabeculaError):
    """A folder holds several series; the message lists them and how to choose one."""

    def __init__(self, path: str, series: list[tuple[str, str, int]]):
        self.path = path
        self.series = series
        listing = "; ".join(f"{uid} ({desc or 'no description'}, {n} slices)" for uid, desc, n in series)
        super().__init__(f"{path}: holds {len(series)} DICOM series: {listing} — choose one with --series UID")


def _dicom_files(path: str | os.PathLike | Sequence[str | os.PathLike]) -> tuple[str, list[Path]]:
    if isinstance(path, str | os.PathLike):
        p = Path(path)
        if not p.exists():
            raise InputError(p, "no such file or folder")
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith(".") and f.name.upper() != "DICOMDIR")
            if not files:
                raise InputError(p, "folder is empty")
            return str(p), files
        return str(p), [p]
    files = [Path(f) for f in path]
    if not files:
        raise InputError(None, "empty list of DICOM files")
    for f in files:
        if not f.is_file():
            raise InputError(f, "no such file")
    return str(files[0].parent), files


def list_series(path: str | os.PathLike | Sequence[str | os.PathLike]) -> list[tuple[str, str, int]]:
    """``(SeriesInstanceUID, SeriesDescription, number of files)`` for each series in a folder."""
    _, headers = _read_headers(path)
    return [(uid, hs[0][1]["description"], len(hs)) for uid, hs in headers.items()]


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
        return str(value)
    return "\\".join(str(v) for v in value)  # multi-valued DICOM strings, as DICOM writes them


def _numbers(ds, tag: str, n: int | None = None) -> list[float] | None:
    """The numeric values of ``tag`` (None if absent); pydicom parses them lazily, so this may raise anything."""
    if tag not in ds:
        return None
    value = ds[tag].value
    if value is None or value == "":
        return None
    values = list(value) if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue" else [value]
    out = [float(v) for v in values]
    if n is not None and len(out) != n:
        raise ValueError(f"{tag} has {len(out)} values, expected {n}")
    return out


def _header(ds) -> dict:
    """Every header value the reader uses, as plain Python values (call inside :func:`third_party`: a mangled
    decimal string, a wrong value length or an unknown VR surfaces only here, when pydicom parses the element)."""
    def one(tag, default=None):
        v = _numbers(ds, tag)
        return default if not v else v[0]

    return {
        "has_pixels": "PixelData" in ds,
        "uid": str(ds.get("SeriesInstanceUID", "unknown")),
        "description": str(ds.get("SeriesDescription", "")),
        "ipp": _numbers(ds, "ImagePositionPatient", 3),
        "iop": _numbers(ds, "ImageOrientationPatient", 6),
        "pixel_spacing": _numbers(ds, "PixelSpacing", 2),
        "rows": int(one("Rows", 0)),
        "columns": int(one("Columns", 0)),
        "slope": one("RescaleSlope"),
        "intercept": one("RescaleIntercept"),
        "has_intercept": "RescaleIntercept" in ds,
        "tilt": one("GantryDetectorTilt", 0.0),
        "spacing_between": one("SpacingBetweenSlices"),
        "thickness": one("SliceThickness"),
        "modality": str(ds.get("Modality", "")),
        "manufacturer": str(ds.get("Manufacturer", "")),
        "model": str(ds.get("ManufacturerModelName", "")),
        "kernel": _text(ds.get("ConvolutionKernel")),
        "kvp": str(ds.get("KVP", "")),
    }


class _BoundedReader(io.BufferedReader):
    """A file whose ``read(n)`` never asks for more than the bytes left: a corrupt DICOM length field (4 GB
    claimed by a 1 kB file) makes pydicom read to the end instead of allocating what the field claims."""

    def __init__(self, path: Path):
        super().__init__(io.FileIO(path, "r"))
        self._size = os.path.getsize(path)

    def read(self, n: int | None = -1) -> bytes:
        if n is not None and n > 0:
            n = min(n, max(0, self._size - self.tell()))
            if n == 0:
                return b""
        return super().read(n)


def _dcmread(f: Path, **kwargs):
    """``pydicom.dcmread`` through a :class:`_BoundedReader` (call inside :func:`third_party`)."""
    import pydicom

    with _BoundedReader(f) as fh:
        return pydicom.dcmread(fh, **kwargs)


def _read_headers(path):

    where, files = _dicom_files(path)
    by_series: dict[str, list] = defaultdict(list)
    bad = []
    for f in files:
        try:
            with third_party(f, "not a DICOM file"):
                ds = _dcmread(f, stop_before_pixels=True)
        except InputError as exc:
            bad.append((f, exc))
            continue
        with third_party(f, "unreadable DICOM header"):
            h = _header(ds)
        if not h["has_pixels"] and h["ipp"] is None:
            bad.append((f, "no image data"))
            continue
        by_series[h["uid"]].append((f, h))
    if not by_series:
        if len(files) == 1:
            why = bad[0][1].message if bad and isinstance(bad[0][1], InputError) else "no image data"
            raise InputError(files[0], f"not a DICOM image file ({why})")
        raise InputError(where, f"no DICOM image files among its {len(files)} files")
    if bad:
        names = ", ".join(f.name for f, _ in bad[:3])
        warnings.warn(f"{where}: skipped {len(bad)} file(s) that are not DICOM images ({names}{'…' if len(bad) > 3 else ''})", stacklevel=3)
    return where, dict(by_series)


#: Slice spacing spread ((largest − smallest step) / median step) above which a series is resampled onto a uniform
#: grid from its true slice positions; also resampled when any slice lies more than :data:`RESAMPLE_SHIFT` of a
#: slice from where a uniform grid would put it (slow drifts).
RESAMPLE_SPREAD = 0.02
RESAMPLE_SHIFT = 0.1


def _rescale(f: Path, h: dict) -> tuple[float, float]:
    slope = 1.0 if h["slope"] is None else h["slope"]
    intercept = 0.0 if h["intercept"] is None else h["intercept"]
    if not (math.isfinite(slope) and math.isfinite(intercept)):
        raise InputError(f, f"RescaleSlope {slope} / RescaleIntercept {intercept} are not finite numbers")
    if slope == 0:
        raise InputError(f, "RescaleSlope is 0 (every voxel would have the same value)")
    return slope, intercept


def _resample_z(stack: np.ndarray, dist: np.ndarray, median: float) -> tuple[np.ndarray, float]:
    """Linear interpolation along axis 0 from slices at ``dist`` (sorted, mm) onto a uniform grid from the first to
    the last position, its step the median step adjusted to span them exactly."""
    span = float(dist[-1] - dist[0])
    n = max(2, int(round(span / median)) + 1)
    dz = span / (n - 1)
    targets = dist[0] + dz * np.arange(n)
    lo = np.clip(np.searchsorted(dist, targets, side="right") - 1, 0, len(dist) - 2)
    w = np.clip((targets - dist[lo]) / (dist[lo + 1] - dist[lo]), 0.0, 1.0)
    out = np.empty((n, *stack.shape[1:]), dtype=np.float64)
    for k in range(n):
        out[k] = (1.0 - w[k]) * stack[lo[k]] + w[k] * stack[lo[k] + 1]
    return out, dz


def read_dicom(
    path: str | os.PathLike | Sequence[str | os.PathLike],
    series: str | None = None,
) -> Volume:
    """Read a DICOM series (folder or list of files) as an HU :class:`Volume` in (z, y, x) order."""

    where, by_series = _read_headers(path)
    if series is None:
        if len(by_series) > 1:
            listing = [(uid, hs[0][1]["description"], len(hs)) for uid, hs in by_series.items()]
            raise MultipleSeriesError(where, listing)
        uid = next(iter(by_series))
    else:
        if series not in by_series:
            raise InputError(where, f"no series with UID {series}; it holds {', '.join(by_series)}")
        uid = series
    items = by_series[uid]
    first = items[0][1]

    for f, h in items:
        for tag, key in (("ImagePositionPatient", "ipp"), ("ImageOrientationPatient", "iop"), ("PixelSpacing", "pixel_spacing")):
            if h[key] is None:
                raise InputError(f, f"DICOM slice lacks {tag}; cannot place it in space")
            if not all(math.isfinite(v) for v in h[key]):
                raise InputError(f, f"{tag} holds values that are not finite numbers: {h[key]}")
        if not all(v > 0 for v in h["pixel_spacing"]):
            raise InputError(f, f"PixelSpacing must be positive, got {h['pixel_spacing']}")
        if h["rows"] <= 0 or h["columns"] <= 0:
            raise InputError(f, f"slice size {h['rows']} × {h['columns']} (Rows × Columns) holds no pixels")
    iop = np.array(first["iop"])
    for f, h in items:
        if not np.allclose(h["iop"], iop, atol=1e-4):
            raise InputError(f, "slices of the series have different orientations (a localizer mixed in?)")
    row_dir, col_dir = iop[:3], iop[3:]  # direction of increasing column index, of increasing row index
    normal = np.cross(row_dir, col_dir)
    if not (0.5 < np.linalg.norm(row_dir) < 2 and 0.5 < np.linalg.norm(col_dir) < 2 and np.linalg.norm(normal) > 0.5):
        raise InputError(items[0][0], f"ImageOrientationPatient {iop.tolist()} is not two perpendicular unit vectors")
    positions = np.array([h["ipp"] for _, h in items])
    dist = positions @ normal
    order = np.argsort(dist, kind="stable")
    items = [items[i] for i in order]
    positions = positions[order]
    dist = dist[order]

    resample = None
    if len(items) > 1:
        steps = np.diff(dist)
        if np.any(steps < 1e-4):
            dup = items[int(np.argmin(steps)) + 1][0]
            raise InputError(where, f"two slices at the same position (e.g. {dup.name}); the folder may mix acquisitions")
        # gantry tilt: the slice origins must stack along the normal
        lateral = (positions - positions[0]) - np.outer(dist - dist[0], normal)
        tilt_mm = float(np.max(np.linalg.norm(lateral, axis=1)))
        tilt_tag = float(first["tilt"] if first["tilt"] is not None and math.isfinite(first["tilt"]) else 0.0)
        if tilt_mm > 1e-2 * max(1.0, abs(dist[-1] - dist[0])) or abs(tilt_tag) > 1e-3:
            angle = np.degrees(np.arctan2(np.linalg.norm(lateral[-1]), dist[-1] - dist[0]))
            raise InputError(
                where,
                f"gantry tilt of {abs(tilt_tag) or angle:.2f}° (slices sheared by {tilt_mm:.2f} mm); "
                "reconstruct without tilt or resample the series before use",
            )
        median = float(np.median(steps))
        gaps = np.where(steps > 1.5 * median)[0]
        if len(gaps):
            g = int(gaps[0])
            missing = int(round(steps[g] / median)) - 1
            raise InputError(
                where,
                f"missing slice(s): a gap of {steps[g]:.3f} mm (≈{missing} slice(s) of {median:.3f} mm) "
                f"after position {dist[g]:.3f} mm",
            )
        dz = float(dist[-1] - dist[0]) / (len(dist) - 1)  # the mean step: the series' true length
        spread = float((steps.max() - steps.min()) / median)
        shift = float(np.max(np.abs(dist - (dist[0] + dz * np.arange(len(dist)))))) / dz
        if spread > RESAMPLE_SPREAD or shift > RESAMPLE_SHIFT:
            resample = (median, spread, shift)
    else:
        dz = first["spacing_between"] or first["thickness"] or 1.0
        if not (math.isfinite(dz) and dz > 0):
            raise InputError(items[0][0], f"slice thickness {dz} is not a positive number")

    rows, cols = first["rows"], first["columns"]
    check_claim(where, (len(items), rows, cols), 8, "reading the DICOM series")
    slices = []
    for f, h in items:
        with third_party(f, "cannot decode pixel data"):
            arr = _dcmread(f).pixel_array
        if arr.shape != (rows, cols):
            raise InputError(f, f"slice is {arr.shape}, the series is {(rows, cols)}")
        value_dtype(arr.dtype, f, "pixel values")
        slope, intercept = _rescale(f, h)
        slices.append((arr, slope, intercept))
    integral = all(float(s).is_integer() and float(i).is_integer() and arr.dtype.kind in "iub" for arr, s, i in slices)
    out_dtype = np.int16 if integral else np.float32
    stack = np.empty((len(slices), rows, cols), dtype=np.float64 if not integral else np.int64)
    for k, (arr, slope, intercept) in enumerate(slices):
        stack[k] = arr.astype(np.float64) * slope + intercept if not integral else arr.astype(np.int64) * int(slope) + int(intercept)
    del slices
    if not integral and not np.all(np.isfinite(stack)):
        raise InputError(where, "rescaled values (RescaleSlope × pixel + RescaleIntercept) overflow to infinity")
    extra_resample = {}
    if resample is not None:
        median, spread, shift = resample
        stack, dz = _resample_z(stack.astype(np.float64), dist, median)
        if integral:
            stack = np.rint(stack)
        steps = np.diff(dist)
        warnings.warn(
            f"{where}: irregular slice spacing ({steps.min():.4f}–{steps.max():.4f} mm, spread {spread:.1%} of the "
            f"median {median:.4f} mm); resampled by linear interpolation from the {len(dist)} true slice positions "
            f"onto {stack.shape[0]} slices at {dz:.4f} mm",
            stacklevel=2,
        )
        extra_resample = {"z_resampled": {"from_slices": len(dist), "step_min_mm": float(steps.min()),
                                          "step_max_mm": float(steps.max()), "spread": spread, "dz_mm": dz}}
    if integral:
        lo, hi = stack.min(), stack.max()
        if lo < np.iinfo(np.int32).min or hi > np.iinfo(np.int32).max:
            out_dtype = np.float64
        elif lo < -32768 or hi > 32767:
            out_dtype = np.int32
    stack = stack.astype(out_dtype)

    ps = first["pixel_spacing"]  # (row spacing, column spacing) = (dy, dx)
    # array axes: 0 = slice (along normal), 1 = row (along col_dir), 2 = column (along row_dir)
    arr, spacing, origin, oblique = to_zyx(
        stack, (dz, ps[0], ps[1]), positions[0], np.vstack([normal, col_dir, row_dir]), source=where
    )
    modality = first["modality"]
    units = "HU" if modality == "CT" or first["has_intercept"] else "grey"
    extra = {
        "format": "dicom",
        "series_uid": uid,
        "series_description": first["description"],
        "modality": modality,
        "manufacturer": first["manufacturer"],
        "kernel": first["kernel"],
        "kvp": first["kvp"],
        "slice_thickness_mm": float(first["thickness"] or 0) if math.isfinite(first["thickness"] or 0) else 0.0,
        "n_files": len(items),
        **extra_resample,
    }
    if oblique:
        extra["direction"] = oblique
    scanner = " ".join(x for x in (extra["manufacturer"], first["model"]) if x) or None
    prov = Provenance(source=where, scanner=scanner, steps=["read dicom"], extra=extra)
    return Volume(arr, spacing, origin, units, prov)


def write_dicom(vol: Volume, folder: Path, series_description: str = "trabecula") -> None:
    """Write ``vol`` as a single-frame CT series (one file per z slice) into an existing empty ``folder``.

    HU volumes are stored as int16 with RescaleSlope 1 / Intercept 0 when their values are integers
    in range; otherwise a slope is chosen so the values fit int16 (the read back is then quantised
    to that slope). Orientation is axial (ImageOrientationPatient 1\\0\\0\\0\\1\\0).
    """
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    arr = vol.numpy()
    if np.issubdtype(arr.dtype, np.integer) and arr.min() >= -32768 and arr.max() <= 32767:
        slope, intercept = 1.0, 0.0
        stored = arr.astype(np.int16)
    else:
        a = arr.astype(np.float64)
        lo, hi = float(a.min()), float(a.max())
        intercept = 0.0
        span = max(abs(lo), abs(hi), 1e-6)
        slope = float(span / 32000.0)
        stored = np.clip(np.rint((a - intercept) / slope), -32768, 32767).astype(np.int16)
    study_uid, series_uid, frame_uid = generate_uid(), generate_uid(), generate_uid()
    now = _dt.datetime.now()
    dz, dy, dx = vol.spacing
    z0, y0, x0 = vol.origin
    for k in range(stored.shape[0]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        sop_uid = generate_uid()
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = sop_uid
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = frame_uid
        ds.Modality = "CT" if vol.units == "HU" else "OT"
        ds.SeriesDescription = series_description[:64]
        ds.Manufacturer = "trabecula"
        ds.PatientName = "Anonymous"
        ds.PatientID = "trabecula"
        ds.StudyDate = ds.SeriesDate = now.strftime("%Y%m%d")
        ds.StudyTime = ds.SeriesTime = now.strftime("%H%M%S")
        ds.SeriesNumber = 1
        ds.InstanceNumber = k + 1
        ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
        ds.ImagePositionPatient = [f"{x0:.6f}", f"{y0:.6f}", f"{z0 + k * dz:.6f}"]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.SliceLocation = f"{z0 + k * dz:.6f}"
        ds.PixelSpacing = [f"{dy:.8g}", f"{dx:.8g}"]
        ds.SliceThickness = f"{dz:.8g}"
        ds.SpacingBetweenSlices = f"{dz:.8g}"
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = stored.shape[1], stored.shape[2]
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleSlope = f"{slope:.10g}"
        ds.RescaleIntercept = f"{intercept:.10g}"
        ds.RescaleType = "HU" if vol.units == "HU" else "US"
        ds.PixelData = np.ascontiguousarray(stored[k]).tobytes()
        ds.save_as(folder / f"slice_{k:05d}.dcm", enforce_file_format=True)
