"""Fitting a volume to the browser: trabecula's block mean against scikit-image's ``block_reduce`` (mean),
side by side in one run, on a 512³ int16 CT-like volume reduced 2 × 2 × 2 to the viewer's default budget
(256³). Prints and writes time and peak memory, and their ratios. With ``--browser 64,128,256`` it also
times ``trabecula view`` end to end in headless Chromium (WebGL2 in software, SwiftShader) for those cube
sizes: server start-up (NIfTI written) and page load to the first drawn frame of the multiplanar + 3-D view
(no peer: NiiVue is the viewer; one run each).

    .venv/bin/python bench/bench_viewer.py [--size 512] [--repeats 3] [--browser 64,128,256]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import measure, versions, write_results  # noqa: E402


def make_input(size: int):
    rng = np.random.default_rng(0)
    a = rng.integers(-1000, 2000, (size, size, size), dtype=np.int16)
    from trabecula.render.viewer import reduction_factors

    return a, reduction_factors(a.shape, (0.1, 0.1, 0.1), 16_777_216)


def run_trabecula(a, k):
    from trabecula.render.viewer import block_mean

    return block_mean(a, k, progress=False).shape


def run_skimage(a, k):
    from skimage.measure import block_reduce

    return block_reduce(a, k, np.mean).shape


def time_browser(sizes: list[int], repeats: int) -> dict:
    """Per cube edge n: seconds to serve an n³ HU volume (a bone block in air) and from page load to the first
    drawn multiplanar + 3-D frame in headless Chromium (median of ``repeats``)."""
    import statistics
    import time

    from trabecula import Volume
    from trabecula.render.viewer import ViewerServer
    from trabecula.render.viewer.browser import start_chromium, stop_chromium, wait_for

    out = {}
    driver = start_chromium(1200, 900)
    driver.set_page_load_timeout(900)
    driver.command_executor._client_config.timeout = 900  # software WebGL can keep the page busy for minutes
    try:
        for n in sizes:
            a = np.full((n, n, n), -1000, np.int16)
            a[n // 4:n // 2, n // 4:3 * n // 4, n // 3:2 * n // 3] = 1500
            vol = Volume(a, 0.1, units="HU")
            serve, draw = [], []
            for _ in range(repeats):
                t0 = time.perf_counter()
                srv = ViewerServer(vol, ["bench"], progress=False).start()
                t1 = time.perf_counter()
                driver.get(srv.url)
                wait_for(driver, "window.trabeculaViewer && trabeculaViewer.ready", timeout=900, what="first draw")
                t2 = time.perf_counter()
                renderer = driver.execute_script("return trabeculaViewer.renderer || '';")
                srv.close()
                serve.append(t1 - t0)
                draw.append(t2 - t1)
            out[str(n)] = {"voxels": n**3, "serve_s": statistics.median(serve),
                           "page_to_first_draw_s": statistics.median(draw), "renderer": renderer}
    finally:
        stop_chromium(driver)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512, help="edge of the cubic test volume (voxels)")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats per method")
    ap.add_argument("--browser", default="", help="also time serving and drawing n³ volumes in headless Chromium "
                                                   "for these cube edges, e.g. 64,128,256")
    args = ap.parse_args()
    res = {}
    for name, fn in (("trabecula.block_mean", "run_trabecula"), ("skimage.block_reduce", "run_skimage")):
        res[name] = measure(f"bench_viewer:{fn}", args.size, setup="bench_viewer:make_input", repeats=args.repeats)
    t, s = res["trabecula.block_mean"], res["skimage.block_reduce"]
    ratios = {"time_trabecula_over_skimage": t["median_s"] / s["median_s"],
              "peak_delta_trabecula_over_skimage": t["peak_delta_bytes"] / max(1, s["peak_delta_bytes"])}
    for name, r in res.items():
        print(f"{name:24s} {r['median_s']:.2f} s  +{r['peak_delta_bytes'] / 2**20:.0f} MiB  -> {r['result']}")
    print(f"ratios: time {ratios['time_trabecula_over_skimage']:.2f}, "
          f"peak memory {ratios['peak_delta_trabecula_over_skimage']:.2f}")
    payload = {"size": args.size, "results": res, "ratios": ratios, "versions": versions("numpy", "skimage")}
    if args.browser:
        sizes = [int(t) for t in args.browser.split(",") if t]
        payload["browser"] = time_browser(sizes, 1)
        for n, b in payload["browser"].items():
            print(f"trabecula view, {n}³ HU: serve {b['serve_s']:.1f} s, page → first draw "
                  f"{b['page_to_first_draw_s']:.1f} s ({b['renderer'][:50]})")
    path = write_results("bench_viewer", payload)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
