"""One place to seed every random number generator the library uses."""

import random

import numpy as np


def seed_everything(random_state=None, *, deterministic=False):
    """Seed Python's, NumPy's and torch's global generators from ``random_state``.

    Parameters
    ----------
    random_state : int, numpy.random.RandomState, numpy.random.Generator or None
        ``None`` draws a fresh seed (the run is not reproducible, but the seed used is
        returned so it can be logged). An int is used as is; a generator contributes one draw.
    deterministic : bool, default=False
        Also ask torch for deterministic algorithms (``torch.use_deterministic_algorithms`` with
        ``warn_only=True``) and disable cuDNN benchmarking. Slower; use for exact replays.

    Returns
    -------
    int
        The seed that was applied (in ``[0, 2**32 - 1)``).

    Examples
    --------
    >>> from sklearn_alnm.utils import seed_everything
    >>> seed_everything(0)
    0
    """
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        seed = int(random_state)
        if not 0 <= seed < 2**32:
            raise ValueError(f"random_state must be in [0, 2**32); got {seed}.")
    elif isinstance(random_state, np.random.Generator):
        seed = int(random_state.integers(0, 2**32 - 1))
    else:
        from sklearn.utils import check_random_state  # lazy: keeps worker start-up light

        seed = int(check_random_state(random_state).randint(0, 2**32 - 1))
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - seeding the legacy global generator is the point
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return seed
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    return seed
