"""Instance input of Mask R-CNN: images on their own grids, each lesion mask component one
instance target.

Unlike the fixed-size tensors of the other inputs, a detector takes a list of images of any
sizes (it resizes them itself) and, in training, one target dict per image (``boxes``,
``labels``, ``masks``). :class:`InstanceMaskInput` reads a cohort's image and mask columns
into those; :func:`collate_detections` keeps the images of a batch as an :class:`ImageBatch`.
"""

import collections.abc
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from scipy import ndimage
from torch.utils.data import Dataset

from ..io import read_cell, read_image_mask
from ..utils import CohortInputError
from ..utils._imaging import match_channels, to_unit_range
from ._base import BaseInput

#: 8-connectivity: lesion pixels touching by a corner belong to one instance.
_CONNECTIVITY = np.ones((3, 3), dtype=bool)


def instance_targets(mask: np.ndarray) -> dict[str, torch.Tensor]:
    """Mask R-CNN training targets of one lesion mask: one instance per connected component.

    Parameters
    ----------
    mask : array-like of shape (H, W)
        Any non-zero value is lesion. Components are 8-connected (pixels touching by an edge
        or a corner belong to one lesion).

    Returns
    -------
    dict
        ``boxes``: float32 tensor ``(K, 4)`` of ``x1, y1, x2, y2`` in pixel-edge coordinates
        (a component covering columns ``c0 .. c1`` has ``x1 = c0``, ``x2 = c1 + 1``);
        ``labels``: int64 tensor ``(K,)`` of ones (the lesion class); ``masks``: uint8 tensor
        ``(K, H, W)``, one binary mask per component. ``K = 0`` for an empty mask.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_alnm.inputs import instance_targets
    >>> mask = np.zeros((6, 8), dtype=np.uint8)
    >>> mask[1:3, 1:4] = 1
    >>> mask[4:6, 6:8] = 1
    >>> target = instance_targets(mask)
    >>> target["boxes"].tolist()
    [[1.0, 1.0, 4.0, 3.0], [6.0, 4.0, 8.0, 6.0]]
    >>> target["labels"].tolist(), tuple(target["masks"].shape)
    ([1, 1], (2, 6, 8))
    >>> instance_targets(np.zeros((6, 8)))["boxes"].shape
    torch.Size([0, 4])
    """
    foreground = np.asarray(mask) != 0
    if foreground.ndim != 2:
        raise ValueError(f"expected a 2-D mask; got an array of shape {foreground.shape}.")
    labelled, count = ndimage.label(foreground, structure=_CONNECTIVITY)
    height, width = foreground.shape
    if count == 0:
        return {
            "boxes": torch.zeros((0, 4), dtype=torch.float32),
            "labels": torch.zeros((0,), dtype=torch.int64),
            "masks": torch.zeros((0, height, width), dtype=torch.uint8),
        }
    boxes = [
        (cols.start, rows.start, cols.stop, rows.stop)
        for rows, cols in ndimage.find_objects(labelled)
    ]
    masks = np.stack([labelled == k for k in range(1, count + 1)]).astype(np.uint8)
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32),
        "labels": torch.ones((count,), dtype=torch.int64),
        "masks": torch.from_numpy(masks),
    }


class _DetectionDataset(Dataset):
    """Prepared images ``(C, H, W)`` (and their target dicts), each on its own grid."""

    def __init__(self, images, targets=None):
        self.images = images
        self.targets = targets

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i], ({} if self.targets is None else self.targets[i])


class _LazyDetectionDataset(Dataset):
    """Images read from the cohort and prepared when requested (prediction of large cohorts)."""

    reads_on_access = True

    def __init__(self, X, image_col, in_chans):
        self.X = X
        self.image_col = image_col
        self.in_chans = in_chans

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        image = _read_image(self.X, i, self.image_col)
        return prepare_image(image, self.in_chans), {}


class ImageBatch(collections.abc.Sequence):
    """The images of a batch: a sequence of ``(C, H, W)`` tensors of any sizes.

    Not a ``list``, so that skorch counts the images of a batch rather than the channels of
    its first image.
    """

    def __init__(self, images):
        self.images = list(images)

    def __len__(self):
        return len(self.images)

    def __iter__(self):
        return iter(self.images)

    def __getitem__(self, i):
        return self.images[i]

    def pin_memory(self):
        """The batch in pinned memory (called by the DataLoader with ``pin_memory=True``)."""
        return ImageBatch(image.pin_memory() for image in self.images)


def collate_detections(items: Sequence[Any]) -> tuple[Any, list[dict[str, torch.Tensor]]]:
    """``collate_fn`` of the detection datasets: ``(ImageBatch, list of targets)``."""
    images, targets = zip(*items)
    return ImageBatch(images), list(targets)


def prepare_image(image, in_chans):
    """An (H, W) or (H, W, C) array -> float32 tensor ``(in_chans, H, W)`` in ``[0, 1]``.

    Intensities are mapped to ``[0, 1]`` by each image's own minimum and maximum (a constant
    image becomes zeros); gray images are replicated to 3 channels or RGB averaged to 1 as
    ``in_chans`` asks. The grid is unchanged (Mask R-CNN resizes internally).
    """
    unit = to_unit_range(image, float(image.min()), float(image.max()))
    tensor = torch.from_numpy(np.ascontiguousarray(unit, dtype=np.float32))
    tensor = tensor[None] if tensor.ndim == 2 else tensor.permute(2, 0, 1)
    return match_channels(tensor, in_chans).contiguous()


def _read_image(X, i, column):
    return read_cell(X, i, column, kind="image", finite=True)


class InstanceMaskInput(BaseInput):
    """Images (and, for training, their instance targets) for a torchvision detector.

    Parameters
    ----------
    image_col, mask_col : str
        Cohort columns of the images and of their lesion masks (any non-zero value is lesion).
    in_chans : int or None
        Channels of the network's input; decided by the training images when ``None``.
    """

    collate_fn = staticmethod(collate_detections)

    def __init__(self, image_col, mask_col, *, in_chans=None):
        self.image_col = image_col
        self.mask_col = mask_col
        self.in_chans = in_chans

    def __repr__(self):
        return (
            f"InstanceMaskInput(image_col={self.image_col!r}, mask_col={self.mask_col!r}, "
            f"in_chans={self.in_chans})"
        )

    @property
    def columns(self):
        """Cohort columns read at inference (the masks only serve training)."""
        return [self.image_col]

    @property
    def training_columns(self):
        """The images and their masks."""
        return [self.image_col, self.mask_col]

    def read_training_data(self, X, *, n_jobs=None):
        """Images and masks of ``X``; masks must be binary or label maps on their image's grid."""
        try:
            return read_image_mask(
                X, self.image_col, self.mask_col, binary=False, n_jobs=n_jobs, finite=True
            )
        except CohortInputError as exc:
            if "fractional" not in exc.reason:
                raise
            raise CohortInputError(
                "mask holds fractional values; expected a binary mask (0/1, 0/255 or a label "
                "map: any non-zero value is lesion)",
                row=exc.row,
                column=exc.column,
                path=exc.path,
            ) from None

    def dataset(self, X, target=None, *, training=False, n_jobs=None, verbose=0):
        """Training: every image prepared with its instance targets (``in_chans`` decided);
        otherwise: images read lazily when a batch asks for them."""
        if not training:
            return _LazyDetectionDataset(X, self.image_col, self.in_chans)
        images, masks = self.read_training_data(X, n_jobs=n_jobs)
        if self.in_chans is None:
            self.in_chans = 3 if any(image.ndim == 3 for image in images) else 1
        tensors = [prepare_image(image, self.in_chans) for image in images]
        return _DetectionDataset(tensors, [instance_targets(mask) for mask in masks])

    @staticmethod
    def content_key(dataset):
        import joblib

        masks = [t["masks"].numpy() for t in dataset.targets]
        return joblib.hash(([t.numpy() for t in dataset.images], masks))
