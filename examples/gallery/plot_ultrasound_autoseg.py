"""
Ultrasound: automatic segmentation, a deep-learning signature and a nomogram
============================================================================

The fully automatic model needs no lesion outline to predict: a U-Net and a UNet++ (trained on
the training cohort's reference masks) segment the lesion, their probability maps are fused,
the largest predicted lesion is cropped, a CNN on the crops gives the deep-learning signature,
and a logistic regression on the out-of-fold DL and clinical signatures is the combined model,
drawn as a nomogram. Small settings: 48 px images, tiny networks, a few epochs.
"""

import torch
from sklearn.model_selection import train_test_split

from sklearn_alnm.datasets import make_alnm_cohort
from sklearn_alnm.recipes import ultrasound_autoseg

torch.manual_seed(0)
X, y = make_alnm_cohort(120, modalities=("clinical", "ultrasound"), image_size=48, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
model = ultrasound_autoseg(
    segmenters=["unet", "unetpp"],
    segmentation={"base_channels": 8, "depth": 3, "input_size": 48, "max_epochs": 6, "lr": 3e-3},
    roi_size=32,
    cnn={"backbone": "resnet18", "max_epochs": 4, "batch_size": 32},
    cv=2,
    random_state=0,
).fit(X_train, y_train)

# %%
# The reference masks are only read by ``fit``: prediction needs the images and clinical data
X_new = X_test.drop(columns="mask")
print("predicted risk of the first test patients:", model.predict_proba(X_new)[:3, 1].round(3))
segmentation = model.named_steps["segmentation"]
print(f"test Dice of the fused segmentation: {segmentation.score(X_test):.3f}")

# %%
# The nomogram of the combined model: points of each signature, total points, risk
fig = model.named_steps["nomogram"].plot()
