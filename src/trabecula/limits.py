"""Resource budgets: refuse, before allocating, work that would not fit in memory.

Every reader and every size-making option (smoothing kernels, resampling, render sizes, tile counts) asks
:func:`check_memory` with the bytes it is about to allocate; past the budget it raises a one-line
:class:`~trabecula.errors.ParameterError` naming the option, the bytes it needs and the budget, instead of
running out of memory after minutes.

The budget is, in order: :func:`set_memory_budget` (the CLI's global ``--max-memory``), the environment
variable ``TRABECULA_MAX_MEMORY`` (bytes or a size such as ``8G``), else :data:`DEFAULT_FRACTION` of the
machine's physical memory.
"""

from __future__ import annotations

import math
import os
import re

from trabecula.errors import ParameterError

#: Fraction of the physical memory one trabecula process may plan to allocate by default.
DEFAULT_FRACTION = 0.5
_UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1024, "KIB": 1024, "M": 1024**2, "MB": 1024**2, "MIB": 1024**2,
          "G": 1024**3, "GB": 1024**3, "GIB": 1024**3, "T": 1024**4, "TB": 1024**4, "TIB": 1024**4}
_budget: int | None = None


def total_memory_bytes() -> int:
    """Physical memory of the machine in bytes (``os.sysconf``; 8 GiB where it cannot be read)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 8 * 1024**3


def parse_size(text: str | int | float, name: str = "--max-memory") -> int:
    """Bytes from ``4096``, ``"500M"``, ``"8G"``, ``"1.5GB"``, ``"2GiB"`` (binary multiples); positive."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        value = float(text)
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*", str(text))
        if not m or m.group(2).upper() not in _UNITS:
            raise ParameterError(name, f"expected a size such as 8G, 500M or a number of bytes, got {text!r}")
        value = float(m.group(1)) * _UNITS[m.group(2).upper()]
    if not (math.isfinite(value) and value >= 1):
        raise ParameterError(name, f"must be a positive size, got {text!r}")
    return int(value)


def set_memory_budget(size: str | int | None) -> None:
    """Set (or with None, reset to the default) the process's memory budget."""
    global _budget
    _budget = None if size is None else parse_size(size)


def memory_budget_bytes() -> int:
    """The memory budget in bytes (see the module docstring)."""
    if _budget is not None:
        return _budget
    env = os.environ.get("TRABECULA_MAX_MEMORY")
    if env:
        return parse_size(env, "TRABECULA_MAX_MEMORY")
    return int(DEFAULT_FRACTION * total_memory_bytes())


def format_bytes(n: float) -> str:
    """``1536`` → ``"1.5 KiB"``; binary multiples, three significant digits."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.3g} PiB"


def check_memory(nbytes: float, what: str, name: str, hint: str | None = None) -> None:
    """Raise a :class:`ParameterError` naming ``name`` when ``nbytes`` (what ``what`` would allocate) exceeds
    the budget; ``hint`` says what would fit. NaN or infinite sizes are refused too."""
    budget = memory_budget_bytes()
    if not math.isfinite(nbytes) or nbytes > budget:
        need = "an unbounded amount" if not math.isfinite(nbytes) else format_bytes(nbytes)
        msg = f"{what} needs {need}, over the memory budget of {format_bytes(budget)} (--max-memory)"
        raise ParameterError(name, msg + (f"; {hint}" if hint else ""))


__all__ = ["DEFAULT_FRACTION", "check_memory", "format_bytes", "memory_budget_bytes", "parse_size",
           "set_memory_budget", "total_memory_bytes"]
