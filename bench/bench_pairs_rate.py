"""How many paired specimen-volumes an hour the twin makes (target: at least 200 on this machine): the
``trabecula pairs`` path end to end — structure (DIDSR region, augmented copy, shrew, synthetic), a random
clinical protocol, four fast-path scans (noisy, noise-free, finer detector, micro-CT), resampling to the
canonical grids and the compressed shard written — timed per specimen, with the time of each part.

    .venv/bin/python bench/bench_pairs_rate.py [--n 12] [--size 240] [--seed 0]

Specimens: the DIDSR regions (300³ at 0.05 mm = 15 mm) and their augmented copies, the shrew sample at
human scale and synthetic structures of ``--size``³, in turn; protocols drawn from
:class:`trabecula.scanner.protocols.ProtocolRanges`. Prints pairs per hour (one process) and writes the JSON
record under bench/results/.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import versions, write_results  # noqa: E402

DEFAULT_DATA = Path(os.environ.get("TRABECULA_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def main() -> None:
    from trabecula.enhance.data import specimen_plan, write_pairs

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=12, help="specimens to make")
    ap.add_argument("--size", type=int, default=240, help="synthetic / shrew size in 0.05 mm voxels")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = ap.parse_args()
    didsr = args.data / "didsr_l1_vertebra"
    shrew = args.data / "didsr_shrew" / "Shrew.nrrd"
    plan = specimen_plan(n_synthetic=args.n, n_edges=0, didsr_dir=didsr if didsr.is_dir() else None, seed=args.seed,
                         size=args.size, augment=1, shrew=shrew if shrew.is_file() else None)
    # interleave the sources, then keep n
    by_source: dict[str, list[dict]] = {}
    for s in plan:
        by_source.setdefault(s["source"], []).append(s)
    mixed = [s for group in zip(*(v * args.n for v in by_source.values()), strict=False) for s in group]
    seen, chosen = set(), []
    for s in mixed:
        if s["id"] not in seen:
            seen.add(s["id"])
            chosen.append(s)
        if len(chosen) == args.n:
            break
    times: list[float] = []
    marks: list[float] = [time.perf_counter()]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        write_pairs(tmp, chosen, seed=args.seed, progress=lambda sid: marks.append(time.perf_counter()))
        total = time.perf_counter() - t0
        marks.append(time.perf_counter())
        shard_mb = sum(f.stat().st_size for f in Path(tmp).glob("*.npz")) / 1e6
        import json

        records = json.loads((Path(tmp) / "manifest.json").read_text())["specimens"]
    times = list(np.diff(marks[1:]))
    rate = 3600.0 * len(chosen) / total
    print(f"{len(chosen)} specimens in {total:.0f} s: {rate:.0f} pairs per hour (target 200), "
          f"{total / len(chosen):.1f} s each; shards {shard_mb:.0f} MB")
    print(f"{'specimen':28} {'source':10} {'s':>6}  protocol")
    rows = []
    for rec, t in zip(records, times, strict=False):
        p = rec["protocol"]
        desc = (f"{p['detector']} {p['kvp']:g} kVp {p['mas']:g} mAs {p['kernel']} {p['pixel_mm']:.3f} mm / "
                f"{p['slice_thickness_mm']:.2f} mm, {p['body']}, {p['medium']}")
        print(f"{rec['id']:28} {rec['source']:10} {t:6.1f}  {desc}")
        rows.append({"id": rec["id"], "source": rec["source"], "seconds": t, "protocol": p,
                     "shape_input": rec["shape_input"], "shape_target": rec["shape_target"]})
    path = write_results("pairs_rate", {"n": len(chosen), "seconds": total, "pairs_per_hour": rate,
                                        "target_pairs_per_hour": 200, "shard_mb": shard_mb, "specimens": rows,
                                        "versions": versions("numpy", "scipy", "trabecula")})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
