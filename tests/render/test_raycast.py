"""The ray marcher: determinism, background, cut faces, shading/AO/shadows, camera sides, proportions, scale bar."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import data_path
from trabecula import Volume
from trabecula.errors import ParameterError
from trabecula.render import (
    BACKGROUND,
    Camera,
    ClipBox,
    ClipPlane,
    Renderer,
    bone_transfer_function,
    camera_preset,
    render_volume,
)
from trabecula.render.annotate import scale_bar_geometry

BG = np.array(BACKGROUND, float)


def _marker_volume() -> Volume:
    """Air with a bone block near the patient's left (+x), anterior (-y), superior (+z) corner."""
    a = np.full((32, 32, 32), -1000, np.int16)
    a[22:28, 4:10, 22:28] = 1500
    return Volume(a, 0.2, (0.0, 0.0, 0.0), "HU")


def _bright(img: np.ndarray) -> np.ndarray:
    return np.abs(img[..., :3].astype(float) - BG).sum(-1) > 30


def test_render_is_deterministic():
    rng = np.random.default_rng(0)
    a = np.where(rng.random((24, 24, 24)) > 0.7, 1200, 0).astype(np.int16)
    vol = Volume(a, 0.1, units="HU")
    one = render_volume(vol, camera="oblique", size=64)
    two = Renderer(vol).render("oblique", 64)
    assert one.shape == (64, 64, 3) and one.dtype == np.uint8
    assert np.array_equal(one, two)
    assert _bright(one).mean() > 0.1  # something was drawn


def test_empty_volume_renders_the_background():
    vol = Volume(np.full((16, 16, 16), -1000, np.int16), 0.5, units="HU")
    img = render_volume(vol, size=(40, 60), scale_bar=False)
    assert img.shape == (40, 60, 3)
    assert np.all(img == np.array(BACKGROUND, np.uint8))
    rgba = render_volume(vol, size=20, background=None, scale_bar=False)
    assert rgba.shape == (20, 20, 4) and np.all(rgba[..., 3] == 0)


def test_cut_face_shows_the_windowed_values_on_the_plane():
    # values rise linearly along x (500 → 1500 HU); cut away the upper half and look straight down
    nz, ny, nx = 20, 30, 40
    x = np.linspace(500, 1500, nx)
    a = np.broadcast_to(x, (nz, ny, nx)).astype(np.float32)
    vol = Volume(np.ascontiguousarray(a), 0.1, (0.0, 0.0, 0.0), "HU")
    zc = float(vol.center_mm[0])
    r = Renderer(vol, clip=ClipPlane((1, 0, 0), zc), ambient_occlusion=False, shadows=False)
    cam = camera_preset("superior")
    img = r.render(cam, (60, 80), scale_bar=False)
    geo = r.view(cam, (60, 80))
    level, width = r.tf.cut_window
    checked = 0
    for row, col in [(30, 20), (30, 40), (30, 60), (15, 40), (45, 25)]:
        world = geo.corner + col * geo.pixel_mm * geo.right - row * geo.pixel_mm * geo.up
        fx = (world[2] - vol.origin[2]) / vol.spacing[2]
        if not 0 <= fx <= nx - 1:
            continue
        value = np.interp(fx, np.arange(nx), x)
        grey = np.clip((value - (level - width / 2)) / width, 0, 1) * 255
        px = img[row, col].astype(float)
        assert np.ptp(px) <= 1, "cut face is grey"
        assert px.mean() == pytest.approx(grey, abs=2.0)
        checked += 1
    assert checked >= 4
    # superior view: patient's left (+x, the bright end) is on the image left
    assert img[30, 22].mean() > img[30, 58].mean() + 50


def test_cut_face_is_transparent_below_cut_min():
    a = np.full((20, 20, 20), 50, np.int16)  # soft-tissue-like everywhere, hidden by the bone TF
    a[:, :, :5] = 1500
    vol = Volume(a, 0.1, units="HU")
    r = Renderer(vol, clip=ClipPlane((1, 0, 0), float(vol.center_mm[0])), ambient_occlusion=False, shadows=False)
    img = r.render("superior", 40, scale_bar=False)
    geo = r.view("superior", 40)
    grey_face = (np.ptp(img.astype(int), axis=-1) <= 1) & (img.mean(-1) > 100)
    rows, cols = np.nonzero(grey_face)
    assert rows.size > 20
    # the 1500 HU strip (x < 4.5 voxels, the patient's right) is on the image right seen from above; the
    # 50 HU rest of the cut face is transparent, with nothing behind it: background
    _, c_edge = geo.project(vol.index_to_world((10, 10, 4.5)))
    assert cols.min() >= c_edge - 1
    left = img[rows.min():rows.max() + 1, : int(c_edge) - 2]
    assert left.size and np.all(left == np.array(BACKGROUND, np.uint8))


def _pit_volume() -> Volume:
    """A bone slab whose top face has a narrow, deep square pit in the middle."""
    a = np.full((40, 48, 48), -1000, np.int16)
    a[:24] = 1500
    a[10:24, 21:27, 21:27] = -1000
    return Volume(a, 0.1, units="HU")


@pytest.mark.parametrize("ao, shadows", [(True, False), (False, True)])
def test_ambient_occlusion_and_shadows_darken_a_pit(ao, shadows):
    vol = _pit_volume()
    cam = Camera(azimuth_deg=180.0, elevation_deg=90.0, zoom=1.6)
    plain = Renderer(vol, ambient_occlusion=False, shadows=False).render(cam, 96, scale_bar=False).astype(float)
    lit = Renderer(vol, ambient_occlusion=ao, shadows=shadows).render(cam, 96, scale_bar=False).astype(float)
    geo = Renderer(vol, ambient_occlusion=False, shadows=False).view(cam, 96)
    r_pit, c_pit = (int(round(v)) for v in geo.project(vol.index_to_world((10, 23.5, 23.5))))
    r_top, c_top = (int(round(v)) for v in geo.project(vol.index_to_world((23, 6, 6))))
    pit = lambda im: im[r_pit - 1:r_pit + 2, c_pit - 1:c_pit + 2].mean()  # noqa: E731
    top = lambda im: im[r_top - 1:r_top + 2, c_top - 1:c_top + 2].mean()  # noqa: E731
    # without AO and shadows the pit floor faces the same way as the top: same brightness
    assert pit(plain) == pytest.approx(top(plain), rel=0.06)
    assert pit(lit) < 0.8 * top(lit)


@pytest.mark.parametrize("preset, quadrant", [
    ("anterior", ("upper", "right")),   # facing the patient: their left is on our right
    ("posterior", ("upper", "left")),
    ("lateral", ("upper", "left")),     # from the patient's left: anterior on the image left
    ("superior", ("upper", "left")),    # from above, anterior up: patient's left on the image left
])
def test_camera_presets_look_from_the_named_side(preset, quadrant):
    vol = _marker_volume()
    img = render_volume(vol, camera=preset, size=64, ambient_occlusion=False, shadows=False, scale_bar=False)
    rows, cols = np.nonzero(_bright(img))
    assert rows.size > 10
    r, c = rows.mean(), cols.mean()
    assert (r < 32) == (quadrant[0] == "upper")
    assert (c > 32) == (quadrant[1] == "right")
    # and the renderer's own projection agrees with where the marker was drawn
    geo = Renderer(vol, ambient_occlusion=False, shadows=False).view(preset, 64)
    pr, pc = geo.project(vol.index_to_world((24.5, 6.5, 24.5)))
    assert abs(pr - r) < 4 and abs(pc - c) < 4


def test_anisotropic_spacing_keeps_true_proportions():
    # a 3 mm cube stored on 0.5 mm slices and 0.1 mm pixels must look square from the front
    a = np.full((16, 60, 60), -1000, np.int16)
    a[5:11, 15:45, 15:45] = 1500
    vol = Volume(a, (0.5, 0.1, 0.1), units="HU")
    r = Renderer(vol, ambient_occlusion=False, shadows=False)
    img = r.render("anterior", 120, scale_bar=False)
    rows, cols = np.nonzero(_bright(img))
    height, width = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
    assert height == pytest.approx(width, abs=2)
    assert width == pytest.approx(3.0 / r.view("anterior", 120).pixel_mm, abs=2)


def test_scale_bar_length_matches_millimetres():
    vol = Volume(np.full((10, 10, 10), -1000, np.int16), 1.0, units="HU")
    r = Renderer(vol, ambient_occlusion=False, shadows=False)
    img = r.render("anterior", (200, 300))
    geo = r.view("anterior", (200, 300))
    mm, px = scale_bar_geometry(geo.pixel_mm, 300)
    assert mm == pytest.approx(5.0)  # 300 px × 0.0866 mm = 26 mm wide; a fifth of it → 5 mm
    white = np.all(img > 240, axis=-1)
    runs = [int(row.sum()) for row in white[150:]]  # the bar is in the bottom rows
    assert max(runs) == px
    assert px * geo.pixel_mm == pytest.approx(mm, rel=0.02)


def test_color_by_map_colours_the_surface():
    a = np.full((30, 30, 30), -1000, np.int16)
    a[5:25, 5:25, 5:25] = 1500
    vol = Volume(a, 0.1, units="HU")
    m = np.zeros(a.shape, np.float32)
    m[5:25, 5:25, 5:15] = 0.1   # patient's right half thin
    m[5:25, 5:25, 15:25] = 0.4  # patient's left half thick
    thick = Volume(m, 0.1, units="mm")
    r = Renderer(vol, color_by=thick, colormap="turbo", ambient_occlusion=False, shadows=False)
    img = r.render("anterior", 90, scale_bar=False).astype(float)
    assert r.color_range == pytest.approx((0.1, 0.4))
    geo = r.view("anterior", 90)
    rr, c_right = geo.project(vol.index_to_world((15, 5, 9)))   # patient's right → image left
    _, c_left = geo.project(vol.index_to_world((15, 5, 21)))
    rr = int(round(rr))
    thin_px = img[rr, int(round(c_right))]
    thick_px = img[rr, int(round(c_left))]
    assert thin_px[2] > thin_px[0]      # turbo: low values blue
    assert thick_px[0] > thick_px[2]    # high values red


def test_real_bone_section_shows_the_slice_bone_fraction():
    """DIDSR L1 micro-CT region (binary, 0.05 mm): cut in half and seen face-on, the cut face's bone pixels
    (pure grey) cover the same fraction as bone covers that slice."""
    from trabecula.phantom.specimen import didsr_region

    trab = didsr_region(data_path("didsr_l1_vertebra", "Segmentation-grayscale-1_06219.nrrd"))[100:164, 100:164, 100:164]
    vol = Volume(trab.astype(np.uint8), 0.05, units="binary")
    zc = 32.0  # the plane through the centres of slice 32: the face shows that slice (bilinear)
    r = Renderer(vol, clip=ClipPlane((1, 0, 0), float(vol.index_to_world((zc, 0, 0))[0])))
    cam = camera_preset("superior", zoom=1.7)
    img = r.render(cam, 256, scale_bar=False).astype(int)
    geo = r.view(cam, 256)
    assert geo.pixel_mm < 0.05  # finer than the voxels
    win = img[64:192, 64:192]  # a window well inside the cube's footprint
    face = (np.ptp(win, axis=-1) == 0) & (win.mean(-1) >= 127)
    i0, i1 = (vol.world_to_index(geo.corner + k * geo.pixel_mm * (geo.right - geo.up)) for k in (64, 191))
    ys = sorted((int(round(i0[1])), int(round(i1[1]))))
    xs = sorted((int(round(i0[2])), int(round(i1[2]))))
    expected = trab[32][ys[0]:ys[1] + 1, xs[0]:xs[1] + 1].mean()
    assert 0.1 < expected < 0.5
    assert face.mean() == pytest.approx(expected, abs=0.04)


def test_clip_box_cuts_a_notch_and_crops():
    a = np.full((30, 30, 30), 1500, np.int16)
    vol = Volume(a, 0.1, units="HU")
    lo, hi = vol.index_to_world((15, -1, 15)), vol.index_to_world((30, 15, 30))
    full = render_volume(vol, camera="anterior", size=60, shadows=False, ambient_occlusion=False, scale_bar=False)
    notch = render_volume(vol, camera="anterior", size=60, clip=ClipBox(tuple(lo), tuple(hi)), shadows=False,
                          ambient_occlusion=False, scale_bar=False)
    cropper = Renderer(vol, clip=ClipBox(tuple(lo), tuple(hi), keep="inside"), shadows=False, ambient_occlusion=False)
    crop = cropper.render("anterior", 60, scale_bar=False)
    diff = np.abs(full.astype(int) - notch.astype(int)).sum(-1) > 10
    rows, cols = np.nonzero(diff)
    assert rows.mean() < 30 and cols.mean() > 30  # the upper (superior) patient-left quarter changed
    assert np.ptp(notch[rows[len(rows) // 2], cols[len(cols) // 2]]) <= 1  # showing a grey cut face
    # the crop keeps only the box: 1.45 mm (x from voxel 15 to the edge at 29.5) by 1.45 mm (z), framed alone
    rows, cols = np.nonzero(_bright(crop))
    side = 1.45 / cropper.view("anterior", 60).pixel_mm
    assert np.ptp(rows) + 1 == pytest.approx(side, abs=2) and np.ptp(cols) + 1 == pytest.approx(side, abs=2)


def test_bad_parameters_name_themselves():
    vol = Volume(np.zeros((4, 4, 4), np.int16), 1.0, units="HU")
    with pytest.raises(ParameterError, match="tf"):
        Renderer(vol, tf=bone_transfer_function("binary"))
    with pytest.raises(ParameterError, match="size"):
        render_volume(vol, size=(0, 10))
    with pytest.raises(ParameterError, match="camera"):
        render_volume(vol, camera="sideways")
    with pytest.raises(ParameterError, match="clip"):
        Renderer(vol, clip="half")
    with pytest.raises(ParameterError, match="background"):
        render_volume(vol, size=8, background=(300, 0, 0))


def test_lazy_and_float_volumes_render_like_their_int16_original():
    """A zarr-backed (dask) volume is quantised slab by slab; float32 data are quantised over their range."""
    import dask.array as da

    a = np.full((20, 24, 24), -1000, np.int16)
    a[5:15, 6:18, 6:18] = 1200
    a[8:12, 9:15, 9:15] = 300
    vol = Volume(a, 0.1, units="HU")
    ref = render_volume(vol, size=48, scale_bar=False)
    lazy = Volume(da.from_array(a, chunks=(3, 24, 24)), 0.1, units="HU")
    assert np.array_equal(render_volume(lazy, size=48, scale_bar=False), ref)
    as_float = Volume(a.astype(np.float32), 0.1, units="HU")
    diff = np.abs(render_volume(as_float, size=48, scale_bar=False).astype(int) - ref.astype(int))
    assert diff.max() <= 3


def test_smoothing_removes_the_speckle_of_a_noisy_scan():
    rng = np.random.default_rng(5)
    a = (40 + rng.normal(0, 150, (40, 40, 40))).astype(np.float32)  # soft tissue, low-dose noise
    a[14:26, 14:26, 14:26] = 1500
    vol = Volume(a, 0.1, units="HU")
    box = ((14, 14, 14), (26, 26, 26))
    speckle = {}
    for sm in (0.0, 1.0):
        r = Renderer(vol, smooth=sm, ambient_occlusion=False, shadows=False)
        img = r.render("anterior", 80, scale_bar=False)
        geo = r.view("anterior", 80)
        (r0, c0), (r1, c1) = (geo.project(vol.index_to_world(np.asarray(p) - 0.5)) for p in
                              ((box[1][0], 0, box[0][2]), (box[0][0], 0, box[1][2])))
        mask = _bright(img)
        mask[int(r0) - 2:int(r1) + 3, int(c0) - 2:int(c1) + 3] = False  # ignore the block itself
        speckle[sm] = int(mask.sum())
    assert speckle[0.0] > 50
    assert speckle[1.0] < speckle[0.0] / 10
    with pytest.raises(ParameterError, match="smooth"):
        Renderer(vol, smooth=-1)
