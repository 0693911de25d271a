"""The fast path against the full projection simulation at the corners of the randomised protocol ranges
(the four protocols of ``tests/scanner/test_protocols.py``): edge MTF50 / MTF10 (noise-free bone edge in
water), noise SD and NPS mean frequency and the water level (water cylinder, central half of the slices), full
vs fast, each inside the protocol's body. The test uses 576 views for time; this runs the protocols as drawn
(the detector preset's views) unless ``--views``.

    .venv/bin/python bench/bench_protocol_corners.py [--views 576] [--corner NAME ...]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))
from _common import versions, write_results  # noqa: E402


def measure(name: str, views: int | None) -> dict:
    from tests.scanner.test_protocols import CORNERS

    from trabecula.phantom.objects import cylinder_labels, slanted_edge
    from trabecula.pipeline.scan_checks import central_nps, edge_mtf
    from trabecula.scanner.simulate import scan

    p, _ = CORNERS[name]
    s = p.scanner() if views is None else p.scanner().replace(geometry={"views": views})
    patient = {"body": p.body, "medium": "water"}
    t0 = time.perf_counter()
    ez, ew = max(3.0, 3 * p.slice_thickness_mm), max(10.0, 40 * p.pixel_mm)
    edge = slanted_edge(5.0, voxel_mm=0.05 if p.pixel_mm < 0.3 else 0.1, size_mm=(ez, ew, ew), material="bone",
                        background="water")
    m = [edge_mtf(scan(edge, s, noise=False, mode=mode, progress=False) if mode == "full"
                  else scan(edge, s, noise=False, mode=mode), ew) for mode in ("full", "fast")]
    half, height = 20, max(2.0, 4 * p.slice_thickness_mm)
    diam = max(16.0, 1.5 * 2 * half * p.pixel_mm + 2.0)
    cyl = cylinder_labels(diameter_mm=diam, height_mm=height, voxel_mm=0.1, box_mm=diam + 0.6)
    vols = [scan(cyl, s, seed=11, progress=False, **patient), scan(cyl, s, seed=12, mode="fast", **patient)]
    n = [central_nps(v, half) for v in vols]
    nz, c = vols[0].shape[0], vols[0].shape[1] // 2
    water = [float(v.numpy()[nz // 4: nz - nz // 4, c - half:c + half, c - half:c + half].mean()) for v in vols]
    return {"corner": name, "views": s.geometry.views, "seconds": time.perf_counter() - t0,
            "mtf50": [m[0].mtf50, m[1].mtf50], "mtf10": [m[0].mtf10, m[1].mtf10],
            "noise_sd": [n[0].noise_sd, n[1].noise_sd], "nps_mean_freq": [n[0].mean_frequency, n[1].mean_frequency],
            "water_hu": water}


def _pair(r: dict, key: str, digits: int) -> str:
    return f"{r[key][0]:.{digits}f} / {r[key][1]:.{digits}f}"


def main() -> None:
    from tests.scanner.test_protocols import CORNERS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--views", type=int, default=None)
    ap.add_argument("--corner", action="append", choices=list(CORNERS))
    args = ap.parse_args()
    rows = []
    print("| corner | MTF50 full / fast | MTF10 | noise SD (HU) | NPS mean freq. | water (HU) | s |")
    print("|---|---|---|---|---|---|---|")
    for name in args.corner or list(CORNERS):
        r = measure(name, args.views)
        rows.append(r)
        print(f"| {name} | {_pair(r, 'mtf50', 3)} | {_pair(r, 'mtf10', 3)} | {_pair(r, 'noise_sd', 1)} | {_pair(r, 'nps_mean_freq', 3)} | "
              f"{_pair(r, 'water_hu', 1)} | {r['seconds']:.0f} |", flush=True)
    print(f"wrote {write_results('protocol_corners', {'rows': rows, 'versions': versions('numpy', 'trabecula')})}")


if __name__ == "__main__":
    main()
