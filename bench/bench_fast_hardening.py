"""The fast path's beam hardening against the full simulation (noise-free, water correction on): the HU at the
centre of a bone rod in a water cylinder (also inside a patient body); of bone and marrow two scan voxels inside
their boundaries in a DIDSR region crop in PBS (few such bone voxels at clinical resolution: the count is
printed) and the 99th percentile of the crop's interior — each through ``scan(..., mode="fast")`` and
``scan(...)`` (full). The thin-layer HU of bone (:func:`trabecula.scanner.spectrum.material_hu`) is printed beside them.
:mod:`trabecula.scanner.fast` (module docstring) and docs/scanner.md, "HU scales".

    .venv/bin/python bench/bench_fast_hardening.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import versions, write_results  # noqa: E402

from trabecula.pipeline.scan_checks import bone_marrow_cores, didsr_crop_in_pbs, rod_centre_hu  # noqa: E402

DEFAULT_DATA = Path(os.environ.get("TRABECULA_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))

#: (preset, cylinder diameter mm, phantom voxel mm, height mm, rod diameter mm, body)
RODS = [("micro-ct", 8.0, 0.05, 0.2, 3.0, None), ("micro-ct", 20.0, 0.05, 0.2, 3.0, None),
        ("micro-ct", 40.0, 0.05, 0.2, 3.0, None), ("study-mdct", 20.0, 0.1, 3.0, 6.0, None),
        ("study-mdct", 40.0, 0.1, 3.0, 6.0, None), ("clinical-mdct", 20.0, 0.1, 3.0, 6.0, "lumbar"),
        ("uhr-extremity", 12.0, 0.05, 0.6, 4.0, "wrist")]
#: (preset, region, in-plane size mm, height mm): a crop with 1 mm of PBS around it in-plane
CROPS = [("micro-ct", "1_06219", 8.0, 0.3), ("micro-ct", "1_06219", 15.0, 0.3), ("micro-ct", "9_67960", 8.0, 0.3),
         ("study-mdct", "1_06219", 8.0, 2.0), ("study-mdct", "9_67960", 8.0, 2.0)]


def rods(quick: bool) -> list[dict]:
    from trabecula.phantom.objects import cylinder_labels
    from trabecula.scanner import scan
    from trabecula.scanner.spectrum import material_hu

    out = []
    for preset, d, vox, h, rod, body in RODS[:1] if quick else RODS:
        cyl = cylinder_labels(diameter_mm=d, height_mm=h, voxel_mm=vox, box_mm=d + 1, rod_mm=rod, rod_at_mm=0.0)
        kw = {"body": body, "medium": "water"} if body else {}
        t0 = time.perf_counter()
        fast = rod_centre_hu(scan(cyl, preset, noise=False, mode="fast", **kw), rod / 4)
        t1 = time.perf_counter()
        full = rod_centre_hu(scan(cyl, preset, noise=False, progress=False, **kw), rod / 4)
        rec = {"preset": preset, "cylinder_mm": d, "rod_mm": rod, "body": body or "NONE", "fast_hu": round(fast, 1),
               "full_hu": round(full, 1), "thin_layer_bone_hu": round(material_hu(preset, "bone"), 1),
               "fast_s": round(t1 - t0, 1), "full_s": round(time.perf_counter() - t1, 1)}
        print(f"rod  {preset:14} {d:4g} mm water, {rod:g} mm rod, body {rec['body']:7}: fast {fast:7.0f} HU, "
              f"full {full:7.0f} HU ({100 * (fast / full - 1):+.1f} %), thin-layer bone {rec['thin_layer_bone_hu']:.0f}",
              flush=True)
        out.append(rec)
    return out


def crops(data: Path, quick: bool) -> list[dict]:
    from trabecula.scanner import scan

    out = []
    for preset, region, size, h in CROPS[:1] if quick else CROPS:
        labels, truth = didsr_crop_in_pbs(data / f"Segmentation-grayscale-{region}.nrrd", size, h)
        t0 = time.perf_counter()
        fast = scan(labels, preset, noise=False, mode="fast")
        t1 = time.perf_counter()
        full = scan(labels, preset, noise=False, progress=False)
        bone, marrow = bone_marrow_cores(full, truth)
        interior = np.zeros(bone.shape, bool)
        m = int(round(1.5 / full.spacing[1]))
        interior[1:-1, m:-m, m:-m] = True
        f, g = fast.numpy(), full.numpy()
        rec = {"preset": preset, "region": region, "size_mm": size, "height_mm": h, "bone_core_voxels": int(bone.sum()),
               "bone_fast_hu": round(float(f[bone].mean()), 1), "bone_full_hu": round(float(g[bone].mean()), 1),
               "p99_fast_hu": round(float(np.percentile(f[interior], 99)), 1),
               "p99_full_hu": round(float(np.percentile(g[interior], 99)), 1),
               "marrow_fast_hu": round(float(f[marrow].mean()), 1), "marrow_full_hu": round(float(g[marrow].mean()), 1),
               "fast_s": round(t1 - t0, 1), "full_s": round(time.perf_counter() - t1, 1)}
        print(f"crop {preset:14} {region} {size:g} mm + 1 mm PBS: bone core ({rec['bone_core_voxels']} voxels) fast "
              f"{rec['bone_fast_hu']:6.0f} / full {rec['bone_full_hu']:6.0f} HU "
              f"({100 * (rec['bone_fast_hu'] / rec['bone_full_hu'] - 1):+.1f} %), 99th percentile fast "
              f"{rec['p99_fast_hu']:6.0f} / full {rec['p99_full_hu']:6.0f} HU, marrow core fast "
              f"{rec['marrow_fast_hu']:5.0f} / full {rec['marrow_full_hu']:5.0f} HU", flush=True)
        out.append(rec)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA / "didsr_l1_vertebra")
    ap.add_argument("--quick", action="store_true", help="one rod and one crop")
    args = ap.parse_args()
    t0 = time.perf_counter()
    res = {"rods": rods(args.quick), "crops": crops(args.data, args.quick)}
    print(f"{time.perf_counter() - t0:.0f} s")
    path = write_results("bench_fast_hardening", {"versions": versions("numpy", "scipy", "skimage"), **res})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
