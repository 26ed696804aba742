"""torchvision's DeepLabV3 with a lesion head, any input channels and offline weights."""

import os

from torch import nn

from ._checkpoints import (
    _adapt_first_conv,
    _build_with_cached_weights,
    _deeplab_models,
    _load_backbone_checkpoint,
    _load_full_checkpoint,
    _weights_label,
    resolve_network_weights,
)
from ._layers import _check_images, _positive_int


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
