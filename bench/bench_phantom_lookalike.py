"""Look-alikes of the ten DIDSR L1 regions: each real region's BV/TV, Tb.Th, Tb.Sp (trabecula's engine, plain
mode) beside its synthetic look-alike's (``trabecula.phantom.lookalike``, same grid, same measurement), the
relative differences (target: within 10 %) and the time per look-alike. By default the corner ``--size``³
voxels (0.05 mm) of each region are used, which keeps the run to minutes; ``--size 300`` uses whole regions.
No peer: this is the record docs/phantom.md quotes.

    .venv/bin/python bench/bench_phantom_lookalike.py [--size 120] [--regions 1_06219,9_67960]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import versions, write_results  # noqa: E402

DATA = Path(os.environ.get("TRABECULA_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
REGIONS = ("1_06219", "1_67976", "4_06604", "5_06219", "8_67976", "9_04216", "9_07069", "9_67960", "9_68384",
           "10_07131")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=120, help="edge (voxels) of the corner sub-cube used (300 = whole region)")
    ap.add_argument("--regions", default=",".join(REGIONS), help="comma-separated region names")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    os.environ.setdefault("TRABECULA_NO_PROGRESS", "1")
    from trabecula.io import read_volume
    from trabecula.phantom import lookalike

    rows = []
    keys = ("bv_tv", "tb_th_mm", "tb_sp_mm")
    for name in [r for r in args.regions.split(",") if r]:
        path = DATA / "didsr_l1_vertebra" / f"Segmentation-grayscale-{name}.nrrd"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            real = read_volume(path, spacing=0.05, units="binary")
        n = args.size
        real = real.crop((0, n), (0, n), (0, n))
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ph = lookalike(real, seed=args.seed, calibration_voxels=max(160 ** 3, n ** 3))
        dt = time.perf_counter() - t0
        r, m = ph.params["real"], ph.params["measured"]
        row = {"region": name, "shape": list(real.shape), "real": r, "lookalike": m,
               "rel_diff_pct": {k: 100 * (m[k] / r[k] - 1) for k in keys}, "within_10pct": ph.params["within_tol"],
               "iterations": len(ph.params["iterations"]), "seconds": dt, "foam": ph.params["foam"]}
        rows.append(row)
        print(f"{name:9s} real BV/TV {r['bv_tv']:.3f} Tb.Th {r['tb_th_mm']:.3f} Tb.Sp {r['tb_sp_mm']:.3f} | "
              f"look-alike {m['bv_tv']:.3f} {m['tb_th_mm']:.3f} {m['tb_sp_mm']:.3f} | "
              + " ".join(f"{v:+.1f}%" for v in row["rel_diff_pct"].values())
              + f" | {row['iterations']} it, {dt:.0f} s", flush=True)
    worst = max(abs(v) for row in rows for v in row["rel_diff_pct"].values())
    print(f"{sum(r['within_10pct'] for r in rows)}/{len(rows)} within 10 %; worst |difference| {worst:.1f} %")
    path = write_results("bench_phantom_lookalike", {"size": args.size, "voxel_mm": 0.05, "rows": rows,
                                                     "worst_abs_diff_pct": worst, "versions": versions("numpy", "numba")})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
