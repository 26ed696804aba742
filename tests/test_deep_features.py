import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_alnm.datasets import make_alnm_cohort
from sklearn_alnm.features._deep import DeepFeatures
from sklearn_alnm.io import write_image, write_mask
from sklearn_alnm.nn import WeightsNotAvailableError
from sklearn_alnm.utils import CohortInputError, FeatureCache

SIZE = 32  # network input side used throughout: small and fast


def _deep(**params):
    """The transformer under test; SqueezeNet (1.2 M parameters) unless a test needs another."""
    defaults = {
        "mask_col": "mask",
        "backbone": "squeezenet1_1",
        "input_size": SIZE,
        "random_state": 0,
    }
    return DeepFeatures(**{**defaults, **params})


def _lesion_cohort(n=5, shape=(48, 48), seed=0):
    """Textured lesions of varying size on a smooth background, with their masks."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    images, masks = [], []
    for k in range(n):
        image = (60 + 30 * np.sin(rows / 5.0 + k) + rng.normal(0, 5, shape)).clip(0, 255)
        mask = np.zeros(shape, dtype=np.uint8)
        r, c, h, w = 8 + k, 10 + 2 * k, 12 + k, 14
        mask[r : r + h, c : c + w] = 1
        image[mask == 1] = rng.uniform(120, 250, int(mask.sum()))
        images.append(image.astype(np.float32))
        masks.append(mask)
    ids = [f"P{k + 1}" for k in range(n)]
    return pd.DataFrame({"patient_id": ids, "image": images, "mask": masks})


@pytest.fixture(scope="module")
def cohort():
    return _lesion_cohort()


@pytest.fixture(scope="module")
def fitted(cohort):
    deep = _deep(backbone="resnet18").fit(cohort)
    return deep, deep.transform(cohort)


class _ForwardCounter:
    """Counts forward calls and images seen by a module (a forward hook)."""

    def __init__(self, module):
        self.calls = self.images = 0
        self._handle = module.register_forward_hook(self)

    def __call__(self, module, args, output):
        self.calls += 1
        self.images += args[0].shape[0]

    def remove(self):
        self._handle.remove()


# ------------------------------------------------------------------------------ basics


def test_shape_names_and_fitted_attributes(fitted, cohort):
    deep, features = fitted
    assert features.shape == (len(cohort), 512)
    assert features.dtype == np.float64 and np.isfinite(features).all()
    assert features.std(axis=0).max() > 0  # rows differ
    names = deep.get_feature_names_out()
    assert names[0] == "deep_0" and names[-1] == "deep_511" and len(names) == 512
    assert deep.weights_source_ == "random (seed 0)"
    assert len(deep.weights_fingerprint_) == 64
    assert deep.input_size_ == (SIZE, SIZE)
    assert not deep.backbone_.training
    assert next(deep.backbone_.parameters()).device.type == "cpu"


def test_prefix_and_pandas_output(cohort):
    deep = _deep(prefix="cc_").set_output(transform="pandas")
    table = deep.fit_transform(cohort.set_index("patient_id", drop=False))
    assert isinstance(table, pd.DataFrame)
    assert list(table.columns[:2]) == ["cc_deep_0", "cc_deep_1"] and table.shape == (5, 512)
    assert list(table.index) == list(cohort["patient_id"])


def test_random_state_makes_features_reproducible(cohort, fitted):
    _, features = fitted
    np.testing.assert_array_equal(_deep(backbone="resnet18").fit_transform(cohort), features)
    np.testing.assert_array_equal(clone(fitted[0]).fit_transform(cohort), features)
    other = _deep(backbone="resnet18", random_state=1).fit_transform(cohort)
    assert not np.allclose(other, features)


def test_pickle_round_trip_gives_identical_features(fitted, cohort):
    deep, features = fitted
    copy = pickle.loads(pickle.dumps(deep))
    np.testing.assert_array_equal(copy.transform(cohort), features)


def test_batch_size_does_not_change_the_features(fitted, cohort):
    _, features = fitted
    single = _deep(backbone="resnet18", batch_size=1).fit_transform(cohort)
    np.testing.assert_allclose(single, features, rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------------- cropping


def _pasted(lesion, positions, shape=(96, 96)):
    images, masks = [], []
    for r, c in positions:
        image = np.full(shape, 20.0, dtype=np.float32)
        mask = np.zeros(shape, dtype=np.uint8)
        image[r : r + lesion.shape[0], c : c + lesion.shape[1]] = lesion
        mask[r : r + lesion.shape[0], c : c + lesion.shape[1]] = 1
        images.append(image)
        masks.append(mask)
    return pd.DataFrame({"image": images, "mask": masks})


def test_the_same_lesion_anywhere_gives_the_same_features():
    lesion = np.random.default_rng(1).uniform(80, 240, (20, 14)).astype(np.float32)
    X = _pasted(lesion, [(5, 7), (60, 70)])
    cropped = _deep().fit_transform(X)
    np.testing.assert_allclose(cropped[0], cropped[1], rtol=1e-5, atol=1e-6)
    whole = _deep(crop=None).fit_transform(X)
    assert not np.allclose(whole[0], whole[1], rtol=1e-3)
    # a margin takes in background, here different amounts at the border: features change
    margin = _deep(margin=6).fit_transform(_pasted(lesion, [(0, 0), (40, 40)]))
    assert not np.allclose(margin[0], margin[1], rtol=1e-3)


def test_crop_is_the_mask_rectangle_plus_margin():
    rng = np.random.default_rng(2)
    image = rng.uniform(0, 255, (64, 64)).astype(np.float32)
    mask = np.zeros((64, 64), dtype=np.uint8)
    mask[20, 30] = mask[35, 22] = 1  # rectangle rows 20-35, cols 22-30
    X = pd.DataFrame({"image": [image], "mask": [mask]})
    cut = pd.DataFrame({"image": [image[20:36, 22:31]], "mask": [np.ones((16, 9), np.uint8)]})
    np.testing.assert_allclose(
        _deep().fit_transform(X), _deep().fit_transform(cut), rtol=1e-5, atol=1e-6
    )
    cut_margin = pd.DataFrame(
        {"image": [image[18:38, 20:33]], "mask": [np.ones((20, 13), np.uint8)]}
    )
    np.testing.assert_allclose(
        _deep(margin=2).fit_transform(X),
        _deep().fit_transform(cut_margin),
        rtol=1e-5,
        atol=1e-6,
    )
    # a float margin is a fraction of the rectangle: 0.25 * (16, 9) -> (4, 2) pixels
    cut_fraction = pd.DataFrame(
        {"image": [image[16:40, 20:33]], "mask": [np.ones((24, 13), np.uint8)]}
    )
    np.testing.assert_allclose(
        _deep(margin=0.25).fit_transform(X),
        _deep().fit_transform(cut_fraction),
        rtol=1e-5,
        atol=1e-6,
    )


# ----------------------------------------------------------------------------- intensities


def test_zscore_ignores_brightness_and_contrast_imagenet_does_not(cohort):
    brighter = cohort.assign(image=[0.5 * im + 40 for im in cohort["image"]])
    z = _deep(normalize="zscore")
    np.testing.assert_allclose(
        z.fit_transform(brighter), z.fit_transform(cohort), rtol=1e-3, atol=1e-4
    )
    imagenet = _deep()
    assert not np.allclose(imagenet.fit_transform(brighter), imagenet.fit_transform(cohort))


def test_intensity_range_auto_rescales_high_bit_depth_images(cohort):
    twelve_bit = cohort.assign(image=[im * 16.0 for im in cohort["image"]])  # > 255
    minmax = cohort.assign(
        image=[255 * (im - im.min()) / (im.max() - im.min()) for im in cohort["image"]]
    )
    deep = _deep(crop=None)
    np.testing.assert_allclose(
        deep.fit_transform(twelve_bit), deep.fit_transform(minmax), rtol=1e-4, atol=1e-5
    )
    fixed = _deep(crop=None, intensity_range=(0, 255 * 16))
    np.testing.assert_allclose(
        fixed.fit_transform(twelve_bit), deep.fit_transform(cohort), rtol=1e-4, atol=1e-5
    )


def test_rgb_pathology_images_keep_their_colours():
    rng = np.random.default_rng(3)
    tiles = [rng.uniform(0, 255, (40, 40, 3)).astype(np.float32) for _ in range(3)]
    X = pd.DataFrame({"pathology": tiles})
    deep = _deep(image_col="pathology", mask_col=None, crop=None)
    features = deep.fit_transform(X)
    assert features.shape == (3, 512)
    swapped = X.assign(pathology=[t[..., ::-1].copy() for t in tiles])
    assert not np.allclose(deep.transform(swapped), features, rtol=1e-3)


# ------------------------------------------------------------------------------------ cache


def test_cache_hits_skip_the_network_and_misses_are_batched(tmp_path, cohort):
    cache = FeatureCache(tmp_path / "cache")
    deep = _deep(cache=cache, batch_size=2).fit(cohort)
    counter = _ForwardCounter(deep.backbone_)
    first = deep.transform(cohort)
    assert (counter.calls, counter.images) == (3, 5)  # batches of 2, 2, 1
    assert len(cache) == 5

    counter.calls = counter.images = 0
    np.testing.assert_array_equal(deep.transform(cohort), first)
    assert counter.calls == 0

    # a refitted copy with the same seed has the same weights, so it hits too
    again = clone(deep).fit(cohort)
    hits = _ForwardCounter(again.backbone_)
    np.testing.assert_array_equal(again.transform(cohort), first)
    assert hits.calls == 0

    # one edited image: only that row is computed
    edited = cohort.copy()
    edited.at[2, "image"] = cohort["image"][2] + 1.0
    result = deep.transform(edited)
    assert counter.images == 1
    np.testing.assert_array_equal(np.delete(result, 2, 0), np.delete(first, 2, 0))
    assert not np.array_equal(result[2], first[2])

    # an edited mask also misses
    counter.images = 0
    masks = cohort.copy()
    masks.at[0, "mask"] = np.roll(cohort["mask"][0], 1, axis=1)
    deep.transform(masks)
    assert counter.images == 1


@pytest.mark.parametrize(
    "change", [{"margin": 2}, {"normalize": "zscore"}, {"random_state": 1}, {"input_size": 40}]
)
def test_changed_settings_or_weights_miss_the_cache(tmp_path, cohort, change):
    cache = tmp_path / "cache"
    _deep(cache=cache).fit_transform(cohort)
    changed = _deep(cache=cache, **change).fit(cohort)
    counter = _ForwardCounter(changed.backbone_)
    changed.transform(cohort)
    assert counter.images == len(cohort)
    assert len(FeatureCache(cache)) == 2 * len(cohort)


def test_features_from_paths_equal_features_from_arrays(tmp_path, cohort):
    paths = []
    for k, (image, mask) in enumerate(zip(cohort["image"], cohort["mask"])):
        image = np.round(image)  # PNG holds integers
        paths.append(
            (
                write_image(tmp_path / f"img{k}.png", image.astype(np.uint8)),
                write_mask(tmp_path / f"mask{k}.png", mask),
            )
        )
    on_disk = pd.DataFrame(
        {"image": [p for p, _ in paths], "mask": [m for _, m in paths]}, index=cohort.index
    )
    in_memory = cohort.assign(image=[np.round(im) for im in cohort["image"]])
    deep = _deep(cache=tmp_path / "cache").fit(in_memory)
    from_arrays = deep.transform(in_memory)
    counter = _ForwardCounter(deep.backbone_)
    np.testing.assert_array_equal(deep.transform(on_disk), from_arrays)
    assert counter.calls == 0  # keyed by content, not by path
    np.testing.assert_allclose(_deep().fit_transform(on_disk), from_arrays, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------------- errors


def test_defaults_work_and_without_mask_column_whole_images_are_used(cohort):
    # The defaults (crop="mask_bbox", mask_col=None) use whole images, as ImageClassifier does.
    whole = DeepFeatures(backbone="squeezenet1_1", input_size=SIZE, random_state=0)
    out = whole.fit_transform(cohort.drop(columns="mask"))
    assert out.shape == (5, 512)
    np.testing.assert_array_equal(out, _deep(mask_col=None, crop=None).fit_transform(cohort))
    with pytest.raises(CohortInputError, match="column 'roi': column not found"):
        _deep(mask_col="roi").fit(cohort)


def test_empty_masks_follow_the_empty_policy(cohort):
    X = cohort.copy()
    X.at[3, "mask"] = np.zeros_like(cohort["mask"][3])
    with pytest.raises(CohortInputError, match="row 'P4', column 'mask': mask is empty"):
        _deep(empty="error").fit(X).transform(X)
    with pytest.warns(UserWarning, match=r"1 of 5 masks in column 'mask' are empty.*'P4'"):
        features = _deep().fit(X).transform(X)  # empty="whole" as in ROICropper
    whole = _deep(mask_col=None, crop=None).fit(X).transform(X)
    np.testing.assert_allclose(features[3], whole[3], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(features[:3], _deep().fit(cohort).transform(cohort)[:3])
    with pytest.warns(UserWarning, match="image centre"):
        centre = _deep(empty="center", center_fraction=0.5).fit(X).transform(X)
    assert not np.allclose(centre[3], features[3])


def test_unreadable_files_and_bad_grids_name_row_column_and_file(tmp_path, cohort):
    X = cohort.copy()
    X["image"] = X["image"].astype(object)
    X.at[1, "image"] = str(tmp_path / "missing.png")
    with pytest.raises(CohortInputError, match=r"row 'P2', column 'image', file '.*missing.png'"):
        _deep().fit(X).transform(X)
    X = cohort.copy()
    X.at[0, "mask"] = np.ones((10, 10), np.uint8)
    with pytest.raises(CohortInputError, match="row 'P1', column 'mask'"):
        _deep().fit(X).transform(X)
    X = cohort.copy()
    X.at[4, "image"] = np.full((48, 48), np.nan, np.float32)
    with pytest.raises(
        CohortInputError, match="row 'P5', column 'image': image has 2304 non-finite pixel"
    ):
        _deep().fit(X).transform(X)


def test_bad_backbone_names_list_the_valid_ones(cohort):
    with pytest.raises(ValueError, match=r"unknown backbone 'resnet19'.*'resnet18'.*'vit_b_16'"):
        _deep(backbone="resnet19").fit(cohort)


def test_named_weights_missing_offline_are_reported_at_fit(tmp_path, monkeypatch, cohort):
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsNotAvailableError, match="resnet18-f37072fd.pth"):
        _deep(backbone="resnet18", weights="DEFAULT").fit(cohort)


def test_checkpoint_weights(tmp_path, fitted, cohort):
    deep, features = fitted
    torch.save(deep.backbone_.state_dict(), tmp_path / "backbone.pt")
    loaded = _deep(backbone="resnet18", weights=tmp_path / "backbone.pt", random_state=5)
    loaded.fit(cohort)
    assert loaded.weights_source_ == str(tmp_path / "backbone.pt")
    assert loaded.weights_fingerprint_ == deep.weights_fingerprint_
    np.testing.assert_array_equal(loaded.transform(cohort), features)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"normalize": "minmax"}, "normalize"),
        ({"crop": "bbox"}, "crop"),
        ({"margin": -1}, "margin"),
        ({"input_size": (32, 0)}, "input_size"),
        ({"input_size": 16}, "at least 32x32"),
        ({"backbone": "inception_v3", "input_size": 64}, "at least 75x75"),
        ({"backbone": "vit_b_16", "input_size": 40}, "multiple of its patch size"),
        ({"intensity_range": (10, 5)}, "low < high"),
        ({"batch_size": 0}, "batch_size"),
        ({"device": "gpu0"}, "device"),
        ({"cache": 3}, "cache"),
    ],
)
def test_invalid_parameters(cohort, params, match):
    with pytest.raises((ValueError, TypeError), match=match):
        _deep(**params).fit(cohort)


def test_the_pickle_holds_no_device_copy(fitted):
    deep, _ = fitted
    state = deep.__getstate__()
    assert "_device_backbone" not in state and "backbone_" in state


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_features_match_cpu_and_the_fitted_network_stays_on_the_cpu(fitted, cohort):
    deep, features = fitted
    gpu = clone(deep).set_params(device="cuda").fit(cohort)
    out = gpu.transform(cohort)  # mixed precision, channels-last
    assert np.corrcoef(out.ravel(), features.ravel())[0, 1] > 0.999
    assert next(gpu.backbone_.parameters()).device.type == "cpu"
    copy = pickle.loads(pickle.dumps(gpu)).set_params(device="cpu")
    np.testing.assert_array_equal(copy.transform(cohort), features)


def test_not_a_dataframe():
    with pytest.raises(TypeError, match="cohort DataFrame"):
        _deep().fit(np.zeros((3, 4)))


# ------------------------------------------------------------------------------- end to end


def test_progress_bar_when_verbose(capsys, cohort):
    _deep(verbose=1).fit_transform(cohort)
    assert "deep features (squeezenet1_1)" in capsys.readouterr().err


def test_pipeline_on_the_synthetic_cohort():
    X, y = make_alnm_cohort(60, modalities=("ultrasound",), image_size=48, random_state=0)
    model = make_pipeline(
        _deep(backbone="resnet18"), StandardScaler(), LogisticRegression(max_iter=2000)
    )
    model.fit(X.iloc[:45], y[:45])
    proba = model.predict_proba(X.iloc[45:])
    assert proba.shape == (15, 2)
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert model[0].get_feature_names_out().shape == (512,)
