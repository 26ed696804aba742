"""The clinical tables of the papers: baseline characteristics (Table 1) and odds ratios
of univariable and multivariable logistic regression (Table 2)."""

import warnings
from numbers import Integral, Real

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.exceptions import ConvergenceWarning

from .._typing import ArrayLike, Label, MatrixLike
from ..feature_selection._base import _check_binary_target
from ..feature_selection._univariate import UnivariateFilter
from ..utils import resolve_pos_label
from ._stepwise import (
    _INTERCEPT,
    _dtype_kinds,
    _encode_term,
    _fit_glm,
    _is_constant,
    _level_name,
    _make_term,
    _missing_mask,
    _resolve_categorical,
    _separation_messages,
    _wald_table,
    _warn_separation,
)

_MAX_ITER = 100
_TEST_NAMES = {
    "ttest": "Welch t-test",
    "mannwhitney": "Mann-Whitney U",
    "chi2": "chi-square",
    "fisher": "Fisher exact",
    "constant": "",
}
_BLOCK_FIELDS = ("n", "odds_ratio", "ci_low", "ci_high", "p_value")


def _prepare(X, y, categorical, owner, exclude=()):
    """Common input handling: ``(frame, terms, column values, classes, y01)``."""
    if hasattr(X, "columns") and hasattr(X, "dtypes"):
        frame = X
    else:
        array = np.asarray(X, dtype=object) if not hasattr(X, "dtype") else np.asarray(X)
        if array.ndim != 2:
            raise ValueError(f"{owner}: X must be 2-D (patients x variables); got {array.ndim}-D.")
        frame = pd.DataFrame(array, columns=[f"x{j}" for j in range(array.shape[1])])
    frame = frame.drop(columns=list(exclude))
    if frame.shape[1] == 0:
        raise ValueError(f"{owner}: X has no variable to describe.")
    names = [str(c) for c in frame.columns]
    if len(set(names)) != len(names):
        raise ValueError(f"{owner}: X has duplicated column names.")
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != frame.shape[0]:
        raise ValueError(
            f"{owner}: y must be 1-D with one label per row of X ({frame.shape[0]}); got shape "
            f"{y.shape}."
        )
    classes, y01 = _check_binary_target(y, owner)
    has_names = all(isinstance(c, str) for c in frame.columns)
    forced = _resolve_categorical(categorical, names, has_names, owner)
    kinds = _dtype_kinds(frame)
    values, terms = {}, []
    for j, (name, column) in enumerate(zip(names, frame.columns)):
        series = frame[column]
        if isinstance(series.dtype, pd.CategoricalDtype) or not (
            pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype)
        ):
            array = series.to_numpy(dtype=object)
        else:
            array = series.to_numpy()
        values[name] = array
        terms.append(_make_term(name, array, forced[j], kinds[j]))
    return frame, terms, values, classes, y01


# --------------------------------------------------------------------------------------
# Table 2: odds ratios
# --------------------------------------------------------------------------------------


def _variable_pvalue(result, positions):
    """Wald p-value of a term: the coefficient's for one column, else the joint chi-square
    :math:`\\hat\\beta^\\top \\hat V^{-1} \\hat\\beta` on ``len(positions)`` degrees of freedom."""
    beta = np.asarray(result.params, dtype=float)[positions]
    cov = np.asarray(result.cov_params(), dtype=float)[np.ix_(positions, positions)]
    try:
        statistic = float(beta @ np.linalg.solve(cov, beta))
    except np.linalg.LinAlgError:
        return np.nan
    return float(stats.chi2.sf(statistic, len(positions)))


def _fit_terms(terms, values, y01, rows, what):
    """Logistic model of ``terms`` on ``rows``; per encoded column its Wald row (NaN when
    aliased) and per term its p-value. Returns ``(n, wald, term p-values, fit)``."""
    blocks = [_encode_term(t, values[t.name][rows]) for t in terms]
    names = [_INTERCEPT] + [c for t in terms for c in t.columns]
    design = np.column_stack([np.ones(int(rows.sum()))] + blocks)
    fit = _fit_glm(design, y01[rows], _MAX_ITER, names=names, what=what)
    kept = list(fit.result.params.index)
    wald = _wald_table(fit.result, kept).reindex(names)
    term_p = {}
    for t in terms:
        positions = [kept.index(c) for c in t.columns if c in kept]
        if len(positions) != len(t.columns) or not positions:
            term_p[t.name] = np.nan
        elif len(positions) == 1:
            term_p[t.name] = float(wald.loc[t.columns[0], "p_value"])
        else:
            term_p[t.name] = _variable_pvalue(fit.result, positions)
    return int(rows.sum()), wald, term_p, fit


def _block_rows(term, n, wald, p_term):
    """Rows of one variable in one block (numeric: 1 row; factor: header + one per level)."""
    empty = dict.fromkeys(_BLOCK_FIELDS, np.nan)
    if not term.categorical:
        if wald is None:
            return [dict(empty, n=n)]
        row = wald.loc[term.name]
        return [
            {
                "n": n,
                "odds_ratio": row["odds_ratio"],
                "ci_low": row["ci_low"],
                "ci_high": row["ci_high"],
                "p_value": row["p_value"],
            }
        ]
    rows = [dict(empty, n=n, p_value=p_term)]
    for i, level in enumerate(term.levels):
        if wald is None:
            rows.append(dict(empty))
        elif i == 0:
            rows.append(dict(empty, odds_ratio=1.0))
        else:
            row = wald.loc[f"{term.name}_{_level_name(level)}"]
            rows.append(
                {
                    "n": np.nan,
                    "odds_ratio": row["odds_ratio"],
                    "ci_low": row["ci_low"],
                    "ci_high": row["ci_high"],
                    "p_value": row["p_value"],
                }
            )
    return rows


def _index_entries(term):
    if not term.categorical:
        return [(term.name, "")]
    return [(term.name, "")] + [(term.name, _level_name(level)) for level in term.levels]


def odds_ratio_table(
    X: MatrixLike,
    y: ArrayLike,
    *,
    categorical: ArrayLike | None = None,
    multivariable: str | list[str] = "significant",
    alpha: float = 0.05,
    pos_label: Label | None = None,
) -> pd.DataFrame:
    """Univariable and multivariable logistic regression: odds ratios, 95% CIs, p-values.

    The "Table 2" of the clinical papers. Each variable first gets its own logistic model
    (univariable analysis); then the variables whose univariable p-value is below ``alpha``
    (or those chosen by ``multivariable``) enter one model together (multivariable
    analysis, the independent risk factors).

    * A numeric variable has one row: the odds ratio per unit increase.
    * A categorical variable is treatment-coded against its first level (R's default): a
      header row holding the variable's p-value, then one row per level, the reference with
      odds ratio 1.

    Estimates are maximum likelihood (statsmodels ``GLM``, binomial family, as R's ``glm``);
    odds ratio :math:`e^{\\beta}`, Wald CI :math:`\\exp(\\beta \\pm 1.96\\,\\mathrm{se})`
    (R's ``exp(confint.default(fit))``), Wald p-value :math:`2\\,\\Phi(-|\\beta/\\mathrm{se}|)`.
    The variable's p-value is the Wald test of its coefficients: that of its coefficient for
    one column, the joint chi-square :math:`\\hat\\beta^\\top \\hat V^{-1}\\hat\\beta` on
    ``levels - 1`` degrees of freedom for a factor.

    Missing values: each model uses the rows complete for its variables (R's
    ``na.omit``); column ``n`` gives that number.

    Parameters
    ----------
    X : DataFrame or array-like of shape (n_samples, n_variables)
        Clinical variables (numeric, ``bool``, ``category`` or string columns; missing values
        allowed).
    y : array-like of shape (n_samples,)
        Binary outcome: 0/1 (the odds are those of 1), or any two labels with ``pos_label``.
    categorical : None, array-like of str or int, or boolean mask, default=None
        Columns to treat as categorical besides the ``category``, ``bool`` and string
        columns (e.g. integer-coded grade).
    multivariable : {"significant", "all"} or list of str, default="significant"
        Variables of the multivariable model: those with univariable p < ``alpha``, all
        variables, or the named ones. An empty list skips the multivariable model.
    alpha : float, default=0.05
        Univariable significance level used by ``multivariable="significant"``.
    pos_label : scalar or None, default=None
        The outcome whose odds are modelled (e.g. ``"N+"``). Required unless the labels are
        0/1, -1/1 or booleans; never guessed from the labels' sorted order.

    Returns
    -------
    pandas.DataFrame
        Index: (``variable``, ``level``), ``level`` empty for a numeric variable and for a
        factor's header row. Columns: a two-level index, ``"univariable"`` and
        ``"multivariable"`` by ``n``, ``odds_ratio``, ``ci_low``, ``ci_high``, ``p_value``
        (NaN where a variable is not in the multivariable model, or for a reference level).

    Raises
    ------
    ValueError
        For a target that is not binary or of the wrong length, an unknown variable in
        ``multivariable``, or a ``categorical`` entry that does not match ``X``.

    Warns
    -----
    SeparationWarning
        When a variable, a level (a zero cell), or the multivariable model separates the
        classes: its odds ratio is infinite and the reported numbers are meaningless.
    UserWarning
        For a constant variable (left out) or when no variable is significant.

    See Also
    --------
    StepwiseLogisticRegression : Multivariable model with terms chosen by AIC / BIC.
    baseline_table : The patients' characteristics by outcome (Table 1).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn_alnm.clinical import odds_ratio_table
    >>> rng = np.random.default_rng(0)
    >>> n = 200
    >>> X = pd.DataFrame({
    ...     "size_mm": rng.normal(20, 5, n),
    ...     "age": rng.normal(55, 10, n),
    ...     "ER": rng.choice(["negative", "positive"], n),
    ... })
    >>> logit = 0.25 * (X["size_mm"] - 20) - 1.0 * (X["ER"] == "positive") + 0.5
    >>> y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    >>> table = odds_ratio_table(X, y)
    >>> table["univariable"].round(3)  # doctest: +NORMALIZE_WHITESPACE
                          n  odds_ratio  ci_low  ci_high  p_value
    variable level
    size_mm             200       1.267   1.170    1.371    0.000
    age                 200       1.020   0.993    1.049    0.152
    ER                  200         NaN     NaN      NaN    0.002
             negative  <NA>       1.000     NaN      NaN      NaN
             positive  <NA>       0.406   0.230    0.719    0.002
    >>> table["multivariable"].round(3)  # doctest: +NORMALIZE_WHITESPACE
                          n  odds_ratio  ci_low  ci_high  p_value
    variable level
    size_mm             200       1.293   1.188    1.407    0.000
    age                <NA>         NaN     NaN      NaN      NaN
    ER                  200         NaN     NaN      NaN    0.001
             negative  <NA>       1.000     NaN      NaN      NaN
             positive  <NA>       0.307   0.157    0.601    0.001
    """
    owner = "odds_ratio_table"
    if isinstance(alpha, bool) or not isinstance(alpha, Real) or not 0 < alpha <= 1:
        raise ValueError(f"{owner}: alpha must be a number in (0, 1]; got {alpha!r}.")
    _, terms, values, classes, _ = _prepare(X, y, categorical, owner)
    pos_label = resolve_pos_label(classes, pos_label, owner=owner)
    y01 = np.asarray(np.asarray(y) == pos_label, dtype=np.int64)
    classes = (classes[classes != pos_label][0], pos_label)  # (reference, event)
    by_name = {t.name: t for t in terms}
    if isinstance(multivariable, str):
        if multivariable not in ("significant", "all"):
            raise ValueError(
                f"{owner}: multivariable must be 'significant', 'all' or a list of variable "
                f"names; got {multivariable!r}."
            )
    else:
        multivariable = [str(v) for v in multivariable]
        unknown = [v for v in multivariable if v not in by_name]
        if unknown:
            raise ValueError(f"{owner}: multivariable names unknown variables {unknown}.")

    separation, constant = [], []
    univariable, p_uni = {}, {}
    not_converged = []
    for t in terms:
        rows = ~_missing_mask(values[t.name])
        if _is_constant(t, values[t.name]) or len(np.unique(y01[rows])) < 2:
            constant.append(t.name)
            univariable[t.name] = _block_rows(t, int(rows.sum()), None, np.nan)
            p_uni[t.name] = np.nan
            continue
        encoded = _encode_term(t, values[t.name][rows])
        separation += _separation_messages(t, encoded, y01[rows], classes)
        n, wald, term_p, fit = _fit_terms([t], values, y01, rows, f"variable {t.name!r}")
        if not fit.converged:
            not_converged.append(t.name)
        univariable[t.name] = _block_rows(t, n, wald, term_p[t.name])
        p_uni[t.name] = term_p[t.name]
    _warn_separation(separation, stacklevel=2)
    if constant:
        warnings.warn(
            f"{owner}: variable(s) {constant} do not vary (or only one outcome is observed "
            "where they are present); no odds ratio is estimated for them.",
            UserWarning,
            stacklevel=2,
        )

    if multivariable == "all":
        chosen = [t.name for t in terms if t.name not in constant]
    elif multivariable == "significant":
        chosen = [t.name for t in terms if p_uni[t.name] < alpha]
        if not chosen:
            warnings.warn(
                f"{owner}: no variable reached univariable p < {alpha}; the multivariable "
                "model is not fitted.",
                UserWarning,
                stacklevel=2,
            )
    else:
        chosen = [t.name for t in terms if t.name in multivariable]

    multi = {}
    if chosen:
        rows = np.ones(len(y01), dtype=bool)
        for name in chosen:
            rows &= ~_missing_mask(values[name])
        dropped = [name for name in chosen if _is_constant(by_name[name], values[name][rows])]
        if dropped:
            warnings.warn(
                f"{owner}: variable(s) {dropped} do not vary over the {int(rows.sum())} rows "
                "complete for the multivariable model; left out of it.",
                UserWarning,
                stacklevel=2,
            )
        model_terms = [by_name[name] for name in chosen if name not in dropped]
        if model_terms and len(np.unique(y01[rows])) == 2:
            n, wald, term_p, fit = _fit_terms(
                model_terms, values, y01, rows, "the multivariable model"
            )
            if not fit.converged:
                not_converged.append("the multivariable model")
            aliased = [c for c in wald.index[wald["beta"].isna()] if c != _INTERCEPT]
            if aliased:
                warnings.warn(
                    f"{owner}: column(s) {aliased} of the multivariable model are linear "
                    "combinations of the others (aliased; or a level absent from its complete "
                    "cases); their odds ratios are not estimable (NaN, as R's NA).",
                    UserWarning,
                    stacklevel=2,
                )
            if fit.separated:
                _warn_separation(
                    [
                        f"the multivariable model ({[t.name for t in model_terms]}) predicts "
                        "probabilities numerically 0 or 1"
                    ],
                    stacklevel=2,
                )
            for t in model_terms:
                multi[t.name] = _block_rows(t, n, wald, term_p[t.name])
    if not_converged:
        warnings.warn(
            f"{owner}: the logistic fit did not converge in {_MAX_ITER} iterations for "
            f"{not_converged}.",
            ConvergenceWarning,
            stacklevel=2,
        )

    index = []
    data = {(block, f): [] for block in ("univariable", "multivariable") for f in _BLOCK_FIELDS}
    for t in terms:
        entries = _index_entries(t)
        index += entries
        uni_rows = univariable[t.name]
        multi_rows = multi.get(t.name, [dict.fromkeys(_BLOCK_FIELDS, np.nan)] * len(entries))
        for block, block_rows in (("univariable", uni_rows), ("multivariable", multi_rows)):
            for row in block_rows:
                for f in _BLOCK_FIELDS:
                    data[(block, f)].append(row[f])
    table = pd.DataFrame(
        data,
        index=pd.MultiIndex.from_tuples(index, names=["variable", "level"]),
    )
    table.columns = pd.MultiIndex.from_tuples(table.columns)
    return table.astype({c: ("Int64" if c[1] == "n" else float) for c in table.columns})


# --------------------------------------------------------------------------------------
# Table 1: baseline characteristics
# --------------------------------------------------------------------------------------


def _fmt(value, decimals):
    return "NA" if value is None or not np.isfinite(value) else f"{value:.{decimals}f}"


def _describe_continuous(x, use_mean, decimals):
    if x.size == 0:
        return "NA"
    if use_mean:
        sd = np.std(x, ddof=1) if x.size > 1 else np.nan
        return f"{_fmt(np.mean(x), decimals)} ± {_fmt(sd, decimals)}"
    q1, median, q3 = np.percentile(x, [25, 50, 75])
    return f"{_fmt(median, decimals)} [{_fmt(q1, decimals)}, {_fmt(q3, decimals)}]"


def _count(count, total, decimals):
    if total == 0:
        return f"{count} (NA)"
    return f"{count} ({_fmt(100.0 * count / total, decimals)}%)"


def baseline_table(
    X: MatrixLike,
    y: ArrayLike,
    groups: ArrayLike | str | None = None,
    *,
    categorical: ArrayLike | None = None,
    normality: str = "shapiro",
    alpha: float = 0.05,
    decimals: int = 1,
    pos_label: Label | None = None,
) -> pd.DataFrame:
    """Characteristics of the patients by outcome, with the test of each difference.

    The "Table 1" of the clinical papers. For every variable and each outcome class:

    * continuous: mean ± SD (``ddof=1``) when the variable is normal in both classes,
      otherwise median [Q1, Q3] (quartiles by linear interpolation, R's default type 7);
      compared with Welch's t-test or the Mann-Whitney U test respectively;
    * categorical: n (%) per level, the percentage over the class's non-missing values;
      compared with Pearson's chi-square test (Yates-corrected for 2 x 2 tables, as R's
      ``chisq.test``), or Fisher's exact test when an expected count is below 5 (exact also
      for 2 x k tables, as R's ``fisher.test``).

    The tests and their choice are those of
    :class:`~sklearn_alnm.feature_selection.UnivariateFilter`: normality by the Shapiro-Wilk
    test at level ``alpha`` in each class (a class with fewer than 3 values, or without
    variation, counts as not normal). Missing values are left out of the statistics and
    tests of their variable and counted in a ``"missing"`` row (n (%) of the class).

    With ``groups`` (e.g. ``"training"`` / ``"validation"`` / ``"test"`` per patient),
    each cohort gets its own block of columns, described and tested on its own patients.

    Parameters
    ----------
    X : DataFrame or array-like of shape (n_samples, n_variables)
        Clinical variables; missing values allowed.
    y : array-like of shape (n_samples,)
        Binary outcome (any two labels).
    groups : array-like of shape (n_samples,), str or None, default=None
        Cohort of each patient, or the name of the column of ``X`` holding it (that column is
        then not described). Cohorts appear in the order of a ``category`` dtype's categories,
        otherwise in order of first appearance. ``None``: one cohort named ``"all"``.
    categorical : None, array-like of str or int, or boolean mask, default=None
        Columns to treat as categorical besides the ``category``, ``bool`` and string
        columns (e.g. integer-coded grade).
    normality : {"shapiro", "normal", "nonnormal"}, default="shapiro"
        ``"shapiro"``: decide per variable and cohort with the Shapiro-Wilk test;
        ``"normal"``: always mean ± SD and the t-test; ``"nonnormal"``: always median [IQR]
        and the Mann-Whitney test. Where the t-test is undefined (fewer than two values in a
        class, or no variation within either) the Mann-Whitney test and median [IQR] are used.
    alpha : float, default=0.05
        Significance level of the Shapiro-Wilk normality test.
    decimals : int, default=1
        Decimals of means, SDs, quantiles and percentages (p-values are kept unrounded).
    pos_label : scalar or None, default=None
        The positive outcome (e.g. ``"N+"``): its column comes second, after the negative
        one, as the papers print them. ``None``: the labels in sorted order. The tests do not
        depend on it.

    Returns
    -------
    pandas.DataFrame
        Index: (``variable``, ``level``); a first row (``"n"``, ``""``) with the class sizes;
        ``level`` is empty for a continuous variable and for a categorical variable's header
        row (which holds the test), then one row per level, and a ``"missing"`` row for a
        variable with missing values. Columns: a two-level index, cohort by the two class
        labels (as strings), ``"test"`` and ``"p_value"`` (float; NaN where no test applies).

    Raises
    ------
    ValueError
        For a target that is not binary or of the wrong length, missing cohort labels, or
        invalid parameters.

    See Also
    --------
    odds_ratio_table : Univariable and multivariable odds ratios (Table 2).
    sklearn_alnm.feature_selection.UnivariateFilter : The same tests, as a feature filter.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn_alnm.clinical import baseline_table
    >>> rng = np.random.default_rng(2)
    >>> n = 120
    >>> y = np.repeat(["N0", "N+"], n // 2)
    >>> X = pd.DataFrame({
    ...     "age": rng.normal(52, 9, n).round(),
    ...     "size_mm": rng.lognormal(3, 0.6, n) * np.where(y == "N+", 1.5, 1.0),
    ...     "ER": rng.choice(["negative", "positive"], n),
    ... })
    >>> cohort = np.tile(["training", "test"], n // 2)
    >>> table = baseline_table(X, y, cohort, pos_label="N+")
    >>> table.columns.get_level_values(0).unique().tolist()
    ['training', 'test']
    >>> print(table["training"].round(3).to_string())  # doctest: +NORMALIZE_WHITESPACE
                                      N0                 N+            test  p_value
    variable level
    n                                 30                 30                      NaN
    age                       53.4 ± 8.9         53.5 ± 8.3    Welch t-test    0.976
    size_mm            17.6 [11.7, 27.8]  35.2 [22.8, 48.4]  Mann-Whitney U    0.000
    ER                                                           chi-square    0.119
             negative         13 (43.3%)         20 (66.7%)                      NaN
             positive         17 (56.7%)         10 (33.3%)                      NaN
    """
    owner = "baseline_table"
    if normality not in ("shapiro", "normal", "nonnormal"):
        raise ValueError(
            f"{owner}: normality must be 'shapiro', 'normal' or 'nonnormal'; got {normality!r}."
        )
    if isinstance(alpha, bool) or not isinstance(alpha, Real) or not 0 < alpha < 1:
        raise ValueError(f"{owner}: alpha must be a number in (0, 1); got {alpha!r}.")
    if isinstance(decimals, bool) or not isinstance(decimals, Integral) or decimals < 0:
        raise ValueError(f"{owner}: decimals must be a non-negative integer; got {decimals!r}.")

    exclude = ()
    if isinstance(groups, str):
        if not (hasattr(X, "columns") and groups in X.columns):
            raise ValueError(f"{owner}: groups={groups!r} is not a column of X.")
        exclude = (groups,)
        groups = X[groups]
    _, terms, values, classes, y01 = _prepare(X, y, categorical, owner, exclude=exclude)
    if pos_label is not None:
        positive = resolve_pos_label(classes, pos_label, owner=owner)
        if positive == classes[0]:  # the negative class first, the positive second
            classes, y01 = classes[::-1], 1 - y01
    n = y01.shape[0]
    if groups is None:
        cohorts = ["all"]
        membership = np.zeros(n, dtype=int)
    else:
        group_series = pd.Series(groups) if not isinstance(groups, pd.Series) else groups
        group_values = group_series.to_numpy(dtype=object)
        if group_values.shape[0] != n:
            raise ValueError(
                f"{owner}: groups has {group_values.shape[0]} entries for {n} rows of X."
            )
        if _missing_mask(group_values).any():
            raise ValueError(f"{owner}: groups has missing cohort labels.")
        if isinstance(group_series.dtype, pd.CategoricalDtype):
            present = set(group_values.tolist())
            order = [c for c in group_series.cat.categories if c in present]
        else:
            order = list(pd.unique(pd.Series(group_values, dtype=object)))
        position = {c: i for i, c in enumerate(order)}
        membership = np.array([position[v] for v in group_values])
        cohorts = [str(c) for c in order]

    continuous_test = {"shapiro": "auto", "normal": "ttest", "nonnormal": "mannwhitney"}[normality]
    tester = UnivariateFilter(continuous_test=continuous_test, normality_alpha=alpha)
    labels = [str(c) for c in classes]

    index = [("n", "")]
    for t in terms:
        index.append((t.name, ""))
        if t.categorical:
            index += [(t.name, _level_name(level)) for level in t.levels]
        if _missing_mask(values[t.name]).any():
            index.append((t.name, "missing"))

    columns = {}
    for k, cohort in enumerate(cohorts):
        in_cohort = membership == k
        yk = y01[in_cohort]
        cells = {label: [] for label in labels}
        tests, pvalues = [], []
        for c, label in enumerate(labels):
            cells[label].append(str(int(np.sum(yk == c))))
        tests.append("")
        pvalues.append(np.nan)
        for t in terms:
            column = values[t.name][in_cohort]
            missing = _missing_mask(column)
            ok = ~missing
            both = ok.any() and np.all([np.any(yk[ok] == c) for c in (0, 1)])
            if not t.categorical:
                x = _encode_term(t, column)[:, 0]
                test, p = "", np.nan
                if both:
                    _, pv, name = tester._test_continuous(x[ok][:, None], yk[ok])
                    test, p = name[0], float(pv[0]) if name[0] != "constant" else np.nan
                use_mean = test == "ttest" or (test != "mannwhitney" and normality == "normal")
                for c, label in enumerate(labels):
                    cells[label].append(_describe_continuous(x[ok & (yk == c)], use_mean, decimals))
                tests.append(_TEST_NAMES.get(test, ""))
                pvalues.append(p)
            else:
                index_of = {level: i for i, level in enumerate(t.levels)}
                codes = np.array([index_of[v] if o else -1 for v, o in zip(column, ok)])
                test, p = "", np.nan
                if both:
                    observed = np.unique(codes[ok])
                    compact = np.searchsorted(observed, codes[ok])
                    _, p, test = tester._test_categorical(compact, yk[ok], t.name)
                    p = np.nan if test == "constant" else float(p)
                for label in labels:
                    cells[label].append("")
                tests.append(_TEST_NAMES.get(test, ""))
                pvalues.append(p)
                for i in range(len(t.levels)):
                    for c, label in enumerate(labels):
                        total = int(np.sum(ok & (yk == c)))
                        count = int(np.sum((codes == i) & (yk == c)))
                        cells[label].append(_count(count, total, decimals))
                    tests.append("")
                    pvalues.append(np.nan)
            if _missing_mask(values[t.name]).any():
                for c, label in enumerate(labels):
                    total = int(np.sum(yk == c))
                    cells[label].append(_count(int(np.sum(missing & (yk == c))), total, decimals))
                tests.append("")
                pvalues.append(np.nan)
        for label in labels:
            columns[(cohort, label)] = cells[label]
        columns[(cohort, "test")] = tests
        columns[(cohort, "p_value")] = np.asarray(pvalues, dtype=float)
    table = pd.DataFrame(
        columns, index=pd.MultiIndex.from_tuples(index, names=["variable", "level"])
    )
    table.columns = pd.MultiIndex.from_tuples(table.columns)
    return table
