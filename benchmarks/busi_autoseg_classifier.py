"""Real-data check: BUSI malignant vs benign from automatic masks vs ground-truth masks.

The end-to-end chain of the automatic-segmentation study on BUSI: on the fixed split of
``busi_segmentation.py`` (80 % training / 20 % test cases, stratified), a ResNet18 with random
initial weights (``ImageClassifier``) is trained on the training cases cropped around their
ground-truth lesions (``ROICropper``: largest lesion, 10 % margin, resampled). The test cases are
then cropped twice, around their ground-truth masks and around the masks predicted by a
segmenter saved by ``busi_segmentation.py`` (by default the mean fusion of U-Net, UNet++ and
DeepLabV3), and classified. Reported: the test AUC of each with its 95% DeLong CI, the paired
DeLong p-value between them, the segmenter's test Dice, and the wall time.

Usage::

    python benchmarks/busi_autoseg_classifier.py [--busi-dir DIR]
        [--segmenter busi_segmentation_results/fusion_mean.joblib] [--size 96] [--epochs 10]
"""

import argparse
import os
import time
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from busi_segmentation import DEFAULT_BUSI, busi_split
from sklearn.metrics import roc_auc_score

from sklearn_alnm.io import read_column
from sklearn_alnm.metrics import delong_test, dice_score, roc_auc_ci
from sklearn_alnm.models import ImageClassifier
from sklearn_alnm.preprocessing import ROICropper


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--busi-dir", default=os.environ.get("ALNM_BUSI_DIR", DEFAULT_BUSI))
    parser.add_argument(
        "--segmenter", default=str(Path("busi_segmentation_results") / "fusion_mean.joblib")
    )
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--margin", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    start = time.perf_counter()
    fit, hold, test = busi_split(args.busi_dir, args.seed)
    train = pd.concat([fit, hold])
    segmenter, _ = joblib.load(args.segmenter)
    auto = segmenter.predict(test)
    truth = read_column(test, "mask", kind="mask")
    empty = sum(not mask.any() for mask in auto)
    print(
        f"BUSI: {len(train)} training / {len(test)} test cases; segmenter {args.segmenter}: "
        f"test Dice {dice_score(truth, auto):.3f}, {empty} empty predicted masks",
        flush=True,
    )
    crop = ROICropper(
        "image", "mask", margin=args.margin, output_size=(args.size, args.size), empty="whole"
    )
    model = ImageClassifier(
        "image",
        None,
        crop=None,
        backbone=args.backbone,
        weights=None,
        input_size=args.size,
        normalize="zscore",
        augment="default",
        optimizer="adam",
        lr=1e-3,
        lr_schedule="cosine",
        max_epochs=args.epochs,
        batch_size=args.batch_size,
        device=args.device,
        random_state=args.seed,
    )
    fit_start = time.perf_counter()
    model.fit(crop.fit_transform(train), train["label"].to_numpy())
    print(
        f"{args.backbone} from scratch on the ground-truth crops ({args.size} px, margin "
        f"{args.margin}), {args.epochs} epochs: {time.perf_counter() - fit_start:.0f} s",
        flush=True,
    )
    positive = list(model.classes_).index("malignant")
    y = test["label"].to_numpy() == "malignant"
    scores = {
        "ground-truth masks": model.predict_proba(crop.transform(test))[:, positive],
        "automatic masks": model.predict_proba(crop.transform(test.assign(mask=auto)))[
            :, positive
        ],
    }
    for name, score in scores.items():
        auc, low, high = roc_auc_ci(y, score)
        assert np.isclose(auc, roc_auc_score(y, score))
        print(f"test AUC, crops of the {name}: {auc:.3f} (95% DeLong CI {low:.3f}-{high:.3f})")
    _, p = delong_test(y, scores["automatic masks"], scores["ground-truth masks"])
    print(f"paired DeLong p (automatic vs ground-truth masks): {p:.3f}")
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
