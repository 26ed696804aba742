"""
Multi-task + multi-instance: every image of a patient, then the whole bag
=========================================================================

Each patient has a bag of ultrasound images: views of the tumour and zero to five axillary node
images. Stage 1, a multi-task network, segments each image's lesion, tells tumour from node and
scores the image; its lesion features become one token per image, out of fold for the training
cohort. Stage 2, a transformer with a CLS token, reads each patient's tokens (any number) and
predicts the ALN status. Small settings: the light PLNet trunk at 32 px, a few epochs.
"""

from sklearn.model_selection import train_test_split

from sklearn_alnm.datasets import make_alnm_cohort
from sklearn_alnm.explain import plot_bag_cam
from sklearn_alnm.metrics import roc_auc_ci
from sklearn_alnm.recipes import ultrasound_mtl_mil

X, y = make_alnm_cohort(160, modalities=("bag",), image_size=32, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
print("images per bag:", X_train["bag"].map(len).value_counts().sort_index().to_dict())

model = ultrasound_mtl_mil(
    "plnet",
    "transformer",
    input_size=32,
    cv=2,
    stage1={"dim": 32, "heads": 4, "lr": 2e-3, "max_epochs": 4, "augment": None},
    mil={"dim": 32, "heads": 4, "lr": 1e-3, "max_epochs": 20},
    random_state=0,
).fit(X_train, y_train)

stage1 = model.named_steps["images"]
for name, proba in (
    ("stage 1 alone (mean of the images)", stage1.predict_proba(X_test)[:, 1]),
    ("transformer over the bag", model.predict_proba(X_test)[:, 1]),
):
    auc, low, high = roc_auc_ci(y_test, proba)
    print(f"{name}: test AUC {auc:.3f} ({low:.3f}-{high:.3f})")
print(f"lesion segmentation, test Dice: {stage1.segmentation_score(X_test):.3f}")

# %%
# One patient's images with the image head's CAM and the transformer's attention weights
fig = plot_bag_cam(model, X_test.head(1))
