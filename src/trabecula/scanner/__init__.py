"""The scanner digital twin: scanners as TOML data, X-ray physics, cone-beam projection, FDK/FBP
reconstruction (RTK reference backend and trabecula's numba backend), real-projection reconstruction and a
fast image-domain path for training data.

>>> from trabecula.scanner import load_scanner, PRESETS
>>> PRESETS
('uhr-extremity', 'clinical-uhr', 'clinical-mdct', 'micro-ct')
>>> load_scanner("clinical-mdct").exposure.mas
250.0
"""

from trabecula.scanner.config import KERNELS, PRESETS, Scanner, load_scanner
from trabecula.scanner.recon import reconstruct
from trabecula.scanner.simulate import scan, simulate_projections

__all__ = ["Scanner", "load_scanner", "PRESETS", "KERNELS", "simulate_projections", "reconstruct", "scan"]
