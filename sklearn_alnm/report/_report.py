"""StudyReport: every model on every cohort, tabulated and plotted as the ALNM papers do."""

import datetime
import numbers
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from statsmodels.stats.contingency_tables import mcnemar

from .._logging import get_logger
from .._typing import ArrayLike, FilePath, Label, RandomStateLike
from ..metrics import (
    binary_metrics,
    calibration_metrics,
    cohen_kappa,
    delong_test,
    dice_score,
    format_performance_table,
    integrated_discrimination_improvement,
    iou_score,
    net_reclassification_improvement,
    performance_table,
    youden_threshold,
)
from ..metrics._table import _prefixed_errors
from ..metrics._validation import _check_confidence, _check_int
from ..utils import resolve_pos_label
from . import _figures, _html

logger = get_logger(__name__)

YOUDEN_ON_FIRST_COHORT = "youden-on-first-cohort"

# McNemar's test is exact (binomial) when fewer discordant pairs than this are observed.
_MCNEMAR_EXACT_BELOW = 25

_DELONG_COLUMNS = ("auc_1", "auc_2", "difference", "ci_low", "ci_high", "statistic", "pvalue")

_RECLASSIFICATION_COLUMNS = (
    "nri",
    "nri_low",
    "nri_high",
    "nri_pvalue",
    "nri_events",
    "nri_nonevents",
    "idi",
    "idi_low",
    "idi_high",
    "idi_pvalue",
)

_READER_COLUMNS = (
    "n",
    "n_positive",
    "reader_sensitivity",
    "reader_specificity",
    "reader_accuracy",
    "model_sensitivity",
    "model_specificity",
    "model_accuracy",
    "threshold",
    "both_correct",
    "reader_only_correct",
    "model_only_correct",
    "both_wrong",
    "mcnemar_statistic",
    "mcnemar_pvalue",
    "mcnemar_exact",
)


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _check_name(name, what):
    if not isinstance(name, str) or not name.strip():
        raise TypeError(f"{what} names must be non-empty strings; got {name!r}.")
    return name


def _check_models(models):
    if not isinstance(models, Mapping) or not models:
        raise ValueError(
            "models must be a non-empty mapping {name: fitted classifier}, e.g. "
            "{'clinical': clinical_model, 'deep learning': dl_model}."
        )
    checked = {}
    for name, model in models.items():
        _check_name(name, "model")
        if not callable(getattr(model, "predict_proba", None)):
            raise TypeError(
                f"model {name!r} ({type(model).__name__}) has no predict_proba; the report "
                "needs probabilistic classifiers (e.g. SVC(probability=True))."
            )
        try:
            classes = np.asarray(model.classes_)
        except AttributeError:
            raise ValueError(
                f"model {name!r} ({type(model).__name__}) is not fitted (it has no classes_); "
                "fit it before building the report."
            ) from None
        if classes.ndim != 1 or classes.shape[0] != 2:
            raise ValueError(
                f"model {name!r} must be a binary classifier; its classes_ are {classes.tolist()}."
            )
        checked[name] = model
    return checked


def _n_rows(X, where):
    if hasattr(X, "shape") and len(getattr(X, "shape", ())) >= 1:
        return int(X.shape[0])
    try:
        return len(X)
    except TypeError:
        raise TypeError(
            f"{where}: X must be a DataFrame, an array or a list of samples; got "
            f"{type(X).__name__}."
        ) from None


def _check_cohorts(cohorts):
    if not isinstance(cohorts, Mapping) or not cohorts:
        raise ValueError(
            "cohorts must be a non-empty mapping {name: (X, y)} with the training cohort first, "
            "e.g. {'training': (X_train, y_train), 'test': (X_test, y_test)}."
        )
    checked = {}
    for name, value in cohorts.items():
        _check_name(name, "cohort")
        where = f"cohort {name!r}"
        if not isinstance(value, (tuple, list)) or len(value) != 2:
            got = type(value).__name__
            if isinstance(value, (tuple, list)):
                got += f" of length {len(value)}"
            raise ValueError(f"{where}: expected a pair (X, y); got a {got}.")
        X, y = value
        y = y.to_numpy() if isinstance(y, (pd.Series, pd.Index)) else np.asarray(y)
        if y.ndim != 1:
            raise ValueError(f"{where}: y must be 1-D (one label per patient); got {y.shape}.")
        if y.shape[0] == 0:
            raise ValueError(f"{where} is empty; every cohort needs patients.")
        if pd.isna(y).any():
            raise ValueError(f"{where}: y contains missing labels; every patient needs one.")
        n = _n_rows(X, where)
        if n != y.shape[0]:
            raise ValueError(f"{where}: X has {n} rows but y has {y.shape[0]} labels.")
        checked[name] = (X, y)
    return checked


def _check_labels(cohorts, pos_label):
    """The two labels (sorted) shared by every cohort and the positive one."""
    labels = None
    for name, (_, y) in cohorts.items():
        try:
            present = np.unique(y)
        except TypeError:
            raise TypeError(
                f"cohort {name!r}: y mixes label types that cannot be compared; use one type."
            ) from None
        if present.shape[0] != 2:
            detail = (
                f"a single label ({present[0]!r})"
                if present.shape[0] == 1
                else f"{present.shape[0]} labels"
            )
            raise ValueError(
                f"cohort {name!r} contains {detail}; every cohort needs positive and negative "
                "patients (a binary outcome)."
            )
        if labels is None:
            labels, first = present, name
        elif present.tolist() != labels.tolist():
            raise ValueError(
                f"cohort {name!r} has the labels {present.tolist()} but cohort {first!r} has "
                f"{labels.tolist()}; every cohort must use the same two labels."
            )
    return labels, resolve_pos_label(labels, pos_label, owner="StudyReport", name="the cohorts")


def _positive_column(model, name, labels, pos_label):
    classes = np.asarray(model.classes_).tolist()
    missing = [label for label in labels.tolist() if label not in classes]
    if missing:
        raise ValueError(
            f"model {name!r} was fitted on the classes {classes}, but the cohorts' labels are "
            f"{labels.tolist()}; refit it on labels of the same kind."
        )
    return classes.index(pos_label)


def _predict_positive(model, name, cohort, X, n, column):
    """Probability of the positive class of ``model`` on cohort ``X``, validated."""
    where = f"model {name!r} on cohort {cohort!r}"
    try:
        proba = model.predict_proba(X)
    except (ValueError, TypeError, KeyError) as exc:
        if hasattr(exc, "add_note"):
            exc.add_note(f"(raised by predict_proba of {where})")
        raise
    proba = np.asarray(proba, dtype=float)
    if proba.ndim != 2 or proba.shape[0] != n or proba.shape[1] <= column:
        raise ValueError(f"{where}: predict_proba returned shape {proba.shape}; expected ({n}, 2).")
    p = proba[:, column]
    if not np.all(np.isfinite(p)):
        raise ValueError(f"{where}: predict_proba returned NaN or infinite probabilities.")
    if p.min() < -1e-9 or p.max() > 1.0 + 1e-9:
        raise ValueError(
            f"{where}: predict_proba returned values in [{p.min():.6g}, {p.max():.6g}]; "
            "probabilities must lie in [0, 1]."
        )
    return np.clip(p, 0.0, 1.0)


def _check_threshold_value(value, where):
    if isinstance(value, str):
        if value != YOUDEN_ON_FIRST_COHORT:
            raise ValueError(
                f"{where} must be {YOUDEN_ON_FIRST_COHORT!r} or a probability in [0, 1]; "
                f"got {value!r}."
            )
        return value
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(
            f"{where} must be {YOUDEN_ON_FIRST_COHORT!r} or a probability in [0, 1]; got "
            f"{type(value).__name__}."
        )
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{where} must be a probability in [0, 1]; got {value!r}.")
    return float(value)


def _check_thresholds(threshold, models):
    if isinstance(threshold, Mapping):
        unknown = [key for key in threshold if key not in models]
        if unknown:
            raise ValueError(
                f"threshold names unknown models {unknown}; the models are {list(models)}."
            )
        missing = [name for name in models if name not in threshold]
        if missing:
            raise ValueError(
                f"threshold gives no value for the models {missing}; give a float or "
                f"{YOUDEN_ON_FIRST_COHORT!r} for every model."
            )
        return {
            name: _check_threshold_value(threshold[name], f"threshold[{name!r}]") for name in models
        }
    value = _check_threshold_value(threshold, "threshold")
    return dict.fromkeys(models, value)


def _check_readers(readers, cohorts):
    if readers is None:
        return {}
    if not isinstance(readers, Mapping):
        raise TypeError(
            "readers must be a mapping {reader: {cohort: calls}} with one 0/1 call per patient; "
            f"got {type(readers).__name__}."
        )
    checked = {}
    for reader, per_cohort in readers.items():
        _check_name(reader, "reader")
        if not isinstance(per_cohort, Mapping) or not per_cohort:
            raise ValueError(
                f"reader {reader!r}: expected a non-empty mapping {{cohort: calls}}; got "
                f"{type(per_cohort).__name__}."
            )
        calls_by_cohort = {}
        for cohort, calls in per_cohort.items():
            if cohort not in cohorts:
                raise ValueError(
                    f"reader {reader!r}: unknown cohort {cohort!r}; the cohorts are "
                    f"{list(cohorts)}."
                )
            where = f"reader {reader!r}, cohort {cohort!r}"
            arr = calls.to_numpy() if isinstance(calls, (pd.Series, pd.Index)) else calls
            arr = np.asarray(arr)
            n = cohorts[cohort][1].shape[0]
            if arr.ndim != 1:
                raise ValueError(f"{where}: calls must be 1-D; got shape {arr.shape}.")
            if arr.shape[0] != n:
                raise ValueError(
                    f"{where}: {arr.shape[0]} calls for {n} patients; give one 0/1 call per "
                    "patient, in the cohort's row order."
                )
            if arr.dtype.kind == "b":
                arr = arr.astype(np.int8)
            elif arr.dtype.kind not in "iuf":
                raise TypeError(
                    f"{where}: calls must be 0/1 numbers or booleans (1 = called positive); "
                    f"got dtype {arr.dtype}."
                )
            bad = np.flatnonzero(~np.isin(arr, (0, 1)))
            if bad.size:
                raise ValueError(
                    f"{where}: calls must be 0 (negative) or 1 (positive); found "
                    f"{arr[bad[0]].item()!r} at position {int(bad[0])} ({bad.size} invalid in "
                    "all)."
                )
            calls_by_cohort[cohort] = arr.astype(np.int8)
        checked[reader] = calls_by_cohort
    return checked


def _check_clinical(clinical, cohorts):
    """The clinical column names as a list, each present in every cohort's DataFrame and
    none a copy of the outcome."""
    if clinical is None:
        return []
    columns = [clinical] if isinstance(clinical, str) else list(clinical)
    if not columns or not all(isinstance(c, str) for c in columns):
        raise TypeError(f"clinical must be a column name or a list of them; got {clinical!r}.")
    from ..io import is_id_column_name

    ids = [c for c in columns if is_id_column_name(c)]
    if ids:
        raise ValueError(
            f"clinical column(s) {ids} name patients (an id column), not a characteristic; "
            "leave them out of clinical."
        )
    for cohort, (X, y) in cohorts.items():
        if not isinstance(X, pd.DataFrame):
            raise TypeError(
                f"cohort {cohort!r}: clinical columns need the cohort as a DataFrame; got "
                f"{type(X).__name__}."
            )
        missing = [c for c in columns if c not in X.columns]
        if missing:
            raise ValueError(f"cohort {cohort!r} has no column(s) {missing} (clinical).")
        labels = pd.Series(np.asarray(y), index=X.index).astype(str)
        for c in columns:
            if X[c].astype(str).equals(labels):
                raise ValueError(
                    f"clinical column {c!r} equals the outcome in cohort {cohort!r}; the "
                    "outcome is not a patient characteristic (leave it out of clinical)."
                )
    return columns


def _slug(name, taken):
    """A file-name-safe, unique version of ``name`` (letters, digits, ``-`` and ``_``)."""
    base = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_").lower() or "model"
    slug, k = base, 2
    while slug in taken:
        slug, k = f"{base}_{k}", k + 1
    taken.add(slug)
    return slug


def _make_folder(folder):
    """Create ``folder`` and missing parents; return the folders created, outermost first."""
    missing = []
    path = folder
    while not path.exists():
        missing.append(path)
        if path.parent == path:
            break
        path = path.parent
    created = []
    for path in reversed(missing):
        path.mkdir()
        created.append(path)
    return created


# --------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------


class StudyReport:
    """Paper-style evaluation of fitted models on the cohorts of a study, with an HTML export.

    The report predicts every model on every cohort once, at construction, and derives from
    those probabilities the tables and figures the ALNM studies publish. All statistics come
    from :mod:`sklearn_alnm.metrics`:

    * the classification threshold of each model is fixed on the **first** cohort (the
      training cohort) by Youden's index (:func:`~sklearn_alnm.metrics.youden_threshold`) and
      applied unchanged to the other cohorts, or given as a number;
    * :meth:`metrics_table`: AUC with DeLong confidence interval, accuracy, sensitivity,
      specificity, PPV, NPV, F1 at that threshold and the Hosmer-Lemeshow test
      (:func:`~sklearn_alnm.metrics.performance_table`), one row per model and cohort;
    * :meth:`key_findings`: the primary model's AUC, sensitivity and specificity in each
      evaluation cohort against its best comparator, and :meth:`plot_forest`, every model's
      AUC with its interval;
    * :meth:`comparison_table`: the primary model against each other model (DeLong test,
      multiplicity-adjusted p-values); :meth:`delong_table`: every pair of models in each
      cohort (:func:`~sklearn_alnm.metrics.delong_test`);
    * :meth:`readers_table`: radiologists' binary calls against each model, with McNemar's
      test on the paired correct / incorrect classifications;
    * figures (:class:`matplotlib.figure.Figure`, drawn without pyplot): :meth:`plot_roc`,
      :meth:`plot_calibration`, :meth:`plot_decision_curve`,
      :meth:`plot_confusion_matrices` and :meth:`plot_nomogram`. A model keeps its colour in
      every figure;
    * :meth:`to_html`: everything in one folder (``index.html``, PNG figures, CSV tables).

    Parameters
    ----------
    models : mapping of str to fitted classifier
        Model name -> fitted binary classifier with ``classes_`` and ``predict_proba``
        (a ``Pipeline``, ``GridSearchCV``, ``StackingClassifier``, ...). Order is kept in
        tables and legends.
    cohorts : mapping of str to (X, y)
        Cohort name -> the input the models take and the outcome, e.g.
        ``{"training": (X_train, y_train), "validation": (X_val, y_val)}``. The **first**
        cohort is the one on which Youden thresholds are chosen. Every cohort needs both
        classes, and all cohorts must use the same two labels.
    threshold : "youden-on-first-cohort", float or mapping of str to either, \
default="youden-on-first-cohort"
        Decision threshold on the predicted probability of the positive class (a patient is
        positive iff ``probability >= threshold``). A float in [0, 1] applies to every model;
        a mapping gives each model its own value (every model must be named).
    readers : mapping of str to mapping of str to array-like, default=None
        Radiologists' calls: reader name -> cohort name -> one call per patient of that
        cohort, in its row order, ``1`` (or ``True``) meaning "metastasis" (the positive
        class) and ``0`` the opposite. A reader may have read only some cohorts.
    pos_label : scalar, default=None
        The positive class (e.g. ``"N+"``): every metric, curve, table and the page refer to
        it, and each model's probability is read from its ``predict_proba`` column for it.
        Required unless the labels are 0/1, -1/1 or booleans (then 1 / True).
    confidence : float, default=0.95
        Level of the AUC and AUC-difference confidence intervals.
    n_groups : int, default=10
        Number of risk groups of the Hosmer-Lemeshow test and of calibration-curve bins.
    title : str, default=None
        Title of the HTML page; default ``"Study report"``.
    gradcam : int or None, default=None
        Number of cases in a Grad-CAM panel (:meth:`plot_gradcam`) per image or video model,
        i.e. a model with ``prepare_images`` (or ``prepare_clips``) and ``module_`` such as
        :class:`~sklearn_alnm.models.ImageClassifier` or
        :class:`~sklearn_alnm.models.VideoClassifier` (or a ``Pipeline`` ending in one); a
        video model's panel shows each clip's key frame (the frame holding the largest share
        of its map) with its part of the map; a multi-task bag model
        (:class:`~sklearn_alnm.models.MultiTaskSegClassifier`, or a pipeline of it and a
        :class:`~sklearn_alnm.models.MILClassifier`) shows each patient's images with the
        image head's class activation maps and the MIL attention weights
        (:func:`~sklearn_alnm.explain.plot_bag_cam`). The cases are the positive patients of
        the **last** cohort with the highest predicted probability. ``None``: no panel in
        :meth:`to_html`.
    label_names : dict or None, default=None
        Display names of the labels (e.g. ``{0: "N0", 1: "N+"}`` for 0/1-coded labels) in
        the page and the figures.
    primary : str or None, default=None
        The model the study proposes: :meth:`key_findings` and :meth:`comparison_table`
        compare it with every other model. ``None``: the last model of ``models``.
    compare : list of str or None, default=None
        The models the primary model is compared with in :meth:`comparison_table` and
        :meth:`key_findings` (e.g. its clinical and single-modality comparators); ``None``:
        every other model.
    adjust : {"holm", "fdr_bh", "bonferroni"} or None, default="holm"
        Multiplicity adjustment of the primary model's DeLong p-values within each cohort
        (:func:`statsmodels.stats.multitest.multipletests`); ``None`` reports them unadjusted.
    clinical : list of str or None, default=None
        Clinical columns of the cohorts' DataFrames (age, tumour size, ER, ...): the report
        then has the patients' characteristics by outcome and cohort
        (:meth:`baseline_table`, "Table 1") and their odds ratios on the first cohort
        (:meth:`odds_ratio_table`). The outcome must not be among them.
    categorical : list of str or None, default=None
        Clinical columns to treat as categorical besides string, ``bool`` and ``category``
        columns (e.g. an integer-coded grade).

    Attributes
    ----------
    probabilities_ : dict of str to dict of str to ndarray
        ``probabilities_[model][cohort]``: predicted probability of the positive class.
    thresholds_ : dict of str to float
        Threshold used for each model (chosen or given).
    pos_label_ : scalar
        The positive class actually used.
    classes_ : ndarray of shape (2,)
        The two labels, sorted.
    colors_ : dict of str to tuple
        The RGBA colour of each model in every figure.
    primary_ : str
        The primary model's name.
    clinical_ : list of str
        The clinical columns (empty without ``clinical``).

    Raises
    ------
    ValueError
        For an empty or malformed ``models`` / ``cohorts`` / ``readers`` mapping, an unfitted
        or non-binary model, a cohort with one class only or with X and y of different
        lengths, reader calls that do not match their cohort (the message names reader and
        cohort) or are not 0/1, or an invalid threshold / ``pos_label`` / ``confidence`` /
        ``n_groups``.
    TypeError
        For a model without ``predict_proba``, or values of the wrong type.

    See Also
    --------
    sklearn_alnm.metrics.performance_table : The table of one model.

    Notes
    -----
    McNemar's test compares, patient by patient, whether the reader and the model classify
    correctly. With :math:`b` the patients only the reader gets right and :math:`c` those only
    the model gets right, it is exact (binomial, :math:`p = \\min(1, 2 P(B \\le \\min(b, c)))`,
    :math:`B \\sim \\text{Bin}(b + c, 1/2)`) when :math:`b + c < 25`, and otherwise the
    :math:`\\chi^2_1` statistic :math:`(|b - c| - 1)^2 / (b + c)` with continuity correction
    (statsmodels' :func:`~statsmodels.stats.contingency_tables.mcnemar`).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.naive_bayes import GaussianNB
    >>> from sklearn_alnm.report import StudyReport
    >>> X, y = make_classification(n_samples=300, n_informative=3, random_state=0)
    >>> cohorts = {"training": (X[:200], y[:200]), "test": (X[200:], y[200:])}
    >>> models = {
    ...     "logistic": LogisticRegression().fit(X[:200], y[:200]),
    ...     "naive Bayes": GaussianNB().fit(X[:200], y[:200]),
    ... }
    >>> reader = {"radiologist": {"test": (X[200:, 0] > 0).astype(int)}}
    >>> report = StudyReport(models, cohorts, readers=reader)
    >>> table = report.metrics_table()
    >>> table.index.names
    FrozenList(['model', 'cohort'])
    >>> bool(table.loc[("logistic", "test"), "threshold"] == report.thresholds_["logistic"])
    True
    >>> report.metrics_table(formatted=True).columns[1]
    'AUC (95% CI)'
    >>> report.delong_table().index.names
    FrozenList(['cohort', 'model_1', 'model_2'])
    >>> report.readers_table().shape
    (2, 16)
    >>> fig = report.plot_roc()
    >>> [ax.get_title().splitlines()[0] for ax in fig.axes]
    ['ROC - training', 'ROC - test']
    """

    def label_name(self, label: Label) -> str:
        """Display name of a label (``label_names``, else the label itself)."""
        if self.label_names is not None and label in self.label_names:
            return str(self.label_names[label])
        return str(label.item() if hasattr(label, "item") else label)

    def __init__(
        self,
        models,
        cohorts,
        *,
        threshold=YOUDEN_ON_FIRST_COHORT,
        readers=None,
        pos_label=None,
        confidence=0.95,
        n_groups=10,
        title=None,
        gradcam=None,
        label_names=None,
        primary=None,
        compare=None,
        adjust="holm",
        clinical=None,
        categorical=None,
    ):
        self.models = _check_models(models)
        self.cohorts = _check_cohorts(cohorts)
        self.confidence = _check_confidence(confidence)
        self.n_groups = _check_int(n_groups, "n_groups", 3)
        if title is not None and not isinstance(title, str):
            raise TypeError(f"title must be a string or None; got {type(title).__name__}.")
        self.title = title
        self.gradcam = _check_gradcam(gradcam)
        if label_names is not None and not isinstance(label_names, Mapping):
            raise TypeError("label_names must map labels to display names, e.g. {1: 'N+'}.")
        self.label_names = label_names
        self.pos_label = pos_label
        self.threshold = threshold
        thresholds = _check_thresholds(threshold, self.models)
        self.classes_, self.pos_label_ = _check_labels(self.cohorts, pos_label)
        self.readers = _check_readers(readers, self.cohorts)
        self.clinical = clinical
        self.categorical = categorical
        self.clinical_ = _check_clinical(clinical, self.cohorts)
        self.primary = primary
        self.adjust = adjust
        if primary is not None and primary not in self.models:
            raise ValueError(f"primary model {primary!r} is not among {list(self.models)}.")
        if adjust not in _ADJUSTMENTS:
            raise ValueError(f"adjust must be one of {list(_ADJUSTMENTS)}; got {adjust!r}.")
        self.primary_ = primary if primary is not None else list(self.models)[-1]
        self.compare = compare
        if compare is not None:
            if isinstance(compare, str):
                compare = [compare]
            unknown = [name for name in compare if name not in self.models]
            if unknown or self.primary_ in compare or not list(compare):
                raise ValueError(
                    f"compare must name other models than the primary {self.primary_!r} among "
                    f"{list(self.models)}; got {list(compare)}."
                )
        self._comparators = [
            name
            for name in self.models
            if name != self.primary_ and (compare is None or name in compare)
        ]

        self._is_positive = {
            name: np.asarray(y == self.pos_label_, dtype=bool)
            for name, (_, y) in self.cohorts.items()
        }
        self.probabilities_ = {}
        for name, model in self.models.items():
            column = _positive_column(model, name, self.classes_, self.pos_label_)
            self.probabilities_[name] = {
                cohort: _predict_positive(model, name, cohort, X, y.shape[0], column)
                for cohort, (X, y) in self.cohorts.items()
            }

        first = self.first_cohort
        self.thresholds_ = {}
        self._youden = {name: value == YOUDEN_ON_FIRST_COHORT for name, value in thresholds.items()}
        for name, value in thresholds.items():
            if value == YOUDEN_ON_FIRST_COHORT:
                with _prefixed_errors(f"model {name!r}, cohort {first!r}"):
                    value = youden_threshold(
                        self.cohorts[first][1],
                        self.probabilities_[name][first],
                        pos_label=self.pos_label_,
                    )
            self.thresholds_[name] = float(value)
        self.colors_ = _figures.model_colors(list(self.models))
        self._metrics = None

    # ----------------------------------------------------------------------------------------
    @property
    def first_cohort(self):
        """Name of the first cohort, on which Youden thresholds are chosen."""
        return next(iter(self.cohorts))

    @property
    def nomogram_models(self):
        """Names of the models drawn as a nomogram (a ``plot()`` method and ``points_table``).

        A ``Pipeline`` qualifies when its final step does.
        """
        return [name for name, model in self.models.items() if _nomogram_of(model) is not None]

    @property
    def gradcam_models(self):
        """Names of the models that Grad-CAM can explain (image and video models, see
        ``gradcam``), and the multi-task bag models (their image head's CAM)."""
        return [
            name
            for name, model in self.models.items()
            if _image_model_of(model) or _is_bag_model(model)
        ]

    def __repr__(self):
        return (
            f"StudyReport(models={list(self.models)}, cohorts={list(self.cohorts)}, "
            f"readers={list(self.readers)})"
        )

    def _labels(self, cohort):
        return self.cohorts[cohort][1]

    def _select_cohorts(self, cohorts):
        if cohorts is None:
            return list(self.cohorts)
        if isinstance(cohorts, str):
            cohorts = [cohorts]
        selected = list(cohorts)
        unknown = [c for c in selected if c not in self.cohorts]
        if unknown or not selected:
            raise ValueError(
                f"cohorts must name some of the cohorts {list(self.cohorts)}; got {selected}."
            )
        return selected

    # ----------------------------------------------------------------------------------------
    # Tables
    # ----------------------------------------------------------------------------------------
    def metrics_table(self, formatted: bool = False, decimals: int = 3) -> pd.DataFrame:
        """Discrimination, classification and calibration of every model on every cohort.

        One :func:`~sklearn_alnm.metrics.performance_table` per model, with the model's
        threshold (``thresholds_``) fixed for all its cohorts, stacked into one table. The
        numbers are computed once and cached.

        Parameters
        ----------
        formatted : bool, default=False
            Return text cells for display (``"0.812 (0.754-0.870)"``), as
            :func:`~sklearn_alnm.metrics.format_performance_table`.
        decimals : int, default=3
            Decimals of the formatted cells.

        Returns
        -------
        table : pandas.DataFrame
            Index: a MultiIndex ``(model, cohort)`` in the order of ``models`` and
            ``cohorts``. Numeric columns: ``n``, ``n_positive``, ``auc``, ``auc_low``,
            ``auc_high`` (DeLong interval at ``confidence``), ``accuracy``, ``sensitivity``,
            ``specificity``, ``ppv``, ``npv``, ``f1``, ``threshold``, ``hl_statistic``,
            ``hl_pvalue``. Formatted columns: ``N``, ``AUC (95% CI)``, ``Accuracy``,
            ``Sensitivity``, ``Specificity``, ``PPV``, ``NPV``, ``F1``, ``Threshold``,
            ``HL statistic``, ``HL p-value``.

        Raises
        ------
        ValueError
            When a statistic cannot be computed for a cohort (e.g. the Hosmer-Lemeshow test
            for a model predicting one probability for everybody); the message names the
            model and the cohort.
        """
        if self._metrics is None:
            parts = {}
            for name in self.models:
                data = {
                    cohort: (y, self.probabilities_[name][cohort])
                    for cohort, (_, y) in self.cohorts.items()
                }
                with _prefixed_errors(f"model {name!r}"):
                    parts[name] = performance_table(
                        data,
                        threshold=self.thresholds_[name],
                        confidence=self.confidence,
                        n_groups=self.n_groups,
                        pos_label=self.pos_label_,
                    )
            table = pd.concat(parts, names=["model", "cohort"])
            table.attrs = {
                "confidence": self.confidence,
                "ci_method": "delong",
                "n_groups": self.n_groups,
                "threshold_cohort": self.first_cohort,
            }
            self._metrics = table
        table = self._metrics.copy()
        table.attrs = dict(self._metrics.attrs)
        if not formatted:
            return table
        parts = {}
        for name in self.models:
            part = table.xs(name, level="model")
            part.attrs = dict(table.attrs)
            parts[name] = format_performance_table(part, decimals=decimals)
        result = pd.concat(parts, names=["model", "cohort"])
        result.attrs = dict(table.attrs)
        return result

    @property
    def evaluation_cohorts(self):
        """The cohorts the key findings are read on: every cohort after the first (on which
        thresholds are chosen), or the only one."""
        names = list(self.cohorts)
        return names[1:] if len(names) > 1 else names

    def comparison_table(self, cohorts: str | Sequence[str] | None = None) -> pd.DataFrame:
        """The primary model against each other model: DeLong tests with adjusted p-values.

        In each cohort the primary model is compared with every other model on the same
        patients (:func:`~sklearn_alnm.metrics.delong_test`, two-sided); ``p_adjusted``
        corrects the cohort's p-values for the number of comparisons (``adjust``). The full
        matrix of pairs is :meth:`delong_table`.

        Parameters
        ----------
        cohorts : str or list of str, default=None
            Cohorts to compare on; default :attr:`evaluation_cohorts`.

        Returns
        -------
        table : pandas.DataFrame
            Index ``(cohort, model)``; columns ``auc_primary``, ``auc``, ``difference``
            (primary minus model), ``ci_low``, ``ci_high``, ``pvalue`` and ``p_adjusted``.
            Empty with a single model.
        """
        return self._comparison_from(self.delong_table(), cohorts)

    def _comparison_from(self, delong, cohorts=None):
        """:meth:`comparison_table` read from the long :meth:`delong_table` ``delong``."""
        from statsmodels.stats.multitest import multipletests

        cohorts = self.evaluation_cohorts if cohorts is None else self._select_cohorts(cohorts)
        names = list(self.models)
        rows, index = [], []
        for cohort in cohorts:
            cohort_rows = []
            for other in self._comparators:
                # the pair is stored once, in the order of ``models``: flip it when the
                # primary model comes second (the two-sided p-value does not change)
                first = names.index(self.primary_) < names.index(other)
                pair = (self.primary_, other) if first else (other, self.primary_)
                found = delong.loc[(cohort, *pair)]
                sign = 1.0 if first else -1.0
                low, high = sign * found["ci_low"], sign * found["ci_high"]
                cohort_rows.append(
                    {
                        "auc_primary": found["auc_1" if first else "auc_2"],
                        "auc": found["auc_2" if first else "auc_1"],
                        "difference": sign * found["difference"],
                        "ci_low": min(low, high),
                        "ci_high": max(low, high),
                        "pvalue": found["pvalue"],
                    }
                )
                index.append((cohort, other))
            p = np.array([row["pvalue"] for row in cohort_rows], dtype=float)
            adjusted = p.copy()
            finite = np.isfinite(p)
            if self.adjust is not None and finite.any():
                adjusted[finite] = multipletests(p[finite], method=self.adjust)[1]
            for row, value in zip(cohort_rows, adjusted, strict=True):
                row["p_adjusted"] = value
            rows += cohort_rows
        columns = ["auc_primary", "auc", "difference", "ci_low", "ci_high", "pvalue", "p_adjusted"]
        return pd.DataFrame(
            rows,
            index=pd.MultiIndex.from_tuples(index, names=["cohort", "model"]),
            columns=columns,
            dtype=float,
        )

    def key_findings(self) -> pd.DataFrame:
        """How good the primary model is, and against what, in each evaluation cohort.

        Returns
        -------
        table : pandas.DataFrame
            One row per evaluation cohort: ``model`` (the primary model), ``n``, ``auc``,
            ``auc_low``, ``auc_high``, ``sensitivity``, ``specificity`` and ``threshold`` (its
            fixed threshold), then ``comparator`` (the other model with the highest AUC in
            that cohort), ``comparator_auc``, ``comparator_auc_low``,
            ``comparator_auc_high``, ``delong_p`` and ``p_adjusted`` (primary vs
            comparator, adjusted over all of the primary model's comparisons in the cohort),
            and the primary model's category-free NRI and IDI over the comparator with their
            intervals (``nri``, ``nri_low``, ``nri_high``, ``idi``, ``idi_low``,
            ``idi_high``, from :meth:`reclassification_table`). The comparator columns are
            missing values with a single model.
        """
        return self._key_findings_from(self.comparison_table(), self.reclassification_table())

    def _key_findings_from(self, comparison, reclassification):
        """:meth:`key_findings` from :meth:`comparison_table` and
        :meth:`reclassification_table`."""
        metrics = self.metrics_table()
        rows = []
        for cohort in self.evaluation_cohorts:
            own = metrics.loc[(self.primary_, cohort)]
            row = {"cohort": cohort, "model": self.primary_}
            for key in ("n", "auc", "auc_low", "auc_high", "sensitivity", "specificity"):
                row[key] = own[key]
            row["threshold"] = self.thresholds_[self.primary_]
            others = self._comparators
            best = max(others, key=lambda n: metrics.loc[(n, cohort), "auc"], default=None)
            row["comparator"] = best
            for key in ("auc", "auc_low", "auc_high"):
                row[f"comparator_{key}"] = (
                    metrics.loc[(best, cohort), key] if best is not None else np.nan
                )
            found = best is not None and (cohort, best) in comparison.index
            row["delong_p"] = comparison.loc[(cohort, best), "pvalue"] if found else np.nan
            row["p_adjusted"] = comparison.loc[(cohort, best), "p_adjusted"] if found else np.nan
            moved = best is not None and (cohort, best) in reclassification.index
            for key in ("nri", "nri_low", "nri_high", "idi", "idi_low", "idi_high"):
                row[key] = reclassification.loc[(cohort, best), key] if moved else np.nan
            rows.append(row)
        return pd.DataFrame(rows).set_index("cohort")

    def reclassification_table(
        self, cohorts: str | Sequence[str] | None = None, *, cutoffs: ArrayLike | None = None
    ) -> pd.DataFrame:
        """Reclassification by the primary model against each comparator: NRI and IDI.

        In each cohort, the net reclassification improvement
        (:func:`~sklearn_alnm.metrics.net_reclassification_improvement`, category-free unless
        ``cutoffs`` are given) and the integrated discrimination improvement
        (:func:`~sklearn_alnm.metrics.integrated_discrimination_improvement`) of the primary
        model over each model it is compared with (``compare``), with intervals at
        ``confidence``: positive values favour the primary model.

        Parameters
        ----------
        cohorts : str or list of str, default=None
            Cohorts; default :attr:`evaluation_cohorts`.
        cutoffs : array-like of float or None, default=None
            Risk-category cutoffs of a categorical NRI (e.g. ``[0.1, 0.3]``).

        Returns
        -------
        table : pandas.DataFrame
            Index ``(cohort, model)`` (the comparator); columns ``nri``, ``nri_low``,
            ``nri_high``, ``nri_pvalue``, ``nri_events``, ``nri_nonevents``, ``idi``,
            ``idi_low``, ``idi_high``, ``idi_pvalue``. Empty with a single model.
        """
        cohorts = self.evaluation_cohorts if cohorts is None else self._select_cohorts(cohorts)
        rows, index = [], []
        for cohort in cohorts:
            y = self._labels(cohort)
            new = self.probabilities_[self.primary_][cohort]
            for other in self._comparators:
                old = self.probabilities_[other][cohort]
                with _prefixed_errors(f"cohort {cohort!r}, {self.primary_!r} vs {other!r}"):
                    nri = net_reclassification_improvement(
                        y,
                        old,
                        new,
                        cutoffs=cutoffs,
                        confidence=self.confidence,
                        pos_label=self.pos_label_,
                    )
                    idi = integrated_discrimination_improvement(
                        y, old, new, confidence=self.confidence, pos_label=self.pos_label_
                    )
                rows.append(
                    {
                        "nri": nri.estimate,
                        "nri_low": nri.low,
                        "nri_high": nri.high,
                        "nri_pvalue": nri.pvalue,
                        "nri_events": nri.events,
                        "nri_nonevents": nri.nonevents,
                        "idi": idi.estimate,
                        "idi_low": idi.low,
                        "idi_high": idi.high,
                        "idi_pvalue": idi.pvalue,
                    }
                )
                index.append((cohort, other))
        return pd.DataFrame(
            rows,
            index=pd.MultiIndex.from_tuples(index, names=["cohort", "model"])
            if index
            else pd.MultiIndex.from_arrays([[], []], names=["cohort", "model"]),
            columns=list(_RECLASSIFICATION_COLUMNS),
            dtype=float,
        )

    def agreement_table(self) -> pd.DataFrame:
        """Cohen's kappa between every pair of readers and between each reader and each model.

        On every cohort both raters read: the readers' 0/1 calls, and a model's calls at its
        fixed threshold (``probability >= threshold``). Inter-observer agreement is a pair of
        readers; for intra-observer agreement, give a reader's second reading as another
        reader (e.g. ``"Reader A, 2nd reading"``). Kappa with its interval at ``confidence``
        and the test of kappa = 0 from :func:`~sklearn_alnm.metrics.cohen_kappa`. McNemar's
        test of the same pairs' accuracy is :meth:`readers_table`.

        Returns
        -------
        table : pandas.DataFrame
            Index ``(cohort, rater_1, rater_2)``; columns ``kind`` (``"reader-reader"`` or
            ``"reader-model"``), ``n``, ``agreement`` (fraction of equal calls), ``kappa``,
            ``kappa_low``, ``kappa_high``, ``pvalue``. Empty without readers.
        """
        rows, index = [], []
        for cohort in self.cohorts:
            readers = [r for r, calls in self.readers.items() if cohort in calls]
            pairs = [(a, b, "reader-reader") for a, b in combinations(readers, 2)]
            pairs += [(r, m, "reader-model") for r in readers for m in self.models]
            for first, second, kind in pairs:
                calls_1 = self.readers[first][cohort]
                if kind == "reader-reader":
                    calls_2 = self.readers[second][cohort]
                else:
                    calls_2 = self.probabilities_[second][cohort] >= self.thresholds_[second]
                result = cohen_kappa(calls_1, calls_2, confidence=self.confidence)
                rows.append(
                    {
                        "kind": kind,
                        "n": result.n,
                        "agreement": result.agreement,
                        "kappa": result.kappa,
                        "kappa_low": result.low,
                        "kappa_high": result.high,
                        "pvalue": result.pvalue,
                    }
                )
                index.append((cohort, first, second))
        names = ["cohort", "rater_1", "rater_2"]
        return pd.DataFrame(
            rows,
            index=pd.MultiIndex.from_tuples(index, names=names)
            if index
            else pd.MultiIndex.from_arrays([[], [], []], names=names),
            columns=["kind", "n", "agreement", "kappa", "kappa_low", "kappa_high", "pvalue"],
        )

    def _clinical_frame(self):
        """The clinical columns of every cohort stacked, and the cohort of each row."""
        frames = [X[self.clinical_] for X, _ in self.cohorts.values()]
        groups = np.concatenate(
            [np.full(len(f), name, dtype=object) for name, f in zip(self.cohorts, frames)]
        )
        labels = np.concatenate([np.asarray(y) for _, y in self.cohorts.values()])
        return pd.concat(frames, ignore_index=True), labels, groups

    def baseline_table(self, **kwargs: Any) -> pd.DataFrame:
        """Table 1: the clinical characteristics by outcome in each cohort, with the tests.

        :func:`~sklearn_alnm.clinical.baseline_table` on the ``clinical`` columns of all
        cohorts, one block of columns per cohort (each described and tested on its own
        patients).

        Parameters
        ----------
        **kwargs
            Passed on (``normality``, ``alpha``, ``decimals``); ``categorical`` defaults to
            the report's.

        Returns
        -------
        table : pandas.DataFrame

        Raises
        ------
        ValueError
            When the report was built without ``clinical`` columns.
        """
        from ..clinical import baseline_table

        self._require_clinical("baseline_table")
        X, y, groups = self._clinical_frame()
        kwargs.setdefault("categorical", self.categorical)
        return baseline_table(X, y, groups, pos_label=self.pos_label_, **kwargs)

    def odds_ratio_table(self, **kwargs: Any) -> pd.DataFrame:
        """Univariable and multivariable odds ratios of the clinical variables, on the first
        cohort.

        :func:`~sklearn_alnm.clinical.odds_ratio_table` on the ``clinical`` columns of the
        first (training) cohort, odds of the positive class.

        Parameters
        ----------
        **kwargs
            Passed on (``multivariable``, ``alpha``); ``categorical`` defaults to the
            report's.

        Returns
        -------
        table : pandas.DataFrame

        Raises
        ------
        ValueError
            When the report was built without ``clinical`` columns.
        """
        from ..clinical import odds_ratio_table

        self._require_clinical("odds_ratio_table")
        X, y = self.cohorts[self.first_cohort]
        kwargs.setdefault("categorical", self.categorical)
        return odds_ratio_table(X[self.clinical_], y, pos_label=self.pos_label_, **kwargs)

    def _require_clinical(self, what):
        if not self.clinical_:
            raise ValueError(
                f"{what} needs the clinical columns: build the report with clinical=[...] "
                "(column names of the cohorts' DataFrames)."
            )

    @property
    def segmenters(self):
        """The fitted segmenters inside the models (a fusion and each of its members), by
        display name ``"<model> / <step>[ / <member>]"``; each appears once however many
        models share it."""
        found, seen = {}, set()
        for name, model in self.models.items():
            for label, segmenter, before in _segmenters_of(model):
                if id(segmenter) in seen:
                    continue
                seen.add(id(segmenter))
                found[f"{name} / {label}"] = (segmenter, before)
        return {label: segmenter for label, (segmenter, _) in found.items()}

    def segmentation_table(self) -> pd.DataFrame:
        """Segmentation quality of every segmenter inside the models, on every cohort.

        For each cohort whose DataFrame holds the segmenter's reference masks
        (``mask_col``; patients whose cell is empty are left out, ``n`` counts those
        scored): the per-image Dice and IoU of the predicted masks
        (:func:`~sklearn_alnm.metrics.dice_score`, :func:`~sklearn_alnm.metrics.iou_score`;
        an image whose reference and prediction are both empty scores 1), their mean and
        standard deviation. A fusion of segmenters
        (:class:`~sklearn_alnm.segmentation.SegmentationFusion`) gets a row and so does each
        of its members.

        Returns
        -------
        table : pandas.DataFrame
            Index ``(segmenter, cohort)``; columns ``n``, ``dice``, ``dice_sd``, ``iou``,
            ``iou_sd``. Empty when no model segments or no cohort has reference masks.
        """
        from ..io import read_column

        found = {}
        for name, model in self.models.items():
            for label, segmenter, before in _segmenters_of(model):
                found.setdefault(id(segmenter), (f"{name} / {label}", segmenter, before))
        # a fusion and its members share the steps before them and the reference masks:
        # each cohort is transformed and its masks decoded once per (steps, mask column)
        inputs, references = {}, {}
        rows, index = [], []
        for label, segmenter, before in found.values():
            mask_col = getattr(segmenter, "mask_col", None)
            for cohort, (X, _) in self.cohorts.items():
                if before is not None:
                    if (id(before), cohort) not in inputs:
                        inputs[id(before), cohort] = before.transform(X)
                    X = inputs[id(before), cohort]
                if not isinstance(X, pd.DataFrame) or mask_col not in X.columns:
                    continue
                with _prefixed_errors(f"segmenter {label!r}, cohort {cohort!r}"):
                    key = (id(before), cohort, mask_col)
                    if key not in references:
                        references[key] = read_column(
                            X, mask_col, kind="mask", binary=False, allow_missing=True
                        )
                    # patients without a reference mask (e.g. a test cohort an automatic
                    # model segments by itself) are left out of the scores, not an error
                    scored = [i for i, mask in enumerate(references[key]) if mask is not None]
                    if not scored:
                        continue
                    truth = [references[key][i] for i in scored]
                    pred = list(segmenter.predict(X.iloc[scored]))
                    dice = dice_score(truth, pred, average=None)
                    iou = iou_score(truth, pred, average=None)
                rows.append(
                    {
                        "n": len(truth),
                        "dice": float(np.nanmean(dice)),
                        "dice_sd": float(np.nanstd(dice, ddof=1)) if len(dice) > 1 else np.nan,
                        "iou": float(np.nanmean(iou)),
                        "iou_sd": float(np.nanstd(iou, ddof=1)) if len(iou) > 1 else np.nan,
                    }
                )
                index.append((label, cohort))
        names = ["segmenter", "cohort"]
        return pd.DataFrame(
            rows,
            index=pd.MultiIndex.from_tuples(index, names=names)
            if index
            else pd.MultiIndex.from_arrays([[], []], names=names),
            columns=["n", "dice", "dice_sd", "iou", "iou_sd"],
        )

    def plot_forest(self, cohorts: str | Sequence[str] | None = None) -> Figure:
        """Forest plot: every model's AUC with its DeLong interval, one marker per cohort.

        The primary model is named so on its row and its markers are outlined.

        Parameters
        ----------
        cohorts : str or list of str, default=None
            Cohorts to draw; default all, in order.

        Returns
        -------
        fig : matplotlib.figure.Figure
        """
        return _figures.forest_figure(self, self._select_cohorts(cohorts))

    def plot_delong_heatmap(self, cohorts: str | Sequence[str] | None = None) -> Figure:
        """Heat map of the unadjusted DeLong p-values between every pair of models.

        One matrix per cohort (as the multi-task study's comparison figure), coloured by
        :math:`-\\log_{10} p` and annotated with the p-values for up to 12 models. The
        p-values are those of :meth:`delong_table` (``layout="square"``), not corrected for
        the number of pairs: use :meth:`comparison_table` for the primary model's adjusted
        comparisons.

        Parameters
        ----------
        cohorts : str or list of str, default=None
            Cohorts to draw; default all, in order.

        Returns
        -------
        fig : matplotlib.figure.Figure
        """
        return _figures.delong_heatmap_figure(self, self._select_cohorts(cohorts))

    def delong_table(self, layout: str = "long") -> pd.DataFrame:
        """Pairwise DeLong tests between the models' AUCs, in each cohort.

        Each pair of models is compared on the same patients with
        :func:`~sklearn_alnm.metrics.delong_test` (two-sided; the interval of the AUC
        difference at ``confidence``). A cohort with fewer than two positive or two negative
        patients gets NaN rows, with a warning.

        Parameters
        ----------
        layout : {"long", "square"}, default="long"
            * ``"long"``: one row per cohort and pair of models ``model_1`` < ``model_2`` (in
              the order of ``models``), index ``(cohort, model_1, model_2)``, columns
              ``auc_1``, ``auc_2``, ``difference`` (``auc_1 - auc_2``), ``ci_low``,
              ``ci_high``, ``statistic`` (z) and ``pvalue``;
            * ``"square"``: the p-values as one symmetric matrix per cohort, index
              ``(cohort, model)``, one column per model, NaN on the diagonal.

        Returns
        -------
        table : pandas.DataFrame
            Empty in the long layout when there is a single model.

        Raises
        ------
        ValueError
            For an unknown ``layout``.
        """
        if layout not in ("long", "square"):
            raise ValueError(f"layout must be 'long' or 'square'; got {layout!r}.")
        names = list(self.models)
        rows, index = [], []
        for cohort, (_, y) in self.cohorts.items():
            is_pos = self._is_positive[cohort]
            enough = min(int(is_pos.sum()), int((~is_pos).sum())) >= 2
            if not enough and len(names) > 1:
                warnings.warn(
                    f"cohort {cohort!r}: DeLong's test needs at least two positive and two "
                    "negative patients; its p-values are NaN.",
                    UserWarning,
                    stacklevel=2,
                )
            for m1, m2 in combinations(names, 2):
                if enough:
                    result = delong_test(
                        y,
                        self.probabilities_[m1][cohort],
                        self.probabilities_[m2][cohort],
                        confidence=self.confidence,
                        pos_label=self.pos_label_,
                    )
                    row = {
                        "auc_1": result.auc_1,
                        "auc_2": result.auc_2,
                        "difference": result.difference,
                        "ci_low": result.ci_low,
                        "ci_high": result.ci_high,
                        "statistic": result.statistic,
                        "pvalue": result.pvalue,
                    }
                else:
                    row = dict.fromkeys(_DELONG_COLUMNS, np.nan)
                rows.append(row)
                index.append((cohort, m1, m2))
        long = pd.DataFrame(
            rows,
            index=pd.MultiIndex.from_tuples(index, names=["cohort", "model_1", "model_2"])
            if index
            else pd.MultiIndex.from_arrays([[], [], []], names=["cohort", "model_1", "model_2"]),
            columns=list(_DELONG_COLUMNS),
            dtype=float,
        )
        long.attrs = {"confidence": self.confidence, "alternative": "two-sided"}
        if layout == "long":
            return long
        blocks = {}
        for cohort in self.cohorts:
            square = pd.DataFrame(np.nan, index=names, columns=names)
            for m1, m2 in combinations(names, 2):
                p = long.loc[(cohort, m1, m2), "pvalue"]
                square.loc[m1, m2] = square.loc[m2, m1] = p
            blocks[cohort] = square
        result = pd.concat(blocks, names=["cohort", "model"])
        result.columns.name = "model"
        return result

    def readers_table(self, exact: bool | str = "auto") -> pd.DataFrame:
        """Each reader against each model, on every cohort the reader read.

        The reader's sensitivity, specificity and accuracy come from the 0/1 calls and the
        model's from its fixed threshold (both with
        :func:`~sklearn_alnm.metrics.binary_metrics`). The paired comparison counts the
        patients both classify correctly, only the reader does (:math:`b`), only the model
        does (:math:`c`) and neither does, and applies McNemar's test to :math:`b` and
        :math:`c` (statsmodels' :func:`~statsmodels.stats.contingency_tables.mcnemar`).

        Parameters
        ----------
        exact : "auto" or bool, default="auto"
            ``"auto"``: the exact binomial test when :math:`b + c < 25`, otherwise the
            chi-square statistic with continuity correction; ``True`` / ``False`` force one
            of them. Without discordant pairs (:math:`b + c = 0`) the exact test is always
            used (``p = 1``).

        Returns
        -------
        table : pandas.DataFrame
            Index ``(cohort, reader, model)``; columns ``n``, ``n_positive``,
            ``reader_sensitivity``, ``reader_specificity``, ``reader_accuracy``,
            ``model_sensitivity``, ``model_specificity``, ``model_accuracy``, ``threshold``,
            ``both_correct``, ``reader_only_correct``, ``model_only_correct``,
            ``both_wrong``, ``mcnemar_statistic`` (``min(b, c)`` for the exact test, the
            chi-square otherwise), ``mcnemar_pvalue`` and ``mcnemar_exact``. Empty when the
            report has no readers.

        Raises
        ------
        ValueError
            For an invalid ``exact``.
        """
        if not (exact == "auto" or isinstance(exact, bool)):
            raise ValueError(f"exact must be 'auto', True or False; got {exact!r}.")
        rows, index = [], []
        for cohort, (_, y) in self.cohorts.items():
            is_pos = self._is_positive[cohort]
            for reader, calls_by_cohort in self.readers.items():
                if cohort not in calls_by_cohort:
                    continue
                calls = calls_by_cohort[cohort]
                read = binary_metrics(is_pos, calls, 0.5, pos_label=True)
                reader_correct = (calls == 1) == is_pos
                for name in self.models:
                    threshold = self.thresholds_[name]
                    prob = self.probabilities_[name][cohort]
                    model = binary_metrics(y, prob, threshold, pos_label=self.pos_label_)
                    model_correct = (prob >= threshold) == is_pos
                    a = int(np.sum(reader_correct & model_correct))
                    b = int(np.sum(reader_correct & ~model_correct))
                    c = int(np.sum(~reader_correct & model_correct))
                    d = int(np.sum(~reader_correct & ~model_correct))
                    use_exact = (b + c < _MCNEMAR_EXACT_BELOW) if exact == "auto" else exact
                    use_exact = use_exact or b + c == 0
                    test = mcnemar([[a, b], [c, d]], exact=use_exact, correction=True)
                    rows.append(
                        {
                            "n": int(is_pos.shape[0]),
                            "n_positive": int(is_pos.sum()),
                            "reader_sensitivity": read["sensitivity"],
                            "reader_specificity": read["specificity"],
                            "reader_accuracy": read["accuracy"],
                            "model_sensitivity": model["sensitivity"],
                            "model_specificity": model["specificity"],
                            "model_accuracy": model["accuracy"],
                            "threshold": threshold,
                            "both_correct": a,
                            "reader_only_correct": b,
                            "model_only_correct": c,
                            "both_wrong": d,
                            "mcnemar_statistic": float(test.statistic),
                            "mcnemar_pvalue": float(test.pvalue),
                            "mcnemar_exact": bool(use_exact),
                        }
                    )
                    index.append((cohort, reader, name))
        names = ["cohort", "reader", "model"]
        return pd.DataFrame(
            rows,
            index=pd.MultiIndex.from_tuples(index, names=names)
            if index
            else pd.MultiIndex.from_arrays([[], [], []], names=names),
            columns=list(_READER_COLUMNS),
        )

    # ----------------------------------------------------------------------------------------
    # Figures
    # ----------------------------------------------------------------------------------------
    def plot_roc(
        self,
        cohorts: str | Sequence[str] | None = None,
        *,
        bands: bool = False,
        n_bootstraps: int = 1000,
        random_state: RandomStateLike = 0,
    ) -> Figure:
        """ROC curves of every model, one panel per cohort, with the readers' points.

        The legend reads ``"name AUC 0.85 (0.80-0.90)"`` (DeLong interval at
        ``confidence``); a dot on each curve marks the model's operating point at its
        threshold, and each reader who read the cohort appears as a marker at
        (1 - specificity, sensitivity). The diagonal is the chance line.

        Parameters
        ----------
        cohorts : str or list of str, default=None
            Cohorts to draw; default all, in order.
        bands : bool, default=False
            Shade each curve's pointwise confidence band at ``confidence``: the sensitivity
            at each specificity over stratified bootstrap resamples
            (:func:`~sklearn_alnm.metrics.roc_curve_ci`, as R pROC's ``ci.se``). The
            AUC interval in the legend stays DeLong's. :meth:`to_html` draws the bands for
            up to three models.
        n_bootstraps : int, default=1000
            Bootstrap replicates of the bands.
        random_state : int, RandomState instance or None, default=0
            Seed of the bands' resampling (an int: the same figure every time).

        Returns
        -------
        fig : matplotlib.figure.Figure
        """
        return _figures.roc_figure(
            self,
            self._select_cohorts(cohorts),
            bands=bool(bands),
            n_bootstraps=_check_int(n_bootstraps, "n_bootstraps", 1),
            random_state=random_state,
        )

    def plot_precision_recall(self, cohorts: str | Sequence[str] | None = None) -> Figure:
        """Precision-recall curves of every model, one panel per cohort.

        Precision (PPV) against recall (sensitivity) over all thresholds
        (:func:`sklearn.metrics.precision_recall_curve`, drawn as steps); the legend gives
        each model's average precision (:func:`sklearn.metrics.average_precision_score`).
        The dashed line is the prevalence, a model without skill; readers appear at
        (sensitivity, PPV). Useful beside ROC when positive patients are few.

        Parameters
        ----------
        cohorts : str or list of str, default=None
            Cohorts to draw; default all.

        Returns
        -------
        fig : matplotlib.figure.Figure
        """
        return _figures.precision_recall_figure(self, self._select_cohorts(cohorts))

    def plot_calibration(
        self,
        cohorts: str | Sequence[str] | None = None,
        *,
        n_bins: int | None = None,
        strategy: str = "quantile",
        layout: str = "auto",
    ) -> Figure:
        """Calibration: smooth curves of the observed against the predicted risk, with bands.

        Each model's curve is the flexible calibration curve of
        :func:`~sklearn_alnm.metrics.smooth_calibration_curve` with its pointwise confidence
        band (at ``confidence``); open circles are the observed rates in bins of predicted
        risk (:func:`~sklearn_alnm.metrics.calibration_table`, by default the ``n_groups``
        risk groups of the Hosmer-Lemeshow test). Each model's calibration slope (with its
        interval), intercept, Brier score and Hosmer-Lemeshow p-value are given in the legend
        (overlay) or in its panel (grid); see :meth:`calibration_summary`.

        Parameters
        ----------
        cohorts : str or list of str, default=None
            Cohorts to draw; default all.
        n_bins : int, default=None
            Number of bins of the points; default ``n_groups``.
        strategy : {"quantile", "uniform"}, default="quantile"
            Bin edges at quantiles of the predicted probability, or of equal width.
        layout : {"auto", "overlay", "grid"}, default="auto"
            ``"overlay"``: one panel per cohort holding every model; ``"grid"``: small
            multiples, one panel per model and cohort (each model's cohorts side by side);
            ``"auto"``: overlay for up to three models, otherwise the grid.

        Returns
        -------
        fig : matplotlib.figure.Figure
        """
        if layout not in ("auto", "overlay", "grid"):
            raise ValueError(f"layout must be 'auto', 'overlay' or 'grid'; got {layout!r}.")
        n_bins = self.n_groups if n_bins is None else n_bins
        return _figures.calibration_figure(
            self, self._select_cohorts(cohorts), n_bins, strategy, layout
        )

    def calibration_summary(self) -> pd.DataFrame:
        """Calibration of every model on every cohort: intercept, slope, Brier score, HL test.

        Calibration intercept (calibration-in-the-large) and slope with Wald intervals at
        ``confidence``, Brier and scaled Brier scores
        (:func:`~sklearn_alnm.metrics.calibration_metrics`), and the Hosmer-Lemeshow test of
        :meth:`metrics_table`.

        Returns
        -------
        table : pandas.DataFrame
            Index ``(model, cohort)``; columns ``intercept``, ``intercept_low``,
            ``intercept_high``, ``slope``, ``slope_low``, ``slope_high``, ``brier``,
            ``brier_scaled``, ``hl_statistic``, ``hl_pvalue``.
        """
        metrics = self.metrics_table()
        rows, index = [], []
        for name in self.models:
            for cohort, (_, y) in self.cohorts.items():
                with _prefixed_errors(f"model {name!r}, cohort {cohort!r}"):
                    row = calibration_metrics(
                        y,
                        self.probabilities_[name][cohort],
                        confidence=self.confidence,
                        pos_label=self.pos_label_,
                    )
                row["hl_statistic"] = metrics.loc[(name, cohort), "hl_statistic"]
                row["hl_pvalue"] = metrics.loc[(name, cohort), "hl_pvalue"]
                rows.append(row)
                index.append((name, cohort))
        return pd.DataFrame(rows, index=pd.MultiIndex.from_tuples(index, names=["model", "cohort"]))

    def plot_decision_curve(
        self, cohorts: str | Sequence[str] | None = None, *, thresholds: ArrayLike | None = None
    ) -> Figure:
        """Decision curves: net benefit of each model, of treating all and of treating none.

        Net benefits from :func:`~sklearn_alnm.metrics.decision_curve`. The y-axis spans
        from slightly below zero to slightly above the cohort's prevalence (the largest net
        benefit possible), so the informative range is not squashed by the steeply negative
        "treat all" curve.

        Parameters
        ----------
        cohorts : str or list of str, default=None
            Cohorts to draw; default all.
        thresholds : array-like of float, default=None
            Threshold probabilities in [0, 1); default ``0, 0.01, ..., 0.60``, the
            clinically relevant range (the legend stands below the axes).

        Returns
        -------
        fig : matplotlib.figure.Figure
        """
        return _figures.decision_curve_figure(self, self._select_cohorts(cohorts), thresholds)

    def plot_confusion_matrices(self, cohorts: str | Sequence[str] | None = None) -> Figure:
        """Confusion matrices at the fixed thresholds, in a grid.

        Each model's cohorts stand side by side, and as many models share a row as fit in
        six panels (three models with two cohorts), so many models make a grid rather than
        one long column. Cells hold the count and the percentage of the actual class (row);
        shading follows that percentage, in the model's colour.

        Parameters
        ----------
        cohorts : str or list of str, default=None
            Cohorts to draw; default all.

        Returns
        -------
        fig : matplotlib.figure.Figure
        """
        return _figures.confusion_figure(self, self._select_cohorts(cohorts))

    def plot_nomogram(self, model: str | None = None) -> Figure:
        """The nomogram of a model that can draw itself.

        A model qualifies when it (or, for a ``Pipeline``, its final step) has a ``plot()``
        method and a ``points_table`` attribute, as :class:`sklearn_alnm.clinical.Nomogram`.
        ``plot()`` is called without arguments (so the nomogram sizes its own figure) and must
        return a Figure or an Axes; only when its ``ax`` argument is required is it called
        with ``ax=`` on a new figure.

        Parameters
        ----------
        model : str, default=None
            Model name; default the first model that qualifies.

        Returns
        -------
        fig : matplotlib.figure.Figure

        Raises
        ------
        ValueError
            When no model (or not ``model``) qualifies.
        TypeError
            When ``plot()`` returns neither a Figure nor an Axes.
        """
        available = self.nomogram_models
        if model is None:
            if not available:
                raise ValueError(
                    "No model draws a nomogram (a plot() method and a points_table "
                    f"attribute); the models are {list(self.models)}."
                )
            model = available[0]
        elif model not in available:
            raise ValueError(
                f"model {model!r} does not draw a nomogram; the models that do are {available}."
            )
        return _figures.nomogram_figure(_nomogram_of(self.models[model]), model)

    def gradcam_cases(
        self, model: str, cohort: str | None = None, n_cases: int | None = None
    ) -> pd.DataFrame:
        """The cases :meth:`plot_gradcam` shows by default: right and wrong calls, not the
        ``n`` most confident positives.

        Taken in turn from the true positives (highest probability first), the false
        positives (highest first) and the false negatives (lowest first, the most clearly
        missed) at the model's threshold, until ``n_cases`` are chosen; true negatives
        (lowest first) only when the other kinds run out.

        Parameters
        ----------
        model : str
            Model name.
        cohort : str, default=None
            Cohort of the cases; default the last cohort.
        n_cases : int, default=None
            Number of cases; default ``gradcam`` or 4.

        Returns
        -------
        cases : pandas.DataFrame
            One row per case in the order shown: ``row`` (position in the cohort),
            ``patient`` (its id column, e.g. ``patient_id``, else its index label),
            ``label`` (true label), ``probability`` and
            ``outcome`` (``"TP"``, ``"FP"``, ``"FN"`` or ``"TN"``).
        """
        if model not in self.models:
            raise ValueError(f"unknown model {model!r}; the models are {list(self.models)}.")
        cohort = list(self.cohorts)[-1] if cohort is None else cohort
        if cohort not in self.cohorts:
            raise ValueError(f"unknown cohort {cohort!r}; the cohorts are {list(self.cohorts)}.")
        n = n_cases if n_cases is not None else (self.gradcam or 4)
        n = _check_int(n, "n_cases", 1)
        X, y = self.cohorts[cohort]
        prob = self.probabilities_[model][cohort]
        called = prob >= self.thresholds_[model]
        is_pos = self._is_positive[cohort]

        def ranked(mask, highest_first):
            rows = np.flatnonzero(mask)
            key = -prob[rows] if highest_first else prob[rows]
            return list(rows[np.argsort(key, kind="stable")])

        kinds = {
            "TP": ranked(is_pos & called, True),
            "FP": ranked(~is_pos & called, True),
            "FN": ranked(is_pos & ~called, False),
        }
        chosen = []
        while len(chosen) < n and any(kinds.values()):
            for kind, rows in kinds.items():
                if rows and len(chosen) < n:
                    chosen.append((rows.pop(0), kind))
        for row in ranked(~is_pos & ~called, False)[: n - len(chosen)]:
            chosen.append((row, "TN"))
        ids = _patient_ids(X, len(prob))
        labels = np.asarray(y)
        return pd.DataFrame(
            {
                "row": [int(r) for r, _ in chosen],
                "patient": [ids[r] for r, _ in chosen],
                "label": [labels[r] for r, _ in chosen],
                "probability": [float(prob[r]) for r, _ in chosen],
                "outcome": [kind for _, kind in chosen],
            }
        )

    def plot_gradcam(
        self,
        model: str | None = None,
        *,
        cohort: str | None = None,
        rows: Sequence[int] | None = None,
        n_cases: int | None = None,
    ) -> Figure:
        """Grad-CAM panel of chosen cases of an image or video model (input and heat-map
        overlay; for a video model each clip's key frame).

        Each case is titled with the patient (its id column, e.g. ``patient_id``, else the
        DataFrame's index label), its true label,
        whether the model's call at its threshold is a true or false positive or negative,
        and the predicted probability.

        Parameters
        ----------
        model : str, default=None
            Model name; default the first model in :attr:`gradcam_models`.
        cohort : str, default=None
            Cohort of the cases; default the last cohort.
        rows : sequence of int, default=None
            Positions of the cases in that cohort; default :meth:`gradcam_cases` (true
            positives, false positives and false negatives in turn).
        n_cases : int, default=None
            Number of cases when ``rows`` is None; default ``gradcam`` or 4.

        Returns
        -------
        fig : matplotlib.figure.Figure

        Raises
        ------
        ValueError
            When no model (or not ``model``) is an image model, or for an unknown cohort.
        """
        from ..explain import plot_gradcam

        available = self.gradcam_models
        if model is None:
            if not available:
                raise ValueError(
                    "No model is an image model that Grad-CAM can explain (prepare_images and "
                    f"module_); the models are {list(self.models)}."
                )
            model = available[0]
        elif model not in available:
            raise ValueError(
                f"model {model!r} is not an image model Grad-CAM can explain; those that are: "
                f"{available}."
            )
        if cohort is None:
            cohort = list(self.cohorts)[-1]
        if cohort not in self.cohorts:
            raise ValueError(f"unknown cohort {cohort!r}; the cohorts are {list(self.cohorts)}.")
        X, _ = self.cohorts[cohort]
        if isinstance(X, pd.DataFrame):  # panels named by patient id, not by row number
            X = X.set_axis(pd.Index(_patient_ids(X, len(X)), dtype=object))
        if rows is None:
            rows = self.gradcam_cases(model, cohort, n_cases)["row"].tolist()
        rows = [int(r) for r in rows]
        notes = self._case_notes(model, cohort, rows)
        if _is_bag_model(self.models[model]):
            from ..explain import plot_bag_cam

            fig = plot_bag_cam(
                self.models[model], X, rows=rows, class_index=self.pos_label_, notes=notes
            )
            fig.suptitle(f"CAM and MIL attention - {model} ({cohort})", fontweight="bold")
            return fig
        net, inputs = _image_model_of(self.models[model], X)
        # a position, not the label: integer labels would be read as output positions
        position = int(np.flatnonzero(np.asarray(net.classes_) == self.pos_label_)[0])
        if _is_multimodal(net):
            fig = _plot_multimodal_gradcam(net, inputs, rows, position, notes)
        else:
            fig = plot_gradcam(net, inputs, rows=rows, class_index=position, notes=notes, ncols=2)
        fig.suptitle(f"Grad-CAM - {model} ({cohort})", fontweight="bold")
        return fig

    def _case_notes(self, model, cohort, rows):
        """``"true N+, TP"`` for each case: its label and the model's call at its threshold."""
        labels = np.asarray(self._labels(cohort))
        prob = self.probabilities_[model][cohort]
        is_pos = self._is_positive[cohort]
        notes = []
        for r in rows:
            called = prob[r] >= self.thresholds_[model]
            kind = ("T" if called == is_pos[r] else "F") + ("P" if called else "N")
            notes.append(f"true {self.label_name(labels[r])}, {kind}")
        return notes

    # ----------------------------------------------------------------------------------------
    # HTML
    # ----------------------------------------------------------------------------------------
    def to_html(self, folder: FilePath, *, dpi: int = 150) -> Path:
        """Write the report into ``folder``: ``index.html``, PNG figures and CSV tables.

        The page (a jinja2 template) opens with the key findings (the primary model's AUC,
        sensitivity and specificity in each evaluation cohort against its best comparator,
        with NRI and IDI) and the forest plot of every model's AUC, then holds the cohort
        summary, the formatted performance table, the primary model's DeLong comparisons and
        reclassification (the full matrix of pairs collapsed), the readers (McNemar, Cohen's
        kappa), the figures with the calibration table, segmentation quality, patient
        characteristics and odds ratios, nomograms and Grad-CAM panels. Long tables are
        collapsed (``<details>``). Figures are separate PNG files beside
        ``index.html``, referenced by relative paths (so the folder can be moved, zipped or
        opened offline, and the figures reused in a manuscript); nothing is fetched from the
        web. Files written:

        * ``index.html``;
        * ``forest.png`` (:meth:`plot_forest`), ``roc.png`` (:meth:`plot_roc`, with bootstrap
          bands for up to three models), ``precision_recall.png``, ``calibration.png``,
          ``decision_curve.png``, ``confusion_matrices.png``, ``delong_heatmap.png``
          (:meth:`plot_delong_heatmap`, with two models or more), ``nomogram_<model>.png``
          per nomogram model and ``gradcam_<model>.png`` per image model (when ``gradcam`` is
          set);
        * ``key_findings.csv`` (:meth:`key_findings`), ``comparison.csv``
          (:meth:`comparison_table`), ``reclassification.csv`` (:meth:`reclassification_table`,
          with two models or more), ``metrics.csv`` (numeric :meth:`metrics_table`),
          ``metrics_formatted.csv``, ``calibration.csv`` (:meth:`calibration_summary`),
          ``delong.csv`` (long :meth:`delong_table`), ``readers.csv`` and ``agreement.csv``
          (:meth:`readers_table`, :meth:`agreement_table`; when there are readers),
          ``segmentation.csv`` (:meth:`segmentation_table`, when a model segments and the
          cohorts hold reference masks), ``baseline.csv`` and ``odds_ratios.csv``
          (:meth:`baseline_table`, :meth:`odds_ratio_table`; with ``clinical``),
          ``nomogram_<model>_points.csv`` (when ``points_table`` is a table).

        ``<model>`` is the model name reduced to letters, digits, ``-`` and ``_``.

        Writing is all-or-nothing: every file is first written into a hidden temporary
        folder inside ``folder`` and moved into place only when all of them succeeded. On an
        error the temporary folder is removed, as is ``folder`` (and parents) if this call
        created it; an existing folder keeps its previous content. Existing files with the
        names above are replaced; nothing is written outside ``folder``.

        Parameters
        ----------
        folder : str or os.PathLike
            Output folder; created (with its parents) if missing.
        dpi : int, default=150
            Resolution of the PNG figures.

        Returns
        -------
        path : pathlib.Path
            Path of ``index.html``.

        Raises
        ------
        ValueError
            When ``folder`` exists and is not a folder, or ``dpi`` is not a positive integer.

        Examples
        --------
        >>> import tempfile
        >>> from pathlib import Path
        >>> from sklearn.datasets import make_classification
        >>> from sklearn.linear_model import LogisticRegression
        >>> from sklearn_alnm.report import StudyReport
        >>> X, y = make_classification(n_samples=120, random_state=0)
        >>> model = LogisticRegression().fit(X[:80], y[:80])
        >>> report = StudyReport({"logistic": model},
        ...                      {"training": (X[:80], y[:80]), "test": (X[80:], y[80:])})
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     index = report.to_html(Path(tmp) / "report", dpi=50)
        ...     sorted(p.name for p in index.parent.iterdir())  # doctest: +NORMALIZE_WHITESPACE
        ['calibration.csv', 'calibration.png', 'comparison.csv', 'confusion_matrices.png',
         'decision_curve.png', 'delong.csv', 'forest.png', 'index.html', 'key_findings.csv',
         'metrics.csv', 'metrics_formatted.csv', 'precision_recall.png', 'roc.png']
        """
        dpi = _check_int(dpi, "dpi", 1)
        folder = Path(os.fspath(folder))
        if folder.exists() and not folder.is_dir():
            raise ValueError(f"{str(folder)!r} exists and is not a folder.")
        created = _make_folder(folder)
        tmp = None
        try:
            tmp = Path(tempfile.mkdtemp(prefix=".report-", dir=folder))
            names = self._write(tmp, dpi)
            for name in names:
                os.replace(tmp / name, folder / name)
            tmp.rmdir()
        except BaseException:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
            for path in reversed(created):
                try:
                    path.rmdir()
                except OSError:
                    break
            raise
        logger.info("Wrote the study report to %s", folder)
        return folder / "index.html"

    def _write(self, out, dpi):
        """Write every file of the report into ``out``; return their names (index last)."""
        written = []

        def save_csv(frame, name):
            frame.to_csv(out / name)
            written.append(name)

        def save_figure(fig, name):
            try:
                fig.savefig(out / name, dpi=dpi, facecolor="white")
            finally:
                _figures.release(fig)
            written.append(name)

        metrics = self.metrics_table()
        formatted = self.metrics_table(formatted=True)
        delong = self.delong_table()
        comparison = self._comparison_from(delong)  # one set of DeLong tests for the page
        reclassification = self.reclassification_table()
        findings = self._key_findings_from(comparison, reclassification)
        readers = self.readers_table() if self.readers else None
        agreement = self.agreement_table() if self.readers else None
        calibration = self.calibration_summary()
        segmentation = self.segmentation_table()
        baseline = self.baseline_table() if self.clinical_ else None
        odds_ratios = self.odds_ratio_table() if self.clinical_ else None
        save_csv(metrics, "metrics.csv")
        save_csv(formatted, "metrics_formatted.csv")
        save_csv(delong, "delong.csv")
        save_csv(comparison, "comparison.csv")
        save_csv(findings, "key_findings.csv")
        save_csv(calibration, "calibration.csv")
        if len(reclassification):
            save_csv(reclassification, "reclassification.csv")
        if readers is not None:
            save_csv(readers, "readers.csv")
            save_csv(agreement, "agreement.csv")
        if len(segmentation):
            save_csv(segmentation, "segmentation.csv")
        if baseline is not None:
            save_csv(baseline, "baseline.csv")
            save_csv(odds_ratios, "odds_ratios.csv")

        save_figure(self.plot_forest(), "forest.png")
        figures = []
        bands = len(self.models) <= _ROC_BAND_MODELS
        for name, draw in (
            ("roc.png", lambda: self.plot_roc(bands=bands)),
            ("precision_recall.png", self.plot_precision_recall),
            ("calibration.png", self.plot_calibration),
            ("decision_curve.png", self.plot_decision_curve),
            ("confusion_matrices.png", self.plot_confusion_matrices),
            *((("delong_heatmap.png", self.plot_delong_heatmap),) if len(self.models) > 1 else ()),
        ):
            save_figure(draw(), name)
            figures.append(name)

        nomograms = []
        taken = set()
        for model in self.nomogram_models:
            slug = _slug(model, taken)
            png = f"nomogram_{slug}.png"
            save_figure(self.plot_nomogram(model), png)
            points = _points_frame(_nomogram_of(self.models[model]))
            csv = None
            if points is not None:
                csv = f"nomogram_{slug}_points.csv"
                save_csv(points, csv)
            nomograms.append((model, png, points, csv))

        gradcams = []
        if self.gradcam:
            for model in self.gradcam_models:
                png = f"gradcam_{_slug(model, taken)}.png"
                save_figure(self.plot_gradcam(model), png)
                if _is_bag_model(self.models[model]):
                    gradcams.append((model, png, "bag"))
                    continue
                net = _image_model_of(self.models[model])[0]
                kind = "video" if callable(getattr(net, "prepare_clips", None)) else None
                kind = "multimodal" if _is_multimodal(net) else kind
                gradcams.append((model, png, kind))

        page = _html.render_page(
            self,
            metrics=metrics,
            formatted=formatted,
            delong=delong,
            readers=readers,
            figures=figures,
            findings=findings,
            comparison=comparison,
            reclassification=reclassification,
            agreement=agreement,
            calibration=calibration,
            segmentation=segmentation,
            baseline=baseline,
            odds_ratios=odds_ratios,
            forest="forest.png",
            nomograms=nomograms,
            gradcams=gradcams,
            files=list(written),
            generated=datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        )
        (out / "index.html").write_text(page, encoding="utf-8")
        written.append("index.html")
        return written


#: The HTML page shades the ROC curves' bootstrap bands for up to this many models.
_ROC_BAND_MODELS = 3

#: Multiplicity adjustments of :meth:`StudyReport.comparison_table` (statsmodels' names).
_ADJUSTMENTS = ("holm", "fdr_bh", "bonferroni", None)


def _check_gradcam(value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"gradcam must be None or a positive integer; got {value!r}.")
    return int(value)


def _image_model_of(model, X=None):
    """``(network estimator, its input)`` of an image model, or None.

    The estimator itself when it has ``prepare_images`` (or, for clips, ``prepare_clips``)
    and ``module_`` (fitted), or the last step of a ``Pipeline`` whose earlier steps then
    transform ``X``.
    """

    def is_image_model(candidate):
        prepare = getattr(candidate, "prepare_images", None) or getattr(
            candidate, "prepare_clips", None
        )
        if prepare is None and _is_multimodal(candidate):
            prepare = candidate.prepare_inputs
        return callable(prepare) and getattr(candidate, "module_", None) is not None

    try:
        if is_image_model(model):
            return model, X
        steps = getattr(model, "steps", None)
        if isinstance(steps, list) and steps and is_image_model(steps[-1][1]):
            return steps[-1][1], (None if X is None else model[:-1].transform(X))
    except Exception:  # an unfitted or unusual model is simply not an image model
        return None
    return None


def _is_bag_model(model):
    """A fitted multi-task bag model, or a pipeline holding one (explained by its image
    head's CAM and, after a MIL step, the attention weights)."""
    candidates = [model] + [step for _, step in getattr(model, "steps", None) or []]
    return any(
        callable(getattr(c, "class_activation_maps", None)) and hasattr(c, "net_")
        for c in candidates
    )


def _is_multimodal(model):
    """A fused model of several image branches (explained branch by branch)."""
    return callable(getattr(model, "_gradcam_view", None)) and hasattr(model, "prepare_inputs")


def _plot_multimodal_gradcam(model, X, rows, class_index, notes=None):
    """One row per patient: each branch's image and the fused model's map on it."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    from ..explain import plot_gradcam

    names = list(model.module_.names)
    width = 2 * len(names)
    fig = Figure(figsize=(2.2 * width + 0.8, 2.4 * len(rows)), layout="constrained")
    grid = fig.subplots(len(rows), width, squeeze=False)
    for k, name in enumerate(names):
        axes = grid[:, 2 * k : 2 * k + 2].ravel()
        plot_gradcam(
            model, X, rows=rows, class_index=class_index, branch=name, ax=axes, notes=notes
        )
        for a in axes[::2]:
            a.set_title(f"{name}: {a.get_title()}", fontsize=9)
    present = model.input_.presence(X.iloc[rows]) if len(rows) else None
    for i, k in np.argwhere(~present) if present is not None else []:
        for a in grid[i, 2 * k : 2 * k + 2]:
            a.set_title(f"{names[k]}: absent", fontsize=9)
    fig.colorbar(
        ScalarMappable(norm=Normalize(0.0, 1.0), cmap="jet"),
        ax=list(grid.ravel()),
        shrink=0.8,
        label="Grad-CAM",
    )
    return fig


def _patient_ids(X, n):
    """The id of each row: the cohort's id column (e.g. ``patient_id``), else its index."""
    if isinstance(X, pd.DataFrame):
        from ..io import cohort_row_ids

        return cohort_row_ids(X)
    return list(range(n))


def _segmenters_of(model):
    """``(label, fitted segmenter, steps before it or None)`` for each segmenter in ``model``:
    the model itself, or a step of a ``Pipeline``; a fusion is followed by its members."""
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    from ..segmentation._base import SegmentationOutputMixin

    candidates = [("segmenter", model, None)]
    steps = getattr(model, "steps", None)
    if isinstance(steps, list):
        candidates = [(step, est, model[:k] if k else None) for k, (step, est) in enumerate(steps)]
    found = []
    for label, est, before in candidates:
        if not isinstance(est, SegmentationOutputMixin):
            continue
        try:
            check_is_fitted(est)
        except NotFittedError:
            continue
        members = getattr(est, "named_segmenters_", None)
        found.append((label, est, before))
        for member, fitted in (members or {}).items():
            found.append((f"{label} / {member}", fitted, before))
    return found


def _nomogram_of(model):
    """The object drawing ``model``'s nomogram, or None (duck-typed: plot + points_table)."""
    candidates = [model]
    steps = getattr(model, "steps", None)
    if isinstance(steps, list) and steps:
        candidates.append(steps[-1][1])
    for candidate in candidates:
        try:
            has_table = hasattr(candidate, "points_table")
        except Exception:  # a property that fails counts as absent
            has_table = False
        if has_table and callable(getattr(candidate, "plot", None)):
            return candidate
    return None


def _points_frame(nomogram):
    """``points_table`` as a DataFrame, or None when it is not tabular."""
    table = nomogram.points_table
    if callable(table):
        table = table()
    if isinstance(table, pd.DataFrame):
        return table
    if isinstance(table, pd.Series):
        return table.to_frame()
    return None
