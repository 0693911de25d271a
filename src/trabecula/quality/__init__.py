"""Image quality (``trabecula iq``): MTF from a wire or a slanted edge (MTF50, MTF10), noise SD, 2-D and
radial NPS, CNR.

Conventions: frequencies in lp/mm; MTF normalised to 1 at zero frequency (presampled); NPS in
(image units)²·mm², e.g. HU²·mm²; SDs with ``ddof=1`` in the image's units. Functions take a
:class:`~trabecula.Volume` (spacing from it) or an array with ``spacing`` in mm; 3-D stacks are averaged
over z for MTF (object parallel to z) and treated as independent slices for NPS. ROIs are
``"z0:z1,y0:y1,x0:x1"`` strings (Python half-open voxel ranges), tuples of ranges, or boolean masks.

Full-reference similarity (SSIM, PSNR: :mod:`trabecula.quality.similarity`) and distribution metrics (FID,
KID: :mod:`trabecula.quality.fid`) are importable from here too; they load lazily (FID needs torch).
"""

from trabecula.quality.mtf import (
    MTFResult,
    disc_mtf,
    gaussian_mtf10,
    gaussian_mtf50,
    mtf_crossing,
    mtf_edge,
    mtf_wire,
)
from trabecula.quality.noise import CNRResult, NoiseResult, RoiStats, cnr, noise_sd, roi_stats
from trabecula.quality.nps import NPSResult, detrend, nps_2d, nps_difference, radial_average

#: names re-exported lazily from the similarity/FID modules (imported on first use)
_LAZY = {
    "ssim_study": "similarity", "ssim_study_slices": "similarity", "ssim_hu": "similarity",
    "ssim_hu_slices": "similarity", "psnr": "similarity", "psnr_slices": "similarity",
    "fid": "fid", "kid": "fid", "inception_features": "fid",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"trabecula.quality.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'trabecula.quality' has no attribute {name!r}")


__all__ = [
    "MTFResult", "mtf_edge", "mtf_wire", "mtf_crossing", "disc_mtf", "gaussian_mtf50", "gaussian_mtf10",
    "NPSResult", "nps_2d", "nps_difference", "radial_average", "detrend",
    "NoiseResult", "RoiStats", "CNRResult", "noise_sd", "roi_stats", "cnr",
]
