"""Calibration: the Hosmer-Lemeshow test and a per-bin calibration table."""

import warnings
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy.stats import chi2, norm

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


def hosmer_lemeshow(y_true, y_prob, n_groups=10, *, pos_label=None, return_table=False):
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
    y_true, y_prob, n_bins=10, *, strategy="quantile", confidence=0.95, pos_label=None
):
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
