"""Binary decisions from a score: Youden's threshold, metrics at a threshold, and scorers.

A patient is predicted positive iff ``score >= threshold``. With :math:`TP, FP, TN, FN` the
confusion counts:

===========  =============================================
accuracy     :math:`(TP + TN) / N`
sensitivity  :math:`TP / (TP + FN)` (recall, true positive rate)
specificity  :math:`TN / (TN + FP)` (true negative rate)
ppv          :math:`TP / (TP + FP)` (precision)
npv          :math:`TN / (TN + FN)`
f1           :math:`2TP / (2TP + FP + FN)`
===========  =============================================

A ratio whose denominator is zero (e.g. PPV when nobody is predicted positive) is NaN,
silently: it is undefined, not zero.
"""

import numbers

import numpy as np
from sklearn.metrics import make_scorer

from .._typing import ArrayLike, Label
from ._validation import _as_1d, _check_labels, _check_lengths, _check_scores, _ratio

_METRIC_KEYS = ("accuracy", "sensitivity", "specificity", "ppv", "npv", "f1")


def _candidate_thresholds(is_pos, scores):
    """Candidate thresholds and the confusion counts of the rule ``score >= threshold``.

    The candidates are ``-inf``, the midpoints between consecutive distinct scores and
    ``+inf`` (as R pROC), in increasing order.

    Returns
    -------
    thresholds, tp, fp : ndarray of shape (n_distinct + 1,)
    """
    values, inverse = np.unique(scores, return_inverse=True)
    pos_at = np.bincount(inverse, weights=is_pos, minlength=values.shape[0])
    all_at = np.bincount(inverse, minlength=values.shape[0])
    # Predicted positive at threshold k: the distinct values k, k+1, ... (0-based), i.e.
    # reverse cumulative sums; the last entry (threshold +inf) predicts nobody positive.
    tp = np.concatenate([np.cumsum(pos_at[::-1])[::-1], [0.0]]).round().astype(np.int64)
    n_pred = np.concatenate([np.cumsum(all_at[::-1])[::-1], [0]]).astype(np.int64)
    fp = n_pred - tp
    lower, upper = values[:-1], values[1:]
    mid = lower + (upper - lower) / 2.0
    # Guard against a midpoint rounding onto the lower value of two adjacent floats.
    mid = np.where(mid > lower, mid, upper)
    thresholds = np.concatenate([[-np.inf], mid, [np.inf]])
    return thresholds, tp, fp


def youden_threshold(
    y_true: ArrayLike, y_score: ArrayLike, *, pos_label: Label | None = None
) -> float:
    """Threshold maximising Youden's index :math:`J = \\text{sensitivity} +
    \\text{specificity} - 1`.

    Candidate thresholds are placed, as in R pROC, at ``-inf``, at the midpoints between
    consecutive distinct scores, and at ``+inf``; a patient is positive iff
    ``score >= threshold``. Ties in :math:`J` (compared exactly, in integer arithmetic) are
    broken towards the **lowest** threshold, i.e. the most sensitive of the optimal operating
    points: missing a node metastasis usually costs more than an extra axillary work-up.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Binary outcome; any two labels.
    y_score : array-like of shape (n_samples,)
        Scores, higher meaning more likely positive.
    pos_label : scalar, default=None
        Positive class; required unless the labels are 0/1, -1/1 or booleans (then 1 / True).

    Returns
    -------
    threshold : float
        ``-inf`` when no cut-off beats "everybody positive" (:math:`\\max J = 0`).

    Raises
    ------
    ValueError
        For one class only, more than two labels, NaN / infinite scores, empty input or
        inputs of different lengths.

    References
    ----------
    .. [1] W. J. Youden, "Index for rating diagnostic tests", Cancer 3(1):32-35, 1950.

    Examples
    --------
    >>> from sklearn_alnm.metrics import youden_threshold
    >>> youden_threshold([0, 0, 1, 0, 1, 1], [0.1, 0.2, 0.3, 0.4, 0.6, 0.8])
    0.25
    """
    scores = _check_scores(y_score)
    _check_lengths(y_true=y_true, y_score=scores)
    is_pos, _ = _check_labels(y_true, pos_label)
    thresholds, tp, fp = _candidate_thresholds(is_pos, scores)
    n_pos = int(is_pos.sum())
    n_neg = is_pos.shape[0] - n_pos
    # J * n_pos * n_neg = tp * n_neg - fp * n_pos: exact integers, so ties are exact.
    j_scaled = tp * n_neg - fp * n_pos
    return float(thresholds[int(np.argmax(j_scaled))])


def _check_threshold(threshold):
    if isinstance(threshold, str):
        if threshold != "youden":
            raise ValueError(f"threshold must be 'youden' or a number; got {threshold!r}.")
        return threshold
    if not isinstance(threshold, numbers.Real) or isinstance(threshold, bool):
        raise TypeError(f"threshold must be 'youden' or a number; got {type(threshold).__name__}.")
    if np.isnan(threshold):
        raise ValueError("threshold must not be NaN.")
    return float(threshold)


def _metrics_from_counts(tp, fp, tn, fn):
    n = tp + fp + tn + fn
    return {
        "accuracy": _ratio(tp + tn, n),
        "sensitivity": _ratio(tp, tp + fn),
        "specificity": _ratio(tn, tn + fp),
        "ppv": _ratio(tp, tp + fp),
        "npv": _ratio(tn, tn + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
    }


def binary_metrics(
    y_true: ArrayLike,
    y_score: ArrayLike,
    threshold: float | str = "youden",
    *,
    pos_label: Label | None = None,
) -> dict[str, float]:
    """Accuracy, sensitivity, specificity, PPV, NPV and F1 of the rule ``score >= threshold``.

    The typical use is to choose the threshold on the training cohort (``"youden"``) and pass
    the returned ``result["threshold"]`` as a float for the validation cohorts.

    Formulas (:math:`TP, FP, TN, FN` counted with "positive iff ``score >= threshold``"):
    accuracy :math:`= (TP+TN)/N`, sensitivity :math:`= TP/(TP+FN)`, specificity
    :math:`= TN/(TN+FP)`, PPV :math:`= TP/(TP+FP)`, NPV :math:`= TN/(TN+FN)`, F1
    :math:`= 2TP/(2TP+FP+FN)`. A zero denominator gives NaN, without a warning.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Binary outcome; any two labels.
    y_score : array-like of shape (n_samples,)
        Scores, higher meaning more likely positive (probabilities or any other scale).
    threshold : "youden" or float, default="youden"
        ``"youden"`` chooses the threshold maximising sensitivity + specificity - 1 on these
        data (see :func:`youden_threshold` for the candidates and the tie-break rule); a
        float is used as is. With a float, a cohort holding one class only is accepted (the
        undefined metrics are NaN); ``"youden"`` needs both classes.
    pos_label : scalar, default=None
        Positive class; required unless the labels are 0/1, -1/1 or booleans (then 1 / True).

    Returns
    -------
    result : dict
        Keys ``threshold`` (the one used), ``tp``, ``fp``, ``tn``, ``fn`` (int),
        ``accuracy``, ``sensitivity``, ``specificity``, ``ppv``, ``npv``, ``f1`` (float).

    Raises
    ------
    ValueError
        For one class only (with ``"youden"``), more than two labels, NaN / infinite
        scores, empty input, inputs of different lengths or an invalid threshold.

    See Also
    --------
    youden_threshold : The threshold chosen by ``threshold="youden"``.

    Examples
    --------
    >>> from sklearn_alnm.metrics import binary_metrics
    >>> y = [0, 0, 1, 0, 1, 1]
    >>> score = [0.1, 0.2, 0.3, 0.4, 0.6, 0.8]
    >>> train = binary_metrics(y, score)
    >>> train["threshold"], train["sensitivity"], train["specificity"]
    (0.25, 1.0, 0.6666666666666666)
    >>> test = binary_metrics([0, 1, 1, 0], [0.2, 0.5, 0.1, 0.3], threshold=train["threshold"])
    >>> test["tp"], test["fp"], test["tn"], test["fn"]
    (1, 1, 1, 1)
    """
    threshold = _check_threshold(threshold)
    scores = _check_scores(y_score)
    _check_lengths(y_true=y_true, y_score=scores)
    if threshold == "youden":
        threshold = youden_threshold(y_true, scores, pos_label=pos_label)
    is_pos, _ = _check_labels(y_true, pos_label, require_both=False)
    pred = scores >= threshold
    tp = int(np.sum(pred & is_pos))
    fp = int(np.sum(pred & ~is_pos))
    fn = int(np.sum(~pred & is_pos))
    tn = int(np.sum(~pred & ~is_pos))
    result = {"threshold": threshold, "tp": tp, "fp": fp, "tn": tn, "fn": fn}
    result.update(_metrics_from_counts(tp, fp, tn, fn))
    return result


def _label_counts(y_true, y_pred, pos_label):
    y_pred = _as_1d(y_pred, "y_pred")
    _check_lengths(y_true=y_true, y_pred=y_pred)
    is_pos, pos_label = _check_labels(y_true, pos_label, require_both=False, other=y_pred)
    pred = np.asarray(y_pred == pos_label, dtype=bool)
    return (
        int(np.sum(pred & is_pos)),
        int(np.sum(pred & ~is_pos)),
        int(np.sum(~pred & ~is_pos)),
        int(np.sum(~pred & is_pos)),
    )


def _zero_division_result(value, zero_division):
    return zero_division if np.isnan(value) else value


_SCORE_DOC = """{title}

    ``{formula}``, from predicted labels. A zero denominator returns ``zero_division``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels; any two labels.
    y_pred : array-like of shape (n_samples,)
        Predicted labels, from the same two labels.
    pos_label : scalar, default=None
        Positive class; required unless the labels are 0/1, -1/1 or booleans (then 1 / True).
    zero_division : float, default=nan
        Value returned when the denominator is zero.

    Returns
    -------
    score : float

    Raises
    ------
    ValueError
        For more than two labels, empty input or inputs of different lengths.

    Examples
    --------
    >>> from sklearn_alnm.metrics import {name}
    >>> {name}([0, 0, 0, 1, 1], [0, 1, 0, 1, 0])
    {example}
    """


def sensitivity_score(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    pos_label: Label | None = None,
    zero_division: float = np.nan,
) -> float:
    tp, fp, tn, fn = _label_counts(y_true, y_pred, pos_label)
    return _zero_division_result(_ratio(tp, tp + fn), zero_division)


def specificity_score(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    pos_label: Label | None = None,
    zero_division: float = np.nan,
) -> float:
    tp, fp, tn, fn = _label_counts(y_true, y_pred, pos_label)
    return _zero_division_result(_ratio(tn, tn + fp), zero_division)


def ppv_score(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    pos_label: Label | None = None,
    zero_division: float = np.nan,
) -> float:
    tp, fp, tn, fn = _label_counts(y_true, y_pred, pos_label)
    return _zero_division_result(_ratio(tp, tp + fp), zero_division)


def npv_score(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    pos_label: Label | None = None,
    zero_division: float = np.nan,
) -> float:
    tp, fp, tn, fn = _label_counts(y_true, y_pred, pos_label)
    return _zero_division_result(_ratio(tn, tn + fn), zero_division)


sensitivity_score.__doc__ = _SCORE_DOC.format(
    title="Sensitivity (recall, true positive rate) from predicted labels.",
    formula="TP / (TP + FN)",
    name="sensitivity_score",
    example="0.5",
)
specificity_score.__doc__ = _SCORE_DOC.format(
    title="Specificity (true negative rate) from predicted labels.",
    formula="TN / (TN + FP)",
    name="specificity_score",
    example="0.6666666666666666",
)
ppv_score.__doc__ = _SCORE_DOC.format(
    title="Positive predictive value (precision) from predicted labels.",
    formula="TP / (TP + FP)",
    name="ppv_score",
    example="0.5",
)
npv_score.__doc__ = _SCORE_DOC.format(
    title="Negative predictive value from predicted labels.",
    formula="TN / (TN + FN)",
    name="npv_score",
    example="0.6666666666666666",
)

# Scorers for GridSearchCV / cross_validate (they call ``predict``). A fold in which the
# denominator is zero scores 0, as scikit-learn's precision/recall scorers do, so that a
# degenerate fold ranks last instead of making the mean score NaN.
sensitivity_scorer = make_scorer(sensitivity_score, zero_division=0.0)
specificity_scorer = make_scorer(specificity_score, zero_division=0.0)
ppv_scorer = make_scorer(ppv_score, zero_division=0.0)
npv_scorer = make_scorer(npv_score, zero_division=0.0)
