"""DICOM series problems: several series, gantry tilt, missing slices, irregular spacing."""

import numpy as np
import pydicom
import pytest

from trabecula import Volume
from trabecula.errors import InputError
from trabecula.io import list_series, read_volume, write_volume
from trabecula.io.dicom import MultipleSeriesError


def series(tmp_path, name="s", n=6, dz=1.5):
    a = np.arange(n * 8 * 8, dtype=np.int16).reshape(n, 8, 8) - 200
    return write_volume(Volume(a, (dz, 0.5, 0.5), (10.0, 0.0, 0.0), "HU"), tmp_path / name, format="dicom"), a


def edit(folder, fn):
    for f in sorted(folder.iterdir()):
        ds = pydicom.dcmread(f)
        fn(f, ds)
        ds.save_as(f)


def test_slices_sorted_by_position_not_file_name(tmp_path):
    p, a = series(tmp_path)
    files = sorted(p.iterdir())
    # rename so that name order is reversed relative to position
    for k, f in enumerate(files):
        f.rename(p / f"x{len(files) - k:03d}.dcm")
    v = read_volume(p)
    np.testing.assert_array_equal(v.numpy(), a)


def test_rescale_slope_intercept_gives_hu(tmp_path):
    p, a = series(tmp_path)

    def rescale(f, ds):
        raw = ds.pixel_array.astype(np.int32)
        ds.RescaleSlope, ds.RescaleIntercept = 2, -1024
        ds.PixelData = ((raw + 1024) // 2).astype(np.int16).tobytes()  # a is even-valued? use floor

    edit(p, rescale)
    v = read_volume(p)
    np.testing.assert_array_equal(v.numpy(), ((a.astype(np.int32) + 1024) // 2) * 2 - 1024)


def test_folder_with_two_series_lists_them(tmp_path):
    p1, _ = series(tmp_path, "a")
    p2, _ = series(tmp_path, "b")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for k, f in enumerate(list(p1.iterdir()) + list(p2.iterdir())):
        f.rename(mixed / f"f{k:03d}.dcm")
    with pytest.raises(MultipleSeriesError) as e:
        read_volume(mixed)
    uids = [s[0] for s in list_series(mixed)]
    assert len(uids) == 2 and all(u in str(e.value) for u in uids)
    v = read_volume(mixed, series=uids[1])
    assert v.shape == (6, 8, 8)


def test_gantry_tilt_is_an_error(tmp_path):
    p, _ = series(tmp_path)

    def tilt(f, ds):
        z = float(ds.ImagePositionPatient[2])
        ds.ImagePositionPatient[1] = z * np.tan(np.radians(15))

    edit(p, tilt)
    with pytest.raises(InputError, match="gantry tilt"):
        read_volume(p)


def test_missing_slice_is_an_error(tmp_path):
    p, _ = series(tmp_path)
    sorted(p.iterdir())[3].unlink()
    with pytest.raises(InputError, match="missing slice"):
        read_volume(p)


def test_irregular_spacing_warns(tmp_path):
    p, _ = series(tmp_path)
    f = sorted(p.iterdir())[2]
    ds = pydicom.dcmread(f)
    ds.ImagePositionPatient[2] = float(ds.ImagePositionPatient[2]) + 0.2
    ds.save_as(f)
    with pytest.warns(UserWarning, match="irregular slice spacing"):
        v = read_volume(p)
    assert v.spacing[0] == pytest.approx(1.5)


def test_duplicate_positions_are_an_error(tmp_path):
    p, _ = series(tmp_path)
    f = sorted(p.iterdir())
    ds = pydicom.dcmread(f[1])
    ds.ImagePositionPatient = pydicom.dcmread(f[0]).ImagePositionPatient
    ds.save_as(f[1])
    with pytest.raises(InputError, match="same position"):
        read_volume(p)
