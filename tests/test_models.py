import json
import os
import subprocess
import sys
import textwrap
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from skorch.callbacks import Callback, LRScheduler
from torch import nn

from sklearn_alnm.datasets import make_alnm_cohort
from sklearn_alnm.inputs import BaseInput, TensorInputDataset
from sklearn_alnm.models import BaseNeuralClassifier, ImageClassifier, RandomResizedCropFlip
from sklearn_alnm.models._classifier import ClassifierNet, WeightedCrossEntropyLoss
from sklearn_alnm.nn import (
    Backbone,
    BackboneSpec,
    WeightsNotAvailableError,
    available_backbones,
    get_backbone_spec,
    register_backbone,
    unregister_backbone,
)
from sklearn_alnm.utils import CohortInputError

TINY = "tiny_cnn_models_test"


def _tiny_cnn(weights=None, progress=True, num_classes=1000):
    """A few-thousand-parameter CNN, registered for the fast tests."""
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, num_classes),
    )


@pytest.fixture(scope="module", autouse=True)
def tiny_backbone():
    spec = BackboneSpec(
        TINY, _tiny_cnn, 8, head="5", first_conv="0", gradcam_layer="2", min_input_size=8
    )
    register_backbone(spec, overwrite=True)
    yield TINY
    unregister_backbone(TINY)


def _images(n, *, size=32, rgb=False, seed=0):
    rng = np.random.default_rng(seed)
    shape = (size, size, 3) if rgb else (size, size)
    return [rng.uniform(0, 255, shape).astype(np.float32) for _ in range(n)]


def _separable(n, *, size=24, seed=0):
    """Class 1: a bright disc in noise; class 0: noise only."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    disc = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 4) ** 2
    y = np.arange(n) % 2
    images = [rng.normal(60, 20, (size, size)) + 120 * disc * label for label in y]
    return pd.DataFrame({"image": [np.clip(im, 0, 255).astype(np.float32) for im in images]}), y


def _tiny(**kwargs):
    params = {
        "backbone": TINY,
        "input_size": 16,
        "max_epochs": 1,
        "batch_size": 8,
        "random_state": 0,
        "device": "cpu",
    }
    params.update(kwargs)
    return ImageClassifier(**params)


@pytest.fixture(scope="module")
def cohort():
    return make_alnm_cohort(16, modalities="ultrasound", image_size=32, random_state=0)


@pytest.fixture(scope="module")
def fitted(cohort):
    X, y = cohort
    return _tiny(mask_col="mask", max_epochs=2).fit(X, y)


# ------------------------------------------------------------------------- every backbone


class _HeadSnapshot(Callback):
    def on_train_begin(self, net, **kwargs):
        self.before = _head_weight(net.module_).clone()


def _head_weight(module):
    return [p for p in module.head.parameters() if p.ndim == 2][0].detach()


HEAVY = {"resnet50", "resnet101", "ulnet", "vit_b_16", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"}


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in available_backbones()],
)
def test_every_backbone_trains_one_step_on_one_and_three_channels(name):
    spec = get_backbone_spec(name)
    size = max(32, spec.min_input_size)
    if spec.patch_size:
        size = -(-size // spec.patch_size) * spec.patch_size
    y = np.array([0, 1, 0, 1])
    for rgb, chans in ((False, 1), (True, 3)):
        X = pd.DataFrame({"image": _images(4, size=size, rgb=rgb)})
        clf = ImageClassifier(
            backbone=name,
            input_size=size,
            max_epochs=1,
            batch_size=4,
            optimizer="sgd",
            optimizer__momentum=0.0,
            lr=0.01,
            augment=None,
            random_state=0,
            device="cpu",
        )
        snapshot = _HeadSnapshot()
        clf.set_params(callbacks=[("snapshot", snapshot)]).fit(X, y)
        assert clf.in_chans_ == chans
        assert isinstance(clf.module_, Backbone) and clf.module_.in_chans == chans
        assert len(clf.history_[-1, "batches"]) == 1  # exactly one optimisation step
        assert not torch.equal(snapshot.before, _head_weight(clf.module_))  # it was trained
        clf.module_.get_submodule(clf.module_.gradcam_layer)
        proba = clf.predict_proba(X)
        assert proba.shape == (4, 2)
        # (deep random networks after one step may overflow in eval mode: skip those rows)
        finite = np.isfinite(proba).all(axis=1)
        np.testing.assert_allclose(proba[finite].sum(axis=1), 1.0, rtol=1e-6)


# ------------------------------------------------------------------------------ learning


def test_learns_a_clearly_separable_task_and_records_history():
    X, y = _separable(48)
    from sklearn_alnm.models._classifier import _binary_auc

    scores = np.random.default_rng(0).normal(size=40).round(1)  # with ties
    labels = np.arange(40) % 2
    assert _binary_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores))
    X_test, y_test = _separable(24, seed=1)
    clf = _tiny(input_size=24, max_epochs=12, lr=0.02, valid_split=0.25, batch_size=12)
    clf.fit(X, y)
    assert roc_auc_score(y_test, clf.predict_proba(X_test)[:, 1]) > 0.95
    assert len(clf.history_) == 12
    for key in ("train_loss", "train_auc", "valid_loss", "valid_auc", "dur"):
        assert all(np.isfinite(v) for v in clf.history_[:, key])
    assert clf.history_[-1, "train_loss"] < clf.history_[0, "train_loss"]


def test_outputs_are_consistent_and_deterministic(fitted, cohort):
    X, y = cohort
    assert not fitted.module_.training
    proba = fitted.predict_proba(X)
    assert proba.shape == (len(X), 2) and proba.dtype == np.float64
    np.testing.assert_array_equal(proba, fitted.predict_proba(X))  # no augmentation, eval mode
    decision = fitted.decision_function(X)
    assert decision.shape == (len(X),)
    np.testing.assert_allclose(1 / (1 + np.exp(-decision)), proba[:, 1], rtol=1e-10)
    np.testing.assert_array_equal(fitted.predict(X), fitted.classes_[proba.argmax(axis=1)])
    assert fitted.score(X, y) == np.mean(fitted.predict(X) == y)
    # prepare_images is exactly what the network sees
    images = fitted.prepare_images(X)
    assert images.dtype == torch.float32 and images.device.type == "cpu"
    assert images.shape == (len(X), fitted.in_chans_, *fitted.input_size_)
    with torch.inference_mode():
        logits = fitted.module_.eval()(images.to(fitted.device_)).double()
    np.testing.assert_allclose(torch.softmax(logits, 1).numpy(), proba, rtol=1e-5, atol=1e-7)


def test_same_seed_same_model_and_callers_random_state_untouched(cohort):
    X, y = cohort
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = _tiny(mask_col="mask").fit(X, y).predict_proba(X)
    assert torch.equal(torch.get_rng_state(), state)
    b = _tiny(mask_col="mask").fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    c = _tiny(mask_col="mask", random_state=1).fit(X, y).predict_proba(X)
    assert not np.array_equal(a, c)


def test_arbitrary_labels_are_kept(cohort):
    X, y = cohort
    labels = np.where(y == 1, "N+", "N0")
    with pytest.raises(ValueError, match=r"ImageClassifier: .*\['N\+', 'N0'\].*pos_label"):
        _tiny(mask_col="mask").fit(X, labels)
    clf = _tiny(mask_col="mask", pos_label="N+").fit(X, labels)
    assert clf.classes_.tolist() == ["N+", "N0"] and clf.pos_label_ == "N+"
    assert _tiny(mask_col="mask").fit(X, y).pos_label_ == 1
    assert set(clf.predict(X)) <= {"N+", "N0"}
    assert 0.0 <= clf.score(X, labels) <= 1.0
    three = np.array(["a", "b", "c", "a"] * 4)
    multi = _tiny(mask_col="mask").fit(X, three)
    assert multi.predict_proba(X).shape == (16, 3)
    assert multi.decision_function(X).shape == (16, 3)
    assert multi.pos_label_ is None
    with pytest.raises(ValueError, match="applies to binary labels"):
        _tiny(mask_col="mask", pos_label="a").fit(X, three)


# ------------------------------------------------------------------------------ weights


def test_class_weight_balanced_and_dict_set_the_loss_weights(cohort):
    X, _ = cohort
    y = np.array(["N0"] * 12 + ["N+"] * 4)
    clf = _tiny(mask_col="mask", class_weight="balanced", pos_label="N+").fit(X, y)
    expected = 16 / (2 * np.array([4, 12]))  # classes_ = ["N+", "N0"]
    np.testing.assert_allclose(clf.class_weight_, expected)
    np.testing.assert_allclose(clf.net_.criterion_.weight.cpu().numpy(), expected, rtol=1e-6)
    clf = _tiny(mask_col="mask", class_weight={"N+": 5.0}, pos_label="N+").fit(X, y)
    np.testing.assert_allclose(clf.net_.criterion_.weight.cpu().numpy(), [5.0, 1.0])
    assert _tiny(mask_col="mask", pos_label="N+").fit(X, y).net_.criterion_.weight is None
    with pytest.raises(ValueError, match="not in y"):
        _tiny(mask_col="mask", class_weight={"N2": 5.0}, pos_label="N+").fit(X, y)


def test_weighted_loss_is_the_weighted_mean_of_per_sample_losses():
    net = ClassifierNet(
        nn.Linear(2, 2),
        criterion=WeightedCrossEntropyLoss,
        criterion__reduction="none",
        criterion__class_weight=(1.0, 3.0),
        train_split=None,
    ).initialize()
    logits = torch.tensor([[0.2, -0.1], [1.0, 0.5], [-0.3, 0.8]])
    labels = torch.tensor([0, 1, 1])
    weights = torch.tensor([1.0, 0.5, 2.0])
    expected = nn.functional.cross_entropy(logits, labels, weight=torch.tensor([1.0, 3.0]))
    torch.testing.assert_close(net.get_loss(logits, labels), expected)
    per = nn.functional.cross_entropy(logits, labels, reduction="none")
    c = torch.tensor([1.0, 3.0])[labels]
    manual = (weights * c * per).sum() / (weights * c).sum()
    torch.testing.assert_close(net.get_loss(logits, (labels, weights)), manual)


def test_sample_weight(cohort):
    X, y = cohort
    plain = _tiny(mask_col="mask").fit(X, y).predict_proba(X)
    scaled = _tiny(mask_col="mask").fit(X, y, sample_weight=np.full(16, 2.0)).predict_proba(X)
    np.testing.assert_allclose(plain, scaled, rtol=1e-5, atol=1e-6)  # a weighted *mean*
    weights = np.where(np.arange(16) < 8, 1.0, 0.05)
    reweighted = _tiny(mask_col="mask").fit(X, y, sample_weight=weights).predict_proba(X)
    assert not np.allclose(plain, reweighted)
    with pytest.raises(ValueError, match="sample_weight"):
        _tiny(mask_col="mask").fit(X, y, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="non-negative"):
        _tiny(mask_col="mask").fit(X, y, sample_weight=-np.ones(16))


# ---------------------------------------------------------------- parameters and skorch


def test_clone_get_params_and_skorch_kwargs_round_trip():
    clf = ImageClassifier(
        backbone="resnet18",
        lr=0.01,
        optimizer__weight_decay=1e-4,
        iterator_train__num_workers=0,
        callbacks=[("extra", LRScheduler())],
    )
    params = clf.get_params()
    assert params["optimizer__weight_decay"] == 1e-4
    assert params["iterator_train__num_workers"] == 0
    twin = clone(clf)
    assert twin.get_params(deep=False).keys() == clf.get_params(deep=False).keys()
    assert twin.optimizer__weight_decay == 1e-4 and twin.lr == 0.01
    twin.set_params(optimizer__weight_decay=0.5, module__foo=1, lr=0.1, backbone="resnet34")
    assert (twin.optimizer__weight_decay, twin.module__foo, twin.lr) == (0.5, 1, 0.1)
    assert clone(twin).get_params()["module__foo"] == 1
    assert "optimizer__weight_decay=0.5" in repr(twin)
    with pytest.raises(TypeError, match="unexpected keyword argument 'foo'"):
        ImageClassifier(foo=1)
    with pytest.raises(ValueError, match="Invalid parameter"):
        clf.set_params(nonsense=1)


def test_set_params_of_skorch_kwargs_reaches_the_net(cohort):
    X, y = cohort
    clf = _tiny(mask_col="mask", lr_schedule="step", optimizer="adamw").set_params(
        optimizer__weight_decay=0.123,
        callbacks__lr_scheduler__step_size=3,
        iterator_valid__batch_size=5,
        criterion__label_smoothing=0.1,
    )
    clf.fit(X, y)
    net = clf.net_
    assert isinstance(net.optimizer_, torch.optim.AdamW)
    assert net.optimizer_.param_groups[0]["weight_decay"] == 0.123
    assert dict(net.callbacks_)["lr_scheduler"].step_size == 3
    assert net.criterion_.label_smoothing == 0.1
    assert net.get_params_for("iterator_valid")["batch_size"] == 5
    with pytest.raises(ValueError, match="use lr= instead"):
        _tiny(optimizer__lr=0.1).fit(X, y)
    with pytest.raises(ValueError, match="use dropout= instead"):
        _tiny(module__dropout=0.1).fit(X, y)


def test_grid_search_over_lr_and_backbone(cohort):
    X, y = cohort
    search = GridSearchCV(
        _tiny(mask_col="mask", input_size=32),
        {"lr": [1e-3, 1e-2], "backbone": [TINY, "squeezenet1_1"]},
        cv=2,
        n_jobs=1,
        scoring="roc_auc",
        error_score="raise",
    )
    search.fit(X, y)
    assert search.cv_results_["mean_test_score"].shape == (4,)
    assert search.best_estimator_.backbone in (TINY, "squeezenet1_1")
    assert search.predict_proba(X).shape == (16, 2)


def test_optimizers_and_learning_rate_schedules(cohort):
    X, y = cohort
    step = _tiny(mask_col="mask", lr_schedule="step").fit(X, y)
    sched = dict(step.net_.callbacks_)["lr_scheduler"]
    assert (sched.policy, sched.step_size, sched.gamma) == ("StepLR", 10, 0.5)
    cosine = _tiny(mask_col="mask", optimizer="sgd", lr=0.01, lr_schedule="cosine", max_epochs=2)
    cosine.fit(X, y)
    sched = dict(cosine.net_.callbacks_)["lr_scheduler"]
    assert (sched.policy, sched.T_max) == ("CosineAnnealingLR", 2)
    assert isinstance(cosine.net_.optimizer_, torch.optim.SGD)
    assert cosine.net_.optimizer_.param_groups[0]["momentum"] == 0.9
    halving = _tiny(
        mask_col="mask", lr=0.1, max_epochs=3, lr_schedule={"policy": "step", "step_size": 1}
    ).fit(X, y)
    np.testing.assert_allclose(halving.history_[:, "event_lr"], [0.1, 0.01, 0.001])
    with pytest.raises(ValueError, match="unknown optimizer"):
        _tiny(optimizer="lbfgs2").fit(X, y)
    with pytest.raises(ValueError, match="lr_schedule"):
        _tiny(lr_schedule="linear").fit(X, y)


def test_adam_is_fused_on_cpu_unless_the_user_chooses(cohort):
    X, y = cohort
    for optimizer in ("adam", "adamw"):
        clf = _tiny(mask_col="mask", optimizer=optimizer, max_epochs=1).fit(X, y)
        assert clf.net_.optimizer_.param_groups[0]["fused"] is True
    # the user's choice wins, and foreach alone does not collide with the fused default
    plain = _tiny(mask_col="mask", max_epochs=1, optimizer__fused=False).fit(X, y)
    assert not plain.net_.optimizer_.param_groups[0]["fused"]
    looped = _tiny(mask_col="mask", max_epochs=1, optimizer__foreach=True).fit(X, y)
    group = looped.net_.optimizer_.param_groups[0]
    assert group["foreach"] is True and not group["fused"]
    sgd = _tiny(mask_col="mask", optimizer="sgd", max_epochs=1).fit(X, y)
    assert not sgd.net_.optimizer_.param_groups[0].get("fused")


def test_valid_split_and_early_stopping(cohort):
    X, y = cohort
    clf = _tiny(
        mask_col="mask",
        max_epochs=5,
        valid_split=0.25,
        early_stopping={"monitor": "epoch", "patience": 1},  # "epoch" never decreases
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # stopping early is not an interruption
        clf.fit(X, y)
    assert len(clf.history_) == 2
    batches = clf.history_[-1, "batches"]
    assert sum(b.get("train_batch_size", 0) for b in batches) == 12
    assert sum(b.get("valid_batch_size", 0) for b in batches) == 4
    assert np.isfinite(clf.history_[-1, "valid_loss"])


def test_verbose_zero_is_silent_and_verbose_shows_the_epoch_table(cohort, capsys):
    X, y = cohort
    _tiny(mask_col="mask").fit(X, y)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    _tiny(mask_col="mask", verbose=1).fit(X, y)
    captured = capsys.readouterr()
    assert "train_loss" in captured.out and "train_auc" in captured.out


# ------------------------------------------------------------------------ preprocessing


def test_in_chans_auto_and_channel_conversion(cohort):
    X, y = cohort
    gray = _tiny().fit(X, y)
    assert gray.in_chans_ == 1
    assert _tiny(in_chans=3).fit(X, y).prepare_images(X).shape[1] == 3
    rgb = pd.DataFrame({"image": _images(8, size=32, rgb=True) + _images(8, size=32)})
    assert _tiny().fit(rgb, y).in_chans_ == 3  # any RGB image makes the network RGB
    forced = _tiny(in_chans=1).fit(rgb, y)
    assert forced.prepare_images(rgb).shape == (16, 1, 16, 16)


def test_normalisation_and_crops(cohort):
    X, y = cohort
    z = _tiny(mask_col="mask", normalize="zscore").fit(X, y).prepare_images(X)
    flat = z.reshape(len(X), -1)
    np.testing.assert_allclose(flat.mean(1).numpy(), 0.0, atol=1e-5)
    np.testing.assert_allclose(flat.std(1, unbiased=False).numpy(), 1.0, atol=1e-4)
    h = _tiny(mask_col="mask", normalize="histeq+zscore").fit(X, y).prepare_images(X)
    assert not torch.allclose(h, z)
    np.testing.assert_allclose(h.reshape(len(X), -1).mean(1).numpy(), 0.0, atol=1e-5)
    # imagenet on one channel uses the mean of the three channel statistics
    img = pd.DataFrame({"image": [np.full((20, 20), 255.0 * 0.449, dtype=np.float32)] * 2})
    zero = _tiny().fit(img, [0, 1]).prepare_images(img)
    np.testing.assert_allclose(zero.numpy(), 0.0, atol=1e-5)
    # crop="mask": pixels outside the lesion are 0 before normalisation
    image = np.full((20, 20), 200.0, dtype=np.float32)
    mask = np.zeros((20, 20), dtype=np.uint8)
    mask[5:15, 5:15] = 1
    mask[5:10, 5:10] = 0  # the bounding box is 10x10, a quarter of it outside the mask
    one = pd.DataFrame({"image": [image, image], "mask": [mask, mask]})
    masked = _tiny(mask_col="mask", crop="mask", input_size=10).fit(one, [0, 1])
    prepared = masked.prepare_images(one)[0, 0]
    background = (0.0 - 0.449) / 0.226
    np.testing.assert_allclose(prepared[:5, :5].numpy(), background, atol=1e-4)
    np.testing.assert_allclose(prepared[5:, 5:].numpy(), (200 / 255 - 0.449) / 0.226, atol=1e-4)
    bbox = _tiny(mask_col="mask", crop="mask_bbox", input_size=10).fit(one, [0, 1])
    np.testing.assert_allclose(
        bbox.prepare_images(one)[0, 0].numpy(), (200 / 255 - 0.449) / 0.226, atol=1e-4
    )


def test_lazy_loading_gives_the_same_model_as_preloading(cohort):
    X, y = cohort
    eager = _tiny(mask_col="mask").fit(X, y)
    lazy = _tiny(mask_col="mask", preload=False).fit(X, y)
    np.testing.assert_allclose(eager.predict_proba(X), lazy.predict_proba(X), rtol=1e-5)


# ------------------------------------------------------------------------- augmentation


def test_default_augmentation_crops_and_flips_per_image():
    batch = torch.rand(6, 2, 12, 12)
    torch.manual_seed(0)
    out = RandomResizedCropFlip()(batch)
    assert out.shape == batch.shape
    assert not torch.allclose(out, batch)
    flip = RandomResizedCropFlip(scale=(1.0, 1.0), ratio=(1.0, 1.0), p_hflip=1.0)(batch)
    torch.testing.assert_close(flip, batch.flip(-1), atol=1e-5, rtol=0)
    same = RandomResizedCropFlip(scale=(1.0, 1.0), ratio=(1.0, 1.0), p_hflip=0.0)(batch)
    torch.testing.assert_close(same, batch, atol=1e-5, rtol=0)


class _CountingAugment:
    def __init__(self):
        self.shapes = []

    def __call__(self, image):
        self.shapes.append(tuple(image.shape))
        return image.flip(-1)


def test_augmentation_is_applied_to_training_images_only(cohort):
    X, y = cohort
    augment = _CountingAugment()
    clf = _tiny(mask_col="mask", augment=augment, max_epochs=2, valid_split=0.25)
    clf.fit(X, y)
    assert augment.shapes == [(1, 16, 16)] * 24  # 12 training images per epoch, one by one
    clf.predict_proba(X)
    assert len(augment.shapes) == 24


# ------------------------------------------------------------------- checkpoint / resume


class _InterruptAfter(Callback):
    def __init__(self, epochs):
        self.epochs = epochs

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epochs:
            raise KeyboardInterrupt  # what Ctrl-C does in the middle of a fit


def test_checkpoint_and_resume(cohort, tmp_path):
    X, y = cohort
    params = {"mask_col": "mask", "max_epochs": 3, "checkpoint_dir": tmp_path}
    with pytest.warns(UserWarning, match="interrupted after 2 of 3 epochs"):
        first = _tiny(**params, callbacks=[("stop", _InterruptAfter(2))]).fit(X, y)
    run = first.checkpoint_path_
    assert os.path.dirname(run) == os.fspath(tmp_path)
    assert {"params.pt", "optimizer.pt", "history.json"} <= set(os.listdir(run))
    assert not os.path.exists(os.path.join(run, "finished.json"))

    resumed = _tiny(**params).fit(X, y)
    assert resumed.checkpoint_path_ == run
    assert len(resumed.history_) == 3
    assert resumed.history_[:2, "train_loss"] == first.history_[:, "train_loss"]
    assert json.loads(open(os.path.join(run, "finished.json")).read())["epochs"] == 3

    again = _tiny(**params).fit(X, y)  # finished: loaded, not retrained
    assert again.history_[:, "dur"] == resumed.history_[:, "dur"]
    np.testing.assert_array_equal(again.predict_proba(X), resumed.predict_proba(X))

    more = _tiny(**{**params, "max_epochs": 4}).fit(X, y)  # continue a finished run
    assert len(more.history_) == 4
    assert more.history_[:3, "train_loss"] == resumed.history_[:, "train_loss"]

    other = _tiny(**params, lr=0.5).fit(X, y)  # other settings: another run folder
    assert other.checkpoint_path_ != run and len(other.history_) == 3


# ---------------------------------------------------------------------------- pickling


_LOAD_SCRIPT = textwrap.dedent(
    """
    import sys, warnings
    import joblib, numpy as np, torch
    assert not torch.cuda.is_available()
    X = joblib.load(sys.argv[1])
    for name in sys.argv[2:]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = joblib.load(name + ".joblib")
        clf = model.steps[-1][1] if hasattr(model, "steps") else model
        assert clf.device_ == "cpu", clf.device_
        assert all(p.device.type == "cpu" for p in clf.module_.parameters())
        np.save(name + ".npy", model.predict_proba(X))
        print(name, sorted({type(w.message).__name__ for w in caught}))
    """
)


def test_pickles_load_and_predict_identically_in_a_fresh_cpu_only_process(
    cohort, tmp_path, monkeypatch
):
    X, y = cohort
    plain = ImageClassifier(
        mask_col="mask",
        backbone="resnet18",
        input_size=32,
        max_epochs=1,
        batch_size=8,
        random_state=0,
        device="cpu",
        lr_schedule="step",
        class_weight="balanced",
    ).fit(X, y)
    pipe = Pipeline([("dl", _tiny(mask_col="mask", backbone="squeezenet1_1", input_size=32))])
    pipe.fit(X, y)
    expected = {"plain": plain.predict_proba(X), "pipe": pipe.predict_proba(X)}
    expected["cuda"] = expected["plain"]
    joblib.dump(X, tmp_path / "X.joblib")
    joblib.dump(plain, tmp_path / "plain.joblib")
    joblib.dump(pipe, tmp_path / "pipe.joblib")
    # the same model as if trained on CUDA: every tensor storage is written as one on cuda:0
    plain.net_.device, plain.device_ = "cuda", "cuda"
    plain.net_.amp, plain.net_.channels_last = "bf16", True
    monkeypatch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
    joblib.dump(plain, tmp_path / "cuda.joblib")
    monkeypatch.undo()

    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    names = [os.fspath(tmp_path / n) for n in ("plain", "pipe", "cuda")]
    result = subprocess.run(
        [sys.executable, "-c", _LOAD_SCRIPT, os.fspath(tmp_path / "X.joblib"), *names],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "cuda ['DeviceWarning']" in result.stdout  # skorch mapped the CUDA tensors to CPU
    for name, proba in expected.items():
        np.testing.assert_allclose(np.load(tmp_path / f"{name}.npy"), proba, rtol=1e-6, atol=1e-9)


def test_unpickled_model_re_resolves_its_device(fitted):
    clone_ = joblib.load(_dump(fitted))
    assert clone_.device_ == "cpu"
    assert next(clone_.module_.parameters()).device.type == "cpu"
    assert clone_.net_.grad_scaler_ is None


def _dump(obj):
    import io

    buffer = io.BytesIO()
    joblib.dump(obj, buffer)
    buffer.seek(0)
    return buffer


# ------------------------------------------------------------------------------ errors


def test_clear_errors(cohort):
    X, y = cohort
    with pytest.raises(CohortInputError, match="column 'img'.*not found"):
        _tiny(image_col="img").fit(X, y)
    with pytest.raises(CohortInputError, match="column 'roi'"):
        _tiny(mask_col="roi").fit(X, y)
    with pytest.raises(TypeError, match="DataFrame"):
        _tiny().fit(np.zeros((16, 32, 32)), y)
    wrong_grid = X.copy()
    wrong_grid.at[3, "mask"] = np.ones((20, 20), dtype=np.uint8)
    with pytest.raises(ValueError, match=r"row 'P0004', column 'mask'.*\(20, 20\)"):
        _tiny(mask_col="mask").fit(wrong_grid, y)
    with pytest.raises(ValueError, match="single class"):
        _tiny().fit(X, np.ones(16))
    nan = X.copy()
    image = nan.at[5, "image"].copy()
    image[0, 0] = np.nan
    nan.at[5, "image"] = image
    with pytest.raises(ValueError, match=r"row 'P0006', column 'image'.*NaN"):
        _tiny().fit(nan, y)
    with pytest.raises(ValueError, match="unknown backbone 'resnet19'.*resnet18"):
        _tiny(backbone="resnet19").fit(X, y)
    with pytest.raises(ValueError, match="normalize"):
        _tiny(normalize="minmax").fit(X, y)
    with pytest.raises(ValueError, match="at least 32x32"):
        _tiny(backbone="resnet18", input_size=16).fit(X, y)
    with pytest.raises(ValueError, match="at least 75x75"):
        _tiny(backbone="inception_v3", input_size=64).fit(X, y)
    with pytest.raises(ValueError, match="input size"):
        _tiny(input_size=(16, 16, 3)).fit(X, y)
    with pytest.raises(ValueError, match="X has 16 rows but y has 3"):
        _tiny().fit(X, y[:3])
    with pytest.raises(ValueError, match="valid_split"):
        _tiny(valid_split=1.5).fit(X, y)
    with pytest.raises(ValueError, match="amp"):
        _tiny(amp="int8").fit(X, y)


def test_named_weights_missing_offline_raise_before_reading_images(cohort, tmp_path):
    X, y = cohort
    hub = torch.hub.get_dir()
    torch.hub.set_dir(os.fspath(tmp_path))
    try:
        with pytest.raises(WeightsNotAvailableError, match="resnet18-f37072fd.pth"):
            _tiny(backbone="resnet18", weights="DEFAULT", input_size=32).fit(X, y)
    finally:
        torch.hub.set_dir(hub)


def test_checkpoint_path_weights_are_loaded(cohort, tmp_path):
    X, y = cohort
    path = tmp_path / "pretrained.pt"
    torch.save(Backbone(TINY, seed=5).state_dict(), path)
    clf = _tiny(weights=os.fspath(path)).fit(X, y)
    assert clf.module_.weights_source == os.fspath(path)


def test_tags(fitted):
    tags = fitted.__sklearn_tags__()
    assert tags.input_tags.two_d_array is False
    assert tags.estimator_type == "classifier"
    assert tags.non_deterministic is False
    assert ImageClassifier().__sklearn_tags__().non_deterministic is True


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("amp", ["auto", "fp16", False])
def test_cuda_training_with_amp_and_channels_last(cohort, amp):
    X, y = cohort
    clf = _tiny(mask_col="mask", backbone="resnet18", input_size=32, device="cuda", amp=amp)
    clf.fit(X, y)
    assert clf.device_.startswith("cuda")
    expected = {"auto": "bf16" if torch.cuda.is_bf16_supported() else "fp16", "fp16": "fp16"}
    assert clf.net_.amp == expected.get(amp)
    weight = clf.module_.net.layer1[0].conv1.weight
    assert weight.is_cuda and weight.is_contiguous(memory_format=torch.channels_last)
    assert (clf.net_.grad_scaler_ is not None) == (clf.net_.amp == "fp16")
    assert np.isfinite(clf.history_[-1, "train_loss"])
    proba = clf.predict_proba(X)
    assert proba.shape == (16, 2) and np.all(np.isfinite(proba))
    np.testing.assert_allclose(proba, clf.predict_proba(X), atol=1e-4)
    assert torch.backends.cudnn.benchmark is False  # restored after fit and predict


def test_weights_only_export_predicts_like_the_fitted_model_without_pickle(cohort, tmp_path):
    X, y = cohort
    labels = np.where(y == 1, "N+", "N0")
    model = _tiny(mask_col="mask", max_epochs=2, pos_label="N+", class_weight="balanced")
    model.fit(X, labels)
    folder = model.save_weights(tmp_path / "export")
    assert sorted(p.name for p in folder.iterdir()) == ["estimator.json", "weights.pt"]
    # the weights file holds tensors only: torch's weights_only loader accepts it
    state = torch.load(folder / "weights.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    loaded = ImageClassifier.load_weights(folder, device="cpu")
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X), rtol=1e-6)
    assert loaded.classes_.tolist() == ["N+", "N0"] and loaded.pos_label_ == "N+"
    assert loaded.get_params()["backbone"] == TINY
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    with pytest.raises(TypeError, match="cannot be written as JSON"):
        _tiny(augment=lambda x: x).fit(X, y).save_weights(tmp_path / "callable")
    with pytest.raises(ValueError, match="holds no export"):
        ImageClassifier.load_weights(tmp_path / "nowhere")


# ----------------------------------------------------------------------------- the core


def test_accelerated_net_moves_tensors_inside_dicts_lists_and_tuples():
    from collections import namedtuple

    from sklearn_alnm.inputs import ImageBatch
    from sklearn_alnm.models import AcceleratedNet

    net = AcceleratedNet(nn.Linear(2, 2), criterion=nn.MSELoss, device="meta")
    Pair = namedtuple("Pair", "image pathology")
    batch = {
        "us": torch.zeros(2, 3, 4, 4),
        "bag": [torch.zeros(3, 8), torch.zeros(1, 8)],
        "pair": Pair(torch.zeros(1), torch.zeros(2)),
        "images": ImageBatch([torch.zeros(1, 5, 5), torch.zeros(1, 6, 4)]),
        "plain": (torch.zeros(1), "kept", 3),
    }
    moved = net._to_device(batch)
    assert moved["us"].device.type == "meta"
    assert [t.device.type for t in moved["bag"]] == ["meta", "meta"]
    assert type(moved["pair"]) is Pair and moved["pair"].pathology.device.type == "meta"
    assert [t.shape for t in moved["images"]] == [(1, 5, 5), (1, 6, 4)]
    assert all(t.device.type == "meta" for t in moved["images"])
    assert moved["plain"][0].device.type == "meta" and moved["plain"][1:] == ("kept", 3)
    assert batch["us"].device.type == "cpu"  # the batch itself is left alone
    # on CUDA, 4-D tensors take the channels-last format wherever they sit in the batch
    cuda_like = AcceleratedNet(nn.Linear(2, 2), criterion=nn.MSELoss, device="meta")
    cuda_like.channels_last = True
    cuda_like._on_cuda = lambda: True
    moved = cuda_like._to_device(batch)
    assert moved["us"].is_contiguous(memory_format=torch.channels_last)
    assert moved["us"].stride() != batch["us"].stride()
    assert moved["bag"][0].shape == (3, 8)  # other ranks unchanged


class _VectorInput(BaseInput):
    """A toy input kind (one feature vector per row, from numeric columns): all a new kind
    writes on the contract of sklearn_alnm.inputs."""

    def __init__(self, columns):
        self._columns = list(columns)

    @property
    def columns(self):
        return self._columns

    def dataset(self, X, target=None, *, n_jobs=None, verbose=0):
        values = np.array(X[self._columns], dtype=np.float32)
        return TensorInputDataset(torch.from_numpy(values), target)


class _MLP(nn.Module):
    def __init__(self, in_features, num_classes, hidden=8):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)
        )

    def forward(self, x):
        return self.net(x)


class _VectorClassifier(BaseNeuralClassifier):
    """A thin classifier on the core: its parameters, its input and its module; nothing else."""

    _parameter_constraints = {
        **BaseNeuralClassifier._parameter_constraints,
        "columns": [list],
        "hidden": [int],
    }

    def __init__(
        self,
        columns=None,
        *,
        hidden=8,
        optimizer="adam",
        lr=0.05,
        lr_schedule=None,
        max_epochs=20,
        batch_size=16,
        class_weight=None,
        pos_label=None,
        early_stopping=None,
        valid_split=None,
        checkpoint_dir=None,
        n_jobs=None,
        device="cpu",
        amp="auto",
        random_state=None,
        verbose=0,
        **skorch_kwargs,
    ):
        self._store_parameters(locals())

    def fit(self, X, y, sample_weight=None):
        return self._fit(X, y, sample_weight)

    def _make_input(self, state):
        return _VectorInput(self.columns)

    def _module_kwargs(self, input, state):
        return {
            "module": _MLP,
            "module__in_features": len(input.columns),
            "module__hidden": self.hidden,
            **self._classifier_kwargs(
                len(state.classes), state.class_weight, state.custom_criterion
            ),
        }


def test_a_new_input_kind_is_an_input_a_module_and_a_thin_estimator(tmp_path):
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=80), "b": rng.normal(size=80)})
    y = np.where(X["a"] + 0.5 * X["b"] > 0, "N+", "N0")
    with pytest.raises(ValueError, match="pos_label"):
        _VectorClassifier(columns=["a", "b"], random_state=0).fit(X, y)
    clf = _VectorClassifier(columns=["a", "b"], pos_label="N+", class_weight="balanced")
    clf.set_params(random_state=0).fit(X, y, sample_weight=np.ones(80))
    assert clf.pos_label_ == "N+" and list(clf.classes_) == ["N+", "N0"]
    proba = clf.predict_proba(X)[:, list(clf.classes_).index("N+")]
    assert roc_auc_score(y == "N+", proba) > 0.9
    assert np.isfinite(clf.history_[-1, "train_auc"])
    search = GridSearchCV(clone(clf), {"lr": [0.01, 0.05]}, cv=2).fit(X, y)
    assert search.best_estimator_.lr in (0.01, 0.05)
    joblib.dump(clf, tmp_path / "toy.joblib")
    np.testing.assert_allclose(
        joblib.load(tmp_path / "toy.joblib").predict_proba(X), clf.predict_proba(X)
    )
