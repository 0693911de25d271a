"""``trabecula demo``: the main job on built-in defaults, no input needed.

The demo is a list of stages, each in its own module ``trabecula.pipeline.demo_<stage>`` with a
``TITLE`` and a ``run(ctx) -> dict`` function. Stages share a :class:`DemoContext` (output folder,
seed, console, a progress bar and the results of earlier stages) and run in data-flow order:

``io`` (write/read every format) → ``twin`` (phantoms scanned by the scanner presets) →
``measure`` (morphometry in a cylindrical VOI, apparent flags, the wrist HR-pQCT style) → ``large`` (OME-Zarr
measured block by block on a local dask cluster, equal to the in-memory result) → ``enhance`` (shipped
models on the clinical scan) → ``render`` (3-D render, MPR) → ``register`` (a misaligned twin specimen registered
and its slices paired) → ``readerstudy`` (a blinded reader study from the demo's images, not served) →
``report`` (HTML report).

What stages hand to later stages through ``ctx.data`` (in-memory objects) — the contract:

* ``ctx.data["phantoms"]``: ``{"vertebra": Volume, "wrist": Volume}`` label volumes whose
  ``provenance.extra["materials"]`` maps label id (str) → material name, plus
  ``ctx.data["truth"]``: ``{"vertebra": Volume}`` the binary bone truth of the trabecular region;
* ``ctx.data["scans"]``: ``{(phantom, preset): Volume}`` reconstructions in HU, e.g.
  ``("vertebra", "micro-ct")``, ``("vertebra", "clinical-mdct")``, ``("wrist", "uhr-extremity")``;
* ``ctx.data["enhanced"]``: ``{model_name: Volume}`` the clinical vertebra scan enhanced by each shipped model;
* ``ctx.data["measurements"]``: ``{label: dict}`` morphometry results (cylindrical VOI);
* ``ctx.data["figures"]``: ``{name: Path}`` PNG files for the report (MTF plot, MPR panels, renders);
* ``ctx.data["figure_captions"]``: ``{name: str}`` an optional caption per figure (else its file name);
* ``ctx.data["image_quality"]``: ``{method: {metric: value}}`` (SSIM, PSNR, FID, MTF50, MTF10, noise SD, CNR);
* ``ctx.data["mtf_curves"]``: ``{name: {"frequency_lp_per_mm": [...], "mtf": [...], "mtf50": x, "mtf10": y}}``;
* ``ctx.data["study_tables"]``: study tables (``trabecula.stats.study_table`` DataFrames or report ``StudyTable``s);
* ``ctx.data["paired"]``: ``trabecula.report.PairedData`` for the scatter and Bland–Altman plots.

``ctx.results[stage]`` holds each stage's JSON-able summary (written to ``summary.json``); a stage whose own
checks fail sets ``"ok": False`` there and the demo exits non-zero after printing everything.
"""

from __future__ import annotations

import importlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from trabecula.errors import TrabeculaError
from trabecula.progress import make_progress

DEMO_STAGES = ("io", "twin", "measure", "large", "enhance", "render", "register", "readerstudy", "report")


@dataclass
class DemoContext:
    out_dir: Path
    seed: int
    console: Console
    progress: Any = None
    results: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)  # in-memory objects passed between stages

    def subtask(self, description: str, total: int):
        """A progress sub-bar for a stage; returns ``advance(n=1, description=None)``."""
        prog = self.progress
        if prog is None:
            return lambda n=1, description=None: None
        task = prog.add_task(f"  {description}", total=total)

        def advance(n: int = 1, description: str | None = None) -> None:
            if description is not None:
                prog.update(task, description=f"  {description}")
            prog.advance(task, n)
            if prog.tasks[[t.id for t in prog.tasks].index(task)].finished:
                prog.update(task, visible=False)

        return advance


def available_stages() -> list[tuple[str, Any]]:
    stages = []
    for name in DEMO_STAGES:
        mod_name = f"trabecula.pipeline.demo_{name}"
        try:
            stages.append((name, importlib.import_module(mod_name)))
        except ModuleNotFoundError as exc:
            if exc.name != mod_name:
                raise
    return stages


def run_demo(out_dir: Path = Path("trabecula-demo"), seed: int = 0, console: Console | None = None,
             stages: list[str] | None = None) -> dict[str, Any]:
    """Run every stage that exists on built-in defaults, write results under ``out_dir``, print a summary."""
    console = console or Console()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = DemoContext(out_dir=out_dir, seed=seed, console=console)
    todo = [(n, m) for n, m in available_stages() if stages is None or n in stages]
    t_start = time.perf_counter()
    timings = {}
    with make_progress() as prog:
        ctx.progress = prog
        main_task = prog.add_task("trabecula demo", total=len(todo))
        for k, (name, module) in enumerate(todo, 1):
            prog.update(main_task, description=f"trabecula demo · {k}/{len(todo)} {module.TITLE}")
            t0 = time.perf_counter()
            ctx.results[name] = module.run(ctx)
            timings[name] = round(time.perf_counter() - t0, 2)
            prog.advance(main_task)
    for name, module in todo:
        if hasattr(module, "show"):
            console.rule(f"[bold]{module.TITLE}")
            module.show(ctx, ctx.results[name])
    summary = {"seed": seed, "stages": [n for n, _ in todo], "seconds": timings,
               "total_seconds": round(time.perf_counter() - t_start, 2), "results": ctx.results}
    tmp = out_dir / ".summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2, default=str))
    tmp.replace(out_dir / "summary.json")
    table = summary_table(ctx.results)
    if table is not None:
        console.rule("[bold]Summary")
        console.print(table)
    report = ctx.results.get("report", {}).get("path") if isinstance(ctx.results.get("report"), dict) else None
    console.print(f"\ndemo finished in {summary['total_seconds']} s — results in {out_dir}/ (summary.json)")
    if report:
        console.print(f"report: {report}")
    failed = [n for n in ctx.results if isinstance(ctx.results[n], dict) and ctx.results[n].get("ok") is False]
    if failed:
        raise TrabeculaError(f"demo: stage(s) {', '.join(failed)} failed their checks; see above")
    summary["volumes"] = demo_volumes(ctx)
    return summary


def demo_volumes(ctx: DemoContext) -> dict[str, Any]:
    """The vertebra's scans (clinical, enhanced, micro-CT) for the viewer (``trabecula demo --open``)."""
    vols: dict[str, Any] = {}
    scans = ctx.data.get("scans", {})
    if ("vertebra", "clinical-mdct") in scans:
        vols["clinical-mdct"] = scans[("vertebra", "clinical-mdct")]
    for name, v in ctx.data.get("enhanced", {}).items():
        vols[f"enhanced · {name}"] = v
    if ("vertebra", "micro-ct") in scans:
        vols["micro-ct"] = scans[("vertebra", "micro-ct")]
    return vols


def _fmt(v: Any, spec: str = ".3f") -> str:
    return "—" if v is None or (isinstance(v, float) and v != v) else format(v, spec)


def summary_table(results: dict[str, Any]):
    """One table of the demo's headline numbers: per method on the vertebra, SSIM against micro-CT, the noise
    SD against the twin's noise-free scan (where known), BV/TV, Tb.Th and Tb.Sp (morphometry stage for truth, micro-CT and clinical scans; enhance stage for
    the models), and the MTF10 of each scanner preset (twin stage). ``None`` when no stage produced numbers."""
    from rich.table import Table

    rows: list[tuple[str, ...]] = []
    meas = {r.get("label"): r for r in results.get("measure", {}).get("rows", [])} if isinstance(results.get("measure"), dict) else {}
    enh = {r.get("method"): r for r in results.get("enhance", {}).get("rows", [])} if isinstance(results.get("enhance"), dict) else {}
    for label, key, note in (("phantom truth", "vertebra / truth", ""), ("micro-ct", "vertebra / micro-ct", ", IsoData"),
                             ("micro-ct, calibrated 2x", "vertebra / micro-ct, calibrated 2x",
                              ", half-way HU, 2x sub-voxel"),
                             ("clinical-mdct", "vertebra / clinical-mdct", ", IsoData"),
                             ("study-mdct", "vertebra / study-mdct", ", IsoData, in PBS")):
        r = meas.get(key)
        if r:
            e = enh.get("clinical input") if label == "clinical-mdct" else None
            rows.append((label, _fmt(e.get("ssim_vs_micro_ct")) if e else "", _fmt(e.get("noise_sd_hu"), ".1f") if e else "",
                         _fmt(r.get("bv_tv")), _fmt(r.get("tb_th_mm")), _fmt(r.get("tb_sp_mm")),
                         f"cylinder VOI, morphometry stage{note}"))
    for name, r in enh.items():
        if name in ("clinical input", "micro-CT (reference)"):
            continue
        note = "flagged by the hallucination check" if r.get("flagged") else "enhance stage (trabecular core ROI)"
        if name.startswith("low-dose"):
            note = "enhance stage: the DLR input"
        rows.append((name if name.startswith("low-dose") else f"→ {name}", _fmt(r.get("ssim_vs_micro_ct")),
                     _fmt(r.get("noise_sd_hu"), ".1f"),
                     _fmt(r.get("BV/TV")), _fmt(r.get("Tb.Th (mm)")), _fmt(r.get("Tb.Sp (mm)")), note))
    mtf = results.get("twin", {}).get("mtf", {}) if isinstance(results.get("twin"), dict) else {}
    if not rows and not mtf:
        return None
    t = Table(title="vertebra phantom: what each scanner and model shows", title_justify="left")
    for col in ("method", "SSIM vs µCT", "noise SD HU", "BV/TV", "Tb.Th mm", "Tb.Sp mm", "from"):
        t.add_column(col, justify="left" if col in ("method", "from") else "right")
    for r in rows:
        t.add_row(*r)
    if mtf:
        t.add_section()
        for preset, m in mtf.items():
            v = m.get("mtf10_lp_mm")
            txt = (f"{v:.2f} lp/mm" if v is not None and v == v else
                   f"beyond the voxel Nyquist ({_fmt(m.get('nyquist_lp_mm'), '.1f')} lp/mm)")
            t.add_row(f"MTF10 {preset}", "", "", "", "", "", txt + " (edge, full simulation)")
    return t
