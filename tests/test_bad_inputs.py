"""Inputs shaped like a clinic's, across modules: every consumer of the same bad input fails
with the same clear message (naming the row, the column and the file), before any fitting."""

import numpy as np
import pandas as pd
import pytest

from sklearn_alnm.io import write_image
from sklearn_alnm.utils import CohortInputError


def _cohort_with_a_nan_pixel(tmp_path):
    rng = np.random.default_rng(0)
    mask = np.zeros((32, 32), np.uint8)
    mask[8:22, 8:22] = 1
    images = [rng.random((32, 32)).astype(np.float32) * 100 for _ in range(4)]
    images[2][12, 12] = np.nan  # inside the lesion
    images[2][13, 13] = np.inf
    write_image(tmp_path / "ok.nrrd", images[0])
    write_image(tmp_path / "bad.nrrd", images[2])
    X = pd.DataFrame(
        {
            "patient_id": ["P1", "P2", "P3", "P4"],
            "image": [str(tmp_path / "ok.nrrd"), images[1], str(tmp_path / "bad.nrrd"), images[3]],
            "mask": [mask] * 4,
        }
    )
    return X, np.array([0, 1, 0, 1])


def _consumers():
    from sklearn_alnm.features import DeepFeatures, RadiomicsFeatures
    from sklearn_alnm.models import ImageClassifier
    from sklearn_alnm.preprocessing import IntensityNormalizer, ROICropper
    from sklearn_alnm.segmentation import UNetSegmenter

    return {
        "radiomics": RadiomicsFeatures(feature_classes=["firstorder"]),
        "deep": DeepFeatures(mask_col="mask", backbone="squeezenet1_1", input_size=32),
        "cropper": ROICropper(),
        "normalizer": IntensityNormalizer(),
        "cnn": ImageClassifier(
            "image", "mask", backbone="plnet", input_size=32, max_epochs=1, device="cpu"
        ),
        "unet": UNetSegmenter(base_channels=4, depth=2, input_size=32, max_epochs=1, device="cpu"),
    }


@pytest.mark.parametrize("name", sorted(_consumers()))
def test_non_finite_pixels_are_named_by_every_consumer(tmp_path, name):
    X, y = _cohort_with_a_nan_pixel(tmp_path)
    estimator = _consumers()[name]
    with pytest.raises(CohortInputError) as info:
        estimator.fit(X, y) if name in ("cnn", "unet") else estimator.fit(X).transform(X)
    message = str(info.value)
    assert "2 non-finite pixel(s)" in message, message
    assert "row 'P3'" in message and "column 'image'" in message and "bad.nrrd" in message


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("empty.csv", b"", "it is empty"),
        ("noise.csv", bytes(range(128, 256)) * 8, "cannot be read as a comma/tab-separated"),
        ("noise.xlsx", b"\x00\x01 not a workbook" * 20, "cannot be read as an Excel workbook"),
        ("header.csv", b"patient_id,age,image\n", "holds no patients"),
    ],
)
def test_unreadable_or_empty_manifests_name_the_file(tmp_path, name, content, match):
    from sklearn_alnm.io import load_manifest

    (tmp_path / name).write_bytes(content)
    with pytest.raises(ValueError, match=match) as info:
        load_manifest(tmp_path / name)
    assert name in str(info.value)


def test_alnm_run_reports_an_unreadable_manifest_in_one_line(tmp_path, capsys):
    import yaml

    from sklearn_alnm.cli import main

    (tmp_path / "manifest.csv").write_bytes(bytes(range(128, 256)) * 8)
    config = tmp_path / "study.yaml"
    config.write_text(
        yaml.safe_dump(
            {"manifest": "manifest.csv", "split": {"kfold": 3}, "models": {"A": "clinical"}}
        ),
        encoding="utf-8",
    )
    assert main(["run", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("alnm: error: manifest manifest.csv") and "\n" not in err


def test_an_empty_cohort_is_refused_by_every_cohort_estimator():
    from sklearn_alnm.clinical import make_clinical_pipeline

    empty = pd.DataFrame({"patient_id": [], "image": [], "mask": [], "age": []})
    consumers = _consumers()
    for name, estimator in consumers.items():
        with pytest.raises(ValueError, match="empty cohort|0 rows"):
            estimator.fit(empty, np.array([])) if name in ("cnn", "unet") else estimator.fit(empty)
    with pytest.raises(ValueError, match="the cohort is empty"):
        make_clinical_pipeline().fit(empty, np.array([]))
