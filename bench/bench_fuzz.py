"""The long fuzz of the readers (issue 20): tens of thousands of seeded byte-mutants of a small DICOM slice, NRRD,
MetaImage, TIFF, NIfTI and HDF5 file, each read as ``trabecula info`` reads it.

The mutator and the worker pool are :mod:`trabecula.io._fuzz` (the same as the CI test ``tests/io/test_fuzz.py``,
which runs 600): each mutant is rebuilt from ``(seed, index)``, read in a worker process under an address-space
limit (``RLIMIT_AS``, default 3 GiB) and a memory budget (``TRABECULA_MAX_MEMORY``, default 256M); a worker that
reports nothing for ``--timeout`` seconds is killed and the mutant counted as a hang.

    .venv/bin/python bench/bench_fuzz.py                         # 10,000 mutants, seed 0, one worker per CPU
    .venv/bin/python bench/bench_fuzz.py --n 50000 --seed 3 --workers 2

Results: ``bench/results/bench_fuzz-<UTC>.json`` (outcomes per seed file, every failure with its index, peak
resident memory of the workers, time per mutant) and a table. Rebuild a failing mutant with
``trabecula.io._fuzz.mutant(seeds, seed, index)`` (seeds from ``write_seeds``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import versions, write_results  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10_000, help="number of mutants (default 10000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--start", type=int, default=0, help="first mutant index")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds without progress that count as a hang")
    ap.add_argument("--budget", default="256M", help="TRABECULA_MAX_MEMORY of the workers")
    ap.add_argument("--address-space", type=float, default=3.0, help="RLIMIT_AS of the workers, GiB")
    args = ap.parse_args()

    from trabecula.io import _fuzz

    def progress(done: int, total: int) -> None:
        if done % 500 == 0 or done == total:
            print(f"  {done}/{total}", file=sys.stderr, flush=True)

    r = _fuzz.run(args.n, args.seed, workers=args.workers, timeout=args.timeout, budget=args.budget,
                  address_space=int(args.address_space * 1024**3), start=args.start, progress=progress)
    r["versions"] = versions("trabecula", "numpy", "pydicom", "SimpleITK", "nibabel", "tifffile", "h5py", "zarr")
    path = write_results("bench_fuzz", r)
    print(f"{r['mutants']} mutants (seed {r['seed']}, from {r['start']}) in {r['wall_s']} s on {r['workers']} worker(s)")
    print(f"{'seed file':<12}" + "".join(f"{k:>10}" for k in ("ok", "input", "internal", "memory", "crash", "hang")))
    for name, counts in r["per_seed"].items():
        print(f"{name:<12}" + "".join(f"{counts.get(k, 0):>10}" for k in ("ok", "input", "internal", "memory", "crash", "hang")))
    print(f"peak RSS of a worker: {r['peak_rss_bytes'] / 1e6:.0f} MB; slowest mutant {r['slowest_s']:.2f} s, "
          f"mean {1000 * r['mean_s']:.1f} ms")
    for f in r["failures"][:20]:
        print(f"  FAIL #{f['i']} {f['name']}: {f['outcome']} {f['detail']}")
    print(f"results: {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    sys.exit(1 if r["failures"] else 0)


if __name__ == "__main__":
    main()
