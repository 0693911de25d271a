"""Tb.Th and Tb.Sp of the ten DIDSR L1 regions against an *exact* independent implementation (porespy).

``localthickness`` (the reference of ``bench_morphometry_didsr.py``) approximates sphere painting by iterated
dilation and reads a few percent high on wide spaces. The exact definition — every voxel takes the largest
ball ``|v - c| <= D(c)`` that contains it, ``D`` the centre-to-centre distance to the nearest background
voxel, the image border not background — is also implemented, independently of trabecula, by porespy's
distance-transform local thickness (``porespy.filters.local_thickness(method="legacy")``) when it is given
*every* distinct distance value as its list of radii (``smooth=False`` for closed balls). That costs one
Euclidean distance transform of the whole image per distinct radius (~250–300 per phase on a 300³ region),
so by default it runs on a centred crop of each region (``--crop 160``; ``--crop 0`` = the whole region).

Beside it, on the same voxels: trabecula's ``plain`` mode (the bare definition: it should agree to float
precision), ``bonej`` mode (plus BoneJ's surface clean-up) and ``subvoxel`` mode (sub-voxel estimate).

Note: porespy 3.2's ``sizes=None`` for the legacy method is meant to use every distinct value but sorts them
ascending, so every voxel ends up with the smallest radius; the values are passed explicitly here.

    .venv/bin/python bench/bench_exact_reference.py [--crop 160] [--only 1_06219 ...] [--record]

``--reuse-record`` takes porespy's values from that JSON instead of re-running it (trabecula's side only).
``--record`` merges the rows, region by region, into ``tests/morphometry/data/porespy_exact_didsr.json``
(the real-data test re-runs trabecula on the recorded crops and compares). Results:
``bench/results/bench_exact_reference-<UTC>.json``.
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
from bench_morphometry_didsr import SPACING, load, regions  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RECORD = REPO / "tests" / "morphometry" / "data" / "porespy_exact_didsr.json"
MODES = ("plain", "bonej", "subvoxel")


def crop_box(shape: tuple[int, ...], crop: int) -> list[list[int]]:
    """[[start, stop]] per axis of a centred crop of side ``crop`` (0 or larger than the image: all of it)."""
    if crop <= 0:
        return [[0, int(n)] for n in shape]
    return [[max(0, (n - crop) // 2), max(0, (n - crop) // 2) + min(n, crop)] for n in shape]


def porespy_exact(phase: np.ndarray) -> np.ndarray:
    """porespy's distance-transform local thickness over every distinct distance value (a radius map)."""
    import edt
    from porespy.filters import local_thickness

    sizes = np.unique(edt.edt(phase)[phase])
    return local_thickness(phase, method="legacy", sizes=sizes, smooth=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--crop", type=int, default=160, help="side of the centred crop in voxels (0 = whole region)")
    ap.add_argument("--only", nargs="*", help="region names (e.g. 1_06219) to run")
    ap.add_argument("--record", action="store_true", help="merge the rows into the test reference JSON")
    ap.add_argument("--reuse-record", action="store_true",
                    help="take porespy's values (and each region's crop) from the test reference JSON instead of "
                         "re-running porespy: re-measures trabecula's side only, in seconds")
    args = ap.parse_args()
    if args.reuse_record and args.record:
        ap.error("--reuse-record and --record exclude each other")
    recorded = json.loads(RECORD.read_text())["regions"] if args.reuse_record else {}
    from trabecula.morphometry.thickness import local_thickness

    rows = []
    for p in regions():
        name = p.stem.replace("Segmentation-grayscale-", "")
        if args.only and name not in args.only:
            continue
        if args.reuse_record and name not in recorded:
            continue
        full = load(p)
        box = recorded[name]["crop"] if args.reuse_record else crop_box(full.shape, args.crop)
        b = np.ascontiguousarray(full[tuple(slice(a, z) for a, z in box)])
        del full
        row = {"region": name, "crop": box, "shape": list(b.shape), "bv_tv": float(b.mean())}
        for label, phase in (("tb_th", b), ("tb_sp", ~b)):
            if args.reuse_record:
                row[f"{label}_porespy_exact_s"] = float("nan")  # not re-run
                row[f"{label}_porespy_exact_mm"] = recorded[name][f"{label}_mm"]
            else:
                t0 = time.perf_counter()
                r = porespy_exact(phase)
                row[f"{label}_porespy_exact_s"] = time.perf_counter() - t0
                row[f"{label}_porespy_exact_mm"] = float(2 * r[phase].mean()) * SPACING
                del r
            for mode in MODES:
                t0 = time.perf_counter()
                m = local_thickness(phase, SPACING, mode=mode)
                row[f"{label}_{mode}_s"] = time.perf_counter() - t0
                row[f"{label}_{mode}_mm"] = float(m[phase].mean())
                row[f"{label}_{mode}_vs_exact"] = row[f"{label}_{mode}_mm"] / row[f"{label}_porespy_exact_mm"] - 1
                del m
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.record:
            record([row])  # after every region: a stopped run keeps what it finished
    payload = {"spacing_mm": SPACING, "crop": args.crop, "rows": rows,
               "versions": versions("numpy", "edt", "porespy", "numba")}
    print(f"wrote {write_results('bench_exact_reference', payload)}")
    print(table(rows))


def table(rows: list[dict]) -> str:
    head = ("| region | crop | porespy exact Tb.Th mm | plain Δ | bonej Δ | subvoxel Δ | porespy exact Tb.Sp mm | plain Δ "
            "| bonej Δ | subvoxel Δ | porespy s (Th+Sp) | plain s (Th+Sp) |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        crop = "×".join(str(n) for n in r["shape"])
        cells = [r["region"], crop]
        for ph in ("tb_th", "tb_sp"):
            cells.append(f"{r[f'{ph}_porespy_exact_mm']:.4f}")
            cells += [f"{100 * r[f'{ph}_{m}_vs_exact']:+.2f} %" for m in MODES]
        cells.append(f"{r['tb_th_porespy_exact_s'] + r['tb_sp_porespy_exact_s']:.0f}")
        cells.append(f"{r['tb_th_plain_s'] + r['tb_sp_plain_s']:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def record(rows: list[dict]) -> None:
    merge_record(RECORD, "porespy 3.2 local_thickness(method='legacy', sizes=every distinct EDT value, "
                 "smooth=False): the exact maximal-ball local thickness, mean ×2 (a diameter) in mm over the bone "
                 "(tb_th) and marrow (tb_sp) voxels of the crop [[z0,z1],[y0,y1],[x0,x1]] of each region at 0.05 mm; "
                 "written by bench/bench_exact_reference.py --record", SPACING,
                 {r["region"]: {"crop": r["crop"], "bv_tv": r["bv_tv"], "tb_th_mm": r["tb_th_porespy_exact_mm"],
                                "tb_sp_mm": r["tb_sp_porespy_exact_mm"]} for r in rows})


if __name__ == "__main__":
    main()
