"""LASSO selection: L1-penalised model with the penalty chosen by cross-validation."""

import warnings
from numbers import Integral, Real
from typing import Self

import numpy as np
from scipy.stats import rankdata
from sklearn.base import BaseEstimator, _fit_context
from sklearn.feature_selection import SelectorMixin
from sklearn.linear_model import Lasso, LassoCV, LogisticRegression, LogisticRegressionCV
from sklearn.metrics import get_scorer_names
from sklearn.model_selection import StratifiedKFold, check_cv
from sklearn.preprocessing import StandardScaler
from sklearn.svm import l1_min_c
from sklearn.utils import ClassifierTags
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from .._typing import ArrayLike, MatrixLike
from ._base import _check_binary_target, _first_path_feature, _input_feature_names


def _roc_auc_scorer(estimator, X, y):
    """ROC AUC of ``estimator.decision_function(X)`` against a 0/1 ``y``.

    Equal to :func:`sklearn.metrics.roc_auc_score` (the Mann-Whitney form with mid-ranks for
    ties, :math:`AUC = (R_1 - n_1 (n_1 + 1) / 2) / (n_1 n_0)`, with :math:`R_1` the rank
    sum of the positives), without its per-call input checks, which dominate the cost of
    ``LogisticRegressionCV`` on radiomics-sized data (one call per fold and ``C``).
    """
    y = np.asarray(y)
    n_pos = int(np.sum(y == 1))
    n_neg = y.shape[0] - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(
            "A validation fold of the LASSO cross-validation holds a single class, so its "
            "ROC AUC is undefined; use fewer folds (cv) or a stratified splitter."
        )
    ranks = rankdata(estimator.decision_function(X))
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _l1_logistic_parameters(cv_model):
    """Keyword arguments that make a logistic model a pure L1 (lasso) model.

    scikit-learn 1.8 replaced ``penalty="l1"`` by ``l1_ratio(s)=1`` (and deprecated the
    former); older versions only know ``penalty``.
    """
    new_api = "use_legacy_attributes" in LogisticRegressionCV().get_params()
    if not new_api:
        return {"penalty": "l1"}
    if cv_model:
        return {"l1_ratios": (1.0,), "use_legacy_attributes": False}
    return {"l1_ratio": 1.0}


def _choose_penalty(scores, strength, rule):
    """Index of the chosen penalty from per-fold scores (higher is better).

    ``scores`` has shape (n_penalties, n_folds); ``strength`` orders the penalties (larger
    = stronger penalty, sparser model). ``"min"`` takes the best mean score (ties: the
    stronger penalty); ``"1se"`` the strongest penalty whose mean score is within one
    standard error (fold standard deviation / sqrt(n_folds)) of the best.
    """
    mean = scores.mean(axis=1)
    by_strength = np.argsort(-strength, kind="stable")
    best = by_strength[int(np.argmax(mean[by_strength]))]
    if rule == "min":
        return int(best)
    n_folds = scores.shape[1]
    se = scores[best].std(ddof=1) / np.sqrt(n_folds) if n_folds > 1 else 0.0
    within = np.flatnonzero(mean >= mean[best] - se)
    return int(within[np.argmax(strength[within])])


class LassoSelector(SelectorMixin, BaseEstimator):
    """Keep the features with a nonzero coefficient in a cross-validated LASSO model.

    The last selection step of the radiomics signature: an L1-penalised model is fitted
    for a grid of penalties, the penalty is chosen by cross-validation on the training
    data, the model is refitted on all training data at that penalty, and the features
    whose coefficient is nonzero form the signature.

    - ``estimator="logistic"`` (default; LASSO logistic regression, as glmnet's binomial
      family in the clinical papers): the cross-validation curve comes from
      :class:`~sklearn.linear_model.LogisticRegressionCV` with a pure L1 penalty, scored by
      ``scoring`` (ROC AUC by default) over stratified folds; the final model is an L1
      :class:`~sklearn.linear_model.LogisticRegression` at the chosen ``C``.
    - ``estimator="linear"``: :class:`~sklearn.linear_model.LassoCV` on the 0/1-coded label
      (least-squares LASSO) scored by mean squared error over the same stratified folds;
      the final model is a :class:`~sklearn.linear_model.Lasso` at the chosen ``alpha``.

    ``rule`` picks the penalty from the cross-validation curve as glmnet does: ``"min"``
    the best mean score (``lambda.min``), ``"1se"`` the strongest penalty whose mean score
    is within one standard error of the best (``lambda.1se``; fewer noise features).

    With ``standardize=True`` (default) the model is fitted on the features standardised
    with the training mean and standard deviation, so that the penalty treats every feature
    alike whatever its unit and ``coef_`` compares features; in the study pipeline the
    features are already z-scored, where this changes nothing. Set it to ``False`` only for
    inputs already on a common scale.

    If the selected penalty leaves no coefficient above ``threshold``, the selector keeps
    the single feature that enters the L1 path first, the largest
    :math:`|\\sum_i (x_{ij} - \\bar x_j)(y_i - \\bar y)|` on the features the model sees
    (with ``standardize=True``: the largest absolute point-biserial correlation with the
    label), and warns: the selection is never empty.

    Missing values are rejected (``ValueError``): impute before selection.

    Parameters
    ----------
    estimator : {"logistic", "linear"}, default="logistic"
        The L1 model (see above).
    cv : int, cross-validation generator or iterable, default=5
        Folds used to choose the penalty; an integer means that many stratified,
        unshuffled folds (pass e.g. ``StratifiedKFold(5, shuffle=True, random_state=0)``
        for shuffled ones).
    Cs : int or array-like, default=20
        ``estimator="logistic"``: candidate inverse penalties ``C``, or their number. An
        integer gives glmnet's default path: ``Cs`` values evenly spaced on a log scale
        from the smallest ``C`` with a nonempty model (:func:`~sklearn.svm.l1_min_c`) to
        1e4 times that (1e2 when there are fewer samples than features). Unused by
        ``"linear"``.
    alphas : int or array-like, default=100
        ``estimator="linear"``: candidate penalties ``alpha``, or their number along the
        lasso path. Unused by ``"logistic"``.
    scoring : str or callable, default="roc_auc"
        ``estimator="logistic"``: score maximised by the choice of ``C`` (a scikit-learn
        scorer name or callable). ``"linear"`` always uses the mean squared error.
        ``"roc_auc"`` is computed by the rank (Mann-Whitney) formula, equal to
        :func:`~sklearn.metrics.roc_auc_score` but much faster; a validation fold holding
        a single class raises a ``ValueError`` instead of scoring NaN.
    rule : {"min", "1se"}, default="min"
        How the penalty is chosen from the cross-validation curve (see above). Ties go to
        the stronger penalty.
    solver : {"liblinear", "saga"}, default="liblinear"
        Solver of the logistic model.
    standardize : bool, default=True
        Standardise the features before fitting the model (see above).
    max_iter : int, default=1000
        Largest number of solver iterations.
    tol : float, default=1e-4
        Solver tolerance.
    threshold : float, default=1e-10
        A feature is kept when its absolute coefficient is above this.
    random_state : int, RandomState instance or None, default=None
        Seed of the solver's data shuffling (``"liblinear"`` and ``"saga"``); the folds of
        an integer ``cv`` are not shuffled.
    n_jobs : int or None, default=None
        Number of jobs for the cross-validation.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        Coefficients of the final model, on the standardised scale when
        ``standardize=True``.
    intercept_ : float
        Intercept of the final model.
    C_ : float or None
        Chosen inverse penalty (``estimator="logistic"``; otherwise ``None``).
    alpha_ : float or None
        Chosen penalty (``estimator="linear"``; otherwise ``None``).
    penalties_ : ndarray of shape (n_penalties,)
        The candidate ``C`` (logistic) or ``alpha`` (linear) values.
    cv_scores_ : ndarray of shape (n_penalties, n_folds)
        Validation score of each candidate on each fold: ``scoring`` for the logistic
        model, the negative mean squared error for the linear one (higher is better).
    estimator_ : LogisticRegression or Lasso
        The final L1 model refitted on all training data at the chosen penalty (on the
        standardised features when ``standardize=True``).
    cv_estimator_ : LogisticRegressionCV or LassoCV
        The fitted cross-validation model, with the per-fold coefficient paths.
    n_iter_ : int
        Number of solver iterations of the final model; compare with ``max_iter``.
    scaler_ : StandardScaler or None
        The fitted scaler, when ``standardize=True``.
    support_ : ndarray of shape (n_features,), dtype=bool
        The selected features.
    classes_ : ndarray of shape (2,)
        The two labels; ``classes_[1]`` is the positive class (coded 1 for the model).
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during ``fit``. Defined only when `X` has feature names
        that are all strings.

    See Also
    --------
    UnivariateFilter : First step: univariate tests against the label.
    CorrelationFilter : Second step: drop one feature of each highly correlated pair.
    sklearn.feature_selection.SelectFromModel : Generic selection by a model's weights.

    References
    ----------
    .. [1] R. Tibshirani, "Regression shrinkage and selection via the lasso", J. R. Statist.
       Soc. B 58(1):267-288, 1996.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_alnm.feature_selection import LassoSelector
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 8))
    >>> y = (X[:, 0] - X[:, 1] + 0.5 * rng.normal(size=200) > 0).astype(int)
    >>> selector = LassoSelector(random_state=0).fit(X, y)
    >>> selector.get_support().tolist()
    [True, True, False, False, False, False, False, False]
    >>> selector.coef_.round(1).tolist()
    [1.6, -1.7, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    """

    _parameter_constraints: dict = {
        "estimator": [StrOptions({"logistic", "linear"})],
        "cv": ["cv_object"],
        "Cs": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "alphas": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "scoring": [StrOptions(set(get_scorer_names())), callable],
        "solver": [StrOptions({"liblinear", "saga"})],
        "standardize": ["boolean"],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "rule": [StrOptions({"min", "1se"})],
        "threshold": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "n_jobs": [Integral, None],
    }

    def __init__(
        self,
        estimator="logistic",
        *,
        cv=5,
        Cs=20,
        alphas=100,
        scoring="roc_auc",
        rule="min",
        solver="liblinear",
        standardize=True,
        max_iter=1000,
        tol=1e-4,
        threshold=1e-10,
        random_state=None,
        n_jobs=None,
    ):
        self.estimator = estimator
        self.cv = cv
        self.Cs = Cs
        self.alphas = alphas
        self.scoring = scoring
        self.rule = rule
        self.solver = solver
        self.standardize = standardize
        self.max_iter = max_iter
        self.tol = tol
        self.threshold = threshold
        self.random_state = random_state
        self.n_jobs = n_jobs

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: MatrixLike, y: ArrayLike) -> Self:
        """Fit the cross-validated L1 model and select the features with nonzero weight.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Numeric training features, no missing values.
        y : array-like of shape (n_samples,)
            Binary label (any two values).

        Returns
        -------
        self : LassoSelector
            The fitted selector.

        Raises
        ------
        ValueError
            For missing or infinite values, a target that is not binary, or (logistic model
            with stratified folds) fewer samples of a class than folds.
        """
        X, y = validate_data(self, X, y, dtype=np.float64, ensure_min_samples=2)
        self.classes_, y01 = _check_binary_target(y, type(self).__name__)
        if self.standardize:
            self.scaler_ = StandardScaler().fit(X)
            X_model = self.scaler_.transform(X)
        else:
            self.scaler_ = None
            X_model = X
        cv = check_cv(self.cv, y01, classifier=True)
        if self.estimator == "logistic" and isinstance(cv, StratifiedKFold):
            counts = np.bincount(y01, minlength=2)
            if counts.min() < cv.n_splits:
                rare = self.classes_[int(np.argmin(counts))]
                raise ValueError(
                    f"{type(self).__name__} chooses C on {cv.n_splits} stratified folds, which "
                    f"needs at least {cv.n_splits} samples of each class so that every "
                    f"validation fold holds both; class {rare!r} has {counts.min()}. Use "
                    "fewer folds (cv)."
                )
        if self.estimator == "logistic":
            Cs = self.Cs
            if isinstance(Cs, Integral) and np.any(np.ptp(X_model, axis=0) > 0):
                # glmnet's default path: from the empty model to lambda.min.ratio times
                # its penalty (1e-4, or 1e-2 with fewer samples than features).
                ratio = 1e4 if X_model.shape[0] >= X_model.shape[1] else 1e2
                c_min = l1_min_c(X_model, y01, loss="log")
                Cs = c_min * np.logspace(0.0, np.log10(ratio), Cs)
            # (Without any varying feature every C gives the empty model; an integer Cs
            # then means LogisticRegressionCV's own grid, 1e-4 to 1e4.)
            cv_model = LogisticRegressionCV(
                Cs=Cs,
                cv=cv,
                scoring=_roc_auc_scorer if self.scoring == "roc_auc" else self.scoring,
                solver=self.solver,
                max_iter=self.max_iter,
                tol=self.tol,
                random_state=self.random_state,
                n_jobs=self.n_jobs,
                refit=False,
                **_l1_logistic_parameters(cv_model=True),
            ).fit(X_model, y01)
            scores = cv_model.scores_
            if isinstance(scores, dict):  # scikit-learn < 1.8
                scores = next(iter(scores.values()))
            scores = np.asarray(scores).reshape(scores.shape[0], -1).T
            penalties = np.asarray(cv_model.Cs_, dtype=float)
            chosen = _choose_penalty(scores, -penalties, self.rule)
            self.C_ = float(penalties[chosen])
            self.alpha_ = None
            model = LogisticRegression(
                C=self.C_,
                solver=self.solver,
                max_iter=self.max_iter,
                tol=self.tol,
                random_state=self.random_state,
                **_l1_logistic_parameters(cv_model=False),
            ).fit(X_model, y01)
        else:
            cv_model = LassoCV(
                alphas=self.alphas,
                cv=cv,
                max_iter=self.max_iter,
                tol=self.tol,
                random_state=self.random_state,
                n_jobs=self.n_jobs,
            ).fit(X_model, y01.astype(np.float64))
            penalties = np.asarray(cv_model.alphas_, dtype=float)
            scores = -np.asarray(cv_model.mse_path_).reshape(penalties.shape[0], -1)
            chosen = _choose_penalty(scores, penalties, self.rule)
            self.C_ = None
            self.alpha_ = float(penalties[chosen])
            model = Lasso(
                alpha=self.alpha_,
                max_iter=self.max_iter,
                tol=self.tol,
                random_state=self.random_state,
            ).fit(X_model, y01.astype(np.float64))
        self.cv_estimator_ = cv_model
        self.penalties_ = penalties
        self.cv_scores_ = scores
        self.estimator_ = model
        self.coef_ = np.ravel(model.coef_).astype(np.float64)
        self.intercept_ = float(np.ravel(model.intercept_)[0])
        self.n_iter_ = int(np.max(model.n_iter_))

        support = np.abs(self.coef_) > self.threshold
        if not support.any():
            best = _first_path_feature(X_model, y01)
            support[best] = True
            penalty = f"C = {self.C_:.3g}" if self.C_ is not None else f"alpha = {self.alpha_:.3g}"
            warnings.warn(
                f"The cross-validated LASSO ({penalty}) kept no feature; keeping "
                f"{_input_feature_names(self)[best]!r}, the first feature to enter the L1 "
                "path (largest absolute correlation with the label).",
                UserWarning,
                stacklevel=3,
            )
        self.support_ = support
        return self

    def _get_support_mask(self):
        check_is_fitted(self)
        return self.support_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        # Binary targets only: scikit-learn's common checks read this tag to build a
        # two-class y, as they do for binary-only classifiers.
        tags.classifier_tags = ClassifierTags(multi_class=False)
        return tags
