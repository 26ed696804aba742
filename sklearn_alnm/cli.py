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
from collections.abc import Sequence

from . import __version__
from ._demo import DEMO_STUDIES, run_demo
from ._logging import enable_console_logging, get_logger, silence_pyradiomics

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


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs as written; every option's help ends with its default."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (
            "default" in text
            or action.default in (None, argparse.SUPPRESS)
            or not action.option_strings
            or isinstance(action, argparse._VersionAction | argparse._HelpAction)
        ):
            return text
        return f"{text} (default: %(default)s)"


_VERBOSE_HELP = "log progress (-vv: debug messages too); also after the subcommand"

_DEMO_EPILOG = """examples:
  alnm demo --out alnm_demo                 every study, the HTML report in alnm_demo/
  alnm demo --studies clinical,ultrasound   two studies only
  alnm -v demo --n-jobs 1                   one model after another, with log messages
"""

_RUN_EPILOG = """A study configuration is a YAML file:

  title: Mammography fusion
  manifest: cohort/manifest.csv       # one row per patient; paths relative to this file
  label: {column: aln_status, positive: N+}   # or a 0/1 column: label: label
  split: {by: cohort, train: training}         # hold-out cohorts from a column, or
  # split: {kfold: 5, group_column: patient_id, random_state: 0}
  models:
    Clinical: {recipe: clinical}
    Post-fusion:
      recipe: mammography_fusion      # any function of sklearn_alnm.recipes ...
      params: {kind: post, cache: feature-cache}
    Forest:
      factory: sklearn.ensemble:RandomForestClassifier   # ... or an estimator factory
      params: {n_estimators: 500}
  primary: Post-fusion                # saved as model.joblib (default: the last model)
  clinical: [age, tumor_size_mm, er]  # optional: Table 1 and odds ratios in the report
  parallel: {backend: dask, scheduler: "tcp://host:8786"}   # optional: run on a cluster
  output: results                     # default: <config name>-results beside the file

Optional: id_column (default: found by name), split.allow_shared_patients. Everything is
checked before any fitting. The output folder holds report/index.html, model.joblib with
model.json (threshold, labels, versions, SHA-256), models/<name>.joblib for the other
models and a copy of the configuration. Complete examples: examples/*.yaml (their cohort:
python examples/make_synthetic_cohort.py).

A study configuration is code: the factories it names are called. Run only configurations
you trust.
"""

_PREDICT_EPILOG = """example:
  alnm predict results/model.joblib new-patients.xlsx -o predictions.csv
"""


def _add_verbose(parser, dest):
    parser.add_argument("-v", "--verbose", action="count", default=0, dest=dest, help=_VERBOSE_HELP)


def build_parser() -> argparse.ArgumentParser:
    """Return the ``argparse`` parser of the ``alnm`` command."""
    parser = argparse.ArgumentParser(
        prog="alnm",
        description="Axillary lymph node metastasis prediction studies as scikit-learn pipelines.",
        formatter_class=_HelpFormatter,
        epilog="'alnm COMMAND --help' explains a command, its options and their defaults.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_verbose(parser, "verbose")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="run the library's main job on a synthetic cohort and print the results",
        description=run_demo.__doc__.split("\n\n")[0],
        formatter_class=_HelpFormatter,
        epilog=_DEMO_EPILOG,
    )
    demo.add_argument(
        "--n-patients", type=_positive_int, default=300, help="size of the synthetic cohort"
    )
    demo.add_argument(
        "--test-size",
        type=_fraction,
        default=0.3,
        help="fraction of the patients held out as the test cohort (stratified by label)",
    )
    demo.add_argument(
        "--random-state", type=int, default=0, help="seed of the cohort, the split and the models"
    )
    demo.add_argument(
        "--studies",
        default=",".join(DEMO_STUDIES),
        help="comma-separated studies to run",
    )
    demo.add_argument(
        "--no-progress", action="store_true", help="no progress bar on standard error"
    )
    _add_verbose(demo, "sub_verbose")
    demo.add_argument(
        "--n-jobs",
        type=_positive_int,
        default=2,
        help="worker processes fitting the studies' models side by side, each with "
        "cpu_count/n-jobs torch threads; 1 fits them one after another",
    )
    demo.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="write the HTML study report of every model into DIR (index.html, figures, CSV); "
        "default: no report",
    )

    run = sub.add_parser(
        "run",
        help="run a study from a YAML configuration: fit, evaluate, write the report and model",
        description="Fit and evaluate the models of a study configuration; write the HTML "
        "report, the tables and model.joblib into the output folder.",
        formatter_class=_HelpFormatter,
        epilog=_RUN_EPILOG,
    )
    run.add_argument("config", help="study configuration (YAML; format below)")
    run.add_argument(
        "--out",
        default=None,
        help="output folder (default: the configuration's 'output', else "
        "<config name>-results beside it)",
    )
    run.add_argument(
        "--allow-factory",
        action="append",
        default=[],
        metavar="MODULE",
        help="let the configuration call factories of MODULE besides sklearn_alnm, "
        "scikit-learn, imbalanced-learn and xgboost (a configuration is code; repeatable; "
        "default: none)",
    )
    run.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="run the parallel work (radiomics rows, signatures, cross-validation) on the "
        "Dask scheduler at ADDRESS, e.g. tcp://host:8786; overrides the configuration's "
        "'parallel' (default: as the configuration says, else this machine)",
    )
    _add_verbose(run, "sub_verbose")

    predict = sub.add_parser(
        "predict",
        help="score a cohort with a fitted model",
        description="Write the probability and predicted label of every patient of a cohort. "
        "A model file is a pickle: loading it can run arbitrary code, so a model is loaded "
        "only when the SHA-256 that 'alnm run' recorded in model.json matches, unless --trust "
        "is given.",
        formatter_class=_HelpFormatter,
        epilog=_PREDICT_EPILOG,
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
    predict.add_argument(
        "--id-col",
        default="auto",
        help="patient id column of the manifest ('auto': found by name, e.g. patient_id)",
    )
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
        help="positive class of a model not written by 'alnm run' whose labels are not 0/1 "
        "(default: read from model.json)",
    )
    _add_verbose(predict, "sub_verbose")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``alnm`` console script; returns the process exit status."""
    args = build_parser().parse_args(argv)
    verbose = args.verbose + args.sub_verbose
    if verbose:
        enable_console_logging(logging.DEBUG if verbose > 1 else logging.INFO)
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
                progress=not args.no_progress,
                verbose=verbose,
            )
        except ValueError as exc:
            build_parser().error(str(exc))
    elif args.command in ("run", "predict"):
        from ._study import StudyConfigError, StudyInterrupted, predict_cohort, run_study
        from .utils import ClusterUnavailableError

        try:
            if args.command == "run":
                if verbose < 2:  # pyradiomics' per-image warnings only with -vv
                    silence_pyradiomics()
                parallel = None
                if args.scheduler is not None:
                    parallel = {"backend": "dask", "scheduler": args.scheduler}
                out = run_study(
                    args.config, args.out, allow_factories=args.allow_factory, parallel=parallel
                )
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
        except (StudyConfigError, ClusterUnavailableError) as exc:
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
