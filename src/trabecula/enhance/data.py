"""Paired training data made by the scanner twin: specimens scanned under a clinical protocol (noisy,
noise-free, on a finer detector) and by micro-CT, on two fixed grids, stored as one ``.npz`` shard per
specimen plus ``manifest.json``.

Grids (the vertebra study's: MDCT slices 0.1 mm apart, ~0.2 mm pixels, "doubled" to meet the micro-CT):

* input grid :data:`INPUT_SPACING` ``(0.1, 0.2, 0.2)`` mm (z, y, x) — ``input`` (the protocol's scan) and
  ``input_clean`` (the same scan without noise), resampled from the protocol's own pixel and slice;
* target grid :data:`TARGET_SPACING` ``(0.1, 0.1, 0.1)`` mm — ``target`` (micro-CT) and ``target_sr``
  (the protocol on a detector with elements half as wide, noise-free), exactly 2× finer in-plane and
  edge-aligned with the input grid (same field of view, same slices).

Specimens (:func:`specimen_plan`): the ten real L1 trabecular structures of DIDSR (binary, 0.05 mm) with
augmented copies and Voronoi-foam look-alikes, the shrew sample at human scale, ``n_synthetic``
level-set structures (:func:`trabecula.phantom.standin.synthetic_structure`) and ``n_edges`` bone-cylinder
edge objects. Protocols (:mod:`trabecula.scanner.protocols`): each specimen its own, drawn from the recorded
ranges (pixel, slice thickness, kernel, mAs, kVp, body, medium), or one fixed preset protocol. Scanning is the
scanner twin's fast path (:func:`trabecula.scanner.scan`, ``mode="fast"``), validated against the full
projection simulation.

Splits: ``by-specimen`` (default; 20 % of source specimens held out for test, 10 % for validation,
stratified by family, every copy and look-alike with its source) or ``by-slice`` (the study's: 20 % / 10 %
of each specimen's slices — neighbouring slices of one specimen then sit in both training and test, which
flatters the test numbers).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from trabecula.enhance.checks import read_json
from trabecula.errors import InputError, ParameterError
from trabecula.io import atomic_output, read_volume
from trabecula.limits import check_memory
from trabecula.phantom.augment import Augmentation, augment_binary, random_augmentation
from trabecula.phantom.real import from_binary, human_scale, lookalike
from trabecula.phantom.standin import edge_phantom, synthetic_structure
from trabecula.progress import progress_steps
from trabecula.scanner.body import Body
from trabecula.scanner.protocols import Protocol, ProtocolRanges, preset_protocol, random_protocol
from trabecula.scanner.simulate import scan
from trabecula.volume import Volume

INPUT_SPACING = (0.1, 0.2, 0.2)
TARGET_SPACING = (0.1, 0.1, 0.1)
DIDSR_SPACING = 0.05
MANIFEST = "manifest.json"
SPLITS = ("train", "val", "test")


# ------------------------------------------------------------------------------------------ specimens


def didsr_region_id(path: str | Path) -> str:
    """The id of a DIDSR L1 region file: ``didsr-`` and the vertebra and donor numbers of its name
    (``Segmentation-grayscale-5_06219.nrrd`` → ``didsr-5_06219``; two vertebrae of one donor stay distinct)."""
    return f"didsr-{Path(path).stem.split('-')[-1]}"


#: Bytes per specimen voxel a scan holds at once (its structure, labels, float32 phantom and scans): a budget, not
#: a measurement to the byte.
SPECIMEN_BYTES_PER_VOXEL = 24


def _largest_size(bytes_per_voxel: float) -> int:
    """The largest specimen ``size`` (a multiple of 4) whose ``size³ · bytes_per_voxel`` fits the memory budget."""
    from trabecula.limits import memory_budget_bytes

    n = int((memory_budget_bytes() / bytes_per_voxel) ** (1 / 3))
    return max(0, n - n % 4)


def specimen_plan(n_synthetic: int = 30, n_edges: int = 2, didsr_dir: str | Path | None = None, seed: int = 0,
                  size: int = 240, augment: int = 0, lookalikes: int = 0, shrew: str | Path | None = None) -> list[dict]:
    """The list of specimens to scan: id, source and generator parameters (drawn from ``seed``); synthetic,
    look-alike and edge specimens are ``size`` voxels of 0.05 mm across (a multiple of 4).

    * ``didsr_dir``: the real L1 regions; ``augment`` adds that many augmented copies of each
      (:func:`trabecula.phantom.augment.random_augmentation`: a cube symmetry, a rotation up to 45°, a scale
      in 1 ± 0.15, a one-voxel erosion or dilation, drawn from ``seed``);
    * ``lookalikes``: that many Voronoi-foam look-alikes (:func:`trabecula.phantom.real.lookalike`), each
      matching the BV/TV, Tb.Th and Tb.Sp of one DIDSR region in turn (needs ``didsr_dir``);
    * ``shrew``: the shrew sample (:func:`shrew_structure`, rescaled to human strut thickness), with
      ``augment`` augmented copies too;
    * ``n_synthetic`` level-set structures and ``n_edges`` edge objects.

    Each specimen records its ``source_specimen`` (for look-alikes: the region it imitates); the split keeps
    every copy and look-alike of a source in the source's split."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 32 or size % 4:
        raise ParameterError("--size", f"must be a multiple of 4 and at least 32 voxels, got {size!r}")
    check_memory(SPECIMEN_BYTES_PER_VOXEL * float(size) ** 3, f"a specimen of {size}³ voxels", "--size",
                 f"at most --size {_largest_size(SPECIMEN_BYTES_PER_VOXEL)} fits")
    for name, v in (("augment", augment), ("lookalikes", lookalikes), ("synthetic", n_synthetic), ("edges", n_edges)):
        if not (isinstance(v, int) and v >= 0):
            raise ParameterError(name, f"must be a whole number >= 0, got {v!r}")
    rng = np.random.default_rng(seed)
    plan: list[dict] = []
    files: list[Path] = []
    if didsr_dir is not None:
        files = sorted(Path(didsr_dir).glob("*.nrrd"))
        if not files:
            raise InputError(didsr_dir, "no .nrrd files (expected the DIDSR L1 vertebra structures)")
        aug_rng = np.random.default_rng(seed + 5)
        for k, f in enumerate(files):
            sid = didsr_region_id(f)
            plan.append({"id": sid, "source": "didsr", "path": str(f), "seed": int(seed * 1000 + k),
                         "source_specimen": sid})
            for j in range(augment):
                plan.append({"id": f"{sid}-aug{j + 1}", "source": "didsr", "path": str(f),
                             "seed": int(seed * 1000 + 500 + k * augment + j), "source_specimen": sid,
                             "augmentation": random_augmentation(aug_rng).to_dict()})
    if lookalikes:
        if not files:
            raise ParameterError("lookalikes", "look-alikes imitate the DIDSR regions: give their folder (--didsr)")
        for j in range(lookalikes):
            f = files[j % len(files)]
            sid = didsr_region_id(f)
            plan.append({"id": f"look-{j:03d}-{sid}", "source": "lookalike", "path": str(f), "size": size,
                         "seed": int(seed * 1000 + 300 + j), "source_specimen": sid})
    if shrew is not None:
        if not Path(shrew).is_file():
            raise InputError(shrew, "no such file (expected the shrew sample, Shrew.nrrd)")
        plan.append({"id": "shrew", "source": "shrew", "path": str(shrew), "size": size,
                     "seed": int(seed * 1000 + 400), "source_specimen": "shrew"})
        shrew_rng = np.random.default_rng(seed + 6)
        for j in range(augment):
            plan.append({"id": f"shrew-aug{j + 1}", "source": "shrew", "path": str(shrew), "size": size,
                         "seed": int(seed * 1000 + 450 + j), "source_specimen": "shrew",
                         "augmentation": random_augmentation(shrew_rng).to_dict()})
    kinds = ("plate", "rod", "mixed")
    for k in range(n_synthetic):
        plan.append({
            "id": f"synth-{k:03d}", "source": "synthetic", "seed": int(seed * 1000 + 100 + k), "size": size,
            "params": {"bv_tv": round(float(rng.uniform(0.10, 0.32)), 3), "scale_mm": round(float(rng.uniform(0.55, 1.3)), 3),
                       "kind": kinds[k % 3], "anisotropy": round(float(rng.choice([1.0, 1.0, 1.5, 2.0])), 2)},
        })
    for k in range(n_edges):
        plan.append({"id": f"edge-{k:02d}", "source": "edge", "seed": int(seed * 1000 + 900 + k), "size": size,
                     "params": {"radius_mm": round(float(rng.uniform(2.0, 4.5)), 2)}})
    return plan


#: the shrew sample's strut thickness is scaled to this (mm): a human vertebral Tb.Th (the vertebra
#: study's micro-CT read 0.22 mm; Hildebrand et al., J Bone Miner Res 14 (1999) 1167: L2 0.15–0.2 mm)
SHREW_TB_TH_MM = 0.2


def shrew_structure(path: str | Path, size: int = 240, tb_th_mm: float = SHREW_TB_TH_MM) -> Volume:
    """The shrew sample (binary, 4.1 µm voxels, rod-like, Tb.Th about 15 voxels = 0.06 mm) as a human-scale
    rod-like structure on the 0.05 mm grid (:func:`trabecula.phantom.real.human_scale`: struts scaled to
    ``tb_th_mm``, about ×3.3, then mirrored to ``size``³). The scale is an assumption stated in the
    provenance: the twin borrows the shrew's rod-like architecture, not its size."""
    from trabecula.io import read_volume

    v = read_volume(path, units="binary")
    v = v.with_data((v.numpy() > 0).astype(np.uint8), step="binarise>0")
    return _whole_input_voxels(human_scale(v, tb_th_mm, DIDSR_SPACING, size))


def _real_binary(spec: dict) -> Volume:
    from trabecula.io import read_volume

    v = read_volume(spec["path"], spacing=DIDSR_SPACING, units="binary")
    return v.with_data((v.numpy() > 0).astype(np.uint8), step="binarise>0")


def _whole_input_voxels(v: Volume) -> Volume:
    arr = v.numpy()
    n = (np.array(arr.shape) // 4) * 4  # whole input voxels
    return Volume(arr[: n[0], : n[1], : n[2]], DIDSR_SPACING, (0.0, 0.0, 0.0), "binary", v.provenance)


def _augmented(v: Volume, spec: dict) -> Volume:
    """``v`` with the specimen's recorded augmentation applied (unchanged without one)."""
    if not spec.get("augmentation"):
        return v
    aug = Augmentation(**{k: tuple(x) if isinstance(x, list) else x for k, x in spec["augmentation"].items()})
    return augment_binary(v, aug, source_id=spec.get("source_specimen"))


def load_structure(spec: dict) -> Volume:
    """The fine-grid (0.05 mm) structure of a planned specimen: binary for bone, HU for edge objects."""
    synthetic_size = int(spec.get("size", 240))
    if spec["source"] == "didsr":
        return _whole_input_voxels(_augmented(_real_binary(spec), spec))
    if spec["source"] == "lookalike":
        ph = lookalike(_real_binary(spec), seed=spec["seed"], size_mm=synthetic_size * DIDSR_SPACING)
        return _whole_input_voxels(ph.truth)
    if spec["source"] == "shrew":
        return _whole_input_voxels(_augmented(shrew_structure(spec["path"], synthetic_size), spec))
    if spec["source"] == "synthetic":
        p = spec["params"]
        return synthetic_structure((synthetic_size,) * 3, DIDSR_SPACING, p["bv_tv"], p["scale_mm"], p["kind"],
                                   p["anisotropy"], seed=spec["seed"])
    if spec["source"] == "edge":
        r = min(spec["params"]["radius_mm"], 0.35 * synthetic_size * DIDSR_SPACING)
        return edge_phantom((max(8, synthetic_size // 4), synthetic_size, synthetic_size), DIDSR_SPACING, r)
    raise ParameterError("source", f"unknown specimen source {spec['source']!r}")


def _on_grid(vol: Volume, spacing: Sequence[float], shape: Sequence[int], corner_mm: Sequence[float] | None = None) -> np.ndarray:
    """Resample a scan onto the grid of ``shape`` voxels of ``spacing`` whose box starts at ``corner_mm``
    (world, z/y/x; default the scan's own box corner): Gaussian anti-aliasing of σ = (factor − 1)/2 voxels
    along axes that get coarser, then linear interpolation at the new voxel centres, edge values continued
    beyond the scan. With a shared corner, grids of different spacing are edge-aligned in world space."""
    sp_in, sp_out = np.asarray(vol.spacing, float), np.asarray(spacing, float)
    corner = (np.asarray(vol.origin, float) - sp_in / 2) if corner_mm is None else np.asarray(corner_mm, float)
    a = vol.numpy().astype(np.float32)
    factor = sp_out / sp_in
    if np.any(factor > 1.0 + 1e-6):
        a = ndimage.gaussian_filter(a, np.maximum(0.0, (factor - 1.0) / 2.0), mode="nearest")
    idx = [(corner[k] + (np.arange(shape[k]) + 0.5) * sp_out[k] - vol.origin[k]) / sp_in[k] for k in range(3)]
    if all(np.allclose(i, np.arange(len(i)) + i[0]) and abs(i[0] - round(i[0])) < 1e-6 for i in idx):
        lo = [int(round(i[0])) for i in idx]  # same grid, shifted by whole voxels: a crop
        if all(lo_k >= 0 and lo_k + n <= a.shape[k] for k, (lo_k, n) in enumerate(zip(lo, shape, strict=True))):
            return a[lo[0]:lo[0] + shape[0], lo[1]:lo[1] + shape[1], lo[2]:lo[2] + shape[2]].copy()
    grid = np.meshgrid(*idx, indexing="ij", sparse=True)
    return ndimage.map_coordinates(a, np.broadcast_arrays(*grid), order=1, mode="nearest").astype(np.float32)


def specimen_phantom(structure: Volume):
    """The phantom of a planned structure: a binary becomes bone in marrow; an HU edge object is cut at
    700 HU first."""
    binary = structure if structure.units == "binary" else structure.with_data(
        (structure.numpy() > 700).astype(np.uint8), units="binary", step="bone > 700 HU")
    return from_binary(binary)


def specimen_container(structure: Volume, medium: str) -> Body:
    """A cylindrical tube of ``medium`` just around the specimen's box (radius 5 % beyond its half-diagonal
    plus 0.5 mm): the micro-CT's specimen holder, so that the box edge meets the medium, not air."""
    hy, hx = structure.extent_mm[1] / 2.0, structure.extent_mm[2] / 2.0
    r = 1.05 * math.hypot(hy, hx) + 0.5
    return Body(f"{2 * r:.1f} mm tube of {medium}", (r, r), core=medium)


def scan_specimen(structure: Volume, seed: int, protocol: Protocol) -> dict[str, np.ndarray]:
    """Scan one fine-grid structure with the scanner twin's fast path (:func:`trabecula.scanner.scan`,
    ``mode="fast"``) under ``protocol`` (its body around the specimen, its medium in the box):

    * ``input`` — the protocol's scan, with noise (seed ``seed``);
    * ``input_clean`` — the same scan without noise (the denoising reference);
    * ``target_sr`` — the same protocol on a detector with elements half as wide, without noise
      (:meth:`~trabecula.scanner.protocols.Protocol.finer`; the super-resolution reference);
    * ``target`` — the ``micro-ct`` preset (seed ``seed + 2``), the specimen in a tube of the same medium
      (:func:`specimen_container`), as specimens are micro-CT scanned.

    The inputs are resampled to the canonical input grid :data:`INPUT_SPACING` and the targets to
    :data:`TARGET_SPACING` (edge-aligned, same field of view), int16 HU.
    """
    n_in = tuple(int(round(e / s)) for e, s in zip(structure.extent_mm, INPUT_SPACING, strict=True))
    n_t = (n_in[0], 2 * n_in[1], 2 * n_in[2])
    phantom = specimen_phantom(structure)
    clinical, finer = protocol.scanner(), protocol.finer()
    patient = {"body": protocol.body, "medium": protocol.medium}
    scans = {
        "input": (scan(phantom, clinical, seed=seed, mode="fast", **patient), INPUT_SPACING, n_in),
        "input_clean": (scan(phantom, clinical, noise=False, mode="fast", **patient), INPUT_SPACING, n_in),
        "target_sr": (scan(phantom, finer, noise=False, mode="fast", **patient), TARGET_SPACING, n_t),
        "target": (scan(phantom, "micro-ct", seed=seed + 2, mode="fast", body=specimen_container(structure, protocol.medium),
                        medium=protocol.medium), TARGET_SPACING, n_t),
    }
    corner = np.asarray(structure.origin, float) - np.asarray(structure.spacing, float) / 2  # the specimen's box
    return {k: np.clip(np.rint(_on_grid(v, sp, n, corner)), -32768, 32767).astype(np.int16)
            for k, (v, sp, n) in scans.items()}


def specimen_protocol(spec: dict, protocols: str | Protocol, ranges: ProtocolRanges) -> Protocol:
    """The protocol of one planned specimen: drawn from ``ranges`` with the specimen's seed
    (``protocols="random"``), or the given fixed :class:`Protocol`."""
    if isinstance(protocols, Protocol):
        return protocols
    return random_protocol(np.random.default_rng((int(spec["seed"]), 17)), ranges)


def _family(spec: dict) -> str:
    """The stratum a specimen is split in: real L1 regions and their look-alikes together."""
    return "didsr" if spec["source"] in ("didsr", "lookalike") else spec["source"]


def _split_specimens(plan: list[dict], seed: int, test_frac: float = 0.2, val_frac: float = 0.1) -> dict[str, str]:
    """Assign each specimen to train/val/test, stratified by family (:func:`_family`) and strictly by source
    specimen: every augmented copy and every look-alike of a structure lands in its original's split. Edge
    objects always train; a family of fewer than five groups has no validation share."""
    rng = np.random.default_rng(seed + 7)
    out: dict[str, str] = {}
    for family in ("didsr", "synthetic", "shrew", "user"):
        members = [s for s in plan if s["source"] != "edge" and _family(s) == family]
        groups = list(dict.fromkeys(s.get("source_specimen", s["id"]) for s in members))
        rng.shuffle(groups)
        n_test = int(round(test_frac * len(groups)))
        n_val = int(round(val_frac * len(groups))) if len(groups) >= 5 else 0
        which = {g: "test" if k < n_test else ("val" if k < n_test + n_val else "train") for k, g in enumerate(groups)}
        for s in members:
            out[s["id"]] = which[s.get("source_specimen", s["id"])]
    for s in plan:
        out.setdefault(s["id"], "train")
    return out


def _split_slices(n: int, rng: np.random.Generator, test_frac: float = 0.2, val_frac: float = 0.1) -> dict[str, list[int]]:
    idx = rng.permutation(n)
    n_test, n_val = int(round(test_frac * n)), int(round(val_frac * n))
    return {"test": sorted(idx[:n_test].tolist()), "val": sorted(idx[n_test:n_test + n_val].tolist()),
            "train": sorted(idx[n_test + n_val:].tolist())}


def _scan_one(spec: dict, protocols: str | Protocol, ranges: ProtocolRanges, out_dir: str) -> dict:
    """Scan one planned specimen, write its shard into ``out_dir``; return its manifest record (no split)."""
    structure = load_structure(spec)
    protocol = specimen_protocol(spec, protocols, ranges)
    arrs = scan_specimen(structure, spec["seed"], protocol)
    shard = f"{spec['id']}.npz"
    with atomic_output(Path(out_dir) / shard, force=True) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrs)
    rec = {k: v for k, v in spec.items() if k != "path"}
    if "path" in spec:
        rec["file"] = Path(spec["path"]).name
    bv = float(structure.numpy().mean()) if structure.units == "binary" else None
    rec.update({
        "shard": shard, "backend": "twin", "bv_tv_truth": bv, "protocol": protocol.to_dict(),
        "scans": {"input": {"scanner": protocol.scanner().name, "seed": spec["seed"], "noise": True},
                  "input_clean": {"scanner": protocol.scanner().name, "noise": False},
                  "target_sr": {"scanner": protocol.finer().name, "noise": False},
                  "target": {"scanner": "micro-ct", "seed": spec["seed"] + 2, "medium": protocol.medium}},
        "shape_input": list(arrs["input"].shape), "shape_target": list(arrs["target"].shape),
    })
    return rec


def write_pairs(out_dir: str | Path, plan: list[dict], protocols: str | Protocol = "random",
                split: str = "by-specimen", seed: int = 0, force: bool = False,
                progress: Callable[[str], None] | None = None, ranges: ProtocolRanges | None = None,
                workers: int = 1) -> Path:
    """Scan every planned specimen (:func:`scan_specimen`) and write the shards and ``manifest.json``.

    ``protocols``: ``"random"`` draws each specimen's clinical protocol from ``ranges`` (default
    :class:`~trabecula.scanner.protocols.ProtocolRanges`) with the specimen's seed; a
    :class:`~trabecula.scanner.protocols.Protocol` scans every specimen with it. The manifest records the
    ranges, and every specimen its protocol, source specimen and augmentation. ``workers > 1`` scans specimens
    in that many spawned processes (the shards and manifest are the same: each specimen depends only on its
    own seed). Specimen ids must be unique. Returns the manifest path.
    """
    if split not in ("by-specimen", "by-slice"):
        raise ParameterError("split", f"use by-specimen or by-slice, got {split!r}")
    if not isinstance(protocols, Protocol) and protocols != "random":
        raise ParameterError("protocols", f"use random or a preset name, got {protocols!r}")
    ranges = ranges or ProtocolRanges()
    out_dir = Path(out_dir)
    if (out_dir / MANIFEST).exists() and not force:
        raise InputError(out_dir / MANIFEST, "already exists (use --force to overwrite)")
    out_dir.mkdir(parents=True, exist_ok=True)
    if not (isinstance(workers, int) and workers >= 1):
        raise ParameterError("workers", f"must be a whole number >= 1, got {workers!r}")
    ids = [s["id"] for s in plan]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise ParameterError("specimens", f"specimen ids must be unique (shards are named by them): {', '.join(dup)}")
    assign = _split_specimens(plan, seed)
    rng = np.random.default_rng(seed + 11)
    jobs = [(spec, protocols, ranges, str(out_dir)) for spec in plan]
    if workers > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as ex:
            futures = [ex.submit(_scan_one, *job) for job in jobs]
            done = []
            for spec, fut in zip(plan, futures, strict=True):
                done.append(fut.result())
                if progress:
                    progress(spec["id"])
    else:
        done = []
        for job in jobs:
            if progress:
                progress(job[0]["id"])
            done.append(_scan_one(*job))
    records = []
    for rec in done:
        if split == "by-specimen":
            rec["split"] = assign[rec["id"]]
        else:
            rec["split"] = "mixed"
            rec["slices"] = _split_slices(rec["shape_input"][0], rng)
        records.append(rec)
    manifest = {
        "format": "trabecula-pairs/1",
        "created_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "backend": "twin",
        "backend_note": "scanner twin, fast path (trabecula.scanner.fast), validated against its projection simulation",
        "arrays": {"input": "protocol scan with noise (input grid)", "input_clean": "same scan without noise (input grid)",
                   "target_sr": "same protocol, detector elements half as wide, no noise (target grid)",
                   "target": "micro-ct (target grid)"},
        "input_spacing": list(INPUT_SPACING), "target_spacing": list(TARGET_SPACING), "scale": 2,
        "protocols": "random" if not isinstance(protocols, Protocol) else protocols.to_dict(),
        "protocol_ranges": ranges.to_dict() if not isinstance(protocols, Protocol) else None,
        "split_mode": split, "seed": seed, "specimens": records,
    }
    path = out_dir / MANIFEST
    with atomic_output(path, force=True) as tmp:
        Path(tmp).write_text(json.dumps(manifest, indent=1))
    return path


def pairs_from_folders(input_dir: str | Path, target_dir: str | Path, out_dir: str | Path,
                       low_dir: str | Path | None = None, split: str = "by-specimen", seed: int = 0,
                       force: bool = False, input_spacing: Sequence[float] = INPUT_SPACING) -> Path:
    """The user's own registered pairs: volumes of the same name in ``input_dir`` (clinical) and
    ``target_dir`` (reference, e.g. micro-CT), optionally ``low_dir`` (low dose, for ``dlr``).

    Each pair must cover the same field of view (registered); the input is resampled to
    ``input_spacing`` and the target to the grid 2× finer in-plane. Units must be HU.
    """
    input_dir, target_dir = Path(input_dir), Path(target_dir)
    for d in (input_dir, target_dir) + ((Path(low_dir),) if low_dir else ()):
        if not Path(d).is_dir():
            raise InputError(d, "not a folder")
    names = sorted(p.name for p in input_dir.iterdir() if not p.name.startswith("."))
    pairs = [n for n in names if (target_dir / n).exists()]
    if not pairs:
        raise InputError(target_dir, f"no volume with the same name as one in {input_dir}")
    out_dir = Path(out_dir)
    if (out_dir / MANIFEST).exists() and not force:
        raise InputError(out_dir / MANIFEST, "already exists (use --force to overwrite)")
    out_dir.mkdir(parents=True, exist_ok=True)
    in_sp = tuple(float(s) for s in input_spacing)
    t_sp = (in_sp[0], in_sp[1] / 2, in_sp[2] / 2)
    plan = [{"id": Path(n).name.split(".")[0], "source": "user", "seed": k} for k, n in enumerate(pairs)]
    assign = _split_specimens([{**p, "source": "synthetic"} for p in plan], seed)
    rng = np.random.default_rng(seed + 11)
    records = []
    for spec, name in zip(plan, pairs, strict=True):
        vin, vt = read_volume(input_dir / name), read_volume(target_dir / name)
        for v, p in ((vin, input_dir / name), (vt, target_dir / name)):
            if v.units != "HU":
                raise InputError(p, f"units are {v.units}; paired data must be in HU")
        ext_in, ext_t = np.asarray(vin.extent_mm), np.asarray(vt.extent_mm)
        if np.any(np.abs(ext_in - ext_t) > 0.05 * ext_in + 0.5):
            raise InputError(target_dir / name, f"field of view {tuple(ext_t)} mm differs from the input's {tuple(ext_in)} mm; register the pair first")
        n_in = tuple(max(1, int(round(e / s))) for e, s in zip(vin.extent_mm, in_sp, strict=True))
        n_t = (n_in[0], 2 * n_in[1], 2 * n_in[2])
        arrs = {"input": _on_grid(vin, in_sp, n_in), "target": _on_grid(vt, t_sp, n_t)}
        if low_dir:
            lp = Path(low_dir) / name
            if not lp.exists():
                raise InputError(lp, "missing low-dose volume for this pair")
            arrs["input_low"] = _on_grid(read_volume(lp), in_sp, n_in)
        arrs = {k: np.clip(np.rint(v), -32768, 32767).astype(np.int16) for k, v in arrs.items()}
        shard = f"{spec['id']}.npz"
        with atomic_output(out_dir / shard, force=True) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrs)
        rec = {**spec, "file": name, "shard": shard, "backend": "user", "shape_input": list(n_in), "shape_target": list(n_t)}
        if split == "by-specimen":
            rec["split"] = assign[spec["id"]]
        else:
            rec["split"] = "mixed"
            rec["slices"] = _split_slices(n_in[0], rng)
        records.append(rec)
    manifest = {"format": "trabecula-pairs/1", "created_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "backend": "user", "backend_note": f"registered pairs from {input_dir} and {target_dir}",
                "input_spacing": list(in_sp), "target_spacing": list(t_sp), "scale": 2, "split_mode": split,
                "seed": seed, "specimens": records}
    path = out_dir / MANIFEST
    with atomic_output(path, force=True) as tmp:
        Path(tmp).write_text(json.dumps(manifest, indent=1))
    return path


def default_data_dir() -> Path:
    """The real-data folder: ``$TRABECULA_DATA``, else ``shared/data`` beside the repository."""
    return Path(os.environ.get("TRABECULA_DATA", Path(__file__).resolve().parents[3].parent / "shared" / "data"))


def default_didsr_dir() -> Path | None:
    """The DIDSR L1 vertebra structures' default folder, ``<data>/didsr_l1_vertebra``, or None when that
    folder does not exist."""
    folder = default_data_dir() / "didsr_l1_vertebra"
    return folder if folder.is_dir() else None


def default_shrew_path() -> Path | None:
    """The shrew sample's default file, ``<data>/didsr_shrew/Shrew.nrrd``, or None when it does not exist."""
    path = default_data_dir() / "didsr_shrew" / "Shrew.nrrd"
    return path if path.is_file() else None


def _optional_source(value: str | Path | None, default: Callable[[], Path | None]) -> Path | None:
    if value is None:
        return default()
    return None if str(value).lower() == "none" else Path(value)


def make_pairs(out_dir: str | Path, *, synthetic: int = 30, edges: int = 2, didsr: str | Path | None = None,
               shrew: str | Path | None = None, lookalikes: int = 0, augment: int = 0,
               protocols: str = "random", mas: float | None = None, body: str | None = None,
               medium: str | None = None, split: str = "by-specimen", input_dir: str | Path | None = None,
               target_dir: str | Path | None = None, low_dir: str | Path | None = None, size: int = 240,
               seed: int = 0, force: bool = False, workers: int = 1) -> Path:
    """Make a pairs folder (``trabecula pairs``); returns the manifest path.

    With ``input_dir`` and ``target_dir`` (both or neither, else :class:`ParameterError`): the user's own
    registered pairs (:func:`pairs_from_folders`, ``low_dir`` optional). Otherwise the specimens of
    :func:`specimen_plan` — the DIDSR regions in ``didsr`` (None: :func:`default_didsr_dir`; ``"none"``:
    none) with ``augment`` augmented copies and ``lookalikes`` look-alikes, the shrew sample ``shrew``
    (None: :func:`default_shrew_path`; ``"none"``: none), ``synthetic`` level-set structures and ``edges``
    edge objects, ``size`` voxels across — scanned by :func:`write_pairs` with a progress bar under
    ``protocols``: ``"random"`` (each specimen its own protocol from
    :class:`~trabecula.scanner.protocols.ProtocolRanges`) or a preset name (that preset's protocol, with
    ``mas``, ``body`` and ``medium`` overriding it).
    """
    if (input_dir is None) != (target_dir is None):
        raise ParameterError("--input/--target", "give both folders for your own pairs")
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 256:
        raise ParameterError("--workers", f"must be a whole number from 1 to 256, got {workers!r}")
    if input_dir is None and isinstance(size, int) and not isinstance(size, bool) and size >= 32:
        check_memory(SPECIMEN_BYTES_PER_VOXEL * float(size) ** 3 * workers,
                     f"{workers} worker{'s' if workers > 1 else ''} scanning specimens of {size}³ voxels", "--size",
                     f"at most --size {_largest_size(SPECIMEN_BYTES_PER_VOXEL * workers)} fits with --workers {workers}")
    if input_dir is not None:
        return pairs_from_folders(input_dir, target_dir, out_dir, low_dir, split=split, seed=seed, force=force)
    if protocols == "random":
        if mas is not None or body is not None or medium is not None:
            raise ParameterError("--mas/--body/--medium", "fix a protocol with --protocols PRESET; random protocols draw them")
        chosen: str | Protocol = "random"
    else:
        try:
            chosen = preset_protocol(protocols, mas, body, medium)
        except ParameterError as exc:
            if exc.name != "scanner":
                raise
            raise ParameterError("--protocols", f"use random or a preset name; {exc.message}") from exc
    plan = specimen_plan(synthetic, edges, _optional_source(didsr, default_didsr_dir), seed, size, augment=augment,
                         lookalikes=lookalikes, shrew=_optional_source(shrew, default_shrew_path))
    with progress_steps("scanning specimens", len(plan)) as advance:
        return write_pairs(out_dir, plan, protocols=chosen, split=split, seed=seed, force=force,
                           progress=lambda sid: advance(1, f"scanned {sid}"), workers=workers)


def cross_validation_fold(pairs_dir: str | Path, out_dir: str | Path, fold: int, folds: int = 5, seed: int = 0,
                          force: bool = False) -> Path:
    """A pairs folder whose split is fold ``fold`` of a ``folds``-fold cross-validation over the real L1
    regions of ``pairs_dir`` (its shards are shared, not copied: the new manifest points at them).

    The DIDSR source regions (sorted, shuffled by ``seed``) are dealt into ``folds`` groups; group ``fold`` is
    the test split, the first region of the next group the validation split, the rest trains; every augmented
    copy and look-alike goes with its region. Other families keep their split. Across the folds every region
    is tested exactly once (the vertebra study's question, answered per region). Returns the manifest path."""
    src = PairSet.open(pairs_dir)
    if not (isinstance(folds, int) and folds >= 2 and isinstance(fold, int) and 0 <= fold < folds):
        raise ParameterError("--fold", f"need 0 <= fold < folds and folds >= 2, got fold {fold} of {folds}")
    if src.split_mode != "by-specimen":
        raise ParameterError("--cv-of", "cross-validation folds need a by-specimen pairs folder")
    regions = sorted({r.get("source_specimen", r["id"]) for r in src.specimens if _family(r) == "didsr"})
    if len(regions) < folds:
        raise ParameterError("--folds", f"{len(regions)} real regions cannot fill {folds} folds")
    order = [regions[i] for i in np.random.default_rng(seed + 13).permutation(len(regions))]
    groups = [order[k::folds] for k in range(folds)]
    test, val = set(groups[fold]), {groups[(fold + 1) % folds][0]}
    out = Path(out_dir)
    if (out / MANIFEST).exists() and not force:
        raise InputError(out / MANIFEST, "already exists (use --force to overwrite)")
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for r in src.specimens:
        rec = dict(r)
        rec["shard"] = os.path.relpath((src.root / r["shard"]).resolve(), out.resolve())
        if _family(r) == "didsr":
            g = r.get("source_specimen", r["id"])
            rec["split"] = "test" if g in test else "val" if g in val else "train"
        records.append(rec)
    manifest = {**src.manifest, "specimens": records,
                "cross_validation": {"of": str(Path(pairs_dir).resolve()), "fold": fold, "folds": folds, "seed": seed,
                                     "test_regions": sorted(test), "val_regions": sorted(val)}}
    path = out / MANIFEST
    with atomic_output(path, force=True) as tmp:
        Path(tmp).write_text(json.dumps(manifest, indent=1))
    return path


def pair_counts(manifest_path: str | Path) -> dict[str, Any]:
    """A pairs manifest summarised: ``{"specimens": n, "backend": …, "split_mode": …, "splits": {split: n}}``,
    counting specimens per split (``train``, ``val``, ``test``, ``mixed`` for by-slice folders)."""
    m = read_json(manifest_path, "pairs manifest")
    splits = {s: sum(1 for r in m["specimens"] if r["split"] == s) for s in ("train", "val", "test", "mixed")}
    return {"specimens": len(m["specimens"]), "backend": m["backend"], "split_mode": m["split_mode"], "splits": splits}


# ------------------------------------------------------------------------------------------ reading


@dataclass
class PairSet:
    """A folder of pairs: its manifest and lazily loaded shards."""

    root: Path
    manifest: dict

    @classmethod
    def open(cls, root: str | Path) -> PairSet:
        root = Path(root)
        path = root / MANIFEST
        if not path.is_file():
            raise InputError(root, f"no {MANIFEST}: not a folder made by `trabecula pairs`")
        manifest = read_json(path, "pairs manifest")
        if manifest.get("format") != "trabecula-pairs/1":
            raise InputError(path, f"unknown format {str(manifest.get('format'))[:60]!r}")
        specimens = manifest.get("specimens")
        if not isinstance(specimens, list) or not all(isinstance(r, dict) and isinstance(r.get("id"), str)
                                                      and isinstance(r.get("shard"), str) and "split" in r
                                                      for r in specimens):
            raise InputError(path, "its 'specimens' must be a list of records with id, shard and split")
        for key in ("input_spacing", "target_spacing"):
            sp = manifest.get(key)
            if not (isinstance(sp, list) and len(sp) == 3 and all(
                    isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > 0 for v in sp)):
                raise InputError(path, f"its {key} must be three positive numbers (z, y, x mm)")
        return cls(root, manifest)

    @property
    def specimens(self) -> list[dict]:
        return self.manifest["specimens"]

    @property
    def split_mode(self) -> str:
        return self.manifest.get("split_mode", "by-specimen")

    def ids(self, split: str) -> list[str]:
        """Specimens that have slices in ``split`` (all of them in by-slice mode)."""
        return [s["id"] for s in self.specimens if s["split"] in (split, "mixed")]

    def slices(self, spec_id: str, split: str) -> list[int]:
        s = self.record(spec_id)
        if s["split"] == "mixed":
            return list(s["slices"][split])
        return list(range(s["shape_input"][0])) if s["split"] == split else []

    def record(self, spec_id: str) -> dict:
        for s in self.specimens:
            if s["id"] == spec_id:
                return s
        raise ParameterError("specimen", f"no specimen {spec_id!r} in {self.root}")

    def model_keys(self, model: str) -> tuple[str, str]:
        """The (input, target) arrays a model trains on here: :func:`pair_keys` of this folder's arrays."""
        arrays = self.manifest.get("arrays") or {"input": "", "input_low": "", "target": ""}
        return pair_keys(model, arrays)

    def load(self, spec_id: str, keys: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """The arrays ``keys`` of one specimen (all of them by default), float32 HU."""
        rec = self.record(spec_id)
        path = self.root / rec["shard"]
        try:
            with np.load(path) as z:
                return {k: z[k].astype(np.float32) for k in (z.files if keys is None else keys) if k in z.files}
        except (OSError, ValueError) as exc:
            raise InputError(path, f"cannot read shard ({exc})") from exc

    def volume(self, spec_id: str, key: str) -> Volume:
        arr = self.load(spec_id, (key,))[key]
        in_sp = self.manifest["input_spacing"]
        sp = self.manifest["target_spacing"] if key.startswith("target") else in_sp
        # the target grid is edge-aligned with the input grid (whose first voxel centre is the origin)
        origin = tuple(-c / 2 + f / 2 for c, f in zip(in_sp, sp, strict=True))
        return Volume(arr, tuple(sp), origin, "HU")


def pair_keys(model: str, arrays: Sequence[str] | Mapping[str, Any]) -> tuple[str, str]:
    """The (input, target) arrays of a pairs folder holding ``arrays`` that ``model`` learns:

    * ``dlr`` (denoising): ``input`` → ``input_clean`` (the same protocol without noise); folders made
      before randomised protocols hold ``input_low`` → ``input`` (quarter dose → full dose);
    * ``srdlr`` (super-resolution): ``input`` → ``target_sr`` (the finer detector) where present, else
      ``target``;
    * the micro-CT-like models: ``input`` → ``target`` (micro-CT)."""
    have = set(arrays)
    if model == "dlr":
        return ("input", "input_clean") if "input_clean" in have else ("input_low", "input")
    if model == "srdlr" and "target_sr" in have:
        return "input", "target_sr"
    return "input", "target"


def context_stack(vol: np.ndarray, z: int, k: int, stride: int = 1) -> np.ndarray:
    """``k`` slices centred on ``z`` with step ``stride`` (edge slices repeated): the 2.5D input, (k, y, x)."""
    half = k // 2
    idx = np.clip(z + stride * np.arange(-half, half + 1), 0, vol.shape[0] - 1)
    return vol[idx]


class PatchDataset:
    """Random paired patches for training (a map-style dataset: item ``i`` is drawn from ``seed`` and ``i``,
    so it is reproducible and works with a distributed sampler).

    ``input_key``/``target_key`` pick the arrays (``dlr``: ``input_low`` → ``input``; the others:
    ``input`` → ``target``); ``scale`` is the target/input in-plane ratio (1 or 2). Augmentation:
    random flips and in-plane transposition (trabecular bone has no preferred in-plane direction).
    """

    def __init__(self, pairs: PairSet, split: str, patch: int, scale: int, in_channels: int = 1,
                 context_stride: int = 1, input_key: str = "input", target_key: str = "target",
                 length: int = 10**7, seed: int = 0, augment: bool = True):
        self.patch, self.scale, self.k, self.stride = int(patch), int(scale), int(in_channels), int(context_stride)
        self.input_key, self.target_key = input_key, target_key
        self.length, self.seed, self.augment = int(length), int(seed), augment
        self.items: list[tuple[np.ndarray, np.ndarray, list[int]]] = []
        for sid in pairs.ids(split):
            zs = pairs.slices(sid, split)
            if not zs:
                continue
            d = pairs.load(sid, (input_key, target_key))
            if input_key not in d or target_key not in d:
                raise InputError(pairs.root / pairs.record(sid)["shard"], f"shard lacks {input_key!r} or {target_key!r}")
            x, y = d[input_key], d[target_key]
            if min(x.shape[1:]) < self.patch:
                warnings.warn(f"specimen {sid}: slices {x.shape[1:]} smaller than the patch {self.patch}; skipped", stacklevel=2)
                continue
            self.items.append((x, y, zs))
        if not self.items:
            raise InputError(pairs.root, f"no usable specimens in the {split!r} split")
        w = np.array([len(z) for _, _, z in self.items], float)
        self.weights = w / w.sum()

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng((self.seed, int(i)))
        x, y, zs = self.items[int(rng.choice(len(self.items), p=self.weights))]
        z = int(zs[rng.integers(len(zs))])
        p, s = self.patch, self.scale
        y0 = int(rng.integers(0, x.shape[1] - p + 1))
        x0 = int(rng.integers(0, x.shape[2] - p + 1))
        xi = context_stack(x, z, self.k, self.stride)[:, y0:y0 + p, x0:x0 + p]
        yi = y[z:z + 1, s * y0:s * (y0 + p), s * x0:s * (x0 + p)]
        if self.augment:
            if rng.random() < 0.5:
                xi, yi = xi[:, ::-1], yi[:, ::-1]
            if rng.random() < 0.5:
                xi, yi = xi[:, :, ::-1], yi[:, :, ::-1]
            if rng.random() < 0.5:
                xi, yi = xi.transpose(0, 2, 1), yi.transpose(0, 2, 1)
        return np.ascontiguousarray(xi, np.float32), np.ascontiguousarray(yi, np.float32)


def validation_slices(pairs: PairSet, split: str = "val", per_specimen: int = 6, in_channels: int = 1,
                      context_stride: int = 1, input_key: str = "input", target_key: str = "target",
                      max_specimens: int | None = None) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Whole slices for validation: ``per_specimen`` evenly spaced slices of each specimen in ``split``
    (edge objects excluded), as ``(specimen, input (k, y, x), target (1, Y, X))``."""
    out: list[tuple[str, Any, Any]] = []
    ids = [i for i in pairs.ids(split) if pairs.record(i)["source"] != "edge"]
    for sid in ids[:max_specimens]:
        zs = pairs.slices(sid, split)
        if not zs:
            continue
        d = pairs.load(sid, (input_key, target_key))
        pick = [zs[int(j)] for j in np.linspace(0, len(zs) - 1, min(per_specimen, len(zs))).round().astype(int)]
        for z in pick:
            out.append((sid, context_stack(d[input_key], z, in_channels, context_stride), d[target_key][z:z + 1]))
    return out
