"""Overlap between predicted and reference lesion masks: Dice, IoU, pixel precision and recall.

For one pair of binary masks with :math:`TP` (foreground in both), :math:`FP` (predicted only)
and :math:`FN` (reference only) pixels:

==================  =========================================
dice                :math:`2TP / (2TP + FP + FN)`
iou (Jaccard)       :math:`TP / (TP + FP + FN)`
pixel precision     :math:`TP / (TP + FP)`
pixel recall        :math:`TP / (TP + FN)`
==================  =========================================

Each image is scored on its own grid and the per-image values are averaged (the "mean Dice"
of the segmentation studies), never pooled over the pixels of a cohort. A pair of empty masks
(nothing to find, nothing found) scores ``empty_score``; a pair in which only one mask is empty
scores 0 for every metric. Masks are binary: any non-zero value is foreground; probability
maps must be thresholded by the caller (fractional values raise).

The scorers (:func:`make_segmentation_scorer`, :data:`dice_scorer`, :data:`iou_scorer`) plug
segmenters into :class:`~sklearn.model_selection.GridSearchCV`: they compare
``estimator.predict(X)`` with the reference masks of the cohort column ``estimator.mask_col``.
"""

import numbers
import os
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from .._typing import ImageRef

_METRICS = ("dice", "iou", "precision", "recall")


# ------------------------------------------------------------------------------- inputs


def _is_path(value):
    return isinstance(value, str | os.PathLike)


def _read_mask_file(path, where):
    from ..io import read_mask
    from ..utils import CohortInputError

    try:
        return read_mask(path, binary=False)
    except CohortInputError as exc:
        if "fractional" in exc.reason:
            raise ValueError(
                f"{where} ({os.fspath(path)!r}) holds fractional values; expected a binary "
                "mask (any non-zero value is foreground). Threshold probability maps first, "
                "e.g. (probabilities >= 0.5)."
            ) from None
        raise ValueError(f"{where}: {exc}") from None


def _as_mask_list(masks, name):
    """``(list of masks, single)``: a numpy array is one mask, a sequence holds one per image."""
    if isinstance(masks, pd.DataFrame):
        raise TypeError(
            f"{name} must be a mask array or a sequence of masks (e.g. a cohort column); got a "
            "DataFrame: pass one column, e.g. X['mask']."
        )
    if isinstance(masks, np.ndarray) and masks.dtype != object:
        return [masks], True
    if _is_path(masks):
        return [masks], True
    if isinstance(masks, pd.Series | np.ndarray | list | tuple):
        items = list(masks)
        if not items:
            raise ValueError(f"{name} is empty; expected at least one mask.")
        return items, False
    if hasattr(masks, "__array__"):  # e.g. a torch tensor: one mask
        return [np.asarray(masks)], True
    raise TypeError(
        f"{name} must be a mask array (2-D or 3-D) or a sequence of masks; got "
        f"{type(masks).__name__}."
    )


def _foreground(mask, where):
    """Boolean foreground of one mask (array or file), or a ``ValueError`` saying ``where``."""
    if _is_path(mask):
        mask = _read_mask_file(mask, where)
    if mask is None or (isinstance(mask, float) and np.isnan(mask)):
        raise ValueError(f"{where} is missing; expected a mask array (or a file path).")
    array = np.asarray(mask)
    if array.ndim not in (2, 3) or array.size == 0:
        raise ValueError(
            f"{where} must be a non-empty 2-D or 3-D mask; got an array of shape {array.shape}."
        )
    kind = array.dtype.kind
    if kind == "b":
        return array
    if kind in "iu":
        return array != 0
    if kind == "f":
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{where} contains NaN or infinite values.")
        fractional = array != np.round(array)
        if fractional.any():
            raise ValueError(
                f"{where} holds fractional values such as {float(array[fractional].flat[0])!r}; "
                "expected a binary mask (any non-zero value is foreground). Threshold "
                "probability maps first, e.g. (probabilities >= 0.5)."
            )
        return array != 0
    raise TypeError(f"{where} must hold numbers or booleans; got dtype {array.dtype}.")


def _confusion_counts(y_true, y_pred, labels=None):
    """``(tp, fp, fn)`` arrays, one entry per mask pair, and whether the input was one mask."""
    true_list, single_true = _as_mask_list(y_true, "y_true")
    pred_list, single_pred = _as_mask_list(y_pred, "y_pred")
    if single_true != single_pred or len(true_list) != len(pred_list):
        raise ValueError(
            f"y_true and y_pred must hold the same number of masks; got {len(true_list)} "
            f"reference mask(s) and {len(pred_list)} predicted mask(s)."
        )
    n = len(true_list)
    if labels is None:
        labels = ["mask" if single_true else f"mask {k}" for k in range(n)]
    counts = np.zeros((3, n), dtype=np.int64)
    for k, (truth, pred, label) in enumerate(zip(true_list, pred_list, labels)):
        t = _foreground(truth, f"{label}: y_true")
        p = _foreground(pred, f"{label}: y_pred")
        if t.shape != p.shape:
            raise ValueError(
                f"{label}: the predicted mask has shape {p.shape} but the reference mask has "
                f"shape {t.shape}; expected both on the same image grid."
            )
        tp = int(np.count_nonzero(t & p))
        counts[:, k] = tp, int(np.count_nonzero(p)) - tp, int(np.count_nonzero(t)) - tp
    return counts[0], counts[1], counts[2], single_true


def _check_options(average, empty_score):
    if average is not None and not (isinstance(average, str) and average == "mean"):
        raise ValueError(f"average must be 'mean' or None; got {average!r}.")
    if (
        isinstance(empty_score, bool)
        or not isinstance(empty_score, numbers.Real)
        or not (np.isnan(empty_score) or 0.0 <= empty_score <= 1.0)
    ):
        raise ValueError(f"empty_score must be a number in [0, 1] or NaN; got {empty_score!r}.")
    return float(empty_score)


def _values(metric, tp, fp, fn, empty_score):
    """Per-pair values of ``metric`` from the counts (see the module docstring)."""
    numerator, denominator = {
        "dice": (2 * tp, 2 * tp + fp + fn),
        "iou": (tp, tp + fp + fn),
        "precision": (tp, tp + fp),
        "recall": (tp, tp + fn),
    }[metric]
    values = np.zeros(tp.shape, dtype=np.float64)
    defined = denominator > 0
    values[defined] = numerator[defined] / denominator[defined]
    values[(tp + fp + fn) == 0] = empty_score  # both masks empty
    return values


def _average(values, average):
    if average is None:
        return values
    kept = values[~np.isnan(values)]
    return float(kept.mean()) if kept.size else float("nan")


def _segmentation_metric(metric, y_true, y_pred, average, empty_score, labels=None):
    empty_score = _check_options(average, empty_score)
    tp, fp, fn, _ = _confusion_counts(y_true, y_pred, labels)
    return _average(_values(metric, tp, fp, fn, empty_score), average)


# ------------------------------------------------------------------------------ metrics

_DOC = """{title}

:math:`{formula}` for each pair of masks, averaged over the images.

Parameters
----------
y_true : array-like or sequence of array-like
    Reference masks: one mask (a 2-D or 3-D numpy array) or a sequence of masks (list,
    tuple, object array, or a cohort column such as ``X["mask"]``), each on its own grid.
    Items may also be file paths, read with :func:`sklearn_alnm.io.read_mask`. Any non-zero
    value is foreground (label maps are fine). A numpy array is always *one* mask: pass
    ``list(stack)`` for a stack of 2-D masks.
y_pred : array-like or sequence of array-like
    Predicted masks, in the same form and order, each on the grid of its reference mask.
    Probability maps must be thresholded first: fractional values raise a ``ValueError``.
average : {{"mean"}} or None, default="mean"
    ``"mean"``: the mean of the per-image values (NaN values, from ``empty_score=np.nan``,
    are left out). ``None``: the per-image values.
empty_score : float in [0, 1] or NaN, default=1.0
    Value of a pair in which both masks are empty (an image without lesion, correctly left
    empty). ``np.nan`` leaves such images out of the mean. A pair in which only one mask is
    empty scores 0.

Returns
-------
float or ndarray of shape (n_images,)
    The mean (``average="mean"``) or the per-image values (``average=None``; a single mask
    gives an array of length 1).

Raises
------
ValueError
    Different numbers of masks, a pair on different grids (the message names the pair and
    both shapes), fractional or non-finite values, masks that are not 2-D or 3-D, invalid
    ``average`` or ``empty_score``.

See Also
--------
{see_also}

Examples
--------
>>> import numpy as np
>>> from sklearn_alnm.metrics import {name}
>>> truth = np.zeros((4, 4), dtype=np.uint8)
>>> truth[:2, :2] = 1
>>> pred = np.zeros((4, 4), dtype=np.uint8)
>>> pred[:2, :3] = 1
>>> round({name}(truth, pred), 4)
{example}
>>> values = {name}([truth, np.zeros((3, 3))], [pred, np.zeros((3, 3))], average=None)
>>> values.round(4).tolist()  # the second image: both masks empty
[{example}, 1.0]
"""


def dice_score(
    y_true: ImageRef | Sequence[ImageRef],
    y_pred: ImageRef | Sequence[ImageRef],
    *,
    average: str | None = "mean",
    empty_score: float = 1.0,
) -> float | np.ndarray:
    return _segmentation_metric("dice", y_true, y_pred, average, empty_score)


def iou_score(
    y_true: ImageRef | Sequence[ImageRef],
    y_pred: ImageRef | Sequence[ImageRef],
    *,
    average: str | None = "mean",
    empty_score: float = 1.0,
) -> float | np.ndarray:
    return _segmentation_metric("iou", y_true, y_pred, average, empty_score)


def pixel_precision_score(
    y_true: ImageRef | Sequence[ImageRef],
    y_pred: ImageRef | Sequence[ImageRef],
    *,
    average: str | None = "mean",
    empty_score: float = 1.0,
) -> float | np.ndarray:
    return _segmentation_metric("precision", y_true, y_pred, average, empty_score)


def pixel_recall_score(
    y_true: ImageRef | Sequence[ImageRef],
    y_pred: ImageRef | Sequence[ImageRef],
    *,
    average: str | None = "mean",
    empty_score: float = 1.0,
) -> float | np.ndarray:
    return _segmentation_metric("recall", y_true, y_pred, average, empty_score)


def _doc(title, formula, name, example, see_also):
    return _DOC.format(title=title, formula=formula, name=name, example=example, see_also=see_also)


dice_score.__doc__ = _doc(
    "Dice similarity coefficient (F1 over pixels) between predicted and reference masks.",
    r"2TP / (2TP + FP + FN)",
    "dice_score",
    "0.8",
    "iou_score : Intersection over union; ``iou = dice / (2 - dice)`` per image.\n"
    "make_segmentation_scorer : The scorer for GridSearchCV.",
)
iou_score.__doc__ = _doc(
    "Intersection over union (Jaccard index) between predicted and reference masks.",
    r"TP / (TP + FP + FN)",
    "iou_score",
    "0.6667",
    "dice_score : The Dice coefficient.",
)
pixel_precision_score.__doc__ = _doc(
    "Pixel precision: the share of predicted foreground pixels inside the reference mask.",
    r"TP / (TP + FP)",
    "pixel_precision_score",
    "0.6667",
    "pixel_recall_score : The share of the reference mask that is found.",
)
pixel_recall_score.__doc__ = _doc(
    "Pixel recall (sensitivity): the share of the reference mask covered by the prediction.",
    r"TP / (TP + FN)",
    "pixel_recall_score",
    "1.0",
    "pixel_precision_score : The share of the prediction that is correct.",
)


# ------------------------------------------------------------------------------ scorers


class SegmentationScorer:
    """A scorer ``scorer(estimator, X, y=None)`` comparing predicted and reference masks.

    Built by :func:`make_segmentation_scorer`, which validates the parameters; instances are
    picklable, so they work with parallel :class:`~sklearn.model_selection.GridSearchCV`.

    Parameters
    ----------
    metric : {"dice", "iou", "precision", "recall"} or callable, default="dice"
    mask_col : str or None, default=None
    empty_score : float, default=1.0
    greater_is_better : bool, default=True
        See :func:`make_segmentation_scorer`.
    """

    def __init__(self, metric="dice", *, mask_col=None, empty_score=1.0, greater_is_better=True):
        self.metric = metric
        self.mask_col = mask_col
        self.empty_score = empty_score
        self.greater_is_better = greater_is_better

    def __repr__(self):
        name = (
            self.metric
            if isinstance(self.metric, str)
            else getattr(self.metric, "__name__", repr(self.metric))
        )
        options = "" if self.mask_col is None else f", mask_col={self.mask_col!r}"
        return f"make_segmentation_scorer({name!r}{options})"

    def __call__(self, estimator, X, y=None, sample_weight=None):
        """Score ``estimator.predict(X)`` against the reference masks of ``X``.

        Parameters
        ----------
        estimator : object
            A fitted segmenter: ``predict(X)`` returns one mask per row, each on its image's
            grid (a list, or an array whose first axis has one entry per row).
        X : pandas.DataFrame
            The cohort; the reference masks are read from its column ``mask_col`` (the
            scorer's, else ``estimator.mask_col``).
        y : ignored
            The reference is the mask column; present for the scorer protocol.
        sample_weight : array-like of shape (n_rows,), default=None
            Weights of the images in the mean (images whose value is NaN are left out, as
            in the unweighted mean). A callable ``metric`` receives it as a keyword.

        Returns
        -------
        float
            The (weighted) mean per-image metric (negated when ``greater_is_better=False``).
        """
        from ..io import cohort_row_ids, read_column
        from ..utils import CohortInputError

        mask_col = (
            self.mask_col if self.mask_col is not None else getattr(estimator, "mask_col", None)
        )
        if mask_col is None:
            raise ValueError(
                f"{type(estimator).__name__} has no mask_col and the scorer was built without "
                "one; pass make_segmentation_scorer(..., mask_col='mask')."
            )
        if not isinstance(X, pd.DataFrame):
            raise TypeError(
                f"segmentation scorers read the reference masks from a cohort DataFrame; got "
                f"{type(X).__name__}."
            )
        try:
            truth = read_column(X, mask_col, kind="mask", binary=False)
        except CohortInputError as exc:
            if "fractional" in exc.reason:
                raise CohortInputError(
                    "reference mask holds fractional values; expected a binary mask (any "
                    "non-zero value is foreground)",
                    row=exc.row,
                    column=exc.column,
                    path=exc.path,
                ) from None
            raise
        pred = estimator.predict(X)
        if isinstance(pred, np.ndarray) and pred.dtype != object:
            pred = list(pred) if pred.ndim >= 3 else [pred]
        pred = list(pred)
        if len(pred) != len(truth):
            raise ValueError(
                f"{type(estimator).__name__}.predict returned {len(pred)} masks for "
                f"{len(truth)} rows; expected one mask per row."
            )
        labels = [f"row {v!r}" for v in cohort_row_ids(X)]
        if sample_weight is not None:
            sample_weight = _check_image_weights(sample_weight, len(truth))
        if callable(self.metric):
            extra = {} if sample_weight is None else {"sample_weight": sample_weight}
            score = float(self.metric(truth, pred, **extra))
        elif sample_weight is None:
            score = _segmentation_metric(self.metric, truth, pred, "mean", self.empty_score, labels)
        else:
            values = _segmentation_metric(self.metric, truth, pred, None, self.empty_score, labels)
            kept = ~np.isnan(values)
            total = sample_weight[kept].sum()
            score = float(np.dot(values[kept], sample_weight[kept]) / total) if total else np.nan
        return score if self.greater_is_better else -score


def _check_image_weights(sample_weight, n_rows):
    weights = np.asarray(sample_weight, dtype=np.float64)
    if weights.shape != (n_rows,):
        raise ValueError(f"sample_weight must have shape ({n_rows},); got {weights.shape}.")
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise ValueError("sample_weight must be finite and non-negative.")
    return weights


def make_segmentation_scorer(
    metric: str | Callable[..., float] = "dice",
    *,
    mask_col: str | None = None,
    empty_score: float = 1.0,
    greater_is_better: bool = True,
) -> SegmentationScorer:
    """Build a scorer for segmenters, usable as ``scoring=`` in GridSearchCV.

    The scorer calls ``estimator.predict(X)`` (one mask per row of the cohort ``X``, on the
    row's image grid) and compares the masks with the reference masks read from the cohort
    column ``mask_col`` (by default the estimator's own ``mask_col``), returning the mean of
    the per-image values.

    Parameters
    ----------
    metric : {"dice", "iou", "precision", "recall"} or callable, default="dice"
        A metric of this module, or ``metric(y_true, y_pred) -> float`` taking the lists of
        reference and predicted masks.
    mask_col : str or None, default=None
        Cohort column of the reference masks; ``None`` uses ``estimator.mask_col``.
    empty_score : float in [0, 1] or NaN, default=1.0
        Score of an image whose reference and predicted masks are both empty (see
        :func:`dice_score`). Ignored for a callable ``metric``.
    greater_is_better : bool, default=True
        ``False`` negates the score (for a callable loss), as scikit-learn expects.

    Returns
    -------
    SegmentationScorer
        A picklable callable ``scorer(estimator, X, y=None) -> float``.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from sklearn.base import BaseEstimator
    >>> from sklearn_alnm.metrics import make_segmentation_scorer
    >>> class Threshold(BaseEstimator):
    ...     def __init__(self, mask_col="mask", level=0.5):
    ...         self.mask_col, self.level = mask_col, level
    ...     def fit(self, X, y=None):
    ...         return self
    ...     def predict(self, X):
    ...         return [image > self.level for image in X["image"]]
    >>> image = np.zeros((8, 8))
    >>> image[2:6, 2:6] = 1.0
    >>> X = pd.DataFrame({"image": [image], "mask": [(image > 0).astype(np.uint8)]})
    >>> scorer = make_segmentation_scorer("dice")
    >>> scorer(Threshold().fit(X), X)
    1.0
    >>> scorer(Threshold(level=2.0).fit(X), X)  # finds nothing
    0.0
    """
    if isinstance(metric, str):
        if metric not in _METRICS:
            raise ValueError(
                f"metric must be one of {list(_METRICS)} or a callable; got {metric!r}."
            )
        _check_options("mean", empty_score)
    elif not callable(metric):
        raise TypeError(f"metric must be a metric name or a callable; got {type(metric).__name__}.")
    if mask_col is not None and not isinstance(mask_col, str):
        raise TypeError(f"mask_col must be a str or None; got {type(mask_col).__name__}.")
    return SegmentationScorer(
        metric, mask_col=mask_col, empty_score=empty_score, greater_is_better=greater_is_better
    )


#: Mean Dice of ``estimator.predict(X)`` against ``X[estimator.mask_col]``.
dice_scorer = make_segmentation_scorer("dice")
#: Mean IoU of ``estimator.predict(X)`` against ``X[estimator.mask_col]``.
iou_scorer = make_segmentation_scorer("iou")
