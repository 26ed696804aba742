"""Helpers shared by every estimator: device, seeding, input errors, content cache."""

from ._cache import FeatureCache, resolve_cache
from ._device import resolve_device
from ._errors import CohortInputError, describe_location
from ._seed import seed_everything
from ._validation import check_cohort, column_mask

__all__ = [
    "CohortInputError",
    "FeatureCache",
    "check_cohort",
    "column_mask",
    "describe_location",
    "resolve_cache",
    "resolve_device",
    "seed_everything",
]
