"""Image + mask input of the semantic segmenters: images and their lesion masks as tensors.

An :class:`ImageMaskInput` reads each row's image (and, for training, its lesion mask), maps
the intensities to ``[0, 1]``, resizes the image to the network's input size and normalises
it exactly as the image input of the classifiers does (:class:`~sklearn_alnm.inputs.ImageInput`);
the mask is resized to the same grid as a soft target in ``[0, 1]``. The original grid of
every image is kept, so predictions go back to it (:func:`to_image_grid`).
"""

import os
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..io import read_cell
from ..utils import CohortInputError
from ..utils._imaging import resize_image
from ._base import BaseInput, TensorInputDataset, map_rows
from ._image import ImageInput


def read_binary_mask(
    X: pd.DataFrame, i: int, column: str, shape: tuple[int, int], row_id: Any
) -> np.ndarray:
    """Read the mask of row position ``i`` as a boolean array on ``shape`` (its image's grid).

    Binary masks may be stored as 0/1, 0/255 or booleans. Label maps with other values,
    fractional values (probability maps), a missing cell or a mask on another grid raise a
    :class:`~sklearn_alnm.utils.CohortInputError` naming the row (``row_id``), the column and
    the file.
    """
    cell = X[column].iloc[i]
    path = cell if isinstance(cell, str | os.PathLike) else None
    try:
        mask = read_cell(X, i, column, kind="mask", binary=False, shape=shape)
    except CohortInputError as exc:
        if "fractional" in exc.reason:
            detail = "holds fractional values (a probability map?)"
        elif "binary=False" in exc.reason:
            detail = "holds values outside [0, 255] (" + exc.reason.rsplit("got ", 1)[-1] + ")"
        else:
            raise
        raise CohortInputError(
            f"mask {detail}; expected a binary lesion mask (0/1, 0/255 or boolean). Threshold "
            "probability maps first, e.g. (probabilities >= 0.5)",
            row=exc.row,
            column=exc.column,
            path=exc.path,
        ) from None
    values = np.unique(mask)
    if values.size and values[-1] > 1:
        raise CohortInputError(
            f"mask holds the labels {values.tolist()}; expected a binary lesion mask (0/1, "
            "0/255 or boolean). Select the lesion label of a label map first, e.g. "
            "(labels == 1)",
            row=row_id,
            column=column,
            path=path,
        )
    return mask.astype(bool)


def to_image_grid(logits: torch.Tensor, shape: tuple[int, int]) -> np.ndarray:
    """Logits ``(h, w)`` on the network's grid -> float32 probabilities on ``shape``."""
    if tuple(logits.shape[-2:]) != tuple(shape):
        logits = F.interpolate(
            logits[None, None], size=tuple(shape), mode="bilinear", align_corners=False
        )[0, 0]
    return torch.sigmoid(logits.float()).numpy()


class ImageMaskInput(BaseInput):
    """Read and prepare a cohort's images (and masks) for a segmentation network.

    Parameters
    ----------
    image_col, mask_col : str
        Cohort columns of the images and of their binary lesion masks.
    input_size : tuple of 2 int
        ``(height, width)`` the images and masks are resized to.
    normalize : {"zscore", "imagenet", "histeq+zscore"}
    intensity_range : "auto" or tuple of 2 float
    in_chans : int or None
        Channels of the network's input; ``None`` until decided by the training images.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn_alnm.inputs import ImageMaskInput
    >>> mask = np.zeros((20, 30), np.uint8)
    >>> mask[5:10, 5:10] = 1
    >>> X = pd.DataFrame({"image": [np.arange(600).reshape(20, 30)], "mask": [mask]})
    >>> images, masks, shapes = ImageMaskInput("image", "mask", input_size=(16, 16)).prepare(
    ...     X, with_masks=True)
    >>> tuple(images.shape), tuple(masks.shape), shapes
    ((1, 1, 16, 16), (1, 1, 16, 16), [(20, 30)])
    """

    def __init__(
        self,
        image_col,
        mask_col,
        *,
        input_size=(256, 256),
        normalize="zscore",
        intensity_range="auto",
        in_chans=None,
    ):
        self.image_col = image_col
        self.mask_col = mask_col
        self.input_size = tuple(input_size)
        self.images = ImageInput(
            image_col,
            None,
            crop=None,
            input_size=self.input_size,
            normalize=normalize,
            intensity_range=intensity_range,
            in_chans=in_chans,
        )

    def __repr__(self):
        return (
            f"ImageMaskInput(image_col={self.image_col!r}, mask_col={self.mask_col!r}, "
            f"input_size={self.input_size}, normalize={self.images.normalize!r}, "
            f"in_chans={self.in_chans})"
        )

    @property
    def in_chans(self):
        return self.images.in_chans

    @property
    def columns(self):
        """Cohort columns read at inference (the masks only serve training)."""
        return [self.image_col]

    @property
    def training_columns(self):
        """The images and their masks."""
        return [self.image_col, self.mask_col]

    def _load_row(self, X, i, row_id, with_mask):
        image, _ = self.images.read_row(X, i)
        shape = image.shape[:2]
        prepared = self.images.prepare_row(image, None)
        mask = None
        if with_mask:
            mask = read_binary_mask(X, i, self.mask_col, shape, row_id)
            mask = resize_image(mask.astype(np.float32), self.input_size).clamp_(0.0, 1.0)
        return prepared, mask, shape

    def prepare(self, X, *, with_masks=False, n_jobs=None, verbose=0):
        """Every row of ``X`` -> ``(images, masks, shapes)``.

        Returns
        -------
        images : torch.Tensor of shape (N, in_chans, height, width)
            Normalised float32 images. When ``in_chans`` is still ``None`` it is set here: 3
            when any image is RGB, else 1.
        masks : torch.Tensor of shape (N, 1, height, width) or None
            The resized masks (values in ``[0, 1]``), with ``with_masks``.
        shapes : list of tuple
            ``(H, W)`` of every original image.
        """
        ids = self.row_ids(X)
        rows = map_rows(
            lambda i: self._load_row(X, i, ids[i], with_masks),
            len(X),
            n_jobs=n_jobs,
            verbose=verbose,
            desc="preparing images",
        )
        if self.images.in_chans is None:
            self.images.in_chans = ImageInput.decide_channels([row[0] for row in rows])
        images = self.images.finish([row[0] for row in rows])
        masks = torch.stack([row[1] for row in rows]) if with_masks else None
        return images, masks, [row[2] for row in rows]

    def dataset(self, X, target=None, *, with_masks=True, n_jobs=None, verbose=0):
        """Images (and, ``with_masks``, their masks as the target) of ``X`` as a dataset;
        the original grids are kept in its ``shapes`` attribute."""
        images, masks, shapes = self.prepare(
            X, with_masks=with_masks, n_jobs=n_jobs, verbose=verbose
        )
        dataset = TensorInputDataset(images, masks if target is None else target)
        dataset.shapes = shapes
        return dataset
