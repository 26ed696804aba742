"""Bag input: each patient's variable number of instances, with kinds, as padded batches.

A bag cell holds one patient's instances: feature vectors (a 2-D array ``(n, F)`` or a list
of 1-D vectors: the tokens of an earlier image-level model) or images (a list of image
references, each prepared by an :class:`~sklearn_alnm.inputs.ImageInput`: crop to the
instance's lesion mask when a mask column is given, resize, normalise). An optional kind
column gives each instance's kind (``"tumor"`` / ``"node"``), a list as long as the bag.

Every instance is prepared once per fit into one tensor (bags concatenated, with offsets);
a batch is padded to its longest bag: a :class:`BagBatch` of ``instances`` ``(B, N, ...)``,
a boolean ``mask`` ``(B, N)`` (``True``: a real instance) and ``kinds`` ``(B, N)`` (``1..K``
in the order of the input's ``kinds``; 0 for padding, and everywhere without kinds).
An empty bag, a kind list or mask list that does not match its bag, an unknown kind, or
feature vectors of another size are errors naming the patient and the column.
"""

from typing import NamedTuple

import numpy as np
import pandas as pd
import torch

from ..io._cohort import _is_missing
from ..utils import CohortInputError
from ._base import BaseInput, TargetDataset


class BagBatch(NamedTuple):
    """A batch of bags padded to the longest: ``instances`` ``(B, N, ...)``, ``mask``
    ``(B, N)`` bool and ``kinds`` ``(B, N)`` long (zeros without kinds)."""

    instances: torch.Tensor
    mask: torch.Tensor
    kinds: torch.Tensor


def _as_list(value, what, row, column):
    """A bag's cell as a list of items (arrays of a 2-D feature cell by row)."""
    if isinstance(value, np.ndarray) and value.dtype != object and what == "features":
        if value.ndim != 2:
            raise CohortInputError(
                f"a feature bag must be a 2-D array (instances x features) or a list of "
                f"vectors; got an array of shape {value.shape}",
                row=row,
                column=column,
            )
        return list(value)
    if isinstance(value, list | tuple) or (isinstance(value, np.ndarray) and value.ndim == 1):
        return list(value)
    if not isinstance(value, np.ndarray) and _is_missing(value):
        return []
    raise CohortInputError(
        f"a bag cell must be a list of {what} (one per instance); got {type(value).__name__}",
        row=row,
        column=column,
    )


class BagDataset(TargetDataset):
    """Prepared instances of all bags in one tensor, cut by offsets; batches padded.

    Parameters
    ----------
    values : torch.Tensor of shape (n_instances, ...)
        Every bag's instances, bag after bag.
    offsets : torch.Tensor of shape (n_bags + 1,)
        Bag ``i`` is ``values[offsets[i]:offsets[i + 1]]``.
    kinds : torch.Tensor of shape (n_instances,) or None
        Kind codes ``1..K`` of the instances.
    target : see :class:`~sklearn_alnm.inputs.TargetDataset`
    """

    def __init__(self, values, offsets, kinds=None, target=None):
        super().__init__(target)
        self.values = values
        self.offsets = torch.as_tensor(offsets, dtype=torch.long)
        self.kinds = kinds

    def __len__(self):
        return len(self.offsets) - 1

    @property
    def lengths(self):
        """Instances per bag."""
        return self.offsets[1:] - self.offsets[:-1]

    def _inputs(self, index):
        starts, ends = self.offsets[index], self.offsets[index + 1]
        lengths = ends - starts
        width = int(lengths.max())
        n = len(index)
        mask = torch.arange(width)[None, :] < lengths[:, None]
        positions = (starts[:, None] + torch.arange(width)[None, :])[mask]
        instances = self.values.new_zeros((n, width, *self.values.shape[1:]))
        instances[mask] = self.values.index_select(0, positions)
        kinds = torch.zeros((n, width), dtype=torch.long)
        if self.kinds is not None:
            kinds[mask] = self.kinds.index_select(0, positions)
        return BagBatch(instances, mask, kinds)

    def bag(self, i):
        """The instances of bag ``i``, unpadded."""
        return self.values[int(self.offsets[i]) : int(self.offsets[i + 1])]

    def content(self):
        kinds = None if self.kinds is None else self.kinds.numpy()
        return self.values.numpy(), self.offsets.numpy(), kinds, super().content()


class BagInput(BaseInput):
    """Read bags of feature vectors or of images (with kinds and instance masks).

    Parameters
    ----------
    bag_col : str
        Cohort column of the bags.
    kind_col : str or None, default=None
        Column of the instance kinds: per patient a list as long as the bag.
    mask_col : str or None, default=None
        Column of the instances' lesion masks (image bags; each image cropped to its mask's
        rectangle as ``image`` says).
    image : ImageInput or None, default=None
        How each image instance is prepared (its ``image_col`` / ``mask_col`` are
        ``bag_col`` / ``mask_col``: it reads the table of :meth:`instance_frame`); ``None``
        reads feature vectors.
    kinds : sequence of str or None, default=None
        The kinds, coded ``1..K`` in this order; ``None``: the sorted kinds of the first
        cohort read (the training cohort). Another kind later is an error.
    n_features : int or None, default=None
        Size of the feature vectors; ``None``: decided by the first cohort read.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn_alnm.inputs import BagInput
    >>> X = pd.DataFrame({"tokens": [np.ones((2, 4)), np.zeros((3, 4))],
    ...                   "kind": [["tumor", "node"], ["tumor", "tumor", "node"]]})
    >>> data = BagInput("tokens", "kind").dataset(X)
    >>> batch = data.__getitems__([0, 1])[0]
    >>> tuple(batch.instances.shape), batch.mask.tolist(), batch.kinds.tolist()
    ((2, 3, 4), [[True, True, False], [True, True, True]], [[2, 1, 0], [2, 2, 1]])
    """

    def __init__(
        self, bag_col, kind_col=None, mask_col=None, *, image=None, kinds=None, n_features=None
    ):
        self.bag_col = bag_col
        self.kind_col = kind_col
        self.mask_col = mask_col if image is not None else None
        self.image = image
        self.kinds = None if kinds is None else tuple(kinds)
        self.n_features = n_features

    def __repr__(self):
        return (
            f"BagInput(bag_col={self.bag_col!r}, kind_col={self.kind_col!r}, "
            f"mask_col={self.mask_col!r}, image={self.image!r}, kinds={self.kinds!r})"
        )

    @property
    def columns(self):
        """The cohort columns read."""
        return [c for c in (self.bag_col, self.kind_col, self.mask_col) if c]

    @property
    def n_kinds(self):
        """Number of kinds (0 without a kind column)."""
        return len(self.kinds) if self.kind_col and self.kinds else 0

    # ------------------------------------------------------------------------------ reading

    def read_bags(self, X):
        """Per row, its items (and kinds and masks); checks what can be checked unprepared.

        Returns
        -------
        bags : list of list
        kinds : list of list of str or None
        masks : list of list or None
        """
        ids = self.row_ids(X)
        what = "images" if self.image is not None else "features"
        bags, kinds, masks = [], [] if self.kind_col else None, [] if self.mask_col else None
        for i in range(len(X)):
            items = _as_list(X[self.bag_col].iloc[i], what, ids[i], self.bag_col)
            if not items:
                raise CohortInputError(
                    "empty bag: every patient needs at least one instance",
                    row=ids[i],
                    column=self.bag_col,
                )
            bags.append(items)
            for column, out in ((self.kind_col, kinds), (self.mask_col, masks)):
                if column is None:
                    continue
                cell = X[column].iloc[i]
                values = list(cell) if isinstance(cell, list | tuple | np.ndarray) else None
                if values is None or len(values) != len(items):
                    got = "not a list" if values is None else f"{len(values)} entries"
                    raise CohortInputError(
                        f"{column!r} must hold one entry per instance of {self.bag_col!r} "
                        f"({len(items)}); got {got}",
                        row=ids[i],
                        column=column,
                    )
                out.append(values)
        return bags, kinds, masks

    def _kind_codes(self, kinds, X):
        if kinds is None:
            return None
        if self.kinds is None:
            self.kinds = tuple(sorted({str(k) for bag in kinds for k in bag}))
        codes = {k: c + 1 for c, k in enumerate(self.kinds)}
        ids = self.row_ids(X)
        out = []
        for i, bag in enumerate(kinds):
            for k in bag:
                if str(k) not in codes:
                    raise CohortInputError(
                        f"unknown instance kind {k!r}; known: {list(self.kinds)}",
                        row=ids[i],
                        column=self.kind_col,
                    )
                out.append(codes[str(k)])
        return torch.as_tensor(out, dtype=torch.long)

    def _features(self, bags, X):
        ids = self.row_ids(X)
        rows = []
        for i, items in enumerate(bags):
            try:
                bag = np.stack([np.asarray(v, dtype=np.float32).reshape(-1) for v in items])
            except (TypeError, ValueError) as exc:
                raise CohortInputError(
                    f"the feature vectors of a bag must be numbers of one length ({exc})",
                    row=ids[i],
                    column=self.bag_col,
                ) from None
            if self.n_features is None:
                self.n_features = bag.shape[1]
            if bag.shape[1] != self.n_features:
                raise CohortInputError(
                    f"feature vectors of {bag.shape[1]} values; the bags have {self.n_features}",
                    row=ids[i],
                    column=self.bag_col,
                )
            if not np.isfinite(bag).all():
                raise CohortInputError(
                    "a feature vector holds NaN or infinite values", row=ids[i], column=self.bag_col
                )
            rows.append(torch.from_numpy(bag))
        return torch.cat(rows)

    def instance_frame(self, X, bags=None, masks=None):
        """One row per image instance: ``patient_id`` (``"P1[0]"``: patient and position, as
        errors name it), the image in ``bag_col`` and its mask in ``mask_col``."""
        if bags is None:
            bags, _, masks = self.read_bags(X)
        ids = self.row_ids(X)
        frame = {
            "patient_id": [f"{ids[i]}[{j}]" for i, bag in enumerate(bags) for j in range(len(bag))],
            self.bag_col: [item for bag in bags for item in bag],
        }
        if masks is not None:
            frame[self.mask_col] = [m for bag in masks for m in bag]
        return pd.DataFrame(frame)

    def prepare(self, X, *, n_jobs=None, verbose=0):
        """Every bag of ``X`` -> ``(values, offsets, kinds)`` (each instance prepared once)."""
        bags, kinds, masks = self.read_bags(X)
        lengths = [len(bag) for bag in bags]
        offsets = torch.as_tensor(np.concatenate([[0], np.cumsum(lengths)]), dtype=torch.long)
        codes = self._kind_codes(kinds, X)
        if self.image is None:
            values = self._features(bags, X)
        else:
            frame = self.instance_frame(X, bags, masks)
            values, self.image.in_chans = self.image.prepare(frame, n_jobs=n_jobs, verbose=verbose)
        return values, offsets, codes

    def dataset(self, X, target=None, *, n_jobs=None, verbose=0):
        """The bags of ``X`` (and ``target``) as a :class:`BagDataset`; decides ``kinds``,
        ``n_features`` or the image channels when unset."""
        values, offsets, kinds = self.prepare(X, n_jobs=n_jobs, verbose=verbose)
        return BagDataset(values, offsets, kinds, target)


class BagAugment:
    """A batched image augmentation applied to the real instances of a :class:`BagBatch`
    (training batches of image bags; padding stays zeros).

    Parameters
    ----------
    augment : callable
        Batched: images ``(n, C, H, W)`` -> images of the same shape.
    """

    batched = True

    def __init__(self, augment):
        self.augment = augment

    def __repr__(self):
        return f"BagAugment({self.augment!r})"

    def __call__(self, batch):
        instances = batch.instances.clone()
        mask = batch.mask.bool()
        instances[mask] = self.augment(batch.instances[mask])
        return BagBatch(instances, batch.mask, batch.kinds)


class InstanceDropout:
    """Training-batch regulariser of bags: each real instance is hidden with probability
    ``p`` (its mask set to False), at least one instance of every bag kept.

    The bag classifier then cannot lean on one instance always being there (missing node
    images, fewer views), a common regulariser of multiple-instance learning. An optional
    ``then`` augmentation runs first (on the instances).

    Parameters
    ----------
    p : float
        Probability, in ``[0, 1)``, that an instance is dropped.
    then : callable or None, default=None
        Another batch augmentation, e.g. :class:`BagAugment`, applied before.

    Examples
    --------
    >>> import torch
    >>> from sklearn_alnm.inputs import BagBatch, InstanceDropout
    >>> batch = BagBatch(torch.zeros(2, 3, 4), torch.tensor([[1, 1, 1], [1, 0, 0]]).bool(),
    ...                  torch.zeros(2, 3, dtype=torch.long))
    >>> out = InstanceDropout(0.9)(batch)
    >>> bool(out.mask.any(dim=1).all()), bool((out.mask <= batch.mask).all())
    (True, True)
    """

    batched = True

    def __init__(self, p, then=None):
        if not 0.0 <= float(p) < 1.0:
            raise ValueError(f"instance dropout must be in [0, 1); got {p!r}.")
        self.p = float(p)
        self.then = then

    def __repr__(self):
        return f"InstanceDropout({self.p!r}, then={self.then!r})"

    def __call__(self, batch):
        if self.then is not None:
            batch = self.then(batch)
        mask = batch.mask.bool()
        keep = torch.rand(mask.shape, device=mask.device) >= self.p
        dropped = mask & keep
        # a bag that lost everything keeps one of its real instances, drawn at random
        empty = ~dropped.any(dim=1)
        if bool(empty.any()):
            scores = torch.rand(mask.shape, device=mask.device).masked_fill(~mask, -1.0)
            pick = scores.argmax(dim=1)
            rows = torch.nonzero(empty, as_tuple=True)[0]
            dropped[rows, pick[rows]] = True
        return BagBatch(batch.instances, dropped, batch.kinds)


class BagInstanceInput(BaseInput):
    """The instances of every bag as rows of their own: images, lesion masks and kinds.

    What an image-level model of bags trains on (the multi-task model): each bag's images
    (and masks) exploded into one row per instance, prepared as a segmenter's images and
    masks (:class:`~sklearn_alnm.inputs.ImageMaskInput`: resized to ``input_size``, masks
    as soft targets on the same grid), with the kind of each instance and the index of its
    patient.

    Parameters
    ----------
    bag_col, kind_col, mask_col : str
        The bag, kind and mask columns (see :class:`BagInput`); ``kind_col`` and
        ``mask_col`` are read for training only.
    input_size : tuple of 2 int, default=(64, 64)
    normalize : {"zscore", "imagenet", "histeq+zscore"}, default="zscore"
    kinds : sequence of str, default=("tumor", "node")
        The two kinds; the second is the positive one of the kind head.
    in_chans : int or None, default=None
    """

    def __init__(
        self,
        bag_col,
        kind_col,
        mask_col,
        *,
        input_size=(64, 64),
        normalize="zscore",
        kinds=("tumor", "node"),
        in_chans=None,
    ):
        from ._masks import ImageMaskInput

        self.bag_col = bag_col
        self.kind_col = kind_col
        self.mask_col = mask_col
        self.kinds = tuple(kinds)
        self.images = ImageMaskInput(
            bag_col, mask_col, input_size=input_size, normalize=normalize, in_chans=in_chans
        )

    def __repr__(self):
        return (
            f"BagInstanceInput(bag_col={self.bag_col!r}, kind_col={self.kind_col!r}, "
            f"mask_col={self.mask_col!r}, images={self.images!r})"
        )

    @property
    def in_chans(self):
        return self.images.in_chans

    @property
    def input_size(self):
        return self.images.input_size

    @property
    def columns(self):
        return [self.bag_col]

    @property
    def training_columns(self):
        return [self.bag_col, self.kind_col, self.mask_col]

    def _bags(self, training):
        return BagInput(
            self.bag_col,
            self.kind_col if training else None,
            self.mask_col if training else None,
            image=self.images.images,
            kinds=self.kinds,
        )

    def instances(self, X, *, training=False):
        """``(frame, patient)``: one row per instance (``patient_id`` "P1[0]", the image,
        with ``training`` its mask and kind) and the position of its patient in ``X``."""
        bags = self._bags(training)
        items, kinds, masks = bags.read_bags(X)
        frame = bags.instance_frame(X, items, masks)
        if training:
            frame[self.kind_col] = [k for bag in kinds for k in bag]
        patient = np.repeat(np.arange(len(items)), [len(b) for b in items])
        return frame, patient

    def kind_targets(self, frame):
        """0/1 targets of the kind head (1: the second kind); unknown kinds are errors."""
        values = frame[self.kind_col].astype(str).to_numpy()
        unknown = sorted(set(values) - set(self.kinds))
        if unknown:
            i = int(np.flatnonzero(~np.isin(values, self.kinds))[0])
            raise CohortInputError(
                f"unknown instance kind {unknown[0]!r}; known: {list(self.kinds)}",
                row=frame["patient_id"].iloc[i],
                column=self.kind_col,
            )
        return torch.as_tensor(values == self.kinds[1], dtype=torch.float32)

    def dataset(self, X, target=None, *, training=False, n_jobs=None, verbose=0):
        """Instances of ``X`` as a dataset. ``training``: the target is ``(labels, masks,
        kinds[, sample_weights])`` per instance, ``target`` (patient labels, or labels and
        weights) repeated for each of the patient's instances. The dataset's ``patient``
        attribute maps instances to patients, its ``shapes`` holds each instance's original
        ``(H, W)``."""
        frame, patient = self.instances(X, training=training)
        images, masks, shapes = self.images.prepare(
            frame, with_masks=training, n_jobs=n_jobs, verbose=verbose
        )
        index = torch.as_tensor(patient)
        if training:
            parts = target if isinstance(target, tuple) else (target,)
            labels, *weights = [p.index_select(0, index) for p in parts]
            target = (labels, masks, self.kind_targets(frame), *weights)
        from ._base import TensorInputDataset

        dataset = TensorInputDataset(images, target)
        dataset.patient, dataset.shapes = patient, shapes
        return dataset
