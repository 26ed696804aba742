"""
Mammography: clinical, radiomics and deep features fused before and after modelling
====================================================================================

Per view (CC and MLO): pyradiomics features of the lesion and ResNet18 features, then z-score,
univariate filter, correlation filter and LASSO, and an SGD signature. Pre-fusion concatenates
the selected features of all modalities; post-fusion stacks the clinical, radiomics and deep
signatures' out-of-fold probabilities with an SVM. Small settings: the original image only, a
few feature classes, 40 px images, a randomly initialised ResNet18.
"""

import tempfile

from sklearn.model_selection import train_test_split

from sklearn_alnm.datasets import make_alnm_cohort
from sklearn_alnm.recipes import mammography_fusion
from sklearn_alnm.report import StudyReport

X, y = make_alnm_cohort(160, modalities=("clinical", "mammography"), image_size=40, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)

cache = tempfile.mkdtemp()  # each patient's features are extracted once for all the models
light = {
    "radiomics": {
        "image_types": {"Original": {}},
        "feature_classes": ["firstorder", "glcm", "shape2D"],
    },
    "deep": {"input_size": 32},  # weights="DEFAULT" where the ImageNet weights are available
    "cache": cache,
    "cv": 3,
    "random_state": 0,
}
models = {
    "Clinical": mammography_fusion("pre", ("clinical",), **light),
    "Radiomics": mammography_fusion("pre", ("radiomics",), **light),
    "Pre-fusion": mammography_fusion("pre", **light),
    "Post-fusion": mammography_fusion("post", **light),
}
for model in models.values():
    model.fit(X_train, y_train)

# %%
# AUCs with DeLong intervals on both cohorts; the thresholds come from the training cohort
report = StudyReport(models, {"Training": (X_train, y_train), "Test": (X_test, y_test)})
print(report.metrics_table(formatted=True).to_string())
fig = report.plot_roc("Test")
