"""``alnm demo``: every available study trained and reported on an embedded synthetic cohort.

Each study is trained on a stratified training split and reported the way the clinical papers
report a model (AUC with 95% DeLong CI, accuracy, sensitivity, specificity, PPV, NPV, F1 at the
Youden threshold of the training cohort, Hosmer-Lemeshow goodness of fit, and DeLong tests
between models); ``out`` writes the HTML study report. The command line is
:mod:`sklearn_alnm.cli`.
"""

import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple, TextIO

import pandas as pd

from ._logging import get_logger
from ._typing import FilePath

_log = get_logger(__name__)


DEMO_STUDIES = ("clinical", "ultrasound", "mammography", "video", "multimodal", "bags")
#: Small, fast segmenters of the demo's automatic-segmentation model (shared settings).
_DEMO_SEGMENTATION = {
    "base_channels": 8,
    "depth": 3,
    "input_size": 64,
    "max_epochs": 12,
    "lr": 3e-3,
    "batch_size": 16,
}
_DEMO_MODALITIES = {
    "clinical": ("clinical",),
    "ultrasound": ("clinical", "ultrasound"),
    "mammography": ("clinical", "mammography"),
    "video": ("video",),
    "multimodal": ("ultrasound", "pathology"),
    "bags": ("clinical", "bag"),
}
#: Frames per synthetic clip in the demo (the video networks see every frame).
_DEMO_FRAMES = 8
#: Shared small settings of the video study's networks (clips and key frames at 32 px).
_DEMO_VIDEO = {"lr": 1e-3, "batch_size": 16, "max_epochs": 6, "normalize": "zscore"}
#: Small settings of the multimodal study's branches (from scratch, no augmentation; the
#: ultrasound lesion at 48 px, where a ResNet18 trunk still learns its cue, the H&E tile at 32).
_DEMO_BRANCH = {"input_size": 32, "lr": 1e-3, "batch_size": 16, "max_epochs": 8, "augment": None}
_DEMO_US_SIZE = 48
#: Side of the ultrasound study's lesion crops for its CNNs (the segmenters see 64 px).
_DEMO_CROP = 48
_DEMO_FUSIONS = ("concat", "weighted", "attention", "voting", "multilayer")
#: Small settings of the multi-task stage (the light PLNet trunk at 32 px: a 2 x 2 grid, a
#: 4 x 4 mask resized to the image; the study's SegFormer at 512 px is a GPU model).
_DEMO_MTL = {
    "dim": 32,
    "heads": 4,
    "input_size": 32,
    "lr": 2e-3,
    "max_epochs": 5,
    "augment": None,
}


def run_demo(
    n_patients: int = 300,
    test_size: float = 0.3,
    random_state: int = 0,
    stream: TextIO | None = None,
    studies: Sequence[str] = DEMO_STUDIES,
    n_jobs: int = 2,
    out: FilePath | None = None,
    progress: bool = False,
    verbose: int = 0,
) -> dict[str, pd.DataFrame]:
    """Run the available studies on a synthetic cohort, print paper-style tables, and report.

    Parameters
    ----------
    n_patients : int, default=300
        Size of the synthetic cohort.
    test_size : float, default=0.3
        Fraction of patients held out (stratified by label) as the test cohort.
    random_state : int, default=0
        Seed of the cohort, the split and the models.
    stream : file-like, default=None
        Where to print; ``None`` means standard output.
    studies : sequence of {"clinical", "ultrasound", "mammography", "video", "multimodal", \
"bags"}, default=all
        ``"clinical"``: the clinical signature, training and test performance.
        ``"ultrasound"``: a deep-learning signature of the ultrasound lesion and the clinical
        signature, combined by logistic regression drawn as a nomogram, beside a small CNN
        trained on the lesion crops (:class:`~sklearn_alnm.models.ImageClassifier`).
        ``"mammography"``: clinical + radiomics + deep features of the CC and MLO views,
        each modality alone and fused before (feature concatenation) and after (probability
        stacking) modelling.
        ``"video"``: the dynamic-ultrasound study: TIN (a ResNet18 with a learnt temporal
        interlace, :class:`~sklearn_alnm.models.VideoClassifier`) on each patient's clip
        against the same ResNet18 on the clip's key frame (the static comparator).
        ``"multimodal"``: the ultrasound + H&E study: ULNet on the ultrasound lesion and
        PLNet on the pathology tile, each alone, and their embeddings fused by
        concatenation, learned weights, attention, voting and the multilayer head
        (:class:`~sklearn_alnm.models.MultimodalFusionClassifier`).
        ``"bags"``: the multi-task / multi-instance study: each bag image segmented, typed and
        scored by a multi-task network, a transformer over each patient's tokens, against
        the image stage alone, a CNN on one tumour image and a clinical model.
        The ultrasound, mammography, video, multimodal and bag studies are compared on the
        test cohort with DeLong p-values against their reference model (combined nomogram;
        post-fusion; TIN; the better single modality; MTL-MIL).
    n_jobs : int, default=2
        Worker processes that fit the studies' models side by side (groups of models that
        depend on each other together), the longest first, each with
        ``cpu_count // n_jobs`` torch threads; also the workers of the radiomics extraction
        and of the signatures. ``1`` fits every model in this process, one after another.
    out : str, os.PathLike or None, default=None
        Folder of the HTML study report of every fitted model on the training and test
        cohorts (tables, ROC, calibration and decision curves, confusion matrices, the
        nomogram, Grad-CAM of the CNNs and the key frames of the video model); ``None``
        writes no report.
    progress : bool, default=False
        Show a progress bar over the models on standard error, then the scoring and report
        steps.
    verbose : int, default=0
        ``>= 1``: every network prints skorch's epoch table and progress bar while training.

    Returns
    -------
    dict of pandas.DataFrame
        The numeric tables, keyed by study.
    """
    import tempfile

    from sklearn.model_selection import train_test_split

    from .datasets import make_alnm_cohort

    unknown = sorted(set(studies) - set(DEMO_STUDIES))
    if unknown:
        raise ValueError(f"unknown studies {unknown}; available: {list(DEMO_STUDIES)}")
    out_stream = sys.stdout if stream is None else stream
    modalities = tuple(dict.fromkeys(m for s in studies for m in _DEMO_MODALITIES[s]))
    X, y = make_alnm_cohort(
        n_patients, modalities=modalities, n_frames=_DEMO_FRAMES, random_state=random_state
    )
    split = train_test_split(X, y, test_size=test_size, stratify=y, random_state=random_state)
    print(
        f"Synthetic cohort: {n_patients} patients, {int(y.sum())} node-positive; training "
        f"{len(split[2])} / test {len(split[3])} (stratified, seed {random_state}).\n",
        file=out_stream,
    )
    builders = {
        "clinical": _clinical_study,
        "ultrasound": _ultrasound_study,
        "mammography": _mammography_study,
        "video": _video_study,
        "multimodal": _multimodal_study,
        "bags": _bags_study,
    }
    X_train, X_test, y_train, y_test = split
    tables = {}
    with tempfile.TemporaryDirectory(prefix="alnm-demo-cache-") as cache:
        plans = [
            builders[key](cache=cache, random_state=random_state, n_jobs=n_jobs)
            for key in DEMO_STUDIES
            if key in studies
        ]
        if verbose:
            for plan in plans:
                _set_network_verbosity(plan.models.values(), verbose)
        _fit_plans(plans, X_train, y_train, n_jobs, progress=progress)
        reported = {}
        for plan in plans:
            for name, model in plan.models.items():
                if name in plan.report:
                    reported.setdefault(name, model)
        # one prediction per model and cohort, shared by the printed tables and the report
        _status(progress, f"scoring {len(reported)} models on the training and test cohorts")
        primary = next((p.primary for p in reversed(plans) if p.primary in reported), None)
        report = _demo_report(reported, *split, primary=primary)
        for plan in plans:
            scores = {
                name: report.probabilities_[name]
                if reported.get(name) is model
                else {
                    "Training": model.predict_proba(X_train)[:, 1],
                    "Test": model.predict_proba(X_test)[:, 1],
                }
                for name, model in plan.models.items()
            }
            tables[plan.key] = plan.show(scores, plan.models, X_test, y_train, y_test, out_stream)
        if out is not None:
            _log.info("writing the study report of %d models", len(reported))
            _status(progress, f"writing the study report to {out}")
            report.to_html(out)
            print(f"\nreport: {Path(out) / 'index.html'}", file=out_stream)
    return tables


def _radiomics_verbosity():
    """This process's pyradiomics verbosity, or None when no study imported pyradiomics."""
    if "radiomics" not in sys.modules:
        return None
    from .features._radiomics_worker import _radiomics_verbosity

    return _radiomics_verbosity()


def _status(progress, message):
    if progress:
        print(f"{message} ...", file=sys.stderr, flush=True)


def _set_network_verbosity(models, verbose):
    """Set ``verbose`` on every neural estimator inside ``models`` (nested ones included)."""
    from .models._base import BaseNeuralEstimator

    for model in models:
        nested = [model]
        if hasattr(model, "get_params"):
            nested += list(model.get_params(deep=True).values())
        for estimator in nested:
            if isinstance(estimator, BaseNeuralEstimator):
                estimator.set_params(verbose=verbose)


class _DemoStudy(NamedTuple):
    """One study of the demo: unfitted models, the names in the report, and its printout.

    ``groups`` splits the models into groups fitted together, in one process, and in order
    (a model that uses another's fit, or a feature cache another fills, shares its group),
    each with its cost: its fitting time in seconds, measured on two cores, so that the
    longest groups start first. ``None``: all models in one group of cost ``cost``.
    """

    key: str
    models: dict
    report: tuple
    show: Callable  # (scores, fitted models, X_test, y_train, y_test, stream) -> table
    cost: float = 0.0
    groups: tuple | None = None  # ((names, cost), ...)
    primary: str | None = None  # the model the study proposes

    def fit_groups(self):
        if self.groups is None:
            return [(tuple(self.models), self.cost)]
        named = [name for names, _ in self.groups for name in names]
        if sorted(named) != sorted(self.models):
            raise ValueError(f"study {self.key!r}: groups {named} do not cover {list(self.models)}")
        return list(self.groups)


def _fit_plans(plans, X, y, n_jobs, progress=False):
    """Fit every study's models, in place.

    With ``n_jobs`` > 1, the studies' fit groups run in that many worker processes, the
    costliest first, each process with ``cpu_count // n_jobs`` torch threads: the demo's
    small networks keep single-threaded processes busier than one process with every thread
    (``benchmarks/bench_cpu_training.py``: 1.6x the ResNet18 training steps per second at
    32 px on two cores, 1.3x at 64 px). The fitted models come back in one piece per group,
    so a model holding another of its group (a fusion of fitted branches) still holds the
    fitted one.
    """
    import os

    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    tasks = [
        (cost, plan, {name: plan.models[name] for name in names})
        for plan in plans
        for names, cost in plan.fit_groups()
    ]
    workers = min(n_jobs, len(tasks))
    bar = tqdm(
        total=sum(len(group) for _, _, group in tasks),
        desc="fitting models",
        unit="model",
        file=sys.stderr,
        disable=not progress,
    )
    with bar:
        if workers <= 1:
            for i, (_, plan, group) in enumerate(tasks):
                bar.set_postfix_str(f"{plan.key}: {', '.join(group)}")
                _fit_group(i, group, X, y)
                bar.update(len(group))
            return
        order = sorted(range(len(tasks)), key=lambda i: -tasks[i][0])
        threads = max(1, (os.cpu_count() or 1) // workers)
        level = logging.getLogger("sklearn_alnm").getEffectiveLevel()
        quiet = _radiomics_verbosity()  # the workers silence pyradiomics as this process does
        _log.info("fitting %d groups of models in %d processes", len(tasks), workers)
        bar.set_postfix_str(f"{workers} processes")
        fitted = Parallel(
            n_jobs=workers, batch_size=1, pre_dispatch="n_jobs", return_as="generator_unordered"
        )(
            delayed(_fit_group)(
                i, tasks[i][2], X, y, threads=threads, log_level=level, radiomics_level=quiet
            )
            for i in order
        )
        for i, group in fitted:
            plan = tasks[i][1]
            plan.models.update(group)
            bar.set_postfix_str(f"done: {plan.key}: {', '.join(group)}")
            bar.update(len(group))


def _fit_group(index, models, X, y, threads=None, log_level=None, radiomics_level=None):
    """Fit ``models`` (a dict) in order, in this process; return ``(index, models)``."""
    import time

    from .features._radiomics_worker import _set_radiomics_verbosity

    _set_radiomics_verbosity(radiomics_level)

    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    if log_level is not None and log_level <= logging.INFO:
        from ._logging import enable_console_logging

        enable_console_logging(log_level)
    for name, model in models.items():
        start = time.perf_counter()
        _log.info("fitting %s on %d patients", name, len(y))
        model.fit(X, y)
        _log.info("fitted %s in %.1f s", name, time.perf_counter() - start)
    return index, models


def _demo_report(models, X_train, X_test, y_train, y_test, primary=None):
    from .datasets._synthetic import MODALITY_COLUMNS
    from .report import StudyReport

    # the synthetic cohort's clinical variables: Table 1 and odds ratios in the report
    clinical = [c for c in MODALITY_COLUMNS["clinical"] if c in X_train.columns]
    return StudyReport(
        models,
        {"Training": (X_train, y_train), "Test": (X_test, y_test)},
        title="sklearn_alnm demo: synthetic ALNM cohort",
        gradcam=4,
        primary=primary,
        label_names={0: "N0", 1: "N+"},
        clinical=clinical or None,
    )


def _clinical_study(*, cache, random_state, n_jobs):
    from .clinical import make_clinical_pipeline

    def show(scores, models, X_test, y_train, y_test, out):
        from .metrics import format_performance_table, performance_table

        (score,) = scores.values()
        table = performance_table(
            {"Training": (y_train, score["Training"]), "Test": (y_test, score["Test"])}
        )
        features = models["Clinical"][:-1].get_feature_names_out()
        print(
            f"== Clinical signature: logistic regression on {len(features)} encoded clinical "
            "features ==\nthreshold: Youden index on the training cohort\n",
            file=out,
        )
        print(format_performance_table(table).rename_axis(None).to_string(), file=out)
        print(_LEGEND, file=out)
        return table

    return _DemoStudy(
        "clinical",
        {"Clinical": make_clinical_pipeline()},
        ("Clinical",),
        show,
        cost=0.1,
        primary="Clinical",
    )


def _compare_on_test(scores, reference, y_train, y_test, *, header, out):
    """Print the models' test performance with DeLong p against ``reference``.

    Each model's threshold is its Youden index on the training cohort.
    """
    import pandas as pd

    from .metrics import delong_test, format_performance_table, performance_table

    test = {name: score["Test"] for name, score in scores.items()}
    table = pd.concat(
        [
            performance_table(
                {"Training": (y_train, score["Training"]), "Test": (y_test, score["Test"])}
            )
            .loc[["Test"]]
            .rename(index={"Test": name})
            for name, score in scores.items()
        ]
    )
    table["delong_p"] = [
        float("nan") if name == reference else delong_test(y_test, s, test[reference])[1]
        for name, s in test.items()
    ]
    shown = format_performance_table(table.drop(columns="delong_p")).rename_axis(None)
    shown[f"DeLong p vs {reference}"] = [
        "-" if pd.isna(p) else ("<0.001" if p < 0.001 else f"{p:.3f}") for p in table["delong_p"]
    ]
    print(header, file=out)
    print(shown.to_string(), file=out)
    print(_LEGEND, file=out)
    return table


_ULTRASOUND_HEADER = (
    "\n== Ultrasound study: deep-learning signature + clinical signature -> nomogram ==\n"
    "test cohort; thresholds: Youden index on the training cohort; DL signature: deep "
    "features of a randomly initialised\nResNet18 (no pretrained weights) on the "
    "lesion's bounding box -> selection -> SGD; CNN: a ResNet18 trained from scratch\n"
    "on the lesion crops ({crop} px, 8 epochs); combined: logistic regression on the "
    "out-of-fold clinical and DL signatures;\nauto-segmentation: U-Net + UNet++ "
    "({seg_size} px, {seg_epochs} epochs) fused by their mean probability -> crop of the largest "
    "predicted lesion -> CNN\n(as above) -> nomogram with the clinical signature, "
    "no reference mask needed to predict\n"
)


def _ultrasound_study(*, cache, random_state, n_jobs):
    from .clinical import make_clinical_pipeline
    from .models import ImageClassifier
    from .recipes import ultrasound_autoseg, ultrasound_combined, ultrasound_dl_signature

    deep = {"input_size": 64}
    models = {
        "Clinical signature": make_clinical_pipeline(),
        "DL signature (US)": ultrasound_dl_signature(
            deep=deep, cache=cache, random_state=random_state
        ),
        "CNN (US)": ImageClassifier(
            "image",
            "mask",
            backbone="resnet18",
            input_size=_DEMO_CROP,
            normalize="zscore",
            max_epochs=8,
            batch_size=32,
            random_state=random_state,
        ),
        "Combined nomogram (US)": ultrasound_combined(
            deep=deep, cache=cache, n_jobs=n_jobs, random_state=random_state
        ),
        "Auto-segmentation nomogram (US)": ultrasound_autoseg(
            segmenters=["unet", "unetpp"],
            segmentation=_DEMO_SEGMENTATION,
            roi_size=_DEMO_CROP,
            cnn={"backbone": "resnet18", "max_epochs": 8, "batch_size": 32},
            cv=2,
            n_jobs=n_jobs,
            random_state=random_state,
        ),
    }

    header = _ULTRASOUND_HEADER.format(
        crop=_DEMO_CROP,
        seg_size=_DEMO_SEGMENTATION["input_size"],
        seg_epochs=_DEMO_SEGMENTATION["max_epochs"],
    )

    def show(scores, models, X_test, y_train, y_test, out):
        reference = "Combined nomogram (US)"
        table = _compare_on_test(scores, reference, y_train, y_test, header=header, out=out)
        segmentation = models["Auto-segmentation nomogram (US)"]["segmentation"]
        members = ", ".join(
            f"{name} {member.score(X_test):.3f}"
            for name, member in segmentation.named_segmenters_.items()
        )
        fused = segmentation.score(X_test)
        print(
            f"automatic segmentation, test Dice vs reference masks: fused {fused:.3f} ({members})",
            file=out,
        )
        return table

    # the clinical signature is the clinical study's model in the report; the signatures
    # share the deep-feature cache, the CNN and the automatic model stand alone
    groups = (
        (("Clinical signature", "DL signature (US)", "Combined nomogram (US)"), 15),
        (("CNN (US)",), 19),
        (("Auto-segmentation nomogram (US)",), 111),
    )
    return _DemoStudy(
        "ultrasound",
        models,
        tuple(models)[1:],
        show,
        groups=groups,
        primary="Auto-segmentation nomogram (US)",
    )


def _mammography_study(*, cache, random_state, n_jobs):
    from ._logging import silence_pyradiomics
    from .recipes import mammography_fusion

    silence_pyradiomics()
    light = {
        "radiomics": {"image_types": {"Original": {}}},
        "deep": {"input_size": 64},
        "cache": cache,
        "n_jobs": n_jobs,
        "random_state": random_state,
    }
    models = {
        "Clinical": mammography_fusion("pre", ("clinical",), **light),
        "Radiomics (CC+MLO)": mammography_fusion("pre", ("radiomics",), **light),
        "Deep (CC+MLO)": mammography_fusion("pre", ("deep",), **light),
        "Pre-fusion": mammography_fusion("pre", **light),
        "Post-fusion": mammography_fusion("post", **light),
    }
    header = (
        "\n== Mammography study: clinical + radiomics + deep features (CC and MLO views) ==\n"
        "test cohort; each model's threshold is its Youden index on the training cohort; "
        "radiomics on the original image,\ndeep features from a randomly initialised "
        "ResNet18 (no pretrained weights); selection: p<0.05 -> |r|<0.75 -> LASSO\n"
    )

    def show(scores, models, X_test, y_train, y_test, out):
        return _compare_on_test(scores, "Post-fusion", y_train, y_test, header=header, out=out)

    # "Clinical" is shown in the report only when the clinical study does not run; one
    # group, as the models share the feature cache
    return _DemoStudy("mammography", models, tuple(models), show, cost=45, primary="Post-fusion")


_VIDEO_HEADER = (
    "\n== Ultrasound video study: a video network on each clip vs a static CNN on its key "
    "frame ==\ntest cohort; thresholds: Youden index on the training cohort; TIN: a ResNet18 "
    "from scratch with a learnt temporal interlace\n(offset network -> fractional temporal "
    "shift) on all {frames} frames of each clip (32 px, clip z-score, {epochs} epochs); static: "
    "the same\nResNet18 on the middle frame of the clip; the synthetic clips carry the label "
    "in their motion (lesion strain, pulsatile flow),\nnot in any single frame\n"
)


def _video_study(*, cache, random_state, n_jobs):
    from .recipes import ultrasound_video, ultrasound_video_static

    models = {
        "TIN (video)": ultrasound_video(
            "tin",
            backbone="resnet18",
            n_frames=_DEMO_FRAMES,
            frame_size=32,
            resize=None,
            augment=None,
            random_state=random_state,
            **_DEMO_VIDEO,
        ),
        "Static CNN (key frame)": ultrasound_video_static(
            "resnet18",
            input_size=32,
            augment=None,
            random_state=random_state,
            **_DEMO_VIDEO,
        ),
    }
    header = _VIDEO_HEADER.format(frames=_DEMO_FRAMES, epochs=_DEMO_VIDEO["max_epochs"])

    def show(scores, models, X_test, y_train, y_test, out):
        return _compare_on_test(scores, "TIN (video)", y_train, y_test, header=header, out=out)

    groups = ((("TIN (video)",), 53), (("Static CNN (key frame)",), 14))
    return _DemoStudy("video", models, tuple(models), show, groups=groups, primary="TIN (video)")


_MULTIMODAL_HEADER = (
    "\n== Ultrasound + H&E study: ULNet and PLNet alone and fused at the feature level ==\n"
    "test cohort; thresholds: Youden index on the training cohort; ULNet: the study's "
    "preprocessing (lesion rectangle, z-score + histogram\nequalisation) on a ResNet18 "
    "trunk from scratch (the study's ResNet50, shrunk for the demo); PLNet: the light "
    "four-block CNN on the H&E tile\n(mean 0.5 / sd 0.5); {us_size} and {path_size} px, "
    "{epochs} epochs; "
    "fusions: the two fitted, frozen networks' embeddings through each fusion head\n"
    "(AdamW, {fusion_epochs} epochs; voting: the mean of the two probabilities); "
    "precision = PPV, recall = sensitivity; reference: the better single modality\n"
)


def _multimodal_study(*, cache, random_state, n_jobs):
    from .recipes import us_pathology_branches, us_pathology_fusion

    branch = {**_DEMO_BRANCH, "lr_schedule": None}
    (_, us), (_, path) = us_pathology_branches(
        us={**branch, "backbone": "resnet18", "input_size": _DEMO_US_SIZE},
        path=branch,
        random_state=random_state,
    )
    fusion = {"max_epochs": 20, "lr": 1e-3, "batch_size": 16}
    models = {"ULNet (US)": us, "PLNet (H&E)": path}
    for name in _DEMO_FUSIONS:
        models[f"{name.capitalize()} fusion"] = us_pathology_fusion(
            name,
            branches=[("us", us), ("path", path)],
            branch_init="prefit",  # the two models above, fitted first
            random_state=random_state,
            **fusion,
        )
    header = _MULTIMODAL_HEADER.format(
        epochs=_DEMO_BRANCH["max_epochs"],
        fusion_epochs=fusion["max_epochs"],
        us_size=_DEMO_US_SIZE,
        path_size=_DEMO_BRANCH["input_size"],
    )

    def show(scores, models, X_test, y_train, y_test, out):
        from .metrics import roc_auc_ci

        single = ("ULNet (US)", "PLNet (H&E)")
        reference = max(single, key=lambda n: roc_auc_ci(y_test, scores[n]["Test"])[0])
        return _compare_on_test(scores, reference, y_train, y_test, header=header, out=out)

    # one group: the fusions hold the two fitted branches
    return _DemoStudy(
        "multimodal", models, tuple(models), show, cost=34, primary="Multilayer fusion"
    )


_BAGS_HEADER = (
    "\n== Multi-task + multi-instance study: each image segmented and scored, then the "
    "patient's bag pooled ==\ntest cohort; thresholds: Youden index on the training cohort; "
    "stage 1: PLNet + SAM-like mask decoder, lesion mask, kind\nand "
    "image-level ALN heads ({size} px, {epochs} epochs, out-of-fold tokens for stage 2); "
    "MTL-MIL: a transformer over each patient's tokens\nwith the predicted kinds; stage 1 "
    "alone: the mean of the images' scores; single T: ResNet18 on the first tumour image;\n"
    "clinical: logistic regression on BI-RADS and T stage; an N+ patient's metastasis shows "
    "in one or a few of its 0-5 node images\n(none for about 30% of the patients), the "
    "others look normal\n"
)


def _bags_study(*, cache, random_state, n_jobs):
    from .clinical import make_clinical_pipeline
    from .recipes import ultrasound_mtl_mil, ultrasound_single_t

    mil = {"dim": 32, "heads": 4, "lr": 1e-3, "max_epochs": 30}
    model = ultrasound_mtl_mil(
        "plnet",
        "transformer",
        input_size=_DEMO_MTL["input_size"],
        cv=2,
        stage1={k: v for k, v in _DEMO_MTL.items() if k != "input_size"},
        mil=mil,
        random_state=random_state,
    )
    models = {
        "MTL-MIL (transformer)": model,
        "Stage 1 alone (image mean)": _Stage(model),
        "Single T (tumour image)": ultrasound_single_t(
            "resnet18",
            mask_col="bag_mask",
            input_size=32,
            lr=1e-3,
            max_epochs=8,
            augment=None,
            random_state=random_state,
        ),
        "Clinical (BI-RADS, T stage)": make_clinical_pipeline(
            categorical=["birads", "t_stage"], numeric=[]
        ),
    }
    header = _BAGS_HEADER.format(size=_DEMO_MTL["input_size"], epochs=_DEMO_MTL["max_epochs"])

    def show(scores, models, X_test, y_train, y_test, out):
        return _compare_on_test(
            scores, "MTL-MIL (transformer)", y_train, y_test, header=header, out=out
        )

    reported = ("MTL-MIL (transformer)", "Single T (tumour image)")
    # one group: the image stage alone is read from the fitted two-stage model
    return _DemoStudy("bags", models, reported, show, cost=51, primary="MTL-MIL (transformer)")


class _Stage:
    """The image stage of a fitted two-stage pipeline as a model of its own (its patient
    score: the mean of the images'); fitting it is a no-op, as the pipeline fitted it."""

    def __init__(self, pipeline):
        self.pipeline = pipeline

    def fit(self, X, y):
        return self

    def predict_proba(self, X):
        return self.pipeline[0].predict_proba(X)


_LEGEND = (
    "\nAUC with 95% DeLong confidence interval; HL = Hosmer-Lemeshow goodness of fit "
    "(10 groups; p > 0.05: no evidence of miscalibration)."
)
