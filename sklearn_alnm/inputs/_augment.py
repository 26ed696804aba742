"""Augmentation of training batches: images alone, image + mask pairs, detection targets.

Augmentation runs in the training step on whole batches once they are on the device, never
on validation batches or predictions. The defaults transform every image of a batch at once
with one affine map per image (:func:`torch.nn.functional.affine_grid` /
:func:`~torch.nn.functional.grid_sample`): on a batch this is faster than drawing
``torchvision.transforms.v2`` per image (``benchmarks/bench_augment.py`` measures both side by
side). A user's callable is applied per image (:class:`PerImage`, :class:`PerSample`); for
image + mask pairs it receives a :class:`torchvision.tv_tensors.Image` and a
:class:`torchvision.tv_tensors.Mask`, so ``transforms.v2`` pipelines move both together.
"""

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

# ------------------------------------------------------------------------------ images alone


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
    >>> from sklearn_alnm.inputs import RandomResizedCropFlip
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


# ------------------------------------------------------------------------- image + mask pairs


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
    >>> from sklearn_alnm.inputs import RandomFlipRotate
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


# ---------------------------------------------------------------------------- detection targets


def hflip_instances(image, target):
    """Mirror an image ``(C, H, W)`` and its instance target (boxes and masks) left-right."""
    width = image.shape[-1]
    target = dict(target)
    boxes = target["boxes"]
    target["boxes"] = torch.stack(
        [width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], dim=1
    )
    target["masks"] = target["masks"].flip(-1)
    return image.flip(-1), target


# ---------------------------------------------------------------------------------- resolving


def resolve_augment(augment: Any, *, joint: bool = False) -> Callable[..., Any] | None:
    """``augment`` parameter -> a batched callable or ``None``.

    ``"default"`` gives :class:`RandomResizedCropFlip` (images) or :class:`RandomFlipRotate`
    (``joint``: image + mask pairs); a callable with a true ``batched`` attribute is used as
    is, any other callable is applied per image (:class:`PerImage` / :class:`PerSample`).
    """
    if augment is None:
        return None
    if isinstance(augment, str):
        if augment == "default":
            return RandomFlipRotate() if joint else RandomResizedCropFlip()
        raise ValueError(f"augment must be 'default', None or a callable; got {augment!r}.")
    if not callable(augment):
        raise ValueError(
            f"augment must be 'default', None or a callable; got {type(augment).__name__}."
        )
    if getattr(augment, "batched", False):
        return augment
    return PerSample(augment) if joint else PerImage(augment)
