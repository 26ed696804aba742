"""Signature scores: each modality model's probability as a feature of a combined model."""

from numbers import Integral
from typing import Any, Self

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy.special import logit
from sklearn.base import TransformerMixin, _fit_context, clone
from sklearn.model_selection import check_cv, cross_val_predict
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.metaestimators import _BaseComposition
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from .._typing import ArrayLike, MatrixLike
from ..utils._labels import resolve_pos_label
from ..utils._validation import CohortInputMixin
from ._split import GroupColumnKFold

_EPS = 1e-6


def _fit_one(estimator, X, y):
    return clone(estimator).fit(X, y)


class SignatureScores(CohortInputMixin, TransformerMixin, _BaseComposition):
    """Turn fitted signatures into the score columns of a combined model (e.g. a nomogram).

    Each signature (a classifier reading its own columns of the cohort: the clinical model,
    the deep-learning model, the radiomics model, ...) becomes one numeric column, its
    probability of the positive class (or its logit), optionally beside raw cohort columns
    (``passthrough``). This is the step in front of the studies' combined models: the
    signatures of the training cohort are scored **out of fold** (as
    :class:`~sklearn.ensemble.StackingClassifier` does for its meta-learner), so the combined
    model is not fitted on the signatures' own in-sample, over-optimistic scores. At
    ``transform`` the signatures refitted on the whole training cohort score new patients.

    Unlike ``StackingClassifier`` it is a transformer with named, readable outputs, so a
    :class:`~sklearn_alnm.clinical.Nomogram` (or any classifier) can follow it in a
    ``Pipeline`` and draw one axis per signature and clinical factor.

    Parameters
    ----------
    signatures : list of (str, classifier)
        Named signature models (binary classifiers with ``predict_proba``). Output column
        ``f"{name}_signature"`` holds each one's score.
    cv : int, CV splitter or "prefit", default=5
        Out-of-fold scheme of the training scores. An int is a patient-grouped, stratified
        K-fold over ``group_col`` (:class:`~sklearn_alnm.fusion.GroupColumnKFold`);
        ``"prefit"`` uses already fitted signatures as they are, in-sample.
    output : {"probability", "logit"}, default="probability"
        Score scale: the probability of the positive class (the studies' "DL signature"), or
        its log-odds (linear in a logistic combined model).
    passthrough : list of str, default=None
        Cohort columns copied beside the scores (e.g. clinical factors entering the nomogram
        directly).
    group_col : str or None, default="patient_id"
        Patient id column for the grouped folds of an int ``cv``.
    n_jobs : int, default=None
        Parallel fitting of the signatures (and of the folds inside ``cross_val_predict``).
    random_state : int or None, default=None
        Seed of the folds' shuffling for an int ``cv``.
    pos_label : scalar or None, default=None
        The positive class whose probability every score is (e.g. ``"N+"``). Required unless
        the labels are 0/1, -1/1 or booleans; never guessed from the sorted labels.

    Attributes
    ----------
    estimators_ : list of estimator
        The signatures fitted on the whole training cohort (scoring at ``transform``). They
        are fitted on the labels encoded as 0/1 (1 = ``pos_label_``), as the members of
        :class:`~sklearn.ensemble.StackingClassifier` are, so classifiers that only accept
        encoded labels (``xgboost.XGBClassifier``) work with any label values.
    named_estimators_ : dict
        The same, by name.
    classes_ : ndarray of shape (2,)
        The two labels, sorted.
    pos_label_ : scalar
        The positive class; the scores are its probabilities (or log-odds).
    training_scores_ : pandas.DataFrame
        The out-of-fold scores of the training cohort (what ``fit_transform`` returned,
        without passthrough columns).
    feature_names_in_ : ndarray of str
        Columns of the cohort seen in ``fit``.
    n_features_in_ : int
        Their number.

    See Also
    --------
    make_post_fusion : Probability stacking with a classifier as meta-learner.
    sklearn_alnm.clinical.Nomogram : The combined model drawn as a points chart.

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn_alnm.clinical import Nomogram, make_clinical_pipeline
    >>> from sklearn_alnm.datasets import make_alnm_cohort
    >>> from sklearn_alnm.fusion import SignatureScores
    >>> X, y = make_alnm_cohort(120, modalities=("clinical",), random_state=0)
    >>> scores = SignatureScores(
    ...     [("clinical", make_clinical_pipeline()),
    ...      ("size", make_clinical_pipeline(numeric=["tumor_size_mm"], categorical=[]))],
    ...     passthrough=["age"], random_state=0)
    >>> scores.fit_transform(X, y).columns.tolist()
    ['clinical_signature', 'size_signature', 'age']
    >>> model = make_pipeline(scores, Nomogram()).fit(X, y)
    >>> model[-1].variables_
    ['clinical_signature', 'size_signature', 'age']
    """

    _parameter_constraints: dict = {
        "signatures": [list],
        "cv": [Interval(Integral, 2, None, closed="left"), "cv_object", StrOptions({"prefit"})],
        "output": [StrOptions({"probability", "logit"})],
        "passthrough": [list, None],
        "group_col": [str, None],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "pos_label": "no_validation",
    }

    def __init__(
        self,
        signatures,
        *,
        cv=5,
        output="probability",
        passthrough=None,
        group_col="patient_id",
        n_jobs=None,
        random_state=None,
        pos_label=None,
    ):
        self.signatures = signatures
        self.cv = cv
        self.output = output
        self.passthrough = passthrough
        self.group_col = group_col
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.pos_label = pos_label

    # -- nested parameters (signatures__clinical__C, ...) as in sklearn's compositions
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return self._get_params("signatures", deep=deep)

    def set_params(self, **params: Any) -> Self:
        self._set_params("signatures", **params)
        return self

    def _check_signatures(self):
        if not self.signatures:
            raise ValueError("signatures must name at least one (name, classifier) pair.")
        names, models = zip(*self.signatures, strict=True)
        self._validate_names(names)
        for name, model in zip(names, models, strict=True):
            if not hasattr(model, "predict_proba"):
                raise TypeError(
                    f"signature {name!r} must be a classifier with predict_proba; got "
                    f"{type(model).__name__}."
                )
        return list(names), list(models)

    def _check_frame(self, X):
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"SignatureScores reads a cohort DataFrame; got {type(X).__name__}.")
        missing = [c for c in (self.passthrough or []) if c not in X.columns]
        if missing:
            raise ValueError(
                f"passthrough columns {missing} are not in the cohort; it has {list(X.columns)}."
            )

    def fit(self, X: MatrixLike, y: ArrayLike) -> Self:
        """Fit the signatures on the whole cohort (and score it out of fold).

        Parameters
        ----------
        X : pandas.DataFrame
            The cohort.
        y : array-like of shape (n_samples,)
            Binary labels.

        Returns
        -------
        self : SignatureScores
        """
        self.fit_transform(X, y)
        return self

    @_fit_context(prefer_skip_nested_validation=False)
    def fit_transform(self, X: MatrixLike, y: ArrayLike) -> pd.DataFrame | np.ndarray:
        """Fit, and return the training cohort's out-of-fold scores.

        Parameters
        ----------
        X : pandas.DataFrame
            The cohort.
        y : array-like of shape (n_samples,)
            Binary labels.

        Returns
        -------
        pandas.DataFrame
            One ``<name>_signature`` column per signature, then the passthrough columns,
            indexed like ``X``.
        """
        names, models = self._check_signatures()
        self._check_frame(X)
        y = np.asarray(y)
        check_classification_targets(y)
        classes = np.unique(y)
        if classes.size != 2:
            raise ValueError(f"SignatureScores needs two classes in y; got {classes.tolist()}.")
        self.classes_ = classes
        self.pos_label_ = resolve_pos_label(classes, self.pos_label, owner="SignatureScores")
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        if self.cv == "prefit":
            for name, model in zip(names, models, strict=True):
                check_is_fitted(model, msg=f"signature {name!r} is not fitted (cv='prefit').")
            self.estimators_ = list(models)
            self._positive_label = self.pos_label_
            scores = [self._positive(m.predict_proba(X), m) for m in self.estimators_]
        else:
            cv = self.cv
            if isinstance(cv, Integral):
                cv = GroupColumnKFold(self.group_col, n_splits=cv, random_state=self.random_state)
            cv = check_cv(cv, y, classifier=True)
            # the signatures learn 0/1 (as StackingClassifier's members do), so models that
            # only accept encoded labels (XGBoost) work with any label values
            y_encoded = (y == self.pos_label_).astype(np.int64)
            self._positive_label = 1
            self.estimators_ = Parallel(n_jobs=self.n_jobs)(
                delayed(_fit_one)(m, X, y_encoded) for m in models
            )
            scores = []
            for model, fitted in zip(models, self.estimators_, strict=True):
                proba = cross_val_predict(
                    clone(model), X, y_encoded, cv=cv, method="predict_proba", n_jobs=self.n_jobs
                )
                scores.append(self._positive(proba, fitted))
        self.named_estimators_ = dict(zip(names, self.estimators_, strict=True))
        self.training_scores_ = self._frame(scores, X.index)
        return self._with_passthrough(self.training_scores_, X)

    def transform(self, X: MatrixLike) -> pd.DataFrame | np.ndarray:
        """Score a cohort with the signatures fitted on the whole training cohort.

        Parameters
        ----------
        X : pandas.DataFrame
            The cohort.

        Returns
        -------
        pandas.DataFrame
            As :meth:`fit_transform`.
        """
        check_is_fitted(self)
        self._check_frame(X)
        scores = [self._positive(m.predict_proba(X), m) for m in self.estimators_]
        return self._with_passthrough(self._frame(scores, X.index), X)

    def _positive(self, proba, model):
        classes = getattr(model, "classes_", [0, 1])
        column = int(np.flatnonzero(np.asarray(classes) == self._positive_label)[0])
        p = np.asarray(proba, dtype=float)[:, column]
        if self.output == "logit":
            p = logit(np.clip(p, _EPS, 1 - _EPS))
        return p

    def _frame(self, scores, index):
        return pd.DataFrame(np.column_stack(scores), index=index, columns=self._score_names())

    def _score_names(self):
        return [f"{name}_signature" for name, _ in self.signatures]

    def _with_passthrough(self, scores, X):
        if not self.passthrough:
            return scores
        return pd.concat([scores, X[list(self.passthrough)]], axis=1)

    def get_feature_names_out(self, input_features: ArrayLike | None = None) -> np.ndarray:
        """The output column names: the signature scores, then the passthrough columns.

        Parameters
        ----------
        input_features : ignored

        Returns
        -------
        ndarray of str
        """
        check_is_fitted(self)
        return np.asarray([*self._score_names(), *(self.passthrough or [])], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags
