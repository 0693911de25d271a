"""Morphometry of volumes larger than memory, block by block (on one machine or a dask cluster).

The volume (a lazily read Zarr/OME-Zarr, or any array) is cut into blocks; each block is read with a halo
(an overlap) wide enough that everything computed for the block's own voxels equals the whole-volume
computation, and the blocks' partial results are combined. Two passes:

1. **counts, Euler sums, distance maxima** (halo ``EDT_HALO`` voxels, doubled where needed): bone and VOI
   voxel counts (BV/TV, exactly); the Euler characteristic as the sum of the Toriwaki–Yonekura vertex
   contributions over the lattice vertices each block owns — χ is additive over 2×2×2 windows, so blocks
   overlapping by one voxel give the exact global χ and the floating Δχ (:mod:`.connectivity`); the box
   correction of the whole image or a box VOI is computed on its faces; and the largest inscribed-sphere
   radius R of each phase. A block's distance transform treats its inner cut faces as background (an
   under-estimate, never an over-estimate); its maximum over the owned voxels is exact when it is below the
   halo's width, and the block is recomputed with a doubled halo otherwise.
2. **local thickness, SMI, DA** (halo ``2R`` + a few voxels per axis, the largest sphere *diameter*): every
   sphere that covers an owned voxel is centred within R of it and its radius is decided within R of its
   centre, so the owned part of the block's thickness map equals the whole-volume map (spheres centred near
   the cut faces are smaller than or equal to true inscribed spheres, which never raises a value). The Tb.Th
   and Tb.Sp means, SDs (Chan et al.'s pairwise combination of count/mean/M2) and maxima are combined; the
   maps are written block by block into OME-Zarr. SMI sums triangle areas and dS/dr per owned triangle
   (:func:`.smi.smi_block_sums`); DA sums the MIL line lengths and intercepts of the samples each block owns
   (:func:`.anisotropy.mil_block_sums`) on the same line grid as the in-memory path.

Results equal :func:`.measure.measure` exactly for BV/TV and χ and within floating-point summation order
(≲1e-9 relative) for the thickness means, SMI and DA (``tests/morphometry/test_chunked.py``).

Supported here: binary input, or grey/HU with a numeric threshold; no VOI, or a mask volume on the same grid.
Segmentation steps that need the whole image (automatic thresholds, smoothing, closing, the largest
component, up-sampling, cortical autocontours) are refused with a one-line message: run them first (in
memory or on a larger machine) and measure the binary they produce.

References
----------
Chan TF, Golub GH, LeVeque RJ (1979) Updating formulae and a pairwise algorithm for computing sample
variances. Toriwaki J, Yonekura T (2002) Forma 17:183–209. Hildebrand T, Rüegsegger P (1997) J Microsc
185:67–75 (local thickness). Rocklin M (2015) Dask, Proc. SciPy.
"""

from __future__ import annotations

import math
import warnings as _warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from trabecula.errors import ParameterError
from trabecula.morphometry.connectivity import EULER_LUT, box_edge_correction, vertex_sum_box
from trabecula.morphometry.measure import METRICS, VOI_BOUNDS, MorphometryResult, wanted_metrics
from trabecula.morphometry.thickness import BORDERS, local_thickness, resolve_mode
from trabecula.volume import Volume

#: First halo (voxels along the finest axis) of the distance-maximum pass; doubled for a block whose own
#: maximum reaches it.
EDT_HALO = 24
#: Voxels added to the thickness halo beyond the largest sphere diameter (ridge test, clean-up neighbours).
THICKNESS_MARGIN = 4
#: Bytes per voxel of a block with its halo in the thickness pass (bool structure, float32 distances and map,
#: ridge lists, the VOI), used to choose the block size from the memory budget.
BYTES_PER_VOXEL = 24
#: Candidate block edges (voxels) for ``chunks="auto"``.
AUTO_EDGES = (512, 384, 320, 256, 192, 128, 96, 64)


@dataclass(frozen=True)
class Block:
    """One block: its own voxel index ranges ``lo``–``hi`` (z, y, x) in the image."""

    lo: tuple[int, int, int]
    hi: tuple[int, int, int]

    def ext(self, halo: Sequence[int], shape: Sequence[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The block grown by ``halo`` voxels per axis, clipped to the image."""
        lo = tuple(max(0, a - h) for a, h in zip(self.lo, halo, strict=True))
        hi = tuple(min(n, b + h) for b, h, n in zip(self.hi, halo, shape, strict=True))
        return lo, hi


def parse_chunks(text: Any, name: str = "--chunks") -> str | tuple[int, int, int]:
    """``"auto"`` or a block shape ``Z,Y,X`` (one number = a cube) in voxels."""
    if text is None or (isinstance(text, str) and text.strip().lower() == "auto"):
        return "auto"
    if isinstance(text, str):
        parts = [p for p in text.replace("x", ",").split(",") if p.strip()]
    else:
        parts = list(text) if isinstance(text, Sequence) else [text]
    try:
        vals = [int(str(p).strip()) for p in parts]
    except ValueError:
        raise ParameterError(name, f"use auto or Z,Y,X voxels per block, got {text!r}") from None
    if len(vals) == 1:
        vals = vals * 3
    if len(vals) != 3 or min(vals) < 8:
        raise ParameterError(name, f"use auto or three block sizes of at least 8 voxels, got {text!r}")
    return (vals[0], vals[1], vals[2])


def blocks_of(shape: Sequence[int], chunks: Sequence[int]) -> list[Block]:
    """The blocks (z fastest-changing last) tiling an image of ``shape`` with blocks of ``chunks``."""
    ranges = [[(a, min(a + c, n)) for a in range(0, n, c)] for n, c in zip(shape, chunks, strict=True)]
    return [Block((z[0], y[0], x[0]), (z[1], y[1], x[1])) for z in ranges[0] for y in ranges[1] for x in ranges[2]]


def auto_block_edge(halo: Sequence[int], workers: int, budget_bytes: float, shape: Sequence[int]) -> tuple[int, int, int]:
    """The largest cubic block (from :data:`AUTO_EDGES`) whose halo-grown block fits the memory budget shared by
    ``workers`` tasks at a time (and the caller); capped by the image."""
    per_task = budget_bytes / (workers + 1)
    fits = [e for e in AUTO_EDGES
            if np.prod([min(e, n) + 2 * h for n, h in zip(shape, halo, strict=True)], dtype=np.float64)
            * BYTES_PER_VOXEL <= per_task] or [AUTO_EDGES[-1]]
    # the largest that fits, but small enough that every worker gets blocks (two each) where the image allows
    for e in fits:
        edges = _balanced(shape, e)
        if workers == 1 or len(blocks_of(shape, edges)) >= 2 * workers or e == fits[-1]:
            return edges
    return _balanced(shape, fits[-1])


def _balanced(shape: Sequence[int], edge: int) -> tuple[int, int, int]:
    """Blocks of at most ``edge`` voxels that split each axis into equal parts (no thin remainder block, whose
    halo would cost more than its voxels and leave a worker idle)."""
    return tuple(int(math.ceil(n / math.ceil(n / min(edge, n)))) for n in shape)  # type: ignore[return-value]


def _read(src: Any, lo: Sequence[int], hi: Sequence[int]) -> np.ndarray:
    """The region ``lo``–``hi`` of an array, dask array or Zarr array as numpy (a lazy source reads only it)."""
    if src is None:
        return None  # type: ignore[return-value]
    part = src[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    if hasattr(part, "compute"):
        part = part.compute(scheduler="synchronous")
    return np.asarray(part)


def _bone_of(raw: np.ndarray, threshold: float | None) -> np.ndarray:
    return np.ascontiguousarray(raw != 0 if threshold is None else raw > threshold)


def _halo_voxels(mm: float, spacing: Sequence[float], extra: int = 0) -> tuple[int, int, int]:
    return tuple(int(math.ceil(mm / s - 1e-9)) + extra for s in spacing)  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------- pass 1

@dataclass
class _Pass1:
    n_bone: int  # bone voxels in the VOI among the owned
    n_voi: int
    chi: float  # vertex sum, unweighted, of (bone ∩ VOI) over the owned vertices
    delta: float  # vertex sum weighted by the VOI fraction (floating correction); 0 without VOI
    voi_lo: tuple[int, int, int] | None
    voi_hi: tuple[int, int, int] | None
    r_bone: float  # largest inscribed radius (mm) of the Tb.Th phase over the owned voxels
    r_marrow: float


def _owned_vertices(block: Block, ext_lo: Sequence[int], shape: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Local vertex index range of a block: vertex v sits between voxels v−1 and v; a block owns vertices
    ``lo ≤ v < hi`` and, at the image's far end, vertex ``n`` too."""
    vlo = np.array([b - e for b, e in zip(block.lo, ext_lo, strict=True)], np.int64)
    vhi = np.array([h - e + (1 if h == n else 0) for h, e, n in zip(block.hi, ext_lo, shape, strict=True)], np.int64)
    return vlo, vhi


def _phases(bone: np.ndarray, mask: np.ndarray | None, voi_bounds: str) -> tuple[np.ndarray, np.ndarray]:
    """The Tb.Th and Tb.Sp structures as :func:`.measure.measure` defines them."""
    th = bone if (mask is None or voi_bounds != "all") else bone & mask
    sp = ~bone if (mask is None or voi_bounds == "none") else ~bone & mask
    return th, sp


def _inner_pad(a: np.ndarray, ext_lo, ext_hi, shape, border: str, fill=False) -> tuple[np.ndarray, tuple]:
    """Pad ``a`` with one layer of background on its cut faces (and on the image's faces when
    ``border="background"``); returns the padded array and the slices of ``a`` inside it."""
    pads = []
    for lo, hi, n in zip(ext_lo, ext_hi, shape, strict=True):
        pads.append((1 if (lo > 0 or border == "background") else 0, 1 if (hi < n or border == "background") else 0))
    inner = tuple(slice(p[0], p[0] + s) for p, s in zip(pads, a.shape, strict=True))
    return np.pad(a, pads, constant_values=fill), inner


def _max_radius(phase: np.ndarray, own: tuple, ext_lo, ext_hi, shape, spacing, border: str) -> float:
    """Largest distance (mm) from an owned phase voxel to the background, the block's cut faces counting as
    background (an under-estimate where the halo is too thin; see :func:`_pass1`)."""
    import edt

    if not phase[own].any():
        return 0.0
    padded, inner = _inner_pad(phase, ext_lo, ext_hi, shape, border)
    d2 = edt.edtsq(padded, anisotropy=tuple(float(s) for s in spacing), black_border=False, parallel=1)
    d2 = d2[inner][own]
    m = float(d2.max())
    return math.sqrt(m) if math.isfinite(m) else math.inf


def _pass1(block: Block, src: Any, mask_src: Any, shape, spacing, threshold, voi_bounds: str, border: str,
           halo_mm: float) -> _Pass1:
    """Counts, Euler sums and the phases' largest radii of one block (exact radii: recomputed with a wider
    halo until the owned maximum is below the halo width)."""
    from trabecula.morphometry.connectivity import EULER_LUT as lut

    while True:
        halo = _halo_voxels(halo_mm, spacing)
        ext_lo, ext_hi = block.ext(halo, shape)
        bone = _bone_of(_read(src, ext_lo, ext_hi), threshold)
        mask = None if mask_src is None else np.ascontiguousarray(_read(mask_src, ext_lo, ext_hi) != 0)
        own = tuple(slice(b - e, h - e) for b, h, e in zip(block.lo, block.hi, ext_lo, strict=True))
        th, sp_phase = _phases(bone, mask, voi_bounds)
        r_th = _max_radius(th, own, ext_lo, ext_hi, shape, spacing, border)
        r_sp = _max_radius(sp_phase, own, ext_lo, ext_hi, shape, spacing, border)
        # exact when below the distance to the nearest cut face (or the whole image is in the block)
        whole = all(lo == 0 and hi == n for lo, hi, n in zip(ext_lo, ext_hi, shape, strict=True))
        if whole or max(r_th, r_sp) < halo_mm:
            break
        halo_mm *= 2.0
    vlo, vhi = _owned_vertices(block, ext_lo, shape)
    inside = bone if mask is None else bone & mask
    chi = vertex_sum_box(inside, inside, False, lut, vlo, vhi)
    delta = vertex_sum_box(bone, mask, True, lut, vlo, vhi) if mask is not None else 0.0
    m_own = None if mask is None else mask[own]
    n_bone = int(np.count_nonzero(inside[own]))
    n_voi = int(np.prod([h - lo for lo, h in zip(block.lo, block.hi, strict=True)])) if mask is None \
        else int(np.count_nonzero(m_own))
    voi_lo = voi_hi = None
    if m_own is not None and n_voi:
        idx = [np.nonzero(m_own.any(axis=tuple(a for a in range(3) if a != ax)))[0] for ax in range(3)]
        voi_lo = tuple(int(i[0]) + b for i, b in zip(idx, block.lo, strict=True))
        voi_hi = tuple(int(i[-1]) + 1 + b for i, b in zip(idx, block.lo, strict=True))
    return _Pass1(n_bone, n_voi, float(chi), float(delta), voi_lo, voi_hi, r_th, r_sp)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- pass 2

@dataclass
class _Moments:
    """Count, mean, M2 (sum of squared deviations) and max of the values of one block (Chan et al. 1979)."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    mx: float = -math.inf

    @classmethod
    def of(cls, v: np.ndarray) -> _Moments:
        if v.size == 0:
            return cls()
        v = v.astype(np.float64)
        mean = float(v.mean())
        return cls(int(v.size), mean, float(((v - mean) ** 2).sum()), float(v.max()))

    def __add__(self, o: _Moments) -> _Moments:
        if o.n == 0:
            return self
        if self.n == 0:
            return o
        n = self.n + o.n
        d = o.mean - self.mean
        return _Moments(n, self.mean + d * o.n / n, self.m2 + o.m2 + d * d * self.n * o.n / n, max(self.mx, o.mx))

    def stats(self) -> tuple[float, float, float]:
        if self.n == 0:
            return math.nan, math.nan, math.nan
        sd = math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else math.nan
        return self.mean, sd, self.mx


@dataclass
class _Pass2:
    th: _Moments | None
    sp: _Moments | None
    smi: Any
    mil: tuple[np.ndarray, np.ndarray] | None


def _block_thickness(phase: np.ndarray, mask: np.ndarray | None, own: tuple, ext_lo, ext_hi, shape, spacing,
                     mode: str, border: str, out: Any, block: Block) -> _Moments:
    """Local thickness of ``phase`` on the block with its halo; the owned voxels' moments (and the owned part
    of the map written to ``out``)."""
    padded, inner = _inner_pad(phase, ext_lo, ext_hi, shape, border)
    pmask = None if mask is None else _inner_pad(mask, ext_lo, ext_hi, shape, border)[0]
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore")
        m = local_thickness(padded, spacing, mode, pmask, border="continue")[inner][own]
    sel = phase[own] if mask is None else phase[own] & mask[own]
    if out is not None:
        out[block.lo[0]:block.hi[0], block.lo[1]:block.hi[1], block.lo[2]:block.hi[2]] = \
            np.where(sel, m, np.float32(0)).astype(np.float32)
    return _Moments.of(m[sel])


def _pass2(block: Block, src: Any, mask_src: Any, shape, spacing, threshold, voi_bounds: str, border: str, mode: str,
           halo: tuple[int, int, int], want: dict[str, bool], da_setup: Any, smi_eps: float | None,
           th_out: Any, sp_out: Any) -> _Pass2:
    """Thickness moments of both phases, SMI sums and MIL sums of one block."""
    ext_lo, ext_hi = block.ext(halo, shape)
    raw = _read(src, ext_lo, ext_hi)
    bone = _bone_of(raw, threshold)
    del raw
    mask = None if mask_src is None else np.ascontiguousarray(_read(mask_src, ext_lo, ext_hi) != 0)
    own = tuple(slice(b - e, h - e) for b, h, e in zip(block.lo, block.hi, ext_lo, strict=True))
    th_phase, sp_phase = _phases(bone, mask, voi_bounds)
    th = sp = None
    if want["tbth"]:
        th = _block_thickness(th_phase, mask, own, ext_lo, ext_hi, shape, spacing, mode, border, th_out, block)
    del th_phase
    if want["tbsp"]:
        sp = _block_thickness(sp_phase, mask, own, ext_lo, ext_hi, shape, spacing, mode, border, sp_out, block)
    del sp_phase
    smi = None
    if want["smi"]:
        smi = _block_smi(bone, mask, block, ext_lo, ext_hi, shape, spacing, smi_eps)
    mil = None
    if want["da"]:
        from trabecula.morphometry.anisotropy import mil_block_sums

        mil = mil_block_sums(bone, mask, ext_lo, block.lo, block.hi, shape, spacing, da_setup)
    return _Pass2(th, sp, smi, mil)


def _block_smi(bone, mask, block: Block, ext_lo, ext_hi, shape, spacing, eps):
    """The block's SMI partial sums on its own voxels (the halo trimmed to what SMI needs)."""
    from trabecula.morphometry import smi as S

    h = S.SMI_HALO
    lo = tuple(max(e, b - h) for e, b in zip(ext_lo, block.lo, strict=True))
    hi = tuple(min(e, b + h) for e, b in zip(ext_hi, block.hi, strict=True))
    cut = tuple(slice(a - e, b - e) for a, b, e in zip(lo, hi, ext_lo, strict=True))
    own = tuple(slice(b - a, c - a) for b, c, a in zip(block.lo, block.hi, lo, strict=True))
    # a side with less than SMI_HALO of context is the image's edge for smi_block_sums (as it is here)
    return S.smi_block_sums(np.ascontiguousarray(bone[cut]), None if mask is None else np.ascontiguousarray(mask[cut]),
                            own, spacing, eps)


# ---------------------------------------------------------------------------------------------- driver

def measure_chunked(
    vol: Volume,
    *,
    chunks: Any = "auto",
    voi: Volume | np.ndarray | None = None,
    threshold: float | None = None,
    mode: str | None = None,
    metrics: Sequence[str] = METRICS,
    border: str = "continue",
    voi_bounds: str = "spacing",
    seed: int = 0,
    maps: str | None = None,
    client: Any = None,
    force: bool = False,
) -> MorphometryResult:
    """Trabecular morphometry of ``vol`` block by block (see the module docstring); the same result fields as
    :func:`.measure.measure`.

    Parameters
    ----------
    vol : Volume
        ``binary`` (nonzero = bone), or grey/HU/attenuation with a numeric ``threshold`` (bone = value > it).
        Its data may be a dask array (a lazily read Zarr/OME-Zarr): only blocks are read.
    chunks : "auto" or (z, y, x)
        Block shape in voxels; ``auto`` chooses cubes whose halo-grown blocks fit the memory budget
        (:func:`trabecula.limits.memory_budget_bytes`) shared by the workers.
    voi : mask Volume/array on the same grid, optional
    maps : folder, optional
        Write the Tb.Th and Tb.Sp maps (mm) there as ``tbth.ome.zarr`` and ``tbsp.ome.zarr``, block by block.
    client : ``distributed.Client`` or None
        Where the blocks run (:func:`trabecula.cluster.executor`); None = one after the other in this process.
    """
    from trabecula.cluster import n_workers, run_tasks
    from trabecula.limits import memory_budget_bytes

    if not isinstance(vol, Volume):
        raise ParameterError("vol", "chunked morphometry takes a Volume (read_volume of a file, or Volume(...))")
    if vol.provenance.extra.get("spacing_assumed"):
        raise ParameterError("--input-spacing", f"{vol.provenance.source} has no spacing in its metadata; declare it")
    if len(vol.shape) != 3:
        raise ParameterError("vol", f"expected a 3-D volume, got shape {vol.shape}")
    if voi_bounds not in VOI_BOUNDS:
        raise ParameterError("voi_bounds", f"use one of {', '.join(VOI_BOUNDS)}, got {voi_bounds!r}")
    if border not in BORDERS:
        raise ParameterError("border", f"use one of {', '.join(BORDERS)}, got {border!r}")
    if vol.units != "binary" and threshold is None:
        raise ParameterError("--threshold", "chunk-by-chunk measuring of a grey/HU volume needs a numeric "
                                            "threshold (automatic ones need the whole histogram)")
    if vol.units == "binary":
        threshold = None
    mode = resolve_mode(mode)
    chunks = parse_chunks(chunks, "chunks")
    wanted = wanted_metrics(metrics)
    want = {k: k in wanted for k in ("tbth", "tbsp", "smi", "da", "connd")}
    shape = tuple(int(n) for n in vol.shape)
    spacing = tuple(float(s) for s in vol.spacing)
    src = vol.data
    mask_src = None
    if voi is not None:
        mask_src = voi.data if isinstance(voi, Volume) else voi
        if tuple(mask_src.shape) != shape:
            raise ParameterError("--voi", f"the VOI's shape {tuple(mask_src.shape)} differs from the volume's {shape}")
    res = MorphometryResult(mode=mode, border=border, spacing_mm=spacing, source=vol.provenance.source,
                            voi_bounds=voi_bounds, threshold=math.nan if threshold is None else float(threshold),
                            threshold_method="binary input" if threshold is None else "fixed")
    workers = n_workers(client)
    budget = memory_budget_bytes()
    shared = {"src": src, "mask_src": mask_src}

    # pass 1: counts, Euler sums, largest radii
    c1 = chunks if chunks != "auto" else auto_block_edge(_halo_voxels(EDT_HALO * min(spacing), spacing),
                                                         workers, budget, shape)
    blocks1 = blocks_of(shape, c1)
    halo_mm = EDT_HALO * min(spacing)
    p1 = run_tasks(_pass1_task, [(b,) for b in blocks1], client, "blocks: counts, Euler, distances",
                   shared={**shared, "shape": shape, "spacing": spacing, "threshold": threshold,
                           "voi_bounds": voi_bounds, "border": border, "halo_mm": halo_mm})
    n_bone = sum(p.n_bone for p in p1)
    n_voi = sum(p.n_voi for p in p1)
    if n_voi == 0:
        raise ParameterError("--voi", "the VOI is empty")
    vvox = float(np.prod(spacing))
    res.bv_mm3, res.bv_tv = n_bone * vvox, n_bone / n_voi
    res.voi_volume_mm3 = n_voi * vvox
    res.voi = "whole volume" if mask_src is None else "mask"
    no_bone, all_bone = n_bone == 0, n_bone == n_voi
    if no_bone:
        res.warnings.append("no bone in the VOI: Tb.Th, Tb.N, Conn.D, SMI and DA are undefined (NaN)")
    if all_bone:
        res.warnings.append("the VOI is all bone: Tb.Sp, Tb.N, Conn.D, SMI and DA are undefined (NaN)")
    voi_box = _voi_box(p1, shape, mask_src is None)
    if want["connd"] and not (no_bone or all_bone):
        _combine_connectivity(p1, src, mask_src, threshold, voi_box, n_voi, spacing, res)

    # pass 2: thickness, SMI, DA
    r_max = max([p.r_bone for p in p1] + [p.r_marrow for p in p1] + [0.0])
    if not math.isfinite(r_max):
        r_max = float(max(n * s for n, s in zip(shape, spacing, strict=True)))
    halo2 = _halo_voxels(2.0 * r_max, spacing, THICKNESS_MARGIN)
    if want["smi"]:
        from trabecula.morphometry.smi import SMI_HALO

        halo2 = tuple(max(h, SMI_HALO) for h in halo2)
    c2 = chunks if chunks != "auto" else auto_block_edge(halo2, workers, budget, shape)
    blocks2 = blocks_of(shape, c2)
    want2 = {"tbth": want["tbth"] and not no_bone, "tbsp": want["tbsp"] and not all_bone,
             "smi": want["smi"] and not (no_bone or all_bone), "da": want["da"] and not (no_bone or all_bone)}
    da_setup = None
    if want2["da"]:
        from trabecula.morphometry.anisotropy import mil_setup

        da_setup = mil_setup(voi_box, spacing, seed=seed)
    th_out = sp_out = None
    map_paths = None
    if maps is not None and (want2["tbth"] or want2["tbsp"]):
        th_out, sp_out, map_paths = _create_maps(vol, maps, c2, want2, force)
    if any(want2.values()):
        p2 = run_tasks(_pass2_task, [(b,) for b in blocks2], client, "blocks: thickness, SMI, DA",
                       shared={**shared, "shape": shape, "spacing": spacing, "threshold": threshold,
                               "voi_bounds": voi_bounds, "border": border, "mode": mode, "halo": halo2,
                               "want": want2, "da_setup": da_setup, "smi_eps": None,
                               "th_out": th_out, "sp_out": sp_out})
        _combine_pass2(p2, want2, spacing, da_setup, res)
    if map_paths is not None:
        _finish_maps(map_paths)
        res.warnings.append(f"maps written block by block: {', '.join(str(p) for p in map_paths)}")
    from trabecula.morphometry.measure import _resolution_honesty, _trabecular_number

    if "tbn" in wanted:
        _trabecular_number(res)
    _resolution_honesty(vol, None, res)
    res.segmentation_steps = [f"measured in {len(blocks2) if any(want2.values()) else len(blocks1)} blocks "
                              f"of {'×'.join(map(str, c2 if any(want2.values()) else c1))} voxels "
                              f"(halo {'×'.join(map(str, halo2))})"]
    return res


def _pass1_task(block, *, src, mask_src, shape, spacing, threshold, voi_bounds, border, halo_mm):
    return _pass1(block, src, mask_src, shape, spacing, threshold, voi_bounds, border, halo_mm)


def _pass2_task(block, *, src, mask_src, shape, spacing, threshold, voi_bounds, border, mode, halo, want, da_setup,
                smi_eps, th_out, sp_out):
    return _pass2(block, src, mask_src, shape, spacing, threshold, voi_bounds, border, mode, halo, want, da_setup,
                  smi_eps, th_out, sp_out)


def _voi_box(p1: list[_Pass1], shape, whole: bool) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """Index bounding box (lo, hi) of the VOI from the blocks' boxes."""
    if whole:
        return (0, 0, 0), tuple(shape)  # type: ignore[return-value]
    los = [p.voi_lo for p in p1 if p.voi_lo is not None]
    his = [p.voi_hi for p in p1 if p.voi_hi is not None]
    return tuple(int(min(v[a] for v in los)) for a in range(3)), tuple(int(max(v[a] for v in his)) for a in range(3))  # type: ignore[return-value]


def _combine_connectivity(p1, src, mask_src, threshold, voi_box, n_voi, spacing, res: MorphometryResult) -> None:
    """χ, Δχ and Conn.D as :func:`.connectivity.connectivity` (box correction for the whole image or a box VOI,
    floating otherwise)."""
    chi = sum(p.chi for p in p1)
    lo, hi = voi_box
    box_voxels = int(np.prod([b - a for a, b in zip(lo, hi, strict=True)]))
    vvox = float(np.prod(spacing))
    if mask_src is None or box_voxels == n_voi:
        delta = chi - _box_faces_correction(src, threshold, lo, hi)
        res.conn_correction = "box (Odgaard–Gundersen, as BoneJ)"
    else:
        delta = sum(p.delta for p in p1)
        res.conn_correction = "floating (VOI-weighted vertex contributions)"
    conn = 1.0 - delta
    res.euler_char, res.delta_chi = float(round(chi)), float(delta)
    res.conn_d_per_mm3 = conn / (n_voi * vvox)
    if conn < 0:
        res.warnings.append(f"connectivity 1 − Δχ = {conn:.3g} is negative (several particles or enclosed cavities "
                            "in the VOI); Conn.D is reported as computed")


def _box_faces_correction(src, threshold, lo, hi) -> float:
    """:func:`.connectivity.box_edge_correction` of the box ``lo``–``hi`` read face by face (six planes)."""
    faces = []
    for ax in range(3):
        for at in (lo[ax], hi[ax] - 1):
            a, b = list(lo), list(hi)
            a[ax], b[ax] = at, at + 1
            faces.append((ax, _bone_of(_read(src, a, b), threshold)))
    return _faces_correction(faces, lo, hi)


def _faces_correction(faces, lo, hi) -> float:
    """``½ Σ χ(face) − ¼ Σ χ(edge) + ⅛ Σ corners`` (as :func:`.connectivity.box_edge_correction`) from the box's
    six faces ``(axis, plane)`` in the order z-low, z-high, y-low, y-high, x-low, x-high: the 12 edges and 8
    corners are read off the z and y faces."""
    from trabecula.morphometry.connectivity import _euler2d, _runs

    planes = [(ax, np.squeeze(f, axis=ax)) for ax, f in faces]
    chi_f = sum(_euler2d(p) for _, p in planes)
    z_faces = [p for ax, p in planes if ax == 0]
    y_faces = [p for ax, p in planes if ax == 1]
    edge_lines = ([zf[i, :] for zf in z_faces for i in (0, -1)]      # along x at the z and y ends
                  + [zf[:, j] for zf in z_faces for j in (0, -1)]    # along y at the z and x ends
                  + [yf[:, j] for yf in y_faces for j in (0, -1)])   # along z at the y and x ends
    chi_e = sum(_runs(e) for e in edge_lines)
    chi_c = sum(int(zf[i, j]) for zf in z_faces for i in (0, -1) for j in (0, -1))
    return chi_f / 2.0 - chi_e / 4.0 + chi_c / 8.0


def _combine_pass2(p2: list[_Pass2], want: dict[str, bool], spacing, da_setup, res: MorphometryResult) -> None:
    if want["tbth"]:
        m = sum((p.th for p in p2), _Moments())
        res.tb_th_mm, res.tb_th_sd_mm, res.tb_th_max_mm = m.stats()
    if want["tbsp"]:
        m = sum((p.sp for p in p2), _Moments())
        res.tb_sp_mm, res.tb_sp_sd_mm, res.tb_sp_max_mm = m.stats()
    for label, v in (("Tb.Th", res.tb_th_mm), ("Tb.Sp", res.tb_sp_mm)):
        if want["tbth" if label == "Tb.Th" else "tbsp"] and not math.isfinite(v):
            res.warnings.append(f"{label} undefined (NaN)")
    if want["smi"]:
        from trabecula.morphometry.smi import combine_smi_sums

        sr = combine_smi_sums([p.smi for p in p2], spacing)
        res.smi, res.smi_concave_fraction, res.bs_mm2 = sr.smi, sr.concave_fraction, sr.surface_mm2
        if not math.isfinite(sr.smi):
            res.warnings.append("SMI undefined: no bone surface inside the VOI")
    if want["da"]:
        from trabecula.morphometry.anisotropy import anisotropy_from_mil

        length = np.sum([p.mil[0] for p in p2], axis=0)
        hits = np.sum([p.mil[1] for p in p2], axis=0)
        ar = anisotropy_from_mil(length, hits, da_setup)
        res.da, res.da_scanco, res.main_direction = ar.da, ar.da_scanco, ar.main_direction
        if not math.isfinite(ar.da):
            res.warnings.append("DA undefined: no bone/marrow intercepts in the VOI, or the MIL ellipsoid fit failed")


def _create_maps(vol: Volume, folder: str, chunks, want, force: bool):
    """Empty OME-Zarr maps (float32 mm) for the thickness pass to fill block by block."""
    from pathlib import Path

    from trabecula.io.omezarr import create_ome_zarr

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    arrays, paths = [], []
    for key in ("tbth", "tbsp"):
        if not want[key]:
            arrays.append(None)
            continue
        p = out / f"{key}.ome.zarr"
        if p.exists() and not force:
            raise ParameterError("--maps", f"{p} exists (use --force to overwrite)")
        arrays.append(create_ome_zarr(p, vol.shape, np.float32, vol.spacing, vol.origin, "mm", chunks,
                                      meta={"map": key, "source": vol.provenance.source}))
        paths.append(p)
    return arrays[0], arrays[1], paths


def _finish_maps(paths) -> None:
    from trabecula.io.omezarr import finish_ome_zarr

    for p in paths:
        finish_ome_zarr(p)


__all__ = ["measure_chunked", "parse_chunks", "blocks_of", "Block", "EULER_LUT", "box_edge_correction"]
