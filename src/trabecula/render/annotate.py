"""Scale bars and colour bars drawn into rendered images (Pillow), and the "nice" bar length."""

from __future__ import annotations

import math

import numpy as np

from trabecula.errors import ParameterError


def nice_length(target: float) -> float:
    """The largest 1, 2 or 5 × 10^k not above ``target`` (> 0)."""
    if not (target > 0 and math.isfinite(target)):
        raise ParameterError("scale bar", f"length must be positive, got {target}")
    e = math.floor(math.log10(target))
    for m in (5.0, 2.0, 1.0):
        if m * 10.0**e <= target * (1 + 1e-9):
            return m * 10.0**e
    return 10.0**e


def length_label(mm: float) -> str:
    """``"5 mm"``, ``"500 µm"``, ``"2 cm"`` style label of a length in mm."""
    if mm < 1.0:
        return f"{mm * 1000:g} µm"
    if mm >= 10.0 and mm % 10 == 0:
        return f"{mm / 10:g} cm"
    return f"{mm:g} mm"


def scale_bar_geometry(pixel_mm: float, width_px: int, fraction: float = 0.2) -> tuple[float, int]:
    """(length in mm, length in pixels) of the scale bar for a picture ``width_px`` wide with square pixels of
    ``pixel_mm``: the nice length nearest below ``fraction`` of the width."""
    mm = nice_length(fraction * width_px * pixel_mm)
    return mm, int(round(mm / pixel_mm))


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=max(8, int(size)))
    except TypeError:  # Pillow without FreeType sizes
        return ImageFont.load_default()


def _contrast(img: np.ndarray) -> tuple[int, ...]:
    """White on dark pictures, black on light ones (alpha kept opaque for RGBA)."""
    mean = float(img[..., :3].mean())
    c = (0, 0, 0) if mean > 150 else (255, 255, 255)
    return c + ((255,) if img.shape[-1] == 4 else ())


def draw_scale_bar(img: np.ndarray, pixel_mm: float, fraction: float = 0.2) -> np.ndarray:
    """A copy of ``img`` (rows, columns, 3|4 uint8) with a scale bar in the lower left: a bar exactly
    ``round(L / pixel_mm)`` pixels long for the nice length ``L`` (mm) and its label above it."""
    from PIL import Image, ImageDraw

    h, w = img.shape[:2]
    mm, px = scale_bar_geometry(pixel_mm, w, fraction)
    if px < 2:
        return img
    pil = Image.fromarray(img)
    d = ImageDraw.Draw(pil)
    col = _contrast(img)
    margin = max(4, w // 40)
    thick = max(2, h // 150)
    y1 = h - margin
    y0 = y1 - thick
    d.rectangle([margin, y0, margin + px - 1, y1 - 1], fill=col)
    font = _font(max(10, h // 36))
    d.text((margin, y0 - max(4, h // 120)), length_label(mm), fill=col, font=font, anchor="ld")
    return np.asarray(pil)


def draw_color_bar(img: np.ndarray, colors: np.ndarray, value_range: tuple[float, float], units: str) -> np.ndarray:
    """A copy of ``img`` with a vertical colour bar (``colors`` (n, 3) in 0..1, low at the bottom) in the lower
    right, labelled with ``value_range`` and ``units``."""
    from PIL import Image, ImageDraw

    h, w = img.shape[:2]
    pil = Image.fromarray(img)
    d = ImageDraw.Draw(pil)
    col = _contrast(img)
    margin = max(4, w // 40)
    bw = max(6, w // 60)
    bh = max(20, h // 3)
    x1 = w - margin - max(30, w // 12)
    x0 = x1 - bw
    y1 = h - margin
    y0 = y1 - bh
    n = len(colors)
    for k in range(bh):
        c = colors[min(n - 1, int((bh - 1 - k) / max(bh - 1, 1) * (n - 1)))]
        fill = tuple(int(round(255 * v)) for v in c[:3]) + ((255,) if img.shape[-1] == 4 else ())
        d.line([(x0, y0 + k), (x1, y0 + k)], fill=fill)
    font = _font(max(10, h // 45))
    lo, hi = value_range
    d.text((x1 + 4, y0), f"{hi:.3g}", fill=col, font=font, anchor="lt")
    d.text((x1 + 4, y1), f"{lo:.3g}", fill=col, font=font, anchor="lb")
    d.text((x0 + bw // 2, y0 - 4), units, fill=col, font=font, anchor="md")
    return np.asarray(pil)
