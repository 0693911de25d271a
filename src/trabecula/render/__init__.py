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

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(
    __name__,
    submodules=["viewer"],
    submod_attrs={
        "transfer": ["TransferFunction", "bone_transfer_function", "transfer_function_for"],
        "camera": ["Camera", "camera_preset", "CAMERA_PRESETS"],
        "clip": ["ClipPlane", "ClipBox"],
        "raycast": ["render_volume", "Renderer", "Lighting", "BACKGROUND", "turntable"],
        "mpr": ["mpr_views", "mpr_figure", "MPRView", "VIEW_COLORS"],
        "output": ["save_png", "write_animation"],
    },
)
