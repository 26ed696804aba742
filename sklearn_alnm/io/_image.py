"""Read and write 2-D images and masks (PNG, JPEG, BMP, TIFF, DICOM, NIfTI, NRRD, MetaImage).

Every file format goes through SimpleITK, which reads all of them with one API and keeps the
physical pixel spacing where the format stores it. Arrays are accepted wherever a path is, so a
cohort cell may hold either.
"""

import contextlib
import os
import threading
import warnings
from numbers import Integral

import numpy as np

from .._logging import get_logger
from .._typing import ArrayLike, FilePath, ImageRef
from ..utils import CohortInputError
from ._formats import (
    IMAGE_EXTENSIONS,
    SPACING_EXTENSIONS,
    UINT8_EXTENSIONS,
    UINT16_EXTENSIONS,
    as_numeric_array,
    check_file,
    collapse_channels,
    is_path_like,
    read_sitk,
    sitk_message,
    split_extension,
)

logger = get_logger(__name__)

# Formats write_mask refuses: lossy compression would change label values.
_LOSSY_EXTENSIONS = (".jpg", ".jpeg")


# --------------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------------


def write_image(
    path: FilePath, array: ArrayLike, *, spacing: tuple[float, float] | None = None
) -> str:
    """Write a 2-D grayscale or RGB(A) image; the format follows the file extension.

    Parameters
    ----------
    path : str or os.PathLike
        Output file. Supported extensions: ``.png``, ``.jpg``/``.jpeg``, ``.bmp``,
        ``.tif``/``.tiff``, ``.dcm``, ``.nii``/``.nii.gz``, ``.nrrd``/``.nhdr``,
        ``.mha``/``.mhd``. The parent folder must exist.
    array : array-like of shape (H, W), (H, W, 3) or (H, W, 4)
        Pixel values. They are written exactly, never rescaled or clipped:

        - PNG and TIFF need integer values in ``[0, 255]`` (stored as uint8) or in
          ``[0, 65535]`` (stored as uint16; also whenever ``array`` is already uint16).
        - JPEG and BMP need integer values in ``[0, 255]``; JPEG is lossy, so values read back
          are only close to the ones written.
        - DICOM needs integer values representable as uint8, uint16 or int16 (uint8 for RGB).
        - NIfTI, NRRD and MetaImage keep floating-point data as float32 and integer data in its
          own dtype.

        Float arrays holding integer values are accepted by the integer-only formats.
    spacing : tuple of 2 floats, default=None
        Physical pixel size ``(row_spacing, col_spacing)`` in numpy axis order (e.g. mm).
        Stored by PNG, TIFF, DICOM, NIfTI, NRRD and MetaImage; ``None`` writes ``(1, 1)``.

    Returns
    -------
    path : str
        The written file, so calls can fill a cohort column directly.

    Raises
    ------
    ValueError
        If the extension is not supported, the array is not 2-D gray / RGB(A), its values do not
        fit the format (non-integer, negative, too large, NaN), or ``spacing`` cannot be stored
        in the format.
    FileNotFoundError
        If the output folder does not exist.

    See Also
    --------
    read_image : The matching reader.
    write_mask : Write a binary mask or label map.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from sklearn_alnm.io import read_image, write_image
    >>> folder = tempfile.mkdtemp()
    >>> image = np.arange(12, dtype=np.float32).reshape(3, 4)
    >>> path = write_image(os.path.join(folder, "case.nii.gz"), image, spacing=(0.5, 0.25))
    >>> read_image(path, return_spacing=True)[1]
    (0.5, 0.25)
    >>> try:
    ...     write_image(os.path.join(folder, "case.png"), image + 0.5)
    ... except ValueError as exc:
    ...     print(exc.reason)
    PNG stores integers only; expected integer values, got fractional values such as 0.5
    """
    ext = _check_writable(path, IMAGE_EXTENSIONS, "image")
    array = _validate_2d(array, path, "image", allow_channels=True)
    array = _cast_for_format(array, ext, path)
    _write_sitk(path, array, ext, spacing, is_vector=array.ndim == 3)
    return os.fspath(path)


def write_mask(
    path: FilePath, mask: ArrayLike, *, spacing: tuple[float, float] | None = None
) -> str:
    """Write a binary mask or label map as uint8, storing the label values unchanged.

    Convention: the file holds the labels themselves, so a binary mask is stored as 0/1 in every
    format (it looks black in an image viewer; :func:`read_mask` reads both 0/1 and the common
    0/255 exports correctly). Boolean masks become 0/1.

    Parameters
    ----------
    path : str or os.PathLike
        Output file: ``.png``, ``.bmp``, ``.tif``/``.tiff``, ``.dcm``, ``.nii``/``.nii.gz``,
        ``.nrrd``/``.nhdr`` or ``.mha``/``.mhd``. JPEG is refused because its lossy
        compression changes label values.
    mask : array-like of shape (H, W)
        Boolean or integer labels in ``[0, 255]``.
    spacing : tuple of 2 floats, default=None
        Physical pixel size ``(row_spacing, col_spacing)``, as in :func:`write_image`.

    Returns
    -------
    path : str
        The written file.

    Raises
    ------
    ValueError
        If the extension is not supported, the mask is not 2-D, or a label is not an integer
        in ``[0, 255]``.

    See Also
    --------
    read_mask : The matching reader.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from sklearn_alnm.io import read_mask, write_mask
    >>> mask = np.zeros((4, 5), dtype=bool)
    >>> mask[1:3, 2:4] = True
    >>> path = write_mask(os.path.join(tempfile.mkdtemp(), "case_mask.png"), mask)
    >>> int(read_mask(path).sum())
    4
    """
    supported = tuple(e for e in IMAGE_EXTENSIONS if e not in _LOSSY_EXTENSIONS)
    ext = _check_writable(path, supported, "mask")
    mask = _validate_2d(mask, path, "mask", allow_channels=False)
    if mask.dtype == np.bool_:
        mask = mask.astype(np.uint8)
    mask = _integer_values(
        mask, 0, 255, path, "masks store integer labels", hint="one uint8 label per pixel"
    )
    _write_sitk(path, mask.astype(np.uint8), ext, spacing, is_vector=False)
    return os.fspath(path)


def _check_writable(path, supported, what):
    if not is_path_like(path):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    ext = split_extension(path)
    if ext not in supported:
        raise CohortInputError(
            f"cannot write {_article(what)} with extension {ext!r}; supported extensions: "
            + ", ".join(supported),
            path=path,
        )
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"folder {folder!r} does not exist; create it before writing")
    return ext


def _validate_2d(array, path, what, *, allow_channels):
    array = as_numeric_array(array, path=path)
    ok = array.ndim == 2 or (allow_channels and array.ndim == 3 and array.shape[-1] in (3, 4))
    if not ok or 0 in array.shape:
        expected = "(H, W), (H, W, 3) or (H, W, 4)" if allow_channels else "(H, W)"
        raise CohortInputError(
            f"expected a non-empty {what} array of shape {expected}, got shape {array.shape}",
            path=path,
        )
    return array


_FLOAT_FORMATS_HINT = "rescale explicitly or use NIfTI / NRRD / MetaImage, which keep float32"


def _integer_values(array, low, high, path, why, hint=_FLOAT_FORMATS_HINT):
    """Return ``array`` unchanged if all values are integers in ``[low, high]``, else raise."""
    if array.dtype == np.bool_:
        return array.astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)):
            raise CohortInputError(f"{why}; got NaN or infinite values", path=path)
        if not np.array_equal(array, np.round(array)):
            raise CohortInputError(
                f"{why}; expected integer values, got fractional values such as "
                f"{float(array[array != np.round(array)].flat[0])!r}",
                path=path,
            )
    lo, hi = array.min(), array.max()
    if lo < low or hi > high:
        raise CohortInputError(
            f"{why}; values must lie in [{low}, {high}], got range [{lo}, {hi}] ({hint})",
            path=path,
        )
    return array


def _cast_for_format(array, ext, path):
    if ext in UINT8_EXTENSIONS or ext in UINT16_EXTENSIONS:
        name = {".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".png": "PNG"}.get(ext, "TIFF")
        high = 65535 if ext in UINT16_EXTENSIONS else 255
        _integer_values(array, 0, high, path, f"{name} stores integers only")
        if array.dtype == np.uint16 or (high == 65535 and array.max() > 255):
            return array.astype(np.uint16)
        return array.astype(np.uint8)
    if ext in (".dcm", ".dicom"):
        why = "DICOM stores integers only"
        if array.ndim == 3:
            return _integer_values(array, 0, 255, path, why + " (RGB as uint8)").astype(np.uint8)
        _integer_values(array, -32768, 65535, path, why)
        lo, hi = array.min(), array.max()
        if lo >= 0 and hi <= 255 and array.dtype != np.uint16:
            return array.astype(np.uint8)
        if lo >= 0:
            return array.astype(np.uint16)
        if hi > 32767:
            raise CohortInputError(
                f"{why}; values in [{lo}, {hi}] fit neither uint16 nor int16", path=path
            )
        return array.astype(np.int16)
    # NIfTI / NRRD / MetaImage
    if array.dtype == np.bool_:
        return array.astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        return array.astype(np.float32)
    return array


def _validate_spacing(spacing, ndim=2):
    if spacing is None:
        return None
    try:
        values = tuple(float(s) for s in spacing)
    except (TypeError, ValueError):
        raise ValueError(
            f"spacing must be a tuple of {ndim} positive numbers, got {spacing!r}"
        ) from None
    if len(values) != ndim or not all(np.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"spacing must be a tuple of {ndim} positive numbers, got {spacing!r}")
    return values


def _write_sitk(path, array, ext, spacing, *, is_vector):
    """Write ``array`` (numpy axis order) with SimpleITK; remove a partial file on failure."""
    import SimpleITK as sitk

    n_spatial = array.ndim - (1 if is_vector else 0)
    spacing = _validate_spacing(spacing, n_spatial)
    if spacing is not None and ext not in SPACING_EXTENSIONS:
        raise CohortInputError(
            f"the {ext} format cannot store pixel spacing; use one of "
            + ", ".join(SPACING_EXTENSIONS)
            + " or pass spacing=None",
            path=path,
        )
    image = sitk.GetImageFromArray(np.ascontiguousarray(array), isVector=is_vector)
    if spacing is not None:
        image.SetSpacing(tuple(reversed(spacing)))
    path = os.fspath(path)
    existed = os.path.exists(path)
    try:
        sitk.WriteImage(image, path)
    except RuntimeError as exc:
        if not existed and os.path.exists(path):
            os.remove(path)
        raise CohortInputError(
            f"SimpleITK could not write the file: {sitk_message(exc)}", path=path
        ) from None
    logger.debug("wrote %s %s to %s", array.dtype, array.shape, path)


# --------------------------------------------------------------------------------------------
# Readers
# --------------------------------------------------------------------------------------------


def _load_2d(ref, what):
    """Return ``(array, spacing, path)`` with array (H, W) or (H, W, C), native dtype."""
    if is_path_like(ref):
        path = os.fspath(ref)
        ext = check_file(path, IMAGE_EXTENSIONS, what)
        array, spacing, is_vector, _ = read_sitk(path, ext)
        spatial = array.shape[:-1] if is_vector else array.shape
        if len(spatial) == 3:
            if spatial[0] != 1:
                raise CohortInputError(
                    f"is a 3-D volume of {spatial[0]} slices of {spatial[1]}x{spatial[2]} pixels; "
                    f"expected a 2-D {what}. Pick one slice (e.g. volume[k]) and pass it as an "
                    "array, or write it to its own file",
                    path=path,
                )
            array = array[0]
            spatial = spatial[1:]
        elif len(spatial) != 2:
            raise CohortInputError(
                f"has {len(spatial)} spatial dimensions; expected a 2-D {what}", path=path
            )
        spacing = spacing[-2:]
        return array, spacing, is_vector, path
    if isinstance(ref, np.ndarray) or (
        isinstance(ref, list | tuple) and not any(is_path_like(r) for r in ref)
    ):
        array = as_numeric_array(ref)
        if array.ndim == 3 and array.shape[-1] not in (1, 2, 3, 4) and array.shape[0] == 1:
            array = array[0]  # singleton depth (1, H, W)
        if array.ndim == 2:
            is_vector = False
        elif array.ndim == 3 and array.shape[-1] in (1, 2, 3, 4):
            is_vector = True
        else:
            raise CohortInputError(
                f"expected {_article(what)} array of shape (H, W) or (H, W, C) with C in 1-4, "
                f"got shape "
                f"{array.shape}"
                + ("; a 3-D volume must be reduced to one slice first" if array.ndim == 3 else "")
            )
        if 0 in array.shape:
            raise CohortInputError(f"expected a non-empty {what} array, got shape {array.shape}")
        return array, (1.0, 1.0), is_vector, None
    raise CohortInputError(
        f"expected a file path (str or os.PathLike) or a numpy array for the {what}, got "
        f"{type(ref).__name__}"
    )


def read_image(
    ref: ImageRef, *, finite: bool = False, return_spacing: bool = False
) -> np.ndarray | tuple[np.ndarray, tuple[float, float]]:
    """Read a 2-D image (file or array) as float32 grayscale (H, W) or RGB (H, W, 3).

    Intensities are kept as stored (no rescaling), only converted to float32. Channels are
    normalised the way ultrasound exports need:

    - RGB whose three channels are equal (a gray screenshot) becomes grayscale (H, W);
    - an alpha channel is dropped (RGBA -> RGB, gray+alpha -> gray);
    - a volume with a single slice is squeezed to (H, W); a true 3-D volume raises.

    Parameters
    ----------
    ref : str, os.PathLike or numpy.ndarray
        A file in PNG, JPEG, BMP, TIFF, DICOM (``.dcm``, or an extension-less file carrying the
        ``DICM`` preamble), NIfTI (``.nii``, ``.nii.gz``), NRRD or MetaImage (``.mha``,
        ``.mhd``) format, or an array of shape (H, W) or (H, W, C) with C in 1-4.
    finite : bool, default=False
        Refuse an image holding non-finite pixels (NaN or infinite values), as every model of
        the library does (the error counts them and names the file).
    return_spacing : bool, default=False
        Also return the physical pixel spacing.

    Returns
    -------
    image : ndarray of shape (H, W) or (H, W, 3), dtype float32
        A new array (never a view of ``ref``).
    spacing : tuple of 2 floats
        Only when ``return_spacing=True``: ``(row_spacing, col_spacing)`` in numpy axis order
        (SimpleITK reports ``(x, y)``; it is reversed here). ``(1.0, 1.0)`` for arrays and for
        formats without spacing (JPEG, BMP).

    Raises
    ------
    CohortInputError
        A :class:`ValueError` naming the file: missing or unreadable file, unsupported
        extension (the message lists the supported ones), a 3-D volume, a non-numeric array or
        one of the wrong dimensionality.

    See Also
    --------
    read_mask : Read a mask on the same grid.
    read_column : Read a whole cohort column with row/column-aware errors.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_alnm.io import read_image
    >>> screenshot = np.repeat(np.arange(6, dtype=np.uint8).reshape(2, 3, 1), 3, axis=2)
    >>> image = read_image(screenshot)
    >>> image.shape, image.dtype
    ((2, 3), dtype('float32'))
    >>> try:
    ...     read_image(np.zeros((2, 2, 2, 2)))
    ... except ValueError as exc:
    ...     print(exc)
    expected an image array of shape (H, W) or (H, W, C) with C in 1-4, got shape (2, 2, 2, 2)
    """
    array, spacing, is_vector, path = _load_2d(ref, "image")
    array = collapse_channels(array, channel_axis_present=is_vector, path=path)
    image = array.astype(np.float32)
    if finite:
        bad = int(np.size(image) - np.count_nonzero(np.isfinite(image)))
        if bad:
            raise CohortInputError(
                f"image has {bad} non-finite pixel(s) (NaN or infinite values); expected "
                "finite intensities",
                path=path,
            )
    return (image, spacing) if return_spacing else image


def _check_shape(shape):
    if shape is None:
        return None
    try:
        dims = tuple(shape)[:2]
    except TypeError:
        dims = ()
    if len(dims) < 2 or not all(
        isinstance(s, Integral) and not isinstance(s, bool) and s > 0 for s in dims
    ):
        raise ValueError(f"shape must be a tuple (H, W) of positive integers, got {shape!r}")
    return tuple(int(s) for s in dims)


# A mask with more distinct values than this (or a JPEG one with more than two) is a grey-level
# rendering of a binary mask: lossy compression or anti-aliasing, not a label map.
_MAX_LABELS = 16
_LOSSY_EXTENSIONS = (".jpg", ".jpeg")


class LossyMaskWarning(UserWarning):
    """A mask with many grey levels (e.g. saved as JPEG) was binarised at half its maximum."""


LOSSY_MASK_MESSAGE = (
    "masks with many grey levels (lossy JPEG compression or anti-aliased edges) are binarised "
    "at half their maximum value, not at 'any non-zero pixel', which would grow each lesion by "
    "the compression noise; store masks losslessly (PNG, NIfTI) to avoid this"
)


# The cohort column being read on this thread, so that the warning names it (once per column).
_reading = threading.local()


@contextlib.contextmanager
def reading_column(column):
    """Name the cohort column whose cells this thread reads (for :class:`LossyMaskWarning`)."""
    previous = getattr(_reading, "column", None)
    _reading.column = column
    try:
        yield
    finally:
        _reading.column = previous


def _warn_lossy():
    column = getattr(_reading, "column", None)
    where = f"column {column!r}: " if column is not None else ""
    # A message that is the same for every cell of a column: Python shows it once.
    warnings.warn(where + LOSSY_MASK_MESSAGE, LossyMaskWarning, stacklevel=4)


def _is_grey_level_mask(values, path):
    if values.shape[0] <= 2:
        return False
    lossy = path is not None and str(path).lower().endswith(_LOSSY_EXTENSIONS)
    return lossy or values.shape[0] > _MAX_LABELS


def _load_mask(ref, binary):
    array, spacing, is_vector, path = _load_2d(ref, "mask")
    array = collapse_channels(array, channel_axis_present=is_vector, path=path, what="mask")
    if array.ndim != 2:
        raise CohortInputError(
            "expected a single-channel mask (or RGB with equal channels), got an RGB image "
            "whose channels differ",
            path=path,
        )
    if array.dtype == np.bool_:
        return array.astype(np.uint8), spacing, path
    if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
        raise CohortInputError("mask contains NaN or infinite values", path=path)
    top = array.max() if array.size else 0
    # More than two values (a pixel neither 0 nor the maximum): only then sort the values.
    if np.any((array != 0) & (array != top)) and _is_grey_level_mask(np.unique(array), path):
        _warn_lossy()
        return (array > 0.5 * float(top)).astype(np.uint8), spacing, path
    if binary:
        return (array != 0).astype(np.uint8), spacing, path
    if np.issubdtype(array.dtype, np.floating) and not np.array_equal(array, np.round(array)):
        raise CohortInputError(
            "expected integer labels in a label map (binary=False), got fractional values",
            path=path,
        )
    lo, hi = array.min(), array.max()
    if lo < 0 or hi > 255:
        raise CohortInputError(
            f"expected labels in [0, 255] for a label map (binary=False), got range [{lo}, {hi}]",
            path=path,
        )
    labels = array.astype(np.uint8)
    values = np.unique(labels)
    if values[-1] == 255 and np.all(np.isin(values, (0, 255))):
        labels = (labels == 255).astype(np.uint8)  # a 0/255 export of a binary mask
    return labels, spacing, path


def read_mask(
    ref: ImageRef | None,
    *,
    binary: bool = True,
    shape: tuple[int, int] | None = None,
    required: bool = False,
    return_spacing: bool = False,
) -> np.ndarray | tuple[np.ndarray, tuple[float, float]]:
    """Read a segmentation mask (file, array, or several merged) as a uint8 array (H, W).

    Parameters
    ----------
    ref : str, os.PathLike, numpy.ndarray, or list/tuple of them
        Any form :func:`read_image` accepts. RGB masks whose channels are equal are read as
        gray; an alpha channel is dropped. A list (e.g. BUSI's ``case_mask.png`` and
        ``case_mask_1.png`` for two lesions of one image) is merged: by logical OR when
        ``binary=True``; for label maps (``binary=False``) later masks overwrite earlier ones
        wherever they are non-zero. All masks of a list must share one grid.
    binary : bool, default=True
        Map every non-zero value to 1 (so 0/1 and 0/255 masks give the same result). With
        ``False`` the integer labels in ``[0, 255]`` are kept, except that a mask whose only
        values are 0 and 255 is still read as 0/1. Either way, a **grey-level mask** — a JPEG
        file with more than two values, or any mask with more than 16 distinct values, which
        is what lossy compression or anti-aliasing makes of a binary mask — is binarised at
        half its maximum value (``mask > max / 2``), with a :class:`LossyMaskWarning` (once per
        column when read through a cohort). Every consumer (radiomics, crops, segmenters,
        metrics) reads masks here, so all of them see the same pixels.
    shape : tuple, default=None
        The grid the mask must be on, usually its image's ``image.shape`` (only the first two
        entries are used). An empty list of masks with ``shape`` given reads as all zeros.
    required : bool, default=False
        Raise if the mask has no non-zero pixel (e.g. a lesion mask must outline a lesion).
    return_spacing : bool, default=False
        Also return the ``(row_spacing, col_spacing)`` of the (first) mask.

    Returns
    -------
    mask : ndarray of shape (H, W), dtype uint8
    spacing : tuple of 2 floats
        Only when ``return_spacing=True``.

    Raises
    ------
    CohortInputError
        Besides the cases of :func:`read_image`: a mask not on ``shape`` (the message gives both
        shapes), masks of one list on different grids, an empty mask with ``required=True``, an
        RGB mask whose channels differ, labels outside ``[0, 255]`` or fractional labels when
        ``binary=False``.

    See Also
    --------
    write_mask : The writer (stores labels unchanged, 0/1 for binary masks).
    read_image_mask : Read an image and its mask with the grid check done.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_alnm.io import read_mask
    >>> first = np.zeros((3, 4), dtype=np.uint8)
    >>> first[0, 0] = 255
    >>> second = np.zeros((3, 4), dtype=np.uint8)
    >>> second[2, 3] = 1
    >>> read_mask([first, second])
    array([[1, 0, 0, 0],
           [0, 0, 0, 0],
           [0, 0, 0, 1]], dtype=uint8)
    >>> try:
    ...     read_mask(first, shape=(6, 8))
    ... except ValueError as exc:
    ...     print(exc)
    mask grid (3, 4) differs from its image grid (6, 8); expected the mask on the image's pixel grid
    """
    shape = _check_shape(shape)
    if isinstance(ref, list | tuple) and any(
        is_path_like(r) or isinstance(r, np.ndarray) for r in ref
    ):
        refs = list(ref)
    elif isinstance(ref, list | tuple) and len(ref) == 0:
        refs = []
    else:
        refs = [ref]
    where = None
    if not refs:
        if shape is None:
            raise CohortInputError(
                "got an empty list of masks; expected at least one mask (or pass shape= to "
                "read it as an all-zero mask)"
            )
        merged, spacing = np.zeros(shape, dtype=np.uint8), (1.0, 1.0)
    else:
        merged, spacing, first_path = _load_mask(refs[0], binary)
        for other in refs[1:]:
            mask, _, path = _load_mask(other, binary)
            if mask.shape != merged.shape:
                raise CohortInputError(
                    f"mask grid {mask.shape} differs from the grid {merged.shape} of the first "
                    "mask of the list; expected all masks of one image on the same grid",
                    path=path,
                )
            if binary:
                np.logical_or(merged, mask, out=merged, casting="unsafe")
            else:
                merged[mask != 0] = mask[mask != 0]
        paths = [os.fspath(r) for r in refs if is_path_like(r)]
        where = "; ".join(paths) if paths else None
        if shape is not None and merged.shape != shape:
            raise CohortInputError(
                f"mask grid {merged.shape} differs from its image grid {shape}; expected the mask "
                "on the image's pixel grid",
                path=first_path if len(refs) == 1 else where,
            )
    if required and not merged.any():
        raise CohortInputError("mask is empty; expected at least one lesion pixel", path=where)
    return (merged, spacing) if return_spacing else merged


def _article(what):
    return f"an {what}" if what[0] in "aeiou" else f"a {what}"
