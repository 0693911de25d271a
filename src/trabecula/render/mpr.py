"""Multi-planar reformatting (MPR): axial, coronal and sagittal slices through a world point.

Conventions (those of 3D Slicer and radiology workstations):

* view colours: **red = axial**, **yellow = sagittal**, **green = coronal**; each panel is framed in its
  colour and shows the other two planes as lines in their colours (a linked crosshair at the same
  world point in all three views);
* trabecula's frame is LPS (+x patient left, +y posterior, +z superior), arrays (z, y, x). Axial
  views put anterior at the top, coronal and sagittal views superior at the top, sagittal views
  anterior on the left. ``radiological=True`` (the default) shows the patient's right on the image
  left in axial and coronal views, as if facing the patient; ``radiological=False`` (neurological)
  the reverse. Orientation letters (R/L, A/P, S/I) are written at the panel edges;
* panels are drawn in world millimetres (``imshow`` extents), so anisotropic voxels keep their true
  aspect and several volumes on different grids line up on the same world region;
* each view's ``data`` is the plain array slice, transposed/flipped only for display:
  axial = ``a[k, :, :]`` (columns reversed when neurological), coronal = ``a[::-1, j, :]``,
  sagittal = ``a[::-1, :, i]``, with ``(k, j, i)`` the voxel nearest the point.

Window presets (level, width in HU): ``bone`` (500, 2000), ``soft`` (40, 400) and the others of
:data:`trabecula.volume.WINDOW_PRESETS`; for attenuation volumes the preset is converted with
``mu = mu_water (1 + HU/1000)``; binary and label volumes show 0..1; ``auto`` (and presets on
uncalibrated ``grey``/``mm`` volumes) uses the 0.5–99.5th percentiles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trabecula.errors import ParameterError
from trabecula.render.annotate import length_label, nice_length
from trabecula.render.transfer import MU_WATER_PER_MM
from trabecula.volume import WINDOW_PRESETS, Volume

#: 3D Slicer's slice-view colours.
VIEW_COLORS = {"axial": "#F34A33", "sagittal": "#EDD54C", "coronal": "#6EB04B"}
VIEWS = ("axial", "coronal", "sagittal")


@dataclass
class MPRView:
    """One MPR panel: the slice in display orientation and its geometry (world mm).

    ``data`` are the raw values (row 0 at the top of the picture), ``image`` the windowed uint8 grey
    picture; ``axes`` names the world axes along (rows, columns); ``extent_mm`` is matplotlib's
    ``(left, right, bottom, top)`` with ``origin="upper"``, so world coordinates plot directly;
    ``crosshair_mm`` is the point in (column axis, row axis) coordinates; ``pixel_mm`` = (row, column)
    pixel size; ``labels`` the orientation letters at the ``left``/``right``/``top``/``bottom`` edges.
    """

    name: str
    data: np.ndarray
    image: np.ndarray
    axes: tuple[str, str]
    extent_mm: tuple[float, float, float, float]
    pixel_mm: tuple[float, float]
    crosshair_mm: tuple[float, float]
    labels: dict[str, str]
    slice_index: int
    slice_mm: float
    color: str = field(default="")

    def __array__(self, dtype=None, copy=None):
        return self.data if dtype is None else self.data.astype(dtype)


def resolve_window(vol: Volume, window: str | tuple[float, float] = "bone",
                   mu_water: float = MU_WATER_PER_MM) -> tuple[float, float]:
    """(level, width) in the volume's units for a preset name, ``"auto"`` or an explicit (level, width)."""
    if not isinstance(window, str):
        try:
            level, width = (float(v) for v in window)
        except (TypeError, ValueError) as exc:
            raise ParameterError("window", f"expected a preset name or (level, width), got {window!r}") from exc
        if not width > 0:
            raise ParameterError("window", f"width must be positive, got {width}")
        return level, width
    name = window.lower()
    if name != "auto" and name not in WINDOW_PRESETS:
        raise ParameterError("window", f"unknown preset {window!r}; use auto, {', '.join(WINDOW_PRESETS)} or LEVEL,WIDTH")
    if vol.units in ("binary", "label"):
        hi = 1.0 if vol.units == "binary" else float(np.max(vol.numpy()))
        return hi / 2.0, max(hi, 1.0)
    if name != "auto" and vol.units == "HU":
        return WINDOW_PRESETS[name]
    if name != "auto" and vol.units == "attenuation_per_mm":
        level, width = WINDOW_PRESETS[name]
        return mu_water * (1.0 + level / 1000.0), width * mu_water / 1000.0
    a = vol.numpy()
    sample = a.reshape(-1)[:: max(1, a.size // 2_000_000)]
    lo, hi = (float(v) for v in np.nanpercentile(sample, [0.5, 99.5]))
    if not hi > lo:
        hi = lo + 1.0
    return (lo + hi) / 2.0, hi - lo


def _to_uint8(a: np.ndarray, level: float, width: float) -> np.ndarray:
    lo = level - width / 2.0
    return np.clip(np.rint((a.astype(np.float32) - lo) * (255.0 / width)), 0, 255).astype(np.uint8)


def _slice(data: Any, index: tuple) -> np.ndarray:
    s = data[index]
    return np.asarray(s.compute() if hasattr(s, "compute") else s)


def mpr_views(
    vol: Volume,
    point_mm: Sequence[float] | None = None,
    window: str | tuple[float, float] = "bone",
    radiological: bool = True,
) -> dict[str, Any]:
    """Axial, coronal and sagittal slices through ``point_mm`` (world, z/y/x; default the volume's centre).

    Returns
    -------
    dict
        ``"axial"``, ``"coronal"``, ``"sagittal"``: :class:`MPRView` (``np.asarray(view)`` is the slice);
        ``"point_mm"``: the point; ``"index"``: the voxel (k, j, i) nearest to it; ``"window"``:
        (level, width) in the volume's units; ``"radiological"``.

    Raises
    ------
    ParameterError
        If the point lies outside the volume (by more than half a voxel).
    """
    if not isinstance(vol, Volume):
        raise ParameterError("vol", f"expected a Volume, got {type(vol).__name__}")
    p = np.asarray(vol.center_mm if point_mm is None else point_mm, float)
    if p.shape != (3,) or not np.all(np.isfinite(p)):
        raise ParameterError("point", f"expected a world point (z, y, x) in mm, got {point_mm!r}")
    fidx = vol.world_to_index(p)
    shape = np.asarray(vol.shape)
    if np.any(fidx < -0.5) or np.any(fidx > shape - 0.5):
        raise ParameterError("point", f"{tuple(round(float(v), 3) for v in p)} mm lies outside the volume "
                                      f"(world box {tuple(np.round(vol.index_to_world([-0.5] * 3), 3))} .. "
                                      f"{tuple(np.round(vol.index_to_world(shape - 0.5), 3))} mm)")
    k, j, i = (int(min(max(round(float(v)), 0), n - 1)) for v, n in zip(fidx, shape, strict=True))
    level, width = resolve_window(vol, window)
    sz, sy, sx = vol.spacing
    (z0, y0, x0), (z1, y1, x1) = vol.index_to_world([0, 0, 0]), vol.index_to_world(shape - 1)
    ex = (x0 - sx / 2, x1 + sx / 2)
    ey = (y0 - sy / 2, y1 + sy / 2)
    ez = (z0 - sz / 2, z1 + sz / 2)
    lr = ("R", "L") if radiological else ("L", "R")
    pz, py, px = (float(v) for v in p)

    axial = _slice(vol.data, (k, slice(None), slice(None)))
    coronal = _slice(vol.data, (slice(None), j, slice(None)))[::-1]
    sagittal = _slice(vol.data, (slice(None), slice(None), i))[::-1]
    x_ext = ex if radiological else ex[::-1]
    if not radiological:
        axial = axial[:, ::-1]
        coronal = coronal[:, ::-1]
    views = {
        "axial": MPRView("axial", axial, _to_uint8(axial, level, width), ("y", "x"),
                         (x_ext[0], x_ext[1], ey[1], ey[0]), (sy, sx), (px, py),
                         {"left": lr[0], "right": lr[1], "top": "A", "bottom": "P"}, k, float(vol.index_to_world([k, 0, 0])[0])),
        "coronal": MPRView("coronal", coronal, _to_uint8(coronal, level, width), ("z", "x"),
                           (x_ext[0], x_ext[1], ez[0], ez[1]), (sz, sx), (px, pz),
                           {"left": lr[0], "right": lr[1], "top": "S", "bottom": "I"}, j, float(vol.index_to_world([0, j, 0])[1])),
        "sagittal": MPRView("sagittal", sagittal, _to_uint8(sagittal, level, width), ("z", "y"),
                            (ey[0], ey[1], ez[0], ez[1]), (sz, sy), (py, pz),
                            {"left": "A", "right": "P", "top": "S", "bottom": "I"}, i, float(vol.index_to_world([0, 0, i])[2])),
    }
    for name, v in views.items():
        v.color = VIEW_COLORS[name]
    return {**views, "point_mm": tuple(float(v) for v in p), "index": (k, j, i), "window": (level, width),
            "radiological": bool(radiological)}


# --------------------------------------------------------------------------------------------- figure
def _world_box(vol: Volume) -> tuple[np.ndarray, np.ndarray]:
    sp = np.asarray(vol.spacing)
    return vol.index_to_world([0, 0, 0]) - sp / 2, vol.index_to_world(np.asarray(vol.shape) - 1) + sp / 2


def _common_region(vols: Sequence[Volume]) -> tuple[np.ndarray, np.ndarray]:
    los, his = zip(*(_world_box(v) for v in vols), strict=True)
    lo, hi = np.max(los, axis=0), np.min(his, axis=0)
    if np.any(hi <= lo):  # no overlap: show the union instead
        lo, hi = np.min(los, axis=0), np.max(his, axis=0)
    return lo, hi


_AX = {"z": 0, "y": 1, "x": 2}


def _limits(view: MPRView, lo: np.ndarray, hi: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
    """x and y limits of a panel for the world box [lo, hi], keeping the view's orientation."""
    row_ax, col_ax = (_AX[a] for a in view.axes)
    left, right, bottom, top = view.extent_mm
    xl = (lo[col_ax], hi[col_ax]) if right > left else (hi[col_ax], lo[col_ax])
    yl = (lo[row_ax], hi[row_ax]) if top > bottom else (hi[row_ax], lo[row_ax])
    return xl, yl


def _outlined(ax, x, y, text, **kw):
    import matplotlib.patheffects as pe

    t = ax.text(x, y, text, color="white", fontsize=kw.pop("fontsize", 9), fontweight="bold",
                transform=ax.transAxes, **kw)
    t.set_path_effects([pe.withStroke(linewidth=2.0, foreground="black")])
    return t


def _draw_panel(ax, view: MPRView, window: tuple[float, float], lo, hi, *, crosshair: bool,
                scale_bar: bool, labels: bool, interpolation: str = "antialiased") -> None:
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    level, width = window
    ax.imshow(view.data, cmap="gray", vmin=level - width / 2, vmax=level + width / 2, extent=view.extent_mm,
              origin="upper", interpolation=interpolation, aspect="equal")
    xl, yl = _limits(view, lo, hi)
    ax.set_xlim(*xl)
    ax.set_ylim(*yl)
    ax.set_facecolor("black")
    ax.set_xticks([])
    ax.set_yticks([])
    for s in ax.spines.values():
        s.set_edgecolor(view.color)
        s.set_linewidth(2.5)
    if crosshair:
        cx, cy = view.crosshair_mm
        vertical = {"axial": "sagittal", "coronal": "sagittal", "sagittal": "coronal"}[view.name]
        horizontal = {"axial": "coronal", "coronal": "axial", "sagittal": "axial"}[view.name]
        ax.axvline(cx, color=VIEW_COLORS[vertical], lw=0.8, alpha=0.85)
        ax.axhline(cy, color=VIEW_COLORS[horizontal], lw=0.8, alpha=0.85)
    if labels:
        L = view.labels
        _outlined(ax, 0.02, 0.5, L["left"], ha="left", va="center")
        _outlined(ax, 0.98, 0.5, L["right"], ha="right", va="center")
        _outlined(ax, 0.5, 0.98, L["top"], ha="center", va="top")
        _outlined(ax, 0.5, 0.02, L["bottom"], ha="center", va="bottom")
    if scale_bar:
        span = abs(xl[1] - xl[0])
        mm = nice_length(0.25 * span)
        bar = AnchoredSizeBar(ax.transData, mm, length_label(mm), loc="lower left", pad=0.4, borderpad=0.3,
                              color="white", frameon=False, size_vertical=0, label_top=True,
                              fontproperties={"size": 7})
        bar.size_bar.get_children()[0].set_linewidth(2.0)
        ax.add_artist(bar)


def mpr_figure(
    vols: Volume | Sequence[Volume],
    point_mm: Sequence[float] | None = None,
    window: str | tuple[float, float] = "bone",
    titles: Sequence[str] | None = None,
    inset: tuple[Sequence[float], float] | None = None,
    radiological: bool = True,
    views: Sequence[str] = VIEWS,
    region_mm: tuple[Sequence[float], Sequence[float]] | None = None,
    crosshair: bool = True,
    scale_bar: bool = True,
    panel_inches: float = 3.0,
    dpi: int = 150,
):
    """MPR panels of one or several volumes through the same world point, as a matplotlib Figure.

    One volume: one row (axial | coronal | sagittal). Several volumes (e.g. clinical CT | enhanced |
    micro-CT): one column per volume, one row per view, every panel showing the same world region (the
    intersection of the volumes' boxes, or ``region_mm = (lower, upper)`` z/y/x mm) so the columns line up
    whatever each volume's grid.

    Parameters
    ----------
    vols : Volume or sequence of Volume
    point_mm : (z, y, x) mm, optional
        Where the planes cross; default the ``inset`` centre, else the centre of the common region.
    window : preset name, ``"auto"`` or (level, width)
        Applied to every volume in its own units (see :func:`resolve_window`).
    titles : column titles (default the volumes' source/scanner names)
    inset : (center_mm (z, y, x), size_mm), optional
        A square region of ``size_mm`` around the centre's in-plane coordinates, shown magnified (nearest
        neighbour: the voxels as they are) in the upper right of every panel and outlined in the panel.
    radiological : bool
        Patient's right on the image left (axial, coronal); ``False`` is the neurological display.
    views : which of ``axial``, ``coronal``, ``sagittal`` to show, in order.

    Returns
    -------
    matplotlib.figure.Figure (Agg canvas; save with :func:`save_png` or ``fig.savefig``).

    Raises
    ------
    ParameterError
        If the point lies outside every volume (a volume that does not contain it gets a note instead of
        slices).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    vol_list = [vols] if isinstance(vols, Volume) else list(vols)
    if not vol_list or not all(isinstance(v, Volume) for v in vol_list):
        raise ParameterError("vols", "expected one Volume or a list of Volumes")
    views = tuple(views)
    if not views or any(v not in VIEWS for v in views):
        raise ParameterError("views", f"choose from {', '.join(VIEWS)}, got {views}")
    if titles is not None and len(titles) != len(vol_list):
        raise ParameterError("titles", f"{len(titles)} titles for {len(vol_list)} volumes")
    if region_mm is not None:
        lo, hi = (np.asarray(r, float) for r in region_mm)
        if lo.shape != (3,) or hi.shape != (3,) or np.any(hi <= lo):
            raise ParameterError("region", f"expected (lower, upper) world corners (z, y, x) mm, got {region_mm!r}")
    else:
        lo, hi = _common_region(vol_list)
    if inset is not None:
        try:
            c_in = np.asarray(inset[0], float).reshape(3)
            s_in = float(inset[1])
        except (TypeError, ValueError, IndexError) as exc:
            raise ParameterError("inset", f"expected ((z, y, x) centre mm, size mm), got {inset!r}") from exc
        if not s_in > 0:
            raise ParameterError("inset", f"size must be positive, got {s_in}")
    p = np.asarray(point_mm, float) if point_mm is not None else (c_in if inset is not None else (lo + hi) / 2)
    n = len(vol_list)
    rows, cols = (1, len(views)) if n == 1 else (len(views), n)
    # panel shapes follow the region's aspect (height / width) in each view, within 1:3 .. 3:1
    span = hi - lo
    shape_of = {"axial": (span[1], span[2]), "coronal": (span[0], span[2]), "sagittal": (span[0], span[1])}
    aspect = [float(np.clip(shape_of[v][0] / shape_of[v][1], 1 / 3, 3.0)) for v in views]
    title_in = 0.45 if n > 1 else 0.3
    if n == 1:
        widths, heights = [panel_inches / a for a in aspect], [panel_inches]
    else:
        widths, heights = [panel_inches] * n, [panel_inches * a for a in aspect]
    gap = 0.06
    fig_w = sum(widths) + gap * (len(widths) + 1)
    fig_h = sum(heights) + gap * (len(heights) + 1) + title_in
    fig = Figure(figsize=(fig_w, fig_h), dpi=dpi, facecolor="black")
    FigureCanvasAgg(fig)
    fig.subplots_adjust(left=gap / fig_w, right=1 - gap / fig_w, bottom=gap / fig_h, top=1 - (title_in + gap) / fig_h,
                        wspace=gap * len(widths) / sum(widths), hspace=gap * len(heights) / sum(heights))
    all_views = []
    errors = []
    for vol in vol_list:
        try:
            all_views.append(mpr_views(vol, p, window, radiological))
        except ParameterError as exc:
            if exc.name != "point":
                raise
            all_views.append(None)
            errors.append(exc)
    if len(errors) == len(vol_list):
        raise errors[0]
    axes = fig.subplots(rows, cols, squeeze=False, gridspec_kw={"width_ratios": widths, "height_ratios": heights})
    for c, vol in enumerate(vol_list):
        title = titles[c] if titles is not None else _default_title(vol, c)
        mv = all_views[c]
        for r, name in enumerate(views):
            ax = axes[0, r] if n == 1 else axes[r, c]
            if mv is None:
                ax.set_facecolor("black")
                ax.set_xticks([])
                ax.set_yticks([])
                ax.text(0.5, 0.5, "point outside\nthis volume", color="white", ha="center", va="center",
                        transform=ax.transAxes)
                continue
            view = mv[name]
            _draw_panel(ax, view, mv["window"], lo, hi, crosshair=crosshair, scale_bar=scale_bar, labels=True)
            axis = {"axial": "z", "coronal": "y", "sagittal": "x"}[name]
            _outlined(ax, 0.02, 0.13 if scale_bar else 0.02, f"{name} {axis} = {view.slice_mm:.2f} mm",
                      ha="left", va="bottom", fontsize=6)
            if inset is not None:
                row_ax, col_ax = (_AX[a] for a in view.axes)
                ilo, ihi = c_in - s_in / 2, c_in + s_in / 2
                box_lo = np.array(lo, float)
                box_hi = np.array(hi, float)
                box_lo[[row_ax, col_ax]] = ilo[[row_ax, col_ax]]
                box_hi[[row_ax, col_ax]] = ihi[[row_ax, col_ax]]
                ax.add_patch(Rectangle((ilo[col_ax], ilo[row_ax]), s_in, s_in, fill=False, edgecolor="cyan", lw=1.0))
                iax = ax.inset_axes([0.58, 0.58, 0.40, 0.40])
                _draw_panel(iax, view, mv["window"], box_lo, box_hi, crosshair=False, scale_bar=False,
                            labels=False, interpolation="nearest")
                for s in iax.spines.values():
                    s.set_edgecolor("cyan")
                    s.set_linewidth(1.2)
        top_ax = axes[0, 0] if n == 1 else axes[0, c]
        if n > 1 or c == 0:
            lvl, wid = resolve_window(vol, window)
            top_ax.set_title(f"{title}\n(L {lvl:.4g}  W {wid:.4g} {vol.units})" if n > 1 else
                             f"{title}   (L {lvl:.4g}  W {wid:.4g} {vol.units})", color="white", fontsize=8,
                             pad=3, loc="center" if n > 1 else "left")
    return fig


def _default_title(vol: Volume, k: int) -> str:
    prov = vol.provenance
    name = prov.scanner or (str(prov.source).rsplit("/", 1)[-1] if prov.source else None)
    sp = ", ".join(f"{s:g}" for s in vol.spacing)
    return f"{name or f'volume {k + 1}'} ({sp} mm)"


def figure_scale(fig, ax) -> float:
    """Screen pixels per world mm of a panel (for checks; the figure must have been drawn)."""
    fig.canvas.draw()
    bbox = ax.get_window_extent()
    xl = ax.get_xlim()
    return float(bbox.width / abs(xl[1] - xl[0]))


__all__ = ["MPRView", "mpr_views", "mpr_figure", "resolve_window", "VIEW_COLORS", "figure_scale"]
