import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.pipeline import make_pipeline

from sklearn_alnm.datasets import make_alnm_cohort
from sklearn_alnm.io import write_image, write_mask
from sklearn_alnm.preprocessing import IntensityNormalizer, ROICropper
from sklearn_alnm.utils import CohortInputError


def _ramp(shape=(40, 50)):
    """An image whose every pixel value is unique: value = row * 1000 + col."""
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    return (rows * 1000 + cols).astype(np.float32)


def _mask(shape, *boxes):
    mask = np.zeros(shape, dtype=np.uint8)
    for r0, r1, c0, c1 in boxes:
        mask[r0:r1, c0:c1] = 1
    return mask


def _cohort(images, masks, ids=None):
    ids = ids or [f"P{k + 1}" for k in range(len(images))]
    frame = pd.DataFrame({"patient_id": ids, "age": np.arange(len(images)) + 50.0})
    frame["image"] = pd.Series(_objects(images), dtype=object)
    frame["mask"] = pd.Series(_objects(masks), dtype=object)
    return frame


def _objects(values):
    column = np.empty(len(values), dtype=object)
    for k, value in enumerate(values):
        column[k] = value
    return column


# --------------------------------------------------------------------------- ROICropper


def test_crop_is_the_largest_components_rectangle_with_margin():
    image = _ramp()
    mask = _mask(image.shape, (10, 20, 5, 25), (30, 33, 40, 44))  # lesion + small blob
    X = _cohort([image], [mask])
    out = ROICropper(margin=2, output_size=None).fit_transform(X)
    np.testing.assert_array_equal(out["image"].iloc[0], image[8:22, 3:27])
    expected_mask = np.zeros((14, 24), dtype=np.uint8)
    expected_mask[2:12, 2:22] = 1  # the blob is gone: only the kept component remains
    np.testing.assert_array_equal(out["mask"].iloc[0], expected_mask)
    assert out["mask"].iloc[0].dtype == np.uint8 and out["image"].iloc[0].dtype == np.float32
    # keep="all": the rectangle of every foreground pixel, all of them in the mask
    out = ROICropper(keep="all", output_size=None).fit_transform(X)
    np.testing.assert_array_equal(out["image"].iloc[0], image[10:33, 5:44])
    assert out["mask"].iloc[0].sum() == mask.sum()
    # the other columns are untouched and the input is not modified
    pd.testing.assert_series_equal(out["age"], X["age"])
    assert X["image"].iloc[0] is image and X["mask"].iloc[0] is mask


def test_diagonal_pixels_are_one_component():
    image = _ramp((20, 20))
    mask = np.eye(20, dtype=np.uint8)[:, ::-1].copy()  # an anti-diagonal line: 8-connected
    mask[0:2, 0:2] = 1  # four pixels: smaller than the 20-pixel line
    boxes = ROICropper().crop_boxes(_cohort([image], [mask]))
    assert tuple(boxes.iloc[0, :4]) == (0, 20, 0, 20)
    mask[:, :] = 0
    mask[2:4, 2:4] = 1
    mask[10:12, 12:14] = 1  # two equal components: the first in row-major order wins
    boxes = ROICropper().crop_boxes(_cohort([image], [mask]))
    assert tuple(boxes.iloc[0, :4]) == (2, 4, 2, 4)


def test_margins_in_pixels_and_fractions_are_clipped_to_the_image():
    image = _ramp()
    mask = _mask(image.shape, (2, 12, 30, 50))  # touches the right border
    X = _cohort([image], [mask])
    boxes = ROICropper(margin=5).crop_boxes(X)
    assert tuple(boxes.iloc[0, :4]) == (0, 17, 25, 50)
    boxes = ROICropper(margin=0.1).crop_boxes(X)  # 10 % of 10 rows and of 20 columns
    assert tuple(boxes.iloc[0, :4]) == (1, 13, 28, 50)


def test_min_size_grows_around_the_centre_and_stays_inside_the_image():
    image = _ramp()  # 40 x 50
    X = _cohort(
        [image] * 3,
        [
            _mask(image.shape, (18, 22, 20, 26)),  # centre (20, 23)
            _mask(image.shape, (0, 3, 0, 3)),  # top-left corner: shifted inwards
            _mask(image.shape, (10, 30, 10, 40)),  # already large enough
        ],
    )
    boxes = ROICropper(min_size=(10, 16)).crop_boxes(X)
    assert boxes[["row0", "row1", "col0", "col1"]].values.tolist() == [
        [15, 25, 15, 31],
        [0, 10, 0, 16],
        [10, 30, 10, 40],
    ]
    boxes = ROICropper(min_size=100).crop_boxes(X)  # never beyond the image
    assert (boxes[["row0", "row1", "col0", "col1"]].values == [0, 40, 0, 50]).all()
    out = ROICropper(min_size=(10, 16), output_size=None).fit_transform(X)
    assert [a.shape for a in out["image"]] == [(10, 16), (10, 16), (20, 30)]


@pytest.mark.parametrize("empty, box", [("whole", (0, 40, 0, 50)), ("center", (10, 30, 12, 37))])
def test_empty_and_missing_masks_follow_the_empty_policy(empty, box):
    image = _ramp()
    X = _cohort([image, image], [np.zeros(image.shape, np.uint8), None])
    cropper = ROICropper(empty=empty, output_size=None)
    boxes = cropper.crop_boxes(X)
    assert boxes["empty"].tolist() == [True, True]
    assert tuple(boxes.iloc[0, :4]) == box == tuple(boxes.iloc[1, :4])
    out = cropper.fit_transform(X)
    r0, r1, c0, c1 = box
    np.testing.assert_array_equal(out["image"].iloc[1], image[r0:r1, c0:c1])
    assert not out["mask"].iloc[0].any()


def test_empty_center_fraction_and_error_policy():
    image = _ramp()
    X = _cohort([image, image], [_mask(image.shape, (1, 2, 1, 2)), np.zeros((40, 50))])
    boxes = ROICropper(empty="center", center_fraction=1.0).crop_boxes(X)
    assert tuple(boxes.iloc[1, :4]) == (0, 40, 0, 50)
    with pytest.raises(CohortInputError, match=r"row 'P2', column 'mask': mask is empty"):
        ROICropper(empty="error").fit_transform(X)


def test_resampling_to_output_size_gray_and_rgb():
    rng = np.random.default_rng(0)
    gray = rng.uniform(0, 255, (40, 50)).astype(np.float32)
    rgb = rng.uniform(0, 255, (40, 50, 3)).astype(np.float32)
    mask = _mask(gray.shape, (5, 25, 10, 20))
    X = _cohort([gray, rgb], [mask, mask])
    out = ROICropper(output_size=(32, 24)).fit_transform(X)
    assert out["image"].iloc[0].shape == (32, 24)
    assert out["image"].iloc[1].shape == (32, 24, 3)
    for m in out["mask"]:
        assert m.shape == (32, 24) and set(np.unique(m)) == {1}  # crop of a full rectangle
    out = ROICropper(output_size=16, margin=5).fit_transform(X)
    assert out["image"].iloc[0].shape == (16, 16)
    # the mask crop is resampled with the image: the lesion stays in the middle
    lesion = out["mask"].iloc[0]
    assert set(np.unique(lesion)) == {0, 1} and lesion[8, 8] == 1 and lesion[0, 0] == 0


def test_interpolation_modes():
    image = _ramp((20, 20))
    mask = _mask(image.shape, (4, 12, 4, 12))
    X = _cohort([image], [mask])
    nearest = ROICropper(output_size=(16, 16), interpolation="nearest").fit_transform(X)
    assert set(np.unique(nearest["image"].iloc[0])) <= set(np.unique(image[4:12, 4:12]))
    crop = image[4:12, 4:12]
    for mode in ("linear", "cubic", "area"):
        out = ROICropper(output_size=(13, 5), interpolation=mode).fit_transform(X)
        values = out["image"].iloc[0]
        assert values.shape == (13, 5) and values.dtype == np.float32
        assert crop.min() <= values.min() and values.max() <= crop.max()
    # a bilinear mask resampling gives a binary mask as well
    small = ROICropper(output_size=(6, 6), margin=3, mask_interpolation="linear")
    assert set(np.unique(small.fit_transform(X)["mask"].iloc[0])) == {0, 1}


def test_output_columns():
    image = _ramp()
    mask = _mask(image.shape, (5, 15, 5, 15))
    X = _cohort([image], [mask])
    out = ROICropper(output_col="roi", output_size=(8, 8)).fit(X).transform(X)
    assert list(out.columns) == ["patient_id", "age", "image", "mask", "roi", "roi_mask"]
    assert out["image"].iloc[0] is image and out["mask"].iloc[0] is mask
    assert out["roi"].iloc[0].shape == (8, 8) and out["roi_mask"].iloc[0].all()
    cropper = ROICropper(output_col="roi", output_mask_col="lesion").fit(X)
    assert cropper.get_feature_names_out().tolist() == [
        "patient_id",
        "age",
        "image",
        "mask",
        "roi",
        "lesion",
    ]
    assert list(cropper.transform(X).columns) == list(cropper.get_feature_names_out())


@pytest.mark.parametrize(
    "params, match",
    [
        ({"output_col": "mask"}, "mask column"),
        ({"output_col": "roi", "output_mask_col": "roi"}, "both"),
        ({"output_mask_col": "image", "output_col": "roi"}, "image column"),
    ],
)
def test_conflicting_output_columns_are_refused(params, match):
    X = _cohort([_ramp()], [_mask((40, 50), (1, 5, 1, 5))])
    with pytest.raises(ValueError, match=match):
        ROICropper(**params).fit(X)


def test_crops_from_files_equal_crops_from_arrays(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (30, 40)).astype(np.float32)
    mask = _mask(image.shape, (5, 20, 10, 30))
    X_arrays = _cohort([image], [mask])
    X_files = _cohort(
        [write_image(tmp_path / "a.png", image)], [write_mask(tmp_path / "a_mask.png", mask)]
    )
    cropper = ROICropper(margin=3, output_size=(16, 16))
    a, b = cropper.fit_transform(X_arrays), cropper.fit_transform(X_files)
    np.testing.assert_array_equal(a["image"].iloc[0], b["image"].iloc[0])
    np.testing.assert_array_equal(a["mask"].iloc[0], b["mask"].iloc[0])


def test_bad_masks_are_reported_with_row_column_and_file(tmp_path):
    image = _ramp()
    path = write_mask(tmp_path / "small_mask.png", np.ones((10, 10), np.uint8))
    X = _cohort([image, image], [_mask(image.shape, (1, 5, 1, 5)), path])
    with pytest.raises(CohortInputError, match=r"row 'P2', column 'mask', file .*small_mask.png"):
        ROICropper().fit_transform(X)
    proba = np.zeros(image.shape)
    proba[5:10, 5:10] = 0.7
    X = _cohort([image], [proba])
    with pytest.raises(CohortInputError, match=r"row 'P1', column 'mask': .*Threshold it"):
        ROICropper().fit_transform(X)
    # label maps and 0/255 masks are fine: any non-zero label is foreground
    labels = _mask(image.shape, (5, 10, 5, 10)) * 3
    labels[20:30, 20:30] = 7
    X = _cohort([image, image], [labels, labels.astype(np.float64) * 0 + 255 * (labels > 0)])
    boxes = ROICropper(keep="all").crop_boxes(X)
    assert boxes[["row0", "row1", "col0", "col1"]].values.tolist() == [[5, 30, 5, 30]] * 2


def test_bad_cohorts_are_refused():
    image = _ramp()
    X = _cohort([image], [_mask(image.shape, (1, 5, 1, 5))])
    with pytest.raises(CohortInputError, match="column 'lesion': column not found"):
        ROICropper(mask_col="lesion").fit(X)
    with pytest.raises(TypeError, match="DataFrame"):
        ROICropper().fit(np.zeros((2, 2)))
    bad = X.copy()
    bad["image"] = pd.Series(_objects([np.full((40, 50), np.nan)]), dtype=object)
    with pytest.raises(CohortInputError, match="row 'P1', column 'image': .*NaN"):
        ROICropper().fit_transform(bad)


@pytest.mark.parametrize(
    "params",
    [
        {"margin": -1},
        {"margin": True},
        {"min_size": (3, 0)},
        {"min_size": (1, 2, 3)},
        {"output_size": 0},
        {"output_size": (4.5, 4)},
        {"interpolation": "lanczos"},
        {"mask_interpolation": "cubic"},
        {"keep": "first"},
        {"empty": "skip"},
        {"center_fraction": 0.0},
        {"center_fraction": 1.5},
    ],
)
def test_invalid_parameters_are_refused_in_fit(params):
    X = _cohort([_ramp()], [_mask((40, 50), (1, 5, 1, 5))])
    cropper = ROICropper(**params)  # __init__ only stores
    with pytest.raises(ValueError):
        cropper.fit(X)


def test_stateless_api_clone_pickle_and_tags():
    X = _cohort([_ramp()] * 2, [_mask((40, 50), (3, 9, 4, 20))] * 2, ids=["A", "B"])
    cropper = ROICropper(margin=1, output_size=(12, 12))
    transformed_unfitted = cropper.transform(X)  # nothing to learn: no fit needed
    cropper.fit(X)
    assert cropper.n_features_in_ == 4
    assert cropper.feature_names_in_.tolist() == ["patient_id", "age", "image", "mask"]
    twin = clone(cropper)
    assert twin.get_params() == cropper.get_params()
    restored = pickle.loads(pickle.dumps(cropper))
    for other in (twin, restored):
        out = other.transform(X)
        for column in ("image", "mask"):
            for a, b in zip(out[column], transformed_unfitted[column]):
                np.testing.assert_array_equal(a, b)
    tags = cropper.__sklearn_tags__()
    assert not tags.input_tags.two_d_array and not tags.requires_fit
    assert not tags.target_tags.required


def test_pipeline_with_pandas_output_and_a_synthetic_cohort():
    X, _ = make_alnm_cohort(4, modalities=["ultrasound"], image_size=48, random_state=0)
    pipe = make_pipeline(
        ROICropper(margin=0.1, output_size=(24, 24)),
        IntensityNormalizer(method="zscore", mask_col="mask"),
    ).set_output(transform="pandas")
    out = pipe.fit_transform(X)
    assert list(out.columns) == list(X.columns)
    assert list(pipe.get_feature_names_out()) == list(X.columns)
    for image, mask in zip(out["image"], out["mask"]):
        assert image.shape == mask.shape == (24, 24)
        inside = image[mask == 1]
        assert abs(inside.mean()) < 1e-4 and abs(inside.std() - 1) < 1e-4


# -------------------------------------------------------------------- IntensityNormalizer


def test_zscore_whole_image_and_inside_the_mask():
    rng = np.random.default_rng(1)
    image = rng.normal(80, 15, (30, 30)).astype(np.float32)
    mask = _mask(image.shape, (10, 20, 10, 20))
    image[mask == 1] += 100
    X = _cohort([image], [mask])
    whole = IntensityNormalizer().fit_transform(X)["image"].iloc[0]
    assert whole.dtype == np.float32 and whole.shape == image.shape
    np.testing.assert_allclose(whole, (image - image.mean()) / image.std(), rtol=1e-4, atol=1e-5)
    lesion = IntensityNormalizer(mask_col="mask").fit_transform(X)["image"].iloc[0]
    assert abs(lesion[mask == 1].mean()) < 1e-5 and abs(lesion[mask == 1].std() - 1) < 1e-5
    assert lesion[mask == 0].mean() < -3  # the background is far below the lesion


def test_minmax_and_clip_percentiles():
    image = np.linspace(0, 99, 100, dtype=np.float32).reshape(10, 10)
    image[0, 0] = 10_000  # an outlier
    X = _cohort([image], [_mask(image.shape, (2, 4, 0, 10))])  # values 20..39
    out = IntensityNormalizer(method="minmax").fit_transform(X)["image"].iloc[0]
    assert out.min() == 0 and out.max() == 1 and out[9, 9] < 0.01  # squashed by the outlier
    clipped = IntensityNormalizer(method="minmax", clip_percentiles=(0, 98)).fit_transform(X)
    clipped = clipped["image"].iloc[0]
    assert clipped[0, 0] == 1 and clipped[9, 9] > 0.99
    inside = IntensityNormalizer(method="minmax", mask_col="mask").fit_transform(X)
    inside = inside["image"].iloc[0]
    np.testing.assert_allclose(inside[2, :], (image[2, :] - 20) / 19, atol=1e-6)
    assert inside[0, 1] == 0 and inside[9, 9] == 1  # clipped to [0, 1] outside the lesion


def test_histogram_equalisation_is_monotone_and_uniform():
    rng = np.random.default_rng(2)
    image = rng.exponential(10, (40, 40)).astype(np.float32)  # a skewed histogram
    X = _cohort([image], [_mask(image.shape, (0, 5, 0, 5))])
    out = IntensityNormalizer(method="histeq").fit_transform(X)["image"].iloc[0]
    assert 0 < out.min() and out.max() == 1
    order = np.argsort(image, axis=None, kind="stable")
    assert np.all(np.diff(out.ravel()[order]) >= 0)  # keeps the order of intensities
    assert abs(float(np.median(out)) - 0.5) < 0.05  # the median lands in the middle
    with_mask = IntensityNormalizer(method="histeq", mask_col="mask").fit_transform(X)
    assert not np.allclose(with_mask["image"].iloc[0], out)


@pytest.mark.parametrize("method", ["zscore", "minmax", "histeq"])
def test_constant_images_give_zeros_and_rgb_keeps_its_shape(method):
    rgb = np.random.default_rng(3).uniform(0, 255, (12, 14, 3)).astype(np.float32)
    X = _cohort([np.full((8, 8), 42.0), rgb], [np.zeros((8, 8)), np.zeros((12, 14))])
    out = IntensityNormalizer(method=method, mask_col="mask").fit_transform(X)
    constant, color = out["image"]
    assert constant.dtype == np.float32 and np.all(constant == 0)
    assert color.shape == (12, 14, 3) and np.all(np.isfinite(color))


def test_normalizer_errors_and_api():
    X = _cohort([np.full((8, 8), np.inf)], [np.zeros((8, 8))])
    with pytest.raises(CohortInputError, match="row 'P1', column 'image': .*infinite"):
        IntensityNormalizer().fit_transform(X)
    X = _cohort([_ramp((8, 8))], [np.zeros((8, 8))])
    for clip in [(5, 5), (-1, 50), (1, 2, 3), ("a", 3)]:
        with pytest.raises(ValueError, match="clip_percentiles"):
            IntensityNormalizer(clip_percentiles=clip).fit(X)
    with pytest.raises(ValueError, match="method"):
        IntensityNormalizer(method="robust").fit(X)
    with pytest.raises(ValueError, match="mask column"):
        IntensityNormalizer(mask_col="mask", output_col="mask").fit(X)
    normalizer = IntensityNormalizer(output_col="norm", method="minmax").fit(X)
    assert normalizer.get_feature_names_out().tolist()[-1] == "norm"
    restored = pickle.loads(pickle.dumps(normalizer))
    np.testing.assert_array_equal(
        restored.transform(X)["norm"].iloc[0], clone(normalizer).transform(X)["norm"].iloc[0]
    )
    assert X["image"].iloc[0].max() == 7007  # the input is left as it was


def test_instance_selector_picks_the_kind_and_index_asked_for():
    import pandas as pd

    from sklearn_alnm.preprocessing import InstanceSelector
    from sklearn_alnm.utils import CohortInputError

    X = pd.DataFrame(
        {
            "patient_id": ["P1", "P2"],
            "bag": [["t1", "n1", "t1b"], ["n2", "t2"]],
            "bag_kind": [["tumor", "node", "tumor"], ["node", "tumor"]],
            "bag_mask": [["m_t1", "m_n1", "m_t1b"], ["m_n2", "m_t2"]],
        }
    )
    out = InstanceSelector(mask_col="bag_mask").fit_transform(X)
    assert out["instance_image"].tolist() == ["t1", "t2"]
    assert out["instance_mask"].tolist() == ["m_t1", "m_t2"]
    assert InstanceSelector(index=-1).fit_transform(X)["instance_image"].tolist() == ["t1b", "t2"]
    assert InstanceSelector(kind="node").fit_transform(X)["instance_image"].tolist() == ["n1", "n2"]
    assert InstanceSelector(kind_col=None).fit_transform(X)["instance_image"].tolist() == [
        "t1",
        "n2",
    ]
    with pytest.raises(CohortInputError, match="1 'tumor' instances; instance 1") as info:
        InstanceSelector(index=1).fit_transform(X)
    assert info.value.row == "P2"
    bad = X.assign(bag_kind=[["tumor"], ["node", "tumor"]])
    with pytest.raises(CohortInputError, match="one kind per instance"):
        InstanceSelector().fit_transform(bad)
    with pytest.raises(ValueError, match="overwrite"):
        InstanceSelector(output_col="bag").fit(X)
