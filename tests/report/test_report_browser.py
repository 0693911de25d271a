"""The report opened from file:// in headless Chromium: every image loads, nothing is fetched from the
network, no console errors, and the embedded viewer draws its volume."""

import numpy as np
import pytest

from tests.report.sample import full_report_data
from trabecula.render.viewer.browser import console_errors, screenshot_rgb, wait_for
from trabecula.report import build_report

pytestmark = pytest.mark.slow


def test_report_opens_from_file_with_images_viewer_and_no_errors(chromium, tmp_path):
    path = build_report(full_report_data(tmp_path), tmp_path / "report.html")
    chromium.get(path.resolve().as_uri())
    wait_for(chromium, "document.readyState === 'complete'", what="the page to load")
    images = chromium.execute_script(
        "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight]);")
    assert len(images) == 6
    for alt, complete, w, h in images:
        assert complete and w > 0 and h > 0, alt
    wait_for(chromium, "window.trabeculaViewer && trabeculaViewer.ready", what="the embedded viewer to draw")
    # nothing but the file itself and data: URLs was loaded
    urls = chromium.execute_script("return performance.getEntriesByType('resource').map(e => e.name);")
    assert all(u.startswith("data:") for u in urls), urls
    canvas = chromium.find_element("css selector", "#report-viewer canvas.tv-canvas")
    chromium.execute_script("arguments[0].scrollIntoView({block: 'center'});", canvas)
    img = screenshot_rgb(chromium, canvas)
    assert img.std() > 15 and np.mean(np.all(img > 200, axis=2)) > 0.002, "viewer canvas looks blank"
    head = chromium.find_element("css selector", "#report-viewer .tv-facts").text
    assert "40 × 48 × 56 voxels" in head and "units HU" in head
    assert console_errors(chromium) == []
