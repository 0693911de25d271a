"""``measure``: all trabecular morphometry of a volume in a VOI, as one :class:`MorphometryResult`.

Definitions (all inside the VOI; lengths in mm):

* **BV/TV** — bone voxels / VOI voxels.
* **Tb.Th** — mean (SD n−1, max) of the local thickness over the bone voxels (:mod:`.thickness`).
* **Tb.Sp** — the same for the marrow (the complement of bone) voxels.
* **Tb.N** — ``1 / (Tb.Th + Tb.Sp)`` (mm⁻¹): one trabecula plus one space per unit length, model-free.
  The plate-model value ``BV/TV / Tb.Th`` (Parfitt 1983) is reported as ``tb_n_plate_per_mm``.
* **Conn.D** — ``(1 − Δχ) / V_VOI`` (mm⁻³), Euler characteristic with the Odgaard–Gundersen edge correction
  (:mod:`.connectivity`).
* **SMI** and the concave surface fraction (:mod:`.smi`).
* **DA** — ``1 − λmin/λmax`` (BoneJ) and ``λmax/λmin`` of the MIL fabric tensor (Scanco), main direction
  (:mod:`.anisotropy`).

A ``binary`` volume is measured as is (nonzero = bone); HU/grey/attenuation volumes are segmented first
(:func:`.segment`). Values that are undefined for the input (no bone in the VOI, all bone, …) are NaN with a
message in ``warnings`` — never a crash or a silent zero.
"""

from __future__ import annotations

import math
import warnings as _warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trabecula.errors import ParameterError
from trabecula.morphometry.anisotropy import degree_of_anisotropy
from trabecula.morphometry.connectivity import connectivity
from trabecula.morphometry.smi import structure_model_index
from trabecula.morphometry.thickness import local_thickness, resolve_mode, thickness_stats
from trabecula.morphometry.threshold import clean_segmentation, segment, smoothed_values
from trabecula.morphometry.upsample import check_factor, upsample_mask, upsample_volume
from trabecula.morphometry.voi import parse_auto_spec, specimen_envelope, voi_from_spec
from trabecula.volume import Volume, as_spacing

METRICS = ("bvtv", "tbth", "tbsp", "tbn", "connd", "smi", "da")
#: How the VOI bounds the inscribed spheres: ``spacing`` (default) — Tb.Sp's spheres stay inside the VOI (the
#: marrow or air outside it is not marrow of this VOI); ``all`` — Tb.Th's too (as if the image were cropped and
#: masked to the VOI); ``none`` — spheres of both phases may grow beyond the VOI (the earlier convention,
#: which BoneJ users measuring an uncropped image get).
VOI_BOUNDS = ("spacing", "all", "none")
#: A parameter is "apparent" (resolution-limited) when the voxel or the scan's resolution (FWHM) exceeds this
#: fraction of the measured Tb.Th or Tb.Sp, whichever is smaller.
APPARENT_FRACTION = 0.5
#: A whole-volume VOI whose specimen envelope covers less than this fraction of the image gets a warning.
MIN_ENVELOPE_FRACTION = 0.8
NAN = float("nan")


@dataclass
class MorphometryResult:
    """All morphometric parameters of one volume in one VOI (lengths in mm; NaN where undefined)."""

    bv_tv: float = NAN
    tb_th_mm: float = NAN
    tb_th_sd_mm: float = NAN
    tb_th_max_mm: float = NAN
    tb_sp_mm: float = NAN
    tb_sp_sd_mm: float = NAN
    tb_sp_max_mm: float = NAN
    tb_n_per_mm: float = NAN
    conn_d_per_mm3: float = NAN
    euler_char: float = NAN
    smi: float = NAN
    smi_concave_fraction: float = NAN
    da: float = NAN
    da_scanco: float = NAN
    main_direction: tuple[float, float, float] | None = None
    threshold: float = NAN
    threshold_method: str = "binary"
    voi: str = "whole volume"
    voi_volume_mm3: float = NAN
    mode: str = "plain"
    thickness_map: Volume | None = None
    spacing_map: Volume | None = None
    warnings: list[str] = field(default_factory=list)
    # further facts
    bv_mm3: float = NAN
    tv_mm3: float = NAN
    tb_n_plate_per_mm: float = NAN
    delta_chi: float = NAN
    conn_correction: str = ""
    bs_mm2: float = NAN
    border: str = "continue"
    spacing_mm: tuple[float, float, float] | None = None
    upsample: int = 1
    source: str | None = None
    voi_bounds: str = "spacing"
    segmentation_steps: list[str] = field(default_factory=list)
    resolution_mm: float = NAN
    resolution_source: str = "unknown"
    apparent: bool | None = None
    segmentation: Volume | None = None
    # density (with a calibration) and cortical parameters (with ``cortical``)
    voi_vbmd_mg_cm3: float = NAN
    tt_vbmd_mg_cm3: float = NAN
    tb_vbmd_mg_cm3: float = NAN
    ct_vbmd_mg_cm3: float = NAN
    calibration: str | None = None
    cortical: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (maps excluded; NaN kept as float NaN — ``json.dumps`` writes ``NaN``)."""
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        for k in ("thickness_map", "spacing_map", "segmentation"):
            d.pop(k, None)
        for k, v in list(d.items()):
            if isinstance(v, np.generic):
                d[k] = v.item()
            elif isinstance(v, tuple):
                d[k] = [float(x) for x in v]
        d["warnings"] = list(self.warnings)
        d["segmentation_steps"] = list(self.segmentation_steps)
        return d


def as_volume(vol_or_array: Any, spacing: float | Sequence[float] | None = None,
              units: str | None = None) -> Volume:
    """The volume :func:`measure` works on: a :class:`Volume` as it is, or an array ``(z, y, x)`` with its
    ``spacing`` (mm, required) on a grid whose voxel ``[0, 0, 0]`` is centred at the world origin.

    An array's ``units`` default to ``"binary"`` for a boolean array or an integer array holding only 0 and 1
    (nonzero = bone), ``"grey"`` for anything else (segmented first). A Volume carries its own spacing and units:
    passing either with a Volume is a :class:`ParameterError`.
    """
    if isinstance(vol_or_array, Volume):
        for name, value in (("spacing", spacing), ("units", units)):
            if value is not None:
                raise ParameterError(name, "a Volume carries its own spacing and units; pass them with an array only")
        return vol_or_array
    if not isinstance(vol_or_array, np.ndarray):
        raise ParameterError("vol", f"expected a Volume or a NumPy array, got {type(vol_or_array).__name__}")
    if spacing is None:
        raise ParameterError("spacing", "an array needs its voxel size in mm (spacing=)")
    return Volume(vol_or_array, as_spacing(spacing), (0.0, 0.0, 0.0), units or _array_units(vol_or_array))


def _array_units(a: np.ndarray) -> str:
    """``"binary"`` for a boolean array or an integer array of 0s and 1s, else ``"grey"``."""
    if a.dtype == bool:
        return "binary"
    if np.issubdtype(a.dtype, np.integer) and a.size and int(a.min()) >= 0 and int(a.max()) <= 1:
        return "binary"
    return "grey"


def _box_slices(mask: np.ndarray) -> tuple[slice, slice, slice] | None:
    """Index slices when ``mask`` is exactly a box (its bounding box), else None."""
    sl = []
    for ax in range(3):
        other = tuple(a for a in range(3) if a != ax)
        nz = np.nonzero(mask.any(axis=other))[0]
        sl.append(slice(int(nz[0]), int(nz[-1]) + 1))
    sl_t = tuple(sl)
    n_box = int(np.prod([s.stop - s.start for s in sl_t]))
    return sl_t if int(np.count_nonzero(mask)) == n_box else None  # type: ignore[return-value]


def wanted_metrics(metrics: Sequence[str]) -> list[str]:
    """The metrics to compute, lower-cased and checked against :data:`METRICS`; Tb.N brings Tb.Th and Tb.Sp."""
    wanted = [m.lower() for m in metrics]
    bad = [m for m in wanted if m not in METRICS]
    if bad:
        raise ParameterError("metrics", f"unknown metric(s) {', '.join(bad)}; choose from {', '.join(METRICS)}")
    if "tbn" in wanted:
        wanted += [m for m in ("tbth", "tbsp") if m not in wanted]
    return wanted


def measure(
    vol_or_array: Volume | np.ndarray,
    *,
    spacing: float | Sequence[float] | None = None,
    units: str | None = None,
    threshold: str | float = "isodata",
    voi: Any = None,
    bonej: bool = False,
    mode: str | None = None,
    upsample: int = 1,
    smooth_sigma_mm: float | None = None,
    metrics: Sequence[str] = METRICS,
    maps: bool = False,
    border: str = "continue",
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    voi_bounds: str = "spacing",
    closing_mm: float | None = None,
    largest_component: bool = False,
    keep_segmentation: bool = False,
    resolution_mm: float | None = None,
    calibration: Any = None,
    cortical: bool | str | int = False,
) -> MorphometryResult:
    """Trabecular morphometry of a volume inside a VOI.

    Parameters
    ----------
    vol_or_array : Volume or ndarray (z, y, x)
        ``binary`` (measured as is) or HU/grey/attenuation (segmented with ``threshold`` first). An array needs
        ``spacing``; its grid has voxel ``[0, 0, 0]`` centred at the world origin (:func:`as_volume`).
    spacing : float or (dz, dy, dx), optional
        Voxel size in mm of an array input (required for arrays, refused with a Volume).
    units : str, optional
        Units of an array input (:data:`trabecula.volume.UNITS`); default ``"binary"`` for a boolean or 0/1
        integer array, ``"grey"`` otherwise.
    threshold : "isodata" | "otsu" | float
        Segmentation threshold (ignored for binary input); automatic thresholds use the VOI's voxels.
    voi : None | str | ndarray | Volume | path
        None = whole volume; a spec ``"cylinder:d=15,h=5[,center=z,y,x][,axis=..]"`` or
        ``"box:z0,y0,x0,z1,y1,x1"`` (mm, world); a mask array/Volume or a mask file on the same grid.
    bonej : bool
        Local thickness in BoneJ's conventions (see :func:`.local_thickness`); shorthand for ``mode="bonej"``.
    mode : {"plain", "bonej", "subvoxel"}, optional
        Local-thickness mode (:func:`.local_thickness`). Default ``"plain"``: the definition on voxel centres,
        the closest to true thickness on real, randomly oriented structure; ``"bonej"``: BoneJ's conventions;
        ``"subvoxel"``: exact on lattice-aligned shapes, high on oriented structure (``docs/morphometry.md``).
    upsample : int
        Sub-voxel segmentation (:mod:`.upsample`): the (smoothed) grey values of the VOI's bounding box, plus a
        margin as wide as the largest inscribed sphere of the coarse segmentation, are interpolated trilinearly
        ``upsample``× per axis and thresholded there (the threshold is computed on the original VOI values),
        and every metric is measured on that finer grid (maps too). Not for binary input. 1 (default) = off.
    smooth_sigma_mm : float, optional
        Gaussian smoothing before thresholding.
    metrics : subset of ("bvtv", "tbth", "tbsp", "tbn", "connd", "smi", "da")
        What to compute (Tb.N needs Tb.Th and Tb.Sp, which are then computed too).
    maps : bool
        Keep the thickness and spacing maps (Volumes in mm, 0 outside the phase/VOI).
    border : "continue" | "background"
        Image border treatment for local thickness (default: the structure continues, as BoneJ).
    seed : int
        Seed of the MIL line grid (DA).
    progress : callable(description), optional
        Called before each step.
    voi_bounds : {"spacing", "all", "none"}
        Whether the VOI bounds the inscribed spheres (:data:`VOI_BOUNDS`): by default Tb.Sp's spheres stay
        inside the VOI (marrow or air outside the VOI is not this VOI's marrow); ``"all"`` bounds Tb.Th's too;
        ``"none"`` lets both grow beyond it (the earlier convention).
    closing_mm, largest_component : optional clean-ups of the segmentation (:func:`.clean_segmentation`):
        a closing by a ball of ``closing_mm`` mm, then the largest 26-connected component.
    keep_segmentation : bool
        Keep the binary measured (``result.segmentation``, a ``binary`` Volume on the grid measured on).
    resolution_mm : float, optional
        The scan's resolution (FWHM, mm) when known from a measured edge; default: from the provenance
        (:func:`trabecula.scanner.resolution.scan_resolution`). With the voxel size it decides whether the
        results are "apparent" (:data:`APPARENT_FRACTION`).
    calibration : Calibration or path, optional
        HU → mg HA/cm³ (:mod:`.density`; a fitted or stored scanner calibration). Adds the VOI's vBMD, and with
        ``cortical`` Tt.vBMD, Tb.vBMD and Ct.vBMD of the periosteal, trabecular and cortical compartments.
    cortical : bool, "largest", "all" or int
        Dual-threshold autocontouring (:func:`.cortical.autocontour`: the largest bone by default, ``"all"``, or
        the bone of that size rank) and the cortical parameters (``result.cortical``: Tt.Ar, Ct.Ar, Tb.Ar,
        Ct.Th, Ct.Po per volume and per slice). Without a ``voi`` the trabecular parameters are then measured
        in the trabecular compartment (inside the endosteal contour), as HR-pQCT reports them.

    A volume whose spacing was assumed by the reader (no spacing in its header) is refused: lengths in mm
    would be guesses.
    """
    vol = as_volume(vol_or_array, spacing, units)
    _require_known_spacing(vol)
    if voi_bounds not in VOI_BOUNDS:
        raise ParameterError("voi_bounds", f"use one of {', '.join(VOI_BOUNDS)}, got {voi_bounds!r}")
    wanted = wanted_metrics(metrics)
    step = progress or (lambda desc: None)
    mode = resolve_mode(mode, bonej)
    upsample = check_factor(upsample)
    if upsample > 1 and vol.units == "binary":
        raise ParameterError("upsample", "a binary volume holds no sub-voxel information: upsample the grey/HU "
                                         "volume it was segmented from")
    res = MorphometryResult(mode=mode, border=border, spacing_mm=tuple(vol.spacing), upsample=upsample,
                            source=vol.provenance.source, voi_bounds=voi_bounds)
    scan = vol

    cal = _calibration_of(calibration, vol)
    comp = None
    if cortical is not False and cortical is not None:
        step("cortical compartments")
        comp = _cortical(vol, cortical, res)
    step("VOI")
    auto_closing = _auto_closing(voi)
    if voi is None and comp is not None:
        mask = np.ascontiguousarray(comp.endosteal)
        voi = mask
        res.voi = "trabecular compartment (autocontour)"
        _record_voi_volume(vol, mask, res)
    elif auto_closing is None:
        mask = _voi_mask(vol, voi, res)
    else:
        mask = _auto_voi(vol, threshold, smooth_sigma_mm, auto_closing, res)
        voi = mask
    if cal is not None:
        _densities(scan, cal, mask, comp, res)
    step("segmentation")
    if vol.units == "binary":
        bone = np.ascontiguousarray(vol.numpy() != 0)
        res.threshold, res.threshold_method = NAN, "binary input"
    else:
        vol, bone, mask = _segment(vol, voi, mask, threshold, smooth_sigma_mm, upsample, border, res, step)
    if closing_mm is not None or largest_component:
        bone, res.segmentation_steps = clean_segmentation(bone, vol.spacing, closing_mm, largest_component)
    if keep_segmentation:
        res.segmentation = vol.with_data(bone.astype(np.uint8), units="binary",
                                         step="segmentation measured: " + res.threshold_method
                                         + "".join(f", {s}" for s in res.segmentation_steps))
    no_bone, all_bone = _bone_volume_fraction(bone, mask, vol, res)
    if mask is None and "tbsp" in wanted and not (no_bone or all_bone):
        _warn_if_specimen_in_medium(bone, vol.spacing, res)
    if "tbth" in wanted and not no_bone:
        _thickness(vol, bone if (mask is None or voi_bounds != "all") else bone & mask, mask, "Tb.Th", maps,
                   res, step)
    if "tbsp" in wanted and not all_bone:
        marrow = ~bone if (mask is None or voi_bounds == "none") else ~bone & mask
        _thickness(vol, marrow, mask, "Tb.Sp", maps, res, step)
    if "tbn" in wanted:
        _trabecular_number(res)
    _resolution_honesty(scan, resolution_mm, res)
    if "connd" in wanted:
        step("connectivity")
        if not (no_bone or all_bone):
            _connectivity(vol, bone, mask, res)
    if "smi" in wanted and not (no_bone or all_bone):
        step("SMI")
        _structure_model_index(vol, bone, mask, res)
    if "da" in wanted and not (no_bone or all_bone):
        step("anisotropy (MIL)")
        _anisotropy(vol, bone, mask, seed, res)
    return res


def _calibration_of(calibration: Any, vol: Volume):
    """The :class:`.density.Calibration` to use (loaded from a path), checked against the volume's units."""
    if calibration is None:
        return None
    from trabecula.morphometry.density import Calibration, load_calibration

    cal = calibration if isinstance(calibration, Calibration) else load_calibration(calibration)
    if vol.units != "HU":
        raise ParameterError("calibration", f"a density calibration applies to HU volumes; this one is {vol.units}")
    return cal


def _cortical(vol: Volume, cortical: bool | str | int, res: MorphometryResult):
    """Autocontour the scan and record its cortical parameters in ``res.cortical``; returns the compartments."""
    from trabecula.morphometry.cortical import autocontour, cortical_parameters

    bone = "largest" if cortical is True else cortical
    comp = autocontour(vol, bone=bone)
    cr = cortical_parameters(vol, comp, mode=res.mode)
    res.cortical = cr.to_dict()
    res.warnings.extend(f"cortical: {w}" for w in cr.warnings)
    return comp


def _densities(scan: Volume, cal, mask: np.ndarray | None, comp, res: MorphometryResult) -> None:
    """vBMD (mg HA/cm³) of the VOI, and of the compartments when autocontoured (Tt, Tb, Ct)."""
    from trabecula.morphometry.density import mean_density

    sign = "−" if cal.intercept < 0 else "+"
    res.calibration = (f"mg HA/cm³ = {cal.slope:.5g}·HU {sign} {abs(cal.intercept):.5g}"
                       + (f" ({cal.method}, {cal.source})" if cal.source else f" ({cal.method})"))
    whole = np.ones(scan.shape, bool) if mask is None else mask
    res.voi_vbmd_mg_cm3 = mean_density(scan, whole, cal)
    if comp is not None:
        for name, m in (("tt", comp.periosteal), ("tb", comp.endosteal), ("ct", comp.cortex)):
            if np.any(m):
                setattr(res, f"{name}_vbmd_mg_cm3", mean_density(scan, m, cal))


def _require_known_spacing(vol: Volume) -> None:
    """Refuse a volume whose reader assumed its spacing (no spacing in the file): every length would be a guess."""
    if vol.provenance.extra.get("spacing_assumed"):
        raise ParameterError("--input-spacing", f"{vol.provenance.source} has no voxel spacing in its metadata; "
                                                "morphometry in mm needs it: declare it with --input-spacing "
                                                "(read_volume(..., spacing=) in Python)")


def _auto_closing(voi: Any) -> float | None:
    """The closing radius (mm) of an ``auto`` VOI spec, None for any other VOI."""
    if isinstance(voi, str) and voi.strip().lower().split(":", 1)[0] == "auto":
        return parse_auto_spec(voi.strip())
    return None


def _auto_voi(vol: Volume, threshold: str | float, smooth_sigma_mm: float | None, closing: float,
              res: MorphometryResult) -> np.ndarray:
    """``voi="auto"``: the specimen's envelope (:func:`.specimen_envelope`) of a first segmentation over the
    whole image; the measurement's threshold is then computed inside the envelope."""
    if vol.units == "binary":
        bone = vol.numpy() != 0
    else:
        bone = segment(vol.with_data(smoothed_values(vol, smooth_sigma_mm)), threshold)[0].numpy() != 0
    mask = specimen_envelope(bone, vol.spacing, closing)
    res.voi = f"auto: specimen envelope (closing {closing:g} mm, {np.count_nonzero(mask) / mask.size:.0%} of the image)"
    _record_voi_volume(vol, mask, res)
    return mask


def _warn_if_specimen_in_medium(bone: np.ndarray, spacing, res: MorphometryResult) -> None:
    """Warn when a whole-image VOI is largely air or medium around a specimen (its envelope, fitted on a grid
    2× or 4× coarser for speed, covers less than :data:`MIN_ENVELOPE_FRACTION` of the image)."""
    coarse = bone
    sp = np.asarray(spacing, float)
    k = 4 if min(bone.shape) >= 64 else 2 if min(bone.shape) >= 16 else 1
    if k > 1:
        n = [s // k * k for s in bone.shape]
        b = bone[: n[0], : n[1], : n[2]]
        coarse = b.reshape(n[0] // k, k, n[1] // k, k, n[2] // k, k).any(axis=(1, 3, 5))
        sp = sp * k
    frac = float(np.count_nonzero(specimen_envelope(coarse, tuple(sp), 1.0))) / coarse.size
    if frac < MIN_ENVELOPE_FRACTION:
        res.warnings.append(f"the whole-image VOI is {1 - frac:.0%} outside the specimen's envelope (air or medium "
                            "around it): BV/TV and Tb.Sp describe the field of view, not the bone; use --voi auto "
                            "(voi='auto') to measure the specimen in itself")


def _resolution_honesty(scan: Volume, resolution_mm: float | None, res: MorphometryResult) -> None:
    """Record the scan's resolution and mark the results "apparent" when the voxel or the resolution exceeds
    :data:`APPARENT_FRACTION` of the smaller of the measured Tb.Th and Tb.Sp (HR-pQCT practice: structure near
    the resolution is not measured, only its apparent, resolution-limited image). Tb.Sp counts too because a
    blurred, thresholded strut reads thicker the blurrier the scan (the clinical-MDCT twin scan of a 0.40 mm
    micro-CT Tb.Th reads 2.5 mm), so a test on Tb.Th alone passes the blurriest scans; the spaces between
    the struts are the other structure the scan must resolve."""
    if resolution_mm is not None:
        if not (np.isfinite(resolution_mm) and resolution_mm > 0):
            raise ParameterError("resolution_mm", f"must be a positive length in mm, got {resolution_mm!r}")
        res.resolution_mm, res.resolution_source = float(resolution_mm), "stated (measured edge)"
    else:
        from trabecula.scanner.resolution import scan_resolution

        sr = scan_resolution(scan.provenance.extra or {}, scan.provenance.scanner,
                             float(np.sqrt(scan.spacing[1] * scan.spacing[2])))
        if sr.resolution_mm is not None:
            res.resolution_mm, res.resolution_source = float(sr.resolution_mm), sr.source
    if not math.isfinite(res.tb_th_mm):
        return
    voxel = max(res.spacing_mm or scan.spacing)
    limit = max(voxel, res.resolution_mm if math.isfinite(res.resolution_mm) else 0.0)
    feature, name = res.tb_th_mm, "Tb.Th"
    if math.isfinite(res.tb_sp_mm) and res.tb_sp_mm < feature:
        feature, name = res.tb_sp_mm, "Tb.Sp"
    res.apparent = bool(limit > APPARENT_FRACTION * feature)
    if res.apparent:
        what = (f"voxel {voxel:.3g} mm" if limit == voxel else
                f"resolution {res.resolution_mm:.3g} mm FWHM ({res.resolution_source})")
        res.warnings.insert(0, f"apparent values: the {what} is coarser than half the measured {name} "
                               f"({feature:.3g} mm); the structure is not resolved, so BV/TV, Tb.Th, Tb.Sp "
                               "and Tb.N describe its blurred image (apparent, as HR-pQCT labels them)")


def _voi_mask(vol: Volume, voi: Any, res: MorphometryResult) -> np.ndarray | None:
    """The VOI mask on ``vol``'s grid (None = whole volume); records its description and volume in ``res``."""
    if voi is None:
        mask = None
        res.voi = "whole volume"
    else:
        mask, res.voi = voi_from_spec(voi, vol)
    _record_voi_volume(vol, mask, res)
    return mask


def _record_voi_volume(vol: Volume, mask: np.ndarray | None, res: MorphometryResult) -> None:
    n_voi = int(np.count_nonzero(mask)) if mask is not None else int(np.prod(vol.shape))
    res.voi_volume_mm3 = res.tv_mm3 = n_voi * float(np.prod(vol.spacing))


def _segment(vol: Volume, voi: Any, mask: np.ndarray | None, threshold: str | float, smooth_sigma_mm: float | None,
             upsample: int, border: str, res: MorphometryResult,
             step: Callable[[str], None]) -> tuple[Volume, np.ndarray, np.ndarray | None]:
    """Threshold a grey/HU volume (after optional smoothing, and sub-voxel interpolation when ``upsample > 1``):
    ``(grid measured on, bone, VOI mask on that grid)``; the threshold and its method go into ``res``."""
    method = threshold if isinstance(threshold, str) else "fixed"
    values = smoothed_values(vol, smooth_sigma_mm)  # once: the sub-voxel segmentation reuses them
    bvol, t = segment(vol.with_data(values), threshold, voi=mask)
    bone = np.ascontiguousarray(bvol.numpy() != 0)
    res.threshold = float(t)
    res.threshold_method = str(method).lower() if str(method).lower() in ("isodata", "otsu") else "fixed"
    if res.threshold_method == "isodata":
        res.threshold_method = "isodata (ImageJ default)"
    res.threshold_method += f" [{vol.units}]"
    if upsample > 1:
        step(f"sub-voxel segmentation ({upsample}x)")
        vol, bone, mask = _upsampled(vol, values, bone, mask, voi, t, upsample, border)
        _record_voi_volume(vol, mask, res)
        res.threshold_method += f", interpolated {upsample}x per axis before thresholding"
    return vol, bone, mask


def _bone_volume_fraction(bone: np.ndarray, mask: np.ndarray | None, vol: Volume,
                          res: MorphometryResult) -> tuple[bool, bool]:
    """BV and BV/TV by voxel counting in the VOI, with a warning when the VOI holds no bone or only bone:
    returns ``(no bone, all bone)``."""
    in_voi = bone if mask is None else (bone & mask)
    n_bone = int(np.count_nonzero(in_voi))
    n_voi = int(np.count_nonzero(mask)) if mask is not None else int(np.prod(vol.shape))
    res.bv_mm3 = n_bone * float(np.prod(vol.spacing))
    res.bv_tv = n_bone / n_voi
    if n_bone == 0:
        res.warnings.append("no bone in the VOI: Tb.Th, Tb.N, Conn.D, SMI and DA are undefined (NaN)")
    if n_bone == n_voi:
        res.warnings.append("the VOI is all bone: Tb.Sp, Tb.N, Conn.D, SMI and DA are undefined (NaN)")
    return n_bone == 0, n_bone == n_voi


def _thickness(vol: Volume, phase: np.ndarray, mask: np.ndarray | None, label: str, maps: bool,
               res: MorphometryResult, step: Callable[[str], None]) -> None:
    """Tb.Th (``label="Tb.Th"``, the bone) or Tb.Sp (the marrow): mean, SD, max of the local thickness of
    ``phase`` in the VOI, its map when ``maps``; the thickness warnings are kept in ``res``."""
    step(f"local thickness ({label})")
    with _warnings.catch_warnings(record=True) as caught:
        _warnings.simplefilter("always")
        m = local_thickness(phase, vol.spacing, res.mode, mask, border=res.border)
    for w in caught:
        res.warnings.append(f"{label}: {w.message}")
    st = thickness_stats(m, phase, mask)
    if label == "Tb.Th":
        res.tb_th_mm, res.tb_th_sd_mm, res.tb_th_max_mm = st.mean, st.sd, st.max
    else:
        res.tb_sp_mm, res.tb_sp_sd_mm, res.tb_sp_max_mm = st.mean, st.sd, st.max
    if not math.isfinite(st.mean):
        res.warnings.append(f"{label} undefined (NaN)")
    if maps:
        thickness_map = vol.with_data(m, units="mm", step=f"local thickness {label} [{res.mode}]")
        if label == "Tb.Th":
            res.thickness_map = thickness_map
        else:
            res.spacing_map = thickness_map


def _trabecular_number(res: MorphometryResult) -> None:
    """Tb.N = 1 / (Tb.Th + Tb.Sp), and the plate-model BV/TV / Tb.Th (Parfitt 1983)."""
    s = res.tb_th_mm + res.tb_sp_mm
    res.tb_n_per_mm = 1.0 / s if np.isfinite(s) and s > 0 else NAN
    res.tb_n_plate_per_mm = res.bv_tv / res.tb_th_mm if np.isfinite(res.tb_th_mm) and res.tb_th_mm > 0 else NAN


def _connectivity(vol: Volume, bone: np.ndarray, mask: np.ndarray | None, res: MorphometryResult) -> None:
    """Euler characteristic, Δχ and Conn.D (box correction for the whole image or a box VOI, else floating)."""
    if mask is None:
        cr = connectivity(bone, vol.spacing)
    else:
        cr = connectivity(bone, vol.spacing, mask, box=_box_slices(mask))
    res.euler_char, res.delta_chi = float(cr.euler_char), cr.delta_chi
    res.conn_d_per_mm3, res.conn_correction = cr.conn_d_per_mm3, cr.correction
    if cr.connectivity < 0:
        res.warnings.append(f"connectivity 1 − Δχ = {cr.connectivity:.3g} is negative (several particles or "
                            "enclosed cavities in the VOI); Conn.D is reported as computed")


def _structure_model_index(vol: Volume, bone: np.ndarray, mask: np.ndarray | None, res: MorphometryResult) -> None:
    sr = structure_model_index(bone, vol.spacing, mask)
    res.smi, res.smi_concave_fraction, res.bs_mm2 = sr.smi, sr.concave_fraction, sr.surface_mm2
    if not math.isfinite(sr.smi):
        res.warnings.append("SMI undefined: no bone surface inside the VOI")


def _anisotropy(vol: Volume, bone: np.ndarray, mask: np.ndarray | None, seed: int, res: MorphometryResult) -> None:
    ar = degree_of_anisotropy(bone, vol.spacing, mask, seed=seed)
    res.da, res.da_scanco, res.main_direction = ar.da, ar.da_scanco, ar.main_direction
    if not math.isfinite(ar.da):
        res.warnings.append("DA undefined: no bone/marrow intercepts in the VOI, or the MIL ellipsoid fit failed")


def _upsampled(vol: Volume, values: np.ndarray, coarse_bone: np.ndarray, mask: np.ndarray | None, voi, t: float,
               factor: int, border: str) -> tuple[Volume, np.ndarray, np.ndarray | None]:
    """The fine grid of :func:`measure`'s ``upsample``: (fine grey Volume, fine bone, fine VOI mask).

    The interpolated region is the VOI's bounding box grown by the largest inscribed-sphere radius of either
    phase of the coarse segmentation (plus two voxels), so every sphere that reaches the VOI lies inside it as
    it does in the whole image; a VOI given as a spec is re-evaluated on the fine grid (its exact geometry),
    a mask is repeated voxel by voxel."""
    import edt

    sp = np.asarray(vol.spacing, float)
    bg = border == "background"
    r = 0.0
    for phase in (coarse_bone, ~coarse_bone):
        if phase.any() and not phase.all():
            r = max(r, float(np.sqrt(edt.edtsq(phase, anisotropy=tuple(sp), black_border=bg).max())))
    pad = np.ceil(r / sp).astype(int) + 2
    if mask is None:
        lo, hi = np.zeros(3, int), np.array(vol.shape)
    else:
        idx = [np.nonzero(mask.any(axis=tuple(a for a in range(3) if a != ax)))[0] for ax in range(3)]
        lo = np.maximum(np.array([i[0] for i in idx]) - pad, 0)
        hi = np.minimum(np.array([i[-1] + 1 for i in idx]) + pad, np.array(vol.shape))
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    grid = upsample_volume(vol, factor, box, values)
    bone = np.ascontiguousarray(grid.numpy() > t)
    if mask is None:
        fine_mask = None
    elif isinstance(voi, str) and voi.strip().lower().startswith(("cylinder", "box")):
        fine_mask, _ = voi_from_spec(voi, grid)
    else:
        fine_mask = upsample_mask(mask[box], factor)
    return grid, bone, fine_mask

