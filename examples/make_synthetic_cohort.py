"""Write a synthetic cohort to disk for the example study configurations.

Creates ``synthetic-cohort/`` beside this script: ultrasound and mammography images with masks
(PNG / NIfTI), clinical factors, and ``manifest.csv`` with the label and a ``cohort`` column
(70% ``training``, 30% ``test``, stratified by label).

Usage::

    python examples/make_synthetic_cohort.py [--n-patients 200] [--out DIR]
    alnm run examples/mammography_study.yaml
"""

import argparse
from pathlib import Path

from sklearn.model_selection import train_test_split

from sklearn_alnm.datasets import make_alnm_cohort
from sklearn_alnm.io import load_manifest, save_manifest


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-patients", type=int, default=200)
    parser.add_argument("--out", default=Path(__file__).resolve().parent / "synthetic-cohort")
    parser.add_argument("--random-state", type=int, default=0)
    args = parser.parse_args(argv)
    _, y = make_alnm_cohort(
        args.n_patients,
        modalities=("clinical", "ultrasound", "mammography"),
        image_size=64,
        random_state=args.random_state,
        data_home=args.out,
    )
    manifest_path = Path(args.out) / "manifest.csv"
    manifest = load_manifest(manifest_path)
    train, _ = train_test_split(
        manifest.index, test_size=0.3, stratify=y, random_state=args.random_state
    )
    manifest["cohort"] = ["training" if i in set(train) else "test" for i in manifest.index]
    save_manifest(manifest, manifest_path)
    print(f"wrote {len(manifest)} patients to {manifest_path}")


if __name__ == "__main__":
    main()
