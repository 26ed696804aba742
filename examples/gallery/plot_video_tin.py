"""
Ultrasound video: a temporal network against a static key frame
================================================================

TIN (a ResNet18 whose residual blocks shift part of their channels along time by learnt,
fractional offsets) reads every frame of each patient's clip; the static comparator is the same
ResNet18 on the clip's middle frame. The synthetic clips carry the label in their motion, not in
any single frame, so only the video network can find it. Small settings: 8 frames of 32 px.
"""

from sklearn.model_selection import train_test_split

from sklearn_alnm.datasets import make_alnm_cohort
from sklearn_alnm.explain import plot_gradcam
from sklearn_alnm.metrics import roc_auc_ci
from sklearn_alnm.recipes import ultrasound_video, ultrasound_video_static

X, y = make_alnm_cohort(120, modalities=("video",), n_frames=8, image_size=32, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
small = {"lr": 1e-3, "batch_size": 16, "max_epochs": 4, "normalize": "zscore", "augment": None}
tin = ultrasound_video(
    "tin", backbone="resnet18", n_frames=8, frame_size=32, resize=None, random_state=0, **small
).fit(X_train, y_train)
static = ultrasound_video_static("resnet18", input_size=32, random_state=0, **small)
static.fit(X_train, y_train)

for name, model in (("TIN (video)", tin), ("static key frame", static)):
    auc, low, high = roc_auc_ci(y_test, model.predict_proba(X_test)[:, 1])
    print(f"{name}: test AUC {auc:.3f} ({low:.3f}-{high:.3f})")

# %%
# Grad-CAM of the video network on each clip's key frame (the frame holding most of its map)
fig = plot_gradcam(tin, X_test.head(4))
