"""Writing pictures and turntable animations (atomic, no overwrite without ``force``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from trabecula.errors import ParameterError
from trabecula.io import atomic_output, check_writable


def save_png(image: Any, path: str | os.PathLike, force: bool = False, dpi: int | None = None) -> Path:
    """Write an image array ((rows, columns), (rows, columns, 3) or (…, 4), uint8 or floats in 0..1) or a
    matplotlib Figure to a PNG file, atomically; refuses to overwrite without ``force``."""
    p = Path(path)
    if p.suffix.lower() != ".png":
        raise ParameterError("output", f"{p}: expected a .png file name")
    from matplotlib.figure import Figure

    if isinstance(image, Figure):
        with atomic_output(p, force=force) as tmp:
            image.savefig(tmp, format="png", dpi=dpi or image.dpi, facecolor=image.get_facecolor())
        return p
    a = np.asarray(image)
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise ParameterError("image", f"expected (rows, columns[, 3|4]) pixels, got shape {a.shape}")
    if a.dtype != np.uint8:
        if not np.issubdtype(a.dtype, np.floating):
            raise ParameterError("image", f"expected uint8 or float pixels in 0..1, got {a.dtype}")
        a = (np.clip(a, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    from PIL import Image

    with atomic_output(p, force=force) as tmp:
        Image.fromarray(a).save(tmp, format="PNG")
    return p


def write_animation(frames: Sequence[np.ndarray], path: str | os.PathLike, fps: float = 12.0, force: bool = False) -> Path:
    """Write uint8 RGB frames as an animated GIF (Pillow, looping) or an MP4 (H.264 via imageio-ffmpeg)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise ParameterError("turntable", f"{p}: expected a .gif or .mp4 file name")
    if not frames:
        raise ParameterError("frames", "no frames to write")
    check_writable(p, force)
    if suffix == ".gif":
        from PIL import Image

        imgs = [Image.fromarray(np.asarray(f)[..., :3]) for f in frames]
        with atomic_output(p, force=force) as tmp:
            imgs[0].save(tmp, format="GIF", save_all=True, append_images=imgs[1:], duration=int(round(1000 / fps)),
                         loop=0, optimize=False)
        return p
    try:
        import imageio_ffmpeg
    except ImportError as exc:  # pragma: no cover - installed with the package
        raise ParameterError("turntable", "MP4 needs the imageio-ffmpeg package (pip install imageio-ffmpeg); "
                                          "or write a .gif") from exc
    h, w = np.asarray(frames[0]).shape[:2]
    # H.264 in yuv420p needs even sides: pad by one pixel where needed
    ph, pw = h + (h % 2), w + (w % 2)
    with atomic_output(p, force=force) as tmp:
        writer = imageio_ffmpeg.write_frames(str(tmp), (pw, ph), fps=fps, codec="libx264", pix_fmt_in="rgb24",
                                             output_params=["-pix_fmt", "yuv420p", "-f", "mp4"], quality=8,
                                             macro_block_size=1)
        writer.send(None)
        for f in frames:
            a = np.ascontiguousarray(np.asarray(f)[..., :3])
            if (ph, pw) != a.shape[:2]:
                a = np.pad(a, ((0, ph - a.shape[0]), (0, pw - a.shape[1]), (0, 0)), mode="edge")
            writer.send(a)
        writer.close()
    return p
