"""PNG plots of an MTF or a radial NPS curve (``trabecula iq mtf|nps --plot``), written atomically."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from trabecula.io import atomic_output


def _fmt(x: float | None) -> str:
    return "n/a (not reached)" if x is None or x != x else f"{x:.4g}"


def save_plot(path: str | Path, draw: Callable[[Any], None], force: bool = False) -> Path:
    """Draw on one 6 × 4 inch axes (120 dpi, light grid) with ``draw(ax)`` and write it as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    try:
        draw(ax)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        with atomic_output(path, force=force) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)
    return Path(path)


def plot_mtf(res, path: str | Path, label: str = "MTF", title: str = "MTF", force: bool = False) -> Path:
    """An :class:`~trabecula.quality.MTFResult` against frequency (lp/mm), with MTF50/MTF10 levels and Nyquist."""

    def draw(ax) -> None:
        ax.plot(res.frequency, res.mtf, lw=1.5, label=f"{label}: MTF50 {_fmt(res.mtf50)}, MTF10 {_fmt(res.mtf10)} lp/mm")
        ax.axvline(res.nyquist, color="grey", ls=":", label=f"Nyquist {res.nyquist:.3g} lp/mm")
        ax.axhline(0.5, color="k", lw=0.5)
        ax.axhline(0.1, color="k", lw=0.5)
        ax.set(xlabel="spatial frequency (lp/mm)", ylabel="MTF", title=title, ylim=(0, 1.1))
        ax.legend(fontsize=8)

    return save_plot(path, draw, force)


def plot_nps(res, path: str | Path, title: str = "radial NPS", force: bool = False) -> Path:
    """A radial :class:`~trabecula.quality.NPSResult` against frequency (lp/mm), with its peak marked."""
    u = f"{res.units}²·mm²" if res.units else "units²·mm²"

    def draw(ax) -> None:
        ax.plot(res.frequency, res.radial, lw=1.5)
        ax.axvline(res.peak_frequency, color="grey", ls=":", label=f"peak {res.peak_frequency:.3g} lp/mm")
        ax.set(xlabel="spatial frequency (lp/mm)", ylabel=f"NPS ({u})", title=title)
        ax.legend(fontsize=8)

    return save_plot(path, draw, force)
