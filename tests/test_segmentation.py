import os
import subprocess
import sys
import textwrap

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import Callback

from sklearn_alnm.inputs._augment import random_patches
from sklearn_alnm.io import write_mask
from sklearn_alnm.metrics import dice_score, dice_scorer
from sklearn_alnm.nn import UNet, UNetPlusPlus, WeightsNotAvailableError
from sklearn_alnm.preprocessing import ROICropper
from sklearn_alnm.segmentation import (
    DeepLabV3Segmenter,
    RandomFlipRotate,
    SegmentationFusion,
    UNetPlusPlusSegmenter,
    UNetSegmenter,
)
from sklearn_alnm.segmentation._base import SegmentationLoss
from sklearn_alnm.utils import CohortInputError

SHAPES = [(40, 48), (56, 36)]


def _disk_cohort(n, *, seed=0, shapes=SHAPES, empty=()):
    """A bright disk at a random position on noise; rows in ``empty`` have no lesion."""
    rng = np.random.default_rng(seed)
    images, masks = [], []
    for i in range(n):
        height, width = shapes[i % len(shapes)]
        radius = rng.uniform(0.15, 0.22) * min(height, width)
        cy = rng.uniform(radius + 1, height - radius - 1)
        cx = rng.uniform(radius + 1, width - radius - 1)
        yy, xx = np.mgrid[:height, :width]
        mask = ((yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2) & (i not in empty)
        image = rng.normal(70, 25, (height, width)) + 110 * mask
        images.append(np.clip(image, 0, 255).astype(np.float32))
        masks.append(mask.astype(np.uint8))
    ids = [f"P{i:03d}" for i in range(n)]
    return pd.DataFrame({"patient_id": ids, "image": images, "mask": masks})


def _unet(**kwargs):
    params = {
        "base_channels": 8,
        "depth": 2,
        "input_size": 32,
        "max_epochs": 1,
        "batch_size": 8,
        "lr": 0.01,
        "random_state": 0,
        "device": "cpu",
    }
    params.update(kwargs)
    return UNetSegmenter(**params)


def _trivial_dice(X):
    """Best Dice of a constant answer: every pixel lesion, or none."""
    full = [np.ones_like(m, dtype=bool) for m in X["mask"]]
    none = [np.zeros_like(m, dtype=bool) for m in X["mask"]]
    return max(dice_score(X["mask"], full), dice_score(X["mask"], none))


@pytest.fixture(scope="module")
def train():
    return _disk_cohort(24, seed=0, empty=(5, 12))


@pytest.fixture(scope="module")
def test_cohort():
    return _disk_cohort(12, seed=1, empty=(3,))


@pytest.fixture(scope="module")
def fitted(train):
    return _unet(max_epochs=20, lr=0.02).fit(train)


# ---------------------------------------------------------------------------- learning


def test_unet_learns_the_lesion_and_predicts_on_each_images_grid(fitted, test_cohort):
    X = test_cohort
    proba = fitted.predict_proba(X)
    masks = fitted.predict(X)
    assert len(proba) == len(masks) == len(X)
    for image, p, m in zip(X["image"], proba, masks):
        assert p.shape == m.shape == image.shape  # 40x48 and 56x36, not the 32x32 input
        assert p.dtype == np.float32 and 0.0 <= p.min() and p.max() <= 1.0
        assert m.dtype == bool
        np.testing.assert_array_equal(m, p >= 0.5)
    dice = fitted.score(X)
    assert dice > 0.7 and dice > _trivial_dice(X) + 0.4
    assert dice == pytest.approx(dice_score(X["mask"], masks))
    assert dice == pytest.approx(dice_scorer(fitted, X))
    assert len(fitted.history_) == 20
    assert fitted.history_[-1, "train_loss"] < fitted.history_[0, "train_loss"]
    assert fitted.input_size_ == (32, 32) and fitted.in_chans_ == 1
    assert isinstance(fitted.module_, UNet)
    inputs = fitted.prepare_images(X)
    assert inputs.shape == (12, 1, 32, 32)
    assert inputs[0].mean().abs() < 1e-4 and (inputs[0].std(correction=0) - 1).abs() < 1e-3


def test_images_without_lesion_are_handled(fitted, test_cohort):
    X = test_cohort
    empty_row = 3
    assert not X["mask"].iloc[empty_row].any()
    masks = fitted.predict(X)
    per_image = dice_score(X["mask"], masks, average=None)
    assert masks[empty_row].mean() < 0.01  # (almost) nothing found where there is nothing
    if not masks[empty_row].any():
        assert per_image[empty_row] == 1.0
    # all-empty ground truth is valid training data
    blank = _disk_cohort(4, seed=3, empty=range(4))
    seg = _unet().fit(blank)
    assert np.isfinite(seg.history_[-1, "train_loss"])
    assert all(m.shape == im.shape for m, im in zip(seg.predict(blank), blank["image"]))


def test_unet_plus_plus_with_deep_supervision_learns(train, test_cohort):
    seg = UNetPlusPlusSegmenter(
        base_channels=8,
        depth=2,
        deep_supervision=True,
        input_size=32,
        max_epochs=12,
        batch_size=8,
        lr=0.01,
        random_state=0,
        device="cpu",
    ).fit(train)
    assert isinstance(seg.module_, UNetPlusPlus) and seg.module_.deep_supervision
    assert seg.score(test_cohort) > max(0.6, _trivial_dice(test_cohort) + 0.3)
    assert [m.shape for m in seg.predict(test_cohort)] == [im.shape for im in test_cohort["image"]]


@pytest.mark.slow
def test_deeplabv3_learns(train):
    # (ResNet50 trunk: MobileNetV3's batch norm, momentum 0.01, needs far more steps than a
    # test can afford before its running statistics are usable in eval mode; from scratch on
    # 16 images DeepLabV3 fits its training images but generalises poorly, so they are scored)
    X = train.iloc[:16]
    seg = DeepLabV3Segmenter(
        backbone="resnet50",
        input_size=32,
        max_epochs=8,
        batch_size=4,
        lr=0.001,
        augment=None,
        random_state=0,
        device="cpu",
    ).fit(X)
    assert seg.module_.backbone == "resnet50"
    assert seg.score(X) > _trivial_dice(X) + 0.25
    assert [m.shape for m in seg.predict(X)] == [im.shape for im in X["image"]]


def test_deeplabv3_trains_and_predicts_on_each_grid():
    X = _disk_cohort(4, seed=2)
    seg = DeepLabV3Segmenter(
        backbone="mobilenet_v3_large", input_size=32, max_epochs=1, batch_size=4, random_state=0
    ).fit(X)
    assert [m.shape for m in seg.predict(X)] == [im.shape for im in X["image"]]
    assert seg.module_.in_chans == 1
    with pytest.raises(ValueError, match="not both"):
        DeepLabV3Segmenter(weights="DEFAULT", weights_backbone="DEFAULT").fit(X)
    with pytest.raises(ValueError, match="backbone"):
        DeepLabV3Segmenter(backbone="vgg16").fit(X)


def test_named_weights_missing_offline_raise_before_reading_images(tmp_path):
    unreadable = pd.DataFrame({"image": ["missing.png"] * 2, "mask": ["missing.png"] * 2})
    hub = torch.hub.get_dir()
    torch.hub.set_dir(os.fspath(tmp_path))
    try:
        for kwargs in ({"weights": "DEFAULT"}, {"weights_backbone": "DEFAULT"}):
            seg = DeepLabV3Segmenter(backbone="mobilenet_v3_large", **kwargs)
            with pytest.raises(WeightsNotAvailableError, match="mobilenet"):
                seg.fit(unreadable)
    finally:
        torch.hub.set_dir(hub)


# ------------------------------------------------------------------------- cohort API


def test_transform_adds_the_masks_and_chains_with_roi_cropper(fitted, test_cohort):
    X = test_cohort
    before = X.copy()
    out = fitted.transform(X)
    assert list(out.columns) == [*X.columns, "pred_mask"]
    assert out.index.equals(X.index)
    for pred, mask in zip(out["pred_mask"], fitted.predict(X)):
        assert pred.dtype == np.uint8
        np.testing.assert_array_equal(pred, mask)
    pd.testing.assert_frame_equal(X[["patient_id"]], before[["patient_id"]])
    assert "pred_mask" not in X.columns
    assert fitted.get_feature_names_out().tolist() == ["patient_id", "image", "mask", "pred_mask"]
    try:
        assert "seg" in fitted.set_params(output_col="seg").transform(X.iloc[:2]).columns
    finally:
        fitted.set_params(output_col="pred_mask")

    pipe = make_pipeline(
        _unet(), ROICropper(mask_col="pred_mask", output_col="roi", output_size=(16, 16))
    )
    rois = pipe.fit_transform(X, np.arange(len(X)) % 2)  # y (patient labels) is ignored
    assert all(r.shape == (16, 16) for r in rois["roi"])


def test_threshold_moves_the_masks(fitted, test_cohort):
    X = test_cohort.iloc[:4]
    default = fitted.predict(X)
    try:
        low = fitted.set_params(threshold=0.1).predict(X)
    finally:
        fitted.set_params(threshold=0.5)
    assert all((lo >= hi).all() for lo, hi in zip(low, default))
    assert sum(lo.sum() for lo in low) > sum(hi.sum() for hi in default)


def test_same_seed_same_model_and_rgb_inputs(train):
    X = train.iloc[:8]
    a = _unet(augment="default").fit(X).predict_proba(X)
    b = _unet(augment="default").fit(X).predict_proba(X)
    for pa, pb in zip(a, b):
        np.testing.assert_array_equal(pa, pb)
    rgb = X.copy()
    rgb["image"] = [np.stack([im, 0.9 * im, 0.8 * im], axis=2) for im in X["image"]]
    seg = _unet().fit(rgb)
    assert seg.in_chans_ == 3 and seg.module_.in_chans == 3
    assert [m.shape for m in seg.predict(rgb)] == [im.shape for im in X["image"]]


# --------------------------------------------------------------- augmentation, patches


def test_default_augmentation_moves_image_and_mask_together():
    image = torch.zeros(3, 1, 20, 30)
    image[:, :, 5:12, 3:9] = 1.0
    mask = image.clone()
    flip = RandomFlipRotate(p_hflip=1.0, degrees=0.0, scale=(1.0, 1.0))
    out_image, out_mask = flip(image, mask)
    torch.testing.assert_close(out_image, image.flip(-1))
    torch.testing.assert_close(out_mask, mask.flip(-1))
    torch.manual_seed(0)
    out_image, out_mask = RandomFlipRotate(degrees=30.0)(image, mask)
    torch.testing.assert_close(out_image, out_mask)  # same geometry for both
    assert not torch.equal(out_image, image)
    assert RandomFlipRotate() == RandomFlipRotate() and "degrees=15.0" in repr(RandomFlipRotate())


class _Spy:
    """A per-image joint augmentation recording what it receives."""

    def __init__(self):
        self.calls = []

    def __call__(self, image, mask):
        self.calls.append((type(image).__name__, tuple(image.shape), tuple(mask.shape)))
        return image.flip(-1), mask.flip(-1)


def test_callable_augmentation_sees_image_and_mask_in_training_only(train):
    X = train.iloc[:8]
    spy = _Spy()
    seg = _unet(augment=spy, max_epochs=2).fit(X)
    assert len(spy.calls) == 16
    assert set(spy.calls) == {("Image", (1, 32, 32), (1, 32, 32))}
    seg.predict_proba(X)
    assert len(spy.calls) == 16  # never at prediction
    from torchvision.transforms import v2

    _unet(augment=v2.Compose([v2.RandomHorizontalFlip(p=1.0), v2.RandomRotation(10)])).fit(X)
    with pytest.raises(ValueError, match="pair"):
        _unet(augment=lambda image, mask: image).fit(X)
    with pytest.raises(ValueError, match="augment"):
        _unet(augment="strong").fit(X)


class _InputShapes(Callback):
    def on_train_begin(self, net, **kwargs):
        self.shapes = []
        self.handle = net.module_.register_forward_pre_hook(
            lambda module, args: self.shapes.append((module.training, tuple(args[0].shape)))
        )

    def on_train_end(self, net, **kwargs):
        self.handle.remove()


def test_patch_sampling_trains_on_patches_and_predicts_whole_images(train):
    X = train.iloc[:8]
    spy = _InputShapes()
    seg = _unet(patch_size=(16, 24), callbacks=[("shapes", spy)]).fit(X)
    assert seg.patch_size_ == (16, 24)
    assert {shape for training, shape in spy.shapes if training} == {(8, 1, 16, 24)}
    assert [p.shape for p in seg.predict_proba(X)] == [im.shape for im in X["image"]]
    assert _unet(patch_size=32).fit(X).patch_size_ is None  # the whole image
    with pytest.raises(ValueError, match="patch_size"):
        _unet(patch_size=40).fit(X)

    images = torch.arange(2 * 2 * 6 * 8, dtype=torch.float32).reshape(2, 2, 6, 8)
    masks = images[:, :1] * 10
    patches, mask_patches = random_patches(images, masks, (3, 4))
    assert patches.shape == (2, 2, 3, 4) and mask_patches.shape == (2, 1, 3, 4)
    torch.testing.assert_close(mask_patches, patches[:, :1] * 10)  # cut at the same place


def test_losses():
    target = torch.zeros(2, 1, 8, 8)
    target[0, :, 2:6, 2:6] = 1.0  # the second image has no lesion
    perfect = 30.0 * (2.0 * target - 1.0)
    for name in ("dice+bce", "bce", "dice"):
        loss = SegmentationLoss(name)
        assert loss(perfect, target) < 1e-3
        assert loss(-perfect, target) > 0.5
        assert loss([perfect, -perfect], target) == pytest.approx(
            (loss(perfect, target) + loss(-perfect, target)).item() / 2
        )
    with pytest.raises(ValueError, match="loss"):
        SegmentationLoss("focal")
    X = _disk_cohort(8)
    for name in ("bce", "dice"):
        seg = _unet(loss=name).fit(X)
        assert seg.net_.criterion_.loss == name


# ------------------------------------------------------------------------------ fusion


@pytest.fixture(scope="module")
def members(train, fitted):
    other = _unet(max_epochs=20, lr=0.02, random_state=1).fit(train)
    return [("unet", fitted), ("small", other)]


def test_fusion_vote_mean_union(members, test_cohort):
    X = test_cohort
    probas = [m.predict_proba(X) for _, m in members]
    masks = [m.predict(X) for _, m in members]
    mean = SegmentationFusion(members, method="mean", prefit=True).fit(X)
    for fused, a, b in zip(mean.predict_proba(X), *probas):
        np.testing.assert_allclose(fused, (a + b) / 2, rtol=1e-6)
    union = SegmentationFusion(members, method="union", prefit=True).fit(X)
    strict = SegmentationFusion(members, method="vote", threshold=1.0, prefit=True).fit(X)
    vote = SegmentationFusion(members, method="vote", prefit=True).fit(X)
    for u, s, v, a, b in zip(union.predict(X), strict.predict(X), vote.predict(X), *masks):
        np.testing.assert_array_equal(u, a | b)
        np.testing.assert_array_equal(s, a & b)
        np.testing.assert_array_equal(v, a | b)  # half of two members is enough at 0.5
    share = vote.predict_proba(X)[0]
    assert set(np.unique(share)) <= {0.0, 0.5, 1.0}
    assert vote.segmenters_[0] is members[0][1]  # prefit members are used as they are
    assert vote.mask_col == "mask" and vote.image_col == "image"
    assert mean.score(X) == pytest.approx(dice_score(X["mask"], mean.predict(X)))
    assert mean.score(X) > 0.6
    out = mean.transform(X)
    assert [m.shape for m in out["pred_mask"]] == [im.shape for im in X["image"]]


def test_fusion_stack_learns_member_importances(members, test_cohort, train):
    X = test_cohort
    good = members[0][1]
    noise = clone(good).set_params(max_epochs=1, lr=1e-6, random_state=3).fit(train.iloc[:8])
    named = [("good", good), ("noise", noise)]
    stack = SegmentationFusion(named, method="stack", prefit=True, n_pixels=300, random_state=0)
    stack.fit(X)
    assert isinstance(stack.stacker_, LogisticRegression)
    assert stack.member_names_.tolist() == ["good", "noise"]
    assert stack.member_importances_.shape == (2,)
    assert stack.member_importances_[0] > abs(stack.member_importances_[1])
    assert stack.score(X) > 0.6
    xgboost = pytest.importorskip("xgboost")
    boosted = SegmentationFusion(
        [(name, FrozenEstimator(member)) for name, member in named],  # survive clone()
        method="stack",
        stacker=xgboost.XGBClassifier(n_estimators=10, max_depth=2, n_jobs=1),
        n_pixels=300,
        random_state=0,
    )
    boosted = clone(boosted).fit(X)  # frozen members: nothing refitted, in-sample stacking
    assert boosted.segmenters_[0].estimator is good
    importances = boosted.member_importances_
    assert importances.shape == (2,) and importances[0] > importances[1]
    assert boosted.score(X) > 0.6


def test_fusion_fits_its_members_and_stacks_out_of_fold():
    X = _disk_cohort(8, seed=4)
    fusion = SegmentationFusion(
        [_unet(), _unet(depth=1)], method="stack", cv=2, n_pixels=100, random_state=0
    ).fit(X)
    assert fusion.member_names_.tolist() == ["unetsegmenter-1", "unetsegmenter-2"]
    assert all(hasattr(m, "net_") for m in fusion.segmenters_)
    assert not hasattr(fusion.segmenters[0], "net_")  # the given members are not fitted
    assert [m.shape for m in fusion.predict(X)] == [im.shape for im in X["image"]]
    vote = clone(fusion).set_params(method="vote").fit(X)
    assert not hasattr(vote, "stacker_")


def test_fusion_params_and_errors(members, test_cohort):
    X = test_cohort
    fusion = SegmentationFusion([("a", _unet()), ("b", _unet(depth=1))], method="mean")
    params = fusion.get_params()
    assert params["a__lr"] == 0.01 and params["b__depth"] == 1
    fusion.set_params(a__lr=0.5, b__module__batch_norm=False)
    assert fusion.segmenters[0][1].lr == 0.5
    assert fusion.segmenters[1][1].module__batch_norm is False
    assert clone(fusion).get_params()["a__lr"] == 0.5
    with pytest.raises(ValueError, match="method"):
        SegmentationFusion(members, method="max").fit(X)
    with pytest.raises(ValueError, match="not fitted"):
        SegmentationFusion([("a", _unet())], prefit=True).fit(X)
    with pytest.raises(ValueError, match="different columns"):
        SegmentationFusion([("a", _unet()), ("b", _unet(mask_col="roi"))]).fit(X)
    with pytest.raises(ValueError, match="unique"):
        SegmentationFusion([("a", _unet()), ("a", _unet())]).fit(X)
    with pytest.raises(TypeError, match="lacks"):
        SegmentationFusion([("a", StandardScaler())]).fit(X)
    blank = _disk_cohort(4, seed=5, empty=range(4))
    with pytest.raises(ValueError, match="background"):
        SegmentationFusion(members, method="stack", prefit=True).fit(blank)


# ----------------------------------------------------------- params, pickles, search


def test_clone_get_params_set_params_and_skorch_kwargs(train):
    seg = _unet(module__batch_norm=False, optimizer__weight_decay=1e-4)
    params = seg.get_params()
    assert params["module__batch_norm"] is False and params["base_channels"] == 8
    twin = clone(seg)
    assert twin.get_params() == params
    twin.set_params(depth=1, upsample="bilinear", module__dropout=0.1)
    assert twin.depth == 1 and twin.module__dropout == 0.1
    with pytest.raises(ValueError, match="use dropout="):
        twin.fit(train.iloc[:8])
    del twin.module__dropout
    twin.fit(train.iloc[:8])
    assert twin.module_.depth == 1 and twin.module_.upsample == "bilinear"
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in twin.module_.modules())
    with pytest.raises(ValueError, match="use depth="):
        _unet(module__depth=3).fit(train)
    with pytest.raises(ValueError, match="use loss="):
        _unet(criterion__loss="bce").fit(train)
    with pytest.raises(TypeError, match="unexpected keyword argument 'depht'"):
        UNetSegmenter(depht=3)


def test_grid_search_with_the_dice_scorer(train):
    search = GridSearchCV(
        _unet(max_epochs=10), {"lr": [1e-6, 0.02]}, scoring=dice_scorer, cv=2, error_score="raise"
    ).fit(train)
    assert search.best_params_ == {"lr": 0.02}
    assert search.best_score_ > 0.5
    assert search.best_estimator_.score(train) > 0.5
    default = GridSearchCV(_unet(), {"threshold": [0.5]}, cv=2).fit(train.iloc[:8])  # mean Dice
    assert np.isfinite(default.best_score_)


def test_joblib_round_trip(fitted, test_cohort, tmp_path):
    path = tmp_path / "seg.joblib"
    joblib.dump(fitted, path)
    loaded = joblib.load(path)
    assert loaded.device_ == "cpu"
    for a, b in zip(loaded.predict_proba(test_cohort), fitted.predict_proba(test_cohort)):
        np.testing.assert_array_equal(a, b)


_LOAD_SCRIPT = textwrap.dedent(
    """
    import sys
    import joblib
    import numpy as np
    import torch

    assert not torch.cuda.is_available()
    X = joblib.load(sys.argv[1])
    for name in sys.argv[2:]:
        model = joblib.load(name + ".joblib")
        maps = model.predict_proba(X)
        np.save(name + ".npy", np.concatenate([m.ravel() for m in maps]))
    """
)


def test_pickles_load_in_a_fresh_cpu_only_process(
    fitted, members, test_cohort, tmp_path, monkeypatch
):
    X = test_cohort.iloc[:4]
    fusion = SegmentationFusion(members, method="mean", prefit=True).fit(X)
    expected = {}
    for name, model in {"unet": fitted, "fusion": fusion}.items():
        joblib.dump(model, tmp_path / f"{name}.joblib")
        expected[name] = np.concatenate([m.ravel() for m in model.predict_proba(X)])
    # the same model as if trained on CUDA: every tensor storage is written as one on cuda:0
    cuda = joblib.load(tmp_path / "unet.joblib")
    cuda.net_.device, cuda.device_ = "cuda", "cuda"
    cuda.net_.amp, cuda.net_.channels_last = "bf16", True
    monkeypatch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
    joblib.dump(cuda, tmp_path / "cuda.joblib")
    monkeypatch.undo()
    expected["cuda"] = expected["unet"]
    joblib.dump(X, tmp_path / "X.joblib")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _LOAD_SCRIPT,
            os.fspath(tmp_path / "X.joblib"),
            *(os.fspath(tmp_path / name) for name in expected),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    for name, proba in expected.items():
        np.testing.assert_allclose(np.load(tmp_path / f"{name}.npy"), proba, rtol=1e-6, atol=1e-7)


# ------------------------------------------------------------------------------ errors


def test_errors_name_the_row_column_and_file(tmp_path):
    X = _disk_cohort(4)
    with pytest.raises(CohortInputError, match="column 'roi'.*not found"):
        _unet(mask_col="roi").fit(X)
    missing = X.copy()
    missing.at[2, "mask"] = None
    with pytest.raises(ValueError, match=r"row 'P002', column 'mask': empty cell"):
        _unet().fit(missing)
    wrong_grid = X.copy()
    wrong_grid.at[1, "mask"] = np.zeros((20, 20), dtype=np.uint8)
    with pytest.raises(ValueError, match=r"row 'P001', column 'mask'.*\(20, 20\).*\(56, 36\)"):
        _unet().fit(wrong_grid)
    labels = X.copy()
    label_map = X.at[3, "mask"].copy()
    label_map[0, 0] = 2
    labels.at[3, "mask"] = label_map
    with pytest.raises(
        ValueError, match=r"row 'P003', column 'mask': mask holds the labels \[0, 1, 2\]"
    ):
        _unet().fit(labels)
    write_mask(tmp_path / "label.png", label_map)
    labels.at[3, "mask"] = os.fspath(tmp_path / "label.png")
    with pytest.raises(ValueError, match=r"row 'P003', column 'mask', file '.*label.png'.*binary"):
        _unet().fit(labels)
    soft = X.copy()
    soft.at[0, "mask"] = X.at[0, "mask"] * 0.7
    with pytest.raises(ValueError, match=r"row 'P000', column 'mask'.*fractional.*binary"):
        _unet().fit(soft)
    with pytest.raises(TypeError, match="DataFrame"):
        _unet().fit(np.zeros((4, 32, 32)))
    with pytest.raises(ValueError, match="input_size"):
        _unet(input_size=(32, 32, 1)).fit(X)
    with pytest.raises(ValueError, match="normalize"):
        _unet(normalize="minmax").fit(X)
    with pytest.raises(ValueError, match="threshold"):
        _unet(threshold=1.5).fit(X)
    # prediction needs only the image column
    seg = _unet().fit(X)
    assert len(seg.predict(X.drop(columns="mask"))) == 4
    with pytest.raises(CohortInputError, match="column 'image'"):
        seg.predict(X.drop(columns="image"))


def test_valid_split_and_early_stopping(train):
    seg = _unet(valid_split=0.25, early_stopping=2, max_epochs=4).fit(train.iloc[:12])
    assert "valid_loss" in seg.history_[-1]
    assert np.isfinite(seg.history_[-1, "valid_loss"])


def test_tags():
    tags = _unet().__sklearn_tags__()
    assert tags.input_tags.two_d_array is False
    assert tags.target_tags.required is False
    assert tags.transformer_tags is not None
    fusion_tags = SegmentationFusion([("a", _unet())]).__sklearn_tags__()
    assert fusion_tags.input_tags.two_d_array is False


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_training_with_amp(train):
    seg = _unet(device="cuda", max_epochs=2, patch_size=24).fit(train.iloc[:8])
    assert seg.device_.startswith("cuda") and seg.net_.amp is not None
    assert [m.shape for m in seg.predict(train.iloc[:8])] == [im.shape for im in train["image"][:8]]
