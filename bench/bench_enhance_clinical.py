"""The shipped models on the real clinical series: the vertebral body ROI of ``clinical_ct_dicom`` (Siemens Br38f,
0.98 mm pixels, 3 mm slices: outside every model's training ranges, so enhanced with ``allow_out_of_range``).

For each model: the protocol ``enhance`` states and what it finds outside the ranges, the bone fraction above
200 HU of the input and of the output re-degraded with the input's protocol (target: within ±20 %), the
periodic-texture peak of the output against the input's (target: no peak the input lacks), and the
consistency check's decision and reasons (:func:`trabecula.enhance.hallucination.check_enhanced`). Writes an
MPR figure (axial and coronal through the ROI's centre: input, each output) to ``--figure``.

    .venv/bin/python bench/bench_enhance_clinical.py [--model dlr --model srdlr ...] [--figure docs/enhance-clinical.png]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

DEFAULT = ("dlr", "srdlr", "pix2pixhd", "pix2pix", "crn")


def mpr_figure(views: dict[str, object], path: Path, own_range: set[str] = frozenset()) -> None:
    """Axial and coronal planes through the centre; clinical-scale panels in −200…800 HU, micro-CT-scale
    outputs (``own_range``) over their own 1st–99.5th percentile (their bone reads thousands of HU)."""
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(views), figsize=(2.6 * len(views), 5.4), squeeze=False)
    for k, (name, v) in enumerate(views.items()):
        a = v.numpy()
        z, y = a.shape[0] // 2, a.shape[1] // 2
        ext_ax = [0, a.shape[2] * v.spacing[2], a.shape[1] * v.spacing[1], 0]
        ext_co = [0, a.shape[2] * v.spacing[2], a.shape[0] * v.spacing[0], 0]
        lo, hi = (np.percentile(a, (1, 99.5)) if name in own_range else (-200, 800))
        axes[0, k].imshow(a[z], cmap="gray", vmin=lo, vmax=hi, extent=ext_ax)
        axes[1, k].imshow(a[:, y], cmap="gray", vmin=lo, vmax=hi, extent=ext_co, aspect="auto")
        axes[0, k].set_title(name + (f"\n({lo:.0f}…{hi:.0f} HU)" if name in own_range else ""), fontsize=9)
        for ax in axes[:, k]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("axial (mm)")
    axes[1, 0].set_ylabel("coronal")
    fig.suptitle("clinical_ct_dicom, vertebral body ROI (window −200…800 HU unless stated)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    from trabecula.enhance.data import default_data_dir, pair_keys
    from trabecula.enhance.hallucination import check_enhanced
    from trabecula.enhance.infer import enhance, load_model
    from trabecula.io import read_volume
    from trabecula.pipeline.scan_checks import vertebral_body_roi

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", help="shipped model (repeat); default: dlr, srdlr, pix2pixhd, pix2pix, crn")
    ap.add_argument("--figure", type=Path, default=None, help="write the MPR figure here (PNG)")
    args = ap.parse_args()
    data = default_data_dir()
    vol = read_volume(data / "clinical_ct_dicom")
    roi = vertebral_body_roi(vol, read_volume(data / "clinical_ct_dicom_labels.nii.gz", units="label"))
    views, rows, own = {"input (Br38f, 0.98 mm)": roi}, [], set()
    for name in args.model or DEFAULT:
        lm = load_model(name, "cpu")
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            out = enhance(roi, lm, allow_out_of_range=True)
        r = check_enhanced(out, roi, lm, resample=False)
        d = r.details
        rows.append({"model": lm.label, "out_of_range": out.provenance.extra["enhance_out_of_range"],
                     "bone_fraction_input": d["bone_fraction_input"], "bone_fraction_redegraded": d["bone_fraction_redegraded"],
                     "bone_fraction_change_percent": 100 * (d["bone_fraction_redegraded"] / d["bone_fraction_input"] - 1),
                     "periodic_peak_output": d["periodic_peak_output"], "periodic_peak_input": d["periodic_peak_input"],
                     "flagged": r.flagged, "reasons": d["reasons"], "score": r.score})
        views[lm.label] = out
        if pair_keys(lm.name, ("input", "input_clean", "target_sr", "target"))[1] == "target":
            own.add(lm.label)  # trained toward the micro-CT's HU scale
    print("| model | bone >200 HU input | re-degraded output | change | periodic peak out / in | check |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {100 * r['bone_fraction_input']:.1f} % | {100 * r['bone_fraction_redegraded']:.1f} % | "
              f"{r['bone_fraction_change_percent']:+.1f} % | {r['periodic_peak_output']:.1f} / {r['periodic_peak_input']:.1f} | "
              f"{'FLAGGED: ' + '; '.join(r['reasons']) if r['flagged'] else 'consistent'} |")
    print("outside the training ranges: " + "; ".join(rows[0]["out_of_range"]) if rows else "")
    if args.figure:
        mpr_figure(views, args.figure, own)
        print(f"wrote {args.figure}")
    print(f"wrote {write_results('bench_enhance_clinical', {'roi_shape': list(roi.shape), 'roi_spacing': list(roi.spacing), 'rows': rows})}")


if __name__ == "__main__":
    main()
