"""Real clips: 5-fold grouped CV of every video architecture vs a static key-frame model.

107 real lung-ultrasound clips (MP4, AVI, MOV, MPEG, GIF; see the data folder's README), task
``label != "regular"`` (abnormal 54 vs regular 53). Folds are stratified and grouped by
``group`` (the patient), so frames of one patient never sit in both a training and a test
fold. Each video architecture is a :class:`~sklearn_alnm.models.VideoClassifier` trained from
scratch (no pretrained weights); the static counterpart is an
:class:`~sklearn_alnm.models.ImageClassifier` on the middle frame of each clip
(:class:`~sklearn_alnm.preprocessing.FrameSelector`, a row-wise step run once) with the same
2-D backbone, frame size, epochs and optimiser. Reported per model: the pooled out-of-fold
AUC with its 95% DeLong CI, the per-fold AUCs, the DeLong p-value against the static model
(paired, same patients), and the wall time. Clips are decoded once for all folds and models
(``cache="memory"``).

Usage::

    python benchmarks/pocus_video_cv.py [--pocus-dir DIR] [--archs tsm,tin,r3d_18,static]
        [--frames 8] [--size 64] [--epochs 20] [--lr 1e-3] [--batch-size 8] [--folds 5]

``--archs`` takes ``arch:epochs`` to give one model its own number of epochs (e.g.
``r3d_18:12``, the slowest network).
"""

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold

from sklearn_alnm.inputs import ClipAugment
from sklearn_alnm.io import load_manifest
from sklearn_alnm.metrics import delong_test, roc_auc_ci
from sklearn_alnm.models import ImageClassifier, VideoClassifier
from sklearn_alnm.preprocessing import FrameSelector

DEFAULT_POCUS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "pocus"


def build_models(args):
    """Unfitted models by name: the video architectures and the static key-frame model."""
    common = dict(
        lr=args.lr,
        max_epochs=args.epochs,
        batch_size=args.batch_size,
        device=args.device,
        random_state=args.seed,
        pos_label="abnormal",
        optimizer="adam",
        lr_schedule="cosine",
    )
    models = {}
    for entry in args.archs:
        arch, _, epochs = entry.partition(":")  # "r3d_18:12": that model's own epochs
        common["max_epochs"] = int(epochs) if epochs else args.epochs
        if arch == "static":
            # the key-frame column is written once before the CV (FrameSelector is row-wise)
            models[f"static (key frame){entry[len(arch) :]}"] = ImageClassifier(
                "key_frame",
                backbone=args.backbone,
                input_size=args.size,
                normalize="zscore",
                augment="default",
                **common,
            )
        else:
            models[entry] = VideoClassifier(
                "video",
                arch=arch,
                backbone=args.backbone,
                n_frames=args.frames,
                frame_size=args.size,
                resize=None,
                normalize="zscore",
                augment=ClipAugment(temporal_jitter=args.jitter),
                cache="memory",
                **common,
            )
    return models


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pocus-dir", default=os.environ.get("ALNM_POCUS_DIR", DEFAULT_POCUS))
    parser.add_argument("--archs", default="tsm,tin,r3d_18,static")
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--jitter", type=int, default=1)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.archs = [a.strip() for a in args.archs.split(",") if a.strip()]
    if args.threads:
        torch.set_num_threads(args.threads)

    X = load_manifest(os.path.join(args.pocus_dir, "labels.csv"))
    y = np.where(X.pop("label") == "regular", "regular", "abnormal")
    groups = X["group"].to_numpy()
    if any(entry.partition(":")[0] == "static" for entry in args.archs):
        X = FrameSelector("video", method="middle", output_col="key_frame").fit_transform(X)
    print(
        f"POCUS: {len(y)} clips of {len(np.unique(groups))} patients ({(y == 'abnormal').sum()} "
        f"abnormal); {args.folds}-fold CV stratified and grouped by patient; from scratch, "
        f"{args.frames} frames x {args.size} px, clip z-score, crop/flip/brightness + temporal "
        f"jitter {args.jitter}, Adam lr {args.lr} (cosine), {args.epochs} epochs, batch "
        f"{args.batch_size}, backbone {args.backbone}",
        flush=True,
    )
    splits = list(
        StratifiedGroupKFold(args.folds, shuffle=True, random_state=args.seed).split(X, y, groups)
    )
    positive = y == "abnormal"
    results = {}
    for name, model in build_models(args).items():
        proba = np.zeros(len(y))
        folds = []
        start = time.perf_counter()
        for train, test in splits:
            fitted = clone(model).fit(X.iloc[train], y[train])
            column = list(fitted.classes_).index("abnormal")
            proba[test] = fitted.predict_proba(X.iloc[test])[:, column]
            folds.append(roc_auc_score(positive[test], proba[test]))
        seconds = time.perf_counter() - start
        results[name] = proba
        auc, low, high = roc_auc_ci(positive, proba)
        print(
            f"{name:>20}: AUC {auc:.3f} (95% DeLong CI {low:.3f}-{high:.3f}); folds "
            f"{' '.join(f'{a:.2f}' for a in folds)}; {seconds / 60:.1f} min",
            flush=True,
        )
    static = next((name for name in results if name.startswith("static")), None)
    if static is not None:
        for name, proba in results.items():
            if name != static:
                z, p = delong_test(positive, proba, results[static])
                print(f"DeLong {name} vs {static}: z {z:.2f}, p {p:.3f}")


if __name__ == "__main__":
    main()
