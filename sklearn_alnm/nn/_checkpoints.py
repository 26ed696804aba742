"""Offline weights of the torchvision segmentation and detection networks (private).

DeepLabV3 and Mask R-CNN take weights of the whole network or of their trunk only, as a
torchvision weights name whose file is already in the torch hub cache or as a local checkpoint
(never a download). The helpers here resolve them, build the torchvision model with cached
files, adapt its first convolution to any number of input channels and load checkpoints of
either kind, with errors that say what does not fit.
"""

import os
import types

from torch import nn

from .._logging import get_logger
from ._backbones import Backbone, _set_submodule, conv_for_channels, resolve_weights
from ._weights import (
    _describe,
    adapt_conv_weight,
    describe_mismatch,
    hub_checkpoint_path,
    read_state_dict,
    resolve_spec_weights,
)

_log = get_logger(__name__)


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
    problems = describe_mismatch(state, expected, missing, unexpected)
    if problems:
        raise ValueError(
            f"{where} does not fit the network: " + problems + ". Was it saved from "
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


def _weights_label(resolved):
    if resolved is None:
        return None
    if isinstance(resolved, os.PathLike):
        return os.fspath(resolved)
    return f"{type(resolved).__name__}.{resolved.name}"
