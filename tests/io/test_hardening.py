"""Issue 20, the readers: bad inputs give one line naming the file and exit 2, never an internal error (exit 1);
headers are not trusted with memory; bad values are refused or flagged, lazy ones included.

Every bad file is built here, in tmp_path, from a good one written by trabecula or the format's own library.
"""

from __future__ import annotations

import gzip
import json
import struct
import warnings

import numpy as np
import pytest

from trabecula import Volume
from trabecula.cli import main
from trabecula.errors import InputError
from trabecula.io import read_projections, read_volume, write_volume

META = {"trabecula": {"units": "grey", "spacing_mm": [0.5, 0.5, 0.5], "origin_mm": [0, 0, 0]}}


def run(capsys, *args):
    code = main([str(a) for a in args])
    cap = capsys.readouterr()
    return code, cap.out, [ln for ln in cap.err.splitlines() if ln.strip()]


# ------------------------------------------------------------------------------------------ bad-file makers
def _dicom_series(tmp_path, n=6, dz=1.5, name="dcm"):
    a = (np.arange(n * 8 * 8, dtype=np.int16).reshape(n, 8, 8) % 200) - 100
    return write_volume(Volume(a, (dz, 0.5, 0.5), (10.0, 0.0, 0.0), "HU"), tmp_path / name, format="dicom")


def _raw_element(folder, tag, vr, value: bytes):
    """Put a raw (unparsed) element into every file of a series: pydicom writes its bytes as they are, and the
    reader meets them only when it parses the value (as a corrupt file would present them)."""
    import pydicom
    from pydicom.dataelem import RawDataElement

    for f in sorted(folder.iterdir()):
        ds = pydicom.dcmread(f)
        ds._dict[pydicom.tag.Tag(tag)] = RawDataElement(pydicom.tag.Tag(tag), vr, len(value), value, 0, False, True)
        ds.save_as(f)
    return folder


def dicom_nan_slope(tmp_path):
    return _raw_element(_dicom_series(tmp_path), 0x00281053, "DS", b"NaN ")


def dicom_bytes_length(tmp_path):  # Rows (US, 2 bytes) stored with 3 bytes: pydicom's BytesLengthException
    return _raw_element(_dicom_series(tmp_path), 0x00280010, "US", b"\x08\x00\x00")


def dicom_mangled_decimal(tmp_path):
    return _raw_element(_dicom_series(tmp_path), 0x00280030, "DS", b"0.5\\0.x5")


def dicom_unknown_vr(tmp_path):
    folder = _dicom_series(tmp_path)
    for f in sorted(folder.iterdir()):
        b = f.read_bytes()
        k = b.index(b"\x28\x00\x30\x00DS")  # PixelSpacing, explicit VR little endian
        f.write_bytes(b[:k + 4] + b"ZZ" + b[k + 6:])
    return folder


def dicom_nan_position(tmp_path):
    return _raw_element(_dicom_series(tmp_path), 0x00200032, "DS", b"0\\0\\NaN ")


def tiff_zero_size_pages(tmp_path):
    import tifffile

    p = tmp_path / "zero.tif"
    tifffile.imwrite(p, np.ones((3, 4, 5), np.uint8), photometric="minisblack", metadata=None)
    b = bytearray(p.read_bytes())
    entry = struct.pack("<HHI", 256, 4, 1)  # ImageWidth, LONG, count 1
    k = b.find(entry)
    while k >= 0:
        b[k + 8:k + 12] = struct.pack("<I", 0)
        k = b.find(entry, k + 1)
    p.write_bytes(bytes(b))
    return p


def nifti_complex(tmp_path):
    import nibabel as nib

    p = tmp_path / "complex.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((4, 5, 6), np.complex64), np.diag([0.5, 0.5, 0.5, 1])), p)
    return p


def zarr_of(tmp_path, name, data=None, dtype=None, shape=None, chunks=None, attrs=True):
    import zarr

    p = tmp_path / name
    shape = shape or data.shape
    z = zarr.create_array(store=str(p), shape=shape, chunks=chunks or shape, dtype=dtype or data.dtype)
    if data is not None:
        z[...] = data
    if attrs:
        z.attrs.update(META)
    return p


def zarr_complex(tmp_path):
    return zarr_of(tmp_path, "complex.zarr", np.ones((4, 5, 6), np.complex64))


def zarr_string(tmp_path):
    return zarr_of(tmp_path, "text.zarr", shape=(2, 3, 4), dtype=str)


def zarr_nan(tmp_path):
    a = np.zeros((8, 8, 8), np.float32)
    a[5, 2, 3] = np.nan
    return zarr_of(tmp_path, "nan.zarr", a, chunks=(4, 4, 4))


def zarr_huge(tmp_path):  # 100000³ claimed by 1 kB of metadata
    return zarr_of(tmp_path, "huge.zarr", shape=(100_000,) * 3, chunks=(64, 64, 64), dtype=np.uint8)


def _projections(tmp_path, name, edit):
    import h5py

    p = tmp_path / name
    with h5py.File(p, "w") as f:
        ex = f.create_group("exchange")
        ex.create_dataset("theta", data=np.linspace(0, np.pi, 4, endpoint=False)).attrs["units"] = "rad"
        edit(f, ex)
    return p


def h5_data_is_group(tmp_path):
    return _projections(tmp_path, "group.h5", lambda f, ex: ex.create_group("data"))


def h5_geometry_not_json(tmp_path):
    def edit(f, ex):
        ex.create_dataset("data", data=np.ones((4, 3, 5), np.float32))
        ex.attrs["trabecula_geometry"] = "{not json"
    return _projections(tmp_path, "geom.h5", edit)


def h5_string_data(tmp_path):
    return _projections(tmp_path, "text.h5", lambda f, ex: ex.create_dataset("data", data=np.full((4, 3, 5), b"ab")))


def h5_flats_mismatch(tmp_path):
    def edit(f, ex):
        ex.create_dataset("data", data=np.ones((4, 3, 5), np.float32))
        ex.create_dataset("data_white", data=np.ones((2, 7, 7), np.float32))
    return _projections(tmp_path, "flats.h5", edit)


def nrrd_claims_1500_cubed(tmp_path):  # 1 kB claiming 3.4 GB, raw: more than the file holds
    p = tmp_path / "claim.nrrd"
    p.write_bytes(b"NRRD0004\ntype: uint8\ndimension: 3\nsizes: 1500 1500 1500\nencoding: raw\n\n" + b"\0" * 1000)
    return p


def nrrd_gzip_claims_1500_cubed(tmp_path):  # gzip: even deflate's largest ratio cannot hold it
    p = tmp_path / "claimgz.nrrd"
    p.write_bytes(b"NRRD0004\ntype: uint8\ndimension: 3\nsizes: 1500 1500 1500\nencoding: gzip\n\n"
                  + gzip.compress(b"\0" * 100_000))
    return p


def _nifti_claim(tmp_path, name, compress):
    import nibabel as nib

    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(np.int16)
    hdr.set_data_shape((1200, 1200, 1200))
    hdr.set_zooms((0.5, 0.5, 0.5))
    hdr["vox_offset"] = 352
    raw = hdr.binaryblock + b"\0" * 4 + b"\0" * 1000
    p = tmp_path / name
    p.write_bytes(gzip.compress(raw) if compress else raw)
    return p


def nifti_claims_3gb(tmp_path):
    return _nifti_claim(tmp_path, "claim.nii", False)


def nifti_gz_claims_3gb(tmp_path):
    return _nifti_claim(tmp_path, "claim.nii.gz", True)


BAD = {  # name: (maker, verb, words the one line must hold besides the file name)
    "complex NIfTI (info)": (nifti_complex, "info", ("complex",)),
    "complex NIfTI (convert)": (nifti_complex, "convert", ("complex",)),
    "complex NIfTI (measure)": (nifti_complex, "measure", ("complex",)),
    "complex Zarr (convert)": (zarr_complex, "convert", ("complex",)),
    "string Zarr": (zarr_string, "info", ("text",)),
    "string HDF5 projections": (h5_string_data, "info", ("text",)),
    "NaN RescaleSlope": (dicom_nan_slope, "info", ("RescaleSlope",)),
    "NaN ImagePositionPatient": (dicom_nan_position, "info", ("ImagePositionPatient",)),
    "HDF5 exchange/data is a group": (h5_data_is_group, "info", ("/exchange/data", "group")),
    "HDF5 geometry not JSON": (h5_geometry_not_json, "info", ("trabecula_geometry", "JSON")),
    "HDF5 flats of another shape": (h5_flats_mismatch, "info", ("data_white",)),
    "DICOM BytesLengthException": (dicom_bytes_length, "info", ("DICOM header",)),
    "DICOM mangled decimal string": (dicom_mangled_decimal, "info", ("DICOM header",)),
    "DICOM unknown VR": (dicom_unknown_vr, "info", ("DICOM",)),
    "TIFF zero-size pages": (tiff_zero_size_pages, "info", ("no voxels",)),
    "NRRD claiming 1500³ (raw)": (nrrd_claims_1500_cubed, "info", ("claims", "holds only")),
    "NRRD claiming 1500³ (gzip)": (nrrd_gzip_claims_1500_cubed, "info", ("claims", "holds only")),
    "NIfTI claiming 3.5 GB (.nii)": (nifti_claims_3gb, "info", ("claims", "holds only")),
    "NIfTI claiming 3.5 GB (.nii.gz)": (nifti_gz_claims_3gb, "info", ("claims", "holds only")),
    "Zarr claiming 100000³": (zarr_huge, "info", ("chunks", "rechunk")),
    "NaN voxels in Zarr (info)": (zarr_nan, "info", ("NaN", "chunk")),
    "NaN voxels in Zarr (convert)": (zarr_nan, "convert", ("NaN",)),
    "NaN voxels in Zarr (measure)": (zarr_nan, "measure", ("NaN",)),
}


def _args(verb, src, tmp_path):
    if verb == "convert":
        return ["convert", src, tmp_path / "out.nii.gz"]
    if verb == "measure":
        return ["measure", src, "--metrics", "bvtv", "--threshold", "0.5"]
    return ["info", src]


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_and_exit_2(case, tmp_path, capsys):
    maker, verb, words = BAD[case]
    src = maker(tmp_path)
    code, _, err = run(capsys, *_args(verb, src, tmp_path))
    assert code == 2, err
    assert len(err) == 1, err
    line = err[0]
    assert line.startswith("error: ") and src.name in line, line
    for w in words:
        assert w in line, (w, line)
    assert not (tmp_path / "out.nii.gz").exists()


@pytest.mark.parametrize("maker", [nifti_complex, zarr_string, dicom_nan_slope, h5_data_is_group, dicom_unknown_vr,
                                   nrrd_claims_1500_cubed, zarr_huge, tiff_zero_size_pages])
def test_the_library_raises_input_error(maker, tmp_path):
    src = maker(tmp_path)
    reader = read_projections if src.suffix == ".h5" else read_volume
    with pytest.raises(InputError):
        reader(src)


def test_header_over_the_memory_budget_is_refused_before_reading(tmp_path, capsys):
    p = tmp_path / "big.nrrd"  # 2 MiB of honest raw data, over a 1 MiB budget
    p.write_bytes(b"NRRD0004\ntype: uint8\ndimension: 3\nsizes: 128 128 128\nencoding: raw\n\n" + b"\1" * 128**3)
    code, _, err = run(capsys, "--max-memory", "1M", "info", p)
    assert code == 2 and len(err) == 1 and "memory budget" in err[0] and p.name in err[0], err


# --------------------------------------------------------------------------------- dtypes that are handled
def test_uint64_near_2_63_gets_a_histogram(tmp_path, capsys):
    p = tmp_path / "u64.nrrd"
    write_volume(Volume(np.full((4, 5, 6), 2**63 + 5, np.uint64), 0.5, units="grey"), p)
    code, out, err = run(capsys, "info", p, "--json")
    assert code == 0, err
    s = json.loads(out)
    assert s["dtype"] == "uint64" and sum(s["histogram"]["counts"]) == 120


def test_bool_becomes_uint8_lazily_too(tmp_path, capsys):
    p = zarr_of(tmp_path, "mask.zarr", np.eye(6, dtype=bool)[None].repeat(3, 0))
    v = read_volume(p)
    assert v.is_lazy and v.dtype == np.uint8 and int(v.numpy().sum()) == 18
    code, out, err = run(capsys, "info", p, "--json")
    assert code == 0 and json.loads(out)["dtype"] == "uint8", err


# ------------------------------------------------------------------------------------- invented spacing
def nifti_pixdim_zero(tmp_path):
    import nibabel as nib

    img = nib.Nifti1Image(np.zeros((6, 5, 4), np.int16), None)
    img.header.set_zooms((0.0, 0.0, 0.0))
    img.header["qform_code"] = img.header["sform_code"] = 0
    p = tmp_path / "pixdim0.nii"
    nib.save(img, p)
    return p


def test_nifti_pixdim_zero_is_flagged_and_measure_refuses_it(tmp_path, capsys):
    p = nifti_pixdim_zero(tmp_path)
    with pytest.warns(UserWarning, match="no voxel size along x, y, z"):
        v = read_volume(p, units="grey")
    assert v.provenance.extra["spacing_assumed"] is True and v.spacing == (1.0, 1.0, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        v = read_volume(p, units="grey", spacing=0.1)  # declared: no warning, no flag
    assert "spacing_assumed" not in v.provenance.extra
    code, _, err = run(capsys, "measure", p, "--units", "grey", "--metrics", "bvtv", "--threshold", "0.5")
    assert code == 2 and "pixdim" in err[0] and "--input-spacing" in err[-1], err
    code, _, err = run(capsys, "convert", p, tmp_path / "o.nrrd", "--spacing", "0.5", "--units", "grey")
    assert code == 2 and "--input-spacing" in err[-1], err


# --------------------------------------------------------------------------------------- DICOM spacing
def test_dicom_alternating_spacing_is_resampled_on_true_positions(tmp_path):
    import pydicom

    folder = _dicom_series(tmp_path, n=9, dz=2.0)
    z = 10.0 + np.concatenate([[0.0], np.cumsum([1.7, 2.3] * 4)])  # 1.7/2.3 mm alternating: 16 mm long
    for k, f in enumerate(sorted(folder.iterdir())):
        ds = pydicom.dcmread(f)
        ds.ImagePositionPatient[2] = f"{z[k]:.4f}"
        ds.PixelData = np.full((8, 8), round(10 * z[k]), np.int16).tobytes()  # value = 10 × z: linear along z
        ds.save_as(f)
    with pytest.warns(UserWarning, match=r"irregular slice spacing .*spread 30\.0%.*resampled"):
        v = read_volume(folder)
    dz = v.spacing[0]
    assert (v.shape[0] - 1) * dz == pytest.approx(16.0)  # the true length, not 8 × 2.3
    assert v.origin[0] == pytest.approx(10.0)
    zz = v.origin[0] + dz * np.arange(v.shape[0])
    np.testing.assert_allclose(v.numpy()[:, 4, 4], np.round(10 * zz), atol=1.0)
    assert v.provenance.extra["z_resampled"]["from_slices"] == 9


# ------------------------------------------------------------------------------- real bugs stay visible
def test_a_bug_in_our_own_logic_is_not_disguised_as_an_input_error(tmp_path, monkeypatch):
    import trabecula.io.formats as formats

    p = tmp_path / "ok.nrrd"
    write_volume(Volume(np.zeros((4, 5, 6), np.int16), 0.5, units="HU"), p)

    def broken(*a, **k):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(formats, "to_zyx", broken)
    with pytest.raises(ZeroDivisionError):
        read_volume(p)
