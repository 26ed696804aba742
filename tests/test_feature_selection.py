"""Tests of sklearn_alnm.feature_selection.

Every p-value is compared with SciPy's function called directly on the same numbers (or, for
Fisher's exact test on 2 x k tables, with a brute-force enumeration in exact rational
arithmetic); every selection is checked on data built so that the right answer is known.
"""

import functools
import itertools
import math
import pickle
import warnings
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.base import clone
from sklearn.linear_model import LassoCV, LogisticRegression, LogisticRegressionCV
from sklearn.metrics import get_scorer, roc_auc_score
from sklearn.model_selection import (
    GridSearchCV,
    RepeatedStratifiedKFold,
    StratifiedKFold,
    cross_val_score,
)
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import l1_min_c
from statsmodels.stats.multitest import multipletests

from sklearn_alnm.feature_selection import (
    CorrelationFilter,
    LassoSelector,
    UnivariateFilter,
    _univariate,
)
from sklearn_alnm.feature_selection._fisher import fisher_exact_2xk

# --------------------------------------------------------------------------------------
# scikit-learn's common estimator checks
# --------------------------------------------------------------------------------------


# scikit-learn's common checks of the selectors: tests/test_common.py.


# --------------------------------------------------------------------------------------
# Data with a known answer
# --------------------------------------------------------------------------------------


def _informative_frame(seed=0, n=120, n_noise=6):
    """One normal and one skewed informative feature, plus pure noise."""
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n // 2)
    X = pd.DataFrame(
        {
            "normal_informative": rng.normal(size=n) + 1.0 * y,
            "skewed_informative": rng.lognormal(sigma=1.0, size=n) * np.where(y == 1, 3.0, 1.0),
        }
    )
    for k in range(n_noise):
        X[f"noise_{k}"] = rng.normal(size=n)
    return X, y


def _welch(x, y):
    return stats.ttest_ind(x[y == 1], x[y == 0], equal_var=False)


def _mwu(x, y):
    return stats.mannwhitneyu(x[y == 1], x[y == 0], alternative="two-sided")


def _contingency(x, y):
    levels = np.unique(x)
    return np.array([[np.sum((y == c) & (x == v)) for v in levels] for c in (0, 1)])


# --------------------------------------------------------------------------------------
# UnivariateFilter
# --------------------------------------------------------------------------------------


def test_auto_test_choice_follows_shapiro_wilk_and_pvalues_equal_scipy():
    X, y = _informative_frame()
    selector = UnivariateFilter().fit(X, y)
    normal = X["normal_informative"].to_numpy()
    skewed = X["skewed_informative"].to_numpy()
    # The data are what they claim: normal in both classes / clearly not normal.
    assert min(stats.shapiro(normal[y == c]).pvalue for c in (0, 1)) >= 0.05
    assert min(stats.shapiro(skewed[y == c]).pvalue for c in (0, 1)) < 1e-3

    assert selector.tests_[0] == "ttest"
    assert selector.tests_[1] == "mannwhitney"
    np.testing.assert_allclose(selector.pvalues_[0], _welch(normal, y).pvalue, rtol=1e-12)
    np.testing.assert_allclose(selector.statistics_[0], _welch(normal, y).statistic, rtol=1e-12)
    np.testing.assert_allclose(selector.pvalues_[1], _mwu(skewed, y).pvalue, rtol=1e-12)
    np.testing.assert_allclose(selector.statistics_[1], _mwu(skewed, y).statistic, rtol=1e-12)
    # The Mann-Whitney U of the positive class over n1 * n0 is the feature's AUC.
    assert selector.statistics_[1] / (60 * 60) == pytest.approx(roc_auc_score(y, skewed))

    # Every column, whichever test "auto" picked, equals SciPy's test on that column.
    for j, name in enumerate(X.columns):
        x = X[name].to_numpy()
        normal_both = all(stats.shapiro(x[y == c]).pvalue >= 0.05 for c in (0, 1))
        expected = _welch(x, y) if normal_both else _mwu(x, y)
        assert selector.tests_[j] == ("ttest" if normal_both else "mannwhitney")
        np.testing.assert_allclose(selector.pvalues_[j], expected.pvalue, rtol=1e-12)
    assert selector.get_support()[:2].all()
    assert not selector.categorical_.any()


@pytest.mark.parametrize("test, reference", [("ttest", _welch), ("mannwhitney", _mwu)])
def test_forced_continuous_test_equals_scipy(test, reference):
    X, y = _informative_frame(seed=1)
    selector = UnivariateFilter(continuous_test=test).fit(X, y)
    assert set(selector.tests_) == {test}
    expected = [reference(X[name].to_numpy(), y).pvalue for name in X.columns]
    np.testing.assert_allclose(selector.pvalues_, expected, rtol=1e-12)
    np.testing.assert_array_equal(selector.support_, np.array(expected) < 0.05)


def test_small_classes_use_scipy_exact_mann_whitney_per_column():
    # Classes of 6 and 7: SciPy's "auto" is exact for columns without ties and asymptotic
    # for columns with ties; the vectorised filter must reproduce that column by column.
    rng = np.random.default_rng(3)
    y = np.array([0] * 6 + [1] * 7)
    X = rng.exponential(size=(13, 8)) + y[:, None] * np.linspace(0, 2, 8)
    X[:, ::2] = np.round(X[:, ::2])  # ties
    selector = UnivariateFilter(continuous_test="mannwhitney", categorical_features=None)
    selector.fit(X, y)
    expected = [_mwu(X[:, j], y).pvalue for j in range(8)]
    np.testing.assert_allclose(selector.pvalues_, expected, rtol=1e-12)


def test_pure_noise_is_selected_at_about_the_nominal_rate():
    rng = np.random.default_rng(4)
    y = np.repeat([0, 1], 40)
    X = rng.normal(size=(80, 300))
    selector = UnivariateFilter().fit(X, y)
    # Under the null each feature passes with probability 0.05: 15 expected, sd 3.8.
    assert 3 <= selector.support_.sum() <= 30
    assert selector.pvalues_.min() > 0


def test_constant_and_perfectly_separated_features():
    y = np.repeat([0, 1], 10)
    X = np.column_stack(
        [
            np.full(20, 3.5),  # constant
            np.where(y == 1, 2.0, 1.0) + 0.5,  # constant within each class, perfectly separated
            np.linspace(0.0, 1.0, 20) ** 3,  # informative, monotone in y
        ]
    )
    selector = UnivariateFilter(continuous_test="ttest", categorical_features=None).fit(X, y)
    assert selector.tests_[0] == "constant"
    assert selector.pvalues_[0] == 1.0 and np.isnan(selector.statistics_[0])
    # Welch's t needs spread within a class: this feature falls back to Mann-Whitney.
    assert selector.tests_[1] == "mannwhitney"
    np.testing.assert_allclose(selector.pvalues_[1], _mwu(X[:, 1], y).pvalue, rtol=1e-12)
    assert selector.tests_[2] == "ttest"
    assert selector.get_support().tolist() == [False, True, True]


def test_fisher_exact_for_small_expected_counts_equals_scipy():
    y = np.repeat([0, 1], 8)
    # Class 0: 7 x False, 1 x True; class 1: 2 x False, 6 x True. Expected count of a
    # "True" cell is 8 * 7 / 16 = 3.5 < 5, so "auto" must use Fisher's exact test.
    er_positive = np.array([False] * 7 + [True] * 1 + [False] * 2 + [True] * 6)
    X = pd.DataFrame({"er_positive": er_positive, "age": np.arange(16.0)})
    selector = UnivariateFilter().fit(X, y)
    assert selector.categorical_.tolist() == [True, False]
    assert selector.tests_[0] == "fisher"
    table = _contingency(er_positive, y)
    assert table.tolist() == [[7, 1], [2, 6]]
    expected = stats.fisher_exact(table)
    assert selector.pvalues_[0] == pytest.approx(expected.pvalue, rel=1e-12)
    assert selector.statistics_[0] == pytest.approx(expected.statistic, rel=1e-12)
    # Forcing the chi-square test on the same table gives scipy's (Yates-corrected) value.
    forced = UnivariateFilter(categorical_test="chi2").fit(X, y)
    assert forced.tests_[0] == "chi2"
    assert forced.pvalues_[0] == pytest.approx(stats.chi2_contingency(table).pvalue, rel=1e-12)


def test_chi_square_for_large_counts_equals_scipy():
    rng = np.random.default_rng(5)
    y = np.repeat([0, 1], 100)
    grade = np.where(y == 1, rng.choice([1, 2, 3], 200, p=[0.2, 0.3, 0.5]), 0)
    grade[y == 0] = rng.choice([1, 2, 3], 100, p=[0.4, 0.4, 0.2])
    ln_status = (rng.random(200) < 0.3 + 0.3 * y).astype(int)
    X = np.column_stack([grade, ln_status])
    selector = UnivariateFilter().fit(X, y)
    assert selector.categorical_.all()
    assert selector.tests_.tolist() == ["chi2", "chi2"]
    for j in range(2):
        table = _contingency(X[:, j], y)
        result = stats.chi2_contingency(table)
        assert selector.pvalues_[j] == pytest.approx(result.pvalue, rel=1e-12)
        assert selector.statistics_[j] == pytest.approx(result.statistic, rel=1e-12)


def _fisher_brute_force(table):
    """Two-sided Fisher p-value of a 2 x k table by enumeration, in exact arithmetic."""
    table = np.asarray(table)
    columns = table.sum(axis=0).tolist()
    row_total = int(table[0].sum())
    n = sum(columns)

    def probability(first_row):
        weight = math.prod(math.comb(c, a) for c, a in zip(columns, first_row))
        return Fraction(weight, math.comb(n, row_total))

    observed = probability(table[0].tolist())
    pvalue = Fraction(0)
    for first_row in itertools.product(*(range(c + 1) for c in columns)):
        if sum(first_row) == row_total:
            p = probability(first_row)
            if p <= observed * Fraction(10**7 + 1, 10**7):
                pvalue += p
    return float(observed), float(pvalue)


def test_fisher_exact_2xk_equals_enumeration_and_scipy_2x2():
    rng = np.random.default_rng(6)
    checked = 0
    while checked < 60:
        table = rng.integers(0, 7, size=(2, int(rng.integers(2, 5))))
        if table.sum(axis=0).min() == 0 or table.sum(axis=1).min() == 0:
            continue
        statistic, pvalue = fisher_exact_2xk(table)
        expected_statistic, expected_pvalue = _fisher_brute_force(table)
        assert pvalue == pytest.approx(expected_pvalue, rel=1e-10, abs=1e-15)
        assert statistic == pytest.approx(expected_statistic, rel=1e-10)
        if table.shape[1] == 2:
            assert pvalue == pytest.approx(stats.fisher_exact(table).pvalue, rel=1e-9)
        checked += 1
    # A table too big to enumerate in the brute-force way, still fast and within [0, 1].
    statistic, pvalue = fisher_exact_2xk([[3, 40, 2, 30, 1, 0], [0, 200, 5, 100, 2, 3]])
    assert 0.0 < pvalue < 0.05 and 0.0 < statistic < pvalue


def test_three_level_factor_with_small_counts_uses_exact_fisher():
    y = np.repeat([0, 1], 9)
    birads = np.array([3, 3, 3, 3, 3, 3, 3, 4, 5] + [3, 4, 4, 5, 5, 5, 5, 5, 5])
    selector = UnivariateFilter().fit(birads[:, None], y)
    assert selector.categorical_[0] and selector.tests_[0] == "fisher"
    table = _contingency(birads, y)
    assert table.tolist() == [[7, 1, 1], [1, 2, 6]]
    assert selector.pvalues_[0] == pytest.approx(_fisher_brute_force(table)[1], rel=1e-10)
    assert selector.pvalues_[0] < 0.05 and selector.get_support()[0]


def test_fisher_falls_back_to_chi_square_with_warning_when_enumeration_is_too_large(
    monkeypatch,
):
    monkeypatch.setattr(
        _univariate, "fisher_exact_2xk", functools.partial(fisher_exact_2xk, max_nodes=1)
    )
    y = np.repeat([0, 1], 9)
    birads = np.array([3, 3, 3, 3, 3, 3, 4, 4, 5] + [3, 4, 4, 4, 5, 5, 5, 5, 5])
    with pytest.warns(UserWarning, match="chi-square test instead"):
        selector = UnivariateFilter(alpha=1.0).fit(birads[:, None], y)
    assert selector.tests_[0] == "chi2"
    table = _contingency(birads, y)
    assert selector.pvalues_[0] == pytest.approx(stats.chi2_contingency(table).pvalue)


def test_categorical_detection_on_a_clinical_frame():
    rng = np.random.default_rng(7)
    n = 60
    y = np.repeat([0, 1], n // 2)
    X = pd.DataFrame(
        {
            "age": rng.normal(55, 10, n),
            "grade": rng.choice([1, 2, 3], n),
            "her2_positive": rng.random(n) < 0.3,
            "subtype": pd.Categorical(rng.choice(["luminal A", "luminal B", "TNBC"], n)),
            "birads": rng.choice(["4a", "4b", "4c", "5"], n).astype(object),
            "n_calcifications": rng.integers(0, 40, n),  # integer, but many levels
        }
    )
    selector = UnivariateFilter(alpha=0.5).fit(X, y)
    assert selector.categorical_.tolist() == [False, True, True, True, True, False]
    assert set(selector.tests_[selector.categorical_]) <= {"chi2", "fisher"}
    table = _contingency(X["birads"].to_numpy(), y)
    reference = (
        stats.chi2_contingency(table).pvalue
        if np.all(stats.contingency.expected_freq(table) >= 5)
        else _fisher_brute_force(table)[1]
    )
    assert selector.pvalues_[4] == pytest.approx(reference, rel=1e-9)
    # max_categories moves the integer rule.
    strict = UnivariateFilter(alpha=0.5, max_categories=2).fit(X, y)
    assert strict.categorical_.tolist() == [False, False, True, True, True, False]
    # Non-numeric columns survive the transform in a pandas output.
    out = selector.set_output(transform="pandas").transform(X)
    assert list(out.columns) == list(selector.get_feature_names_out())
    pd.testing.assert_frame_equal(out, X[list(out.columns)])


def test_categorical_features_as_mask_indices_or_names():
    rng = np.random.default_rng(8)
    y = np.repeat([0, 1], 30)
    X = pd.DataFrame(
        {
            "a": rng.normal(size=60),
            "b": rng.integers(0, 3, 60).astype(float),
            "c": rng.normal(size=60),
        }
    )
    # alpha=1 keeps every feature with p < 1; only the detection matters here.
    masks = [
        UnivariateFilter(1.0, categorical_features=spec).fit(X, y).categorical_.tolist()
        for spec in ([False, True, True], [1, 2], ["b", "c"])
    ]
    assert masks == [[False, True, True]] * 3
    assert not UnivariateFilter(1.0, categorical_features=None).fit(X, y).categorical_.any()
    assert UnivariateFilter(1.0).fit(X, y).categorical_.tolist() == [False, True, False]

    with pytest.raises(ValueError, match="boolean mask of length 2"):
        UnivariateFilter(categorical_features=[True, False]).fit(X, y)
    with pytest.raises(ValueError, match="outside"):
        UnivariateFilter(categorical_features=[3]).fit(X, y)
    with pytest.raises(ValueError, match="does not have: \\['d'\\]"):
        UnivariateFilter(categorical_features=["d"]).fit(X, y)
    with pytest.raises(ValueError, match="DataFrame"):
        UnivariateFilter(categorical_features=["b"]).fit(X.to_numpy(), y)
    strings = X.assign(c=np.where(X["c"] > 0, "high", "low").astype(object))
    with pytest.raises(ValueError, match="'c' holds strings"):
        UnivariateFilter(categorical_features=["b"]).fit(strings, y)


def test_multiple_testing_corrections():
    rng = np.random.default_rng(9)
    y = np.repeat([0, 1], 40)
    X = rng.normal(size=(80, 40))
    X[:, :5] += 1.2 * y[:, None]
    raw = UnivariateFilter().fit(X, y)
    bonferroni = UnivariateFilter(correction="bonferroni").fit(X, y)
    bh = UnivariateFilter(correction="fdr_bh").fit(X, y)
    np.testing.assert_array_equal(raw.pvalues_adjusted_, raw.pvalues_)
    np.testing.assert_allclose(bonferroni.pvalues_, raw.pvalues_)
    np.testing.assert_allclose(bonferroni.pvalues_adjusted_, np.minimum(1, 40 * raw.pvalues_))
    expected_bh = multipletests(raw.pvalues_, method="fdr_bh")[1]
    np.testing.assert_allclose(bh.pvalues_adjusted_, expected_bh, rtol=1e-12)
    np.testing.assert_array_equal(bh.support_, expected_bh < 0.05)
    assert bonferroni.support_.sum() <= bh.support_.sum() <= raw.support_.sum()
    assert bh.support_[:5].all()


def test_univariate_never_returns_an_empty_selection():
    rng = np.random.default_rng(10)
    y = np.repeat([0, 1], 20)
    X = rng.normal(size=(40, 12))
    with pytest.warns(UserWarning, match="No feature reached p < 1e-06"):
        selector = UnivariateFilter(alpha=1e-6).fit(X, y)
    assert selector.get_support(indices=True).tolist() == [int(np.argmin(selector.pvalues_))]
    assert selector.transform(X).shape == (40, 1)


def test_univariate_rejects_values_that_are_neither_numbers_nor_strings():
    X = np.array([[1.0, {"a": 1}], [2.0, "x"], [3.0, "y"], [4.0, "x"]], dtype=object)
    with pytest.raises(TypeError, match="type dict"):
        UnivariateFilter().fit(X, [0, 0, 1, 1])


# --------------------------------------------------------------------------------------
# Shared input rules
# --------------------------------------------------------------------------------------

_SELECTORS = [
    UnivariateFilter(),
    CorrelationFilter(),
    LassoSelector(cv=3, Cs=5, random_state=0),
]


@pytest.mark.parametrize("selector", _SELECTORS, ids=lambda s: type(s).__name__)
def test_binary_labels_only_and_no_missing_values(selector):
    rng = np.random.default_rng(11)
    X = rng.normal(size=(30, 4))
    with pytest.raises(ValueError, match="binary classification only.*3 classes"):
        clone(selector).fit(X, np.arange(30) % 3)
    with pytest.raises(ValueError, match="single class"):
        clone(selector).fit(X, np.zeros(30))
    with pytest.raises(ValueError, match="continuous"):
        clone(selector).fit(X, rng.normal(size=30))
    X_nan = X.copy()
    X_nan[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        clone(selector).fit(X_nan, np.arange(30) % 2)


@pytest.mark.parametrize("selector", _SELECTORS, ids=lambda s: type(s).__name__)
def test_any_two_labels_give_the_same_selection(selector):
    X, y = _informative_frame(seed=12, n=60)
    numeric = clone(selector).fit(X, y)
    text = clone(selector).fit(X, np.where(y == 1, "N+", "N0"))
    assert text.classes_.tolist() == ["N+", "N0"]
    # "N+" sorts first, so it is classes_[0]: the selection must not depend on that.
    np.testing.assert_array_equal(numeric.get_support(), text.get_support())


# --------------------------------------------------------------------------------------
# CorrelationFilter
# --------------------------------------------------------------------------------------


def _correlated_pair_frame(seed=13, n=200):
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n // 2)
    strong = rng.normal(size=n) + 1.2 * y
    weak = strong + 0.45 * rng.normal(size=n) - 0.6 * y  # correlated, less informative
    X = pd.DataFrame({"strong": strong, "weak": weak, "independent": rng.normal(size=n) + 0.3 * y})
    return X, y


@pytest.mark.parametrize("method", ["pearson", "spearman"])
def test_correlated_pair_keeps_the_feature_more_associated_with_the_label(method):
    X, y = _correlated_pair_frame()
    r = np.corrcoef(X["strong"], X["weak"])[0, 1]
    assert r > 0.75  # the pair really is correlated above the threshold
    auc = [roc_auc_score(y, X[c]) for c in X.columns]
    assert abs(auc[0] - 0.5) > abs(auc[1] - 0.5)

    for columns in (["strong", "weak", "independent"], ["independent", "weak", "strong"]):
        selector = CorrelationFilter(method=method).fit(X[columns], y)
        assert set(selector.get_feature_names_out()) == {"strong", "independent"}
        np.testing.assert_allclose(selector.auc_, [roc_auc_score(y, X[c]) for c in columns])
        (dropped, kept, r_pair), *rest = selector.dropped_pairs_
        assert (dropped, kept, rest) == ("weak", "strong", [])
        i, k = columns.index("weak"), columns.index("strong")
        assert r_pair == pytest.approx(selector.correlation_[i, k])


def test_correlation_matrices_equal_numpy_and_scipy():
    rng = np.random.default_rng(14)
    X = rng.normal(size=(50, 5))
    X[:, 1] = X[:, 0] + 0.3 * rng.normal(size=50)
    X[:, 2] = np.exp(X[:, 0])
    X[:, 4] = np.round(X[:, 4])  # ties for Spearman
    pearson = CorrelationFilter().fit(X).correlation_
    spearman = CorrelationFilter(method="spearman").fit(X).correlation_
    np.testing.assert_allclose(pearson, np.corrcoef(X, rowvar=False), atol=1e-12)
    np.testing.assert_allclose(spearman, stats.spearmanr(X).statistic, atol=1e-12)


def test_greedy_order_compares_only_with_kept_features():
    # a ~ b and b ~ c correlate at about 0.71, a and c do not.
    rng = np.random.default_rng(15)
    a, c = rng.normal(size=(2, 500))
    b = (a + c) / np.sqrt(2)
    assert abs(np.corrcoef(a, c)[0, 1]) < 0.1
    # Unsupervised: features are visited in column order.
    first_a = CorrelationFilter(threshold=0.6).fit(np.column_stack([a, b, c]))
    assert first_a.get_support().tolist() == [True, False, True]  # c is kept: b was dropped
    first_b = CorrelationFilter(threshold=0.6).fit(np.column_stack([b, a, c]))
    assert first_b.get_support().tolist() == [True, False, False]
    assert [pair[:2] for pair in first_b.dropped_pairs_] == [("x1", "x0"), ("x2", "x0")]
    # Supervised: visited from the most to the least associated with the label.
    y = (c + 0.3 * rng.normal(size=500) > 0).astype(int)  # c most, then b, then a
    supervised = CorrelationFilter(threshold=0.6).fit(np.column_stack([a, b, c]), y)
    assert supervised.order_.tolist() == [2, 1, 0]
    assert supervised.get_support().tolist() == [True, False, True]


def test_unsupervised_filter_keeps_the_earlier_of_two_duplicates():
    rng = np.random.default_rng(16)
    x = rng.normal(size=40)
    X = pd.DataFrame({"first": x, "copy": 2 * x + 1, "other": rng.normal(size=40)})
    assert CorrelationFilter().fit(X).get_feature_names_out().tolist() == ["first", "other"]
    reversed_ = X[["copy", "first", "other"]]
    assert CorrelationFilter().fit(reversed_).get_feature_names_out().tolist() == [
        "copy",
        "other",
    ]
    # |r| = 1 is not above a threshold of 1: nothing is dropped.
    assert CorrelationFilter(threshold=1.0).fit(X).get_support().all()


@pytest.mark.parametrize("method", ["pearson", "spearman"])
def test_kept_features_are_below_threshold_and_every_drop_is_explained(method):
    rng = np.random.default_rng(17)
    y = np.repeat([0, 1], 60)
    latent = rng.normal(size=(120, 4)) + y[:, None] * [1.0, 0.5, 0.0, 0.2]
    X = np.repeat(latent, 5, axis=1) + 0.5 * rng.normal(size=(120, 20))  # 4 families of 5
    selector = CorrelationFilter(threshold=0.6, method=method).fit(X, y)
    R = np.abs(selector.correlation_)
    kept = selector.get_support(indices=True)
    off_diagonal = R[np.ix_(kept, kept)][~np.eye(kept.size, dtype=bool)]
    assert off_diagonal.max() <= 0.6
    for j in np.flatnonzero(~selector.support_):
        assert R[j, kept].max() > 0.6
    assert len(selector.dropped_pairs_) == 20 - kept.size
    assert 4 <= kept.size < 20


def test_constant_column_is_uncorrelated_and_kept_silently():
    rng = np.random.default_rng(18)
    X = np.column_stack([rng.normal(size=30), np.full(30, 7.0), rng.normal(size=30)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        selector = CorrelationFilter().fit(X, np.arange(30) % 2)
    assert selector.get_support().all()
    assert np.isnan(selector.correlation_[1]).all() and np.isnan(selector.correlation_[:, 1]).all()
    assert not np.isnan(selector.correlation_[np.ix_([0, 2], [0, 2])]).any()


# --------------------------------------------------------------------------------------
# LassoSelector
# --------------------------------------------------------------------------------------


def _logistic_data(seed=19, n=200, n_noise=12):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3 + n_noise))
    logit = 1.5 * X[:, 0] - 1.2 * X[:, 1] + 1.0 * X[:, 2]
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(int)
    return X, y


@pytest.mark.parametrize("estimator", ["logistic", "linear"])
def test_lasso_keeps_the_informative_features(estimator):
    X, y = _logistic_data()
    best = LassoSelector(estimator, random_state=0).fit(X, y)
    assert best.support_[:3].all()
    assert np.abs(best.coef_[:3]).min() > np.abs(best.coef_[3:]).max()
    assert best.coef_[0] > 0 and best.coef_[1] < 0
    sparse = LassoSelector(estimator, rule="1se", random_state=0).fit(X, y)
    assert sparse.support_[:3].all()
    assert sparse.support_[3:].sum() <= 2  # at most 2 of the 12 noise features
    assert sparse.support_.sum() <= best.support_.sum()


def test_lasso_min_rule_reproduces_logistic_regression_cv():
    X, y = _logistic_data(seed=20)
    selector = LassoSelector(random_state=0).fit(X, y)
    Xs = StandardScaler().fit_transform(X)
    # The default grid: glmnet's path from the empty model over four decades.
    c_min = l1_min_c(Xs, y, loss="log")
    np.testing.assert_allclose(selector.penalties_, c_min * np.logspace(0, 4, 20))
    np.testing.assert_allclose(selector.cv_scores_[0], 0.5)  # the empty model
    reference = LogisticRegressionCV(
        Cs=selector.penalties_,
        l1_ratios=(1.0,),
        solver="liblinear",
        scoring="roc_auc",
        cv=StratifiedKFold(5),
        max_iter=1000,
        random_state=0,
        use_legacy_attributes=False,
    ).fit(Xs, y)
    assert selector.C_ == pytest.approx(reference.C_)
    np.testing.assert_allclose(selector.coef_, reference.coef_.ravel(), atol=1e-3)
    # The rank-formula AUC equals scikit-learn's roc_auc scorer, fold by fold.
    np.testing.assert_allclose(selector.cv_scores_, reference.scores_[:, 0, :].T, atol=1e-12)
    explicit = LassoSelector(scoring=get_scorer("roc_auc"), random_state=0).fit(X, y)
    np.testing.assert_allclose(explicit.cv_scores_, selector.cv_scores_, atol=1e-12)


def test_lasso_linear_reproduces_lasso_cv():
    X, y = _logistic_data(seed=21)
    selector = LassoSelector("linear").fit(X, y)
    reference = LassoCV(cv=StratifiedKFold(5), max_iter=1000).fit(
        StandardScaler().fit_transform(X), y.astype(float)
    )
    assert selector.alpha_ == pytest.approx(reference.alpha_)
    assert selector.C_ is None
    np.testing.assert_allclose(selector.coef_, reference.coef_, atol=1e-6)
    np.testing.assert_allclose(selector.cv_scores_, -reference.mse_path_)


def test_lasso_one_standard_error_rule():
    X, y = _logistic_data(seed=22)
    selector = LassoSelector(rule="1se", random_state=0).fit(X, y)
    mean = selector.cv_scores_.mean(axis=1)
    best = int(np.argmax(mean))
    se = selector.cv_scores_[best].std(ddof=1) / np.sqrt(5)
    eligible = selector.penalties_[mean >= mean[best] - se]
    assert selector.C_ == eligible.min()  # strongest penalty = smallest C
    assert selector.C_ <= selector.penalties_[best]


def test_lasso_standardises_so_units_do_not_matter():
    X, y = _logistic_data(seed=23)
    X_mm = X.copy()
    X_mm[:, 0] *= 1000.0  # the same feature in other units
    a = LassoSelector(random_state=0).fit(X, y)
    b = LassoSelector(random_state=0).fit(X_mm, y)
    np.testing.assert_array_equal(a.support_, b.support_)
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-8)


def test_lasso_never_returns_an_empty_selection():
    rng = np.random.default_rng(24)
    X = rng.normal(size=(60, 8))
    y = np.repeat([0, 1], 30)
    X[:, 5] += 0.4 * y  # the one most correlated with the label
    correlation = [abs(np.corrcoef(X[:, j], y)[0, 1]) for j in range(8)]
    with pytest.warns(UserWarning, match="kept no feature; keeping 'x5'"):
        selector = LassoSelector(Cs=[1e-6], random_state=0).fit(X, y)
    assert not np.any(selector.coef_)
    assert selector.get_support(indices=True).tolist() == [int(np.argmax(correlation))] == [5]
    with pytest.warns(UserWarning, match="kept no feature"):
        linear = LassoSelector("linear", alphas=[10.0]).fit(X, y)
    assert linear.get_support(indices=True).tolist() == [5]
    # No feature varies at all: still one feature (the first), with the warning.
    for estimator in ("logistic", "linear"):
        with pytest.warns(UserWarning, match="kept no feature; keeping 'x0'"):
            constant = LassoSelector(estimator, cv=3).fit(np.ones((60, 3)), y)
        assert constant.get_support().tolist() == [True, False, False]


def test_lasso_needs_as_many_cases_per_class_as_folds():
    rng = np.random.default_rng(25)
    X = rng.normal(size=(30, 3))
    y = np.array([1] * 4 + [0] * 26)
    with pytest.raises(ValueError, match="at least 5 samples of each class.*has 4"):
        LassoSelector(cv=5).fit(X, y)
    X[:, 2] += 2.0 * y
    assert LassoSelector(cv=4, Cs=3, random_state=0).fit(X, y).support_[2]


# --------------------------------------------------------------------------------------
# Pipelines, pandas, pickling
# --------------------------------------------------------------------------------------


def _signature_pipeline(**lasso):
    return Pipeline(
        [
            ("zscore", StandardScaler()),
            ("univariate", UnivariateFilter()),
            ("correlation", CorrelationFilter()),
            ("lasso", LassoSelector(random_state=0, **lasso)),
            ("model", LogisticRegression()),
        ]
    )


def _radiomics_like(seed=26, n=120):
    """Feature families (correlated copies) with signal in two of them, plus noise."""
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n // 2)
    latent = rng.normal(size=(n, 5)) + y[:, None] * [1.0, -0.8, 0.0, 0.0, 0.0]
    X = np.repeat(latent, 3, axis=1) + 0.3 * rng.normal(size=(n, 15))
    X = np.hstack([X, rng.normal(size=(n, 15))])
    columns = [f"family{k}_copy{c}" for k in range(5) for c in range(3)]
    columns += [f"noise_{k}" for k in range(15)]
    return pd.DataFrame(X, columns=columns), y


def test_pipeline_cross_validation_and_grid_search():
    X, y = _radiomics_like()
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    auc = cross_val_score(_signature_pipeline(cv=3, Cs=8), X, y, cv=cv, scoring="roc_auc")
    assert auc.mean() > 0.8
    grid = {"univariate__alpha": [0.01, 0.05], "correlation__threshold": [0.6, 0.9]}
    search = GridSearchCV(_signature_pipeline(cv=3, Cs=8), grid, cv=cv, scoring="roc_auc")
    search.fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    assert search.best_score_ > 0.8
    kept = search.best_estimator_[:-1].get_feature_names_out()
    # One representative of each informative family at most, and no noise.
    families = {name.split("_")[0] for name in kept}
    assert families <= {"family0", "family1"} and len(kept) == len(families)


def test_pandas_output_and_feature_names():
    X, y = _radiomics_like(seed=27)
    selection = _signature_pipeline(cv=3, Cs=8)[:-1].set_output(transform="pandas")
    out = selection.fit_transform(X, y)
    assert isinstance(out, pd.DataFrame)
    names = selection.get_feature_names_out()
    assert list(out.columns) == list(names) and len(names) >= 1
    assert set(names) <= set(X.columns)
    np.testing.assert_array_equal(out.index, X.index)
    zscored = selection[0].transform(X)
    pd.testing.assert_frame_equal(out, zscored[list(names)])
    for step in selection[1:]:
        assert step.n_features_in_ == len(step.feature_names_in_)
    # inverse_transform puts the kept columns back in place and zeros elsewhere.
    restored = selection[-1].inverse_transform(selection[-1].transform(out))
    assert restored.shape == out.shape


def test_fitted_pipeline_pickles():
    X, y = _radiomics_like(seed=28)
    model = _signature_pipeline(cv=3, Cs=8).fit(X, y)
    loaded = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(
        loaded[:-1].get_feature_names_out(), model[:-1].get_feature_names_out()
    )
    np.testing.assert_array_equal(loaded["univariate"].pvalues_, model["univariate"].pvalues_)


def test_selection_inside_the_pipeline_does_not_leak():
    """Selecting on the whole cohort before cross-validation is optimistic; in-pipeline not.

    Pure noise: 400 features, 80 patients, random labels. Selecting features on all 80
    patients and then cross-validating only the classifier reuses the validation patients'
    labels and reports a high AUC; the same selection fitted inside the pipeline, on the
    training folds only, stays near (or below) chance.
    """
    rng = np.random.default_rng(29)
    X = rng.normal(size=(80, 400))
    y = rng.permutation(np.repeat([0, 1], 40))
    cv = RepeatedStratifiedKFold(n_splits=5, n_repeats=2, random_state=0)

    def selection():
        return make_pipeline(
            StandardScaler(),
            UnivariateFilter(),
            CorrelationFilter(),
            LassoSelector(cv=3, Cs=10, random_state=0),
        )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # some folds keep a single feature
        X_leaky = selection().fit_transform(X, y)
        leaky = cross_val_score(LogisticRegression(), X_leaky, y, cv=cv, scoring="roc_auc")
        honest = cross_val_score(
            make_pipeline(selection(), LogisticRegression()), X, y, cv=cv, scoring="roc_auc"
        )
    assert leaky.mean() > 0.75
    assert honest.mean() < 0.65
    assert leaky.mean() - honest.mean() > 0.2
