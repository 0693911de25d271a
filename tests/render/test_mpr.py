"""MPR: slices equal the array slices, display conventions, windows, scale bar, aspect, side-by-side panels."""

from __future__ import annotations

import numpy as np
import pytest

from trabecula import Volume
from trabecula.errors import ParameterError
from trabecula.render import VIEW_COLORS, mpr_figure, mpr_views, save_png
from trabecula.render.annotate import nice_length
from trabecula.render.mpr import figure_scale, resolve_window


@pytest.fixture
def ramp_volume() -> Volume:
    rng = np.random.default_rng(7)
    a = rng.integers(-1000, 2000, size=(9, 11, 13)).astype(np.int16)
    return Volume(a, (2.0, 0.5, 0.25), (-30.0, 12.0, -4.0), "HU")


def test_slices_through_a_point_equal_the_array_slices(ramp_volume):
    vol = ramp_volume
    a = vol.numpy()
    p = vol.index_to_world((3, 5, 7))
    v = mpr_views(vol, p)
    assert v["index"] == (3, 5, 7)
    np.testing.assert_array_equal(v["axial"].data, a[3])
    np.testing.assert_array_equal(v["coronal"].data, a[::-1, 5, :])
    np.testing.assert_array_equal(v["sagittal"].data, a[::-1, :, 7])
    np.testing.assert_array_equal(np.asarray(v["axial"]), a[3])
    # the nearest voxel is taken for points between voxel centres
    v2 = mpr_views(vol, vol.index_to_world((3.4, 4.6, 7.49)))
    assert v2["index"] == (3, 5, 7)
    # the crosshair sits at the point, in world mm
    assert v["axial"].crosshair_mm == pytest.approx((p[2], p[1]))
    assert v["coronal"].crosshair_mm == pytest.approx((p[2], p[0]))
    assert v["sagittal"].crosshair_mm == pytest.approx((p[1], p[0]))


def test_radiological_and_neurological_display_flip_left_right(ramp_volume):
    vol = ramp_volume
    a = vol.numpy()
    rad = mpr_views(vol, vol.index_to_world((3, 5, 7)), radiological=True)
    neu = mpr_views(vol, vol.index_to_world((3, 5, 7)), radiological=False)
    np.testing.assert_array_equal(neu["axial"].data, a[3, :, ::-1])
    np.testing.assert_array_equal(neu["coronal"].data, a[::-1, 5, ::-1])
    np.testing.assert_array_equal(neu["sagittal"].data, rad["sagittal"].data)
    # LPS: low x is the patient's right → radiological puts it on the image left
    assert (rad["axial"].labels["left"], rad["axial"].labels["right"]) == ("R", "L")
    assert (neu["axial"].labels["left"], neu["axial"].labels["right"]) == ("L", "R")
    assert (rad["axial"].labels["top"], rad["axial"].labels["bottom"]) == ("A", "P")
    assert (rad["coronal"].labels["top"], rad["sagittal"].labels["left"]) == ("S", "A")
    # extents keep world coordinates: the left edge of a radiological axial is the lowest x
    x0 = vol.origin[2] - vol.spacing[2] / 2
    assert rad["axial"].extent_mm[0] == pytest.approx(x0)
    assert neu["axial"].extent_mm[1] == pytest.approx(x0)


def test_window_presets_and_units(ramp_volume):
    assert resolve_window(ramp_volume, "bone") == (500.0, 2000.0)
    assert resolve_window(ramp_volume, "soft") == (40.0, 400.0)
    assert resolve_window(ramp_volume, (100, 50)) == (100.0, 50.0)
    mu = Volume(np.full((3, 3, 3), 0.02, np.float32), 1.0, units="attenuation_per_mm")
    level, width = resolve_window(mu, "bone")
    assert level == pytest.approx(0.0193 * 1.5) and width == pytest.approx(0.0386)
    binary = Volume(np.zeros((3, 3, 3), np.uint8), 1.0, units="binary")
    assert resolve_window(binary, "bone") == (0.5, 1.0)
    with pytest.raises(ParameterError, match="window"):
        resolve_window(ramp_volume, "pastel")
    with pytest.raises(ParameterError, match="window"):
        resolve_window(ramp_volume, (100, 0))
    v = mpr_views(ramp_volume, window="bone")
    img, data = v["axial"].image, v["axial"].data
    assert img.dtype == np.uint8
    np.testing.assert_array_equal(img, np.clip(np.rint((data + 500.0) * 255 / 2000), 0, 255).astype(np.uint8))


def test_point_outside_the_volume_is_an_error(ramp_volume):
    with pytest.raises(ParameterError, match="point"):
        mpr_views(ramp_volume, (0.0, 0.0, 1000.0))


def test_figure_scale_bar_matches_millimetres():
    vol = Volume(np.full((20, 40, 40), -1000, np.int16), 0.5, units="HU")  # 20 mm wide, black in the bone window
    fig = mpr_figure(vol, views=("axial",), crosshair=False, dpi=100)
    ax = fig.axes[0]
    px_per_mm = figure_scale(fig, ax)
    expected_mm = nice_length(0.25 * 20.0)
    img = np.asarray(fig.canvas.buffer_rgba())[..., :3]
    bb = ax.get_window_extent()
    h = img.shape[0]
    # the bar: the longest run of white pixels in the lower fifth of the panel
    y0, y1 = int(h - bb.y1 + 0.8 * bb.height), int(h - bb.y0) - 3
    x0, x1 = int(bb.x0) + 3, int(bb.x1) - 3
    white = np.all(img[y0:y1, x0:x1] > 200, axis=-1)
    run = max(int(row.sum()) for row in white)
    assert run == pytest.approx(expected_mm * px_per_mm, abs=2.5)


def test_anisotropic_voxels_keep_their_aspect():
    # an 8 mm cube stored on 2 mm slices and 0.5 mm pixels looks square in the coronal panel
    a = np.full((10, 40, 40), -1000, np.int16)
    a[3:7, 12:28, 12:28] = 1500
    vol = Volume(a, (2.0, 0.5, 0.5), units="HU")
    fig = mpr_figure(vol, views=("coronal",), crosshair=False, scale_bar=False, dpi=100)
    px_per_mm = figure_scale(fig, fig.axes[0])
    img = np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(int)
    bb = fig.axes[0].get_window_extent()
    h = img.shape[0]
    panel = img[int(h - bb.y1) + 2:int(h - bb.y0) - 2, int(bb.x0) + 2:int(bb.x1) - 2]
    white = np.all(panel > 230, axis=-1)
    # the cube sits in the middle; step aside from the centre lines where the S/I and R/L letters are
    cy, cx = white.shape[0] // 2 + 20, white.shape[1] // 2 + 20
    height, width = int(white[:, cx].sum()), int(white[cy, :].sum())
    assert height == pytest.approx(8.0 * px_per_mm, abs=2)
    assert width == pytest.approx(8.0 * px_per_mm, abs=2)


def test_side_by_side_panels_share_the_region_and_the_inset():
    rng = np.random.default_rng(3)
    fine = Volume(rng.normal(300, 100, (40, 40, 40)).astype(np.float32), 0.1, (0.0, 0.0, 0.0), "HU")
    coarse = fine.resample(0.4)
    center = fine.center_mm
    fig = mpr_figure([coarse, fine], titles=["clinical", "micro-CT"], inset=(center, 1.0))
    panels = fig.axes
    assert len(panels) == 6  # 3 views × 2 volumes
    assert [ax.get_title() for ax in panels[:2]] == ["clinical\n(L 500  W 2000 HU)", "micro-CT\n(L 500  W 2000 HU)"]
    # same world limits for the same view in both columns
    by_row = {}
    for ax in panels:
        by_row.setdefault(round(ax.get_position().y0, 3), []).append(ax)
    for axes in by_row.values():
        assert len(axes) == 2
        assert axes[0].get_xlim() == pytest.approx(axes[1].get_xlim())
        assert axes[0].get_ylim() == pytest.approx(axes[1].get_ylim())
    insets = [child for ax in panels for child in ax.child_axes]
    assert len(insets) == 6
    lims = {tuple(np.round(sorted(ax.get_xlim()), 6)) for ax in insets}
    # each inset spans 1 mm around the centre on its horizontal axis
    for lo, hi in lims:
        assert hi - lo == pytest.approx(1.0)
        assert (lo + hi) / 2 == pytest.approx(float(center[1]), abs=1e-6) or (lo + hi) / 2 == pytest.approx(float(center[2]))
    # crosshair lines carry the other views' colours (axial panel: sagittal yellow + coronal green)
    axial = [ax for ax in panels if any(t.get_text().startswith("axial") for t in ax.texts)][0]
    colours = {line.get_color() for line in axial.lines}
    assert colours == {VIEW_COLORS["sagittal"], VIEW_COLORS["coronal"]}
    assert [t.get_text() for t in fig.axes[0].texts if t.get_text() in "RLAPSI"]


def test_save_png_writes_figures_and_arrays_atomically(tmp_path):
    vol = Volume(np.zeros((6, 6, 6), np.int16), 1.0, units="HU")
    fig = mpr_figure(vol, dpi=50)
    p = save_png(fig, tmp_path / "m.png")
    assert p.stat().st_size > 1000
    from trabecula.errors import OutputExistsError

    with pytest.raises(OutputExistsError):
        save_png(fig, p)
    save_png(np.zeros((5, 7, 3), np.uint8), tmp_path / "a.png")
    from PIL import Image

    assert Image.open(tmp_path / "a.png").size == (7, 5)
    with pytest.raises(ParameterError):
        save_png(np.zeros((5, 7, 3), np.uint8), tmp_path / "a.jpg")
    assert not list(tmp_path.glob(".tmp-*"))
