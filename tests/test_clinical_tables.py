"""Tests of the clinical tables: odds ratios (Table 2) and baseline characteristics (Table 1)."""

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats
from scipy.special import expit

from sklearn_alnm.clinical import SeparationWarning, baseline_table, odds_ratio_table
from sklearn_alnm.feature_selection._fisher import fisher_exact_2xk

BLOCK = ["n", "odds_ratio", "ci_low", "ci_high", "p_value"]


def _clinical(seed=1, n=250):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "size_mm": rng.normal(20, 5, n),
            "age": rng.normal(55, 10, n).round(),
            "grade": rng.choice(["G1", "G2", "G3"], n, p=[0.3, 0.4, 0.3]),
            "ER": rng.choice(["negative", "positive"], n),
            "noise": rng.normal(size=n),
        }
    )
    eta = 0.2 * (X.size_mm - 20) + 0.9 * (X.grade == "G3") - 1.2 * (X.ER == "positive")
    y = (rng.random(n) < expit(eta)).astype(int)
    X.loc[[3, 17, 40, 41], "age"] = np.nan
    return X, y


def _dummies(X, name):
    return pd.get_dummies(X[name], prefix=name, drop_first=True, dtype=float)


def _logit(X, y, names):
    parts = [pd.Series(1.0, index=X.index, name="const")]
    for name in names:
        if X[name].dtype == object or X[name].dtype == "str":
            parts.append(_dummies(X, name))
        else:
            parts.append(X[name].astype(float))
    design = pd.concat(parts, axis=1)
    rows = design.notna().all(axis=1).to_numpy()
    result = sm.Logit(np.asarray(y, dtype=float)[rows], design[rows]).fit(disp=0, tol=1e-12)
    return result, int(rows.sum())


def _check_row(row, result, column, n=None):
    np.testing.assert_allclose(row["odds_ratio"], np.exp(result.params[column]), rtol=1e-6)
    ci = np.exp(result.conf_int().loc[column])
    np.testing.assert_allclose([row["ci_low"], row["ci_high"]], ci, rtol=1e-5)
    np.testing.assert_allclose(row["p_value"], result.pvalues[column], rtol=1e-4)
    if n is not None:
        assert row["n"] == n


# --------------------------------------------------------------------------------------
# odds_ratio_table
# --------------------------------------------------------------------------------------


def test_univariable_estimates_equal_statsmodels_per_variable():
    X, y = _clinical()
    table = odds_ratio_table(X, y)
    uni = table["univariable"]
    assert list(uni.columns) == BLOCK
    assert table.index.names == ["variable", "level"]
    assert table.index.tolist() == [
        ("size_mm", ""),
        ("age", ""),
        ("grade", ""),
        ("grade", "G1"),
        ("grade", "G2"),
        ("grade", "G3"),
        ("ER", ""),
        ("ER", "negative"),
        ("ER", "positive"),
        ("noise", ""),
    ]
    for name in ("size_mm", "age", "noise"):
        result, n = _logit(X, y, [name])
        _check_row(uni.loc[(name, "")], result, name, n=n)
    assert uni.loc[("age", ""), "n"] == len(y) - 4  # complete cases of that variable
    result, n = _logit(X, y, ["grade"])
    _check_row(uni.loc[("grade", "G2")], result, "grade_G2")
    _check_row(uni.loc[("grade", "G3")], result, "grade_G3")
    reference = uni.loc[("grade", "G1")]
    assert (
        reference["odds_ratio"] == 1.0 and reference[["ci_low", "ci_high", "p_value"]].isna().all()
    )
    # The factor's p-value: the joint Wald test of its two coefficients.
    joint = result.wald_test(np.eye(3)[1:], scalar=True)
    np.testing.assert_allclose(uni.loc[("grade", ""), "p_value"], joint.pvalue, rtol=1e-4)
    assert uni.loc[("grade", ""), "n"] == n and np.isnan(uni.loc[("grade", ""), "odds_ratio"])
    # A two-level factor: its p-value is that of its one coefficient.
    result, _ = _logit(X, y, ["ER"])
    _check_row(uni.loc[("ER", "positive")], result, "ER_positive")
    assert uni.loc[("ER", ""), "p_value"] == uni.loc[("ER", "positive"), "p_value"]


def test_multivariable_model_holds_the_significant_variables():
    X, y = _clinical()
    table = odds_ratio_table(X, y)
    uni, multi = table["univariable"], table["multivariable"]
    first_rows = uni.xs("", level="level")
    significant = first_rows.index[first_rows["p_value"] < 0.05].tolist()
    assert significant == ["size_mm", "grade", "ER"]
    result, n = _logit(X, y, significant)
    _check_row(multi.loc[("size_mm", "")], result, "size_mm", n=n)
    _check_row(multi.loc[("grade", "G3")], result, "grade_G3")
    _check_row(multi.loc[("ER", "positive")], result, "ER_positive")
    joint = result.wald_test(np.eye(len(result.params))[[2, 3]], scalar=True)
    np.testing.assert_allclose(multi.loc[("grade", ""), "p_value"], joint.pvalue, rtol=1e-4)
    assert multi.loc[["age", "noise"]].isna().all().all()


def test_multivariable_all_uses_complete_cases_and_a_list_picks_variables():
    X, y = _clinical()
    table = odds_ratio_table(X, y, multivariable="all")
    result, n = _logit(X, y, ["size_mm", "age", "grade", "ER", "noise"])
    assert n == len(y) - 4
    multi = table["multivariable"]
    _check_row(multi.loc[("age", "")], result, "age", n=n)
    _check_row(multi.loc[("noise", "")], result, "noise", n=n)
    picked = odds_ratio_table(X, y, multivariable=["noise", "ER"])["multivariable"]
    result, n = _logit(X, y, ["ER", "noise"])
    _check_row(picked.loc[("noise", "")], result, "noise", n=len(y))
    assert picked.loc[["size_mm", "age", "grade"]].isna().all().all()
    empty = odds_ratio_table(X, y, multivariable=[])["multivariable"]
    assert empty.isna().all().all()
    # alpha moves the threshold of "significant".
    strict = odds_ratio_table(X, y, alpha=1e-6)["multivariable"]
    assert strict.loc[("size_mm", ""), "n"] == len(y) and strict.loc["ER"].isna().all().all()


def test_numpy_input_and_integer_coded_factor():
    X, y = _clinical()
    X["stage"] = np.random.default_rng(5).integers(1, 4, len(y))
    array = X[["size_mm", "stage"]].to_numpy()
    table = odds_ratio_table(array, y, categorical=[1])
    assert table.index.tolist() == [("x0", ""), ("x1", ""), ("x1", "1"), ("x1", "2"), ("x1", "3")]
    by_name = odds_ratio_table(X[["size_mm", "stage"]], y, categorical=["stage"])
    assert by_name.index.get_level_values("level").tolist() == ["", "", "1", "2", "3"]
    np.testing.assert_allclose(
        table.to_numpy(dtype=float), by_name.to_numpy(dtype=float), equal_nan=True
    )


def test_no_significant_variable_warns_and_skips_the_multivariable_model():
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"a": rng.normal(size=80), "b": rng.normal(size=80)})
    y = np.tile([0, 1], 40)
    with pytest.warns(UserWarning, match="no variable reached univariable p < 0.001"):
        table = odds_ratio_table(X, y, alpha=0.001)
    assert table["multivariable"].isna().all().all()
    assert table["univariable"]["odds_ratio"].notna().all()


def test_separation_and_constant_variables_are_reported_by_name():
    X, y = _clinical()
    X["site"] = np.where((y == 0) & (np.arange(len(y)) % 9 == 0), "rare", "main")
    X["scanner"] = "S1"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = odds_ratio_table(X, y)
    separation = [str(w.message) for w in caught if w.category is SeparationWarning]
    assert any("level 'rare' of 'site' has no '1' case" in m for m in separation)
    constant = [str(w.message) for w in caught if w.category is UserWarning]
    assert any("['scanner'] do not vary" in m for m in constant)
    assert table.loc["scanner"][("univariable", "odds_ratio")].isna().all()
    # The estimate under quasi-complete separation is huge or tiny, with a vast interval.
    rare = table.loc[("site", "rare"), "univariable"]
    assert rare["odds_ratio"] > 1e6 or rare["odds_ratio"] < 1e-6


def test_aliased_variables_in_the_multivariable_model_are_nan():
    X, y = _clinical()
    X["size_cm"] = X["size_mm"] / 10
    with pytest.warns(UserWarning, match=r"\['size_cm'\] of the multivariable model are linear"):
        table = odds_ratio_table(X, y, multivariable=["size_mm", "size_cm"])
    multi = table["multivariable"]
    assert np.isnan(multi.loc[("size_cm", ""), "odds_ratio"])
    result, _ = _logit(X, y, ["size_mm"])
    _check_row(multi.loc[("size_mm", "")], result, "size_mm")


def test_odds_ratio_table_invalid_input():
    X, y = _clinical(n=60)
    with pytest.raises(ValueError, match="unknown variables \\['tumour'\\]"):
        odds_ratio_table(X, y, multivariable=["tumour"])
    with pytest.raises(ValueError, match="multivariable must be"):
        odds_ratio_table(X, y, multivariable="stepwise")
    with pytest.raises(ValueError, match="binary classification only"):
        odds_ratio_table(X, np.arange(60) % 3)
    with pytest.raises(ValueError, match="one label per row"):
        odds_ratio_table(X, y[:-1])
    with pytest.raises(ValueError, match="alpha"):
        odds_ratio_table(X, y, alpha=0)


# --------------------------------------------------------------------------------------
# baseline_table
# --------------------------------------------------------------------------------------


def _baseline_data(seed=0, n=160):
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n // 2)
    X = pd.DataFrame(
        {
            "age": rng.normal(52, 9, n).round(1),
            "ki67": rng.lognormal(2.5, 0.8, n) * np.where(y == 1, 1.6, 1.0),
            "ER": rng.choice(["negative", "positive"], n),
            "lvi": rng.random(n) < np.where(y == 1, 0.12, 0.02),
            "grade": rng.choice(["1", "2", "3"], n, p=[0.06, 0.5, 0.44]),
            "size_mm": rng.normal(22, 6, n).round(1),
        }
    )
    X.loc[[2, 5, 90], "size_mm"] = np.nan
    X.loc[[7, 100, 101], "ER"] = np.nan
    return X, y


def _contingency(x, y):
    levels = sorted(set(x))
    return np.array([[np.sum((y == c) & (x == v)) for v in levels] for c in (0, 1)])


def test_baseline_statistics_tests_and_pvalues_equal_scipy():
    X, y = _baseline_data()
    table = baseline_table(X, y)
    block = table["all"]
    assert list(block.columns) == ["0", "1", "test", "p_value"]
    assert block.loc[("n", ""), "0"] == "80" and block.loc[("n", ""), "1"] == "80"

    # age: normal in both classes (Shapiro-Wilk) -> mean ± SD and Welch's t-test.
    a0, a1 = X["age"][y == 0], X["age"][y == 1]
    assert stats.shapiro(a0).pvalue >= 0.05 and stats.shapiro(a1).pvalue >= 0.05
    row = block.loc[("age", "")]
    assert row["0"] == f"{a0.mean():.1f} ± {a0.std(ddof=1):.1f}"
    assert row["1"] == f"{a1.mean():.1f} ± {a1.std(ddof=1):.1f}"
    assert row["test"] == "Welch t-test"
    np.testing.assert_allclose(row["p_value"], stats.ttest_ind(a1, a0, equal_var=False).pvalue)

    # ki67: skewed -> median [Q1, Q3] and Mann-Whitney U.
    k0, k1 = X["ki67"][y == 0], X["ki67"][y == 1]
    assert min(stats.shapiro(k0).pvalue, stats.shapiro(k1).pvalue) < 0.05
    q = np.percentile(k1, [25, 50, 75])
    row = block.loc[("ki67", "")]
    assert row["1"] == f"{q[1]:.1f} [{q[0]:.1f}, {q[2]:.1f}]"
    assert row["test"] == "Mann-Whitney U"
    expected = stats.mannwhitneyu(k1, k0, alternative="two-sided").pvalue
    np.testing.assert_allclose(row["p_value"], expected)

    # ER: large counts -> chi-square with Yates' correction; missing values left out.
    er = X["ER"].to_numpy(dtype=object)
    ok = pd.notna(er)
    observed = _contingency(er[ok], y[ok])
    assert block.loc[("ER", ""), "test"] == "chi-square"
    np.testing.assert_allclose(
        block.loc[("ER", ""), "p_value"], stats.chi2_contingency(observed).pvalue
    )
    negatives = observed[0, 0]
    total0 = observed[0].sum()
    assert block.loc[("ER", "negative"), "0"] == f"{negatives} ({100 * negatives / total0:.1f}%)"
    assert block.loc[("ER", "missing"), "0"] == "1 (1.2%)"  # row 7 (100, 101 are class 1)
    assert block.loc[("ER", "missing"), "1"] == "2 (2.5%)"

    # lvi (bool): expected count below 5 -> Fisher's exact test (2 x 2: SciPy's).
    lvi = _contingency(X["lvi"].to_numpy(), y)
    assert block.loc[("lvi", ""), "test"] == "Fisher exact"
    np.testing.assert_allclose(block.loc[("lvi", ""), "p_value"], stats.fisher_exact(lvi).pvalue)
    assert block.loc[("lvi", "True"), "1"] == f"{lvi[1, 1]} ({100 * lvi[1, 1] / 80:.1f}%)"

    # grade: 2 x 3 table with a small expected count -> exact Fisher enumeration.
    grade = _contingency(X["grade"].to_numpy(), y)
    assert block.loc[("grade", ""), "test"] == "Fisher exact"
    np.testing.assert_allclose(block.loc[("grade", ""), "p_value"], fisher_exact_2xk(grade)[1])

    # size_mm: missing values counted, statistics over the others.
    s = X["size_mm"]
    assert block.loc[("size_mm", "missing"), "0"] == f"2 ({100 * 2 / 80:.1f}%)"
    assert block.loc[("size_mm", "missing"), "1"] == f"1 ({100 * 1 / 80:.1f}%)"
    np.testing.assert_allclose(
        block.loc[("size_mm", ""), "p_value"],
        stats.ttest_ind(s[y == 1].dropna(), s[y == 0].dropna(), equal_var=False).pvalue,
    )
    # Rows without a test have no p-value.
    assert block.loc[("ER", "negative"), "test"] == "" and np.isnan(
        block.loc[("ER", "negative"), "p_value"]
    )


def test_row_layout_and_forced_summaries():
    X, y = _baseline_data()
    table = baseline_table(X[["age", "ER"]], y, normality="nonnormal", decimals=2)
    assert table.index.tolist() == [
        ("n", ""),
        ("age", ""),
        ("ER", ""),
        ("ER", "negative"),
        ("ER", "positive"),
        ("ER", "missing"),
    ]
    a0 = X["age"][y == 0]
    q = np.percentile(a0, [25, 50, 75])
    assert table.loc[("age", ""), ("all", "0")] == f"{q[1]:.2f} [{q[0]:.2f}, {q[2]:.2f}]"
    assert table.loc[("age", ""), ("all", "test")] == "Mann-Whitney U"
    normal = baseline_table(X[["ki67"]], y, normality="normal")
    k0 = X["ki67"][y == 0]
    assert normal.loc[("ki67", ""), ("all", "0")] == f"{k0.mean():.1f} ± {k0.std(ddof=1):.1f}"
    assert normal.loc[("ki67", ""), ("all", "test")] == "Welch t-test"
    # alpha is the level of the Shapiro-Wilk test: below both p-values, ki67 counts as normal.
    shapiro = min(stats.shapiro(X["ki67"][y == c]).pvalue for c in (0, 1))
    assert baseline_table(X[["ki67"]], y, alpha=shapiro / 2).loc[("ki67", ""), ("all", "test")] == (
        "Welch t-test"
    )
    assert baseline_table(X[["ki67"]], y, alpha=shapiro * 2).loc[("ki67", ""), ("all", "test")] == (
        "Mann-Whitney U"
    )


def test_constant_variables_are_described_without_a_test():
    X, y = _baseline_data()
    table = baseline_table(X[["age"]].assign(scanner="S1", dose=2.0), y)["all"]
    assert table.loc[("scanner", "S1"), "0"] == "80 (100.0%)"
    assert table.loc[("dose", ""), "1"] == "2.0 [2.0, 2.0]"
    for name in ("scanner", "dose"):
        assert table.loc[(name, ""), "test"] == "" and np.isnan(table.loc[(name, ""), "p_value"])


def test_cohort_blocks_equal_tables_of_each_cohort():
    X, y = _baseline_data()
    cohort = np.where(np.arange(len(y)) % 4 == 0, "validation", "training")
    table = baseline_table(X, y, cohort)
    assert table.columns.get_level_values(0).unique().tolist() == ["validation", "training"]
    for name in ("training", "validation"):
        block = table[name]
        alone = baseline_table(X[cohort == name].reset_index(drop=True), y[cohort == name])["all"]
        pd.testing.assert_frame_equal(block.loc[alone.index], alone)
        # Rows of the whole data that the cohort lacks (here: no missing value) count zero.
        extra = block.drop(index=alone.index)
        assert extra.index.get_level_values("level").tolist() == ["missing"] * len(extra)
        assert extra[["0", "1"]].map(lambda cell: cell.startswith("0 (")).all().all()
    # Cohort column named in X, with a category order.
    frame = X.assign(cohort=pd.Categorical(cohort, categories=["training", "validation", "test"]))
    by_column = baseline_table(frame, y, "cohort")
    assert by_column.columns.get_level_values(0).unique().tolist() == ["training", "validation"]
    assert "cohort" not in by_column.index.get_level_values("variable")
    pd.testing.assert_frame_equal(by_column["training"], table["training"])


def test_cohort_with_one_class_has_no_test():
    X, y = _baseline_data()
    only_pos = np.where(y == 1, "external", "internal")
    table = baseline_table(X[["age", "ER"]], y, only_pos)
    external = table["external"]
    assert external.loc[("n", ""), "0"] == "0"
    assert external.loc[("age", ""), "0"] == "NA"
    assert external["test"].eq("").all() and external["p_value"].isna().all()
    assert external.loc[("ER", "negative"), "0"] == "0 (NA)"


def test_baseline_table_invalid_input():
    X, y = _baseline_data()
    X, y = X.iloc[::4], y[::4]
    with pytest.raises(ValueError, match="normality must be"):
        baseline_table(X, y, normality="kolmogorov")
    with pytest.raises(ValueError, match="alpha"):
        baseline_table(X, y, alpha=1.5)
    with pytest.raises(ValueError, match="decimals"):
        baseline_table(X, y, decimals=-1)
    with pytest.raises(ValueError, match="groups has 39 entries"):
        baseline_table(X, y, ["a"] * 39)
    with pytest.raises(ValueError, match="missing cohort labels"):
        baseline_table(X, y, [None] + ["a"] * 39)
    with pytest.raises(ValueError, match="'centre' is not a column"):
        baseline_table(X, y, "centre")
    with pytest.raises(ValueError, match="binary classification only"):
        baseline_table(X, np.zeros(40))


def test_odds_ratios_with_string_labels_refer_to_pos_label():
    X, y = _clinical()
    labels = np.where(y == 1, "N+", "N0")  # "N+" sorts first: never taken as negative
    with pytest.raises(ValueError, match=r"odds_ratio_table: .*\['N\+', 'N0'\].*pos_label"):
        odds_ratio_table(X, labels)
    numeric = odds_ratio_table(X, y)
    text = odds_ratio_table(X, labels, pos_label="N+")
    pd.testing.assert_frame_equal(text, numeric)
    assert text.loc[("size_mm", ""), ("univariable", "odds_ratio")] > 1


def test_baseline_table_puts_the_positive_class_second():
    X, y = _clinical()
    labels = np.where(y == 1, "N+", "N0")
    plain = baseline_table(X, labels)["all"]
    ordered = baseline_table(X, labels, pos_label="N+")["all"]
    assert plain.columns[:2].tolist() == ["N+", "N0"]  # sorted
    assert ordered.columns[:2].tolist() == ["N0", "N+"]  # negative, then positive
    pd.testing.assert_frame_equal(
        ordered[["N0", "N+", "test", "p_value"]], plain[["N0", "N+", "test", "p_value"]]
    )
    with pytest.raises(ValueError, match="pos_label='N1' is not one of the labels"):
        baseline_table(X, labels, pos_label="N1")
