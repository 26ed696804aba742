"""Multimodal fusion classifier: one image classifier per modality, fused at the feature level."""

import numbers
from typing import Any, Self

import numpy as np
import pandas as pd
import torch
from sklearn.base import clone
from sklearn.utils import Bunch
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, column_or_1d
from skorch.callbacks import Callback

from .._typing import ArrayLike, MatrixLike
from ..inputs import (
    MultimodalAugment,
    MultimodalDataset,
    MultimodalInput,
    modality_presence,
    resolve_augment,
)
from ..nn import FUSIONS, MultimodalNet, get_backbone_spec
from ..utils import check_cohort
from ..utils._composition import NamedMembersMixin
from ._base import SKORCH_PREFIXES
from ._classifier import BaseNeuralClassifier, ClassifierNet, document_classifier
from ._image import ImageClassifier

__all__ = ["MultimodalFusionClassifier"]

#: Fusions that weigh the modalities (``modality_weights`` / ``fusion_weights_``).
_WEIGHING = ("weighted", "attention", "voting")


class FusionNet(ClassifierNet):
    """:class:`ClassifierNet` whose module's branches start from fitted single-modality nets.

    Parameters
    ----------
    *args, **kwargs
        As for :class:`ClassifierNet`.
    branch_init : dict of str to state dict, or None, default=None
        Loaded into ``module_.branches[name]`` whenever the module is (re)initialised, then
        dropped (so pickles do not carry a second copy of the weights).
    """

    def __init__(self, *args, branch_init=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.branch_init = branch_init

    def initialize_module(self):
        super().initialize_module()
        if self.branch_init:
            for name, state in self.branch_init.items():
                self.module_.load_branch(name, state)
            self.branch_init = None
        return self


class FreezeBranches(Callback):
    """Keep the fused network's branches frozen for the first ``epochs`` epochs (all: None).

    Frozen branches get no gradient and keep their batch-norm statistics, so only the fusion
    head (and the missing-modality embeddings) train; the branches are unfrozen afterwards
    (and at the end of training, so the fitted module is an ordinary one).
    """

    def __init__(self, epochs=None):
        self.epochs = epochs

    def _frozen_at(self, epoch):
        return self.epochs is None or epoch <= self.epochs

    def on_train_begin(self, net, **kwargs):
        if self._frozen_at(len(net.history) + 1):
            net.module_.freeze()

    def on_epoch_begin(self, net, **kwargs):
        if not self._frozen_at(len(net.history)) and net.module_.frozen:
            net.module_.freeze(frozen=False)

    def on_train_end(self, net, **kwargs):
        net.module_.freeze(frozen=False)


class MultimodalFusionClassifier(NamedMembersMixin, BaseNeuralClassifier):
    """Fuse one image classifier per modality (e.g. ultrasound and H&E) at the feature level.

    The ultrasound + pathology study's two stages: every branch, an
    :class:`~sklearn_alnm.models.ImageClassifier` on its own column with its own
    preprocessing, augmentation and learning rate (ULNet on the ultrasound image and its
    lesion mask, PLNet on the biopsy tile), is first fitted alone; the fitted networks then
    initialise one :class:`~sklearn_alnm.nn.MultimodalNet` whose fusion head combines their
    embeddings, trained on the same patients (the branches frozen, for some epochs or
    throughout, or fine-tuned with their own learning rates as optimizer parameter groups).
    Branches are given as :class:`~sklearn.ensemble.StackingClassifier` takes estimators and
    their parameters are reachable as ``<name>__<param>`` (``us__lr``, ``path__backbone``)
    for ``GridSearchCV``.

    Parameters
    ----------
    branches : list of (str, ImageClassifier)
        At least two named image classifiers, one per modality. Names are unique, contain no
        ``"__"`` or ``"."``, and are neither parameters of this estimator nor skorch
        prefixes.
    fusion : {"concat", "weighted", "attention", "voting", "multilayer"}, default="multilayer"
        ``"concat"``: the embeddings concatenated, then a linear layer. ``"weighted"``: each
        embedding projected to ``hidden`` and summed with learned softmax weights (one per
        modality). ``"attention"``: the same with per-patient attention weights.
        ``"voting"``: late fusion, the mean of the fitted branches' own probabilities (no
        training of its own: ``max_epochs`` and ``freeze_branches`` are ignored).
        ``"multilayer"``: the study's head, each embedding through its own BatchNorm, then
        concatenation, FC ``hidden``, ReLU, BatchNorm, squeeze-and-excitation and one
        sigmoid output. See :mod:`sklearn_alnm.nn` (``MultimodalNet``).
    hidden : int, default=256
        Width of the projections (weighted, attention) or of the FC layer (multilayer).
    freeze_branches : bool or int, default=True
        ``True``: the branches stay as fitted (their batch norm statistics too) and only the
        fusion head trains, the study's feature-level fusion. ``False``: everything trains
        from the first epoch. An int ``n``: the head trains alone for ``n`` epochs, then
        the branches are fine-tuned too.
    branch_init : {"fit", "prefit"}, default="fit"
        ``"fit"``: each branch is cloned and fitted on the patients that have its image
        (``branches_``) before the fusion. ``"prefit"``: the given branches are already
        fitted and are used as they are (not refitted, not copied). ``clone`` copies
        branches unfitted, as it copies every parameter, so a cloned "prefit" model (inside
        ``cross_val_score`` or ``GridSearchCV``) cannot fit: use ``"fit"`` there.
    missing : {"error", "drop_branch"}, default="error"
        A patient without an image of some modality (an empty cell: ``None``, NaN, ``""``):
        ``"error"`` raises, naming the patient and the column; ``"drop_branch"`` leaves that
        modality out for the patient, at fit (the branch is fitted on the patients that have
        it) and at prediction. An absent modality's embedding is replaced by a learned
        "missing" embedding (concat, multilayer) or left out of the weights (weighted,
        attention, voting). A patient with no image at all is an error.
    modality_dropout : float or None, default=None
        In training, each present modality of a patient is hidden with this probability (at
        least one stays), so the head learns to predict from what remains. ``None``: 0.2 with
        ``missing="drop_branch"``, else 0.
    {classifier_parameters}
    {training_parameters}

    Attributes
    ----------
    branches_ : list of (str, ImageClassifier)
        The fitted branches (with ``branch_init="prefit"``, the given ones).
    named_branches_ : sklearn.utils.Bunch
        The same, by name.
    classes_ : ndarray of shape (n_classes,)
    pos_label_ : scalar or None
    module_ : sklearn_alnm.nn.MultimodalNet
        The fused network (branches and fusion head).
    fusion_weights_ : pandas.Series or None
        Weight of each modality: the learned softmax weights (``"weighted"``), the mean
        attention over the training patients (``"attention"``), equal weights
        (``"voting"``); ``None`` for ``"concat"`` and ``"multilayer"``.
    history_ : skorch.history.History
        Epochs of the fusion stage (empty for ``"voting"``); each branch has its own.
    device_, class_weight_, checkpoint_path_
        As for :class:`ImageClassifier`.

    See Also
    --------
    ImageClassifier : One branch.
    sklearn_alnm.fusion : Probability stacking of separately fitted models (post-fusion).

    Notes
    -----
    The study's settings: ULNet ``ImageClassifier("image", "mask", backbone="ulnet",
    normalize="zscore+histeq", lr=1e-3, lr_schedule="step")``, PLNet
    ``ImageClassifier("pathology", backbone="plnet", normalize="half", lr=1e-4)``, and the
    multilayer fusion trained with AdamW at 1e-4, decayed every 5 epochs
    (``optimizer="adamw", lr=1e-4, lr_schedule={{"policy": "StepLR", "step_size": 5}}``);
    :func:`sklearn_alnm.recipes.us_pathology_fusion` builds it. In the study multilayer
    fusion was best on accuracy, recall and F1 while PLNet alone had the higher AUC (0.72 vs
    0.70), so compare the fused model with each branch (``branches_``) on the same patients.

    Each image is read and prepared once per ``fit`` for the fusion stage (and once by each
    branch's own fit); epochs read the prepared tensors. When the branches stay frozen
    throughout (``freeze_branches=True``) and none augments its images, their embeddings do
    not change from epoch to epoch: each image is then embedded once and the head trains on
    the embeddings (the fitted ``module_`` still takes images).

    References
    ----------
    .. [1] L. Peng, L. Yu, B. Liu, F. Xiang, Y. Wu, "Construction of a prediction model for
       axillary lymph node metastasis in breast cancer patients based on a multimodal fusion
       strategy of ultrasound and pathological images", Front. Oncol. 15:1591858, 2025.
    .. [2] J. Hu, L. Shen, G. Sun, "Squeeze-and-Excitation Networks", CVPR 2018.

    Examples
    --------
    >>> from sklearn_alnm.datasets import make_alnm_cohort
    >>> from sklearn_alnm.models import ImageClassifier, MultimodalFusionClassifier
    >>> X, y = make_alnm_cohort(24, modalities=("ultrasound", "pathology"), image_size=32,
    ...                         random_state=0)
    >>> small = dict(input_size=32, max_epochs=1, batch_size=8, random_state=0)
    >>> model = MultimodalFusionClassifier(
    ...     [("us", ImageClassifier("image", "mask", backbone="resnet18", **small)),
    ...      ("path", ImageClassifier("pathology", backbone="plnet", normalize="half", **small))],
    ...     fusion="attention", max_epochs=1, batch_size=8, random_state=0)
    >>> model.fit(X, y).predict_proba(X).shape
    (24, 2)
    >>> model.get_params()["path__backbone"], list(model.modality_weights(X).columns)
    ('plnet', ['us', 'path'])
    """

    _members_attr = "branches"

    _parameter_constraints = {
        **BaseNeuralClassifier._parameter_constraints,
        "branches": [list],
        "fusion": [StrOptions(set(FUSIONS))],
        "hidden": [Interval(numbers.Integral, 1, None, closed="left")],
        "freeze_branches": ["boolean", Interval(numbers.Integral, 0, None, closed="left")],
        "branch_init": [StrOptions({"fit", "prefit"})],
        "missing": [StrOptions({"error", "drop_branch"})],
        "modality_dropout": [None, Interval(numbers.Real, 0, 1, closed="left")],
    }

    _owned_skorch_keys = {
        **BaseNeuralClassifier._owned_skorch_keys,
        "module__branches": "branches",
        "module__fusion": "fusion",
        "module__hidden": "hidden",
        "module__modality_dropout": "modality_dropout",
        "module__seed": "random_state",
        "optimizer__param_groups": "each branch's lr",
    }

    def __init__(
        self,
        branches,
        *,
        fusion="multilayer",
        hidden=256,
        freeze_branches=True,
        branch_init="fit",
        missing="error",
        modality_dropout=None,
        optimizer="adamw",
        lr=1e-4,
        lr_schedule=None,
        max_epochs=20,
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
        """Fit every branch on its modality, then the fused network on all of them.

        Parameters
        ----------
        X : pandas.DataFrame
            The cohort, with every branch's image (and mask) column.
        y : array-like of shape (n_patients,)
            Labels, any two (or more) values.
        sample_weight : array-like of shape (n_patients,), default=None
            Per-patient weights of the loss, in both stages.

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight)

    # ------------------------------------------------------------------ nested parameters

    @property
    def named_branches(self):
        """The (unfitted) branches by name."""
        return Bunch(**dict(self.branches))

    # ---------------------------------------------------------------------------- checks

    def _check_branches(self):
        branches = self.branches
        if not all(isinstance(b, tuple | list) and len(b) == 2 for b in branches):
            raise ValueError("branches must be a list of (name, ImageClassifier) pairs.")
        if len(branches) < 2:
            raise ValueError(
                f"a fusion needs at least two branches; got {len(branches)}. Use the "
                "ImageClassifier itself for one modality."
            )
        names = [name for name, _ in branches]
        if not all(isinstance(n, str) and n for n in names):
            raise ValueError(f"branch names must be non-empty strings; got {names!r}.")
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"branch names must be unique; {duplicates} appear more than once.")
        self._validate_names(names)
        bad = [n for n in names if "." in n or n in SKORCH_PREFIXES]
        if bad:
            raise ValueError(
                f"branch names {bad} are not allowed: no '.', and not a skorch prefix "
                f"({', '.join(SKORCH_PREFIXES)})."
            )
        for name, est in branches:
            if isinstance(est, type):
                raise TypeError(
                    f"branch {name!r} is the class {est.__name__}; pass an instance "
                    f"({est.__name__}(...))."
                )
            if not isinstance(est, ImageClassifier):
                raise TypeError(
                    f"branch {name!r} is a {type(est).__name__}, not an image estimator: each "
                    "branch must be an ImageClassifier (with its own image column)."
                )
            if self.branch_init == "prefit":
                check_is_fitted(
                    est,
                    "net_",
                    msg=f"branch {name!r} is not fitted; "
                    "branch_init='prefit' needs fitted branches.",
                )
        columns = [est.image_col for _, est in branches]
        if len(set(columns)) != len(columns):
            raise ValueError(f"each branch needs its own image column; got {columns}.")
        return names

    def _check_settings(self, state):
        state.names = self._check_branches()
        state.epochs = 0 if self.fusion == "voting" else None
        dropout = self.modality_dropout
        if dropout is None:
            dropout = 0.2 if self.missing == "drop_branch" else 0.0
        state.modality_dropout = float(dropout)

    # -------------------------------------------------------------------- the two stages

    def _presence(self, X):
        columns = [est.image_col for _, est in self.branches]
        return modality_presence(X, columns, missing=self.missing)

    def _prepare_fit(self, X, y, sample_weight, state):
        """Stage 1: every branch fitted on the patients that have its image."""
        check_cohort(self, X, [c for _, est in self.branches for c in _branch_columns(est)])
        present = self._presence(X)
        y = column_or_1d(y, warn=True)
        if len(y) != len(X):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)} labels.")
        classes = np.unique(y)
        weights = self._check_sample_weight(sample_weight, len(X))
        fitted = []
        for k, (name, est) in enumerate(self.branches):
            if self.branch_init == "prefit":
                branch = est
            else:
                rows = np.flatnonzero(present[:, k])
                branch = clone(est)
                if branch.pos_label is None and self.pos_label is not None:
                    branch.set_params(pos_label=self.pos_label)
                if branch.random_state is None and state.seed is not None:
                    branch.set_params(random_state=(state.seed + 1 + k) % 2**31)
                branch.fit(X.iloc[rows], y[rows], None if weights is None else weights[rows])
            if not np.array_equal(np.asarray(branch.classes_), classes):
                raise ValueError(
                    f"branch {name!r} knows the classes {list(branch.classes_)} but y holds "
                    f"{list(classes)}: the patients with its image must include every class."
                )
            fitted.append((name, branch))
        state.branches = fitted
        state.present = present

    def _make_input(self, state):
        return MultimodalInput(
            {name: est.input_ for name, est in state.branches}, missing=self.missing
        )

    def _embeds_once(self, branches):
        """Whether the branches never change in training, nor their inputs (frozen
        throughout, no augmentation): then each image is embedded once per fit."""
        return (
            self.fusion != "voting"
            and self.freeze_branches is True
            and all(resolve_augment(est.augment) is None for _, est in branches)
        )

    def _training_dataset(self, input, X, target, state):
        dataset = input.dataset(X, target, preload=True, n_jobs=self.n_jobs, verbose=self.verbose)
        if not self._embeds_once(state.branches):
            return dataset
        embeddings = {
            name: _embed(est, dataset.images[name], self.batch_size) for name, est in state.branches
        }
        return MultimodalDataset(embeddings, dataset.present, target)

    def _module_kwargs(self, input, state):
        branches = dict(state.branches)
        architectures = {
            name: {
                "name": get_backbone_spec(est.backbone).name,
                "in_chans": int(est.in_chans_),
                "input_size": tuple(est.input_size_),
                "dropout": float(est.dropout),
            }
            for name, est in branches.items()
        }
        states = {
            name: {k: v.detach().cpu().clone() for k, v in est.module_.state_dict().items()}
            for name, est in branches.items()
        }
        return {
            "module": MultimodalNet,
            "module__branches": architectures,
            "module__fusion": self.fusion,
            "module__hidden": int(self.hidden),
            "module__modality_dropout": state.modality_dropout,
            "module__seed": state.seed,
            "branch_init": states,
            "optimizer__param_groups": [
                (f"branches.{name}.*", {"lr": float(est.lr)}) for name, est in branches.items()
            ],
            "augment": MultimodalAugment(
                {name: resolve_augment(est.augment) for name, est in branches.items()}
            ),
            **self._classifier_kwargs(
                len(state.classes), state.class_weight, state.custom_criterion
            ),
        }

    _net_class = FusionNet

    def _training_callbacks(self):
        if self.fusion == "voting" or self.freeze_branches is False:
            return []
        epochs = None if self.freeze_branches is True else int(self.freeze_branches)
        return [("freeze_branches", FreezeBranches(epochs))]

    def _set_fitted(self, X, input, state):
        super()._set_fitted(X, input, state)
        self.branches_ = list(state.branches)
        self.named_branches_ = Bunch(**dict(state.branches))
        self.fusion_weights_ = None
        if self.fusion == "weighted":
            weights = torch.softmax(self.module_.head.logits.detach().float().cpu(), dim=0)
            self.fusion_weights_ = pd.Series(weights.numpy(), index=list(state.names))
        elif self.fusion == "voting":
            self.fusion_weights_ = pd.Series(1.0 / len(state.names), index=list(state.names))
        elif self.fusion == "attention":
            self.fusion_weights_ = self.modality_weights(X).mean(axis=0)

    # --------------------------------------------------------------------------- outputs

    def modality_weights(self, X: pd.DataFrame) -> pd.DataFrame:
        """Each patient's weight of every modality (weighted, attention and voting fusion).

        Absent modalities weigh 0; each row sums to 1.

        Parameters
        ----------
        X : pandas.DataFrame

        Returns
        -------
        pandas.DataFrame of shape (n_patients, n_branches)
            Indexed like ``X``, one column per branch.
        """
        check_is_fitted(self, "net_")
        if self.fusion not in _WEIGHING:
            raise ValueError(
                f"fusion={self.fusion!r} has no modality weights; they exist for {list(_WEIGHING)}."
            )
        rows = self._map_batches(
            self._inference_dataset(X),
            lambda module, xi: module.forward_with_weights(xi)[1].float().cpu(),
        )
        names = list(self.module_.names)
        weights = torch.cat(rows).numpy() if rows else np.zeros((0, len(names)))
        return pd.DataFrame(weights, index=X.index, columns=names)

    def prepare_inputs(self, X: pd.DataFrame) -> Any:
        """The fused network's input for ``X``: a ``MultimodalBatch`` of every patient.

        Parameters
        ----------
        X : pandas.DataFrame

        Returns
        -------
        sklearn_alnm.inputs.MultimodalBatch
            ``images`` by branch (float32 CPU tensors, as the network is fed) and
            ``present`` ``(n_patients, n_branches)``.
        """
        check_is_fitted(self, "net_")
        self.input_.check(self, X)
        return self.input_.prepare(X, n_jobs=self.n_jobs)

    def _gradcam_view(self, X, branch):
        """What Grad-CAM needs to explain ``branch`` of the fused model (see explain)."""
        check_is_fitted(self, "net_")
        names = list(self.module_.names)
        if branch is None:
            raise ValueError(
                f"a MultimodalFusionClassifier has one image per branch: pass branch= one of "
                f"{names}."
            )
        if branch not in names:
            raise ValueError(f"unknown branch {branch!r}; the branches are {names}.")
        batch = self.prepare_inputs(X)
        return Bunch(
            images=batch.images[branch],
            present=batch.present[:, names.index(branch)].numpy(),
            layer=f"branches.{branch}.{self.module_.branches[branch].gradcam_layer}",
            call=lambda module, x, rows: module(_with_branch(batch, branch, x, rows, x.device)),
        )


def _embed(estimator, images, batch_size):
    """A fitted branch's embeddings ``(N, d)`` of prepared images, on the CPU (eval mode)."""
    module = estimator.module_
    device = next(module.parameters()).device
    training = module.training
    module.eval()
    out = []
    try:
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                x = images[start : start + batch_size].to(device)
                out.append(module.forward_features(x).float().cpu())
    finally:
        module.train(training)
    return torch.cat(out) if out else torch.zeros((0, module.feature_dim))


def _with_branch(batch, branch, x, rows, device):
    """``batch`` restricted to ``rows`` with ``branch``'s images replaced by ``x``."""
    images = {
        name: (x if name == branch else t[rows].to(device=device, dtype=x.dtype))
        for name, t in batch.images.items()
    }
    return type(batch)(images, batch.present[rows].to(device))


def _branch_columns(est):
    columns = [est.image_col]
    if est.mask_col is not None and est.crop is not None:
        columns.append(est.mask_col)
    return columns


document_classifier(
    MultimodalFusionClassifier,
    batch="Patients",
    module_hint=" (``MultimodalNet`` arguments)",
)
