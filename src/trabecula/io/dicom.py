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
  are errors; slightly irregular slice spacing (over 1 %) is a warning and the median spacing is used.
"""

from __future__ import annotations

import datetime as _dt
import os
import warnings
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from trabecula.errors import InputError, TrabeculaError
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
    return [(uid, str(hs[0][1].get("SeriesDescription", "")), len(hs)) for uid, hs in headers.items()]


def _read_headers(path):
    import pydicom
    from pydicom.errors import InvalidDicomError

    where, files = _dicom_files(path)
    by_series: dict[str, list] = defaultdict(list)
    bad = []
    for f in files:
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
        except (InvalidDicomError, EOFError, OSError, ValueError, TypeError, AttributeError, KeyError) as exc:
            bad.append((f, exc))
            continue
        if "PixelData" not in ds and "ImagePositionPatient" not in ds:
            bad.append((f, "no image data"))
            continue
        by_series[str(ds.get("SeriesInstanceUID", "unknown"))].append((f, ds))
    if not by_series:
        if len(files) == 1:
            raise InputError(files[0], "not a DICOM image file (no DICOM header could be read)")
        raise InputError(where, f"no DICOM image files among its {len(files)} files")
    if bad:
        names = ", ".join(f.name for f, _ in bad[:3])
        warnings.warn(f"{where}: skipped {len(bad)} file(s) that are not DICOM images ({names}{'…' if len(bad) > 3 else ''})", stacklevel=3)
    return where, dict(by_series)


def read_dicom(
    path: str | os.PathLike | Sequence[str | os.PathLike],
    series: str | None = None,
) -> Volume:
    """Read a DICOM series (folder or list of files) as an HU :class:`Volume` in (z, y, x) order."""
    where, by_series = _read_headers(path)
    if series is None:
        if len(by_series) > 1:
            listing = [(uid, str(hs[0][1].get("SeriesDescription", "")), len(hs)) for uid, hs in by_series.items()]
            raise MultipleSeriesError(where, listing)
        uid = next(iter(by_series))
    else:
        if series not in by_series:
            raise InputError(where, f"no series with UID {series}; it holds {', '.join(by_series)}")
        uid = series
    items = by_series[uid]
    first = items[0][1]

    for f, ds in items:
        for tag in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
            if tag not in ds:
                raise InputError(f, f"DICOM slice lacks {tag}; cannot place it in space")
    iop = np.array([float(v) for v in first.ImageOrientationPatient])
    for f, ds in items:
        if not np.allclose([float(v) for v in ds.ImageOrientationPatient], iop, atol=1e-4):
            raise InputError(f, "slices of the series have different orientations (a localizer mixed in?)")
    row_dir, col_dir = iop[:3], iop[3:]  # direction of increasing column index, of increasing row index
    normal = np.cross(row_dir, col_dir)
    positions = np.array([[float(v) for v in ds.ImagePositionPatient] for _, ds in items])
    dist = positions @ normal
    order = np.argsort(dist, kind="stable")
    items = [items[i] for i in order]
    positions = positions[order]
    dist = dist[order]

    if len(items) > 1:
        steps = np.diff(dist)
        if np.any(steps < 1e-4):
            dup = items[int(np.argmin(steps)) + 1][0]
            raise InputError(where, f"two slices at the same position (e.g. {dup.name}); the folder may mix acquisitions")
        # gantry tilt: the slice origins must stack along the normal
        lateral = (positions - positions[0]) - np.outer(dist - dist[0], normal)
        tilt_mm = float(np.max(np.linalg.norm(lateral, axis=1)))
        tilt_tag = float(first.get("GantryDetectorTilt", 0) or 0)
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
        spread = (steps.max() - steps.min()) / median
        if spread > 0.01:
            warnings.warn(
                f"{where}: irregular slice spacing ({steps.min():.4f}–{steps.max():.4f} mm); using the median {median:.4f} mm",
                stacklevel=2,
            )
        dz = median
    else:
        dz = float(first.get("SpacingBetweenSlices", first.get("SliceThickness", 1.0)) or 1.0)

    import pydicom

    slices = []
    rows, cols = int(first.Rows), int(first.Columns)
    for f, _ in items:
        try:
            ds = pydicom.dcmread(f)
            arr = ds.pixel_array
        except Exception as exc:  # pydicom raises many types for broken pixel data
            raise InputError(f, f"cannot decode pixel data ({exc})") from exc
        if arr.shape != (rows, cols):
            raise InputError(f, f"slice is {arr.shape}, the series is {(rows, cols)}")
        slope = float(ds.get("RescaleSlope", 1) or 1)
        intercept = float(ds.get("RescaleIntercept", 0) or 0)
        slices.append((arr, slope, intercept))
    integral = all(float(s).is_integer() and float(i).is_integer() for _, s, i in slices)
    out_dtype = np.int16 if integral else np.float32
    stack = np.empty((len(slices), rows, cols), dtype=np.float64 if not integral else np.int32)
    for k, (arr, slope, intercept) in enumerate(slices):
        stack[k] = arr.astype(np.float64) * slope + intercept if not integral else arr.astype(np.int32) * int(slope) + int(intercept)
    if integral and (stack.min() < -32768 or stack.max() > 32767):
        out_dtype = np.int32
    stack = stack.astype(out_dtype)

    ps = [float(v) for v in first.PixelSpacing]  # (row spacing, column spacing) = (dy, dx)
    # array axes: 0 = slice (along normal), 1 = row (along col_dir), 2 = column (along row_dir)
    arr, spacing, origin, oblique = to_zyx(
        stack, (dz, ps[0], ps[1]), positions[0], np.vstack([normal, col_dir, row_dir]), source=where
    )
    def _text(value) -> str:
        if value is None:
            return ""
        if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
            return str(value)
        return "\\".join(str(v) for v in value)  # multi-valued DICOM strings, as DICOM writes them

    modality = str(first.get("Modality", ""))
    units = "HU" if modality == "CT" or "RescaleIntercept" in first else "grey"
    extra = {
        "format": "dicom",
        "series_uid": uid,
        "series_description": str(first.get("SeriesDescription", "")),
        "modality": modality,
        "manufacturer": str(first.get("Manufacturer", "")),
        "kernel": _text(first.get("ConvolutionKernel")),
        "kvp": str(first.get("KVP", "")),
        "slice_thickness_mm": float(first.get("SliceThickness", 0) or 0),
        "n_files": len(items),
    }
    if oblique:
        extra["direction"] = oblique
    scanner = " ".join(x for x in (extra["manufacturer"], str(first.get("ManufacturerModelName", ""))) if x) or None
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
