"""Demo stage ``readerstudy``: a small blinded reader study from the demo's own outputs (nothing served).

The vertebra's ``micro-ct`` scan, cropped to the region the enhance stage enhanced, against the same region
enhanced by ``pix2pixhd`` (micro-CT vs micro-CT-like, as the vertebra study's reader study), a few axial
slices each, written to ``readerstudy.db``; ``trabecula reader-study add-reader`` and ``serve`` run it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trabecula.readerstudy import create_study
from trabecula.volume import Volume

TITLE = "reader study (blinded, not served)"


def make_demo_study(out: Path, micro: Volume, like: Volume, *, per_method: int = 6, seed: int = 0,
                    force: bool = True) -> dict[str, Any]:
    """A reader study ``out`` of ``per_method`` slices of ``micro`` (cropped to ``like``'s world box) and of
    ``like``, shown alike; returns the study's summary as a dict."""
    import numpy as np

    lo = np.asarray(like.origin, float)
    hi = lo + (np.asarray(like.shape, float) - 1) * np.asarray(like.spacing, float)
    micro_roi = micro.crop_mm(lo, hi)
    n = min(per_method, micro_roi.shape[0], like.shape[0])
    res = create_study(out, {"micro-CT": [micro_roi], "micro-CT-like (pix2pixHD)": [like]}, per_method=n,
                       seed=seed, size=256, force=force)
    return res.to_dict()


def run(ctx) -> dict[str, Any]:
    micro = ctx.data.get("scans", {}).get(("vertebra", "micro-ct"))
    like = ctx.data.get("enhanced", {}).get("pix2pixhd")
    if micro is None or like is None:
        return {"ok": True, "checks": {}, "skipped": "needs the twin's micro-ct scan and the enhance stage's "
                                                     "pix2pixhd output"}
    out = Path(ctx.out_dir) / "readerstudy.db"
    res = make_demo_study(out, micro, like, seed=ctx.seed)
    res["next"] = f"trabecula reader-study add-reader {out} NAME; trabecula reader-study serve {out}"
    checks = {"study written with both methods": bool(out.exists())}
    return {"ok": all(checks.values()), "checks": checks, **res}


def show(ctx, res: dict[str, Any]) -> None:
    if "skipped" in res:
        ctx.console.print(f"  reader study skipped: {res['skipped']}")
        return
    methods = res.get("methods")
    what = ", ".join(f"{m} ({n} slices)" for m, n in methods.items()) if isinstance(methods, dict) else str(methods)
    ctx.console.print(f"  blinded reader study {res['path']}: {what}, window {res['window']}, {res['size']} px")
    ctx.console.print(f"  next: {res['next']}")
    for name, passed in res.get("checks", {}).items():
        ctx.console.print(f"  {'[green]✓' if passed else '[red]✗'}[/] {name}")
