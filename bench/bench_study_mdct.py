"""The vertebra study's MDCT on real anatomy: the ten DIDSR L1 regions (0.05 mm binary) as phantoms in a
1 mm PBS bath, scanned by ``micro-ct``, ``study-mdct`` and ``clinical-mdct`` (fast path), measured with the
study's protocol (8 bit: the MDCT in the bone window L 500 / W 2000 HU, the micro-CT over its own VOI range;
ImageJ IsoData of the VOI, BoneJ local thickness) in a 12 mm × 10 mm cylinder; the MDCT / micro-CT ratios of
BV/TV, Tb.Th and Tb.Sp against the study's Table 5 (×1.78, ×3.09, ×0.93) and the run time.
:func:`trabecula.pipeline.twin_study.real_part`. ``--erode N`` thins every region's struts by N one-voxel
erosions first (toward the study's thinner trabeculae); ``--window bone`` converts every preset with the bone
window (the protocol before the per-modality decision).

    .venv/bin/python bench/bench_study_mdct.py [--data ../shared/data/didsr_l1_vertebra] [--presets ...]
                                               [--erode N] [--window per-modality|bone]
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
    ap.add_argument("--erode", type=int, default=0, help="one-voxel erosions of each region's struts first")
    ap.add_argument("--window", default="per-modality", choices=("per-modality", "bone"),
                    help="8-bit conversion: per modality (default) or the bone window for every preset")
    args = ap.parse_args()
    presets = tuple(args.presets.split(","))
    t0 = time.perf_counter()
    res = real_part(args.data, presets, args.mode, erode_voxels=args.erode, window=args.window,
                    progress=lambda name: print(f"  region {name} done", flush=True))
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
    for p in presets:
        sat = [r[p]["saturated_fraction"] for r in res["regions"]]
        print(f"{p}: 8-bit window(s) {sorted({tuple(round(w) for w in r[p]['window_hu']) for r in res['regions']})[:3]} "
              f"(level, width HU); VOI voxels clipped at 255: mean {100 * sum(sat) / len(sat):.2f} %")
    name = ("bench_study_mdct" + (f"_erode{args.erode}" if args.erode else "")
            + ("_bonewindow" if args.window == "bone" else ""))
    path = write_results(name, {"versions": versions("numpy", "scipy", "numba"),
                                              "seconds": round(seconds, 1), **res})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
