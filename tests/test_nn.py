import pickle
import re

import pytest
import torch
import torchvision
from torch import nn
from torchvision.models import (
    GoogLeNet_Weights,
    ResNet18_Weights,
    ResNet50_Weights,
    Weights,
    WeightsEnum,
)
from torchvision.models.vision_transformer import VisionTransformer

from sklearn_alnm.nn import (
    MIT_CHANNELS,
    Backbone,
    BackboneSpec,
    DeepLabV3Net,
    MaskRCNNNet,
    MiTNet,
    PLNet,
    ULNet,
    UNet,
    UNetPlusPlus,
    UNetTrunk,
    WeightsNotAvailableError,
    _backbones,
    _plnet,
    adapt_conv_weight,
    available_backbones,
    build_backbone,
    build_deeplabv3,
    build_maskrcnn,
    get_backbone_spec,
    hub_checkpoint_path,
    plnet_spec,
    read_state_dict,
    register_backbone,
    resolve_weights,
    state_dict_fingerprint,
    unregister_backbone,
)

# The backbones named by the published studies, and the other ones the library promises.
STUDY_BACKBONES = {
    "resnet18",
    "resnet50",
    "resnet101",
    "densenet121",
    "vgg19",
    "inception_v3",
    "googlenet",
    "squeezenet1_1",
    "vit_b_16",
}
PROMISED = STUDY_BACKBONES | {
    "resnet34",
    "vgg16",
    "vgg16_bn",
    "vgg19_bn",
    "efficientnet_b0",
    "mobilenet_v3_large",
    "swin_t",
    "mit_b0",
    "unet",
}


def _inputs(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _embed(model, x):
    with torch.inference_mode():
        return model.eval().forward_features(x)


@pytest.fixture
def hub_dir(tmp_path, monkeypatch):
    """An empty torch hub cache; returns its checkpoints folder (not created)."""
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch" / "hub" / "checkpoints"


@pytest.fixture(scope="module")
def vit32():
    return build_backbone("vit_b_16", input_size=32, seed=0).eval()


# ------------------------------------------------------------------------------- registry


def test_registry_lists_every_promised_backbone():
    names = available_backbones()
    assert PROMISED <= set(names)
    assert names == sorted(names)


@pytest.mark.parametrize("name", available_backbones())
def test_every_backbone_builds_and_gives_its_declared_dimensions(name):
    spec = get_backbone_spec(name)
    size = spec.min_input_size
    model = build_backbone(
        name, num_classes=3, seed=0, input_size=size if spec.fixed_input_size else None
    ).eval()
    x = _inputs(1, 3, size, size)
    maps, head_inputs = [], []
    layer = model.get_submodule(model.gradcam_layer)
    hooks = [
        layer.register_forward_hook(lambda module, args, out: maps.append(out)),
        model.head.register_forward_hook(lambda module, args, out: head_inputs.append(args[0])),
    ]
    with torch.inference_mode():
        logits = model(x)
        expected_logits = model.head(head_inputs[0])
    for hook in hooks:
        hook.remove()

    embedding = head_inputs[0]
    assert embedding.shape == (1, spec.embedding_dim)
    assert model.feature_dim == spec.embedding_dim
    assert torch.isfinite(embedding).all()
    assert logits.shape == (1, 3)
    torch.testing.assert_close(logits, expected_logits)
    assert isinstance(model.head, nn.Linear) and model.head.in_features == spec.embedding_dim
    conv = model.get_submodule(f"net.{spec.first_conv}")
    assert isinstance(conv, nn.Conv2d) and conv.in_channels == 3
    # the Grad-CAM layer is a spatial stage: feature maps for CNNs, patch tokens for ViT
    if spec.family == "vit":
        assert maps[0].shape == (1, 1 + (size // spec.patch_size) ** 2, spec.embedding_dim)
    else:
        assert maps[0].ndim == 4 and maps[0].shape[0] == 1
    # auxiliary heads are gone, so training mode also returns one tensor
    if spec.aux_heads:
        assert all(getattr(model.net, aux) is None for aux in spec.aux_heads)
        assert isinstance(model.train()(_inputs(2, 3, size, size)), torch.Tensor)


def test_names_are_case_insensitive_and_unknown_names_list_the_valid_ones():
    assert get_backbone_spec("ResNet18").name == "resnet18"
    with pytest.raises(ValueError, match="Did you mean 'resnet18'") as info:
        build_backbone("resnet19")
    for name in ("resnet18", "vit_b_16", "densenet121"):
        assert repr(name) in str(info.value)
    with pytest.raises(TypeError, match="str"):
        get_backbone_spec(18)


def test_input_size_constraints():
    assert get_backbone_spec("inception_v3").min_input_size == 75
    with pytest.raises(ValueError, match="at least 75x75"):
        Backbone("inception_v3", input_size=64)
    with pytest.raises(ValueError, match="multiple of its patch size 16"):
        Backbone("vit_b_16", input_size=40)
    with pytest.raises(ValueError, match="square"):
        Backbone("vit_b_16", input_size=(32, 48))
    with pytest.raises(ValueError, match="int or a"):
        Backbone("resnet18", input_size=(32, 32, 3))
    model = build_backbone("resnet18", seed=0)
    with pytest.raises(ValueError, match="at least 32x32 pixels; got 16x40"):
        model(torch.zeros(1, 3, 16, 40))
    with pytest.raises(ValueError, match=r"shape \(N, 3, H, W\)"):
        model(torch.zeros(1, 1, 32, 32))


def test_vit_accepts_only_the_size_it_was_built_for(vit32):
    assert vit32.input_size == (32, 32)
    assert _embed(vit32, _inputs(2, 3, 32, 32)).shape == (2, 768)
    with pytest.raises(ValueError, match="built for 32x32 inputs"):
        _embed(vit32, torch.zeros(1, 3, 48, 48))
    assert get_backbone_spec("vit_b_16").default_input_size == 224


def test_bad_arguments():
    with pytest.raises(ValueError, match="in_chans must be a positive int"):
        Backbone("resnet18", in_chans=0)
    with pytest.raises(ValueError, match="num_classes must be a positive int"):
        Backbone("resnet18", num_classes=True)
    with pytest.raises(ValueError, match="dropout"):
        Backbone("resnet18", num_classes=2, dropout=1.0)


def test_dropout_goes_in_front_of_the_new_head():
    model = build_backbone("squeezenet1_1", num_classes=2, dropout=0.3, seed=0)
    assert isinstance(model.head[0], nn.Dropout) and model.head[0].p == 0.3
    assert model.head[1].out_features == 2
    assert isinstance(build_backbone("squeezenet1_1").head, nn.Identity)


# ---------------------------------------------------------------------- seeding, pickling


def test_seed_makes_initialisation_reproducible_without_touching_the_global_generator():
    before = torch.get_rng_state()
    a = build_backbone("resnet18", num_classes=2, seed=0)
    b = build_backbone("resnet18", num_classes=2, seed=0)
    c = build_backbone("resnet18", num_classes=2, seed=1)
    assert torch.equal(before, torch.get_rng_state())
    assert state_dict_fingerprint(a) == state_dict_fingerprint(b)
    assert state_dict_fingerprint(a) != state_dict_fingerprint(c)


def test_fingerprint_sees_a_single_changed_value():
    model = build_backbone("squeezenet1_1", seed=0)
    before = state_dict_fingerprint(model)
    assert re.fullmatch(r"[0-9a-f]{64}", before)
    with torch.no_grad():
        model.net.features[0].bias[0] += 1e-3
    assert state_dict_fingerprint(model) != before
    assert state_dict_fingerprint(model.state_dict()) == state_dict_fingerprint(model)


def test_backbone_pickles_with_its_weights():
    model = build_backbone("resnet18", num_classes=2, seed=0).eval()
    copy = pickle.loads(pickle.dumps(model))
    x = _inputs(2, 3, 32, 32)
    with torch.inference_mode():
        assert torch.equal(model(x), copy(x))
    assert copy.spec is not None and copy.gradcam_layer == "net.layer4"


# --------------------------------------------------------------------------- input channels


@pytest.mark.parametrize("name", ["resnet18", "squeezenet1_1"])
def test_one_channel_equals_the_gray_image_replicated_to_rgb(name):
    rgb = build_backbone(name, seed=0)
    gray = build_backbone(name, in_chans=1, seed=0)
    conv = gray.get_submodule(f"net.{gray.spec.first_conv}")
    assert conv.in_channels == 1
    x = _inputs(2, 1, 32, 32)
    torch.testing.assert_close(
        _embed(gray, x), _embed(rgb, x.expand(-1, 3, -1, -1)), rtol=1e-4, atol=1e-5
    )


def test_more_channels_repeat_the_rgb_kernels():
    weight = _inputs(4, 3, 3, 3)
    adapted = adapt_conv_weight(weight, 5)
    assert adapted.shape == (4, 5, 3, 3)
    torch.testing.assert_close(adapted[:, 3], weight[:, 0] * 3 / 5)
    torch.testing.assert_close(adapt_conv_weight(weight, 1), weight.sum(1, keepdim=True))
    model = build_backbone("resnet18", in_chans=5, seed=0)
    assert _embed(model, _inputs(1, 5, 32, 32)).shape == (1, 512)


# ------------------------------------------------------------- backbones for dense prediction


def test_mit_stages_have_segformers_strides_and_channels():
    net = MiTNet("mit_b0", in_chans=1, num_classes=2).eval()
    with torch.inference_mode():
        maps = net.forward_stages(_inputs(2, 1, 64, 96))
    assert [tuple(m.shape[1:]) for m in maps] == [
        (c, 64 // s, 96 // s) for c, s in zip(MIT_CHANNELS["mit_b0"], (4, 8, 16, 32))
    ]
    with pytest.raises(ValueError, match="unknown MiT encoder"):
        MiTNet("mit_b9")


def test_unet_trunk_stops_at_its_decoder_level_on_any_input_size():
    net = UNetTrunk(in_chans=1, num_classes=2, base_channels=4, depth=3, levels=1).eval()
    with torch.inference_mode():
        out = net.forward_features(_inputs(1, 1, 30, 41))  # padded to 32 x 48, cropped back
    assert tuple(out.shape) == (1, 16, 8, 11)  # stride 4, base * 2**2 channels
    model = build_backbone("unet", in_chans=1, num_classes=2, seed=0)
    assert model.feature_dim == 128 and model.gradcam_layer == "net.features"
    with pytest.raises(ValueError, match="cannot exceed depth"):
        UNetTrunk(levels=5)


def test_mobilenet_v3_is_an_alias_of_the_large_variant():
    assert get_backbone_spec("mobilenet_v3").name == "mobilenet_v3_large"


@pytest.mark.parametrize("name", ["mit_b0", "unet"])
def test_networks_without_torchvision_weights_take_checkpoints_only(tmp_path, name):
    source = build_backbone(name, in_chans=1, seed=3)
    torch.save(source.net.state_dict(), tmp_path / "net.pt")
    loaded = build_backbone(name, in_chans=1, weights=tmp_path / "net.pt", seed=4)
    x = _inputs(1, 1, 64, 64)
    assert torch.equal(_embed(loaded, x), _embed(source, x))
    with pytest.raises(ValueError, match="no torchvision pretrained weights"):
        build_backbone(name, weights="DEFAULT")


def test_swin_weights_are_resolved_offline(hub_dir):
    with pytest.raises(WeightsNotAvailableError, match="swin_t"):
        build_backbone("swin_t", weights="DEFAULT")


# ------------------------------------------------------------------ weights from the hub cache


NAMED_WEIGHTS = [
    "DEFAULT",
    "IMAGENET1K_V1",
    "ResNet18_Weights.IMAGENET1K_V1",
    "resnet18_weights.imagenet1k_v1",
    ResNet18_Weights.IMAGENET1K_V1,
]


@pytest.mark.parametrize("weights", NAMED_WEIGHTS)
def test_named_weights_missing_from_the_hub_cache_raise_a_clear_offline_error(hub_dir, weights):
    expected = hub_checkpoint_path(ResNet18_Weights.IMAGENET1K_V1)
    assert expected.parent == hub_dir
    with pytest.raises(WeightsNotAvailableError) as info:
        build_backbone("resnet18", weights=weights)
    message = str(info.value)
    assert "'resnet18-f37072fd.pth'" in message
    assert repr(str(hub_dir)) in message
    assert "never downloaded" in message and "weights=" in message
    assert ResNet18_Weights.IMAGENET1K_V1.url in message
    assert isinstance(info.value, FileNotFoundError)
    assert not expected.exists()  # nothing was fetched


def test_weights_file_in_the_hub_cache_is_loaded(hub_dir):
    reference = torchvision.models.resnet18()
    with torch.no_grad():  # distinct values, so loading is visible
        for p in reference.parameters():
            p.normal_(generator=torch.Generator().manual_seed(p.numel()))
    hub_dir.mkdir(parents=True)
    torch.save(reference.state_dict(), hub_dir / "resnet18-f37072fd.pth")

    assert resolve_weights("resnet18", "DEFAULT") is ResNet18_Weights.IMAGENET1K_V1
    model = build_backbone("resnet18", weights="IMAGENET1K_V1", num_classes=2).eval()
    assert model.weights_source == "ResNet18_Weights.IMAGENET1K_V1"
    loaded = model.net.state_dict()
    for key, value in reference.state_dict().items():
        if not key.startswith("fc."):
            assert torch.equal(loaded[key], value), key
    reference.fc = nn.Identity()
    x = _inputs(2, 3, 32, 32)
    with torch.inference_mode():
        torch.testing.assert_close(model.forward_features(x), reference.eval()(x))


def test_hub_weights_keep_torchvision_semantics_and_adapt_the_first_conv(hub_dir):
    # GoogLeNet's ImageNet weights come with auxiliary heads and transform_input=True
    reference = torchvision.models.googlenet(aux_logits=True, init_weights=True)
    hub_dir.mkdir(parents=True)
    torch.save(reference.state_dict(), hub_checkpoint_path(GoogLeNet_Weights.DEFAULT))

    rgb = build_backbone("googlenet", weights="DEFAULT", seed=0)
    assert rgb.net.transform_input is True
    assert rgb.net.aux1 is None and rgb.net.aux2 is None
    torch.testing.assert_close(rgb.net.conv1.conv.weight, reference.conv1.conv.weight)
    gray = build_backbone("googlenet", weights="DEFAULT", in_chans=1, seed=0)
    assert gray.net.transform_input is False  # defined per RGB channel
    torch.testing.assert_close(
        gray.net.conv1.conv.weight, reference.conv1.conv.weight.sum(1, keepdim=True)
    )


def test_corrupt_hub_file_is_reported(hub_dir):
    hub_dir.mkdir(parents=True)
    hub_checkpoint_path(ResNet18_Weights.DEFAULT).write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="could not load the cached weights file .*replace it"):
        build_backbone("resnet18", weights="DEFAULT")


def test_unknown_or_foreign_weights_names_list_the_valid_ones():
    with pytest.raises(ValueError, match=r"IMAGENET9.*'DEFAULT', 'IMAGENET1K_V1'"):
        resolve_weights("resnet18", "IMAGENET9")
    with pytest.raises(ValueError, match="another architecture"):
        resolve_weights("resnet18", "ResNet50_Weights.IMAGENET1K_V2")
    with pytest.raises(ValueError, match="do not belong"):
        resolve_weights("resnet18", torchvision.models.ResNet50_Weights.DEFAULT)
    with pytest.raises(TypeError, match="weights must be"):
        resolve_weights("resnet18", 3)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_weights("resnet18", "missing/resnet18.pth")


# -------------------------------------------------------------------------- checkpoint files


def _checkpoint(layout, source):
    headless = source.net.state_dict()
    if layout == "backbone":
        return source.state_dict()
    if layout == "headless":
        return headless
    if layout == "torchvision":
        return {**headless, "fc.weight": torch.zeros(1000, 512), "fc.bias": torch.zeros(1000)}
    if layout == "lightning":
        return {"state_dict": {f"model.{k}": v for k, v in headless.items()}, "epoch": 3}
    if layout == "nested_model":
        return {"model": headless, "optimizer": {"lr": 0.1}}
    if layout == "dataparallel":
        return {f"module.{k}": v for k, v in source.state_dict().items()}
    raise AssertionError(layout)


@pytest.fixture(scope="module")
def trained_resnet18():
    """A 'trained' network (seed 1) and its embedding of a fixed batch."""
    source = build_backbone("resnet18", num_classes=2, seed=1).eval()
    x = _inputs(2, 3, 32, 32)
    return source, x, _embed(source, x)


def test_a_differently_seeded_network_differs(trained_resnet18):
    _, x, expected = trained_resnet18
    assert not torch.equal(_embed(build_backbone("resnet18", seed=2), x), expected)


@pytest.mark.parametrize(
    "layout",
    ["backbone", "headless", "torchvision", "lightning", "nested_model", "dataparallel"],
)
def test_checkpoint_round_trip(tmp_path, layout, trained_resnet18):
    source, x, expected = trained_resnet18
    path = tmp_path / "model.pth"
    torch.save(_checkpoint(layout, source), path)

    assert resolve_weights("resnet18", str(path)) == path
    loaded = build_backbone("resnet18", weights=path, seed=2)
    assert loaded.weights_source == str(path)
    assert torch.equal(_embed(loaded, x), expected)


def test_rgb_checkpoint_loads_into_a_one_channel_backbone(tmp_path):
    source = build_backbone("resnet18", seed=1)
    torch.save(source.net.state_dict(), tmp_path / "rgb.pt")
    gray = build_backbone("resnet18", weights=tmp_path / "rgb.pt", in_chans=1)
    x = _inputs(2, 1, 32, 32)
    torch.testing.assert_close(
        _embed(gray, x), _embed(source, x.expand(-1, 3, -1, -1)), rtol=1e-4, atol=1e-5
    )
    torch.save(gray.state_dict(), tmp_path / "gray.pt")  # and back into one channel
    again = build_backbone("resnet18", weights=tmp_path / "gray.pt", in_chans=1)
    assert torch.equal(_embed(again, x), _embed(gray, x))
    with pytest.raises(ValueError, match=r"conv1.weight: checkpoint \(64, 1, 7, 7\)"):
        build_backbone("resnet18", weights=tmp_path / "gray.pt")


def test_legacy_densenet_keys_are_renamed(tmp_path):
    source = build_backbone("densenet121", seed=1)
    legacy = {
        re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", k): v
        for k, v in source.net.state_dict().items()
    }
    assert "features.denseblock1.denselayer1.norm.1.weight" in legacy
    torch.save(legacy, tmp_path / "densenet.pth")
    loaded = build_backbone("densenet121", weights=tmp_path / "densenet.pth")
    x = _inputs(1, 3, 32, 32)
    assert torch.equal(_embed(loaded, x), _embed(source, x))


def test_vit_position_embeddings_are_interpolated_to_another_size(tmp_path, vit32):
    torch.save(vit32.state_dict(), tmp_path / "vit.pth")
    vit48 = build_backbone("vit_b_16", weights=tmp_path / "vit.pth", input_size=48)
    assert vit48.net.encoder.pos_embedding.shape == (1, 1 + 3 * 3, 768)
    assert torch.equal(vit48.net.class_token, vit32.net.class_token)
    assert torch.equal(  # the class token's position embedding is kept as is
        vit48.net.encoder.pos_embedding[:, 0], vit32.net.encoder.pos_embedding[:, 0]
    )
    assert _embed(vit48, _inputs(1, 3, 48, 48)).shape == (1, 768)


def test_checkpoints_of_other_architectures_are_rejected_with_the_keys(tmp_path):
    other = torchvision.models.resnet34()
    torch.save(other.state_dict(), tmp_path / "resnet34.pth")
    with pytest.raises(ValueError, match="does not fit backbone 'resnet18'") as info:
        build_backbone("resnet18", weights=tmp_path / "resnet34.pth")
    assert "unexpected key(s): layer1.2." in str(info.value)
    assert "resnet34.pth" in str(info.value)

    state = build_backbone("resnet18", seed=0).net.state_dict()
    del state["layer4.1.bn2.weight"]
    state["conv1.weight"] = torch.zeros(64, 3, 5, 5)
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(ValueError) as info:
        build_backbone("resnet18", weights=tmp_path / "broken.pth")
    message = str(info.value)
    assert "1 missing key(s): layer4.1.bn2.weight" in message
    assert "1 shape mismatch(es): conv1.weight: checkpoint (64, 3, 5, 5), model (64, 3, 7, 7)" in (
        message
    )


def test_checkpoints_without_batchnorm_counters_load(tmp_path):
    source = build_backbone("resnet18", seed=1)
    state = {k: v for k, v in source.net.state_dict().items() if "num_batches_tracked" not in k}
    torch.save(state, tmp_path / "old.pth")
    loaded = build_backbone("resnet18", weights=tmp_path / "old.pth")
    x = _inputs(1, 3, 32, 32)
    assert torch.equal(_embed(loaded, x), _embed(source, x))


def test_files_that_hold_no_state_dict_are_reported(tmp_path):
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(ValueError, match="does not hold a state dict"):
        build_backbone("resnet18", weights=tmp_path / "list.pt")
    torch.save({"epoch": 3, "config": {"lr": 0.1}}, tmp_path / "meta.pt")
    with pytest.raises(ValueError, match=r"does not hold a state dict.*keys \['config', 'epoch'\]"):
        read_state_dict(tmp_path / "meta.pt")
    (tmp_path / "garbage.pth").write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match="could not read checkpoint .*garbage.pth"):
        build_backbone("resnet18", weights=tmp_path / "garbage.pth")


# ------------------------------------------------------------------------ custom registrations


def _tiny_cnn(weights=None, progress=True):
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 10),
    )


@pytest.fixture
def scratch_registry(monkeypatch):
    monkeypatch.setattr(_backbones, "_REGISTRY", dict(_backbones._REGISTRY))


def test_a_new_backbone_is_one_registry_entry(scratch_registry, tmp_path):
    spec = BackboneSpec(
        "tiny_cnn", _tiny_cnn, 8, head="4", first_conv="0", gradcam_layer="1", min_input_size=4
    )
    assert register_backbone(spec) is spec
    assert "tiny_cnn" in available_backbones()
    model = build_backbone("tiny_cnn", num_classes=2, in_chans=1, seed=0).eval()
    assert model(torch.zeros(3, 1, 8, 8)).shape == (3, 2)
    copy = pickle.loads(pickle.dumps(model))
    assert torch.equal(copy(torch.ones(1, 1, 8, 8)), model(torch.ones(1, 1, 8, 8)))
    torch.save(model.state_dict(), tmp_path / "tiny.pt")
    reloaded = build_backbone("tiny_cnn", weights=tmp_path / "tiny.pt", in_chans=1)
    torch.testing.assert_close(reloaded.net[0].weight, model.net[0].weight)
    with pytest.raises(ValueError, match="no torchvision pretrained weights"):
        build_backbone("tiny_cnn", weights="DEFAULT")

    with pytest.raises(ValueError, match="already registered"):
        register_backbone(spec)
    register_backbone(spec, overwrite=True)
    unregister_backbone("TINY_CNN")
    assert "tiny_cnn" not in available_backbones()
    with pytest.raises(ValueError, match="unknown backbone 'tiny_cnn'"):
        unregister_backbone("tiny_cnn")
    with pytest.raises(ValueError, match="lower-case"):
        register_backbone(BackboneSpec("Tiny CNN", _tiny_cnn, 8, "4", "0", "1"))
    with pytest.raises(TypeError, match="BackboneSpec"):
        register_backbone("tiny_cnn")


def _tiny_vit(weights=None, progress=True, image_size=32):
    if weights is not None:
        image_size = weights.meta["min_size"][0]
    net = VisionTransformer(
        image_size, 16, num_layers=1, num_heads=2, hidden_dim=8, mlp_dim=16, num_classes=10
    )
    if weights is not None:
        net.load_state_dict(weights.get_state_dict(progress=progress, check_hash=True))
    return net


class _TinyViTWeights(WeightsEnum):
    V1 = Weights(
        url="https://example.invalid/tiny_vit-0a1b2c3d.pth",
        transforms=None,
        meta={"min_size": (32, 32)},
    )
    DEFAULT = V1


def test_custom_weights_enum_and_resizing_a_pretrained_fixed_size_network(
    scratch_registry, hub_dir
):
    register_backbone(
        BackboneSpec(
            "tiny_vit",
            _tiny_vit,
            8,
            head="heads.head",
            first_conv="conv_proj",
            gradcam_layer="encoder.layers.encoder_layer_0.ln_1",
            weights_enum=_TinyViTWeights,
            family="vit",
            min_input_size=16,
            default_input_size=32,
            fixed_input_size=True,
            size_kwarg="image_size",
            patch_size=16,
            adapt_state_dict=_backbones._vit_position_embeddings,
        )
    )
    with pytest.raises(WeightsNotAvailableError, match="'tiny_vit-0a1b2c3d.pth'"):
        build_backbone("tiny_vit", weights="V1")

    with torch.random.fork_rng():
        torch.manual_seed(0)
        reference = _tiny_vit(image_size=32)
    hub_dir.mkdir(parents=True)
    torch.save(reference.state_dict(), hub_checkpoint_path(_TinyViTWeights.V1))

    native = build_backbone("tiny_vit", weights="DEFAULT")
    assert native.input_size == (32, 32)
    assert native.weights_source == "_TinyViTWeights.V1"
    assert torch.equal(native.net.encoder.pos_embedding, reference.encoder.pos_embedding)

    larger = build_backbone("tiny_vit", weights="DEFAULT", input_size=48, in_chans=1)
    assert larger.input_size == (48, 48)
    assert larger.net.encoder.pos_embedding.shape == (1, 1 + 3 * 3, 8)
    torch.testing.assert_close(
        larger.net.conv_proj.weight, reference.conv_proj.weight.sum(1, keepdim=True)
    )
    assert _embed(larger, _inputs(2, 1, 48, 48)).shape == (2, 8)


# ------------------------------------------------- the fusion study's networks: PLNet, ULNet


@pytest.mark.parametrize("name, dim", [("plnet", 256), ("ulnet", 2048)])
@pytest.mark.parametrize("in_chans", [1, 3])
def test_study_networks_give_embeddings_and_logits_on_any_channels(name, dim, in_chans):
    embed = build_backbone(name, in_chans=in_chans, seed=0)
    model = build_backbone(name, in_chans=in_chans, num_classes=2, dropout=0.25, seed=0)
    assert embed.feature_dim == dim
    assert embed.get_submodule(f"net.{embed.spec.first_conv}").in_channels == in_chans
    assert isinstance(model.head[0], nn.Dropout) and model.head[0].p == 0.25
    for size in (32, 64):
        x = _inputs(2, in_chans, size, size)
        out = _embed(embed, x)
        assert out.shape == (2, dim)
        assert torch.isfinite(out).all() and out.std() > 0
        with torch.inference_mode():
            logits = model.eval()(x)
            assert logits.shape == (2, 2)
            torch.testing.assert_close(logits, model.head(model.forward_features(x)))
        # the same seed gives the same trunk with and without a head
        torch.testing.assert_close(_embed(model, x), out)


def test_plnet_architecture_four_blocks_of_growing_filters():
    model = build_backbone("plnet", seed=0)
    net = model.net
    assert isinstance(net, PLNet) and net.channels == (32, 64, 128, 256)
    blocks = [net.features.get_submodule(f"block{i}") for i in range(1, 5)]
    assert [b.conv2.out_channels for b in blocks] == [32, 64, 128, 256]
    for block in blocks:  # conv-BN-ReLU-conv-BN-ReLU, spatial size kept, then 2x2 max-pool
        assert [type(m) for m in block] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU] * 2
        assert block.conv1.kernel_size == (3, 3) and block.conv1.padding == (1, 1)
    assert [type(net.features.get_submodule(f"pool{i}")) for i in range(1, 5)] == [nn.MaxPool2d] * 4
    assert isinstance(net.fc, nn.Identity)  # the registry's head replaces it
    # the Grad-CAM layer is the last conv block, before its pooling: stride 8
    assert model.gradcam_layer == "net.features.block4"
    maps = []
    hook = model.get_submodule(model.gradcam_layer).register_forward_hook(
        lambda module, args, out: maps.append(out)
    )
    _embed(model, _inputs(1, 3, 64, 64))
    hook.remove()
    assert maps[0].shape == (1, 256, 8, 8)
    spec = get_backbone_spec("plnet")
    assert spec.min_input_size == 16 and spec.weights_enum is None and spec.family == "plnet"
    assert _embed(model, _inputs(1, 3, 16, 16)).shape == (1, 256)
    with pytest.raises(ValueError, match="at least 16x16"):
        _embed(model, _inputs(1, 3, 8, 8))


def test_plnet_module_on_its_own_and_its_options():
    net = PLNet(in_chans=1, num_classes=3, channels=(4, 8), convs_per_block=1, dropout=0.5)
    assert net.embedding_dim == 8 and net.dropout.p == 0.5
    assert [type(m) for m in net.features.block1] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]
    x = _inputs(2, 1, 20, 20)
    assert net.eval()(x).shape == (2, 3) and net.forward_features(x).shape == (2, 8)
    for bad in ((), (4, 0), (4, 8.5), "abc", 16):
        with pytest.raises(ValueError, match="channels must be"):
            PLNet(channels=bad)
    with pytest.raises(ValueError, match="convs_per_block"):
        PLNet(convs_per_block=0)
    with pytest.raises(ValueError, match="dropout"):
        PLNet(dropout=1.0)


def test_plnet_variants_are_registered_with_plnet_spec(scratch_registry, tmp_path):
    spec = plnet_spec("plnet_small", channels=(8, 16, 32), convs_per_block=1)
    assert (spec.embedding_dim, spec.min_input_size) == (32, 8)
    assert spec.gradcam_layer == "features.block3"
    register_backbone(spec)
    model = build_backbone("plnet_small", in_chans=1, num_classes=2, seed=0).eval()
    assert model(_inputs(2, 1, 8, 8)).shape == (2, 2)
    assert model.get_submodule("net.features.block1").conv1.out_channels == 8
    copy = pickle.loads(pickle.dumps(model))  # the spec's partial builder pickles
    x = _inputs(1, 1, 32, 32)
    assert torch.equal(copy(x), model(x))
    torch.save(model.state_dict(), tmp_path / "small.pt")
    again = build_backbone("plnet_small", weights=tmp_path / "small.pt", in_chans=1)
    assert torch.equal(_embed(again, x), _embed(model, x))
    assert plnet_spec().builder is _plnet.plnet  # the default entry


def test_plnet_has_no_pretrained_weights():
    for weights in ("DEFAULT", "IMAGENET1K_V1"):
        with pytest.raises(ValueError, match="expected None or the path of a checkpoint|no torch"):
            build_backbone("plnet", weights=weights)
    with pytest.raises(ValueError, match="do not belong"):
        build_backbone("plnet", weights=ResNet18_Weights.DEFAULT)
    with pytest.raises(ValueError, match="PLNet has no pretrained weights"):
        _plnet.plnet(weights=ResNet18_Weights.DEFAULT)


@pytest.mark.parametrize(
    "name, layout",
    [
        ("plnet", "backbone"),
        ("plnet", "headless"),
        ("plnet", "dataparallel"),
        ("ulnet", "backbone"),
    ],
)
def test_study_network_checkpoint_round_trip(tmp_path, name, layout):
    source = build_backbone(name, in_chans=1, num_classes=2, seed=1).eval()
    state = {
        "backbone": source.state_dict(),
        "headless": source.net.state_dict(),
        "dataparallel": {f"module.{k}": v for k, v in source.state_dict().items()},
    }[layout]
    torch.save(state, tmp_path / "model.pth")
    loaded = build_backbone(name, weights=tmp_path / "model.pth", in_chans=1, seed=2)
    assert loaded.weights_source == str(tmp_path / "model.pth")
    x = _inputs(2, 1, 32, 32)
    assert torch.equal(_embed(loaded, x), _embed(source, x))
    other = "plnet" if name == "ulnet" else "ulnet"
    with pytest.raises(ValueError, match=f"does not fit backbone '{other}'"):
        build_backbone(other, weights=tmp_path / "model.pth")


def test_ulnet_is_the_resnet50_trunk_with_a_dropout_head(tmp_path):
    spec = get_backbone_spec("ulnet")
    assert spec.weights_enum is torchvision.models.ResNet50_Weights
    assert (spec.head, spec.first_conv, spec.gradcam_layer) == ("fc", "conv1", "layer4")
    # the same parameters as ResNet50: its checkpoints load both ways
    resnet50 = build_backbone("resnet50", seed=3)
    torch.save(resnet50.state_dict(), tmp_path / "resnet50.pth")
    loaded = build_backbone("ulnet", weights=tmp_path / "resnet50.pth")
    x = _inputs(1, 3, 32, 32)
    assert torch.equal(_embed(loaded, x), _embed(resnet50, x))
    assert loaded.gradcam_layer == "net.layer4"
    # ULNet as a module: ResNet50 + Sequential(Dropout, Linear)
    net = ULNet(num_classes=2, dropout=0.3, in_chans=1)
    assert isinstance(net.fc[0], nn.Dropout) and net.fc[0].p == 0.3
    assert net.fc[1].in_features == 2048 == net.embedding_dim
    assert net.conv1.in_channels == 1
    assert net.eval()(x[:, :1]).shape == (1, 2)
    trunk = {k: v.shape for k, v in net.state_dict().items() if not k.startswith("fc.")}
    reference = resnet50.net.state_dict()
    assert trunk == {k: v.shape for k, v in reference.items() if k != "conv1.weight"} | {
        "conv1.weight": (64, 1, 7, 7)
    }


def test_ulnet_takes_resnet50_weights_names_from_the_hub_cache(hub_dir):
    with pytest.raises(WeightsNotAvailableError, match="resnet50-11ad3fa6.pth"):
        build_backbone("ulnet", weights="DEFAULT")
    with pytest.raises(WeightsNotAvailableError, match="resnet50-0676ba61.pth"):
        resolve_weights("ulnet", "IMAGENET1K_V1")
    with pytest.raises(ValueError, match="another architecture"):
        resolve_weights("ulnet", "ResNet18_Weights.IMAGENET1K_V1")

    reference = torchvision.models.resnet50()
    with torch.no_grad():
        reference.conv1.weight.normal_(generator=torch.Generator().manual_seed(0))
    hub_dir.mkdir(parents=True)
    torch.save(reference.state_dict(), hub_checkpoint_path(ResNet50_Weights.IMAGENET1K_V2))
    model = build_backbone("ulnet", weights="ResNet50_Weights.DEFAULT", in_chans=1)
    assert model.weights_source == "ResNet50_Weights.IMAGENET1K_V2"
    torch.testing.assert_close(model.net.conv1.weight, reference.conv1.weight.sum(1, keepdim=True))
    torch.testing.assert_close(model.net.layer4[2].bn3.bias, reference.layer4[2].bn3.bias)


# ------------------------------------------------------------------ segmentation networks


def _disks(n=4, size=32, seed=0):
    """Bright disks on a dark, noisy background: (images (n, 1, s, s), masks (n, 1, s, s))."""
    g = torch.Generator().manual_seed(seed)
    rows, cols = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    images, masks = [], []
    for _ in range(n):
        centre = torch.randint(10, size - 10, (2,), generator=g)
        radius = int(torch.randint(4, 8, (1,), generator=g))
        mask = ((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius**2).float()
        images.append(0.2 + 0.6 * mask + 0.05 * torch.randn(size, size, generator=g))
        masks.append(mask)
    return torch.stack(images)[:, None], torch.stack(masks)[:, None]


@pytest.mark.parametrize(
    "in_chans, size, upsample",
    [
        (1, (32, 32), "transpose"),
        (1, (45, 37), "transpose"),
        (3, (45, 37), "bilinear"),
        (3, (64, 48), "transpose"),
        (1, (7, 5), "bilinear"),  # smaller than 2**depth: padded
    ],
)
def test_unet_logits_are_on_the_input_grid(in_chans, size, upsample):
    net = UNet(in_chans, 2, base_channels=4, depth=3, upsample=upsample).eval()
    with torch.no_grad():
        out = net(_inputs(2, in_chans, *size))
    assert out.shape == (2, 2, *size) and torch.isfinite(out).all()


def test_unet_architecture():
    net = UNet(1, 3, base_channels=8, depth=4, dropout=0.2)
    widths = [block[0].out_channels for block in net.encoder]
    assert widths == [8, 16, 32, 64, 128]
    assert [up.out_channels for up in net.upsamplers] == [64, 32, 16, 8]
    assert all(isinstance(up, nn.ConvTranspose2d) for up in net.upsamplers)
    assert [block[0].in_channels for block in net.decoder] == [128, 64, 32, 16]
    assert net.head.out_channels == 3 and net.head.kernel_size == (1, 1)
    assert isinstance(net.encoder[-1][-1], nn.Dropout2d) and net.encoder[-1][-1].p == 0.2
    assert not any(isinstance(m, nn.Dropout2d) for m in net.encoder[:-1].modules())
    plain = UNet(1, 1, base_channels=8, depth=2, batch_norm=False, upsample="bilinear")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())
    assert all(isinstance(up[0], nn.Upsample) for up in plain.upsamplers)


def test_unet_pads_odd_inputs_and_crops_the_logits_back():
    net = UNet(1, 1, base_channels=4, depth=2).eval()
    x = _inputs(1, 1, 45, 37)
    padded = nn.functional.pad(x, (1, 2, 1, 2), mode="replicate")  # to 48 x 40
    with torch.no_grad():
        torch.testing.assert_close(net(x), net(padded)[..., 1:46, 1:38])


def test_unet_plus_plus_nested_nodes_and_shapes():
    net = UNetPlusPlus(3, 2, base_channels=4, depth=3)
    assert sorted(net.nodes) == sorted(
        f"x{i}_{j}" for j in range(4) for i in range(4 - j)
    )  # 10 nodes
    # X^{i,j} sees j nodes of its level (4 * 2**i channels each) and the node below
    assert net.nodes["x0_2"][0].in_channels == 2 * 4 + 8
    assert net.nodes["x1_2"][0].in_channels == 2 * 8 + 16
    assert net.nodes["x0_3"][0].in_channels == 3 * 4 + 8
    assert net.nodes["x3_0"][0].in_channels == 16 and len(net.heads) == 1
    for size in [(32, 32), (45, 37)]:
        with torch.no_grad():
            assert net.eval()(_inputs(2, 3, *size)).shape == (2, 2, *size)


def test_unet_plus_plus_deep_supervision_list_in_training_mean_in_eval():
    net = UNetPlusPlus(1, 1, base_channels=4, depth=3, deep_supervision=True, batch_norm=False)
    assert len(net.heads) == 3
    x = _inputs(2, 1, 45, 37)
    with torch.no_grad():
        heads = net.train()(x)
        assert isinstance(heads, list) and [h.shape for h in heads] == [(2, 1, 45, 37)] * 3
        torch.testing.assert_close(net.eval()(x), torch.stack(heads).mean(0))
    single = UNetPlusPlus(1, 1, base_channels=4, depth=2)
    assert torch.is_tensor(single.train()(x)) and torch.is_tensor(single.eval()(x))


@pytest.mark.parametrize(
    "make",
    [
        lambda: UNet(base_channels=4, depth=2),
        lambda: UNetPlusPlus(base_channels=4, depth=2, deep_supervision=True),
    ],
    ids=["unet", "unet++"],
)
def test_segmentation_networks_learn_a_disk(make):
    x, y = _disks()
    torch.manual_seed(0)
    net = make().train()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    loss_fn = nn.BCEWithLogitsLoss()
    losses = []
    for _ in range(40):
        out = net(x)
        outputs = out if isinstance(out, list) else [out]
        loss = sum(loss_fn(o, y) for o in outputs) / len(outputs)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    with torch.no_grad():
        out = net(x)
        logits = torch.stack(out).mean(0) if isinstance(out, list) else out
    assert logits[y == 1].mean() > logits[y == 0].mean() + 1  # the disks stand out
    assert logits[y == 1].min() > logits[y == 0].median()


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: UNet(depth=0), "depth"),
        (lambda: UNet(in_chans=0), "in_chans"),
        (lambda: UNet(num_classes=True), "num_classes"),
        (lambda: UNet(dropout=1.0), "dropout"),
        (lambda: UNet(upsample="nearest"), "upsample"),
        (lambda: UNetPlusPlus(base_channels=2.5), "base_channels"),
        (lambda: build_deeplabv3("vgg16"), "backbone"),
        (
            lambda: build_deeplabv3("resnet50", weights="DEFAULT", weights_backbone="DEFAULT"),
            "not both",
        ),
        (lambda: build_deeplabv3("resnet50", weights="IMAGENET1K_V1"), "not recognised"),
        (lambda: build_maskrcnn(num_classes=1), "num_classes"),
        (lambda: build_maskrcnn(in_chans=2), "in_chans"),
        (lambda: build_maskrcnn(version="v3"), "version"),
        (lambda: build_maskrcnn(trainable_backbone_layers=6), "trainable_backbone_layers"),
    ],
)
def test_segmentation_networks_refuse_bad_parameters(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_segmentation_networks_refuse_inputs_with_other_channels():
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\); got \(2, 3, 32, 32\)"):
        UNet(base_channels=4, depth=2)(torch.zeros(2, 3, 32, 32))
    with pytest.raises(ValueError, match="UNetPlusPlus"):
        UNetPlusPlus(base_channels=4, depth=2)(torch.zeros(32, 32))


@pytest.fixture(scope="module")
def deeplab_mobilenet():
    torch.manual_seed(0)
    return build_deeplabv3("mobilenet_v3_large", in_chans=1, num_classes=2)


def test_deeplabv3_mobilenet_returns_a_logits_tensor(deeplab_mobilenet):
    net = deeplab_mobilenet
    assert isinstance(net, DeepLabV3Net) and net.model.aux_classifier is None
    assert net.model.backbone["0"][0].in_channels == 1
    assert net.model.classifier[-1].out_channels == 2
    assert net.weights_source is None
    with torch.no_grad():
        assert net.eval()(_inputs(1, 1, 64, 64)).shape == (1, 2, 64, 64)
        assert net(_inputs(1, 1, 45, 37)).shape == (1, 2, 45, 37)
    out = net.train()(_inputs(2, 1, 64, 64))  # training needs >= 2 images (ASPP pooling BN)
    out.mean().backward()
    assert net.model.classifier[-1].weight.grad is not None
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        net(torch.zeros(1, 3, 64, 64))


@pytest.mark.slow
@pytest.mark.parametrize("backbone", ["resnet50", "resnet101"])
def test_deeplabv3_resnets_forward(backbone):
    net = build_deeplabv3(backbone, in_chans=3, num_classes=1).eval()
    assert net.model.backbone.conv1.in_channels == 3 and net.backbone == backbone
    with torch.no_grad():
        assert net(_inputs(1, 3, 64, 48)).shape == (1, 1, 64, 48)


def test_deeplabv3_weights_are_resolved_offline(hub_dir, tmp_path):
    from torchvision.models import MobileNet_V3_Large_Weights
    from torchvision.models.segmentation import (
        DeepLabV3_MobileNet_V3_Large_Weights,
        deeplabv3_mobilenet_v3_large,
    )

    with pytest.raises(WeightsNotAvailableError, match="deeplabv3_mobilenet_v3_large-fc3c493d"):
        build_deeplabv3("mobilenet_v3_large", weights="DEFAULT")
    with pytest.raises(WeightsNotAvailableError, match="mobilenet_v3_large-"):
        build_deeplabv3("mobilenet_v3_large", weights_backbone="DEFAULT")

    # torchvision's COCO / VOC file (21 classes, auxiliary head) in the hub cache
    reference = deeplabv3_mobilenet_v3_large(weights_backbone=None, num_classes=21, aux_loss=True)
    with torch.no_grad():
        reference.backbone["0"][0].weight.normal_(generator=torch.Generator().manual_seed(1))
    hub_dir.mkdir(parents=True)
    coco = DeepLabV3_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1
    torch.save(reference.state_dict(), hub_checkpoint_path(coco))
    net = build_deeplabv3("mobilenet_v3_large", weights="DEFAULT", in_chans=1, num_classes=1)
    assert net.weights_source == "DeepLabV3_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1"
    first = reference.backbone["0"][0].weight
    torch.testing.assert_close(net.model.backbone["0"][0].weight, first.sum(1, keepdim=True))
    torch.testing.assert_close(
        net.model.classifier[0].project[0].weight, reference.classifier[0].project[0].weight
    )
    assert net.model.classifier[-1].out_channels == 1 and net.model.aux_classifier is None

    # the same file given as a path; then a round trip of the built module's own state dict
    path = tmp_path / "coco.pth"
    torch.save(reference.state_dict(), path)
    from_path = build_deeplabv3("mobilenet_v3_large", weights=path, in_chans=1, num_classes=1)
    torch.testing.assert_close(from_path.model.backbone["0"][0].weight, first.sum(1, keepdim=True))
    torch.save(from_path.state_dict(), tmp_path / "own.pth")
    again = build_deeplabv3("mobilenet_v3_large", weights=tmp_path / "own.pth", num_classes=1)
    x = _inputs(1, 1, 40, 40)
    with torch.no_grad():
        torch.testing.assert_close(again.eval()(x), from_path.eval()(x))

    # a trunk checkpoint: the registry's classification backbone (any layout it accepts)
    trunk = Backbone("mobilenet_v3_large", seed=3)
    torch.save(trunk.state_dict(), tmp_path / "trunk.pth")
    net = build_deeplabv3("mobilenet_v3_large", weights_backbone=tmp_path / "trunk.pth", in_chans=3)
    torch.testing.assert_close(
        net.model.backbone["5"].block[0][0].weight, trunk.net.features[5].block[0][0].weight
    )
    assert net.weights_source == f"backbone: {tmp_path / 'trunk.pth'}"
    # a trunk name in the hub cache
    torch.save(
        trunk.net.state_dict()
        | {"classifier.3.weight": torch.zeros(1000, 1280), "classifier.3.bias": torch.zeros(1000)},
        hub_checkpoint_path(MobileNet_V3_Large_Weights.IMAGENET1K_V2),
    )
    net = build_deeplabv3("mobilenet_v3_large", weights_backbone="DEFAULT")
    torch.testing.assert_close(
        net.model.backbone["0"][0].weight, trunk.net.features[0][0].weight.sum(1, keepdim=True)
    )

    # checkpoints of other networks are refused with the offending keys
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "resnet18.pth")
    with pytest.raises(ValueError, match="does not fit the network: .*missing key"):
        build_deeplabv3("mobilenet_v3_large", weights=tmp_path / "resnet18.pth")


def _instance_targets(masks):
    targets = []
    for mask in masks[:, 0]:
        rows, cols = torch.nonzero(mask, as_tuple=True)
        box = torch.tensor([[cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]])
        targets.append(
            {"boxes": box.float(), "labels": torch.tensor([1]), "masks": mask[None].byte()}
        )
    return targets


def test_maskrcnn_losses_in_training_and_detections_in_eval():
    torch.manual_seed(0)
    net = build_maskrcnn(
        num_classes=2,
        in_chans=1,
        min_size=64,
        max_size=64,
        box_detections_per_img=3,
        rpn_post_nms_top_n_test=50,
    )
    assert isinstance(net, MaskRCNNNet) and net.weights_source is None
    heads = net.model.roi_heads
    assert heads.box_predictor.cls_score.out_features == 2
    assert heads.mask_predictor.mask_fcn_logits.out_channels == 2
    images, masks = _disks(n=2, size=64)
    losses = net.train()(images, _instance_targets(masks))  # a batch tensor is accepted
    assert set(losses) == {
        "loss_classifier",
        "loss_box_reg",
        "loss_mask",
        "loss_objectness",
        "loss_rpn_box_reg",
    }
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert net.model.backbone.body.conv1.weight.grad is not None
    with torch.no_grad():
        detections = net.eval()([images[0, :, :, :48]])  # a 64 x 48 image, as a list
    assert len(detections) == 1 and len(detections[0]["boxes"]) <= 3
    assert detections[0]["masks"].shape[1:] == (1, 64, 48)
    with pytest.raises(ValueError, match=r"\(1, H, W\)"):
        net([torch.zeros(3, 64, 64)])


@pytest.mark.slow
def test_maskrcnn_checkpoints_and_v2(hub_dir, tmp_path):
    from torchvision.models.detection import maskrcnn_resnet50_fpn
    from torchvision.ops import FrozenBatchNorm2d

    with pytest.raises(WeightsNotAvailableError, match="maskrcnn_resnet50_fpn_coco"):
        build_maskrcnn(weights="DEFAULT")
    reference = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91)
    with torch.no_grad():
        reference.backbone.body.conv1.weight.normal_(generator=torch.Generator().manual_seed(0))
    torch.save(reference.state_dict(), tmp_path / "coco.pth")
    net = build_maskrcnn(weights=tmp_path / "coco.pth", num_classes=3, min_size=64, max_size=64)
    body = net.model.backbone.body
    torch.testing.assert_close(body.conv1.weight, reference.backbone.body.conv1.weight)
    assert net.model.roi_heads.box_predictor.cls_score.out_features == 3
    assert isinstance(body.bn1, FrozenBatchNorm2d)  # as torchvision treats pretrained trunks
    assert (
        not body.layer1[0].conv1.weight.requires_grad and body.layer2[0].conv1.weight.requires_grad
    )
    # a ResNet50 trunk checkpoint (a registry Backbone's state dict)
    trunk = Backbone("resnet50", seed=1)
    torch.save(trunk.state_dict(), tmp_path / "trunk.pth")
    net = build_maskrcnn(weights_backbone=tmp_path / "trunk.pth", trainable_backbone_layers=5)
    body = net.model.backbone.body
    torch.testing.assert_close(body.layer4[0].conv2.weight, trunk.net.layer4[0].conv2.weight)
    torch.testing.assert_close(body.bn1.running_var, trunk.net.bn1.running_var)
    assert all(p.requires_grad for p in body.parameters())

    v2 = build_maskrcnn(
        version="v2",
        in_chans=3,
        min_size=64,
        max_size=64,
        box_detections_per_img=2,
        rpn_post_nms_top_n_test=20,
    ).eval()
    with torch.no_grad():
        detections = v2(_inputs(1, 3, 64, 64).clamp(0, 1))
    assert detections[0]["masks"].shape[1:] == (1, 64, 64)
