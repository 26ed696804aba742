"""Calibration: the Hosmer-Lemeshow test and a per-bin calibration table."""

import warnings
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy.stats import chi2, norm

from .._typing import ArrayLike, Label
from ._validation import (
    _check_confidence,
    _check_int,
    _check_labels,
    _check_lengths,
    _check_scores,
)


class HosmerLemeshowResult(NamedTuple):
    """Result of :func:`hosmer_lemeshow`; unpacks as ``statistic, dof, pvalue``."""

    statistic: float
    dof: int
    pvalue: float


def _quantile_type7(x, probs):
    """R's ``quantile(x, probs, type = 7)``, written out as R computes it.

    ``h = 1 + (n - 1) p``; the quantile is ``(1 - g) x[floor(h)] + g x[ceil(h)]`` with
    ``g = h - floor(h)`` (1-based order statistics). Mathematically the same as numpy's
    default ``"linear"`` method; spelled out so that the rounding matches R's as well.
    """
    x = np.sort(x)
    index = 1.0 + (x.shape[0] - 1) * np.asarray(probs, dtype=float)
    lo = np.floor(index).astype(int)
    hi = np.ceil(index).astype(int)
    q = x[lo - 1].copy()
    g = index - lo
    interpolate = (index > lo) & (x[hi - 1] != q)
    q[interpolate] = (1.0 - g[interpolate]) * q[interpolate] + g[interpolate] * x[
        hi[interpolate] - 1
    ]
    return q


def _r_seq_probs(n_groups):
    """R's ``seq(0, 1, 1/g)``: ``(0:n) * by`` with ``by = 1/g``, capped at 1."""
    by = 1.0 / n_groups
    n = int(np.floor(1.0 / by + 1e-10))
    return np.minimum(np.arange(n + 1) * by, 1.0)


def hosmer_lemeshow(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    n_groups: int = 10,
    *,
    pos_label: Label | None = None,
    return_table: bool = False,
) -> HosmerLemeshowResult | tuple[HosmerLemeshowResult, pd.DataFrame]:
    """Hosmer-Lemeshow goodness-of-fit test of predicted probabilities.

    Reproduces R ``ResourceSelection::hoslem.test(x = y, y = yhat, g = n_groups)``:

    1. ``breaks``: the distinct type-7 quantiles of ``y_prob`` at probabilities
       ``0, 1/g, ..., 1`` (deciles of risk for ``g = 10``);
    2. groups: right-closed intervals ``(b_k, b_k+1]``, the first one closed ``[b_0, b_1]``
       (R ``cut(yhat, breaks, include.lowest = TRUE)``);
    3. per group :math:`k`: observed :math:`O_{k1} = \\sum y`, :math:`O_{k0} = \\sum (1-y)`
       and expected :math:`E_{k1} = \\sum \\hat p`, :math:`E_{k0} = \\sum (1 - \\hat p)`;
    4. :math:`\\hat C = \\sum_k \\sum_{c \\in \\{0, 1\\}} (O_{kc} - E_{kc})^2 / E_{kc}`,
       compared with a :math:`\\chi^2` distribution with ``dof = g - 2`` degrees of freedom,
       ``p = P(chi2_dof > C)``.

    As in R, ``dof`` stays ``g - 2`` even when tied probabilities merge quantile breaks and
    fewer than ``g`` groups remain. Differences from R, both in degenerate cases only: a
    group that receives no patient (possible when there are fewer distinct probabilities
    than groups) is dropped with a warning, where R's statistic becomes NaN; and the p-value
    is the survival function, where R's ``1 - pchisq`` rounds p-values below about 1e-16
    to 0.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Binary outcome; any two labels.
    y_prob : array-like of shape (n_samples,)
        Predicted probabilities of the positive class, in [0, 1].
    n_groups : int, default=10
        Number of risk groups ``g`` (at least 3, so that ``dof >= 1``).
    pos_label : scalar, default=None
        Positive class; required unless the labels are 0/1, -1/1 or booleans (then 1 / True).
    return_table : bool, default=False
        Also return the per-group table of observed and expected counts.

    Returns
    -------
    result : HosmerLemeshowResult
        Named tuple ``(statistic, dof, pvalue)``.
    table : pandas.DataFrame
        Only with ``return_table=True``: one row per group with columns ``low``, ``high``
        (interval bounds), ``n``, ``observed_1``, ``expected_1``, ``observed_0``,
        ``expected_0``.

    Raises
    ------
    ValueError
        For probabilities outside [0, 1], NaN / infinite values, a single distinct
        probability, one class only, more than two labels, empty input, inputs of different
        lengths or ``n_groups < 3``.

    Warns
    -----
    UserWarning
        When an empty group is dropped, or when a group's expected count is 0 (a
        probability of exactly 0 or 1 for a whole group), which makes the statistic
        infinite or NaN, as in R.

    References
    ----------
    .. [1] D. W. Hosmer and S. Lemeshow, "Goodness of fit tests for the multiple logistic
       regression model", Communications in Statistics - Theory and Methods 9(10):1043-1069,
       1980.
    .. [2] D. W. Hosmer, S. Lemeshow and R. X. Sturdivant, Applied Logistic Regression,
       3rd ed., Wiley, 2013, section 5.2.2.

    Examples
    --------
    >>> from sklearn_alnm.metrics import hosmer_lemeshow
    >>> y = [0, 0, 1, 0, 1, 1]
    >>> p = [0.1, 0.2, 0.3, 0.6, 0.7, 0.9]
    >>> stat, dof, pvalue = hosmer_lemeshow(y, p, n_groups=3)
    >>> round(stat, 4), dof, round(pvalue, 4)
    (0.8731, 1, 0.3501)
    """
    n_groups = _check_int(n_groups, "n_groups", 3)
    prob = _check_scores(y_prob, "y_prob", probability=True)
    _check_lengths(y_true=y_true, y_prob=prob)
    is_pos, _ = _check_labels(y_true, pos_label)
    y = is_pos.astype(float)

    breaks = np.unique(_quantile_type7(prob, _r_seq_probs(n_groups)))
    if breaks.shape[0] < 2:
        raise ValueError(
            "y_prob holds a single distinct probability; the Hosmer-Lemeshow test needs at "
            "least two distinct predicted probabilities to form risk groups."
        )
    # Right-closed intervals, the first one also closed on the left (include.lowest=TRUE):
    # searchsorted(side="left") returns k + 1 for b_k < p <= b_k+1 and 0 for p == b_0.
    group = np.maximum(np.searchsorted(breaks, prob, side="left") - 1, 0)
    n_bins = breaks.shape[0] - 1
    n = np.bincount(group, minlength=n_bins)
    obs1 = np.bincount(group, weights=y, minlength=n_bins)
    exp1 = np.bincount(group, weights=prob, minlength=n_bins)
    obs0 = n - obs1
    exp0 = n - exp1
    table = pd.DataFrame(
        {
            "low": breaks[:-1],
            "high": breaks[1:],
            "n": n,
            "observed_1": obs1,
            "expected_1": exp1,
            "observed_0": obs0,
            "expected_0": exp0,
        }
    )
    empty = n == 0
    if empty.any():
        warnings.warn(
            f"{int(empty.sum())} Hosmer-Lemeshow group(s) received no patient (fewer distinct "
            "probabilities than groups) and were dropped; R's hoslem.test would return NaN.",
            UserWarning,
            stacklevel=2,
        )
        table = table.loc[~empty].reset_index(drop=True)
    observed = table[["observed_0", "observed_1"]].to_numpy(float)
    expected = table[["expected_0", "expected_1"]].to_numpy(float)
    if np.any(expected == 0.0):
        warnings.warn(
            "A Hosmer-Lemeshow group has an expected count of 0 (all its probabilities are "
            "exactly 0 or 1); the statistic is infinite or NaN, as in R.",
            UserWarning,
            stacklevel=2,
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = float(np.sum((observed - expected) ** 2 / expected))
    dof = n_groups - 2
    pvalue = float(chi2.sf(statistic, dof))
    result = HosmerLemeshowResult(statistic, dof, pvalue)
    if return_table:
        return result, table
    return result


def _wilson_interval(successes, n, confidence):
    """Wilson score interval for a binomial proportion (NaN where ``n == 0``)."""
    z = norm.ppf(1.0 - (1.0 - confidence) / 2.0)
    successes = np.asarray(successes, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = successes / n
        denom = 1.0 + z**2 / n
        centre = (p + z**2 / (2.0 * n)) / denom
        half = z / denom * np.sqrt(p * (1.0 - p) / n + z**2 / (4.0 * n**2))
    return centre - half, centre + half


def calibration_table(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    n_bins: int = 10,
    *,
    strategy: str = "quantile",
    confidence: float = 0.95,
    pos_label: Label | None = None,
) -> pd.DataFrame:
    """Observed event rate against mean predicted probability, per probability bin.

    Bins are right-closed intervals ``(low, high]``, the first one closed ``[low, high]``,
    the same assignment as :func:`sklearn.calibration.calibration_curve` (and as
    :func:`hosmer_lemeshow`), so the non-empty rows reproduce its ``prob_pred`` and
    ``prob_true``:

    * ``strategy="quantile"``: edges at the ``0, 1/K, ..., 1`` quantiles of ``y_prob``
      (``K = n_bins``; numpy's linear quantiles, computed as scikit-learn does); edges that
      coincide because of tied probabilities are merged, so fewer rows may be returned;
    * ``strategy="uniform"``: ``K`` bins of equal width on [0, 1]; bins without patients are
      kept with ``n = 0`` and NaN rates.

    The interval of the observed rate is the Wilson score interval
    :math:`\\frac{\\hat p + z^2/2n \\pm z\\sqrt{\\hat p(1-\\hat p)/n + z^2/4n^2}}{1 + z^2/n}`.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Binary outcome; any two labels.
    y_prob : array-like of shape (n_samples,)
        Predicted probabilities of the positive class, in [0, 1].
    n_bins : int, default=10
        Number of bins ``K``.
    strategy : {"quantile", "uniform"}, default="quantile"
        How the bin edges are chosen.
    confidence : float, default=0.95
        Level of the Wilson interval of the observed rate.
    pos_label : scalar, default=None
        Positive class; required unless the labels are 0/1, -1/1 or booleans (then 1 / True).

    Returns
    -------
    table : pandas.DataFrame
        One row per bin with columns ``low``, ``high`` (edges), ``n``, ``n_positive``,
        ``mean_predicted``, ``observed`` (fraction positive), ``observed_low``,
        ``observed_high`` (Wilson interval).

    Raises
    ------
    ValueError
        For probabilities outside [0, 1], NaN / infinite values, one class only, more than
        two labels, empty input, inputs of different lengths, ``n_bins < 1`` or an unknown
        ``strategy``.

    See Also
    --------
    hosmer_lemeshow : Goodness-of-fit test on the same kind of grouping.
    sklearn.calibration.calibration_curve : The (prob_true, prob_pred) points.

    References
    ----------
    .. [1] E. B. Wilson, "Probable inference, the law of succession, and statistical
       inference", Journal of the American Statistical Association 22(158):209-212, 1927.

    Examples
    --------
    >>> from sklearn_alnm.metrics import calibration_table
    >>> y = [0, 0, 1, 0, 1, 1]
    >>> p = [0.1, 0.2, 0.3, 0.6, 0.7, 0.9]
    >>> table = calibration_table(y, p, n_bins=2, strategy="uniform")
    >>> table[["low", "high", "n", "mean_predicted", "observed"]].round(3)
       low  high  n  mean_predicted  observed
    0  0.0   0.5  3           0.200     0.333
    1  0.5   1.0  3           0.733     0.667
    """
    n_bins = _check_int(n_bins, "n_bins", 1)
    if strategy not in ("quantile", "uniform"):
        raise ValueError(f"strategy must be 'quantile' or 'uniform'; got {strategy!r}.")
    confidence = _check_confidence(confidence)
    prob = _check_scores(y_prob, "y_prob", probability=True)
    _check_lengths(y_true=y_true, y_prob=prob)
    is_pos, _ = _check_labels(y_true, pos_label)

    if strategy == "quantile":
        edges = np.unique(np.percentile(prob, np.linspace(0.0, 1.0, n_bins + 1) * 100))
        if edges.shape[0] == 1:  # a single distinct probability: one closed bin [p, p]
            edges = np.repeat(edges, 2)
    else:
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    k = edges.shape[0] - 1
    # Inner edges only: a probability equal to an inner edge goes to the bin it closes.
    ids = np.searchsorted(edges[1:-1], prob, side="left")
    n = np.bincount(ids, minlength=k)
    n_positive = np.bincount(ids, weights=is_pos.astype(float), minlength=k)
    prob_sum = np.bincount(ids, weights=prob, minlength=k)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_predicted = np.where(n > 0, prob_sum / n, np.nan)
        observed = np.where(n > 0, n_positive / n, np.nan)
    low, high = _wilson_interval(n_positive, n, confidence)
    return pd.DataFrame(
        {
            "low": edges[:-1],
            "high": edges[1:],
            "n": n,
            "n_positive": n_positive.round().astype(np.int64),
            "mean_predicted": mean_predicted,
            "observed": observed,
            "observed_low": low,
            "observed_high": high,
        }
    )


#: Predicted probabilities are clipped to [eps, 1 - eps] before the logit is taken.
_LOGIT_EPS = 1e-8


def _logit(prob):
    prob = np.clip(prob, _LOGIT_EPS, 1.0 - _LOGIT_EPS)
    return np.log(prob) - np.log1p(-prob)


def _fit_binomial(y01, exog, offset=None):
    """statsmodels' binomial GLM of ``y01`` on ``exog``; None when the classes separate."""
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import PerfectSeparationWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error", PerfectSeparationWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            result = sm.GLM(y01, exog, family=sm.families.Binomial(), offset=offset).fit()
        except (PerfectSeparationWarning, np.linalg.LinAlgError, ValueError):
            return None
    if not np.all(np.isfinite(result.params)) or not np.all(np.isfinite(result.bse)):
        return None
    return result


def calibration_metrics(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    *,
    confidence: float = 0.95,
    pos_label: Label | None = None,
) -> dict[str, float]:
    """Calibration intercept and slope with confidence intervals, and the Brier score.

    With :math:`\\mathrm{lp} = \\operatorname{logit}(\\hat p)`:

    * **calibration slope**: :math:`\\beta` of the logistic regression
      :math:`\\operatorname{logit} P(y = 1) = \\alpha + \\beta\\,\\mathrm{lp}`; 1 is ideal,
      below 1 the predictions are too extreme (over-fitting), above 1 too modest;
    * **calibration intercept** (calibration-in-the-large): :math:`\\alpha` of
      :math:`\\operatorname{logit} P(y = 1) = \\alpha + \\mathrm{lp}` (``lp`` as an offset);
      0 is ideal, below 0 the risks are over-estimated on average;
    * **Brier score**: :math:`\\frac1N \\sum_i (\\hat p_i - y_i)^2`
      (:func:`sklearn.metrics.brier_score_loss`), and the scaled Brier score
      :math:`1 - \\mathrm{Brier} / (\\bar y (1 - \\bar y))` (0: no better than predicting the
      prevalence, 1: perfect).

    These are the intercept and slope of R's ``CalibrationCurves::val.prob.ci.2`` (binomial
    ``glm`` fits, Wald intervals as ``confint.default``), following Van Calster et al. (2016).
    Probabilities of exactly 0 or 1 are clipped to :math:`[10^{-8}, 1 - 10^{-8}]` before the
    logit. When the probabilities separate the classes perfectly the slope is not defined
    (the likelihood has no maximum) and slope, intercept and their intervals are NaN.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Binary outcome; any two labels.
    y_prob : array-like of shape (n_samples,)
        Predicted probabilities of the positive class, in [0, 1].
    confidence : float, default=0.95
        Level of the Wald intervals.
    pos_label : scalar, default=None
        Positive class; required unless the labels are 0/1, -1/1 or booleans (then 1 / True).

    Returns
    -------
    result : dict
        ``intercept``, ``intercept_low``, ``intercept_high``, ``slope``, ``slope_low``,
        ``slope_high``, ``brier``, ``brier_scaled``.

    Raises
    ------
    ValueError
        For probabilities outside [0, 1], one class only, inputs of different lengths or an
        invalid ``confidence``.

    See Also
    --------
    smooth_calibration_curve : The flexible calibration curve with its confidence band.
    hosmer_lemeshow : Goodness-of-fit test over risk groups.

    References
    ----------
    .. [1] B. Van Calster et al., "A calibration hierarchy for risk models was defined: from
       utopia to empirical data", Journal of Clinical Epidemiology 74:167-176, 2016.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_alnm.metrics import calibration_metrics
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(0.05, 0.95, 4000)
    >>> y = rng.uniform(size=4000) < p          # outcomes drawn from p: well calibrated
    >>> m = calibration_metrics(y, p)
    >>> m["slope_low"] < 1 < m["slope_high"], m["intercept_low"] < 0 < m["intercept_high"]
    (True, True)
    >>> too_extreme = 1 / (1 + np.exp(-3 * np.log(p / (1 - p))))
    >>> round(calibration_metrics(y, too_extreme)["slope"], 2)   # about 1/3
    0.33
    """
    from sklearn.metrics import brier_score_loss

    confidence = _check_confidence(confidence)
    prob = _check_scores(y_prob, "y_prob", probability=True)
    _check_lengths(y_true=y_true, y_prob=prob)
    is_pos, _ = _check_labels(y_true, pos_label)
    y01 = is_pos.astype(float)
    lp = _logit(prob)
    alpha = 1.0 - confidence
    nan = float("nan")
    result = dict.fromkeys(
        ["intercept", "intercept_low", "intercept_high", "slope", "slope_low", "slope_high"], nan
    )
    slope_fit = _fit_binomial(y01, np.column_stack([np.ones_like(lp), lp]))
    large_fit = _fit_binomial(y01, np.ones((lp.shape[0], 1)), offset=lp)
    if slope_fit is not None and large_fit is not None:
        slope_ci = slope_fit.conf_int(alpha)
        large_ci = large_fit.conf_int(alpha)
        result.update(
            intercept=float(large_fit.params[0]),
            intercept_low=float(large_ci[0, 0]),
            intercept_high=float(large_ci[0, 1]),
            slope=float(slope_fit.params[1]),
            slope_low=float(slope_ci[1, 0]),
            slope_high=float(slope_ci[1, 1]),
        )
    brier = float(brier_score_loss(y01, prob))
    prevalence = float(y01.mean())
    result["brier"] = brier
    result["brier_scaled"] = 1.0 - brier / (prevalence * (1.0 - prevalence))
    return result


def _spline_basis(lp, df):
    """A fitted basis of ``df`` columns on the linear predictor (no constant column).

    ``df=1``: ``lp`` itself (the logistic recalibration line); ``df=2``: a quadratic;
    ``df >= 3``: a cubic B-spline with ``df - 1`` knots at quantiles of ``lp``, extended
    linearly beyond them (scikit-learn's :class:`~sklearn.preprocessing.SplineTransformer`).
    """
    from sklearn.preprocessing import SplineTransformer

    if df == 1:
        return lambda x: np.asarray(x, dtype=float).reshape(-1, 1)
    degree, n_knots = (2, 2) if df == 2 else (3, df - 1)
    spline = SplineTransformer(
        n_knots=n_knots,
        degree=degree,
        knots="quantile",
        extrapolation="linear",
        include_bias=False,
    ).fit(lp.reshape(-1, 1))
    return lambda x: spline.transform(np.asarray(x, dtype=float).reshape(-1, 1))


def smooth_calibration_curve(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    *,
    grid: ArrayLike | None = None,
    df: int | str = "auto",
    confidence: float = 0.95,
    pos_label: Label | None = None,
) -> pd.DataFrame:
    """Flexible calibration curve: the observed risk as a smooth function of the predicted one,
    with a pointwise confidence band.

    The outcome is regressed on a spline of the linear predictor
    :math:`\\mathrm{lp} = \\operatorname{logit}(\\hat p)` in a binomial GLM (statsmodels);
    the curve is the fitted probability along a grid of predicted probabilities, and the
    band is the Wald interval of the fitted linear predictor, transformed back to the
    probability scale (so it stays in [0, 1]). This is the "flexible calibration curve" of
    Van Calster et al. (2016) with a regression spline in place of loess, which gives the
    band without resampling. A curve on the diagonal is perfect calibration; with ``df=1`` the
    curve is the logistic recalibration line of :func:`calibration_metrics`' slope.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Binary outcome; any two labels.
    y_prob : array-like of shape (n_samples,)
        Predicted probabilities of the positive class, in [0, 1].
    grid : array-like of float or None, default=None
        Predicted probabilities at which the curve is evaluated; default 100 points between
        the 2nd and 98th percentiles of ``y_prob`` (the curve is not extrapolated beyond the
        data).
    df : int or "auto", default="auto"
        Degrees of freedom of the spline (number of regression terms besides the constant).
        ``"auto"``: about one per 10 patients of the smaller class, between 1 and 4, so small
        cohorts get the recalibration line instead of an over-fitted wiggle.
    confidence : float, default=0.95
        Level of the pointwise band.
    pos_label : scalar, default=None
        Positive class; required unless the labels are 0/1, -1/1 or booleans (then 1 / True).

    Returns
    -------
    curve : pandas.DataFrame
        Columns ``predicted`` (the grid), ``observed`` (the fitted risk), ``low``, ``high``
        (the band). ``curve.attrs["df"]`` holds the degrees of freedom used. All NaN when the
        probabilities separate the classes perfectly (no finite fit exists).

    Raises
    ------
    ValueError
        For probabilities outside [0, 1], one class only, inputs of different lengths, an
        invalid ``df``, ``grid`` or ``confidence``.

    See Also
    --------
    calibration_metrics : Calibration intercept, slope and Brier score.
    calibration_table : Binned observed rates with Wilson intervals.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_alnm.metrics import smooth_calibration_curve
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(0.05, 0.95, 2000)
    >>> y = rng.uniform(size=2000) < p
    >>> curve = smooth_calibration_curve(y, p, grid=[0.2, 0.5, 0.8])
    >>> curve.round(2)
       predicted  observed   low  high
    0        0.2      0.21  0.18  0.25
    1        0.5      0.50  0.46  0.54
    2        0.8      0.80  0.76  0.83
    """
    from scipy.special import expit

    confidence = _check_confidence(confidence)
    prob = _check_scores(y_prob, "y_prob", probability=True)
    _check_lengths(y_true=y_true, y_prob=prob)
    is_pos, _ = _check_labels(y_true, pos_label)
    if df == "auto":
        smaller = int(min(is_pos.sum(), (~is_pos).sum()))
        df = int(np.clip(smaller // 10, 1, 4))
    else:
        df = _check_int(df, "df", 1)
    if grid is None:
        low, high = np.percentile(prob, [2.0, 98.0])
        grid = np.linspace(low, high, 100)
    else:
        grid = _check_scores(grid, "grid", probability=True)
    lp = _logit(prob)
    basis = _spline_basis(lp, df)
    exog = np.column_stack([np.ones_like(lp), basis(lp)])
    fit = _fit_binomial(is_pos.astype(float), exog)
    nan = np.full(grid.shape[0], np.nan)
    if fit is None:
        curve = pd.DataFrame({"predicted": grid, "observed": nan, "low": nan, "high": nan})
    else:
        at = np.column_stack([np.ones(grid.shape[0]), basis(_logit(grid))])
        eta = at @ fit.params
        se = np.sqrt(np.einsum("ij,jk,ik->i", at, fit.cov_params(), at))
        z = norm.ppf(1.0 - (1.0 - confidence) / 2.0)
        curve = pd.DataFrame(
            {
                "predicted": grid,
                "observed": expit(eta),
                "low": expit(eta - z * se),
                "high": expit(eta + z * se),
            }
        )
    curve.attrs["df"] = df
    return curve
