"""Reading a cohort's columns into tensors: one contract for every input kind.

An input object is what a neural estimator asks to turn its cohort columns into a torch
``Dataset`` (:class:`BaseInput`: the columns read, row ids for messages, the dataset of rows
and targets, the collate function, a content key for checkpoints). The kinds:
:class:`ImageInput` (an image per row, optionally cut to its lesion mask),
:class:`ImageMaskInput` (images and lesion masks for semantic segmentation) and
:class:`InstanceMaskInput` (images on their own grids and instance targets for Mask R-CNN)
:class:`VideoInput` (clips sampled, resized and normalised once per fit) and
:class:`MultimodalInput` (one image column per modality, each prepared its own way, with the
modalities each patient has) and :class:`BagInput` (each patient's bag of feature vectors or
images, with instance kinds, padded and masked per batch).
The training-batch augmentations live here too: :class:`RandomResizedCropFlip` for images,
:class:`RandomFlipRotate` for image + mask pairs.

A new input kind (video clips, bags of images, several modalities) is one module here, one
network in :mod:`sklearn_alnm.nn` and one thin estimator on the core of
:mod:`sklearn_alnm.models`.
"""

from ._augment import RandomFlipRotate, RandomResizedCropFlip, resolve_augment
from ._bags import (
    BagAugment,
    BagBatch,
    BagDataset,
    BagInput,
    BagInstanceInput,
    InstanceDropout,
)
from ._base import BaseInput, LazyRowsDataset, TargetDataset, TensorInputDataset, collate_batches
from ._image import ImageInput, PreparesImagesMixin
from ._instances import ImageBatch, InstanceMaskInput, collate_detections, instance_targets
from ._masks import ImageMaskInput, read_binary_mask, to_image_grid
from ._multimodal import (
    MultimodalAugment,
    MultimodalBatch,
    MultimodalDataset,
    MultimodalInput,
    missing_cells,
    modality_presence,
)
from ._video import ClipAugment, VideoInput

__all__ = [
    "BagAugment",
    "InstanceDropout",
    "BagBatch",
    "BagDataset",
    "BagInput",
    "BagInstanceInput",
    "BaseInput",
    "ClipAugment",
    "ImageBatch",
    "ImageInput",
    "ImageMaskInput",
    "InstanceMaskInput",
    "LazyRowsDataset",
    "MultimodalAugment",
    "MultimodalBatch",
    "MultimodalDataset",
    "MultimodalInput",
    "PreparesImagesMixin",
    "RandomFlipRotate",
    "RandomResizedCropFlip",
    "TargetDataset",
    "TensorInputDataset",
    "VideoInput",
    "collate_batches",
    "collate_detections",
    "instance_targets",
    "missing_cells",
    "modality_presence",
    "read_binary_mask",
    "resolve_augment",
    "to_image_grid",
]
