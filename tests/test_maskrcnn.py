import types

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone

from sklearn_alnm.metrics import dice_score
from sklearn_alnm.segmentation._maskrcnn import (
    DetectionLoss,
    DetectionNet,
    ImageBatch,
    MaskRCNNSegmenter,
    collate_detections,
    combine_detections,
    hflip_instances,
    instance_targets,
    prepare_image,
)
from sklearn_alnm.utils import CohortInputError

# small detector settings: few anchors sampled, few proposals and detections (CPU-friendly)
FAST = {
    "module__rpn_pre_nms_top_n_train": 200,
    "module__rpn_post_nms_top_n_train": 100,
    "module__rpn_pre_nms_top_n_test": 100,
    "module__rpn_post_nms_top_n_test": 50,
    "module__rpn_batch_size_per_image": 64,
    "module__box_batch_size_per_image": 32,
    "module__box_detections_per_img": 5,
}


def _segmenter(**kwargs):
    params = {
        "min_size": 64,
        "max_size": 64,
        "max_epochs": 1,
        "random_state": 0,
        "device": "cpu",
        **FAST,
    }
    params.update(kwargs)
    return MaskRCNNSegmenter(**params)


def _lesion_image(shape, box, rng, *, rgb=False):
    """Dark noise with a bright square lesion at ``box = (r0, r1, c0, c1)`` (or none)."""
    image = rng.normal(40.0, 10.0, shape).astype(np.float32)
    mask = np.zeros(shape, dtype=np.uint8)
    if box is not None:
        r0, r1, c0, c1 = box
        image[r0:r1, c0:c1] += 150.0
        mask[r0:r1, c0:c1] = 1
    image = np.clip(image, 0, 255)
    if rgb:
        image = np.repeat(image[..., None], 3, axis=2) * np.array([1.0, 0.9, 0.8], np.float32)
    return image, mask


@pytest.fixture(scope="module")
def cohort():
    """Mixed grids; one image without lesion, one with two lesions."""
    rng = np.random.default_rng(0)
    specs = [
        ((48, 48), (10, 26, 12, 28)),
        ((40, 56), (8, 24, 30, 46)),
        ((56, 48), None),
        ((48, 64), (20, 36, 4, 20)),
    ]
    images, masks = [], []
    for shape, box in specs:
        image, mask = _lesion_image(shape, box, rng)
        images.append(image)
        masks.append(mask)
    masks[3][4:10, 50:58] = 1  # a second, separate lesion
    images[3][4:10, 50:58] += 150.0
    return pd.DataFrame({"patient_id": ["P1", "P2", "P3", "P4"], "image": images, "mask": masks})


@pytest.fixture(scope="module")
def fitted(cohort):
    # every detection kept (torchvision's own 0.05 score floor off): non-trivial outputs
    return _segmenter(
        max_epochs=2, score_threshold=0.0, keep="union", module__box_score_thresh=0.0
    ).fit(cohort)


@pytest.fixture(scope="module")
def outputs(fitted, cohort):
    """``(predict, predict_proba)`` of the fitted segmenter on its training cohort."""
    return fitted.predict(cohort), fitted.predict_proba(cohort)


# ---------------------------------------------------------------------------- targets


def test_instance_targets_one_instance_per_connected_component():
    mask = np.zeros((10, 12), dtype=np.uint8)
    mask[1:4, 2:6] = 1
    mask[6:9, 8:11] = 255
    target = instance_targets(mask)
    assert target["boxes"].dtype == torch.float32
    assert target["boxes"].tolist() == [[2.0, 1.0, 6.0, 4.0], [8.0, 6.0, 11.0, 9.0]]
    assert target["labels"].tolist() == [1, 1]
    assert target["masks"].dtype == torch.uint8
    assert target["masks"].shape == (2, 10, 12)
    # disjoint instance masks whose union is the lesion mask, each inside its box
    assert target["masks"].sum(dim=0).max() == 1
    assert np.array_equal(target["masks"].sum(dim=0).numpy(), (mask != 0).astype(np.uint8))
    for (x1, y1, x2, y2), instance in zip(target["boxes"].int().tolist(), target["masks"]):
        assert instance.sum() == instance[y1:y2, x1:x2].sum() > 0

    # pixels touching by a corner are one lesion; label values are lesion too
    diagonal = np.zeros((5, 5), dtype=np.uint8)
    diagonal[1, 1] = diagonal[2, 2] = 3
    assert len(instance_targets(diagonal)["labels"]) == 1
    assert instance_targets(diagonal)["boxes"].tolist() == [[1.0, 1.0, 3.0, 3.0]]

    empty = instance_targets(np.zeros((7, 9)))
    assert empty["boxes"].shape == (0, 4)
    assert empty["labels"].shape == (0,)
    assert empty["masks"].shape == (0, 7, 9)
    with pytest.raises(ValueError, match="2-D"):
        instance_targets(np.zeros((2, 3, 4)))


def test_horizontal_flip_moves_boxes_with_masks():
    mask = np.zeros((6, 10), dtype=np.uint8)
    mask[1:3, 0:4] = 1
    image = torch.arange(60, dtype=torch.float32).reshape(1, 6, 10)
    flipped_image, flipped = hflip_instances(image, instance_targets(mask))
    expected = instance_targets(mask[:, ::-1])
    assert torch.equal(flipped_image, image.flip(-1))
    assert torch.equal(flipped["boxes"], expected["boxes"])
    assert torch.equal(flipped["masks"], expected["masks"])

    # the net flips each training image with probability hflip (1: all, 0: none)
    images = [image, image[:, :, :8]]
    targets = [instance_targets(mask), instance_targets(mask[:, :8])]
    net = types.SimpleNamespace(hflip=1.0)
    out_images, out_targets = DetectionNet._augment(net, images, targets)
    assert torch.equal(out_images[1], images[1].flip(-1))
    assert torch.equal(out_targets[1]["masks"], targets[1]["masks"].flip(-1))
    net.hflip = 0.0
    assert DetectionNet._augment(net, images, targets)[0] is images


def test_combine_detections_keeps_confident_instances():
    masks = torch.zeros(3, 1, 4, 5)
    masks[0, 0, 0, 0] = 0.9
    masks[1, 0, 3, 4] = 0.8
    masks[2, 0, 2, 2] = 1.0
    detections = {"scores": torch.tensor([0.6, 0.9, 0.3]), "masks": masks}
    proba, mask = combine_detections(detections, score_threshold=0.5, keep="largest")
    assert mask.dtype == torch.bool and mask.shape == (4, 5)
    assert torch.nonzero(mask).tolist() == [[3, 4]]  # the highest-scoring detection only
    assert proba[3, 4].item() == pytest.approx(0.9 * 0.8)
    assert proba.sum().item() == pytest.approx(0.9 * 0.8)

    proba, mask = combine_detections(detections, score_threshold=0.5, keep="union")
    assert torch.nonzero(mask).tolist() == [[0, 0], [3, 4]]  # 0.3 is below the threshold
    assert proba[0, 0].item() == pytest.approx(0.6 * 0.9)

    proba, mask = combine_detections(detections, score_threshold=0.2, mask_threshold=0.85)
    assert torch.nonzero(mask).tolist() == []  # kept: 0.9-score detection, its mask is 0.8

    nothing = {"scores": torch.zeros(0), "masks": torch.zeros(0, 1, 4, 5)}
    proba, mask = combine_detections(nothing)
    assert proba.shape == (4, 5) and not mask.any() and proba.sum() == 0


def test_image_preparation_batches_and_loss():
    image = np.array([[10.0, 20.0], [30.0, 50.0]], dtype=np.float32)
    gray = prepare_image(image, 1)
    assert gray.shape == (1, 2, 2) and gray.min() == 0 and gray.max() == 1
    assert prepare_image(image, 3).shape == (3, 2, 2)
    rgb = np.stack([image, image, image * 0], axis=-1)
    assert prepare_image(rgb, 1).shape == (1, 2, 2)
    assert prepare_image(np.full((3, 3), 7.0), 1).abs().sum() == 0  # constant image

    batch, targets = collate_detections([(gray, {}), (prepare_image(np.ones((3, 5)), 1), {})])
    assert isinstance(batch, ImageBatch) and len(batch) == 2 and len(targets) == 2
    assert [tuple(im.shape) for im in batch] == [(1, 2, 2), (1, 3, 5)]

    losses = {"loss_mask": torch.tensor(2.0), "loss_classifier": torch.tensor(1.0)}
    assert DetectionLoss()(losses).item() == 3.0
    assert DetectionLoss({"loss_mask": 0.5})(losses).item() == 2.0


# ---------------------------------------------------------------------- the estimator


def test_fit_predict_transform_score_on_mixed_grids(fitted, cohort, outputs):
    shapes = [image.shape for image in cohort["image"]]
    masks, probas = outputs
    assert isinstance(masks, list) and len(masks) == len(cohort)
    assert [m.shape for m in masks] == shapes
    assert all(m.dtype == np.bool_ for m in masks)
    assert [p.shape for p in probas] == shapes
    assert all(p.dtype == np.float32 and p.min() >= 0 and p.max() <= 1 for p in probas)

    out = fitted.transform(cohort)
    assert list(out.columns) == [*cohort.columns, "pred_mask"]
    assert "pred_mask" not in cohort.columns  # a copy
    assert all(m.dtype == np.uint8 for m in out["pred_mask"])
    assert all(np.array_equal(a, b) for a, b in zip(out["pred_mask"], masks))
    assert list(fitted.get_feature_names_out()) == [*cohort.columns, "pred_mask"]

    score = fitted.score(cohort)
    assert score == pytest.approx(dice_score(list(cohort["mask"]), masks))
    assert 0.0 <= score <= 1.0

    assert fitted.in_chans_ == 1
    assert fitted.n_instances_ == 4  # 1 + 1 + 0 (empty mask) + 2
    assert len(fitted.history_) == 2
    epoch = fitted.history_[-1]
    for name in ("loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness"):
        assert np.isfinite(epoch[f"train_{name}"])
    # batches of two images (the batch size is counted in images, not channels)
    assert [b["train_batch_size"] for b in epoch["batches"]] == [2, 2]
    assert fitted.module_.training is False


def test_score_threshold_and_keep_change_predictions_without_refitting(fitted, cohort, outputs):
    union = outputs[0]
    try:
        fitted.set_params(score_threshold=1.0)
        assert not any(mask.any() for mask in fitted.predict(cohort))  # nothing scores 1.0
        assert all(p.max() == 0 for p in fitted.predict_proba(cohort))
        assert fitted.score(cohort) == 0.25  # only the image without lesion is right
        fitted.set_params(score_threshold=0.0, keep="largest")
        largest = fitted.predict(cohort)
        for one, every in zip(largest, union):
            assert not (one & ~every).any()  # the top instance is part of the union
    finally:
        fitted.set_params(score_threshold=0.0, keep="union")


def test_rgb_images_are_accepted(cohort):
    X = cohort.iloc[:2].copy()
    rng = np.random.default_rng(1)
    X["image"] = [_lesion_image((40, 44), (5, 20, 5, 20), rng, rgb=True)[0], X["image"].iloc[1]]
    X["mask"] = [_lesion_image((40, 44), (5, 20, 5, 20), rng)[1], X["mask"].iloc[1]]
    seg = _segmenter(batch_size=2).fit(X)
    assert seg.in_chans_ == 3
    assert [m.shape for m in seg.predict(X)] == [(40, 44), (40, 56)]


def test_all_empty_masks_train_on_background_only(cohort):
    X = cohort.iloc[:2].copy()
    X["mask"] = [np.zeros(image.shape, dtype=np.uint8) for image in X["image"]]
    seg = _segmenter().fit(X)
    assert seg.n_instances_ == 0
    assert np.isfinite(seg.history_[-1, "train_loss"])
    assert [m.shape for m in seg.predict(X)] == [(48, 48), (40, 56)]


def _easy_lesions(n, rng, size=48, side=18):
    """Bright squares at random places on dark noise, one per image."""
    images, masks = [], []
    for _ in range(n):
        r0, c0 = rng.integers(4, size - side - 4, size=2)
        image, mask = _lesion_image((size, size), (r0, r0 + side, c0, c0 + side), rng)
        images.append(image)
        masks.append(mask)
    return pd.DataFrame({"image": images, "mask": masks})


@pytest.mark.slow
def test_short_training_reduces_the_loss():
    X = _easy_lesions(6, np.random.default_rng(3))
    seg = _segmenter(max_epochs=3, batch_size=3, optimizer="adam", lr=1e-4)
    seg.fit(X)
    history = seg.history_
    assert history[-1, "train_loss"] < history[0, "train_loss"]
    # the detection losses fall steadily (over seeds: to about 0.7 x and 0.3 x in 3 epochs);
    # the mask loss of a random network starts high and noisy
    assert history[-1, "train_loss_objectness"] < 0.85 * history[0, "train_loss_objectness"]
    assert history[-1, "train_loss_classifier"] < 0.6 * history[0, "train_loss_classifier"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (minutes on a CPU)")
@pytest.mark.parametrize("amp", ["auto", False])
def test_learns_to_segment_an_easy_lesion_on_cuda(amp):
    rng = np.random.default_rng(0)
    X, X_test = _easy_lesions(8, rng), _easy_lesions(8, rng)
    seg = _segmenter(
        max_epochs=30, batch_size=4, optimizer="adam", lr=3e-4, amp=amp, device="cuda"
    ).fit(X)
    assert seg.device_.startswith("cuda")
    assert np.isfinite(seg.history_[-1, "train_loss"])
    # a trivial answer, the whole image, scores about 0.25; an empty mask 0
    full = dice_score(list(X_test["mask"]), [np.ones(m.shape) for m in X_test["mask"]])
    assert seg.score(X_test) > full + 0.25


def test_clone_get_params_set_params():
    seg = MaskRCNNSegmenter(
        "cc_image",
        "cc_mask",
        keep="union",
        module__box_detections_per_img=3,
        optimizer__weight_decay=1e-4,
    )
    params = seg.get_params()
    assert params["image_col"] == "cc_image" and params["keep"] == "union"
    assert params["module__box_detections_per_img"] == 3
    assert params["optimizer__weight_decay"] == 1e-4
    assert params["min_size"] == 512 and params["batch_size"] == 2 and params["optimizer"] == "sgd"
    copy = clone(seg)
    assert copy.get_params() == params
    copy.set_params(score_threshold=0.3, module__rpn_batch_size_per_image=16)
    assert copy.score_threshold == 0.3
    assert copy.get_params()["module__rpn_batch_size_per_image"] == 16
    assert seg.score_threshold == 0.5
    with pytest.raises(TypeError, match="unexpected keyword argument 'boxes'"):
        MaskRCNNSegmenter(boxes=3)


def test_skorch_kwargs_reach_the_detector(cohort):
    seg = _segmenter(module__box_detections_per_img=2, criterion__weights={"loss_mask": 2.0}).fit(
        cohort.iloc[:2]
    )
    assert seg.module_.model.roi_heads.detections_per_img == 2
    assert seg.net_.criterion_.weights == {"loss_mask": 2.0}
    assert seg.module_.model.transform.min_size == (64,)
    # the default keeps a handful of detections per image
    assert (
        MaskRCNNSegmenter()._net_kwargs(
            {"device": "cpu", "amp": None, "seed": 0}, has_valid=False, run_dir=None
        )["module__box_detections_per_img"]
        == 10
    )


def test_pickle_round_trip_predicts_identically(fitted, cohort, outputs, tmp_path):
    path = tmp_path / "maskrcnn.joblib"
    joblib.dump(fitted, path)
    loaded = joblib.load(path)
    assert loaded.device_ == "cpu"
    masks, probas = outputs
    assert any(p.max() > 0 for p in probas)  # something to compare
    for a, b in zip(probas, loaded.predict_proba(cohort)):
        assert np.array_equal(a, b)
    for a, b in zip(masks, loaded.predict(cohort)):
        assert np.array_equal(a, b)
    assert len(loaded.history_) == 2


def test_same_seed_same_model_and_callers_random_state_untouched(cohort):
    X = cohort.iloc[:2]
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    first = _segmenter(score_threshold=0.0).fit(X)
    assert torch.equal(torch.rand(3), expected)
    second = _segmenter(score_threshold=0.0).fit(X)
    assert first.history_[-1, "train_loss"] == second.history_[-1, "train_loss"]
    for a, b in zip(first.predict_proba(X), second.predict_proba(X)):
        assert np.array_equal(a, b)


def test_valid_split_records_validation_losses(cohort):
    seg = _segmenter(valid_split=0.5).fit(cohort)
    epoch = seg.history_[-1]
    assert np.isfinite(epoch["valid_loss"]) and np.isfinite(epoch["valid_loss_mask"])
    assert sum(b.get("train_batch_size", 0) for b in epoch["batches"]) == 2


def test_clear_errors(cohort):
    seg = _segmenter()
    with pytest.raises(CohortInputError, match="column 'mask'.*not found"):
        seg.fit(cohort.drop(columns="mask"))
    X = cohort.copy()
    X["mask"] = [X["mask"].iloc[0], None, *X["mask"].iloc[2:]]
    with pytest.raises(CohortInputError, match="row 'P2', column 'mask': empty cell"):
        seg.fit(X)
    X = cohort.copy()
    X["mask"] = [np.zeros((10, 10), np.uint8), *X["mask"].iloc[1:]]
    with pytest.raises(CohortInputError, match=r"row 'P1', column 'mask'.*grid \(10, 10\)"):
        seg.fit(X)
    X = cohort.copy()
    X["mask"] = [X["mask"].iloc[0], X["mask"].iloc[1] * 0.5, *X["mask"].iloc[2:]]
    with pytest.raises(CohortInputError, match="row 'P2', column 'mask'.*fractional"):
        seg.fit(X)
    X = cohort.copy()
    bad = X["image"].iloc[2].copy()
    bad[0, 0] = np.nan
    X["image"] = [*X["image"].iloc[:2], bad, X["image"].iloc[3]]
    with pytest.raises(ValueError, match="row 'P3', column 'image'.*NaN"):
        seg.fit(X)
    with pytest.raises(TypeError, match="DataFrame"):
        seg.fit(np.zeros((4, 8, 8)))
    with pytest.raises(ValueError, match="keep"):
        _segmenter(keep="best").fit(cohort)
    with pytest.raises(ValueError, match="not both"):
        _segmenter(weights="DEFAULT", weights_backbone="DEFAULT").fit(cohort)
    with pytest.raises(ValueError, match="module__min_size"):
        _segmenter(module__min_size=32).fit(cohort)
    with pytest.raises(ValueError, match="score_threshold"):
        _segmenter(score_threshold=1.5).fit(cohort)


def test_prediction_and_scoring_errors(fitted, cohort):
    with pytest.raises(CohortInputError, match="column 'image'.*not found"):
        fitted.predict(cohort.drop(columns="image"))
    with pytest.raises(CohortInputError, match="column 'mask'.*not found"):
        fitted.score(cohort.drop(columns="mask"))
    X = cohort.copy()
    X["mask"] = [X["mask"].iloc[0] * 0.5, *X["mask"].iloc[1:]]
    with pytest.raises(ValueError, match="row 'P1', column 'mask'.*fractional"):
        fitted.score(X)
    with pytest.raises(Exception, match="not fitted"):
        MaskRCNNSegmenter().predict(cohort)


def test_tags():
    tags = MaskRCNNSegmenter().__sklearn_tags__()
    assert tags.input_tags.two_d_array is False
    assert tags.target_tags.required is False
    assert tags.transformer_tags is not None
