"""The models that ship inside the package and the protocols each was trained on, read from their manifests.

Standard library only, so that the command line can list them in its help without loading the stages.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def shipped_models() -> list[str]:
    """Names of the models whose weights ship inside the package."""
    if not WEIGHTS_DIR.is_dir():
        return []
    return sorted(p.name for p in WEIGHTS_DIR.iterdir() if (p / "manifest.json").is_file() and (p / "model.pt").is_file())


def shipped_model_lines() -> list[str]:
    """One line per shipped model: its name, network, output scale and training ranges (from its manifest)."""
    lines = []
    for name in shipped_models():
        try:
            m = json.loads((WEIGHTS_DIR / name / "manifest.json").read_text())
        except (OSError, ValueError):
            continue
        arch = m.get("hparams", {}).get("model", "?")
        scale = m.get("output", {}).get("scale_inplane", 1)
        ranges = m.get("training_ranges")
        where = ranges_line(ranges) if ranges else f"one grid, {m.get('input', {}).get('spacing_mm')} mm"
        lines.append(f"{name} ({arch}, x{scale} in-plane): trained on {where}")
    return lines


def ranges_line(ranges: dict[str, Any]) -> str:
    """A manifest's training ranges in one line (``enhance --help``, ``models``)."""
    parts = []
    if "pixel_mm" in ranges:
        parts.append(f"pixel {ranges['pixel_mm'][0]:g}–{ranges['pixel_mm'][1]:g} mm")
    if "slice_thickness_mm" in ranges:
        parts.append(f"slice {ranges['slice_thickness_mm'][0]:g}–{ranges['slice_thickness_mm'][1]:g} mm")
    if "kernels" in ranges:
        parts.append("kernels " + "/".join(ranges["kernels"]))
    if "mas" in ranges:
        parts.append(f"{ranges['mas'][0]:g}–{ranges['mas'][1]:g} mAs")
    if "kvp" in ranges:
        parts.append(f"{ranges['kvp'][0]:g}–{ranges['kvp'][1]:g} kVp")
    if "noise_sd_hu" in ranges:
        parts.append(f"noise {ranges['noise_sd_hu'][0]:.0f}–{ranges['noise_sd_hu'][1]:.0f} HU")
    if "mtf50_lp_mm" in ranges:
        parts.append(f"MTF50 {ranges['mtf50_lp_mm'][0]:.2f}–{ranges['mtf50_lp_mm'][1]:.2f} lp/mm")
    return ", ".join(parts) if parts else "no recorded ranges"
