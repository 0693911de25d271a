"""Scanners as data: a :class:`Scanner` is read from a TOML file (built-in presets or the user's own copy).

A TOML scanner file has the top-level keys ``name`` and ``description`` and seven tables; every length is in
mm at the place the key says (``pixel_u_mm`` at the detector, ``voxel_mm`` in the reconstruction):

``[geometry]``
    ``beam`` (``cone``), ``orbit`` (``circular``), ``orbit_deg``, ``sid_mm`` (source–isocentre),
    ``sdd_mm`` (source–detector), ``pixel_u_mm`` / ``pixel_v_mm`` (detector pitch, columns / rows),
    ``detector_cols``, ``detector_rows``, ``views`` (per orbit), ``pitch`` (informational),
    ``center_offset_mm`` (gantry centre-alignment error at isocentre; the reconstruction assumes 0),
    ``interleave_u`` / ``interleave_v`` (1 or 2: each projection interleaves two readings shifted by half an
    element — a flying focal spot, or a quarter-detector offset after rebinning — so it is sampled at half
    the element pitch with the full element as aperture; each reading gets its share of the mAs).
``[source]``
    ``kvp``, ``anode_angle_deg``, ``filtration_mm`` (``{element = mm}``), ``focal_spot_mm`` (FWHM).
``[detector]``
    ``scintillator`` (``CsI``, ``GOS``), ``scintillator_mm``, ``blur_fwhm_mm`` (light spread, detector
    plane), ``electronic_noise`` (SD in equivalent quanta per pixel), ``dark_offset``.
``[exposure]``
    ``mas`` (over the whole orbit), ``scan_time_s``, ``dose_msv`` (informational).
``[reconstruction]``
    ``voxel_mm`` (in-plane), ``slice_mm`` (interval), ``slice_thickness_mm``, ``matrix``, ``fov_mm``,
    ``axial_fov_mm``, ``kernel`` (``ramp``, ``shepp-logan``, ``hann``, ``standard``, ``bone``), ``algorithm``.
``[simulation]``
    numerical settings, not hardware: ``oversample`` (detector sub-samples per element and axis),
    ``energy_bins``, ``beam_hardening_correction`` (``water`` or ``none``).
``[patient]`` (optional)
    what surrounds the specimen by default: ``body`` (``NONE``, ``wrist``, ``ankle``, ``lumbar`` or an
    ellipse ``"AxB"`` in mm, lateral × AP; :mod:`trabecula.scanner.body`) and ``medium`` (``air``,
    ``marrow``, ``pbs``, ``soft_tissue``, ``water``: fills the phantom's own box where its label is air).
    ``scan(..., body=, medium=)`` and ``trabecula scan --body/--medium`` override them.

Validation names the offending field (``exposure.mas: must be positive``) as a
:class:`~trabecula.errors.ParameterError`. The built-in presets (:data:`PRESETS`) carry a comment next to
every value saying whether the source states it or it is our assumption; ``trabecula scanners --show NAME``
prints them.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from trabecula.errors import InputError, ParameterError
from trabecula.scanner.body import parse_body, parse_medium
from trabecula.scanner.materials import element_z

PRESETS: tuple[str, ...] = ("uhr-extremity", "clinical-uhr", "study-mdct", "clinical-mdct", "micro-ct")
KERNELS: tuple[str, ...] = ("ramp", "shepp-logan", "hann", "standard", "bone")
SCINTILLATORS: tuple[str, ...] = ("CsI", "GOS")


@dataclass(frozen=True)
class Geometry:
    beam: str = "cone"
    orbit: str = "circular"
    orbit_deg: float = 360.0
    sid_mm: float = 500.0
    sdd_mm: float = 1000.0
    pixel_u_mm: float = 0.2
    pixel_v_mm: float = 0.2
    detector_cols: int = 1024
    detector_rows: int = 64
    views: int = 720
    pitch: float = 0.0
    center_offset_mm: float = 0.0
    interleave_u: int = 1
    interleave_v: int = 1

    @property
    def magnification(self) -> float:
        return self.sdd_mm / self.sid_mm

    @property
    def pixel_u_iso_mm(self) -> float:
        """Detector column pitch scaled to the isocentre (mm)."""
        return self.pixel_u_mm / self.magnification

    @property
    def pixel_v_iso_mm(self) -> float:
        """Detector row pitch scaled to the isocentre (mm)."""
        return self.pixel_v_mm / self.magnification

    @property
    def sample_u_iso_mm(self) -> float:
        """Projection sampling pitch at the isocentre after interleaving (pitch / interleave_u)."""
        return self.pixel_u_iso_mm / self.interleave_u

    @property
    def sample_v_iso_mm(self) -> float:
        return self.pixel_v_iso_mm / self.interleave_v


@dataclass(frozen=True)
class Source:
    kvp: float = 120.0
    anode_angle_deg: float = 12.0
    filtration_mm: dict[str, float] = field(default_factory=lambda: {"Al": 2.5})
    focal_spot_mm: float = 0.5


@dataclass(frozen=True)
class Detector:
    scintillator: str = "CsI"
    scintillator_mm: float = 0.5
    blur_fwhm_mm: float = 0.1
    electronic_noise: float = 2.0
    dark_offset: float = 100.0


@dataclass(frozen=True)
class Exposure:
    mas: float = 100.0
    scan_time_s: float = 1.0
    dose_msv: float = 0.0


@dataclass(frozen=True)
class Reconstruction:
    voxel_mm: float = 0.2
    slice_mm: float = 0.2
    slice_thickness_mm: float = 0.2
    matrix: int = 512
    fov_mm: float = 102.4
    axial_fov_mm: float = 12.8
    kernel: str = "ramp"
    algorithm: str = "fdk"


@dataclass(frozen=True)
class Simulation:
    oversample: int = 2
    energy_bins: int = 16
    beam_hardening_correction: str = "water"


@dataclass(frozen=True)
class Patient:
    body: str = "NONE"
    medium: str = "air"


_SECTIONS = {
    "geometry": Geometry,
    "source": Source,
    "detector": Detector,
    "exposure": Exposure,
    "reconstruction": Reconstruction,
    "simulation": Simulation,
    "patient": Patient,
}


@dataclass(frozen=True)
class Scanner:
    """A CT scanner as data: geometry, source, detector, exposure, reconstruction and simulation settings.

    Build one with :func:`load_scanner` (a preset name or a TOML file), change a field with
    :meth:`replace` (``scanner.replace(exposure={"mas": 50})``), write it back with :meth:`to_toml`.
    Every instance is validated on construction (:meth:`validate`).
    """

    name: str
    description: str = ""
    geometry: Geometry = field(default_factory=Geometry)
    source: Source = field(default_factory=Source)
    detector: Detector = field(default_factory=Detector)
    exposure: Exposure = field(default_factory=Exposure)
    reconstruction: Reconstruction = field(default_factory=Reconstruction)
    simulation: Simulation = field(default_factory=Simulation)
    patient: Patient = field(default_factory=Patient)

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Raise :class:`ParameterError` naming the first unphysical field."""
        g, s, d, e, r, m = self.geometry, self.source, self.detector, self.exposure, self.reconstruction, self.simulation

        def positive(section: str, key: str, value: float) -> None:
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ParameterError(f"{section}.{key}", f"must be a positive number, got {value!r}")

        def non_negative(section: str, key: str, value: float) -> None:
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ParameterError(f"{section}.{key}", f"must be zero or positive, got {value!r}")

        if g.beam not in ("cone",):
            raise ParameterError("geometry.beam", f"only 'cone' (fan = one row) is simulated, got {g.beam!r}")
        if g.orbit != "circular":
            raise ParameterError("geometry.orbit", f"only 'circular' orbits are simulated, got {g.orbit!r}")
        for key in ("orbit_deg", "sid_mm", "sdd_mm", "pixel_u_mm", "pixel_v_mm"):
            positive("geometry", key, getattr(g, key))
        if g.sdd_mm <= g.sid_mm:
            raise ParameterError("geometry.sdd_mm", f"source–detector distance {g.sdd_mm} must exceed source–isocentre {g.sid_mm}")
        if abs(g.orbit_deg - 360.0) > 1e-6:
            raise ParameterError("geometry.orbit_deg", f"only full 360° orbits are reconstructed (FDK without Parker weights), got {g.orbit_deg}")
        for key in ("detector_cols", "detector_rows", "views"):
            v = getattr(g, key)
            if not (isinstance(v, int) and v > 0):
                raise ParameterError(f"geometry.{key}", f"must be a positive integer, got {v!r}")
        non_negative("geometry", "pitch", g.pitch)
        for key in ("interleave_u", "interleave_v"):
            if getattr(g, key) not in (1, 2):
                raise ParameterError(f"geometry.{key}", f"must be 1 or 2, got {getattr(g, key)!r}")
        if (g.interleave_u == 2 or g.interleave_v == 2) and m.oversample % 2:
            raise ParameterError("simulation.oversample", "interleaved sampling needs an even oversample (2, 4, …)")
        if not math.isfinite(g.center_offset_mm) or abs(g.center_offset_mm) > 5.0:
            raise ParameterError("geometry.center_offset_mm", f"must be within ±5 mm, got {g.center_offset_mm}")

        positive("source", "kvp", s.kvp)
        if not 20 <= s.kvp <= 150:
            raise ParameterError("source.kvp", f"must be within 20–150 kVp (the spectrum model's range), got {s.kvp}")
        positive("source", "anode_angle_deg", s.anode_angle_deg)
        positive("source", "focal_spot_mm", s.focal_spot_mm)
        if not isinstance(s.filtration_mm, dict):
            raise ParameterError("source.filtration_mm", "must be a table {element = mm}, e.g. { Al = 2.5 }")

        for el, mm in s.filtration_mm.items():
            element_z(el, name="source.filtration_mm")
            non_negative("source", f"filtration_mm.{el}", mm)

        if d.scintillator not in SCINTILLATORS:
            raise ParameterError("detector.scintillator", f"unknown {d.scintillator!r}; use one of {', '.join(SCINTILLATORS)}")
        positive("detector", "scintillator_mm", d.scintillator_mm)
        non_negative("detector", "blur_fwhm_mm", d.blur_fwhm_mm)
        non_negative("detector", "electronic_noise", d.electronic_noise)
        non_negative("detector", "dark_offset", d.dark_offset)

        positive("exposure", "mas", e.mas)
        non_negative("exposure", "scan_time_s", e.scan_time_s)
        non_negative("exposure", "dose_msv", e.dose_msv)

        for key in ("voxel_mm", "slice_mm", "slice_thickness_mm", "fov_mm", "axial_fov_mm"):
            positive("reconstruction", key, getattr(r, key))
        if not (isinstance(r.matrix, int) and r.matrix > 0):
            raise ParameterError("reconstruction.matrix", f"must be a positive integer, got {r.matrix!r}")
        if r.voxel_mm > r.fov_mm:
            raise ParameterError("reconstruction.voxel_mm", f"voxel {r.voxel_mm} mm is larger than the FOV {r.fov_mm} mm")
        if r.slice_mm > r.axial_fov_mm:
            raise ParameterError("reconstruction.slice_mm", f"slice interval {r.slice_mm} mm is larger than the axial FOV {r.axial_fov_mm} mm")
        if r.kernel not in KERNELS:
            raise ParameterError("reconstruction.kernel", f"unknown kernel {r.kernel!r}; use one of {', '.join(KERNELS)}")
        if r.algorithm != "fdk":
            raise ParameterError("reconstruction.algorithm", f"only 'fdk' is implemented, got {r.algorithm!r}")
        fov_det = g.detector_cols * g.pixel_u_iso_mm
        if r.fov_mm > fov_det * 1.01:
            raise ParameterError("reconstruction.fov_mm", f"FOV {r.fov_mm} mm exceeds what the detector covers at isocentre ({fov_det:.1f} mm)")

        if not (isinstance(m.oversample, int) and 1 <= m.oversample <= 8):
            raise ParameterError("simulation.oversample", f"must be an integer 1–8, got {m.oversample!r}")
        if not (isinstance(m.energy_bins, int) and 1 <= m.energy_bins <= 200):
            raise ParameterError("simulation.energy_bins", f"must be an integer 1–200, got {m.energy_bins!r}")
        if m.beam_hardening_correction not in ("water", "none"):
            raise ParameterError("simulation.beam_hardening_correction", f"use 'water' or 'none', got {m.beam_hardening_correction!r}")
        for key, parse in (("body", parse_body), ("medium", parse_medium)):
            try:
                parse(getattr(self.patient, key))
            except ParameterError as exc:
                raise ParameterError(f"patient.{key}", exc.message) from exc

    # ------------------------------------------------------------------ conversions
    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "description": self.description}
        for sec in _SECTIONS:
            d[sec] = dataclasses.asdict(getattr(self, sec))
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str | None = None) -> Scanner:
        """Build from a nested dict (as TOML gives); unknown keys and wrong types name the field."""
        if not isinstance(d, dict):
            raise ParameterError("scanner", "expected a table")
        unknown = set(d) - {"name", "description", *_SECTIONS}
        if unknown:
            raise ParameterError(sorted(unknown)[0], f"unknown key in scanner file{f' {source}' if source else ''}; "
                                 f"expected name, description, {', '.join(_SECTIONS)}")
        kwargs: dict[str, Any] = {"name": str(d.get("name", Path(source).stem if source else "custom")),
                                  "description": str(d.get("description", ""))}
        for sec, typ in _SECTIONS.items():
            values = d.get(sec, {})
            if not isinstance(values, dict):
                raise ParameterError(sec, "must be a table")
            fields = {f.name: f for f in dataclasses.fields(typ)}
            bad = set(values) - set(fields)
            if bad:
                raise ParameterError(f"{sec}.{sorted(bad)[0]}", f"unknown key; expected one of {', '.join(fields)}")
            conv = {}
            for k, v in values.items():
                default = getattr(typ(), k)
                conv[k] = _coerce(v, default, f"{sec}.{k}")
            kwargs[sec] = typ(**conv)
        return cls(**kwargs)

    def to_toml(self) -> str:
        """The scanner as TOML text (without the presets' comments); :func:`load_scanner` reads it back."""
        lines = [f"name = {_toml_value(self.name)}", f"description = {_toml_value(self.description)}"]
        for sec in _SECTIONS:
            lines.append("")
            lines.append(f"[{sec}]")
            for k, v in dataclasses.asdict(getattr(self, sec)).items():
                lines.append(f"{k} = {_toml_value(v)}")
        return "\n".join(lines) + "\n"

    def replace(self, **sections: Any) -> Scanner:
        """A copy with some values changed: ``replace(exposure={"mas": 50}, name="low-dose")``."""
        d = self.to_dict()
        for key, value in sections.items():
            if key in _SECTIONS and isinstance(value, dict):
                if key not in d:
                    d[key] = {}
                d[key] = {**d[key], **value}
            else:
                d[key] = value
        return Scanner.from_dict(d)

    # ------------------------------------------------------------------ derived facts
    @property
    def mas_per_view(self) -> float:
        return self.exposure.mas / self.geometry.views

    def summary(self) -> dict[str, Any]:
        """Key numbers derived from the settings (magnification, pitch at isocentre, Nyquist)."""
        g, r = self.geometry, self.reconstruction
        return {
            "magnification": round(g.magnification, 4),
            "pixel_at_isocentre_mm": round(g.pixel_u_iso_mm, 5),
            "row_at_isocentre_mm": round(g.pixel_v_iso_mm, 5),
            "sampling_at_isocentre_mm": round(g.sample_u_iso_mm, 5),
            "detector_nyquist_lp_per_mm": round(1 / (2 * g.sample_u_iso_mm), 3),
            "voxel_mm": r.voxel_mm,
            "fov_mm": [r.fov_mm, r.fov_mm, r.axial_fov_mm],
            "mas_per_view": round(self.mas_per_view, 5),
        }


def _coerce(value: Any, default: Any, name: str) -> Any:
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ParameterError(name, f"expected true/false, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int | float) or float(value) != int(value):
            raise ParameterError(name, f"expected an integer, got {value!r}")
        return int(value)
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ParameterError(name, f"expected a number, got {value!r}")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ParameterError(name, f"expected a string, got {value!r}")
        return value
    if isinstance(default, dict):
        if not isinstance(value, dict):
            raise ParameterError(name, f"expected a table like {{ Al = 2.5 }}, got {value!r}")
        out = {}
        for k, v in value.items():
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise ParameterError(f"{name}.{k}", f"expected a number, got {v!r}")
            out[str(k)] = float(v)
        return out
    return value


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def preset_path(name: str) -> Path:
    """Path of a built-in preset's TOML file."""
    if name not in PRESETS:
        raise ParameterError("scanner", f"unknown preset {name!r}; use one of {', '.join(PRESETS)} or a .toml file")
    return Path(str(resources.files("trabecula.scanner") / "presets" / f"{name}.toml"))


def preset_text(name: str) -> str:
    """The preset's TOML text, comments included."""
    return preset_path(name).read_text(encoding="utf-8")


def load_scanner(spec: str | os.PathLike | Scanner) -> Scanner:
    """A :class:`Scanner` from a preset name (:data:`PRESETS`) or a TOML file path.

    Examples
    --------
    >>> s = load_scanner("uhr-extremity")
    >>> round(s.geometry.magnification, 4), s.reconstruction.voxel_mm
    (1.2375, 0.08)
    """
    if isinstance(spec, Scanner):
        return spec
    text_spec = os.fspath(spec)
    if text_spec in PRESETS:
        path = preset_path(text_spec)
    else:
        path = Path(text_spec)
        if path.suffix.lower() != ".toml":
            raise ParameterError("scanner", f"unknown preset {text_spec!r}; use one of {', '.join(PRESETS)} or a .toml file")
        if not path.exists():
            raise InputError(path, "no such scanner file")
    data = read_toml(path)
    if text_spec in PRESETS:
        return Scanner.from_dict(data, source=str(path))
    try:
        return Scanner.from_dict(data, source=str(path))
    except ParameterError as exc:  # the field keeps its name; the message says which file holds it
        if str(path) in exc.message:
            raise
        raise ParameterError(exc.name, f"{exc.message} (in {path})") from exc


#: Largest scanner file read (bytes); the presets are about 4 kB.
MAX_TOML_BYTES = 1024**2


def read_toml(path: str | os.PathLike) -> dict[str, Any]:
    """A scanner TOML file as a dict. Unreadable, larger than :data:`MAX_TOML_BYTES`, not UTF-8, not TOML or
    nested too deeply for the parser: an :class:`InputError` naming the file, in one line."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_TOML_BYTES:
            raise InputError(path, f"larger than a scanner file can be ({MAX_TOML_BYTES // 1024} kB)")
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(path, f"cannot read the scanner file ({exc.strerror or exc})") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(path, f"not UTF-8 text (invalid byte at offset {exc.start}); save the scanner file as UTF-8") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(path, f"not valid TOML ({' '.join(str(exc).split())})") from exc
    except RecursionError as exc:
        raise InputError(path, "not a scanner file: its values are nested too deeply to parse") from exc
