"""The vertebra study's MDCT on real anatomy: the ten DIDSR L1 regions (0.05 mm binary) as phantoms in a
1 mm PBS bath, scanned by ``micro-ct``, ``study-mdct`` and ``clinical-mdct`` (fast path), measured with the
study's protocol (bone window L 500 / W 2000 HU to 8 bit, ImageJ IsoData of the VOI, BoneJ local thickness)
in a 12 mm × 10 mm cylinder; the MDCT / micro-CT ratios of BV/TV, Tb.Th and Tb.Sp against the study's
Table 5 (×1.78, ×3.09, ×0.93) and the run time. :func:`trabecula.pipeline.twin_study.real_part`.

    .venv/bin/python bench/bench_study_mdct.py [--data ../shared/data/didsr_l1_vertebra] [--presets ...]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import versions, write_results  # noqa: E402

DEFAULT_DATA = Path(os.environ.get("TRABECULA_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def main() -> None:
    from trabecula.pipeline.twin_study import METRICS, REAL_PRESETS, real_part

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA / "didsr_l1_vertebra")
    ap.add_argument("--presets", default=",".join(REAL_PRESETS))
    ap.add_argument("--mode", default="fast", choices=("fast", "full"))
    args = ap.parse_args()
    presets = tuple(args.presets.split(","))
    t0 = time.perf_counter()
    res = real_part(args.data, presets, args.mode, progress=lambda name: print(f"  region {name} done", flush=True))
    seconds = time.perf_counter() - t0
    s = res["summary"]
    print(f"{s['n']} regions, {seconds:.0f} s ({args.mode} path)")
    print("metric      truth    " + "  ".join(f"{p:>22}" for p in presets) + "   study MDCT/micro-CT")
    for k in METRICS:
        row = f"{k:10} {s['truth'][k]['mean']:7.3f}  "
        for p in presets:
            r = s[p][k]
            ratio = r.get("ratio_to_micro-ct", 1.0)
            row += f"  {r['mean']:7.3f} (×{ratio:.2f} mct, ×{r['ratio_to_truth']:.2f} tr)"
        print(row + f"   ×{s['study_mdct_ratio'][k]:.2f}")
    for k, v in s["checks"].items():
        print(f"  {'ok    ' if v else 'FAILED'}  {k}")
    path = write_results("bench_study_mdct", {"versions": versions("numpy", "scipy", "numba"),
                                              "seconds": round(seconds, 1), **res})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
