"""Nomogram: a logistic model on clinical factors and signatures, drawn as a points chart."""

import math
from numbers import Integral, Real
from typing import Any, Self

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.special import expit, logit
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context, clone
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, RobustScaler, StandardScaler
from sklearn.utils import ClassifierTags
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_consistent_length, check_is_fitted

from .._typing import ArrayLike, MatrixLike
from ..utils import CohortInputError, is_conventional_labels, resolve_pos_label

_SCALERS = (StandardScaler, MinMaxScaler, MaxAbsScaler, RobustScaler)
_SUPPORTED = (
    "a binary logistic model exposing coef_ and intercept_ (LogisticRegression, "
    "LogisticRegressionCV, SGDClassifier(loss='log_loss')), or a Pipeline ending in one whose "
    "earlier steps are StandardScaler, MinMaxScaler (clip=False), MaxAbsScaler, RobustScaler or "
    "'passthrough'"
)
_DEFAULT_PROBABILITY_TICKS = (0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)


def _is_stepwise(estimator):
    from ._stepwise import StepwiseLogisticRegression

    return isinstance(_unfreeze(estimator), StepwiseLogisticRegression)


class _SelectedTermsModel:
    """A fitted stepwise model seen as a logistic model on its selected encoded columns.

    Its inputs are the stepwise model's ``selected_columns_`` (numeric columns and
    ``<column>_<level>`` indicators), which the Nomogram encodes itself; its coefficients are
    those of the stepwise model's event, turned towards ``classes_[1]`` as for any
    scikit-learn logistic model.
    """

    def __init__(self, stepwise):
        stepwise = _unfreeze(stepwise)
        self.classes_ = stepwise.classes_
        self.feature_names_in_ = np.asarray(stepwise.selected_columns_, dtype=object)
        self.n_features_in_ = len(stepwise.selected_columns_)
        self.coef_ = stepwise._sign * stepwise.coef_
        self.intercept_ = stepwise._sign * stepwise.intercept_

    def decision_function(self, X: MatrixLike) -> np.ndarray:
        return np.asarray(X, dtype=float) @ self.coef_[0] + self.intercept_[0]

    def predict_proba(self, X: MatrixLike) -> np.ndarray:
        p = expit(self.decision_function(X))
        return np.column_stack([1.0 - p, p])

    def predict(self, X: MatrixLike) -> np.ndarray:
        return self.classes_[(self.decision_function(X) > 0).astype(int)]


# --------------------------------------------------------------------------- ticks and labels
def _step_decimals(step):
    """Decimals needed to print multiples of ``step`` exactly (2.5e-k needs one more)."""
    decimals = max(0, -math.floor(math.log10(step) + 1e-12))
    if not math.isclose(round(step, decimals), step, rel_tol=1e-9):
        decimals += 1
    return decimals


def _ticks_within(lo, hi, step):
    start = math.ceil(lo / step - 1e-9)
    stop = math.floor(hi / step + 1e-9)
    decimals = _step_decimals(step)
    return [round(k * step, decimals) + 0.0 for k in range(start, stop + 1)]


def _nice_ticks(lo, hi, n_ticks):
    """Multiples of a round step (1, 2, 2.5 or 5 x 10^k) inside ``[lo, hi]``, and the step.

    The step is the one whose number of ticks inside the range is closest to ``n_ticks``
    (the larger step on a tie), with at least two ticks.
    """
    if not hi > lo:
        return [lo], None
    exponent = math.floor(math.log10((hi - lo) / max(n_ticks - 1, 1)))
    best = None
    for k in range(exponent - 2, exponent + 3):
        for mantissa in (5.0, 2.5, 2.0, 1.0):
            step = mantissa * 10.0**k
            ticks = _ticks_within(lo, hi, step)
            if len(ticks) < 2:
                continue
            score = abs(len(ticks) - n_ticks)
            if best is None or score < best[0] or (score == best[0] and step > best[2]):
                best = (score, ticks, step)
    return best[1], best[2]


def _minor_step(step):
    """Minor tick spacing for a major step of 1, 2, 2.5 or 5 x 10^k."""
    mantissa = round(step / 10.0 ** math.floor(math.log10(step) + 1e-12), 6)
    return step / (4.0 if mantissa == 2.0 else 5.0)


def _minor_ticks(upper, step, major):
    """Unlabelled ticks between 0 and ``upper`` at a fraction of the major ``step``."""
    minor = _minor_step(step)
    candidates = minor * np.arange(0, math.floor(upper / minor + 1e-9) + 1)
    return [m for m in candidates if not any(math.isclose(m, v, abs_tol=1e-9) for v in major)]


def _format_tick(value, step):
    if step is None:
        return f"{value:.4g}"
    text = f"{value:.{_step_decimals(step)}f}"
    return text.lstrip("-") if float(text) == 0 else text


def _format_level(level):
    if isinstance(level, (float, np.floating)) and float(level).is_integer():
        return str(int(level))
    return str(level)


# --------------------------------------------------------------------------- model unwrapping
def _is_fitted(estimator):
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        return False
    return True


def _unfreeze(estimator):
    return estimator.estimator if isinstance(estimator, FrozenEstimator) else estimator


def _split_pipeline(estimator):
    """Return ``(affine_steps, final_model)``; raise TypeError for an unsupported structure."""
    estimator = _unfreeze(estimator)
    if not isinstance(estimator, Pipeline):
        return [], estimator
    affine = []
    for name, step in estimator.steps[:-1]:
        step = _unfreeze(step)
        if step is None or (isinstance(step, str) and step == "passthrough"):
            continue
        if not isinstance(step, _SCALERS):
            raise TypeError(
                f"Nomogram cannot express Pipeline step {name!r} ({type(step).__name__}) in "
                f"the units of the raw variables; supported: {_SUPPORTED}. Categorical "
                "variables are one-hot encoded by the Nomogram itself (name them in "
                "`categorical`), so leave encoders out of the pipeline."
            )
        if isinstance(step, MinMaxScaler) and step.clip:
            raise TypeError(
                f"Pipeline step {name!r} is MinMaxScaler(clip=True), which is not linear; "
                "use clip=False."
            )
        affine.append((name, step))
    final = _unfreeze(estimator.steps[-1][1])
    if final is None or isinstance(final, str):
        raise TypeError(f"The Pipeline has no final model; expected {_SUPPORTED}.")
    return affine, final


def _scaler_affine(step, n_features):
    """``(a, b)`` with ``step.transform(x) == a * x + b`` for a fitted scaler."""
    a = np.ones(n_features)
    b = np.zeros(n_features)
    if isinstance(step, StandardScaler):
        if step.with_std and step.scale_ is not None:
            a = 1.0 / np.asarray(step.scale_, dtype=float)
        if step.with_mean and step.mean_ is not None:
            b = -np.asarray(step.mean_, dtype=float) * a
    elif isinstance(step, MinMaxScaler):
        a = np.asarray(step.scale_, dtype=float)
        b = np.asarray(step.min_, dtype=float)
    elif isinstance(step, MaxAbsScaler):
        a = 1.0 / np.asarray(step.scale_, dtype=float)
    elif isinstance(step, RobustScaler):
        if step.with_scaling and step.scale_ is not None:
            a = 1.0 / np.asarray(step.scale_, dtype=float)
        if step.with_centering and step.center_ is not None:
            b = -np.asarray(step.center_, dtype=float) * a
    return np.broadcast_to(a, n_features).copy(), np.broadcast_to(b, n_features).copy()


def _raw_coefficients(estimator, n_features):
    """Coefficients and intercept of the fitted logistic model in raw variable units.

    With affine steps ``z = a * x + b`` before a model ``lp = w . z + c``, the linear
    predictor in raw units is ``lp = (w * a) . x + (w . b + c)``; several steps compose.
    """
    affine, final = _split_pipeline(estimator)
    if not (hasattr(final, "coef_") and hasattr(final, "intercept_")):
        raise TypeError(
            f"Nomogram needs a linear logistic model, but the fitted {type(final).__name__} has "
            f"no coef_ / intercept_; expected {_SUPPORTED}."
        )
    coef = final.coef_.toarray() if sparse.issparse(final.coef_) else np.asarray(final.coef_)
    coef = np.asarray(coef, dtype=float)
    if coef.ndim == 2 and coef.shape[0] != 1:
        raise ValueError(
            f"Nomogram draws a binary outcome; the fitted {type(final).__name__} has "
            f"{coef.shape[0]} rows of coefficients (a multiclass model)."
        )
    coef = coef.ravel()
    if coef.shape[0] != n_features:
        raise ValueError(
            f"The fitted model has {coef.shape[0]} coefficients for {n_features} model inputs."
        )
    intercept = float(np.ravel(final.intercept_)[0]) if np.size(final.intercept_) else 0.0
    shift = np.zeros(n_features)
    slope = np.ones(n_features)
    for _, step in affine:
        a, b = _scaler_affine(step, n_features)
        slope, shift = a * slope, a * shift + b
    return coef * slope, float(coef @ shift + intercept)


# --------------------------------------------------------------------------- the estimator
class Nomogram(ClassifierMixin, BaseEstimator):
    """Logistic model on clinical factors and signatures, read as a points nomogram.

    The nomogram of the clinical ALNM papers (as drawn by R's ``rms::nomogram``) turns a
    binary logistic model

    .. math:: \\mathrm{lp} = \\beta_0 + \\sum_j \\beta_j x_j, \\qquad
              P(y = \\text{positive}) = 1 / (1 + e^{-\\mathrm{lp}})

    into a chart: every variable gets a points axis, the points of a patient are added up,
    and the total is read off against the risk. With the contribution of variable :math:`j`
    over its range :math:`R_j = \\max_{x_j} \\beta_j x_j - \\min_{x_j} \\beta_j x_j` (a
    categorical variable: over its levels) and :math:`s = \\text{points} / \\max_j R_j`,

    .. math:: \\text{points}_j(x_j) = s\\,(\\beta_j x_j - \\min \\beta_j x_j), \\qquad
              T = \\sum_j \\text{points}_j, \\qquad
              \\mathrm{lp} = T / s + \\beta_0 + \\sum_j \\min \\beta_j x_j .

    So the variable with the widest contribution spans ``0 .. points``, the others are
    proportional to it, every variable's lowest-risk end is 0 points (a negative coefficient
    reverses its axis), and the total points map back to the model's probability exactly.
    Values outside an axis' range extrapolate linearly (points below 0 or above the axis end).

    The model is either fitted here (``estimator=None``: unpenalised logistic regression on
    all columns of ``X``), or given: an unfitted model is cloned and fitted on the encoded
    variables, a fitted one is used as it is. Supported models: a binary logistic model
    exposing ``coef_`` and ``intercept_`` (``LogisticRegression``, ``LogisticRegressionCV``,
    ``SGDClassifier(loss="log_loss")``), or a ``Pipeline`` ending in one whose earlier steps
    are ``StandardScaler``, ``MinMaxScaler(clip=False)``, ``MaxAbsScaler``, ``RobustScaler``
    or ``"passthrough"``; scaled coefficients are converted back to the raw units of the
    variables. ``fit`` checks that the model's ``predict_proba`` is the logistic function of
    its coefficients, so a non-linear or non-logistic model is refused.

    Categorical variables (``category``, ``object``, ``string`` or ``bool`` columns, and the
    columns named in ``categorical``) are one-hot encoded here with the first level as the
    reference (``category`` dtype: the order of its categories; otherwise sorted values); the
    model input for level ``L`` of column ``C`` is named ``"C_L"``, as
    ``pd.get_dummies(X, drop_first=True)`` names it. A fitted model given as ``estimator``
    must use these inputs (matched by name when it was fitted on a DataFrame; it may also use
    the reference-level dummy), and numeric columns under their own names.

    Parameters
    ----------
    estimator : estimator or None, default=None
        The logistic model (see above); ``None`` means
        ``LogisticRegression(C=np.inf, solver="newton-cholesky")`` (no penalty, as the
        clinical nomograms are fitted). A fitted model is not refitted; wrap it in
        :class:`sklearn.frozen.FrozenEstimator` to keep it fitted through ``clone`` (e.g.
        inside cross-validation).
    points : float, default=100
        Points of the variable with the widest contribution range.
    feature_ranges : dict of str to (float, float), default=None
        ``{variable: (min, max)}`` for numeric variables, replacing the training range of
        their axis (and so the points scale when it changes the widest range).
    categorical : list of str, default=None
        Further columns to treat as categorical (e.g. a grade coded 1/2/3).
    n_ticks : int, default=6
        About how many labelled values a numeric variable axis spanning all ``points`` gets;
        shorter axes get proportionally fewer (at least 2).
    labels : dict of str to str, default=None
        Display names of variables in :meth:`plot` (e.g. ``{"dl_signature": "DL
        signature"}``); ``plot(labels=...)`` overrides them per call.
    pos_label : scalar or None, default=None
        The outcome whose risk the nomogram reads (e.g. ``"N+"``). Required unless the labels
        are 0/1, -1/1 or booleans (then 1 / True); never guessed from their sorted order.

    Attributes
    ----------
    estimator_ : estimator
        The fitted model (the given one itself when it was already fitted). A
        :class:`~sklearn_alnm.clinical.StepwiseLogisticRegression` is used on its selected
        terms: ``estimator_`` is then the fitted stepwise model itself.
    classes_ : ndarray of shape (2,)
        Class labels, sorted; ``predict_proba``'s columns follow them.
    pos_label_ : scalar
        The outcome whose risk is drawn; ``raw_coef_`` and every points axis refer to it.
    feature_names_in_ : ndarray of str
        Columns of ``X`` seen in ``fit``.
    n_features_in_ : int
        Number of columns seen in ``fit``.
    variables_ : list of str
        Variables of the nomogram (one axis each), in column order.
    categories_ : dict of str to list
        Levels of each categorical variable, reference level first.
    model_inputs_ : list of str
        Names of the encoded inputs of ``estimator_``, in its order.
    raw_coef_ : pandas.Series
        Coefficients per model input in the raw units of the variables.
    raw_intercept_ : float
        Intercept in raw units (linear predictor when every input is 0).
    ranges_ : dict of str to (float, float)
        Axis range of each numeric variable (training range unless overridden).
    variable_points_ : pandas.Series
        Points at the high-risk end of each variable's axis (the widest is ``points``).
    points_per_unit_ : float
        Points per unit of linear predictor, :math:`s`.
    lp_at_zero_ : float
        Linear predictor at 0 total points.
    max_total_points_ : float
        Sum of ``variable_points_``: the end of the total points axis.

    See Also
    --------
    make_clinical_pipeline : The clinical signature the nomogram is usually combined with.

    References
    ----------
    .. [1] F. E. Harrell, "Regression Modeling Strategies", 2nd ed., Springer, 2015 (and
       ``nomogram`` in its R package ``rms``).
    .. [2] A. Iasonos, D. Schrag, G. V. Raj, K. S. Panageas, "How to build and interpret a
       nomogram for cancer prognosis", J. Clin. Oncol. 26(8):1364-1370, 2008.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn_alnm.clinical import Nomogram
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"tumor_size_mm": rng.uniform(5, 50, 300),
    ...                   "ER": rng.choice(["negative", "positive"], 300),
    ...                   "dl_score": rng.uniform(0, 1, 300)})
    >>> lp = -4 + 0.05 * X["tumor_size_mm"] + 4 * X["dl_score"] - 0.8 * (X["ER"] == "positive")
    >>> y = (rng.random(300) < 1 / (1 + np.exp(-lp))).astype(int)
    >>> nomogram = Nomogram().fit(X, y)
    >>> nomogram.variable_points_.round(1)
    tumor_size_mm     57.5
    ER                27.6
    dl_score         100.0
    dtype: float64
    >>> nomogram.points_table().query("variable == 'ER'").round(1)
      variable     value  points
    4       ER  negative    27.6
    5       ER  positive     0.0
    >>> total = nomogram.total_points(X.head(3))
    >>> total.round(1)
    array([107.7,  99.9,  70. ])
    >>> np.allclose(nomogram.points_to_probability(total), nomogram.predict_proba(X.head(3))[:, 1])
    True
    >>> fig = nomogram.plot(labels={"tumor_size_mm": "Tumour size (mm)", "dl_score": "DL score"})
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "predict_proba"]), None],
        "points": [Interval(Real, 0, None, closed="neither")],
        "feature_ranges": [dict, None],
        "categorical": ["array-like", None],
        "n_ticks": [Interval(Integral, 2, None, closed="left")],
        "labels": [dict, None],
        "pos_label": "no_validation",
    }

    def __init__(
        self,
        estimator=None,
        *,
        points=100,
        feature_ranges=None,
        categorical=None,
        n_ticks=6,
        labels=None,
        pos_label=None,
    ):
        self.estimator = estimator
        self.points = points
        self.feature_ranges = feature_ranges
        self.categorical = categorical
        self.n_ticks = n_ticks
        self.labels = labels
        self.pos_label = pos_label

    # ------------------------------------------------------------------ fitting
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X: MatrixLike, y: ArrayLike | None = None, **fit_params: Any) -> Self:
        """Fit (or adopt) the logistic model and lay out the points scales.

        Parameters
        ----------
        X : pandas.DataFrame or array-like of shape (n_samples, n_features)
            One row per patient; numeric and categorical variables, no missing values. An
            array's columns are named ``x0``, ``x1``, ...
        y : array-like of shape (n_samples,), default=None
            Binary outcome: 0/1, or any two labels with ``pos_label``. Needed unless
            ``estimator`` is already fitted.
        **fit_params : dict
            Passed to the model's ``fit``.

        Returns
        -------
        self : Nomogram
            The fitted nomogram.

        Raises
        ------
        ValueError
            For a target that is not binary, a missing value or unusable cell in ``X``
            (:class:`~sklearn_alnm.utils.CohortInputError` naming the row and column), a
            fitted model whose inputs do not match the encoded columns, a bad
            ``feature_ranges`` entry, or a model whose coefficients are all zero.
        TypeError
            For a model that is not (a supported pipeline around) a linear logistic model.
        """
        X = _as_frame(X)
        for size, what in ((X.shape[0], "sample"), (X.shape[1], "feature")):
            if size == 0:
                raise ValueError(
                    f"Found array with 0 {what}(s) (shape={X.shape}) while a minimum of 1 is "
                    "required by Nomogram."
                )
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        categorical = self._categorical_columns(X)
        estimator = self.estimator
        prefitted = estimator is not None and _is_fitted(estimator)
        if _is_stepwise(estimator) and not prefitted:
            # The stepwise model chooses its terms on the raw columns; then it is drawn on them.
            if y is None:
                raise ValueError("Nomogram requires y to fit an unfitted stepwise model.")
            estimator = clone(estimator).fit(X, y, **fit_params)
            prefitted = True
        stepwise = estimator if _is_stepwise(estimator) else None
        if stepwise is not None:
            estimator = _SelectedTermsModel(stepwise)
        names = getattr(estimator, "feature_names_in_", None) if prefitted else None
        if names is not None:
            # Only columns the fitted model can refer to need levels (a cohort table may hold
            # identifiers or image references beside the model's variables).
            categorical = [
                c for c in categorical if any(n == c or str(n).startswith(f"{c}_") for n in names)
            ]
        categories = {c: _levels(X[c], c) for c in categorical}

        if prefitted:
            terms = self._match_fitted_inputs(estimator, X, categories)
        else:
            if estimator is not None:
                _split_pipeline(estimator)  # fail before fitting on an unsupported pipeline
            terms = _default_terms(list(X.columns), categories)
        variables = [c for c in X.columns if any(t[1] == c for t in terms)]
        self.variables_ = variables
        self.categories_ = {c: categories[c] for c in variables if c in categories}
        self._terms = terms
        self.model_inputs_ = [t[0] for t in terms]
        if len(set(self.model_inputs_)) != len(terms):
            raise ValueError(
                f"The encoded model inputs {self.model_inputs_} contain a duplicate name; "
                "rename the column that clashes with a '<column>_<level>' dummy."
            )
        design = self._design(X)

        if prefitted:
            self.estimator_ = estimator
            self._model = estimator
            classes = np.asarray(getattr(estimator, "classes_", []))
            if classes.shape[0] != 2:
                raise ValueError(
                    "Nomogram draws a binary outcome; the fitted model has "
                    f"{classes.shape[0]} classes {classes.tolist()}."
                )
            if y is not None:
                check_consistent_length(X, y)
            self.classes_ = classes
        else:
            if y is None:
                raise ValueError(
                    "Nomogram requires y to be passed, but the target y is None (only an "
                    "already fitted estimator can be used without y)."
                )
            check_consistent_length(X, y)
            self.classes_ = _binary_classes(y)
            if estimator is None:
                model = LogisticRegression(C=np.inf, solver="newton-cholesky", max_iter=1000)
            else:
                model = clone(estimator)
            self.estimator_ = self._model = model.fit(design, y, **fit_params)

        self.pos_label_ = resolve_pos_label(self.classes_, self.pos_label, owner="Nomogram")
        coef, intercept = _raw_coefficients(self._model, len(terms))
        self.raw_coef_ = pd.Series(coef, index=self.model_inputs_, dtype=float)
        self.raw_intercept_ = intercept
        self._check_logistic(design)  # in the model's own terms: log odds of classes_[1]
        # Every axis reads the risk of pos_label_: flip the linear predictor when it is
        # classes_[0] (e.g. "N+" sorts before "N0").
        self._sign = 1.0 if self.classes_[1] == self.pos_label_ else -1.0
        self.raw_coef_ = self.raw_coef_ * self._sign
        self.raw_intercept_ = self.raw_intercept_ * self._sign
        if stepwise is not None:
            self.estimator_ = stepwise
        self._layout(design)
        return self

    def _categorical_columns(self, X):
        named = [] if self.categorical is None else list(self.categorical)
        for c in named:
            if not isinstance(c, str):
                raise TypeError(f"categorical must list column names (str); got {c!r}.")
        missing = [c for c in named if c not in X.columns]
        if missing:
            raise ValueError(
                f"Columns {missing} named in categorical are not in X; it has {list(X.columns)}."
            )
        return [
            c
            for c in X.columns
            if c in named
            or not pd.api.types.is_numeric_dtype(X[c])
            or pd.api.types.is_bool_dtype(X[c])
        ]

    def _match_fitted_inputs(self, estimator, X, categories):
        """Terms ``(input name, variable, level)`` of a fitted model, in the model's order."""
        names = getattr(estimator, "feature_names_in_", None)
        if names is None:
            terms = _default_terms(list(X.columns), categories)
            n_in = getattr(estimator, "n_features_in_", None)
            if n_in is not None and n_in != len(terms):
                raise ValueError(
                    f"The fitted {type(estimator).__name__} takes {n_in} inputs, but X encodes "
                    f"to {len(terms)} ({[t[0] for t in terms]}: the columns in order, each "
                    "categorical one replaced by its '<column>_<level>' dummies without the "
                    "reference level). Fit the model on a DataFrame so its inputs are matched "
                    "by name."
                )
            return terms
        known = {}
        for c in X.columns:
            if c in categories:
                for level in categories[c]:
                    known.setdefault(f"{c}_{_format_level(level)}", (c, level))
                    known.setdefault(f"{c}_{level}", (c, level))
                if pd.api.types.is_bool_dtype(X[c]) and categories[c] == [False, True]:
                    known.setdefault(str(c), (c, True))  # a bool column used as 0/1 as it is
            elif pd.api.types.is_numeric_dtype(X[c]) and not pd.api.types.is_bool_dtype(X[c]):
                known.setdefault(str(c), (c, None))
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(
                f"The fitted {type(estimator).__name__} uses inputs {unknown} that are neither "
                "numeric columns of X nor dummies '<column>_<level>' of its categorical "
                f"columns (levels: { {c: list(v) for c, v in categories.items()} })."
            )
        return [(str(n), *known[n]) for n in names]

    def _check_logistic(self, design):
        """Refuse a model whose probability is not the logistic function of its coefficients."""
        if not hasattr(self._model, "predict_proba"):
            raise TypeError(
                f"The fitted {type(self._model).__name__} has no predict_proba; "
                f"expected {_SUPPORTED}."
            )
        proba = self._model.predict_proba(self._model_input(design))[:, 1]
        ours = expit(design.to_numpy() @ self.raw_coef_.to_numpy() + self.raw_intercept_)
        # (called before raw_coef_ is turned towards pos_label_)
        worst = float(np.max(np.abs(proba - ours)))
        if not worst <= 1e-7:
            raise TypeError(
                f"The predicted probability of {type(self._model).__name__} is not the "
                "logistic function of its coefficients in the variables' units (largest "
                f"difference {worst:.3g}), so no nomogram can represent it; expected {_SUPPORTED}."
            )

    def _layout(self, design):
        """Axis ranges (training ranges of ``design`` unless overridden) and the points scale."""
        ranges = {}
        for name, variable, level in self._terms:
            if level is None:
                values = design[name]
                ranges[variable] = (float(values.min()), float(values.max()))
        for name, bounds in (self.feature_ranges or {}).items():
            if name not in self.variables_:
                raise ValueError(
                    f"feature_ranges names {name!r}, which is not a variable of the nomogram "
                    f"({self.variables_})."
                )
            if name in self.categories_:
                raise ValueError(
                    f"feature_ranges names the categorical variable {name!r}; its axis shows "
                    "its levels, ranges apply to numeric variables only."
                )
            try:
                lo, hi = (float(v) for v in bounds)
            except (TypeError, ValueError):
                raise ValueError(
                    f"feature_ranges[{name!r}] must be a pair (min, max) of numbers; "
                    f"got {bounds!r}."
                ) from None
            if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
                raise ValueError(
                    f"feature_ranges[{name!r}] must be finite with min < max; got {bounds!r}."
                )
            ranges[name] = (lo, hi)
        self.ranges_ = ranges

        low, spread = {}, {}
        for c in self.variables_:
            contrib = self._contributions(c)
            low[c] = min(contrib.values())
            spread[c] = max(contrib.values()) - low[c]
        widest = max(spread.values())
        if not widest > 0:
            raise ValueError(
                "Every coefficient of the model is zero (or every variable is constant), so "
                "the nomogram has no points scale."
            )
        self.points_per_unit_ = float(self.points) / widest
        self._low = low
        self.variable_points_ = pd.Series(
            {c: spread[c] * self.points_per_unit_ for c in self.variables_}, dtype=float
        )
        self.lp_at_zero_ = self.raw_intercept_ + float(sum(low.values()))
        self.max_total_points_ = float(self.variable_points_.sum())

    def _contributions(self, variable):
        """Linear-predictor contribution at the ends of a numeric axis / at each level."""
        if variable in self.categories_:
            out = {}
            for level in self.categories_[variable]:
                name = next((t[0] for t in self._terms if t[1] == variable and t[2] == level), None)
                out[level] = 0.0 if name is None else float(self.raw_coef_[name])
            return out
        name = next(t[0] for t in self._terms if t[1] == variable)
        beta = float(self.raw_coef_[name])
        lo, hi = self.ranges_[variable]
        return {lo: beta * lo, hi: beta * hi}

    # ------------------------------------------------------------------ encoding
    def _design(self, X):
        """Encoded model inputs of ``X`` (float DataFrame, columns in the model's order)."""
        missing = [c for c in self.variables_ if c not in X.columns]
        if missing:
            raise ValueError(
                f"X lacks the nomogram's variables {missing}; it has columns {list(X.columns)}."
            )
        numeric = {}
        codes = {}
        for c in self.variables_:
            column = X[c]
            if c in self.categories_:
                levels = self.categories_[c]
                code = pd.Index(levels, dtype=object).get_indexer(column.astype(object))
                bad = np.flatnonzero(code < 0)
                if bad.size:
                    row, value = X.index[bad[0]], column.iloc[bad[0]]
                    if pd.isna(value):
                        raise CohortInputError(
                            f"missing value; the nomogram needs one of the levels {levels}",
                            row=row,
                            column=c,
                        )
                    raise CohortInputError(
                        f"level {value!r} was not seen in fit; expected one of {levels}",
                        row=row,
                        column=c,
                    )
                codes[c] = code
            else:
                if column.dtype.kind == "c":
                    raise ValueError(
                        f"Complex data not supported: column {c!r} must hold real numbers."
                    )
                values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
                bad = np.flatnonzero(~np.isfinite(values))
                if bad.size:
                    value = column.iloc[bad[0]]
                    what = "missing value (NaN)" if pd.isna(value) else f"value {value!r}"
                    raise CohortInputError(
                        f"{what}; the nomogram needs a finite number",
                        row=X.index[bad[0]],
                        column=c,
                    )
                numeric[c] = values
        data = {}
        for name, variable, level in self._terms:
            if level is None:
                data[name] = numeric[variable]
            else:
                position = self.categories_[variable].index(level)
                data[name] = (codes[variable] == position).astype(float)
        return pd.DataFrame(data, index=X.index, columns=[t[0] for t in self._terms])

    def _model_input(self, design):
        if getattr(self._model, "feature_names_in_", None) is not None:
            return design
        return design.to_numpy()

    def _validated_design(self, X):
        check_is_fitted(self)
        X = _as_frame(X, n_expected=self.n_features_in_, names=self.feature_names_in_)
        return self._design(X)

    # ------------------------------------------------------------------ predictions
    def predict_proba(self, X: MatrixLike) -> np.ndarray:
        """Probability of each class, as the model predicts it.

        Parameters
        ----------
        X : pandas.DataFrame or array-like of shape (n_samples, n_features)
            Patients with the nomogram's variables (other columns are ignored).

        Returns
        -------
        ndarray of shape (n_samples, 2)
            ``estimator_.predict_proba`` of the encoded variables, columns in the order of
            ``classes_``; the risk is the column of ``pos_label_``.
        """
        design = self._validated_design(X)
        return self._model.predict_proba(self._model_input(design))

    def predict(self, X: MatrixLike) -> np.ndarray:
        """Predicted class (the model's ``predict``).

        Parameters
        ----------
        X : pandas.DataFrame or array-like of shape (n_samples, n_features)
            Patients with the nomogram's variables.

        Returns
        -------
        ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        design = self._validated_design(X)
        return self._model.predict(self._model_input(design))

    def decision_function(self, X: MatrixLike) -> np.ndarray:
        """Linear predictor (log-odds of ``classes_[1]``).

        Parameters
        ----------
        X : pandas.DataFrame or array-like of shape (n_samples, n_features)
            Patients with the nomogram's variables.

        Returns
        -------
        ndarray of shape (n_samples,)
            The model's ``decision_function`` when it has one, else
            ``raw_intercept_ + inputs @ raw_coef_``.
        """
        design = self._validated_design(X)
        if hasattr(self._model, "decision_function"):
            return np.ravel(self._model.decision_function(self._model_input(design)))
        lp = design.to_numpy() @ self.raw_coef_.to_numpy() + self.raw_intercept_
        return self._sign * lp

    def variable_points(self, X: MatrixLike) -> pd.DataFrame:
        """Points of each patient on each variable's axis.

        Parameters
        ----------
        X : pandas.DataFrame or array-like of shape (n_samples, n_features)
            Patients with the nomogram's variables.

        Returns
        -------
        pandas.DataFrame of shape (n_samples, n_variables)
            Indexed like ``X``; row sums are :meth:`total_points`.
        """
        design = self._validated_design(X)
        out = {}
        for c in self.variables_:
            names = [t[0] for t in self._terms if t[1] == c]
            lp_part = design[names].to_numpy() @ self.raw_coef_[names].to_numpy()
            out[c] = (lp_part - self._low[c]) * self.points_per_unit_
        return pd.DataFrame(out, index=design.index, columns=self.variables_)

    def total_points(self, X: MatrixLike) -> np.ndarray:
        """Total points of each patient: the sum of the points of every variable.

        Parameters
        ----------
        X : pandas.DataFrame or array-like of shape (n_samples, n_features)
            Patients with the nomogram's variables.

        Returns
        -------
        ndarray of shape (n_samples,)
            :math:`T = s\\,(\\mathrm{lp} - \\mathrm{lp}_0)`, with ``s = points_per_unit_`` and
            ``lp_0 = lp_at_zero_``.
        """
        design = self._validated_design(X)
        lp = design.to_numpy() @ self.raw_coef_.to_numpy() + self.raw_intercept_
        return (lp - self.lp_at_zero_) * self.points_per_unit_

    def points_to_probability(self, total: float | ArrayLike) -> float | np.ndarray:
        """Risk (probability of ``pos_label_``) for a number of total points.

        Parameters
        ----------
        total : float or array-like
            Total points.

        Returns
        -------
        float or ndarray
            :math:`1 / (1 + \\exp(-(T / s + \\mathrm{lp}_0)))`, shaped like ``total``.
        """
        check_is_fitted(self)
        total = np.asarray(total, dtype=float)
        proba = expit(total / self.points_per_unit_ + self.lp_at_zero_)
        return float(proba) if proba.ndim == 0 else proba

    def probability_to_points(self, probability: float | ArrayLike) -> float | np.ndarray:
        """Total points at which the risk equals ``probability`` (inverse of the above).

        Parameters
        ----------
        probability : float or array-like
            Values in (0, 1).

        Returns
        -------
        float or ndarray
            :math:`s\\,(\\mathrm{logit}(p) - \\mathrm{lp}_0)`.
        """
        check_is_fitted(self)
        probability = np.asarray(probability, dtype=float)
        if np.any((probability <= 0) | (probability >= 1)):
            raise ValueError("probability must lie strictly between 0 and 1.")
        total = (logit(probability) - self.lp_at_zero_) * self.points_per_unit_
        return float(total) if total.ndim == 0 else total

    # ------------------------------------------------------------------ reading the chart
    def _axis_ticks(self, variable):
        """``[(value, points)]`` ticks of one variable axis and the numeric tick step."""
        contrib = self._contributions(variable)
        scale, low = self.points_per_unit_, self._low[variable]
        if variable in self.categories_:
            return [(level, (c - low) * scale) for level, c in contrib.items()], None
        lo, hi = self.ranges_[variable]
        span = float(self.variable_points_[variable])
        target = max(2, math.ceil(self.n_ticks * math.sqrt(span / float(self.points))))
        ticks, step = _nice_ticks(lo, hi, target)
        name = next(t[0] for t in self._terms if t[1] == variable)
        beta = float(self.raw_coef_[name])
        return [(v, (beta * v - low) * scale) for v in ticks], step

    def points_table(self) -> pd.DataFrame:
        """Points of the labelled values of every variable axis.

        Returns
        -------
        pandas.DataFrame
            Columns ``variable``, ``value`` (a round number inside a numeric axis' range,
            or a level) and ``points``; one row per tick, in variable then value order.
        """
        check_is_fitted(self)
        rows = []
        for c in self.variables_:
            ticks, _ = self._axis_ticks(c)
            rows.extend((c, value, pts) for value, pts in ticks)
        table = pd.DataFrame(rows, columns=["variable", "value", "points"])
        table["value"] = table["value"].astype(object)
        return table

    def plot(
        self,
        ax: Any = None,
        *,
        labels: dict[str, str] | None = None,
        title: str = "Nomogram",
        outcome_label: str | None = None,
        probability_ticks: ArrayLike | None = None,
        show_linear_predictor: bool = True,
        grid: bool = True,
        fontsize: float = 10,
        figsize: tuple[float, float] | None = None,
    ) -> Any:
        """Draw the nomogram.

        From the top: a ``Points`` axis (0 to ``points``), one axis per variable (numeric:
        round values; categorical: its levels), ``Total points`` (0 to the sum of the
        variables' maxima), optionally the ``Linear predictor``, and the risk axis. The
        variable axes share the ``Points`` scale; the lower axes share the ``Total points``
        scale, so a ruler reads a patient's points per variable, and the risk at their sum.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, default=None
            Axes to draw into (its frame is turned off); ``None`` creates a figure sized to
            the number of axes.
        labels : dict of str to str, default=None
            Display names of variables (e.g. ``{"dl_score": "DL signature"}``), over the
            ``labels`` given at construction.
        title : str or None, default="Nomogram"
            Figure title.
        outcome_label : str or None, default=None
            Name of the probability axis; ``None`` means ``"Risk of ALN metastasis"``,
            followed by the positive label in parentheses when it is not 1 / True (e.g.
            ``"Risk of ALN metastasis (N+)"``).
        probability_ticks : sequence of float, default=None
            Risks to mark; ``None`` means 0.01, 0.05, 0.1, 0.2, ..., 0.9, 0.95, 0.99. Only
            those reachable within the total points range are drawn.
        show_linear_predictor : bool, default=True
            Draw the linear predictor axis.
        grid : bool, default=True
            Faint vertical lines from the ``Points`` axis down through the variable axes.
        fontsize : float, default=10
            Size of the tick labels; axis names are 1.1 times larger.
        figsize : (float, float), default=None
            Size of a new figure in inches.

        Returns
        -------
        matplotlib.figure.Figure
            The figure holding the nomogram.
        """
        check_is_fitted(self)
        import matplotlib.pyplot as plt
        from matplotlib.markers import TICKUP

        labels = {**(self.labels or {}), **(labels or {})}
        pts = float(self.points)
        rows = ["points", *self.variables_, "total", *(["lp"] if show_linear_predictor else [])]
        rows.append("risk")
        n_rows = len(rows)
        gap = 0.5  # extra space between the variable block and the total points block
        own_figure = ax is None
        if own_figure:
            width, height = figsize or (10.0, 0.62 * n_rows + gap * 0.62 + 1.0)
            fig, ax = plt.subplots(figsize=(width, height))
        else:
            fig = ax.figure
        ax.set_axis_off()

        name_style = {"fontsize": fontsize * 1.1, "fontweight": "bold"}
        tick_style = {"fontsize": fontsize}
        names, row_labels = [], []
        total_scale = pts / self.max_total_points_  # x position per total point

        def draw_axis(y, x_from, x_to, ticks, minor=(), name=""):
            ax.plot([x_from, x_to], [y, y], color="black", lw=1.1, solid_capstyle="butt")
            if minor:
                ax.plot(
                    minor, [y] * len(minor), ls="none", marker=TICKUP, ms=3, mew=0.8, color="black"
                )
            xs = [x for x, _ in ticks]
            ax.plot(xs, [y] * len(xs), ls="none", marker=TICKUP, ms=6, mew=1.1, color="black")
            texts = [
                ax.annotate(
                    text,
                    (x, y),
                    xytext=(0, 7),
                    textcoords="offset points",
                    ha="center",
                    va="bottom",
                    **tick_style,
                )
                for x, text in ticks
            ]
            names.append(
                ax.annotate(
                    name,
                    (0, y),
                    xytext=(-14, 0),
                    textcoords="offset points",
                    ha="right",
                    va="center",
                    **name_style,
                )
            )
            row_labels.append(texts)

        y = 0.0
        ys = {}
        for row in rows:
            if row == "total":
                y -= gap
            ys[row] = y
            y -= 1.0

        # Points axis.
        major, step = _nice_ticks(0.0, pts, 11)
        minor = _minor_ticks(pts, step, major)
        draw_axis(
            ys["points"], 0.0, pts, [(v, _format_tick(v, step)) for v in major], minor, "Points"
        )
        if grid:
            y_bottom = ys[self.variables_[-1]]
            for v in major:
                ax.plot([v, v], [ys["points"], y_bottom], color="0.6", lw=0.6, alpha=0.5, zorder=0)

        # Variable axes.
        for c in self.variables_:
            ticks, step = self._axis_ticks(c)
            name = labels.get(c, c)
            end = float(self.variable_points_[c])
            if c in self.categories_:
                shown = [(p, _format_level(level)) for level, p in ticks]
            else:
                shown = [(p, _format_tick(v, step)) for v, p in ticks]
            if end == 0:
                shown = [(0.0, "no effect (0 points)")]
            draw_axis(ys[c], 0.0, end, shown, name=name)

        # Total points axis.
        major, step = _nice_ticks(0.0, self.max_total_points_, 11)
        minor = [m * total_scale for m in _minor_ticks(self.max_total_points_, step, major)]
        draw_axis(
            ys["total"],
            0.0,
            pts,
            [(v * total_scale, _format_tick(v, step)) for v in major],
            minor,
            "Total points",
        )

        # Linear predictor and risk axes, both positioned through the total points.
        lp_lo = self.lp_at_zero_
        lp_hi = self.lp_at_zero_ + self.max_total_points_ / self.points_per_unit_
        if show_linear_predictor:
            values, step = _nice_ticks(lp_lo, lp_hi, 8)
            draw_axis(
                ys["lp"],
                0.0,
                pts,
                [
                    ((v - lp_lo) * self.points_per_unit_ * total_scale, _format_tick(v, step))
                    for v in values
                ],
                name="Linear predictor",
            )
        p_ticks = _DEFAULT_PROBABILITY_TICKS if probability_ticks is None else probability_ticks
        p_lo, p_hi = expit(lp_lo), expit(lp_hi)
        shown = [
            (float(self.probability_to_points(p)) * total_scale, f"{p:g}")
            for p in sorted(set(float(p) for p in p_ticks))
            if 0 < p < 1 and p_lo - 1e-12 <= p <= p_hi + 1e-12
        ]
        x_from = shown[0][0] if shown else 0.0
        x_to = shown[-1][0] if shown else pts
        if outcome_label is None:
            outcome_label = "Risk of ALN metastasis"
            if not is_conventional_labels(self.classes_):
                outcome_label += f" ({self.pos_label_})"
        draw_axis(ys["risk"], x_from, x_to, shown, name=outcome_label)
        if not shown:
            row_labels[-1].append(
                ax.annotate(
                    f"risk {p_lo:.3g} to {p_hi:.3g}: none of the requested ticks in range",
                    (pts / 2, ys["risk"]),
                    xytext=(0, 7),
                    textcoords="offset points",
                    ha="center",
                    va="bottom",
                    **tick_style,
                )
            )

        ax.set_ylim(y + 0.55, 0.6)
        if own_figure:
            width, height = fig.get_size_inches() * fig.dpi
            fig.subplots_adjust(
                left=8 / width, right=1 - 30 / width, top=1 - 34 / height, bottom=22 / height
            )
        _make_room_for_names(ax, names, 1.01 * pts)
        if title:
            ax.set_title(title, fontsize=fontsize * 1.35, fontweight="bold", pad=4)
        for texts in row_labels:
            _unclutter(texts)
        return fig

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags = ClassifierTags(multi_class=False)
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        return tags


# --------------------------------------------------------------------------- helpers
def _as_frame(X, n_expected=None, names=None):
    """``X`` as a DataFrame with str column names.

    A DataFrame whose column names are all str is used as it is. Arrays (and DataFrames with
    other column names) are positional: their columns get ``names`` (those seen in ``fit``)
    or ``x0``, ``x1``, ...
    """
    if isinstance(X, pd.DataFrame) and all(isinstance(c, str) for c in X.columns):
        return X
    if sparse.issparse(X):
        raise TypeError("Nomogram needs dense input (a DataFrame or an array); got sparse.")
    if isinstance(X, pd.DataFrame):
        frame = X.set_axis(range(X.shape[1]), axis=1)
    else:
        array = np.asarray(X)
        if array.ndim != 2:
            raise ValueError(
                "Expected a 2-D table (patients x variables); got an array of shape "
                f"{array.shape}. Reshape your data with array.reshape(-1, 1) for a single "
                "variable, or array.reshape(1, -1) for a single patient."
            )
        frame = pd.DataFrame(array).infer_objects()
    if n_expected is not None and frame.shape[1] != n_expected:
        raise ValueError(
            f"X has {frame.shape[1]} features, but Nomogram is expecting {n_expected} features "
            "as input."
        )
    columns = list(names) if names is not None else [f"x{i}" for i in range(frame.shape[1])]
    return frame.set_axis(columns, axis=1)


def _binary_classes(y):
    """Sorted classes of a binary ``y``; ``classes[1]`` is the outcome whose risk is drawn."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.ravel()
    if y.dtype.kind == "f" and np.isnan(y).any():
        raise ValueError("y contains NaN; the Nomogram needs a binary label for every patient.")
    check_classification_targets(y)
    classes = np.unique(y)
    if classes.shape[0] < 2:
        raise ValueError(
            f"The Nomogram needs both outcome classes; y has one class ({classes.tolist()!r})."
        )
    if type_of_target(y) != "binary":
        raise ValueError(
            "Only binary classification is supported: a nomogram draws the risk of one "
            f"outcome, and y has {classes.shape[0]} classes ({type_of_target(y)})."
        )
    return classes


def _levels(column, name):
    """Levels of a categorical column: category order, or sorted values; reference first."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        present = set(column.dropna().unique())
        levels = [c for c in column.cat.categories if c in present]
    else:
        try:
            values = column.dropna().unique().tolist()
        except TypeError:
            raise ValueError(
                f"Column {name!r} holds non-scalar cells ({type(column.dropna().iloc[0]).__name__}"
                "); the nomogram's variables are scalar clinical factors and signatures. Pass "
                "only those columns."
            ) from None
        try:
            levels = sorted(values)
        except TypeError:
            levels = sorted(values, key=str)
    if not levels:
        raise ValueError(f"Categorical column {name!r} has no non-missing value.")
    return levels


def _default_terms(columns, categories):
    """Numeric columns as they are, categorical ones as dummies of the non-reference levels."""
    terms = []
    for c in columns:
        if c in categories:
            terms.extend((f"{c}_{_format_level(lv)}", c, lv) for lv in categories[c][1:])
        else:
            terms.append((c, c, None))
    return terms


def _make_room_for_names(ax, names, right):
    """Extend the x range to the left so the axis names fit inside the Axes.

    The names end 14 pt left of ``x = 0``; with ``L`` data units left of 0, ``right`` units
    right of it and an Axes ``W`` pixels wide, the names get ``L W / (L + right)`` pixels, so
    ``L = need * right / (W - need)``.
    """
    width = ax.get_window_extent().width
    dpi = ax.figure.dpi
    need = max(t.get_window_extent().width for t in names) + 14 * dpi / 72 + 6
    need = min(need, 0.6 * width)
    ax.set_xlim(-need * right / (width - need), right)


def _unclutter(texts):
    """Move tick labels that would overlap their left neighbour below the axis; hide the rest."""
    above, below = None, None
    for text in sorted(texts, key=lambda t: t.xy[0]):
        box = text.get_window_extent()
        if above is None or box.x0 > above.x1 + 6:
            above = box
            continue
        text.xyann = (0, -7)
        text.set_va("top")
        box = text.get_window_extent()
        if below is None or box.x0 > below.x1 + 6:
            below = box
        else:
            text.set_visible(False)
