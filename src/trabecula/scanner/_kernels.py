"""numba kernels: cone-beam Joseph forward projection (several materials at once), voxel-driven FDK
back-projection (general, parallel over z slices; and the circular-orbit form that sweeps z columns) and
parallel-beam back-projection of 2-D slices.

These are the hot loops behind :mod:`trabecula.scanner.project` and :mod:`trabecula.scanner.recon`;
they take plain arrays and floats and are validated against RTK in ``tests/scanner``.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np


@nb.njit(inline="always")
def _plane_range(p0, dp, n):  # pragma: no cover - numba
    """Indices i (0 ≤ i < N) for which p0 + i·dp stays within [0, n − 1]; returns (start, stop)."""
    if dp > 1e-12:
        lo = math.ceil((0.0 - p0) / dp)
        hi = math.floor((n - 1.0 - p0) / dp) + 1
    elif dp < -1e-12:
        lo = math.ceil((n - 1.0 - p0) / dp)
        hi = math.floor((0.0 - p0) / dp) + 1
    else:
        if p0 < 0.0 or p0 > n - 1.0:
            return 0, 0
        return -(2**30), 2**30
    return lo, hi


@nb.njit(parallel=True, fastmath=True, cache=True)
def joseph_cone(vol, origin, spacing, src, det0, eu, ev, us, vs, out):  # pragma: no cover - numba
    """Line integrals through ``vol`` (z, y, x, m ≤ 4) along source→detector-point rays (Joseph 1982).

    For each view b, row r, column c the ray runs from ``src[b]`` to ``det0[b] + us[c]·eu[b] + vs[r]·ev[b]``.
    The ray is sampled once per voxel plane perpendicular to its dominant in-plane axis (x or y); at each
    plane the volume is interpolated bilinearly in the other two axes (zero outside, so pad the volume),
    and the sum is multiplied by the step length. ``out`` is (views, rows, cols, m), float32, mm·value.
    The planes a ray crosses inside the volume are found up front, so the inner loop has no bounds tests.
    """
    nz, ny, nx, nm = vol.shape
    nb_ = src.shape[0]
    nr = vs.shape[0]
    ncl = us.shape[0]
    oz, oy, ox = origin[0], origin[1], origin[2]
    sz, sy, sx = spacing[0], spacing[1], spacing[2]
    for job in nb.prange(nb_ * nr):
        b = job // nr
        r = job % nr
        sxw, syw, szw = src[b, 0], src[b, 1], src[b, 2]
        for c in range(ncl):
            dxw = det0[b, 0] + us[c] * eu[b, 0] + vs[r] * ev[b, 0] - sxw
            dyw = det0[b, 1] + us[c] * eu[b, 1] + vs[r] * ev[b, 1] - syw
            dzw = det0[b, 2] + us[c] * eu[b, 2] + vs[r] * ev[b, 2] - szw
            norm = math.sqrt(dxw * dxw + dyw * dyw + dzw * dzw)
            a0 = 0.0
            a1 = 0.0
            a2 = 0.0
            a3 = 0.0
            xmain = abs(dxw) * sy >= abs(dyw) * sx  # dominant axis in voxel units
            if xmain:
                step = sx * norm / abs(dxw)
                # at plane i: lam = (ox + i sx − sxw)/dxw; secondary coordinates affine in i
                l0 = (ox - sxw) / dxw
                dl = sx / dxw
                fa0 = (syw + l0 * dyw - oy) / sy
                dfa = dl * dyw / sy
                fz0 = (szw + l0 * dzw - oz) / sz
                dfz = dl * dzw / sz
                na = ny
                nmain = nx
            else:
                step = sy * norm / abs(dyw)
                l0 = (oy - syw) / dyw
                dl = sy / dyw
                fa0 = (sxw + l0 * dxw - ox) / sx
                dfa = dl * dxw / sx
                fz0 = (szw + l0 * dzw - oz) / sz
                dfz = dl * dzw / sz
                na = nx
                nmain = ny
            lo1, hi1 = _plane_range(fa0, dfa, na)
            lo2, hi2 = _plane_range(fz0, dfz, nz)
            i0 = max(0, lo1, lo2)
            i1 = min(nmain, hi1, hi2)
            for i in range(i0, i1):
                fa = fa0 + i * dfa
                fz = fz0 + i * dfz
                ja = min(max(int(fa), 0), na - 2)
                kz = min(max(int(fz), 0), nz - 2)
                wa = fa - ja
                wz = fz - kz
                w00 = (1.0 - wz) * (1.0 - wa)
                w01 = (1.0 - wz) * wa
                w10 = wz * (1.0 - wa)
                w11 = wz * wa
                if xmain:
                    a0 += (w00 * vol[kz, ja, i, 0] + w01 * vol[kz, ja + 1, i, 0]
                           + w10 * vol[kz + 1, ja, i, 0] + w11 * vol[kz + 1, ja + 1, i, 0])
                    if nm > 1:
                        a1 += (w00 * vol[kz, ja, i, 1] + w01 * vol[kz, ja + 1, i, 1]
                               + w10 * vol[kz + 1, ja, i, 1] + w11 * vol[kz + 1, ja + 1, i, 1])
                    if nm > 2:
                        a2 += (w00 * vol[kz, ja, i, 2] + w01 * vol[kz, ja + 1, i, 2]
                               + w10 * vol[kz + 1, ja, i, 2] + w11 * vol[kz + 1, ja + 1, i, 2])
                    if nm > 3:
                        a3 += (w00 * vol[kz, ja, i, 3] + w01 * vol[kz, ja + 1, i, 3]
                               + w10 * vol[kz + 1, ja, i, 3] + w11 * vol[kz + 1, ja + 1, i, 3])
                else:
                    a0 += (w00 * vol[kz, i, ja, 0] + w01 * vol[kz, i, ja + 1, 0]
                           + w10 * vol[kz + 1, i, ja, 0] + w11 * vol[kz + 1, i, ja + 1, 0])
                    if nm > 1:
                        a1 += (w00 * vol[kz, i, ja, 1] + w01 * vol[kz, i, ja + 1, 1]
                               + w10 * vol[kz + 1, i, ja, 1] + w11 * vol[kz + 1, i, ja + 1, 1])
                    if nm > 2:
                        a2 += (w00 * vol[kz, i, ja, 2] + w01 * vol[kz, i, ja + 1, 2]
                               + w10 * vol[kz + 1, i, ja, 2] + w11 * vol[kz + 1, i, ja + 1, 2])
                    if nm > 3:
                        a3 += (w00 * vol[kz, i, ja, 3] + w01 * vol[kz, i, ja + 1, 3]
                               + w10 * vol[kz + 1, i, ja, 3] + w11 * vol[kz + 1, i, ja + 1, 3])
            out[b, r, c, 0] = a0 * step
            if nm > 1:
                out[b, r, c, 1] = a1 * step
            if nm > 2:
                out[b, r, c, 2] = a2 * step
            if nm > 3:
                out[b, r, c, 3] = a3 * step


@nb.njit(parallel=True, fastmath=True, cache=True)
def fdk_backproject(proj, mats, u0, v0, du, dv, sid, origin, spacing, shape, scale, out):  # pragma: no cover
    """Voxel-driven FDK back-projection: out[z, y, x] += scale · Σ_b (SID/W)² · proj_b(u, v) (bilinear).

    ``proj`` (views, rows, cols) are weighted, filtered projections; ``mats`` (views, 3, 4) the projection
    matrices on world (x, y, z, 1); a voxel projects to u = U/W, v = V/W; samples outside the detector
    contribute 0. Parallel over z slices: each thread keeps one slice hot in cache while it loops over
    views, so the detector band it reads stays in cache too.
    """
    nzv, nyv, nxv = shape[0], shape[1], shape[2]
    nviews, nrows, ncols = proj.shape
    oz, oy, ox = origin[0], origin[1], origin[2]
    sz, sy, sx = spacing[0], spacing[1], spacing[2]
    inv_du = 1.0 / du
    inv_dv = 1.0 / dv
    for k in nb.prange(nzv):
        zw = oz + k * sz
        for b in range(nviews):
            m = mats[b]
            for j in range(nyv):
                yw = oy + j * sy
                # U, V, W are affine in x along a row
                U0 = m[0, 1] * yw + m[0, 2] * zw + m[0, 3] + m[0, 0] * ox
                V0 = m[1, 1] * yw + m[1, 2] * zw + m[1, 3] + m[1, 0] * ox
                W0 = m[2, 1] * yw + m[2, 2] * zw + m[2, 3] + m[2, 0] * ox
                dU = m[0, 0] * sx
                dV = m[1, 0] * sx
                dW = m[2, 0] * sx
                for i in range(nxv):
                    W = W0 + i * dW
                    iw = 1.0 / W
                    fu = ((U0 + i * dU) * iw - u0) * inv_du
                    fv = ((V0 + i * dV) * iw - v0) * inv_dv
                    if fu < 0.0 or fv < 0.0 or fu > ncols - 1.0 or fv > nrows - 1.0:
                        continue
                    cu = min(int(fu), ncols - 2)
                    rv = min(int(fv), nrows - 2)
                    au = fu - cu
                    av = fv - rv
                    val = ((1.0 - av) * ((1.0 - au) * proj[b, rv, cu] + au * proj[b, rv, cu + 1])
                           + av * ((1.0 - au) * proj[b, rv + 1, cu] + au * proj[b, rv + 1, cu + 1]))
                    wd = sid * iw
                    out[k, j, i] += scale * wd * wd * val


@nb.njit(parallel=True, fastmath=True, cache=True)
def fdk_backproject_circular(proj_t, mats, u0, v0, du, dv, sid, origin, spacing, shape, scale, out_yxz):  # pragma: no cover
    """FDK back-projection for a circular orbit about z with an untilted detector (trabecula's geometry).

    There U and W do not depend on z and V = m12·z, so for each (view, y, x) the column position, its
    interpolation weight and the distance weight are computed once and the whole z column of voxels is
    swept with v linear in z (its valid range solved up front). ``proj_t`` is (views, cols, rows) — the
    projections transposed so the z sweep reads contiguous memory — and ``out_yxz`` is (y, x, z).
    Parallel over y. Same arithmetic as :func:`fdk_backproject`, about twice as fast.
    """
    nzv, nyv, nxv = shape[0], shape[1], shape[2]
    nviews, ncols, nrows = proj_t.shape
    oz, oy, ox = origin[0], origin[1], origin[2]
    sz, sy, sx = spacing[0], spacing[1], spacing[2]
    inv_du = 1.0 / du
    inv_dv = 1.0 / dv
    for j in nb.prange(nyv):
        yw = oy + j * sy
        for b in range(nviews):
            m = mats[b]
            U0 = m[0, 1] * yw + m[0, 3] + m[0, 0] * ox
            W0 = m[2, 1] * yw + m[2, 3] + m[2, 0] * ox
            dU = m[0, 0] * sx
            dW = m[2, 0] * sx
            m12 = m[1, 2]
            for i in range(nxv):
                iw = 1.0 / (W0 + i * dW)
                fu = ((U0 + i * dU) * iw - u0) * inv_du
                if fu < 0.0 or fu > ncols - 1.0:
                    continue
                cu = min(int(fu), ncols - 2)
                au = fu - cu
                wd = sid * iw
                w = scale * wd * wd
                a = (m12 * oz * iw - v0) * inv_dv  # fv(k) = a + k·c
                c = m12 * sz * iw * inv_dv
                if c > 0.0:
                    k0 = max(0, int(math.ceil(-a / c)))
                    k1 = min(nzv, int(math.floor((nrows - 1.0 - a) / c)) + 1)
                elif c < 0.0:
                    k0 = max(0, int(math.ceil((nrows - 1.0 - a) / c)))
                    k1 = min(nzv, int(math.floor(-a / c)) + 1)
                else:
                    if a < 0.0 or a > nrows - 1.0:
                        continue
                    k0 = 0
                    k1 = nzv
                p0 = proj_t[b, cu]
                p1 = proj_t[b, cu + 1]
                for k in range(k0, k1):
                    fv = a + k * c
                    rv = min(max(int(fv), 0), nrows - 2)
                    av = fv - rv
                    lo = (1.0 - au) * p0[rv] + au * p1[rv]
                    hi = (1.0 - au) * p0[rv + 1] + au * p1[rv + 1]
                    out_yxz[j, i, k] += w * (lo + av * (hi - lo))


@nb.njit(parallel=True, fastmath=True, cache=True)
def parallel_backproject(sino, cos_t, sin_t, center, n, pixel, scale, out):  # pragma: no cover
    """Parallel-beam back-projection of filtered sinograms (slices, views, cols) onto (slices, n, n) images.

    Image pixel (j, i) sits at x = (i − (n−1)/2)·pixel, y = ((n−1)/2 − j)·pixel (y up); it reads detector
    position t = x cos θ + y sin θ at column ``center + t/pixel`` (linear interpolation, 0 outside).
    """
    ns, nv, nc = sino.shape
    half = (n - 1) / 2.0
    for job in nb.prange(ns * n):
        s = job // n
        j = job % n
        y = (half - j)
        for b in range(nv):
            c = cos_t[b]
            sn = sin_t[b]
            base = center + y * sn
            for i in range(n):
                x = i - half
                f = base + x * c
                if f < 0.0 or f > nc - 1.0:
                    continue
                ic = min(int(f), nc - 2)
                a = f - ic
                out[s, j, i] += scale * ((1.0 - a) * sino[s, b, ic] + a * sino[s, b, ic + 1])


@nb.njit(parallel=True, fastmath=True, cache=True)
def polychromatic(paths, mu_tab, sig_w, var_w, sig_out, var_out):  # pragma: no cover - numba
    """Expected energy-integrated signal and its variance behind the object, per ray.

    ``paths`` (n, m) path lengths (mm) per material, ``mu_tab`` (m, nb) μ (1/mm) per material and energy
    bin, ``sig_w``/``var_w`` (nb) the unattenuated per-ray signal and variance weights. Beer–Lambert per bin:
    T_b = exp(−Σ_m μ_mb L_m); signal = Σ_b sig_w_b T_b, variance = Σ_b var_w_b T_b.
    """
    n, nm = paths.shape
    nbins = mu_tab.shape[1]
    for i in nb.prange(n):
        s = 0.0
        v = 0.0
        for b in range(nbins):
            a = 0.0
            for m in range(nm):
                a += mu_tab[m, b] * paths[i, m]
            t = math.exp(-a)
            s += sig_w[b] * t
            v += var_w[b] * t
        sig_out[i] = s
        var_out[i] = v


def warmup() -> None:
    """Compile the kernels on tiny inputs (numba caches the machine code on disk)."""
    vol = np.zeros((3, 3, 3, 1), np.float32)
    o = np.zeros(3)
    sp = np.ones(3)
    src = np.array([[0.0, 10.0, 0.0]])
    d0 = np.array([[0.0, -10.0, 0.0]])
    eu = np.array([[1.0, 0.0, 0.0]])
    ev = np.array([[0.0, 0.0, 1.0]])
    out = np.zeros((1, 1, 1, 1), np.float32)
    joseph_cone(vol, o, sp, src, d0, eu, ev, np.zeros(1), np.zeros(1), out)
    mats = np.zeros((1, 3, 4))
    mats[0, 2, 3] = 1.0
    fdk_backproject(np.zeros((1, 2, 2), np.float32), mats, 0.0, 0.0, 1.0, 1.0, 1.0, o, sp,
                    np.array([1, 1, 1]), 1.0, np.zeros((1, 1, 1), np.float32))
    fdk_backproject_circular(np.zeros((1, 2, 2), np.float32), mats, 0.0, 0.0, 1.0, 1.0, 1.0, o, sp,
                             np.array([1, 1, 1]), 1.0, np.zeros((1, 1, 1), np.float32))
