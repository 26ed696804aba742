"""Real-data check: BUSI lesion segmentation from scratch, each segmenter and their fusion.

The benign and malignant BUSI images (with their ground-truth masks; an image with several
masks has their union as reference) are split once by case, 80 % training / 20 % test,
stratified by class. Every segmenter starts from random weights (no pretrained weights) and is
trained on 90 % of the training cases at a reduced input size; the other 10 % are held back
for the pixel-level combiner of ``SegmentationFusion(method="stack")``. The members are then
fused (``prefit=True``) by vote, mean, union and stacking. Reported on the test cases: mean
per-image Dice and IoU (with their standard deviation), the fraction of test images with Dice
above 0.5, and each model's training time.

Each fitted segmenter is saved as ``<out>/<name>.joblib``: a later run with the same ``--out``
loads it instead of training it again (so the models can be trained in separate runs) and the
end-to-end benchmark (``busi_autoseg_classifier.py``) reads the fusion from there.

Usage::

    python benchmarks/busi_segmentation.py [--busi-dir DIR] [--models unet,unetpp,deeplabv3]
        [--size 96] [--epochs 30] [--out busi_segmentation_results] [--device auto]

Each model can be trained in its own run with its own settings (``--models unet --epochs
40``); a last run naming all members loads them and fuses them (``--no-fusion`` skips it).
"""

import argparse
import os
import time
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from sklearn_alnm.datasets import load_busi
from sklearn_alnm.io import read_column
from sklearn_alnm.metrics import dice_score, iou_score
from sklearn_alnm.segmentation import (
    DeepLabV3Segmenter,
    MaskRCNNSegmenter,
    SegmentationFusion,
    UNetPlusPlusSegmenter,
    UNetSegmenter,
)

DEFAULT_BUSI = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "busi"
MEMBERS = ("unet", "unetpp", "deeplabv3")
FUSIONS = ("vote", "mean", "union", "stack")


def busi_split(busi_dir, seed=0):
    """The fixed split: (members' training, stacker's hold-out, test) cohorts and labels."""
    X, y = load_busi(busi_dir, include_normal=False, return_X_y=True)
    X = X.assign(label=np.asarray(y.astype(str)))
    train, test = train_test_split(X, test_size=0.2, stratify=X["label"], random_state=seed)
    fit, hold = train_test_split(train, test_size=0.1, stratify=train["label"], random_state=seed)
    return fit, hold, test


def make_segmenter(name, args):
    """The segmenter ``name`` with the benchmark's CPU settings."""
    common = {
        "input_size": args.size,
        "lr_schedule": "cosine",
        "max_epochs": args.epochs,
        "batch_size": args.batch_size,
        "device": args.device,
        "random_state": args.seed,
    }
    if name == "unet":
        return UNetSegmenter(base_channels=args.width, depth=4, **common)
    if name == "unetpp":
        return UNetPlusPlusSegmenter(base_channels=args.width, depth=4, **common)
    if name == "deeplabv3":
        return DeepLabV3Segmenter(backbone=args.deeplab_backbone, **common)
    if name == "maskrcnn":
        return MaskRCNNSegmenter(
            min_size=args.size,
            max_size=args.size,
            optimizer="adam",
            lr=1e-4,
            max_epochs=args.epochs,
            batch_size=4,
            device=args.device,
            random_state=args.seed,
            # one lesion per image: 64 sampled regions per image instead of torchvision's 512
            # (the box and mask heads on 512 regions dominated the CPU time, 2.4x slower)
            module__box_batch_size_per_image=64,
        )
    raise ValueError(f"unknown segmenter {name!r}")


def evaluate(name, masks, test, truth, seconds, model=None):
    dice = dice_score(truth, masks, average=None)
    iou = iou_score(truth, masks, average=None)
    return {
        "model": name,
        "dice": dice.mean(),
        "dice_sd": dice.std(),
        "iou": iou.mean(),
        "iou_sd": iou.std(),
        "dice>0.5": (dice > 0.5).mean(),
        "dice_benign": dice[test["label"].to_numpy() == "benign"].mean(),
        "dice_malignant": dice[test["label"].to_numpy() == "malignant"].mean(),
        "train_s": seconds,
        "epochs": getattr(model, "max_epochs", np.nan),
        "size": getattr(model, "input_size", getattr(model, "min_size", np.nan)),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--busi-dir", default=os.environ.get("ALNM_BUSI_DIR", DEFAULT_BUSI))
    parser.add_argument("--models", default=",".join(MEMBERS))
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--width", type=int, default=16, help="U-Net / UNet++ base channels")
    parser.add_argument("--deeplab-backbone", default="mobilenet_v3_large")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="busi_segmentation_results")
    parser.add_argument("--no-fusion", action="store_true")
    args = parser.parse_args(argv)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fit, hold, test = busi_split(args.busi_dir, args.seed)
    truth = read_column(test, "mask", kind="mask")
    print(
        f"BUSI lesions: {len(fit)} training / {len(hold)} stacker hold-out / {len(test)} test "
        f"cases; from scratch, {args.size} px, {args.epochs} epochs; U-Net, UNet++, DeepLabV3: "
        "Adam 1e-3 cosine, Dice+BCE, flips/rotation/zoom; Mask R-CNN: Adam 1e-4, its own "
        "losses, flips",
        flush=True,
    )
    rows, members = [], {}
    for name in args.models.split(","):
        path = out / f"{name}.joblib"
        if path.is_file():
            model, seconds = joblib.load(path)
        else:
            start = time.perf_counter()
            model = make_segmenter(name, args).fit(fit)
            seconds = time.perf_counter() - start
            joblib.dump((model, seconds), path)
        members[name] = model
        rows.append(evaluate(name, model.predict(test), test, truth, seconds, model))
        print(f"{name}: Dice {rows[-1]['dice']:.3f}, {seconds:.0f} s", flush=True)
    if len(members) > 1 and not args.no_fusion:
        for method in FUSIONS:
            start = time.perf_counter()
            fusion = SegmentationFusion(
                list(members.items()), method=method, prefit=True, random_state=args.seed
            ).fit(hold)
            seconds = time.perf_counter() - start
            joblib.dump((fusion, seconds), out / f"fusion_{method}.joblib")
            rows.append(evaluate(f"fusion ({method})", fusion.predict(test), test, truth, seconds))
            if method == "stack":
                importances = ", ".join(
                    f"{n} {v:.2f}" for n, v in zip(members, fusion.member_importances_)
                )
                print(f"stacker member importances: {importances}")
    table = pd.DataFrame(rows).set_index("model")
    table.to_csv(out / "results.csv")
    print(table.round(3).to_string())


if __name__ == "__main__":
    main()
