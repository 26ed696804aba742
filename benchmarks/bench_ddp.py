"""Benchmark: data-parallel training (DDP over two CPU processes) against one process.

On real BUSI breast-ultrasound images (benign vs malignant, lesion-box crops from the
ground-truth masks; a stratified 75/25 train/test split), the same ``ImageClassifier``
(ResNet18 from scratch, ``distributed=True``, one global batch size and seed) is fitted

1. in one process using every core (``--threads`` = cores),
2. in one process on one core (the unit each DDP rank gets),
3. data-parallel by ``torchrun --nproc_per_node N`` (N processes, one thread each),

and the script prints, side by side, the median time per epoch (skorch's history ``dur``, first
epoch left out), the wall time of the fit and the test AUC. The one-process and the
data-parallel fits draw the same global batches in the same order, but a ResNet's batch norm
sees each rank's half batch, and augmentation and dropout draw other numbers per rank, so their
AUCs differ as two seeds do; each is run with two seeds for that scale. On one machine the N
processes share its cores, so the speed-up is bounded by what one process already gets from
intra-op threads.

Usage::

    python benchmarks/bench_ddp.py
    python benchmarks/bench_ddp.py --busi-dir path/to/Dataset_BUSI_with_GT --epochs 5 --n-proc 2
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def default_busi_dir():
    env = os.environ.get("ALNM_BUSI_DIR")
    if env:
        return env
    return str(Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "busi")


def _worker(args):
    """One run (inside a torchrun process or alone): fit, score, rank 0 writes JSON."""
    import torch
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    from sklearn_alnm.datasets import load_busi
    from sklearn_alnm.models import ImageClassifier
    from sklearn_alnm.utils import data_parallel_info, is_main_process

    torch.set_num_threads(args.threads)
    X, y = load_busi(args.busi_dir, include_normal=False, return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0
    )
    clf = ImageClassifier(
        mask_col="mask",
        backbone="resnet18",
        weights=None,
        input_size=args.size,
        max_epochs=args.epochs,
        batch_size=args.batch_size,
        lr=1e-3,
        pos_label="malignant",
        distributed=True,
        device=args.device,
        random_state=args.seed,
    )
    start = time.perf_counter()
    clf.fit(X_train, y_train)
    wall = time.perf_counter() - start
    auc = roc_auc_score(y_test == "malignant", clf.predict_proba(X_test)[:, 1])
    info = data_parallel_info()
    if is_main_process():
        durations = [row["dur"] for row in clf.history_]
        result = {
            "world_size": info.world_size,
            "threads": args.threads,
            "epoch_s": float(np.median(durations[1:] if len(durations) > 1 else durations)),
            "fit_s": wall,
            "train_loss": float(clf.history_[-1, "train_loss"]),
            "test_auc": float(auc),
        }
        Path(args.out).write_text(json.dumps(result))


def _launch(args, *, n_proc, threads, seed=0):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        worker = [
            __file__,
            "--worker",
            "--out",
            str(out),
            "--threads",
            str(threads),
            "--busi-dir",
            args.busi_dir,
            "--epochs",
            str(args.epochs),
            "--size",
            str(args.size),
            "--batch-size",
            str(args.batch_size),
            "--seed",
            str(seed),
            "--device",
            args.device,
        ]
        if n_proc > 1:
            launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n_proc}"]
        else:
            launcher = []
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        subprocess.run([sys.executable, *launcher, *worker], check=True, env=env)
        return json.loads(out.read_text())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--busi-dir", default=default_busi_dir())
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--n-proc", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu, or cuda: one GPU per process")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return _worker(args)
    if not Path(args.busi_dir).exists():
        sys.exit(f"BUSI not found at {args.busi_dir}; pass --busi-dir.")
    cores = os.cpu_count() or 1
    print(
        f"{platform.processor() or platform.machine()}, {cores} cores; ResNet18 from scratch, "
        f"{args.size}px lesion crops, global batch {args.batch_size}, {args.epochs} epochs"
    )
    backend = "nccl" if args.device.startswith("cuda") else "gloo"
    ddp = f"DDP, {args.n_proc} processes x 1 thread ({backend})"
    runs = {
        f"1 process, {cores} threads": _launch(args, n_proc=1, threads=cores),
        f"1 process, {cores} threads, another seed": _launch(args, n_proc=1, threads=cores, seed=1),
        "1 process, 1 thread": _launch(args, n_proc=1, threads=1),
        ddp: _launch(args, n_proc=args.n_proc, threads=1),
        f"{ddp}, another seed": _launch(args, n_proc=args.n_proc, threads=1, seed=1),
    }
    print(f"\n{'run':46s} {'s / epoch':>10s} {'fit s':>8s} {'train loss':>11s} {'test AUC':>9s}")
    for name, r in runs.items():
        print(
            f"{name:46s} {r['epoch_s']:10.2f} {r['fit_s']:8.1f} {r['train_loss']:11.4f} "
            f"{r['test_auc']:9.3f}"
        )
    base = runs["1 process, 1 thread"]["epoch_s"]
    first, other = list(runs.values())[:2]
    print(
        f"\nDDP epoch time: {base / runs[ddp]['epoch_s']:.2f}x faster than one single-threaded "
        f"process, {first['epoch_s'] / runs[ddp]['epoch_s']:.2f}x vs one process using all "
        f"{cores} cores"
    )
    ddp_other = runs[f"{ddp}, another seed"]
    one_auc = (first["test_auc"] + other["test_auc"]) / 2
    print(
        f"test AUC, mean of the two seeds: one process {one_auc:.3f}, "
        f"DDP {(runs[ddp]['test_auc'] + ddp_other['test_auc']) / 2:.3f} (batch norm sees each "
        "rank's share of the batch, augmentation and dropout draw per rank)"
    )


if __name__ == "__main__":
    main()
