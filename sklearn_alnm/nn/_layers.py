"""Small checks and layers shared by the networks of :mod:`sklearn_alnm.nn` (private)."""

import numbers

import torch
import torch.nn.functional as F
from torch import nn


def _positive_int(value, what, minimum=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        kind = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        raise ValueError(f"{what} must be {kind}; got {value!r}.")
    return int(value)


def _check_dropout(dropout):
    if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or not 0 <= dropout < 1:
        raise ValueError(f"dropout must be a float in [0, 1); got {dropout!r}.")
    return float(dropout)


def masked_softmax(scores, mask):
    """Softmax over the last axis of ``scores`` restricted to where ``mask`` is true
    (in float32; the masked entries get 0)."""
    scores = scores.float().masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1)


def _check_images(x, in_chans, name):
    if x.ndim != 4 or x.shape[1] != in_chans:
        raise ValueError(
            f"{name} expects a batch of shape (N, {in_chans}, H, W); got {tuple(x.shape)}."
        )


class _ConvBlock(nn.Sequential):
    """Two 3x3 convolutions, each followed by batch norm (optional) and ReLU."""

    def __init__(self, in_channels, out_channels, batch_norm=True, dropout=0.0):
        layers = []
        for channels in (in_channels, out_channels):
            layers.append(nn.Conv2d(channels, out_channels, 3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_channels))
            layers.append(nn.ReLU(inplace=True))
        if dropout > 0:
            layers.append(nn.Dropout2d(dropout))
        super().__init__(*layers)


class _PadToMultiple:
    """Pad ``(N, C, H, W)`` inputs to a multiple of ``2**depth`` and crop the output back."""

    def __init__(self, multiple):
        self.multiple = multiple

    def pad(self, x):
        height, width = x.shape[-2:]
        pad_h = (-height) % self.multiple
        pad_w = (-width) % self.multiple
        if not pad_h and not pad_w:
            return x, None
        top, left = pad_h // 2, pad_w // 2
        padded = F.pad(x, (left, pad_w - left, top, pad_h - top), mode="replicate")
        return padded, (top, top + height, left, left + width)

    @staticmethod
    def crop(y, window):
        if window is None:
            return y
        top, bottom, left, right = window
        return y[..., top:bottom, left:right]
