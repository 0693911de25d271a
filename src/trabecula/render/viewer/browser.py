"""Drive the viewer and the report in headless Chromium (Debian's chromium + chromium-driver, via selenium):
screenshots, real clicks, waiting for the page's own state. Used by the browser tests and ``bench/bench_viewer.py``.

The driver is started with an explicit ``Service("/usr/bin/chromedriver")`` so selenium-manager never
tries to download a browser or a driver; WebGL2 runs in software (SwiftShader). A missing chromium, a
viewer error or a time-out raises :class:`BrowserError` (a test that uses it fails; it is never skipped).
selenium is a test dependency (``pip install -e .[test]``).
"""

from __future__ import annotations

import base64
import io
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


class BrowserError(RuntimeError):
    """Headless Chromium is missing, or the page reported an error or did not reach the awaited state."""


CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--enable-unsafe-swiftshader",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-default-apps",
    "--disable-extensions", "--hide-scrollbars", "--force-device-scale-factor=1",
)


def start_chromium(width: int = 1200, height: int = 900):
    """A selenium Chrome driver on Debian's headless chromium, with the browser console log enabled."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        raise BrowserError(f"headless browser tests need {CHROMIUM} and {CHROMEDRIVER}: "
                    "apt-get install -y chromium chromium-driver (./dev test does it on Debian as root)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="trabecula-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    driver._trabecula_profile = profile  # removed by stop_chromium
    return driver


def stop_chromium(driver) -> None:
    profile = getattr(driver, "_trabecula_profile", None)
    driver.quit()
    if profile:
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(driver, script: str, timeout: float = 60.0, what: str = "condition"):
    """Poll a JS expression until it is truthy; fail with the viewer's errors and the console log if not."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        val = driver.execute_script(f"return ({script});")
        if val:
            return val
        errs = driver.execute_script("return window.trabeculaViewer ? window.trabeculaViewer.errors : [];")
        if errs:
            raise BrowserError(f"viewer errors while waiting for {what}: {errs}")
        time.sleep(0.1)
    raise BrowserError(f"timed out after {timeout} s waiting for {what}; console: {console_entries(driver)}")


def click_at(driver, element, x: float, y: float) -> None:
    """A real mouse click (pointer events through the browser's input pipeline) at CSS pixel (x, y) of
    ``element``: scrolled fully into view first, then clicked at absolute viewport coordinates."""
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    driver.execute_script("arguments[0].scrollIntoView({block: 'center', inline: 'center'});", element)
    box = driver.execute_script("const r = arguments[0].getBoundingClientRect(); return [r.left, r.top];", element)
    ab = ActionBuilder(driver)
    ab.pointer_action.move_to_location(int(round(box[0] + x)), int(round(box[1] + y)))
    ab.pointer_action.click()
    ab.perform()


def console_entries(driver) -> list[dict]:
    return list(driver.get_log("browser"))


def console_errors(driver) -> list[str]:
    """SEVERE browser-log entries (JavaScript errors, failed loads)."""
    return [e["message"] for e in console_entries(driver) if e.get("level") == "SEVERE"]


def screenshot_rgb(driver, element=None) -> np.ndarray:
    """Screenshot of the page (or one element) as an (H, W, 3) uint8 array."""
    from PIL import Image

    png = element.screenshot_as_png if element is not None else base64.b64decode(driver.get_screenshot_as_base64())
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def bright_centroid(rgb: np.ndarray, threshold: int = 180) -> tuple[float, float, int]:
    """(row, col, count) of the grey-white pixels (R, G, B all above ``threshold``; coloured lines excluded)."""
    mask = np.all(rgb > threshold, axis=2) & (np.ptp(rgb.astype(int), axis=2) < 40)
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return float("nan"), float("nan"), 0
    return float(rows.mean()), float(cols.mean()), int(rows.size)


Poll = Callable[[str], object]
