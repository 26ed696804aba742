"""The ``alnm`` command line.

``alnm demo`` runs the library's main job on an embedded synthetic cohort: a clinical logistic
signature trained on a stratified training split and reported, for the training and the test
cohort, the way the clinical papers report a model (AUC with 95% DeLong CI, accuracy,
sensitivity, specificity, PPV, NPV, F1 at the Youden threshold of the training cohort, and the
Hosmer-Lemeshow goodness-of-fit p-value).
"""

import argparse
import logging
import sys

from . import __version__
from ._logging import enable_console_logging, get_logger

_log = get_logger(__name__)


def _positive_int(text):
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _fraction(text):
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(
            f"expected a number strictly between 0 and 1, got {text!r}"
        )
    return value


def run_demo(n_patients=300, test_size=0.3, random_state=0, stream=None):
    """Fit the clinical signature on a synthetic cohort and print train/test performance.

    Parameters
    ----------
    n_patients : int, default=300
        Size of the synthetic cohort.
    test_size : float, default=0.3
        Fraction of patients held out (stratified by label) as the test cohort.
    random_state : int, default=0
        Seed of the cohort, the split and the model.
    stream : file-like, default=None
        Where to print; ``None`` means standard output.

    Returns
    -------
    pandas.DataFrame
        The numeric performance table (one row per cohort).
    """
    from sklearn.model_selection import train_test_split

    from .clinical import make_clinical_pipeline
    from .datasets import make_alnm_cohort
    from .metrics import format_performance_table, performance_table

    out = sys.stdout if stream is None else stream
    X, y = make_alnm_cohort(n_patients, modalities=("clinical",), random_state=random_state)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, stratify=y, random_state=random_state
    )
    _log.info("training the clinical signature on %d patients", len(y_train))
    model = make_clinical_pipeline().fit(X_train, y_train)
    table = performance_table(
        {
            "Training": (y_train, model.predict_proba(X_train)[:, 1]),
            "Test": (y_test, model.predict_proba(X_test)[:, 1]),
        }
    )
    features = model[:-1].get_feature_names_out()
    print(
        f"Clinical signature (logistic regression on {len(features)} encoded clinical features)\n"
        f"synthetic cohort: {n_patients} patients, {int(y.sum())} node-positive; "
        f"training {len(y_train)} / test {len(y_test)} (stratified, seed {random_state})\n"
        "threshold: Youden index on the training cohort\n",
        file=out,
    )
    print(format_performance_table(table).rename_axis(None).to_string(), file=out)
    print(
        "\nAUC with 95% DeLong confidence interval; HL = Hosmer-Lemeshow goodness of fit "
        "(10 groups; p > 0.05: no evidence of miscalibration).",
        file=out,
    )
    return table


def build_parser():
    """Return the ``argparse`` parser of the ``alnm`` command."""
    parser = argparse.ArgumentParser(
        prog="alnm",
        description="Axillary lymph node metastasis prediction studies as scikit-learn pipelines.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log progress")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="run the library's main job on a synthetic cohort and print the results",
        description=run_demo.__doc__.split("\n\n")[0],
    )
    demo.add_argument("--n-patients", type=_positive_int, default=300)
    demo.add_argument("--test-size", type=_fraction, default=0.3)
    demo.add_argument("--random-state", type=int, default=0)
    return parser


def main(argv=None):
    """Entry point of the ``alnm`` console script; returns the process exit status."""
    args = build_parser().parse_args(argv)
    if args.verbose:
        enable_console_logging(logging.DEBUG if args.verbose > 1 else logging.INFO)
    if args.command == "demo":
        run_demo(args.n_patients, args.test_size, args.random_state)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
