"""
Ultrasound + H&E: two networks, each alone and fused
====================================================

ULNet reads the ultrasound lesion (its rectangle, z-score and histogram equalisation), PLNet
the H&E tile of the core biopsy. Each is fitted alone; then the two fitted networks'
embeddings go through a fusion head. A patient without an H&E tile is predicted from the
ultrasound alone. Small settings: a ResNet18 trunk for ULNet, 32 px, a few epochs.
"""

from sklearn.model_selection import train_test_split

from sklearn_alnm.datasets import make_alnm_cohort
from sklearn_alnm.explain import plot_gradcam
from sklearn_alnm.metrics import roc_auc_ci
from sklearn_alnm.recipes import us_pathology_branches, us_pathology_fusion

X, y = make_alnm_cohort(160, modalities=("ultrasound", "pathology"), image_size=32, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
small = {"input_size": 32, "lr": 1e-3, "max_epochs": 5, "augment": None, "lr_schedule": None}
(_, ulnet), (_, plnet) = us_pathology_branches(
    us={**small, "backbone": "resnet18"}, path=small, random_state=0
)
ulnet.fit(X_train, y_train)
plnet.fit(X_train, y_train)

# %%
# The fitted branches, frozen, under an attention head that weighs them per patient
fused = us_pathology_fusion(
    "attention",
    branches=[("us", ulnet), ("path", plnet)],
    branch_init="prefit",
    max_epochs=10,
    lr=1e-3,
    random_state=0,
).fit(X_train, y_train)
for name, model in (("ULNet (US)", ulnet), ("PLNet (H&E)", plnet), ("attention fusion", fused)):
    auc, low, high = roc_auc_ci(y_test, model.predict_proba(X_test)[:, 1])
    print(f"{name}: test AUC {auc:.3f} ({low:.3f}-{high:.3f})")
print("modality weights of the first test patients:\n", fused.modality_weights(X_test.head(3)))

# %%
# Where the H&E branch looks (Grad-CAM on its last convolutional block)
fig = plot_gradcam(fused, X_test.head(4), branch="path")
