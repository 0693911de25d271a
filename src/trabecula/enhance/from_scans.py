"""Paired training data from real scans of the same specimens: 3-D registration per specimen, then pairs.

A researcher who scanned each specimen on a clinical CT and on a micro-CT has two folders of scans with the
same names. :func:`pairs_from_scans` registers each micro-CT to its clinical scan (:func:`.register.register`:
Mattes mutual information, rigid then affine, refused below the metric threshold — never a silently wrong
pair), resamples it onto the clinical scan's field of view at its own spacing, crops both to the box the
micro-CT covers (:func:`crop_to_coverage`: outside it the moved scan holds only its medium, and a model trained
there learns to erase bone), and makes the paired dataset from the registered volumes as
:func:`.data.pairs_from_folders` does (split by specimen). A QC page
(``qc/index.html``) shows one checkerboard/overlay per specimen with its final metric, overlap and the rigid
part of its transform; the registered volumes stay in ``registered/input`` and ``registered/target``.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from trabecula.enhance.data import MANIFEST, pairs_from_folders
from trabecula.enhance.register import checkerboard_png, register, rigid_parameters
from trabecula.errors import InputError
from trabecula.io import atomic_output, read_volume, write_volume
from trabecula.volume import Volume


def _scans(folder: Path) -> list[str]:
    if not folder.is_dir():
        raise InputError(folder, "not a folder")
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def _stem(name: str) -> str:
    return name.split(".")[0] or name


def pairs_from_scans(clinical_dir: str | Path, micro_dir: str | Path, out_dir: str | Path, *,
                     stages: Sequence[str] = ("rigid", "affine"), split: str = "by-specimen", seed: int = 0,
                     force: bool = False, progress: Callable[[str], None] | None = None) -> Path:
    """Register each micro-CT in ``micro_dir`` to the clinical scan of the same name in ``clinical_dir`` and
    write the paired dataset to ``out_dir`` (module docstring). Returns the manifest's path.

    A specimen whose registration fails the metric or overlap check stops the run with that specimen named
    (one :class:`InputError` line): fix or remove it rather than train on a wrong pair.
    """
    clinical_dir, micro_dir, out_dir = Path(clinical_dir), Path(micro_dir), Path(out_dir)
    names = [n for n in _scans(clinical_dir) if (micro_dir / n).exists()]
    if not names:
        raise InputError(micro_dir, f"no scan with the same name as one in {clinical_dir}")
    if (out_dir / MANIFEST).exists() and not force:
        raise InputError(out_dir / MANIFEST, "already exists (use --force to overwrite)")
    step = progress or (lambda desc: None)
    work_in, work_t, qc = out_dir / "registered" / "input", out_dir / "registered" / "target", out_dir / "qc"
    for d in (work_in, work_t, qc):
        d.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for k, name in enumerate(names):
        step(f"registering {name} ({k + 1}/{len(names)})")
        fixed = read_volume(clinical_dir / name)
        moving = read_volume(micro_dir / name)
        try:
            res = register(fixed, moving, stages=stages, seed=seed + k)
        except InputError as exc:
            raise InputError(micro_dir / name, f"registration to {clinical_dir / name} refused: {exc.message}") from exc
        stem = _stem(name)
        fixed_c, moved_c, cover = crop_to_coverage(fixed, moving, res)
        write_volume(fixed_c, work_in / f"{stem}.nii.gz", force=True)
        write_volume(moved_c, work_t / f"{stem}.nii.gz", force=True)
        checkerboard_png(fixed_c, moved_c, qc / f"{stem}.png", force=True)
        rig = rigid_parameters(res.transform)
        rows.append({"specimen": stem, "final_metric": res.metric, "overlap": res.overlap, "seconds": res.seconds,
                     "kept_fraction_of_clinical_box": cover,
                     "threshold": res.metric_threshold, **{k2: rig[k2] for k2 in rig}})
    step("pairs from the registered scans")
    manifest = pairs_from_folders(work_in, work_t, out_dir, split=split, seed=seed, force=True)
    _write_qc(qc, rows)
    m = json.loads(manifest.read_text())
    m["backend_note"] = f"registered pairs from {clinical_dir.name} and {micro_dir.name} (trabecula pairs --from-scans)"
    m["registration"] = rows
    with atomic_output(manifest, force=True) as tmp:
        Path(tmp).write_text(json.dumps(m, indent=1, default=float))
    return manifest


def _covered_box(cov, min_fraction: float) -> tuple[list[int], list[int]]:
    """The largest box (greedy) whose voxels are at least ``min_fraction`` covered: starting from the whole
    grid, the face slab with the least coverage is peeled off until the box is covered enough."""

    lo, hi = [0, 0, 0], list(cov.shape)
    while all(h - lo_ >= 2 for lo_, h in zip(lo, hi, strict=True)):
        box = cov[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        if box.mean() >= min_fraction:
            break
        faces = []
        for ax in range(3):
            other = tuple(a for a in range(3) if a != ax)
            prof = box.mean(axis=other)
            faces += [(float(prof[0]), ax, 0), (float(prof[-1]), ax, 1)]
        _, ax, side = min(faces)
        if side == 0:
            lo[ax] += 1
        else:
            hi[ax] -= 1
    return lo, hi


def crop_to_coverage(fixed: Volume, moving: Volume, res, min_fraction: float = 0.995) -> tuple[Volume, Volume, float]:
    """The clinical scan and the registered micro-CT cropped to the box the micro-CT covers.

    The moved micro-CT lies on the clinical scan's field of view, but a micro-CT that did not cover all of it
    (another crop, a rotation) leaves parts filled with its medium: a model trained there learns to erase
    bone. Coverage is the moving scan's own box carried through the transform (a volume of ones, resampled
    like the scan, 0 outside); the largest box at least ``min_fraction`` covered (:func:`_covered_box`) is
    kept, and both volumes are cropped to that world box. Returns ``(fixed, moved, kept fraction of
    the clinical box)``; a box with nothing covered is an :class:`InputError`."""
    import numpy as np

    from trabecula.enhance.register import resample_moving

    moved = res.moved
    ones = moving.with_data(np.ones(moving.shape, np.float32))
    cov = resample_moving(ones, res.transform, moved.shape, moved.spacing, moved.origin, fill=0.0).numpy() > 0.999
    lo, hi = _covered_box(cov, min_fraction)
    if any(h - lo_ < 2 for lo_, h in zip(lo, hi, strict=True)):
        raise InputError(moving.provenance.source, "the registered micro-CT covers no box of the clinical scan "
                                                   "two voxels deep")
    moved_c = moved.crop(*zip(lo, hi, strict=True))
    sp = np.asarray(moved.spacing, float)
    w_lo = np.asarray(moved.index_to_world(lo), float) - sp / 2
    w_hi = np.asarray(moved.index_to_world([h - 1 for h in hi]), float) + sp / 2
    fsp = np.asarray(fixed.spacing, float)
    fixed_c = fixed.crop_mm(w_lo + fsp / 2 - 1e-6, w_hi - fsp / 2 + 1e-6)
    kept = float(np.prod(fixed_c.shape)) / float(np.prod(fixed.shape))
    return fixed_c, moved_c, kept


def _write_qc(qc: Path, rows: list[dict[str, Any]]) -> Path:
    """``qc/index.html``: one row per specimen — its overlay, final metric, overlap and rigid parameters."""
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        if isinstance(v, list | tuple):
            return ", ".join(f"{x:.3g}" if isinstance(x, float) else html.escape(str(x)) for x in v)
        return html.escape(str(v))

    keys = [k for k in rows[0] if k != "specimen"]
    body = "".join(
        f"<tr><td>{html.escape(r['specimen'])}<br><img src='{html.escape(r['specimen'])}.png' width='540'></td>"
        + "".join(f"<td>{cell(r[k])}</td>" for k in keys) + "</tr>" for r in rows)
    text = ("<!doctype html><meta charset='utf-8'><title>trabecula pairs --from-scans: registration QC</title>"
            "<style>body{font-family:sans-serif}td,th{border:1px solid #ccc;padding:4px;vertical-align:top}</style>"
            "<h1>Registration QC</h1><p>Each micro-CT registered to its clinical scan (Mattes mutual information, "
            "lower is better; refused above the threshold). Check each overlay by eye: fixed | checkerboard | "
            "overlay (fixed magenta, moved green).</p><table><tr><th>specimen</th>"
            + "".join(f"<th>{html.escape(k)}</th>" for k in keys) + "</tr>" + body + "</table>")
    path = qc / "index.html"
    with atomic_output(path, force=True) as tmp:
        Path(tmp).write_text(text)
    return path


__all__ = ["pairs_from_scans"]
