"""The readers' error boundary and input checks: what a file may make trabecula do before it is trusted.

* :func:`third_party` wraps each call into a third-party reader (pydicom, SimpleITK, nibabel, tifffile, zarr,
  h5py) and turns whatever it raises into a one-line :class:`~trabecula.errors.InputError` naming the file;
  our own logic stays outside it, so a bug in trabecula still surfaces as one. Library chatter (warnings,
  log records) inside the block is silenced: the user sees our line, not theirs.
* :func:`check_claim` compares the bytes a header claims with the memory budget
  (:func:`trabecula.limits.check_memory`) and with the bytes the file can hold, before anything is allocated.
* :func:`value_dtype` admits real numeric dtypes only (booleans become uint8; complex, strings and objects are
  refused).
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from trabecula.errors import InputError, TrabeculaError
from trabecula.limits import check_memory

#: The most a deflate (gzip / zlib) stream can expand: 1032:1 (RFC 1951's longest match per 2-bit code), plus
#: slack. A header claiming more uncompressed bytes than this times the compressed file is a lie.
DEFLATE_MAX_RATIO = 1100
#: Hints attached to budget refusals.
BUDGET_HINT = "read a crop of it elsewhere, convert it to .zarr for lazy processing, or raise --max-memory"


def describe(exc: BaseException, limit: int = 200) -> str:
    """``TypeName: first meaningful line`` of an exception, whitespace collapsed, at most ``limit`` characters."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    # ITK puts the useful line last, after file/line chatter; others put it first
    text = lines[-1] if lines and lines[0].lower().startswith(("exception thrown", "/", "itk::")) else (lines[0] if lines else "")
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextmanager
def quiet() -> Iterator[None]:
    """Silence third-party warnings and log records inside the block (restored afterwards)."""
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


@contextmanager
def third_party(path: str | os.PathLike | None, what: str) -> Iterator[None]:
    """Run a third-party reader call; anything it raises becomes ``InputError(path, "what (Type: detail)")``.

    Our own errors pass through unchanged, and so does :class:`MemoryError` (the CLI reports it; the budgets
    are there to prevent it). Use it around the library call only, never around trabecula's own logic.
    """
    try:
        with quiet():
            yield
    except (TrabeculaError, MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 — third-party code raises anything; this is the boundary
        raise InputError(path, f"{what} ({describe(exc)})") from exc


def value_dtype(dtype, path, what: str = "voxel values") -> np.dtype:
    """The dtype trabecula will hold values of ``dtype`` in: itself for real numbers, uint8 for booleans.

    Complex, string, object, structured (RGB) and datetime dtypes are an :class:`InputError` naming the file.
    """
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise InputError(path, f"{what} have an unsupported type {dtype!r}") from exc
    if dt.kind == "b":
        return np.dtype(np.uint8)
    if dt.kind in "iuf" and dt.itemsize <= 8:
        return dt
    if dt.kind == "c":
        raise InputError(path, f"{what} are complex ({dt}); trabecula reads real values only — "
                               "save the magnitude or the real part as a real image first")
    if dt.kind in "SUTO":
        raise InputError(path, f"{what} are {'text' if dt.kind in 'SUT' else 'Python objects'} ({dt}), not numbers")
    if dt.kind == "V" and dt.names:
        raise InputError(path, f"{what} have {len(dt.names)} fields per voxel ({dt}, colour?); expected one number per voxel")
    raise InputError(path, f"{what} have an unsupported type {dt}; expected integers or floating point")


def check_claim(path, shape, itemsize: int, what: str = "reading it", *, available: int | None = None,
                ratio: float = 1.0, name: str | None = None, header: str = "header") -> int:
    """Refuse, before allocating, a header whose claimed array does not fit.

    ``shape`` × ``itemsize`` is compared with the memory budget (a :class:`~trabecula.errors.ParameterError`
    naming the file, from :func:`trabecula.limits.check_memory`) and, when ``available`` is given (the bytes of
    voxel data the file can hold, compressed or not), with ``available × ratio`` (an :class:`InputError`: the
    header claims more data than the file holds; ``header`` names it, e.g. "TIFF header"). Returns the claimed bytes.
    """
    try:
        dims = [int(n) for n in shape]
    except (TypeError, ValueError, OverflowError) as exc:
        raise InputError(path, f"header gives an unreadable array shape {shape!r}") from exc
    if any(n < 0 for n in dims):
        raise InputError(path, f"header gives a negative array size {tuple(dims)}")
    nbytes = math.prod(dims) * int(itemsize)
    shape_text = " × ".join(str(n) for n in dims)
    if available is not None and nbytes > max(0, available) * ratio:
        held = f"{available} bytes" + (f" (at most {int(available * ratio)} once decompressed)" if ratio != 1 else "")
        raise InputError(path, f"{header} claims {shape_text} voxels ({nbytes} bytes) but the file holds only {held}; "
                               "truncated or corrupt")
    check_memory(nbytes, f"{what} ({shape_text} voxels)", name or os.fspath(path), BUDGET_HINT)
    return nbytes


def finite_triple(value, path, what: str, positive: bool = False) -> tuple[float, float, float]:
    """Three finite floats (positive if asked) from a header value, else an :class:`InputError` naming the file."""
    try:
        t = tuple(float(v) for v in value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InputError(path, f"{what} is not three numbers: {value!r}"[:300]) from exc
    if len(t) != 3 or not all(math.isfinite(v) for v in t) or (positive and not all(v > 0 for v in t)):
        need = "three positive finite numbers" if positive else "three finite numbers"
        raise InputError(path, f"{what} must be {need}, got {t}"[:300])
    return t  # type: ignore[return-value]


__all__ = ["BUDGET_HINT", "DEFLATE_MAX_RATIO", "check_claim", "describe", "finite_triple", "quiet", "third_party",
           "value_dtype"]
