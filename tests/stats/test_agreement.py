"""Statistics against scipy and textbook values (Shrout & Fleiss 1979; Bland & Altman 1986)."""

import numpy as np
import pytest
from scipy import stats as st

from trabecula.errors import ParameterError
from trabecula.stats import (
    bland_altman,
    icc,
    kruskal,
    methods_table,
    paired_t,
    pearson,
    study_table,
    to_markdown,
    write_table,
)

# Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges; their Table 4 gives ICC(1,1) = .17,
# ICC(2,1) = .29, ICC(3,1) = .71.
SHROUT_FLEISS = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]], float)


def test_icc_matches_shrout_fleiss_table():
    assert icc(SHROUT_FLEISS, "1,1") == pytest.approx(0.17, abs=0.005)
    assert icc(SHROUT_FLEISS, "2,1") == pytest.approx(0.29, abs=0.005)
    assert icc(SHROUT_FLEISS, "3,1") == pytest.approx(0.71, abs=0.005)


def test_icc_two_one_penalises_bias_three_one_does_not():
    rng = np.random.default_rng(0)
    ref = rng.normal(0.2, 0.05, 40)
    shifted = ref + 0.05  # perfect consistency, systematic bias
    both = np.column_stack([shifted, ref])
    assert icc(both, "3,1") == pytest.approx(1.0, abs=1e-12)
    assert icc(both, "2,1") < 0.7


def test_paired_t_and_pearson_equal_scipy():
    rng = np.random.default_rng(1)
    a = rng.normal(0, 1, 30)
    b = a * 0.8 + rng.normal(0.1, 0.5, 30)
    t = paired_t(a, b)
    ref = st.ttest_rel(a, b)
    assert t.t == pytest.approx(ref.statistic) and t.p == pytest.approx(ref.pvalue) and t.df == 29
    c = pearson(a, b)
    r = st.pearsonr(a, b)
    assert c.r == pytest.approx(r.statistic) and c.p == pytest.approx(r.pvalue)
    assert c.ci_low < c.r < c.ci_high


def test_bland_altman_textbook_numbers():
    a = np.array([10.0, 12.0, 14.0, 16.0])
    b = np.array([9.0, 12.0, 12.0, 15.0])  # differences 1, 0, 2, 1: mean 1, SD sqrt(2/3)
    ba = bland_altman(a, b)
    sd = np.sqrt(2 / 3)
    assert ba.bias == pytest.approx(1.0) and ba.sd == pytest.approx(sd)
    assert ba.loa_low == pytest.approx(1 - 1.96 * sd) and ba.loa_high == pytest.approx(1 + 1.96 * sd)
    assert ba.bias_percent == pytest.approx(100 * np.mean([1 / 9, 0, 2 / 12, 1 / 15]))


def test_kruskal_equals_scipy_and_detects_shift():
    rng = np.random.default_rng(2)
    g = [rng.normal(0, 1, 20), rng.normal(0, 1, 25), rng.normal(2, 1, 20)]
    k = kruskal(*g)
    ref = st.kruskal(*g)
    assert k.h == pytest.approx(ref.statistic) and k.p == pytest.approx(ref.pvalue) and k.p < 1e-4


def test_bad_inputs_name_the_parameter():
    with pytest.raises(ParameterError, match="differ in length"):
        paired_t([1, 2, 3], [1, 2])
    with pytest.raises(ParameterError, match="NaN"):
        bland_altman([1, np.nan, 3], [1, 2, 3])
    with pytest.raises(ParameterError, match="constant"):
        pearson([1, 1, 1, 1], [1, 2, 3, 4])
    with pytest.raises(ParameterError, match="form"):
        icc(SHROUT_FLEISS, "9,9")


def test_study_table_layout_and_numbers(tmp_path):
    rng = np.random.default_rng(3)
    ref = {"BV/TV": rng.normal(0.18, 0.02, 50), "Tb.Th (mm)": rng.normal(0.22, 0.012, 50)}
    meth = {k: v * 0.95 + rng.normal(0, 0.005, 50) for k, v in ref.items()}
    df = study_table(ref, meth, "micro-CT", "pix2pixHD")
    assert list(df["parameter"]) == ["BV/TV", "Tb.Th (mm)"]
    row = df.iloc[0]
    assert row["r"] == pytest.approx(st.pearsonr(meth["BV/TV"], ref["BV/TV"]).statistic)
    assert row["bias_percent"] == pytest.approx(100 * np.mean((meth["BV/TV"] - ref["BV/TV"]) / ref["BV/TV"]))
    assert "±" in row["micro-CT"] and "±" in row["pix2pixHD"]
    csv, md = write_table(df, tmp_path / "table4", title="Table 4")
    text = md.read_text()
    assert text.startswith("### Table 4") and "| parameter | micro-CT | pix2pixHD | p (paired t) | R |" in text
    assert csv.read_text().count("\n") == 3
    # a method label with a dot keeps its whole name (it was cut at the dot: "table_crn-2.md")
    csv2, md2 = write_table(df, tmp_path / "table_crn-2.5d")
    assert (csv2.name, md2.name) == ("table_crn-2.5d.csv", "table_crn-2.5d.md") and csv2.exists() and md2.exists()
    mt = methods_table({"a": [0.8, 0.82, 0.81], "b": [0.5, 0.52, 0.49]}, "SSIM")
    assert mt.attrs["kruskal_p"] < 0.1 and "| method |" in to_markdown(mt)
