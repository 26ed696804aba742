"""Shared base of the transformers that rewrite image columns of a cohort (private)."""

from typing import Self

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from .._typing import ArrayLike, MatrixLike
from ..io import cohort_row_ids, read_cell
from ..utils import CohortInputError, check_cohort
from ..utils._validation import CohortColumnsMixin


class BaseCohortTransformer(CohortColumnsMixin, TransformerMixin, BaseEstimator):
    """Base class: a cohort DataFrame in, a copy with rewritten image columns out.

    Subclasses name the columns they read in :meth:`_input_columns` and the columns they write
    in :meth:`_output_columns`, check cross-parameter rules in :meth:`_check_settings` and
    compute the new cells in ``_transform(X, row_ids) -> {column: list of cells}``. The base
    validates parameters and columns, copies the cohort and stores the new cells, keeping the
    scikit-learn bookkeeping of :class:`~sklearn_alnm.utils._validation.CohortColumnsMixin`.
    The transformers learn nothing: ``fit`` only validates.
    """

    def _input_columns(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_settings(self):
        """Cross-parameter checks (after ``_validate_params``); raise ``ValueError``."""

    def _check_cohort(self, X):
        check_cohort(self, X, [c for c in self._input_columns() if c is not None])
        return X

    def _validate(self, X):
        self._validate_params()
        self._check_settings()
        return self._check_cohort(X)

    def fit(self, X: MatrixLike, y: ArrayLike | None = None) -> Self:
        """Validate the parameters and the cohort's columns; nothing is learned.

        Parameters
        ----------
        X : pandas.DataFrame
            The cohort, one row per patient.
        y : ignored
            Present for API consistency.

        Returns
        -------
        self : object
            The transformer, with ``n_features_in_`` (number of cohort columns) and, when every
            column name is a string, ``feature_names_in_`` set.
        """
        self._validate(X)
        self._remember_columns(X)
        return self

    def transform(self, X: MatrixLike) -> pd.DataFrame | np.ndarray:
        """Return a copy of the cohort with the output columns (re)written.

        Parameters
        ----------
        X : pandas.DataFrame
            The cohort, one row per patient.

        Returns
        -------
        pandas.DataFrame
            Same index and columns as ``X`` (plus the new output columns, appended), the
            output columns holding numpy arrays.
        """
        self._validate(X)
        return self._with_columns(X, self._transform(X, cohort_row_ids(X)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        return tags


def read_foreground(X, i, column, shape, row_id, *, allow_missing):
    """Read the mask cell of row position ``i`` as a boolean foreground array on ``shape``.

    Any non-zero label is foreground. Masks holding fractional values (probability maps) are
    refused with a message telling to threshold them. A missing cell gives ``None`` when
    ``allow_missing``.
    """
    try:
        mask = read_cell(
            X, i, column, kind="mask", binary=False, shape=shape, allow_missing=allow_missing
        )
    except CohortInputError as exc:
        if "fractional" in exc.reason:
            raise CohortInputError(
                "mask holds fractional values (a probability map?); expected a binary mask or "
                "integer labels, any non-zero label being foreground. Threshold it first, "
                "e.g. (probabilities >= 0.5)",
                row=row_id,
                column=column,
                path=exc.path,
            ) from None
        if "binary=False" in exc.reason:
            raise CohortInputError(
                exc.reason.replace(" (binary=False)", "")
                + "; any non-zero label is foreground, so a binary 0/1 mask is enough",
                row=row_id,
                column=column,
                path=exc.path,
            ) from None
        raise
    return None if mask is None else mask != 0
