"""Multi-task lesion network: a backbone, a SAM-like mask decoder and three heads.

The image-level stage of the multi-task / multi-instance ultrasound study. A registry CNN
gives a feature map, projected to ``dim`` channels (``z``). The mask decoder (after SAM's):
a learnable mask token and the image features exchange information through two-way
attention blocks (token self-attention, token-to-image and image-to-token cross-attention,
with a sine-cosine positional encoding of the grid); the image features are upsampled 2x by
a transposed convolution into the segmentation feature ``s``, the token goes through an MLP,
and their dot product at every position is the mask logit. Optionally (SAM 2's
high-resolution features) finer backbone maps are added along a chain of 2x transposed
convolutions, so the attention runs on a coarse grid while the mask comes out on a fine one.
Three heads share it:

- **segmentation**: the mask logits, resized to the input grid;
- **lesion kind** (tumour vs node): pooling of ``s * sigmoid(mask)`` and a linear layer (a
  1x1 convolution before the pooling, equivalently);
- **image-level ALN status**: pooling of ``z * sigmoid(mask)`` (the mask on ``z``'s grid)
  and a linear layer; that pooled lesion feature is the instance token of the
  multi-instance stage.

The study pools by global averages; here each product is divided by the mask's own area
(plus one pixel), i.e. the mean feature inside the soft lesion mask, which does not shrink
with the lesion's size (with the plain average the kind head hardly learned alongside the
segmentation).

Nothing here knows of scikit-learn.
"""

import contextlib
import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.feature_extraction import create_feature_extractor

from ..utils._seed import forked_torch_rng
from ._backbones import Backbone
from ._layers import _check_images, _positive_int


def sincos_position_2d(height, width, dim, *, device=None, dtype=torch.float32):
    """Sine-cosine positional encoding of an ``height x width`` grid: ``(height * width,
    dim)``, half the channels for rows and half for columns (``dim`` a multiple of 4)."""
    if dim % 4:
        raise ValueError(f"dim must be a multiple of 4 for the 2-D position encoding; got {dim}.")
    quarter = dim // 4
    freq = torch.exp(-math.log(10000.0) * torch.arange(quarter, device=device) / quarter)
    rows = torch.arange(height, device=device, dtype=torch.float32)[:, None] * freq
    cols = torch.arange(width, device=device, dtype=torch.float32)[:, None] * freq
    rows = torch.cat([rows.sin(), rows.cos()], dim=1)[:, None, :].expand(height, width, -1)
    cols = torch.cat([cols.sin(), cols.cos()], dim=1)[None, :, :].expand(height, width, -1)
    return torch.cat([rows, cols], dim=-1).reshape(height * width, dim).to(dtype)


def _masked_mean(features, weights):
    """Average of ``features`` (B, C, h, w) weighted by the soft mask ``weights`` (B, 1, h, w):
    the lesion's mean feature, whatever its size (one pseudo-pixel keeps an empty mask
    finite)."""
    return (features * weights).sum(dim=(2, 3)) / (weights.sum(dim=(2, 3)) + 1.0)


class LayerTap(nn.Module):
    """``{name: output of submodule name}`` of ``net`` run on ``x`` (forward hooks: the
    whole network runs), for networks torch.fx cannot trace."""

    def __init__(self, net, layers):
        super().__init__()
        self.net = net
        self.layers = list(layers)

    def forward(self, x):
        captured = {}
        handles = [
            self.net.get_submodule(name).register_forward_hook(
                lambda _m, _i, out, name=name: captured.__setitem__(name, out)
            )
            for name in self.layers
        ]
        try:
            self.net(x)
        finally:
            for handle in handles:
                handle.remove()
        return {name: captured[name] for name in self.layers}


def _layer_extractor(net, layers):
    """The trunk of ``net`` up to its deepest wanted layer (torchvision's FX feature
    extractor), or a :class:`LayerTap` where the network's control flow defeats tracing
    (MiT, the U-Net trunk's padding)."""
    try:
        return create_feature_extractor(net, return_nodes={name: name for name in layers})
    except Exception:  # torch.fx raises several kinds of errors on untraceable code
        return LayerTap(net, layers)


class MultiScaleProjection(nn.Module):
    """Feature maps of several strides -> one ``dim``-channel map on the finest grid.

    SegFormer's all-MLP fusion: each map is projected to ``dim`` channels (a 1x1
    convolution), resized bilinearly to the first (finest) map's grid, and the concatenation
    is fused by a 1x1 convolution and a layer norm. One map: a 1x1 convolution and a layer
    norm.
    """

    def __init__(self, channels, dim):
        super().__init__()
        self.levels = nn.ModuleList(nn.Conv2d(c, dim, 1) for c in channels)
        self.fuse = nn.Identity() if len(channels) == 1 else nn.Conv2d(len(channels) * dim, dim, 1)
        self.norm = LayerNorm2d(dim)

    def forward(self, maps):
        size = maps[0].shape[-2:]
        projected = [
            level(m)
            if m.shape[-2:] == size
            else F.interpolate(level(m), size=size, mode="bilinear", align_corners=False)
            for level, m in zip(self.levels, maps)
        ]
        return self.norm(self.fuse(torch.cat(projected, dim=1)))


def _upscaling(in_channels, out_channels):
    """A 2x transposed convolution, a channel layer norm and a GELU."""
    return nn.Sequential(
        nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2),
        LayerNorm2d(out_channels),
        nn.GELU(),
    )


class MultiTaskOutput(NamedTuple):
    """Outputs of :class:`MultiTaskSegNet`: ``aln`` (B, num_classes) logits, ``mask``
    (B, 1, H, W) logits on the input grid, ``kind`` (B,) logit of the second kind (node),
    ``token`` (B, dim) the pooled lesion feature."""

    aln: torch.Tensor
    mask: torch.Tensor
    kind: torch.Tensor
    token: torch.Tensor


class LayerNorm2d(nn.Module):
    """Layer normalisation over the channels of a ``(B, C, H, W)`` map."""

    def __init__(self, channels, eps=1e-6):
        super().__init__()
        self.norm = nn.LayerNorm(channels, eps=eps)

    def forward(self, x):
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class TwoWayAttentionBlock(nn.Module):
    """Tokens and image features attend to each other (SAM's two-way block).

    Tokens: self-attention, then cross-attention to the image, then an MLP; the image:
    cross-attention to the updated tokens. Residual connections and layer norms after each
    step; positions are added to the image keys (and queries).
    """

    def __init__(self, dim, heads, mlp_dim):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm1 = nn.LayerNorm(dim)
        self.token_to_image = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, dim))
        self.norm3 = nn.LayerNorm(dim)
        self.image_to_token = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm4 = nn.LayerNorm(dim)

    def forward(self, tokens, image, position):
        tokens = self.norm1(tokens + self.self_attn(tokens, tokens, tokens, need_weights=False)[0])
        keys = image + position
        attended = self.token_to_image(tokens, keys, image, need_weights=False)[0]
        tokens = self.norm2(tokens + attended)
        tokens = self.norm3(tokens + self.mlp(tokens))
        attended = self.image_to_token(keys, tokens, tokens, need_weights=False)[0]
        return tokens, self.norm4(image + attended)


class MaskDecoder(nn.Module):
    """SAM-like mask decoder of one learnable mask token over a feature map.

    Parameters
    ----------
    dim : int, default=256
        Channels of the image features and size of the token (a multiple of 4 and of
        ``heads``).
    depth : int, default=2
        Two-way attention blocks.
    heads : int, default=8
    mlp_dim : int or None, default=None
        Hidden size of the blocks' MLPs (``4 * dim``).
    high_res_channels : sequence of int, default=()
        Channels of finer feature maps given to ``forward`` (``high_res``), coarsest first
        (SAM 2's high-resolution features). With ``k`` of them the attended features go
        through ``k`` upscaling steps (2x transposed convolution each) instead of one, map
        ``i`` projected by a 1x1 convolution and added after step ``i`` (its grid should be
        ``2 ** (i + 1)`` times the feature grid; an upsampled map is resized to it
        otherwise).

    Notes
    -----
    ``forward`` returns ``mask``: ``(B, 1, H', W')`` logits, ``(H', W')`` being twice the
    feature grid, or the finest ``high_res`` map's grid; ``s``: the segmentation feature
    ``(B, dim // 4, H', W')``; ``token``: ``(B, dim)``; ``image``: the attended image
    features ``(B, dim, h, w)``.

    Examples
    --------
    >>> import torch
    >>> from sklearn_alnm.nn import MaskDecoder
    >>> decoder = MaskDecoder(dim=32, depth=1, heads=4, high_res_channels=(16, 8))
    >>> mask, s, token, image = decoder(
    ...     torch.randn(2, 32, 4, 4), [torch.randn(2, 16, 8, 8), torch.randn(2, 8, 16, 16)]
    ... )
    >>> tuple(mask.shape), tuple(s.shape)
    ((2, 1, 16, 16), (2, 8, 16, 16))
    """

    def __init__(self, dim=256, depth=2, heads=8, mlp_dim=None, high_res_channels=()):
        super().__init__()
        dim, depth, heads = (
            _positive_int(dim, "dim"),
            _positive_int(depth, "depth"),
            _positive_int(heads, "heads"),
        )
        if dim % heads or dim % 4:
            raise ValueError(f"dim ({dim}) must be a multiple of 4 and of heads ({heads}).")
        self.dim = dim
        self.mask_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.blocks = nn.ModuleList(
            TwoWayAttentionBlock(dim, heads, mlp_dim or 4 * dim) for _ in range(depth)
        )
        self.final_attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.final_norm = nn.LayerNorm(dim)
        channels = [_positive_int(c, "high_res_channels") for c in high_res_channels]
        self.upscale = _upscaling(dim, dim // 4)
        # SAM 2's high-resolution path: one further 2x step per finer map after the first,
        # each map projected to the segmentation feature's channels and added
        self.refine = nn.ModuleList(_upscaling(dim // 4, dim // 4) for _ in channels[1:])
        self.high_res = nn.ModuleList(nn.Conv2d(c, dim // 4, 1) for c in channels)
        self.token_mlp = nn.Sequential(
            nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim // 4)
        )

    def _upsample(self, image, high_res):
        """The segmentation feature: the attended map upsampled (and refined by the finer
        maps, coarsest first)."""
        if len(high_res) != len(self.high_res):
            raise ValueError(
                f"MaskDecoder expects {len(self.high_res)} high-resolution maps; "
                f"got {len(high_res)}."
            )
        steps = [self.upscale, *self.refine]
        s = image
        for k, step in enumerate(steps):
            s = step[0](s)  # the 2x transposed convolution
            if k < len(high_res):
                fine = self.high_res[k](high_res[k])
                if s.shape[-2:] != fine.shape[-2:]:
                    s = F.interpolate(s, size=fine.shape[-2:], mode="bilinear", align_corners=False)
                s = s + fine
            s = step[2](step[1](s))  # layer norm, GELU
        return s

    def forward(self, features, high_res=()):
        b, c, h, w = features.shape
        if c != self.dim:
            raise ValueError(f"MaskDecoder expects {self.dim} channels; got {c}.")
        image = features.flatten(2).transpose(1, 2)  # (B, hw, dim)
        position = sincos_position_2d(h, w, c, device=features.device, dtype=features.dtype)
        tokens = self.mask_token.expand(b, -1, -1).to(features.dtype)
        for block in self.blocks:
            tokens, image = block(tokens, image, position)
        attended = self.final_attn(tokens, image + position, image, need_weights=False)[0]
        tokens = self.final_norm(tokens + attended)
        image = image.transpose(1, 2).reshape(b, c, h, w)
        s = self._upsample(image, list(high_res))
        mask = torch.einsum("bchw,bc->bhw", s, self.token_mlp(tokens[:, 0]))[:, None]
        return mask, s, tokens[:, 0], image


class MultiTaskSegNet(nn.Module):
    """Backbone + mask decoder + segmentation, lesion-kind and image-level ALN heads.

    Parameters
    ----------
    backbone : str, default="resnet18"
        A registry backbone with a convolutional feature map: the CNNs, ``swin_t``, the MiT
        encoders of SegFormer (``mit_b0`` ...), ``unet``; its feature map is the output of
        ``feature_layer``.
    in_chans : int, default=1
    weights : None, str or os.PathLike, default=None
        The backbone's initial weights (offline only, see :func:`resolve_weights`).
    feature_layer : str, list of str or None, default=None
        The backbone submodule whose output is the feature map; a list (finest grid first,
        e.g. ``["layer2", "layer3", "layer4"]``) is fused SegFormer-style on the finest grid
        (:class:`MultiScaleProjection`) (``None``: the backbone's
        last convolutional stage, its Grad-CAM layer, e.g. ``"layer4"``; ``"layer3"`` of a
        ResNet or ``"stages.2"`` of a MiT encoder give a grid twice as fine). It must output
        ``(N, C, h, w)`` (Swin's inner stages are channels-last: use its default).
    high_res_layers : list of str or None, default=None
        Finer backbone layers (any order, e.g. ``["layer1", "layer2"]`` under a ``"layer3"``
        feature map) whose maps refine the mask decoder's upsampling (SAM 2's
        high-resolution features, see :class:`MaskDecoder`): the two-way attention stays
        on the coarse grid and the mask comes out on the finest of these maps' grids. Each
        must be finer than the feature map.
    dim : int, default=256
        Channels of ``z`` and size of the instance token.
    decoder_depth, heads : int, default=2, 8
        Two-way attention blocks and heads of the mask decoder.
    num_classes : int, default=2
        Outputs of the ALN head (class logits).
    seed : int or None, default=None

    Notes
    -----
    ``forward`` returns a :class:`MultiTaskOutput`: ``aln`` (B, num_classes) logits, ``mask``
    (B, 1, H, W) logits on the input grid, ``kind`` (B,) logit, ``token`` (B, dim) the
    pooled lesion feature.

    Examples
    --------
    >>> import torch
    >>> from sklearn_alnm.nn import MultiTaskSegNet
    >>> net = MultiTaskSegNet("resnet18", feature_layer="layer3", dim=32, heads=4, seed=0)
    >>> out = net(torch.randn(2, 1, 64, 64))
    >>> {k: tuple(v.shape) for k, v in out._asdict().items()}
    {'aln': (2, 2), 'mask': (2, 1, 64, 64), 'kind': (2,), 'token': (2, 32)}
    """

    def __init__(
        self,
        backbone="resnet18",
        *,
        in_chans=1,
        weights=None,
        feature_layer=None,
        high_res_layers=None,
        dim=256,
        decoder_depth=2,
        heads=8,
        num_classes=2,
        seed=None,
    ):
        super().__init__()
        with contextlib.nullcontext() if seed is None else forked_torch_rng(seed):
            trunk = Backbone(backbone, in_chans=in_chans, weights=weights)
            layers = feature_layer or trunk.spec.gradcam_layer
            layers = [layers] if isinstance(layers, str) else list(layers)
            if not layers or not all(isinstance(name, str) for name in layers):
                raise ValueError(
                    f"feature_layer must be a layer name or a list of them; got {feature_layer!r}."
                )
            fine = [high_res_layers] if isinstance(high_res_layers, str) else high_res_layers
            fine = list(fine or [])
            if not all(isinstance(name, str) for name in fine) or len(set(fine)) < len(fine):
                raise ValueError(
                    f"high_res_layers must be a list of different layer names; got "
                    f"{high_res_layers!r}."
                )
            for name in [*layers, *fine]:
                try:
                    trunk.net.get_submodule(name)
                except AttributeError:
                    raise ValueError(f"backbone {backbone!r} has no layer {name!r}.") from None
            self.encoder = _layer_extractor(trunk.net, list(dict.fromkeys([*layers, *fine])))
            self.layers = layers
            self.high_res_layers = fine
            self.backbone = trunk.name
            self.min_input_size = trunk.spec.min_input_size
            self.feature_layer = layers[0] if len(layers) == 1 else tuple(layers)
            self.in_chans = int(in_chans)
            channels, fine_channels = self._probe_channels()
            self.project = MultiScaleProjection(channels, dim)
            self.decoder = MaskDecoder(dim, decoder_depth, heads, high_res_channels=fine_channels)
            self.kind_head = nn.Linear(dim // 4, 1)
            self.aln_head = nn.Linear(dim, _positive_int(num_classes, "num_classes"))

    def _probe_channels(self):
        """Channels of the feature layers' maps and of the high-resolution maps; the latter
        put in order from the coarsest grid to the finest."""
        size = max(self.min_input_size, 64)
        with torch.no_grad():
            was = self.encoder.training
            self.encoder.eval()
            out = self.encoder(torch.zeros(1, self.in_chans, size, size))
            self.encoder.train(was)
        for name in [*self.layers, *self.high_res_layers]:
            if out[name].ndim != 4:
                raise ValueError(
                    f"layer {name!r} gives {out[name].ndim}-D outputs; the multi-task network "
                    "needs convolutional feature maps (N, C, h, w)."
                )
        maps = [out[name] for name in self.layers]
        strides = [m.shape[-1] for m in maps]
        if strides != sorted(strides, reverse=True):
            raise ValueError(
                f"feature layers {self.layers} must go from the finest grid to the coarsest."
            )
        grid = maps[0].shape[-1]
        coarse = [name for name in self.high_res_layers if out[name].shape[-1] <= grid]
        if coarse:
            raise ValueError(
                f"high_res_layers {coarse} are not finer than the feature map (its grid is "
                f"{grid} wide at {size} px input, theirs {[out[n].shape[-1] for n in coarse]})."
            )
        self.high_res_layers = sorted(self.high_res_layers, key=lambda n: out[n].shape[-1])
        return [m.shape[1] for m in maps], [out[n].shape[1] for n in self.high_res_layers]

    def feature_maps(self, x):
        """The backbone's ``feature_layer`` outputs for images ``x`` (a list)."""
        return self._encode(x)[0]

    def _encode(self, x):
        """The feature layers' maps and the high-resolution maps (coarsest first)."""
        out = self.encoder(x)
        return [out[name] for name in self.layers], [out[n] for n in self.high_res_layers]

    def feature_map(self, x):
        """The network's image features ``z`` (before the mask decoder): the feature layers'
        maps projected to ``dim`` channels (and fused, on the finest grid)."""
        return self.project(self.feature_maps(x))

    def _forward(self, x):
        _check_images(x, self.in_chans, "MultiTaskSegNet")
        maps, high_res = self._encode(x)
        z = self.project(maps)
        mask_small, s, _, _ = self.decoder(z, high_res)
        soft = torch.sigmoid(mask_small)
        kind = self.kind_head(_masked_mean(s, soft))[:, 0]
        on_z = F.interpolate(soft, size=z.shape[-2:], mode="bilinear", align_corners=False)
        token = _masked_mean(z, on_z)
        mask = F.interpolate(mask_small, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return MultiTaskOutput(self.aln_head(token), mask, kind, token), z, on_z

    def forward(self, x):
        return self._forward(x)[0]

    def class_activation_map(self, x):
        """The image-level head's class activation maps (CAM, Zhou et al. 2016).

        The ALN logits are a linear layer of the lesion token, the mask-weighted mean of
        ``z``; so each position's share of logit ``k`` is ``W_k . z(i, j) * m(i, j) /
        (sum(m) + 1)``, with ``m`` the soft mask on ``z``'s grid, and the map sums exactly to
        the logit less its bias. Positions outside the predicted lesion contribute nothing.

        Returns
        -------
        output : MultiTaskOutput
        cam : torch.Tensor of shape (B, num_classes, h, w)
            On the feature grid ``z``.
        """
        output, z, on_z = self._forward(x)
        weights = on_z / (on_z.sum(dim=(2, 3), keepdim=True) + 1.0)
        cam = torch.einsum("kc,bchw->bkhw", self.aln_head.weight, z * weights)
        return output, cam
