"""CPU volume rendering: a numba ray marcher with shading, ambient occlusion, soft shadows and clipping.

Method (emission–absorption volume rendering, Max 1995; front-to-back compositing and early ray
termination, Levoy 1990, "Efficient ray tracing of volume data", ACM TOG 9(3)):

1. **Classification (set-up, once per transfer function / clip).** The volume is copied once to
   uint16 (exact for integer CT data: ``q = value - min``; float data are quantised over their range),
   so every volume runs the same compiled kernel and a 1500×1500×640 int16 scan needs 2.9 GB more,
   not a float copy. Empty-space skipping uses a grid of 8-voxel bricks (with a one-voxel border for
   trilinear support), each classed *empty* — the transfer function's maximum opacity over the
   brick's value range is 0, or its voxels' opacities sum below 0.03 (isolated noise voxels in soft
   tissue, which could change a ray's opacity by about that much) — and skipped in one jump to its
   exit; *faint* (maximum opacity < 0.05 per voxel: sampled with a 4× longer step,
   opacity-corrected); or *dense*. Blocks of 4×4×4 empty bricks are skipped in one jump.
2. **Ambient occlusion (set-up).** The mean opacity over cells of 1, 2, 4 or 8k voxels a side (about
   160 cells a side at most; computed in the same pass as the bricks) with clipped cells removed is
   blurred with Gaussians of three radii (1, 2.5 and 6 % of the volume's diagonal) and averaged: the occluded fraction of the neighbourhood
   (the density-based approximation of Zhukov, Iones & Kronin 1998, "An ambient light illumination
   model", and of Hernell, Ljung & Ynnerman 2010, "Local ambient occlusion in direct volume
   rendering", IEEE TVCG 16(4)). ``ao = clip(1 - strength * (occ - 0.45) / 0.55, 0.15, 1)``: an open
   flat surface (about half its neighbourhood filled) keeps nearly all light, a pit or the inside of
   the trabecular lattice darkens.
3. **Soft shadows (per light direction, cached).** A light-transmittance volume on the same cell grid,
   swept slice by slice away from the light (Behrens & Ratering 1998); its bilinear upstream look-up
   and a 1-cell Gaussian give soft penumbrae. It is sampled 1.5 cells towards the light from each
   sample so surfaces do not shadow themselves.
4. **Per frame.** One ray per pixel (orthographic or perspective), clipped analytically against the
   volume box, clip planes and clip boxes into at most 8 intervals. Where an interval starts on a clip
   surface and the value there is ≥ the transfer function's ``cut_min``, the ray stops on an opaque
   cut face showing the value in the cut window (virtual sectioning). Otherwise samples every
   ``step`` voxels (deterministic per-pixel jitter against wood-grain artefacts), trilinear
   interpolation, transfer-function look-up, gradient by central differences (world units, so
   anisotropic spacing shades right), Blinn–Phong lighting with the light moving with the camera,
   two-sided normals, multiplied by AO and by the shadow transmittance; rays stop at opacity 0.99.
   Blocks of rows are shared out to threads (the numba kernel releases the GIL).

Conventions: arrays (z, y, x), spacing and origin in mm, world frame LPS (see
:mod:`trabecula.render.camera`); opacity per voxel of the smallest spacing (see
:mod:`trabecula.render.transfer`); the picture is (rows, columns, RGB or RGBA) uint8.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from trabecula.errors import ParameterError
from trabecula.io import check_writable
from trabecula.progress import track
from trabecula.render import _kernels as K
from trabecula.render.annotate import draw_color_bar, draw_scale_bar
from trabecula.render.camera import Camera, ViewGeometry, camera_preset, view_geometry
from trabecula.render.clip import ClipBox, as_clip_list, clip_arrays, keep_mask
from trabecula.render.output import write_animation
from trabecula.render.transfer import TransferFunction, transfer_function_for
from trabecula.volume import Volume

BRICK = 8
MACRO = 4  # bricks per macro-brick side (32 voxels): empty macro-bricks are skipped in one jump
LUT_SIZE = 4096
FAINT = 0.05
SKIP_MASS = 0.03  # bricks whose voxels' opacities sum below this are skipped (isolated noise voxels)
FAINT_FACTOR = 4.0
MAX_CELLS = 160
AO_OPEN = 0.45  # occluded fraction that still counts as open (a flat surface)

#: Default background: a dark neutral grey, as in a specimen photograph.
BACKGROUND = (22, 22, 26)


@dataclass(frozen=True)
class Lighting:
    """Blinn–Phong weights: ambient ``ka``, diffuse ``kd``, specular ``ks`` with ``shininess``;
    ``ao_strength`` (0..1) scales ambient occlusion, ``shadow_strength`` (0..1) the shadows (1 = a fully
    shadowed point gets ambient light only)."""

    ka: float = 0.4
    kd: float = 0.7
    ks: float = 0.25
    shininess: float = 24.0
    ao_strength: float = 0.6
    shadow_strength: float = 0.55


def _size(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int | np.integer):
        size = (int(size), int(size))
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError) as exc:
        raise ParameterError("size", f"expected (rows, columns) or one number, got {size!r}") from exc
    if not (1 <= h <= 16384 and 1 <= w <= 16384):
        raise ParameterError("size", f"image size must be 1..16384 pixels a side, got {(h, w)}")
    check_picture_memory((h, w))
    return h, w


#: bytes one rendered pixel takes while a picture is made: premultiplied RGBA float32, the composited float
#: RGB and its temporaries, and the uint8 picture
PICTURE_BYTES_PER_PIXEL = 48


def check_picture_memory(size: tuple[int, int], name: str = "size", frames: int = 1) -> None:
    """Refuse, before rendering, a picture (or ``frames`` kept pictures of a turntable) over the memory budget
    (:func:`trabecula.limits.check_memory`), saying the largest square picture that fits."""
    from trabecula.limits import check_memory, memory_budget_bytes

    h, w = (int(v) for v in size)
    frames = max(1, int(frames))
    per_pixel = PICTURE_BYTES_PER_PIXEL + 3 * (frames - 1)
    side = int((memory_budget_bytes() / per_pixel) ** 0.5)
    what = f"a {h}×{w} picture" + (f" ({frames} frames)" if frames > 1 else "")
    check_memory(float(h) * w * per_pixel, what, name, f"at most about {side}×{side} pixels would fit")


def _background(background) -> np.ndarray | None:
    if background is None:
        return None
    bg = np.asarray(background, float).reshape(-1)
    if bg.size != 3 or not np.all((bg >= 0) & (bg <= 255)):
        raise ParameterError("background", f"expected an (r, g, b) colour in 0..255 or None, got {background!r}")
    return bg / 255.0


def _slabs(data: Any, slab_bytes: int = 64 << 20, halo: int = 0):
    """(z0, z1, block) over ``data`` in slabs of about ``slab_bytes`` (NumPy views, or computed dask chunks);
    with ``halo`` the block also holds up to ``halo`` slices on either side (``block[z0 - lo: z1 - lo]``
    is the slab, ``lo = max(z0 - halo, 0)``)."""
    nz = data.shape[0]
    per = max(1, int(slab_bytes // max(1, int(np.prod(data.shape[1:])) * np.dtype(data.dtype).itemsize)))
    for z0 in range(0, nz, per):
        z1 = min(nz, z0 + per)
        blk = data[max(z0 - halo, 0):min(z1 + halo, nz)]
        blk = np.asarray(blk.compute() if hasattr(blk, "compute") else blk)
        if blk.dtype == bool:
            blk = blk.view(np.uint8)
        yield z0, z1, blk


def classify_copy(data: Any, smooth: float = 0.0) -> tuple[np.ndarray, float, float]:
    """The uint16 working copy of a volume and its map back to values: ``value = offset + q * step``.

    Integer data whose range fits 65536 levels are copied exactly (``step = 1``); anything else is
    quantised linearly over its finite range (NaN → the minimum). Works slab by slab (64 MB), so a lazy
    (dask/zarr) volume is never held in memory whole, and no whole-volume float copy is made. ``smooth``
    > 0 applies a Gaussian of that SD (voxels) first (per slab, with a 4-SD halo): noisy scans then show
    no speckle of noise voxels above the bone threshold.
    """
    dtype = np.dtype(data.dtype)
    if not (np.issubdtype(dtype, np.number) or dtype.kind == "b"):
        raise ParameterError("volume", f"cannot render values of dtype {dtype}")
    lo, hi = math.inf, -math.inf
    for _, _, blk in _slabs(data):
        if np.issubdtype(blk.dtype, np.floating):
            finite = np.isfinite(blk)
            if not finite.any():
                continue
            lo = min(lo, float(np.min(blk, where=finite, initial=np.inf)))
            hi = max(hi, float(np.max(blk, where=finite, initial=-np.inf)))
        else:
            lo, hi = min(lo, float(blk.min())), max(hi, float(blk.max()))
    if not math.isfinite(lo):
        lo, hi = 0.0, 1.0
    if not np.issubdtype(dtype, np.floating) and hi - lo <= 65535:
        step = 1.0
    else:
        step = max((hi - lo) / 65535.0, 1e-30)
    q = np.empty(tuple(data.shape), np.uint16)
    if smooth > 0:
        step = (hi - lo) / 65535.0 if hi > lo else 1.0  # smoothed values are not integers any more
        halo = int(math.ceil(4 * smooth))
        for z0, z1, blk in _slabs(data, 32 << 20, halo):
            f = ndimage.gaussian_filter(np.nan_to_num(blk.astype(np.float32), nan=lo), smooth, mode="nearest",
                                        truncate=4.0)
            a = z0 - max(z0 - halo, 0)
            K.quantize(np.ascontiguousarray(f[a:a + z1 - z0]), q[z0:z1], lo, 1.0 / step)
        return q, lo, step
    for z0, z1, blk in _slabs(data):
        K.quantize(np.ascontiguousarray(blk), q[z0:z1], lo, 1.0 / step)
    return q, lo, step


def _threads() -> int:
    try:
        import numba

        return max(1, int(numba.get_num_threads()))
    except Exception:  # pragma: no cover
        return max(1, os.cpu_count() or 1)


def _run_rows(args: tuple, out: np.ndarray, block: int = 8) -> None:
    """Run the ray marcher over all rows of ``out`` on a thread pool (the kernel releases the GIL), in blocks
    of ``block`` rows taken in an interleaved order so every thread gets a mix of busy and empty rows."""
    from concurrent.futures import ThreadPoolExecutor

    h = out.shape[0]
    blocks = [np.arange(s, min(s + block, h), dtype=np.int64) for s in range(0, h, block)]
    order = np.argsort(np.arange(len(blocks)) % 7, kind="stable")  # spread neighbouring blocks apart
    blocks = [blocks[k] for k in order]
    n = min(_threads(), len(blocks))
    if n <= 1:
        for b in blocks:
            K.render_kernel(*args, b, out)
        return
    with ThreadPoolExecutor(max_workers=n) as pool:
        list(pool.map(lambda b: K.render_kernel(*args, b, out), blocks))


def _block_mean(a: np.ndarray, k: int) -> np.ndarray:
    """Mean over ``k``×``k``×``k`` blocks (partial blocks at the far edges average what they hold)."""
    pad = [(0, (-n) % k) for n in a.shape]
    s = np.pad(a, pad).astype(np.float32)
    c = np.pad(np.ones(a.shape, np.float32), pad)
    shp = [n // k for n in s.shape]
    red = lambda x: x.reshape(shp[0], k, shp[1], k, shp[2], k).sum(axis=(1, 3, 5))  # noqa: E731
    return np.ascontiguousarray(red(s) / np.maximum(red(c), 1.0), dtype=np.float32)


def _blur(a: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Gaussian blur (zero outside, truncated at 3 SD); wide kernels (SD > 4 cells) run on a 2× coarser grid and
    are interpolated back, which changes a smooth occlusion field by far less than its own spread."""
    sigma = np.asarray(sigma, float)
    if np.all(sigma <= 4.0) or min(a.shape) < 8:
        return ndimage.gaussian_filter(a, sigma, mode="constant", cval=0.0, truncate=3.0)
    pad = [(0, n % 2) for n in a.shape]
    b = np.pad(a, pad)
    s = b.shape
    half = b.reshape(s[0] // 2, 2, s[1] // 2, 2, s[2] // 2, 2).mean(axis=(1, 3, 5))
    half = ndimage.gaussian_filter(half, sigma / 2.0, mode="constant", cval=0.0, truncate=3.0)
    up = ndimage.zoom(half, 2, order=1, mode="nearest", grid_mode=True)
    return np.ascontiguousarray(up[: a.shape[0], : a.shape[1], : a.shape[2]], dtype=np.float32)


def _macro_classes(bclass: np.ndarray, m: int) -> np.ndarray:
    """Largest brick class over each ``m``×``m``×``m`` block of bricks (0 = all empty)."""
    pad = [(0, (-n) % m) for n in bclass.shape]
    b = np.pad(bclass, pad)
    s = b.shape
    return np.ascontiguousarray(b.reshape(s[0] // m, m, s[1] // m, m, s[2] // m, m).max(axis=(1, 3, 5)))


def _cell_factor(shape: Sequence[int]) -> int:
    """Voxels per AO/shadow cell side: 1, 2, 4 or a multiple of 8, keeping ≤ about 160 cells a side."""
    f = max(1, math.ceil(max(shape) / MAX_CELLS))
    if f <= 2:
        return f
    if f <= 4:
        return 4
    return 8 * math.ceil(f / 8)


def _colormap_lut(name: str) -> np.ndarray:
    import matplotlib

    try:
        cm = matplotlib.colormaps[name]
    except KeyError as exc:
        raise ParameterError("colormap", f"unknown matplotlib colormap {name!r}") from exc
    lut = np.zeros((256, 3), np.float32)
    lut[1:] = cm(np.linspace(0.0, 1.0, 255))[:, :3]
    return lut


class Renderer:
    """Set up once (classification, bricks, ambient occlusion), then :meth:`render` per camera.

    Parameters
    ----------
    vol : Volume
        Any units; the default transfer function follows them (:func:`~trabecula.render.transfer.transfer_function_for`).
    tf : TransferFunction, optional
        Its ``units`` must match the volume's.
    clip : ClipPlane, ClipBox or a sequence of them, optional
    color_by : Volume, optional
        A scalar map (e.g. local thickness, units ``mm``) on any grid overlapping the volume: visible
        samples take their colour from ``colormap`` at the map's value (nearest voxel; zeros, the
        map's background, are filled from their neighbours up to two voxels out, beyond that the
        transfer function's colour shows).
    color_range : (low, high), optional
        Values mapped to the colormap's ends; default the 2nd and 98th percentiles of the map's
        non-zero values.
    ambient_occlusion, shadows : bool
    step : float
        Sampling step in voxels of the smallest spacing (default 0.5).
    lighting : Lighting
    cut_face : ``"grey"`` (the values in the cut window), ``"tf"`` (the transfer function's colours) or
        ``"none"`` (no cut faces).
    smooth : float
        Gaussian SD (voxels) applied to the working copy before classification (0 = none, the default);
        0.7–1 removes the speckle of noise voxels above the bone threshold in noisy clinical or low-dose
        scans, at the cost of that much blur. The cut face shows the smoothed values.
    """

    def __init__(
        self,
        vol: Volume,
        tf: TransferFunction | None = None,
        clip: Any = None,
        color_by: Volume | None = None,
        *,
        colormap: str = "turbo",
        color_range: tuple[float, float] | None = None,
        ambient_occlusion: bool = True,
        shadows: bool = True,
        step: float = 0.5,
        lighting: Lighting | None = None,
        cut_face: str = "grey",
        smooth: float = 0.0,
    ) -> None:
        if not isinstance(vol, Volume):
            raise ParameterError("vol", f"expected a Volume, got {type(vol).__name__}")
        if not (0.05 <= float(step) <= 4.0):
            raise ParameterError("step", f"sampling step must lie in 0.05..4 voxels, got {step}")
        if cut_face not in ("grey", "tf", "none"):
            raise ParameterError("cut_face", f"expected grey, tf or none, got {cut_face!r}")
        if tf is None:
            tf = transfer_function_for(vol)
        if not isinstance(tf, TransferFunction):
            raise ParameterError("tf", f"expected a TransferFunction, got {type(tf).__name__}")
        if tf.units != vol.units:
            raise ParameterError("tf", f"transfer function is in {tf.units} but the volume's units are {vol.units}")
        self.vol = vol
        self.tf = tf
        self.clips = as_clip_list(clip)
        self.ambient_occlusion = bool(ambient_occlusion)
        self.shadows = bool(shadows)
        self.step = float(step)
        self.lighting = lighting or Lighting()
        self.cut_face = cut_face
        self.spacing = np.asarray(vol.spacing, float)
        self.origin = np.asarray(vol.origin, float)
        self.unit_mm = float(self.spacing.min())
        shape = np.asarray(vol.shape)
        self.bounds_lo = self.origin - 0.5 * self.spacing
        self.bounds_hi = self.origin + (shape - 0.5) * self.spacing

        # 1. classified copy, LUT in q units, bricks
        if not 0.0 <= float(smooth) <= 5.0:
            raise ParameterError("smooth", f"Gaussian SD must lie in 0..5 voxels, got {smooth}")
        self.q, self.q_offset, self.q_step = classify_copy(vol.data, float(smooth))
        lut = tf.lut(LUT_SIZE).astype(np.float32)
        self.lut = np.ascontiguousarray(lut)
        span = tf.vmax - tf.vmin
        self.lut_a = self.q_step * (LUT_SIZE - 1) / span
        self.lut_b = (self.q_offset - tf.vmin) * (LUT_SIZE - 1) / span
        self.alpha_step = (1.0 - (1.0 - np.clip(lut[:, 3], 0, 1)) ** self.step).astype(np.float32)
        self.f_low = _cell_factor(vol.shape)
        alpha_unit = np.ascontiguousarray(lut[:, 3])
        f_pass = min(self.f_low, BRICK)
        self.bclass, cells = K.brick_classes(self.q, BRICK, f_pass, alpha_unit, self.lut_a, self.lut_b, FAINT,
                                             SKIP_MASS)
        if self.f_low > f_pass:  # cells larger than bricks (volumes over 1280 voxels a side): merge brick cells
            cells = _block_mean(cells, self.f_low // f_pass)
        self.cell_alpha = cells
        self.mclass = _macro_classes(self.bclass, MACRO)
        self.frame_lo, self.frame_hi = self._content_bounds()

        # 2. low-resolution occupancy (clipped) → ambient occlusion
        if self.clips:
            self.cell_alpha *= self._cell_keep_mask()
        self.ao = self._ambient_occlusion() if self.ambient_occlusion else np.ones((1, 1, 1), np.float32)
        self._shadow_cache: dict[tuple, np.ndarray] = {}

        # 3. colour map
        self.color_by = color_by
        self.color_range: tuple[float, float] | None = None
        self.colormap = colormap
        if color_by is not None:
            self._setup_color(color_by, colormap, color_range)
        else:
            self.cidx = np.zeros((1, 1, 1), np.uint8)
            self.cmap = np.zeros((256, 3), np.float32)
            self.c_scale = np.ones(3)
            self.c_off = np.zeros(3)
        self.planes, self.boxes = clip_arrays(self.clips)

    # ------------------------------------------------------------------------------------ set-up parts
    def _content_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """World box of the non-empty bricks (within crop boxes): what the camera frames at ``zoom=1``."""
        nz = np.nonzero(self.bclass)
        if nz[0].size == 0:
            return self.bounds_lo, self.bounds_hi
        lo_i = np.array([a.min() for a in nz]) * BRICK - 0.5
        hi_i = (np.array([a.max() for a in nz]) + 1) * BRICK - 0.5
        lo = np.maximum(self.origin + lo_i * self.spacing, self.bounds_lo)
        hi = np.minimum(self.origin + hi_i * self.spacing, self.bounds_hi)
        for c in self.clips:
            if isinstance(c, ClipBox) and c.keep == "inside":
                lo2, hi2 = np.maximum(lo, c.lower_mm), np.minimum(hi, c.upper_mm)
                if np.all(hi2 > lo2):
                    lo, hi = lo2, hi2
        return lo, hi

    def _cell_centres_mm(self) -> np.ndarray:
        f = self.f_low
        cs = self.cell_alpha.shape
        axes = [self.origin[k] + (np.arange(cs[k]) * f + 0.5 * (f - 1)) * self.spacing[k] for k in range(3)]
        zz, yy, xx = np.meshgrid(*axes, indexing="ij")
        return np.stack([zz, yy, xx], axis=-1)

    def _cell_keep_mask(self) -> np.ndarray:
        return keep_mask(self.clips, self._cell_centres_mm()).astype(np.float32)

    def _cell_sigma(self, radius_mm: float) -> np.ndarray:
        return radius_mm / (self.f_low * self.spacing)

    def _ambient_occlusion(self) -> np.ndarray:
        diag = float(np.linalg.norm(self.bounds_hi - self.bounds_lo))
        occ = np.zeros_like(self.cell_alpha)
        radii = (0.01, 0.025, 0.06)
        for r in radii:
            occ += _blur(self.cell_alpha, self._cell_sigma(r * diag))
        occ /= len(radii)
        s = self.lighting.ao_strength
        ao = 1.0 - s * np.clip((occ - AO_OPEN) / (1.0 - AO_OPEN), 0.0, 1.0)
        return np.clip(ao, 0.15, 1.0).astype(np.float32)

    def _shadow_volume(self, light: np.ndarray) -> np.ndarray:
        key = tuple(np.round(light, 4))
        if key in self._shadow_cache:
            return self._shadow_cache[key]
        # propagation direction (away from the light) in cell units per mm
        d_cells = -light / (self.f_low * self.spacing)
        ax = int(np.argmax(np.abs(d_cells)))
        sgn = np.sign(d_cells[ax]) or 1.0
        order = [ax] + [k for k in range(3) if k != ax]
        a = np.transpose(self.cell_alpha, order)
        if sgn < 0:
            a = a[::-1]
        v = d_cells[order] / abs(d_cells[ax])  # per slice along the dominant axis
        path_mm = float(np.linalg.norm(v * (self.f_low * self.spacing)[order]))
        t = K.sweep_light(np.ascontiguousarray(a, np.float32), float(v[1]), float(v[2]), path_mm / self.unit_mm)
        if sgn < 0:
            t = t[::-1]
        t = np.transpose(t, np.argsort(order))
        t = ndimage.gaussian_filter(t, 1.0, mode="nearest")
        t = (1.0 - self.lighting.shadow_strength * (1.0 - t)).astype(np.float32)
        t = np.ascontiguousarray(t)
        if len(self._shadow_cache) > 8:
            self._shadow_cache.clear()
        self._shadow_cache[key] = t
        return t

    def _setup_color(self, cvol: Volume, colormap: str, color_range) -> None:
        if not isinstance(cvol, Volume):
            raise ParameterError("color_by", f"expected a Volume, got {type(cvol).__name__}")
        m = cvol.numpy().astype(np.float32, copy=False)
        nz = m[np.isfinite(m) & (m != 0)]
        if color_range is None:
            if nz.size == 0:
                raise ParameterError("color_by", "the colour map has no non-zero values")
            lo, hi = (float(x) for x in np.percentile(nz, [2, 98]))
        else:
            lo, hi = (float(x) for x in color_range)
        if not hi > lo:
            hi = lo + 1e-6
        idx = np.zeros(m.shape, np.uint8)
        valid = np.isfinite(m) & (m != 0)
        idx[valid] = (1 + np.clip((m[valid] - lo) / (hi - lo), 0, 1) * 254).round().astype(np.uint8)
        for _ in range(2):  # fill the map's background next to its values (surface samples fall there)
            grown = ndimage.grey_dilation(idx, size=3)
            idx = np.where(idx == 0, grown, idx)
        self.cidx = np.ascontiguousarray(idx)
        self.cmap = _colormap_lut(colormap)
        # index in the volume → index in the colour map
        csp, cor = np.asarray(cvol.spacing, float), np.asarray(cvol.origin, float)
        self.c_scale = self.spacing / csp
        self.c_off = (self.origin - cor) / csp
        self.color_range = (lo, hi)

    # --------------------------------------------------------------------------------------- rendering
    def view(self, camera: str | Camera = "oblique", size: int | Sequence[int] = (1024, 1024)) -> ViewGeometry:
        """The ray geometry of a picture (pixel size in mm, projection of world points); the camera frames the
        box of the volume's visible content (non-empty bricks, within crop boxes)."""
        return view_geometry(camera_preset(camera), self.frame_lo, self.frame_hi, _size(size))

    def render_float(self, camera: str | Camera = "oblique", size: int | Sequence[int] = (1024, 1024)) -> np.ndarray:
        """Premultiplied RGBA, float32 (rows, columns, 4): colour and opacity before the background."""
        geo = self.view(camera, size)
        h, w = geo.shape
        out = np.zeros((h, w, 4), np.float32)
        use_shadow = self.shadows
        shadow = self._shadow_volume(geo.light) if use_shadow else np.ones((1, 1, 1), np.float32)
        L = self.lighting
        tf = self.tf
        cut_mode = {"none": 0, "grey": 1, "tf": 2}[self.cut_face]
        lo_v = tf.cut_window[0] - tf.cut_window[1] / 2.0
        hi_v = tf.cut_window[0] + tf.cut_window[1] / 2.0
        to_q = lambda v: (v - self.q_offset) / self.q_step  # noqa: E731
        args = (
            self.q, self.origin, self.spacing, self.lut, self.lut_a, self.lut_b, self.alpha_step, self.bclass, BRICK, self.mclass, MACRO,
            self.ao, shadow, self.f_low, self.ambient_occlusion, use_shadow, 1.5 * self.f_low * self.unit_mm,
            self.cidx, self.cmap, self.c_scale, self.c_off, self.color_by is not None,
            self.planes, self.boxes,
            geo.corner, geo.right, geo.up, geo.forward, geo.eye, geo.pixel_mm, geo.perspective, geo.light,
            L.ka, L.kd, L.ks, L.shininess, tf.gradient_ref / self.q_step,
            self.step * self.unit_mm, self.unit_mm, FAINT_FACTOR,
            cut_mode, to_q(lo_v), to_q(hi_v), to_q(tf.cut_min),
        )
        _run_rows(args, out)
        return out

    def render(
        self,
        camera: str | Camera = "oblique",
        size: int | Sequence[int] = (1024, 1024),
        *,
        background: Sequence[float] | None = BACKGROUND,
        scale_bar: bool = True,
        color_bar: bool = True,
    ) -> np.ndarray:
        """Render one picture: (rows, columns, 3) uint8 over ``background`` (r, g, b 0..255), or
        (rows, columns, 4) RGBA with ``background=None``. A scale bar (orthographic cameras) and, with
        ``color_by``, a colour bar are drawn in the lower corners."""
        bg = _background(background)
        rgba = self.render_float(camera, size)
        geo = self.view(camera, size)
        if bg is None:
            a = np.clip(rgba[..., 3:4], 0, 1)
            rgb = np.where(a > 0, rgba[..., :3] / np.maximum(a, 1e-6), 0.0)
            img = np.concatenate([rgb, a], axis=-1)
        else:
            img = rgba[..., :3] + (1.0 - rgba[..., 3:4]) * bg.astype(np.float32)
        img = (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        if scale_bar and not geo.perspective:
            img = draw_scale_bar(img, geo.pixel_mm)
        if color_bar and self.color_by is not None and self.color_range is not None:
            img = draw_color_bar(img, self.cmap[1:], self.color_range, self.color_by.units)
        return img


def render_volume(
    vol: Volume,
    tf: TransferFunction | None = None,
    camera: str | Camera = "oblique",
    size: int | Sequence[int] = (1024, 1024),
    clip: Any = None,
    color_by: Volume | None = None,
    ambient_occlusion: bool = True,
    shadows: bool = True,
    background: Sequence[float] | None = BACKGROUND,
    scale_bar: bool = True,
    **kwargs: Any,
) -> np.ndarray:
    """Render a volume to an image (see :class:`Renderer` for the method and the options).

    Returns (rows, columns, 3) uint8, or RGBA with ``background=None``. ``size`` is (rows, columns)
    or one number. Other keyword arguments (``step``, ``lighting``, ``colormap``, ``color_range``,
    ``cut_face``) go to :class:`Renderer`.

    Examples
    --------
    >>> import numpy as np
    >>> from trabecula import Volume
    >>> v = Volume(np.full((8, 8, 8), 1200, np.int16), spacing=0.1, units="HU")
    >>> render_volume(v, camera="anterior", size=32, shadows=False).shape
    (32, 32, 3)
    """
    r = Renderer(vol, tf, clip, color_by, ambient_occlusion=ambient_occlusion, shadows=shadows, **kwargs)
    return r.render(camera, size, background=background, scale_bar=scale_bar)


def turntable(
    vol: Volume | Renderer,
    path,
    frames: int = 36,
    camera: str | Camera = "oblique",
    size: int | Sequence[int] = (512, 512),
    fps: float = 12.0,
    force: bool = False,
    background: Sequence[float] | None = BACKGROUND,
    scale_bar: bool = True,
    **kwargs: Any,
):
    """Render ``frames`` views turning a full circle about the superior axis and write a GIF or MP4.

    ``vol`` is a Volume (other keyword arguments — ``tf``, ``clip``, ``color_by``, ``ambient_occlusion``,
    ``shadows``, ``step``… — set up a :class:`Renderer`) or a ready Renderer. The set-up is done once;
    the light turns with the camera. Returns the path written (atomically; ``force`` to overwrite).
    """
    from pathlib import Path

    p = Path(path)
    if p.suffix.lower() not in (".gif", ".mp4"):
        raise ParameterError("turntable", f"{p}: expected a .gif or .mp4 file name")
    check_writable(p, force)
    if not 1 <= int(frames) <= 3600:
        raise ParameterError("frames", f"expected 1..3600 frames, got {frames}")
    if isinstance(vol, Renderer):
        if kwargs:
            raise ParameterError("turntable", f"set-up options {sorted(kwargs)} need a Volume, not a Renderer")
        r = vol
    else:
        tf = kwargs.pop("tf", None)
        clip = kwargs.pop("clip", None)
        color_by = kwargs.pop("color_by", None)
        r = Renderer(vol, tf, clip, color_by, **kwargs)
    cam = camera_preset(camera)
    n = int(frames)
    imgs = [r.render(cam.orbit(360.0 * k / n), size, background=background if background is not None else BACKGROUND,
                     scale_bar=scale_bar) for k in track(range(n), "turntable", total=n)]
    return write_animation(imgs, p, fps=fps, force=force)
