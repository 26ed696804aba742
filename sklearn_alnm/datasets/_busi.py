"""Loader for the BUSI breast-ultrasound data set (Al-Dhabyani et al., 2020)."""

import os
import re

import numpy as np
import pandas as pd

from .._logging import get_logger
from .._typing import FilePath

_log = get_logger(__name__)

BUSI_FOLDER = "Dataset_BUSI_with_GT"
BUSI_CLASSES = ("normal", "benign", "malignant")

# "benign (12).png", "benign (12)_mask.png", "benign (12)_mask_1.png"
_FILE_RE = re.compile(r"^(?P<stem>.+?)(?P<mask>_mask(?:_(?P<k>\d+))?)?\.png$", re.IGNORECASE)
_NUMBER_RE = re.compile(r"\((\d+)\)\s*$")


def _class_folders(root):
    """Map class name -> sub-folder of ``root`` (matched case-insensitively), if any."""
    try:
        entries = os.listdir(root)
    except OSError:
        return {}
    found = {}
    for entry in entries:
        name = entry.lower()
        if name in BUSI_CLASSES and os.path.isdir(os.path.join(root, entry)):
            found[name] = os.path.join(root, entry)
    return found


def _locate(path, needed):
    """Return the folder holding the class sub-folders: ``path`` itself or ``path/BUSI_FOLDER``."""
    root = os.path.abspath(os.fspath(path))
    if not os.path.isdir(root):
        raise FileNotFoundError(f"BUSI folder {root!r} does not exist.")
    candidates = [root, os.path.join(root, BUSI_FOLDER)]
    for candidate in candidates:
        folders = _class_folders(candidate)
        if all(c in folders for c in needed):
            return folders
    try:
        content = sorted(os.listdir(root))
    except OSError:  # pragma: no cover - unreadable folder
        content = []
    shown = ", ".join(repr(c) for c in content[:10]) + (", ..." if len(content) > 10 else "")
    raise ValueError(
        f"{root!r} does not have the BUSI layout: expected sub-folders "
        + ", ".join(f"'{c}/'" for c in needed)
        + f" holding '<class> (<n>).png' images and '<class> (<n>)_mask.png' masks, either in "
        f"this folder or in its '{BUSI_FOLDER}/' sub-folder; found: [{shown}]."
    )


def _scan_class(label, folder):
    """Rows (sort key, case_id, image path, mask path(s)) of one class folder."""
    images = {}
    masks = {}
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        match = _FILE_RE.match(name)
        if match is None or not os.path.isfile(path):
            continue  # e.g. .DS_Store, Thumbs.db
        stem = match["stem"]
        if match["mask"]:
            order = int(match["k"]) if match["k"] else 0
            masks.setdefault(stem, []).append((order, path))
        else:
            images[stem] = path
    orphans = sorted(set(masks) - set(images))
    if orphans:
        example = masks[orphans[0]][0][1]
        raise ValueError(
            f"BUSI folder {folder!r}: mask {os.path.basename(example)!r} has no image; expected "
            f"{orphans[0] + '.png'!r} beside it ({len(orphans)} mask group(s) without image)."
        )
    rows = []
    for stem, image in images.items():
        number = _NUMBER_RE.search(stem)
        if number is not None:
            key = (0, int(number.group(1)), stem)
            case_id = f"{label}_{int(number.group(1)):04d}"
        else:
            key = (1, 0, stem)
            case_id = f"{label}_{re.sub(r'[^0-9A-Za-z]+', '_', stem).strip('_')}"
        found = [p for _, p in sorted(masks.get(stem, []))]
        if not found:
            _log.warning("BUSI image %s has no mask; its mask cell is None", image)
            mask = None
        elif len(found) == 1:
            mask = found[0]
        else:
            mask = found
        rows.append((key, case_id, image, mask))
    rows.sort(key=lambda row: row[0])
    return rows


def load_busi(
    path: FilePath, *, include_normal: bool = True, return_X_y: bool = False
) -> pd.DataFrame | tuple[pd.DataFrame, np.ndarray]:
    """Load the BUSI breast-ultrasound data set as a cohort table of file paths.

    BUSI ("Breast Ultrasound Images", Al-Dhabyani et al., 2020) holds 780 PNG images of 600
    women (437 benign, 210 malignant, 133 normal) with hand-drawn lesion masks. Its layout is
    ``<class>/<class> (<n>).png`` with masks ``<class> (<n>)_mask.png`` and, for images with
    several lesions, ``<class> (<n>)_mask_1.png``, ``_mask_2.png``, ... . Nothing is decoded
    here; pass the table to the estimators or to :func:`sklearn_alnm.io.read_column`.

    Parameters
    ----------
    path : str or os.PathLike
        The ``Dataset_BUSI_with_GT`` folder (holding ``benign/``, ``malignant/``, ``normal/``)
        or its parent.
    include_normal : bool, default=True
        Keep the images without lesion (``normal``). With ``False`` the ``normal/`` folder
        is not needed and the label has the two categories ``benign`` and ``malignant``.
    return_X_y : bool, default=False
        Return ``(X, y)`` with ``y`` the label column and ``X`` the other columns.

    Returns
    -------
    data : pandas.DataFrame
        One row per image, sorted by class (normal, benign, malignant) then image number, with
        a default ``RangeIndex`` and columns:

        - ``case_id``: ``"<class>_<nnnn>"``, e.g. ``"benign_0001"`` for ``benign (1).png``.
        - ``image``: absolute path of the image.
        - ``mask``: absolute path of the mask, or a list of paths when the image has several
          masks (one per lesion). The masks of a list are not merged here:
          :func:`sklearn_alnm.io.read_mask` merges a list by logical OR when it reads it.
          ``None`` for an image without mask file (a warning is logged).
        - ``label``: categorical, categories ``["normal", "benign", "malignant"]`` (without
          ``"normal"`` when ``include_normal=False``).

        Only when ``return_X_y=False``.
    (X, y) : tuple of (pandas.DataFrame, pandas.Series)
        Only when ``return_X_y=True``: ``X`` has ``case_id``, ``image`` and ``mask``; ``y`` is
        the ``label`` column.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If neither ``path`` nor ``path/Dataset_BUSI_with_GT`` holds the class sub-folders (the
        message lists what was expected and what was found), if a mask has no image, or if a
        class folder holds no image.

    See Also
    --------
    sklearn_alnm.io.read_image_mask : Read an image with its (merged) mask.

    References
    ----------
    .. [1] W. Al-Dhabyani, M. Gomaa, H. Khaled, A. Fahmy, "Dataset of breast ultrasound
       images", Data in Brief 28, 104863 (2020).

    Examples
    --------
    A folder with the BUSI layout (two tiny benign and malignant cases):

    >>> import os, tempfile
    >>> import numpy as np
    >>> from sklearn_alnm.io import write_image, write_mask
    >>> root = tempfile.mkdtemp()
    >>> for label in ("benign", "malignant"):
    ...     os.makedirs(os.path.join(root, label))
    ...     stem = os.path.join(root, label, f"{label} (1)")
    ...     _ = write_image(stem + ".png", np.full((8, 8), 90, dtype=np.uint8))
    ...     _ = write_mask(stem + "_mask.png", np.eye(8, dtype=bool))
    >>> _ = write_mask(stem + "_mask_1.png", np.eye(8, dtype=bool)[::-1])
    >>> from sklearn_alnm.datasets import load_busi
    >>> data = load_busi(root, include_normal=False)
    >>> data["case_id"].tolist(), data["label"].tolist()
    (['benign_0001', 'malignant_0001'], ['benign', 'malignant'])
    >>> [os.path.basename(p) for p in data.loc[1, "mask"]]
    ['malignant (1)_mask.png', 'malignant (1)_mask_1.png']
    >>> from sklearn_alnm.io import read_mask
    >>> int(read_mask(data.loc[1, "mask"]).sum())  # the two masks are merged on read
    16
    """
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}.")
    for name, value in (("include_normal", include_normal), ("return_X_y", return_X_y)):
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be a bool, got {type(value).__name__}.")
    classes = BUSI_CLASSES if include_normal else BUSI_CLASSES[1:]
    folders = _locate(path, classes)
    rows = []
    for label in classes:
        found = _scan_class(label, folders[label])
        if not found:
            raise ValueError(
                f"BUSI class folder {folders[label]!r} holds no image; expected files named "
                f"'{label} (<n>).png'."
            )
        rows.extend((label, case_id, image, mask) for _, case_id, image, mask in found)
    mask_column = pd.Series([None] * len(rows), dtype=object)
    for i, row in enumerate(rows):
        mask_column.iat[i] = row[3]
    data = pd.DataFrame(
        {
            "case_id": pd.Series([r[1] for r in rows], dtype=object),
            "image": pd.Series([r[2] for r in rows], dtype=object),
            "mask": mask_column,
            "label": pd.Categorical([r[0] for r in rows], categories=list(classes)),
        }
    )
    _log.debug("loaded %d BUSI images from %s", len(data), path)
    if return_X_y:
        return data.drop(columns="label"), data["label"]
    return data
