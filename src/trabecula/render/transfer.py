"""Transfer functions: voxel value → colour and opacity, and how a cut face is drawn.

A :class:`TransferFunction` is a piecewise-linear map from the volume's values (in the volume's
units: HU, attenuation per mm, grey, binary …) to RGB (0..1) and an *opacity per voxel*: the opacity
of a slab one voxel thick (the smallest voxel spacing), the convention of most volume renderers. The
renderer corrects it for its sampling step, ``alpha_step = 1 - (1 - alpha) ** (step / voxel)``
(Max 1995, "Optical models for direct volume rendering", IEEE TVCG 1(2)), so the picture does not
depend on the step.

Where a clip plane or box cuts through material (virtual sectioning), the cut face shows the values
on the plane in a greyscale window ``cut_window = (level, width)``; values below ``cut_min`` (air,
soft tissue that the transfer function fades out) leave the face transparent so the structure behind
it stays visible.

:func:`bone_transfer_function` gives the bone look: cortex ivory and opaque, trabeculae ivory and
nearly opaque, marrow dim red-brown, soft tissue faded (faint, or invisible by default so the bone
looks like an extracted specimen), air transparent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trabecula.errors import ParameterError

#: Linear attenuation of water (1/mm) used to express the HU transfer function in attenuation units
#: (about 70 keV, NIST XCOM: 0.0193 /mm); HU = 1000 (mu - mu_w) / mu_w.
MU_WATER_PER_MM = 0.0193

#: Cut-face window (level, width) in HU: a bone window wide enough that cortex (~1700 HU) is not clipped white.
CUT_WINDOW_HU = (600.0, 2600.0)

_IVORY = (0.93, 0.88, 0.77)
_IVORY_BRIGHT = (0.97, 0.94, 0.86)
_MARROW = (0.55, 0.27, 0.20)
_SOFT = (0.85, 0.58, 0.52)


@dataclass(frozen=True)
class TransferFunction:
    """Piecewise-linear value → (r, g, b, opacity per voxel), plus the cut-face window.

    Parameters
    ----------
    points : sequence of (value, (r, g, b), alpha)
        Control points in the volume's units, sorted by value; colours in 0..1, ``alpha`` the
        opacity of one voxel (0..1). Below the first and above the last point the end values hold.
    units : str
        The units the values are in (checked against the volume's units by the renderer).
    cut_window : (level, width)
        Greyscale window of the cut face (values in ``units``).
    cut_min : float
        Values below this leave the cut face transparent.
    gradient_ref : float
        Gradient magnitude (units per voxel) above which a sample is shaded fully as a surface;
        weaker gradients are shaded in proportion (homogeneous regions get ambient light only).
    name : str
    """

    points: tuple[tuple[float, tuple[float, float, float], float], ...]
    units: str = "HU"
    cut_window: tuple[float, float] = (500.0, 2000.0)
    cut_min: float = 150.0
    gradient_ref: float = 100.0
    name: str = "custom"
    _lut: dict = field(default_factory=dict, compare=False, repr=False, hash=False)

    def __post_init__(self) -> None:
        pts = tuple((float(v), tuple(float(c) for c in rgb), float(a)) for v, rgb, a in self.points)
        if len(pts) < 2:
            raise ParameterError("tf", "a transfer function needs at least two control points")
        vals = [p[0] for p in pts]
        if any(b < a for a, b in zip(vals, vals[1:], strict=False)) or vals[-1] <= vals[0]:
            raise ParameterError("tf", f"control point values must increase, got {vals}")
        for v, rgb, a in pts:
            if len(rgb) != 3 or not all(0.0 <= c <= 1.0 for c in rgb) or not 0.0 <= a <= 1.0:
                raise ParameterError("tf", f"colour and alpha must lie in 0..1 (point at {v:g})")
        if not self.cut_window[1] > 0:
            raise ParameterError("tf", f"cut_window width must be positive, got {self.cut_window}")
        object.__setattr__(self, "points", pts)

    @property
    def vmin(self) -> float:
        return self.points[0][0]

    @property
    def vmax(self) -> float:
        return self.points[-1][0]

    def __call__(self, values: np.ndarray | float) -> np.ndarray:
        """RGBA (last axis, 0..1; alpha per voxel) at ``values`` by linear interpolation."""
        v = np.asarray(values, dtype=np.float64)
        xs = np.array([p[0] for p in self.points])
        out = np.empty(v.shape + (4,), np.float32)
        for k in range(3):
            out[..., k] = np.interp(v, xs, [p[1][k] for p in self.points])
        out[..., 3] = np.interp(v, xs, [p[2] for p in self.points])
        return out

    def lut(self, n: int = 4096) -> np.ndarray:
        """``(n, 4)`` float32 table over ``[vmin, vmax]`` (entry ``k`` at ``vmin + k (vmax - vmin)/(n-1)``)."""
        if n not in self._lut:
            self._lut[n] = self(np.linspace(self.vmin, self.vmax, n))
        return self._lut[n]

    def with_units(self, units: str) -> TransferFunction:
        return TransferFunction(self.points, units, self.cut_window, self.cut_min, self.gradient_ref, self.name)


def _scaled(points, f) -> tuple:
    return tuple((f(v), rgb, a) for v, rgb, a in points)


def bone_transfer_function(
    units: str = "HU",
    *,
    soft_tissue: float = 0.0,
    marrow: float = 0.02,
    bone_threshold: float | None = None,
    values: np.ndarray | None = None,
    mu_water: float = MU_WATER_PER_MM,
) -> TransferFunction:
    """The bone look: ivory opaque cortex and trabeculae, dim marrow, faded soft tissue, clear air.

    In HU the control points are: air and fat (< -100 HU) transparent; soft tissue (0–100 HU) pink
    with opacity ``soft_tissue`` per voxel (0 = removed, the "extracted specimen" look; 0.003–0.01
    gives a faint skin); partial-volume marrow and thin trabeculae (180–300 HU) red-brown with
    opacity ``marrow``; trabecular bone from ``bone_threshold`` (default 350 HU) rising to ivory and
    opaque by 800 HU; cortex (≥ 1200 HU) bright ivory, fully opaque. The cut face shows the bone
    window (level 600, width 2600 HU) and is transparent below 400 HU (or ``bone_threshold``): bone
    is cut, marrow and soft tissue let the view into the lattice behind.

    Other units:

    * ``attenuation_per_mm``: the HU points converted with ``mu = mu_water (1 + HU/1000)``;
    * ``binary`` (0/1) and ``label`` (0 = background): the 0.5 iso-surface is opaque ivory;
    * ``grey``, ``mm`` or anything uncalibrated: the HU shape is mapped linearly onto the values'
      range, -1000 HU → 0.5th percentile and 1500 HU → 99.5th percentile of ``values`` (required),
      unless ``bone_threshold`` gives the bone level in the volume's own units.

    Returns
    -------
    TransferFunction
    """
    if not 0.0 <= soft_tissue <= 1.0 or not 0.0 <= marrow <= 1.0:
        raise ParameterError("tf", "soft_tissue and marrow opacities must lie in 0..1")
    if units in ("binary", "label"):
        pts = ((0.0, _IVORY, 0.0), (0.35, _IVORY, 0.0), (0.5, _IVORY, 0.9), (1.0, _IVORY_BRIGHT, 1.0))
        return TransferFunction(pts, units, cut_window=(0.45, 1.3), cut_min=0.5, gradient_ref=0.1, name="bone")
    bt = 350.0 if (bone_threshold is None or units != "HU") else float(bone_threshold)
    hu_pts = [
        (-1000.0, _SOFT, 0.0),
        (-120.0, _SOFT, 0.0),
        (-20.0, _SOFT, soft_tissue),
        (100.0, _SOFT, soft_tissue),
        (120.0, _MARROW, 0.0),
        (180.0, _MARROW, marrow),
        (min(300.0, bt - 10.0), _MARROW, marrow),
        (bt, _IVORY, 0.35),
        (max(800.0, bt + 100.0), _IVORY, 0.95),
        (max(1200.0, bt + 300.0), _IVORY_BRIGHT, 1.0),
        (3000.0, _IVORY_BRIGHT, 1.0),
    ]
    cut_min_hu = 400.0 if bone_threshold is None else bt
    if units == "HU":
        return TransferFunction(tuple(hu_pts), "HU", CUT_WINDOW_HU, cut_min_hu, 100.0, "bone")
    if units == "attenuation_per_mm":
        f = lambda hu: mu_water * (1.0 + hu / 1000.0)  # noqa: E731
        return TransferFunction(_scaled(hu_pts, f), units, (f(CUT_WINDOW_HU[0]), CUT_WINDOW_HU[1] * mu_water / 1000.0), f(cut_min_hu),
                                100.0 * mu_water / 1000.0, "bone")
    # uncalibrated: map HU -1000..1500 onto the values' robust range (or put the bone threshold where given)
    if values is None:
        raise ParameterError("tf", f"a bone transfer function for units {units!r} needs the volume's values (values=)")
    v = np.asarray(values)
    if v.size > 2_000_000:
        v = v.reshape(-1)[:: max(1, v.size // 2_000_000)]
    lo, hi = (float(x) for x in np.nanpercentile(v, [0.5, 99.5]))
    if not hi > lo:
        hi = lo + 1.0
    if bone_threshold is not None:  # keep the shape, pin 350 HU to the given value
        scale = (hi - lo) / 2500.0
        off = float(bone_threshold) - 350.0 * scale
    else:
        scale = (hi - lo) / 2500.0
        off = lo + 1000.0 * scale
    f = lambda hu: off + hu * scale  # noqa: E731
    return TransferFunction(_scaled(hu_pts, f), units, (f(CUT_WINDOW_HU[0]), CUT_WINDOW_HU[1] * scale), f(cut_min_hu),
                            100.0 * scale, "bone")



def value_sample(data: Any, n: int = 2_000_000) -> np.ndarray:
    """A strided sample of about ``n`` values (for transfer functions of uncalibrated volumes)."""
    k = max(1, round((int(np.prod(data.shape)) / n) ** (1 / 3)))
    s = data[::k, ::k, ::k]
    return np.asarray(s.compute() if hasattr(s, "compute") else s)


def transfer_function_for(vol, soft_tissue: float = 0.0) -> TransferFunction:
    """:func:`bone_transfer_function` for a volume: calibrated units (HU, attenuation, binary, label) use
    fixed control points; grey values are placed from a sample of the volume's own values."""
    calibrated = vol.units in ("HU", "attenuation_per_mm", "binary", "label")
    return bone_transfer_function(vol.units, soft_tissue=soft_tissue,
                                  values=None if calibrated else value_sample(vol.data))
