"""Per-row work of :class:`~sklearn_alnm.features.RadiomicsFeatures`, run in joblib workers.

Everything a worker process executes for one cohort row lives here: reading the image and mask
cells, the content-cache look-up, the pyradiomics extraction and the checks of its output. The
module imports neither scikit-learn nor torch (only numpy, pandas through the cohort readers,
and pyradiomics / SimpleITK when the first row is extracted), so every process started by a
process-based joblib backend is ready to work after a short import; the estimator itself, with
its scikit-learn machinery, lives in :mod:`sklearn_alnm.features._radiomics`.
"""

import functools
import hashlib
import json
import os
import time
from dataclasses import dataclass

import numpy as np

from ..io import read_cell, resolve_id_column
from ..io._cohort import _row_id
from ..utils import CohortInputError, FeatureCache

CACHE_NAMESPACE = "radiomics"
# Index of file identities -> content key, so re-runs on unchanged files skip decoding.
_FILE_INDEX_NAMESPACE = "radiomics-files"
# Files modified less than this long before they were looked at are not indexed: a second
# write within the file system's timestamp granularity could leave their identity unchanged.
_SETTLE_SECONDS = 1.0
# Bumped whenever the conversion of cohort cells into pyradiomics input changes, so that
# entries computed by an older version of this module are not reused.
_CONVERSION_VERSION = 1

# ITU-R BT.601 luma weights (R, G, B), as used by PIL's "L" mode and OpenCV's RGB2GRAY.
GRAY_WEIGHTS = (0.299, 0.587, 0.114)


def _radiomics():
    import radiomics

    return radiomics


def _package_version():
    from .. import __version__

    return __version__


@functools.lru_cache(maxsize=16)
def _get_extractor(params_json):
    """A ``RadiomicsFeatureExtractor`` per parameter set, built once per process.

    Building one validates the parameters with pykwalify (tens of milliseconds), so a worker
    keeps the extractors it has built for the next rows.
    """
    from radiomics.featureextractor import RadiomicsFeatureExtractor

    return RadiomicsFeatureExtractor(json.loads(params_json))


def _to_sitk(image, mask, spacing, volume):
    """SimpleITK image and mask from numpy ``(H, W)`` arrays and ``(row, col)`` spacing."""
    import SimpleITK as sitk

    sitk_spacing = (float(spacing[1]), float(spacing[0]))  # SimpleITK: (x, y) = (col, row)
    if volume:
        image, mask, sitk_spacing = image[None], mask[None], (*sitk_spacing, 1.0)
    sitk_image = sitk.GetImageFromArray(np.ascontiguousarray(image, dtype=np.float64))
    sitk_mask = sitk.GetImageFromArray(np.ascontiguousarray(mask, dtype=np.uint8))
    sitk_image.SetSpacing(sitk_spacing)
    sitk_mask.SetSpacing(sitk_spacing)
    return sitk_image, sitk_mask


def _run_pyradiomics(image, mask, spacing, params_json, volume):
    extractor = _get_extractor(params_json)
    result = extractor.execute(*_to_sitk(image, mask, spacing, volume))
    names = [name for name in result if not name.startswith("diagnostics_")]
    return names, np.array([float(result[name]) for name in names], dtype=np.float64)


def _extract_features(image, mask, spacing, params_json, volume):
    """Run pyradiomics on one image and mask; return ``(names, values)``.

    Parameters
    ----------
    image : ndarray of shape (H, W), float64
    mask : ndarray of shape (H, W), uint8 labels
    spacing : tuple of 2 floats
        ``(row_spacing, col_spacing)``.
    params_json : str
        The pyradiomics parameter dictionary as JSON.
    volume : bool
        Hand the image over as a one-slice volume instead of a 2-D image.

    Returns
    -------
    names : list of str
    values : ndarray of float64
    """
    return _run_pyradiomics(image, mask, spacing, params_json, volume)


def to_gray(image):
    """Return ``image`` as a float64 grayscale array ``(H, W)``.

    RGB images become ``Y = 0.299 R + 0.587 G + 0.114 B`` (ITU-R BT.601 luma, as PIL's "L"
    mode and OpenCV's ``RGB2GRAY``, without rounding); grayscale images are only converted to
    float64.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_alnm.features._radiomics import to_gray
    >>> to_gray(np.array([[[255, 0, 0], [10, 10, 10]]], dtype=np.float32))
    array([[76.245, 10.   ]])
    """
    if image.ndim == 2:
        return image.astype(np.float64)
    rgb = image[..., :3].astype(np.float64)
    r, g, b = GRAY_WEIGHTS
    return r * rgb[..., 0] + g * rgb[..., 1] + b * rgb[..., 2]


def _cell_path(value):
    if isinstance(value, str | os.PathLike):
        return os.fspath(value)
    if isinstance(value, list | tuple):
        paths = [os.fspath(v) for v in value if isinstance(v, str | os.PathLike)]
        return "; ".join(paths) if paths else None
    return None


def _file_identity(value):
    """Identity of the file(s) of a path cell, and whether it can be indexed.

    Returns ``(identity, settled)`` where ``identity`` lists, per file, its real path, size,
    modification and change times (ns), inode and device, or is ``None`` for cells holding
    arrays and files that cannot be stat-ed. Every write to a file moves its change time
    (which cannot be set back), so an unchanged identity means unchanged content, provided
    the file had not been written in the last ``_SETTLE_SECONDS`` before it was looked at
    (``settled``); otherwise two writes within one timestamp tick could look alike.
    """
    if isinstance(value, str | os.PathLike):
        paths = [value]
    elif (
        isinstance(value, list | tuple)
        and value
        and all(isinstance(v, str | os.PathLike) for v in value)
    ):
        paths = list(value)
    else:
        return None, False
    horizon = time.time_ns() - int(_SETTLE_SECONDS * 1e9)
    identity, settled = [], True
    for path in paths:
        try:
            stat = os.stat(path)
        except OSError:
            return None, False
        identity.append(
            (
                os.path.realpath(path),
                stat.st_size,
                stat.st_mtime_ns,
                stat.st_ctime_ns,
                stat.st_ino,
                stat.st_dev,
            )
        )
        settled = settled and max(stat.st_mtime_ns, stat.st_ctime_ns) < horizon
    return identity, settled


def _array_digest(array):
    """SHA-256 of an array's dtype, shape and bytes (hardware-accelerated, unlike MD5)."""
    array = np.ascontiguousarray(array)
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


def _cached_values(cache, key, names):
    """Values of a content entry, in the order of ``names``, or ``None`` on a miss."""
    entry = cache.load(CACHE_NAMESPACE, key)
    if entry is None or "names" not in entry or "values" not in entry:
        return None
    cached = dict(zip(entry["names"].tolist(), entry["values"].tolist()))
    if set(cached) != set(names):
        return None
    return np.array([cached[n] for n in names], dtype=np.float64)


def _names_mismatch(names, expected):
    produced, learned = set(names), set(expected)
    missing = [n for n in expected if n not in produced]
    extra = [n for n in names if n not in learned]
    message = (
        "pyradiomics produced a different set of features for this row than the one learned in "
        f"fit ({len(missing)} missing, e.g. {missing[:3]}; {len(extra)} unexpected, e.g. "
        f"{extra[:3]})"
    )
    if any(n.startswith("log-sigma-") for n in missing):
        message += (
            "; pyradiomics skips a LoG sigma when the image is smaller than sigma / spacing + 1 "
            "pixels along an axis"
        )
    return message


@dataclass(frozen=True)
class _RowConfig:
    """Everything a worker needs to process one row (small and picklable)."""

    image_col: str
    mask_col: str
    label: int
    params_json: str
    key_settings: str
    volume: bool
    names: tuple
    cache: FeatureCache | None
    on_error: str
    parent_pid: int
    itk_threads: int | None
    radiomics_verbosity: int | None


def _limit_itk_threads(n_threads):
    import SimpleITK as sitk

    if sitk.ProcessObject.GetGlobalDefaultNumberOfThreads() != n_threads:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(n_threads)


def _radiomics_verbosity():
    """Level of the stderr handler pyradiomics installs on its logger (None if removed)."""
    return getattr(getattr(_radiomics(), "handler", None), "level", None)


def _set_radiomics_verbosity(level):
    """Give a worker process the parent's pyradiomics verbosity (``radiomics.setVerbosity``)."""
    if level is not None and _radiomics_verbosity() not in (None, level):
        _radiomics().setVerbosity(level)


def _process_row(frame, config):
    """Read, look up, extract and check one row; return ``(values, error, computed)``.

    ``frame`` is a one-row DataFrame holding the row's id, image and mask cells. ``values`` is
    ``None`` when the row failed (``error`` then says why); with ``on_error="raise"`` the error
    is raised instead. ``computed`` is ``False`` for cache hits.
    """
    if os.getpid() != config.parent_pid:  # a worker process
        if config.itk_threads is not None:
            _limit_itk_threads(config.itk_threads)  # do not oversubscribe the cores
        _set_radiomics_verbosity(config.radiomics_verbosity)
    try:
        return _process_row_checked(frame, config)
    except CohortInputError as exc:
        if config.on_error == "raise":
            raise
        return None, exc, False


def _process_row_checked(frame, config):
    cache = config.cache
    index_key = None
    if cache is not None:
        # Fast path for files: their identity (taken before reading) maps to the content key.
        image_id, image_settled = _file_identity(frame[config.image_col].iloc[0])
        mask_id, mask_settled = _file_identity(frame[config.mask_col].iloc[0])
        if image_id is not None and mask_id is not None:
            index_key = cache.key(
                _FILE_INDEX_NAMESPACE,
                image_id,
                mask_id,
                config.key_settings,
                _CONVERSION_VERSION,
                _package_version(),
            )
            entry = cache.load(_FILE_INDEX_NAMESPACE, index_key)
            if entry is not None and "content_key" in entry:
                values = _cached_values(cache, str(entry["content_key"]), config.names)
                if values is not None:
                    return values, None, False
            if not (image_settled and mask_settled):
                index_key = None  # just written: look at the content, do not index

    image, spacing = read_cell(
        frame, 0, config.image_col, kind="image", finite=True, return_spacing=True
    )
    mask = read_cell(
        frame,
        0,
        config.mask_col,
        kind="mask",
        shape=image.shape[:2],
        binary=False,
        required=True,
    )
    row = _row_id(frame, 0, resolve_id_column(frame, "auto"))
    mask_path = _cell_path(frame[config.mask_col].iloc[0])
    if not np.any(mask == config.label):
        present = [int(v) for v in np.unique(mask) if v != 0]
        raise CohortInputError(
            f"label {config.label} is not in the mask (labels present: {present}); expected "
            "the lesion drawn with the estimator's label",
            row=row,
            column=config.mask_col,
            path=mask_path,
        )
    image = to_gray(image)
    spacing = tuple(float(s) for s in spacing)

    key = None
    if cache is not None:
        key = cache.key(
            CACHE_NAMESPACE,
            _array_digest(image),
            _array_digest(mask),
            spacing,
            config.key_settings,
            _CONVERSION_VERSION,
        )
        values = _cached_values(cache, key, config.names)
        if values is not None:
            if index_key is not None:
                cache.save(_FILE_INDEX_NAMESPACE, index_key, content_key=np.array(key))
            return values, None, False

    try:
        names, values = _extract_features(image, mask, spacing, config.params_json, config.volume)
    except MemoryError:
        raise
    except Exception as exc:
        image_path = _cell_path(frame[config.image_col].iloc[0])
        on_image = f" on image {image_path!r}" if image_path is not None else ""
        raise CohortInputError(
            f"pyradiomics could not extract features{on_image} with this mask: "
            f"{type(exc).__name__}: {exc}",
            row=row,
            column=config.mask_col,
            path=mask_path,
        ) from exc
    if list(names) != list(config.names):
        if set(names) != set(config.names):
            raise CohortInputError(
                _names_mismatch(names, config.names),
                row=row,
                column=config.image_col,
                path=_cell_path(frame[config.image_col].iloc[0]),
            )
        by_name = dict(zip(names, values))
        values = np.array([by_name[n] for n in config.names], dtype=np.float64)
    if cache is not None:
        cache.save(CACHE_NAMESPACE, key, names=np.array(config.names, dtype=str), values=values)
        if index_key is not None:
            cache.save(_FILE_INDEX_NAMESPACE, index_key, content_key=np.array(key))
    return values, None, True
