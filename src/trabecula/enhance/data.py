"""Paired training data: specimens "scanned" by the clinical scanner (input, at two doses) and by micro-CT
(target), on two fixed grids, stored as one ``.npz`` shard per specimen plus ``manifest.json``.

Grids (the vertebra study's: MDCT slices 0.1 mm apart, ~0.2 mm pixels, "doubled" to meet the micro-CT):

* input grid: ``(0.1, 0.2, 0.2)`` mm (z, y, x) — ``input`` (full dose) and ``input_low`` (quarter dose);
* target grid: ``(0.1, 0.1, 0.1)`` mm — ``target`` (micro-CT), exactly 2× finer in-plane and
  edge-aligned with the input grid (same field of view, same slices).

Specimens: the ten real L1 trabecular structures of DIDSR (binary, 0.05 mm) and ``n_synthetic``
level-set structures (:func:`trabecula.phantom.standin.synthetic_structure`) with BV/TV, scale, plate/rod
character and anisotropy drawn from a seeded generator, plus ``n_edges`` bone-cylinder edge objects.
Scanning uses the scanner twin (``backend="twin"``, :func:`trabecula.scanner.scan` in its fast mode)
or the image-domain model (``backend="image"``, :mod:`trabecula.scanner.image_domain`); ``"auto"`` takes the
twin when it is installed. The manifest records which.

Splits: ``by-specimen`` (default; 20 % of specimens held out for test, 10 % for validation, stratified by
source) or ``by-slice`` (the study's: 20 % / 10 % of each specimen's slices — neighbouring slices of one
specimen then sit in both training and test, which flatters the test numbers).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trabecula.errors import InputError, ParameterError
from trabecula.io import atomic_output, read_volume
from trabecula.phantom.augment import Augmentation, augment_binary, random_augmentation
from trabecula.phantom.standin import edge_phantom, synthetic_structure
from trabecula.progress import progress_steps
from trabecula.scanner.image_domain import image_scan
from trabecula.volume import Volume

INPUT_SPACING = (0.1, 0.2, 0.2)
TARGET_SPACING = (0.1, 0.1, 0.1)
FULL_MAS = 250.0
LOW_MAS = 62.5
DIDSR_SPACING = 0.05
MANIFEST = "manifest.json"
SPLITS = ("train", "val", "test")


# ------------------------------------------------------------------------------------------ specimens


def specimen_plan(n_synthetic: int = 30, n_edges: int = 2, didsr_dir: str | Path | None = None, seed: int = 0,
                  size: int = 240, augment: int = 0) -> list[dict]:
    """The list of specimens to scan: id, source and generator parameters (drawn from ``seed``); synthetic and
    edge specimens are ``size`` voxels of 0.05 mm across (a multiple of 4).

    ``augment`` adds that many augmented copies of every real (DIDSR) structure
    (:func:`trabecula.phantom.augment.random_augmentation`: a cube symmetry, a rotation up to 45°, a scale in
    1 ± 0.15, a one-voxel erosion or dilation, drawn from ``seed``); each specimen records its
    ``source_specimen``, and the split keeps every copy of a source in the same split."""
    if size < 32 or size % 4:
        raise ParameterError("size", f"must be a multiple of 4 and at least 32 voxels, got {size}")
    if not (isinstance(augment, int) and augment >= 0):
        raise ParameterError("augment", f"must be a whole number of copies >= 0, got {augment!r}")
    rng = np.random.default_rng(seed)
    plan: list[dict] = []
    if didsr_dir is not None:
        files = sorted(Path(didsr_dir).glob("*.nrrd"))
        if not files:
            raise InputError(didsr_dir, "no .nrrd files (expected the DIDSR L1 vertebra structures)")
        aug_rng = np.random.default_rng(seed + 5)
        for k, f in enumerate(files):
            sid = f"didsr-{f.stem.split('_')[-1]}"
            plan.append({"id": sid, "source": "didsr", "path": str(f), "seed": int(seed * 1000 + k),
                         "source_specimen": sid})
            for j in range(augment):
                plan.append({"id": f"{sid}-aug{j + 1}", "source": "didsr", "path": str(f),
                             "seed": int(seed * 1000 + 500 + k * augment + j), "source_specimen": sid,
                             "augmentation": random_augmentation(aug_rng).to_dict()})
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


def load_structure(spec: dict) -> Volume:
    """The fine-grid (0.05 mm) structure of a planned specimen: binary for bone, HU for edge objects."""
    if spec["source"] == "didsr":
        from trabecula.io import read_volume

        v = read_volume(spec["path"], spacing=DIDSR_SPACING, units="binary")
        v = v.with_data((v.numpy() > 0).astype(np.uint8), step="binarise>0")
        if spec.get("augmentation"):
            v = augment_binary(v, Augmentation(**{k: tuple(x) if isinstance(x, list) else x
                                                  for k, x in spec["augmentation"].items()}),
                               source_id=spec.get("source_specimen"))
        arr = v.numpy()
        n = (np.array(arr.shape) // 4) * 4  # whole input voxels
        arr = arr[: n[0], : n[1], : n[2]]
        return Volume(arr, DIDSR_SPACING, (0.0, 0.0, 0.0), "binary", v.provenance)
    synthetic_size = int(spec.get("size", 240))
    if spec["source"] == "synthetic":
        p = spec["params"]
        return synthetic_structure((synthetic_size,) * 3, DIDSR_SPACING, p["bv_tv"], p["scale_mm"], p["kind"],
                                   p["anisotropy"], seed=spec["seed"])
    if spec["source"] == "edge":
        r = min(spec["params"]["radius_mm"], 0.35 * synthetic_size * DIDSR_SPACING)
        return edge_phantom((max(8, synthetic_size // 4), synthetic_size, synthetic_size), DIDSR_SPACING, r)
    raise ParameterError("source", f"unknown specimen source {spec['source']!r}")


def _twin_available() -> bool:
    try:
        from trabecula.scanner import scan  # noqa: F401
    except ImportError:
        return False
    return True


def _on_grid(vol: Volume, spacing: Sequence[float], shape: Sequence[int]) -> np.ndarray:
    """Resample a scan to ``spacing`` and crop/pad (edge) to ``shape`` (same field of view, edge-aligned)."""
    if not np.allclose(vol.spacing, spacing, rtol=1e-4):
        vol = vol.resample(spacing)
    a = vol.numpy().astype(np.float32)
    out = a[: shape[0], : shape[1], : shape[2]]
    pad = [(0, max(0, s - n)) for s, n in zip(shape, out.shape, strict=True)]
    if any(p[1] for p in pad):
        out = np.pad(out, pad, mode="edge")
    return out


def scan_specimen(structure: Volume, seed: int, backend: str = "image", full_mas: float = FULL_MAS,
                  low_mas: float = LOW_MAS) -> dict[str, np.ndarray]:
    """Scan one fine-grid structure: clinical full dose (``input``, ``full_mas``), low dose (``input_low``,
    ``low_mas``, a quarter by default), micro-CT (``target``), each on its fixed grid (int16 HU)."""
    n_in = tuple(int(round(e / s)) for e, s in zip(structure.extent_mm, INPUT_SPACING, strict=True))
    n_t = (n_in[0], 2 * n_in[1], 2 * n_in[2])
    if backend == "twin":
        from trabecula.phantom import from_binary
        from trabecula.scanner import scan

        binary = structure if structure.units == "binary" else structure.with_data(
            (structure.numpy() > 700).astype(np.uint8), units="binary", step="bone > 700 HU")
        phantom = from_binary(binary)
        full = scan(phantom, "clinical-mdct", mas=full_mas, seed=seed, mode="fast")
        low = scan(phantom, "clinical-mdct", mas=low_mas, seed=seed + 1, mode="fast")
        tgt = scan(phantom, "micro-ct", seed=seed + 2, mode="fast")
    elif backend == "image":
        full = image_scan(structure, "clinical-mdct", mas=full_mas, seed=seed)
        low = image_scan(structure, "clinical-mdct", mas=low_mas, seed=seed + 1)
        tgt = image_scan(structure, "micro-ct", seed=seed + 2)
    else:
        raise ParameterError("backend", f"use twin, image or auto, got {backend!r}")
    out = {"input": _on_grid(full, INPUT_SPACING, n_in), "input_low": _on_grid(low, INPUT_SPACING, n_in),
           "target": _on_grid(tgt, TARGET_SPACING, n_t)}
    return {k: np.clip(np.rint(v), -32768, 32767).astype(np.int16) for k, v in out.items()}


def _split_specimens(plan: list[dict], seed: int, test_frac: float = 0.2, val_frac: float = 0.1) -> dict[str, str]:
    """Assign each specimen to train/val/test, stratified by source and strictly by source specimen (every
    augmented copy of a structure lands in its original's split); edge objects always train."""
    rng = np.random.default_rng(seed + 7)
    out: dict[str, str] = {}
    for source in ("didsr", "synthetic"):
        groups = list(dict.fromkeys(s.get("source_specimen", s["id"]) for s in plan if s["source"] == source))
        rng.shuffle(groups)
        n_test = int(round(test_frac * len(groups)))
        n_val = int(round(val_frac * len(groups))) if len(groups) >= 5 else 0
        which = {g: "test" if k < n_test else ("val" if k < n_test + n_val else "train") for k, g in enumerate(groups)}
        for s in plan:
            if s["source"] == source:
                out[s["id"]] = which[s.get("source_specimen", s["id"])]
    for s in plan:
        out.setdefault(s["id"], "train")
    return out


def _split_slices(n: int, rng: np.random.Generator, test_frac: float = 0.2, val_frac: float = 0.1) -> dict[str, list[int]]:
    idx = rng.permutation(n)
    n_test, n_val = int(round(test_frac * n)), int(round(val_frac * n))
    return {"test": sorted(idx[:n_test].tolist()), "val": sorted(idx[n_test:n_test + n_val].tolist()),
            "train": sorted(idx[n_test + n_val:].tolist())}


def write_pairs(out_dir: str | Path, plan: list[dict], backend: str = "auto", split: str = "by-specimen",
                seed: int = 0, force: bool = False, progress: Callable[[str], None] | None = None,
                full_mas: float = FULL_MAS, low_mas: float = LOW_MAS) -> Path:
    """Scan every planned specimen and write the shards and ``manifest.json`` under ``out_dir``.

    ``full_mas`` / ``low_mas``: the clinical doses of ``input`` and ``input_low`` (the DLR pair). The twin scans
    a bare specimen, whose noise at the preset's 250 mAs is a few HU; a much lower ``low_mas`` gives the
    noise of a scan through a patient.

    Returns the manifest path. ``backend`` ``auto`` uses the scanner twin when it is installed.
    """
    if split not in ("by-specimen", "by-slice"):
        raise ParameterError("split", f"use by-specimen or by-slice, got {split!r}")
    for name, v in (("mas", full_mas), ("low_mas", low_mas)):
        if not (v > 0 and np.isfinite(v)):
            raise ParameterError(name, f"must be a positive dose in mAs, got {v}")
    if backend == "auto":
        backend = "twin" if _twin_available() else "image"
    out_dir = Path(out_dir)
    if (out_dir / MANIFEST).exists() and not force:
        raise InputError(out_dir / MANIFEST, "already exists (use --force to overwrite)")
    out_dir.mkdir(parents=True, exist_ok=True)
    assign = _split_specimens(plan, seed)
    rng = np.random.default_rng(seed + 11)
    records = []
    for spec in plan:
        if progress:
            progress(spec["id"])
        structure = load_structure(spec)
        arrs = scan_specimen(structure, spec["seed"], backend, full_mas, low_mas)
        shard = f"{spec['id']}.npz"
        with atomic_output(out_dir / shard, force=True) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrs)
        rec = {k: v for k, v in spec.items() if k != "path"}
        if "path" in spec:
            rec["file"] = Path(spec["path"]).name
        bv = float(structure.numpy().mean()) if structure.units == "binary" else None
        rec.update({
            "shard": shard, "backend": backend, "bv_tv_truth": bv,
            "scans": {"input": {"scanner": "clinical-mdct", "mas": full_mas, "seed": spec["seed"]},
                      "input_low": {"scanner": "clinical-mdct", "mas": low_mas, "seed": spec["seed"] + 1},
                      "target": {"scanner": "micro-ct", "seed": spec["seed"] + 2}},
            "shape_input": list(arrs["input"].shape), "shape_target": list(arrs["target"].shape),
        })
        if split == "by-specimen":
            rec["split"] = assign[spec["id"]]
        else:
            rec["split"] = "mixed"
            rec["slices"] = _split_slices(arrs["input"].shape[0], rng)
        records.append(rec)
    manifest = {
        "format": "trabecula-pairs/1",
        "created_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "backend": backend,
        "backend_note": ("scanner twin, fast mode" if backend == "twin" else
                         "image-domain scanner model (trabecula.scanner.image_domain): Gaussian PSF, area resampling, "
                         "correlated Gaussian noise; not a projection/reconstruction simulation"),
        "input_spacing": list(INPUT_SPACING), "target_spacing": list(TARGET_SPACING), "scale": 2,
        "doses_mas": {"input": full_mas, "input_low": low_mas},
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


def default_didsr_dir() -> Path | None:
    """The DIDSR L1 vertebra structures' default folder, ``$TRABECULA_DATA/didsr_l1_vertebra`` (the data folder
    defaults to ``shared/data`` beside the repository), or None when that folder does not exist."""
    base = Path(os.environ.get("TRABECULA_DATA", Path(__file__).resolve().parents[3].parent / "shared" / "data"))
    folder = base / "didsr_l1_vertebra"
    return folder if folder.is_dir() else None


def make_pairs(out_dir: str | Path, *, synthetic: int = 30, edges: int = 2, didsr: str | Path | None = None,
               backend: str = "twin", split: str = "by-specimen", input_dir: str | Path | None = None,
               target_dir: str | Path | None = None, low_dir: str | Path | None = None, size: int = 240,
               seed: int = 0, mas: float = FULL_MAS, low_mas: float = LOW_MAS, force: bool = False,
               augment: int = 0) -> Path:
    """Make a pairs folder (``trabecula pairs``); returns the manifest path.

    With ``input_dir`` and ``target_dir`` (both or neither, else :class:`ParameterError`): the user's own
    registered pairs (:func:`pairs_from_folders`, ``low_dir`` optional). Otherwise ``synthetic`` level-set
    specimens, ``edges`` edge objects and the DIDSR structures in ``didsr`` (None: :func:`default_didsr_dir`;
    ``"none"``: no DIDSR specimens; ``augment`` augmented copies of each), ``size`` voxels across, planned by
    :func:`specimen_plan` and scanned by
    :func:`write_pairs` at ``mas`` / ``low_mas`` with a progress bar.
    """
    if (input_dir is None) != (target_dir is None):
        raise ParameterError("--input/--target", "give both folders for your own pairs")
    if input_dir is not None:
        return pairs_from_folders(input_dir, target_dir, out_dir, low_dir, split=split, seed=seed, force=force)
    if didsr is None:
        didsr_dir = default_didsr_dir()
    else:
        didsr_dir = None if str(didsr).lower() == "none" else didsr
    plan = specimen_plan(synthetic, edges, didsr_dir, seed, size, augment=augment)
    with progress_steps("scanning specimens", len(plan)) as advance:
        return write_pairs(out_dir, plan, backend=backend, split=split, seed=seed, force=force,
                           progress=lambda sid: advance(1, f"scanning {sid}"), full_mas=mas, low_mas=low_mas)


def pair_counts(manifest_path: str | Path) -> dict[str, Any]:
    """A pairs manifest summarised: ``{"specimens": n, "backend": …, "split_mode": …, "splits": {split: n}}``,
    counting specimens per split (``train``, ``val``, ``test``, ``mixed`` for by-slice folders)."""
    m = json.loads(Path(manifest_path).read_text())
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
        try:
            manifest = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise InputError(path, f"not valid JSON ({exc})") from exc
        if manifest.get("format") != "trabecula-pairs/1":
            raise InputError(path, f"unknown format {manifest.get('format')!r}")
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

    def load(self, spec_id: str, keys: Sequence[str] = ("input", "input_low", "target")) -> dict[str, np.ndarray]:
        rec = self.record(spec_id)
        path = self.root / rec["shard"]
        try:
            with np.load(path) as z:
                return {k: z[k].astype(np.float32) for k in keys if k in z.files}
        except (OSError, ValueError) as exc:
            raise InputError(path, f"cannot read shard ({exc})") from exc

    def volume(self, spec_id: str, key: str) -> Volume:
        arr = self.load(spec_id, (key,))[key]
        in_sp = self.manifest["input_spacing"]
        sp = self.manifest["target_spacing"] if key == "target" else in_sp
        # the target grid is edge-aligned with the input grid (whose first voxel centre is the origin)
        origin = tuple(-c / 2 + f / 2 for c, f in zip(in_sp, sp, strict=True))
        return Volume(arr, tuple(sp), origin, "HU")


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
