"""Study tables laid out like Tables 4 and 5 of the vertebra pix2pixHD study, as pandas DataFrames,
CSV and Markdown.

One row per structural parameter: the reference's and the method's mean ± SD, the paired t-test
p-value, Pearson's R and its p-value — the study's columns — followed by the agreement columns the
study lacked: Bland–Altman bias (absolute and %), 95 % limits of agreement and ICC(2,1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from trabecula.errors import ParameterError
from trabecula.io import atomic_output
from trabecula.stats.agreement import bland_altman, icc, kruskal, paired_t, pearson


def _mean_sd(x: np.ndarray, digits: int) -> str:
    return f"{np.mean(x):.{digits}f} ± {np.std(x, ddof=1):.{digits}f}"


def _p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def study_table(
    reference: Mapping[str, Sequence[float]],
    method: Mapping[str, Sequence[float]],
    reference_name: str = "micro-CT",
    method_name: str = "method",
    digits: int = 3,
) -> pd.DataFrame:
    """A Table-4/5-style comparison of paired measurements of ``method`` against ``reference``.

    ``reference`` and ``method`` map a parameter name (e.g. ``"BV/TV"``, ``"Tb.Th (mm)"``) to the
    per-VOI values, paired by position. Returns one row per parameter with numeric columns
    (``ref_mean``, ``ref_sd``, ``method_mean``, ``method_sd``, ``t_p``, ``r``, ``r_p``, ``bias``,
    ``bias_percent``, ``loa_low``, ``loa_high``, ``icc_2_1``, ``n``) and the formatted study columns
    (``"<reference_name>"``, ``"<method_name>"`` as ``mean ± SD``). Tests: paired Student's t-test,
    Pearson's R, Bland–Altman, ICC(2,1) (see :mod:`trabecula.stats.agreement`).
    """
    missing = [k for k in reference if k not in method]
    if missing:
        raise ParameterError("method", f"no values for {', '.join(missing)}")
    rows = []
    for param, ref_vals in reference.items():
        r = np.asarray(ref_vals, float)
        m = np.asarray(method[param], float)
        t = paired_t(m, r)
        try:
            c = pearson(m, r)
            r_val, r_p = c.r, c.p
        except ParameterError:
            r_val, r_p = float("nan"), float("nan")
        ba = bland_altman(m, r)
        rows.append({
            "parameter": param,
            reference_name: _mean_sd(r, digits),
            method_name: _mean_sd(m, digits),
            "p (paired t)": _p(t.p),
            "R": f"{r_val:.3f}",
            "p (R)": _p(r_p) if np.isfinite(r_p) else "n/a",
            "bias": f"{ba.bias:+.{digits}f} ({ba.bias_percent:+.1f} %)",
            "95 % LoA": f"{ba.loa_low:+.{digits}f} … {ba.loa_high:+.{digits}f}",
            "ICC(2,1)": f"{icc(np.column_stack([m, r]), '2,1'):.3f}",
            "n": int(r.size),
            "ref_mean": float(np.mean(r)), "ref_sd": float(np.std(r, ddof=1)),
            "method_mean": float(np.mean(m)), "method_sd": float(np.std(m, ddof=1)),
            "t_p": t.p, "r": r_val, "r_p": r_p, "bias_abs": ba.bias, "bias_percent": ba.bias_percent,
            "loa_low": ba.loa_low, "loa_high": ba.loa_high, "icc_2_1": icc(np.column_stack([m, r]), "2,1"),
        })
    return pd.DataFrame(rows)


#: the formatted columns of :func:`study_table` (after the two mean ± SD columns)
STUDY_COLUMNS = ("p (paired t)", "R", "p (R)", "bias", "95 % LoA", "ICC(2,1)", "n")


def methods_table(groups: Mapping[str, Sequence[float]], metric: str, digits: int = 3) -> pd.DataFrame:
    """Mean ± SD of one metric (e.g. SSIM) per method, with the Kruskal–Wallis p across all methods
    (the study's comparison of pix2pixHD, pix2pix and CRN)."""
    names = list(groups)
    kw = kruskal(*[groups[n] for n in names]) if len(names) >= 2 else None
    rows = []
    for n in names:
        x = np.asarray(groups[n], float)
        rows.append({"method": n, metric: _mean_sd(x, digits) if x.size > 1 else f"{x.mean():.{digits}f}",
                     "mean": float(x.mean()), "sd": float(x.std(ddof=1)) if x.size > 1 else 0.0, "n": int(x.size)})
    df = pd.DataFrame(rows)
    df.attrs["kruskal_p"] = kw.p if kw else float("nan")
    df.attrs["kruskal_h"] = kw.h if kw else float("nan")
    return df


def to_markdown(df: pd.DataFrame, columns: Sequence[str] | None = None) -> str:
    """A GitHub-flavoured Markdown table of ``df`` (the formatted columns only, by default all)."""
    cols = list(columns) if columns is not None else list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for _, row in df.iterrows():
        cells = []
        for c in cols:
            v = row[c]
            cells.append(f"{v:.4g}" if isinstance(v, float) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def display_columns(df: pd.DataFrame) -> list[str]:
    """The study-layout columns of a :func:`study_table` frame, in order."""
    numeric = {"ref_mean", "ref_sd", "method_mean", "method_sd", "t_p", "r", "r_p", "bias_abs", "bias_percent",
               "loa_low", "loa_high", "icc_2_1"}
    return [c for c in df.columns if c not in numeric]


def write_table(df: pd.DataFrame, stem: str | Path, force: bool = False, title: str | None = None) -> tuple[Path, Path]:
    """Write ``df`` as ``<stem>.csv`` (all columns) and ``<stem>.md`` (study layout), atomically."""
    stem = Path(stem)
    # append, not with_suffix: a stem may hold dots (a method label such as "crn-2.5d")
    csv_path, md_path = stem.with_name(stem.name + ".csv"), stem.with_name(stem.name + ".md")
    with atomic_output(csv_path, force=force) as tmp:
        df.to_csv(tmp, index=False)
    md = (f"### {title}\n\n" if title else "") + to_markdown(df, display_columns(df))
    with atomic_output(md_path, force=force) as tmp:
        Path(tmp).write_text(md)
    return csv_path, md_path
