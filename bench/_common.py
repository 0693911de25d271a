"""Helpers shared by the benchmark scripts: isolated timing with peak memory, and the JSON result writer.

Each measurement runs in a fresh spawned process, so peak resident memory (``VmHWM``) belongs to that
one call; the process's resident memory just before the call (imports and input loaded) is reported too,
and ``peak_delta_bytes`` is what the call itself added.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import json
import multiprocessing as mp
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def _peak_rss_bytes() -> int:
    """Peak resident memory of this process (VmHWM). ``ru_maxrss`` would include the parent's peak: Linux
    carries it across fork/exec, so a spawned child would report at least what its parent once used."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _child(conn, target: str, setup: str | None, args: tuple, kwargs: dict, repeats: int) -> None:
    try:
        mod_name, fn_name = target.rsplit(":", 1)
        fn = getattr(importlib.import_module(mod_name), fn_name)
        if setup:
            smod, sfn = setup.rsplit(":", 1)
            args = getattr(importlib.import_module(smod), sfn)(*args, **kwargs)
            kwargs = {}
            if not isinstance(args, tuple):
                args = (args,)
        base = _rss_bytes()
        times, result = [], None
        for _ in range(repeats):
            t0 = time.perf_counter()
            result = fn(*args, **kwargs)
            times.append(time.perf_counter() - t0)
        peak = _peak_rss_bytes()
        conn.send({"times": times, "peak_bytes": peak, "base_bytes": base, "result": result})
    except Exception as exc:  # report, don't hang the parent
        conn.send({"error": f"{type(exc).__name__}: {exc}"})
    finally:
        conn.close()


def measure(target: str, *args: Any, setup: str | None = None, repeats: int = 3, **kwargs: Any) -> dict[str, Any]:
    """Run ``module:function`` in a fresh process ``repeats`` times; return median time and peak memory.

    ``setup`` (``module:function``), if given, is called first in the child with ``args``/``kwargs`` and its
    return value becomes the arguments of the timed function (so loading the input is not timed and
    counts in the baseline memory). The timed function's return value must be picklable.
    """
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    p = ctx.Process(target=_child, args=(child, target, setup, args, kwargs, repeats))
    p.start()
    child.close()
    msg = parent.recv()
    p.join()
    if "error" in msg:
        return {"error": msg["error"]}
    return {
        "median_s": statistics.median(msg["times"]),
        "times_s": msg["times"],
        "peak_bytes": msg["peak_bytes"],
        "base_bytes": msg["base_bytes"],
        "peak_delta_bytes": max(0, msg["peak_bytes"] - msg["base_bytes"]),
        "result": msg["result"],
    }


def versions(*modules: str) -> dict[str, str]:
    out = {}
    for m in modules:
        try:
            out[m] = getattr(importlib.import_module(m), "__version__", "?")
        except Exception:
            out[m] = "not installed"
    return out


def machine() -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    }


def write_results(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{name}-{stamp}.json"
    payload = {"benchmark": name, "utc": stamp, "machine": machine(), **payload}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str))
    tmp.replace(path)
    return path


def merge_record(path: Path, note: str, spacing_mm: float, regions: dict[str, dict]) -> None:
    """Merge per-region reference values into a test reference JSON (regions already there are kept, so
    several runs may add up to all regions), written under a temporary name and renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(path.read_text())["regions"] if path.exists() else {}
    ref = {"note": note, "spacing_mm": spacing_mm, "regions": dict(sorted({**old, **regions}.items()))}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(ref, indent=2) + "\n")
    tmp.replace(path)
    print(f"wrote {path}", flush=True)
