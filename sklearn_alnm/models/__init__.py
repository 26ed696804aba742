"""skorch-backed deep-learning estimators on one neural core.

Every estimator here is a scikit-learn estimator that builds and trains a skorch net in
``fit``. They share :class:`BaseNeuralEstimator` (the training parameters, parameter routing
to skorch, device, mixed precision, seeding, checkpoint / resume, history, CPU-loadable
pickles, the fit template) and :class:`AcceleratedNet` (autocast, gradient scaling,
channels-last, device moves of any batch); the classifiers also share
:class:`BaseNeuralClassifier` (labels with the ``pos_label`` rule, class and sample weights,
epoch AUC, predictions). What they read comes from :mod:`sklearn_alnm.inputs`, their networks
from :mod:`sklearn_alnm.nn`. :class:`ImageClassifier` fine-tunes a backbone on an image
column, :class:`VideoClassifier` trains a video network (TSN, TSM, TIN, 3-D CNNs) on clips,
:class:`MultimodalFusionClassifier` fuses one image classifier per modality (ultrasound, H&E),
:class:`MILClassifier` classifies each patient's bag of instance tokens or images, and
:class:`MultiTaskSegClassifier` segments, types and scores every image of a bag (the tokens
the MIL stage reads).
"""

from ..inputs import RandomResizedCropFlip
from ._base import BaseNeuralEstimator
from ._classifier import BaseNeuralClassifier
from ._image import ImageClassifier
from ._mil import MILClassifier
from ._multimodal import MultimodalFusionClassifier
from ._multitask import MultiTaskSegClassifier
from ._net import AcceleratedNet
from ._video import VideoClassifier

__all__ = [
    "AcceleratedNet",
    "BaseNeuralClassifier",
    "BaseNeuralEstimator",
    "ImageClassifier",
    "MILClassifier",
    "MultiTaskSegClassifier",
    "MultimodalFusionClassifier",
    "RandomResizedCropFlip",
    "VideoClassifier",
]
