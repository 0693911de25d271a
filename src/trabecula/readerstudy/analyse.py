"""Analyse a reader study: Table 2 of the vertebra study (score counts per criterion, method and reader, with
Kendall's W per criterion and method), Table 3 (means ± SD per method, Mann–Whitney U between methods), and
means ± SD per method and reader; written as CSV and as an HTML section.

Conventions, as the study's: Kendall's W is computed per criterion and method over the images of that method
(subjects) scored by every reader (raters), tie-corrected (:func:`~.statistics.kendall_w`), with its χ² test;
means, SDs (n − 1) and the Mann–Whitney U test pool every reader's scores of a method (the study's 30 images ×
3 readers = 90 scores a method; its Table 3 is reproduced from its Table 2 this way, tests/readerstudy).
"""

from __future__ import annotations

import html
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sqlmodel import Session, select

from trabecula.errors import InputError
from trabecula.readerstudy import db
from trabecula.readerstudy.criteria import CRITERIA
from trabecula.readerstudy.statistics import kendall_w, mann_whitney


def answers_frame(path: str | Path) -> pd.DataFrame:
    """Every score in the study, long format: reader, reader_id, image_id, method, criterion, score."""
    engine = db.open_study(path)
    try:
        with Session(engine) as s:
            readers = s.exec(select(db.Reader).order_by(db.Reader.created, db.Reader.id)).all()
            methods = dict(s.exec(select(db.Image.id, db.Image.method)).all())
            answers = s.exec(select(db.Answer)).all()
            info = {m.key: m.value for m in s.exec(select(db.Meta))}
    finally:
        engine.dispose()
    names = {r.id: r.name for r in readers}
    rows = [(names[a.reader_id], a.reader_id, a.image_id, methods[a.image_id], c.key, getattr(a, c.key))
            for a in answers for c in CRITERIA if getattr(a, c.key) is not None]
    df = pd.DataFrame(rows, columns=["reader", "reader_id", "image_id", "method", "criterion", "score"])
    df.attrs["readers"] = [r.id for r in readers]
    df.attrs["reader_names"] = names
    df.attrs["methods"] = list(json.loads(info.get("methods", "{}")) or sorted(set(methods.values())))
    return df


@dataclass
class Analysis:
    """The tables of a reader study (pandas DataFrames) and the order of readers and methods."""

    distribution: pd.DataFrame  # criterion, method, reader, n1..n5
    kendall: pd.DataFrame  # criterion, method, W, chi2, df, p, subjects, raters, band
    means: pd.DataFrame  # criterion, method, n, mean, sd
    reader_means: pd.DataFrame  # criterion, method, reader, n, mean, sd
    mann_whitney: pd.DataFrame  # criterion, method_a, method_b, U, z, p, n_a, n_b
    readers: list[str]
    methods: list[str]

    def to_dict(self) -> dict:
        return {k: json.loads(getattr(self, k).to_json(orient="records")) for k in
                ("distribution", "kendall", "means", "reader_means", "mann_whitney")}


def _sd(x: np.ndarray) -> float:
    return float(np.std(x, ddof=1)) if x.size > 1 else float("nan")


def analyse(path: str | Path) -> Analysis:
    """The study's statistics from the database ``path`` (see the module docstring for the conventions)."""
    df = answers_frame(path)
    if df.empty:
        raise InputError(path, "no answers yet: nothing to analyse")
    readers = df.attrs["readers"]
    names = df.attrs["reader_names"]
    methods = [m for m in df.attrs["methods"] if m in set(df["method"])]
    dist, kend, means, rmeans, mwu = [], [], [], [], []
    for c in CRITERIA:
        dc = df[df["criterion"] == c.key]
        for m in methods:
            dm = dc[dc["method"] == m]
            for rid in readers:
                x = dm.loc[dm["reader_id"] == rid, "score"].to_numpy(float)
                counts = {f"n{k}": int((x == k).sum()) for k in range(1, 6)}
                dist.append({"criterion": c.key, "method": m, "reader": names[rid], **counts})
                rmeans.append({"criterion": c.key, "method": m, "reader": names[rid], "n": int(x.size),
                               "mean": float(x.mean()) if x.size else float("nan"), "sd": _sd(x)})
            wide = dm.pivot_table(index="image_id", columns="reader_id", values="score", aggfunc="first")
            wide = wide.reindex(columns=[r for r in readers if r in wide.columns]).dropna()
            if wide.shape[0] >= 2 and wide.shape[1] >= 2:
                kend.append({"criterion": c.key, "method": m, **kendall_w(wide.to_numpy(float)).to_dict()})
            else:
                kend.append({"criterion": c.key, "method": m, "W": float("nan"), "chi2": float("nan"), "df": 0,
                             "p": float("nan"), "subjects": int(wide.shape[0]), "raters": int(wide.shape[1]),
                             "band": "too few images scored by every reader"})
            x = dm["score"].to_numpy(float)
            means.append({"criterion": c.key, "method": m, "n": int(x.size),
                          "mean": float(x.mean()) if x.size else float("nan"), "sd": _sd(x)})
        for a, b in itertools.combinations(methods, 2):
            xa = dc.loc[dc["method"] == a, "score"].to_numpy(float)
            xb = dc.loc[dc["method"] == b, "score"].to_numpy(float)
            if xa.size and xb.size:
                mwu.append({"criterion": c.key, "method_a": a, "method_b": b, **mann_whitney(xa, xb).to_dict()})
    return Analysis(pd.DataFrame(dist), pd.DataFrame(kend), pd.DataFrame(means), pd.DataFrame(rmeans),
                    pd.DataFrame(mwu, columns=["criterion", "method_a", "method_b", "U", "z", "p", "n_a", "n_b"]),
                    [names[r] for r in readers], methods)


def _f(x: float, d: int = 3) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.{d}f}"


def _p(p: float) -> str:
    return "—" if p is None or not math.isfinite(p) else ("<0.001" if p < 0.001 else f"{p:.3f}")


def html_section(a: Analysis, heading: bool = True) -> str:
    """An HTML ``<section>`` with Table 2's layout (criterion · method · observer · counts of scores 1–5 ·
    Kendall's W · p) and Table 3's (means ± SD per method, Mann–Whitney p), then means ± SD per reader.
    Every name is HTML-escaped."""
    e = html.escape
    labels = {c.key: c.label for c in CRITERIA}
    out = ['<section class="reader-study">' + ("<h2>Reader study</h2>" if heading else ""),
           "<table><caption>Interobserver agreement for subjective assessment scores (the study's Table 2 "
           "layout); W: Kendall's W with the tie correction, p: its χ² test</caption>",
           "<thead><tr><th>Index</th><th>Method</th><th>Observer</th>"
           + "".join(f"<th>{k}</th>" for k in range(1, 6)) + "<th>Kendall's W</th><th>p</th><th>agreement</th></tr></thead><tbody>"]
    kd = {(r.criterion, r.method): r for r in a.kendall.itertuples()}
    nr = len(a.readers)
    for c in CRITERIA:
        first_c = True
        for m in a.methods:
            rows = a.distribution[(a.distribution["criterion"] == c.key) & (a.distribution["method"] == m)]
            k = kd.get((c.key, m))
            for i, r in enumerate(rows.itertuples()):
                cells = []
                if first_c:
                    cells.append(f'<th rowspan="{nr * len(a.methods)}">{e(labels[c.key])}</th>')
                    first_c = False
                if i == 0:
                    cells.append(f'<td rowspan="{nr}">{e(m)}</td>')
                cells.append(f"<td>{e(str(r.reader))}</td>")
                cells += [f"<td>{getattr(r, f'n{s}') if s <= c.points else ''}</td>" for s in range(1, 6)]
                if i == 0 and k is not None:
                    cells += [f'<td rowspan="{nr}">{_f(k.W)}</td>', f'<td rowspan="{nr}">{_p(k.p)}</td>',
                              f'<td rowspan="{nr}">{e(k.band)}</td>']
                out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    out.append("<table><caption>Subjective mean scores (mean ± SD over every reader's scores) and the "
               "Mann–Whitney U test between methods (normal approximation, tie-corrected)</caption><thead><tr><th></th>"
               + "".join(f"<th>{e(c.label)}</th>" for c in CRITERIA) + "</tr></thead><tbody>")
    for m in a.methods:
        mm = a.means[a.means["method"] == m].set_index("criterion")
        n = int(mm["n"].max()) if len(mm) else 0
        out.append(f"<tr><th>{e(m)} (n = {n})</th>" + "".join(
            f"<td>{_f(mm.loc[c.key, 'mean'], 2)} ± {_f(mm.loc[c.key, 'sd'])}</td>" for c in CRITERIA) + "</tr>")
    for r in a.mann_whitney[["method_a", "method_b"]].drop_duplicates().itertuples():
        sub = a.mann_whitney[(a.mann_whitney["method_a"] == r.method_a) & (a.mann_whitney["method_b"] == r.method_b)].set_index("criterion")
        out.append(f"<tr><th>p, {e(r.method_a)} vs {e(r.method_b)}</th>" + "".join(
            f"<td>{_p(sub.loc[c.key, 'p']) if c.key in sub.index else '—'}</td>" for c in CRITERIA) + "</tr>")
    out.append("</tbody></table>")
    out.append("<table><caption>Mean ± SD per method and reader</caption><thead><tr><th>Method</th><th>Observer</th>"
               + "".join(f"<th>{e(c.label)}</th>" for c in CRITERIA) + "</tr></thead><tbody>")
    rm = a.reader_means.set_index(["method", "reader", "criterion"])
    for m in a.methods:
        for rd in a.readers:
            out.append(f"<tr><td>{e(m)}</td><td>{e(rd)}</td>" + "".join(
                f"<td>{_f(rm.loc[(m, rd, c.key), 'mean'], 2)} ± {_f(rm.loc[(m, rd, c.key), 'sd'])}</td>" for c in CRITERIA) + "</tr>")
    out.append("</tbody></table></section>")
    return "\n".join(out)


_PAGE = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Reader study</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #bbb;padding:.2em .5em;text-align:center}}caption{{text-align:left;font-weight:bold}}</style>
</head><body>{body}</body></html>
"""


def write_analysis(a: Analysis, out_dir: str | Path, force: bool = False) -> dict[str, Path]:
    """Write ``table2.csv`` (counts + Kendall's W), ``kendall.csv``, ``means.csv``, ``reader_means.csv``,
    ``mann_whitney.csv`` and ``readerstudy.html`` (the section, as a page) into ``out_dir``."""
    from trabecula.io import check_writable

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table2 = a.distribution.merge(a.kendall[["criterion", "method", "W", "p", "band"]], on=["criterion", "method"], how="left")
    files = {"table2": (out_dir / "table2.csv", table2), "kendall": (out_dir / "kendall.csv", a.kendall),
             "means": (out_dir / "means.csv", a.means), "reader_means": (out_dir / "reader_means.csv", a.reader_means),
             "mann_whitney": (out_dir / "mann_whitney.csv", a.mann_whitney)}
    html_path = out_dir / "readerstudy.html"
    for p, _ in files.values():
        check_writable(p, force)
    check_writable(html_path, force)
    written = {}
    for name, (p, frame) in files.items():
        tmp = p.with_name(f".{p.name}.tmp")
        frame.to_csv(tmp, index=False)
        tmp.replace(p)
        written[name] = p
    tmp = html_path.with_name(f".{html_path.name}.tmp")
    tmp.write_text(_PAGE.format(body=html_section(a)), encoding="utf-8")
    tmp.replace(html_path)
    written["html"] = html_path
    return written
