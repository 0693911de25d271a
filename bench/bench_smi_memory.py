"""SMI memory and time: the slab-wise ``structure_model_index`` against the previous whole-volume mesh.

Each run is a fresh spawned process: imports and a warm-up on a small cube first, then the resident memory is
read, the input (bool, 1 byte per voxel) is loaded from an ``.npy`` and SMI computed; ``bytes_per_voxel`` is
(peak resident memory ``VmHWM`` − the memory just before loading) / voxels, so it includes the input itself.
The previous implementation is kept below (``old_structure_model_index``, a reference copy, not in the package).

Inputs: the DIDSR L1 region 1_06219 (300³, 0.05 mm, the spacing the origin's scripts use); the same region
mirrored to 600³ (new method only by default: the old one would need about 130 bytes per voxel, ~28 GB;
``--old-big`` runs it anyway). Then old against new SMI and concave fraction on three regions (whole cube;
``--no-regions`` skips them).

    .venv/bin/python bench/bench_smi_memory.py                       # 300³ old + new, 600³ new, 3 regions
    .venv/bin/python bench/bench_smi_memory.py --sizes 300 --no-regions

Results: ``bench/results/bench_smi_memory-<UTC>.json`` and a table. Measured 2026-12-07 on a 2-core machine
shared with other jobs (load average 4–6; seconds inflated and noisy, compare only side by side), numpy 2.4,
scipy 1.17, scikit-image 0.26 (``bench_smi_memory-20261207T192545Z.json``, regions from
``…T192006Z.json``):

    input                method  seconds  bytes/voxel  SMI     concave
    didsr-300            old       38.5     129.9      1.4156  0.3260
    didsr-300            new       16.3       9.4      1.4158  0.3260
      ratios old/new: memory 13.9, time 2.37
    didsr-mirrored-600   new      202.3       8.1      1.4162  0.3262   (old: ~130 B/voxel = 28 GB, not run)

    region     SMI old  SMI new   concave old  concave new
    1_06219    1.4156   1.4158    0.3260       0.3260
    5_06219    1.7059   1.7062    0.2992       0.2991
    9_67960    2.2270   2.2272    0.1687       0.1684
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import _peak_rss_bytes, _rss_bytes, versions, write_results  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "didsr_l1_vertebra"
REGIONS = ("1_06219", "5_06219", "9_67960")
SPACING = 0.05


# ------------------------------------------------------------------------ the previous implementation
def old_structure_model_index(bone: np.ndarray, spacing=(1.0, 1.0, 1.0), voi: np.ndarray | None = None,
                              eps_mm: float | None = None):
    """Reference copy of trabecula's SMI before issue 23: one marching-cubes mesh of the VOI's bounding box
    + 3 voxels (edges replicated), float32 vertices, normals oriented by a vote. Returns (smi, concave, S, V)."""
    from scipy import ndimage
    from skimage.measure import marching_cubes

    from trabecula.volume import as_spacing

    b = np.asarray(bone) != 0
    sp = np.asarray(as_spacing(spacing))
    m = np.ones(b.shape, bool) if voi is None else (np.asarray(voi) != 0)
    bv = float(np.count_nonzero(b & m)) * float(np.prod(sp))
    nan = (float("nan"), float("nan"), 0.0, bv)
    if bv == 0.0:
        return nan
    box = []
    for ax in range(3):
        nz = np.nonzero(m.any(axis=tuple(a for a in range(3) if a != ax)))[0]
        box.append(slice(int(nz[0]), int(nz[-1]) + 1))
    pad = 3
    lo = [max(0, s.start - pad) for s in box]
    hi = [min(n, s.stop + pad) for s, n in zip(box, b.shape, strict=True)]
    crop = b[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]].astype(np.float32)
    mcrop = m[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    crop = np.pad(crop, pad, mode="edge")
    sigma = 0.7 * sp.min() / sp
    field = ndimage.gaussian_filter(crop, sigma, mode="nearest")
    if field.max() <= 0.5 or field.min() >= 0.5:
        return nan
    verts, faces, _, _ = marching_cubes(field, level=0.5, spacing=tuple(sp), allow_degenerate=False)
    if len(faces) == 0:
        return nan
    cen = verts[faces].mean(axis=1) / sp - pad
    ci = np.rint(cen).astype(np.int64)
    shape = np.asarray(mcrop.shape)
    ok = np.all((ci >= 0) & (ci < shape), axis=1)
    keep = np.zeros(len(faces), bool)
    keep[ok] = mcrop[ci[ok, 0], ci[ok, 1], ci[ok, 2]]
    if not keep.any():
        return nan
    tri = verts[faces]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    vn = np.zeros_like(verts)
    for k in range(3):
        np.add.at(vn, faces[:, k], fn)
    norm = np.linalg.norm(vn, axis=1)
    norm[norm == 0] = 1.0
    vn /= norm[:, None]
    sample = np.linspace(0, len(verts) - 1, min(len(verts), 2000)).astype(int)
    p_out = (verts[sample] + 0.5 * sp.min() * vn[sample]) / sp
    p_in = (verts[sample] - 0.5 * sp.min() * vn[sample]) / sp
    f_out = ndimage.map_coordinates(field, p_out.T, order=1, mode="nearest")
    f_in = ndimage.map_coordinates(field, p_in.T, order=1, mode="nearest")
    if not bool(np.mean(f_out < f_in) >= 0.5):
        vn = -vn
    eps = (1e-3 * sp.min()) if eps_mm is None else float(eps_mm)

    def areas(v: np.ndarray) -> np.ndarray:
        t = v[faces[keep]]
        return 0.5 * np.linalg.norm(np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]), axis=1)

    a0 = areas(verts)
    da = (areas(verts + eps * vn) - areas(verts - eps * vn)) / (2 * eps)
    s = float(a0.sum())
    ds = float(da.sum())
    smi = 6.0 * bv * ds / (s * s)
    fk = faces[keep]
    sv = np.zeros(len(verts))
    dv = np.zeros(len(verts))
    for k in range(3):
        np.add.at(sv, fk[:, k], a0 / 3.0)
        np.add.at(dv, fk[:, k], da / 3.0)
    used = sv > 0
    h = np.where(used, dv / np.where(used, sv, 1.0), 0.0)
    e = np.concatenate([fk[:, [0, 1]], fk[:, [1, 2]], fk[:, [2, 0]]])
    for _ in range(5):
        acc = sv * h
        wsum = sv.copy()
        np.add.at(acc, e[:, 0], (sv * h)[e[:, 1]])
        np.add.at(wsum, e[:, 0], sv[e[:, 1]])
        np.add.at(acc, e[:, 1], (sv * h)[e[:, 0]])
        np.add.at(wsum, e[:, 1], sv[e[:, 0]])
        h = np.where(wsum > 0, acc / np.where(wsum > 0, wsum, 1.0), 0.0)
    concave = float(sv[used & (h < 0)].sum() / sv.sum())
    return float(smi), concave, s, bv


def new_structure_model_index(bone, spacing, voi=None, eps_mm=None):
    from trabecula.morphometry.smi import structure_model_index

    r = structure_model_index(bone, spacing, voi, eps_mm)
    return r.smi, r.concave_fraction, r.surface_mm2, r.volume_mm3


METHODS = {"old": old_structure_model_index, "new": new_structure_model_index}


# --------------------------------------------------------------------------------------- inputs
def region(name: str) -> np.ndarray:
    from trabecula.io import read_volume

    path = DATA / f"Segmentation-grayscale-{name}.nrrd"
    return np.ascontiguousarray(read_volume(path, spacing=SPACING, units="binary").numpy() != 0)


def mirrored(b: np.ndarray, n: int) -> np.ndarray:
    """The region mirrored (symmetric padding, repeated) to an n³ cube."""
    out = b
    while min(out.shape) < n:
        out = np.pad(out, [(0, min(s, n - s)) for s in out.shape], mode="symmetric")
    return np.ascontiguousarray(out[:n, :n, :n])


# ------------------------------------------------------------------------------- measured child
def _child(conn, method: str, path: str) -> None:
    try:
        fn = METHODS[method]
        warm = np.zeros((24, 24, 24), bool)
        warm[4:20, 6:18, 8:16] = True
        fn(warm, SPACING)  # imports and first-call costs, not per-voxel ones
        base = _rss_bytes()
        b = np.load(path)
        t0 = time.perf_counter()
        res = fn(b, SPACING)
        dt = time.perf_counter() - t0
        conn.send({"seconds": dt, "peak_bytes": _peak_rss_bytes(), "base_bytes": base, "voxels": int(b.size),
                   "smi": res[0], "concave_fraction": res[1], "surface_mm2": res[2], "volume_mm3": res[3]})
    except Exception as exc:  # report, don't hang the parent
        conn.send({"error": f"{type(exc).__name__}: {exc}"})
    finally:
        conn.close()


def measure(method: str, path: Path) -> dict:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    p = ctx.Process(target=_child, args=(child, method, str(path)))
    p.start()
    child.close()
    msg = parent.recv()
    p.join()
    if "error" not in msg:
        msg["bytes_per_voxel"] = max(0, msg["peak_bytes"] - msg["base_bytes"]) / msg["voxels"]
    print(f"  {method}: {msg}", flush=True)
    return msg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="300,600", help="comma list of 300 (the region) and/or a mirrored size")
    ap.add_argument("--old-big", action="store_true", help="run the old method on the mirrored sizes too")
    ap.add_argument("--no-regions", action="store_true", help="skip old-vs-new values on three regions")
    args = ap.parse_args()
    os.environ.setdefault("TRABECULA_NO_PROGRESS", "1")
    base = region(REGIONS[0])
    cases, values = [], []
    with tempfile.TemporaryDirectory(prefix="bench_smi_memory_") as td:
        for s in [int(x) for x in args.sizes.split(",") if x]:
            name = "didsr-300" if s == 300 else f"didsr-mirrored-{s}"
            path = Path(td) / f"{name}.npy"
            np.save(path, base if s == 300 else mirrored(base, s))
            print(name, flush=True)
            runs = {m: measure(m, path) for m in (("old", "new") if s == 300 or args.old_big else ("new",))}
            case = {"input": name, "shape": [s] * 3, "runs": runs}
            if "old" in runs and "error" not in runs["old"] and "error" not in runs["new"]:
                case["memory_ratio_old_over_new"] = runs["old"]["bytes_per_voxel"] / runs["new"]["bytes_per_voxel"]
                case["time_ratio_old_over_new"] = runs["old"]["seconds"] / runs["new"]["seconds"]
            cases.append(case)
            path.unlink()
        if not args.no_regions:
            for name in REGIONS:
                b = region(name)
                o, n = old_structure_model_index(b, SPACING), new_structure_model_index(b, SPACING)
                values.append({"region": name, "smi_old": o[0], "smi_new": n[0], "concave_old": o[1],
                               "concave_new": n[1], "surface_old_mm2": o[2], "surface_new_mm2": n[2]})
                print(values[-1], flush=True)
    payload = {"spacing_mm": SPACING, "cases": cases, "old_vs_new": values,
               "versions": versions("numpy", "scipy", "skimage")}
    path = write_results("bench_smi_memory", payload)
    print(f"\nwrote {path.relative_to(REPO)}\n")
    print(f"{'input':22s} {'method':6s} {'seconds':>8s} {'B/voxel':>8s} {'SMI':>8s} {'concave':>8s}")
    for c in cases:
        for m, r in c["runs"].items():
            if "error" in r:
                print(f"{c['input']:22s} {m:6s} {r['error']}")
            else:
                print(f"{c['input']:22s} {m:6s} {r['seconds']:8.1f} {r['bytes_per_voxel']:8.1f} {r['smi']:8.4f} "
                      f"{r['concave_fraction']:8.4f}")
        if "memory_ratio_old_over_new" in c:
            print(f"  ratios old/new: memory {c['memory_ratio_old_over_new']:.1f}, "
                  f"time {c['time_ratio_old_over_new']:.2f}")
    for v in values:
        print(f"{v['region']:10s} SMI old {v['smi_old']:.4f} new {v['smi_new']:.4f}   concave old "
              f"{v['concave_old']:.4f} new {v['concave_new']:.4f}")


if __name__ == "__main__":
    main()
