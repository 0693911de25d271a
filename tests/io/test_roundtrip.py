"""Every writer → reader round trip gives back the same array, spacing, origin and units."""

import numpy as np
import pytest

from trabecula import Volume
from trabecula.errors import OutputExistsError
from trabecula.io import read_volume, write_volume

CASES = [
    ("v.nii.gz", None),
    ("v.nii", None),
    ("v.nrrd", None),
    ("v.mha", None),
    ("v.tif", None),
    ("slices", "tiff-folder"),
    ("series", "dicom"),
    ("v.zarr", None),
]


def sample(dtype=np.int16, units="HU", shape=(7, 9, 11)):
    rng = np.random.default_rng(5)
    a = rng.integers(-1000, 2000, shape).astype(dtype) if units == "HU" else rng.random(shape).astype(dtype)
    return Volume(a, (0.6, 0.25, 0.3), (-12.5, 30.25, -7.0), units)


@pytest.mark.parametrize("name,fmt", CASES)
def test_roundtrip_every_format(tmp_path, name, fmt):
    v = sample()
    p = write_volume(v, tmp_path / name, format=fmt)
    back = read_volume(p)
    np.testing.assert_array_equal(back.numpy(), v.numpy())
    np.testing.assert_allclose(back.spacing, v.spacing, rtol=1e-6)
    np.testing.assert_allclose(back.origin, v.origin, atol=1e-5)
    assert back.units == "HU"
    assert sorted(x.name for x in tmp_path.iterdir()) == [name]  # no temporary leftovers


@pytest.mark.parametrize("name", ["v.nii.gz", "v.nrrd", "v.tif", "v.zarr", "v.mha"])
@pytest.mark.parametrize("dtype,units", [(np.float32, "attenuation_per_mm"), (np.uint8, "binary"), (np.float64, "mm")])
def test_roundtrip_dtypes_and_units(tmp_path, name, dtype, units):
    v = sample(dtype, units)
    back = read_volume(write_volume(v, tmp_path / name))
    np.testing.assert_array_equal(back.numpy(), v.numpy())
    assert back.units == units


def test_writers_refuse_to_overwrite_without_force(tmp_path):
    v = sample()
    p = write_volume(v, tmp_path / "v.nrrd")
    with pytest.raises(OutputExistsError):
        write_volume(v, p)
    v2 = v.with_data(v.numpy() + 1)
    write_volume(v2, p, force=True)
    np.testing.assert_array_equal(read_volume(p).numpy(), v2.numpy())


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    from trabecula.io import volumes

    def boom(vol, path):
        path.write_bytes(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(volumes, "write_sitk", boom)
    with pytest.raises(RuntimeError):
        write_volume(sample(), tmp_path / "v.nrrd")
    assert list(tmp_path.iterdir()) == []


def test_zarr_is_lazy_and_chunked(tmp_path):
    v = sample(shape=(40, 50, 60))
    from trabecula.io.formats import write_zarr  # noqa: F401  (writer under test via write_volume)

    p = write_volume(v, tmp_path / "big.zarr")
    back = read_volume(p)
    assert back.is_lazy
    assert back.crop((10, 20)).numpy().shape == (10, 50, 60)
    np.testing.assert_array_equal(back.crop((10, 20)).numpy(), v.numpy()[10:20])
    import zarr

    z = zarr.open_array(str(p), mode="r")
    assert z.compressors  # compressed
    # a lazy volume writes chunk by chunk to a new zarr
    p2 = write_volume(back, tmp_path / "copy.zarr")
    np.testing.assert_array_equal(read_volume(p2).numpy(), v.numpy())


def test_tiff_spacing_from_imagej_metadata_and_override(tmp_path):
    import tifffile

    a = np.zeros((4, 5, 6), np.uint16)
    # an ImageJ stack in microns, as a microscope or micro-CT would write it
    tifffile.imwrite(tmp_path / "um.tif", a, imagej=True, resolution=(1 / 20.0, 1 / 20.0), metadata={"spacing": 40.0, "unit": "micron"})
    v = read_volume(tmp_path / "um.tif", units="grey")
    np.testing.assert_allclose(v.spacing, (0.04, 0.02, 0.02))
    v2 = read_volume(tmp_path / "um.tif", spacing="0.1", units="grey")
    assert v2.spacing == (0.1, 0.1, 0.1)


def test_tiff_without_spacing_warns_and_flags(tmp_path):
    import tifffile

    tifffile.imwrite(tmp_path / "plain.tif", np.zeros((3, 4, 5), np.uint8), photometric="minisblack")
    with pytest.warns(UserWarning, match="no spacing"):
        v = read_volume(tmp_path / "plain.tif", units="grey")
    assert v.provenance.extra["spacing_assumed"] is True


def test_tiff_folder_sorted_naturally(tmp_path):
    import tifffile

    d = tmp_path / "stack"
    d.mkdir()
    for k in (1, 2, 10):  # lexical order would put 10 before 2
        tifffile.imwrite(d / f"img{k}.tif", np.full((3, 3), k, np.uint8))
    v = read_volume(d, spacing=0.1, units="grey")
    assert v.numpy()[:, 0, 0].tolist() == [1, 2, 10]


def test_nifti_orientation_to_zyx(tmp_path):
    """A NIfTI stored in RAS with a flipped y axis lands in LPS (z, y, x) like the DICOM it came from."""
    import nibabel as nib

    data_xyz = np.zeros((4, 5, 6), np.int16)  # i=x, j=y, k=z
    data_xyz[1, 2, 3] = 7
    affine = np.array([[-0.5, 0, 0, 10.0], [0, 0.7, 0, -20.0], [0, 0, 2.0, 30.0], [0, 0, 0, 1]])  # L, A, S
    nib.save(nib.Nifti1Image(data_xyz, affine), tmp_path / "las.nii.gz")
    v = read_volume(tmp_path / "las.nii.gz", units="HU")
    assert v.shape == (6, 5, 4)
    np.testing.assert_allclose(v.spacing, (2.0, 0.7, 0.5))
    # world LPS position of the marked voxel, from the RAS affine
    ras = affine @ np.array([1, 2, 3, 1.0])
    lps_zyx = np.array([ras[2], -ras[1], -ras[0]])
    idx = np.argwhere(v.numpy() == 7)[0]
    np.testing.assert_allclose(v.index_to_world(idx), lps_zyx)


def test_nrrd_direction_flip_is_reoriented(tmp_path):
    import SimpleITK as sitk

    a = np.zeros((3, 4, 5), np.int16)
    a[0, 0, 0] = 9
    img = sitk.GetImageFromArray(a)
    img.SetSpacing((0.1, 0.2, 0.3))
    img.SetOrigin((1.0, 2.0, 3.0))
    img.SetDirection((-1, 0, 0, 0, 1, 0, 0, 0, 1))  # x axis runs towards the right
    sitk.WriteImage(img, str(tmp_path / "f.nrrd"))
    v = read_volume(tmp_path / "f.nrrd", units="HU")
    idx = np.argwhere(v.numpy() == 9)[0]
    assert tuple(idx) == (0, 0, 4)
    np.testing.assert_allclose(v.index_to_world(idx), (3.0, 2.0, 1.0))
    np.testing.assert_allclose(v.spacing, (0.3, 0.2, 0.1))
