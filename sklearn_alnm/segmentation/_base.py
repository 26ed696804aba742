"""Shared base of the semantic segmenters: loss, skorch net, cohort API and fitted outputs.

Every segmenter is a scikit-learn estimator on a cohort DataFrame: ``fit(X)`` learns from an
image column and a binary lesion-mask column, ``predict_proba(X)`` gives one probability map
per row on that row's own image grid, ``predict(X)`` the thresholded masks, ``transform(X)``
a copy of the cohort with the masks in a new column (for a following
:class:`~sklearn_alnm.preprocessing.ROICropper` or
:class:`~sklearn_alnm.models.ImageClassifier`) and ``score(X)`` the mean Dice against the mask
column. :class:`SegmentationOutputMixin` implements the part built on ``predict_proba`` (shared
with :class:`~sklearn_alnm.segmentation.SegmentationFusion`); :class:`BaseSegmenter` the
training on :class:`~sklearn_alnm.models.BaseNeuralEstimator` (skorch parameter routing,
device, mixed precision, seeding, checkpoints, CPU-loadable pickles).
"""

import numbers
from typing import Self

import numpy as np
import pandas as pd
import torch
from sklearn.base import TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from skorch.utils import to_tensor
from torch import nn

from .._typing import ArrayLike, MatrixLike
from ..inputs import ImageMaskInput, PreparesImagesMixin, resolve_augment, to_image_grid
from ..inputs._augment import random_patches
from ..inputs._image import as_size, check_intensity_range
from ..metrics import make_segmentation_scorer
from ..models import AcceleratedNet, BaseNeuralEstimator
from ..nn import get_segmentation_network
from ..utils._validation import CohortColumnsMixin

_LOSSES = ("dice+bce", "bce", "dice")


# ------------------------------------------------------------------------------------- loss


class SegmentationLoss(nn.Module):
    """Binary segmentation loss on logits: soft Dice, binary cross-entropy, or their sum.

    Parameters
    ----------
    loss : {"dice+bce", "bce", "dice"}, default="dice+bce"
        ``"bce"``: the mean pixel-wise binary cross-entropy of the logits; ``"dice"``: one
        minus the soft Dice coefficient of the sigmoid probabilities, computed per image and
        averaged; ``"dice+bce"``: their sum.
    smooth : float, default=1.0
        Added to the numerator and denominator of the soft Dice, so an image without lesion
        whose prediction is empty has a Dice of 1 (no loss) and the gradient stays finite.

    Notes
    -----
    Targets may be soft (values in ``[0, 1]``, e.g. masks resized bilinearly). A list of logit
    maps (deep supervision, :class:`~sklearn_alnm.nn.UNetPlusPlus` in training) gives the mean
    of their losses.

    Examples
    --------
    >>> import torch
    >>> from sklearn_alnm.segmentation._base import SegmentationLoss
    >>> target = torch.zeros(2, 1, 8, 8)
    >>> target[:, :, 2:6, 2:6] = 1.0
    >>> good, bad = 20.0 * (2.0 * target - 1.0), -20.0 * (2.0 * target - 1.0)
    >>> loss = SegmentationLoss("dice+bce")
    >>> bool(loss(good, target) < 0.01), bool(loss(bad, target) > 1.0)
    (True, True)
    """

    def __init__(self, loss="dice+bce", smooth=1.0):
        super().__init__()
        if loss not in _LOSSES:
            raise ValueError(f"loss must be one of {list(_LOSSES)}; got {loss!r}.")
        self.loss = loss
        self.smooth = float(smooth)

    def extra_repr(self):
        return f"loss={self.loss!r}, smooth={self.smooth}"

    def _single(self, logits, target):
        logits = logits.float()
        target = target.to(logits.dtype)
        total = logits.new_zeros(())
        if "bce" in self.loss:
            total = total + nn.functional.binary_cross_entropy_with_logits(logits, target)
        if "dice" in self.loss:
            proba = torch.sigmoid(logits).flatten(1)
            flat = target.flatten(1)
            overlap = (proba * flat).sum(dim=1)
            dice = (2.0 * overlap + self.smooth) / (
                proba.sum(dim=1) + flat.sum(dim=1) + self.smooth
            )
            total = total + (1.0 - dice).mean()
        return total

    def forward(self, logits, target):
        """The loss of logits ``(N, 1, H, W)`` (or a list of them) against ``target``."""
        if isinstance(logits, list | tuple):
            return torch.stack([self._single(out, target) for out in logits]).mean()
        return self._single(logits, target)


# -------------------------------------------------------------------------------------- net


class SegmentationNet(AcceleratedNet):
    """:class:`~sklearn_alnm.models.AcceleratedNet` whose targets are masks.

    The training step applies the joint augmentation ``augment(images, masks)`` and then, with
    ``patch_size``, cuts one random patch per image (at the same place in its mask), on the
    device; validation and prediction batches see neither.

    Parameters
    ----------
    *args, **kwargs
        As for :class:`~sklearn_alnm.models.AcceleratedNet`.
    patch_size : tuple of 2 int or None, default=None
        ``(height, width)`` of the random training patches; ``None`` trains on whole images.
    """

    def __init__(self, *args, patch_size=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.patch_size = patch_size

    def _training_batch(self, Xi, yi):
        # images and masks move, flip and rotate together, then the same patch is cut
        Xi, yi = self._to_device(Xi), self._to_device(yi)
        if self.augment is not None:
            Xi, yi = self.augment(Xi, yi)
        if self.patch_size is not None:
            Xi, yi = random_patches(Xi, yi, self.patch_size)
        return Xi, yi

    @staticmethod
    def _detach(y_pred):
        # deep supervision returns one logit map per depth: their mean stands for the batch
        if isinstance(y_pred, list | tuple):
            return torch.stack([y.detach().float() for y in y_pred]).mean(dim=0)
        return y_pred.detach()

    def get_loss(self, y_pred, y_true, X=None, training=False):
        return self.criterion_(y_pred, to_tensor(y_true, device=self.device))


# ---------------------------------------------------------------------------- shared outputs


class SegmentationOutputMixin(CohortColumnsMixin, TransformerMixin):
    """``predict``, ``transform``, ``score`` and feature names built on ``predict_proba``.

    The estimator defines ``predict_proba(X)`` (a list of probability maps, one per row, each
    on its image's grid) and has the parameters ``threshold``, ``output_col`` and a
    ``mask_col`` (attribute) naming the reference masks.
    """

    def predict(self, X: MatrixLike) -> list[np.ndarray]:
        """Binary lesion masks: the probability maps thresholded at ``threshold``.

        Parameters
        ----------
        X : pandas.DataFrame
            The cohort (only the image column is read).

        Returns
        -------
        list of ndarray of bool
            One mask per row, shape ``(H, W)`` of that row's image. An image without lesion
            gets an all-False mask.
        """
        return [proba >= self.threshold for proba in self.predict_proba(X)]

    def transform(self, X: MatrixLike) -> pd.DataFrame | np.ndarray:
        """A copy of the cohort with the predicted masks in ``output_col``.

        Parameters
        ----------
        X : pandas.DataFrame
            The cohort.

        Returns
        -------
        pandas.DataFrame
            ``X`` (same index and columns) plus ``output_col`` (appended, or replaced when it
            exists) holding one uint8 0/1 mask per row on the row's image grid, ready for
            :class:`~sklearn_alnm.preprocessing.ROICropper` (``mask_col=output_col``) or an
            image classifier's ``mask_col``.
        """
        masks = [np.asarray(mask, dtype=np.uint8) for mask in self.predict(X)]
        return self._with_columns(X, {self.output_col: masks})

    def score(
        self, X: MatrixLike, y: ArrayLike | None = None, sample_weight: ArrayLike | None = None
    ) -> float:
        """Mean Dice of the predicted masks against the cohort's masks (``X[mask_col]``).

        Each image is scored on its own grid and the per-image Dice values are averaged
        (weighted by ``sample_weight`` when given); an image whose reference and predicted
        masks are both empty scores 1 (see :func:`~sklearn_alnm.metrics.dice_score`).

        Parameters
        ----------
        X : pandas.DataFrame
            The cohort, with the image and mask columns.
        y : ignored
            The reference is the mask column.
        sample_weight : array-like of shape (n_patients,), default=None
            Weights of the images in the mean (a :class:`~sklearn.pipeline.Pipeline` routes
            them here under metadata routing with ``set_score_request(sample_weight=True)``).

        Returns
        -------
        float
        """
        return make_segmentation_scorer("dice")(self, X, sample_weight=sample_weight)

    def _output_columns(self):
        return [self.output_col]


# ----------------------------------------------------------------------------- base segmenter


def random_valid_split(valid_split, seed):
    """skorch's ``train_split`` for ``valid_split``: the targets are masks, so a random (not
    stratified) fraction or fold of the images is held out; callables and None as given."""
    from skorch.dataset import ValidSplit

    if valid_split is None or callable(valid_split):
        return valid_split
    if isinstance(valid_split, float):
        return ValidSplit(valid_split, stratified=False, random_state=seed)
    return ValidSplit(int(valid_split), stratified=False)


#: Constraints of the parameters every semantic segmenter shares (besides the training ones).
SEGMENTER_CONSTRAINTS = {
    "image_col": [str],
    "mask_col": [str],
    "output_col": [str],
    "input_size": [Interval(numbers.Integral, 1, None, closed="left"), tuple, list],
    "in_chans": [StrOptions({"auto"}), Interval(numbers.Integral, 1, None, closed="left")],
    "intensity_range": [StrOptions({"auto"}), tuple, list],
    "normalize": [StrOptions({"zscore", "imagenet", "histeq+zscore"})],
    "loss": [StrOptions(set(_LOSSES))],
    "augment": [StrOptions({"default"}), None, callable],
    "patch_size": [None, Interval(numbers.Integral, 1, None, closed="left"), tuple, list],
    "threshold": [Interval(numbers.Real, 0, 1, closed="both")],
}


class BaseSegmenter(PreparesImagesMixin, SegmentationOutputMixin, BaseNeuralEstimator):
    """Base class of the semantic segmenters (not used directly).

    A subclass names its network in the registry of :mod:`sklearn_alnm.nn`
    (``_network = "unet"``, see :func:`~sklearn_alnm.nn.get_segmentation_network`), declares
    ``__init__`` (its network's parameters, those of :data:`SEGMENTER_CONSTRAINTS`, the shared
    training ones, ``**skorch_kwargs``) and their constraints; the network's parameters are
    passed to it by name, and ``_check_settings`` may validate them before any image is read.
    """

    _net_class = SegmentationNet

    #: Name of the network in :func:`sklearn_alnm.nn.get_segmentation_network`'s registry.
    _network = None

    _parameter_constraints = {
        **BaseNeuralEstimator._parameter_constraints,
        **SEGMENTER_CONSTRAINTS,
    }

    _owned_skorch_keys = {
        **BaseNeuralEstimator._owned_skorch_keys,
        "module__in_chans": "in_chans",
        "module__num_classes": None,
        "criterion__loss": "loss",
    }

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls._network is not None:
            params = get_segmentation_network(cls._network).params
            cls._owned_skorch_keys = {
                **cls._owned_skorch_keys,
                **{f"module__{name}": name for name in params},
            }

    def _train_split(self, seed):
        return random_valid_split(self.valid_split, seed)

    def fit(self, X: MatrixLike, y: ArrayLike | None = None) -> Self:
        """Train the network on the cohort's images and lesion masks.

        Parameters
        ----------
        X : pandas.DataFrame
            The cohort, with ``image_col`` and ``mask_col`` (binary masks on the grids of
            their images; an all-zero mask marks an image without lesion).
        y : ignored
            The targets are the masks; present so the segmenter fits in a
            :class:`~sklearn.pipeline.Pipeline` whose ``y`` holds patient labels.

        Returns
        -------
        self
        """
        return self._fit(X)

    # ------------------------------------------------------------------------------- hooks

    def _check_settings(self, state):
        state.size = size = as_size(self.input_size, "input_size")
        patch = None
        if self.patch_size is not None:
            patch = as_size(self.patch_size, "patch_size")
            if patch[0] > size[0] or patch[1] > size[1]:
                raise ValueError(
                    f"patch_size {patch} must fit in the resized image input_size {size}."
                )
            patch = None if patch == size else patch
        state.patch = patch

    def _make_input(self, state):
        return ImageMaskInput(
            self.image_col,
            self.mask_col,
            input_size=state.size,
            normalize=self.normalize,
            intensity_range=check_intensity_range(self.intensity_range),
            in_chans=None if self.in_chans == "auto" else int(self.in_chans),
        )

    def _training_target(self, X, y, sample_weight, state):
        # the masks are the target: the input reads them with the images
        return None, None

    def _module_kwargs(self, input, state):
        spec = get_segmentation_network(self._network)
        kwargs = {
            "module": spec.builder,
            "module__in_chans": input.in_chans,
            "module__num_classes": 1,
            **{f"module__{name}": getattr(self, name) for name in spec.params},
            "augment": resolve_augment(self.augment, joint=True),
            "patch_size": state.patch,
        }
        if "criterion" not in self._skorch_kwargs():
            kwargs["criterion"] = SegmentationLoss
            kwargs["criterion__loss"] = self.loss
        return kwargs

    def _set_fitted(self, X, input, state):
        self.in_chans_ = input.in_chans
        self.input_size_ = state.size
        self.patch_size_ = state.patch
        self._remember_columns(X)

    # ---------------------------------------------------------------------------- inference

    def predict_proba(self, X: MatrixLike) -> np.ndarray:
        """Lesion probability maps, one per row, on each image's own grid.

        The network's logits on the resized image are resized back (bilinearly) to the
        image's height and width and mapped through the sigmoid.

        Parameters
        ----------
        X : pandas.DataFrame
            The cohort (only the image column is read).

        Returns
        -------
        list of ndarray of float32
            One map of shape ``(H, W)`` per row, values in ``[0, 1]``.
        """
        dataset = self._inference_dataset(X, with_masks=False)
        logits = self._forward(dataset)
        return [to_image_grid(logits[k, 0], shape) for k, shape in enumerate(dataset.shapes)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        return tags
