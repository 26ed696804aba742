"""Video: the temporal shifts, the video networks, the clip input and VideoClassifier."""

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
from sklearn.model_selection import GridSearchCV

from sklearn_alnm.datasets import make_alnm_cohort
from sklearn_alnm.inputs import ClipAugment, RandomResizedCropFlip, VideoInput
from sklearn_alnm.inputs._video import SegmentSampler
from sklearn_alnm.io import write_video
from sklearn_alnm.models import VideoClassifier
from sklearn_alnm.nn import (
    FrameVideoNet,
    TemporalInterlace,
    Video3DNet,
    build_video_net,
    interpolated_shift,
    temporal_shift,
)
from sklearn_alnm.utils import CohortInputError


@pytest.fixture(scope="module")
def cohort():
    X, y = make_alnm_cohort(12, modalities="video", image_size=32, random_state=0)
    return X, np.asarray(y)


def _tiny(**kwargs):
    params = dict(
        arch="tsm",
        backbone="resnet18",
        n_frames=4,
        frame_size=32,
        resize=None,
        max_epochs=1,
        batch_size=4,
        random_state=0,
        device="cpu",
    )
    params.update(kwargs)
    return VideoClassifier(**params)


# ------------------------------------------------------------------------------ the shifts


def test_temporal_shift_equals_a_hand_computed_shift_with_zero_padding():
    n, t, c = 2, 5, 16
    x = torch.randn(n * t, c, 3, 3)
    out = temporal_shift(x, t).view(n, t, c, 3, 3)
    clip = x.view(n, t, c, 3, 3)
    fold = c // 8
    expected = torch.zeros_like(clip)
    for k in range(t):
        if k + 1 < t:
            expected[:, k, :fold] = clip[:, k + 1, :fold]  # from the next frame
        if k - 1 >= 0:
            expected[:, k, fold : 2 * fold] = clip[:, k - 1, fold : 2 * fold]  # from the previous
        expected[:, k, 2 * fold :] = clip[:, k, 2 * fold :]
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("offset", [-2, -1, 0, 1, 3])
def test_interpolated_shift_with_integer_offsets_is_the_plain_shift(offset):
    x = torch.randn(2, 6, 3, 4)
    out = interpolated_shift(x, torch.full((2, 3), float(offset)))
    expected = torch.zeros_like(x)
    for k in range(6):
        if 0 <= k - offset < 6:
            expected[:, k] = x[:, k - offset]
    torch.testing.assert_close(out, expected)


def test_interpolated_shift_has_exact_gradients_for_features_and_offsets():
    x = torch.randn(2, 5, 2, 3, dtype=torch.double, requires_grad=True)
    offsets = torch.tensor([[0.3, 1.6], [-0.7, 2.2]], dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(interpolated_shift, (x, offsets))


def test_tin_starts_as_tsm_and_its_gradients_reach_the_offset_network():
    tin = TemporalInterlace(16, n_frames=4)
    x = torch.randn(2 * 4, 16, 3, 3)
    # offsets of one frame each way and unit weights at initialisation: TSM's shift
    torch.testing.assert_close(tin(x), temporal_shift(x, 4), rtol=1e-5, atol=1e-5)
    tin(x).pow(2).sum().backward()
    assert tin.offset_fc[-1].weight.grad.abs().sum() > 0
    assert tin.weight_conv.weight.grad.abs().sum() > 0


# ---------------------------------------------------------------------------- the networks


@pytest.mark.parametrize("arch", ["tsn", "tsm", "tin"])
def test_frame_networks_take_clips_and_shift_only_inside_residual_branches(arch):
    net = build_video_net(arch, "resnet18", n_frames=4, in_chans=1, num_classes=3, seed=0)
    assert isinstance(net, FrameVideoNet)
    out = net.eval()(torch.randn(2, 1, 4, 32, 32))
    assert out.shape == (2, 3)
    shifts = [
        m for m in net.modules() if type(m).__name__ in ("TemporalShift", "TemporalInterlace")
    ]
    assert len(shifts) == (0 if arch == "tsn" else 8)  # one per residual block of ResNet18
    with pytest.raises(ValueError, match="expected clips"):
        net(torch.randn(2, 1, 5, 32, 32))


def test_tsm_mixes_frames_while_tsn_treats_them_independently():
    torch.manual_seed(0)
    clip = torch.randn(1, 1, 4, 32, 32)
    changed = clip.clone()
    changed[:, :, 3] = torch.randn(1, 1, 32, 32)  # only the last frame differs
    for arch, mixes in (("tsn", False), ("tsm", True)):
        net = build_video_net(
            arch, "resnet18", n_frames=4, in_chans=1, num_classes=2, seed=0
        ).eval()

        def frames(x, net=net):
            return net.trunk.forward_features(x.transpose(1, 2).reshape(4, 1, 32, 32))

        with torch.no_grad():
            first = frames(clip)[0]
            other = frames(changed)[0]
        assert (not torch.allclose(first, other)) is mixes


def test_3d_networks_adapt_their_stem_and_head():
    net = build_video_net("r3d_18", in_chans=1, num_classes=2, seed=0)
    assert isinstance(net, Video3DNet) and net.model.stem[0].in_channels == 1
    assert net.eval()(torch.randn(1, 1, 4, 32, 32)).shape == (1, 2)
    with pytest.raises(ValueError, match="arch must be one of"):
        build_video_net("c3d")


def test_unavailable_pretrained_weights_fail_before_any_clip_is_read(cohort):
    from sklearn_alnm.nn import WeightsNotAvailableError

    X, y = cohort
    with pytest.raises(WeightsNotAvailableError):
        _tiny(arch="r3d_18", weights="KINETICS400_V1").fit(X.assign(video=None), y)


# ---------------------------------------------------------------------------- the clip input


def test_video_input_samples_resizes_crops_and_normalises(tmp_path):
    clip = np.zeros((10, 40, 60), dtype=np.uint8)
    clip[:, 10:30, 25:35] = 200
    rgb = np.stack([clip, clip // 2, clip // 4], axis=-1)
    X = pd.DataFrame({"video": [clip, rgb]})
    clips, chans = VideoInput("video", n_frames=4, frame_size=16, resize=20).prepare(X)
    assert chans == 3 and clips.shape == (2, 3, 4, 16, 16)  # one RGB clip: every clip RGB
    assert float(clips.max()) <= 1.0 and float(clips.min()) >= 0.0
    torch.testing.assert_close(clips[0, 0], clips[0, 2])  # gray replicated
    z, _ = VideoInput("video", n_frames=4, frame_size=16, resize=None, normalize="zscore").prepare(
        X
    )
    assert abs(float(z[0].mean())) < 1e-4 and float(z[0].std()) == pytest.approx(1.0, abs=1e-2)
    segments = VideoInput("video", n_frames=4, sampling="segments", frame_size=16)
    assert segments.prepare(X)[0].shape[2] == 12
    assert segments.prepare(X, training=False)[0].shape[2] == 4


def test_clip_augmentation_moves_every_frame_of_a_clip_alike():
    torch.manual_seed(0)
    frame = torch.rand(1, 1, 1, 16, 16)
    clips = frame.expand(2, 1, 4, 16, 16).contiguous()  # every frame the same
    out = ClipAugment(brightness=0.0, contrast=0.0)(clips)
    for k in range(1, 4):
        torch.testing.assert_close(out[:, :, k], out[:, :, 0])
    sampler = SegmentSampler(4)
    candidates = torch.arange(12.0).view(1, 1, 12, 1, 1)
    picked = sampler(candidates).flatten()
    assert [int(v) // 3 for v in picked] == [0, 1, 2, 3]
    assert sampler.select_middle(candidates).flatten().tolist() == [1.0, 4.0, 7.0, 10.0]


def test_bad_cells_name_the_row_and_the_file(cohort, tmp_path):
    X, y = cohort
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    bad = X.copy()
    bad["video"] = bad["video"].astype(object)
    bad.at[bad.index[2], "video"] = str(broken)
    with pytest.raises(CohortInputError, match="broken.mp4"):
        _tiny().fit(bad, y)
    bad.at[bad.index[2], "video"] = str(tmp_path / "missing.mp4")
    with pytest.raises(CohortInputError, match="missing.mp4"):
        _tiny().fit(bad, y)
    bad.at[bad.index[2], "video"] = 3.5
    with pytest.raises(CohortInputError, match="video"):
        _tiny().fit(bad, y)


# ------------------------------------------------------------------------ VideoClassifier


def test_fit_predict_with_string_labels_weights_and_files(cohort, tmp_path):
    X, y = cohort
    paths = []
    for k, clip in enumerate(X["video"]):
        path = tmp_path / f"clip{k}.mp4"
        write_video(path, np.asarray(clip).astype(np.uint8))
        paths.append(str(path))
    on_disk = X.assign(video=paths)
    labels = np.where(y == 1, "N+", "N0")
    with pytest.raises(ValueError, match="pos_label"):
        _tiny().fit(on_disk, labels)
    clf = _tiny(arch="tin", pos_label="N+", class_weight="balanced", sampling="segments")
    clf.fit(on_disk, labels, sample_weight=np.linspace(0.5, 1.0, len(X)))
    proba = clf.predict_proba(on_disk)
    assert proba.shape == (len(X), 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert clf.pos_label_ == "N+" and clf.in_chans_ == 1
    assert set(clf.predict(on_disk)) <= {"N+", "N0"}
    assert np.isfinite(clf.history_[-1, "train_loss"])


def test_one_column_of_mixed_containers_sizes_rates_and_channels(tmp_path):
    """MP4, AVI, MOV, multi-frame DICOM and an animated GIF, gray and colour, of different
    sizes, lengths and frame rates, in one column (and beside an in-memory array)."""
    from PIL import Image

    rng = np.random.default_rng(0)

    def clip(frames, height, width, color=False):
        shape = (frames, height, width, 3) if color else (frames, height, width)
        return rng.integers(0, 256, shape).astype(np.uint8)

    cells = [
        write_video(tmp_path / "a.mp4", clip(9, 40, 48), fps=25),
        write_video(tmp_path / "b.avi", clip(6, 30, 30, color=True), fps=12),
        write_video(tmp_path / "c.mov", clip(12, 36, 44), fps=30),
        write_video(tmp_path / "d.dcm", clip(7, 32, 40, color=True), fps=20),
    ]
    frames = [Image.fromarray(f) for f in clip(5, 28, 34)]
    frames[0].save(tmp_path / "e.gif", save_all=True, append_images=frames[1:], duration=100)
    cells += [str(tmp_path / "e.gif"), clip(10, 50, 30)]
    X = pd.DataFrame({"patient_id": [f"P{k}" for k in range(6)], "video": cells})
    y = np.array(["N0", "N+", "N0", "N+", "N0", "N+"])
    clf = _tiny(pos_label="N+", cache=None, batch_size=3).fit(X, y)
    assert clf.in_chans_ == 3  # any colour clip makes the column RGB
    clips = clf.prepare_clips(X)
    assert clips.shape == (6, 3, 4, 32, 32) and torch.isfinite(clips).all()
    gray = clips[0]  # a gray clip is repeated over the three channels
    torch.testing.assert_close(gray[0], gray[1])
    torch.testing.assert_close(gray[0], gray[2])
    assert clf.predict_proba(X).shape == (6, 2)


def test_grid_search_over_arch_lr_and_frames(cohort):
    X, y = cohort
    search = GridSearchCV(
        _tiny(), {"arch": ["tsn", "tsm"], "n_frames": [2, 4]}, cv=2, scoring="roc_auc"
    ).fit(X, y)
    assert search.cv_results_["mean_test_score"].shape == (4,)
    assert clone(search.best_estimator_).get_params()["arch"] in ("tsn", "tsm")


def test_pickle_loads_and_predicts_in_a_fresh_process(cohort, tmp_path):
    X, y = cohort
    clf = _tiny(arch="r3d_18").fit(X, y)
    path = tmp_path / "video.joblib"
    joblib.dump(clf, path)
    X.to_pickle(tmp_path / "cohort.pkl")
    np.save(tmp_path / "expected.npy", clf.predict_proba(X))
    script = textwrap.dedent(
        f"""
        import joblib, numpy as np, pandas as pd
        clf = joblib.load({str(path)!r})
        X = pd.read_pickle({str(tmp_path / "cohort.pkl")!r})
        expected = np.load({str(tmp_path / "expected.npy")!r})
        np.testing.assert_allclose(clf.predict_proba(X), expected, rtol=1e-5, atol=1e-6)
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


# The fixture of mmcv's CUDA-only ``tin_shift`` test (tests/test_ops/test_tin_shift.py of
# open-mmlab/mmcv): input (N=2, T=4, C=8, HW=2), integer shifts of G=4 channel groups, and the
# published forward output for the first shift (rounded there to 5 significant digits).
_MMCV_INPUT = [
    [
        [
            [0.88572276, 0.46422583],
            [0.97408265, 0.59547687],
            [0.030812204, 0.96236038],
            [0.75418317, 0.44058233],
            [0.33279222, 0.00084149837],
            [0.7069388, 0.23255438],
            [0.13547045, 0.81549376],
            [0.40174931, 0.36317211],
        ],
        [
            [0.57444429, 0.15905505],
            [0.39897251, 0.25790238],
            [0.93282568, 0.18451685],
            [0.92526674, 0.18283755],
            [0.31664443, 0.59323865],
            [0.1957739, 0.42505842],
            [0.081158757, 0.81340349],
            [0.43456328, 0.30195212],
        ],
        [
            [0.8198145, 0.05990988],
            [0.98062474, 0.34803438],
            [0.10412294, 0.37183142],
            [0.15021622, 0.038857818],
            [0.40985721, 0.42253625],
            [0.71150124, 0.59778064],
            [0.83851069, 0.15194464],
            [0.097513378, 0.74820143],
        ],
        [
            [0.80680406, 0.49327564],
            [0.17821097, 0.12980539],
            [0.50657678, 0.14446253],
            [0.04178369, 0.53071898],
            [0.84983683, 0.3826949],
            [0.32193625, 0.91275406],
            [0.75628334, 0.52934098],
            [0.27994192, 0.3053292],
        ],
    ],
    [
        [
            [0.082397044, 0.4210068],
            [0.23563534, 0.7938987],
            [0.63669145, 0.69397897],
            [0.8844561, 0.97854084],
            [0.79027033, 0.60640401],
            [0.63528901, 0.72172403],
            [0.0097346902, 0.70800996],
            [0.87891227, 0.13674974],
        ],
        [
            [0.74329448, 0.0243572],
            [0.82178867, 0.85750699],
            [0.7568835, 0.73146772],
            [0.5031184, 0.30479157],
            [0.28713053, 0.47414285],
            [0.4682079, 0.067471564],
            [0.48368263, 0.14590704],
            [0.25397325, 0.19946373],
        ],
        [
            [0.4291026, 0.068739474],
            [0.7159555, 0.79903615],
            [0.76412082, 0.85348046],
            [0.081224024, 0.82264912],
            [0.97173303, 0.24291694],
            [0.48957139, 0.43488795],
            [0.67382395, 0.21889746],
            [0.36712623, 0.67127824],
        ],
        [
            [0.12054044, 0.18096751],
            [0.86675781, 0.54755616],
            [0.68208277, 0.15164375],
            [0.79991871, 0.80811197],
            [0.85256428, 0.68253738],
            [0.185983, 0.95642138],
            [0.48102546, 0.28009653],
            [0.35726011, 0.58168036],
        ],
    ],
]
_MMCV_SHIFT = [[1, 0, 1, -2], [-2, 1, -1, 1]]
_MMCV_OUTPUT = [
    [
        [
            [0.0, 0.0],
            [0.0, 0.0],
            [0.030812, 0.96236],
            [0.75418, 0.44058],
            [0.0, 0.0],
            [0.0, 0.0],
            [0.83851, 0.15194],
            [0.097513, 0.7482],
        ],
        [
            [0.88572, 0.46423],
            [0.97408, 0.59548],
            [0.93283, 0.18452],
            [0.92527, 0.18284],
            [0.33279, 0.0008415],
            [0.70694, 0.23255],
            [0.75628, 0.52934],
            [0.27994, 0.30533],
        ],
        [
            [0.57444, 0.15906],
            [0.39897, 0.2579],
            [0.10412, 0.37183],
            [0.15022, 0.038858],
            [0.31664, 0.59324],
            [0.19577, 0.42506],
            [0.0, 0.0],
            [0.0, 0.0],
        ],
        [
            [0.81981, 0.05991],
            [0.98062, 0.34803],
            [0.50658, 0.14446],
            [0.041784, 0.53072],
            [0.40986, 0.42254],
            [0.7115, 0.59778],
            [0.0, 0.0],
            [0.0, 0.0],
        ],
    ],
    [
        [
            [0.4291, 0.068739],
            [0.71596, 0.79904],
            [0.0, 0.0],
            [0.0, 0.0],
            [0.28713, 0.47414],
            [0.46821, 0.067472],
            [0.0, 0.0],
            [0.0, 0.0],
        ],
        [
            [0.12054, 0.18097],
            [0.86676, 0.54756],
            [0.63669, 0.69398],
            [0.88446, 0.97854],
            [0.97173, 0.24292],
            [0.48957, 0.43489],
            [0.0097347, 0.70801],
            [0.87891, 0.13675],
        ],
        [
            [0.0, 0.0],
            [0.0, 0.0],
            [0.75688, 0.73147],
            [0.50312, 0.30479],
            [0.85256, 0.68254],
            [0.18598, 0.95642],
            [0.48368, 0.14591],
            [0.25397, 0.19946],
        ],
        [
            [0.0, 0.0],
            [0.0, 0.0],
            [0.76412, 0.85348],
            [0.081224, 0.82265],
            [0.0, 0.0],
            [0.0, 0.0],
            [0.67382, 0.2189],
            [0.36713, 0.67128],
        ],
    ],
]


def test_interpolated_shift_matches_mmcv_tin_shift_forward_with_the_exact_gradient():
    x = torch.tensor(_MMCV_INPUT, dtype=torch.float64, requires_grad=True)  # (N, T, C, HW)
    shift = torch.tensor(_MMCV_SHIFT, dtype=torch.float64)
    grouped = x.view(2, 4, 4, 2, 2)  # four groups of two channels
    out = interpolated_shift(grouped, shift).reshape(2, 4, 8, 2)
    np.testing.assert_allclose(out.detach().numpy(), np.array(_MMCV_OUTPUT), rtol=1e-3, atol=1e-5)
    out.sum().backward()
    # each input frame reaches the output once when t + shift stays inside the clip, never
    # otherwise: the exact gradient (mmcv's kernel reuses the forward shift for the backward)
    t = torch.arange(4).view(1, 4, 1)
    lands = ((t + shift.long().view(2, 1, 4)) >= 0) & ((t + shift.long().view(2, 1, 4)) < 4)
    expected = lands.view(2, 4, 4, 1, 1).expand(2, 4, 4, 2, 2).reshape(2, 4, 8, 2).double()
    torch.testing.assert_close(x.grad, expected)


def test_prepared_clips_are_cached_by_content_in_memory_and_on_disk(cohort, tmp_path, monkeypatch):
    from sklearn_alnm.inputs import _video

    X, _ = cohort
    paths = []
    for k, clip in enumerate(X["video"].iloc[:3]):
        path = tmp_path / f"c{k}.mp4"
        write_video(path, np.asarray(clip).astype(np.uint8))
        paths.append(str(path))
    files = pd.DataFrame({"video": paths})
    reads = []
    original = VideoInput.read_row

    def counting(self, X, i):
        reads.append(i)
        return original(self, X, i)

    monkeypatch.setattr(VideoInput, "read_row", counting)
    for cache in ("memory", tmp_path / "cache"):
        _video._MEMORY.clear()
        reads.clear()
        first = VideoInput("video", n_frames=4, frame_size=16, resize=None, cache=cache)
        clips = first.prepare(files)[0]
        assert len(reads) == 3
        again = VideoInput("video", n_frames=4, frame_size=16, resize=None, cache=cache)
        torch.testing.assert_close(again.prepare(files)[0], clips)
        assert len(reads) == 3  # nothing decoded the second time
        other_size = VideoInput("video", n_frames=4, frame_size=8, resize=None, cache=cache)
        other_size.prepare(files)
        assert len(reads) == 6  # other settings, other entries
    assert len(list((tmp_path / "cache").rglob("*.npz"))) == 6
    # an edited file is another clip
    write_video(paths[0], np.zeros((8, 32, 32), np.uint8))
    reads.clear()
    VideoInput("video", n_frames=4, frame_size=16, resize=None, cache=tmp_path / "cache").prepare(
        files
    )
    assert reads == [0]


def test_frame_selector_writes_the_key_frame_for_a_static_model(cohort):
    from sklearn_alnm.preprocessing import FrameSelector

    X, _ = cohort
    out = FrameSelector(method="index", index=-1).fit_transform(X)
    np.testing.assert_array_equal(out["key_frame"].iloc[0], np.asarray(X["video"].iloc[0])[-1])
    middle = FrameSelector().fit_transform(X)["key_frame"].iloc[1]
    np.testing.assert_array_equal(middle, np.asarray(X["video"].iloc[1])[8])
    with pytest.raises(ValueError, match="frame 99 does not exist"):
        FrameSelector(method="index", index=99).fit_transform(X)
    with pytest.raises(ValueError, match="index is needed"):
        FrameSelector(method="index").fit(X)


@pytest.mark.parametrize("arch", ["tsm", "r3d_18"])
def test_grad_cam_of_a_video_model_is_a_map_over_time_and_space(cohort, arch):
    from sklearn_alnm.explain import grad_cam, key_frames

    X, y = cohort
    clf = _tiny(arch=arch).fit(X, y)
    heat = grad_cam(clf, X.iloc[:3])
    assert heat.shape == (3, 4, 32, 32) and heat.dtype == np.float32
    assert float(heat.min()) >= 0.0 and float(heat.max()) <= 1.0
    frames = key_frames(heat)
    assert frames.shape == (3,) and set(frames.tolist()) <= set(range(4))
    assert clf.prepare_clips(X.iloc[:3]).shape == (3, 1, 4, 32, 32)


class _LinearClipModel(torch.nn.Module):
    """Logits ``(-sum, sum)`` of a clip, hooked on its input: the Grad-CAM map is the clip itself
    (gradients of one sign), so the key frame is the brightest frame."""

    def __init__(self):
        super().__init__()
        self.features = torch.nn.Identity()
        self.gradcam_layer = "features"

    def forward(self, x):
        total = self.features(x).sum(dim=(1, 2, 3, 4))
        return torch.stack([-total, total], dim=1)


def test_grad_cam_of_clips_keeps_each_frames_share_and_names_the_key_frame():
    """A linear clip model hooked on its input: the map is the clip itself (weights of one
    sign), so the key frame is the brightest one whatever its position."""
    from sklearn_alnm.explain import grad_cam, key_frames

    clips = torch.full((2, 1, 5, 8, 8), 0.1)
    clips[0, :, 3] = 1.0
    clips[1, :, 0] = 1.0
    heat = grad_cam(_LinearClipModel(), clips)
    assert heat.shape == (2, 5, 8, 8)
    assert key_frames(heat).tolist() == [3, 0]
    np.testing.assert_allclose(heat[0, 3], 1.0)
    np.testing.assert_allclose(heat[0, 1], 0.1, rtol=1e-5)


def test_plot_gradcam_of_clips_shows_the_key_frames_with_their_share():
    from matplotlib.figure import Figure

    from sklearn_alnm.explain import plot_gradcam

    clips = torch.full((2, 1, 5, 8, 8), 0.1)
    clips[0, :, 3] = 1.0
    clips[1, :, 0] = 1.0
    share = 1.0 / (1.0 + 4 * 0.1)  # the bright frame's share of its clip's map
    fig = plot_gradcam(_LinearClipModel(), clips)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert isinstance(fig, Figure)
    assert any("case 0" in t and f"frame 4/5: {share:.0%} of map" in t for t in titles), titles
    assert any("case 1" in t and "frame 1/5" in t for t in titles), titles
    assert len(fig.axes) == 2 * 2 + 1  # two key frames x (frame, overlay) + colour bar
    two = plot_gradcam(_LinearClipModel(), clips, frames=2, show_image=False)
    titles = [ax.get_title() for ax in two.axes if ax.get_title()]
    assert sum("case 0" in t for t in titles) == 2 and any("frame 4/5" in t for t in titles)
    fixed = plot_gradcam(_LinearClipModel(), clips, frames=[-1], show_image=False)
    assert all("frame 5/5" in ax.get_title() for ax in fixed.axes if ax.get_title())
    for bad in (0, 6, [7], "first"):
        with pytest.raises(ValueError, match="frames"):
            plot_gradcam(_LinearClipModel(), clips, frames=bad)


def test_study_report_shows_a_video_models_key_frames(cohort, tmp_path):
    from sklearn_alnm.report import StudyReport

    X, y = cohort
    labels = np.where(y == 1, "N+", "N0")
    clf = _tiny(pos_label="N+").fit(X, labels)
    report = StudyReport({"TSM (video)": clf}, {"test": (X, labels)}, pos_label="N+", gradcam=2)
    assert report.gradcam_models == ["TSM (video)"]
    fig = report.plot_gradcam()
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert sum("/4: " in t for t in titles) == 2, titles  # each clip's key frame, of 4
    index = report.to_html(tmp_path / "report", dpi=40).read_text()
    assert "gradcam_tsm_video.png" in index and "Key frame of each clip" in index


def test_short_clips_are_sampled_again_or_refused_naming_the_row():
    X = pd.DataFrame(
        {"patient_id": ["A", "B"], "video": [np.zeros((10, 8, 8), np.uint8), np.zeros((3, 8, 8))]}
    )
    repeat = VideoInput("video", n_frames=6, frame_size=8, resize=None).prepare(X)[0]
    assert repeat.shape == (2, 1, 6, 8, 8)
    with pytest.raises(CohortInputError, match=r"row 'B'.*3 frames, fewer than the 6"):
        VideoInput("video", n_frames=6, frame_size=8, resize=None, short_clips="error").prepare(X)
    with pytest.raises(CohortInputError, match="3 frames"):
        _tiny(n_frames=6, short_clips="error", frame_size=8).fit(X, [0, 1])


def _moving_spot_clips(n, rng, frames=4, size=32):
    """A bright spot crossing the image left to right (label 0) or right to left (label 1):
    the two classes have the same frames, only their order differs."""
    clips, labels = [], []
    for i in range(n):
        clip = np.repeat(rng.normal(60, 10, (1, size, size)), frames, axis=0)
        row = rng.integers(8, size - 8)
        columns = np.linspace(6, size - 7, frames).round().astype(int)
        if i % 2:
            columns = columns[::-1]
        for t, col in enumerate(columns):
            clip[t, row - 3 : row + 3, col - 3 : col + 3] = 200
        clips.append(np.clip(clip + rng.normal(0, 5, clip.shape), 0, 255).astype(np.float32))
        labels.append(i % 2)
    return pd.DataFrame({"video": clips}), np.array(labels)


def test_only_the_temporal_networks_tell_a_clip_from_its_reversal():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    X_train, y_train = _moving_spot_clips(64, rng)
    X_test, y_test = _moving_spot_clips(32, rng)
    settings = dict(augment=None, lr=2e-3, max_epochs=8, batch_size=16)
    # frame averaging cannot see the order, trained or not (one epoch is enough to show it): a
    # clip and its reversal score the same
    tsn = _tiny(arch="tsn", **{**settings, "max_epochs": 1}).fit(X_train, y_train)
    reversed_clips = X_test.assign(video=[clip[::-1].copy() for clip in X_test["video"]])
    np.testing.assert_allclose(
        tsn.predict_proba(X_test), tsn.predict_proba(reversed_clips), rtol=1e-4, atol=1e-5
    )
    for arch in ("tsm", "tin"):
        model = _tiny(arch=arch, **settings).fit(X_train, y_train)
        assert roc_auc_score(y_test, model.predict_proba(X_test)[:, 1]) >= 0.9, arch


def test_a_video_model_beats_the_static_key_frame_model_on_synthetic_clips():
    """make_alnm_cohort's clips carry the label in their motion (lesion strain, pulsatile
    flow), not in any frame: TIN on the clips learns it, the same CNN on the key frame
    cannot."""
    from sklearn.metrics import roc_auc_score

    from sklearn_alnm.recipes import ultrasound_video_static

    X, y = make_alnm_cohort(300, modalities="video", image_size=32, n_frames=8, random_state=0)
    y = np.asarray(y)
    train, test = slice(0, 200), slice(200, None)
    settings = dict(lr=1e-3, batch_size=16, max_epochs=8, normalize="zscore", augment=None)
    video = _tiny(arch="tin", n_frames=8, **settings).fit(X[train], y[train])
    static = ultrasound_video_static("resnet18", input_size=32, random_state=0, **settings)
    static.set_params(classifier__device="cpu").fit(X[train], y[train])
    video_auc = roc_auc_score(y[test], video.predict_proba(X[test])[:, 1])
    static_auc = roc_auc_score(y[test], static.predict_proba(X[test])[:, 1])
    assert static_auc < 0.62, static_auc  # one frame is close to uninformative
    assert video_auc >= 0.65 and video_auc >= static_auc + 0.15, (video_auc, static_auc)


def test_elastic_deformation_is_one_field_per_clip():
    torch.manual_seed(0)
    frame = torch.rand(1, 1, 1, 24, 24)
    clips = frame.expand(2, 1, 3, 24, 24).contiguous()
    out = ClipAugment(brightness=0.0, contrast=0.0, elastic=30.0)(clips)
    assert out.shape == clips.shape and not torch.allclose(out, clips)
    for k in range(1, 3):
        torch.testing.assert_close(out[:, :, k], out[:, :, 0])  # every frame deformed alike
    assert not torch.allclose(out[0], out[1])  # another field for another clip


def test_temporal_jitter_shifts_each_clip_by_whole_frames_repeating_the_edge():
    torch.manual_seed(0)
    ramp = torch.arange(8.0).view(1, 1, 8, 1, 1)
    clips = ramp.expand(64, 2, 8, 3, 3).contiguous()  # frame t has value t
    identity = RandomResizedCropFlip(scale=(1.0, 1.0), ratio=(1.0, 1.0), p_hflip=0.0)
    out = ClipAugment(spatial=identity, brightness=0, contrast=0, temporal_jitter=2)(clips)
    shifts = set()
    for clip in out:
        assert torch.all(clip == clip[0, :, :1, :1])  # one shift for every channel and pixel
        values = clip[0, :, 0, 0]
        shift = int(values[3] - 3)
        expected = (torch.arange(8.0) + shift).clamp(0, 7)  # the edge frame repeated
        torch.testing.assert_close(values, expected)
        shifts.add(shift)
    assert shifts == {-2, -1, 0, 1, 2}
    unchanged = ClipAugment(spatial=identity, brightness=0, contrast=0)(clips)
    torch.testing.assert_close(unchanged, clips)
    with pytest.raises(ValueError, match="temporal_jitter"):
        ClipAugment(temporal_jitter=-1)


POCUS = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "pocus")


@pytest.mark.skipif(not os.path.isfile(os.path.join(POCUS, "labels.csv")), reason="no POCUS")
def test_real_manifest_of_mixed_containers_and_string_labels():
    """The raw manifest of real lung-ultrasound clips (GIF, AVI, MOV, MPEG, MP4 of different
    sizes and frame rates, gray and colour, id and outcome columns) fits as it is."""
    from sklearn_alnm.io import load_manifest

    manifest = load_manifest(os.path.join(POCUS, "labels.csv"))
    manifest["ext"] = manifest["video"].str.rsplit(".", n=1).str[-1].str.lower()
    manifest["outcome"] = np.where(manifest["label"] == "regular", "regular", "abnormal")
    chosen = manifest.groupby(["ext", "outcome"]).head(1).reset_index(drop=True)
    assert {"gif", "avi", "mov", "mpeg", "mp4"} <= set(chosen["ext"])
    y = chosen.pop("outcome").to_numpy()
    clf = _tiny(arch="tsm", pos_label="abnormal", cache=None).fit(chosen, y)
    proba = clf.predict_proba(chosen)
    assert proba.shape == (len(chosen), 2) and np.isfinite(proba).all()
    assert clf.pos_label_ == "abnormal" and clf.in_chans_ in (1, 3)
    clips = clf.prepare_clips(chosen)
    assert clips.shape == (len(chosen), clf.in_chans_, 4, 32, 32)
