"""The cohort -> tensor step of the segmenters, joint augmentation and patch sampling (private).

A :class:`SegmentationPreparer` reads each row's image (and, for training, its lesion mask),
maps the intensities to ``[0, 1]``, resizes the image to the network's input size and
normalises it exactly as :class:`~sklearn_alnm.models.ImageClassifier` does (the helpers of
:mod:`sklearn_alnm.models._data` and :mod:`sklearn_alnm.utils._imaging`); the mask is resized
to the same grid as a soft target in ``[0, 1]``. The original grid of every image is kept, so
predictions go back to it.

Augmentation and patch sampling act on whole training batches once they are on the device,
identically on the images and on their masks, never on validation batches or predictions.
"""

import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from joblib import Parallel, delayed
from torch.utils.data import Dataset

from ..io import read_cell
from ..models._data import ImagePreparer, _Batch
from ..utils import CohortInputError
from ..utils._imaging import resize_image

# ------------------------------------------------------------------------------------ masks


def read_binary_mask(X, i, column, shape, row_id):
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


# ------------------------------------------------------------------------------ preparation


class SegmentationPreparer:
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
    """

    def __init__(self, image_col, mask_col, *, input_size, normalize, intensity_range, in_chans):
        self.image_col = image_col
        self.mask_col = mask_col
        self.input_size = tuple(input_size)
        self.images = ImagePreparer(
            image_col,
            None,
            crop=None,
            margin=0,
            input_size=self.input_size,
            normalize=normalize,
            intensity_range=intensity_range,
            in_chans=in_chans,
        )

    def __repr__(self):
        return (
            f"SegmentationPreparer(image_col={self.image_col!r}, mask_col={self.mask_col!r}, "
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
        from tqdm.auto import tqdm

        ids = self.images.row_ids(X)
        bar = tqdm(total=len(X), desc="preparing images", unit="image", disable=not verbose)

        def load(i):
            row = self._load_row(X, i, ids[i], with_masks)
            bar.update()
            return row

        try:
            if n_jobs is None or n_jobs == 1 or len(X) < 2:
                rows = [load(i) for i in range(len(X))]
            else:
                rows = Parallel(n_jobs=n_jobs, prefer="threads")(
                    delayed(load)(i) for i in range(len(X))
                )
        finally:
            bar.close()
        if self.images.in_chans is None:
            self.images.in_chans = 3 if any(row[0].shape[0] == 3 for row in rows) else 1
        images = self.images.finish([row[0] for row in rows])
        masks = torch.stack([row[1] for row in rows]) if with_masks else None
        return images, masks, [row[2] for row in rows]


class SegmentationDataset(Dataset):
    """Prepared images and their masks, a batch being one ``index_select`` of each.

    Parameters
    ----------
    images : torch.Tensor of shape (N, C, H, W)
    masks : torch.Tensor of shape (N, 1, H, W)
    """

    def __init__(self, images, masks):
        self.images = images
        self.masks = masks

    def __len__(self):
        return self.images.shape[0]

    def __getitem__(self, i):
        return self.images[i], self.masks[i]

    def __getitems__(self, indices):
        index = torch.as_tensor(indices, dtype=torch.long)
        return _Batch((self.images.index_select(0, index), self.masks.index_select(0, index)))


def to_image_grid(logits, shape):
    """Logits ``(h, w)`` on the network's grid -> float32 probabilities on ``shape``."""
    if tuple(logits.shape[-2:]) != tuple(shape):
        logits = F.interpolate(
            logits[None, None], size=tuple(shape), mode="bilinear", align_corners=False
        )[0, 0]
    return torch.sigmoid(logits.float()).numpy()


# ----------------------------------------------------------------------------- augmentation


class RandomFlipRotate:
    """Random flips, rotation and scaling applied identically to images and their masks.

    For each image of a training batch a flip (left-right with probability ``p_hflip``,
    up-down with probability ``p_vflip``), a rotation by an angle drawn uniformly in
    ``[-degrees, degrees]`` and a zoom by a factor drawn uniformly in ``scale`` are combined
    into one affine map, resampled bilinearly (edges reflected) from the image and, with the
    same map, from its mask, so the target still outlines the lesion. All images of a batch
    are transformed at once on the batch's device
    (:func:`torch.nn.functional.affine_grid` / :func:`~torch.nn.functional.grid_sample`).

    Parameters
    ----------
    p_hflip : float, default=0.5
        Probability of a left-right flip.
    p_vflip : float, default=0.0
        Probability of an up-down flip (off by default: the depth axis of an ultrasound image
        is meaningful).
    degrees : float, default=15.0
        Largest rotation angle, in degrees.
    scale : tuple of 2 float, default=(0.9, 1.1)
        Range of the zoom factor (above 1 enlarges the content).

    Examples
    --------
    >>> import torch
    >>> from sklearn_alnm.segmentation import RandomFlipRotate
    >>> images, masks = torch.rand(4, 1, 32, 32), torch.zeros(4, 1, 32, 32)
    >>> out_images, out_masks = RandomFlipRotate()(images, masks)
    >>> out_images.shape, out_masks.shape
    (torch.Size([4, 1, 32, 32]), torch.Size([4, 1, 32, 32]))
    """

    #: The callable takes whole batches ``(N, C, H, W)``, ``(N, 1, H, W)``.
    batched = True

    def __init__(self, p_hflip=0.5, p_vflip=0.0, degrees=15.0, scale=(0.9, 1.1)):
        self.p_hflip = p_hflip
        self.p_vflip = p_vflip
        self.degrees = degrees
        self.scale = scale

    def __repr__(self):
        return (
            f"RandomFlipRotate(p_hflip={self.p_hflip}, p_vflip={self.p_vflip}, "
            f"degrees={self.degrees}, scale={tuple(self.scale)})"
        )

    def __eq__(self, other):
        return type(other) is type(self) and vars(other) == vars(self)

    def __hash__(self):
        return hash((type(self), self.p_hflip, self.p_vflip, self.degrees, tuple(self.scale)))

    def __call__(self, images, masks):
        n, channels, height, width = images.shape
        opts = {"device": images.device, "dtype": torch.float32}
        angle = (2.0 * torch.rand(n, **opts) - 1.0) * math.radians(float(self.degrees))
        low, high = (float(s) for s in self.scale)
        zoom = low + (high - low) * torch.rand(n, **opts)
        fx = torch.where(torch.rand(n, **opts) < self.p_hflip, -1.0, 1.0)
        fy = torch.where(torch.rand(n, **opts) < self.p_vflip, -1.0, 1.0)
        cos, sin = torch.cos(angle), torch.sin(angle)
        # a rotation of pixel coordinates, written in the normalised coordinates of
        # affine_grid (x scaled by 2/W, y by 2/H), then flips and zoom
        theta = torch.zeros(n, 2, 3, **opts)
        theta[:, 0, 0] = cos * fx / zoom
        theta[:, 0, 1] = -sin * (height / width) * fy / zoom
        theta[:, 1, 0] = sin * (width / height) * fx / zoom
        theta[:, 1, 1] = cos * fy / zoom
        both = torch.cat([images, masks.to(images.dtype)], dim=1)
        grid = F.affine_grid(theta.to(both.dtype), list(both.shape), align_corners=False)
        out = F.grid_sample(
            both, grid, mode="bilinear", padding_mode="reflection", align_corners=False
        )
        return out[:, :channels], out[:, channels:].clamp(0.0, 1.0).to(masks.dtype)


class PerSample:
    """Apply a per-image joint transform ``fn(image, mask) -> (image, mask)`` to a batch.

    The image is passed as a :class:`torchvision.tv_tensors.Image` ``(C, H, W)`` and the mask
    as a :class:`torchvision.tv_tensors.Mask` ``(1, H, W)``, so ``torchvision.transforms.v2``
    pipelines transform both identically (geometry) and the image alone (intensity).
    """

    batched = True

    def __init__(self, fn):
        self.fn = fn

    def __repr__(self):
        return f"PerSample({self.fn!r})"

    def __call__(self, images, masks):
        from torchvision import tv_tensors

        out_images, out_masks = [], []
        for image, mask in zip(images, masks):
            result = self.fn(tv_tensors.Image(image), tv_tensors.Mask(mask))
            if not (isinstance(result, tuple | list) and len(result) == 2):
                raise ValueError(
                    "augment must return the pair (image, mask) it receives; got "
                    f"{type(result).__name__}."
                )
            out_images.append(torch.as_tensor(result[0]).as_subclass(torch.Tensor))
            out_masks.append(torch.as_tensor(result[1]).as_subclass(torch.Tensor))
        out_images = torch.stack(out_images)
        out_masks = torch.stack(out_masks).to(masks.dtype)
        if out_images.shape != images.shape or out_masks.shape != masks.shape:
            raise ValueError(
                "augment must return an image and a mask of the shapes it receives "
                f"{tuple(images.shape[1:])} and {tuple(masks.shape[1:])}; got "
                f"{tuple(out_images.shape[1:])} and {tuple(out_masks.shape[1:])}."
            )
        return out_images, out_masks


def resolve_joint_augment(augment):
    """``"default"`` -> :class:`RandomFlipRotate`; per-image callables -> :class:`PerSample`."""
    if augment is None:
        return None
    if isinstance(augment, str):
        if augment == "default":
            return RandomFlipRotate()
        raise ValueError(f"augment must be 'default', None or a callable; got {augment!r}.")
    if not callable(augment):
        raise ValueError(
            f"augment must be 'default', None or a callable; got {type(augment).__name__}."
        )
    return augment if getattr(augment, "batched", False) else PerSample(augment)


def random_patches(images, masks, size):
    """One random ``size`` patch per image of the batch, cut at the same place in its mask."""
    n, _, height, width = images.shape
    ph, pw = size
    if (ph, pw) == (height, width):
        return images, masks
    tops = torch.randint(0, height - ph + 1, (n,)).tolist()
    lefts = torch.randint(0, width - pw + 1, (n,)).tolist()
    patches = torch.stack(
        [images[k, :, t : t + ph, c : c + pw] for k, (t, c) in enumerate(zip(tops, lefts))]
    )
    mask_patches = torch.stack(
        [masks[k, :, t : t + ph, c : c + pw] for k, (t, c) in enumerate(zip(tops, lefts))]
    )
    return patches, mask_patches
