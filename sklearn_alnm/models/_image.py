"""Deep image classifier: a registry backbone fine-tuned end to end on a cohort image column."""

import numbers
from typing import Self

from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._typing import ArrayLike, MatrixLike
from ..inputs import ImageInput, PreparesImagesMixin, resolve_augment
from ..inputs._image import check_intensity_range, check_margin
from ..nn import Backbone, get_backbone_spec, resolve_weights
from ._classifier import BaseNeuralClassifier, document_classifier

__all__ = ["ImageClassifier"]


class ImageClassifier(PreparesImagesMixin, BaseNeuralClassifier):
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
    normalize : {"imagenet", "zscore", "histeq+zscore", "zscore+histeq", "half"}, \
default="imagenet"
        ``"imagenet"``: ImageNet channel means and standard deviations (their means for
        one-channel inputs), as pretrained weights expect. ``"zscore"``: each image's own mean
        and standard deviation. ``"histeq+zscore"``: histogram equalisation (of the lesion's
        pixels with ``crop="mask"``), then z-score. ``"zscore+histeq"``: the multimodal
        study's ULNet preprocessing, z-score then histogram equalisation; equalisation
        depends only on the order of the intensities, which a z-score keeps, so this is the
        equalised image itself, in ``(0, 1]``. ``"half"``: mean 0.5 and standard deviation
        0.5 per channel, i.e. ``[0, 1]`` mapped to ``[-1, 1]`` (the study's PLNet inputs).
    dropout : float, default=0.5
        Dropout probability in front of the new linear head.
    preload : bool, default=True
        Read and prepare every image once per ``fit`` / ``predict`` call and keep the prepared
        tensor in memory (fast epochs). ``False`` reads each batch's images when needed (for
        cohorts too large for memory; use ``iterator_train__num_workers`` to parallelise).
    {classifier_parameters}
    {training_parameters}

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
        **BaseNeuralClassifier._parameter_constraints,
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
        "normalize": [StrOptions({"imagenet", "zscore", "histeq+zscore", "zscore+histeq", "half"})],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "preload": ["boolean"],
    }

    _owned_skorch_keys = {
        **BaseNeuralClassifier._owned_skorch_keys,
        "module__name": "backbone",
        "module__weights": "weights",
        "module__in_chans": "in_chans",
        "module__input_size": "input_size",
        "module__dropout": "dropout",
        "module__seed": "random_state",
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
        distributed=False,
        random_state=None,
        verbose=0,
        **skorch_kwargs,
    ):
        self._store_parameters(locals())

    def fit(self, X: MatrixLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> Self:
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
        return self._fit(X, y, sample_weight)

    # ------------------------------------------------------------------------- the two hooks

    def _check_settings(self, state):
        state.spec = get_backbone_spec(self.backbone)
        resolve_weights(state.spec.name, self.weights)  # unavailable weights fail before reading

    def _make_input(self, state):
        size = state.spec.check_input_size(self.input_size)
        return ImageInput(
            self.image_col,
            self.mask_col,
            crop=self.crop,
            margin=check_margin(self.margin),
            input_size=size,
            normalize=self.normalize,
            intensity_range=check_intensity_range(self.intensity_range),
            in_chans=None if self.in_chans == "auto" else int(self.in_chans),
        )

    def _training_dataset(self, input, X, target, state):
        return input.dataset(
            X, target, preload=self.preload, n_jobs=self.n_jobs, verbose=self.verbose
        )

    def _module_kwargs(self, input, state, *, pretrained=True):
        return {
            "module": Backbone,
            "module__name": state.spec.name,
            "module__weights": self.weights if pretrained else None,
            "module__in_chans": input.in_chans,
            "module__input_size": input.input_size,
            "module__dropout": float(self.dropout),
            "module__seed": state.seed,
            "augment": resolve_augment(self.augment),
            **self._classifier_kwargs(
                len(state.classes), state.class_weight, state.custom_criterion
            ),
        }

    def _set_fitted(self, X, input, state):
        super()._set_fitted(X, input, state)
        self.in_chans_ = input.in_chans
        self.input_size_ = input.input_size

    def _inference_kwargs(self):
        return {"preload": self.preload}

    # ------------------------------------------------------- weights-only (pickle-free) export

    def _fitted_settings(self):
        check_is_fitted(self, "net_")
        return {
            **self._fitted_labels(),
            "in_chans": int(self.in_chans_),
            "input_size": list(self.input_size_),
        }

    def _restore_fitted(self, fitted, weights_path, settings):
        self._restore_labels(fitted)
        settings.spec = get_backbone_spec(self.backbone)
        input = self._make_input(settings)
        input.input_size = tuple(fitted["input_size"])
        input.in_chans = int(fitted["in_chans"])
        settings.classes = self.classes_
        settings.class_weight = self.class_weight_
        settings.pos_label = self.pos_label_
        settings.custom_criterion = "criterion" in self._skorch_kwargs()
        # The exported weights replace any pretrained ones: nothing is downloaded or read.
        net_kwargs = self._module_kwargs(input, settings, pretrained=False)
        self._load_net(net_kwargs, settings, weights_path, input.collate_fn)
        self.input_ = input
        self._set_fitted(None, input, settings)


document_classifier(
    ImageClassifier,
    batch="Images",
    module_hint=" (backbone arguments)",
)
