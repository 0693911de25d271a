"""Phantoms: synthetic trabecular bone, real structure, anatomy and test objects, on a fine grid
(``trabecula phantom``).

A phantom is a :class:`Phantom`: a label volume (uint8, ``units="label"``) whose
``provenance.extra["materials"]`` maps label ids to names from :data:`MATERIALS`, with the binary truth of
its trabecular struts and the trabecular VOI where that makes sense. The scanner stage turns materials into
attenuation.

==========================  ====================================================================
``trabecular_cube``         Voronoi-foam trabecular bone calibrated to measured BV/TV, Tb.Th, Tb.Sp
``lookalike``               a foam matching a real binary region's BV/TV, Tb.Th, Tb.Sp
``from_binary``             a real segmented micro-CT volume as phantom (optionally upsampled)
``vertebral_body``          cortical shell, trabecular core, marrow, soft tissue
``phalanx``                 finger phalanx: cortical shaft, trabecular ends, marrow, soft tissue
``wire``, ``slanted_edge``  resolution test objects (PSF/MTF)
``bar_pattern``             line-pair groups
``water_cylinder``          uniform water (noise, NPS, HU)
``random_field_bone``       a quick CT-like random volume in HU (not a trabecular model)
==========================  ====================================================================
"""

from trabecula.phantom._base import LABEL, MATERIALS, Phantom
from trabecula.phantom.anatomy import PHALANX_FOAM, VERTEBRA_FOAM, phalanx, vertebral_body
from trabecula.phantom.objects import bar_pattern, slanted_edge, water_cylinder, wire
from trabecula.phantom.real import from_binary, lookalike, upsample_binary
from trabecula.phantom.simple import random_field_bone
from trabecula.phantom.trabecular import FoamParams, calibrate_foam, foam_bone, trabecular_cube

__all__ = [
    "MATERIALS", "LABEL", "Phantom", "FoamParams",
    "trabecular_cube", "calibrate_foam", "foam_bone",
    "lookalike", "from_binary", "upsample_binary",
    "vertebral_body", "phalanx", "VERTEBRA_FOAM", "PHALANX_FOAM",
    "wire", "slanted_edge", "bar_pattern", "water_cylinder",
    "random_field_bone",
]
