"""Analytic test shapes with known thickness: plates, rods, discs, spheres, as binary (or coverage) arrays (z, y, x).

The shapes morphometry is tested and benchmarked on (BoneJ's practice: a test per shape whose answer is known).

``bonej_*`` rebuild the shapes of BoneJ's own LocalThicknessTest/TestDataMaker (ImageJ ``fillOval`` discs:
a pixel is filled when its centre lies inside the ellipse inscribed in the box); the ``oversampled_*``
shapes are rendered at 8× resolution per axis and a voxel is bone when at least half of it is inside the true
shape (1/512 of a voxel's volume per sub-sample).
"""

from __future__ import annotations

import numpy as np


def fill_oval(shape2d: tuple[int, int], x: int, y: int, w: int, h: int) -> np.ndarray:
    """ImageJ ``ip.fillOval(x, y, w, h)`` on an (rows, cols) image: pixel centres inside the inscribed ellipse."""
    out = np.zeros(shape2d, bool)
    if w <= 0 or h <= 0:
        return out
    jj, ii = np.mgrid[0:shape2d[0], 0:shape2d[1]]
    cx, cy = x + w / 2.0, y + h / 2.0
    return ((ii + 0.5 - cx) / (w / 2.0)) ** 2 + ((jj + 0.5 - cy) / (h / 2.0)) ** 2 <= 1.0


def bonej_brick(width: int, height: int, depth: int) -> np.ndarray:
    """TestDataMaker.brick: a width × height × depth brick padded by one background voxel on every face."""
    a = np.zeros((depth + 2, height + 2, width + 2), bool)
    a[1:-1, 1:-1, 1:-1] = True
    return a


def bonej_rod(length: int, diameter: int) -> np.ndarray:
    """TestDataMaker.rod: a z-oriented rod of ``fillOval`` discs in a 2d × 2d stack (touching the z ends)."""
    disc = fill_oval((2 * diameter, 2 * diameter), diameter // 2, diameter // 2, diameter, diameter)
    return np.repeat(disc[None], length, axis=0)


def bonej_sphere(radius: int) -> np.ndarray:
    """TestDataMaker.sphere: discs of diameter 2·round(sqrt(r² − z²)), one background slice above and below."""
    side = 2 * radius + 2
    slices = [np.zeros((side, side), bool)]
    for zd in range(-radius, radius + 1):
        rc = int(round(np.sqrt(radius * radius - zd * zd)))
        slices.append(fill_oval((side, side), radius + 1 - rc, radius + 1 - rc, 2 * rc, 2 * rc))
    slices.append(np.zeros((side, side), bool))
    return np.stack(slices)


def oversampled_disc(diameter: float, offset=(0.0, 0.0), ss: int = 8, margin: int = 3) -> np.ndarray:
    n = int(np.ceil(diameter)) + 2 * margin
    c = np.array([n / 2 - 0.5 + offset[0], n / 2 - 0.5 + offset[1]])
    g = (np.arange(n * ss) + 0.5) / ss - 0.5
    yy, xx = np.meshgrid(g, g, indexing="ij")
    inside = ((yy - c[0]) ** 2 + (xx - c[1]) ** 2 <= (diameter / 2) ** 2).astype(np.float32)
    return inside.reshape(n, ss, n, ss).mean(axis=(1, 3)) >= 0.5


def oversampled_rod(diameter: float, length: int = 6, offset=(0.0, 0.0)) -> np.ndarray:
    """A z-oriented rod of the given diameter (voxels), touching the z ends of the image (it continues)."""
    return np.repeat(oversampled_disc(diameter, offset)[None], length, axis=0)


def oversampled_sphere(radius: float, offset=(0.0, 0.0, 0.0), ss: int = 8, margin: int = 3) -> np.ndarray:
    n = int(np.ceil(2 * radius)) + 2 * margin
    c = n / 2 - 0.5 + np.asarray(offset, float)
    g = (np.arange(n * ss) + 0.5) / ss - 0.5
    out = np.zeros((n, n, n), bool)
    yy, xx = np.meshgrid(g, g, indexing="ij")
    r2 = radius * radius
    for k in range(n):  # slab by slab to bound memory
        zz = g[k * ss:(k + 1) * ss][:, None, None]
        inside = ((zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2 <= r2).astype(np.float32)
        out[k] = inside.reshape(ss, n, ss, n, ss).mean(axis=(0, 2, 4)) >= 0.5
    return out


def plate(t: int, size: int = 32, pad: int = 3) -> np.ndarray:
    """A z-plate of exactly t voxels spanning the image in y and x (the plate continues past the border)."""
    a = np.zeros((t + 2 * pad, size, size), bool)
    a[pad:pad + t] = True
    return a


def subvoxel_offsets(n: int, dims: int) -> list[tuple[float, ...]]:
    """``n**dims`` stratified sub-voxel positions (cell centres of an n-grid over [-½, ½)): the accuracy of a
    shape is its mean over where it sits on the lattice, and a regular grid samples that without the noise
    of a few random draws."""
    g = (np.arange(n) + 0.5) / n - 0.5
    return [tuple(float(v) for v in t) for t in np.stack(np.meshgrid(*[g] * dims, indexing="ij"), -1).reshape(-1, dims)]


def coverage(n: int, ss: int, inside_fn) -> np.ndarray:
    """Anti-aliased rendering on an n³ grid: the fraction (float32, 0–1) of each voxel's ``ss³`` sub-samples
    where ``inside_fn(z, y, x)`` (sub-sample coordinates in voxel units, broadcast arrays) is true."""
    g = (np.arange(n * ss) + 0.5) / ss - 0.5
    out = np.zeros((n, n, n), np.float32)
    yy, xx = np.meshgrid(g, g, indexing="ij")
    for k in range(n):  # slab by slab to bound memory
        zz = g[k * ss:(k + 1) * ss][:, None, None]
        inside = inside_fn(zz, yy[None], xx[None]).astype(np.float32)
        out[k] = inside.reshape(ss, n, ss, n, ss).mean(axis=(0, 2, 4))
    return out


def _oriented(n: int, ss: int, inside_fn) -> np.ndarray:
    """Half-coverage digitisation on an n³ grid (``ss`` sub-samples per axis) of the set where
    ``inside_fn(z, y, x)`` is true (:func:`coverage` ≥ ½)."""
    return coverage(n, ss, inside_fn) >= 0.5


def random_unit_vector(rng: np.random.Generator) -> np.ndarray:
    """A direction drawn uniformly on the sphere, (z, y, x)."""
    v = rng.standard_normal(3)
    return v / np.linalg.norm(v)


def oriented_rod(diameter: float, axis, rng: np.random.Generator, ss: int = 4, grey: bool = False) -> np.ndarray:
    """A straight rod of the given diameter (voxels) along ``axis`` (z, y, x), through a random sub-voxel point
    near the centre of a cube it crosses from face to face (the border continues it); oversampled ``ss``×
    per axis, half coverage (``grey``: the coverage fractions, anti-aliased)."""
    a = np.asarray(axis, float)
    a = a / np.linalg.norm(a)
    n = int(3 * diameter + 12)
    c = n / 2 - 0.5 + rng.uniform(-0.5, 0.5, 3)

    def inside(z, y, x):
        v = (z - c[0], y - c[1], x - c[2])
        t = v[0] * a[0] + v[1] * a[1] + v[2] * a[2]
        return v[0] ** 2 + v[1] ** 2 + v[2] ** 2 - t * t <= (diameter / 2) ** 2

    return coverage(n, ss, inside) if grey else _oriented(n, ss, inside)


def oriented_plate(thickness: float, normal, rng: np.random.Generator, ss: int = 4, grey: bool = False) -> np.ndarray:
    """A plate of the given thickness (voxels) with unit ``normal`` (z, y, x) through a random sub-voxel point
    near the centre of a cube it spans (the border continues it); oversampled ``ss``× per axis (``grey``:
    the coverage fractions, anti-aliased)."""
    nv = np.asarray(normal, float)
    nv = nv / np.linalg.norm(nv)
    n = int(3 * thickness + 10)
    c = n / 2 - 0.5 + rng.uniform(-0.5, 0.5, 3)

    def inside(z, y, x):
        return np.abs((z - c[0]) * nv[0] + (y - c[1]) * nv[1] + (x - c[2]) * nv[2]) <= thickness / 2

    return coverage(n, ss, inside) if grey else _oriented(n, ss, inside)


def anti_aliased_sphere(diameter: float, rng: np.random.Generator, ss: int = 8) -> np.ndarray:
    """A sphere (diameter in voxels) at a random sub-voxel position: coverage fractions (float32, 0–1)."""
    n = int(np.ceil(diameter)) + 8
    c = n / 2 - 0.5 + rng.uniform(-0.5, 0.5, 3)
    r2 = (diameter / 2) ** 2
    return coverage(n, ss, lambda z, y, x: (z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2 <= r2)


def central_ball(shape: tuple[int, int, int]) -> np.ndarray:
    """Voxels within a quarter of the cube's side of its centre.

    An oriented shape crossing the cube leaves it obliquely; with ``border="continue"`` the distance to the
    background near the border is measured only inside the image, so the cut ends read thicker than the
    shape (oriented plates: +1 to +5 % over the whole cube). The mean over this central ball is the shape's
    own thickness."""
    g = [np.arange(n) - (n - 1) / 2 for n in shape]
    z, y, x = np.meshgrid(*g, indexing="ij")
    return z * z + y * y + x * x <= (min(shape) / 4) ** 2
