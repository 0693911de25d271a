"""Issue 23, OME-Zarr as the large-volume format: NGFF multiscales written and read back (by trabecula and by
ome-zarr's own reader, as napari reads it), pyramids, lazy reading, block-by-block writing from processes, and
damaged or foreign stores."""

from __future__ import annotations

import json
import multiprocessing
import shutil
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from trabecula import Volume
from trabecula.cli import main
from trabecula.errors import InputError, ParameterError
from trabecula.io import create_ome_zarr, finish_ome_zarr, read_volume, write_volume

SPACING = (0.5, 0.25, 0.2)
ORIGIN = (1.0, -2.0, 3.5)


def run(capsys, *args):
    code = main([str(a) for a in args])
    cap = capsys.readouterr()
    return code, cap.out, [ln for ln in cap.err.splitlines() if ln.strip()]


def hu_volume(shape=(40, 36, 34), seed=0) -> Volume:
    rng = np.random.default_rng(seed)
    return Volume(rng.normal(100, 400, shape).astype(np.float32), SPACING, ORIGIN, "HU")


def binary_volume(shape=(40, 36, 34), seed=1) -> Volume:
    rng = np.random.default_rng(seed)
    return Volume((rng.random(shape) < 0.3).astype(np.uint8), SPACING, ORIGIN, "binary")


def group_attrs(p: Path) -> dict:
    return json.loads((p / "zarr.json").read_text())["attributes"]


def level(p: Path, k: int) -> np.ndarray:
    import zarr

    return zarr.open_array(str(p / f"s{k}"), mode="r")[...]


# ---------------------------------------------------------------------------------------------- round trip
@pytest.mark.parametrize("make", [hu_volume, binary_volume])
def test_round_trip_values_geometry_units(make, tmp_path):
    v = make()
    p = write_volume(v, tmp_path / "v.ome.zarr", chunks=16)
    back = read_volume(p)
    assert back.is_lazy
    assert back.dtype == v.dtype
    np.testing.assert_array_equal(back.numpy(), v.numpy())
    assert back.spacing == pytest.approx(SPACING) and back.origin == pytest.approx(ORIGIN)
    assert back.units == v.units
    assert back.provenance.extra["format"] == "ome-zarr"
    meta = group_attrs(p)["trabecula"]
    assert meta["all_chunks_written"] is True and meta["complete"] is True and meta["units"] == v.units


def test_every_chunk_is_written_even_all_zero_ones(tmp_path):
    a = np.zeros((32, 32, 32), np.uint8)
    a[:16, :16, :16] = 1  # one of the 8 chunks holds ones; the other 7 are all fill value
    p = write_volume(Volume(a, 0.1, units="binary"), tmp_path / "sparse.ome.zarr", chunks=16, levels=1)
    assert len([f for f in (p / "s0" / "c").rglob("*") if f.is_file()]) == 8


def test_pyramid_shapes_scales_and_downsampling(tmp_path):
    v = hu_volume((130, 70, 66))
    p = write_volume(v, tmp_path / "pyr.ome.zarr", chunks=32)
    ms = group_attrs(p)["ome"]["multiscales"][0]
    shapes = [level(p, k).shape for k in range(len(ms["datasets"]))]
    # halved until the smallest side is below 64 voxels
    assert min(shapes[-1]) < 64 <= min(shapes[-2])
    for k, (ds, shape) in enumerate(zip(ms["datasets"], shapes, strict=True)):
        assert ds["path"] == f"s{k}"
        assert shape == tuple(n // 2**k for n in v.shape)
        scale, trans = ds["coordinateTransformations"]
        assert scale["scale"] == pytest.approx([s * 2**k for s in SPACING])
        # the centre of voxel 0 of level k is the centre of the 2^k block it summarises
        assert trans["translation"] == pytest.approx([o + (2**k - 1) / 2 * s for o, s in zip(ORIGIN, SPACING, strict=True)])
    a = v.numpy()
    z, y, x = shapes[1]
    want = a[: 2 * z, : 2 * y, : 2 * x].reshape(z, 2, y, 2, x, 2).mean(axis=(1, 3, 5))
    np.testing.assert_allclose(level(p, 1), want, rtol=1e-5, atol=1e-3)
    assert [a["unit"] for a in ms["axes"]] == ["millimeter"] * 3 and [a["type"] for a in ms["axes"]] == ["space"] * 3


def test_binary_and_label_pyramids_never_invent_values(tmp_path):
    rng = np.random.default_rng(3)
    labels = rng.choice(np.array([0, 3, 7], np.uint8), size=(16, 16, 16), p=[0.5, 0.3, 0.2])
    p = write_volume(Volume(labels, 0.1, units="label"), tmp_path / "lab.ome.zarr", levels=3)
    for k in (1, 2):
        assert set(np.unique(level(p, k)).tolist()) <= {0, 3, 7}
    # level 1 is the most frequent value of each 2×2×2 block (ties: the larger value)
    blocks = labels.reshape(8, 2, 8, 2, 8, 2).transpose(0, 2, 4, 1, 3, 5).reshape(8, 8, 8, 8)
    counts = np.stack([(blocks == val).sum(-1) for val in (0, 3, 7)], -1)
    best = counts.max(-1, keepdims=True)
    want = np.array([0, 3, 7])[np.where(counts == best, np.arange(3), -1).max(-1)]
    np.testing.assert_array_equal(level(p, 1), want)


def test_ome_zarr_reader_sees_the_spacing_in_millimetres(tmp_path):
    """What napari-ome-zarr does: ome-zarr's Reader gives the scale of each level and the axes' units."""
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Multiscales, Reader

    p = write_volume(hu_volume((70, 66, 64)), tmp_path / "napari.ome.zarr", chunks=32)
    nodes = list(Reader(parse_url(str(p)))())
    image = next(n for n in nodes if n.load(Multiscales))
    assert [a["unit"] for a in image.metadata["axes"]] == ["millimeter"] * 3
    assert [a["name"] for a in image.metadata["axes"]] == ["z", "y", "x"]
    transforms = image.metadata["coordinateTransformations"]
    assert len(image.data) == len(transforms) == 2
    for k, ts in enumerate(transforms):
        scale = next(t["scale"] for t in ts if t["type"] == "scale")
        assert scale == pytest.approx([s * 2**k for s in SPACING])
    np.testing.assert_array_equal(np.asarray(image.data[0][5]), read_volume(p).numpy()[5])


def test_read_is_lazy_nothing_computed(tmp_path):
    from dask.callbacks import Callback

    p = write_volume(hu_volume(), tmp_path / "lazy.ome.zarr", chunks=16)
    ran = []
    with Callback(pretask=lambda key, dask, state: ran.append(key)):
        v = read_volume(p)
    import dask.array as da

    assert isinstance(v.data, da.Array) and ran == []
    assert v.data.chunksize == (16, 16, 16)


def test_lazy_volume_is_written_chunk_by_chunk(tmp_path):
    from dask.callbacks import Callback

    src = write_volume(hu_volume(), tmp_path / "src.zarr", chunks=(8, 36, 34))
    v = read_volume(src)
    sizes = []

    def post(key, result, dsk, state, worker_id):
        if isinstance(result, np.ndarray):
            sizes.append(result.nbytes)

    with Callback(posttask=post):
        p = write_volume(v, tmp_path / "from_dask.ome.zarr", chunks=(8, 36, 34), levels=2)
    assert sizes and max(sizes) < v.numpy().nbytes / 2  # never the whole volume at once
    np.testing.assert_array_equal(read_volume(p).numpy(), v.numpy())


# ---------------------------------------------------------------------------------------------- CLI
def test_cli_convert_to_ome_zarr_and_back(tmp_path, capsys):
    src = write_volume(hu_volume(), tmp_path / "in.nii.gz")
    omz = tmp_path / "out.ome.zarr"
    code, out, err = run(capsys, "convert", src, omz, "--levels", "2", "--chunks", "8,16,16")
    assert code == 0, err
    assert json.loads((omz / "s0" / "zarr.json").read_text())["chunk_grid"]["configuration"]["chunk_shape"] == [8, 16, 16]
    assert len(group_attrs(omz)["ome"]["multiscales"][0]["datasets"]) == 2
    code, out, err = run(capsys, "info", omz)
    assert code == 0, err
    assert "levels" in out and "s1" in out and "20 × 18 × 17" in out
    back = tmp_path / "back.nii.gz"
    code, _, err = run(capsys, "convert", omz, back)
    assert code == 0, err
    a, b = read_volume(src), read_volume(back)
    np.testing.assert_array_equal(b.numpy(), a.numpy())
    assert b.spacing == pytest.approx(a.spacing) and b.origin == pytest.approx(a.origin) and b.units == "HU"


def test_cli_levels_on_other_formats_and_too_many_levels_are_refused(tmp_path, capsys):
    src = write_volume(hu_volume((8, 8, 8)), tmp_path / "in.nii.gz")
    code, _, err = run(capsys, "convert", src, tmp_path / "o.nrrd", "--levels", "2")
    assert code == 2 and len(err) == 1 and "--levels" in err[0], err
    code, _, err = run(capsys, "convert", src, tmp_path / "o.ome.zarr", "--levels", "9")
    assert code == 2 and len(err) == 1 and "at most 4" in err[0], err
    assert not (tmp_path / "o.ome.zarr").exists()


# ---------------------------------------------------------------------------------------------- damage
def test_missing_chunk_is_one_line_exit_2_before_computing(tmp_path, capsys):
    p = write_volume(hu_volume(), tmp_path / "damaged.ome.zarr", chunks=16)
    (p / "s0" / "c" / "1" / "0" / "2").unlink()
    with pytest.raises(InputError, match=r"chunk c/1/0/2 of level s0 \(z 16–32, y 0–16, x 32–34\) is missing"):
        read_volume(p)
    code, _, err = run(capsys, "info", p)
    assert code == 2 and len(err) == 1 and "damaged.ome.zarr" in err[0] and "c/1/0/2" in err[0], err


def test_plain_zarr_written_by_trabecula_with_missing_chunk(tmp_path, capsys):
    p = write_volume(hu_volume(), tmp_path / "plain.zarr", chunks=16)
    (p / "c" / "0" / "1" / "1").unlink()
    code, _, err = run(capsys, "convert", p, tmp_path / "o.nii.gz")
    assert code == 2 and len(err) == 1 and "plain.zarr" in err[0] and "c/0/1/1" in err[0], err


@pytest.mark.parametrize("version, axes", [("0.5", "zyx"), ("0.4", "czyx")])
def test_foreign_ome_zarr_with_absent_chunks_warns_once(version, axes, tmp_path):
    """Written by ome-zarr's own writer (zarr skips all-fill chunks, and nothing records it); NGFF 0.5 on Zarr v3
    and 0.4 on Zarr v2 with a channel axis of length 1, spacing in micrometres."""
    import zarr
    from ome_zarr.format import FormatV04, FormatV05
    from ome_zarr.writer import write_image

    a = np.zeros((32, 32, 32), np.uint16)
    a[:16] = 500
    fmt = FormatV05() if version == "0.5" else FormatV04()
    group = zarr.open_group(str(tmp_path / "foreign.ome.zarr"), mode="w", zarr_format=fmt.zarr_format)
    data = a if axes == "zyx" else a[None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        write_image(data, group, axes=axes, fmt=fmt, scale={**({"c": 1.0} if "c" in axes else {}), "z": 2.0, "y": 1.0, "x": 1.0},
                    axes_units={ax: "micrometer" for ax in "zyx"}, storage_options={"chunks": (1,) * (len(axes) - 3) + (16, 16, 16)},
                    scale_factors=())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        v = read_volume(tmp_path / "foreign.ome.zarr", units="grey")
    texts = [str(w.message) for w in caught]
    absent = [t for t in texts if "absent" in t]
    assert len(absent) == 1 and "4 of 8 chunks" in absent[0], texts
    assert any("micrometer" in t and "mm" in t for t in texts), texts
    assert v.shape == (32, 32, 32) and v.spacing == pytest.approx((0.002, 0.001, 0.001))
    np.testing.assert_array_equal(v.numpy(), a)


def _rewrite_multiscales(p: Path, edit) -> None:
    doc = json.loads((p / "zarr.json").read_text())
    edit(doc["attributes"]["ome"]["multiscales"][0])
    (p / "zarr.json").write_text(json.dumps(doc))


@pytest.mark.parametrize("edit, words", [
    (lambda m: m.pop("datasets"), "no 'datasets'"),
    (lambda m: m["datasets"][0].update(coordinateTransformations=[{"type": "scale", "scale": [1, "a", 1]}]), "scale"),
    (lambda m: m["datasets"][0].update(path="../elsewhere"), "path"),
    (lambda m: m["axes"].reverse(), "z, y, x"),
    (lambda m: m["axes"][1].update(unit="parsec"), "parsec"),
])
def test_malformed_multiscales_is_one_line(edit, words, tmp_path, capsys):
    p = write_volume(hu_volume((8, 8, 8)), tmp_path / "bad.ome.zarr", levels=1)
    _rewrite_multiscales(p, edit)
    code, _, err = run(capsys, "info", p)
    assert code == 2 and len(err) == 1 and "bad.ome.zarr" in err[0] and words in err[0], err


# ---------------------------------------------------------------------------------------------- workers
def _write_region(arr, sl, block):
    arr[sl] = block
    return sl


def test_create_write_from_two_processes_then_finish_equals_whole_write(tmp_path):
    v = binary_volume((64, 48, 40))
    a = v.numpy()
    whole = write_volume(v, tmp_path / "whole.ome.zarr", chunks=16, levels=3)
    p = tmp_path / "parts.ome.zarr"
    arr = create_ome_zarr(p, v.shape, v.dtype, v.spacing, v.origin, v.units, (16, 16, 16),
                          meta={"provenance": v.provenance.to_dict()})
    with pytest.raises(InputError, match="finish_ome_zarr was never run"):
        read_volume(p)
    slabs = [(slice(z, z + 16), slice(None), slice(None)) for z in range(0, 64, 16)]
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        done = list(pool.map(_write_region, [arr] * len(slabs), slabs, [a[s] for s in slabs]))
    assert len(done) == 4
    finish_ome_zarr(p, levels=3)
    for k in range(3):
        np.testing.assert_array_equal(level(p, k), level(whole, k))
    assert group_attrs(p)["ome"]["multiscales"][0]["datasets"] == group_attrs(whole)["ome"]["multiscales"][0]["datasets"]
    back = read_volume(p)
    assert back.units == "binary" and back.spacing == pytest.approx(v.spacing)


def test_finish_refuses_a_region_never_written(tmp_path):
    p = tmp_path / "half.ome.zarr"
    arr = create_ome_zarr(p, (32, 16, 16), np.float32, 0.1, 0.0, "mm", 16)
    arr[:16] = 0.0  # an all-fill block is still written
    with pytest.raises(InputError, match=r"chunk c/1/0/0 of level 0 \(z 16–32"):
        finish_ome_zarr(p)
    arr[16:] = 1.0
    finish_ome_zarr(p)
    assert read_volume(p).numpy().sum() == pytest.approx(16 * 16 * 16)


def test_create_refuses_bad_arguments_and_existing_output(tmp_path):
    with pytest.raises(ParameterError, match="units"):
        create_ome_zarr(tmp_path / "u.ome.zarr", (4, 4, 4), np.uint8, 0.1, 0, "furlongs", 2)
    with pytest.raises(ParameterError, match="--chunks"):
        create_ome_zarr(tmp_path / "c.ome.zarr", (4, 4, 4), np.uint8, 0.1, 0, "binary", (2, 0, 2))
    create_ome_zarr(tmp_path / "e.ome.zarr", (4, 4, 4), np.uint8, 0.1, 0, "binary", 2)
    from trabecula.errors import OutputExistsError

    with pytest.raises(OutputExistsError):
        create_ome_zarr(tmp_path / "e.ome.zarr", (4, 4, 4), np.uint8, 0.1, 0, "binary", 2)
    shutil.rmtree(tmp_path / "e.ome.zarr")
