"""Agreement between two raters' binary calls: Cohen's kappa with its confidence interval."""

from typing import NamedTuple

import numpy as np
from scipy.stats import norm

from .._typing import ArrayLike
from ._validation import _as_1d, _check_confidence, _check_lengths


class KappaResult(NamedTuple):
    """Result of :func:`cohen_kappa`; unpacks as ``kappa, low, high, pvalue, agreement, n``."""

    kappa: float
    low: float
    high: float
    pvalue: float
    agreement: float
    n: int


def _as_binary_calls(calls, name):
    values = _as_1d(calls, name)
    if values.dtype == bool:
        return values
    try:
        numeric = values.astype(float)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must hold 0/1 (or boolean) calls; got dtype {values.dtype}."
        ) from None
    if not np.all(np.isin(numeric, (0.0, 1.0))):
        bad = np.unique(numeric[~np.isin(numeric, (0.0, 1.0))])[:5]
        raise ValueError(f"{name} must hold 0/1 (or boolean) calls; found {list(bad)}.")
    return numeric == 1.0


def cohen_kappa(calls_1: ArrayLike, calls_2: ArrayLike, *, confidence: float = 0.95) -> KappaResult:
    """Cohen's kappa between two raters' binary calls, with its asymptotic interval and test.

    :math:`\\kappa = (p_o - p_e) / (1 - p_e)`, the observed agreement beyond what the raters'
    marginal rates give by chance. The standard error, Wald interval and the z-test of
    :math:`\\kappa = 0` (with the standard error under the null) are those of Fleiss, Cohen
    and Everitt (1969), computed by statsmodels'
    :func:`~statsmodels.stats.inter_rater.cohens_kappa` (as SAS ``PROC FREQ`` prints them);
    :math:`\\kappa` equals :func:`sklearn.metrics.cohen_kappa_score`.

    Used for intra- and inter-observer agreement (reader against reader, a reader's two
    readings) and for a reader against a model's calls at its threshold.

    Parameters
    ----------
    calls_1, calls_2 : array-like of shape (n_samples,)
        Each rater's calls on the same patients: ``1`` / ``True`` for "positive".
    confidence : float, default=0.95
        Level of the interval.

    Returns
    -------
    result : KappaResult
        ``(kappa, low, high, pvalue, agreement, n)``: ``agreement`` is the observed fraction
        of agreeing calls. ``kappa`` is NaN when both raters give one and the same call to
        everybody (chance agreement is then 1).

    Raises
    ------
    ValueError
        For calls other than 0/1, empty input or inputs of different lengths.

    Examples
    --------
    >>> from sklearn_alnm.metrics import cohen_kappa
    >>> reader_1 = [1, 1, 0, 0, 1, 0, 1, 0, 0, 0]
    >>> reader_2 = [1, 0, 0, 0, 1, 0, 1, 1, 0, 0]
    >>> result = cohen_kappa(reader_1, reader_2)
    >>> round(result.kappa, 3), result.agreement
    (0.583, 0.8)
    """
    from statsmodels.stats.inter_rater import cohens_kappa

    confidence = _check_confidence(confidence)
    a = _as_binary_calls(calls_1, "calls_1")
    b = _as_binary_calls(calls_2, "calls_2")
    _check_lengths(calls_1=a, calls_2=b)
    table = np.array(
        [[np.sum(~a & ~b), np.sum(~a & b)], [np.sum(a & ~b), np.sum(a & b)]], dtype=float
    )
    n = int(a.shape[0])
    agreement = float((table[0, 0] + table[1, 1]) / n)
    nan = float("nan")
    expected = (table.sum(1) / n) @ (table.sum(0) / n)
    if expected >= 1.0:
        return KappaResult(nan, nan, nan, nan, agreement, n)
    result = cohens_kappa(table)
    kappa = float(result["kappa"])
    z = norm.ppf(1.0 - (1.0 - confidence) / 2.0)
    se, se0 = float(result["std_kappa"]), float(result["std_kappa0"])
    low, high = (kappa - z * se, kappa + z * se) if se > 0 else (nan, nan)
    pvalue = float(2.0 * norm.sf(abs(kappa) / se0)) if se0 > 0 else nan
    return KappaResult(kappa, float(low), float(high), pvalue, agreement, n)
