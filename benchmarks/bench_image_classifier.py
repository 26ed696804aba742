"""Epoch time of ``ImageClassifier`` vs a hand-written PyTorch loop on the same model and data.

Both sides train the same registry backbone (same initial weights) on the same preprocessed
images, with the same batch size, optimiser (Adam), loss (cross-entropy) and shuffling; the
library side adds what a user gets from it (skorch's loop and history, the per-epoch AUC, and on
CUDA mixed precision and channels-last). The hand loop is fed the classifier's own preprocessed
tensor, so only the training loops are compared. The library's epoch time is the extra wall time
of a fit of ``1 + k`` epochs over a fit of one epoch, divided by ``k`` (decoding, set-up and the
warm-up epoch cancel out); the hand loop's is the median of ``k`` epochs timed before and ``k``
after that fit, after a warm-up epoch, so drift in machine load hits both sides.

Usage::

    python benchmarks/bench_image_classifier.py                       # CPU: ResNet18, 64 px, 512
    python benchmarks/bench_image_classifier.py --device cuda --backbone resnet50 --size 224 \\
        --n-images 2048 --batch-size 64 --precision both              # GPU: AMP and fp32
"""

import argparse
import statistics
import time

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, TensorDataset

from sklearn_alnm.models import ImageClassifier
from sklearn_alnm.nn import Backbone


def make_cohort(n_images, size, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n_images, size, size), dtype=np.uint8)
    y = rng.integers(0, 2, n_images)
    images[y == 1, size // 4 : size // 2, size // 4 : size // 2] //= 2  # some signal
    X = pd.DataFrame({"image": list(images)})
    return X, y


def hand_written(x, y, args, device, precision):
    """The plain loop: DataLoader over the tensor, autocast/channels-last when asked."""
    model = Backbone(args.backbone, in_chans=x.shape[1], num_classes=2, dropout=0.5, seed=0).to(
        device
    )
    channels_last = device.type == "cuda" and precision != "fp32"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    loader = DataLoader(
        TensorDataset(x, torch.as_tensor(y)),
        batch_size=args.batch_size,
        shuffle=True,
        pin_memory=device.type == "cuda",
    )
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None

    def epoch():
        model.train()
        start = time.perf_counter()
        for xb, yb in loader:
            xb = xb.to(device, non_blocking=True)
            yb = yb.to(device, non_blocking=True)
            if channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                loss = loss_fn(model(xb), yb)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    return epoch


def library(X, y, args, device, precision):
    """Wall time of ``ImageClassifier.fit`` for ``max_epochs`` epochs (decoding included)."""

    def fit(epochs):
        clf = ImageClassifier(
            backbone=args.backbone,
            input_size=args.size,
            crop=None,
            augment=None,
            normalize="zscore",
            dropout=0.5,
            lr=1e-3,
            max_epochs=epochs,
            batch_size=args.batch_size,
            device=str(device),
            amp=False if precision == "fp32" else precision,
            random_state=0,
        )
        start = time.perf_counter()
        clf.fit(X, y)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return clf, time.perf_counter() - start

    return fit


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--n-images", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per side")
    parser.add_argument(
        "--precision",
        default="fp32",
        choices=["fp32", "bf16", "fp16", "both"],
        help="'both' runs bf16 (AMP) and fp32",
    )
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    X, y = make_cohort(args.n_images, args.size)
    precisions = ["bf16", "fp32"] if args.precision == "both" else [args.precision]
    print(
        f"{args.backbone}, {args.n_images} images of {args.size} px, batch {args.batch_size}, "
        f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
    )
    rows = []
    for precision in precisions:
        fit = library(X, y, args, device, precision)
        clf, one = fit(1)  # decoding + one (warm-up) epoch
        theirs = hand_written(clf.prepare_images(X), y, args, device, precision)
        theirs()  # warm-up epoch
        hand = [theirs() for _ in range(args.epochs)]
        _, total = fit(1 + args.epochs)
        hand += [theirs() for _ in range(args.epochs)]
        # the library's epoch time: the extra wall time of the longer fit, per extra epoch
        # (decoding, set-up and the warm-up epoch cancel out)
        ours = (total - one) / args.epochs
        times = {"hand-written loop": hand, "ImageClassifier": [ours]}
        for side, values in times.items():
            median = statistics.median(values)
            rows.append(
                {
                    "precision": precision,
                    "side": side,
                    "epoch_s": median,
                    "images_per_s": args.n_images / median,
                    "epochs": ", ".join(f"{v:.2f}" for v in values),
                }
            )
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for precision in precisions:
        part = table[table["precision"] == precision].set_index("side")["epoch_s"]
        ratio = part["ImageClassifier"] / part["hand-written loop"]
        print(f"{precision}: ImageClassifier / hand-written epoch time = {ratio:.3f}")
    if len(precisions) == 2:
        amp = table[table["precision"] == "bf16"].set_index("side")["images_per_s"]
        fp32 = table[table["precision"] == "fp32"].set_index("side")["images_per_s"]
        for side in amp.index:
            print(f"{side}: AMP bf16 / fp32 throughput = {amp[side] / fp32[side]:.2f}x")


if __name__ == "__main__":
    main()
