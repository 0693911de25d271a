"""Agreement and difference statistics between paired measurements (method vs reference).

Small pure functions over 1-D arrays; every p-value comes from :mod:`scipy.stats`. They are the tests
the vertebra pix2pixHD study used (paired Student's t-test, Pearson's R, Kruskal–Wallis) plus the
agreement measures it lacked (Bland–Altman bias and limits, intraclass correlation).

Conventions: ``a`` is the method under test, ``b`` the reference (e.g. micro-CT); differences are
``a - b``; relative differences are ``(a - b) / b`` in percent. NaN pairs are an error, not dropped
silently.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as _st

from trabecula.errors import ParameterError


def _paired(a, b, name_a: str = "a", name_b: str = "b", min_n: int = 2) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=float).ravel()
    b = np.asarray(b, dtype=float).ravel()
    if a.shape != b.shape:
        raise ParameterError(name_b, f"paired samples differ in length: {a.size} vs {b.size}")
    if a.size < min_n:
        raise ParameterError(name_a, f"need at least {min_n} pairs, got {a.size}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ParameterError(name_a, "samples contain NaN or infinite values")
    return a, b


@dataclass(frozen=True)
class PairedT:
    """Paired Student's t-test of ``a - b`` against zero (two-sided)."""

    n: int
    mean_diff: float
    t: float
    p: float
    df: int

    def to_dict(self) -> dict:
        return asdict(self)


def paired_t(a, b) -> PairedT:
    """Paired Student's t-test (two-sided) of the differences ``a - b``; :func:`scipy.stats.ttest_rel`.

    Returns the number of pairs, the mean difference, t, p and the degrees of freedom (n - 1).
    """
    a, b = _paired(a, b)
    res = _st.ttest_rel(a, b)
    return PairedT(int(a.size), float(np.mean(a - b)), float(res.statistic), float(res.pvalue), int(a.size - 1))


@dataclass(frozen=True)
class Correlation:
    """Pearson's product-moment correlation with its two-sided p-value and 95 % CI (Fisher z)."""

    n: int
    r: float
    p: float
    ci_low: float
    ci_high: float

    def to_dict(self) -> dict:
        return asdict(self)


def pearson(a, b) -> Correlation:
    """Pearson's R between paired samples (:func:`scipy.stats.pearsonr`), p two-sided, 95 % CI by Fisher's z.

    A constant sample has no defined correlation: that is a :class:`ParameterError`.
    """
    a, b = _paired(a, b, min_n=3)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        raise ParameterError("a", "a sample is constant; Pearson's R is undefined")
    res = _st.pearsonr(a, b)
    ci = res.confidence_interval(0.95)
    return Correlation(int(a.size), float(res.statistic), float(res.pvalue), float(ci.low), float(ci.high))


@dataclass(frozen=True)
class BlandAltman:
    """Bland–Altman agreement: bias (mean of ``a - b``), SD of the differences, 95 % limits of agreement
    ``bias ± 1.96 SD`` and the relative bias in percent, ``100 · mean((a - b) / b)``."""

    n: int
    bias: float
    sd: float
    loa_low: float
    loa_high: float
    bias_percent: float

    def to_dict(self) -> dict:
        return asdict(self)


def bland_altman(a, b) -> BlandAltman:
    """Bland & Altman (Lancet 1986) bias and 95 % limits of agreement of method ``a`` against reference ``b``.

    The SD is the sample SD (ddof = 1) of the differences; the limits are ``bias ± 1.96 SD``. The
    relative bias is the mean of the per-pair relative differences against the reference, in percent
    (undefined, NaN, when a reference value is 0).
    """
    a, b = _paired(a, b)
    d = a - b
    bias = float(np.mean(d))
    sd = float(np.std(d, ddof=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = float(np.mean(d / b) * 100.0) if np.all(b != 0) else float("nan")
    return BlandAltman(int(a.size), bias, sd, bias - 1.96 * sd, bias + 1.96 * sd, rel)


def icc(ratings, form: str = "2,1") -> float:
    """Intraclass correlation of an ``(n subjects, k raters/methods)`` table (Shrout & Fleiss 1979).

    ``form`` is ``"1,1"`` (one-way random, single measure), ``"2,1"`` (two-way random, absolute
    agreement, single measure; McGraw & Wong's ICC(A,1)) or ``"3,1"`` (two-way mixed, consistency,
    single measure; ICC(C,1)). trabecula reports ICC(2,1) for method–reference agreement: it penalises
    a systematic bias, unlike ICC(3,1). Computed from the two-way ANOVA mean squares:

    * ICC(1,1) = (BMS − WMS) / (BMS + (k − 1) WMS)
    * ICC(2,1) = (BMS − EMS) / (BMS + (k − 1) EMS + k (JMS − EMS) / n)
    * ICC(3,1) = (BMS − EMS) / (BMS + (k − 1) EMS)

    with BMS the between-subjects, JMS the between-raters, EMS the residual and WMS the within-subject
    mean square.
    """
    x = np.asarray(ratings, dtype=float)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 2:
        raise ParameterError("ratings", f"need a 2-D (subjects, raters) table with at least 2 x 2 values, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ParameterError("ratings", "table contains NaN or infinite values")
    n, k = x.shape
    grand = x.mean()
    ss_rows = k * np.sum((x.mean(axis=1) - grand) ** 2)
    ss_cols = n * np.sum((x.mean(axis=0) - grand) ** 2)
    ss_total = np.sum((x - grand) ** 2)
    ss_err = ss_total - ss_rows - ss_cols
    bms = ss_rows / (n - 1)
    jms = ss_cols / (k - 1)
    ems = ss_err / ((n - 1) * (k - 1))
    wms = (ss_cols + ss_err) / (n * (k - 1))
    if form == "1,1":
        den = bms + (k - 1) * wms
        return float((bms - wms) / den) if den else float("nan")
    if form == "2,1":
        den = bms + (k - 1) * ems + k * (jms - ems) / n
        return float((bms - ems) / den) if den else float("nan")
    if form == "3,1":
        den = bms + (k - 1) * ems
        return float((bms - ems) / den) if den else float("nan")
    raise ParameterError("form", f"unknown ICC form {form!r}; use '1,1', '2,1' or '3,1'")


@dataclass(frozen=True)
class Kruskal:
    """Kruskal–Wallis H test across groups (:func:`scipy.stats.kruskal`)."""

    h: float
    p: float
    groups: int
    n: int

    def to_dict(self) -> dict:
        return asdict(self)


def kruskal(*groups) -> Kruskal:
    """Kruskal–Wallis H test that several independent samples come from one distribution (two-sided).

    The study used it to compare SSIM and FID across pix2pixHD, pix2pix and CRN.
    """
    arrs = [np.asarray(g, dtype=float).ravel() for g in groups]
    if len(arrs) < 2:
        raise ParameterError("groups", f"need at least two groups, got {len(arrs)}")
    if any(a.size == 0 for a in arrs):
        raise ParameterError("groups", "a group is empty")
    if any(not np.all(np.isfinite(a)) for a in arrs):
        raise ParameterError("groups", "a group contains NaN or infinite values")
    res = _st.kruskal(*arrs)
    return Kruskal(float(res.statistic), float(res.pvalue), len(arrs), int(sum(a.size for a in arrs)))
