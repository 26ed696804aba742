"""torchvision's Mask R-CNN for lesion instances: any input channels, offline weights."""

import os

import torch
from torch import nn

from ._backbones import _set_submodule
from ._checkpoints import (
    _build_with_cached_weights,
    _load_backbone_checkpoint,
    _load_full_checkpoint,
    _maskrcnn_models,
    _weights_label,
    resolve_network_weights,
)
from ._layers import _positive_int


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
