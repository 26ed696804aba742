"""Lesion segmentation estimators: U-Net, UNet++, DeepLabV3 and Mask R-CNN, and their fusion.

Each segmenter learns from a cohort's image column and binary lesion-mask column and predicts
one mask (or probability map) per row on the row's own image grid; ``transform`` adds the
predicted masks to the cohort so a :class:`~sklearn.pipeline.Pipeline` can crop the lesion
(:class:`~sklearn_alnm.preprocessing.ROICropper`) for an image classifier.
:class:`SegmentationFusion` combines several segmenters (vote, mean, union, or a learnt
pixel-level stacker). ``score`` and :data:`sklearn_alnm.metrics.dice_scorer` give the mean
Dice.
"""

from ..inputs import RandomFlipRotate
from ._base import BaseSegmenter
from ._fusion import SegmentationFusion
from ._maskrcnn import MaskRCNNSegmenter
from ._semantic import DeepLabV3Segmenter, UNetPlusPlusSegmenter, UNetSegmenter

__all__ = [
    "BaseSegmenter",
    "DeepLabV3Segmenter",
    "MaskRCNNSegmenter",
    "RandomFlipRotate",
    "SegmentationFusion",
    "UNetPlusPlusSegmenter",
    "UNetSegmenter",
]
