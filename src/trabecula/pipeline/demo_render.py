"""Demo stage — render: 3-D views with virtual sectioning of the wrist and the vertebra, and an MPR panel
of clinical | enhanced | micro-CT with the same zoomed inset on the trabeculae.

Takes the scans from ``ctx.data["scans"]`` (the twin stage) and the enhanced clinical scans from
``ctx.data["enhanced"]``; where they are missing it renders a bone specimen of its own (a DIDSR L1
micro-CT region inside a cortical shell, or a random-field bone when the shared data are absent), so
the stage runs on its own. PNGs go to ``ctx.out_dir / "figures"`` and are registered in
``ctx.data["figures"]``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from trabecula.phantom.specimen import bone_specimen, didsr_region
from trabecula.render import BACKGROUND, ClipPlane, Renderer, mpr_figure, save_png
from trabecula.volume import Volume

TITLE = "Render: 3-D views with virtual sectioning, MPR panels"

#: Largest side (voxels) rendered in the demo; bigger scans are resampled to fit the time budget.
MAX_SIDE = 256
RENDER_SIZE = (800, 800)

_PREFERRED = {
    "wrist": ("uhr-extremity", "micro-ct", "clinical-mdct"),
    "vertebra": ("micro-ct", "uhr-extremity", "clinical-mdct"),
}


def _pick(scans: dict, phantom: str) -> tuple[str, Volume] | None:
    for preset in _PREFERRED[phantom]:
        v = scans.get((phantom, preset))
        if isinstance(v, Volume):
            return preset, v
    for (name, preset), v in scans.items():
        if name == phantom and isinstance(v, Volume):
            return preset, v
    return None


def _fit(vol: Volume, max_side: int = MAX_SIDE) -> Volume:
    """Resample so the largest side is at most ``max_side`` voxels (keeping the field of view)."""
    n = max(vol.shape)
    if n <= max_side:
        return vol
    factor = n / max_side
    return vol.resample(tuple(s * factor for s in vol.spacing))


def _fallback_specimen(seed: int, shape=(192, 160, 160), spacing: float = 0.06) -> Volume:
    repo = Path(__file__).resolve().parents[3]
    candidates = [os.environ.get("TRABECULA_DATA"), repo.parent / "shared" / "data"]
    trab = None
    region = next((Path(c) / "didsr_l1_vertebra" / "Segmentation-grayscale-1_06219.nrrd" for c in candidates
                   if c and (Path(c) / "didsr_l1_vertebra" / "Segmentation-grayscale-1_06219.nrrd").exists()), None)
    if region is not None:
        trab = didsr_region(region, 0.05, target_spacing=spacing)
    return bone_specimen(shape, spacing, trabecular=trab, seed=seed)


def noise_sd(vol: Volume) -> float:
    """Robust noise SD (volume units) from neighbour differences along x: 1.4826 MAD / sqrt(2) (edges are few)."""
    a = vol.data
    k = max(1, vol.shape[0] // 16)
    d = np.diff(np.asarray(a[::k], np.float32), axis=2).ravel()
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / np.sqrt(2.0))


#: Above this noise SD (HU) the demo renders with a 0.8-voxel Gaussian (no speckle of noise voxels).
NOISY_HU = 60.0


def _render(vol: Volume, path: Path, clip: bool) -> dict[str, Any]:
    t0 = time.perf_counter()
    clips = ClipPlane.through(vol.center_mm, (0.0, 0.0, 1.0)) if clip else None  # remove the patient-left half
    sd = noise_sd(vol)
    smooth = 0.8 if vol.units == "HU" and sd > NOISY_HU else 0.0
    r = Renderer(vol, clip=clips, smooth=smooth)
    t_setup = time.perf_counter() - t0
    img = r.render("oblique", RENDER_SIZE)
    t_frame = time.perf_counter() - t0 - t_setup
    save_png(img, path, force=True)
    drawn = np.abs(img.astype(int) - np.array(BACKGROUND)).sum(-1) > 30
    grey = (np.ptp(img.astype(int), axis=-1) <= 1) & (img.mean(-1) > 60)
    return {"file": path, "shape_rendered": list(vol.shape), "spacing_mm": [round(s, 4) for s in vol.spacing],
            "noise_sd": round(sd, 1), "smooth_voxels": smooth,
            "setup_s": round(t_setup, 2), "frame_s": round(t_frame, 2),
            "drawn_fraction": round(float(drawn.mean()), 4), "cut_face_fraction": round(float(grey.mean()), 4),
            "ok": bool(drawn.mean() > 0.02 and (not clip or grey.mean() > 0.005))}


def _mpr_panel(ctx, scans: dict, enhanced: dict, fallback: Volume | None, path: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    vols, titles = [], []
    clinical = scans.get(("vertebra", "clinical-mdct"))
    micro = scans.get(("vertebra", "micro-ct"))
    if isinstance(clinical, Volume) and isinstance(micro, Volume):
        vols.append(clinical)
        titles.append("clinical CT")
        for name, v in list(enhanced.items())[:2]:
            if isinstance(v, Volume):
                vols.append(v)
                titles.append(f"enhanced: {name}")
        vols.append(micro)
        titles.append("micro-CT")
        source = "scans"
    else:  # no twin scans: the specimen and a clinical-like (0.5 mm) resampling of it
        base = fallback if fallback is not None else _fallback_specimen(ctx.seed)
        vols = [base.resample(0.5), base]
        titles = ["specimen at 0.5 mm (clinical-like)", "specimen (micro-CT-like)"]
        source = "fallback specimen"
    ref = vols[-1]
    lo = ref.index_to_world([0, 0, 0])
    hi = ref.index_to_world(np.asarray(ref.shape) - 1)
    center = (lo + hi) / 2
    size = min(2.0, float(min((hi - lo)[1:])) / 4)  # in-plane: a slab phantom is thin along z
    fig = mpr_figure(vols, window="bone", titles=titles, inset=(center, size), dpi=110)
    save_png(fig, path, force=True)
    return {"file": path, "volumes": titles, "source": source, "inset_mm": round(size, 3),
            "seconds": round(time.perf_counter() - t0, 2), "ok": path.exists() and path.stat().st_size > 10_000}


def run(ctx) -> dict[str, Any]:
    fig_dir = ctx.out_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    scans = ctx.data.get("scans") or {}
    enhanced = ctx.data.get("enhanced") or {}
    figures = ctx.data.setdefault("figures", {})
    advance = ctx.subtask("render", 3)
    renders: dict[str, Any] = {}
    fallback = None
    for phantom in ("wrist", "vertebra"):
        picked = _pick(scans, phantom)
        if picked is None:
            if fallback is None:
                fallback = _fallback_specimen(ctx.seed)
            preset, vol = "fallback specimen", fallback
            if phantom == "vertebra":  # one fallback render is enough
                advance(1, "render: (no vertebra scan)")
                continue
        else:
            preset, vol = picked
        vol = _fit(vol)
        path = fig_dir / f"render_{phantom}.png"
        res = _render(vol, path, clip=True)
        res["source"] = preset
        renders[phantom] = res
        figures[f"render_{phantom}"] = path
        advance(1, f"render: {phantom}")
    mpr = _mpr_panel(ctx, scans, enhanced, fallback, fig_dir / "mpr_vertebra.png")
    figures["mpr_vertebra"] = mpr["file"]
    advance(1, "render: MPR panel")
    ok = bool(renders) and all(r["ok"] for r in renders.values()) and mpr["ok"]
    rel = lambda p: str(Path(p).relative_to(ctx.out_dir))  # noqa: E731
    return {
        "ok": ok,
        "renders": {k: {**v, "file": rel(v["file"])} for k, v in renders.items()},
        "mpr": {**mpr, "file": rel(mpr["file"])},
    }


def show(ctx, res: dict[str, Any]) -> None:
    t = Table("figure", "source", "voxels", "smooth", "set-up s", "frame s", "drawn", "cut face", "check")
    for r in res["renders"].values():
        t.add_row(Path(r["file"]).name, r["source"], "×".join(str(n) for n in r["shape_rendered"]),
                  f"{r['smooth_voxels']:g}", f"{r['setup_s']:.2f}",
                  f"{r['frame_s']:.2f}", f"{r['drawn_fraction']:.1%}", f"{r['cut_face_fraction']:.1%}",
                  "[green]ok[/green]" if r["ok"] else "[red]FAILED[/red]")
    m = res["mpr"]
    t.add_row(Path(m["file"]).name, m["source"], " | ".join(m["volumes"]), "", "", f"{m['seconds']:.2f}", "", "",
              "[green]ok[/green]" if m["ok"] else "[red]FAILED[/red]")
    ctx.console.print(t)
