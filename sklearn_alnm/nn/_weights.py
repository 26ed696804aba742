"""Offline weight handling for the backbones: torchvision names, the hub cache and checkpoints.

Nothing here downloads. A torchvision weights name (``"DEFAULT"``, ``"IMAGENET1K_V1"``,
``"ResNet18_Weights.IMAGENET1K_V1"``) is usable only when its file already lies in the local
torch hub cache, ``torch.hub.get_dir()/checkpoints/<file name of the weights' URL>`` (the place
``torchvision`` itself would download it to; ``TORCH_HOME`` moves it). Otherwise the error says
which file to put where. A local checkpoint file is read as a state dict and matched key by key
against the network, so that a checkpoint of another architecture fails loudly instead of
loading half its weights.
"""

import hashlib
import os
import re
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn
from torchvision.models import WeightsEnum

from .._logging import get_logger

_log = get_logger(__name__)

#: File suffixes taken as checkpoint paths even when the file does not exist (to say so).
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".tar", ".pkl")

#: Keys under which training scripts commonly nest the state dict of a checkpoint.
_NESTED_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "network")

#: Prefixes added by wrappers (DataParallel / DDP, ``torch.compile``, Lightning-style modules).
_WRAPPER_PREFIXES = ("module.", "_orig_mod.", "model.", "backbone.", "encoder_q.")


class WeightsNotAvailableError(FileNotFoundError):
    """Pretrained weights were requested by name but their file is not in the local hub cache.

    The message names the expected file, the folder it must be copied to and its download URL
    (for fetching on another machine), and reminds that a checkpoint path can be passed instead.
    """


def hub_checkpoint_path(weights):
    """Where the torch hub cache keeps the file of a torchvision weights enum member.

    Parameters
    ----------
    weights : torchvision.models.WeightsEnum
        For example ``torchvision.models.ResNet18_Weights.IMAGENET1K_V1``.

    Returns
    -------
    pathlib.Path
        ``torch.hub.get_dir()/checkpoints/<file name of weights.url>``, whether it exists or not.

    Examples
    --------
    >>> from torchvision.models import ResNet18_Weights
    >>> from sklearn_alnm.nn import hub_checkpoint_path
    >>> hub_checkpoint_path(ResNet18_Weights.IMAGENET1K_V1).name
    'resnet18-f37072fd.pth'
    """
    file_name = os.path.basename(urlparse(weights.url).path)
    return Path(torch.hub.get_dir()) / "checkpoints" / file_name


def _weights_label(member):
    return f"{type(member).__name__}.{member.name}"


def _require_hub_file(spec, member):
    path = hub_checkpoint_path(member)
    if not path.is_file():
        raise WeightsNotAvailableError(
            f"The pretrained weights {_weights_label(member)} of backbone {spec.name!r} are not "
            f"available offline, and weights are never downloaded. Put the file "
            f"{path.name!r} into the folder {os.fspath(path.parent)!r} (the torch hub cache: "
            f"torch.hub.get_dir() + '/checkpoints'; set TORCH_HOME to move it), e.g. after "
            f"fetching {member.url} on a machine with internet access, or pass the path of a "
            f"local checkpoint file as weights=."
        )
    return path


def _looks_like_path(value):
    if isinstance(value, os.PathLike):
        return True
    return (
        os.sep in value
        or "/" in value
        or value.lower().endswith(CHECKPOINT_SUFFIXES)
        or os.path.isfile(value)
    )


def resolve_spec_weights(spec, weights):
    """Resolve ``weights`` for ``spec`` (see :func:`sklearn_alnm.nn.resolve_weights`)."""
    if weights is None:
        return None
    enum = spec.weights_enum
    if isinstance(weights, WeightsEnum):
        if enum is None or not isinstance(weights, enum):
            raise ValueError(
                f"weights={_weights_label(weights)} do not belong to backbone {spec.name!r}; "
                + _valid_weights_text(spec)
            )
        _require_hub_file(spec, weights)
        return weights
    if not isinstance(weights, str | os.PathLike):
        raise TypeError(
            "weights must be None, a torchvision weights name or enum member, or the path of a "
            f"checkpoint file; got {type(weights).__name__}."
        )
    if isinstance(weights, str) and not os.path.isfile(weights):
        member = _weights_member(spec, weights)
        if member is not None:
            _require_hub_file(spec, member)
            return member
    if _looks_like_path(weights):
        path = Path(weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"checkpoint file {os.fspath(path)!r} for backbone {spec.name!r} does not exist."
            )
        return path
    raise ValueError(
        f"weights={weights!r} is not recognised for {spec.name!r}; " + _valid_weights_text(spec)
    )


def _weights_member(spec, text):
    """The enum member named by ``text`` (case-insensitive), or ``None`` if it names none."""
    enum = spec.weights_enum
    name = text.strip()
    if "." in name:
        owner, _, member = name.rpartition(".")
        owner = owner.rpartition(".")[2]  # allow "torchvision.models.ResNet18_Weights.X"
        if enum is None or owner.lower() != enum.__name__.lower():
            if re.fullmatch(r"[A-Za-z]\w*_Weights", owner):
                raise ValueError(
                    f"weights={text!r} belong to another architecture than {spec.name!r}; "
                    + _valid_weights_text(spec)
                )
            return None
        name = member
    if enum is None:
        if name.upper() == "DEFAULT":
            raise ValueError(
                f"backbone {spec.name!r} has no torchvision pretrained weights; pass weights=None "
                "or the path of a checkpoint file."
            )
        return None
    members = {key.upper(): value for key, value in enum.__members__.items()}
    return members.get(name.upper())


def _valid_weights_text(spec):
    if spec.weights_enum is None:
        return "expected None or the path of a checkpoint file."
    names = ["DEFAULT", *(m for m in spec.weights_enum.__members__ if m != "DEFAULT")]
    return (
        f"expected None, one of {names} (also written as "
        f"'{spec.weights_enum.__name__}.<name>'), or the path of a checkpoint file."
    )


def read_state_dict(source):
    """Read a checkpoint (path or mapping) into a flat ``{key: tensor}`` state dict on the CPU.

    Accepts a state dict, or a dict holding one under ``"state_dict"``, ``"model_state_dict"``,
    ``"model"``, ``"module"``, ``"net"`` or ``"network"`` (as training scripts save them).
    Files are read with ``torch.load(..., weights_only=True)``: no code from the file runs.
    """
    where = "the checkpoint"
    if isinstance(source, str | os.PathLike):
        where = f"checkpoint {os.fspath(source)!r}"
        try:
            source = torch.load(source, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ValueError(
                f"could not read {where} ({type(exc).__name__}: {exc}); expected a file saved "
                "with torch.save(model.state_dict(), path)."
            ) from exc
    state = source
    for _ in range(3):  # unwrap {"state_dict": {...}} style nesting
        if not isinstance(state, dict):
            break
        if state and all(isinstance(v, torch.Tensor) for v in state.values()):
            return {str(k): v for k, v in state.items()}
        nested = next((state[k] for k in _NESTED_KEYS if isinstance(state.get(k), dict)), None)
        if nested is None:
            break
        state = nested
    raise ValueError(
        f"{where} does not hold a state dict: expected a mapping of parameter names to tensors, "
        f"possibly under one of the keys {list(_NESTED_KEYS)}; got {type(source).__name__}"
        + (f" with keys {sorted(map(str, source))[:10]}" if isinstance(source, dict) else "")
        + "."
    )


def _strip_wrapper_prefixes(state, expected):
    """Drop prefixes shared by every key (``module.``, ``net.`` of a Backbone, ...)."""
    changed = True
    while changed and state:
        changed = False
        for prefix in _WRAPPER_PREFIXES:
            if all(k.startswith(prefix) for k in state) and not any(
                k.startswith(prefix) for k in expected
            ):
                state = {k[len(prefix) :]: v for k, v in state.items()}
                changed = True
    if state and all(k.startswith(("net.", "head.")) for k in state):
        # a Backbone's own state dict: the network under "net.", its head under "head."
        head = [k for k in state if k.startswith("head.")]
        return {k[4:]: v for k, v in state.items() if k.startswith("net.")}, head
    return state, []


def adapt_conv_weight(weight, in_chans):
    """Adapt RGB convolution kernels ``(out, 3, kh, kw)`` to ``in_chans`` input channels.

    For one channel the three RGB kernels are summed, so the network computes on a grayscale
    image exactly what it computed on that image replicated to three channels. For
    ``in_chans > 1`` the RGB kernels are repeated cyclically and scaled by ``3 / in_chans``,
    which keeps the scale of the first layer's response about the same.

    Parameters
    ----------
    weight : torch.Tensor of shape (out_channels, 3, kh, kw)
    in_chans : int

    Returns
    -------
    torch.Tensor of shape (out_channels, in_chans, kh, kw)
    """
    if in_chans == weight.shape[1]:
        return weight
    if in_chans == 1:
        return weight.sum(dim=1, keepdim=True)
    index = torch.arange(in_chans) % weight.shape[1]
    return weight[:, index] * (weight.shape[1] / in_chans)


def _describe(keys, limit=8):
    keys = sorted(keys)
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def describe_mismatch(state, expected, missing, unexpected):
    """What keeps a checkpoint's ``state`` from a model's ``expected`` state dict, in words
    (missing and unexpected keys, shape mismatches), or ``""`` when it fits."""
    mismatched = [
        f"{k}: checkpoint {tuple(state[k].shape)}, model {tuple(expected[k].shape)}"
        for k in state
        if k in expected and state[k].shape != expected[k].shape
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s): {_describe(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s): {_describe(unexpected)}")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatch(es): {_describe(mismatched, 4)}")
    return "; ".join(problems)


def match_state_dict(spec, net, state, *, in_chans=3, where="the checkpoint"):
    """Fit ``state`` to ``net`` (a backbone network without its head) or raise listing the misfit.

    Head keys (``spec.head``, auxiliary heads) are ignored; RGB first-convolution kernels are
    adapted to ``in_chans``; the spec's ``adapt_state_dict`` hook fixes legacy key names and
    resizes position embeddings. Returns ``(state, ignored_keys)``.
    """
    expected = net.state_dict()
    state, ignored = _strip_wrapper_prefixes(state, expected)
    if spec.adapt_state_dict is not None:
        state = spec.adapt_state_dict(dict(state), net)
    head_prefixes = tuple(f"{name}." for name in (spec.head, *spec.aux_heads))
    ignored += [k for k in state if k.startswith(head_prefixes) and k not in expected]
    state = {k: v for k, v in state.items() if k not in ignored}
    first = f"{spec.first_conv}.weight"
    if first in state and first in expected:
        tensor = state[first]
        if tensor.ndim == 4 and tensor.shape[1] == 3 and expected[first].shape[1] == in_chans:
            state[first] = adapt_conv_weight(tensor, in_chans)
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    problems = describe_mismatch(state, expected, missing, unexpected)
    if problems:
        raise ValueError(
            f"{where} does not fit backbone {spec.name!r} (in_chans={in_chans}): "
            + problems
            + ". Was it saved from another architecture? Head keys "
            + f"({', '.join(p + '*' for p in head_prefixes)}) are ignored."
        )
    for k, v in expected.items():  # old checkpoints lack BatchNorm's counters
        if k not in state:
            state[k] = v
    if ignored:
        _log.info("%s: ignored %d head key(s): %s", where, len(ignored), _describe(ignored))
    return state, sorted(ignored)


def state_dict_fingerprint(module):
    """SHA-256 of a module's state dict (names, dtypes, shapes and bytes of every tensor).

    Two modules get the same fingerprint exactly when their parameters and buffers are equal
    bit for bit; it identifies the weights in cache keys.

    Parameters
    ----------
    module : torch.nn.Module or dict of str to torch.Tensor

    Returns
    -------
    str
        64 hexadecimal digits.

    Examples
    --------
    >>> import torch
    >>> from sklearn_alnm.nn import state_dict_fingerprint
    >>> a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    >>> with torch.no_grad():
    ...     _ = b.weight.copy_(a.weight), b.bias.copy_(a.bias)
    >>> state_dict_fingerprint(a) == state_dict_fingerprint(b)
    True
    """
    state = module.state_dict() if isinstance(module, nn.Module) else module
    digest = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key].detach().cpu().contiguous()
        digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
