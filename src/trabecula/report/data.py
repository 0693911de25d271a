"""What a report shows: :class:`ReportData`, a set of optional sections, and its JSON form (``STUDY.json``).

The report is data-driven: every section is optional and appears only when it has data, so a report can
be built at any stage of a study. Statistics are never computed here — study tables come precomputed
(e.g. from :func:`trabecula.stats.study_table`), and plots only draw the numbers they are given.

``STUDY.json`` holds the same fields; figures and volumes are file paths, relative to the JSON file's
folder (see :meth:`ReportData.from_json` for the schema).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trabecula.errors import InputError, ParameterError
from trabecula.io import atomic_output, read_volume
from trabecula.volume import Volume, _jsonable, anonymise_path, anonymise_provenance_enabled

#: most decimals a study table prints (a larger format width is refused, not allocated)
MAX_DECIMALS = 12

#: figure groups, in the order the report shows them
FIGURE_GROUPS = ("plots", "mpr", "renders", "figures")

#: image-quality metrics in the order the report shows them: canonical column → accepted keys (lower case)
IQ_COLUMNS: dict[str, tuple[str, ...]] = {
    "SSIM": ("ssim", "ssim_study", "ssim (study)"),
    "PSNR (dB)": ("psnr", "psnr_db", "psnr (db)"),
    "FID": ("fid",),
    "MTF50 (lp/mm)": ("mtf50", "mtf50_lp_per_mm", "mtf50 (lp/mm)"),
    "MTF10 (lp/mm)": ("mtf10", "mtf10_lp_per_mm", "mtf10 (lp/mm)"),
    "noise SD (HU)": ("noise_sd", "noise sd", "noise_sd_hu", "noise sd (hu)", "noise"),
    "CNR": ("cnr",),
}


def _opt_float(x: Any) -> float | None:
    if x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


@dataclass
class FigureItem:
    """One picture: ``image`` is a PNG/JPEG/GIF/SVG file path, encoded bytes, an (H, W[, 3|4]) uint8 array
    or a matplotlib Figure. ``group`` places it: ``plots``, ``mpr``, ``renders`` or ``figures``."""

    title: str
    image: Any
    caption: str = ""
    group: str = "figures"

    def __post_init__(self) -> None:
        if self.group not in FIGURE_GROUPS:
            raise ParameterError("group", f"unknown figure group {self.group!r}; use one of {', '.join(FIGURE_GROUPS)}")


@dataclass
class StudyRow:
    """One structural parameter of a Table-4/5-style comparison (columns as :func:`trabecula.stats.study_table`).

    ``ref_*``: the reference (e.g. micro-CT), ``method_*``: the method compared with it; ``t_p`` the paired
    test's p, ``r``/``r_p`` Pearson's R and its p; optional agreement columns ``bias_abs``, ``bias_percent``,
    ``loa_low``, ``loa_high`` (Bland–Altman) and ``icc_2_1``.
    """

    parameter: str
    ref_mean: float | None = None
    ref_sd: float | None = None
    method_mean: float | None = None
    method_sd: float | None = None
    t_p: float | None = None
    r: float | None = None
    r_p: float | None = None
    n: int | None = None
    bias_abs: float | None = None
    bias_percent: float | None = None
    loa_low: float | None = None
    loa_high: float | None = None
    icc_2_1: float | None = None

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any]) -> StudyRow:
        if "parameter" not in d:
            raise ParameterError("morphometry", f"a study-table row needs a 'parameter'; got keys {sorted(d)}")
        kw: dict[str, Any] = {"parameter": str(d["parameter"])}
        for name in cls.__dataclass_fields__:
            if name == "parameter" or name not in d:
                continue
            kw[name] = (int(d[name]) if _opt_float(d[name]) is not None else None) if name == "n" else _opt_float(d[name])
        return cls(**kw)


@dataclass
class StudyTable:
    """A comparison table laid out like the vertebra study's Tables 4 and 5.

    Parameter | reference mean ± SD | method mean ± SD | p (paired test) † | R ‡ | p (R) ‡, with the
    sample size ``n`` in the header and the footnotes naming the tests. Agreement columns (Bland–Altman
    bias and limits, ICC) are added when the rows carry them.
    """

    rows: list[StudyRow]
    reference_name: str = "micro-CT"
    method_name: str = "method"
    title: str | None = None
    n: int | None = None
    decimals: int = 3
    test_note: str = "Paired Student's t-test comparing the parameters of {method} and {reference}."
    corr_note: str = "Pearson's correlation coefficient between the parameters of {method} and {reference}."

    def __post_init__(self) -> None:
        if isinstance(self.decimals, bool) or not isinstance(self.decimals, int | np.integer) \
                or not 0 <= self.decimals <= MAX_DECIMALS:
            raise ParameterError("decimals", f"expected a whole number 0..{MAX_DECIMALS}, got {self.decimals!r}")

    @property
    def sample_size(self) -> int | None:
        if self.n is not None:
            return self.n
        ns = {r.n for r in self.rows if r.n is not None}
        return ns.pop() if len(ns) == 1 else None

    @classmethod
    def from_frame(cls, df: Any, reference_name: str = "micro-CT", method_name: str = "method",
                   title: str | None = None, **kw: Any) -> StudyTable:
        """From a DataFrame (or list of row mappings) with the columns of :func:`trabecula.stats.study_table`."""
        records = df.to_dict("records") if hasattr(df, "to_dict") else list(df)
        return cls([StudyRow.from_mapping(r) for r in records], reference_name, method_name, title, **kw)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StudyTable:
        rows = [StudyRow.from_mapping(r) for r in d.get("rows", [])]
        keys = ("reference_name", "method_name", "title", "n", "decimals", "test_note", "corr_note")
        kw = {k: d[k] for k in keys if k in d}
        for k in ("n", "decimals"):
            if _is_number(kw.get(k)) and float(kw[k]).is_integer():
                kw[k] = int(kw[k])
        return cls(rows, **kw)

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "reference_name": self.reference_name, "method_name": self.method_name,
                "n": self.n, "decimals": self.decimals, "test_note": self.test_note, "corr_note": self.corr_note,
                "rows": [{k: getattr(r, k) for k in StudyRow.__dataclass_fields__} for r in self.rows]}


@dataclass
class PairedData:
    """Paired per-sample values of one parameter, for a scatter plot (with R) and a Bland–Altman plot.

    ``r``, ``bias`` and ``loa`` (lower, upper 95 % limits of agreement of method − reference) are
    precomputed (e.g. by :mod:`trabecula.stats`); the plots draw them only when given.
    """

    parameter: str
    reference: Sequence[float]
    method: Sequence[float]
    reference_name: str = "micro-CT"
    method_name: str = "method"
    unit: str = ""
    r: float | None = None
    r_p: float | None = None
    bias: float | None = None
    loa: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        self.reference = np.asarray(self.reference, float)
        self.method = np.asarray(self.method, float)
        if self.reference.shape != self.method.shape or self.reference.ndim != 1 or self.reference.size == 0:
            raise ParameterError("paired", f"{self.parameter}: reference and method need the same length, at least one "
                                           f"value (got {self.reference.shape} and {self.method.shape})")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PairedData:
        loa = d.get("loa")
        return cls(d["parameter"], d["reference"], d["method"], d.get("reference_name", "micro-CT"),
                   d.get("method_name", "method"), d.get("unit", ""), _opt_float(d.get("r")), _opt_float(d.get("r_p")),
                   _opt_float(d.get("bias")), tuple(loa) if loa is not None else None)

    def to_dict(self) -> dict[str, Any]:
        return {"parameter": self.parameter, "reference": self.reference.tolist(), "method": self.method.tolist(),
                "reference_name": self.reference_name, "method_name": self.method_name, "unit": self.unit,
                "r": self.r, "r_p": self.r_p, "bias": self.bias, "loa": list(self.loa) if self.loa else None}


@dataclass
class MTFCurve:
    """An MTF curve: spatial frequency in line pairs per mm against modulation (0…1), with optional
    precomputed MTF50/MTF10 (lp/mm) marked on the plot."""

    name: str
    frequency: Sequence[float]
    mtf: Sequence[float]
    mtf50: float | None = None
    mtf10: float | None = None

    def __post_init__(self) -> None:
        self.frequency = np.asarray(self.frequency, float)
        self.mtf = np.asarray(self.mtf, float)
        if self.frequency.shape != self.mtf.shape or self.frequency.ndim != 1:
            raise ParameterError("mtf", f"{self.name}: frequency and MTF need the same length")

    @classmethod
    def from_dict(cls, name: str, d: Mapping[str, Any]) -> MTFCurve:
        f = d.get("frequency_lp_per_mm", d.get("frequency"))
        if f is None or "mtf" not in d:
            raise ParameterError("mtf", f"{name}: needs 'frequency_lp_per_mm' and 'mtf'")
        return cls(name, f, d["mtf"], _opt_float(d.get("mtf50")), _opt_float(d.get("mtf10")))

    def to_dict(self) -> dict[str, Any]:
        return {"frequency_lp_per_mm": self.frequency.tolist(), "mtf": self.mtf.tolist(),
                "mtf50": self.mtf50, "mtf10": self.mtf10}


@dataclass
class ReportData:
    """All sections of a report; each is optional and shown only when it holds data.

    Attributes
    ----------
    title, subtitle : header lines
    inputs : rows of the inputs table (e.g. from :func:`input_row`): name, source, scanner, shape, spacing, units …
    scanners : scanner settings, ``{preset: {setting: value}}`` (one column per preset)
    image_quality : rows ``{"method": name, "SSIM": …, "PSNR": …, "FID": …, "MTF50": …, "MTF10": …,
        "noise_sd": …, "CNR": …}`` (keys as in :data:`IQ_COLUMNS`, case-insensitive; extra keys become columns;
        a value may be a number, a string or ``{"mean", "sd"}``); or ``{method: {metric: value}}``
    morphometry : study tables (:class:`StudyTable`, or DataFrames from :func:`trabecula.stats.study_table`
        wrapped with :meth:`StudyTable.from_frame`)
    measurements : per-scan morphometry, ``{label: {parameter: value}}`` (one row per label)
    mtf : MTF curves (:class:`MTFCurve`) drawn in one plot
    paired : paired values (:class:`PairedData`) drawn as scatter (with R) and Bland–Altman plots
    figures : pictures (:class:`FigureItem`): plots, MPR panels, 3-D renders
    volumes : ``[(name, Volume)]`` for the embedded interactive viewer (reduced to ``viewer_max_voxels`` each)
    checks : ``{what: passed}`` shown as a checklist (e.g. each demo stage's own checks)
    results : ``{stage: {key: value}}`` other results shown as key/value tables (scalars; nested mappings
        flattened one level), e.g. each demo stage's summary
    timings : ``{step: seconds}``
    notes : free-text lines shown at the end
    html_sections : ``[(title, html)]`` sections rendered by trabecula's own producers, which escape every
        value they insert (e.g. the reader study's Table 2, :func:`trabecula.readerstudy.analyse.html_section`);
        inserted as they are — never pass text from a file or a user here
    meta : ``{key: value}`` shown under the title (seed, command, versions …)
    """

    title: str = "trabecula study report"
    subtitle: str = ""
    inputs: list[dict[str, Any]] = field(default_factory=list)
    scanners: dict[str, dict[str, Any]] = field(default_factory=dict)
    image_quality: Any = field(default_factory=list)
    image_quality_note: str = ""
    morphometry: list[StudyTable] = field(default_factory=list)
    measurements: dict[str, dict[str, Any]] = field(default_factory=dict)
    measurements_note: str = ""
    mtf: list[MTFCurve] = field(default_factory=list)
    paired: list[PairedData] = field(default_factory=list)
    figures: list[FigureItem] = field(default_factory=list)
    volumes: list[tuple[str, Volume]] = field(default_factory=list)
    viewer_max_voxels: int | None = None
    checks: dict[str, bool] = field(default_factory=dict)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    html_sections: list[tuple[str, str]] = field(default_factory=list)

    # ------------------------------------------------------------------------------------- JSON form
    @classmethod
    def from_json(cls, path: str | os.PathLike) -> ReportData:
        """Read a ``STUDY.json``.

        Schema (every key optional): ``title``, ``subtitle``, ``inputs`` (list of row objects),
        ``scanners`` (object of objects), ``image_quality`` (list of rows or object of objects),
        ``image_quality_note``, ``morphometry`` (list of ``{title, reference_name, method_name, n, rows: [...]}``
        with the :class:`StudyRow` fields), ``measurements`` (object of objects), ``measurements_note``,
        ``mtf`` (``{name: {frequency_lp_per_mm: [...], mtf: [...], mtf50?, mtf10?}}``), ``paired`` (list of
        :class:`PairedData` objects), ``figures`` (list of ``{title, path, caption?, group?}``), ``volumes``
        (list of ``{name, path, input_spacing?, units?}``), ``viewer_max_voxels``, ``checks``, ``timings``,
        ``results``, ``notes``, ``meta``. Paths are relative to the JSON file's folder.
        """
        p = Path(path)
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise InputError(p, "no such file") from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(p, f"not valid JSON ({exc})") from exc
        if not isinstance(d, dict):
            raise InputError(p, "a study file holds one JSON object")
        try:
            return cls.from_dict(d, base=p.parent)
        except ParameterError as exc:
            raise InputError(p, f"{exc.name}: {exc.message}") from exc
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError, RecursionError) as exc:
            raise InputError(p, f"malformed study file ({type(exc).__name__}: {exc})") from exc

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], base: str | os.PathLike = ".") -> ReportData:
        """From the ``STUDY.json`` form (see :meth:`from_json`); a key of the wrong type is a
        :class:`ParameterError` naming it (``morphometry[0].decimals``)."""
        validate_study(d)
        base = Path(base)

        def resolve(rel: str) -> Path:
            q = Path(rel)
            return q if q.is_absolute() else base / q

        figures = [FigureItem(f.get("title", Path(f["path"]).stem), resolve(f["path"]), f.get("caption", ""),
                              f.get("group", "figures")) for f in d.get("figures", [])]
        volumes = [(v.get("name", Path(v["path"]).name),
                    read_volume(resolve(v["path"]), spacing=v.get("input_spacing"), units=v.get("units")))
                   for v in d.get("volumes", [])]
        return cls(
            title=d.get("title", cls.title), subtitle=d.get("subtitle", ""),
            inputs=list(d.get("inputs", [])), scanners=dict(d.get("scanners", {})),
            image_quality=d.get("image_quality", []), image_quality_note=d.get("image_quality_note", ""),
            morphometry=[StudyTable.from_dict(t) for t in d.get("morphometry", [])],
            measurements=dict(d.get("measurements", {})), measurements_note=d.get("measurements_note", ""),
            mtf=[MTFCurve.from_dict(k, v) for k, v in d.get("mtf", {}).items()],
            paired=[PairedData.from_dict(x) for x in d.get("paired", [])],
            figures=figures, volumes=volumes, viewer_max_voxels=d.get("viewer_max_voxels"),
            checks=dict(d.get("checks", {})), results=dict(d.get("results", {})), timings=dict(d.get("timings", {})),
            notes=list(d.get("notes", [])), meta=dict(d.get("meta", {})),
        )

    def to_dict(self, base: str | os.PathLike = ".", volume_paths: Mapping[str, str | os.PathLike] | None = None) -> dict[str, Any]:
        """JSON-able form; figure images must be file paths (written relative to ``base``), volumes are
        listed by the paths given in ``volume_paths`` (``{name: path}``; volumes without one are left out)."""
        base = Path(base)

        def rel(p: str | os.PathLike) -> str:
            q = Path(p)
            try:
                return os.path.relpath(q, base)
            except ValueError:
                return str(q)

        figs = []
        for f in self.figures:
            if not isinstance(f.image, str | os.PathLike):
                raise ParameterError("figures", f"{f.title}: only figures given as files can be saved in a study file")
            figs.append({"title": f.title, "path": rel(f.image), "caption": f.caption, "group": f.group})
        vols = [{"name": n, "path": rel(volume_paths[n])} for n, _ in self.volumes if volume_paths and n in volume_paths]
        iq = self.image_quality
        return _jsonable({
            "title": self.title, "subtitle": self.subtitle, "inputs": self.inputs, "scanners": self.scanners,
            "image_quality": iq, "image_quality_note": self.image_quality_note,
            "morphometry": [t.to_dict() for t in self.morphometry],
            "measurements": self.measurements, "measurements_note": self.measurements_note,
            "mtf": {c.name: c.to_dict() for c in self.mtf}, "paired": [p.to_dict() for p in self.paired],
            "figures": figs, "volumes": vols, "viewer_max_voxels": self.viewer_max_voxels,
            "checks": self.checks, "results": self.results, "timings": self.timings, "notes": self.notes, "meta": self.meta,
        })

    def to_json(self, path: str | os.PathLike, *, force: bool = False,
                volume_paths: Mapping[str, str | os.PathLike] | None = None) -> Path:
        """Write the ``STUDY.json`` form (atomic; refuses to overwrite without ``force``)."""
        p = Path(path)
        text = json.dumps(self.to_dict(base=p.parent, volume_paths=volume_paths), indent=2)
        with atomic_output(p, force=force) as tmp:
            Path(tmp).write_text(text + "\n", encoding="utf-8")
        return p


# ------------------------------------------------------------------------------------- study validation
def _json_type(x: Any) -> str:
    if x is None:
        return "null"
    if isinstance(x, bool):
        return "true/false"
    if isinstance(x, int | float):
        return "a number"
    if isinstance(x, str):
        return "a string"
    if isinstance(x, list | tuple):
        return "an array"
    if isinstance(x, Mapping):
        return "an object"
    return type(x).__name__


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float | np.integer | np.floating) and not isinstance(x, bool)


_WANT = {
    "string": lambda x: isinstance(x, str),
    "object": lambda x: isinstance(x, Mapping),
    "array": lambda x: isinstance(x, list | tuple),
    "number": _is_number,
    "number or null": lambda x: x is None or _is_number(x),
    "number, string or null": lambda x: x is None or _is_number(x) or isinstance(x, str),
    "string or number": lambda x: isinstance(x, str) or _is_number(x),
    "string or null": lambda x: x is None or isinstance(x, str),
    "array of numbers": lambda x: isinstance(x, list | tuple) and all(v is None or _is_number(v) for v in x),
}


def _want(d: Mapping[str, Any], key: str, kind: str, where: str, required: bool = False) -> Any:
    """``d[key]`` when it is of ``kind`` (see :data:`_WANT`), else a :class:`ParameterError` naming ``where.key``."""
    name = f"{where}.{key}" if where else key
    if key not in d:
        if required:
            raise ParameterError(name, "missing")
        return None
    v = d[key]
    if not _WANT[kind](v):
        raise ParameterError(name, f"expected {'an' if kind[0] in 'aeiou' else 'a'} {kind}, got {_json_type(v)}")
    return v


def _items(d: Mapping[str, Any], key: str, kind: str, where: str = "") -> list[tuple[str, Any]]:
    """Entries of the array or object ``d[key]`` (absent: none), each of ``kind``, with their names."""
    v = d.get(key)
    if v is None:
        return []
    name = f"{where}.{key}" if where else key
    if isinstance(v, Mapping):
        entries = [(f"{name}.{k}", x) for k, x in v.items()]
    elif isinstance(v, list | tuple):
        entries = [(f"{name}[{i}]", x) for i, x in enumerate(v)]
    else:
        raise ParameterError(name, f"expected an array or object, got {_json_type(v)}")
    for n, x in entries:
        if not _WANT[kind](x):
            raise ParameterError(n, f"expected {'an' if kind[0] in 'aeiou' else 'a'} {kind}, got {_json_type(x)}")
    return entries


def validate_study(d: Mapping[str, Any]) -> None:
    """Check the types of a ``STUDY.json`` object before anything is built from it: a missing required key
    or a value of the wrong type is a :class:`ParameterError` naming the key (``paired[2].reference``);
    format widths (``decimals``) and the viewer's voxel budget are bounded."""
    if not isinstance(d, Mapping):
        raise ParameterError("study", f"expected an object, got {_json_type(d)}")
    for key in ("title", "subtitle", "image_quality_note", "measurements_note"):
        _want(d, key, "string", "")
    for key in ("scanners", "measurements", "checks", "results", "meta"):
        _want(d, key, "object", "")
    for key in ("inputs", "morphometry", "paired", "figures", "volumes", "notes"):
        _want(d, key, "array", "")
    _items(d, "inputs", "object")
    _items(d, "scanners", "object")
    if d.get("image_quality") is not None:
        _items(d, "image_quality", "object")
    for name, t in _items(d, "morphometry", "object"):
        _want(t, "title", "string or null", name)
        for key in ("reference_name", "method_name", "test_note", "corr_note"):
            _want(t, key, "string", name)
        n = _want(t, "n", "number or null", name)
        if n is not None and (not float(n).is_integer() or n < 0):
            raise ParameterError(f"{name}.n", f"expected a whole number of samples, got {n!r}")
        dec = _want(t, "decimals", "number", name)
        if dec is not None and (not float(dec).is_integer() or not 0 <= dec <= MAX_DECIMALS):
            raise ParameterError(f"{name}.decimals", f"expected a whole number 0..{MAX_DECIMALS}, got {dec!r}")
        _want(t, "rows", "array", name)
        for rname, r in _items(t, "rows", "object", name):
            _want(r, "parameter", "string or number", rname, required=True)
            for key in StudyRow.__dataclass_fields__:
                if key != "parameter":
                    _want(r, key, "number, string or null", rname)
    mtf = _want(d, "mtf", "object", "")
    for name, c in _items(d, "mtf", "object") if mtf is not None else []:
        f = "frequency_lp_per_mm" if "frequency_lp_per_mm" in c else "frequency"
        freq = _want(c, f, "array of numbers", name, required=True)
        m = _want(c, "mtf", "array of numbers", name, required=True)
        if len(freq) != len(m):
            raise ParameterError(f"{name}.mtf", f"{len(m)} values for {len(freq)} frequencies")
        for key in ("mtf50", "mtf10"):
            _want(c, key, "number or null", name)
    for name, pd in _items(d, "paired", "object"):
        _want(pd, "parameter", "string or number", name, required=True)
        ref = _want(pd, "reference", "array of numbers", name, required=True)
        met = _want(pd, "method", "array of numbers", name, required=True)
        if len(ref) != len(met) or not ref:
            raise ParameterError(f"{name}.method", f"needs as many values as reference, at least one "
                                                   f"(got {len(met)} and {len(ref)})")
        for key in ("reference_name", "method_name", "unit"):
            _want(pd, key, "string", name)
        for key in ("r", "r_p", "bias"):
            _want(pd, key, "number or null", name)
        loa = pd.get("loa")
        if loa is not None and not (_WANT["array of numbers"](loa) and len(loa) == 2):
            raise ParameterError(f"{name}.loa", f"expected two numbers (lower, upper) or null, got {_json_type(loa)}")
    for name, f in _items(d, "figures", "object"):
        _want(f, "path", "string", name, required=True)
        for key in ("title", "caption"):
            _want(f, key, "string", name)
        g = _want(f, "group", "string", name)
        if g is not None and g not in FIGURE_GROUPS:
            raise ParameterError(f"{name}.group", f"unknown figure group {g!r}; use one of {', '.join(FIGURE_GROUPS)}")
    for name, v in _items(d, "volumes", "object"):
        _want(v, "path", "string", name, required=True)
        for key in ("name", "units"):
            _want(v, key, "string", name)
        sp = v.get("input_spacing")
        if sp is not None and not (isinstance(sp, str) or _is_number(sp) or _WANT["array of numbers"](sp)):
            raise ParameterError(f"{name}.input_spacing", f"expected a number, a string or numbers, got {_json_type(sp)}")
    vmax = _want(d, "viewer_max_voxels", "number or null", "")
    if vmax is not None and (not float(vmax).is_integer() or not 1 <= vmax <= 2**31):
        raise ParameterError("viewer_max_voxels", f"expected a whole number 1..{2**31}, got {vmax!r}")
    for name, t in _items(d, "timings", "number or null"):
        if t is None:
            raise ParameterError(name, "expected a number of seconds, got null")


def input_row(name: str, vol: Volume) -> dict[str, Any]:
    """A row of the inputs table describing ``vol``: source, scanner, shape (z, y, x), spacing (mm), units, dtype,
    and, for a scan of the scanner twin, its dose (CTDIvol, effective dose where the body region defines one)."""
    row = {
        "name": name,
        "source": (anonymise_path(vol.provenance.source) if anonymise_provenance_enabled() else vol.provenance.source)
        if vol.provenance.source else "",
        "scanner": vol.provenance.scanner or "",
        "shape (z, y, x)": list(vol.shape),
        "spacing (mm, z, y, x)": [round(float(s), 6) for s in vol.spacing],
        "extent (mm)": [round(float(e), 4) for e in vol.extent_mm],
        "units": vol.units,
        "dtype": str(vol.dtype),
    }
    dose = vol.provenance.extra.get("dose")
    if isinstance(dose, Mapping) and dose.get("ctdivol_mgy") is not None:
        row[f"CTDIvol (mGy, {int(dose.get('phantom_mm', 0)) // 10} cm)"] = round(float(dose["ctdivol_mgy"]), 3)
        if dose.get("effective_msv") is not None:
            row["effective dose (mSv)"] = round(float(dose["effective_msv"]), 4)
    return row


def normalise_image_quality(iq: Any) -> tuple[list[str], list[dict[str, Any]]]:
    """Rows of the image-quality table as ``(columns, rows)`` with canonical column names.

    Accepts a list of row mappings (each with ``method`` or ``name``) or ``{method: {metric: value}}``;
    metric keys are matched case-insensitively to :data:`IQ_COLUMNS`; other keys keep their names and are
    shown after the canonical ones.
    """
    if iq is None:
        return [], []
    if hasattr(iq, "to_dict") and not isinstance(iq, Mapping):
        iq = iq.to_dict("records")
    if isinstance(iq, Mapping):
        records = [{"method": k, **dict(v)} for k, v in iq.items()]
    else:
        records = [dict(r) for r in iq]
    lookup = {alias: col for col, aliases in IQ_COLUMNS.items() for alias in (*aliases, col.lower())}
    rows, extra = [], []
    for rec in records:
        name = rec.pop("method", rec.pop("name", ""))
        row: dict[str, Any] = {"method": str(name)}
        for k, v in rec.items():
            col = lookup.get(str(k).strip().lower(), str(k))
            row[col] = v
            if col not in IQ_COLUMNS and col not in extra:
                extra.append(col)
        rows.append(row)
    present = [c for c in IQ_COLUMNS if any(c in r for r in rows)]
    return ["method", *present, *extra], rows


def guess_group(name: str) -> str:
    """Figure group from a file or figure name: MTF/scatter/Bland–Altman → ``plots``, MPR/slices → ``mpr``,
    renders/turntables → ``renders``, anything else → ``figures``."""
    n = name.lower()
    if any(k in n for k in ("mtf", "scatter", "bland", "altman", "nps", "plot", "curve", "histogram")):
        return "plots"
    if any(k in n for k in ("mpr", "slice", "axial", "coronal", "sagittal", "panel")):
        return "mpr"
    if any(k in n for k in ("render", "turntable", "3d", "volume_rendering", "specimen")):
        return "renders"
    return "figures"


_PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".mp4")


def from_demo_summary(demo_dir: str | os.PathLike) -> ReportData:
    """A report of a ``trabecula demo`` folder from its ``summary.json`` and the pictures under ``figures/``.

    Shows each stage's own check, the timings, each stage's scalar results and every picture (grouped by
    :func:`guess_group`). The demo's report stage writes a richer ``study.json``; :func:`load_study` prefers it.
    """
    d = Path(demo_dir)
    sp = d / "summary.json"
    try:
        summary = json.loads(sp.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(sp, "no such file (run `trabecula demo` first, or give a STUDY.json)") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(sp, f"not valid JSON ({exc})") from exc
    if not isinstance(summary, dict):
        raise InputError(sp, f"expected one JSON object, got {_json_type(summary)}")
    try:
        _want(summary, "results", "object", "")
        _want(summary, "seconds", "object", "")
        _want(summary, "total_seconds", "number", "")
        _want(summary, "stages", "array", "")
        _items(summary, "seconds", "number")
    except ParameterError as exc:
        raise InputError(sp, f"{exc.name}: {exc.message}") from exc
    results = summary.get("results", {}) or {}
    checks = {f"{stage}: its own checks": bool(r.get("ok")) for stage, r in results.items()
              if isinstance(r, dict) and "ok" in r}
    timings = {k: float(v) for k, v in (summary.get("seconds") or {}).items()}
    if "total_seconds" in summary:
        timings["total"] = float(summary["total_seconds"])
    figs = []
    fig_dir = d / "figures"
    if fig_dir.is_dir():
        for f in sorted(fig_dir.rglob("*")):
            if f.is_file() and f.suffix.lower() in _PICTURE_SUFFIXES and not f.name.startswith("."):
                figs.append(FigureItem(f.stem.replace("_", " "), f, str(f.relative_to(d)), guess_group(f.stem)))
    return ReportData(
        title="trabecula demo", subtitle=f"results in {anonymise_path(d) if anonymise_provenance_enabled() else d}",
        checks=checks, timings=timings, figures=figs,
        results={k: v for k, v in results.items() if isinstance(v, dict)},
        meta={"seed": summary.get("seed"), "stages": ", ".join(str(x) for x in summary.get("stages") or [])},
    )


def load_study(path: str | os.PathLike) -> ReportData:
    """Report data from a ``STUDY.json`` file, or from a demo folder (its ``study.json`` if the demo's report
    stage wrote one, else :func:`from_demo_summary`)."""
    p = Path(path)
    if not p.exists():
        raise InputError(p, "no such file or folder")
    if p.is_dir():
        if (p / "study.json").is_file():
            return ReportData.from_json(p / "study.json")
        return from_demo_summary(p)
    return ReportData.from_json(p)
