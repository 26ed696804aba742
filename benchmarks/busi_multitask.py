"""Real-data check: the multi-task lesion model on BUSI vs a whole-image CNN and a U-Net.

BUSI malignant vs benign on whole images (no crop to the lesion): the benign and malignant
images are split once by case, 80 % training / 20 % test, stratified by class (the split of
``busi_segmentation.py``). Three models start from random weights, at the same input size and
for the same number of epochs, with the same flips / rotation / zoom augmentation:

- ``MultiTaskSegClassifier``: a ResNet18 trunk (``--feature-layer``, default ``layer3``;
  optionally SAM 2's high-resolution path, ``--high-res-layers``), the SAM-like mask decoder,
  the segmentation head (Dice + BCE against the ground-truth masks, weighted by
  ``--segmentation-weight``) and the image-level malignancy head, trained jointly (each image
  is a one-instance bag; the kind head is switched off, every instance being a tumour);
- ``ImageClassifier``: the same ResNet18 on the whole image, malignancy only;
- ``UNetSegmenter``: segmentation only.

Reported on the test cases: AUC with its 95 % DeLong CI and the paired DeLong p of the
multi-task model vs the whole-image classifier; mean per-image Dice and IoU on each image's
own grid (the masks of an image with several lesions are merged); and, on the held-out
"normal" images (no lesion, never seen in training), the share of images whose predicted mask
is empty and the mean predicted lesion area: the empty-mask path of the segmentation heads.

Each fitted model is saved as ``<out>/<name>.joblib`` (the multi-task model's name ends with
``--tag``; a later run loads it instead of training it again).

Usage::

    python benchmarks/busi_multitask.py [--busi-dir DIR] [--size 96] [--epochs 30]
        [--models multitask,image,unet] [--out busi_multitask_results] [--device auto]
    # the configuration that reached the Dice goal (benchmarks/README.md)
    python benchmarks/busi_multitask.py --epochs 40 --feature-layer layer3,layer4 \
        --high-res-layers relu,layer1,layer2 --segmentation-weight 3 --tag _hr
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
from sklearn_alnm.metrics import delong_test, dice_score, iou_score, roc_auc_ci
from sklearn_alnm.models import ImageClassifier, MultiTaskSegClassifier
from sklearn_alnm.segmentation import UNetSegmenter

DEFAULT_BUSI = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "busi"
MODELS = ("multitask", "image", "unet")


def busi_cohorts(busi_dir, seed=0):
    """(training, test, normal test) cohorts: lesions split by case as in
    ``busi_segmentation.py``; 20 % of the normal images held out for the empty-mask check."""
    X = load_busi(busi_dir, include_normal=True)
    X = X.assign(label=X["label"].astype(str))
    lesions = X[X["label"] != "normal"].reset_index(drop=True)
    train, test = train_test_split(
        lesions, test_size=0.2, stratify=lesions["label"], random_state=seed
    )
    normal = X[X["label"] == "normal"].reset_index(drop=True)
    _, normal_test = train_test_split(normal, test_size=0.2, random_state=seed)
    return tuple(_as_bags(part) for part in (train, test, normal_test))


def _as_bags(frame):
    """Each image as a one-instance bag (the multi-task model's input), a tumour view."""
    return frame.reset_index(drop=True).assign(
        patient_id=lambda f: f["case_id"].astype(str),
        bag=lambda f: [[image] for image in f["image"]],
        bag_kind=lambda f: [["tumor"]] * len(f),
        bag_mask=lambda f: [[mask] for mask in f["mask"]],
    )


def make_model(name, args):
    common = {
        "input_size": args.size,
        "max_epochs": args.epochs,
        "device": args.device,
        "random_state": args.seed,
    }
    trained = {"optimizer": "adamw", "lr": args.lr, "lr_schedule": "cosine", **common}
    if name == "multitask":
        return MultiTaskSegClassifier(
            backbone="resnet18",
            feature_layer=args.feature_layer.split(","),
            high_res_layers=args.high_res_layers.split(",") if args.high_res_layers else None,
            dim=args.dim,
            heads=8,
            normalize="zscore",
            # every instance is a tumour: no kind to learn
            loss_weights=(args.segmentation_weight, 0.0, 1.0),
            augment="default",
            cv=None,
            batch_size=args.batch_size,
            pos_label="malignant",
            **trained,
        )
    if name == "image":
        return ImageClassifier(
            "image",
            backbone="resnet18",
            crop=None,
            normalize="zscore",
            augment="default",
            batch_size=args.batch_size,
            pos_label="malignant",
            **trained,
        )
    if name == "unet":
        return UNetSegmenter(
            base_channels=args.width,
            depth=4,
            lr_schedule="cosine",
            batch_size=8,
            **common,
        )
    raise ValueError(f"unknown model {name!r}")


def overlap(truth, masks):
    dice = dice_score(truth, masks, average=None)
    iou = iou_score(truth, masks, average=None)
    return {"dice": float(dice.mean()), "dice_sd": float(dice.std()), "iou": float(iou.mean())}


def empty_path(masks):
    """Share of lesion-free images predicted empty, and the mean predicted area."""
    area = np.array([np.mean(m) for m in masks])
    return {"normal_empty": float(np.mean(area == 0)), "normal_area": float(area.mean())}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--busi-dir", default=os.environ.get("ALNM_BUSI_DIR", DEFAULT_BUSI))
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument(
        "--feature-layer", default="layer3", help="a ResNet18 layer, or several: layer2,layer3"
    )
    parser.add_argument(
        "--high-res-layers",
        default="",
        help="finer ResNet18 layers refining the mask decoder's upsampling: relu,layer1,layer2",
    )
    parser.add_argument(
        "--segmentation-weight",
        type=float,
        default=1.0,
        help="weight of the multi-task model's segmentation loss (the malignancy loss has 1)",
    )
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--width", type=int, default=16, help="U-Net base channels")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="busi_multitask_results")
    parser.add_argument("--tag", default="", help="suffix of the multi-task model's name")
    args = parser.parse_args(argv)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train, test, normal = busi_cohorts(args.busi_dir, args.seed)
    y_train, y_test = train["label"].to_numpy(), test["label"].to_numpy()
    truth = read_column(test, "mask", kind="mask")
    print(
        f"BUSI whole images: {len(train)} training / {len(test)} test lesions, {len(normal)} "
        f"held-out normal images; from scratch, {args.size} px, {args.epochs} epochs, "
        f"AdamW {args.lr} cosine (U-Net: Adam 1e-3 cosine), flips/rotation/zoom",
        flush=True,
    )
    rows, scores = [], {}
    for name in args.models.split(","):
        path = out / f"{name}{args.tag if name == 'multitask' else ''}.joblib"
        if path.is_file():
            model, seconds = joblib.load(path)
        else:
            model = make_model(name, args)
            start = time.perf_counter()
            model.fit(train) if name == "unet" else model.fit(train, y_train)
            seconds = time.perf_counter() - start
            joblib.dump((model, seconds), path)
        row = {"model": name + (args.tag if name == "multitask" else ""), "train_s": seconds}
        if name != "unet":
            scores[name] = model.predict_proba(test)[:, list(model.classes_).index("malignant")]
            ci = roc_auc_ci(y_test, scores[name], pos_label="malignant")
            row.update(auc=ci.auc, auc_low=ci.low, auc_high=ci.high)
        if name == "multitask":
            masks = [bag[0] for bag in model.predict_masks(test)]
            row.update(overlap(truth, masks))
            row.update(empty_path([bag[0] for bag in model.predict_masks(normal)]))
            row["grid_dice"] = model.segmentation_score(test)
        elif name == "unet":
            row.update(overlap(truth, model.predict(test)))
            row.update(empty_path(model.predict(normal)))
        rows.append(row)
        print({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}, flush=True)
    if {"multitask", "image"} <= set(scores):
        test_ = delong_test(y_test, scores["multitask"], scores["image"], pos_label="malignant")
        print(f"paired DeLong, multitask vs image: p = {test_.pvalue:.3f}")
    table = pd.DataFrame(rows).set_index("model")
    table.to_csv(out / "results.csv")
    print(table.round(3).to_string())


if __name__ == "__main__":
    main()
