"""Shared test settings."""

import pytest
import torch

#: Scripts the tests launch in other processes, not test modules (nor doctest sources).
collect_ignore = ["_ddp_fit.py"]


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tests run torch on one intra-op thread (session-wide, so module-scoped fixtures that
    train are covered too): tiny networks gain nothing from more, and two test processes on
    two cores otherwise oversubscribe the CPU (a U-Net step was 50x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def bag_pipeline():
    """The multi-task + multi-instance pipeline (stage 1 -> MIL), tiny, fitted on the first 20
    of 30 synthetic bag patients: ``(pipeline, X, labels)`` with "N+" / "N0" labels."""
    import numpy as np
    from sklearn.pipeline import Pipeline

    from sklearn_alnm.datasets import make_alnm_cohort
    from sklearn_alnm.models import MILClassifier, MultiTaskSegClassifier

    X, y = make_alnm_cohort(30, modalities="bag", image_size=32, random_state=0)
    labels = np.where(y == 1, "N+", "N0")
    common = {"max_epochs": 2, "pos_label": "N+", "random_state": 0}
    stage1 = MultiTaskSegClassifier(
        backbone="plnet", dim=32, heads=4, input_size=32, augment=None, cv=None, **common
    )
    mil = MILClassifier("tokens", dim=16, heads=2, **common)
    pipe = Pipeline([("images", stage1), ("mil", mil)]).fit(X[:20], labels[:20])
    return pipe, X, labels
