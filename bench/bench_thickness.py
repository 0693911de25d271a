"""Local thickness (Tb.Th and Tb.Sp separately): trabecula against the open peers, side by side in one run.

Peers (each run in its own spawned process; wall time and peak resident memory of that process):

* ``localthickness`` 0.1.3 (Dahl & Dahl 2023, "Fast Local Thickness") — approximate dilation; returns a
  radius, doubled here;
* ``porespy.filters.local_thickness`` (porespy 3.2, default ``method="bf"`` brute-force sphere insertion at
  integer radii, and ``method="dt"``) — returns a radius, doubled here;
* ITK BoneMorphometry (``itk.BoneMorphometryFeaturesFilter``) — Tb.Th/Tb.Sp from the plate model (BS/BV),
  *not* a local thickness: timed for reference, its accuracy is reported against the same truth.

Inputs: a 300³ DIDSR L1 region (0.05 mm); the same region mirrored to 512³; and an accuracy phantom of
non-overlapping oversampled spheres and z-rods of known diameters in a 256³ box, whose true local thickness
is known at every bone voxel (the sphere's diameter, the rod's diameter). For Tb.Sp (no analytic truth) the
reference is the exact definition (trabecula's BoneJ mode, which equals a brute-force evaluation in
``tests/morphometry``). ``--big`` adds a 1024³ run of trabecula alone (time and memory).

    .venv/bin/python bench/bench_thickness.py                 # 300³ + 512³ + accuracy, all peers
    .venv/bin/python bench/bench_thickness.py --big           # … and the 1024³ run
    .venv/bin/python bench/bench_thickness.py --sizes 300 --peers localthickness

Results: ``bench/results/bench_thickness-<UTC>.json`` and a table with the ratios (peer time / trabecula time,
bytes per voxel). Peers that fail or exceed ``--timeout`` seconds are recorded with the reason.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import _child, versions, write_results  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
REGION = REPO.parent / "shared" / "data" / "didsr_l1_vertebra" / "Segmentation-grayscale-1_06219.nrrd"
SPACING = 0.05


# ------------------------------------------------------------------------------------------ inputs
def didsr_region() -> np.ndarray:
    from trabecula.io import read_volume

    return np.ascontiguousarray(read_volume(REGION, spacing=SPACING, units="binary").numpy() != 0)


def mirrored(b: np.ndarray, n: int) -> np.ndarray:
    """The region mirrored (symmetric padding, repeated) to an n³ cube."""
    out = b
    while min(out.shape) < n:
        out = np.pad(out, [(0, min(s, n - s)) for s in out.shape], mode="symmetric")
    return np.ascontiguousarray(out[:n, :n, :n])


def accuracy_phantom(n: int = 256, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping oversampled spheres (diameter 8–40 voxels) and z-rods (6–30) with their true thickness."""
    from trabecula.phantom.shapes import oversampled_disc, oversampled_sphere

    rng = np.random.default_rng(seed)
    b = np.zeros((n, n, n), bool)
    truth = np.zeros((n, n, n), np.float32)
    taken = np.zeros((n, n, n), bool)
    # rods along z through the whole box, on a coarse grid
    for _ in range(40):
        d = float(rng.uniform(6, 30))
        disc = oversampled_disc(d, offset=rng.uniform(-0.5, 0.5, 2))
        m = disc.shape[0]
        y, x = rng.integers(0, n - m, 2)
        if taken[:, y:y + m, x:x + m].any():
            continue
        b[:, y:y + m, x:x + m] |= disc[None]
        truth[:, y:y + m, x:x + m][:, disc] = d
        taken[:, max(0, y - 2):y + m + 2, max(0, x - 2):x + m + 2] = True
    for _ in range(400):
        r = float(rng.uniform(4, 20))
        s = oversampled_sphere(r, offset=rng.uniform(-0.5, 0.5, 3), ss=2)
        m = s.shape[0]
        z, y, x = rng.integers(0, n - m, 3)
        if taken[z:z + m, y:y + m, x:x + m].any():
            continue
        b[z:z + m, y:y + m, x:x + m] |= s
        truth[z:z + m, y:y + m, x:x + m][s] = 2 * r
        taken[max(0, z - 2):z + m + 2, max(0, y - 2):y + m + 2, max(0, x - 2):x + m + 2] = True
    return b, truth


# --------------------------------------------------------------------------- timed functions (child)
def load(path: str, which: str, target: str, *rest):
    """Setup (untimed, counted in the baseline memory): warm the method up on a small cube (imports, numba
    cache loading, ITK wrappers: fixed costs, not per-voxel ones), then return the phase followed by the timed
    function's arguments (``rest``; its last one is the map output path)."""
    import importlib

    mod, fn = target.rsplit(":", 1)
    warm = np.zeros((24, 24, 24), bool)
    warm[4:20, 6:18, 8:16] = True
    getattr(importlib.import_module(mod), fn)(warm, *rest[:-1], None)
    b = np.load(path)
    return (np.ascontiguousarray(b if which == "th" else ~b), *rest)


def run_trabecula(phase: np.ndarray, mode: str, out: str | None = None):
    from trabecula.morphometry.thickness import local_thickness

    m = local_thickness(phase, 1.0, mode=mode)
    if out:
        np.save(out, m)
    return float(m[phase].mean())


def run_localthickness(phase: np.ndarray, out: str | None = None):
    import localthickness as lt

    m = 2.0 * lt.local_thickness(phase)
    if out:
        np.save(out, m.astype(np.float32))
    return float(m[phase].mean())


def run_porespy(phase: np.ndarray, method: str, out: str | None = None):
    import porespy as ps

    m = 2.0 * ps.filters.local_thickness(phase, method=method)
    if out:
        np.save(out, m.astype(np.float32))
    return float(m[phase].mean())


def run_itk(phase: np.ndarray, out: str | None = None):
    import itk

    img = itk.image_from_array(phase.astype(np.int16))
    f = itk.BoneMorphometryFeaturesFilter.New(img)
    f.SetThreshold(1)
    f.Update()
    th = float(f.GetTbTh())
    if out:
        np.save(out, np.where(phase, th, 0).astype(np.float32))
    return th


def timed(target: str, *args, setup: str | None = None, timeout: float = 3600.0, **kwargs) -> dict:
    """``_common.measure`` with one repeat and a timeout: a peer that runs too long is stopped and recorded."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    p = ctx.Process(target=_child, args=(child, target, setup, args, kwargs, 1))
    t0 = time.perf_counter()
    p.start()
    child.close()
    if not parent.poll(timeout):
        p.kill()
        p.join()
        return {"error": f"stopped after {timeout:.0f} s (timeout)"}
    try:
        msg = parent.recv()
    except EOFError:
        p.join()
        return {"error": f"process died (exit code {p.exitcode}; out of memory?) after {time.perf_counter() - t0:.0f} s"}
    p.join()
    if "error" in msg:
        return {"error": msg["error"]}
    return {"seconds": msg["times"][0], "peak_bytes": msg["peak_bytes"], "base_bytes": msg["base_bytes"],
            "peak_delta_bytes": max(0, msg["peak_bytes"] - msg["base_bytes"]), "result": msg["result"]}


PEERS = {
    "localthickness": ("bench_thickness:run_localthickness", {}),
    "porespy-bf": ("bench_thickness:run_porespy", {"method": "bf"}),
    "porespy-dt": ("bench_thickness:run_porespy", {"method": "dt"}),
    "itk-bonemorphometry": ("bench_thickness:run_itk", {}),
}


def run_case(name: str, b: np.ndarray, peers: list[str], tmp: Path, timeout: float, truth: np.ndarray | None,
             keep_maps: bool, modes: tuple[str, ...] = ("plain", "bonej", "subvoxel")) -> dict:
    path = tmp / f"{name}.npy"
    np.save(path, b)
    nvox = b.size
    case = {"input": name, "shape": list(b.shape), "bone_fraction": float(b.mean()), "runs": {}}
    for which in ("th", "sp"):
        runs = {}
        refs = {}
        for label, (target, kw) in [(f"trabecula-{m}", ("bench_thickness:run_trabecula", {"mode": m})) for m in modes] + \
                                   [(p, PEERS[p]) for p in peers]:
            out = str(tmp / f"{name}-{which}-{label}.npy") if keep_maps else None
            print(f"  {name} {which} {label} …", flush=True)
            # _common._child passes only the setup's return value to the timed function: arguments go through it
            r = timed(target, str(path), which, target, *kw.values(), out, setup="bench_thickness:load",
                      timeout=timeout)
            if "error" not in r:
                r["bytes_per_voxel"] = r["peak_delta_bytes"] / nvox
                r["mean_thickness_vox"] = r.pop("result")
                if out:
                    refs[label] = out
            runs[label] = r
            print(f"    {json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()})}", flush=True)
        if keep_maps:
            phase = b if which == "th" else ~b
            exact = np.load(refs["trabecula-bonej"]) if "trabecula-bonej" in refs else None
            for label, out in refs.items():
                m = np.load(out)
                acc = {}
                if which == "th" and truth is not None:
                    acc["mean_rel_error_vs_truth"] = float(np.mean(m[phase] / truth[phase]) - 1)
                    acc["mean_abs_error_vs_truth_vox"] = float(np.mean(np.abs(m[phase] - truth[phase])))
                if exact is not None:
                    acc["mean_rel_diff_vs_exact_bonej"] = float(m[phase].mean() / exact[phase].mean() - 1)
                runs[label]["accuracy"] = acc
                os.remove(out)
        ok = {k: v for k, v in runs.items() if "seconds" in v}
        fastest_peer = min((v["seconds"], k) for k, v in ok.items() if not k.startswith("trabecula")) if any(
            not k.startswith("trabecula") for k in ok) else None
        for k in [f"trabecula-{m}" for m in modes]:
            if k in ok and fastest_peer:
                runs[k]["speedup_vs_fastest_peer"] = fastest_peer[0] / ok[k]["seconds"]
                runs[k]["fastest_peer"] = fastest_peer[1]
        case["runs"][which] = runs
    os.remove(path)
    return case


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="acc,300,512", help="comma list of acc (accuracy phantom), 300, 512")
    ap.add_argument("--peers", default=",".join(PEERS), help="comma list of " + ", ".join(PEERS))
    ap.add_argument("--big", action="store_true", help="also the 1024³ run (trabecula only)")
    ap.add_argument("--big-modes", default="plain,bonej", help="trabecula modes for the 1024³ run (comma list)")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds before a run is stopped")
    args = ap.parse_args()
    peers = [p for p in args.peers.split(",") if p]
    sizes = [s for s in args.sizes.split(",") if s]
    os.environ.setdefault("TRABECULA_NO_PROGRESS", "1")
    region = didsr_region()
    cases = []
    with tempfile.TemporaryDirectory(prefix="bench_thickness_") as td:
        tmp = Path(td)
        for s in sizes:
            if s == "acc":
                b, truth = accuracy_phantom()
                cases.append(run_case("accuracy-256", b, peers, tmp, args.timeout, truth, keep_maps=True))
            elif s == "300":
                cases.append(run_case("didsr-300", region, peers, tmp, args.timeout, None, keep_maps=True))
            elif s == "512":
                cases.append(run_case("didsr-mirrored-512", mirrored(region, 512), peers, tmp, args.timeout, None,
                                      keep_maps=False))
        if args.big:
            cases.append(run_case("didsr-mirrored-1024", mirrored(region, 1024), [], tmp, args.timeout * 4, None,
                                  keep_maps=False, modes=tuple(m for m in args.big_modes.split(",") if m)))
    payload = {"cases": cases, "spacing_note": "thickness in voxels (spacing 1)",
               "threads": os.cpu_count(),
               "versions": versions("numpy", "numba", "edt", "localthickness", "porespy", "itk", "skimage")}
    path = write_results("bench_thickness", payload)
    print(f"\nwrote {path}\n")
    print(f"{'input':22s} {'phase':5s} {'method':22s} {'s':>9s} {'B/vox':>7s} {'mean':>8s} {'x fastest':>9s}")
    for c in cases:
        for which, runs in c["runs"].items():
            for k, r in runs.items():
                if "seconds" in r:
                    sp = r.get("speedup_vs_fastest_peer")
                    print(f"{c['input']:22s} {which:5s} {k:22s} {r['seconds']:9.1f} {r['bytes_per_voxel']:7.2f} "
                          f"{r['mean_thickness_vox']:8.3f} {'' if sp is None else f'{sp:9.2f}'}")
                else:
                    print(f"{c['input']:22s} {which:5s} {k:22s} {r['error']}")


if __name__ == "__main__":
    main()
