"""``alnm demo``: every available study trained and reported on an embedded synthetic cohort.

Each study is trained on a stratified training split and reported the way the clinical papers
report a model (AUC with 95% DeLong CI, accuracy, sensitivity, specificity, PPV, NPV, F1 at the
Youden threshold of the training cohort, Hosmer-Lemeshow goodness of fit, and DeLong tests
between models); ``out`` writes the HTML study report. The command line is
:mod:`sklearn_alnm.cli`.
"""

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from ._logging import get_logger

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
_DEMO_VIDEO = {"lr": 1e-3, "batch_size": 16, "max_epochs": 8, "normalize": "zscore"}
#: Small settings of the multimodal study's branches (from scratch, no augmentation; the
#: ultrasound lesion at 48 px, where a ResNet18 trunk still learns its cue, the H&E tile at 32).
_DEMO_BRANCH = {"input_size": 32, "lr": 1e-3, "batch_size": 16, "max_epochs": 8, "augment": None}
_DEMO_US_SIZE = 48
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
    n_patients=300,
    test_size=0.3,
    random_state=0,
    stream=None,
    studies=DEMO_STUDIES,
    n_jobs=2,
    out=None,
):
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
        Parallel workers for radiomics extraction and model fitting.
    out : str, os.PathLike or None, default=None
        Folder of the HTML study report of every fitted model on the training and test
        cohorts (tables, ROC, calibration and decision curves, confusion matrices, the
        nomogram, Grad-CAM of the CNNs and the key frames of the video model); ``None``
        writes no report.

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
        reported = {}
        for plan in plans:
            for name, model in plan.models.items():
                _log.info("fitting %s on %d patients", name, len(y_train))
                model.fit(X_train, y_train)
                if name in plan.report:
                    reported.setdefault(name, model)
        # one prediction per model and cohort, shared by the printed tables and the report
        report = _demo_report(reported, *split)
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
            report.to_html(out)
            print(f"\nreport: {Path(out) / 'index.html'}", file=out_stream)
    return tables


class _DemoStudy(NamedTuple):
    """One study of the demo: unfitted models, the names in the report, and its printout."""

    key: str
    models: dict
    report: tuple
    show: Callable  # (scores, fitted models, X_test, y_train, y_test, stream) -> table


def _demo_report(models, X_train, X_test, y_train, y_test):
    from .report import StudyReport

    return StudyReport(
        models,
        {"Training": (X_train, y_train), "Test": (X_test, y_test)},
        title="sklearn_alnm demo: synthetic ALNM cohort",
        gradcam=4,
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

    return _DemoStudy("clinical", {"Clinical": make_clinical_pipeline()}, ("Clinical",), show)


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
    "on the lesion crops (64 px, 8 epochs); combined: logistic regression on the "
    "out-of-fold clinical and DL signatures;\nauto-segmentation: U-Net + UNet++ "
    "(64 px, 12 epochs) fused by their mean probability -> crop of the largest "
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
            input_size=64,
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
            roi_size=64,
            cnn={"backbone": "resnet18", "max_epochs": 8, "batch_size": 32},
            cv=3,
            n_jobs=n_jobs,
            random_state=random_state,
        ),
    }

    def show(scores, models, X_test, y_train, y_test, out):
        reference = "Combined nomogram (US)"
        table = _compare_on_test(
            scores, reference, y_train, y_test, header=_ULTRASOUND_HEADER, out=out
        )
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

    # the clinical signature is the clinical study's model in the report
    return _DemoStudy("ultrasound", models, tuple(models)[1:], show)


def _mammography_study(*, cache, random_state, n_jobs):
    import radiomics

    from .recipes import mammography_fusion

    # pyradiomics prints informational warnings (e.g. on GLCM symmetry) to stderr by default
    radiomics.setVerbosity(logging.ERROR)
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

    # "Clinical" is shown in the report only when the clinical study does not run
    return _DemoStudy("mammography", models, tuple(models), show)


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

    return _DemoStudy("video", models, tuple(models), show)


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

    return _DemoStudy("multimodal", models, tuple(models), show)


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

    return _DemoStudy("bags", models, ("MTL-MIL (transformer)", "Single T (tumour image)"), show)


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
