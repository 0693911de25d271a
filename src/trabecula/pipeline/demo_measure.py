"""Demo stage "measure": trabecular morphometry of the vertebra phantom's scans (and its truth) in a cylinder.

The vertebra study measured BV/TV, Tb.Th and Tb.Sp in cylindrical VOIs of 15 mm diameter × 5 mm height; the
demo uses the same cylinder scaled down to fit the phantom's trabecular core (half its smaller cross-section
and half its height, centred in it — the marrow-labelled region of ``ctx.data["phantoms"]["vertebra"]``;
:func:`trabecula.morphometry.voi.study_cylinder_spec`) and at most :data:`MAX_DIAMETER_MM` across (the study's
15 mm would fit the full-size vertebra, but the micro-CT's 2× sub-voxel measurement of it takes many minutes). When the scanner twin has produced no scans
(``ctx.data["scans"]`` missing), a random-field bone volume of the demo's seed is measured instead, so the
stage always runs.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
from rich.table import Table

from trabecula.morphometry.measure import measure
from trabecula.morphometry.voi import study_cylinder_spec

TITLE = "Morphometry: BV/TV, Tb.Th, Tb.Sp, Tb.N, Conn.D, SMI, DA in a cylindrical VOI"
#: The measurement cylinder's largest diameter (mm): the demo's time budget.
MAX_DIAMETER_MM = 4.0

def trabecular_core(labels) -> tuple[np.ndarray, np.ndarray] | None:
    """World-mm box of the marrow-filled trabecular core of a phantom label volume (None if there is none)."""
    mats = labels.provenance.extra.get("materials", {})
    ids = [int(k) for k, name in mats.items() if "marrow" in str(name)]
    if not ids:
        return None
    m = np.isin(labels.numpy(), ids)
    if not m.any():
        return None
    idx = np.argwhere(m)
    lo = labels.index_to_world(idx.min(axis=0))
    hi = labels.index_to_world(idx.max(axis=0))
    return lo, hi


def in_scan_threshold(scan, labels, depth_mm: float = 0.1) -> float:
    """The calibrated threshold: half-way between the HU that bone and marrow read in ``scan`` itself.

    Method: on the scan's central slice, the medians of the voxels whose centres lie in the phantom's bone
    (cortex and struts) or marrow at least ``depth_mm`` plus half a scan voxel from the other materials (2-D
    exact distance on the phantom slice nearest that slice; nearest-voxel lookup). The phantom's labels act as
    the calibration insert, read under the same beam: a large specimen hardens the beam, so bone reads far below
    the HU of a separate small insert (:func:`trabecula.pipeline.twin_study.calibrated_threshold`; a whole
    vertebral body at the ``micro-ct`` preset: about 2600 against 7000 HU).
    """
    import edt

    lab = labels.numpy()
    mats = labels.provenance.extra.get("materials", {})
    bone_ids = [int(k) for k, m in mats.items() if m == "bone"]
    marrow_ids = [int(k) for k, m in mats.items() if "marrow" in str(m)]
    k = scan.shape[0] // 2
    centres = [scan.origin[a] + np.arange(scan.shape[a]) * scan.spacing[a] for a in range(3)]
    idx = [np.clip(np.rint((c - labels.origin[a]) / labels.spacing[a]).astype(int), 0, lab.shape[a] - 1)
           for a, c in enumerate(centres)]
    sl = lab[idx[0][k]]
    depth = depth_mm + 0.5 * max(scan.spacing[1:])
    a = scan.numpy()[k]
    hu = []
    for ids in (bone_ids, marrow_ids):
        inside = np.isin(sl, ids)
        deep = edt.edt(inside.astype(np.uint8), anisotropy=labels.spacing[1:], black_border=True) >= depth
        hu.append(float(np.median(a[deep[np.ix_(idx[1], idx[2])]])))
    return 0.5 * (hu[0] + hu[1])


def hrpqct_wrist(scan_vol, labels, seed: int = 0) -> dict[str, Any]:
    """HR-pQCT-style evaluation of a wrist scan, with the phantom's known radius beside each number.

    As HR-pQCT works: a stored scanner calibration (the twin's HA phantom, rods 0–800 mg HA/cm³, scanned alone
    by the same preset with the image-domain model, rods detected; :func:`.density.fit_calibration`), then the
    radius (the largest bone) autocontoured (:mod:`.cortical`), its cortical parameters, Tt/Tb/Ct.vBMD, and the
    trabecular parameters in its trabecular compartment. Known: the radius's cross-section area and cortex
    thickness from the phantom's parameters (``labels.provenance.extra["phantom"]``)."""
    from trabecula.morphometry.density import fit_calibration
    from trabecula.phantom import HA_CONCENTRATIONS, calibration_phantom
    from trabecula.scanner import scan

    preset = (scan_vol.provenance.scanner or "uhr-extremity").split("+")[0]
    rods = scan(calibration_phantom(), preset, mode="fast", seed=seed)
    cal = fit_calibration(rods, HA_CONCENTRATIONS)
    res = measure(scan_vol, cortical="largest", calibration=cal, metrics=("bvtv", "tbth", "tbsp", "tbn"), seed=seed)
    known = (labels.provenance.extra.get("phantom") or {}) if labels is not None else {}
    c = res.cortical or {}
    return {"calibration": res.calibration, "calibration_r2": cal.r2,
            "rod_residuals_mg_cm3": cal.residuals_mg_cm3,
            "tt_ar_mm2": c.get("tt_ar_mm2"), "ct_ar_mm2": c.get("ct_ar_mm2"), "tb_ar_mm2": c.get("tb_ar_mm2"),
            "ct_th_mm": c.get("ct_th_mm"), "ct_th_annulus_mm": c.get("ct_th_annulus_mm"), "ct_po": c.get("ct_po"),
            "tt_vbmd_mg_cm3": res.tt_vbmd_mg_cm3, "tb_vbmd_mg_cm3": res.tb_vbmd_mg_cm3,
            "ct_vbmd_mg_cm3": res.ct_vbmd_mg_cm3, "bv_tv": res.bv_tv, "tb_th_mm": res.tb_th_mm,
            "tb_sp_mm": res.tb_sp_mm, "tb_n_per_mm": res.tb_n_per_mm, "apparent": res.apparent,
            "known_tt_ar_mm2": (known.get("radius") or {}).get("area_mm2"),
            "known_ct_th_mm": known.get("radius_cortex_mm"),
            "known_tb_bv_tv": (known.get("radius") or {}).get("core_bv_tv")}


def _summary(res) -> dict[str, Any]:
    d = res.to_dict()
    keep = ("bv_tv", "tb_th_mm", "tb_sp_mm", "tb_n_per_mm", "conn_d_per_mm3", "smi", "smi_concave_fraction", "da",
            "da_scanco", "threshold", "threshold_method", "voi", "voi_volume_mm3", "mode", "warnings", "apparent",
            "resolution_mm", "resolution_source")
    return {k: d[k] for k in keep}


def run(ctx) -> dict[str, Any]:
    targets: list[tuple[str, Any, dict[str, Any]]] = []  # (label, volume, extra measure() arguments)
    scans = ctx.data.get("scans") or {}
    labels = (ctx.data.get("phantoms") or {}).get("vertebra")
    for key, vol in scans.items():
        phantom, preset = key if isinstance(key, tuple) else (str(key), "")
        if phantom == "vertebra":
            targets.append((f"{phantom} / {preset}", vol, {}))
            if preset == "micro-ct" and labels is not None:
                # as micro-CT scans are segmented in practice: a calibrated threshold half-way between bone and
                # marrow HU, after interpolating the grey values 2x per axis (sub-voxel segmentation)
                targets.append((f"{phantom} / {preset}, calibrated 2x", vol,
                                {"threshold": in_scan_threshold(vol, labels), "upsample": 2}))
    truth = (ctx.data.get("truth") or {}).get("vertebra")
    if truth is not None:
        targets.append(("vertebra / truth", truth, {}))
    fallback = not targets
    core = None
    if labels is not None and not fallback:
        core = trabecular_core(labels)
    if fallback:
        from trabecula.phantom import random_field_bone

        vol = random_field_bone((64, 96, 96), spacing=0.05, bone_fraction=0.25, correlation_mm=0.12, seed=ctx.seed)
        targets.append(("random-field bone (no scans yet)", vol, {}))
    advance = ctx.subtask("morphometry", len(targets))
    measurements: dict[str, dict[str, Any]] = {}
    rows = []
    ok = True
    for label, vol, extra in targets:
        t0 = time.perf_counter()
        spec = study_cylinder_spec(vol, core, diameter_mm=MAX_DIAMETER_MM)
        try:
            res = measure(vol, voi=spec, seed=ctx.seed, **extra)
        except Exception as exc:  # a failed measurement fails the stage's checks, the demo goes on
            rows.append({"label": label, "error": f"{type(exc).__name__}: {exc}"})
            ok = False
            advance(1, f"morphometry: {label}")
            continue
        s = _summary(res)
        s["seconds"] = round(time.perf_counter() - t0, 2)
        s["spacing_mm"] = list(vol.spacing)
        measurements[label] = s
        rows.append({"label": label, **s})
        good = 0.0 <= res.bv_tv <= 1.0 and (res.bv_tv == 0 or math.isfinite(res.tb_th_mm))
        good &= res.bv_tv in (0.0, 1.0) or math.isfinite(res.tb_sp_mm)
        ok &= bool(good)
        advance(1, f"morphometry: {label}")
    ctx.data["measurements"] = measurements
    checks = {"all measured": ok}
    hr = None
    wrist_scan = scans.get(("wrist", "uhr-extremity"))
    if wrist_scan is not None:
        try:
            hr = hrpqct_wrist(wrist_scan, (ctx.data.get("phantoms") or {}).get("wrist"), ctx.seed)
        except Exception as exc:  # reported in the stage's checks, the demo goes on
            hr = {"error": f"{type(exc).__name__}: {exc}"}
        known_ar = hr.get("known_tt_ar_mm2")
        checks["wrist: radius Tt.Ar within 5 % of the phantom's"] = bool(
            known_ar and hr.get("tt_ar_mm2") and abs(hr["tt_ar_mm2"] / known_ar - 1) < 0.05)
    if fallback:
        r = measurements.get(targets[0][0])
        checks["random-field BV/TV near 0.25"] = bool(r and abs(r["bv_tv"] - 0.25) < 0.06)
    micro, clinical = measurements.get("vertebra / micro-ct"), measurements.get("vertebra / clinical-mdct")
    if micro and clinical:
        checks["clinical-mdct marked apparent, micro-ct not"] = bool(clinical["apparent"] and not micro["apparent"])
    if truth is not None and "vertebra / truth" in measurements:
        t = measurements["vertebra / truth"]
        checks["truth Tb.Th finite"] = bool(np.isfinite(t["tb_th_mm"]))
    return {"ok": bool(all(checks.values())), "checks": checks, "rows": rows, "fallback": fallback, "hrpqct": hr}


def show(ctx, res: dict[str, Any]) -> None:
    t = Table("scan", "VOI", "BV/TV", "Tb.Th mm", "Tb.Sp mm", "Tb.N /mm", "Conn.D /mm³", "SMI", "concave", "DA",
              "FWHM mm", "s")

    def f(v, fmt="{:.3f}"):
        try:
            x = float(v)
        except (TypeError, ValueError):
            return "n/a"
        return "n/a" if x != x else fmt.format(x)

    for r in res["rows"]:
        if "error" in r:
            t.add_row(r["label"], "", f"[red]{r['error']}[/red]", *[""] * 9)
            continue
        label = r["label"] + (" [yellow](apparent)[/yellow]" if r.get("apparent") else "")
        t.add_row(label, r["voi"].replace("cylinder:", ""), f(r["bv_tv"]), f(r["tb_th_mm"]), f(r["tb_sp_mm"]),
                  f(r["tb_n_per_mm"]), f(r["conn_d_per_mm3"], "{:.2f}"), f(r["smi"], "{:.2f}"),
                  f(r["smi_concave_fraction"], "{:.2f}"), f(r["da"]), f(r.get("resolution_mm"), "{:.2f}"),
                  f(r["seconds"], "{:.1f}"))
    ctx.console.print(t)
    if any(r.get("apparent") for r in res["rows"]):
        ctx.console.print("  (apparent): the scan's voxel or resolution (FWHM) is coarser than half the measured "
                          "Tb.Th or Tb.Sp — its values describe the blurred image, as HR-pQCT labels them")
    hr = res.get("hrpqct")
    if hr and "error" not in hr:
        t2 = Table("wrist / uhr-extremity, HR-pQCT style: radius", "measured", "phantom")
        for label, key, known, fmt in (
                ("Tt.Ar mm²", "tt_ar_mm2", "known_tt_ar_mm2", "{:.1f}"), ("Ct.Ar mm²", "ct_ar_mm2", None, "{:.1f}"),
                ("Tb.Ar mm²", "tb_ar_mm2", None, "{:.1f}"), ("Ct.Th mm (local thickness)", "ct_th_mm", "known_ct_th_mm", "{:.3f}"),
                ("Ct.Th mm (Ct.Ar/perimeter)", "ct_th_annulus_mm", "known_ct_th_mm", "{:.3f}"), ("Ct.Po", "ct_po", None, "{:.4f}"),
                ("Tt.vBMD mg HA/cm³", "tt_vbmd_mg_cm3", None, "{:.0f}"), ("Tb.vBMD mg HA/cm³", "tb_vbmd_mg_cm3", None, "{:.0f}"),
                ("Ct.vBMD mg HA/cm³", "ct_vbmd_mg_cm3", None, "{:.0f}"), ("BV/TV (Tb compartment)", "bv_tv", "known_tb_bv_tv", "{:.3f}"),
                ("Tb.Th mm", "tb_th_mm", None, "{:.3f}"), ("Tb.Sp mm", "tb_sp_mm", None, "{:.3f}")):
            t2.add_row(label, f(hr.get(key), fmt), f(hr.get(known), fmt) if known else "")
        ctx.console.print(t2)
        ctx.console.print(f"  calibration (the twin's HA phantom scanned alone): {hr['calibration']}, r² {hr['calibration_r2']:.5f}")
    elif hr:
        ctx.console.print(f"  [red]wrist HR-pQCT evaluation failed: {hr['error']}[/red]")
    for name, passed in res["checks"].items():
        ctx.console.print(f"  {'[green]✓' if passed else '[red]✗'}[/] {name}")
