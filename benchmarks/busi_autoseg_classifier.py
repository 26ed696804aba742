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
        [--train-on-automatic]
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
    parser.add_argument(
        "--train-on-automatic",
        action="store_true",
        help="also train a classifier on the training cases cropped with predicted masks",
    )
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
    y = test["label"].to_numpy() == "malignant"

    def train_and_score(train_cohort, test_cohorts, what):
        """Fit the classifier on the crops of ``train_cohort``; test AUCs of ``test_cohorts``."""
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
            pos_label="malignant",
        )
        fit_start = time.perf_counter()
        model.fit(crop.fit_transform(train_cohort), train_cohort["label"].to_numpy())
        print(
            f"{args.backbone} from scratch on the {what} crops of the training cases "
            f"({args.size} px, margin {args.margin}), {args.epochs} epochs: "
            f"{time.perf_counter() - fit_start:.0f} s",
            flush=True,
        )
        positive = list(model.classes_).index("malignant")
        scores = {}
        for name, cohort in test_cohorts.items():
            scores[name] = model.predict_proba(crop.transform(cohort))[:, positive]
            auc, low, high = roc_auc_ci(y, scores[name])
            assert np.isclose(auc, roc_auc_score(y, scores[name]))
            print(f"  test AUC, {name}: {auc:.3f} (95% DeLong CI {low:.3f}-{high:.3f})")
        return scores

    automatic = test.assign(mask=auto)
    reference = train_and_score(
        train,
        {"ground-truth crops": test, "automatic crops": automatic},
        "ground-truth",
    )
    _, p = delong_test(y, reference["automatic crops"], reference["ground-truth crops"])
    print(f"  paired DeLong p (automatic vs ground-truth crops): {p:.3f}", flush=True)
    if args.train_on_automatic:
        # the recipe's way: the training cases are cropped with the segmenter's own masks too
        train_auto = train.assign(mask=segmenter.predict(train))
        chain = train_and_score(train_auto, {"automatic crops": automatic}, "automatic")
        _, p = delong_test(y, chain["automatic crops"], reference["ground-truth crops"])
        print(
            "  paired DeLong p (fully automatic chain vs ground-truth crops and classifier): "
            f"{p:.3f}"
        )
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
