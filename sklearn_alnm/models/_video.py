"""Video classifier: TSN / TSM / TIN on a 2-D backbone, or a torchvision 3-D network, on clips."""

import numbers
import os
from typing import Self

import torch
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._typing import ArrayLike, MatrixLike
from ..inputs import VideoInput
from ..inputs._augment import PerImage
from ..inputs._video import ClipAugment, ComposeBatch, SegmentSampler
from ..nn import FRAME_ARCHS, VIDEO_3D_ARCHS, build_video_net, resolve_video_weights
from ._classifier import BaseNeuralClassifier, document_classifier

__all__ = ["VideoClassifier"]


class VideoClassifier(BaseNeuralClassifier):
    """Classify each patient's ultrasound clip with a video network trained end to end.

    The dynamic-ultrasound study's model: ``n_frames`` frames are sampled from each clip
    (uniformly, or TSN's segments), resized (short side ``resize``, centre crop
    ``frame_size``), scaled to ``[0, 1]`` and fed to a video network of
    :mod:`sklearn_alnm.nn`: a 2-D registry backbone over the frames with frame embeddings
    averaged (``"tsn"``), with a temporal shift inside each residual branch (``"tsm"``) or a
    learnt temporal interlace (``"tin"``, differentiable and CPU-capable), or a torchvision
    3-D network (``"r3d_18"``, ``"mc3_18"``, ``"r2plus1d_18"``, ``"s3d"``, ``"mvit_v2_s"``,
    ``"swin3d_t"``). Training is that of every neural classifier of the library
    (:class:`~sklearn_alnm.models.BaseNeuralClassifier`): cross-entropy with class and sample
    weights, the AUC of every epoch, checkpoints, mixed precision on CUDA.

    Parameters
    ----------
    video_col : str, default="video"
        Cohort column of the clips (paths or arrays, see :func:`sklearn_alnm.io.read_video`).
    arch : {"tsn", "tsm", "tin", "r3d_18", "mc3_18", "r2plus1d_18", "s3d", "mvit_v2_s", \
"swin3d_t"}, default="tin"
        The network (:func:`sklearn_alnm.nn.build_video_net`). ``"s3d"`` needs clips of at
        least about 16 frames of 112 px; ``"mvit_v2_s"`` is built for 16 x 224 x 224.
    backbone : str, default="resnet50"
        2-D registry backbone of ``"tsn"`` / ``"tsm"`` / ``"tin"`` (residual ones for the
        shifts); ignored by the 3-D networks.
    weights : None, str or os.PathLike, default=None
        ``None`` (random, seeded), a torchvision weights name used only if its file is in the
        local torch hub cache (ImageNet for the 2-D trunk, Kinetics-400 for the 3-D nets), or a
        checkpoint path.
    n_frames : int, default=16
        Frames per clip.
    sampling : {"uniform", "segments"}, default="uniform"
        ``"uniform"``: frames spread evenly over the clip; ``"segments"``: TSN's sampling, one
        random frame of each of ``n_frames`` segments in training, the centre one at
        inference (three candidates per segment are decoded).
    frame_size : int, default=224
        Height and width of the frames the network sees.
    resize : int or None, default=256
        Short side the frames are resized to before the centre crop.
    crop : {"center"} or None, default="center"
        ``None`` resizes the frames to ``frame_size`` square, without cropping.
    normalize : {"unit", "zscore", "kinetics"}, default="unit"
        Pixels in ``[0, 1]``, each clip's z-score, or Kinetics-400's channel statistics.
    augment : "default", None or callable, default="default"
        Training batches only: ``"default"`` is :class:`~sklearn_alnm.inputs.ClipAugment`
        (one random resized crop and horizontal flip for every frame of a clip, brightness and
        contrast jitter); ``ClipAugment(elastic=50, temporal_jitter=2)`` adds the study's
        elastic deformation and a random shift of each clip by up to two frames; a callable
        gets one clip ``(C, T, H, W)`` (or the whole batch when it has a true ``batched``
        attribute).
    dropout : float, default=0.5
        Dropout in front of the new head.
    short_clips : {"repeat", "error"}, default="repeat"
        Clips shorter than the frames sampled: frames sampled again, or an error naming the
        row.
    cache : None, "memory", str or os.PathLike, default="memory"
        Where prepared clips are kept between fits (e.g. the candidates of a
        ``GridSearchCV``), by content: in this process, in a folder, or nowhere (see
        :class:`~sklearn_alnm.inputs.VideoInput`). Each ``fit`` decodes every clip at most
        once whatever this says: the epochs read the prepared tensor.
    {classifier_parameters}
    {training_parameters}

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels, sorted; ``predict_proba``'s columns follow them.
    pos_label_ : scalar or None
        The positive class of binary labels.
    module_ : sklearn_alnm.nn.FrameVideoNet or sklearn_alnm.nn.Video3DNet
        The trained network, returning logits ``(N, n_classes)`` for clips
        ``(N, C, T, H, W)``.
    in_chans_ : int
        Channels of the clips (1 when every training clip is gray).
    net_, history_, device_, class_weight_, checkpoint_path_
        As for :class:`~sklearn_alnm.models.ImageClassifier`.

    References
    ----------
    .. [1] Dynamic breast ultrasound video study: R(2+1)D, TIN and ResNet-3D on 16-frame clips
       (TIN best, AUC 0.914) vs static-image models on a key frame.
    .. [2] J. Lin, C. Gan, S. Han, "TSM: Temporal Shift Module for Efficient Video
       Understanding", ICCV 2019.
    .. [3] H. Shao, S. Qian, Y. Liu, "Temporal Interlacing Network", AAAI 2020.
    .. [4] L. Wang et al., "Temporal Segment Networks", ECCV 2016.

    Examples
    --------
    >>> from sklearn_alnm.datasets import make_alnm_cohort
    >>> from sklearn_alnm.models import VideoClassifier
    >>> X, y = make_alnm_cohort(8, modalities="video", image_size=32, random_state=0)
    >>> clf = VideoClassifier(arch="tsm", backbone="resnet18", n_frames=4, frame_size=32,
    ...                       resize=None, max_epochs=1, random_state=0)
    >>> clf.fit(X, y).predict_proba(X).shape
    (8, 2)
    """

    _parameter_constraints = {
        **BaseNeuralClassifier._parameter_constraints,
        "video_col": [str],
        "arch": [StrOptions(set(FRAME_ARCHS + VIDEO_3D_ARCHS))],
        "backbone": [str],
        "weights": "no_validation",  # None, a name or a path: resolve_video_weights
        "n_frames": [Interval(numbers.Integral, 1, None, closed="left")],
        "sampling": [StrOptions({"uniform", "segments"})],
        "frame_size": [Interval(numbers.Integral, 8, None, closed="left")],
        "resize": [None, Interval(numbers.Integral, 8, None, closed="left")],
        "crop": [StrOptions({"center"}), None],
        "normalize": [StrOptions({"unit", "zscore", "kinetics"})],
        "augment": [StrOptions({"default"}), None, callable],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "short_clips": [StrOptions({"repeat", "error"})],
        "cache": [None, StrOptions({"memory"}), str, os.PathLike],
    }

    _owned_skorch_keys = {
        **BaseNeuralClassifier._owned_skorch_keys,
        "module__arch": "arch",
        "module__backbone": "backbone",
        "module__weights": "weights",
        "module__n_frames": "n_frames",
        "module__in_chans": None,
        "module__dropout": "dropout",
        "module__seed": "random_state",
    }

    def __init__(
        self,
        video_col="video",
        *,
        arch="tin",
        backbone="resnet50",
        weights=None,
        n_frames=16,
        sampling="uniform",
        frame_size=224,
        resize=256,
        crop="center",
        normalize="unit",
        augment="default",
        dropout=0.5,
        short_clips="repeat",
        cache="memory",
        optimizer="adam",
        lr=1e-4,
        lr_schedule=None,
        max_epochs=30,
        batch_size=4,
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
        """Train the video network on the cohort's clips.

        Parameters
        ----------
        X : pandas.DataFrame
            The cohort, with ``video_col``.
        y : array-like of shape (n_patients,)
            Labels, any two (or more) values.
        sample_weight : array-like of shape (n_patients,), default=None
            Per-patient weights of the loss.

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight)

    def prepare_clips(self, X: MatrixLike) -> torch.Tensor:
        """The network's input for ``X``: clips sampled, resized and normalised as at
        prediction (no augmentation); what :func:`~sklearn_alnm.explain.grad_cam` explains.

        Parameters
        ----------
        X : pandas.DataFrame
            The cohort.

        Returns
        -------
        torch.Tensor of shape (n_patients, ``in_chans_``, n_frames, frame_size, frame_size)
        """
        check_is_fitted(self, "net_")
        self.input_.check(self, X)
        return self.input_.prepare(X, n_jobs=self.n_jobs, training=False)[0]

    # ------------------------------------------------------------------------------- hooks

    def _check_settings(self, state):
        resolve_video_weights(self.arch, self.backbone, self.weights)  # before any decoding

    def _make_input(self, state):
        return VideoInput(
            self.video_col,
            n_frames=self.n_frames,
            sampling=self.sampling,
            frame_size=self.frame_size,
            resize=self.resize,
            crop=self.crop,
            normalize=self.normalize,
            short_clips=self.short_clips,
            cache=self.cache,
        )

    def _training_dataset(self, input, X, target, state):
        return input.dataset(X, target, training=True, n_jobs=self.n_jobs, verbose=self.verbose)

    def _module_kwargs(self, input, state):
        sampler = SegmentSampler(self.n_frames) if self.sampling == "segments" else None
        augment = self.augment
        if augment == "default":
            augment = ClipAugment()
        elif callable(augment) and not getattr(augment, "batched", False):
            augment = PerImage(augment)
        return {
            "module": build_video_net,
            "module__arch": self.arch,
            "module__backbone": self.backbone,
            "module__weights": self.weights,
            "module__n_frames": self.n_frames,
            "module__in_chans": input.in_chans,
            "module__dropout": float(self.dropout),
            "module__seed": state.seed,
            "augment": ComposeBatch(sampler, augment) if sampler or augment else None,
            "inference_transform": None if sampler is None else sampler.select_middle,
            **self._classifier_kwargs(
                len(state.classes), state.class_weight, state.custom_criterion
            ),
        }

    def _set_fitted(self, X, input, state):
        super()._set_fitted(X, input, state)
        self.in_chans_ = input.in_chans


document_classifier(VideoClassifier, batch="Clips", module_hint=" (network arguments)")
