"""Morphometry results as tables and files: the rows shown for each volume, one CSV row per volume, JSON.

The results are :meth:`MorphometryResult.to_dict` dictionaries (``source`` set to the input path). Files are
written atomically (:func:`trabecula.io.atomic_output`) and an existing file is replaced only with ``force``.
The parsers turn the ``trabecula measure`` option texts into :func:`.measure` arguments, with a
:class:`~trabecula.errors.ParameterError` naming the option.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from trabecula.errors import ParameterError
from trabecula.io import atomic_output
from trabecula.morphometry.measure import METRICS

#: (result field, table label, format) — the parameters shown in the results table, in order
TABLE_ROWS: list[tuple[str, str, str]] = [
    ("bv_tv", "BV/TV", "{:.4f}"),
    ("tb_th_mm", "Tb.Th (mm)", "{:.4f}"),
    ("tb_th_sd_mm", "Tb.Th SD (mm)", "{:.4f}"),
    ("tb_th_max_mm", "Tb.Th max (mm)", "{:.4f}"),
    ("tb_sp_mm", "Tb.Sp (mm)", "{:.4f}"),
    ("tb_sp_sd_mm", "Tb.Sp SD (mm)", "{:.4f}"),
    ("tb_sp_max_mm", "Tb.Sp max (mm)", "{:.4f}"),
    ("tb_n_per_mm", "Tb.N 1/(Th+Sp) (1/mm)", "{:.4f}"),
    ("tb_n_plate_per_mm", "Tb.N plate BV/TV÷Th (1/mm)", "{:.4f}"),
    ("conn_d_per_mm3", "Conn.D (1/mm³)", "{:.3f}"),
    ("euler_char", "Euler χ", "{:.0f}"),
    ("smi", "SMI", "{:.3f}"),
    ("smi_concave_fraction", "concave surface", "{:.3f}"),
    ("da", "DA (1-λmin/λmax)", "{:.3f}"),
    ("da_scanco", "DA (λmax/λmin)", "{:.3f}"),
    ("threshold", "threshold", "{:.6g}"),
    ("voi_volume_mm3", "VOI volume (mm³)", "{:.4g}"),
    ("spacing_mm", "voxel (mm)", "{}"),
    ("resolution_mm", "resolution FWHM (mm)", "{:.3g}"),
    ("voi_vbmd_mg_cm3", "vBMD in VOI (mg HA/cm³)", "{:.1f}"),
    ("tt_vbmd_mg_cm3", "Tt.vBMD (mg HA/cm³)", "{:.1f}"),
    ("tb_vbmd_mg_cm3", "Tb.vBMD (mg HA/cm³)", "{:.1f}"),
    ("ct_vbmd_mg_cm3", "Ct.vBMD (mg HA/cm³)", "{:.1f}"),
    ("cortical.tt_ar_mm2", "Tt.Ar (mm²)", "{:.2f}"),
    ("cortical.ct_ar_mm2", "Ct.Ar (mm²)", "{:.2f}"),
    ("cortical.tb_ar_mm2", "Tb.Ar (mm²)", "{:.2f}"),
    ("cortical.ct_th_mm", "Ct.Th (mm)", "{:.4f}"),
    ("cortical.ct_th_annulus_mm", "Ct.Th Ct.Ar/perimeter (mm)", "{:.4f}"),
    ("cortical.ct_po", "Ct.Po", "{:.4f}"),
]

#: The columns of the results CSV, in order (the main direction split into z, y, x; spacing as ``dzxdyxdx``).
CSV_FIELDS: list[str] = [
    "source", "bv_tv", "tb_th_mm", "tb_th_sd_mm", "tb_th_max_mm", "tb_sp_mm", "tb_sp_sd_mm", "tb_sp_max_mm",
    "tb_n_per_mm", "tb_n_plate_per_mm", "conn_d_per_mm3", "euler_char", "delta_chi", "smi", "smi_concave_fraction",
    "da", "da_scanco", "main_direction_z", "main_direction_y", "main_direction_x", "threshold", "threshold_method",
    "voi", "voi_volume_mm3", "voi_bounds", "bv_mm3", "bs_mm2", "mode", "upsample", "border", "spacing_mm",
    "resolution_mm", "resolution_source", "apparent", "segmentation_steps", "calibration", "voi_vbmd_mg_cm3",
    "tt_vbmd_mg_cm3", "tb_vbmd_mg_cm3", "ct_vbmd_mg_cm3", "cortical.tt_ar_mm2", "cortical.ct_ar_mm2",
    "cortical.tb_ar_mm2", "cortical.ct_ar_tt_ar", "cortical.ct_th_mm", "cortical.ct_th_sd_mm", "cortical.ct_th_2d_mm",
    "cortical.ct_th_annulus_mm", "cortical.ct_po", "cortical.ct_pm_mm", "cortical.tb_pm_mm",
    "cortical.threshold_periosteal", "cortical.threshold_endosteal", "warnings",
]

#: Columns of the per-slice cortical CSV (``measure --cortical-csv``).
CORTICAL_SLICE_FIELDS: list[str] = ["source", "z_mm", "tt_ar_mm2", "ct_ar_mm2", "tb_ar_mm2", "ct_th_mm", "ct_po"]


def field_value(d: dict[str, Any], key: str) -> Any:
    """A result's value by key; ``"cortical.x"`` reads ``d["cortical"]["x"]`` (None when absent)."""
    if "." in key:
        outer, inner = key.split(".", 1)
        sub = d.get(outer) or {}
        return sub.get(inner)
    return d.get(key)


def format_value(v: Any, fmt: str) -> str:
    """A table cell: ``fmt`` applied to a number, ``"n/a"`` for NaN, a voxel size as ``dz×dy×dx``, anything
    that is not a number as text."""
    if isinstance(v, list | tuple):
        return "×".join(f"{float(x):.4g}" for x in v)
    try:
        x = float(v)
    except (TypeError, ValueError):
        return str(v)
    if x != x:
        return "n/a"
    return fmt.format(x)


def csv_row(d: dict[str, Any]) -> dict[str, Any]:
    """One result as a CSV row over :data:`CSV_FIELDS` (missing fields empty, warnings joined by ``"; "``)."""
    row = {k: ("" if field_value(d, k) is None else field_value(d, k)) for k in CSV_FIELDS}
    md = d.get("main_direction") or [float("nan")] * 3
    row["main_direction_z"], row["main_direction_y"], row["main_direction_x"] = md
    row["spacing_mm"] = "x".join(f"{s:g}" for s in (d.get("spacing_mm") or []))
    row["warnings"] = "; ".join(d.get("warnings", []))
    row["segmentation_steps"] = "; ".join(d.get("segmentation_steps", []))
    return row


def column_groups(names: Sequence[str], width: int, min_cell: int = 11) -> list[list[int]]:
    """Split result columns into consecutive groups whose table fits ``width`` characters: each column as
    wide as its name (folded beyond 24 characters) and at least ``min_cell``, plus three for the borders."""
    groups: list[list[int]] = [[]]
    used = 0
    for k, n in enumerate(names):
        w = max(min_cell, min(len(n), 24)) + 3
        if groups[-1] and used + w > max(width, w):
            groups.append([])
            used = 0
        groups[-1].append(k)
        used += w
    return groups


def write_results_json(results: list[dict[str, Any]], path: str | os.PathLike, force: bool = False) -> Path:
    """All results as one indented JSON list (NaN written as ``NaN``), atomically."""
    text = json.dumps(results, indent=2, default=lambda o: o.item() if isinstance(o, np.generic) else str(o))
    with atomic_output(path, force=force) as tmp:
        tmp.write_text(text)
    return Path(path)


def _write_csv(path: str | os.PathLike, fields: list[str], rows: Any, force: bool) -> Path:
    """``rows`` (dicts over ``fields``) as a CSV file with a header, atomically."""
    with atomic_output(path, force=force) as tmp:
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=fields)
            w.writeheader()
            w.writerows(rows)
    return Path(path)


def write_results_csv(results: list[dict[str, Any]], path: str | os.PathLike, force: bool = False) -> Path:
    """One CSV row per result (:func:`csv_row`) under a :data:`CSV_FIELDS` header, atomically."""
    return _write_csv(path, CSV_FIELDS, (csv_row(d) for d in results), force)


def write_cortical_slices_csv(results: list[dict[str, Any]], path: str | os.PathLike, force: bool = False) -> Path:
    """The per-slice cortical parameters of every result (one row per slice, :data:`CORTICAL_SLICE_FIELDS`)."""
    rows = ({"source": d.get("source", ""), **{k: r.get(k, "") for k in CORTICAL_SLICE_FIELDS[1:]}}
            for d in results for r in (d.get("cortical") or {}).get("per_slice", []))
    return _write_csv(path, CORTICAL_SLICE_FIELDS, rows, force)


def map_paths(volumes: Sequence[Path], maps_dir: str | os.PathLike, fmt: str) -> dict[Path, tuple[Path, Path]]:
    """Where each volume's Tb.Th and Tb.Sp maps go: ``maps_dir/<stem>_tb_th.<fmt>`` and ``..._tb_sp.<fmt>``,
    the stem being the file name up to its first dot (a leading dot of ``fmt`` is dropped)."""
    d = Path(maps_dir)
    suffix = fmt.lstrip(".")
    out = {}
    for v in volumes:
        stem = v.name.split(".")[0] or v.name
        out[v] = (d / f"{stem}_tb_th.{suffix}", d / f"{stem}_tb_sp.{suffix}")
    return out


def parse_threshold(text: str) -> str | float:
    """``"isodata"`` or ``"otsu"`` (any case, returned as given) or a fixed threshold value."""
    if text.lower() in ("isodata", "otsu"):
        return text
    try:
        return float(text)
    except ValueError as exc:
        raise ParameterError("--threshold", f"use isodata, otsu or a number, got {text!r}") from exc


def parse_metrics(text: str) -> list[str]:
    """A comma-separated subset of :data:`METRICS` as a list (lower case, blanks dropped; at least one)."""
    mlist = [m.strip().lower() for m in text.split(",") if m.strip()]
    bad = [m for m in mlist if m not in METRICS]
    if bad or not mlist:
        raise ParameterError("--metrics", f"unknown metric(s) {', '.join(bad) or '(none)'}; "
                                          f"choose from {', '.join(METRICS)}")
    return mlist
