"""Tests of sklearn_alnm.datasets: the synthetic cohort generator and the BUSI loader."""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_alnm.datasets import load_busi, make_alnm_cohort
from sklearn_alnm.io import (
    load_manifest,
    read_image,
    read_mask,
    read_video,
    write_image,
    write_mask,
)

CLINICAL = [
    "age",
    "tumor_size_mm",
    "t_stage",
    "histologic_type",
    "grade",
    "er",
    "pr",
    "her2",
    "ki67",
    "lvi",
    "birads",
    "axillary_us",
]
CATEGORICAL = {
    "t_stage": ["T1", "T2", "T3"],
    "histologic_type": ["IDC", "ILC", "other"],
    "grade": [1, 2, 3],
    "er": ["negative", "positive"],
    "pr": ["negative", "positive"],
    "her2": ["negative", "positive"],
    "lvi": ["absent", "present"],
    "birads": ["3", "4A", "4B", "4C", "5"],
    "axillary_us": ["negative", "suspicious"],
}
IMAGE_COLUMNS = ["image", "mask", "cc_image", "cc_mask", "mlo_image", "mlo_mask", "pathology"]
ALL_COLUMNS = ["patient_id", *CLINICAL, *IMAGE_COLUMNS, "video", "bag", "bag_kind", "bag_mask"]
ARRAY_COLUMNS = [*IMAGE_COLUMNS, "video"]


@pytest.fixture(scope="module")
def small():
    return make_alnm_cohort(60, image_size=32, n_frames=8, random_state=0)


def _assert_same_cohort(X1, X2):
    assert list(X1.columns) == list(X2.columns)
    other = [c for c in X1.columns if c not in ARRAY_COLUMNS + ["bag", "bag_mask"]]
    pd.testing.assert_frame_equal(X1[other], X2[other])
    for column in [c for c in ARRAY_COLUMNS if c in X1.columns]:
        for a, b in zip(X1[column], X2[column]):
            assert a.dtype == b.dtype and np.array_equal(a, b)
    for column in [c for c in ("bag", "bag_mask") if c in X1.columns]:
        for bag1, bag2 in zip(X1[column], X2[column]):
            assert len(bag1) == len(bag2)
            assert all(np.array_equal(a, b) for a, b in zip(bag1, bag2))


# --------------------------------------------------------------------------- structure


def test_columns_shapes_and_dtypes(small):
    X, y = small
    assert list(X.columns) == ALL_COLUMNS
    assert X.index.equals(pd.RangeIndex(60))
    assert X["patient_id"].tolist() == [f"P{i:04d}" for i in range(1, 61)]
    for column in ["image", "cc_image", "mlo_image"]:
        for image in X[column]:
            assert image.shape == (32, 32) and image.dtype == np.float32
            assert 0 <= image.min() and image.max() <= 255
            assert np.array_equal(image, np.round(image))  # 8-bit intensity grid
    for column in ["mask", "cc_mask", "mlo_mask"]:
        for mask in X[column]:
            assert mask.shape == (32, 32) and mask.dtype == np.uint8
            assert set(np.unique(mask)) == {0, 1}  # binary and never empty
    for tile in X["pathology"]:
        assert tile.shape == (32, 32, 3) and tile.dtype == np.float32
        assert 0 <= tile.min() and tile.max() <= 255
    for clip in X["video"]:
        assert clip.shape == (8, 32, 32) and clip.dtype == np.float32
        assert 0 <= clip.min() and clip.max() <= 255
    for bag, kinds in zip(X["bag"], X["bag_kind"]):
        assert isinstance(bag, list) and isinstance(kinds, list)
        assert len(bag) == len(kinds) >= 1
        assert set(kinds) <= {"tumor", "node"}
        assert kinds == sorted(kinds, key=lambda k: k != "tumor")  # tumour images first
        assert kinds.count("tumor") in (1, 2) and kinds.count("node") <= 5
        assert all(b.shape == (32, 32) and b.dtype == np.float32 for b in bag)
    for bag, masks, kinds in zip(X["bag"], X["bag_mask"], X["bag_kind"]):
        assert isinstance(masks, list) and len(masks) == len(bag)
        for image, mask, kind in zip(bag, masks, kinds):
            assert (
                mask.shape == (32, 32) and mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 1}
            )
            assert 0.02 < mask.mean() < 0.5  # a lesion, not the image
            if kind == "tumor":  # the hypoechoic tumour (a node's bright hilum is inside it)
                assert image[mask == 1].mean() < image[mask == 0].mean()


def test_clinical_columns_are_typed_and_consistent(small):
    X, _ = small
    for column, categories in CATEGORICAL.items():
        assert isinstance(X[column].dtype, pd.CategoricalDtype), column
        assert list(X[column].cat.categories) == categories
        assert X[column].notna().all()
    assert X["t_stage"].cat.ordered and X["birads"].cat.ordered and X["grade"].cat.ordered
    for column in ["age", "tumor_size_mm", "ki67"]:
        assert pd.api.types.is_numeric_dtype(X[column]), column
    assert X["age"].between(25, 89).all()
    assert X["ki67"].between(0, 100).all()
    assert (X["tumor_size_mm"] > 0).all()
    expected_stage = np.select(
        [X["tumor_size_mm"] <= 20, X["tumor_size_mm"] <= 50], ["T1", "T2"], default="T3"
    )
    assert (X["t_stage"].astype(str).to_numpy() == expected_stage).all()


@pytest.mark.parametrize("n, fraction", [(60, 0.5), (61, 0.3), (20, 0.05), (7, 0.9)])
def test_exact_number_of_positives(n, fraction):
    _, y = make_alnm_cohort(n, modalities="clinical", positive_fraction=fraction, random_state=3)
    assert y.shape == (n,) and y.dtype.kind == "i"
    assert set(np.unique(y)) == {0, 1}
    assert y.sum() == round(n * fraction)


def test_labels_are_shuffled(small):
    _, y = small
    assert not np.array_equal(y, np.sort(y)) and not np.array_equal(y, np.sort(y)[::-1])


def test_some_patients_have_no_node_image(small):
    X, y = small
    n_nodes = np.array([kinds.count("node") for kinds in X["bag_kind"]])
    assert (n_nodes == 0).any() and (n_nodes > 0).any()
    assert ((n_nodes == 0) & (y == 1)).any(), "missing node images must not reveal the label"
    assert ((n_nodes == 0) & (y == 0)).any()


def _node_suspicion(image):
    """Hypoechoic cortex minus echogenic hilum in the image centre (grows with involvement)."""
    h, w = image.shape
    centre = ndimage.gaussian_filter(image, 1.0)[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4]
    return (centre < 70).mean() - (centre > 120).mean()


def test_bag_label_rests_on_the_most_suspicious_node():
    """An N+ patient has involved and uninvolved nodes: the most suspicious node image tells
    the label better than the average one, and the number of node images does not tell it."""
    X, y = make_alnm_cohort(300, modalities="bag", image_size=32, random_state=1)
    n_nodes = np.array([kinds.count("node") for kinds in X["bag_kind"]])
    assert set(n_nodes) == {0, 1, 2, 3, 4, 5}
    assert abs(n_nodes[y == 1].mean() - n_nodes[y == 0].mean()) < 0.3
    several = n_nodes >= 2
    scores = [
        [_node_suspicion(im) for im, kind in zip(bag, kinds) if kind == "node"]
        for bag, kinds in zip(X["bag"][several], X["bag_kind"][several])
    ]
    auc_max = roc_auc_score(y[several], [max(s) for s in scores])
    auc_mean = roc_auc_score(y[several], [np.mean(s) for s in scores])
    assert auc_max > auc_mean + 0.01 and auc_max > 0.8, (auc_max, auc_mean)
    # within a patient with a visible metastasis, node images differ: the spread of the
    # suspicion inside N+ bags exceeds that inside N0 bags (all uninvolved)
    spread = np.array([np.ptp(s) for s in scores])
    assert spread[y[several] == 1].mean() > 1.5 * spread[y[several] == 0].mean()


def test_mammography_views_show_the_same_mass(small):
    X, _ = small
    cc_area = np.array([m.sum() for m in X["cc_mask"]], dtype=float)
    mlo_area = np.array([m.sum() for m in X["mlo_mask"]], dtype=float)
    assert np.corrcoef(cc_area, mlo_area)[0, 1] > 0.9
    # depth from the chest wall (column of the mass centre) is shared by both projections
    cc_col = np.array([ndimage.center_of_mass(m)[1] for m in X["cc_mask"]])
    mlo_col = np.array([ndimage.center_of_mass(m)[1] for m in X["mlo_mask"]])
    assert np.abs(cc_col - mlo_col).max() < 1.5
    # the MLO view, not the CC view, shows the bright pectoral muscle in its upper-left corner
    corner = slice(0, 4), slice(0, 4)
    assert np.mean([m[corner].mean() for m in X["mlo_image"]]) > 2 * np.mean(
        [m[corner].mean() for m in X["cc_image"]]
    )


def test_pathology_is_pink_stroma_with_purple_nuclei(small):
    X, _ = small
    for tile in X["pathology"][:10]:
        red, green, blue = tile[..., 0], tile[..., 1], tile[..., 2]
        # eosin absorbs green most: stroma is pink (red and blue above green)
        assert np.median(red) > np.median(green) and np.median(blue) > np.median(green)
        # haematoxylin absorbs red too: nuclei are the darkest-red pixels, and they exist
        assert (red < 0.6 * np.median(red)).mean() > 0.02


# --------------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_cohort(small):
    X1, y1 = small
    X2, y2 = make_alnm_cohort(60, image_size=32, n_frames=8, random_state=0)
    np.testing.assert_array_equal(y1, y2)
    _assert_same_cohort(X1, X2)


def test_different_seeds_differ(small):
    X1, y1 = small
    X2, y2 = make_alnm_cohort(60, image_size=32, n_frames=8, random_state=1)
    assert not np.array_equal(y1, y2)
    assert not X1["age"].equals(X2["age"])
    for column in ARRAY_COLUMNS:
        assert not np.array_equal(X1.loc[0, column], X2.loc[0, column]), column


def test_subset_of_modalities_matches_full_cohort(small):
    X, y = small
    X_sub, y_sub = make_alnm_cohort(
        60,
        modalities=("pathology", "clinical", "bag"),
        image_size=32,
        n_frames=8,
        random_state=0,
    )
    np.testing.assert_array_equal(y, y_sub)
    assert list(X_sub.columns) == [
        "patient_id",
        *CLINICAL,
        "pathology",
        "bag",
        "bag_kind",
        "bag_mask",
    ]
    _assert_same_cohort(X[list(X_sub.columns)], X_sub)
    X_us, _ = make_alnm_cohort(10, modalities="ultrasound", image_size=32, random_state=0)
    assert list(X_us.columns) == ["patient_id", "image", "mask"]


def test_numpy_random_states_are_accepted():
    X1, y1 = make_alnm_cohort(12, modalities="clinical", random_state=np.random.RandomState(4))
    X2, y2 = make_alnm_cohort(12, modalities="clinical", random_state=np.random.RandomState(4))
    pd.testing.assert_frame_equal(X1, X2)
    X3, _ = make_alnm_cohort(12, modalities="clinical", random_state=np.random.default_rng(4))
    X4, _ = make_alnm_cohort(12, modalities="clinical", random_state=np.random.default_rng(4))
    pd.testing.assert_frame_equal(X3, X4)
    rng = np.random.default_rng(5)  # a shared generator advances: two calls differ
    X5, _ = make_alnm_cohort(12, modalities="clinical", random_state=rng)
    X6, _ = make_alnm_cohort(12, modalities="clinical", random_state=rng)
    assert not X5["age"].equals(X6["age"])


def test_more_than_9999_patients_keep_sortable_ids():
    X, _ = make_alnm_cohort(10000, modalities="clinical", random_state=0)
    assert X["patient_id"].iloc[0] == "P00001" and X["patient_id"].iloc[-1] == "P10000"
    assert X["patient_id"].is_monotonic_increasing


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"n_patients": 1}, ValueError, "n_patients must be >= 2"),
        ({"n_patients": 10.0}, TypeError, "n_patients must be an int"),
        ({"modalities": "xray"}, ValueError, "Unknown modality 'xray'"),
        ({"modalities": ()}, ValueError, "at least one"),
        ({"modalities": 3}, TypeError, "modalities must be"),
        ({"image_size": 8}, ValueError, "image_size must be >= 16"),
        ({"n_frames": 2}, ValueError, "n_frames must be >= 4"),
        ({"positive_fraction": 1.0}, ValueError, r"positive_fraction must be in \(0, 1\)"),
        ({"positive_fraction": "half"}, TypeError, "positive_fraction must be a float"),
        ({"n_patients": 4, "positive_fraction": 0.1}, ValueError, "both classes"),
        ({"random_state": "seed"}, TypeError, "random_state must be"),
        ({"random_state": -1}, ValueError, "non-negative"),
        ({"data_home": 3}, TypeError, "data_home must be"),
    ],
)
def test_invalid_parameters(kwargs, error, match):
    params = {"n_patients": 20, "modalities": "clinical", **kwargs}
    with pytest.raises(error, match=match):
        make_alnm_cohort(**params)


# --------------------------------------------------------------------------- learnability
#
# Each modality gets a plain logistic regression on a few hand-made features, the kind a user
# would compute before reaching for deep learning. They must beat chance on held-out folds,
# and summing the standardised per-modality scores must beat the best single modality.


def _mask_shape(mask):
    mask = mask.astype(bool)
    area = mask.sum()
    perimeter = (mask & ~ndimage.binary_erosion(mask)).sum()
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    height = np.ptp(rows) + 1 if rows.size else 0
    width = np.ptp(cols) + 1 if cols.size else 1
    return [np.log1p(area), perimeter**2 / max(area, 1), height / width]


def _clinical_features(X):
    numeric = X[["age", "tumor_size_mm", "ki67"]].to_numpy(float)
    return np.hstack([numeric, pd.get_dummies(X[list(CATEGORICAL)]).to_numpy(float)])


def _ultrasound_features(X):
    """Shape (area, compactness, taller-than-wide), echo and posterior acoustic features."""
    rows = []
    for image, mask in zip(X["image"], X["mask"]):
        mask = mask.astype(bool)
        smooth = ndimage.gaussian_filter(image, 1.0)
        below = np.maximum.accumulate(mask, axis=0) & ~mask
        beside = np.zeros_like(mask)
        beside[np.ix_(below.any(axis=1), ~mask.any(axis=0))] = True
        posterior = smooth[below].mean() / (smooth[beside].mean() + 1.0)
        rim = ndimage.binary_dilation(mask, iterations=2) & ~mask
        rows.append(
            _mask_shape(mask)
            + [image[mask].mean(), smooth[mask].std(), posterior, smooth[rim].mean()]
        )
    return np.array(rows)


def _mammography_features(X):
    """Per view: mass shape, mass contrast, spicule/calcification texture; averaged over views."""
    views = []
    for view in ("cc", "mlo"):
        rows = []
        for image, mask in zip(X[f"{view}_image"], X[f"{view}_mask"]):
            mask = mask.astype(bool)
            ring = ndimage.binary_dilation(mask, iterations=6) & ~ndimage.binary_dilation(mask)
            far = ndimage.binary_dilation(mask, iterations=12) & ~ndimage.binary_dilation(
                mask, iterations=6
            )
            detail = image - ndimage.gaussian_filter(image, 2.0)
            rows.append(
                _mask_shape(mask)
                + [image[mask].mean() - image[far].mean(), detail[ring].std(), (detail > 25).sum()]
            )
        views.append(np.array(rows))
    return (views[0] + views[1]) / 2.0


def _pathology_features(X):
    """Nuclear area fraction, count, size, size variation and staining (red optical density)."""
    rows = []
    for tile in X["pathology"]:
        density = -np.log(np.clip(tile[..., 0], 1.0, None) / 250.0)
        nuclei = density > 0.6
        labels, count = ndimage.label(nuclei)
        sizes = np.bincount(labels.ravel())[1:] if count else np.zeros(1)
        stain = density[nuclei].mean() if nuclei.any() else 0.0
        rows.append([nuclei.mean(), count, sizes.mean(), sizes.std(), stain])
    return np.array(rows)


def _centre_radius(height, width):
    yy, xx = np.mgrid[:height, :width]
    return np.hypot(yy - (height - 1) / 2, xx - (width - 1) / 2) / height


def _video_features(X):
    """Temporal statistics: how much the lesion and its surroundings change between frames."""
    rows = []
    for clip in X["video"]:
        smooth = ndimage.gaussian_filter(clip, (0, 1.0, 1.0))
        radius = _centre_radius(*clip.shape[1:])
        temporal_sd = smooth.std(axis=0)
        change = np.abs(np.diff(smooth, axis=0)).mean(axis=0)  # mean frame-to-frame change
        background = np.median(change)
        rows.append(
            [
                np.percentile(change[radius < 0.3], 99) / background,
                change[radius < 0.1].mean() / background,
                temporal_sd[radius < 0.3].mean() / np.median(temporal_sd),
            ]
        )
    return np.array(rows)


def _first_frame_features(X):
    """The same kind of statistics on one frame only (no temporal information)."""
    rows = []
    for clip in X["video"]:
        frame = ndimage.gaussian_filter(clip[0], 1.0)
        centre = frame[_centre_radius(*frame.shape) < 0.25]
        rows.append([(centre < 60).mean(), centre.mean(), centre.std(), np.percentile(centre, 95)])
    return np.array(rows)


def _bag_features(X):
    """Node images: hypoechoic (cortex) and echogenic (hilum) fractions, mean and max over the
    patient's nodes; patients without node image get the column mean and a missing flag."""
    rows = []
    for bag, kinds in zip(X["bag"], X["bag_kind"]):
        nodes = [image for image, kind in zip(bag, kinds) if kind == "node"]
        if not nodes:
            rows.append([np.nan, np.nan, np.nan, 1.0])
            continue
        stats = []
        for image in nodes:
            h, w = image.shape
            centre = ndimage.gaussian_filter(image, 1.0)[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4]
            stats.append([(centre < 70).mean(), (centre > 120).mean()])
        stats = np.array(stats)
        rows.append([*stats.mean(axis=0), stats[:, 0].max(), 0.0])
    table = np.array(rows)
    missing = np.isnan(table)
    table[missing] = np.take(np.nanmean(table, axis=0), np.nonzero(missing)[1])
    return table


FEATURES = {
    "clinical": _clinical_features,
    "ultrasound": _ultrasound_features,
    "mammography": _mammography_features,
    "pathology": _pathology_features,
    "video": _video_features,
    "bag": _bag_features,
}


@pytest.fixture(scope="module")
def cv_scores():
    """Per-fold held-out AUCs of each modality, of their combination and of a single frame."""
    X, y = make_alnm_cohort(200, image_size=32, n_frames=8, random_state=1)
    features = {name: extract(X) for name, extract in FEATURES.items()}
    features["single frame"] = _first_frame_features(X)
    aucs = {name: [] for name in [*features, "combined"]}
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    for train, test in folds.split(features["clinical"], y):
        combined = np.zeros(len(test))
        for name, F in features.items():
            model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=1000))
            model.fit(F[train], y[train])
            score = model.decision_function(F[test])
            aucs[name].append(roc_auc_score(y[test], score))
            if name in FEATURES:
                fitted = model.decision_function(F[train])
                combined += (score - fitted.mean()) / fitted.std()
        aucs["combined"].append(roc_auc_score(y[test], combined))
    return {name: float(np.mean(values)) for name, values in aucs.items()}


@pytest.mark.parametrize("modality", list(FEATURES))
def test_each_modality_is_informative_but_not_trivial(cv_scores, modality):
    assert 0.7 < cv_scores[modality] < 0.95, cv_scores


def test_combining_modalities_beats_the_best_single_one(cv_scores):
    best = max(cv_scores[m] for m in FEATURES)
    assert cv_scores["combined"] > best + 0.02, cv_scores


def test_video_signal_is_temporal(cv_scores):
    assert cv_scores["single frame"] < 0.65 < cv_scores["video"] - 0.05, cv_scores


# --------------------------------------------------------------------------- data_home


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    home = tmp_path_factory.mktemp("cohort")
    kwargs = {"image_size": 32, "n_frames": 8, "random_state": 7}
    X_files, y_files = make_alnm_cohort(12, data_home=home, **kwargs)
    X_memory, y_memory = make_alnm_cohort(12, **kwargs)
    return home, X_files, y_files, X_memory, y_memory


def test_data_home_writes_the_stated_formats(written):
    home, X, y, _, y_memory = written
    np.testing.assert_array_equal(y, y_memory)
    expected = {
        "image": ".png",
        "mask": ".png",
        "cc_image": ".nii.gz",
        "cc_mask": ".nii.gz",
        "mlo_image": ".nii.gz",
        "mlo_mask": ".nii.gz",
        "pathology": ".png",
        "video": ".mp4",
    }
    for column, ext in expected.items():
        for path in X[column]:
            assert isinstance(path, str) and path.endswith(ext), (column, path)
            assert os.path.isfile(path) and Path(home) in Path(path).parents
    for bag, kinds in zip(X["bag"], X["bag_kind"]):
        assert len(bag) == len(kinds)
        assert all(p.endswith(".png") and os.path.isfile(p) for p in bag)
    with open(Path(path).parents[1] / "video" / "P0001.mp4", "rb") as fh:
        assert fh.read(12)[4:8] == b"ftyp"  # an ISO-BMFF (MP4) container
    manifest = home / "manifest.csv"
    assert manifest.is_file()
    raw = pd.read_csv(manifest)
    assert raw.loc[0, "image"] == "ultrasound/P0001.png"  # stored relative: the folder can move


def test_manifest_loads_back_to_the_same_table(written):
    home, X, y, _, _ = written
    loaded = load_manifest(home / "manifest.csv")
    assert list(loaded.columns) == [*X.columns, "label"]  # the file is a complete study table
    np.testing.assert_array_equal(loaded.pop("label").to_numpy(), y)
    for column in X.columns:
        if column in ARRAY_COLUMNS or column in ("bag", "bag_kind", "bag_mask", "patient_id"):
            assert loaded[column].tolist() == X[column].tolist(), column
        elif column in CATEGORICAL:
            assert loaded[column].astype(str).tolist() == X[column].astype(str).tolist()
        else:
            np.testing.assert_allclose(loaded[column].to_numpy(float), X[column].to_numpy(float))


def test_files_read_back_match_the_in_memory_cohort(written):
    _, X, _, M, _ = written
    pd.testing.assert_frame_equal(X[CLINICAL], M[CLINICAL])
    for column in ["image", "cc_image", "mlo_image", "pathology"]:
        for path, array in zip(X[column], M[column]):
            np.testing.assert_array_equal(read_image(path), array)
    for column in ["mask", "cc_mask", "mlo_mask"]:
        for path, array in zip(X[column], M[column]):
            np.testing.assert_array_equal(read_mask(path), array)
    for path, clip in zip(X["video"], M["video"]):
        decoded = read_video(path)
        assert decoded.shape == clip.shape
        assert np.abs(decoded - clip).max() <= 2.0  # H.264 at CRF 0: within codec rounding
    for paths, masks in zip(X["bag_mask"], M["bag_mask"]):
        for path, array in zip(paths, masks):
            assert path.endswith("_mask.png")
            np.testing.assert_array_equal(read_mask(path), array)
    for paths, bag in zip(X["bag"], M["bag"]):
        for path, array in zip(paths, bag):
            np.testing.assert_array_equal(read_image(path), array)


def test_data_home_must_be_a_folder(tmp_path):
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("x")
    with pytest.raises(ValueError, match="must be a folder"):
        make_alnm_cohort(4, modalities="ultrasound", image_size=16, data_home=not_a_folder)


def test_clinical_only_data_home_writes_just_the_manifest(tmp_path):
    X, _ = make_alnm_cohort(5, modalities="clinical", random_state=0, data_home=tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["manifest.csv"]
    assert load_manifest(tmp_path / "manifest.csv")["patient_id"].tolist() == list(X.patient_id)


# --------------------------------------------------------------------------- BUSI (fake layout)


def _fake_busi(root, *, normal=True):
    """A miniature BUSI tree: numbered images, single and multiple masks, a stray file."""
    top = root / "Dataset_BUSI_with_GT"
    cases = {
        "benign": {1: 1, 2: 2, 10: 1},
        "malignant": {3: 3},
        "normal": {1: 1},
    }
    if not normal:
        del cases["normal"]
    for label, numbers in cases.items():
        folder = top / label
        folder.mkdir(parents=True)
        for number, n_masks in numbers.items():
            stem = folder / f"{label} ({number})"
            image = np.full((6, 9), 10 * number, dtype=np.uint8)
            write_image(f"{stem}.png", image)
            for k in range(n_masks):
                mask = np.zeros((6, 9), dtype=np.uint8)
                mask[k, k] = 255
                suffix = "_mask" if k == 0 else f"_mask_{k}"
                write_mask(f"{stem}{suffix}.png", mask)
        (folder / ".DS_Store").write_bytes(b"\x00")
    return top


def test_load_busi_on_a_fake_layout(tmp_path):
    top = _fake_busi(tmp_path)
    data = load_busi(tmp_path)  # the parent folder works ...
    pd.testing.assert_frame_equal(data, load_busi(top))  # ... and so does the folder itself
    assert list(data.columns) == ["case_id", "image", "mask", "label"]
    assert data["case_id"].tolist() == [
        "normal_0001",
        "benign_0001",
        "benign_0002",
        "benign_0010",
        "malignant_0003",
    ]
    assert isinstance(data["label"].dtype, pd.CategoricalDtype)
    assert list(data["label"].cat.categories) == ["normal", "benign", "malignant"]
    assert data["label"].tolist() == ["normal", "benign", "benign", "benign", "malignant"]
    assert data.loc[1, "image"] == str(top / "benign" / "benign (1).png")
    assert data.loc[1, "mask"] == str(top / "benign" / "benign (1)_mask.png")
    assert [os.path.basename(p) for p in data.loc[4, "mask"]] == [
        "malignant (3)_mask.png",
        "malignant (3)_mask_1.png",
        "malignant (3)_mask_2.png",
    ]
    merged = read_mask(data.loc[4, "mask"], shape=read_image(data.loc[4, "image"]).shape)
    assert merged.sum() == 3 and merged[0, 0] == merged[1, 1] == merged[2, 2] == 1
    assert read_image(data.loc[3, "image"])[0, 0] == 100


def test_load_busi_options(tmp_path):
    top = _fake_busi(tmp_path)
    data = load_busi(top, include_normal=False)
    assert data["case_id"].tolist()[0] == "benign_0001" and len(data) == 4
    assert list(data["label"].cat.categories) == ["benign", "malignant"]
    X, y = load_busi(top, return_X_y=True)
    assert list(X.columns) == ["case_id", "image", "mask"]
    assert y.name == "label" and y.tolist()[0] == "normal" and len(X) == len(y) == 5


def test_load_busi_without_normal_folder(tmp_path):
    _fake_busi(tmp_path, normal=False)
    assert len(load_busi(tmp_path, include_normal=False)) == 4
    with pytest.raises(ValueError, match="'normal/'"):
        load_busi(tmp_path)


def test_load_busi_rejects_a_wrong_layout(tmp_path):
    (tmp_path / "images").mkdir()
    with pytest.raises(
        ValueError, match=r"expected sub-folders 'normal/', 'benign/'.*found: \['images'\]"
    ):
        load_busi(tmp_path)
    with pytest.raises(FileNotFoundError):
        load_busi(tmp_path / "absent")
    with pytest.raises(TypeError, match="path must be"):
        load_busi(3)
    with pytest.raises(TypeError, match="include_normal must be a bool"):
        load_busi(tmp_path, include_normal="yes")


def test_load_busi_rejects_a_mask_without_image(tmp_path):
    top = _fake_busi(tmp_path)
    os.remove(top / "benign" / "benign (2).png")
    with pytest.raises(ValueError, match=r"mask 'benign \(2\)_mask.*has no image"):
        load_busi(top)


def test_load_busi_rejects_an_empty_class(tmp_path):
    top = _fake_busi(tmp_path)
    for name in os.listdir(top / "malignant"):
        os.remove(top / "malignant" / name)
    with pytest.raises(ValueError, match="holds no image"):
        load_busi(top)


# --------------------------------------------------------------------------- BUSI (real data)


def _busi_dir():
    env = os.environ.get("ALNM_BUSI_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / ".." / "shared" / "data" / "busi"


@pytest.fixture(scope="module")
def busi():
    folder = _busi_dir()
    if not folder.is_dir():
        pytest.skip(f"BUSI not found at {folder}; set ALNM_BUSI_DIR to its folder")
    return load_busi(folder)


@pytest.mark.busi
def test_real_busi_counts_and_ids(busi):
    assert busi["label"].value_counts().to_dict() == {
        "benign": 437,
        "malignant": 210,
        "normal": 133,
    }
    assert busi["case_id"].is_unique
    assert busi.loc[busi["label"] == "benign", "case_id"].iloc[:3].tolist() == [
        "benign_0001",
        "benign_0002",
        "benign_0003",
    ]


@pytest.mark.busi
def test_real_busi_has_multi_mask_cases(busi):
    n_masks = busi["mask"].map(lambda m: len(m) if isinstance(m, list) else 1)
    assert (n_masks >= 2).sum() >= 10 and n_masks.max() == 3
    assert busi["mask"].notna().all()


@pytest.mark.busi
def test_real_busi_masks_share_their_image_grid(busi):
    multi = busi.index[busi["mask"].map(lambda m: isinstance(m, list))]
    single = busi.index.difference(multi)
    rng = np.random.default_rng(0)
    sample = np.sort(np.concatenate([multi, rng.choice(single, 60 - len(multi), replace=False)]))
    for i in sample:
        image = read_image(busi.loc[i, "image"])
        mask = read_mask(busi.loc[i, "mask"], shape=image.shape[:2])
        assert mask.shape == image.shape[:2] and mask.dtype == np.uint8
        assert set(np.unique(mask)) <= {0, 1}
        if busi.loc[i, "label"] == "normal":
            assert not mask.any()
        else:
            assert mask.any(), busi.loc[i, "case_id"]
