"""The scanner digital twin: scanners as TOML data, X-ray physics, cone-beam projection, FDK/FBP
reconstruction (RTK reference backend and trabecula's numba backend), real-projection reconstruction and a
fast image-domain path for training data.

>>> from trabecula.scanner import load_scanner, PRESETS
>>> PRESETS
('uhr-extremity', 'clinical-uhr', 'study-mdct', 'clinical-mdct', 'micro-ct')
>>> load_scanner("clinical-mdct").exposure.mas
250.0
"""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(
    __name__,
    submod_attrs={
        "config": ["Scanner", "load_scanner", "PRESETS", "KERNELS"],
        "simulate": ["simulate_projections", "scan"],
        "recon": ["reconstruct"],
        "tomo": ["reconstruct_parallel", "reconstruct_projections"],
        "fast": ["fast_scan"],
        "spectrum": ["material_hu", "to_hu"],
        "body": ["Body", "BODIES", "parse_body", "body_path_lengths"],
        "dose": ["ctdi_w", "scan_dose", "CTDIResult"],
        "protocols": ["Protocol", "ProtocolRanges", "random_protocol"],
    },
)
