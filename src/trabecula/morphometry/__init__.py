"""Trabecular bone morphometry: thresholds, VOIs, BV/TV, local thickness (Tb.Th/Tb.Sp), Tb.N, Conn.D, SMI, DA.

``trabecula measure`` on the command line; :func:`measure` in Python. See ``docs/morphometry.md`` for the
methods, conventions and measured accuracy and speed.
"""

from trabecula.morphometry.anisotropy import degree_of_anisotropy
from trabecula.morphometry.connectivity import connectivity, euler_characteristic
from trabecula.morphometry.measure import METRICS, MorphometryResult, measure
from trabecula.morphometry.smi import structure_model_index
from trabecula.morphometry.thickness import local_thickness, thickness_stats
from trabecula.morphometry.threshold import segment, threshold_isodata_ij, threshold_otsu
from trabecula.morphometry.voi import box_voi, cylinder_voi, voi_from_spec

__all__ = [
    "threshold_isodata_ij", "threshold_otsu", "segment", "cylinder_voi", "box_voi", "voi_from_spec",
    "local_thickness", "thickness_stats", "measure", "MorphometryResult", "METRICS", "euler_characteristic",
    "connectivity", "structure_model_index", "degree_of_anisotropy",
]
