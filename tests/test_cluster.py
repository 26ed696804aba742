"""Tests of sklearn_alnm.utils._cluster and of the library's work on a real Dask cluster.

A ``dask.distributed.LocalCluster`` of two worker processes is started by the tests
themselves; every result computed on it must equal the one computed by joblib's default
(loky) backend. Skipped where ``distributed`` is not installed.
"""

import multiprocessing
import os
import pickle
import time

import joblib
import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline

from sklearn_alnm.cli import main
from sklearn_alnm.clinical import make_clinical_pipeline
from sklearn_alnm.datasets import make_alnm_cohort
from sklearn_alnm.features import DeepFeatures, RadiomicsFeatures
from sklearn_alnm.fusion import SignatureScores
from sklearn_alnm.io import load_manifest, save_manifest
from sklearn_alnm.utils import (
    ClusterUnavailableError,
    FeatureCache,
    check_parallel_spec,
    parallel_backend,
)

distributed = pytest.importorskip("distributed")

#: A port nothing listens on (discard): connecting to it fails at once.
UNREACHABLE = "tcp://127.0.0.1:9"


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as local:
        yield local


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """A cohort of files, as a clinic's manifest points at them."""
    home = tmp_path_factory.mktemp("cohort")
    X, y = make_alnm_cohort(
        40, modalities=("clinical", "ultrasound"), image_size=32, random_state=3, data_home=home
    )
    return X, np.where(y == 1, "N+", "N0")


def _on(cluster, function):
    """``function()`` with joblib's work sent to ``cluster`` (checked: its scheduler saw it)."""
    before = cluster.scheduler.transition_counter
    with parallel_backend({"backend": "dask", "scheduler": cluster.scheduler_address}) as used:
        assert used["workers"] == 2
        result = function()
    assert cluster.scheduler.transition_counter > before, "nothing ran on the cluster"
    return result


# --------------------------------------------------------------------------- feature cache
# (first in the file: the writers are forked before the cluster fixture starts its threads)


def _hammer(location, key, value, rounds):
    cache = FeatureCache(location)
    for _ in range(rounds):
        cache.save("ns", key, values=np.full(200_000, value, dtype=np.float64))


def test_feature_cache_survives_concurrent_writers_of_one_key(tmp_path):
    key = FeatureCache.key("ns", "same content")
    context = multiprocessing.get_context("fork")
    writers = [
        context.Process(target=_hammer, args=(tmp_path, key, float(v), 15)) for v in range(4)
    ]
    for writer in writers:
        writer.start()
    cache, seen = FeatureCache(tmp_path), set()
    while any(w.is_alive() for w in writers):
        entry = cache.load("ns", key)
        if entry is not None:  # never a partial file: a whole array of one writer's value
            values = entry["values"]
            assert values.shape == (200_000,) and np.unique(values).size == 1
            seen.add(float(values[0]))
    for writer in writers:
        writer.join()
        assert writer.exitcode == 0
    final = cache.load("ns", key)["values"]
    assert np.unique(final).size == 1 and final[0] in {0.0, 1.0, 2.0, 3.0}
    assert not list(tmp_path.rglob(".tmp-*"))  # no temporary file left behind
    assert seen  # the reader did read while the writers wrote


# --------------------------------------------------------------------------- same results


def test_radiomics_on_the_cluster_equals_loky(cluster, cohort):
    X, _ = cohort
    radiomics = RadiomicsFeatures(feature_classes=["firstorder", "shape2D"], n_jobs=2)
    expected = radiomics.fit_transform(X)
    got = _on(cluster, lambda: radiomics.fit_transform(X))
    np.testing.assert_array_equal(got, expected)
    assert np.isfinite(expected).all() and expected.shape[0] == len(X)


def test_signatures_and_grid_search_on_the_cluster_equal_loky(cluster, cohort):
    X, y = cohort
    clinical = X.drop(columns=["image", "mask"])
    scores = SignatureScores(
        [
            ("lr", make_clinical_pipeline(LogisticRegression(C=0.5))),
            ("lr_strong", make_clinical_pipeline(LogisticRegression(C=0.05))),
        ],
        cv=3,
        n_jobs=2,
        pos_label="N+",
    )
    expected = scores.fit(clinical, y).transform(clinical)
    got = _on(cluster, lambda: scores.fit(clinical, y).transform(clinical))
    np.testing.assert_allclose(got, expected, rtol=0, atol=0)

    search = GridSearchCV(
        make_clinical_pipeline(LogisticRegression()),
        {"model__C": [0.01, 0.1, 1.0]},
        cv=StratifiedKFold(3, shuffle=True, random_state=0),
        scoring="roc_auc",
        n_jobs=2,
    )
    expected = search.fit(clinical, y).cv_results_["mean_test_score"]
    got = _on(cluster, lambda: search.fit(clinical, y).cv_results_["mean_test_score"])
    np.testing.assert_array_equal(got, expected)


def test_deep_features_cross_validated_on_the_cluster_equal_loky(cluster, cohort):
    X, y = cohort
    model = make_pipeline(
        DeepFeatures(backbone="resnet18", weights=None, input_size=32, random_state=0),
        LogisticRegression(max_iter=200),
    )
    cv = StratifiedKFold(2, shuffle=True, random_state=0)
    expected = cross_val_score(model, X, y, cv=cv, scoring="roc_auc", n_jobs=2)
    got = _on(cluster, lambda: cross_val_score(model, X, y, cv=cv, scoring="roc_auc", n_jobs=2))
    np.testing.assert_allclose(got, expected, rtol=1e-6)


# --------------------------------------------------------------------------- what travels


class _RecordingParallel:
    """Stands in for joblib.Parallel: pickles each task as a backend would, then runs it."""

    sizes: list = []

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, tasks):
        for function, args, kwargs in tasks:
            type(self).sizes.append(len(pickle.dumps((function, args, kwargs))))
            yield function(*args, **kwargs)


def test_a_radiomics_task_carries_one_row_not_the_cohort(cohort, monkeypatch):
    import sklearn_alnm.features._radiomics as radiomics_module

    X, _ = cohort
    monkeypatch.setattr(radiomics_module, "Parallel", _RecordingParallel)
    radiomics = RadiomicsFeatures(feature_classes=["firstorder"]).fit(X)
    sizes = {}
    for n in (4, 40):
        _RecordingParallel.sizes = []
        radiomics.transform(X.iloc[:n])
        sizes[n] = list(_RecordingParallel.sizes)
        assert len(sizes[n]) == n
    # a task holds the row's paths and the settings: the same few kilobytes whatever the size
    # of the cohort (a pickled copy of the cohort would grow tenfold)
    assert max(sizes[40]) < 8_000
    assert abs(np.mean(sizes[40]) - np.mean(sizes[4])) < 100


# --------------------------------------------------------------------------- specification


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"backend": "spark"}, "backend must be one of"),
        ({"backend": "dask", "workers": 4}, "unknown setting"),
        ({"backend": "loky", "scheduler": "tcp://x:1"}, "'scheduler' is a Dask setting"),
        ({"backend": "dask", "n_jobs": 0}, "n_jobs must be a non-zero integer"),
        ({"backend": "dask", "timeout": -1}, "timeout must be a positive number"),
        ({"backend": "dask", "scheduler": ""}, "scheduler must be an address"),
        (["dask"], "expected a mapping"),
    ],
)
def test_invalid_parallel_specifications(spec, message):
    with pytest.raises(ValueError, match=message):
        check_parallel_spec(spec)


def test_parallel_spec_defaults_and_the_joblib_context():
    assert check_parallel_spec("dask") == {
        "backend": "dask",
        "scheduler": None,
        "address": None,
        "n_jobs": -1,
        "timeout": 10.0,
    }
    with parallel_backend({"backend": "threading", "n_jobs": 3}):
        backend, n_jobs = joblib.parallel.get_active_backend()
        assert type(backend).__name__ == "ThreadingBackend" and n_jobs == 3


def test_the_local_cluster_keeps_glibc_malloc_defaults_in_its_workers(monkeypatch):
    """Dask's default MALLOC_TRIM_THRESHOLD_ turns off glibc's adaptive mmap threshold (numpy
    temporaries mapped and unmapped afresh; 1.45x slower tasks in bench_cluster.py)."""
    from distributed import get_client

    # a Dask cluster started earlier in this process (the module's fixture) exported it here
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    with parallel_backend({"backend": "dask", "n_jobs": 2}) as used:
        client = get_client()
        environ = client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_"))
        threads = client.run(lambda: os.environ.get("OMP_NUM_THREADS"))
    assert used["workers"] >= 1
    assert set(environ.values()) == {None}
    assert set(threads.values()) == {"1"}  # Dask's other defaults stay
    assert "MALLOC_TRIM_THRESHOLD_" not in os.environ


def test_unreachable_scheduler_is_one_clear_error_quickly():
    start = time.perf_counter()
    with pytest.raises(ClusterUnavailableError, match="cannot reach the Dask scheduler"):
        with parallel_backend({"backend": "dask", "scheduler": UNREACHABLE, "timeout": 2}):
            pytest.fail("the block must not run")
    assert time.perf_counter() - start < 15


# --------------------------------------------------------------------------- alnm run


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    make_alnm_cohort(
        54,
        modalities=("clinical", "mammography"),
        image_size=32,
        random_state=1,
        data_home=root / "cohort",
    )
    manifest = load_manifest(root / "cohort" / "manifest.csv")
    manifest["cohort"] = np.where(np.arange(len(manifest)) % 3 == 0, "test", "training")
    save_manifest(manifest, root / "cohort" / "manifest.csv")
    config = {
        "title": "Cluster study",
        "manifest": "cohort/manifest.csv",
        "label": "label",
        "split": {"by": "cohort", "train": "training"},
        "models": {
            "Clinical": {"recipe": "clinical"},
            "Radiomics": {
                "recipe": "mammography_fusion",
                "params": {
                    "kind": "pre",
                    "modalities": ["radiomics"],
                    "views": ["cc"],
                    "radiomics": {"feature_classes": ["firstorder", "shape2D"], "n_jobs": 2},
                    "lasso_cv": 3,
                    "random_state": 0,
                },
            },
        },
        "primary": "Radiomics",
    }
    (root / "study.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return root


def test_alnm_run_on_the_cluster_writes_the_same_report(cluster, study, capsys):
    assert main(["run", str(study / "study.yaml"), "--out", str(study / "local")]) == 0
    address = cluster.scheduler_address
    out = study / "on-cluster"
    before = cluster.scheduler.transition_counter
    assert main(["run", str(study / "study.yaml"), "--out", str(out), "--scheduler", address]) == 0
    assert cluster.scheduler.transition_counter > before  # the radiomics rows ran there
    local = pd.read_csv(study / "local" / "report" / "metrics.csv")
    remote = pd.read_csv(out / "report" / "metrics.csv")
    pd.testing.assert_frame_equal(local, remote)
    capsys.readouterr()


def test_alnm_run_with_an_unreachable_scheduler_fails_before_any_work(study, capsys):
    config = yaml.safe_load((study / "study.yaml").read_text())
    config["parallel"] = {"backend": "dask", "scheduler": UNREACHABLE, "timeout": 2}
    (study / "unreachable.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    assert main(["run", str(study / "unreachable.yaml")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("alnm: error: cannot reach the Dask scheduler") and "\n" not in err
    assert not (study / "unreachable-results").exists()
    config["parallel"] = {"backend": "dask", "workers": 2}
    (study / "bad.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    assert main(["run", str(study / "bad.yaml")]) == 2
    assert "parallel: unknown setting(s) ['workers']" in capsys.readouterr().err


def test_radiomics_on_ray_equals_loky(cohort):
    import signal

    ray = pytest.importorskip("ray")
    X, _ = cohort
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    radiomics = RadiomicsFeatures(feature_classes=["firstorder", "shape2D"], n_jobs=2)
    expected = radiomics.fit_transform(X)
    with parallel_backend({"backend": "ray", "n_jobs": 2}) as used:
        assert ray.is_initialized() and used["workers"] >= 1
        got = radiomics.fit_transform(X)
    assert not ray.is_initialized()  # the instance the block started is shut down
    # and the process's signal handlers are the caller's again (ray.init replaces them)
    assert {sig: signal.getsignal(sig) for sig in handlers} == handlers
    np.testing.assert_array_equal(got, expected)
