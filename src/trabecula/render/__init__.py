"""Seeing the bone: CPU volume rendering with virtual sectioning, and MPR views (``trabecula render``, ``trabecula mpr``).

* :func:`render_volume` / :class:`Renderer`: a numba ray marcher — gradient (Blinn–Phong) shading,
  ambient occlusion, soft shadows, empty-space skipping and early ray termination — with a bone-like
  :class:`TransferFunction` (:func:`bone_transfer_function`), :class:`Camera` presets
  (:func:`camera_preset`), clip planes and boxes whose cut faces show the CT values
  (:class:`ClipPlane`, :class:`ClipBox`), colouring by a scalar map (e.g. local thickness) and
  :func:`turntable` animations (GIF, MP4);
* :func:`mpr_views` / :func:`mpr_figure`: axial, coronal and sagittal slices through a world point with
  3D Slicer's colours, a linked crosshair, radiological or neurological display, window presets,
  scale bars, orientation letters, several volumes side by side with a common zoomed inset;
* :func:`save_png`: pictures and figures to PNG, atomically.

The browser viewer lives in :mod:`trabecula.render.viewer`.
"""

from __future__ import annotations

import importlib
from typing import Any

# Names resolve lazily (PEP 562) so that importing a submodule — e.g. the viewer — does not load numba.
_EXPORTS = {
    "TransferFunction": "transfer", "bone_transfer_function": "transfer",
    "Camera": "camera", "camera_preset": "camera", "CAMERA_PRESETS": "camera",
    "ClipPlane": "clip", "ClipBox": "clip",
    "render_volume": "raycast", "Renderer": "raycast", "Lighting": "raycast", "BACKGROUND": "raycast",
    "turntable": "raycast",
    "mpr_views": "mpr", "mpr_figure": "mpr", "MPRView": "mpr", "VIEW_COLORS": "mpr",
    "save_png": "output", "write_animation": "output",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"trabecula.render.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'trabecula.render' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
