"""SMI chunk by chunk: the block sums of any partition (slabs along z, or 3-D blocks with SMI_HALO of context)
add up to the one-block computation of the whole image, to rounding (1e-9 relative), on real bone (a DIDSR L1
region crop), on synthetic rods and plates, and inside a VOI mask."""

from __future__ import annotations

import math
import warnings
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from trabecula.morphometry import smi as smi_mod
from trabecula.morphometry.smi import (
    SMI_HALO,
    SMISums,
    combine_smi_sums,
    smi_block_sums,
    structure_model_index,
)
from trabecula.phantom.shapes import oversampled_rod, plate

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "didsr_l1_vertebra"
REGION = DATA / "Segmentation-grayscale-1_06219.nrrd"
SP = (0.05, 0.05, 0.05)
REL = 1e-9


@pytest.fixture(scope="module")
def crop() -> np.ndarray:
    if not REGION.exists():
        pytest.skip("the DIDSR regions are not in ../shared/data")
    from trabecula.io import read_volume

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the header's 1.0 mm spacing is overridden
        v = read_volume(REGION, spacing=0.05, units="binary")
    return np.ascontiguousarray(v.numpy()[90:210, 90:210, 90:210] != 0)


def one_block(b, voi=None, sp=SP):
    return combine_smi_sums([smi_block_sums(b, voi, (slice(None),) * 3, sp)], sp)


def chunked(b, voi, cuts, sp=SP, halo=SMI_HALO):
    """Blocks cut at ``cuts`` (one list of interior cut positions per axis), each with ``halo`` of context."""
    edges = [[0, *c, n] for c, n in zip(cuts, b.shape, strict=True)]
    sums = []
    for z0, z1 in pairwise(edges[0]):
        for y0, y1 in pairwise(edges[1]):
            for x0, x1 in pairwise(edges[2]):
                a, e = (z0, y0, x0), (z1, y1, x1)
                lo = [max(0, v - halo) for v in a]
                hi = [min(n, v + halo) for v, n in zip(e, b.shape, strict=True)]
                ext = tuple(slice(p, q) for p, q in zip(lo, hi, strict=True))
                own = tuple(slice(v - p, w - p) for v, w, p in zip(a, e, lo, strict=True))
                sums.append(smi_block_sums(b[ext], None if voi is None else voi[ext], own, sp))
    return combine_smi_sums(sums, sp)


def assert_same(a, b, rel=REL):
    for k in ("smi", "concave_fraction", "surface_mm2", "volume_mm3"):
        x, y = getattr(a, k), getattr(b, k)
        assert (math.isnan(x) and math.isnan(y)) or abs(x - y) <= rel * abs(y), (k, x, y)


@pytest.fixture
def thin_slabs(monkeypatch):
    """structure_model_index with 8-slice slabs, so that a small test image is cut into many of them."""
    monkeypatch.setattr(smi_mod, "_SLAB_MIN_VOXELS", 0)
    monkeypatch.setattr(smi_mod, "_SLAB_SHARE", 0.0)


def test_slabs_equal_one_block_on_real_bone(crop, thin_slabs):
    whole = one_block(crop)
    assert 0.5 < whole.smi < 3.0 and 0.1 < whole.concave_fraction < 0.6  # real trabecular bone
    assert smi_mod._slab_thickness(crop.shape) == 8
    assert_same(structure_model_index(crop, SP), whole)


def test_default_slabs_equal_one_block_on_real_bone(crop):
    assert smi_mod._slab_thickness(crop.shape) < crop.shape[0]  # even the default cuts this crop
    assert_same(structure_model_index(crop, SP), one_block(crop))


def test_3d_blocks_with_halos_equal_the_whole(crop):
    # uneven blocks, some thinner than the halo, split along y and x too
    assert_same(chunked(crop, None, [[37, 45], [50], [23, 61, 100]]), one_block(crop))


def test_more_context_than_the_halo_changes_nothing(crop):
    assert_same(chunked(crop, None, [[60], [], [60]], halo=SMI_HALO + 5), one_block(crop))


def test_too_little_context_is_caught_by_these_comparisons(crop):
    # a block given 2 voxels of context takes its cut faces for the image's edge: not the whole image's mesh
    bad = chunked(crop, None, [[60], [], [60]], halo=2)
    assert abs(bad.surface_mm2 - one_block(crop).surface_mm2) > 1e-6 * bad.surface_mm2


def test_voi_mask_chunked_and_slabs_equal_one_block(crop, thin_slabs):
    zz, yy, xx = np.mgrid[:120, :120, :120]
    voi = (yy - 55) ** 2 + (xx - 62) ** 2 < 45 ** 2  # a cylinder along z, off centre
    voi[:7] = False
    voi[101:] = False
    whole = one_block(crop, voi)
    assert whole.volume_mm3 == pytest.approx(np.count_nonzero(crop & voi) * 0.05 ** 3, rel=1e-12)
    assert_same(structure_model_index(crop, SP, voi), whole)
    assert_same(chunked(crop, voi, [[40, 80], [30, 90], [62]]), whole)
    # the VOI's cut faces are not bone surface: less surface than the whole crop's
    assert whole.surface_mm2 < 0.8 * one_block(crop).surface_mm2


def test_rod_and_plate_slabs(thin_slabs):
    rod = oversampled_rod(24, length=40)
    r = structure_model_index(rod)
    assert r.smi == pytest.approx(3.0, rel=0.10) and r.concave_fraction < 0.05
    assert_same(r, one_block(rod, sp=(1.0, 1.0, 1.0)))
    assert_same(chunked(rod, None, [[13], [11], [17]], sp=(1.0, 1.0, 1.0)), r)
    p = plate(20, size=64).transpose(1, 0, 2)  # the plate's normal along y: the slabs cut through it
    q = structure_model_index(p)
    assert q.smi == pytest.approx(0.0, abs=0.05) and q.concave_fraction == 0.0
    assert_same(q, one_block(p, sp=(1.0, 1.0, 1.0)), rel=1e-6)


def test_crossing_rods_slabs_equal_one_block(thin_slabs):
    # a rod along z and one along x crossing it, anisotropic voxels
    rod = oversampled_rod(14, length=60)
    b = np.zeros((60, 60, 60), bool)
    b[:, 23:23 + rod.shape[1], 23:23 + rod.shape[2]] |= rod[:, :, :]
    b |= b.transpose(2, 1, 0)
    sp = (0.1, 0.08, 0.08)
    r = structure_model_index(b, sp)
    assert 1.5 < r.smi < 3.5
    assert_same(r, one_block(b, sp=sp))
    assert_same(chunked(b, None, [[21, 40], [30], [29]], sp=sp), r)


def test_normals_point_outwards_in_every_block():
    # a ball cut into 8 blocks: every block's dS/dr is positive (the fixed winding, no vote)
    zz, yy, xx = np.mgrid[:40, :40, :40]
    ball = (zz - 19.5) ** 2 + (yy - 19.5) ** 2 + (xx - 19.5) ** 2 < 14 ** 2
    for own in [(slice(a, a + 20), slice(b, b + 20), slice(c, c + 20)) for a in (0, 20) for b in (0, 20)
                for c in (0, 20)]:
        s = smi_block_sums(ball, None, own, 1.0)
        assert s.ds_dr_mm > 0 and s.concave_area_mm2 == 0.0
    assert one_block(ball, sp=(1.0, 1.0, 1.0)).smi == pytest.approx(4.0, rel=0.10)


def test_sums_add_and_empty_blocks():
    a = SMISums(3, 1.0, 2.0, 1.0, 0.5)
    assert a + SMISums() == a
    assert combine_smi_sums([a, a], 1.0) == combine_smi_sums([a + a], 1.0)
    empty = np.zeros((20, 20, 20), bool)
    assert smi_block_sums(empty, None, (slice(5, 10),) * 3, 1.0) == SMISums()
    full = np.ones((20, 20, 20), bool)
    assert smi_block_sums(full, None, (slice(5, 10),) * 3, 1.0) == SMISums(bone_voxels=125)
    r = combine_smi_sums([SMISums(bone_voxels=125)], 1.0)
    assert math.isnan(r.smi) and r.surface_mm2 == 0.0 and r.volume_mm3 == 125.0
