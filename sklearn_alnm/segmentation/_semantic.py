"""U-Net, UNet++ and DeepLabV3 lesion segmenters (the US auto-segmentation study's networks)."""

import numbers

from sklearn.utils._param_validation import Interval, StrOptions

from ..models._base import document_training_parameters
from ..nn._checkpoints import resolve_network_weights
from ._base import BaseSegmenter

# ------------------------------------------------------------------------------ docstrings

_COMMON_PARAMS = """\
image_col : str, default="image"
    Cohort column of the images (paths or arrays, gray or RGB; see
    :func:`sklearn_alnm.io.read_image`).
mask_col : str, default="mask"
    Cohort column of the binary lesion masks (0/1, 0/255 or boolean; paths or arrays), each
    on the grid of its image. Read by ``fit`` (every row needs a mask; an all-zero mask marks
    an image without lesion, valid training data) and by ``score``; ``predict`` does not need
    it.
{network}output_col : str, default="pred_mask"
    Column that :meth:`transform` adds with the predicted masks.
input_size : int or tuple of 2 int, default=256
    ``(height, width)`` every image (and mask) is resized to for the network; predictions are
    resized back to each image's own grid.
in_chans : "auto" or int, default="auto"
    Input channels of the network: ``"auto"`` gives 1 when every training image is gray and 3
    when any is RGB (gray images are then replicated, RGB ones averaged when 1).
intensity_range : "auto" or tuple of 2 float, default="auto"
    Intensities mapped to ``[0, 1]`` before normalisation: ``(0, 255)`` for 8-bit images,
    else each image's min / max (``"auto"``), or a fixed ``(low, high)``.
normalize : {{"zscore", "imagenet", "histeq+zscore"}}, default="zscore"
    ``"zscore"``: each image's own mean and standard deviation; ``"imagenet"``: ImageNet's
    channel statistics (what pretrained weights expect); ``"histeq+zscore"``: histogram
    equalisation, then z-score.
loss : {{"dice+bce", "bce", "dice"}}, default="dice+bce"
    Training loss on the one-channel logits: soft Dice (per image, smoothed so an empty
    prediction of an image without lesion costs nothing), binary cross-entropy, or their sum
    (see :class:`~sklearn_alnm.segmentation._base.SegmentationLoss`). ``criterion=`` (skorch
    syntax) replaces it by any loss ``criterion(logits, masks)``.
augment : "default", None or callable, default="default"
    Augmentation of the training batches only (never of validation batches or predictions),
    applied on the device, identically to each image and its mask. ``"default"``: random
    left-right flip (p = 0.5), rotation within +-15 degrees and zoom 0.9-1.1
    (:class:`RandomFlipRotate`, which can be passed with other settings). A callable
    ``augment(image, mask) -> (image, mask)`` gets one image ``(C, H, W)`` as a
    :class:`torchvision.tv_tensors.Image` and its mask ``(1, H, W)`` as a
    :class:`torchvision.tv_tensors.Mask`, so a ``torchvision.transforms.v2.Compose`` of
    geometric transforms moves both together (objects with a true ``batched`` attribute get
    the whole batch ``(N, C, H, W)``, ``(N, 1, H, W)``). ``None``: no augmentation.
patch_size : None, int or tuple of 2 int, default=None
    Patch sampling: each training image (after resizing to ``input_size`` and augmentation)
    is replaced by one random ``patch_size`` patch of it, drawn anew at every epoch, and its
    mask by the same patch. Prediction always runs on the whole resized image (the networks
    are fully convolutional). ``None``: train on whole images.
threshold : float in [0, 1], default=0.5
    Probability at or above which a pixel belongs to the lesion in :meth:`predict`.
{{training_parameters}}
"""

_COMMON_ATTRIBUTES = """\
module_ : torch.nn.Module
    The trained network{module_type}, on ``device_``, returning logits ``(N, 1, H, W)``.
net_ : skorch.NeuralNet
    The trained skorch net.
history_ : skorch.history.History
    One dict per epoch: ``train_loss``, ``valid_loss`` (with ``valid_split``), ``event_lr``
    (with ``lr_schedule``), ``dur``, ...
device_ : str
    Device of ``module_``; ``"cpu"`` after unpickling on a machine without CUDA.
in_chans_ : int
    Input channels of the network.
input_size_ : tuple of 2 int
    ``(height, width)`` of the network's input.
patch_size_ : tuple of 2 int or None
    Size of the training patches (``None``: whole images).
checkpoint_path_ : str or None
    Checkpoint folder of the run (with ``checkpoint_dir``).
n_features_in_ : int
    Number of cohort columns seen in ``fit``.
feature_names_in_ : ndarray of str
    The cohort's column names seen in ``fit`` (when all are strings).
"""

_COMMON_NOTES = """\
The estimator is a transformer, so a :class:`~sklearn.pipeline.Pipeline` can chain it with
:class:`~sklearn_alnm.preprocessing.ROICropper` (``mask_col=output_col``) and an image
classifier; ``fit`` ignores ``y`` (the patients' labels of such a pipeline). ``score`` and
:data:`~sklearn_alnm.metrics.dice_scorer` give the mean per-image Dice against ``mask_col``.
Errors name the row (patient), the column and the file: a missing mask column or mask cell,
a mask on another grid than its image, a mask that is not binary. Pickles (``joblib.dump``)
load on a CPU-only machine.
"""


def _doc(
    summary, *, network, module_hint, module_type, extra_attributes, see_also, notes, refs, examples
):
    params = _COMMON_PARAMS.format(network=network)
    attributes = _COMMON_ATTRIBUTES.format(module_type=module_type) + extra_attributes
    doc = (
        f"{summary}\n\nParameters\n----------\n{params}\nAttributes\n----------\n{attributes}\n"
        f"See Also\n--------\n{see_also}\nNotes\n-----\n{notes}{_COMMON_NOTES}\n"
        f"References\n----------\n{refs}\nExamples\n--------\n{examples}"
    )
    return doc, module_hint


def _document(cls, doc_and_hint):
    """Set ``cls.__doc__`` with the shared training parameters filled in."""
    doc, module_hint = doc_and_hint
    cls.__doc__ = "\n".join(("    " + line) if line else line for line in doc.splitlines())
    document_training_parameters(cls, batch="Images", split="random", module_hint=module_hint)


_STUDY_REF = """\
.. [1] Deep-learning signature on breast ultrasound with automatic lesion segmentation (U-Net,
   UNet++ and DeepLabV3 outlines fused, ResNet50 on the segmented ROI) combined with clinical
   factors for axillary lymph node metastasis (the ultrasound study recipe of
   :mod:`sklearn_alnm.recipes`).
"""

_SEE_ALSO = """\
UNetSegmenter, UNetPlusPlusSegmenter, DeepLabV3Segmenter : The other networks.
SegmentationFusion : Fuse several segmenters' probability maps.
sklearn_alnm.preprocessing.ROICropper : Crop the predicted lesion for a classifier.
"""


# ------------------------------------------------------------------------------------ U-Net


class UNetSegmenter(BaseSegmenter):
    _network = "unet"

    _parameter_constraints = {
        **BaseSegmenter._parameter_constraints,
        "base_channels": [Interval(numbers.Integral, 1, None, closed="left")],
        "depth": [Interval(numbers.Integral, 1, None, closed="left")],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "upsample": [StrOptions({"transpose", "bilinear"})],
    }

    def __init__(
        self,
        image_col="image",
        mask_col="mask",
        *,
        base_channels=32,
        depth=4,
        dropout=0.0,
        upsample="transpose",
        output_col="pred_mask",
        input_size=256,
        in_chans="auto",
        intensity_range="auto",
        normalize="zscore",
        loss="dice+bce",
        augment="default",
        patch_size=None,
        threshold=0.5,
        optimizer="adam",
        lr=1e-3,
        lr_schedule=None,
        max_epochs=30,
        batch_size=8,
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


_document(
    UNetSegmenter,
    _doc(
        """Segment the lesion of every image with a U-Net trained on the cohort's masks.

The U-Net of Ronneberger et al. (:class:`sklearn_alnm.nn.UNet`: a convolutional
encoder-decoder with skip connections, batch normalisation, one output logit per pixel) is
trained from scratch with skorch on the images of ``image_col`` and the binary masks of
``mask_col``, both resized to ``input_size``: Dice + binary cross-entropy loss, Adam, joint
flips / rotations of image and mask, optional random patches. ``predict_proba`` returns one
lesion probability map per image on the image's own grid, ``predict`` the thresholded masks,
``transform`` the cohort with the masks added in ``output_col``.""",
        network="""\
base_channels : int, default=32
    Channels of the first level; level ``k`` has ``base_channels * 2**k`` (the original
    U-Net uses 64).
depth : int, default=4
    Number of poolings (4 in the original).
dropout : float, default=0.0
    Channel dropout at the bottleneck.
upsample : {"transpose", "bilinear"}, default="transpose"
    Learned transposed convolutions (the paper's up-convolutions) or bilinear upsampling
    followed by a 1x1 convolution.
""",
        module_hint=", e.g. ``module__batch_norm=False``",
        module_type=" (:class:`~sklearn_alnm.nn.UNet`)",
        extra_attributes="",
        see_also=_SEE_ALSO,
        notes="""\
Inputs of any size go through the network (they are padded to a multiple of ``2**depth``
inside it), so ``input_size`` and ``patch_size`` need not be multiples of 16.

""",
        refs=_STUDY_REF
        + """\
.. [2] O. Ronneberger, P. Fischer, T. Brox, "U-Net: Convolutional Networks for Biomedical
   Image Segmentation", MICCAI 2015.
""",
        examples="""\
>>> from sklearn_alnm.datasets import make_alnm_cohort
>>> from sklearn_alnm.segmentation import UNetSegmenter
>>> X, _ = make_alnm_cohort(8, modalities="ultrasound", image_size=32, random_state=0)
>>> seg = UNetSegmenter(base_channels=4, depth=2, input_size=32, max_epochs=1,
...                     batch_size=4, random_state=0).fit(X)
>>> masks = seg.predict(X)
>>> len(masks), masks[0].shape, masks[0].dtype
(8, (32, 32), dtype('bool'))
>>> seg.transform(X)["pred_mask"].iloc[0].shape
(32, 32)
>>> 0.0 <= seg.score(X) <= 1.0
True
""",
    ),
)


# ---------------------------------------------------------------------------------- UNet++


class UNetPlusPlusSegmenter(BaseSegmenter):
    _network = "unet++"

    _parameter_constraints = {
        **BaseSegmenter._parameter_constraints,
        "base_channels": [Interval(numbers.Integral, 1, None, closed="left")],
        "depth": [Interval(numbers.Integral, 1, None, closed="left")],
        "deep_supervision": ["boolean"],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
    }

    def __init__(
        self,
        image_col="image",
        mask_col="mask",
        *,
        base_channels=32,
        depth=4,
        deep_supervision=False,
        dropout=0.0,
        output_col="pred_mask",
        input_size=256,
        in_chans="auto",
        intensity_range="auto",
        normalize="zscore",
        loss="dice+bce",
        augment="default",
        patch_size=None,
        threshold=0.5,
        optimizer="adam",
        lr=1e-3,
        lr_schedule=None,
        max_epochs=30,
        batch_size=8,
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


_document(
    UNetPlusPlusSegmenter,
    _doc(
        """Segment the lesion of every image with a UNet++ trained on the cohort's masks.

UNet++ (:class:`sklearn_alnm.nn.UNetPlusPlus`) is a U-Net whose skip connections are nested,
dense convolution pathways; with ``deep_supervision`` every top-row node has a logit head,
the training loss is averaged over them and predictions average them. Training, prediction
and the cohort API are those of :class:`UNetSegmenter`.""",
        network="""\
base_channels : int, default=32
    Channels of level 0; level ``i`` has ``base_channels * 2**i``.
depth : int, default=4
    Number of poolings.
deep_supervision : bool, default=False
    A logit head on every top-row node, the loss averaged over them in training and their
    mean predicted (the paper's "accurate mode").
dropout : float, default=0.0
    Channel dropout at the bottleneck.
""",
        module_hint=", e.g. ``module__batch_norm=False``",
        module_type=" (:class:`~sklearn_alnm.nn.UNetPlusPlus`)",
        extra_attributes="",
        see_also=_SEE_ALSO,
        notes="",
        refs=_STUDY_REF
        + """\
.. [2] Z. Zhou, M. M. Rahman Siddiquee, N. Tajbakhsh, J. Liang, "UNet++: A Nested U-Net
   Architecture for Medical Image Segmentation", DLMIA 2018.
""",
        examples="""\
>>> from sklearn_alnm.datasets import make_alnm_cohort
>>> from sklearn_alnm.segmentation import UNetPlusPlusSegmenter
>>> X, _ = make_alnm_cohort(8, modalities="ultrasound", image_size=32, random_state=0)
>>> seg = UNetPlusPlusSegmenter(base_channels=4, depth=2, deep_supervision=True,
...                             input_size=32, max_epochs=1, batch_size=4, random_state=0)
>>> proba = seg.fit(X).predict_proba(X)
>>> len(proba), proba[0].shape, bool(((proba[0] >= 0) & (proba[0] <= 1)).all())
(8, (32, 32), True)
""",
    ),
)


# -------------------------------------------------------------------------------- DeepLabV3

_DEEPLAB_BACKBONES = ("resnet50", "resnet101", "mobilenet_v3_large")


class DeepLabV3Segmenter(BaseSegmenter):
    _network = "deeplabv3"

    _parameter_constraints = {
        **BaseSegmenter._parameter_constraints,
        "backbone": [StrOptions(set(_DEEPLAB_BACKBONES))],
        "weights": "no_validation",
        "weights_backbone": "no_validation",
    }

    def __init__(
        self,
        image_col="image",
        mask_col="mask",
        *,
        backbone="resnet50",
        weights=None,
        weights_backbone=None,
        output_col="pred_mask",
        input_size=256,
        in_chans="auto",
        intensity_range="auto",
        normalize="zscore",
        loss="dice+bce",
        augment="default",
        patch_size=None,
        threshold=0.5,
        optimizer="adam",
        lr=1e-3,
        lr_schedule=None,
        max_epochs=30,
        batch_size=8,
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

    def _check_settings(self, state):
        super()._check_settings(state)
        # unavailable or conflicting weights fail before any image is read
        resolve_network_weights("deeplabv3", self.backbone, self.weights, self.weights_backbone)


_document(
    DeepLabV3Segmenter,
    _doc(
        """Segment the lesion of every image with torchvision's DeepLabV3, trained on the cohort.

DeepLabV3 (atrous spatial pyramid pooling on a dilated ResNet50 / ResNet101 or MobileNetV3
trunk, logits upsampled to the input; :func:`sklearn_alnm.nn.build_deeplabv3`) with a
one-logit head and any number of input channels. Weights are loaded strictly offline: a
torchvision weights name whose file is already in the torch hub cache, or a local checkpoint.
Training, prediction and the cohort API are those of :class:`UNetSegmenter`.""",
        network="""\
backbone : {"resnet50", "resnet101", "mobilenet_v3_large"}, default="resnet50"
    Trunk of the network.
weights : None, str, os.PathLike or torchvision WeightsEnum, default=None
    Weights of the whole network: ``None`` (random, seeded by ``random_state``),
    ``"DEFAULT"`` / ``"COCO_WITH_VOC_LABELS_V1"`` (used only if the file is in the local
    torch hub cache; otherwise :class:`~sklearn_alnm.nn.WeightsNotAvailableError` says which
    file to put where, before any image is read) or a checkpoint path. The head is replaced.
weights_backbone : None, str, os.PathLike or torchvision WeightsEnum, default=None
    ImageNet weights of the trunk only (a weights name in the hub cache or a classification
    checkpoint). Not with ``weights``. Use ``normalize="imagenet"`` with pretrained weights.
""",
        module_hint="",
        module_type=" (:class:`~sklearn_alnm.nn.DeepLabV3Net`)",
        extra_attributes="",
        see_also=_SEE_ALSO,
        notes="""\
The pooling branch of the atrous pyramid normalises a 1x1 map with batch norm, so training
batches need at least two images (a last batch of one image is dropped).

""",
        refs=_STUDY_REF
        + """\
.. [2] L.-C. Chen, G. Papandreou, F. Schroff, H. Adam, "Rethinking Atrous Convolution for
   Semantic Image Segmentation", arXiv:1706.05587, 2017.
""",
        examples="""\
>>> from sklearn_alnm.datasets import make_alnm_cohort
>>> from sklearn_alnm.segmentation import DeepLabV3Segmenter
>>> X, _ = make_alnm_cohort(4, modalities="ultrasound", image_size=32, random_state=0)
>>> seg = DeepLabV3Segmenter(backbone="mobilenet_v3_large", input_size=32, max_epochs=1,
...                          batch_size=4, random_state=0).fit(X)
>>> [m.shape for m in seg.predict(X)]
[(32, 32), (32, 32), (32, 32), (32, 32)]
>>> seg.module_.backbone
'mobilenet_v3_large'
""",
    ),
)
