"""Grad-CAM heat maps of image classifiers, overlays and a figure panel of chosen cases.

Grad-CAM (Selvaraju et al., 2017) weighs the feature maps ``A_k`` of a convolutional layer by
the spatial mean of the gradient of a class score ``y_c`` with respect to them and keeps the
positive part of the weighted sum: ``L_c = ReLU(sum_k mean_ij(dy_c / dA_k_ij) A_k)``. The map
lives on the layer's grid; it is upsampled bilinearly to the network input and scaled to
``[0, 1]``. It is computed here with a forward hook on the layer and
:func:`torch.autograd.grad`, so parameter gradients (``.grad``) are never touched.
"""

import difflib
import itertools
import numbers
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Colormap, Normalize
from matplotlib.figure import Figure
from sklearn.exceptions import NotFittedError
from torch import nn

from .._typing import ArrayLike
from ..utils import resolve_pos_label

__all__ = ["grad_cam", "key_frames", "overlay", "plot_gradcam"]


# ----------------------------------------------------------------------------- model access


def _is_classifier(model):
    return not isinstance(model, nn.Module) and (
        hasattr(model, "prepare_images")
        or hasattr(model, "prepare_clips")
        or hasattr(model, "module_")
    )


def _module_device(module, fallback=None):
    tensor = next(itertools.chain(module.parameters(), module.buffers()), None)
    if tensor is not None:
        return tensor.device
    return torch.device(fallback) if fallback is not None else torch.device("cpu")


def _module_dtype(module):
    for param in module.parameters():
        if param.is_floating_point():
            return param.dtype
    return torch.float32


def _as_batch(x, what="X"):
    """A float tensor ``(N, C, H, W)`` on the CPU (numpy arrays are converted)."""
    if isinstance(x, np.ndarray):
        if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
            raise TypeError(f"{what} must hold numbers; got an array of dtype {x.dtype}.")
        x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"{what} must be a torch.Tensor or numpy array of shape (N, C, H, W) when the model "
            f"is a torch module; got {type(x).__name__}."
        )
    if x.ndim not in (4, 5):
        raise ValueError(
            f"{what} must be a batch of clips (N, C, T, H, W) or of images of shape "
            f"(N, C, H, W); got shape {tuple(x.shape)}."
        )
    if not x.is_floating_point():
        x = x.float()
    return x


def _resolve_model(model, X, branch=None):
    """``(module, images (N, C, H, W) CPU tensor, device, classes or None, view or None)``.

    ``view`` is set for a multimodal model: what runs the fused network with ``branch``'s
    images replaced by the batch being explained (``view.call(module, x, rows)``) and its
    default layer (``view.layer``)."""
    view = None
    if branch is not None and not hasattr(model, "_gradcam_view"):
        raise ValueError(
            f"branch={branch!r} applies to a multimodal model (MultimodalFusionClassifier); "
            f"{type(model).__name__} has one input."
        )
    if hasattr(model, "_gradcam_view"):
        view = model._gradcam_view(X, branch)
        module = model.module_
        device = _module_device(module, fallback=getattr(model, "device_", None))
        return module, _as_batch(view.images), device, model.classes_, view
    if isinstance(model, nn.Module):
        return model, _as_batch(X), _module_device(model), None, None
    if _is_classifier(model):
        if not isinstance(getattr(model, "module_", None), nn.Module):
            raise NotFittedError(
                f"This {type(model).__name__} instance is not fitted yet (it has no module_); "
                "call fit before computing Grad-CAM maps."
            )
        prepare = getattr(model, "prepare_images", None) or getattr(model, "prepare_clips", None)
        if prepare is None:
            raise TypeError(
                f"{type(model).__name__} has no prepare_images (or prepare_clips) method to "
                "turn X into the network's input; pass its torch module and a tensor instead."
            )
        module = model.module_
        images = _as_batch(prepare(X), what=f"{prepare.__name__}(X)")
        device = _module_device(module, fallback=getattr(model, "device_", None))
        return module, images, device, getattr(model, "classes_", None), None
    raise TypeError(
        "model must be a fitted ImageClassifier (with module_ and prepare_images) or a "
        f"torch.nn.Module; got {type(model).__name__}."
    )


#: The default Grad-CAM layer is the deepest stage whose feature map has at least this many
#: cells along each side at the input size: a coarser map (a ResNet's last stage is 2 x 2 at
#: 64 px) cannot say where in the image the evidence is.
MIN_GRADCAM_CELLS = 7


def _grid_layer(module, images, device, dtype):
    """The default layer for ``images``: ``gradcam_layer``, or the deepest earlier stage with
    at least :data:`MIN_GRADCAM_CELLS` cells per side when ``gradcam_layer``'s map is coarser.

    The candidate stages are ``gradcam_layer`` and the siblings before it (a ResNet's
    ``layer1`` ... ``layer4``, a DenseNet's blocks); one forward pass of the first image
    measures their grids. Layers whose output is not a 4-D map (a ViT block) keep the default.
    """
    default = getattr(module, "gradcam_layer", None)
    if default is None:
        return None
    parent_name, _, leaf = default.rpartition(".")
    try:
        parent = module.get_submodule(parent_name) if parent_name else module
    except AttributeError:
        return default
    names = []
    for name, _ in parent.named_children():
        names.append(name)
        if name == leaf:
            break
    else:
        return default
    grids = {}

    def probe(name):
        def hook(_module, _args, output):
            if isinstance(output, torch.Tensor) and output.ndim == 4:
                grids[name] = tuple(output.shape[-2:])

        return hook

    handles = [parent.get_submodule(n).register_forward_hook(probe(n)) for n in names]
    modes = {sub: sub.training for sub in module.modules()}
    try:
        module.eval()
        with torch.inference_mode():
            module(images[:1].to(device=device, dtype=dtype))
    finally:
        for handle in handles:
            handle.remove()
        for sub, mode in modes.items():
            sub.training = mode
    if leaf not in grids or min(grids[leaf]) >= MIN_GRADCAM_CELLS:
        return default
    fine = [n for n in names if n in grids and min(grids[n]) >= MIN_GRADCAM_CELLS]
    chosen = fine[-1] if fine else max(grids, key=lambda n: min(grids[n]))
    return f"{parent_name}.{chosen}" if parent_name else chosen


def _resolve_layer(module, target_layer):
    """``(qualified name, submodule)`` of the Grad-CAM layer."""
    if target_layer is None:
        target_layer = getattr(module, "gradcam_layer", None)
        if target_layer is None:
            raise ValueError(
                f"{type(module).__name__} has no gradcam_layer attribute: pass target_layer "
                "(the qualified name of a convolutional layer, e.g. 'layer4', or the layer "
                "itself)."
            )
    if isinstance(target_layer, nn.Module):
        for name, sub in module.named_modules():
            if sub is target_layer:
                return name, sub
        raise ValueError(
            f"target_layer {type(target_layer).__name__} is not a submodule of the model."
        )
    if not isinstance(target_layer, str):
        raise TypeError(
            "target_layer must be None, a submodule name or a torch.nn.Module; got "
            f"{type(target_layer).__name__}."
        )
    try:
        return target_layer, module.get_submodule(target_layer)
    except AttributeError:
        names = [name for name, _ in module.named_modules() if name]
        close = difflib.get_close_matches(target_layer, names, n=3, cutoff=0.6)
        hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise ValueError(
            f"unknown target_layer {target_layer!r}: the model has no submodule of that name "
            f"(names are dotted paths from named_modules(), e.g. {names[-1]!r}).{hint}"
        ) from None


def _default_class(model, classes):
    """The class explained by default: the positive class of a binary classifier, output 1 of
    a torch module. Never guessed from the sorted order of string labels."""
    if classes is None:
        return 1
    classes = list(classes)
    if len(classes) != 2:
        raise ValueError(
            f"The classifier has {len(classes)} classes {classes}; name the class to explain "
            "with class_index."
        )
    pos_label = getattr(model, "pos_label_", None)
    return resolve_pos_label(classes, pos_label, owner="grad_cam", name="the classifier's classes")


def _class_position(class_index, classes):
    """Position of ``class_index`` among the outputs: ints are positions, else labels."""
    if isinstance(class_index, numbers.Integral) and not isinstance(class_index, bool):
        return int(class_index)
    if classes is not None:
        for position, label in enumerate(list(classes)):
            try:
                equal = bool(label == class_index)
            except (TypeError, ValueError):
                equal = False
            if equal:
                return position
        raise ValueError(
            f"class_index={class_index!r} is neither a position nor one of the classes "
            f"{list(classes)}."
        )
    raise ValueError(
        f"class_index must be an int (the output column) for a torch module; got {class_index!r}."
    )


def _patch_size(module):
    spec = getattr(module, "spec", None)
    if getattr(spec, "patch_size", None):
        return int(spec.patch_size)
    for sub in module.modules():
        size = getattr(sub, "patch_size", None)
        if isinstance(size, numbers.Integral) and not isinstance(size, bool) and size > 0:
            return int(size)
    return None


def _token_grid(n_tokens, height, width, patch):
    """``(prefix tokens, grid height, grid width)`` of a ViT token sequence, or ``None``."""
    if patch:
        gh, gw = height // patch, width // patch
        prefix = n_tokens - gh * gw
        return (prefix, gh, gw) if gh * gw > 0 and 0 <= prefix <= 8 else None
    for prefix in (1, 0):  # class token, or none
        count = n_tokens - prefix
        for gh in range(1, count + 1):
            if count % gh == 0 and gh * width == (count // gh) * height:
                return prefix, gh, count // gh
    return None


def _spatial(tensor, height, width, patch, layer_name):
    """Feature maps ``(N, C, h, w)`` from a layer output (maps, or ViT tokens)."""
    if tensor.ndim == 4:
        return tensor
    if tensor.ndim == 3:
        grid = _token_grid(tensor.shape[1], height, width, patch)
        if grid is not None:
            prefix, gh, gw = grid
            tokens = tensor[:, prefix:, :]
            return tokens.reshape(tensor.shape[0], gh, gw, tensor.shape[2]).permute(0, 3, 1, 2)
    raise ValueError(
        f"Grad-CAM is unsupported for layer {layer_name!r}: its output of shape "
        f"{tuple(tensor.shape)} is neither feature maps (N, C, h, w) nor vision-transformer "
        f"tokens (N, [class token +] h*w, D) on a grid matching the {height}x{width} input. "
        "Choose a convolutional layer (or a ViT encoder block's LayerNorm) as target_layer."
    )


def _volume(tensor, n_clips, layer_name):
    """Feature volumes ``(N, C, t, h, w)`` of a video network's layer: a 3-D network's output
    as it is, a 2-D network's per-frame maps ``(N * t, C, h, w)`` regrouped by clip."""
    if tensor.ndim == 5:
        return tensor
    if tensor.ndim == 4 and tensor.shape[0] % n_clips == 0:
        frames = tensor.shape[0] // n_clips
        return tensor.view(n_clips, frames, *tensor.shape[1:]).transpose(1, 2)
    raise ValueError(
        f"Grad-CAM is unsupported for layer {layer_name!r} of a video network: its output of "
        f"shape {tuple(tensor.shape)} is neither (N, C, t, h, w) nor per-frame maps."
    )


def _cam(acts, grads, size):
    """Grad-CAM of feature maps ``(N, C, *grid)``: gradient-weighted sum, ReLU, resized to
    ``size`` (bilinear for images, trilinear over time and space for clips); ``(N, *size)``."""
    dims = tuple(range(2, acts.ndim))
    weights = grads.mean(dim=dims, keepdim=True)
    cam = torch.relu((weights * acts).sum(dim=1, keepdim=True))
    if tuple(cam.shape[2:]) != tuple(size):
        mode = "bilinear" if len(size) == 2 else "trilinear"
        cam = F.interpolate(cam, size=tuple(size), mode=mode, align_corners=False)
    return cam[:, 0]


def key_frames(heatmaps: ArrayLike) -> np.ndarray:
    """The key frame of each clip's Grad-CAM map: the frame holding the largest share of it.

    Parameters
    ----------
    heatmaps : ndarray of shape (N, T, H, W)
        :func:`grad_cam` of a video model.

    Returns
    -------
    ndarray of int, shape (N,)

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_alnm.explain import key_frames
    >>> heat = np.zeros((1, 3, 2, 2)); heat[0, 2] = 1.0
    >>> key_frames(heat).tolist()
    [2]
    """
    heatmaps = np.asarray(heatmaps)
    if heatmaps.ndim != 4:
        raise ValueError(f"expected clip heat maps (N, T, H, W); got shape {heatmaps.shape}.")
    return heatmaps.reshape(*heatmaps.shape[:2], -1).sum(axis=2).argmax(axis=1)


def _scores(output, position):
    """The class scores ``(N,)`` to differentiate and the class probabilities ``(N,)``."""
    if isinstance(output, tuple | list) and output and isinstance(output[0], torch.Tensor):
        output = output[0]
    if not isinstance(output, torch.Tensor):
        raise TypeError(
            f"the model's output must be a tensor of logits; got {type(output).__name__}."
        )
    if output.ndim == 2 and output.shape[1] == 1:
        output = output[:, 0]
    if output.ndim == 1:  # a single logit: class 1 is the logit, class 0 its negative
        if position not in (0, 1):
            raise ValueError(
                f"class_index={position} is out of range for a model with a single logit "
                "(binary output): use 0 or 1."
            )
        sign = 1.0 if position == 1 else -1.0
        return sign * output, torch.sigmoid(sign * output.detach().float())
    if output.ndim != 2:
        raise ValueError(
            f"the model's output must have shape (N,), (N, 1) or (N, K); got {tuple(output.shape)}."
        )
    if not -output.shape[1] <= position < output.shape[1]:
        raise ValueError(
            f"class_index={position} is out of range for a model with {output.shape[1]} outputs."
        )
    probabilities = torch.softmax(output.detach().float(), dim=1)[:, position]
    return output[:, position], probabilities


def _compute(model, X, *, target_layer=None, class_index=None, batch_size=16, branch=None):
    """Heat maps (N, H, W), probabilities of the class (N,), input images (N, C, H, W)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
        raise ValueError(f"batch_size must be a positive int; got {batch_size!r}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive int; got {batch_size!r}.")
    module, images, device, classes, view = _resolve_model(model, X, branch)
    dtype = _module_dtype(module)
    if view is not None and target_layer is None:
        target_layer = view.layer
    elif target_layer is None and len(images):
        target_layer = _grid_layer(module, images, device, dtype)
    layer_name, layer = _resolve_layer(module, target_layer)
    if class_index is None:
        class_index = _default_class(model, classes)
    position = _class_position(class_index, classes)
    n, height, width = images.shape[0], images.shape[-2], images.shape[-1]
    n_frames = images.shape[2] if images.ndim == 5 else None
    patch = _patch_size(module)
    captured = []
    cells = None

    def hook(_module, _args, output):
        if not isinstance(output, torch.Tensor):
            raise ValueError(
                f"Grad-CAM is unsupported for layer {layer_name!r}: its output is a "
                f"{type(output).__name__}, not a tensor. Choose another target_layer."
            )
        captured.append(output)
        # later in-place operations (e.g. DenseNet's final ReLU) act on the copy, so the
        # captured maps and their gradient are those of the layer itself
        return output.clone()

    maps, probabilities = [], []
    modes = {sub: sub.training for sub in module.modules()}
    handle = layer.register_forward_hook(hook)
    try:
        module.eval()
        with torch.inference_mode(False), torch.enable_grad():
            for start in range(0, n, batch_size):
                captured.clear()
                x = images[start : start + batch_size].clone().to(device=device, dtype=dtype)
                x.requires_grad_(True)  # so that frozen networks still have a graph
                if view is None:
                    output = module(x)
                else:
                    output = view.call(module, x, slice(start, start + len(x)))
                if not captured:
                    raise ValueError(
                        f"layer {layer_name!r} did not run in the forward pass; choose a layer "
                        "on the path to the logits as target_layer."
                    )
                if len(captured) > 1:
                    raise ValueError(
                        f"layer {layer_name!r} ran {len(captured)} times in one forward pass; "
                        "Grad-CAM needs a layer that runs exactly once (a shared module such "
                        "as a reused activation cannot be hooked)."
                    )
                score, prob = _scores(output, position)
                (grad,) = torch.autograd.grad(score.sum(), captured[0], allow_unused=True)
                if grad is None:
                    raise ValueError(
                        f"layer {layer_name!r} does not influence the model's output; choose "
                        "a layer on the path to the logits as target_layer."
                    )
                if n_frames is None:
                    acts = _spatial(captured[0].detach().float(), height, width, patch, layer_name)
                    grads = _spatial(grad.detach().float(), height, width, patch, layer_name)
                    cam = _cam(acts, grads, (height, width))
                else:
                    acts = _volume(captured[0].detach().float(), len(x), layer_name)
                    grads = _volume(grad.detach().float(), len(x), layer_name)
                    cam = _cam(acts, grads, (n_frames, height, width))
                cells = tuple(acts.shape[-2:])
                dims = tuple(range(1, cam.ndim))
                peak = cam.amax(dim=dims, keepdim=True)
                cam = torch.where(peak > 0, cam / peak.clamp_min(1e-30), torch.zeros_like(cam))
                maps.append(cam.clamp_(0.0, 1.0).cpu())
                probabilities.append(prob.cpu())
                del output, score, grad, acts, grads, x
                captured.clear()
    finally:
        handle.remove()
        captured.clear()
        for sub, mode in modes.items():
            sub.training = mode
    if maps:
        heat = torch.cat(maps).numpy().astype(np.float32, copy=False)
        prob = torch.cat(probabilities).numpy().astype(np.float64, copy=False)
    else:
        grid = (height, width) if n_frames is None else (n_frames, height, width)
        heat = np.zeros((0, *grid), dtype=np.float32)
        prob = np.zeros(0)
    label = None
    if classes is not None and -len(classes) <= position < len(classes):
        label = classes[position]
    return heat, prob, images, label, _LayerGrid(layer_name, cells, (height, width))


class _LayerGrid(NamedTuple):
    """The Grad-CAM layer, its map's grid and the input's size (for captions)."""

    layer: str
    cells: tuple | None
    input_size: tuple

    def caption(self):
        grid = "" if self.cells is None else f": {self.cells[0]} x {self.cells[1]} cells"
        return (
            f"Grad-CAM of layer {self.layer}{grid} at the network's "
            f"{self.input_size[0]} x {self.input_size[1]} px input"
        )


def grad_cam(
    model: Any,
    X: Any,
    *,
    target_layer: str | nn.Module | None = None,
    class_index: Any = None,
    batch_size: int = 16,
    branch: str | None = None,
) -> np.ndarray:
    """Grad-CAM heat maps of a class, one per image, on the network's input grid.

    For each image the gradient of the class score (the logit of ``class_index``) with respect
    to the output of ``target_layer`` is averaged over space to weigh the layer's feature
    maps; the positive part of the weighted sum is upsampled bilinearly from the layer's
    resolution to the input's ``(H, W)`` and divided by its maximum. The network runs in
    evaluation mode on the model's device; its training flags, ``requires_grad`` flags and
    parameter gradients are left as they were, and the hook is removed even on error.

    Parameters
    ----------
    model : fitted ImageClassifier or torch.nn.Module
        A fitted :class:`~sklearn_alnm.models.ImageClassifier` (its ``module_``, device and
        ``prepare_images`` are used, so the maps are those of what it predicts from), or a
        torch module returning logits of shape ``(N, K)``, ``(N, 1)`` or ``(N,)`` (e.g. a
        :class:`sklearn_alnm.nn.Backbone` with ``num_classes``).
    X : cohort DataFrame, or tensor / array of shape (N, C, H, W) or (N, C, T, H, W)
        For a classifier, what its ``predict_proba`` accepts; for a torch module, the input
        batch exactly as the module takes it (already normalised). Clips (a fitted
        :class:`~sklearn_alnm.models.VideoClassifier`, or a 5-D batch for a video network)
        give one map per clip over time and space: the gradient is averaged over the frames
        and the layer's grid (a 2-D network's per-frame maps are regrouped by clip) and the
        map is resized trilinearly to ``(T, H, W)``; :func:`key_frames` picks each clip's
        frame of largest share.
    target_layer : str, torch.nn.Module or None, default=None
        The layer whose feature maps are weighted: a dotted submodule name of the network
        (``"net.layer4"``) or the submodule itself. ``None`` uses the network's
        ``gradcam_layer`` attribute (every :class:`~sklearn_alnm.nn.Backbone` has one: the
        last convolutional stage; for ViT the last encoder block's first LayerNorm, whose
        patch tokens are reshaped to their grid and the class token dropped) when its map
        has at least ``MIN_GRADCAM_CELLS`` (7) cells per side at the input size, else the
        deepest earlier stage that has (a ResNet at 64 px: ``layer2``, 8 x 8, instead of
        ``layer4``, 2 x 2, whose map is one blob whatever the image).
        :func:`plot_gradcam` writes the layer and its grid under the panel.
    class_index : int, class label or None, default=None
        The output explained: an int is the output column; any other value is looked up in
        the classifier's ``classes_`` (e.g. ``"N+"``). ``None``: the positive class of a
        binary classifier (its ``pos_label_``, or 1 / True for 0/1 or boolean labels; other
        labels without ``pos_label_`` raise rather than take the second sorted label, which
        is "N0" for "N0" / "N+"), and output 1 of a torch module. For a single logit, class 1
        is the logit and class 0 its negative.
    batch_size : int, default=16
        Images per forward / backward pass.
    branch : str or None, default=None
        For a fitted :class:`~sklearn_alnm.models.MultimodalFusionClassifier` (required
        there): the modality explained. The fused network runs on every modality of each
        patient and the map is that of the fused output with respect to ``branch``'s layer
        (by default its backbone's ``gradcam_layer``), on ``branch``'s input grid. A patient
        without that modality gets the map of a zero image. Other models take no branch.

    Returns
    -------
    heatmaps : ndarray of shape (N, H, W) or, for clips, (N, T, H, W), float32
        Values in ``[0, 1]``, 1 at each map's maximum; all zeros where no feature map speaks
        for the class.

    Raises
    ------
    ValueError
        Unknown ``target_layer`` (close names are suggested), a layer whose output is neither
        feature maps nor ViT tokens ("unsupported"), a bad input shape, or a ``class_index``
        out of range / not among ``classes_``.
    TypeError
        For a ``model`` or ``X`` of the wrong kind.
    sklearn.exceptions.NotFittedError
        For a classifier that is not fitted.

    References
    ----------
    Selvaraju RR, Cogswell M, Das A, Vedantam R, Parikh D, Batra D. Grad-CAM: visual
    explanations from deep networks via gradient-based localization. ICCV 2017.

    Examples
    --------
    >>> import torch
    >>> from sklearn_alnm.nn import Backbone
    >>> from sklearn_alnm.explain import grad_cam
    >>> model = Backbone("plnet", in_chans=1, num_classes=2, seed=0)
    >>> x = torch.rand(3, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    >>> heat = grad_cam(model, x)  # default layer: model.gradcam_layer
    >>> heat.shape, heat.dtype, bool(heat.min() >= 0 and heat.max() <= 1)
    ((3, 32, 32), dtype('float32'), True)
    >>> model.training  # the module's state is restored
    True
    """
    heat, _, _, _, _ = _compute(
        model,
        X,
        target_layer=target_layer,
        class_index=class_index,
        batch_size=batch_size,
        branch=branch,
    )
    return heat


# ------------------------------------------------------------------------------- overlays


def _to_unit_rgb(image):
    """An ``(H, W, 3)`` float array in ``[0, 1]`` from a grayscale / RGB(A) image."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 4:
        image = image[..., :3]  # drop alpha
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[-1] == 3)):
        raise ValueError(
            "image must be of shape (H, W) or (H, W, C) with C in (1, 3, 4); got shape "
            f"{image.shape}."
        )
    if not (np.issubdtype(image.dtype, np.number) or image.dtype == bool):
        raise TypeError(f"image must hold numbers; got dtype {image.dtype}.")
    if image.dtype == np.uint8:
        unit = image.astype(np.float64) / 255.0
    else:
        unit = image.astype(np.float64)
        if not np.all(np.isfinite(unit)):
            raise ValueError("image holds NaN or infinite values.")
        low, high = (unit.min(), unit.max()) if unit.size else (0.0, 1.0)
        if image.dtype == bool or (low >= 0.0 and high <= 1.0):
            pass
        elif high > low:
            unit = (unit - low) / (high - low)
        else:
            unit = np.zeros_like(unit)
    if unit.ndim == 2:
        unit = np.repeat(unit[..., None], 3, axis=-1)
    return unit


def _resize(heatmap, shape):
    if heatmap.shape == tuple(shape):
        return heatmap
    tensor = torch.from_numpy(np.ascontiguousarray(heatmap, dtype=np.float32))[None, None]
    resized = F.interpolate(tensor, size=tuple(shape), mode="bilinear", align_corners=False)
    return resized[0, 0].numpy().astype(np.float64)


def _colormap(cmap):
    if isinstance(cmap, Colormap):
        return cmap
    if not isinstance(cmap, str):
        raise TypeError(f"cmap must be a colormap name or Colormap; got {type(cmap).__name__}.")
    try:
        return colormaps[cmap]
    except KeyError:
        raise ValueError(f"cmap={cmap!r} is not a matplotlib colormap name.") from None


def _check_alpha(alpha):
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be a float in [0, 1]; got {alpha!r}.")
    return float(alpha)


def overlay(
    image: ArrayLike, heatmap: ArrayLike, *, alpha: float = 0.4, cmap: str | Colormap = "jet"
) -> np.ndarray:
    """Blend a heat map, coloured by a colormap, over an image, for figures.

    Parameters
    ----------
    image : array-like of shape (H, W) or (H, W, C), C in (1, 3, 4)
        Grayscale or RGB(A) image (alpha dropped). ``uint8`` values are divided by 255; other
        values already in ``[0, 1]`` are kept, otherwise the image is min-max scaled.
    heatmap : array-like of shape (h, w)
        Values in ``[0, 1]`` (clipped), e.g. one map of :func:`grad_cam`; resized bilinearly
        to ``(H, W)`` when its size differs.
    alpha : float, default=0.4
        Weight of the coloured heat map: ``(1 - alpha) * image + alpha * cmap(heatmap)``.
    cmap : str or matplotlib.colors.Colormap, default="jet"

    Returns
    -------
    ndarray of shape (H, W, 3)
        RGB floats in ``[0, 1]``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_alnm.explain import overlay
    >>> image = np.full((64, 48), 128, dtype=np.uint8)
    >>> heat = np.zeros((8, 6))
    >>> heat[2:4, 2:4] = 1.0
    >>> blended = overlay(image, heat, alpha=0.5)
    >>> blended.shape, bool(blended.min() >= 0 and blended.max() <= 1)
    ((64, 48, 3), True)
    """
    alpha = _check_alpha(alpha)
    colors = _colormap(cmap)
    rgb = _to_unit_rgb(image)
    heat = np.asarray(heatmap.detach().cpu() if isinstance(heatmap, torch.Tensor) else heatmap)
    if heat.ndim != 2 or heat.size == 0:
        raise ValueError(f"heatmap must be a non-empty 2-D array; got shape {heat.shape}.")
    heat = heat.astype(np.float64)
    if not np.all(np.isfinite(heat)):
        raise ValueError("heatmap holds NaN or infinite values.")
    heat = np.clip(_resize(np.clip(heat, 0.0, 1.0), rgb.shape[:2]), 0.0, 1.0)
    colored = colors(heat)[..., :3]
    return np.clip((1.0 - alpha) * rgb + alpha * colored, 0.0, 1.0)


# ---------------------------------------------------------------------------------- figure


def _with_notes(labels, notes):
    """Case labels with one note line each (``notes`` None: unchanged)."""
    if notes is None:
        return labels
    notes = [str(note) for note in notes]
    if len(notes) != len(labels):
        raise ValueError(
            f"notes must give one line per chosen case ({len(labels)}); got {len(notes)}."
        )
    return [f"{label}\n{note}" for label, note in zip(labels, notes)]


def _select(X, rows):
    """``(subset of X, case labels)`` for positions ``rows`` (None: all)."""
    n = len(X)
    if rows is None:
        positions = np.arange(n)
    else:
        try:
            positions = np.arange(n)[rows]
        except (IndexError, TypeError, ValueError) as exc:
            raise ValueError(
                f"rows must be None, a position, a sequence of positions or a boolean mask "
                f"over the {n} cases; got {rows!r} ({exc})."
            ) from None
        positions = np.atleast_1d(positions)
    if positions.size == 0:
        raise ValueError("no case selected: rows selects none of the cases.")
    if hasattr(X, "iloc"):
        subset = X.iloc[positions]
        labels = [str(label) for label in subset.index]
    else:
        if isinstance(X, torch.Tensor):
            subset = X[torch.as_tensor(positions)]
        elif isinstance(X, np.ndarray):
            subset = X[positions]
        else:  # a list of images or paths
            subset = [X[p] for p in positions]
        labels = [f"case {p}" for p in positions]
    return subset, labels


def _clip_frames(heat, clips, labels, titles, frames):
    """Clip maps ``(N, T, H, W)`` and clips ``(N, C, T, H, W)`` -> one case per chosen frame:
    ``(maps (M, H, W), frames (M, C, H, W), labels, titles)``."""
    n_frames = heat.shape[1]
    share = heat.reshape(*heat.shape[:2], -1).sum(axis=2)
    share = share / np.maximum(share.sum(axis=1, keepdims=True), 1e-30)
    if isinstance(frames, str) and frames == "key":
        chosen = [[int(k)] for k in key_frames(heat)]
    elif isinstance(frames, numbers.Integral) and not isinstance(frames, bool):
        if not 1 <= frames <= n_frames:
            raise ValueError(f"frames must be between 1 and the clips' {n_frames}; got {frames}.")
        chosen = [sorted(np.argsort(-row, kind="stable")[:frames].tolist()) for row in share]
    else:
        try:
            positions = [int(k) for k in frames]
        except (TypeError, ValueError):
            positions = None
        if not positions or any(not -n_frames <= k < n_frames for k in positions):
            raise ValueError(
                f'frames must be "key", a number of frames or frame positions of the clips\' '
                f"{n_frames} frames; got {frames!r}."
            )
        chosen = [[k % n_frames for k in positions]] * len(heat)
    maps, images, case_labels, case_titles = [], [], [], []
    for i, picked in enumerate(chosen):
        for k in picked:
            maps.append(heat[i, k])
            images.append(clips[i, :, k])
            case_labels.append(f"{labels[i]}, frame {k + 1}/{n_frames}")
            case_titles.append(f"{titles[i]}\nframe {k + 1}/{n_frames}: {share[i, k]:.0%} of map")
    return np.stack(maps), torch.stack(images), case_labels, case_titles


def _display_image(image):
    """A channel-last array for ``imshow`` from a network input ``(C, H, W)``."""
    array = image.detach().cpu().float().numpy()
    array = array[0] if array.shape[0] != 3 else np.moveaxis(array, 0, -1)
    return _to_unit_rgb(_unit(array))


def _unit(array):
    low, high = float(array.min()), float(array.max())
    return (array - low) / (high - low) if high > low else np.zeros_like(array)


def plot_gradcam(
    model: Any,
    X: Any,
    *,
    rows: Any = None,
    class_index: Any = None,
    target_layer: str | nn.Module | None = None,
    ncols: int = 4,
    show_image: bool = True,
    alpha: float = 0.4,
    cmap: str | Colormap = "jet",
    figsize: tuple[float, float] | None = None,
    ax: Any = None,
    batch_size: int = 16,
    frames: str | int | Sequence[int] = "key",
    branch: str | None = None,
    notes: Sequence[str] | None = None,
) -> Figure:
    """A panel of chosen cases: each network input and its Grad-CAM overlay, with the probability.

    For a video model each case shows frames of its clip (by default its key frame, the frame
    holding the largest share of the clip's map, see :func:`key_frames`) with that frame's
    part of the clip's map, titled with the frame's position and its share of the map.

    Parameters
    ----------
    model : fitted ImageClassifier, VideoClassifier or torch.nn.Module
        See :func:`grad_cam`.
    X : cohort DataFrame, or tensor / array of shape (N, C, H, W) or (N, C, T, H, W)
        See :func:`grad_cam`.
    rows : None, int, slice, sequence of int or boolean mask, default=None
        Positions of the cases to show (``None``: all). Titles name a DataFrame's index
        labels (patient ids), else ``case <position>``.
    class_index : int, class label or None, default=None
        The class explained (``None``: as in :func:`grad_cam`); its predicted probability is
        written in each title
        (softmax of the logits, or the sigmoid of a single logit).
    target_layer : str, torch.nn.Module or None, default=None
        See :func:`grad_cam`.
    ncols : int, default=4
        Cases per row of the panel.
    show_image : bool, default=True
        Draw each input image next to its overlay (two panels per case); otherwise overlays
        only.
    alpha : float, default=0.4
        Weight of the heat map in the overlay (see :func:`overlay`).
    cmap : str or matplotlib.colors.Colormap, default="jet"
    figsize : tuple of 2 float or None, default=None
        Size of a new figure (default: about 2.2 x 2.4 inches per panel).
    ax : sequence of matplotlib Axes or None, default=None
        Draw into these axes instead of a new figure: one per case, or two per case
        (image then overlay) when ``show_image``.
    batch_size : int, default=16
    frames : "key", int or sequence of int, default="key"
        Clips only: which frames of each clip are drawn: ``"key"`` its key frame; an int
        ``k`` the ``k`` frames of largest share in temporal order; a sequence the same frame
        positions for every clip. Each frame is one case of the panel (``ncols`` counts
        frames).
    branch : str or None, default=None
        The modality shown for a multimodal model (see :func:`grad_cam`).
    notes : sequence of str or None, default=None
        One line per chosen case added under its name in the titles (e.g. its true label
        and whether the model got it right).

    Returns
    -------
    matplotlib.figure.Figure
        A new figure (not registered with pyplot) or the figure of ``ax``. Images are the
        network inputs (min-max scaled for display), so image and heat map share one grid;
        a clip's frames share the clip's heat-map scale.

    Examples
    --------
    >>> import torch
    >>> from sklearn_alnm.nn import Backbone
    >>> from sklearn_alnm.explain import plot_gradcam
    >>> model = Backbone("plnet", in_chans=1, num_classes=2, seed=0)
    >>> x = torch.rand(3, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    >>> fig = plot_gradcam(model, x, rows=[0, 2], ncols=2)
    >>> len(fig.axes)  # two cases x (image, overlay) + colour bar
    5
    """
    if isinstance(ncols, bool) or not isinstance(ncols, numbers.Integral) or ncols < 1:
        raise ValueError(f"ncols must be a positive int; got {ncols!r}.")
    alpha = _check_alpha(alpha)
    colors = _colormap(cmap)
    if _is_classifier(model) or isinstance(X, torch.Tensor | np.ndarray) or hasattr(X, "iloc"):
        subset, labels = _select(X, rows)
    else:
        raise TypeError(
            "X must be a cohort DataFrame, or a tensor / array of shape (N, C, H, W) or "
            "(N, C, T, H, W); got "
            f"{type(X).__name__}."
        )
    labels = _with_notes(labels, notes)
    heat, prob, images, label, where = _compute(
        model,
        subset,
        target_layer=target_layer,
        class_index=class_index,
        batch_size=batch_size,
        branch=branch,
    )
    class_name = str(label) if label is not None else f"class {class_index or 1}"
    titles = [f"{labels[i]}\np({class_name}) = {prob[i]:.2f}" for i in range(len(labels))]
    if heat.ndim == 4:  # clips: one panel case per chosen frame
        heat, images, labels, titles = _clip_frames(heat, images, labels, titles, frames)
    per_case = 2 if show_image else 1
    n = heat.shape[0]
    if ax is None:
        cases_per_row = min(ncols, n)
        nrows = -(-n // cases_per_row)
        width = cases_per_row * per_case
        fig = Figure(figsize=figsize or (2.2 * width + 0.8, 2.4 * nrows), layout="constrained")
        grid = fig.subplots(nrows, width, squeeze=False)
        axes = list(grid.ravel())
        for unused in axes[n * per_case :]:
            fig.delaxes(unused)
        axes = axes[: n * per_case]
        own_figure = True
    else:
        axes = list(np.ravel(np.asarray(ax, dtype=object)))
        if len(axes) != n * per_case:
            raise ValueError(
                f"ax must hold {n * per_case} axes ({n} cases x {per_case}); got {len(axes)}."
            )
        fig = axes[0].figure
        own_figure = False
    for i in range(n):
        shown = _display_image(images[i])
        title = titles[i]
        case_axes = axes[i * per_case : (i + 1) * per_case]
        if show_image:
            case_axes[0].imshow(shown, interpolation="nearest")
            case_axes[0].set_title(labels[i], fontsize=9)
        case_axes[-1].imshow(overlay(shown, heat[i], alpha=alpha, cmap=colors))
        case_axes[-1].set_title(title, fontsize=9)
        for a in case_axes:
            a.set_axis_off()
    if own_figure:
        mappable = ScalarMappable(norm=Normalize(0.0, 1.0), cmap=colors)
        fig.colorbar(mappable, ax=axes, shrink=0.8, label="Grad-CAM")
        fig.supxlabel(where.caption(), fontsize=8)
    return fig
