"""UNet++ (Zhou et al. 2018): nested dense skip pathways, optional deep supervision."""

import torch
import torch.nn.functional as F
from torch import nn

from ._layers import _check_dropout, _check_images, _ConvBlock, _PadToMultiple, _positive_int


class UNetPlusPlus(nn.Module):
    """UNet++: a U-Net whose skip connections are nested, dense convolution pathways.

    Node :math:`X^{i,j}` (level ``i``, column ``j``) is a two-convolution block. The first
    column is the encoder (:math:`X^{i,0}` pools :math:`X^{i-1,0}`); every other node sees all
    nodes to its left at its level and the bilinearly upsampled node below-left:
    :math:`X^{i,j} = H([X^{i,0}, \\dots, X^{i,j-1}, U(X^{i+1,j-1})])`. The top row
    :math:`X^{0,1}, \\dots, X^{0,depth}` holds full-resolution outputs of U-Nets of growing
    depth. As :class:`UNet`, inputs of any size are padded to a multiple of ``2**depth`` and
    the logits cropped back to the input grid.

    Parameters
    ----------
    in_chans : int, default=1
        Input channels.
    num_classes : int, default=1
        Output channels (logits).
    base_channels : int, default=32
        Channels of level 0; level ``i`` has ``base_channels * 2**i``.
    depth : int, default=4
        Number of poolings (levels below the top).
    deep_supervision : bool, default=False
        Put a 1x1 logit head on every top-row node :math:`X^{0,j}`, ``j = 1 .. depth``.
        In training mode ``forward`` then returns the *list* of the ``depth`` logit maps (the
        loss is averaged over them, as in the paper); in eval mode it returns their mean (the
        paper's "accurate mode"), a tensor like the other networks. ``False``: a single head
        on :math:`X^{0,depth}`, a tensor in both modes.
    batch_norm : bool, default=True
        Batch normalisation after every convolution.
    dropout : float, default=0.0
        Channel dropout at the bottleneck :math:`X^{depth,0}`.

    Attributes
    ----------
    nodes : torch.nn.ModuleDict
        The ``(depth + 1)(depth + 2) / 2`` convolution blocks, keyed ``"x{i}_{j}"``.
    heads : torch.nn.ModuleList
        The 1x1 logit heads (``depth`` of them with deep supervision, else one).

    References
    ----------
    .. [1] Z. Zhou, M. M. Rahman Siddiquee, N. Tajbakhsh, J. Liang, "UNet++: A Nested U-Net
       Architecture for Medical Image Segmentation", DLMIA 2018.

    Examples
    --------
    >>> import torch
    >>> from sklearn_alnm.nn import UNetPlusPlus
    >>> net = UNetPlusPlus(base_channels=4, depth=2, deep_supervision=True)
    >>> [y.shape for y in net.train()(torch.zeros(2, 1, 30, 30))]
    [torch.Size([2, 1, 30, 30]), torch.Size([2, 1, 30, 30])]
    >>> net.eval()(torch.zeros(2, 1, 30, 30)).shape
    torch.Size([2, 1, 30, 30])
    """

    def __init__(
        self,
        in_chans=1,
        num_classes=1,
        *,
        base_channels=32,
        depth=4,
        deep_supervision=False,
        batch_norm=True,
        dropout=0.0,
    ):
        super().__init__()
        self.in_chans = _positive_int(in_chans, "in_chans")
        self.num_classes = _positive_int(num_classes, "num_classes")
        base = _positive_int(base_channels, "base_channels")
        self.depth = _positive_int(depth, "depth")
        dropout = _check_dropout(dropout)
        self.deep_supervision = bool(deep_supervision)
        channels = [base * 2**i for i in range(self.depth + 1)]
        self.nodes = nn.ModuleDict()
        for j in range(self.depth + 1):
            for i in range(self.depth + 1 - j):
                if j == 0:
                    in_channels = self.in_chans if i == 0 else channels[i - 1]
                else:
                    in_channels = j * channels[i] + channels[i + 1]
                drop = dropout if (i, j) == (self.depth, 0) else 0.0
                self.nodes[f"x{i}_{j}"] = _ConvBlock(in_channels, channels[i], batch_norm, drop)
        self.pool = nn.MaxPool2d(2)
        n_heads = self.depth if self.deep_supervision else 1
        self.heads = nn.ModuleList(
            nn.Conv2d(channels[0], self.num_classes, 1) for _ in range(n_heads)
        )
        self._padding = _PadToMultiple(2**self.depth)

    def extra_repr(self):
        return (
            f"in_chans={self.in_chans}, num_classes={self.num_classes}, depth={self.depth}, "
            f"deep_supervision={self.deep_supervision}"
        )

    def forward(self, x):
        """Logits ``(N, num_classes, H, W)``; a list of them in training with deep supervision."""
        _check_images(x, self.in_chans, "UNetPlusPlus")
        x, window = self._padding.pad(x)
        grid = {}
        for i in range(self.depth + 1):
            grid[i, 0] = self.nodes[f"x{i}_0"](x if i == 0 else self.pool(grid[i - 1, 0]))
        for j in range(1, self.depth + 1):
            for i in range(self.depth + 1 - j):
                below = F.interpolate(
                    grid[i + 1, j - 1], scale_factor=2, mode="bilinear", align_corners=False
                )
                inputs = [grid[i, k] for k in range(j)] + [below]
                grid[i, j] = self.nodes[f"x{i}_{j}"](torch.cat(inputs, dim=1))
        if not self.deep_supervision:
            return self._padding.crop(self.heads[0](grid[0, self.depth]), window)
        outputs = [
            self._padding.crop(head(grid[0, j + 1]), window) for j, head in enumerate(self.heads)
        ]
        if self.training:
            return outputs
        return torch.stack(outputs).mean(dim=0)
