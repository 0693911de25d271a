"""Reorient arrays read from files to trabecula's frame: axes (z, y, x) aligned with LPS world axes.

Every reader describes its array by the world direction (LPS unit vector, x/y/z components) of each
array axis, the spacing along each array axis and the world position of voxel 0. :func:`to_zyx`
permutes and flips the array so that axis 0 runs along +z, axis 1 along +y and axis 2 along +x,
which is exact for any axis-aligned file. Oblique files keep their nearest axis-aligned order, with a
warning and the true direction cosines kept in the provenance.
"""

from __future__ import annotations

import warnings

import numpy as np


def to_zyx(
    array,
    spacing_axes,
    origin_xyz,
    axis_dirs_xyz,
    source: str = "",
):
    """Return ``(array_zyx, spacing_zyx, origin_zyx, oblique_direction_or_None)``.

    Parameters
    ----------
    array : array, 3-D, in the file's axis order
    spacing_axes : spacing (mm) along each array axis
    origin_xyz : world (LPS, mm) position of the centre of voxel ``[0, 0, 0]``, in x, y, z order
    axis_dirs_xyz : (3, 3) array; row ``a`` is the LPS unit vector (x, y, z) along array axis ``a``
    """
    dirs = np.asarray(axis_dirs_xyz, dtype=float)
    norms = np.linalg.norm(dirs, axis=1, keepdims=True)
    dirs = dirs / np.where(norms == 0, 1, norms)
    world_comp = np.argmax(np.abs(dirs), axis=1)  # x=0, y=1, z=2 for each array axis
    if sorted(world_comp.tolist()) != [0, 1, 2]:
        # degenerate: two axes closest to the same world axis; fall back to file order
        world_comp = np.array([2, 1, 0])
    signs = np.sign(dirs[np.arange(3), world_comp])
    oblique = None
    if np.max(1 - np.abs(dirs[np.arange(3), world_comp])) > 1e-3:
        oblique = dirs.tolist()
        warnings.warn(
            f"{source}: oblique orientation (direction cosines {np.round(dirs, 4).tolist()}); "
            "axes mapped to the nearest of z, y, x without resampling",
            stacklevel=3,
        )
    origin = np.asarray(origin_xyz, dtype=float).copy()
    spacing_axes = np.asarray(spacing_axes, dtype=float)
    shape = np.asarray(array.shape)
    # flip axes that run against the world axis; origin moves to the other end of that axis
    flip_slices = []
    for a in range(3):
        if signs[a] < 0:
            origin = origin + (shape[a] - 1) * spacing_axes[a] * dirs[a]
            flip_slices.append(slice(None, None, -1))
        else:
            flip_slices.append(slice(None))
    array = array[tuple(flip_slices)]
    # array axis a holds world component world_comp[a]; target order is z(2), y(1), x(0)
    order = [int(np.where(world_comp == c)[0][0]) for c in (2, 1, 0)]
    if order != [0, 1, 2]:
        array = array.transpose(order)
    spacing_zyx = tuple(float(spacing_axes[a]) for a in order)
    origin_zyx = (float(origin[2]), float(origin[1]), float(origin[0]))
    return array, spacing_zyx, origin_zyx, oblique
