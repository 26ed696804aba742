"""The positive class of a binary outcome, never guessed.

Clinical labels are often strings ("N0" / "N+", "negative" / "positive", "no" / "yes"). Their
sorted order says nothing about which one is the event: ``sorted(["N0", "N+"])`` puts "N+"
first, so taking the greater label as positive (scikit-learn's default for ``classes_[1]``)
would model N0 and invert every odds ratio. The rule here is scikit-learn's
``precision_score`` rule: the positive class is known for the labels {0, 1}, {-1, 1} and
{False, True} (it is 1 / True); for any other labels it must be named with ``pos_label``.
"""

import numpy as np

from .._typing import ArrayLike, Label

_CONVENTIONAL = ({0, 1}, {-1, 1})


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def is_conventional_labels(classes: ArrayLike) -> bool:
    """Whether the positive class of ``classes`` is known without ``pos_label``.

    True for subsets of {0, 1}, {-1, 1} and {False, True} (numbers or booleans, not strings).
    """
    values = [_plain(c) for c in np.asarray(classes, dtype=object).ravel().tolist()]
    if not values or any(
        isinstance(v, (str, bytes)) or not isinstance(v, (bool, int, float)) for v in values
    ):
        return False
    try:
        present = {int(v) for v in values if float(v) == int(v)}
    except (TypeError, ValueError, OverflowError):
        return False
    if len(present) != len(set(values)):
        return False
    return any(present <= allowed for allowed in _CONVENTIONAL)


def resolve_pos_label(
    classes: ArrayLike, pos_label: Label | None = None, *, owner: str | None = None, name: str = "y"
) -> Label:
    """Return the positive class of binary ``classes``; raise instead of guessing.

    Parameters
    ----------
    classes : array-like
        The distinct labels (one or two of them).
    pos_label : scalar or None, default=None
        The positive class given by the user. ``None`` is accepted only for the conventional
        labels {0, 1}, {-1, 1} and {False, True}, whose positive class is 1 / True.
    owner : str or None, default=None
        Who asks (an estimator or function name), for the message.
    name : str, default="y"
        What holds the labels, for the message.

    Returns
    -------
    pos_label : scalar
        One of ``classes`` (as a plain Python value); for a single class, ``pos_label`` as
        given, or 1 / True for conventional labels.

    Raises
    ------
    ValueError
        For other labels without ``pos_label``, naming the labels and how to pass it, or for a
        ``pos_label`` that is not among the labels.

    Examples
    --------
    >>> from sklearn_alnm.utils import resolve_pos_label
    >>> resolve_pos_label([0, 1])
    1
    >>> resolve_pos_label(["N+", "N0"], pos_label="N+")
    'N+'
    >>> resolve_pos_label(["N+", "N0"])
    Traceback (most recent call last):
    ...
    ValueError: y has the labels ['N+', 'N0'], whose positive class cannot be guessed ...
    """
    labels = [_plain(c) for c in np.asarray(classes, dtype=object).ravel().tolist()]
    who = f"{owner}: " if owner else ""
    if pos_label is not None:
        pos_label = _plain(pos_label)
        matches = [c for c in labels if _same_label(c, pos_label)]
        if not matches:
            if len(labels) < 2:
                return pos_label  # a single class: the user says it is the other one
            raise ValueError(
                f"{who}pos_label={pos_label!r} is not one of the labels in {name}: {labels}."
            )
        return matches[0]
    if is_conventional_labels(labels):
        if any(isinstance(c, (bool, np.bool_)) for c in labels):
            return True
        return 1
    raise ValueError(
        f"{who}{name} has the labels {labels}, whose positive class cannot be guessed (their "
        "sorted order says nothing about which one is the event). Name the event with "
        f"pos_label (one of {labels}), or use 0/1 labels (1 = node-positive)."
    )


def _same_label(a, b):
    if isinstance(a, (str, bytes)) != isinstance(b, (str, bytes)):
        return False
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False
