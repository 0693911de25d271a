"""Raw projection data (sinograms) in HDF5, APS data-exchange layout.

Layout (as written by tomopy/dxchange and at synchrotron beamlines)::

    /exchange/data        (n_angles, rows, cols)  transmitted counts
    /exchange/data_white  (n_flats, rows, cols)   flat fields (beam, no sample)
    /exchange/data_dark   (n_darks, rows, cols)   dark fields (no beam)
    /exchange/theta       (n_angles,)             projection angles; attribute ``units``
                                                  'degrees' or 'rad' (radians if absent and
                                                  all values ≤ 2π)

trabecula keeps angles in radians in memory. Scanner geometry (for simulated scans) is stored as a
JSON attribute ``trabecula_geometry`` on ``/exchange``.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trabecula.errors import InputError
from trabecula.io._atomic import atomic_output
from trabecula.io._guard import check_claim, third_party, value_dtype


@dataclass(eq=False)
class ProjectionData:
    """Detector data of one scan: projections, flat and dark fields, angles (radians), geometry."""

    data: np.ndarray
    angles: np.ndarray
    flats: np.ndarray | None = None
    darks: np.ndarray | None = None
    pixel_size_mm: tuple[float, float] | None = None  # (row, column) detector pitch
    geometry: dict[str, Any] = field(default_factory=dict)
    source: str | None = None

    def __post_init__(self) -> None:
        self.data = np.asarray(self.data)
        self.angles = np.asarray(self.angles, dtype=np.float64)
        if self.data.ndim != 3:
            raise InputError(self.source, f"projections must be (angles, rows, columns); got shape {self.data.shape}")
        if self.angles.shape != (self.data.shape[0],):
            raise InputError(self.source, f"{self.angles.size} angles for {self.data.shape[0]} projections")

    @property
    def n_angles(self) -> int:
        return int(self.data.shape[0])

    def __repr__(self) -> str:
        f = 0 if self.flats is None else len(self.flats)
        d = 0 if self.darks is None else len(self.darks)
        return (f"ProjectionData({self.n_angles} angles over {np.degrees(np.ptp(self.angles)):.1f}°, "
                f"detector {self.data.shape[1]}×{self.data.shape[2]}, {f} flats, {d} darks)")


def _angles_to_rad(theta: np.ndarray, units: str | None) -> np.ndarray:
    u = (units or "").lower()
    if u.startswith("deg"):
        return np.radians(theta)
    if u.startswith("rad"):
        return theta.astype(np.float64)
    if theta.size and np.nanmax(np.abs(theta)) > 2 * np.pi + 1e-6:
        warnings.warn("theta has no units attribute and values above 2π; taken as degrees", stacklevel=3)
        return np.radians(theta)
    return theta.astype(np.float64)


def _dataset(f, name: str, p: Path, required: bool = False):
    """The HDF5 dataset at ``name`` (None if absent and not required); a group or link there is an InputError."""
    import h5py

    with third_party(p, f"unreadable HDF5 entry /{name}"):
        present = name in f
        obj = f[name] if present else None
    if obj is None:
        if required:
            raise InputError(p, f"no /{name} dataset (expected the APS data-exchange layout)")
        return None
    if not isinstance(obj, h5py.Dataset):
        raise InputError(p, f"/{name} is a {type(obj).__name__.lower()}, not a dataset")
    return obj


def _read_array(ds, name: str, p: Path, ndim: int | None = 3) -> np.ndarray:
    """Check a dataset's shape, type and size against the memory budget, then read it."""
    with third_party(p, f"unreadable HDF5 dataset /{name}"):
        shape, dtype = tuple(int(n) for n in ds.shape), ds.dtype
    if ndim is not None and len(shape) != ndim:
        raise InputError(p, f"/{name} must be {ndim}-D, got shape {shape}")
    value_dtype(dtype, p, f"/{name} values")
    check_claim(p, shape, np.dtype(dtype).itemsize, f"reading /{name}")
    with third_party(p, f"unreadable HDF5 dataset /{name}"):
        arr = ds[...]
    if arr.dtype.kind == "b":
        arr = arr.astype(np.uint8)
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise InputError(p, f"/{name} contains NaN or infinite values")
    return arr


def read_projections(path) -> ProjectionData:
    """Read an APS data-exchange HDF5 file.

    Every entry is checked before it is read (a dataset, not a group; real numbers; within the memory budget) and
    the geometry attribute must be a JSON object; h5py's own errors become an :class:`InputError` naming the file."""
    import h5py

    p = Path(path)
    if not p.exists():
        raise InputError(p, "no such file")
    with third_party(p, "not a readable HDF5 file"):
        f = h5py.File(p, "r")
    try:
        data = _read_array(_dataset(f, "exchange/data", p, required=True), "exchange/data", p)
        if data.size == 0:
            raise InputError(p, f"/exchange/data must be non-empty (angles, rows, columns); got shape {data.shape}")
        fields = {}
        for name in ("data_white", "data_dark"):
            ds = _dataset(f, f"exchange/{name}", p)
            arr = None if ds is None else _read_array(ds, f"exchange/{name}", p, ndim=None)
            if arr is not None:
                if arr.ndim == 2:
                    arr = arr[None]
                if arr.ndim != 3 or arr.shape[1:] != data.shape[1:] or arr.shape[0] == 0:
                    raise InputError(p, f"/exchange/{name} has shape {arr.shape}; expected (n, {data.shape[1]}, {data.shape[2]}) like the projections")
            fields[name] = arr
        t = _dataset(f, "exchange/theta", p)
        if t is not None:
            theta = _read_array(t, "exchange/theta", p, ndim=None).astype(np.float64).ravel()
            with third_party(p, "unreadable attribute units of /exchange/theta"):
                units = t.attrs.get("units")
            units = units.decode("utf-8", "replace") if isinstance(units, bytes) else units
            units = units if isinstance(units, str) else None
            if theta.shape != (data.shape[0],):
                raise InputError(p, f"/exchange/theta holds {theta.size} angles for {data.shape[0]} projections")
            angles = _angles_to_rad(theta, units)
        else:
            warnings.warn(f"{p}: no /exchange/theta; assuming equally spaced angles over 180°", stacklevel=2)
            angles = np.linspace(0, np.pi, data.shape[0], endpoint=False)
        with third_party(p, "unreadable attribute trabecula_geometry of /exchange"):
            exchange = f["exchange"]
            raw_geom = exchange.attrs["trabecula_geometry"] if "trabecula_geometry" in exchange.attrs else None
    finally:
        with third_party(p, "not a readable HDF5 file"):
            f.close()
    geom = _geometry(raw_geom, p)
    px = geom.get("pixel_size_mm")
    if px is not None:
        try:
            px = tuple(float(v) for v in px)
        except (TypeError, ValueError) as exc:
            raise InputError(p, f"trabecula_geometry: pixel_size_mm is not two numbers: {px!r}"[:200]) from exc
        if len(px) != 2 or not all(np.isfinite(v) and v > 0 for v in px):
            raise InputError(p, f"trabecula_geometry: pixel_size_mm must be two positive numbers, got {px}")
    return ProjectionData(data, angles, fields["data_white"], fields["data_dark"], px or None, geom, str(p))


def _geometry(raw, p: Path) -> dict:
    """The ``trabecula_geometry`` attribute: a JSON object (absent: empty)."""
    if raw is None:
        return {}
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    if not isinstance(raw, str):
        raise InputError(p, f"attribute trabecula_geometry of /exchange is not text (a {type(raw).__name__})")
    try:
        geom = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise InputError(p, f"attribute trabecula_geometry of /exchange is not JSON ({exc})"[:300]) from exc
    if not isinstance(geom, dict):
        raise InputError(p, f"attribute trabecula_geometry of /exchange is not a JSON object (a {type(geom).__name__})")
    return geom


def write_projections(proj: ProjectionData, path, force: bool = False) -> Path:
    """Write in the APS data-exchange layout (angles in radians, ``units='rad'``), atomically."""
    import h5py

    with atomic_output(path, force=force) as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("implements", data="exchange:measurement")
            ex = f.create_group("exchange")
            ex.create_dataset("data", data=proj.data, compression="gzip", compression_opts=4, chunks=True)
            if proj.flats is not None:
                ex.create_dataset("data_white", data=proj.flats, compression="gzip", compression_opts=4)
            if proj.darks is not None:
                ex.create_dataset("data_dark", data=proj.darks, compression="gzip", compression_opts=4)
            th = ex.create_dataset("theta", data=np.asarray(proj.angles, np.float64))
            th.attrs["units"] = "rad"
            geom = dict(proj.geometry)
            if proj.pixel_size_mm is not None:
                geom["pixel_size_mm"] = list(proj.pixel_size_mm)
            ex.attrs["trabecula_geometry"] = json.dumps(geom)
    return Path(path)
