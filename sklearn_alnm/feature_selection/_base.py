"""Helpers shared by the selectors: binary targets, feature names, the no-feature fallback."""

import numpy as np
from sklearn.utils.multiclass import type_of_target


def _check_binary_target(y, estimator_name):
    """Validate a binary class label; return ``(classes, y01)``.

    ``classes`` holds the two labels sorted (``classes[1]`` is the positive class, as in
    scikit-learn classifiers) and ``y01`` is ``y`` encoded as 0 / 1 integers.

    Raises
    ------
    ValueError
        For a continuous, multiclass, multilabel or single-class target, or a target with
        missing values. Unknown target types raise scikit-learn's "Unknown label type" error.
    """
    y = np.asarray(y)
    if y.dtype.kind == "f" and np.isnan(y).any():
        raise ValueError(
            f"{estimator_name} needs a binary class label without missing values; y contains NaN."
        )
    target_type = type_of_target(y, input_name="y", raise_unknown=True)
    classes, y01 = np.unique(y, return_inverse=True)
    if target_type != "binary" or classes.shape[0] != 2:
        if target_type == "continuous":
            what = "continuous values"
        elif classes.shape[0] < 2:
            what = f"a single class ({classes.tolist()!r}); both classes are needed"
        else:
            what = f"{classes.shape[0]} classes ({target_type})"
        raise ValueError(
            f"{estimator_name} supports binary classification only (any two labels, e.g. "
            f"0/1 for node-negative / node-positive); y has {what}."
        )
    return classes, y01.astype(np.int64)


def _input_feature_names(estimator):
    """Names of the input features: ``feature_names_in_`` or ``x0, x1, ...``."""
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        return [str(name) for name in names]
    return [f"x{i}" for i in range(estimator.n_features_in_)]


def _first_path_feature(X, y01):
    """Index of the feature that enters an L1 path first.

    For a lasso (or L1-penalised logistic) model with an unpenalised intercept, all
    coefficients are zero down to the penalty at which the feature with the largest
    :math:`|\\sum_i (x_{ij} - \\bar x_j)(y_i - \\bar y)|` becomes active (the gradient of the
    loss at zero). On standardised features this is the feature with the largest absolute
    point-biserial correlation with the label. Ties go to the first column.
    """
    Xc = X - X.mean(axis=0)
    score = np.abs(Xc.T @ (y01 - y01.mean()))
    return int(np.argmax(score))
