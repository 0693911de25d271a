"""Cortical parameters on the twin: the phalanx and wrist phantoms scanned by ``uhr-extremity`` (fast image-domain
model, seed 0), autocontoured with the defaults, against the cortex the phantoms were built with.

    .venv/bin/python bench/bench_cortical_twin.py

The cases (geometry, scan, truth from the labels) are ``tests/morphometry/test_cortical.py::twin_case``, the
same the tests check. Results: ``bench/results/bench_cortical_twin-<UTC>.json`` and a table of the relative
errors; ``docs/cortical.md`` quotes them.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402
from tests.morphometry.test_cortical import twin_case  # noqa: E402

from trabecula.morphometry.cortical import cortical_parameters  # noqa: E402

NAMES = {"phalanx": {0: "phalanx shaft"}, "wrist": {0: "radius", 1: "ulna"}}


def main() -> None:
    rows = []
    for kind in ("phalanx", "wrist"):
        vol, truth = twin_case(kind)
        for rank, t in truth.items():
            t0 = time.perf_counter()
            r = cortical_parameters(vol, bone=rank)
            secs = time.perf_counter() - t0
            d = r.to_dict()
            d.pop("per_slice")
            rows.append({"case": kind, "bone": NAMES[kind][rank], "rank": rank, "scan_shape": list(vol.shape),
                         "scan_spacing_mm": list(vol.spacing), "truth": t, "measured": d, "seconds": secs,
                         "rel_error": {
                             "tt_ar": r.tt_ar_mm2 / t["tt_ar_mm2"] - 1,
                             "ct_ar": r.ct_ar_mm2 / t["ct_ar_mm2"] - 1,
                             "tb_ar": r.tb_ar_mm2 / (t["tt_ar_mm2"] - t["ct_ar_mm2"]) - 1,
                             "ct_th_lt": r.ct_th_mm / t["ct_th_mm"] - 1,
                             "ct_th_2d": r.ct_th_2d_mm / t["ct_th_mm"] - 1,
                             "ct_th_annulus": r.ct_th_annulus_mm / t["ct_th_mm"] - 1,
                             "lt_of_exact_cortex": t["ct_th_lt_exact_mm"] / t["ct_th_mm"] - 1}})
    print(f"{'bone':14} {'Tt.Ar':>8} {'Ct.Ar':>8} {'Tb.Ar':>8} {'Ct.Th LT':>9} {'2-D':>7} {'annulus':>8} "
          f"{'Ct.Po':>7} {'thresholds HU':>16}")
    for row in rows:
        e, m = row["rel_error"], row["measured"]
        print(f"{row['bone']:14} {e['tt_ar']:+8.1%} {e['ct_ar']:+8.1%} {e['tb_ar']:+8.1%} {e['ct_th_lt']:+9.1%} "
              f"{e['ct_th_2d']:+7.1%} {e['ct_th_annulus']:+8.1%} {m['ct_po']:7.4f} "
              f"{m['threshold_periosteal']:7.0f} {m['threshold_endosteal']:7.0f}")
    path = write_results("bench_cortical_twin", {"scanner": "uhr-extremity", "mode": "fast", "seed": 0, "rows": rows})
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
