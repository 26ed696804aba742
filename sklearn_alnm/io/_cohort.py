"""Read cohort cells with errors that name the patient, the column and the file.

Estimators never loop over a cohort themselves: they call :func:`read_column` /
:func:`read_image_mask` for an eager pass, or :func:`read_cell` from a lazy torch ``Dataset``.
Whatever goes wrong while reading a cell comes back as one
:class:`~sklearn_alnm.utils.CohortInputError` saying where.
"""

import inspect
import numbers
import re
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from ..utils import CohortInputError, check_cohort
from ._formats import is_path_like
from ._image import read_image, read_mask, reading_column
from ._video import read_video, set_video_channels

ID_COLUMNS = ("patient_id", "case_id", "id")
# Normalised names (lower case, runs of other characters as "_") of patient-id columns as
# clinics export them: "Patient ID", "patient_id", "Case No.", "MRN", "ID", ...
_ID_WORDS = {"id", "mrn", "patient", "case", "subject", "patientid", "caseid", "subjectid"}
_ID_PREFIXES = ("patient", "case", "subject", "study", "record", "hospital", "medical_record")
_ID_SUFFIXES = ("id", "no", "number", "num", "code")


def _normalise_name(name):
    return re.sub(r"[^0-9a-z]+", "_", str(name).lower()).strip("_")


def is_id_column_name(name: str) -> bool:
    """Whether a column name reads as a patient / case identifier.

    Examples: ``"Patient ID"``, ``"patient_id"``, ``"case_id"``, ``"ID"``, ``"Case No."``,
    ``"MRN"``, ``"Subject"``; not ``"Ki-67"`` or ``"idc_grade"``.

    Parameters
    ----------
    name : object
        A column label.

    Returns
    -------
    bool
    """
    key = _normalise_name(name)
    if key in _ID_WORDS:
        return True
    return any(
        key == f"{prefix}_{suffix}" or key == f"{prefix}{suffix}"
        for prefix in _ID_PREFIXES
        for suffix in _ID_SUFFIXES
    )


def _read_bag(ref, **kwargs):
    """Read a bag cell (a list of image references) as a list of images."""
    if ref is None or _is_missing(ref):
        return []
    items = [ref] if is_path_like(ref) or isinstance(ref, np.ndarray) else list(ref)
    images = []
    for k, item in enumerate(items):
        try:
            images.append(read_image(item, **kwargs))
        except CohortInputError as exc:
            raise CohortInputError(f"bag item {k}: {exc.reason}", path=exc.path) from None
    return images


_READERS = {"image": read_image, "mask": read_mask, "video": read_video, "bag": _read_bag}


def resolve_id_column(X: pd.DataFrame, id_col: str | None = "auto") -> str | None:
    """Name of the column holding patient ids, or ``None`` to use the index labels.

    Parameters
    ----------
    X : pandas.DataFrame
        The cohort.
    id_col : str, "auto" or None, default="auto"
        ``"auto"`` picks the first of ``patient_id``, ``case_id``, ``id`` present in ``X``,
        else the first column named like an identifier (``"Patient ID"``, ``"ID"``,
        ``"Case No."``, ``"MRN"``, ...; see :func:`is_id_column_name`); ``None`` uses the
        index.

    Returns
    -------
    str or None

    Raises
    ------
    ValueError
        If an explicit ``id_col`` is not a column of ``X``.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn_alnm.io import resolve_id_column
    >>> resolve_id_column(pd.DataFrame({"case_id": ["A"], "image": ["a.png"]}))
    'case_id'
    >>> resolve_id_column(pd.DataFrame({"image": ["a.png"]})) is None
    True
    """
    if id_col is None:
        return None
    if isinstance(id_col, str) and id_col == "auto":
        exact = next((c for c in ID_COLUMNS if c in X.columns), None)
        if exact is not None:
            return exact
        return next((c for c in X.columns if is_id_column_name(c)), None)
    if id_col not in X.columns:
        raise ValueError(
            f"id_col={id_col!r} is not a column of the cohort; expected one of "
            f"{list(X.columns)}, 'auto' or None"
        )
    return id_col


def cohort_row_ids(X: pd.DataFrame, id_col: str | None = "auto") -> list:
    """The id naming each row of a cohort in messages: its patient id, else its index label.

    The one helper every estimator uses to name rows (patients) in errors and reports.

    Parameters
    ----------
    X : pandas.DataFrame
        The cohort.
    id_col : str, "auto" or None, default="auto"
        As for :func:`resolve_id_column`. A row whose id cell is missing (NaN, None, blank)
        is named by its index label.

    Returns
    -------
    list
        One id per row (numpy scalars as Python scalars).

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn_alnm.io import cohort_row_ids
    >>> cohort_row_ids(pd.DataFrame({"patient_id": ["P1", None]}, index=[10, 11]))
    ['P1', 11]
    >>> cohort_row_ids(pd.DataFrame({"image": ["a.png"]}, index=[5]))
    [5]
    """
    id_name = resolve_id_column(X, id_col)
    return [_row_id(X, i, id_name) for i in range(len(X))]


def _row_id(X, i, id_col):
    if id_col is not None:
        value = X[id_col].iloc[i]
        if not _is_missing(value):
            return value.item() if isinstance(value, np.generic) else value
    label = X.index[i]
    return label.item() if isinstance(label, np.generic) else label


def _is_missing(value):
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, str):
        return value.strip() == ""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isnan(value)


def _check_cohort(X, columns):
    check_cohort(None, X, columns, allow_empty=True)


def _check_kind(kind, reader_kwargs):
    if kind not in _READERS:
        raise ValueError(f"kind must be one of {sorted(_READERS)}, got {kind!r}")
    reader = read_image if kind == "bag" else _READERS[kind]
    try:
        inspect.signature(reader).bind(None, **reader_kwargs)
    except TypeError as exc:
        raise TypeError(f"invalid keyword for kind={kind!r} ({reader.__name__}): {exc}") from None
    return _READERS[kind]


def _cell_path(value):
    if is_path_like(value):
        return value
    if isinstance(value, list | tuple):
        paths = [str(v) for v in value if is_path_like(v)]
        return "; ".join(paths) if paths else None
    return None


def _read_located(reader, value, row, column, kind, reader_kwargs):
    """Call ``reader(value, **reader_kwargs)`` and locate any error at ``row``/``column``."""
    try:
        with reading_column(column):
            return reader(value, **reader_kwargs)
    except CohortInputError as exc:
        raise exc.located(row=row, column=column) from None
    except MemoryError:
        raise
    except Exception as exc:  # decoder bugs, permission errors, ...: always say where
        raise CohortInputError(
            f"could not read the {kind}: {type(exc).__name__}: {exc}",
            row=row,
            column=column,
            path=_cell_path(value),
        ) from exc


def read_cell(
    X: pd.DataFrame,
    i: int,
    column: str,
    *,
    kind: str = "image",
    id_col: str | None = "auto",
    allow_missing: bool = False,
    **reader_kwargs: Any,
) -> Any:
    """Read the cell of row position ``i`` in ``column`` (a path or an array) into an array.

    This is the building block of lazy datasets: ``__getitem__(i)`` reads one cell and any
    problem is reported with the patient id, the column and the file.

    Parameters
    ----------
    X : pandas.DataFrame
        The cohort, one row per patient.
    i : int
        Row position (as for ``X.iloc``).
    column : str
        Column to read.
    kind : {"image", "mask", "video", "bag"}, default="image"
        Reader used: :func:`read_image`, :func:`read_mask`, :func:`read_video`, or
        :func:`read_image` on every item of a bag (a list of references; a missing bag cell
        is an empty bag).
    id_col : str, "auto" or None, default="auto"
        Column naming the patient in errors (see :func:`resolve_id_column`).
    allow_missing : bool, default=False
        Return ``None`` for an empty cell (``None``, NaN, ``""``) instead of raising.
    **reader_kwargs
        Passed to the reader, e.g. ``n_frames=16`` for videos, ``shape=image.shape`` and
        ``required=True`` for masks, ``return_spacing=True``.

    Returns
    -------
    ndarray, tuple, list of ndarray or None
        What the reader returns (a list of images for bags).

    Raises
    ------
    CohortInputError
        If the cell is empty (unless ``allow_missing``) or its reader fails; the message names
        the row (patient id when known), the column and the file.
    TypeError
        If ``X`` is not a DataFrame or ``reader_kwargs`` do not fit the reader.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from sklearn_alnm.io import read_cell
    >>> X = pd.DataFrame({"patient_id": ["P1", "P2"],
    ...                   "image": [np.zeros((4, 4)), np.zeros((4, 4, 4, 4))]})
    >>> read_cell(X, 0, "image").shape
    (4, 4)
    >>> try:
    ...     read_cell(X, 1, "image")
    ... except ValueError as exc:
    ...     print(exc)  # doctest: +ELLIPSIS
    row 'P2', column 'image': expected an image array of shape (H, W) or (H, W, C) ...
    """
    _check_cohort(X, [column])
    reader = _check_kind(kind, reader_kwargs)
    id_name = resolve_id_column(X, id_col)
    return _read_position(X, i, column, kind, reader, id_name, allow_missing, reader_kwargs)


def _read_position(X, i, column, kind, reader, id_name, allow_missing, reader_kwargs):
    value = X[column].iloc[i]
    if kind != "bag" and not isinstance(value, np.ndarray | list | tuple) and _is_missing(value):
        if allow_missing:
            return None
        raise CohortInputError(
            f"empty cell; expected a file path or an array holding the {kind}",
            row=_row_id(X, i, id_name),
            column=column,
        )
    return _read_located(reader, value, _row_id(X, i, id_name), column, kind, reader_kwargs)


def read_column(
    X: pd.DataFrame,
    column: str,
    *,
    kind: str = "image",
    id_col: str | None = "auto",
    allow_missing: bool = False,
    n_jobs: int | None = None,
    **reader_kwargs: Any,
) -> list:
    """Read every cell of a cohort column into a list of arrays (in row order).

    Parameters
    ----------
    X : pandas.DataFrame
        The cohort, one row per patient.
    column : str
        Column holding paths and/or arrays.
    kind : {"image", "mask", "video", "bag"}, default="image"
        Reader used for each cell, as in :func:`read_cell`.
    id_col : str, "auto" or None, default="auto"
        Column naming the patient in errors (see :func:`resolve_id_column`).
    allow_missing : bool, default=False
        Put ``None`` for empty cells instead of raising.
    n_jobs : int, default=None
        Number of threads reading files concurrently (joblib semantics: ``None`` is 1, ``-1``
        all cores). Decoding in SimpleITK and FFmpeg releases the GIL, so threads help.
    **reader_kwargs
        Passed to the reader (e.g. ``n_frames=16``, ``binary=False``, ``required=True``).

    Returns
    -------
    list
        One entry per row: what the reader returns for that cell.

    Raises
    ------
    CohortInputError
        For the first cell that cannot be read, naming its row, the column and the file; also
        when ``column`` is not in ``X``.

    See Also
    --------
    read_image_mask : Read an image column and its mask column with the grid check.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from sklearn_alnm.io import read_column
    >>> X = pd.DataFrame({"video": [np.zeros((10, 8, 8)), np.ones((3, 8, 8))]})
    >>> [v.shape for v in read_column(X, "video", kind="video", n_frames=4)]
    [(4, 8, 8), (4, 8, 8)]
    """
    _check_cohort(X, [column])
    reader = _check_kind(kind, reader_kwargs)
    id_name = resolve_id_column(X, id_col)

    def read(i):
        return _read_position(X, i, column, kind, reader, id_name, allow_missing, reader_kwargs)

    if n_jobs is None or n_jobs == 1 or len(X) < 2:
        cells = [read(i) for i in range(len(X))]
    else:
        cells = Parallel(n_jobs=n_jobs, prefer="threads")(delayed(read)(i) for i in range(len(X)))
    if kind == "video" and reader_kwargs.get("channels", "auto") == "auto":
        # One layout per column: if any clip is in colour, every clip is read as RGB.
        if any(c is not None and c.ndim == 4 for c in cells):
            cells = [None if c is None else set_video_channels(c, "rgb") for c in cells]
    return cells


def read_image_mask(
    X: pd.DataFrame,
    image_col: str = "image",
    mask_col: str = "mask",
    *,
    id_col: str | None = "auto",
    binary: bool = True,
    required: bool = False,
    return_spacing: bool = False,
    n_jobs: int | None = None,
    finite: bool = False,
) -> tuple[list[np.ndarray], ...]:
    """Read an image column and its mask column, checking that each mask is on its image's grid.

    Parameters
    ----------
    X : pandas.DataFrame
        The cohort, one row per patient.
    image_col, mask_col : str, default="image", "mask"
        Columns of the images and of their masks (a mask cell may be a list of masks, merged
        as in :func:`read_mask`).
    id_col : str, "auto" or None, default="auto"
        Column naming the patient in errors (see :func:`resolve_id_column`).
    binary : bool, default=True
        Read masks as 0/1 (else keep label values), see :func:`read_mask`.
    required : bool, default=False
        Raise for a mask without any non-zero pixel.
    finite : bool, default=False
        Refuse images with non-finite pixels (see :func:`read_image`).
    return_spacing : bool, default=False
        Also return each image's ``(row_spacing, col_spacing)``.
    n_jobs : int, default=None
        Number of threads, as in :func:`read_column`.

    Returns
    -------
    images : list of ndarray
        float32 arrays (H, W) or (H, W, 3).
    masks : list of ndarray
        uint8 arrays (H, W), each on the grid of its image.
    spacings : list of tuple
        Only when ``return_spacing=True``.

    Raises
    ------
    CohortInputError
        For the first unreadable image or mask, a mask whose grid differs from its image's
        (both shapes given), or an empty mask when ``required=True``; the message names the
        row, the column and the file.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from sklearn_alnm.io import read_image_mask
    >>> mask = np.zeros((4, 4), dtype=np.uint8)
    >>> X = pd.DataFrame({"image": [np.ones((4, 4))], "mask": [mask]}, index=["P7"])
    >>> images, masks = read_image_mask(X)
    >>> try:
    ...     read_image_mask(X, required=True)
    ... except ValueError as exc:
    ...     print(exc)
    row 'P7', column 'mask': mask is empty; expected at least one lesion pixel
    """
    _check_cohort(X, [image_col, mask_col])
    id_name = resolve_id_column(X, id_col)

    def read(i):
        image, spacing = _read_position(
            X,
            i,
            image_col,
            "image",
            read_image,
            id_name,
            False,
            {"return_spacing": True, "finite": finite},
        )
        mask_kwargs = {"binary": binary, "shape": image.shape[:2], "required": required}
        mask = _read_position(X, i, mask_col, "mask", read_mask, id_name, False, mask_kwargs)
        return image, mask, spacing

    if n_jobs is None or n_jobs == 1 or len(X) < 2:
        rows = [read(i) for i in range(len(X))]
    else:
        rows = Parallel(n_jobs=n_jobs, prefer="threads")(delayed(read)(i) for i in range(len(X)))
    images = [r[0] for r in rows]
    masks = [r[1] for r in rows]
    if return_spacing:
        return images, masks, [r[2] for r in rows]
    return images, masks
