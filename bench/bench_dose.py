"""Dose of every scanner preset: CTDIw per 100 mAs in the 160 and 320 mm PMMA phantoms (centre, periphery,
free in air), and CTDIvol, DLP and effective dose of each preset's default protocol for each body, with the
Monte Carlo's uncertainty and the time per call. Prints a Markdown table and writes the JSON result.

    .venv/bin/python bench/bench_dose.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import versions, write_results  # noqa: E402

from trabecula.scanner.config import PRESETS, load_scanner  # noqa: E402
from trabecula.scanner.dose import ctdi_w, mas_for_effective_dose, scan_dose  # noqa: E402

BODIES = ("NONE", "wrist", "ankle", "lumbar")


def main() -> None:
    presets = list(PRESETS)
    study = Path(__file__).resolve().parents[1] / "src" / "trabecula" / "scanner" / "presets" / "study-mdct.toml"
    if "study-mdct" not in presets and study.exists():
        presets.append(str(study))
    per_100: list[dict] = []
    protocols: list[dict] = []
    for name in presets:
        sc = load_scanner(name)
        for d in (160, 320):
            ctdi_w(sc, d, mas=1.0, n_photons=1000)  # warm the spectrum and tables
            t = time.perf_counter()
            r = ctdi_w(sc, d, mas=100.0)
            per_100.append({"preset": sc.name, "phantom_mm": d, "kvp": r.kvp,
                            "ctdi100_center": r.ctdi100_center_mgy, "ctdi100_periphery": r.ctdi100_periphery_mgy,
                            "ctdiw": r.ctdi_w_mgy, "ctdi_air": r.ctdi_air_mgy, "rel_sd": r.rel_uncertainty,
                            "beam_width_mm": r.beam_width_mm, "penumbra_mm": r.penumbra_mm,
                            "seconds": time.perf_counter() - t})
        default_body = getattr(getattr(sc, "patient", None), "body", None)
        for body in BODIES:
            s = scan_dose(sc, body=body)
            protocols.append({"preset": sc.name, "default_body": default_body, **{k: s[k] for k in (
                "body", "mas", "pitch", "phantom_mm", "ctdivol_mgy", "scan_length_mm", "dlp_mgy_cm", "region",
                "k_factor", "effective_msv")}})
    mas_s1 = mas_for_effective_dose("uhr-extremity", 0.024, body="wrist")

    print("| preset | phantom | centre | periphery | CTDIw | free air | ±1 SD | s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in per_100:
        print(f"| {r['preset']} | {r['phantom_mm']} mm | {r['ctdi100_center']:.2f} | {r['ctdi100_periphery']:.2f} | "
              f"{r['ctdiw']:.2f} | {r['ctdi_air']:.2f} | {100 * r['rel_sd']:.1f} % | {r['seconds']:.2f} |")
    print()
    print("| preset | body | mAs | pitch | phantom | CTDIvol (mGy) | length (mm) | DLP (mGy·cm) | k | E (mSv) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for p in protocols:
        e = "—" if p["effective_msv"] is None else f"{p['effective_msv']:.4f}"
        k = "—" if p["k_factor"] is None else f"{p['k_factor']:g}"
        print(f"| {p['preset']} | {p['body']} | {p['mas']:g} | {p['pitch']:g} | {p['phantom_mm']} | "
              f"{p['ctdivol_mgy']:.2f} | {p['scan_length_mm']:g} | {p['dlp_mgy_cm']:.2f} | {k} | {e} |")
    print(f"\nuhr-extremity mAs for S1's 0.024 mSv (wrist): {mas_s1:.1f}")
    path = write_results("dose", {"versions": versions("numpy", "spekpy", "xraylib"), "per_100mas": per_100,
                                  "protocols": protocols, "uhr_extremity_mas_for_0.024_msv": mas_s1})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
