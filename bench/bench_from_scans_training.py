"""Issue 21, last criterion: a model trained on pairs made by ``pairs --from-scans`` from misaligned twin scans
against the same model trained on the perfectly aligned pairs (same specimens, same split, same budget), both
scored on the same test specimens against the ALIGNED micro-CT targets with the study SSIM.

1. N twin specimens (``twin_specimen``: a 7 mm crop of a different DIDSR L1 region each, own offset, in a
   1 mm margin of marrow), each scanned by ``study-mdct`` and ``micro-ct`` (``twin_scans``).
2. Aligned baseline: the micro-CT resampled (identity transform) onto the clinical scan's box at its own
   spacing (what ``--from-scans`` writes after registration), pairs by ``pairs_from_folders``.
3. Misaligned: each micro-CT through a seeded ``random_rigid`` (≤ 15°, ≤ 5 mm) and ``misalign`` (crop
   0.9–1.1×; HU kept unless ``--hu-change``), pairs by ``pairs_from_scans`` (registration rigid → affine).
   The split of the from-scans manifest is checked against the aligned one (and set to it if it differed).
4. The same ``trabecula train`` command (fixed seed, fixed iterations) on each folder, in a subprocess.
5. Both models' ``best.pt`` (and ``last.pt``) on every slice of the aligned folder's test specimens:
   ``enhance_array`` then ``ssim_study_slices`` against the aligned target, as ``trabecula evaluate`` computes
   it; also without ``--edge-slices`` slices at each z end, and the clinical input alone as a floor.

    .venv/bin/python bench/bench_from_scans_training.py --iters 1200 --val-every 300 --threads 2 \
        --set 'features=[16,16,32,64,128,16]'

The scans, pairs and training runs are kept in ``--work`` (default ``bench/results/from_scans_training_work``)
and reused when the script is run again (only the
evaluation is redone). Results in docs/register.md ("Training on registered pairs").
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import versions, write_results  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "didsr_l1_vertebra"


def make_scans(work: Path, n: int, size: int, hu_change: bool) -> list[dict]:
    import SimpleITK as sitk

    from trabecula.enhance.register import moved_grid, resample_moving
    from trabecula.enhance.twin_cases import (
        misalign,
        random_rigid,
        specimen_centre,
        twin_scans,
        twin_specimen,
    )
    from trabecula.io import write_volume

    regions = sorted(DATA.glob("*.nrrd"))
    if not regions:
        raise SystemExit(f"no DIDSR regions in {DATA}")
    dirs = {k: work / k for k in ("clinical", "micro_aligned", "micro_misaligned")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    rows = []
    for k in range(n):
        region = regions[k % len(regions)]
        offset = int(20 + (37 * k) % (300 - size - 40))
        sid = f"s{k:02d}"
        t = time.perf_counter()
        spec = twin_specimen(region, size=size, offset=offset)
        clinical, micro = twin_scans(spec, seed=k)
        shape, sp, origin = moved_grid(clinical, micro)
        aligned = resample_moving(micro, sitk.Transform(3, sitk.sitkIdentity), shape, sp, origin)
        centre = specimen_centre(spec)
        rng = np.random.default_rng(3000 + k)
        truth = random_rigid(rng, centre)
        hu = {} if hu_change else {"hu_scale": (1.0, 1.0), "hu_offset": (0.0, 0.0)}
        mis = misalign(micro, truth, rng, centre, **hu)
        write_volume(clinical, dirs["clinical"] / f"{sid}.nii.gz", force=True)
        write_volume(aligned, dirs["micro_aligned"] / f"{sid}.nii.gz", force=True)
        write_volume(mis.moving, dirs["micro_misaligned"] / f"{sid}.nii.gz", force=True)
        rot = truth.GetMatrix()
        angle = float(np.degrees(np.arccos(np.clip((rot[0] + rot[4] + rot[8] - 1) / 2, -1, 1))))
        rows.append({"specimen": sid, "region": region.name, "offset_voxels": offset, "misalign_rotation_deg": angle,
                     "misalign_translation_mm": float(np.linalg.norm(truth.GetTranslation())),
                     "hu_scale": mis.hu_scale, "hu_offset": mis.hu_offset, "seconds": time.perf_counter() - t})
        print(f"{sid} {region.name} offset {offset}: rot {angle:.1f}° shift {rows[-1]['misalign_translation_mm']:.2f} mm "
              f"({rows[-1]['seconds']:.1f} s)", flush=True)
    return rows


def same_split(aligned: Path, from_scans: Path) -> dict:
    """Check that the two manifests split the specimens alike; if not, give the from-scans one the aligned split."""
    ma = json.loads((aligned / "manifest.json").read_text())
    mf = json.loads((from_scans / "manifest.json").read_text())
    sa = {r["id"]: r["split"] for r in ma["specimens"]}
    sf = {r["id"]: r["split"] for r in mf["specimens"]}
    if set(sa) != set(sf):
        raise SystemExit(f"different specimens: {sorted(sa)} vs {sorted(sf)}")
    differed = sa != sf
    if differed:
        for r in mf["specimens"]:
            r["split"] = sa[r["id"]]
        (from_scans / "manifest.json").write_text(json.dumps(mf, indent=1))
    return {"split": sa, "differed_and_rewritten": differed}


def train_cmd(data: Path, out: Path, a: argparse.Namespace) -> list[str]:
    exe = Path(sys.executable).parent / "trabecula"
    cmd = [str(exe), "train", "--model", a.model, "--data", str(data), "--out", str(out), "--iters", str(a.iters),
           "--batch", str(a.batch), "--patch", str(a.patch), "--seed", "0", "--device", "cpu",
           "--threads", str(a.threads), "--val-every", str(a.val_every)]
    for s in a.set or []:
        cmd += ["--set", s]
    return cmd


def shown(cmd: list[str], work: Path) -> str:
    """The command as recorded: ``trabecula`` for the executable, paths relative to ``--work`` (``WORK/...``)."""
    text = " ".join(["trabecula", *cmd[1:]])
    return text.replace(str(work), "WORK")


def evaluate(aligned: Path, weights: Path, threads: int) -> dict:
    import torch

    from trabecula.enhance.data import PairSet
    from trabecula.enhance.infer import enhance_array, load_model
    from trabecula.quality.similarity import ssim_study_slices

    torch.set_num_threads(threads)
    ps = PairSet.open(aligned)
    lm = load_model(weights, "cpu")
    radius = lm.manifest.get("receptive_radius_px")
    per = {}
    for sid in ps.ids("test"):
        d = ps.load(sid)
        zs = ps.slices(sid, "test")
        y = enhance_array(lm, d["input"], overlap=None if radius is None else 2 * int(radius) + 8)
        per[sid] = ssim_study_slices(y[zs], d["target"][zs]).tolist()
    allv = np.concatenate([np.asarray(v) for v in per.values()])
    means = [float(np.mean(v)) for v in per.values()]
    return {"per_specimen_mean": dict(zip(per, means, strict=True)), "slices": int(allv.size),
            "mean": float(allv.mean()), "sd_slices": float(allv.std(ddof=1)),
            "sd_specimens": float(np.std(means, ddof=1)) if len(means) > 1 else None, "per_slice": per}


def central(per_slice: dict[str, list[float]], edge: int) -> float:
    """Mean study SSIM over the test slices without ``edge`` slices at each z end of every specimen."""
    return float(np.mean(np.concatenate([np.asarray(v)[edge:len(v) - edge] for v in per_slice.values()])))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path(__file__).resolve().parent / "results" / "from_scans_training_work",
                    help="scans, pairs and runs (kept and reused; default under bench/results, which git ignores)")
    ap.add_argument("--specimens", type=int, default=10)
    ap.add_argument("--size", type=int, default=140, help="specimen crop in 0.05 mm voxels (plus a 20-voxel margin)")
    ap.add_argument("--hu-change", action="store_true", help="also scale/offset the misaligned micro-CT's HU (0.8–1.25×, ±200)")
    ap.add_argument("--model", default="srdlr")
    ap.add_argument("--iters", type=int, default=1200)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--patch", type=int, default=40)
    ap.add_argument("--val-every", type=int, default=300)
    ap.add_argument("--set", action="append")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--stage", choices=["all", "data"], default="all")
    ap.add_argument("--edge-slices", type=int, default=4,
                    help="also report the mean without this many slices at each z end of a test specimen")
    a = ap.parse_args()

    from trabecula.enhance.data import pairs_from_folders
    from trabecula.enhance.from_scans import pairs_from_scans

    work = a.work
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    scans_json = work / "scans.json"
    if not scans_json.exists():
        scans = make_scans(work, a.specimens, a.size, a.hu_change)
        scans_json.write_text(json.dumps(scans, indent=1))
    scans = json.loads(scans_json.read_text())
    aligned, from_scans = work / "pairs_aligned", work / "pairs_from_scans"
    t = time.perf_counter()
    if not (aligned / "manifest.json").exists():
        pairs_from_folders(work / "clinical", work / "micro_aligned", aligned, seed=0, force=True)
    if not (from_scans / "manifest.json").exists():
        pairs_from_scans(work / "clinical", work / "micro_misaligned", from_scans, seed=0, force=True,
                         progress=lambda s: print(s, flush=True))
    pairs_s = time.perf_counter() - t
    split = same_split(aligned, from_scans)
    reg = json.loads((from_scans / "manifest.json").read_text())["registration"]
    print("split", split, flush=True)
    if a.stage == "data":
        return
    result: dict = {"settings": {k: (v.name if isinstance(v, Path) else v) for k, v in vars(a).items()},
                    "scans": scans, "registration": [{k: r[k] for k in ("specimen", "final_metric", "overlap", "seconds")} for r in reg],
                    "split": split, "pairs_seconds": pairs_s, "arms": {}}
    for arm, data in (("aligned", aligned), ("from_scans", from_scans)):
        run = work / f"run_{arm}"
        cmd = train_cmd(data, run, a)
        print(" ".join(cmd), flush=True)
        t = time.perf_counter()
        if not (run / "best.pt").exists():
            subprocess.run(cmd, check=True)
        train_s = time.perf_counter() - t
        t = time.perf_counter()
        ev = evaluate(aligned, run / "best.pt", a.threads)
        last = evaluate(aligned, run / "last.pt", a.threads)
        ev["last_pt"] = {k: last[k] for k in ("mean", "sd_slices", "per_specimen_mean")}
        ev["last_pt"]["central_mean"] = central(last["per_slice"], a.edge_slices)
        ev["central_mean"] = central(ev["per_slice"], a.edge_slices)
        log = (run / "log.csv").read_text().strip().splitlines()
        result["arms"][arm] = {"command": shown(cmd, work), "train_seconds": train_s, "eval_seconds": time.perf_counter() - t,
                               "log_last": log[-1], "log_header": log[0], **ev}
        print(arm, f"study SSIM {ev['mean']:.4f} ± {ev['sd_slices']:.4f} (slices), per specimen {ev['per_specimen_mean']}; "
              f"without {a.edge_slices} end slices {ev['central_mean']:.4f}; last.pt {last['mean']:.4f} "
              f"(without the ends {ev['last_pt']['central_mean']:.4f})", flush=True)
    # the inputs alone (clinical doubled in-plane) against the same targets, as a floor
    from trabecula.enhance.data import PairSet
    from trabecula.pipeline.vertebra_study import double_inplane
    from trabecula.quality.similarity import ssim_study_slices

    ps = PairSet.open(aligned)
    base = [ssim_study_slices(double_inplane(d["input"]), d["target"]) for d in (ps.load(s) for s in ps.ids("test"))]
    result["input_only_mean"] = float(np.mean(np.concatenate(base)))
    diff = result["arms"]["aligned"]["mean"] - result["arms"]["from_scans"]["mean"]
    pa = np.concatenate([np.asarray(v) for v in result["arms"]["aligned"]["per_slice"].values()])
    pf = np.concatenate([np.asarray(v) for v in result["arms"]["from_scans"]["per_slice"].values()])
    result["difference_aligned_minus_from_scans"] = float(diff)
    result["difference_central"] = result["arms"]["aligned"]["central_mean"] - result["arms"]["from_scans"]["central_mean"]
    result["difference_last_pt"] = result["arms"]["aligned"]["last_pt"]["mean"] - result["arms"]["from_scans"]["last_pt"]["mean"]
    result["paired_slice_diff_sd"] = float(np.std(pa - pf, ddof=1))
    result["within_0_02"] = bool(abs(diff) <= 0.02)
    result["total_seconds"] = time.perf_counter() - t0
    result["versions"] = versions("torch", "numpy", "SimpleITK")
    print(f"difference (aligned − from-scans) {diff:+.4f}; without the end slices {result['difference_central']:+.4f}; "
          f"last.pt {result['difference_last_pt']:+.4f}; input only {result['input_only_mean']:.4f}")
    print(write_results("bench_from_scans_training", result))


if __name__ == "__main__":
    main()
