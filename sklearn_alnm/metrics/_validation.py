"""Input validation shared by the clinical statistics.

Every public function of :mod:`sklearn_alnm.metrics` converts its inputs here, so that all of
them accept the same things (lists, numpy arrays, pandas Series; any two labels) and reject bad
input with the same, explicit messages.
"""

import numbers

import numpy as np
import pandas as pd

from ..utils._labels import resolve_pos_label


def _as_1d(values, name):
    """Return ``values`` as a 1-D numpy array, or raise a ``ValueError`` naming ``name``."""
    if isinstance(values, (pd.Series, pd.Index)):
        values = values.to_numpy()
    elif isinstance(values, pd.DataFrame):
        if values.shape[1] != 1:
            raise ValueError(
                f"{name} must be 1-D (one value per patient); got a DataFrame with "
                f"{values.shape[1]} columns."
            )
        values = values.iloc[:, 0].to_numpy()
    arr = np.asarray(values)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one value per patient); got shape {arr.shape}.")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty; at least one patient is required.")
    return arr


def _check_lengths(**arrays):
    """Raise a ``ValueError`` listing the lengths when the arrays differ in length."""
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{name} has {n}" for name, n in lengths.items())
        raise ValueError(f"Inputs must have one value per patient, but {detail}.")


def _check_labels(y_true, pos_label=None, *, name="y_true", require_both=True, other=None):
    """Validate binary labels and return a boolean array (``True`` = positive class).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Labels; any two distinct values (numbers, strings, booleans).
    pos_label : scalar or None
        The positive class. ``None`` is accepted only for the conventional labels ``{0, 1}``,
        ``{-1, 1}`` and ``{False, True}`` (positive: 1 / True); for any other labels (e.g.
        "N0" / "N+") it must be given, as for :func:`sklearn.metrics.precision_score`.
    name : str
        Name used in error messages.
    require_both : bool
        Whether both classes must be present.
    other : ndarray or None
        Further labels (e.g. predicted labels) that must come from the same two classes.

    Returns
    -------
    is_positive : ndarray of bool
    pos_label : scalar
        The positive label actually used.
    """
    y = _as_1d(y_true, name)
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise ValueError(f"{name} contains NaN or infinite values; labels must be finite.")
    if y.dtype.kind == "O" and pd.isna(y).any():
        raise ValueError(f"{name} contains missing values (None/NaN); every patient needs a label.")
    values = y if other is None else np.concatenate([y.astype(object), np.asarray(other, object)])
    try:
        classes = np.unique(values)
    except TypeError as exc:
        raise TypeError(
            f"{name} mixes label types that cannot be compared ({exc}); use one type, e.g. 0/1."
        ) from None
    if classes.shape[0] > 2:
        shown = ", ".join(repr(c.item() if hasattr(c, "item") else c) for c in classes[:5])
        raise ValueError(
            f"{name} must contain two classes (binary outcome); found {classes.shape[0]}: {shown}"
            f"{', ...' if classes.shape[0] > 5 else ''}."
        )
    pos_label = resolve_pos_label(classes, pos_label, name=name)
    is_positive = y == pos_label
    if require_both:
        n_pos = int(is_positive.sum())
        if n_pos == 0 or n_pos == y.shape[0]:
            which = "positive" if n_pos == 0 else "negative"
            raise ValueError(
                f"{name} contains one class only (no {which} patients, pos_label={pos_label!r}); "
                "this statistic needs both positive and negative patients."
            )
    if hasattr(pos_label, "item"):
        pos_label = pos_label.item()
    return np.asarray(is_positive, dtype=bool), pos_label


def _check_scores(y_score, name="y_score", *, probability=False):
    """Return ``y_score`` as a finite 1-D float array (in [0, 1] when ``probability``)."""
    s = _as_1d(y_score, name)
    if s.dtype.kind not in "biuf":
        try:
            s = s.astype(float)
        except (TypeError, ValueError):
            raise TypeError(
                f"{name} must be numeric (one score or probability per patient); got dtype "
                f"{s.dtype}."
            ) from None
    s = s.astype(float, copy=False)
    if not np.all(np.isfinite(s)):
        bad = int(np.sum(~np.isfinite(s)))
        raise ValueError(
            f"{name} contains {bad} NaN or infinite value(s); every patient needs a finite "
            f"{'probability' if probability else 'score'}."
        )
    if probability and (s.min() < 0.0 or s.max() > 1.0):
        raise ValueError(
            f"{name} must hold probabilities in [0, 1]; got values in "
            f"[{s.min():.6g}, {s.max():.6g}]. Pass predict_proba(X)[:, 1], not a decision "
            "function or logit."
        )
    return s


def _check_confidence(confidence):
    if (
        not isinstance(confidence, numbers.Real)
        or isinstance(confidence, bool)
        or not 0.0 < confidence < 1.0
    ):
        raise ValueError(f"confidence must be a number in (0, 1), e.g. 0.95; got {confidence!r}.")
    return float(confidence)


def _check_probability(value, name, *, open_ends=False):
    """``value`` as a float in [0, 1] (in (0, 1) with ``open_ends``), or a ValueError."""
    interval = "(0, 1)" if open_ends else "[0, 1]"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number in {interval}; got {value!r}.")
    value = float(value)
    inside = 0.0 < value < 1.0 if open_ends else 0.0 <= value <= 1.0
    if not (np.isfinite(value) and inside):
        raise ValueError(f"{name} must be a number in {interval}; got {value!r}.")
    return value


def _check_int(value, name, minimum):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}.")
    return int(value)


def _ratio(numerator, denominator):
    """``numerator / denominator`` as float, NaN (without a warning) when the denominator is 0."""
    return float(numerator) / float(denominator) if denominator else float("nan")
