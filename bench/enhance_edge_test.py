"""The DLR / SR-DLR edge test: noise SD and edge MTF50/MTF10 on a 5°-slanted bone block edge in water inside the
lumbar body, scanned by the twin's fast path under protocols inside the training ranges
(:func:`trabecula.pipeline.vertebra_study.edge_protocols`; seed 123): `dlr` on the quarter-dose clinical-mdct
scan, the others on the full-dose study-mdct and clinical-uhr scans, each against its own input on the model's
canonical grid (:func:`trabecula.pipeline.vertebra_study.resolution_noise_test`). With ``--baselines``, BM3D,
BM4D and a Gaussian are swept and their noise SD read at DLR's MTF50 (``pip install bm3d bm4d``). These are
the numbers recorded as ``evaluation.edge_test`` in the weights' manifests and in docs/enhance.md.

    .venv/bin/python bench/enhance_edge_test.py [--model dlr --model srdlr=runs/srdlr/best.pt ...] [--baselines]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

DEFAULT = ("dlr", "srdlr", "pix2pixhd")


def main() -> None:
    from trabecula.pipeline.vertebra_study import resolution_noise_test

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", help="NAME or LABEL=PATH (repeat); default: dlr, srdlr, pix2pixhd")
    ap.add_argument("--seed", type=int, default=123)
    ap.add_argument("--baselines", action="store_true", help="BM3D, BM4D and Gaussian at DLR's MTF50")
    args = ap.parse_args()
    models = {}
    for m in args.model or DEFAULT:
        label, _, ref = m.partition("=")
        models[label] = ref or label
    res = resolution_noise_test(models, seed=args.seed, baselines=args.baselines)
    print("| | noise SD (HU) | MTF50 (lp/mm) | MTF10 (lp/mm) | noise | MTF50 | MTF10 |")
    print("|---|---|---|---|---|---|---|")
    for k, v in {**res["inputs"], **res["models"]}.items():
        ch = (f"{v['noise_change_percent']:+.1f} % | {v['mtf50_change_percent']:+.1f} % | {v['mtf10_change_percent']:+.1f} %"
              if "against" in v else "| |")
        print(f"| {k} | {v['noise_sd_hu']:.1f} | {v['mtf50_lpmm']:.3f} | {v['mtf10_lpmm']:.3f} | {ch} |")
    for name, b in (res.get("baselines") or {}).items():
        at = b["noise_sd_at_model_mtf50_hu"]
        print(f"{name}: noise SD at DLR's MTF50 " + (f"{at:.1f} HU" if at is not None else "not reached by the sweep")
              + "; sweep (strength, noise, MTF50): "
              + ", ".join(f"({c['strength']:.3g}, {c['noise_sd_hu']:.1f}, {c['mtf50_lpmm']:.3f})" for c in b["curve"]))
    print(f"wrote {write_results('enhance_edge_test', {'models': models, 'result': res})}")
    print(json.dumps(res["protocols"]))


if __name__ == "__main__":
    main()
