"""The input layer: one contract (columns, row ids, dataset, collate, content key) per kind."""

import numpy as np
import pandas as pd
import pytest
import torch
from torchvision.transforms import v2

from sklearn_alnm.datasets import make_alnm_cohort
from sklearn_alnm.inputs import (
    ImageBatch,
    ImageInput,
    ImageMaskInput,
    InstanceMaskInput,
    LazyRowsDataset,
    RandomFlipRotate,
    RandomResizedCropFlip,
    TensorInputDataset,
    collate_batches,
    instance_targets,
    resolve_augment,
)
from sklearn_alnm.inputs._augment import PerImage, PerSample
from sklearn_alnm.inputs._base import as_target
from sklearn_alnm.utils import CohortInputError


@pytest.fixture(scope="module")
def cohort():
    X, y = make_alnm_cohort(6, modalities="ultrasound", image_size=32, random_state=0)
    X = X.copy()
    X["patient_id"] = [f"P{i}" for i in range(len(X))]
    return X, np.asarray(y)


def _labels_and_weights(y):
    return as_target(y, np.linspace(0.5, 1.0, len(y)), dtypes=(torch.long, torch.float32))


def test_image_input_preloaded_and_lazy_datasets_serve_the_same_batches(cohort):
    X, y = cohort
    target = _labels_and_weights(y)
    eager = ImageInput("image", "mask", input_size=(16, 16), normalize="zscore")
    lazy = ImageInput("image", "mask", input_size=(16, 16), normalize="zscore")
    preloaded = eager.dataset(X, target)
    on_demand = lazy.dataset(X, target, preload=False)
    assert isinstance(preloaded, TensorInputDataset) and isinstance(on_demand, LazyRowsDataset)
    assert eager.in_chans == lazy.in_chans == 1
    assert not getattr(preloaded, "reads_on_access", False) and on_demand.reads_on_access
    a, (labels_a, weights_a) = collate_batches(preloaded.__getitems__([4, 0, 2]))
    b, (labels_b, weights_b) = collate_batches(on_demand.__getitems__([4, 0, 2]))
    torch.testing.assert_close(a, b)
    assert a.shape == (3, 1, 16, 16)
    assert labels_a.tolist() == labels_b.tolist() == y[[4, 0, 2]].tolist()
    torch.testing.assert_close(weights_a, weights_b)
    # a single item without target is a pair with a zero label, as skorch expects
    image, label = ImageInput("image", None, input_size=(16, 16)).dataset(X)[1]
    assert image.shape == (1, 16, 16) and int(label) == 0


def test_content_key_follows_the_inputs_and_the_targets(cohort):
    X, y = cohort
    make = ImageInput("image", "mask", input_size=(16, 16))
    key = make.content_key(make.dataset(X, as_target(y, dtypes=(torch.long,))))
    same = make.content_key(make.dataset(X, as_target(y, dtypes=(torch.long,))))
    flipped = make.content_key(make.dataset(X, as_target(1 - y, dtypes=(torch.long,))))
    other = X.copy()
    other.at[other.index[0], "image"] = np.zeros((32, 32), dtype=np.uint8)
    changed = make.content_key(make.dataset(other, as_target(y, dtypes=(torch.long,))))
    assert key == same and key != flipped and key != changed


def test_rgb_rows_decide_three_channels_and_gray_ones_are_replicated():
    gray = np.full((20, 20), 100, dtype=np.uint8)
    rgb = np.zeros((20, 20, 3), dtype=np.uint8)
    rgb[..., 0] = 255
    X = pd.DataFrame({"image": [gray, rgb]})
    images, in_chans = ImageInput("image", input_size=(8, 8), normalize="zscore").prepare(X)
    assert in_chans == 3 and images.shape == (2, 3, 8, 8)
    torch.testing.assert_close(images[0, 0], images[0, 2])


def test_check_names_the_owner_and_the_missing_column(cohort):
    X, _ = cohort
    pair = ImageMaskInput("image", "lesion", input_size=(16, 16))
    assert pair.columns == ["image"] and pair.training_columns == ["image", "lesion"]
    pair.check("UNetSegmenter", X)  # inference reads the images only
    with pytest.raises(CohortInputError, match="lesion"):
        pair.check("UNetSegmenter", X, training=True)
    with pytest.raises(TypeError, match="UNetSegmenter reads its input from a cohort"):
        pair.check("UNetSegmenter", X["image"])
    with pytest.raises(ValueError, match="UNetSegmenter got an empty cohort"):
        pair.check("UNetSegmenter", X.iloc[:0])
    assert ImageInput("image").row_ids(X) == [f"P{i}" for i in range(len(X))]


def test_image_mask_input_targets_the_resized_masks_and_keeps_the_grids(cohort):
    X, _ = cohort
    pair = ImageMaskInput("image", "mask", input_size=(16, 16))
    dataset = pair.dataset(X)
    images, masks = collate_batches(dataset.__getitems__([0, 1]))
    assert images.shape == (2, 1, 16, 16) and masks.shape == (2, 1, 16, 16)
    assert float(masks.min()) >= 0.0 and float(masks.max()) <= 1.0 and float(masks.sum()) > 0
    assert dataset.shapes == [(32, 32)] * len(X)
    inference = pair.dataset(X, with_masks=False)
    assert inference.target is None


def test_instance_input_builds_detector_targets_and_reads_lazily_at_inference(cohort):
    X, _ = cohort
    instances = InstanceMaskInput("image", "mask")
    training = instances.dataset(X, training=True)
    assert instances.in_chans == 1
    image, target = training[0]
    expected = instance_targets(np.asarray(X["mask"].iloc[0]))
    assert image.shape == (1, 32, 32)
    torch.testing.assert_close(target["boxes"], expected["boxes"])
    batch = instances.collate_fn([training[0], training[1]])
    assert isinstance(batch[0], ImageBatch) and len(batch[0]) == 2 and len(batch[1]) == 2
    inference = instances.dataset(X)
    assert inference.reads_on_access
    torch.testing.assert_close(inference[0][0], image)
    assert instances.content_key(training) == instances.content_key(
        InstanceMaskInput("image", "mask").dataset(X, training=True)
    )


def test_resolve_augment_defaults_and_per_image_callables():
    assert isinstance(resolve_augment("default"), RandomResizedCropFlip)
    assert isinstance(resolve_augment("default", joint=True), RandomFlipRotate)
    assert resolve_augment(None) is None
    batched = RandomFlipRotate(degrees=0.0)
    assert resolve_augment(batched, joint=True) is batched
    flip = v2.RandomHorizontalFlip(p=1.0)
    per_image = resolve_augment(flip)
    assert isinstance(per_image, PerImage)
    batch = torch.arange(2 * 4 * 4, dtype=torch.float32).reshape(2, 1, 4, 4)
    torch.testing.assert_close(per_image(batch), batch.flip(-1))
    pairs = resolve_augment(flip, joint=True)
    assert isinstance(pairs, PerSample)
    masks = (batch > 10).float()
    out_images, out_masks = pairs(batch, masks)
    torch.testing.assert_close(out_images, batch.flip(-1))
    torch.testing.assert_close(out_masks, masks.flip(-1))
    with pytest.raises(ValueError, match="augment must be 'default', None or a callable"):
        resolve_augment("strong")
    with pytest.raises(ValueError, match="augment must be"):
        resolve_augment(3)
