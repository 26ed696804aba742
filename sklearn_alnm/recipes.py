"""The published ALNM studies, each as one unfitted scikit-learn estimator.

A recipe wires the library's estimators the way a study did, with the study's settings as
defaults and every part reachable by ``get_params`` / ``set_params`` (so ``GridSearchCV`` can
tune any step), and returns an ordinary estimator: it cross-validates, pickles and deploys like
any other.
"""

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from ._typing import Label, RandomStateLike
from .clinical import Nomogram, make_clinical_pipeline, make_clinical_preprocessor
from .fusion import SignatureScores, make_post_fusion, make_signature

MAMMOGRAPHY_MODALITIES = ("clinical", "radiomics", "deep")

#: Image types of the mammography study's radiomics (original, wavelet and Laplacian of
#: Gaussian filtered images).
STUDY_RADIOMICS_IMAGE_TYPES = {"Original": {}, "Wavelet": {}, "LoG": {"sigma": [1.0, 2.0, 3.0]}}


def _with_shared(params, default, *, cache, n_jobs):
    """Merge user parameters of a feature transformer over defaults and the shared settings."""
    user = dict(params or {})
    merged = dict(default)
    if cache is not None and "cache" not in user:
        merged["cache"] = cache
    if n_jobs is not None and "n_jobs" in default and "n_jobs" not in user:
        merged["n_jobs"] = n_jobs
    merged.update(user)
    return merged


def mammography_fusion(
    kind: str = "post",
    modalities: Sequence[str] = MAMMOGRAPHY_MODALITIES,
    *,
    views: Sequence[str] = ("cc", "mlo"),
    radiomics: Any = None,
    deep: Any = None,
    clinical_estimator: BaseEstimator | None = None,
    signature_estimator: BaseEstimator | None = None,
    final_estimator: BaseEstimator | None = None,
    alpha: float = 0.05,
    correlation_threshold: float = 0.75,
    lasso_cv: int = 5,
    sampler: Any = None,
    cache: Any = None,
    n_jobs: int | None = None,
    group_col: str = "patient_id",
    cv: int = 5,
    random_state: RandomStateLike = None,
) -> BaseEstimator:
    """Clinical + radiomics + deep-learning fusion on two mammography views.

    The study extracts, per view (CC and MLO), pyradiomics features and the penultimate
    ResNet18 features of the lesion region; each signature is z-scored, filtered
    univariately (p < 0.05), de-correlated (:math:`|r|` > 0.75) and reduced by a 5-fold
    cross-validated LASSO before an SGD classifier. Clinical factors form a logistic model.
    Modalities are fused either by concatenating their features before selection
    (``kind="pre"``) or by stacking the modality models' probabilities with an SVM
    meta-learner trained on patient-grouped out-of-fold predictions (``kind="post"``).

    Parameters
    ----------
    kind : {"post", "pre"}, default="post"
        Decision-level (probability stacking) or feature-level (concatenation) fusion. With a
        single modality, ``"pre"`` gives that modality's own model.
    modalities : sequence of {"clinical", "radiomics", "deep"}, default=all three
        Modalities to fuse (post-fusion needs at least two).
    views : sequence of str, default=("cc", "mlo")
        Image views; view ``v`` reads columns ``v_image`` and ``v_mask``.
    radiomics, deep : dict or None, default=None
        Parameters of :class:`~sklearn_alnm.features.RadiomicsFeatures` /
        :class:`~sklearn_alnm.features.DeepFeatures` per view. Defaults: radiomics on the
        original, wavelet and LoG (sigma 1, 2, 3 mm) images with 2-D shape features; ResNet18
        features of the mask's bounding box. ``deep`` defaults to ``weights=None`` because
        weights cannot be assumed present; pass ``{"weights": "DEFAULT"}`` for the study's
        ImageNet initialisation.
    clinical_estimator : classifier, default=None
        Clinical model; ``None`` means ``LogisticRegression(max_iter=1000)``.
    signature_estimator : classifier, default=None
        Classifier of the radiomics, deep and pre-fusion signatures; ``None`` means a
        logistic-loss ``SGDClassifier`` (see :func:`~sklearn_alnm.fusion.make_signature`).
    final_estimator : classifier, default=None
        Post-fusion meta-learner; ``None`` means a linear SVM with Platt-scaled probabilities
        (:func:`~sklearn_alnm.fusion.make_meta_learner`).
    alpha, correlation_threshold, lasso_cv :
        Selection settings, see :func:`~sklearn_alnm.fusion.make_signature`.
    sampler : imbalanced-learn sampler, default=None
        Resampling (e.g. ``SMOTE()``) of training data before each classifier.
    cache : str, os.PathLike, joblib.Memory or None, default=None
        Feature cache shared by all feature transformers (strongly recommended: post-fusion
        refits every modality model once per inner fold, and a cache makes feature extraction
        happen once per patient).
    n_jobs : int or None, default=None
        Parallel radiomics extraction and parallel fitting of the modality models.
    group_col : str or None, default="patient_id"
        Patient id column for the post-fusion inner CV.
    cv : int or CV splitter, default=5
        Post-fusion inner CV.
    random_state : int or None, default=None
        Seed of the inner CVs, of the classifiers and of randomly initialised networks.

    Returns
    -------
    estimator
        ``StackingClassifier`` (post) or ``Pipeline`` (pre), unfitted. Post-fusion members are
        named after the modalities, so e.g. ``radiomics__univariate__alpha`` tunes the
        radiomics signature's filter.

    References
    ----------
    Study 002 of the design notes: mammography-based clinical, radiomics and deep-learning
    fusion for axillary lymph node metastasis, with CC and MLO views and pre-/post-fusion.

    Examples
    --------
    >>> from sklearn_alnm.recipes import mammography_fusion
    >>> model = mammography_fusion(kind="post", random_state=0)
    >>> [name for name, _ in model.estimators]
    ['clinical', 'radiomics', 'deep']
    """
    if kind not in ("post", "pre"):
        raise ValueError(f"kind must be 'post' or 'pre'; got {kind!r}.")
    modalities = (modalities,) if isinstance(modalities, str) else tuple(modalities)
    unknown = sorted(set(modalities) - set(MAMMOGRAPHY_MODALITIES))
    if unknown or not modalities or len(set(modalities)) != len(modalities):
        raise ValueError(
            f"modalities must be distinct names among {MAMMOGRAPHY_MODALITIES}; got {modalities}."
        )
    if kind == "post" and len(modalities) < 2:
        raise ValueError("Post-fusion needs at least two modalities; use kind='pre' for one.")

    from .features import make_multiview_features

    radiomics_params = _with_shared(
        radiomics,
        {"image_types": STUDY_RADIOMICS_IMAGE_TYPES, "n_jobs": None},
        cache=cache,
        n_jobs=n_jobs,
    )
    deep_params = _with_shared(
        deep,
        {"backbone": "resnet18", "weights": None, "random_state": random_state},
        cache=cache,
        n_jobs=n_jobs,
    )
    features = {
        "clinical": make_clinical_preprocessor(),
        "radiomics": make_multiview_features(views, radiomics=radiomics_params, deep=False),
        "deep": make_multiview_features(views, radiomics=False, deep=deep_params),
    }
    selection = {
        "alpha": alpha,
        "correlation_threshold": correlation_threshold,
        "lasso_cv": lasso_cv,
        "sampler": sampler,
        "random_state": random_state,
    }
    if kind == "pre":
        if modalities == ("clinical",):
            return _clinical_model(clinical_estimator, sampler)
        return make_signature(
            [(m, features[m]) for m in modalities], signature_estimator, **selection
        )
    models = [
        (
            m,
            _clinical_model(clinical_estimator, sampler)
            if m == "clinical"
            else make_signature(features[m], signature_estimator, **selection),
        )
        for m in modalities
    ]
    return make_post_fusion(
        models,
        final_estimator,
        group_col=group_col,
        cv=cv,
        random_state=random_state,
        n_jobs=n_jobs,
    )


def _clinical_model(estimator, sampler):
    model = LogisticRegression(max_iter=1000) if estimator is None else estimator
    return make_signature(make_clinical_preprocessor(), model, select=False, sampler=sampler)


CLINICAL_SIGNATURE_MODELS = ("lr", "rf", "xgboost")


def _clinical_signature(model, random_state, n_jobs):
    """The clinical signature of the ultrasound study: LR, random forest or XGBoost."""
    if not isinstance(model, str):
        return model
    if model == "lr":
        return make_clinical_pipeline()
    if model == "rf":
        from sklearn.ensemble import RandomForestClassifier

        return make_clinical_pipeline(
            RandomForestClassifier(
                n_estimators=300, min_samples_leaf=3, random_state=random_state, n_jobs=n_jobs
            )
        )
    if model == "xgboost":
        from xgboost import XGBClassifier

        return make_clinical_pipeline(
            XGBClassifier(
                n_estimators=200,
                max_depth=3,
                learning_rate=0.05,
                subsample=0.8,
                random_state=random_state,
                # xgboost's own default is every core, which thrashes inside parallel CV
                n_jobs=1 if n_jobs is None else n_jobs,
            )
        )
    raise ValueError(
        f"clinical_signature must be one of {CLINICAL_SIGNATURE_MODELS} or a classifier; "
        f"got {model!r}."
    )


def ultrasound_dl_signature(
    *,
    image_col: str = "image",
    mask_col: str | None = "mask",
    deep: Any = None,
    cache: Any = None,
    random_state: RandomStateLike = None,
) -> BaseEstimator:
    """The deep-learning signature of an ultrasound image: deep features -> selection -> model.

    Penultimate-layer features of a CNN on the lesion's bounding box
    (:class:`~sklearn_alnm.features.DeepFeatures`), selected and classified like the other
    signatures of the library (z-score, p < 0.05, correlation below 0.75, LASSO, logistic-loss SGD;
    :func:`~sklearn_alnm.fusion.make_signature`). Its probability is the "DL signature" of
    :func:`ultrasound_combined`.

    Parameters
    ----------
    image_col, mask_col : str, default="image", "mask"
        Ultrasound image and lesion mask columns.
    deep : dict, default=None
        Parameters of :class:`~sklearn_alnm.features.DeepFeatures` over the defaults
        (ResNet18, ``weights=None``; e.g. ``{"backbone": "resnet50", "weights": "DEFAULT"}``).
    cache : str, os.PathLike, joblib.Memory or None, default=None
        Feature cache.
    random_state : int or None, default=None
        Seed of the network initialisation and of the selection and classifier.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Unfitted.

    Examples
    --------
    >>> from sklearn_alnm.recipes import ultrasound_dl_signature
    >>> model = ultrasound_dl_signature(deep={"input_size": 64}, random_state=0)
    >>> model.steps[0][1].transformer_list[0][1].backbone
    'resnet18'
    """
    from .features import DeepFeatures

    params = _with_shared(
        deep,
        {
            "image_col": image_col,
            "mask_col": mask_col,
            "backbone": "resnet18",
            "weights": None,
            "random_state": random_state,
        },
        cache=cache,
        n_jobs=None,
    )
    return make_signature([("deep", DeepFeatures(**params))], random_state=random_state)


def ultrasound_combined(
    *,
    dl_signature: Any = None,
    clinical_signature: Any = "lr",
    clinical_factors: Sequence[str] | None = None,
    image_col: str = "image",
    mask_col: str | None = "mask",
    deep: Any = None,
    output: str = "probability",
    nomogram: bool = True,
    cache: Any = None,
    n_jobs: int | None = None,
    group_col: str = "patient_id",
    cv: int = 5,
    random_state: RandomStateLike = None,
    pos_label: Label | None = None,
) -> BaseEstimator:
    """Clinical signature + deep-learning signature of the ultrasound, combined in a nomogram.

    The ultrasound study builds a deep-learning (DL) signature, the probability of node
    metastasis from the tumour's ultrasound image, and a clinical signature (logistic
    regression, random forest or XGBoost on the clinical factors); a logistic regression on
    the two signatures is the combined model, drawn as a nomogram. The signatures are scored
    out of fold on the training cohort (:class:`~sklearn_alnm.fusion.SignatureScores`), so
    the combined model learns how far to trust each one from scores it has not been fitted
    on.

    Parameters
    ----------
    dl_signature : classifier, default=None
        The DL signature model, reading the cohort. ``None`` means
        :func:`ultrasound_dl_signature` (deep features of the mask's bounding box, selection,
        classifier) with ``image_col``, ``mask_col``, ``deep`` and ``cache``.
    clinical_signature : {"lr", "rf", "xgboost"} or classifier, default="lr"
        The clinical model (the study compares the three); a classifier is used as given.
    clinical_factors : list of str, default=None
        Clinical columns entering the nomogram directly, beside the two signatures (each
        gets its own axis; categorical ones their levels).
    image_col, mask_col : str, default="image", "mask"
        Ultrasound image and lesion mask columns of the default DL signature.
    deep : dict, default=None
        Parameters of the default DL signature's :class:`~sklearn_alnm.features.DeepFeatures`
        (e.g. ``{"backbone": "resnet50", "weights": "DEFAULT", "input_size": 224}``).
    output : {"probability", "logit"}, default="probability"
        Scale of the signature scores on the nomogram.
    nomogram : bool, default=True
        Combine with a :class:`~sklearn_alnm.clinical.Nomogram` (an unpenalised logistic
        regression that draws itself; the study report shows it); ``False`` uses a plain
        ``LogisticRegression``.
    cache : str, os.PathLike, joblib.Memory or None, default=None
        Feature cache of the default DL signature (recommended: the signature is fitted once
        per out-of-fold split).
    n_jobs : int or None, default=None
        Parallel fitting of the signatures.
    group_col : str or None, default="patient_id"
        Patient id column of the grouped out-of-fold split.
    cv : int or CV splitter, default=5
        Out-of-fold scheme of the training signatures.
    random_state : int or None, default=None
        Seed of the folds, of the default models and of randomly initialised networks.
    pos_label : scalar or None, default=None
        The positive label (e.g. ``"N+"``) whose risk the signatures and the nomogram give;
        required unless the labels are 0/1, -1/1 or booleans.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Unfitted; steps ``"signatures"`` (members ``clinical`` and ``dl``, so e.g.
        ``signatures__clinical__model__C`` tunes the clinical model) and ``"nomogram"`` (or
        ``"combined"``).

    References
    ----------
    Study 001 of the design notes: ultrasound deep-learning signature combined with clinical
    factors in a nomogram for axillary lymph node metastasis.

    Examples
    --------
    >>> from sklearn_alnm.datasets import make_alnm_cohort
    >>> from sklearn_alnm.recipes import ultrasound_combined
    >>> X, y = make_alnm_cohort(80, modalities=("clinical", "ultrasound"), image_size=32,
    ...                         random_state=0)
    >>> model = ultrasound_combined(deep={"input_size": 32}, cv=3, random_state=0).fit(X, y)
    >>> model["nomogram"].variables_
    ['clinical_signature', 'dl_signature']
    >>> model.predict_proba(X.head(2)).shape
    (2, 2)
    """
    if dl_signature is None:
        dl_signature = ultrasound_dl_signature(
            image_col=image_col,
            mask_col=mask_col,
            deep=deep,
            cache=cache,
            random_state=random_state,
        )
    return Pipeline(
        _combined_steps(
            dl_signature,
            clinical_signature=clinical_signature,
            clinical_factors=clinical_factors,
            output=output,
            nomogram=nomogram,
            n_jobs=n_jobs,
            group_col=group_col,
            cv=cv,
            random_state=random_state,
            pos_label=pos_label,
        )
    )


def _combined_steps(
    dl_signature,
    *,
    clinical_signature,
    clinical_factors,
    output,
    nomogram,
    n_jobs,
    group_col,
    cv,
    random_state,
    pos_label,
):
    """The ``signatures`` and ``nomogram`` (or ``combined``) steps of the ultrasound models."""
    if output not in ("probability", "logit"):
        raise ValueError(f"output must be 'probability' or 'logit'; got {output!r}.")
    signatures = SignatureScores(
        [
            ("clinical", _clinical_signature(clinical_signature, random_state, n_jobs)),
            ("dl", dl_signature),
        ],
        cv=cv,
        output=output,
        passthrough=None if clinical_factors is None else list(clinical_factors),
        group_col=group_col,
        n_jobs=n_jobs,
        random_state=random_state,
        pos_label=pos_label,
    )
    if not nomogram:
        return [("signatures", signatures), ("combined", LogisticRegression(C=np.inf))]
    labels = {"clinical_signature": "Clinical signature", "dl_signature": "DL signature"}
    return [
        ("signatures", signatures),
        ("nomogram", Nomogram(labels=labels, pos_label=pos_label)),
    ]


#: Default members of the ultrasound study's automatic segmentation (:func:`ultrasound_autoseg`).
AUTOSEG_SEGMENTERS = ("unet", "unetpp", "deeplabv3")


def _segmenter_classes():
    from .segmentation import (
        DeepLabV3Segmenter,
        MaskRCNNSegmenter,
        UNetPlusPlusSegmenter,
        UNetSegmenter,
    )

    return {
        "unet": UNetSegmenter,
        "unetpp": UNetPlusPlusSegmenter,
        "deeplabv3": DeepLabV3Segmenter,
        "maskrcnn": MaskRCNNSegmenter,
    }


def _autoseg_members(segmenters, params, image_col, mask_col, random_state):
    """``[(name, segmenter)]`` from names and (name, estimator) pairs; True when one alone."""
    classes = _segmenter_classes()
    single = isinstance(segmenters, str) or not isinstance(segmenters, (list, tuple))
    members = [segmenters] if single else list(segmenters)
    params = dict(params or {})
    names = [m for m in members if isinstance(m, str)]
    unknown = [m for m in names if m not in classes]
    if unknown:
        raise ValueError(f"unknown segmenters {unknown}; available: {sorted(classes)}.")
    if params and not names:
        raise ValueError(
            "segmentation= sets the segmenters given by name; not used with estimators."
        )
    unused = [k for k in params if k in classes and k not in names]
    if unused:
        raise ValueError(f"segmentation= has settings of segmenters not used: {unused}.")
    shared = {k: v for k, v in params.items() if k not in classes}
    built = []
    for member in members:
        if isinstance(member, str):
            own = {"random_state": random_state, **shared, **dict(params.get(member) or {})}
            member = (member, classes[member](image_col, mask_col, **own))
        built.append(member)
    return built, single


def ultrasound_autoseg(
    *,
    segmenters: Sequence[str] | None = None,
    fusion: str = "mean",
    segmentation: dict[str, Any] | None = None,
    roi_size: int = 224,
    margin: float = 0.1,
    empty: str = "whole",
    cnn: dict[str, Any] | None = None,
    clinical_signature: Any = "lr",
    clinical_factors: Sequence[str] | None = None,
    image_col: str = "image",
    mask_col: str | None = "mask",
    output: str = "probability",
    nomogram: bool = True,
    n_jobs: int | None = None,
    group_col: str = "patient_id",
    cv: int = 5,
    random_state: RandomStateLike = None,
    pos_label: Label | None = None,
) -> BaseEstimator:
    """The fully automatic ultrasound study: segment, crop, classify, combine in a nomogram.

    The tumour is outlined automatically by a post-fusion of several segmenters (U-Net, UNet++
    and DeepLabV3 by default; :class:`~sklearn_alnm.segmentation.SegmentationFusion`), the
    rectangle around the largest connected component of the fused mask is cropped and resampled
    (:class:`~sklearn_alnm.preprocessing.ROICropper`), and a CNN trained on the crops
    (:class:`~sklearn_alnm.models.ImageClassifier`) gives the deep-learning (DL) signature. As
    in :func:`ultrasound_combined`, a logistic regression on the out-of-fold DL and clinical
    signatures is the combined model, drawn as a nomogram. Only the images and the clinical
    factors are needed to predict: the reference masks are read by ``fit`` alone, to train the
    segmenters.

    Parameters
    ----------
    segmenters : list of str or (str, estimator), str, estimator or None, default=None
        The segmentation members, fused: names among ``"unet"``
        (:class:`~sklearn_alnm.segmentation.UNetSegmenter`), ``"unetpp"``
        (:class:`~sklearn_alnm.segmentation.UNetPlusPlusSegmenter`), ``"deeplabv3"``
        (:class:`~sklearn_alnm.segmentation.DeepLabV3Segmenter`) and ``"maskrcnn"``
        (:class:`~sklearn_alnm.segmentation.MaskRCNNSegmenter`), built on ``image_col`` and
        ``mask_col`` with ``segmentation``, or ``(name, segmenter)`` pairs used as given.
        ``None``: ``["unet", "unetpp", "deeplabv3"]``, the study's three networks. A single
        name or estimator is used alone, without fusion.
    fusion : {"mean", "vote", "union", "stack"}, default="mean"
        How the members' probability maps are fused (``method`` of
        :class:`~sklearn_alnm.segmentation.SegmentationFusion`; ``"stack"`` learns a
        pixel-level logistic regression on the members' out-of-fold maps).
    segmentation : dict, default=None
        Parameters of the segmenters given by name: those shared by all (e.g.
        ``{"input_size": 128, "max_epochs": 40, "device": "cuda"}``) and, under a member's
        name, its own (e.g. ``{"unet": {"base_channels": 16}}``). Every member's parameters
        are also reachable on the returned pipeline, e.g.
        ``segmentation__unet__base_channels``.
    roi_size : int, default=224
        Side of the square crops (``ROICropper(output_size=...)``) and of the CNN's input.
    margin : int or float, default=0.1
        Margin around the lesion's rectangle: pixels (int) or a fraction of its size (float).
    empty : {"whole", "center", "error"}, default="whole"
        What an image whose fused mask is empty gives the CNN: the whole image, a centred
        half-size rectangle, or an error (see :class:`~sklearn_alnm.preprocessing.ROICropper`).
    cnn : dict, default=None
        Parameters of the :class:`~sklearn_alnm.models.ImageClassifier` over the defaults
        (ResNet50 with random initial weights, z-score normalisation; e.g. ``{"weights":
        "DEFAULT", "normalize": "imagenet", "max_epochs": 30, "device": "cuda"}``).
    clinical_signature : {"lr", "rf", "xgboost"} or classifier, default="lr"
        The clinical model.
    clinical_factors : list of str, default=None
        Clinical columns entering the nomogram directly, beside the two signatures.
    image_col, mask_col : str, default="image", "mask"
        Ultrasound image column and reference lesion mask column (read by ``fit`` only).
    output : {"probability", "logit"}, default="probability"
        Scale of the signature scores on the nomogram.
    nomogram : bool, default=True
        Combine with a :class:`~sklearn_alnm.clinical.Nomogram`; ``False`` uses a plain
        ``LogisticRegression``.
    n_jobs : int or None, default=None
        Parallel fitting of the signatures.
    group_col : str or None, default="patient_id"
        Patient id column of the grouped out-of-fold split.
    cv : int or CV splitter, default=5
        Out-of-fold scheme of the training signatures (the CNN is trained ``cv + 1`` times).
    random_state : int or None, default=None
        Seed of the networks, the folds and the default models.
    pos_label : scalar or None, default=None
        The positive label (e.g. ``"N+"``) whose risk the signatures and the nomogram give;
        required unless the labels are 0/1, -1/1 or booleans.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Unfitted; steps ``"segmentation"`` (adds the predicted masks: ``"pred_mask"``, or
        the single segmenter's ``output_col``), ``"crop"``
        (adds ``"roi"`` and ``"roi_mask"``), ``"signatures"`` (members ``clinical`` and
        ``dl``; e.g. ``signatures__dl__max_epochs``) and ``"nomogram"`` (or ``"combined"``).

    See Also
    --------
    ultrasound_combined : The same combination with the reference masks and deep features.
    sklearn_alnm.segmentation.SegmentationFusion : The fused segmentation step.

    Notes
    -----
    ``fit`` trains the segmenters on the reference masks, then crops every training image with
    its predicted mask, as at prediction time; the CNN and the nomogram therefore learn from
    the automatic crops. The segmentation is fitted once, outside the out-of-fold loop of the
    signatures: its predicted masks on the training images are in-sample (better than on new
    images), which the clinical study also accepted by segmenting its training set with the
    trained networks.

    References
    ----------
    Study 001 of the design notes: ultrasound deep-learning signature with automatic tumour
    segmentation (U-Net, UNet++, DeepLabV3 and their post-fusion; ResNet50 on the segmented
    region) combined with clinical factors in a nomogram for axillary lymph node metastasis.

    Examples
    --------
    >>> from sklearn_alnm.datasets import make_alnm_cohort
    >>> from sklearn_alnm.recipes import ultrasound_autoseg
    >>> X, y = make_alnm_cohort(60, modalities=("clinical", "ultrasound"), image_size=32,
    ...                         random_state=0)
    >>> tiny = {"base_channels": 4, "depth": 2, "input_size": 32, "max_epochs": 2}
    >>> model = ultrasound_autoseg(segmenters="unet", segmentation=tiny, roi_size=32,
    ...                            cnn={"backbone": "resnet18", "max_epochs": 1}, cv=2,
    ...                            random_state=0)
    >>> [name for name, _ in model.steps]
    ['segmentation', 'crop', 'signatures', 'nomogram']
    >>> model.fit(X, y).predict_proba(X.drop(columns="mask").head(2)).shape
    (2, 2)
    """
    from .models import ImageClassifier
    from .preprocessing import ROICropper
    from .segmentation import SegmentationFusion

    members, single = _autoseg_members(
        AUTOSEG_SEGMENTERS if segmenters is None else segmenters,
        segmentation,
        image_col,
        mask_col,
        random_state,
    )
    if single:
        segment = members[0][1] if isinstance(members[0], tuple) else members[0]
    else:
        segment = SegmentationFusion(
            members, method=fusion, output_col="pred_mask", random_state=random_state
        )
    crop = ROICropper(
        image_col,
        getattr(segment, "output_col", "pred_mask"),
        output_col="roi",
        output_mask_col="roi_mask",
        margin=margin,
        output_size=(roi_size, roi_size),
        empty=empty,
    )
    params = {
        "backbone": "resnet50",
        "weights": None,
        "input_size": roi_size,
        "normalize": "zscore",
        "random_state": random_state,
        **dict(cnn or {}),
    }
    dl_signature = ImageClassifier("roi", None, crop=None, **params)
    steps = _combined_steps(
        dl_signature,
        clinical_signature=clinical_signature,
        clinical_factors=clinical_factors,
        output=output,
        nomogram=nomogram,
        n_jobs=n_jobs,
        group_col=group_col,
        cv=cv,
        random_state=random_state,
        pos_label=pos_label,
    )
    return Pipeline([("segmentation", segment), ("crop", crop), *steps])


def ultrasound_video(
    arch: str = "tin",
    *,
    video_col: str = "video",
    pos_label: Label | None = None,
    random_state: RandomStateLike = None,
    **params: Any,
) -> BaseEstimator:
    """The dynamic-ultrasound study's video model: a clip classifier with the study's settings.

    16 frames per clip, resized to 256 px and centre-cropped to 224, pixels in ``[0, 1]``,
    random resized crop, horizontal flip and an elastic deformation (plus brightness /
    contrast) of every frame of a clip alike in training
    (:class:`~sklearn_alnm.inputs.ClipAugment` with ``elastic=50``), Adam at 1e-4, batch 4,
    cross-entropy
    (:class:`~sklearn_alnm.models.VideoClassifier`). The study compared R(2+1)D, TIN and
    ResNet-3D (``arch="r2plus1d_18"``, ``"tin"``, ``"r3d_18"``); TIN was best.

    Parameters
    ----------
    arch : str, default="tin"
        The network (see :class:`~sklearn_alnm.models.VideoClassifier`).
    video_col : str, default="video"
        Cohort column of the clips.
    pos_label : scalar or None, default=None
        The positive class when the labels are not 0/1.
    random_state : int or None, default=None
        Seed of the initialisation, shuffling and augmentation.
    **params
        Any other :class:`~sklearn_alnm.models.VideoClassifier` parameter over the study's
        (``n_frames``, ``frame_size``, ``max_epochs``, ``backbone``, ``weights``, ...).

    Returns
    -------
    sklearn_alnm.models.VideoClassifier
        Unfitted.

    Examples
    --------
    >>> from sklearn_alnm.recipes import ultrasound_video
    >>> model = ultrasound_video("r2plus1d_18", max_epochs=5)
    >>> model.arch, model.n_frames, model.frame_size, model.lr, model.batch_size
    ('r2plus1d_18', 16, 224, 0.0001, 4)
    """
    from .inputs import ClipAugment
    from .models import VideoClassifier

    settings = {
        "n_frames": 16,
        "frame_size": 224,
        "resize": 256,
        "crop": "center",
        "normalize": "unit",
        "augment": ClipAugment(elastic=50.0),
        "optimizer": "adam",
        "lr": 1e-4,
        "batch_size": 4,
        **params,
    }
    return VideoClassifier(
        video_col, arch=arch, pos_label=pos_label, random_state=random_state, **settings
    )


def ultrasound_video_static(
    backbone: str = "resnet50",
    *,
    video_col: str = "video",
    key_frame: str | int = "middle",
    pos_label: Label | None = None,
    random_state: RandomStateLike = None,
    **params: Any,
) -> BaseEstimator:
    """The static comparator of the video study: a CNN on one key frame of the same clip.

    :class:`~sklearn_alnm.preprocessing.FrameSelector` writes the key frame (``key_frame``:
    ``"middle"`` or ``"max_variance"``) and an :class:`~sklearn_alnm.models.ImageClassifier`
    (the study's ResNet50, InceptionV3 or VGG19) classifies it, so both models are fitted and
    compared (DeLong) on the same cohort.

    Parameters
    ----------
    backbone : str, default="resnet50"
        A registry backbone (``"inception_v3"``, ``"vgg19"``, ...).
    video_col : str, default="video"
    key_frame : {"middle", "max_variance"}, default="middle"
    pos_label : scalar or None, default=None
    random_state : int or None, default=None
    **params
        Any other :class:`~sklearn_alnm.models.ImageClassifier` parameter (``input_size``,
        ``max_epochs``, ``weights``, ...).

    Returns
    -------
    sklearn.pipeline.Pipeline
        ``FrameSelector`` then ``ImageClassifier``, unfitted.

    Examples
    --------
    >>> from sklearn_alnm.recipes import ultrasound_video_static
    >>> model = ultrasound_video_static("vgg19", input_size=64)
    >>> [name for name, _ in model.steps], model[-1].image_col
    (['key_frame', 'classifier'], 'key_frame')
    """
    from .models import ImageClassifier
    from .preprocessing import FrameSelector

    settings = {"lr": 1e-4, "batch_size": 4, **params}
    return Pipeline(
        [
            ("key_frame", FrameSelector(video_col, method=key_frame, output_col="key_frame")),
            (
                "classifier",
                ImageClassifier(
                    "key_frame",
                    backbone=backbone,
                    pos_label=pos_label,
                    random_state=random_state,
                    **settings,
                ),
            ),
        ]
    )


#: The ultrasound + H&E study's single-modality networks (ULNet, PLNet) as branch settings.
US_PATHOLOGY_BRANCHES = {
    "us": {
        "backbone": "ulnet",
        "crop": "mask_bbox",
        "normalize": "zscore+histeq",
        "dropout": 0.5,
        "optimizer": "adam",
        "lr": 1e-3,
        "lr_schedule": "step",
    },
    "path": {"backbone": "plnet", "normalize": "half", "optimizer": "adam", "lr": 1e-4},
}


def us_pathology_branches(
    *,
    image_col: str = "image",
    mask_col: str | None = "mask",
    pathology_col: str = "pathology",
    us: dict[str, Any] | None = None,
    path: dict[str, Any] | None = None,
    pos_label: Label | None = None,
    random_state: RandomStateLike = None,
) -> dict[str, BaseEstimator]:
    """The ultrasound + H&E study's two single-modality models, ULNet and PLNet.

    ULNet: a ResNet50 with dropout 0.5 in front of its head on the ultrasound lesion's
    rectangle (mask-guided ROI), z-score then histogram equalisation, Adam at 1e-3 halved
    every 10 epochs. PLNet: the light four-block CNN on the H&E tile, inputs normalised to
    mean 0.5 / standard deviation 0.5, Adam at 1e-4. Both train with random resized crops and
    horizontal (never vertical) flips. They are the branches of
    :func:`us_pathology_fusion` and its single-modality comparators. The study's other
    pathology network, a ViT at 3e-5, is ``path={"backbone": "vit_b_16", "lr": 3e-5,
    "normalize": "imagenet"}`` (with its ImageNet weights where they are available offline).

    Parameters
    ----------
    image_col, mask_col, pathology_col : str
        Cohort columns of the ultrasound image, its lesion mask and the H&E tile.
    us, path : dict or None, default=None
        :class:`~sklearn_alnm.models.ImageClassifier` parameters over the study's, per
        branch (e.g. ``{"backbone": "resnet18", "input_size": 64, "max_epochs": 8}``).
    pos_label : scalar or None, default=None
    random_state : int or None, default=None
        Seed of both branches.

    Returns
    -------
    list of (str, ImageClassifier)
        ``[("us", ULNet), ("path", PLNet)]``, unfitted.

    Examples
    --------
    >>> from sklearn_alnm.recipes import us_pathology_branches
    >>> [(name, est.backbone, est.normalize, est.lr) for name, est in us_pathology_branches()]
    [('us', 'ulnet', 'zscore+histeq', 0.001), ('path', 'plnet', 'half', 0.0001)]
    """
    from .models import ImageClassifier

    common = {"pos_label": pos_label, "random_state": random_state}
    return [
        (
            "us",
            ImageClassifier(
                image_col, mask_col, **{**US_PATHOLOGY_BRANCHES["us"], **common, **(us or {})}
            ),
        ),
        (
            "path",
            ImageClassifier(
                pathology_col, **{**US_PATHOLOGY_BRANCHES["path"], **common, **(path or {})}
            ),
        ),
    ]


def us_pathology_fusion(
    fusion: str = "multilayer",
    *,
    branches: Any = None,
    image_col: str = "image",
    mask_col: str | None = "mask",
    pathology_col: str = "pathology",
    us: dict[str, Any] | None = None,
    path: dict[str, Any] | None = None,
    pos_label: Label | None = None,
    random_state: RandomStateLike = None,
    **params: Any,
) -> BaseEstimator:
    """The ultrasound + H&E study: ULNet and PLNet fitted alone, then fused.

    The study's fusion stage: the branches' embeddings through the fusion head
    (``"multilayer"``: per-modality BatchNorm, concatenation, FC 256, ReLU, BatchNorm,
    squeeze-and-excitation, one sigmoid output; no dropout), AdamW at 1e-4 decayed every 5
    epochs (halved here; the study does not state the factor). The study compared
    concatenation, weighting, attention, voting and multilayer fusion
    (:class:`~sklearn_alnm.models.MultimodalFusionClassifier`).

    Parameters
    ----------
    fusion : {"concat", "weighted", "attention", "voting", "multilayer"}, default="multilayer"
    branches : list of (str, ImageClassifier) or None, default=None
        The branches; ``None`` builds :func:`us_pathology_branches` (with ``image_col``,
        ``mask_col``, ``pathology_col``, ``us``, ``path``). Fitted branches with
        ``branch_init="prefit"`` fuse the same ULNet and PLNet in several ways without
        refitting them.
    image_col, mask_col, pathology_col, us, path
        See :func:`us_pathology_branches`.
    pos_label : scalar or None, default=None
    random_state : int or None, default=None
    **params
        Any other :class:`~sklearn_alnm.models.MultimodalFusionClassifier` parameter over
        the study's (``max_epochs``, ``missing``, ``freeze_branches``, ``branch_init``, ...).

    Returns
    -------
    sklearn_alnm.models.MultimodalFusionClassifier
        Unfitted.

    Examples
    --------
    >>> from sklearn_alnm.recipes import us_pathology_fusion
    >>> model = us_pathology_fusion("attention", missing="drop_branch")
    >>> model.fusion, model.optimizer, model.lr, model.get_params()["us__backbone"]
    ('attention', 'adamw', 0.0001, 'ulnet')
    """
    from .models import MultimodalFusionClassifier

    if branches is None:
        branches = us_pathology_branches(
            image_col=image_col,
            mask_col=mask_col,
            pathology_col=pathology_col,
            us=us,
            path=path,
            pos_label=pos_label,
            random_state=random_state,
        )
    settings = {
        "hidden": 256,
        "optimizer": "adamw",
        "lr": 1e-4,
        "lr_schedule": {"policy": "StepLR", "step_size": 5, "gamma": 0.5},
        **params,
    }
    return MultimodalFusionClassifier(
        branches, fusion=fusion, pos_label=pos_label, random_state=random_state, **settings
    )


def ultrasound_mtl_mil(
    backbone: str = "resnet18",
    pooling: str = "transformer",
    *,
    bag_col: str = "bag",
    kind_col: str | None = "bag_kind",
    mask_col: str | None = "bag_mask",
    input_size: int = 512,
    cv: int = 5,
    stage1: dict[str, Any] | None = None,
    mil: dict[str, Any] | None = None,
    pos_label: Label | None = None,
    random_state: RandomStateLike = None,
) -> BaseEstimator:
    """The multi-task / multi-instance ultrasound study: images segmented, then bags pooled.

    Stage 1, :class:`~sklearn_alnm.models.MultiTaskSegClassifier`: every image of a
    patient's bag (tumour views, axillary node images) through a backbone and a SAM-like
    mask decoder, trained jointly on the lesion mask, the lesion kind and the patient's ALN
    status as a pseudo-label (AdamW 6e-5, 512 px, flips, rotation and zoom with the mask).
    Its pooled lesion features are the instance tokens, out of fold for the training cohort
    (``cv``). Stage 2, :class:`~sklearn_alnm.models.MILClassifier`: a transformer with a CLS
    token over each patient's tokens (any number of node images, none included), with the
    predicted kinds embedded, and an MLP head (AdamW 6e-5). The study's best backbone was
    SegFormer: ``backbone="mit_b0"`` (its MiT encoder; weights offline only), or any
    registry backbone with a feature map (ResNets, ``"mobilenet_v3"``, ``"swin_t"``,
    ``"unet"``).

    Parameters
    ----------
    backbone : str, default="resnet18"
        Stage 1's registry backbone.
    pooling : {"transformer", "attention", "gated_attention", "mean", "max"}, \
default="transformer"
        Stage 2's pooling.
    bag_col, kind_col, mask_col : str
        The bag columns (images; kinds and masks for training).
    input_size : int, default=512
    cv : int, CV splitter or None, default=5
        Out-of-fold tokens of stage 1 for stage 2's training (see
        :class:`~sklearn_alnm.models.MultiTaskSegClassifier`).
    stage1, mil : dict or None, default=None
        Further parameters of each stage (e.g. ``{"max_epochs": 10, "dim": 64}``).
    pos_label : scalar or None, default=None
    random_state : int or None, default=None

    Returns
    -------
    sklearn.pipeline.Pipeline
        Steps ``"images"`` and ``"mil"``, unfitted; ``predict_proba`` needs only the bag
        column.

    Examples
    --------
    >>> from sklearn_alnm.recipes import ultrasound_mtl_mil
    >>> model = ultrasound_mtl_mil("resnet50", "attention", input_size=128)
    >>> [name for name, _ in model.steps], model[-1].pooling, model[0].lr
    (['images', 'mil'], 'attention', 6e-05)
    """
    from .models import MILClassifier, MultiTaskSegClassifier

    common = {"pos_label": pos_label, "random_state": random_state}
    study = {"input_size": input_size, "optimizer": "adamw", "lr": 6e-5, "cv": cv}
    images = MultiTaskSegClassifier(
        bag_col, kind_col, mask_col, backbone=backbone, **{**study, **common, **(stage1 or {})}
    )
    settings = {"dim": images.dim, "optimizer": "adamw", "lr": 6e-5, **(mil or {})}
    bags = MILClassifier(
        "tokens", kind_col="pred_kind", kinds=images.kinds, pooling=pooling, **common, **settings
    )
    return Pipeline([("images", images), ("mil", bags)])


def ultrasound_single_t(
    backbone: str = "resnet101",
    *,
    bag_col: str = "bag",
    kind_col: str | None = "bag_kind",
    mask_col: str | None = None,
    pos_label: Label | None = None,
    random_state: RandomStateLike = None,
    **params: Any,
) -> BaseEstimator:
    """The multi-task study's "single T" comparator: a CNN on one tumour image per patient.

    :class:`~sklearn_alnm.preprocessing.InstanceSelector` takes each bag's first tumour
    view (and, with ``mask_col``, its mask, to crop the lesion), then an
    :class:`~sklearn_alnm.models.ImageClassifier` (the study's ResNet101).

    Parameters
    ----------
    backbone : str, default="resnet101"
    bag_col, kind_col : str
    mask_col : str or None, default=None
        Crop each image to its lesion mask's rectangle (whole images without it).
    pos_label : scalar or None, default=None
    random_state : int or None, default=None
    **params
        Further :class:`~sklearn_alnm.models.ImageClassifier` parameters.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Steps ``"tumor_image"`` and ``"classifier"``, unfitted.

    Examples
    --------
    >>> from sklearn_alnm.recipes import ultrasound_single_t
    >>> model = ultrasound_single_t(input_size=64)
    >>> model[0].kind, model[-1].backbone, model[-1].image_col
    ('tumor', 'resnet101', 'instance_image')
    """
    from .models import ImageClassifier
    from .preprocessing import InstanceSelector

    return Pipeline(
        [
            ("tumor_image", InstanceSelector(bag_col, kind_col=kind_col, mask_col=mask_col)),
            (
                "classifier",
                ImageClassifier(
                    "instance_image",
                    "instance_mask" if mask_col else None,
                    backbone=backbone,
                    pos_label=pos_label,
                    random_state=random_state,
                    **params,
                ),
            ),
        ]
    )
