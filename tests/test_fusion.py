import joblib
import numpy as np
import pandas as pd
import pytest
from imblearn.over_sampling import SMOTE
from imblearn.pipeline import Pipeline as ImbPipeline
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.ensemble import StackingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_predict, cross_val_score

from sklearn_alnm.clinical import make_clinical_preprocessor
from sklearn_alnm.datasets import make_alnm_cohort
from sklearn_alnm.fusion import GroupColumnKFold, make_post_fusion, make_signature


class LesionStats(TransformerMixin, BaseEstimator):
    """A tiny image model for tests: intensity statistics inside and around the mask."""

    def __init__(self, image_col="image", mask_col="mask"):
        self.image_col = image_col
        self.mask_col = mask_col

    def fit(self, X, y=None):
        self.n_features_out_ = 4
        return self

    def transform(self, X):
        rows = []
        for image, mask in zip(X[self.image_col], X[self.mask_col], strict=True):
            inside = image[mask > 0]
            rows.append([inside.mean(), inside.std(), mask.sum(), image[mask == 0].std()])
        return np.asarray(rows)

    def get_feature_names_out(self, input_features=None):
        return np.array(["mean_in", "std_in", "area", "std_out"], dtype=object)


@pytest.fixture(scope="module")
def cohort():
    return make_alnm_cohort(
        120, modalities=("clinical", "ultrasound"), image_size=32, random_state=0
    )


def _two_rows_per_patient(n=40, seed=0):
    rng = np.random.default_rng(seed)
    pid = np.repeat([f"P{i:03d}" for i in range(n)], 2)
    y = np.repeat(rng.permutation([0, 1] * (n // 2)), 2)
    X = pd.DataFrame({"patient_id": pid, "x": rng.normal(size=2 * n) + y})
    return X, y


def test_group_column_kfold_keeps_patients_together_and_stratifies():
    X, y = _two_rows_per_patient()
    cv = GroupColumnKFold(n_splits=4, random_state=0)
    seen = []
    for train, test in cv.split(X, y):
        assert set(X["patient_id"].iloc[train]).isdisjoint(X["patient_id"].iloc[test])
        assert 0.3 < y[test].mean() < 0.7
        seen.extend(test)
    assert sorted(seen) == list(range(len(X)))
    again = [test.tolist() for _, test in GroupColumnKFold(n_splits=4, random_state=0).split(X, y)]
    assert again == [test.tolist() for _, test in cv.split(X, y)]
    assert cv.get_n_splits() == 4


def test_group_column_kfold_variants_and_errors():
    X, y = _two_rows_per_patient(10)
    unstratified = list(GroupColumnKFold(n_splits=5, stratify=False).split(X))
    assert len(unstratified) == 5
    rows_as_groups = GroupColumnKFold(None, n_splits=4, random_state=0)
    assert len(list(rows_as_groups.split(X, y))) == 4
    explicit = list(GroupColumnKFold("missing", 2).split(X.to_numpy(), y, groups=X["patient_id"]))
    assert len(explicit) == 2
    with pytest.raises(ValueError, match="'centre' is not in the cohort"):
        next(GroupColumnKFold("centre").split(X, y))
    with pytest.raises(TypeError, match="DataFrame"):
        next(GroupColumnKFold().split(X.to_numpy(), y))
    with pytest.raises(ValueError, match="Cannot make 20 folds from 10"):
        next(GroupColumnKFold(n_splits=20).split(X, y))
    X.loc[3, "patient_id"] = None
    with pytest.raises(ValueError, match="missing for rows"):
        next(GroupColumnKFold().split(X, y))


def test_signature_steps_and_selection_inside_cv(cohort):
    X, y = cohort
    full = make_signature(make_clinical_preprocessor(), random_state=0)
    assert [n for n, _ in full.steps] == [
        "features",
        "impute",
        "variance",
        "scale",
        "univariate",
        "correlation",
        "lasso",
        "model",
    ]
    plain = make_signature(LesionStats(), LogisticRegression(), select=False)
    assert [n for n, _ in plain.steps] == ["features", "impute", "variance", "scale", "model"]
    union = make_signature({"clinical": make_clinical_preprocessor(), "us": LesionStats()})
    union.fit(X, y)
    names = union["features"].get_feature_names_out()
    assert "area" in names and any(n.startswith("numeric__") for n in names)
    assert union.predict_proba(X).shape == (len(y), 2)
    auc = cross_val_score(
        full, X, y, cv=GroupColumnKFold(n_splits=3, random_state=0), scoring="roc_auc"
    )
    assert auc.mean() > 0.65


def test_signature_with_smote_is_an_imblearn_pipeline(cohort):
    X, y = cohort
    keep = np.r_[np.where(y == 0)[0], np.where(y == 1)[0][:20]]  # 60 negatives, 20 positives
    Xi, yi = X.iloc[keep].reset_index(drop=True), y[keep]
    model = make_signature(
        make_clinical_preprocessor(), LogisticRegression(), sampler=SMOTE(random_state=0)
    )
    assert isinstance(model, ImbPipeline) and "sampler" in model.named_steps
    scores = cross_val_score(
        model, Xi, yi, cv=GroupColumnKFold(n_splits=3, random_state=0), scoring="roc_auc"
    )
    assert np.isfinite(scores).all()
    model.fit(Xi, yi)
    # SMOTE only resamples training data: prediction keeps one row per patient
    assert model.predict_proba(Xi).shape == (len(yi), 2)


class _SpyKFold(GroupColumnKFold):
    """Records the patients of every split it makes (shared list survives deepcopy via class)."""

    log = []

    def split(self, X, y=None, groups=None):
        for train, test in super().split(X, y, groups):
            _SpyKFold.log.append(
                (set(X["patient_id"].iloc[train]), set(X["patient_id"].iloc[test]))
            )
            yield train, test


def _stack(cv):
    return make_post_fusion(
        {
            "clinical": make_signature(
                make_clinical_preprocessor(), LogisticRegression(), select=False
            ),
            "ultrasound": make_signature(LesionStats(), LogisticRegression(), select=False),
        },
        cv=cv,
        random_state=0,
    )


def test_post_fusion_stacks_out_of_fold_probabilities_grouped_by_patient(cohort):
    X, y = cohort
    # every patient appears twice (e.g. two lesions): the inner CV must keep both rows together
    X2 = pd.concat([X, X], ignore_index=True)
    y2 = np.r_[y, y]
    _SpyKFold.log.clear()
    stack = _stack(_SpyKFold(n_splits=3, random_state=0)).fit(X2, y2)
    assert isinstance(stack, StackingClassifier)
    assert _SpyKFold.log, "the inner CV was not used"
    for train, test in _SpyKFold.log:
        assert train.isdisjoint(test)
    # the meta-learner sees one probability per modality model (binary: positive class only)
    assert stack.transform(X).shape == (len(X), 2)
    assert type(stack.final_estimator_).__name__ == "CalibratedClassifierCV"


def test_post_fusion_learns_and_pickles(tmp_path):
    X, y = make_alnm_cohort(
        200, modalities=("clinical", "ultrasound"), image_size=32, random_state=0
    )
    stack = _stack(5)
    assert isinstance(stack.cv, GroupColumnKFold) and stack.cv.n_splits == 5
    proba = cross_val_predict(
        stack, X, y, cv=GroupColumnKFold(n_splits=3, random_state=1), method="predict_proba"
    )
    from sklearn.metrics import roc_auc_score

    fused = roc_auc_score(y, proba[:, 1])
    clinical = make_signature(make_clinical_preprocessor(), LogisticRegression(), select=False)
    alone = cross_val_predict(
        clinical, X, y, cv=GroupColumnKFold(n_splits=3, random_state=1), method="predict_proba"
    )
    # stacking two partly independent modalities beats the better one alone (0.776 vs 0.769)
    assert fused > roc_auc_score(y, alone[:, 1]) > 0.7
    stack.fit(X, y)
    joblib.dump(stack, tmp_path / "stack.joblib")
    np.testing.assert_array_equal(
        joblib.load(tmp_path / "stack.joblib").predict_proba(X), stack.predict_proba(X)
    )


def test_post_fusion_tunes_members_and_checks_input(cohort):
    X, y = cohort
    search = GridSearchCV(
        _stack(3),
        {"clinical__model__C": [0.1, 1.0]},
        cv=GroupColumnKFold(n_splits=3, random_state=0),
        scoring="roc_auc",
    )
    search.fit(X, y)
    assert search.best_params_["clinical__model__C"] in (0.1, 1.0)
    with pytest.raises(ValueError, match="non-empty"):
        make_post_fusion({})
    with pytest.raises(ValueError, match="non-empty"):
        make_signature([])
    single = make_signature([("a", LesionStats())])["features"]
    assert [name for name, _ in single.transformer_list] == ["a"]


# ---------------------------------------------------------------------------- SignatureScores
def _scores(**kwargs):
    from sklearn_alnm.clinical import make_clinical_pipeline
    from sklearn_alnm.fusion import SignatureScores

    image = make_signature(LesionStats(), LogisticRegression(), select=False)
    return SignatureScores([("clinical", make_clinical_pipeline()), ("image", image)], **kwargs)


def test_signature_scores_are_out_of_fold_on_training_and_refit_at_transform(cohort):
    X, y = cohort
    cv = GroupColumnKFold(n_splits=3, random_state=0)
    scores = _scores(cv=cv)
    train = scores.fit_transform(X, y)
    assert train.columns.tolist() == ["clinical_signature", "image_signature"]
    assert train.index.equals(X.index)
    pd.testing.assert_frame_equal(train, scores.training_scores_)
    # the training scores are exactly each signature's cross-validated probabilities
    oof = cross_val_predict(scores.signatures[1][1], X, y, cv=cv, method="predict_proba")[:, 1]
    np.testing.assert_allclose(train["image_signature"], oof)
    # transform scores with the signatures refitted on everything: in-sample, so higher AUC
    from sklearn.metrics import roc_auc_score

    refit = scores.transform(X)
    np.testing.assert_allclose(
        refit["clinical_signature"], scores.named_estimators_["clinical"].predict_proba(X)[:, 1]
    )
    assert roc_auc_score(y, refit["clinical_signature"]) > roc_auc_score(
        y, train["clinical_signature"]
    )
    assert scores.get_feature_names_out().tolist() == train.columns.tolist()


def test_signature_scores_options_labels_and_errors(cohort):
    X, y = cohort
    labels = np.where(y == 1, "N+", "N0")  # sorted: classes_ = ["N+", "N0"]
    with pytest.raises(ValueError, match=r"SignatureScores: .*\['N\+', 'N0'\].*pos_label"):
        _scores(cv=3).fit(X, labels)  # never the probability of "N0" by sorting
    scores = _scores(cv=3, output="logit", passthrough=["age", "er"], random_state=0)
    out = scores.set_params(pos_label="N+").fit_transform(X, labels)
    assert out.columns.tolist() == ["clinical_signature", "image_signature", "age", "er"]
    assert scores.classes_.tolist() == ["N+", "N0"] and scores.pos_label_ == "N+"
    assert out["clinical_signature"].min() < 0 < out["clinical_signature"].max()  # log-odds
    # scores are of pos_label "N+": high for the node-positive patients, as with 0/1 labels
    assert (
        out.loc[labels == "N+", "clinical_signature"].mean()
        > out.loc[labels == "N0", "clinical_signature"].mean()
    )
    numeric = _scores(cv=3, output="logit", passthrough=["age", "er"], random_state=0)
    pd.testing.assert_frame_equal(out, numeric.fit_transform(X, y))
    # nested parameters reach the members
    scores.set_params(clinical__model__C=0.5)
    assert scores.get_params()["clinical__model__C"] == 0.5
    # prefit signatures are used as they are
    fitted = _scores(cv=3, random_state=0).fit(X, y)
    from sklearn_alnm.fusion import SignatureScores

    prefit = SignatureScores(list(fitted.named_estimators_.items()), cv="prefit")
    np.testing.assert_allclose(prefit.fit_transform(X, y), fitted.transform(X))
    with pytest.raises(ValueError, match="not fitted"):
        _scores(cv="prefit").fit(X, y)
    with pytest.raises(ValueError, match="passthrough columns"):
        _scores(passthrough=["nope"]).fit(X, y)
    with pytest.raises(ValueError, match="two classes"):
        _scores().fit(X, np.zeros(len(X)))
    with pytest.raises(TypeError, match="predict_proba"):
        SignatureScores([("bad", make_clinical_preprocessor())]).fit(X, y)
    with pytest.raises(TypeError, match="DataFrame"):
        _scores().fit(X.to_numpy(), y)
    with pytest.raises(ValueError, match="at least one"):
        SignatureScores([]).fit(X, y)


def test_xgboost_composes_with_cohort_routing_and_any_labels(cohort):
    from sklearn.pipeline import make_pipeline
    from xgboost import XGBClassifier

    from sklearn_alnm.clinical import Nomogram, make_clinical_pipeline
    from sklearn_alnm.fusion import SignatureScores

    X, y = cohort
    labels = np.where(y == 1, "N+", "N0")
    xgb = make_clinical_pipeline(XGBClassifier(n_estimators=20, max_depth=2, n_jobs=1))
    image = make_signature(LesionStats(), LogisticRegression(), select=False)
    # post-fusion: StackingClassifier encodes the labels for its members
    stack = make_post_fusion({"clinical": xgb, "image": image}, cv=3, random_state=0)
    proba = stack.fit(X, labels).predict_proba(X)
    assert stack.classes_.tolist() == ["N+", "N0"] and proba.shape == (len(X), 2)
    # a combined model on signature scores: SignatureScores encodes them too
    combined = make_pipeline(
        SignatureScores(
            [("clinical", xgb), ("image", image)], cv=3, random_state=0, pos_label="N+"
        ),
        Nomogram(pos_label="N+"),
    ).fit(X, labels)
    assert combined.classes_.tolist() == ["N+", "N0"]
    score = cross_val_score(
        combined, X, labels, cv=GroupColumnKFold(n_splits=3, random_state=0), scoring="roc_auc"
    )
    assert score.mean() > 0.7
