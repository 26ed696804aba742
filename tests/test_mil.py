"""MILClassifier and the MIL network: padded bags, poolings, weights, kinds, errors, contracts."""

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV

from sklearn_alnm.datasets import make_alnm_cohort
from sklearn_alnm.inputs import BagInput, ImageInput
from sklearn_alnm.models import MILClassifier
from sklearn_alnm.nn import POOLINGS, MILNet
from sklearn_alnm.utils import CohortInputError


def key_instance_bags(n, seed, *, dim=8, kinds=False):
    """Bags of 1-6 noise vectors; a positive bag hides one 'key' instance among them.

    The key instance is shifted along the first feature, so the bag mean is diluted by the
    bag's length while attention (or max) can find it. With ``kinds``, the key instance is a
    "node" and the others "tumor"; negatives have "node" noise instances too, and about a
    third of the bags are tumour-only.
    """
    rng = np.random.default_rng(seed)
    y = np.tile(["N0", "N+"], n // 2)
    bags, kind_lists = [], []
    for label in y:
        length = int(rng.integers(1, 7))
        bag = rng.normal(size=(length, dim)).astype(np.float32)
        kind = ["tumor"] * length
        if label == "N+":
            k = int(rng.integers(length))
            bag[k, 0] += 4.0
            kind[k] = "node"
        elif length > 1 and rng.random() < 0.5:
            kind[-1] = "node"
        bags.append(bag)
        kind_lists.append(kind)
    X = pd.DataFrame({"patient_id": [f"B{seed}-{i:03d}" for i in range(n)], "tokens": bags})
    if kinds:
        X["kind"] = kind_lists
    return X, y


def _auc(model, X, y):
    return roc_auc_score(y == "N+", model.predict_proba(X)[:, list(model.classes_).index("N+")])


_SMALL = dict(
    dim=16, depth=1, heads=2, hidden=16, lr=1e-2, batch_size=16, pos_label="N+", random_state=0
)


# ------------------------------------------------------------------------------ the network


@pytest.mark.parametrize("pooling", POOLINGS)
def test_padding_never_leaks_into_a_bag_batched_with_longer_ones(pooling):
    torch.manual_seed(0)
    net = MILNet(5, dim=8, pooling=pooling, heads=2, hidden=8, n_kinds=2, seed=0).eval()
    lengths = [1, 2, 3, 4, 5, 6]
    bags = [torch.randn(n, 5) for n in lengths]
    kinds = [torch.randint(1, 3, (n,)) for n in lengths]
    width = max(lengths)
    padded = torch.full((len(bags), width, 5), 7.0)  # garbage in the padding
    mask = torch.zeros(len(bags), width, dtype=torch.bool)
    codes = torch.zeros(len(bags), width, dtype=torch.long)
    for i, (bag, kind) in enumerate(zip(bags, kinds)):
        padded[i, : len(bag)] = bag
        mask[i, : len(bag)] = True
        codes[i, : len(bag)] = kind
    with torch.no_grad():
        together, weights = net.forward_with_weights((padded, mask, codes))
        for i, (bag, kind) in enumerate(zip(bags, kinds)):
            alone, own = net.forward_with_weights((bag[None], None, kind[None]))
            torch.testing.assert_close(together[i], alone[0], rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(weights[i, : len(bag)], own[0], rtol=1e-5, atol=1e-5)
    # weights: a distribution over the real instances, zero on the padding
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(len(bags)), rtol=0, atol=1e-5)
    assert bool((weights[~mask] == 0).all()) and bool((weights >= 0).all())


def test_mean_and_max_weights_and_outputs_are_what_they_say():
    tokens = torch.tensor([[[1.0, 5.0], [3.0, 2.0], [9.0, 9.0]]])
    mask = torch.tensor([[True, True, False]])
    from sklearn_alnm.nn import MaxPooling, MeanPooling

    mean, uniform = MeanPooling()(tokens, mask)
    torch.testing.assert_close(mean, torch.tensor([[2.0, 3.5]]))
    torch.testing.assert_close(uniform, torch.tensor([[0.5, 0.5, 0.0]]))
    top, share = MaxPooling()(tokens, mask)
    torch.testing.assert_close(top, torch.tensor([[3.0, 5.0]]))  # the padding's 9s are ignored
    torch.testing.assert_close(share, torch.tensor([[0.5, 0.5, 0.0]]))


def test_network_errors():
    with pytest.raises(ValueError, match="in_features"):
        MILNet()
    with pytest.raises(ValueError, match="must divide"):
        MILNet(4, dim=10, heads=4)
    with pytest.raises(ValueError, match="pooling must be one of"):
        MILNet(4, pooling="median")
    net = MILNet(4, dim=8, pooling="mean")
    with pytest.raises(ValueError, match="at least one real instance"):
        net.forward_with_weights(
            (torch.zeros(2, 3, 4), torch.tensor([[True] * 3, [False] * 3]), None)
        )
    with pytest.raises(ValueError, match=r"feature bags must be \(B, N, 4\)"):
        net((torch.zeros(2, 3, 5), None, None))


# ---------------------------------------------------------------------------- the estimator


@pytest.fixture(scope="module")
def bags():
    return key_instance_bags(120, 0), key_instance_bags(80, 1)


@pytest.mark.parametrize("pooling", ["attention", "gated_attention", "transformer", "max"])
def test_poolings_that_can_find_the_key_instance_learn_it(pooling, bags):
    (X, y), (X_test, y_test) = bags
    model = MILClassifier(pooling=pooling, max_epochs=25, **_SMALL).fit(X, y)
    assert _auc(model, X_test, y_test) >= 0.9
    weights = model.attention_weights(X_test)
    assert [len(w) for w in weights] == [len(b) for b in X_test["tokens"]]
    np.testing.assert_allclose([w.sum() for w in weights], 1.0, atol=1e-5)
    if pooling != "max":  # the key instance of a positive bag gets the largest weight
        positives = [i for i in range(len(y_test)) if y_test[i] == "N+"]
        found = np.mean(
            [np.argmax(weights[i]) == np.argmax(X_test["tokens"].iloc[i][:, 0]) for i in positives]
        )
        assert found >= 0.8


def test_a_bag_is_predicted_the_same_alone_or_with_others(bags):
    (X, y), (X_test, _) = bags
    model = MILClassifier(pooling="transformer", max_epochs=2, **_SMALL).fit(X, y)
    together = model.predict_proba(X_test)
    alone = np.vstack([model.predict_proba(X_test.iloc[[i]]) for i in range(6)])
    np.testing.assert_allclose(alone, together[:6], rtol=1e-5, atol=1e-6)
    assert model.bag_tokens(X_test).shape == (len(X_test), 16)


def test_instance_dropout_hides_real_instances_only_and_keeps_one_per_bag():
    from sklearn_alnm.inputs import BagBatch, InstanceDropout

    torch.manual_seed(0)
    mask = torch.zeros(200, 6, dtype=torch.bool)
    lengths = torch.randint(1, 7, (200,))
    for i, n in enumerate(lengths):
        mask[i, :n] = True
    batch = BagBatch(torch.randn(200, 6, 3), mask, torch.zeros(200, 6, dtype=torch.long))
    out = InstanceDropout(0.5)(batch)
    assert bool((out.mask <= mask).all()) and bool(out.mask.any(dim=1).all())
    kept = out.mask.sum() / mask.sum()
    assert 0.4 < float(kept) < 0.7  # about half, plus the instance each emptied bag keeps
    assert torch.equal(out.instances, batch.instances)
    assert torch.equal(InstanceDropout(0.0)(batch).mask, mask)
    with pytest.raises(ValueError, match="instance dropout"):
        InstanceDropout(1.0)


def test_instance_dropout_acts_on_training_batches_only(bags):
    (X, y), (X_test, y_test) = bags
    model = MILClassifier(pooling="attention", instance_dropout=0.3, max_epochs=25, **_SMALL)
    model.fit(X, y)
    assert _auc(model, X_test, y_test) >= 0.9  # still finds the key instance
    np.testing.assert_array_equal(model.predict_proba(X_test), model.predict_proba(X_test))
    with pytest.raises(ValueError, match="instance_dropout"):
        clone(model).set_params(instance_dropout=1.5).fit(X, y)


def test_instance_kinds_are_embedded_and_tumour_only_bags_work():
    X, y = key_instance_bags(120, 2, kinds=True)
    X_test, y_test = key_instance_bags(80, 3, kinds=True)
    assert any(set(k) == {"tumor"} for k in X_test["kind"])  # tumour-only bags
    # the kind alone gives the label away here: with the kind embedding the model reads it
    for bag in X["tokens"]:
        bag[:, 0] = np.random.default_rng(0).normal(size=len(bag))
    model = MILClassifier(kind_col="kind", pooling="attention", max_epochs=25, **_SMALL).fit(X, y)
    assert model.kinds_ == ("node", "tumor")
    assert model.module_.n_kinds == 2
    X_test["tokens"] = [np.random.default_rng(1).normal(size=b.shape) for b in X_test["tokens"]]
    assert _auc(model, X_test, y_test) >= 0.8
    only_tumour = X_test[[set(k) == {"tumor"} for k in X_test["kind"]]]
    assert model.predict_proba(only_tumour).shape == (len(only_tumour), 2)
    fixed = MILClassifier(kind_col="kind", kinds=["tumor", "node"], max_epochs=1, **_SMALL)
    assert fixed.fit(X, y).kinds_ == ("tumor", "node")


def test_image_bags_through_a_backbone_with_kinds_and_masks(tmp_path):
    X, y = make_alnm_cohort(16, modalities="bag", image_size=32, random_state=0)
    model = MILClassifier(
        "bag",
        kind_col="bag_kind",
        mask_col="bag_mask",
        backbone="plnet",
        input_size=32,
        dim=32,
        augment="default",
        max_epochs=2,
        batch_size=4,
        random_state=0,
    ).fit(X, y)
    proba = model.predict_proba(X)
    assert proba.shape == (16, 2) and model.module_.encoder is not None
    assert model.kinds_ == ("node", "tumor")
    # the images and masks are read from files as well as from arrays
    on_disk, _ = make_alnm_cohort(
        16, modalities="bag", image_size=32, random_state=0, data_home=tmp_path
    )
    assert on_disk["bag_mask"].iloc[0][0].endswith("_mask.png")
    np.testing.assert_allclose(model.predict_proba(on_disk), proba, rtol=1e-4, atol=1e-4)
    bad = X.copy()
    bad.loc[bad.index[2], "bag_mask"] = (
        bad["bag_mask"].iloc[2][:-1]
        if len(bad["bag"].iloc[2]) > 1
        else [bad["bag_mask"].iloc[2][0]] * 2
    )
    with pytest.raises(CohortInputError, match="one entry per instance") as info:
        model.predict_proba(bad)
    assert info.value.row == "P0003" and info.value.column == "bag_mask"


def test_pickles_clones_and_grid_searches_over_pooling(bags, tmp_path):
    (X, y), (X_test, _) = bags
    model = MILClassifier(max_epochs=1, **_SMALL).fit(X, y)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_allclose(again.predict_proba(X_test), model.predict_proba(X_test))
    assert clone(model).get_params()["pooling"] == "transformer"
    search = GridSearchCV(
        MILClassifier(max_epochs=3, **{**_SMALL, "pos_label": None}),  # 0/1 labels
        {"pooling": ["mean", "attention"]},
        cv=2,
        scoring="roc_auc",
        error_score="raise",
    ).fit(X, (y == "N+").astype(int))
    assert search.best_params_["pooling"] in ("mean", "attention")
    assert len(search.cv_results_["mean_test_score"]) == 2


def test_sample_weight_and_string_labels(bags):
    (X, y), (X_test, _) = bags
    plain = MILClassifier(max_epochs=2, **_SMALL).fit(X, y)
    scaled = MILClassifier(max_epochs=2, **_SMALL).fit(X, y, np.full(len(y), 3.0))
    np.testing.assert_allclose(plain.predict_proba(X_test), scaled.predict_proba(X_test), atol=1e-5)
    assert list(plain.classes_) == ["N+", "N0"] and plain.pos_label_ == "N+"


def test_clear_errors_for_bad_bags(bags):
    (X, y), _ = bags
    model = MILClassifier(max_epochs=1, **_SMALL)
    empty = X.copy()
    empty.at[empty.index[3], "tokens"] = np.zeros((0, 8))
    with pytest.raises(CohortInputError, match="empty bag") as info:
        clone(model).fit(empty, y)
    assert info.value.row == "B0-003" and info.value.column == "tokens"
    missing = X.copy()
    missing.at[missing.index[4], "tokens"] = None
    with pytest.raises(CohortInputError, match="empty bag"):
        clone(model).fit(missing, y)
    wide = X.copy()
    wide.at[wide.index[5], "tokens"] = np.zeros((2, 9))
    with pytest.raises(CohortInputError, match="9 values; the bags have 8"):
        clone(model).fit(wide, y)
    kinds = X.assign(kind=[["tumor"] * len(b) for b in X["tokens"]])
    kinds.at[kinds.index[6], "kind"] = ["tumor"] * (len(kinds["tokens"].iloc[6]) + 1)
    with pytest.raises(CohortInputError, match="one entry per instance") as info:
        clone(model).set_params(kind_col="kind").fit(kinds, y)
    assert info.value.row == "B0-006" and info.value.column == "kind"
    fitted = (
        clone(model)
        .set_params(kind_col="kind")
        .fit(X.assign(kind=[["tumor"] * len(b) for b in X["tokens"]]), y)
    )
    unknown = X.assign(kind=[["axilla"] * len(b) for b in X["tokens"]])
    with pytest.raises(CohortInputError, match="unknown instance kind 'axilla'"):
        fitted.predict_proba(unknown)
    with pytest.raises(ValueError, match="image bags"):
        clone(model).set_params(augment="default").fit(X, y)
    with pytest.raises(ValueError, match="must divide"):
        clone(model).set_params(dim=10, heads=4).fit(X, y)
    with pytest.raises(CohortInputError, match="list of features"):
        clone(model).fit(X.assign(tokens="not a bag"), y)


def test_bag_input_pads_batches_and_reads_images():
    X = pd.DataFrame(
        {
            "bag": [[np.zeros((8, 8)), np.ones((8, 8))], [np.full((8, 8), 2.0)]],
            "kind": [["tumor", "node"], ["tumor"]],
        }
    )
    image = ImageInput("bag", input_size=(16, 16), normalize="zscore")
    data = BagInput("bag", "kind", image=image).dataset(X)
    assert data.lengths.tolist() == [2, 1] and image.in_chans == 1
    batch = data.__getitems__([1, 0])[0]
    assert tuple(batch.instances.shape) == (2, 2, 1, 16, 16)
    assert batch.mask.tolist() == [[True, False], [True, True]]
    assert batch.kinds.tolist() == [[2, 0], [2, 1]]
    assert bool((batch.instances[0, 1] == 0).all())  # padding is zeros
