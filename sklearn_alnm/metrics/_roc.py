"""Area under the ROC curve with confidence intervals, and DeLong's test for two paired curves.

Notation (DeLong et al., 1988; Sun & Xu, 2014). There are :math:`m` positive patients
(cases) with scores :math:`X_1..X_m` and :math:`n` negative patients (controls) with scores
:math:`Y_1..Y_n`. With the kernel :math:`\\psi(x, y) = 1` if :math:`x > y`, :math:`1/2` if
:math:`x = y` and :math:`0` otherwise,

* AUC: :math:`\\hat\\theta = \\frac{1}{mn} \\sum_i \\sum_j \\psi(X_i, Y_j)`;
* placement of case :math:`i` among the controls: :math:`V_{10}(X_i) = \\frac{1}{n}\\sum_j
  \\psi(X_i, Y_j)`; placement of control :math:`j` among the cases:
  :math:`V_{01}(Y_j) = \\frac{1}{m} \\sum_i \\psi(X_i, Y_j)`;
* :math:`S_{10}` and :math:`S_{01}`: sample (co)variances of the placements with the unbiased
  :math:`m - 1` and :math:`n - 1` denominators; :math:`\\operatorname{Var}(\\hat\\theta) =
  S_{10}/m + S_{01}/n`, and for several scores on the same patients the covariance matrix
  :math:`S = S_{10}/m + S_{01}/n`.

The placements are computed in :math:`O(N \\log N)` from midranks (Sun & Xu, 2014): with
:math:`T_Z` the midranks in the pooled sample, :math:`T_X` among the cases and :math:`T_Y`
among the controls, :math:`V_{10}(X_i) = (T_Z(X_i) - T_X(X_i)) / n` and
:math:`V_{01}(Y_j) = 1 - (T_Z(Y_j) - T_Y(Y_j)) / m`.
"""

import math
import warnings
from collections import namedtuple
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy.stats import norm, rankdata
from sklearn.utils import check_random_state

from .._typing import ArrayLike, Label, RandomStateLike
from ._validation import (
    _check_confidence,
    _check_int,
    _check_labels,
    _check_lengths,
    _check_scores,
)

_ALTERNATIVES = ("two-sided", "greater", "less")
# Largest number of resampled scores ranked at once by the bootstrap (memory bound, ~64 MB).
_BOOTSTRAP_CHUNK_ELEMENTS = 2**23


class RocAucCI(NamedTuple):
    """AUC with the bounds of its confidence interval; unpacks as ``auc, low, high``."""

    auc: float
    low: float
    high: float


def _delong_placements(pos_scores, neg_scores):
    """AUCs and DeLong placements by the midrank algorithm of Sun & Xu (2014).

    Parameters
    ----------
    pos_scores : ndarray of shape (n_curves, m)
        Scores of the positive patients (cases), one row per scoring rule.
    neg_scores : ndarray of shape (n_curves, n)
        Scores of the negative patients (controls), same patient order in every row.

    Returns
    -------
    auc : ndarray of shape (n_curves,)
    v10 : ndarray of shape (n_curves, m)
        Placement of each case among the controls, ``P(Y < X_i) + P(Y = X_i) / 2``.
    v01 : ndarray of shape (n_curves, n)
        Placement of each control among the cases, ``P(X > Y_j) + P(X = Y_j) / 2``.
    """
    pos_scores = np.atleast_2d(pos_scores)
    neg_scores = np.atleast_2d(neg_scores)
    m = pos_scores.shape[1]
    n = neg_scores.shape[1]
    t_z = rankdata(np.concatenate([pos_scores, neg_scores], axis=1), method="average", axis=1)
    t_x = rankdata(pos_scores, method="average", axis=1)
    t_y = rankdata(neg_scores, method="average", axis=1)
    # Sum of the cases' pooled midranks minus their minimal possible sum = Mann-Whitney U.
    auc = (t_z[:, :m].sum(axis=1) - m * (m + 1) / 2.0) / (m * n)
    v10 = (t_z[:, :m] - t_x) / n
    v01 = 1.0 - (t_z[:, m:] - t_y) / m
    return auc, v10, v01


def _delong_covariance(v10, v01):
    """Covariance matrix ``S10 / m + S01 / n`` of the AUCs (unbiased placement covariances)."""
    m = v10.shape[1]
    n = v01.shape[1]
    s10 = np.atleast_2d(np.cov(v10, ddof=1))
    s01 = np.atleast_2d(np.cov(v01, ddof=1))
    return s10 / m + s01 / n


def _split_by_class(y_true, y_scores, pos_label):
    """Validate labels and score arrays; return (cases, controls) score matrices."""
    is_pos, _ = _check_labels(y_true, pos_label)
    scores = np.vstack(y_scores)
    return scores[:, is_pos], scores[:, ~is_pos]


def delong_roc_variance(
    y_true: ArrayLike, y_score: ArrayLike, *, pos_label: Label | None = None
) -> tuple[float, float]:
    """AUC and its DeLong variance, computed by the fast midrank algorithm.

    The variance is :math:`S_{10}/m + S_{01}/n`, the unbiased (``m - 1`` / ``n - 1``)
    variances of the case and control placements divided by the number of cases :math:`m`
    and controls :math:`n` (DeLong et al., 1988). The placements come from midranks in
    :math:`O(N \\log N)` time (Sun & Xu, 2014), so cohorts of any size are cheap.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Binary outcome; any two labels.
    y_score : array-like of shape (n_samples,)
        Scores, higher meaning more likely positive (probabilities, logits, reader scores).
    pos_label : scalar, default=None
        Positive class; required unless the labels are 0/1, -1/1 or booleans (then 1 / True).

    Returns
    -------
    auc : float
    variance : float
        NaN when there is a single case or a single control (the placement variance is
        then undefined).

    Raises
    ------
    ValueError
        For one class only, more than two labels, NaN / infinite scores, empty input or
        inputs of different lengths.

    See Also
    --------
    roc_auc_ci : AUC with a DeLong or bootstrap confidence interval.

    References
    ----------
    .. [1] E. R. DeLong, D. M. DeLong and D. L. Clarke-Pearson, "Comparing the areas under two
       or more correlated receiver operating characteristic curves: a nonparametric approach",
       Biometrics 44(3):837-845, 1988.
    .. [2] X. Sun and W. Xu, "Fast implementation of DeLong's algorithm for comparing the areas
       under correlated receiver operating characteristic curves", IEEE Signal Processing
       Letters 21(11):1389-1393, 2014.

    Examples
    --------
    >>> from sklearn_alnm.metrics import delong_roc_variance
    >>> auc, var = delong_roc_variance([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    >>> float(auc), round(float(var), 6)
    (0.75, 0.125)
    """
    y_score = _check_scores(y_score)
    _check_lengths(y_true=y_true, y_score=y_score)
    pos, neg = _split_by_class(y_true, [y_score], pos_label)
    auc, v10, v01 = _delong_placements(pos, neg)
    if pos.shape[1] < 2 or neg.shape[1] < 2:
        return float(auc[0]), float("nan")
    return float(auc[0]), float(_delong_covariance(v10, v01)[0, 0])


def delong_roc_covariance(
    y_true: ArrayLike, *y_scores: ArrayLike, pos_label: Label | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """AUCs of several scores on the same patients and their DeLong covariance matrix.

    :math:`S = S_{10}/m + S_{01}/n`, with :math:`S_{10}` and :math:`S_{01}` the unbiased
    covariance matrices of the case and control placements (DeLong et al., 1988; midrank
    algorithm of Sun & Xu, 2014), as R pROC's ``cov(roc1, roc2, method = "delong")``; its
    diagonal holds the variances of :func:`delong_roc_variance`.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Binary outcome; any two labels.
    *y_scores : array-like of shape (n_samples,)
        One or more scores, in the patient order of ``y_true``.
    pos_label : scalar, default=None
        Positive class; required unless the labels are 0/1, -1/1 or booleans (then 1 / True).

    Returns
    -------
    aucs : ndarray of shape (n_scores,)
    covariance : ndarray of shape (n_scores, n_scores)
        NaN when there is a single case or a single control.

    Examples
    --------
    >>> from sklearn_alnm.metrics import delong_roc_covariance
    >>> y = [0, 0, 0, 0, 1, 1, 1, 1]
    >>> aucs, cov = delong_roc_covariance(y, [0.1, 0.2, 0.3, 0.6, 0.4, 0.7, 0.8, 0.9],
    ...                                   [1, 2, 2, 3, 2, 3, 4, 4])
    >>> aucs.round(4).tolist(), cov.shape
    ([0.9375, 0.8438], (2, 2))
    """
    if not y_scores:
        raise ValueError("give at least one score (y_score) after y_true.")
    scores = [_check_scores(s, f"y_scores[{i}]") for i, s in enumerate(y_scores)]
    _check_lengths(y_true=y_true, **{f"y_scores[{i}]": s for i, s in enumerate(scores)})
    pos, neg = _split_by_class(y_true, scores, pos_label)
    aucs, v10, v01 = _delong_placements(pos, neg)
    k = len(scores)
    if pos.shape[1] < 2 or neg.shape[1] < 2:
        return aucs.astype(float), np.full((k, k), np.nan)
    return aucs.astype(float), np.asarray(_delong_covariance(v10, v01), dtype=float)


def roc_auc_ci(
    y_true: ArrayLike,
    y_score: ArrayLike,
    *,
    method: str = "delong",
    confidence: float = 0.95,
    n_bootstraps: int = 2000,
    random_state: RandomStateLike = None,
    pos_label: Label | None = None,
) -> RocAucCI:
    """Area under the ROC curve with a DeLong or stratified-bootstrap confidence interval.

    The AUC is the Mann-Whitney probability that a random positive patient scores higher than
    a random negative one, ties counting one half. It equals
    :func:`sklearn.metrics.roc_auc_score`.

    * ``method="delong"``: :math:`\\hat\\theta \\pm z_{1-\\alpha/2}
      \\sqrt{S_{10}/m + S_{01}/n}` with the unbiased placement variances of DeLong et al.
      (1988), computed by the :math:`O(N \\log N)` midrank algorithm of Sun & Xu (2014); the
      bounds are clipped to [0, 1]. This reproduces R pROC's
      ``ci.auc(roc, method = "delong")``.
    * ``method="bootstrap"``: cases and controls are resampled with replacement *separately*
      (stratified, so every replicate keeps the cohort's ``m`` cases and ``n`` controls, as
      pROC's default ``boot.stratified = TRUE``); the interval is the percentile interval of
      the replicate AUCs, with the quantile definition of R's default type 7 (= numpy's
      default).

    Direction: a higher score always means "more likely positive" (as in scikit-learn). The
    curve is never flipped to make the AUC exceed 0.5 (unlike pROC's ``direction = "auto"``);
    a score that works backwards gets an AUC below 0.5.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Binary outcome; any two labels.
    y_score : array-like of shape (n_samples,)
        Scores, higher meaning more likely positive (probabilities, logits, reader scores).
    method : {"delong", "bootstrap"}, default="delong"
        How the interval is computed.
    confidence : float, default=0.95
        Confidence level of the interval.
    n_bootstraps : int, default=2000
        Number of bootstrap replicates (``method="bootstrap"`` only).
    random_state : int, RandomState instance or None, default=None
        Seed of the bootstrap resampling; an int makes the interval reproducible.
    pos_label : scalar, default=None
        Positive class; required unless the labels are 0/1, -1/1 or booleans (then 1 / True).
        E.g. ``pos_label="N+"`` for the labels ``"N0"`` / ``"N+"``.

    Returns
    -------
    result : RocAucCI
        Named tuple ``(auc, low, high)``. With a single case or a single control the DeLong
        variance is undefined and ``low`` / ``high`` are NaN (with a warning), as in pROC.

    Raises
    ------
    ValueError
        For one class only, more than two labels, NaN / infinite scores, empty input, inputs
        of different lengths, or an invalid ``method`` / ``confidence`` / ``n_bootstraps``.

    See Also
    --------
    delong_test : Compare the AUCs of two scores on the same patients.

    References
    ----------
    .. [1] E. R. DeLong, D. M. DeLong and D. L. Clarke-Pearson, "Comparing the areas under two
       or more correlated receiver operating characteristic curves: a nonparametric approach",
       Biometrics 44(3):837-845, 1988.
    .. [2] X. Sun and W. Xu, "Fast implementation of DeLong's algorithm for comparing the areas
       under correlated receiver operating characteristic curves", IEEE Signal Processing
       Letters 21(11):1389-1393, 2014.
    .. [3] X. Robin et al., "pROC: an open-source package for R and S+ to analyze and compare
       ROC curves", BMC Bioinformatics 12:77, 2011.

    Examples
    --------
    >>> from sklearn_alnm.metrics import roc_auc_ci
    >>> y = [0, 0, 0, 1, 1, 1]
    >>> score = [0.1, 0.3, 0.6, 0.4, 0.7, 0.9]
    >>> auc, low, high = roc_auc_ci(y, score)
    >>> round(auc, 4), round(low, 4), round(high, 4)
    (0.8889, 0.5809, 1.0)
    >>> ci = roc_auc_ci(y, score, method="bootstrap", n_bootstraps=500, random_state=0)
    >>> ci.low <= ci.auc <= ci.high
    True
    """
    if method not in ("delong", "bootstrap"):
        raise ValueError(f"method must be 'delong' or 'bootstrap'; got {method!r}.")
    confidence = _check_confidence(confidence)
    y_score = _check_scores(y_score)
    _check_lengths(y_true=y_true, y_score=y_score)
    pos, neg = _split_by_class(y_true, [y_score], pos_label)
    alpha = 1.0 - confidence

    if method == "delong":
        auc, v10, v01 = _delong_placements(pos, neg)
        auc = float(auc[0])
        if pos.shape[1] < 2 or neg.shape[1] < 2:
            warnings.warn(
                "The DeLong interval needs at least two positive and two negative patients; "
                "returning NaN bounds.",
                UserWarning,
                stacklevel=2,
            )
            return RocAucCI(auc, float("nan"), float("nan"))
        se = math.sqrt(max(float(_delong_covariance(v10, v01)[0, 0]), 0.0))
        z = float(norm.ppf(1.0 - alpha / 2.0))
        low = min(max(auc - z * se, 0.0), 1.0)
        high = min(max(auc + z * se, 0.0), 1.0)
        return RocAucCI(auc, low, high)

    n_bootstraps = _check_int(n_bootstraps, "n_bootstraps", 1)
    auc = float(_delong_placements(pos, neg)[0][0])
    aucs = _bootstrap_aucs(pos[0], neg[0], n_bootstraps, check_random_state(random_state))
    low, high = np.quantile(aucs, [alpha / 2.0, 1.0 - alpha / 2.0])
    return RocAucCI(auc, float(low), float(high))


def _bootstrap_aucs(pos, neg, n_bootstraps, rng):
    """AUCs of ``n_bootstraps`` stratified resamples (cases and controls drawn separately)."""
    m, n = pos.shape[0], neg.shape[0]
    chunk = max(1, _BOOTSTRAP_CHUNK_ELEMENTS // (m + n))
    aucs = np.empty(n_bootstraps)
    for start in range(0, n_bootstraps, chunk):
        size = min(chunk, n_bootstraps - start)
        pos_b = pos[rng.randint(0, m, size=(size, m))]
        neg_b = neg[rng.randint(0, n, size=(size, n))]
        ranks = rankdata(np.concatenate([pos_b, neg_b], axis=1), method="average", axis=1)
        aucs[start : start + size] = (ranks[:, :m].sum(axis=1) - m * (m + 1) / 2.0) / (m * n)
    return aucs


_DeLongTestBase = namedtuple("_DeLongTestBase", ["statistic", "pvalue"])


class DeLongTestResult(_DeLongTestBase):
    """Result of :func:`delong_test`; unpacks as ``z, p = result``.

    Attributes
    ----------
    statistic : float
        The z statistic :math:`(\\hat\\theta_1 - \\hat\\theta_2) / \\hat\\sigma_d`.
    pvalue : float
        p-value for the requested alternative.
    auc_1, auc_2 : float
        AUCs of the two scores.
    difference : float
        ``auc_1 - auc_2``.
    ci_low, ci_high : float
        Confidence interval of the difference, :math:`d \\pm z_{1-\\alpha/2} \\hat\\sigma_d`
        (not clipped, as in pROC).
    confidence : float
        Level of that interval.
    alternative : str
        The alternative hypothesis tested.
    paired : bool
        Whether the scores were compared on the same patients.
    covariance : ndarray of shape (2, 2) or None
        DeLong covariance matrix of ``(auc_1, auc_2)`` (zero off the diagonal when unpaired).
    """

    def __new__(
        cls,
        statistic,
        pvalue,
        *,
        auc_1=float("nan"),
        auc_2=float("nan"),
        ci_low=float("nan"),
        ci_high=float("nan"),
        confidence=float("nan"),
        alternative="two-sided",
        paired=True,
        covariance=None,
    ):
        self = super().__new__(cls, statistic, pvalue)
        self.paired = paired
        self.covariance = covariance
        self.auc_1 = auc_1
        self.auc_2 = auc_2
        self.difference = auc_1 - auc_2
        self.ci_low = ci_low
        self.ci_high = ci_high
        self.confidence = confidence
        self.alternative = alternative
        return self

    def __repr__(self):
        return (
            f"DeLongTestResult(statistic={self.statistic!r}, pvalue={self.pvalue!r}, "
            f"auc_1={self.auc_1!r}, auc_2={self.auc_2!r}, difference={self.difference!r}, "
            f"ci=({self.ci_low!r}, {self.ci_high!r}), confidence={self.confidence!r}, "
            f"alternative={self.alternative!r}, paired={self.paired!r})"
        )


def delong_test(
    y_true: ArrayLike,
    y_score_1: ArrayLike,
    y_score_2: ArrayLike,
    *,
    alternative: str = "two-sided",
    confidence: float = 0.95,
    pos_label: Label | None = None,
    paired: bool = True,
    y_true_2: ArrayLike | None = None,
) -> DeLongTestResult:
    """DeLong's test comparing the AUCs of two scores (paired, or on independent cohorts).

    With :math:`d = \\hat\\theta_1 - \\hat\\theta_2` and the DeLong covariance matrix
    :math:`S = S_{10}/m + S_{01}/n` of the two AUCs (unbiased placement covariances; DeLong et
    al., 1988, computed by the midrank algorithm of Sun & Xu, 2014), the statistic is

    .. math:: z = \\frac{d}{\\hat\\sigma_d}, \\qquad
       \\hat\\sigma_d^2 = S_{11} + S_{22} - 2 S_{12},

    referred to the standard normal distribution. This is R pROC's
    ``roc.test(roc1, roc2, method = "delong", paired = TRUE)``.

    With ``paired=False`` the two AUCs come from independent samples (e.g. a model in two
    centres, or two models on different patients): :math:`\\hat\\sigma_d^2 = V_1 + V_2`, the sum
    of their DeLong variances, as pROC's ``roc.test(..., paired = FALSE)`` (unpaired DeLong
    test); ``y_true_2`` holds the labels of the second sample. When both curves give the same
    placements (identical or rank-equivalent scores), :math:`d = \\hat\\sigma_d = 0` and the
    result is ``z = 0, p = 1`` (two-sided), as in pROC; a non-zero difference with zero
    variance gives an infinite statistic and ``p = 0``.

    Both scores follow the convention "higher = more likely positive"; no curve is flipped.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Binary outcome; any two labels.
    y_score_1, y_score_2 : array-like of shape (n_samples,)
        The two scores, in the same patient order as ``y_true`` (paired); unpaired,
        ``y_score_2`` follows ``y_true_2``.
    alternative : {"two-sided", "greater", "less"}, default="two-sided"
        ``"greater"``: the AUC of ``y_score_1`` is greater than that of ``y_score_2``.
    confidence : float, default=0.95
        Level of the confidence interval of the AUC difference.
    pos_label : scalar, default=None
        Positive class; required unless the labels are 0/1, -1/1 or booleans (then 1 / True).
    paired : bool, default=True
        Whether both scores were measured on the same patients.
    y_true_2 : array-like or None, default=None
        Unpaired only: the labels of the second sample (default: ``y_true``, the same
        patients treated as independent).

    Returns
    -------
    result : DeLongTestResult
        Unpacks as ``(statistic, pvalue)``; also carries ``auc_1``, ``auc_2``,
        ``difference``, ``ci_low``, ``ci_high``, ``confidence``, ``alternative``, ``paired``
        and the DeLong ``covariance`` matrix of the two AUCs (diagonal only when unpaired).

    Raises
    ------
    ValueError
        For one class only, fewer than two patients in a class, more than two labels, NaN /
        infinite scores, empty input, inputs of different lengths or an unknown
        ``alternative``.

    References
    ----------
    .. [1] E. R. DeLong, D. M. DeLong and D. L. Clarke-Pearson, "Comparing the areas under two
       or more correlated receiver operating characteristic curves: a nonparametric approach",
       Biometrics 44(3):837-845, 1988.
    .. [2] X. Sun and W. Xu, "Fast implementation of DeLong's algorithm for comparing the areas
       under correlated receiver operating characteristic curves", IEEE Signal Processing
       Letters 21(11):1389-1393, 2014.

    Examples
    --------
    >>> from sklearn_alnm.metrics import delong_test
    >>> y = [0, 0, 0, 0, 1, 1, 1, 1]
    >>> model = [0.1, 0.2, 0.3, 0.6, 0.4, 0.7, 0.8, 0.9]
    >>> reader = [1, 2, 2, 3, 2, 3, 4, 4]
    >>> z, p = delong_test(y, model, reader)
    >>> round(z, 4), round(p, 4)
    (1.3887, 0.1649)
    >>> delong_test(y, model, model)[:]
    (0.0, 1.0)
    """
    if alternative not in _ALTERNATIVES:
        raise ValueError(f"alternative must be one of {_ALTERNATIVES}; got {alternative!r}.")
    confidence = _check_confidence(confidence)
    s1 = _check_scores(y_score_1, "y_score_1")
    s2 = _check_scores(y_score_2, "y_score_2")
    if paired:
        if y_true_2 is not None:
            raise ValueError("y_true_2 is for unpaired samples; pass paired=False with it.")
        _check_lengths(y_true=y_true, y_score_1=s1, y_score_2=s2)
        samples = [(y_true, [s1, s2])]
    else:
        y2 = y_true if y_true_2 is None else y_true_2
        _check_lengths(y_true=y_true, y_score_1=s1)
        _check_lengths(y_true_2=y2, y_score_2=s2)
        samples = [(y_true, [s1]), (y2, [s2])]
    aucs, blocks = [], []
    for y, scores in samples:
        pos, neg = _split_by_class(y, scores, pos_label)
        if pos.shape[1] < 2 or neg.shape[1] < 2:
            raise ValueError(
                "DeLong's test needs at least two positive and two negative patients; got "
                f"{pos.shape[1]} positive and {neg.shape[1]} negative."
            )
        sample_aucs, v10, v01 = _delong_placements(pos, neg)
        aucs += list(sample_aucs)
        blocks.append(_delong_covariance(v10, v01))
    cov = np.zeros((2, 2))
    if paired:
        cov[:] = blocks[0]
    else:  # independent samples: no covariance between the AUCs
        cov[0, 0], cov[1, 1] = blocks[0][0, 0], blocks[1][0, 0]
    d = float(aucs[0] - aucs[1])
    var_d = float(cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1])
    sigma = math.sqrt(max(var_d, 0.0))
    if sigma > 0.0:
        z = d / sigma
    else:
        z = 0.0 if d == 0.0 else math.copysign(math.inf, d)
    if alternative == "two-sided":
        p = min(1.0, 2.0 * float(norm.sf(abs(z))))
    elif alternative == "greater":
        p = float(norm.sf(z))
    else:
        p = float(norm.cdf(z))
    crit = float(norm.ppf(1.0 - (1.0 - confidence) / 2.0))
    return DeLongTestResult(
        float(z),
        p,
        auc_1=float(aucs[0]),
        auc_2=float(aucs[1]),
        ci_low=d - crit * sigma,
        ci_high=d + crit * sigma,
        confidence=confidence,
        alternative=alternative,
        paired=bool(paired),
        covariance=cov,
    )


def _roc_polygon(is_pos, scores):
    """False and true positive rates of the empirical ROC curve's vertices (one per distinct
    score, from (0, 0)), in the order the curve is drawn: fpr non-decreasing."""
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores, sorted_pos = scores[order], is_pos[order]
    last = np.r_[np.flatnonzero(np.diff(sorted_scores)), sorted_scores.shape[0] - 1]
    tps = np.cumsum(sorted_pos)[last]
    fps = last + 1 - tps
    return np.r_[0.0, fps / max(fps[-1], 1)], np.r_[0.0, tps / max(tps[-1], 1)]


def _sensitivity_at(is_pos, scores, fpr_grid):
    """The drawn ROC curve's sensitivity at each false positive rate of ``fpr_grid``: linear
    between vertices, the top of a vertical segment at its own false positive rate."""
    fpr, tpr = _roc_polygon(is_pos, scores)
    return np.interp(fpr_grid, fpr, tpr)


def roc_curve_ci(
    y_true: ArrayLike,
    y_score: ArrayLike,
    *,
    specificities: ArrayLike | None = None,
    confidence: float = 0.95,
    n_bootstraps: int = 2000,
    random_state: RandomStateLike = None,
    pos_label: Label | None = None,
) -> pd.DataFrame:
    """Confidence band of the ROC curve: sensitivity at given specificities, bootstrapped.

    For each specificity the sensitivity of the empirical ROC curve (the polygon a ROC plot
    draws through its vertices) is computed on the cohort and on ``n_bootstraps`` stratified
    resamples (cases and controls drawn separately, as :func:`roc_auc_ci`'s bootstrap); the
    band is the pointwise percentile interval of the resampled sensitivities (numpy's default
    quantiles, R's type 7). This is the band R pROC draws with ``ci.se(roc,
    specificities = ...)`` and ``plot(ci)``; it is pointwise, not simultaneous.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Binary outcome; any two labels.
    y_score : array-like of shape (n_samples,)
        Scores, higher meaning more likely positive.
    specificities : array-like of float or None, default=None
        Specificities in [0, 1] at which the band is computed; default ``0, 0.01, ..., 1``.
    confidence : float, default=0.95
        Level of the pointwise intervals.
    n_bootstraps : int, default=2000
        Number of stratified bootstrap replicates.
    random_state : int, RandomState instance or None, default=None
        Seed of the resampling; an int makes the band reproducible.
    pos_label : scalar, default=None
        Positive class; required unless the labels are 0/1, -1/1 or booleans (then 1 / True).

    Returns
    -------
    band : pandas.DataFrame
        Columns ``specificity``, ``sensitivity`` (of the cohort's curve), ``low``, ``high``,
        sorted by decreasing specificity (increasing false positive rate, as plotted).

    Raises
    ------
    ValueError
        For one class only, NaN / infinite scores, inputs of different lengths, or invalid
        ``specificities`` / ``confidence`` / ``n_bootstraps``.

    See Also
    --------
    roc_auc_ci : The AUC with its DeLong or bootstrap interval.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_alnm.metrics import roc_curve_ci
    >>> rng = np.random.default_rng(0)
    >>> y = np.r_[np.zeros(60), np.ones(40)]
    >>> score = y + rng.normal(size=100)
    >>> band = roc_curve_ci(y, score, specificities=[0.9, 0.5], n_bootstraps=500,
    ...                     random_state=0)
    >>> bool(np.all((band["low"] <= band["sensitivity"]) & (band["sensitivity"] <= band["high"])))
    True
    """
    confidence = _check_confidence(confidence)
    n_bootstraps = _check_int(n_bootstraps, "n_bootstraps", 1)
    scores = _check_scores(y_score)
    _check_lengths(y_true=y_true, y_score=scores)
    is_pos, _ = _check_labels(y_true, pos_label)
    if specificities is None:
        spec = np.linspace(1.0, 0.0, 101)
    else:
        spec = np.unique(_check_scores(specificities, "specificities", probability=True))[::-1]
    fpr_grid = 1.0 - spec
    rng = check_random_state(random_state)
    pos_idx, neg_idx = np.flatnonzero(is_pos), np.flatnonzero(~is_pos)
    resampled = np.empty((n_bootstraps, spec.shape[0]))
    for b in range(n_bootstraps):
        rows = np.r_[rng.choice(pos_idx, pos_idx.shape[0]), rng.choice(neg_idx, neg_idx.shape[0])]
        resampled[b] = _sensitivity_at(is_pos[rows], scores[rows], fpr_grid)
    alpha = 1.0 - confidence
    low, high = np.quantile(resampled, [alpha / 2.0, 1.0 - alpha / 2.0], axis=0)
    return pd.DataFrame(
        {
            "specificity": spec,
            "sensitivity": _sensitivity_at(is_pos, scores, fpr_grid),
            "low": low,
            "high": high,
        }
    )
