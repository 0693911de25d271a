"""Cortical bone: dual-threshold autocontouring (after Buie et al. 2007) and the cortical parameters.

Two functions, for an HU (or calibrated density, or grey) volume whose slices run along z — the long axis of
a radius, tibia or phalanx, as HR-pQCT and extremity CT acquire them:

:func:`autocontour` → :class:`Compartments`
    The periosteal mask (the whole bone), the endosteal mask (the trabecular compartment, or the medullary
    cavity of a shaft), the cortex (periosteal minus endosteal) and the cortical pores.
:func:`cortical_parameters` → :class:`CorticalResult`
    Tt.Ar, Ct.Ar, Tb.Ar (mm², mean over the slices), Ct.Th (mm, local thickness of the cortex compartment,
    3-D and per slice in 2-D), Ct.Po (pore volume / cortex compartment volume), Ct.Pm (periosteal perimeter),
    per volume and per slice.

The method (Buie et al. 2007, reimplemented from the paper's description; lengths in mm, converted with the
volume's spacing, anisotropic voxels handled: every disk is a disk in mm):

1. **Smoothing** — a Gaussian of ``sigma_mm`` (default 0.06 mm, about Buie's σ = 0.8 voxels at HR-pQCT's
   0.082 mm) per axis in voxels from the spacing. More smoothing shrinks the pores (the half-way level of a
   blurred small hole lies inside it).
2. **Thresholds** — two of them, hence *dual*: the *periosteal* threshold separates bone from the soft tissue
   around it (the outer surface), the *endosteal* (cortical) threshold separates the cortex from the marrow
   inside it (the inner surface and the pores). Default ``"auto"``: each is half-way between the cortex level
   and the level on its other side, measured in the scan (below) — the half-maximum edge, which puts a
   blurred step edge where the true edge is for any symmetric blur. Published HR-pQCT thresholds are in
   density (mg HA/cm³) after the scanner's own calibration and bone's HU depends on the tube voltage (cortex
   reads about 2900–3600 HU at 65 kVp on the twin's UHR-CT), so no fixed HU default transfers between
   scanners; pass ``thresholds=(periosteal, endosteal)`` in the volume's units to fix them.
   *Levels*: an Otsu split of the smoothed volume (values above the 1st percentile + 10 % of the range, so
   that air around a specimen does not pull it) gives a first bone mask; the cortex level is the median of
   the smoothed values deeper than ``0.15 mm`` inside that mask in the plane (the plateau of a cortex thicker
   than about four voxels; struts and trabecular partial volume do not reach it), the soft-tissue level the
   median in a ring 0.3–1.0 mm outside the filled bone, the marrow level the median below the Otsu split
   inside it. **Fallback**: when a level cannot be measured (no plateau: a cortex thinner than about four
   voxels; no ring; no marrow) the Otsu threshold is used for that threshold and ``threshold_method`` says so.
3. **Periosteal contour** — threshold at the periosteal threshold; 3-D connected components (26-connected);
   the bone(s) chosen by ``bone`` (``"largest"``, ``"all"``, or the rank by size, 0 = largest: on a wrist
   slab 0 is the radius, 1 the ulna); per bone and slice a closing (dilation by ``close_mm``, hole filling,
   erosion by ``close_mm``) that seals pores and gaps of the cortex without filling real concavities.
4. **Endosteal contour** — inside the periosteal mask, the voxels below the endosteal threshold (marrow,
   trabecular spaces, pores); an opening by ``open_mm`` (erosion, the largest 3-D component per bone — the
   marrow cavity —, dilation back) detaches the pores from the cavity; a closing by ``endo_close_mm`` and
   hole filling absorb the trabeculae (struts thinner than about ``2 × endo_close_mm`` standing on the
   endosteal surface or lying inside); the result is clipped to the periosteal mask.
5. **Cortex and pores** (Burghardt et al. 2010) — cortex = periosteal and not endosteal; pores = cortex
   voxels below the endosteal threshold, in 3-D components of at least ``min_pore_voxels`` voxels (smaller
   ones are noise).

Conventions: Tt.Ar, Ct.Ar and Tb.Ar are per-slice areas (voxel count × dy·dx) averaged over the slices that
hold the bone. Ct.Th is the mean of the local thickness (Hildebrand & Rüegsegger 1997; the project's exact
engine, :func:`trabecula.morphometry.thickness.local_thickness`, ``"plain"`` mode, image border
``"continue"`` so that the cortex goes on above and below the slab) over the **whole cortex compartment**
(pores included, as the compartment is what is contoured); ``ct_th_2d_mm`` is the same in 2-D, per slice
(disks in the slice plane), averaged over the cortex voxels of every slice. Ct.Po = pore voxels / cortex
compartment voxels. Ct.Pm is the length of the periosteal contour (marching squares at the mask's
half-level, lengths in mm) averaged over the slices. Values that are undefined (no cortex, no marrow) are NaN
with a message in ``warnings``.

Known limits: a cortex thinner than about three voxels is blurred below its true level by any scanner's
resolution; the half-way threshold then reads it thinner (and its pores vanish), and the auto threshold falls
back to Otsu. Pores smaller than about two voxels are not resolved. The local thickness of a digitised
shell reads a little high (``"plain"`` mode: randomly oriented plates +3 to +14 % at 4–12 voxels; see
``docs/morphometry.md``); ``docs/cortical.md`` gives the accuracy measured on the twin's phalanx and wrist.

References
----------
Buie HR, Campbell GM, Klinck RJ, MacNeil JA, Boyd SK (2007) Automatic segmentation of cortical and trabecular
compartments based on a dual threshold technique for in vivo micro-CT bone analysis. Bone 41:505–515.
Burghardt AJ, Buie HR, Laib A, Majumdar S, Boyd SK (2010) Reproducibility of direct quantitative measures of
cortical bone microarchitecture of the distal radius and tibia by HR-pQCT. Bone 47:519–528.
Laib A, Rüegsegger P (1999) Calibration of trabecular bone structure measurements of in vivo
three-dimensional peripheral quantitative computed tomography with 28-µm-resolution microcomputed
tomography. Bone 24:35–39.
Hildebrand T, Rüegsegger P (1997) A new method for the model-independent assessment of thickness in
three-dimensional images. J Microsc 185:67–75.
Otsu N (1979) A threshold selection method from gray-level histograms. IEEE Trans Syst Man Cybern 9:62–66.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import edt
import numpy as np
from scipy import ndimage as ndi

from trabecula.errors import ParameterError
from trabecula.morphometry.thickness import local_thickness
from trabecula.volume import Volume, as_spacing

NAN = float("nan")
#: Units :func:`autocontour` refuses: nothing to threshold in them.
_REFUSED_UNITS = ("binary", "label", "mm")
_PER_SLICE_KEYS = ("z_mm", "tt_ar_mm2", "ct_ar_mm2", "tb_ar_mm2", "ct_th_mm", "ct_po")


@dataclass(eq=False)
class Compartments:
    """The cortical and trabecular compartments of a bone, on the input grid (bool arrays (z, y, x)).

    Attributes
    ----------
    periosteal : ndarray of bool
        Inside the periosteal (outer) contour: the whole bone, cortex and marrow.
    endosteal : ndarray of bool
        Inside the endosteal (inner) contour: the trabecular compartment (or medullary cavity).
    cortex : ndarray of bool
        The cortex compartment, ``periosteal & ~endosteal`` (pores included).
    pores : ndarray of bool
        Cortical pores: cortex voxels below the endosteal threshold (components of at least
        ``min_pore_voxels``).
    spacing : (dz, dy, dx)
        Voxel size in mm.
    thresholds : (periosteal, endosteal)
        The thresholds used, in the volume's units.
    threshold_method : str
        How they were chosen (``"fixed"``, ``"auto (half-way)"``, or which one fell back to Otsu).
    levels : dict
        The measured levels (``cortex``, ``soft_tissue``, ``marrow``, ``otsu``; NaN where not measured).
    n_bones : int
        How many bones were contoured.
    settings : dict
        The method's parameters (mm), JSON-able.
    warnings : list of str
        What could not be done as asked.
    """

    periosteal: np.ndarray
    endosteal: np.ndarray
    cortex: np.ndarray
    pores: np.ndarray
    spacing: tuple[float, float, float]
    thresholds: tuple[float, float]
    threshold_method: str = "fixed"
    levels: dict[str, float] = field(default_factory=dict)
    n_bones: int = 1
    settings: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass
class CorticalResult:
    """Cortical parameters of one bone (or the chosen bones) in a volume; lengths in mm, NaN where undefined.

    ``per_slice`` holds one dict per slice that contains bone, with the keys ``z_mm`` (world z of the slice
    centre), ``tt_ar_mm2``, ``ct_ar_mm2``, ``tb_ar_mm2``, ``ct_th_mm`` (2-D local thickness) and ``ct_po``.
    """

    tt_ar_mm2: float = NAN
    ct_ar_mm2: float = NAN
    tb_ar_mm2: float = NAN
    ct_ar_tt_ar: float = NAN
    ct_th_mm: float = NAN
    ct_th_sd_mm: float = NAN
    ct_th_2d_mm: float = NAN
    ct_th_annulus_mm: float = NAN
    ct_po: float = NAN
    ct_po_v_mm3: float = NAN
    ct_v_mm3: float = NAN
    ct_pm_mm: float = NAN
    tb_pm_mm: float = NAN
    n_slices: int = 0
    threshold_periosteal: float = NAN
    threshold_endosteal: float = NAN
    threshold_method: str = ""
    n_bones: int = 0
    mode: str = "plain"
    spacing_mm: tuple[float, float, float] | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    per_slice: list[dict[str, float]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (NaN kept as float NaN — ``json.dumps`` writes ``NaN``)."""
        d: dict[str, Any] = {}
        for k in self.__dataclass_fields__:
            v = getattr(self, k)
            if isinstance(v, np.generic):
                v = v.item()
            elif isinstance(v, tuple):
                v = [float(x) for x in v]
            d[k] = v
        d["per_slice"] = [{k: float(r[k]) for k in _PER_SLICE_KEYS} for r in self.per_slice]
        d["settings"] = dict(self.settings)
        d["warnings"] = list(self.warnings)
        return d


# ----------------------------------------------------------------------------------------------------- input


def _as_input(vol: Any, spacing: float | Sequence[float] | None, units: str | None) -> tuple[np.ndarray, tuple, Volume | None]:
    """(float32 array (z, y, x), spacing, the Volume or None) with the checks of :func:`autocontour`."""
    if isinstance(vol, Volume):
        for name, value in (("spacing", spacing), ("units", units)):
            if value is not None:
                raise ParameterError(name, "a Volume carries its own spacing and units; pass them with an array only")
        if vol.units in _REFUSED_UNITS:
            raise ParameterError("vol", f"units {vol.units!r}: autocontouring needs an HU, density or grey image "
                                        "(a segmentation cannot give the two thresholds)")
        arr, sp = vol.numpy(), vol.spacing
    elif isinstance(vol, np.ndarray):
        if spacing is None:
            raise ParameterError("spacing", "an array needs its voxel size in mm (spacing=)")
        if units is not None and units in _REFUSED_UNITS:
            raise ParameterError("units", f"{units!r}: autocontouring needs an HU, density or grey image")
        if vol.dtype == bool:
            raise ParameterError("vol", "a boolean array is a segmentation; autocontouring needs an HU, density or grey image")
        arr, sp, vol = vol, as_spacing(spacing), None
    else:
        raise ParameterError("vol", f"expected a Volume or a NumPy array, got {type(vol).__name__}")
    a = np.asarray(arr)
    if a.ndim != 3:
        raise ParameterError("vol", f"expected a 3-D volume (z, y, x), got shape {a.shape}")
    if min(a.shape[1:]) < 8:
        raise ParameterError("vol", f"slices of {a.shape[1]}×{a.shape[2]} voxels are too small to contour")
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise ParameterError("vol", f"expected numeric values, got {a.dtype}")
    a = a.astype(np.float32, copy=False)
    if not np.isfinite(a).all():
        raise ParameterError("vol", "holds NaN or infinite values")
    return a, tuple(float(s) for s in sp), vol


def _length(value: float, name: str, allow_zero: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ParameterError(name, f"expected a length in mm, got {value!r}") from None
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise ParameterError(name, f"must be a {'non-negative' if allow_zero else 'positive'} length in mm, got {value!r}")
    if v > 50:
        raise ParameterError(name, f"{v:g} mm is not a plausible length here; lengths are in mm, not µm or voxels")
    return v


# ------------------------------------------------------------------------------------------ 2-D morphology


def _dist_out(mask2: np.ndarray, sp2: tuple[float, float]) -> np.ndarray:
    """Distance (mm) from each voxel outside ``mask2`` to the nearest voxel inside (0 inside)."""
    if not mask2.any():
        return np.full(mask2.shape, np.inf, np.float32)
    return edt.edt(np.ascontiguousarray(~mask2, dtype=np.uint8), anisotropy=sp2, black_border=False)


def _dist_in(mask2: np.ndarray, sp2: tuple[float, float]) -> np.ndarray:
    """Distance (mm) from each voxel inside ``mask2`` to the nearest voxel outside (the border is outside)."""
    return edt.edt(np.ascontiguousarray(mask2, dtype=np.uint8), anisotropy=sp2, black_border=True)


def _dilate(m: np.ndarray, r: float, sp2) -> np.ndarray:
    return m | (_dist_out(m, sp2) <= r) if r > 0 else m


def _erode(m: np.ndarray, r: float, sp2) -> np.ndarray:
    return m & (_dist_in(m, sp2) > r) if r > 0 else m


def _pad(r: float, sp2) -> int:
    return int(math.ceil(r / min(sp2))) + 2


def _close_fill(m: np.ndarray, r: float, sp2) -> np.ndarray:
    """Closing by a disk of radius ``r`` mm with the holes filled in between (Buie's dilate–fill–erode)."""
    p = _pad(r, sp2)
    big = np.pad(m, p)
    big = ndi.binary_fill_holes(_dilate(big, r, sp2))
    return _erode(big, r, sp2)[p:-p, p:-p]


def _per_slice(fn, vol3: np.ndarray, *args) -> np.ndarray:
    out = np.zeros(vol3.shape, bool)
    for k in range(vol3.shape[0]):
        if vol3[k].any():
            out[k] = fn(vol3[k], *args)
    return out


def _largest(mask: np.ndarray) -> np.ndarray:
    lab, n = ndi.label(mask, structure=np.ones((3, 3, 3), bool))
    if n <= 1:
        return mask.copy()
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return lab == int(np.argmax(sizes))


# --------------------------------------------------------------------------------------------- thresholds


def _otsu(values: np.ndarray) -> float:
    from skimage.filters import threshold_otsu

    if values.size == 0 or float(values.min()) == float(values.max()):
        raise ParameterError("vol", "is constant; no threshold separates bone from soft tissue")
    return float(threshold_otsu(values))


def _levels(s: np.ndarray, sp: tuple) -> dict[str, float]:
    """Otsu split and the cortex, soft-tissue and marrow levels of the smoothed volume (NaN if not measured)."""
    sp2 = sp[1:]
    step = max(1, int(round((s.size / 4e6) ** (1 / 3))))
    sub = s[::step, ::step, ::step].ravel()
    lo, hi = np.percentile(sub, [1, 99.9])
    keep = sub[sub > lo + 0.1 * (hi - lo)]
    t0 = _otsu(keep if keep.size and keep.min() < keep.max() else sub)
    bone = s > t0
    cortex_vals, soft_vals, marrow_vals = [], [], []
    zs = np.flatnonzero(bone.any(axis=(1, 2)))
    for k in zs[::max(1, len(zs) // 16)]:  # at most ~16 slices: the levels do not vary much along z
        b = bone[k]
        deep = _dist_in(b, sp2) > 0.15
        cortex_vals.append(s[k][deep])
        filled = ndi.binary_fill_holes(b)
        d = _dist_out(filled, sp2)
        soft_vals.append(s[k][(d > 0.3) & (d <= 1.0)])
        marrow_vals.append(s[k][filled & ~b])
    out = {"otsu": t0}
    for name, vals in (("cortex", cortex_vals), ("soft_tissue", soft_vals), ("marrow", marrow_vals)):
        v = np.concatenate(vals) if vals else np.zeros(0, np.float32)
        out[name] = float(np.median(v)) if v.size >= 50 else NAN
    return out


def _thresholds(s: np.ndarray, sp: tuple, thresholds: Any, warnings: list[str]) -> tuple[float, float, str, dict]:
    if thresholds != "auto":
        try:
            tp, te = (float(t) for t in thresholds)
        except (TypeError, ValueError):
            raise ParameterError("thresholds", f"expected 'auto' or (periosteal, endosteal) in the volume's units, "
                                               f"got {thresholds!r}") from None
        if not (math.isfinite(tp) and math.isfinite(te)):
            raise ParameterError("thresholds", f"must be finite, got {thresholds!r}")
        lo, hi = float(s.min()), float(s.max())
        for name, t in (("periosteal", tp), ("endosteal", te)):
            if not lo < t < hi:
                raise ParameterError("thresholds", f"the {name} threshold {t:g} lies outside the image's values "
                                                   f"[{lo:.4g}, {hi:.4g}] (wrong units?)")
        return tp, te, "fixed", {}
    lv = _levels(s, sp)
    c, t0 = lv["cortex"], lv["otsu"]
    if not math.isfinite(c) or c <= t0:
        warnings.append("no cortical plateau (a cortex thinner than about four voxels?): both thresholds are Otsu's "
                        f"({t0:.4g})")
        return t0, t0, "otsu (fallback: no cortical plateau)", lv
    method, out = [], []
    for name, other in (("periosteal", lv["soft_tissue"]), ("endosteal", lv["marrow"])):
        if math.isfinite(other) and other < t0:
            out.append(0.5 * (c + other))
            method.append("half-way")
        else:
            out.append(t0)
            method.append("otsu")
            warnings.append(f"the {name} threshold fell back to Otsu ({t0:.4g}): no "
                            f"{'soft tissue around' if name == 'periosteal' else 'marrow inside'} the bone was measured")
    how = "auto (half-way)" if method == ["half-way"] * 2 else f"auto (periosteal {method[0]}, endosteal {method[1]})"
    return out[0], out[1], how, lv


# ----------------------------------------------------------------------------------------------- contours


def _choose_bones(low: np.ndarray, bone: Any, sp: tuple) -> list[np.ndarray]:
    lab, n = ndi.label(low, structure=np.ones((3, 3, 3), bool))
    if n == 0:
        raise ParameterError("vol", "no bone found above the periosteal threshold")
    sizes = np.bincount(lab.ravel())[1:]
    order = np.argsort(sizes)[::-1]
    # bones: components of at least 10 % of the largest (smaller ones are noise, loose fragments)
    order = [int(i) for i in order if sizes[i] >= 0.1 * sizes[order[0]]]
    if isinstance(bone, str):
        if bone == "largest":
            picks = order[:1]
        elif bone == "all":
            picks = order
        else:
            raise ParameterError("bone", f"use 'largest', 'all' or a rank by size (0 = largest), got {bone!r}")
    elif isinstance(bone, (int, np.integer)) and not isinstance(bone, bool):
        if not 0 <= int(bone) < len(order):
            raise ParameterError("bone", f"rank {bone} asked for, but {len(order)} bone(s) found (0 = largest)")
        picks = [order[int(bone)]]
    else:
        raise ParameterError("bone", f"use 'largest', 'all' or a rank by size (0 = largest), got {bone!r}")
    return [lab == i + 1 for i in picks]


def _smooth(a: np.ndarray, sigma_mm: float, sp: tuple) -> np.ndarray:
    if sigma_mm == 0:
        return a
    return ndi.gaussian_filter(a, [sigma_mm / d for d in sp], mode="nearest", truncate=3.0)


def autocontour(
    vol: Volume | np.ndarray,
    *,
    spacing: float | Sequence[float] | None = None,
    units: str | None = None,
    thresholds: str | Sequence[float] = "auto",
    bone: str | int = "largest",
    sigma_mm: float = 0.06,
    close_mm: float = 0.5,
    open_mm: float = 0.15,
    endo_close_mm: float = 0.5,
    min_pore_voxels: int = 5,
) -> Compartments:
    """Periosteal and endosteal contours, cortex and pores of a bone by dual-threshold autocontouring.

    After Buie et al. (2007), with the pores of Burghardt et al. (2010); the steps, defaults and their
    reasons are in the module docstring. Slices run along z (the bone's long axis); lengths are in mm.

    Parameters
    ----------
    vol : Volume or ndarray (z, y, x)
        An HU, calibrated density or grey image (not a segmentation: units ``binary``, ``label`` or ``mm``
        are refused). An array needs ``spacing``.
    spacing : float or (dz, dy, dx), optional
        Voxel size in mm, for an array only.
    units : str, optional
        The array's units (for the check above), for an array only.
    thresholds : "auto" or (periosteal, endosteal)
        ``"auto"`` (default): each half-way between the cortex level and the soft-tissue (periosteal) or
        marrow (endosteal) level measured in the smoothed scan, with Otsu as the fallback. Or two numbers in
        the volume's units, applied to the smoothed image.
    bone : "largest", "all" or int
        Which bone: the largest 3-D component (default), all bones (components of at least 10 % of the
        largest), or the rank by size (0 = largest; on a wrist slab 0 is the radius, 1 the ulna).
    sigma_mm : float
        Gaussian smoothing before thresholding (0 for none).
    close_mm : float
        Radius of the periosteal closing (seals cortical pores and breaks).
    open_mm : float
        Radius of the opening that separates the marrow cavity from the cortical pores.
    endo_close_mm : float
        Radius of the endosteal closing (absorbs trabeculae attached to the endosteal surface).
    min_pore_voxels : int
        Smallest pore kept (3-D component, voxels); smaller ones are taken as noise.

    Returns
    -------
    Compartments

    Raises
    ------
    ParameterError
        Naming the parameter at fault: wrong units, a length that is not a positive number of mm, a bone
        rank that does not exist, no bone found.

    Examples
    --------
    >>> import numpy as np
    >>> z, y, x = np.mgrid[:3, -40:41, -40:41] * 0.1                      # 0.1 mm voxels
    >>> r = np.hypot(y, x)
    >>> hu = np.where(r <= 3.0, np.where(r > 2.0, 2000.0, 0.0), 50.0)     # a tube: R 3 mm, cortex 1 mm
    >>> c = autocontour(hu, spacing=0.1, units="HU", sigma_mm=0)
    >>> round(float(c.cortex[1].sum() * 0.01 / (np.pi * (9 - 4))), 2)    # Ct.Ar / π(R² − r²), digitised disks
    0.99
    """
    a, sp, _ = _as_input(vol, spacing, units)
    sigma = _length(sigma_mm, "sigma_mm", allow_zero=True)
    r_close = _length(close_mm, "close_mm", allow_zero=True)
    r_open = _length(open_mm, "open_mm", allow_zero=True)
    r_endo = _length(endo_close_mm, "endo_close_mm", allow_zero=True)
    if isinstance(min_pore_voxels, bool) or not isinstance(min_pore_voxels, (int, np.integer)) or min_pore_voxels < 1:
        raise ParameterError("min_pore_voxels", f"must be a whole number >= 1, got {min_pore_voxels!r}")
    sp2 = sp[1:]
    warnings: list[str] = []
    s = _smooth(a, sigma, sp)
    tp, te, how, levels = _thresholds(s, sp, thresholds, warnings)
    bones = _choose_bones(s > tp, bone, sp)
    peri = np.zeros(a.shape, bool)
    endo = np.zeros(a.shape, bool)
    for b in bones:
        p = _per_slice(_close_fill, b, r_close, sp2)
        marrow = p & (s < te)
        core = _largest(_per_slice(_erode, marrow, r_open, sp2)) if marrow.any() else marrow
        if core.any():
            core = _per_slice(_dilate, core, r_open, sp2) & marrow
            core = _per_slice(_close_fill, core, r_endo, sp2) & p
        peri |= p
        endo |= core
    cortex = peri & ~endo
    pores = cortex & (s < te)
    if pores.any():
        lab, n = ndi.label(pores, structure=np.ones((3, 3, 3), bool))
        sizes = np.bincount(lab.ravel())
        keep = sizes >= int(min_pore_voxels)
        keep[0] = False
        pores = keep[lab]
    if not endo.any():
        warnings.append("no marrow found inside the bone: the endosteal compartment is empty")
    settings = {"sigma_mm": sigma, "close_mm": r_close, "open_mm": r_open, "endo_close_mm": r_endo,
                "min_pore_voxels": int(min_pore_voxels), "bone": bone if isinstance(bone, str) else int(bone)}
    return Compartments(peri, endo, cortex, pores, sp, (float(tp), float(te)), how,
                        {k: float(v) for k, v in levels.items()}, len(bones), settings, warnings)


# ---------------------------------------------------------------------------------------------- parameters


def _perimeter(mask2: np.ndarray, sp2) -> float:
    """Length (mm) of the outline(s) of a 2-D mask: marching squares at level 0.5 of the mask smoothed by a
    Gaussian of one voxel (the staircase of a binary outline would add up to ~8 %), scaled by the spacing."""
    from skimage.measure import find_contours

    total = 0.0
    smooth = ndi.gaussian_filter(np.pad(mask2, 4).astype(np.float32), 1.0, mode="constant")
    for c in find_contours(smooth, 0.5):
        d = np.diff(c, axis=0) * np.asarray(sp2)
        total += float(np.hypot(d[:, 0], d[:, 1]).sum())
    return total


def cortical_parameters(
    vol: Volume | np.ndarray,
    compartments: Compartments | None = None,
    *,
    spacing: float | Sequence[float] | None = None,
    units: str | None = None,
    mode: str = "plain",
    **contour: Any,
) -> CorticalResult:
    """Cortical parameters of a bone: Tt.Ar, Ct.Ar, Tb.Ar, Ct.Th (3-D and per slice), Ct.Po, Ct.Pm.

    Parameters
    ----------
    vol : Volume or ndarray (z, y, x)
        The image (as for :func:`autocontour`); with ``compartments`` given it supplies only the grid, origin
        and source.
    compartments : Compartments, optional
        From :func:`autocontour`; computed with ``**contour`` when not given.
    spacing, units : optional
        For an array input, as in :func:`autocontour`.
    mode : {"plain", "bonej", "subvoxel"}
        Local-thickness mode for Ct.Th (default ``"plain"``, the definition on voxel centres).
    **contour
        Keyword arguments of :func:`autocontour` (``thresholds``, ``bone``, ``sigma_mm``, …).

    Returns
    -------
    CorticalResult
        Per-volume means and one ``per_slice`` row per slice that holds bone (conventions in the module
        docstring). Undefined values are NaN with a message in ``warnings``.
    """
    if compartments is None:
        compartments = autocontour(vol, spacing=spacing, units=units, **contour)
        a_shape, sp = compartments.periosteal.shape, compartments.spacing
    else:
        if contour:
            raise ParameterError(sorted(contour)[0], "autocontour options cannot be applied to given compartments")
        if not isinstance(compartments, Compartments):
            raise ParameterError("compartments", f"expected a Compartments, got {type(compartments).__name__}")
        a_shape = tuple(np.shape(vol.data if isinstance(vol, Volume) else vol))
        sp = tuple(float(s) for s in (vol.spacing if isinstance(vol, Volume) else as_spacing(spacing)))  # type: ignore[arg-type]
        if a_shape != compartments.periosteal.shape:
            raise ParameterError("compartments", f"shape {compartments.periosteal.shape} differs from the volume's {a_shape}")
        if not np.allclose(sp, compartments.spacing):
            raise ParameterError("compartments", f"spacing {compartments.spacing} differs from the volume's {sp}")
    z0 = float(vol.origin[0]) if isinstance(vol, Volume) else 0.0
    c = compartments
    warnings = list(c.warnings)
    res = CorticalResult(threshold_periosteal=c.thresholds[0], threshold_endosteal=c.thresholds[1],
                         threshold_method=c.threshold_method, n_bones=c.n_bones, mode=mode, spacing_mm=tuple(sp),
                         settings=dict(c.settings), warnings=warnings,
                         source=(str(vol.provenance.source) if isinstance(vol, Volume) and vol.provenance.source
                                 else None))
    px = sp[1] * sp[2]
    zs = np.flatnonzero(c.periosteal.any(axis=(1, 2)))
    if zs.size == 0:
        warnings.append("no bone in any slice: every parameter is NaN")
        return res
    if zs.size < a_shape[0]:
        warnings.append(f"{a_shape[0] - zs.size} of {a_shape[0]} slices hold no bone; means are over the other {zs.size}")
    res.n_slices = int(zs.size)
    if c.cortex.any():
        lt3 = local_thickness(c.cortex, sp, mode=mode)
        v3 = lt3[c.cortex]
        res.ct_th_mm = float(v3.mean())
        res.ct_th_sd_mm = float(v3.std(ddof=1)) if v3.size > 1 else NAN
        del lt3
    else:
        warnings.append("the cortex compartment is empty: Ct.Th and Ct.Po are NaN")
    rows = []
    lt2_sum, lt2_n, pms, pes = 0.0, 0, [], []
    for k in zs:
        cx = c.cortex[k]
        n_ct, n_tt, n_tb = int(cx.sum()), int(c.periosteal[k].sum()), int(c.endosteal[k].sum())
        th2 = NAN
        if n_ct:
            lt2 = local_thickness(cx[None], sp, mode=mode)[0][cx]
            th2 = float(lt2.mean())
            lt2_sum += float(lt2.sum())
            lt2_n += lt2.size
        pms.append(_perimeter(c.periosteal[k], sp[1:]))
        pes.append(_perimeter(c.endosteal[k], sp[1:]))
        rows.append({"z_mm": z0 + float(k) * sp[0], "tt_ar_mm2": n_tt * px, "ct_ar_mm2": n_ct * px,
                     "tb_ar_mm2": n_tb * px, "ct_th_mm": th2,
                     "ct_po": float(c.pores[k].sum()) / n_ct if n_ct else NAN})
    res.per_slice = rows
    res.tt_ar_mm2 = float(np.mean([r["tt_ar_mm2"] for r in rows]))
    res.ct_ar_mm2 = float(np.mean([r["ct_ar_mm2"] for r in rows]))
    res.tb_ar_mm2 = float(np.mean([r["tb_ar_mm2"] for r in rows]))
    res.ct_ar_tt_ar = res.ct_ar_mm2 / res.tt_ar_mm2 if res.tt_ar_mm2 > 0 else NAN
    res.ct_th_2d_mm = lt2_sum / lt2_n if lt2_n else NAN
    res.ct_pm_mm = float(np.mean(pms))
    res.tb_pm_mm = float(np.mean(pes))
    mid = 0.5 * (res.ct_pm_mm + res.tb_pm_mm)
    res.ct_th_annulus_mm = res.ct_ar_mm2 / mid if mid > 0 and res.tb_pm_mm > 0 else NAN
    n_cortex = int(c.cortex.sum())
    voxel = sp[0] * px
    res.ct_v_mm3 = n_cortex * voxel
    res.ct_po_v_mm3 = int(c.pores.sum()) * voxel
    res.ct_po = res.ct_po_v_mm3 / res.ct_v_mm3 if n_cortex else NAN
    if res.tb_ar_mm2 == 0:
        warnings.append("no trabecular compartment (Tb.Ar 0): the bone is all cortex at this threshold")
    return res


__all__ = ["Compartments", "CorticalResult", "autocontour", "cortical_parameters"]
