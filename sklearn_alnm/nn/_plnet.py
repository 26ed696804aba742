"""The two networks of the ultrasound + H&E multimodal fusion study: PLNet and ULNet.

The study (Peng et al., 2025) predicts axillary lymph node metastasis from one ultrasound image
and one H&E-stained core-needle-biopsy image of the primary tumour. Its best feature extractors
were a lightweight CNN for the pathology images (PLNet) and a ResNet50 variant for the
ultrasound images (ULNet); their embeddings are fused by the multimodal classifier. Both are
entries of the backbone registry (``"plnet"``, ``"ulnet"``), so :class:`Backbone` builds them
like any other architecture.
"""

import functools
import numbers
from collections import OrderedDict

import torchvision.models as tvm
from torch import nn
from torchvision.models.resnet import Bottleneck, ResNet

from ._backbones import BackboneSpec, register_backbone
from ._layers import _check_dropout, _positive_int

_PENG = (
    "Peng et al., Construction of a prediction model for axillary lymph node metastasis in "
    "breast cancer patients based on a multimodal fusion strategy of ultrasound and "
    "pathological images, Front. Oncol. 15:1591858, 2025"
)
_HE = "He et al., Deep residual learning for image recognition, CVPR 2016"
_PLNET_CHANNELS = (32, 64, 128, 256)


def _check_channels(channels):
    try:
        channels = tuple(channels)
    except TypeError:
        channels = None
    if (
        not channels
        or any(isinstance(c, bool) or not isinstance(c, numbers.Integral) for c in channels)
        or min(channels) < 1
    ):
        raise ValueError(
            f"channels must be a non-empty sequence of positive ints (filters per block); got "
            f"{channels!r}."
        )
    return tuple(int(c) for c in channels)


class _ConvBlock(nn.Sequential):
    """``convs`` times (3x3 conv, batch norm, ReLU), keeping the spatial size."""

    def __init__(self, in_channels, out_channels, convs=2):
        layers = []
        for i in range(1, convs + 1):
            layers += [
                (f"conv{i}", nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)),
                (f"bn{i}", nn.BatchNorm2d(out_channels)),
                (f"relu{i}", nn.ReLU(inplace=True)),
            ]
            in_channels = out_channels
        super().__init__(OrderedDict(layers))


class PLNet(nn.Module):
    """PLNet: the lightweight pathology CNN of the ultrasound + H&E fusion study.

    Four convolutional blocks with progressively more filters (32, 64, 128, 256), each made of
    two 3x3 convolution - batch normalisation - ReLU layers and followed by 2x2 max pooling,
    then global average pooling into the embedding, dropout and a linear classifier. The
    number of blocks and their widths (``channels``) and the convolutions per block are
    configurable; the total stride is ``2 ** len(channels)`` (16 by default), which is also the
    smallest input size.

    Parameters
    ----------
    in_chans : int, default=3
        Input channels (3 for H&E RGB tiles).
    num_classes : int, default=2
        Outputs of the linear classifier (``fc``).
    channels : sequence of int, default=(32, 64, 128, 256)
        Filters of each block; the embedding size is ``channels[-1]``.
    convs_per_block : int, default=2
        Convolution - batch norm - ReLU layers per block (1 gives the single-convolution
        variant).
    dropout : float, default=0.0
        Dropout in front of ``fc``.

    Attributes
    ----------
    features : torch.nn.Sequential
        ``block1, pool1, ..., blockK, poolK``; ``blockK`` (before its pooling) is the layer
        Grad-CAM looks at.
    pool : torch.nn.Module
        Global average pooling and flattening, ``(N, C, h, w) -> (N, C)``.
    fc : torch.nn.Linear
        The classifier (replaced when the network is built through :class:`Backbone`).
    embedding_dim : int
        ``channels[-1]``.

    Notes
    -----
    The study describes PLNet as a lightweight CNN of stacked convolution blocks with
    increasing filters and global pooling; it publishes no weights. This implementation fixes
    the unstated details (3x3 kernels, batch normalisation, He initialisation) in the usual
    way. Through the registry, ``Backbone("plnet")`` gives its embedding (256 values) or the
    logits of a new head; other widths are registered with :func:`plnet_spec`.

    References
    ----------
    Peng L, Yu L, Liu B, Xiang F, Wu Y. Construction of a prediction model for axillary lymph
    node metastasis in breast cancer patients based on a multimodal fusion strategy of
    ultrasound and pathological images. Front. Oncol. 2025;15:1591858.

    Examples
    --------
    >>> import torch
    >>> from sklearn_alnm.nn import PLNet
    >>> net = PLNet(num_classes=2).eval()
    >>> x = torch.zeros(2, 3, 32, 32)
    >>> net(x).shape, net.forward_features(x).shape
    (torch.Size([2, 2]), torch.Size([2, 256]))
    """

    def __init__(
        self,
        in_chans=3,
        num_classes=2,
        *,
        channels=_PLNET_CHANNELS,
        convs_per_block=2,
        dropout=0.0,
    ):
        super().__init__()
        in_chans = _positive_int(in_chans, "in_chans")
        num_classes = _positive_int(num_classes, "num_classes")
        channels = _check_channels(channels)
        convs_per_block = _positive_int(convs_per_block, "convs_per_block")
        layers = []
        previous = in_chans
        for i, width in enumerate(channels, start=1):
            layers.append((f"block{i}", _ConvBlock(previous, width, convs_per_block)))
            layers.append((f"pool{i}", nn.MaxPool2d(2)))
            previous = width
        self.features = nn.Sequential(OrderedDict(layers))
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
        self.dropout = nn.Dropout(_check_dropout(dropout))
        self.fc = nn.Linear(channels[-1], num_classes)
        self.channels = channels
        self.convs_per_block = convs_per_block
        self.embedding_dim = channels[-1]
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward_features(self, x):
        """The embedding, shape ``(N, channels[-1])``."""
        return self.pool(self.features(x))

    def forward(self, x):
        """The logits, shape ``(N, num_classes)``."""
        return self.fc(self.dropout(self.forward_features(x)))


def plnet(
    weights=None,
    progress=True,
    *,
    in_chans=3,
    num_classes=2,
    channels=_PLNET_CHANNELS,
    convs_per_block=2,
    dropout=0.0,
):
    """Build a randomly initialised :class:`PLNet` (the registry builder of ``"plnet"``).

    Parameters
    ----------
    weights : None
        PLNet has no published pretrained weights: anything but ``None`` raises. (Checkpoints
        are loaded by :class:`Backbone` after building.)
    progress : bool, default=True
        Ignored (no download); accepted for the registry's builder signature.
    in_chans, num_classes, channels, convs_per_block, dropout
        See :class:`PLNet`.

    Returns
    -------
    PLNet
    """
    if weights is not None:
        raise ValueError(
            "PLNet has no pretrained weights; pass weights=None or load a checkpoint file "
            "(Backbone('plnet', weights='path/to/checkpoint.pt'))."
        )
    return PLNet(
        in_chans,
        num_classes,
        channels=channels,
        convs_per_block=convs_per_block,
        dropout=dropout,
    )


def plnet_spec(name="plnet", *, channels=_PLNET_CHANNELS, convs_per_block=2):
    """The registry entry of a PLNet of the given widths, for :func:`register_backbone`.

    Parameters
    ----------
    name : str, default="plnet"
        Registry key of the variant (lower case).
    channels : sequence of int, default=(32, 64, 128, 256)
        Filters per block; the embedding size is the last one and the smallest input size is
        ``2 ** len(channels)``.
    convs_per_block : int, default=2
        Convolution - batch norm - ReLU layers per block.

    Returns
    -------
    BackboneSpec
        Head ``fc``, first convolution ``features.block1.conv1``, Grad-CAM layer
        ``features.block<K>`` (the last block, before its pooling), no pretrained weights.

    Examples
    --------
    >>> import torch
    >>> from sklearn_alnm.nn import build_backbone, plnet_spec, register_backbone
    >>> from sklearn_alnm.nn import unregister_backbone
    >>> _ = register_backbone(plnet_spec("plnet_small", channels=(8, 16, 32)))
    >>> model = build_backbone("plnet_small", in_chans=1, seed=0).eval()
    >>> model(torch.zeros(1, 1, 32, 32)).shape, model.gradcam_layer
    (torch.Size([1, 32]), 'net.features.block3')
    >>> unregister_backbone("plnet_small")
    """
    channels = _check_channels(channels)
    convs_per_block = _positive_int(convs_per_block, "convs_per_block")
    if channels == _PLNET_CHANNELS and convs_per_block == 2:
        builder = plnet
    else:  # a partial of a module-level function still pickles
        builder = functools.partial(plnet, channels=channels, convs_per_block=convs_per_block)
    return BackboneSpec(
        name,
        builder,
        channels[-1],
        head="fc",
        first_conv="features.block1.conv1",
        gradcam_layer=f"features.block{len(channels)}",
        family="plnet",
        min_input_size=2 ** len(channels),
        reference=_PENG,
    )


class ULNet(ResNet):
    """ULNet: the ultrasound network of the ultrasound + H&E fusion study, a ResNet50 variant.

    The study's ULNet is a ResNet50 whose classification head is preceded by dropout. This
    class is exactly torchvision's ResNet50 trunk (same module names and parameters, so
    ImageNet ResNet50 weights and ResNet50 checkpoints load into it) with ``fc`` replaced by
    ``Sequential(Dropout(dropout), Linear(2048, num_classes))``. Further details of the
    study's variant are not reproduced. Through the registry, ``Backbone("ulnet")`` is the
    ResNet50 trunk with the registry's own head (``dropout=`` of :class:`Backbone` puts the
    same dropout in front of it) and accepts ResNet50's torchvision weights names.

    Parameters
    ----------
    num_classes : int, default=2
        Outputs of the classifier.
    dropout : float, default=0.5
        Dropout in front of the classifier.
    in_chans : int, default=3
        Input channels (the first convolution is built for them, randomly initialised).

    Attributes
    ----------
    embedding_dim : int
        2048.

    References
    ----------
    Peng L, Yu L, Liu B, Xiang F, Wu Y. Front. Oncol. 2025;15:1591858 (ULNet).
    He K, Zhang X, Ren S, Sun J. Deep residual learning for image recognition. CVPR 2016.

    Examples
    --------
    >>> import torch
    >>> from sklearn_alnm.nn import ULNet
    >>> net = ULNet(num_classes=2, in_chans=1).eval()
    >>> net(torch.zeros(1, 1, 32, 32)).shape
    torch.Size([1, 2])
    """

    def __init__(self, num_classes=2, *, dropout=0.5, in_chans=3):
        num_classes = _positive_int(num_classes, "num_classes")
        in_chans = _positive_int(in_chans, "in_chans")
        super().__init__(Bottleneck, [3, 4, 6, 3], num_classes=num_classes)
        if in_chans != 3:
            self.conv1 = nn.Conv2d(in_chans, 64, kernel_size=7, stride=2, padding=3, bias=False)
            nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.fc = nn.Sequential(nn.Dropout(_check_dropout(dropout)), nn.Linear(2048, num_classes))
        self.embedding_dim = 2048


def ulnet(weights=None, progress=True, *, num_classes=1000, dropout=0.5):
    """Build a :class:`ULNet`, optionally with ResNet50 ImageNet weights (the registry builder).

    Parameters
    ----------
    weights : None or torchvision.models.ResNet50_Weights, default=None
        ImageNet ResNet50 weights for the trunk (their ``fc`` is dropped: the head stays
        random). :class:`Backbone` only passes members whose file is in the hub cache.
    progress : bool, default=True
        Passed to torchvision when reading the weights.
    num_classes : int, default=1000
    dropout : float, default=0.5
        See :class:`ULNet`.

    Returns
    -------
    ULNet
    """
    net = ULNet(num_classes, dropout=dropout)
    if weights is not None:
        weights = tvm.ResNet50_Weights.verify(weights)
        state = weights.get_state_dict(progress=progress, check_hash=True)
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        missing, unexpected = net.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith("fc.")]
        if missing or unexpected:
            raise ValueError(
                f"the weights {weights} do not fit ULNet: missing {missing}, unexpected "
                f"{unexpected}."
            )
    return net


def _study_entries():
    return [
        plnet_spec(),
        BackboneSpec(
            "ulnet",
            ulnet,
            2048,
            head="fc",
            first_conv="conv1",
            gradcam_layer="layer4",
            weights_enum=tvm.ResNet50_Weights,
            family="resnet",
            reference=f"{_PENG}; {_HE}",
        ),
    ]


for _spec in _study_entries():
    register_backbone(_spec)
del _spec
