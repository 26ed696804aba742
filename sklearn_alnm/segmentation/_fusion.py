"""Post-fusion of several segmenters: majority vote, mean, union or a learnt pixel combiner."""

import numbers
from typing import Self

import numpy as np
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold, check_cv
from sklearn.pipeline import Pipeline, _name_estimators
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._logging import get_logger
from .._typing import ArrayLike, MatrixLike
from ..inputs import read_binary_mask
from ..io import cohort_row_ids
from ..utils import check_cohort
from ..utils._composition import NamedMembersMixin
from ._base import SegmentationOutputMixin

_log = get_logger(__name__)

_METHODS = ("vote", "mean", "union", "stack")


class SegmentationFusion(SegmentationOutputMixin, NamedMembersMixin):
    """Fuse the lesion outlines of several segmenters into one (post-fusion).

    The US auto-segmentation study outlines each tumour with U-Net, UNet++ and DeepLabV3 and
    fuses the three. Each member predicts every image of the cohort on the image's own grid;
    the fusion combines, pixel by pixel:

    - ``"vote"``: the members' masks; a pixel is lesion when at least a fraction
      ``threshold`` of the members mark it (``0.5``: a majority of three, or half of two);
      ``predict_proba`` gives the fraction of members marking each pixel.
    - ``"mean"``: the mean of the members' probability maps, thresholded at ``threshold``.
    - ``"union"``: the members' masks; a pixel is lesion when any member marks it
      (``threshold`` is not used); ``predict_proba`` gives the fraction of members marking it.
    - ``"stack"``: a pixel-level combiner (``stacker``, a logistic regression by default; any
      classifier with ``predict_proba``, e.g. ``xgboost.XGBClassifier``) learnt on the
      members' probabilities at ``n_pixels`` randomly sampled pixels of every training
      image, against the reference masks. Its probabilities are thresholded at ``threshold``.
      The members' probabilities it learns from are out-of-fold (``cv``), or those on the
      data passed to ``fit`` when the members are ``prefit`` (pass held-out images then).

    Parameters
    ----------
    segmenters : list of (str, estimator) or list of estimators
        The members: segmenters with ``fit(X)``, ``predict(X)`` and ``predict_proba(X)`` (one
        mask / probability map per row on the row's image grid), such as
        :class:`UNetSegmenter`, :class:`UNetPlusPlusSegmenter` and
        :class:`DeepLabV3Segmenter`. Named pairs make their parameters reachable as
        ``<name>__<param>`` (``GridSearchCV``); bare estimators are named after their class.
        All members must read the reference masks from the same ``mask_col``.
    method : {"vote", "mean", "union", "stack"}, default="vote"
        How the members are combined (see above).
    threshold : float in [0, 1], default=0.5
        Cut-off of the fused probability map (of the vote share for ``"vote"``).
    stacker : classifier or None, default=None
        The pixel combiner of ``method="stack"`` (cloned); ``None`` is
        ``LogisticRegression()``. Its features are the members' probabilities, one column per
        member in the order of ``segmenters``; its target is the reference mask's pixel (0 or
        1).
    n_pixels : int, default=1000
        Pixels sampled (uniformly, without replacement) per training image to fit the
        stacker; every pixel of smaller images. Uniform sampling keeps the lesion / background
        ratio of the images, so the stacker's probabilities stay calibrated.
    cv : int, cross-validation generator or iterable, default=3
        Folds for the out-of-fold member probabilities of ``method="stack"`` (an int gives
        shuffled :class:`~sklearn.model_selection.KFold` seeded by ``random_state``): for
        each fold, clones of the members are trained on the other folds and predict it. Not
        used with ``prefit=True`` or other methods.
    prefit : bool, default=False
        ``False``: ``fit`` trains a clone of every member on ``X`` (``segmenters_``).
        ``True``: the members are already fitted and used as they are (not copied); ``fit``
        only learns the stacker (on ``X``, which should not be the members' training data).
        A clone of the fusion (e.g. in ``GridSearchCV``) clones the members unfitted; to
        keep fitted members through cloning, wrap each in
        :class:`sklearn.frozen.FrozenEstimator` (whose ``fit`` does nothing).
    output_col : str, default="pred_mask"
        Column that :meth:`transform` adds with the fused masks.
    random_state : int, RandomState instance or None, default=None
        Seeds the pixel sampling and the folds of ``cv``.
    verbose : int, default=0
        ``>0`` logs the progress of the member fits.

    Attributes
    ----------
    segmenters_ : list of estimator
        The fitted members (clones, or the given members when ``prefit``).
    named_segmenters_ : sklearn.utils.Bunch
        The fitted members by name.
    member_names_ : ndarray of str
        The members' names, in order (the stacker's feature names).
    stacker_ : classifier
        The fitted pixel combiner (``method="stack"`` only).
    member_importances_ : ndarray of shape (n_members,) or None
        ``method="stack"`` only: the stacker's ``feature_importances_`` (e.g. XGBoost's gain
        importances) or its coefficients ``coef_`` (signed, for a logistic regression),
        aligned with ``member_names_``; ``None`` when the stacker has neither (the last step
        of a :class:`~sklearn.pipeline.Pipeline` is looked at).
    n_features_in_ : int
        Number of cohort columns seen in ``fit``.
    feature_names_in_ : ndarray of str
        The cohort's column names seen in ``fit`` (when all are strings).

    See Also
    --------
    UNetSegmenter, UNetPlusPlusSegmenter, DeepLabV3Segmenter : Members.
    sklearn_alnm.metrics.dice_scorer : Mean Dice scorer for GridSearchCV.

    Notes
    -----
    ``image_col`` and ``mask_col`` are read-only properties taken from the members (the first
    member's ``image_col``; the members' common ``mask_col``), so the fusion works with
    :data:`~sklearn_alnm.metrics.dice_scorer`; ``score`` is the mean per-image Dice against
    ``mask_col``. The fusion is a transformer: ``transform`` adds the fused masks in
    ``output_col`` for a following :class:`~sklearn_alnm.preprocessing.ROICropper`.

    References
    ----------
    .. [1] Deep-learning signature on breast ultrasound with automatic lesion segmentation
       (U-Net, UNet++ and DeepLabV3 outlines fused; the ultrasound study recipe of
       :mod:`sklearn_alnm.recipes`).

    Examples
    --------
    >>> from sklearn_alnm.datasets import make_alnm_cohort
    >>> from sklearn_alnm.segmentation import SegmentationFusion, UNetSegmenter
    >>> X, _ = make_alnm_cohort(8, modalities="ultrasound", image_size=32, random_state=0)
    >>> def unet(depth):
    ...     return UNetSegmenter(base_channels=4, depth=depth, input_size=32, max_epochs=1,
    ...                          batch_size=4, random_state=0)
    >>> fusion = SegmentationFusion([("shallow", unet(1)), ("deep", unet(2))],
    ...                             method="stack", cv=2, n_pixels=50, random_state=0)
    >>> masks = fusion.fit(X).predict(X)
    >>> len(masks), masks[0].shape
    (8, (32, 32))
    >>> fusion.member_names_.tolist(), fusion.member_importances_.shape
    (['shallow', 'deep'], (2,))
    >>> vote = SegmentationFusion(list(fusion.named_segmenters_.items()), prefit=True)
    >>> share = vote.fit(X).predict_proba(X)[0]  # the fraction of members marking each pixel
    >>> sorted(set(share.ravel().tolist()) - {0.0, 0.5, 1.0})
    []
    """

    _members_attr = "segmenters"

    _parameter_constraints = {
        "segmenters": [list],
        "method": [StrOptions(set(_METHODS))],
        "threshold": [Interval(numbers.Real, 0, 1, closed="both")],
        "stacker": [None, HasMethods(["fit", "predict_proba"])],
        "n_pixels": [Interval(numbers.Integral, 1, None, closed="left")],
        "cv": ["cv_object"],
        "prefit": ["boolean"],
        "output_col": [str],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        segmenters,
        *,
        method="vote",
        threshold=0.5,
        stacker=None,
        n_pixels=1000,
        cv=3,
        prefit=False,
        output_col="pred_mask",
        random_state=None,
        verbose=0,
    ):
        self.segmenters = segmenters
        self.method = method
        self.threshold = threshold
        self.stacker = stacker
        self.n_pixels = n_pixels
        self.cv = cv
        self.prefit = prefit
        self.output_col = output_col
        self.random_state = random_state
        self.verbose = verbose

    # --------------------------------------------------------------------------- params

    def _named_members(self):
        members = self.segmenters
        if not isinstance(members, list) or not members:
            raise ValueError(
                "segmenters must be a non-empty list of (name, segmenter) pairs or segmenters; "
                f"got {members!r}."
            )
        if all(isinstance(m, tuple) and len(m) == 2 and isinstance(m[0], str) for m in members):
            named = list(members)
            self._validate_names([name for name, _ in named])
        elif not any(isinstance(m, tuple) for m in members):
            named = _name_estimators(members)
        else:
            raise ValueError(
                "segmenters must be all (name, segmenter) pairs or all segmenters, not a mix."
            )
        for name, member in named:
            missing = [
                method
                for method in ("fit", "predict", "predict_proba")
                if not callable(getattr(member, method, None))
            ]
            if missing:
                raise TypeError(
                    f"segmenter {name!r} ({type(member).__name__}) lacks {missing}; members "
                    "must be segmenters with fit, predict and predict_proba."
                )
        return named

    @property
    def mask_col(self):
        """Cohort column of the reference masks: the members' common ``mask_col``."""
        columns = {name: getattr(m, "mask_col", None) for name, m in self._named_members()}
        lacking = [name for name, column in columns.items() if column is None]
        if lacking:
            raise ValueError(
                f"segmenter(s) {lacking} have no mask_col; the fusion reads the reference "
                "masks from the members' mask_col."
            )
        values = set(columns.values())
        if len(values) != 1:
            raise ValueError(
                f"the members read their reference masks from different columns {columns}; "
                "give them one mask_col."
            )
        return values.pop()

    @property
    def image_col(self):
        """Cohort column of the images: the first member's ``image_col``."""
        return getattr(self._named_members()[0][1], "image_col", None)

    # ------------------------------------------------------------------------------ fit

    def fit(self, X: MatrixLike, y: ArrayLike | None = None) -> Self:
        """Fit the members (unless ``prefit``) and, for ``method="stack"``, the combiner.

        Parameters
        ----------
        X : pandas.DataFrame
            The cohort, with the members' image column and the mask column.
        y : ignored
            The targets are the masks.

        Returns
        -------
        self
        """
        self._validate_params()
        named = self._named_members()
        names = [name for name, _ in named]
        columns = [c for _, m in named for c in [getattr(m, "image_col", None)] if c]
        if not self.prefit or self.method == "stack":
            columns.append(self.mask_col)
        check_cohort(self, X, list(dict.fromkeys(columns)))
        if self.prefit:
            for name, member in named:
                try:
                    check_is_fitted(member)
                except Exception as exc:
                    raise ValueError(
                        f"prefit=True but segmenter {name!r} is not fitted: {exc}"
                    ) from None
        rng = check_random_state(self.random_state)
        if self.method == "stack":
            if self.prefit:
                probas = [member.predict_proba(X) for _, member in named]
            else:
                probas = self._out_of_fold(named, X, rng)
            self._fit_stacker(X, names, probas, rng)
        elif hasattr(self, "stacker_"):
            del self.stacker_, self.member_importances_
        if self.prefit:
            fitted = [member for _, member in named]
        else:
            fitted = []
            for name, member in named:
                _log.info("SegmentationFusion: fitting %r on %d images", name, len(X))
                fitted.append(clone(member).fit(X, None))
        self.segmenters_ = fitted
        self.named_segmenters_ = Bunch(**dict(zip(names, fitted)))
        self.member_names_ = np.asarray(names, dtype=object)
        self._remember_columns(X)
        return self

    def _out_of_fold(self, named, X, rng):
        cv = self.cv
        if isinstance(cv, numbers.Integral) and not isinstance(cv, bool):
            cv = KFold(int(cv), shuffle=True, random_state=rng.randint(2**31 - 1))
        splitter = check_cv(cv)
        probas = [[None] * len(X) for _ in named]
        for fold, (train, test) in enumerate(splitter.split(X)):
            for k, (name, member) in enumerate(named):
                _log.info("SegmentationFusion: fold %d, fitting %r", fold, name)
                maps = clone(member).fit(X.iloc[train], None).predict_proba(X.iloc[test])
                for i, proba in zip(test, maps):
                    probas[k][i] = proba
        missing = [i for i in range(len(X)) if probas[0][i] is None]
        if missing:
            raise ValueError(
                f"cv left {len(missing)} row(s) out of every test fold; the stacker needs an "
                "out-of-fold prediction of every row (use a partition such as KFold)."
            )
        return probas

    def _fit_stacker(self, X, names, probas, rng):
        ids = cohort_row_ids(X)
        mask_col = self.mask_col
        features, targets = [], []
        for i in range(len(X)):
            stack = self._stack_row(probas, i, ids[i], names)
            truth = read_binary_mask(X, i, mask_col, stack.shape[1:], ids[i]).ravel()
            flat = stack.reshape(len(names), -1)
            n = flat.shape[1]
            index = np.arange(n) if n <= self.n_pixels else rng.choice(n, self.n_pixels, False)
            features.append(flat[:, index].T)
            targets.append(truth[index])
        features = np.concatenate(features).astype(np.float64)
        targets = np.concatenate(targets).astype(np.int64)
        if np.unique(targets).size < 2:
            kind = "lesion" if targets[0] == 1 else "background"
            raise ValueError(
                f"every sampled pixel of the reference masks ({mask_col!r}) is {kind}; the "
                "stacker needs both lesion and background pixels (raise n_pixels, or add "
                "images with lesions)."
            )
        stacker = LogisticRegression() if self.stacker is None else clone(self.stacker)
        self.stacker_ = stacker.fit(features, targets)
        final = stacker[-1] if isinstance(stacker, Pipeline) else stacker
        importances = None
        if hasattr(final, "feature_importances_"):
            importances = np.asarray(final.feature_importances_, dtype=np.float64).ravel()
        elif hasattr(final, "coef_"):
            importances = np.asarray(final.coef_, dtype=np.float64).ravel()
        self.member_importances_ = importances

    # ------------------------------------------------------------------------ inference

    @staticmethod
    def _stack_row(outputs, i, row_id, names):
        maps = [np.asarray(out[i], dtype=np.float32) for out in outputs]
        shapes = {name: m.shape for name, m in zip(names, maps)}
        if len(set(shapes.values())) != 1:
            raise ValueError(
                f"row {row_id!r}: the members' outputs are on different grids {shapes}; "
                "expected every member on the image's grid."
            )
        return np.stack(maps)

    def _member_outputs(self, X, kind):
        check_is_fitted(self, "segmenters_")
        names = list(self.member_names_)
        outputs = []
        for name, member in zip(names, self.segmenters_):
            out = list(member.predict_proba(X) if kind == "proba" else member.predict(X))
            if len(out) != len(X):
                raise ValueError(
                    f"segmenter {name!r} returned {len(out)} outputs for {len(X)} rows."
                )
            outputs.append(out)
        return outputs, names

    def predict_proba(self, X: MatrixLike) -> np.ndarray:
        """The fused lesion probability maps, one per row, on each image's grid.

        Parameters
        ----------
        X : pandas.DataFrame
            The cohort.

        Returns
        -------
        list of ndarray of float
            ``"vote"`` / ``"union"``: the fraction of members marking each pixel;
            ``"mean"``: the mean of the members' probabilities; ``"stack"``: the stacker's
            lesion probability of each pixel.
        """
        kind = "mask" if self.method in ("vote", "union") else "proba"
        outputs, names = self._member_outputs(X, kind)
        ids = cohort_row_ids(X)
        maps = []
        for i in range(len(X)):
            stack = self._stack_row(outputs, i, ids[i], names)
            if self.method == "stack":
                if not hasattr(self, "stacker_"):
                    raise ValueError(
                        "method='stack' was set after fit; fit again to learn the stacker."
                    )
                flat = stack.reshape(len(names), -1).T.astype(np.float64)
                positive = list(self.stacker_.classes_).index(1)
                proba = self.stacker_.predict_proba(flat)[:, positive]
                maps.append(proba.reshape(stack.shape[1:]).astype(np.float32))
            else:
                maps.append(stack.mean(axis=0))
        return maps

    def predict(self, X: MatrixLike) -> list[np.ndarray]:
        """The fused binary masks, one per row, on each image's grid.

        Parameters
        ----------
        X : pandas.DataFrame
            The cohort.

        Returns
        -------
        list of ndarray of bool
            ``"union"``: pixels marked by any member; otherwise the fused map of
            :meth:`predict_proba` at or above ``threshold``.
        """
        if self.method == "union":
            return [share > 0 for share in self.predict_proba(X)]
        return super().predict(X)
