"""Measure many scans: a folder or a CSV list fanned out over a dask cluster, one result row per scan,
resumable.

Each scan is one task (:func:`trabecula.cluster.run_tasks`): read, :func:`trabecula.morphometry.measure.measure`
with the same options, one row. The results CSV is rewritten (atomically) as each scan finishes, so a run
that is stopped — or a worker, or the machine — loses only the scans in flight: started again with the same
command it skips every scan already in the CSV and measures the rest. A scan that fails (unreadable,
refused) is reported with its one-line reason and not written, so the next run tries it again.

Inputs:

* a **folder** — every volume in it: files with a volume suffix (``.nrrd``, ``.nii.gz``, ``.mha``, ``.tif``,
  ``.dcm`` …) and sub-folders (a DICOM series, a TIFF stack, a Zarr/OME-Zarr), in natural order;
* a **CSV** with a ``path`` column (relative paths are relative to the CSV's folder) and optional per-scan
  columns ``voi``, ``input_spacing`` and ``units`` that override the command's options for that scan.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trabecula.errors import InputError, ParameterError, TrabeculaError

#: File suffixes taken as volumes in a folder (a sub-folder is always taken: DICOM, TIFF stack, Zarr).
VOLUME_SUFFIXES = (".nrrd", ".nhdr", ".nii", ".nii.gz", ".mha", ".mhd", ".tif", ".tiff", ".dcm", ".h5", ".hdf5",
                   ".zarr", ".ome.zarr")
#: Per-scan columns a CSV list may carry (override the command's option of the same name).
ROW_OPTIONS = ("voi", "input_spacing", "units")


def _natural(p: Path):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)]


def scan_list(source: str | os.PathLike) -> list[dict[str, Any]]:
    """The scans of a folder or a CSV list as ``{"path": Path, "voi": …, "input_spacing": …, "units": …}``."""
    src = Path(source)
    if not src.exists():
        raise InputError(src, "no such file or folder")
    if src.is_dir():
        items = [p for p in src.iterdir() if not p.name.startswith(".")
                 and (p.is_dir() or p.name.lower().endswith(VOLUME_SUFFIXES))]
        if not items:
            raise InputError(src, "holds no volume files or sub-folders to measure")
        return [{"path": p} for p in sorted(items, key=_natural)]
    if src.suffix.lower() != ".csv":
        raise InputError(src, "a batch is a folder of scans or a CSV list with a 'path' column")
    try:
        with open(src, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise InputError(src, f"cannot read the CSV list ({type(e).__name__})") from None
    if not rows or "path" not in rows[0]:
        raise InputError(src, "the CSV list needs a 'path' column and at least one row")
    scans = []
    seen: dict[str, int] = {}
    for k, r in enumerate(rows, start=2):
        text = (r.get("path") or "").strip()
        if not text:
            raise InputError(src, f"line {k}: empty path")
        p = Path(text)
        scan = {"path": p if p.is_absolute() else src.parent / p}
        if str(scan["path"]) in seen:  # results are keyed by the scan's path (resuming skips measured paths)
            raise InputError(src, f"line {k}: {text} is already listed on line {seen[str(scan['path'])]}")
        seen[str(scan["path"])] = k
        for key in ROW_OPTIONS:
            if (r.get(key) or "").strip():
                scan[key] = r[key].strip()
        scans.append(scan)
    return scans


def measured_sources(csv_path: str | os.PathLike) -> tuple[list[dict[str, str]], list[str]]:
    """Rows and header of an existing results CSV (empty when it does not exist)."""
    p = Path(csv_path)
    if not p.exists():
        return [], []
    try:
        with open(p, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
            fields = list(reader.fieldnames or [])
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise InputError(p, f"cannot read the results CSV to resume it ({type(e).__name__})") from None
    if "source" not in fields:
        raise InputError(p, "is not a trabecula results CSV (no 'source' column); choose another --csv")
    return rows, fields


def measure_scan(scan: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """Read and measure one scan (a task): its result dict, or ``{"source", "error"}`` when it fails."""
    from trabecula.io import read_volume
    from trabecula.morphometry.measure import measure

    opts = dict(options)
    spacing = scan.get("input_spacing", opts.pop("input_spacing", None))
    units = scan.get("units", opts.pop("units", None))
    opts.pop("input_spacing", None)
    opts.pop("units", None)
    if "voi" in scan:
        opts["voi"] = scan["voi"]
    path = Path(scan["path"])
    try:
        vol = read_volume(path, spacing=spacing, units=units)
        res = measure(vol, **opts)
    except TrabeculaError as e:
        return {"source": str(path), "error": str(e)}
    except MemoryError:
        return {"source": str(path), "error": f"{path}: out of memory (raise --max-memory or use --chunks)"}
    return {**res.to_dict(), "source": str(path)}


def measure_batch(source: str | os.PathLike, csv_path: str | os.PathLike, options: dict[str, Any], *,
                  client: Any = None, force: bool = False,
                  on_skip: Callable[[int], None] | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Measure every scan of ``source`` (folder or CSV list) not yet in ``csv_path``; the CSV gets one row per
    scan as each finishes. Returns ``(new results, failures)``; ``force`` starts the CSV afresh.

    ``options`` are :func:`trabecula.morphometry.measure.measure`'s keyword arguments (plus ``input_spacing``
    and ``units`` for reading); ``client`` a ``distributed.Client`` or None (in this process).
    """
    from trabecula.cluster import run_tasks
    from trabecula.morphometry.results import CSV_FIELDS, _write_csv, csv_row

    scans = scan_list(source)
    out = Path(csv_path)
    if out.suffix.lower() != ".csv":
        raise ParameterError("--csv", f"the batch's results file must end in .csv, got {out.name}")
    rows, fields = ([], []) if force else measured_sources(out)
    done = {r["source"] for r in rows}
    todo = [s for s in scans if str(s["path"]) not in done]
    if on_skip is not None:
        on_skip(len(scans) - len(todo))
    fields = fields or list(CSV_FIELDS)
    results: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []

    def save(_i: int, r: dict[str, Any]) -> None:
        if "error" in r:
            failures.append(r)
            return
        results.append(r)
        rows.append({k: v for k, v in csv_row(r).items() if k in fields})
        _write_csv(out, fields, rows, force=True)

    if todo:
        run_tasks(measure_scan, [(s,) for s in todo], client, f"measuring {len(todo)} scans", on_result=save,
                  shared={"options": options})
    return results, failures


def measure_chunked_file(path: str | os.PathLike, options: dict[str, Any], chunks: Any, *,
                         input_spacing: Any = None, units: str | None = None, client: Any = None,
                         maps: str | os.PathLike | None = None, force: bool = False) -> dict[str, Any]:
    """One volume file measured block by block (:func:`trabecula.morphometry.chunked.measure_chunked`); a Zarr /
    OME-Zarr is read lazily, so only blocks are ever in memory. ``options["voi"]`` may be a mask file on the
    same grid (read lazily too)."""
    from trabecula.io import read_volume
    from trabecula.morphometry.chunked import measure_chunked

    vol = read_volume(path, spacing=input_spacing, units=units)
    voi = options.get("voi")
    mask = None
    if voi is not None:
        text = str(voi)
        if text.split(":", 1)[0].strip().lower() in ("cylinder", "box", "auto") or ":label=" in text:
            raise ParameterError("--voi", "with --chunks the VOI is a mask file on the same grid (write a cylinder, "
                                          "box or label VOI as a mask first)")
        mask = read_volume(text)
        if tuple(mask.shape) != tuple(vol.shape):
            raise ParameterError("--voi", f"{text}: shape {tuple(mask.shape)} differs from {path}'s {tuple(vol.shape)}")
    thr = options.get("threshold")
    res = measure_chunked(vol, chunks=chunks, voi=mask, threshold=thr if isinstance(thr, int | float) else None,
                          mode=options.get("mode"), metrics=options.get("metrics", ()), border=options.get("border",
                          "continue"), voi_bounds=options.get("voi_bounds", "spacing"), seed=options.get("seed", 0),
                          maps=None if maps is None else str(maps), client=client, force=force)
    if voi is not None:
        res.voi = f"mask {voi}"
    return {**res.to_dict(), "source": str(path)}
