"""A report with every section filled from small synthetic data (placeholder pictures drawn here with
matplotlib, standing in for the render stage's PNGs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from trabecula import Volume
from trabecula.report import FigureItem, MTFCurve, PairedData, ReportData, StudyRow, StudyTable, input_row

#: Table 4 of the vertebra study (micro-CT vs pix2pixHD micro-CT-like, n = 50), as published
TABLE4 = [
    ("BV/TV", 0.180, 0.016, 0.175, 0.034, 0.101, 0.920, 0.0001),
    ("Tb.Th (mm)", 0.220, 0.012, 0.179, 0.027, 0.0004, 0.905, 0.0002),
    ("Tb.Sp (mm)", 0.934, 0.126, 0.758, 0.479, 0.002, 0.885, 0.0003),
]


def placeholder_png(path: Path, seed: int, title: str) -> Path:
    """A small matplotlib picture (a smoothed random field) saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    img = ndimage.gaussian_filter(rng.standard_normal((96, 128)), 3)
    fig = Figure(figsize=(3.2, 2.4), dpi=80)
    ax = fig.add_subplot()
    ax.imshow(img, cmap="gray")
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()
    fig.savefig(path)
    return path


def marker_volume(shape=(40, 48, 56), spacing=(0.5, 0.4, 0.3), origin=(5.0, -4.0, 2.0)) -> Volume:
    """HU volume: air background, a bright (1500 HU) box at a known place."""
    a = np.full(shape, -1000, np.int16)
    a[10:30, 8:20, 30:48] = 1500
    return Volume(a, spacing, origin, units="HU")


def full_report_data(tmp: Path, with_viewer: bool = True) -> ReportData:
    rng = np.random.default_rng(7)
    vol = marker_volume()
    ref = rng.normal(0.18, 0.016, 20)
    meth = ref + rng.normal(0.0, 0.01, 20)
    f = np.linspace(0, 5, 60)
    figs = [
        FigureItem("MPR clinical | micro-CT", placeholder_png(tmp / "mpr.png", 1, "MPR"), "axial/coronal/sagittal", "mpr"),
        FigureItem("Render with clip plane", placeholder_png(tmp / "render.png", 2, "render"), "oblique", "renders"),
        FigureItem("extra", rng.integers(0, 255, (40, 60, 3), dtype=np.uint8), "an array", "figures"),
    ]
    return ReportData(
        title="Synthetic study", subtitle="every section",
        inputs=[input_row("clinical", vol), input_row("micro-CT", vol)],
        scanners={"clinical-mdct": {"kVp": 120, "mAs": 200, "voxel (mm)": 0.5, "kernel": "bone"},
                  "micro-ct": {"kVp": 70, "voxel (mm)": 0.05}},
        image_quality=[{"method": "FBP", "ssim": 0.61, "PSNR": 24.3, "fid": 120.5, "MTF50": 0.42, "mtf10": 0.81,
                        "noise_sd": 38.2, "CNR": 4.1},
                       {"method": "pix2pixhd", "SSIM": {"mean": 0.87, "sd": 0.02}, "FID": 35.0, "extra metric": 1.5}],
        image_quality_note="SSIM on 8-bit bone-window slices.",
        morphometry=[StudyTable([StudyRow(p, a, b, c, d, t, r, rp, 50) for p, a, b, c, d, t, r, rp in TABLE4],
                                "Micro-CT", "Micro-CT-like images", title="Table 4 (published values)")],
        measurements={"micro-ct": {"BV/TV": 0.181, "Tb.Th (mm)": 0.221, "voi": {"d_mm": 5.0}},
                      "clinical-mdct": {"BV/TV": 0.33, "Tb.Th (mm)": 0.69}},
        mtf=[MTFCurve("clinical-mdct", f, np.exp(-(f / 0.9) ** 2), 0.75, 1.36),
             MTFCurve("uhr-extremity", f, np.exp(-(f / 4.0) ** 2))],
        paired=[PairedData("BV/TV", ref, meth, "micro-CT", "pix2pixHD", r=0.93, r_p=1e-6, bias=0.001, loa=(-0.02, 0.021))],
        figures=figs,
        volumes=[("marker", vol)] if with_viewer else [],
        checks={"twin: its own checks": True, "enhance: its own checks": False},
        results={"twin": {"ok": True, "mtf10": {"clinical": 0.8}}},
        timings={"twin": 12.5, "report": 3.1},
        notes=["synthetic data"], meta={"seed": 0},
    )
