"""Reading and writing volumes: the format picked from the path, atomic writes, no silent overwrite."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from trabecula.errors import InputError, ParameterError
from trabecula.io._atomic import atomic_output
from trabecula.io.dicom import read_dicom, write_dicom
from trabecula.io.formats import (
    chunk_shape,
    read_nifti,
    read_sitk,
    read_tiff,
    read_zarr,
    write_nifti,
    write_sitk,
    write_tiff,
    write_tiff_folder,
    write_zarr,
)
from trabecula.io.omezarr import is_zarr_group, pyramid_shapes, read_ome_zarr, write_ome_zarr
from trabecula.volume import Volume

VOLUME_FORMATS = ("dicom", "tiff", "tiff-folder", "nifti", "nrrd", "metaimage", "zarr", "ome-zarr")
FOLDER_FORMATS = ("dicom", "tiff-folder", "zarr", "ome-zarr")
#: formats whose writer takes ``chunks`` (and, OME-Zarr only, ``levels``)
CHUNKED_FORMATS = ("zarr", "ome-zarr")

_SUFFIX = {
    ".tif": "tiff", ".tiff": "tiff",
    ".nii": "nifti", ".nii.gz": "nifti",
    ".nrrd": "nrrd", ".nhdr": "nrrd",
    ".mha": "metaimage", ".mhd": "metaimage",
    ".zarr": "zarr",
    ".dcm": "dicom",
    ".h5": "projections", ".hdf5": "projections", ".hdf": "projections",
}



def _suffix_format(p: Path) -> str | None:
    name = p.name.lower()
    if name.endswith(".nii.gz"):
        return "nifti"
    if name.endswith(".ome.zarr"):
        return "ome-zarr"
    return _SUFFIX.get(p.suffix.lower())


def _is_dicom_file(f: Path) -> bool:
    try:
        with open(f, "rb") as fh:
            head = fh.read(132)
        return len(head) == 132 and head[128:132] == b"DICM"
    except OSError:
        return False


def detect_format(path: str | os.PathLike, for_writing: bool = False) -> str:
    """Name of the format of ``path`` (see the module table); raises :class:`InputError` if unknown."""
    p = Path(path)
    fmt = _suffix_format(p)
    if for_writing:
        if fmt is None:
            raise InputError(p, "cannot tell the output format from the name; use a suffix "
                                "(.nii.gz .nrrd .mha .tif .zarr .ome.zarr) or choose --format dicom|tiff-folder")
        return fmt
    if not p.exists():
        raise InputError(p, "no such file or folder")
    if p.is_dir():
        if any((p / f).exists() for f in ("zarr.json", ".zarray", ".zgroup")):  # the metadata decide, not the name
            return "ome-zarr" if is_zarr_group(p) else "zarr"
        if fmt in ("zarr", "ome-zarr"):
            return fmt
        files = [f for f in p.iterdir() if f.is_file() and not f.name.startswith(".")]
        if not files:
            raise InputError(p, "folder is empty")
        if any(f.suffix.lower() in (".tif", ".tiff") for f in files):
            return "tiff-folder"
        if any(f.suffix.lower() == ".dcm" or _is_dicom_file(f) for f in files[:200]):
            return "dicom"
        raise InputError(p, "folder holds no DICOM, TIFF or Zarr data")
    if p.stat().st_size == 0:
        raise InputError(p, "file is empty")
    if fmt is None:
        if _is_dicom_file(p):
            return "dicom"
        raise InputError(p, f"unsupported file type {p.suffix or '(no suffix)'}; supported: "
                            ".dcm or a DICOM folder, .tif/.tiff, .nii/.nii.gz, .nrrd, .mha/.mhd, .zarr, .ome.zarr, .h5")
    return fmt


def parse_triple(text: str | Sequence[float] | float | None, name: str) -> tuple[float, float, float] | None:
    """``"0.05"`` → (0.05,)*3; ``"2,0.5,0.5"`` → (2, 0.5, 0.5) (z, y, x)."""
    if text is None:
        return None
    if isinstance(text, int | float):
        return (float(text),) * 3
    if isinstance(text, str):
        parts = [t for t in text.replace("x", ",").replace(" ", ",").split(",") if t]
    else:
        parts = list(text)
    try:
        vals = [float(t) for t in parts]
    except ValueError as exc:
        raise ParameterError(name, f"expected numbers like 0.5 or 2,0.5,0.5 (z,y,x), got {text!r}") from exc
    if len(vals) == 1:
        vals = vals * 3
    if len(vals) != 3:
        raise ParameterError(name, f"expected one or three numbers (z,y,x), got {text!r}")
    return tuple(vals)  # type: ignore[return-value]


def read_volume(
    path: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    format: str | None = None,
    spacing: float | Sequence[float] | str | None = None,
    units: str | None = None,
    series: str | None = None,
) -> Volume:
    """Read a volume from any supported file or folder.

    Parameters
    ----------
    path : path, or a list of DICOM files
    format : force a format instead of detecting it from the path
    spacing : declare the voxel spacing (mm, z/y/x or one number), overriding the file's header —
        for files whose header is wrong or silent (e.g. the DIDSR NRRDs say 1.0, the data are 0.05 mm)
    units : declare the value units when the file does not say (``HU``, ``grey``, ``binary`` …)
    series : SeriesInstanceUID, for a DICOM folder holding several series
    """
    sp = parse_triple(spacing, "spacing")
    if sp is not None and not all(s > 0 for s in sp):
        raise ParameterError("spacing", f"must be positive, got {sp}")
    if not isinstance(path, str | os.PathLike):
        vol = read_dicom(list(path), series=series)
    else:
        fmt = format or detect_format(path)
        if fmt == "dicom":
            vol = read_dicom(path, series=series)
            if sp is not None:
                vol = vol.replace(spacing=sp)
        elif fmt in ("tiff", "tiff-folder"):
            vol = read_tiff(path, spacing=sp, units=units)
        elif fmt == "nifti":
            vol = read_nifti(path, spacing=sp, units=units)
        elif fmt in ("nrrd", "metaimage"):
            vol = read_sitk(path, spacing=sp, units=units)
        elif fmt == "zarr":
            vol = read_zarr(path, spacing=sp, units=units)
        elif fmt == "ome-zarr":
            vol = read_ome_zarr(path, spacing=sp, units=units)
        elif fmt == "projections":
            raise InputError(path, "holds raw projections, not a volume; reconstruct it first (trabecula recon)")
        else:
            raise ParameterError("format", f"unknown format {fmt!r}; use one of {', '.join(VOLUME_FORMATS)}")
    if units is not None and vol.units != units:
        vol = vol.replace(units=units)
    return vol


def write_volume(vol: Volume, path: str | os.PathLike, *, force: bool = False, format: str | None = None,
                 chunks: int | str | Sequence[int] | None = None, levels: int | None = None) -> Path:
    """Write ``vol`` to ``path`` in the format its suffix names (or ``format``); atomic, no silent overwrite.

    ``chunks`` (z, y, x voxels; Zarr and OME-Zarr) and ``levels`` (the pyramid's levels, level 0 included;
    OME-Zarr only) are refused for other formats."""
    if not isinstance(vol, Volume):
        raise ParameterError("vol", f"expected a Volume, got {type(vol).__name__}")
    p = Path(path)
    fmt = format or detect_format(p, for_writing=True)
    if fmt == "projections":
        raise ParameterError("format", "a Volume cannot be written as projections (.h5); use write_projections")
    if fmt not in VOLUME_FORMATS:
        raise ParameterError("format", f"unknown format {fmt!r}; use one of {', '.join(VOLUME_FORMATS)}")
    if chunks is not None and fmt not in CHUNKED_FORMATS:
        raise ParameterError("--chunks", f"applies to .zarr and .ome.zarr outputs, not {fmt}")
    if levels is not None and fmt != "ome-zarr":
        raise ParameterError("--levels", f"applies to .ome.zarr outputs only, not {fmt}")
    options: dict = {}
    if fmt in CHUNKED_FORMATS:  # bad --chunks or --levels are refused before anything is written
        options["chunks"] = chunk_shape(chunks, vol.shape, vol.dtype.itemsize)
    if fmt == "ome-zarr":
        pyramid_shapes(vol.shape, levels)
        options["levels"] = levels
    writer = {
        "dicom": write_dicom,
        "tiff": write_tiff,
        "tiff-folder": write_tiff_folder,
        "nifti": write_nifti,
        "nrrd": write_sitk,
        "metaimage": write_sitk,
        "zarr": write_zarr,
        "ome-zarr": write_ome_zarr,
    }[fmt]
    if fmt == "metaimage" and p.suffix.lower() == ".mhd":
        raise ParameterError("path", "write MetaImage as a single .mha file (a .mhd header needs a separate .raw)")
    with atomic_output(p, force=force, directory=fmt in ("dicom", "tiff-folder")) as tmp:
        writer(vol, tmp, **options)
    return p
