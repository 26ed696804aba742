"""Video networks: TSN, TSM and TIN on any residual 2-D backbone, and torchvision's 3-D nets.

Clips are tensors ``(N, C, T, H, W)``. The 2-D family runs one registry backbone
(:class:`~sklearn_alnm.nn.Backbone`) over every frame and averages the frames' embeddings
(TSN, Wang et al. 2016); TSM (Lin et al. 2019) adds a *temporal shift* inside each residual
branch (1/8 of the channels move one frame back, 1/8 one frame forward, zeros at the clip's
ends), TIN (Shao et al. 2020) a learnt *temporal interlace*: an offset network predicts a
fractional temporal offset per channel group and a weight per frame, and the features are
shifted by linear interpolation along time. Both shifts are written here in plain, fully
differentiable PyTorch (CPU and CUDA). The 3-D family is torchvision's (R3D-18, MC3-18,
R(2+1)D-18, S3D, MViT-v2-S, Swin3D-T) with a new head and any number of input channels.
"""

import contextlib
import math
import os
import types

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from ..utils._seed import forked_torch_rng
from ._backbones import Backbone, _set_submodule
from ._layers import _check_dropout, _positive_int
from ._weights import adapt_conv_weight, read_state_dict, resolve_spec_weights

#: The 2-D architectures (a registry backbone over frames) and the 3-D ones (torchvision).
FRAME_ARCHS = ("tsn", "tsm", "tin")
VIDEO_3D_ARCHS = ("r3d_18", "mc3_18", "r2plus1d_18", "s3d", "mvit_v2_s", "swin3d_t")


# ------------------------------------------------------------------------------ the shifts


def temporal_shift(x, n_frames, fold_div=8):
    """TSM's shift of frame features ``(N * T, C, H, W)``, zeros entering at the clip ends.

    The first ``C // fold_div`` channels of frame ``t`` take the values of frame ``t + 1``
    (shifted back in time), the next ``C // fold_div`` those of frame ``t - 1`` (forward);
    the others are unchanged.

    Examples
    --------
    >>> import torch
    >>> from sklearn_alnm.nn import temporal_shift
    >>> x = torch.arange(3.0).repeat_interleave(8).reshape(3, 8, 1, 1)  # frame t holds t
    >>> temporal_shift(x, 3)[:, :2, 0, 0].tolist()
    [[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]]
    """
    nt, c, h, w = x.shape
    x = x.view(nt // n_frames, n_frames, c, h, w)
    fold = c // fold_div
    out = torch.zeros_like(x)
    out[:, :-1, :fold] = x[:, 1:, :fold]
    out[:, 1:, fold : 2 * fold] = x[:, :-1, fold : 2 * fold]
    out[:, :, 2 * fold :] = x[:, :, 2 * fold :]
    return out.view(nt, c, h, w)


def interpolated_shift(x, offsets):
    """Shift features ``(N, T, G, ...)`` along time by fractional ``offsets`` ``(N, G)``.

    ``out[:, t, g] = (1 - a) * x[:, t - k, g] + a * x[:, t - k - 1, g]`` with
    ``k = floor(offset)`` and ``a = offset - k`` (frames outside the clip are zeros), so an
    integer offset ``k`` moves group ``g`` ``k`` frames forward in time exactly, and the
    result is differentiable in ``x`` and in the offsets (linear interpolation).

    Examples
    --------
    >>> import torch
    >>> from sklearn_alnm.nn import interpolated_shift
    >>> x = torch.arange(1.0, 5.0).reshape(1, 4, 1)  # frames 1, 2, 3, 4 of one group
    >>> interpolated_shift(x, torch.tensor([[1.0]])).flatten().tolist()
    [0.0, 1.0, 2.0, 3.0]
    >>> interpolated_shift(x, torch.tensor([[0.5]])).flatten().tolist()
    [0.5, 1.5, 2.5, 3.5]
    """
    n, t, g = x.shape[:3]
    rest = x.shape[3:]
    floor = torch.floor(offsets)
    frac = (offsets - floor).view(n, 1, g, *([1] * len(rest)))
    times = torch.arange(t, device=x.device).view(1, t, 1)
    index = times - floor.to(torch.long).view(n, 1, g)  # (N, T, G)

    def gather(idx):
        valid = (idx >= 0) & (idx < t)
        safe = idx.clamp(0, t - 1).view(n, t, g, *([1] * len(rest))).expand_as(x)
        picked = torch.gather(x, 1, safe)
        return picked * valid.view(n, t, g, *([1] * len(rest))).to(x.dtype)

    return (1 - frac) * gather(index) + frac * gather(index - 1)


class TemporalShift(nn.Module):
    """TSM's temporal shift (:func:`temporal_shift`) in front of a residual branch."""

    def __init__(self, n_frames, fold_div=8):
        super().__init__()
        self.n_frames = int(n_frames)
        self.fold_div = int(fold_div)

    def extra_repr(self):
        return f"n_frames={self.n_frames}, fold_div={self.fold_div}"

    def forward(self, x):
        return temporal_shift(x, self.n_frames, self.fold_div)


class TemporalInterlace(nn.Module):
    """TIN's learnt temporal interlace of frame features ``(N * T, C, H, W)``.

    The first ``C // fold_div`` channels are split into ``groups``; an offset network
    (spatial average pooling, a 1-D convolution over time, two fully connected layers, tanh
    scaled to ``max_offset``) predicts one fractional offset per group and clip, a weight
    network (1-D convolution, sigmoid scaled to 2) one weight per group and frame; the groups
    are shifted by :func:`interpolated_shift`, the first half of the groups back in time by
    the offsets, the second half forward (TIN interlaces both directions), then weighted. The
    other channels are unchanged. At initialisation the offsets are one frame and the weights
    one, so TIN starts as TSM's shift (:func:`temporal_shift`) and learns from there.
    """

    def __init__(self, channels, n_frames, *, fold_div=4, groups=2, max_offset=2.0):
        super().__init__()
        self.n_frames = int(n_frames)
        self.fold = channels // fold_div
        self.groups = int(groups)
        if self.fold < self.groups or self.fold % self.groups:
            raise ValueError(
                f"TIN needs C // fold_div ({self.fold}) to be a positive multiple of groups "
                f"({self.groups}); got C={channels}."
            )
        self.max_offset = float(max_offset)
        hidden = max(self.n_frames, 4)
        self.offset_conv = nn.Conv1d(self.fold, 1, kernel_size=3, padding=1)
        self.offset_fc = nn.Sequential(
            nn.Linear(self.n_frames, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, self.groups)
        )
        self.weight_conv = nn.Conv1d(self.fold, self.groups, kernel_size=3, padding=1)
        for layer in (self.offset_fc[-1], self.weight_conv):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        # start from TSM's shift: offsets of one frame (first half of the groups back in time,
        # second half forward), unit weights; training then moves them
        nn.init.constant_(self.offset_fc[-1].bias, math.atanh(1.0 / self.max_offset))

    def extra_repr(self):
        return f"n_frames={self.n_frames}, fold={self.fold}, groups={self.groups}"

    def forward(self, x):
        nt, c, h, w = x.shape
        n, t = nt // self.n_frames, self.n_frames
        clip = x.view(n, t, c, h, w)
        part = clip[:, :, : self.fold]
        pooled = part.mean(dim=(3, 4)).transpose(1, 2)  # (N, fold, T)
        offsets = self.max_offset * torch.tanh(self.offset_fc(self.offset_conv(pooled).squeeze(1)))
        half = self.groups // 2
        signs = torch.ones(self.groups, device=x.device, dtype=offsets.dtype)
        signs[:half] = -1.0
        weights = 2.0 * torch.sigmoid(self.weight_conv(pooled))  # (N, G, T)
        grouped = part.reshape(n, t, self.groups, self.fold // self.groups, h, w)
        shifted = interpolated_shift(grouped, offsets * signs)
        shifted = shifted * weights.transpose(1, 2).reshape(n, t, self.groups, 1, 1, 1)
        out = torch.cat([shifted.reshape(n, t, self.fold, h, w), clip[:, :, self.fold :]], dim=2)
        return out.view(nt, c, h, w)


# ---------------------------------------------------------------------------- the networks


def _residual_blocks(module):
    return [m for m in module.modules() if isinstance(m, BasicBlock | Bottleneck)]


class FrameVideoNet(nn.Module):
    """TSN / TSM / TIN: a 2-D registry backbone over the frames, frame embeddings averaged.

    Parameters
    ----------
    arch : {"tsn", "tsm", "tin"}
    backbone : str
        A registry backbone with residual blocks for ``"tsm"`` / ``"tin"`` (ResNet, ULNet).
    n_frames : int
        Frames per clip (the shifts mix neighbouring frames of one clip).
    in_chans, num_classes : int
    weights, dropout, seed
        As for :class:`~sklearn_alnm.nn.Backbone` (ImageNet weights of the 2-D trunk).
    """

    def __init__(
        self,
        arch="tsm",
        backbone="resnet18",
        *,
        n_frames=8,
        in_chans=3,
        num_classes=2,
        weights=None,
        dropout=0.5,
        seed=None,
    ):
        super().__init__()
        if arch not in FRAME_ARCHS:
            raise ValueError(f"arch must be one of {FRAME_ARCHS}; got {arch!r}.")
        self.arch = arch
        self.n_frames = _positive_int(n_frames, "n_frames")
        self.in_chans = _positive_int(in_chans, "in_chans")
        self.num_classes = _positive_int(num_classes, "num_classes")
        dropout = _check_dropout(dropout)
        self.trunk = Backbone(backbone, weights=weights, in_chans=in_chans, seed=seed)
        if arch != "tsn":
            blocks = _residual_blocks(self.trunk.net)
            if not blocks:
                raise ValueError(
                    f"arch={arch!r} shifts features inside residual blocks; backbone "
                    f"{backbone!r} has none (use a ResNet, or arch='tsn')."
                )
            generator = torch.Generator().manual_seed(0 if seed is None else int(seed))
            for block in blocks:
                if arch == "tsm":
                    shift = TemporalShift(self.n_frames)
                else:
                    shift = TemporalInterlace(block.conv1.in_channels, self.n_frames)
                    for p in shift.offset_conv.parameters():
                        p.data.normal_(0.0, 0.01, generator=generator)
                block.conv1 = nn.Sequential(shift, block.conv1)
        with contextlib.nullcontext() if seed is None else forked_torch_rng(int(seed) + 1):
            self.head = nn.Sequential(
                nn.Dropout(dropout), nn.Linear(self.trunk.feature_dim, num_classes)
            )
        self.gradcam_layer = f"trunk.{self.trunk.gradcam_layer}"

    def extra_repr(self):
        return f"arch={self.arch!r}, n_frames={self.n_frames}, in_chans={self.in_chans}"

    def forward_features(self, x):
        """Clip embeddings ``(N, D)``: the mean of the frames' embeddings."""
        n, c, t, h, w = x.shape
        if t != self.n_frames or c != self.in_chans:
            raise ValueError(
                f"expected clips (N, {self.in_chans}, {self.n_frames}, H, W); got {tuple(x.shape)}."
            )
        frames = x.transpose(1, 2).reshape(n * t, c, h, w)
        return self.trunk.forward_features(frames).view(n, t, -1).mean(dim=1)

    def forward(self, x):
        return self.head(self.forward_features(x))


def _video_models():
    import torchvision.models.video as tvv

    return {
        "r3d_18": (tvv.r3d_18, tvv.R3D_18_Weights),
        "mc3_18": (tvv.mc3_18, tvv.MC3_18_Weights),
        "r2plus1d_18": (tvv.r2plus1d_18, tvv.R2Plus1D_18_Weights),
        "s3d": (tvv.s3d, tvv.S3D_Weights),
        "mvit_v2_s": (tvv.mvit_v2_s, tvv.MViT_V2_S_Weights),
        "swin3d_t": (tvv.swin3d_t, tvv.Swin3D_T_Weights),
    }


def _replace_head(model, num_classes, dropout):
    """A new classification layer for ``num_classes`` (the last Linear, or S3D's 1x1x1 conv)."""
    last = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) or (
            isinstance(module, nn.Conv3d)
            and module.kernel_size == (1, 1, 1)
            and "classifier" in name
        ):
            last = (name, module)
    name, module = last
    if isinstance(module, nn.Linear):
        new = nn.Sequential(nn.Dropout(dropout), nn.Linear(module.in_features, num_classes))
    else:
        new = nn.Conv3d(module.in_channels, num_classes, kernel_size=1)
    _set_submodule(model, name, new)


def _adapt_first_conv3d(model, in_chans):
    name, conv = next((n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv3d))
    if conv.in_channels == in_chans:
        return
    new = nn.Conv3d(
        in_chans,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        bias=conv.bias is not None,
    )
    with torch.no_grad():
        new.weight.copy_(adapt_conv_weight(conv.weight, in_chans))
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    _set_submodule(model, name, new)


class Video3DNet(nn.Module):
    """A torchvision 3-D video network with a new head and any number of input channels.

    Parameters
    ----------
    arch : {"r3d_18", "mc3_18", "r2plus1d_18", "s3d", "mvit_v2_s", "swin3d_t"}
    in_chans, num_classes : int
    weights : None, str or os.PathLike
        ``None`` (random), a torchvision weights name (Kinetics-400) used only if its file is
        in the local torch hub cache, or a checkpoint path of the whole network.
    dropout : float
        Dropout in front of the new head.
    seed : int or None
        Seed of the random initialisation.
    """

    def __init__(
        self, arch="r3d_18", *, in_chans=3, num_classes=2, weights=None, dropout=0.5, seed=None
    ):
        super().__init__()
        models = _video_models()
        if arch not in models:
            raise ValueError(f"arch must be one of {sorted(models)}; got {arch!r}.")
        self.arch = arch
        self.in_chans = _positive_int(in_chans, "in_chans")
        self.num_classes = _positive_int(num_classes, "num_classes")
        dropout = _check_dropout(dropout)
        build, enum = models[arch]
        resolved = resolve_spec_weights(
            types.SimpleNamespace(name=arch, weights_enum=enum), weights
        )
        with contextlib.nullcontext() if seed is None else forked_torch_rng(seed):
            pretrained = resolved if resolved is not None and not _is_path(resolved) else None
            model = build(weights=pretrained)
            if _is_path(resolved):
                model.load_state_dict(read_state_dict(resolved))
            _replace_head(model, num_classes, dropout)
            _adapt_first_conv3d(model, in_chans)
        self.model = model
        self.gradcam_layer = _gradcam_layer_3d(model)

    def extra_repr(self):
        return f"arch={self.arch!r}, in_chans={self.in_chans}, num_classes={self.num_classes}"

    def forward(self, x):
        if x.ndim != 5 or x.shape[1] != self.in_chans:
            raise ValueError(f"expected clips (N, {self.in_chans}, T, H, W); got {tuple(x.shape)}.")
        out = self.model(x)
        return out.flatten(1) if out.ndim > 2 else out


def _is_path(value):
    return isinstance(value, os.PathLike)


def _gradcam_layer_3d(model):
    for candidate in ("layer4", "features", "blocks"):
        if hasattr(model, candidate):
            return f"model.{candidate}"
    return "model"


def resolve_video_weights(arch, backbone, weights):
    """The weights of a video network resolved offline (raises before any clip is read):
    the 2-D trunk's for ``"tsn"`` / ``"tsm"`` / ``"tin"``, the whole 3-D network's otherwise."""
    if arch in FRAME_ARCHS:
        from ._backbones import resolve_weights

        return resolve_weights(backbone, weights)
    models = _video_models()
    if arch not in models:
        raise ValueError(f"arch must be one of {FRAME_ARCHS + VIDEO_3D_ARCHS}; got {arch!r}.")
    return resolve_spec_weights(
        types.SimpleNamespace(name=arch, weights_enum=models[arch][1]), weights
    )


def build_video_net(arch="tsm", backbone="resnet18", *, n_frames=8, **kwargs):
    """A video network by name: ``"tsn"`` / ``"tsm"`` / ``"tin"`` on a 2-D registry backbone
    (:class:`FrameVideoNet`), or a torchvision 3-D network (:class:`Video3DNet`).

    Examples
    --------
    >>> import torch
    >>> from sklearn_alnm.nn import build_video_net
    >>> net = build_video_net("tsm", "resnet18", n_frames=4, in_chans=1, num_classes=2, seed=0)
    >>> net.eval()(torch.zeros(2, 1, 4, 32, 32)).shape
    torch.Size([2, 2])
    """
    if arch in FRAME_ARCHS:
        return FrameVideoNet(arch, backbone, n_frames=n_frames, **kwargs)
    return Video3DNet(arch, **kwargs)


__all__ = [
    "FRAME_ARCHS",
    "FrameVideoNet",
    "TemporalInterlace",
    "TemporalShift",
    "VIDEO_3D_ARCHS",
    "Video3DNet",
    "build_video_net",
    "interpolated_shift",
    "resolve_video_weights",
    "temporal_shift",
]
