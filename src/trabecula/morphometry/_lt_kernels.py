"""Numba kernels of the local-thickness engine (see :mod:`trabecula.morphometry.thickness`).

All geometry here is in *units* of the smallest voxel spacing: ``rel = spacing / min(spacing)`` (so an
isotropic volume works in voxels and squared distances are exact integers). ``d2`` is the squared
Euclidean distance from a foreground voxel centre to the nearest background voxel centre, in units².

Ball membership, used for painting and for the ridge test:

* ``closed`` (BoneJ): voxel ``v`` belongs to the ball of ``c`` when ``|v - c|² <= d2(c)`` — this includes
  the background voxels at exactly that distance (BoneJ paints them and masks them away later);
* open (subvoxel mode): ``|v - c|² < M(c)`` with ``M(c) = max(d2(c), (R(c) - ½)²)``, ``R`` the refined radius
  (:func:`widen_membership`): the foreground voxels inside the empty ball, plus those whose centre lies at
  least half a voxel inside the refined ball. ``d2`` holds ``M`` from then on.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

FLAT_EXTENT = 1  # a face is 'digitally flat' when flat over ±FLAT_EXTENT voxels around the contact
EPS = 1e-5  # tolerance on squared distances in units² (exact data are integers or sums of squares)

# the 26 neighbour offsets, and the 13 with a positive first non-zero component (one of each +/- pair)
NEIGH26 = np.array(
    [(dz, dy, dx) for dz in (-1, 0, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dz, dy, dx) != (0, 0, 0)],
    dtype=np.int64,
)
HALF13 = np.array([o for o in NEIGH26.tolist() if tuple(o) > (0, 0, 0)], dtype=np.int64)
# the 26 neighbours, faces first, then edges, then corners: the ridge test stops at the first neighbour whose ball
# contains the voxel's, most often a face neighbour (the order does not change which voxels are on the ridge)
NEIGH26_NEAR = np.array(sorted(NEIGH26.tolist(), key=lambda o: (o[0] ** 2 + o[1] ** 2 + o[2] ** 2, o)),
                        dtype=np.int64)


def in_plane_vectors(m: tuple[int, int, int]) -> np.ndarray:
    """The shortest lattice vectors t (components in -1..1) orthogonal to the lattice direction ``m``."""
    cands = [t for t in NEIGH26.tolist() if sum(a * b for a, b in zip(t, m, strict=True)) == 0]
    n2 = min(sum(a * a for a in t) for t in cands)
    return np.array([t for t in cands if sum(a * a for a in t) == n2], dtype=np.int64)


def flat_tables(rel: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Directions (26), their squared lengths in units², half lattice-plane spacing (0 = not used) and in-plane
    vectors (padded to 6 per direction, count in column 0 of ``nvec``) for the flat-face test."""
    dirs = NEIGH26.copy()
    order = np.argsort([sum((m[a] * rel[a]) ** 2 for a in range(3)) for m in dirs.tolist()], kind="stable")
    dirs = np.ascontiguousarray(dirs[order])
    len2 = np.zeros(26)
    gap = np.zeros(26)
    vecs = np.zeros((26, 6, 3), np.int64)
    nvec = np.zeros(26, np.int64)
    for i, m in enumerate(dirs.tolist()):
        nz = [rel[a] for a in range(3) if m[a] != 0]
        len2[i] = sum((m[a] * rel[a]) ** 2 for a in range(3))
        if max(nz) - min(nz) < 1e-9:  # the physical plane normal is along m only when those spacings agree
            gap[i] = 0.5 / math.sqrt(sum((m[a] / rel[a]) ** 2 for a in range(3)))
        t = in_plane_vectors(tuple(m))
        nvec[i] = len(t)
        vecs[i, : len(t)] = t
    return dirs, len2, gap, vecs, nvec


def containment_table(rel: np.ndarray, r_units: float) -> tuple[np.ndarray, np.ndarray]:
    """Lattice offsets within radius ``r_units`` sorted by squared norm, and per neighbour class the running
    maximum of ``|g - n|²`` — the squared radius a neighbour at offset class ``n`` needs for its grid ball to
    contain the grid ball of radius² ``norm`` (BoneJ's Distance_Ridge template, Dougherty 2007, generalised
    to anisotropic voxels).

    Plain NumPy (a few hundred thousand offsets at most): no JIT compilation on a fresh install. Among offsets
    of equal norm the order differs from run to run of a sort, but the table is only read at the last (closed)
    or before the first (open) offset of a norm, where the running maximum covers all of them."""
    rz, ry, rx = (float(v) for v in np.asarray(rel, np.float64))
    r = float(r_units)
    a = np.arange(-(int(r / rz) + 1), int(r / rz) + 2, dtype=np.float64)[:, None, None]
    b = np.arange(-(int(r / ry) + 1), int(r / ry) + 2, dtype=np.float64)[None, :, None]
    c = np.arange(-(int(r / rx) + 1), int(r / rx) + 2, dtype=np.float64)[None, None, :]
    n2 = (a * rz) ** 2 + (b * ry) ** 2 + (c * rx) ** 2
    keep = n2 <= r * r + EPS
    za, yb, xc = (np.broadcast_to(v, n2.shape)[keep] for v in (a, b, c))
    norms = n2[keep]
    order = np.argsort(norms, kind="stable")
    norms = np.ascontiguousarray(norms[order])
    za, yb, xc = za[order], yb[order], xc[order]
    out = np.empty((7, len(norms)))
    for cls in range(7):
        iz, iy, ix = (cls + 1) >> 2 & 1, (cls + 1) >> 1 & 1, (cls + 1) & 1
        v = ((za - iz) * rz) ** 2 + ((yb - iy) * ry) ** 2 + ((xc - ix) * rx) ** 2
        out[cls] = np.maximum.accumulate(np.maximum(v, 0.0))
    return norms, out


@njit(cache=True, inline="always")
def _sqrt0(v):
    return math.sqrt(v) if v > 0.0 else 0.0


@njit(cache=True)
def _refined_radius(d2, fg, z, y, x, rel, half13, dirs, dlen2, dgap, dvecs, dnvec, bg_border):
    """Sub-voxel radius (units) of the largest empty ball near voxel (z, y, x) in subvoxel mode.

    1. Tent refinement: along each of the 13 lattice directions the distance ``D`` is modelled as a tent of
       slope ``s`` (0 < s <= 1) peaking between the voxel and its higher-or-equal neighbour; the peak height is
       the refined distance. Plates of even thickness (peak between two voxel layers) gain half a voxel.
    2. Half-way surface for digitally flat faces: when the nearest background voxel lies along a lattice
       direction and the face is flat around it (the background layer and the foreground layer beneath it
       extend ±FLAT_EXTENT voxels in the face's plane), the boundary is placed half way
       between the last foreground and the first background layer: subtract half the lattice-plane spacing.
       On curved or oblique boundaries background centres sample the surface densely and no shift is applied.
    """
    nz, ny, nx = d2.shape
    a2 = abs(d2[z, y, x])
    a0 = _sqrt0(a2)
    best = a0
    for k in range(13):
        ez, ey, ex = half13[k, 0], half13[k, 1], half13[k, 2]
        zm, ym, xm = z - ez, y - ey, x - ex
        zp, yp, xp = z + ez, y + ey, x + ex
        if zm < 0 or ym < 0 or xm < 0 or zp >= nz or yp >= ny or xp >= nx:
            continue  # ez, ey, ex >= 0 only for the first non-zero component; check both ends fully
        if zp < 0 or yp < 0 or xp < 0 or zm >= nz or ym >= ny or xm >= nx:
            continue
        bm = abs(d2[zm, ym, xm])
        bp = abs(d2[zp, yp, xp])
        if bm > a2 + EPS or bp > a2 + EPS:
            continue  # a higher neighbour along this line: the peak is not at this voxel
        am = _sqrt0(bm)
        ap = _sqrt0(bp)
        lo = am if am < ap else ap
        hi = ap if am < ap else am
        L = math.sqrt((ez * rel[0]) ** 2 + (ey * rel[1]) ** 2 + (ex * rel[2]) ** 2)
        s = (a0 - lo) / L
        if s <= 0.0:
            continue
        if s > 1.0:
            s = 1.0
        h = a0 + 0.5 * (hi - a0 + s * L)
        if h > best:
            best = h
    gap = 0.0
    last_len2 = -1.0
    kk = 0
    for i in range(26):
        g = dgap[i]
        if g <= 0.0:
            continue
        if dlen2[i] != last_len2:  # directions are grouped by length: one perfect-square test per group
            last_len2 = dlen2[i]
            kf = math.sqrt(a2 / dlen2[i])
            kk = int(kf + 0.5)
            if kk < 1 or abs(kk * kk * dlen2[i] - a2) > EPS:
                kk = 0
        if kk == 0:
            continue
        qz = z + kk * dirs[i, 0]
        qy = y + kk * dirs[i, 1]
        qx = x + kk * dirs[i, 2]
        if qz < 0 or qy < 0 or qx < 0 or qz >= nz or qy >= ny or qx >= nx:
            if not bg_border:
                continue  # nothing outside the image is background
        elif fg[qz, qy, qx]:
            continue
        flat = True
        for j in range(dnvec[i]):
            for step in range(1, FLAT_EXTENT + 1):
                # background layer: q + step*t must be background ...
                tz = qz + step * dvecs[i, j, 0]
                ty = qy + step * dvecs[i, j, 1]
                tx = qx + step * dvecs[i, j, 2]
                if 0 <= tz < nz and 0 <= ty < ny and 0 <= tx < nx and fg[tz, ty, tx]:
                    flat = False
                    break
                # ... and the foreground layer below it, q - m + step*t, foreground (outside the image: no evidence)
                tz -= dirs[i, 0]
                ty -= dirs[i, 1]
                tx -= dirs[i, 2]
                if 0 <= tz < nz and 0 <= ty < ny and 0 <= tx < nx and not fg[tz, ty, tx]:
                    flat = False
                    break
            if not flat:
                break
        if flat and g > gap:
            gap = g
    r = best - gap
    return r if r > 0.0 else 0.0


def direct_table(norms: np.ndarray, tmax: np.ndarray, d2max: int, closed: bool) -> np.ndarray:
    """Template indexed directly by an integer squared radius 0..d2max (integer spacing ratios only)."""
    d = np.arange(d2max + 1, dtype=np.float64)
    if closed:
        k = np.searchsorted(norms, d + EPS, side="right") - 1
    else:
        k = np.searchsorted(norms, d - EPS, side="left") - 1
    out = np.where(k[None, :] >= 0, tmax[:, np.maximum(k, 0)], -1.0)
    return np.ascontiguousarray(out)


@njit(parallel=True, cache=True)
def refined_all(d2, fg, rel, half13, dirs, dlen2, dgap, dvecs, dnvec, bg_border, vals):
    """Subvoxel mode: the refined radius (units) of every foreground voxel; 0 elsewhere."""
    nz, ny, nx = d2.shape
    for z in prange(nz):
        for y in range(ny):
            for x in range(nx):
                if fg[z, y, x]:
                    vals[z, y, x] = _refined_radius(d2, fg, z, y, x, rel, half13, dirs, dlen2, dgap, dvecs, dnvec,
                                                    bg_border)
                else:
                    vals[z, y, x] = 0.0


WIDEN_MARGIN = -0.5  # subvoxel mode: a ball also holds the voxels whose centre is within R - ½ of its centre


def widen_bound(rel: np.ndarray) -> int:
    """Voxels by which the subvoxel-mode membership radius can exceed ``D``: ``R <= D + L/2`` (the tent
    refinement adds at most half the longest lattice step ``L``), so ``R + margin - D <= L/2 + margin``."""
    return max(0, int(math.ceil(0.5 * math.sqrt(float(np.sum(np.asarray(rel, float) ** 2))) + WIDEN_MARGIN)))


@njit(parallel=True, cache=True)
def widen_membership(d2, vals, margin, integer):
    """Subvoxel mode: membership radius² ``M = max(d2, (R + margin)²)`` on the foreground, in place in ``d2``.

    With ``margin = -½`` a voxel whose centre lies at least half a voxel inside the refined ball counts as
    inside. Where the refined centre lies off the voxel centre (a small off-grid sphere or rod), ``R`` exceeds
    ``D`` by up to half a lattice step, and the open empty ball alone misses part of the shape.
    With integer geometry (integer spacing ratios, integer squared lattice norms) ``M`` is rounded up to the
    integer ``n`` for which ``norm < n`` is the same test as ``norm < (R + margin)²``, so that the integer
    painting and the ridge templates stay exact. Pruning and painting then both use ``M``, so the pruning
    remains sound for the widened balls.
    """
    nz, ny, nx = d2.shape
    for z in prange(nz):
        for y in range(ny):
            for x in range(nx):
                a = d2[z, y, x]
                if a <= 0.0:
                    continue
                w = max(np.float64(vals[z, y, x]) + margin, 0.0) ** 2
                if integer:
                    w = math.ceil(w - EPS)
                if w > a:
                    d2[z, y, x] = w


@njit(cache=True)
def _last_index(norms, d2c, closed):
    """Index of the last table norm ``<= d2c`` (closed) or ``< d2c`` (open), within EPS; -1 when none: the
    same as ``searchsorted(norms, d2c + EPS, "right") - 1`` and ``searchsorted(norms, d2c - EPS, "left") - 1``
    (a plain bisection: NumPy's ``searchsorted`` costs seconds of JIT compilation)."""
    lo = 0
    hi = norms.shape[0]
    if closed:
        t = d2c + EPS
        while lo < hi:  # first index with norms > t
            mid = (lo + hi) >> 1
            if norms[mid] <= t:
                lo = mid + 1
            else:
                hi = mid
    else:
        t = d2c - EPS
        while lo < hi:  # first index with norms >= t
            mid = (lo + hi) >> 1
            if norms[mid] < t:
                lo = mid + 1
            else:
                hi = mid
    return lo - 1


@njit(parallel=True, cache=True)
def ridge_mark(d2, vals, rel, norms, tmax, tdir, tab_r2, closed, use_vals, counts):
    """Mark the distance ridge: foreground voxels whose ball is not contained in a 26-neighbour's ball.

    A voxel ``c`` is *not* on the ridge when some neighbour ``q`` has a grid ball containing the grid ball of
    ``c`` (BoneJ's template test; beyond the table radius the continuous test ``D(q) >= D(c) + |q - c|``,
    which implies it). With ``use_vals`` (subvoxel mode) the neighbour must also carry a refined value at least
    as large, so pruning never lowers a voxel's final value. Pruning is sound: a pruned ball's voxels all lie
    in a kept ball of at least its value, so the painted map is unchanged.

    Ridge voxels are marked in place by a negative sign — in ``vals`` when ``use_vals``, else in ``d2`` —
    (both are positive on the foreground); neighbours are read through ``abs``, so the marking is race-free.
    ``tdir`` (when it has more than one column) is the template indexed by integer squared radius.
    ``counts[z]`` receives the number of ridge voxels (negative marks) of slice ``z``.
    """
    nz, ny, nx = d2.shape
    direct = tdir.shape[1] > 1
    f2 = d2.ravel()
    fv = vals.ravel()
    loff = np.empty(26, np.int64)
    for k in range(26):
        loff[k] = (NEIGH26_NEAR[k, 0] * ny + NEIGH26_NEAR[k, 1]) * nx + NEIGH26_NEAR[k, 2]
    for z in prange(nz):
        nridge = 0
        for y in range(ny):
            for x in range(nx):
                base = (z * ny + y) * nx + x
                d2c = abs(f2[base])
                if d2c <= 0.0:
                    continue
                interior = 0 < z < nz - 1 and 0 < y < ny - 1 and 0 < x < nx - 1
                in_table = d2c <= tab_r2
                kidx = -2
                dc = -1.0
                vc = abs(fv[base]) if use_vals else 0.0
                ridge = True
                for k in range(26):
                    oz = NEIGH26_NEAR[k, 0]
                    oy = NEIGH26_NEAR[k, 1]
                    ox = NEIGH26_NEAR[k, 2]
                    if interior:
                        qi = base + loff[k]
                    else:
                        qz, qy, qx = z + oz, y + oy, x + ox
                        if qz < 0 or qy < 0 or qx < 0 or qz >= nz or qy >= ny or qx >= nx:
                            continue
                        qi = base + loff[k]
                    d2q = abs(f2[qi])
                    if d2q <= d2c:
                        continue  # a ball can only be contained in a strictly larger one
                    if use_vals and abs(fv[qi]) < vc:
                        continue
                    cls = (abs(oz) << 2 | abs(oy) << 1 | abs(ox)) - 1
                    if in_table:
                        if direct:
                            need = tdir[cls, int(d2c + 0.5)]
                        else:
                            if kidx == -2:
                                kidx = _last_index(norms, d2c, closed)
                            need = tmax[cls, kidx] if kidx >= 0 else -1.0
                        contained = (d2q >= need - EPS) if closed else (d2q > need + EPS)
                    else:
                        if dc < 0.0:
                            dc = _sqrt0(d2c)
                        L = math.sqrt((oz * rel[0]) ** 2 + (oy * rel[1]) ** 2 + (ox * rel[2]) ** 2)
                        contained = _sqrt0(d2q) >= dc + L - 1e-9
                    if contained:
                        ridge = False
                        break
                if ridge:
                    if use_vals:
                        fv[base] = -vc
                        if vc > 0.0:  # a zero value stays unmarked (-0.0 is not negative)
                            nridge += 1
                    else:
                        f2[base] = -d2c
                        nridge += 1
        counts[z] = nridge


@njit(parallel=True, cache=True)
def gather_ridge(d2, vals, use_vals, offsets, zc, yc, xc, m2, val):
    """Fill the ridge arrays (raster order): centre, membership radius² (units²) and value (radius, units);
    then ``d2`` (no longer needed) is overwritten, read as int32, with the ridge-list index at each ridge
    voxel and -1 elsewhere (for :func:`choose_parents`): one pass, no extra memory."""
    nz, ny, nx = d2.shape
    ib = d2.view(np.int32)  # the same memory: every read of a voxel precedes the write of its index
    for z in prange(nz):
        i = offsets[z]
        for y in range(ny):
            for x in range(nx):
                a = d2[z, y, x]
                if use_vals:
                    mark = vals[z, y, x] < 0.0
                else:
                    mark = a < 0.0
                if mark:
                    zc[i] = z
                    yc[i] = y
                    xc[i] = x
                    a = abs(a)
                    m2[i] = a
                    val[i] = abs(vals[z, y, x]) if use_vals else _sqrt0(a)
                    ib[z, y, x] = i
                    i += 1
                else:
                    ib[z, y, x] = -1


@njit(parallel=True, cache=True)
def choose_parents(ibuf, zc, yc, xc, m2, val, keys, parent):
    """For each ridge ball, the already-painted ridge neighbour whose ball is skipped when painting it.

    The painting order is by key (ascending = value descending), then by ridge index (raster order). A
    neighbour ``p`` qualifies when it comes earlier in that order and ``value(p) >= value(c)``: every voxel
    of ``p``'s ball then already holds a value ``>= value(c)``, so painting it again cannot change it.
    ``parent`` is the qualifying neighbour in the same x column with the largest ball (its rows can be culled
    as a half-plane when painting), or else the largest one. (A second parent was tried: the extra interval per
    row cost more than the voxels it saved.)
    """
    nz, ny, nx = ibuf.shape
    n = zc.shape[0]
    fb = ibuf.ravel()
    loff = np.empty(26, np.int64)
    for k in range(26):
        loff[k] = (NEIGH26[k, 0] * ny + NEIGH26[k, 1]) * nx + NEIGH26[k, 2]
    for i in prange(n):
        z, y, x = np.int64(zc[i]), np.int64(yc[i]), np.int64(xc[i])
        base = (z * ny + y) * nx + x
        interior = 0 < z < nz - 1 and 0 < y < ny - 1 and 0 < x < nx - 1
        vc = val[i]
        kc = keys[i]
        b1 = -1
        s1 = -1e30
        for k in range(26):
            if not interior:
                qz = z + NEIGH26[k, 0]
                qy = y + NEIGH26[k, 1]
                qx = x + NEIGH26[k, 2]
                if qz < 0 or qy < 0 or qx < 0 or qz >= nz or qy >= ny or qx >= nx:
                    continue
            j = fb[base + loff[k]]
            if j < 0:
                continue
            if val[j] < vc:
                continue
            kq = keys[j]
            if not (kq < kc or (kq == kc and j < i)):
                continue
            score = m2[j] + (1e9 if NEIGH26[k, 2] == 0 else 0.0)
            if score > s1:
                b1 = j
                s1 = score
        parent[i] = b1


@njit(cache=True)
def slab_lists(order, zc, m2, rel_z, nz, slab):
    """CSR lists of the balls (in painting order) that reach each z-slab of ``slab`` slices."""
    nslab = (nz + slab - 1) // slab
    counts = np.zeros(nslab + 1, np.int64)
    for i in range(order.shape[0]):  # the counts do not depend on the order: read the arrays sequentially
        rz = int(math.sqrt(m2[i] + EPS) / rel_z)
        s0 = max(0, zc[i] - rz) // slab
        s1 = min(nz - 1, zc[i] + rz) // slab
        for s in range(s0, s1 + 1):
            counts[s + 1] += 1
    for s in range(nslab):
        counts[s + 1] += counts[s]
    idx = np.empty(counts[nslab], np.int32)
    fill = counts[:nslab].copy()
    for k in range(order.shape[0]):
        i = order[k]
        rz = int(math.sqrt(m2[i] + EPS) / rel_z)
        s0 = max(0, zc[i] - rz) // slab
        s1 = min(nz - 1, zc[i] + rz) // slab
        for s in range(s0, s1 + 1):
            idx[fill[s]] = i
            fill[s] += 1
    return counts, idx


@njit(cache=True, inline="always")
def _half_width(rem, rx, closed):
    """Largest integer w >= 0 with (w*rx)² <= rem (closed) or < rem (open); -1 when no voxel qualifies."""
    if closed:
        if rem < -EPS:
            return -1
        w = int(math.sqrt(max(rem, 0.0)) / rx)
        while ((w + 1) * rx) ** 2 <= rem + EPS:
            w += 1
        while w > 0 and (w * rx) ** 2 > rem + EPS:
            w -= 1
        return w
    if rem <= EPS:
        return -1
    w = int(math.sqrt(rem) / rx)
    while ((w + 1) * rx) ** 2 < rem - EPS:
        w += 1
    while w > 0 and (w * rx) ** 2 >= rem - EPS:
        w -= 1
    return w


@njit(cache=True, inline="always")
def _fill(out, z, y, a, b, v):
    for xx in range(a, b + 1):
        if out[z, y, xx] < v:
            out[z, y, xx] = v


@njit(cache=True, inline="always")
def _paint_run(out, z, y, xa, xb, pa, pb, v):
    """out[z, y, xa..xb] = max(., v) except on the parent's run pa..pb (empty when pa > pb)."""
    if pa > pb or pb < xa or pa > xb:
        _fill(out, z, y, xa, xb, v)
        return
    _fill(out, z, y, xa, min(xb, pa - 1), v)
    _fill(out, z, y, max(xa, pb + 1), xb, v)


@njit(parallel=True, cache=True)
def paint_int(out, zc, yc, xc, m2, val, parent, ptr, idx, slabs, slab, reli, isqz, isqy, isqx, closed):
    """Painting with integer geometry (integer spacing ratios ``reli``; squared radii are exact integers).

    ``out = max(out, value)`` over each ball, slab by slab (each thread owns whole z-slabs: no two threads
    write the same voxel). In each (z, y) row of a ball the x-run is painted minus the run of the ball's
    parent (already final). When parent and ball share x, the rows whose run lies inside the parent's —
    a half-plane of rows — are not visited at all. ``isqA[n] = floor(floor(sqrt(n)) / relA)`` per axis A (no division in the inner loops).
    """
    nz, ny, nx = out.shape
    rzi, ryi = reli[0], reli[1]
    rz2, ry2 = rzi * rzi, ryi * ryi
    off = 0 if closed else 1  # open ball: (w*rx)^2 <= rem - 1
    for t in prange(slabs.shape[0]):
        s = slabs[t]
        z0 = s * slab
        z1 = min(nz, z0 + slab)
        for k in range(ptr[s], ptr[s + 1]):
            i = idx[k]
            cz, cy, cx = np.int64(zc[i]), np.int64(yc[i]), np.int64(xc[i])
            M = np.int64(m2[i] + 0.5)
            v = val[i]
            p = parent[i]
            hasp = p >= 0
            if hasp:
                pz, py, px = np.int64(zc[p]), np.int64(yc[p]), np.int64(xc[p])
                Mp = np.int64(m2[p] + 0.5)
                dzp, dyp, dxp = pz - cz, py - cy, px - cx
            else:
                pz = py = px = Mp = dzp = dyp = dxp = np.int64(0)
            if M - off < 0:
                continue
            rz = isqz[M - off]
            for z in range(max(z0, cz - rz), min(z1 - 1, cz + rz) + 1):
                dz = z - cz
                remz = M - dz * dz * rz2
                if remz - off < 0:
                    continue
                ry = isqy[remz - off]
                ya = max(0, cy - ry)
                yb = min(ny - 1, cy + ry)
                if hasp and dxp == 0:
                    # rows with W_c - W_p = A - 2*ry2*dyp*dy <= 0 lie inside the parent's chord: skip them
                    A = M - Mp + rz2 * (dzp * dzp - 2 * dz * dzp) + ry2 * dyp * dyp
                    if dyp == 0:
                        if A <= 0:
                            continue
                    elif dyp > 0:
                        # paint only dy < A / den, i.e. dy <= ceil(A / den) - 1
                        den = 2 * ry2 * dyp
                        yb = min(yb, cy - ((-A) // den) - 1)
                    else:
                        # paint only dy > -A / den, i.e. dy >= floor(-A / den) + 1
                        den = 2 * ry2 * (-dyp)
                        ya = max(ya, cy + ((-A) // den) + 1)
                for y in range(ya, yb + 1):
                    dy = y - cy
                    rem = remz - dy * dy * ry2 - off
                    if rem < 0:
                        continue
                    w = isqx[rem]
                    xa = max(0, cx - w)
                    xb = min(nx - 1, cx + w)
                    pa = 1
                    pb = 0
                    if hasp:
                        dzz = z - pz
                        dyy = y - py
                        remp = Mp - dzz * dzz * rz2 - dyy * dyy * ry2 - off
                        if remp >= 0:
                            wp = isqx[remp]
                            pa = px - wp
                            pb = px + wp
                    _paint_run(out, z, y, xa, xb, pa, pb, v)


@njit(parallel=True, cache=True)
def paint_float(out, zc, yc, xc, m2, val, parent, ptr, idx, slabs, slab, rel, closed):
    """Painting for non-integer spacing ratios (float geometry with a small tolerance); see :func:`paint_int`."""
    nz, ny, nx = out.shape
    rz_, ry_, rx_ = rel[0], rel[1], rel[2]
    for t in prange(slabs.shape[0]):
        s = slabs[t]
        z0 = s * slab
        z1 = min(nz, z0 + slab)
        for k in range(ptr[s], ptr[s + 1]):
            i = idx[k]
            cz, cy, cx = zc[i], yc[i], xc[i]
            M = np.float64(m2[i])
            v = val[i]
            p = parent[i]
            rz = int(math.sqrt(M + EPS) / rz_) + 1
            for z in range(max(z0, cz - rz), min(z1, cz + rz + 1)):
                remz = M - ((z - cz) * rz_) ** 2
                if remz < -EPS:
                    continue
                ry = int(math.sqrt(max(remz, 0.0) + EPS) / ry_) + 1
                for y in range(max(0, cy - ry), min(ny, cy + ry + 1)):
                    rem = remz - ((y - cy) * ry_) ** 2
                    w = _half_width(rem, rx_, closed)
                    if w < 0:
                        continue
                    xa = max(0, cx - w)
                    xb = min(nx - 1, cx + w)
                    pa = 1
                    pb = 0
                    if p >= 0:
                        remp = np.float64(m2[p]) - ((z - zc[p]) * rz_) ** 2 - ((y - yc[p]) * ry_) ** 2
                        wp = _half_width(remp, rx_, closed)
                        if wp >= 0:
                            pa = xc[p] - wp
                            pb = xc[p] + wp
                    _paint_run(out, z, y, xa, xb, pa, pb, v)


@njit(parallel=True, cache=True)
def _zero_near(m, t):
    """t := 1 where the 3×3×3 neighbourhood (inside the image) of a voxel holds a zero of ``m`` (separable)."""
    nz, ny, nx = m.shape
    for z in prange(nz):  # along x
        for y in range(ny):
            for x in range(nx):
                f = m[z, y, x] == 0.0
                if x > 0 and m[z, y, x - 1] == 0.0:
                    f = True
                if x < nx - 1 and m[z, y, x + 1] == 0.0:
                    f = True
                t[z, y, x] = 1 if f else 0
    for z in prange(nz):  # along y (in place, with a row buffer)
        prev = np.zeros(nx, np.uint8)
        cur = np.zeros(nx, np.uint8)
        for y in range(ny):
            for x in range(nx):
                cur[x] = t[z, y, x]
            for x in range(nx):
                f = cur[x] | prev[x]
                if y < ny - 1:
                    f |= t[z, y + 1, x]
                t[z, y, x] = f
            for x in range(nx):
                prev[x] = cur[x]
    for y in prange(ny):  # along z
        prev = np.zeros(nx, np.uint8)
        cur = np.zeros(nx, np.uint8)
        for z in range(nz):
            for x in range(nx):
                cur[x] = t[z, y, x]
            for x in range(nx):
                f = cur[x] | prev[x]
                if z < nz - 1:
                    f |= t[z + 1, y, x]
                t[z, y, x] = f
            for x in range(nx):
                prev[x] = cur[x]


@njit(parallel=True, cache=True)
def _cleanup_average(m, t):
    nz, ny, nx = m.shape
    # surface voxels (painted, with a zero neighbour) are negated first
    for z in prange(nz):
        for y in range(ny):
            for x in range(nx):
                if m[z, y, x] > 0.0 and t[z, y, x]:
                    m[z, y, x] = -m[z, y, x]
    # surface voxels := -(mean of interior neighbours); values stay negative so they are never averaged
    for z in prange(nz):
        for y in range(ny):
            for x in range(nx):
                if m[z, y, x] >= 0.0:
                    continue
                acc = 0.0
                cnt = 0
                for k in range(26):
                    qz = z + NEIGH26[k, 0]
                    qy = y + NEIGH26[k, 1]
                    qx = x + NEIGH26[k, 2]
                    if qz < 0 or qy < 0 or qx < 0 or qz >= nz or qy >= ny or qx >= nx:
                        continue
                    w = m[qz, qy, qx]
                    if w > 0.0:
                        acc += w
                        cnt += 1
                if cnt > 0:
                    m[z, y, x] = -(acc / cnt)
    for z in prange(nz):
        for y in range(ny):
            for x in range(nx):
                if m[z, y, x] < 0.0:
                    m[z, y, x] = -m[z, y, x]


def bonej_cleanup(m: np.ndarray) -> None:
    """BoneJ's Clean_Up_Local_Thickness (Dougherty 2007), order-independent form, in place.

    A painted voxel (value > 0) with a 26-neighbour of value 0 inside the image is a surface voxel; it takes
    the mean of its 26-neighbours that are painted interior voxels (keeping its own value when there are none).
    Interior values never change, so the result does not depend on the processing order (BoneJ's raster
    order gives the same result). Uses a temporary ``uint8`` volume.
    """
    t = np.empty(m.shape, np.uint8)
    _zero_near(m, t)
    _cleanup_average(m, t)


@njit(parallel=True, cache=True)
def finish_map(m, fg, mask, use_mask, scale):
    """map := scale * map on the structure (inside the mask), 0 elsewhere."""
    nz, ny, nx = m.shape
    for z in prange(nz):
        for y in range(ny):
            for x in range(nx):
                if fg[z, y, x] and (not use_mask or mask[z, y, x]):
                    m[z, y, x] = m[z, y, x] * scale
                else:
                    m[z, y, x] = 0.0


@njit(parallel=True, cache=True)
def slice_sums(m, sel, mask, use_mask, mean, out):
    """Per z-slice over the voxels where ``sel`` (and ``mask``) hold: ``out[z] = (count, sum, max)`` of ``m``
    when ``mean`` is NaN, else ``(count, sum of (m - mean)², max)``. One parallel loop serves both passes of
    :func:`masked_stats` (each parallel loop costs its own JIT compilation on a fresh install)."""
    second = not np.isnan(mean)
    for z in prange(m.shape[0]):
        c = 0
        t = 0.0
        h = -np.inf
        for y in range(m.shape[1]):
            for x in range(m.shape[2]):
                if sel[z, y, x] and (not use_mask or mask[z, y, x]):
                    v = m[z, y, x]
                    c += 1
                    if second:
                        e = v - mean
                        t += e * e
                    else:
                        t += v
                    if v > h:
                        h = v
        out[z, 0] = c
        out[z, 1] = t
        out[z, 2] = h


def masked_stats(m: np.ndarray, sel: np.ndarray, mask: np.ndarray, use_mask: bool) -> tuple[int, float, float, float]:
    """Count, mean, SD (n - 1) and max of ``m`` over voxels where ``sel`` (and ``mask``) hold; two passes."""
    out = np.empty((m.shape[0], 3))
    slice_sums(m, sel, mask, use_mask, np.nan, out)
    n = int(out[:, 0].sum())
    if n == 0:
        return 0, np.nan, np.nan, np.nan
    mean = float(np.cumsum(out[:, 1])[-1]) / n  # sums in slice order (cumsum is sequential)
    mx = float(out[:, 2].max())
    slice_sums(m, sel, mask, use_mask, mean, out)
    sd = float(np.sqrt(np.cumsum(out[:, 1])[-1] / (n - 1))) if n > 1 else np.nan
    return n, mean, sd, mx


@njit(parallel=True, cache=True)
def reach_extent(d2, lo, hi, rel, closed):
    """Per z-plane extents (ymin, ymax, xmin, xmax; -1 if none) of the voxels whose ball reaches the box
    ``lo..hi`` (inclusive indices): squared distance to the box < d2 (open) or <= d2 (closed)."""
    nz, ny, nx = d2.shape
    out = np.full((nz, 4), -1, np.int64)
    for z in prange(nz):
        dz = max(lo[0] - z, 0, z - hi[0]) * rel[0]
        dz2 = dz * dz
        ymin = ny
        ymax = -1
        xmin = nx
        xmax = -1
        for y in range(ny):
            dy = max(lo[1] - y, 0, y - hi[1]) * rel[1]
            dzy = dz2 + dy * dy
            for x in range(nx):
                v = abs(d2[z, y, x])
                if v <= 0.0:
                    continue
                dx = max(lo[2] - x, 0, x - hi[2]) * rel[2]
                r2 = dzy + dx * dx
                if (closed and r2 <= v + EPS) or ((not closed) and r2 < v - EPS):
                    if y < ymin:
                        ymin = y
                    if y > ymax:
                        ymax = y
                    if x < xmin:
                        xmin = x
                    if x > xmax:
                        xmax = x
        if ymax >= 0:
            out[z, 0] = ymin
            out[z, 1] = ymax
            out[z, 2] = xmin
            out[z, 3] = xmax
    return out


@njit(parallel=True, cache=True)
def refined_box(d2, fg, z0, y0, x0, rel, half13, dirs, dlen2, dgap, dvecs, dnvec, bg_border, vals):
    """Subvoxel mode: refined radii of the foreground voxels of the sub-box starting at (z0, y0, x0) with
    the shape of ``vals``, computed on the full arrays (so the box edges see their real neighbourhood)."""
    bz, by, bx = vals.shape
    for k in prange(bz):
        z = z0 + k
        for j in range(by):
            y = y0 + j
            for i in range(bx):
                x = x0 + i
                if fg[z, y, x]:
                    vals[k, j, i] = _refined_radius(d2, fg, z, y, x, rel, half13, dirs, dlen2, dgap, dvecs, dnvec,
                                                    bg_border)
                else:
                    vals[k, j, i] = 0.0


@njit(cache=True)
def painting_order(val, nlevels):
    """Keys (value quantised into ``nlevels`` levels, 0 = largest) and the stable counting-sort order by key.

    The order is by descending value, ties (same key) in ridge-list (raster) order; int32 throughout.
    """
    n = val.shape[0]
    vmax = 0.0
    for i in range(n):
        if val[i] > vmax:
            vmax = val[i]
    scale = (nlevels - 1) / vmax if vmax > 0 else 0.0
    keys = np.empty(n, np.uint16)
    counts = np.zeros(nlevels + 1, np.int64)
    for i in range(n):
        k = int((vmax - val[i]) * scale + 0.5)
        keys[i] = k
        counts[k + 1] += 1
    for k in range(nlevels):
        counts[k + 1] += counts[k]
    order = np.empty(n, np.int32)
    for i in range(n):
        k = keys[i]
        order[counts[k]] = i
        counts[k] += 1
    return keys, order
