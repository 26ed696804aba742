"""Feature selection for radiomics and deep-feature signatures against a binary label.

The selection steps of the radiomics studies, each a scikit-learn selector (built on
:class:`~sklearn.feature_selection.SelectorMixin`, so ``transform``, ``get_support``,
``inverse_transform``, ``get_feature_names_out`` and ``set_output`` work as usual):

:class:`UnivariateFilter`
    Univariate tests against the label (Welch t / Mann-Whitney U after a Shapiro-Wilk
    normality check; chi-square / Fisher's exact test for categorical features), keep
    p < alpha.
:class:`CorrelationFilter`
    Of each pair of features correlated above a threshold, keep the one more associated
    with the label.
:class:`LassoSelector`
    L1-penalised logistic (or least-squares) model with the penalty chosen by
    cross-validation; keep the nonzero coefficients.

The published recipe is ``StandardScaler() -> UnivariateFilter(alpha=0.05) ->
CorrelationFilter(threshold=0.75) -> LassoSelector(cv=5) -> classifier``, all inside one
:class:`~sklearn.pipeline.Pipeline` so that cross-validation selects features on the
training folds only. The selectors take binary labels (any two values), reject missing
values (impute first) and never return an empty selection: when nothing passes they keep
the single strongest feature and warn.
"""

from ._correlation import CorrelationFilter
from ._lasso import LassoSelector
from ._univariate import UnivariateFilter

__all__ = ["CorrelationFilter", "LassoSelector", "UnivariateFilter"]
