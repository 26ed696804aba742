"""Helpers shared by every estimator: device, seeding, input errors, content cache, cluster,
data-parallel training."""

from ._cache import FeatureCache, resolve_cache
from ._cluster import ClusterUnavailableError, check_parallel_spec, parallel_backend
from ._device import resolve_device
from ._distributed import (
    DataParallelInfo,
    data_parallel_info,
    init_data_parallel,
    is_main_process,
)
from ._errors import CohortInputError, describe_location
from ._labels import is_conventional_labels, resolve_pos_label
from ._seed import forked_torch_rng, seed_everything, seed_from
from ._validation import check_cohort, column_mask

__all__ = [
    "ClusterUnavailableError",
    "CohortInputError",
    "DataParallelInfo",
    "FeatureCache",
    "check_cohort",
    "check_parallel_spec",
    "column_mask",
    "data_parallel_info",
    "describe_location",
    "forked_torch_rng",
    "init_data_parallel",
    "is_main_process",
    "is_conventional_labels",
    "parallel_backend",
    "resolve_cache",
    "resolve_device",
    "resolve_pos_label",
    "seed_everything",
    "seed_from",
]
