"""U-Net (Ronneberger et al. 2015) as a plain torch module: logits on the input grid."""

import torch
from torch import nn

from ._layers import _check_dropout, _check_images, _ConvBlock, _PadToMultiple, _positive_int


class UNet(nn.Module):
    """U-Net: a convolutional encoder-decoder with skip connections (Ronneberger et al. 2015).

    The encoder applies ``depth`` times two 3x3 convolutions and a 2x2 max pooling, doubling
    the channels from ``base_channels`` at each level; the decoder upsamples back, concatenates
    the encoder features of the same level (the skip connections) and applies two 3x3
    convolutions; a 1x1 convolution gives the logits. Inputs of any size are accepted: they are
    padded (edge values replicated) to a multiple of ``2**depth`` and the logits are cropped
    back, so the output is on the input grid.

    Parameters
    ----------
    in_chans : int, default=1
        Input channels (1 for gray ultrasound, 3 for RGB).
    num_classes : int, default=1
        Output channels: 1 for a lesion-vs-background logit map (use
        :class:`~torch.nn.BCEWithLogitsLoss`), ``K`` for ``K`` classes (use
        :class:`~torch.nn.CrossEntropyLoss`).
    base_channels : int, default=32
        Channels of the first level (the original paper uses 64); level ``k`` has
        ``base_channels * 2**k``.
    depth : int, default=4
        Number of poolings (the original has 4).
    batch_norm : bool, default=True
        Batch normalisation after every convolution (not in the 2015 paper, but standard
        since; it stabilises training on small data sets).
    dropout : float, default=0.0
        Channel dropout (:class:`~torch.nn.Dropout2d`) at the bottleneck (the paper's "drop-out
        layers at the end of the contracting path").
    upsample : {"transpose", "bilinear"}, default="transpose"
        ``"transpose"``: learned 2x2 transposed convolutions (the paper's "up-convolution");
        ``"bilinear"``: bilinear upsampling followed by a 1x1 convolution (no checkerboard
        artefacts, fewer parameters).

    Attributes
    ----------
    encoder : torch.nn.ModuleList
        ``depth + 1`` convolution blocks (the last one is the bottleneck).
    upsamplers, decoder : torch.nn.ModuleList
        ``depth`` upsampling layers and convolution blocks, from the deepest level up.
    head : torch.nn.Conv2d
        The 1x1 convolution giving the logits.

    References
    ----------
    .. [1] O. Ronneberger, P. Fischer, T. Brox, "U-Net: Convolutional Networks for Biomedical
       Image Segmentation", MICCAI 2015.

    Examples
    --------
    >>> import torch
    >>> from sklearn_alnm.nn import UNet
    >>> net = UNet(in_chans=1, num_classes=1, base_channels=4, depth=3).eval()
    >>> net(torch.zeros(2, 1, 45, 37)).shape
    torch.Size([2, 1, 45, 37])
    """

    def __init__(
        self,
        in_chans=1,
        num_classes=1,
        *,
        base_channels=32,
        depth=4,
        batch_norm=True,
        dropout=0.0,
        upsample="transpose",
    ):
        super().__init__()
        self.in_chans = _positive_int(in_chans, "in_chans")
        self.num_classes = _positive_int(num_classes, "num_classes")
        base = _positive_int(base_channels, "base_channels")
        self.depth = _positive_int(depth, "depth")
        dropout = _check_dropout(dropout)
        if upsample not in ("transpose", "bilinear"):
            raise ValueError(f"upsample must be 'transpose' or 'bilinear'; got {upsample!r}.")
        self.upsample = upsample
        channels = [base * 2**k for k in range(self.depth + 1)]
        self.encoder = nn.ModuleList(
            _ConvBlock(
                self.in_chans if k == 0 else channels[k - 1],
                channels[k],
                batch_norm,
                dropout if k == self.depth else 0.0,
            )
            for k in range(self.depth + 1)
        )
        self.pool = nn.MaxPool2d(2)
        self.upsamplers = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for k in reversed(range(self.depth)):
            if upsample == "transpose":
                up = nn.ConvTranspose2d(channels[k + 1], channels[k], 2, stride=2)
            else:
                up = nn.Sequential(
                    nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                    nn.Conv2d(channels[k + 1], channels[k], 1),
                )
            self.upsamplers.append(up)
            self.decoder.append(_ConvBlock(2 * channels[k], channels[k], batch_norm))
        self.head = nn.Conv2d(channels[0], self.num_classes, 1)
        self._padding = _PadToMultiple(2**self.depth)

    def extra_repr(self):
        return f"in_chans={self.in_chans}, num_classes={self.num_classes}, depth={self.depth}"

    def forward(self, x):
        """Logits ``(N, num_classes, H, W)`` of a batch ``(N, in_chans, H, W)``."""
        _check_images(x, self.in_chans, "UNet")
        x, window = self._padding.pad(x)
        return self._padding.crop(self.head(self.decode(x)), window)

    def decode(self, x):
        """The encoder, then every level of ``decoder`` (skip connections), on an input whose
        sides are multiples of ``2 ** depth``: the last level's features."""
        skips = []
        for k, block in enumerate(self.encoder):
            x = block(x if k == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for up, block in zip(self.upsamplers, self.decoder):
            x = block(torch.cat([skips.pop(), up(x)], dim=1))
        return x
