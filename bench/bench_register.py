"""Issue 21 on known truth: 3-D registration of N random misalignments (rotation ≤ 15°, translation ≤ 5 mm,
HU offset/scale, different crop) of the twin's micro-CT to its study-mdct scan, and slice pairing (SIFT + DTW
against the NCC-DTW baseline) on in-plane misalignments. Writes JSON with the machine and versions.

    .venv/bin/python bench/bench_register.py --cases 40 --slice-cases 5 --out bench/results/register.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from trabecula.enhance.register import register
from trabecula.enhance.slicepair import pair_slices
from trabecula.enhance.twin_cases import (
    misalign,
    random_rigid,
    registration_error,
    specimen_centre,
    twin_scans,
    twin_specimen,
)
from trabecula.errors import InputError

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "didsr_l1_vertebra"
REGIONS = ["Segmentation-grayscale-1_06219.nrrd", "Segmentation-grayscale-4_06604.nrrd"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=40)
    ap.add_argument("--slice-cases", type=int, default=5)
    ap.add_argument("--out", default="bench/results/register.json")
    ap.add_argument("--size", type=int, default=120, help="specimen crop in 0.05 mm voxels (120 = 6 mm, 300 = 15 mm)")
    a = ap.parse_args()
    twins = []
    for k, name in enumerate(REGIONS):
        p = DATA / name
        spec = twin_specimen(p if p.exists() else None, size=a.size, seed=k)
        twins.append((name, spec, *twin_scans(spec, seed=k)))
    rows = []
    for case in range(a.cases):
        name, spec, clinical, micro = twins[case % len(twins)]
        centre = specimen_centre(spec)
        rng = np.random.default_rng(1000 + case)
        truth = random_rigid(rng, centre)
        mis = misalign(micro, truth, rng, centre)
        t = time.perf_counter()
        try:
            res = register(clinical, mis.moving, seed=case)
            err = registration_error(truth, res.transform, centre, clinical.spacing)
            ok = err["rotation_deg"] < 0.5 and max(err["translation_voxels"]) < 0.5
            rows.append({"case": case, "region": name, "ok": ok, "metric": res.metric, **err, "seconds": time.perf_counter() - t})
        except InputError as exc:
            rows.append({"case": case, "region": name, "ok": False, "refused": str(exc), "seconds": time.perf_counter() - t})
        r = rows[-1]
        print(case, r["ok"], round(r.get("rotation_deg", np.nan), 3), np.round(r.get("translation_voxels", [np.nan]), 3),
              round(r.get("metric", np.nan), 3), f"{r['seconds']:.1f}s", flush=True)
    slices = []
    for case in range(a.slice_cases):
        name, spec, clinical, micro = twins[case % len(twins)]
        centre = specimen_centre(spec)
        rng = np.random.default_rng(2000 + case)
        truth = random_rigid(rng, centre, axis="z")
        mv = misalign(micro, truth, rng, centre).moving
        zc = clinical.origin[0] + np.arange(clinical.shape[0]) * clinical.spacing[0]
        jstar = (zc - truth.GetTranslation()[2] - mv.origin[0]) / mv.spacing[0]
        rec = {"case": case, "region": name}
        for method in ("sift", "ncc"):
            t = time.perf_counter()
            p = pair_slices(clinical, mv, method=method)
            j = jstar[p.rows]
            valid = (j >= 0) & (j <= mv.shape[0] - 1)
            rec[method] = {"within_1": float(np.mean(np.abs(p.partners[valid] - j[valid]) <= 1)), "paired": int(valid.sum()),
                           "median_abs_err": float(np.median(np.abs(p.partners[valid] - j[valid]))), "seconds": time.perf_counter() - t}
        slices.append(rec)
        print("slices", case, rec["sift"]["within_1"], rec["ncc"]["within_1"], flush=True)
    ok = [r for r in rows if r["ok"]]
    good = [r for r in rows if "rotation_deg" in r]
    summary = {
        "machine": platform.platform(), "python": platform.python_version(), "cases": a.cases, "size_voxels": a.size,
        "register_success": len(ok) / max(1, len(rows)),
        "rotation_deg_median_p95_max": [float(np.percentile([r["rotation_deg"] for r in good], q)) for q in (50, 95, 100)] if good else None,
        "translation_voxels_median_p95_max": [float(np.percentile([max(r["translation_voxels"]) for r in good], q)) for q in (50, 95, 100)] if good else None,
        "seconds_median_max": [float(np.median([r["seconds"] for r in rows])), float(max(r["seconds"] for r in rows))] if rows else None,
        "failures": [r for r in rows if not r["ok"]],
        "slice_pairing": {m: {"within_1_mean": float(np.mean([s[m]["within_1"] for s in slices])),
                              "within_1_min": float(np.min([s[m]["within_1"] for s in slices]))} for m in ("sift", "ncc")} if slices else None,
        "register_cases": rows, "slice_cases": slices,
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(summary, indent=1))
    print(json.dumps({k: v for k, v in summary.items() if k not in ("register_cases", "slice_cases")}, indent=1))


if __name__ == "__main__":
    main()
