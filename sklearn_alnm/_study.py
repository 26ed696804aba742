"""``alnm run``: a whole study from one configuration file.

A study configuration (YAML) names the cohort manifest, the label, how patients are split
into cohorts, and the models (recipes or any estimator factory with parameters). Everything
that can be checked is checked before any long work starts, and reported as one
:class:`StudyConfigError` line: unknown keys, a missing manifest or referenced file, a missing
column, an unknown recipe, parameters a recipe does not take.

Example configuration::

    title: Mammography fusion
    manifest: cohort/manifest.csv     # relative to this file
    label: label                      # or {column: label, positive: 1}
    split: {by: cohort, train: training}        # hold-out cohorts from a column ...
    # split: {kfold: 5, group_column: patient_id, random_state: 0}   # ... or grouped K-fold
    models:
      Clinical: {recipe: clinical}
      Post-fusion:
        recipe: mammography_fusion
        params: {kind: post, cache: cache}
    primary: Post-fusion              # saved as model.joblib (default: the last model)
    output: results                   # default: <config name>-results beside the file
"""

import importlib
import inspect
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__
from ._logging import get_logger

_log = get_logger(__name__)

_TOP_KEYS = {"title", "manifest", "id_column", "label", "split", "models", "primary", "output"}
_MODEL_KEYS = {"recipe", "factory", "params"}


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


def _resolve_factory(spec, where):
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise StudyConfigError(
            f"{where}: factory must look like 'package.module:function'; got {spec!r}."
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise StudyConfigError(f"{where}: cannot import {module_name!r} ({exc}).") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise StudyConfigError(f"{where}: {module_name!r} has no attribute {attr!r}.") from None


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
    """

    def __init__(self, path, output=None):
        import yaml

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
        self._load_cohort()
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
            positive = classes[1]
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
                factory = _resolve_factory(spec["factory"], where)
            params = _resolve_paths(spec.get("params") or {}, self.base)
            try:
                inspect.signature(factory).bind(**params)
            except TypeError as exc:
                raise StudyConfigError(
                    f"{where}: invalid parameters for {factory.__name__}: {exc}."
                ) from None
            try:
                estimator = factory(**params)
            except (TypeError, ValueError) as exc:
                raise StudyConfigError(f"{where}: {exc}") from None
            for key, column in _column_params(estimator):
                if column not in self.X.columns:
                    raise StudyConfigError(
                        f"{where}: parameter {key} names column {column!r}, which is not in "
                        "the manifest."
                    )
            self.models[name] = estimator
        self.primary = self.config.get("primary", list(self.models)[-1])
        if self.primary not in self.models:
            raise StudyConfigError(
                f"primary model {self.primary!r} is not among {list(self.models)}."
            )

    def _check_output(self):
        parent = self.output.resolve().parent
        if self.output.exists() and not self.output.is_dir():
            raise StudyConfigError(f"output {os.fspath(self.output)!r} exists and is not a folder.")
        if not os.access(parent if parent.exists() else Path.cwd(), os.W_OK):
            raise StudyConfigError(f"output folder {os.fspath(self.output)!r} is not writable.")


def predict_cohort(model_path, cohort_path, output, *, threshold=None, id_col="auto"):
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
        Decision threshold; ``None`` uses the stored one, else the model's ``predict``.
    id_col : str, default="auto"
        Patient id column of the manifest.

    Returns
    -------
    pandas.DataFrame
        The predictions that were written.
    """
    import joblib

    from .io import load_manifest, resolve_id_column

    model_path, cohort_path = Path(model_path), Path(cohort_path)
    for what, path in (("model", model_path), ("cohort", cohort_path)):
        if not path.is_file():
            raise StudyConfigError(f"{what} file not found: {os.fspath(path)!r}.")
    meta_path = model_path.with_suffix(".json")
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
    try:
        X = load_manifest(cohort_path, check_files=True, id_col=id_col)
    except ValueError as exc:
        raise StudyConfigError(f"cohort {cohort_path.name}: {exc}") from None
    model = joblib.load(model_path)
    if not hasattr(model, "predict_proba"):
        raise StudyConfigError(f"{model_path.name} does not hold a classifier with predict_proba.")
    proba = model.predict_proba(X)[:, 1]
    threshold = meta.get("threshold") if threshold is None else threshold
    labels = meta.get("labels", [str(c) for c in model.classes_])
    if threshold is None:
        predicted = model.predict(X)
        predicted = [labels[list(model.classes_).index(p)] for p in predicted]
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
    result.to_csv(tmp, index=False)
    os.replace(tmp, output)
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


def run_study(config, out=None):
    """Run a study configuration: validate, fit, evaluate, write report and models.

    Parameters
    ----------
    config : str or os.PathLike
        Study configuration (YAML; see the module docstring).
    out : str, os.PathLike or None
        Output folder overriding the configuration's ``output``.

    Returns
    -------
    pathlib.Path
        The output folder: ``report/index.html`` (tables, figures, CSVs), ``model.joblib`` and
        ``model.json`` (the primary model, its training-cohort threshold and label names),
        ``models/<name>.joblib`` for every model, and a copy of the configuration.

    Raises
    ------
    StudyConfigError
        For any problem in the configuration, before any model is fitted.
    """
    import joblib
    from sklearn.base import clone
    from sklearn.model_selection import cross_val_predict
    from tqdm.auto import tqdm

    from .report import StudyReport

    study = Study(config, out)
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
        report_models = fitted
    else:
        cohorts = {f"{study.kfold.n_splits}-fold CV (out-of-fold)": (X, y)}
        for name, model in progress:
            progress.set_postfix_str(name)
            _log.info("cross-validating %s", name)
            oof = cross_val_predict(clone(model), X, y, cv=study.kfold, method="predict_proba")
            report_models[name] = _OutOfFoldScores(oof[:, 1], X.index)
            fitted[name] = clone(model).fit(X, y)
    report = StudyReport(report_models, cohorts, title=study.title)
    negative = next(c for c in pd.unique(study.y_raw) if str(c) != str(study.positive))
    meta = {
        "model": study.primary,
        "threshold": report.thresholds_[study.primary],
        "threshold_rule": "Youden index on the first cohort",
        "labels": [str(negative), str(study.positive)],
        "label_column": study.label_column,
        "sklearn_alnm_version": __version__,
    }

    target = study.output.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        report.to_html(staging / "report")
        (staging / "models").mkdir()
        for name, model in fitted.items():
            joblib.dump(model, staging / "models" / f"{_slug(name)}.joblib")
        joblib.dump(fitted[study.primary], staging / "model.joblib")
        (staging / "model.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        shutil.copy2(study.path, staging / study.path.name)
        if target.exists():
            old = target.with_name(f".{target.name}-old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
