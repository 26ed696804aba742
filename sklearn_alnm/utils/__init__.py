"""Helpers shared by every estimator: device resolution, seeding, input errors."""

from ._device import resolve_device
from ._errors import CohortInputError, describe_location
from ._seed import seed_everything

__all__ = ["CohortInputError", "describe_location", "resolve_device", "seed_everything"]
