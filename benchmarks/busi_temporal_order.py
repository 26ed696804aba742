"""Does a video network use time? Probe sweeps over real BUSI images, forward vs reversed.

Each clip is a simulated probe sweep across a real BUSI breast-ultrasound image: a window of
``--window`` of the image's width slides from left to right (label 0) or, for the other half
of the clips, from right to left (label 1), each frame resized to ``--size`` px. Both classes
hold the same frames in opposite orders, so a frame-averaging TSN cannot tell them apart
(accuracy about 0.5 by construction), while a network that models time (TSM, TIN, R3D-18)
must. Every architecture trains from scratch on the same clips (stratified split by image: a
sweep and its reversal never straddle training and test) and its held-out accuracy and AUC
are printed side by side.

Usage::

    python benchmarks/busi_temporal_order.py [--busi-dir DIR] [--n-images 120] [--epochs 20]
"""

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score

from sklearn_alnm.datasets import load_busi
from sklearn_alnm.io import read_image
from sklearn_alnm.models import VideoClassifier

DEFAULT_BUSI = os.environ.get("ALNM_BUSI_DIR", "../shared/data/busi/Dataset_BUSI_with_GT")


def sweep(image, frames, window, size):
    """``frames`` crops sliding left to right over ``image`` (gray), each resized to ``size``."""
    import torch.nn.functional as F

    tensor = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None]
    height, width = image.shape
    crop = max(8, int(round(window * width)))
    starts = np.linspace(0, width - crop, frames).round().astype(int)
    out = [
        F.interpolate(
            tensor[..., s : s + crop], size=(size, size), mode="bilinear", antialias=True
        )[0, 0]
        for s in starts
    ]
    return torch.stack(out).numpy()


def make_clips(paths, frames, window, size, seed):
    rng = np.random.default_rng(seed)
    clips, labels, groups = [], [], []
    for k, path in enumerate(paths):
        image = read_image(path)
        if image.ndim == 3:
            image = image.mean(axis=2)
        forward = sweep(image, frames, window, size)
        direction = int(rng.integers(0, 2))
        clips.append(forward[::-1].copy() if direction else forward)
        labels.append(direction)
        groups.append(k)
    return pd.DataFrame({"video": clips, "image_id": groups}), np.array(labels)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--busi-dir", default=DEFAULT_BUSI)
    parser.add_argument("--n-images", type=int, default=120)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--window", type=float, default=0.5)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--archs", default="tsn,tsm,tin,r3d_18")
    args = parser.parse_args()
    if not Path(args.busi_dir).is_dir():
        raise SystemExit(f"BUSI not found at {args.busi_dir!r} (--busi-dir or ALNM_BUSI_DIR)")
    busi = load_busi(args.busi_dir, include_normal=False)  # images with a lesion to sweep over
    chosen = np.random.default_rng(1).choice(len(busi), size=args.n_images, replace=False)
    paths = list(busi["image"].iloc[np.sort(chosen)])
    X, y = make_clips(paths, args.frames, args.window, args.size, seed=0)
    n_train = int(0.7 * len(X))
    X_train, X_test, y_train, y_test = X.iloc[:n_train], X.iloc[n_train:], y[:n_train], y[n_train:]
    print(
        f"{len(X)} BUSI sweeps of {args.frames} x {args.size}^2 ({n_train} training, "
        f"{len(X) - n_train} test), {args.epochs} epochs from scratch, torch "
        f"{torch.__version__}, {torch.get_num_threads()} threads"
    )
    print(f"{'arch':<10} {'accuracy':>9} {'AUC':>7} {'seconds':>8}")
    for arch in args.archs.split(","):
        start = time.perf_counter()
        model = VideoClassifier(
            arch=arch,
            backbone="resnet18",
            n_frames=args.frames,
            frame_size=args.size,
            resize=None,
            augment=None,
            lr=1e-3,
            max_epochs=args.epochs,
            batch_size=16,
            random_state=0,
        ).fit(X_train, y_train)
        proba = model.predict_proba(X_test)[:, 1]
        accuracy = float(np.mean(model.predict(X_test) == y_test))
        seconds = time.perf_counter() - start
        print(f"{arch:<10} {accuracy:9.3f} {roc_auc_score(y_test, proba):7.3f} {seconds:8.1f}")


if __name__ == "__main__":
    main()
