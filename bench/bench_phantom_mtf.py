"""Slanted-edge MTF: trabecula's ``mtf_edge`` against the peer ``micro-ct-image-quality-toolbox`` (``api.mtf``),
side by side in one run, on point-sampled ideal edges blurred by Gaussians of known SD (true MTF50 =
sqrt(2 ln 2) / (2π σ)): the MTF50 error of each, with and without noise, and the time per call (ratio).
The peer is given the true edge angle (it does not estimate it); trabecula fits it.

    .venv/bin/pip install micro-ct-image-quality-toolbox   # the peer (not a trabecula dependency)
    .venv/bin/python bench/bench_phantom_mtf.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import sys
from pathlib import Path

import numpy as np
from scipy.special import erf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import measure, versions, write_results  # noqa: E402

PIXEL = 0.1
ANGLE = 5.0


def edge(sigma: float, ny: int = 128, nx: int = 64, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    y = (np.arange(ny) - ny / 2)[:, None] * PIXEL
    x = (np.arange(nx) - nx / 2 + 0.3)[None, :] * PIXEL
    t = math.radians(ANGLE)
    d = x * math.cos(t) - y * math.sin(t)
    img = 500.0 * (1 + erf(d / (sigma * math.sqrt(2))))
    return img + np.random.default_rng(seed).normal(0, noise, img.shape)


def ours(img: np.ndarray) -> float:
    from trabecula.quality import mtf_edge

    return float(mtf_edge(img, PIXEL).mtf50)


def peer(img: np.ndarray) -> float:
    from microct_iq_toolbox import api

    with contextlib.redirect_stdout(io.StringIO()):
        r = api.mtf(img, [0, img.shape[0], 0, img.shape[1]], PIXEL, edge_angle=ANGLE, high_to_low=False)
    return float(r.summary["mtf50"])


def timing_input(ny: int) -> tuple:
    return (edge(0.1, ny=ny, nx=64, noise=10.0),)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="timed repeats per method")
    args = ap.parse_args()
    from trabecula.quality import gaussian_mtf50

    rows = []
    for noise in (0.0, 10.0):
        for sigma in (0.06, 0.08, 0.1, 0.15, 0.2):
            img = edge(sigma, noise=noise)
            true = gaussian_mtf50(sigma)
            a, b = ours(img), peer(img)
            rows.append({"sigma_mm": sigma, "sigma_px": sigma / PIXEL, "noise_sd": noise, "true_mtf50": true,
                         "trabecula_mtf50": a, "peer_mtf50": b,
                         "trabecula_error_pct": 100 * (a / true - 1), "peer_error_pct": 100 * (b / true - 1)})
            print(f"σ {sigma:.2f} mm ({sigma / PIXEL:.1f} px), noise {noise:4.1f}: true {true:.3f} lp/mm | "
                  f"trabecula {a:.3f} ({rows[-1]['trabecula_error_pct']:+.1f} %) | peer {b:.3f} ({rows[-1]['peer_error_pct']:+.1f} %)")
    t = measure("bench_phantom_mtf:ours", 256, setup="bench_phantom_mtf:timing_input", repeats=args.repeats)
    p = measure("bench_phantom_mtf:peer", 256, setup="bench_phantom_mtf:timing_input", repeats=args.repeats)
    ratio = t["median_s"] / p["median_s"]
    print(f"time per 256×64 edge ROI: trabecula {1000 * t['median_s']:.1f} ms, peer {1000 * p['median_s']:.1f} ms, "
          f"ratio {ratio:.2f}")
    worst = {"trabecula": max(abs(r["trabecula_error_pct"]) for r in rows),
             "peer": max(abs(r["peer_error_pct"]) for r in rows)}
    print(f"worst |MTF50 error|: trabecula {worst['trabecula']:.1f} %, peer {worst['peer']:.1f} %")
    path = write_results("bench_phantom_mtf", {
        "pixel_mm": PIXEL, "angle_deg": ANGLE, "accuracy": rows, "worst_abs_error_pct": worst,
        "timing": {"trabecula": t, "peer": p, "time_trabecula_over_peer": ratio},
        "versions": versions("numpy", "scipy", "microct_iq_toolbox")})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
