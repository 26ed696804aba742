"""The paper-style performance table: one row per cohort (training, validation, test)."""

import math
import warnings
from collections.abc import Mapping
from contextlib import contextmanager

import pandas as pd

from .._typing import ArrayLike, Label, RandomStateLike
from ._calibration import hosmer_lemeshow
from ._roc import roc_auc_ci
from ._threshold import _check_threshold, binary_metrics, youden_threshold
from ._validation import _check_confidence, _check_int, _check_labels, _check_scores

_NUMERIC_COLUMNS = (
    "n",
    "n_positive",
    "auc",
    "auc_low",
    "auc_high",
    "accuracy",
    "sensitivity",
    "specificity",
    "ppv",
    "npv",
    "f1",
    "threshold",
    "hl_statistic",
    "hl_pvalue",
)


_RATE_COLUMNS = ("accuracy", "sensitivity", "specificity", "ppv", "npv", "f1")


def _unpack_cohort(name, value):
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return value
    got = f"a {type(value).__name__}"
    if isinstance(value, (tuple, list)):
        got += f" of length {len(value)}"
    raise ValueError(f"cohort {name!r}: expected a pair (y_true, y_prob); got {got}.")


def performance_table(
    cohorts: Mapping[str, tuple[ArrayLike, ArrayLike]],
    *,
    threshold: float | str = "youden",
    reference: str | None = None,
    ci_method: str = "delong",
    confidence: float = 0.95,
    n_groups: int = 10,
    n_bootstraps: int = 2000,
    random_state: RandomStateLike = None,
    pos_label: Label | None = None,
) -> pd.DataFrame:
    """Discrimination, classification and calibration of one model on several cohorts.

    The threshold is chosen once, by Youden's index on the ``reference`` cohort (by default
    the first one, normally the training cohort), and applied unchanged to every cohort, as
    the published studies do; or it is given as a number. Each row holds:

    * ``n``, ``n_positive``;
    * ``auc``, ``auc_low``, ``auc_high``: AUC and its confidence interval
      (:func:`roc_auc_ci`);
    * ``accuracy``, ``sensitivity``, ``specificity``, ``ppv``, ``npv``, ``f1`` at
      ``threshold`` (:func:`binary_metrics`; NaN where a denominator is zero);
    * ``hl_statistic``, ``hl_pvalue``: the Hosmer-Lemeshow test with ``n_groups`` groups
      (:func:`hosmer_lemeshow`).

    Parameters
    ----------
    cohorts : mapping of str to (y_true, y_prob)
        Cohort name -> outcome and predicted probability of the positive class, in [0, 1].
        Order is kept (training cohort first).
    threshold : "youden" or float, default="youden"
        ``"youden"``: chosen on the ``reference`` cohort; a float is used for all cohorts.
    reference : str, default=None
        Cohort on which the Youden threshold is chosen; default the first cohort.
    ci_method : {"delong", "bootstrap"}, default="delong"
        Method of the AUC confidence interval.
    confidence : float, default=0.95
        Level of the AUC confidence interval.
    n_groups : int, default=10
        Number of Hosmer-Lemeshow risk groups.
    n_bootstraps : int, default=2000
        Bootstrap replicates when ``ci_method="bootstrap"``.
    random_state : int, RandomState instance or None, default=None
        Seed of the bootstrap.
    pos_label : scalar, default=None
        Positive class; required unless the labels are 0/1, -1/1 or booleans (then 1 / True).

    Returns
    -------
    table : pandas.DataFrame
        Numeric table indexed by cohort name (index name ``"cohort"``) with the columns
        listed above. ``table.attrs`` records ``confidence``, ``ci_method``, ``n_groups`` and
        ``reference``; :func:`format_performance_table` turns it into text cells.

    Raises
    ------
    ValueError
        For an empty or malformed ``cohorts`` mapping, an unknown ``reference``, or bad
        input in a cohort (the message names the cohort).

    See Also
    --------
    format_performance_table : "0.812 (0.754-0.870)"-style cells for a report.

    Examples
    --------
    >>> from sklearn_alnm.metrics import performance_table
    >>> cohorts = {
    ...     "train": ([0, 0, 1, 0, 1, 1], [0.1, 0.2, 0.3, 0.6, 0.7, 0.9]),
    ...     "test": ([0, 1, 0, 1, 0, 1], [0.2, 0.4, 0.3, 0.8, 0.5, 0.6]),
    ... }
    >>> table = performance_table(cohorts, n_groups=3)
    >>> columns = ["n", "auc", "sensitivity", "specificity", "threshold"]
    >>> table[columns].round(3)  # doctest: +NORMALIZE_WHITESPACE
            n    auc  sensitivity  specificity  threshold
    cohort
    train   6  0.889          1.0        0.667       0.25
    test    6  0.889          1.0        0.333       0.25
    """
    if not isinstance(cohorts, Mapping) or not cohorts:
        raise ValueError(
            "cohorts must be a non-empty mapping {name: (y_true, y_prob)}, e.g. "
            "{'train': (y_train, p_train), 'test': (y_test, p_test)}."
        )
    threshold = _check_threshold(threshold)
    confidence = _check_confidence(confidence)
    n_groups = _check_int(n_groups, "n_groups", 3)
    if ci_method not in ("delong", "bootstrap"):
        raise ValueError(f"ci_method must be 'delong' or 'bootstrap'; got {ci_method!r}.")
    names = list(cohorts)
    if reference is None:
        reference = names[0]
    elif reference not in cohorts:
        raise ValueError(f"reference={reference!r} is not a cohort; cohorts are {names}.")
    data = {name: _unpack_cohort(name, cohorts[name]) for name in names}

    if threshold == "youden":
        y_ref, p_ref = data[reference]
        with _prefixed_errors(f"cohort {reference!r}"):
            threshold = youden_threshold(y_ref, p_ref, pos_label=pos_label)

    rows = []
    for name in names:
        y, p = data[name]
        with _prefixed_errors(f"cohort {name!r}"):
            prob = _check_scores(p, "y_prob", probability=True)
            is_pos, _ = _check_labels(y, pos_label)
            auc, low, high = roc_auc_ci(
                y,
                prob,
                method=ci_method,
                confidence=confidence,
                n_bootstraps=n_bootstraps,
                random_state=random_state,
                pos_label=pos_label,
            )
            metrics = binary_metrics(y, prob, threshold, pos_label=pos_label)
            hl = hosmer_lemeshow(y, prob, n_groups, pos_label=pos_label)
        rows.append(
            {
                "n": int(is_pos.shape[0]),
                "n_positive": int(is_pos.sum()),
                "auc": auc,
                "auc_low": low,
                "auc_high": high,
                **{key: metrics[key] for key in _RATE_COLUMNS},
                "threshold": float(threshold),
                "hl_statistic": hl.statistic,
                "hl_pvalue": hl.pvalue,
            }
        )
    table = pd.DataFrame(rows, index=pd.Index(names, name="cohort"), columns=_NUMERIC_COLUMNS)
    table.attrs.update(
        confidence=confidence, ci_method=ci_method, n_groups=n_groups, reference=reference
    )
    return table


@contextmanager
def _prefixed_errors(prefix):
    """Prefix errors and warnings raised inside the block with ``prefix`` (e.g. a cohort)."""
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        try:
            yield
        except TypeError as exc:
            raise TypeError(f"{prefix}: {exc}") from exc
        except ValueError as exc:
            raise ValueError(f"{prefix}: {exc}") from exc
    for record in records:
        warnings.warn(f"{prefix}: {record.message}", record.category, stacklevel=3)


def _fmt(value, decimals):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "NA"
    return f"{value:.{decimals}f}"


def _fmt_p(value, decimals):
    if value is None or math.isnan(value):
        return "NA"
    floor = 10.0 ** (-decimals)
    return f"<{floor:.{decimals}f}" if value < floor else f"{value:.{decimals}f}"


def format_performance_table(table: pd.DataFrame, decimals: int = 3) -> pd.DataFrame:
    """Format a :func:`performance_table` result as text cells, as printed in papers.

    The AUC becomes ``"0.812 (0.754-0.870)"``, the other rates are rounded to ``decimals``
    decimals, p-values below ``10**-decimals`` read ``"<0.001"`` and missing values ``"NA"``.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`performance_table`.
    decimals : int, default=3
        Number of decimals.

    Returns
    -------
    formatted : pandas.DataFrame
        Same index; columns ``N``, ``AUC (95% CI)`` (the level taken from
        ``table.attrs["confidence"]``), ``Accuracy``, ``Sensitivity``, ``Specificity``,
        ``PPV``, ``NPV``, ``F1``, ``Threshold``, ``HL statistic``, ``HL p-value``; every
        cell is a string.

    Raises
    ------
    ValueError
        When ``table`` lacks a column of :func:`performance_table`, or ``decimals`` is not a
        non-negative integer.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn_alnm.metrics import format_performance_table
    >>> table = pd.DataFrame(
    ...     {"n": [120], "n_positive": [48], "auc": [0.8123], "auc_low": [0.7541],
    ...      "auc_high": [0.8702], "accuracy": [0.75], "sensitivity": [0.8125],
    ...      "specificity": [0.7083], "ppv": [0.65], "npv": [0.85], "f1": [0.7222],
    ...      "threshold": [0.41], "hl_statistic": [6.2], "hl_pvalue": [0.6245]},
    ...     index=pd.Index(["train"], name="cohort"))
    >>> format_performance_table(table).loc["train", "AUC (95% CI)"]
    '0.812 (0.754-0.870)'
    """
    decimals = _check_int(decimals, "decimals", 0)
    missing = [c for c in _NUMERIC_COLUMNS if c not in getattr(table, "columns", ())]
    if missing:
        raise ValueError(
            f"table is missing the columns {missing}; pass the output of performance_table."
        )
    level = table.attrs.get("confidence", 0.95)
    auc_label = f"AUC ({level * 100:g}% CI)"
    rows = {}
    for name, row in table.iterrows():
        rows[name] = {
            "N": f"{int(row['n'])}",
            auc_label: (
                f"{_fmt(row['auc'], decimals)} "
                f"({_fmt(row['auc_low'], decimals)}-{_fmt(row['auc_high'], decimals)})"
            ),
            "Accuracy": _fmt(row["accuracy"], decimals),
            "Sensitivity": _fmt(row["sensitivity"], decimals),
            "Specificity": _fmt(row["specificity"], decimals),
            "PPV": _fmt(row["ppv"], decimals),
            "NPV": _fmt(row["npv"], decimals),
            "F1": _fmt(row["f1"], decimals),
            "Threshold": _fmt(row["threshold"], decimals),
            "HL statistic": _fmt(row["hl_statistic"], decimals),
            "HL p-value": _fmt_p(row["hl_pvalue"], decimals),
        }
    formatted = pd.DataFrame.from_dict(rows, orient="index")
    formatted.index.name = table.index.name
    return formatted.astype(str) if len(formatted) else formatted
