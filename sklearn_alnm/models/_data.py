"""The cohort -> torch ``Dataset`` step of the neural estimators, and training-time augmentation.

An :class:`ImagePreparer` turns one cohort row (an image path or array, and its lesion mask)
into the tensor a network sees: intensities mapped to ``[0, 1]``, the lesion's rectangle cut
out (or the lesion alone kept), optional histogram equalisation, resizing to the input size,
conversion to the network's number of channels and normalisation. The helpers are those of
:mod:`sklearn_alnm.utils._imaging`, shared with :class:`~sklearn_alnm.features.DeepFeatures`.

Two datasets serve the prepared images to skorch:

- :class:`PreparedImageDataset` holds every image, prepared once, in one float32 tensor
  ``(N, C, H, W)``; a batch is one ``index_select`` (through ``__getitems__``, which
  :class:`torch.utils.data.DataLoader` calls with the whole list of batch indices).
- :class:`LazyImageDataset` reads and prepares the rows of each batch when it is requested
  (for cohorts too large for memory; DataLoader workers then parallelise the reading).

Augmentation is not part of the datasets: the training step applies it to each training batch
once the batch is on the device, so validation batches and predictions never see it.
"""

import math
import numbers

import numpy as np
import torch
from joblib import Parallel, delayed
from torch.utils.data import Dataset, default_collate

from .._logging import get_logger
from ..io import read_cell, resolve_id_column
from ..utils._imaging import (
    equalize_histogram,
    intensity_bounds,
    mask_box,
    match_channels,
    normalize_images,
    resize_image,
    to_unit_range,
)

_log = get_logger(__name__)


# ------------------------------------------------------------------------------- preparation


class ImagePreparer:
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
    normalize : {"imagenet", "zscore", "histeq+zscore"}
    intensity_range : "auto" or tuple of 2 float
        Intensities mapped to ``[0, 1]`` (see :class:`~sklearn_alnm.features.DeepFeatures`).
    in_chans : int or None
        Channels of the prepared images (gray replicated, RGB averaged); ``None`` until fitted.
    """

    def __init__(
        self,
        image_col,
        mask_col,
        *,
        crop,
        margin,
        input_size,
        normalize,
        intensity_range,
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
            f"ImagePreparer(image_col={self.image_col!r}, mask_col={self.mask_col!r}, "
            f"crop={self.crop!r}, input_size={self.input_size}, normalize={self.normalize!r}, "
            f"in_chans={self.in_chans})"
        )

    @property
    def columns(self):
        """The cohort columns read."""
        return [c for c in (self.image_col, self.mask_col if self.crop else None) if c]

    @staticmethod
    def row_ids(X):
        """Patient ids (or index labels) of the rows, for error messages."""
        id_col = resolve_id_column(X, "auto")
        return list(X[id_col]) if id_col is not None else list(X.index)

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
        if self.normalize == "histeq+zscore":
            unit = equalize_histogram(unit, mask if self.crop == "mask" else None)
        if self.crop == "mask":
            unit = unit * (mask if unit.ndim == 2 else mask[..., None]).astype(np.float32)
        return resize_image(unit, self.input_size)

    def load_row(self, X, i):
        """:meth:`read_row` then :meth:`prepare_row`."""
        return self.prepare_row(*self.read_row(X, i))

    def finish(self, rows, in_chans=None):
        """Stack prepared rows into ``(N, in_chans, H, W)`` and normalise (a new tensor)."""
        in_chans = self.in_chans if in_chans is None else in_chans
        out = torch.empty((len(rows), in_chans, *self.input_size), dtype=torch.float32)
        for k, row in enumerate(rows):
            out[k] = match_channels(row, in_chans)
        return self._normalize(out)

    def _normalize(self, batch):
        mode = "zscore" if self.normalize == "histeq+zscore" else self.normalize
        return normalize_images(batch, mode)

    def prepare(self, X, *, n_jobs=None, verbose=0):
        """Every row of ``X`` -> ``(tensor (N, C, H, W), C)``, read and prepared once.

        When ``in_chans`` is ``None`` it is decided here: 3 when any image is RGB, else 1.
        """
        from tqdm.auto import tqdm

        n_rows = len(X)
        bar = tqdm(total=n_rows, desc="preparing images", unit="image", disable=not verbose)
        in_chans = self.in_chans
        out = None
        if in_chans is not None:
            out = torch.empty((n_rows, in_chans, *self.input_size), dtype=torch.float32)

        def load(i):
            row = self.load_row(X, i)
            if out is not None:
                out[i] = match_channels(row, in_chans)
                row = None
            bar.update()
            return row

        try:
            if n_jobs is None or n_jobs == 1 or n_rows < 2:
                rows = [load(i) for i in range(n_rows)]
            else:
                rows = Parallel(n_jobs=n_jobs, prefer="threads")(
                    delayed(load)(i) for i in range(n_rows)
                )
        finally:
            bar.close()
        if out is None:
            in_chans = 3 if any(row.shape[0] == 3 for row in rows) else 1
            out = torch.empty((n_rows, in_chans, *self.input_size), dtype=torch.float32)
            for i in range(n_rows):
                out[i] = match_channels(rows[i], in_chans)
                rows[i] = None
        return self._normalize(out), in_chans

    def channels_of_first(self, X):
        """Channels (1 or 3) of the first row's image (decides ``in_chans`` without preloading)."""
        return 3 if read_cell(X, 0, self.image_col, kind="image").ndim == 3 else 1


# ---------------------------------------------------------------------------------- datasets


class _Batch(tuple):
    """A batch already assembled by a dataset's ``__getitems__`` (passed through collation)."""


def collate_batches(data):
    """``collate_fn`` of the image datasets: batches from ``__getitems__`` pass unchanged.

    Anything else goes to :func:`torch.utils.data.default_collate`.
    """
    if isinstance(data, _Batch):
        return tuple(data)
    return default_collate(data)


class _ImageDataset(Dataset):
    def __init__(self, y=None, sample_weight=None):
        self.y = None if y is None else torch.as_tensor(np.asarray(y), dtype=torch.long)
        self.sample_weight = (
            None
            if sample_weight is None
            else torch.as_tensor(np.asarray(sample_weight), dtype=torch.float32)
        )

    def _target(self, index):
        if self.y is None:
            return None
        if self.sample_weight is None:
            return self.y[index]
        return self.y[index], self.sample_weight[index]

    def __getitem__(self, i):
        target = self._target(i)
        return self._images([i])[0], (
            torch.zeros((), dtype=torch.long) if target is None else target
        )

    def __getitems__(self, indices):
        index = torch.as_tensor(indices, dtype=torch.long)
        return _Batch((self._images(index), self._target(index)))

    def _images(self, index):  # pragma: no cover - abstract
        raise NotImplementedError


class PreparedImageDataset(_ImageDataset):
    """Images prepared once, held in one tensor, with optional labels and sample weights.

    Parameters
    ----------
    images : torch.Tensor of shape (N, C, H, W)
    y : array-like of int of shape (N,) or None
        Encoded labels (``0 .. n_classes - 1``).
    sample_weight : array-like of shape (N,) or None
        When given, a batch's target is the pair ``(labels, weights)``.
    """

    def __init__(self, images, y=None, sample_weight=None):
        super().__init__(y, sample_weight)
        self.images = images

    def __len__(self):
        return self.images.shape[0]

    def _images(self, index):
        if isinstance(index, torch.Tensor):
            return self.images.index_select(0, index)
        return self.images[index]


class LazyImageDataset(_ImageDataset):
    """Rows read and prepared on request (nothing kept in memory between batches).

    Parameters
    ----------
    X : pandas.DataFrame
        The cohort.
    preparer : ImagePreparer
        Fitted (its ``in_chans`` set).
    y, sample_weight : see :class:`PreparedImageDataset`
    """

    #: Batches are read from the cohort when requested (DataLoader workers help).
    reads_on_access = True

    def __init__(self, X, preparer, y=None, sample_weight=None):
        super().__init__(y, sample_weight)
        self.X = X
        self.preparer = preparer

    def __len__(self):
        return len(self.X)

    def _images(self, index):
        index = [int(i) for i in (index.tolist() if isinstance(index, torch.Tensor) else index)]
        return self.preparer.finish([self.preparer.load_row(self.X, i) for i in index])


# ------------------------------------------------------------------------------ augmentation


class RandomResizedCropFlip:
    """Random resized crop and horizontal flip, drawn per image, applied to a whole batch.

    For each image a rectangle covering a random fraction ``scale`` of its area, of random
    aspect ratio ``ratio`` (log-uniform) and random position, is resampled (bilinear) to the
    full input size, and the result is mirrored left-right with probability ``p_hflip``. There
    is no vertical flip (the orientation of ultrasound images is meaningful). All images of a
    batch are transformed at once with :func:`torch.nn.functional.affine_grid` /
    :func:`~torch.nn.functional.grid_sample`, on the batch's device.

    Parameters
    ----------
    scale : tuple of 2 float, default=(0.5, 1.0)
        Range of the crop's area as a fraction of the image's.
    ratio : tuple of 2 float, default=(3/4, 4/3)
        Range of the crop's aspect ratio (width / height).
    p_hflip : float, default=0.5
        Probability of a horizontal flip.

    Examples
    --------
    >>> import torch
    >>> from sklearn_alnm.models import RandomResizedCropFlip
    >>> augment = RandomResizedCropFlip()
    >>> augment(torch.rand(4, 1, 32, 32)).shape
    torch.Size([4, 1, 32, 32])
    """

    #: Marks callables that take a whole batch (N, C, H, W) rather than one image.
    batched = True

    def __init__(self, scale=(0.5, 1.0), ratio=(3 / 4, 4 / 3), p_hflip=0.5):
        self.scale = scale
        self.ratio = ratio
        self.p_hflip = p_hflip

    def __repr__(self):
        return (
            f"RandomResizedCropFlip(scale={tuple(self.scale)}, ratio="
            f"({self.ratio[0]:.4g}, {self.ratio[1]:.4g}), p_hflip={self.p_hflip})"
        )

    def __eq__(self, other):
        return type(other) is type(self) and vars(other) == vars(self)

    def __hash__(self):
        return hash((type(self), tuple(self.scale), tuple(self.ratio), self.p_hflip))

    def __call__(self, batch):
        import torch.nn.functional as F

        n, _, height, width = batch.shape
        opts = {"device": batch.device, "dtype": torch.float32}
        low, high = (float(s) for s in self.scale)
        area = low + (high - low) * torch.rand(n, **opts)
        log_r = math.log(self.ratio[0]), math.log(self.ratio[1])
        aspect = torch.exp(log_r[0] + (log_r[1] - log_r[0]) * torch.rand(n, **opts))
        # crop size as fractions of the image: (fw W) * (fh H) = area H W, fw W / (fh H) = aspect
        fw = torch.sqrt(area * aspect * height / width).clamp(max=1.0)
        fh = torch.sqrt(area / aspect * width / height).clamp(max=1.0)
        cx = (1.0 - fw) * (2.0 * torch.rand(n, **opts) - 1.0)
        cy = (1.0 - fh) * (2.0 * torch.rand(n, **opts) - 1.0)
        flip = torch.where(torch.rand(n, **opts) < self.p_hflip, -1.0, 1.0)
        theta = torch.zeros(n, 2, 3, **opts)
        theta[:, 0, 0] = fw * flip
        theta[:, 0, 2] = cx
        theta[:, 1, 1] = fh
        theta[:, 1, 2] = cy
        grid = F.affine_grid(theta.to(batch.dtype), list(batch.shape), align_corners=False)
        return F.grid_sample(
            batch, grid, mode="bilinear", padding_mode="reflection", align_corners=False
        )


class PerImage:
    """Apply a per-image transform ``fn((C, H, W)) -> (C, H, W)`` to every image of a batch.

    This is how a user's callable ``augment`` (e.g. a ``torchvision.transforms.v2.Compose``)
    is applied, so that its random parameters are drawn for each image.
    """

    batched = True

    def __init__(self, fn):
        self.fn = fn

    def __repr__(self):
        return f"PerImage({self.fn!r})"

    def __call__(self, batch):
        out = torch.stack([self.fn(image) for image in batch])
        if out.shape != batch.shape:
            raise ValueError(
                f"augment must return images of the shape it receives {tuple(batch.shape[1:])}; "
                f"got {tuple(out.shape[1:])}."
            )
        return out


def resolve_augment(augment):
    """``"default"`` -> :class:`RandomResizedCropFlip`; per-image callables -> :class:`PerImage`."""
    if augment is None:
        return None
    if isinstance(augment, str):
        if augment == "default":
            return RandomResizedCropFlip()
        raise ValueError(f"augment must be 'default', None or a callable; got {augment!r}.")
    if not callable(augment):
        raise ValueError(
            f"augment must be 'default', None or a callable; got {type(augment).__name__}."
        )
    return augment if getattr(augment, "batched", False) else PerImage(augment)


def check_margin(margin):
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
