"""Pick one instance of every bag as an image column (the single-image comparator)."""

import numbers

from sklearn.utils._param_validation import Interval

from ..utils import CohortInputError
from ._base import BaseCohortTransformer


class InstanceSelector(BaseCohortTransformer):
    """Write one image of every bag (e.g. the first tumour view) as an image column.

    The multi-task / multi-instance study compares its bag model with a "single T" model: a
    CNN on one image of the primary tumour. ``InstanceSelector`` writes that image (and its
    mask), so an :class:`~sklearn_alnm.models.ImageClassifier` runs on the same cohort as the
    bag models.

    Parameters
    ----------
    bag_col : str, default="bag"
        Cohort column of the bags (lists of images, paths or arrays).
    kind_col : str or None, default="bag_kind"
        Column of the instance kinds; ``None`` picks among all instances.
    kind : str or None, default="tumor"
        The kind to pick (with ``kind_col``); a bag without it is an error naming the row.
    index : int, default=0
        Which instance of that kind (negative values count from the end).
    mask_col : str or None, default=None
        Column of the instances' masks: the picked instance's mask is written too.
    output_col : str, default="instance_image"
        Column receiving the images (the cells as they are in the bag: paths or arrays).
    output_mask_col : str, default="instance_mask"
        Column receiving the masks (with ``mask_col``).

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn_alnm.preprocessing import InstanceSelector
    >>> X = pd.DataFrame({"bag": [["t1.png", "n1.png"], ["n2.png", "t2.png", "t3.png"]],
    ...                   "bag_kind": [["tumor", "node"], ["node", "tumor", "tumor"]]})
    >>> InstanceSelector().fit_transform(X)["instance_image"].tolist()
    ['t1.png', 't2.png']
    """

    _parameter_constraints = {
        "bag_col": [str],
        "kind_col": [None, str],
        "kind": [None, str],
        "index": [Interval(numbers.Integral, None, None, closed="neither")],
        "mask_col": [None, str],
        "output_col": [str],
        "output_mask_col": [str],
    }

    def __init__(
        self,
        bag_col="bag",
        *,
        kind_col="bag_kind",
        kind="tumor",
        index=0,
        mask_col=None,
        output_col="instance_image",
        output_mask_col="instance_mask",
    ):
        self.bag_col = bag_col
        self.kind_col = kind_col
        self.kind = kind
        self.index = index
        self.mask_col = mask_col
        self.output_col = output_col
        self.output_mask_col = output_mask_col

    def _input_columns(self):
        return [c for c in (self.bag_col, self.kind_col, self.mask_col) if c]

    def _output_columns(self):
        return [self.output_col] + ([self.output_mask_col] if self.mask_col else [])

    def _check_settings(self):
        if self.output_col in self._input_columns():
            raise ValueError(f"output_col={self.output_col!r} would overwrite an input column.")

    def _transform(self, X, row_ids):
        images, masks = [], []
        for i, row_id in enumerate(row_ids):
            bag = list(X[self.bag_col].iloc[i])
            positions = list(range(len(bag)))
            if self.kind_col is not None and self.kind is not None:
                kinds = list(X[self.kind_col].iloc[i])
                if len(kinds) != len(bag):
                    raise CohortInputError(
                        f"{self.kind_col!r} must hold one kind per instance of "
                        f"{self.bag_col!r} ({len(bag)}); got {len(kinds)}",
                        row=row_id,
                        column=self.kind_col,
                    )
                positions = [k for k in positions if str(kinds[k]) == self.kind]
            if not -len(positions) <= self.index < len(positions):
                what = f"{self.kind!r} instances" if self.kind_col and self.kind else "instances"
                raise CohortInputError(
                    f"the bag has {len(positions)} {what}; instance {self.index} does not exist",
                    row=row_id,
                    column=self.bag_col,
                )
            k = positions[self.index]
            images.append(bag[k])
            if self.mask_col:
                masks.append(list(X[self.mask_col].iloc[i])[k])
        out = {self.output_col: images}
        if self.mask_col:
            out[self.output_mask_col] = masks
        return out
