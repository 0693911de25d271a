"""Density calibration on the twin: the HA phantom (rods 0–800 mg HA/cm³) scanned by the fast path, rods
detected, HU → mg HA/cm³ fitted; prints each rod's mean HU and residual, for the phantom alone and under the
wrist (one scan, as clinical QCT). The numbers in docs/density.md come from this script:

    .venv/bin/python bench/bench_density.py
"""

from __future__ import annotations

import time

from trabecula.morphometry.density import fit_calibration
from trabecula.phantom import HA_CONCENTRATIONS, calibration_phantom, with_calibration_rods, wrist
from trabecula.scanner import scan

DENS = [float(c) for c in HA_CONCENTRATIONS]


def report(name: str, ph, preset: str, **kw) -> None:
    t = time.perf_counter()
    vol = scan(ph, preset, mode="fast", seed=0, **kw)
    cal = fit_calibration(vol, DENS)
    held = {d: fit_calibration(vol, DENS, exclude=[d]) for d in DENS[1:-1]}
    print(f"\n{name} — {preset} (fast, seed 0), {time.perf_counter() - t:.1f} s: "
          f"mg HA/cm³ = {cal.slope:.5f} · HU {cal.intercept:+.2f}, r² {cal.r2:.5f}")
    print("  known  mean HU   SD HU  residual (all 5)  residual % | held out: residual  %")
    for r in cal.rods:
        d = r["density_mg_cm3"]
        res = r["residual_mg_cm3"]
        pct = "   n/a" if d == 0 else f"{100 * res / d:+6.2f}"
        line = f"  {d:5.0f}  {r['mean_hu']:7.1f}  {r['sd_hu']:6.1f}  {res:+8.2f} mg/cm³  {pct}"
        if d in held:
            (h,) = [x for x in held[d].rods if not x["used"]]
            line += f"   | {h['residual_mg_cm3']:+7.2f}  {100 * h['residual_mg_cm3'] / d:+6.2f}"
        print(line)


def main() -> None:
    for preset in ("clinical-mdct", "uhr-extremity"):
        report("HA phantom alone (0.05 mm grid)", calibration_phantom(), preset)
    both = with_calibration_rods(wrist(slab_mm=3.0, voxel_mm=0.05))
    for preset in ("clinical-mdct", "uhr-extremity"):
        report("HA phantom under the wrist, no body", both, preset, body="NONE")


if __name__ == "__main__":
    main()
