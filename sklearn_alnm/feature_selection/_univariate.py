"""Univariate filter: keep the features associated with a binary label at p < alpha."""

import warnings
from numbers import Integral, Real
from typing import Self

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import BaseEstimator, _fit_context
from sklearn.feature_selection import SelectorMixin
from sklearn.utils import ClassifierTags
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from .._typing import ArrayLike, MatrixLike
from ..utils import column_mask
from ._base import _check_binary_target, _input_feature_names
from ._fisher import _EnumerationBudgetExceeded, fisher_exact_2xk


def _adjust_pvalues(pvalues, method):
    """Multiple-testing adjustment of ``pvalues`` (``None``, ``"fdr_bh"``, ``"bonferroni"``).

    Bonferroni: :math:`\\tilde p_j = \\min(1, m p_j)`. Benjamini-Hochberg: with the p-values
    sorted increasingly, :math:`\\tilde p_{(i)} = \\min_{k \\ge i} \\min(1, m p_{(k)} / k)`
    (R ``p.adjust(method = "BH")``).
    """
    pvalues = np.asarray(pvalues, dtype=float)
    m = pvalues.shape[0]
    if method is None or m == 0:
        return pvalues.copy()
    if method == "bonferroni":
        return np.minimum(1.0, pvalues * m)
    order = np.argsort(pvalues, kind="stable")
    scaled = pvalues[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(scaled[::-1])[::-1]
    result = np.empty(m)
    result[order] = np.minimum(1.0, adjusted)
    return result


def _is_number(value):
    return isinstance(value, (bool, int, float, np.bool_, np.number)) and not isinstance(
        value, (complex, np.complexfloating)
    )


def _encode_column(values, name):
    """Split an input column into ``(numeric values or None, category codes or None)``.

    Numeric columns return float values; columns holding labels (strings, or a mixture of
    numbers and strings) return only category codes and can only be tested as categorical.
    """
    if values.dtype != object:
        return values.astype(float), None
    if all(_is_number(v) for v in values):
        return values.astype(float), None
    for v in values:
        if not (_is_number(v) or isinstance(v, str)):
            raise TypeError(
                f"Feature {name!r} holds a value of type {type(v).__name__}; each argument "
                "must be a string or a number (numbers for continuous features, numbers or "
                "strings for categorical ones)."
            )
    return None, pd.factorize(values.astype(str), sort=True)[0]


def _is_integer_valued(x):
    return bool(np.all(np.isfinite(x)) and np.all(x == np.round(x)))


class UnivariateFilter(SelectorMixin, BaseEstimator):
    """Keep the features whose univariate association with a binary label has p < alpha.

    The first statistical filter of the radiomics signature: each feature is tested on its
    own against the label (e.g. node-positive vs node-negative), and the features with a
    p-value below ``alpha`` go on to the correlation filter and the LASSO. Continuous and
    categorical features get the tests used in the clinical papers:

    Continuous features
        ``"auto"`` checks normality with the Shapiro-Wilk test within each class
        (:func:`scipy.stats.shapiro`); when neither class departs from normality at level
        ``normality_alpha`` it uses Welch's unequal-variances t-test
        (:func:`scipy.stats.ttest_ind` with ``equal_var=False``), otherwise the two-sided
        Mann-Whitney U test (:func:`scipy.stats.mannwhitneyu`, ``method="auto"``: exact for
        small samples without ties, else the normal approximation with continuity
        correction). A class with fewer than 3 samples, or without variation, counts as not
        normal. ``"ttest"`` / ``"mannwhitney"`` force one test; where a t-test is undefined
        (a class with fewer than 2 samples, or no variation within either class) the
        Mann-Whitney test is used for that feature instead, and ``tests_`` says so.
    Categorical features
        The 2 x k contingency table of label against level. ``"auto"`` uses Pearson's
        chi-square test of independence (:func:`scipy.stats.chi2_contingency`, with Yates'
        continuity correction for 2 x 2 tables, as R's ``chisq.test``) unless an expected
        count is below 5, in which case it uses Fisher's exact test. Fisher's test is
        :func:`scipy.stats.fisher_exact` for 2 x 2 tables and an exact enumeration of the
        2 x k tables with the observed margins for larger ones (the two-sided p-value of R's
        ``fisher.test``; SciPy only samples such tables at random). Should a very large
        sparse table exceed the enumeration budget, the chi-square test is used with a
        warning. ``"chi2"`` / ``"fisher"`` force one test.

    A feature that is constant over the training samples is not tested: its p-value is 1
    and ``tests_`` records ``"constant"``. If no feature reaches ``alpha``, the feature with
    the smallest p-value is kept and a warning is issued, so the selection is never empty.

    Missing values are rejected (``ValueError``): impute before selection, inside the same
    pipeline.

    Parameters
    ----------
    alpha : float, default=0.05
        Keep the features with (adjusted) p-value strictly below ``alpha``.
    continuous_test : {"auto", "mannwhitney", "ttest"}, default="auto"
        Test for continuous features (see above).
    categorical_test : {"auto", "chi2", "fisher"}, default="auto"
        Test for categorical features (see above).
    categorical_features : "auto", None or array-like, default="auto"
        Which features are categorical:

        - ``"auto"``: columns of ``bool`` or ``category`` dtype, columns holding strings,
          and numeric columns that are integer-valued with at most ``max_categories``
          distinct values (e.g. ER status 0/1, grade 1-3, BI-RADS 3-5);
        - ``None``: no feature is categorical;
        - a boolean mask of shape ``(n_features,)``, integer column indices, or column
          names (for DataFrame input).

        Integer coding is lost after standardisation: when a ``StandardScaler`` precedes this
        filter, ``"auto"`` sees every column as continuous, so name the categorical
        features explicitly (or scale only the continuous ones).
    max_categories : int, default=10
        Largest number of distinct values of an integer-valued numeric column that
        ``categorical_features="auto"`` still treats as categorical.
    normality_alpha : float, default=0.05
        Significance level of the Shapiro-Wilk test used by ``continuous_test="auto"``.
    correction : {None, "fdr_bh", "bonferroni"}, default=None
        Multiple-testing adjustment of the p-values before they are compared with
        ``alpha``: Benjamini-Hochberg false discovery rate or Bonferroni. ``None`` (the
        studies' choice) compares the raw p-values.

    Attributes
    ----------
    pvalues_ : ndarray of shape (n_features,)
        Raw p-value of each feature (1 for constant features).
    pvalues_adjusted_ : ndarray of shape (n_features,)
        p-values after ``correction`` (equal to ``pvalues_`` when it is ``None``); these are
        compared with ``alpha``.
    statistics_ : ndarray of shape (n_features,)
        The test statistic, as SciPy reports it: Welch's t (positive class minus negative
        class), the Mann-Whitney U of the positive class (``U / (n_1 n_0)`` is the AUC of the
        feature), the chi-square statistic, the odds ratio of the 2 x 2 table (rows:
        ``classes_``; columns: the sorted levels) for Fisher's test, or the null probability
        of the observed table for Fisher's test on larger tables. NaN for constant features.
    tests_ : ndarray of shape (n_features,), dtype=object
        The test used for each feature: ``"ttest"``, ``"mannwhitney"``, ``"chi2"``,
        ``"fisher"`` or ``"constant"``.
    categorical_ : ndarray of shape (n_features,), dtype=bool
        Which features were treated as categorical.
    support_ : ndarray of shape (n_features,), dtype=bool
        The selected features.
    classes_ : ndarray of shape (2,)
        The two labels; ``classes_[1]`` is the positive class.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during ``fit``. Defined only when `X` has feature names
        that are all strings.

    See Also
    --------
    CorrelationFilter : The next step: drop one feature of each highly correlated pair.
    LassoSelector : The last step: L1-penalised model with cross-validated penalty.
    sklearn.feature_selection.SelectFpr : F-test / chi2 filter on one p-value threshold.

    Notes
    -----
    Fit the filter inside a :class:`~sklearn.pipeline.Pipeline`, so that cross-validation
    selects the features on the training folds only; selecting on the whole cohort before
    cross-validating inflates the estimated AUC.

    References
    ----------
    .. [1] S. S. Shapiro and M. B. Wilk, "An analysis of variance test for normality
       (complete samples)", Biometrika 52(3-4):591-611, 1965.
    .. [2] B. L. Welch, "The generalization of 'Student's' problem when several different
       population variances are involved", Biometrika 34(1-2):28-35, 1947.
    .. [3] H. B. Mann and D. R. Whitney, "On a test of whether one of two random variables is
       stochastically larger than the other", Ann. Math. Statist. 18(1):50-60, 1947.
    .. [4] C. R. Mehta and N. R. Patel, "A network algorithm for performing Fisher's exact
       test in r x c contingency tables", JASA 78(382):427-434, 1983.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_alnm.feature_selection import UnivariateFilter
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], 30)
    >>> X = np.column_stack([
    ...     rng.normal(size=60) + 1.5 * y,             # informative, normal
    ...     rng.exponential(size=60) * (1 + 2 * y),    # informative, skewed
    ...     rng.normal(size=60),                       # noise
    ...     (rng.random(60) < 0.2 + 0.6 * y),          # informative binary factor
    ... ])
    >>> selector = UnivariateFilter().fit(X, y)
    >>> selector.tests_.tolist()
    ['ttest', 'mannwhitney', 'ttest', 'chi2']
    >>> selector.get_support().tolist()
    [True, True, False, True]
    """

    _parameter_constraints: dict = {
        "alpha": [Interval(Real, 0, 1, closed="right")],
        "continuous_test": [StrOptions({"auto", "mannwhitney", "ttest"})],
        "categorical_test": [StrOptions({"auto", "chi2", "fisher"})],
        "categorical_features": [StrOptions({"auto"}), "array-like", None],
        "max_categories": [Interval(Integral, 2, None, closed="left")],
        "normality_alpha": [Interval(Real, 0, 1, closed="neither")],
        "correction": [StrOptions({"fdr_bh", "bonferroni"}), None],
    }

    def __init__(
        self,
        alpha=0.05,
        *,
        continuous_test="auto",
        categorical_test="auto",
        categorical_features="auto",
        max_categories=10,
        normality_alpha=0.05,
        correction=None,
    ):
        self.alpha = alpha
        self.continuous_test = continuous_test
        self.categorical_test = categorical_test
        self.categorical_features = categorical_features
        self.max_categories = max_categories
        self.normality_alpha = normality_alpha
        self.correction = correction

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: MatrixLike, y: ArrayLike) -> Self:
        """Test every feature against the label and select those with p < alpha.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training features; a DataFrame may mix numeric, ``bool``, ``category`` and
            string columns. No missing values.
        y : array-like of shape (n_samples,)
            Binary label (any two values).

        Returns
        -------
        self : UnivariateFilter
            The fitted filter.

        Raises
        ------
        ValueError
            For missing or infinite values, a target that is not binary, fewer than two
            samples, or a ``categorical_features`` entry that does not match ``X``.
        TypeError
            For a column that holds neither numbers nor strings.
        """
        dataframe_categorical = None
        if hasattr(X, "dtypes") and hasattr(X, "columns"):
            dataframe_categorical = np.array(
                [
                    pd.api.types.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype)
                    for dtype in X.dtypes
                ]
            )
        X, y = validate_data(self, X, y, dtype=None, ensure_min_samples=2)
        self.classes_, y01 = _check_binary_target(y, type(self).__name__)
        n_features = X.shape[1]
        names = _input_feature_names(self)
        forced = self._forced_categorical(n_features)

        pvalues = np.ones(n_features)
        statistics = np.full(n_features, np.nan)
        tests = np.empty(n_features, dtype=object)
        categorical = np.zeros(n_features, dtype=bool)
        continuous_values = {}
        for j in range(n_features):
            numeric, codes = _encode_column(X[:, j], names[j])
            if forced is not None:
                categorical[j] = forced[j]
            elif codes is not None or X.dtype == bool:
                categorical[j] = True
            elif dataframe_categorical is not None and dataframe_categorical[j]:
                categorical[j] = True
            else:
                categorical[j] = (
                    _is_integer_valued(numeric)
                    and np.unique(numeric).shape[0] <= self.max_categories
                )
            if not categorical[j]:
                if numeric is None:
                    raise ValueError(
                        f"Feature {names[j]!r} holds strings, so it can only be categorical; "
                        "it is missing from categorical_features."
                    )
                continuous_values[j] = numeric
                continue
            if codes is None:
                codes = pd.factorize(numeric, sort=True)[0]
            statistics[j], pvalues[j], tests[j] = self._test_categorical(codes, y01, names[j])
        if continuous_values:
            columns = np.fromiter(continuous_values, dtype=np.intp)
            block = np.column_stack([continuous_values[j] for j in columns])
            statistics[columns], pvalues[columns], tests[columns] = self._test_continuous(
                block, y01
            )

        self.pvalues_ = pvalues
        self.pvalues_adjusted_ = _adjust_pvalues(pvalues, self.correction)
        self.statistics_ = statistics
        self.tests_ = tests
        self.categorical_ = categorical
        support = self.pvalues_adjusted_ < self.alpha
        if not support.any():
            best = int(np.lexsort((np.arange(n_features), pvalues, self.pvalues_adjusted_))[0])
            support[best] = True
            warnings.warn(
                f"No feature reached p < {self.alpha} "
                f"({'raw' if self.correction is None else self.correction} p-values); "
                f"keeping the most significant one, {names[best]!r} "
                f"(p = {self.pvalues_adjusted_[best]:.3g}).",
                UserWarning,
                stacklevel=3,
            )
        self.support_ = support
        return self

    def _forced_categorical(self, n_features):
        """The user's ``categorical_features`` as a boolean mask (None for "auto")."""
        spec = self.categorical_features
        if isinstance(spec, str):
            return None
        names = getattr(self, "feature_names_in_", None)
        return column_mask(spec, n_features, names, param="categorical_features")

    def _test_continuous(self, X, y01):
        """Test the columns of ``X`` (continuous features) against ``y01``.

        Vectorised over the columns; each column gets exactly the result of calling the
        SciPy test on it alone. Returns ``(statistics, pvalues, test names)``.
        """
        n_columns = X.shape[1]
        statistics = np.full(n_columns, np.nan)
        pvalues = np.ones(n_columns)
        tests = np.full(n_columns, "constant", dtype=object)
        X0, X1 = X[y01 == 0], X[y01 == 1]
        varies = np.ptp(X, axis=0) > 0
        varies0 = np.ptp(X0, axis=0) > 0
        varies1 = np.ptp(X1, axis=0) > 0
        if self.continuous_test == "mannwhitney":
            use_t = np.zeros(n_columns, dtype=bool)
        elif self.continuous_test == "ttest":
            use_t = varies.copy()
        else:
            use_t = varies & self._is_normal(X0, varies0) & self._is_normal(X1, varies1)
        # Welch's t is undefined without two samples per class or any within-class spread.
        use_t &= min(X0.shape[0], X1.shape[0]) >= 2
        use_t &= varies0 | varies1
        if use_t.any():
            result = stats.ttest_ind(X1[:, use_t], X0[:, use_t], equal_var=False, axis=0)
            statistics[use_t] = result.statistic
            pvalues[use_t] = result.pvalue
            tests[use_t] = "ttest"
        use_u = varies & ~use_t
        if use_u.any():
            # SciPy's method="auto" per column: exact without ties when a class has at
            # most 8 samples, else the normal approximation.
            ordered = np.sort(X[:, use_u], axis=0)
            tied = np.any(ordered[1:] == ordered[:-1], axis=0)
            if min(X0.shape[0], X1.shape[0]) <= 8:
                groups = (("exact", ~tied), ("asymptotic", tied))
            else:
                groups = (("asymptotic", np.ones_like(tied)),)
            for method, part in groups:
                if not part.any():
                    continue
                columns = np.flatnonzero(use_u)[part]
                result = stats.mannwhitneyu(
                    X1[:, columns], X0[:, columns], alternative="two-sided", method=method, axis=0
                )
                statistics[columns] = result.statistic
                pvalues[columns] = result.pvalue
                tests[columns] = "mannwhitney"
        return statistics, pvalues, tests

    def _is_normal(self, X, varies):
        """Shapiro-Wilk p >= normality_alpha per column (False below 3 samples or no spread)."""
        normal = np.zeros(X.shape[1], dtype=bool)
        if X.shape[0] < 3 or not varies.any():
            return normal
        normal[varies] = stats.shapiro(X[:, varies], axis=0).pvalue >= self.normality_alpha
        return normal

    def _test_categorical(self, codes, y01, name):
        """Return ``(statistic, pvalue, test name)`` for a categorical feature."""
        n_levels = int(codes.max()) + 1
        table = np.zeros((2, n_levels), dtype=np.int64)
        np.add.at(table, (y01, codes), 1)
        if n_levels < 2:
            return np.nan, 1.0, "constant"
        test = self.categorical_test
        if test == "auto":
            expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
            test = "fisher" if np.any(expected < 5) else "chi2"
        if test == "fisher":
            if n_levels == 2:
                result = stats.fisher_exact(table)
                return float(result.statistic), float(result.pvalue), "fisher"
            try:
                statistic, pvalue = fisher_exact_2xk(table)
                return statistic, pvalue, "fisher"
            except _EnumerationBudgetExceeded:
                warnings.warn(
                    f"Fisher's exact test of feature {name!r} ({n_levels} levels, "
                    f"{table.sum()} samples) needs too large an enumeration; using the "
                    "chi-square test instead.",
                    UserWarning,
                    stacklevel=4,
                )
        result = stats.chi2_contingency(table)
        return float(result.statistic), float(result.pvalue), "chi2"

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
