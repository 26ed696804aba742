"""Multiple-instance classifier: one prediction per patient from a bag of instances."""

import numbers
from typing import Self

import numpy as np
import pandas as pd
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._typing import ArrayLike, MatrixLike
from ..inputs import BagInput, ImageInput, resolve_augment
from ..inputs._bags import BagAugment, InstanceDropout
from ..nn import POOLINGS, MILNet, get_backbone_spec, resolve_weights
from ._classifier import BaseNeuralClassifier, document_classifier

__all__ = ["MILClassifier"]


class MILClassifier(BaseNeuralClassifier):
    """Classify each patient from a bag of instances: tokens, or images through a backbone.

    The second stage of the multi-task / multi-instance ultrasound study: each patient has a
    bag of instances, one or more views of the primary tumour and zero or more axillary
    node images, of any number per patient. Each instance becomes a ``dim``-sized token
    (a linear projection of its feature vector, e.g. the instance tokens of an image-level
    model, or of a registry backbone's embedding of the image, trained end to end), plus a
    learned embedding of its kind when ``kind_col`` is given, and a pooling over the bag
    gives the patient's token and prediction. Batches hold bags of different lengths padded
    to the longest, with a mask: padding never reaches a real bag's output, so a bag's
    prediction is the same whatever it is batched with.

    Parameters
    ----------
    bag_col : str, default="tokens"
        Cohort column of the bags: per patient a 2-D array ``(n_instances, n_features)`` or
        a list of feature vectors, or (with ``backbone``) a list of images (paths or arrays).
        An empty bag is an error naming the patient.
    kind_col : str or None, default=None
        Column of the instance kinds (per patient a list as long as the bag, e.g.
        ``"tumor"`` / ``"node"``); they are embedded and added to the tokens. Bags of one
        kind only (tumour-only bags) are allowed.
    mask_col : str or None, default=None
        With ``backbone``: a column of the instances' lesion masks (per patient a list as
        long as the bag); each image is cut to its mask's rectangle (``crop``).
    pooling : {"transformer", "attention", "gated_attention", "mean", "max"}, \
default="transformer"
        ``"transformer"``: a learnable CLS token attends over the bag through ``depth``
        pre-norm transformer blocks of ``heads`` heads (no positional encoding, no length
        normalisation); ``"attention"`` / ``"gated_attention"``: Ilse et al.'s attention
        MIL; ``"mean"`` / ``"max"``: the rule-based poolings.
    dim : int, default=256
        Size of the instance tokens.
    depth : int, default=2
        Transformer blocks (``"transformer"``).
    heads : int, default=4
        Attention heads (``"transformer"``); must divide ``dim``.
    hidden : int, default=128
        Size of the attention scorer (``"attention"``, ``"gated_attention"``).
    kinds : sequence of str or None, default=None
        The instance kinds in a fixed order; ``None``: the sorted kinds of the training
        bags. A kind not among them at prediction is an error.
    backbone : str or None, default=None
        ``None``: the bags hold feature vectors. A registered backbone
        (:func:`sklearn_alnm.nn.available_backbones`): the bags hold images, each embedded
        by it.
    weights : None, str or os.PathLike, default=None
        The backbone's initial weights (as for :class:`ImageClassifier`; offline only).
    input_size : int, default=64
        Height and width of the image instances.
    crop : {"mask_bbox", "mask"} or None, default="mask_bbox"
        With ``mask_col``: how each image is cut to its mask.
    normalize : {"imagenet", "zscore", "histeq+zscore", "zscore+histeq", "half"}, \
default="zscore"
        Normalisation of the image instances.
    augment : "default", None or callable, default=None
        Image bags only, training batches only: ``"default"`` is a random resized crop and
        horizontal flip of every instance; a callable gets the real instances
        ``(n, C, H, W)`` of a batch (or one image without a true ``batched`` attribute).
    instance_dropout : float, default=0.0
        Training batches only: each real instance is hidden from the pooling with this
        probability, one instance of every bag always kept
        (:class:`~sklearn_alnm.inputs.InstanceDropout`), a regulariser for small cohorts.
    dropout : float, default=0.1
        In the transformer blocks and in front of the head.
    {classifier_parameters}
    {training_parameters}

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels, sorted; ``predict_proba``'s columns follow them.
    pos_label_ : scalar or None
        The positive class of binary labels.
    module_ : sklearn_alnm.nn.MILNet
        The trained network.
    kinds_ : tuple of str or None
        The instance kinds, coded ``1..K`` in this order.
    n_features_ : int or None
        Size of the feature vectors (feature bags).
    net_, history_, device_, class_weight_, checkpoint_path_
        As for :class:`~sklearn_alnm.models.ImageClassifier`.

    See Also
    --------
    sklearn_alnm.nn.MILNet : The network.
    sklearn_alnm.inputs.BagInput : How bags are read and batched.

    References
    ----------
    .. [1] M. Ilse, J. Tomczak, M. Welling, "Attention-based Deep Multiple Instance
       Learning", ICML 2018.
    .. [2] Multi-task, multi-instance ultrasound study of axillary lymph node metastasis:
       SAM-like lesion decoder, then a transformer over each patient's bag of tumour and
       node tokens (internal AUC 0.832, external 0.918).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn_alnm.models import MILClassifier
    >>> rng = np.random.default_rng(0)
    >>> y = np.array([0, 1] * 10)
    >>> X = pd.DataFrame({"tokens": [rng.normal(size=(rng.integers(1, 5), 8)) + label
    ...                              for label in y]})
    >>> clf = MILClassifier(pooling="attention", dim=16, max_epochs=20, lr=1e-2,
    ...                     random_state=0).fit(X, y)
    >>> clf.predict_proba(X).shape, [float(w.sum().round(4)) for w in clf.attention_weights(X)[:2]]
    ((20, 2), [1.0, 1.0])
    """

    _parameter_constraints = {
        **BaseNeuralClassifier._parameter_constraints,
        "bag_col": [str],
        "kind_col": [None, str],
        "mask_col": [None, str],
        "pooling": [StrOptions(set(POOLINGS))],
        "dim": [Interval(numbers.Integral, 1, None, closed="left")],
        "depth": [Interval(numbers.Integral, 1, None, closed="left")],
        "heads": [Interval(numbers.Integral, 1, None, closed="left")],
        "hidden": [Interval(numbers.Integral, 1, None, closed="left")],
        "kinds": [None, list, tuple],
        "backbone": [None, str],
        "weights": "no_validation",  # None, a name or a path: resolve_weights
        "input_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "crop": [StrOptions({"mask_bbox", "mask"}), None],
        "normalize": [StrOptions({"imagenet", "zscore", "histeq+zscore", "zscore+histeq", "half"})],
        "augment": [StrOptions({"default"}), None, callable],
        "instance_dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
    }

    _owned_skorch_keys = {
        **BaseNeuralClassifier._owned_skorch_keys,
        "module__in_features": None,
        "module__pooling": "pooling",
        "module__n_kinds": "kinds",
        "module__backbone": "backbone",
        "module__weights": "weights",
        "module__dropout": "dropout",
        "module__seed": "random_state",
    }

    def __init__(
        self,
        bag_col="tokens",
        *,
        kind_col=None,
        mask_col=None,
        pooling="transformer",
        dim=256,
        depth=2,
        heads=4,
        hidden=128,
        kinds=None,
        backbone=None,
        weights=None,
        input_size=64,
        crop="mask_bbox",
        normalize="zscore",
        augment=None,
        instance_dropout=0.0,
        dropout=0.1,
        optimizer="adamw",
        lr=1e-4,
        lr_schedule=None,
        max_epochs=50,
        batch_size=16,
        class_weight=None,
        pos_label=None,
        early_stopping=None,
        valid_split=None,
        checkpoint_dir=None,
        n_jobs=None,
        device="auto",
        amp="auto",
        distributed=False,
        random_state=None,
        verbose=0,
        **skorch_kwargs,
    ):
        self._store_parameters(locals())

    def fit(self, X: MatrixLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> Self:
        """Train the bag classifier on the cohort's bags.

        Parameters
        ----------
        X : pandas.DataFrame
            The cohort, with ``bag_col`` (and ``kind_col``, ``mask_col``).
        y : array-like of shape (n_patients,)
            Patient labels, any two (or more) values.
        sample_weight : array-like of shape (n_patients,), default=None
            Per-patient weights of the loss.

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight)

    # ------------------------------------------------------------------------------- hooks

    def _check_settings(self, state):
        if self.pooling == "transformer" and self.dim % self.heads:
            raise ValueError(f"heads ({self.heads}) must divide dim ({self.dim}).")
        if self.backbone is None:
            if self.augment is not None:
                raise ValueError("augment applies to image bags (with a backbone) only.")
            if self.mask_col is not None:
                raise ValueError("mask_col applies to image bags (with a backbone) only.")
            return
        state.spec = get_backbone_spec(self.backbone)
        resolve_weights(state.spec.name, self.weights)  # unavailable weights fail first

    def _make_input(self, state):
        image = None
        if self.backbone is not None:
            image = ImageInput(
                self.bag_col,
                self.mask_col,
                crop=self.crop,
                input_size=state.spec.check_input_size(self.input_size),
                normalize=self.normalize,
            )
        return BagInput(
            self.bag_col,
            self.kind_col,
            self.mask_col,
            image=image,
            kinds=None if self.kinds is None else [str(k) for k in self.kinds],
        )

    def _module_kwargs(self, input, state):
        augment = resolve_augment(self.augment) if self.backbone is not None else None
        augment = None if augment is None else BagAugment(augment)
        if self.instance_dropout > 0:
            augment = InstanceDropout(self.instance_dropout, then=augment)
        return {
            "module": MILNet,
            "module__in_features": input.n_features,
            "module__dim": int(self.dim),
            "module__pooling": self.pooling,
            "module__depth": int(self.depth),
            "module__heads": int(self.heads),
            "module__hidden": int(self.hidden),
            "module__n_kinds": input.n_kinds,
            "module__dropout": float(self.dropout),
            "module__backbone": None if self.backbone is None else state.spec.name,
            "module__in_chans": 1 if input.image is None else input.image.in_chans,
            "module__weights": self.weights,
            "module__seed": state.seed,
            "augment": augment,
            **self._classifier_kwargs(
                len(state.classes), state.class_weight, state.custom_criterion
            ),
        }

    def _set_fitted(self, X, input, state):
        super()._set_fitted(X, input, state)
        self.kinds_ = input.kinds if input.kind_col else None
        self.n_features_ = input.n_features

    # ---------------------------------------------------------------------------- outputs

    def attention_weights(self, X: pd.DataFrame) -> list[np.ndarray]:
        """Each instance's weight in its patient's prediction (the pooling's weights).

        Attention (``"attention"``, ``"gated_attention"``), the CLS token's attention in the
        last block (``"transformer"``, heads averaged), ``1 / n`` (``"mean"``), or each
        instance's share of the maxima (``"max"``). Each patient's weights sum to 1.

        Parameters
        ----------
        X : pandas.DataFrame

        Returns
        -------
        list of ndarray
            One array per patient, as long as its bag, in the bag's order.
        """
        check_is_fitted(self, "net_")
        dataset = self._inference_dataset(X)
        batches = self._map_batches(
            dataset, lambda module, xi: module.forward_with_weights(xi)[1].float().cpu()
        )
        lengths = dataset.lengths.tolist()
        rows = [row for batch in batches for row in batch.numpy()]
        return [np.asarray(row[:n], dtype=np.float64) for row, n in zip(rows, lengths)]

    def bag_tokens(self, X: pd.DataFrame) -> np.ndarray:
        """The pooled token of each patient's bag (what the head classifies).

        Parameters
        ----------
        X : pandas.DataFrame

        Returns
        -------
        ndarray of shape (n_patients, dim)
        """

        def pooled(module, xi):
            instances, mask, kinds = xi
            tokens = module.tokens(instances, mask.bool(), kinds)
            return module.pooling(tokens, mask.bool())[0].float().cpu()

        parts = self._map_batches(self._inference_dataset(X), pooled)
        return torch.cat(parts).numpy() if parts else np.zeros((0, int(self.dim)))


document_classifier(MILClassifier, batch="Bags", module_hint=" (network arguments)")
