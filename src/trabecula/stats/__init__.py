"""Statistics for method-vs-reference studies: paired t-test, Pearson's R, Bland–Altman, ICC,
Kruskal–Wallis, and tables laid out like the vertebra study's Tables 4 and 5 (CSV and Markdown)."""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(
    __name__,
    submod_attrs={
        "agreement": ["BlandAltman", "Correlation", "Kruskal", "PairedT", "bland_altman", "icc", "kruskal", "paired_t", "pearson"],
        "tables": ["methods_table", "study_table", "to_markdown", "write_table"],
    },
)
