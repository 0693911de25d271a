"""Whole-process Tb.Th + Tb.Sp: ``trabecula measure --metrics tbth,tbsp`` against a ``localthickness`` script.

What a user waits for: each command is timed as a whole process with ``/usr/bin/time`` (interpreter start,
imports, numba cache loading or JIT compilation, reading the file, both local-thickness maps, their means),
side by side in one run, alternating (the order swaps every repeat), ``--repeats`` times; the medians and
their ratio (localthickness / trabecula) are reported. Beside them:

* **first run**: trabecula with an empty numba cache (``NUMBA_CACHE_DIR`` set to a fresh folder), i.e. the
  first run after installing, JIT compilation included; ``./dev`` warms the real cache at set-up
  (:func:`trabecula.morphometry.thickness.warm_cache`), so a ``./dev`` user sees the cached numbers;
* **in-process**: the two maps and their means alone, timed inside a process (trabecula after a warm-up call
  on a small cube; localthickness inside its own whole-process run, it has nothing to warm up).

The peer, ``bench/_localthickness_script.py`` (a plain script run as its own process), does the same work as
the command: read the NRRD (SimpleITK, as trabecula reads it), bone = nonzero, ``localthickness.local_thickness``
of the bone and of the marrow (radius in voxels: × 2 × spacing for a diameter in mm), the means over each phase.

Inputs: the 300³ DIDSR L1 region (0.05 mm), or with ``--size 512`` the same region mirrored to 512³ and
written to a temporary NRRD that both commands read. The load average (1, 5, 15 min) is recorded before and
after every run: the machine may be shared.

    .venv/bin/python bench/bench_measure_cli.py                        # 300³, 3 repeats
    .venv/bin/python bench/bench_measure_cli.py --size 512 --repeats 1

Results: ``bench/results/bench_measure_cli-<UTC>.json`` and a table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
REGION = REPO.parent / "shared" / "data" / "didsr_l1_vertebra" / "Segmentation-grayscale-1_06219.nrrd"
SPACING = 0.05
TIME = "/usr/bin/time"
PEER = Path(__file__).resolve().parent / "_localthickness_script.py"


# ------------------------------------------------------------------- trabecula in-process (own process)
def inproc(path: str) -> None:
    """trabecula in-process: warm-up on a small cube (numba cache), then read (untimed) and both maps + means."""
    import numpy as np

    from trabecula.io import read_volume
    from trabecula.morphometry.thickness import local_thickness, thickness_stats

    warm = np.zeros((24, 24, 24), bool)
    warm[4:20, 6:18, 8:16] = True
    for ph in (warm, ~warm):
        thickness_stats(local_thickness(ph, 1.0), ph)
    b = np.ascontiguousarray(read_volume(path, spacing=SPACING, units="binary").numpy() != 0)
    t0 = time.perf_counter()
    th = thickness_stats(local_thickness(b, SPACING), b).mean
    sp = thickness_stats(local_thickness(~b, SPACING), ~b).mean
    print(json.dumps({"tb_th_mm": th, "tb_sp_mm": sp, "in_process_s": time.perf_counter() - t0}))


# ------------------------------------------------------------------------------------------ driver
def timed(cmd: list[str], env: dict | None = None, timeout: float = 3600.0) -> dict:
    """Run ``cmd`` as a whole process under /usr/bin/time: wall, user, sys seconds, peak RSS, stdout tail."""
    load0 = os.getloadavg()
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        full = [TIME, "-f", "%e %U %S %M", "-o", tf.name, *cmd] if os.path.exists(TIME) else cmd
        t0 = time.perf_counter()
        try:
            p = subprocess.run(full, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"error": f"stopped after {timeout:.0f} s", "load_before": load0}
        wall = time.perf_counter() - t0
        r = {"wall_s": wall, "load_before": load0, "load_after": os.getloadavg(), "rc": p.returncode}
        if full[0] == TIME:
            fields = tf.read().strip().splitlines()[-1].split()
            r.update(wall_s=float(fields[0]), user_s=float(fields[1]), sys_s=float(fields[2]),
                     max_rss_mb=int(fields[3]) / 1024)
    if p.returncode != 0:
        r["error"] = (p.stderr or p.stdout)[-2000:]
    else:
        last = [ln for ln in p.stdout.splitlines() if ln.strip()][-1:]
        if last and last[0].startswith("{"):
            r.update(json.loads(last[0]))
    return r


def trabecula_cmd(path: Path) -> list[str]:
    exe = Path(sys.executable).with_name("trabecula")
    return [str(exe), "measure", str(path), "--input-spacing", str(SPACING), "--units", "binary",
            "--metrics", "tbth,tbsp"]


def median(runs: list[dict], key: str) -> float | None:
    """Median of ``key`` over the runs that succeeded (``cpu_s`` = user + sys seconds)."""
    ok = [r for r in runs if "error" not in r]
    if key == "cpu_s":
        v = [r["user_s"] + r["sys_s"] for r in ok if "user_s" in r]
    else:
        v = [r[key] for r in ok if key in r]
    return statistics.median(v) if v else None


def dist_versions(*names: str) -> dict[str, str]:
    """Installed versions of the distributions (``importlib.metadata``: modules without ``__version__`` too)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for n in names:
        try:
            out[n] = version(n)
        except PackageNotFoundError:
            out[n] = "not installed"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=300, choices=(300, 512), help="300 (the region) or 512 (mirrored)")
    ap.add_argument("--repeats", type=int, default=3, help="alternating repeats (medians are reported)")
    ap.add_argument("--no-first-run", action="store_true", help="skip the empty-numba-cache trabecula runs")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds before a run is stopped")
    ap.add_argument("--inproc", metavar="FILE", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.inproc:
        return inproc(args.inproc)

    here = str(Path(__file__).resolve())
    env = {**os.environ, "TRABECULA_NO_PROGRESS": "1"}
    with tempfile.TemporaryDirectory(prefix="bench_measure_cli_") as td:
        tmp = Path(td)
        if args.size == 300:
            path = REGION
        else:
            import numpy as np
            from bench_thickness import mirrored

            from trabecula.io import read_volume, write_volume
            from trabecula.volume import Volume

            vol = read_volume(REGION, spacing=SPACING, units="binary")
            big = mirrored(np.ascontiguousarray(vol.numpy() != 0), args.size).astype(np.uint8)
            path = tmp / f"didsr-mirrored-{args.size}.nrrd"
            write_volume(Volume(big, vol.spacing, vol.origin, "binary"), path)
        cmds = {
            "trabecula": (trabecula_cmd(path), env),
            "localthickness": ([sys.executable, str(PEER), str(path), str(SPACING)], env),
        }
        runs: dict[str, list[dict]] = {"trabecula": [], "localthickness": [], "trabecula_first_run": [],
                                       "trabecula_in_process": []}
        for i in range(args.repeats):
            order = ["trabecula", "localthickness"] if i % 2 == 0 else ["localthickness", "trabecula"]
            for name in order:
                print(f"  repeat {i + 1}/{args.repeats}: {name} …", flush=True)
                r = timed(*cmds[name], timeout=args.timeout)
                runs[name].append(r)
                print(f"    {json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()})}",
                      flush=True)
            if not args.no_first_run:
                cache = tmp / f"numba-cache-{i}"
                cache.mkdir()
                print(f"  repeat {i + 1}/{args.repeats}: trabecula, empty numba cache …", flush=True)
                r = timed(trabecula_cmd(path), {**env, "NUMBA_CACHE_DIR": str(cache)}, timeout=args.timeout)
                shutil.rmtree(cache, ignore_errors=True)
                runs["trabecula_first_run"].append(r)
                print(f"    {json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()})}",
                      flush=True)
            print(f"  repeat {i + 1}/{args.repeats}: trabecula in-process …", flush=True)
            r = timed([sys.executable, here, "--inproc", str(path)], env, timeout=args.timeout)
            runs["trabecula_in_process"].append(r)
            print(f"    {json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()})}",
                  flush=True)

    med = {
        "trabecula_wall_s": median(runs["trabecula"], "wall_s"),
        "trabecula_cpu_s": median(runs["trabecula"], "cpu_s"),
        "trabecula_first_run_wall_s": median(runs["trabecula_first_run"], "wall_s"),
        "trabecula_first_run_cpu_s": median(runs["trabecula_first_run"], "cpu_s"),
        "localthickness_wall_s": median(runs["localthickness"], "wall_s"),
        "localthickness_cpu_s": median(runs["localthickness"], "cpu_s"),
        "trabecula_in_process_s": median(runs["trabecula_in_process"], "in_process_s"),
        "localthickness_in_process_s": median(runs["localthickness"], "in_process_s"),
    }

    def ratio(a: str, b: str) -> float | None:
        return med[a] / med[b] if med[a] and med[b] else None

    ratios = {
        "whole_process_cached": ratio("localthickness_wall_s", "trabecula_wall_s"),
        "whole_process_first_run": ratio("localthickness_wall_s", "trabecula_first_run_wall_s"),
        "in_process": ratio("localthickness_in_process_s", "trabecula_in_process_s"),
        "cpu_cached": ratio("localthickness_cpu_s", "trabecula_cpu_s"),  # user + sys seconds
    }
    loads = [r[k] for rs in runs.values() for r in rs for k in ("load_before", "load_after") if k in r]
    payload = {
        "input": f"didsr-{args.size}" if args.size == 300 else f"didsr-mirrored-{args.size}",
        "shape": [args.size] * 3, "spacing_mm": SPACING, "repeats": args.repeats,
        "commands": {"trabecula": "trabecula measure FILE --input-spacing 0.05 --units binary --metrics tbth,tbsp",
                     "localthickness": "python bench/_localthickness_script.py FILE 0.05"},
        "threads": os.cpu_count(), "numba_num_threads": os.environ.get("NUMBA_NUM_THREADS"),
        "load_average_min_max_1min": [min(x[0] for x in loads), max(x[0] for x in loads)] if loads else None,
        "medians": med, "ratios": ratios, "runs": runs,
        "versions": dist_versions("trabecula", "numpy", "numba", "llvmlite", "edt", "localthickness", "SimpleITK"),
    }
    path = write_results("bench_measure_cli", payload)
    print(f"\nwrote {path.relative_to(REPO)}\n")
    print(f"{'':34s} {'wall s':>8s} {'cpu s':>8s}")
    for k, label in (("trabecula", "trabecula measure (cached)"), ("trabecula_first_run", "trabecula (empty numba cache)"),
                     ("localthickness", "localthickness script")):
        w, u = median(runs[k], "wall_s"), median(runs[k], "cpu_s")
        if w is not None:
            print(f"{label:34s} {w:8.1f} {'' if u is None else f'{u:8.1f}'}")
    print(f"in-process: trabecula {med['trabecula_in_process_s'] or float('nan'):.1f} s, "
          f"localthickness {med['localthickness_in_process_s'] or float('nan'):.1f} s")
    for k, v in ratios.items():
        print(f"ratio {k:26s} {'n/a' if v is None else f'{v:.2f}x'}")
    print(f"load average (1 min) during the runs: {payload['load_average_min_max_1min']}")


if __name__ == "__main__":
    main()
