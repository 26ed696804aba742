"""Lesion regions of interest: crop each image to its mask's rectangle and resample it."""

import numbers

import numpy as np
import pandas as pd
from sklearn.utils._param_validation import Interval, StrOptions

from ..io import read_cell
from ..utils import CohortInputError
from ..utils._imaging import empty_mask_box, mask_box
from ._base import BaseCohortTransformer, cohort_row_ids, read_foreground

#: ``interpolation`` name -> keyword arguments of ``torch.nn.functional.interpolate``.
_IMAGE_MODES = {
    "nearest": {"mode": "nearest-exact"},
    "linear": {"mode": "bilinear", "align_corners": False, "antialias": True},
    "cubic": {"mode": "bicubic", "align_corners": False, "antialias": True},
    "area": {"mode": "area"},
}


class ROICropper(BaseCohortTransformer):
    """Crop every image of a cohort to the rectangle around its lesion mask, then resample it.

    For each row the image and its mask are read (paths or arrays), the smallest rectangle
    holding the lesion is found, enlarged by ``margin``, grown to ``min_size`` and cut out of
    the image and of the mask; both crops are resampled to ``output_size``. The result is a
    copy of the cohort whose image column holds the crops (or whose ``output_col`` does) and
    whose mask column holds the cropped masks, so a :class:`~sklearn.pipeline.Pipeline` can
    hand the regions of interest to an image classifier, e.g. after an automatic segmentation
    step (the US auto-segmentation study crops the segmented tumour before its deep-learning
    signature).

    Parameters
    ----------
    image_col : str, default="image"
        Cohort column of the images (paths or arrays, see :func:`sklearn_alnm.io.read_image`).
    mask_col : str, default="mask"
        Cohort column of the lesion masks, on the grid of their images. Any non-zero label is
        foreground (label maps are allowed); masks with fractional values (probability maps)
        are refused: threshold them first. An empty cell (``None``, NaN) counts as an empty
        mask.
    output_col : str or None, default=None
        Column receiving the cropped images; ``None`` replaces ``image_col``. With another name
        the original images stay in ``image_col``.
    output_mask_col : str or None, default=None
        Column receiving the cropped masks. ``None`` means ``mask_col`` when ``output_col`` is
        ``None`` (images and masks are replaced together) and ``output_col + "_mask"``
        otherwise (so the original image / mask pair stays consistent).
    margin : int or float, default=0
        Added on each side of the lesion's rectangle, then clipped to the image: an ``int``
        counts pixels, a ``float`` is a fraction of the rectangle's height (top and bottom)
        and width (left and right), e.g. ``0.1`` for 10 %.
    min_size : int, tuple of 2 int or None, default=None
        Smallest height and width of the crop, in pixels: a smaller rectangle is grown around
        its centre (and shifted inwards where it would leave the image), never beyond the
        image itself. ``None``: no minimum.
    output_size : int, tuple of 2 int or None, default=(224, 224)
        ``(height, width)`` the crops are resampled to; ``None`` keeps each crop's own size
        (the crops of a cohort then differ in size).
    interpolation : {"linear", "nearest", "cubic", "area"}, default="linear"
        Resampling of the image crops: bilinear (antialiased when shrinking), nearest
        neighbour, bicubic (antialiased; clipped to the crop's intensity range, so it adds no
        overshoot) or area averaging.
    mask_interpolation : {"nearest", "linear"}, default="nearest"
        Resampling of the mask crops: nearest neighbour, or bilinear followed by a 0.5
        threshold (smoother outlines when enlarging).
    keep : {"largest", "all"}, default="largest"
        ``"largest"``: the rectangle of the largest 8-connected component of the mask (ties:
        the first in row-major order), which discards small spurious blobs of automatic
        segmentations; the output mask holds only that component. ``"all"``: the rectangle of
        every foreground pixel; the output mask holds them all.
    empty : {"whole", "center", "error"}, default="whole"
        What an empty mask gives: the whole image, a centred rectangle of ``center_fraction``
        of the image's height and width, or a :class:`ValueError` naming the row. The output
        mask of such a row is all zeros.
    center_fraction : float in (0, 1], default=0.5
        Side fraction of the centred rectangle used by ``empty="center"``.

    Attributes
    ----------
    n_features_in_ : int
        Number of columns of the cohort seen in :meth:`fit`.
    feature_names_in_ : ndarray of str
        The cohort's column names seen in :meth:`fit` (when all are strings).

    See Also
    --------
    IntensityNormalizer : Per-image intensity normalisation.
    sklearn_alnm.features.DeepFeatures : Crops the mask's rectangle itself (``crop="mask_bbox"``).

    Notes
    -----
    The transformer is stateless: ``fit`` validates the parameters and the columns and learns
    nothing, and ``transform`` works on any cohort with the two columns. Images are read with
    :func:`sklearn_alnm.io.read_cell` (float32, gray ``(H, W)`` or RGB ``(H, W, 3)``) and keep
    their intensities: crops are float32 arrays of shape ``output_size`` (plus the channel
    axis for RGB); masks are uint8 0/1 arrays. Resampling uses
    :func:`torch.nn.functional.interpolate`. Errors name the row (patient id), the column and
    the file: unreadable cells, a mask on another grid than its image, fractional masks, an
    empty mask with ``empty="error"``, a missing column.

    :meth:`crop_boxes` returns the rectangle of every row, e.g. to map predictions on the crops
    back onto the images.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from sklearn_alnm.preprocessing import ROICropper
    >>> image = np.arange(64 * 64, dtype=np.float32).reshape(64, 64)
    >>> mask = np.zeros((64, 64), dtype=np.uint8)
    >>> mask[20:30, 10:40] = 1
    >>> mask[60:62, 60:62] = 1  # a spurious blob, ignored with keep="largest"
    >>> X = pd.DataFrame({"patient_id": ["P1", "P2"], "image": [image, image],
    ...                   "mask": [mask, np.zeros_like(mask)]})
    >>> cropper = ROICropper(margin=2, output_size=(16, 32))
    >>> rois = cropper.fit_transform(X)
    >>> rois["image"].iloc[0].shape, rois["mask"].iloc[0].dtype
    ((16, 32), dtype('uint8'))
    >>> cropper.crop_boxes(X)
       row0  row1  col0  col1  empty
    0    18    32     8    42  False
    1     0    64     0    64   True
    >>> cropper.get_feature_names_out().tolist()
    ['patient_id', 'image', 'mask']
    """

    _parameter_constraints = {
        "image_col": [str],
        "mask_col": [str],
        "output_col": [None, str],
        "output_mask_col": [None, str],
        "margin": [
            Interval(numbers.Integral, 0, None, closed="left"),
            Interval(numbers.Real, 0, None, closed="left"),
        ],
        "min_size": [None, Interval(numbers.Integral, 1, None, closed="left"), tuple, list],
        "output_size": [None, Interval(numbers.Integral, 1, None, closed="left"), tuple, list],
        "interpolation": [StrOptions(set(_IMAGE_MODES))],
        "mask_interpolation": [StrOptions({"nearest", "linear"})],
        "keep": [StrOptions({"largest", "all"})],
        "empty": [StrOptions({"whole", "center", "error"})],
        "center_fraction": [Interval(numbers.Real, 0, 1, closed="right")],
    }

    def __init__(
        self,
        image_col="image",
        mask_col="mask",
        *,
        output_col=None,
        output_mask_col=None,
        margin=0,
        min_size=None,
        output_size=(224, 224),
        interpolation="linear",
        mask_interpolation="nearest",
        keep="largest",
        empty="whole",
        center_fraction=0.5,
    ):
        self.image_col = image_col
        self.mask_col = mask_col
        self.output_col = output_col
        self.output_mask_col = output_mask_col
        self.margin = margin
        self.min_size = min_size
        self.output_size = output_size
        self.interpolation = interpolation
        self.mask_interpolation = mask_interpolation
        self.keep = keep
        self.empty = empty
        self.center_fraction = center_fraction

    # -------------------------------------------------------------------------- settings

    def _input_columns(self):
        return [self.image_col, self.mask_col]

    def _image_out(self):
        return self.image_col if self.output_col is None else self.output_col

    def _mask_out(self):
        if self.output_mask_col is not None:
            return self.output_mask_col
        return self.mask_col if self.output_col is None else f"{self.output_col}_mask"

    def _output_columns(self):
        return [self._image_out(), self._mask_out()]

    def _check_settings(self):
        if isinstance(self.margin, bool):
            raise ValueError(f"margin must be an int (pixels) or a float; got {self.margin!r}.")
        self._min_size = _as_size(self.min_size, "min_size")
        self._output_size = _as_size(self.output_size, "output_size")
        image_out, mask_out = self._output_columns()
        if image_out == mask_out:
            raise ValueError(
                f"the cropped images and masks would both be written to column {image_out!r}; "
                "choose different output_col / output_mask_col."
            )
        if self.output_col is not None and self.output_col == self.mask_col:
            raise ValueError(
                f"output_col={self.output_col!r} is the mask column; the cropped images would "
                "overwrite the masks."
            )
        if mask_out == self.image_col and image_out != self.image_col:
            raise ValueError(
                f"output_mask_col={mask_out!r} is the image column; the cropped masks would "
                "overwrite the images."
            )

    # ------------------------------------------------------------------------ transform

    def crop_boxes(self, X: pd.DataFrame) -> pd.DataFrame:
        """The rectangle cut out of each row's image.

        Parameters
        ----------
        X : pandas.DataFrame
            The cohort.

        Returns
        -------
        pandas.DataFrame
            Indexed like ``X``, with integer columns ``row0, row1, col0, col1`` (half-open
            pixel ranges: the crop is ``image[row0:row1, col0:col1]``) and the boolean
            ``empty`` (the mask was empty and the ``empty`` policy chose the rectangle).
        """
        boxes = self._transform(self._validate(X), cohort_row_ids(X), images=False)
        frame = pd.DataFrame(
            [(*box, flag) for box, flag in boxes], columns=["row0", "row1", "col0", "col1", "empty"]
        )
        frame.index = X.index
        return frame.astype({c: np.int64 for c in ("row0", "row1", "col0", "col1")})

    def _transform(self, X, row_ids, images=True):
        crops, masks, boxes = [], [], []
        for i, row_id in enumerate(row_ids):
            image = read_cell(X, i, self.image_col, kind="image", finite=True)
            foreground = read_foreground(
                X, i, self.mask_col, image.shape[:2], row_id, allow_missing=True
            )
            kept, box, is_empty = self._box(foreground, image.shape[:2], row_id)
            boxes.append((box, is_empty))
            if not images:
                continue
            r0, r1, c0, c1 = box
            crop = image[r0:r1, c0:c1]
            mask_crop = kept[r0:r1, c0:c1].astype(np.float32)
            crops.append(_resample_image(crop, self._output_size, self.interpolation))
            masks.append(_resample_mask(mask_crop, self._output_size, self.mask_interpolation))
        if not images:
            return boxes
        return {self._image_out(): crops, self._mask_out(): masks}

    def _box(self, foreground, shape, row_id):
        """``(kept foreground, (r0, r1, c0, c1), is_empty)`` of one row."""
        height, width = shape
        if foreground is None or not foreground.any():
            if self.empty == "error":
                raise CohortInputError(
                    "mask is empty, so there is no lesion to crop; expected at least one "
                    "foreground pixel (or set empty='whole' / 'center' to fall back)",
                    row=row_id,
                    column=self.mask_col,
                )
            kept = np.zeros(shape, dtype=bool)
            box = empty_mask_box(shape, self.empty, self.center_fraction)
            return kept, _grow(box, self._min_size, shape), True
        kept = largest_component(foreground) if self.keep == "largest" else foreground
        box = tuple(int(v) for v in mask_box(kept, self.margin))
        return kept, _grow(box, self._min_size, shape), False


def largest_component(foreground):
    """The largest 8-connected component of a boolean mask (ties: first in row-major order).

    Parameters
    ----------
    foreground : ndarray of bool, shape (H, W)

    Returns
    -------
    ndarray of bool, shape (H, W)
    """
    from scipy import ndimage

    labels, n = ndimage.label(foreground, structure=np.ones((3, 3), dtype=bool))
    if n <= 1:
        return labels > 0
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def _grow(box, min_size, shape):
    """Grow ``box`` to ``min_size`` per side around its centre, shifted inside ``shape``."""
    if min_size is None:
        return box
    r0, r1, c0, c1 = box
    (r0, r1), (c0, c1) = (
        _grow_axis(lo, hi, need, limit)
        for lo, hi, need, limit in (
            (r0, r1, min_size[0], shape[0]),
            (c0, c1, min_size[1], shape[1]),
        )
    )
    return r0, r1, c0, c1


def _grow_axis(lo, hi, need, limit):
    need = min(need, limit)
    if hi - lo >= need:
        return lo, hi
    start = int(np.floor((lo + hi) / 2.0 - need / 2.0))
    start = min(max(start, 0), limit - need)
    return start, start + need


def _as_size(value, name):
    if value is None:
        return None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return (int(value), int(value))
    size = tuple(value)
    if len(size) != 2 or not all(
        isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0 for s in size
    ):
        raise ValueError(
            f"{name} must be None, a positive int or a (height, width) pair of positive ints; "
            f"got {value!r}."
        )
    return (int(size[0]), int(size[1]))


def _interpolate(array, size, kwargs):
    """Resample an (H, W) or (H, W, C) float32 array to ``size`` with torch."""
    import torch
    import torch.nn.functional as F

    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    tensor = tensor[None, None] if tensor.ndim == 2 else tensor.permute(2, 0, 1)[None]
    out = F.interpolate(tensor, size=size, **kwargs)[0]
    out = out[0] if array.ndim == 2 else out.permute(1, 2, 0)
    return np.ascontiguousarray(out.numpy(), dtype=np.float32)


def _resample_image(crop, size, interpolation):
    if size is None or tuple(crop.shape[:2]) == size:
        return np.array(crop, dtype=np.float32)
    out = _interpolate(crop, size, _IMAGE_MODES[interpolation])
    if interpolation == "cubic":
        np.clip(out, crop.min(), crop.max(), out=out)
    return out


def _resample_mask(crop, size, interpolation):
    if size is None or tuple(crop.shape) == size:
        return (crop > 0.5).astype(np.uint8)
    kwargs = _IMAGE_MODES["nearest" if interpolation == "nearest" else "linear"]
    if interpolation == "linear":
        kwargs = {**kwargs, "antialias": False}
    return (_interpolate(crop, size, kwargs) >= 0.5).astype(np.uint8)
