"""The contract every input kind fulfils: a cohort's columns in, a torch ``Dataset`` out.

An *input* object turns what an estimator reads from a cohort DataFrame (an image column, an
image and its mask, a video, a bag, several modalities) into what its network consumes. The
estimators of :mod:`sklearn_alnm.models` and :mod:`sklearn_alnm.segmentation` know nothing of
pixels: they ask their input for

- :attr:`BaseInput.columns`: the cohort columns read at inference (checked by
  :meth:`BaseInput.check`, errors naming the missing column);
- :meth:`BaseInput.dataset`: the rows (with their targets) as a :class:`torch.utils.data.Dataset`;
- :attr:`BaseInput.collate_fn`: how the DataLoader assembles its batches;
- :meth:`BaseInput.content_key`: a hash of the data, naming a checkpoint run.

:class:`TargetDataset` is the shared dataset base: inputs indexed by position, with an optional
target (a tensor, or a tuple of tensors such as labels and sample weights) indexed alike, and
whole batches assembled by ``__getitems__`` (one ``index_select`` for prepared tensors).
"""

from typing import Any

import joblib
import numpy as np
import torch
from joblib import Parallel, delayed
from torch.utils.data import Dataset, default_collate

from ..io import cohort_row_ids
from ..utils import check_cohort


class Batch(tuple):
    """A batch already assembled by a dataset's ``__getitems__`` (passed through collation)."""


def collate_batches(data: Any) -> Any:
    """``collate_fn`` of the datasets: batches from ``__getitems__`` pass unchanged.

    Anything else goes to :func:`torch.utils.data.default_collate`.
    """
    if isinstance(data, Batch):
        return tuple(data)
    return default_collate(data)


def map_rows(load, n_rows, *, n_jobs=None, verbose=0, desc="reading", unit="row"):
    """``[load(i) for i in range(n_rows)]``, in threads with ``n_jobs``, with a progress bar.

    The one loop over a cohort's rows of the inputs (reading and decoding release the GIL,
    so threads parallelise it without copying the cohort).
    """
    from tqdm.auto import tqdm

    bar = tqdm(total=n_rows, desc=desc, unit=unit, disable=not verbose)

    def run(i):
        out = load(i)
        bar.update()
        return out

    try:
        if n_jobs is None or n_jobs == 1 or n_rows < 2:
            return [run(i) for i in range(n_rows)]
        return Parallel(n_jobs=n_jobs, prefer="threads")(delayed(run)(i) for i in range(n_rows))
    finally:
        bar.close()


def _index(target, index):
    if target is None:
        return None
    if isinstance(target, tuple):
        return tuple(_index(t, index) for t in target)
    if isinstance(index, torch.Tensor):
        return target.index_select(0, index)
    return target[index]


class TargetDataset(Dataset):
    """Base of the datasets: rows of inputs with an optional target indexed alike.

    Subclasses implement ``__len__`` and ``_inputs(index)`` (``index``: an int, or a long
    tensor of positions for a whole batch). A missing target is a zero label, as skorch
    expects a pair.

    Parameters
    ----------
    target : torch.Tensor, tuple of torch.Tensor or None
        Indexed along the first axis (a tuple such as ``(labels, sample_weights)`` element by
        element).
    """

    def __init__(self, target=None):
        self.target = target

    def __len__(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _inputs(self, index):  # pragma: no cover - abstract
        raise NotImplementedError

    def __getitem__(self, i):
        target = _index(self.target, i)
        inputs = self._inputs(torch.as_tensor([i], dtype=torch.long))[0]
        return inputs, (torch.zeros((), dtype=torch.long) if target is None else target)

    def __getitems__(self, indices):
        index = torch.as_tensor(indices, dtype=torch.long)
        return Batch((self._inputs(index), _index(self.target, index)))

    def content(self):
        """What identifies the data (hashed by :meth:`BaseInput.content_key`)."""
        target = self.target
        if isinstance(target, tuple):
            target = tuple(t.numpy() for t in target)
        elif target is not None:
            target = target.numpy()
        return target


class TensorInputDataset(TargetDataset):
    """Inputs prepared once and held in one tensor ``(N, ...)``; a batch is one
    ``index_select``.

    Parameters
    ----------
    inputs : torch.Tensor
    target : see :class:`TargetDataset`
    """

    def __init__(self, inputs, target=None):
        super().__init__(target)
        self.inputs = inputs

    def __len__(self):
        return self.inputs.shape[0]

    def _inputs(self, index):
        return self.inputs.index_select(0, index)

    def content(self):
        return self.inputs.numpy(), super().content()


class LazyRowsDataset(TargetDataset):
    """Rows read and prepared when a batch asks for them (nothing kept between batches).

    Parameters
    ----------
    X : pandas.DataFrame
        The cohort.
    input : BaseInput
        Fitted; its ``load_batch(X, positions)`` returns the batch's inputs.
    target : see :class:`TargetDataset`
    """

    #: Batches are read from the cohort when requested (DataLoader workers help).
    reads_on_access = True

    def __init__(self, X, input, target=None):
        super().__init__(target)
        self.X = X
        self.input = input

    def __len__(self):
        return len(self.X)

    def _inputs(self, index):
        return self.input.load_batch(self.X, [int(i) for i in index.tolist()])

    def content(self):
        return [self.X[c].tolist() for c in self.input.columns], super().content()


def as_target(*parts, dtypes):
    """Targets as tensors: one tensor, or a tuple of them for several parts; ``None`` parts
    are left out (e.g. ``sample_weight=None``) and nothing at all gives ``None``."""
    tensors = tuple(
        torch.as_tensor(np.asarray(part), dtype=dtype)
        for part, dtype in zip(parts, dtypes)
        if part is not None
    )
    if not tensors:
        return None
    return tensors[0] if len(tensors) == 1 else tensors


class BaseInput:
    """Base class of the input kinds (not used directly).

    Subclasses set the columns they read (:attr:`columns`), build datasets
    (:meth:`dataset`) and, when their batches are not plain tensors, their own
    :attr:`collate_fn`.
    """

    #: ``collate_fn`` of the DataLoaders reading this input's datasets.
    collate_fn = staticmethod(collate_batches)

    @property
    def columns(self):  # pragma: no cover - abstract
        """Cohort columns read at inference."""
        raise NotImplementedError

    @property
    def training_columns(self):
        """Cohort columns read by ``fit`` (by default those of inference)."""
        return self.columns

    def check(self, owner, X, *, training=False):
        """Check that ``X`` is a non-empty cohort with :attr:`columns` (or, ``training``,
        :attr:`training_columns`); errors name ``owner``."""
        check_cohort(owner, X, self.training_columns if training else self.columns)
        return X

    @staticmethod
    def row_ids(X):
        """Patient ids (or index labels) of the rows, for messages."""
        return cohort_row_ids(X)

    def dataset(self, X, target=None, **kwargs):  # pragma: no cover - abstract
        """The rows of ``X`` with their ``target`` as a :class:`torch.utils.data.Dataset`."""
        raise NotImplementedError

    @staticmethod
    def content_key(dataset):
        """A hash of a dataset's data (inputs and targets): names a checkpoint run."""
        return joblib.hash(dataset.content())
