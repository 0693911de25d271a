"""The enhancement verbs' error boundary: options and files checked before any work, each problem one line.

* :func:`resolve_device`, :func:`check_threads`, :func:`check_positive_int`, :func:`check_positive_number`:
  options (``--device``, ``--threads``, ``--batch``, …) refused as a :class:`~trabecula.errors.ParameterError`
  naming the option.
* :func:`read_json` and :func:`load_checkpoint`: a JSON manifest or a torch checkpoint (always
  ``torch.load(weights_only=True)``) whose third-party exception (not JSON, not UTF-8, truncated, foreign) becomes
  an :class:`~trabecula.errors.InputError` naming the file.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from pathlib import Path
from typing import Any

from trabecula.errors import InputError, ParameterError

#: Largest JSON manifest read (bytes): a pairs manifest of thousands of specimens is a few MB.
MAX_JSON_BYTES = 64 * 1024**2


def resolve_device(device: str | None, name: str = "--device", default: str | None = None) -> str:
    """The torch device to run on: ``cpu``, ``cuda`` or ``cuda:N`` (``None``: ``default``, else ``cuda`` when
    available, else ``cpu``). Anything else, CUDA asked for without CUDA, or a CUDA index past the devices
    raises :class:`ParameterError` naming ``name``."""
    import torch

    if device is None or str(device).strip() == "":
        if default is not None:
            device = default
        else:
            return "cuda" if torch.cuda.is_available() else "cpu"
    text = str(device).strip().lower()
    m = re.fullmatch(r"(cpu|cuda)(?::(\d{1,4}))?", text)
    if not m:
        raise ParameterError(name, f"use cpu, cuda or cuda:N, got {device!r}")
    if m.group(1) == "cpu":
        return "cpu"
    if not torch.cuda.is_available():
        raise ParameterError(name, f"{text} asked for, but CUDA is not available here (no CUDA device, or a "
                                   "CPU-only torch); use --device cpu")
    if m.group(2) is not None:
        n = torch.cuda.device_count()
        if int(m.group(2)) >= n:
            raise ParameterError(name, f"no CUDA device {m.group(2)}: {n} available (cuda:0…cuda:{n - 1})")
    return text


def check_threads(threads: int | None, name: str = "--threads") -> int | None:
    """``None`` (torch's default) or a thread count from 1 to 1024; else :class:`ParameterError`."""
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral) or not 1 <= threads <= 1024:
        raise ParameterError(name, f"must be a whole number of threads from 1 to 1024, got {threads!r}")
    return int(threads)


def check_positive_int(value: Any, name: str, minimum: int = 1, maximum: int | None = None) -> int:
    """``value`` as an int within ``minimum``…``maximum``; else :class:`ParameterError` naming ``name``."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum
            or (maximum is not None and value > maximum)):
        bound = f"from {minimum} to {maximum}" if maximum is not None else f"≥ {minimum}"
        raise ParameterError(name, f"must be a whole number {bound}, got {value!r}")
    return int(value)


def check_positive_number(value: Any, name: str, allow_none: bool = True) -> float | None:
    """``value`` as a finite float > 0 (``None`` kept when ``allow_none``); else :class:`ParameterError`."""
    if value is None and allow_none:
        return None
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    if not ok:
        raise ParameterError(name, f"must be a positive number, got {value!r}")
    return float(value)


def read_json(path: str | Path, what: str = "JSON file") -> dict[str, Any]:
    """A JSON object from ``path``; unreadable, oversized, not UTF-8, not JSON, too deeply nested or not an
    object raises :class:`InputError` naming the file."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_JSON_BYTES:
            raise InputError(path, f"{what} of {size} bytes is larger than any trabecula writes "
                                   f"({MAX_JSON_BYTES // 1024**2} MiB)")
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(path, f"cannot read the {what} ({exc.strerror or exc})") from exc
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(path, f"{what} is not UTF-8 text (byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise InputError(path, f"{what} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from exc
    except RecursionError as exc:
        raise InputError(path, f"{what} is nested too deeply to be one of ours") from exc
    if not isinstance(data, dict):
        raise InputError(path, f"{what} must hold a JSON object, not {type(data).__name__}")
    return data


def load_checkpoint(path: str | Path, what: str = "weights") -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU; a missing, truncated, corrupt or foreign file (a pickle
    of anything but tensors and plain containers included) raises :class:`InputError` naming the file."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise InputError(path, f"{what} file not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except MemoryError:
        raise
    except Exception as exc:  # torch raises RuntimeError, EOFError, UnpicklingError, ValueError, …
        first = " ".join(str(exc).split()).split(". ")[0]
        first = first if len(first) <= 120 else first[:119] + "…"
        raise InputError(path, f"cannot load the {what} (truncated, corrupt or not a torch file: "
                               f"{type(exc).__name__}: {first})") from exc


__all__ = ["MAX_JSON_BYTES", "check_positive_int", "check_positive_number", "check_threads", "load_checkpoint",
           "read_json", "resolve_device"]
