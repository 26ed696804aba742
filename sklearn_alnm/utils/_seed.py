"""One place to seed every random number generator the library uses."""

import random
from typing import Any

import numpy as np

from .._typing import RandomStateLike


def seed_everything(random_state: RandomStateLike = None, *, deterministic: bool = False) -> int:
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


def seed_from(random_state: RandomStateLike) -> int:
    """An int seed in ``[0, 2**31 - 1)`` from ``random_state`` (an int is used as is).

    The one place where a ``random_state`` parameter becomes the seed of torch's generators
    (network initialisation, shuffling, dropout, augmentation).

    Parameters
    ----------
    random_state : int, numpy.random.RandomState or None
        ``None`` draws from NumPy's global generator; a ``RandomState`` contributes one draw.

    Returns
    -------
    int

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_alnm.utils import seed_from
    >>> seed_from(7)
    7
    >>> seed_from(np.random.RandomState(0)) == seed_from(np.random.RandomState(0))
    True
    """
    import numbers

    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return int(random_state)
    from sklearn.utils import check_random_state

    return int(check_random_state(random_state).randint(0, 2**31 - 1))


def forked_torch_rng(seed: int | None = None, device: Any = None) -> Any:
    """Context manager: torch's global generators forked (restored on exit), seeded if asked.

    Everything the library runs with torch's global random state (initialisation, a fit, a
    DataLoader drawing its base seed at prediction) runs inside this fork, so the caller's
    random stream is left exactly as it was.

    Parameters
    ----------
    seed : int or None, default=None
        Seed applied inside the block (``torch.manual_seed``); ``None`` only forks.
    device : str, torch.device or None, default=None
        A CUDA device whose generator is forked too (CPU only otherwise).

    Examples
    --------
    >>> import torch
    >>> from sklearn_alnm.utils import forked_torch_rng
    >>> before = torch.random.get_rng_state()
    >>> with forked_torch_rng(0):
    ...     _ = torch.rand(3)
    >>> bool(torch.equal(before, torch.random.get_rng_state()))
    True
    """
    import contextlib

    import torch

    devices = []
    if device is not None and str(device).startswith("cuda"):
        devices = [torch.device(device).index or 0]

    @contextlib.contextmanager
    def fork():
        with torch.random.fork_rng(devices=devices):
            if seed is not None:
                torch.manual_seed(int(seed))
            yield

    return fork()
