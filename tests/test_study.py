import json
import os
import shutil
import signal
import subprocess
import sys
import types
from importlib import metadata
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from sklearn_alnm import __version__, _study
from sklearn_alnm.cli import main
from sklearn_alnm.datasets import make_alnm_cohort
from sklearn_alnm.io import load_manifest, save_manifest

RADIOMICS = {
    "recipe": "mammography_fusion",
    "params": {
        "kind": "pre",
        "modalities": ["radiomics"],
        "views": ["cc"],
        "radiomics": {
            "image_types": {"Original": {}},
            "feature_classes": ["firstorder", "shape2D"],
        },
        "lasso_cv": 3,
        "cache": "cache",
        "random_state": 0,
    },
}


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    make_alnm_cohort(
        90,
        modalities=("clinical", "ultrasound", "mammography"),
        image_size=32,
        random_state=0,
        data_home=root / "cohort",
    )
    manifest = load_manifest(root / "cohort" / "manifest.csv")
    rng = np.random.default_rng(0)
    manifest["cohort"] = np.where(rng.random(len(manifest)) < 0.65, "training", "test")
    save_manifest(manifest, root / "cohort" / "manifest.csv")
    return root


def write_config(folder, name="study.yaml", **overrides):
    config = {
        "title": "Synthetic study",
        "manifest": "cohort/manifest.csv",
        "label": "label",
        "split": {"by": "cohort", "train": "training"},
        "models": {"Clinical": {"recipe": "clinical"}, "Radiomics": RADIOMICS},
        "primary": "Radiomics",
    }
    config.update(overrides)
    path = Path(folder) / name
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def test_holdout_run_writes_report_models_and_predicts_in_a_fresh_process(study_dir, capsys):
    config = write_config(study_dir)
    assert main(["run", str(config), "--out", str(study_dir / "out")]) == 0
    out = study_dir / "out"
    assert "index.html" in capsys.readouterr().out
    for name in (
        "report/index.html",
        "report/metrics.csv",
        "report/roc.png",
        "model.joblib",
        "model.json",
        "models/Clinical.joblib",
        "study.yaml",
    ):
        assert (out / name).is_file(), name
    # the primary model is stored once, as model.joblib
    assert not (out / "models" / "Radiomics.joblib").exists()
    metrics = pd.read_csv(out / "report" / "metrics.csv")
    assert set(metrics["cohort"]) == {"training", "test"}
    assert set(metrics["model"]) == {"Clinical", "Radiomics"}
    meta = json.loads((out / "model.json").read_text())
    assert meta["model"] == "Radiomics" and meta["labels"] == ["0", "1"]
    assert meta["models"] == {"Clinical": "models/Clinical.joblib", "Radiomics": "model.joblib"}
    versions = meta["versions"]
    assert set(versions) == {"sklearn_alnm", "scikit-learn", "torch", "skorch", "pyradiomics"}
    assert versions["sklearn_alnm"] == __version__
    assert versions["torch"] == metadata.version("torch") and torch.__version__.startswith(
        versions["torch"]
    )
    assert 0 <= meta["threshold"] <= 1
    assert not list(study_dir.glob(".out-*"))  # no staging folder left behind

    predictions = study_dir / "predictions.csv"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "sklearn_alnm.cli",
            "predict",
            str(out / "model.joblib"),
            str(study_dir / "cohort" / "manifest.csv"),
            "-o",
            str(predictions),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    result = pd.read_csv(predictions)
    model = joblib.load(out / "model.joblib")
    X = load_manifest(study_dir / "cohort" / "manifest.csv")
    np.testing.assert_allclose(result["probability_1"], model.predict_proba(X)[:, 1])
    expected = np.where(result["probability_1"] >= meta["threshold"], 1, 0)
    np.testing.assert_array_equal(result["prediction"], expected)
    assert result["patient_id"].tolist() == X["patient_id"].tolist()


def test_ultrasound_combined_model_runs_and_its_nomogram_is_in_the_report(study_dir, capsys):
    combined = {
        "recipe": "ultrasound_combined",
        "params": {"deep": {"input_size": 32}, "cv": 3, "cache": "cache", "random_state": 0},
    }
    config = write_config(
        study_dir,
        "ultrasound.yaml",
        models={"Clinical": "clinical", "Combined": combined},
        primary="Combined",
        output="us-results",
    )
    assert main(["run", str(config)]) == 0
    report = study_dir / "us-results" / "report"
    assert (report / "nomogram_combined.png").is_file()
    points = pd.read_csv(report / "nomogram_combined_points.csv")
    assert set(points["variable"]) == {"clinical_signature", "dl_signature"}
    assert "nomogram_combined.png" in (report / "index.html").read_text()
    model = joblib.load(study_dir / "us-results" / "model.joblib")
    assert model["nomogram"].variables_ == ["clinical_signature", "dl_signature"]


def test_autoseg_study_runs_and_predicts_new_patients_without_masks(study_dir, tmp_path):
    autoseg = {
        "recipe": "ultrasound_autoseg",
        "params": {
            "segmenters": ["unet"],
            "segmentation": {"base_channels": 4, "depth": 2, "input_size": 32, "max_epochs": 3},
            "roi_size": 32,
            "cnn": {"backbone": "resnet18", "max_epochs": 1},
            "cv": 2,
            "random_state": 0,
        },
    }
    config = write_config(
        study_dir,
        "autoseg.yaml",
        models={"Clinical": "clinical", "Auto-segmentation": autoseg},
        primary="Auto-segmentation",
        output="autoseg-results",
    )
    assert main(["run", str(config)]) == 0
    out = study_dir / "autoseg-results"
    report = out / "report"
    assert (report / "nomogram_auto-segmentation.png").is_file()
    assert "nomogram_auto-segmentation.png" in (report / "index.html").read_text()
    model = joblib.load(out / "model.joblib")
    assert [name for name, _ in model.steps] == ["segmentation", "crop", "signatures", "nomogram"]
    manifest = load_manifest(study_dir / "cohort" / "manifest.csv").drop(columns="mask")
    save_manifest(manifest, tmp_path / "no_masks.csv")
    predictions = tmp_path / "predictions.csv"
    assert (
        main(
            [
                "predict",
                str(out / "model.joblib"),
                str(tmp_path / "no_masks.csv"),
                "-o",
                str(predictions),
            ]
        )
        == 0
    )
    result = pd.read_csv(predictions)
    assert len(result) == len(manifest) and result["probability_1"].between(0, 1).all()


def test_kfold_run_reports_out_of_fold_predictions(study_dir):
    config = write_config(
        study_dir,
        "kfold.yaml",
        split={"kfold": 3, "random_state": 0},
        models={"Clinical": "clinical", "Age only": "clinical"},
        primary="Clinical",
        clinical=["age", "er"],
    )
    out = _study.run_study(config)
    assert out == (study_dir / "kfold-results").resolve()
    metrics = pd.read_csv(out / "report" / "metrics.csv")
    assert metrics["cohort"].tolist() == ["3-fold CV (out-of-fold)"] * 2
    assert metrics.loc[0, "n"] == 90 and 0.5 < metrics.loc[0, "auc"] <= 1
    # the configured primary model leads the report, and the clinical tables are in it
    findings = pd.read_csv(out / "report" / "key_findings.csv")
    assert findings["model"].tolist() == ["Clinical"]
    baseline = pd.read_csv(out / "report" / "baseline.csv")
    assert baseline.iloc[:, 0].astype(str).str.contains("age").any()
    assert (out / "report" / "odds_ratios.csv").is_file()


def test_failed_report_leaves_no_output(study_dir, monkeypatch):
    from sklearn_alnm.report import StudyReport

    def broken(self, folder, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(StudyReport, "to_html", broken)
    config = write_config(
        study_dir, "broken.yaml", models={"Clinical": "clinical"}, primary="Clinical"
    )
    with pytest.raises(RuntimeError, match="disk full"):
        _study.run_study(config)
    assert not (study_dir / "broken-results").exists()
    assert not list(study_dir.glob(".broken-results-*"))


BAD_CONFIGS = [
    ({"colour": "red"}, "unknown setting"),
    ({"manifest": "nowhere.csv"}, "manifest not found"),
    ({"label": "aln_status"}, "label column 'aln_status' is not in the manifest"),
    ({"label": {"column": "label", "positive": "N+"}}, "positive label 'N+'"),
    ({"split": {"by": "centre"}}, "split column 'centre'"),
    ({"split": {"by": "cohort", "train": "derivation"}}, "no row has cohort == 'derivation'"),
    ({"split": {"kfold": 1}}, "kfold must be an integer >= 2"),
    ({"split": {"holdout": 0.3}}, "unknown setting(s) ['holdout']"),
    ({"split": {"group_column": "patient_id"}}, "either 'by'"),
    ({"models": {"A": {"recipe": "deep_magic"}}}, "unknown recipe 'deep_magic'"),
    ({"models": {"A": {"recipe": "clinical", "params": {"depth": 3}}}}, "invalid parameters"),
    ({"models": {"A": {"factory": "no_such_module:f"}}}, "is not an estimator factory of"),
    ({"models": {"A": {"factory": "sklearn_alnm.no_such_module:f"}}}, "cannot import"),
    ({"models": {"A": {"factory": "os:system"}}}, "alnm run --allow-factory os"),
    ({"models": {"A": {"factory": "sklearn.datasets:load_iris"}}}, "neither an estimator class"),
    ({"models": {"A": {"factory": "sklearn_alnm.recipes:_slug"}}}, "private or invalid"),
    (
        {"models": {"A": {"factory": "sklearn.linear_model:LogisticRegression", "params": [1]}}},
        "params must be a mapping",
    ),
    (
        {
            "models": {
                "A": {"factory": "sklearn.linear_model:LogisticRegression", "params": {"C": "x"}}
            }
        },
        "LogisticRegression: The 'C' parameter",
    ),
    ({"models": {"A b": "clinical", "A_b": "clinical"}, "primary": "A b"}, "would both be saved"),
    ({"split": {"by": "cohort", "train": "training", "shuffle": True}}, "unknown setting"),
    ({"models": {"A": {"factory": "sklearn_alnm.recipes"}}}, "module:function"),
    (
        {
            "models": {
                "A": {"recipe": "mammography_fusion", "params": {"kind": "pre", "views": ["ml"]}}
            }
        },
        "names column 'ml_image', which is not in the manifest",
    ),
    (
        {"models": {"A": {"recipe": "mammography_fusion", "params": {"kind": "both"}}}},
        "kind must be",
    ),
    ({"models": {"A": "clinical"}, "primary": "B"}, "primary model 'B'"),
    ({"clinical": ["age", "ki-67"]}, "clinical: column(s) ['ki-67'] are not in the manifest"),
    ({"clinical": ["age", "label"]}, "'label' is the label column"),
    ({"clinical": {"age": 1}}, "clinical: expected a list"),
    ({"clinical": ["age", "patient_id"]}, "clinical: ['patient_id'] name patients"),
    ({"models": {}}, "'models' must map"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD_CONFIGS, ids=[m for _, m in BAD_CONFIGS])
def test_config_errors_are_one_line_before_any_work(study_dir, capsys, overrides, message):
    defaults = {"models": {"Clinical": "clinical"}, "primary": "Clinical"}
    config = write_config(study_dir, "bad.yaml", **{**defaults, **overrides})
    assert main(["run", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("alnm: error:") and message in err and "\n" not in err
    assert not (study_dir / "bad-results").exists()


def test_file_level_errors(study_dir, tmp_path, capsys):
    assert main(["run", str(tmp_path / "missing.yaml")]) == 2
    assert "configuration file not found" in capsys.readouterr().err
    (tmp_path / "broken.yaml").write_text("models: [unclosed", encoding="utf-8")
    assert main(["run", str(tmp_path / "broken.yaml")]) == 2
    assert "not valid YAML" in capsys.readouterr().err
    # a manifest whose image file is gone
    manifest = load_manifest(study_dir / "cohort" / "manifest.csv")
    manifest.loc[0, "cc_image"] = str(tmp_path / "gone.nii.gz")
    save_manifest(manifest, tmp_path / "manifest.csv")
    config = write_config(tmp_path, manifest="manifest.csv", models={"A": "clinical"}, primary="A")
    assert main(["run", str(config)]) == 2
    err = capsys.readouterr().err
    assert "gone.nii.gz" in err and "cc_image" in err
    (tmp_path / "taken").write_text("a file", encoding="utf-8")
    config = write_config(
        study_dir, "out.yaml", models={"A": "clinical"}, primary="A", output=str(tmp_path / "taken")
    )
    assert main(["run", str(config)]) == 2
    assert "is not a folder" in capsys.readouterr().err
    config = write_config(
        study_dir,
        "under.yaml",
        models={"A": "clinical"},
        primary="A",
        output=str(tmp_path / "taken" / "results"),
    )
    assert main(["run", str(config)]) == 2
    assert "which is a file" in capsys.readouterr().err


def test_predict_errors(study_dir, tmp_path, capsys):
    assert main(["predict", str(tmp_path / "none.joblib"), "x.csv"]) == 2
    assert "model file not found" in capsys.readouterr().err
    joblib.dump({"not": "a model"}, tmp_path / "dict.joblib")
    cohort = str(study_dir / "cohort" / "manifest.csv")
    out = ["-o", str(tmp_path / "p.csv")]
    assert main(["predict", str(tmp_path / "dict.joblib"), cohort, *out]) == 2
    assert "no model.json recording its SHA-256" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "dict.joblib"), cohort, *out, "--trust"]) == 2
    assert "predict_proba" in capsys.readouterr().err
    (tmp_path / "text.joblib").write_text("just text", encoding="utf-8")
    assert main(["predict", str(tmp_path / "text.joblib"), cohort, *out, "--trust"]) == 2
    assert "text.joblib is not a readable model file" in capsys.readouterr().err
    (tmp_path / "empty.joblib").write_bytes(b"")
    assert main(["predict", str(tmp_path / "empty.joblib"), cohort, *out, "--trust"]) == 2
    assert "empty.joblib is empty" in capsys.readouterr().err
    assert not (tmp_path / "p.csv").exists()
    assert main(["predict", str(tmp_path / "dict.joblib"), str(tmp_path / "none.csv")]) == 2
    assert "cohort file not found" in capsys.readouterr().err


def test_example_configuration_validates(tmp_path):
    examples = Path(__file__).resolve().parents[1] / "examples"
    script = examples / "make_synthetic_cohort.py"
    subprocess.run(
        [
            sys.executable,
            str(script),
            "--n-patients",
            "40",
            "--out",
            str(tmp_path / "synthetic-cohort"),
        ],
        check=True,
        capture_output=True,
    )
    config = tmp_path / "mammography_study.yaml"
    config.write_text((examples / "mammography_study.yaml").read_text(), encoding="utf-8")
    study = _study.Study(config)  # every check that runs before fitting
    assert list(study.models) == ["Clinical", "Radiomics (CC+MLO)", "Deep (CC+MLO)", "Post-fusion"]
    assert list(study.cohorts) == ["training", "test"] and study.primary == "Post-fusion"
    config = tmp_path / "ultrasound_study.yaml"
    config.write_text((examples / "ultrasound_study.yaml").read_text(), encoding="utf-8")
    study = _study.Study(config)
    assert list(study.models) == [
        "Clinical signature",
        "DL signature",
        "Combined (nomogram)",
        "Automatic segmentation",
    ]
    assert study.primary == "Combined (nomogram)"


# ------------------------------------------------------------------ labels, trust, signals


def _string_label_manifest(study_dir, folder):
    manifest = load_manifest(study_dir / "cohort" / "manifest.csv")
    manifest["ALN status"] = np.where(manifest.pop("label") == 1, "N+", "N0")
    save_manifest(manifest, Path(folder) / "manifest.csv")
    return manifest


@pytest.fixture(scope="module")
def clinical_run(study_dir, tmp_path_factory):
    """One quick study with string labels, run once: (folder, config, manifest, out)."""
    folder = tmp_path_factory.mktemp("labels")
    (folder / "cohort").symlink_to(study_dir / "cohort", target_is_directory=True)
    _string_label_manifest(study_dir, folder)
    config = write_config(
        folder,
        manifest="manifest.csv",
        label={"column": "ALN status", "positive": "N+"},
        models={"Clinical": "clinical"},
        primary="Clinical",
    )
    out = _study.run_study(config, folder / "out")
    return folder, config, folder / "manifest.csv", out


def test_string_labels_need_the_positive_label_and_predictions_name_it(clinical_run, capsys):
    folder, _, manifest, out = clinical_run
    config = write_config(
        folder,
        "guess.yaml",
        manifest="manifest.csv",
        label="ALN status",
        models={"Clinical": "clinical"},
        primary="Clinical",
    )
    assert main(["run", str(config)]) == 2
    err = capsys.readouterr().err
    assert "label column 'ALN status' holds ['N+', 'N0']" in err and "positive:" in err
    meta = json.loads((out / "model.json").read_text())
    assert meta["labels"] == ["N0", "N+"] and len(meta["sha256"]) == 64
    assert "Positive class: <strong>N+</strong>" in (out / "report" / "index.html").read_text()
    predictions = folder / "predictions.csv"
    assert main(["predict", str(out / "model.joblib"), str(manifest), "-o", str(predictions)]) == 0
    result = pd.read_csv(predictions)
    assert "probability_N+" in result.columns and "probability_N0" not in result.columns
    X = load_manifest(manifest)
    truth = X["ALN status"] == "N+"
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(truth, result["probability_N+"]) > 0.7  # N+ risk, not N0's
    assert set(result["prediction"]) <= {"N0", "N+"}


def test_predict_refuses_a_changed_model_file_unless_trusted(clinical_run, tmp_path, capsys):
    _, _, manifest, out = clinical_run
    model = tmp_path / "model.joblib"
    shutil.copy(out / "model.joblib", model)
    shutil.copy(out / "model.json", tmp_path / "model.json")
    with open(model, "ab") as fh:
        fh.write(b"\0")  # any change to the bytes
    args = ["predict", str(model), str(manifest), "-o", str(tmp_path / "p.csv")]
    assert main(args) == 2
    assert "does not match" in capsys.readouterr().err and not (tmp_path / "p.csv").exists()
    assert main([*args, "--trust"]) == 0
    meta = json.loads((tmp_path / "model.json").read_text())
    meta["sha256"] = _study.file_sha256(model)
    meta["versions"].update(sklearn_alnm="0.0.1", torch="1.0.0")
    (tmp_path / "model.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.warns(UserWarning, match=r"written with sklearn_alnm 0.0.1 \(installed: ") as seen:
        assert main(args) == 0
    assert "torch 1.0.0" in str(seen[0].message) and "scikit-learn" not in str(seen[0].message)
    # a model.json of an older release records only the library's version
    del meta["versions"]
    meta["sklearn_alnm_version"] = "0.0.1"
    (tmp_path / "model.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.warns(UserWarning, match="written with sklearn_alnm 0.0.1"):
        assert main(args) == 0


def test_predict_checks_threshold_columns_and_output(clinical_run, tmp_path, capsys):
    _, _, manifest, out = clinical_run
    base = ["predict", str(out / "model.joblib"), str(manifest)]
    for bad in ("nan", "7", "-0.1", "high"):
        with pytest.raises(SystemExit) as info:
            main([*base, "--threshold", bad])
        assert info.value.code == 2
        assert "--threshold" in capsys.readouterr().err
    X = load_manifest(manifest).drop(columns=["tumor_size_mm"])
    save_manifest(X, tmp_path / "partial.csv")
    partial = ["predict", str(out / "model.joblib"), str(tmp_path / "partial.csv")]
    assert main([*partial, "-o", str(tmp_path / "p.csv")]) == 2
    err = capsys.readouterr().err
    assert "partial.csv cannot be scored" in err and "tumor_size_mm" in err
    (tmp_path / "file").write_text("x", encoding="utf-8")
    assert main([*base, "-o", str(tmp_path / "file" / "p.csv")]) == 2
    assert "which is a file" in capsys.readouterr().err


def test_shared_patients_across_cohorts_are_refused(study_dir, tmp_path):
    manifest = load_manifest(study_dir / "cohort" / "manifest.csv")
    train = manifest.index[manifest["cohort"] == "training"][0]
    copy = manifest.loc[[train]].assign(cohort="test")
    save_manifest(pd.concat([manifest, copy], ignore_index=True), tmp_path / "manifest.csv")
    (tmp_path / "cohort").symlink_to(study_dir / "cohort", target_is_directory=True)
    config = write_config(tmp_path, manifest="manifest.csv", models={"A": "clinical"}, primary="A")
    with pytest.raises(_study.StudyConfigError, match="1 patient id.*both the training"):
        _study.Study(config)
    config = write_config(
        tmp_path,
        manifest="manifest.csv",
        split={"by": "cohort", "train": "training", "allow_shared_patients": True},
        models={"A": "clinical"},
        primary="A",
    )
    assert len(_study.Study(config).cohorts["test"]) == (manifest["cohort"] == "test").sum() + 1


def test_factories_are_not_called_during_validation_unless_allowed(study_dir, tmp_path):
    marker = tmp_path / "marker"
    config = write_config(
        study_dir,
        "factory.yaml",
        models={"A": {"factory": "os:system", "params": {"command": f"touch {marker}"}}},
        primary="A",
    )
    with pytest.raises(_study.StudyConfigError, match="configuration is code"):
        _study.Study(config)
    assert not marker.exists()
    recipe = write_config(
        study_dir,
        "factory3.yaml",
        models={"A": {"factory": "sklearn_alnm.recipes:mammography_fusion"}},
        primary="A",
    )
    assert list(_study.Study(recipe).models) == ["A"]  # the recipes are estimator factories
    config = write_config(
        study_dir, "factory2.yaml", models={"A": {"factory": "collections:Counter"}}, primary="A"
    )
    with pytest.raises(_study.StudyConfigError, match="did not build a classifier"):
        _study.Study(config, allow_factories=["collections"])


class _SwallowsInterrupt:
    """A classifier whose fit ends quietly on Ctrl-C, as skorch's training loop does."""

    def __init__(self):
        from sklearn.linear_model import LogisticRegression

        self.model = LogisticRegression()

    def get_params(self, deep=True):
        return {}

    def set_params(self, **params):
        return self

    def fit(self, X, y):
        try:
            os.kill(os.getpid(), signal.SIGINT)
        except KeyboardInterrupt:
            pass  # skorch: "stop training", the net is returned as it is
        self.model.fit(X[["age"]].fillna(0), y)
        self.classes_ = self.model.classes_
        return self

    def predict_proba(self, X):
        return self.model.predict_proba(X[["age"]].fillna(0))


@pytest.fixture
def swallow_module(monkeypatch):
    module = types.ModuleType("alnm_swallow_test")
    module.make = _SwallowsInterrupt
    monkeypatch.setitem(sys.modules, "alnm_swallow_test", module)
    return "alnm_swallow_test"


def test_ctrl_c_during_a_fit_stops_with_130_and_writes_nothing(study_dir, swallow_module, capsys):
    config = write_config(
        study_dir,
        "interrupt.yaml",
        models={"A": {"factory": f"{swallow_module}:make"}},
        primary="A",
        output="interrupt-results",
    )
    code = main(["run", str(config), "--allow-factory", swallow_module])
    assert code == 130 and "interrupted" in capsys.readouterr().err
    assert not (study_dir / "interrupt-results").exists()
    assert not list(study_dir.glob(".interrupt-results-*"))


def test_sigterm_while_writing_removes_the_staging_folder(study_dir, monkeypatch, capsys):
    from sklearn_alnm.report import StudyReport

    def terminated(self, folder, **kwargs):
        Path(folder).mkdir(parents=True)
        (Path(folder) / "index.html").write_text("partial", encoding="utf-8")
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(StudyReport, "to_html", terminated)
    config = write_config(
        study_dir, "term.yaml", models={"A": "clinical"}, primary="A", output="term-results"
    )
    assert main(["run", str(config)]) == 128 + signal.SIGTERM
    assert "SIGTERM" in capsys.readouterr().err
    assert not (study_dir / "term-results").exists()
    assert not list(study_dir.glob(".term-results-*"))
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # handlers restored
