"""Noise of the scanner twin with a patient body (trabecula.scanner.body): a water specimen (the box filled
with water) at the centre of the lumbar body on ``clinical-mdct`` at 250 mAs, at the preset's 0.6 mm slices
(full cone-beam simulation and fast path) and at 5 mm (fast path, for comparison with routine abdominal CT:
a Gaussian slice profile of 5 mm FWHM, and the mean of the 0.1 mm slices over 5 mm); a water specimen in the ``uhr-extremity`` preset's default wrist at its preset dose (full and
fast); noise SD against mAs over four doses (fast path); and each bare specimen for contrast.

    .venv/bin/python bench/bench_body_noise.py [--no-full]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import versions, write_results  # noqa: E402


def _measure(cyl, scanner, half: int, **kw) -> dict:
    from trabecula.pipeline.scan_checks import central_nps
    from trabecula.scanner.simulate import scan

    t0 = time.perf_counter()
    vol = scan(cyl, scanner, progress=False, **kw)
    dt = time.perf_counter() - t0
    a = vol.numpy()
    nz, c = a.shape[0], a.shape[1] // 2
    mid = a[nz // 2 - 2: nz // 2 + 3, c - half:c + half, c - half:c + half]
    nps = central_nps(vol, half)
    return {"noise_sd_hu": round(float(nps.noise_sd), 2), "nps_mean_frequency": round(float(nps.mean_frequency), 3),
            "mean_hu": round(float(mid.mean()), 2), "seconds": round(dt, 1), "grid": list(vol.shape),
            "body": vol.provenance.extra.get("body"), "medium": vol.provenance.extra.get("medium")}


def main() -> None:
    from trabecula.phantom.objects import cylinder_labels
    from trabecula.scanner.config import load_scanner

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-full", action="store_true", help="fast path only (skip the full simulations)")
    args = ap.parse_args()
    modes = ("fast",) if args.no_full else ("full", "fast")
    res: dict = {}

    mdct = load_scanner("clinical-mdct")
    cyl = cylinder_labels(diameter_mm=16.0, height_mm=4.0, voxel_mm=0.1, box_mm=16.6)
    res["clinical-mdct lumbar 250 mAs 0.6 mm"] = {m: _measure(cyl, mdct, 16, mode=m, seed=11, body="lumbar", medium="water")
                                                  for m in modes}
    res["clinical-mdct bare 250 mAs 0.6 mm"] = {m: _measure(cyl, mdct, 16, mode=m, seed=11, body="NONE", medium="water")
                                                for m in ("fast",)}
    thick = mdct.replace(reconstruction={"slice_thickness_mm": 5.0})
    tall = cylinder_labels(diameter_mm=16.0, height_mm=24.0, voxel_mm=0.1, box_mm=16.6)
    res["clinical-mdct lumbar 250 mAs 5 mm"] = {"fast": _measure(tall, thick, 16, mode="fast", seed=11, body="lumbar",
                                                                 medium="water")}
    # a 5 mm image as a clinical reconstruction makes it: the mean of the 0.1 mm slices over 5 mm (rectangular profile)
    from trabecula.scanner.simulate import scan

    vol = scan(tall, mdct, mode="fast", seed=11, body="lumbar", medium="water")
    a = vol.numpy()
    n5 = int(round(5.0 / vol.spacing[0]))
    c = a.shape[1] // 2
    slabs = np.stack([a[i:i + n5].mean(axis=0) for i in range(a.shape[0] // 2 - 2 * n5, a.shape[0] // 2 + n5, n5)])
    roi = slabs[:, c - 16:c + 16, c - 16:c + 16]
    res["clinical-mdct lumbar 250 mAs 5 mm slab mean (fast)"] = {
        "noise_sd_hu": round(float(np.mean([r.std() for r in roi])), 2), "slabs": int(len(roi)),
        "mean_hu": round(float(roi.mean()), 2)}
    sds = {}
    for mas in (25.0, 62.5, 160.0, 400.0):
        sds[mas] = _measure(cyl, mdct, 16, mode="fast", seed=5, mas=mas, body="lumbar", medium="water")["noise_sd_hu"]
    k = np.array([sd * np.sqrt(m) for m, sd in sds.items()])
    res["clinical-mdct lumbar noise vs mAs (fast)"] = {"noise_sd_hu": {str(m): v for m, v in sds.items()},
                                                      "sd_sqrt_mas_max_over_min": round(float(k.max() / k.min()), 4)}

    uhr = load_scanner("uhr-extremity")
    wcyl = cylinder_labels(diameter_mm=8.0, height_mm=0.8, voxel_mm=0.04, box_mm=8.6)
    res[f"uhr-extremity wrist {uhr.exposure.mas:g} mAs"] = {m: _measure(wcyl, uhr, 36, mode=m, seed=11) for m in modes}
    res[f"uhr-extremity bare {uhr.exposure.mas:g} mAs"] = {m: _measure(wcyl, uhr, 36, mode=m, seed=11, body="NONE",
                                                                       medium="soft_tissue") for m in ("fast",)}
    for name, r in res.items():
        print(name, r)
    path = write_results("bench_body_noise", {"versions": versions("numpy", "numba", "scipy"), "results": res})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
