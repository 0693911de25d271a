"""The twin study: what each virtual scanner resolves (edge MTF) and what it does to trabecular morphometry.

1. **Resolution.** A slanted bone edge in water (5°) is scanned by ``uhr-extremity``, ``clinical-uhr``,
   ``study-mdct`` and ``clinical-mdct`` through the full cone-beam simulation (noise-free, so the edge method
   measures the system's presampled MTF); MTF50/MTF10 in lp/mm and one plot with the curves (``mtf.png``).
2. **Trabecular morphometry.** ``n`` trabecular cubes (Voronoi foam, :func:`trabecula.phantom.trabecular_cube`)
   whose calibration targets are drawn around the vertebra study's micro-CT means and SDs (BV/TV 0.180 ± 0.016,
   Tb.Th 0.220 ± 0.012 mm, Tb.Sp 0.934 ± 0.126 mm; Tomography 2021, Table 5), each in a 1 mm water jacket, are
   scanned by ``micro-ct``, ``study-mdct``, ``clinical-mdct`` and ``uhr-extremity``. Each reconstruction is binarised with the
   IsoData threshold of its VOI values (a cylinder around the centre, as the study's cylindrical VOIs) and
   measured there — BV/TV, Tb.Th and Tb.Sp (mean local thickness, mm) — and compared with the phantom's
   truth in the same VOI: means, ratios to truth, Pearson R; the study's MDCT bias (BV/TV 0.320 vs 0.180,
   Tb.Th 0.680 vs 0.220 mm, Tb.Sp 0.870 vs 0.934 mm, R 0.51/0.45/0.54) is the reference
   (``morphometry.png``, scatter plots). The micro-ct and uhr-extremity scans are also measured the way
   micro-CT and HR-pQCT scans are segmented in practice — a fixed, density-calibrated threshold, here half-way
   between the preset's bone and marrow HU (:func:`trabecula.scanner.spectrum.material_hu`), with the grey
   values interpolated 2× per axis before thresholding (:mod:`trabecula.morphometry.upsample`) — under the key
   ``"<preset> [calibrated]"``.

3. **What drives the clinical bias.** The first phantoms are re-scanned with clinical-MDCT variants (kernel,
   element size) and the mean ratio to truth is plotted against each variant's MTF10
   (``mdct_sensitivity.png``); the exact structures of the same phantoms, partial-volumed onto each preset's
   reconstruction grid without blur or noise, show how much of each bias is the voxel grid alone
   (``grid_effect``).

4. **Real anatomy.** With ``real_data``, the ten human L1 regions (DIDSR, binary, 0.05 mm) become phantoms
   (bone in marrow, in 1 mm of PBS), are scanned by ``micro-ct``, ``study-mdct`` and ``clinical-mdct`` and
   measured with the study's own protocol (8-bit stacks, ImageJ IsoData, BoneJ local thickness;
   :func:`measure_study_protocol`) in a 12 mm × 10 mm cylinder; the MDCT / micro-CT ratios are checked against
   the study's (``real_anatomy``). The 8-bit conversion, which the study does not state, is per modality
   (:func:`study_window`): the MDCT in the bone window L 500 / W 2000 HU, the micro-CT over its own range.

The morphometry scans use the fast path by default (the image-domain model whose MTF and NPS are tested
against the full simulation); every phantom is also scanned by ``clinical-mdct`` through the full simulation
and the two are compared (``summary.fast_vs_full``); ``--mode full`` scans everything fully.
Results go to ``twin_study.json`` (written after every phantom, so an interrupted run resumes) and the PNGs.
Run: :func:`run_study`, or ``trabecula twin-study --out twin-study`` on the command line.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from trabecula.errors import ParameterError
from trabecula.io import atomic_output
from trabecula.morphometry.measure import measure
from trabecula.morphometry.threshold import threshold_isodata_skimage
from trabecula.morphometry.voi import cylinder_voi
from trabecula.phantom import LABEL, FoamParams, slanted_edge, trabecular_cube
from trabecula.progress import progress_steps
from trabecula.quality import mtf_edge
from trabecula.render.output import save_png
from trabecula.scanner import load_scanner
from trabecula.scanner.fast import mtf_model
from trabecula.scanner.spectrum import material_hu
from trabecula.stats.agreement import pearson
from trabecula.volume import Volume

#: The vertebra study's micro-CT (truth) and MDCT values, n = 50 VOIs (Tomography 2021, Table 5).
STUDY = {
    "micro_ct": {"bv_tv": (0.180, 0.016), "tb_th_mm": (0.220, 0.012), "tb_sp_mm": (0.934, 0.126)},
    "mdct": {"bv_tv": (0.320, 0.067), "tb_th_mm": (0.680, 0.079), "tb_sp_mm": (0.870, 0.140)},
    "mdct_r": {"bv_tv": 0.514, "tb_th_mm": 0.445, "tb_sp_mm": 0.539},
}
METRICS = ("bv_tv", "tb_th_mm", "tb_sp_mm")
MTF_PRESETS = ("uhr-extremity", "clinical-uhr", "study-mdct", "clinical-mdct")
MORPH_PRESETS = ("micro-ct", "study-mdct", "clinical-mdct", "uhr-extremity")
#: the presets whose MDCT / micro-CT ratios are compared with the vertebra study's
MDCT_PRESETS = ("study-mdct", "clinical-mdct")
#: the ten human L1 regions (DIDSR, binary, 0.05 mm isotropic as the origin's scripts use) and the presets
#: that scan them; the study's protocol measures every scan (:func:`measure_study_protocol`)
REAL_PRESETS = ("micro-ct", "study-mdct", "clinical-mdct")
REAL_SPACING_MM = 0.05
#: the cylinder measured in each 15 mm region: 12 mm across (1.5 mm from the region's sides, beyond the
#: clinical scanners' blur) and 10 mm high (the study's two stacked 5 mm cylinders)
REAL_VOI_MM = (12.0, 10.0)
#: the study's 8-bit bone window (level, width) in HU, as :func:`trabecula.pipeline.vertebra_study.voi_morphometry`:
#: the MDCT's conversion
STUDY_WINDOW = (500.0, 2000.0)
#: the presets converted to 8 bit with :data:`STUDY_WINDOW` (clinical CT); every other preset — the reference
#: micro-CT above all — is converted over its own range (:func:`own_range_window`, :func:`study_window`)
BONE_WINDOW_PRESETS = ("study-mdct", "clinical-mdct", "clinical-uhr")
#: the percentiles of the VOI's values that span 0…255 in the own-range conversion
OWN_RANGE_PERCENTILES = (0.1, 99.9)
#: the second segmentation of the high-resolution scans: threshold half-way between bone and marrow HU,
#: sub-voxel 2×. Not for clinical CT: at 0.5 mm no voxel of a 0.2 mm strut reaches the half-way value
#: (BV/TV measures 0 with it), which is why clinical studies use IsoData-type thresholds.
CALIBRATED = {"threshold": "half-way between the preset's bone and marrow HU (spectrum-weighted attenuation)",
              "upsample": 2, "presets": ["micro-ct", "uhr-extremity"]}


# --------------------------------------------------------------------------------------------- helpers
def measure_binary_in_voi(binary: np.ndarray, spacing, voi: np.ndarray) -> dict[str, float]:
    """BV/TV, Tb.Th and Tb.Sp (mean local thickness, diameters in mm) of a binary structure in a VOI.

    :func:`trabecula.morphometry.measure.measure` in its default mode; the structure outside the VOI still
    bounds the spheres."""
    r = measure(np.ascontiguousarray(binary, dtype=bool), spacing=spacing, voi=voi, metrics=("bvtv", "tbth", "tbsp"))
    return {"bv_tv": float(r.bv_tv), "tb_th_mm": float(r.tb_th_mm), "tb_sp_mm": float(r.tb_sp_mm)}


def measure_scan(scan: Volume, center_mm, voi_d: float, voi_h: float) -> dict[str, float]:
    """IsoData threshold of the VOI values (scikit-image's variant,
    :func:`trabecula.morphometry.threshold.threshold_isodata_skimage`), then :func:`measure_binary_in_voi`."""
    a = scan.numpy()
    voi = cylinder_voi(scan, diameter_mm=voi_d, height_mm=voi_h, center_mm=center_mm)
    t = threshold_isodata_skimage(a[voi])
    out = measure_binary_in_voi(a > t, scan.spacing, voi)
    out["threshold_hu"] = t
    return out


def calibrated_threshold(preset: str, marrow: str = "marrow") -> float:
    """Half-way between the HU of bone and of ``marrow`` for this preset: the fixed, density-calibrated
    threshold micro-CT and HR-pQCT practice uses (a calibration insert gives these values on a real scanner)."""
    return 0.5 * (material_hu(preset, "bone") + material_hu(preset, marrow))


def measure_scan_calibrated(scan: Volume, preset: str, center_mm, voi_d: float, voi_h: float,
                            marrow: str = "marrow") -> dict[str, float]:
    """BV/TV, Tb.Th, Tb.Sp with :func:`calibrated_threshold` after 2× sub-voxel interpolation
    (:func:`trabecula.morphometry.measure` with ``upsample``), in the same cylinder."""
    t = calibrated_threshold(preset, marrow)
    spec = f"cylinder:d={voi_d:g},h={voi_h:g},center={center_mm[0]:.6g},{center_mm[1]:.6g},{center_mm[2]:.6g}"
    r = measure(scan, threshold=t, voi=spec, upsample=CALIBRATED["upsample"], metrics=("bvtv", "tbth", "tbsp"))
    return {"bv_tv": float(r.bv_tv), "tb_th_mm": float(r.tb_th_mm), "tb_sp_mm": float(r.tb_sp_mm), "threshold_hu": t}


def pearson_r(a, b) -> float:
    """Pearson's R of paired samples (:func:`trabecula.stats.agreement.pearson`); NaN where it is undefined
    (fewer than 3 pairs, a constant sample, NaN values) rather than an error, so a study summary always forms."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 3 or not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))) or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return pearson(a, b).r


def jacketed(ph, water_mm: float = 1.0, material: str = "water"):
    """The phantom's labels padded with ``water_mm`` of ``material`` (default water; ``"pbs"`` for the study's
    phosphate-buffered saline) on every side (a specimen in a bath), and its truth padded with zeros; origins
    kept so world positions do not move."""
    if material not in LABEL:
        raise ParameterError("material", f"unknown jacket material {material!r}; use one of {', '.join(LABEL)}")
    lab, truth = ph.labels, ph.truth
    n = int(round(water_mm / lab.spacing[1]))
    pad = ((n, n), (n, n), (n, n))
    a = np.pad(lab.numpy(), pad, constant_values=LABEL[material])
    prov = lab.provenance.with_step(f"{material} jacket {water_mm:g} mm")
    prov.extra["materials"] = {**lab.provenance.extra["materials"], str(LABEL[material]): material}
    origin = tuple(o - n * s for o, s in zip(lab.origin, lab.spacing, strict=True))
    lab2 = Volume(a, lab.spacing, origin, "label", prov)
    t2 = Volume(np.pad(truth.numpy(), pad), truth.spacing, origin, "binary", truth.provenance)
    return lab2, t2


# --------------------------------------------------------------------------------------------- real anatomy
def own_range_window(values, percentiles=OWN_RANGE_PERCENTILES) -> tuple[float, float]:
    """(level, width) in HU of the linear 8-bit conversion that spans ``values`` from their
    ``percentiles[0]``-th to their ``percentiles[1]``-th percentile: ImageJ's conversion of a 16/32-bit stack
    to 8 bit scales its display range, by default the stack's minimum…maximum; the percentiles keep a few
    noise extremes from setting it. A constant input gives width 1."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        raise ParameterError("voi", "no finite values to set the 8-bit range from")
    lo, hi = (float(x) for x in np.percentile(v, percentiles))
    return 0.5 * (lo + hi), max(hi - lo, 1.0)


def study_window(preset: str, values) -> tuple[float, float]:
    """The 8-bit conversion (level, width in HU) the study protocol applies to a scan by ``preset`` whose VOI
    holds ``values``.

    The study (seed ``vertebra-pix2pixhd-study.txt``, §2.8) binarised micro-CT and micro-CT-like images "as
    8-bit stack maps in Fiji" by IsoData and does not state the conversion. Our decision, per modality: the
    MDCT (:data:`BONE_WINDOW_PRESETS`) keeps the bone window L 500 / W 2000 HU (:data:`STUDY_WINDOW`,
    −500…+1500 HU), which holds its bone (a 0.6 mm scanner reads trabecular bone well below 1500 HU); the
    micro-CT and every other preset are converted linearly over their own range (:func:`own_range_window`,
    the 0.1st–99.9th percentile of the VOI), as a micro-CT's reconstruction is exported — its bone reads
    3500–4600 HU at 80 kVp in a specimen (docs/scanner.md, HU scales), so the bone window would saturate it and
    IsoData would then place the edge outside the bone. A linear map that does not saturate leaves IsoData's
    threshold where it is on the HU values, up to the 8-bit rounding."""
    if preset in BONE_WINDOW_PRESETS:
        return STUDY_WINDOW
    return own_range_window(values)


def measure_study_protocol(scan: Volume, voi: np.ndarray, window: tuple[float, float] = STUDY_WINDOW) -> dict[str, float]:
    """BV/TV, Tb.Th, Tb.Sp (mm) of a scan in HU the way the vertebra study measured: the 8-bit conversion
    ``window`` (level, width in HU; the study's bone window :data:`STUDY_WINDOW` by default, per preset
    :func:`study_window`), ImageJ's default IsoData threshold of the VOI's voxels, BoneJ's local-thickness
    conventions — :func:`trabecula.pipeline.vertebra_study.voi_morphometry`, the one copy of that protocol.
    ``voi``: boolean mask on the scan's grid. The result carries the window (``window_hu``) and the fraction of
    the VOI's voxels above the window, clipped to 255 (``saturated_fraction``)."""
    from trabecula.pipeline.vertebra_study import voi_morphometry

    a = scan.numpy()
    level, width = (float(w) for w in window)
    r = voi_morphometry(a, scan.spacing, voi, window=(level, width))
    return {"bv_tv": float(r["BV/TV"]), "tb_th_mm": float(r["Tb.Th (mm)"]), "tb_sp_mm": float(r["Tb.Sp (mm)"]),
            "threshold_8bit": float(r["threshold_8bit"]), "window_hu": [level, width],
            "saturated_fraction": float(np.mean(a[voi] > level + width / 2.0))}


def real_regions(data_dir) -> list[Path]:
    """The DIDSR L1 regions (``Segmentation-grayscale-*.nrrd``) in ``data_dir``, sorted; ParameterError
    (``real_data``) if there are none."""
    d = Path(data_dir)
    files = sorted(d.glob("Segmentation-grayscale-*.nrrd")) if d.is_dir() else []
    if not files:
        raise ParameterError("real_data", f"no DIDSR regions (Segmentation-grayscale-*.nrrd) in {d}")
    return files


def jacket_medium() -> str:
    """The bath the real regions sit in: phosphate-buffered saline as in the study (its specimens were kept in
    PBS), water where the material vocabulary has no ``pbs``."""
    return "pbs" if "pbs" in LABEL else "water"


def eroded(binary: Volume, voxels: int) -> Volume:
    """``binary`` eroded ``voxels`` times by the 6-connected structuring element (the one-voxel erosion of
    :mod:`trabecula.phantom.augment`): every strut thinner by about two voxels per step. Unchanged for 0."""
    if voxels < 0:
        raise ParameterError("erode", f"must be 0 or more voxels, got {voxels}")
    if voxels == 0:
        return binary
    from scipy import ndimage as ndi

    b = ndi.binary_erosion(np.asarray(binary.numpy()) > 0, iterations=int(voxels))
    return Volume(b.astype(np.uint8), binary.spacing, binary.origin, "binary",
                  binary.provenance.with_step(f"eroded {voxels} voxel(s), 6-connected"))


def one_region(path: Path, presets, mode: str, seed: int, voi_mm=REAL_VOI_MM, jacket_mm: float = 1.0,
               medium: str | None = None, crop_margin_mm: float = 1.5, erode_voxels: int = 0,
               window: str = "per-modality") -> dict[str, Any]:
    """One real region as a phantom (:func:`trabecula.phantom.real.from_binary`: bone in marrow, 0.05 mm;
    first :func:`eroded` by ``erode_voxels``, 0 by default), in ``jacket_mm`` of ``medium``, scanned by each
    preset and measured by :func:`measure_study_protocol` in a centred cylinder (``voi_mm`` = diameter,
    height) with the preset's :func:`study_window` (``window="per-modality"``) or the bone window for every
    preset (``"bone"``, the protocol before the per-modality decision); the truth is the binary in the same
    cylinder (BoneJ conventions, voxel counting)."""
    from trabecula.io import read_volume
    from trabecula.phantom.real import from_binary
    from trabecula.scanner import scan

    if window not in ("per-modality", "bone"):
        raise ParameterError("window", f"use per-modality or bone, got {window!r}")
    t0 = time.perf_counter()
    medium = medium or jacket_medium()
    ph = from_binary(eroded(read_volume(path, spacing=REAL_SPACING_MM, units="binary"), erode_voxels))
    labels, truth = jacketed(ph, jacket_mm, medium)
    center = tuple(float(v) for v in labels.center_mm)
    d, h = voi_mm
    # measured in the cylinder's bounding box plus a margin wider than the widest marrow space's radius
    # (structure outside the VOI still bounds the spheres), not the whole region: the same numbers, 3× faster
    half = np.array([h / 2, d / 2, d / 2]) + crop_margin_mm
    box = (np.asarray(center) - half, np.asarray(center) + half)
    rec: dict[str, Any] = {"region": path.stem.replace("Segmentation-grayscale-", ""), "medium": medium,
                           "crop_margin_mm": crop_margin_mm}
    tc = truth.crop_mm(*box)
    r = measure(tc.numpy().astype(bool), spacing=tc.spacing, bonej=True, metrics=("bvtv", "tbth", "tbsp"),
                voi=cylinder_voi(tc, diameter_mm=d, height_mm=h, center_mm=center))
    rec["truth"] = {"bv_tv": float(r.bv_tv), "tb_th_mm": float(r.tb_th_mm), "tb_sp_mm": float(r.tb_sp_mm)}
    for k, name in enumerate(presets):
        t1 = time.perf_counter()
        vol = scan(labels, name, seed=seed + k, mode=mode, progress=False)
        t2 = time.perf_counter()
        vc = vol.crop_mm(*box)
        voi = cylinder_voi(vc, diameter_mm=d, height_mm=h, center_mm=center)
        a = vc.numpy()
        m = measure_study_protocol(vc, voi, study_window(name, a[voi]) if window == "per-modality" else STUDY_WINDOW)
        m["hu_p1_p99"] = [float(np.percentile(a, 1)), float(np.percentile(a, 99.5))]
        m["scan_seconds"] = round(t2 - t1, 1)
        m["measure_seconds"] = round(time.perf_counter() - t2, 1)
        rec[name] = m
    rec["seconds"] = round(time.perf_counter() - t0, 1)
    return rec


def summarize_real(records: list[dict[str, Any]], presets, reference: str = "micro-ct") -> dict[str, Any]:
    """Per preset and metric: mean, SD, ratio of means to the truth and to the ``reference`` scan (the study's
    MDCT / micro-CT ratio), and the mean of the per-region ratios; the checks: each MDCT preset's ratio to
    micro-CT within ±30 % of the study's (BV/TV ×1.78, Tb.Th ×3.09, Tb.Sp ×0.93) and in the same direction."""
    s: dict[str, Any] = {"n": len(records)}
    study = {k: STUDY["mdct"][k][0] / STUDY["micro_ct"][k][0] for k in METRICS}
    s["study_mdct_ratio"] = study
    for name in ["truth", *presets]:
        d = {}
        for k in METRICS:
            v = np.array([r[name][k] for r in records], float)
            t = np.array([r["truth"][k] for r in records], float)
            e = {"mean": float(np.mean(v)), "sd": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,
                 "ratio_to_truth": float(np.mean(v) / np.mean(t)), "pearson_r_truth": pearson_r(t, v)}
            if reference in presets and name != "truth":
                ref = np.array([r[reference][k] for r in records], float)
                e["ratio_to_" + reference] = float(np.mean(v) / np.mean(ref))
                e["mean_ratio_per_region_to_" + reference] = float(np.mean(v / ref))
                e["pearson_r_" + reference] = pearson_r(ref, v)
            d[k] = e
        s[name] = d
    checks: dict[str, bool] = {}
    if reference in presets:
        for name in (p for p in presets if p in MDCT_PRESETS):
            for k in METRICS:
                ours = s[name][k]["ratio_to_" + reference]
                checks[f"{name} {k} / {reference}: direction as the study"] = bool((ours - 1) * (study[k] - 1) > 0)
                checks[f"{name} {k} / {reference}: within ±30 % of the study's ×{study[k]:.2f}"] = bool(
                    abs(ours / study[k] - 1) <= 0.30)
    s["checks"] = checks
    return s


#: the study protocol as the real-anatomy part applies it (recorded in its settings)
PROTOCOL = (f"8 bit: the bone window L 500 / W 2000 HU for {', '.join(BONE_WINDOW_PRESETS)}, the VOI's own "
            f"{OWN_RANGE_PERCENTILES[0]:g}–{OWN_RANGE_PERCENTILES[1]:g} percentile range for the other presets "
            "(micro-CT); ImageJ IsoData of the VOI; BoneJ local thickness")
#: the same with the bone window for every preset (``window="bone"``)
BONE_PROTOCOL = "8 bit: the bone window L 500 / W 2000 HU for every preset; ImageJ IsoData of the VOI; BoneJ local thickness"


def real_part(data_dir, presets=REAL_PRESETS, mode: str = "fast", seed: int = 0, voi_mm=REAL_VOI_MM,
              records: list | None = None, on_record=None, progress=None, medium: str | None = None,
              erode_voxels: int = 0, window: str = "per-modality") -> dict[str, Any]:
    """The real-anatomy part: every DIDSR region in ``data_dir`` (:func:`real_regions`) through
    :func:`one_region` (``erode_voxels`` thins the struts first, 0 keeps the regions as they are; ``window``
    as there), then
    :func:`summarize_real`. ``records`` resumes a partial run (regions already in it are skipped);
    ``on_record(records)`` is called after each region (to save the state)."""
    if mode not in ("full", "fast"):
        raise ParameterError("mode", f"use full or fast, got {mode!r}")
    if window not in ("per-modality", "bone"):
        raise ParameterError("window", f"use per-modality or bone, got {window!r}")
    files = real_regions(data_dir)
    records = [] if records is None else records
    done = {r["region"] for r in records}
    for i, path in enumerate(files):
        name = path.stem.replace("Segmentation-grayscale-", "")
        if name not in done:
            records.append(one_region(path, presets, mode, seed + 100 * i, voi_mm, medium=medium,
                                      erode_voxels=erode_voxels, window=window))
            if on_record:
                on_record(records)
        if progress:
            progress(name)
    return {"settings": {"regions": len(files), "presets": list(presets), "mode": mode, "seed": seed,
                         "spacing_mm": REAL_SPACING_MM, "medium": medium or jacket_medium(), "jacket_mm": 1.0,
                         "voi": {"shape": "cylinder along z", "diameter_mm": voi_mm[0], "height_mm": voi_mm[1]},
                         "protocol": PROTOCOL if window == "per-modality" else BONE_PROTOCOL,
                         "erode_voxels": int(erode_voxels)},
            "regions": records, "summary": summarize_real(records, presets)}


# --------------------------------------------------------------------------------------------- item 1
def mtf_part(presets=MTF_PRESETS, progress=None) -> dict[str, Any]:
    """Edge MTF of each preset through the full simulation (noise-free)."""
    from trabecula.scanner import load_scanner, scan

    out = {}
    for name in presets:
        s = load_scanner(name)
        # an edge about 25 detector elements wide, sampled 4× finer than the scanner's element
        vox = min(0.025, s.geometry.pixel_u_iso_mm / 4, s.reconstruction.voxel_mm)
        width = max(3.0, 40 * s.reconstruction.voxel_mm)
        z = max(0.4, 4 * s.geometry.pixel_v_iso_mm)
        edge = slanted_edge(5.0, voxel_mm=vox, size_mm=(z, width, width), material="bone", background="water")
        t0 = time.perf_counter()
        rec = scan(edge, s, noise=False, progress=False)
        a = rec.numpy()
        nz, n, _ = a.shape
        c, h, hx = n // 2, int(0.25 * width / rec.spacing[1]), int(0.18 * width / rec.spacing[1])
        m = mtf_edge(a[max(0, nz // 2 - 1): nz // 2 + 2, c - h:c + h, c - hx:c + hx], rec.spacing)
        # read MTF50/MTF10 below the voxel grid's Nyquist only (beyond it the edge method sees aliases);
        # NaN = the MTF is still above that level at Nyquist
        from trabecula.quality import mtf_crossing

        below = m.frequency <= m.nyquist + 1e-9
        m50 = mtf_crossing(m.frequency[below], m.mtf[below], 0.5)
        m10 = mtf_crossing(m.frequency[below], m.mtf[below], 0.1)
        out[name] = {"mtf50_lp_mm": m50, "mtf10_lp_mm": m10, "nyquist_lp_mm": m.nyquist,
                     "frequency_lp_mm": m.frequency.tolist(),
                     "mtf": m.mtf.tolist(), "model_mtf": mtf_model(s, m.frequency).tolist(),
                     "voxel_mm": rec.spacing[1], "seconds": round(time.perf_counter() - t0, 1),
                     "edge": {"voxel_mm": vox, "size_mm": [z, width, width], "material": "bone in water", "angle_deg": 5.0}}
        if progress:
            progress(name)
    return out


def plot_mtf(mtf: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    colors = {"uhr-extremity": "#c0392b", "clinical-uhr": "#2471a3", "clinical-mdct": "#7f8c8d", "micro-ct": "#27ae60",
              "study-mdct": "#8e44ad"}
    for name, r in mtf.items():
        f, m = np.asarray(r["frequency_lp_mm"]), np.asarray(r["mtf"])
        keep = f <= 0.5 / r["voxel_mm"]  # up to the voxel grid's Nyquist (beyond it the edge method sees aliases)
        m10 = r["mtf10_lp_mm"]
        m10_txt = f"{m10:.2f}" if m10 == m10 else f"> {r['nyquist_lp_mm']:.1f} (Nyquist)"
        ax.plot(f[keep], m[keep], color=colors.get(name), lw=2,
                label=f"{name}: MTF50 {r['mtf50_lp_mm']:.2f}, MTF10 {m10_txt} lp/mm")
    ax.axhline(0.1, color="k", lw=0.6, ls=":")
    ax.set_xlabel("spatial frequency (lp/mm)")
    ax.set_ylabel("MTF")
    ax.set_ylim(0, 1.05)
    ax.set_xlim(0, max(0.5 / r["voxel_mm"] for r in mtf.values()) * 1.02)
    ax.set_title("Edge MTF through the full simulation (bone edge in water)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


# --------------------------------------------------------------------------------------------- item 2
def draw_targets(n: int, seed: int) -> list[dict[str, float]]:
    """Phantom targets around the study's micro-CT means with its SDs (clipped to ±2 SD)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        t = {}
        for k in METRICS:
            mu, sd = STUDY["micro_ct"][k]
            t[k] = float(mu + sd * np.clip(rng.standard_normal(), -2, 2))
        out.append(t)
    return out


def one_phantom(i: int, target: dict[str, float], presets, mode: str, size_mm: float, voxel_mm: float,
                voi_d: float, voi_h: float, seed: int, full_check: tuple[str, ...] = ()) -> dict[str, Any]:
    from trabecula.scanner import scan

    t0 = time.perf_counter()
    ph = trabecular_cube((size_mm,) * 3, voxel_mm, target["bv_tv"], target["tb_th_mm"], target["tb_sp_mm"],
                         seed=seed + i)
    labels, truth = jacketed(ph, 1.0)
    center = tuple(float(v) for v in labels.center_mm)
    rec: dict[str, Any] = {"index": i, "seed": seed + i, "target": target, "phantom_params": ph.params.get("foam"),
                           "phantom_seconds": round(time.perf_counter() - t0, 1)}
    voi = cylinder_voi(truth, diameter_mm=voi_d, height_mm=voi_h, center_mm=center)
    rec["truth"] = measure_binary_in_voi(truth.numpy().astype(bool), truth.spacing, voi)
    runs = [(name, mode, name) for name in presets]
    if mode == "fast":  # the same phantom through the full simulation, to check the fast path's morphometry
        runs += [(name, "full", f"{name} (full)") for name in full_check]
    for name, m_, key in runs:
        t1 = time.perf_counter()
        vol = scan(labels, name, seed=seed + 1000 * i + 7, mode=m_, progress=False)
        t2 = time.perf_counter()
        m = measure_scan(vol, center, voi_d, voi_h)
        m["scan_seconds"] = round(t2 - t1, 1)
        m["measure_seconds"] = round(time.perf_counter() - t2, 1)
        rec[key] = m
        if m_ == mode and name in CALIBRATED["presets"]:  # the same scan, segmented as micro-CT practice does
            rec[f"{key} [calibrated]"] = measure_scan_calibrated(vol, name, center, voi_d, voi_h)
    return rec


def summarize(records: list[dict[str, Any]], presets) -> dict[str, Any]:
    """Means, SDs, ratios to truth and Pearson R per scanner and metric; the checks of item 2."""
    s: dict[str, Any] = {"n": len(records)}
    truth = {k: np.array([r["truth"][k] for r in records]) for k in METRICS}
    s["truth"] = {k: {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0} for k, v in truth.items()}
    calibrated = [f"{p} [calibrated]" for p in presets if all(f"{p} [calibrated]" in r for r in records)]
    for name in list(presets) + calibrated:
        d = {}
        for k in METRICS:
            v = np.array([r[name][k] for r in records])
            d[k] = {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
                    "ratio_to_truth": float(v.mean() / truth[k].mean()),
                    "mean_abs_rel_error": float(np.mean(np.abs(v / truth[k] - 1))),
                    "pearson_r": pearson_r(truth[k], v)}
        s[name] = d
    checks: dict[str, Any] = {}
    for name in list(presets) + calibrated:  # the same targets for both segmentations
        if name.startswith("micro-ct"):
            checks[f"{name} within 5 % of truth (mean)"] = bool(
                all(abs(s[name][k]["ratio_to_truth"] - 1) <= 0.05 for k in METRICS))
        if name.startswith("uhr-extremity"):
            checks[f"{name} Tb.Th within 20 %"] = bool(abs(s[name]["tb_th_mm"]["ratio_to_truth"] - 1) <= 0.20)
    ref = {k: STUDY["mdct"][k][0] / STUDY["micro_ct"][k][0] for k in METRICS}
    for name in (p for p in MDCT_PRESETS if p in presets):
        s["study_mdct_ratio"] = ref
        for k in METRICS:
            ours = s[name][k]["ratio_to_truth"]
            same_dir = (ours - 1) * (ref[k] - 1) > 0
            checks[f"{name} {k}: direction as the study"] = bool(same_dir)
            checks[f"{name} {k}: ratio within ±30 % of the study's {ref[k]:.2f}"] = bool(abs(ours / ref[k] - 1) <= 0.30)
            if "micro-ct" in presets:  # the study's own ratio: MDCT over micro-CT, both scanned
                mc = float(np.mean([r[name][k] for r in records]) / np.mean([r["micro-ct"][k] for r in records]))
                s[name][k]["ratio_to_micro-ct"] = mc
                checks[f"{name} {k} / micro-ct: within ±30 % of the study's {ref[k]:.2f}"] = bool(abs(mc / ref[k] - 1) <= 0.30)
    full = {}
    for name in presets:
        pairs = [(r[name], r[f"{name} (full)"]) for r in records if f"{name} (full)" in r]
        if pairs:
            full[name] = {"n": len(pairs), **{k: {"fast_mean": float(np.mean([a[k] for a, _ in pairs])),
                                               "full_mean": float(np.mean([b[k] for _, b in pairs])),
                                               "mean_rel_diff": float(np.mean([a[k] / b[k] - 1 for a, b in pairs]))}
                                           for k in METRICS}}
    if full:
        s["fast_vs_full"] = full
    s["checks"] = checks
    return s


def plot_morphometry(records, presets, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"micro-ct": "#27ae60", "clinical-mdct": "#7f8c8d", "uhr-extremity": "#c0392b", "study-mdct": "#8e44ad"}
    labels = {"bv_tv": "BV/TV", "tb_th_mm": "Tb.Th (mm)", "tb_sp_mm": "Tb.Sp (mm)"}
    fig, axes = plt.subplots(1, 3, figsize=(12, 4), dpi=110)
    for ax, k in zip(axes, METRICS, strict=True):
        t = np.array([r["truth"][k] for r in records])
        allv = [t]
        for name in presets:
            v = np.array([r[name][k] for r in records])
            allv.append(v)
            ax.scatter(t, v, s=18, color=colors.get(name), label=f"{name} (R {pearson_r(t, v):.2f})")
        lo = min(float(np.min(a)) for a in allv) * 0.9
        hi = max(float(np.max(a)) for a in allv) * 1.05
        ax.plot([lo, hi], [lo, hi], "k:", lw=0.8)
        if k in STUDY["mdct"]:
            ax.scatter([STUDY["micro_ct"][k][0]], [STUDY["mdct"][k][0]], marker="*", s=120, color="k",
                       label="vertebra study: MDCT vs micro-CT")
        ax.set_xlabel(f"phantom truth {labels[k]}")
        ax.set_ylabel(f"measured {labels[k]}")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle(f"Morphometry from virtual scans of {len(records)} trabecular phantoms (IsoData in a cylindrical VOI)")
    return save_figure(fig, path)


def partial_volume_fraction(binary: Volume, spacing) -> Volume:
    """The bone fraction of each voxel of a coarser grid (z, y, x mm) laid over ``binary``: separable box
    average with fractional end weights, then linear sampling at the new voxel centres (units ``grey``, 0–1).
    What an ideal scanner with ``spacing`` voxels records — no blur, no noise."""
    from scipy import ndimage as ndi

    a = binary.numpy().astype(np.float32)
    for ax in range(3):
        w = spacing[ax] / binary.spacing[ax]
        h = int(np.ceil((w - 1) / 2))
        k = np.ones(2 * h + 1)
        k[[0, -1]] = (w - (2 * h - 1)) / 2 if h > 0 else 1.0
        a = ndi.convolve1d(a, k / k.sum(), axis=ax, mode="nearest")
    extent = [n * s for n, s in zip(binary.shape, binary.spacing, strict=True)]
    shape = [int(e // s) for e, s in zip(extent, spacing, strict=True)]
    coords = np.meshgrid(*[(np.arange(n) + 0.5) * s / s0 - 0.5
                           for n, s, s0 in zip(shape, spacing, binary.spacing, strict=True)], indexing="ij")
    frac = ndi.map_coordinates(a, coords, order=1, mode="nearest")
    origin = tuple(o - s0 / 2 + s / 2 for o, s0, s in zip(binary.origin, binary.spacing, spacing, strict=True))
    return Volume(frac.astype(np.float32), tuple(float(s) for s in spacing), origin, "grey")


def partial_volume(binary: Volume, spacing) -> Volume:
    """The exact structure as an ideal scanner with ``spacing`` voxels (z, y, x mm) sees it, thresholded at 50 %
    (:func:`partial_volume_fraction` ≥ 0.5 is bone). No blur, no noise: what is left is the measurement grid."""
    f = partial_volume_fraction(binary, spacing)
    return Volume((f.numpy() >= 0.5).astype(np.uint8), f.spacing, f.origin, "binary")


def grid_effect(records: list[dict[str, Any]], presets, size_mm: float, voxel_mm: float, voi_d: float,
                voi_h: float, k: int = 4, progress=None) -> dict[str, Any]:
    """Morphometry of the exact structure on each preset's reconstruction grid (:func:`partial_volume`) for the
    first ``k`` phantoms: the part of each scanner's bias that is the voxel size alone (IsoData, local
    thickness and BV/TV on a coarser grid), not blur or noise."""
    out: dict[str, Any] = {name: {"ratios": {m: [] for m in METRICS}} for name in presets}
    for r in records[:k]:
        ph = trabecular_cube((size_mm,) * 3, voxel_mm, None, None, None, seed=r["seed"], calibrate=False,
                             foam=FoamParams(**r["phantom_params"]))
        _, truth = jacketed(ph, 1.0)
        center = tuple(float(v) for v in truth.center_mm)
        for name in presets:
            rc = load_scanner(name).reconstruction
            g = partial_volume(truth, (rc.slice_mm, rc.voxel_mm, rc.voxel_mm))
            voi = cylinder_voi(g, diameter_mm=voi_d, height_mm=voi_h, center_mm=center)
            mres = measure_binary_in_voi(g.numpy().astype(bool), g.spacing, voi)
            for m in METRICS:
                out[name]["ratios"][m].append(mres[m] / r["truth"][m])
        if progress:
            progress()
    for name in presets:
        rc = load_scanner(name).reconstruction
        out[name]["grid_mm"] = [rc.slice_mm, rc.voxel_mm, rc.voxel_mm]
        out[name]["mean_ratio"] = {m: float(np.mean(v)) for m, v in out[name]["ratios"].items()}
    return {"n_phantoms": min(k, len(records)), "presets": out}


def mdct_variants() -> dict[str, Any]:
    """Clinical-MDCT variants for the sensitivity analysis: what the measured bias depends on."""
    base = load_scanner("clinical-mdct")
    m = base.geometry.magnification

    def elem(mm: float, **rec):
        return base.replace(geometry={"pixel_u_mm": mm * m, "pixel_v_mm": mm * m,
                                      "detector_cols": int(440 / mm), "detector_rows": int(38.4 / mm)},
                            reconstruction={"slice_thickness_mm": max(mm, 0.1), **rec})

    return {
        "preset (0.6 mm, standard)": base,
        "0.6 mm, shepp-logan": base.replace(reconstruction={"kernel": "shepp-logan"}),
        "0.6 mm, bone": base.replace(reconstruction={"kernel": "bone"}),
        "0.4 mm, bone": elem(0.4, kernel="bone"),
        "0.3 mm, bone": elem(0.3, kernel="bone"),
        "0.25 mm, bone": elem(0.25, kernel="bone"),
    }


def sensitivity(records: list[dict[str, Any]], size_mm: float, voxel_mm: float, voi_d: float, voi_h: float,
                k: int = 4, progress=None) -> dict[str, Any]:
    """Re-scan the first ``k`` phantoms (rebuilt from their stored foam parameters) with clinical-MDCT
    variants (fast path) and report each variant's MTF10 and mean ratio to truth per metric."""
    from trabecula.scanner import scan

    f = np.linspace(0, 5, 2001)
    variants = mdct_variants()
    res: dict[str, Any] = {name: {"ratios": {m: [] for m in METRICS}} for name in variants}
    for r in records[:k]:
        ph = trabecular_cube((size_mm,) * 3, voxel_mm, None, None, None, seed=r["seed"], calibrate=False,
                             foam=FoamParams(**r["phantom_params"]))
        labels, _ = jacketed(ph, 1.0)
        center = tuple(float(v) for v in labels.center_mm)
        for name, sc in variants.items():
            mres = measure_scan(scan(labels, sc, seed=r["seed"] + 99, mode="fast"), center, voi_d, voi_h)
            for m in METRICS:
                res[name]["ratios"][m].append(mres[m] / r["truth"][m])
        if progress:
            progress()
    for name, sc in variants.items():
        mt = mtf_model(sc, f)
        res[name]["mtf10_lp_mm"] = float(f[np.argmax(mt < 0.1)])
        res[name]["mean_ratio"] = {m: float(np.mean(v)) for m, v in res[name]["ratios"].items()}
    return {"n_phantoms": min(k, len(records)), "variants": res,
            "study_ratio": {m: STUDY["mdct"][m][0] / STUDY["micro_ct"][m][0] for m in METRICS}}


def plot_sensitivity(sens: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {"bv_tv": "BV/TV", "tb_th_mm": "Tb.Th", "tb_sp_mm": "Tb.Sp"}
    colors = {"bv_tv": "#2471a3", "tb_th_mm": "#c0392b", "tb_sp_mm": "#27ae60"}
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    v = sens["variants"]
    x = np.array([d["mtf10_lp_mm"] for d in v.values()])
    order = np.argsort(x)
    for m in METRICS:
        y = np.array([d["mean_ratio"][m] for d in v.values()])
        ax.plot(x[order], y[order], "o-", color=colors[m], label=f"{labels[m]} (twin)")
        ax.axhline(sens["study_ratio"][m], color=colors[m], ls="--", lw=1, label=f"{labels[m]} (vertebra study MDCT)")
    ax.axhline(1.0, color="k", lw=0.6, ls=":")
    ax.set_xlabel("MTF10 of the clinical-CT variant (lp/mm)")
    ax.set_ylabel("measured / truth")
    ax.set_title(f"Clinical-CT morphometry bias vs resolution ({sens['n_phantoms']} phantoms)")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def save_figure(fig, path: Path) -> Path:
    """Lay out ``fig``, write it as PNG (:func:`trabecula.render.output.save_png`, atomically, replacing an
    older one) and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    save_png(fig, path, force=True)
    plt.close(fig)
    return path


def write_state(path: Path, state: dict[str, Any]) -> None:
    """The study's state as indented JSON (NaN written as ``NaN``), atomically, replacing the previous one."""
    text = json.dumps(state, indent=2, default=lambda o: None if isinstance(o, float) and math.isnan(o) else str(o))
    with atomic_output(path, force=True) as tmp:
        tmp.write_text(text)


def check_settings(n: int, mode: str, size_mm: float, voi_diameter_mm: float, voi_height_mm: float) -> None:
    """:class:`ParameterError` for settings the study cannot run: ``mode`` not fast/full, ``n`` < 1, or a VOI
    that is not positive or does not fit in the cube (named ``voi_diameter``)."""
    if mode not in ("full", "fast"):
        raise ParameterError("mode", f"use full or fast, got {mode!r}")
    if n < 1:
        raise ParameterError("n", f"need at least one phantom, got {n}")
    if size_mm <= 0 or voi_diameter_mm <= 0 or voi_height_mm <= 0 or max(voi_diameter_mm, voi_height_mm) > size_mm:
        raise ParameterError("voi_diameter", f"the VOI ({voi_diameter_mm:g} × {voi_height_mm:g} mm) must be positive "
                                             f"and fit in the {size_mm:g} mm cube")


def run_study(out_dir: Path, n: int = 20, seed: int = 0, mode: str = "fast", size_mm: float = 6.0,
              voxel_mm: float = 0.025, voi_diameter_mm: float = 4.0, voi_height_mm: float = 4.0,
              presets=MORPH_PRESETS, mtf: bool = True, full_check: dict[str, int] | None = None,
              sensitivity_k: int = 4, console=None, real_data=None, real_presets=REAL_PRESETS) -> dict[str, Any]:
    """Run items 1 and 2; write ``twin_study.json``, ``mtf.png``, ``morphometry.png`` under ``out_dir``.

    With ``mode="fast"`` (default: the image-domain model, tested against the full simulation) the first
    ``full_check[preset]`` phantoms are also scanned through the full cone-beam simulation with that preset
    and the morphometry of both is compared (``summary.fast_vs_full``). With ``real_data`` (the folder of the
    DIDSR L1 regions) the real-anatomy part runs too (:func:`real_part`: ``real_presets`` in the study's
    protocol, MDCT / micro-CT ratios against the study's; key ``real_anatomy``). Settings the study cannot run
    are a :class:`ParameterError` (:func:`check_settings`, :func:`real_regions`) before any work."""
    check_settings(n, mode, size_mm, voi_diameter_mm, voi_height_mm)
    if real_data is not None:
        real_regions(real_data)
    full_check = {"clinical-mdct": n} if full_check is None else full_check
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jpath = out_dir / "twin_study.json"
    settings = {"n": n, "seed": seed, "mode": mode, "size_mm": size_mm, "voxel_mm": voxel_mm, "water_jacket_mm": 1.0,
                "voi": {"shape": "cylinder along z", "diameter_mm": voi_diameter_mm, "height_mm": voi_height_mm},
                "threshold": "IsoData (Ridler–Calvard, scikit-image) of the VOI values", "calibrated": CALIBRATED,
                "presets": list(presets),
                "full_check": full_check}
    state: dict[str, Any] = {}
    if jpath.exists():
        old = json.loads(jpath.read_text())
        if old.get("settings") == settings:
            state = old
    state["settings"] = settings
    state.setdefault("study_reference", STUDY)
    if mtf and "mtf" not in state:
        with progress_steps("twin study: edge MTF", len(MTF_PRESETS)) as adv:
            state["mtf"] = mtf_part(progress=lambda name: adv(1, f"edge MTF {name}"))
        plot_mtf(state["mtf"], out_dir / "mtf.png")
        write_state(jpath, state)
    records = state.setdefault("phantoms", [])
    targets = draw_targets(n, seed)
    with progress_steps("twin study: phantoms", n) as adv:
        adv(len(records))
        for i in range(len(records), n):
            t0 = time.perf_counter()
            fc = tuple(p for p, k in full_check.items() if i < k)
            records.append(one_phantom(i, targets[i], presets, mode, size_mm, voxel_mm, voi_diameter_mm,
                                       voi_height_mm, seed, fc))
            records[-1]["seconds"] = round(time.perf_counter() - t0, 1)
            state["summary"] = summarize(records, presets)
            write_state(jpath, state)
            adv(1, f"phantom {i + 1}/{n}")
            if console is not None:
                r = records[-1]
                console.print(f"phantom {i + 1}/{n} ({r['seconds']} s): truth " +
                              " ".join(f"{k} {r['truth'][k]:.3f}" for k in METRICS) + " | " +
                              " | ".join(f"{p} " + " ".join(f"{r[p][k]:.3f}" for k in METRICS) for p in presets))
    if records:
        state["summary"] = summarize(records, presets)
        plot_morphometry(records, presets, out_dir / "morphometry.png")
        write_state(jpath, state)
        if sensitivity_k > 0 and "clinical-mdct" in presets and "sensitivity" not in state:
            with progress_steps("twin study: clinical-CT sensitivity", min(sensitivity_k, len(records))) as adv:
                state["sensitivity"] = sensitivity(records, size_mm, voxel_mm, voi_diameter_mm, voi_height_mm,
                                                   sensitivity_k, progress=lambda: adv(1))
            plot_sensitivity(state["sensitivity"], out_dir / "mdct_sensitivity.png")
            write_state(jpath, state)
        if sensitivity_k > 0 and "grid_effect" not in state:
            with progress_steps("twin study: voxel-grid effect", min(sensitivity_k, len(records))) as adv:
                state["grid_effect"] = grid_effect(records, presets, size_mm, voxel_mm, voi_diameter_mm,
                                                   voi_height_mm, sensitivity_k, progress=lambda: adv(1))
    if real_data is not None:
        old_real = state.get("real_anatomy", {})
        same = (old_real.get("settings", {}).get("presets") == list(real_presets)
                and old_real.get("settings", {}).get("protocol") == PROTOCOL)
        recs = old_real.get("regions", []) if same else []
        n_reg = len(real_regions(real_data))

        def save(records):
            state["real_anatomy"] = {"regions": records}
            write_state(jpath, state)

        with progress_steps("twin study: real anatomy", n_reg) as adv:
            state["real_anatomy"] = real_part(real_data, real_presets, mode, seed, records=recs, on_record=save,
                                              progress=lambda name: adv(1, f"region {name}"))
        if console is not None:
            rs = state["real_anatomy"]["summary"]
            for k, v in rs["checks"].items():
                console.print(f"  {'ok' if v else 'not met'}  real anatomy: {k}")
    write_state(jpath, state)
    return state
