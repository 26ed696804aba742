"""MultimodalFusionClassifier: the five fusions, the two stages, missing modalities, contracts."""

import html
import subprocess
import sys
import textwrap

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV
from skorch.callbacks import Callback

from sklearn_alnm.datasets import make_alnm_cohort
from sklearn_alnm.explain import grad_cam
from sklearn_alnm.inputs import ImageInput, MultimodalBatch, MultimodalInput
from sklearn_alnm.models import ImageClassifier, MultimodalFusionClassifier
from sklearn_alnm.nn import MultimodalNet

FUSIONS = ("concat", "weighted", "attention", "voting", "multilayer")
_BRANCH = dict(input_size=32, max_epochs=8, batch_size=16, lr=1e-3, augment=None)


def split_signal_cohort(n, seed, size=32):
    """Two images per patient, each carrying one of two independent cues of the label.

    The ultrasound-like image holds a bright square whose side follows ``a``, the H&E-like
    RGB tile a purple disc whose radius follows ``b``; the label is ``a + b > 0`` as "N+" /
    "N0", so each modality alone is informative and only both together are near perfect.
    """
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n), rng.normal(size=n)
    yy, xx = np.mgrid[:size, :size]
    us, path = [], []
    for i in range(n):
        image = rng.integers(20, 60, (size, size)).astype(np.uint8)
        side = int(np.clip(round(12 + 5 * a[i]), 3, size - 6))
        o = (size - side) // 2
        image[o : o + side, o : o + side] = 200
        us.append(image)
        tile = np.full((size, size, 3), (230, 190, 210), np.uint8)
        radius = np.clip(7 + 3 * b[i], 1.5, size / 2 - 2)
        tile[(yy - size / 2) ** 2 + (xx - size / 2) ** 2 <= radius**2] = (90, 40, 140)
        path.append(tile)
    X = pd.DataFrame({"patient_id": [f"S{seed}-{i:03d}" for i in range(n)], "us": us, "path": path})
    return X, np.where(a + b > 0, "N+", "N0")


def _auc(model, X, y):
    return roc_auc_score(y == "N+", model.predict_proba(X)[:, list(model.classes_).index("N+")])


def _branches(**kwargs):
    return [
        ("us", ImageClassifier("us", backbone="plnet", normalize="zscore", **_BRANCH, **kwargs)),
        ("path", ImageClassifier("path", backbone="plnet", normalize="half", **_BRANCH, **kwargs)),
    ]


@pytest.fixture(scope="module")
def split_data():
    return split_signal_cohort(120, 0), split_signal_cohort(100, 1)


@pytest.fixture(scope="module")
def fitted_branches(split_data):
    (X, y), _ = split_data
    return [
        (name, est.set_params(random_state=k).fit(X, y))
        for k, (name, est) in enumerate(_branches(pos_label="N+"))
    ]


def _fusion(branches, fusion, **kwargs):
    params = dict(
        branch_init="prefit",
        fusion=fusion,
        max_epochs=6,
        lr=3e-3,
        batch_size=16,
        random_state=0,
        pos_label="N+",
    )
    return MultimodalFusionClassifier(branches, **{**params, **kwargs})


# ------------------------------------------------------------------------------- learning


@pytest.mark.parametrize("fusion", FUSIONS)
def test_every_fusion_beats_each_modality_alone_when_the_signal_is_split(
    fusion, split_data, fitted_branches
):
    (X, y), (X_test, y_test) = split_data
    alone = {name: _auc(est, X_test, y_test) for name, est in fitted_branches}
    assert 0.6 < alone["us"] < 0.93 and 0.6 < alone["path"] < 0.95, alone
    model = _fusion(fitted_branches, fusion).fit(X, y)
    fused = _auc(model, X_test, y_test)
    assert fused > max(alone.values()) + 0.03, (fusion, fused, alone)
    assert list(model.classes_) == ["N+", "N0"] and model.pos_label_ == "N+"
    assert len(model.history_) == (0 if fusion == "voting" else 6)


def test_voting_is_the_mean_of_the_branches_own_probabilities(split_data, fitted_branches):
    _, (X_test, _) = split_data
    model = _fusion(fitted_branches, "voting").fit(*split_data[0])
    mean = np.mean([est.predict_proba(X_test) for _, est in fitted_branches], axis=0)
    np.testing.assert_allclose(model.predict_proba(X_test), mean, rtol=1e-5, atol=1e-6)
    assert model.fusion_weights_.tolist() == [0.5, 0.5]


def test_fitted_branches_initialise_the_fused_network_and_stay_frozen(split_data, fitted_branches):
    (X, y), (X_test, _) = split_data
    model = _fusion(fitted_branches, "multilayer", freeze_branches=True).fit(X, y)
    batch = model.prepare_inputs(X_test)
    with torch.no_grad():
        for name, est in fitted_branches:
            own = est.module_.eval().forward_features(est.prepare_images(X_test))
            fused = model.module_.eval().branches[name].forward_features(batch.images[name])
            torch.testing.assert_close(fused, own, rtol=1e-5, atol=1e-5)
    # the frozen branches' parameters are exactly the fitted ones; the head did train
    for name, est in fitted_branches:
        for key, value in est.module_.state_dict().items():
            torch.testing.assert_close(model.module_.branches[name].state_dict()[key], value)
    assert all(p.requires_grad for p in model.module_.parameters())  # unfrozen after fit


def _branch_changed(model, branches, name):
    fitted = dict(branches)[name].module_.state_dict()
    own = model.module_.branches[name].state_dict()
    return any(not torch.equal(own[k], v) for k, v in fitted.items() if v.is_floating_point())


@pytest.mark.parametrize(
    ("freeze", "epochs", "changed"), [(False, 1, True), (1, 1, False), (1, 2, True)]
)
def test_freeze_branches_trains_the_head_alone_for_n_epochs(
    freeze, epochs, changed, split_data, fitted_branches
):
    (X, y), _ = split_data
    model = _fusion(fitted_branches, "concat", freeze_branches=freeze, max_epochs=epochs).fit(X, y)
    assert _branch_changed(model, fitted_branches, "us") is changed
    assert _branch_changed(model, fitted_branches, "path") is changed


def test_each_branch_keeps_its_learning_rate_as_an_optimizer_group(split_data):
    (X, y), _ = split_data
    branches = [
        ("us", ImageClassifier("us", backbone="plnet", **{**_BRANCH, "lr": 2e-3, "max_epochs": 1})),
        (
            "path",
            ImageClassifier("path", backbone="plnet", **{**_BRANCH, "lr": 5e-4, "max_epochs": 1}),
        ),
    ]
    model = MultimodalFusionClassifier(
        branches,
        fusion="concat",
        freeze_branches=False,
        lr=1e-2,
        max_epochs=1,
        random_state=0,
        pos_label="N+",
    ).fit(X, y)
    groups = model.net_.optimizer_.param_groups
    assert [g["lr"] for g in groups] == [2e-3, 5e-4, 1e-2]
    names = {id(p): n for n, p in model.module_.named_parameters()}
    assert all(names[id(p)].startswith("branches.us.") for p in groups[0]["params"])
    assert all(names[id(p)].startswith("branches.path.") for p in groups[1]["params"])
    assert not any(names[id(p)].startswith("branches.") for p in groups[2]["params"])
    # stage 1 fitted clones (the given branches stay unfitted), each on its own column
    assert not hasattr(branches[0][1], "net_")
    assert model.named_branches_.us.in_chans_ == 1 and model.named_branches_.path.in_chans_ == 3


# -------------------------------------------------------------------------- composition


def test_nested_parameters_round_trip_through_clone_and_grid_search(split_data):
    (X, y), _ = split_data
    model = MultimodalFusionClassifier(
        _branches(), fusion="concat", max_epochs=1, random_state=0, pos_label="N+"
    )
    params = model.get_params()
    assert params["us__lr"] == 1e-3 and params["path__backbone"] == "plnet"
    model.set_params(us__lr=5e-3, path__normalize="zscore+histeq")
    twin = clone(model)
    assert twin.get_params()["us__lr"] == 5e-3
    assert twin.get_params()["path__normalize"] == "zscore+histeq"
    assert twin.named_branches.us is not model.named_branches.us
    small = X.iloc[:40]
    search = GridSearchCV(
        model.set_params(us__max_epochs=1, path__max_epochs=1),
        {"us__lr": [1e-3, 1e-2], "fusion": ["concat", "voting"]},
        cv=2,
        scoring="accuracy",
    ).fit(small, y[:40])
    assert len(search.cv_results_["params"]) == 4
    assert search.best_estimator_.named_branches_.us.lr in (1e-3, 1e-2)


def test_more_than_two_branches(split_data):
    (X, y), _ = split_data
    X3 = X.assign(us2=[np.fliplr(im).copy() for im in X["us"]])
    branches = _branches() + [
        (
            "flip",
            ImageClassifier(
                "us2", backbone="plnet", normalize="zscore", **{**_BRANCH, "max_epochs": 1}
            ),
        )
    ]
    for _, est in branches:
        est.set_params(max_epochs=1)
    model = MultimodalFusionClassifier(
        branches, fusion="attention", max_epochs=1, random_state=0, pos_label="N+"
    ).fit(X3, y)
    weights = model.modality_weights(X3.iloc[:5])
    assert list(weights.columns) == ["us", "path", "flip"]
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-6)
    assert model.fusion_weights_.index.tolist() == ["us", "path", "flip"]


# ----------------------------------------------------------------------- missing modality


def _with_missing_path(X, fraction, seed=0):
    X = X.copy()
    rows = np.random.default_rng(seed).choice(len(X), int(round(fraction * len(X))), False)
    column = X["path"].astype(object)
    for i in rows:
        column.iat[i] = np.nan if i % 2 else None
    X["path"] = column
    return X, np.sort(rows)


def test_missing_modality_is_an_error_naming_the_patient_unless_dropped(split_data):
    (X, y), _ = split_data
    X_missing, rows = _with_missing_path(X, 0.3)
    model = MultimodalFusionClassifier(
        _branches(), fusion="concat", max_epochs=1, random_state=0, pos_label="N+"
    )
    first = X_missing["patient_id"].iloc[rows[0]]
    with pytest.raises(ValueError, match=rf"{first}.*'path'.*36 rows lack.*drop_branch"):
        model.fit(X_missing, y)


@pytest.mark.parametrize("fusion", ["multilayer", "attention", "voting"])
def test_missing_modality_at_fit_and_predict(fusion, split_data):
    (X, y), (X_test, y_test) = split_data
    X_missing, rows = _with_missing_path(X, 0.3)
    branches = _branches()
    model = MultimodalFusionClassifier(
        branches,
        fusion=fusion,
        missing="drop_branch",
        max_epochs=6,
        lr=3e-3,
        random_state=0,
        pos_label="N+",
    ).fit(X_missing, y)
    assert model.module_.modality_dropout == 0.2
    # stage 1: the pathology branch was trained on the 84 patients with a tile
    batches = model.named_branches_.path.history_[0]["batches"]
    assert sum(b["train_batch_size"] for b in batches) == len(X) - len(rows) == 84
    # predictions: complete patients, patients without the tile, every patient absent
    complete = model.predict_proba(X_test)
    test_missing, missing_rows = _with_missing_path(X_test, 0.5, seed=1)
    partial = model.predict_proba(test_missing)
    assert np.all(np.isfinite(partial)) and np.allclose(partial.sum(axis=1), 1)
    kept = np.setdiff1d(np.arange(len(X_test)), missing_rows)
    np.testing.assert_allclose(partial[kept], complete[kept], rtol=1e-5, atol=1e-6)
    assert not np.allclose(partial[missing_rows], complete[missing_rows])
    # without the tile the fused model still ranks by the ultrasound cue
    us_only = _auc(model, test_missing.iloc[missing_rows], y_test[missing_rows])
    assert us_only > 0.6, us_only
    if fusion != "multilayer":
        weights = model.modality_weights(test_missing)
        np.testing.assert_allclose(weights["path"].to_numpy()[missing_rows], 0.0)
        np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-6)
    nobody = test_missing.assign(us=None)
    with pytest.raises(ValueError, match="no image of any modality"):
        model.predict_proba(nobody.iloc[missing_rows])


def test_modality_dropout_keeps_one_modality_per_patient():
    net = MultimodalNet(
        {"a": {"name": "plnet", "in_chans": 1}, "b": {"name": "plnet", "in_chans": 1}},
        modality_dropout=0.9,
        seed=0,
    )
    present = torch.tensor([[True, True]] * 500 + [[True, False]] * 100)
    torch.manual_seed(0)
    dropped = net._drop_modalities(present)
    assert bool(dropped.any(dim=1).all())
    assert not bool((dropped & ~present).any())  # never brings back an absent modality
    assert 0.3 < dropped[:500, 0].float().mean() < 0.7  # both modalities get hidden


# ---------------------------------------------------------------------- errors, pickles


def test_clear_errors_for_bad_branches(split_data):
    (X, y), _ = split_data
    one = ImageClassifier("us", backbone="plnet", **_BRANCH)
    cases = [
        (
            [("us", one), ("logit", LogisticRegression())],
            TypeError,
            "'logit' is a LogisticRegression, not an image estimator",
        ),
        (
            [("us", one), ("us", clone(one).set_params(image_col="path"))],
            ValueError,
            r"unique; \['us'\]",
        ),
        ([("us", one)], ValueError, "at least two branches"),
        ([("us", one), ("path", ImageClassifier)], TypeError, "pass an instance"),
        (
            [("us", one), ("module", clone(one).set_params(image_col="path"))],
            ValueError,
            "skorch prefix",
        ),
        (
            [("us", one), ("fusion", clone(one).set_params(image_col="path"))],
            ValueError,
            "conflict with constructor arguments",
        ),
        ([("us", one), ("us2", clone(one))], ValueError, "its own image column"),
    ]
    for branches, error, message in cases:
        with pytest.raises(error, match=message):
            MultimodalFusionClassifier(branches, max_epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="'path'"):  # a branch column that is missing
        MultimodalFusionClassifier(_branches(), max_epochs=1, pos_label="N+").fit(
            X.drop(columns="path"), y
        )
    with pytest.raises(ValueError, match="not fitted"):
        MultimodalFusionClassifier(_branches(), branch_init="prefit").fit(X, y)
    with pytest.raises(ValueError, match="pos_label"):  # string labels: the event is named
        MultimodalFusionClassifier(_branches(), max_epochs=1).fit(X, y)


class _InterruptAfter(Callback):
    def __init__(self, epochs):
        self.epochs = epochs

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epochs:
            raise KeyboardInterrupt


def test_sample_weight_reaches_the_fusion_loss_and_the_branches(split_data, fitted_branches):
    (X, y), (X_test, _) = split_data
    n = len(y)
    plain = _fusion(fitted_branches, "concat", max_epochs=2).fit(X, y).predict_proba(X_test)
    scaled = _fusion(fitted_branches, "concat", max_epochs=2).fit(X, y, np.full(n, 2.0))
    np.testing.assert_allclose(scaled.predict_proba(X_test), plain, rtol=1e-5, atol=1e-6)
    weights = np.where(np.arange(n) < n // 2, 1.0, 0.05)
    reweighted = _fusion(fitted_branches, "concat", max_epochs=2).fit(X, y, weights)
    assert not np.allclose(reweighted.predict_proba(X_test), plain)
    # branch_init="fit": each branch is fitted with the weights of its patients
    small = dict(max_epochs=1, branch_init="fit")
    one = _fusion(_branches(), "concat", **small).fit(X, y, weights)
    two = _fusion(_branches(), "concat", **small).fit(X, y)
    assert not np.allclose(
        one.branches_[0][1].predict_proba(X_test), two.branches_[0][1].predict_proba(X_test)
    )
    with pytest.raises(ValueError, match="sample_weight"):
        _fusion(fitted_branches, "concat").fit(X, y, np.ones(3))


def test_checkpoint_and_resume_of_the_fusion_stage(split_data, fitted_branches, tmp_path):
    (X, y), (X_test, _) = split_data
    params = {"max_epochs": 3, "checkpoint_dir": tmp_path}
    with pytest.warns(UserWarning, match="interrupted after 2 of 3 epochs"):
        first = _fusion(
            fitted_branches, "multilayer", **params, callbacks=[("stop", _InterruptAfter(2))]
        ).fit(X, y)
    resumed = _fusion(fitted_branches, "multilayer", **params).fit(X, y)
    assert resumed.checkpoint_path_ == first.checkpoint_path_
    assert len(resumed.history_) == 3
    assert resumed.history_[:2, "train_loss"] == first.history_[:, "train_loss"]
    again = _fusion(fitted_branches, "multilayer", **params).fit(X, y)  # finished: loaded
    np.testing.assert_array_equal(again.predict_proba(X_test), resumed.predict_proba(X_test))


def test_pickle_predicts_the_same_in_a_fresh_process(tmp_path, split_data, fitted_branches):
    (X, y), (X_test, _) = split_data
    model = _fusion(fitted_branches, "attention", max_epochs=1).fit(X, y)
    path = tmp_path / "fused.joblib"
    joblib.dump(model, path)
    X_test.iloc[:8].to_pickle(tmp_path / "X.pkl")
    script = textwrap.dedent(
        f"""
        import joblib, numpy as np, pandas as pd
        model = joblib.load({str(path)!r})
        X = pd.read_pickle({str(tmp_path / "X.pkl")!r})
        np.save({str(tmp_path / "p.npy")!r}, model.predict_proba(X))
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300)
    np.testing.assert_allclose(
        np.load(tmp_path / "p.npy"), model.predict_proba(X_test.iloc[:8]), rtol=1e-6
    )
    assert model.net_.branch_init is None  # the branch states are not pickled twice


def test_grad_cam_of_each_branch_of_the_fused_model(split_data, fitted_branches):
    (X, y), (X_test, _) = split_data
    model = _fusion(fitted_branches, "multilayer", max_epochs=1).fit(X, y)
    heat = grad_cam(model, X_test.iloc[:4], branch="path")
    assert heat.shape == (4, 32, 32) and heat.min() >= 0 and heat.max() <= 1
    heat_us = grad_cam(model, X_test.iloc[:4], branch="us")
    assert heat_us.shape == (4, 32, 32)
    with pytest.raises(ValueError, match="branch="):
        grad_cam(model, X_test.iloc[:4])
    with pytest.raises(ValueError, match="unknown branch"):
        grad_cam(model, X_test.iloc[:4], branch="mri")
    with pytest.raises(ValueError, match="multimodal"):
        grad_cam(model.named_branches_.us, X_test.iloc[:4], branch="us")


# ------------------------------------------------------------------ input and synthetics


def test_multimodal_input_prepares_each_modality_its_own_way():
    X = pd.DataFrame(
        {
            "us": [np.arange(64, dtype=np.uint8).reshape(8, 8)] * 2,
            "path": [np.full((8, 8, 3), 255, np.uint8), None],
        }
    )
    inputs = {
        "us": ImageInput("us", input_size=(8, 8), normalize="zscore+histeq", in_chans=1),
        "path": ImageInput("path", input_size=(8, 8), normalize="half", in_chans=3),
    }
    batch = MultimodalInput(inputs, missing="drop_branch").prepare(X)
    assert isinstance(batch, MultimodalBatch)
    assert batch.present.tolist() == [[True, True], [True, False]]
    # histogram equalisation of 64 distinct levels: (rank + 1) / 64, z-score changes nothing
    np.testing.assert_allclose(
        batch.images["us"][0, 0].flatten().numpy(), (np.arange(64) + 1) / 64, rtol=1e-6
    )
    np.testing.assert_allclose(batch.images["path"][0].numpy(), 1.0)  # 255 -> 1 -> (1-.5)/.5
    np.testing.assert_allclose(batch.images["path"][1].numpy(), 0.0)  # absent: zeros
    with pytest.raises(ValueError, match="row 1.*'path'.*drop_branch"):
        MultimodalInput(inputs).prepare(X)


def test_synthetic_cohort_leaves_a_share_of_pathology_tiles_missing(tmp_path):
    full, y_full = make_alnm_cohort(40, modalities="pathology", image_size=16, random_state=3)
    X, y = make_alnm_cohort(
        40, modalities="pathology", image_size=16, missing_pathology=0.3, random_state=3
    )
    absent = X["pathology"].isna().to_numpy()
    assert absent.sum() == 12
    np.testing.assert_array_equal(y, y_full)
    for a, b in zip(X["pathology"][~absent], full["pathology"][~absent]):
        np.testing.assert_array_equal(a, b)
    files, _ = make_alnm_cohort(
        40,
        modalities="pathology",
        image_size=16,
        missing_pathology=0.3,
        random_state=3,
        data_home=tmp_path,
    )
    assert files["pathology"].isna().sum() == 12
    assert len(list((tmp_path / "pathology").iterdir())) == 28
    with pytest.raises(ValueError, match="missing_pathology"):
        make_alnm_cohort(4, modalities="pathology", missing_pathology=1.0)


class _Identity:
    """A batched augmentation that changes nothing (forces the image path of the fit)."""

    batched = True

    def __call__(self, batch):
        return batch


def test_frozen_unaugmented_branches_embed_each_image_once_with_the_same_result(
    split_data, fitted_branches
):
    (X, y), (X_test, _) = split_data
    model = _fusion(fitted_branches, "multilayer").fit(X, y)
    assert model._embeds_once(model.branches_)
    # the same fit through the images: a branch with a (no-op) augmentation
    augmented = [
        (name, clone(est).set_params(augment=_Identity())) for name, est in fitted_branches
    ]
    for (_, est), (_, twin) in zip(fitted_branches, augmented):
        twin.__dict__.update({k: v for k, v in vars(est).items() if k.endswith("_")})
    through_images = _fusion(augmented, "multilayer").fit(X, y)
    assert not through_images._embeds_once(through_images.branches_)
    np.testing.assert_allclose(
        model.predict_proba(X_test), through_images.predict_proba(X_test), rtol=1e-4, atol=1e-5
    )


def test_study_report_shows_both_images_of_a_patient_with_their_maps(
    tmp_path, split_data, fitted_branches
):
    from sklearn_alnm.report import StudyReport

    (X, y), (X_test, y_test) = split_data
    model = _fusion(fitted_branches, "attention", max_epochs=1, missing="drop_branch").fit(X, y)
    X_gap, missing_rows = _with_missing_path(X_test, 0.3, seed=2)
    report = StudyReport({"fused": model}, {"Test": (X_gap, y_test)}, pos_label="N+", gradcam=3)
    assert report.gradcam_models == ["fused"]
    rows = [0, int(missing_rows[0])]
    fig = report.plot_gradcam("fused", rows=rows)
    titles = [a.get_title() for a in fig.axes if a.get_title()]
    assert sum(t.startswith("us: ") for t in titles) == 2
    assert "path: absent" in titles
    # each panel names the patient (its id column), its true label and the model's call
    first = X_gap["patient_id"].iloc[0] if "patient_id" in X_gap else X_gap.index[0]
    assert any(t.startswith(f"path: {first}\ntrue ") for t in titles), titles
    assert len(fig.axes) == 2 * 4 + 1  # two patients x two branches x (image, map), colour bar
    report.to_html(tmp_path / "report")
    assert (tmp_path / "report" / "gradcam_fused.png").is_file()
    page = (tmp_path / "report" / "index.html").read_text()
    assert "Each modality's image" in html.unescape(page)
