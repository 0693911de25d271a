"""A headless Chromium per test module (see trabecula.render.viewer.browser)."""

import pytest

from trabecula.render.viewer.browser import start_chromium, stop_chromium


@pytest.fixture(scope="module")
def chromium():
    driver = start_chromium(1100, 900)
    yield driver
    stop_chromium(driver)
