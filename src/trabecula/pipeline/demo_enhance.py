"""Demo stage — enhance: the shipped ``dlr``, ``srdlr`` and ``pix2pixhd`` models on the clinical vertebra scan.

Takes ``ctx.data["scans"][("vertebra", "clinical-mdct")]`` (and, for comparison, ``("vertebra", "micro-ct")``)
from the twin stage and enhances the vertebra's trabecular core (what the models are trained on; cortex and
air excluded) with the shipped weights (trained on the twin's randomised-protocol pairs; each states the
input's protocol and checks it against its training ranges). DLR, a denoiser, gets a low-dose scan of the
same core (``DLR_MAS``) and is judged by the noise SD against the twin's noise-free scan. Without the twin
stage it makes its own clinical scan and micro-CT of a synthetic specimen with the twin's fast path and
enhances a central region. Results go to ``ctx.data["enhanced"]`` (``{model: Volume}``); the stage prints,
for the input and each model, the noise, the study SSIM against micro-CT, BV/TV, Tb.Th and Tb.Sp in a
central cylinder, and the hallucination check (score, and why it flagged).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from rich.table import Table

from trabecula.enhance.hallucination import check_enhanced
from trabecula.morphometry.voi import cylinder_voi, study_cylinder_vois
from trabecula.phantom.real import from_binary
from trabecula.phantom.standin import synthetic_structure
from trabecula.pipeline.demo_measure import trabecular_core
from trabecula.pipeline.twin_study import STUDY_WINDOW, own_range_window
from trabecula.pipeline.vertebra_study import voi_morphometry
from trabecula.quality.similarity import ssim_study
from trabecula.report import PairedData
from trabecula.scanner.simulate import scan
from trabecula.stats import study_table
from trabecula.volume import Volume

TITLE = "Enhance: DLR, SR-DLR and pix2pixHD on the clinical scan"
MODELS = ("dlr", "srdlr", "pix2pixhd")
#: models whose output is on the micro-CT's HU scale (trained toward it)
MICRO_SCALE = ("pix2pixhd", "pix2pix", "crn")
ROI_VOXELS = 64
ROI_SLICES = 40
DLR_MAS = 3.9  # the DLR input dose: the twin's bare specimen then has the noise of a scan through a patient


def _own_scans(seed: int) -> tuple[Volume, Volume]:
    ph = from_binary(synthetic_structure((160, 192, 192), 0.05, 0.22, 0.9, "mixed", seed=seed + 4242))
    return (scan(ph, "clinical-mdct", seed=seed + 1, mode="fast"), scan(ph, "micro-ct", seed=seed + 2, mode="fast"))


def _on_grid_of(model: str, vol: Volume) -> Volume:
    """``vol`` on ``model``'s canonical input grid, as ``enhance`` puts it there (no warnings)."""
    import warnings

    from trabecula.enhance.infer import load_model, on_model_grid

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return on_model_grid(vol, load_model(model), allow_out_of_range=True)[0]


def _central(vol: Volume, n_xy: int, n_z: int) -> Volume:
    z0 = max(0, (vol.shape[0] - n_z) // 2)
    y0 = max(0, (vol.shape[1] - n_xy) // 2)
    x0 = max(0, (vol.shape[2] - n_xy) // 2)
    return vol.crop((z0, z0 + n_z), (y0, y0 + n_xy), (x0, x0 + n_xy))


def core_roi(clin: Volume, labels: Volume, margin_mm: float = 0.3) -> Volume | None:
    """The clinical scan cropped to the phantom's marrow-filled trabecular core, ``margin_mm`` inside its box
    (at most ``ROI_VOXELS`` in-plane and ``ROI_SLICES`` slices, centred); None if the core is too small."""
    core = trabecular_core(labels)
    if core is None:
        return None
    lo, hi = np.asarray(core[0]) + margin_mm, np.asarray(core[1]) - margin_mm
    if np.any(hi - lo < 8 * np.asarray(clin.spacing)):
        return None
    roi = clin.crop_mm(lo, hi)
    return _central(roi, ROI_VOXELS, ROI_SLICES) if min(roi.shape[1:]) >= 16 else None


def around(vol: Volume, roi: Volume, margin_mm: float = 0.5) -> Volume:
    """``vol`` cropped to ``roi``'s world box widened by ``margin_mm`` (and kept inside ``vol``'s own box): the
    part of the micro-CT the comparisons in the ROI use (sampling, the paired cylinders), not the whole slab."""
    lo = np.maximum(np.asarray(roi.index_to_world([0, 0, 0])) - margin_mm, vol.index_to_world([0, 0, 0]))
    hi = np.minimum(np.asarray(roi.index_to_world(np.asarray(roi.shape) - 1)) + margin_mm,
                    vol.index_to_world(np.asarray(vol.shape) - 1))
    return vol.crop_mm(lo, hi)


SUB_VOI_MM = (1.2, 1.0)  # diameter, height of the small cylinders tiling the core for the paired statistics


def sub_voi_centres(roi: Volume, d: float = SUB_VOI_MM[0], h: float = SUB_VOI_MM[1], max_n: int = 12) -> list[tuple]:
    """World centres (z, y, x) of non-overlapping cylinders (``d`` × ``h`` mm, axis z) tiling ``roi``'s box."""
    lo = np.asarray(roi.origin) - np.asarray(roi.spacing) / 2
    ext = np.asarray(roi.extent_mm)
    n = [int(ext[0] // h), int(ext[1] // d), int(ext[2] // d)]
    if min(n) < 1:
        return []
    step = np.array([h, d, d])
    start = lo + (ext - step * np.asarray(n)) / 2 + step / 2
    cs = [tuple(start + step * np.array([i, j, k])) for i in range(n[0]) for j in range(n[1]) for k in range(n[2])]
    return cs[:max_n]


def paired_morphometry(ctx, roi: Volume, micro: Volume, methods: dict[str, Volume]) -> int:
    """BV/TV, Tb.Th and Tb.Sp in small cylinders tiling the core, on micro-CT (reference) and on each method's
    volume (same world cylinders, each on its own grid; the evaluation's 8-bit IsoData + BoneJ measurement:
    the bone window for the clinical HU scale, the VOI's own range for micro-CT and the models trained toward
    it, :data:`MICRO_SCALE`).
    Puts Table-4/5 statistics (``ctx.data["study_tables"]``) and scatter / Bland–Altman data
    (``ctx.data["paired"]``) for the report. Returns the number of cylinders (0 when fewer than 4 fit)."""
    centres = sub_voi_centres(roi)
    if len(centres) < 4:
        return 0
    params = ("BV/TV", "Tb.Th (mm)", "Tb.Sp (mm)")

    def values(vol: Volume, micro_scale: bool) -> dict[str, list[float]]:
        arr = vol.numpy().astype(np.float32)
        out: dict[str, list[float]] = {p: [] for p in params}
        for c in centres:
            m = cylinder_voi(vol.shape, vol.spacing, SUB_VOI_MM[0], SUB_VOI_MM[1], center_mm=c, origin=vol.origin)
            res = voi_morphometry(arr, vol.spacing, m, window=own_range_window(arr[m]) if micro_scale else STUDY_WINDOW)
            for p in params:
                out[p].append(float(res[p]))
        return out

    ref = values(micro, True)
    tables, paired = ctx.data.setdefault("study_tables", []), ctx.data.setdefault("paired", [])
    for name, vol in methods.items():
        meth = values(vol, name in MICRO_SCALE)
        ok = [i for i in range(len(centres)) if all(np.isfinite(ref[p][i]) and np.isfinite(meth[p][i]) for p in params)]
        if len(ok) < 4:
            continue
        r_ok = {p: [ref[p][i] for i in ok] for p in params}
        m_ok = {p: [meth[p][i] for i in ok] for p in params}
        df = study_table(r_ok, m_ok, "micro-CT", name)
        df.attrs.update(reference_name="micro-CT", method_name=name,
                        title=f"{name} vs micro-CT: {len(ok)} cylinders {SUB_VOI_MM[0]:g} × {SUB_VOI_MM[1]:g} mm in the vertebra's core")
        tables.append(df)
        if name != "clinical input":
            for _, row in df.iterrows():
                p = row["parameter"]
                paired.append(PairedData(p, r_ok[p], m_ok[p], "micro-CT", name, "mm" if "mm" in p else "",
                                         float(row["r"]), float(row["r_p"]), float(row["bias_abs"]),
                                         (float(row["loa_low"]), float(row["loa_high"]))))
    return len(centres)


def sample_like(ref: Volume, like: Volume) -> np.ndarray:
    """``ref`` sampled at ``like``'s voxel centres (world coordinates; Gaussian anti-aliasing when ``ref`` is finer
    than ``like``, linear interpolation); NaN outside ``ref``'s field of view."""
    from scipy import ndimage

    arr = ref.numpy().astype(np.float32)
    factor = np.asarray(like.spacing) / np.asarray(ref.spacing)
    if np.any(factor > 1):
        arr = ndimage.gaussian_filter(arr, np.maximum(0, (factor - 1) / 2), mode="nearest")
    idx = [(like.origin[a] + np.arange(like.shape[a]) * like.spacing[a] - ref.origin[a]) / ref.spacing[a] for a in range(3)]
    out = ndimage.map_coordinates(arr, np.meshgrid(*idx, indexing="ij"), order=1, mode="constant", cval=np.nan)
    return out


def noise_proxy(arr: np.ndarray) -> float:
    """Robust SD (1.4826 · MAD) of the fine-scale residual ``x − Gaussian(x, σ = 1 voxel in-plane)`` in HU:
    a noise proxy for images without a uniform region (it also responds to fine structure)."""
    from scipy import ndimage

    r = arr - ndimage.gaussian_filter(arr, (0, 1, 1))
    return float(1.4826 * np.median(np.abs(r - np.median(r))))


def run(ctx) -> dict[str, Any]:
    from trabecula.enhance.infer import enhance, load_model, shipped_models

    scans = ctx.data.get("scans", {})
    clin = scans.get(("vertebra", "clinical-mdct"))
    micro = scans.get(("vertebra", "micro-ct"))
    source = "twin stage"
    if not isinstance(clin, Volume):
        clin, micro = _own_scans(ctx.seed)
        source = "own twin scan of a synthetic specimen (twin stage absent)"
    labels = (ctx.data.get("phantoms") or {}).get("vertebra")
    roi = core_roi(clin, labels) if isinstance(labels, Volume) else None
    region = "trabecular core of the vertebra (cortex and air excluded: the models are trained on trabecular bone)"
    if roi is None:
        roi, region = _central(clin, ROI_VOXELS, ROI_SLICES), "central region"
    elif isinstance(micro, Volume):
        micro = around(micro, roi)
    avail = [m for m in MODELS if m in shipped_models()]
    advance = ctx.subtask("enhancing", max(1, len(avail)))
    rows: list[dict[str, Any]] = []
    enhanced: dict[str, Volume] = {}

    def describe(label: str, vol: Volume, seconds: float | None, cons: float | None, flagged: bool | None) -> dict:
        arr = vol.numpy().astype(np.float32)
        row: dict[str, Any] = {"method": label, "shape": list(vol.shape), "spacing_mm": list(vol.spacing),
                               "noise_proxy_hu": noise_proxy(arr), "seconds": seconds, "consistency": cons,
                               "flagged": flagged}
        if isinstance(micro, Volume):
            ref = sample_like(micro, vol)
            ok = np.isfinite(ref).all(axis=(1, 2))
            row["ssim_vs_micro_ct"] = ssim_study(arr[ok], ref[ok]) if ok.any() else None
        try:  # one central cylinder: the study's 15 mm × 5 mm, or the largest that fits the ROI
            desc, voi = study_cylinder_vois(vol.shape, vol.spacing, height_mm=min(5.0, vol.shape[0] * vol.spacing[0]))[0]
            micro_scale = label in MICRO_SCALE or label.startswith("micro-CT")
            row.update(voi_morphometry(arr, vol.spacing, voi, window=own_range_window(arr[voi]) if micro_scale else STUDY_WINDOW),
                       voi=desc)
        except Exception as exc:  # morphometry is informative here, not a check
            row["morphometry_error"] = f"{type(exc).__name__}: {exc}"
        return row

    rows.append(describe("clinical input", roi, None, None, None))
    # DLR is a low-dose denoiser: on the twin, it denoises a low-dose scan of the same core and is judged by
    # the noise SD against the noise-free scan (the twin knows it exactly)
    dlr_test = None
    if "dlr" in avail and region.startswith("trabecular core"):
        from trabecula.scanner import scan

        low = core_roi(scan(labels, "clinical-mdct", mas=DLR_MAS, seed=ctx.seed + 7, mode="fast", progress=False), labels)
        clean = core_roi(scan(labels, "clinical-mdct", seed=ctx.seed + 7, mode="fast", noise=False, progress=False), labels)
        if low is not None and clean is not None and low.shape == clean.shape:
            if roi.shape == clean.shape:
                rows[0]["noise_sd_hu"] = float(np.std(roi.numpy() - clean.numpy()))
            low, clean = _on_grid_of("dlr", low), _on_grid_of("dlr", clean)  # judged where DLR works
            dlr_test = (low, clean)
            rows.append(describe(f"low-dose input ({DLR_MAS:g} mAs)", low, None, None, None))
            rows[-1]["noise_sd_hu"] = float(np.std(low.numpy() - clean.numpy()))
    for name in avail:
        t0 = time.perf_counter()
        lm = load_model(name)
        src = dlr_test[0] if name == "dlr" and dlr_test else roi
        out = enhance(src, lm)
        dt = time.perf_counter() - t0
        enhanced[name] = out
        c = check_enhanced(out, src, lm, resample=False)
        rows.append(describe(name, out, round(dt, 2), c.score, c.flagged))
        rows[-1]["weights"] = name
        rows[-1]["protocol"] = out.provenance.extra.get("enhance_input_protocol")
        rows[-1]["reasons"] = c.details.get("reasons", [])
        if name == "dlr" and dlr_test:
            rows[-1]["noise_sd_hu"] = float(np.std(out.numpy() - dlr_test[1].numpy()))
        advance(1, f"enhanced with {name}")
    if isinstance(micro, Volume):
        ref_vol = Volume(sample_like(micro, enhanced.get("srdlr", roi)), enhanced.get("srdlr", roi).spacing,
                         enhanced.get("srdlr", roi).origin, "HU")
        if np.isfinite(ref_vol.numpy()).all():
            rows.append(describe("micro-CT (reference)", ref_vol, None, None, None))
    ctx.data["enhanced"] = enhanced
    iq = ctx.data.setdefault("image_quality", {})
    for r in rows:
        if not r["method"].startswith("micro-CT"):
            label = r["method"] + (f" ({r['weights']})" if r.get("weights", r["method"]) != r["method"] else "")
            iq[label] = {"SSIM": r.get("ssim_vs_micro_ct"), "noise_sd": r.get("noise_sd_hu")}
    paired_n = 0
    if isinstance(micro, Volume) and region.startswith("trabecular core"):
        paired_n = paired_morphometry(ctx, roi, micro, {"clinical input": roi, **{k: v for k, v in enhanced.items() if k != "dlr"}})
    inp = rows[0]
    checks = {"models_shipped": len(avail) == len(MODELS),
              "outputs_finite": all(np.isfinite(v.numpy()).all() for v in enhanced.values())}
    by = {r["method"]: r for r in rows}
    if "dlr" in by and dlr_test:
        low_row = next(r for r in rows if r["method"].startswith("low-dose input"))
        checks["dlr_lowers_noise"] = by["dlr"]["noise_sd_hu"] < low_row["noise_sd_hu"]
    elif "dlr" in by:  # no phantom to re-scan: the noise proxy of the full-dose input
        checks["dlr_lowers_noise"] = by["dlr"]["noise_proxy_hu"] < inp["noise_proxy_hu"]
    for m in ("srdlr", "pix2pixhd"):
        if m in by and by[m].get("ssim_vs_micro_ct") is not None and inp.get("ssim_vs_micro_ct") is not None:
            checks[f"{m}_ssim_above_input"] = by[m]["ssim_vs_micro_ct"] > inp["ssim_vs_micro_ct"]
    return {"ok": all(checks.values()), "checks": checks, "source": source, "region": region, "rows": rows,
            "paired_vois": paired_n}


def show(ctx, res: dict[str, Any]) -> None:
    t = Table("method", "grid (mm)", "noise SD (HU)", "noise proxy (HU)", "SSIM vs µCT", "BV/TV", "Tb.Th (mm)",
              "Tb.Sp (mm)", "consistency", "s", title=f"input: {res['source']}, {res.get('region', '')}")

    def f(v, fmt):
        return "—" if v is None or (isinstance(v, float) and not np.isfinite(v)) else format(v, fmt)

    for r in res["rows"]:
        flag = "" if r.get("flagged") is None else (" [red]flagged[/red]" if r["flagged"] else "")
        label = r["method"] + (f" ({r['weights']})" if r.get("weights", r["method"]) != r["method"] else "")
        t.add_row(label, " × ".join(f"{s:.3g}" for s in r["spacing_mm"]), f(r.get("noise_sd_hu"), ".1f"),
                  f(r["noise_proxy_hu"], ".1f"),
                  f(r.get("ssim_vs_micro_ct"), ".3f"), f(r.get("BV/TV"), ".3f"), f(r.get("Tb.Th (mm)"), ".3f"),
                  f(r.get("Tb.Sp (mm)"), ".3f"), f(r.get("consistency"), ".2f") + flag, f(r.get("seconds"), ".1f"))
    ctx.console.print(t)
    ctx.console.print("noise SD: against the twin's noise-free scan (dlr row: its output on the low-dose scan); "
                      "noise proxy: robust SD of the fine-scale residual (responds to structure too)")
    from trabecula.enhance.protocol import protocol_line

    for r in res["rows"]:
        if r.get("protocol"):
            ctx.console.print(f"{r['method']}: {protocol_line(r['protocol'])}")
        if r.get("flagged"):
            ctx.console.print(f"{r['method']} flagged: " + "; ".join(r.get("reasons", [])))
    bad = [k for k, v in res["checks"].items() if not v]
    ctx.console.print("checks: " + ("[green]all passed[/green]" if not bad else "[red]failed: " + ", ".join(bad) + "[/red]"))
