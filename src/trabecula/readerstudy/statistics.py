"""The reader study's statistics: Kendall's W with the tie correction and the study's bands, and the
Mann–Whitney U test as the vertebra study ran it (SPSS: normal approximation, tie-corrected, no continuity
correction).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as st

from trabecula.errors import ParameterError


@dataclass(frozen=True)
class KendallW:
    """Kendall's coefficient of concordance of ``raters`` raters over ``subjects`` subjects."""

    w: float
    chi2: float
    df: int
    p: float
    subjects: int
    raters: int
    band: str

    def to_dict(self) -> dict:
        return {"W": self.w, "chi2": self.chi2, "df": self.df, "p": self.p, "subjects": self.subjects,
                "raters": self.raters, "band": self.band}


def agreement_band(w: float) -> str:
    """The vertebra study's words for a Kendall's W (seed 002 §2.9).

    The study: "less than 0.20 … poor agreement, … between 0.20 and 0.40 … fair agreement, … between 0.60
    and 0.80 … moderate agreement and … greater than 0.80 … excellent agreement". It names no band between
    0.40 and 0.60; such a W is reported as ``"unbanded (0.40-0.60: none in the study)"``. Boundaries: 0.20
    and 0.40 are fair, 0.60 and 0.80 moderate (the study's "between" read as inclusive).
    """
    if not math.isfinite(w):
        return "undefined (all scores equal)"
    if w < 0.20:
        return "poor"
    if w <= 0.40:
        return "fair"
    if w < 0.60:
        return "unbanded (0.40-0.60: none in the study)"
    if w <= 0.80:
        return "moderate"
    return "excellent"


def kendall_w(ratings) -> KendallW:
    """Kendall's W, corrected for ties, of an (n subjects × m raters) array of scores.

    Each rater's scores are ranked over the subjects (mid-ranks for ties); with ``R_i`` the rank sum of
    subject i and ``S = Σ (R_i − m(n+1)/2)²``, ``W = 12 S / (m²(n³ − n) − m Σ_j T_j)`` where
    ``T_j = Σ (t³ − t)`` over the groups of t tied scores of rater j (Kendall 1948; the same as R's
    ``irr::kendall(correct=TRUE)`` and ``DescTools::KendallW(correct=TRUE)``). The test is Friedman's:
    ``χ² = m (n − 1) W`` with ``n − 1`` degrees of freedom. When every rater gave every subject the same score
    the denominator is 0 and W is undefined: ``w`` and ``p`` are NaN (the study prints 0.000 and 1.000).

    Subjects with a missing score (NaN) are left out listwise.
    """
    x = np.asarray(ratings, dtype=float)
    if x.ndim != 2:
        raise ParameterError("ratings", f"need a 2-D array (subjects × raters), got shape {x.shape}")
    x = x[np.all(np.isfinite(x), axis=1)]
    n, m = x.shape
    if n < 2 or m < 2:
        raise ParameterError("ratings", f"Kendall's W needs at least 2 subjects and 2 raters, got {n} × {m}")
    ranks = np.column_stack([st.rankdata(x[:, j]) for j in range(m)])
    r = ranks.sum(axis=1)
    s = float(((r - m * (n + 1) / 2.0) ** 2).sum())
    ties = 0.0
    for j in range(m):
        _, counts = np.unique(x[:, j], return_counts=True)
        ties += float((counts.astype(float) ** 3 - counts).sum())
    denom = m * m * (n ** 3 - n) - m * ties
    if denom <= 0:
        return KendallW(float("nan"), float("nan"), n - 1, float("nan"), n, m, agreement_band(float("nan")))
    w = 12.0 * s / denom
    chi2 = m * (n - 1) * w
    p = float(st.chi2.sf(chi2, n - 1))
    return KendallW(w, chi2, n - 1, p, n, m, agreement_band(w))


@dataclass(frozen=True)
class MannWhitney:
    """Mann–Whitney U of sample a against sample b (U is a's), two-sided p."""

    u: float
    z: float
    p: float
    n_a: int
    n_b: int

    def to_dict(self) -> dict:
        return {"U": self.u, "z": self.z, "p": self.p, "n_a": self.n_a, "n_b": self.n_b}


def mann_whitney(a, b) -> MannWhitney:
    """Two-sided Mann–Whitney U test by the normal approximation with the tie correction and no continuity
    correction, as SPSS reports its "Asymp. Sig." (the vertebra study used SPSS 26). ``U`` counts the pairs
    in which a's score is higher (ties count ½); ``z = (U − n_a n_b / 2) / σ`` with the tie-corrected σ.
    All scores equal: z = 0, p = 1 (the study's Shadow row)."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size == 0 or b.size == 0:
        raise ParameterError("scores", f"Mann–Whitney U needs scores in both groups, got {a.size} and {b.size}")
    res = st.mannwhitneyu(a, b, alternative="two-sided", use_continuity=False, method="asymptotic")
    n1, n2 = a.size, b.size
    mu = n1 * n2 / 2.0
    allv = np.concatenate([a, b])
    _, t = np.unique(allv, return_counts=True)
    n = n1 + n2
    var = n1 * n2 / 12.0 * ((n + 1) - float((t ** 3 - t).sum()) / (n * (n - 1)))
    if var <= 0:
        return MannWhitney(float(res.statistic), 0.0, 1.0, n1, n2)
    z = (float(res.statistic) - mu) / math.sqrt(var)
    return MannWhitney(float(res.statistic), z, float(res.pvalue), n1, n2)
