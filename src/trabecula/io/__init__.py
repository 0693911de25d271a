"""Scan I/O: read any supported file or folder into a :class:`~trabecula.Volume`, write it back.

The format is picked from the path:

============================  ==============  =======================================
path                          format          library
============================  ==============  =======================================
folder of DICOM files, .dcm   ``dicom``       pydicom
.tif / .tiff                  ``tiff``        tifffile (multi-page stack)
folder of .tif files          ``tiff-folder`` tifffile (one slice per file)
.nii / .nii.gz                ``nifti``       nibabel
.nrrd / .nhdr                 ``nrrd``        SimpleITK
.mha / .mhd                   ``metaimage``   SimpleITK
.zarr (folder)                ``zarr``        zarr (lazy, via dask)
.ome.zarr, any NGFF group     ``ome-zarr``    zarr + NGFF 0.5 metadata (lazy; pyramid)
.h5 / .hdf5                   projections     h5py (APS data-exchange)
============================  ==============  =======================================

Writers refuse to overwrite an existing output unless ``force=True`` and always write to a
temporary name beside the target, renaming it only once complete.
"""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(
    __name__,
    submod_attrs={
        "volumes": ["read_volume", "write_volume", "detect_format", "parse_triple", "VOLUME_FORMATS", "FOLDER_FORMATS",
                    "CHUNKED_FORMATS"],
        "projections": ["ProjectionData", "read_projections", "write_projections"],
        "dicom": ["MultipleSeriesError", "list_series"],
        "_atomic": ["atomic_output", "check_writable"],
        "omezarr": ["create_ome_zarr", "finish_ome_zarr", "read_ome_zarr", "write_ome_zarr", "ome_zarr_levels"],
    },
)
