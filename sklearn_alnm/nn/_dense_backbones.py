"""Registry backbones built for dense prediction: Swin-T, SegFormer's MiT encoders, a U-Net.

- ``swin_t``: torchvision's Swin Transformer, tiny (Liu et al. 2021). Its stages keep
  channels last; the feature map of the registry (Grad-CAM layer and the multi-task
  network's default) is the ``permute`` module after the final layer norm,
  ``(N, C, H/32, W/32)``.
- ``mit_b0``, ``mit_b1``, ``mit_b2``: the Mix Transformer encoders of SegFormer (Xie et al.
  2021), from ``segmentation-models-pytorch``. That library was chosen over
  ``transformers``' SegFormer because it is a segmentation library of this field, light
  (``timm`` is its only heavy dependency), and its encoders take any number of input
  channels and return the four stages' maps as ``(N, C, H, W)`` tensors; ``transformers``
  would bring a large framework for one encoder. Its ImageNet weights are downloaded from
  the Hugging Face hub, so here (offline) the weights are ``None`` or a local checkpoint
  path. :class:`MiTNet` exposes the four stages as ``stages.0`` ... ``stages.3`` (strides 4,
  8, 16, 32).
- ``unet``: the library's :class:`~sklearn_alnm.nn.UNet` without its 1x1 head
  (:class:`UNetTrunk`): a convolutional encoder-decoder whose decoder levels ``decoder.0`` ...
  are maps at strides 8, 4, 2, 1 (for depth 4); the trunk stops at ``levels`` decoder levels
  (default 2: stride 4), the registry's feature map.
"""

import functools

import torchvision.models as tvm
from torch import nn

from ._backbones import BackboneSpec, register_backbone
from ._layers import _positive_int
from ._unet import UNet

_LIU = (
    "Liu et al., Swin Transformer: hierarchical vision transformer using shifted windows, ICCV 2021"
)
_XIE = (
    "Xie et al., SegFormer: simple and efficient design for semantic segmentation with "
    "transformers, NeurIPS 2021"
)
_RONNEBERGER = (
    "Ronneberger et al., U-Net: convolutional networks for biomedical image segmentation, "
    "MICCAI 2015"
)

#: Channels of the four stages of each MiT encoder (SegFormer, Table 6).
MIT_CHANNELS = {
    "mit_b0": (32, 64, 160, 256),
    "mit_b1": (64, 128, 320, 512),
    "mit_b2": (64, 128, 320, 512),
}


def _smp_encoder(name, in_chans):
    try:
        from segmentation_models_pytorch.encoders import get_encoder
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise ImportError(
            f"backbone {name!r} needs segmentation-models-pytorch "
            "(pip install segmentation-models-pytorch)."
        ) from exc
    return get_encoder(name, in_channels=in_chans, depth=5, weights=None)


class MiTNet(nn.Module):
    """A SegFormer Mix Transformer encoder as a classification network.

    The encoder (``segmentation-models-pytorch``) gives four maps (strides 4, 8, 16, 32); each
    passes an identity module ``stages.k`` (the named places a feature extractor or Grad-CAM
    hooks into); the last is averaged and classified by ``fc``.

    Parameters
    ----------
    name : str, default="mit_b0"
        One of ``mit_b0``, ``mit_b1``, ``mit_b2``.
    in_chans : int, default=3
    num_classes : int, default=1000

    Examples
    --------
    >>> import torch
    >>> from sklearn_alnm.nn import MiTNet
    >>> net = MiTNet("mit_b0", in_chans=1, num_classes=2).eval()
    >>> net(torch.zeros(1, 1, 64, 64)).shape
    torch.Size([1, 2])
    """

    def __init__(self, name="mit_b0", *, in_chans=3, num_classes=1000):
        super().__init__()
        if name not in MIT_CHANNELS:
            raise ValueError(f"unknown MiT encoder {name!r}; known: {sorted(MIT_CHANNELS)}.")
        self.name = name
        self.encoder = _smp_encoder(name, _positive_int(in_chans, "in_chans"))
        self.stages = nn.ModuleList(nn.Identity() for _ in range(4))
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
        self.fc = nn.Linear(MIT_CHANNELS[name][-1], _positive_int(num_classes, "num_classes"))

    def forward_stages(self, x):
        """The four stage maps ``[(N, C_k, H / 2**(k+2), W / 2**(k+2))]``."""
        maps = self.encoder(x)[-4:]  # the encoder also returns the input and an empty map
        return [stage(m) for stage, m in zip(self.stages, maps)]

    def forward(self, x):
        return self.fc(self.pool(self.forward_stages(x)[-1]))


def mit(name="mit_b0", weights=None, progress=True, **kwargs):
    """Builder of the registry's MiT entries (random weights; checkpoints are loaded by the
    registry)."""
    if weights is not None:
        raise ValueError(
            f"{name!r} has no torchvision weights; pass weights=None or a checkpoint path."
        )
    return MiTNet(name, **kwargs)


class UNetTrunk(nn.Module):
    """The U-Net's encoder and its first ``levels`` decoder levels, as a classifier.

    Parameters
    ----------
    in_chans : int, default=3
    num_classes : int, default=1000
    base_channels, depth : int, default=32, 4
        As for :class:`~sklearn_alnm.nn.UNet`.
    levels : int, default=2
        Decoder levels kept (``1 <= levels <= depth``): the map leaves the trunk at stride
        ``2 ** (depth - levels)`` with ``base_channels * 2 ** (depth - levels)`` channels.

    Examples
    --------
    >>> import torch
    >>> from sklearn_alnm.nn import UNetTrunk
    >>> net = UNetTrunk(in_chans=1, num_classes=2, base_channels=8).eval()
    >>> net.forward_features(torch.zeros(1, 1, 64, 64)).shape
    torch.Size([1, 32, 16, 16])
    """

    def __init__(self, in_chans=3, num_classes=1000, *, base_channels=32, depth=4, levels=2):
        super().__init__()
        levels = _positive_int(levels, "levels")
        if levels > depth:
            raise ValueError(f"levels ({levels}) cannot exceed depth ({depth}).")
        self.unet = UNet(in_chans, 1, base_channels=base_channels, depth=depth)
        self.unet.upsamplers = nn.ModuleList(list(self.unet.upsamplers)[:levels])
        self.unet.decoder = nn.ModuleList(list(self.unet.decoder)[:levels])
        self.unet.head = nn.Identity()  # the trunk ends at its last kept decoder level
        self.depth, self.levels = self.unet.depth, levels
        self.features = nn.Identity()
        self.embedding_dim = base_channels * 2 ** (depth - levels)
        self.avgpool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
        self.fc = nn.Linear(self.embedding_dim, _positive_int(num_classes, "num_classes"))

    def forward_features(self, x):
        """The map of the last kept decoder level (inputs are replicate-padded to a multiple
        of ``2 ** depth`` and the map cropped back to the input's extent)."""
        if x.ndim != 4:
            raise ValueError(f"UNetTrunk expects a batch (N, C, H, W); got shape {tuple(x.shape)}.")
        padded, window = self.unet._padding.pad(x)
        out = self.unet.decode(padded)
        if window is not None:  # the cells covering the unpadded image
            stride = 2 ** (self.depth - self.levels)
            top, bottom, left, right = window
            out = out[
                ..., top // stride : -(-bottom // stride), left // stride : -(-right // stride)
            ]
        return self.features(out)

    def forward(self, x):
        return self.fc(self.avgpool(self.forward_features(x)))


def unet_trunk(weights=None, progress=True, **kwargs):
    """Builder of the registry's ``unet`` entry."""
    if weights is not None:
        raise ValueError(
            "'unet' has no torchvision weights; pass weights=None or a checkpoint path."
        )
    return UNetTrunk(**kwargs)


def _entries():
    entries = []
    for name, dim in (("swin_t", 768),):
        entries.append(
            BackboneSpec(
                name,
                getattr(tvm, name),
                dim,
                head="head",
                first_conv="features.0.0",
                gradcam_layer="permute",
                weights_enum=getattr(tvm, f"Swin_{name[-1].upper()}_Weights"),
                family="swin",
                reference=_LIU,
            )
        )
    for name, channels in MIT_CHANNELS.items():
        entries.append(
            BackboneSpec(
                name,
                functools.partial(mit, name),
                channels[-1],
                head="fc",
                first_conv="encoder.patch_embed1.proj",
                gradcam_layer="stages.3",
                family="mit",
                reference=_XIE,
            )
        )
    entries.append(
        BackboneSpec(
            "unet",
            unet_trunk,
            128,  # base 32, depth 4, two decoder levels: stride 4, 128 channels
            head="fc",
            first_conv="unet.encoder.0.0",
            gradcam_layer="features",
            family="unet",
            min_input_size=16,
            reference=_RONNEBERGER,
        )
    )
    return entries


for _spec in _entries():
    register_backbone(_spec)
del _spec
