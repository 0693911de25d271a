"""Model-free local thickness (Hildebrand & Rüegsegger 1997): Tb.Th of bone, Tb.Sp of marrow.

The local thickness at a point of a structure is the diameter of the largest sphere that contains the point
and lies entirely inside the structure. On a voxel grid it is computed in four steps:

1. **Distance transform** — squared Euclidean distance from each foreground voxel centre to the nearest
   background voxel centre, in mm with the real (possibly anisotropic) spacing (the ``edt`` package,
   Felzenszwalb & Huttenlocher's separable algorithm, multi-threaded).
2. **Distance ridge** — the centres of balls not contained in a neighbour's ball (Dougherty & Kunzelmann's
   grid-ball template test, as in BoneJ/Fiji's ``Distance_Ridge``, generalised to anisotropic voxels).
3. **Sphere painting** — each voxel takes the largest value of the ridge balls that contain it.
4. BoneJ mode only: the surface clean-up and the mask of Fiji's ``Clean_Up_Local_Thickness`` and BoneJ.

Painting is where the time goes (a ball of radius r covers ~4r³ voxels). trabecula paints each ball as x-runs
of its (z, y) rows, largest value first, and skips in each row the part covered by an already-painted
neighbouring ridge ball of at least the same value (its voxels are final): a ball then costs ~r² row
computations plus a thin crescent of voxels instead of r³. Threads own whole z-slabs of the output, so the
parallel painting is race-free. Memory: the ``uint8``/``bool`` input, one ``float32`` volume (the distance
map, reused for the thickness map), a ``uint8`` ridge flag and ~30 bytes per ridge voxel.

Three modes (the convention is stated with every result):

``"plain"`` (the default)
    Hildebrand & Rüegsegger's definition on voxel centres with nothing added: ball of centre ``c`` = voxels
    with ``|v - c| <= D(c)``, value ``2·D(c)``, where ``D`` is the centre-to-centre distance to the nearest
    background voxel. This is what an exact brute-force evaluation of the definition gives (porespy's
    distance-transform method run over every distinct distance value, ``smooth=False``, agrees with it to
    1e-7: ``bench/bench_exact_reference.py``). It is the default because it is the closest of the three to
    the true thickness of real, randomly oriented structure: a trabecular (Voronoi-foam) phantom digitised
    at 17, 8 and 4 voxels per strut reads +0.1 %, +1.5 % and +7.4 % against the same structure measured on
    a converged fine grid (``bench/bench_thickness_accuracy.py``). Its known biases, from the same
    benchmark: lattice-aligned odd plates read one voxel thick (``t + 1``; even ``t`` read ``t``),
    randomly oriented plates read +3 to +14 % (4–12 voxels, away from the image border), spheres −9 to
    −12 % (6–12 voxels across), rods −5 to 0 %. No estimator on voxel centres is exact on both odd and even
    aligned plates from the distance alone (``docs/morphometry.md``, "Why no mode is within 3 %").
``"bonej"``
    BoneJ's Thickness exactly (Fiji LocalThickness: EDT_S1D → Distance_Ridge → Local_Thickness_Parallel →
    Clean_Up_Local_Thickness → mask): ``"plain"`` followed by BoneJ's surface clean-up (surface voxels take
    the mean of their inner neighbours). A plate of ``t`` voxels measures ``t`` for even ``t`` and ``t + 1``
    for odd ``t``. With anisotropic voxels the same conventions are applied with distances in mm (BoneJ
    itself ignores the anisotropy with a warning). For results comparable with published BoneJ numbers.
``"subvoxel"``
    A sub-voxel estimate tuned to lattice-aligned shapes: each ridge radius is refined (``R``: a tent fit of
    the distance along 13 lattice directions; on digitally flat faces the boundary is placed half-way
    between the last foreground and first background layer), the value is ``2·R``, and the ball holds the
    voxels with ``|v - c| < max(D(c), R(c) - ½)``: the open empty ball, plus the voxels whose centre lies
    at least half a voxel inside the refined ball. Plates of ``t`` voxels along a lattice axis measure
    ``t``; lattice-aligned rods and spheres 8 voxels and more across are within 3 %. **It reads high on
    randomly oriented structure** (the tent fit adds noise-driven increments where nothing is aligned):
    oriented rods +4 to +11 %, oriented plates +10 to +31 %, the foam phantom +5 %, +12.5 %, +28 % at 17, 8
    and 4 voxels per strut. Use it for lattice-aligned objects (test objects, machined parts), not bone.
    See ``docs/morphometry.md`` for every measured number.

Image border (``border``): ``"continue"`` (default, and BoneJ's convention: nothing outside the image is
background, the structure is taken to continue — right for regions cut out of larger bone) or
``"background"`` (the image is surrounded by background, as for an isolated object).

References
----------
Hildebrand T, Rüegsegger P (1997) A new method for the model-independent assessment of thickness in
three-dimensional images. J Microsc 185:67–75.
Dougherty R, Kunzelmann K-H (2007) Computing local thickness of 3D structures with ImageJ. Microsc
Microanal 13(S02):1678–1679.
Felzenszwalb P, Huttenlocher D (2012) Distance transforms of sampled functions. Theory Comput 8:415–428.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from trabecula.errors import ParameterError
from trabecula.morphometry import _lt_kernels as K
from trabecula.volume import as_spacing

MODES = ("plain", "bonej", "subvoxel")
BORDERS = ("continue", "background")
_TABLE_RADIUS = 48.0  # grid-ball template radius (units); beyond it the (sound) continuous test is used


@dataclass
class ThicknessStats:
    """Mean, SD (n − 1), max (mm) and voxel count of a local-thickness map over the selected voxels."""

    mean: float
    sd: float
    max: float
    n: int


def resolve_mode(mode: str | None, bonej: bool = False, name: str = "mode") -> str:
    """The local-thickness mode from ``mode`` and the ``bonej`` shorthand: ``"plain"`` when neither is given;
    a :class:`ParameterError` naming ``name`` for an unknown mode or one that contradicts ``bonej``."""
    if mode is None:
        return "bonej" if bonej else "plain"
    if mode not in MODES:
        raise ParameterError(name, f"unknown local-thickness mode {mode!r}; use one of {', '.join(MODES)}")
    if bonej and mode != "bonej":
        raise ParameterError(name, f"bonej contradicts mode {mode!r}")
    return mode


def _as_structure(binary: np.ndarray, name: str = "binary") -> np.ndarray:
    a = np.asarray(binary)
    if a.ndim != 3:
        raise ParameterError(name, f"expected a 3-D array (z, y, x), got shape {a.shape}")
    if a.size == 0:
        raise ParameterError(name, "empty array")
    if a.dtype == bool:
        return np.ascontiguousarray(a)
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise ParameterError(name, f"expected a numeric or boolean array, got {a.dtype}")
    return np.ascontiguousarray(a != 0)


def _threads() -> int:
    import numba

    return int(numba.get_num_threads())


def local_thickness(
    binary: np.ndarray,
    spacing: float | Sequence[float] = (1.0, 1.0, 1.0),
    mode: str = "plain",
    mask: np.ndarray | None = None,
    *,
    border: str = "continue",
    progress: Callable[[str, float], None] | None = None,
) -> np.ndarray:
    """Local thickness map of a binary structure: the diameter (mm) of the largest inscribed sphere at each voxel.

    Parameters
    ----------
    binary : ndarray (z, y, x)
        The structure: nonzero (or True) voxels. For Tb.Sp pass the marrow (``~bone``).
    spacing : float or (dz, dy, dx)
        Voxel size in mm; anisotropic spacing is handled exactly (distances and balls in mm).
    mode : {"plain", "bonej", "subvoxel"}
        ``"plain"`` (default) is the definition on voxel centres, the closest to true thickness on real,
        randomly oriented structure; ``"bonej"`` reproduces BoneJ's Thickness (``"plain"`` plus its surface
        clean-up); ``"subvoxel"`` refines radii below the voxel, exact on lattice-aligned plates but high on
        oriented structure. See the module docstring.
    mask : bool ndarray, optional
        Voxels where the thickness is wanted (a VOI). The structure outside the mask still bounds the spheres
        (it continues beyond the VOI); the map is 0 outside the mask.
    border : {"continue", "background"}
        How the image border is treated (see the module docstring). Default ``"continue"`` as in BoneJ.
    progress : callable(stage, fraction), optional
        Called as the work advances (the CLI draws a progress bar with it).

    Returns
    -------
    float32 ndarray, same shape: local thickness (a **diameter**, in mm) on the structure, 0 elsewhere.

    Examples
    --------
    >>> import numpy as np
    >>> plate = np.zeros((12, 20, 20), bool); plate[3:9] = True          # 6 voxels thick
    >>> float(local_thickness(plate, 1.0)[plate].mean())                  # centre to centre
    6.0
    >>> plate[9] = True                                                    # now 7 voxels: odd plates read t + 1
    >>> float(local_thickness(plate, 1.0)[plate].mean()), float(local_thickness(plate, 1.0, mode="subvoxel")[plate].mean())
    (8.0, 7.0)
    """
    if mode not in MODES:
        raise ParameterError("mode", f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    if border not in BORDERS:
        raise ParameterError("border", f"unknown border treatment {border!r}; use one of {', '.join(BORDERS)}")
    fg = _as_structure(binary)
    sp = np.asarray(as_spacing(spacing))
    mask_arr = _voi_mask(mask, fg.shape)
    report = progress or (lambda stage, frac: None)
    return _thickness_map(fg, sp, mode, mask_arr, border, report)


def _voi_mask(mask: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
    """The VOI as a contiguous bool array of the structure's shape (None = no VOI)."""
    if mask is None:
        return None
    mask_arr = np.asarray(mask)
    if mask_arr.shape != shape:
        raise ParameterError("mask", f"shape {mask_arr.shape} differs from the structure's {shape}")
    return np.ascontiguousarray(mask_arr != 0) if mask_arr.dtype != bool else np.ascontiguousarray(mask_arr)


def _thickness_map(fg: np.ndarray, sp: np.ndarray, mode: str, mask: np.ndarray | None, border: str,
                   report: Callable[[str, float], None]) -> np.ndarray:
    """:func:`local_thickness` on checked inputs: distance transform, ridge, sphere painting, clean-up."""
    import edt

    use_mask = mask is not None
    mask_arr = mask if use_mask else np.zeros((1, 1, 1), bool)
    unit = float(sp.min())
    rel = sp / unit
    closed = mode in ("bonej", "plain")
    subvoxel = mode == "subvoxel"

    report("distance transform", 0.0)
    d2 = edt.edtsq(fg, anisotropy=tuple(rel), black_border=(border == "background"), parallel=_threads())
    if d2.dtype != np.float32:
        d2 = d2.astype(np.float32)
    if not np.isfinite(d2.max(initial=0.0)):
        warnings.warn("local thickness: the structure fills the whole image (no background and border='continue'); "
                      "thickness undefined", stacklevel=3)
        return np.where(fg, np.float32(np.nan), np.float32(0.0)).astype(np.float32)
    # with a VOI, work only on the box of voxels whose ball can reach the VOI (exact: every ball touching the
    # VOI is centred in it; balls cut by the box edge are still valid inscribed balls)
    full_shape = fg.shape
    reli = np.rint(rel).astype(np.int64)
    integer = bool(np.all(np.abs(rel - reli) < 1e-9) and reli.max() <= 64)
    box = None
    if use_mask:
        box = _reach_box(d2, mask_arr, rel, closed, K.widen_bound(rel) if subvoxel else 0)
        if box is None:  # no structure ball reaches the VOI
            return np.zeros(full_shape, np.float32)
    if subvoxel:
        vals = _refined_radii(d2, fg, rel, box, border)
        report("refined radii", 0.18)
    else:
        vals = np.zeros((1, 1, 1), np.float32)
    if box is not None and box != tuple(slice(0, n) for n in full_shape):
        d2 = np.ascontiguousarray(d2[box])
        fg = np.ascontiguousarray(fg[box])
        mask_arr = np.ascontiguousarray(mask_arr[box])
    else:
        box = None
    if subvoxel:  # from here on d2 holds the membership radius² of each ball (see _lt_kernels)
        K.widen_membership(d2, vals, K.WIDEN_MARGIN, integer)
    ridge = _ridge(d2, vals, rel, closed, subvoxel, integer, fg.shape, report)
    del vals
    report("ridge gathered", 0.25)
    buf = d2  # reuse the distance buffer: first for parent selection, then as the map
    del d2
    _paint_balls(buf, *ridge, rel, reli, integer, closed, report)
    del ridge
    if mode == "bonej":
        report("surface clean-up", 0.92)
        K.bonej_cleanup(buf)
    K.finish_map(buf, fg, mask_arr, use_mask, 2.0 * unit)
    report("done", 1.0)
    if box is not None:
        full = np.zeros(full_shape, np.float32)
        full[box] = buf
        return full
    return buf


def _refined_radii(d2: np.ndarray, fg: np.ndarray, rel: np.ndarray, box, border: str) -> np.ndarray:
    """Subvoxel mode: the refined radius ``R`` of every voxel of ``box`` (the whole image when None)."""
    dirs, dlen2, dgap, dvecs, dnvec = K.flat_tables(rel)
    shape = fg.shape if box is None else tuple(s.stop - s.start for s in box)
    vals = np.empty(shape, np.float32)
    o = (0, 0, 0) if box is None else tuple(s.start for s in box)
    K.refined_box(d2, fg, o[0], o[1], o[2], rel, K.HALF13, dirs, dlen2, dgap, dvecs, dnvec,
                  border == "background", vals)
    return vals


def _ridge(d2: np.ndarray, vals: np.ndarray, rel: np.ndarray, closed: bool, subvoxel: bool, integer: bool,
           shape: tuple[int, ...], report: Callable[[str, float], None]) -> tuple[np.ndarray, ...]:
    """The distance ridge (balls not contained in a neighbour's ball), gathered slice by slice:
    ``(z, y, x, membership radius², value)`` per ridge ball. ``d2`` is left holding, read as int32, the
    ridge-list index at each ridge voxel and -1 elsewhere."""
    dmax = float(np.sqrt(d2.max(initial=0.0)))
    tab_r = min(_TABLE_RADIUS, dmax + 2.0)
    norms, tmax = K.containment_table(rel, tab_r)
    tab_r2 = tab_r * tab_r  # every lattice norm up to this is in the table
    if integer:
        tdir = K.direct_table(norms, tmax, int(tab_r2), closed)
    else:
        tdir = np.zeros((7, 1))
    counts = np.empty(d2.shape[0], np.int64)
    K.ridge_mark(d2, vals, rel, norms, tmax, tdir, tab_r2, closed, subvoxel, counts)
    report("ridge", 0.2)
    offsets = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    n = int(offsets[-1])
    zc = np.empty(n, np.int16 if max(shape) < 32768 else np.int32)
    yc = np.empty(n, zc.dtype)
    xc = np.empty(n, zc.dtype)
    m2 = np.empty(n, np.float32)
    val = np.empty(n, np.float32)
    K.gather_ridge(d2, vals, subvoxel, offsets, zc, yc, xc, m2, val)
    return zc, yc, xc, m2, val


def _paint_balls(buf: np.ndarray, zc: np.ndarray, yc: np.ndarray, xc: np.ndarray, m2: np.ndarray, val: np.ndarray,
                 rel: np.ndarray, reli: np.ndarray, integer: bool, closed: bool,
                 report: Callable[[str, float], None]) -> None:
    """Paint the ridge balls into ``buf`` (the distance buffer, holding the ridge indices; overwritten), largest
    value first, each voxel keeping the largest value of the balls that contain it; threads own whole z-slabs."""
    n = len(zc)
    keys, order = K.painting_order(val, 65536)
    ibuf = buf.view(np.int32)  # the ridge-list indices left by K.gather_ridge
    parent = np.empty(n, np.int32)
    K.choose_parents(ibuf, zc, yc, xc, m2, val, keys, parent)
    del ibuf
    del keys
    report("parents", 0.28)
    buf.fill(0.0)
    nz = buf.shape[0]
    nthr = max(1, _threads())
    slab = int(max(4, min(32, nz // (8 * nthr) or 4)))
    ptr, idx = K.slab_lists(order, zc, m2, float(rel[0]), nz, slab)
    del order
    nslab = len(ptr) - 1
    report("slab lists", 0.3)
    # paint in batches (for the progress bar); within a batch slabs are interleaved across threads
    nbatch = min(10, nslab)
    bounds = np.linspace(0, nslab, nbatch + 1).astype(int)
    if integer:
        isq = _integer_sqrt_table(int(float(m2.max()) + 1.5) if n else 1)
    for b in range(nbatch):
        sl = np.arange(bounds[b], bounds[b + 1], dtype=np.int64)
        sl = np.concatenate([sl[i::nthr] for i in range(nthr)])
        if integer:
            K.paint_int(buf, zc, yc, xc, m2, val, parent, ptr, idx, sl, slab, reli, isq // reli[0], isq // reli[1],
                        isq // reli[2], closed)
        else:
            K.paint_float(buf, zc, yc, xc, m2, val, parent, ptr, idx, sl, slab, rel, closed)
        report("sphere painting", 0.3 + 0.6 * (b + 1) / nbatch)


def _integer_sqrt_table(n: int) -> np.ndarray:
    """``isq[k] = floor(sqrt(k))`` for ``k < n``, exact (``isq[k]² <= k < (isq[k] + 1)²``)."""
    isq = np.floor(np.sqrt(np.arange(n, dtype=np.float64))).astype(np.int64)
    # guard against floating-point sqrt for large n
    kk = np.arange(len(isq), dtype=np.int64)
    isq -= (isq * isq > kk)
    isq += ((isq + 1) * (isq + 1) <= kk)
    return isq


def _reach_box(d2: np.ndarray, mask: np.ndarray, rel: np.ndarray, closed: bool, widen: int = 0):
    """Index box (slices) holding the VOI and every voxel whose ball reaches the VOI's bounding box.

    ``widen`` (voxels): how far a ball may reach beyond its distance ``D`` (subvoxel mode's widened
    membership); the VOI box is grown by it first, so every ball that can reach the VOI is still found."""
    lo, hi = [], []
    for ax in range(3):
        nz = np.nonzero(mask.any(axis=tuple(a for a in range(3) if a != ax)))[0]
        if len(nz) == 0:
            return None
        # BoneJ mode: the surface clean-up of a voxel reads its neighbours and their neighbours: widen by 2
        pad = (2 if closed else 0) + widen
        lo.append(max(0, int(nz[0]) - pad))
        hi.append(min(mask.shape[ax] - 1, int(nz[-1]) + pad))
    ext = K.reach_extent(d2, np.array(lo, np.int64), np.array(hi, np.int64), rel, closed)
    zs = np.nonzero(ext[:, 1] >= 0)[0]
    if len(zs) == 0:
        return None
    z0, z1 = min(lo[0], int(zs[0])), max(hi[0], int(zs[-1]))
    y0, y1 = min(lo[1], int(ext[zs, 0].min())), max(hi[1], int(ext[zs, 1].max()))
    x0, x1 = min(lo[2], int(ext[zs, 2].min())), max(hi[2], int(ext[zs, 3].max()))
    return (slice(z0, z1 + 1), slice(y0, y1 + 1), slice(x0, x1 + 1))


def warm_cache(all_modes: bool = True) -> None:
    """Compile the engine's numba kernels into numba's on-disk cache (``cache=True``) on tiny inputs, so that
    the first real run only loads them (compiling them all costs tens of CPU seconds once; loading, well under
    a second). ``./dev`` calls it after setting up ``.venv``. ``all_modes=False``: only what ``measure``'s
    default run needs (plain mode, integer spacing ratios, no VOI); else every mode, a VOI and non-integer
    spacing ratios too. numba keys the cache by the content of the kernels' source file
    (``_lt_kernels.py``): editing it recompiles on next use, touching it does not."""
    b = np.zeros((12, 12, 12), bool)
    b[2:9, 3:10, 4:8] = True
    runs = [("plain", 1.0, None)]
    if all_modes:
        voi = np.zeros(b.shape, bool)
        voi[3:8, 3:8, 3:8] = True
        runs += [("bonej", 1.0, voi), ("subvoxel", 1.0, None), ("plain", (1.5, 1.0, 1.0), voi)]
    for mode, spacing, voi in runs:
        for phase in (b, ~b):
            thickness_stats(local_thickness(phase, spacing, mode, voi), phase, voi)


def thickness_stats(thickness_map: np.ndarray, structure: np.ndarray, mask: np.ndarray | None = None) -> ThicknessStats:
    """Mean, SD (n − 1) and max of a local-thickness map over the structure's voxels (inside ``mask``).

    NaN statistics (and ``n = 0``) when no voxel is selected; SD is NaN for a single voxel.
    """
    sel = _as_structure(structure, "structure")
    m = np.ascontiguousarray(thickness_map, dtype=np.float32)
    if m.shape != sel.shape:
        raise ParameterError("thickness_map", f"shape {m.shape} differs from the structure's {sel.shape}")
    if mask is None:
        n, mean, sd, mx = K.masked_stats(m, sel, np.zeros((1, 1, 1), bool), False)
    else:
        mk = np.ascontiguousarray(np.asarray(mask) != 0)
        n, mean, sd, mx = K.masked_stats(m, sel, mk, True)
    return ThicknessStats(float(mean), float(sd), float(mx), int(n))
