"""CPU throughput of ``trabecula enhance`` per shipped model on a 512² × N clinical slice stack.

Side by side in one run, per model: trabecula's tiled, batched, blended inference (``enhance_array``, the
default exact overlap) and the plain whole-slice forward pass of the same network (one slice at a time,
no tiling) — the peer that shows what the tiling costs. Reported: median seconds, slices/s, output
voxels/s, peak memory added by the call, and the tiled/plain time ratio.

    .venv/bin/python bench/bench_enhance.py [--slices 100] [--models dlr,srdlr,pix2pixhd] [--threads 2] [--repeats 1]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import measure, versions, write_results  # noqa: E402


def make_stack(slices: int, threads: int, model: str):
    import torch

    from trabecula.enhance.infer import load_model

    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    vol = (rng.normal(200, 300, (slices, 512, 512))).astype(np.float32)
    return load_model(model, "cpu"), vol


def run_tiled(lm, vol):
    from trabecula.enhance.infer import enhance_array

    out = enhance_array(lm, vol, tile=256, batch=4)
    return list(out.shape)


def run_plain(lm, vol):
    import torch

    m = lm.model
    k = m.in_channels
    half = k // 2
    shape = None
    with torch.inference_mode():
        for z in range(vol.shape[0]):
            idx = np.clip(z + lm.context_stride * np.arange(-half, half + 1), 0, vol.shape[0] - 1)
            y = m(torch.from_numpy(vol[idx][None]))
            shape = [vol.shape[0], *y.shape[-2:]]
    return shape


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slices", type=int, default=100)
    ap.add_argument("--models", default="dlr,srdlr,pix2pixhd")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    a = ap.parse_args()
    rows = []
    for model in a.models.split(","):
        res = {}
        for label, fn in (("trabecula", "run_tiled"), ("plain", "run_plain")):
            r = measure(f"bench_enhance:{fn}", a.slices, a.threads, model, setup="bench_enhance:make_stack",
                        repeats=a.repeats)
            if "error" in r:
                print(model, label, r["error"])
                continue
            shape = r["result"]
            vox = float(np.prod(shape))
            res[label] = {"median_s": r["median_s"], "slices_per_s": a.slices / r["median_s"],
                          "voxels_per_s": vox / r["median_s"], "peak_delta_mib": r["peak_delta_bytes"] / 2**20,
                          "output_shape": shape}
        if "trabecula" in res and "plain" in res:
            res["ratio_tiled_over_plain"] = res["trabecula"]["median_s"] / res["plain"]["median_s"]
        rows.append({"model": model, **res})
        t = res.get("trabecula", {})
        print(f"{model:10s} tiled {t.get('slices_per_s', float('nan')):.2f} slices/s "
              f"({t.get('voxels_per_s', float('nan')) / 1e6:.2f} Mvox/s out), "
              f"plain {res.get('plain', {}).get('slices_per_s', float('nan')):.2f} slices/s, "
              f"ratio {res.get('ratio_tiled_over_plain', float('nan')):.2f}")
    path = write_results("bench_enhance", {"slices": a.slices, "shape": [a.slices, 512, 512], "threads": a.threads,
                                           "versions": versions("torch", "numpy"), "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
