"""The fast path against the full cone-beam simulation, preset by preset, side by side in one run: edge MTF50 /
MTF10 (noise-free bone edge in water), noise SD and NPS mean frequency (water cylinder, central ROI), and
the time of each (ratio). Also the physics checks behind the tests, with their numbers: HU of water and air,
and noise SD at 4× the mAs (quantum noise ∝ 1/√mAs).

    .venv/bin/python bench/bench_scan_fast.py [--presets clinical-mdct,micro-ct,uhr-extremity,clinical-uhr]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import versions, write_results  # noqa: E402

# preset: (edge voxel, edge size z/y/x mm, cylinder voxel, diameter, height, central ROI half-width px)
CASES = {
    "clinical-mdct": (0.05, (3.0, 10.0, 10.0), 0.1, 16.0, 4.0, 24),
    "micro-ct": (0.025, (0.4, 3.0, 3.0), 0.05, 6.0, 1.0, 36),
    "uhr-extremity": (0.02, (0.6, 4.0, 4.0), 0.04, 6.0, 1.2, 24),
    "clinical-uhr": (0.025, (1.2, 5.0, 5.0), 0.05, 8.0, 1.5, 20),
}


def compare(preset: str) -> dict:
    from trabecula.phantom.objects import cylinder_labels, slanted_edge
    from trabecula.pipeline.scan_checks import central_nps, edge_mtf
    from trabecula.scanner.simulate import scan

    ev, esize, cv, diam, height, half = CASES[preset]
    edge = slanted_edge(5.0, voxel_mm=ev, size_mm=esize, material="bone", background="water")
    cyl = cylinder_labels(diameter_mm=diam, height_mm=height, voxel_mm=cv, box_mm=diam + 0.6)
    out = {}
    for mode in ("full", "fast"):
        t0 = time.perf_counter()
        e = scan(edge, preset, noise=False, mode=mode, progress=False)
        t1 = time.perf_counter()
        n = scan(cyl, preset, seed=11 if mode == "full" else 12, mode=mode, progress=False)
        t2 = time.perf_counter()
        m, nps = edge_mtf(e, esize[1]), central_nps(n, half)
        out[mode] = {"mtf50": m.mtf50, "mtf10": m.mtf10, "noise_sd_hu": nps.noise_sd, "nps_mean_frequency": nps.mean_frequency,
                     "nps_peak_frequency": nps.peak_frequency, "edge_seconds": round(t1 - t0, 2),
                     "cylinder_seconds": round(t2 - t1, 2), "cylinder_grid": list(n.shape)}
    f, q = out["full"], out["fast"]
    out["ratios_fast_over_full"] = {k: q[k] / f[k] for k in ("mtf50", "mtf10", "noise_sd_hu", "nps_mean_frequency")
                                    if f[k] == f[k] and q[k] == q[k]}
    out["time_ratio_full_over_fast"] = (f["edge_seconds"] + f["cylinder_seconds"]) / (q["edge_seconds"] + q["cylinder_seconds"])
    return out


def physics() -> dict:
    from trabecula.phantom.objects import cylinder_labels
    from trabecula.scanner.simulate import scan

    ph = cylinder_labels(diameter_mm=8.0, height_mm=3.0, voxel_mm=0.1, box_mm=14.0)
    v = scan(ph, "clinical-mdct", noise=False, progress=False)
    a = v.numpy()
    nz, n, _ = a.shape
    yy, xx = (np.mgrid[:n, :n] - (n - 1) / 2) * v.spacing[1]
    rr = np.hypot(yy, xx)
    mid = a[nz // 4: 3 * nz // 4]
    hu = {"water_mean_hu": float(mid[:, rr < 2.5].mean()), "air_mean_hu": float(mid[:, rr > 6.0].mean())}
    ph2 = cylinder_labels(diameter_mm=8.0, height_mm=2.0, voxel_mm=0.1, box_mm=11.0)
    clean = scan(ph2, "clinical-mdct", noise=False, progress=False).numpy()
    sds = {}
    for mas in (5.0, 20.0):
        d = scan(ph2, "clinical-mdct", mas=mas, seed=3, progress=False).numpy() - clean
        nz, n, _ = d.shape
        yy, xx = (np.mgrid[:n, :n] - (n - 1) / 2) * v.spacing[1]
        sds[mas] = float(d[nz // 4: 3 * nz // 4][:, np.hypot(yy, xx) < 3.0].std())
    return {**hu, "noise_sd_hu_5mas": sds[5.0], "noise_sd_hu_20mas": sds[20.0], "sd_ratio_5_over_20": sds[5.0] / sds[20.0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default=",".join(CASES), help="comma-separated presets")
    a = ap.parse_args()
    res = {"physics_clinical_mdct": physics()}
    p = res["physics_clinical_mdct"]
    print(f"clinical-mdct, noise-free: water {p['water_mean_hu']:.2f} HU, air {p['air_mean_hu']:.1f} HU; noise SD "
          f"{p['noise_sd_hu_5mas']:.1f} HU at 5 mAs, {p['noise_sd_hu_20mas']:.1f} HU at 20 mAs → ratio "
          f"{p['sd_ratio_5_over_20']:.3f} (expected 2)", flush=True)
    for preset in a.presets.split(","):
        r = compare(preset)
        res[preset] = r
        q = r["ratios_fast_over_full"]
        print(f"{preset}: full MTF50/10 {r['full']['mtf50']:.3f}/{r['full']['mtf10']:.3f}, fast {r['fast']['mtf50']:.3f}/"
              f"{r['fast']['mtf10']:.3f} lp/mm; noise SD full {r['full']['noise_sd_hu']:.1f}, fast {r['fast']['noise_sd_hu']:.1f} HU; "
              f"NPS mean f full {r['full']['nps_mean_frequency']:.3f}, fast {r['fast']['nps_mean_frequency']:.3f} lp/mm; "
              f"fast/full {', '.join(f'{k} {v:.3f}' for k, v in q.items())}; full takes {r['time_ratio_full_over_fast']:.0f}× longer",
              flush=True)
    path = write_results("bench_scan_fast", {"versions": versions("numpy", "numba", "scipy"), **res,
                                             "command": "python bench/bench_scan_fast.py " + " ".join(sys.argv[1:])})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
