import pickle

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.text import Annotation  # noqa: E402
from numpy.testing import assert_allclose, assert_array_equal  # noqa: E402
from scipy.special import expit  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.frozen import FrozenEstimator  # noqa: E402
from sklearn.linear_model import LogisticRegression, SGDClassifier  # noqa: E402
from sklearn.model_selection import cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import (  # noqa: E402
    MinMaxScaler,
    PolynomialFeatures,
    RobustScaler,
    StandardScaler,
)

from sklearn_alnm.clinical._nomogram import Nomogram, _nice_ticks  # noqa: E402
from sklearn_alnm.utils import CohortInputError  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _cohort(n=300, seed=0):
    """Size (+), age (-), a 3-level grade, ER and a DL score; y from a known logistic model."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "age": rng.normal(52, 10, n).round(),
            "tumor_size_mm": rng.uniform(5, 50, n),
            "grade": pd.Categorical(
                rng.choice(["G1", "G2", "G3"], n), categories=["G1", "G2", "G3"]
            ),
            "ER": rng.choice(["positive", "negative"], n),
            "dl_score": rng.uniform(0, 1, n),
        }
    )
    lp = (
        -3.0
        - 0.08 * (X["age"] - 52)
        + 0.05 * X["tumor_size_mm"]
        + 0.3 * (X["grade"] == "G2")
        + 0.9 * (X["grade"] == "G3")
        + 0.6 * (X["ER"] == "negative")
        + 3.0 * X["dl_score"]
    )
    y = (rng.random(n) < expit(lp)).astype(int)
    return X, y


@pytest.fixture(scope="module")
def cohort():
    return _cohort()


@pytest.fixture(scope="module")
def fitted(cohort):
    X, y = cohort
    return Nomogram().fit(X, y)


def _numeric(X):
    return X[["age", "tumor_size_mm", "dl_score"]]


# --------------------------------------------------------------------------- point arithmetic
def test_total_points_map_back_to_the_model_probability(cohort, fitted):
    X, _ = cohort
    rng = np.random.default_rng(5)
    patients = X.iloc[rng.choice(len(X), 40, replace=False)]
    total = fitted.total_points(patients)
    assert total.shape == (40,)
    assert_allclose(
        fitted.points_to_probability(total), fitted.predict_proba(patients)[:, 1], atol=1e-9
    )
    assert_allclose(fitted.variable_points(patients).sum(axis=1), total, atol=1e-9)
    assert_allclose(fitted.probability_to_points(fitted.points_to_probability(total)), total)
    assert isinstance(fitted.points_to_probability(50.0), float)
    # The linear predictor implied by the points is the model's decision function.
    lp = total / fitted.points_per_unit_ + fitted.lp_at_zero_
    assert_allclose(lp, fitted.decision_function(patients), atol=1e-9)


def test_default_model_is_unpenalised_logistic_regression(cohort, fitted):
    X, y = cohort
    assert isinstance(fitted.estimator_, LogisticRegression)
    design = pd.get_dummies(X, columns=["grade", "ER"], drop_first=True, dtype=float)
    reference = LogisticRegression(C=np.inf, solver="newton-cholesky", max_iter=1000).fit(design, y)
    coef = pd.Series(reference.coef_[0], index=design.columns)
    assert_allclose(fitted.raw_coef_[coef.index], coef, rtol=1e-6)
    assert fitted.raw_intercept_ == pytest.approx(reference.intercept_[0], rel=1e-6)
    assert_array_equal(fitted.classes_, [0, 1])
    assert set(fitted.predict(X)) <= {0, 1}


def test_widest_variable_spans_exactly_the_points(cohort):
    X, y = cohort
    nomogram = Nomogram(points=80).fit(X, y)
    beta = nomogram.raw_coef_
    spans = {
        c: abs(beta[c]) * (X[c].max() - X[c].min()) for c in ["age", "tumor_size_mm", "dl_score"]
    }
    spans["grade"] = max(0, beta["grade_G2"], beta["grade_G3"]) - min(
        0, beta["grade_G2"], beta["grade_G3"]
    )
    spans["ER"] = abs(beta["ER_positive"])
    widest = max(spans, key=spans.get)
    assert nomogram.variable_points_[widest] == pytest.approx(80.0, abs=1e-12)
    assert nomogram.variable_points_.max() == pytest.approx(80.0, abs=1e-12)
    # The patients at the two ends of the widest axis get 0 and 80 points on it.
    ends = X.loc[[X[widest].idxmin(), X[widest].idxmax()]]
    assert_allclose(sorted(nomogram.variable_points(ends)[widest]), [0.0, 80.0], atol=1e-9)
    # Every other variable is proportional to its contribution range.
    for c, span in spans.items():
        assert nomogram.variable_points_[c] == pytest.approx(80.0 * span / spans[widest])


def test_ticks_are_linear_in_the_value_and_inside_the_range(cohort, fitted):
    X, _ = cohort
    table = fitted.points_table()
    assert list(table.columns) == ["variable", "value", "points"]
    assert list(table["variable"].unique()) == fitted.variables_
    scale = fitted.points_per_unit_
    for c in ["age", "tumor_size_mm", "dl_score"]:
        rows = table[table["variable"] == c]
        values = rows["value"].astype(float).to_numpy()
        assert len(values) >= 2
        assert values.min() >= X[c].min() and values.max() <= X[c].max()
        beta = fitted.raw_coef_[c]
        low = min(beta * X[c].min(), beta * X[c].max())
        assert_allclose(rows["points"], scale * (beta * values - low))
        # The tabulated points are those of patients with these values.
        patients = pd.concat([X.iloc[[0]]] * len(values), ignore_index=True)
        patients[c] = values
        assert_allclose(fitted.variable_points(patients)[c], rows["points"], atol=1e-9)


def test_negative_coefficient_reverses_the_axis(cohort, fitted):
    X, _ = cohort
    assert fitted.raw_coef_["age"] < 0  # older patients: lower risk in the simulated cohort
    rows = fitted.points_table().query("variable == 'age'")
    assert np.all(np.diff(rows["points"].to_numpy()) < 0)  # values ascend, points descend
    ends = X.loc[[X["age"].idxmin(), X["age"].idxmax()]]
    youngest, oldest = fitted.variable_points(ends)["age"]
    assert oldest == pytest.approx(0.0, abs=1e-9)
    assert youngest == pytest.approx(fitted.variable_points_["age"])


def test_categorical_levels_are_labelled_ticks(cohort, fitted):
    X, y = cohort
    assert fitted.categories_ == {"grade": ["G1", "G2", "G3"], "ER": ["negative", "positive"]}
    assert fitted.model_inputs_ == [
        "age",
        "tumor_size_mm",
        "grade_G2",
        "grade_G3",
        "ER_positive",
        "dl_score",
    ]
    grade = fitted.points_table().query("variable == 'grade'")
    assert grade["value"].tolist() == ["G1", "G2", "G3"]
    contributions = np.array([0.0, fitted.raw_coef_["grade_G2"], fitted.raw_coef_["grade_G3"]])
    expected = fitted.points_per_unit_ * (contributions - contributions.min())
    assert_allclose(grade["points"], expected)
    assert grade["points"].min() == pytest.approx(0.0, abs=1e-12)
    # A numeric code named in ``categorical`` and a bool column become level axes too.
    X2 = X.assign(grade=X["grade"].cat.codes + 1, lvi=np.arange(len(X)) % 3 == 0)
    nomogram = Nomogram(categorical=["grade"]).fit(X2, y)
    assert nomogram.categories_["grade"] == [1, 2, 3]
    assert nomogram.categories_["lvi"] == [False, True]
    assert {"grade_2", "grade_3", "lvi_True"} <= set(nomogram.model_inputs_)
    assert_allclose(
        nomogram.points_to_probability(nomogram.total_points(X2)),
        nomogram.predict_proba(X2)[:, 1],
        atol=1e-9,
    )


def test_unknown_level_and_missing_value_name_the_cell(cohort, fitted):
    X, _ = cohort
    bad = X.head(5).copy()
    bad["ER"] = bad["ER"].astype(object)
    bad.loc[bad.index[2], "ER"] = "unknown"
    with pytest.raises(CohortInputError, match="row 2, column 'ER'.*'unknown' was not seen"):
        fitted.predict_proba(bad)
    missing = X.head(5).copy()
    missing.loc[missing.index[3], "age"] = np.nan
    with pytest.raises(CohortInputError, match="row 3, column 'age': missing value"):
        fitted.total_points(missing)


# --------------------------------------------------------------------------- wrapped models
def test_wraps_a_fitted_logistic_regression_without_refitting(cohort):
    X, y = cohort
    lr = LogisticRegression(C=0.5).fit(_numeric(X), y)
    coef_before = lr.coef_.copy()
    nomogram = Nomogram(lr).fit(X)  # y is not needed; unused columns are ignored
    assert nomogram.estimator_ is lr
    assert_array_equal(lr.coef_, coef_before)
    assert nomogram.variables_ == ["age", "tumor_size_mm", "dl_score"]
    assert_allclose(nomogram.predict_proba(X), lr.predict_proba(_numeric(X)), rtol=0, atol=1e-12)
    assert_array_equal(nomogram.predict(X), lr.predict(_numeric(X)))
    assert_allclose(nomogram.decision_function(X), lr.decision_function(_numeric(X)), atol=1e-12)
    assert_allclose(nomogram.raw_coef_, lr.coef_[0])
    assert_allclose(
        nomogram.points_to_probability(nomogram.total_points(X)),
        lr.predict_proba(_numeric(X))[:, 1],
    )


def test_wraps_a_model_fitted_on_get_dummies_or_on_an_array(cohort):
    X, y = cohort
    X = X.assign(lvi=np.arange(len(X)) % 4 == 0)
    design = pd.get_dummies(X, drop_first=True, dtype=float)  # leaves the bool column as is
    lr = LogisticRegression(max_iter=1000).fit(design, y)
    # A cohort table with identifiers and image arrays beside the model's variables.
    cohort_table = X.assign(
        patient_id=[f"P{i:03d}" for i in range(len(X))],
        image=[np.zeros((4, 4))] * len(X),
    )
    nomogram = Nomogram(lr).fit(cohort_table)
    assert nomogram.model_inputs_ == list(design.columns)
    assert nomogram.variables_ == ["age", "tumor_size_mm", "grade", "ER", "dl_score", "lvi"]
    assert nomogram.categories_["lvi"] == [False, True]
    assert_allclose(
        nomogram.predict_proba(cohort_table), lr.predict_proba(design), rtol=0, atol=1e-12
    )
    assert nomogram.points_table().query("variable == 'lvi'")["value"].tolist() == [False, True]
    with pytest.raises(ValueError, match="'image' holds non-scalar cells"):
        Nomogram().fit(cohort_table.drop(columns="patient_id"), y)

    array_model = LogisticRegression().fit(_numeric(X).to_numpy(), y)
    nomogram = Nomogram(array_model).fit(_numeric(X).to_numpy())
    assert nomogram.variables_ == ["x0", "x1", "x2"]
    assert_allclose(
        nomogram.predict_proba(_numeric(X).to_numpy()),
        array_model.predict_proba(_numeric(X).to_numpy()),
        rtol=0,
        atol=1e-12,
    )
    with pytest.raises(ValueError, match="takes 3 inputs, but X encodes to 7"):
        Nomogram(array_model).fit(X)


@pytest.mark.parametrize("scaler", [StandardScaler(), MinMaxScaler(), RobustScaler()])
def test_scaled_pipeline_coefficients_are_converted_to_raw_units(cohort, scaler):
    X, y = cohort
    pipe = make_pipeline(scaler, LogisticRegression(C=0.3)).fit(_numeric(X), y)
    nomogram = Nomogram(pipe).fit(_numeric(X))
    assert_allclose(nomogram.predict_proba(X), pipe.predict_proba(_numeric(X)), rtol=0, atol=1e-12)
    raw = _numeric(X).to_numpy() @ nomogram.raw_coef_.to_numpy() + nomogram.raw_intercept_
    assert_allclose(raw, pipe.decision_function(_numeric(X)), atol=1e-9)
    if isinstance(scaler, StandardScaler):
        assert_allclose(nomogram.raw_coef_, pipe[-1].coef_[0] / pipe[0].scale_)
    assert_allclose(
        nomogram.points_to_probability(nomogram.total_points(X)),
        pipe.predict_proba(_numeric(X))[:, 1],
        atol=1e-9,
    )


def test_unfitted_pipeline_is_cloned_and_fitted_on_the_encoded_variables(cohort):
    X, y = cohort
    pipe = make_pipeline(StandardScaler(), LogisticRegression())
    nomogram = Nomogram(pipe).fit(X, y)
    assert nomogram.estimator_ is not pipe
    assert not hasattr(pipe[-1], "coef_")
    design = pd.get_dummies(X, drop_first=True, dtype=float)[nomogram.model_inputs_]
    reference = clone(pipe).fit(design, y)
    assert_allclose(nomogram.predict_proba(X), reference.predict_proba(design), atol=1e-12)
    assert_allclose(
        nomogram.points_to_probability(nomogram.total_points(X)),
        nomogram.predict_proba(X)[:, 1],
        atol=1e-9,
    )


def test_sgd_log_loss_is_accepted(cohort):
    X, y = cohort
    model = make_pipeline(StandardScaler(), SGDClassifier(loss="log_loss", random_state=0))
    nomogram = Nomogram(model).fit(X, y)
    assert_allclose(
        nomogram.points_to_probability(nomogram.total_points(X)),
        nomogram.predict_proba(X)[:, 1],
        atol=1e-9,
    )


def test_frozen_model_survives_clone_and_cross_validation(cohort):
    X, y = cohort
    lr = LogisticRegression().fit(_numeric(X), y)
    nomogram = clone(Nomogram(FrozenEstimator(lr))).fit(X)
    assert_allclose(nomogram.predict_proba(X), lr.predict_proba(_numeric(X)), atol=1e-12)
    scores = cross_val_score(Nomogram(), X, y, cv=3, scoring="roc_auc")
    assert scores.shape == (3,) and np.all(scores > 0.6)


# --------------------------------------------------------------------------- feature_ranges
def test_feature_ranges_override_the_training_range(cohort, fitted):
    X, y = cohort
    nomogram = Nomogram(feature_ranges={"dl_score": (0, 3), "age": (10, 100)}).fit(X, y)
    assert nomogram.ranges_["dl_score"] == (0.0, 3.0)
    assert nomogram.ranges_["age"] == (10.0, 100.0)
    assert nomogram.ranges_["tumor_size_mm"] == (X["tumor_size_mm"].min(), X["tumor_size_mm"].max())
    # Same model, new scale: dl_score now spans 0..3, the widest axis, and the axes whose range
    # did not change shrink by the same factor.
    assert_allclose(nomogram.raw_coef_, fitted.raw_coef_)
    beta = nomogram.raw_coef_
    assert nomogram.variable_points_["dl_score"] == pytest.approx(100.0)
    assert nomogram.points_per_unit_ == pytest.approx(100.0 / (3.0 * beta["dl_score"]))
    factor = nomogram.points_per_unit_ / fitted.points_per_unit_
    assert factor < 0.9
    for c in ["tumor_size_mm", "grade", "ER"]:
        assert nomogram.variable_points_[c] == pytest.approx(fitted.variable_points_[c] * factor)
    ticks = nomogram.points_table().query("variable == 'dl_score'")["value"].astype(float)
    assert ticks.min() == 0 and ticks.max() == 3
    age = nomogram.points_table().query("variable == 'age'")["value"].astype(float)
    assert age.min() >= 10 and age.max() <= 100 and age.max() > X["age"].max()
    # The oldest possible patient (100) gets 0 age points; a patient of 10 gets the most.
    assert nomogram.variable_points_["age"] == pytest.approx(
        -nomogram.raw_coef_["age"] * 90 * nomogram.points_per_unit_
    )
    assert_allclose(
        nomogram.points_to_probability(nomogram.total_points(X)),
        nomogram.predict_proba(X)[:, 1],
        atol=1e-9,
    )


@pytest.mark.parametrize(
    "ranges, message",
    [
        ({"ER": (0, 1)}, "categorical variable 'ER'"),
        ({"weight": (0, 1)}, "'weight', which is not a variable"),
        ({"age": (60, 30)}, "min < max"),
        ({"age": "old"}, "pair"),
    ],
)
def test_bad_feature_ranges(cohort, ranges, message):
    X, y = cohort
    with pytest.raises(ValueError, match=message):
        Nomogram(feature_ranges=ranges).fit(X, y)


# --------------------------------------------------------------------------- errors
def test_non_linear_or_non_logistic_models_are_refused(cohort):
    X, y = cohort
    with pytest.raises(TypeError, match="RandomForestClassifier has no coef_"):
        Nomogram(RandomForestClassifier(n_estimators=5, random_state=0)).fit(X, y)
    with pytest.raises(TypeError, match="not the logistic function of its coefficients"):
        Nomogram(
            make_pipeline(StandardScaler(), SGDClassifier(loss="modified_huber", random_state=0))
        ).fit(_numeric(X), y)
    poly = make_pipeline(PolynomialFeatures(2), LogisticRegression())
    with pytest.raises(TypeError, match="step 'polynomialfeatures' \\(PolynomialFeatures\\)"):
        Nomogram(poly).fit(X, y)
    with pytest.raises(TypeError, match="clip=True"):
        Nomogram(make_pipeline(MinMaxScaler(clip=True), LogisticRegression())).fit(X, y)
    with pytest.raises(ValueError, match="coefficient of the model is zero"):
        Nomogram(LogisticRegression(C=1e-12)).fit(_numeric(X) * 0 + 1, y)


def test_multiclass_targets_and_models_are_refused(cohort):
    X, y = cohort
    y3 = np.asarray(y) + (X["dl_score"].to_numpy() > 0.8)
    with pytest.raises(ValueError, match="Only binary classification is supported.*3 classes"):
        Nomogram().fit(X, y3)
    model = LogisticRegression(max_iter=500).fit(_numeric(X), y3)
    with pytest.raises(ValueError, match="binary outcome"):
        Nomogram(model).fit(X)
    with pytest.raises(ValueError, match="requires y to be passed"):
        Nomogram().fit(X)


def test_missing_column_and_mismatched_model_inputs(cohort, fitted):
    X, y = cohort
    with pytest.raises(ValueError, match=r"lacks the nomogram's variables \['dl_score'\]"):
        fitted.predict_proba(X.drop(columns="dl_score"))
    with pytest.raises(ValueError, match=r"Columns \['stage'\] named in categorical"):
        Nomogram(categorical=["stage"]).fit(X, y)
    lr = LogisticRegression().fit(_numeric(X).rename(columns={"age": "age_years"}), y)
    with pytest.raises(ValueError, match=r"uses inputs \['age_years'\]"):
        Nomogram(lr).fit(X)
    # Extra columns at prediction time are ignored; columns are found by name.
    shuffled = X.assign(patient_id=[f"P{i}" for i in range(len(X))])[::-1]
    assert_allclose(fitted.predict_proba(shuffled), fitted.predict_proba(X)[::-1], atol=1e-12)


def test_clone_and_pickle(cohort, fitted):
    X, _ = cohort
    params = {"points": 50, "feature_ranges": {"age": (20, 90)}, "categorical": ["ER"]}
    cloned = clone(Nomogram(**params, n_ticks=4))
    assert cloned.get_params()["feature_ranges"] == {"age": (20, 90)}
    assert cloned.get_params()["n_ticks"] == 4
    assert not hasattr(cloned, "estimator_")
    restored = pickle.loads(pickle.dumps(fitted))
    assert_array_equal(restored.predict_proba(X), fitted.predict_proba(X))
    assert_array_equal(restored.total_points(X), fitted.total_points(X))
    pd.testing.assert_frame_equal(restored.points_table(), fitted.points_table())


def test_nice_ticks():
    assert _nice_ticks(0, 100, 11) == ([float(v) for v in range(0, 101, 10)], 10.0)
    ticks, step = _nice_ticks(0.0031, 0.998, 6)
    assert ticks == [0.2, 0.4, 0.6, 0.8] and step == 0.2
    ticks, step = _nice_ticks(5.2, 5.9, 3)
    assert len(ticks) >= 2 and all(5.2 <= t <= 5.9 for t in ticks)


# --------------------------------------------------------------------------- figure
def _texts(fig):
    ax = fig.axes[0]
    return [t for t in ax.texts if t.get_visible()] + [ax.title]


def test_plot_draws_every_axis_aligned_with_the_points(cohort, fitted, tmp_path):
    labels = {"tumor_size_mm": "Tumour size (mm)", "dl_score": "DL signature"}
    fig = fitted.plot(labels=labels, title="ALNM nomogram")
    assert isinstance(fig, Figure)
    strings = [t.get_text() for t in _texts(fig)]
    for name in [
        "ALNM nomogram",
        "Points",
        "age",
        "Tumour size (mm)",
        "grade",
        "ER",
        "DL signature",
        "Total points",
        "Linear predictor",
        "Risk of ALN metastasis",
    ]:
        assert name in strings
    for level in ["G1", "G2", "G3", "negative", "positive"]:
        assert level in strings
    for p in ["0.1", "0.5", "0.9"]:
        assert p in strings

    annotations = [t for t in fig.axes[0].texts if isinstance(t, Annotation)]
    rows = {t.get_text(): t.xy[1] for t in annotations if t.get_ha() == "right"}
    order = [rows[n] for n in ["Points", "age", "Tumour size (mm)", "grade", "Total points"]]
    assert order == sorted(order, reverse=True)

    def ticks_of(row):
        return {
            t.get_text(): t.xy[0]
            for t in annotations
            if t.xy[1] == rows[row] and t.get_ha() == "center"
        }

    # Labels sit where a ruler reads them: points on top, levels at their points.
    assert ticks_of("Points")["100"] == pytest.approx(100.0)
    grade = fitted.points_table().query("variable == 'grade'")
    for level, pts in zip(grade["value"], grade["points"], strict=True):
        assert ticks_of("grade")[level] == pytest.approx(pts)
    scale = 100.0 / fitted.max_total_points_
    risk = ticks_of("Risk of ALN metastasis")
    assert risk["0.5"] == pytest.approx(fitted.probability_to_points(0.5) * scale)
    for text, x in ticks_of("Total points").items():
        assert x == pytest.approx(float(text) * scale)

    path = tmp_path / "nomogram.png"
    fig.savefig(path, dpi=80)
    assert path.stat().st_size > 10_000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_options_and_given_axes(fitted, tmp_path):
    fig, ax = plt.subplots(figsize=(9, 7))
    out = fitted.plot(
        ax=ax,
        show_linear_predictor=False,
        title=None,
        outcome_label="Probability of N+",
        probability_ticks=[0.25, 0.5, 0.75],
    )
    assert out is fig
    strings = [t.get_text() for t in ax.texts]
    assert "Linear predictor" not in strings
    assert "Probability of N+" in strings
    assert {"0.25", "0.5", "0.75"} <= set(strings) and "0.1" not in strings
    fig.savefig(tmp_path / "given_axes.png")


def test_crowded_tick_labels_are_staggered_not_overlapping(fitted):
    fig = fitted.plot(figsize=(4.5, 6))  # far too narrow for every label side by side
    fig.canvas.draw()
    ax = fig.axes[0]
    rows = {}
    for text in ax.texts:
        if text.get_ha() == "center":
            rows.setdefault(text.xy[1], []).append(text)
    assert len(rows) == 2 + len(fitted.variables_) + 2
    moved = 0
    for y, texts in rows.items():
        shown = [t for t in texts if t.get_visible()]
        assert shown, "every axis keeps at least one label"
        line = ax.transData.transform((0.0, y))[1]
        for t in shown:  # above the axis line, or moved below it
            box = t.get_window_extent()
            assert box.y0 > line if t.get_va() == "bottom" else box.y1 < line
        for side in ("bottom", "top"):
            boxes = sorted(
                (t.get_window_extent() for t in shown if t.get_va() == side), key=lambda b: b.x0
            )
            for left, right in zip(boxes, boxes[1:]):
                assert left.x1 <= right.x0
        moved += sum(t.get_va() == "top" for t in shown)
    assert moved > 0


# scikit-learn's common checks of Nomogram: tests/test_common.py.


# ---------------------------------------------------------------- positive class, stepwise
def test_string_labels_need_pos_label_and_read_the_risk_of_it():
    X, y = _cohort()
    labels = np.where(y == 1, "N+", "N0")  # sorted: ['N+', 'N0'], so N+ is classes_[0]
    with pytest.raises(ValueError, match=r"\['N\+', 'N0'\].*pos_label"):
        Nomogram().fit(X, labels)
    numeric = Nomogram().fit(X, y)
    text = Nomogram(pos_label="N+").fit(X, labels)
    assert text.pos_label_ == "N+" and text.classes_.tolist() == ["N+", "N0"]
    # Same risk model as with 0/1 labels: coefficients keep their direction.
    assert_allclose(text.raw_coef_, numeric.raw_coef_, rtol=1e-6, atol=1e-9)
    assert text.raw_coef_["tumor_size_mm"] > 0 and text.raw_coef_["age"] < 0
    assert_allclose(text.variable_points_, numeric.variable_points_, rtol=1e-6)
    total = text.total_points(X.head(20))
    # The risk axis is the probability of N+ (column 0 of predict_proba).
    assert_allclose(text.points_to_probability(total), text.predict_proba(X.head(20))[:, 0])
    assert_allclose(text.points_to_probability(total), numeric.predict_proba(X.head(20))[:, 1])
    fig = text.plot()
    assert any("Risk of ALN metastasis (N+)" in t.get_text() for t in fig.findobj(plt.Text))


def test_fitted_stepwise_model_is_drawn_on_its_selected_terms():
    from sklearn_alnm.clinical import StepwiseLogisticRegression

    X, y = _cohort(600, seed=3)
    X = X.assign(noise=np.random.default_rng(9).normal(size=len(X)))
    labels = np.where(y == 1, "N+", "N0")
    stepwise = StepwiseLogisticRegression(pos_label="N+").fit(X, labels)
    assert "noise" not in stepwise.selected_features_
    nomogram = Nomogram(stepwise, pos_label="N+").fit(X)
    assert nomogram.estimator_ is stepwise
    assert nomogram.variables_ == stepwise.selected_features_
    position = stepwise.classes_.tolist().index("N+")
    expected = stepwise.predict_proba(X)[:, position]
    assert_allclose(nomogram.points_to_probability(nomogram.total_points(X)), expected)
    assert_allclose(nomogram.predict_proba(X), stepwise.predict_proba(X))
    # An unfitted stepwise model is fitted on the raw columns, then drawn the same way.
    refit = Nomogram(StepwiseLogisticRegression(pos_label="N+"), pos_label="N+").fit(X, labels)
    assert refit.variables_ == stepwise.selected_features_
    assert_allclose(refit.raw_coef_, nomogram.raw_coef_)
