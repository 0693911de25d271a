"""Trabecular bone morphometry: thresholds, VOIs, BV/TV, local thickness (Tb.Th/Tb.Sp), Tb.N, Conn.D, SMI, DA;
cortical compartments and parameters (``cortical``); density calibration (HU → mg HA/cm³, ``density``).

``trabecula measure`` on the command line; :func:`measure` in Python. See ``docs/morphometry.md`` for the
methods, conventions and measured accuracy and speed.
"""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(
    __name__,
    submod_attrs={
        "threshold": ["threshold_isodata_ij", "threshold_otsu", "segment"],
        "voi": ["cylinder_voi", "box_voi", "voi_from_spec", "study_cylinder_vois"],
        "thickness": ["local_thickness", "thickness_stats"],
        "measure": ["measure", "MorphometryResult", "METRICS"],
        "connectivity": ["euler_characteristic", "connectivity"],
        "smi": ["structure_model_index"],
        "anisotropy": ["degree_of_anisotropy"],
        "results": ["write_results_csv", "write_results_json"],
        "cortical": ["autocontour", "cortical_parameters", "Compartments", "CorticalResult"],
        "density": ["Calibration", "fit_calibration", "detect_rods", "save_calibration", "load_calibration",
                    "to_density", "mean_density"],
    },
)
