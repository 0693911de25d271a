"""Statistics for method-vs-reference studies: paired t-test, Pearson's R, Bland–Altman, ICC,
Kruskal–Wallis, and tables laid out like the vertebra study's Tables 4 and 5 (CSV and Markdown)."""

from trabecula.stats.agreement import (
    BlandAltman,
    Correlation,
    Kruskal,
    PairedT,
    bland_altman,
    icc,
    kruskal,
    paired_t,
    pearson,
)
from trabecula.stats.tables import methods_table, study_table, to_markdown, write_table

__all__ = [
    "BlandAltman", "Correlation", "Kruskal", "PairedT", "bland_altman", "icc", "kruskal", "paired_t", "pearson",
    "methods_table", "study_table", "to_markdown", "write_table",
]
