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
``vertebral_body``          cortical shell, trabecular core (foam or real structure), marrow, soft tissue
``phalanx``                 finger phalanx: cortical shaft, trabecular ends, marrow, soft tissue
``wrist``                   an axial slab of the wrist at the distal radius: radius and ulna in soft tissue
``calibration_phantom``     HA rods 0–800 mg/cm³ in a cylinder (density calibration); ``with_calibration_rods``
                            puts it under another phantom in one grid
``wire``, ``slanted_edge``  resolution test objects (PSF/MTF)
``bar_pattern``             line-pair groups
``water_cylinder``          uniform water (noise, NPS, HU)
``random_field_bone``       a quick CT-like random volume in HU (not a trabecular model)
``bone_specimen``           a realistic HU bone specimen (real micro-CT structure, cortex, marrow) to render
``synthetic_structure``     a level-set stand-in trabecular structure (binary) for paired data
``edge_phantom``            stand-in HU objects for edge MTF and noise (``slanted_edge_hu`` too)
:func:`augment_binary`      real structure re-oriented, rotated, rescaled, eroded/dilated (augmentation)
:mod:`.shapes`              analytic test shapes (BoneJ's brick, rod, sphere; oriented, oversampled)
``build``                   any of the above by kind name, holding the only copy of each kind's defaults
==========================  ====================================================================
"""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(
    __name__,
    submodules=["shapes"],
    submod_attrs={
        "_base": ["MATERIALS", "LABEL", "Phantom", "HA_CONCENTRATIONS", "ha_material"],
        "calibration": ["calibration_phantom", "with_calibration_rods"],
        "trabecular": ["FoamParams", "trabecular_cube", "calibrate_foam", "foam_bone"],
        "real": ["lookalike", "from_binary", "upsample_binary"],
        "anatomy": ["vertebral_body", "phalanx", "wrist", "VERTEBRA_FOAM", "PHALANX_FOAM"],
        "objects": ["wire", "slanted_edge", "bar_pattern", "water_cylinder", "cylinder_labels"],
        "simple": ["random_field_bone"],
        "specimen": ["bone_specimen", "didsr_region", "quilt_binary"],
        "standin": ["synthetic_structure", "edge_phantom", "slanted_edge_hu"],
        "build": ["build", "KINDS", "with_materials", "write_phantom"],
        "augment": ["Augmentation", "augment_binary", "random_augmentation"],
    },
)
