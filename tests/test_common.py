"""Every exported estimator through one contract.

Estimators on tabular input go through scikit-learn's ``parametrize_with_checks`` (expected
failures listed with their reason); estimators on a cohort DataFrame (images, masks, clinical
columns) through the library's contract below: clone, ``get_params`` / ``set_params`` round
trip, repr and HTML repr, ``NotFittedError`` before ``fit``, a fit on a tiny synthetic cohort,
pickling, ``set_output(transform="pandas")`` and ``get_feature_names_out`` for transformers,
and ``score`` with ``sample_weight`` (directly and routed by a ``Pipeline`` under metadata
routing). A new estimator is covered by adding it to :data:`TABULAR` or :data:`COHORT`;
``test_every_exported_estimator_is_covered`` fails until it is.
"""

import importlib
import inspect
import pickle
import pkgutil
import re

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn import config_context
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks
from skorch import NeuralNet

import sklearn_alnm
from sklearn_alnm.clinical import (
    ClinicalColumns,
    ClinicalPreprocessor,
    Nomogram,
    StepwiseLogisticRegression,
    make_clinical_pipeline,
)
from sklearn_alnm.datasets import make_alnm_cohort
from sklearn_alnm.feature_selection import CorrelationFilter, LassoSelector, UnivariateFilter
from sklearn_alnm.features import DeepFeatures, RadiomicsFeatures
from sklearn_alnm.fusion import GroupColumnKFold, SignatureScores
from sklearn_alnm.inputs import (
    BagAugment,
    BagBatch,
    ClipAugment,
    InstanceDropout,
    MultimodalAugment,
    MultimodalBatch,
    RandomFlipRotate,
    RandomResizedCropFlip,
)
from sklearn_alnm.metrics import SegmentationScorer, dice_score, make_segmentation_scorer
from sklearn_alnm.models import (
    BaseNeuralEstimator,
    ImageClassifier,
    MILClassifier,
    MultimodalFusionClassifier,
    MultiTaskSegClassifier,
    VideoClassifier,
)
from sklearn_alnm.models._base import TRAINING_CONSTRAINTS, TRAINING_PARAMETER_DOCS
from sklearn_alnm.preprocessing import (
    FrameSelector,
    InstanceSelector,
    IntensityNormalizer,
    ROICropper,
)
from sklearn_alnm.segmentation import (
    DeepLabV3Segmenter,
    MaskRCNNSegmenter,
    SegmentationFusion,
    UNetPlusPlusSegmenter,
    UNetSegmenter,
)

# ----------------------------------------------------------------------------- the lists

# Labels other than 0/1, -1/1 and booleans need pos_label: the positive class (the modelled
# event) is never guessed, so the checks that fit on labels such as [1, 2] or strings fail by
# design (the estimators' own tests cover string labels with pos_label).
_POS_LABEL_CHECKS = {
    name: "labels other than 0/1 need pos_label (the modelled event is never guessed)"
    for name in (
        "check_estimators_dtypes",
        "check_classifier_data_not_an_array",
        "check_classifiers_classes",
    )
}
_LASSO_LOGISTIC_CHECKS = {
    "check_fit2d_1feature": (
        "The check fits 10 samples whose smaller class has 3 members. With cv=5 stratified "
        "folds some validation folds would hold no case of that class, where the "
        "cross-validated ROC AUC that chooses C is undefined; LassoSelector refuses with its "
        "own message (fewer samples of a class than folds) instead of the '1 feature' "
        "message the check looks for."
    )
}

#: Estimators on numeric tables: ``(estimator, expected failed checks)``.
TABULAR = [
    (StepwiseLogisticRegression(direction="both"), _POS_LABEL_CHECKS),
    (Nomogram(), _POS_LABEL_CHECKS),
    (Nomogram(make_pipeline(StandardScaler(), LogisticRegression())), _POS_LABEL_CHECKS),
    (UnivariateFilter(), {}),
    (UnivariateFilter(correction="fdr_bh", continuous_test="mannwhitney"), {}),
    (CorrelationFilter(), {}),
    (CorrelationFilter(method="spearman"), {}),
    # A short C grid keeps the suite fast; cv stays at the default 5.
    (LassoSelector(Cs=5, random_state=0), _LASSO_LOGISTIC_CHECKS),
    (LassoSelector(estimator="linear", alphas=10), {}),
]

_TINY_SEG = {"input_size": 32, "max_epochs": 1, "batch_size": 4, "random_state": 0}
_TINY_UNET = {"base_channels": 4, "depth": 2, **_TINY_SEG}
_TINY_BRANCH = {"input_size": 32, "max_epochs": 1, "batch_size": 8, "random_state": 0}

#: Estimators on a cohort DataFrame: ``(factory, cohort kind)``; the factory gives a small,
#: fast, seeded instance.
COHORT = {
    ImageClassifier: (
        lambda: ImageClassifier(
            mask_col="mask",
            backbone="resnet18",
            input_size=32,
            max_epochs=1,
            batch_size=8,
            random_state=0,
        ),
        "ultrasound",
    ),
    VideoClassifier: (
        lambda: VideoClassifier(
            arch="tsm",
            backbone="resnet18",
            n_frames=4,
            frame_size=32,
            resize=None,
            max_epochs=1,
            random_state=0,
        ),
        "video",
    ),
    MultimodalFusionClassifier: (
        lambda: MultimodalFusionClassifier(
            [
                ("us", ImageClassifier("image", "mask", backbone="plnet", **_TINY_BRANCH)),
                ("path", ImageClassifier("pathology", backbone="plnet", **_TINY_BRANCH)),
            ],
            fusion="multilayer",
            max_epochs=1,
            batch_size=8,
            random_state=0,
        ),
        "multimodal",
    ),
    MILClassifier: (
        lambda: MILClassifier(
            "bag",
            kind_col="bag_kind",
            backbone="plnet",
            input_size=32,
            dim=32,
            max_epochs=1,
            batch_size=4,
            random_state=0,
        ),
        "bag",
    ),
    MultiTaskSegClassifier: (
        lambda: MultiTaskSegClassifier(
            backbone="plnet",
            dim=16,
            heads=2,
            input_size=32,
            max_epochs=1,
            batch_size=8,
            random_state=0,
        ),
        "bag",
    ),
    UNetSegmenter: (lambda: UNetSegmenter(**_TINY_UNET), "ultrasound"),
    UNetPlusPlusSegmenter: (lambda: UNetPlusPlusSegmenter(**_TINY_UNET), "ultrasound"),
    DeepLabV3Segmenter: (
        lambda: DeepLabV3Segmenter(backbone="mobilenet_v3_large", **_TINY_SEG),
        "ultrasound",
    ),
    MaskRCNNSegmenter: (
        lambda: MaskRCNNSegmenter(
            min_size=32,
            max_size=32,
            max_epochs=1,
            random_state=0,
            device="cpu",
            module__rpn_batch_size_per_image=32,
            module__box_batch_size_per_image=16,
            module__box_detections_per_img=5,
        ),
        "ultrasound",
    ),
    SegmentationFusion: (
        lambda: SegmentationFusion(
            [
                ("unet", UNetSegmenter(**_TINY_UNET)),
                ("unetpp", UNetPlusPlusSegmenter(**_TINY_UNET)),
            ],
            method="mean",
        ),
        "ultrasound",
    ),
    DeepFeatures: (
        lambda: DeepFeatures(mask_col="mask", backbone="resnet18", input_size=32, random_state=0),
        "ultrasound",
    ),
    RadiomicsFeatures: (
        lambda: RadiomicsFeatures(feature_classes=["firstorder"], image_types=["Original"]),
        "ultrasound",
    ),
    IntensityNormalizer: (lambda: IntensityNormalizer(), "ultrasound"),
    ROICropper: (lambda: ROICropper(output_size=16), "ultrasound"),
    FrameSelector: (lambda: FrameSelector(method="max_variance"), "video"),
    InstanceSelector: (lambda: InstanceSelector(mask_col="bag_mask"), "bag"),
    ClinicalPreprocessor: (
        lambda: make_clinical_pipeline()[0],
        "clinical",
    ),
    SignatureScores: (
        lambda: SignatureScores([("clinical", make_clinical_pipeline())], cv=3, random_state=0),
        "clinical",
    ),
}


#: Exported classes that are not estimators but pipeline tools, each with its own contract
#: (``test_tools_follow_their_contract``): ``(factory, kind)``.
TOOLS = {
    RandomResizedCropFlip: (lambda: RandomResizedCropFlip(), "augment"),
    RandomFlipRotate: (lambda: RandomFlipRotate(), "joint augment"),
    ClipAugment: (lambda: ClipAugment(elastic=20.0), "clip augment"),
    MultimodalAugment: (
        lambda: MultimodalAugment({"us": RandomResizedCropFlip(), "path": None}),
        "multimodal augment",
    ),
    BagAugment: (lambda: BagAugment(RandomResizedCropFlip()), "bag augment"),
    InstanceDropout: (
        lambda: InstanceDropout(0.5, then=BagAugment(RandomResizedCropFlip())),
        "bag regulariser",
    ),
    ClinicalColumns: (lambda: ClinicalColumns("numeric"), "column selector"),
    GroupColumnKFold: (lambda: GroupColumnKFold(n_splits=3, random_state=0), "splitter"),
    SegmentationScorer: (lambda: make_segmentation_scorer("dice"), "scorer"),
}


# --------------------------------------------------------------------------- coverage


def _exported_estimators():
    """Concrete estimator classes re-exported by the public subpackages."""
    found = set()
    for info in pkgutil.walk_packages(sklearn_alnm.__path__, "sklearn_alnm."):
        if any(part.startswith("_") for part in info.name.split(".")[1:]):
            continue
        module = importlib.import_module(info.name)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseEstimator)
                and not issubclass(obj, NeuralNet)
                and not obj.__name__.startswith("Base")
            ):
                found.add(obj)
    return found


def _exported_tools():
    """Exported classes a pipeline uses besides estimators: batch callables, column
    selectors and splitters (networks, errors and data holders excluded)."""
    found = set()
    for info in pkgutil.walk_packages(sklearn_alnm.__path__, "sklearn_alnm."):
        if any(part.startswith("_") for part in info.name.split(".")[1:]):
            continue
        module = importlib.import_module(info.name)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if not inspect.isclass(obj) or issubclass(
                obj, BaseEstimator | torch.nn.Module | Exception
            ):
                continue
            if any("__call__" in vars(base) for base in obj.__mro__[:-1]) or hasattr(obj, "split"):
                found.add(obj)
    return found


def test_every_exported_estimator_is_covered():
    covered = {type(estimator) for estimator, _ in TABULAR} | set(COHORT)
    missing = sorted(cls.__name__ for cls in _exported_estimators() - covered)
    assert not missing, f"add these estimators to TABULAR or COHORT of test_common.py: {missing}"
    tools = sorted(cls.__name__ for cls in _exported_tools() - set(TOOLS))
    assert not tools, f"add these exported tools to TOOLS of test_common.py: {tools}"
    assert ClinicalPreprocessor in COHORT and ImageClassifier in COHORT


# ---------------------------------------------------------------------- tabular estimators


@parametrize_with_checks(
    [estimator for estimator, _ in TABULAR],
    expected_failed_checks=lambda estimator: next(
        failures for candidate, failures in TABULAR if candidate is estimator
    ),
    xfail_strict=True,
)
# The checks fit random data: nothing is significant there (the selectors' documented "keep
# one feature and warn" fallback fires) and stepwise fits may separate.
@pytest.mark.filterwarnings("ignore:No feature reached:UserWarning")
@pytest.mark.filterwarnings("ignore:The cross-validated LASSO .* kept no feature:UserWarning")
@pytest.mark.filterwarnings("ignore::sklearn_alnm.clinical.SeparationWarning")
@pytest.mark.filterwarnings("ignore:Removed constant column:UserWarning")
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


# ----------------------------------------------------------------------- cohort estimators

_COHORTS = {}
_FITTED = {}


def _cohort(kind):
    if kind not in _COHORTS:
        if kind in ("ultrasound", "video", "bag"):
            X, y = make_alnm_cohort(12, modalities=kind, image_size=32, random_state=0)
        elif kind == "multimodal":
            modalities = ("ultrasound", "pathology")
            X, y = make_alnm_cohort(12, modalities=modalities, image_size=32, random_state=0)
        else:
            X, y = make_alnm_cohort(60, modalities=("clinical",), random_state=0)
        _COHORTS[kind] = (X, np.asarray(y))
    return _COHORTS[kind]


def _fitted(cls):
    """One fit per class for the whole module (the fits dominate the time)."""
    if cls not in _FITTED:
        factory, kind = COHORT[cls]
        X, y = _cohort(kind)
        _FITTED[cls] = factory().fit(X, y)
    return _FITTED[cls]


def _outputs(estimator, X):
    """What the fitted estimator computes from ``X``, comparable with :func:`_same`."""
    if hasattr(estimator, "predict_proba"):
        return estimator.predict_proba(X)
    return estimator.transform(X)


def _same(a, b):
    if isinstance(a, pd.DataFrame):
        assert list(a.columns) == list(b.columns)
        for column in a.columns:
            for x, z in zip(a[column], b[column]):
                np.testing.assert_array_equal(np.asarray(x), np.asarray(z))
        return
    if isinstance(a, list):
        assert len(a) == len(b)
        for x, z in zip(a, b):
            np.testing.assert_allclose(np.asarray(x), np.asarray(z), rtol=1e-5, atol=1e-6)
        return
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


_COHORT_CLASSES = pytest.mark.parametrize("cls", list(COHORT), ids=lambda cls: cls.__name__)


@_COHORT_CLASSES
def test_clone_params_round_trip_and_repr(cls):
    estimator = COHORT[cls][0]()
    params = estimator.get_params(deep=False)
    twin = clone(estimator)
    assert type(twin) is cls
    assert twin.get_params(deep=False).keys() == params.keys()
    assert repr(twin) == repr(estimator)
    twin.set_params(**params)
    assert repr(twin) == repr(estimator)
    assert cls.__name__ in repr(estimator)
    html = estimator._repr_html_()
    assert cls.__name__ in html and "<" in html
    with pytest.raises(ValueError):
        estimator.set_params(no_such_parameter_xyz=1)


@_COHORT_CLASSES
def test_not_fitted_error_before_fit(cls):
    estimator = COHORT[cls][0]()
    X, _ = _cohort(COHORT[cls][1])
    if not estimator.__sklearn_tags__().requires_fit:
        pytest.skip(f"{cls.__name__} learns nothing (requires_fit=False)")
    methods = [m for m in ("predict_proba", "predict", "transform") if hasattr(estimator, m)]
    assert methods
    for method in methods:
        with pytest.raises(NotFittedError):
            getattr(estimator, method)(X)


@_COHORT_CLASSES
def test_fit_gives_one_output_per_row_and_pickles(cls):
    estimator = _fitted(cls)
    X, _ = _cohort(COHORT[cls][1])
    out = _outputs(estimator, X)
    assert len(out) == len(X)
    again = pickle.loads(pickle.dumps(estimator))
    _same(out, _outputs(again, X))


@_COHORT_CLASSES
def test_transformers_give_pandas_output_named_by_get_feature_names_out(cls):
    estimator = _fitted(cls)
    if not hasattr(estimator, "transform"):
        pytest.skip(f"{cls.__name__} is not a transformer")
    X, _ = _cohort(COHORT[cls][1])
    names = list(estimator.get_feature_names_out())
    estimator.set_output(transform="pandas")
    try:
        out = estimator.transform(X)
    finally:
        estimator.set_output(transform="default")
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == names
    assert list(out.index) == list(X.index)


@_COHORT_CLASSES
def test_score_takes_sample_weight_directly_and_routed_by_a_pipeline(cls):
    estimator = _fitted(cls)
    if not hasattr(estimator, "score"):
        pytest.skip(f"{cls.__name__} has no score")
    X, y = _cohort(COHORT[cls][1])
    weights = np.linspace(0.0, 1.0, len(X))
    plain = estimator.score(X, y)
    weighted = estimator.score(X, y, sample_weight=weights)
    assert np.isfinite(plain) and np.isfinite(weighted)
    if hasattr(estimator, "mask_col") and not hasattr(estimator, "classes_"):
        # a segmenter's score is the weighted mean of the per-image Dice
        truth = [np.asarray(m) for m in X[estimator.mask_col]]
        dice = dice_score(truth, estimator.predict(X), average=None)
        assert weighted == pytest.approx(np.average(dice, weights=weights))
    with config_context(enable_metadata_routing=True):
        pipe = Pipeline([("model", estimator.set_score_request(sample_weight=True))])
        try:
            assert pipe.score(X, y, sample_weight=weights) == pytest.approx(weighted)
        finally:
            estimator.set_score_request(sample_weight=None)


_NEURAL = [cls for cls in COHORT if issubclass(cls, BaseNeuralEstimator)]


@pytest.mark.parametrize("cls", _NEURAL, ids=lambda cls: cls.__name__)
def test_neural_estimators_document_every_parameter_and_the_shared_defaults(cls):
    doc = inspect.getdoc(cls)
    for name, parameter in inspect.signature(cls.__init__).parameters.items():
        if name == "self":
            continue
        if parameter.kind is parameter.VAR_KEYWORD:
            assert re.search(rf"^\*\*{name}$", doc, re.M), name
            continue
        line = re.search(rf"^(?:\w+, )*{name}(?:, \w+)* : (.*)$", doc, re.M)
        assert line, f"{cls.__name__} does not document {name!r}"
        if name in TRAINING_PARAMETER_DOCS and name != "optimizer":
            default = parameter.default
            shown = f'"{default}"' if isinstance(default, str) else repr(default)
            assert line.group(1).endswith(f"default={shown}"), (name, line.group(1))
    assert cls._parameter_constraints.keys() >= TRAINING_CONSTRAINTS.keys()


@pytest.mark.parametrize("cls", list(TOOLS), ids=lambda cls: cls.__name__)
def test_tools_follow_their_contract(cls):
    factory, kind = TOOLS[cls]
    tool = factory()
    again = pickle.loads(pickle.dumps(tool))
    assert repr(again) == repr(tool)
    # a scorer shows the factory call that builds it, as scikit-learn's do
    assert (cls.__name__ if kind != "scorer" else "make_segmentation_scorer(") in repr(tool)
    if kind.endswith("augment"):
        # batched, shape-preserving, reproducible under torch's seed, picklable
        assert tool.batched
        shape = (3, 1, 4, 16, 16) if kind == "clip augment" else (3, 1, 16, 16)
        batch = torch.rand(shape, generator=torch.Generator().manual_seed(0))
        masks = torch.rand(3, 1, 16, 16, generator=torch.Generator().manual_seed(1)) > 0.5
        args = (batch, masks.float()) if kind == "joint augment" else (batch,)
        if kind == "multimodal augment":  # each modality its own augmentation (or none)
            present = torch.ones(3, 2, dtype=torch.bool)
            args = (MultimodalBatch({"us": batch, "path": batch.clone()}, present),)
        if kind == "bag augment":  # the real instances of padded bags, padding untouched
            bag_mask = torch.tensor([[True, True], [True, False], [True, True]])
            instances = torch.stack([batch, batch.flip(0)], dim=1)
            args = (BagBatch(instances, bag_mask, torch.zeros(3, 2, dtype=torch.long)),)
        torch.manual_seed(1)
        first = tool(*args)
        torch.manual_seed(1)
        second = again(*args)
        if kind == "multimodal augment":
            assert first.present is present and torch.equal(first.images["path"], batch)
            first, second, args = first.images["us"], second.images["us"], (batch,)
        if kind == "bag augment":
            assert torch.equal(first.instances[1, 1], instances[1, 1])
            first, second, args = first.instances, second.instances, (instances,)
        first = first if isinstance(first, tuple) else (first,)
        second = second if isinstance(second, tuple) else (second,)
        for a, b, x in zip(first, second, args):
            assert a.shape == x.shape
            torch.testing.assert_close(a, b)
        assert not torch.equal(first[0], batch)  # it does transform
    elif kind == "bag regulariser":  # hides real instances only, reproducibly, one kept
        assert tool.batched
        bag_mask = torch.tensor([[True, True, True], [True, False, False], [True, True, False]])
        batch = BagBatch(torch.rand(3, 3, 1, 16, 16), bag_mask, torch.zeros(3, 3, dtype=torch.long))
        torch.manual_seed(1)
        first = tool(batch)
        torch.manual_seed(1)
        second = again(batch)
        assert torch.equal(first.mask, second.mask)
        torch.testing.assert_close(first.instances, second.instances)
        assert bool((first.mask <= bag_mask).all()) and bool(first.mask.any(dim=1).all())
    elif kind == "column selector":
        X, _ = _cohort("clinical")
        columns = tool(X)
        assert columns and "patient_id" not in columns
        assert set(columns) <= set(X.select_dtypes("number").columns)
        assert again(X) == columns
    elif kind == "scorer":
        segmenter = _fitted(UNetSegmenter)
        X, _ = _cohort("ultrasound")
        weights = np.linspace(0.0, 1.0, len(X))
        plain, weighted = tool(segmenter, X), again(segmenter, X, sample_weight=weights)
        dice = dice_score(list(X["mask"]), segmenter.predict(X), average=None)
        assert plain == pytest.approx(float(np.mean(dice)))
        assert weighted == pytest.approx(float(np.average(dice, weights=weights)))
    else:
        X, y = _cohort("clinical")
        X = X.assign(patient_id=[f"P{i // 2}" for i in range(len(X))])  # two rows per patient
        folds = list(tool.split(X, y))
        assert len(folds) == tool.get_n_splits(X, y) == 3
        for train, test in folds:
            assert not set(X["patient_id"].iloc[train]) & set(X["patient_id"].iloc[test])
