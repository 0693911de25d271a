"""Apparent values: a real micro-CT crop and its twin scans by every clinical/extremity preset, measured.

A 6 mm crop (120³ at 0.05 mm) of DIDSR L1 region 1_06219 is measured as micro-CT, then turned into a phantom
(bone in marrow) and scanned by ``uhr-extremity``, ``clinical-uhr``, ``study-mdct`` and ``clinical-mdct``
with the twin's image-domain model (``mode="fast"``, seed 0), each scan measured in the whole crop with the
default IsoData threshold. For each: BV/TV, Tb.Th, Tb.Sp (mm), the resolution FWHM the result carries, and
whether it is marked apparent (docs/morphometry.md, "Resolution honesty").

    .venv/bin/python bench/bench_apparent.py

Writes ``bench/results/bench_apparent-<UTC>.json`` and prints a table.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
REGION = REPO.parent / "shared" / "data" / "didsr_l1_vertebra" / "Segmentation-grayscale-1_06219.nrrd"
PRESETS = ("uhr-extremity", "clinical-uhr", "study-mdct", "clinical-mdct")


def main() -> None:
    from trabecula import Volume
    from trabecula.io import read_volume
    from trabecula.morphometry.measure import measure
    from trabecula.phantom.real import from_binary
    from trabecula.scanner import scan

    v = read_volume(REGION, spacing=0.05, units="binary")
    crop = Volume(np.ascontiguousarray(v.numpy()[:120, :120, :120]), 0.05, units="binary", provenance=v.provenance)
    rows = []
    metrics = ("bvtv", "tbth", "tbsp")
    inputs = [("micro-CT crop", crop)] + [(p, scan(from_binary(crop), p, mode="fast", seed=0)) for p in PRESETS]
    for name, vol in inputs:
        r = measure(vol, metrics=metrics)
        rows.append({"input": name, "spacing_mm": list(vol.spacing), "bv_tv": r.bv_tv, "tb_th_mm": r.tb_th_mm,
                     "tb_sp_mm": r.tb_sp_mm, "resolution_mm": r.resolution_mm,
                     "resolution_source": r.resolution_source, "apparent": r.apparent})
        print(f"{name:16s} BV/TV {r.bv_tv:.3f}  Tb.Th {r.tb_th_mm:.3f}  Tb.Sp {r.tb_sp_mm:.3f}  "
              f"FWHM {r.resolution_mm:.3g} mm  apparent {r.apparent}")
    write_results("bench_apparent", {"region": REGION.name, "crop": "[:120, :120, :120]", "rows": rows})


if __name__ == "__main__":
    main()
