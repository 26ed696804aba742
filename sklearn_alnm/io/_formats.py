"""File-format tables and the low-level SimpleITK / array plumbing shared by the readers.

Nothing here is public: :mod:`sklearn_alnm.io` re-exports the readers and writers built on it.
"""

import os
import re

import numpy as np

from ..utils import CohortInputError

# Format name -> extensions (lower case, with the leading dot).
IMAGE_FORMATS = {
    "PNG": (".png",),
    "JPEG": (".jpg", ".jpeg"),
    "BMP": (".bmp",),
    "TIFF": (".tif", ".tiff"),
    "DICOM": (".dcm", ".dicom"),
    "NIfTI": (".nii", ".nii.gz"),
    "NRRD": (".nrrd", ".nhdr"),
    "MetaImage": (".mha", ".mhd"),
}
VIDEO_FORMATS = {
    "container": (
        ".mp4",
        ".m4v",
        ".mov",
        ".avi",
        ".mkv",
        ".webm",
        ".mpg",
        ".mpeg",
        ".wmv",
        ".gif",  # animated GIF: many ultrasound clips are exported so
    ),
}
IMAGE_EXTENSIONS = tuple(ext for exts in IMAGE_FORMATS.values() for ext in exts)
CONTAINER_EXTENSIONS = VIDEO_FORMATS["container"]
# Volumes that SimpleITK reads as a stack of frames (multi-frame DICOM, NIfTI time series, ...).
STACK_EXTENSIONS = (
    IMAGE_FORMATS["DICOM"] + IMAGE_FORMATS["NIfTI"] + (".nrrd", ".nhdr", ".mha", ".mhd")
)
VIDEO_EXTENSIONS = CONTAINER_EXTENSIONS + STACK_EXTENSIONS
KNOWN_EXTENSIONS = tuple(dict.fromkeys(IMAGE_EXTENSIONS + VIDEO_EXTENSIONS))

# Formats in which a 2-D image keeps its physical spacing when written by SimpleITK.
SPACING_EXTENSIONS = (".png", ".tif", ".tiff") + STACK_EXTENSIONS
# Formats limited to 8-bit / 16-bit unsigned integers.
UINT8_EXTENSIONS = (".jpg", ".jpeg", ".bmp")
UINT16_EXTENSIONS = (".png", ".tif", ".tiff")


def split_extension(path):
    """Return the lower-case extension of ``path``, treating ``.nii.gz`` as one extension."""
    name = os.path.basename(os.fspath(path)).lower()
    if name.endswith(".nii.gz"):
        return ".nii.gz"
    return os.path.splitext(name)[1]


def is_dicom_file(path):
    """True when ``path`` has the DICOM preamble: bytes 128-131 are ``b"DICM"``."""
    try:
        with open(path, "rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def is_path_like(ref):
    """True for ``str`` and :class:`os.PathLike` cell values."""
    return isinstance(ref, str | os.PathLike)


def check_file(path, supported, what):
    """Validate that ``path`` exists and has a supported extension; return its extension.

    Extension-less files are accepted when they carry the DICOM magic bytes, in which case
    ``".dcm"`` is returned.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CohortInputError(f"file not found; expected an existing {what} file", path=path)
    if os.path.isdir(path):
        raise CohortInputError(f"is a directory; expected a single {what} file", path=path)
    ext = split_extension(path)
    if ext in supported:
        return ext
    if ext == "" and ".dcm" in supported and is_dicom_file(path):
        return ".dcm"
    shown = ", ".join(supported)
    found = f"extension {ext!r}" if ext else "no extension and no DICOM preamble"
    raise CohortInputError(
        f"unsupported {what} format ({found}); supported extensions: {shown}"
        + (" (and extension-less DICOM files)" if ".dcm" in supported else ""),
        path=path,
    )


def read_sitk(path, ext):
    """Read ``path`` with SimpleITK; return ``(array, spacing)`` in numpy axis order.

    Failures of the decoder (truncated or corrupt files) become :class:`CohortInputError`.
    """
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(os.fspath(path))
    if ext in (".dcm", ".dicom"):
        # Extension-less DICOM files are not recognised by every ImageIO; force GDCM.
        reader.SetImageIO("GDCMImageIO")
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        raise CohortInputError(
            f"cannot be decoded (unreadable, truncated or corrupt file): {sitk_message(exc)}",
            path=path,
        ) from None
    array = sitk.GetArrayFromImage(image)
    spacing = tuple(_spacing_value(s) for s in reversed(image.GetSpacing()))
    meta = {}
    if ext in (".dcm", ".dicom"):
        for key in reader.GetMetaDataKeys():
            if key in ("0018|1063", "0018|0040", "0008|2144"):
                meta[key] = reader.GetMetaData(key)
    return array, spacing, image.GetNumberOfComponentsPerPixel() > 1, meta


def _spacing_value(value):
    """Spacing rounded to float32 precision, the precision NIfTI and TIFF store it with.

    So a spacing written as 0.7 reads back as 0.7, not 0.699999988.
    """
    return float(np.format_float_positional(np.float32(value), unique=True, trim="0"))


def sitk_message(exc):
    """The useful part of a SimpleITK exception (its last line, without object addresses)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = lines[-1] if lines else type(exc).__name__
    return re.sub(r"\(0x[0-9a-fA-F]+\)", "", text)


def as_numeric_array(ref, *, path=None):
    """Return ``ref`` as a numeric (bool/int/float) ndarray or raise :class:`CohortInputError`."""
    array = np.asarray(ref)
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_
    ):
        raise CohortInputError(
            f"expected a numeric array, got an array of dtype {array.dtype}", path=path
        )
    if np.issubdtype(array.dtype, np.complexfloating):
        raise CohortInputError("expected a real-valued array, got complex values", path=path)
    return array


def collapse_channels(array, *, channel_axis_present, path=None, what="image"):
    """Drop alpha and collapse equal RGB channels to gray.

    ``array`` is ``(..., C)`` when ``channel_axis_present`` else grayscale already.
    Returns an array that is ``(...)`` (gray) or ``(..., 3)`` (colour).
    """
    if not channel_axis_present:
        return array
    n_channels = array.shape[-1]
    if n_channels == 1:
        return array[..., 0]
    if n_channels == 2:  # gray + alpha
        return array[..., 0]
    if n_channels == 4:  # RGBA
        array = array[..., :3]
    elif n_channels != 3:
        raise CohortInputError(
            f"expected a {what} with 1, 3 (RGB) or 4 (RGBA) channels, got {n_channels}", path=path
        )
    if np.array_equal(array[..., 0], array[..., 1]) and np.array_equal(
        array[..., 0], array[..., 2]
    ):
        return array[..., 0]
    return array
