"""Type aliases of the public API's annotations.

The estimators follow scikit-learn: a cohort is a :class:`pandas.DataFrame` (one row per
patient, see the user guide), labels are any 1-D array-like of two classes, and arrays are
whatever :func:`numpy.asarray` accepts.
"""

import os
from collections.abc import Hashable
from typing import TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd

#: Anything :func:`numpy.asarray` accepts (lists, arrays, pandas Series).
ArrayLike: TypeAlias = npt.ArrayLike

#: A cohort DataFrame, or a 2-D array-like for the estimators that also take plain features.
MatrixLike: TypeAlias = pd.DataFrame | npt.ArrayLike

#: A file-system path.
FilePath: TypeAlias = str | os.PathLike[str]

#: A class label (e.g. ``1`` or ``"N+"``).
Label: TypeAlias = Hashable

#: Seed of a random number generator, as scikit-learn's ``random_state``.
RandomStateLike: TypeAlias = int | np.random.RandomState | None

#: An image or mask reference: a path, or the pixels.
ImageRef: TypeAlias = str | os.PathLike[str] | np.ndarray

__all__ = [
    "ArrayLike",
    "FilePath",
    "ImageRef",
    "Label",
    "MatrixLike",
    "RandomStateLike",
]
