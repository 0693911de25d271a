"""Image quality (``trabecula iq``): MTF from a wire or a slanted edge (MTF50, MTF10), noise SD, 2-D and
radial NPS, CNR.

Conventions: frequencies in lp/mm; MTF normalised to 1 at zero frequency (presampled); NPS in
(image units)²·mm², e.g. HU²·mm²; SDs with ``ddof=1`` in the image's units. Functions take a
:class:`~trabecula.Volume` (spacing from it) or an array with ``spacing`` in mm; 3-D stacks are averaged
over z for MTF (object parallel to z) and treated as independent slices for NPS. ROIs are
``"z0:z1,y0:y1,x0:x1"`` strings (Python half-open voxel ranges), tuples of ranges, or boolean masks.

Full-reference similarity (SSIM, PSNR: :mod:`trabecula.quality.similarity`) and distribution metrics (FID,
KID: :mod:`trabecula.quality.fid`, whose ``fid`` function keeps the module's name) load lazily (FID needs torch).
"""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(
    __name__,
    submodules=["fid", "similarity"],
    submod_attrs={
        "mtf": ["MTFResult", "disc_mtf", "gaussian_mtf10", "gaussian_mtf50", "mtf_crossing", "mtf_edge", "mtf_wire"],
        "noise": ["CNRResult", "NoiseResult", "RoiStats", "cnr", "noise_sd", "roi_stats"],
        "nps": ["NPSResult", "detrend", "nps_2d", "nps_difference", "radial_average"],
        "similarity": ["ssim_study", "ssim_study_slices", "ssim_hu", "ssim_hu_slices", "psnr", "psnr_slices"],
        "fid": ["kid", "inception_features"],
        "plots": ["plot_mtf", "plot_nps"],
    },
)
