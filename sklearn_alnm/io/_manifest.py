"""Cohort manifests: CSV / Excel tables of clinical values and file references.

A manifest stores one row per patient. File references are written relative to the manifest's
folder (so a data folder can be moved or shared as a whole) and come back as absolute paths;
list-valued cells (bags of images, several masks of one image) are written ``;``-separated and
come back as Python lists.
"""

import os
import tempfile
import zipfile

import numpy as np
import pandas as pd

from .._logging import get_logger
from .._typing import FilePath
from ..utils import CohortInputError
from ._cohort import ID_COLUMNS, _is_missing, _row_id, is_id_column_name, resolve_id_column
from ._formats import KNOWN_EXTENSIONS, is_path_like, split_extension

logger = get_logger(__name__)

LIST_SEPARATOR = ";"
_PATH_NAMES = ("image", "mask", "video", "pathology", "bag")
_PATH_SUFFIXES = tuple(f"_{name}" for name in _PATH_NAMES)
_BAG_NAMES = ("bag", "bag_kind")
_BAG_SUFFIXES = ("_bag", "_bag_kind")
_TABLE_EXTENSIONS = (".csv", ".tsv", ".xlsx")


def _table_extension(path):
    ext = split_extension(path)
    if ext not in _TABLE_EXTENSIONS:
        raise ValueError(
            f"unsupported manifest format {ext!r} for {os.fspath(path)!r}; expected one of "
            + ", ".join(_TABLE_EXTENSIONS)
        )
    return ext


def _is_named_path_column(name):
    name = str(name).lower()
    return name in _PATH_NAMES or name.endswith(_PATH_SUFFIXES)


def _is_bag_column(name):
    name = str(name).lower()
    return name in _BAG_NAMES or name.endswith(_BAG_SUFFIXES)


def _has_known_extension(value):
    return str(value).lower().endswith(KNOWN_EXTENSIONS)


def _looks_like_path_column(values):
    """All non-empty cells are strings/paths (or lists of them) with a known file extension."""
    seen = False
    for value in values:
        items = value if isinstance(value, list | tuple) else [value]
        for item in items:
            if isinstance(item, np.ndarray):
                return False
            if not is_path_like(item):
                if _is_missing(item):
                    continue
                return False
            text = os.fspath(item)
            for part in text.split(LIST_SEPARATOR) if isinstance(item, str) else [text]:
                if not part.strip():
                    continue
                if not _has_known_extension(part.strip()):
                    return False
                seen = True
    return seen


def _select_columns(X, columns, auto_rule, what):
    if columns == "auto":
        return [c for c in X.columns if auto_rule(c)]
    if columns is None:
        return []
    columns = [columns] if isinstance(columns, str) else list(columns)
    missing = [c for c in columns if c not in X.columns]
    if missing:
        raise ValueError(
            f"{what}={missing!r} are not columns of the manifest; available: {list(X.columns)}"
        )
    return columns


def _path_columns(X, path_columns):
    return _select_columns(
        X,
        path_columns,
        lambda c: _is_named_path_column(c) or _looks_like_path_column(X[c]),
        "path_columns",
    )


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def _read_table(path, ext, id_col):
    header = _read_raw(path, ext, nrows=0).columns
    # Patient ids such as "007" must stay strings.
    if id_col in (None, "auto"):
        dtype = {c: str for c in header if c in ID_COLUMNS or is_id_column_name(c)}
    else:
        dtype = {c: str for c in header if c == id_col}
    return _read_raw(path, ext, dtype=dtype)


def _read_raw(path, ext, **kwargs):
    if ext == ".xlsx":
        return pd.read_excel(path, engine="openpyxl", **kwargs)
    return pd.read_csv(path, sep="\t" if ext == ".tsv" else ",", **kwargs)


def _split_cell(value):
    return [part.strip() for part in str(value).split(LIST_SEPARATOR) if part.strip()]


def _resolve(path, base):
    path = os.path.expanduser(str(path).strip())
    if not os.path.isabs(path):
        path = os.path.join(base, path)
    return os.path.abspath(path)


def load_manifest(
    path: FilePath,
    root: FilePath | None = None,
    *,
    path_columns: str | list[str] = "auto",
    list_columns: str | list[str] = "auto",
    check_files: bool = False,
    id_col: str | None = "auto",
    allow_outside_root: bool = False,
) -> pd.DataFrame:
    """Load a cohort table (CSV, TSV or Excel) into a DataFrame ready for the estimators.

    Parameters
    ----------
    path : str or os.PathLike
        The manifest: ``.csv``, ``.tsv`` or ``.xlsx`` (first sheet, read with openpyxl).
    root : str or os.PathLike, default=None
        Folder that relative file references are resolved against; default: the manifest's
        own folder. With ``root``, every reference must resolve inside it (after ``..``,
        ``~`` and symbolic links): an absolute path or a ``../`` escape elsewhere raises a
        :class:`~sklearn_alnm.utils.CohortInputError` naming the row, column and path, unless
        ``allow_outside_root=True``.
    path_columns : "auto", list of str or None, default="auto"
        Columns holding file references. ``"auto"`` takes the columns named like the data
        model (``image``, ``mask``, ``video``, ``pathology``, ``bag`` and names ending in
        ``_image``, ``_mask``, ``_video``, ``_pathology``, ``_bag``, e.g. ``cc_image``,
        ``mlo_mask``) and every column whose non-empty values all end with a known image or
        video extension. ``None`` resolves nothing.
    list_columns : "auto", list of str or None, default="auto"
        Columns whose cells hold ``;``-separated lists and come back as Python lists.
        ``"auto"``: bag columns (``bag``, ``bag_kind`` and names ending in ``_bag`` or
        ``_bag_kind``) are always lists (an empty cell is an empty list); in the other path
        columns, a cell containing ``;`` becomes a list (several masks of one image) and
        other cells stay single references. With an explicit list, exactly those columns are
        split and no other cell is.
    check_files : bool, default=False
        Check that every referenced file exists.
    id_col : str, "auto" or None, default="auto"
        Column with the patient ids used in error messages: ``"auto"`` takes the first of
        ``patient_id``, ``case_id``, ``id`` present, else the first column named like an id
        (``"Patient ID"``, ``"ID"``, ``"Case No."``, ``"MRN"``, ...), else the row's index
        label. Id columns are read as text, so ids such as ``"007"`` keep their leading
        zeros.
    allow_outside_root : bool, default=False
        Accept references that resolve outside ``root`` (ignored without ``root``).

    Returns
    -------
    X : pandas.DataFrame
        One row per patient, with a default ``RangeIndex``. File references are absolute path
        strings; empty cells of path and text columns are ``None`` (an empty bag cell is
        ``[]``). Numeric columns keep ``NaN`` for empty cells, as scikit-learn's imputers
        expect.

    Raises
    ------
    ValueError
        If the manifest format is not supported or a named column does not exist.
    FileNotFoundError
        If the manifest itself does not exist.
    CohortInputError
        With ``check_files=True``: a referenced file is missing; the message names the row
        (patient id), the column and the file.

    See Also
    --------
    save_manifest : Write a cohort to a manifest.
    read_column : Read the referenced files.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn_alnm.io import load_manifest
    >>> folder = tempfile.mkdtemp()
    >>> with open(os.path.join(folder, "cohort.csv"), "w") as fh:
    ...     _ = fh.write("patient_id,age,image,bag\\n007,52,us/007.png,us/n1.png;us/n2.png\\n")
    >>> X = load_manifest(os.path.join(folder, "cohort.csv"))
    >>> X.loc[0, "patient_id"], int(X.loc[0, "age"])
    ('007', 52)
    >>> X.loc[0, "image"] == os.path.join(folder, "us", "007.png")
    True
    >>> [os.path.basename(p) for p in X.loc[0, "bag"]]
    ['n1.png', 'n2.png']
    """
    if not is_path_like(path):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    ext = _table_extension(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"manifest {os.fspath(path)!r} does not exist")
    base = os.path.abspath(os.fspath(root if root is not None else os.path.dirname(path) or "."))
    if root is not None and not os.path.isdir(base):
        raise ValueError(f"root={os.fspath(root)!r} is not an existing folder")
    try:
        X = _read_table(path, ext, id_col).reset_index(drop=True)
    except (ValueError, UnicodeDecodeError, zipfile.BadZipFile, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        kind = "an Excel workbook" if ext == ".xlsx" else "a comma/tab-separated text table"
        reason = "it is empty" if isinstance(exc, pd.errors.EmptyDataError) else str(exc)
        raise ValueError(
            f"manifest {os.fspath(path)!r} cannot be read as {kind}: {reason}"
        ) from None
    if len(X) == 0:
        raise ValueError(f"manifest {os.fspath(path)!r} holds no patients (a header without rows).")
    id_name = resolve_id_column(X, id_col)
    paths = _path_columns(X, path_columns)
    if list_columns == "auto":
        always_lists = [c for c in X.columns if _is_bag_column(c)]
        split_when_separated = [c for c in paths if c not in always_lists]
    else:
        always_lists = _select_columns(X, list_columns, None, "list_columns")
        split_when_separated = []

    for column in X.columns:
        values = X[column]
        if column in always_lists:
            cells = [[] if _is_missing(v) else _split_cell(v) for v in values]
        elif column in split_when_separated:
            cells = [
                None
                if _is_missing(v)
                else (_split_cell(v) if LIST_SEPARATOR in str(v) else str(v).strip())
                for v in values
            ]
        elif column in paths or values.dtype == object or pd.api.types.is_string_dtype(values):
            cells = [None if _is_missing(v) else v for v in values]
        else:
            continue
        if column in paths:
            cells = [_resolve_cell(v, base) for v in cells]
        X[column] = pd.Series(cells, index=X.index, dtype=object)

    if root is not None and not allow_outside_root:
        _check_inside_root(X, paths, id_name, base)
    if check_files:
        _check_files(X, paths, id_name)
    logger.debug("loaded manifest %s: %d rows, path columns %s", path, len(X), paths)
    return X


def _resolve_cell(value, base):
    if value is None:
        return None
    if isinstance(value, list):
        return [_resolve(v, base) for v in value]
    return _resolve(value, base)


def _check_inside_root(X, columns, id_name, root):
    real_root = os.path.realpath(root)
    for column in columns:
        for i, value in enumerate(X[column]):
            for item in value if isinstance(value, list) else [value]:
                if item is None:
                    continue
                real = os.path.realpath(item)
                try:
                    inside = os.path.commonpath([real, real_root]) == real_root
                except ValueError:  # different drives on Windows
                    inside = False
                if not inside:
                    raise CohortInputError(
                        f"file reference resolves outside root {root!r}; references must stay "
                        "inside root (pass allow_outside_root=True to accept it)",
                        row=_row_id(X, i, id_name),
                        column=column,
                        path=item,
                    )


def _check_files(X, columns, id_name):
    for column in columns:
        for i, value in enumerate(X[column]):
            for item in value if isinstance(value, list) else [value]:
                if item is not None and not os.path.isfile(item):
                    raise CohortInputError(
                        "referenced file not found; expected an existing file (relative paths "
                        "are resolved against the manifest's folder or root=)",
                        row=_row_id(X, i, id_name),
                        column=column,
                        path=item,
                    )


# --------------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------------


def _relative(path, folder):
    absolute = os.path.abspath(os.fspath(path))
    try:
        inside = os.path.commonpath([absolute, folder]) == folder
    except ValueError:  # different drives on Windows
        inside = False
    if inside:
        return os.path.relpath(absolute, folder).replace(os.sep, "/")
    return absolute


def save_manifest(
    X: pd.DataFrame,
    path: FilePath,
    *,
    path_columns: str | list[str] = "auto",
    index: str | bool = "auto",
) -> str:
    """Write a cohort DataFrame to a CSV, TSV or Excel manifest that :func:`load_manifest` reads.

    Parameters
    ----------
    X : pandas.DataFrame
        The cohort. Path cells (``str``/``os.PathLike``) may be relative to the current
        directory or absolute; array cells cannot be stored (write them to files with
        :func:`write_image`, :func:`write_mask` or :func:`write_video` first).
    path : str or os.PathLike
        Output file: ``.csv``, ``.tsv`` or ``.xlsx``. The file is written completely or not at
        all.
    path_columns : "auto", list of str or None, default="auto"
        Columns holding file references, chosen as in :func:`load_manifest`. References to
        files inside the manifest's folder are written relative to it with ``/`` separators;
        others are written as absolute paths.
    index : "auto" or bool, default="auto"
        Write the index as a first column (named after the index, or ``id``). ``"auto"`` writes
        it unless it is the default ``0..n-1`` range.

    Returns
    -------
    path : str
        The written manifest.

    Notes
    -----
    List cells are written ``;``-separated. In columns other than bag columns a list with
    fewer than two items gets a trailing ``;`` so that it comes back as a list. ``None`` and
    NaN are written as empty cells.

    Raises
    ------
    CohortInputError
        If a cell holds an array, or a list item contains ``;``; the message names the row and
        the column.
    ValueError
        If the extension is not supported.

    Examples
    --------
    >>> import os, tempfile
    >>> import pandas as pd
    >>> from sklearn_alnm.io import load_manifest, save_manifest
    >>> folder = tempfile.mkdtemp()
    >>> nodes = [os.path.join(folder, "n1.png"), os.path.join(folder, "n2.png")]
    >>> X = pd.DataFrame({"patient_id": ["P1"], "ER": [1], "bag": [nodes]})
    >>> path = save_manifest(X, os.path.join(folder, "cohort.csv"))
    >>> print(open(path).read().strip())
    patient_id,ER,bag
    P1,1,n1.png;n2.png
    >>> load_manifest(path).loc[0, "bag"] == X.loc[0, "bag"]
    True
    """
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"expected the cohort as a pandas DataFrame, got {type(X).__name__}")
    if not is_path_like(path):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    ext = _table_extension(path)
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"folder {folder!r} does not exist; create it before writing")

    table = X.copy()
    write_index = index if isinstance(index, bool) else not X.index.equals(pd.RangeIndex(len(X)))
    if write_index:
        name = X.index.name if X.index.name is not None else "id"
        if name in X.columns:
            raise ValueError(
                f"cannot write the index as column {name!r}: the cohort already has one; "
                "pass index=False or rename the index"
            )
        table.insert(0, name, X.index)
    table = table.reset_index(drop=True)
    paths = _path_columns(X, path_columns)
    id_name = resolve_id_column(table, "auto")
    for column in table.columns:
        values = table[column]
        if values.dtype != object and column not in paths:
            continue
        bag = _is_bag_column(column)
        table[column] = [
            _format_cell(v, column in paths, bag, folder, table, i, column, id_name)
            for i, v in enumerate(values)
        ]

    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".manifest-", suffix=ext)
    os.close(fd)
    try:
        if ext == ".xlsx":
            table.to_excel(tmp, index=False, engine="openpyxl")
        else:
            table.to_csv(tmp, index=False, sep="\t" if ext == ".tsv" else ",")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return os.fspath(path)


def _format_cell(value, is_path, is_bag, folder, table, i, column, id_name):
    def where():
        return {"row": _row_id(table, i, id_name), "column": column}

    if isinstance(value, np.ndarray):
        raise CohortInputError(
            "holds an in-memory array, which a manifest cannot store; write it to a file "
            "(write_image / write_mask / write_video) and put its path in the cell",
            **where(),
        )
    if isinstance(value, list | tuple):
        items = []
        for item in value:
            if isinstance(item, np.ndarray):
                raise CohortInputError(
                    "holds a list with an in-memory array, which a manifest cannot store; "
                    "write it to a file first",
                    **where(),
                )
            text = _relative(item, folder) if is_path and is_path_like(item) else str(item)
            if LIST_SEPARATOR in text:
                raise CohortInputError(
                    f"list item {text!r} contains {LIST_SEPARATOR!r}, the list separator of "
                    "manifests; rename it",
                    **where(),
                )
            items.append(text)
        text = LIST_SEPARATOR.join(items)
        if not is_bag and len(items) < 2:
            text += LIST_SEPARATOR
        return text
    if _is_missing(value):
        return None
    if is_path and isinstance(value, str) and LIST_SEPARATOR in value:  # an already joined list
        return LIST_SEPARATOR.join(_relative(v, folder) for v in _split_cell(value))
    if is_path and is_path_like(value):
        return _relative(value, folder)
    return value
