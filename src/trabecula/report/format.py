"""Number formatting for the report's tables (display only: nothing statistical is computed here)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

DASH = "–"


def _finite(x: Any) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def format_number(x: Any, digits: int = 4) -> str:
    """``x`` with ``digits`` significant figures (no exponent for ordinary magnitudes); ``–`` when missing.

    Strings pass through unchanged; booleans print as ``yes``/``no``; integers print in full.
    """
    if isinstance(x, str):
        return x
    if isinstance(x, bool | np.bool_):
        return "yes" if x else "no"
    if isinstance(x, int | np.integer):
        return str(int(x))
    if not _finite(x):
        return DASH
    v = float(x)
    if v != 0 and (abs(v) >= 10 ** (digits + 2) or abs(v) < 1e-4):
        return f"{v:.{max(1, digits - 1)}e}"
    return f"{v:.{digits}g}"


def format_fixed(x: Any, decimals: int = 3) -> str:
    """``x`` with a fixed number of decimals (the study's style, e.g. ``0.180``); ``–`` when missing."""
    if isinstance(x, str):
        return x
    return f"{float(x):.{decimals}f}" if _finite(x) else DASH


def format_mean_sd(mean: Any, sd: Any = None, decimals: int = 3) -> str:
    """``mean ± SD`` as in the vertebra study's Tables 4–5 (``0.180 ± 0.016``); the mean alone without an SD."""
    if not _finite(mean):
        return DASH
    if not _finite(sd):
        return format_fixed(mean, decimals)
    return f"{float(mean):.{decimals}f} ± {float(sd):.{decimals}f}"


def format_p(p: Any) -> str:
    """A p-value the way the study prints it: ``<0.001`` below 0.001, else three decimals."""
    if isinstance(p, str):
        return p
    if not _finite(p):
        return DASH
    p = float(p)
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def format_cell(x: Any, digits: int = 4) -> str:
    """A table cell from a number, a string, a ``{"mean", "sd"}`` mapping or a list (joined with ``×``)."""
    if isinstance(x, dict) and "mean" in x and set(x) <= {"mean", "sd", "n"}:
        m, s = x.get("mean"), x.get("sd")
        if _finite(s):
            return f"{format_number(m, digits)} ± {format_number(s, 2)}"
        return format_number(m, digits)
    if isinstance(x, list | tuple):
        return " × ".join(format_number(v, digits) for v in x)
    return format_number(x, digits)
