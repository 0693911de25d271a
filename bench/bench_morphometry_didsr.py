"""Tb.Th and Tb.Sp of the ten DIDSR L1 vertebra regions: trabecula (its modes) against ``localthickness``.

``localthickness`` (Dahl & Dahl 2023) is an independent open implementation; it returns a *radius* map (the
Euclidean distance, centre to centre, to the nearest background voxel, spread by approximate dilation) with
the image border not counted as background, so its mean ×2 is compared with trabecula's BoneJ mode (the same
conventions: centre-to-centre distances, border continues). The plain and subvoxel modes are reported beside it.

    .venv/bin/python bench/bench_morphometry_didsr.py [--record] [--only 1_06219 ...] [--modes bonej,plain,subvoxel|none]

``--record`` also writes (merges, region by region, into) ``tests/morphometry/data/localthickness_didsr.json``, the reference the real-data
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
from _common import merge_record, versions, write_results  # noqa: E402

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
    ap.add_argument("--modes", default="bonej,plain",
                    help="trabecula modes to run beside localthickness (comma list; 'none' = the peer only)")
    ap.add_argument("--from-results", type=Path,
                    help="take the rows of an earlier results JSON instead of computing them (e.g. to --record them)")
    ap.add_argument("--table", type=Path, metavar="DIR",
                    help="print the Markdown table of the ten regions from the `trabecula measure --json` files in DIR "
                         "(one per region, named REGION.json) and the localthickness record; compute nothing")
    args = ap.parse_args()
    if args.table:
        print(table(args.table))
        return
    modes = [m for m in args.modes.split(",") if m and m != "none"]
    import localthickness as lt

    from trabecula.morphometry.thickness import local_thickness

    rows = json.loads(args.from_results.read_text())["rows"] if args.from_results else []
    for p in ([] if args.from_results else regions()):
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
            for mode in modes:
                t0 = time.perf_counter()
                m = local_thickness(phase, SPACING, mode=mode)
                row[f"{label}_{mode}_mm"] = float(m[phase].mean())
                row[f"{label}_{mode}_s"] = time.perf_counter() - t0
                del m
            for mode in modes:
                row[f"{label}_{mode}_vs_lt"] = row[f"{label}_{mode}_mm"] / row[f"{label}_localthickness_mm"] - 1
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.record:
            record([row])  # after every region: a stopped run keeps what it finished
    if not args.from_results:
        payload = {"spacing_mm": SPACING, "rows": rows, "versions": versions("numpy", "edt", "localthickness", "numba")}
        path = write_results("bench_morphometry_didsr", payload)
        print(f"wrote {path}")
    if args.record:
        record(rows)


def table(folder: Path) -> str:
    """Markdown table: all parameters per region (from ``trabecula measure --json``) beside the recorded
    localthickness Tb.Th/Tb.Sp and the % difference."""
    ref = json.loads(RECORD.read_text())["regions"] if RECORD.exists() else {}
    head = ("| region | BV/TV | Tb.Th mm | Tb.Sp mm | Tb.N 1/mm | Conn.D 1/mm³ | SMI | concave | DA | DA (Scanco) | "
            "main dir (z,y,x) | lt Tb.Th mm | Δ Tb.Th | lt Tb.Sp mm | Δ Tb.Sp |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for p in sorted(folder.glob("*.json")):
        d = json.loads(p.read_text())[0]
        name = p.stem
        md = ",".join(f"{c:+.2f}" for c in d["main_direction"]) if d.get("main_direction") else "n/a"
        r = ref.get(name)
        lt = (f"{r['tb_th_mm']:.4f} | {100 * (d['tb_th_mm'] / r['tb_th_mm'] - 1):+.1f} % | {r['tb_sp_mm']:.4f} | "
              f"{100 * (d['tb_sp_mm'] / r['tb_sp_mm'] - 1):+.1f} %") if r else "not recorded | | |"
        lines.append(f"| {name} | {d['bv_tv']:.4f} | {d['tb_th_mm']:.4f} | {d['tb_sp_mm']:.4f} | {d['tb_n_per_mm']:.3f} | "
                     f"{d['conn_d_per_mm3']:.2f} | {d['smi']:.2f} | {d['smi_concave_fraction']:.2f} | {d['da']:.3f} | "
                     f"{d['da_scanco']:.3f} | {md} | {lt} |")
    return "\n".join(lines)


def record(rows: list[dict]) -> None:
    """Merge the rows' localthickness values, region by region, into the test reference (several runs may add up
    to the ten regions)."""
    merge_record(RECORD, "localthickness 0.1.3 (Dahl & Dahl 2023) mean local thickness ×2 (a diameter) in mm over "
                 "the bone (tb_th) and marrow (tb_sp) voxels of each whole 300³ region at 0.05 mm; written by "
                 "bench/bench_morphometry_didsr.py --record", SPACING,
                 {r["region"]: {"bv_tv": r["bv_tv"], "tb_th_mm": r["tb_th_localthickness_mm"],
                                "tb_sp_mm": r["tb_sp_localthickness_mm"]} for r in rows})


if __name__ == "__main__":
    main()
