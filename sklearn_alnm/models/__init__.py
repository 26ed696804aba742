"""skorch-backed deep-learning estimators that train networks on cohort image columns.

Every estimator here is a scikit-learn estimator that builds and trains a skorch net in
``fit``: :class:`ImageClassifier` fine-tunes a backbone of :mod:`sklearn_alnm.nn` on an
image column. They share :class:`BaseNeuralEstimator` (parameter routing to skorch, device,
mixed precision, seeding, checkpoint / resume, history, CPU-loadable pickles).
"""

from ._base import AcceleratedNet, BaseNeuralEstimator
from ._data import RandomResizedCropFlip
from ._image import ImageClassifier

__all__ = [
    "AcceleratedNet",
    "BaseNeuralEstimator",
    "ImageClassifier",
    "RandomResizedCropFlip",
]
