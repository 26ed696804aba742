"""Image preparation shared by the deep-learning estimators (private).

Every estimator that feeds images to a network prepares them the same way: map intensities to
``[0, 1]``, cut the lesion's rectangle (or keep only the lesion), optionally equalise the
histogram, resize to the network's input size and normalise. The steps live here once, as
plain numpy / torch functions on one image, so :class:`~sklearn_alnm.features.DeepFeatures`,
:class:`~sklearn_alnm.models.ImageClassifier` and later estimators give identical inputs for
identical settings.
"""

import numbers

import numpy as np

#: ImageNet channel means and standard deviations (RGB), as torchvision's weights expect.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: The same statistics for one-channel inputs: the mean over the three channels.
IMAGENET_GRAY_MEAN = (sum(IMAGENET_MEAN) / 3.0,)
IMAGENET_GRAY_STD = (sum(IMAGENET_STD) / 3.0,)


def intensity_bounds(image, intensity_range):
    """``(low, high)`` mapped to ``[0, 1]``: fixed, or ``"auto"`` (8-bit range or min/max)."""
    if not isinstance(intensity_range, str):
        return intensity_range
    low, high = float(image.min()), float(image.max())
    if low >= 0.0 and high <= 255.0:
        return 0.0, 255.0
    return low, high


EMPTY_MASK_POLICIES = ("whole", "center", "error")


def empty_mask_box(shape, empty, center_fraction):
    """``(r0, r1, c0, c1)`` that an empty mask stands for: the whole image (``"whole"``) or a
    centred rectangle of ``center_fraction`` of its height and width (``"center"``)."""
    height, width = shape[:2]
    if empty == "whole":
        return 0, height, 0, width
    h = max(1, int(round(height * center_fraction)))
    w = max(1, int(round(width * center_fraction)))
    r0, c0 = (height - h) // 2, (width - w) // 2
    return r0, r0 + h, c0, c0 + w


def mask_box(mask, margin):
    """``(r0, r1, c0, c1)`` of the non-zero pixels, enlarged by ``margin`` and clipped.

    ``margin`` is an int (pixels) or a float (fraction of the box's height and width).
    """
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    if isinstance(margin, numbers.Integral):
        pad_r = pad_c = int(margin)
    else:
        pad_r = int(round(float(margin) * (r1 - r0)))
        pad_c = int(round(float(margin) * (c1 - c0)))
    height, width = mask.shape
    return max(0, r0 - pad_r), min(height, r1 + pad_r), max(0, c0 - pad_c), min(width, c1 + pad_c)


def to_unit_range(image, low, high):
    """``clip((image - low) / (high - low), 0, 1)`` as float32 (zeros for a flat range)."""
    if high > low:
        return np.clip((image - low) / (high - low), 0.0, 1.0).astype(np.float32, copy=False)
    return np.zeros(image.shape, dtype=np.float32)


def equalize_histogram(unit, mask=None, n_bins=256):
    """Histogram equalisation of a ``[0, 1]`` image, per channel.

    Each pixel is replaced by the fraction of pixels at or below its (quantised) value, so the
    output histogram is close to uniform. With ``mask``, only the pixels inside the mask
    define the histogram (the lesion, not the background).

    Parameters
    ----------
    unit : ndarray of shape (H, W) or (H, W, C), values in [0, 1]
    mask : ndarray of shape (H, W) or None
    n_bins : int, default=256

    Returns
    -------
    ndarray of the same shape, float32, values in (0, 1]
    """
    levels = np.minimum((unit * n_bins).astype(np.int64), n_bins - 1)
    out = np.empty(unit.shape, dtype=np.float32)
    channels = [(levels, out)] if unit.ndim == 2 else []
    if unit.ndim == 3:
        channels = [(levels[..., c], out[..., c]) for c in range(unit.shape[-1])]
    for lev, dst in channels:
        sample = lev[mask.astype(bool)] if mask is not None and mask.any() else lev
        cdf = np.cumsum(np.bincount(sample.ravel(), minlength=n_bins)).astype(np.float64)
        dst[...] = (cdf / cdf[-1])[lev]
    return out


def resize_image(unit, size):
    """An (H, W) or (H, W, C) array -> float32 tensor (C, height, width), bilinear, antialiased."""
    import torch
    import torch.nn.functional as F

    tensor = torch.from_numpy(np.ascontiguousarray(unit, dtype=np.float32))
    tensor = tensor[None] if tensor.ndim == 2 else tensor.permute(2, 0, 1)
    return F.interpolate(
        tensor[None], size=tuple(size), mode="bilinear", align_corners=False, antialias=True
    )[0]


def match_channels(tensor, in_chans):
    """Replicate a gray (1, H, W) image to ``in_chans`` channels, or average RGB to gray."""
    channels = tensor.shape[-3]
    if channels == in_chans:
        return tensor
    if channels == 1:
        return tensor.expand(*tensor.shape[:-3], in_chans, *tensor.shape[-2:])
    if in_chans == 1:
        return tensor.mean(dim=-3, keepdim=True)
    raise ValueError(f"cannot turn a {channels}-channel image into {in_chans} channels.")


def normalize_images(batch, mode):
    """Normalise a float tensor (N, C, H, W) in place: ``"imagenet"``, ``"zscore"`` or ``"half"``.

    ``"imagenet"`` subtracts ImageNet's channel means and divides by its standard deviations
    (their averages for one-channel images); ``"zscore"`` subtracts each image's own mean and
    divides by its standard deviation over all pixels and channels; ``"half"`` maps ``[0, 1]``
    to ``[-1, 1]`` (mean 0.5 and standard deviation 0.5 for every channel).
    """
    import torch

    if mode == "imagenet":
        gray = batch.shape[1] == 1
        mean = torch.tensor(IMAGENET_GRAY_MEAN if gray else IMAGENET_MEAN, dtype=batch.dtype)
        std = torch.tensor(IMAGENET_GRAY_STD if gray else IMAGENET_STD, dtype=batch.dtype)
        if batch.shape[1] not in (1, 3):
            mean = mean.mean().repeat(batch.shape[1])
            std = std.mean().repeat(batch.shape[1])
        return batch.sub_(mean.view(1, -1, 1, 1)).div_(std.view(1, -1, 1, 1))
    if mode == "zscore":
        flat = batch.reshape(batch.shape[0], -1)
        std, mean = torch.std_mean(flat, dim=1, correction=0)
        return batch.sub_(mean.view(-1, 1, 1, 1)).div_(std.clamp(min=1e-6).view(-1, 1, 1, 1))
    if mode == "half":
        return batch.sub_(0.5).div_(0.5)
    raise ValueError(f"unknown normalisation {mode!r}; expected 'imagenet', 'zscore' or 'half'.")
