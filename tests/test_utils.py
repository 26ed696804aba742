import logging
import pickle
import random

import numpy as np
import pytest
import torch

from sklearn_alnm import __version__, logger
from sklearn_alnm._logging import enable_console_logging, get_logger
from sklearn_alnm.utils import (
    CohortInputError,
    describe_location,
    resolve_device,
    seed_everything,
)


def test_version_is_a_release_string():
    assert __version__.count(".") == 2
    assert all(part.isdigit() for part in __version__.split("."))


@pytest.mark.parametrize("device", ["auto", None, "AUTO"])
def test_auto_device_follows_cuda_availability(device, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device(device) == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device(device) == "cuda"


def test_explicit_devices(monkeypatch):
    assert resolve_device("cpu") == "cpu"
    assert resolve_device(torch.device("cpu")) == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda:0") == "cuda:0"
    with pytest.raises(ValueError, match="only 1 CUDA device"):
        resolve_device("cuda:3")


@pytest.mark.parametrize("bad", ["gpu0", "tpu", 3.5])
def test_bad_device_names(bad):
    with pytest.raises(ValueError, match="device"):
        resolve_device(bad)


def test_seed_everything_reproduces_all_generators():
    seed_everything(123)
    first = (np.random.rand(3), torch.rand(3), random.random())  # noqa: NPY002
    seed_everything(123)
    second = (np.random.rand(3), torch.rand(3), random.random())  # noqa: NPY002
    np.testing.assert_array_equal(first[0], second[0])
    assert torch.equal(first[1], second[1])
    assert first[2] == second[2]


def test_seed_everything_inputs():
    assert seed_everything(7) == 7
    a = seed_everything(np.random.default_rng(5))
    b = seed_everything(np.random.default_rng(5))
    assert a == b and 0 <= a < 2**32
    assert seed_everything(np.random.RandomState(1)) == seed_everything(np.random.RandomState(1))
    assert isinstance(seed_everything(None), int)
    with pytest.raises(ValueError, match="random_state"):
        seed_everything(-1)


def test_cohort_error_names_row_column_file():
    err = CohortInputError("expected a PNG image", row="P007", column="image", path="x/y.txt")
    assert isinstance(err, ValueError)
    assert str(err) == "row 'P007', column 'image', file 'x/y.txt': expected a PNG image"
    assert (err.row, err.column, err.path, err.reason) == (
        "P007",
        "image",
        "x/y.txt",
        "expected a PNG image",
    )
    assert str(CohortInputError("bad")) == "bad"
    assert describe_location(column="mask") == "column 'mask'"


def test_cohort_error_located_and_pickled():
    low_level = CohortInputError("truncated file", path="a.png")
    located = low_level.located(row=3, column="mask")
    assert str(located) == "row 3, column 'mask', file 'a.png': truncated file"
    clone = pickle.loads(pickle.dumps(located))
    assert str(clone) == str(located) and clone.row == 3 and clone.path == "a.png"


def test_package_logger_hierarchy():
    assert get_logger("sklearn_alnm.io._image").parent.name in {"sklearn_alnm.io", "sklearn_alnm"}
    assert get_logger("thirdparty").name == "sklearn_alnm.thirdparty"
    assert any(isinstance(h, logging.NullHandler) for h in logger.handlers)
    before = len(logger.handlers)
    enable_console_logging(logging.WARNING)
    enable_console_logging(logging.WARNING)
    assert len(logger.handlers) == before + 1
    for handler in [h for h in logger.handlers if getattr(h, "_alnm_console", False)]:
        logger.removeHandler(handler)
    logger.setLevel(logging.NOTSET)


def test_feature_cache_keys_by_content_and_round_trips(tmp_path):
    from sklearn_alnm.utils import FeatureCache

    cache = FeatureCache(tmp_path / "c")
    image = np.arange(16.0).reshape(4, 4)
    key = cache.key("ns", image, {"a": 1})
    assert key == cache.key("ns", image.copy(), {"a": 1})  # same content, other object
    assert key != cache.key("ns", image + 1, {"a": 1})
    assert key != cache.key("ns", image, {"a": 2})
    assert key != cache.key("other", image, {"a": 1})
    assert cache.load("ns", key) is None and len(cache) == 0
    cache.save("ns", key, values=np.array([1.5, np.nan]), names=np.array(["x", "y"]))
    got = cache.load("ns", key)
    np.testing.assert_array_equal(got["values"], [1.5, np.nan])
    assert got["names"].tolist() == ["x", "y"]
    assert len(cache) == 1 and not list((tmp_path / "c").rglob(".tmp-*"))
    cache.clear("ns")
    assert len(cache) == 0


def test_feature_cache_treats_damaged_entries_as_misses(tmp_path, caplog):
    from sklearn_alnm.utils import FeatureCache

    cache = FeatureCache(tmp_path)
    key = cache.key("ns", 1)
    cache.save("ns", key, v=np.ones(2))
    next(tmp_path.rglob("*.npz")).write_bytes(b"not a zip file")
    with caplog.at_level(logging.WARNING, logger="sklearn_alnm"):
        assert cache.load("ns", key) is None
    assert "unreadable cache entry" in caplog.text


def test_resolve_cache_accepts_folder_memory_and_instance(tmp_path):
    import joblib

    from sklearn_alnm.utils import FeatureCache, resolve_cache

    assert resolve_cache(None) is None
    assert resolve_cache(str(tmp_path)) == FeatureCache(tmp_path)
    assert resolve_cache(tmp_path) == FeatureCache(tmp_path)
    assert resolve_cache(joblib.Memory(tmp_path, verbose=0)) == FeatureCache(tmp_path)
    assert resolve_cache(joblib.Memory(None)) is None
    instance = FeatureCache(tmp_path)
    assert resolve_cache(instance) is instance
    with pytest.raises(TypeError, match="cache must be"):
        resolve_cache(3)


@pytest.mark.parametrize(
    ("spec", "names", "message"),
    [
        ([[0, 1]], None, "got an array of shape"),
        ([True, False], None, "boolean mask of length 2, but X has 3 columns"),
        ([0, 3], None, r"indices \[3\] outside \[0, 2\]"),
        (["grade"], None, "needs X to be a DataFrame"),
        (["grade", "stage"], ["age", "grade", "size"], r"does not have: \['stage'\]"),
        ([0.5], None, "got an array of dtype float64"),
    ],
)
def test_column_mask_errors_name_the_parameter(spec, names, message):
    from sklearn_alnm.utils import column_mask

    with pytest.raises(ValueError, match=message) as info:
        column_mask(spec, 3, names, param="categorical_features", owner="Selector")
    assert str(info.value).startswith("Selector: categorical_features")


def test_column_mask_selections():
    from sklearn_alnm.utils import column_mask

    names = ["age", "grade", "size"]
    assert column_mask(None, 3, names).tolist() == [False, False, False]
    assert column_mask("size", 3, names).tolist() == [False, False, True]
    assert column_mask([], 3, names).tolist() == [False, False, False]
    assert column_mask([True, False, True], 3).tolist() == [True, False, True]
    assert column_mask(np.array([1]), 3).tolist() == [False, True, False]
