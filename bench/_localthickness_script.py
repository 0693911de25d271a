"""The ``localthickness`` side of ``bench_measure_cli.py``: what a user of that package would run for the
same work as ``trabecula measure --metrics tbth,tbsp`` — read the NRRD (SimpleITK, as trabecula reads it),
bone = nonzero, ``localthickness.local_thickness`` of the bone and of the marrow (a radius in voxels, × 2 ×
the spacing for a diameter in mm), the means over each phase. Prints one JSON line (the means and the
in-process seconds of the two maps and their means).

    .venv/bin/python bench/_localthickness_script.py FILE [SPACING_MM]
"""

import json
import sys
import time

import localthickness as lt
import SimpleITK as sitk

path = sys.argv[1]
spacing = float(sys.argv[2]) if len(sys.argv) > 2 else 0.05
b = sitk.GetArrayFromImage(sitk.ReadImage(path)) != 0
t0 = time.perf_counter()
th = 2.0 * spacing * lt.local_thickness(b)
sp = 2.0 * spacing * lt.local_thickness(~b)
tb_th, tb_sp = float(th[b].mean()), float(sp[~b].mean())
print(json.dumps({"tb_th_mm": tb_th, "tb_sp_mm": tb_sp, "in_process_s": time.perf_counter() - t0}))
