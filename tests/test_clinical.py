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
