"""The statistics against published worked examples, to 3 decimals."""

from __future__ import annotations

import numpy as np
import pytest

from trabecula.readerstudy.statistics import agreement_band, kendall_w, mann_whitney

# R irr::kendall / DescTools::KendallW example data "anxiety" (Gamer et al., irr package; the data listed in
# DescTools' KendallW help page): 20 subjects × 3 raters, scores 1–6 with many ties.
ANXIETY = np.array([[3, 3, 3, 4, 5, 5, 2, 3, 5, 2, 2, 6, 1, 5, 2, 2, 1, 2, 4, 3],
                    [3, 6, 4, 6, 2, 4, 2, 4, 3, 3, 2, 3, 3, 3, 2, 2, 1, 3, 3, 4],
                    [2, 1, 4, 4, 3, 2, 1, 6, 1, 1, 1, 2, 3, 3, 1, 1, 3, 3, 2, 2]]).T

# I. Kemp, "Scorecard Example" (2016), an R Markdown worked example of irr::kendall(correct = TRUE):
# 12 items × 5 raters (rater R2 ties two items at 6); printed Wt = 0.735, Chisq(11) = 40.5, p = 2.99e-05.
SCORECARD = np.array([[4, 1, 1, 2, 1], [3, 2, 2, 3, 6], [1, 6, 6, 5, 2], [5, 3, 3, 6, 5], [6, 5, 4, 7, 3],
                      [9, 4, 5, 1, 8], [8, 8, 8, 4, 4], [2, 9, 7, 10, 9], [7, 10, 10, 8, 7], [11, 11, 9, 9, 10],
                      [10, 6, 11, 11, 11], [12, 12, 12, 12, 12]])


def test_kendall_w_with_ties_equals_the_scorecard_example():
    k = kendall_w(SCORECARD)
    assert round(k.w, 3) == 0.735
    assert round(k.chi2, 1) == 40.5 and k.df == 11
    assert k.p == pytest.approx(2.99e-05, abs=5e-08)


def test_kendall_w_with_ties_equals_irr_anxiety_example():
    # irr's documented output for kendall(anxiety, TRUE): Wt = 0.54, Chisq(19) = 30.8, p = 0.0429
    # (as asserted by pyirr's port of it); 3 decimals: 0.540.
    k = kendall_w(ANXIETY)
    assert round(k.w, 3) == 0.540
    assert round(k.chi2, 1) == 30.8 and k.df == 19
    assert round(k.p, 4) == 0.0429


def test_kendall_w_equals_friedman_over_images():
    # independent: W = Friedman χ² / (m (n − 1)), scipy ranking within each rater with its own tie correction
    from scipy.stats import friedmanchisquare

    rng = np.random.default_rng(0)
    x = rng.integers(1, 6, size=(15, 3))
    chi2 = friedmanchisquare(*x).statistic  # groups = subjects, blocks = raters
    assert kendall_w(x).w == pytest.approx(chi2 / (3 * 14), rel=1e-12)


def test_kendall_w_all_equal_is_undefined_as_the_study_shadow_row():
    k = kendall_w(np.full((30, 3), 5))
    assert np.isnan(k.w) and k.band.startswith("undefined")


def test_bands_follow_the_study_wording():
    assert [agreement_band(w) for w in (0.1, 0.2, 0.4, 0.5, 0.6, 0.8, 0.81)] == [
        "poor", "fair", "fair", "unbanded (0.40-0.60: none in the study)", "moderate", "moderate", "excellent"]


def _pool(counts: dict[int, int]) -> np.ndarray:
    return np.concatenate([np.full(n, s) for s, n in counts.items()])


@pytest.mark.parametrize(("criterion", "micro", "like", "means", "p"), [
    # seed 002 Table 2 (counts of scores per observer, summed over the 3 observers) → Table 3
    ("contrast", {2: 18, 3: 72}, {2: 20, 3: 70}, (2.80, 0.402, 2.78, 0.418), 0.716),
    ("noise", {4: 19, 5: 71}, {3: 14, 4: 21, 5: 55}, (4.79, 0.410, 4.46, 0.752), 0.002),
    ("sharpness", {4: 21, 5: 69}, {3: 15, 4: 21, 5: 54}, (4.77, 0.425, 4.43, 0.765), 0.004),
    ("shadow", {5: 90}, {5: 90}, (5.00, 0.0, 5.00, 0.0), 1.000),
])
def test_mann_whitney_and_means_reproduce_the_vertebra_study_table3(criterion, micro, like, means, p):
    """The vertebra study (seed 002, Tables 2–3): its Table 3 (means ± SD of 90 scores a method, Mann–Whitney
    p) follows from its Table 2's score counts with the SPSS convention (no continuity correction). The
    texture row is left out: its counts lost a score in the text extraction (one observer sums to 29)."""
    a, b = _pool(micro), _pool(like)
    assert (round(a.mean(), 2), round(a.std(ddof=1), 3), round(b.mean(), 2), round(b.std(ddof=1), 3)) == means
    assert round(mann_whitney(a, b).p, 3) == p


def test_mann_whitney_u_equals_the_bu_textbook_example():
    # Boston University SPH, "Mann Whitney U Test" module (also scipy.stats.mannwhitneyu's docs example):
    # ages at diagnosis, males 19 22 16 29 24 vs females 20 11 17 12: U = 17; asymptotic p 0.0864 (no correction)
    r = mann_whitney([19, 22, 16, 29, 24], [20, 11, 17, 12])
    assert r.u == 17 and round(r.p, 3) == 0.086
