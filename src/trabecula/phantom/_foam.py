"""Voronoi-foam trabecular structure: distance fields to cell edges (rods) and faces (plates).

The structure is the cell skeleton of a Voronoi tessellation of jittered lattice seeds, the classical
cellular model of trabecular bone (Gibson 1985, *J Biomech* 18:317; Silva & Gibson 1997, *Bone*
21:191). For every voxel the three nearest seeds ``a, b, c`` (in the *compressed* frame ``u = x / S``,
where ``S`` stretches the cells along the main axis) define

* the two cell faces bounding the voxel's cell near it: the bisector planes of ``(a, b)`` and ``(a, c)``,
  mapped back to the real frame (an affine map keeps planes planar), and their exact real-space
  distances ``|r_ab|``, ``|r_ac|``;
* the cell edge: the intersection line of those two planes, whose real-space distance is
  ``sqrt((r1² - 2 g r1 r2 + r2²) / (1 - g²))`` with ``g`` the cosine between the unit normals.

Each face and each edge carries two hashed uniforms (from the sorted seed ids and the seed): one picks
it (plate present, rod kept), one scales its thickness (``1 ± cv·√3``, uniform). A voxel is bone when
it lies within half the local thickness of a kept rod or of a plate face. The fields are exact in the
continuum (no voxel skeleton), so thickness is controlled to a fraction of a voxel.
"""

from __future__ import annotations

import numba
import numpy as np

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)


@numba.njit(cache=True, inline="always")
def _mix(x):
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


@numba.njit(cache=True, inline="always")
def _uniform(key, salt):
    h = _mix(key * _GOLD + salt)
    return np.float64(h >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@numba.njit(cache=True, inline="always")
def _pair_key(i, j, seed):
    lo = min(i, j)
    hi = max(i, j)
    return _mix(_mix(lo + np.uint64(seed) * _GOLD) ^ (hi * _M1))


@numba.njit(cache=True, inline="always")
def _triple_key(i, j, k, seed):
    a = min(i, min(j, k))
    c = max(i, max(j, k))
    b = i + j + k - a - c
    h = _mix(a + np.uint64(seed) * _GOLD)
    h = _mix(h ^ (b * np.uint64(2654435761)))
    return _mix(h ^ (c * _M1))


@numba.njit(cache=True)
def lattice_seeds(base, shape, cell, jitter, seed):  # pragma: no cover - numba
    """Seed positions (compressed frame, mm) of lattice cells ``base + (0..shape)``, shape (*shape, 3).

    Cell ``(I, J, K)`` spans ``[I, I+1) * cell`` per axis and holds one seed at its centre plus a uniform
    jitter of ``± jitter * cell`` per axis, hashed from the global index and ``seed`` (so a cell keeps its
    seed when the box or the cell size changes: calibration moves the structure continuously).
    """
    out = np.empty((shape[0], shape[1], shape[2], 3))
    for a in range(shape[0]):
        for b in range(shape[1]):
            for c in range(shape[2]):
                key = _cell_key(base[0] + a, base[1] + b, base[2] + c)
                h = _mix(key + np.uint64(seed) * _M2)
                for d in range(3):
                    u = _uniform(h, np.uint64(101 + d))
                    out[a, b, c, d] = (base[d] + (a, b, c)[d] + 0.5 + jitter * (2.0 * u - 1.0)) * cell
    return out


@numba.njit(cache=True, inline="always")
def _cell_key(i, j, k):
    off = np.int64(1 << 20)
    return (np.uint64(i + off) << np.uint64(42)) | (np.uint64(j + off) << np.uint64(21)) | np.uint64(k + off)


@numba.njit(cache=True, parallel=True)
def foam_fields(z0, nz, ny, nx, voxel, stretch, base, cell, jitter, seeds, seed, cv,
                e_out, ue_out, p1_out, u1_out, p2_out, u2_out):  # pragma: no cover - numba
    """Fill the six per-voxel fields for slices ``z0 .. z0+nz`` (see module docstring).

    ``seeds``: (Gz, Gy, Gx, 3) seed positions in the compressed frame (mm) of the lattice cells
    ``base + (i, j, k)`` (cell ``I`` spans ``[I, I+1) * cell``); voxel centres are at
    ``(index + 0.5) * voxel`` (mm, real frame, from the box corner).
    Outputs (float32, shape (nz, ny, nx)): rod distance / rod thickness factor, rod uniform, the two
    face distances / face thickness factors and their uniforms.
    """
    gz, gy, gx = seeds.shape[0], seeds.shape[1], seeds.shape[2]
    lo = np.empty(3)
    for d in range(3):
        lo[d] = base[d] * cell
    sw = 0.5 * cv * np.sqrt(3.0)
    # seeds lie at least (0.5 - jitter) cells inside their lattice cell
    margin = (0.5 - jitter) * cell
    for iz in numba.prange(nz):
        xz = (z0 + iz + 0.5) * voxel[0]
        uz = xz / stretch[0]
        for iy in range(ny):
            xy = (iy + 0.5) * voxel[1]
            uy = xy / stretch[1]
            for ix in range(nx):
                xx = (ix + 0.5) * voxel[2]
                ux = xx / stretch[2]
                cz = int(np.floor((uz - lo[0]) / cell))
                cy = int(np.floor((uy - lo[1]) / cell))
                cx = int(np.floor((ux - lo[2]) / cell))
                d0 = 1e300
                d1 = 1e300
                d2 = 1e300
                i0 = -1
                i1 = -1
                i2 = -1
                for reach in (1, 2):
                    if reach == 2:
                        # exact unless a seed outside the 3x3x3 block could be among the 3 nearest
                        m = min(uz - (lo[0] + (cz - 1) * cell), lo[0] + (cz + 2) * cell - uz,
                                uy - (lo[1] + (cy - 1) * cell), lo[1] + (cy + 2) * cell - uy,
                                ux - (lo[2] + (cx - 1) * cell), lo[2] + (cx + 2) * cell - ux) + margin
                        if d2 <= m * m:
                            break
                        d0 = 1e300
                        d1 = 1e300
                        d2 = 1e300
                    for a in range(max(cz - reach, 0), min(cz + reach + 1, gz)):
                        for b in range(max(cy - reach, 0), min(cy + reach + 1, gy)):
                            for c in range(max(cx - reach, 0), min(cx + reach + 1, gx)):
                                dz = uz - seeds[a, b, c, 0]
                                dy = uy - seeds[a, b, c, 1]
                                dx = ux - seeds[a, b, c, 2]
                                d = dz * dz + dy * dy + dx * dx
                                if d < d2:
                                    idx = np.int64((a * gy + b) * gx + c)
                                    if d < d1:
                                        d2 = d1
                                        i2 = i1
                                        if d < d0:
                                            d1 = d0
                                            i1 = i0
                                            d0 = d
                                            i0 = idx
                                        else:
                                            d1 = d
                                            i1 = idx
                                    else:
                                        d2 = d
                                        i2 = idx
                # seed positions of the three nearest
                a0 = i0 // (gy * gx)
                b0 = (i0 // gx) % gy
                c0 = i0 % gx
                a1 = i1 // (gy * gx)
                b1 = (i1 // gx) % gy
                c1 = i1 % gx
                a2 = i2 // (gy * gx)
                b2 = (i2 // gx) % gy
                c2 = i2 % gx
                g0 = _cell_key(base[0] + a0, base[1] + b0, base[2] + c0)
                g1 = _cell_key(base[0] + a1, base[1] + b1, base[2] + c1)
                g2 = _cell_key(base[0] + a2, base[1] + b2, base[2] + c2)
                sa = seeds[a0, b0, c0]
                sb = seeds[a1, b1, c1]
                sc = seeds[a2, b2, c2]
                # plane (a, b): ((sb - sa) / S) . x = (|sb|^2 - |sa|^2) / 2, in the real frame
                m1z = (sb[0] - sa[0]) / stretch[0]
                m1y = (sb[1] - sa[1]) / stretch[1]
                m1x = (sb[2] - sa[2]) / stretch[2]
                k1 = 0.5 * (sb[0] ** 2 + sb[1] ** 2 + sb[2] ** 2 - sa[0] ** 2 - sa[1] ** 2 - sa[2] ** 2)
                n1 = np.sqrt(m1z * m1z + m1y * m1y + m1x * m1x)
                r1 = (m1z * xz + m1y * xy + m1x * xx - k1) / n1
                m2z = (sc[0] - sa[0]) / stretch[0]
                m2y = (sc[1] - sa[1]) / stretch[1]
                m2x = (sc[2] - sa[2]) / stretch[2]
                k2 = 0.5 * (sc[0] ** 2 + sc[1] ** 2 + sc[2] ** 2 - sa[0] ** 2 - sa[1] ** 2 - sa[2] ** 2)
                n2 = np.sqrt(m2z * m2z + m2y * m2y + m2x * m2x)
                r2 = (m2z * xz + m2y * xy + m2x * xx - k2) / n2
                g = (m1z * m2z + m1y * m2y + m1x * m2x) / (n1 * n2)
                den = 1.0 - g * g
                if den > 1e-9:
                    de = np.sqrt(max(0.0, (r1 * r1 - 2.0 * g * r1 * r2 + r2 * r2) / den))
                else:
                    de = 1e30
                kt = _triple_key(g0, g1, g2, seed)
                we = 1.0 + sw * (2.0 * _uniform(kt, np.uint64(7)) - 1.0)
                e_out[iz, iy, ix] = de / we
                ue_out[iz, iy, ix] = _uniform(kt, np.uint64(3))
                kp = _pair_key(g0, g1, seed)
                w1 = 1.0 + sw * (2.0 * _uniform(kp, np.uint64(11)) - 1.0)
                p1_out[iz, iy, ix] = abs(r1) / w1
                u1_out[iz, iy, ix] = _uniform(kp, np.uint64(5))
                kp = _pair_key(g0, g2, seed)
                w2 = 1.0 + sw * (2.0 * _uniform(kp, np.uint64(11)) - 1.0)
                p2_out[iz, iy, ix] = abs(r2) / w2
                u2_out[iz, iy, ix] = _uniform(kp, np.uint64(5))
