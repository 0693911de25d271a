"""The viewer in a real browser (headless Chromium, WebGL2 in software): it draws the expected slices,
links the cursor and window/level across volumes, clips the 3-D view, and logs no errors."""

import numpy as np
import pytest

from trabecula import Volume
from trabecula.render.viewer import ViewerServer
from trabecula.render.viewer.browser import (
    bright_centroid,
    click_at,
    console_errors,
    screenshot_rgb,
    wait_for,
)

pytestmark = pytest.mark.slow

SHAPE = (40, 50, 60)
SPACING = (0.5, 0.4, 0.3)
ORIGIN = (10.0, -6.0, 4.0)


def rod_centre(z: int) -> tuple[float, float]:
    """(row, column) of the bright rod's axis in axial slice z: it runs diagonally through the volume."""
    return 10 + 0.75 * z, 50 - z


def rod_volume() -> Volume:
    """Air (-1000 HU) with a bone rod (1500 HU, radius 4 voxels) whose axial position changes with z, so each
    axial slice is recognisable from where the rod crosses it."""
    zz, yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    cy, cx = rod_centre(zz)
    a = np.where((yy - cy) ** 2 + (xx - cx) ** 2 <= 16, 1500, -1000).astype(np.int16)
    return Volume(a, SPACING, ORIGIN, units="HU")


def axial_tile(driver, i=0):
    canvas = driver.find_elements("css selector", "canvas.tv-canvas")[i]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", canvas)
    rect = driver.execute_script(f"return trabeculaViewer.tileRect({i}, 'axial');")
    img = screenshot_rgb(driver, canvas)
    assert img.shape[:2] == (canvas.size["height"], canvas.size["width"]), "canvas not fully in view"
    x0, t = int(round(rect["left"])), int(round(rect["top"]))
    w, h = int(round(rect["width"])), int(round(rect["height"]))
    return img[t:t + h, x0:x0 + w]


def test_axial_view_shows_the_slice_at_the_cursor_in_both_conventions(chromium):
    vol = rod_volume()
    with ViewerServer(vol, ["rod"], layout="axial", progress=False) as srv:
        chromium.get(srv.url)
        wait_for(chromium, "window.trabeculaViewer && trabeculaViewer.ready", what="the volume to draw")
        for z, radiological in ((8, True), (32, True), (32, False)):
            chromium.execute_script(f"trabeculaViewer.setRadiological({str(radiological).lower()});")
            point = vol.index_to_world([z, 25, 30])
            chromium.execute_script("trabeculaViewer.setCursorLPS(arguments[0]);", [float(c) for c in point])
            np.testing.assert_allclose(chromium.execute_script("return trabeculaViewer.cursorLPS(0);"), point, atol=1e-3)
            chromium.execute_script("return new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));")
            tile = axial_tile(chromium)
            assert tile.std() > 20, "blank axial view"
            r, c, n = bright_centroid(tile)
            assert n > 50, f"rod not visible in slice {z}"
            # expected place of the rod in this slice, as a fraction of the slice image
            cy, cx = rod_centre(z)
            fy, fx = (cy + 0.5) / SHAPE[1], (cx + 0.5) / SHAPE[2]
            if not radiological:  # neurological: patient's left (+x, LPS) on the screen's left
                fx = 1 - fx
            assert r / tile.shape[0] == pytest.approx(fy, abs=0.03), (z, radiological)
            assert c / tile.shape[1] == pytest.approx(fx, abs=0.03), (z, radiological)
        assert console_errors(chromium) == []


def test_side_by_side_volumes_link_cursor_and_window_and_clip_the_3d_view(chromium):
    rod = rod_volume()
    # the same object on a finer, larger grid (needs downsampling) and a grey-valued copy (other units)
    fine = Volume(np.repeat(np.repeat(rod.numpy(), 2, axis=1), 2, axis=2), (0.5, 0.2, 0.15),
                  rod.index_to_world([0, -0.25, -0.25]), units="HU")
    grey = Volume((rod.numpy()[:, ::2, ::2] > 0).astype(np.float32), (0.5, 0.8, 0.6),
                  rod.index_to_world([0, 0.5, 0.5]), units="grey")
    with ViewerServer([rod, fine, grey], ["rod", "fine", "grey"], max_voxels=150_000, progress=False) as srv:
        chromium.get(srv.url)
        wait_for(chromium, "window.trabeculaViewer && trabeculaViewer.ready", what="three volumes to draw")
        heads = [e.text for e in chromium.find_elements("css selector", ".tv-head")]
        assert "downsampled for the browser" not in heads[0]
        assert "downsampled for the browser" in heads[1] and "40 × 100 × 120 voxels" in heads[1]
        assert "units HU" in heads[0] and "units grey" in heads[2]

        # a click in volume 0's axial view moves every cursor to the same world point
        canvas = chromium.find_elements("css selector", "canvas.tv-canvas")[0]
        rect = chromium.execute_script("return trabeculaViewer.tileRect(0, 'axial');")
        fx, fy = 0.25, 0.6
        click_at(chromium, canvas, rect["left"] + fx * rect["width"], rect["top"] + fy * rect["height"])
        start_x = rod.center_mm[2]
        wait_for(chromium, f"Math.abs(trabeculaViewer.cursorLPS(0)[2] - {start_x}) > 1", what="the click to move the cursor")
        cur = [np.array(chromium.execute_script(f"return trabeculaViewer.cursorLPS({i});")) for i in range(3)]
        x0, y0 = rod.index_to_world([0, -0.5, -0.5])[1:][::-1]  # slice image's left/top edge (x, y), mm
        want_x = x0 + fx * SHAPE[2] * SPACING[2]  # radiological: image left = low x (patient's right)
        want_y = y0 + fy * SHAPE[1] * SPACING[1]
        assert cur[0][2] == pytest.approx(want_x, abs=2 * SPACING[2])
        assert cur[0][1] == pytest.approx(want_y, abs=2 * SPACING[1])
        for c in cur[1:]:
            np.testing.assert_allclose(c, cur[0], atol=0.8)  # within one voxel of the coarsest grid
        readout = chromium.find_element("css selector", ".tv-cursor").text
        assert f"{cur[0][2]:.2f} mm (LPS)" in readout

        # window/level typed into volume 0 reaches volume 1 (same units, HU) but not the grey volume
        grey_before = chromium.execute_script("return trabeculaViewer.window(2);")
        level = chromium.find_elements("css selector", ".tv-level")[0]
        level.clear()
        level.send_keys("300\n")
        wait_for(chromium, "trabeculaViewer.window(1)[0] === 300", what="linked window/level")
        assert chromium.execute_script("return trabeculaViewer.window(0);") == [300, 2000]
        assert chromium.execute_script("return trabeculaViewer.window(2);") == grey_before

        # the clip plane check box cuts the 3-D view
        def render_tile():
            chromium.execute_script("return new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));")
            r = chromium.execute_script("return trabeculaViewer.tileRect(0, 'render');")
            img = screenshot_rgb(chromium, canvas).astype(int)
            return img[int(r["top"]):int(r["top"] + r["height"]), int(r["left"]):int(r["left"] + r["width"])]

        before = render_tile()
        assert before.std() > 10, "blank 3-D view"
        chromium.find_element("css selector", ".tv-clip-on").click()
        after = render_tile()
        changed = np.mean(np.abs(after - before).sum(axis=2) > 60)
        assert changed > 0.01, f"clip plane changed only {changed:.3%} of the 3-D view"
        assert console_errors(chromium) == []


def test_real_clinical_ct_axial_view_matches_the_array_slice(chromium):
    """The real clinical DICOM series (T11/T12, 0.977 × 0.977 × 2 mm), reduced for the browser: the axial view
    at the cursor is the array's slice at that z (right way round, radiological), not a neighbouring one."""
    from PIL import Image

    from tests.conftest import data_path
    from trabecula.io import read_volume

    ct = read_volume(data_path("clinical_ct_dicom"))
    with ViewerServer(ct, ["clinical CT"], layout="axial", max_voxels=1_400_000, progress=False) as srv:
        shown = srv.shown[0].volume
        assert shown.shape == (20, 256, 256) and shown.spacing == pytest.approx((2.0, 0.977 * 2, 0.977 * 2), rel=1e-3)
        chromium.get(srv.url)
        wait_for(chromium, "window.trabeculaViewer && trabeculaViewer.ready", what="the CT to draw")
        assert "downsampled for the browser (block mean, factors 1 × 2 × 2) from 20 × 512 × 512 voxels" in \
            chromium.find_element("css selector", ".tv-reduced").text
        z = 13
        chromium.execute_script("trabeculaViewer.setCursorLPS(arguments[0]);",
                                [float(c) for c in shown.index_to_world([z, 127.5, 127.5])])
        chromium.execute_script("return new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));")
        tile = axial_tile(chromium).astype(float)
    grey = tile.mean(axis=2)
    yellow = (tile[..., 0] - tile[..., 2]) > 60  # the crosshair
    grey[yellow] = np.nan
    img = np.asarray(Image.fromarray(np.nan_to_num(grey, nan=0).astype(np.float32)).resize((256, 256), Image.BILINEAR))
    keep = np.asarray(Image.fromarray((~yellow).astype(np.float32)).resize((256, 256), Image.BILINEAR)) > 0.99
    windowed = shown.window("bone").numpy().astype(float)  # the page starts in the bone window

    def corr(ref):
        return np.corrcoef(img[keep], ref[keep])[0, 1]

    r = np.array([corr(windowed[k]) for k in range(shown.shape[0])])
    assert r[z] > 0.95, r[z]
    assert abs(int(np.argmax(r)) - z) <= 1, r  # the best-matching slice is the cursor's (2 mm slices)
    assert r[z] > max(r[z - 6], r[z + 6]) + 0.01, r
    assert r[z] > corr(windowed[z][:, ::-1]) + 0.05  # not mirrored (radiological display)
    assert console_errors(chromium) == []
