"""HTML of the browser viewer: a fragment (toolbar + one panel per volume + configuration) that the served
page and the HTML report both use, and the tags that load NiiVue and the viewer's script — as links to
``static/`` for the served page, or inlined for a self-contained file that works from ``file://``.

Everything the page says about a volume is written here in plain HTML (so it reads even without WebGL):
name, units, shape (z, y, x), spacing in mm, and — when the volume was reduced for the browser — the
original shape and spacing, the factors and the method.
"""

from __future__ import annotations

import base64
import html
import json
import os
from collections.abc import Sequence
from pathlib import Path

from trabecula.errors import ParameterError
from trabecula.io import atomic_output
from trabecula.render.viewer.assets import VIEWER_CSS, VIEWER_JS, read_asset, require_assets
from trabecula.render.viewer.prepare import REPORT_MAX_VOXELS, ShownVolume, fit_to_budget, nifti_bytes
from trabecula.volume import WINDOW_PRESETS, Volume

LAYOUTS = ("multiplanar", "axial", "coronal", "sagittal", "render")
#: window presets offered for HU volumes (level, width), the values of :data:`trabecula.volume.WINDOW_PRESETS`
HU_PRESETS = {k: v for k, v in WINDOW_PRESETS.items() if k != "soft-tissue"}


def _x(values: Sequence[float], fmt: str = "{:g}") -> str:
    return " × ".join(fmt.format(v) for v in values)


def _g(v: float) -> str:
    return f"{v:.6g}"


def describe_lines(sv: ShownVolume) -> tuple[str, str | None]:
    """Plain-text lines a panel shows: the geometry as displayed, and the reduction note (or ``None``)."""
    v = sv.volume
    facts = (f"{_x(v.shape)} voxels (z, y, x) · spacing {_x(v.spacing, '{:.4g}')} mm · "
             f"extent {_x(v.extent_mm, '{:.4g}')} mm · units {v.units}")
    note = None
    if sv.reduced:
        note = (f"downsampled for the browser ({sv.method}, factors {_x(sv.factors)}) from "
                f"{_x(sv.original_shape)} voxels at {_x(sv.original_spacing, '{:.4g}')} mm "
                f"to stay within {sv.max_voxels:,} voxels")
    return facts, note


def viewer_fragment(
    shown: Sequence[ShownVolume],
    urls: Sequence[str],
    root_id: str = "tv",
    *,
    radiological: bool = True,
    layout: str = "multiplanar",
    link: bool = True,
    clip: Sequence[float] | None = None,
    height_px: int = 460,
    columns: int | None = None,
) -> str:
    """The viewer's markup and configuration (no script tags for the assets; see :func:`asset_tags`).

    ``urls[i]`` is where the page fetches volume ``i``'s NIfTI bytes (an http path or a ``data:`` URL).
    ``clip`` is NiiVue's clip plane (depth, azimuth°, elevation°) for the 3-D view, ``None`` for no clip.
    """
    if len(shown) != len(urls):
        raise ValueError("one URL per volume")
    if layout not in LAYOUTS:
        raise ParameterError("layout", f"unknown layout {layout!r}; use one of {', '.join(LAYOUTS)}")
    n = len(shown)
    ncol = columns or min(n, 3)
    config = {
        "radiological": bool(radiological), "layout": layout, "link": bool(link),
        "clip": [float(c) for c in clip] if clip is not None else None,
        "presets": {k: [float(a), float(b)] for k, (a, b) in HU_PRESETS.items()},
        "volumes": [dict(sv.describe(), url=u) for sv, u in zip(shown, urls, strict=True)],
    }
    cfg = json.dumps(config).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    e = html.escape
    panels = []
    for i, sv in enumerate(shown):
        facts, note = describe_lines(sv)
        level, width = sv.window
        preset = ""
        if sv.volume.units == "HU":
            opts = "".join(f'<option value="{e(k)}"{" selected" if (a, b) == (level, width) else ""}>{e(k)} '
                           f'(L {a:g}, W {b:g})</option>' for k, (a, b) in HU_PRESETS.items())
            preset = f'<select class="tv-preset" title="window preset (HU)"><option value="">preset…</option>{opts}</select>'
        panels.append(f"""
<div class="tv-panel" data-index="{i}">
  <div class="tv-head">
    <div><span class="tv-name">{e(sv.name)}</span><span class="tv-value" title="value at the cursor"></span></div>
    <div class="tv-facts">{e(facts)}</div>
    {f'<div class="tv-reduced">{e(note)}</div>' if note else ''}
    {''.join(f'<div class="tv-reduced">{e(t)}</div>' for t in sv.notes)}
    <div class="tv-wl">window ({e(sv.volume.units)}): level <input class="tv-level" type="number" step="any" value="{_g(level)}">
      width <input class="tv-width" type="number" step="any" min="0" value="{_g(width)}"> {preset}</div>
  </div>
  <div class="tv-canvas-box" style="height:{int(height_px)}px"><canvas class="tv-canvas"></canvas></div>
</div>""")
    layout_opts = "".join(f'<option value="{k}"{" selected" if k == layout else ""}>{k}</option>' for k in LAYOUTS)
    conv = ("radiological: patient's right on the screen's left" if radiological
            else "neurological: patient's right on the screen's right")
    clip_on = clip is not None
    d0, a0, el0 = (clip if clip is not None else (0.0, 270.0, 0.0))
    return f"""
<div class="tv-root" id="{e(root_id)}">
  <div class="tv-error" hidden></div>
  <div class="tv-notice" hidden></div>
  <div class="tv-toolbar">
    <label>view <select class="tv-layout">{layout_opts}</select></label>
    <label><input class="tv-link" type="checkbox"{' checked' if link else ''}> link cursor and window/level</label>
    <label><input class="tv-radiological" type="checkbox"{' checked' if radiological else ''}> radiological</label>
    <span class="tv-convention">{e(conv)}</span>
    <span><label><input class="tv-clip-on" type="checkbox"{' checked' if clip_on else ''}> clip plane (3-D)</label>
      <label>depth <input class="tv-clip-depth" type="range" min="-1" max="1" step="0.01" value="{d0:g}"></label>
      <label>azimuth <input class="tv-clip-azimuth" type="range" min="0" max="360" step="1" value="{a0:g}"></label>
      <label>elevation <input class="tv-clip-elevation" type="range" min="-90" max="90" step="1" value="{el0:g}"></label></span>
    <span>cursor <span class="tv-cursor">–</span></span>
  </div>
  <div class="tv-grid" style="grid-template-columns: repeat({ncol}, minmax(0, 1fr))">{''.join(panels)}
  </div>
  <div class="tv-help">Left click or drag: move the cursor (linked by world position across volumes). Right drag:
    window/level (horizontal: width, vertical: level). Drag in the 3-D view: rotate. Scroll: change slice.
    Orientation labels: R/L, A/P, S/I.</div>
</div>
<script type="application/json" id="tv-config-{e(root_id)}">{cfg}</script>"""


def _inline_script(text: str) -> str:
    return "<script>" + text.replace("</script", "<\\/script") + "</script>"


def asset_tags(inline: bool, static_prefix: str = "static/") -> str:
    """``<link>``/``<script>`` tags for the viewer's CSS, NiiVue and the viewer script.

    ``inline=True`` embeds their text (for a single self-contained file); otherwise they point under
    ``static_prefix``. Raises :class:`~trabecula.errors.InputError` when NiiVue is not installed.
    """
    niivue = read_asset(require_assets())
    if inline:
        return ("<style>" + read_asset(VIEWER_CSS) + "</style>\n" + _inline_script(niivue) + "\n"
                + _inline_script(read_asset(VIEWER_JS)))
    p = html.escape(static_prefix)
    return (f'<link rel="stylesheet" href="{p}viewer.css">\n<script src="{p}vendor/niivue.umd.js"></script>\n'
            f'<script src="{p}viewer.js"></script>')


def start_script(root_id: str = "tv") -> str:
    """The call that starts the viewer once the page has loaded."""
    return f"<script>window.addEventListener('load', () => trabeculaViewer.start({json.dumps(root_id)}));</script>"


def embedded_fragment(volumes: Sequence[Volume], names: Sequence[str] | None = None, root_id: str = "tv", *,
                      max_voxels: int = REPORT_MAX_VOXELS, progress: bool = False,
                      **fragment_kw) -> tuple[str, list[ShownVolume]]:
    """A viewer fragment whose volumes travel inside the page, as gzip'd NIfTI in ``data:`` URLs.

    Each volume is first reduced to ``max_voxels`` (see :func:`~trabecula.render.viewer.fit_to_budget`).
    Returns the fragment and the shown volumes. Together with ``asset_tags(inline=True)`` and
    :func:`start_script` the page needs no server: it works opened from ``file://``.
    """
    if names is not None and len(names) != len(volumes):
        raise ParameterError("names", f"{len(names)} names for {len(volumes)} volumes")
    shown = [fit_to_budget(v, max_voxels, name=None if names is None else names[i], progress=progress)
             for i, v in enumerate(volumes)]
    urls = ["data:application/gzip;base64," + base64.b64encode(nifti_bytes(sv.volume, compress=True)).decode("ascii")
            for sv in shown]
    return viewer_fragment(shown, urls, root_id, **fragment_kw), shown


def write_standalone(volumes: Volume | Sequence[Volume], path: str | os.PathLike, names: Sequence[str] | None = None,
                     *, title: str = "trabecula view", force: bool = False, max_voxels: int = REPORT_MAX_VOXELS,
                     **fragment_kw) -> Path:
    """Write one self-contained HTML file with the viewer and its volumes (opens from ``file://``)."""
    vols = [volumes] if isinstance(volumes, Volume) else list(volumes)
    fragment, _ = embedded_fragment(vols, names, max_voxels=max_voxels, **fragment_kw)
    root_id = fragment_kw.get("root_id", "tv")
    e = html.escape
    text = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title><link rel="icon" href="data:,">
<style>body {{ margin: 0; background: #0e0f12; }} h1 {{ font: 600 16px system-ui, sans-serif; color: #ddd; margin: 10px; }}</style>
{asset_tags(inline=True)}
</head><body><h1>{e(title)}</h1>
{fragment}
{start_script(root_id)}
</body></html>
"""
    with atomic_output(path, force=force) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    return Path(path)


def viewer_page(shown: Sequence[ShownVolume], urls: Sequence[str], title: str = "trabecula view", *,
                inline: bool = False, **fragment_kw) -> str:
    """A complete HTML page holding the viewer (served by :class:`~trabecula.render.viewer.ViewerServer`)."""
    e = html.escape
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)}</title><link rel="icon" href="data:,">
<style>body {{ margin: 0; background: #0e0f12; }} h1 {{ font: 600 16px system-ui, sans-serif; color: #ddd; margin: 10px; }}</style>
{asset_tags(inline)}
</head><body>
<h1>{e(title)}</h1>
{viewer_fragment(shown, urls, **fragment_kw)}
{start_script(fragment_kw.get("root_id", "tv"))}
</body></html>
"""
