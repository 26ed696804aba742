"""Image input: one image per row (optionally cut to its lesion mask) as a network tensor.

An :class:`ImageInput` turns one cohort row (an image path or array, and its lesion mask)
into the tensor a network sees: intensities mapped to ``[0, 1]``, the lesion's rectangle cut
out (or the lesion alone kept), optional histogram equalisation, resizing to the input size,
conversion to the network's number of channels and normalisation. The helpers are those of
:mod:`sklearn_alnm.utils._imaging`, shared with :class:`~sklearn_alnm.features.DeepFeatures`.

Its datasets serve the prepared images to skorch: with ``preload`` every image is prepared
once into one float32 tensor ``(N, C, H, W)`` (a batch is one ``index_select``); without,
the rows of each batch are read when requested (cohorts too large for memory; DataLoader
workers then parallelise the reading). Augmentation is not part of the datasets: the training
step applies it to each training batch once it is on the device.
"""

import numbers

import numpy as np
import pandas as pd
import torch
from sklearn.utils.validation import check_is_fitted

from ..io import read_cell
from ..utils._imaging import (
    equalize_histogram,
    intensity_bounds,
    mask_box,
    match_channels,
    normalize_images,
    resize_image,
    to_unit_range,
)
from ._base import BaseInput, LazyRowsDataset, TensorInputDataset, map_rows


class ImageInput(BaseInput):
    """Read and prepare the images of a cohort column for a network (settings validated).

    Parameters
    ----------
    image_col, mask_col : str, str or None
        Cohort columns of the images and of their lesion masks.
    crop : {"mask_bbox", "mask"} or None
        ``"mask_bbox"``: the rectangle around the mask (plus ``margin``); ``"mask"``: that
        rectangle with every pixel outside the mask set to 0; ``None``: the whole image. No
        cropping happens when ``mask_col`` is None.
    margin : int or float
        Pixels (int) or fraction of the rectangle's size (float) added around the mask.
    input_size : tuple of 2 int
        ``(height, width)`` after resizing.
    normalize : {"imagenet", "zscore", "histeq+zscore", "zscore+histeq", "half"}
    intensity_range : "auto" or tuple of 2 float
        Intensities mapped to ``[0, 1]`` (see :class:`~sklearn_alnm.features.DeepFeatures`).
    in_chans : int or None
        Channels of the prepared images (gray replicated, RGB averaged); ``None`` until fitted.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn_alnm.inputs import ImageInput
    >>> X = pd.DataFrame({"image": [np.zeros((20, 30), np.uint8), np.ones((20, 30), np.uint8)]})
    >>> images = ImageInput("image", None, input_size=(16, 16)).prepare(X)[0]
    >>> tuple(images.shape)
    (2, 1, 16, 16)
    """

    def __init__(
        self,
        image_col,
        mask_col=None,
        *,
        crop="mask_bbox",
        margin=0,
        input_size=(224, 224),
        normalize="imagenet",
        intensity_range="auto",
        in_chans=None,
    ):
        self.image_col = image_col
        self.mask_col = mask_col
        self.crop = crop if mask_col is not None else None
        self.margin = margin
        self.input_size = tuple(input_size)
        self.normalize = normalize
        self.intensity_range = intensity_range
        self.in_chans = in_chans

    def __repr__(self):
        return (
            f"ImageInput(image_col={self.image_col!r}, mask_col={self.mask_col!r}, "
            f"crop={self.crop!r}, input_size={self.input_size}, normalize={self.normalize!r}, "
            f"in_chans={self.in_chans})"
        )

    @property
    def columns(self):
        """The cohort columns read."""
        return [c for c in (self.image_col, self.mask_col if self.crop else None) if c]

    def read_row(self, X, i):
        """``(image, mask)`` of row position ``i`` (mask ``None`` without cropping); errors
        name the row as :func:`~sklearn_alnm.io.read_cell` does."""
        image = read_cell(X, i, self.image_col, kind="image", finite=True)
        mask = None
        if self.crop is not None:
            mask = read_cell(X, i, self.mask_col, kind="mask", shape=image.shape[:2], required=True)
        return image, mask

    def prepare_row(self, image, mask):
        """One image (and mask) -> float32 tensor ``(c, height, width)`` in ``[0, 1]``.

        ``c`` is the image's own channel count (1 or 3); :meth:`finish` converts channels and
        normalises.
        """
        low, high = intensity_bounds(image, self.intensity_range)
        if mask is not None:
            r0, r1, c0, c1 = mask_box(mask, self.margin)
            image, mask = image[r0:r1, c0:c1], mask[r0:r1, c0:c1]
        unit = to_unit_range(image, low, high)
        if self.normalize in ("histeq+zscore", "zscore+histeq"):
            unit = equalize_histogram(unit, mask if self.crop == "mask" else None)
        if self.crop == "mask":
            unit = unit * (mask if unit.ndim == 2 else mask[..., None]).astype(np.float32)
        return resize_image(unit, self.input_size)

    def load_row(self, X, i):
        """:meth:`read_row` then :meth:`prepare_row`."""
        return self.prepare_row(*self.read_row(X, i))

    def load_batch(self, X, positions):
        """The prepared, normalised images of the rows at ``positions`` (lazy datasets)."""
        return self.finish([self.load_row(X, i) for i in positions])

    def finish(self, rows, in_chans=None):
        """Stack prepared rows into ``(N, in_chans, H, W)`` and normalise (a new tensor)."""
        in_chans = self.in_chans if in_chans is None else in_chans
        out = torch.empty((len(rows), in_chans, *self.input_size), dtype=torch.float32)
        for k, row in enumerate(rows):
            out[k] = match_channels(row, in_chans)
        return self._normalize(out)

    def _normalize(self, batch):
        if self.normalize == "zscore+histeq":  # the equalised image in (0, 1] is the input
            return batch
        mode = "zscore" if self.normalize == "histeq+zscore" else self.normalize
        return normalize_images(batch, mode)

    @staticmethod
    def decide_channels(rows):
        """3 when any prepared row is RGB, else 1."""
        return 3 if any(row.shape[0] == 3 for row in rows) else 1

    def prepare(self, X, *, n_jobs=None, verbose=0):
        """Every row of ``X`` -> ``(tensor (N, C, H, W), C)``, read and prepared once.

        When ``in_chans`` is ``None`` it is decided here (:meth:`decide_channels`).
        """
        n_rows = len(X)
        in_chans = self.in_chans
        out = None
        if in_chans is not None:
            out = torch.empty((n_rows, in_chans, *self.input_size), dtype=torch.float32)

        def load(i):
            row = self.load_row(X, i)
            if out is not None:
                out[i] = match_channels(row, in_chans)
                row = None
            return row

        rows = map_rows(load, n_rows, n_jobs=n_jobs, verbose=verbose, desc="preparing images")
        if out is None:
            in_chans = self.decide_channels(rows)
            out = torch.empty((n_rows, in_chans, *self.input_size), dtype=torch.float32)
            for i in range(n_rows):
                out[i] = match_channels(rows[i], in_chans)
                rows[i] = None
        return self._normalize(out), in_chans

    def channels_of_first(self, X):
        """Channels (1 or 3) of the first row's image (decides ``in_chans`` without preloading)."""
        return 3 if read_cell(X, 0, self.image_col, kind="image").ndim == 3 else 1

    def dataset(self, X, target=None, *, preload=True, n_jobs=None, verbose=0):
        """The rows of ``X`` (and ``target``) as a dataset; decides ``in_chans`` if unset.

        Parameters
        ----------
        X : pandas.DataFrame
        target : torch.Tensor, tuple of torch.Tensor or None
            E.g. encoded labels, or ``(labels, sample_weights)``.
        preload : bool, default=True
            Prepare every image now into one tensor, or read each batch when requested.
        n_jobs, verbose
            Threads and progress bar of the preloading.
        """
        if preload:
            images, self.in_chans = self.prepare(X, n_jobs=n_jobs, verbose=verbose)
            return TensorInputDataset(images, target)
        if self.in_chans is None:
            self.in_chans = self.channels_of_first(X)
        return LazyRowsDataset(X, self, target)


class PreparesImagesMixin:
    """``prepare_images(X)`` of the estimators whose fitted input (``input_``) is an image
    tensor: what Grad-CAM and reports feed the network."""

    def prepare_images(self, X: pd.DataFrame) -> torch.Tensor:
        """The network's input for ``X``: read, cropped, resized, normalised; no augmentation.

        Parameters
        ----------
        X : pandas.DataFrame
            The cohort.

        Returns
        -------
        torch.Tensor of shape (n_patients, ``in_chans_``, height, width)
            float32, on the CPU; exactly what the network is fed at inference.
        """
        check_is_fitted(self, "net_")
        self.input_.check(self, X)
        return self.input_.prepare(X, n_jobs=self.n_jobs)[0]


# -------------------------------------------------------------------------- parameter checks


def check_margin(margin):
    """``margin`` as given, or ValueError: a non-negative int (pixels) or float (fraction)."""
    if isinstance(margin, bool) or not isinstance(margin, numbers.Real) or margin < 0:
        raise ValueError(
            f"margin must be a non-negative int (pixels) or float (fraction); got {margin!r}."
        )
    return margin


def check_intensity_range(value):
    """``intensity_range`` as given (``"auto"``) or as a validated ``(low, high)`` float pair."""
    if isinstance(value, str):
        return value
    pair = tuple(value)
    if (
        len(pair) != 2
        or not all(isinstance(v, numbers.Real) and np.isfinite(v) for v in pair)
        or not pair[0] < pair[1]
    ):
        raise ValueError(
            "intensity_range must be 'auto' or a pair (low, high) of finite numbers with "
            f"low < high; got {value!r}."
        )
    return float(pair[0]), float(pair[1])


def as_size(value, name):
    """An int or a pair of ints -> ``(height, width)``; ValueError otherwise."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        pair = (int(value), int(value))
    else:
        try:
            pair = tuple(value)
        except TypeError:
            pair = ()
        if len(pair) != 2 or not all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in pair
        ):
            raise ValueError(f"{name} must be an int or a pair (height, width); got {value!r}.")
        pair = (int(pair[0]), int(pair[1]))
    if min(pair) < 1:
        raise ValueError(f"{name} must be positive; got {value!r}.")
    return pair
