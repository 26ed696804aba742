"""Shared base of the transformers that turn cohort image columns into a feature table."""

from typing import Self

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .._typing import ArrayLike, MatrixLike
from ..io import cohort_row_ids
from ..utils import check_cohort
from ..utils._validation import CohortInputMixin


class BaseCohortFeatures(CohortInputMixin, TransformerMixin, BaseEstimator):
    """Base class: a cohort DataFrame in, one row of numeric features per patient out.

    Subclasses declare the columns they read in :meth:`_input_columns`, learn what they need in
    ``_fit(X)`` (at least ``feature_names_out_``) and compute the table in ``_transform(X)``.
    This base validates parameters and columns, keeps ``feature_names_in_``-style bookkeeping
    out of the way (the input is not a numeric matrix), exposes
    :meth:`get_feature_names_out` so ``set_output(transform="pandas")`` works, and returns
    ``float64`` arrays with one row per input row.
    """

    def _input_columns(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_cohort(self, X):
        check_cohort(self, X, self._input_columns())
        return X

    def _row_ids(self, X):
        """Patient ids (or index labels) of the rows, for messages."""
        return cohort_row_ids(X)

    def fit(self, X: MatrixLike, y: ArrayLike | None = None) -> Self:
        """Validate parameters and input, and learn the output feature names.

        Parameters
        ----------
        X : pandas.DataFrame
            The cohort.
        y : ignored

        Returns
        -------
        self
        """
        self._validate_params()
        self._check_cohort(X)
        self._fit(X)
        return self

    def transform(self, X: MatrixLike) -> pd.DataFrame | np.ndarray:
        """Compute the features of every row of ``X``.

        Parameters
        ----------
        X : pandas.DataFrame
            The cohort.

        Returns
        -------
        ndarray of shape (n_patients, n_features)
        """
        check_is_fitted(self, "feature_names_out_")
        self._check_cohort(X)
        features = np.asarray(self._transform(X), dtype=np.float64)
        if features.shape != (len(X), len(self.feature_names_out_)):
            raise RuntimeError(  # pragma: no cover - guards subclass bugs
                f"{type(self).__name__} produced {features.shape}, expected "
                f"{(len(X), len(self.feature_names_out_))}."
            )
        return features

    def get_feature_names_out(self, input_features: ArrayLike | None = None) -> np.ndarray:
        """Names of the output features (``input_features`` is ignored: inputs are images).

        Returns
        -------
        ndarray of str
        """
        check_is_fitted(self, "feature_names_out_")
        return np.asarray(self.feature_names_out_, dtype=object)
