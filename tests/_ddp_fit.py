"""Fit ImageClassifiers with ``distributed=True``, launched by torchrun or run on its own.

Used by tests/test_distributed.py: ``python -m torch.distributed.run --nproc_per_node 2
_ddp_fit.py OUT [quick]`` (or ``python _ddp_fit.py OUT`` for the one-process reference).
Every rank writes what it ended with to ``OUT/rank<r>.pt`` so the test can compare the ranks;
the fitted pickle is written by the main process only, as a training script should.
"""

import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import GridSearchCV
from skorch.callbacks import Callback, Checkpoint
from test_models import _tiny_cnn as bn_cnn  # conv, batch norm, ReLU, pool, linear
from torch import nn

from sklearn_alnm.models import ImageClassifier
from sklearn_alnm.nn import BackboneSpec, register_backbone
from sklearn_alnm.utils import data_parallel_info, is_main_process

torch.set_num_threads(1)


def plain_cnn(weights=None, progress=True, num_classes=1000):
    """No batch norm and no dropout: data-parallel and one-process training agree."""
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, num_classes),
    )


def register_networks():
    """Register the two test networks (in the launched processes, and in the test process
    that loads their pickle)."""
    register_backbone(
        BackboneSpec(
            "ddp_plain", plain_cnn, 8, head="6", first_conv="0", gradcam_layer="3", min_input_size=8
        ),
        overwrite=True,
    )
    register_backbone(
        BackboneSpec(
            "ddp_bn", bn_cnn, 8, head="5", first_conv="0", gradcam_layer="2", min_input_size=8
        ),
        overwrite=True,
    )


class FreezeFirstConv(Callback):
    """Freezes the first convolution from the second epoch (DDP must be wrapped again)."""

    def on_epoch_begin(self, net, **kwargs):
        if len(net.history) == 2:
            net.module_.net[0].weight.requires_grad_(False)
            net.module_.net[0].bias.requires_grad_(False)


SAVES = []


def count_checkpoint_writes():
    """Record the epoch of every checkpoint this process really writes."""
    save_model = Checkpoint.save_model

    def counting_save_model(self, net):
        SAVES.append(len(net.history))
        return save_model(self, net)

    Checkpoint.save_model = counting_save_model


def cohort(n=64, size=16, seed=0):
    """Class "N+": a bright disc in noise; "N0": noise only."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    disc = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 4) ** 2
    y = np.arange(n) % 2
    images = [rng.normal(90, 30, (size, size)) + 25 * disc * label for label in y]
    X = pd.DataFrame({"image": [np.clip(im, 0, 255).astype(np.float32) for im in images]})
    return X, np.where(y == 1, "N+", "N0")


def classifier(backbone, **kwargs):
    params = dict(
        backbone=backbone,
        input_size=16,
        crop=None,
        augment=None,
        dropout=0.0,
        optimizer="sgd",  # unlike Adam, SGD's step shows a summed instead of averaged gradient
        lr=0.3,
        max_epochs=6,
        batch_size=16,
        valid_split=0.25,
        pos_label="N+",
        distributed=True,
        device="cpu",
        random_state=0,
    )
    params.update(kwargs)
    return ImageClassifier(**params)


def state(model):
    return {k: v.detach().clone() for k, v in model.module_.state_dict().items()}


def families():
    """One tiny data-parallel fit of each other family: the module of every rank."""
    from sklearn.pipeline import Pipeline

    from sklearn_alnm.datasets import make_alnm_cohort
    from sklearn_alnm.models import MILClassifier, MultiTaskSegClassifier, VideoClassifier
    from sklearn_alnm.segmentation import UNetSegmenter

    common = {"max_epochs": 2, "distributed": True, "device": "cpu", "random_state": 0}
    states = {}
    X, y = make_alnm_cohort(16, modalities="video", image_size=32, n_frames=4, random_state=0)
    video = VideoClassifier(
        arch="tsm",
        backbone="resnet18",
        n_frames=4,
        frame_size=32,
        resize=None,
        batch_size=8,
        **common,
    ).fit(X, y)
    states["video"] = state(video)
    X, y = make_alnm_cohort(16, modalities="ultrasound", image_size=32, random_state=0)
    unet = UNetSegmenter(base_channels=8, depth=2, input_size=32, batch_size=8, **common)
    states["unet"] = state(unet.fit(X))
    X, y = make_alnm_cohort(16, modalities="bag", image_size=32, random_state=0)
    stage1 = MultiTaskSegClassifier(
        backbone="plnet",
        dim=32,
        heads=4,
        input_size=32,
        augment=None,
        cv=None,
        batch_size=8,
        **common,
    )
    mil = MILClassifier("tokens", dim=16, heads=2, batch_size=4, **common)
    pipe = Pipeline([("images", stage1), ("mil", mil)]).fit(X, y)
    states["multitask"] = state(pipe.named_steps["images"])
    states["mil"] = state(pipe.named_steps["mil"])
    return states


def _accelerate_initialised():
    """Whether accelerate's PartialState set this process up (only if accelerate was used)."""
    state = sys.modules.get("accelerate.state")
    return bool(state is not None and state.PartialState._shared_state)


def main():
    register_networks()
    count_checkpoint_writes()
    out = Path(sys.argv[1])
    quick = "quick" in sys.argv[2:]
    out.mkdir(parents=True, exist_ok=True)
    info = data_parallel_info()  # before the fit: no process group yet
    X, y = cohort()
    plain = classifier("ddp_plain", checkpoint_dir=out / "checkpoints").fit(X, y)
    info = data_parallel_info()
    result = {
        "world_size": info.world_size,
        "backend": info.backend,
        "plain_state": state(plain),
        "plain_proba": plain.predict_proba(X),
        "plain_history": [
            {k: row[k] for k in ("train_loss", "valid_loss", "train_auc", "valid_auc")}
            for row in plain.history_
        ],
        "plain_batch_sizes": [
            [b["train_batch_size"] for b in row["batches"] if "train_batch_size" in b]
            for row in plain.history_
        ],
        "checkpoint_saves": list(SAVES),
        "accelerate_state": _accelerate_initialised(),
    }
    if is_main_process():
        joblib.dump(plain, out / "plain.joblib")
    if not quick:
        bn = classifier("ddp_bn", callbacks=[("freeze", FreezeFirstConv())]).fit(X, y)
        result["bn_state"] = state(bn)
        result["bn_first_conv_requires_grad"] = bn.module_.net[0].weight.requires_grad
        search = GridSearchCV(
            classifier("ddp_plain", max_epochs=2, valid_split=None),
            {"lr": [0.1, 0.3]},
            cv=2,
            scoring="roc_auc",
        ).fit(X, y)
        result["search_scores"] = search.cv_results_["mean_test_score"].tolist()
        result["search_best"] = search.best_params_
    if "families" in sys.argv[2:]:
        result["families"] = families()
    torch.save(result, out / f"rank{info.rank}.pt")


if __name__ == "__main__":
    import _ddp_fit  # the networks pickle as _ddp_fit.<name>, importable by the test

    _ddp_fit.main()
