"""The DLR / SR-DLR edge test of the shipped weights: noise SD and edge MTF50/MTF10 on a 5°-slanted bone
block edge in water inside the lumbar body, scanned by the twin's clinical-mdct fast path at 250 and 62.5 mAs (seed
123), each model against its input
(:func:`trabecula.pipeline.vertebra_study.resolution_noise_test`; `dlr` on the quarter-dose scan, the others on
the full-dose scan). These are the numbers recorded as ``evaluation.edge_test`` in the weights' manifests and in
docs/enhance.md, "DLR and SR-DLR targets".

    .venv/bin/python bench/enhance_edge_test.py [--model dlr --model srdlr ...]
"""

from __future__ import annotations

import argparse
import json

DEFAULT = ("dlr", "dlr-2d", "srdlr", "pix2pixhd")


def main() -> None:
    from trabecula.pipeline.vertebra_study import resolution_noise_test

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", help="shipped model name (repeat); default: dlr, dlr-2d, srdlr, pix2pixhd")
    ap.add_argument("--seed", type=int, default=123)
    args = ap.parse_args()
    names = args.model or list(DEFAULT)
    res = resolution_noise_test({n: n for n in names}, seed=args.seed)
    print(json.dumps(res, indent=1))
    print("| | noise SD (HU) | MTF50 (lp/mm) | MTF10 (lp/mm) | noise | MTF50 | MTF10 |")
    print("|---|---|---|---|---|---|---|")
    for k, v in res.items():
        ch = (f"{v['noise_change_percent']:+.1f} % | {v['mtf50_change_percent']:+.1f} % | {v['mtf10_change_percent']:+.1f} %"
              if "against" in v else "| |")
        print(f"| {k} | {v['noise_sd_hu']:.1f} | {v['mtf50_lpmm']:.3f} | {v['mtf10_lpmm']:.3f} | {ch} |")


if __name__ == "__main__":
    main()
