"""Content-addressed cache for expensive per-patient results (radiomics, deep features, masks).

Deterministic work on a cohort row (pyradiomics extraction, a CNN embedding, a predicted mask)
is keyed by the *content* it depends on: the decoded image and mask arrays and every setting
that changes the result. Paths are never part of a key, so a renamed or re-exported file hits
the same entry and an edited file misses it. Entries are ``.npz`` files written atomically, so
parallel workers (joblib processes, or a Dask/Ray cluster sharing a folder) can fill the same
cache, and an interrupted run leaves no partial entry behind.
"""

import os
import tempfile
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from .._logging import get_logger
from .._typing import ArrayLike

_log = get_logger(__name__)


class FeatureCache:
    """A folder of ``.npz`` entries addressed by content hashes.

    Parameters
    ----------
    location : str or os.PathLike
        Folder holding the entries (created on first write). Each estimator family writes
        under its own namespace sub-folder.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> from sklearn_alnm.utils import FeatureCache
    >>> cache = FeatureCache(tempfile.mkdtemp())
    >>> key = cache.key("demo", np.ones((4, 4)), {"setting": 1})
    >>> cache.load("demo", key) is None
    True
    >>> cache.save("demo", key, values=np.arange(3.0))
    >>> cache.load("demo", key)["values"]
    array([0., 1., 2.])
    """

    def __init__(self, location):
        self.location = Path(location)

    def __repr__(self):
        return f"FeatureCache({os.fspath(self.location)!r})"

    def __eq__(self, other):
        return isinstance(other, FeatureCache) and other.location == self.location

    def __hash__(self):
        return hash(self.location)

    @staticmethod
    def key(namespace: str, *parts: Any) -> str:
        """Hash ``parts`` (arrays, dicts, strings, numbers) into a hexadecimal key.

        Arrays are hashed by dtype, shape and bytes (``joblib.hash``), so equal content gives
        equal keys whatever object holds it.
        """
        return joblib.hash((namespace, *parts))

    def _path(self, namespace, key):
        return self.location / namespace / key[:2] / f"{key}.npz"

    def load(self, namespace: str, key: str) -> dict[str, np.ndarray] | None:
        """Return the stored arrays as a dict; ``None`` when the entry is absent or unreadable."""
        path = self._path(namespace, key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                return {name: data[name] for name in data.files}
        except (OSError, ValueError, EOFError) as exc:  # a damaged entry is a miss, not a crash
            _log.warning("ignoring unreadable cache entry %s (%s)", path, exc)
            return None

    def save(self, namespace: str, key: str, **arrays: ArrayLike) -> None:
        """Store ``arrays`` under ``key``; the write is atomic (temporary file then rename)."""
        path = self._path(namespace, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez(handle, **arrays)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def clear(self, namespace: str | None = None) -> None:
        """Delete every entry (of one namespace, or of all)."""
        root = self.location if namespace is None else self.location / namespace
        for entry in sorted(root.rglob("*.npz"), reverse=True) if root.exists() else ():
            entry.unlink(missing_ok=True)

    def __len__(self):
        return sum(1 for _ in self.location.rglob("*.npz")) if self.location.exists() else 0


def resolve_cache(cache: Any) -> FeatureCache | None:
    """Turn an estimator's ``cache`` parameter into a :class:`FeatureCache` or ``None``.

    Parameters
    ----------
    cache : None, str, os.PathLike, joblib.Memory or FeatureCache
        ``None`` (or a ``joblib.Memory`` without location) disables caching; a folder or a
        ``joblib.Memory`` with a location caches there.

    Returns
    -------
    FeatureCache or None

    Raises
    ------
    TypeError
        For any other type.

    Examples
    --------
    >>> from sklearn_alnm.utils import resolve_cache
    >>> resolve_cache(None) is None
    True
    """
    if cache is None or isinstance(cache, FeatureCache):
        return cache
    if isinstance(cache, joblib.Memory):
        return None if cache.location is None else FeatureCache(cache.location)
    if isinstance(cache, (str, os.PathLike)):
        return FeatureCache(cache)
    raise TypeError(
        "cache must be None, a folder path, a joblib.Memory or a FeatureCache; "
        f"got {type(cache).__name__}."
    )
