"""Logistic regression with stepwise selection of terms by AIC / BIC (R's ``step``).

The clinical models of the ALNM studies are logistic regressions whose factors were chosen
by backward or forward stepwise selection on the Akaike (or Bayesian) information criterion,
as R's ``step(glm(y ~ ., family = binomial))`` does. This module reproduces that procedure on
top of statsmodels (``GLM`` with a ``Binomial`` family, fitted by iteratively reweighted least
squares like R's ``glm.fit``), with the terms, tie rules and criterion of R, and wraps it in a
scikit-learn classifier.

The encoding and fitting helpers here (clinical columns -> terms -> treatment-coded design,
separation checks, one robust GLM fit) are shared with the odds-ratio and baseline tables.
"""

import math
import warnings
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Self

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import ClassifierTags
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data
from statsmodels.stats.outliers_influence import variance_inflation_factor
from statsmodels.tools import sm_exceptions

from .._logging import get_logger
from .._typing import ArrayLike, MatrixLike
from ..feature_selection._base import _check_binary_target, _input_feature_names
from ..utils import column_mask, resolve_pos_label

logger = get_logger(__name__)

# R's glm.fit warns "fitted probabilities numerically 0 or 1 occurred" beyond this distance.
_PROBABILITY_EPS = 10 * np.finfo(float).eps
# Relative tolerance of the rank decision (R's lm.fit / dqrdc2 default).
_RANK_TOL = 1e-7
# R's step() refuses a move that raises the criterion by more than this (round-off guard).
_STEP_TOL = 1e-7
_INTERCEPT = "(Intercept)"

_STATSMODELS_WARNINGS = (
    sm_exceptions.PerfectSeparationWarning,
    sm_exceptions.ConvergenceWarning,
    sm_exceptions.SingularMatrixWarning,
    sm_exceptions.DomainWarning,
    RuntimeWarning,
)


class SeparationWarning(UserWarning):
    """A variable (or a fitted model) separates the two classes.

    Under complete or quasi-complete separation the maximum-likelihood estimate of a
    logistic model does not exist: the coefficient of the separating variable (or level)
    diverges, and its odds ratio, standard error and p-value are meaningless. The fit goes on,
    as R's ``glm`` does, and this warning names the culprit.
    """


# --------------------------------------------------------------------------------------
# Columns -> terms -> design matrix
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Term:
    """One model term: a numeric column (one coefficient) or a factor (levels - 1)."""

    name: str
    categorical: bool
    levels: tuple = ()

    @property
    def columns(self):
        """Names of the encoded columns (treatment contrasts, first level as reference)."""
        if not self.categorical:
            return [self.name]
        return [f"{self.name}_{_level_name(level)}" for level in self.levels[1:]]


def _level_name(level):
    """Display name of a level: integer-valued floats (e.g. grade 2.0) print as integers."""
    if isinstance(level, (float, np.floating)) and float(level).is_integer():
        return str(int(level))
    return str(level)


def _dtype_kinds(X):
    """Per DataFrame column: ``(kind, categories)``; ``None`` for other input.

    ``kind`` is ``"category"`` (with the categories in their declared order), ``"bool"``,
    ``"string"`` or ``None`` (numeric or generic object column).
    """
    if not (hasattr(X, "dtypes") and hasattr(X, "columns")):
        return None
    kinds = []
    for dtype in X.dtypes:
        if isinstance(dtype, pd.CategoricalDtype):
            kinds.append(("category", list(dtype.categories)))
        elif pd.api.types.is_bool_dtype(dtype):
            kinds.append(("bool", None))
        elif pd.api.types.is_string_dtype(dtype) and not pd.api.types.is_object_dtype(dtype):
            kinds.append(("string", None))
        else:
            kinds.append((None, None))
    return kinds


def _for_validation(X):
    """``X`` as scikit-learn's ``validate_data`` can check it with ``dtype=None``.

    A DataFrame mixing ``bool`` or ``category`` columns with others makes scikit-learn cast
    everything to one numeric dtype, which fails on string categories ("Cannot cast str
    dtype to float64"); such columns are handed over as ``object`` instead (their values are
    read from the original frame by :func:`_columns`).
    """
    if not hasattr(X, "dtypes") or not hasattr(X, "astype"):
        return X
    convert = {
        c: object
        for c, dtype in X.dtypes.items()
        if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(dtype)
    }
    if not convert or len(convert) == X.shape[1]:
        return X.astype(object) if convert else X
    return X.astype(convert)


def _columns(original, validated):
    """The input columns as 1-D arrays: a DataFrame's own columns (keeping integer, string
    and category values as given), else the columns of the validated array."""
    if hasattr(original, "columns") and hasattr(original, "iloc"):
        return [original.iloc[:, j].to_numpy() for j in range(validated.shape[1])]
    return [validated[:, j] for j in range(validated.shape[1])]


def _resolve_categorical(spec, names, has_names, owner):
    """The user's ``categorical`` (None, names, indices or a boolean mask) as a mask."""
    return column_mask(spec, len(names), names if has_names else None, owner=owner)


def _missing_mask(values):
    return np.asarray(pd.isna(values), dtype=bool).reshape(-1)


def _check_complete(values, name, owner):
    """Raise a ValueError naming the column for missing (NaN / None) or infinite values."""
    missing = _missing_mask(values)
    if missing.any():
        rows = np.flatnonzero(missing)
        raise ValueError(
            f"Column {name!r} has {rows.size} missing value(s) (NaN or None) at row(s) "
            f"{_show_rows(rows)}; {owner} needs complete data: impute first (e.g. a "
            "SimpleImputer in the same Pipeline, or an explicit 'missing' level for a "
            "categorical column), or drop those patients."
        )
    if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
        bad = np.flatnonzero(~np.isfinite(values))
        raise ValueError(
            f"Column {name!r} has {bad.size} infinite value(s) (inf) at row(s) "
            f"{_show_rows(bad)}; clinical values must be finite."
        )


def _show_rows(rows, limit=5):
    shown = ", ".join(str(int(r)) for r in rows[:limit])
    return f"{shown}, ..." if rows.size > limit else shown


def _is_number(value):
    return isinstance(value, (bool, int, float, np.bool_, np.number)) and not isinstance(
        value, (complex, np.complexfloating)
    )


def _sorted_levels(present, categories=None):
    """Observed levels in R's factor order: declared categories, else sorted values."""
    if categories is not None:
        seen = set(present.tolist())
        return tuple(c for c in categories if c in seen)
    unique = pd.unique(pd.Series(present, dtype=object)).tolist()
    if all(_is_number(v) for v in unique):
        return tuple(sorted(unique))
    return tuple(sorted(unique, key=str))


def _make_term(name, values, categorical, dtype_kind):
    """Decide the kind of a column and learn its levels from the non-missing values."""
    kind, categories = dtype_kind if dtype_kind is not None else (None, None)
    present = values[~_missing_mask(values)]
    if not categorical:
        categorical = kind in ("category", "bool", "string") or values.dtype == bool
    if not categorical and values.dtype == object:
        categorical = any(isinstance(v, str) for v in present)
    if categorical:
        return _Term(name, True, _sorted_levels(present, categories))
    _as_float(values, name)  # fail early on values that are neither numbers nor labels
    return _Term(name, False)


def _as_float(values, name):
    """Numeric column as float, missing values as NaN."""
    if values.dtype.kind in "fiub":
        return values.astype(float)
    missing = _missing_mask(values)
    out = np.full(values.shape[0], np.nan)
    try:
        out[~missing] = values[~missing].astype(float)
    except (TypeError, ValueError):
        bad = next(v for v in values[~missing] if not _is_number(v))
        raise TypeError(
            f"Column {name!r} holds a value of type {type(bad).__name__} ({bad!r}); numeric "
            "columns need numbers, categorical columns numbers or strings (name the column "
            "in `categorical`)."
        ) from None
    return out


def _encode_term(term, values):
    """Encoded columns of one term, shape (n, len(term.columns)); NaN rows where missing.

    Raises ``ValueError`` for a level not seen when the term was learned.
    """
    if not term.categorical:
        return _as_float(values, term.name)[:, None]
    missing = _missing_mask(values)
    index = {level: i for i, level in enumerate(term.levels)}
    codes = np.full(values.shape[0], -1)
    unknown = []
    for i in np.flatnonzero(~missing):
        code = index.get(values[i], None)
        if code is None:
            unknown.append(values[i])
        else:
            codes[i] = code
    if unknown:
        shown = sorted({str(v) for v in unknown})[:5]
        raise ValueError(
            f"Column {term.name!r} holds levels not seen in training: {shown}; known levels "
            f"are {[str(v) for v in term.levels]}."
        )
    out = np.zeros((values.shape[0], max(len(term.levels) - 1, 0)))
    for j in range(1, len(term.levels)):
        out[codes == j, j - 1] = 1.0
    out[missing] = np.nan
    return out


def _is_constant(term, values):
    """True when the non-missing values of ``values`` do not vary."""
    present = values[~_missing_mask(values)]
    if term.categorical:
        return len(_sorted_levels(present)) < 2
    present = _as_float(present, term.name)
    return present.shape[0] == 0 or np.ptp(present) == 0


def _separation_messages(term, encoded, y01, classes):
    """Messages describing how ``term`` alone separates the classes (empty if it does not).

    Numeric: the values of the two classes do not overlap (complete separation) or touch at
    a single value (quasi-complete). Factor: a level without cases of one class (a zero cell
    of the 2 x k table; every level so -> complete separation).
    """
    neg, pos = (repr(str(c)) for c in classes)
    if not term.categorical:
        x = encoded[:, 0]
        x0, x1 = x[y01 == 0], x[y01 == 1]
        if x0.size == 0 or x1.size == 0:
            return []
        for lo_name, lo, hi_name, hi in ((neg, x0, pos, x1), (pos, x1, neg, x0)):
            if lo.max() < hi.min():
                return [
                    f"{term.name!r} separates the classes completely: every {hi_name} case has "
                    f"{term.name} >= {hi.min():.6g} and every {lo_name} case "
                    f"{term.name} <= {lo.max():.6g}"
                ]
            if lo.max() == hi.min():
                return [
                    f"{term.name!r} separates the classes quasi-completely: {hi_name} cases have "
                    f"{term.name} >= {hi.min():.6g} and {lo_name} cases {term.name} <= "
                    f"{lo.max():.6g}"
                ]
        return []
    codes = np.zeros(encoded.shape[0], dtype=int)
    for j in range(encoded.shape[1]):
        codes[encoded[:, j] == 1] = j + 1
    table = np.zeros((2, len(term.levels)), dtype=int)
    np.add.at(table, (y01, codes), 1)
    empty = [
        (str(term.levels[j]), neg if table[0, j] == 0 else pos)
        for j in range(table.shape[1])
        if table[:, j].sum() > 0 and table[:, j].min() == 0
    ]
    if not empty:
        return []
    if len(empty) == table.shape[1]:
        return [f"{term.name!r} separates the classes completely: no level holds both classes"]
    return [
        f"level {level!r} of {term.name!r} has no {missing} case (quasi-complete separation)"
        for level, missing in empty
    ]


def _warn_separation(messages, stacklevel):
    if messages:
        warnings.warn(
            "; ".join(messages) + ". The maximum-likelihood estimate does not exist: the "
            "coefficient diverges and its odds ratio, CI and p-value are meaningless (the fit "
            "goes on, as R's glm does). Merge sparse levels, remove the variable, or use a "
            "penalised model.",
            SeparationWarning,
            stacklevel=stacklevel,
        )


def _independent_columns(design):
    """Mask of the columns kept by a sequential rank decision, as R's pivoted QR.

    Column ``j`` is aliased (R reports an ``NA`` coefficient) when its distance to the span
    of the kept columns before it is at most ``1e-7`` times its norm.
    """
    n, p = design.shape
    keep = np.zeros(p, dtype=bool)
    basis = np.empty((n, 0))
    for j in range(p):
        x = design[:, j]
        norm = np.linalg.norm(x)
        v = x - basis @ (basis.T @ x)
        v = v - basis @ (basis.T @ v)  # re-orthogonalise for stability
        residual = np.linalg.norm(v)
        if norm > 0 and residual > _RANK_TOL * norm:
            keep[j] = True
            basis = np.column_stack([basis, v / residual])
    return keep


@dataclass
class _GLMFit:
    """A binomial GLM fitted by IRLS: statsmodels result and the checks R's glm.fit makes."""

    result: object
    deviance: float
    rank: int
    converged: bool
    separated: bool


def _fit_glm(design, y01, max_iter, names=None, what="the model"):
    """Fit a logistic model on the non-aliased columns of ``design`` (intercept included).

    statsmodels' own warnings are replaced by the ``converged`` / ``separated`` flags, and any
    numerical failure by a ``ValueError`` naming the model.
    """
    keep = _independent_columns(design)
    exog = design[:, keep]
    if names is not None:
        exog = pd.DataFrame(exog, columns=[name for name, k in zip(names, keep) if k])
    try:
        with warnings.catch_warnings():
            for category in _STATSMODELS_WARNINGS:
                warnings.simplefilter("ignore", category)
            result = sm.GLM(y01.astype(float), exog, family=sm.families.Binomial()).fit(
                maxiter=max_iter
            )
    except (np.linalg.LinAlgError, ValueError, FloatingPointError) as exc:
        raise ValueError(f"The logistic fit of {what} failed numerically: {exc}") from exc
    mu = np.asarray(result.mu)
    deviance = float(result.deviance)
    if not np.isfinite(deviance):
        raise ValueError(
            f"The logistic fit of {what} failed numerically (non-finite deviance); check the "
            "columns for extreme values."
        )
    return _GLMFit(
        result=result,
        deviance=deviance,
        rank=int(keep.sum()),
        converged=bool(getattr(result, "converged", True)),
        separated=bool(np.any(mu < _PROBABILITY_EPS) or np.any(mu > 1 - _PROBABILITY_EPS)),
    )


def _wald_table(result, names, confidence=0.95):
    """Per coefficient: beta, se, z, p (Wald, normal) and the odds ratio with its Wald CI.

    The CI is :math:`\\exp(\\beta \\pm z_{1 - \\alpha/2}\\, \\mathrm{se})`, e.g.
    :math:`z_{0.975} = 1.95996`, as R's ``exp(confint.default(fit))``.
    """
    beta = np.asarray(result.params, dtype=float)
    se = np.asarray(result.bse, dtype=float)
    z = beta / se
    quantile = stats.norm.ppf(0.5 + confidence / 2)
    with np.errstate(over="ignore"):
        table = pd.DataFrame(
            {
                "beta": beta,
                "se": se,
                "z": z,
                "p_value": 2 * stats.norm.sf(np.abs(z)),
                "odds_ratio": np.exp(beta),
                "ci_low": np.exp(beta - quantile * se),
                "ci_high": np.exp(beta + quantile * se),
            },
            index=pd.Index(names, name="feature"),
        )
    return table


# --------------------------------------------------------------------------------------
# The stepwise search (R's step)
# --------------------------------------------------------------------------------------


class _ModelCache:
    """Fits of term subsets, keyed by the set of terms (deviance and rank do not depend on
    the order of the terms)."""

    def __init__(self, encoded, term_columns, y01, max_iter):
        self.encoded = encoded
        self.term_columns = term_columns
        self.y01 = y01
        self.max_iter = max_iter
        self.fits = {}
        self.not_converged = []

    def design(self, terms):
        columns = [c for t in terms for c in self.term_columns[t]]
        return np.column_stack([np.ones(self.encoded.shape[0]), self.encoded[:, columns]])

    def __call__(self, terms):
        key = frozenset(terms)
        if key not in self.fits:
            what = "the model with terms " + (", ".join(map(repr, terms)) or "(intercept only)")
            fit = _fit_glm(self.design(terms), self.y01, self.max_iter, what=what)
            fit.result = None  # only deviance and rank are needed during the search
            if not fit.converged:
                self.not_converged.append(list(terms))
            self.fits[key] = fit
        return self.fits[key]


def _stepwise_search(cache, all_terms, direction, penalty, trace=0):
    """R's ``step`` on a binomial GLM; return ``(final terms in model order, path rows)``.

    Each model is scored by :math:`D + k\\,\\mathrm{edf}` (``extractAIC``), where ``D`` is the
    deviance, ``edf`` the rank of the design (intercept included) and ``k = penalty``. At each
    step the candidates are the current model ("<none>"), each removal (backward / both) and
    each addition from the scope (forward / both); they are ordered by the criterion with a
    stable sort (R's ``order``), so exact ties go to "<none>" first, then removals in model
    order, then additions in column order. The search stops when "<none>" comes first, i.e.
    no move strictly lowers the criterion. As in R, a term whose removal does not change the
    rank (an aliased term) is removed first, without comparison, the last such term first;
    additions that do not change the rank are not considered.
    """
    backward = direction in ("backward", "both")
    forward = direction in ("forward", "both")
    current = [] if direction == "forward" else list(all_terms)

    def criterion(fit):
        return fit.deviance + penalty * fit.rank

    fit = cache(current)
    value = criterion(fit)
    rows = [("start", None, fit, value)]
    if trace:
        print(f"Start: criterion={value:.4f}  terms: {', '.join(current) or '(intercept only)'}")
    while True:
        change = None
        candidates = [("<none>", None, value)]
        if backward and current:
            removals = []
            for term in current:
                sub = cache([t for t in current if t != term])
                removals.append((term, fit.rank - sub.rank, criterion(sub)))
            aliased = [term for term, df, _ in removals if df == 0]
            if aliased:
                change = ("remove", aliased[-1])
            else:
                candidates += [("remove", term, v) for term, _, v in removals]
        if change is None:
            if forward:
                for term in all_terms:
                    if term in current:
                        continue
                    sup = cache(current + [term])
                    if sup.rank - fit.rank != 0:
                        candidates.append(("add", term, criterion(sup)))
            order = sorted(range(len(candidates)), key=lambda i: candidates[i][2])  # stable
            if trace > 1:
                for i in order:
                    action, term, v = candidates[i]
                    sign = {"<none>": "<none>", "remove": "-", "add": "+"}[action]
                    print(f"    {sign} {term or '':<30} {v:.4f}")
            best = candidates[order[0]]
            if best[0] == "<none>":
                break
            change = best[:2]
        action, term = change
        new = [t for t in current if t != term] if action == "remove" else current + [term]
        new_fit = cache(new)
        new_value = criterion(new_fit)
        if new_value >= value + _STEP_TOL:
            break
        current, fit, value = new, new_fit, new_value
        rows.append((action, term, fit, value))
        if trace:
            print(f"Step {len(rows) - 1}: {action} {term}  criterion={value:.4f}")
    return current, rows


# --------------------------------------------------------------------------------------
# The estimator
# --------------------------------------------------------------------------------------


class StepwiseLogisticRegression(ClassifierMixin, BaseEstimator):
    """Logistic regression with stepwise selection of terms by AIC or BIC, as R's ``step``.

    The clinical model of the ALNM studies: the clinical and imaging factors (age, tumour
    size, ER / PR / HER2, Ki-67, grade, BI-RADS, a deep-learning or radiomics score, ...)
    enter an unpenalised logistic regression, and terms are removed (and/or added) one at a
    time while that lowers the information criterion. The selection path and the criterion
    values are those of R's ``step(glm(y ~ ., family = binomial), direction = ...)``:

    * each model is scored by R's ``extractAIC``, :math:`D + k\\,\\mathrm{edf}`, with ``D``
      the residual deviance (:math:`-2 \\log L` for a binary outcome), ``edf`` the number of
      estimated coefficients (intercept included) and :math:`k = 2` (AIC) or
      :math:`k = \\log n` (BIC, R's ``step(..., k = log(n))``);
    * a term is a column: a numeric column has one coefficient, a categorical column is
      treatment-coded against its first level (R's default contrasts: one indicator per other
      level) and is removed or added as **one** term;
    * ``"backward"`` starts from all terms and tries every removal; ``"forward"`` starts from
      the intercept-only model with all terms as scope and tries every addition; ``"both"``
      starts from all terms and tries every removal and every re-addition. The move with the
      lowest criterion is made as long as it is strictly lower than the current model's.
      **Ties** are broken as R's ``order`` does: the current model wins an exact tie, then
      removals (in the model's term order) come before additions (in column order). An
      aliased term (one whose removal leaves the rank unchanged, e.g. an exact linear
      combination of others) is removed first without comparison, the last such term first,
      as in R.

    Before the search, constant columns are removed (with a warning), and if ``max_vif`` is
    set, numeric terms are removed one at a time while the largest variance inflation factor
    exceeds it. Complete or quasi-complete separation of the classes by a single variable or
    level (an infinite odds ratio) is reported with a :class:`SeparationWarning` naming it,
    as is separation by the final model; the fit goes on, as R's ``glm`` does.

    Parameters
    ----------
    direction : {"backward", "forward", "both"}, default="backward"
        Direction of the stepwise search (see above).
    criterion : {"aic", "bic"}, default="aic"
        Information criterion: ``"aic"`` (:math:`k = 2`) or ``"bic"`` (:math:`k = \\log n`).
    max_vif : float or None, default=None
        If set (e.g. 5 or 10), before the search repeatedly remove the numeric term with the
        largest variance inflation factor while it exceeds ``max_vif``. The VIF of column
        ``j`` is :math:`1 / (1 - R_j^2)` from the least-squares regression of the column on
        an intercept and all other encoded columns
        (:func:`statsmodels.stats.outliers_influence.variance_inflation_factor`); exact
        collinearity gives a huge (or infinite) VIF. Ties go to the earlier column.
    categorical : None, array-like of str or int, or boolean mask, default=None
        Columns to treat as categorical in addition to those detected from the data
        (``category``, ``bool`` and string columns of a DataFrame, or columns of an object
        array holding strings), e.g. integer-coded grade or BI-RADS. Levels are the observed
        values in sorted order (a ``category`` dtype keeps its declared order); the first
        level is the reference.
    max_iter : int, default=100
        Maximum number of IRLS iterations of each logistic fit.
    verbose : int, default=0
        1 prints the criterion of each step (as R's ``trace``); 2 also prints every
        candidate move of each step.
    pos_label : scalar or None, default=None
        The modelled event (e.g. ``"N+"``): coefficients, odds ratios and the linear
        predictor refer to it. Required unless the labels are 0/1, -1/1 or booleans (then 1 /
        True); it is never guessed from the sorted order of the labels.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        The two labels, sorted (as in every scikit-learn classifier; ``predict_proba``'s
        columns follow them).
    pos_label_ : scalar
        The modelled event (``pos_label``, or 1 / True for conventional labels).
    selected_features_ : list of str
        Terms (input columns) of the final model, in column order.
    selected_columns_ : list of str
        Encoded columns of the final model, in the order of ``coef_``: a numeric column keeps
        its name, a factor's indicators are named ``"<column>_<level>"``.
    coef_ : ndarray of shape (1, n_selected_columns)
        Log odds ratios of ``selected_columns_`` for the event ``pos_label_``.
    intercept_ : ndarray of shape (1,)
        Intercept of the final model.
    steps_ : pandas.DataFrame
        The selection path, one row per model: ``step`` (0 = initial model), ``action``
        (``"start"``, ``"remove"``, ``"add"``), ``term`` (``""`` for the initial model),
        ``df`` (number of coefficients),
        ``deviance``, ``AIC`` (:math:`D + 2\\,\\mathrm{df}`) and ``BIC``
        (:math:`D + \\log(n)\\,\\mathrm{df}`), whichever ``criterion`` drove the search.
    aic_, bic_ : float
        AIC and BIC of the final model.
    summary_ : pandas.DataFrame
        One row per column of ``coef_``: ``term``, ``beta``, ``se``, ``z``, ``p_value`` (Wald)
        and ``odds_ratio`` with its 95% Wald confidence interval ``ci_low``, ``ci_high``
        (:math:`\\exp(\\beta \\pm 1.96\\,\\mathrm{se})`, as R's ``confint.default``).
    result_ : statsmodels GLMResults
        The final model fitted by statsmodels (``result_.summary()`` prints R-like output).
    vif_dropped_ : list of str
        Numeric terms removed by ``max_vif``, in removal order (empty without ``max_vif``).
    vif_ : pandas.Series or None
        With ``max_vif``: the VIF of each numeric term when it was removed, or its final VIF.
    constant_features_ : list of str
        Columns removed because they are constant.
    terms_ : list of str
        Candidate terms of the search (after the removals above), in column order.
    n_iter_ : ndarray of shape (1,)
        Number of IRLS iterations of the final fit.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during ``fit``. Defined only when `X` has feature names
        that are all strings.

    See Also
    --------
    odds_ratio_table : Univariable and multivariable odds ratios of clinical factors.
    sklearn.linear_model.LogisticRegression : Penalised logistic regression, no selection.

    Notes
    -----
    Missing values are rejected: impute before (e.g. in a :class:`~sklearn.pipeline.Pipeline`);
    R's ``step`` also requires the same rows in every model. A level of a categorical column
    that was not seen in ``fit`` raises a ``ValueError`` at prediction, as R's ``predict``.

    Stepwise selection on the whole cohort, followed by an evaluation on the same cohort,
    overstates performance; fit it inside cross-validation or evaluate on held-out cohorts.

    References
    ----------
    .. [1] H. Akaike, "A new look at the statistical model identification", IEEE Trans.
       Automatic Control 19(6):716-723, 1974.
    .. [2] W. N. Venables and B. D. Ripley, *Modern Applied Statistics with S*, 4th ed.,
       Springer, 2002, section 6.8 (``stepAIC``, on which R's ``step`` is based).
    .. [3] A. Albert and J. A. Anderson, "On the existence of maximum likelihood estimates in
       logistic regression models", Biometrika 71(1):1-10, 1984.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn_alnm.clinical import StepwiseLogisticRegression
    >>> rng = np.random.default_rng(1)
    >>> n = 300
    >>> X = pd.DataFrame({
    ...     "size_mm": rng.normal(20, 5, n),
    ...     "age": rng.normal(55, 10, n),
    ...     "grade": rng.choice(["G1", "G2", "G3"], n),
    ... })
    >>> logit = 0.3 * (X["size_mm"] - 20) + 1.5 * (X["grade"] == "G3") - 0.5
    >>> y = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "N+", "N0")
    >>> model = StepwiseLogisticRegression(pos_label="N+").fit(X, y)
    >>> model.selected_features_
    ['size_mm', 'grade']
    >>> model.selected_columns_
    ['size_mm', 'grade_G2', 'grade_G3']
    >>> model.steps_[["step", "action", "term", "df", "AIC"]].round(2)
    ... # doctest: +NORMALIZE_WHITESPACE
       step  action term  df     AIC
    0     0   start        5  318.93
    1     1  remove  age   4  318.10
    >>> model.summary_[["odds_ratio", "ci_low", "ci_high", "p_value"]].round(3)
    ... # doctest: +NORMALIZE_WHITESPACE
              odds_ratio  ci_low  ci_high  p_value
    feature
    size_mm        1.323   1.221    1.434    0.000
    grade_G2       1.005   0.498    2.026    0.989
    grade_G3       4.880   2.505    9.506    0.000
    >>> model.classes_.tolist(), model.pos_label_, model.predict_proba(X).shape
    (['N+', 'N0'], 'N+', (300, 2))
    """

    _parameter_constraints: dict = {
        "direction": [StrOptions({"backward", "forward", "both"})],
        "criterion": [StrOptions({"aic", "bic"})],
        "max_vif": [Interval(Real, 1, None, closed="left"), None],
        "categorical": ["array-like", str, None],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "verbose": ["verbose"],
        "pos_label": "no_validation",
    }

    def __init__(
        self,
        direction="backward",
        criterion="aic",
        max_vif=None,
        categorical=None,
        max_iter=100,
        verbose=0,
        pos_label=None,
    ):
        self.direction = direction
        self.criterion = criterion
        self.max_vif = max_vif
        self.categorical = categorical
        self.max_iter = max_iter
        self.verbose = verbose
        self.pos_label = pos_label

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: MatrixLike, y: ArrayLike) -> Self:
        """Select the terms stepwise and fit the final logistic model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Clinical factors; a DataFrame may mix numeric, ``bool``, ``category`` and string
            columns. No missing values.
        y : array-like of shape (n_samples,)
            Binary outcome: 0/1 (1 is the event), or any two labels with ``pos_label``.

        Returns
        -------
        self : StepwiseLogisticRegression
            The fitted model.

        Raises
        ------
        ValueError
            For missing values, a target that is not binary, fewer than two samples, a
            ``categorical`` entry that does not match ``X``, clashing encoded column names,
            or a numerical failure of a fit.
        TypeError
            For a column holding values that are neither numbers nor strings.

        Warns
        -----
        SeparationWarning
            When a variable or level, or the selected model, separates the classes.
        UserWarning
            When constant columns are removed.
        sklearn.exceptions.ConvergenceWarning
            When IRLS fits do not converge in ``max_iter`` iterations.
        """
        dtype_kinds = _dtype_kinds(X)
        original = X
        X, y = validate_data(
            self, _for_validation(X), y, dtype=None, ensure_all_finite=False, ensure_min_samples=2
        )
        X = _columns(original, X)
        try:
            self.classes_, _ = _check_binary_target(y, type(self).__name__)
        except ValueError as exc:
            # scikit-learn's wording for binary-only classifiers, then ours.
            raise ValueError(f"Only binary classification is supported. {exc}") from None
        self.pos_label_ = resolve_pos_label(
            self.classes_, self.pos_label, owner=type(self).__name__
        )
        y01 = np.asarray(y == self.pos_label_, dtype=np.int64)
        # The positive class's side of the linear predictor: +1 when it is classes_[1].
        self._sign = 1.0 if self.classes_[1] == self.pos_label_ else -1.0
        event = (self.classes_[self.classes_ != self.pos_label_][0], self.pos_label_)
        names = _input_feature_names(self)
        forced = _resolve_categorical(
            self.categorical, names, hasattr(self, "feature_names_in_"), type(self).__name__
        )
        terms = []
        for j, name in enumerate(names):
            values = X[j]
            _check_complete(values, name, type(self).__name__)
            term = _make_term(name, values, forced[j], dtype_kinds[j] if dtype_kinds else None)
            if not term.categorical:
                _check_complete(_as_float(values, name), name, type(self).__name__)
            terms.append(term)

        # Constant columns carry no information and would only be aliased with the intercept.
        self.constant_features_ = [t.name for j, t in enumerate(terms) if _is_constant(t, X[j])]
        if self.constant_features_:
            warnings.warn(
                f"Removed constant column(s) {self.constant_features_}: a column without "
                "variation cannot enter a logistic model.",
                UserWarning,
                stacklevel=3,
            )
        self._terms = [t for t in terms if t.name not in self.constant_features_]
        column_names = [c for t in self._terms for c in t.columns]
        duplicated = sorted({c for c in column_names if column_names.count(c) > 1})
        if duplicated or _INTERCEPT in column_names:
            raise ValueError(
                f"Encoded column names clash: {duplicated or [_INTERCEPT]} (a numeric column "
                "has the name of a factor's '<column>_<level>' indicator, or is named "
                f"{_INTERCEPT!r}); rename the columns."
            )
        position = {t.name: j for j, t in enumerate(terms)}
        n = y.shape[0]
        blocks = [_encode_term(t, X[position[t.name]]) for t in self._terms]
        encoded = np.hstack(blocks) if blocks else np.empty((n, 0))
        term_columns, start = {}, 0
        for t in self._terms:
            term_columns[t.name] = list(range(start, start + len(t.columns)))
            start += len(t.columns)

        separation = []
        for t in self._terms:
            separation += _separation_messages(t, encoded[:, term_columns[t.name]], y01, event)
        _warn_separation(separation, stacklevel=3)

        candidates = [t.name for t in self._terms]
        candidates = self._vif_filter(candidates, encoded, term_columns)
        self.terms_ = candidates

        penalty = 2.0 if self.criterion == "aic" else math.log(n)
        cache = _ModelCache(encoded, term_columns, y01, self.max_iter)
        final, rows = _stepwise_search(
            cache, candidates, self.direction, penalty, trace=self.verbose
        )
        self.steps_ = pd.DataFrame(
            [
                {
                    "step": i,
                    "action": action,
                    "term": "" if term is None else term,
                    "df": fit.rank,
                    "deviance": fit.deviance,
                    "AIC": fit.deviance + 2.0 * fit.rank,
                    "BIC": fit.deviance + math.log(n) * fit.rank,
                }
                for i, (action, term, fit, _) in enumerate(rows)
            ]
        )
        for action, term, _, value in rows[1:]:
            logger.debug("%s %s: %s = %.4f", action, term, self.criterion.upper(), value)
        if cache.not_converged:
            warnings.warn(
                f"{len(cache.not_converged)} of {len(cache.fits)} logistic fits did not "
                f"converge in max_iter={self.max_iter} IRLS iterations (first: terms "
                f"{cache.not_converged[0]}); increase max_iter.",
                ConvergenceWarning,
                stacklevel=3,
            )

        # Final model, terms in column order.
        self.selected_features_ = [name for name in candidates if name in final]
        self.selected_columns_ = [
            c for t in self._terms if t.name in self.selected_features_ for c in t.columns
        ]
        design = cache.design(self.selected_features_)
        what = "the selected model"
        fit = _fit_glm(
            design, y01, self.max_iter, names=[_INTERCEPT] + self.selected_columns_, what=what
        )
        if fit.separated:
            _warn_separation(
                [
                    "the selected model (terms "
                    f"{self.selected_features_}) predicts probabilities numerically 0 or 1"
                ],
                stacklevel=3,
            )
        self.result_ = fit.result
        params = np.asarray(fit.result.params, dtype=float)
        self.intercept_ = params[:1].copy()
        self.coef_ = params[1:][None, :].copy()
        self.n_iter_ = np.array([int(fit.result.fit_history["iteration"])])
        self.aic_ = fit.deviance + 2.0 * fit.rank
        self.bic_ = fit.deviance + math.log(n) * fit.rank
        summary = _wald_table(fit.result, [_INTERCEPT] + self.selected_columns_).iloc[1:]
        owner = {c: t.name for t in self._terms for c in t.columns}
        summary.insert(0, "term", [owner[c] for c in summary.index])
        self.summary_ = summary
        return self

    def _vif_filter(self, candidates, encoded, term_columns):
        """Remove numeric terms by decreasing VIF while above ``max_vif``."""
        self.vif_dropped_ = []
        self.vif_ = None
        if self.max_vif is None:
            return candidates
        kinds = {t.name: t.categorical for t in self._terms}
        kept = list(candidates)
        vif = {}
        while True:
            numeric = [t for t in kept if not kinds[t]]
            if not numeric:
                break
            columns = [c for t in kept for c in term_columns[t]]
            exog = np.column_stack([np.ones(encoded.shape[0]), encoded[:, columns]])
            values = []
            with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
                # Ill-conditioning and division by zero are what an infinite VIF means.
                warnings.simplefilter("ignore")
                for t in numeric:
                    idx = 1 + columns.index(term_columns[t][0])
                    value = variance_inflation_factor(exog, idx) if exog.shape[1] > 2 else 1.0
                    values.append(np.inf if np.isnan(value) else float(value))
            for t, value in zip(numeric, values):
                vif[t] = value
            worst = int(np.argmax(values))
            if not values[worst] > self.max_vif:
                break
            name = numeric[worst]
            kept.remove(name)
            self.vif_dropped_.append(name)
            logger.info("removed %r: VIF %.3g > max_vif=%g", name, values[worst], self.max_vif)
            if self.verbose:
                print(f"VIF: removed {name} (VIF={values[worst]:.4g} > {self.max_vif:g})")
        self.vif_ = pd.Series(vif, name="VIF", dtype=float)
        return kept

    def _encode(self, X):
        check_is_fitted(self)
        original = X
        X = validate_data(
            self, _for_validation(X), dtype=None, ensure_all_finite=False, reset=False
        )
        n = X.shape[0]
        X = _columns(original, X)
        names = _input_feature_names(self)
        position = {name: j for j, name in enumerate(names)}
        owner = type(self).__name__
        for j, name in enumerate(names):
            _check_complete(X[j], name, owner)
        blocks = []
        for t in self._terms:
            if t.name not in self.selected_features_:
                continue
            block = _encode_term(t, X[position[t.name]])
            if not t.categorical:
                _check_complete(block[:, 0], t.name, owner)
            blocks.append(block)
        return np.hstack(blocks) if blocks else np.empty((n, 0))

    def _linear_predictor(self, X):
        """Log odds of ``pos_label_``: :math:`\\beta_0 + x^\\top \\beta`."""
        return self._encode(X) @ self.coef_[0] + self.intercept_[0]

    def decision_function(self, X: MatrixLike) -> np.ndarray:
        """Log odds of ``classes_[1]`` (scikit-learn's convention for binary classifiers).

        This is the linear predictor :math:`\\beta_0 + x^\\top \\beta` of the final model
        when ``pos_label_`` is ``classes_[1]``, and its negative otherwise.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Same columns as in ``fit``; only the selected ones are used.

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        return self._sign * self._linear_predictor(X)

    def predict_proba(self, X: MatrixLike) -> np.ndarray:
        """Probabilities of the two classes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Same columns as in ``fit``.

        Returns
        -------
        ndarray of shape (n_samples, 2)
            Columns follow ``classes_``.
        """
        p = expit(self.decision_function(X))  # probability of classes_[1]
        return np.column_stack([1.0 - p, p])

    def predict(self, X: MatrixLike) -> np.ndarray:
        """Predicted label: ``pos_label_`` where its probability exceeds 0.5.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Same columns as in ``fit``.

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        positive = self._linear_predictor(X) > 0
        negative = self.classes_[self.classes_ != self.pos_label_][0]
        return np.where(positive, self.pos_label_, negative).astype(self.classes_.dtype)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags = ClassifierTags(multi_class=False)
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        return tags
