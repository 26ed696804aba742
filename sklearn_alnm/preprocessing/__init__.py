"""Transformers that prepare the image columns of a cohort before a model sees them.

They take a cohort DataFrame and return a copy whose image (and mask) columns are rewritten,
so they chain in a :class:`~sklearn.pipeline.Pipeline` in front of an image classifier or a
feature extractor:

- :class:`ROICropper` crops each image (and its mask) to the rectangle around the lesion mask,
  with a margin, a minimum size and a fallback for empty masks, and resamples it;
- :class:`IntensityNormalizer` normalises each image by its own statistics (z-score, min-max,
  histogram equalisation), optionally computed inside the lesion mask;
- :class:`FrameSelector` writes a key frame of every clip as an image column (the static
  comparator of a video model);
- :class:`InstanceSelector` writes one image of every bag (e.g. the first tumour view), the
  single-image comparator of a bag model.

They are stateless: ``fit`` validates the parameters and the columns and learns nothing.
"""

from ._frames import FrameSelector
from ._instances import InstanceSelector
from ._intensity import IntensityNormalizer
from ._roi import ROICropper

__all__ = ["FrameSelector", "InstanceSelector", "IntensityNormalizer", "ROICropper"]
