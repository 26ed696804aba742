"""scikit-learn estimators for predicting axillary lymph node metastasis in breast cancer.

The library turns published deep-learning and radiomics studies of axillary / sentinel lymph node
metastasis (ALNM) into scikit-learn estimators that consume a *cohort* DataFrame (one row per
patient; clinical columns plus image, mask, video, bag and pathology references).

Subpackages
-----------
io
    Readers for images, masks, videos and cohort manifests.
datasets
    Synthetic cohorts (:func:`~sklearn_alnm.datasets.make_alnm_cohort`) and the BUSI loader.
metrics
    Clinical statistics: AUC with DeLong / bootstrap CI, DeLong test, binary metrics at a
    threshold, Hosmer-Lemeshow, calibration and decision curves; Dice / IoU of masks.
segmentation
    Lesion segmenters (U-Net, U-Net++, DeepLabV3, Mask R-CNN) and their fusion.
preprocessing
    Image-column transformers: lesion ROI cropping and per-image intensity normalisation.
features
    Radiomics (pyradiomics) and deep (torchvision backbone) feature transformers.
feature_selection
    Univariate, correlation and LASSO selectors of the radiomics studies.
fusion
    Modality signatures, pre-fusion, probability-stacking post-fusion, grouped CV.
clinical
    Clinical signature, stepwise logistic regression, nomogram, Table 1 / Table 2.
report
    Paper-style tables and figures of fitted models on a study's cohorts, as HTML.
recipes
    The published studies as unfitted estimators.
inputs
    How a cohort's columns become tensors: one contract per input kind (images, image + mask
    pairs, detector instances) and the training-batch augmentations.
models
    skorch-backed deep-learning estimators (:class:`~sklearn_alnm.models.ImageClassifier`)
    on one neural core (shared training parameters, device, mixed precision, checkpoints,
    CPU-loadable pickles; labels, weights and AUC for every classifier).
nn
    Backbone registry, the study networks PLNet / ULNet and the segmentation networks
    (U-Net, U-Net++, DeepLabV3, Mask R-CNN; one per module, one registry) as plain torch
    modules, no scikit-learn.
explain
    Grad-CAM heat maps, overlays and figure panels of image classifiers.
utils
    Device resolution, seeding, input errors and the feature cache shared by every estimator.
"""

from ._logging import logger

__version__ = "0.1.0"

__all__ = ["__version__", "logger"]
