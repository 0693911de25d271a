"""Micro-CT-like models off the training ranges' centre: Tb.Th bias against micro-CT on the held-out DIDSR regions.

The held-out (test-split) DIDSR regions of the training plan (same seed, so the same regions the models never
saw) are scanned by the twin under three protocols away from the centre of the training ranges (issue 18:
"e.g. 0.3 mm pixels with 1 mm slices and a standard kernel"), each inside the lumbar body with the specimen
in PBS, and evaluated with the study's protocol (:func:`trabecula.pipeline.vertebra_study.evaluate`: 8-bit window per modality,
IsoData, BoneJ-mode local thickness in the study's cylinders). Reported per protocol and
method: the Tb.Th, BV/TV and Tb.Sp bias against micro-CT (%), the input ("doubled" clinical scan) beside the
models, and whether each model is within ±20 % and no worse than the input.

    .venv/bin/python bench/bench_enhance_ood.py [--model pix2pixhd --model srdlr ...] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

DEFAULT = ("srdlr", "pix2pixhd", "pix2pix", "crn")


def protocols():
    from trabecula.scanner.protocols import Protocol

    body = {"body": "lumbar", "medium": "pbs"}
    return {"mdct 0.3 mm / 1 mm / standard": Protocol("clinical-mdct", 0.3, 1.0, "standard", 150.0, 120.0, **body),
            "study-mdct 0.45 mm / 1.8 mm / hann": Protocol("study-mdct", 0.45, 1.8, "hann", 60.0, 110.0, **body),
            "uhr 0.17 mm / 0.6 mm / shepp-logan": Protocol("clinical-uhr", 0.17, 0.6, "shepp-logan", 120.0, 130.0, **body)}


def main() -> None:
    from trabecula.enhance.data import default_didsr_dir, specimen_plan, write_pairs
    from trabecula.pipeline.vertebra_study import evaluate

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", help="shipped model (repeat); default: srdlr, pix2pixhd, pix2pix, crn")
    ap.add_argument("--seed", type=int, default=0, help="the training plan's seed (decides the held-out regions)")
    ap.add_argument("--workers", type=int, default=2, help="processes scanning the regions")
    ap.add_argument("--out", type=Path, default=None, help="keep the pairs and evaluations here (default: a temporary folder)")
    args = ap.parse_args()
    models = {m: m for m in (args.model or DEFAULT)}
    plan = [s for s in specimen_plan(0, 0, default_didsr_dir(), args.seed) if s["source"] == "didsr"]
    root = args.out or Path(tempfile.mkdtemp(prefix="ood-"))
    rows, results = [], {}
    for name, prot in protocols().items():
        folder = root / name.split()[0] / name.replace(" ", "_").replace("/", "")
        write_pairs(folder, plan, protocols=prot, seed=args.seed, force=True, workers=args.workers)
        s = evaluate(folder, models, folder / "eval", fid_slices=8, seed=args.seed, force=True, consistency=False)
        results[name] = {"protocol": prot.to_dict(), "specimens": s["specimens"], "morphometry": s["morphometry"]}
        tab = s["morphometry"]
        inp = {r["parameter"]: r["bias_percent"] for r in tab.get("input", [])}
        for method, recs in tab.items():
            b = {r["parameter"]: r["bias_percent"] for r in recs}
            th = b.get("Tb.Th (mm)")
            ok = (th is not None and abs(th) <= 20 and abs(th) <= abs(inp.get("Tb.Th (mm)", 1e9)))
            rows.append((name, method, b.get("BV/TV"), th, b.get("Tb.Sp (mm)"), "input" if method == "input" else ok))
    print("| protocol | method | BV/TV bias % | Tb.Th bias % | Tb.Sp bias % | Tb.Th within ±20 % and no worse than input |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(f"{v:+.1f}" if isinstance(v, float) else str(v) for v in r) + " |")
    path = write_results("bench_enhance_ood", {"models": models, "results": results,
                                                "rows": [dict(zip(("protocol", "method", "bv_tv", "tb_th", "tb_sp", "ok"), r, strict=True))
                                                         for r in rows]})
    print(f"wrote {path}")
    print(json.dumps({k: v["specimens"] for k, v in results.items()}))


if __name__ == "__main__":
    main()
