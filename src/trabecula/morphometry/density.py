"""Density calibration: HU → mg hydroxyapatite per cm³, from a calibration phantom in the scan or a stored
scanner calibration, and volumetric bone mineral density (vBMD) in a compartment.

Method (quantitative CT, Cann & Genant, J Comput Assist Tomogr 4:493, 1980; as HR-pQCT does with the Scanco
HA phantom, Boutroy et al., J Clin Endocrinol Metab 90:6508, 2005): rods of known HA concentration are
scanned; the mean HU inside each rod (an ROI well inside it) is regressed on its known concentration by
ordinary least squares, and the line converts every voxel:

    ρ_HA [mg HA/cm³] = slope · HU + intercept.

Convention: ``slope`` in mg HA/cm³ per HU, ``intercept`` in mg HA/cm³; densities are apparent (of the voxel:
mineral per cm³ of tissue, marrow included), not material densities. A linear fit is right where the
inserts and the bone harden the beam alike; it is the convention of QCT and HR-pQCT software.

Rods are given as ROIs (world mm: a disc on one slice or a cylinder, in the order of the densities) or
detected (:func:`detect_rods`): the scan is averaged along z (the rods' axis), and connected flat regions of
that image (local standard deviation under three times the image's median, i.e. the noise) that are round
(eccentricity < 0.6), solid (solidity > 0.9), without holes and away from the border are the rods' interiors;
each rod's ROI is a disc of 0.8 × that region's equivalent radius about its centroid, through the volume's
slices. Detected rods are matched to the known densities by rank of mean HU. Rods left out of the fit
(``exclude``) are still measured and predicted, to check the line on a held-out insert.

:func:`mean_density` gives vBMD in a mask (Tt.vBMD, Tb.vBMD, Ct.vBMD in the total, trabecular and cortical
compartments): the calibration of the mask's mean HU (the line is linear, so this is the mean of the voxels'
densities). Calibrations are JSON files (:func:`save_calibration`, :func:`load_calibration`); a stored scanner
calibration is the same file with at least ``slope`` and ``intercept``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from trabecula.errors import InputError, ParameterError
from trabecula.io import atomic_output
from trabecula.volume import Volume

#: The units a calibrated volume carries (mg HA/cm³), one of :data:`trabecula.volume.UNITS`.
DENSITY_UNITS = "mgHA_per_cm3"
#: What the coefficients mean, written into every calibration file.
CONVENTION = "mg HA/cm3 = slope * HU + intercept (slope in mg HA/cm3 per HU, intercept in mg HA/cm3)"
_FORMAT = "trabecula-density-calibration"


@dataclass
class Calibration:
    """A linear HU → mg HA/cm³ calibration (module docstring for the method and convention).

    Attributes
    ----------
    slope : float
        mg HA/cm³ per HU.
    intercept : float
        mg HA/cm³ (the density that reads 0 HU).
    rods : list of dict
        Each rod measured: ``density_mg_cm3`` (known), ``mean_hu``, ``sd_hu``, ``n_voxels``, ``center_yx_mm``,
        ``radius_mm``, ``z_range_mm`` (world mm), ``used`` (in the fit), ``fitted_mg_cm3`` and
        ``residual_mg_cm3`` (fitted − known); empty for a stored calibration without rods.
    r2 : float or None
        Coefficient of determination of the fit on the rods used (None without rods).
    source : str or None
        The scan it was fitted on (or where a stored calibration came from).
    scanner : str or None
        The scanner (from the scan's provenance, or stated).
    method : str
        ``"rois"``, ``"detected"`` or ``"stored"``.
    units : str
        :data:`CONVENTION`.
    """

    slope: float
    intercept: float
    rods: list[dict[str, Any]] = field(default_factory=list)
    r2: float | None = None
    source: str | None = None
    scanner: str | None = None
    method: str = "stored"
    units: str = CONVENTION

    def density(self, hu: Any) -> Any:
        """mg HA/cm³ of HU values (a number or an array)."""
        return self.slope * np.asarray(hu, dtype=np.float64) + self.intercept if not np.isscalar(hu) \
            else self.slope * float(hu) + self.intercept

    @property
    def residuals_mg_cm3(self) -> list[float]:
        """Fitted − known density of every rod (mg HA/cm³), in the order of :attr:`rods`."""
        return [float(r["residual_mg_cm3"]) for r in self.rods]

    def to_dict(self) -> dict[str, Any]:
        return {"format": _FORMAT, "version": 1, **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any], name: str = "calibration") -> Calibration:
        if not isinstance(d, dict):
            raise ParameterError(name, "a calibration is a JSON object")
        try:
            slope, intercept = float(d["slope"]), float(d["intercept"])
        except KeyError as exc:
            raise ParameterError(name, f"has no {exc.args[0]!r} (a calibration needs slope and intercept)") from exc
        except (TypeError, ValueError) as exc:
            raise ParameterError(name, f"slope and intercept must be numbers, got {d.get('slope')!r}, "
                                       f"{d.get('intercept')!r}") from exc
        if not (math.isfinite(slope) and math.isfinite(intercept) and slope > 0):
            raise ParameterError(name, f"needs a finite positive slope and a finite intercept, got {slope}, {intercept}")
        r2 = d.get("r2")
        return cls(slope, intercept, list(d.get("rods") or []), None if r2 is None else float(r2), d.get("source"),
                   d.get("scanner"), str(d.get("method", "stored")), CONVENTION)


def _check_hu(vol: Any, name: str = "vol") -> Volume:
    if not isinstance(vol, Volume):
        raise ParameterError(name, f"expected a Volume in HU, got {type(vol).__name__}")
    if vol.units != "HU":
        raise ParameterError(name, f"density calibration needs a volume in HU, got units {vol.units!r}")
    return vol


def _densities(densities: Any, name: str = "densities") -> list[float]:
    try:
        vals = [float(v) for v in (densities.split(",") if isinstance(densities, str) else densities)]
    except (TypeError, ValueError) as exc:
        raise ParameterError(name, f"expected numbers (mg HA/cm³), got {densities!r}") from exc
    if len(vals) < 2:
        raise ParameterError(name, f"needs at least two rods, got {len(vals)}")
    if not all(math.isfinite(v) and v >= 0 for v in vals):
        raise ParameterError(name, f"densities must be finite and >= 0 mg HA/cm³, got {vals}")
    if len(set(vals)) != len(vals):
        raise ParameterError(name, f"repeats a density: {vals}")
    return vals


def _world(vol: Volume, axis: int) -> np.ndarray:
    return vol.origin[axis] + np.arange(vol.shape[axis]) * vol.spacing[axis]


def parse_rois(rois: Any, name: str = "rois") -> list[tuple[float, ...]]:
    """ROIs as tuples (z, y, x, r) — a disc of radius r on the slice nearest z — or (z, y, x, r, h) — a cylinder
    of height h centred at z — in world mm; from a sequence of such tuples or the text ``"z,y,x,r[,h];..."``."""
    items = [s for s in rois.split(";") if s.strip()] if isinstance(rois, str) else list(rois)
    out = []
    for it in items:
        try:
            vals = tuple(float(v) for v in (it.split(",") if isinstance(it, str) else it))
        except (TypeError, ValueError) as exc:
            raise ParameterError(name, f"expected z,y,x,r[,h] numbers (mm), got {it!r}") from exc
        if len(vals) not in (4, 5) or not all(math.isfinite(v) for v in vals):
            raise ParameterError(name, f"expected z,y,x,r or z,y,x,r,h (mm), got {it!r}")
        if vals[3] <= 0 or (len(vals) == 5 and vals[4] <= 0):
            raise ParameterError(name, f"radius and height must be positive, got {it!r}")
        out.append(vals)
    return out


def _roi_mask(vol: Volume, roi: tuple[float, ...], name: str) -> tuple[np.ndarray, slice]:
    """(2-D disc mask, slice range) of an ROI in the volume's grid."""
    z, y, x, r = roi[:4]
    zs, ys, xs = _world(vol, 0), _world(vol, 1), _world(vol, 2)
    disc = (ys[:, None] - y) ** 2 + (xs[None, :] - x) ** 2 <= r * r
    if len(roi) == 5:
        inside = np.nonzero(np.abs(zs - z) <= roi[4] / 2.0 + 1e-9)[0]
        if inside.size == 0:
            raise ParameterError(name, f"the ROI {roi} holds no slice of the volume")
        sl = slice(int(inside[0]), int(inside[-1]) + 1)
    else:
        k = int(np.argmin(np.abs(zs - z)))
        if abs(zs[k] - z) > vol.spacing[0]:
            raise ParameterError(name, f"the ROI's z {z:g} mm lies outside the volume ({zs[0]:g}…{zs[-1]:g} mm)")
        sl = slice(k, k + 1)
    if not disc.any():
        raise ParameterError(name, f"the ROI {roi} holds no voxel of the volume")
    if disc[0].any() or disc[-1].any() or disc[:, 0].any() or disc[:, -1].any():
        raise ParameterError(name, f"the ROI {roi} reaches the edge of the volume")
    return disc, sl


def _measure_roi(data: np.ndarray, vol: Volume, roi: tuple[float, ...], name: str) -> dict[str, Any]:
    disc, sl = _roi_mask(vol, roi, name)
    vals = data[sl][:, disc].astype(np.float64)
    zs = _world(vol, 0)[sl]
    return {"mean_hu": float(vals.mean()), "sd_hu": float(vals.std()), "n_voxels": int(vals.size),
            "center_yx_mm": [float(roi[1]), float(roi[2])], "radius_mm": float(roi[3]),
            "z_range_mm": [float(zs[0]), float(zs[-1])]}


def _z_slices(vol: Volume, z_range_mm: Sequence[float] | None) -> slice:
    """The slices of ``z_range_mm`` (world mm, inclusive), or the central half of the volume's slices."""
    nz = vol.shape[0]
    if z_range_mm is None:
        k0 = nz // 4
        return slice(k0, max(k0 + 1, nz - nz // 4))
    try:
        z0, z1 = sorted(float(v) for v in z_range_mm)
    except (TypeError, ValueError) as exc:
        raise ParameterError("z_range_mm", f"expected two numbers (mm), got {z_range_mm!r}") from exc
    k = np.nonzero((_world(vol, 0) >= z0 - 1e-6) & (_world(vol, 0) <= z1 + 1e-6))[0]
    if k.size == 0:
        raise ParameterError("z_range_mm", f"{z0:g}…{z1:g} mm holds no slice of the volume")
    return slice(int(k[0]), int(k[-1]) + 1)


#: Gaussian smoothing (in-plane pixels) of the z-averaged image tried in turn until the rods are found: none for
#: quiet scans, more for noisy ones (noise falls with the smoothing faster than a rod's edge).
_SMOOTHING_PX: tuple[float, ...] = (0.0, 1.0, 2.0, 3.0, 4.0, 6.0)


#: Local standard deviation (HU) under which a pixel counts as flat whatever the noise: the slow gradients of
#: cupping and beam hardening inside a rod stay below it, a rod's edge (≥ about 90 HU of contrast) far above.
_FLAT_HU = 10.0


def _flat_round_regions(img: np.ndarray, vol: Volume, rmin: float) -> list[tuple[float, float, float]]:
    """(y, x, equivalent radius) in world mm of the flat, round, hole-free regions of a 2-D image away from
    its border (:func:`detect_rods`)."""
    from skimage.measure import label, regionprops

    dy, dx = vol.spacing[1], vol.spacing[2]
    mean = ndimage.uniform_filter(img, 5, mode="nearest")
    sd = np.sqrt(np.maximum(ndimage.uniform_filter(img * img, 5, mode="nearest") - mean * mean, 0.0))
    flat = sd < max(3.0 * float(np.percentile(sd, 25)), _FLAT_HU)
    out = []
    for p in regionprops(label(flat, connectivity=1)):
        r0, c0, r1, c1 = p.bbox
        if r0 == 0 or c0 == 0 or r1 == img.shape[0] or c1 == img.shape[1]:
            continue
        if p.euler_number != 1 or p.solidity < 0.9 or p.eccentricity > 0.6:
            continue
        r_eq = math.sqrt(p.area * dy * dx / math.pi)
        if r_eq >= rmin:
            cy, cx = p.centroid
            out.append((vol.origin[1] + cy * dy, vol.origin[2] + cx * dx, r_eq))
    return out


def detect_rods(vol: Volume, n: int, *, z_range_mm: Sequence[float] | None = None,
                min_radius_mm: float | None = None) -> list[tuple[float, ...]]:
    """Find ``n`` calibration rods along z in a HU volume; returns their ROIs (z, y, x, r, h) in world mm
    (module docstring for the method), or ParameterError (``rois``) when fewer than ``n`` are found.

    The rods are looked for, and their ROIs span, the slices of ``z_range_mm`` (world mm), by default the
    central half of the volume's slices (away from the ends of rods that end with the volume, where the slice
    profile mixes them with what lies beyond). ``min_radius_mm`` (default three in-plane voxels) is the
    smallest rod interior accepted. A pixel is flat where the local standard deviation (5 × 5 pixels) of the
    z-averaged image is under three times its 25th percentile (the noise) or 10 HU; a noisy image is smoothed
    (Gaussian, 1–6 pixels, :data:`_SMOOTHING_PX`) until ``n`` rods are found. With more candidates than ``n``, the ``n`` whose radii are closest to the candidates' median are kept (the rods of a phantom share a diameter).
    """
    vol = _check_hu(vol)
    zsl = _z_slices(vol, z_range_mm)
    img = np.asarray(vol.numpy()[zsl], dtype=np.float64).mean(axis=0)
    dy, dx = vol.spacing[1], vol.spacing[2]
    rmin = (3.0 * min(dy, dx)) if min_radius_mm is None else float(min_radius_mm)
    cands: list[tuple[float, float, float]] = []
    for sigma in _SMOOTHING_PX:
        cands = _flat_round_regions(ndimage.gaussian_filter(img, sigma) if sigma else img, vol, rmin)
        if len(cands) >= n:
            break
    if len(cands) < n:
        raise ParameterError("rois", f"found {len(cands)} round uniform regions where {n} rods were expected; "
                                     "give the rods' ROIs (z,y,x,r[,h] in mm)")
    if len(cands) > n:
        med = float(np.median([c[2] for c in cands]))
        cands = sorted(cands, key=lambda c: abs(c[2] - med))[:n]
    zs = _world(vol, 0)[zsl]
    zc, h = (zs[0] + zs[-1]) / 2.0, zs[-1] - zs[0] + vol.spacing[0] * 0.5
    return [(float(zc), cy, cx, 0.8 * r, float(h)) for cy, cx, r in sorted(cands)]


def fit_calibration(vol: Volume, densities: Sequence[float] | str, rois: Any = None, *, detect: bool = True,
                    exclude: Sequence[float] = (), z_range_mm: Sequence[float] | None = None,
                    scanner: str | None = None) -> Calibration:
    """Fit HU → mg HA/cm³ on the calibration rods of a scan (module docstring for the method).

    Parameters
    ----------
    vol : Volume
        The scan, in HU (other units: ParameterError naming ``vol``).
    densities : sequence of float or "0,100,..."
        Known concentrations of the rods, mg HA/cm³ (at least two, distinct, >= 0).
    rois : None, sequence of (z, y, x, r[, h]) or text "z,y,x,r[,h];..."
        The rods' ROIs in world mm, in the order of ``densities`` (:func:`parse_rois`); None finds them
        (:func:`detect_rods`, matched by rank of mean HU) when ``detect`` is true.
    exclude : densities measured and predicted but left out of the fit (held out).
    z_range_mm : (z0, z1) world mm where detected rods are measured (:func:`detect_rods`; default the central
        half of the slices); ROIs carry their own.
    scanner : the scanner to record (default: the scan's provenance).

    Returns
    -------
    Calibration
    """
    vol = _check_hu(vol)
    dens = _densities(densities)
    held = {float(v) for v in exclude}
    unknown = held - set(dens)
    if unknown:
        raise ParameterError("exclude", f"{sorted(unknown)} are not among the densities {dens}")
    if len(dens) - len(held) < 2:
        raise ParameterError("exclude", "leaves fewer than two rods to fit")
    if rois is not None:
        regions, method = parse_rois(rois), "rois"
        if len(regions) != len(dens):
            raise ParameterError("rois", f"{len(regions)} ROIs for {len(dens)} densities")
    elif detect:
        regions, method = detect_rods(vol, len(dens), z_range_mm=z_range_mm), "detected"
    else:
        raise ParameterError("rois", "give the rods' ROIs or detect=True")
    data = np.asarray(vol.numpy())
    rods = [_measure_roi(data, vol, roi, "rois") for roi in regions]
    if method == "detected":  # match by rank of mean HU
        rods.sort(key=lambda r: r["mean_hu"])
        pairs = list(zip(sorted(dens), rods, strict=True))
    else:
        pairs = list(zip(dens, rods, strict=True))
    for d, r in pairs:
        r["density_mg_cm3"] = d
        r["used"] = d not in held
    rods = [r for _, r in pairs]
    used = [r for r in rods if r["used"]]
    hu = np.array([r["mean_hu"] for r in used])
    rho = np.array([r["density_mg_cm3"] for r in used])
    if np.ptp(hu) <= 0:
        raise ParameterError("rois", "the rods used all read the same HU; no line can be fitted")
    slope, intercept = (float(v) for v in np.polyfit(hu, rho, 1))
    if slope <= 0:
        raise ParameterError("densities", f"denser rods read lower HU (slope {slope:.4g}); check the densities' order "
                                          "against the ROIs")
    for r in rods:
        r["fitted_mg_cm3"] = slope * r["mean_hu"] + intercept
        r["residual_mg_cm3"] = r["fitted_mg_cm3"] - r["density_mg_cm3"]
    ss_res = float(sum(r["residual_mg_cm3"] ** 2 for r in used))
    ss_tot = float(np.sum((rho - rho.mean()) ** 2))
    prov = vol.provenance
    return Calibration(slope, intercept, rods, 1.0 - ss_res / ss_tot if ss_tot > 0 else None, prov.source,
                       scanner if scanner is not None else prov.scanner, method)


def save_calibration(cal: Calibration, path: str | os.PathLike, *, force: bool = False) -> Path:
    """Write a calibration as JSON (atomic; no overwrite without ``force``); returns the path."""
    with atomic_output(path, force=force) as tmp:
        Path(tmp).write_text(json.dumps(cal.to_dict(), indent=2) + "\n")
    return Path(path)


def load_calibration(path: str | os.PathLike) -> Calibration:
    """Read a calibration (:func:`save_calibration`'s JSON, or a stored scanner calibration: a JSON object with
    at least ``slope`` and ``intercept`` in :data:`CONVENTION`); InputError naming the file otherwise."""
    p = Path(path)
    if not p.is_file():
        raise InputError(p, "no such calibration file")
    try:
        d = json.loads(p.read_text())
        return Calibration.from_dict(d)
    except json.JSONDecodeError as exc:
        raise InputError(p, f"not a JSON calibration ({exc.msg}, line {exc.lineno})") from exc
    except ParameterError as exc:
        raise InputError(p, exc.message) from exc


def to_density(vol: Volume, cal: Calibration) -> Volume:
    """The scan in mg HA/cm³ (float32, units :data:`DENSITY_UNITS`): slope · HU + intercept voxel by voxel."""
    vol = _check_hu(vol)
    data = vol.data * np.float32(cal.slope) + np.float32(cal.intercept)
    out = vol.with_data(data.astype(np.float32), units=DENSITY_UNITS,
                        step=f"density calibration: mg HA/cm3 = {cal.slope:.6g} * HU + {cal.intercept:.6g}")
    return out


def mean_density(vol: Volume, mask: Volume | np.ndarray, cal: Calibration) -> float:
    """Mean density (mg HA/cm³) of the HU volume inside ``mask`` (a binary Volume on the same grid, or a boolean
    array of its shape): vBMD of a compartment (Tt.vBMD, Tb.vBMD, Ct.vBMD). An empty mask or another grid is a
    ParameterError naming ``mask``."""
    vol = _check_hu(vol)
    if isinstance(mask, Volume):
        if mask.shape != vol.shape or not np.allclose(mask.spacing, vol.spacing) or not np.allclose(mask.origin, vol.origin):
            raise ParameterError("mask", f"the mask's grid {mask.shape} at {mask.spacing} mm, origin {mask.origin} is not "
                                         f"the volume's {vol.shape} at {vol.spacing} mm, origin {vol.origin}")
        m = np.asarray(mask.numpy()) > 0
    else:
        m = np.asarray(mask)
        if m.shape != vol.shape:
            raise ParameterError("mask", f"shape {m.shape} is not the volume's {vol.shape}")
        m = m > 0
    if not m.any():
        raise ParameterError("mask", "is empty")
    hu = float(np.asarray(vol.numpy())[m].astype(np.float64).mean())
    return float(cal.density(hu))


__all__ = ["Calibration", "CONVENTION", "DENSITY_UNITS", "fit_calibration", "detect_rods", "parse_rois",
           "save_calibration", "load_calibration", "to_density", "mean_density"]
