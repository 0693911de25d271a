"""Image quality (``trabecula iq``): MTF from a wire or a slanted edge (MTF50, MTF10), noise SD, 2-D and
radial NPS, CNR.

Conventions: frequencies in lp/mm; MTF normalised to 1 at zero frequency (presampled); NPS in
(image units)²·mm², e.g. HU²·mm²; SDs with ``ddof=1`` in the image's units. Functions take a
:class:`~trabecula.Volume` (spacing from it) or an array with ``spacing`` in mm; 3-D stacks are averaged
over z for MTF (object parallel to z) and treated as independent slices for NPS. ROIs are
``"z0:z1,y0:y1,x0:x1"`` strings (Python half-open voxel ranges), tuples of ranges, or boolean masks.
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

__all__ = [
    "MTFResult", "mtf_edge", "mtf_wire", "mtf_crossing", "disc_mtf", "gaussian_mtf50", "gaussian_mtf10",
    "NPSResult", "nps_2d", "nps_difference", "radial_average", "detrend",
    "NoiseResult", "RoiStats", "CNRResult", "noise_sd", "roi_stats", "cnr",
]
