import re

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score

from sklearn_alnm.clinical import ClinicalColumns, make_clinical_pipeline


@pytest.fixture
def cohort():
    rng = np.random.default_rng(0)
    n = 120
    size = rng.normal(22, 8, n)
    er = rng.choice(["positive", "negative"], n)
    grade = pd.Categorical(rng.choice([1, 2, 3], n))
    risk = 0.15 * (size - 22) + 1.0 * (er == "negative") + 0.6 * (np.asarray(grade) == 3)
    y = (risk + rng.logistic(0, 1, n) > 0.5).astype(int)
    X = pd.DataFrame(
        {
            "patient_id": [f"P{i:04d}" for i in range(n)],
            "age": rng.normal(52, 10, n).round(),
            "tumor_size_mm": size,
            "ER": er,
            "grade": grade,
            "lvi": rng.random(n) < 0.3,
            "image": [np.zeros((8, 8), np.float32)] * n,
            "mask": [f"masks/{i}.png" for i in range(n)],
            "bag": [["a.png", "b.png"]] * n,
            "note": [f"free text number {i}" for i in range(n)],
        }
    )
    X.loc[3, "age"] = np.nan
    return X, y


def test_clinical_columns_pick_only_clinical_factors(cohort):
    X, _ = cohort
    assert ClinicalColumns("numeric")(X) == ["age", "tumor_size_mm"]
    assert ClinicalColumns("categorical")(X) == ["ER", "grade", "lvi"]
    assert ClinicalColumns("numeric", exclude=["age"])(X) == ["tumor_size_mm"]
    with pytest.raises(ValueError, match="kind"):
        ClinicalColumns("images")
    with pytest.raises(TypeError, match="DataFrame"):
        ClinicalColumns("numeric")(X.to_numpy())


def test_pipeline_learns_and_reports_encoded_features(cohort):
    X, y = cohort
    model = make_clinical_pipeline().fit(X, y)
    names = list(model[:-1].get_feature_names_out())
    assert "numeric__tumor_size_mm" in names and "categorical__ER_negative" in names
    assert not any("image" in n or "mask" in n or "patient" in n for n in names)
    assert model.predict_proba(X).shape == (len(y), 2)
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    assert cross_val_score(make_clinical_pipeline(), X, y, cv=cv, scoring="roc_auc").mean() > 0.7


def test_unknown_category_at_prediction(cohort):
    X, y = cohort
    model = make_clinical_pipeline().fit(X, y)
    X_new = X.head(3).copy()
    X_new["ER"] = ["unknown", "positive", "negative"]
    assert np.isfinite(model.predict_proba(X_new)).all()


def test_grid_search_reaches_model_and_swaps_estimator(cohort):
    X, y = cohort
    search = GridSearchCV(
        make_clinical_pipeline(), {"model__C": [0.01, 1.0]}, cv=3, scoring="roc_auc"
    )
    search.fit(X, y)
    assert search.best_params_["model__C"] in (0.01, 1.0)
    forest = make_clinical_pipeline(RandomForestClassifier(n_estimators=20, random_state=0))
    assert forest.fit(X, y).predict_proba(X).shape == (len(y), 2)


def test_explicit_columns_and_pickle(cohort, tmp_path):
    X, y = cohort
    model = make_clinical_pipeline(numeric=["tumor_size_mm"], categorical=["ER"]).fit(X, y)
    assert len(model[:-1].get_feature_names_out()) == 3
    joblib.dump(model, tmp_path / "m.joblib")
    loaded = joblib.load(tmp_path / "m.joblib")
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    auto = make_clinical_pipeline().fit(X, y)
    joblib.dump(auto, tmp_path / "auto.joblib")
    np.testing.assert_array_equal(
        joblib.load(tmp_path / "auto.joblib").predict_proba(X), auto.predict_proba(X)
    )
    assert roc_auc_score(y, auto.predict_proba(X)[:, 1]) > 0.7


# ------------------------------------------------------------- a raw clinical manifest


def _raw_manifest(tmp_path, n=240, seed=0):
    """An Excel export shaped like a clinic's: id and outcome columns beside the factors."""
    rng = np.random.default_rng(seed)
    size = rng.gamma(4.0, 0.6, n)
    er = rng.choice(["Positive", "Negative"], n)
    risk = 0.9 * (size - 2.4) + 0.7 * (er == "Negative")
    positive = rng.random(n) < 1 / (1 + np.exp(-risk))
    surgery = np.where(positive, "ALND", "SLNB")
    table = pd.DataFrame(
        {
            "Patient ID": [f"{i:05d}" for i in range(n)],
            "Age": rng.normal(52, 10, n).round(),
            "Tumor size (cm)": size.round(2),
            "ER": er,
            "Ki-67": [f"{v}%" for v in rng.integers(5, 60, n)],
            "Surgical": surgery,
            "Number of lymph node metastases": np.where(positive, rng.integers(1, 9, n), 0),
            "ALN status": np.where(positive, "N+", "N0"),
        }
    )
    path = tmp_path / "clinical.xlsx"
    table.to_excel(path, index=False)
    return path


def test_raw_manifest_never_uses_ids_outcome_or_outcome_derived_columns(tmp_path):
    from sklearn_alnm.io import load_manifest, resolve_id_column

    X = load_manifest(_raw_manifest(tmp_path))
    assert resolve_id_column(X) == "Patient ID" and X.loc[0, "Patient ID"] == "00000"
    y = X["ALN status"].to_numpy()
    leaking = ["Number of lymph node metastases", "Surgical", "ALN status"]
    # The label left inside X and the columns derived from it are refused by name, one by one.
    for k, column in enumerate(leaking):
        model = make_clinical_pipeline(exclude=leaking[:k])
        with pytest.raises(ValueError, match=rf"column '{re.escape(column)}' alone separates"):
            model.fit(X, y)
    with pytest.warns(UserWarning, match=r"'Ki-67' is not used: numbers stored as text"):
        model = make_clinical_pipeline(exclude=leaking).fit(X, y)
    pre = model["preprocess"]
    assert pre.numeric_columns_ == ["Age", "Tumor size (cm)"]
    assert pre.categorical_columns_ == ["ER"]
    assert pre.dropped_columns_["Patient ID"] == "named like a patient identifier"
    assert set(leaking) <= set(pre.dropped_columns_)
    assert pre.column_auc_.max() < 0.9
    auc = roc_auc_score(y == "N+", model.predict_proba(X)[:, list(model.classes_).index("N+")])
    assert 0.6 < auc < 0.95  # a real signal, not the leaked outcome (AUC 1.000)
    # An explicit opt-in keeps a separating column.
    kept = make_clinical_pipeline(
        exclude=leaking[1:], allow_separating=["Number of lymph node metastases"]
    )
    with pytest.warns(UserWarning, match="Ki-67"):
        kept.fit(X, y)
    assert "Number of lymph node metastases" in kept["preprocess"].numeric_columns_


def test_unique_integer_and_text_ids_are_not_predictors():
    rng = np.random.default_rng(3)
    n = 80
    y = rng.integers(0, 2, n)
    X = pd.DataFrame(
        {
            "record": np.arange(1000, 1000 + n),  # unique integers: an identifier
            "hospital_code": [f"H{i:03d}" for i in range(n)],
            "size": rng.normal(20, 5, n) + 3 * y,
            "ki67_fraction": [f"{v:.2f}" for v in rng.random(n)],  # numbers as text, no path
        }
    )
    with pytest.warns(UserWarning, match="ki67_fraction"):
        pre = make_clinical_pipeline().fit(X, y)["preprocess"]
    assert pre.numeric_columns_ == ["size"] and pre.categorical_columns_ == []
    assert "identifier" in pre.dropped_columns_["record"]
    assert "identifier" in pre.dropped_columns_["hospital_code"]
    with pytest.raises(ValueError, match="no clinical column in X"):
        make_clinical_pipeline().fit(X[["record"]], y)


def test_clear_errors_before_fitting_for_bad_clinical_input(cohort):
    X, y = cohort
    bad = X.copy()
    bad.loc[[4, 9], "tumor_size_mm"] = np.inf
    with pytest.raises(
        ValueError, match=r"'tumor_size_mm' has 2 infinite value\(s\) at row\(s\) 4, 9"
    ):
        make_clinical_pipeline().fit(bad, y)
    model = make_clinical_pipeline().fit(X, y)
    with pytest.raises(ValueError, match=r"'tumor_size_mm' has 2 infinite"):
        model.predict_proba(bad)
    with pytest.raises(ValueError, match=r"single class \(np.int64\(1\)\)|single class \(1\)"):
        make_clinical_pipeline().fit(X, np.ones(len(X), dtype=int))
    labels = np.where(y == 1, "N+", "N0").astype(object)
    labels[[2, 7]] = None
    with pytest.raises(ValueError, match=r"missing labels at rows \[2, 7\]"):
        make_clinical_pipeline().fit(X, labels)
    with pytest.raises(ValueError, match="the cohort is empty"):
        make_clinical_pipeline().fit(X.iloc[:0], y[:0])


def test_many_small_levels_are_not_taken_for_a_separating_column():
    rng = np.random.default_rng(11)
    n = 200
    y = rng.integers(0, 2, n)
    X = pd.DataFrame(
        {
            "size": rng.normal(20, 5, n) + 2 * y,
            # 80 levels of 2-3 patients each: in-sample level rates would look predictive
            "pathologist_code": [f"C{k:02d}" for k in rng.integers(0, 80, n)],
        }
    )
    pre = make_clinical_pipeline().fit(X, y)["preprocess"]
    assert "pathologist_code" in pre.categorical_columns_
    assert pre.column_auc_["pathologist_code"] < 0.8
