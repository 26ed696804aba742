import joblib
import numpy as np
import pytest
from imblearn.over_sampling import SMOTE
from imblearn.pipeline import Pipeline as ImbPipeline
from sklearn.ensemble import StackingClassifier
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline

from sklearn_alnm.datasets import make_alnm_cohort
from sklearn_alnm.fusion import GroupColumnKFold
from sklearn_alnm.recipes import mammography_fusion
from sklearn_alnm.utils import FeatureCache

# Small, fast settings: first-order + 2-D shape radiomics on the original image, a ResNet18 on
# 32 px crops, 3-fold inner CVs.
LIGHT = {
    "radiomics": {"image_types": {"Original": {}}, "feature_classes": ["firstorder", "shape2D"]},
    "deep": {"input_size": 32, "batch_size": 64},
    "lasso_cv": 3,
    "cv": 3,
    "random_state": 0,
}


@pytest.fixture(scope="module")
def cohort():
    return make_alnm_cohort(
        90, modalities=("clinical", "mammography"), image_size=40, random_state=2
    )


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("feature-cache"))


def test_recipe_structure_and_errors():
    post = mammography_fusion("post")
    assert isinstance(post, StackingClassifier)
    assert [n for n, _ in post.estimators] == ["clinical", "radiomics", "deep"]
    assert isinstance(post.cv, GroupColumnKFold) and post.cv.group_col == "patient_id"
    radiomics_views = post.estimators[1][1]["features"].transformer_list
    assert [n for n, _ in radiomics_views] == ["cc_radiomics", "mlo_radiomics"]
    assert radiomics_views[0][1].image_types["Wavelet"] == {}
    pre = mammography_fusion("pre", ("radiomics", "deep"), views=("cc",))
    assert isinstance(pre, Pipeline)
    assert [n for n, _ in pre["features"].transformer_list] == ["radiomics", "deep"]
    shared = mammography_fusion("pre", cache="c", n_jobs=3, radiomics={"n_jobs": 1})
    cc_radiomics = shared["features"].transformer_list[1][1].transformer_list[0][1]
    assert (cc_radiomics.cache, cc_radiomics.n_jobs) == ("c", 1)  # the user's setting wins
    with pytest.raises(ValueError, match="kind"):
        mammography_fusion("late")
    with pytest.raises(ValueError, match="distinct names"):
        mammography_fusion("pre", ("clinical", "video"))
    with pytest.raises(ValueError, match="at least two"):
        mammography_fusion("post", ("radiomics",))


def test_post_fusion_fits_predicts_and_pickles(cohort, cache, tmp_path):
    X, y = cohort
    model = mammography_fusion("post", cache=cache, **LIGHT).fit(X, y)
    proba = model.predict_proba(X)
    assert proba.shape == (len(y), 2) and np.allclose(proba.sum(axis=1), 1)
    names = model.named_estimators_["radiomics"][:-1].get_feature_names_out()
    assert all(n.startswith(("cc_", "mlo_")) for n in names) and len(names) >= 1
    assert len(FeatureCache(cache)) > 0
    joblib.dump(model, tmp_path / "model.joblib")
    again = joblib.load(tmp_path / "model.joblib")
    np.testing.assert_array_equal(again.predict_proba(X), proba)


def test_pre_fusion_and_smote_in_cross_validation(cohort, cache):
    X, y = cohort
    cv = GroupColumnKFold(n_splits=3, random_state=0)
    pre = mammography_fusion("pre", cache=cache, **LIGHT)
    assert cross_val_score(pre, X, y, cv=cv, scoring="roc_auc").mean() > 0.6
    keep = np.r_[np.where(y == 0)[0], np.where(y == 1)[0][:20]]
    smote = mammography_fusion(
        "pre", ("clinical", "radiomics"), cache=cache, sampler=SMOTE(k_neighbors=3), **LIGHT
    )
    assert isinstance(smote, ImbPipeline)
    scores = cross_val_score(smote, X.iloc[keep], y[keep], cv=cv, scoring="roc_auc")
    assert np.isfinite(scores).all()


def test_grid_search_with_two_jobs_shares_the_feature_cache(cohort, cache):
    X, y = cohort
    model = mammography_fusion("post", ("clinical", "radiomics"), cache=cache, **LIGHT)
    search = GridSearchCV(
        model,
        {"radiomics__univariate__alpha": [0.05, 0.2]},
        cv=GroupColumnKFold(n_splits=3, random_state=0),
        scoring="roc_auc",
        n_jobs=2,
    )
    search.fit(X, y)
    assert search.best_params_["radiomics__univariate__alpha"] in (0.05, 0.2)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    # every candidate and fold reused one radiomics entry per patient and view
    entries = sum(1 for _ in (FeatureCache(cache).location / "radiomics").rglob("*.npz"))
    assert entries == 2 * len(X)


# ------------------------------------------------------------------- the ultrasound combined model
@pytest.fixture(scope="module")
def us_cohort():
    return make_alnm_cohort(
        100, modalities=("clinical", "ultrasound"), image_size=32, random_state=3
    )


def test_ultrasound_combined_nomogram_on_out_of_fold_signatures(us_cohort, cache, tmp_path):
    from sklearn_alnm.clinical import Nomogram
    from sklearn_alnm.fusion import SignatureScores
    from sklearn_alnm.recipes import ultrasound_combined

    X, y = us_cohort
    model = ultrasound_combined(
        deep={"input_size": 32},
        clinical_factors=["tumor_size_mm"],
        cache=cache,
        cv=3,
        random_state=0,
    )
    assert [name for name, _ in model.steps] == ["signatures", "nomogram"]
    assert isinstance(model["signatures"], SignatureScores)
    assert model.get_params()["signatures__dl__features__deep__backbone"] == "resnet18"
    model.fit(X, y)
    nomogram = model["nomogram"]
    assert isinstance(nomogram, Nomogram)
    assert nomogram.variables_ == ["clinical_signature", "dl_signature", "tumor_size_mm"]
    # the nomogram was fitted on the out-of-fold signatures of the training cohort
    oof = model["signatures"].training_scores_
    np.testing.assert_allclose(nomogram.estimator_.n_features_in_, 3)
    assert not np.allclose(oof["dl_signature"], model["signatures"].transform(X)["dl_signature"])
    # points -> probability reproduces predict_proba of the whole pipeline
    points = nomogram.total_points(model["signatures"].transform(X.head(5)))
    np.testing.assert_allclose(
        nomogram.points_to_probability(points), model.predict_proba(X.head(5))[:, 1]
    )
    fig = nomogram.plot()
    labels = [t.get_text() for t in fig.axes[0].texts]
    assert "DL signature" in labels and "Clinical signature" in labels
    joblib.dump(model, tmp_path / "us.joblib")
    np.testing.assert_allclose(
        joblib.load(tmp_path / "us.joblib").predict_proba(X), model.predict_proba(X)
    )


def test_ultrasound_combined_with_string_labels_reads_the_risk_of_pos_label(us_cohort, cache):
    from sklearn_alnm.recipes import ultrasound_combined

    X, y = us_cohort
    labels = np.where(y == 1, "N+", "N0")
    settings = {"deep": {"input_size": 32}, "cache": cache, "cv": 3, "random_state": 0}
    with pytest.raises(ValueError, match=r"\['N\+', 'N0'\].*pos_label"):
        ultrasound_combined(**settings).fit(X, labels)
    numeric = ultrasound_combined(**settings).fit(X, y)
    text = ultrasound_combined(**settings, pos_label="N+").fit(X, labels)
    assert text["nomogram"].pos_label_ == "N+"
    np.testing.assert_allclose(
        text["nomogram"].raw_coef_, numeric["nomogram"].raw_coef_, rtol=1e-6, atol=1e-9
    )
    column = list(text.classes_).index("N+")
    np.testing.assert_allclose(
        text.predict_proba(X)[:, column], numeric.predict_proba(X)[:, 1], rtol=1e-6
    )


def test_ultrasound_combined_clinical_models_and_plain_lr(us_cohort, cache):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    from sklearn_alnm.recipes import ultrasound_combined

    X, y = us_cohort
    rf = ultrasound_combined(clinical_signature="rf", random_state=0)
    assert isinstance(rf.get_params()["signatures__clinical__model"], RandomForestClassifier)
    model = ultrasound_combined(
        clinical_signature="xgboost",
        deep={"input_size": 32},
        cache=cache,
        cv=3,
        nomogram=False,
        random_state=0,
    )
    assert isinstance(model["combined"], LogisticRegression)
    auc = cross_val_score(
        model, X, y, cv=GroupColumnKFold(n_splits=3, random_state=0), scoring="roc_auc"
    )
    assert auc.mean() > 0.6
    with pytest.raises(ValueError, match="clinical_signature"):
        ultrasound_combined(clinical_signature="svm")
    with pytest.raises(ValueError, match="output"):
        ultrasound_combined(output="odds")


# ----------------------------------------------------------- the automatic-segmentation study
def _tiny_autoseg(**kwargs):
    from sklearn_alnm.recipes import ultrasound_autoseg
    from sklearn_alnm.segmentation import UNetPlusPlusSegmenter, UNetSegmenter

    tiny = {"base_channels": 4, "depth": 2, "input_size": 32, "lr": 0.02, "random_state": 0}
    params = {
        "segmenters": [
            ("unet", UNetSegmenter(max_epochs=6, **tiny)),
            ("unetpp", UNetPlusPlusSegmenter(max_epochs=4, **tiny)),
        ],
        "roi_size": 32,
        "cnn": {"backbone": "resnet18", "max_epochs": 2, "batch_size": 16},
        "cv": 2,
        "random_state": 0,
    }
    params.update(kwargs)
    return ultrasound_autoseg(**params)


def test_ultrasound_autoseg_structure_and_errors():
    from sklearn_alnm.models import ImageClassifier
    from sklearn_alnm.preprocessing import ROICropper
    from sklearn_alnm.recipes import ultrasound_autoseg
    from sklearn_alnm.segmentation import DeepLabV3Segmenter, SegmentationFusion, UNetSegmenter

    model = ultrasound_autoseg(segmentation={"input_size": 128, "max_epochs": 5}, random_state=3)
    assert [name for name, _ in model.steps] == ["segmentation", "crop", "signatures", "nomogram"]
    fusion = model["segmentation"]
    assert isinstance(fusion, SegmentationFusion) and fusion.method == "mean"
    params = model.get_params()
    assert isinstance(params["segmentation__deeplabv3"], DeepLabV3Segmenter)
    assert params["segmentation__unet__input_size"] == 128
    assert params["segmentation__unetpp__max_epochs"] == 5
    assert params["segmentation__deeplabv3__random_state"] == 3
    crop = model["crop"]
    assert isinstance(crop, ROICropper)
    assert (crop.mask_col, crop.output_col, crop.output_size) == ("pred_mask", "roi", (224, 224))
    cnn = params["signatures__dl"]
    assert isinstance(cnn, ImageClassifier)
    assert (cnn.image_col, cnn.mask_col, cnn.crop, cnn.backbone) == ("roi", None, None, "resnet50")
    # a single segmenter is used as it is, its own output column cropped
    single = ultrasound_autoseg(segmenters=UNetSegmenter(output_col="auto"), nomogram=False)
    assert isinstance(single["segmentation"], UNetSegmenter)
    assert single["crop"].mask_col == "auto" and "combined" in single.named_steps
    # members by name, with shared and own settings
    named = ultrasound_autoseg(
        segmenters=["unet", "maskrcnn"],
        segmentation={"max_epochs": 2, "unet": {"base_channels": 8}},
        fusion="vote",
    )
    params = named.get_params()
    assert params["segmentation__unet__base_channels"] == 8
    assert params["segmentation__maskrcnn__max_epochs"] == 2
    assert params["segmentation__unet__max_epochs"] == 2
    with pytest.raises(ValueError, match="segmentation= sets the segmenters given by name"):
        ultrasound_autoseg(segmenters=UNetSegmenter(), segmentation={"max_epochs": 1})
    with pytest.raises(ValueError, match="unknown segmenters"):
        ultrasound_autoseg(segmenters=["unet", "segformer"])
    with pytest.raises(ValueError, match="not used"):
        ultrasound_autoseg(segmenters=["unet"], segmentation={"unetpp": {"depth": 3}})
    with pytest.raises(ValueError, match="output"):
        ultrasound_autoseg(output="odds")


def test_ultrasound_autoseg_fits_predicts_without_masks_and_pickles(us_cohort, tmp_path):
    from sklearn_alnm.metrics import dice_score

    X, y = us_cohort
    model = _tiny_autoseg(clinical_factors=["tumor_size_mm"]).fit(X, y)
    assert model["nomogram"].variables_ == ["clinical_signature", "dl_signature", "tumor_size_mm"]
    # the fused segmentation learnt the lesions: well above the best constant mask
    masks = model["segmentation"].predict(X)
    trivial = max(
        dice_score(X["mask"], [np.ones_like(m, dtype=bool) for m in X["mask"]]),
        dice_score(X["mask"], [np.zeros_like(m, dtype=bool) for m in X["mask"]]),
    )
    assert dice_score(X["mask"], masks) > trivial + 0.2
    # the crops follow the predicted masks, at the CNN's size
    rois = model[:2].transform(X.head(3))
    assert rois["roi"].iloc[0].shape == (32, 32)
    assert np.array_equal(rois["pred_mask"].iloc[0], masks[0])
    # new patients need their images and clinical factors only
    new = X.drop(columns="mask")
    proba = model.predict_proba(new)
    np.testing.assert_allclose(proba, model.predict_proba(X))
    assert proba.shape == (len(X), 2) and np.all((proba >= 0) & (proba <= 1))
    joblib.dump(model, tmp_path / "autoseg.joblib")
    np.testing.assert_allclose(joblib.load(tmp_path / "autoseg.joblib").predict_proba(new), proba)


def test_ultrasound_autoseg_in_grouped_cross_validation(us_cohort):
    from sklearn.model_selection import GroupKFold

    X, y = us_cohort
    auc = cross_val_score(
        _tiny_autoseg(fusion="vote"),
        X,
        y,
        groups=X["patient_id"],
        cv=GroupKFold(n_splits=2),
        scoring="roc_auc",
        error_score="raise",
    )
    assert auc.shape == (2,) and np.all((auc > 0.5) & (auc <= 1))


def test_video_recipes_fit_the_video_model_and_its_static_comparator():
    from sklearn_alnm.datasets import make_alnm_cohort
    from sklearn_alnm.recipes import ultrasound_video, ultrasound_video_static

    X, y = make_alnm_cohort(8, modalities="video", image_size=32, random_state=0)
    video = ultrasound_video(
        "tsm",
        backbone="resnet18",
        n_frames=4,
        frame_size=32,
        resize=None,
        max_epochs=1,
        random_state=0,
    ).fit(X, y)
    static = ultrasound_video_static("resnet18", input_size=32, max_epochs=1, random_state=0).fit(
        X, y
    )
    assert video.predict_proba(X).shape == static.predict_proba(X).shape == (8, 2)
    assert static[0].fit_transform(X)["key_frame"].iloc[0].shape == (32, 32)


def test_us_pathology_recipes_follow_the_study_and_fuse_prefit_branches():
    from sklearn_alnm.recipes import us_pathology_branches, us_pathology_fusion

    (us_name, us), (path_name, path) = us_pathology_branches()
    assert (us_name, path_name) == ("us", "path")
    # ULNet: mask-guided ROI, z-score + histogram equalisation, dropout 0.5, Adam 1e-3 stepped
    assert (us.image_col, us.mask_col, us.crop) == ("image", "mask", "mask_bbox")
    assert (us.normalize, us.dropout, us.optimizer, us.lr) == ("zscore+histeq", 0.5, "adam", 1e-3)
    assert us.lr_schedule == "step"
    # PLNet: pathology tile, mean 0.5 / sd 0.5, Adam 1e-4
    assert (path.image_col, path.backbone, path.normalize, path.lr) == (
        "pathology",
        "plnet",
        "half",
        1e-4,
    )
    fused = us_pathology_fusion(us={"input_size": 32}, pos_label="N+", random_state=3)
    params = fused.get_params()
    assert params["fusion"] == "multilayer" and params["hidden"] == 256
    assert params["optimizer"] == "adamw" and params["lr"] == 1e-4
    assert params["lr_schedule"] == {"policy": "StepLR", "step_size": 5, "gamma": 0.5}
    assert params["us__input_size"] == 32 and params["path__pos_label"] == "N+"
    assert params["us__random_state"] == params["path__random_state"] == 3

    X, y = make_alnm_cohort(
        24, modalities=("ultrasound", "pathology"), image_size=32, random_state=0
    )
    small = {"input_size": 32, "max_epochs": 1, "augment": None, "backbone": "plnet"}
    branches = us_pathology_branches(us=small, path=small, random_state=0)
    for _, est in branches:
        est.fit(X, y)
    model = us_pathology_fusion(
        "concat", branches=branches, branch_init="prefit", max_epochs=1, random_state=0
    ).fit(X, y)
    assert model.predict_proba(X).shape == (24, 2)
    # prefit: the given, fitted branches are the model's, not refitted copies
    assert [est for _, est in model.branches_] == [est for _, est in branches]


def test_multitask_multi_instance_recipe_and_its_single_t_comparator():
    from sklearn_alnm.recipes import ultrasound_mtl_mil, ultrasound_single_t

    X, y = make_alnm_cohort(16, modalities="bag", image_size=32, random_state=0)
    model = ultrasound_mtl_mil(
        "plnet",
        "attention",
        input_size=32,
        cv=2,
        stage1={"dim": 32, "heads": 4, "max_epochs": 1, "augment": None},
        mil={"max_epochs": 1},
        random_state=0,
    ).fit(X, y)
    assert model[-1].kind_col == "pred_kind" and model[-1].n_features_ == 32
    assert model.predict_proba(X[["patient_id", "bag"]]).shape == (16, 2)
    single = ultrasound_single_t(
        "resnet18", mask_col="bag_mask", input_size=32, max_epochs=1, random_state=0
    ).fit(X, y)
    assert single.predict_proba(X).shape == (16, 2)
    first_tumour = single[0].transform(X)["instance_image"].iloc[0]
    np.testing.assert_array_equal(first_tumour, X["bag"].iloc[0][0])  # tumour views come first
