"""3-D registration of a micro-CT (moving) to a clinical scan (fixed): rigid, then affine, optionally B-spline.

The method is SimpleITK's registration framework (:class:`SimpleITK.ImageRegistrationMethod`), not an own
optimiser: Mattes mutual information (32 bins, a seeded random 20 % sample of the fixed voxels), linear
interpolation, a multi-resolution pyramid (shrink 4, 2, 1 with Gaussian smoothing of 2, 1, 0 voxels),
regular-step gradient descent with scales from the physical shift of each parameter. Stages:

* ``rigid`` — :class:`SimpleITK.Euler3DTransform`, started from the centres of the two scans' bright
  (Otsu) voxels, so different fields of view and HU scales need no hand placement;
* ``affine`` — :class:`SimpleITK.AffineTransform` started from the rigid result;
* ``bspline`` (optional) — a free-form deformation (control points every 5 mm) on top, L-BFGS-B.

Conventions (ITK's): the transform maps a point of the *fixed* scan to the moving scan's world frame; the
moved volume is the moving scan resampled through it onto the fixed scan's field of view (at the moving
scan's own spacing by default, so a micro-CT stays fine). Mutual information is invariant to an HU offset
and scale, and the micro-CT is Gaussian-smoothed to about the clinical resolution before it is compared.

Refusals, never a silently wrong pairing: a 2-D image (fewer than 4 slices on any axis), scans whose
registration leaves less than :data:`MIN_OVERLAP` of the fixed scan inside the moving one, and a final
metric above ``metric_threshold`` (Mattes MI is negative; the more negative, the better the match) raise
:class:`~trabecula.errors.InputError` with one line.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from trabecula.errors import InputError, ParameterError
from trabecula.io import atomic_output, write_volume
from trabecula.volume import Volume

STAGES = ("rigid", "affine", "bspline")
#: The final Mattes MI (on the whole fixed scan) above which a registration is refused. Measured on the twin
#: (docs/register.md): the right specimen about −0.82, another specimen's micro-CT of the same shape about −0.40.
#: MI depends on the content (how much of the field is medium); set ``metric_threshold`` for other scans.
METRIC_THRESHOLD = -0.6
#: Least fraction of the fixed scan's voxels that must map inside the moving scan after registration.
MIN_OVERLAP = 0.25


def to_sitk(v: Volume) -> sitk.Image:
    """A :class:`Volume` as a float32 SimpleITK image (its (x, y, z) axes, spacing and origin, identity
    direction: trabecula's volumes are reoriented to LPS on reading)."""
    img = sitk.GetImageFromArray(np.ascontiguousarray(np.asarray(v.numpy(), dtype=np.float32)))
    img.SetSpacing(tuple(float(s) for s in v.spacing[::-1]))
    img.SetOrigin(tuple(float(o) for o in v.origin[::-1]))
    return img


def from_sitk(img: sitk.Image, units: str, like: Volume | None = None, step: str = "") -> Volume:
    """A SimpleITK image as a :class:`Volume` (z, y, x); provenance from ``like`` with ``step`` appended."""
    arr = sitk.GetArrayFromImage(img)
    v = Volume(arr, tuple(img.GetSpacing()[::-1]), tuple(img.GetOrigin()[::-1]), units)
    if like is not None:
        v.provenance = like.provenance.with_step(step) if step else like.provenance
    return v


def check_volume_3d(v: Volume, name: str) -> None:
    """Refuse a 2-D image (or a sliver): registration needs at least 4 voxels along every axis."""
    if min(v.shape) < 4:
        raise InputError(name, f"is {'2-D' if 1 in v.shape else 'too thin'} (shape {tuple(v.shape)}); "
                               "registration needs a 3-D volume with at least 4 voxels along every axis")


def bright_centre(img: sitk.Image) -> tuple[float, float, float]:
    """World centre (x, y, z mm) of the voxels above the image's Otsu threshold (of all voxels if none)."""
    mask = sitk.OtsuThreshold(img, 0, 1)
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(mask)
    if stats.HasLabel(1):
        return stats.GetCentroid(1)
    size = np.asarray(img.GetSize(), float)
    return img.TransformContinuousIndexToPhysicalPoint(tuple((size - 1) / 2))


def _smoothed_for(moving: sitk.Image, fixed: sitk.Image) -> sitk.Image:
    """The moving scan smoothed to about the fixed scan's resolution and resampled to its finest spacing
    (isotropic): what the metric compares, and 8× fewer voxels than a 0.05 mm micro-CT."""
    target = min(fixed.GetSpacing())
    own = min(moving.GetSpacing())
    if target <= own * 1.05:
        return moving
    sm = sitk.SmoothingRecursiveGaussian(moving, 0.5 * max(fixed.GetSpacing()))
    size = [max(4, int(round(n * s / target))) for n, s in zip(moving.GetSize(), moving.GetSpacing(), strict=True)]
    origin = tuple(o - s / 2 + target / 2 for o, s in zip(moving.GetOrigin(), moving.GetSpacing(), strict=True))
    return sitk.Resample(sm, size, sitk.Transform(), sitk.sitkLinear, origin, (target,) * 3, moving.GetDirection(),
                         float(np.median(sitk.GetArrayViewFromImage(moving))), sitk.sitkFloat32)


def _method(seed: int, sampling: float, bins: int, shrink: Sequence[int], sigmas: Sequence[float]) -> sitk.ImageRegistrationMethod:
    r = sitk.ImageRegistrationMethod()
    r.SetMetricAsMattesMutualInformation(numberOfHistogramBins=bins)
    r.SetMetricSamplingStrategy(r.RANDOM)
    r.SetMetricSamplingPercentage(sampling, seed + 1)  # SimpleITK reads seed 0 as 'wall clock'
    r.SetInterpolator(sitk.sitkLinear)
    r.SetShrinkFactorsPerLevel(list(shrink))
    r.SetSmoothingSigmasPerLevel(list(sigmas))
    r.SmoothingSigmasAreSpecifiedInPhysicalUnitsOff()
    r.SetNumberOfThreads(1)  # ITK's multi-threaded metric sums in a varying order: one thread is reproducible
    return r


def _gradient_descent(r: sitk.ImageRegistrationMethod, step_mm: float, iterations: int) -> None:
    r.SetOptimizerAsRegularStepGradientDescent(learningRate=step_mm, minStep=1e-4, numberOfIterations=iterations,
                                               relaxationFactor=0.6, gradientMagnitudeTolerance=1e-8)
    r.SetOptimizerScalesFromPhysicalShift()


def final_metric(fixed: sitk.Image, moving: sitk.Image, transform: sitk.Transform, bins: int = 32) -> float:
    """Mattes MI of the two scans through ``transform``, on every fixed voxel (deterministic)."""
    r = sitk.ImageRegistrationMethod()
    r.SetMetricAsMattesMutualInformation(numberOfHistogramBins=bins)
    r.SetMetricSamplingStrategy(r.NONE)
    r.SetInterpolator(sitk.sitkLinear)
    r.SetInitialTransform(transform, inPlace=False)
    r.SetNumberOfThreads(1)
    return float(r.MetricEvaluate(fixed, moving))


def overlap_fraction(fixed: sitk.Image, moving: sitk.Image, transform: sitk.Transform) -> float:
    """Fraction of the fixed scan's voxels that ``transform`` maps inside the moving scan's box."""
    ones = sitk.Image(moving.GetSize(), sitk.sitkUInt8) + 1
    ones.CopyInformation(moving)
    inside = sitk.Resample(ones, fixed, transform, sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    return float(sitk.GetArrayViewFromImage(inside).mean())


def rigid_parameters(transform: sitk.Transform) -> dict[str, Any]:
    """Rotation angle (degrees, of the linear part's nearest rotation) and translation (x, y, z mm) of a
    rigid or affine transform, and the linear part's scales (singular values)."""
    t = _linear(transform)
    if t is None:
        return {}
    m = np.asarray(t.GetMatrix(), float).reshape(3, 3)
    u, s, vt = np.linalg.svd(m)
    rot = u @ vt
    angle = math.degrees(math.acos(float(np.clip((np.trace(rot) - 1) / 2, -1, 1))))
    return {"rotation_deg": angle, "translation_mm": list(t.GetTranslation()), "scales": [float(x) for x in s]}


def _linear(transform: sitk.Transform) -> sitk.Transform | None:
    if isinstance(transform, sitk.CompositeTransform):
        return _linear(transform.GetNthTransform(0)) if transform.GetNumberOfTransforms() else None
    if transform.GetDimension() == 3 and transform.GetName() in ("Euler3DTransform", "AffineTransform", "VersorRigid3DTransform",
                                                                   "Similarity3DTransform"):
        return transform.Downcast()
    return None


@dataclass
class RegistrationResult:
    """What :func:`register` found: the transform (fixed → moving world), the moved volume on the fixed
    scan's field of view, the final metric and the stage-by-stage record."""

    transform: sitk.Transform
    moved: Volume
    metric: float
    metric_threshold: float
    overlap: float
    seconds: float
    stages: list[dict] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"metric": "Mattes mutual information (negative; lower is better)", "final_metric": self.metric,
                "metric_threshold": self.metric_threshold, "overlap": self.overlap, "seconds": self.seconds,
                "stages": self.stages, **rigid_parameters(self.transform)}


def _run_stage(name: str, fixed: sitk.Image, moving: sitk.Image, initial: sitk.Transform, seed: int, sampling: float,
               bins: int, iterations: int) -> tuple[sitk.Transform, dict]:
    if name == "rigid":
        r = _method(seed, sampling, bins, (4, 2, 1), (2, 1, 0))
        _gradient_descent(r, 1.0, iterations)
        r.SetInitialTransform(initial, inPlace=False)
    elif name == "affine":
        lin = _linear(initial)
        aff = sitk.AffineTransform(3)
        aff.SetCenter(lin.GetCenter())
        aff.SetMatrix(lin.GetMatrix())
        aff.SetTranslation(lin.GetTranslation())
        r = _method(seed + 1, sampling, bins, (2, 1), (1, 0))
        _gradient_descent(r, 0.25, iterations)
        r.SetInitialTransform(aff, inPlace=False)
    else:
        mesh = [max(1, int(round(n * s / 5.0))) for n, s in zip(fixed.GetSize(), fixed.GetSpacing(), strict=True)]
        bs = sitk.BSplineTransformInitializer(fixed, mesh)
        r = _method(seed + 2, sampling, bins, (2, 1), (1, 0))
        r.SetOptimizerAsLBFGSB(gradientConvergenceTolerance=1e-5, numberOfIterations=iterations)
        r.SetMovingInitialTransform(initial)
        r.SetInitialTransform(bs, inPlace=True)
    try:
        t = r.Execute(fixed, moving)
    except RuntimeError as exc:  # ITK: "All samples map outside moving image buffer", "Too many samples ..."
        raise InputError("moving", f"the scans do not overlap in the {name} stage "
                                   f"({str(exc).strip().splitlines()[-1][:120]})") from exc
    if name == "bspline":
        comp = sitk.CompositeTransform(3)
        comp.AddTransform(initial)
        comp.AddTransform(bs)
        t = comp
    elif isinstance(t, sitk.CompositeTransform) and t.GetNumberOfTransforms() == 1:
        t = t.GetNthTransform(0)
    t = t.Downcast() if hasattr(t, "Downcast") else t
    rec = {"stage": name, "iterations": int(r.GetOptimizerIteration()), "metric": float(r.GetMetricValue()),
           "stop": r.GetOptimizerStopConditionDescription()[:160]}
    return t, rec


def moved_grid(fixed: Volume, moving: Volume, spacing: Sequence[float] | None = None) -> tuple[tuple[int, ...], tuple[float, ...], tuple[float, ...]]:
    """The grid (shape z/y/x, spacing, origin) the moved volume is written on: the fixed scan's box at
    ``spacing`` (default the moving scan's), edge-aligned with it."""
    sp = np.asarray(moving.spacing if spacing is None else spacing, float)
    corner = np.asarray(fixed.origin, float) - np.asarray(fixed.spacing, float) / 2
    shape = tuple(max(1, int(round(e / s))) for e, s in zip(fixed.extent_mm, sp, strict=True))
    return shape, tuple(float(s) for s in sp), tuple(float(c) for c in corner + sp / 2)


def resample_moving(moving: Volume, transform: sitk.Transform, shape: Sequence[int], spacing: Sequence[float],
                    origin: Sequence[float], fill: float | None = None) -> Volume:
    """``moving`` resampled through ``transform`` (linear) onto the grid (z/y/x ``shape``, ``spacing``,
    ``origin``); voxels mapping outside it get ``fill`` (default the median of its outer faces: its medium)."""
    a = np.asarray(moving.numpy())
    if fill is None:
        faces = np.concatenate([a[[0, -1]].ravel(), a[:, [0, -1]].ravel(), a[:, :, [0, -1]].ravel()])
        fill = float(np.median(faces))
    out = sitk.Resample(to_sitk(moving), [int(n) for n in shape[::-1]], transform, sitk.sitkLinear,
                        tuple(float(o) for o in origin[::-1]), tuple(float(s) for s in spacing[::-1]),
                        (1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0), float(fill), sitk.sitkFloat32)
    return from_sitk(out, moving.units, like=moving, step="registered to the fixed scan (resampled through the transform)")


def register(fixed: Volume, moving: Volume, *, stages: Sequence[str] = ("rigid", "affine"), seed: int = 0,
             metric_threshold: float = METRIC_THRESHOLD, min_overlap: float = MIN_OVERLAP, sampling: float = 0.2,
             bins: int = 32, iterations: int = 200, out_spacing: Sequence[float] | None = None,
             check: bool = True) -> RegistrationResult:
    """Register ``moving`` (e.g. micro-CT) to ``fixed`` (e.g. clinical CT); returns a :class:`RegistrationResult`.

    ``stages`` run in order from ``("rigid", "affine", "bspline")`` (``rigid`` first, always). The final
    metric is Mattes MI on every fixed voxel; with ``check`` (default) a result above ``metric_threshold``
    or overlapping less than ``min_overlap`` raises :class:`InputError` (one line, with the numbers).
    Reproducible from ``seed``.
    """
    stages = tuple(stages)
    if not stages or stages[0] != "rigid" or any(s not in STAGES for s in stages) or len(set(stages)) != len(stages):
        raise ParameterError("--stages", f"use rigid, optionally followed by affine and bspline; got {','.join(stages)!r}")
    for name, val in (("sampling", sampling), ("min_overlap", min_overlap)):
        if not (isinstance(val, int | float) and 0 < val <= 1):
            raise ParameterError(name, f"must lie in (0, 1], got {val!r}")
    if not math.isfinite(metric_threshold):
        raise ParameterError("--metric-threshold", f"must be finite, got {metric_threshold!r}")
    check_volume_3d(fixed, "fixed")
    check_volume_3d(moving, "moving")
    threads = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)  # ITK's threaded metric sums in a varying order
    try:
        return _register(fixed, moving, stages, seed, metric_threshold, min_overlap, sampling, bins, iterations,
                         out_spacing, check)
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)


def _register(fixed, moving, stages, seed, metric_threshold, min_overlap, sampling, bins, iterations, out_spacing,
              check) -> RegistrationResult:
    t0 = time.perf_counter()
    f_img, m_full = to_sitk(fixed), to_sitk(moving)
    m_img = _smoothed_for(m_full, f_img)
    rigid = sitk.Euler3DTransform()
    cf, cm = np.asarray(bright_centre(f_img)), np.asarray(bright_centre(m_img))
    rigid.SetCenter(tuple(cf))
    rigid.SetTranslation(tuple(cm - cf))
    transform: sitk.Transform = rigid
    records = []
    for k, name in enumerate(stages):
        start = transform
        transform, rec = _run_stage(name, f_img, m_img, start, seed + 10 * k, sampling, bins, iterations)
        if name == "rigid" and final_metric(f_img, m_img, transform, bins) > metric_threshold:
            # a second start, from the centres of the two fields of view, with a finer first step
            alt = sitk.Euler3DTransform()
            fc = np.asarray(f_img.TransformContinuousIndexToPhysicalPoint(tuple((np.asarray(f_img.GetSize()) - 1) / 2)))
            mc = np.asarray(m_img.TransformContinuousIndexToPhysicalPoint(tuple((np.asarray(m_img.GetSize()) - 1) / 2)))
            alt.SetCenter(tuple(fc))
            alt.SetTranslation(tuple(mc - fc))
            t2, rec2 = _run_stage(name, f_img, m_img, alt, seed + 5, sampling, bins, iterations)
            if final_metric(f_img, m_img, t2, bins) < final_metric(f_img, m_img, transform, bins):
                transform, rec = t2, {**rec2, "restart": "field-of-view centres"}
        records.append(rec)
    metric = final_metric(f_img, m_img, transform, bins)
    overlap = overlap_fraction(f_img, m_full, transform)
    if check and overlap < min_overlap:
        raise InputError("moving", f"the scans do not overlap: after registration {overlap:.0%} of the fixed scan lies "
                                   f"inside the moving one (at least {min_overlap:.0%} needed)")
    if check and metric > metric_threshold:
        raise InputError("moving", f"registration failed: final metric {metric:.3f} (Mattes MI) is above the threshold "
                                   f"{metric_threshold:.3f}; not the same specimen, or too far apart to start")
    shape, sp, origin = moved_grid(fixed, moving, out_spacing)
    moved = resample_moving(moving, transform, shape, sp, origin)
    return RegistrationResult(transform, moved, metric, float(metric_threshold), overlap, time.perf_counter() - t0, records)


def checkerboard_png(fixed: Volume, moved: Volume, path: str | Path, squares: int = 8, force: bool = False) -> Path:
    """A PNG for checking by eye: the central axial, coronal and sagittal slices of the fixed scan, of a
    checkerboard of fixed and moved (moved resampled onto the fixed grid, each scaled to its own 1–99 %
    range), and of an overlay (fixed in magenta, moved in green)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shape = fixed.shape
    on_fixed = resample_moving(moved, sitk.Transform(3, sitk.sitkIdentity), shape, fixed.spacing, fixed.origin)

    def norm(a: np.ndarray) -> np.ndarray:
        lo, hi = np.percentile(a, [1, 99])
        return np.clip((a - lo) / max(hi - lo, 1e-6), 0, 1)

    f, m = norm(np.asarray(fixed.numpy(), float)), norm(on_fixed.numpy().astype(float))
    cuts = [(lambda a: a[shape[0] // 2], fixed.spacing[1], fixed.spacing[2], "axial"),
            (lambda a: a[:, shape[1] // 2], fixed.spacing[0], fixed.spacing[2], "coronal"),
            (lambda a: a[:, :, shape[2] // 2], fixed.spacing[0], fixed.spacing[1], "sagittal")]
    fig, axes = plt.subplots(3, 3, figsize=(9, 9))
    for row, (cut, sr, sc, name) in enumerate(cuts):
        a, b = cut(f), cut(m)
        yy, xx = np.mgrid[:a.shape[0], :a.shape[1]]
        board = ((yy * squares // a.shape[0] + xx * squares // a.shape[1]) % 2).astype(bool)
        aspect = sr / sc
        axes[row, 0].imshow(a, cmap="gray", aspect=aspect)
        axes[row, 1].imshow(np.where(board, a, b), cmap="gray", aspect=aspect)
        axes[row, 2].imshow(np.dstack([a, b, a]), aspect=aspect)
        axes[row, 0].set_ylabel(name)
    for ax, title in zip(axes[0], ("fixed", "checkerboard fixed | moved", "overlay fixed (magenta) / moved (green)"), strict=True):
        ax.set_title(title, fontsize=9)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    path = Path(path)
    with atomic_output(path, force=force) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    return path


def write_registration(result: RegistrationResult, fixed: Volume, out_dir: str | Path, force: bool = False) -> dict[str, Path]:
    """Write a registration into ``out_dir``: ``transform.tfm`` (ITK, readable by 3D Slicer; ``.h5`` with a
    B-spline stage), ``moved.nii.gz``, ``overlay.png`` and ``registration.json``. Returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tname = "transform.h5" if isinstance(result.transform, sitk.CompositeTransform) else "transform.tfm"
    paths = {"transform": out / tname, "moved": out / "moved.nii.gz", "overlay": out / "overlay.png",
             "summary": out / "registration.json"}
    if not force:
        for p in paths.values():
            if p.exists():
                raise InputError(p, "already exists (use --force to overwrite)")
    with atomic_output(paths["transform"], force=True) as tmp:  # the temporary name keeps the suffix ITK reads
        sitk.WriteTransform(result.transform, str(tmp))
    write_volume(result.moved, paths["moved"], force=True)
    checkerboard_png(fixed, result.moved, paths["overlay"], force=True)
    with atomic_output(paths["summary"], force=True) as tmp:
        Path(tmp).write_text(json.dumps(result.summary(), indent=1))
    return paths
