"""A headless Chromium per test module (started once; it takes a second or two)."""

import pytest

from trabecula.render.viewer.browser import start_chromium, stop_chromium


@pytest.fixture(scope="module")
def chromium():
    driver = start_chromium(1000, 800)
    yield driver
    stop_chromium(driver)
