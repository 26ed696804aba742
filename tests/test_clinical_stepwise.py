"""Tests of StepwiseLogisticRegression: R's step() on a binomial GLM as a classifier."""

import math
import pickle
import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy.special import expit
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from statsmodels.stats.outliers_influence import variance_inflation_factor

from sklearn_alnm.clinical import SeparationWarning, StepwiseLogisticRegression
from sklearn_alnm.clinical._stepwise import _stepwise_search

TRUE_TERMS = ["x1", "grade", "x2"]


def _cohort(seed, n=400):
    """y depends on x1, x2 and a 3-level grade; noise1-3 and the factor ``site`` are noise."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "noise1": rng.normal(size=n),
            "grade": rng.choice(["G1", "G2", "G3"], n),
            "x2": rng.normal(size=n),
            "noise2": rng.normal(size=n),
            "site": rng.choice(["A", "B", "C"], n),
            "noise3": rng.uniform(size=n),
        }
    )
    eta = -0.5 + 1.0 * X.x1 - 0.8 * X.x2 + 1.2 * (X.grade == "G2") + 2.0 * (X.grade == "G3")
    y = (rng.random(n) < expit(eta)).astype(int)
    return X, y


# --------------------------------------------------------------------------------------
# An independent reference: statsmodels' Logit on pandas dummies, greedy search by hand
# --------------------------------------------------------------------------------------


def _design(X, terms):
    """Intercept + treatment-coded columns of ``terms`` (pandas' dummies, first level dropped)."""
    parts = [pd.Series(1.0, index=X.index, name="const")]
    for t in terms:
        col = X[t]
        if pd.api.types.is_bool_dtype(col) or not pd.api.types.is_numeric_dtype(col):
            parts.append(pd.get_dummies(col, prefix=t, drop_first=True, dtype=float))
        else:
            parts.append(col.astype(float))
    return pd.concat(parts, axis=1)


def _logit(X, y, terms):
    return sm.Logit(np.asarray(y, dtype=float), _design(X, terms)).fit(disp=0, tol=1e-12)


def _criterion(X, y, terms, k):
    """-2 log L + k * (number of coefficients), computed by statsmodels' Logit."""
    result = _logit(X, y, terms)
    return -2.0 * result.llf + k * len(result.params)


def _greedy(X, y, direction, k):
    """Greedy stepwise search written out plainly: the best move while it lowers the score."""
    all_terms = list(X.columns)
    current = [] if direction == "forward" else list(all_terms)
    score = _criterion(X, y, current, k)
    path = [("start", "", current, score)]
    while True:
        moves = []
        if direction in ("backward", "both"):
            for t in current:
                kept = [s for s in current if s != t]
                moves.append(("remove", t, kept, _criterion(X, y, kept, k)))
        if direction in ("forward", "both"):
            for t in all_terms:
                if t not in current:
                    moves.append(("add", t, current + [t], _criterion(X, y, current + [t], k)))
        if not moves:
            break
        best = min(moves, key=lambda m: m[3])
        if not best[3] < score:
            break
        current, score = best[2], best[3]
        path.append(best)
    return path


# --------------------------------------------------------------------------------------
# Selection with a known answer, exact criterion values, brute-force replication
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("direction", ["backward", "forward", "both"])
def test_selects_exactly_the_true_terms(direction):
    X, y = _cohort(4)
    model = StepwiseLogisticRegression(direction=direction).fit(X, y)
    assert model.selected_features_ == TRUE_TERMS
    assert model.selected_columns_ == ["x1", "grade_G2", "grade_G3", "x2"]
    assert model.coef_.shape == (1, 4) and model.intercept_.shape == (1,)
    # Signs of the generating model.
    assert model.coef_[0, 0] > 0 and model.coef_[0, 3] < 0 and model.coef_[0, 2] > 0


@pytest.mark.parametrize(
    ("direction", "criterion"),
    [("backward", "aic"), ("forward", "aic"), ("both", "aic"), ("both", "bic")],
)
def test_path_and_criterion_equal_a_brute_force_greedy_search(direction, criterion):
    X, y = _cohort(0)
    n = len(y)
    k = 2.0 if criterion == "aic" else math.log(n)
    model = StepwiseLogisticRegression(direction=direction, criterion=criterion).fit(X, y)
    reference = _greedy(X, y, direction, k)
    steps = model.steps_
    assert list(steps["step"]) == list(range(len(reference)))
    assert list(zip(steps["action"], steps["term"])) == [(a, t) for a, t, _, _ in reference]
    column = "AIC" if criterion == "aic" else "BIC"
    np.testing.assert_allclose(steps[column], [s for *_, s in reference], rtol=1e-9)
    assert sorted(model.selected_features_) == sorted(reference[-1][2])
    # Every row: AIC = deviance + 2 df and BIC = deviance + log(n) df of that model, with
    # deviance = -2 log L and df = number of coefficients of statsmodels' own fit.
    for (_, _, terms, _), (_, row) in zip(reference, steps.iterrows()):
        result = _logit(X, y, terms)
        assert row["df"] == len(result.params)
        np.testing.assert_allclose(row["deviance"], -2 * result.llf, rtol=1e-9)
        np.testing.assert_allclose(row["AIC"], -2 * result.llf + 2 * row["df"], rtol=1e-9)
        np.testing.assert_allclose(row["BIC"], -2 * result.llf + math.log(n) * row["df"], rtol=1e-9)
    final = _logit(X, y, model.selected_features_)
    np.testing.assert_allclose(model.aic_, final.aic, rtol=1e-9)
    np.testing.assert_allclose(model.bic_, -2 * final.llf + math.log(n) * len(final.params))


def test_backward_path_on_the_noise_terms():
    X, y = _cohort(4)
    model = StepwiseLogisticRegression().fit(X, y)
    steps = model.steps_
    assert steps.loc[0, "action"] == "start" and steps.loc[0, "df"] == 10
    assert set(steps["term"][1:]) == {"noise1", "noise2", "noise3", "site"}
    assert steps["AIC"].is_monotonic_decreasing
    # The factor leaves as one term, taking both of its indicators.
    site = steps.index[steps["term"] == "site"][0]
    assert steps.loc[site - 1, "df"] - steps.loc[site, "df"] == 2


def test_forward_starts_from_the_intercept_only_model():
    X, y = _cohort(4)
    model = StepwiseLogisticRegression(direction="forward").fit(X, y)
    start = model.steps_.iloc[0]
    assert start["df"] == 1 and start["term"] == ""
    null_deviance = _logit(X, y, []).llf * -2
    np.testing.assert_allclose(start["deviance"], null_deviance, rtol=1e-9)
    assert list(model.steps_["action"][1:]) == ["add"] * 3
    # The factor enters as one term with two coefficients.
    grade = model.steps_.index[model.steps_["term"] == "grade"][0]
    assert model.steps_.loc[grade, "df"] - model.steps_.loc[grade - 1, "df"] == 2


def test_bic_selects_fewer_terms_than_aic():
    X, y = _cohort(0)
    aic = StepwiseLogisticRegression(criterion="aic").fit(X, y)
    bic = StepwiseLogisticRegression(criterion="bic").fit(X, y)
    assert set(bic.selected_features_) <= set(aic.selected_features_)
    assert bic.selected_features_ == TRUE_TERMS and "site" in aic.selected_features_


def test_summary_and_coefficients_equal_statsmodels():
    X, y = _cohort(4)
    model = StepwiseLogisticRegression().fit(X, y)
    result = _logit(X, y, TRUE_TERMS)
    np.testing.assert_allclose(model.intercept_[0], result.params["const"], rtol=1e-6)
    np.testing.assert_allclose(model.coef_[0], result.params.iloc[1:], rtol=1e-6)
    summary = model.summary_
    assert list(summary.index) == model.selected_columns_
    assert list(summary["term"]) == ["x1", "grade", "grade", "x2"]
    np.testing.assert_allclose(summary["se"], result.bse.iloc[1:], rtol=1e-5)
    np.testing.assert_allclose(summary["z"], result.tvalues.iloc[1:], rtol=1e-6)
    # IRLS stops at a deviance change of 1e-8 (as R's glm): p-values of 1e-12 agree to 1e-4.
    np.testing.assert_allclose(summary["p_value"], result.pvalues.iloc[1:], rtol=1e-4)
    np.testing.assert_allclose(summary["odds_ratio"], np.exp(result.params.iloc[1:]), rtol=1e-6)
    ci = np.exp(result.conf_int().iloc[1:])
    np.testing.assert_allclose(summary["ci_low"], ci[0], rtol=1e-5)
    np.testing.assert_allclose(summary["ci_high"], ci[1], rtol=1e-5)
    # Wald interval with the normal quantile 1.96.
    np.testing.assert_allclose(
        summary["ci_high"], np.exp(summary["beta"] + 1.959964 * summary["se"]), rtol=1e-6
    )
    assert list(model.result_.params.index) == ["(Intercept)"] + model.selected_columns_


def test_predictions_follow_the_final_model():
    X, y = _cohort(4)
    model = StepwiseLogisticRegression().fit(X, y)
    design = _design(X, TRUE_TERMS).to_numpy()
    eta = design @ np.r_[model.intercept_, model.coef_[0]]
    np.testing.assert_allclose(model.decision_function(X), eta, rtol=1e-10)
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba[:, 1], expit(eta), rtol=1e-10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(model.predict(X), (eta > 0).astype(int))
    # Columns left out of the model do not influence predictions.
    shuffled = X.assign(noise1=X["noise1"].to_numpy()[::-1], site="C")
    np.testing.assert_allclose(model.predict_proba(shuffled), proba)


# --------------------------------------------------------------------------------------
# Terms: factors, aliasing, constant columns, VIF
# --------------------------------------------------------------------------------------


def test_integer_coded_factor_named_in_categorical_is_one_term():
    rng = np.random.default_rng(1)
    n = 300
    stage = rng.integers(1, 4, n)
    X = pd.DataFrame({"size": rng.normal(size=n), "stage": stage})
    y = (rng.random(n) < expit(0.8 * X["size"] + np.where(stage == 2, 1.5, 0.0))).astype(int)
    as_number = StepwiseLogisticRegression().fit(X, y)
    as_factor = StepwiseLogisticRegression(categorical=["stage"]).fit(X, y)
    assert as_number.steps_.loc[0, "df"] == 3
    assert as_factor.steps_.loc[0, "df"] == 4
    assert as_factor.selected_columns_ == ["size", "stage_2", "stage_3"]
    # Index and mask forms name the same column.
    for spec in ([1], [False, True]):
        model = StepwiseLogisticRegression(categorical=spec).fit(X, y)
        assert model.selected_columns_ == as_factor.selected_columns_


def test_category_dtype_keeps_its_level_order_and_reference():
    X, y = _cohort(4)
    X["grade"] = pd.Categorical(X["grade"], categories=["G3", "G2", "G1"])
    model = StepwiseLogisticRegression().fit(X, y)
    assert model.selected_columns_ == ["x1", "grade_G2", "grade_G1", "x2"]
    reference = StepwiseLogisticRegression().fit(X.astype({"grade": str}), y)
    np.testing.assert_allclose(model.aic_, reference.aic_, rtol=1e-9)


def test_bool_string_and_nullable_integer_columns():
    X, y = _cohort(4, n=200)
    X = X[["x1", "x2"]].assign(
        lvi=X["x1"] + np.random.default_rng(2).normal(size=200) > 0,
        ER=pd.Series(np.where(X["noise1"] + 1.5 * y > 0.75, "pos", "neg"), dtype="string"),
        birads=pd.array(np.where(X["noise2"] > 0, 4, 5), dtype="Int64"),
    )
    model = StepwiseLogisticRegression(categorical=["birads"]).fit(X, y)
    # bool and string columns are factors (reference: False, "neg"); the named integer
    # column too, its levels printed as integers.
    assert [t.columns for t in model._terms] == [
        ["x1"],
        ["x2"],
        ["lvi_True"],
        ["ER_pos"],
        ["birads_5"],
    ]
    assert model.steps_.loc[0, "df"] == 6
    assert {"lvi", "ER"} <= set(model.selected_features_)
    reference = _logit(X.astype({"birads": str}), y, model.selected_features_)
    np.testing.assert_allclose(model.aic_, reference.aic, rtol=1e-9)
    assert model.predict_proba(X).shape == (200, 2)


def test_non_converged_fits_are_reported():
    X, y = _cohort(4, n=100)
    with pytest.warns(ConvergenceWarning, match="did not converge in max_iter=1"):
        StepwiseLogisticRegression(max_iter=1).fit(X, y)


def test_aliased_term_is_removed_first_as_in_r():
    X, y = _cohort(4)
    aliased = X.assign(x3=X["x1"] + X["x2"])
    model = StepwiseLogisticRegression().fit(aliased, y)
    reference = StepwiseLogisticRegression().fit(X, y)
    # R's step: a term whose removal leaves the rank unchanged goes first (the last such
    # term), whatever the criterion; the criterion of the model does not change.
    assert tuple(model.steps_.loc[1, ["action", "term"]]) == ("remove", "x3")
    assert model.steps_.loc[0, "df"] == model.steps_.loc[1, "df"] == 10
    np.testing.assert_allclose(model.steps_.loc[1, "AIC"], model.steps_.loc[0, "AIC"])
    assert model.selected_features_ == reference.selected_features_
    np.testing.assert_allclose(model.steps_["AIC"][1:], reference.steps_["AIC"], rtol=1e-8)


def test_constant_column_is_removed_with_a_warning():
    X, y = _cohort(4)
    X.insert(1, "scanner", "S1")
    X["flat"] = 2.5
    with pytest.warns(UserWarning, match=r"constant column\(s\) \['scanner', 'flat'\]"):
        model = StepwiseLogisticRegression().fit(X, y)
    assert model.constant_features_ == ["scanner", "flat"]
    assert "scanner" not in model.terms_ and "flat" not in model.terms_
    assert model.selected_features_ == TRUE_TERMS
    assert model.predict_proba(X).shape == (len(y), 2)


def test_vif_removes_the_most_collinear_numeric_term():
    rng = np.random.default_rng(3)
    n = 300
    X = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n)})
    X["x4"] = X["x1"] + X["x2"] + rng.normal(scale=0.1, size=n)
    X["grade"] = rng.choice(["a", "b"], n)
    y = (rng.random(n) < expit(X["x1"] - X["x2"])).astype(int)
    exog = _design(X, ["x1", "x2", "x4", "grade"]).to_numpy()
    expected = [variance_inflation_factor(exog, j) for j in (1, 2, 3)]
    assert np.argmax(expected) == 2 and expected[2] > 100  # x4, then x1 / x2 (about 100)
    model = StepwiseLogisticRegression(max_vif=10).fit(X, y)
    assert model.vif_dropped_ == ["x4"]
    assert "x4" not in model.terms_ and "x4" not in model.steps_["term"].tolist()
    np.testing.assert_allclose(model.vif_["x4"], expected[2], rtol=1e-10)
    after = _design(X, ["x1", "x2", "grade"]).to_numpy()
    np.testing.assert_allclose(
        model.vif_[["x1", "x2"]], [variance_inflation_factor(after, j) for j in (1, 2)]
    )
    assert model.vif_.max() < 10 or model.vif_.idxmax() == "x4"
    no_vif = StepwiseLogisticRegression().fit(X, y)
    assert no_vif.vif_dropped_ == [] and no_vif.vif_ is None and "x4" in no_vif.terms_
    # An exact linear combination has a huge (round-off) or infinite VIF and goes first.
    exact = X.assign(x4=X["x1"] + X["x2"])
    model = StepwiseLogisticRegression(max_vif=5).fit(exact, y)
    assert len(model.vif_dropped_) == 1 and model.vif_[model.vif_dropped_[0]] > 1e10
    assert model.vif_.drop(model.vif_dropped_).max() < 5


# --------------------------------------------------------------------------------------
# Separation, missing values, bad input
# --------------------------------------------------------------------------------------


def test_complete_separation_by_one_variable_warns_with_its_name():
    X, y = _cohort(4, n=200)
    X["marker"] = np.where(y == 1, 1.0, 0.0) + np.random.default_rng(0).uniform(0, 0.5, 200)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = StepwiseLogisticRegression().fit(X, y)
    messages = [str(w.message) for w in caught if issubclass(w.category, SeparationWarning)]
    assert any("'marker' separates the classes completely" in m for m in messages)
    assert any("selected model" in m and "numerically 0 or 1" in m for m in messages)
    assert "marker" in model.selected_features_
    assert np.isfinite(model.predict_proba(X)).all()


def test_quasi_complete_separation_names_the_empty_level():
    X, y = _cohort(4)
    X["site"] = np.where((y == 0) & (np.arange(len(y)) % 7 == 0), "rare", X["site"])
    with pytest.warns(SeparationWarning, match="level 'rare' of 'site' has no '1' case"):
        StepwiseLogisticRegression().fit(X, y)
    X2, _ = _cohort(4)
    X2["touch"] = np.where(y == 1, 1.0, 0.0)
    X2.loc[np.flatnonzero(y == 0)[:5], "touch"] = 1.0
    with pytest.warns(SeparationWarning, match="'touch' separates the classes quasi-completely"):
        StepwiseLogisticRegression(direction="forward").fit(X2, y)


def test_missing_and_infinite_values_are_rejected_with_the_column_name():
    X, y = _cohort(4, n=60)
    with pytest.raises(ValueError, match=r"Column 'x2' has 1 missing value.*row\(s\) 3.*impute"):
        StepwiseLogisticRegression().fit(X.assign(x2=X["x2"].where(X.index != 3)), y)
    with pytest.raises(ValueError, match="Column 'grade' has 1 missing"):
        StepwiseLogisticRegression().fit(X.assign(grade=X["grade"].where(X.index != 5)), y)
    with pytest.raises(ValueError, match="Column 'x1' has 1 infinite"):
        StepwiseLogisticRegression().fit(X.assign(x1=X["x1"].replace(X["x1"][0], np.inf)), y)
    model = StepwiseLogisticRegression().fit(X, y)
    with pytest.raises(ValueError, match="Column 'x1' has 1 missing"):
        model.predict(X.assign(x1=X["x1"].where(X.index != 0)))


def test_unseen_level_at_prediction_is_an_error():
    X, y = _cohort(4, n=120)
    model = StepwiseLogisticRegression().fit(X, y)
    assert "grade" in model.selected_features_
    with pytest.raises(
        ValueError, match=r"Column 'grade' holds levels not seen in training: \['G4'\]"
    ):
        model.predict(X.assign(grade="G4"))


def test_invalid_input():
    X, y = _cohort(4, n=60)
    with pytest.raises(ValueError, match="Only binary classification is supported"):
        StepwiseLogisticRegression().fit(X, np.arange(60) % 3)
    with pytest.raises(ValueError, match="X does not have: \\['nope'\\]"):
        StepwiseLogisticRegression(categorical=["nope"]).fit(X, y)
    with pytest.raises(ValueError, match="needs X to be a DataFrame"):
        StepwiseLogisticRegression(categorical=["x1"]).fit(X[["x1", "x2"]].to_numpy(), y)
    with pytest.raises(ValueError, match="direction"):
        StepwiseLogisticRegression(direction="sideways").fit(X, y)
    with pytest.raises(ValueError, match="max_vif"):
        StepwiseLogisticRegression(max_vif=0.5).fit(X, y)
    clash = pd.DataFrame({"ER": ["neg", "pos"] * 30, "ER_pos": np.arange(60.0)})
    with pytest.raises(ValueError, match=r"Encoded column names clash: \['ER_pos'\]"):
        StepwiseLogisticRegression().fit(clash, y)
    with pytest.raises(TypeError, match="Column 'obj' holds a value of type dict"):
        StepwiseLogisticRegression().fit(pd.DataFrame({"x": np.arange(60.0), "obj": [{}] * 60}), y)


# --------------------------------------------------------------------------------------
# R's tie rules, on a search whose criterion values are set by hand
# --------------------------------------------------------------------------------------


def _search(aic, direction="backward", terms="abc", rank=None):
    """Run the search on a fake model cache: criterion values set per set of terms.

    ``aic`` maps a string of term names (e.g. ``"ab"``) to the model's AIC; unlisted models
    get 1000. With the default rank (intercept + one coefficient per term) the deviance is
    ``AIC - 2 * rank``.
    """
    rank = rank or (lambda key: 1 + len(key))

    def fit(terms_):
        key = frozenset(terms_)
        value = aic.get("".join(sorted(key)), 1000.0)
        return SimpleNamespace(deviance=value - 2.0 * rank(key), rank=rank(key))

    final, rows = _stepwise_search(fit, list(terms), direction, 2.0)
    return final, [(action, term) for action, term, _, _ in rows[1:]]


def test_a_tie_between_removals_goes_to_the_earlier_term():
    final, moves = _search({"abc": 110, "bc": 105, "ac": 105, "ab": 108, "b": 120, "c": 120})
    assert moves == [("remove", "a")] and final == ["b", "c"]


def test_a_move_that_ties_the_current_model_is_not_made():
    # R orders the candidates with "<none>" first: an equal criterion keeps the model.
    final, moves = _search({"abc": 110, "bc": 110, "ac": 115, "ab": 115})
    assert moves == [] and final == ["a", "b", "c"]
    final, moves = _search({"abc": 110, "bc": 110 - 1e-9, "ac": 115, "ab": 115})
    assert moves == [("remove", "a")]


def test_a_removal_wins_a_tie_with_an_addition():
    # abcde -> abcd -> abc -> ab; from ab, removing a and adding e (a model never compared
    # before) both reach AIC 100: R's order puts removals before additions.
    aic = {"abcde": 130, "abcd": 125, "abc": 120, "ab": 115, "b": 100, "abe": 100}
    final, moves = _search(aic, direction="both", terms="abcde")
    assert moves == [("remove", "e"), ("remove", "d"), ("remove", "c"), ("remove", "a")]
    assert final == ["b"]
    # Without the tie the addition is made, and the added term goes to the end of the model.
    final, moves = _search(dict(aic, abe=99), direction="both", terms="abcde")
    assert moves[-1] == ("add", "e") and final == ["a", "b", "e"]


def test_forward_adds_the_best_term_until_none_lowers_the_criterion():
    aic = {"": 200, "a": 150, "b": 140, "c": 160, "ab": 120, "bc": 139, "abc": 121}
    final, moves = _search(aic, direction="forward")
    assert moves == [("add", "b"), ("add", "a")] and final == ["b", "a"]


def test_an_aliased_term_is_removed_first_without_comparison_last_one_first():
    # b and c are exact linear combinations of each other: either leaves the rank unchanged.
    def rank(key):
        return len(key - {"c"}) + 1 if {"b", "c"} <= key else len(key) + 1

    aic = {"abc": 86, "ab": 86, "ac": 86, "bc": 150, "a": 50, "b": 124}
    final, moves = _search(aic, rank=rank)
    # R removes c (the last aliased term) before comparing anything; from {a, b}, removing
    # b is then best.
    assert moves == [("remove", "c"), ("remove", "b")] and final == ["a"]


# --------------------------------------------------------------------------------------
# scikit-learn integration
# --------------------------------------------------------------------------------------


# scikit-learn's common checks of StepwiseLogisticRegression: tests/test_common.py.


def test_string_labels_need_pos_label_and_keep_the_effect_direction():
    X, y = _cohort(4)
    labels = np.where(y == 1, "N+", "N0")  # sorts as ['N+', 'N0']: N+ is classes_[0]
    with pytest.raises(ValueError, match=r"\['N\+', 'N0'\].*pos_label"):
        StepwiseLogisticRegression().fit(X, labels)
    numeric = StepwiseLogisticRegression().fit(X, y)
    text = StepwiseLogisticRegression(pos_label="N+").fit(X, labels)
    assert text.classes_.tolist() == ["N+", "N0"] and text.pos_label_ == "N+"
    # N+ is the modelled event: the same coefficients and odds ratios as with 0/1 labels.
    np.testing.assert_allclose(text.coef_, numeric.coef_, rtol=1e-6)
    np.testing.assert_allclose(text.summary_["odds_ratio"], numeric.summary_["odds_ratio"])
    assert text.summary_.loc["x1", "odds_ratio"] > 1  # the true effect of x1 is positive
    assert text.selected_features_ == numeric.selected_features_
    proba = text.predict_proba(X)
    np.testing.assert_allclose(proba[:, 0], numeric.predict_proba(X)[:, 1])  # column of N+
    np.testing.assert_array_equal(text.predict(X), np.where(numeric.predict(X) == 1, "N+", "N0"))
    # decision_function keeps scikit-learn's convention (log odds of classes_[1] = "N0").
    np.testing.assert_allclose(text.decision_function(X), -numeric.decision_function(X))
    with pytest.raises(ValueError, match="pos_label='N1' is not one of the labels"):
        StepwiseLogisticRegression(pos_label="N1").fit(X, labels)


def test_numpy_input_and_feature_names():
    X, y = _cohort(4)
    frame = StepwiseLogisticRegression().fit(X, y)
    assert list(frame.feature_names_in_) == list(X.columns) and frame.n_features_in_ == 7
    numeric = X.drop(columns=["grade", "site"])
    array = StepwiseLogisticRegression().fit(numeric.to_numpy(), y)
    assert not hasattr(array, "feature_names_in_")
    assert array.selected_features_ == ["x0", "x2"]  # x1 and x2 by position
    object_array = StepwiseLogisticRegression().fit(X.to_numpy(dtype=object), y)
    assert object_array.selected_columns_ == ["x0", "x2_G2", "x2_G3", "x3"]


def test_clone_grid_search_and_pipeline():
    X, y = _cohort(0, n=300)
    numeric = X.drop(columns=["grade", "site"])
    model = StepwiseLogisticRegression(criterion="bic", max_vif=5.0)
    cloned = clone(model)
    assert cloned.get_params() == model.get_params() and not hasattr(cloned, "coef_")
    pipe = make_pipeline(StandardScaler(), StepwiseLogisticRegression()).set_output(
        transform="pandas"
    )
    search = GridSearchCV(
        pipe,
        {"stepwiselogisticregression__criterion": ["aic", "bic"]},
        cv=StratifiedKFold(3, shuffle=True, random_state=0),
        scoring="roc_auc",
    ).fit(numeric, y)
    assert search.best_params_["stepwiselogisticregression__criterion"] in ("aic", "bic")
    assert search.best_score_ > 0.7
    best = search.best_estimator_[-1]
    assert set(best.selected_features_) >= {"x1", "x2"}


def test_pickle_round_trip(tmp_path):
    X, y = _cohort(4)
    model = StepwiseLogisticRegression(direction="both").fit(X, y)
    path = tmp_path / "stepwise.pkl"
    path.write_bytes(pickle.dumps(model))
    loaded = pickle.loads(path.read_bytes())
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    pd.testing.assert_frame_equal(loaded.steps_, model.steps_)
    pd.testing.assert_frame_equal(loaded.summary_, model.summary_)
    assert loaded.result_.params.equals(model.result_.params)


def test_verbose_prints_the_path(capsys):
    X, y = _cohort(4)
    StepwiseLogisticRegression(verbose=2).fit(X, y)
    out = capsys.readouterr().out
    assert out.startswith("Start: criterion=")
    assert "Step 1: remove " in out and "<none>" in out and "- noise" in out
    StepwiseLogisticRegression().fit(X, y)
    assert capsys.readouterr().out == ""


def test_bool_and_category_columns_together_and_missing_values_named():
    # A clinic's table: a numeric size, a bool ER flag and a pandas category grade.
    rng = np.random.default_rng(0)
    n = 300
    X = pd.DataFrame(
        {
            "size_cm": rng.normal(2.0, 1.0, n),
            "ER": rng.random(n) < 0.5,
            "grade": pd.Categorical(rng.choice(["G1", "G2", "G3"], n)),
        }
    )
    lp = 0.55 * (X["size_cm"] - 2) + 0.8 * X["ER"]
    y = np.where(rng.random(n) < 1 / (1 + np.exp(-lp)), "N+", "N0")
    model = StepwiseLogisticRegression(pos_label="N+").fit(X, y)
    assert {"size_cm", "ER"} <= set(model.selected_features_)
    assert model.summary_.loc["size_cm", "odds_ratio"] > 1
    assert model.summary_.loc["ER_True", "odds_ratio"] > 1
    assert model.predict_proba(X).shape == (n, 2)
    holes = X.copy()
    holes.loc[[3, 17], "size_cm"] = np.nan
    with pytest.raises(ValueError, match=r"'size_cm' has 2 missing value\(s\).*row\(s\) 3, 17"):
        StepwiseLogisticRegression(pos_label="N+").fit(holes, y)
    holes.loc[[3, 17], "size_cm"] = np.inf
    with pytest.raises(ValueError, match=r"'size_cm' has 2 infinite.*row\(s\) 3, 17"):
        StepwiseLogisticRegression(pos_label="N+").fit(holes, y)
