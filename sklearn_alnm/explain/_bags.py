"""Bags explained: each patient's images with the image head's CAM and the MIL weights."""

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from ._gradcam import _check_alpha, _colormap, _display_image, _select, _with_notes, overlay

__all__ = ["bag_explanation", "plot_bag_cam"]


def _stages(model):
    """``(image model, stage-1 input transform, MIL model or None, MIL input transform)`` of
    a fitted multi-task model or of a pipeline holding one (and a MIL step after it); the
    MIL input transform is ``None`` when the MIL step reads the image model's output."""
    if callable(getattr(model, "class_activation_maps", None)):
        return model, (lambda X: X), None, None
    steps = getattr(model, "steps", None)
    if isinstance(steps, list):
        for k, (_, step) in enumerate(steps):
            if callable(getattr(step, "class_activation_maps", None)):
                mil = steps[-1][1] if k < len(steps) - 1 else None
                if mil is not None and not callable(getattr(mil, "attention_weights", None)):
                    mil = None
                # the MIL step right after the image model reads its transform: no second
                # pass; with steps between them the pipeline's own transform is used
                direct = k == len(steps) - 2
                return (
                    step,
                    (lambda X, k=k: model[:k].transform(X) if k else X),
                    mil,
                    None if direct else (lambda X: model[:-1].transform(X)),
                )
    raise TypeError(
        "model must be a fitted MultiTaskSegClassifier (class_activation_maps) or a Pipeline "
        f"holding one; got {type(model).__name__}."
    )


def bag_explanation(
    model: Any, X: pd.DataFrame, *, class_index: Any = None
) -> list[dict[str, Any]]:
    """What :func:`plot_bag_cam` draws, per patient: images, CAMs, kinds, probabilities and
    MIL weights.

    Parameters
    ----------
    model : fitted MultiTaskSegClassifier, or a Pipeline holding one
        With a :class:`~sklearn_alnm.models.MILClassifier` as the pipeline's last step, the
        patient probability is the MIL model's and each instance's weight its attention.
    X : pandas.DataFrame
    class_index : class label or None, default=None
        The class explained (default the positive class).

    Returns
    -------
    list of dict
        One per patient: ``images`` (n, C, H, W) network inputs, ``cams`` (n, H, W) in
        [0, 1], ``kinds`` (predicted), ``instance_proba`` (n,), ``weights`` (n,) or None,
        ``proba`` (the patient's probability of the class).

    Examples
    --------
    >>> from sklearn_alnm.datasets import make_alnm_cohort
    >>> from sklearn_alnm.explain import bag_explanation
    >>> from sklearn_alnm.models import MultiTaskSegClassifier
    >>> X, y = make_alnm_cohort(6, modalities="bag", image_size=32, random_state=0)
    >>> model = MultiTaskSegClassifier(backbone="plnet", dim=32, heads=4, input_size=32,
    ...                                max_epochs=1, random_state=0).fit(X, y)
    >>> parts = bag_explanation(model, X)
    >>> parts[0]["cams"].shape[1:], len(parts[0]["kinds"]) == len(X["bag"].iloc[0])
    ((32, 32), True)
    """
    image_model, to_stage1, mil, to_mil = _stages(model)
    inputs = to_stage1(X)
    label = image_model.pos_label_ if class_index is None else class_index
    # one reading of the images gives the maps, the probabilities and the MIL stage's input
    parts = image_model._explain(inputs, label)
    images, cams, instance = parts["images"], parts["cams"], parts["instance_proba"]
    kinds = parts["frame"]["pred_kind"]
    if mil is not None:
        bags = parts["frame"] if to_mil is None else to_mil(X)
        weights = mil.attention_weights(bags)
        mil_position = [k for k, c in enumerate(mil.classes_) if c == label][0]
        proba = mil.predict_proba(bags)[:, mil_position]
    else:
        weights = [None] * len(X)
        proba = np.array([p.mean() for p in instance])
    return [
        {
            "images": images[i],
            "cams": cams[i],
            "kinds": list(kinds.iloc[i]),
            "instance_proba": instance[i],
            "weights": weights[i],
            "proba": float(proba[i]),
        }
        for i in range(len(X))
    ]


def plot_bag_cam(
    model: Any,
    X: pd.DataFrame,
    *,
    rows: Any = None,
    class_index: Any = None,
    alpha: float = 0.4,
    cmap: Any = "jet",
    max_instances: int = 6,
    figsize: tuple[float, float] | None = None,
    notes: Sequence[str] | None = None,
) -> Figure:
    """One row per patient: each image of the bag with its CAM, kind, probability and weight.

    The class activation map is that of the multi-task model's image-level head
    (:meth:`~sklearn_alnm.models.MultiTaskSegClassifier.class_activation_maps`); the weight
    is the MIL model's attention on the instance when ``model`` is a pipeline ending in a
    :class:`~sklearn_alnm.models.MILClassifier`. Each row is labelled with the patient
    (its ``patient_id``, else the DataFrame's index) and its predicted probability.

    Parameters
    ----------
    model : fitted MultiTaskSegClassifier, or a Pipeline holding one
        See :func:`bag_explanation`.
    X : pandas.DataFrame
    rows : None, int, sequence of int or boolean mask, default=None
        Positions of the patients shown (``None``: all).
    class_index : class label or None, default=None
    alpha : float, default=0.4
        Weight of the map in each overlay.
    cmap : str or matplotlib.colors.Colormap, default="jet"
    max_instances : int, default=6
        Columns of the panel: a longer bag shows the instances of largest weight (or of
        highest probability without a MIL model), in bag order.
    figsize : tuple of 2 float or None, default=None
    notes : sequence of str or None, default=None
        One line per patient added under its name (e.g. its true label).

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    alpha = _check_alpha(alpha)
    colors = _colormap(cmap)
    subset, labels = _select(X, rows)
    if "patient_id" in getattr(subset, "columns", ()):
        labels = [str(v) for v in subset["patient_id"]]
    labels = _with_notes(labels, notes)
    parts = bag_explanation(model, subset, class_index=class_index)
    ncols = max(1, min(int(max_instances), max(len(p["kinds"]) for p in parts)))
    fig = Figure(figsize=figsize or (2.3 * ncols + 1.2, 2.5 * len(parts)), layout="constrained")
    grid = fig.subplots(len(parts), ncols, squeeze=False)
    for i, (part, patient) in enumerate(zip(parts, labels)):
        order = np.arange(len(part["kinds"]))
        rank = part["weights"] if part["weights"] is not None else part["instance_proba"]
        if len(order) > ncols:
            order = np.sort(np.argsort(-np.asarray(rank), kind="stable")[:ncols])
        for c, ax in enumerate(grid[i]):
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(order):
                ax.axis("off")
                continue
            k = int(order[c])
            image = _display_image(torch.as_tensor(part["images"][k]))
            ax.imshow(overlay(image, part["cams"][k], alpha=alpha, cmap=colors))
            title = f"{part['kinds'][k]}: p {part['instance_proba'][k]:.2f}"
            if part["weights"] is not None:
                title += f", w {part['weights'][k]:.2f}"
            ax.set_title(title, fontsize=8)
        grid[i, 0].set_ylabel(f"{patient}\np = {part['proba']:.2f}", fontsize=9)
    fig.colorbar(
        ScalarMappable(norm=Normalize(0.0, 1.0), cmap=colors),
        ax=list(grid.ravel()),
        shrink=0.8,
        label="CAM (image head)",
    )
    return fig
