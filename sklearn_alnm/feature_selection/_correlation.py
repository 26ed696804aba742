"""Correlation filter: drop one feature of every highly correlated pair."""

from numbers import Real
from typing import Self

import numpy as np
from scipy.stats import rankdata
from sklearn.base import BaseEstimator, _fit_context
from sklearn.feature_selection import SelectorMixin
from sklearn.utils import ClassifierTags
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from .._typing import ArrayLike, MatrixLike
from ._base import _check_binary_target, _input_feature_names


def _correlation_matrix(X, method):
    """Pearson or Spearman correlation matrix; NaN rows / columns for constant features."""
    if method == "spearman":
        X = rankdata(X, axis=0)
    constant = np.ptp(X, axis=0) == 0
    Z = X - X.mean(axis=0)
    norm = np.sqrt(np.sum(Z**2, axis=0))
    norm[constant] = 1.0
    Z = Z / norm
    R = np.clip(Z.T @ Z, -1.0, 1.0)
    np.fill_diagonal(R, 1.0)
    R[constant, :] = np.nan
    R[:, constant] = np.nan
    return R


def _feature_auc(X, y01):
    """AUC of each feature for the positive class (Mann-Whitney U / (n1 n0), mid-ranks)."""
    ranks = rankdata(X, axis=0)
    n1 = int(y01.sum())
    n0 = y01.shape[0] - n1
    rank_sum = ranks[y01 == 1].sum(axis=0)
    return (rank_sum - n1 * (n1 + 1) / 2.0) / (n1 * n0)


class CorrelationFilter(SelectorMixin, BaseEstimator):
    """Drop one feature of each pair whose absolute correlation exceeds ``threshold``.

    The redundancy step of the radiomics signature: radiomics and deep features come in
    families of near-duplicates (the same texture at several distances, the same channel
    after different filters), and of each highly correlated pair only one is kept.

    Algorithm (greedy and deterministic):

    1. compute the Pearson or Spearman correlation matrix :math:`R` of the features;
    2. with a label ``y``, rank the features by their association with it, the distance
       :math:`|AUC_j - 0.5|` of the feature's AUC (the Mann-Whitney U statistic scaled to
       [0, 1]; rank-based, so unchanged by monotone transforms, and the effect size of the
       Mann-Whitney test of :class:`UnivariateFilter`), most associated first, ties in column
       order. Without a label (``y=None``) the features are visited in column order;
    3. visit the features in that order and keep a feature unless
       :math:`|R_{jk}| > threshold` for a feature :math:`k` already kept.

    Hence of a correlated pair the feature more associated with the label survives, the
    result does not depend on the column order (except for exact ties), and no two kept
    features are correlated above the threshold.

    A feature constant over the training samples has no defined correlation: its row and
    column of ``correlation_`` are NaN, it counts as uncorrelated with every other feature
    and is kept (remove constant features with
    :class:`~sklearn.feature_selection.VarianceThreshold` or :class:`UnivariateFilter`).
    Missing values are rejected (``ValueError``): impute before selection.

    Parameters
    ----------
    threshold : float, default=0.75
        Largest absolute correlation allowed between two kept features.
    method : {"pearson", "spearman"}, default="pearson"
        Correlation coefficient: Pearson's on the values or Spearman's on the ranks.

    Attributes
    ----------
    correlation_ : ndarray of shape (n_features, n_features)
        Correlation matrix of the training features (NaN rows / columns for constant
        features).
    auc_ : ndarray of shape (n_features,) or None
        AUC of each feature for the positive class ``classes_[1]``; ``None`` when fitted
        without a label.
    order_ : ndarray of shape (n_features,)
        The order in which the features were visited.
    dropped_pairs_ : list of tuple
        One ``(dropped feature, kept feature, r)`` per dropped feature: the already kept
        feature with the largest absolute correlation with it, and that correlation.
    support_ : ndarray of shape (n_features,), dtype=bool
        The selected features.
    classes_ : ndarray of shape (2,) or None
        The two labels; ``None`` when fitted without a label.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during ``fit``. Defined only when `X` has feature names
        that are all strings.

    See Also
    --------
    UnivariateFilter : The step before: univariate tests against the label.
    LassoSelector : The step after: L1-penalised model with cross-validated penalty.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from sklearn_alnm.feature_selection import CorrelationFilter
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], 50)
    >>> signal = rng.normal(size=100) + y
    >>> X = pd.DataFrame({
    ...     "glcm_contrast_d1": signal + 0.3 * rng.normal(size=100),
    ...     "glcm_contrast_d2": signal,   # same texture, the cleaner copy
    ...     "shape_sphericity": rng.normal(size=100),
    ... })
    >>> selector = CorrelationFilter(threshold=0.75).fit(X, y)
    >>> selector.get_feature_names_out().tolist()
    ['glcm_contrast_d2', 'shape_sphericity']
    >>> [(dropped, kept) for dropped, kept, r in selector.dropped_pairs_]
    [('glcm_contrast_d1', 'glcm_contrast_d2')]
    """

    _parameter_constraints: dict = {
        "threshold": [Interval(Real, 0, 1, closed="both")],
        "method": [StrOptions({"pearson", "spearman"})],
    }

    def __init__(self, threshold=0.75, *, method="pearson"):
        self.threshold = threshold
        self.method = method

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: MatrixLike, y: ArrayLike | None = None) -> Self:
        """Compute the correlation matrix and select the features.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Numeric training features, no missing values.
        y : array-like of shape (n_samples,), default=None
            Binary label (any two values) used to decide which feature of a correlated
            pair to keep; ``None`` keeps the earlier column.

        Returns
        -------
        self : CorrelationFilter
            The fitted filter.

        Raises
        ------
        ValueError
            For missing or infinite values, fewer than two samples or a target that is not
            binary.
        """
        if y is None:
            X = validate_data(self, X, dtype=np.float64, ensure_min_samples=2)
            self.classes_ = None
            self.auc_ = None
            order = np.arange(X.shape[1])
        else:
            X, y = validate_data(self, X, y, dtype=np.float64, ensure_min_samples=2)
            self.classes_, y01 = _check_binary_target(y, type(self).__name__)
            self.auc_ = _feature_auc(X, y01)
            order = np.argsort(-np.abs(self.auc_ - 0.5), kind="stable")
        names = _input_feature_names(self)
        R = _correlation_matrix(X, self.method)
        absolute = np.nan_to_num(np.abs(R), nan=0.0)

        support = np.zeros(X.shape[1], dtype=bool)
        kept = []
        dropped_pairs = []
        for j in order:
            if kept:
                r_kept = absolute[j, kept]
                closest = int(np.argmax(r_kept))
                if r_kept[closest] > self.threshold:
                    k = kept[closest]
                    dropped_pairs.append((names[j], names[k], float(R[j, k])))
                    continue
            kept.append(j)
            support[j] = True
        self.correlation_ = R
        self.order_ = order
        self.dropped_pairs_ = dropped_pairs
        self.support_ = support
        return self

    def _get_support_mask(self):
        check_is_fitted(self)
        return self.support_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        # A label, when given, must be binary: scikit-learn's common checks read this tag
        # to build a two-class y, as they do for binary-only classifiers.
        tags.classifier_tags = ClassifierTags(multi_class=False)
        return tags
