"""Data-parallel training: two CPU processes launched by torchrun against one process.

The launched runs execute ``tests/_ddp_fit.py`` (ImageClassifiers with ``distributed=True``);
each rank saves what it ended with, and these tests compare the ranks with each other and
with the same script run as one plain process.
"""

import os
import pickle
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.utils._param_validation import InvalidParameterError
from torch.utils.data import TensorDataset

from sklearn_alnm.models import ImageClassifier
from sklearn_alnm.models._net import _concat, _DataParallel
from sklearn_alnm.nn import unregister_backbone
from sklearn_alnm.utils import DataParallelInfo, data_parallel_info, is_main_process

SCRIPT = Path(__file__).with_name("_ddp_fit.py")
#: Largest difference allowed between the data-parallel and the one-process fit: float32
#: sums in another order (the mean of two half-batch means vs one mean) over 18 SGD steps.
PROBA_TOL = 1e-5
WEIGHT_TOL = 1e-4


def _run(args, out, *extra, env=None, timeout=300):
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    env.pop("WORLD_SIZE", None)
    done = subprocess.run(
        [sys.executable, *args, os.fspath(SCRIPT), os.fspath(out), *extra],
        cwd=SCRIPT.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def _torchrun(n=2):
    return ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}"]


def _load(path):
    return torch.load(path, weights_only=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """``(rank 0, rank 1, one process, folder of the two-process run)``."""
    two = tmp_path_factory.mktemp("ddp")
    one = tmp_path_factory.mktemp("single")
    _run(_torchrun(2), two, "families")
    _run([], one)
    return _load(two / "rank0.pt"), _load(two / "rank1.pt"), _load(one / "rank0.pt"), two


def _assert_same_state(a, b):
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_two_gloo_processes_train_together(runs):
    rank0, rank1, single, _ = runs
    assert rank0["world_size"] == rank1["world_size"] == 2
    assert rank0["backend"] == "gloo"
    assert single["world_size"] == 1 and single["backend"] is None
    assert not rank0["accelerate_state"]  # torchrun alone: torch.distributed's own set-up


def test_every_rank_ends_with_identical_weights_and_history(runs):
    rank0, rank1, _, _ = runs
    _assert_same_state(rank0["plain_state"], rank1["plain_state"])
    np.testing.assert_array_equal(rank0["plain_proba"], rank1["plain_proba"])
    assert rank0["plain_history"] == rank1["plain_history"]


def test_batch_norm_buffers_and_a_freezing_schedule_stay_identical_across_ranks(runs):
    rank0, rank1, _, _ = runs
    _assert_same_state(rank0["bn_state"], rank1["bn_state"])  # running mean / var included
    assert any("running_mean" in name for name in rank0["bn_state"])
    assert rank0["bn_first_conv_requires_grad"] is False  # frozen from epoch 2: DDP re-made


@pytest.mark.parametrize("family", ["video", "unet", "multitask", "mil"])
def test_every_family_of_network_trains_data_parallel_to_identical_ranks(runs, family):
    rank0, rank1, _, _ = runs
    _assert_same_state(rank0["families"][family], rank1["families"][family])


def test_data_parallel_fit_matches_one_process_with_the_same_global_batch(runs):
    rank0, _, single, _ = runs
    # each step's global batch of 16 is the one-process batch (8 per rank)
    assert rank0["plain_batch_sizes"] == single["plain_batch_sizes"] == [[16, 16, 16]] * 6
    for name, value in single["plain_state"].items():
        torch.testing.assert_close(rank0["plain_state"][name], value, atol=WEIGHT_TOL, rtol=0)
    np.testing.assert_allclose(rank0["plain_proba"], single["plain_proba"], atol=PROBA_TOL)
    for two, one in zip(rank0["plain_history"], single["plain_history"], strict=True):
        assert two["train_loss"] == pytest.approx(one["train_loss"], rel=1e-5)
        assert two["valid_loss"] == pytest.approx(one["valid_loss"], rel=1e-5)
        # training AUC is scored on the outputs of both ranks: the whole epoch
        assert two["train_auc"] == pytest.approx(one["train_auc"])
        assert two["valid_auc"] == pytest.approx(one["valid_auc"])
    assert single["plain_history"][-1]["valid_auc"] > 0.9  # it did learn


def test_only_the_main_process_writes_checkpoints_and_the_pickle(runs):
    rank0, rank1, _, folder = runs
    assert rank0["checkpoint_saves"] == [1, 2, 3, 4, 5, 6]
    assert rank1["checkpoint_saves"] == []
    (run,) = (folder / "checkpoints").iterdir()
    assert (run / "finished.json").exists()
    # the pickle loads and predicts in this single CPU process like any other
    _script_module().register_networks()
    try:
        model = joblib.load(folder / "plain.joblib")
        X = _script_module().cohort()[0]
        np.testing.assert_allclose(model.predict_proba(X), rank0["plain_proba"], atol=1e-7)
        assert set(model.predict(X)) <= {"N0", "N+"}
    finally:
        unregister_backbone("ddp_plain")
        unregister_backbone("ddp_bn")


def test_grid_search_of_data_parallel_fits_agrees_across_ranks(runs):
    rank0, rank1, single, _ = runs
    assert rank0["search_scores"] == rank1["search_scores"]
    assert rank0["search_best"] == rank1["search_best"]
    np.testing.assert_allclose(rank0["search_scores"], single["search_scores"], atol=1e-6)


def test_accelerate_sets_up_the_process_group_when_it_launched_the_script(tmp_path):
    pytest.importorskip("accelerate")
    # the variables accelerate launch sets; torchrun provides the ranks (accelerate's own
    # multi-CPU launch goes through mpirun, which this machine lacks)
    _run(
        _torchrun(2),
        tmp_path,
        "quick",
        env={"ACCELERATE_USE_CPU": "True", "ACCELERATE_MIXED_PRECISION": "no"},
    )
    rank0, rank1 = _load(tmp_path / "rank0.pt"), _load(tmp_path / "rank1.pt")
    assert rank0["world_size"] == 2 and rank0["backend"] == "gloo"
    assert rank0["accelerate_state"] and rank1["accelerate_state"]  # PartialState set it up
    _assert_same_state(rank0["plain_state"], rank1["plain_state"])


def _script_module():
    sys.path.insert(0, os.fspath(SCRIPT.parent))
    try:
        import _ddp_fit
    finally:
        sys.path.pop(0)
    return _ddp_fit


# ----------------------------------------------------------------- in this one process


def _images(n=12, size=16):
    rng = np.random.default_rng(0)
    images = [rng.uniform(0, 255, (size, size)).astype(np.float32) for _ in range(n)]
    return pd.DataFrame({"image": images}), np.where(np.arange(n) % 2, "N+", "N0")


def test_without_a_launcher_it_is_one_process_of_one():
    assert data_parallel_info() == DataParallelInfo(0, 1, 0, None)
    assert is_main_process()


def test_distributed_fit_without_a_launcher_trains_and_pickles():
    X, y = _images()
    clf = ImageClassifier(
        backbone="resnet18",
        input_size=32,
        max_epochs=1,
        batch_size=4,
        distributed={"find_unused_parameters": False},
        pos_label="N+",
        device="cpu",
        random_state=0,
    )
    assert clone(clf).get_params()["distributed"] == {"find_unused_parameters": False}
    clf.fit(X, y)
    assert clf.net_._data_parallel is None  # the DDP side lives for one fit only
    assert "_data_parallel" not in clf.net_.__getstate__()
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    # the same seed draws the same batches: a second fit is identical
    refit = clone(clf).fit(X, y)
    np.testing.assert_array_equal(refit.predict_proba(X), clf.predict_proba(X))


def test_distributed_must_be_a_bool_or_ddp_options():
    X, y = _images(4)
    with pytest.raises(InvalidParameterError, match="distributed"):
        ImageClassifier(backbone="resnet18", distributed="yes", pos_label="N+").fit(X, y)


def _parallel(world_size, rank=0):
    parallel = object.__new__(_DataParallel)
    parallel.rank, parallel.world_size, parallel.seed = rank, world_size, 7
    return parallel


def test_each_rank_takes_its_share_of_one_shuffled_order():
    data = TensorDataset(torch.arange(20))
    shares = [
        _parallel(2, rank).iterator_kwargs(data, {"batch_size": 8, "shuffle": True})
        for rank in (0, 1)
    ]
    assert [s["batch_size"] for s in shares] == [4, 4]
    order = [list(s["sampler"]) for s in shares]
    assert sorted(order[0] + order[1]) == list(range(20))
    one = list(_parallel(1).iterator_kwargs(data, {"batch_size": 8})["sampler"])
    # step k of the two ranks together is step k of the single process
    for k in range(2):
        step = set(order[0][4 * k : 4 * k + 4]) | set(order[1][4 * k : 4 * k + 4])
        assert step == set(one[8 * k : 8 * k + 8])


def test_the_global_batch_must_split_evenly_and_the_sampler_is_ours():
    data = TensorDataset(torch.arange(20))
    with pytest.raises(ValueError, match="multiple of 2"):
        _parallel(2).iterator_kwargs(data, {"batch_size": 9})
    with pytest.raises(ValueError, match="DistributedSampler"):
        _parallel(2).iterator_kwargs(data, {"batch_size": 8, "sampler": [0, 1]})
    whole = _parallel(2).iterator_kwargs(data, {"batch_size": 20})
    assert whole["batch_size"] == 10


def test_the_ranks_outputs_are_concatenated_along_the_batch():
    parts = [
        (torch.zeros(2), {"seg": torch.zeros(2, 3), "loss": torch.tensor(1.0)}, [1, 2]),
        (torch.ones(3), {"seg": torch.ones(3, 3), "loss": torch.tensor(2.0)}, [3]),
    ]
    y, out, items = _concat(parts)
    assert y.tolist() == [0, 0, 1, 1, 1]
    assert out["seg"].shape == (5, 3) and out["loss"].tolist() == [1.0, 2.0]
    assert items == [1, 2, 3]


def test_learnable_parameters_outside_the_module_are_refused():
    class _Net:
        module_ = torch.nn.Linear(2, 1)
        criterion_ = torch.nn.Linear(1, 1)  # e.g. a learnt loss weighting

        def get_all_learnable_params(self):
            yield from self.module_.named_parameters()
            for name, p in self.criterion_.named_parameters():
                yield "criterion." + name, p

    parallel = _parallel(2)
    parallel.net, parallel.ddp, parallel.options = _Net(), None, {}
    with pytest.raises(ValueError, match=r"module only.*criterion\.weight"):
        parallel.wrap()


def test_a_worker_process_of_a_launched_rank_refuses_to_join(monkeypatch):
    """GridSearchCV(n_jobs=2) inside a torchrun script: its loky workers inherit RANK and
    WORLD_SIZE; joining would hang, so they fail at once."""
    import multiprocessing

    from sklearn_alnm.utils import init_data_parallel

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setattr(multiprocessing, "parent_process", lambda: object())
    with pytest.raises(RuntimeError, match="worker process.*n_jobs=1"):
        init_data_parallel("cpu")
    X, y = _images(4)
    clf = ImageClassifier(backbone="resnet18", distributed=True, pos_label="N+", device="cpu")
    with pytest.raises(RuntimeError, match="only the processes the launcher started"):
        clf.fit(X, y)
