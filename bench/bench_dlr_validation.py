"""DLR on the validation specimens of a pairs folder: the error against the noise-free scan of the input, of
Gaussian smoothing (σ 0.5–2 px in-plane) and of each model, on six central slices per specimen.

Shows whether the input's noise can be separated from its structure at all on the canonical grid (if no
Gaussian lowers the error, the noise has the grain of the structure) and how far a denoiser gets.

    .venv/bin/python bench/bench_dlr_validation.py PAIRS [--model dlr --model plain=runs/dlr/best.pt] [--split val]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

SIGMAS = (0.5, 1.0, 1.5, 2.0)


def main() -> None:
    import numpy as np
    from scipy import ndimage

    from trabecula.enhance.data import PairSet
    from trabecula.enhance.infer import enhance, load_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pairs", type=Path)
    ap.add_argument("--model", action="append", help="NAME or LABEL=PATH (repeat); default: dlr")
    ap.add_argument("--split", default="val")
    args = ap.parse_args()
    ps = PairSet.open(args.pairs)
    models = {}
    for spec in args.model or ["dlr"]:
        label, _, path = spec.partition("=")
        models[label] = load_model(path or label, "cpu")
    rows = []
    for r in ps.specimens:
        if r["split"] != args.split or r.get("source") == "edge":
            continue
        vol = ps.volume(r["id"], "input")
        clean = ps.load(r["id"], ["input_clean"])["input_clean"]
        z = vol.shape[0] // 2
        noisy, ref = vol.numpy()[z - 3:z + 3], clean[z - 3:z + 3]
        row = {"specimen": r["id"], "protocol": r.get("protocol"), "input": float(np.std(noisy - ref))}
        for s in SIGMAS:
            row[f"gauss {s:g}"] = float(np.std(ndimage.gaussian_filter(noisy, (0, s, s)) - ref))
        sub = vol.crop((z - 6, z + 6), (0, vol.shape[1]), (0, vol.shape[2]))
        for label, lm in models.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                row[label] = float(np.std(enhance(sub, lm, allow_out_of_range=True).numpy()[3:9] - ref))
        rows.append(row)
    cols = ["input"] + [f"gauss {s:g}" for s in SIGMAS] + list(models)
    print("| specimen | protocol | " + " | ".join(f"{c} (HU)" for c in cols) + " |")
    print("|---|---|" + "---|" * len(cols))
    for row in rows:
        p = row["protocol"] or {}
        proto = f"{p.get('detector')} {p.get('pixel_mm')} mm / {p.get('slice_thickness_mm')} mm {p.get('kernel')} {p.get('mas', 0):.0f} mAs {p.get('body')}"
        print(f"| {row['specimen']} | {proto} | " + " | ".join(f"{row[c]:.1f}" for c in cols) + " |")
    print(f"wrote {write_results('bench_dlr_validation', {'pairs': str(args.pairs), 'rows': rows})}")


if __name__ == "__main__":
    main()
