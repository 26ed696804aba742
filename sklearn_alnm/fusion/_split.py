"""Cross-validation that keeps each patient (or centre) in one fold, read from the cohort itself."""

from collections.abc import Iterator

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold, StratifiedGroupKFold
from sklearn.model_selection._split import _BaseKFold

from .._typing import ArrayLike, MatrixLike


class GroupColumnKFold(_BaseKFold):
    """K-fold splitter whose groups come from a column of the cohort DataFrame.

    Scikit-learn's group splitters need ``groups=`` at every call, which nested estimators
    (the inner CV of :class:`~sklearn.ensemble.StackingClassifier`, ``GridSearchCV`` inside
    ``cross_val_score``) only receive with metadata routing switched on everywhere. This
    splitter reads the groups from ``X[group_col]`` instead, so patient- or centre-grouped
    CV works at every level of a study without routing. Folds are stratified by label
    (:class:`~sklearn.model_selection.StratifiedGroupKFold`) when ``y`` is given and
    ``stratify=True``.

    Parameters
    ----------
    group_col : str or None, default="patient_id"
        Column holding the patient (or centre) id. Rows sharing a value never straddle a
        training and a test fold. ``None``: every row is its own group (one row per patient).
    n_splits : int, default=5
        Number of folds (at least 2).
    stratify : bool, default=True
        Balance the label across folds.
    shuffle : bool, default=True
        Shuffle groups before splitting.
    random_state : int, RandomState instance or None, default=None
        Seed of the shuffling.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn_alnm.fusion import GroupColumnKFold
    >>> X = pd.DataFrame({"patient_id": ["a", "a", "b", "b", "c", "c", "d", "d"]})
    >>> y = [0, 0, 1, 1, 0, 0, 1, 1]
    >>> cv = GroupColumnKFold(n_splits=2, random_state=0)
    >>> [sorted(set(X["patient_id"].iloc[test])) for _, test in cv.split(X, y)]
    [['b', 'c'], ['a', 'd']]
    """

    def __init__(
        self, group_col="patient_id", n_splits=5, *, stratify=True, shuffle=True, random_state=None
    ):
        super().__init__(n_splits=n_splits, shuffle=shuffle, random_state=random_state)
        self.group_col = group_col
        self.stratify = stratify

    def _groups(self, X, groups):
        if groups is not None:
            return np.asarray(groups)
        if self.group_col is None:
            return np.arange(len(X))
        if not isinstance(X, pd.DataFrame):
            raise TypeError(
                f"GroupColumnKFold reads groups from column {self.group_col!r} of a DataFrame; "
                f"got {type(X).__name__} (pass groups= explicitly for other inputs)."
            )
        if self.group_col not in X.columns:
            raise ValueError(
                f"group column {self.group_col!r} is not in the cohort; columns: {list(X.columns)}."
            )
        values = X[self.group_col]
        if values.isna().any():
            rows = list(X.index[values.isna()][:5])
            raise ValueError(f"group column {self.group_col!r} is missing for rows {rows}.")
        return values.to_numpy()

    def _splitter(self, y):
        if self.stratify and y is not None:
            return StratifiedGroupKFold(
                self.n_splits,
                shuffle=self.shuffle,
                random_state=self.random_state if self.shuffle else None,
            )
        if self.shuffle:
            return GroupKFold(self.n_splits, shuffle=True, random_state=self.random_state)
        return GroupKFold(self.n_splits)

    def split(
        self, X: MatrixLike, y: ArrayLike | None = None, groups: ArrayLike | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(train, test)`` index arrays; see the class docstring."""
        groups = self._groups(X, groups)
        n_groups = len(np.unique(groups))
        if n_groups < self.n_splits:
            raise ValueError(
                f"Cannot make {self.n_splits} folds from {n_groups} distinct "
                f"{self.group_col!r} values."
            )
        yield from self._splitter(y).split(np.zeros((len(groups), 1)), y, groups)

    def get_n_splits(
        self,
        X: MatrixLike | None = None,
        y: ArrayLike | None = None,
        groups: ArrayLike | None = None,
    ) -> int:
        """Number of folds."""
        return self.n_splits
