"""Mask R-CNN lesion segmentation (the mammography study's segmenter) as a scikit-learn estimator.

:class:`MaskRCNNSegmenter` trains torchvision's Mask R-CNN on a cohort's image and mask
columns and returns one lesion mask per patient, on the patient's own image grid, like the
semantic segmenters of the library (so :class:`~sklearn_alnm.segmentation.SegmentationFusion`
can combine them). Each connected component of a training mask is one lesion instance (its
box, class "lesion" and binary mask); an image whose mask is empty teaches the detector what
background looks like. At prediction time the detections above ``score_threshold`` are kept
(the most confident one, or all of them) and their masks are pasted back on the image grid.

The skorch net built by ``fit`` (:class:`DetectionNet`) replaces skorch's usual steps: a
batch is a list of images of different sizes and a list of target dicts, the module returns
torchvision's dict of losses in training, and the loss is the sum of that dict
(:class:`DetectionLoss`).
"""

import numbers
from typing import Self

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import GradientNormClipping, PassthroughScoring
from skorch.dataset import unpack_data
from torch import nn

from .._logging import get_logger
from .._typing import ArrayLike, MatrixLike
from ..inputs import ImageBatch, InstanceMaskInput, collate_detections, instance_targets
from ..inputs._augment import hflip_instances
from ..inputs._instances import prepare_image
from ..models import AcceleratedNet, BaseNeuralEstimator
from ..models._base import document_training_parameters
from ..nn import get_segmentation_network
from ..nn._checkpoints import resolve_network_weights
from ._base import SegmentationOutputMixin, random_valid_split

__all__ = [
    "DetectionLoss",
    "DetectionNet",
    "ImageBatch",
    "MaskRCNNSegmenter",
    "collate_detections",
    "combine_detections",
    "hflip_instances",
    "instance_targets",
    "prepare_image",
]

_log = get_logger(__name__)

#: The losses torchvision's Mask R-CNN returns in training (recorded per epoch in the history).
LOSS_NAMES = ("loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg")


# ----------------------------------------------------------------------------- targets


def combine_detections(detections, *, score_threshold=0.5, mask_threshold=0.5, keep="largest"):
    """One image's detections -> ``(probability map, binary mask)`` on the image grid.

    Parameters
    ----------
    detections : dict
        torchvision's output for one image: ``scores`` ``(K,)`` and ``masks`` ``(K, 1, H, W)``
        (mask probabilities on the image grid).
    score_threshold : float, default=0.5
        Detections scoring below it are dropped.
    mask_threshold : float, default=0.5
        A pixel belongs to an instance when its mask probability is at least this.
    keep : {"largest", "union"}, default="largest"
        ``"largest"``: the highest-scoring detection only; ``"union"``: all kept detections.

    Returns
    -------
    proba : torch.Tensor of shape (H, W), float32
        Pixel-wise maximum over the kept detections of ``score * mask probability``; zeros
        when nothing is kept.
    mask : torch.Tensor of shape (H, W), bool
        Union of the kept detections' masks (``mask probability >= mask_threshold``).
    """
    masks = detections["masks"]
    scores = detections["scores"].float()
    height, width = masks.shape[-2:]
    kept = torch.nonzero(scores >= score_threshold).flatten()
    if keep == "largest" and kept.numel() > 1:
        kept = kept[scores[kept].argmax()].reshape(1)
    if kept.numel() == 0:
        zeros = torch.zeros((height, width), dtype=torch.float32, device=masks.device)
        return zeros, zeros.bool()
    chosen = masks[kept, 0].float()
    proba = (chosen * scores[kept].view(-1, 1, 1)).amax(dim=0)
    return proba, (chosen >= mask_threshold).any(dim=0)


# --------------------------------------------------------------------------------- net


class DetectionLoss(nn.Module):
    """The training loss of a torchvision detector: the (weighted) sum of its loss dict.

    Parameters
    ----------
    weights : dict or None, default=None
        ``{loss name: weight}`` (e.g. ``{"loss_mask": 2.0}``); unnamed losses weigh 1.
    """

    def __init__(self, weights=None):
        super().__init__()
        self.weights = dict(weights or {})

    def forward(self, losses, targets=None):
        """``sum(weight[name] * loss)`` over the losses' dict."""
        return sum(self.weights.get(name, 1.0) * value for name, value in losses.items())


class DetectionNet(AcceleratedNet):
    """:class:`~sklearn_alnm.models._base.AcceleratedNet` for torchvision detection models.

    A batch is ``(images, targets)``: a list of ``(C, H, W)`` tensors of any sizes and a list of
    target dicts (``boxes``, ``labels``, ``masks``). Training calls ``module(images, targets)``
    and sums the returned loss dict with the criterion (:class:`DetectionLoss`); every loss
    of the dict is also recorded per batch (``train_loss_mask``, ...). The validation loss is
    computed the same way, without gradients and with batch-norm layers in inference mode
    (torchvision's detectors return losses only in training mode). Inference returns
    torchvision's list of detections per batch.

    Parameters
    ----------
    *args, **kwargs
        As for :class:`~sklearn_alnm.models._base.AcceleratedNet`.
    hflip : float, default=0.0
        Probability of mirroring a training image with its boxes and masks left-right.
    """

    def __init__(self, *args, hflip=0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.hflip = hflip

    def _augment(self, images, targets):
        if not self.hflip:
            return images, targets
        flips = torch.rand(len(images)) < self.hflip
        pairs = [
            hflip_instances(image, target) if flip else (image, target)
            for image, target, flip in zip(images, targets, flips.tolist())
        ]
        return [p[0] for p in pairs], [p[1] for p in pairs]

    def _record(self, prefix, losses):
        for name, value in losses.items():
            self.history.record_batch(f"{prefix}_{name}", float(value.detach()))

    def get_loss(self, y_pred, y_true=None, X=None, training=False):
        """The criterion applied to the module's loss dict ``y_pred``."""
        return self.criterion_(y_pred, y_true)

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        images, targets = unpack_data(batch)
        images, targets = self._augment(self._to_device(images), self._to_device(targets))
        with self._autocast():
            losses = self._training_module()(images, targets, **fit_params)
            loss = self.get_loss(losses, targets, X=images, training=True)
        self._backward(loss)
        self._record("train", losses)
        return {"loss": loss.detach(), "y_pred": {k: v.detach() for k, v in losses.items()}}

    def validation_step(self, batch, **fit_params):
        self._set_training(True)  # losses are only computed in training mode ...
        for module in self.module_.modules():  # ... but running statistics stay untouched
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()
        images, targets = unpack_data(batch)
        images, targets = self._to_device(images), self._to_device(targets)
        with torch.no_grad(), self._autocast():
            losses = self.module_(images, targets, **fit_params)
            loss = self.get_loss(losses, targets, X=images, training=False)
        self._set_training(False)
        self._record("valid", losses)
        return {"loss": loss, "y_pred": losses}

    def evaluation_step(self, batch, training=False):
        self.check_is_fitted()
        images, _ = unpack_data(batch)
        images = self._to_device(images)
        self._set_training(training)
        grad = torch.enable_grad() if training else torch.inference_mode()
        with grad, self._autocast():
            return self.module_(images)


# --------------------------------------------------------------------------- estimator


class MaskRCNNSegmenter(SegmentationOutputMixin, BaseNeuralEstimator):
    """Lesion segmentation with Mask R-CNN: one mask per patient, on the patient's image grid.

    The instance segmenter of the mammography study: torchvision's Mask R-CNN (ResNet50-FPN,
    He et al. 2017; ``version="v2"``: the improved heads of Li et al. 2021) is trained on a
    cohort's image column and lesion-mask column, and predicts each patient's lesion as a
    mask on the image's own pixel grid. Images of different sizes are fine (the detector
    resizes each to ``min_size`` / ``max_size`` internally and pastes its masks back).

    Training targets come from the masks: every connected component (8-connected) of a mask is
    one lesion instance, with its bounding box, the class "lesion" and its binary mask; an
    image with an empty mask has no instance and teaches the detector background. Intensities
    are mapped to ``[0, 1]`` per image (its own minimum and maximum); gray images are used
    as they are (replicated to RGB inside the network), RGB ones as RGB.

    Prediction keeps the detections scoring at least ``score_threshold``: with
    ``keep="largest"`` only the highest-scoring one (one lesion per image, the study's
    setting), with ``keep="union"`` all of them. :meth:`predict` returns the union of the kept
    detections' masks (mask probability at least ``mask_threshold``); an image without any
    kept detection gets an empty mask, a valid answer. :meth:`predict_proba` returns, per
    pixel, the maximum over the kept detections of *detection score x mask probability*
    (zeros without detection) — a soft lesion map comparable with the semantic segmenters'
    probabilities. Note that ``predict`` is the union of the thresholded instance masks, not
    ``predict_proba >= mask_threshold``.

    Parameters
    ----------
    image_col : str, default="image"
        Cohort column of the images (paths or arrays, see :func:`sklearn_alnm.io.read_image`).
    mask_col : str, default="mask"
        Cohort column of the reference lesion masks (same grid as the images; any non-zero
        value is lesion; empty masks allowed). Needed by ``fit`` and ``score`` only.
    output_col : str, default="pred_mask"
        Column added by :meth:`transform`.
    version : {"v1", "v2"}, default="v1"
        ``"v1"``: ``maskrcnn_resnet50_fpn``; ``"v2"``: ``maskrcnn_resnet50_fpn_v2``.
    weights : None, str or os.PathLike, default=None
        Weights of the whole detector: ``None`` (random, seeded by ``random_state``),
        ``"DEFAULT"`` / ``"COCO_V1"`` (used only when the file is already in the local torch
        hub cache; nothing is downloaded) or a checkpoint path. The COCO box and mask
        predictors are replaced by lesion ones. See :func:`sklearn_alnm.nn.build_maskrcnn`.
    weights_backbone : None, str or os.PathLike, default=None
        ImageNet weights of the ResNet50 trunk only (``"DEFAULT"``, a weights name in the hub
        cache, or a checkpoint path). Not with ``weights``.
    min_size, max_size : int, default=512, 1024
        Each image is rescaled inside the network so that its shorter side is ``min_size``,
        unless its longer side would then exceed ``max_size``.
    score_threshold : float in [0, 1], default=0.5
        Detections scoring below it are ignored at prediction time.
    mask_threshold : float in [0, 1], default=0.5
        Threshold of a detection's mask probabilities.
    keep : {"largest", "union"}, default="largest"
        ``"largest"``: keep the highest-scoring detection only (the most confident lesion);
        ``"union"``: keep every detection above ``score_threshold``.
    optimizer : {"sgd", "adam", "adamw"} or torch.optim.Optimizer class, default="sgd"
        ``"sgd"`` uses momentum 0.9 (torchvision's detection recipe); other arguments through
        ``optimizer__<name>`` (e.g. ``optimizer__weight_decay=1e-4``). The gradients' global
        norm is clipped at 10, which keeps a randomly initialised detector from diverging in
        its first steps (:class:`skorch.callbacks.GradientNormClipping`, named
        ``"gradient_clipping"``; set another bound with
        ``callbacks__gradient_clipping__gradient_clip_value``, or remove it with
        ``callbacks__gradient_clipping=None``).
    augment : {"default"} or None, default="default"
        ``"default"``: each training image is mirrored left-right with probability 0.5,
        together with its boxes and masks; never at prediction. ``None``: no augmentation.
    {training_parameters}
    **skorch_kwargs
        Other :class:`skorch.NeuralNet` arguments in skorch's syntax, e.g. arguments of the
        detector (:class:`torchvision.models.detection.MaskRCNN`):
        ``module__box_detections_per_img`` (10 by default here, not torchvision's 100: each
        detection's mask is pasted on the full image grid), ``module__rpn_batch_size_per_image``,
        ``module__box_batch_size_per_image``, ``module__trainable_backbone_layers=3``,
        ``module__anchor_generator=...``; ``criterion__weights={"loss_mask": 2.0}`` (weights of
        the summed losses);
        ``optimizer__weight_decay``, ``iterator_train__num_workers``, ``callbacks``. They are
        estimator parameters (``get_params``, ``set_params``, ``clone``, ``GridSearchCV``).

    Attributes
    ----------
    module_ : sklearn_alnm.nn.MaskRCNNNet
        The trained detector (on ``device_``), in inference mode.
    net_ : DetectionNet
        The trained skorch net.
    history_ : skorch.history.History
        One dict per epoch: ``train_loss`` (the summed loss) and each of torchvision's losses
        (``train_loss_classifier``, ``train_loss_box_reg``, ``train_loss_mask``,
        ``train_loss_objectness``, ``train_loss_rpn_box_reg``), their ``valid_`` versions
        with ``valid_split``, ``event_lr`` with ``lr_schedule``, ``dur``, ...
    in_chans_ : int
        Channels the network takes: 3 when any training image is RGB, else 1.
    n_instances_ : int
        Lesion instances (mask components) in the training masks.
    device_ : str
        The device the detector is on.
    checkpoint_path_ : str or None
        The run folder with ``checkpoint_dir``.

    See Also
    --------
    sklearn_alnm.nn.build_maskrcnn : The network.
    sklearn_alnm.metrics.dice_score : The metric of :meth:`score`.

    Notes
    -----
    Without pretrained weights Mask R-CNN needs many images and epochs; use ``weights`` or
    ``weights_backbone`` (files placed in the torch hub cache) for real studies. Pickles
    (``joblib.dump``) hold the weights and the history, and load on a CPU-only machine.

    References
    ----------
    .. [1] K. He, G. Gkioxari, P. Dollár, R. Girshick, "Mask R-CNN", ICCV 2017.
    .. [2] Y. Li, S. Xie, X. Chen, P. Dollár, K. He, R. Girshick, "Benchmarking Detection
       Transfer Learning with Vision Transformers", arXiv:2111.11429, 2021 (the ``v2`` heads).
    .. [3] Mammography study of the library's recipes: clinical, radiomics and deep-learning
       features of the CC and MLO views, the lesions outlined by Mask R-CNN.

    Examples
    --------
    >>> from sklearn_alnm.datasets import make_alnm_cohort
    >>> from sklearn_alnm.segmentation._maskrcnn import MaskRCNNSegmenter
    >>> X, _ = make_alnm_cohort(4, modalities="mammography", image_size=32, random_state=0)
    >>> seg = MaskRCNNSegmenter("cc_image", "cc_mask", min_size=32, max_size=32,
    ...                         max_epochs=1, random_state=0, device="cpu",
    ...                         module__rpn_batch_size_per_image=32,
    ...                         module__box_batch_size_per_image=16,
    ...                         module__box_detections_per_img=5)
    >>> masks = seg.fit(X).predict(X)
    >>> len(masks), masks[0].shape, masks[0].dtype
    (4, (32, 32), dtype('bool'))
    >>> seg.transform(X).columns[-1], len(seg.history_)
    ('pred_mask', 1)
    """

    _parameter_constraints = {
        **BaseNeuralEstimator._parameter_constraints,
        "image_col": [str],
        "mask_col": [str],
        "output_col": [str],
        "version": [StrOptions({"v1", "v2"})],
        "weights": "no_validation",  # None, a name, a path or an enum member: build_maskrcnn
        "weights_backbone": "no_validation",
        "min_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "score_threshold": [Interval(numbers.Real, 0, 1, closed="both")],
        "mask_threshold": [Interval(numbers.Real, 0, 1, closed="both")],
        "keep": [StrOptions({"largest", "union"})],
        "augment": [StrOptions({"default"}), None],
    }

    _owned_skorch_keys = {
        **BaseNeuralEstimator._owned_skorch_keys,
        "module__num_classes": None,
        "module__in_chans": None,
        "module__weights": "weights",
        "module__weights_backbone": "weights_backbone",
        "module__version": "version",
        "module__min_size": "min_size",
        "module__max_size": "max_size",
        "iterator_train__collate_fn": None,
        "iterator_valid__collate_fn": None,
    }

    _net_class = DetectionNet

    def __init__(
        self,
        image_col="image",
        mask_col="mask",
        *,
        output_col="pred_mask",
        version="v1",
        weights=None,
        weights_backbone=None,
        min_size=512,
        max_size=1024,
        score_threshold=0.5,
        mask_threshold=0.5,
        keep="largest",
        optimizer="sgd",
        lr=0.005,
        lr_schedule=None,
        max_epochs=30,
        batch_size=2,
        augment="default",
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

    def fit(self, X: MatrixLike, y: ArrayLike | None = None) -> Self:
        """Train Mask R-CNN on the cohort's images and lesion masks.

        Parameters
        ----------
        X : pandas.DataFrame
            The cohort, with ``image_col`` and ``mask_col``.
        y : None
            Ignored (the targets are the masks).

        Returns
        -------
        self
        """
        return self._fit(X)

    # ------------------------------------------------------------------------------- hooks

    def _check_settings(self, state):
        # unavailable or conflicting weights fail before any image is read
        resolve_network_weights("maskrcnn", self.version, self.weights, self.weights_backbone)

    def _make_input(self, state):
        return InstanceMaskInput(self.image_col, self.mask_col)

    def _training_dataset(self, input, X, target, state):
        dataset = input.dataset(X, training=True, n_jobs=self.n_jobs)
        state.n_instances = int(sum(len(t["labels"]) for t in dataset.targets))
        return dataset

    def _module_kwargs(self, input, state):
        spec = get_segmentation_network("maskrcnn")
        kwargs = {
            "module": spec.builder,
            "module__num_classes": 2,
            "module__in_chans": input.in_chans,
            **{f"module__{name}": getattr(self, name) for name in spec.params},
            "hflip": 0.5 if self.augment == "default" else 0.0,
            "augment": None,
            "channels_last": False,
        }
        if "criterion" not in self._skorch_kwargs():
            kwargs["criterion"] = DetectionLoss
        return kwargs

    def _set_fitted(self, X, input, state):
        self.in_chans_ = input.in_chans
        self._remember_columns(X)
        self.n_instances_ = state.n_instances

    def _net_kwargs(self, settings, **kwargs):
        kwargs = super()._net_kwargs(settings, **kwargs)
        # keep every training image (a batch of one is fine for the detector)
        kwargs.setdefault("iterator_train__drop_last", False)
        # a lesion study needs a few detections per image, not COCO's 100 full-grid masks
        kwargs.setdefault("module__box_detections_per_img", 10)
        return kwargs

    def _train_split(self, seed):
        return random_valid_split(self.valid_split, seed)

    def _scoring_callbacks(self, has_valid):
        prefixes = ("train", "valid") if has_valid else ("train",)
        clipping = ("gradient_clipping", GradientNormClipping(gradient_clip_value=10.0))
        return [clipping] + [
            (
                f"{prefix}_{name}",
                PassthroughScoring(
                    f"{prefix}_{name}", lower_is_better=None, on_train=prefix == "train"
                ),
            )
            for prefix in prefixes
            for name in LOSS_NAMES
        ]

    # ---------------------------------------------------------------------------- inference

    def _segment(self, X):
        """``[(proba, mask), ...]`` per row: numpy float32 and bool maps on each image grid."""
        check_is_fitted(self, "net_")
        self._validate_params()
        dataset = self._inference_dataset(X)
        options = {
            "score_threshold": float(self.score_threshold),
            "mask_threshold": float(self.mask_threshold),
            "keep": self.keep,
        }
        results = []
        for detections in self._forward_iter(dataset):
            for detection in detections:
                proba, mask = combine_detections(detection, **options)
                results.append((proba.cpu().numpy(), mask.cpu().numpy()))
        return results

    def predict_proba(self, X: MatrixLike) -> np.ndarray:
        """Soft lesion maps: per pixel, the maximum of *score x mask probability* of the kept
        detections (zeros where nothing is detected).

        Parameters
        ----------
        X : pandas.DataFrame
            The cohort (``image_col``).

        Returns
        -------
        list of ndarray
            One float32 array ``(H, W)`` in ``[0, 1]`` per row, on that row's image grid.
        """
        return [proba for proba, _ in self._segment(X)]

    def predict(self, X: MatrixLike) -> list[np.ndarray]:
        """Lesion masks: the union of the kept detections' masks (empty without detection).

        Parameters
        ----------
        X : pandas.DataFrame
            The cohort (``image_col``).

        Returns
        -------
        list of ndarray
            One boolean array ``(H, W)`` per row, on that row's image grid.
        """
        return [mask for _, mask in self._segment(X)]


document_training_parameters(
    MaskRCNNSegmenter, batch="Images", split="random", skip=("optimizer", "skorch_kwargs")
)
