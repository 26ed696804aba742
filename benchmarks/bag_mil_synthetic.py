"""The multi-task / multi-instance study on synthetic bags: which pooling reads the bag best?

``make_alnm_cohort`` bags: one or two views of the primary tumour and zero to five axillary
node images per patient (about 30 % have none); an N+ patient's visible metastasis shows in
one or a few of its node images, the others look normal, so the label rests on the most
suspicious node rather than on the average image. Per seed, a stratified 2:1 split; stage 1
(``MultiTaskSegClassifier``: lesion mask, kind and image-level ALN status) gives each image
a token, out of fold for the training patients; stage 2 pools each patient's tokens with
every pooling of ``MILClassifier`` (transformer, attention, gated attention, mean, max; the
predicted kinds embedded), on the same tokens; beside them, stage 1's own patient score (the
mean of its images' probabilities), the "single T" CNN on the first tumour image, the
clinical LR on BI-RADS and T stage, and, when torchmil is installed, its ABMIL and TransMIL
on the same tokens (one bag per step). Test AUC per seed, mean and standard deviation, and
seconds.

Usage::

    python benchmarks/bag_mil_synthetic.py                   # 5 seeds x 300 patients, 64 px
    python benchmarks/bag_mil_synthetic.py --seeds 1 --n-patients 120 --epochs 4
    python benchmarks/bag_mil_synthetic.py --cache bag_tokens    # stage 1 fitted once per seed
"""

import argparse
import importlib.util
import time
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import train_test_split

from sklearn_alnm.clinical import make_clinical_pipeline
from sklearn_alnm.datasets import make_alnm_cohort
from sklearn_alnm.metrics import roc_auc_ci
from sklearn_alnm.models import MILClassifier, MultiTaskSegClassifier
from sklearn_alnm.recipes import ultrasound_single_t

POOLINGS = ("transformer", "attention", "gated_attention", "mean", "max")


def torchmil_models(tokens_train, y_train, tokens_test, args, seed):
    """torchmil's ABMIL and TransMIL on the same tokens, one bag per step."""
    from torchmil.models import ABMIL, TransMIL

    out = {}
    dim = tokens_train[0].shape[1]
    for name, build in {
        "torchmil ABMIL": lambda: ABMIL(in_shape=(dim,), att_dim=args.mil_dim),
        "torchmil TransMIL": lambda: TransMIL(in_shape=(dim,), att_dim=args.mil_dim),
    }.items():
        torch.manual_seed(seed)
        model = build()
        optimizer = torch.optim.AdamW(model.parameters(), lr=args.mil_lr)
        bags = [torch.as_tensor(t, dtype=torch.float32)[None] for t in tokens_train]
        labels = torch.as_tensor(y_train, dtype=torch.float32)
        rng = np.random.default_rng(seed)
        start = time.perf_counter()
        for _ in range(args.mil_epochs):
            model.train()
            for i in rng.permutation(len(bags)):
                optimizer.zero_grad()
                _, losses = model.compute_loss(labels[i : i + 1], bags[i])
                sum(losses.values()).backward()
                optimizer.step()
        model.eval()
        with torch.no_grad():
            scores = [
                float(model(torch.as_tensor(t, dtype=torch.float32)[None])[0]) for t in tokens_test
            ]
        out[name] = (np.asarray(scores), time.perf_counter() - start)
    return out


def one_seed(seed, args):
    X, y = make_alnm_cohort(
        args.n_patients, modalities=("clinical", "bag"), image_size=args.size, random_state=seed
    )
    train, test = train_test_split(
        np.arange(len(y)), test_size=1 / 3, stratify=y, random_state=seed
    )
    X_train, X_test, y_train, y_test = X.iloc[train], X.iloc[test], y[train], y[test]
    scores, seconds = {}, {}

    stage1_settings = (
        args.n_patients,
        args.size,
        args.backbone,
        args.dim,
        args.lr,
        args.epochs,
        args.cv,
    )
    cached = Path(args.cache) / f"stage1_seed{seed}.joblib" if args.cache else None
    stored = joblib.load(cached) if cached is not None and cached.is_file() else None
    if stored is not None and stored[0] == stage1_settings:
        _, tokens_train, tokens_test, stage1_scores, dice, took = stored
    else:
        start = time.perf_counter()
        stage1 = MultiTaskSegClassifier(
            backbone=args.backbone,
            dim=args.dim,
            heads=4,
            input_size=args.size,
            lr=args.lr,
            max_epochs=args.epochs,
            cv=args.cv,
            random_state=seed,
        )
        tokens_train = stage1.fit_transform(X_train, y_train)
        tokens_test = stage1.transform(X_test)
        took = time.perf_counter() - start
        stage1_scores = stage1.predict_proba(X_test)[:, 1]
        dice = stage1.segmentation_score(X_test)
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            joblib.dump(
                (stage1_settings, tokens_train, tokens_test, stage1_scores, dice, took), cached
            )
    seconds["stage 1 (fit with out-of-fold tokens)"] = took
    scores["stage 1 alone (mean of image scores)"] = stage1_scores

    for pooling in POOLINGS:
        start = time.perf_counter()
        mil = MILClassifier(
            "tokens",
            kind_col="pred_kind",
            kinds=("tumor", "node"),
            pooling=pooling,
            dim=args.mil_dim,
            depth=args.mil_depth,
            heads=4,
            dropout=args.mil_dropout,
            optimizer="adamw",
            lr=args.mil_lr,
            max_epochs=args.mil_epochs,
            batch_size=16,
            random_state=seed,
        ).fit(tokens_train, y_train)
        scores[f"MIL {pooling}"] = mil.predict_proba(tokens_test)[:, 1]
        seconds[f"MIL {pooling}"] = time.perf_counter() - start

    if not args.skip_torchmil and importlib.util.find_spec("torchmil") is not None:
        for name, (score, took) in torchmil_models(
            list(tokens_train["tokens"]), y_train, list(tokens_test["tokens"]), args, seed
        ).items():
            scores[f"{name} (1 bag / step)"] = score
            seconds[f"{name} (1 bag / step)"] = took

    start = time.perf_counter()
    single = ultrasound_single_t(
        "resnet18",
        mask_col="bag_mask",
        input_size=args.size,
        lr=args.lr,
        max_epochs=args.epochs,
        random_state=seed,
    ).fit(X_train, y_train)
    scores["single T (ResNet18, first tumour image)"] = single.predict_proba(X_test)[:, 1]
    seconds["single T (ResNet18, first tumour image)"] = time.perf_counter() - start
    clinical = make_clinical_pipeline(categorical=["birads", "t_stage"], numeric=[])
    scores["clinical LR (BI-RADS, T stage)"] = clinical.fit(X_train, y_train).predict_proba(X_test)[
        :, 1
    ]
    aucs = {name: roc_auc_ci(y_test, s).auc for name, s in scores.items()}
    return aucs, seconds, dice


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--n-patients", type=int, default=300)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--backbone", default="resnet18", help="stage 1's CNN")
    parser.add_argument("--dim", type=int, default=64, help="stage 1's token size")
    parser.add_argument("--epochs", type=int, default=10, help="stage 1 and single-T epochs")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--cv", type=int, default=3, help="folds of the out-of-fold tokens")
    parser.add_argument("--mil-dim", type=int, default=32)
    parser.add_argument("--mil-depth", type=int, default=1, help="transformer blocks")
    parser.add_argument("--mil-dropout", type=float, default=0.5)
    parser.add_argument("--mil-epochs", type=int, default=20)
    parser.add_argument("--mil-lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--skip-torchmil", action="store_true")
    parser.add_argument(
        "--cache",
        default=None,
        help="folder keeping each seed's stage-1 tokens, to rerun stage 2 without refitting",
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"{args.seeds} seeds x {args.n_patients} patients, {args.size} px; stage 1 "
        f"{args.backbone}, tokens of {args.dim}, {args.epochs} epochs at lr {args.lr}, "
        f"{args.cv}-fold out-of-fold tokens; MIL dim {args.mil_dim}, depth {args.mil_depth}, "
        f"dropout {args.mil_dropout}, {args.mil_epochs} epochs at lr {args.mil_lr}; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads",
        flush=True,
    )
    rows, times, dices = [], [], []
    for seed in range(args.seeds):
        start = time.perf_counter()
        aucs, seconds, dice = one_seed(seed, args)
        rows.append({"seed": seed, **aucs})
        times.append(seconds)
        dices.append(dice)
        print(f"seed {seed}: {time.perf_counter() - start:.0f} s, test Dice {dice:.3f}", flush=True)
        print("  " + ", ".join(f"{name} {auc:.3f}" for name, auc in aucs.items()), flush=True)
    table = pd.DataFrame(rows).set_index("seed").T
    table["mean"] = table.mean(axis=1)
    table["sd"] = table.drop(columns="mean").std(axis=1, ddof=1) if args.seeds > 1 else np.nan
    print("\nTest AUC per seed")
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    print("\nSeconds per seed (mean)")
    print(pd.DataFrame(times).mean().to_string(float_format=lambda v: f"{v:.1f}"))
    print(f"\nstage 1 test Dice: mean {np.mean(dices):.3f}")


if __name__ == "__main__":
    main()
