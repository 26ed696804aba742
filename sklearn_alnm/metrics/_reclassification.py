"""Reclassification of a new model against a reference: NRI and IDI (Pencina et al., 2008)."""

from typing import NamedTuple

import numpy as np
from scipy.stats import norm

from .._typing import ArrayLike, Label
from ._validation import _check_confidence, _check_labels, _check_lengths, _check_scores


class ReclassificationResult(NamedTuple):
    """Result of :func:`net_reclassification_improvement` and
    :func:`integrated_discrimination_improvement`; unpacks as
    ``estimate, low, high, pvalue, events, nonevents``.

    ``events`` and ``nonevents`` are the two components: for the NRI the net fraction of
    events moved up and of non-events moved down; for the IDI the change in mean predicted
    risk among events and the decrease among non-events.
    """

    estimate: float
    low: float
    high: float
    pvalue: float
    events: float
    nonevents: float


def _paired_probabilities(y_true, y_prob_reference, y_prob_new, pos_label):
    old = _check_scores(y_prob_reference, "y_prob_reference", probability=True)
    new = _check_scores(y_prob_new, "y_prob_new", probability=True)
    _check_lengths(y_true=y_true, y_prob_reference=old, y_prob_new=new)
    is_pos, _ = _check_labels(y_true, pos_label)
    return is_pos, old, new


def _wald(estimate, se, confidence):
    z = norm.ppf(1.0 - (1.0 - confidence) / 2.0)
    if not se > 0:
        return float("nan"), float("nan"), float("nan")
    pvalue = 2.0 * norm.sf(abs(estimate) / se)
    return float(estimate - z * se), float(estimate + z * se), float(pvalue)


def net_reclassification_improvement(
    y_true: ArrayLike,
    y_prob_reference: ArrayLike,
    y_prob_new: ArrayLike,
    *,
    cutoffs: ArrayLike | None = None,
    confidence: float = 0.95,
    pos_label: Label | None = None,
) -> ReclassificationResult:
    """Net reclassification improvement of a new model over a reference model.

    Among the events (positive patients) the net fraction moved to a higher risk by the new
    model, plus among the non-events the net fraction moved to a lower risk:

    .. math:: \\mathrm{NRI} = \\frac{u_e - d_e}{n_e} + \\frac{d_n - u_n}{n_n}

    * ``cutoffs=None``: the category-free (continuous) NRI; "up" means a strictly higher
      predicted probability, "down" a strictly lower one;
    * ``cutoffs=[0.1, 0.3]``: the categorical NRI over the risk categories these cutoffs make
      (``[0, 0.1)``, ``[0.1, 0.3)``, ``[0.3, 1]``); "up" means a higher category.

    Standard error as Pencina et al. (2008), :math:`\\sqrt{(u_e + d_e)/n_e^2 - (u_e -
    d_e)^2/n_e^3 + (u_n + d_n)/n_n^2 - (u_n - d_n)^2/n_n^3}`, with the Wald interval and the
    two-sided z-test: the numbers R's ``PredictABEL::reclassification`` prints.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Binary outcome; any two labels.
    y_prob_reference : array-like of shape (n_samples,)
        Predicted probabilities of the positive class under the reference model.
    y_prob_new : array-like of shape (n_samples,)
        Predicted probabilities under the new model, for the same patients.
    cutoffs : array-like of float or None, default=None
        Risk-category cutoffs in (0, 1), increasing; ``None`` for the category-free NRI.
    confidence : float, default=0.95
        Level of the interval.
    pos_label : scalar, default=None
        Positive class; required unless the labels are 0/1, -1/1 or booleans (then 1 / True).

    Returns
    -------
    result : ReclassificationResult
        ``(estimate, low, high, pvalue, events, nonevents)``; ``events`` is
        :math:`(u_e - d_e)/n_e` and ``nonevents`` :math:`(d_n - u_n)/n_n`. The interval and
        p-value are NaN when nobody is reclassified.

    Raises
    ------
    ValueError
        For probabilities outside [0, 1], one class only, inputs of different lengths, or
        cutoffs that are not increasing values in (0, 1).

    See Also
    --------
    integrated_discrimination_improvement : The IDI of the same two models.

    References
    ----------
    .. [1] M. J. Pencina, R. B. D'Agostino Sr, R. B. D'Agostino Jr and R. S. Vasan,
       "Evaluating the added predictive ability of a new marker: from area under the ROC
       curve to reclassification and beyond", Statistics in Medicine 27(2):157-172, 2008.

    Examples
    --------
    >>> from sklearn_alnm.metrics import net_reclassification_improvement
    >>> y = [1, 1, 1, 1, 0, 0, 0, 0]
    >>> old = [0.4, 0.5, 0.6, 0.3, 0.5, 0.4, 0.3, 0.6]
    >>> new = [0.6, 0.7, 0.5, 0.5, 0.3, 0.2, 0.4, 0.5]
    >>> result = net_reclassification_improvement(y, old, new)
    >>> round(result.estimate, 3), result.events, result.nonevents
    (1.0, 0.5, 0.5)
    """
    confidence = _check_confidence(confidence)
    is_pos, old, new = _paired_probabilities(y_true, y_prob_reference, y_prob_new, pos_label)
    if cutoffs is not None:
        cuts = np.asarray(cutoffs, dtype=float).ravel()
        if (
            cuts.size == 0
            or not np.all(np.isfinite(cuts))
            or np.any(cuts <= 0.0)
            or np.any(cuts >= 1.0)
            or np.any(np.diff(cuts) <= 0.0)
        ):
            raise ValueError(
                f"cutoffs must be increasing probabilities in (0, 1), e.g. [0.1, 0.3]; got "
                f"{list(np.asarray(cutoffs).ravel())}."
            )
        old = np.searchsorted(cuts, old, side="right").astype(float)
        new = np.searchsorted(cuts, new, side="right").astype(float)
    up, down = new > old, new < old
    n_e, n_n = float(is_pos.sum()), float((~is_pos).sum())
    u_e, d_e = float(np.sum(up & is_pos)), float(np.sum(down & is_pos))
    u_n, d_n = float(np.sum(up & ~is_pos)), float(np.sum(down & ~is_pos))
    events = (u_e - d_e) / n_e
    nonevents = (d_n - u_n) / n_n
    estimate = events + nonevents
    variance = (
        (u_e + d_e) / n_e**2
        - (u_e - d_e) ** 2 / n_e**3
        + (u_n + d_n) / n_n**2
        - (u_n - d_n) ** 2 / n_n**3
    )
    low, high, pvalue = _wald(estimate, np.sqrt(max(variance, 0.0)), confidence)
    return ReclassificationResult(float(estimate), low, high, pvalue, events, nonevents)


def integrated_discrimination_improvement(
    y_true: ArrayLike,
    y_prob_reference: ArrayLike,
    y_prob_new: ArrayLike,
    *,
    confidence: float = 0.95,
    pos_label: Label | None = None,
) -> ReclassificationResult:
    """Integrated discrimination improvement of a new model over a reference model.

    The gain in mean predicted risk among events plus the fall among non-events (the change
    of the discrimination slope):

    .. math:: \\mathrm{IDI} = (\\bar p^{new}_e - \\bar p^{ref}_e)
              - (\\bar p^{new}_n - \\bar p^{ref}_n)

    Standard error as Pencina et al. (2008), :math:`\\sqrt{s_e^2 / n_e + s_n^2 / n_n}` with
    :math:`s` the sample standard deviation (``ddof=1``) of the per-patient differences
    :math:`p^{new} - p^{ref}` in each class; Wald interval and two-sided z-test, as R's
    ``PredictABEL::reclassification``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Binary outcome; any two labels.
    y_prob_reference : array-like of shape (n_samples,)
        Predicted probabilities of the positive class under the reference model.
    y_prob_new : array-like of shape (n_samples,)
        Predicted probabilities under the new model, for the same patients.
    confidence : float, default=0.95
        Level of the interval.
    pos_label : scalar, default=None
        Positive class; required unless the labels are 0/1, -1/1 or booleans (then 1 / True).

    Returns
    -------
    result : ReclassificationResult
        ``(estimate, low, high, pvalue, events, nonevents)``; ``events`` is
        :math:`\\bar p^{new}_e - \\bar p^{ref}_e` and ``nonevents``
        :math:`\\bar p^{ref}_n - \\bar p^{new}_n`. Interval and p-value are NaN when the
        standard error is 0 (e.g. identical models) or a class has a single patient.

    Raises
    ------
    ValueError
        For probabilities outside [0, 1], one class only or inputs of different lengths.

    See Also
    --------
    net_reclassification_improvement : The NRI of the same two models.

    Examples
    --------
    >>> from sklearn_alnm.metrics import integrated_discrimination_improvement
    >>> y = [1, 1, 1, 0, 0, 0]
    >>> old = [0.5, 0.6, 0.4, 0.5, 0.4, 0.3]
    >>> new = [0.7, 0.7, 0.5, 0.3, 0.4, 0.2]
    >>> result = integrated_discrimination_improvement(y, old, new)
    >>> round(result.estimate, 3), round(result.events, 3), round(result.nonevents, 3)
    (0.233, 0.133, 0.1)
    """
    confidence = _check_confidence(confidence)
    is_pos, old, new = _paired_probabilities(y_true, y_prob_reference, y_prob_new, pos_label)
    diff = new - old
    d_e, d_n = diff[is_pos], diff[~is_pos]
    events, nonevents = float(d_e.mean()), float(-d_n.mean())
    estimate = events + nonevents
    if d_e.shape[0] < 2 or d_n.shape[0] < 2:
        se = float("nan")
    else:
        se = float(np.sqrt(d_e.var(ddof=1) / d_e.shape[0] + d_n.var(ddof=1) / d_n.shape[0]))
    low, high, pvalue = _wald(estimate, se, confidence)
    return ReclassificationResult(float(estimate), low, high, pvalue, events, nonevents)
