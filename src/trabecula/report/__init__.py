"""The self-contained HTML study report (``trabecula report``).

>>> from trabecula.report import ReportData, StudyTable, build_report       # doctest: +SKIP
>>> data = ReportData(title="L1 study", image_quality={"pix2pixhd": {"SSIM": 0.87, "FID": 35.1}},
...                   morphometry=[StudyTable.from_frame(df, "micro-CT", "pix2pixHD")],
...                   figures=[FigureItem("MPR", "mpr.png", group="mpr")], volumes=[("micro-CT", vol)])
>>> build_report(data, "report.html")

Sections appear only when they hold data (:class:`ReportData`); statistics come precomputed (from
:mod:`trabecula.stats`); pictures, CSS and the embedded NiiVue viewer are inline, so the file opens from
``file://`` with no server and makes no network request.
"""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(
    __name__,
    submod_attrs={
        "data": ["FIGURE_GROUPS", "IQ_COLUMNS", "FigureItem", "MTFCurve", "PairedData", "ReportData", "StudyRow", "StudyTable", "from_demo_summary", "guess_group", "input_row", "load_study"],
        "format": ["format_mean_sd", "format_number", "format_p"],
        "html": ["build_report", "render_report"],
    },
)
