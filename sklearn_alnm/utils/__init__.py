"""Helpers shared by every estimator: device, seeding, input errors, content cache, cluster."""

from ._cache import FeatureCache, resolve_cache
from ._cluster import ClusterUnavailableError, check_parallel_spec, parallel_backend
from ._device import resolve_device
from ._errors import CohortInputError, describe_location
from ._labels import is_conventional_labels, resolve_pos_label
from ._seed import forked_torch_rng, seed_everything, seed_from
from ._validation import check_cohort, column_mask

__all__ = [
    "ClusterUnavailableError",
    "CohortInputError",
    "FeatureCache",
    "check_cohort",
    "check_parallel_spec",
    "column_mask",
    "describe_location",
    "forked_torch_rng",
    "is_conventional_labels",
    "parallel_backend",
    "resolve_cache",
    "resolve_device",
    "resolve_pos_label",
    "seed_everything",
    "seed_from",
]
