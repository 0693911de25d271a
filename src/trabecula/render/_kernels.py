"""numba kernels of the ray marcher (private; see :mod:`trabecula.render.raycast` for the method).

The ray marcher is a plain ``nogil`` function over a list of image rows, run on several Python threads
(dynamic load balancing over interleaved row blocks); compiling it as a ``parallel=True`` parfor took
about twice as long for no faster frames.

All arrays are indexed (z, y, x). The volume is a uint16 "classified copy" ``q`` (value =
``q_offset + q * q_step``); positions inside the kernels are continuous voxel indices (voxel centres at
integers), rays are parametrised by world distance ``t`` in mm.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

_MAXI = 8  # intervals per ray after clipping


# ----------------------------------------------------------------------------------------- set-up passes
@njit(parallel=True, cache=True)
def quantize(data, out, offset, inv_step):  # pragma: no cover - numba
    """``out = clip(round((data - offset) * inv_step), 0, 65535)`` as uint16; NaN → 0."""
    nz, ny, nx = data.shape
    for z in prange(nz):
        for y in range(ny):
            for x in range(nx):
                v = (float(data[z, y, x]) - offset) * inv_step
                if not v > 0.0:  # also NaN
                    out[z, y, x] = 0
                elif v >= 65535.0:
                    out[z, y, x] = 65535
                else:
                    out[z, y, x] = np.uint16(v + 0.5)


@njit(parallel=True, cache=True, fastmath=True)
def brick_classes(q, b, f, alpha, lut_a, lut_b, faint, skip_mass):  # pragma: no cover - numba
    """One pass over the volume: the class of each ``b``-voxel brick for empty-space skipping, and the mean
    opacity of each ``f``-voxel cell (``f`` divides ``b``; the low-resolution occupancy for AO and shadows).

    ``range_max`` = the transfer function's largest opacity over the brick's value range [min, max], taken
    over the brick and the next voxel on each axis (the trilinear support of every sample position inside
    the brick: a bound for every interpolated sample); ``mass`` = the sum of the brick's voxel opacities.
    Class 0 = empty (``range_max`` is 0, or ``mass < skip_mass``: isolated noise voxels that could add at
    most about ``skip_mass`` opacity to a ray), 1 = faint (``range_max < faint``), 2 = dense.
    """
    nz, ny, nx = q.shape
    n = alpha.shape[0]
    nbz, nby, nbx = (nz + b - 1) // b, (ny + b - 1) // b, (nx + b - 1) // b
    out = np.zeros((nbz, nby, nbx), np.uint8)
    cz, cy, cx = (nz + f - 1) // f, (ny + f - 1) // f, (nx + f - 1) // f
    cells = np.zeros((cz, cy, cx), np.float32)
    for bz in prange(nbz):
        for by in range(nby):
            for bx in range(nbx):
                lo = 65535
                hi = 0
                mass = 0.0
                # the brick's voxels, cell by cell: opacity sums, value range
                for kz in range(bz * b, min((bz + 1) * b, nz), f):
                    for ky in range(by * b, min((by + 1) * b, ny), f):
                        for kx in range(bx * b, min((bx + 1) * b, nx), f):
                            s = 0.0
                            c = 0
                            for z in range(kz, min(kz + f, nz)):
                                for y in range(ky, min(ky + f, ny)):
                                    for x in range(kx, min(kx + f, nx)):
                                        v = q[z, y, x]
                                        lo = min(lo, v)
                                        hi = max(hi, v)
                                        li = min(max(int(v * lut_a + lut_b + 0.5), 0), n - 1)
                                        s += alpha[li]
                                        c += 1
                            cells[kz // f, ky // f, kx // f] = s / c
                            mass += s
                # the next voxel along each axis (trilinear support): value range only
                z1, y1, x1 = min((bz + 1) * b, nz - 1), min((by + 1) * b, ny - 1), min((bx + 1) * b, nx - 1)
                for y in range(by * b, y1 + 1):
                    for x in range(bx * b, x1 + 1):
                        v = q[z1, y, x]
                        lo = min(lo, v)
                        hi = max(hi, v)
                for z in range(bz * b, z1 + 1):
                    for x in range(bx * b, x1 + 1):
                        v = q[z, y1, x]
                        lo = min(lo, v)
                        hi = max(hi, v)
                    for y in range(by * b, y1 + 1):
                        v = q[z, y, x1]
                        lo = min(lo, v)
                        hi = max(hi, v)
                i0 = min(max(int(math.floor(lo * lut_a + lut_b)), 0), n - 1)
                i1 = min(max(int(math.ceil(hi * lut_a + lut_b)), 0), n - 1)
                m = 0.0
                for i in range(i0, i1 + 1):
                    m = max(m, alpha[i])
                if m <= 0.0 or mass < skip_mass:
                    out[bz, by, bx] = 0
                elif m < faint:
                    out[bz, by, bx] = 1
                else:
                    out[bz, by, bx] = 2
    return out, cells


@njit(cache=True, fastmath=True)
def sweep_light(alpha, v1, v2, path):  # pragma: no cover - numba
    """Transmittance of light entering at slice 0 and travelling +1 slice per step along axis 0, shifting
    ``(v1, v2)`` cells on axes 1 and 2 per slice; ``path`` is the step length in opacity units (voxels).

    ``T[k] = T[k-1](upstream) * (1 - alpha[k-1](upstream)) ** path``, bilinear upstream interpolation (whose
    smoothing gives soft shadow edges) — the slice-sweep light volume of Behrens & Ratering (1998),
    "Adding shadows to a texture-based volume renderer", IEEE Symp. Volume Visualization.
    """
    n0, n1, n2 = alpha.shape
    t = np.ones((n0, n1, n2), np.float32)
    for k in range(1, n0):
        for a in range(n1):
            for b in range(n2):
                u = a - v1
                w = b - v2
                if u < 0.0 or w < 0.0 or u > n1 - 1 or w > n2 - 1:
                    continue  # light arrives from outside the grid
                iu = min(int(u), n1 - 2) if n1 > 1 else 0
                iw = min(int(w), n2 - 2) if n2 > 1 else 0
                fu = u - iu
                fw = w - iw
                iu1 = min(iu + 1, n1 - 1)
                iw1 = min(iw + 1, n2 - 1)
                tt = ((t[k - 1, iu, iw] * (1 - fw) + t[k - 1, iu, iw1] * fw) * (1 - fu)
                      + (t[k - 1, iu1, iw] * (1 - fw) + t[k - 1, iu1, iw1] * fw) * fu)
                aa = ((alpha[k - 1, iu, iw] * (1 - fw) + alpha[k - 1, iu, iw1] * fw) * (1 - fu)
                      + (alpha[k - 1, iu1, iw] * (1 - fw) + alpha[k - 1, iu1, iw1] * fw) * fu)
                aa = min(aa, 0.999)
                t[k, a, b] = tt * (1.0 - aa) ** path
    return t


# ------------------------------------------------------------------------------------------- sampling
@njit(fastmath=True, cache=True)
def _tri(vol, pz, py, px):  # pragma: no cover - numba
    nz, ny, nx = vol.shape
    pz = min(max(pz, 0.0), nz - 1.0)
    py = min(max(py, 0.0), ny - 1.0)
    px = min(max(px, 0.0), nx - 1.0)
    iz = int(pz)
    iy = int(py)
    ix = int(px)
    fz = pz - iz
    fy = py - iy
    fx = px - ix
    iz1 = min(iz + 1, nz - 1)
    iy1 = min(iy + 1, ny - 1)
    ix1 = min(ix + 1, nx - 1)
    c00 = vol[iz, iy, ix] * (1.0 - fx) + vol[iz, iy, ix1] * fx
    c01 = vol[iz, iy1, ix] * (1.0 - fx) + vol[iz, iy1, ix1] * fx
    c10 = vol[iz1, iy, ix] * (1.0 - fx) + vol[iz1, iy, ix1] * fx
    c11 = vol[iz1, iy1, ix] * (1.0 - fx) + vol[iz1, iy1, ix1] * fx
    return (c00 * (1.0 - fy) + c01 * fy) * (1.0 - fz) + (c10 * (1.0 - fy) + c11 * fy) * fz


@njit(fastmath=True, cache=True)
def _brick_exit(pz, py, px, dz, dy, dx, bz, by, bx, b):  # pragma: no cover - numba
    """Ray length (in the units of ``d``) from ``p`` to the exit of brick ``(bz, by, bx)``."""
    te = 1e30
    if dz > 1e-12:
        te = min(te, ((bz + 1) * b - pz) / dz)
    elif dz < -1e-12:
        te = min(te, (bz * b - pz) / dz)
    if dy > 1e-12:
        te = min(te, ((by + 1) * b - py) / dy)
    elif dy < -1e-12:
        te = min(te, (by * b - py) / dy)
    if dx > 1e-12:
        te = min(te, ((bx + 1) * b - px) / dx)
    elif dx < -1e-12:
        te = min(te, (bx * b - px) / dx)
    return max(te, 0.0)


@njit(cache=True)
def _hash01(i, j):  # pragma: no cover - numba
    """A deterministic pseudo-random number in [0, 1) per pixel (32-bit integer hash, "lowbias32")."""
    h = (i * 0x1F1F1F1F + j * 0x9E3779B1 + 0x6A09E667) & 0xFFFFFFFF
    h ^= h >> 16
    h = (h * 0x7FEB352D) & 0xFFFFFFFF
    h ^= h >> 15
    h = (h * 0x846CA68B) & 0xFFFFFFFF
    h ^= h >> 16
    return (h & 0xFFFFFF) / 16777216.0


# ---------------------------------------------------------------------------------------- the marcher
@njit(nogil=True, fastmath=True, cache=True)
def render_kernel(q, vorigin, vspacing, lut, lut_a, lut_b, alpha_step, bclass, b, mclass, mb,
                  ao, shadow, f_low, use_ao, use_shadow, shadow_offset_mm,
                  cidx, cmap, c_scale, c_off, use_color,
                  planes, boxes,
                  corner, right, up, fwd, eye, pixel_mm, perspective, light,
                  ka, kd, ks, shininess, grad_ref,
                  step_mm, unit_mm, faint_factor,
                  cut_mode, cut_lo, cut_hi, cut_min,
                  rows, out):  # pragma: no cover - numba
    w = out.shape[1]
    nz, ny, nx = q.shape
    nlut = lut.shape[0]
    nbz, nby, nbx = bclass.shape
    nmz, nmy, nmx = mclass.shape
    npl = planes.shape[0]
    nbox = boxes.shape[0]
    # light direction in index units per mm (for the shadow look-up offset)
    lvz = light[0] / vspacing[0]
    lvy = light[1] / vspacing[1]
    lvx = light[2] / vspacing[2]
    for rr in range(rows.shape[0]):
        i = rows[rr]
        ia = np.empty(_MAXI)
        ib = np.empty(_MAXI)
        ic = np.zeros(_MAXI, np.uint8)
        na = np.empty(_MAXI)
        nb = np.empty(_MAXI)
        nc = np.zeros(_MAXI, np.uint8)
        for j in range(w):
            # ---- the ray (world mm)
            fz = corner[0] + j * pixel_mm * right[0] - i * pixel_mm * up[0]
            fy = corner[1] + j * pixel_mm * right[1] - i * pixel_mm * up[1]
            fx = corner[2] + j * pixel_mm * right[2] - i * pixel_mm * up[2]
            if perspective:
                oz, oy, ox = eye[0], eye[1], eye[2]
                dz, dy, dx = fz - oz, fy - oy, fx - ox
                nrm = math.sqrt(dz * dz + dy * dy + dx * dx)
                dz /= nrm
                dy /= nrm
                dx /= nrm
            else:
                oz, oy, ox = fz, fy, fx
                dz, dy, dx = fwd[0], fwd[1], fwd[2]
            # index space: p = ro + t * rd
            roz = (oz - vorigin[0]) / vspacing[0]
            roy = (oy - vorigin[1]) / vspacing[1]
            rox = (ox - vorigin[2]) / vspacing[2]
            rdz = dz / vspacing[0]
            rdy = dy / vspacing[1]
            rdx = dx / vspacing[2]
            t0 = -1e30
            t1 = 1e30
            miss = False
            for ax in range(3):
                if ax == 0:
                    r0, rd, nn = roz, rdz, nz
                elif ax == 1:
                    r0, rd, nn = roy, rdy, ny
                else:
                    r0, rd, nn = rox, rdx, nx
                if abs(rd) < 1e-12:
                    if r0 < -0.5 or r0 > nn - 0.5:
                        miss = True
                else:
                    ta = (-0.5 - r0) / rd
                    tb = (nn - 0.5 - r0) / rd
                    if ta > tb:
                        ta, tb = tb, ta
                    t0 = max(t0, ta)
                    t1 = min(t1, tb)
            cr = 0.0
            cg = 0.0
            cb = 0.0
            acc = 0.0
            if miss or t1 <= t0:
                out[i, j, 0] = 0.0
                out[i, j, 1] = 0.0
                out[i, j, 2] = 0.0
                out[i, j, 3] = 0.0
                continue
            # ---- clip planes: keep n.p <= offset (one interval, flag 1 where a plane cuts its start)
            flag0 = 0
            for k in range(npl):
                s = planes[k, 0] * dz + planes[k, 1] * dy + planes[k, 2] * dx
                c = planes[k, 3] - (planes[k, 0] * oz + planes[k, 1] * oy + planes[k, 2] * ox)
                if abs(s) < 1e-12:
                    if c < 0.0:
                        t1 = t0 - 1.0
                elif s > 0.0:
                    t1 = min(t1, c / s)
                else:
                    if c / s > t0:
                        t0 = c / s
                        flag0 = 1
            n_int = 0
            if t1 > t0:
                ia[0] = t0
                ib[0] = t1
                ic[0] = flag0
                n_int = 1
            # ---- clip boxes
            for k in range(nbox):
                if n_int == 0:
                    break
                bt0 = -1e30
                bt1 = 1e30
                bmiss = False
                for ax in range(3):
                    if ax == 0:
                        o_, d_ = oz, dz
                    elif ax == 1:
                        o_, d_ = oy, dy
                    else:
                        o_, d_ = ox, dx
                    lo_ = boxes[k, ax]
                    hi_ = boxes[k, 3 + ax]
                    if abs(d_) < 1e-12:
                        if o_ < lo_ or o_ > hi_:
                            bmiss = True
                    else:
                        ta = (lo_ - o_) / d_
                        tb = (hi_ - o_) / d_
                        if ta > tb:
                            ta, tb = tb, ta
                        bt0 = max(bt0, ta)
                        bt1 = min(bt1, tb)
                if bt1 <= bt0:
                    bmiss = True
                m = 0
                keep_inside = boxes[k, 6] > 0.5
                for u in range(n_int):
                    a_, b_, c_ = ia[u], ib[u], ic[u]
                    if keep_inside:
                        if bmiss:
                            continue
                        if bt0 > a_:
                            a_ = bt0
                            c_ = 1
                        b_ = min(b_, bt1)
                        if b_ > a_ and m < _MAXI:
                            na[m] = a_
                            nb[m] = b_
                            nc[m] = c_
                            m += 1
                    else:
                        if bmiss or bt1 <= a_ or bt0 >= b_:
                            if m < _MAXI:
                                na[m] = a_
                                nb[m] = b_
                                nc[m] = c_
                                m += 1
                            continue
                        if bt0 > a_ and m < _MAXI:
                            na[m] = a_
                            nb[m] = bt0
                            nc[m] = c_
                            m += 1
                        if bt1 < b_ and m < _MAXI:
                            na[m] = bt1
                            nb[m] = b_
                            nc[m] = 1
                            m += 1
                for u in range(m):
                    ia[u] = na[u]
                    ib[u] = nb[u]
                    ic[u] = nc[u]
                n_int = m
            # ---- march each interval front to back
            jit = _hash01(i, j)
            for u in range(n_int):
                if acc >= 0.99:
                    break
                ta_ = ia[u]
                tb_ = ib[u]
                if ic[u] == 1 and cut_mode > 0:
                    tc = ta_ + 1e-4 * unit_mm
                    qv = _tri(q, roz + tc * rdz, roy + tc * rdy, rox + tc * rdx)
                    if qv >= cut_min:
                        if cut_mode == 1:
                            g = min(max((qv - cut_lo) / (cut_hi - cut_lo), 0.0), 1.0)
                            sr, sg, sb = g, g, g
                        else:
                            li = min(max(int(qv * lut_a + lut_b + 0.5), 0), nlut - 1)
                            sr, sg, sb = lut[li, 0], lut[li, 1], lut[li, 2]
                        cr += (1.0 - acc) * sr
                        cg += (1.0 - acc) * sg
                        cb += (1.0 - acc) * sb
                        acc = 1.0
                        break
                kk = 0.0
                t = ta_ + jit * step_mm
                while t < tb_ and acc < 0.99:
                    pz = roz + t * rdz
                    py = roy + t * rdy
                    px = rox + t * rdx
                    bz = min(max(int(pz) // b, 0), nbz - 1) if pz > 0 else 0
                    by = min(max(int(py) // b, 0), nby - 1) if py > 0 else 0
                    bx = min(max(int(px) // b, 0), nbx - 1) if px > 0 else 0
                    mz = min(bz // mb, nmz - 1)
                    my = min(by // mb, nmy - 1)
                    mx = min(bx // mb, nmx - 1)
                    if mclass[mz, my, mx] == 0:  # a whole empty macro-brick: one jump
                        te = t + _brick_exit(pz, py, px, rdz, rdy, rdx, mz, my, mx, b * mb)
                        kk = math.ceil((te - ta_) / step_mm - jit + 1e-6)
                        tn = ta_ + (kk + jit) * step_mm
                        t = tn if tn > t else t + step_mm
                        continue
                    cls = bclass[bz, by, bx]
                    if cls == 0:
                        te = t + _brick_exit(pz, py, px, rdz, rdy, rdx, bz, by, bx, b)
                        kk = math.ceil((te - ta_) / step_mm - jit + 1e-6)
                        tn = ta_ + (kk + jit) * step_mm
                        t = tn if tn > t else t + step_mm
                        continue
                    qv = _tri(q, pz, py, px)
                    li = min(max(int(qv * lut_a + lut_b + 0.5), 0), nlut - 1)
                    if cls == 1:
                        te = t + _brick_exit(pz, py, px, rdz, rdy, rdx, bz, by, bx, b)
                        tn = t + faint_factor * step_mm
                        if tn > te:
                            kk = math.ceil((te - ta_) / step_mm - jit + 1e-6)
                            tn = ta_ + (kk + jit) * step_mm
                            if tn <= t:
                                tn = t + step_mm
                        ds = min(tn, tb_) - t
                        au = lut[li, 3]
                        alpha = 1.0 - (1.0 - au) ** (ds / unit_mm) if au > 0.0 else 0.0
                    else:
                        tn = t + step_mm
                        alpha = alpha_step[li]
                    if alpha > 1e-4:
                        sr = lut[li, 0]
                        sg = lut[li, 1]
                        sb = lut[li, 2]
                        if use_color:
                            ciz = int(pz * c_scale[0] + c_off[0] + 0.5)
                            ciy = int(py * c_scale[1] + c_off[1] + 0.5)
                            cix = int(px * c_scale[2] + c_off[2] + 0.5)
                            if (0 <= ciz < cidx.shape[0] and 0 <= ciy < cidx.shape[1] and 0 <= cix < cidx.shape[2]):
                                ci = cidx[ciz, ciy, cix]
                                if ci > 0:
                                    sr = cmap[ci, 0]
                                    sg = cmap[ci, 1]
                                    sb = cmap[ci, 2]
                        occl = 1.0
                        if use_ao:
                            occl = _tri(ao, (pz - 0.5 * (f_low - 1)) / f_low, (py - 0.5 * (f_low - 1)) / f_low,
                                        (px - 0.5 * (f_low - 1)) / f_low)
                        sh = 1.0
                        if use_shadow:
                            sz = pz + lvz * shadow_offset_mm
                            sy = py + lvy * shadow_offset_mm
                            sx = px + lvx * shadow_offset_mm
                            sh = _tri(shadow, (sz - 0.5 * (f_low - 1)) / f_low, (sy - 0.5 * (f_low - 1)) / f_low,
                                      (sx - 0.5 * (f_low - 1)) / f_low)
                        diff = 0.5
                        spec = 0.0
                        wgt = 0.0
                        if cls == 2:
                            gz = (_tri(q, pz + 1.0, py, px) - _tri(q, pz - 1.0, py, px)) / (2.0 * vspacing[0])
                            gy = (_tri(q, pz, py + 1.0, px) - _tri(q, pz, py - 1.0, px)) / (2.0 * vspacing[1])
                            gx = (_tri(q, pz, py, px + 1.0) - _tri(q, pz, py, px - 1.0)) / (2.0 * vspacing[2])
                            gm = math.sqrt(gz * gz + gy * gy + gx * gx)
                            if gm > 0.0:
                                wgt = min(gm * unit_mm / grad_ref, 1.0)
                                # outward normal = -gradient, turned to face the viewer
                                nzv = -gz / gm
                                nyv = -gy / gm
                                nxv = -gx / gm
                                if nzv * dz + nyv * dy + nxv * dx > 0.0:
                                    nzv = -nzv
                                    nyv = -nyv
                                    nxv = -nxv
                                ndl = nzv * light[0] + nyv * light[1] + nxv * light[2]
                                lam = max(ndl, 0.0)
                                diff = wgt * lam + (1.0 - wgt) * 0.5
                                hz = light[0] - dz
                                hy = light[1] - dy
                                hx = light[2] - dx
                                hn = math.sqrt(hz * hz + hy * hy + hx * hx)
                                if hn > 0.0 and ndl > 0.0:
                                    ndh = max((nzv * hz + nyv * hy + nxv * hx) / hn, 0.0)
                                    spec = wgt * ndh ** shininess
                        lit = occl * (ka + kd * sh * diff)
                        spc = ks * spec * sh * occl
                        wa = (1.0 - acc) * alpha
                        cr += wa * (sr * lit + spc)
                        cg += wa * (sg * lit + spc)
                        cb += wa * (sb * lit + spc)
                        acc += wa
                    t = tn
            out[i, j, 0] = cr
            out[i, j, 1] = cg
            out[i, j, 2] = cb
            out[i, j, 3] = acc
