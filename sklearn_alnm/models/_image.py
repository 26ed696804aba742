"""Deep image classifier: a registry backbone fine-tuned end to end on a cohort image column."""

import numbers
import os

import joblib
import numpy as np
import torch
from sklearn.base import ClassifierMixin
from sklearn.metrics import roc_auc_score
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import EpochScoring
from skorch.utils import to_numpy, to_tensor

from .._logging import get_logger
from ..nn import Backbone, get_backbone_spec, resolve_weights
from ..utils import check_cohort, resolve_pos_label
from ._base import AcceleratedNet, BaseNeuralEstimator
from ._data import (
    ImagePreparer,
    LazyImageDataset,
    PreparedImageDataset,
    check_intensity_range,
    check_margin,
    resolve_augment,
)

_log = get_logger(__name__)


class WeightedCrossEntropyLoss(torch.nn.CrossEntropyLoss):
    """:class:`torch.nn.CrossEntropyLoss` whose class weights are given as plain numbers.

    Keeps tensors out of the net's constructor arguments (they are pickled as they are, while
    the criterion's own tensors follow the device-mapping rules of skorch's pickling).

    Parameters
    ----------
    class_weight : sequence of float or None, default=None
        Weight of each class (in the order of the encoded labels).
    **kwargs
        Other :class:`torch.nn.CrossEntropyLoss` arguments (``reduction``,
        ``label_smoothing``, ...).
    """

    def __init__(self, class_weight=None, **kwargs):
        weight = None
        if class_weight is not None:
            weight = torch.as_tensor(np.asarray(class_weight, dtype=np.float32))
        super().__init__(weight=weight, **kwargs)


class ClassifierNet(AcceleratedNet):
    """:class:`AcceleratedNet` whose loss honours class weights and per-sample weights.

    A batch's target is the label tensor, or ``(labels, sample_weights)``. The criterion
    returns per-sample losses (``reduction="none"``); the batch loss is their weighted mean
    ``sum(w_i l_i) / sum(w_i c_{y_i})`` with ``c`` the class weights of the criterion (the
    mean PyTorch's weighted ``CrossEntropyLoss`` computes, extended by sample weights).
    """

    def get_loss(self, y_pred, y_true, X=None, training=False):
        weights = None
        if isinstance(y_true, tuple | list):
            y_true, weights = y_true
        y_true = to_tensor(y_true, device=self.device)
        loss = self.criterion_(y_pred, y_true)
        if loss.ndim == 0:
            if weights is not None:
                raise ValueError(
                    "sample_weight needs a criterion that returns per-sample losses "
                    "(reduction='none')."
                )
            return loss
        class_weight = getattr(self.criterion_, "weight", None)
        denominator = class_weight[y_true] if class_weight is not None else None
        if weights is not None:
            weights = to_tensor(weights, device=self.device)
            loss = loss * weights
            denominator = weights if denominator is None else denominator * weights
        if denominator is None:
            return loss.mean()
        return loss.sum() / denominator.sum().clamp_min(torch.finfo(loss.dtype).tiny)


def _labels_of(target):
    """Labels of a batch target (``labels`` or ``(labels, sample_weights)``), as numpy."""
    if isinstance(target, tuple | list):
        target = target[0]
    return to_numpy(target)


def epoch_auc(net, X, y):
    """ROC AUC of the epoch's outputs (one-vs-rest macro AUC for more than two classes).

    Used by skorch's :class:`~skorch.callbacks.EpochScoring` with caching, so the outputs are
    those the training or validation batches already produced: no extra forward pass. NaN
    when ``y`` holds a single class.
    """
    if y is None:
        return float("nan")
    logits = net.forward(X).float()
    y = np.asarray(y)
    if logits.ndim != 2 or len(np.unique(y)) < 2:
        return float("nan")
    if logits.shape[1] == 2:
        return _binary_auc(y, to_numpy(logits[:, 1] - logits[:, 0]))
    proba = to_numpy(torch.softmax(logits, dim=1))
    try:
        return float(roc_auc_score(y, proba, multi_class="ovr", labels=np.arange(logits.shape[1])))
    except ValueError:
        return float("nan")


def _binary_auc(y, scores):
    """ROC AUC of scores for labels 0/1 (Mann-Whitney U with mid-ranks for ties)."""
    from scipy.stats import rankdata

    positive = y == 1
    n_pos = int(positive.sum())
    n_neg = len(y) - n_pos
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


class ImageClassifier(ClassifierMixin, BaseNeuralEstimator):
    """Fine-tune a CNN / ViT backbone on a cohort image column (e.g. the lesion ROI) end to end.

    The deep-learning signature of the ultrasound studies: each patient's image (whole, or the
    rectangle around the lesion mask) is mapped to ``[0, 1]``, resized, normalised and fed to
    a backbone of :mod:`sklearn_alnm.nn` (ResNet, DenseNet, VGG, Inception, ViT, PLNet, ULNet,
    ...) whose classification head is replaced by dropout and a new linear layer. Training is
    plain supervised fine-tuning with skorch: cross-entropy (optionally class- or
    sample-weighted), Adam / AdamW / SGD, an optional step or cosine learning-rate schedule,
    random resized crop + horizontal flip of the training batches, optional validation split,
    early stopping and checkpointing. ``predict_proba`` gives the per-patient probabilities
    that later steps (nomograms, stacking, DeLong tests) use as the DL score.

    Parameters
    ----------
    image_col : str, default="image"
        Cohort column of the images (paths or arrays, see :func:`sklearn_alnm.io.read_image`).
    mask_col : str or None, default=None
        Cohort column of the lesion masks (same grid as the images). Without it, whole images
        are used and ``crop`` is ignored.
    backbone : str, default="resnet50"
        A registered backbone (:func:`sklearn_alnm.nn.available_backbones`).
    weights : None, str or os.PathLike, default=None
        Initial weights of the backbone: ``None`` (random, seeded by ``random_state``),
        ``"DEFAULT"`` or a torchvision weights name (used only if the file is already in the
        local torch hub cache; otherwise :class:`~sklearn_alnm.nn.WeightsNotAvailableError`
        says which file to put where), or a local checkpoint path. See
        :func:`sklearn_alnm.nn.resolve_weights`.
    in_chans : "auto" or int, default="auto"
        Input channels of the network. ``"auto"``: 1 when every training image is grayscale,
        3 when any is RGB. Gray images are replicated to 3 channels, RGB ones averaged to 1,
        as needed. Pretrained RGB kernels are adapted (summed for one channel).
    input_size : int or tuple of 2 int, default=224
        Height and width the image or crop is resized to (at least the backbone's minimum: 75
        for ``inception_v3``, 32 for most others; ``vit_b_16`` is built for this size, a
        multiple of 16).
    crop : {"mask_bbox", "mask"} or None, default="mask_bbox"
        With ``mask_col``: ``"mask_bbox"`` keeps the rectangle around the mask (plus
        ``margin``); ``"mask"`` keeps that rectangle with the pixels outside the mask set to
        0; ``None`` keeps the whole image (the mask is not read).
    margin : int or float, default=0
        Added around the mask's rectangle: pixels (int) or a fraction of its size (float).
    intensity_range : "auto" or tuple of 2 float, default="auto"
        Intensities mapped to ``[0, 1]``: ``(0, 255)`` for 8-bit images, else each image's
        min / max (``"auto"``), or a fixed ``(low, high)``.
    augment : "default", None or callable, default="default"
        Augmentation of the training batches only (never of validation batches or
        predictions), applied on the device. ``"default"``: per image, a random resized crop
        (50-100 % of the area, aspect ratio 3/4-4/3) and a horizontal flip with probability
        0.5, no vertical flip (:class:`RandomResizedCropFlip`, which can also be passed with
        other settings). A callable receives one
        image tensor ``(C, H, W)`` and returns one of the same shape, e.g. a
        ``torchvision.transforms.v2.Compose`` (objects with a true ``batched`` attribute
        receive the whole batch ``(N, C, H, W)``). ``None``: no augmentation.
    normalize : {"imagenet", "zscore", "histeq+zscore"}, default="imagenet"
        ``"imagenet"``: ImageNet channel means and standard deviations (their means for
        one-channel inputs), as pretrained weights expect. ``"zscore"``: each image's own mean
        and standard deviation. ``"histeq+zscore"``: histogram equalisation (of the lesion's
        pixels with ``crop="mask"``), then z-score.
    dropout : float, default=0.5
        Dropout probability in front of the new linear head.
    optimizer : {"adam", "adamw", "sgd"} or torch.optim.Optimizer class, default="adam"
        ``"sgd"`` uses momentum 0.9. Other optimizer arguments go through skorch's
        ``optimizer__<name>`` (e.g. ``optimizer__weight_decay=1e-4``).
    lr : float, default=1e-3
        Initial learning rate.
    lr_schedule : None, "step", "cosine" or dict, default=None
        Stepped once per epoch. ``"step"``: halve the rate every 10 epochs
        (``StepLR(step_size=10, gamma=0.5)``); ``"cosine"``: cosine decay to 0 over
        ``max_epochs`` (``CosineAnnealingLR(T_max=max_epochs)``). Their arguments can be
        changed with ``callbacks__lr_scheduler__step_size=...`` etc. A dict
        ``{"policy": "StepLR" | "step" | "cosine" | a scheduler class, **kwargs}`` gives any
        torch scheduler. The rate of each epoch is recorded in ``history_`` (``"event_lr"``).
    max_epochs : int, default=30
        Number of training epochs (in total when resuming from a checkpoint).
    batch_size : int, default=32
        Images per batch (training and inference).
    class_weight : None, "balanced" or dict, default=None
        Weights of the classes in the loss (``{label: weight}``); ``"balanced"`` uses
        ``n_samples / (n_classes * count)``.
    pos_label : scalar or None, default=None
        The positive class of binary labels (e.g. ``"N+"``): required unless the labels are
        0/1, -1/1 or booleans, since the sorted order of labels such as "N0" / "N+" says
        nothing about which one is the event. It is what Grad-CAM explains by default and
        what a report's probability column refers to.
    early_stopping : None, int or dict, default=None
        Stop when the validation loss (the training loss without ``valid_split``) has not
        improved for this many epochs, and restore the weights of the best epoch. A dict gives
        :class:`skorch.callbacks.EarlyStopping` arguments (``monitor``, ``patience``,
        ``load_best``, ...).
    valid_split : None, float, int or callable, default=None
        Hold out a stratified validation part of the training data (a fraction, or 1/k for an
        int k), seeded by ``random_state``, for the validation loss and AUC of each epoch; or a
        callable ``(dataset, y) -> (dataset_train, dataset_valid)`` (skorch's ``train_split``).
    checkpoint_dir : None, str or os.PathLike, default=None
        Folder for checkpoints. Each run (estimator settings + training data, ``max_epochs``
        and ``verbose`` excepted) gets a sub-folder ``run-<hash>`` (``checkpoint_path_``) where
        the weights, optimizer state and history are saved after every epoch. A ``fit`` whose
        run folder holds an unfinished run resumes at the stored epoch (so an interrupted fit,
        e.g. by Ctrl-C or a crash, continues where it stopped), and one holding a finished run
        loads it instead of training again; a larger ``max_epochs`` continues a finished run.
        Delete the folder to start over. Random number streams are not restored, so a resumed
        run is not bitwise identical to an uninterrupted one.
    preload : bool, default=True
        Read and prepare every image once per ``fit`` / ``predict`` call and keep the prepared
        tensor in memory (fast epochs). ``False`` reads each batch's images when needed (for
        cohorts too large for memory; use ``iterator_train__num_workers`` to parallelise).
    n_jobs : int or None, default=None
        Threads reading and preparing images during preloading.
    device : str, default="auto"
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``. On
        CUDA the model and inputs use the channels-last memory format, batches come from
        pinned memory (read by two loader workers when ``preload=False``), and cuDNN
        autotuning is on.
    amp : "auto", False, "bf16" or "fp16", default="auto"
        Mixed precision on CUDA: ``"auto"`` uses bfloat16 where supported, else float16 with
        gradient scaling. Always off on the CPU.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation, the validation split, shuffling, dropout and augmentation.
        Torch's global generators are forked during ``fit``, so the caller's random state is
        left untouched. With an int, two fits on the CPU give identical models.
    verbose : int, default=0
        ``0``: silent. ``>0``: a progress bar (tqdm) per epoch and skorch's epoch table.
    **skorch_kwargs
        Any other :class:`skorch.NeuralNet` argument in skorch's syntax:
        ``module__<arg>`` (backbone arguments other than those above),
        ``optimizer__<arg>``, ``criterion`` / ``criterion__<arg>`` (e.g.
        ``criterion__label_smoothing=0.1``), ``iterator_train__<arg>`` /
        ``iterator_valid__<arg>`` (DataLoader arguments such as ``num_workers``),
        ``callbacks`` (a list of extra skorch callbacks) and ``callbacks__<name>__<arg>``,
        ``compile``. They are parameters of the estimator like any other (``get_params``,
        ``set_params``, ``clone``, ``GridSearchCV``).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels, as given in ``y`` (sorted); ``predict_proba``'s columns follow them and
        the binary ``decision_function`` is the logit of ``classes_[1]`` (scikit-learn's
        convention).
    pos_label_ : scalar or None
        The positive class of binary labels (``pos_label``, or 1 / True for 0/1 or boolean
        labels): the class Grad-CAM explains by default and reports refer to. ``None`` for
        more than two classes.
    module_ : sklearn_alnm.nn.Backbone
        The fine-tuned network, on ``device_``, returning logits ``(N, n_classes)``. Its
        ``gradcam_layer`` names the layer Grad-CAM uses (:mod:`sklearn_alnm.explain`).
    net_ : skorch.NeuralNet
        The trained skorch net.
    history_ : skorch.history.History
        One dict per epoch: ``train_loss``, ``train_auc`` (from the training batches' outputs,
        under dropout and augmentation), ``valid_loss`` and ``valid_auc`` (with
        ``valid_split``), ``event_lr`` (with ``lr_schedule``), ``dur`` (seconds), ...
    device_ : str
        Device of ``module_``; after unpickling on a machine without CUDA, ``"cpu"``.
    in_chans_ : int
        Input channels of the network.
    input_size_ : tuple of 2 int
        ``(height, width)`` of the network's input.
    class_weight_ : ndarray of shape (n_classes,) or None
        Class weights used in the loss.
    checkpoint_path_ : str or None
        Checkpoint folder of the run (with ``checkpoint_dir``).

    See Also
    --------
    sklearn_alnm.features.DeepFeatures : Frozen-backbone embeddings instead of fine-tuning.
    sklearn_alnm.nn.Backbone : The networks.

    Notes
    -----
    The settings of the published models are reachable directly: Adam at 1e-3 halved every 10
    epochs (``optimizer="adam", lr=1e-3, lr_schedule="step"``); SGD with cosine decay from
    0.01 (``optimizer="sgd", lr=0.01, lr_schedule="cosine"``); dropout 0.5 in front of the
    head; random resized crop and horizontal flip (``augment="default"``).

    Images are prepared once per call (``preload=True``) into one float32 tensor, so an epoch
    costs little more than the network's forward and backward passes; the training AUC comes
    from the outputs the training batches produce anyway. Pickles (``joblib.dump``) hold the
    weights, the history and the preprocessing settings; a model trained on CUDA loads on a
    CPU-only machine (its tensors are mapped to the CPU).

    References
    ----------
    .. [1] Deep-learning signature on breast ultrasound with automatic lesion segmentation
       (U-Net / U-Net++ / DeepLabV3 fusion, ResNet50 on the segmented ROI) combined with
       clinical factors for axillary lymph node metastasis (the ultrasound study recipe of
       :mod:`sklearn_alnm.recipes`).
    .. [2] L. Peng, L. Yu, B. Liu, F. Xiang, Y. Wu, "Construction of a prediction model for
       axillary lymph node metastasis in breast cancer patients based on a multimodal fusion
       strategy of ultrasound and pathological images", Front. Oncol. 15:1591858, 2025
       (ULNet, a ResNet50 on ultrasound, and PLNet on pathology).
    .. [3] K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image Recognition",
       CVPR 2016.

    Examples
    --------
    >>> from sklearn_alnm.datasets import make_alnm_cohort
    >>> from sklearn_alnm.models import ImageClassifier
    >>> X, y = make_alnm_cohort(16, modalities="ultrasound", image_size=32, random_state=0)
    >>> clf = ImageClassifier(mask_col="mask", backbone="resnet18", input_size=32,
    ...                       max_epochs=1, batch_size=8, random_state=0)
    >>> clf.fit(X, y).predict_proba(X).shape
    (16, 2)
    >>> clf.in_chans_, len(clf.history_), clf.module_.gradcam_layer
    (1, 1, 'net.layer4')
    """

    _parameter_constraints = {
        "image_col": [str],
        "mask_col": [None, str],
        "backbone": [str],
        "weights": "no_validation",  # None, a name, a path or an enum member: resolve_weights
        "in_chans": [StrOptions({"auto"}), Interval(numbers.Integral, 1, None, closed="left")],
        "input_size": [Interval(numbers.Integral, 1, None, closed="left"), tuple, list],
        "crop": [StrOptions({"mask_bbox", "mask"}), None],
        "margin": [
            Interval(numbers.Integral, 0, None, closed="left"),
            Interval(numbers.Real, 0, None, closed="left"),
        ],
        "intensity_range": [StrOptions({"auto"}), tuple, list],
        "augment": [StrOptions({"default"}), None, callable],
        "normalize": [StrOptions({"imagenet", "zscore", "histeq+zscore"})],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "optimizer": "no_validation",  # a name or an Optimizer class: checked in fit
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "lr_schedule": "no_validation",
        "max_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "class_weight": [None, StrOptions({"balanced"}), dict],
        "pos_label": "no_validation",
        "early_stopping": "no_validation",
        "valid_split": "no_validation",
        "checkpoint_dir": [None, str, os.PathLike],
        "preload": ["boolean"],
        "n_jobs": [None, numbers.Integral],
        "device": "no_validation",  # checked by resolve_device
        "amp": "no_validation",
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    _owned_skorch_keys = {
        **BaseNeuralEstimator._owned_skorch_keys,
        "module__name": "backbone",
        "module__weights": "weights",
        "module__in_chans": "in_chans",
        "module__num_classes": None,
        "module__input_size": "input_size",
        "module__dropout": "dropout",
        "module__seed": "random_state",
        "criterion__weight": "class_weight",
        "criterion__class_weight": "class_weight",
    }

    def __init__(
        self,
        image_col="image",
        mask_col=None,
        *,
        backbone="resnet50",
        weights=None,
        in_chans="auto",
        input_size=224,
        crop="mask_bbox",
        margin=0,
        intensity_range="auto",
        augment="default",
        normalize="imagenet",
        dropout=0.5,
        optimizer="adam",
        lr=1e-3,
        lr_schedule=None,
        max_epochs=30,
        batch_size=32,
        class_weight=None,
        pos_label=None,
        early_stopping=None,
        valid_split=None,
        checkpoint_dir=None,
        preload=True,
        n_jobs=None,
        device="auto",
        amp="auto",
        random_state=None,
        verbose=0,
        **skorch_kwargs,
    ):
        self.image_col = image_col
        self.mask_col = mask_col
        self.backbone = backbone
        self.weights = weights
        self.in_chans = in_chans
        self.input_size = input_size
        self.crop = crop
        self.margin = margin
        self.intensity_range = intensity_range
        self.augment = augment
        self.normalize = normalize
        self.dropout = dropout
        self.optimizer = optimizer
        self.lr = lr
        self.lr_schedule = lr_schedule
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.class_weight = class_weight
        self.pos_label = pos_label
        self.early_stopping = early_stopping
        self.valid_split = valid_split
        self.checkpoint_dir = checkpoint_dir
        self.preload = preload
        self.n_jobs = n_jobs
        self.device = device
        self.amp = amp
        self.random_state = random_state
        self.verbose = verbose
        self._store_skorch_kwargs(skorch_kwargs)

    # ------------------------------------------------------------------------------- checks

    def _check_sample_weight(self, sample_weight, n_samples):
        if sample_weight is None:
            return None
        weights = np.asarray(sample_weight, dtype=np.float64)
        if weights.ndim == 0:
            weights = np.full(n_samples, float(weights))
        if weights.shape != (n_samples,):
            raise ValueError(f"sample_weight must have shape ({n_samples},); got {weights.shape}.")
        if not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
            raise ValueError("sample_weight must be finite, non-negative and not all zero.")
        return weights

    def _resolve_pos_label(self, classes):
        """The positive class of binary labels (never guessed); None for multiclass."""
        if len(classes) == 2:
            return resolve_pos_label(classes, self.pos_label, owner=type(self).__name__)
        if self.pos_label is not None:
            raise ValueError(
                f"pos_label={self.pos_label!r} applies to binary labels; y has "
                f"{len(classes)} classes."
            )
        return None

    def _class_weights(self, classes, y_encoded):
        cw = self.class_weight
        if cw is None:
            return None
        if cw == "balanced":
            return compute_class_weight("balanced", classes=np.arange(len(classes)), y=y_encoded)
        unknown = [k for k in cw if k not in set(classes.tolist())]
        if unknown:
            raise ValueError(
                f"class_weight names labels {unknown} that are not in y; the classes are "
                f"{classes.tolist()}."
            )
        return np.array([float(cw.get(c, 1.0)) for c in classes.tolist()])

    # ---------------------------------------------------------------------------------- fit

    def fit(self, X, y, sample_weight=None):
        """Fine-tune the backbone on the cohort's images.

        Parameters
        ----------
        X : pandas.DataFrame
            The cohort, with ``image_col`` (and ``mask_col``).
        y : array-like of shape (n_patients,)
            Labels, any two (or more) values.
        sample_weight : array-like of shape (n_patients,), default=None
            Per-patient weights of the loss.

        Returns
        -------
        self
        """
        self._validate_params()
        settings = self._check_training_params()
        preparer = self._make_preparer()
        check_cohort(self, X, preparer.columns)
        classes, y_encoded = self._encode_labels(y, len(X))
        pos_label = self._resolve_pos_label(classes)
        weights = self._check_sample_weight(sample_weight, len(X))
        class_weight = self._class_weights(classes, y_encoded)
        spec = get_backbone_spec(self.backbone)
        size = spec.check_input_size(self.input_size)
        preparer.input_size = size
        resolve_weights(spec.name, self.weights)  # unavailable weights fail before reading
        augment = resolve_augment(self.augment)
        user = self._skorch_kwargs()
        custom_criterion = "criterion" in user
        if custom_criterion and (class_weight is not None or weights is not None):
            raise ValueError(
                "class_weight and sample_weight need the default criterion (cross-entropy); "
                "do not pass criterion= together with them."
            )

        if self.preload:
            images, in_chans = preparer.prepare(X, n_jobs=self.n_jobs, verbose=self.verbose)
            preparer.in_chans = in_chans
            dataset = PreparedImageDataset(images, y_encoded, weights)
        else:
            in_chans = preparer.in_chans or preparer.channels_of_first(X)
            preparer.in_chans = in_chans
            dataset = LazyImageDataset(X, preparer, y_encoded, weights)

        net_kwargs = self._module_kwargs(
            spec, in_chans, len(classes), size, settings, augment, custom_criterion, class_weight
        )
        fingerprint = None
        if self.checkpoint_dir is not None:
            fingerprint = self._fingerprint(X, dataset, y_encoded, weights)
        self._fit_net(
            net_kwargs=net_kwargs,
            dataset=dataset,
            y=y_encoded,
            settings=settings,
            fingerprint=fingerprint,
        )
        self.classes_ = classes
        self.pos_label_ = pos_label
        self.in_chans_ = in_chans
        self.input_size_ = size
        self.class_weight_ = class_weight
        self.preparer_ = preparer
        _log.info(
            "%s(%s): %d epochs on %d images (%d channels, %dx%d) on %s",
            type(self).__name__,
            spec.name,
            len(self.net_.history),
            len(X),
            in_chans,
            *size,
            self.device_,
        )
        return self

    _net_class = ClassifierNet

    def _module_kwargs(
        self,
        spec,
        in_chans,
        n_classes,
        size,
        settings,
        augment,
        custom_criterion,
        class_weight,
        *,
        pretrained=True,
    ):
        """The module and criterion arguments of the net (the rest: ``_net_kwargs``)."""
        kwargs = {
            "module": Backbone,
            "module__name": spec.name,
            "module__weights": self.weights if pretrained else None,
            "module__in_chans": in_chans,
            "module__num_classes": n_classes,
            "module__input_size": size,
            "module__dropout": float(self.dropout),
            "module__seed": settings["seed"],
            "augment": augment,
        }
        if not custom_criterion:
            kwargs["criterion"] = WeightedCrossEntropyLoss
            kwargs["criterion__reduction"] = "none"
            if class_weight is not None:
                kwargs["criterion__class_weight"] = tuple(float(w) for w in class_weight)
        return kwargs

    def _fitted_settings(self):
        check_is_fitted(self, "net_")
        return {
            "classes": self.classes_.tolist(),
            "pos_label": self.pos_label_,
            "in_chans": int(self.in_chans_),
            "input_size": list(self.input_size_),
            "class_weight": None if self.class_weight_ is None else list(self.class_weight_),
        }

    def _restore_fitted(self, fitted, weights_path, settings):
        spec = get_backbone_spec(self.backbone)
        size = tuple(fitted["input_size"])
        classes = np.asarray(fitted["classes"])
        class_weight = fitted["class_weight"]
        custom_criterion = "criterion" in self._skorch_kwargs()
        # The exported weights replace any pretrained ones: nothing is downloaded or read.
        net_kwargs = self._module_kwargs(
            spec,
            int(fitted["in_chans"]),
            len(classes),
            size,
            settings,
            resolve_augment(self.augment),
            custom_criterion,
            class_weight,
            pretrained=False,
        )
        self._load_net(net_kwargs, settings, weights_path)
        preparer = self._make_preparer()
        preparer.input_size = size
        preparer.in_chans = int(fitted["in_chans"])
        self.classes_ = classes
        self.pos_label_ = fitted["pos_label"]
        self.in_chans_ = int(fitted["in_chans"])
        self.input_size_ = size
        self.class_weight_ = None if class_weight is None else np.asarray(class_weight)
        self.preparer_ = preparer

    def _make_preparer(self):
        size = self.input_size
        return ImagePreparer(
            self.image_col,
            self.mask_col,
            crop=self.crop,
            margin=check_margin(self.margin),
            input_size=(size, size) if isinstance(size, numbers.Integral) else tuple(size),
            normalize=self.normalize,
            intensity_range=check_intensity_range(self.intensity_range),
            in_chans=None if self.in_chans == "auto" else int(self.in_chans),
        )

    def _fingerprint(self, X, dataset, y, weights):
        if isinstance(dataset, PreparedImageDataset):
            data = dataset.images.numpy()
        else:
            data = [X[c].tolist() for c in dataset.preparer.columns]
        return joblib.hash((data, y, weights))

    def _scoring_callbacks(self, has_valid):
        callbacks = [
            (
                "train_auc",
                EpochScoring(
                    epoch_auc,
                    name="train_auc",
                    on_train=True,
                    lower_is_better=False,
                    use_caching=True,
                    target_extractor=_labels_of,
                ),
            )
        ]
        if has_valid:
            callbacks.append(
                (
                    "valid_auc",
                    EpochScoring(
                        epoch_auc,
                        name="valid_auc",
                        on_train=False,
                        lower_is_better=False,
                        use_caching=True,
                        target_extractor=_labels_of,
                    ),
                )
            )
        return callbacks

    # ---------------------------------------------------------------------------- inference

    def _logits(self, X):
        check_is_fitted(self, "net_")
        check_cohort(self, X, self.preparer_.columns)
        if self.preload:
            dataset = PreparedImageDataset(self.preparer_.prepare(X, n_jobs=self.n_jobs)[0])
        else:
            dataset = LazyImageDataset(X, self.preparer_)
        return self._forward(dataset).double()

    def predict_proba(self, X):
        """Class probabilities (softmax of the logits), in the order of ``classes_``.

        Parameters
        ----------
        X : pandas.DataFrame
            The cohort.

        Returns
        -------
        ndarray of shape (n_patients, n_classes)
        """
        return torch.softmax(self._logits(X), dim=1).numpy()

    def decision_function(self, X):
        """Logit of the positive class ``classes_[1]`` (binary), or all logits (multiclass).

        For two classes this is ``log(p1 / p0)``, so ``predict_proba(X)[:, 1]`` equals
        ``1 / (1 + exp(-decision_function(X)))``.

        Parameters
        ----------
        X : pandas.DataFrame
            The cohort.

        Returns
        -------
        ndarray of shape (n_patients,) or (n_patients, n_classes)
        """
        logits = self._logits(X)
        if logits.shape[1] == 2:
            return (logits[:, 1] - logits[:, 0]).numpy()
        return logits.numpy()

    def predict(self, X):
        """Predicted labels (the class of highest probability).

        Parameters
        ----------
        X : pandas.DataFrame
            The cohort.

        Returns
        -------
        ndarray of shape (n_patients,)
        """
        return self.classes_[np.argmax(self._logits(X).numpy(), axis=1)]
