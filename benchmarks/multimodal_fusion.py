"""The ultrasound + H&E study on synthetic cohorts: every fusion vs each single modality.

Three measurements, side by side in one run, on ``make_alnm_cohort`` cohorts of ultrasound
images (lesion + mask) and H&E tiles, whose label cues are partly independent:

1. **Accuracy** (``--seeds`` cohorts): per seed, a stratified 2:1 train/test split; ULNet on
   the ultrasound lesion and PLNet on the pathology tile are fitted alone (the study's first
   stage), then each fusion head (concatenation, learned weights, attention, voting,
   multilayer) fuses the same two fitted, frozen networks (``branch_init="prefit"``). Test
   AUC of every model per seed, mean and standard deviation over seeds, and the paired
   DeLong test of the multilayer fusion against the better single modality of that seed
   (chosen on the test cohort, which favours the single modality).
2. **Missing pathology** (same seeds): the same cohort with 30 % of the training patients'
   pathology tiles missing; the multilayer fusion with ``missing="drop_branch"`` (PLNet
   fitted on the patients with a tile, learned missing embeddings, modality dropout 0.2)
   against the same model fitted on the complete cohort, both scored on the test patients
   (all of whom have both images) and, for the first, also with every test tile removed
   (ULNet alone carries them).
3. **Epoch time**: the fused model trained end to end (``freeze_branches=False``: both
   networks and the head, one pass over both images per batch) against the two branches'
   own epochs added; and the frozen fusion, which embeds each image once per fit. An epoch
   time is the extra wall time of a fit of ``1 + k`` epochs over a fit of one epoch,
   divided by ``k`` (decoding, set-up and warm-up cancel out).

Usage::

    python benchmarks/multimodal_fusion.py                  # 5 seeds, 300 patients, 64 px
    python benchmarks/multimodal_fusion.py --seeds 1 --n-patients 120 --epochs 4  # quick
"""

import argparse
import statistics
import time

import numpy as np
import pandas as pd
import torch
from sklearn.base import clone
from sklearn.model_selection import train_test_split

from sklearn_alnm.datasets import make_alnm_cohort
from sklearn_alnm.metrics import delong_test, roc_auc_ci
from sklearn_alnm.recipes import us_pathology_branches, us_pathology_fusion

FUSIONS = ("concat", "weighted", "attention", "voting", "multilayer")
SINGLE = ("ULNet (US)", "PLNet (H&E)")


def branches(args, seed):
    """ULNet and PLNet with the study's preprocessing and augmentation, sized for a CPU."""
    common = {
        "input_size": args.size,
        "max_epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "lr_schedule": None,
    }
    return us_pathology_branches(
        us={"backbone": args.us_backbone, **common},
        path=common,
        random_state=seed,
    )


def fusion(name, fitted, args, seed, **params):
    settings = {
        "branch_init": "prefit",
        "max_epochs": args.fusion_epochs,
        "lr": args.fusion_lr,
        "batch_size": args.batch_size,
        **params,
    }
    return us_pathology_fusion(name, branches=fitted, random_state=seed, **settings)


def accuracy_and_missing(args):
    rows, tests = [], []
    for seed in range(args.seeds):
        start = time.perf_counter()
        cohort = {"random_state": seed, "image_size": args.size}
        modalities = ("ultrasound", "pathology")
        X, y = make_alnm_cohort(args.n_patients, modalities=modalities, **cohort)
        X_gap, _ = make_alnm_cohort(
            args.n_patients, modalities=modalities, missing_pathology=args.missing, **cohort
        )
        train, test = train_test_split(
            np.arange(len(y)), test_size=1 / 3, stratify=y, random_state=seed
        )
        X_train, X_test, y_train, y_test = X.iloc[train], X.iloc[test], y[train], y[test]
        scores = {}
        fitted = branches(args, seed)
        for (_, est), name in zip(fitted, SINGLE):
            est.fit(X_train, y_train)
            scores[name] = est.predict_proba(X_test)[:, 1]
        for name in FUSIONS:
            model = fusion(name, fitted, args, seed).fit(X_train, y_train)
            scores[f"{name} fusion"] = model.predict_proba(X_test)[:, 1]
        # the reference of the missing-tile model: the same settings (drop_branch, modality
        # dropout) on the complete cohort
        complete = fusion("multilayer", fitted, args, seed, missing="drop_branch")
        complete.fit(X_train, y_train)
        scores["multilayer, drop_branch, complete"] = complete.predict_proba(X_test)[:, 1]
        # 30 % of the pathology tiles missing in training: PLNet on the patients with a tile,
        # ULNet as before (same seed, same images), the multilayer head with drop_branch
        gap = fusion(
            "multilayer",
            branches(args, seed),
            args,
            seed,
            branch_init="fit",
            missing="drop_branch",
        ).fit(X_gap.iloc[train], y_train)
        scores["multilayer, 30% missing"] = gap.predict_proba(X_test)[:, 1]
        X_absent = X_test.assign(pathology=None)
        scores["multilayer, 30% missing, no H&E at test"] = gap.predict_proba(X_absent)[:, 1]
        aucs = {name: roc_auc_ci(y_test, s).auc for name, s in scores.items()}
        best = max(SINGLE, key=aucs.get)
        test = delong_test(y_test, scores["multilayer fusion"], scores[best])
        tests.append(
            {
                "seed": seed,
                "best single": best,
                "best single AUC": aucs[best],
                "multilayer AUC": aucs["multilayer fusion"],
                "difference": test.difference,
                "DeLong p": test.pvalue,
                "missing - complete": aucs["multilayer, 30% missing"]
                - aucs["multilayer, drop_branch, complete"],
            }
        )
        rows.append({"seed": seed, **aucs})
        print(f"seed {seed}: {time.perf_counter() - start:.0f} s", flush=True)
    return pd.DataFrame(rows).set_index("seed"), pd.DataFrame(tests).set_index("seed")


def epoch_time(fit, epochs, repeats):
    """Extra wall time of a ``1 + epochs`` fit over a one-epoch fit, per extra epoch
    (the median of ``repeats`` such pairs)."""

    def timed(n):
        start = time.perf_counter()
        fit(n)
        return time.perf_counter() - start

    return statistics.median((timed(1 + epochs) - timed(1)) / epochs for _ in range(repeats))


def epoch_times(args):
    X, y = make_alnm_cohort(
        args.n_patients,
        modalities=("ultrasound", "pathology"),
        image_size=args.size,
        random_state=0,
    )
    fitted = branches(args, 0)
    for _, est in fitted:
        est.fit(X, y)
    times = {}
    for (_, est), label in zip(fitted, SINGLE):
        times[label] = epoch_time(
            lambda n, e=est: clone(e).set_params(max_epochs=n).fit(X, y),
            args.timed_epochs,
            args.repeats,
        )
    cases = {
        "fused, end to end (freeze_branches=False)": {"freeze_branches": False},
        "fused, frozen branches, augmented inputs": {"freeze_branches": True},
        # last: it switches the fitted branches' augmentation off (their own setting, which
        # the fused model follows)
        "fused, frozen branches, embedded once": {"freeze_branches": True},
    }
    for label, params in cases.items():
        model = fusion("multilayer", fitted, args, 0, **params)
        if label.endswith("embedded once"):
            model.set_params(us__augment=None, path__augment=None)
        times[label] = epoch_time(
            # not cloned: a clone of a "prefit" model has unfitted branches
            lambda n, m=model: m.set_params(max_epochs=n).fit(X, y),
            args.timed_epochs,
            args.repeats,
        )
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--n-patients", type=int, default=300)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--us-backbone", default="resnet18", help="ULNet's trunk")
    parser.add_argument("--epochs", type=int, default=15, help="epochs of each branch")
    parser.add_argument("--lr", type=float, default=1e-3, help="learning rate of the branches")
    parser.add_argument("--fusion-epochs", type=int, default=20)
    parser.add_argument("--fusion-lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--missing", type=float, default=0.3)
    parser.add_argument("--timed-epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3, help="timed pairs of fits per model")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--skip-timing", action="store_true")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"{args.seeds} seeds x {args.n_patients} patients, {args.size} px; ULNet trunk "
        f"{args.us_backbone}; branches {args.epochs} epochs at lr {args.lr}, fusions "
        f"{args.fusion_epochs} epochs at lr {args.fusion_lr}; batch {args.batch_size}; "
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads",
        flush=True,
    )
    fmt = lambda v: f"{v:.3f}"  # noqa: E731
    if not args.skip_accuracy:
        aucs, tests = accuracy_and_missing(args)
        print("\nTest AUC per seed")
        print(aucs.T.to_string(float_format=fmt))
        summary = pd.DataFrame({"mean": aucs.mean(), "sd": aucs.std(ddof=1)})
        print("\nTest AUC over seeds")
        print(summary.to_string(float_format=fmt))
        print("\nMultilayer fusion vs the better single modality (paired DeLong)")
        print(tests.to_string(float_format=fmt))
        best = tests["best single AUC"].mean()
        print(
            f"\nmultilayer {tests['multilayer AUC'].mean():.3f} vs best single {best:.3f} on "
            f"average; wins {int((tests['difference'] > 0).sum())} of {len(tests)} seeds; "
            f"30% missing - complete: mean {tests['missing - complete'].mean():+.3f}, "
            f"max |.| {tests['missing - complete'].abs().max():.3f}"
        )
    if not args.skip_timing:
        times = epoch_times(args)
        print(f"\nEpoch time, {args.n_patients} patients (extra wall time per epoch, median)")
        for label, seconds in times.items():
            print(f"  {label:45s} {seconds:7.2f} s")
        added = times[SINGLE[0]] + times[SINGLE[1]]
        for label in list(times)[2:]:
            print(f"  {label} / branches added = {times[label] / added:.2f}")


if __name__ == "__main__":
    main()
