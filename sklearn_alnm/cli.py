"""The ``alnm`` command line.

``alnm demo`` runs the library's main job on an embedded synthetic cohort: each available study
is trained on a stratified training split and reported the way the clinical papers report a
model (AUC with 95% DeLong CI, accuracy, sensitivity, specificity, PPV, NPV, F1 at the Youden
threshold of the training cohort, Hosmer-Lemeshow goodness of fit, and DeLong tests between
models); ``--out DIR`` writes the HTML study report. ``alnm run`` runs a study from a YAML
configuration and ``alnm predict`` scores a cohort with a fitted model.
"""

import argparse
import logging
import sys

from . import __version__
from ._demo import DEMO_STUDIES, run_demo
from ._logging import enable_console_logging, get_logger

_log = get_logger(__name__)

__all__ = ["DEMO_STUDIES", "build_parser", "main", "run_demo"]


def _probability(text):
    from .metrics._validation import _check_probability

    try:
        return _check_probability(float(text), "the value")
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None


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
    demo.add_argument(
        "--studies",
        default=",".join(DEMO_STUDIES),
        help=f"comma-separated studies to run (default: all of {','.join(DEMO_STUDIES)})",
    )
    demo.add_argument("--n-jobs", type=_positive_int, default=2)
    demo.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="write the HTML study report of every model into DIR (index.html, figures, CSV)",
    )

    run = sub.add_parser(
        "run",
        help="run a study from a YAML configuration: fit, evaluate, write the report and model",
        description="Fit and evaluate the models of a study configuration; write the HTML "
        "report, the tables and model.joblib into the output folder.",
    )
    run.add_argument("config", help="study configuration (YAML)")
    run.add_argument("--out", default=None, help="output folder (overrides the configuration)")
    run.add_argument(
        "--allow-factory",
        action="append",
        default=[],
        metavar="MODULE",
        help="let the configuration call factories of MODULE besides sklearn_alnm, "
        "scikit-learn, imbalanced-learn and xgboost (a configuration is code; repeatable)",
    )
    run.epilog = (
        "A study configuration is code: the factories it names are called. Run only "
        "configurations you trust."
    )

    predict = sub.add_parser(
        "predict",
        help="score a cohort with a fitted model",
        description="Write the probability and predicted label of every patient of a cohort. "
        "A model file is a pickle: loading it can run arbitrary code, so a model is loaded "
        "only when the SHA-256 that 'alnm run' recorded in model.json matches, unless --trust "
        "is given.",
    )
    predict.add_argument("model", help="fitted model (model.joblib written by 'alnm run')")
    predict.add_argument("cohort", help="cohort manifest (CSV or Excel)")
    predict.add_argument("-o", "--output", default="predictions.csv", help="CSV to write")
    predict.add_argument(
        "--threshold",
        type=_probability,
        default=None,
        help="decision threshold in [0, 1] (default: the one stored by 'alnm run')",
    )
    predict.add_argument("--id-col", default="auto", help="patient id column of the manifest")
    predict.add_argument(
        "--trust",
        action="store_true",
        help="load a model file without (or against) its recorded SHA-256: only for files "
        "from a source you trust",
    )
    predict.add_argument(
        "--positive",
        default=None,
        metavar="LABEL",
        help="positive class of a model not written by 'alnm run' whose labels are not 0/1",
    )
    return parser


def main(argv=None):
    """Entry point of the ``alnm`` console script; returns the process exit status."""
    args = build_parser().parse_args(argv)
    if args.verbose:
        enable_console_logging(logging.DEBUG if args.verbose > 1 else logging.INFO)
    if args.command == "demo":
        studies = [s.strip() for s in args.studies.split(",") if s.strip()]
        try:
            run_demo(
                args.n_patients,
                args.test_size,
                args.random_state,
                studies=studies,
                n_jobs=args.n_jobs,
                out=args.out,
            )
        except ValueError as exc:
            build_parser().error(str(exc))
    elif args.command in ("run", "predict"):
        from ._study import StudyConfigError, StudyInterrupted, predict_cohort, run_study

        try:
            if args.command == "run":
                out = run_study(args.config, args.out, allow_factories=args.allow_factory)
                print(f"report: {out / 'report' / 'index.html'}\nmodel: {out / 'model.joblib'}")
            else:
                result = predict_cohort(
                    args.model,
                    args.cohort,
                    args.output,
                    threshold=args.threshold,
                    id_col=args.id_col,
                    trust=args.trust,
                    pos_label=_label_value(args.positive),
                )
                print(f"wrote {len(result)} predictions to {args.output}")
        except StudyConfigError as exc:
            print(f"alnm: error: {exc}", file=sys.stderr)
            return 2
        except StudyInterrupted as exc:
            print(f"alnm: interrupted ({exc}); nothing was written.", file=sys.stderr)
            return 128 + int(exc.signum)
        except KeyboardInterrupt:
            print("alnm: interrupted; nothing was written.", file=sys.stderr)
            return 130
    return 0


def _label_value(text):
    """A command-line label: an integer where it reads as one ("1"), else the text."""
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return text


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
