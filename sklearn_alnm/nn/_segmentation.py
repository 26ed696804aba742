"""Segmentation networks: U-Net, UNet++, DeepLabV3 and Mask R-CNN as plain torch modules.

The US auto-segmentation study outlines each tumour with several networks (U-Net, UNet++,
DeepLabV3) and fuses their masks; instance segmentation (Mask R-CNN) finds lesions and nodes
as boxes with masks. The two encoder-decoders are written here; DeepLabV3 and Mask R-CNN are
torchvision's, with their heads sized for the lesion classes, any number of input channels
and weights loaded strictly offline (a torchvision weights name whose file is in the torch hub
cache, or a local checkpoint; never a download). Every semantic-segmentation module returns
logits ``(N, num_classes, H, W)`` on the input grid.
"""

import numbers
import os
import types

import torch
import torch.nn.functional as F
from torch import nn

from .._logging import get_logger
from ._backbones import Backbone, _set_submodule, conv_for_channels, resolve_weights
from ._weights import (
    _describe,
    adapt_conv_weight,
    hub_checkpoint_path,
    read_state_dict,
    resolve_spec_weights,
)

_log = get_logger(__name__)


# ----------------------------------------------------------------------------- helpers


def _positive_int(value, what, minimum=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{what} must be an int >= {minimum}; got {value!r}.")
    return int(value)


def _check_dropout(dropout):
    if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or not 0 <= dropout < 1:
        raise ValueError(f"dropout must be a float in [0, 1); got {dropout!r}.")
    return float(dropout)


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


# -------------------------------------------------------------------------------- U-Net


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
        skips = []
        for k, block in enumerate(self.encoder):
            x = block(x if k == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for up, block in zip(self.upsamplers, self.decoder):
            x = block(torch.cat([skips.pop(), up(x)], dim=1))
        return self._padding.crop(self.head(x), window)


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


# ---------------------------------------------------------------------- offline weights


def _model_spec(name, enum):
    """The minimal spec :func:`resolve_spec_weights` needs: a name and a weights enum."""
    return types.SimpleNamespace(name=name, weights_enum=enum)


def _build_with_cached_weights(build, weights, name):
    """``build()``, turning a failure to read the cached file of ``weights`` into a clear error."""
    try:
        return build()
    except Exception as exc:
        cached = os.fspath(hub_checkpoint_path(weights))
        raise ValueError(
            f"could not load the cached weights file {cached!r} for {name!r} "
            f"({type(exc).__name__}: {exc}); the file may be incomplete or corrupt: replace it."
        ) from exc


def _first_conv_name(module):
    return next(name for name, m in module.named_modules() if isinstance(m, nn.Conv2d))


def _adapt_first_conv(module, in_chans):
    """Rebuild the first convolution of ``module`` for ``in_chans`` (kernels adapted)."""
    name = _first_conv_name(module)
    conv = module.get_submodule(name)
    if conv.in_channels == in_chans:
        return name
    _set_submodule(module, name, conv_for_channels(conv, in_chans))
    return name


def _load_backbone_checkpoint(target, backbone_name, path):
    """Load a classification-backbone checkpoint (``weights_backbone`` path) into ``target``.

    The checkpoint is read and checked by :class:`~sklearn_alnm.nn.Backbone` (any layout it
    accepts); its trunk is then copied into ``target`` (the feature extractor of a DeepLabV3 or
    Mask R-CNN, whose keys are the trunk's, possibly without the ``features.`` prefix).
    """
    source = Backbone(backbone_name, weights=path).net.state_dict()
    expected = target.state_dict()
    state, missing = {}, []
    for key, value in expected.items():
        for candidate in (key, f"features.{key}"):
            if candidate in source and source[candidate].shape == value.shape:
                state[key] = source[candidate]
                break
        else:
            if key.endswith("num_batches_tracked"):
                state[key] = value
            else:
                missing.append(key)
    if missing:  # pragma: no cover - Backbone already checked the checkpoint
        raise ValueError(
            f"checkpoint {os.fspath(path)!r} lacks {len(missing)} key(s) of the "
            f"{backbone_name!r} trunk: {_describe(missing)}."
        )
    target.load_state_dict(state)


def _load_full_checkpoint(model, path, *, first_conv, in_chans, head_prefixes, ignore_prefixes):
    """Load a checkpoint of the whole network into ``model`` (torchvision module).

    Wrapper prefixes (``module.``, ``model.``) are stripped; keys under ``ignore_prefixes``
    (auxiliary heads) are dropped; head keys whose shapes differ (another number of classes)
    are skipped, leaving the new head random; RGB kernels of the first convolution are adapted
    to ``in_chans``. Anything else that does not fit raises a ``ValueError`` listing it.
    """
    where = f"checkpoint {os.fspath(path)!r}"
    state = read_state_dict(path)
    expected = model.state_dict()
    for prefix in ("module.", "_orig_mod.", "model."):
        if state and all(k.startswith(prefix) for k in state):
            if not any(k.startswith(prefix) for k in expected):
                state = {k[len(prefix) :]: v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.startswith(ignore_prefixes)}
    key = f"{first_conv}.weight"
    if key in state and key in expected and state[key].ndim == 4:
        if state[key].shape[1] == 3 and expected[key].shape[1] == in_chans != 3:
            state[key] = adapt_conv_weight(state[key], in_chans)
    skipped = [
        k
        for k, v in state.items()
        if k.startswith(head_prefixes) and k in expected and v.shape != expected[k].shape
    ]
    state = {k: v for k, v in state.items() if k not in skipped}
    missing = [
        k
        for k in expected
        if k not in state
        and not k.endswith("num_batches_tracked")
        and not (skipped and k.startswith(head_prefixes))
    ]
    unexpected = [k for k in state if k not in expected and not k.endswith("num_batches_tracked")]
    mismatched = [
        f"{k}: checkpoint {tuple(state[k].shape)}, model {tuple(expected[k].shape)}"
        for k in state
        if k in expected and state[k].shape != expected[k].shape
    ]
    if missing or unexpected or mismatched:
        problems = []
        if missing:
            problems.append(f"{len(missing)} missing key(s): {_describe(missing)}")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected key(s): {_describe(unexpected)}")
        if mismatched:
            problems.append(f"{len(mismatched)} shape mismatch(es): {_describe(mismatched, 4)}")
        raise ValueError(
            f"{where} does not fit the network: " + "; ".join(problems) + ". Was it saved from "
            "another architecture or backbone?"
        )
    state = {k: v for k, v in state.items() if k in expected}
    for k, v in expected.items():  # the new head, BatchNorm counters
        state.setdefault(k, v)
    model.load_state_dict(state)
    if skipped:
        _log.info("%s: kept the new head instead of %s", where, _describe(skipped))


# ---------------------------------------------------------------------------- DeepLabV3


def _deeplab_models():
    import torchvision.models.segmentation as tvs

    return {
        "resnet50": (tvs.deeplabv3_resnet50, tvs.DeepLabV3_ResNet50_Weights),
        "resnet101": (tvs.deeplabv3_resnet101, tvs.DeepLabV3_ResNet101_Weights),
        "mobilenet_v3_large": (
            tvs.deeplabv3_mobilenet_v3_large,
            tvs.DeepLabV3_MobileNet_V3_Large_Weights,
        ),
    }


def _maskrcnn_models():
    import torchvision.models.detection as tvd

    return {
        "v1": (tvd.maskrcnn_resnet50_fpn, tvd.MaskRCNN_ResNet50_FPN_Weights),
        "v2": (tvd.maskrcnn_resnet50_fpn_v2, tvd.MaskRCNN_ResNet50_FPN_V2_Weights),
    }


def resolve_network_weights(network, variant, weights, weights_backbone):
    """``(weights, trunk weights)`` of a DeepLabV3 or Mask R-CNN, resolved offline.

    ``network`` is ``"deeplabv3"`` (``variant``: the backbone) or ``"maskrcnn"`` (``variant``:
    ``"v1"`` / ``"v2"``). Whole-network weights go through :func:`resolve_spec_weights`, the
    trunk's through :func:`~sklearn_alnm.nn.resolve_weights`; both at once is refused.
    Unavailable weights fail here, so estimators call it before reading any image.
    """
    if network == "deeplabv3":
        _, enum = _deeplab_models()[variant]
        name, trunk, whole = f"deeplabv3_{variant}", variant, "network"
    else:
        _, enum = _maskrcnn_models()[variant]
        name = "maskrcnn_resnet50_fpn" + ("_v2" if variant == "v2" else "")
        trunk, whole = "resnet50", "detector"
    if weights is not None and weights_backbone is not None:
        raise ValueError(
            f"pass weights (the whole {whole}) or weights_backbone (the trunk only), not both."
        )
    return (
        resolve_spec_weights(_model_spec(name, enum), weights),
        resolve_weights(trunk, weights_backbone),
    )


class DeepLabV3Net(nn.Module):
    """A torchvision DeepLabV3 whose ``forward`` returns the logits tensor.

    Built by :func:`build_deeplabv3`; the torchvision network is ``self.model``.

    Parameters
    ----------
    model : torchvision.models.segmentation.DeepLabV3
    in_chans, num_classes : int
    backbone : str
    weights_source : str or None
    """

    def __init__(self, model, *, in_chans, num_classes, backbone, weights_source=None):
        super().__init__()
        self.model = model
        self.in_chans = in_chans
        self.num_classes = num_classes
        self.backbone = backbone
        self.weights_source = weights_source

    def extra_repr(self):
        return (
            f"backbone={self.backbone!r}, in_chans={self.in_chans}, num_classes={self.num_classes}"
        )

    def forward(self, x):
        """Logits ``(N, num_classes, H, W)`` on the input grid (torchvision's ``["out"]``)."""
        _check_images(x, self.in_chans, "DeepLabV3")
        return self.model(x)["out"]


def _weights_label(resolved):
    if resolved is None:
        return None
    if isinstance(resolved, os.PathLike):
        return os.fspath(resolved)
    return f"{type(resolved).__name__}.{resolved.name}"


def build_deeplabv3(
    backbone="resnet50", *, in_chans=1, num_classes=1, weights=None, weights_backbone=None
):
    """torchvision's DeepLabV3 with a new head, any input channels and offline weights.

    DeepLabV3 (atrous spatial pyramid pooling on a dilated ResNet or MobileNetV3 trunk,
    output stride 8 or 16, logits upsampled bilinearly to the input) is one of the three
    segmentation networks of the US auto-segmentation study. The auxiliary head is removed,
    the last classifier convolution has ``num_classes`` outputs and the returned module's
    ``forward`` gives the logits tensor ``(N, num_classes, H, W)`` instead of torchvision's
    dict.

    Parameters
    ----------
    backbone : {"resnet50", "resnet101", "mobilenet_v3_large"}, default="resnet50"
        Trunk of the network.
    in_chans : int, default=1
        Input channels. For ``in_chans != 3`` the first convolution is rebuilt; pretrained RGB
        kernels are summed for one channel (exactly the network on the gray image replicated
        to RGB), see :func:`~sklearn_alnm.nn.adapt_conv_weight`.
    num_classes : int, default=1
        Output channels of the logits (1: lesion vs background).
    weights : None, str, os.PathLike or torchvision WeightsEnum, default=None
        Weights of the whole network: ``None`` (random); ``"DEFAULT"`` /
        ``"COCO_WITH_VOC_LABELS_V1"`` / an enum member, usable only when the file is already in
        the torch hub cache (otherwise :class:`~sklearn_alnm.nn.WeightsNotAvailableError` says
        which file to put where; nothing is downloaded); or the path of a checkpoint of this
        network (torchvision's file, or the state dict of a module built here). The
        classifier's last layer is kept only when its number of classes matches; auxiliary
        head keys are ignored.
    weights_backbone : None, str, os.PathLike or torchvision WeightsEnum, default=None
        ImageNet weights of the trunk only, resolved as by
        :func:`~sklearn_alnm.nn.resolve_weights` for the backbone of the same name (a weights
        name in the hub cache, or a checkpoint of the classification network). Not with
        ``weights``.

    Returns
    -------
    DeepLabV3Net
        ``forward(x)`` with ``x`` of shape ``(N, in_chans, H, W)`` returns logits
        ``(N, num_classes, H, W)``.

    Raises
    ------
    ValueError
        Unknown backbone, both ``weights`` and ``weights_backbone``, invalid counts, an
        unknown weights name or a checkpoint that does not fit.
    WeightsNotAvailableError
        A weights name whose file is not in the torch hub cache.

    Notes
    -----
    The atrous-pyramid pooling branch normalises a 1x1 map with batch norm, so training
    needs batches of at least two images.

    References
    ----------
    .. [1] L.-C. Chen, G. Papandreou, F. Schroff, H. Adam, "Rethinking Atrous Convolution for
       Semantic Image Segmentation", arXiv:1706.05587, 2017.

    Examples
    --------
    >>> import torch
    >>> from sklearn_alnm.nn import build_deeplabv3
    >>> net = build_deeplabv3("mobilenet_v3_large", in_chans=1, num_classes=1).eval()
    >>> net(torch.zeros(1, 1, 64, 48)).shape
    torch.Size([1, 1, 64, 48])
    """
    models = _deeplab_models()
    key = backbone.strip().lower() if isinstance(backbone, str) else backbone
    if key not in models:
        raise ValueError(f"backbone must be one of {sorted(models)}; got {backbone!r}.")
    in_chans = _positive_int(in_chans, "in_chans")
    num_classes = _positive_int(num_classes, "num_classes")
    builder, _ = models[key]
    name = f"deeplabv3_{key}"
    resolved, trunk = resolve_network_weights("deeplabv3", key, weights, weights_backbone)
    if resolved is not None and not isinstance(resolved, os.PathLike):
        model = _build_with_cached_weights(
            lambda: builder(weights=resolved, weights_backbone=None, progress=False),
            resolved,
            name,
        )
    else:
        trunk_enum = None if trunk is None or isinstance(trunk, os.PathLike) else trunk
        if trunk_enum is not None:
            model = _build_with_cached_weights(
                lambda: builder(
                    weights=None,
                    weights_backbone=trunk_enum,
                    num_classes=num_classes,
                    aux_loss=False,
                    progress=False,
                ),
                trunk_enum,
                key,
            )
        else:
            model = builder(
                weights=None,
                weights_backbone=None,
                num_classes=num_classes,
                aux_loss=False,
                progress=False,
            )
        if isinstance(trunk, os.PathLike):
            _load_backbone_checkpoint(model.backbone, key, trunk)
    model.aux_classifier = None
    last = model.classifier[-1]
    if last.out_channels != num_classes:
        model.classifier[-1] = nn.Conv2d(last.in_channels, num_classes, 1)
    first_conv = "backbone." + _adapt_first_conv(model.backbone, in_chans)
    if isinstance(resolved, os.PathLike):
        _load_full_checkpoint(
            model,
            resolved,
            first_conv=first_conv,
            in_chans=in_chans,
            head_prefixes=(f"classifier.{len(model.classifier) - 1}.",),
            ignore_prefixes=("aux_classifier.",),
        )
    source = _weights_label(resolved) or (
        None if trunk is None else f"backbone: {_weights_label(trunk)}"
    )
    return DeepLabV3Net(
        model, in_chans=in_chans, num_classes=num_classes, backbone=key, weights_source=source
    )


# --------------------------------------------------------------------------- Mask R-CNN


class MaskRCNNNet(nn.Module):
    """torchvision's Mask R-CNN taking gray or RGB images (built by :func:`build_maskrcnn`).

    ``forward(images, targets=None)`` takes a list of ``(in_chans, H, W)`` tensors (or one
    batch tensor ``(N, in_chans, H, W)``) with values in ``[0, 1]``; gray images are
    replicated to three channels (so ImageNet / COCO weights see what they were trained on)
    before torchvision's own resizing and normalisation. The output is torchvision's: the
    dict of losses in training mode (``targets`` required: per image a dict with ``boxes``
    ``(K, 4)`` as ``x1, y1, x2, y2``, ``labels`` ``(K,)`` in ``1 .. num_classes - 1`` and
    ``masks`` ``(K, H, W)`` uint8), a list of detections (``boxes``, ``labels``, ``scores``,
    ``masks`` ``(K, 1, H, W)`` probabilities) in eval mode. The torchvision network is
    ``self.model``.
    """

    def __init__(self, model, *, in_chans, num_classes, version, weights_source=None):
        super().__init__()
        self.model = model
        self.in_chans = in_chans
        self.num_classes = num_classes
        self.version = version
        self.weights_source = weights_source

    def extra_repr(self):
        return f"version={self.version!r}, in_chans={self.in_chans}, num_classes={self.num_classes}"

    def _to_rgb(self, image):
        if image.ndim != 3 or image.shape[0] != self.in_chans:
            raise ValueError(
                f"Mask R-CNN expects images of shape ({self.in_chans}, H, W); got "
                f"{tuple(image.shape)}."
            )
        return image.expand(3, -1, -1) if self.in_chans == 1 else image

    def forward(self, images, targets=None):
        """Losses (training) or detections (eval); see the class docstring."""
        if isinstance(images, torch.Tensor):
            if images.ndim == 3:
                images = [images]
            elif images.ndim == 4:
                images = list(images)
            else:
                raise ValueError(
                    f"Mask R-CNN expects (N, {self.in_chans}, H, W) or a list of "
                    f"({self.in_chans}, H, W) tensors; got shape {tuple(images.shape)}."
                )
        return self.model([self._to_rgb(image) for image in images], targets)


def _freeze_trunk(body, trainable_layers, frozen_batch_norm):
    """What torchvision does to a pretrained ResNet trunk: freeze early layers (and BN)."""
    from torchvision.ops import FrozenBatchNorm2d

    if frozen_batch_norm:
        for name, module in list(body.named_modules()):
            if isinstance(module, nn.BatchNorm2d):
                frozen = FrozenBatchNorm2d(module.num_features, eps=module.eps)
                for buffer in ("weight", "bias", "running_mean", "running_var"):
                    getattr(frozen, buffer).copy_(getattr(module, buffer).detach())
                _set_submodule(body, name, frozen)
    layers = ["layer4", "layer3", "layer2", "layer1", "conv1"][:trainable_layers]
    if trainable_layers == 5:
        layers.append("bn1")
    for name, parameter in body.named_parameters():
        parameter.requires_grad_(any(name.startswith(layer) for layer in layers))


def build_maskrcnn(
    *,
    num_classes=2,
    in_chans=1,
    weights=None,
    weights_backbone=None,
    version="v1",
    min_size=800,
    max_size=1333,
    trainable_backbone_layers=None,
    **kwargs,
):
    """torchvision's Mask R-CNN (ResNet50-FPN) for lesion instances, gray or RGB, offline weights.

    Mask R-CNN detects each lesion (or lymph node) as a box with a class score and a mask.
    The box and mask predictors are sized for ``num_classes`` (background included) and gray
    images are replicated to RGB inside the returned module.

    Parameters
    ----------
    num_classes : int, default=2
        Classes *including the background*: 2 for background + lesion, 3 for background +
        tumour + node.
    in_chans : {1, 3}, default=1
        Channels of the input images.
    weights : None, str, os.PathLike or torchvision WeightsEnum, default=None
        Weights of the whole detector: ``None`` (random), ``"DEFAULT"`` / ``"COCO_V1"`` / an
        enum member of the chosen ``version``, usable only when its file is in the torch hub
        cache (nothing is downloaded), or the path of a checkpoint of this detector. The
        COCO predictors (91 classes) are replaced by new ones.
    weights_backbone : None, str, os.PathLike or torchvision WeightsEnum, default=None
        ImageNet weights of the ResNet50 trunk (as :func:`~sklearn_alnm.nn.resolve_weights`
        resolves them for ``"resnet50"``). Not with ``weights``.
    version : {"v1", "v2"}, default="v1"
        ``"v1"``: ``maskrcnn_resnet50_fpn`` (He et al. 2017); ``"v2"``:
        ``maskrcnn_resnet50_fpn_v2`` (improved heads with batch norm, Li et al. 2021).
    min_size, max_size : int, default=800, 1333
        Each image is rescaled so that its shorter side is ``min_size`` unless its longer side
        would exceed ``max_size`` (torchvision's transform); predictions come back on the
        input grid. Use small values (e.g. 64-256) for small ultrasound crops.
    trainable_backbone_layers : int in [0, 5] or None, default=None
        With pretrained weights, how many trunk stages (from ``layer4`` down) are trained;
        ``None``: 3, torchvision's default. Random networks train all stages.
    **kwargs
        Further arguments of :class:`torchvision.models.detection.MaskRCNN`, e.g.
        ``box_detections_per_img``, ``box_score_thresh``, ``image_mean``, ``image_std``.

    Returns
    -------
    MaskRCNNNet
        The detector; see :class:`MaskRCNNNet` for its inputs and outputs.

    Raises
    ------
    ValueError
        Invalid counts or version, both ``weights`` and ``weights_backbone``, an unknown
        weights name or a checkpoint that does not fit.
    WeightsNotAvailableError
        A weights name whose file is not in the torch hub cache.

    References
    ----------
    .. [1] K. He, G. Gkioxari, P. Dollár, R. Girshick, "Mask R-CNN", ICCV 2017.

    Examples
    --------
    >>> import torch
    >>> from sklearn_alnm.nn import build_maskrcnn
    >>> net = build_maskrcnn(num_classes=2, in_chans=1, min_size=128, max_size=128)
    >>> heads = net.model.roi_heads
    >>> heads.box_predictor.cls_score.out_features, heads.mask_predictor.mask_fcn_logits
    (2, Conv2d(256, 2, kernel_size=(1, 1), stride=(1, 1)))
    >>> net.extra_repr()
    "version='v1', in_chans=1, num_classes=2"
    """
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
    from torchvision.models.detection.mask_rcnn import MaskRCNNPredictor

    num_classes = _positive_int(num_classes, "num_classes", minimum=2)
    if in_chans not in (1, 3) or isinstance(in_chans, bool):
        raise ValueError(f"in_chans must be 1 (gray) or 3 (RGB); got {in_chans!r}.")
    builders = _maskrcnn_models()
    if version not in builders:
        raise ValueError(f"version must be 'v1' or 'v2'; got {version!r}.")
    if trainable_backbone_layers is not None:
        trainable_backbone_layers = _positive_int(
            trainable_backbone_layers, "trainable_backbone_layers", minimum=0
        )
        if trainable_backbone_layers > 5:
            raise ValueError(
                f"trainable_backbone_layers must be in [0, 5]; got {trainable_backbone_layers}."
            )
    builder, _ = builders[version]
    name = "maskrcnn_resnet50_fpn" + ("_v2" if version == "v2" else "")
    resolved, trunk = resolve_network_weights("maskrcnn", version, weights, weights_backbone)
    options = {"min_size": min_size, "max_size": max_size, **kwargs}
    pretrained_file = isinstance(resolved, os.PathLike) or isinstance(trunk, os.PathLike)
    if resolved is not None and not pretrained_file:
        model = _build_with_cached_weights(
            lambda: builder(
                weights=resolved,
                weights_backbone=None,
                trainable_backbone_layers=trainable_backbone_layers,
                progress=False,
                **options,
            ),
            resolved,
            name,
        )
    elif trunk is not None and not pretrained_file:
        model = _build_with_cached_weights(
            lambda: builder(
                weights=None,
                weights_backbone=trunk,
                num_classes=num_classes,
                trainable_backbone_layers=trainable_backbone_layers,
                progress=False,
                **options,
            ),
            trunk,
            "resnet50",
        )
    else:
        model = builder(
            weights=None,
            weights_backbone=None,
            num_classes=num_classes,
            progress=False,
            **options,
        )
    box = model.roi_heads.box_predictor
    if box.cls_score.out_features != num_classes:
        model.roi_heads.box_predictor = FastRCNNPredictor(box.cls_score.in_features, num_classes)
    mask = model.roi_heads.mask_predictor
    if mask.mask_fcn_logits.out_channels != num_classes:
        model.roi_heads.mask_predictor = MaskRCNNPredictor(
            mask.conv5_mask.in_channels, mask.conv5_mask.out_channels, num_classes
        )
    if isinstance(trunk, os.PathLike):
        _load_backbone_checkpoint(model.backbone.body, "resnet50", trunk)
    if isinstance(resolved, os.PathLike):
        _load_full_checkpoint(
            model,
            resolved,
            first_conv="backbone.body.conv1",
            in_chans=3,
            head_prefixes=(
                "roi_heads.box_predictor.",
                "roi_heads.mask_predictor.mask_fcn_logits.",
            ),
            ignore_prefixes=(),
        )
    if pretrained_file:  # as torchvision treats a pretrained trunk
        layers = 3 if trainable_backbone_layers is None else trainable_backbone_layers
        _freeze_trunk(model.backbone.body, layers, frozen_batch_norm=version == "v1")
    source = _weights_label(resolved) or (
        None if trunk is None else f"backbone: {_weights_label(trunk)}"
    )
    return MaskRCNNNet(
        model, in_chans=in_chans, num_classes=num_classes, version=version, weights_source=source
    )
