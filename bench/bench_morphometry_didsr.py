"""Tb.Th and Tb.Sp of the ten DIDSR L1 vertebra regions: trabecula (both modes) against ``localthickness``.

``localthickness`` (Dahl & Dahl 2023) is an independent open implementation; it returns a *radius* map (the
Euclidean distance, centre to centre, to the nearest background voxel, spread by approximate dilation) with
the image border not counted as background, so its mean ×2 is compared with trabecula's BoneJ mode (the same
conventions: centre-to-centre distances, border continues). The default mode is reported beside it.

    .venv/bin/python bench/bench_morphometry_didsr.py [--record]

``--record`` also writes ``tests/morphometry/data/localthickness_didsr.json``, the reference the real-data
test compares with (the test re-runs ``localthickness`` on a crop to check that the record still holds).
Results: ``bench/results/bench_morphometry_didsr-<UTC>.json``. Spacing 0.05 mm (the data README).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import versions, write_results  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "didsr_l1_vertebra"
SPACING = 0.05
RECORD = REPO / "tests" / "morphometry" / "data" / "localthickness_didsr.json"


def regions() -> list[Path]:
    return sorted(DATA.glob("Segmentation-grayscale-*.nrrd"))


def load(path: Path) -> np.ndarray:
    from trabecula.io import read_volume

    return read_volume(path, spacing=SPACING, units="binary").numpy() != 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--record", action="store_true", help="write the test reference JSON")
    ap.add_argument("--only", nargs="*", help="region names (e.g. 1_06219) to run")
    args = ap.parse_args()
    import localthickness as lt

    from trabecula.morphometry import local_thickness

    rows = []
    for p in regions():
        name = p.stem.replace("Segmentation-grayscale-", "")
        if args.only and name not in args.only:
            continue
        b = load(p)
        row = {"region": name, "bv_tv": float(b.mean())}
        for label, phase in (("tb_th", b), ("tb_sp", ~b)):
            t0 = time.perf_counter()
            r = lt.local_thickness(phase)
            row[f"{label}_localthickness_mm"] = float(2 * r[phase].mean()) * SPACING
            row[f"{label}_localthickness_s"] = time.perf_counter() - t0
            del r
            for mode in ("bonej", "default"):
                t0 = time.perf_counter()
                m = local_thickness(phase, SPACING, mode=mode)
                row[f"{label}_{mode}_mm"] = float(m[phase].mean())
                row[f"{label}_{mode}_s"] = time.perf_counter() - t0
                del m
            row[f"{label}_bonej_vs_lt"] = row[f"{label}_bonej_mm"] / row[f"{label}_localthickness_mm"] - 1
            row[f"{label}_default_vs_lt"] = row[f"{label}_default_mm"] / row[f"{label}_localthickness_mm"] - 1
        rows.append(row)
        print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
    payload = {"spacing_mm": SPACING, "rows": rows, "versions": versions("numpy", "edt", "localthickness", "numba")}
    path = write_results("bench_morphometry_didsr", payload)
    print(f"wrote {path}")
    if args.record and not args.only:
        RECORD.parent.mkdir(parents=True, exist_ok=True)
        ref = {"note": "localthickness 0.1.3 (Dahl & Dahl 2023) mean local thickness ×2 (a diameter) in mm over the "
                       "bone (tb_th) and marrow (tb_sp) voxels of each whole 300³ region at 0.05 mm; written by "
                       "bench/bench_morphometry_didsr.py --record",
               "spacing_mm": SPACING,
               "regions": {r["region"]: {"bv_tv": r["bv_tv"], "tb_th_mm": r["tb_th_localthickness_mm"],
                                         "tb_sp_mm": r["tb_sp_localthickness_mm"]} for r in rows}}
        RECORD.write_text(json.dumps(ref, indent=2) + "\n")
        print(f"wrote {RECORD}")


if __name__ == "__main__":
    main()
