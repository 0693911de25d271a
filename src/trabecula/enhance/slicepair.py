"""Slice pairing of a clinical scan and a micro-CT, the vertebra study's method (seed 002 §2.3): SIFT + DTW.

1. Both scans' axial slices go to one in-plane pixel, half the clinical pixel (the study "doubled" the
   MDCT): the clinical slice by linear interpolation, the micro-CT smoothed to about the clinical resolution
   first; each scan is windowed to 8 bits by its own 1–99.5 % range (so an HU offset and scale do not
   matter).
2. SIFT keypoints per slice (OpenCV ``cv2.SIFT_create``); for every clinical slice i and micro-CT slice j,
   Lowe's ratio test (0.8) on the nearest-neighbour matches, then a RANSAC-verified in-plane similarity
   transform (``cv2.estimateAffinePartial2D``, 2-pixel reprojection error, scale within 0.8–1.25): the
   similarity ``S[i, j]`` is its number of inliers.
   The micro-CT is also smoothed along z to the clinical slice thickness (a Gaussian of that FWHM).
3. A monotone DTW path through ``1 − S/max_j S[i]`` (:func:`dtw_path`): each clinical slice takes one
   micro-CT slice, each step moves ``round(r) − 1 … round(r) + 1`` micro-CT slices per clinical slice, where
   ``r`` is the slice-interval ratio (about 2: the 1:2 ratio of the study), a penalty of ``lam · |step − r|``
   keeps the pace; start and end are free in the micro-CT (it may be cropped differently). Clinical slices
   with fewer than ``min_matches`` inliers on every micro-CT slice (medium only, or beyond the micro-CT) are
   left out.
4. In-plane alignment of each matched pair by its RANSAC transform (a running median over 5 neighbouring
   pairs, so one poor slice does not tilt its pair).

:func:`ncc_similarity` is the baseline: plain normalised cross-correlation of the centred slices, no
in-plane alignment, through the same DTW.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from trabecula.errors import InputError, ParameterError
from trabecula.io import atomic_output
from trabecula.volume import Volume


def _cv2():
    import cv2

    if not hasattr(cv2, "SIFT_create"):  # pragma: no cover - OpenCV >= 4.4 has SIFT in the main module
        raise ParameterError("opencv", "this OpenCV has no SIFT (cv2.SIFT_create); install opencv-python >= 4.4")
    return cv2


def to_pixel(slices: np.ndarray, spacing_yx: Sequence[float], pixel: float, sigma_mm: float = 0.0) -> np.ndarray:
    """Slices (n, y, x) resampled to square ``pixel`` mm from their box corner (edge-aligned), after an
    in-plane Gaussian of ``sigma_mm`` plus anti-aliasing when the pixel grows; linear interpolation."""
    sy, sx = (float(s) for s in spacing_yx)
    ny, nx = (int(round(slices.shape[1] * sy / pixel)), int(round(slices.shape[2] * sx / pixel)))
    sig = [0.0, math.hypot(sigma_mm / sy, max(0.0, (pixel / sy - 1) / 2)), math.hypot(sigma_mm / sx, max(0.0, (pixel / sx - 1) / 2))]
    a = slices.astype(np.float32)
    if sig[1] > 0 or sig[2] > 0:
        a = ndimage.gaussian_filter(a, sig, mode="nearest")
    iy = (np.arange(ny) + 0.5) * pixel / sy - 0.5
    ix = (np.arange(nx) + 0.5) * pixel / sx - 0.5
    out = np.empty((a.shape[0], ny, nx), np.float32)
    gy, gx = np.meshgrid(iy, ix, indexing="ij")
    for k in range(a.shape[0]):
        out[k] = ndimage.map_coordinates(a[k], [gy, gx], order=1, mode="nearest")
    return out


def to_uint8(a: np.ndarray) -> np.ndarray:
    """The volume windowed to 8 bits by its own 1–99.5 % range."""
    lo, hi = np.percentile(a, [1, 99.5])
    return np.clip((a - lo) * 255.0 / max(hi - lo, 1e-6), 0, 255).astype(np.uint8)


def sift_features(slices8: np.ndarray, contrast: float = 0.02) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """SIFT keypoint positions (k, 2 as x, y pixels) and descriptors (k, 128) of every 8-bit slice."""
    cv2 = _cv2()
    sift = cv2.SIFT_create(contrastThreshold=contrast)
    feats = []
    for s in slices8:
        kp, des = sift.detectAndCompute(s, None)
        feats.append((np.array([k.pt for k in kp], np.float32).reshape(-1, 2), des))
    return feats


def match_pair(fa: tuple[np.ndarray, np.ndarray | None], fb: tuple[np.ndarray, np.ndarray | None],
               ratio: float = 0.8, reproj_px: float = 2.0) -> tuple[int, np.ndarray | None]:
    """RANSAC-verified matches of two slices' SIFT features: (number of inliers, the 2×3 similarity
    transform mapping slice a's pixels to slice b's, or None)."""
    cv2 = _cv2()
    (pa, da), (pb, db) = fa, fb
    if da is None or db is None or len(da) < 2 or len(db) < 2:
        return 0, None
    good = [m[0] for m in cv2.BFMatcher(cv2.NORM_L2).knnMatch(da, db, k=2)
            if len(m) == 2 and m[0].distance < ratio * m[1].distance]
    if len(good) < 4:
        return 0, None
    src = pa[[m.queryIdx for m in good]]
    dst = pb[[m.trainIdx for m in good]]
    mat, inl = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=reproj_px,
                                           maxIters=500, confidence=0.99, refineIters=5)
    if mat is None or inl is None:
        return 0, None
    scale = math.hypot(mat[0, 0], mat[1, 0])
    if not 0.8 <= scale <= 1.25:
        return 0, None
    return int(inl.sum()), mat


def sift_similarity(clin8: np.ndarray, micro8: np.ndarray) -> tuple[np.ndarray, dict[tuple[int, int], np.ndarray]]:
    """``S[i, j]``: RANSAC inliers between clinical slice i and micro-CT slice j; and the transforms."""
    fc, fm = sift_features(clin8), sift_features(micro8)
    S = np.zeros((len(fc), len(fm)), np.float32)
    mats: dict[tuple[int, int], np.ndarray] = {}
    for i, a in enumerate(fc):
        if a[1] is None or len(a[1]) < 4:
            continue
        for j, b in enumerate(fm):
            n, m = match_pair(a, b)
            if n:
                S[i, j] = n
                mats[(i, j)] = m
    return S, mats


def ncc_similarity(clin: np.ndarray, micro: np.ndarray) -> np.ndarray:
    """The baseline's ``S[i, j]``: normalised cross-correlation of clinical slice i and micro-CT slice j on
    their common centred window (same pixel), without any in-plane alignment."""
    ny, nx = min(clin.shape[1], micro.shape[1]), min(clin.shape[2], micro.shape[2])

    def centred(a: np.ndarray) -> np.ndarray:
        y0, x0 = (a.shape[1] - ny) // 2, (a.shape[2] - nx) // 2
        c = a[:, y0:y0 + ny, x0:x0 + nx].reshape(a.shape[0], -1).astype(np.float64)
        c -= c.mean(axis=1, keepdims=True)
        return c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-9)

    return (centred(clin) @ centred(micro).T).astype(np.float32)


def dtw_path(S: np.ndarray, rows: Sequence[int], ratio: float, lam: float = 0.1) -> np.ndarray:
    """The monotone DTW path: for each of ``rows`` (increasing clinical slice indices) one micro-CT slice.

    Cost ``1 − S[i, j] / max_j S[i, j]`` (rows scaled to their own best match); from row ``a`` to the next
    row ``b`` (``g = b − a`` slices later) the micro-CT index advances by ``round(g·ratio) − 1 …
    round(g·ratio) + 1`` (at least 1) at an extra cost ``lam · |step − g·ratio|``; free start and end."""
    rows = list(rows)
    if not rows:
        return np.zeros(0, int)
    n_m = S.shape[1]
    sub = S[rows].astype(np.float64)
    mn = sub.min(axis=1, keepdims=True)
    cost = 1.0 - (sub - mn) / np.maximum(sub.max(axis=1, keepdims=True) - mn, 1e-9)
    D = np.full((len(rows), n_m), np.inf)
    back = np.zeros((len(rows), n_m), int)
    D[0] = cost[0]
    for k in range(1, len(rows)):
        g = rows[k] - rows[k - 1]
        centre = int(round(g * ratio))
        best = np.full(n_m, np.inf)
        arg = np.zeros(n_m, int)
        for s in range(max(1, centre - 1), centre + 2):
            prev = np.full(n_m, np.inf)
            prev[s:] = D[k - 1, :n_m - s] + lam * abs(s - g * ratio)
            better = prev < best
            best[better] = prev[better]
            arg[better] = s
        D[k] = cost[k] + best
        back[k] = arg
    path = np.zeros(len(rows), int)
    path[-1] = int(np.argmin(D[-1]))
    for k in range(len(rows) - 1, 0, -1):
        path[k - 1] = path[k] - back[k, path[k]]
    return path


@dataclass
class SlicePairing:
    """A slice pairing: the clinical slices used, their micro-CT partners, the in-plane 2×3 transforms
    (clinical → micro-CT pixels at ``pixel_mm``), the inliers of each pair and the similarity matrix."""

    rows: np.ndarray
    partners: np.ndarray
    transforms: np.ndarray
    inliers: np.ndarray
    similarity: np.ndarray
    pixel_mm: float
    ratio: float
    method: str

    def summary(self) -> dict:
        return {"method": self.method, "pairs": int(len(self.rows)), "pixel_mm": self.pixel_mm,
                "slice_ratio": self.ratio, "median_inliers": float(np.median(self.inliers)) if len(self.inliers) else 0.0,
                "clinical_slices": self.rows.tolist(), "micro_slices": self.partners.tolist()}


def _check(clinical: Volume, micro: Volume) -> None:
    for v, name in ((clinical, "clinical"), (micro, "micro")):
        if min(v.shape) < 4:
            raise InputError(name, f"is {'2-D' if 1 in v.shape else 'too thin'} (shape {tuple(v.shape)}); "
                                   "slice pairing needs a stack of at least 4 slices of at least 4×4 pixels")


def clinical_slice_thickness(clinical: Volume) -> float:
    """The clinical scan's slice thickness (mm): its provenance's ``slice_thickness_mm`` (DICOM), else its
    scanner preset's, else twice its slice interval."""
    t = clinical.provenance.extra.get("slice_thickness_mm")
    if t is None and clinical.provenance.scanner:
        try:
            from trabecula.scanner.config import load_scanner

            t = load_scanner(clinical.provenance.scanner).reconstruction.slice_thickness_mm
        except Exception:  # noqa: BLE001 - a scanner name that is not a preset: fall back
            t = None
    return float(t) if t else 2.0 * float(clinical.spacing[0])


def regularise_to_ratio(rows: np.ndarray, path: np.ndarray, ratio: float) -> np.ndarray:
    """The DTW path held to the slice-interval ratio the two headers give: ``round(c + ratio · row)``, the
    offset ``c`` the median of ``path − ratio · row`` (robust to the path's outliers). A DTW path advances by
    whole slices, so with a ratio such as 1.92 its rounding drifts by up to a slice and more between
    corrections; the headers know the ratio exactly, the matches give the offset."""
    rows = np.asarray(rows, float)
    c = float(np.median(np.asarray(path, float) - ratio * rows))
    return np.rint(c + ratio * rows).astype(int)


def pair_slices(clinical: Volume, micro: Volume, *, method: str = "sift", min_matches: int = 8, lam: float = 1.0,
                min_pairs: int = 4, blur_mm: float | None = None, slice_thickness_mm: float | None = None,
                regularise: bool = True) -> SlicePairing:
    """Pair each clinical axial slice with a micro-CT slice (SIFT + DTW, or the ``ncc`` baseline) and align
    it in-plane; returns a :class:`SlicePairing`.

    ``blur_mm``: the Gaussian σ that brings the micro-CT to about the clinical resolution (default the
    clinical pixel); the micro-CT is also smoothed along z to the clinical ``slice_thickness_mm`` (a Gaussian
    of that FWHM; default :func:`clinical_slice_thickness`) before matching. With ``method="sift"`` fewer than ``min_pairs`` clinical slices having ``min_matches``
    inliers raises :class:`InputError` (not the same specimen, or no overlap) — never a silent pairing.
    ``regularise`` (default) holds the DTW path to the headers' slice-interval ratio
    (:func:`regularise_to_ratio`); the in-plane transforms are those found at the regularised partners."""
    if method not in ("sift", "ncc"):
        raise ParameterError("--method", f"use sift or ncc, got {method!r}")
    _check(clinical, micro)
    pixel = min(clinical.spacing[1:]) / 2
    blur = min(clinical.spacing[1:]) if blur_mm is None else float(blur_mm)
    c = to_pixel(np.asarray(clinical.numpy()), clinical.spacing[1:], pixel)
    thick = clinical_slice_thickness(clinical) if slice_thickness_mm is None else float(slice_thickness_mm)
    if not (math.isfinite(thick) and thick >= 0):
        raise ParameterError("--slice-thickness", f"must be a finite length >= 0 mm, got {thick!r}")
    mz = ndimage.gaussian_filter1d(np.asarray(micro.numpy(), np.float32), thick / 2.355 / micro.spacing[0], axis=0,
                                   mode="nearest") if thick > 0 else np.asarray(micro.numpy())
    m = to_pixel(mz, micro.spacing[1:], pixel, sigma_mm=blur)
    ratio = clinical.spacing[0] / micro.spacing[0]
    if method == "sift":
        S, mats = sift_similarity(to_uint8(c), to_uint8(m))
        rows = [i for i in range(S.shape[0]) if S[i].max() >= min_matches]
        if len(rows) < min_pairs:
            raise InputError("micro", f"only {len(rows)} clinical slices have {min_matches} RANSAC-verified SIFT matches "
                                      f"on any micro-CT slice (at least {min_pairs} needed): not the same specimen, or no overlap")
        path = dtw_path(S, rows, ratio, lam)
        if regularise:
            path = np.clip(regularise_to_ratio(np.asarray(rows), path, ratio), 0, S.shape[1] - 1)
        tr = np.stack([mats.get((i, j), np.full((2, 3), np.nan)) for i, j in zip(rows, path, strict=True)])
        inl = np.array([S[i, j] for i, j in zip(rows, path, strict=True)])
        tr[inl < min_matches] = np.nan
        med = np.nanmedian(tr, axis=0) if np.isfinite(tr).any() else np.array([[1.0, 0, 0], [0, 1.0, 0]])
        smooth = np.empty_like(tr)
        for k in range(len(tr)):
            win = tr[max(0, k - 2):k + 3]
            smooth[k] = np.nanmedian(win, axis=0) if np.isfinite(win).any() else med
    else:
        S = ncc_similarity(c, m)
        rows = list(range(S.shape[0]))
        path = dtw_path(S, rows, ratio, lam)
        if regularise:
            path = np.clip(regularise_to_ratio(np.asarray(rows), path, ratio), 0, S.shape[1] - 1)
        cy, cx = (np.asarray(m.shape[1:]) - np.asarray(c.shape[1:])) / 2
        smooth = np.repeat(np.array([[[1.0, 0, cx], [0, 1.0, cy]]]), len(rows), axis=0)
        inl = np.zeros(len(rows))
    return SlicePairing(np.asarray(rows), path, smooth, inl, S, pixel, ratio, method)


def aligned_targets(micro: Volume, pairing: SlicePairing, shape_yx: Sequence[int]) -> np.ndarray:
    """The micro-CT partner of each paired clinical slice, aligned in-plane onto the clinical slice's grid at
    ``pairing.pixel_mm`` (``shape_yx`` pixels), sharp (anti-aliased only), float32 HU."""
    import cv2

    a = np.asarray(micro.numpy())
    sharp = to_pixel(a[pairing.partners], micro.spacing[1:], pairing.pixel_mm)
    out = np.empty((len(pairing.rows), *shape_yx), np.float32)
    for k, t in enumerate(pairing.transforms):
        out[k] = cv2.warpAffine(sharp[k], t.astype(np.float64), (int(shape_yx[1]), int(shape_yx[0])),
                                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
    return out


def write_slice_pairs(clinical: Volume, micro: Volume, pairing: SlicePairing, out_dir: str | Path, specimen: str = "specimen",
                      split: str = "train", force: bool = False) -> Path:
    """A pairs folder that ``trabecula train`` reads (``manifest.json`` + one ``.npz`` shard): ``input`` the
    paired clinical slices on their own grid, ``target`` their aligned micro-CT partners on the grid 2× finer
    in-plane (edge-aligned). Returns the manifest path."""
    out = Path(out_dir)
    manifest = out / "manifest.json"
    if manifest.exists() and not force:
        raise InputError(manifest, "already exists (use --force to overwrite)")
    out.mkdir(parents=True, exist_ok=True)
    sp = tuple(float(s) for s in clinical.spacing)
    inp = np.asarray(clinical.numpy())[pairing.rows]
    t_sp = (sp[0], pairing.pixel_mm, pairing.pixel_mm)
    tgt = aligned_targets(micro, pairing, (2 * inp.shape[1], 2 * inp.shape[2]))
    arrs = {"input": inp, "target": tgt}
    arrs = {k: np.clip(np.rint(v), -32768, 32767).astype(np.int16) for k, v in arrs.items()}
    shard = f"{specimen}.npz"
    with atomic_output(out / shard, force=True) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrs)
    rec = {"id": specimen, "source": "user", "seed": 0, "shard": shard, "backend": "user", "split": split,
           "shape_input": list(inp.shape), "shape_target": list(tgt.shape), "pairing": pairing.summary()}
    m = {"format": "trabecula-pairs/1", "created_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
         "backend": "user", "backend_note": f"slice pairing ({pairing.method} + DTW) of a clinical scan and a micro-CT",
         "input_spacing": list(sp), "target_spacing": list(t_sp), "scale": 2, "split_mode": "by-specimen",
         "seed": 0, "specimens": [rec]}
    with atomic_output(manifest, force=True) as tmp:
        Path(tmp).write_text(json.dumps(m, indent=1))
    return manifest
