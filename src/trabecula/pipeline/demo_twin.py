"""Demo stage — the scanner twin: a full-size vertebral body and a wrist scanned by the five presets.

* phantoms: the vertebra is the central 3 mm axial slab of a 25 × 30 × 40 mm lumbar vertebral body
  (:func:`trabecula.phantom.vertebral_body` with ``slab_mm``: cortex 0.4 mm, red marrow, soft tissue; the
  endplates lie outside the slab) whose trabecular core is real anatomy — patches of the DIDSR L1 micro-CT
  region :data:`DIDSR_REGION` quilted to fill it — or, where the shared data are missing, the built-in foam
  (the stage's result says which). The wrist is a 3 mm axial slab at the distal radius
  (:func:`trabecula.phantom.wrist`: radius and ulna, foam cores in yellow marrow);
* scans (fast path, seconds each): the vertebra with ``micro-ct``, ``clinical-mdct`` and ``study-mdct`` (the
  vertebra study's protocol, the specimen in PBS), the wrist with ``uhr-extremity`` (inside its default wrist
  body), ``clinical-uhr`` and ``clinical-mdct`` (inside the same wrist body, soft tissue filling the box);
* resolution: the MTF of every preset from a slanted bone edge through the *full* cone-beam simulation
  (projection, noise-free detector, FDK), written as ``twin/mtf.png``; mid slices as ``twin/slices.png``.

Hands to later stages (``ctx.data``): ``phantoms`` {vertebra, wrist} label volumes, ``truth`` {vertebra},
``scans`` {(phantom, preset): Volume in HU}, ``figures`` {"mtf", "twin_slices"}. Checks: the MTF10 targets
of the scanner presets (uhr-extremity ≥ 5 lp/mm, clinical-uhr 2–4, clinical-mdct 0.7–1.0, in that order), every scan
in HU on its preset's voxel grid, and micro-CT bone fraction in the trabecular VOI within 25 % of the truth.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from trabecula.enhance.data import default_didsr_dir, scan_specimen
from trabecula.io import read_volume
from trabecula.morphometry.threshold import threshold_isodata_skimage
from trabecula.morphometry.voi import cylinder_voi
from trabecula.phantom import vertebral_body, wrist
from trabecula.pipeline.twin_study import mtf_part, plot_mtf, save_figure
from trabecula.scanner import load_scanner, scan
from trabecula.scanner.protocols import random_protocol
from trabecula.volume import Volume

TITLE = "Scanner twin: a vertebra and a wrist scanned by uhr-extremity, clinical-uhr, clinical-mdct, study-mdct, micro-ct"

SCANS = (("vertebra", "micro-ct"), ("vertebra", "clinical-mdct"), ("vertebra", "study-mdct"),
         ("wrist", "uhr-extremity"), ("wrist", "clinical-uhr"), ("wrist", "clinical-mdct"))
#: The patient around each scan of a phantom ({}: the preset's defaults); the wrist sits in the wrist body for every preset.
PATIENT = {"vertebra": {}, "wrist": {"body": "wrist", "medium": "soft_tissue"}}
#: A lumbar vertebral body (height × antero-posterior depth × width, mm) and the central slab the demo builds.
VERTEBRA_MM = (25.0, 30.0, 40.0)
VERTEBRA_SLAB_MM = 3.0
WRIST_SLAB_MM = 3.0
#: The DIDSR L1 region whose structure fills the vertebra's core (BV/TV 0.240; its axis 0 is the spine axis:
#: the longest mean bone run of the ten regions lies along it).
DIDSR_REGION = "Segmentation-grayscale-1_06219.nrrd"
MTF_PRESETS = ("uhr-extremity", "clinical-uhr", "study-mdct", "clinical-mdct", "micro-ct")
#: in-plane size (mm) of the vertebra-core cube the demo turns into one training pair
PAIR_MM = 4.0


def training_pair(truth: Volume, seed: int) -> dict[str, Any]:
    """One paired specimen as ``trabecula pairs`` makes it: a ``PAIR_MM`` cube (in-plane; the slab's height)
    of the vertebra's trabecular truth at its centre, under a protocol drawn from
    :class:`~trabecula.scanner.protocols.ProtocolRanges` with ``seed``
    (:func:`trabecula.enhance.data.scan_specimen`): the protocol, the arrays' shapes, the input's noise SD
    (noisy − noise-free scan) and whether the targets sit on the 2×-finer grid of the input."""
    t0 = time.perf_counter()
    n = int(round(PAIR_MM / truth.spacing[1])) // 4 * 4
    nz = truth.shape[0] // 4 * 4
    z0, y0, x0 = (truth.shape[0] - nz) // 2, (truth.shape[1] - n) // 2, (truth.shape[2] - n) // 2
    cube = truth.numpy()[z0:z0 + nz, y0:y0 + n, x0:x0 + n].astype(np.uint8)
    structure = Volume(cube, truth.spacing, (0.0, 0.0, 0.0), "binary", truth.provenance.with_step("demo pair cube"))
    protocol = random_protocol(np.random.default_rng(seed))
    arrs = scan_specimen(structure, seed, protocol)
    zi, yi, xi = arrs["input"].shape
    aligned = all(arrs[k].shape == (zi, 2 * yi, 2 * xi) for k in ("target", "target_sr"))
    noise = float(np.std(arrs["input"].astype(np.float32) - arrs["input_clean"].astype(np.float32)))
    return {"protocol": protocol.to_dict(), "shapes": {k: list(v.shape) for k, v in arrs.items()},
            "bv_tv": float(cube.mean()), "input_noise_sd_hu": noise, "aligned": bool(aligned),
            "seconds": round(time.perf_counter() - t0, 2)}


def real_structure(spacing_mm: float = 0.05):
    """The DIDSR region :data:`DIDSR_REGION` as a binary Volume on ``spacing_mm`` voxels (the origin's stated
    0.05 mm), and a one-line note; ``(None, why)`` when the shared data are not there."""
    folder = default_didsr_dir()
    path = folder / DIDSR_REGION if folder is not None else None
    if path is None or not path.is_file():
        return None, (f"built-in foam: the DIDSR L1 region {DIDSR_REGION} was not found "
                      "(set TRABECULA_DATA to the folder holding didsr_l1_vertebra/)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the header's 1.0 mm spacing is overridden on purpose
        vol = read_volume(path, spacing=spacing_mm, units="binary")
    return vol, f"real anatomy: DIDSR L1 region {DIDSR_REGION} (micro-CT, {spacing_mm:g} mm), patches quilted"


def demo_phantoms(seed: int = 0):
    """The demo's phantoms: the vertebra (the central :data:`VERTEBRA_SLAB_MM` slab of a :data:`VERTEBRA_MM`
    body, its core from :func:`real_structure` or the foam) and the wrist; returns
    ``(vertebra, wrist, note)``, the note saying where the vertebra's trabecular structure came from."""
    real, note = real_structure()
    vert = vertebral_body(VERTEBRA_MM, 0.05, 0.4, trabecular=real, seed=seed, slab_mm=VERTEBRA_SLAB_MM)
    return vert, wrist(WRIST_SLAB_MM, 0.05, seed=seed), note


def _slices_png(scans: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(scans), figsize=(3.2 * len(scans), 3.0), dpi=110)
    for ax, ((ph, preset), vol) in zip(np.atleast_1d(axes), scans.items(), strict=True):
        a = vol.numpy()
        ax.imshow(a[a.shape[0] // 2], cmap="gray", vmin=-200, vmax=2200, interpolation="nearest")  # axial mid slice
        ax.set_title(f"{ph}\n{preset} ({vol.spacing[1]:.3g} mm)", fontsize=8)
        ax.axis("off")

    return save_figure(fig, path)


def _num(x: float) -> float | None:
    """JSON-safe: NaN (an MTF that stays above the level up to Nyquist) becomes None."""
    return None if x is None or x != x else float(x)


def run(ctx) -> dict[str, Any]:
    out = ctx.out_dir / "twin"
    out.mkdir(parents=True, exist_ok=True)
    advance = ctx.subtask("scanner twin", 2 + len(SCANS) + len(MTF_PRESETS))
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    vert, wri, structure = demo_phantoms(ctx.seed)
    advance(2, "phantoms: vertebral body, wrist")
    timings["phantoms"] = round(time.perf_counter() - t0, 2)
    phantoms = {"vertebra": vert, "wrist": wri}

    scans: dict[tuple[str, str], Any] = {}
    rows = []
    for k, (ph, preset) in enumerate(SCANS):
        t1 = time.perf_counter()
        vol = scan(phantoms[ph], preset, seed=ctx.seed + k, mode="fast", progress=False, **PATIENT[ph])
        scans[(ph, preset)] = vol
        s = load_scanner(preset)
        a = vol.numpy()
        rows.append({"phantom": ph, "preset": preset, "shape": list(vol.shape), "voxel_mm": list(vol.spacing),
                     "units": vol.units, "grid_ok": bool(vol.units == "HU" and abs(vol.spacing[1] - s.reconstruction.voxel_mm) < 1e-9
                                                       and abs(vol.spacing[0] - s.reconstruction.slice_mm) < 1e-9),
                     "hu_p5_p99": [float(np.percentile(a, 5)), float(np.percentile(a, 99))],
                     "ctdivol_mgy": vol.provenance.extra["dose"]["ctdivol_mgy"],
                     "effective_msv": vol.provenance.extra["dose"]["effective_msv"],
                     "body": vol.provenance.extra.get("body", "NONE"), "medium": vol.provenance.extra.get("medium", "air"),
                     "seconds": round(time.perf_counter() - t1, 2)})
        advance(1, f"scan {ph} with {preset}")

    # micro-CT bone fraction in the vertebra's trabecular VOI vs the truth
    mv = scans[("vertebra", "micro-ct")]
    ctr = tuple(float(v) for v in vert.labels.center_mm)
    voi_truth = vert.voi.numpy().astype(bool) if vert.voi is not None else np.ones(vert.shape, bool)
    truth_bvtv = float(vert.truth.numpy().astype(bool)[voi_truth].mean())
    # a cylinder inside the trabecular core (half its smallest in-plane size), on the scan's grid
    core = np.argwhere(voi_truth)
    ext = (core.max(0) - core.min(0) + 1) * np.asarray(vert.spacing)
    d_voi, h_voi = 0.5 * float(min(ext[1], ext[2])), 0.5 * float(ext[0])
    m = cylinder_voi(mv, diameter_mm=d_voi, height_mm=h_voi, center_mm=ctr)
    a = mv.numpy()
    thr = threshold_isodata_skimage(a[m])
    scan_bvtv = float((a[m] > thr).mean())
    mt = cylinder_voi(vert.truth, diameter_mm=d_voi, height_mm=h_voi, center_mm=ctr)
    truth_bvtv_voi = float(vert.truth.numpy().astype(bool)[mt].mean())

    t2 = time.perf_counter()
    mtf = mtf_part(MTF_PRESETS, progress=lambda name: advance(1, f"edge MTF {name}"))
    timings["mtf"] = round(time.perf_counter() - t2, 2)
    pair = training_pair(vert.truth, ctx.seed)
    mtf_png = plot_mtf({k: mtf[k] for k in MTF_PRESETS if k != "micro-ct"}, out / "mtf.png")
    slices_png = _slices_png(scans, out / "slices.png")

    m10 = {k: float(v["mtf10_lp_mm"]) for k, v in mtf.items()}
    checks = {
        "uhr-extremity MTF10 >= 5 lp/mm": m10["uhr-extremity"] >= 5.0,
        "clinical-uhr MTF10 in 2-4 lp/mm": 2.0 <= m10["clinical-uhr"] <= 4.0,
        "clinical-mdct MTF10 in 0.7-1.0 lp/mm": 0.7 <= m10["clinical-mdct"] <= 1.0,
        "MTF10 order uhr-extremity > clinical-uhr > clinical-mdct": m10["uhr-extremity"] > m10["clinical-uhr"] > m10["clinical-mdct"],
        "every scan in HU on its preset's grid": all(r["grid_ok"] for r in rows),
        "micro-ct BV/TV within 25 % of truth (VOI)": abs(scan_bvtv / truth_bvtv_voi - 1) <= 0.25,
        "training pair: targets on the input's 2x-finer grid": pair["aligned"],
    }
    ctx.data.setdefault("phantoms", {}).update({"vertebra": vert.labels, "wrist": wri.labels})
    ctx.data.setdefault("truth", {})["vertebra"] = vert.truth
    ctx.data.setdefault("scans", {}).update(scans)
    ctx.data.setdefault("figures", {}).update({"mtf": mtf_png, "twin_slices": slices_png})
    # for the report: the measured edge MTF curves (below each preset's voxel Nyquist) and their MTF50/MTF10
    curves = ctx.data.setdefault("mtf_curves", {})
    iq = ctx.data.setdefault("image_quality", {})
    for name, v in mtf.items():
        f, m = np.asarray(v["frequency_lp_mm"]), np.asarray(v["mtf"])
        keep = f <= v.get("nyquist_lp_mm", np.inf) + 1e-9
        curves[name] = {"frequency_lp_per_mm": f[keep].tolist(), "mtf": m[keep].tolist(),
                        "mtf50": _num(v.get("mtf50_lp_mm")), "mtf10": _num(v.get("mtf10_lp_mm"))}
        iq[f"{name} (edge)"] = {"MTF50": _num(v.get("mtf50_lp_mm")), "MTF10": _num(v.get("mtf10_lp_mm"))}
    return {
        "ok": bool(all(checks.values())), "checks": {k: bool(v) for k, v in checks.items()},
        "phantoms": {"vertebra": vert.description, "wrist": wri.description, "vertebra_structure": structure},
        "scans": rows,
        "training_pair": pair,
        "mtf": {k: {"mtf50_lp_mm": _num(v["mtf50_lp_mm"]), "mtf10_lp_mm": _num(v["mtf10_lp_mm"]),
                    "nyquist_lp_mm": v["nyquist_lp_mm"], "seconds": v["seconds"]} for k, v in mtf.items()},
        "micro_ct_bvtv": {"scan": scan_bvtv, "truth": truth_bvtv_voi, "truth_whole_core": truth_bvtv, "threshold_hu": thr,
                          "voi_diameter_mm": d_voi, "voi_height_mm": h_voi},
        "seconds": timings,
        "figures": {"mtf": str(mtf_png.relative_to(ctx.out_dir)), "slices": str(slices_png.relative_to(ctx.out_dir))},
    }


def show(ctx, res: dict[str, Any]) -> None:
    t = Table("phantom", "scanner", "body, medium", "grid (z×y×x)", "voxel (mm)", "HU p5…p99", "CTDIvol mGy",
              "E mSv", "s")
    for r in res["scans"]:
        e = r.get("effective_msv")
        t.add_row(r["phantom"], r["preset"], f"{r.get('body', 'NONE')}, {r.get('medium', 'air')}",
                  "×".join(str(n) for n in r["shape"]), f"{r['voxel_mm'][1]:.3g} × {r['voxel_mm'][0]:.3g}",
                  f"{r['hu_p5_p99'][0]:.0f} … {r['hu_p5_p99'][1]:.0f}", f"{r['ctdivol_mgy']:.3g}",
                  "—" if e is None else f"{e:.3g}", f"{r['seconds']:.1f}")
    ctx.console.print(t)
    m = Table("preset", "MTF50 (lp/mm)", "MTF10 (lp/mm)", title="edge MTF through the full simulation")
    for k, v in res["mtf"].items():
        m50, m10 = v["mtf50_lp_mm"], v["mtf10_lp_mm"]
        m.add_row(k, f"{m50:.2f}" if m50 is not None else f"> {v['nyquist_lp_mm']:.1f}",
                  f"{m10:.2f}" if m10 is not None else f"> {v['nyquist_lp_mm']:.1f} (Nyquist)")
    ctx.console.print(m)
    for name in ("vertebra", "wrist"):
        if name in res.get("phantoms", {}):
            ctx.console.print(f"{name}: {res['phantoms'][name]}")
    if res.get("phantoms", {}).get("vertebra_structure"):
        ctx.console.print(f"vertebra's trabecular structure: {res['phantoms']['vertebra_structure']}")
    b = res["micro_ct_bvtv"]
    ctx.console.print(f"micro-ct BV/TV in the vertebra's VOI: {b['scan']:.3f} (truth {b['truth']:.3f}); "
                      f"figures: {res['figures']['mtf']}, {res['figures']['slices']}")
    if res.get("training_pair"):
        p, q = res["training_pair"], res["training_pair"]["protocol"]
        ctx.console.print(
            f"training pair (as `trabecula pairs` makes them) from a {PAIR_MM:g} mm cube of the vertebra's core: random "
            f"protocol {q['detector']}, {q['kvp']:g} kVp, {q['mas']:g} mAs, {q['kernel']} kernel, {q['pixel_mm']:.3f} mm "
            f"pixels, {q['slice_thickness_mm']:.2f} mm slices, {q['body']} body, {q['medium']}; input noise "
            f"{p['input_noise_sd_hu']:.0f} HU; arrays " + ", ".join(f"{k} {'x'.join(map(str, v))}" for k, v in p["shapes"].items()))
    for k, v in res["checks"].items():
        ctx.console.print(f"  {'[green]ok[/green]' if v else '[red]FAILED[/red]'}  {k}")
