"""The clinical signature: tabular clinical factors of a cohort -> logistic model."""

import os
from numbers import Number

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

_ID_COLUMNS = frozenset({"id", "patient_id", "case_id", "patient", "case"})


def _is_scalar_cell(value):
    """True for clinical scalars (numbers, labels, missing); False for arrays, lists, paths."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return True
    if isinstance(value, (bool, np.bool_, Number, np.number)):
        return True
    if isinstance(value, str):
        root, ext = os.path.splitext(value)
        return not (ext and (os.sep in value or "/" in value or len(ext) <= 5) and root)
    return False


class ClinicalColumns:
    """Column selector for the clinical (tabular) part of a cohort DataFrame.

    A cohort holds clinical factors beside image, mask, video, bag and pathology references.
    This callable, usable wherever :class:`~sklearn.compose.ColumnTransformer` accepts a
    column selector, returns the clinical columns of one kind:

    - ``kind="numeric"``: numeric columns (bool excluded);
    - ``kind="categorical"``: ``category``, ``bool`` and string columns whose cells are short
      labels (not file references).

    Identifier columns (``patient_id``, ``case_id``, ``id``, ``patient``, ``case``), columns named
    in ``exclude`` and columns whose cells are arrays, lists or file paths are never selected.

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
    >>> X = pd.DataFrame({"patient_id": ["P1", "P2"], "age": [50, 61], "ER": ["pos", "neg"],
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
        if not isinstance(X, pd.DataFrame):
            raise TypeError(
                "Clinical columns are selected by name: X must be a pandas DataFrame; "
                f"got {type(X).__name__}."
            )
        selected = []
        for name in X.columns:
            if str(name).lower() in _ID_COLUMNS or name in self.exclude:
                continue
            col = X[name]
            if pd.api.types.is_bool_dtype(col) or isinstance(col.dtype, pd.CategoricalDtype):
                is_numeric = False
            elif pd.api.types.is_numeric_dtype(col):
                is_numeric = True
            elif pd.api.types.is_object_dtype(col) or pd.api.types.is_string_dtype(col):
                if not all(_is_scalar_cell(v) for v in col.head(50)):
                    continue
                if all(isinstance(v, str) for v in col.dropna()) and col.nunique() == len(col) > 20:
                    continue  # free text or an identifier, not a category
                is_numeric = False
            else:
                continue
            if is_numeric == (self.kind == "numeric"):
                selected.append(name)
        return selected


def make_clinical_pipeline(estimator=None, *, numeric=None, categorical=None, exclude=()):
    """Build the clinical signature: impute, scale / one-hot encode, then a classifier.

    It takes the whole cohort DataFrame, so it sits beside imaging models in one
    ``Pipeline``, ``StackingClassifier`` or cross-validation without column glue code.
    Numeric factors are median-imputed and standardised; categorical factors are
    mode-imputed and one-hot encoded (unknown categories at prediction time are ignored).

    Parameters
    ----------
    estimator : classifier, default=None
        The final model; ``None`` means ``LogisticRegression(max_iter=1000)``, the clinical
        model of the ALNM studies (random forests and XGBoost are compared in some of them).
    numeric, categorical : list of str or None, default=None
        Clinical columns of each kind; ``None`` selects them from the data with
        :class:`ClinicalColumns`.
    exclude : sequence of str, default=()
        Columns never used when selecting automatically.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Unfitted; steps ``"preprocess"`` (a ``ColumnTransformer``) and ``"model"``, so
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
    """
    model = LogisticRegression(max_iter=1000) if estimator is None else estimator
    preprocess = make_clinical_preprocessor(
        numeric=numeric, categorical=categorical, exclude=exclude
    )
    return Pipeline([("preprocess", preprocess), ("model", model)])


def make_clinical_preprocessor(*, numeric=None, categorical=None, exclude=()):
    """The clinical feature table of a cohort: imputed, standardised and one-hot encoded.

    This is the first step of :func:`make_clinical_pipeline`, available on its own so that
    clinical factors can be concatenated with imaging features (pre-fusion).

    Parameters
    ----------
    numeric, categorical : list of str or None, default=None
        Clinical columns of each kind; ``None`` selects them with :class:`ClinicalColumns`.
    exclude : sequence of str, default=()
        Columns never used when selecting automatically.

    Returns
    -------
    sklearn.compose.ColumnTransformer
        Unfitted; output names are ``numeric__<column>`` and ``categorical__<column>_<level>``.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn_alnm.clinical import make_clinical_preprocessor
    >>> X = pd.DataFrame({"age": [40, 50, None], "ER": ["pos", "neg", "pos"]})
    >>> make_clinical_preprocessor().fit(X).get_feature_names_out().tolist()
    ['numeric__age', 'categorical__ER_neg', 'categorical__ER_pos']
    """
    num = numeric if numeric is not None else ClinicalColumns("numeric", exclude)
    cat = categorical if categorical is not None else ClinicalColumns("categorical", exclude)
    return ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), num),
            (
                "categorical",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"),
                    OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                ),
                cat,
            ),
        ],
        remainder="drop",
        verbose_feature_names_out=True,
    )
