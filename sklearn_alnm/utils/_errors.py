"""Input errors that say *where* in a cohort the problem is.

Cohort tables hold thousands of file references; an error must name the patient (row), the
column and the file, and say what was expected, so the user can fix the table without
debugging the library.
"""

import os
from typing import Any, Self


def describe_location(row: Any = None, column: str | None = None, path: Any = None) -> str:
    """Format ``row``/``column``/``path`` as a prefix such as ``"row 'P012', column 'mask'"``.

    Parameters
    ----------
    row : hashable or None
        Patient id or index label of the row.
    column : str or None
        Column name.
    path : str, os.PathLike or None
        File the problem was found in.

    Returns
    -------
    str
        An empty string when nothing is known.

    Examples
    --------
    >>> from sklearn_alnm.utils import describe_location
    >>> describe_location(row="P1", column="image")
    "row 'P1', column 'image'"
    """
    parts = []
    if row is not None:
        parts.append(f"row {row!r}")
    if column is not None:
        parts.append(f"column {column!r}")
    if path is not None:
        parts.append(f"file {os.fspath(path)!r}")
    return ", ".join(parts)


class CohortInputError(ValueError):
    """A ``ValueError`` about one cell of a cohort: it knows its row, column and file.

    Parameters
    ----------
    message : str
        What is wrong and what was expected.
    row, column, path : optional
        Where the problem is; they prefix the message and stay available as attributes.

    Examples
    --------
    >>> from sklearn_alnm.utils import CohortInputError
    >>> str(CohortInputError("expected a PNG", row="P1", column="image", path="a.txt"))
    "row 'P1', column 'image', file 'a.txt': expected a PNG"
    """

    def __init__(self, message, *, row=None, column=None, path=None):
        self.row = row
        self.column = column
        self.path = None if path is None else os.fspath(path)
        self.reason = message
        where = describe_location(row, column, path)
        super().__init__(f"{where}: {message}" if where else message)

    def __reduce__(self):  # keep the keyword-only fields through pickling (joblib workers)
        return (_rebuild_error, (self.reason, self.row, self.column, self.path))

    def located(self, *, row: Any = None, column: str | None = None) -> Self:
        """Return a copy that also names ``row``/``column`` (for errors raised below the cohort)."""
        return CohortInputError(
            self.reason,
            row=self.row if row is None else row,
            column=self.column if column is None else column,
            path=self.path,
        )


CohortInputError.__module__ = "sklearn_alnm.utils"  # the public home, for tracebacks and pickles


def _rebuild_error(reason, row, column, path):
    return CohortInputError(reason, row=row, column=column, path=path)
