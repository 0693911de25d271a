"""Chunk-by-chunk morphometry equals the in-memory path: exactly for BV/TV and χ, within 1e-6 relative for the
thickness statistics and DA, on real bone (a DIDSR L1 region) and on a dask LocalCluster of 2 workers."""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from trabecula.errors import ParameterError
from trabecula.morphometry.chunked import blocks_of, measure_chunked, parse_chunks
from trabecula.morphometry.connectivity import EULER_LUT, euler_characteristic, vertex_sum_box
from trabecula.morphometry.measure import measure
from trabecula.volume import Volume

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "didsr_l1_vertebra"
REGION = DATA / "Segmentation-grayscale-1_06219.nrrd"
METRICS = ("bvtv", "tbth", "tbsp", "tbn", "connd", "smi", "da")
EXACT = ("bv_tv", "euler_char", "delta_chi", "conn_d_per_mm3", "voi_volume_mm3")
CLOSE = ("tb_th_mm", "tb_th_sd_mm", "tb_th_max_mm", "tb_sp_mm", "tb_sp_sd_mm", "tb_sp_max_mm", "tb_n_per_mm",
         "da", "da_scanco", "smi", "smi_concave_fraction", "bs_mm2")


def _region(shape=(44, 50, 56)) -> Volume:
    if not REGION.exists():
        pytest.skip("the DIDSR regions are not in ../shared/data")
    from trabecula.io import read_volume

    with pytest.warns(UserWarning):
        v = read_volume(REGION, spacing=0.05)
    return v.crop((120, 120 + shape[0]), (120, 120 + shape[1]), (120, 120 + shape[2]))


def _same(a, b, rel=1e-6):
    for k in EXACT:
        x, y = getattr(a, k), getattr(b, k)
        assert (math.isnan(x) and math.isnan(y)) or x == y, (k, x, y)
    for k in CLOSE:
        x, y = getattr(a, k), getattr(b, k)
        assert (math.isnan(x) and math.isnan(y)) or abs(x - y) <= rel * abs(x), (k, x, y)


@pytest.fixture(scope="module")
def region():
    return _region()


def test_vertex_sums_of_blocks_add_up_to_the_euler_characteristic():
    rng = np.random.default_rng(3)
    b = rng.random((13, 11, 9)) < 0.4
    total = 0.0
    for blk in blocks_of(b.shape, (5, 4, 4)):
        lo = [max(0, a - 1) for a in blk.lo]
        ext = b[lo[0]:blk.hi[0], lo[1]:blk.hi[1], lo[2]:blk.hi[2]]
        vlo = [a - e for a, e in zip(blk.lo, lo, strict=True)]
        vhi = [h - e + (1 if h == n else 0) for h, e, n in zip(blk.hi, lo, b.shape, strict=True)]
        total += vertex_sum_box(ext, None, False, EULER_LUT, vlo, vhi)
    assert total == euler_characteristic(b)
    # leaving out the far-end vertices (a wrong ownership rule) changes the sum
    assert vertex_sum_box(b, None, False, EULER_LUT, [0, 0, 0], list(b.shape)) != euler_characteristic(b) or \
        not b[-1].any()


def test_chunked_equals_in_memory_on_real_bone(region):
    a = measure(region, metrics=METRICS)
    b = measure_chunked(region, chunks=(20, 24, 28), metrics=METRICS)
    _same(a, b)
    assert b.segmentation_steps and "blocks" in b.segmentation_steps[0]
    assert 0.05 < b.bv_tv < 0.6 and b.tb_th_mm > 0 and b.euler_char != 0


def test_chunked_with_a_mask_voi_bonej_mode_and_background_border(region):
    zz, yy, xx = np.mgrid[:44, :50, :56]
    cyl = ((yy - 25) ** 2 + (xx - 28) ** 2 <= 20 ** 2) & (zz >= 3) & (zz < 40)
    for kw in ({"voi_bounds": "spacing"}, {"voi_bounds": "all", "mode": "bonej", "border": "background"}):
        a = measure(region, metrics=METRICS, voi=cyl, **kw)
        b = measure_chunked(region, chunks=(16, 20, 24), metrics=METRICS, voi=cyl, **kw)
        assert b.conn_correction.startswith("floating")
        _same(a, b)


def test_chunked_box_voi_uses_the_box_correction(region):
    box = np.zeros(region.shape, bool)
    box[5:40, 6:44, 7:50] = True
    a = measure(region, metrics=("bvtv", "connd"), voi=box)
    b = measure_chunked(region, chunks=(16, 16, 16), metrics=("bvtv", "connd"), voi=box)
    assert b.conn_correction.startswith("box") and a.conn_correction.startswith("box")
    _same(a, b)


def test_chunked_reads_a_zarr_lazily_and_thresholds_grey(tmp_path, region):
    from trabecula.io import read_volume, write_volume

    grey = region.with_data(np.where(region.numpy() > 0, 900, 100).astype(np.int16), units="HU", step="test grey")
    write_volume(grey, tmp_path / "g.zarr")
    lazy = read_volume(tmp_path / "g.zarr")
    assert hasattr(lazy.data, "dask")
    a = measure(region, metrics=("bvtv", "tbth", "connd"))
    b = measure_chunked(lazy, chunks=24, metrics=("bvtv", "tbth", "connd"), threshold=500.0)
    _same(a, b)
    with pytest.raises(ParameterError, match="threshold"):
        measure_chunked(lazy, chunks=24, metrics=("bvtv",))


def test_parse_chunks():
    assert parse_chunks("auto") == "auto"
    assert parse_chunks("32") == (32, 32, 32)
    assert parse_chunks("16,32,64") == (16, 32, 64)
    for bad in ("1,2", "a,b,c", "4"):
        with pytest.raises(ParameterError, match="--chunks"):
            parse_chunks(bad)


def test_unreachable_scheduler_is_one_line():
    from trabecula.cluster import executor

    t = time.time()
    with pytest.raises(ParameterError, match="cannot reach a dask scheduler"):
        with executor(scheduler="tcp://127.0.0.1:9"):
            pass
    assert time.time() - t < 30


@pytest.mark.timeout(300)
def test_local_cluster_of_two_workers_equals_in_memory_even_when_a_worker_is_killed(region):
    from trabecula.cluster import executor

    a = measure(region, metrics=METRICS)
    with executor(workers=2) as client:
        b = measure_chunked(region, chunks=(20, 24, 28), metrics=METRICS, client=client)
        _same(a, b)
        pids = client.run(os.getpid)
        assert len(pids) == 2
        victim = sorted(pids.values())[0]
        killed = threading.Event()

        def kill_soon():
            time.sleep(1.5)
            os.kill(victim, signal.SIGKILL)
            killed.set()

        threading.Thread(target=kill_soon, daemon=True).start()
        c = measure_chunked(region, chunks=(11, 12, 14), metrics=METRICS, client=client)
        assert killed.is_set()
        after = client.run(os.getpid)
        assert victim not in after.values()  # the nanny started a new worker process
    _same(a, c)
