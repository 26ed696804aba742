"""Validation helpers shared by estimators."""

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._typing import ArrayLike


def column_mask(
    spec: Any,
    n_features: int,
    names: Sequence[str] | None = None,
    *,
    param: str = "categorical",
    owner: str | None = None,
) -> np.ndarray:
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


def check_cohort(
    estimator: Any, X: Any, columns: Sequence[str], *, allow_empty: bool = False
) -> pd.DataFrame:
    """Check that ``X`` is a (non-empty) cohort DataFrame holding ``columns``.

    The one check of a cohort input: estimators, transformers and the readers of
    :mod:`sklearn_alnm.io` call it.

    Parameters
    ----------
    estimator : object, str or None
        The estimator asking (its class name is used in messages); ``None`` for a reader.
    X : object
        The input to check.
    columns : iterable of str or None
        Columns the estimator reads (``None`` entries are skipped).
    allow_empty : bool, default=False
        Accept a cohort without rows.

    Raises
    ------
    TypeError
        If ``X`` is not a :class:`pandas.DataFrame`.
    CohortInputError
        If a column is missing (the message names it and lists the available ones).
    ValueError
        If the cohort has no row.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn_alnm.utils import check_cohort
    >>> check_cohort("ImageClassifier", pd.DataFrame({"image": [0]}), ["image"])
    >>> try:
    ...     check_cohort("ImageClassifier", pd.DataFrame({"image": [0]}), ["mask"])
    ... except ValueError as error:
    ...     print(error.column)
    mask
    """
    import pandas as pd

    from ._errors import CohortInputError

    if estimator is None:
        name = "expected the cohort as a pandas DataFrame (one row per patient)"
    else:
        name = estimator if isinstance(estimator, str) else type(estimator).__name__
        name += " reads its input from a cohort DataFrame (one row per patient)"
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"{name}; got {type(X).__name__}.")
    for column in columns:
        if column is not None and column not in X.columns:
            raise CohortInputError(
                f"column not found in the cohort; available columns: {list(X.columns)}",
                column=column,
            )
    if len(X) == 0 and not allow_empty:
        who = "the reader" if estimator is None else name.split(" reads", 1)[0]
        raise ValueError(f"{who} got an empty cohort (0 rows).")


class CohortInputMixin:
    """Tags of an estimator whose input is a cohort DataFrame of references and values.

    Not a numeric 2-D array (so scikit-learn's common checks skip array-only checks), string
    cells allowed, no target needed (subclasses needing one set ``target_tags.required``).
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.target_tags.required = False
        return tags


class CohortColumnsMixin(CohortInputMixin):
    """Column bookkeeping of the estimators that add columns to a cohort DataFrame.

    The estimator names the columns it writes in ``_output_columns()``; the mixin records the
    cohort's columns (``n_features_in_``, ``feature_names_in_``) in :meth:`_remember_columns`,
    writes new cells as object columns (:meth:`_with_columns`: existing columns keep their
    position, new ones are appended), gives :meth:`get_feature_names_out` and the tags of an
    estimator reading a DataFrame of references (:class:`CohortInputMixin`).
    """

    def _output_columns(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _remember_columns(self, X):
        self.n_features_in_ = X.shape[1]
        if all(isinstance(c, str) for c in X.columns):
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_

    @staticmethod
    def _with_columns(X, cells):
        """A copy of ``X`` with ``{column: sequence of cells}`` stored as object columns."""
        import pandas as pd

        out = X.copy()
        for column, values in cells.items():
            column_cells = np.empty(len(X), dtype=object)
            for i, value in enumerate(values):
                column_cells[i] = value
            out[column] = pd.Series(column_cells, index=X.index, dtype=object)
        return out

    def get_feature_names_out(self, input_features: ArrayLike | None = None) -> np.ndarray:
        """Columns of the transformed cohort: the input columns, then the new output columns.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            The cohort's columns; ``None`` uses ``feature_names_in_`` seen in ``fit``.

        Returns
        -------
        ndarray of str
        """
        if input_features is None:
            if not hasattr(self, "feature_names_in_"):
                from sklearn.exceptions import NotFittedError

                raise NotFittedError(
                    f"{type(self).__name__} needs the cohort's column names: call fit first or "
                    "pass input_features."
                )
            input_features = self.feature_names_in_
        names = [str(c) for c in input_features]
        names += [c for c in self._output_columns() if c not in names]
        return np.asarray(names, dtype=object)
