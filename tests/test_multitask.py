"""The multi-task lesion network: mask decoder grid and shapes, heads that learn, errors."""

import copy
import pickle

import pytest
import torch
import torch.nn.functional as F

from sklearn_alnm.nn import MaskDecoder, MultiTaskSegNet, sincos_position_2d


def test_mask_decoder_upsamples_the_feature_grid_twice():
    decoder = MaskDecoder(dim=32, depth=2, heads=4)
    mask, s, token, image = decoder(torch.randn(3, 32, 4, 5))
    assert tuple(mask.shape) == (3, 1, 8, 10)  # one mask logit per cell of the 2x grid
    assert tuple(s.shape) == (3, 8, 8, 10)  # the segmentation feature: dim / 4 channels
    assert tuple(token.shape) == (3, 32) and tuple(image.shape) == (3, 32, 4, 5)
    # the mask is the dot product of s and the token's MLP at every position
    recomputed = torch.einsum("bchw,bc->bhw", s, decoder.token_mlp(token))[:, None]
    torch.testing.assert_close(mask, recomputed)
    with pytest.raises(ValueError, match="expects 32 channels"):
        decoder(torch.randn(1, 16, 4, 4))
    with pytest.raises(ValueError, match="multiple of 4 and of heads"):
        MaskDecoder(dim=30, heads=4)


def test_high_resolution_maps_refine_the_mask_grid():
    decoder = MaskDecoder(dim=32, depth=1, heads=4, high_res_channels=(16, 8, 4))
    features = torch.randn(2, 32, 3, 4)
    high_res = [torch.randn(2, 16, 6, 8), torch.randn(2, 8, 12, 16), torch.randn(2, 4, 24, 32)]
    mask, s, token, _ = decoder(features, high_res)
    assert tuple(mask.shape) == (2, 1, 24, 32)  # three 2x steps: the finest map's grid
    assert tuple(s.shape) == (2, 8, 24, 32)
    recomputed = torch.einsum("bchw,bc->bhw", s, decoder.token_mlp(token))[:, None]
    torch.testing.assert_close(mask, recomputed)
    # each map reaches the mask, and only the attended features reach the token
    for k in range(3):
        changed = [m.clone() for m in high_res]
        changed[k] = torch.randn_like(changed[k])
        other, _, other_token, _ = decoder(features, changed)
        assert not torch.allclose(other, mask)
        torch.testing.assert_close(other_token, token)
    # a grid that is not exactly twice the previous one (odd input sizes) is resized to
    odd = [torch.randn(2, 16, 7, 9), torch.randn(2, 8, 13, 17), torch.randn(2, 4, 25, 33)]
    assert tuple(decoder(torch.randn(2, 32, 3, 4), odd)[0].shape) == (2, 1, 25, 33)
    with pytest.raises(ValueError, match="expects 3 high-resolution maps; got 1"):
        decoder(features, high_res[:1])
    with pytest.raises(ValueError, match="expects 0 high-resolution maps; got 1"):
        MaskDecoder(dim=32, depth=1, heads=4)(features, high_res[:1])


def test_position_encoding_tells_every_cell_apart():
    pe = sincos_position_2d(4, 6, 16)
    assert tuple(pe.shape) == (24, 16)
    assert torch.cdist(pe, pe).add(torch.eye(24) * 1e3).min() > 1e-3
    with pytest.raises(ValueError, match="multiple of 4"):
        sincos_position_2d(2, 2, 6)


@pytest.mark.parametrize(
    ("backbone", "layer"),
    [
        ("resnet18", "layer3"),
        ("plnet", None),
        ("mit_b0", "stages.2"),
        ("swin_t", None),
        ("mobilenet_v3", None),
        ("unet", None),
        ("resnet18", ["layer2", "layer3", "layer4"]),
        ("mit_b0", ["stages.0", "stages.1", "stages.2", "stages.3"]),
    ],
)
def test_network_outputs_on_the_input_grid(backbone, layer):
    net = MultiTaskSegNet(backbone, feature_layer=layer, dim=32, heads=4, seed=0)
    x = torch.randn(2, 1, 64, 48)
    out = net(x)
    assert tuple(out.mask.shape) == (2, 1, 64, 48)
    assert tuple(out.kind.shape) == (2,) and tuple(out.aln.shape) == (2, 2)
    assert tuple(out.token.shape) == (2, 32)
    again = pickle.loads(pickle.dumps(net))
    torch.testing.assert_close(again.eval()(x).aln, copy.deepcopy(net).eval()(x).aln)


def test_multi_scale_features_are_fused_on_the_finest_grid():
    net = MultiTaskSegNet(
        "resnet18", feature_layer=["layer2", "layer3", "layer4"], dim=32, heads=4, seed=0
    )
    x = torch.randn(1, 1, 64, 64)
    assert [tuple(m.shape[-2:]) for m in net.feature_maps(x)] == [(8, 8), (4, 4), (2, 2)]
    assert tuple(net.feature_map(x).shape) == (1, 32, 8, 8)
    assert net.feature_layer == ("layer2", "layer3", "layer4")
    with pytest.raises(ValueError, match="finest grid to the coarsest"):
        MultiTaskSegNet("resnet18", feature_layer=["layer4", "layer2"], dim=32, heads=4)
    with pytest.raises(ValueError, match="has no layer 'layer9'"):
        MultiTaskSegNet("resnet18", feature_layer=["layer2", "layer9"], dim=32, heads=4)


def test_high_res_layers_put_the_mask_on_a_finer_grid():
    net = MultiTaskSegNet(
        "resnet18",
        feature_layer="layer3",
        high_res_layers=["relu", "layer2", "layer1"],  # any order
        dim=32,
        heads=4,
        seed=0,
    )
    assert net.high_res_layers == ["layer2", "layer1", "relu"]  # coarsest first
    x = torch.randn(2, 1, 64, 48)
    maps, high_res = net._encode(x)
    assert [tuple(m.shape[-2:]) for m in maps] == [(4, 3)]  # the attention's grid: stride 16
    assert [tuple(m.shape[-2:]) for m in high_res] == [(8, 6), (16, 12), (32, 24)]
    mask, s, _, _ = net.decoder(net.project(maps), high_res)
    assert tuple(mask.shape[-2:]) == (32, 24)  # stride 2 instead of stride 8
    out = net(x)
    assert tuple(out.mask.shape) == (2, 1, 64, 48) and tuple(out.token.shape) == (2, 32)
    again = pickle.loads(pickle.dumps(net))
    torch.testing.assert_close(again.eval()(x).mask, copy.deepcopy(net).eval()(x).mask)
    # the same layer as feature map and high-resolution map is read once
    both = MultiTaskSegNet(
        "resnet18", feature_layer=["layer1", "layer2"], high_res_layers="relu", dim=32, heads=4
    )
    assert tuple(both(x).mask.shape) == (2, 1, 64, 48)
    with pytest.raises(ValueError, match=r"not finer than the feature map"):
        MultiTaskSegNet("resnet18", feature_layer="layer2", high_res_layers=["layer3"], dim=32)
    with pytest.raises(ValueError, match="has no layer 'layer0'"):
        MultiTaskSegNet("resnet18", feature_layer="layer3", high_res_layers=["layer0"], dim=32)
    with pytest.raises(ValueError, match="list of different layer names"):
        MultiTaskSegNet("resnet18", high_res_layers=["layer1", "layer1"], dim=32)


def test_untraceable_backbones_are_read_through_hooks():
    from sklearn_alnm.nn._multitask import LayerTap

    mit = MultiTaskSegNet("mit_b0", feature_layer="stages.2", dim=32, heads=4, seed=0).eval()
    assert isinstance(mit.encoder, LayerTap)  # torch.fx cannot trace the MiT encoder
    x = torch.randn(1, 1, 64, 64)
    trunk = mit.encoder.net
    expected = trunk.forward_stages(x)[2]
    torch.testing.assert_close(mit.feature_maps(x)[0], expected)
    again = pickle.loads(pickle.dumps(mit))  # no hook is left behind
    assert not again.encoder.net.stages[2]._forward_hooks


def test_feature_layer_sets_the_grid():
    fine = MultiTaskSegNet("resnet18", feature_layer="layer3", dim=32, heads=4, seed=0)
    coarse = MultiTaskSegNet("resnet18", dim=32, heads=4, seed=0)
    x = torch.randn(1, 1, 64, 64)
    assert fine.feature_map(x).shape[-2:] == (4, 4)  # stride 16
    assert coarse.feature_map(x).shape[-2:] == (2, 2)  # stride 32 (layer4)


def _disc_images(n, size=32, seed=0):
    """A bright disc per image (the lesion mask); large discs are "nodes", and a darker
    disc interior means N+: each head has something to learn."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    images, masks = [], []
    kind = torch.randint(0, 2, (n,), generator=g)
    aln = torch.randint(0, 2, (n,), generator=g)
    for i in range(n):
        cy, cx = (torch.randint(10, size - 10, (2,), generator=g)).tolist()
        radius = 7 if kind[i] else 4
        disc = ((yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2).float()
        image = 0.2 * torch.rand(size, size, generator=g) + disc * (1.0 if aln[i] else 0.6)
        images.append(image[None])
        masks.append(disc[None])
    return torch.stack(images), torch.stack(masks), kind.float(), aln


def test_each_head_loss_falls_when_trained_jointly():
    torch.manual_seed(0)
    x, masks, kinds, aln = _disc_images(32)
    net = MultiTaskSegNet("plnet", dim=32, heads=4, seed=0)
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-3)

    def losses():
        out = net(x)
        return (
            F.binary_cross_entropy_with_logits(out.mask, masks),
            F.binary_cross_entropy_with_logits(out.kind, kinds),
            F.cross_entropy(out.aln, aln),
        )

    with torch.no_grad():
        net.eval()
        before = [float(v) for v in losses()]
    net.train()
    for _ in range(60):
        optimizer.zero_grad()
        sum(losses()).backward()
        optimizer.step()
    with torch.no_grad():
        net.eval()
        after = [float(v) for v in losses()]
    for name, b, a in zip(("segmentation", "kind", "aln"), before, after):
        assert a < 0.8 * b, (name, b, a)  # each head learns


def test_an_empty_mask_target_is_a_finite_loss():
    net = MultiTaskSegNet("plnet", dim=32, heads=4, seed=0)
    out = net(torch.rand(2, 1, 32, 32))
    loss = F.binary_cross_entropy_with_logits(out.mask, torch.zeros(2, 1, 32, 32))
    assert torch.isfinite(loss)
    loss.backward()


def test_network_errors():
    with pytest.raises(ValueError, match="has no layer 'layer9'"):
        MultiTaskSegNet("resnet18", feature_layer="layer9")
    with pytest.raises(ValueError, match="convolutional feature map"):
        MultiTaskSegNet("resnet18", feature_layer="fc")
    net = MultiTaskSegNet("plnet", dim=32, heads=4, seed=0)
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        net(torch.rand(2, 3, 32, 32))


# ---------------------------------------------------------------------------- the estimator

import numpy as np  # noqa: E402
from sklearn.base import clone  # noqa: E402
from skorch.callbacks import Callback  # noqa: E402

from sklearn_alnm.datasets import make_alnm_cohort  # noqa: E402
from sklearn_alnm.io import read_image  # noqa: E402
from sklearn_alnm.models import MILClassifier, MultiTaskSegClassifier  # noqa: E402
from sklearn_alnm.utils import CohortInputError  # noqa: E402

_MT = dict(backbone="plnet", dim=32, heads=4, input_size=32, lr=2e-3, augment=None, random_state=0)


@pytest.fixture(scope="module")
def bag_cohort():
    X, y = make_alnm_cohort(40, modalities="bag", image_size=32, random_state=0)
    return X, np.where(y == 1, "N+", "N0")


@pytest.fixture(scope="module")
def fitted(bag_cohort):
    X, y = bag_cohort
    return MultiTaskSegClassifier(max_epochs=10, pos_label="N+", **_MT).fit(X, y)


def test_patient_probability_is_the_mean_of_its_instances(fitted, bag_cohort):
    X, _ = bag_cohort
    proba = fitted.predict_proba(X)
    instances = fitted.instance_proba(X)
    assert [len(p) for p in instances] == [len(b) for b in X["bag"]]
    np.testing.assert_allclose(proba, np.stack([p.mean(axis=0) for p in instances]), atol=1e-6)
    assert list(fitted.classes_) == ["N+", "N0"] and fitted.pos_label_ == "N+"


def test_the_three_heads_learn_on_the_bags(fitted, bag_cohort):
    X, y = bag_cohort
    for head in ("segmentation", "kind", "aln"):
        losses = fitted.history_[:, f"train_{head}_loss"]
        assert losses[-1] < 0.9 * losses[0], head
    assert fitted.segmentation_score(X) > 0.6  # lesion masks of tumours and nodes
    # the kind head alone tells tumours from nodes
    kind_only = MultiTaskSegClassifier(max_epochs=10, loss_weights=(0, 1, 0), pos_label="N+", **_MT)
    kind_only.fit(X, y)
    kinds = kind_only.transform(X)["pred_kind"]
    truth = [k for bag in X["bag_kind"] for k in bag]
    predicted = [k for bag in kinds for k in bag]
    assert np.mean(np.array(truth) == np.array(predicted)) > 0.85


def test_transform_gives_the_tokens_masks_and_kinds_of_every_instance(fitted, bag_cohort):
    X, y = bag_cohort
    out = fitted.transform(X)
    assert list(out.columns) == [*X.columns, "tokens", "pred_mask", "pred_kind"]
    for bag, tokens, masks, kinds in zip(
        X["bag"], out["tokens"], out["pred_mask"], out["pred_kind"]
    ):
        assert tokens.shape == (len(bag), 32)
        assert len(masks) == len(kinds) == len(bag)
        assert masks[0].shape == (32, 32) and set(kinds) <= {"tumor", "node"}
    # the MIL stage reads the tokens (at prediction, no kind or mask column is needed)
    mil = MILClassifier("tokens", pooling="attention", dim=16, max_epochs=2, pos_label="N+")
    assert mil.fit(out, y).predict_proba(out).shape == (len(X), 2)
    assert fitted.predict_proba(X[["patient_id", "bag"]]).shape == (len(X), 2)


def test_predicted_masks_come_back_on_each_image_grid(fitted, bag_cohort):
    from sklearn_alnm.io import read_mask

    X, _ = bag_cohort
    rows = X.iloc[:3].copy()
    # one image of another size (bags hold paths and arrays alike)
    first = list(rows["bag"].iloc[0])
    big = np.kron(np.asarray(read_image(first[0]), dtype=np.float32), np.ones((2, 3)))
    first[0] = big
    rows.at[rows.index[0], "bag"] = first
    masks = fitted.predict_masks(rows)
    assert [len(m) for m in masks] == [len(b) for b in rows["bag"]]
    assert masks[0][0].shape == big.shape[:2] and masks[0][0].dtype == bool
    assert masks[1][0].shape == read_mask(rows["bag_mask"].iloc[1][0]).shape
    # on the network's grid, the same masks as transform's
    grid = fitted.transform(rows.iloc[1:2])["pred_mask"].iloc[0][0]
    same = fitted.predict_masks(rows.iloc[1:2])[0][0]
    assert same.shape == grid.shape and np.mean(same == grid.astype(bool)) > 0.97


@pytest.mark.parametrize(
    ("backbone", "layer"), [("mit_b0", ["stages.0", "stages.1"]), ("unet", None)]
)
def test_transformer_and_unet_backbones_train_and_pickle(bag_cohort, backbone, layer):
    X, y = bag_cohort
    params = {**_MT, "backbone": backbone, "feature_layer": layer}
    model = MultiTaskSegClassifier(max_epochs=1, pos_label="N+", **params).fit(X[:12], y[:12])
    proba = model.predict_proba(X[:12])
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_allclose(again.predict_proba(X[:12]), proba, atol=1e-6)
    assert model.transform(X[:2])["tokens"].iloc[0].shape[1] == 32


def test_high_res_layers_reach_the_network_and_the_masks(bag_cohort):
    X, y = bag_cohort
    params = {**_MT, "high_res_layers": ["features.block2", "features.block3"]}
    model = MultiTaskSegClassifier(max_epochs=1, pos_label="N+", **params).fit(X[:12], y[:12])
    assert model.module_.high_res_layers == ["features.block3", "features.block2"]
    images = torch.zeros(1, 1, 32, 32)
    _, high_res = model.module_._encode(images)
    mask = model.module_.decoder(model.module_.feature_map(images), high_res)[0]
    assert tuple(mask.shape[-2:]) == (16, 16)  # stride 2; the plain decoder's is 8 x 8
    assert model.transform(X[:2])["pred_mask"].iloc[0][0].shape == (32, 32)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_allclose(again.predict_proba(X[:12]), model.predict_proba(X[:12]), atol=1e-6)
    assert clone(model).get_params()["high_res_layers"] == params["high_res_layers"]


def test_class_activation_maps_are_the_image_heads_exact_shares(fitted, bag_cohort):
    X, _ = bag_cohort
    rows = X.iloc[:4]
    raw = fitted.class_activation_maps(rows, normalize=False)
    proba = fitted.instance_proba(rows)
    position = list(fitted.classes_).index("N+")
    bias = fitted.module_.aln_head.bias.detach().numpy()
    for maps, p in zip(raw, proba):
        # the shares sum to each instance's log-odds of N+ (less the head's bias)
        log_odds = np.log(p[:, position]) - np.log(p[:, 1 - position])
        expected = log_odds - (bias[position] - bias[1 - position])
        np.testing.assert_allclose(maps.sum(axis=(1, 2)), expected, rtol=1e-3, atol=1e-3)
    shown = fitted.class_activation_maps(rows)
    assert [m.shape for m in shown] == [(len(b), 32, 32) for b in rows["bag"]]
    assert all(m.min() >= 0 and m.max() <= 1 for m in shown)
    # the other class's map is the negated share
    other = fitted.class_activation_maps(rows, class_index="N0", normalize=False)
    np.testing.assert_allclose(other[0], -raw[0], atol=1e-6)
    with pytest.raises(ValueError, match="not one of the classes"):
        fitted.class_activation_maps(rows, class_index="N2")
    images = fitted.instance_images(rows)
    assert [i.shape for i in images] == [(len(b), 1, 32, 32) for b in rows["bag"]]


class _InterruptAfter(Callback):
    def __init__(self, epochs):
        self.epochs = epochs

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epochs:
            raise KeyboardInterrupt


def test_checkpoint_and_resume_keep_every_heads_history(bag_cohort, tmp_path):
    X, y = bag_cohort
    X, y = X[:16], y[:16]
    params = {**_MT, "max_epochs": 3, "checkpoint_dir": tmp_path, "pos_label": "N+"}
    with pytest.warns(UserWarning, match="interrupted after 2 of 3 epochs"):
        first = MultiTaskSegClassifier(**params, callbacks=[("stop", _InterruptAfter(2))]).fit(X, y)
    resumed = MultiTaskSegClassifier(**params).fit(X, y)
    assert resumed.checkpoint_path_ == first.checkpoint_path_
    assert len(resumed.history_) == 3
    for head in ("segmentation", "kind", "aln"):
        key = f"train_{head}_loss"
        assert resumed.history_[:2, key] == first.history_[:, key]
    again = MultiTaskSegClassifier(**params).fit(X, y)  # finished: loaded
    np.testing.assert_array_equal(again.predict_proba(X), resumed.predict_proba(X))


def test_multitask_errors(bag_cohort):
    X, y = bag_cohort
    model = MultiTaskSegClassifier(max_epochs=1, pos_label="N+", **_MT)
    bad = X.copy()
    bad.at[bad.index[1], "bag_kind"] = ["tumor"] * (len(bad["bag"].iloc[1]) + 1)
    with pytest.raises(CohortInputError, match="one entry per instance"):
        clone(model).fit(bad, y)
    axilla = X.assign(bag_kind=[["axilla"] * len(b) for b in X["bag"]])
    with pytest.raises(CohortInputError, match="unknown instance kind 'axilla'"):
        clone(model).fit(axilla, y)
    with pytest.raises(ValueError, match="bag_mask"):
        clone(model).fit(X.drop(columns="bag_mask"), y)
    with pytest.raises(ValueError, match="loss_weights"):
        clone(model).set_params(loss_weights=(1, 1)).fit(X, y)
    with pytest.raises(ValueError, match="multiple of 4 and of heads"):
        clone(model).set_params(dim=30).fit(X, y)


def test_fit_transform_gives_out_of_fold_tokens_for_the_mil_stage(bag_cohort):
    from sklearn.pipeline import Pipeline

    from sklearn_alnm.models._multitask import _linear_map

    X, y = bag_cohort
    stage1 = MultiTaskSegClassifier(max_epochs=2, cv=2, pos_label="N+", **_MT)
    out = stage1.fit_transform(X, y)
    in_sample = stage1.transform(X)  # the model fitted on every patient
    # every patient's tokens come from the fold model that did not see it, not the full one
    for a, b in zip(out["tokens"], in_sample["tokens"]):
        assert a.shape == b.shape and not np.allclose(a, b)
    # the least-squares map is exact where it is fitted (a map onto itself is the identity)
    tokens = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    np.testing.assert_allclose(_linear_map(tokens, tokens, ridge=0)(tokens), tokens, atol=1e-4)
    # refitting one fold by hand reproduces its patients' tokens: the fold network's, mapped
    # into the final network's token space by least squares on the fold's training images
    from sklearn_alnm.fusion import GroupColumnKFold

    train, test = next(GroupColumnKFold(n_splits=2, random_state=0).split(X, y))
    fold = clone(stage1).set_params(cv=None).fit(X.iloc[train], y[train])
    align = _linear_map(
        np.concatenate(list(fold.transform(X.iloc[train])["tokens"])),
        np.concatenate(list(in_sample["tokens"].iloc[train])),
    )
    held_out = fold.transform(X.iloc[test])
    np.testing.assert_allclose(
        align(held_out["tokens"].iloc[0]), out["tokens"].iloc[test[0]], rtol=1e-4, atol=1e-4
    )
    assert held_out["pred_kind"].iloc[0] == out["pred_kind"].iloc[test[0]]
    # as a pipeline: stage 1 -> MIL over the tokens; prediction uses the full stage-1 model
    pipe = Pipeline(
        [
            ("images", clone(stage1)),
            ("mil", MILClassifier("tokens", dim=16, heads=2, max_epochs=2, pos_label="N+")),
        ]
    ).fit(X, y)
    assert pipe.predict_proba(X[["patient_id", "bag"]]).shape == (len(X), 2)
