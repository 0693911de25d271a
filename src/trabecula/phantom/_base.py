"""The :class:`Phantom` type, the material vocabulary and helpers shared by the phantom generators.

A phantom is a label volume (``units="label"``, uint8) on a fine grid whose
``provenance.extra["materials"]`` maps each label id (as a string) to a material name from
:data:`MATERIALS`. Label ids are the material's index in :data:`MATERIALS`, the same in every phantom
(``0`` air, ``1`` water, …, ``7`` bone, …). The scanner stage (``trabecula.scanner.materials``) turns
material names into linear attenuation coefficients per energy; phantoms only name materials.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trabecula.errors import ParameterError
from trabecula.volume import Provenance, Volume, as_spacing

#: The hydroxyapatite concentrations (mg HA/cm³) of the calibration inserts, as in the QRM and Scanco HA
#: phantoms; each is a material ``ha<C>`` (``ha0`` … ``ha800``), HA in a water-equivalent resin
#: (composition: :func:`trabecula.scanner.materials.ha_composition`).
HA_CONCENTRATIONS: tuple[int, ...] = (0, 100, 200, 400, 800)


def ha_material(concentration: float) -> str:
    """The material name of the HA calibration insert of ``concentration`` mg HA/cm³ (``100`` → ``"ha100"``);
    ParameterError for a concentration that has no material."""
    try:
        c = float(concentration)
    except (TypeError, ValueError) as exc:
        raise ParameterError("concentration", f"expected a number (mg HA/cm³), got {concentration!r}") from exc
    if not any(c == k for k in HA_CONCENTRATIONS):
        raise ParameterError("concentration", f"no HA insert of {concentration!r} mg/cm³; use one of "
                                              f"{', '.join(str(k) for k in HA_CONCENTRATIONS)}")
    return f"ha{int(c)}"


#: Material vocabulary shared with the scanner stage; a label id is the index in this tuple.
#: ``marrow`` is 50/50 red/yellow marrow by mass (ICRU-46); ``bone`` is cortical bone tissue (ICRU-46),
#: the tissue trabecular struts are made of too; ``pbs`` is phosphate-buffered saline; ``ha0`` … ``ha800``
#: the HA calibration inserts (:data:`HA_CONCENTRATIONS`). New materials are appended last so that the
#: earlier label ids never change.
MATERIALS: tuple[str, ...] = (
    "air", "water", "soft_tissue", "adipose", "red_marrow", "yellow_marrow", "marrow",
    "bone", "pmma", "aluminium", "tungsten", "pbs",
    *(f"ha{c}" for c in HA_CONCENTRATIONS),
)

LABEL: dict[str, int] = {name: i for i, name in enumerate(MATERIALS)}


@dataclass(eq=False)
class Phantom:
    """A phantom: material labels, the binary truth of its trabecular bone and what it is.

    Attributes
    ----------
    labels : Volume
        ``units="label"``, uint8 material ids; ``labels.provenance.extra["materials"]`` maps id (str)
        → material name.
    truth : Volume or None
        ``units="binary"`` (uint8 0/1) trabecular bone (struts) on the same grid, cortex excluded;
        ``None`` for test objects.
    voi : Volume or None
        ``units="binary"`` mask of the trabecular region (where morphometry of ``truth`` is meaningful);
        ``None`` means the whole grid.
    description : str
        One line saying what the phantom is.
    params : dict
        Generator settings and measured facts (e.g. the calibrated foam parameters and the morphometry
        the calibration measured), JSON-able; also copied to ``labels.provenance.extra["phantom"]``.
    """

    labels: Volume
    truth: Volume | None = None
    voi: Volume | None = None
    description: str = ""
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def materials(self) -> dict[str, str]:
        """Label id (str) → material name."""
        return dict(self.labels.provenance.extra.get("materials", {}))

    @property
    def spacing(self) -> tuple[float, float, float]:
        return self.labels.spacing

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.labels.shape

    def fraction(self, material: str) -> float:
        """Volume fraction of one material over the whole grid."""
        return float(np.mean(self.labels.numpy() == LABEL[material]))

    def __repr__(self) -> str:
        mats = ", ".join(sorted(set(self.materials.values())))
        return f"Phantom({self.description!r}, {self.labels!r}, materials: {mats})"


def check_material(name: str, param: str = "material") -> int:
    """Label id of a material name, or ParameterError naming the parameter."""
    if name not in LABEL:
        raise ParameterError(param, f"unknown material {name!r}; use one of {', '.join(MATERIALS)}")
    return LABEL[name]


def positive(value: float, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise ParameterError(name, f"expected a number, got {value!r}") from exc
    if not (math.isfinite(v) and v > 0):
        raise ParameterError(name, f"must be a positive number (mm), got {value!r}")
    return v


def triple_mm(value: float | Sequence[float], name: str) -> tuple[float, float, float]:
    """(z, y, x) positive lengths in mm from one number or three."""
    vals = [value] * 3 if np.isscalar(value) else list(value)  # type: ignore[list-item]
    if len(vals) != 3:
        raise ParameterError(name, f"expected one number or three (z, y, x), got {value!r}")
    return tuple(positive(v, name) for v in vals)  # type: ignore[return-value]


def grid_shape(size_mm: Sequence[float], voxel_mm: float, name: str = "voxel_mm", min_voxels: int = 2) -> tuple[int, int, int]:
    """Voxel counts covering ``size_mm`` at ``voxel_mm``; the voxel must be smaller than the object."""
    shape = tuple(int(round(s / voxel_mm)) for s in size_mm)
    if min(shape) < min_voxels:
        raise ParameterError(name, f"voxel {voxel_mm:g} mm is too coarse for an object of {tuple(size_mm)} mm "
                                   f"(needs at least {min_voxels} voxels per axis)")
    return shape  # type: ignore[return-value]


def centred_origin(shape: Sequence[int], voxel_mm: float) -> tuple[float, float, float]:
    """Origin (centre of voxel [0,0,0], mm) that puts the centre of the grid at the world origin."""
    return tuple(-(n - 1) / 2.0 * voxel_mm for n in shape)  # type: ignore[return-value]


def make_phantom(labels: np.ndarray, voxel_mm: float | Sequence[float], name: str, description: str,
                 params: dict[str, Any], truth: np.ndarray | None = None, voi: np.ndarray | None = None,
                 origin: Sequence[float] | None = None) -> Phantom:
    """Wrap label/truth/VOI arrays into a :class:`Phantom` with materials and provenance filled in."""
    spacing = as_spacing(voxel_mm, name="voxel_mm")
    if origin is None:
        origin = tuple(-(n - 1) / 2.0 * s for n, s in zip(labels.shape, spacing, strict=True))
    present = np.unique(labels)
    materials = {str(int(i)): MATERIALS[int(i)] for i in present}
    extra = {"materials": materials, "phantom": {"kind": name, **params}}
    step = f"{name}[" + ", ".join(f"{k}={_short(v)}" for k, v in params.items() if not isinstance(v, dict)) + "]"
    prov = Provenance(source=f"trabecula.phantom.{name}", steps=[step], extra=extra)
    lab = Volume(labels.astype(np.uint8, copy=False), spacing, tuple(origin), "label", prov)
    tv = vv = None
    if truth is not None:
        tv = Volume(truth.astype(np.uint8, copy=False), spacing, tuple(origin), "binary",
                    Provenance(source=f"trabecula.phantom.{name}", steps=[f"{name} truth"],
                               extra={"phantom": {"kind": name}}))
    if voi is not None:
        vv = Volume(voi.astype(np.uint8, copy=False), spacing, tuple(origin), "binary",
                    Provenance(source=f"trabecula.phantom.{name}", steps=[f"{name} trabecular VOI"]))
    return Phantom(lab, tv, vv, description, params)


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list | tuple):
        return "(" + ",".join(_short(x) for x in v) + ")"
    return str(v)


def supersampled_mask(shape: Sequence[int], voxel_mm: float, inside, factor: int = 3, chunk: int = 8) -> np.ndarray:
    """Boolean mask of voxels whose centre-of-mass majority lies inside a region.

    ``inside(z, y, x)`` takes broadcastable world coordinates (mm, centre of the grid at 0) and returns a
    boolean array. Each voxel is sampled at ``factor³`` sub-positions; a voxel is inside when more than
    half of them are (a volume-preserving rasterisation: edges of thin objects land within half a voxel).
    """
    nz, ny, nx = (int(n) for n in shape)
    offs = (np.arange(factor) + 0.5) / factor - 0.5
    ys = (np.arange(ny) - (ny - 1) / 2.0) * voxel_mm
    xs = (np.arange(nx) - (nx - 1) / 2.0) * voxel_mm
    out = np.zeros((nz, ny, nx), bool)
    for z0 in range(0, nz, chunk):
        z1 = min(nz, z0 + chunk)
        zs = (np.arange(z0, z1) - (nz - 1) / 2.0) * voxel_mm
        count = np.zeros((z1 - z0, ny, nx), np.uint16)
        for oz in offs:
            for oy in offs:
                for ox in offs:
                    count += inside((zs + oz * voxel_mm)[:, None, None], (ys + oy * voxel_mm)[None, :, None],
                                    (xs + ox * voxel_mm)[None, None, :])
        out[z0:z1] = count * 2 > factor ** 3
    return out
