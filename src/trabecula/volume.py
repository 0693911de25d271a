"""The :class:`Volume`: the one type that flows between trabecula's stages.

Conventions (they hold everywhere in trabecula):

* the array is indexed ``(z, y, x)``; ``z`` is the slowest axis (slice), ``x`` the fastest (column);
* ``spacing`` is the voxel size in millimetres, ``(dz, dy, dx)``; anisotropic spacing is allowed;
* ``origin`` is the world position in millimetres of the *centre* of voxel ``[0, 0, 0]``, also in
  ``(z, y, x)`` order; world axes are DICOM/ITK patient axes (LPS: +x towards the patient's left,
  +y posterior, +z superior), and the array axes are aligned with them (readers reorient files to
  this frame and warn where a file is oblique);
* ``units`` names what the values are: ``HU`` (Hounsfield units, water 0, air -1000),
  ``attenuation_per_mm`` (linear attenuation coefficient in 1/mm), ``grey`` (uncalibrated grey
  values), ``binary`` (0/1 segmentation), ``label`` (integer label map), ``mm`` (a length map, e.g.
  local thickness) or ``mgHA_per_cm3`` (density in mg hydroxyapatite per cm³, a calibrated scan);
* ``provenance`` records where the data came from (source file, scanner) and every step applied.

The array may be a NumPy array or a lazy dask array (from zarr) for volumes larger than memory.
Methods never modify a volume in place; they return a new one with the step appended to its
provenance.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trabecula.errors import ParameterError

UNITS: tuple[str, ...] = ("HU", "attenuation_per_mm", "grey", "binary", "label", "mm", "mgHA_per_cm3")

#: Window presets as (level, width) in HU, the values radiology workstations use.
WINDOW_PRESETS: dict[str, tuple[float, float]] = {
    "bone": (500.0, 2000.0),
    "trabecular": (300.0, 1500.0),
    "soft": (40.0, 400.0),
    "soft-tissue": (40.0, 400.0),
    "lung": (-600.0, 1500.0),
}


@dataclass
class Provenance:
    """Where a volume came from and what was done to it.

    ``source`` is the file or folder it was read from (or a generator's name), ``scanner`` the
    scanner (real or simulated) that produced it, ``steps`` the processing steps in order, each a
    short human-readable string, and ``extra`` anything else worth keeping (e.g. DICOM tags).
    """

    source: str | None = None
    scanner: str | None = None
    steps: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def with_step(self, step: str) -> Provenance:
        return Provenance(self.source, self.scanner, [*self.steps, step], dict(self.extra))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, as every writer stores it; anonymised (:meth:`anonymised`) while the process setting
        :func:`set_anonymise_provenance` is on (the CLI's ``--anonymise-provenance``)."""
        p = self.anonymised() if _anonymise else self
        return {"source": p.source, "scanner": p.scanner, "steps": list(p.steps), "extra": _jsonable(p.extra)}

    def anonymised(self) -> Provenance:
        """A copy that keeps only base names of files and folders (in ``source``, the steps and ``extra``) and
        drops descriptions and identifiers from ``extra`` (SeriesDescription, PatientName, ProtocolName …)."""
        return Provenance(anonymise_path(self.source) if self.source else self.source, self.scanner,
                          [anonymise_text(s) for s in self.steps], _anonymise_extra(self.extra))

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Provenance:
        d = d or {}
        return cls(d.get("source"), d.get("scanner"), list(d.get("steps", [])), dict(d.get("extra", {})))


_anonymise = False

#: ``extra`` keys whose (lower-case, ``_``/space-free) name contains one of these are dropped when anonymising
_IDENTIFYING_KEYS = ("description", "patient", "physician", "operator", "institution", "accession", "protocolname",
                     "stationname", "studyid", "birth", "comment")
_TOKEN = re.compile(r"[^\s\[\](),;'\"=<>|]*[/\\][^\s\[\](),;'\"=<>|]*")


def set_anonymise_provenance(on: bool) -> None:
    """Process setting: while on, every provenance written (:meth:`Provenance.to_dict`, which every writer uses)
    keeps only base names and no descriptions (the CLI's global ``--anonymise-provenance``)."""
    global _anonymise
    _anonymise = bool(on)


def anonymise_provenance_enabled() -> bool:
    """Whether :func:`set_anonymise_provenance` is on."""
    return _anonymise


def anonymise_path(path: Any) -> str:
    """The base name of a file or folder path (either separator), e.g. ``/scans/smith/ct.nii`` → ``ct.nii``."""
    text = str(path)
    parts = [p for p in re.split(r"[/\\]", text) if p]
    return parts[-1] if parts else text


def anonymise_text(text: str) -> str:
    """``text`` with every path-like token reduced to its base name. A token is path-like when it starts with a
    separator, ``~``, ``.`` or a drive letter, has three or more parts, or ends in a file name with a suffix, so
    that units such as ``mg HA/cm³`` or ``lp/mm`` are kept."""

    def sub(m: re.Match) -> str:
        tok = m.group(0)
        parts = [p for p in re.split(r"[/\\]", tok) if p]
        if not parts:
            return tok
        pathlike = (tok[0] in "/\\~." or re.match(r"[A-Za-z]:[/\\]", tok) is not None or len(parts) >= 3
                    or re.search(r"\.[A-Za-z][A-Za-z0-9]*$", parts[-1]) is not None)
        return parts[-1] if pathlike else tok

    return _TOKEN.sub(sub, text)


def _anonymise_extra(obj: Any) -> Any:
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            key = re.sub(r"[\s_\-]", "", str(k).lower())
            if any(w in key for w in _IDENTIFYING_KEYS):
                continue
            out[k] = anonymise_path(v) if key.endswith(("source", "path", "file", "folder")) and isinstance(v, str) \
                else _anonymise_extra(v)
        return out
    if isinstance(obj, list | tuple):
        return type(obj)(_anonymise_extra(v) for v in obj)
    if isinstance(obj, str):
        return anonymise_text(obj)
    return obj


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, str | int | float | bool) or obj is None:
        return obj
    return str(obj)


_COUNT_WORDS = {1: "one", 2: "two", 3: "three"}
_AXES_TEXT = {1: "(x)", 2: "(y, x)", 3: "(z, y, x)"}


def as_spacing(spacing: float | Sequence[float], ndim: int = 3, name: str = "spacing") -> tuple[float, ...]:
    """Voxel size in mm as a tuple of ``ndim`` positive, finite floats (slowest axis first).

    Accepts one number (isotropic voxels) or a sequence of ``ndim`` numbers in array-axis order, ``(dz, dy, dx)``
    for a volume. Anything else — the wrong count, a non-number, NaN or infinity, zero or a negative size — is a
    :class:`ParameterError` naming ``name``.

    Examples
    --------
    >>> as_spacing(0.5)
    (0.5, 0.5, 0.5)
    >>> as_spacing((2, 0.5), ndim=2)
    (2.0, 0.5)
    """
    return _axis_values(spacing, ndim, name, positive=True)


def _axis_values(value: Any, ndim: int, name: str, positive: bool) -> tuple[float, ...]:
    """One number per axis from a scalar or a sequence of ``ndim`` numbers; finite, and positive if asked."""
    what = f"{_COUNT_WORDS.get(ndim, ndim)} numbers" + (f" {_AXES_TEXT[ndim]}" if ndim in _AXES_TEXT else "")
    values = (value,) * ndim if np.ndim(value) == 0 else value
    try:
        t = tuple(float(v) for v in values)
    except (TypeError, ValueError) as exc:
        raise ParameterError(name, f"expected {what}, got {value!r}") from exc
    if len(t) != ndim:
        raise ParameterError(name, f"expected {what}, got {len(t)}")
    if not all(math.isfinite(v) for v in t):
        raise ParameterError(name, f"must be finite, got {t}")
    if positive and not all(v > 0 for v in t):
        raise ParameterError(name, f"must be positive (mm), got {t}")
    return t


def is_lazy(array: Any) -> bool:
    """True for a dask (or other non-NumPy, chunked) array."""
    return not isinstance(array, np.ndarray)


@dataclass(eq=False)
class Volume:
    """A 3-D image with its geometry, units and provenance.

    Parameters
    ----------
    data : ndarray or dask array, shape (z, y, x)
    spacing : float or (dz, dy, dx)
        Voxel size in mm.
    origin : (z, y, x)
        World position (mm) of the centre of voxel ``[0, 0, 0]``.
    units : str
        One of :data:`UNITS`.
    provenance : Provenance

    Examples
    --------
    >>> import numpy as np
    >>> v = Volume(np.zeros((4, 5, 6), np.int16), spacing=(2.0, 0.5, 0.5), units="HU")
    >>> v.shape, v.extent_mm
    ((4, 5, 6), (8.0, 2.5, 3.0))
    """

    data: Any
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    units: str = "grey"
    provenance: Provenance = field(default_factory=Provenance)

    def __post_init__(self) -> None:
        if getattr(self.data, "ndim", None) != 3:
            raise ParameterError("data", f"a Volume is 3-D (z, y, x); got shape {getattr(self.data, 'shape', None)}")
        if any(n == 0 for n in self.data.shape):
            raise ParameterError("data", f"empty volume, shape {self.data.shape}")
        self.spacing = as_spacing(self.spacing)  # type: ignore[assignment]
        self.origin = _axis_values(self.origin, 3, "origin", positive=False)  # type: ignore[assignment]
        if self.units not in UNITS:
            raise ParameterError("units", f"unknown units {self.units!r}; expected one of {', '.join(UNITS)}")
        if isinstance(self.provenance, dict):
            self.provenance = Provenance.from_dict(self.provenance)

    # ------------------------------------------------------------------ basic properties
    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.data.shape)  # type: ignore[return-value]

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.data.dtype)

    @property
    def is_lazy(self) -> bool:
        return is_lazy(self.data)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * self.dtype.itemsize

    @property
    def extent_mm(self) -> tuple[float, float, float]:
        """Physical size (mm) of the field of view, voxel edge to voxel edge."""
        return tuple(round(n * s, 9) for n, s in zip(self.shape, self.spacing, strict=True))  # type: ignore[return-value]

    @property
    def voxel_volume_mm3(self) -> float:
        return float(np.prod(self.spacing))

    def numpy(self) -> np.ndarray:
        """The voxel values as an in-memory NumPy array (computes a lazy array)."""
        if isinstance(self.data, np.ndarray):
            return self.data
        return np.asarray(self.data.compute() if hasattr(self.data, "compute") else self.data[...])

    def __array__(self, dtype=None, copy=None):  # lets np.asarray(volume) work
        a = self.numpy()
        return a.astype(dtype) if dtype is not None else a

    def __repr__(self) -> str:
        lazy = ", lazy" if self.is_lazy else ""
        sp = ", ".join(f"{s:g}" for s in self.spacing)
        return f"Volume(shape={self.shape}, spacing=({sp}) mm, units={self.units}, dtype={self.dtype}{lazy})"

    # ------------------------------------------------------------------ derived volumes
    def replace(self, **changes: Any) -> Volume:
        """A copy with some fields replaced (``data``, ``spacing``, ``origin``, ``units``, ``provenance``)."""
        return dataclasses.replace(self, **changes)

    def with_data(self, data: Any, *, units: str | None = None, step: str | None = None) -> Volume:
        """Same geometry, new voxel values (same shape), optional new units and a provenance step."""
        if tuple(data.shape) != self.shape:
            raise ParameterError("data", f"shape {tuple(data.shape)} differs from the volume's {self.shape}")
        prov = self.provenance.with_step(step) if step else self.provenance
        return Volume(data, self.spacing, self.origin, units or self.units, prov)

    def with_step(self, step: str) -> Volume:
        return self.replace(provenance=self.provenance.with_step(step))

    def index_to_world(self, index: Sequence[float]) -> np.ndarray:
        """World position (mm, z/y/x) of a (fractional) voxel index."""
        return np.asarray(self.origin) + np.asarray(index, float) * np.asarray(self.spacing)

    def world_to_index(self, point_mm: Sequence[float]) -> np.ndarray:
        """Fractional voxel index of a world position (mm, z/y/x)."""
        return (np.asarray(point_mm, float) - np.asarray(self.origin)) / np.asarray(self.spacing)

    @property
    def center_mm(self) -> np.ndarray:
        """World position of the centre of the field of view."""
        return self.index_to_world((np.asarray(self.shape) - 1) / 2.0)

    def crop(
        self,
        z: tuple[int | None, int | None] | None = None,
        y: tuple[int | None, int | None] | None = None,
        x: tuple[int | None, int | None] | None = None,
    ) -> Volume:
        """Crop to voxel index ranges ``[start, stop)`` per axis (Python slice semantics).

        The origin moves with the crop, so world positions of the kept voxels are unchanged. Lazy
        arrays stay lazy.
        """
        slices = []
        for name, rng, n in zip("zyx", (z, y, x), self.shape, strict=True):
            if rng is None:
                slices.append(slice(0, n))
                continue
            start, stop = rng
            start = 0 if start is None else int(start)
            stop = n if stop is None else int(stop)
            if start < 0:
                start += n
            if stop < 0:
                stop += n
            start, stop = max(0, start), min(n, stop)
            if stop <= start:
                raise ParameterError("crop", f"empty range {rng} on axis {name} of size {n}")
            slices.append(slice(start, stop))
        starts = [s.start for s in slices]
        desc = ",".join(f"{s.start}:{s.stop}" for s in slices)
        return Volume(
            self.data[tuple(slices)],
            self.spacing,
            tuple(self.index_to_world(starts)),
            self.units,
            self.provenance.with_step(f"crop[{desc}]"),
        )

    def crop_mm(self, lower_mm: Sequence[float], upper_mm: Sequence[float]) -> Volume:
        """Crop to the voxels whose centres lie inside the world box ``[lower_mm, upper_mm]`` (z, y, x)."""
        lo = np.ceil(self.world_to_index(lower_mm) - 1e-6).astype(int)
        hi = np.floor(self.world_to_index(upper_mm) + 1e-6).astype(int) + 1
        return self.crop(*[(int(a), int(b)) for a, b in zip(lo, hi, strict=True)])

    def resample(self, spacing: float | Sequence[float], order: int | None = None, anti_alias: bool = True,
                 *, name: str = "spacing") -> Volume:
        """Resample to a new voxel spacing (mm), keeping the physical field of view.

        The new grid covers the same extent (edge to edge); its first voxel centre sits half a new
        voxel inside the old field's edge. Interpolation is linear (``order=1``) for images and
        nearest-neighbour for ``binary`` and ``label`` volumes; when downsampling an image with
        ``anti_alias`` a Gaussian of sigma ``(factor - 1) / 2`` voxels is applied first (as in
        ``skimage.transform.resize``; its kernel is bounded by the volume's size). Lazy arrays are computed.

        An axis whose field of view is finer than the new spacing keeps one voxel. Callers that take the spacing
        from a user check it first (:meth:`resampled_shape` with ``strict``, :meth:`resample_bytes`); ``name``
        is the option named in errors (e.g. ``--spacing``).
        """
        from scipy import ndimage

        new_sp = np.asarray(as_spacing(spacing, name=name))
        old_sp = np.asarray(self.spacing)
        if order is None:
            order = 0 if self.units in ("binary", "label") else 1
        new_shape = np.asarray(self.resampled_shape(new_sp, name=name, strict=False))
        new_origin = np.asarray(self.origin) - old_sp / 2 + new_sp / 2
        arr = self.numpy()
        work = arr.astype(np.float32) if order > 0 else arr
        factor = new_sp / old_sp
        if anti_alias and order > 0 and np.any(factor > 1):
            sigma = np.maximum(0.0, (factor - 1) / 2)
            # scipy's kernel reaches 4 sigma; far beyond the volume's own size it only repeats the edge (mode
            # nearest): bounded by twice the size, the time stays linear in the volume's size
            radius = [min(int(4 * s + 0.5), 2 * n + 8) for s, n in zip(sigma, self.shape, strict=True)]
            work = ndimage.gaussian_filter(work, sigma, mode="nearest", radius=radius)
        # index in the old grid of each new voxel centre, per axis (separable affine map)
        scale = new_sp / old_sp
        offset = (new_origin - np.asarray(self.origin)) / old_sp
        out = ndimage.affine_transform(
            work, scale, offset=offset, output_shape=tuple(new_shape), order=order, mode="nearest"
        )
        if order > 0 and np.issubdtype(arr.dtype, np.integer):
            info = np.iinfo(arr.dtype)
            out = np.clip(np.rint(out), info.min, info.max).astype(arr.dtype)
        else:
            out = out.astype(arr.dtype, copy=False)
        sp_txt = ",".join(f"{s:g}" for s in new_sp)
        return Volume(out, tuple(new_sp), tuple(new_origin), self.units,
                      self.provenance.with_step(f"resample[{sp_txt} mm, order {order}]"))

    def resampled_shape(self, spacing: float | Sequence[float], *, name: str = "spacing",
                        strict: bool = True) -> tuple[int, int, int]:
        """The shape :meth:`resample` gives at ``spacing`` (mm) — nothing is allocated. With ``strict`` a spacing
        coarser than the field of view (not even half a voxel would remain on an axis) is a
        :class:`ParameterError` naming ``name``; without, that axis keeps one voxel."""
        new_sp = np.asarray(as_spacing(spacing, name=name))
        extent = np.asarray(self.shape) * np.asarray(self.spacing)
        if strict and np.any(extent / new_sp < 0.5):
            ext = ", ".join(f"{e:g}" for e in extent)
            raise ParameterError(name, f"a spacing of {', '.join(f'{s:g}' for s in new_sp)} mm is coarser than the "
                                       f"field of view ({ext} mm, z, y, x): not even half a voxel would remain")
        return tuple(int(n) for n in np.maximum(1, np.round(extent / new_sp).astype(np.int64)))  # type: ignore[return-value]

    def resample_bytes(self, spacing: float | Sequence[float], order: int | None = None, *,
                       name: str = "spacing") -> tuple[float, float]:
        """``(bytes, bytes_per_output_voxel)`` that :meth:`resample` to ``spacing`` allocates at its peak: the
        float32 working copy and its smoothed copy of the input, the interpolated output and its cast (for a
        memory budget before resampling; nothing is allocated here)."""
        new_shape = self.resampled_shape(spacing, name=name)
        if order is None:
            order = 0 if self.units in ("binary", "label") else 1
        per_out = 4 + (4 if order > 0 else 0) + self.dtype.itemsize
        n_in = float(np.prod(self.shape, dtype=np.float64))
        n_out = float(np.prod(np.asarray(new_shape, dtype=np.float64)))
        return n_in * (self.dtype.itemsize + (8 if order > 0 else 0)) + n_out * per_out, float(per_out)

    def window(self, level: float | str = "bone", width: float | None = None) -> Volume:
        """Window/level to 8-bit grey (0..255): ``level - width/2`` maps to 0, ``level + width/2`` to 255.

        ``level`` may be a preset name from :data:`WINDOW_PRESETS` (values in HU; a preset needs an
        HU volume). The result has units ``grey``.
        """
        if isinstance(level, str):
            if level not in WINDOW_PRESETS:
                raise ParameterError("window", f"unknown preset {level!r}; use one of {', '.join(WINDOW_PRESETS)} or LEVEL,WIDTH")
            if self.units != "HU":
                raise ParameterError("window", f"preset {level!r} is in HU but the volume's units are {self.units}")
            name = level
            level, width = WINDOW_PRESETS[level]
        else:
            name = None
        if width is None or not width > 0:
            raise ParameterError("window", f"width must be positive, got {width}")
        out = window_to_uint8(self.data, float(level), float(width))
        tag = f"window[{name}: L{level:g} W{width:g}]" if name else f"window[L{level:g} W{width:g}]"
        return Volume(out, self.spacing, self.origin, "grey", self.provenance.with_step(tag))


def window_to_uint8(array: Any, level: float, width: float) -> Any:
    """Map ``[level - width/2, level + width/2]`` linearly to ``0..255`` (clipped, rounded), as uint8."""
    lo = level - width / 2.0
    scaled = (array.astype(np.float32) - lo) * (255.0 / width)
    if isinstance(scaled, np.ndarray):
        return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    import dask.array as da

    return da.clip(da.rint(scaled), 0, 255).astype(np.uint8)
