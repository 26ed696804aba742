"""The clinical signature: tabular clinical factors of a cohort -> logistic model."""

import os
import re
import warnings
from numbers import Number, Real
from typing import Self

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from .._logging import get_logger
from .._typing import ArrayLike, MatrixLike
from ..io import is_id_column_name
from ..io._formats import KNOWN_EXTENSIONS
from ..utils._validation import CohortInputMixin

logger = get_logger(__name__)

_MEDIA_EXTENSIONS = frozenset(KNOWN_EXTENSIONS + (".gif", ".svs", ".ndpi", ".npy", ".npz"))
_NUMERIC_TEXT = re.compile(r"^\s*[<>≤≥=~]*\s*[-+]?(\d+([.,]\d*)?|[.,]\d+)\s*%?\s*$")
# Columns with more levels than this fraction of the rows are identifiers or free text.
_MAX_LEVEL_FRACTION = 0.5
# Levels with fewer patients than this are pooled when a categorical column is scored alone.
_MIN_LEVEL_PATIENTS = 5


def _is_scalar_cell(value):
    """True for clinical scalars (numbers, labels, missing); False for arrays, lists, paths."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return True
    if isinstance(value, (bool, np.bool_, Number, np.number)):
        return True
    if isinstance(value, str):
        if _NUMERIC_TEXT.match(value):
            return True  # "0.15", "30%": numbers written as text, not file names
        root, ext = os.path.splitext(value.strip())
        has_folder = os.sep in value or "/" in value
        return not (root and ext and (has_folder or ext.lower() in _MEDIA_EXTENSIONS))
    return False


def _select_clinical(X, exclude=()):
    """Split a cohort's columns into clinical ``(numeric, categorical)`` ones and the rest.

    Returns ``(numeric, categorical, dropped)`` with ``dropped`` mapping each other column to
    the reason it is not a clinical factor.
    """
    if not isinstance(X, pd.DataFrame):
        raise TypeError(
            "Clinical columns are selected by name: X must be a pandas DataFrame; "
            f"got {type(X).__name__}."
        )
    numeric, categorical, dropped = [], [], {}
    n = len(X)
    for name in X.columns:
        col = X[name]
        if name in exclude:
            dropped[name] = "excluded"
            continue
        if is_id_column_name(name):
            dropped[name] = "named like a patient identifier"
            continue
        if pd.api.types.is_bool_dtype(col) or isinstance(col.dtype, pd.CategoricalDtype):
            categorical.append(name)
            continue
        if pd.api.types.is_numeric_dtype(col):
            present = col.dropna()
            if (
                pd.api.types.is_integer_dtype(col)
                and n >= 20
                and present.nunique() == len(present) == n
            ):
                dropped[name] = "an integer unique per patient (an identifier)"
                continue
            numeric.append(name)
            continue
        if not (pd.api.types.is_object_dtype(col) or pd.api.types.is_string_dtype(col)):
            dropped[name] = f"unsupported dtype {col.dtype}"
            continue
        present = col.dropna()
        if not all(_is_scalar_cell(v) for v in present.head(50)):
            dropped[name] = "image, mask, video or other file references / arrays"
            continue
        if len(present) and all(isinstance(v, str) for v in present):
            texts = present.astype(str)
            if texts.map(lambda v: bool(_NUMERIC_TEXT.match(v))).mean() >= 0.8:
                dropped[name] = (
                    f"numbers stored as text (e.g. {texts.iloc[0]!r}); convert the column to "
                    "numbers (or name it in `categorical` if it is a category)"
                )
                continue
            if len(present) > 20 and present.nunique() > _MAX_LEVEL_FRACTION * len(present):
                unique = present.nunique() == len(present)
                dropped[name] = (
                    "text unique per patient (an identifier)"
                    if unique
                    else "free text (more levels than half the patients)"
                )
                continue
        categorical.append(name)
    return numeric, categorical, dropped


class ClinicalColumns:
    """Column selector for the clinical (tabular) part of a cohort DataFrame.

    A cohort holds clinical factors beside image, mask, video, bag and pathology references.
    This callable, usable wherever :class:`~sklearn.compose.ColumnTransformer` accepts a
    column selector, returns the clinical columns of one kind:

    - ``kind="numeric"``: numeric columns (bool excluded);
    - ``kind="categorical"``: ``category``, ``bool`` and string columns whose cells are short
      labels (not file references).

    Never selected: identifier columns (named like one — ``patient_id``, ``"Patient ID"``,
    ``case_id``, ``ID``, ``MRN``, ... — or unique per patient), columns named in
    ``exclude``, columns whose cells are arrays, lists or file paths, free text, and numbers
    stored as text (``"30%"``). It looks at ``X`` alone: to also refuse the outcome or a
    column derived from it, use :class:`ClinicalPreprocessor`, which sees ``y``.

    Parameters
    ----------
    kind : {"numeric", "categorical"}
        Which clinical columns to return.
    exclude : sequence of str, default=()
        Further columns to leave out (e.g. the label, or a centre id used only for grouping).

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn_alnm.clinical import ClinicalColumns
    >>> X = pd.DataFrame({"Patient ID": ["P1", "P2"], "age": [50, 61], "ER": ["pos", "neg"],
    ...                   "image": ["a/1.png", "a/2.png"]})
    >>> ClinicalColumns("numeric")(X), ClinicalColumns("categorical")(X)
    (['age'], ['ER'])
    """

    def __init__(self, kind, exclude=()):
        if kind not in ("numeric", "categorical"):
            raise ValueError(f"kind must be 'numeric' or 'categorical'; got {kind!r}.")
        self.kind = kind
        self.exclude = tuple(exclude)

    def __repr__(self):
        return f"ClinicalColumns({self.kind!r}, exclude={self.exclude!r})"

    def __eq__(self, other):
        return (
            isinstance(other, ClinicalColumns)
            and other.kind == self.kind
            and other.exclude == self.exclude
        )

    def __hash__(self):
        return hash((self.kind, self.exclude))

    def __call__(self, X):
        numeric, categorical, _ = _select_clinical(X, self.exclude)
        return numeric if self.kind == "numeric" else categorical


def _separation_auc(values, y_pos, categorical):
    """AUC of one column alone for the labels (at least 0.5: either direction), or None
    when it cannot be judged (too few patients with a value in either class). A categorical
    column is scored by the outcome rate of each patient's level (small levels pooled)."""
    present = ~pd.isna(values)
    v, t = values[present], y_pos[present]
    if min(int(t.sum()), int((~t).sum())) < 5:
        return None
    if categorical:
        codes = pd.Series(v.astype(str))
        if codes.nunique() > _MAX_LEVEL_FRACTION * len(codes):
            return None
        # Each level's outcome rate; levels of fewer than 5 patients are pooled, so that many
        # small (and so pure by chance) levels cannot fake a separation.
        counts = codes.map(codes.value_counts())
        codes = codes.where(counts >= _MIN_LEVEL_PATIENTS, "\0small levels")
        rates = pd.Series(t.astype(float)).groupby(codes.to_numpy()).mean()
        score = codes.map(rates).to_numpy(dtype=float)
    else:
        score = np.asarray(v, dtype=float)
        if not np.all(np.isfinite(score)):
            return None
    if np.ptp(score) == 0:
        return 0.5
    auc = roc_auc_score(t, score)
    return max(auc, 1.0 - auc)


def _check_finite_columns(X, columns, owner):
    """A ValueError naming the column and the patients for infinite clinical values."""
    for name in columns:
        if name not in X.columns:
            continue
        values = pd.to_numeric(X[name], errors="coerce").to_numpy(dtype=float)
        bad = np.isinf(values)
        if bad.any():
            rows = X.index[bad].tolist()
            shown = ", ".join(map(repr, rows[:5])) + (", ..." if len(rows) > 5 else "")
            raise ValueError(
                f"{owner}: column {name!r} has {len(rows)} infinite value(s) at row(s) {shown}; "
                "clinical values must be finite (missing values may be NaN and are imputed)."
            )


class ClinicalPreprocessor(CohortInputMixin, TransformerMixin, BaseEstimator):
    """The clinical feature table of a cohort, with the columns chosen safely in ``fit``.

    Numeric factors are median-imputed and standardised, categorical factors mode-imputed and
    one-hot encoded (unknown levels at prediction time are ignored). Columns are taken as
    given, or picked automatically as :class:`ClinicalColumns` does. Either way, in ``fit``
    every column is checked against the training labels: a column that **alone** separates
    them almost perfectly (AUC of the column, or of its levels' outcome rates, at least
    ``max_auc``) is refused with an error naming it. In real manifests such columns are the
    outcome left in ``X`` ("ALN status"), or derived from it (the number of metastatic nodes,
    the type of axillary surgery), and a model using them reports an AUC of 1.0 that means
    nothing. Keep one deliberately with ``allow_separating``.

    Parameters
    ----------
    numeric, categorical : list of str or None, default=None
        Clinical columns of each kind; ``None`` selects them from the data (both ``None``:
        automatic selection; one given: the other kind is selected automatically).
    exclude : sequence of str, default=()
        Columns never used when selecting automatically (e.g. the label column, a centre).
    allow_separating : sequence of str, default=()
        Columns kept although they separate the training labels (an explicit opt-in).
    max_auc : float, default=0.99
        AUC from which a single column counts as separating the labels.

    Attributes
    ----------
    numeric_columns_, categorical_columns_ : list of str
        The columns used, by kind.
    dropped_columns_ : dict of str to str
        Every other column of ``X`` and why it is not used.
    column_auc_ : pandas.Series
        The AUC of each used column alone on the training labels (direction-free, so at least
        0.5), when ``y`` was given and the column could be judged.
    column_transformer_ : sklearn.compose.ColumnTransformer
        The fitted imputation / scaling / encoding.
    feature_names_in_ : ndarray of str
        Columns of ``X`` seen in ``fit``.
    n_features_in_ : int
        Their number.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn_alnm.clinical import ClinicalPreprocessor
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 60)
    >>> X = pd.DataFrame({"Patient ID": [f"P{i}" for i in range(60)],
    ...                   "size_mm": rng.normal(20, 5, 60) + 4 * y,
    ...                   "nodes_positive": y * rng.integers(1, 5, 60)})
    >>> ClinicalPreprocessor().fit(X, y)
    Traceback (most recent call last):
    ...
    ValueError: ClinicalPreprocessor: column 'nodes_positive' alone separates the training ...
    >>> pre = ClinicalPreprocessor(exclude=["nodes_positive"]).fit(X, y)
    >>> pre.numeric_columns_, pre.dropped_columns_["Patient ID"]
    (['size_mm'], 'named like a patient identifier')
    """

    _parameter_constraints: dict = {
        "numeric": [list, tuple, None],
        "categorical": [list, tuple, None],
        "exclude": [list, tuple],
        "allow_separating": [list, tuple],
        "max_auc": [Interval(Real, 0.5, 1, closed="right")],
    }

    def __init__(
        self, numeric=None, categorical=None, exclude=(), allow_separating=(), max_auc=0.99
    ):
        self.numeric = numeric
        self.categorical = categorical
        self.exclude = exclude
        self.allow_separating = allow_separating
        self.max_auc = max_auc

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: MatrixLike, y: ArrayLike | None = None) -> Self:
        """Choose and check the clinical columns, then fit the imputers, scaler and encoder.

        Parameters
        ----------
        X : pandas.DataFrame
            The cohort.
        y : array-like of shape (n_samples,), default=None
            Labels; with them, columns that separate the labels alone are refused.

        Returns
        -------
        self : ClinicalPreprocessor

        Raises
        ------
        ValueError
            For a column that separates the training labels (naming it and its AUC), a named
            column missing from ``X``, or no clinical column at all.
        TypeError
            When ``X`` is not a DataFrame.
        """
        owner = type(self).__name__
        if not isinstance(X, pd.DataFrame):
            raise TypeError(
                f"{owner} reads a cohort DataFrame by column name; got {type(X).__name__}."
            )
        if len(X) == 0:
            raise ValueError(f"{owner}: the cohort is empty (0 patients).")
        auto_numeric, auto_categorical, dropped = _select_clinical(X, tuple(self.exclude))
        named = [*(self.numeric or []), *(self.categorical or [])]
        missing = [c for c in [*named, *self.allow_separating] if c not in X.columns]
        if missing:
            raise ValueError(f"{owner}: columns {missing} are not in X; it has {list(X.columns)}.")
        numeric = list(self.numeric) if self.numeric is not None else auto_numeric
        categorical = list(self.categorical) if self.categorical is not None else auto_categorical
        if self.numeric is not None or self.categorical is not None:
            numeric = [c for c in numeric if c not in (self.categorical or [])]
            categorical = [c for c in categorical if c not in (self.numeric or [])]
        used = set(numeric) | set(categorical)
        self.dropped_columns_ = {
            c: dropped.get(c, "not selected") for c in X.columns if c not in used
        }
        if not used:
            raise ValueError(
                f"{owner}: no clinical column in X; why each column was left out: "
                f"{self.dropped_columns_}."
            )
        _check_finite_columns(X, numeric, owner)
        self.column_auc_ = pd.Series(dtype=float, name="auc")
        if y is not None:
            self.column_auc_ = self._check_separation(X, y, numeric, categorical, owner)
        self.numeric_columns_, self.categorical_columns_ = numeric, categorical
        for name, reason in self.dropped_columns_.items():
            logger.info("clinical column %r not used: %s", name, reason)
            if reason.startswith("numbers stored as text"):
                warnings.warn(f"{owner}: column {name!r} is not used: {reason}.", stacklevel=2)
        logger.info("clinical columns: numeric %s, categorical %s", numeric, categorical)
        self.column_transformer_ = _column_transformer(numeric, categorical).fit(X, y)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        return self

    def _check_separation(self, X, y, numeric, categorical, owner):
        y = np.asarray(y)
        if y.shape[0] != len(X):
            raise ValueError(f"{owner}: X has {len(X)} rows but y has {y.shape[0]} labels.")
        if pd.isna(y).any():
            rows = np.flatnonzero(pd.isna(y))[:5].tolist()
            raise ValueError(f"{owner}: y has missing labels at rows {rows}.")
        classes = np.unique(y)
        if classes.shape[0] < 2:
            raise ValueError(
                f"{owner}: y holds a single class ({classes[0]!r}) for all {len(y)} patients; "
                "a clinical model needs node-positive and node-negative patients."
            )
        if classes.shape[0] != 2:
            return pd.Series(dtype=float, name="auc")
        y_pos = y == classes[1]
        aucs = {}
        for name in [*numeric, *categorical]:
            auc = _separation_auc(X[name].to_numpy(), y_pos, name in categorical)
            if auc is None:
                continue
            aucs[name] = auc
            if auc >= self.max_auc and name not in self.allow_separating:
                raise ValueError(
                    f"{owner}: column {name!r} alone separates the training labels (AUC "
                    f"{auc:.3f} >= {self.max_auc}); it is probably the outcome or derived from "
                    "it (e.g. the node status, the number of metastatic nodes, the axillary "
                    f"surgery). Remove it (exclude=[{name!r}]) or, if it is a genuine "
                    f"predictor, keep it with allow_separating=[{name!r}]."
                )
        return pd.Series(aucs, dtype=float, name="auc")

    def transform(self, X: MatrixLike) -> pd.DataFrame | np.ndarray:
        """Impute, scale and encode the clinical columns.

        Parameters
        ----------
        X : pandas.DataFrame
            A cohort with the columns used in ``fit``.

        Returns
        -------
        ndarray of shape (n_samples, n_features_out)
        """
        check_is_fitted(self)
        if isinstance(X, pd.DataFrame):
            _check_finite_columns(X, self.numeric_columns_, type(self).__name__)
        return self.column_transformer_.transform(X)

    def get_feature_names_out(self, input_features: ArrayLike | None = None) -> np.ndarray:
        """Names of the encoded features: ``numeric__<column>``, ``categorical__<column>_<level>``.

        Parameters
        ----------
        input_features : ignored

        Returns
        -------
        ndarray of str
        """
        check_is_fitted(self)
        return self.column_transformer_.get_feature_names_out()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.categorical = True
        tags.input_tags.allow_nan = True
        return tags


def make_clinical_pipeline(
    estimator: BaseEstimator | None = None,
    *,
    numeric: ArrayLike | None = None,
    categorical: ArrayLike | None = None,
    exclude: ArrayLike = (),
    allow_separating: ArrayLike = (),
) -> Pipeline:
    """Build the clinical signature: impute, scale / one-hot encode, then a classifier.

    It takes the whole cohort DataFrame, so it sits beside imaging models in one
    ``Pipeline``, ``StackingClassifier`` or cross-validation without column glue code.
    Numeric factors are median-imputed and standardised; categorical factors are
    mode-imputed and one-hot encoded (unknown categories at prediction time are ignored).
    Identifier, file, free-text and outcome-like columns are never used (see
    :class:`ClinicalPreprocessor`, whose ``dropped_columns_`` says why each was left out).

    Parameters
    ----------
    estimator : classifier, default=None
        The final model; ``None`` means ``LogisticRegression(max_iter=1000)``, the clinical
        model of the ALNM studies (random forests and XGBoost are compared in some of them).
    numeric, categorical : list of str or None, default=None
        Clinical columns of each kind; ``None`` selects them from the data.
    exclude : sequence of str, default=()
        Columns never used when selecting automatically.
    allow_separating : sequence of str, default=()
        Columns kept although they alone separate the training labels.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Unfitted; steps ``"preprocess"`` (a :class:`ClinicalPreprocessor`) and ``"model"``, so
        ``GridSearchCV`` reaches e.g. ``model__C``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn_alnm.clinical import make_clinical_pipeline
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"size_mm": rng.normal(20, 5, 40), "ER": rng.choice(["pos", "neg"], 40)})
    >>> y = (X["size_mm"] + rng.normal(0, 3, 40) > 20).astype(int)
    >>> model = make_clinical_pipeline().fit(X, y)
    >>> model.predict_proba(X).shape
    (40, 2)
    >>> model["preprocess"].numeric_columns_, model["preprocess"].categorical_columns_
    (['size_mm'], ['ER'])
    """
    model = LogisticRegression(max_iter=1000) if estimator is None else estimator
    preprocess = make_clinical_preprocessor(
        numeric=numeric, categorical=categorical, exclude=exclude, allow_separating=allow_separating
    )
    return Pipeline([("preprocess", preprocess), ("model", model)])


def make_clinical_preprocessor(
    *,
    numeric: ArrayLike | None = None,
    categorical: ArrayLike | None = None,
    exclude: ArrayLike = (),
    allow_separating: ArrayLike = (),
) -> ClinicalPreprocessor:
    """The clinical feature table of a cohort: imputed, standardised and one-hot encoded.

    This is the first step of :func:`make_clinical_pipeline`, available on its own so that
    clinical factors can be concatenated with imaging features (pre-fusion).

    Parameters
    ----------
    numeric, categorical : list of str or None, default=None
        Clinical columns of each kind; ``None`` selects them as :class:`ClinicalColumns` does.
    exclude : sequence of str, default=()
        Columns never used when selecting automatically.
    allow_separating : sequence of str, default=()
        Columns kept although they alone separate the training labels.

    Returns
    -------
    ClinicalPreprocessor
        Unfitted; output names are ``numeric__<column>`` and ``categorical__<column>_<level>``.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn_alnm.clinical import make_clinical_preprocessor
    >>> X = pd.DataFrame({"age": [40, 50, None], "ER": ["pos", "neg", "pos"]})
    >>> make_clinical_preprocessor().fit(X).get_feature_names_out().tolist()
    ['numeric__age', 'categorical__ER_neg', 'categorical__ER_pos']
    """
    return ClinicalPreprocessor(
        numeric=None if numeric is None else list(numeric),
        categorical=None if categorical is None else list(categorical),
        exclude=tuple(exclude),
        allow_separating=tuple(allow_separating),
    )


def _column_transformer(numeric, categorical):
    """Median-impute + standardise the numeric columns, mode-impute + one-hot the others."""
    return ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            (
                "categorical",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"),
                    OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                ),
                categorical,
            ),
        ],
        remainder="drop",
        verbose_feature_names_out=True,
    )
