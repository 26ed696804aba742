"""The backbone registry: one entry per named CNN / ViT, and the module built from it.

A :class:`BackboneSpec` says everything the rest of the library needs to know about an
architecture without instantiating it: the torchvision constructor and its weights enum, the
embedding (penultimate-layer) dimension, where the classification head and the first
convolution sit, the input sizes it accepts and the layer Grad-CAM should look at.
:class:`Backbone` builds the network from a spec, replaces its head (by nothing, to get the
embedding, or by a new linear layer), adapts the first convolution to the number of input
channels and loads weights offline. A new architecture is one :func:`register_backbone` call.
"""

import contextlib
import dataclasses
import difflib
import numbers
import os
import re
from collections.abc import Callable, Mapping

import torch
import torchvision.models as tvm
from torch import nn

from .._logging import get_logger
from ..utils._seed import forked_torch_rng
from ._layers import _positive_int
from ._weights import (
    adapt_conv_weight,
    hub_checkpoint_path,
    match_state_dict,
    read_state_dict,
    resolve_spec_weights,
)

_log = get_logger(__name__)


@dataclasses.dataclass(frozen=True, eq=False)
class BackboneSpec:
    """What the library knows about one backbone architecture (an entry of the registry).

    Parameters
    ----------
    name : str
        Registry key (lower case), e.g. ``"resnet50"``.
    builder : callable
        ``builder(weights=None, **kwargs) -> torch.nn.Module``, e.g. a torchvision constructor.
        It must accept ``weights`` (``None`` or a member of ``weights_enum``) and ``progress``.
        Use module-level functions (and classes), so that built networks can be pickled.
    embedding_dim : int
        Size of the penultimate-layer embedding (the input of the classification head).
    head : str
        Dotted path of the classification head inside the built network (``"fc"``,
        ``"classifier.6"``, ``"heads.head"``); it is replaced by ``embedding_head()``, and its
        keys are ignored when loading checkpoints.
    first_conv : str
        Dotted path of the first ``Conv2d`` (adapted when ``in_chans != 3``).
    gradcam_layer : str
        Dotted path (inside the network) of the layer Grad-CAM uses by default: the last
        convolutional stage for CNNs. For ViT it is the last encoder block's first LayerNorm,
        whose output are tokens ``(N, 1 + (H/p)(W/p), D)``: drop the class token and reshape
        to the ``(H/p, W/p)`` grid (``p = patch_size``).
    weights_enum : type or None, default=None
        The torchvision ``WeightsEnum`` of the architecture (``None`` for custom networks).
    family : str, default=""
        Architecture family (``"resnet"``, ``"vgg"``, ``"vit"``, ...), for grouping.
    min_input_size : int, default=32
        Smallest accepted height and width: the hard limit of the architecture (75 for
        Inception-v3) or its total stride (32), below which the last feature map is made of
        padding rather than image.
    default_input_size : int, default=224
        The size the ImageNet weights were trained at (299 for Inception-v3).
    fixed_input_size : bool, default=False
        The network only accepts inputs of exactly its configured size (ViT). The size is set
        at build time through ``builder(**{size_kwarg: size})`` and position embeddings of
        loaded weights are interpolated to it.
    size_kwarg : str or None, default=None
        Builder argument holding the input size when ``fixed_input_size``.
    patch_size : int or None, default=None
        Patch size of a vision transformer (the input size must be a multiple of it).
    random_init_kwargs : mapping, default={}
        Extra builder arguments used when the network is built without torchvision weights
        (e.g. ``aux_logits=False`` to skip Inception's auxiliary head).
    aux_heads : tuple of str, default=()
        Auxiliary heads removed after building (set to ``None``; their checkpoint keys are
        ignored), e.g. ``("AuxLogits",)``.
    embedding_head : callable, default=torch.nn.Identity
        ``embedding_head() -> nn.Module`` put in place of ``head``; it must turn the network's
        output into the ``(N, embedding_dim)`` embedding (SqueezeNet needs pooling here).
    adapt_state_dict : callable or None, default=None
        ``adapt_state_dict(state, net) -> state`` applied to checkpoints before matching keys:
        renames legacy keys (DenseNet), resizes position embeddings (ViT).
    reference : str, default=""
        The paper introducing the architecture.
    """

    name: str
    builder: Callable[..., nn.Module]
    embedding_dim: int
    head: str
    first_conv: str
    gradcam_layer: str
    weights_enum: type | None = None
    family: str = ""
    min_input_size: int = 32
    default_input_size: int = 224
    fixed_input_size: bool = False
    size_kwarg: str | None = None
    patch_size: int | None = None
    random_init_kwargs: Mapping = dataclasses.field(default_factory=dict)
    aux_heads: tuple = ()
    embedding_head: Callable[[], nn.Module] = nn.Identity
    adapt_state_dict: Callable | None = None
    reference: str = ""

    def check_input_size(self, size, *, configured=None):
        """Validate an input size ``(height, width)`` (or an int) and return it as a tuple.

        Parameters
        ----------
        size : int or tuple of 2 int
        configured : tuple of 2 int, default=None
            For fixed-size networks, the size the network was built for.

        Returns
        -------
        tuple of 2 int

        Raises
        ------
        ValueError
            When the size is below ``min_input_size``, or differs from the configured size of
            a fixed-size network, or is not a multiple of its patch size.
        """
        hw = _as_size(size)
        if min(hw) < self.min_input_size:
            raise ValueError(
                f"backbone {self.name!r} needs inputs of at least {self.min_input_size}x"
                f"{self.min_input_size} pixels; got {hw[0]}x{hw[1]}."
            )
        if self.fixed_input_size:
            if hw[0] != hw[1] or (self.patch_size and hw[0] % self.patch_size):
                raise ValueError(
                    f"backbone {self.name!r} needs square inputs whose side is a multiple of its "
                    f"patch size {self.patch_size}; got {hw[0]}x{hw[1]}."
                )
            if configured is not None and hw != tuple(configured):
                raise ValueError(
                    f"backbone {self.name!r} was built for {configured[0]}x{configured[1]} inputs "
                    f"and accepts no other size; got {hw[0]}x{hw[1]}. Build it with "
                    f"input_size={hw[0]} (position embeddings are then interpolated)."
                )
        return hw


def _as_size(size):
    if isinstance(size, numbers.Integral) and not isinstance(size, bool):
        hw = (int(size), int(size))
    else:
        try:
            hw = tuple(int(s) for s in size)
        except TypeError:
            hw = ()
        if len(hw) != 2 or any(isinstance(s, bool) for s in size):
            raise ValueError(f"input size must be an int or a (height, width) pair; got {size!r}.")
    if min(hw) < 1:
        raise ValueError(f"input size must be positive; got {size!r}.")
    return hw


_REGISTRY: dict = {}


def register_backbone(spec, *, overwrite=False):
    """Add a backbone to the registry, making it available everywhere by name.

    Parameters
    ----------
    spec : BackboneSpec
    overwrite : bool, default=False
        Replace an existing entry of the same name instead of raising.

    Returns
    -------
    BackboneSpec
        ``spec``, so the call can be used as an expression.

    Raises
    ------
    ValueError
        If the name is taken and ``overwrite`` is false.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from sklearn_alnm.nn import (BackboneSpec, build_backbone, register_backbone,
    ...                              unregister_backbone)
    >>> def tiny_cnn(weights=None, progress=True):
    ...     return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
    ...                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 1000))
    >>> spec = BackboneSpec("tiny_cnn", tiny_cnn, embedding_dim=8, head="4", first_conv="0",
    ...                     gradcam_layer="1", min_input_size=1)
    >>> _ = register_backbone(spec)
    >>> build_backbone("tiny_cnn", num_classes=3)(torch.zeros(1, 3, 8, 8)).shape
    torch.Size([1, 3])
    >>> unregister_backbone("tiny_cnn")
    """
    if not isinstance(spec, BackboneSpec):
        raise TypeError(f"spec must be a BackboneSpec; got {type(spec).__name__}.")
    if spec.name != spec.name.lower() or not re.fullmatch(r"[a-z0-9_.\-]+", spec.name):
        raise ValueError(
            f"backbone names are lower-case letters, digits, '_', '.' or '-'; got {spec.name!r}."
        )
    if spec.name in _REGISTRY and not overwrite:
        raise ValueError(
            f"a backbone named {spec.name!r} is already registered; pass overwrite=True to "
            "replace it."
        )
    _REGISTRY[spec.name] = spec
    return spec


def unregister_backbone(name):
    """Remove a backbone from the registry.

    Parameters
    ----------
    name : str

    Raises
    ------
    ValueError
        If no backbone of that name is registered (the valid names are listed).
    """
    del _REGISTRY[get_backbone_spec(name).name]


#: Other names of registered backbones (resolved by :func:`get_backbone_spec`).
ALIASES = {"mobilenet_v3": "mobilenet_v3_large"}


def available_backbones():
    """Names of the registered backbones, sorted.

    Returns
    -------
    list of str

    Examples
    --------
    >>> from sklearn_alnm.nn import available_backbones
    >>> {"resnet18", "densenet121", "vit_b_16"} <= set(available_backbones())
    True
    """
    return sorted(_REGISTRY)


def get_backbone_spec(name):
    """The registry entry of ``name`` (case-insensitive; ``"mobilenet_v3"`` is
    ``"mobilenet_v3_large"``).

    Parameters
    ----------
    name : str

    Returns
    -------
    BackboneSpec

    Raises
    ------
    ValueError
        For an unknown name; the message lists the valid names and the closest ones.

    Examples
    --------
    >>> from sklearn_alnm.nn import get_backbone_spec
    >>> spec = get_backbone_spec("ResNet50")
    >>> spec.embedding_dim, spec.head, spec.gradcam_layer
    (2048, 'fc', 'layer4')
    """
    if isinstance(name, BackboneSpec):
        return name
    if not isinstance(name, str):
        raise TypeError(f"backbone name must be a str; got {type(name).__name__}.")
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key in _REGISTRY:
        return _REGISTRY[key]
    close = difflib.get_close_matches(key, list(_REGISTRY), n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
    raise ValueError(f"unknown backbone {name!r}; valid names are {available_backbones()}.{hint}")


def resolve_weights(name, weights):
    """Check a ``weights`` argument offline and say what it refers to.

    Parameters
    ----------
    name : str
        Backbone name.
    weights : None, str, os.PathLike or torchvision.models.WeightsEnum
        ``None`` (random initialisation); ``"DEFAULT"``, a weights name such as
        ``"IMAGENET1K_V1"`` or ``"ResNet18_Weights.IMAGENET1K_V1"`` (case-insensitive), or an
        enum member: usable only when its file is already in the torch hub cache; or the path
        of a local checkpoint file.

    Returns
    -------
    None, torchvision.models.WeightsEnum or pathlib.Path
        The enum member (its file exists in the hub cache) or the checkpoint path (it exists).

    Raises
    ------
    WeightsNotAvailableError
        For a weights name whose file is not in the hub cache; the message names the file,
        the folder to put it in and its URL. A subclass of :class:`FileNotFoundError`.
    FileNotFoundError
        For a checkpoint path that does not exist.
    ValueError
        For an unknown weights name or one of another architecture; the message lists the
        valid names.

    Examples
    --------
    >>> from sklearn_alnm.nn import resolve_weights
    >>> resolve_weights("resnet18", None) is None
    True
    >>> try:
    ...     resolve_weights("resnet18", "IMAGENET21K")
    ... except ValueError as exc:
    ...     print(exc)  # doctest: +NORMALIZE_WHITESPACE
    weights='IMAGENET21K' is not recognised for 'resnet18'; expected None, one of
    ['DEFAULT', 'IMAGENET1K_V1'] (also written as 'ResNet18_Weights.<name>'), or the path of a
    checkpoint file.
    """
    return resolve_spec_weights(get_backbone_spec(name), weights)


def _set_submodule(root, path, module):
    parent_path, _, attr = path.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    setattr(parent, attr, module)


def _weights_label(weights):
    if weights is None:
        return None
    if isinstance(weights, os.PathLike):
        return os.fspath(weights)
    return f"{type(weights).__name__}.{weights.name}"


class Backbone(nn.Module):
    """A registered backbone network with its head replaced: embeddings or logits.

    ``forward(x)`` returns the penultimate-layer embedding ``(N, feature_dim)`` when
    ``num_classes`` is ``None`` and the logits of a new linear head otherwise;
    :meth:`forward_features` always returns the embedding. The torchvision network lives in
    ``self.net`` (its own head replaced by an identity), the new head in ``self.head``.

    Parameters
    ----------
    name : str, default="resnet18"
        Registered backbone name (see :func:`available_backbones`).
    weights : None, str, os.PathLike or torchvision.models.WeightsEnum, default=None
        See :func:`resolve_weights`. Never downloaded. A checkpoint (state dict of the full
        torchvision network, of the network without head, or of a :class:`Backbone`; possibly
        nested under ``"state_dict"``/``"model"`` and prefixed by ``"module."``) is matched key
        by key: head keys are ignored and any other missing, unexpected or mis-shaped key
        raises a :class:`ValueError` listing them. A checkpoint is loaded into the architecture
        as built for random initialisation: for torchvision's own ImageNet files of
        Inception-v3 and GoogLeNet, which expect ``transform_input=True``, use the weights
        name (hub cache) instead of the file path.
    in_chans : int, default=3
        Number of input channels. For ``in_chans != 3`` the first convolution is rebuilt and
        (pretrained) RGB kernels are summed for one channel, which is exactly the network
        applied to the grayscale image replicated to RGB (see :func:`adapt_conv_weight`).
        Networks that re-map RGB inputs internally (``transform_input`` of torchvision's
        pretrained Inception-v3 / GoogLeNet) have that step switched off for ``in_chans != 3``.
    num_classes : int or None, default=None
        ``None`` to output the embedding; otherwise the size of a new, randomly initialised
        linear head (always random: checkpoint heads are ignored).
    input_size : int, tuple of 2 int or None, default=None
        Only for fixed-size networks (ViT): the input side the network is built for, a
        multiple of the patch size (default ``spec.default_input_size``); pretrained position
        embeddings are bicubically interpolated to it. For other networks it is only checked
        against ``spec.min_input_size``.
    dropout : float, default=0.0
        Dropout probability in front of the new head (ignored when ``num_classes`` is None).
    seed : int or None, default=None
        Seed of the random initialisation (network and head). Torch's global generator is left
        as it was. ``None`` draws from the global generator.

    Attributes
    ----------
    spec : BackboneSpec
    feature_dim : int
        Embedding size.
    input_size : tuple of 2 int or None
        The size a fixed-size network accepts (``None`` when any size from
        ``spec.min_input_size`` on is accepted).
    weights_source : str or None
        What the weights came from (enum label or checkpoint path), ``None`` for random.
    gradcam_layer : str
        Qualified name (``"net.layer4"``) of the default Grad-CAM layer, for
        ``backbone.get_submodule(...)``.

    Examples
    --------
    >>> import torch
    >>> from sklearn_alnm.nn import Backbone
    >>> model = Backbone("resnet18", num_classes=2, seed=0).eval()
    >>> x = torch.zeros(1, 3, 32, 32)
    >>> model(x).shape, model.forward_features(x).shape
    (torch.Size([1, 2]), torch.Size([1, 512]))
    """

    def __init__(
        self,
        name="resnet18",
        *,
        weights=None,
        in_chans=3,
        num_classes=None,
        input_size=None,
        dropout=0.0,
        seed=None,
    ):
        super().__init__()
        spec = get_backbone_spec(name)
        in_chans = _positive_int(in_chans, "in_chans")
        if num_classes is not None:
            num_classes = _positive_int(num_classes, "num_classes")
        if not (isinstance(dropout, int | float) and 0.0 <= dropout < 1.0):
            raise ValueError(f"dropout must be a float in [0, 1); got {dropout!r}.")
        size = None
        if input_size is not None:
            size = spec.check_input_size(input_size)
        resolved = resolve_spec_weights(spec, weights)
        if size is None and spec.fixed_input_size:
            size = spec.check_input_size(_native_size(spec, resolved))

        self.spec = spec
        self.name = spec.name
        self.in_chans = in_chans
        self.num_classes = num_classes
        self.feature_dim = spec.embedding_dim
        self.input_size = size if spec.fixed_input_size else None
        self.weights_source = _weights_label(resolved)
        self.gradcam_layer = f"net.{spec.gradcam_layer}"

        # seeded inside a fork of torch's generator; unseeded, the caller's stream is used
        with contextlib.nullcontext() if seed is None else forked_torch_rng(seed):
            net = _build_network(spec, resolved, self.input_size)
            _set_submodule(net, spec.head, spec.embedding_head())
            if in_chans != 3:
                _adapt_first_conv(net, spec, in_chans)
            self.net = net
            if num_classes is None:
                self.head = nn.Identity()
            elif dropout > 0:
                self.head = nn.Sequential(
                    nn.Dropout(dropout), nn.Linear(spec.embedding_dim, num_classes)
                )
            else:
                self.head = nn.Linear(spec.embedding_dim, num_classes)
        if isinstance(resolved, os.PathLike):
            self.load_checkpoint(resolved)

    def extra_repr(self):
        return f"name={self.name!r}, in_chans={self.in_chans}, num_classes={self.num_classes}"

    def check_input(self, x):
        """Raise a clear :class:`ValueError` if ``x`` cannot go through the network."""
        if x.ndim != 4 or x.shape[1] != self.in_chans:
            raise ValueError(
                f"backbone {self.name!r} expects a batch of shape (N, {self.in_chans}, H, W); "
                f"got {tuple(x.shape)}."
            )
        self.spec.check_input_size(tuple(x.shape[-2:]), configured=self.input_size)

    def forward_features(self, x):
        """The penultimate-layer embedding, shape ``(N, feature_dim)``."""
        if not (
            torch.jit.is_scripting() or torch.jit.is_tracing() or torch.compiler.is_compiling()
        ):
            self.check_input(x)
        return self.net(x)

    def forward(self, x):
        """The embedding (``num_classes=None``) or the logits ``(N, num_classes)``."""
        return self.head(self.forward_features(x))

    def load_checkpoint(self, checkpoint):
        """Load network weights from a checkpoint path or state dict (head keys ignored).

        Parameters
        ----------
        checkpoint : str, os.PathLike or dict
            See the ``weights`` parameter.

        Returns
        -------
        list of str
            The checkpoint keys that were ignored (heads).

        Raises
        ------
        ValueError
            If the file is not a state dict, or keys are missing, unexpected or mis-shaped
            (all of them are listed).
        """
        where = (
            f"checkpoint {os.fspath(checkpoint)!r}"
            if isinstance(checkpoint, str | os.PathLike)
            else "the checkpoint"
        )
        state = read_state_dict(checkpoint)
        state, ignored = match_state_dict(
            self.spec, self.net, state, in_chans=self.in_chans, where=where
        )
        self.net.load_state_dict(state)
        _log.debug("loaded %s into backbone %r", where, self.name)
        return ignored


def _native_size(spec, weights):
    """The input side torchvision builds a fixed-size network at for these weights."""
    meta = getattr(weights, "meta", None) or {}
    return int(meta.get("min_size", (spec.default_input_size,))[0])


def _build_network(spec, weights, size):
    """The full network (with its original head, without auxiliary heads) on the CPU."""
    kwargs = dict(spec.random_init_kwargs)
    native = None
    if weights is not None and not isinstance(weights, os.PathLike):
        try:
            net = spec.builder(weights=weights, progress=False)
        except Exception as exc:
            cached = os.fspath(hub_checkpoint_path(weights))
            raise ValueError(
                f"could not load the cached weights file {cached!r}"
                f" for backbone {spec.name!r} ({type(exc).__name__}: {exc}); the file may be "
                "incomplete or corrupt: replace it."
            ) from exc
        if spec.fixed_input_size:
            native = _native_size(spec, weights)
        if native is not None and size is not None and size[0] != native:
            state = net.state_dict()
            net = spec.builder(weights=None, **{**kwargs, spec.size_kwarg: size[0]})
            state, _ = match_state_dict(spec, net, state, where=_weights_label(weights))
            net.load_state_dict(state)
    else:
        if spec.fixed_input_size and size is not None:
            kwargs[spec.size_kwarg] = size[0]
        net = spec.builder(weights=None, **kwargs)
    for aux in spec.aux_heads:
        if getattr(net, aux, None) is not None:
            setattr(net, aux, None)
    if spec.aux_heads and hasattr(net, "aux_logits"):
        net.aux_logits = False
    return net


def conv_for_channels(conv, in_chans):
    """A copy of ``conv`` taking ``in_chans`` input channels, kernels adapted.

    The kernels come from :func:`adapt_conv_weight` (RGB kernels summed for one channel);
    every other setting and the bias are kept.
    """
    new = nn.Conv2d(
        in_chans,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=conv.bias is not None,
        padding_mode=conv.padding_mode,
    )
    with torch.no_grad():
        new.weight.copy_(adapt_conv_weight(conv.weight, in_chans))
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    return new


def _adapt_first_conv(net, spec, in_chans):
    conv = net.get_submodule(spec.first_conv)
    if not isinstance(conv, nn.Conv2d):
        raise TypeError(
            f"first_conv {spec.first_conv!r} of backbone {spec.name!r} is a "
            f"{type(conv).__name__}, not a Conv2d."
        )
    _set_submodule(net, spec.first_conv, conv_for_channels(conv, in_chans))
    if getattr(net, "transform_input", False):
        net.transform_input = False  # defined per RGB channel


def build_backbone(
    name, *, weights=None, in_chans=3, num_classes=None, input_size=None, dropout=0.0, seed=None
):
    """Build a registered backbone: embeddings (``num_classes=None``) or logits of a new head.

    Parameters
    ----------
    name : str
        Registered backbone name, case-insensitive (see :func:`available_backbones`).
    weights : None, str, os.PathLike or torchvision.models.WeightsEnum, default=None
        ``None`` for random initialisation; a torchvision weights name or ``"DEFAULT"`` whose
        file is in the local torch hub cache; or a local checkpoint path (see
        :func:`resolve_weights` and :class:`Backbone`). Nothing is ever downloaded.
    in_chans : int, default=3
        Number of input channels; the first convolution is adapted (RGB kernels summed for 1).
    num_classes : int or None, default=None
        ``None``: the module returns the ``(N, feature_dim)`` embedding; otherwise logits of a
        new linear head of that many outputs.
    input_size : int, tuple or None, default=None
        Input size a fixed-size network (ViT) is built for; checked for the others.
    dropout : float, default=0.0
        Dropout before the new head.
    seed : int or None, default=None
        Seed of the random initialisation (global generator untouched).

    Returns
    -------
    Backbone
        A ``torch.nn.Module`` in training mode, on the CPU; ``.feature_dim`` is the embedding
        size, ``.spec`` the registry entry.

    Raises
    ------
    ValueError
        Unknown backbone (the valid names are listed), bad sizes, unknown weights names, or a
        checkpoint whose keys do not fit.
    WeightsNotAvailableError
        For pretrained weights whose file is not in the hub cache.

    Examples
    --------
    >>> import torch
    >>> from sklearn_alnm.nn import build_backbone
    >>> model = build_backbone("resnet18", in_chans=1, seed=0).eval()
    >>> with torch.inference_mode():
    ...     embedding = model(torch.zeros(2, 1, 32, 32))
    >>> embedding.shape, model.feature_dim
    (torch.Size([2, 512]), 512)
    """
    return Backbone(
        name,
        weights=weights,
        in_chans=in_chans,
        num_classes=num_classes,
        input_size=input_size,
        dropout=dropout,
        seed=seed,
    )


# --------------------------------------------------------------------------------------------
# The torchvision entries.

_DENSENET_LEGACY_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\."
    r"((?:[12])\.(?:weight|bias|running_mean|running_var|num_batches_tracked))$"
)


def _densenet_keys(state, net):
    """Rename the ``norm.1``-style keys of the original DenseNet checkpoints, as torchvision does.

    (Those checkpoints predate BatchNorm's ``num_batches_tracked``; it is renamed too.)
    """
    renamed = {}
    for key, value in state.items():
        match = _DENSENET_LEGACY_KEY.match(key)
        renamed[match.group(1) + match.group(2) if match else key] = value
    return renamed


def _vit_position_embeddings(state, net):
    """Interpolate ViT position embeddings to the network's image size when they differ."""
    key = "encoder.pos_embedding"
    if key in state and state[key].shape != net.state_dict()[key].shape:
        from torchvision.models.vision_transformer import interpolate_embeddings

        state = dict(interpolate_embeddings(net.image_size, net.patch_size, state))
    return state


class _GlobalPool(nn.Sequential):
    """Global average pooling then flattening: ``(N, C, H, W) -> (N, C)``."""

    def __init__(self):
        super().__init__(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))


_HE = "He et al., Deep residual learning for image recognition, CVPR 2016"
_SIMONYAN = "Simonyan & Zisserman, Very deep convolutional networks, ICLR 2015"
_VGG_LAST_RELU = {"vgg16": 29, "vgg16_bn": 42, "vgg19": 35, "vgg19_bn": 51}


def _torchvision_entries():
    entries = []
    for depth, dim in ((18, 512), (34, 512), (50, 2048), (101, 2048)):
        name = f"resnet{depth}"
        entries.append(
            BackboneSpec(
                name,
                getattr(tvm, name),
                dim,
                head="fc",
                first_conv="conv1",
                gradcam_layer="layer4",
                weights_enum=getattr(tvm, f"ResNet{depth}_Weights"),
                family="resnet",
                reference=_HE,
            )
        )
    for depth, dim in ((121, 1024),):
        name = f"densenet{depth}"
        entries.append(
            BackboneSpec(
                name,
                getattr(tvm, name),
                dim,
                head="classifier",
                first_conv="features.conv0",
                gradcam_layer="features.norm5",
                weights_enum=getattr(tvm, f"DenseNet{depth}_Weights"),
                family="densenet",
                adapt_state_dict=_densenet_keys,
                reference="Huang et al., Densely connected convolutional networks, CVPR 2017",
            )
        )
    for name, last_relu in _VGG_LAST_RELU.items():
        entries.append(
            BackboneSpec(
                name,
                getattr(tvm, name),
                4096,
                head="classifier.6",
                first_conv="features.0",
                gradcam_layer=f"features.{last_relu}",
                weights_enum=getattr(tvm, f"{name.upper()}_Weights"),
                family="vgg",
                reference=_SIMONYAN,
            )
        )
    entries += [
        BackboneSpec(
            "inception_v3",
            tvm.inception_v3,
            2048,
            head="fc",
            first_conv="Conv2d_1a_3x3.conv",
            gradcam_layer="Mixed_7c",
            weights_enum=tvm.Inception_V3_Weights,
            family="inception",
            min_input_size=75,
            default_input_size=299,
            random_init_kwargs={"aux_logits": False, "init_weights": True},
            aux_heads=("AuxLogits",),
            reference="Szegedy et al., Rethinking the Inception architecture, CVPR 2016",
        ),
        BackboneSpec(
            "googlenet",
            tvm.googlenet,
            1024,
            head="fc",
            first_conv="conv1.conv",
            gradcam_layer="inception5b",
            weights_enum=tvm.GoogLeNet_Weights,
            family="inception",
            random_init_kwargs={"aux_logits": False, "init_weights": True},
            aux_heads=("aux1", "aux2"),
            reference="Szegedy et al., Going deeper with convolutions, CVPR 2015",
        ),
        BackboneSpec(
            "squeezenet1_1",
            tvm.squeezenet1_1,
            512,
            head="classifier",
            first_conv="features.0",
            gradcam_layer="features.12",
            weights_enum=tvm.SqueezeNet1_1_Weights,
            family="squeezenet",
            embedding_head=_GlobalPool,
            reference="Iandola et al., SqueezeNet, arXiv:1602.07360",
        ),
        BackboneSpec(
            "vit_b_16",
            tvm.vit_b_16,
            768,
            head="heads.head",
            first_conv="conv_proj",
            gradcam_layer="encoder.layers.encoder_layer_11.ln_1",
            weights_enum=tvm.ViT_B_16_Weights,
            family="vit",
            fixed_input_size=True,
            size_kwarg="image_size",
            patch_size=16,
            adapt_state_dict=_vit_position_embeddings,
            reference="Dosovitskiy et al., An image is worth 16x16 words, ICLR 2021",
        ),
        BackboneSpec(
            "efficientnet_b0",
            tvm.efficientnet_b0,
            1280,
            head="classifier.1",
            first_conv="features.0.0",
            gradcam_layer="features.8",
            weights_enum=tvm.EfficientNet_B0_Weights,
            family="efficientnet",
            reference="Tan & Le, EfficientNet, ICML 2019",
        ),
        BackboneSpec(
            "mobilenet_v3_large",
            tvm.mobilenet_v3_large,
            1280,
            head="classifier.3",
            first_conv="features.0.0",
            gradcam_layer="features.16",
            weights_enum=tvm.MobileNet_V3_Large_Weights,
            family="mobilenet",
            reference="Howard et al., Searching for MobileNetV3, ICCV 2019",
        ),
    ]
    return entries


for _spec in _torchvision_entries():
    register_backbone(_spec)
del _spec
