"""The report's plots, drawn with matplotlib (Agg, no display) from the numbers they are given.

Nothing statistical is computed here: R, the Bland–Altman bias and limits, MTF50/MTF10 come precomputed
and are drawn only when present. The only arithmetic is the Bland–Altman plot's coordinates (the mean of
each pair on x, method − reference on y — Bland & Altman, Lancet 1986).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np

from trabecula.report.data import MTFCurve, PairedData
from trabecula.report.format import format_number, format_p


def _figure(w: float = 5.2, h: float = 3.8):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=110, layout="constrained")
    return fig


def figure_png(fig) -> bytes:
    """A matplotlib Figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi)
    return buf.getvalue()


def plot_mtf(curves: Sequence[MTFCurve]):
    """All MTF curves in one plot (modulation against lp/mm), with the 50 % and 10 % levels and any
    precomputed MTF50/MTF10 marked. Returns a matplotlib Figure."""
    fig = _figure(6.0, 4.0)
    ax = fig.add_subplot()
    for c in curves:
        (line,) = ax.plot(c.frequency, c.mtf, lw=1.8, label=c.name)
        for level, f in ((0.5, c.mtf50), (0.1, c.mtf10)):
            if f is not None:
                ax.plot([f], [level], "o", color=line.get_color(), ms=5)
    for level in (0.5, 0.1):
        ax.axhline(level, color="0.6", lw=0.8, ls="--")
        ax.text(ax.get_xlim()[1], level, f" MTF{int(level * 100)}", va="center", ha="left", fontsize=8, color="0.4")
    ax.set_xlabel("spatial frequency (lp/mm)")
    ax.set_ylabel("MTF")
    ax.set_ylim(0, 1.05)
    ax.set_xlim(left=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def _label(p: PairedData) -> str:
    return f"{p.parameter}" + (f" ({p.unit})" if p.unit and p.unit not in p.parameter else "")


def plot_scatter(p: PairedData):
    """Method against reference for one parameter, the line of identity, and the given Pearson R (and p)."""
    fig = _figure(4.2, 4.0)
    ax = fig.add_subplot()
    ax.plot(p.reference, p.method, "o", ms=4, alpha=0.8)
    lo = float(np.nanmin([p.reference.min(), p.method.min()]))
    hi = float(np.nanmax([p.reference.max(), p.method.max()]))
    pad = 0.05 * (hi - lo or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.5", lw=1, ls="--", label="identity")
    if p.r is not None:
        txt = f"R = {p.r:.3f}" + (f", p {'' if format_p(p.r_p).startswith('<') else '= '}{format_p(p.r_p)}"
                                   if p.r_p is not None else "")
        ax.text(0.04, 0.96, txt, transform=ax.transAxes, va="top", fontsize=9,
                bbox={"boxstyle": "round", "fc": "white", "ec": "0.8"})
    ax.set_xlabel(f"{p.reference_name}: {_label(p)}")
    ax.set_ylabel(f"{p.method_name}: {_label(p)}")
    ax.set_title(f"{p.parameter}, n = {p.reference.size}", fontsize=10)
    ax.grid(alpha=0.3)
    return fig


def plot_bland_altman(p: PairedData):
    """Bland–Altman plot: difference (method − reference) against the pair mean, with the given bias and
    95 % limits of agreement drawn when present."""
    fig = _figure(4.6, 4.0)
    ax = fig.add_subplot()
    mean = (p.reference + p.method) / 2.0
    diff = p.method - p.reference
    ax.plot(mean, diff, "o", ms=4, alpha=0.8)
    ax.axhline(0.0, color="0.7", lw=0.8)
    if p.bias is not None:
        ax.axhline(p.bias, color="C3", lw=1.4, label=f"bias {format_number(p.bias, 3)}")
    if p.loa is not None:
        for v in p.loa:
            ax.axhline(v, color="C3", lw=1.0, ls="--")
        ax.plot([], [], color="C3", ls="--", label=f"95 % LoA {format_number(p.loa[0], 3)} … {format_number(p.loa[1], 3)}")
    ax.set_xlabel(f"mean of {p.method_name} and {p.reference_name}: {_label(p)}")
    ax.set_ylabel(f"{p.method_name} − {p.reference_name}")
    ax.set_title(f"Bland–Altman: {p.parameter}", fontsize=10)
    ax.grid(alpha=0.3)
    if p.bias is not None or p.loa is not None:
        ax.legend(fontsize=8, loc="best")
    return fig
