"""``alnm run``: a whole study from one configuration file.

A study configuration (YAML) names the cohort manifest, the label, how patients are split
into cohorts, and the models (recipes or any estimator factory with parameters). Everything
that can be checked is checked before any long work starts, and reported as one
:class:`StudyConfigError` line: unknown keys, a missing manifest or referenced file, a missing
column, an unknown recipe, parameters a recipe does not take.

Example configuration::

    title: Mammography fusion
    manifest: cohort/manifest.csv     # relative to this file
    label: label                      # 0/1 labels; otherwise {column: ALN status, positive: N+}
    split: {by: cohort, train: training}        # hold-out cohorts from a column ...
    # split: {kfold: 5, group_column: patient_id, random_state: 0}   # ... or grouped K-fold
    models:
      Clinical: {recipe: clinical}
      Post-fusion:
        recipe: mammography_fusion
        params: {kind: post, cache: cache}
    primary: Post-fusion              # saved as model.joblib (default: the last model)
    clinical: [age, tumor_size_mm, er]  # optional: Table 1 and odds ratios in the report
    parallel: {backend: dask, scheduler: "tcp://host:8786"}  # optional: work on a cluster
    output: results                   # default: <config name>-results beside the file

A configuration is code: its models are built by calling the factories it names. Only
estimator factories of sklearn_alnm, scikit-learn, imbalanced-learn and xgboost (classes that
are estimators, ``make_*`` functions, the recipes) can be named; any other module needs an explicit
``allow_factories=[module]`` (``alnm run --allow-factory MODULE``), and nothing is called before
that check. Run configurations only from people you trust, as you would run their scripts.
"""

import contextlib
import hashlib
import importlib
import inspect
import json
import os
import re
import shutil
import signal
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__
from ._logging import get_logger
from .utils import is_conventional_labels, resolve_pos_label

_log = get_logger(__name__)

_TOP_KEYS = {
    "title",
    "manifest",
    "id_column",
    "label",
    "split",
    "models",
    "primary",
    "output",
    "clinical",
    "parallel",
}
_MODEL_KEYS = {"recipe", "factory", "params"}
_SPLIT_KEYS = {"by", "train", "kfold", "group_column", "random_state", "allow_shared_patients"}
# Packages whose estimator factories a configuration may name without an explicit opt-in.
_TRUSTED_PACKAGES = ("sklearn_alnm", "sklearn", "imblearn", "xgboost")


class StudyConfigError(ValueError):
    """A problem in a study configuration, found before any model is fitted."""


def _recipes():
    from . import recipes
    from .clinical import make_clinical_pipeline

    found = {"clinical": make_clinical_pipeline}
    for name, func in vars(recipes).items():
        if (
            inspect.isfunction(func)
            and not name.startswith("_")
            and func.__module__ == recipes.__name__
        ):
            found[name] = func
    return found


def _in_packages(module_name, packages):
    return any(module_name == p or module_name.startswith(f"{p}.") for p in packages)


def _resolve_factory(spec, where, allowed=()):
    """The estimator factory ``'module:name'`` names, imported only from allowed packages.

    Nothing is imported or called before the module is known to be allowed: the packages of
    ``_TRUSTED_PACKAGES`` and those in ``allowed``. From trusted packages only estimator
    classes, ``make_*`` functions and the recipes qualify.
    """
    if not isinstance(spec, str):
        raise StudyConfigError(f"{where}: factory must be a string 'package.module:function'.")
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr or not re.fullmatch(r"[A-Za-z_][\w.]*", module_name):
        raise StudyConfigError(
            f"{where}: factory must look like 'package.module:function'; got {spec!r}."
        )
    trusted = _in_packages(module_name, _TRUSTED_PACKAGES)
    if not trusted and not _in_packages(module_name, allowed):
        raise StudyConfigError(
            f"{where}: factory {spec!r} is not an estimator factory of "
            f"{', '.join(_TRUSTED_PACKAGES)}. A configuration is code: to call functions of "
            f"{module_name!r}, allow it explicitly (alnm run --allow-factory {module_name})."
        )
    if attr.startswith("_") or not re.fullmatch(r"[A-Za-z]\w*", attr):
        raise StudyConfigError(f"{where}: factory {spec!r} names a private or invalid attribute.")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise StudyConfigError(f"{where}: cannot import {module_name!r} ({exc}).") from None
    try:
        factory = getattr(module, attr)
    except AttributeError:
        raise StudyConfigError(f"{where}: {module_name!r} has no attribute {attr!r}.") from None
    if trusted:
        is_estimator_class = inspect.isclass(factory) and hasattr(factory, "fit")
        is_builder = inspect.isfunction(factory) and (
            attr.startswith("make_") or factory.__module__ == "sklearn_alnm.recipes"
        )
        if not (is_estimator_class or is_builder):
            raise StudyConfigError(
                f"{where}: {spec!r} is neither an estimator class nor a make_* estimator factory."
            )
    elif not callable(factory):
        raise StudyConfigError(f"{where}: {spec!r} is not callable.")
    return factory


def _resolve_paths(params, base):
    """Make the ``cache`` parameters (at any depth) relative to the configuration's folder."""
    if isinstance(params, dict):
        return {
            k: (
                str(base / v)
                if k == "cache" and isinstance(v, str) and not os.path.isabs(v)
                else _resolve_paths(v, base)
            )
            for k, v in params.items()
        }
    return params


def _column_params(estimator):
    """``(parameter, column)`` pairs of the ``*_col`` parameters a (nested) estimator reads.

    Columns that a step writes (``output_col``, ``output_mask_col``, ...: a segmenter's
    predicted masks, a cropper's regions) are not expected in the manifest, nor are the
    parameters of later steps that read them.
    """
    if not hasattr(estimator, "get_params"):
        return []
    columns = [
        (key, value)
        for key, value in estimator.get_params(deep=True).items()
        if re.search(r"(^|__)\w*_col$", key) and isinstance(value, str)
    ]
    written = {value for key, value in columns if re.search(r"(^|__)output\w*_col$", key)}
    return [(key, value) for key, value in columns if value not in written]


class Study:
    """A parsed and validated study configuration (see the module docstring).

    Parameters
    ----------
    path : str or os.PathLike
        The YAML file.
    output : str, os.PathLike or None
        Output folder overriding the configuration's ``output``.
    allow_factories : sequence of str, default=()
        Modules besides sklearn_alnm, scikit-learn, imbalanced-learn and xgboost whose
        functions the configuration may call as factories.
    parallel : mapping or None, default=None
        Overrides the configuration's ``parallel`` setting
        (:func:`~sklearn_alnm.utils.check_parallel_spec`).
    """

    def __init__(self, path, output=None, *, allow_factories=(), parallel=None):
        import yaml

        self.allow_factories = tuple(allow_factories)
        self.path = Path(path)
        if not self.path.is_file():
            raise StudyConfigError(f"configuration file not found: {os.fspath(path)!r}.")
        try:
            config = yaml.safe_load(self.path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise StudyConfigError(
                f"{self.path.name}: not valid YAML ({exc}).".replace("\n", " ")
            ) from None
        if not isinstance(config, dict):
            raise StudyConfigError(
                f"{self.path.name}: expected a mapping of settings at the top level."
            )
        unknown = sorted(set(config) - _TOP_KEYS)
        if unknown:
            raise StudyConfigError(
                f"{self.path.name}: unknown setting(s) {unknown}; allowed: {sorted(_TOP_KEYS)}."
            )
        self.config = config
        self.base = self.path.resolve().parent
        self.title = str(config.get("title", self.path.stem))
        self.output = (
            Path(output)
            if output is not None
            else self.base / config.get("output", f"{self.path.stem}-results")
        )
        self._parse_parallel(parallel)
        self._load_cohort()
        self._parse_clinical()
        self._parse_split()
        self._build_models()
        self._check_output()

    # -- validation steps -------------------------------------------------------------------
    def _load_cohort(self):
        from .io import load_manifest

        manifest = self.config.get("manifest")
        if not manifest:
            raise StudyConfigError(f"{self.path.name}: 'manifest' (the cohort table) is required.")
        manifest_path = self.base / manifest
        if not manifest_path.is_file():
            raise StudyConfigError(f"manifest not found: {os.fspath(manifest_path)!r}.")
        id_col = self.config.get("id_column", "auto")
        try:
            table = load_manifest(manifest_path, check_files=True, id_col=id_col)
        except ValueError as exc:
            raise StudyConfigError(f"manifest {manifest_path.name}: {exc}") from None
        label = self.config.get("label", "label")
        spec = label if isinstance(label, dict) else {"column": label}
        column, positive = spec.get("column", "label"), spec.get("positive")
        if column not in table.columns:
            raise StudyConfigError(
                f"label column {column!r} is not in the manifest; columns: {list(table.columns)}."
            )
        y = table.pop(column)
        if y.isna().any():
            rows = list(table.index[y.isna()][:5])
            raise StudyConfigError(f"label column {column!r} is empty for rows {rows}.")
        classes = sorted(pd.unique(y), key=str)
        if len(classes) != 2:
            raise StudyConfigError(
                f"label column {column!r} must hold two classes; found {classes}."
            )
        if positive is None:
            if not is_conventional_labels(classes):
                raise StudyConfigError(
                    f"label column {column!r} holds {[str(c) for c in classes]}: say which one "
                    f"is the event, e.g. label: {{column: {column}, positive: {classes[0]}}} "
                    "(the positive class is never guessed from the labels' order)."
                )
            positive = True if any(isinstance(c, (bool, np.bool_)) for c in classes) else 1
        elif positive not in classes and str(positive) not in map(str, classes):
            raise StudyConfigError(
                f"positive label {positive!r} is not among the labels {classes}."
            )
        self.X, self.y_raw = table, y
        self.positive = next(c for c in classes if str(c) == str(positive))
        self.y = (y.map(str) == str(self.positive)).to_numpy().astype(int)
        self.label_column = column

    def _parse_split(self):
        split = self.config.get("split")
        if not isinstance(split, dict):
            raise StudyConfigError(
                "'split' is required: {by: <column>, train: <value>} or "
                "{kfold: <k>, group_column: <column>}."
            )
        unknown = sorted(set(split) - _SPLIT_KEYS)
        if unknown:
            raise StudyConfigError(
                f"split: unknown setting(s) {unknown}; allowed: {sorted(_SPLIT_KEYS)}."
            )
        if "by" in split:
            column = split["by"]
            if column not in self.X.columns:
                raise StudyConfigError(f"split column {column!r} is not in the manifest.")
            values = self.X[column].astype(str)
            train = str(split.get("train", "training"))
            if train not in set(values):
                raise StudyConfigError(
                    f"split: no row has {column} == {train!r}; values: {sorted(set(values))}."
                )
            order = [train] + [v for v in dict.fromkeys(values) if v != train]
            self.cohorts = {v: np.flatnonzero(values.to_numpy() == v) for v in order}
            for name, rows in self.cohorts.items():
                if len(set(self.y[rows])) != 2:
                    raise StudyConfigError(f"cohort {name!r} does not contain both classes.")
            if not split.get("allow_shared_patients", False):
                self._check_disjoint_patients()
            self.kfold = None
        elif "kfold" in split:
            from .fusion import GroupColumnKFold

            k = split["kfold"]
            if not isinstance(k, int) or k < 2:
                raise StudyConfigError(f"split.kfold must be an integer >= 2; got {k!r}.")
            group = split.get("group_column", "patient_id" if "patient_id" in self.X else None)
            if group is not None and group not in self.X.columns:
                raise StudyConfigError(f"split.group_column {group!r} is not in the manifest.")
            self.kfold = GroupColumnKFold(
                group, n_splits=k, random_state=split.get("random_state", 0)
            )
            self.cohorts = None
        else:
            raise StudyConfigError("split needs either 'by' (hold-out by a column) or 'kfold'.")

    def _check_disjoint_patients(self):
        """A patient (id) in the training cohort must not reappear in an evaluation cohort."""
        from .io import resolve_id_column

        id_column = resolve_id_column(self.X, self.config.get("id_column", "auto"))
        if id_column is None:
            return
        ids = self.X[id_column].astype(str).to_numpy()
        names = list(self.cohorts)
        train = set(ids[self.cohorts[names[0]]])
        for name in names[1:]:
            shared = sorted(train & set(ids[self.cohorts[name]]))
            if shared:
                raise StudyConfigError(
                    f"{len(shared)} patient id(s) of column {id_column!r} are in both the "
                    f"training cohort {names[0]!r} and cohort {name!r} (e.g. {shared[:3]}): the "
                    "evaluation would not be independent. Fix the split, or set "
                    "split.allow_shared_patients: true if the rows are distinct patients."
                )

    def _build_models(self):
        models = self.config.get("models")
        if not isinstance(models, dict) or not models:
            raise StudyConfigError("'models' must map model names to {recipe: ..., params: {...}}.")
        recipes = _recipes()
        self.models = {}
        for name, spec in models.items():
            where = f"model {name!r}"
            spec = {"recipe": spec} if isinstance(spec, str) else spec
            if (
                not isinstance(spec, dict)
                or set(spec) - _MODEL_KEYS
                or not (set(spec) & {"recipe", "factory"})
            ):
                raise StudyConfigError(
                    f"{where}: expected {{recipe: NAME, params: {{...}}}} or "
                    "{factory: 'module:function'}."
                )
            if "recipe" in spec:
                if spec["recipe"] not in recipes:
                    raise StudyConfigError(
                        f"{where}: unknown recipe {spec['recipe']!r}; available: {sorted(recipes)}."
                    )
                factory = recipes[spec["recipe"]]
            else:
                factory = _resolve_factory(spec["factory"], where, self.allow_factories)
            params = spec.get("params") or {}
            if not isinstance(params, dict):
                raise StudyConfigError(
                    f"{where}: params must be a mapping of parameter names to values; got "
                    f"{type(params).__name__} {params!r}."
                )
            params = _resolve_paths(params, self.base)
            try:
                inspect.signature(factory).bind(**params)
            except TypeError as exc:
                raise StudyConfigError(
                    f"{where}: invalid parameters for {factory.__name__}: {exc}."
                ) from None
            try:
                estimator = factory(**params)
                if hasattr(estimator, "set_params") and hasattr(estimator, "get_params"):
                    _check_param_types(estimator)
            except (TypeError, ValueError) as exc:
                raise StudyConfigError(f"{where}: {exc}") from None
            if not (hasattr(estimator, "fit") and hasattr(estimator, "predict_proba")):
                raise StudyConfigError(
                    f"{where}: {factory.__name__} did not build a classifier with fit and "
                    f"predict_proba (got {type(estimator).__name__})."
                )
            for key, column in _column_params(estimator):
                if column not in self.X.columns:
                    raise StudyConfigError(
                        f"{where}: parameter {key} names column {column!r}, which is not in "
                        "the manifest."
                    )
            self.models[name] = estimator
        slugs = {}
        for name in self.models:
            other = slugs.setdefault(_slug(name), name)
            if other != name:
                raise StudyConfigError(
                    f"model names {other!r} and {name!r} would both be saved as "
                    f"models/{_slug(name)}.joblib; rename one."
                )
        self.primary = self.config.get("primary", list(self.models)[-1])
        if self.primary not in self.models:
            raise StudyConfigError(
                f"primary model {self.primary!r} is not among {list(self.models)}."
            )

    def _check_output(self):
        _check_output_path(self.output, folder=True)

    def _parse_parallel(self, override):
        from .utils import check_parallel_spec

        spec = override if override is not None else self.config.get("parallel")
        try:
            self.parallel = None if spec is None else check_parallel_spec(spec)
        except ValueError as exc:
            raise StudyConfigError(str(exc)) from None

    def _parse_clinical(self):
        clinical = self.config.get("clinical")
        if clinical is None:
            self.clinical = None
            return
        if isinstance(clinical, str):
            clinical = [clinical]
        if not isinstance(clinical, list) or not all(isinstance(c, str) for c in clinical):
            raise StudyConfigError(
                f"clinical: expected a list of manifest columns, e.g. [age, er]; got {clinical!r}."
            )
        if self.label_column in clinical:
            raise StudyConfigError(
                f"clinical: {self.label_column!r} is the label column, not a patient "
                "characteristic."
            )
        from .io import is_id_column_name

        ids = [c for c in clinical if is_id_column_name(c)]
        if ids:
            raise StudyConfigError(
                f"clinical: {ids} name patients (an id column), not a characteristic."
            )
        missing = [c for c in clinical if c not in self.X.columns]
        if missing:
            raise StudyConfigError(
                f"clinical: column(s) {missing} are not in the manifest; columns: "
                f"{list(self.X.columns)}."
            )
        self.clinical = clinical


def _check_param_types(estimator):
    """Validate the parameters of a built estimator (and its nested ones) before fitting, so
    that a wrong type in a YAML ``params`` entry fails now, in one line."""
    from sklearn.base import BaseEstimator

    seen = [estimator]
    seen += [v for v in estimator.get_params(deep=True).values() if isinstance(v, BaseEstimator)]
    for item in seen:
        if hasattr(item, "_validate_params") and getattr(item, "_parameter_constraints", None):
            try:
                item._validate_params()
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{type(item).__name__}: {exc}".replace("\n", " ")) from None


def _check_output_path(path, *, folder):
    """One-line error for an output that cannot be written: under a file, or unwritable."""
    path = Path(path)
    if path.exists() and folder and not path.is_dir():
        raise StudyConfigError(f"output {os.fspath(path)!r} exists and is not a folder.")
    if path.is_dir() and not folder:
        raise StudyConfigError(f"output {os.fspath(path)!r} is a folder, not a file.")
    parent = path.resolve().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise StudyConfigError(
            f"output {os.fspath(path)!r} lies under {os.fspath(parent)!r}, which is a file."
        )
    if not os.access(parent, os.W_OK):
        raise StudyConfigError(f"output {os.fspath(path)!r} is not writable.")


#: Distributions whose versions ``model.json`` records (a pickle is only safe to load with
#: the versions that wrote it).
RECORDED_PACKAGES = ("sklearn_alnm", "scikit-learn", "torch", "skorch", "pyradiomics")


def package_versions(packages=RECORDED_PACKAGES):
    """Installed version of each distribution in ``packages`` (``None`` if absent).

    Returns
    -------
    dict of str to str or None
    """
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for name in packages:
        try:
            versions[name] = __version__ if name == "sklearn_alnm" else version(name)
        except PackageNotFoundError:
            versions[name] = None
    return versions


def file_sha256(path):
    """SHA-256 of a file, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _load_model(model_path, meta, trust):
    """Unpickle a model only when its recorded hash matches (or the user trusts the file)."""
    import joblib

    name = model_path.name
    if model_path.stat().st_size == 0:
        raise StudyConfigError(f"model file {name} is empty.")
    recorded = meta.get("sha256")
    if not trust:
        if recorded is None:
            raise StudyConfigError(
                f"{name} has no model.json recording its SHA-256 (written by 'alnm run'). "
                "Loading a model file can run arbitrary code: pass --trust only for a file "
                "from a source you trust."
            )
        actual = file_sha256(model_path)
        if actual != recorded:
            raise StudyConfigError(
                f"{name}: SHA-256 {actual[:12]}... does not match the {recorded[:12]}... that "
                f"{model_path.with_suffix('.json').name} records; the file was changed or "
                "replaced. Loading it can run arbitrary code: pass --trust only if you trust it."
            )
    written = dict(meta.get("versions") or {})
    written.setdefault("sklearn_alnm", meta.get("sklearn_alnm_version"))
    installed = package_versions(tuple(written))
    changed = [
        f"{package} {version} (installed: {installed[package]})"
        for package, version in written.items()
        if version is not None and installed[package] != version
    ]
    if changed:
        warnings.warn(
            f"{name} was written with {', '.join(changed)}. A pickle from other versions may "
            "fail or predict differently: refit it if you can.",
            UserWarning,
            stacklevel=3,
        )
    try:
        return joblib.load(model_path)
    except Exception as exc:
        raise StudyConfigError(
            f"{name} is not a readable model file ({type(exc).__name__}: {exc})."
        ) from None


def _check_threshold(threshold):
    from .metrics._validation import _check_probability

    if threshold is None:
        return None
    try:
        return _check_probability(threshold, "threshold")
    except ValueError as exc:
        raise StudyConfigError(str(exc)) from None


def predict_cohort(
    model_path,
    cohort_path,
    output,
    *,
    threshold=None,
    id_col="auto",
    trust=False,
    pos_label=None,
):
    """Probabilities and labels for every patient of a cohort table, written as CSV.

    Parameters
    ----------
    model_path : str or os.PathLike
        A pickled fitted classifier (``joblib``). When ``alnm run`` wrote it, the ``.json``
        beside it holds the threshold chosen on the training cohort and the label names.
    cohort_path : str or os.PathLike
        Manifest (CSV / Excel) of the patients to score.
    output : str or os.PathLike
        CSV to write: patient id, probability of the positive class, predicted label.
    threshold : float or None, default=None
        Decision threshold in [0, 1]; ``None`` uses the stored one, else the model's
        ``predict``.
    id_col : str, default="auto"
        Patient id column of the manifest.
    trust : bool, default=False
        Load the model even though no ``model.json`` records its SHA-256, or the recorded
        one does not match. Unpickling a file can run arbitrary code: only for files from a
        source you trust.
    pos_label : scalar or None, default=None
        Positive class of a model not written by ``alnm run`` whose labels are not 0/1.

    Returns
    -------
    pandas.DataFrame
        The predictions that were written.
    """
    from .io import load_manifest, resolve_id_column

    model_path, cohort_path = Path(model_path), Path(cohort_path)
    threshold = _check_threshold(threshold)
    for what, path in (("model", model_path), ("cohort", cohort_path)):
        if not path.is_file():
            raise StudyConfigError(f"{what} file not found: {os.fspath(path)!r}.")
    _check_output_path(output, folder=False)
    meta_path = model_path.with_suffix(".json")
    meta = {}
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise StudyConfigError(f"{meta_path.name} is not valid JSON ({exc}).") from None
    try:
        X = load_manifest(cohort_path, check_files=True, id_col=id_col)
    except (ValueError, UnicodeDecodeError) as exc:
        raise StudyConfigError(f"cohort {cohort_path.name}: {exc}") from None
    if len(X) == 0:
        raise StudyConfigError(f"cohort {cohort_path.name} has no patients.")
    model = _load_model(model_path, meta, trust)
    if not hasattr(model, "predict_proba") or not hasattr(model, "classes_"):
        raise StudyConfigError(f"{model_path.name} does not hold a classifier with predict_proba.")
    classes = list(model.classes_)
    if "labels" in meta:  # alnm run fits on 0/1 with 1 = the configured positive label
        labels, column = list(meta["labels"]), classes.index(1)
    else:
        try:
            positive = resolve_pos_label(classes, pos_label, owner=model_path.name)
        except ValueError as exc:
            raise StudyConfigError(f"{exc} (alnm predict --positive LABEL)") from None
        column = classes.index(positive)
        negative = next(c for c in classes if c != positive)
        labels = [str(negative), str(positive)]
    try:
        proba = model.predict_proba(X)[:, column]
    except (ValueError, KeyError) as exc:  # a column the model reads is missing, a bad cell
        message = str(exc).replace("\n", " ")
        raise StudyConfigError(
            f"cohort {cohort_path.name} cannot be scored by {model_path.name}: {message}"
        ) from None
    threshold = meta.get("threshold") if threshold is None else threshold
    if threshold is None:
        predicted = model.predict(X)
        predicted = [labels[int(classes.index(p) == column)] for p in predicted]
    else:
        predicted = np.where(proba >= threshold, labels[1], labels[0])
    id_column = resolve_id_column(X, id_col)
    ids = X[id_column].tolist() if id_column is not None else X.index.tolist()
    result = pd.DataFrame(
        {"patient_id": ids, f"probability_{labels[1]}": proba, "prediction": predicted}
    )
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp")
    try:
        result.to_csv(tmp, index=False)
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
    return result


class _OutOfFoldScores:
    """Duck-typed classifier returning stored out-of-fold probabilities, looked up by row label."""

    def __init__(self, proba, index):
        self._proba = pd.Series(np.asarray(proba, dtype=float), index=index)
        self.classes_ = np.array([0, 1])

    def predict_proba(self, X):
        p = self._proba.loc[X.index].to_numpy()
        return np.column_stack([1.0 - p, p])


def _slug(name):
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "model"


class StudyInterrupted(KeyboardInterrupt):
    """A study run stopped by Ctrl-C (SIGINT) or SIGTERM; nothing was written."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def _stop_on_signals():
    """Turn SIGINT and SIGTERM into :class:`StudyInterrupted` for the block, and remember them.

    skorch ends training quietly on a KeyboardInterrupt and returns a partly trained net, so a
    Ctrl-C during a fit would otherwise go on to save a one-epoch model. The flag lets the run
    stop right after such a fit; raising from the handler also stops work outside skorch, and
    lets ``finally`` blocks remove the staging folder on SIGTERM.
    """
    received = []

    def handler(signum, frame):
        received.append(signum)
        raise StudyInterrupted(signum)

    previous = {}
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, handler)
    except ValueError:  # not the main thread: signals cannot be handled here
        previous = {}
    try:
        yield received
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def _check_not_interrupted(received):
    if received:
        raise StudyInterrupted(received[0])


def run_study(config, out=None, *, allow_factories=(), parallel=None):
    """Run a study configuration: validate, fit, evaluate, write report and models.

    Parameters
    ----------
    config : str or os.PathLike
        Study configuration (YAML; see the module docstring).
    out : str, os.PathLike or None
        Output folder overriding the configuration's ``output``.
    allow_factories : sequence of str, default=()
        Further modules whose functions the configuration may call as factories (a
        configuration is code).
    parallel : mapping or None, default=None
        Where the parallel work runs, overriding the configuration's ``parallel`` (e.g.
        ``{"backend": "dask", "scheduler": "tcp://host:8786"}``; see
        :func:`~sklearn_alnm.utils.parallel_backend`). The cluster is contacted before any
        model is fitted.

    Returns
    -------
    pathlib.Path
        The output folder: ``report/index.html`` (tables, figures, CSVs), ``model.joblib`` and
        ``model.json`` (the primary model, its training-cohort threshold and label names),
        ``models/<name>.joblib`` for every other model (``model.json`` maps each model's name
        to its file and records the versions of sklearn_alnm, scikit-learn, torch, skorch and
        pyradiomics that wrote them), and a copy of the configuration.

    Raises
    ------
    StudyConfigError
        For any problem in the configuration, before any model is fitted.
    sklearn_alnm.utils.ClusterUnavailableError
        When the configured cluster does not answer (before any model is fitted).
    StudyInterrupted
        On Ctrl-C or SIGTERM: the run stops and writes nothing (a fit that skorch ended early
        is not saved), and the staging folder is removed.
    """
    with _stop_on_signals() as received:
        study = Study(config, out, allow_factories=allow_factories, parallel=parallel)
        if study.parallel is None:
            return _run_study(study, received)
        from .utils import parallel_backend

        with parallel_backend(study.parallel) as used:
            _log.info("parallel work on %s (%s workers)", used["backend"], used["workers"] or "?")
            return _run_study(study, received)


def _run_study(study, received):
    import joblib
    from sklearn.base import clone
    from sklearn.model_selection import cross_val_predict
    from tqdm.auto import tqdm

    from .report import StudyReport

    X, y = study.X, study.y
    fitted, report_models = {}, {}
    progress = tqdm(study.models.items(), desc="fitting models", unit="model", leave=False)
    if study.kfold is None:
        train = next(iter(study.cohorts.values()))
        cohorts = {name: (X.iloc[rows], y[rows]) for name, rows in study.cohorts.items()}
        for name, model in progress:
            progress.set_postfix_str(name)
            _log.info("fitting %s on %d patients", name, len(train))
            fitted[name] = clone(model).fit(X.iloc[train], y[train])
            _check_not_interrupted(received)
        report_models = fitted
    else:
        cohorts = {f"{study.kfold.n_splits}-fold CV (out-of-fold)": (X, y)}
        for name, model in progress:
            progress.set_postfix_str(name)
            _log.info("cross-validating %s", name)
            oof = cross_val_predict(clone(model), X, y, cv=study.kfold, method="predict_proba")
            _check_not_interrupted(received)
            report_models[name] = _OutOfFoldScores(oof[:, 1], X.index)
            fitted[name] = clone(model).fit(X, y)
            _check_not_interrupted(received)
    negative = next(c for c in pd.unique(study.y_raw) if str(c) != str(study.positive))
    report = StudyReport(
        report_models,
        cohorts,
        title=study.title,
        label_names={0: str(negative), 1: str(study.positive)},
        primary=study.primary,
        clinical=study.clinical,
    )
    meta = {
        "model": study.primary,
        "threshold": report.thresholds_[study.primary],
        "threshold_rule": "Youden index on the first cohort",
        "labels": [str(negative), str(study.positive)],
        "label_column": study.label_column,
        "sklearn_alnm_version": __version__,
        "versions": package_versions(),
        # the primary model is model.joblib; the others are under models/
        "models": {
            name: "model.joblib" if name == study.primary else f"models/{_slug(name)}.joblib"
            for name in fitted
        },
    }

    target = study.output.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        report.to_html(staging / "report")
        (staging / "models").mkdir()
        for name, model in fitted.items():
            joblib.dump(model, staging / meta["models"][name])
        meta["sha256"] = file_sha256(staging / "model.joblib")
        (staging / "model.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        _check_not_interrupted(received)
        shutil.copy2(study.path, staging / study.path.name)
        if target.exists():
            old = target.with_name(f".{target.name}-old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            try:
                os.replace(staging, target)
            except BaseException:
                os.replace(old, target)  # put the previous results back
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
