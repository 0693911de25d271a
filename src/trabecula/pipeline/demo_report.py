"""Demo stage — the report: everything the earlier stages left in ``ctx`` as one self-contained HTML file.

Reads (all optional, per the ``ctx.data`` contract in :mod:`trabecula.pipeline.demo`): ``scans``,
``phantoms``, ``enhanced``, ``measurements``, ``figures``; and, when a stage provides them,
``image_quality`` (``{method: {metric: value}}``), ``mtf_curves`` (``{name: {"frequency_lp_per_mm": [...],
"mtf": [...], "mtf50"?, "mtf10"?}}``), ``study_tables`` (:class:`~trabecula.report.StudyTable` objects or
DataFrames from :func:`trabecula.stats.study_table`, with ``df.attrs`` ``reference_name``/``method_name``/
``title``) and ``paired`` (:class:`~trabecula.report.PairedData`). Writes ``report.html``, and ``study.json``
with the viewer's (reduced) volumes under ``report/`` so that ``trabecula report --from <demo folder>``
rebuilds the same report.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.table import Table

from trabecula.errors import TrabeculaError
from trabecula.io import write_volume
from trabecula.render.viewer import fit_to_budget
from trabecula.report import (
    FigureItem,
    MTFCurve,
    PairedData,
    ReportData,
    StudyTable,
    build_report,
    guess_group,
    input_row,
)
from trabecula.volume import Volume

TITLE = "Report: one self-contained HTML file"

#: volumes shown side by side in the report's viewer, in order of preference (at most three)
VIEWER_PREFERENCE = (("vertebra", "clinical-mdct"), ("enhanced", "pix2pixhd"), ("vertebra", "micro-ct"),
                     ("wrist", "uhr-extremity"))
#: voxel budget per viewer volume (64³ each keeps the report at a few MB)
VIEWER_VOXELS = 262_144

#: scanner settings shown in the report (dotted keys of ``Scanner.to_dict()``)
SCANNER_KEYS = ("description", "source.kvp", "source.filtration_mm", "source.focal_spot_mm", "exposure.mas",
                "geometry.beam", "geometry.views", "geometry.sid_mm", "geometry.sdd_mm", "detector.scintillator",
                "reconstruction.voxel_mm", "reconstruction.kernel", "reconstruction.matrix")


def _scan_name(key: Any) -> str:
    return " · ".join(map(str, key)) if isinstance(key, tuple) else str(key)


def _scanner_settings(names: list[str]) -> dict[str, dict[str, Any]]:
    """Key settings of each named scanner preset, when the scanner stage can load it."""
    try:
        from trabecula.scanner import load_scanner
    except ImportError:
        return {}
    out = {}
    for name in names:
        try:
            d = load_scanner(name).to_dict()
        except (TrabeculaError, KeyError, AttributeError, ValueError):
            continue
        flat = {}
        for key in SCANNER_KEYS:
            node: Any = d
            for part in key.split("."):
                node = node.get(part) if isinstance(node, Mapping) else None
            if node is not None and node != "":
                flat[key.split(".")[-1]] = node
        if flat:
            out[name] = flat
    return out


def _study_tables(items: Any) -> list[StudyTable]:
    tables = []
    for t in items or []:
        if isinstance(t, StudyTable):
            tables.append(t)
        else:
            attrs = getattr(t, "attrs", {}) or {}
            tables.append(StudyTable.from_frame(t, attrs.get("reference_name", "micro-CT"),
                                                attrs.get("method_name", "method"), attrs.get("title")))
    return tables


def _viewer_volumes(scans: Mapping, enhanced: Mapping, phantoms: Mapping) -> list[tuple[str, Volume]]:
    pool: dict[tuple, Volume] = {tuple(k) if isinstance(k, tuple) else (k,): v for k, v in scans.items()}
    pool.update({("enhanced", k): v for k, v in enhanced.items()})
    if not pool:  # no scans yet: show the phantoms themselves
        pool = {("phantom", k): v for k, v in phantoms.items()}
    chosen = [(k, pool[k]) for k in VIEWER_PREFERENCE if k in pool]
    if not chosen:
        chosen = list(pool.items())
    return [(_scan_name(k), v) for k, v in chosen[:3] if isinstance(v, Volume)]


def report_data(ctx) -> ReportData:
    """Collect what the earlier stages left in ``ctx`` into a :class:`ReportData`."""
    d = ctx.data
    scans: Mapping = d.get("scans") or {}
    enhanced: Mapping = d.get("enhanced") or {}
    phantoms: Mapping = d.get("phantoms") or {}
    inputs = [input_row(f"phantom · {k}", v) for k, v in phantoms.items() if isinstance(v, Volume)]
    inputs += [input_row(_scan_name(k), v) for k, v in scans.items() if isinstance(v, Volume)]
    inputs += [input_row(f"enhanced · {k}", v) for k, v in enhanced.items() if isinstance(v, Volume)]
    scanner_names = sorted({v.provenance.scanner for v in scans.values() if isinstance(v, Volume) and v.provenance.scanner})
    figures, missing = [], []
    captions = d.get("figure_captions") or {}
    for name, path in (d.get("figures") or {}).items():
        p = Path(path)
        if p.is_file():
            rel = str(p.relative_to(ctx.out_dir)) if p.is_relative_to(ctx.out_dir) else str(p)
            caption = f"{captions[name]} ({rel})" if captions.get(name) else rel
            figures.append(FigureItem(str(name).replace("_", " "), p, caption, guess_group(str(name))))
        else:
            missing.append(f"{name} ({p})")
    mtf = []
    for name, c in (d.get("mtf_curves") or {}).items():
        mtf.append(c if isinstance(c, MTFCurve) else MTFCurve.from_dict(str(name), c) if isinstance(c, Mapping)
                   else MTFCurve(str(name), *c))
    paired = [p if isinstance(p, PairedData) else PairedData.from_dict(p) for p in d.get("paired") or []]
    iq = d.get("image_quality")
    if iq is None:
        for res in ctx.results.values():
            if isinstance(res, Mapping) and res.get("image_quality"):
                iq = res["image_quality"]
                break
    notes = [f"registered figure missing: {m}" for m in missing]
    checks = {f"{stage}: its own checks": bool(r.get("ok")) for stage, r in ctx.results.items()
              if isinstance(r, Mapping) and "ok" in r}
    measurements = {str(k): v for k, v in (d.get("measurements") or {}).items()}
    volumes = _viewer_volumes(scans, enhanced, phantoms)
    io_volume = ctx.out_dir / "formats" / "demo.nii.gz"
    if not volumes and io_volume.is_file():  # nothing scanned yet: the I/O stage's synthetic volume
        from trabecula.io import read_volume

        volumes = [("synthetic volume (I/O stage)", read_volume(io_volume))]
    return ReportData(
        title="trabecula demo report",
        subtitle="phantoms scanned by the scanner twin, enhanced, measured and rendered — built by `trabecula demo`",
        inputs=inputs, scanners=_scanner_settings(scanner_names), image_quality=iq or [],
        morphometry=_study_tables(d.get("study_tables")), measurements=measurements,
        measurements_note="one cylindrical VOI per scan" if measurements else "",
        mtf=mtf, paired=paired, figures=figures, volumes=volumes,
        viewer_max_voxels=VIEWER_VOXELS, checks=checks,
        results={k: v for k, v in ctx.results.items() if isinstance(v, Mapping) and k != "report"},
        notes=notes, meta={"seed": ctx.seed, "folder": str(ctx.out_dir)},
    )


def _write_study(data: ReportData, out_dir: Path) -> Path:
    """``study.json`` + the viewer's reduced volumes under ``report/``, for ``trabecula report --from``."""
    vol_dir = out_dir / "report"
    vol_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for i, (name, vol) in enumerate(data.volumes):
        shown = fit_to_budget(vol, data.viewer_max_voxels or VIEWER_VOXELS, name=name, progress=False).volume
        paths[name] = write_volume(shown, vol_dir / f"viewer{i}.nii.gz", force=True)
    saved = ReportData(**{**data.__dict__, "figures": [f for f in data.figures if isinstance(f.image, Path)]})
    return saved.to_json(out_dir / "study.json", force=True, volume_paths=paths)


def run(ctx) -> dict[str, Any]:
    t0 = time.perf_counter()
    advance = ctx.subtask("HTML report", 3)
    data = report_data(ctx)
    advance(1, "HTML report: embedding figures and the viewer")
    out = ctx.out_dir / "report.html"
    problems = list(data.notes)
    try:
        build_report(data, out, force=True)
    except TrabeculaError as exc:  # e.g. the viewer's JavaScript is not installed: keep the rest
        problems.append(f"embedded viewer left out: {exc}")
        data.notes.append(problems[-1])
        data.volumes = []
        build_report(data, out, force=True)
    advance(1, "HTML report: study.json")
    study = _write_study(data, ctx.out_dir)
    advance(1)
    text = out.read_text(encoding="utf-8")
    n_img = text.count("<img ") + text.count("<video ")
    expected_img = len(data.figures) + (1 if data.mtf else 0) + 2 * len(data.paired)
    ok = out.is_file() and n_img == expected_img and not problems
    return {
        "ok": bool(ok), "path": str(out), "study": str(study), "megabytes": round(out.stat().st_size / 1e6, 2),
        "pictures": n_img, "viewer_volumes": [n for n, _ in data.volumes],
        "sections": [s for s in ("inputs", "scanners", "image_quality", "morphometry", "measurements", "mtf",
                                 "paired", "figures", "volumes") if getattr(data, s)],
        "problems": problems, "seconds": round(time.perf_counter() - t0, 2),
    }


def show(ctx, res: dict[str, Any]) -> None:
    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column()
    t.add_row("report", f"{res['path']}  ({res['megabytes']} MB, one self-contained file)")
    t.add_row("sections", ", ".join(res["sections"]) or "(none yet)")
    t.add_row("pictures", str(res["pictures"]))
    t.add_row("viewer", ", ".join(res["viewer_volumes"]) or "(no volumes)")
    for p in res["problems"]:
        t.add_row("[red]problem[/red]", p)
    ctx.console.print(t)
    ctx.console.print(f"open it: {Path(res['path']).resolve().as_uri()}", soft_wrap=True)
