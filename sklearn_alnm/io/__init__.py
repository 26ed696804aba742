"""Readers and writers for cohort data: images, masks, videos and manifest tables.

A cohort is a :class:`pandas.DataFrame` with one row per patient whose image, mask, video,
pathology and bag columns hold file paths or numpy arrays. The readers turn one cell into a
numpy array (:func:`read_image`, :func:`read_mask`, :func:`read_video`); the cohort helpers
(:func:`read_cell`, :func:`read_column`, :func:`read_image_mask`) do it for a row or a whole
column and report every problem as a :class:`~sklearn_alnm.utils.CohortInputError` naming the
patient, the column and the file. :func:`load_manifest` and :func:`save_manifest` move cohorts
to and from CSV / Excel tables; the writers create the files (e.g. for synthetic cohorts).
"""

from ..utils import CohortInputError
from ._cohort import (
    cohort_row_ids,
    is_id_column_name,
    read_cell,
    read_column,
    read_image_mask,
    resolve_id_column,
)
from ._formats import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS
from ._image import LossyMaskWarning, read_image, read_mask, write_image, write_mask
from ._manifest import load_manifest, save_manifest
from ._video import read_video, sample_frame_indices, write_video

__all__ = [
    "IMAGE_EXTENSIONS",
    "LossyMaskWarning",
    "VIDEO_EXTENSIONS",
    "CohortInputError",
    "cohort_row_ids",
    "is_id_column_name",
    "load_manifest",
    "read_cell",
    "read_column",
    "read_image",
    "read_image_mask",
    "read_mask",
    "read_video",
    "resolve_id_column",
    "sample_frame_indices",
    "save_manifest",
    "write_image",
    "write_mask",
    "write_video",
]
