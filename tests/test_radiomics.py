"""Tests of RadiomicsFeatures: values vs plain pyradiomics, names, cache, errors, sklearn use."""

import json
import logging
import pickle
import re
import subprocess
import sys
import time

import joblib
import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from radiomics.featureextractor import RadiomicsFeatureExtractor
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_alnm.datasets import make_alnm_cohort
from sklearn_alnm.features import _radiomics_worker
from sklearn_alnm.features._radiomics import RadiomicsFeatures, to_gray
from sklearn_alnm.io import write_image, write_mask
from sklearn_alnm.utils import CohortInputError, FeatureCache

LOGGER = "sklearn_alnm.features._radiomics"


# -------------------------------------------------------------------- test data, references


def lesion(size=40, centre=None, axes=(9, 12), seed=0, label=1):
    """A textured integer image (values 0..255) and an elliptical lesion mask."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:size, :size]
    cy, cx = centre if centre is not None else ((size - 1) / 2, (size - 1) / 2)
    texture = 110 + 40 * np.sin(cols / (2.0 + seed % 3)) * np.cos(rows / 4.0)
    image = np.clip(np.round(texture + rng.normal(0, 18, (size, size))), 0, 255)
    mask = (((rows - cy) / axes[0]) ** 2 + ((cols - cx) / axes[1]) ** 2 <= 1) * label
    return image.astype(np.uint8), mask.astype(np.uint8)


def array_cohort(n=4, size=40, index=None):
    rows = [lesion(size, axes=(6 + k, 9 + 2 * k), seed=k) for k in range(n)]
    return pd.DataFrame(
        {
            "patient_id": [f"P{k + 1}" for k in range(n)],
            "image": [image.astype(np.float32) for image, _ in rows],
            "mask": [mask for _, mask in rows],
        },
        index=index,
    )


def file_cohort(folder, n=3, size=40, ext=".png", spacing=None):
    ids, images, masks = [], [], []
    for k in range(n):
        image, mask = lesion(size, axes=(6 + k, 9 + 2 * k), seed=k)
        ids.append(f"P{k + 1}")
        images.append(write_image(folder / f"P{k + 1}{ext}", image, spacing=spacing))
        masks.append(write_mask(folder / f"P{k + 1}_mask{ext}", mask, spacing=spacing))
    return pd.DataFrame({"patient_id": ids, "image": images, "mask": masks})


def plain_pyradiomics(extractor, images, masks):
    """The serial loop a pyradiomics user writes: execute, drop diagnostics, stack."""
    rows, names = [], None
    for image, mask in zip(images, masks):
        result = extractor.execute(image, mask)
        names = [k for k in result if not k.startswith("diagnostics_")]
        rows.append([float(result[k]) for k in names])
    return names, np.array(rows)


def sitk_pair(image, mask, spacing=(1.0, 1.0)):
    sitk_image = sitk.GetImageFromArray(image.astype(np.float64))
    sitk_mask = sitk.GetImageFromArray(mask.astype(np.uint8))
    for item in (sitk_image, sitk_mask):
        item.SetSpacing((spacing[1], spacing[0]))
    return sitk_image, sitk_mask


def n_entries(folder):
    """Number of feature entries (not index entries) in a cache folder."""
    return len(list((folder / _radiomics_worker.CACHE_NAMESPACE).rglob("*.npz")))


@pytest.fixture
def count_extractions(monkeypatch):
    """Count the calls of the module-level extraction function (in this process)."""
    calls = []
    original = _radiomics_worker._extract_features

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(_radiomics_worker, "_extract_features", counting)
    return calls


# ------------------------------------------------------------------- values vs plain pyradiomics


SETTINGS = {
    "texture": (
        {"feature_classes": ["firstorder", "glcm", "shape2D"]},
        {"featureClass": {"firstorder": [], "glcm": [], "shape2D": []}},
    ),
    "wavelet_log_prefix": (
        {
            "image_types": {"Original": {}, "Wavelet": {}, "LoG": {"sigma": [1.0, 2.0]}},
            "feature_classes": {"firstorder": None, "glszm": ["ZoneEntropy", "SmallAreaEmphasis"]},
            "prefix": "us_",
        },
        {
            "imageType": {"Original": {}, "Wavelet": {}, "LoG": {"sigma": [1.0, 2.0]}},
            "featureClass": {"firstorder": [], "glszm": ["ZoneEntropy", "SmallAreaEmphasis"]},
        },
    ),
    "params_dict": (
        {
            "params": {
                "setting": {"binWidth": 10, "distances": [1, 2]},
                "imageType": {"Square": {}, "Gradient": {}},
                "featureClass": {"glrlm": None, "gldm": None, "ngtdm": None},
            }
        },
        {
            "setting": {"binWidth": 10, "distances": [1, 2]},
            "imageType": {"Square": {}, "Gradient": {}},
            "featureClass": {"glrlm": [], "gldm": [], "ngtdm": []},
        },
    ),
}


@pytest.mark.parametrize("case", sorted(SETTINGS))
def test_values_equal_plain_pyradiomics_reading_the_files(tmp_path, case):
    ours, theirs = SETTINGS[case]
    X = file_cohort(tmp_path, n=3, ext=".nrrd", spacing=(0.6, 0.9))
    radiomics = RadiomicsFeatures(**ours).fit(X)
    table = radiomics.transform(X)

    names, expected = plain_pyradiomics(RadiomicsFeatureExtractor(theirs), X["image"], X["mask"])
    prefix = ours.get("prefix", "")
    assert list(radiomics.get_feature_names_out()) == [prefix + n for n in names]
    assert table.shape == expected.shape
    np.testing.assert_array_equal(table, expected)


def test_default_classes_equal_pyradiomics_defaults_plus_shape2d(tmp_path):
    X = file_cohort(tmp_path, n=2, ext=".png")
    radiomics = RadiomicsFeatures().fit(X)

    extractor = RadiomicsFeatureExtractor()  # pyradiomics' defaults, reading the PNG files
    extractor.enableFeatureClassByName("shape", enabled=False)
    extractor.enableFeatureClassByName("shape2D")
    names, expected = plain_pyradiomics(extractor, X["image"], X["mask"])

    assert list(radiomics.feature_names_out_) == names
    classes = {name.split("_")[1] for name in names}
    assert classes == {"firstorder", "glcm", "gldm", "glrlm", "glszm", "ngtdm", "shape2D"}
    assert "original_shape2D_Elongation" in names
    assert not any("_shape_" in name for name in names)
    np.testing.assert_array_equal(radiomics.transform(X), expected)


def test_2d_extraction_equals_pyradiomics_single_slice_force2d():
    # pyradiomics' own 2-D mode: a volume of one slice with force2D on. Every feature the two
    # share (all but LoG, which pyradiomics refuses on a one-slice volume) must be identical.
    image, mask = lesion(40, seed=3)
    X = pd.DataFrame({"image": [image], "mask": [mask]})
    image_types = {"Original": {}, "Wavelet": {}}
    classes = ["firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm", "shape2D"]
    radiomics = RadiomicsFeatures(image_types=image_types, feature_classes=classes).fit(X)

    extractor = RadiomicsFeatureExtractor(
        {
            "setting": {"force2D": True, "force2Ddimension": 0},
            "imageType": image_types,
            "featureClass": {c: [] for c in classes},
        }
    )
    volume = sitk.GetImageFromArray(image[None].astype(np.float64))
    volume_mask = sitk.GetImageFromArray(mask[None])
    names, expected = plain_pyradiomics(extractor, [volume], [volume_mask])
    assert list(radiomics.feature_names_out_) == names
    assert any(name.startswith("wavelet-LH_") for name in names)
    np.testing.assert_array_equal(radiomics.transform(X), expected)


def test_force2d_false_is_pyradiomics_3d_on_a_one_slice_volume():
    image, mask = lesion(32, seed=1)
    X = pd.DataFrame({"image": [image], "mask": [mask]})
    radiomics = RadiomicsFeatures(force2d=False, image_types=["Original", "Wavelet"]).fit(X)
    names = list(radiomics.feature_names_out_)
    assert "original_shape_Elongation" in names  # pyradiomics' defaults incl. 3-D shape
    assert not any("shape2D" in name for name in names)
    assert any(name.startswith("wavelet-LLH_") for name in names)

    extractor = RadiomicsFeatureExtractor({"imageType": {"Original": {}, "Wavelet": {}}})
    extractor.enableFeatureClassByName("shape2D", enabled=False)
    volume = sitk.GetImageFromArray(image[None].astype(np.float64))
    expected_names, expected = plain_pyradiomics(
        extractor, [volume], [sitk.GetImageFromArray(mask[None])]
    )
    assert names == expected_names
    np.testing.assert_array_equal(radiomics.transform(X), expected)

    with pytest.raises(ValueError, match="'LoG' is unavailable"):
        RadiomicsFeatures(force2d=False, image_types={"LoG": {"sigma": [1.0]}}).fit(X)
    with pytest.raises(ValueError, match="'shape2D' feature class needs 2-D"):
        RadiomicsFeatures(force2d=False, feature_classes=["shape2D"]).fit(X)


def test_params_file_yaml_and_json_equal_dict(tmp_path):
    X = array_cohort(n=2, size=32)
    params = {
        "setting": {"binWidth": 15},
        "imageType": {"Original": {}, "LoG": {"sigma": [1.5]}},
        "featureClass": {"firstorder": ["Mean", "Entropy"], "glcm": ["Contrast"]},
    }
    (tmp_path / "params.json").write_text(json.dumps(params))
    (tmp_path / "params.yaml").write_text(
        "# pyradiomics parameter file\n"
        "setting:\n  binWidth: 15\n"
        "imageType:\n  Original: {}\n  LoG:\n    sigma: [1.5]\n"
        "featureClass:\n  firstorder: [Mean, Entropy]\n  glcm: [Contrast]\n"
    )
    from_dict = RadiomicsFeatures(params=params).fit(X)
    expected = from_dict.transform(X)
    assert len(from_dict.feature_names_out_) == 2 * 3
    for name in ("params.json", "params.yaml"):
        radiomics = RadiomicsFeatures(params=tmp_path / name).fit(X)
        assert radiomics.feature_names_out_ == from_dict.feature_names_out_
        assert radiomics.settings_ == from_dict.settings_
        np.testing.assert_array_equal(radiomics.transform(X), expected)

    # image_types / feature_classes replace the corresponding sections of the file
    radiomics = RadiomicsFeatures(params=tmp_path / "params.yaml", feature_classes=["shape2D"])
    names = radiomics.fit(X).feature_names_out_
    assert names and all(name.startswith("original_shape2D_") for name in names)
    assert radiomics.settings_["setting"]["binWidth"] == 15


# --------------------------------------------------------------------------- shape and spacing


def test_shape2d_values_are_sensible_and_use_the_spacing():
    size = 48
    rows, cols = np.mgrid[:size, :size]
    image = np.full((size, size), 100.0) + (rows + cols) % 7
    disk = ((rows - 23.5) ** 2 + (cols - 23.5) ** 2 <= 18**2).astype(np.uint8)
    ellipse = (((rows - 23.5) / 6) ** 2 + ((cols - 23.5) / 18) ** 2 <= 1).astype(np.uint8)
    X = pd.DataFrame({"image": [image, image], "mask": [disk, ellipse]})
    table = (
        RadiomicsFeatures(feature_classes=["shape2D"])
        .set_output(transform="pandas")
        .fit_transform(X)
    )
    assert table.loc[0, "original_shape2D_Sphericity"] > 0.93  # pixelated outline
    assert table.loc[0, "original_shape2D_Elongation"] == pytest.approx(1.0, abs=0.02)
    assert table.loc[0, "original_shape2D_MaximumDiameter"] == pytest.approx(36, abs=1.5)
    assert table.loc[1, "original_shape2D_Elongation"] == pytest.approx(1 / 3, abs=0.03)
    assert table.loc[1, "original_shape2D_Sphericity"] < 0.85


def test_spacing_is_read_from_the_files(tmp_path):
    # On pixels 1.0 mm tall and 1/3 mm wide, a 12 x 36 pixel ellipse is a 12 mm disk; with the
    # spacing axes swapped it would be a 4 x 108 mm needle.
    image, ellipse = lesion(48, axes=(6, 18))
    spacing = (1.0, 1 / 3)
    X = pd.DataFrame(
        {
            "image": [write_image(tmp_path / "a.nii.gz", image, spacing=spacing)],
            "mask": [write_mask(tmp_path / "a_mask.nii.gz", ellipse, spacing=spacing)],
        }
    )
    table = (
        RadiomicsFeatures(feature_classes=["shape2D"])
        .set_output(transform="pandas")
        .fit_transform(X)
    )
    assert table.loc[0, "original_shape2D_Elongation"] == pytest.approx(1.0, abs=0.05)
    assert table.loc[0, "original_shape2D_MaximumDiameter"] == pytest.approx(12, abs=1)
    assert table.loc[0, "original_shape2D_PixelSurface"] == pytest.approx(ellipse.sum() / 3)


# ------------------------------------------------------------------------------ name stability


def test_feature_names_depend_on_settings_not_on_data(tmp_path):
    kwargs = {"image_types": {"Original": {}, "Wavelet": {}}, "feature_classes": ["glcm"]}
    small = array_cohort(n=2, size=32)
    large = array_cohort(n=3, size=48)
    corrupt = tmp_path / "broken.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    broken_first = large.copy()
    broken_first.loc[0, "image"] = str(corrupt)

    names = [
        RadiomicsFeatures(**kwargs).fit(X).feature_names_out_ for X in (small, large, broken_first)
    ]
    assert names[0] == names[1] == names[2]
    assert len(names[0]) == 5 * 24  # original + 4 wavelet decompositions, 24 GLCM features

    radiomics = RadiomicsFeatures(**kwargs, on_error="nan").fit(broken_first)
    table = radiomics.transform(broken_first)
    assert np.isnan(table[0]).all()
    np.testing.assert_array_equal(table[1:], RadiomicsFeatures(**kwargs).fit_transform(large)[1:])


def test_a_row_giving_other_features_is_an_error_or_nan():
    # pyradiomics skips a LoG sigma wider than the image: the 12-pixel image loses sigma 20.
    X = array_cohort(n=2, size=40)
    X["image"] = [X.loc[0, "image"], X.loc[1, "image"][8:20, 14:26]]
    X["mask"] = [X.loc[0, "mask"], X.loc[1, "mask"][8:20, 14:26]]
    kwargs = {"image_types": {"LoG": {"sigma": [1.0, 20.0]}}, "feature_classes": ["firstorder"]}
    radiomics = RadiomicsFeatures(**kwargs).fit(X)
    assert any(n.startswith("log-sigma-20-0-mm-3D_") for n in radiomics.feature_names_out_)
    with pytest.raises(CohortInputError, match=r"row 'P2', column 'image'.*different set.*LoG"):
        radiomics.transform(X)
    table = radiomics.set_params(on_error="nan").transform(X)
    assert np.isfinite(table[0]).all() and np.isnan(table[1]).all()


# -------------------------------------------------------------------------------------- cache


@pytest.mark.parametrize("kind", ["folder", "memory", "feature_cache"])
def test_cache_hits_and_misses(tmp_path, count_extractions, kind):
    cache = {
        "folder": str(tmp_path / "cache"),
        "memory": joblib.Memory(tmp_path / "cache", verbose=0),
        "feature_cache": FeatureCache(tmp_path / "cache"),
    }[kind]
    X = array_cohort(n=3, size=32)
    kwargs = {"feature_classes": ["firstorder", "glcm"], "cache": cache}
    first = RadiomicsFeatures(**kwargs).fit_transform(X)
    assert len(count_extractions) == 3
    assert n_entries(tmp_path / "cache") == 3

    again = clone(RadiomicsFeatures(**kwargs)).fit_transform(X)
    assert len(count_extractions) == 3  # nothing recomputed
    np.testing.assert_array_equal(again, first)

    edited = X.copy()
    edited.at[1, "image"] = X.loc[1, "image"] + 1.0
    RadiomicsFeatures(**kwargs).fit_transform(edited)
    assert len(count_extractions) == 4  # only the edited row

    RadiomicsFeatures(**kwargs, params={"setting": {"binWidth": 10}}).fit_transform(X)
    assert len(count_extractions) == 7  # other settings: every row again


def test_cache_key_ignores_paths_and_keeps_order_of_names(tmp_path, count_extractions):
    folder = tmp_path / "a"
    folder.mkdir()
    X = file_cohort(folder, n=2)
    cache = tmp_path / "cache"
    kwargs = {"feature_classes": ["glcm", "firstorder"], "cache": cache}
    first = RadiomicsFeatures(**kwargs).fit_transform(X)
    moved = tmp_path / "b"
    (tmp_path / "a").rename(moved)
    X_moved = X.apply(lambda col: col.str.replace(str(folder), str(moved)))
    assert RadiomicsFeatures(**kwargs).fit_transform(X_moved).tolist() == first.tolist()
    assert len(count_extractions) == 2

    # same settings with the classes in another order: cache hit, columns in the new order
    swapped = RadiomicsFeatures(feature_classes=["firstorder", "glcm"], cache=cache)
    table = swapped.set_output(transform="pandas").fit_transform(X_moved)
    assert len(count_extractions) == 2
    reference = pd.DataFrame(first, columns=RadiomicsFeatures(**kwargs).fit(X).feature_names_out_)
    pd.testing.assert_frame_equal(table, reference[table.columns])


def test_file_index_skips_decoding_unchanged_files(tmp_path, monkeypatch, count_extractions):
    reads = []
    original_read_cell = _radiomics_worker.read_cell

    def counting_read_cell(*args, **kwargs):
        reads.append(args[2])
        return original_read_cell(*args, **kwargs)

    monkeypatch.setattr(_radiomics_worker, "read_cell", counting_read_cell)
    X = file_cohort(tmp_path, n=3, ext=".nrrd")  # uncompressed: rewriting keeps the size
    cache = tmp_path / "cache"
    kwargs = {"feature_classes": ["firstorder"], "cache": cache}
    first = RadiomicsFeatures(**kwargs).fit_transform(X)
    assert len(reads) == 6 and len(count_extractions) == 3
    # files written a moment ago are not indexed (a second write could keep their identity)
    assert not (cache / "radiomics-files").exists()
    RadiomicsFeatures(**kwargs).fit_transform(X)
    assert len(reads) == 12 and len(count_extractions) == 3  # decoded, found by content

    monkeypatch.setattr(_radiomics_worker, "_SETTLE_SECONDS", 0.0)
    time.sleep(0.05)
    RadiomicsFeatures(**kwargs).fit_transform(X)  # indexes the now settled files
    reads.clear()
    again = RadiomicsFeatures(**kwargs).fit_transform(X)
    assert reads == [] and len(count_extractions) == 3
    np.testing.assert_array_equal(again, first)

    image, _ = lesion(40, seed=7)
    before = (tmp_path / "P2.nrrd").stat().st_size
    write_image(tmp_path / "P2.nrrd", image)  # same path, same size, new content
    assert (tmp_path / "P2.nrrd").stat().st_size == before
    time.sleep(0.05)
    edited = RadiomicsFeatures(**kwargs).fit_transform(X)
    assert reads == ["image", "mask"] and len(count_extractions) == 4
    np.testing.assert_array_equal(edited[[0, 2]], first[[0, 2]])
    assert not np.array_equal(edited[1], first[1])


def test_grid_search_extracts_each_row_once(tmp_path, count_extractions):
    X, y = make_alnm_cohort(12, modalities=("ultrasound",), image_size=32, random_state=0)
    pipe = make_pipeline(
        RadiomicsFeatures(feature_classes=["shape2D", "firstorder"], cache=tmp_path),
        StandardScaler(),
        LogisticRegression(),
    )
    search = GridSearchCV(pipe, {"logisticregression__C": [0.1, 1.0, 10.0]}, cv=3)
    search.fit(X, y)
    assert len(count_extractions) == len(X)  # 3 candidates x 3 folds + refit: no recomputation


# ----------------------------------------------------------------------------------- parallel


def test_n_jobs_2_identical_and_cache_shared_across_processes(tmp_path, caplog):
    X = file_cohort(tmp_path, n=4, size=40)
    kwargs = {"image_types": {"Original": {}, "Wavelet": {}}, "feature_classes": ["glcm"]}
    serial = RadiomicsFeatures(**kwargs, n_jobs=1).fit_transform(X)
    cache = tmp_path / "cache"
    parallel = RadiomicsFeatures(**kwargs, n_jobs=2, cache=cache).fit_transform(X)
    np.testing.assert_array_equal(parallel, serial)
    assert n_entries(cache) == 4  # written by the worker processes

    with caplog.at_level(logging.INFO, logger=LOGGER):
        again = RadiomicsFeatures(**kwargs, n_jobs=2, cache=cache).fit_transform(X)
    np.testing.assert_array_equal(again, serial)
    assert "(0 extracted, 4 from cache, 0 failed)" in caplog.text

    broken = X.copy()
    broken.loc[2, "mask"] = str(tmp_path / "missing_mask.png")
    with pytest.raises(CohortInputError, match=r"row 'P3', column 'mask', file .*missing_mask"):
        RadiomicsFeatures(**kwargs, n_jobs=2).fit_transform(broken)


def test_worker_processes_import_neither_sklearn_nor_torch(tmp_path):
    """A worker unpickles and runs a task without importing scikit-learn, torch, ..."""
    X = file_cohort(tmp_path, n=1)
    transformer = RadiomicsFeatures(feature_classes=["firstorder"], cache=tmp_path / "c").fit(X)
    task = pickle.dumps((_radiomics_worker._process_row, X, transformer._row_config()))
    code = (
        "import pickle, sys\n"
        "function, frame, config = pickle.loads(sys.stdin.buffer.read())\n"
        "values, error, computed = function(frame, config)\n"
        "assert error is None and computed, error\n"
        "heavy = ('sklearn', 'torch', 'torchvision', 'matplotlib', 'statsmodels')\n"
        "print(sorted(name for name in heavy if name in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], input=task, capture_output=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().strip() == "[]"


def test_parallel_config_backend_is_used():
    X = array_cohort(n=3, size=32)
    expected = RadiomicsFeatures(feature_classes=["firstorder"]).fit_transform(X)
    with joblib.parallel_config(backend="threading", n_jobs=2):
        table = RadiomicsFeatures(feature_classes=["firstorder"]).fit_transform(X)
    np.testing.assert_array_equal(table, expected)


def test_verbose_shows_a_progress_bar(capsys):
    X = array_cohort(n=2, size=32)
    RadiomicsFeatures(feature_classes=["shape2D"], verbose=1).fit_transform(X)
    assert "radiomics" in capsys.readouterr().err
    RadiomicsFeatures(feature_classes=["shape2D"]).fit_transform(X)
    assert "radiomics" not in capsys.readouterr().err


# ------------------------------------------------------------------------------------- errors


def _broken_cohorts(tmp_path):
    X = file_cohort(tmp_path, n=3, size=40)
    corrupt = tmp_path / "P2_corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    empty = write_mask(tmp_path / "P2_empty.png", np.zeros((40, 40), dtype=np.uint8))
    other_grid = write_mask(tmp_path / "P2_small.png", np.ones((30, 40), dtype=np.uint8))
    dot = np.zeros((40, 40), dtype=np.uint8)
    dot[20, 20] = 1
    single = write_mask(tmp_path / "P2_dot.png", dot)
    return X, {
        "corrupt image": ("image", str(corrupt), r"column 'image', file .*P2_corrupt\.png"),
        "empty mask": ("mask", empty, r"column 'mask', file .*P2_empty\.png': mask is empty"),
        "other grid": ("mask", other_grid, r"column 'mask', file .*P2_small.*\(30, 40\)"),
        "one pixel": ("mask", single, r"column 'mask', file .*P2_dot.*pyradiomics.*1 segmented"),
    }


@pytest.mark.parametrize("problem", ["corrupt image", "empty mask", "other grid", "one pixel"])
def test_on_error_raise_names_row_column_and_file(tmp_path, problem):
    X, problems = _broken_cohorts(tmp_path)
    column, value, pattern = problems[problem]
    X.loc[1, column] = value
    radiomics = RadiomicsFeatures(feature_classes=["firstorder", "shape2D"]).fit(X)
    with pytest.raises(CohortInputError, match="row 'P2', " + pattern) as info:
        radiomics.transform(X)
    assert info.value.row == "P2" and info.value.column == column


def test_on_error_nan_logs_and_continues(tmp_path, caplog):
    X, problems = _broken_cohorts(tmp_path)
    clean = RadiomicsFeatures(feature_classes=["firstorder", "shape2D"]).fit_transform(X)
    for problem, (column, value, pattern) in problems.items():
        broken = X.copy()
        broken.loc[1, column] = value
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            table = RadiomicsFeatures(
                feature_classes=["firstorder", "shape2D"], on_error="nan"
            ).fit_transform(broken)
        assert np.isnan(table[1]).all(), problem
        np.testing.assert_array_equal(table[[0, 2]], clean[[0, 2]])
        [record] = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert re.search("row 'P2', " + pattern, record.getMessage()), problem


def test_label_maps_and_label_setting():
    image, _ = lesion(40)
    rows, cols = np.mgrid[:40, :40]
    labels = np.zeros((40, 40), dtype=np.uint8)
    labels[(rows - 12) ** 2 + (cols - 12) ** 2 <= 36] = 1  # another structure
    labels[((rows - 26) / 7) ** 2 + ((cols - 24) / 11) ** 2 <= 1] = 2  # the lesion
    X = pd.DataFrame({"patient_id": ["P1"], "image": [image], "mask": [labels]})
    kwargs = {"feature_classes": ["firstorder", "glszm", "shape2D"]}
    table = RadiomicsFeatures(**kwargs, label=2).fit_transform(X)
    only_lesion = X.assign(mask=[(labels == 2).astype(np.uint8)])
    np.testing.assert_array_equal(table, RadiomicsFeatures(**kwargs).fit_transform(only_lesion))
    assert not np.array_equal(table, RadiomicsFeatures(**kwargs).fit_transform(X))

    with pytest.raises(CohortInputError, match=r"row 'P1', column 'mask': label 3 .*\[1, 2\]"):
        RadiomicsFeatures(**kwargs, label=3).fit_transform(X)
    with pytest.raises(ValueError, match="params sets label=2 but the estimator has label=1"):
        RadiomicsFeatures(params={"setting": {"label": 2}}).fit(X)


@pytest.mark.parametrize(
    "kwargs, error, pattern",
    [
        ({"image_types": ["Original", "Sobel"]}, ValueError, r"unknown image type 'Sobel'.*'LoG'"),
        ({"image_types": "Original"}, InvalidParameterError, "image_types"),
        ({"params": {"imageType": "Original"}}, TypeError, "must be a mapping"),
        ({"feature_classes": ["glcm", "haralick"]}, ValueError, r"'haralick'.*'glszm'"),
        ({"feature_classes": {"glcm": ["Contrast", "Bogus"]}}, ValueError, r"'Bogus'.*'Idmn'"),
        ({"feature_classes": ["shape"]}, ValueError, "3-D 'shape' feature class is undefined"),
        ({"image_types": ["LoG"]}, ValueError, "'LoG' needs sigma"),
        ({"image_types": ["LBP3D"]}, ValueError, "'LBP3D' is undefined on 2-D"),
        ({"image_types": {}}, ValueError, "enables no image type"),
        ({"params": {"settings": {}}}, ValueError, r"unknown section.*'settings'"),
        ({"params": {"setting": {"binWidth": -5}}}, ValueError, "invalid pyradiomics settings"),
        ({"params": {"setting": {"binwidth": 5}}}, ValueError, "invalid pyradiomics settings"),
        ({"params": {"setting": {"resampledPixelSpacing": [1, 1, 1]}}}, ValueError, "2 values"),
        ({"on_error": "skip"}, InvalidParameterError, "on_error"),
        ({"label": 0}, InvalidParameterError, "label"),
        ({"cache": 3}, InvalidParameterError, "cache"),
    ],
)
def test_invalid_parameters_are_rejected_in_fit(kwargs, error, pattern):
    X = array_cohort(n=1, size=32)
    radiomics = RadiomicsFeatures(**kwargs)  # __init__ only stores
    with pytest.raises(error, match=pattern):
        radiomics.fit(X)


def test_invalid_params_files(tmp_path):
    X = array_cohort(n=1, size=32)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        RadiomicsFeatures(params=tmp_path / "nope.yaml").fit(X)
    (tmp_path / "params.txt").write_text("setting: {}")
    with pytest.raises(ValueError, match=r"'\.txt'; expected .*\.yaml"):
        RadiomicsFeatures(params=tmp_path / "params.txt").fit(X)
    (tmp_path / "bad.yaml").write_text("setting: [unclosed")
    with pytest.raises(ValueError, match="could not parse params file"):
        RadiomicsFeatures(params=tmp_path / "bad.yaml").fit(X)


def test_input_checks():
    radiomics = RadiomicsFeatures(feature_classes=["shape2D"])
    with pytest.raises(TypeError, match="cohort DataFrame"):
        radiomics.fit(np.zeros((2, 4)))
    with pytest.raises(CohortInputError, match="column 'lesion': column not found"):
        RadiomicsFeatures(mask_col="lesion").fit(array_cohort(n=1))


# ------------------------------------------------------------------------- sklearn integration


def test_set_output_pandas_keeps_index_and_arrays_equal_files(tmp_path):
    X_files = file_cohort(tmp_path, n=3, size=40)
    X_files.index = ["a", "b", "c"]
    X_arrays = array_cohort(n=3, size=40, index=["a", "b", "c"])
    radiomics = RadiomicsFeatures(feature_classes=["firstorder", "shape2D"], prefix="us_")
    table = radiomics.set_output(transform="pandas").fit_transform(X_files)
    assert isinstance(table, pd.DataFrame)
    assert list(table.index) == ["a", "b", "c"]
    assert list(table.columns) == list(radiomics.get_feature_names_out())
    assert all(c.startswith("us_original_") for c in table.columns)
    assert "us_original_shape2D_Elongation" in table.columns
    pd.testing.assert_frame_equal(radiomics.transform(X_arrays), table)


def test_rgb_images_are_converted_with_bt601_luma():
    image, mask = lesion(40)
    rgb = np.stack([image, np.roll(image, 3, axis=1), 255 - image], axis=-1).astype(np.float64)
    gray = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    np.testing.assert_allclose(to_gray(rgb), gray, rtol=0, atol=1e-12)
    X = pd.DataFrame({"image": [rgb], "mask": [mask]})
    table = RadiomicsFeatures(feature_classes=["firstorder", "glcm"]).fit_transform(X)
    extractor = RadiomicsFeatureExtractor({"featureClass": {"firstorder": [], "glcm": []}})
    _, expected = plain_pyradiomics(extractor, *zip(sitk_pair(gray, mask)))
    np.testing.assert_array_equal(table, expected)


def test_pipeline_on_synthetic_cohort_beats_chance(tmp_path):
    X, y = make_alnm_cohort(120, modalities=("ultrasound",), image_size=48, random_state=0)
    pipe = make_pipeline(
        RadiomicsFeatures(feature_classes=["shape2D", "firstorder"], cache=tmp_path),
        StandardScaler(),
        LogisticRegression(C=0.01),
    )
    cv = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    scores = cross_val_predict(pipe, X, y, cv=cv, method="predict_proba")[:, 1]
    # chance gives 0.5 +- 0.05 (one standard deviation) with 60 + 60 patients
    assert roc_auc_score(y, scores) > 0.65


def test_pickle_round_trip(tmp_path):
    X = array_cohort(n=2, size=32)
    radiomics = RadiomicsFeatures(
        image_types={"Original": {}, "LoG": {"sigma": [1.0]}}, feature_classes=["firstorder"]
    ).fit(X)
    restored = pickle.loads(pickle.dumps(radiomics))
    assert restored.feature_names_out_ == radiomics.feature_names_out_
    np.testing.assert_array_equal(restored.transform(X), radiomics.transform(X))
    assert "RadiomicsFeatures(" in repr(restored)


def _jpeg_mask(path, size=128):
    """A 0/255 disk saved as JPEG (quality 75): lossy noise around the lesion, as clinics export."""
    from PIL import Image

    yy, xx = np.mgrid[:size, :size]
    disk = (yy - 64) ** 2 + (xx - 60) ** 2 < 30**2
    Image.fromarray((disk * 255).astype(np.uint8)).save(path, quality=75)
    return disk


def test_jpeg_masks_give_radiomics_and_read_mask_the_same_lesion(tmp_path):
    from PIL import Image

    from sklearn_alnm.io import LossyMaskWarning, read_mask

    rng = np.random.default_rng(0)
    rows = []
    for i in range(2):
        disk = _jpeg_mask(tmp_path / f"m{i}.jpg")
        image = (rng.normal(80, 10, disk.shape) + 60 * disk).clip(0, 255).astype(np.uint8)
        write_image(tmp_path / f"i{i}.png", image)
        rows.append(
            {
                "patient_id": f"P{i}",
                "image": str(tmp_path / f"i{i}.png"),
                "mask": str(tmp_path / f"m{i}.jpg"),
            }
        )
    X = pd.DataFrame(rows)
    raw = np.asarray(Image.open(tmp_path / "m0.jpg"))
    # The problem: JPEG noise makes 'non-zero' a bigger lesion, and '== 1' almost nothing.
    assert len(np.unique(raw)) > 2 and (raw > 0).sum() > 1.05 * disk.sum()
    assert (raw == 1).sum() < 0.1 * disk.sum()
    with pytest.warns(LossyMaskWarning, match="binarised at half their maximum"):
        mask = read_mask(tmp_path / "m0.jpg")
    assert abs(int(mask.sum()) - int(disk.sum())) <= 0.01 * disk.sum()
    np.testing.assert_array_equal(read_mask(tmp_path / "m0.jpg", binary=False), mask)
    radiomics = RadiomicsFeatures(image_types={"Original": {}}, feature_classes=["shape2D"])
    with pytest.warns(LossyMaskWarning, match="column 'mask'"):
        table = radiomics.fit(X).transform(X)
    names = list(radiomics.get_feature_names_out())
    surface = table[:, names.index("original_shape2D_PixelSurface")]
    expected = [read_mask(tmp_path / f"m{i}.jpg").sum() for i in range(2)]
    np.testing.assert_array_equal(surface, expected)  # the same pixels, not ~2 % of them


def test_skipped_rows_reach_the_user_and_all_failing_is_an_error(tmp_path):
    X, problems = _broken_cohorts(tmp_path)
    column, value, _ = next(iter(problems.values()))
    broken = X.copy()
    broken.loc[1, column] = value
    radiomics = RadiomicsFeatures(feature_classes=["firstorder"], on_error="nan")
    with pytest.warns(UserWarning, match=r"1 of 3 rows failed.*first: .*row 'P2'"):
        radiomics.fit_transform(broken)  # no logging configured: a warning says it
    everything = X.copy()
    everything[column] = [value] * len(X)
    with pytest.raises(CohortInputError, match="failed for every one of the 3 rows"):
        radiomics.fit_transform(everything)
