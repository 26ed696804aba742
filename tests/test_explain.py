import io

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from sklearn.exceptions import NotFittedError
from torch import nn

from sklearn_alnm.explain import grad_cam, overlay, plot_gradcam
from sklearn_alnm.nn import (
    _backbones,
    available_backbones,
    build_backbone,
    get_backbone_spec,
    plnet_spec,
    register_backbone,
)


def _inputs(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


class TinyCNN(nn.Module):
    """conv - ReLU - conv (the Grad-CAM layer) - ReLU - global pooling - linear."""

    def __init__(self, outputs=2, inplace_after=False, seed=0):
        super().__init__()
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
            self.conv2 = nn.Conv2d(4, 6, 3, padding=1, stride=2)
            self.fc = nn.Linear(6, outputs)
        self.inplace_after = inplace_after
        self.gradcam_layer = "conv2"

    def forward(self, x):
        x = self.conv2(F.relu(self.conv1(x)))
        x = F.relu(x, inplace=self.inplace_after)  # in place on the hooked output
        return self.fc(x.mean(dim=(2, 3)))


def _reference_cam(model, x, layer, column):
    """Plain Grad-CAM written independently: retained gradient of the layer's output."""
    model = model.eval()
    store = {}

    def keep(module, args, out):
        out.retain_grad()
        store["a"] = out

    handle = layer.register_forward_hook(keep)
    out = model(x)
    handle.remove()
    out[:, column].sum().backward()
    a, g = store["a"].detach(), store["a"].grad
    cam = torch.relu((g.mean(dim=(2, 3), keepdim=True) * a).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    peak = cam.amax(dim=(1, 2), keepdim=True)
    return torch.where(peak > 0, cam / peak, torch.zeros_like(cam)).numpy()


# --------------------------------------------------------------------------- correctness


@pytest.mark.parametrize("column", [0, 1])
def test_matches_a_plain_reference_implementation(column):
    x = _inputs(5, 1, 20, 20)
    heat = grad_cam(TinyCNN(), x, class_index=column, batch_size=2)
    reference = TinyCNN()  # the same weights
    assert heat.shape == (5, 20, 20) and heat.dtype == np.float32
    expected = _reference_cam(reference, x, reference.conv2, column)
    np.testing.assert_allclose(heat, expected, atol=1e-5)
    assert heat.min() >= 0 and heat.max() <= 1
    peaks = heat.reshape(5, -1).max(axis=1)
    assert np.all((peaks == 0) | np.isclose(peaks, 1))
    assert np.any(np.isclose(peaks, 1))


def test_in_place_operations_after_the_layer_do_not_change_the_map():
    # DenseNet applies an in-place ReLU to the output of its Grad-CAM layer (features.norm5)
    x = _inputs(4, 1, 16, 16)
    plain = grad_cam(TinyCNN(), x, class_index=1)
    inplace = grad_cam(TinyCNN(inplace_after=True), x, class_index=1)
    np.testing.assert_allclose(inplace, plain, atol=1e-6)


def test_module_state_is_restored_and_no_gradient_is_left_behind():
    model = TinyCNN().train()
    model.conv1.eval()  # mixed modes survive
    model.conv1.weight.requires_grad_(False)
    modes = {name: m.training for name, m in model.named_modules()}
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    before = {k: v.clone() for k, v in model.state_dict().items()}
    grad_cam(model, _inputs(3, 1, 16, 16))
    assert {name: m.training for name, m in model.named_modules()} == modes
    assert {name: p.requires_grad for name, p in model.named_parameters()} == flags
    assert all(p.grad is None for p in model.parameters())
    assert all(not m._forward_hooks and not m._backward_hooks for m in model.modules())
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])


def test_frozen_networks_and_inference_mode_callers_work():
    model = TinyCNN()
    model.requires_grad_(False)
    x = _inputs(2, 1, 16, 16)
    expected = grad_cam(TinyCNN(), x)
    np.testing.assert_allclose(grad_cam(model, x), expected, atol=1e-6)
    with torch.inference_mode():
        np.testing.assert_allclose(grad_cam(model, x), expected, atol=1e-6)
    assert not any(p.requires_grad for p in model.parameters())


def test_hooks_are_removed_and_state_restored_on_error():
    model = TinyCNN().train()
    with pytest.raises(ValueError, match="out of range for a model with 2 outputs"):
        grad_cam(model, _inputs(2, 1, 16, 16), class_index=2)
    assert model.training and model.conv2.training
    assert all(not m._forward_hooks for m in model.modules())


class _Single(nn.Module):
    """A one-logit binary model built on TinyCNN: (N, 1), (N,) or the negated logit."""

    def __init__(self, mode):
        super().__init__()
        self.body = TinyCNN(outputs=1)
        self.mode = mode
        self.gradcam_layer = "body.conv2"

    def forward(self, x):
        z = self.body(x)
        return {"column": z, "flat": z[:, 0], "negated": -z}[self.mode]


def test_single_logit_outputs_class_1_is_the_logit_class_0_its_negative():
    x = _inputs(3, 1, 16, 16)
    column = grad_cam(_Single("column"), x, class_index=1)
    np.testing.assert_allclose(grad_cam(_Single("flat"), x, class_index=1), column, atol=1e-6)
    np.testing.assert_allclose(
        grad_cam(_Single("column"), x, class_index=0),
        grad_cam(_Single("negated"), x, class_index=1),
        atol=1e-6,
    )
    model = _Single("column")
    np.testing.assert_allclose(column, _reference_cam(model, x, model.body.conv2, 0), atol=1e-5)
    with pytest.raises(ValueError, match="single logit"):
        grad_cam(_Single("flat"), x, class_index=2)


def test_target_layer_by_name_module_or_default():
    model = TinyCNN()
    x = _inputs(2, 1, 16, 16)
    default = grad_cam(model, x)
    np.testing.assert_allclose(grad_cam(model, x, target_layer="conv2"), default)
    np.testing.assert_allclose(grad_cam(model, x, target_layer=model.conv2), default)
    other = grad_cam(model, x, target_layer="conv1")  # full resolution layer
    assert other.shape == default.shape and not np.allclose(other, default)


# ------------------------------------------------------------------- ViT tokens to a grid


class _Tokens(nn.Module):
    """A ViT-shaped toy: patch embedding, class token, a LayerNorm-like identity, sum head."""

    def __init__(self, patch=8, declare_patch=True):
        super().__init__()
        self.conv_proj = nn.Conv2d(1, 2, patch, stride=patch, bias=False)
        nn.init.constant_(self.conv_proj.weight, 1.0)
        self.ln = nn.Identity()
        if declare_patch:
            self.patch_size = patch
        self.gradcam_layer = "ln"

    def forward(self, x):
        tokens = self.conv_proj(x).flatten(2).transpose(1, 2)  # (N, h*w, D), row-major
        cls = torch.zeros(x.shape[0], 1, tokens.shape[2])
        tokens = self.ln(torch.cat([cls, tokens], dim=1))
        score = tokens[:, 1:].sum(dim=(1, 2))
        return torch.stack([-score, score], dim=1)


@pytest.mark.parametrize("declare_patch", [True, False])
def test_vit_tokens_are_mapped_to_the_patch_grid(declare_patch):
    x = torch.zeros(2, 1, 32, 48)  # a 4 x 6 patch grid
    x[0, 0, 8:16, 32:40] = 1.0  # patch row 1, column 4
    x[1, 0, 24:32, 0:8] = 1.0  # patch row 3, column 0
    heat = grad_cam(_Tokens(declare_patch=declare_patch), x)
    assert heat.shape == (2, 32, 48)
    for i, (rows, cols) in enumerate([(slice(8, 16), slice(32, 40)), (slice(24, 32), slice(0, 8))]):
        inside = heat[i, rows, cols]
        assert inside.mean() > 0.5
        outside = heat[i].copy()
        outside[rows, cols] = np.nan
        assert np.nanmean(outside) < 0.1
        peak = np.unravel_index(np.argmax(heat[i]), heat[i].shape)
        assert rows.start <= peak[0] < rows.stop and cols.start <= peak[1] < cols.stop


def test_vit_b_16_default_layer():
    model = build_backbone("vit_b_16", input_size=32, num_classes=2, seed=0)
    heat = grad_cam(model, _inputs(2, 3, 32, 32))
    assert heat.shape == (2, 32, 32) and 0 <= heat.min() and heat.max() <= 1
    # a 2 x 2 patch grid upsampled: each 16 x 16 quadrant is smooth, not constant noise
    assert np.isfinite(heat).all()


# ------------------------------------------------------------- every backbone of the registry

_SLOW = {"vgg16", "vgg16_bn", "vgg19", "vgg19_bn", "inception_v3", "resnet101"}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=pytest.mark.slow) if name in _SLOW else name
        for name in available_backbones()
        if get_backbone_spec(name).family != "vit"
    ],
)
def test_every_cnn_backbone_of_the_registry(name):
    spec = get_backbone_spec(name)
    size = max(spec.min_input_size, 64)
    model = build_backbone(name, in_chans=1, num_classes=2, seed=0).train()
    x = _inputs(3, 1, size, size)
    maps = {c: grad_cam(model, x, class_index=c, batch_size=2) for c in (0, 1)}
    for heat in maps.values():
        assert heat.shape == (3, size, size) and heat.dtype == np.float32
        assert np.isfinite(heat).all() and heat.min() >= 0 and heat.max() <= 1
        peaks = heat.reshape(3, -1).max(axis=1)
        assert np.all((peaks == 0) | np.isclose(peaks, 1))
    assert model.training
    assert all(not m._forward_hooks for m in model.modules())
    assert all(p.grad is None for p in model.parameters())


# ---------------------------------------------------------- the lesion is what lights up


def _lesion_images(n, size=48, lesion=8, seed=0):
    """Noise images with two bright 8 x 8 boxes at random, non-overlapping places.

    In positives (odd rows) the first box is the lesion: a checkerboard texture of mean
    brightness 2; everywhere else (negatives' first box, every second box) it is a smooth
    square of the same brightness. Background and distractor have one distribution in both
    classes: only the lesion's texture tells the classes apart. Returns ``x, y, boxes`` with
    ``boxes[i, 0]`` the lesion (or its place) and ``boxes[i, 1]`` the distractor.
    """
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, size, size, generator=g) * 0.5
    y = torch.arange(n) % 2
    boxes = np.zeros((n, 2, size, size), dtype=bool)
    rr, cc = torch.meshgrid(torch.arange(lesion), torch.arange(lesion), indexing="ij")
    texture = ((rr + cc) % 2).float() * 2.0 + 1.0
    for i in range(n):
        while True:
            (r0, c0), (r1, c1) = torch.randint(0, size - lesion + 1, (2, 2), generator=g).tolist()
            if abs(r0 - r1) >= lesion + 2 or abs(c0 - c1) >= lesion + 2:
                break
        boxes[i, 0, r0 : r0 + lesion, c0 : c0 + lesion] = True
        boxes[i, 1, r1 : r1 + lesion, c1 : c1 + lesion] = True
        x[i, 0, r0 : r0 + lesion, c0 : c0 + lesion] += texture if y[i] == 1 else 2.0
        x[i, 0, r1 : r1 + lesion, c1 : c1 + lesion] += 2.0
    return x, y, boxes


def _lesion_scores(heat, y, boxes):
    """Per positive image: mean heat in the lesion over outside it, and over the distractor."""
    positives = np.flatnonzero(y.numpy() == 1)
    lesion = np.array([heat[i][boxes[i, 0]].mean() for i in positives])
    outside = np.array([heat[i][~boxes[i, 0]].mean() for i in positives])
    distractor = np.array([heat[i][boxes[i, 1]].mean() for i in positives])
    return lesion / np.maximum(outside, 1e-12), lesion / np.maximum(distractor, 1e-12)


@pytest.fixture
def tiny_plnet(monkeypatch):
    monkeypatch.setattr(_backbones, "_REGISTRY", dict(_backbones._REGISTRY))
    register_backbone(plnet_spec("plnet_tiny", channels=(8, 16, 32)))
    return build_backbone("plnet_tiny", in_chans=1, num_classes=2, seed=0)


def test_grad_cam_highlights_the_lesion_of_a_trained_network(tiny_plnet):
    model = tiny_plnet
    x_test, y_test, boxes = _lesion_images(64, seed=5)
    # before training, the maps do not single out the lesion from the equally bright distractor
    _, untrained = _lesion_scores(grad_cam(model, x_test), y_test, boxes)
    assert np.mean(untrained > 2) < 0.5

    x, y, _ = _lesion_images(256, seed=10)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(1)
    model.train()
    for _ in range(40):
        batch = torch.randint(0, len(x), (32,), generator=g)
        loss = F.cross_entropy(model(x[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        accuracy = (model.eval()(x_test).argmax(1) == y_test).float().mean()
    assert accuracy >= 0.9

    heat = grad_cam(model, x_test, class_index=1)
    over_outside, over_distractor = _lesion_scores(heat, y_test, boxes)
    # the lesion covers 64 / 2304 = 2.8 % of the image but gets most of the heat
    assert np.mean(over_outside > 2) >= 0.9, np.round(over_outside, 2)
    assert np.median(over_outside) > 3
    assert np.mean(over_distractor > 2) >= 0.9, np.round(over_distractor, 2)


def test_grad_cam_of_a_fitted_image_classifier_highlights_the_lesion(tiny_plnet):
    import pandas as pd

    from sklearn_alnm.models import ImageClassifier

    def cohort(n, seed):
        x, y, boxes = _lesion_images(n, seed=seed)
        frame = pd.DataFrame({"image": [img[0].numpy() for img in x]})
        return frame, np.where(y.numpy() == 1, "N+", "N0"), y, boxes

    X, labels, _, _ = cohort(256, seed=10)
    model = ImageClassifier(
        backbone="plnet_tiny",
        input_size=48,
        crop=None,
        augment=None,
        normalize="zscore",
        dropout=0.0,
        lr=3e-3,
        max_epochs=6,
        batch_size=32,
        random_state=0,
        pos_label="N+",
    ).fit(X, labels)
    X_test, labels_test, y_test, boxes = cohort(64, seed=5)
    assert model.score(X_test, labels_test) >= 0.9
    heat = grad_cam(model, X_test)  # the positive class "N+", not the second sorted "N0"
    np.testing.assert_allclose(heat, grad_cam(model, X_test, class_index="N+"))
    assert heat.shape == (64, 48, 48) and heat.min() >= 0 and heat.max() <= 1
    over_outside, over_distractor = _lesion_scores(heat, y_test, boxes)
    assert np.mean(over_outside > 2) >= 0.9, np.round(over_outside, 2)
    assert np.mean(over_distractor > 2) >= 0.8, np.round(over_distractor, 2)


# ------------------------------------------------------------ the fitted-classifier path


class FakeImageClassifier:
    """What grad_cam relies on from a fitted ImageClassifier (duck-typed)."""

    def __init__(self, module, classes=("N0", "N+"), pos_label="N+"):
        self.module_ = module
        self.pos_label_ = pos_label
        self.classes_ = np.array(classes, dtype=object)
        self.device_ = "cpu"

    def prepare_images(self, X):
        stack = np.stack([np.asarray(a, dtype=np.float32) for a in X["image"]])
        return torch.from_numpy((stack[:, None] - 0.5) / 0.25)


def _cohort(n=4, size=16):
    rng = np.random.default_rng(0)
    index = pd.Index([f"P{i:03d}" for i in range(n)], name="patient")
    return pd.DataFrame({"image": list(rng.random((n, size, size)))}, index=index)


def test_classifier_path_uses_prepared_images_and_class_labels():
    module = TinyCNN()
    clf = FakeImageClassifier(module)
    X = _cohort()
    prepared = clf.prepare_images(X)
    direct = grad_cam(module, prepared, class_index=1)
    np.testing.assert_allclose(grad_cam(clf, X), direct)
    np.testing.assert_allclose(grad_cam(clf, X, class_index="N+"), direct)
    np.testing.assert_allclose(
        grad_cam(clf, X, class_index="N0"), grad_cam(module, prepared, class_index=0)
    )
    with pytest.raises(ValueError, match=r"'M1' is neither a position nor one of the classes"):
        grad_cam(clf, X, class_index="M1")
    # Without a positive class, string labels are not guessed from their order.
    guess = FakeImageClassifier(module, classes=("N+", "N0"), pos_label=None)
    with pytest.raises(ValueError, match=r"grad_cam: .*\['N\+', 'N0'\].*pos_label"):
        grad_cam(guess, X)
    numeric = FakeImageClassifier(module, classes=(0, 1), pos_label=None)
    np.testing.assert_allclose(grad_cam(numeric, X), direct)

    unfitted = FakeImageClassifier(module)
    del unfitted.module_
    with pytest.raises(NotFittedError, match="not fitted"):
        grad_cam(unfitted, X)


# -------------------------------------------------------------------------------- errors


def test_errors_name_the_problem():
    model = TinyCNN()
    x = _inputs(2, 1, 16, 16)
    with pytest.raises(ValueError, match=r"unknown target_layer 'conv3'.*Did you mean 'conv"):
        grad_cam(model, x, target_layer="conv3")
    with pytest.raises(ValueError, match="not a submodule"):
        grad_cam(model, x, target_layer=nn.Conv2d(4, 6, 3))
    with pytest.raises(TypeError, match="target_layer must be"):
        grad_cam(model, x, target_layer=3)
    with pytest.raises(ValueError, match="unsupported for layer 'fc'"):
        grad_cam(model, x, target_layer="fc")
    plain = nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 2)
    )
    with pytest.raises(ValueError, match="no gradcam_layer attribute: pass target_layer"):
        grad_cam(plain, x)
    assert grad_cam(plain, x, target_layer="0").shape == (2, 16, 16)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\); got shape \(1, 16, 16\)"):
        grad_cam(model, x[0])
    with pytest.raises(TypeError, match="torch.Tensor or numpy array"):
        grad_cam(model, [x[0], x[1]])
    with pytest.raises(TypeError, match="ImageClassifier"):
        grad_cam("resnet18", x)
    with pytest.raises(ValueError, match="batch_size"):
        grad_cam(model, x, batch_size=0)
    with pytest.raises(ValueError, match="class_index must be an int"):
        grad_cam(model, x, class_index="N+")


class _Twice(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1)
        self.unused = nn.Conv2d(1, 1, 3, padding=1)
        self.never = nn.Conv2d(1, 1, 3, padding=1)
        self.fc = nn.Linear(1, 2)

    def forward(self, x):
        x = self.conv(self.conv(x))
        self.unused(x)  # runs, but does not reach the output
        return self.fc(x.mean(dim=(2, 3)))


def test_layers_that_run_twice_or_not_on_the_output_path_are_rejected():
    model = _Twice()
    x = _inputs(1, 1, 8, 8)
    with pytest.raises(ValueError, match="ran 2 times"):
        grad_cam(model, x, target_layer="conv")
    with pytest.raises(ValueError, match="does not influence the model's output"):
        grad_cam(model, x, target_layer="unused")
    with pytest.raises(ValueError, match="did not run in the forward pass"):
        grad_cam(model, x, target_layer="never")
    assert all(not m._forward_hooks for m in model.modules())


def test_numpy_input_and_empty_batches():
    model = TinyCNN()
    x = _inputs(2, 1, 16, 16)
    np.testing.assert_allclose(grad_cam(model, x.numpy()), grad_cam(model, x))
    assert grad_cam(model, x[:0]).shape == (0, 16, 16)


# ------------------------------------------------------------------------------ overlays


def test_overlay_blends_the_colormap_over_the_image():
    image = np.full((12, 8), 255, dtype=np.uint8)
    heat = np.zeros((12, 8))
    heat[0, 0] = 1.0
    out = overlay(image, heat, alpha=0.5, cmap="gray")
    assert out.shape == (12, 8, 3) and out.dtype == np.float64
    np.testing.assert_allclose(out[0, 0], [1.0, 1.0, 1.0])  # white + white
    np.testing.assert_allclose(out[5, 5], [0.5, 0.5, 0.5])  # white + black
    np.testing.assert_allclose(overlay(image, heat, alpha=0.0), 1.0)


def test_overlay_resizes_the_heat_map_and_accepts_rgb_and_other_ranges():
    rgb = np.zeros((40, 60, 4), dtype=np.float32)
    rgb[..., 0] = 1.0  # red, alpha channel dropped
    heat = np.zeros((4, 6))
    heat[:2, :3] = 1.0  # top-left quarter
    out = overlay(rgb, heat, alpha=1.0, cmap="gray")
    assert out.shape == (40, 60, 3)
    assert out[:15, :25].min() > 0.99 and out[25:, 35:].max() < 0.01
    np.testing.assert_allclose(overlay(rgb, heat, alpha=0.0), rgb[..., :3])
    scaled = overlay(np.array([[-2.0, 2.0]]), np.zeros((1, 2)), alpha=0.0)
    np.testing.assert_allclose(scaled[0, :, 0], [0.0, 1.0])  # min-max scaled
    with pytest.raises(ValueError, match="heatmap must be a non-empty 2-D"):
        overlay(rgb, np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="image must be of shape"):
        overlay(np.zeros((2, 2, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="alpha"):
        overlay(rgb, heat, alpha=1.5)
    with pytest.raises(ValueError, match="colormap"):
        overlay(rgb, heat, cmap="no_such_map")


# --------------------------------------------------------------------------------- figure


def test_plot_gradcam_panel_of_chosen_cases():
    module = TinyCNN()
    clf = FakeImageClassifier(module)
    X = _cohort(n=5)
    fig = plot_gradcam(clf, X, rows=[1, 3, 4], ncols=2)
    assert isinstance(fig, Figure)
    image_axes = [ax for ax in fig.axes if ax.images]
    assert len(image_axes) == 6  # three cases x (image, overlay)
    with torch.no_grad():
        logits = module.eval()(clf.prepare_images(X.iloc[[1, 3, 4]]))
    probabilities = torch.softmax(logits, dim=1)[:, 1].numpy()
    titles = [ax.get_title() for ax in image_axes[1::2]]
    for title, patient, p in zip(titles, ["P001", "P003", "P004"], probabilities):
        assert title == f"{patient}\np(N+) = {p:.2f}"
    assert [ax.get_title() for ax in image_axes[::2]] == ["P001", "P003", "P004"]
    assert any(ax.get_label() == "<colorbar>" for ax in fig.axes)
    overlay_pixels = image_axes[1].images[0].get_array()
    assert overlay_pixels.shape == (16, 16, 3)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    assert buffer.getvalue()[:4] == b"\x89PNG"


def test_plot_gradcam_into_given_axes_and_for_torch_modules():
    module = TinyCNN()
    x = _inputs(3, 1, 16, 16)
    fig = Figure()
    axes = fig.subplots(1, 2)
    assert (
        plot_gradcam(module, x, rows=np.array([True, False, True]), show_image=False, ax=axes)
        is fig
    )
    assert [ax.get_title().split("\n")[0] for ax in axes] == ["case 0", "case 2"]
    assert axes[0].get_title().split("\n")[1].startswith("p(class 1) = ")
    with pytest.raises(ValueError, match="ax must hold 4 axes"):
        plot_gradcam(module, x, rows=[0, 1], ax=axes)
    with pytest.raises(ValueError, match="no case selected"):
        plot_gradcam(module, x, rows=[])
    with pytest.raises(ValueError, match="rows must be"):
        plot_gradcam(module, x, rows=[7])
    with pytest.raises(ValueError, match="ncols"):
        plot_gradcam(module, x, ncols=0)
    fig = plot_gradcam(module, x, class_index=0, figsize=(4, 3))
    assert tuple(fig.get_size_inches()) == (4, 3)


# ------------------------------------------------------------------------- bags (CAM + MIL)


def test_bag_explanation_pairs_each_image_with_its_cam_and_attention(bag_pipeline):
    from sklearn_alnm.explain import bag_explanation

    pipe, X, _ = bag_pipeline
    parts = bag_explanation(pipe, X.iloc[:5])
    weights = pipe[-1].attention_weights(pipe[:-1].transform(X.iloc[:5]))
    proba = pipe.predict_proba(X.iloc[:5])[:, list(pipe.classes_).index("N+")]
    for part, bag, w, p in zip(parts, X["bag"].iloc[:5], weights, proba):
        n = len(bag)
        assert part["images"].shape == (n, 1, 32, 32) and part["cams"].shape == (n, 32, 32)
        assert len(part["kinds"]) == len(part["instance_proba"]) == n
        np.testing.assert_allclose(part["weights"], w)
        assert part["weights"].sum() == pytest.approx(1.0)
        assert part["proba"] == pytest.approx(p)  # the MIL model's patient probability
    # the image model alone: no weights, the mean of the instances' probabilities
    alone = bag_explanation(pipe[0], X.iloc[:2])
    assert alone[0]["weights"] is None
    assert alone[0]["proba"] == pytest.approx(alone[0]["instance_proba"].mean())
    with pytest.raises(TypeError, match="MultiTaskSegClassifier"):
        bag_explanation(object(), X)


def test_plot_bag_cam_draws_one_row_per_patient(bag_pipeline):
    from sklearn_alnm.explain import plot_bag_cam

    pipe, X, _ = bag_pipeline
    longest = max(len(b) for b in X["bag"].iloc[:3])
    fig = plot_bag_cam(pipe, X, rows=[0, 1, 2])
    axes = [a for a in fig.axes if a.get_label() != "<colorbar>"]
    assert len(axes) == 3 * min(longest, 6)
    titles = [a.get_title() for a in axes if a.get_title()]
    assert sum(len(b) for b in X["bag"].iloc[:3]) == len(titles)
    assert all(", w " in t and ": p " in t for t in titles)
    assert X["patient_id"].iloc[0] in axes[0].get_ylabel()
    narrow = plot_bag_cam(pipe[0], X, rows=[0], max_instances=1)
    assert len([a for a in narrow.axes if a.get_label() != "<colorbar>"]) == 1


# ------------------------------------------------------- the default layer is chosen by grid


def _caption(fig):
    return fig.get_supxlabel() if hasattr(fig, "get_supxlabel") else fig._supxlabel.get_text()


def test_default_layer_is_the_deepest_stage_with_a_fine_grid():
    from sklearn_alnm.nn import build_backbone

    net = build_backbone("resnet18", num_classes=2, seed=0).eval()
    small, large = _inputs(2, 3, 64, 64), _inputs(1, 3, 224, 224)
    # at 64 px layer4 is 2 x 2 and layer3 4 x 4: layer2 (8 x 8) is the deepest fine map
    np.testing.assert_allclose(
        grad_cam(net, small), grad_cam(net, small, target_layer="net.layer2")
    )
    assert "net.layer2: 8 x 8 cells" in _caption(plot_gradcam(net, small))
    # at 224 px the last stage is 7 x 7 and stays the default
    np.testing.assert_allclose(
        grad_cam(net, large), grad_cam(net, large, target_layer="net.layer4")
    )
    assert "net.layer4: 7 x 7 cells" in _caption(plot_gradcam(net, large))
    # an explicit layer is used as given
    assert "net.layer4: 2 x 2 cells" in _caption(
        plot_gradcam(net, small, target_layer="net.layer4")
    )


def _half_lesion_images(n, side, rng, size=64):
    """Noise with one striped disk per image on the given half: horizontal stripes (N+) or
    vertical ones (N0), so that only the lesion, not the image's statistics, tells them apart
    (same mean and spread either way, also after each image's z-score)."""
    yy, xx = np.mgrid[:size, :size]
    images, labels = [], []
    for i in range(n):
        label = i % 2
        cx = rng.integers(12, 20) if side == "left" else rng.integers(size - 20, size - 12)
        cy = rng.integers(16, size - 16)
        disk = (yy - cy) ** 2 + (xx - cx) ** 2 <= 8**2
        image = rng.normal(0.3, 0.05, (size, size))
        stripes = (yy // 2) % 2 if label else (xx // 2) % 2
        image[disk] = np.where(stripes, 0.9, 0.5)[disk]
        images.append(np.clip(image, 0, 1).astype(np.float32))
        labels.append(label)
    return images, np.array(labels)


def test_grad_cam_follows_the_lesion_from_one_half_of_the_image_to_the_other():
    """Regression: at 64 px ResNet18's last stage is 2 x 2 and every map was the same corner
    blob; on the default (finer) layer the map moves with the lesion."""
    from sklearn_alnm.models import ImageClassifier

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    left, y_left = _half_lesion_images(60, "left", rng)
    right, y_right = _half_lesion_images(60, "right", rng)
    X = pd.DataFrame({"image": left + right})
    y = np.concatenate([y_left, y_right])
    model = ImageClassifier(
        "image",
        backbone="resnet18",
        input_size=64,
        normalize="zscore",
        augment=None,
        max_epochs=6,
        lr=1e-3,
        batch_size=16,
        random_state=0,
    ).fit(X, y)
    test_left, yl = _half_lesion_images(10, "left", np.random.default_rng(1))
    test_right, yr = _half_lesion_images(10, "right", np.random.default_rng(2))
    for images, labels, side in ((test_left, yl, "left"), (test_right, yr, "right")):
        positives = pd.DataFrame({"image": [im for im, t in zip(images, labels) if t == 1]})
        heat = grad_cam(model, positives)
        # the column where the map is hottest (lesion centres: x in 12-20 or 44-52)
        peak = heat.mean(axis=1).argmax(axis=1)
        if side == "left":
            assert np.mean(peak < 32) >= 0.8, peak
        else:
            assert np.mean(peak >= 32) >= 0.8, peak
