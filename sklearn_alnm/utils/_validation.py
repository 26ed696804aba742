"""Validation helpers shared by estimators."""

import numpy as np


def column_mask(spec, n_features, names=None, *, param="categorical", owner=None):
    """Turn a user's column selection into a boolean mask over the columns of ``X``.

    Parameters
    ----------
    spec : None, str, or 1-D array-like of column names, column indices or booleans
        ``None`` selects nothing; a string is one column name.
    n_features : int
        Number of columns of ``X``.
    names : sequence of str or None, default=None
        Column names of ``X`` (``None`` when ``X`` has none, e.g. a NumPy array).
    param : str, default="categorical"
        Parameter name used in error messages.
    owner : str or None, default=None
        Estimator name prefixed to error messages.

    Returns
    -------
    ndarray of bool, shape (n_features,)

    Raises
    ------
    ValueError
        For a 2-D selection, a mask of the wrong length, indices out of range, names when
        ``X`` has none, unknown names, or values of another type.

    Examples
    --------
    >>> from sklearn_alnm.utils import column_mask
    >>> column_mask(["grade"], 3, ["age", "grade", "size"]).tolist()
    [False, True, False]
    >>> column_mask([0, 2], 3).tolist()
    [True, False, True]
    """
    what = param if owner is None else f"{owner}: {param}"
    kinds = "None, column names, column indices or a boolean mask"
    mask = np.zeros(n_features, dtype=bool)
    if spec is None:
        return mask
    if isinstance(spec, str):
        spec = [spec]
    spec = np.asarray(spec)
    if spec.ndim != 1:
        raise ValueError(f"{what} must be {kinds}; got an array of shape {spec.shape}.")
    if spec.shape[0] == 0:
        return mask
    if spec.dtype == bool:
        if spec.shape[0] != n_features:
            raise ValueError(
                f"{what} is a boolean mask of length {spec.shape[0]}, but X has "
                f"{n_features} columns."
            )
        return spec.copy()
    if spec.dtype.kind in "iu":
        bad = spec[(spec < 0) | (spec >= n_features)]
        if bad.size:
            raise ValueError(
                f"{what} holds column indices {bad.tolist()} outside [0, {n_features - 1}]."
            )
        mask[spec] = True
        return mask
    if spec.dtype.kind in "UO":
        if names is None:
            raise ValueError(
                f"{what} names columns, which needs X to be a DataFrame with string column "
                "names; pass column indices or a boolean mask for arrays."
            )
        known = {name: i for i, name in enumerate(names)}
        missing = [str(name) for name in spec if name not in known]
        if missing:
            raise ValueError(f"{what} names columns that X does not have: {missing}.")
        mask[[known[name] for name in spec]] = True
        return mask
    raise ValueError(f"{what} must be {kinds}; got an array of dtype {spec.dtype}.")
