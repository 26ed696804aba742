import json
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import yaml

from sklearn_alnm import _study
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
        "models/Radiomics.joblib",
        "study.yaml",
    ):
        assert (out / name).is_file(), name
    metrics = pd.read_csv(out / "report" / "metrics.csv")
    assert set(metrics["cohort"]) == {"training", "test"}
    assert set(metrics["model"]) == {"Clinical", "Radiomics"}
    meta = json.loads((out / "model.json").read_text())
    assert meta["model"] == "Radiomics" and meta["labels"] == ["0", "1"]
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
        models={"Clinical": "clinical"},
        primary="Clinical",
    )
    out = _study.run_study(config)
    assert out == (study_dir / "kfold-results").resolve()
    metrics = pd.read_csv(out / "report" / "metrics.csv")
    assert metrics["cohort"].tolist() == ["3-fold CV (out-of-fold)"]
    assert metrics.loc[0, "n"] == 90 and 0.5 < metrics.loc[0, "auc"] <= 1


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
    ({"split": {"holdout": 0.3}}, "either 'by'"),
    ({"models": {"A": {"recipe": "deep_magic"}}}, "unknown recipe 'deep_magic'"),
    ({"models": {"A": {"recipe": "clinical", "params": {"depth": 3}}}}, "invalid parameters"),
    ({"models": {"A": {"factory": "no_such_module:f"}}}, "cannot import"),
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


def test_predict_errors(study_dir, tmp_path, capsys):
    assert main(["predict", str(tmp_path / "none.joblib"), "x.csv"]) == 2
    assert "model file not found" in capsys.readouterr().err
    joblib.dump({"not": "a model"}, tmp_path / "dict.joblib")
    cohort = str(study_dir / "cohort" / "manifest.csv")
    assert (
        main(["predict", str(tmp_path / "dict.joblib"), cohort, "-o", str(tmp_path / "p.csv")]) == 2
    )
    assert "predict_proba" in capsys.readouterr().err
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
