"""Tests of sklearn_alnm.io: every reader on files the tests write themselves."""

import os
import re

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

import sklearn_alnm.io as alnm_io
from sklearn_alnm.io import (
    CohortInputError,
    load_manifest,
    read_cell,
    read_column,
    read_image,
    read_image_mask,
    read_mask,
    read_video,
    resolve_id_column,
    sample_frame_indices,
    save_manifest,
    write_image,
    write_mask,
    write_video,
)
from sklearn_alnm.io import _video as video_module

H, W = 24, 32
RNG = np.random.default_rng(0)
GRAY = (np.add.outer(np.arange(H) * 4, np.arange(W) * 3) % 256).astype(np.uint8)
GRAY16 = (GRAY.astype(np.uint16) * 200 + 7).astype(np.uint16)
RGB = RNG.integers(0, 256, size=(H, W, 3), dtype=np.uint8)
RGB_EQUAL = np.repeat(GRAY[:, :, None], 3, axis=2)
FLOAT = RNG.normal(size=(H, W)).astype(np.float32)
SMOOTH = np.add.outer(np.linspace(40, 200, H), np.linspace(0, 20, W)).round().astype(np.uint8)


def _msg(exc_info):
    return str(exc_info.value)


# --------------------------------------------------------------------------------------------
# Images: every format written and read back
# --------------------------------------------------------------------------------------------

IMAGE_CASES = [
    # name, array written, expected array read, spacing written, expected spacing, atol
    ("png", GRAY, GRAY, (0.5, 0.25), (0.5, 0.25), 0),
    ("png", GRAY16, GRAY16, None, (1.0, 1.0), 0),
    ("png", RGB_EQUAL, GRAY, None, (1.0, 1.0), 0),
    ("png", RGB, RGB, None, (1.0, 1.0), 0),
    ("png", np.dstack([RGB, np.full((H, W), 128, np.uint8)]), RGB, None, (1.0, 1.0), 0),
    ("png", np.dstack([RGB_EQUAL, np.zeros((H, W), np.uint8)]), GRAY, None, (1.0, 1.0), 0),
    ("jpg", SMOOTH, SMOOTH, None, (1.0, 1.0), 3),
    ("jpeg", np.repeat(SMOOTH[:, :, None], 3, axis=2), SMOOTH, None, (1.0, 1.0), 3),
    ("bmp", GRAY, GRAY, None, (1.0, 1.0), 0),
    ("bmp", RGB, RGB, None, (1.0, 1.0), 0),
    ("tif", GRAY, GRAY, (0.7, 0.3), (0.7, 0.3), 0),
    ("tiff", GRAY16, GRAY16, None, (1.0, 1.0), 0),
    ("tif", RGB, RGB, None, (1.0, 1.0), 0),
    ("dcm", GRAY, GRAY, (0.2, 0.1), (0.2, 0.1), 0),
    ("dcm", GRAY16, GRAY16, (0.2, 0.1), (0.2, 0.1), 0),
    ("dcm", GRAY.astype(np.int16) - 100, GRAY.astype(np.int16) - 100, None, (1.0, 1.0), 0),
    ("dcm", RGB, RGB, None, (1.0, 1.0), 0),
    ("nii", FLOAT, FLOAT, (1.5, 0.8), (1.5, 0.8), 0),
    ("nii.gz", FLOAT, FLOAT, (1.5, 0.8), (1.5, 0.8), 0),
    ("nii.gz", RGB, RGB, None, (1.0, 1.0), 0),
    ("nrrd", FLOAT, FLOAT, (0.3, 0.6), (0.3, 0.6), 0),
    ("mha", FLOAT, FLOAT, (0.3, 0.6), (0.3, 0.6), 0),
    ("mhd", GRAY16, GRAY16, (0.3, 0.6), (0.3, 0.6), 0),
]


@pytest.mark.parametrize(
    "ext, written, expected, spacing, expected_spacing, atol",
    IMAGE_CASES,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(IMAGE_CASES)],
)
def test_image_round_trip(tmp_path, ext, written, expected, spacing, expected_spacing, atol):
    path = write_image(tmp_path / f"case.{ext}", written, spacing=spacing)
    assert path == os.fspath(tmp_path / f"case.{ext}")
    image, read_spacing = read_image(path, return_spacing=True)
    assert image.dtype == np.float32
    assert image.shape == expected.shape
    np.testing.assert_allclose(image, expected.astype(np.float32), atol=atol, rtol=0)
    np.testing.assert_allclose(read_spacing, expected_spacing, rtol=1e-6)
    # a plain call returns only the image
    assert isinstance(read_image(path), np.ndarray)


def test_image_keeps_original_intensities(tmp_path):
    values = (FLOAT * 1000).astype(np.float32)  # CT-like values, negative and large
    image = read_image(write_image(tmp_path / "ct.nrrd", values))
    np.testing.assert_array_equal(image, values)
    assert image.min() < -100 and image.max() > 100


def test_extensionless_dicom_is_sniffed(tmp_path):
    dicom = write_image(tmp_path / "slice.dcm", GRAY, spacing=(0.4, 0.9))
    bare = tmp_path / "IM0001"
    os.rename(dicom, bare)
    with open(bare, "rb") as fh:
        assert fh.read(132)[128:] == b"DICM"
    image, spacing = read_image(bare, return_spacing=True)
    np.testing.assert_array_equal(image, GRAY)
    np.testing.assert_allclose(spacing, (0.4, 0.9))


def test_upper_case_extension(tmp_path):
    path = write_image(tmp_path / "CASE.PNG", GRAY)
    np.testing.assert_array_equal(read_image(path), GRAY)


def test_singleton_depth_volume_is_squeezed(tmp_path):
    volume = sitk.GetImageFromArray(FLOAT[None])
    volume.SetSpacing((0.25, 0.5, 3.0))  # x, y, z
    sitk.WriteImage(volume, os.fspath(tmp_path / "one_slice.nii.gz"))
    image, spacing = read_image(tmp_path / "one_slice.nii.gz", return_spacing=True)
    np.testing.assert_array_equal(image, FLOAT)
    assert spacing == (0.5, 0.25)  # (row, col) = (y, x)


def test_true_volume_asks_for_a_slice(tmp_path):
    sitk.WriteImage(
        sitk.GetImageFromArray(np.zeros((5, H, W), np.float32)), str(tmp_path / "v.mha")
    )
    with pytest.raises(CohortInputError, match="3-D volume of 5 slices") as exc_info:
        read_image(tmp_path / "v.mha")
    assert "Pick one slice" in _msg(exc_info)
    assert "v.mha" in _msg(exc_info)


ARRAY_CASES = [
    (GRAY, GRAY),
    (GRAY16, GRAY16),
    (RGB, RGB),
    (RGB_EQUAL, GRAY),
    (np.dstack([RGB, np.zeros((H, W), np.uint8)]), RGB),
    (GRAY[:, :, None], GRAY),
    (GRAY[None], GRAY),
    (GRAY > 100, (GRAY > 100).astype(np.float32)),
    (FLOAT.astype(np.float64), FLOAT),
]


@pytest.mark.parametrize("array, expected", ARRAY_CASES)
def test_read_image_from_array(array, expected):
    image, spacing = read_image(array, return_spacing=True)
    assert image.dtype == np.float32
    np.testing.assert_array_equal(image, expected.astype(np.float32))
    assert spacing == (1.0, 1.0)
    assert not np.shares_memory(image, array)


def _truncated_png(folder):
    path = write_image(folder / "cut.png", RGB)
    data = open(path, "rb").read()
    with open(path, "wb") as fh:
        fh.write(data[: len(data) // 2])
    return path


READ_IMAGE_ERRORS = [
    ("missing", lambda d: d / "absent.png", r"file not found"),
    ("truncated", _truncated_png, r"cannot be decoded \(unreadable, truncated or corrupt"),
    (
        "extension",
        lambda d: (d / "notes.txt").write_text("x") and d / "notes.txt",
        r"unsupported image format \(extension '\.txt'\); supported extensions: \.png, \.jpg",
    ),
    (
        "no-extension",
        lambda d: (d / "README").write_text("not dicom") and d / "README",
        r"no extension and no DICOM preamble",
    ),
    ("directory", lambda d: d, r"is a directory"),
]


@pytest.mark.parametrize(
    "name, make, message", READ_IMAGE_ERRORS, ids=[e[0] for e in READ_IMAGE_ERRORS]
)
def test_read_image_file_errors(tmp_path, name, make, message):
    path = make(tmp_path)
    with pytest.raises(CohortInputError, match=message) as exc_info:
        read_image(path)
    assert isinstance(exc_info.value, ValueError)
    assert exc_info.value.path == os.fspath(path)
    assert f"file {os.fspath(path)!r}" in _msg(exc_info)


@pytest.mark.parametrize(
    "ref, message",
    [
        (
            np.zeros((4, 4, 4, 4)),
            r"expected an image array of shape \(H, W\) .* got shape \(4, 4, 4, 4\)",
        ),
        (np.zeros((3, 4, 5)), r"got shape \(3, 4, 5\); a 3-D volume must be reduced"),
        (np.zeros(5), r"got shape \(5,\)"),
        (np.zeros((0, 4)), r"non-empty"),
        (
            np.array([["a", "b"], ["c", "d"]]),
            r"expected a numeric array, got an array of dtype <U1",
        ),
        (np.array([[object(), 1]], dtype=object), r"numeric array, got an array of dtype object"),
        (np.ones((2, 2), dtype=complex), r"real-valued"),
        (42, r"expected a file path \(str or os.PathLike\) or a numpy array .* got int"),
    ],
)
def test_read_image_array_errors(ref, message):
    with pytest.raises(CohortInputError, match=message):
        read_image(ref)


WRITE_IMAGE_ERRORS = [
    ("png", GRAY + 0.5, r"PNG stores integers only; expected integer values"),
    ("png", GRAY.astype(np.int32) * 1000, r"values must lie in \[0, 65535\]"),
    ("png", GRAY.astype(np.int16) - 1, r"got range \[-1, "),
    ("png", np.full((H, W), np.nan), r"NaN"),
    ("jpg", GRAY16, r"JPEG stores integers only; values must lie in \[0, 255\]"),
    ("bmp", GRAY.astype(float) * 2, r"BMP stores integers only; values must lie in \[0, 255\]"),
    ("dcm", FLOAT, r"DICOM stores integers only"),
    ("gif", GRAY, r"cannot write an image with extension '\.gif'; supported extensions: \.png"),
    (
        "png",
        np.zeros((3, H, W)),
        r"expected a non-empty image array of shape \(H, W\), \(H, W, 3\)",
    ),
    ("png", np.zeros((H, W, 2)), r"got shape \(24, 32, 2\)"),
]


@pytest.mark.parametrize("ext, array, message", WRITE_IMAGE_ERRORS)
def test_write_image_refuses_what_the_format_cannot_hold(tmp_path, ext, array, message):
    path = tmp_path / f"bad.{ext}"
    with pytest.raises(ValueError, match=message):
        write_image(path, array)
    assert not path.exists()


def test_write_image_spacing_errors(tmp_path):
    with pytest.raises(ValueError, match=r"the \.jpg format cannot store pixel spacing"):
        write_image(tmp_path / "a.jpg", GRAY, spacing=(0.5, 0.5))
    with pytest.raises(ValueError, match="spacing must be a tuple of 2 positive numbers"):
        write_image(tmp_path / "a.nii", GRAY, spacing=(0.5, -1))
    with pytest.raises(ValueError, match="spacing must be a tuple of 2 positive numbers"):
        write_image(tmp_path / "a.nii", GRAY, spacing=(0.5,))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_image(tmp_path / "no" / "such" / "a.png", GRAY)
    with pytest.raises(TypeError, match="path must be a str"):
        write_image(123, GRAY)


def test_write_image_dtype_choice(tmp_path):
    # uint8 when values fit, uint16 when needed or already uint16
    for array, pixel_type in [
        (GRAY.astype(np.float64), "8-bit unsigned integer"),
        (GRAY16, "16-bit unsigned integer"),
        (GRAY.astype(np.uint16), "16-bit unsigned integer"),
    ]:
        path = write_image(tmp_path / "d.png", array)
        assert sitk.ReadImage(path).GetPixelIDTypeAsString() == pixel_type
    path = write_image(tmp_path / "f.nii", FLOAT.astype(np.float64))
    assert sitk.ReadImage(path).GetPixelIDTypeAsString() == "32-bit float"


# --------------------------------------------------------------------------------------------
# Masks
# --------------------------------------------------------------------------------------------

LESION = np.zeros((H, W), np.uint8)
LESION[5:12, 8:20] = 1
LESION_2 = np.zeros((H, W), np.uint8)
LESION_2[15:20, 2:6] = 1
LABELS = LESION + 2 * LESION_2


@pytest.mark.parametrize("ext", ["png", "bmp", "tif", "dcm", "nii", "nii.gz", "nrrd", "mha"])
def test_mask_round_trip_stores_labels_unchanged(tmp_path, ext):
    path = write_mask(tmp_path / f"m.{ext}", LABELS, spacing=None)
    stored = sitk.GetArrayFromImage(sitk.ReadImage(path))
    assert stored.max() == 2  # the convention: labels stored as they are (0/1/2, not 0/255)
    np.testing.assert_array_equal(read_mask(path, binary=False), LABELS)
    np.testing.assert_array_equal(read_mask(path), (LABELS > 0).astype(np.uint8))
    assert read_mask(path).dtype == np.uint8


@pytest.mark.parametrize("scale", [1, 255])
@pytest.mark.parametrize("binary", [True, False])
def test_mask_reads_0_1_and_0_255(tmp_path, scale, binary):
    path = write_image(tmp_path / "m.png", LESION * scale)
    np.testing.assert_array_equal(read_mask(path, binary=binary), LESION)


def test_mask_rgb_equal_channels_and_alpha(tmp_path):
    path = write_image(tmp_path / "m.png", np.repeat(LESION[:, :, None] * 255, 3, axis=2))
    np.testing.assert_array_equal(read_mask(path), LESION)
    rgba = np.dstack([np.repeat(LESION[:, :, None] * 255, 3, axis=2), np.full((H, W), 255)])
    np.testing.assert_array_equal(read_mask(write_image(tmp_path / "a.png", rgba)), LESION)


def test_mask_float_file_and_spacing(tmp_path):
    path = write_image(tmp_path / "m.nii.gz", LESION.astype(np.float32), spacing=(0.3, 0.2))
    mask, spacing = read_mask(path, return_spacing=True)
    np.testing.assert_array_equal(mask, LESION)
    np.testing.assert_allclose(spacing, (0.3, 0.2))


def test_multi_mask_or_merge(tmp_path):
    # BUSI stores two lesions of one image as case_mask.png and case_mask_1.png (0/255)
    first = write_image(tmp_path / "case_mask.png", LESION * 255)
    second = write_mask(tmp_path / "case_mask_1.png", LESION_2)
    merged = read_mask([first, second], shape=(H, W), required=True)
    np.testing.assert_array_equal(merged, np.logical_or(LESION, LESION_2).astype(np.uint8))
    np.testing.assert_array_equal(read_mask((first, second)), merged)


def test_label_maps_later_masks_overwrite():
    early = np.zeros((4, 4), np.uint8)
    early[:2] = 1
    late = np.zeros((4, 4), np.uint8)
    late[1:3] = 3
    expected = np.array([[1] * 4, [3] * 4, [3] * 4, [0] * 4], np.uint8)
    np.testing.assert_array_equal(read_mask([early, late], binary=False), expected)
    np.testing.assert_array_equal(read_mask([early, late]), (expected > 0).astype(np.uint8))


def test_empty_mask_list():
    np.testing.assert_array_equal(read_mask([], shape=(3, 5)), np.zeros((3, 5), np.uint8))
    with pytest.raises(CohortInputError, match="empty list of masks"):
        read_mask([])
    with pytest.raises(CohortInputError, match="expected at least one lesion pixel"):
        read_mask([], shape=(3, 5), required=True)


def test_mask_shape_accepts_an_image_shape():
    mask = read_mask(LESION, shape=RGB.shape)  # (H, W, 3): only H, W are compared
    np.testing.assert_array_equal(mask, LESION)


def test_mask_grid_mismatch_names_both_shapes(tmp_path):
    path = write_mask(tmp_path / "small_mask.png", LESION[:20])
    with pytest.raises(CohortInputError) as exc_info:
        read_mask(path, shape=(H, W))
    message = _msg(exc_info)
    assert "mask grid (20, 32) differs from its image grid (24, 32)" in message
    assert "small_mask.png" in message


def test_masks_of_one_list_on_different_grids(tmp_path):
    first = write_mask(tmp_path / "a_mask.png", LESION)
    other = write_mask(tmp_path / "a_mask_1.png", LESION[:, :30])
    with pytest.raises(CohortInputError, match=r"mask grid \(24, 30\) differs from the grid") as e:
        read_mask([first, other])
    assert e.value.path == other


def test_required_mask_must_not_be_empty(tmp_path):
    path = write_mask(tmp_path / "empty_mask.png", np.zeros((H, W), np.uint8))
    np.testing.assert_array_equal(read_mask(path), 0)
    with pytest.raises(CohortInputError, match="expected at least one lesion pixel") as e:
        read_mask(path, required=True)
    assert "empty_mask.png" in str(e.value)


@pytest.mark.parametrize(
    "kwargs, mask, message",
    [
        ({}, RGB, "expected a single-channel mask"),
        ({"binary": False}, LESION * 300.0, r"labels in \[0, 255\]"),
        ({"binary": False}, LESION * 0.5, "fractional values"),
        ({}, np.full((2, 2), np.nan), "NaN"),
        ({"shape": (H,)}, LESION, r"shape must be a tuple \(H, W\)"),
        ({"shape": (2.5, 3)}, LESION, r"shape must be a tuple \(H, W\)"),
        ({"shape": 24}, LESION, r"shape must be a tuple \(H, W\)"),
    ],
)
def test_mask_value_errors(kwargs, mask, message):
    with pytest.raises(ValueError, match=message):
        read_mask(mask, **kwargs)


@pytest.mark.parametrize(
    "ext, mask, message",
    [
        ("jpg", LESION, r"cannot write a mask with extension '\.jpg'"),
        ("png", LESION.astype(np.int32) * 256, r"values must lie in \[0, 255\]"),
        ("png", LESION * 0.5, r"integer labels; expected integer values"),
        ("png", np.zeros((H, W, 3)), r"expected a non-empty mask array of shape \(H, W\)"),
    ],
)
def test_write_mask_errors(tmp_path, ext, mask, message):
    with pytest.raises(ValueError, match=message):
        write_mask(tmp_path / f"m.{ext}", mask)
    assert not (tmp_path / f"m.{ext}").exists()


def test_write_mask_bool(tmp_path):
    path = write_mask(tmp_path / "b.nrrd", LESION.astype(bool))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(sitk.ReadImage(path)), LESION)


# --------------------------------------------------------------------------------------------
# Videos
# --------------------------------------------------------------------------------------------

T = 12


def _index_clip(n_frames=T, color=False, step=15):
    """Frames whose brightness encodes their index (frame t has value 10 + step * t)."""
    levels = (10 + step * np.arange(n_frames)).astype(np.uint8)
    clip = np.broadcast_to(levels[:, None, None], (n_frames, H, W)).copy()
    if color:
        clip = np.stack([clip, clip // 2, 255 - clip], axis=-1)
    return clip


def _frame_indices(video, step=15):
    """Recover the index of each frame from its brightness."""
    level = video[..., 0].mean(axis=(1, 2)) if video.ndim == 4 else video.mean(axis=(1, 2))
    return np.round((level - 10) / step).astype(int)


@pytest.mark.parametrize(
    "ext, atol", [("mp4", 2), ("avi", 0), ("mkv", 0), ("mov", 2), ("m4v", 2), ("dcm", 0)]
)
@pytest.mark.parametrize("color", [False, True], ids=["gray", "rgb"])
def test_video_round_trip(tmp_path, ext, atol, color):
    clip = _index_clip(color=color)
    clip[:, 4:10, 6:16] = RNG.integers(0, 256, size=clip[:, 4:10, 6:16].shape)  # texture
    path = write_video(tmp_path / f"clip.{ext}", clip, fps=12.5)
    video, fps = read_video(path, return_fps=True)
    assert video.dtype == np.float32
    assert video.shape == clip.shape  # gray comes back (T, H, W), colour (T, H, W, 3)
    np.testing.assert_allclose(video, clip, atol=atol, rtol=0)
    assert fps == pytest.approx(12.5)


@pytest.mark.parametrize("ext", ["mp4", "avi", "mkv", "dcm"])
@pytest.mark.parametrize(
    "n_total, n_frames, expected",
    [
        (12, 4, [0, 4, 7, 11]),
        (12, 12, list(range(12))),
        (12, 1, [0]),
        (5, 8, [0, 1, 1, 2, 2, 3, 3, 4]),
    ],
)
def test_video_frame_sampling(tmp_path, ext, n_total, n_frames, expected):
    assert sample_frame_indices(n_total, n_frames).tolist() == expected
    path = write_video(tmp_path / f"clip.{ext}", _index_clip(n_total))
    video = read_video(path, n_frames=n_frames)
    assert video.shape == (n_frames, H, W)
    assert _frame_indices(video).tolist() == expected


def test_sampling_keeps_only_wanted_frames_when_count_is_known(tmp_path, monkeypatch):
    calls = []
    original = video_module._decode_selected

    def spy(container, stream, wanted):
        kept, n_decoded = original(container, stream, wanted)
        calls.append((len(kept), n_decoded))
        return kept, n_decoded

    monkeypatch.setattr(video_module, "_decode_selected", spy)
    clip = _index_clip(30, step=8)
    video = read_video(write_video(tmp_path / "long.mp4", clip), n_frames=4)
    assert _frame_indices(video, step=8).tolist() == [0, 10, 19, 29]
    assert calls == [(4, 30)]  # 30 decoded, only 4 converted and kept

    # MKV does not report its frame count: full decode, same frames
    calls.clear()
    video = read_video(write_video(tmp_path / "long.mkv", clip), n_frames=4)
    assert _frame_indices(video, step=8).tolist() == [0, 10, 19, 29]
    assert calls == []


def test_wrong_reported_frame_count_falls_back_to_full_decode(tmp_path, monkeypatch):
    original = video_module._decode_selected

    def miscount(container, stream, wanted):
        kept, n_decoded = original(container, stream, wanted)
        return kept, n_decoded - 3  # pretend the container over-reported its length

    monkeypatch.setattr(video_module, "_decode_selected", miscount)
    video = read_video(write_video(tmp_path / "c.avi", _index_clip(12)), n_frames=4)
    assert _frame_indices(video).tolist() == [0, 4, 7, 11]


def test_extensionless_multiframe_dicom(tmp_path):
    path = write_video(tmp_path / "cine.dcm", _index_clip(7, color=True), fps=20)
    bare = tmp_path / "CINE0001"
    os.rename(path, bare)
    video, fps = read_video(bare, n_frames=3, return_fps=True)
    assert video.shape == (3, H, W, 3)
    assert _frame_indices(video).tolist() == [0, 3, 6]
    assert fps == pytest.approx(20)


@pytest.mark.parametrize("ext", ["dcm", "nii.gz", "nrrd", "mha"])
def test_frame_stacks_written_by_simpleitk(tmp_path, ext):
    # a cine loop written by another tool (for DICOM: without a frame-time tag)
    sitk.WriteImage(sitk.GetImageFromArray(_index_clip(6)), str(tmp_path / f"loop.{ext}"))
    video, fps = read_video(tmp_path / f"loop.{ext}", return_fps=True)
    assert _frame_indices(video).tolist() == list(range(6))
    assert fps is None
    assert _frame_indices(read_video(tmp_path / f"loop.{ext}", n_frames=2)).tolist() == [0, 5]


@pytest.mark.parametrize(
    "array, expected_shape",
    [
        (_index_clip(6), (6, H, W)),
        (np.repeat(_index_clip(6)[..., None], 3, axis=-1), (6, H, W)),
        (_index_clip(6, color=True), (6, H, W, 3)),
        (
            np.concatenate([_index_clip(6, True), np.zeros((6, H, W, 1), np.uint8)], -1),
            (6, H, W, 3),
        ),
        (_index_clip(6)[..., None], (6, H, W)),
    ],
)
def test_read_video_from_array(array, expected_shape):
    video, fps = read_video(array, return_fps=True)
    assert video.shape == expected_shape and video.dtype == np.float32
    assert fps is None
    assert _frame_indices(read_video(array, n_frames=3)).tolist() == [0, 2, 5]


def test_read_video_errors(tmp_path):
    path = write_video(tmp_path / "clip.mp4", _index_clip())
    data = open(path, "rb").read()
    with open(tmp_path / "cut.mp4", "wb") as fh:
        fh.write(data[: len(data) // 3])
    with pytest.raises(CohortInputError, match="cannot be decoded as a video") as e:
        read_video(tmp_path / "cut.mp4")
    assert e.value.path == os.fspath(tmp_path / "cut.mp4")
    with pytest.raises(CohortInputError, match="file not found"):
        read_video(tmp_path / "absent.avi")
    (tmp_path / "clip.gif").write_bytes(b"GIF89a")  # a GIF header without any frame
    with pytest.raises(CohortInputError, match="clip.gif.*cannot be decoded as a video"):
        read_video(tmp_path / "clip.gif")
    (tmp_path / "clip.flv").write_bytes(b"FLV")
    with pytest.raises(CohortInputError, match=r"unsupported video format .* \.mp4, .*\.avi"):
        read_video(tmp_path / "clip.flv")
    (tmp_path / "fake.avi").write_bytes(b"RIFF not really a video")
    with pytest.raises(CohortInputError, match="cannot be decoded as a video"):
        read_video(tmp_path / "fake.avi")
    with pytest.raises(CohortInputError, match=r"\(T, H, W\) or \(T, H, W, C\).*got shape"):
        read_video(np.zeros((4, 4)))
    with pytest.raises(CohortInputError, match="numeric array"):
        read_video(np.array([[["x"]]]))
    with pytest.raises(CohortInputError, match="got list"):
        read_video([1, 2, 3])
    for bad in (0, -2, 2.5, True):
        with pytest.raises(ValueError, match="n_frames must be a positive integer"):
            read_video(_index_clip(), n_frames=bad)


@pytest.mark.parametrize(
    "name, frames, kwargs, error, message",
    [
        ("c.mp4", _index_clip() * 2.0, {}, ValueError, r"values must lie in \[0, 255\]"),
        ("c.mp4", _index_clip() + 0.25, {}, ValueError, "expected integer values"),
        ("c.mp4", _index_clip()[0], {}, ValueError, r"shape \(24, 32\)"),
        ("c.gif", _index_clip(), {}, ValueError, r"supported extensions: \.mp4"),
        ("c.avi", _index_clip(), {"fps": 0}, ValueError, "fps must be a positive number"),
        ("c.avi", _index_clip(), {"fps": "8"}, ValueError, "fps must be a positive number"),
    ],
)
def test_write_video_errors(tmp_path, name, frames, kwargs, error, message):
    with pytest.raises(error, match=message):
        write_video(tmp_path / name, frames, **kwargs)
    assert not (tmp_path / name).exists()


# --------------------------------------------------------------------------------------------
# Manifests
# --------------------------------------------------------------------------------------------


def _write_cohort_files(folder):
    """A small cohort on disk: image + (multi-)mask + bag + video per patient."""
    data = folder / "data"
    data.mkdir(parents=True)
    rows = []
    for k, pid in enumerate(["007", "P2", "P3"]):
        image = write_image(data / f"{pid}.png", GRAY)
        masks = [write_mask(data / f"{pid}_mask.png", LESION)]
        if k == 0:
            masks.append(write_mask(data / f"{pid}_mask_1.png", LESION_2))
        bag = [write_image(data / f"{pid}_node{j}.png", GRAY) for j in range(k)]
        rows.append(
            {
                "patient_id": pid,
                "age": 40 + k,
                "er": ["pos", None, "neg"][k],
                "ki67": [0.1, np.nan, 0.3][k],
                "image": image,
                "mask": masks if len(masks) > 1 else masks[0],
                "bag": bag,
                "bag_kind": ["node"] * len(bag),
                "us_path": write_image(data / f"{pid}_extra.nii.gz", FLOAT),
            }
        )
    return pd.DataFrame(rows)


@pytest.mark.parametrize("ext", ["csv", "tsv", "xlsx"])
def test_manifest_round_trip(tmp_path, ext):
    X = _write_cohort_files(tmp_path)
    path = save_manifest(X, tmp_path / f"cohort.{ext}")
    if ext != "xlsx":
        text = open(path).read()
        assert os.fspath(tmp_path) not in text  # stored relative to the manifest folder
        assert "data/007_mask.png;data/007_mask_1.png" in text
        assert "data/P3_node0.png;data/P3_node1.png" in text
    loaded = load_manifest(path)
    assert list(loaded.columns) == list(X.columns)
    assert loaded["patient_id"].tolist() == ["007", "P2", "P3"]  # leading zeros kept
    assert loaded["age"].tolist() == [40, 41, 42]
    assert loaded["er"].tolist() == ["pos", None, "neg"]
    np.testing.assert_allclose(loaded["ki67"], [0.1, np.nan, 0.3])
    for column in ["image", "mask", "bag", "bag_kind", "us_path"]:
        assert loaded[column].tolist() == X[column].tolist(), column
    assert loaded.loc[0, "bag"] == [] and loaded.loc[0, "bag_kind"] == []
    assert loaded.loc[1, "bag_kind"] == ["node"]
    assert all(os.path.isabs(p) for p in loaded["image"])
    # the loaded cohort is readable as is
    images, masks = read_image_mask(loaded, required=True)
    np.testing.assert_array_equal(masks[0], np.logical_or(LESION, LESION_2))
    assert [len(b) for b in read_column(loaded, "bag", kind="bag")] == [0, 1, 2]


def test_save_manifest_accepts_joined_path_strings(tmp_path):
    first = write_mask(tmp_path / "a_mask.png", LESION)
    second = write_mask(tmp_path / "a_mask_1.png", LESION_2)
    path = save_manifest(pd.DataFrame({"mask": [f"{first};{second}"]}), tmp_path / "c.csv")
    assert "a_mask.png;a_mask_1.png" in open(path).read()
    assert load_manifest(path).loc[0, "mask"] == [first, second]


def test_manifest_single_item_list_survives(tmp_path):
    mask = write_mask(tmp_path / "m.png", LESION)
    X = pd.DataFrame({"mask": [[mask], mask, []], "bag": [[], [mask], None]})
    loaded = load_manifest(save_manifest(X, tmp_path / "c.csv"))
    assert loaded["mask"].tolist() == [[mask], mask, []]
    assert loaded["bag"].tolist() == [[], [mask], []]


def test_manifest_paths_outside_folder_stay_absolute(tmp_path):
    outside = write_image(tmp_path / "elsewhere.png", GRAY)
    (tmp_path / "study").mkdir()
    path = save_manifest(pd.DataFrame({"image": [outside]}), tmp_path / "study" / "c.csv")
    assert outside in open(path).read()
    assert load_manifest(path)["image"].tolist() == [outside]


def test_manifest_relative_paths_and_root(tmp_path):
    (tmp_path / "tables").mkdir()
    (tmp_path / "images").mkdir()
    write_image(tmp_path / "images" / "a.png", GRAY)
    manifest = tmp_path / "tables" / "cohort.csv"
    manifest.write_text("case_id,cc_image,label\nA,a.png,1\nB,,0\n")
    loaded = load_manifest(manifest, root=tmp_path / "images", check_files=True)
    assert loaded["cc_image"].tolist() == [os.fspath(tmp_path / "images" / "a.png"), None]
    assert loaded["label"].tolist() == [1, 0]
    # without root, relative paths are resolved against the manifest's folder
    default = load_manifest(manifest)
    assert default.loc[0, "cc_image"] == os.fspath(tmp_path / "tables" / "a.png")
    with pytest.raises(CohortInputError) as e:
        load_manifest(manifest, check_files=True)
    message = str(e.value)
    assert "row 'A'" in message and "column 'cc_image'" in message
    assert os.fspath(tmp_path / "tables" / "a.png") in message
    with pytest.raises(ValueError, match="is not an existing folder"):
        load_manifest(manifest, root=tmp_path / "nowhere")


def test_manifest_excel_written_by_hand(tmp_path):
    write_image(tmp_path / "p1_cc.png", GRAY)
    write_mask(tmp_path / "p1_cc_mask.png", LESION)
    pd.DataFrame(
        {
            "patient_id": ["P1"],
            "cc_image": ["p1_cc.png"],
            "cc_mask": ["p1_cc_mask.png"],
            "bag": ["p1_cc.png ; p1_cc.png"],
            "note": ["ER+; PR-"],
        }
    ).to_excel(tmp_path / "c.xlsx", index=False)
    X = load_manifest(tmp_path / "c.xlsx", check_files=True)
    assert X.loc[0, "bag"] == [os.fspath(tmp_path / "p1_cc.png")] * 2
    assert X.loc[0, "note"] == "ER+; PR-"  # free text is not split
    assert read_image_mask(X, "cc_image", "cc_mask")[1][0].sum() == LESION.sum()


def test_manifest_check_files_names_row_column_file(tmp_path):
    write_image(tmp_path / "a.png", GRAY)
    (tmp_path / "c.csv").write_text(
        "patient_id,image,bag\nP1,a.png,a.png\nP2,a.png,a.png;gone.png\n"
    )
    with pytest.raises(CohortInputError) as e:
        load_manifest(tmp_path / "c.csv", check_files=True)
    assert e.value.row == "P2" and e.value.column == "bag"
    assert e.value.path == os.fspath(tmp_path / "gone.png")
    assert str(e.value).startswith(f"row 'P2', column 'bag', file '{tmp_path / 'gone.png'}'")
    # without an id column the index label names the row; id_col picks another column
    (tmp_path / "d.csv").write_text("site,image\nX,a.png\nY,b.png\n")
    with pytest.raises(CohortInputError, match=r"^row 1, column 'image'"):
        load_manifest(tmp_path / "d.csv", check_files=True)
    with pytest.raises(CohortInputError, match=r"^row 'Y', column 'image'"):
        load_manifest(tmp_path / "d.csv", check_files=True, id_col="site")


def test_manifest_column_selection(tmp_path):
    (tmp_path / "c.csv").write_text("id,scan,names,bag_size\n1,x.dcm,a;b,3\n2,,c,\n")
    auto = load_manifest(tmp_path / "c.csv")
    assert auto.loc[0, "scan"] == os.fspath(tmp_path / "x.dcm")  # found by its extension
    assert auto.loc[0, "names"] == "a;b"  # not a path column: left alone
    assert auto["bag_size"].tolist()[0] == 3 and np.isnan(auto["bag_size"].tolist()[1])
    explicit = load_manifest(tmp_path / "c.csv", path_columns=None, list_columns=["names"])
    assert explicit.loc[0, "scan"] == "x.dcm"
    assert explicit["names"].tolist() == [["a", "b"], ["c"]]
    with pytest.raises(ValueError, match=r"path_columns=\['nope'\] are not columns"):
        load_manifest(tmp_path / "c.csv", path_columns=["nope"])
    with pytest.raises(ValueError, match="id_col='nope' is not a column"):
        load_manifest(tmp_path / "c.csv", id_col="nope")


def test_manifest_format_errors(tmp_path):
    with pytest.raises(ValueError, match=r"unsupported manifest format '\.json'.*\.csv, \.tsv"):
        load_manifest(tmp_path / "c.json")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_manifest(tmp_path / "absent.csv")
    with pytest.raises(ValueError, match="unsupported manifest format"):
        save_manifest(pd.DataFrame({"a": [1]}), tmp_path / "c.parquet")
    with pytest.raises(TypeError, match="pandas DataFrame"):
        save_manifest({"a": [1]}, tmp_path / "c.csv")


def test_save_manifest_refuses_arrays_and_separators(tmp_path):
    X = pd.DataFrame({"patient_id": ["P1", "P2"], "image": ["a.png", GRAY]})
    with pytest.raises(CohortInputError, match="in-memory array") as e:
        save_manifest(X, tmp_path / "c.csv")
    assert (e.value.row, e.value.column) == ("P2", "image")
    X = pd.DataFrame({"bag": [["a;b.png"]]})
    with pytest.raises(CohortInputError, match="list separator"):
        save_manifest(X, tmp_path / "c.csv")
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_save_manifest_index(tmp_path):
    X = pd.DataFrame({"age": [50, 60]}, index=pd.Index(["P1", "P2"], name="patient_id"))
    path = save_manifest(X, tmp_path / "c.csv")
    assert open(path).read().splitlines()[0] == "patient_id,age"
    assert load_manifest(path)["patient_id"].tolist() == ["P1", "P2"]
    path = save_manifest(X.reset_index(drop=True), tmp_path / "d.csv")
    assert open(path).read().splitlines()[0] == "age"
    with pytest.raises(ValueError, match="already has one"):
        save_manifest(X.reset_index().set_index("age", drop=False), tmp_path / "e.csv")


# --------------------------------------------------------------------------------------------
# Cohort helpers
# --------------------------------------------------------------------------------------------


def test_read_column_mixes_paths_and_arrays(tmp_path):
    X = pd.DataFrame(
        {"patient_id": ["P1", "P2"], "image": [write_image(tmp_path / "a.png", RGB_EQUAL), RGB]}
    )
    images = read_column(X, "image")
    assert [im.shape for im in images] == [(H, W), (H, W, 3)]
    np.testing.assert_array_equal(images[0], GRAY)
    parallel = read_column(X, "image", n_jobs=2)
    for a, b in zip(images, parallel):
        np.testing.assert_array_equal(a, b)
    with_spacing = read_column(X, "image", return_spacing=True)
    assert with_spacing[1][1] == (1.0, 1.0)


CELL_ERRORS = [
    ("missing", lambda d: d / "absent.png", "file not found", True),
    ("truncated", _truncated_png, "cannot be decoded", True),
    ("extension", lambda d: (d / "x.txt").write_text("x") and d / "x.txt", "unsupported", True),
    ("dimensions", lambda d: np.zeros((2, 3, 4, 5)), "expected an image array", False),
    ("non-numeric", lambda d: np.array([["a"]]), "expected a numeric array", False),
    ("empty-cell", lambda d: None, "empty cell; expected a file path or an array", False),
    ("nan-cell", lambda d: np.nan, "empty cell", False),
    ("wrong-type", lambda d: 3, "got int", False),
]


@pytest.mark.parametrize(
    "name, make, message, has_file", CELL_ERRORS, ids=[c[0] for c in CELL_ERRORS]
)
@pytest.mark.parametrize("id_col, expected_row", [("auto", "P2"), (None, "b")])
def test_read_column_errors_name_row_column_file(
    tmp_path, name, make, message, has_file, id_col, expected_row
):
    good = write_image(tmp_path / "good.png", GRAY)
    bad = make(tmp_path)
    X = pd.DataFrame(
        {"patient_id": ["P1", "P2"], "us": pd.Series([good, bad], index=["a", "b"], dtype=object)},
        index=["a", "b"],
    )
    with pytest.raises(CohortInputError, match=re.escape(message)) as e:
        read_column(X, "us", id_col=id_col)
    error = e.value
    assert (error.row, error.column) == (expected_row, "us")
    prefix = f"row {expected_row!r}, column 'us'"
    if has_file:
        assert error.path == os.fspath(bad)
        prefix += f", file {os.fspath(bad)!r}"
    assert str(error).startswith(prefix + ": ")
    # read_cell reports the same location for that row, and reads the good one
    with pytest.raises(CohortInputError, match=re.escape(prefix)):
        read_cell(X, 1, "us", id_col=id_col)
    np.testing.assert_array_equal(read_cell(X, 0, "us"), GRAY)


def test_missing_cells_allowed():
    X = pd.DataFrame({"mask": [LESION, None, np.nan]})
    masks = read_column(X, "mask", kind="mask", allow_missing=True)
    assert masks[1] is None and masks[2] is None
    np.testing.assert_array_equal(masks[0], LESION)
    assert read_cell(X, 1, "mask", kind="mask", allow_missing=True) is None


def test_read_column_video_and_bag(tmp_path):
    clip = write_video(tmp_path / "c.avi", _index_clip(9))
    X = pd.DataFrame(
        {
            "case_id": ["C1", "C2"],
            "video": [clip, _index_clip(4)],
            "bag": [[write_image(tmp_path / "n.png", GRAY), RGB], []],
        }
    )
    videos = read_column(X, "video", kind="video", n_frames=3)
    assert [_frame_indices(v).tolist() for v in videos] == [[0, 4, 8], [0, 2, 3]]
    bags = read_column(X, "bag", kind="bag")
    assert [[im.shape for im in bag] for bag in bags] == [[(H, W), (H, W, 3)], []]
    X.at[1, "bag"] = [np.zeros((2, 2)), tmp_path / "gone.png"]
    with pytest.raises(CohortInputError, match="bag item 1: file not found") as e:
        read_column(X, "bag", kind="bag")
    assert (e.value.row, e.value.column) == ("C2", "bag")
    assert e.value.path == os.fspath(tmp_path / "gone.png")


def test_read_column_argument_errors():
    X = pd.DataFrame({"image": [GRAY]})
    with pytest.raises(CohortInputError, match=r"column 'mask': column not found.*\['image'\]"):
        read_column(X, "mask")
    with pytest.raises(ValueError, match="kind must be one of"):
        read_column(X, "image", kind="audio")
    with pytest.raises(TypeError, match="invalid keyword for kind='image'"):
        read_column(X, "image", n_frames=4)
    with pytest.raises(TypeError, match="pandas DataFrame"):
        read_column({"image": [GRAY]}, "image")


def test_unexpected_reader_failure_is_located(tmp_path, monkeypatch):
    def broken(ref, **kwargs):
        raise PermissionError("permission denied")

    monkeypatch.setitem(alnm_io._cohort._READERS, "image", broken)
    X = pd.DataFrame({"id": ["P9"], "image": [os.fspath(tmp_path / "a.png")]})
    with pytest.raises(CohortInputError, match="PermissionError: permission denied") as e:
        read_column(X, "image")
    assert (e.value.row, e.value.column, e.value.path) == ("P9", "image", X.loc[0, "image"])


def test_read_image_mask_pairs(tmp_path):
    X = pd.DataFrame(
        {
            "patient_id": ["P1", "P2"],
            "image": [
                write_image(tmp_path / "a.nii.gz", FLOAT, spacing=(0.5, 0.7)),
                RGB,
            ],
            "mask": [
                write_mask(tmp_path / "a_mask.nii.gz", LESION),
                [LESION, LESION_2 * 255],
            ],
        }
    )
    images, masks, spacings = read_image_mask(X, required=True, return_spacing=True)
    assert spacings == [(0.5, 0.7), (1.0, 1.0)]
    np.testing.assert_array_equal(images[0], FLOAT)
    np.testing.assert_array_equal(masks[1], LESION | LESION_2)
    assert read_image_mask(X, n_jobs=2)[1][1].sum() == masks[1].sum()


@pytest.mark.parametrize(
    "mask, required, message",
    [
        (LESION[:, :16], False, "mask grid (24, 16) differs from its image grid (24, 32)"),
        (np.zeros((H, W)), True, "mask is empty; expected at least one lesion pixel"),
        (None, False, "empty cell"),
    ],
)
def test_read_image_mask_errors(tmp_path, mask, required, message):
    mask_path = None if mask is None else write_mask(tmp_path / "p2_mask.png", mask)
    X = pd.DataFrame(
        {
            "patient_id": ["P1", "P2"],
            "image": [GRAY, write_image(tmp_path / "p2.png", GRAY)],
            "mask": [LESION, mask_path],
        }
    )
    with pytest.raises(CohortInputError, match=re.escape(message)) as e:
        read_image_mask(X, required=required)
    assert (e.value.row, e.value.column) == ("P2", "mask")
    if mask_path is not None:
        assert e.value.path == mask_path and mask_path in str(e.value)


def test_resolve_id_column():
    X = pd.DataFrame({"id": [1], "case_id": ["c"], "patient_id": ["p"]})
    assert resolve_id_column(X) == "patient_id"
    assert resolve_id_column(X, "case_id") == "case_id"
    assert resolve_id_column(X, None) is None
    assert resolve_id_column(X[["id"]]) == "id"


def test_public_api():
    for name in alnm_io.__all__:
        assert hasattr(alnm_io, name), name
    assert issubclass(CohortInputError, ValueError)


def test_manifest_references_must_stay_inside_root(tmp_path):
    from sklearn_alnm.io import load_manifest

    root = tmp_path / "data"
    (root / "us").mkdir(parents=True)
    (root / "us" / "a.png").write_bytes(b"")
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"")
    manifest = tmp_path / "cohort.csv"
    for bad in ("../secret.png", str(outside), "us/../../secret.png"):
        manifest.write_text(f"Patient ID,image\n007,us/a.png\n008,{bad}\n", encoding="utf-8")
        with pytest.raises(CohortInputError, match="outside root") as info:
            load_manifest(manifest, root=root)
        message = str(info.value)
        assert "'008'" in message and "image" in message and "secret.png" in message
    X = load_manifest(manifest, root=root, allow_outside_root=True)
    assert X.loc[1, "image"] == str(outside)
    assert X.loc[0, "Patient ID"] == "007"  # an id column named as clinics name it, kept as text
    # Without root, the manifest's folder is only the base of relative paths (no restriction).
    expected = os.path.abspath(tmp_path / "us" / ".." / ".." / "secret.png")
    assert load_manifest(manifest).loc[1, "image"] == expected


def _write_gif(path, frames, duration=100):
    from PIL import Image

    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=duration, loop=0)
    return path


def test_animated_gif_clips_are_videos(tmp_path):
    clip = np.stack([np.full((24, 32), 30 * t, dtype=np.uint8) for t in range(6)])
    clip[:, 4:8, 4:8] = 255
    path = _write_gif(tmp_path / "clip.gif", clip)
    video, fps = read_video(path, return_fps=True)
    assert video.shape == (6, 24, 32) and video.dtype == np.float32  # gray palette -> (T, H, W)
    np.testing.assert_allclose(video, clip, atol=2)
    assert fps == pytest.approx(10.0, rel=0.05)
    assert read_video(path, n_frames=3).shape == (3, 24, 32)
    # a GIF path in a manifest is recognised as a video reference
    assert ".gif" in alnm_io.VIDEO_EXTENSIONS


def test_one_channel_layout_per_video_column(tmp_path):
    gray = np.stack([np.full((16, 16), 10 * t, dtype=np.uint8) for t in range(5)])
    colour = np.stack([np.dstack([f, f // 2, 255 - f]) for f in gray])
    X = pd.DataFrame(
        {
            "case_id": ["A", "B"],
            "video": [
                write_video(tmp_path / "gray.avi", gray),
                str(_write_gif(tmp_path / "colour.gif", colour)),
            ],
        }
    )
    assert read_video(X.loc[0, "video"]).ndim == 3 and read_video(X.loc[1, "video"]).ndim == 4
    auto = read_column(X, "video", kind="video", n_frames=4)
    assert [v.shape for v in auto] == [(4, 16, 16, 3), (4, 16, 16, 3)]
    np.stack([auto[0], auto[0]])  # one layout: clips of a column stack
    np.testing.assert_array_equal(auto[0][..., 0], auto[0][..., 2])  # gray repeated
    gray_col = read_column(X, "video", kind="video", n_frames=4, channels="gray")
    assert [v.shape for v in gray_col] == [(4, 16, 16), (4, 16, 16)]
    luma = 0.299 * colour[0, ..., 0] + 0.587 * colour[0, ..., 1] + 0.114 * colour[0, ..., 2]
    np.testing.assert_allclose(gray_col[1][0], luma, atol=3)  # GIF palette rounding
    assert read_video(gray, channels="rgb").shape == (5, 16, 16, 3)
    with pytest.raises(ValueError, match="channels must be one of"):
        read_video(gray, channels="grey")


POCUS = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "pocus")


@pytest.mark.skipif(not os.path.isfile(os.path.join(POCUS, "labels.csv")), reason="no POCUS")
def test_real_clips_of_every_container_read_with_one_layout():
    labels = pd.read_csv(os.path.join(POCUS, "labels.csv"))
    labels["ext"] = labels["video"].str.rsplit(".", n=1).str[-1].str.lower()
    one_each = labels.groupby("ext").head(1)
    assert {"gif", "avi", "mov", "mpeg", "mp4"} <= set(one_each["ext"])
    X = pd.DataFrame(
        {
            "case_id": one_each["case_id"].astype(str).to_numpy(),
            "video": [os.path.join(POCUS, v) for v in one_each["video"]],
        }
    )
    clips = read_column(X, "video", kind="video", n_frames=8)
    layouts = {v.ndim for v in clips}
    assert len(layouts) == 1 and all(v.shape[0] == 8 for v in clips)
    gray = read_column(X, "video", kind="video", n_frames=8, channels="gray")
    assert all(v.ndim == 3 and np.isfinite(v).all() and v.max() > 0 for v in gray)
