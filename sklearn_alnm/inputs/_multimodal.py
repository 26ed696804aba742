"""Multimodal input: one image column per modality, each prepared its own way, and presence.

A :class:`MultimodalInput` reads, for every patient, one image per modality (the ultrasound
image with its lesion mask, the H&E biopsy tile, ...) through that modality's own
:class:`~sklearn_alnm.inputs.ImageInput` (crop, size, channels, normalisation), and says
which modalities each patient has. A batch is a :class:`MultimodalBatch`: a dict of
``(N, C_k, H_k, W_k)`` tensors by modality and a boolean ``present`` tensor
``(N, n_modalities)``; an absent image (an empty cell: ``None``, NaN, ``""``) is a zero
tensor there and ``False`` in ``present``. :class:`MultimodalAugment` applies each
modality's own training augmentation to its tensor.
"""

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch

from ..io._cohort import _is_missing
from ..utils import CohortInputError
from ._base import BaseInput, LazyRowsDataset, TargetDataset, map_rows


class MultimodalBatch(NamedTuple):
    """A batch of several modalities: ``images`` by modality and ``present`` (N, B) bool."""

    images: dict
    present: torch.Tensor


def missing_cells(X: pd.DataFrame, column: str) -> np.ndarray:
    """Boolean array: which cells of ``column`` are empty (``None``, NaN, ``""``)."""
    return np.array(
        [not isinstance(v, np.ndarray | list | tuple) and _is_missing(v) for v in X[column]],
        dtype=bool,
    )


def modality_presence(
    X: pd.DataFrame,
    columns: Sequence[str],
    *,
    missing: str = "error",
    row_ids: Sequence[Any] | None = None,
) -> np.ndarray:
    """Which of the image ``columns`` each row of ``X`` has, as a ``(N, len(columns))`` bool
    array.

    Parameters
    ----------
    X : pandas.DataFrame
    columns : sequence of str
        One image column per modality.
    missing : {"error", "drop_branch"}, default="error"
        ``"error"``: an empty cell raises a :class:`~sklearn_alnm.utils.CohortInputError`
        naming the first such patient, the column and how many rows lack it.
        ``"drop_branch"``: it is marked absent. A row with no image at all always raises.
    row_ids : sequence or None, default=None
        Patient ids for messages (looked up when needed).

    Returns
    -------
    ndarray of bool
    """
    present = np.ones((len(X), len(columns)), dtype=bool)
    for k, column in enumerate(columns):
        present[:, k] = ~missing_cells(X, column)

    def ids():
        return BaseInput.row_ids(X) if row_ids is None else row_ids

    if missing == "error" and not present.all():
        i, k = np.argwhere(~present)[0]
        raise CohortInputError(
            f"empty cell ({int((~present[:, k]).sum())} rows lack column {columns[k]!r}); give "
            "every patient this image or use missing='drop_branch'",
            row=ids()[i],
            column=columns[k],
        )
    empty = np.flatnonzero(~present.any(axis=1))
    if empty.size:
        raise CohortInputError(
            f"no image of any modality ({empty.size} such rows); every patient needs at least one",
            row=ids()[empty[0]],
            column=", ".join(columns),
        )
    return present


class MultimodalDataset(TargetDataset):
    """Prepared tensors of every modality and the presence matrix; a batch is one
    ``index_select`` per modality."""

    def __init__(self, images, present, target=None):
        super().__init__(target)
        self.images = images
        self.present = present

    def __len__(self):
        return self.present.shape[0]

    def _inputs(self, index):
        return MultimodalBatch(
            {name: t.index_select(0, index) for name, t in self.images.items()},
            self.present.index_select(0, index),
        )

    def content(self):
        images = {name: t.numpy() for name, t in self.images.items()}
        return images, self.present.numpy(), super().content()


class MultimodalInput(BaseInput):
    """Read several image columns, one :class:`ImageInput` per modality, with presence.

    Parameters
    ----------
    inputs : dict of str to ImageInput
        The modalities in order, each with its own column(s) and preparation; their
        ``in_chans`` must be set (e.g. the fitted inputs of single-modality classifiers).
    missing : {"error", "drop_branch"}, default="error"
        An empty image cell raises a :class:`~sklearn_alnm.utils.CohortInputError` naming the
        patient and the column (``"error"``), or marks the modality absent for that patient
        (``"drop_branch"``). A patient with no image at all is always an error.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn_alnm.inputs import ImageInput, MultimodalInput
    >>> X = pd.DataFrame({"us": [np.zeros((8, 8)), np.ones((8, 8))],
    ...                   "path": [np.zeros((8, 8, 3)), None]})
    >>> inputs = {"us": ImageInput("us", input_size=(16, 16), normalize="zscore", in_chans=1),
    ...           "path": ImageInput("path", input_size=(16, 16), normalize="zscore", in_chans=3)}
    >>> batch = MultimodalInput(inputs, missing="drop_branch").load_batch(X, [0, 1])
    >>> tuple(batch.images["path"].shape), batch.present.tolist()
    ((2, 3, 16, 16), [[True, True], [True, False]])
    """

    def __init__(self, inputs, *, missing="error"):
        if missing not in ("error", "drop_branch"):
            raise ValueError(f"missing must be 'error' or 'drop_branch'; got {missing!r}.")
        self.inputs = dict(inputs)
        self.missing = missing

    def __repr__(self):
        inner = ", ".join(f"{name}={inp!r}" for name, inp in self.inputs.items())
        return f"MultimodalInput({inner}, missing={self.missing!r})"

    @property
    def names(self):
        """The modalities, in order."""
        return tuple(self.inputs)

    @property
    def columns(self):
        """Every cohort column read (each modality's image and mask columns)."""
        out = []
        for inp in self.inputs.values():
            out += [c for c in inp.columns if c not in out]
        return out

    def presence(self, X):
        """``(N, n_modalities)`` bool array of the modalities each row has (errors per
        ``missing``, see :func:`modality_presence`)."""
        return modality_presence(
            X, [inp.image_col for inp in self.inputs.values()], missing=self.missing
        )

    def _fill(self, X, present, prepare):
        """Per modality a tensor of all rows: prepared where present, zeros elsewhere."""
        images = {}
        for k, (name, inp) in enumerate(self.inputs.items()):
            rows = np.flatnonzero(present[:, k])
            out = torch.zeros((len(X), inp.in_chans, *inp.input_size), dtype=torch.float32)
            if rows.size:
                out[torch.as_tensor(rows)] = prepare(inp, rows)
            images[name] = out
        return images

    def prepare(self, X, *, n_jobs=None, verbose=0):
        """Every row of ``X`` -> :class:`MultimodalBatch` (each image read and prepared once)."""
        present = self.presence(X)

        def prepare(inp, rows):
            rows = list(rows)
            loaded = map_rows(
                lambda j: inp.load_row(X, rows[j]),
                len(rows),
                n_jobs=n_jobs,
                verbose=verbose,
                desc=f"preparing {inp.image_col}",
            )
            return inp.finish(loaded)

        return MultimodalBatch(self._fill(X, present, prepare), torch.as_tensor(present))

    def load_batch(self, X, positions):
        """The prepared batch of the rows at ``positions`` (lazy datasets)."""
        sub = X.iloc[list(positions)]
        present = self.presence(sub)
        images = self._fill(sub, present, lambda inp, rows: inp.load_batch(sub, rows.tolist()))
        return MultimodalBatch(images, torch.as_tensor(present))

    def dataset(self, X, target=None, *, preload=True, n_jobs=None, verbose=0):
        """The rows of ``X`` (and ``target``) as a dataset of :class:`MultimodalBatch`."""
        if preload:
            batch = self.prepare(X, n_jobs=n_jobs, verbose=verbose)
            return MultimodalDataset(batch.images, batch.present, target)
        self.presence(X)  # errors now, not in the middle of an epoch
        return LazyRowsDataset(X, self, target)


class MultimodalAugment:
    """Each modality's own batched augmentation applied to its tensor of a
    :class:`MultimodalBatch` (training batches only).

    Parameters
    ----------
    augments : dict of str to callable or None
        Batched augmentations by modality (``None``: that modality is not augmented).
    """

    batched = True

    def __init__(self, augments):
        self.augments = dict(augments)

    def __repr__(self):
        return f"MultimodalAugment({self.augments!r})"

    def __call__(self, batch):
        images = {
            name: (aug(batch.images[name]) if aug is not None else batch.images[name])
            for name, aug in self.augments.items()
        }
        return MultimodalBatch(images, batch.present)
