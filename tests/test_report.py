"""Tests of sklearn_alnm.report.StudyReport: tables against sklearn_alnm.metrics, figures, HTML."""

import html
import re
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from statsmodels.stats.contingency_tables import mcnemar

from sklearn_alnm.metrics import (
    binary_metrics,
    calibration_metrics,
    cohen_kappa,
    delong_test,
    format_performance_table,
    integrated_discrimination_improvement,
    net_reclassification_improvement,
    performance_table,
    roc_curve_ci,
    smooth_calibration_curve,
    youden_threshold,
)
from sklearn_alnm.report import StudyReport

# --------------------------------------------------------------------------------------------
# Fixtures and helper estimators
# --------------------------------------------------------------------------------------------


class ColumnProba(ClassifierMixin, BaseEstimator):
    """Classifier whose probability of ``classes_[1]`` is the first column of X (hand checks)."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        p = np.asarray(X, dtype=float)[:, 0]
        return np.column_stack([1.0 - p, p])


class CountingModel(ClassifierMixin, BaseEstimator):
    """Wraps a fitted classifier and counts predict_proba calls."""

    def __init__(self, model):
        self.model = model
        self.calls = 0

    @property
    def classes_(self):
        return self.model.classes_

    def predict_proba(self, X):
        self.calls += 1
        return self.model.predict_proba(X)


class FakeNomogram(LogisticRegression):
    """Duck-typed nomogram: a classifier with ``plot()`` and ``points_table``."""

    def points_table(self):
        return pd.DataFrame({"variable": ["x0", "x0"], "value": [0, 1], "points": [0.0, 100.0]})

    def plot(self, ax=None):
        fig = Figure(figsize=(4, 2))
        axes = fig.add_subplot()
        axes.plot([0, 100], [0, 0])
        axes.set_title("Fake nomogram")
        return fig


class AxRequiredNomogram(FakeNomogram):
    def plot(self, ax):
        ax.plot([0, 1], [1, 0], label="drawn")


class NoneNomogram(FakeNomogram):
    def plot(self, ax=None):
        return None


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(
        n_samples=300, n_features=5, n_informative=3, flip_y=0.15, random_state=0
    )
    cohorts = {
        "training": (X[:150], y[:150]),
        "validation": (X[150:230], y[150:230]),
        "test": (X[230:], y[230:]),
    }
    models = {
        "logistic": LogisticRegression().fit(X[:150], y[:150]),
        "shrunk": LogisticRegression(C=0.005).fit(X[:150], y[:150]),
    }
    rng = np.random.default_rng(0)
    y_test = y[230:]
    calls_a = np.where(rng.random(70) < 0.8, y_test, 1 - y_test)
    calls_b = np.where(rng.random(70) < 0.7, y_test, 1 - y_test)
    readers = {
        "Reader A": {"test": calls_a},
        "Reader B": {"test": calls_b, "validation": y[150:230]},
    }
    return models, cohorts, readers


@pytest.fixture(scope="module")
def report(data):
    models, cohorts, readers = data
    return StudyReport(models, cohorts, readers=readers, title="Test <report>")


def _proba(model, X):
    return model.predict_proba(X)[:, 1]


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------


def test_predict_proba_runs_once_per_model_and_cohort(data, tmp_path):
    models, cohorts, readers = data
    counting = {name: CountingModel(model) for name, model in models.items()}
    report = StudyReport(counting, cohorts, readers=readers)
    report.metrics_table()
    report.delong_table()
    report.readers_table()
    report.plot_roc()
    report.plot_calibration()
    for model in counting.values():
        assert model.calls == len(cohorts)
    for name, model in models.items():
        for cohort, (X, _) in cohorts.items():
            np.testing.assert_array_equal(report.probabilities_[name][cohort], _proba(model, X))


def test_metrics_table_equals_performance_table(report, data):
    models, cohorts, _ = data
    table = report.metrics_table()
    assert table.index.names == ["model", "cohort"]
    assert list(table.index) == [(m, c) for m in models for c in cohorts]
    for name, model in models.items():
        expected = performance_table({c: (y, _proba(model, X)) for c, (X, y) in cohorts.items()})
        pd.testing.assert_frame_equal(table.xs(name, level="model"), expected)


def test_thresholds_are_chosen_on_first_cohort_and_applied_to_others(report, data):
    models, cohorts, _ = data
    X_train, y_train = cohorts["training"]
    X_test, y_test = cohorts["test"]
    table = report.metrics_table()
    for name, model in models.items():
        t = youden_threshold(y_train, _proba(model, X_train))
        assert report.thresholds_[name] == t
        assert (table.loc[name, "threshold"] == t).all()
        test_metrics = binary_metrics(y_test, _proba(model, X_test), threshold=t)
        assert table.loc[(name, "test"), "sensitivity"] == test_metrics["sensitivity"]
        assert table.loc[(name, "test"), "specificity"] == test_metrics["specificity"]
    # The test cohort's own Youden threshold differs: the table did not re-optimise it.
    assert (
        youden_threshold(y_test, _proba(models["logistic"], X_test))
        != report.thresholds_["logistic"]
    )
    # Putting another cohort first moves the threshold choice there.
    reordered = {"test": cohorts["test"], "training": cohorts["training"]}
    other = StudyReport(models, reordered)
    assert other.first_cohort == "test"
    assert other.thresholds_["logistic"] == youden_threshold(
        y_test, _proba(models["logistic"], X_test)
    )


def test_given_thresholds(data):
    models, cohorts, _ = data
    fixed = StudyReport(models, cohorts, threshold=0.3)
    assert fixed.thresholds_ == {"logistic": 0.3, "shrunk": 0.3}
    model = models["shrunk"]
    expected = performance_table(
        {c: (y, _proba(model, X)) for c, (X, y) in cohorts.items()}, threshold=0.3
    )
    pd.testing.assert_frame_equal(fixed.metrics_table().xs("shrunk", level="model"), expected)

    mixed = StudyReport(
        models, cohorts, threshold={"logistic": 0.4, "shrunk": "youden-on-first-cohort"}
    )
    X_train, y_train = cohorts["training"]
    assert mixed.thresholds_["logistic"] == 0.4
    assert mixed.thresholds_["shrunk"] == youden_threshold(y_train, _proba(model, X_train))


def test_formatted_metrics_table(report):
    formatted = report.metrics_table(formatted=True, decimals=2)
    numeric = report.metrics_table()
    assert formatted.index.equals(numeric.index)
    expected = format_performance_table(numeric.xs("shrunk", level="model"), decimals=2)
    pd.testing.assert_frame_equal(formatted.xs("shrunk", level="model"), expected)
    assert formatted.loc[("logistic", "test"), "AUC (95% CI)"] == (
        f"{numeric.loc[('logistic', 'test'), 'auc']:.2f} "
        f"({numeric.loc[('logistic', 'test'), 'auc_low']:.2f}-"
        f"{numeric.loc[('logistic', 'test'), 'auc_high']:.2f})"
    )


def test_confidence_and_n_groups_reach_the_statistics(data):
    models, cohorts, _ = data
    report = StudyReport(models, cohorts, confidence=0.9, n_groups=5)
    model = models["logistic"]
    expected = performance_table(
        {c: (y, _proba(model, X)) for c, (X, y) in cohorts.items()}, confidence=0.9, n_groups=5
    )
    pd.testing.assert_frame_equal(report.metrics_table().xs("logistic", level="model"), expected)
    assert report.metrics_table(formatted=True).columns[1] == "AUC (90% CI)"


def test_delong_table_equals_delong_test(report, data):
    models, cohorts, _ = data
    long = report.delong_table()
    assert long.index.names == ["cohort", "model_1", "model_2"]
    assert len(long) == len(cohorts)
    for cohort, (X, y) in cohorts.items():
        result = delong_test(y, _proba(models["logistic"], X), _proba(models["shrunk"], X))
        row = long.loc[(cohort, "logistic", "shrunk")]
        assert row["statistic"] == result.statistic
        assert row["pvalue"] == result.pvalue
        assert row["auc_1"] == result.auc_1 and row["auc_2"] == result.auc_2
        assert (row["ci_low"], row["ci_high"]) == (result.ci_low, result.ci_high)

    square = report.delong_table(layout="square")
    assert square.index.names == ["cohort", "model"]
    for cohort in cohorts:
        block = square.loc[cohort]
        assert np.isnan(block.loc["shrunk", "shrunk"]) and np.isnan(
            block.loc["logistic", "logistic"]
        )
        assert block.loc["logistic", "shrunk"] == block.loc["shrunk", "logistic"]
        assert block.loc["logistic", "shrunk"] == long.loc[(cohort, "logistic", "shrunk"), "pvalue"]
    with pytest.raises(ValueError, match="layout"):
        report.delong_table(layout="wide")


def test_delong_table_single_model_is_empty(data):
    models, cohorts, _ = data
    single = StudyReport({"logistic": models["logistic"]}, cohorts)
    table = single.delong_table()
    assert table.empty and list(table.columns)[-1] == "pvalue"


def test_readers_table_by_hand():
    # Probability = first column; threshold 0.5. 10 patients, 5 positive.
    y = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.6, 0.4, 0.3, 0.2, 0.1])
    calls = np.array([1, 1, 0, 1, 0, 1, 1, 0, 0, 0])
    X = p[:, None]
    model = ColumnProba().fit(X, y)
    report = StudyReport({"m": model}, {"c": (X, y)}, threshold=0.5, readers={"R": {"c": calls}})
    table = report.readers_table()
    row = table.loc[("c", "R", "m")]
    # Reader: TP=3 (1,2,4), FN=2, TN=3 (8,9,10), FP=2 -> Se 0.6, Sp 0.6.
    assert row["reader_sensitivity"] == 0.6 and row["reader_specificity"] == 0.6
    assert row["reader_accuracy"] == 0.6
    # Model at 0.5: TP=3, FN=2, FP=1, TN=4 -> Se 0.6, Sp 0.8, accuracy 0.7.
    assert row["model_sensitivity"] == 0.6 and row["model_specificity"] == 0.8
    assert row["model_accuracy"] == 0.7
    # Correct: reader [1,1,0,1,0,0,0,1,1,1]; model [1,1,1,0,0,0,1,1,1,1].
    assert (row["both_correct"], row["reader_only_correct"]) == (5, 1)
    assert (row["model_only_correct"], row["both_wrong"]) == (2, 2)
    expected = mcnemar([[5, 1], [2, 2]], exact=True)
    assert row["mcnemar_exact"]
    assert row["mcnemar_pvalue"] == pytest.approx(expected.pvalue)
    # Exact two-sided binomial by hand: 2 * P(Bin(3, 1/2) <= 1) = 2 * 4/8 = 1.
    assert row["mcnemar_pvalue"] == pytest.approx(1.0)
    assert row["mcnemar_statistic"] == 1.0

    forced = report.readers_table(exact=False).loc[("c", "R", "m")]
    assert not forced["mcnemar_exact"]
    # Continuity-corrected chi-square by hand: (|1 - 2| - 1)^2 / 3 = 0.
    assert forced["mcnemar_statistic"] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="exact"):
        report.readers_table(exact="yes")


def test_readers_table_large_discordance_uses_chi_square():
    n = 80
    y = np.tile([1, 0], n // 2)
    # Model always right; reader wrong on the first 30 patients -> b = 0, c = 30.
    p = np.where(y == 1, 0.9, 0.1)
    calls = y.copy()
    calls[:30] = 1 - calls[:30]
    X = p[:, None]
    report = StudyReport({"m": ColumnProba().fit(X, y)}, {"c": (X, y)}, readers={"R": {"c": calls}})
    row = report.readers_table().loc[("c", "R", "m")]
    assert (row["reader_only_correct"], row["model_only_correct"]) == (0, 30)
    assert not row["mcnemar_exact"]
    expected = mcnemar([[50, 0], [30, 0]], exact=False, correction=True)
    assert row["mcnemar_statistic"] == pytest.approx((30 - 1) ** 2 / 30)
    assert row["mcnemar_pvalue"] == pytest.approx(expected.pvalue)


def test_readers_table_rows_only_for_read_cohorts(report):
    table = report.readers_table()
    assert table.index.names == ["cohort", "reader", "model"]
    assert list(table.index) == [
        ("validation", "Reader B", "logistic"),
        ("validation", "Reader B", "shrunk"),
        ("test", "Reader A", "logistic"),
        ("test", "Reader A", "shrunk"),
        ("test", "Reader B", "logistic"),
        ("test", "Reader B", "shrunk"),
    ]
    # Reader B's validation calls are the truth.
    assert table.loc[("validation", "Reader B", "shrunk"), "reader_accuracy"] == 1.0
    thresholds = table.xs("shrunk", level="model")["threshold"]
    assert (thresholds == report.thresholds_["shrunk"]).all()


def test_readers_table_empty_without_readers(data):
    models, cohorts, _ = data
    table = StudyReport(models, cohorts).readers_table()
    assert table.empty and "mcnemar_pvalue" in table.columns


def test_string_labels_and_pos_label(data):
    models, cohorts, _ = data
    X, y = cohorts["training"]
    labels = np.where(y == 1, "N+", "N0")
    model = LogisticRegression().fit(X, labels)  # classes_ = ["N+", "N0"]
    named = {name: (Xc, np.where(yc == 1, "N+", "N0")) for name, (Xc, yc) in cohorts.items()}
    with pytest.raises(ValueError, match=r"StudyReport: .*\['N\+', 'N0'\].*pos_label"):
        StudyReport({"lr": model}, named)  # never "Positive class: N0" by sorting
    report = StudyReport({"lr": model}, named, pos_label="N+")
    assert report.pos_label_ == "N+"
    X_test, y_test = named["test"]
    np.testing.assert_array_equal(
        report.probabilities_["lr"]["test"], model.predict_proba(X_test)[:, 0]
    )
    expected = performance_table(
        {c: (yc, model.predict_proba(Xc)[:, 0]) for c, (Xc, yc) in named.items()},
        pos_label="N+",
    )
    pd.testing.assert_frame_equal(report.metrics_table().xs("lr", level="model"), expected)
    assert report.metrics_table().loc[("lr", "test"), "auc"] > 0.6


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------


def _legend_texts(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_roc_figure(report, data):
    models, cohorts, readers = data
    fig = report.plot_roc()
    assert isinstance(fig, Figure)
    assert len(fig.axes) == len(cohorts)
    table = report.metrics_table()
    for ax, cohort in zip(fig.axes, cohorts):
        assert cohort in ax.get_title()
        assert "specificity" in ax.get_xlabel().lower()
        assert "sensitivity" in ax.get_ylabel().lower()
        n_readers = sum(cohort in calls for calls in readers.values())
        # A curve and an operating point per model, a marker per reader, the diagonal.
        assert len(ax.get_lines()) == 2 * len(models) + n_readers + 1
        texts = _legend_texts(ax)
        assert len(texts) == len(models) + n_readers + 2  # + chance + operating point key
        for name in models:
            row = table.loc[(name, cohort)]
            label = f"{name} AUC {row['auc']:.2f} ({row['auc_low']:.2f}-{row['auc_high']:.2f})"
            assert label in texts
        assert "Chance" in texts
        diagonal = [line for line in ax.get_lines() if line.get_label() == "Chance"][0]
        np.testing.assert_array_equal(diagonal.get_xdata(), [0, 1])
    test_ax = fig.axes[2]
    reader_texts = [t for t in _legend_texts(test_ax) if t.startswith("Reader")]
    assert len(reader_texts) == 2
    calls = readers["Reader A"]["test"]
    expected = binary_metrics(cohorts["test"][1], calls, 0.5)
    assert f"Reader A (Se {expected['sensitivity']:.2f}, Sp {expected['specificity']:.2f})" in (
        reader_texts
    )
    point = [line for line in test_ax.get_lines() if line.get_label().startswith("Reader A")][0]
    assert point.get_xdata()[0] == pytest.approx(1 - expected["specificity"])
    assert point.get_ydata()[0] == pytest.approx(expected["sensitivity"])

    single = report.plot_roc("validation")
    assert len(single.axes) == 1 and "validation" in single.axes[0].get_title()
    with pytest.raises(ValueError, match="cohorts"):
        report.plot_roc(["nope"])


def test_calibration_figure(report, data):
    models, cohorts, _ = data
    fig = report.plot_calibration()
    assert len(fig.axes) == len(cohorts)  # two models: one panel per cohort, overlaid
    summary = report.calibration_summary()
    for ax, cohort in zip(fig.axes, cohorts):
        assert cohort in ax.get_title()
        assert ax.get_xlabel() == "Mean predicted probability"
        assert "observed" in ax.get_ylabel().lower()
        texts = _legend_texts(ax)
        assert len(texts) == len(models) + 1
        for name, text in zip(models, texts):
            row = summary.loc[(name, cohort)]
            p = row["hl_pvalue"]
            assert text.splitlines()[0] == name
            assert f"slope {row['slope']:.2f} ({row['slope_low']:.2f} to " in text
            assert f"Brier {row['brier']:.3f}" in text
            assert f"HL p {'<0.001' if p < 0.001 else f'{p:.3f}'}" in text
        assert texts[-1] == "Perfect calibration"
        # each model: a band, a smooth curve and its binned points, in the model's colour
        assert len(ax.collections) == len(models)
        for name in models:
            colour = report.colors_[name]
            drawn = [line for line in ax.get_lines() if line.get_color() == colour]
            assert [line.get_linestyle() for line in drawn] == ["-", "None"]
            curve = drawn[0]
            expected = smooth_calibration_curve(
                cohorts[cohort][1], report.probabilities_[name][cohort]
            )
            np.testing.assert_allclose(curve.get_ydata(), expected["observed"])
    with pytest.raises(ValueError, match="layout"):
        report.plot_calibration(layout="wide")


def test_calibration_small_multiples_for_many_models(data):
    _, cohorts, _ = data
    X, y = cohorts["training"]
    models = {f"model {i}": LogisticRegression(C=0.01 * (i + 1)).fit(X, y) for i in range(5)}
    two = {"training": cohorts["training"], "test": cohorts["test"]}
    report = StudyReport(models, two)
    fig = report.plot_calibration()
    assert len(fig.axes) == 5 * 2  # one panel per model and cohort
    summary = report.calibration_summary()
    for ax in fig.axes:
        name, cohort = ax.get_title().splitlines()
        row = summary.loc[(name, cohort)]
        (box,) = ax.texts
        assert f"slope {row['slope']:.2f}" in box.get_text()
        assert f"intercept {row['intercept']:.2f}" in box.get_text()
        assert [line.get_color() for line in ax.get_lines()][0] == report.colors_[name]
    # three panels of a model pair per row: 5 models -> 2 rows
    assert len({round(ax.get_position().y0, 3) for ax in fig.axes}) == 2
    assert _text_outside_figure(fig) == []
    assert len(report.plot_calibration(layout="overlay").axes) == 2


def test_calibration_panel_of_a_separating_model_says_so():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1] * 5)
    p = np.where(y == 1, 0.8, 0.2) + np.linspace(-0.1, 0.1, y.size)
    X = pd.DataFrame({"p": p})
    report = StudyReport({"perfect": ColumnProba().fit(X, y)}, {"all": (X, y)})
    assert np.isnan(report.calibration_summary().loc[("perfect", "all"), "slope"])
    fig = report.plot_calibration(layout="grid")
    (box,) = fig.axes[0].texts
    assert box.get_text().startswith("classes separated: no slope")


def test_calibration_summary_equals_calibration_metrics(report, data):
    _, cohorts, _ = data
    summary = report.calibration_summary()
    metrics = report.metrics_table()
    for (name, cohort), row in summary.iterrows():
        expected = calibration_metrics(cohorts[cohort][1], report.probabilities_[name][cohort])
        for key, value in expected.items():
            assert row[key] == pytest.approx(value, nan_ok=True)
        assert row["hl_pvalue"] == metrics.loc[(name, cohort), "hl_pvalue"]


def test_roc_bands_are_the_bootstrap_band(report, data):
    _, cohorts, _ = data
    fig = report.plot_roc("test", bands=True, n_bootstraps=200, random_state=3)
    ax = fig.axes[0]
    assert len(ax.collections) == len(report.models)
    name = next(iter(report.models))
    band = roc_curve_ci(
        cohorts["test"][1], report.probabilities_[name]["test"], n_bootstraps=200, random_state=3
    )
    vertices = ax.collections[0].get_paths()[0].vertices
    # the filled polygon runs along the upper bound and back along the lower one
    assert vertices[:, 1].max() == pytest.approx(band["high"].max())
    assert vertices[:, 1].min() == pytest.approx(band["low"].min())
    assert len(report.plot_roc("test").axes[0].collections) == 0  # off by default


def test_precision_recall_figure(report, data):
    models, cohorts, readers = data
    fig = report.plot_precision_recall()
    assert len(fig.axes) == len(cohorts)
    for ax, cohort in zip(fig.axes, cohorts):
        assert "Precision-recall" in ax.get_title() and cohort in ax.get_title()
        texts = _legend_texts(ax)
        y = cohorts[cohort][1]
        for name in models:
            ap = average_precision_score(y, report.probabilities_[name][cohort])
            assert f"{name} AP {ap:.2f}" in texts
        assert f"No skill (prevalence {y.mean():.2f})" in texts
        n_readers = sum(cohort in calls for calls in readers.values())
        assert len([t for t in texts if t.startswith("Reader")]) == n_readers


def test_decision_curve_figure(report, data):
    models, cohorts, _ = data
    fig = report.plot_decision_curve(["training", "test"])
    assert len(fig.axes) == 2
    for ax, cohort in zip(fig.axes, ["training", "test"]):
        assert cohort in ax.get_title()
        assert ax.get_xlabel() == "Threshold probability"
        assert ax.get_ylabel() == "Net benefit"
        assert _legend_texts(ax) == [*models, "Treat all", "Treat none"]
        assert len(ax.get_lines()) == len(models) + 2
        prevalence = cohorts[cohort][1].mean()
        low, high = ax.get_ylim()
        assert -0.2 < low < 0.0 and prevalence < high < prevalence + 0.2
        treat_all = [line for line in ax.get_lines() if line.get_label() == "Treat all"][0]
        assert treat_all.get_ydata()[0] == pytest.approx(prevalence)
        # the clinically relevant thresholds by default, the legend beside the curves
        assert ax.get_xlim() == pytest.approx((0.0, 0.6))
        assert treat_all.get_xdata().max() == pytest.approx(0.6)
        assert ax.get_legend().get_bbox_to_anchor().y1 < ax.bbox.y0 + 1  # below the axes
    wide = report.plot_decision_curve("test", thresholds=np.linspace(0, 0.9, 10)).axes[0]
    assert wide.get_xlim() == pytest.approx((0.0, 0.9))


def test_confusion_matrix_figure(report, data):
    models, cohorts, _ = data
    fig = report.plot_confusion_matrices()
    assert len(fig.axes) == len(models) * len(cohorts)
    # a grid: each model's cohorts side by side, at most six panels per row
    rows = {round(ax.get_position().y0, 3) for ax in fig.axes}
    per_row = max(1, 6 // len(cohorts))
    assert len(rows) == -(-len(models) // per_row)
    ax = fig.axes[len(cohorts) + 2]  # tree, test
    assert "shrunk" in ax.get_title() and "test" in ax.get_title()
    assert ax.get_xlabel() == "Predicted" and ax.get_ylabel() == "Actual"
    X, y = cohorts["test"]
    expected = binary_metrics(y, _proba(models["shrunk"], X), report.thresholds_["shrunk"])
    counts = [int(t.get_text().split("\n")[0]) for t in ax.texts]
    assert counts == [expected["tn"], expected["fp"], expected["fn"], expected["tp"]]


def test_model_colours_are_consistent_across_figures(report):
    roc = report.plot_roc("test").axes[0]
    calibration = report.plot_calibration("test").axes[0]
    dca = report.plot_decision_curve("test").axes[0]
    for name, colour in report.colors_.items():
        roc_line = [line for line in roc.get_lines() if line.get_label().startswith(name)][0]
        dca_line = [line for line in dca.get_lines() if line.get_label() == name][0]
        cal_line = [line for line in calibration.get_lines() if line.get_color() == colour]
        assert roc_line.get_color() == colour and dca_line.get_color() == colour
        assert cal_line
    assert len(set(report.colors_.values())) == len(report.colors_)


def test_nomogram_panel(data):
    models, cohorts, _ = data
    X, y = cohorts["training"]
    nomogram = FakeNomogram().fit(X, y)
    wrapped = make_pipeline(StandardScaler(), FakeNomogram()).fit(X, y)
    report = StudyReport({**models, "nomo": nomogram, "pipe": wrapped}, cohorts)
    assert report.nomogram_models == ["nomo", "pipe"]
    fig = report.plot_nomogram()
    assert fig.axes[0].get_title() == "Fake nomogram"
    assert report.plot_nomogram("pipe").axes[0].get_title() == "Fake nomogram"
    with pytest.raises(ValueError, match="does not draw a nomogram"):
        report.plot_nomogram("logistic")

    required = StudyReport({"nomo": AxRequiredNomogram().fit(X, y)}, cohorts)
    fig = required.plot_nomogram()
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["drawn"]
    assert fig.axes[0].get_title() == "Nomogram - nomo"

    none = StudyReport({"nomo": NoneNomogram().fit(X, y)}, cohorts)
    with pytest.raises(TypeError, match="Figure or Axes"):
        none.plot_nomogram()
    with pytest.raises(ValueError, match="No model draws a nomogram"):
        StudyReport(models, cohorts).plot_nomogram()


# --------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def html_report(data):
    """Two models, two cohorts, one reader: enough for every part of the page, and quick."""
    models, cohorts, readers = data
    two = {"training": cohorts["training"], "test": cohorts["test"]}
    return StudyReport(
        models, two, readers={"Reader A": readers["Reader A"]}, title="Test <report>"
    )


def test_to_html_writes_page_figures_and_tables(html_report, tmp_path):
    report = html_report
    folder = tmp_path / "deep" / "report"
    index = report.to_html(folder, dpi=30)
    assert index == folder / "index.html"
    page = index.read_text(encoding="utf-8")
    images = re.findall(r'<img src="([^"]+)"', page)
    assert images == [
        "forest.png",
        "roc.png",
        "precision_recall.png",
        "calibration.png",
        "decision_curve.png",
        "confusion_matrices.png",
        "delong_heatmap.png",
    ]
    for name in images:
        assert (folder / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    links = re.findall(r'<a href="([^"]+)"', page)
    assert links == [
        "metrics.csv",
        "metrics_formatted.csv",
        "delong.csv",
        "comparison.csv",
        "key_findings.csv",
        "calibration.csv",
        "reclassification.csv",
        "readers.csv",
        "agreement.csv",
    ]
    # the first screen: the key findings, then the forest plot, before any long table
    assert page.index("Key findings") < page.index("forest.png") < page.index("<table")
    assert "<details>" in page  # the matrix of every pair is collapsed
    assert sorted(p.name for p in folder.iterdir()) == sorted(["index.html", *images, *links])
    assert [p.name for p in tmp_path.iterdir()] == ["deep"]

    metrics = pd.read_csv(folder / "metrics.csv", index_col=[0, 1])
    np.testing.assert_allclose(metrics["auc"], report.metrics_table()["auc"])
    readers = pd.read_csv(folder / "readers.csv", index_col=[0, 1, 2])
    np.testing.assert_allclose(readers["mcnemar_pvalue"], report.readers_table()["mcnemar_pvalue"])
    delong = pd.read_csv(folder / "delong.csv", index_col=[0, 1, 2])
    np.testing.assert_allclose(delong["pvalue"], report.delong_table()["pvalue"])
    # Text from the user is escaped; the formatted AUC cells are on the page.
    assert "<title>Test &lt;report&gt;</title>" in page
    assert report.metrics_table(formatted=True).iloc[0, 1] in page

    # A second run into the same folder replaces the files and leaves no temporary folder.
    report.to_html(folder, dpi=30)
    assert sorted(p.name for p in folder.iterdir()) == sorted(["index.html", *images, *links])


def test_to_html_with_nomogram_and_unsafe_names(data, tmp_path):
    models, cohorts, _ = data
    X, y = cohorts["training"]
    report = StudyReport({"../<b>nomo</b>": FakeNomogram().fit(X, y)}, {"training": (X, y)})
    index = report.to_html(tmp_path / "out", dpi=30)
    page = index.read_text(encoding="utf-8")
    assert "<b>nomo</b>" not in page and "&lt;b&gt;nomo&lt;/b&gt;" in page
    names = {p.name for p in index.parent.iterdir()}
    assert {"nomogram_b_nomo_b.png", "nomogram_b_nomo_b_points.csv"} <= names
    assert 'src="nomogram_b_nomo_b.png"' in page
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    points = pd.read_csv(index.parent / "nomogram_b_nomo_b_points.csv", index_col=0)
    assert list(points.columns) == ["variable", "value", "points"]


def test_to_html_is_atomic(html_report, tmp_path, monkeypatch):
    report = html_report

    def broken(*args, **kwargs):
        raise RuntimeError("figure failed")

    # The tables and the ROC figure are written before the calibration figure fails.
    monkeypatch.setattr(StudyReport, "plot_calibration", broken)
    with pytest.raises(RuntimeError, match="figure failed"):
        report.to_html(tmp_path / "new" / "report", dpi=30)
    assert list(tmp_path.iterdir()) == []

    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "notes.txt").write_text("keep")
    with pytest.raises(RuntimeError, match="figure failed"):
        report.to_html(existing, dpi=30)
    assert [p.name for p in existing.iterdir()] == ["notes.txt"]


def test_to_html_rejects_a_file(report, tmp_path):
    target = tmp_path / "file.html"
    target.write_text("x")
    with pytest.raises(ValueError, match="not a folder"):
        report.to_html(target)
    with pytest.raises(ValueError, match="dpi"):
        report.to_html(tmp_path / "r", dpi=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.html"]


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _bad_inputs(data):
    models, cohorts, _ = data
    X, y = cohorts["training"]
    return X, y, models, cohorts


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda X, y, m, c: ({}, c, {}), ValueError, "non-empty mapping"),
        (lambda X, y, m, c: ({"x": StandardScaler().fit(X)}, c, {}), TypeError, "predict_proba"),
        (lambda X, y, m, c: ({"x": LogisticRegression()}, c, {}), ValueError, "not fitted"),
        (
            lambda X, y, m, c: ({"x": LogisticRegression().fit(X, y % 3 + (X[:, 0] > 1))}, c, {}),
            ValueError,
            "binary classifier",
        ),
        (lambda X, y, m, c: (m, {}, {}), ValueError, "non-empty mapping"),
        (lambda X, y, m, c: (m, {"a": (X, y, y)}, {}), ValueError, "pair"),
        (lambda X, y, m, c: (m, {"a": (X, y[:-1])}, {}), ValueError, "150 rows but y has 149"),
        (lambda X, y, m, c: (m, {"a": (X[:0], y[:0])}, {}), ValueError, "empty"),
        (
            lambda X, y, m, c: (m, {"a": (X[y == 1], y[y == 1])}, {}),
            ValueError,
            "cohort 'a' contains a single label",
        ),
        (
            lambda X, y, m, c: (m, {"a": (X, y), "b": (X, y + 1)}, {}),
            ValueError,
            "same two labels",
        ),
        (lambda X, y, m, c: (m, c, {"pos_label": 2}), ValueError, "pos_label=2"),
        (lambda X, y, m, c: (m, c, {"threshold": "youden"}), ValueError, "youden-on-first"),
        (lambda X, y, m, c: (m, c, {"threshold": 1.5}), ValueError, r"\[0, 1\]"),
        (lambda X, y, m, c: (m, c, {"threshold": True}), TypeError, "threshold"),
        (
            lambda X, y, m, c: (m, c, {"threshold": {"logistic": 0.5}}),
            ValueError,
            r"no value for the models \['shrunk'\]",
        ),
        (
            lambda X, y, m, c: (m, c, {"threshold": {"logistic": 0.5, "shrunk": 0.5, "x": 0.1}}),
            ValueError,
            "unknown models",
        ),
        (lambda X, y, m, c: (m, c, {"confidence": 95}), ValueError, "confidence"),
        (lambda X, y, m, c: (m, c, {"n_groups": 2}), ValueError, "n_groups"),
        (lambda X, y, m, c: (m, c, {"title": 3}), TypeError, "title"),
        (
            lambda X, y, m, c: (m, c, {"readers": {"Dr X": {"test": np.ones(69)}}}),
            ValueError,
            "reader 'Dr X', cohort 'test': 69 calls for 70 patients",
        ),
        (
            lambda X, y, m, c: (m, c, {"readers": {"Dr X": {"external": np.ones(70)}}}),
            ValueError,
            "reader 'Dr X': unknown cohort 'external'",
        ),
        (
            lambda X, y, m, c: (m, c, {"readers": {"Dr X": {"test": np.full(70, 2)}}}),
            ValueError,
            "0 .negative. or 1 .positive.; found 2 at position 0",
        ),
        (
            lambda X, y, m, c: (m, c, {"readers": {"Dr X": {"test": np.full(70, np.nan)}}}),
            ValueError,
            "found nan",
        ),
        (
            lambda X, y, m, c: (m, c, {"readers": {"Dr X": {"test": ["yes"] * 70}}}),
            TypeError,
            "0/1 numbers or booleans",
        ),
        (lambda X, y, m, c: (m, c, {"readers": [1, 2]}), TypeError, "readers must be a mapping"),
    ],
)
def test_validation_errors(data, make, error, match):
    X, y, models, cohorts = _bad_inputs(data)
    models_arg, cohorts_arg, kwargs = make(X, y, models, cohorts)
    with pytest.raises(error, match=match):
        StudyReport(models_arg, cohorts_arg, **kwargs)


def test_model_with_other_labels_is_rejected(data):
    models, cohorts, _ = data
    X, y = cohorts["training"]
    model = LogisticRegression().fit(X, np.where(y == 1, "N+", "N0"))
    with pytest.raises(ValueError, match="model 'lr' was fitted on the classes"):
        StudyReport({"lr": model}, cohorts)


def test_predict_proba_error_names_model_and_cohort(data):
    models, cohorts, _ = data
    bad = {**cohorts, "external": (cohorts["test"][0][:, :3], cohorts["test"][1])}
    with pytest.raises(ValueError) as info:
        StudyReport(models, bad)
    assert "model 'logistic' on cohort 'external'" in "".join(info.value.__notes__)


def test_boolean_reader_calls_are_accepted(data):
    models, cohorts, _ = data
    y_test = cohorts["test"][1]
    as_int = StudyReport(models, cohorts, readers={"R": {"test": y_test}})
    as_bool = StudyReport(models, cohorts, readers={"R": {"test": pd.Series(y_test == 1)}})
    pd.testing.assert_frame_equal(as_int.readers_table(), as_bool.readers_table())
    assert as_bool.readers_table()["reader_accuracy"].eq(1.0).all()


def test_delong_table_warns_for_tiny_cohorts(data):
    models, cohorts, _ = data
    X, y = cohorts["test"]
    keep = np.flatnonzero(y == 0)[:5].tolist() + np.flatnonzero(y == 1)[:1].tolist()
    tiny = {"training": cohorts["training"], "tiny": (X[keep], y[keep])}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DeLong CI / Hosmer-Lemeshow warnings of the tiny cohort
        report = StudyReport(models, tiny)
    with pytest.warns(UserWarning, match="cohort 'tiny'"):
        table = report.delong_table()
    assert np.isnan(table.loc[("tiny", "logistic", "shrunk"), "pvalue"])
    assert not np.isnan(table.loc[("training", "logistic", "shrunk"), "pvalue"])


def test_gradcam_panel_of_an_image_model(tmp_path):
    from sklearn_alnm.datasets import make_alnm_cohort
    from sklearn_alnm.models import ImageClassifier

    X, y = make_alnm_cohort(48, modalities=("ultrasound",), image_size=32, random_state=0)
    labels = np.where(y == 1, "N+", "N0")  # "N+" sorts first: it must be named
    image = ImageClassifier(
        "image",
        "mask",
        backbone="resnet18",
        input_size=32,
        max_epochs=1,
        batch_size=16,
        random_state=0,
        pos_label="N+",
    ).fit(X[:32], labels[:32])
    report = StudyReport(
        {"CNN": image},
        {"training": (X[:32], labels[:32]), "test": (X[32:], labels[32:])},
        pos_label="N+",
        gradcam=3,
    )
    assert report.gradcam_models == ["CNN"]
    fig = report.plot_gradcam()
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    # the chosen cases, each titled with patient id, true label, kind of call, probability
    cases = report.gradcam_cases("CNN")
    assert len(cases) == 3
    # named by the cohort's patient_id column, not by row number
    assert set(cases["patient"]) <= set(X["patient_id"].iloc[32:])
    proba = report.probabilities_["CNN"]["test"]
    for case in cases.itertuples():
        expected = (
            f"{case.patient}\ntrue {case.label}, {case.outcome}\np(N+) = {proba[case.row]:.2f}"
        )
        assert expected in titles, (titles, expected)
    assert "Grad-CAM - CNN (test)" in fig._suptitle.get_text()
    index = report.to_html(tmp_path / "report", dpi=40)
    assert (tmp_path / "report" / "gradcam_cnn.png").is_file()
    assert "gradcam_cnn.png" in index.read_text()
    with pytest.raises(ValueError, match="not an image model"):
        report.plot_gradcam("nope")
    with pytest.raises(ValueError, match="unknown cohort"):
        report.plot_gradcam(cohort="external")
    with pytest.raises(ValueError, match="gradcam"):
        StudyReport({"CNN": image}, {"test": (X[32:], labels[32:])}, gradcam=0)


def test_bag_models_get_a_cam_and_attention_panel(tmp_path, bag_pipeline):
    pipe, X, labels = bag_pipeline
    report = StudyReport(
        {"MTL-MIL": pipe, "stage 1": pipe[0]},
        {"test": (X[20:], labels[20:])},
        pos_label="N+",
        gradcam=2,
    )
    assert report.gradcam_models == ["MTL-MIL", "stage 1"]
    fig = report.plot_gradcam("MTL-MIL")
    assert "CAM and MIL attention - MTL-MIL (test)" in fig._suptitle.get_text()
    proba = report.probabilities_["MTL-MIL"]["test"]
    ylabels = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]
    for case in report.gradcam_cases("MTL-MIL").itertuples():
        # each row is a chosen patient: id, true label, call, the pipeline's probability
        patient = X["patient_id"].iloc[20 + case.row]
        expected = f"{patient}\ntrue {case.label}, {case.outcome}\np = {proba[case.row]:.2f}"
        assert expected in ylabels, (ylabels, expected)
    index = report.to_html(tmp_path / "report", dpi=40)
    text = index.read_text()
    assert "gradcam_mtl-mil.png" in text and "attention weight (w)" in text


def test_gradcam_cases_are_right_and_wrong_calls():
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 1])
    p = np.array([0.9, 0.8, 0.3, 0.2, 0.7, 0.6, 0.1, 0.2, 0.4, 0.95])
    labels = np.where(y == 1, "N+", "N0")
    # ColumnProba gives the probability of classes_[1] = "N0" ("N+" sorts first)
    X = pd.DataFrame({"p": 1 - p}, index=[f"P{i:02d}" for i in range(10)])
    report = StudyReport(
        {"model": ColumnProba().fit(X, labels)},
        {"test": (X, labels)},
        threshold=0.5,
        pos_label="N+",
    )
    np.testing.assert_allclose(report.probabilities_["model"]["test"], p)
    cases = report.gradcam_cases("model", n_cases=5)
    # in turn: most confident TP, most confident FP, most clearly missed FN, then again
    assert cases["outcome"].tolist() == ["TP", "FP", "FN", "TP", "FP"]
    assert cases["patient"].tolist() == ["P09", "P04", "P03", "P00", "P05"]
    assert cases["label"].tolist() == ["N+", "N0", "N+", "N+", "N0"]
    np.testing.assert_allclose(cases["probability"], [0.95, 0.7, 0.2, 0.9, 0.6])
    # when right and wrong calls run out, true negatives (lowest first) fill the panel
    assert report.gradcam_cases("model", n_cases=10)["outcome"].tolist()[-3:] == ["TN"] * 3
    assert report._case_notes("model", "test", [2, 6]) == ["true N+, FN", "true N0, TN"]


# --------------------------------------------------------------- readable figures, honest text


def _text_outside_figure(fig):
    """Drawn artists (titles, labels, legends) that reach beyond the figure's edges."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    width, height = fig.bbox.width, fig.bbox.height
    outside = []
    for artist in fig.get_children():
        for child in [artist, *getattr(artist, "get_children", list)()]:
            if not child.get_visible() or not hasattr(child, "get_window_extent"):
                continue
            texts = child.texts if hasattr(child, "texts") else []
            for item in [child, *texts]:
                if getattr(item, "get_text", None) and item.get_text():
                    box = item.get_window_extent(renderer)
                    if box.x0 < -1 or box.y0 < -1 or box.x1 > width + 1 or box.y1 > height + 1:
                        outside.append(item.get_text())
    box = fig.get_tightbbox(renderer).transformed(fig.dpi_scale_trans)
    if box.x0 < -1 or box.y0 < -1 or box.x1 > width + 1 or box.y1 > height + 1:
        outside.append(f"tight bbox {box.bounds}")
    return outside


@pytest.mark.parametrize("n_models", [1, 2, 9])
@pytest.mark.parametrize("n_cohorts", [1, 3])
def test_figures_keep_every_title_label_and_legend_inside(data, n_models, n_cohorts):
    _, cohorts, _ = data
    X, y = cohorts["training"]
    models = {
        f"Model {i}: a long descriptive signature name": LogisticRegression(C=0.01 * (i + 1)).fit(
            X, y
        )
        for i in range(n_models)
    }
    chosen = dict(list(cohorts.items())[:n_cohorts])
    chosen = {f"{name} cohort of the derivation centre": c for name, c in chosen.items()}
    report = StudyReport(models, chosen)
    for figure in (
        report.plot_roc(),
        report.plot_calibration(),
        report.plot_precision_recall(),
        report.plot_roc(bands=True, n_bootstraps=20),
        report.plot_decision_curve(),
        report.plot_forest(),
        report.plot_confusion_matrices(),
    ):
        assert _text_outside_figure(figure) == []


def test_identical_models_are_dashed_and_named_in_the_legend(data):
    models, cohorts, _ = data
    twin = LogisticRegression().fit(*cohorts["training"])
    report = StudyReport({"logistic": models["logistic"], "copy": twin}, cohorts)
    fig = report.plot_roc(["test"])
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    copy = next(label for label in lines if label.startswith("copy"))
    assert copy.endswith("(same as logistic)")
    assert lines[copy].get_linestyle() != "-"
    original = next(label for label in lines if label.startswith("logistic"))
    assert lines[original].get_linestyle() == "-" and "same as" not in original
    assert _text_outside_figure(fig) == []


def test_methods_mention_readers_only_when_there_are_readers(data, tmp_path):
    models, cohorts, readers = data
    two = {"training": cohorts["training"], "test": cohorts["test"]}

    def methods(page):
        return page.split('<section id="methods">')[1].split("</section>")[0]

    without = StudyReport(models, two).to_html(tmp_path / "a", dpi=30).read_text()
    assert "McNemar" not in methods(without)
    with_readers = StudyReport(models, two, readers={"Reader A": readers["Reader A"]})
    page = with_readers.to_html(tmp_path / "b", dpi=30).read_text()
    assert "McNemar" in methods(page) and "Cohen's kappa" in methods(page)


def test_primary_model_comparisons_are_adjusted_and_summarised(data):
    models, cohorts, _ = data
    names = list(models)
    report = StudyReport(models, cohorts)
    assert report.primary_ == names[-1]  # by default the last model
    assert report.evaluation_cohorts == list(cohorts)[1:]
    table = report.comparison_table()
    assert table.index.names == ["cohort", "model"]
    assert set(table.index.get_level_values("model")) == set(names[:-1])
    # the primary's comparisons equal the matching rows of the full matrix
    delong = report.delong_table()
    for (cohort, other), row in table.iterrows():
        pair = delong.loc[(cohort, other, names[-1])]  # (model_1, model_2) in models' order
        assert row["pvalue"] == pytest.approx(pair["pvalue"])
        assert row["difference"] == pytest.approx(-pair["difference"])
        # Holm never lowers a p-value, and equals it times k for the smallest one
        assert row["p_adjusted"] >= row["pvalue"] - 1e-12
    from statsmodels.stats.multitest import multipletests

    for cohort in report.evaluation_cohorts:
        p = table.loc[cohort, "pvalue"].to_numpy()
        expected = multipletests(p, method="holm")[1]
        np.testing.assert_allclose(table.loc[cohort, "p_adjusted"].to_numpy(), expected)
    raw = StudyReport(models, cohorts, primary=names[0], adjust=None).comparison_table()
    np.testing.assert_array_equal(raw["p_adjusted"], raw["pvalue"])

    findings = report.key_findings()
    assert list(findings.index) == report.evaluation_cohorts
    metrics = report.metrics_table()
    for cohort, row in findings.iterrows():
        assert row["model"] == names[-1]
        assert row["auc"] == metrics.loc[(names[-1], cohort), "auc"]
        others = {n: metrics.loc[(n, cohort), "auc"] for n in names[:-1]}
        assert row["comparator"] == max(others, key=others.get)
        assert row["delong_p"] == table.loc[(cohort, row["comparator"]), "pvalue"]
    chosen = StudyReport(models, cohorts, compare=[names[0]])
    assert list(chosen.comparison_table().index.get_level_values("model").unique()) == [names[0]]
    assert (chosen.key_findings()["comparator"] == names[0]).all()
    for bad in (["nope"], [names[-1]], []):
        with pytest.raises(ValueError, match="compare must name other models"):
            StudyReport(models, cohorts, compare=bad)
    with pytest.raises(ValueError, match="primary model 'nope'"):
        StudyReport(models, cohorts, primary="nope")
    with pytest.raises(ValueError, match="adjust must be one of"):
        StudyReport(models, cohorts, adjust="sidak2")


def test_forest_plot_has_a_row_per_model_and_names_the_primary(data):
    models, cohorts, _ = data
    report = StudyReport(models, cohorts, primary=list(models)[0])
    fig = report.plot_forest()
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert len(labels) == len(models)
    assert f"{list(models)[0]} (primary)" in labels
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == list(cohorts)
    # nothing drawn outside the figure: every text's box lies within the canvas
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    width, height = fig.canvas.get_width_height()
    for text in fig.findobj(lambda a: hasattr(a, "get_window_extent") and hasattr(a, "get_text")):
        if not text.get_text() or not text.get_visible():
            continue
        box = text.get_window_extent(renderer)
        assert box.x0 >= -1 and box.y0 >= -1, text.get_text()
        assert box.x1 <= width + 1 and box.y1 <= height + 1, text.get_text()


def test_delong_heatmap_shows_the_pairwise_p_values(data):
    models, cohorts, _ = data
    report = StudyReport(models, cohorts)
    fig = report.plot_delong_heatmap("test")
    ax = fig.axes[0]
    names = list(models)
    from sklearn_alnm.metrics._table import _fmt_p

    square = report.delong_table(layout="square").loc["test"]
    # row by row, the diagonal (a model against itself) left blank
    expected = [_fmt_p(square.loc[a, b], 2) for a in names for b in names if a != b]
    assert [t.get_text() for t in ax.texts] == expected
    assert square.loc[names[0], names[1]] == square.loc[names[1], names[0]]
    assert [t.get_text() for t in ax.get_yticklabels()] == names
    assert _text_outside_figure(fig) == []


def test_key_findings_with_string_labels_match_the_numeric_report(data):
    """'N0'/'N+' labels, as a clinic exports them: the same findings as with 0/1 labels."""
    models, cohorts, _ = data
    X, y = cohorts["training"]
    names = {0: "N0", 1: "N+"}
    text_models = {
        name: LogisticRegression(C=c).fit(X, np.vectorize(names.get)(y))
        for name, c in (("weak", 0.001), ("strong", 1.0))
    }
    numeric_models = {
        name: LogisticRegression(C=c).fit(X, y) for name, c in (("weak", 0.001), ("strong", 1.0))
    }
    text_cohorts = {k: (Xc, np.vectorize(names.get)(yc)) for k, (Xc, yc) in cohorts.items()}
    text = StudyReport(text_models, text_cohorts, pos_label="N+").key_findings()
    numeric = StudyReport(numeric_models, cohorts).key_findings()
    for column in ("auc", "sensitivity", "specificity", "comparator_auc", "delong_p"):
        np.testing.assert_allclose(text[column], numeric[column])
    assert (text["auc"] > 0.5).all()  # N+ is the event, not N0


# --------------------------------------------------------------- reclassification, agreement


def test_reclassification_table_and_key_findings(report, data):
    _, cohorts, _ = data
    table = report.reclassification_table()
    primary = report.primary_
    assert list(table.index) == [(c, "logistic") for c in ("validation", "test")]
    for (cohort, other), row in table.iterrows():
        y = cohorts[cohort][1]
        new = report.probabilities_[primary][cohort]
        old = report.probabilities_[other][cohort]
        nri = net_reclassification_improvement(y, old, new)
        idi = integrated_discrimination_improvement(y, old, new)
        assert row["nri"] == pytest.approx(nri.estimate)
        assert row["nri_low"] == pytest.approx(nri.low)
        assert row["idi"] == pytest.approx(idi.estimate)
        assert row["idi_pvalue"] == pytest.approx(idi.pvalue)
    categorical = report.reclassification_table(cutoffs=[0.3, 0.6])
    y = cohorts["test"][1]
    expected = net_reclassification_improvement(
        y,
        report.probabilities_["logistic"]["test"],
        report.probabilities_[primary]["test"],
        cutoffs=[0.3, 0.6],
    )
    assert categorical.loc[("test", "logistic"), "nri"] == pytest.approx(expected.estimate)
    findings = report.key_findings()
    assert findings.loc["test", "nri"] == pytest.approx(table.loc[("test", "logistic"), "nri"])
    assert findings.loc["test", "idi_high"] == pytest.approx(
        table.loc[("test", "logistic"), "idi_high"]
    )


def test_agreement_table_readers_and_models(report, data):
    _, cohorts, readers = data
    table = report.agreement_table()
    test = table.xs("test", level="cohort")
    assert test.loc[("Reader A", "Reader B"), "kind"] == "reader-reader"
    expected = cohen_kappa(readers["Reader A"]["test"], readers["Reader B"]["test"])
    assert test.loc[("Reader A", "Reader B"), "kappa"] == pytest.approx(expected.kappa)
    assert test.loc[("Reader A", "Reader B"), "kappa_low"] == pytest.approx(expected.low)
    calls = report.probabilities_["shrunk"]["test"] >= report.thresholds_["shrunk"]
    model = cohen_kappa(readers["Reader B"]["test"], calls)
    assert test.loc[("Reader B", "shrunk"), "kappa"] == pytest.approx(model.kappa)
    assert test.loc[("Reader B", "shrunk"), "agreement"] == pytest.approx(model.agreement)
    # validation: only Reader B read it, so no reader pair there
    validation = table.xs("validation", level="cohort")
    assert set(validation["kind"]) == {"reader-model"} and len(validation) == 2
    assert "training" not in table.index.get_level_values("cohort")
    assert StudyReport(report.models, cohorts).agreement_table().empty


# --------------------------------------------------------------- clinical tables, segmentation


@pytest.fixture(scope="module")
def clinical_cohorts():
    rng = np.random.default_rng(4)

    def cohort(n):
        y = rng.integers(0, 2, n)
        X = pd.DataFrame(
            {
                "age": rng.normal(55, 10, n).round(),
                "size_mm": rng.normal(20, 5, n) + 6 * y,
                "er": rng.choice(["positive", "negative"], n),
                "grade": rng.integers(1, 4, n),
            }
        )
        return X, np.where(y == 1, "N+", "N0")

    return {"training": cohort(160), "test": cohort(80)}


def test_clinical_tables_in_the_report(clinical_cohorts, tmp_path):
    from sklearn_alnm.clinical import baseline_table, odds_ratio_table

    X, y = clinical_cohorts["training"]
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(
        X[["age", "size_mm"]].assign(grade=X["grade"]), y
    )
    columns = ["age", "size_mm", "grade"]
    models = {"clinical": make_pipeline(_Columns(columns), model)}
    report = StudyReport(
        models,
        clinical_cohorts,
        pos_label="N+",
        clinical=["age", "size_mm", "er", "grade"],
        categorical=["grade"],
    )
    stacked = pd.concat([c[0] for c in clinical_cohorts.values()], ignore_index=True)
    labels = np.concatenate([c[1] for c in clinical_cohorts.values()])
    groups = np.repeat(["training", "test"], [160, 80])
    expected = baseline_table(
        stacked[report.clinical_], labels, groups, categorical=["grade"], pos_label="N+"
    )
    pd.testing.assert_frame_equal(report.baseline_table(), expected)
    pd.testing.assert_frame_equal(
        report.odds_ratio_table(),
        odds_ratio_table(X[report.clinical_], y, categorical=["grade"], pos_label="N+"),
    )
    text = report.to_html(tmp_path / "r", dpi=30).read_text()
    assert "Patient characteristics" in text and "Odds ratios" in text
    assert (tmp_path / "r" / "baseline.csv").is_file()
    assert (tmp_path / "r" / "odds_ratios.csv").is_file()


class _Columns(BaseEstimator):
    """Selects DataFrame columns (a stateless first step)."""

    def __init__(self, columns):
        self.columns = columns

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return X[self.columns]


def test_clinical_columns_are_checked(clinical_cohorts):
    X, y = clinical_cohorts["training"]
    model = LogisticRegression().fit(X[["age"]], y)
    models = {"m": make_pipeline(_Columns(["age"]), model)}
    with pytest.raises(ValueError, match="no column"):
        StudyReport(models, clinical_cohorts, pos_label="N+", clinical=["age", "ki67"])
    with_outcome = {name: (X.assign(nodal=y), y) for name, (X, y) in clinical_cohorts.items()}
    with pytest.raises(ValueError, match="equals the outcome"):
        StudyReport(models, with_outcome, pos_label="N+", clinical=["age", "nodal"])
    with_ids = {
        name: (X.assign(patient_id=range(len(X))), y) for name, (X, y) in clinical_cohorts.items()
    }
    with pytest.raises(ValueError, match="an id column"):
        StudyReport(models, with_ids, pos_label="N+", clinical=["age", "patient_id"])
    with pytest.raises(ValueError, match="clinical=\\["):
        StudyReport(models, clinical_cohorts, pos_label="N+").baseline_table()


@pytest.mark.filterwarnings("ignore:.*Hosmer-Lemeshow group")
def test_segmentation_table_scores_each_segmenter(tmp_path):
    from sklearn_alnm.datasets import make_alnm_cohort
    from sklearn_alnm.segmentation import SegmentationFusion, UNetSegmenter

    X, y = make_alnm_cohort(
        40, modalities=("clinical", "ultrasound"), image_size=32, random_state=1
    )
    unet = UNetSegmenter(
        input_size=32,
        max_epochs=1,
        batch_size=16,
        random_state=0,
        base_channels=8,
        depth=2,
    )
    fusion = SegmentationFusion([("unet", unet)]).fit(X[:24])
    pipe = make_pipeline(fusion, _Columns(["age"]), LogisticRegression())
    pipe.fit(X[:24], y[:24])
    report = StudyReport({"auto": pipe}, {"training": (X[:24], y[:24]), "test": (X[24:], y[24:])})
    assert list(report.segmenters) == [
        "auto / segmentationfusion",
        "auto / segmentationfusion / unet",
    ]
    table = report.segmentation_table()
    assert list(table.index) == [
        ("auto / segmentationfusion", "training"),
        ("auto / segmentationfusion", "test"),
        ("auto / segmentationfusion / unet", "training"),
        ("auto / segmentationfusion / unet", "test"),
    ]
    from sklearn_alnm.metrics import dice_score, iou_score

    truth = list(X["mask"].iloc[24:])
    pred = fusion.predict(X[24:])
    row = table.loc[("auto / segmentationfusion", "test")]
    assert row["n"] == 16
    assert row["dice"] == pytest.approx(dice_score(truth, pred))
    assert row["iou"] == pytest.approx(iou_score(truth, pred))
    assert row["dice"] == pytest.approx(fusion.score(X[24:]))
    text = report.to_html(tmp_path / "r", dpi=30).read_text()
    assert "Segmentation quality" in text
    assert (tmp_path / "r" / "segmentation.csv").is_file()
    # a test cohort where some patients have no reference mask (the automatic model needs
    # none): those are left out of the scores, the others scored as before
    gaps = X.iloc[24:].copy()
    gaps["mask"] = gaps["mask"].astype(object)
    gaps.iloc[[0, 3], gaps.columns.get_loc("mask")] = None
    partial = StudyReport({"auto": pipe}, {"test": (gaps, y[24:])}).segmentation_table()
    kept = [i for i in range(16) if i not in (0, 3)]
    row = partial.loc[("auto / segmentationfusion", "test")]
    assert row["n"] == 14
    assert row["dice"] == pytest.approx(
        dice_score([truth[i] for i in kept], [pred[i] for i in kept])
    )
    # no segmenter: an empty table and no section
    plain = StudyReport({"m": LogisticRegression().fit(X[["age"]], y)}, {"all": (X[["age"]], y)})
    assert plain.segmentation_table().empty


# --------------------------------------------------------------- the page as a browser sees it


def _many_model_report(data, n_models=20):
    """A report as large as the demo's: many models with long names, two cohorts."""
    _, cohorts, readers = data
    X, y = cohorts["training"]
    models = {
        f"Model {i} ({'US' if i % 2 else 'CC+MLO'})": LogisticRegression(C=0.01 * (i + 1)).fit(
            X[:, : 2 + i % 4], y
        )
        for i in range(n_models)
    }
    models = {
        name: make_pipeline(_FirstColumns(2 + i % 4), m)
        for i, (name, m) in enumerate(models.items())
    }
    two = {"Training": cohorts["training"], "Test": cohorts["test"]}
    return StudyReport(models, two, readers={"Reader A": {"Test": readers["Reader A"]["test"]}})


class _FirstColumns(BaseEstimator):
    def __init__(self, k):
        self.k = k

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return np.asarray(X)[:, : self.k]


@pytest.fixture(scope="module")
def demo_sized_page(data, tmp_path_factory):
    report = _many_model_report(data)
    return report, report.to_html(tmp_path_factory.mktemp("page") / "report", dpi=100)


def test_page_is_valid_html(demo_sized_page):
    html5lib = pytest.importorskip("html5lib")
    report, index = demo_sized_page
    page = index.read_text(encoding="utf-8")
    # a strict HTML5 parser: any parse error (unclosed or misnested element, stray end tag,
    # bad attribute, missing doctype) raises
    document = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(page)
    assert document.get("lang") == "en"
    ids = [element.get("id") for element in document.iter() if element.get("id")]
    assert len(ids) == len(set(ids))
    for image in document.iter("img"):
        assert image.get("alt")
        assert (index.parent / image.get("src")).is_file()
    for link in document.iter("a"):
        assert (index.parent / link.get("href")).is_file()
    assert document.find(".//title").text == "Study report"
    # every section heading once, in the order a reader needs them
    headings = [h.text for h in document.iter("h2")]
    assert headings[:3] == ["Key findings", "Cohorts", "Figures"]
    assert headings[-2:] == ["Methods", "Files"]
    assert len(headings) == len(set(headings))
    # long tables collapsed: the full DeLong matrix and the calibration table
    summaries = [s.text for s in document.iter("summary")]
    assert any(text.startswith("Every pair of models") for text in summaries)
    assert any(text.startswith("Calibration of every model") for text in summaries)


_CHROMIUM = next(
    (
        path
        for name in ("chromium", "chromium-browser", "google-chrome")
        if (path := shutil.which(name))
    ),
    None,
)


@pytest.mark.skipif(_CHROMIUM is None, reason="headless Chromium is not installed")
def test_first_screen_holds_the_key_findings_and_the_forest_plot(demo_sized_page, tmp_path):
    import json
    import subprocess

    from PIL import Image

    report, index = demo_sized_page
    width, height = 1280, 800
    flags = [
        _CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--window-size={width},{height}",
        "--virtual-time-budget=5000",
    ]
    # where the browser lays out the findings and the forest plot: a copy of the page with a
    # probe script (the page itself has no script)
    probe = index.parent / "probe.html"
    script = """<script>window.addEventListener('load', () => {
      const box = (el) => { const r = el.getBoundingClientRect();
        return {top: r.top, bottom: r.bottom, height: r.height}; };
      const out = {findings: box(document.querySelector('ul.findings')),
                   forest: box(document.querySelector('img[src="forest.png"]')),
                   table: box(document.querySelector('table')),
                   viewport: window.innerHeight};
      const pre = document.createElement('pre'); pre.id = 'probe';
      pre.textContent = JSON.stringify(out); document.body.appendChild(pre); });</script>"""
    probe.write_text(index.read_text().replace("</body>", script + "</body>"))
    try:
        dom = subprocess.run(
            [*flags, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120
        ).stdout
    finally:
        probe.unlink()
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom)
    assert found, dom[-2000:]
    layout = json.loads(html.unescape(found.group(1)))
    assert layout["findings"]["bottom"] <= layout["forest"]["top"] < layout["table"]["top"]
    assert layout["forest"]["bottom"] <= height, layout  # the whole forest plot: first screen
    assert layout["forest"]["height"] > 250  # and not shrunk to a thumbnail
    # the screenshot: the forest plot's model colours are on the first screen
    shot = tmp_path / "first_screen.png"
    subprocess.run(
        [*flags, f"--screenshot={shot}", index.as_uri()], capture_output=True, timeout=120
    )
    pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3).astype(int)
    for name in list(report.models)[:3]:
        colour = np.round(np.asarray(report.colors_[name][:3]) * 255)
        assert (np.abs(pixels - colour).max(axis=1) < 30).sum() > 30, name
