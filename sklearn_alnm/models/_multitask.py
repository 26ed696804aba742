"""Multi-task lesion model of bags: segmentation, lesion kind and image-level ALN status."""

import numbers
from typing import Any, Self

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.base import TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import PassthroughScoring
from skorch.utils import to_tensor

from .._typing import ArrayLike, MatrixLike
from ..inputs import BagInstanceInput, resolve_augment
from ..inputs._image import as_size
from ..nn import MultiTaskSegNet, get_backbone_spec, resolve_weights
from ..utils._validation import CohortColumnsMixin
from ._classifier import BaseNeuralClassifier, ClassifierNet, document_classifier

__all__ = ["MultiTaskSegClassifier"]

#: The heads, in the order of ``loss_weights``.
HEADS = ("segmentation", "kind", "aln")


class MultiTaskNet(ClassifierNet):
    """:class:`ClassifierNet` of the multi-task network: the target is ``(labels, masks,
    kinds[, sample_weights])`` and the loss the weighted sum of the segmentation loss
    (Dice + BCE), the kind BCE and the (class- and sample-weighted) ALN cross-entropy.

    Training batches get the joint image + mask augmentation; the cached outputs of an
    epoch (for its AUC) are the ALN logits.
    """

    def __init__(self, *args, loss_weights=(1.0, 1.0, 1.0), **kwargs):
        super().__init__(*args, **kwargs)
        self.loss_weights = loss_weights

    def initialize_criterion(self):
        from ..segmentation._base import SegmentationLoss  # segmentation builds on models

        super().initialize_criterion()
        self.segmentation_loss_ = SegmentationLoss("dice+bce")
        return self

    def _training_batch(self, Xi, yi):
        Xi, yi = self._to_device(Xi), self._to_device(yi)
        if self.augment is not None:
            Xi, masks = self.augment(Xi, yi[1])
            yi = (yi[0], masks, *yi[2:])
        return Xi, yi

    @staticmethod
    def _detach(y_pred):
        return y_pred[0].detach()

    def validation_step(self, batch, **fit_params):
        step = super().validation_step(batch, **fit_params)
        return {**step, "y_pred": step["y_pred"][0]}

    def get_loss(self, y_pred, y_true, X=None, training=False):
        labels, masks, kinds, *weights = y_true
        aln = super().get_loss(y_pred[0], (labels, *weights) if weights else labels)
        masks = to_tensor(masks, device=self.device)
        segmentation = self.segmentation_loss_(y_pred[1].float(), masks)
        kind = F.binary_cross_entropy_with_logits(
            y_pred[2].float(), to_tensor(kinds, device=self.device)
        )
        if training:  # each head's loss in the history (epoch means: train_<head>_loss)
            for name, value in zip(HEADS, (segmentation, kind, aln)):
                self.history.record_batch(f"train_{name}_loss", float(value.detach()))
        w_seg, w_kind, w_aln = self.loss_weights
        return w_seg * segmentation + w_kind * kind + w_aln * aln


class MultiTaskSegClassifier(CohortColumnsMixin, TransformerMixin, BaseNeuralClassifier):
    """Image-level multi-task model of each patient's bag: lesion mask, kind and ALN status.

    The first stage of the multi-task / multi-instance ultrasound study. Every image of a
    patient's bag (tumour views and axillary node images) becomes a training row with its
    lesion mask, its kind and the patient's label as a pseudo-label. The network
    (:class:`~sklearn_alnm.nn.MultiTaskSegNet`: a registry CNN, a SAM-like mask decoder and
    three heads) is trained on the weighted sum of the lesion segmentation loss (Dice + BCE),
    the lesion-kind BCE (tumour vs node) and the image-level ALN cross-entropy. At the
    patient level, ``predict_proba`` is the mean of the patient's instance probabilities
    (the rule-based baseline of the study); ``transform`` adds, per patient, the instance
    tokens (the pooled lesion features the multi-instance stage reads), the predicted masks
    and the predicted kinds.

    Parameters
    ----------
    bag_col : str, default="bag"
        Cohort column of the bags: per patient a list of images (paths or arrays).
    kind_col : str, default="bag_kind"
        Per patient a list of the instances' kinds (training only).
    mask_col : str, default="bag_mask"
        Per patient a list of the instances' lesion masks (training only); an image without
        a lesion has an empty mask.
    backbone : str, default="resnet18"
        A registry backbone with a convolutional feature map
        (:func:`sklearn_alnm.nn.available_backbones`): the CNNs (``"resnet50"``,
        ``"mobilenet_v3"``, ...), torchvision's ``"swin_t"``, SegFormer's MiT encoders
        ``"mit_b0"`` ... ``"mit_b2"`` (segmentation-models-pytorch) or the ``"unet"`` trunk.
    weights : None, str or os.PathLike, default=None
        The backbone's initial weights (offline only, as for :class:`ImageClassifier`).
    feature_layer : str, list of str or None, default=None
        The backbone layer whose output the decoder reads (``None``: its last stage); a
        list, finest first (``["layer1", "layer2", "layer3", "layer4"]``, or
        ``["stages.0", ..., "stages.3"]`` of a MiT encoder), is fused SegFormer-style on the
        finest grid, which sharpens the masks (the decoder predicts at twice its grid).
    high_res_layers : list of str or None, default=None
        Finer backbone layers that refine the decoder's upsampling (SAM 2's
        high-resolution features): e.g. ``["relu", "layer1", "layer2"]`` under a
        ``"layer3"`` feature map of a ResNet gives masks on the stride-2 grid while the
        attention stays on the stride-16 grid (see :class:`~sklearn_alnm.nn.MaskDecoder`).
        On BUSI whole images (96 px, 40 epochs from scratch, ``benchmarks/busi_multitask.py``)
        a ResNet18 with ``["layer3", "layer4"]`` fused, these three high-resolution layers
        and ``loss_weights=(3, 0, 1)`` reached a Dice of 0.745 (``"layer3"`` alone: 0.710;
        the four stages fused, attention on the stride-4 grid: 0.722) at AUC 0.927.
    dim : int, default=256
        Channels of the image features and size of the instance tokens.
    decoder_depth : int, default=2
        Two-way attention blocks of the mask decoder.
    heads : int, default=8
        Attention heads of the mask decoder; must divide ``dim``.
    input_size : int or tuple of 2 int, default=64
        Height and width the images and masks are resized to.
    normalize : {"zscore", "imagenet", "histeq+zscore"}, default="zscore"
    kinds : tuple of 2 str, default=("tumor", "node")
        The two instance kinds; the kind head predicts the second.
    loss_weights : tuple of 3 float, default=(1, 1, 1)
        Weights of the segmentation, kind and ALN losses.
    augment : "default", None or callable, default="default"
        Training batches only: ``"default"`` flips, rotates and zooms every image with its
        mask (:class:`~sklearn_alnm.inputs.RandomFlipRotate`); a callable gets
        ``(images, masks)``.
    cv : int, CV splitter or None, default=5
        Out-of-fold outputs of :meth:`fit_transform` (so a ``Pipeline``'s next step, the
        multi-instance model, never trains on tokens of images this model was fitted on):
        an int is a patient-grouped, stratified K-fold over ``group_col``
        (:class:`~sklearn_alnm.fusion.GroupColumnKFold`); ``None``: in-sample outputs of the
        model fitted on the whole cohort. ``fit`` and ``transform`` are not affected. Each
        fold network embeds images in a token space of its own, so a held-out image's token
        is the fold network's token mapped into the final network's space (an affine map
        fitted by ridge least squares on the fold's training images, where both networks
        are in-sample): on the demo's synthetic bags, unmapped out-of-fold tokens left the
        MIL stage at chance (AUC 0.44), mapped ones reached 0.84 (in-sample tokens 0.80).
    group_col : str or None, default="patient_id"
        Patient id column of the grouped folds of an int ``cv``.
    {classifier_parameters}
    {training_parameters}

    Attributes
    ----------
    classes_, pos_label_, class_weight_
        As for :class:`ImageClassifier`.
    module_ : sklearn_alnm.nn.MultiTaskSegNet
    in_chans_ : int
    net_, history_, device_, checkpoint_path_
        As for :class:`ImageClassifier`; the history's AUC is that of the instances, and
        ``train_segmentation_loss``, ``train_kind_loss``, ``train_aln_loss`` are each
        head's epoch loss.

    Examples
    --------
    >>> from sklearn_alnm.datasets import make_alnm_cohort
    >>> from sklearn_alnm.models import MultiTaskSegClassifier
    >>> X, y = make_alnm_cohort(8, modalities="bag", image_size=32, random_state=0)
    >>> model = MultiTaskSegClassifier(backbone="plnet", dim=32, heads=4, input_size=32,
    ...                                max_epochs=1, random_state=0).fit(X, y)
    >>> model.predict_proba(X).shape, model.transform(X)["tokens"].iloc[0].shape[1]
    ((8, 2), 32)
    """

    _net_class = MultiTaskNet

    _parameter_constraints = {
        **BaseNeuralClassifier._parameter_constraints,
        "bag_col": [str],
        "kind_col": [str],
        "mask_col": [str],
        "backbone": [str],
        "weights": "no_validation",
        "feature_layer": [None, str, list, tuple],
        "high_res_layers": [None, str, list, tuple],
        "dim": [Interval(numbers.Integral, 4, None, closed="left")],
        "decoder_depth": [Interval(numbers.Integral, 1, None, closed="left")],
        "heads": [Interval(numbers.Integral, 1, None, closed="left")],
        "input_size": [Interval(numbers.Integral, 1, None, closed="left"), tuple, list],
        "normalize": [StrOptions({"zscore", "imagenet", "histeq+zscore"})],
        "kinds": [tuple, list],
        "loss_weights": [tuple, list],
        "augment": [StrOptions({"default"}), None, callable],
        "cv": [None, Interval(numbers.Integral, 2, None, closed="left"), "cv_object"],
        "group_col": [None, str],
    }

    _owned_skorch_keys = {
        **BaseNeuralClassifier._owned_skorch_keys,
        "module__backbone": "backbone",
        "module__weights": "weights",
        "module__in_chans": None,
        "module__seed": "random_state",
    }

    def __init__(
        self,
        bag_col="bag",
        kind_col="bag_kind",
        mask_col="bag_mask",
        *,
        backbone="resnet18",
        weights=None,
        feature_layer=None,
        high_res_layers=None,
        dim=256,
        decoder_depth=2,
        heads=8,
        input_size=64,
        normalize="zscore",
        kinds=("tumor", "node"),
        loss_weights=(1.0, 1.0, 1.0),
        augment="default",
        cv=5,
        group_col="patient_id",
        optimizer="adamw",
        lr=6e-5,
        lr_schedule=None,
        max_epochs=30,
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
        """Train on every instance of every bag (masks, kinds, patient labels).

        Parameters
        ----------
        X : pandas.DataFrame
            The cohort, with ``bag_col``, ``kind_col`` and ``mask_col``.
        y : array-like of shape (n_patients,)
            Patient labels; each instance is trained with its patient's.
        sample_weight : array-like of shape (n_patients,), default=None
            Per-patient weights, given to each of the patient's instances.

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight)

    # ------------------------------------------------------------------------------- hooks

    def _check_settings(self, state):
        if self.dim % self.heads or self.dim % 4:
            raise ValueError(
                f"dim ({self.dim}) must be a multiple of 4 and of heads ({self.heads})."
            )
        if len(self.kinds) != 2 or len(set(self.kinds)) != 2:
            raise ValueError(f"kinds must be two different kinds; got {self.kinds!r}.")
        weights = tuple(float(w) for w in self.loss_weights)
        if len(weights) != 3 or min(weights) < 0 or sum(weights) == 0:
            raise ValueError(
                "loss_weights must be three non-negative weights (segmentation, kind, ALN), "
                f"not all zero; got {self.loss_weights!r}."
            )
        state.loss_weights = weights
        state.spec = get_backbone_spec(self.backbone)
        resolve_weights(state.spec.name, self.weights)
        state.size = state.spec.check_input_size(as_size(self.input_size, "input_size"))

    def _make_input(self, state):
        return BagInstanceInput(
            self.bag_col,
            self.kind_col,
            self.mask_col,
            input_size=state.size,
            normalize=self.normalize,
            kinds=[str(k) for k in self.kinds],
        )

    def _training_dataset(self, input, X, target, state):
        return input.dataset(X, target, training=True, n_jobs=self.n_jobs, verbose=self.verbose)

    def _training_target(self, X, y, sample_weight, state):
        target, y_encoded = super()._training_target(X, y, sample_weight, state)
        state.patient_labels = y_encoded
        return target, None  # instances are not split by patient label

    def _fit_net(self, *, net_kwargs, dataset, y, **kwargs):
        # a stratified validation split of instances follows their pseudo-labels
        labels = dataset.target[0].numpy() if self.valid_split is not None else None
        return super()._fit_net(net_kwargs=net_kwargs, dataset=dataset, y=labels, **kwargs)

    def _module_kwargs(self, input, state):
        return {
            "module": MultiTaskSegNet,
            "module__backbone": state.spec.name,
            "module__in_chans": input.in_chans,
            "module__weights": self.weights,
            "module__feature_layer": self.feature_layer,
            "module__high_res_layers": self.high_res_layers,
            "module__dim": int(self.dim),
            "module__decoder_depth": int(self.decoder_depth),
            "module__heads": int(self.heads),
            "module__seed": state.seed,
            "loss_weights": state.loss_weights,
            "augment": resolve_augment(self.augment, joint=True),
            **self._classifier_kwargs(
                len(state.classes), state.class_weight, state.custom_criterion
            ),
        }

    def _training_callbacks(self):
        return [
            (
                f"train_{name}_loss",
                PassthroughScoring(name=f"train_{name}_loss", on_train=True),
            )
            for name in HEADS
        ]

    def _set_fitted(self, X, input, state):
        super()._set_fitted(X, input, state)
        self.in_chans_ = input.in_chans
        self._remember_columns(X)

    def _output_columns(self):
        return ("tokens", "pred_mask", "pred_kind")

    # ---------------------------------------------------------------------------- outputs

    def _instance_outputs(self, X, dataset=None):
        """Per instance: ``(probabilities, mask logits, kind logits, tokens)`` and the
        patient of each, in bag order (``dataset``: the instances already prepared)."""
        check_is_fitted(self, "net_")
        if dataset is None:
            self.input_.check(self, X)
            dataset = self.input_.dataset(X, n_jobs=self.n_jobs)
        parts = self._map_batches(
            dataset,
            lambda module, xi: tuple(t.float().cpu() for t in module(xi)),
        )
        aln, mask, kind, token = (torch.cat([p[k] for p in parts]) for k in range(4))
        return torch.softmax(aln, dim=1).numpy(), mask, kind, token.numpy(), dataset.patient

    def _logits(self, X):
        proba, _, _, _, patient = self._instance_outputs(X)
        mean = np.zeros((len(X), proba.shape[1]))
        np.add.at(mean, patient, proba)
        mean /= np.bincount(patient, minlength=len(X))[:, None]
        return torch.log(torch.as_tensor(mean).clamp_min(1e-12))

    def fit_transform(
        self, X: MatrixLike, y: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> pd.DataFrame | np.ndarray:
        """Fit on the whole cohort and return its out-of-fold outputs (see ``cv``).

        Each fold's model is a clone fitted on the other folds' patients; the returned
        tokens (mapped into the final model's token space, see ``cv``), masks and kinds of a
        patient come from the model that did not see them.

        Parameters
        ----------
        X : pandas.DataFrame
        y : array-like of shape (n_patients,)
        sample_weight : array-like of shape (n_patients,), default=None

        Returns
        -------
        pandas.DataFrame
            As :meth:`transform`.
        """
        from sklearn.base import clone
        from sklearn.model_selection import check_cv

        from ..fusion import GroupColumnKFold

        self.fit(X, y, sample_weight)
        if self.cv is None:
            return self.transform(X)
        y = np.asarray(y)
        cv = self.cv
        if isinstance(cv, numbers.Integral):
            cv = GroupColumnKFold(self.group_col, n_splits=cv, random_state=self.random_state)
        cv = check_cv(cv, y, classifier=True)
        cells = {c: [None] * len(X) for c in self._output_columns()}
        for train, test in cv.split(X, y):
            weights = None if sample_weight is None else np.asarray(sample_weight)[train]
            fold = clone(self).set_params(cv=None).fit(X.iloc[train], y[train], weights)
            # each network has its own token space: map the fold network's tokens into the
            # final one's by least squares on the fold's training images (where both are
            # in-sample), then apply the map to the held-out images' fold tokens
            inside = np.concatenate(list(fold.transform(X.iloc[train])["tokens"]))
            target = np.concatenate(list(self.transform(X.iloc[train])["tokens"]))
            align = _linear_map(inside, target)
            part = fold.transform(X.iloc[test])
            part["tokens"] = [align(t) for t in part["tokens"]]
            for column, values in cells.items():
                for i, value in zip(test, part[column]):
                    values[i] = value
        return self._with_columns(X, cells)

    def instance_proba(self, X: pd.DataFrame) -> list[np.ndarray]:
        """Each instance's class probabilities, one array ``(n_instances, n_classes)`` per
        patient."""
        proba, _, _, _, patient = self._instance_outputs(X)
        return [proba[patient == i] for i in range(len(X))]

    def transform(self, X: MatrixLike) -> pd.DataFrame | np.ndarray:
        """Add per-patient columns of instance tokens, predicted masks and kinds.

        ``tokens``: ``(n_instances, dim)`` per patient (the input of
        :class:`~sklearn_alnm.models.MILClassifier`); ``pred_mask``: the instances' masks
        (probability >= 0.5) on the network's grid; ``pred_kind``: the predicted kinds.

        Parameters
        ----------
        X : pandas.DataFrame

        Returns
        -------
        pandas.DataFrame
            ``X`` with the three columns added.
        """
        _, mask, kind, token, patient = self._instance_outputs(X)
        return self._transformed(X, mask, kind, token, patient)

    def _transformed(self, X, mask, kind, token, patient):
        """``X`` with the tokens, masks and kinds of :meth:`transform` from the outputs."""
        masks = (torch.sigmoid(mask[:, 0]) >= 0.5).numpy().astype(np.uint8)
        names = np.asarray(self.input_.kinds)[(kind >= 0).numpy().astype(int)]
        rows = [np.flatnonzero(patient == i) for i in range(len(X))]
        return self._with_columns(
            X,
            {
                "tokens": [token[r] for r in rows],
                "pred_mask": [list(masks[r]) for r in rows],
                "pred_kind": [[str(k) for k in names[r]] for r in rows],
            },
        )

    def class_activation_maps(
        self, X: pd.DataFrame, *, class_index: Any = None, normalize: bool = True
    ) -> list[np.ndarray]:
        """Class activation maps of the image-level head, one per instance.

        The network's ALN head is linear in the lesion token (the mask-weighted mean of the
        image features), so each feature position's share of the class score is exact (see
        :meth:`~sklearn_alnm.nn.MultiTaskSegNet.class_activation_map`): for a binary model,
        the share of the log-odds of ``class_index`` against the other class; otherwise of
        that class's logit. Only the predicted lesion contributes.

        Parameters
        ----------
        X : pandas.DataFrame
        class_index : class label or None, default=None
            The class explained; default the positive class (``pos_label_``).
        normalize : bool, default=True
            ``True``: the positive part, resized bilinearly to the network's input grid and
            divided by its maximum (values in ``[0, 1]``, as :func:`sklearn_alnm.explain.
            grad_cam`); ``False``: the signed shares on the feature grid, which sum to the
            image's log-odds (binary) or logit less the head's bias.

        Returns
        -------
        list of ndarray
            Per patient, ``(n_instances, H, W)`` (``(n_instances, h, w)`` unnormalised).
        """
        check_is_fitted(self, "net_")
        self.input_.check(self, X)
        position = self._class_position(class_index)
        dataset = self.input_.dataset(X, n_jobs=self.n_jobs)
        _, cams = self._explained_outputs(dataset, position, normalize)
        return [cams[dataset.patient == i] for i in range(len(X))]

    def _class_position(self, class_index):
        """Output position of ``class_index`` (default the positive class)."""
        classes = list(self.classes_)
        label = class_index
        if label is None:
            label = self.pos_label_ if len(classes) == 2 else None
            if label is None:
                raise ValueError(f"name the class to explain among {classes} (class_index).")
        matches = [k for k, c in enumerate(classes) if c == label]
        if not matches:
            raise ValueError(f"class_index={class_index!r} is not one of the classes {classes}.")
        return matches[0]

    def _explained_outputs(self, dataset, position, normalize=True):
        """One pass over prepared instances: the network's outputs ``(aln probabilities,
        mask logits, kind logits, tokens)`` and the CAMs of class ``position``."""
        size = tuple(self.input_.input_size)

        def run(module, xi):
            output, cam = module.class_activation_map(xi)
            cam = cam.float()
            if cam.shape[1] == 2:  # the share of the log-odds of the class
                cam = cam[:, position] - cam[:, 1 - position]
            else:
                cam = cam[:, position]
            if normalize:
                cam = F.interpolate(
                    torch.relu(cam)[:, None], size=size, mode="bilinear", align_corners=False
                )[:, 0]
                peak = cam.amax(dim=(1, 2), keepdim=True)
                cam = torch.where(peak > 0, cam / peak.clamp_min(1e-30), 0.0).clamp_(0, 1)
            return tuple(t.float().cpu() for t in output), cam.cpu()

        parts = self._map_batches(dataset, run)
        aln, mask, kind, token = (torch.cat([p[0][k] for p in parts]) for k in range(4))
        outputs = (torch.softmax(aln, dim=1).numpy(), mask, kind, token.numpy())
        return outputs, torch.cat([p[1] for p in parts]).numpy()

    def _explain(self, X, class_index=None):
        """Everything a bag panel shows, from one reading of the images: per patient the
        images, CAMs and class probabilities of the instances, and :meth:`transform`'s
        frame (the next step's input)."""
        check_is_fitted(self, "net_")
        self.input_.check(self, X)
        position = self._class_position(class_index)
        dataset = self.input_.dataset(X, n_jobs=self.n_jobs)
        (proba, mask, kind, token), cams = self._explained_outputs(dataset, position)
        patient = dataset.patient
        images = dataset.inputs.numpy()
        rows = [patient == i for i in range(len(X))]
        return {
            "images": [images[r] for r in rows],
            "cams": [cams[r] for r in rows],
            "instance_proba": [proba[r, position] for r in rows],
            "frame": self._transformed(X, mask, kind, token, patient),
            "position": position,
        }

    def instance_images(self, X: pd.DataFrame) -> list[np.ndarray]:
        """The network's input images, one array ``(n_instances, C, H, W)`` per patient (the
        prepared, normalised instances, for drawing maps over them)."""
        check_is_fitted(self, "net_")
        self.input_.check(self, X)
        dataset = self.input_.dataset(X, n_jobs=self.n_jobs)
        images = dataset.inputs.numpy()
        return [images[dataset.patient == i] for i in range(len(X))]

    def predict_masks(self, X: pd.DataFrame, threshold: float = 0.5) -> list[list[np.ndarray]]:
        """The predicted lesion masks on each image's own grid.

        The mask logits are resized back (bilinearly) to each image's height and width, as
        a segmenter's ``predict`` does; :meth:`transform`'s ``pred_mask`` stays on the
        network's grid.

        Parameters
        ----------
        X : pandas.DataFrame
        threshold : float, default=0.5
            Lesion probability from which a pixel is foreground.

        Returns
        -------
        list of list of ndarray of bool
            Per patient, one ``(H, W)`` mask per instance of its bag, in bag order.
        """
        from ..inputs._masks import to_image_grid

        check_is_fitted(self, "net_")
        self.input_.check(self, X)
        dataset = self.input_.dataset(X, n_jobs=self.n_jobs)
        _, mask, _, _, patient = self._instance_outputs(X, dataset)
        masks = [to_image_grid(m[0], s) >= threshold for m, s in zip(mask, dataset.shapes)]
        return [[masks[k] for k in np.flatnonzero(patient == i)] for i in range(len(X))]

    def segmentation_score(self, X: pd.DataFrame) -> float:
        """Mean Dice of the predicted instance masks against ``mask_col`` (on the network's
        grid; an empty reference and an empty prediction agree perfectly).

        Parameters
        ----------
        X : pandas.DataFrame
            With ``mask_col``.

        Returns
        -------
        float
        """
        from ..metrics import dice_score

        check_is_fitted(self, "net_")
        self.input_.check(self, X, training=True)
        from ..inputs import TensorInputDataset

        frame, patient = self.input_.instances(X, training=True)
        # each image read and prepared once: the network's input and the reference mask
        images, reference, _ = self.input_.images.prepare(
            frame, with_masks=True, n_jobs=self.n_jobs
        )
        dataset = TensorInputDataset(images)
        dataset.patient = patient
        _, mask, _, _, _ = self._instance_outputs(X, dataset)
        predicted = (torch.sigmoid(mask[:, 0]) >= 0.5).numpy()
        truth = (reference[:, 0] >= 0.5).numpy()
        return float(dice_score(truth, predicted))


def _linear_map(source, target, ridge=1e-3):
    """The affine map ``x -> [x, 1] W`` fitting ``source`` rows to ``target`` rows by ridge
    least squares (features standardised for the penalty)."""
    mean, scale = source.mean(axis=0), source.std(axis=0) + 1e-8
    design = np.hstack([(source - mean) / scale, np.ones((len(source), 1))])
    penalty = ridge * len(source) * np.eye(design.shape[1])
    penalty[-1, -1] = 0.0
    weights = np.linalg.solve(design.T @ design + penalty, design.T @ target)

    def apply(x):
        x = np.asarray(x, dtype=np.float64)
        return (np.hstack([(x - mean) / scale, np.ones((len(x), 1))]) @ weights).astype(np.float32)

    return apply


document_classifier(MultiTaskSegClassifier, batch="Instances", module_hint=" (network arguments)")
