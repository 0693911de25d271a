"""Build the self-contained HTML report from a :class:`~trabecula.report.data.ReportData`.

One file: CSS inline, every picture a ``data:`` URI, and — when volumes are given — NiiVue and the
viewer's script inline with the volumes as gzip'd NIfTI ``data:`` URLs, so the interactive viewer works
opened from ``file://`` with no server and nothing is requested from the network.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from trabecula import __version__
from trabecula.errors import InputError, ParameterError
from trabecula.io import atomic_output, check_writable
from trabecula.report.data import FIGURE_GROUPS, FigureItem, ReportData, StudyTable, normalise_image_quality
from trabecula.report.format import format_cell, format_fixed, format_mean_sd, format_p
from trabecula.report.plots import figure_png, plot_bland_altman, plot_mtf, plot_scatter

STYLE_CSS = Path(__file__).resolve().parent / "style.css"

_SECTION_TITLES = {
    "checks": "Checks", "inputs": "Inputs", "scanners": "Scanner settings", "image-quality": "Image quality",
    "morphometry": "Trabecular bone microstructure", "measurements": "Morphometry per scan",
    "plots": "Plots", "mpr": "Multiplanar reconstructions", "renders": "3-D renders", "figures": "Figures",
    "viewer": "Interactive viewer", "results": "Stage results", "timings": "Timings", "notes": "Notes",
}
_GROUP_SECTION = {"plots": "plots", "mpr": "mpr", "renders": "renders", "figures": "figures"}
_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
         ".svg": "image/svg+xml", ".webp": "image/webp", ".mp4": "video/mp4", ".webm": "video/webm"}

e = html.escape


# ------------------------------------------------------------------------------------------- pictures
def _sniff(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.lstrip()[:5] in (b"<?xml", b"<svg ") or b"<svg" in data[:400]:
        return "image/svg+xml"
    if data[4:8] == b"ftyp":
        return "video/mp4"
    return None


def _array_png(arr: np.ndarray) -> bytes:
    from PIL import Image

    a = np.asarray(arr)
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise ParameterError("figures", f"an image array must be (H, W), (H, W, 3) or (H, W, 4); got {a.shape}")
    if a.dtype != np.uint8:
        if np.issubdtype(a.dtype, np.floating) and np.nanmax(a) <= 1.0 and np.nanmin(a) >= 0.0:
            a = np.rint(a * 255)
        a = np.clip(a, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def picture_data(image: Any) -> tuple[bytes, str]:
    """(bytes, MIME type) of a picture given as a file path, encoded bytes, an array or a matplotlib Figure."""
    if isinstance(image, str | os.PathLike):
        p = Path(image)
        if not p.is_file():
            raise InputError(p, "figure file not found")
        data = p.read_bytes()
        if not data:
            raise InputError(p, "figure file is empty")
        mime = _MIME.get(p.suffix.lower()) or _sniff(data)
        if mime is None:
            raise InputError(p, f"unsupported figure type {p.suffix or '(no suffix)'}; use PNG, JPEG, GIF, SVG or MP4")
        return data, mime
    if isinstance(image, bytes | bytearray):
        mime = _sniff(bytes(image))
        if mime is None:
            raise ParameterError("figures", "figure bytes are not PNG, JPEG, GIF, WebP, SVG or MP4")
        return bytes(image), mime
    if isinstance(image, np.ndarray):
        return _array_png(image), "image/png"
    if hasattr(image, "savefig"):
        from trabecula.report.plots import figure_png

        return figure_png(image), "image/png"
    raise ParameterError("figures", f"cannot embed a {type(image).__name__} as a picture")


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def _figure_html(f: FigureItem) -> str:
    data, mime = picture_data(f.image)
    uri = data_uri(data, mime)
    if mime.startswith("video/"):
        media = f'<video controls loop muted playsinline src="{uri}" title="{e(f.title)}"></video>'
    else:
        media = f'<img src="{uri}" alt="{e(f.title)}">'
    cap = f"<b>{e(f.title)}</b>" + (f" — {e(f.caption)}" if f.caption else "")
    return f"<figure>{media}<figcaption>{cap}</figcaption></figure>"


# --------------------------------------------------------------------------------------------- tables
def _table(header: Iterable[str], rows: Iterable[Iterable[str]], cls: str = "data", caption: str | None = None) -> str:
    """An HTML table from already-formatted (unescaped) cell strings."""
    head = "".join(f"<th>{e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows)
    cap = f"<caption>{e(caption)}</caption>" if caption else ""
    return f'<div class="scroll"><table class="{cls}">{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _is_mean_sd(v: Any) -> bool:
    return isinstance(v, Mapping) and "mean" in v and set(v) <= {"mean", "sd", "n"}


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Scalars (and short lists) of a mapping, nested mappings flattened one level as ``outer.inner``;
    a ``{"mean", "sd"}`` mapping is kept as one value."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if _is_mean_sd(v):
            out[key] = v
        elif isinstance(v, Mapping):
            if not prefix:
                out.update(_flatten(v, key + "."))
        elif isinstance(v, str | int | float | bool | np.generic) or v is None:
            out[key] = v
        elif isinstance(v, list | tuple) and len(v) <= 4 and all(isinstance(x, int | float) for x in v):
            out[key] = list(v)
    return out


def _union_keys(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    keys: list[str] = []
    for r in rows:
        for k in r:
            if k not in keys:
                keys.append(k)
    return keys


def study_table_html(t: StudyTable) -> str:
    """A Table-4/5-style table: mean ± SD of reference and method, paired-test p (†), Pearson R and its p (‡)."""
    n = t.sample_size
    agreement = any(r.bias_abs is not None or r.loa_low is not None or r.icc_2_1 is not None for r in t.rows)
    header = [f"n = {n}" if n is not None else "parameter", t.reference_name, t.method_name, "p-value †",
              "R ‡", "p-value ‡"]
    if agreement:
        header += ["bias (method − ref.)", "95 % limits of agreement", "ICC(2,1)"]
    rows = []
    d = t.decimals
    for r in t.rows:
        cells = [r.parameter, format_mean_sd(r.ref_mean, r.ref_sd, d), format_mean_sd(r.method_mean, r.method_sd, d),
                 format_p(r.t_p), format_fixed(r.r, 3), format_p(r.r_p)]
        if agreement:
            bias = format_fixed(r.bias_abs, d)
            if r.bias_abs is not None:
                bias = f"{r.bias_abs:+.{d}f}" + (f" ({r.bias_percent:+.1f} %)" if r.bias_percent is not None else "")
            loa = (f"{r.loa_low:+.{d}f} … {r.loa_high:+.{d}f}" if r.loa_low is not None and r.loa_high is not None
                   else "–")
            cells += [bias, loa, format_fixed(r.icc_2_1, 3)]
        rows.append(cells)
    caption = t.title or f"Trabecular bone structure parameters and correlation coefficient (R) of {t.reference_name} and {t.method_name}"
    notes = f"† {_fill_note(t.test_note, t)} ‡ {_fill_note(t.corr_note, t)}"
    return _table(header, rows, cls="data study", caption=caption) + f'<p class="footnote">{e(notes)}</p>'


def _fill_note(note: str, t: StudyTable) -> str:
    """A table's footnote with ``{method}`` and ``{reference}`` filled in: plain replacement, not ``str.format``,
    so a note from a study file cannot ask for a format width, an attribute or a missing field."""
    return str(note).replace("{method}", str(t.method_name)).replace("{reference}", str(t.reference_name))


# ------------------------------------------------------------------------------------------- sections
def _sec(sid: str, body: str, title: str | None = None) -> tuple[str, str, str]:
    return sid, title or _SECTION_TITLES[sid], body


def _sections(data: ReportData, viewer: Callable[[], str] | None) -> list[tuple[str, str, str]]:
    out = []
    if data.checks:
        items = "".join(f'<li><span class="{"ok" if ok else "fail"}">{"✓" if ok else "✗"}</span> {e(str(k))}</li>'
                        for k, ok in data.checks.items())
        out.append(_sec("checks", f'<ul class="checks">{items}</ul>'))
    if data.inputs:
        keys = _union_keys(data.inputs)
        rows = [[format_cell(r.get(k, "")) for k in keys] for r in data.inputs]
        out.append(_sec("inputs", _table(keys, rows)))
    if data.scanners:
        settings = _union_keys(_flatten(v) for v in data.scanners.values())
        flat = {p: _flatten(v) for p, v in data.scanners.items()}
        rows = [[s, *[format_cell(flat[p].get(s, "–")) for p in data.scanners]] for s in settings]
        out.append(_sec("scanners", _table(["setting", *data.scanners], rows)))
    cols, iq_rows = normalise_image_quality(data.image_quality)
    if iq_rows:
        rows = [[format_cell(r.get(c, "–")) for c in cols] for r in iq_rows]
        note = f'<p class="footnote">{e(data.image_quality_note)}</p>' if data.image_quality_note else ""
        out.append(_sec("image-quality", _table(cols, rows) + note))
    if data.morphometry:
        tables = [t if isinstance(t, StudyTable) else StudyTable.from_frame(t) for t in data.morphometry]
        out.append(_sec("morphometry", "".join(study_table_html(t) for t in tables)))
    if data.measurements:
        flat = {k: _flatten(v) if isinstance(v, Mapping) else {"value": v} for k, v in data.measurements.items()}
        keys = _union_keys(flat.values())
        rows = [[label, *[format_cell(f.get(k, "–")) for k in keys]] for label, f in flat.items()]
        note = f'<p class="footnote">{e(data.measurements_note)}</p>' if data.measurements_note else ""
        out.append(_sec("measurements", _table(["scan", *keys], rows) + note))
    plot_figs = _plot_figures(data)
    groups: dict[str, list[FigureItem]] = {g: [] for g in FIGURE_GROUPS}
    groups["plots"].extend(plot_figs)
    for f in data.figures:
        groups[f.group].append(f)
    for g in FIGURE_GROUPS:
        if groups[g]:
            cls = "figs wide" if g in ("mpr",) else "figs"
            out.append(_sec(_GROUP_SECTION[g], f'<div class="{cls}">' + "".join(_figure_html(f) for f in groups[g]) + "</div>"))
    if viewer is not None:
        out.append(_sec("viewer", viewer()))
    if data.results:
        parts = []
        for stage, res in data.results.items():
            flat = _flatten(res) if isinstance(res, Mapping) else {"value": res}
            if flat:
                parts.append(_table(["key", "value"], [[k, format_cell(v)] for k, v in list(flat.items())[:40]],
                                    caption=str(stage)))
        if parts:
            out.append(_sec("results", "".join(parts)))
    if data.timings:
        rows = [[k, f"{float(v):.2f}"] for k, v in data.timings.items()]
        out.append(_sec("timings", _table(["step", "seconds"], rows)))
    for k, (title, body) in enumerate(data.html_sections):
        out.append((f"extra-{k}", str(title), body))
    if data.notes:
        out.append(_sec("notes", "<ul>" + "".join(f"<li>{e(str(n))}</li>" for n in data.notes) + "</ul>"))
    return out


def _plot_figures(data: ReportData) -> list[FigureItem]:
    figs = []
    if data.mtf:
        names = ", ".join(c.name for c in data.mtf)
        figs.append(FigureItem("MTF", figure_png(plot_mtf(data.mtf)), f"modulation transfer function: {names}", "plots"))
    for p in data.paired:
        figs.append(FigureItem(f"{p.parameter}: {p.method_name} vs {p.reference_name}", figure_png(plot_scatter(p)),
                               "scatter with the line of identity" + (f"; Pearson R = {p.r:.3f}" if p.r is not None else ""),
                               "plots"))
        figs.append(FigureItem(f"{p.parameter}: Bland–Altman", figure_png(plot_bland_altman(p)),
                               "difference against mean of each pair" + ("; bias and 95 % limits of agreement"
                                                                         if p.bias is not None else ""), "plots"))
    return figs


# ---------------------------------------------------------------------------------------------- build
def render_report(data: ReportData) -> str:
    """The report's HTML text (see :func:`build_report`)."""
    if not isinstance(data, ReportData):
        raise ParameterError("sections", f"expected a ReportData, got {type(data).__name__}")
    viewer = None
    head_assets = ""
    if data.volumes:
        from trabecula.render.viewer import REPORT_MAX_VOXELS, asset_tags, embedded_fragment, start_script

        head_assets = asset_tags(inline=True)  # raises InputError first if NiiVue is not installed
        names = [n for n, _ in data.volumes]
        vols = [v for _, v in data.volumes]
        budget = int(data.viewer_max_voxels or REPORT_MAX_VOXELS)
        fragment, _shown = embedded_fragment(vols, names, root_id="report-viewer", max_voxels=budget, height_px=420,
                                             layout="multiplanar")

        def viewer() -> str:
            return fragment + start_script("report-viewer")

    sections = _sections(data, viewer)
    toc = "".join(f'<a href="#{sid}">{e(title)}</a>' for sid, title, _ in sections)
    body = "".join(f'<section id="{sid}"><h2>{e(title)}</h2>{content}</section>' for sid, title, content in sections)
    meta = {"generated": _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
            "trabecula": __version__, **{str(k): v for k, v in data.meta.items()}}
    meta_html = "".join(f"<dt>{e(k)}</dt><dd>{e(format_cell(v))}</dd>" for k, v in meta.items())
    sub = f'<p class="subtitle">{e(data.subtitle)}</p>' if data.subtitle else ""
    empty = "" if sections else '<p class="note">No sections have data yet.</p>'
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(data.title)}</title><link rel="icon" href="data:,">
<style>{STYLE_CSS.read_text(encoding="utf-8")}</style>
{head_assets}
</head><body><main>
<header class="report-head"><h1>{e(data.title)}</h1>{sub}<dl class="meta">{meta_html}</dl></header>
<nav class="toc">{toc}</nav>
{body}{empty}
<footer>Written by trabecula {e(__version__)}. Self-contained: every picture and the viewer's data are embedded in this
file{"; the viewer runs NiiVue (BSD-2-Clause)" if data.volumes else ""}.</footer>
</main></body></html>
"""


def build_report(sections: ReportData, path: str | os.PathLike, *, force: bool = False) -> Path:
    """Write ``sections`` as one self-contained HTML file at ``path``; returns the path.

    Sections appear only when they hold data (see :class:`~trabecula.report.data.ReportData`). Images are
    embedded as ``data:`` URIs, the CSS inline, and the embedded viewer (when ``sections.volumes`` is not
    empty) carries NiiVue and its volumes inline, so the file works from ``file://`` without a server.
    The write is atomic and refuses to overwrite an existing file unless ``force``.
    """
    p = check_writable(path, force)
    text = render_report(sections)
    with atomic_output(p, force=force) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    return p
