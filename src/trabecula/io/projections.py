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
    if np.nanmax(np.abs(theta)) > 2 * np.pi + 1e-6:
        warnings.warn("theta has no units attribute and values above 2π; taken as degrees", stacklevel=3)
        return np.radians(theta)
    return theta.astype(np.float64)


def read_projections(path) -> ProjectionData:
    """Read an APS data-exchange HDF5 file."""
    import h5py

    p = Path(path)
    if not p.exists():
        raise InputError(p, "no such file")
    try:
        f = h5py.File(p, "r")
    except Exception as exc:
        raise InputError(p, f"not a readable HDF5 file ({exc})") from exc
    with f:
        if "exchange/data" not in f:
            raise InputError(p, "no /exchange/data dataset (expected the APS data-exchange layout)")
        data = f["exchange/data"][...]
        flats = f["exchange/data_white"][...] if "exchange/data_white" in f else None
        darks = f["exchange/data_dark"][...] if "exchange/data_dark" in f else None
        if "exchange/theta" in f:
            t = f["exchange/theta"]
            units = t.attrs.get("units")
            units = units.decode() if isinstance(units, bytes) else units
            angles = _angles_to_rad(t[...], units)
        else:
            warnings.warn(f"{p}: no /exchange/theta; assuming equally spaced angles over 180°", stacklevel=2)
            angles = np.linspace(0, np.pi, data.shape[0], endpoint=False)
        geom = {}
        if "trabecula_geometry" in f["exchange"].attrs:
            geom = json.loads(f["exchange"].attrs["trabecula_geometry"])
        px = tuple(geom.get("pixel_size_mm", ())) or None
    if data.ndim != 3 or data.size == 0:
        raise InputError(p, f"/exchange/data must be non-empty (angles, rows, columns); got shape {data.shape}")
    if np.issubdtype(data.dtype, np.floating) and not np.all(np.isfinite(data)):
        raise InputError(p, "/exchange/data contains NaN or infinite values")
    return ProjectionData(data, angles, flats, darks, px, geom, str(p))


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
