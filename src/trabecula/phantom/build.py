"""Build any phantom by kind name: one entry point over the generators, for the command line and studies.

:func:`build` maps a kind (:data:`KINDS`) and library-named parameters onto its generator; a parameter left
out (or None) takes the generator's own default, so the defaults live in one place — the generators'
signatures (:func:`defaults` lists them per kind). A parameter that does not apply to the kind is a
ParameterError naming it. :func:`write_phantom` writes a phantom's volumes, :func:`with_materials` gives a
label volume from elsewhere the phantom stage's material map, and :func:`phantom_summary` the rows that
describe a phantom.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from trabecula.errors import ParameterError
from trabecula.io import write_volume
from trabecula.phantom._base import MATERIALS, Phantom
from trabecula.phantom.anatomy import phalanx, vertebral_body, wrist
from trabecula.phantom.calibration import calibration_phantom
from trabecula.phantom.objects import bar_pattern, slanted_edge, water_cylinder, wire
from trabecula.phantom.real import from_binary, lookalike
from trabecula.phantom.trabecular import trabecular_cube
from trabecula.volume import Volume

#: The kinds :func:`build` makes.
KINDS: tuple[str, ...] = ("trabecular-cube", "vertebra", "phalanx", "wrist", "wire", "edge", "water", "bars", "lookalike",
                          "real", "calibration")

#: Every parameter :func:`build` knows (each applies to some kinds only).
PARAMETERS: tuple[str, ...] = ("size_mm", "voxel_mm", "bvtv", "tb_th_mm", "tb_sp_mm", "plate_fraction", "anisotropy",
                               "main_axis", "seed", "calibrate", "angle_deg", "lp", "material", "like", "upsample")

#: Per kind: the generator and {build parameter: generator argument}.
_GENERATORS: dict[str, tuple[Callable[..., Phantom], dict[str, str]]] = {
    "trabecular-cube": (trabecular_cube, {p: p for p in ("size_mm", "voxel_mm", "bvtv", "tb_th_mm", "tb_sp_mm",
                                                         "plate_fraction", "anisotropy", "main_axis", "seed",
                                                         "calibrate")}),
    "vertebra": (vertebral_body, {"size_mm": "size_mm", "voxel_mm": "voxel_mm", "seed": "seed"}),
    "phalanx": (phalanx, {"size_mm": "length_mm", "voxel_mm": "voxel_mm", "seed": "seed"}),
    "wrist": (wrist, {"size_mm": "slab_mm", "voxel_mm": "voxel_mm", "seed": "seed"}),
    "wire": (wire, {"size_mm": "diameter_mm", "voxel_mm": "voxel_mm", "material": "material"}),
    "edge": (slanted_edge, {"angle_deg": "angle_deg", "voxel_mm": "voxel_mm", "material": "material"}),
    "water": (water_cylinder, {"size_mm": "diameter_mm", "voxel_mm": "voxel_mm"}),
    "bars": (bar_pattern, {"lp": "lp_per_mm", "voxel_mm": "voxel_mm", "material": "material"}),
    "lookalike": (lookalike, {"like": "real", "voxel_mm": "voxel_mm", "seed": "seed", "size_mm": "size_mm",
                              "anisotropy": "anisotropy", "main_axis": "main_axis", "plate_fraction": "plate_fraction"}),
    "real": (from_binary, {"like": "binary", "upsample": "upsample"}),
    "calibration": (calibration_phantom, {"size_mm": "length_mm", "voxel_mm": "voxel_mm"}),
}

#: Kinds whose ``size_mm`` is one length (phalanx and calibration: the length; wrist: the slab; wire and water:
#: the diameter);
#: the others take one number or (z, y, x).
_ONE_LENGTH = ("phalanx", "wrist", "wire", "water", "calibration")

#: The vertebra's trabecular core: morphometry targets, and the foam settings that go with a calibration.
_VERTEBRA_TARGETS = ("bvtv", "tb_th_mm", "tb_sp_mm")
_VERTEBRA_FOAM = ("plate_fraction", "anisotropy", "calibrate")


def applicable(kind: str) -> tuple[str, ...]:
    """The parameters of :data:`PARAMETERS` that apply to ``kind``."""
    _check_kind(kind)
    names = tuple(_GENERATORS[kind][1])
    return names + _VERTEBRA_TARGETS + _VERTEBRA_FOAM if kind == "vertebra" else names


def defaults(kind: str) -> dict[str, Any]:
    """{parameter: default} for ``kind``, read from its generator's signature (None: computed by the
    generator, or required, as ``like``). A vertebra's targets default to None (its built-in foam, not
    calibrated); given a target, its foam settings default to the trabecular cube's."""
    _check_kind(kind)
    gen, args = _GENERATORS[kind]
    out = {name: _default(gen, arg) for name, arg in args.items()}
    if kind == "vertebra":
        out.update({name: None for name in _VERTEBRA_TARGETS})
        out.update({name: _default(trabecular_cube, name) for name in _VERTEBRA_FOAM})
    return out


def build(kind: str, **params: Any) -> Phantom:
    """Build a phantom of ``kind`` (one of :data:`KINDS`).

    Parameters (library names; None or absent = the kind's default, see :func:`defaults`):
    ``size_mm`` (one number or (z, y, x); for ``phalanx`` and ``calibration`` (the HA rod phantom) the length,
    for ``wrist`` the axial slab's thickness,
    for ``wire`` and ``water`` the diameter), ``voxel_mm``, ``bvtv``, ``tb_th_mm``, ``tb_sp_mm``, ``plate_fraction``, ``anisotropy``,
    ``main_axis``, ``seed``, ``calibrate``, ``angle_deg`` (edge), ``lp`` (bars, lp/mm), ``material`` (wire, edge,
    bars), ``like`` (a binary Volume: required by ``lookalike`` and ``real``), ``upsample`` (real).

    A ``vertebra`` given any of ``bvtv``/``tb_th_mm``/``tb_sp_mm`` calibrates its trabecular core to them
    (``plate_fraction``, ``anisotropy`` and ``calibrate`` then apply too); without one it uses its built-in
    foam. Unknown or non-applicable parameters are ParameterErrors naming the parameter.

    >>> build("wire").description
    '0.025 mm tungsten wire along z in air'
    """
    _check_kind(kind)
    given = {k: v for k, v in params.items() if v is not None}
    for name in given:
        if name not in PARAMETERS:
            raise ParameterError(name, f"unknown phantom parameter; use one of {', '.join(PARAMETERS)}")
        if name not in applicable(kind):
            raise ParameterError(name, f"does not apply to kind {kind!r} (it takes {', '.join(applicable(kind))})")
    if "like" in _GENERATORS[kind][1] and "like" not in given:
        raise ParameterError("like", f"kind {kind!r} needs like= (a binary micro-CT Volume)")
    if "size_mm" in given:
        given["size_mm"] = _size(given["size_mm"], kind)
    gen, args = _GENERATORS[kind]
    kwargs = {args[name]: value for name, value in given.items() if name in args}
    if kind == "vertebra":
        kwargs["trabecular"] = _vertebra_core(given)
    return gen(**kwargs)


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ParameterError("kind", f"unknown kind {kind!r}; use one of {', '.join(KINDS)}")


def _default(gen: Callable[..., Any], arg: str) -> Any:
    d = inspect.signature(gen).parameters[arg].default
    return None if d is inspect.Parameter.empty else d


def _size(value: float | Sequence[float], kind: str) -> float | tuple[float, float, float]:
    """``size_mm`` as the kind takes it: one float (one-length kinds) or (z, y, x) floats."""
    vals = [value] if np.isscalar(value) else list(value)  # type: ignore[arg-type]
    try:
        nums = [float(v) for v in vals]
    except (TypeError, ValueError) as exc:
        raise ParameterError("size_mm", f"expected numbers, got {value!r}") from exc
    if kind in _ONE_LENGTH:
        if len(nums) != 1:
            raise ParameterError("size_mm", f"kind {kind!r} takes one length, got {value!r}")
        return nums[0]
    if len(nums) not in (1, 3):
        raise ParameterError("size_mm", f"expected one number or z,y,x, got {value!r}")
    return tuple(nums * 3 if len(nums) == 1 else nums)  # type: ignore[return-value]


def _vertebra_core(given: dict[str, Any]) -> dict[str, Any] | None:
    """The vertebra's ``trabecular=`` argument: None (built-in foam) or targets with their foam settings."""
    if not any(name in given for name in _VERTEBRA_TARGETS):
        for name in _VERTEBRA_FOAM:
            if name in given:
                raise ParameterError(name, "applies to kind 'vertebra' only with a target (bvtv, tb_th_mm or tb_sp_mm)")
        return None
    foam = {name: given.get(name, _default(trabecular_cube, name)) for name in _VERTEBRA_FOAM}
    return {"bvtv": given.get("bvtv"), "tb_th_mm": given.get("tb_th_mm"), "tb_sp_mm": given.get("tb_sp_mm"),
            "calibrate": foam["calibrate"], "plate_fraction": foam["plate_fraction"], "anisotropy": foam["anisotropy"]}


def with_materials(vol: Volume) -> Volume:
    """A label volume with its material map: one that names its materials (``provenance.extra["materials"]``)
    is returned as a label volume; one from elsewhere gets the phantom stage's label convention (label id =
    index in :data:`~trabecula.phantom._base.MATERIALS`), with a warning. Not a label volume: ParameterError."""
    if vol.units not in ("label", "binary") and vol.dtype.kind not in "ui":
        raise ParameterError("phantom", f"expected a label volume (units label), got units {vol.units}")
    if vol.provenance.extra.get("materials"):
        return vol if vol.units == "label" else vol.replace(units="label")
    ids = [int(v) for v in np.unique(vol.numpy())]
    if any(i < 0 or i >= len(MATERIALS) for i in ids):
        raise ParameterError("phantom", f"labels {ids} have no materials in the file and are outside 0…{len(MATERIALS) - 1}")
    warnings.warn("the phantom file names no materials; using trabecula's label convention "
                  f"({', '.join(f'{i}={MATERIALS[i]}' for i in ids)})", stacklevel=2)
    prov = vol.provenance
    prov = dataclasses.replace(prov, extra={**prov.extra, "materials": {str(i): MATERIALS[i] for i in ids}})
    return vol.replace(units="label", provenance=prov)


def phantom_summary(ph: Phantom) -> list[tuple[str, str]]:
    """Rows (name, text) describing a phantom: what it is, its grid, its materials with their volume
    fractions, and the morphometry measured on it (and on the real region it copies, if any)."""
    rows = [
        ("phantom", ph.description),
        ("grid", f"{ph.shape[0]} × {ph.shape[1]} × {ph.shape[2]} at {ph.spacing[0]:g} mm"),
        ("materials", ", ".join(f"{i} {m} ({100 * ph.fraction(m):.1f} %)"
                                for i, m in sorted(ph.materials.items(), key=lambda kv: int(kv[0])))),
    ]
    meas = ph.params.get("measured")
    if meas:
        rows.append(("measured", _morphometry(meas)))
    if "real" in ph.params:
        rows.append(("real", _morphometry(ph.params["real"])))
    return rows


def write_phantom(ph: Phantom, out: str | os.PathLike, *, truth: str | os.PathLike | None = None,
                  voi: str | os.PathLike | None = None, force: bool = False) -> list[Path]:
    """Write a phantom's label volume to ``out`` and, where asked, its trabecular truth and VOI (atomic writes,
    no overwrite without ``force``); returns the paths written. Asking for a truth or VOI the phantom lacks is a
    ParameterError (``truth``, ``voi``), raised before anything is written."""
    if truth is not None and ph.truth is None:
        raise ParameterError("truth", f"{ph.description} has no trabecular truth")
    if voi is not None and ph.voi is None:
        raise ParameterError("voi", f"{ph.description} has no trabecular VOI (the whole grid is trabecular)")
    parts = [(ph.labels, out), (ph.truth, truth), (ph.voi, voi)]
    return [write_volume(vol, path, force=force) for vol, path in parts if path is not None]


def _morphometry(m: dict[str, float]) -> str:
    return f"BV/TV {m['bv_tv']:.3f}  Tb.Th {m['tb_th_mm']:.3f} mm  Tb.Sp {m['tb_sp_mm']:.3f} mm"


__all__ = ["KINDS", "PARAMETERS", "applicable", "defaults", "build", "write_phantom", "with_materials",
           "phantom_summary"]
