"""Decision curve analysis: net benefit of a model against treating everybody or nobody."""

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .._typing import ArrayLike, Label
from ._validation import (
    _as_1d,
    _check_labels,
    _check_lengths,
    _check_probability,
    _check_scores,
)

# Reserved column names of the result.
_RESERVED = ("threshold", "treat_all", "treat_none")


def _default_thresholds():
    # seq(0, 0.99, by = 0.01), as R dcurves::dca; rounded so that 0.07 is 0.07, not 0.0700...01.
    return np.round(np.arange(100) * 0.01, 2)


def _check_thresholds(thresholds):
    if thresholds is None:
        return _default_thresholds()
    try:
        t = np.atleast_1d(np.asarray(thresholds, dtype=float))
    except (TypeError, ValueError):
        raise TypeError(
            f"thresholds must be numbers in [0, 1); got {type(thresholds).__name__}."
        ) from None
    if t.ndim != 1 or t.shape[0] == 0:
        raise ValueError(
            f"thresholds must be a non-empty 1-D list of numbers; got shape {t.shape}."
        )
    if not np.all(np.isfinite(t)):
        raise ValueError("thresholds contain NaN or infinite values; use numbers in [0, 1).")
    if t.min() < 0.0 or t.max() >= 1.0:
        raise ValueError(
            "thresholds must lie in [0, 1): the net benefit weighs false positives by "
            "pt / (1 - pt), which is infinite at pt = 1; got values in "
            f"[{t.min():.6g}, {t.max():.6g}]."
        )
    return t


def _count_at_least(values, thresholds):
    """Number of ``values`` that are ``>= t`` for each threshold ``t``."""
    values = np.sort(values)
    return values.shape[0] - np.searchsorted(values, thresholds, side="left")


def decision_curve(
    y_true: ArrayLike,
    y_prob: ArrayLike | Mapping[str, ArrayLike],
    thresholds: ArrayLike | None = None,
    *,
    pos_label: Label | None = None,
    prevalence: float | None = None,
) -> pd.DataFrame:
    """Net benefit of treating patients whose predicted risk reaches a threshold probability.

    At threshold probability :math:`p_t` a patient is *test positive* iff
    :math:`\\hat p \\ge p_t`, and (Vickers & Elkin, 2006)

    .. math:: \\text{NB}_\\text{model}(p_t) = \\frac{TP}{N} - \\frac{FP}{N}
              \\frac{p_t}{1 - p_t},

    .. math:: \\text{NB}_\\text{treat all}(p_t) = \\pi - (1 - \\pi) \\frac{p_t}{1 - p_t},
              \\qquad \\text{NB}_\\text{treat none} = 0,

    with :math:`\\pi` the prevalence in the data. For case-control data, whose prevalence is
    set by the sampling, give the population's ``prevalence``: then (as ``dcurves::dca(...,
    prevalence = )``) :math:`\\text{NB} = \\text{Se}\\,\\pi - (1 - \\text{Sp})(1 - \\pi)
    \\,p_t / (1 - p_t)`, with sensitivity and specificity from the data and :math:`\\pi` the
    given prevalence (without it the two forms agree). This follows R ``dcurves::dca``, including
    its handling of the ends of the scale: a predicted probability of exactly 0 is never test
    positive, not even at :math:`p_t = 0` (dcurves replaces such risks by
    :math:`-\\epsilon`), so at :math:`p_t = 0` the model's net benefit is the fraction of
    patients that are positive *and* have a non-zero risk.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Binary outcome; any two labels.
    y_prob : array-like of shape (n_samples,) or mapping of str to array-like
        Predicted probabilities of the positive class, in [0, 1]; a mapping
        ``{name: probabilities}`` puts several models on the same curve plot.
    thresholds : array-like of float, default=None
        Threshold probabilities in [0, 1). Default ``0, 0.01, ..., 0.99`` (dcurves' default
        ``seq(0, 0.99, by = 0.01)``).
    pos_label : scalar, default=None
        Positive class; required unless the labels are 0/1, -1/1 or booleans (then 1 / True).
    prevalence : float in (0, 1) or None, default=None
        Prevalence of the outcome in the population the model is meant for, for case-control
        samples; ``None`` uses the data's own prevalence (cohort data).

    Returns
    -------
    curves : pandas.DataFrame
        Wide format, one row per threshold: column ``threshold``, one net-benefit column per
        model (``"model"`` for a single array, otherwise the mapping's keys), then
        ``treat_all`` and ``treat_none``. Plot it with
        ``curves.plot(x="threshold", ylim=(-0.05, prevalence + 0.05))``, or reshape it with
        ``curves.melt(id_vars="threshold", var_name="strategy", value_name="net_benefit")``.

    Raises
    ------
    ValueError
        For a threshold outside [0, 1) (including 1, where the harm weight
        :math:`p_t/(1-p_t)` is infinite), probabilities outside [0, 1], NaN / infinite
        values, one class only, more than two labels, empty input, inputs of different
        lengths, or a model named ``threshold``, ``treat_all`` or ``treat_none``.

    References
    ----------
    .. [1] A. J. Vickers and E. B. Elkin, "Decision curve analysis: a novel method for
       evaluating prediction models", Medical Decision Making 26(6):565-574, 2006.
    .. [2] D. D. Sjoberg, dcurves: Decision Curve Analysis for Model Evaluation (R package).

    Examples
    --------
    >>> from sklearn_alnm.metrics import decision_curve
    >>> y = [0, 0, 1, 0, 1, 1]
    >>> p = [0.1, 0.2, 0.3, 0.6, 0.7, 0.9]
    >>> decision_curve(y, p, thresholds=[0.0, 0.25, 0.5]).round(4)
       threshold   model  treat_all  treat_none
    0       0.00  0.5000     0.5000         0.0
    1       0.25  0.4444     0.3333         0.0
    2       0.50  0.1667     0.0000         0.0
    """
    thresholds = _check_thresholds(thresholds)
    given_prevalence = (
        None if prevalence is None else _check_probability(prevalence, "prevalence", open_ends=True)
    )
    if isinstance(y_prob, Mapping):
        if not y_prob:
            raise ValueError("y_prob is an empty mapping; give at least one model.")
        models = dict(y_prob)
    else:
        models = {"model": y_prob}
    clash = [str(name) for name in models if name in _RESERVED]
    if clash:
        raise ValueError(f"Model names {clash} are reserved for columns of the result.")
    y = _as_1d(y_true, "y_true")
    probs = {}
    for name, values in models.items():
        label = "y_prob" if len(models) == 1 else f"y_prob[{name!r}]"
        probs[name] = _check_scores(values, label, probability=True)
        _check_lengths(y_true=y, **{label: probs[name]})
    is_pos, _ = _check_labels(y, pos_label)
    n_pos, n_neg = int(is_pos.sum()), int((~is_pos).sum())
    prevalence = is_pos.mean() if given_prevalence is None else given_prevalence
    odds = thresholds / (1.0 - thresholds)

    result = {"threshold": thresholds}
    for name, p in probs.items():
        # dcurves' rule (R/test_consequences.R, .calculate_test_consequences): test positive
        # iff `risk >= threshold`; R/dca.r first replaces risks of exactly 0 by
        # `0 - .Machine$double.eps` and of exactly 1 by `1 + .Machine$double.eps`, so a risk of
        # 0 is never test positive and a risk of 1 always is.
        tp = _count_at_least(p[is_pos & (p > 0.0)], thresholds)
        fp = _count_at_least(p[~is_pos & (p > 0.0)], thresholds)
        # TP/N = Se * pi and FP/N = (1 - Sp)(1 - pi) with pi the data's prevalence.
        sensitivity, false_positive_rate = tp / n_pos, fp / n_neg
        result[name] = sensitivity * prevalence - false_positive_rate * (1 - prevalence) * odds
    result["treat_all"] = prevalence - (1.0 - prevalence) * odds
    result["treat_none"] = np.zeros_like(thresholds)
    return pd.DataFrame(result)


def net_interventions_avoided(
    y_true: ArrayLike,
    y_prob: ArrayLike | Mapping[str, ArrayLike],
    thresholds: ArrayLike | None = None,
    *,
    per: float = 100,
    pos_label: Label | None = None,
    prevalence: float | None = None,
) -> pd.DataFrame:
    """Net reduction in interventions (e.g. axillary surgeries) per ``per`` patients.

    At threshold probability :math:`p_t`, compared with intervening in everybody
    (R ``dcurves::net_intervention_avoided``):

    .. math:: \\frac{\\text{NB}_\\text{model} - \\text{NB}_\\text{treat all}}
              {p_t / (1 - p_t)} \\times \\text{per},

    the number of unnecessary interventions avoided per ``per`` patients with no increase in
    missed cases. Undefined (NaN) at :math:`p_t = 0`.

    Parameters
    ----------
    y_true, y_prob, thresholds, pos_label, prevalence
        As in :func:`decision_curve`.
    per : float, default=100
        Number of patients the result refers to (dcurves' ``nper``).

    Returns
    -------
    pandas.DataFrame
        Column ``threshold``, then one column per model.

    Examples
    --------
    >>> from sklearn_alnm.metrics import net_interventions_avoided
    >>> y = [0, 0, 1, 0, 1, 1]
    >>> p = [0.1, 0.2, 0.3, 0.6, 0.7, 0.9]
    >>> net_interventions_avoided(y, p, thresholds=[0.25, 0.5]).round(2)
       threshold   model
    0       0.25  33.33
    1       0.50  16.67
    """
    if isinstance(per, bool) or not isinstance(per, (int, float, np.number)) or not per > 0:
        raise ValueError(f"per must be a positive number of patients; got {per!r}.")
    curves = decision_curve(y_true, y_prob, thresholds, pos_label=pos_label, prevalence=prevalence)
    odds = curves["threshold"] / (1.0 - curves["threshold"])
    models = [c for c in curves.columns if c not in _RESERVED]
    out = {"threshold": curves["threshold"]}
    with np.errstate(divide="ignore", invalid="ignore"):
        for name in models:
            value = (curves[name] - curves["treat_all"]) / odds * per
            out[name] = value.where(curves["threshold"] > 0, np.nan)
    return pd.DataFrame(out)
