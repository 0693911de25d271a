"""A summary of a volume: geometry, units, value range, histogram and bone fraction (``trabecula info``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from trabecula.volume import Volume

#: Default bone threshold in HU for the bone fraction in ``info`` (cancellous bone in clinical CT is
#: roughly 150–400 HU, cortical bone above 1000 HU; 200 HU separates bone from marrow and soft tissue).
DEFAULT_BONE_THRESHOLD_HU = 200.0


def _hist_range(lo: float, hi: float) -> tuple[float, float]:
    """A histogram range with room for finite bins: a constant volume (or one whose range is below float64's
    resolution at its magnitude, e.g. uint64 values near 2**63) gets a window around its value."""
    if hi > lo and (hi - lo) > 64 * np.spacing(max(abs(lo), abs(hi))):
        return lo, hi
    return lo, lo + max(1.0, 1e-6 * abs(lo))


def summarize(vol: Volume, bone_threshold: float | None = None, bins: int = 16) -> dict[str, Any]:
    """Numbers that describe a volume; computed chunk by chunk for lazy volumes.

    The bone fraction is the fraction of voxels at or above ``bone_threshold`` (default
    :data:`DEFAULT_BONE_THRESHOLD_HU` for HU volumes; the foreground fraction for binary volumes; not
    defined for grey values unless a threshold is given).
    """
    data = vol.data
    if vol.is_lazy:
        import dask
        import dask.array as da

        d = data.astype(np.float64)
        lo, hi, mean, sd = dask.compute(d.min(), d.max(), d.mean(), d.std())
        lo, hi = float(lo), float(hi)
        counts, edges = da.histogram(d, bins=bins, range=_hist_range(lo, hi))
        counts = counts.compute()
    else:
        d = np.asarray(data)
        lo, hi = float(d.min()), float(d.max())
        mean, sd = float(d.mean(dtype=np.float64)), float(d.std(dtype=np.float64))
        counts, edges = np.histogram(d, bins=bins, range=_hist_range(lo, hi))
    qs = (1, 5, 25, 50, 75, 95, 99)
    if vol.is_lazy:  # from a fine histogram, computed chunk by chunk
        fine, fedges = da.histogram(d, bins=4096, range=_hist_range(lo, hi))
        cdf = np.cumsum(fine.compute()) / max(1, vol.data.size)
        pct = {f"p{q}": float(fedges[min(int(np.searchsorted(cdf, q / 100.0)), len(fedges) - 2) + 1]) for q in qs}
    else:  # exact (on a regular subsample of at most 8 M voxels)
        sub = d.ravel()[:: max(1, d.size // 8_000_000)]
        pct = {f"p{q}": float(v) for q, v in zip(qs, np.percentile(sub, qs), strict=True)}
    if vol.units == "binary":
        thr, basis = 0.5, "foreground (nonzero) voxels"
    elif bone_threshold is not None:
        thr, basis = float(bone_threshold), f"voxels ≥ {bone_threshold:g} {vol.units}"
    elif vol.units == "HU":
        thr, basis = DEFAULT_BONE_THRESHOLD_HU, f"voxels ≥ {DEFAULT_BONE_THRESHOLD_HU:g} HU"
    else:
        thr, basis = None, f"undefined for {vol.units} values without a threshold"
    if thr is None:
        frac = float("nan")
    elif vol.is_lazy:
        frac = float((data >= thr).mean().compute()) if vol.units != "binary" else float((data != 0).mean().compute())
    else:
        frac = float(np.mean(d >= thr)) if vol.units != "binary" else float(np.mean(d != 0))
    return {
        "source": vol.provenance.source,
        "shape_zyx": list(vol.shape),
        "spacing_mm_zyx": list(vol.spacing),
        "origin_mm_zyx": list(vol.origin),
        "extent_mm_zyx": list(vol.extent_mm),
        "units": vol.units,
        "dtype": str(vol.dtype),
        "lazy": vol.is_lazy,
        "min": lo,
        "max": hi,
        "mean": float(mean),
        "sd": float(sd),
        "percentiles": pct,
        "histogram": {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]},
        "bone_fraction": frac,
        "bone_fraction_basis": basis,
        "provenance": vol.provenance.to_dict(),
    }


def summarize_projections(proj) -> dict[str, Any]:
    """Numbers that describe a projection set (:class:`trabecula.io.ProjectionData`): angles, detector, flats, counts."""
    return {
        "source": proj.source,
        "angles": proj.n_angles,
        "angle_range_deg": [float(np.degrees(proj.angles.min())), float(np.degrees(proj.angles.max()))],
        "angle_step_deg": _angle_steps(proj.angles),
        "detector_rows_cols": list(proj.data.shape[1:]),
        "flats": 0 if proj.flats is None else len(proj.flats),
        "darks": 0 if proj.darks is None else len(proj.darks),
        "counts_range": [float(proj.data.min()), float(proj.data.max())],
    }


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.4g}"
    if isinstance(x, list | tuple):
        return " × ".join(_fmt(v) for v in x)
    return str(x)


def summary_rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """The rows of ``trabecula info``'s table for a :func:`summarize` result (a text histogram included)."""
    rows = [
        ("source", str(summary["source"])),
        ("shape (z, y, x)", _fmt(summary["shape_zyx"])),
        ("spacing (mm)", _fmt(summary["spacing_mm_zyx"])),
        ("extent (mm)", _fmt(summary["extent_mm_zyx"])),
        ("origin (mm)", _fmt(summary["origin_mm_zyx"])),
    ]
    guessed = summary["provenance"]["extra"].get("units_guessed")
    rows.append(("units", summary["units"] + (f" (guessed: {guessed})" if guessed else "")))
    rows.append(("dtype", summary["dtype"] + (" (lazy, chunked)" if summary["lazy"] else "")))
    rows.append(("range", f"{summary['min']:.6g} … {summary['max']:.6g}"))
    rows.append(("mean ± SD", f"{summary['mean']:.5g} ± {summary['sd']:.5g}"))
    rows.append(("percentiles", "  ".join(f"{k}={v:.4g}" for k, v in summary["percentiles"].items())))
    counts, edges = summary["histogram"]["counts"], summary["histogram"]["edges"]
    peak = max(counts) or 1
    bars = "▁▂▃▄▅▆▇█"
    spark = "".join(bars[min(7, int(8 * c / peak))] if c else " " for c in counts)
    rows.append(("histogram", f"{edges[0]:.4g} [{spark}] {edges[-1]:.4g}"))
    bf = summary["bone_fraction"]
    rows.append(("bone fraction", ("n/a" if bf != bf else f"{bf:.4f}") + f"  ({summary['bone_fraction_basis']})"))
    for k, level in enumerate(summary.get("levels") or []):  # an OME-Zarr pyramid
        rows.append(("levels" if k == 0 else "", f"{level['path']}: {_fmt(level['shape'])} voxels of "
                                                 f"{_fmt(level['scale_mm'])} mm"))
    steps = summary["provenance"]["steps"]
    if steps:
        rows.append(("steps", " → ".join(steps)))
    return rows


def _angle_steps(angles) -> list[float]:
    """Smallest and largest step between consecutive (sorted) view angles, in degrees ([] for one view)."""
    d = np.diff(np.sort(np.degrees(np.asarray(angles, np.float64))))
    return [float(d.min()), float(d.max())] if d.size else []


def _angles_text(summary: dict[str, Any]) -> str:
    """``0–179° (181 views, step 1.00°)``; uneven steps are given as their range."""
    lo, hi = summary["angle_range_deg"]
    n = summary["angles"]
    views = f"{n} view" + ("" if n == 1 else "s")
    steps = summary.get("angle_step_deg") or []
    if steps:
        a, b = steps
        views += f", step {a:.2f}°" if b - a <= 1e-3 * max(abs(b), 1e-9) + 1e-6 else f", steps {a:.3g}–{b:.3g}°"
    span = f"{lo:.4g}°" if hi == lo else f"{lo:.4g}–{hi:.4g}°"
    return f"{span} ({views})"


def projection_rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """The rows of ``trabecula info``'s table for a :func:`summarize_projections` result."""
    rows, cols = summary["detector_rows_cols"]
    lo, hi = summary["counts_range"]
    return [
        ("source", str(summary["source"])),
        ("angles", _angles_text(summary)),
        ("detector", f"{rows} rows × {cols} columns"),
        ("flats", str(summary["flats"])),
        ("darks", str(summary["darks"])),
        ("counts", f"{lo:.6g} … {hi:.6g}"),
    ]
