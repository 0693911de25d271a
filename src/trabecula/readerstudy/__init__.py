"""A blinded reader study, as the vertebra study's subjective assessment (seed 002 §2.7, Tables 1–2):
readers score micro-CT and micro-CT-like images on five criteria in a small local web app.

* :func:`create_study` (:mod:`.create`): pick slices reproducibly, render them alike, store them blinded with the
  key in a SQLite database (:mod:`.db`); :func:`add_reader` makes a reader's personal token link;
* :func:`make_app` / :func:`serve` (:mod:`.app`): the FastAPI app behind ``trabecula reader-study serve``;
* :func:`analyse` (:mod:`.analyse`): Kendall's W with the tie correction and the study's bands, Mann–Whitney U
  per criterion, means ± SD per method and reader, CSV and an HTML section in Table 2's layout;
* :func:`kendall_w`, :func:`mann_whitney`, :func:`agreement_band` (:mod:`.statistics`); the five criteria with
  Table 1's wording in :data:`CRITERIA` (:mod:`.criteria`).
"""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(
    __name__,
    submod_attrs={
        "analyse": ["Analysis", "analyse", "answers_frame", "write_analysis"],
        "app": ["make_app", "serve"],
        "create": ["add_reader", "create_study", "pick_slices", "reader_link", "render_slice"],
        "criteria": ["CRITERIA", "Criterion"],
        "statistics": ["KendallW", "MannWhitney", "agreement_band", "kendall_w", "mann_whitney"],
    },
)
